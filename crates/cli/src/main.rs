//! `kaifuku`: thin front end over the core crates. It opens files, stacks the read cache, prints
//! reports and maps outcomes to exit codes; everything else lives in the core.
#![forbid(unsafe_code)]

/// `kaifuku: ...` on stderr; never panics (`eprintln!` does when stderr is full).
macro_rules! say {
    ($($t:tt)*) => {
        $crate::stdio::err_line(&format!("kaifuku: {}", format!($($t)*)))
    };
}

mod check_cmd;
mod fix_cmd;
mod output;
mod paths;
mod report;
mod source;
mod stdio;

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
    after_help = "Exit codes: 0 matching files found, 1 nothing to fix, 2 refused or unsupported (reason printed), 3 error; `check`: 0 clean, 4 = check found problems."
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
    /// Delete the matching files as NTFS would, verify, and write the fixed image.
    Fix {
        /// Disk image (raw/img, VHD fixed or dynamic) or block device.
        image: PathBuf,
        /// Where to write the fixed image (same format as the input). The input is not modified.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
        /// Edit IMAGE itself (a file or block device); needs --undo.
        #[arg(long)]
        in_place: bool,
        /// Save the original bytes of every changed range here (restore with `kaifuku undo`).
        #[arg(long, value_name = "FILE")]
        undo: Option<PathBuf>,
        /// Only show the plan: every byte range that would change and why.
        #[arg(long)]
        dry_run: bool,
        /// The volume's journal is unclean (normal after a crash): reset it and mark the volume
        /// dirty so Windows runs chkdsk at the next boot. Without this, unclean volumes are refused.
        #[arg(long)]
        discard_journal: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Delete files matching this path instead of the built-in CrowdStrike rule, e.g.
        /// '\Windows\Temp\*.tmp'.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
    },
    /// Check every NTFS volume of the image for broken invariants. Changes nothing.
    ///
    /// Verifies what chkdsk verifies in its file-record and index stages (records, bitmaps, runs,
    /// directory indexes, names), plus $MFTMirr and $LogFile. Exit code 0 clean, 4 = check found
    /// problems, 2 nothing to check (BitLocker, unsupported format, no NTFS volume), 3 error.
    Check {
        /// Disk image (raw/img, VHD fixed or dynamic) or block device.
        image: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Restore the original bytes saved by `fix --undo FILE`.
    Undo {
        /// The image that was fixed (the output file, or the image fixed in place).
        image: PathBuf,
        /// The undo file written by `fix`.
        undo_file: PathBuf,
        /// Restore even if the fixed bytes changed since (e.g. the image was booted).
        #[arg(long)]
        force: bool,
    },
}

fn rule_for(path: Option<&str>) -> Option<Rule> {
    match path {
        Some(p) => {
            let r = Rule::for_path(p);
            if r.is_none() {
                say!("--path needs a directory and a file name or glob, e.g. '\\Windows\\Temp\\*.tmp'");
            }
            r
        }
        None => Some(Rule::crowdstrike_2024_07_19()),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // Help, version or a usage error: printed by clap, whose failure to print (a closed or
        // full stdout) is an error like any other.
        Err(e) => {
            let code = e.exit_code();
            if let Err(w) = e
                .print()
                .and_then(|()| std::io::Write::flush(&mut std::io::stdout()))
            {
                stdio::stdout_failed(&w, "nothing was done");
                return ExitCode::from(EXIT_ERROR);
            }
            return ExitCode::from(u8::try_from(code).unwrap_or(EXIT_ERROR));
        }
    };
    match cli.command {
        Command::Inspect { image, json, path } => {
            let Some(rule) = rule_for(path.as_deref()) else {
                return ExitCode::from(EXIT_ERROR);
            };
            ExitCode::from(run_inspect(&image, &rule, json))
        }
        Command::Fix {
            image,
            output,
            in_place,
            undo,
            dry_run,
            discard_journal,
            json,
            path,
        } => {
            let Some(rule) = rule_for(path.as_deref()) else {
                return ExitCode::from(EXIT_ERROR);
            };
            let args = fix_cmd::FixArgs {
                image: &image,
                output: output.as_deref(),
                undo: undo.as_deref(),
                in_place,
                dry_run,
                json,
                options: kaifuku_rescue::FixOptions { discard_journal },
            };
            ExitCode::from(fix_cmd::run(&args, &rule))
        }
        Command::Check { image, json } => ExitCode::from(check_cmd::run(&image, json)),
        Command::Undo {
            image,
            undo_file,
            force,
        } => match output::undo(&image, &undo_file, force) {
            Ok(n) => {
                let line = format!(
                    "Restored {n} range(s) of {} from {}\n",
                    image.display(),
                    undo_file.display()
                );
                if let Err(e) = stdio::out(&line) {
                    stdio::stdout_failed(&e, "the image was restored");
                    return ExitCode::from(EXIT_ERROR);
                }
                ExitCode::from(0)
            }
            Err(e) => {
                say!("undo refused: {e}");
                ExitCode::from(EXIT_ERROR)
            }
        },
    }
}

fn run_inspect(image: &std::path::Path, rule: &Rule, json: bool) -> u8 {
    let source = match FileSource::open(image) {
        Ok(s) => s,
        Err(e) => {
            say!("cannot open {}: {e}", image.display());
            return EXIT_ERROR;
        }
    };
    let counted = Counted::new(source);
    let cache = BlockCache::new(&counted, CacheConfig::default());
    let report = inspect(&cache, rule);
    let stats = counted.stats();
    let text = if json {
        let doc = report::JsonReport {
            image: image.display().to_string(),
            report: &report,
            reads: stats,
        };
        serde_json::to_string_pretty(&doc).expect("report serialises") + "\n"
    } else {
        report::text(&image.display().to_string(), &report, stats)
    };
    if let Err(e) = stdio::out(&text) {
        stdio::stdout_failed(&e, "the report is incomplete");
        return EXIT_ERROR;
    }
    match report.outcome {
        Outcome::Matches => EXIT_MATCHES,
        Outcome::NothingToFix => EXIT_NOTHING,
        Outcome::Refused => EXIT_REFUSED,
        Outcome::Error => EXIT_ERROR,
    }
}
