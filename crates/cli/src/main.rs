//! `kaifuku`: thin front end over the core crates. It opens files, stacks the read cache, prints
//! reports and maps outcomes to exit codes; everything else lives in the core.

mod report;
mod source;

use clap::{Parser, Subcommand};
use kaifuku_io::{BlockCache, CacheConfig, Counted};
use kaifuku_rescue::{inspect, Outcome, Rule};
use source::FileSource;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes (stable; scripts rely on them).
const EXIT_MATCHES: u8 = 0;
const EXIT_NOTHING: u8 = 1;
const EXIT_REFUSED: u8 = 2;
const EXIT_ERROR: u8 = 3;

#[derive(Parser)]
#[command(
    name = "kaifuku",
    version,
    about = "Repair exported Windows VM disk images offline (CrowdStrike 2024-07-19 and more)",
    after_help = "Exit codes: 0 matching files found, 1 nothing to fix, 2 refused or unsupported (reason printed), 3 error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the container, partitions, volumes and the files the rule matches. Changes nothing.
    Inspect {
        /// Disk image (raw/img, VHD fixed or dynamic) or block device.
        image: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Match these files instead of the built-in CrowdStrike rule: a path from the volume
        /// root whose last component may be a glob, e.g. '\Windows\Temp\*.tmp'.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect { image, json, path } => {
            let rule = match path {
                Some(p) => match Rule::for_path(&p) {
                    Some(r) => r,
                    None => {
                        eprintln!("kaifuku: --path needs a directory and a file name or glob, e.g. '\\Windows\\Temp\\*.tmp'");
                        return ExitCode::from(EXIT_ERROR);
                    }
                },
                None => Rule::crowdstrike_2024_07_19(),
            };
            ExitCode::from(run_inspect(&image, &rule, json))
        }
    }
}

fn run_inspect(image: &std::path::Path, rule: &Rule, json: bool) -> u8 {
    let source = match FileSource::open(image) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kaifuku: cannot open {}: {e}", image.display());
            return EXIT_ERROR;
        }
    };
    let counted = Counted::new(source);
    let cache = BlockCache::new(&counted, CacheConfig::default());
    let report = inspect(&cache, rule);
    let stats = counted.stats();
    if json {
        let doc = report::JsonReport {
            image: image.display().to_string(),
            report: &report,
            reads: stats,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("report serialises")
        );
    } else {
        print!(
            "{}",
            report::text(&image.display().to_string(), &report, stats)
        );
    }
    match report.outcome {
        Outcome::Matches => EXIT_MATCHES,
        Outcome::NothingToFix => EXIT_NOTHING,
        Outcome::Refused => EXIT_REFUSED,
        Outcome::Error => EXIT_ERROR,
    }
}
