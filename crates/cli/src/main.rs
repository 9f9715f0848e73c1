//! `kaifuku`: thin front end over the core crates. It opens files, stacks the read cache, prints
//! reports and maps outcomes to exit codes; everything else lives in the core.
#![forbid(unsafe_code)]

/// `kaifuku: ...` on stderr; never panics (`eprintln!` does when stderr is full).
macro_rules! say {
    ($($t:tt)*) => {
        $crate::stdio::err_line(&format!("kaifuku: {}", format!($($t)*)))
    };
}

mod aws;
mod batch;
mod check_cmd;
mod demo;
mod ebs;
mod exit;
mod explain_cmd;
mod fix_cmd;
mod keys;
mod output;
mod paths;
mod remote;
mod remote_cmd;
mod report;
mod rules_cmd;
mod s3;
mod source;
mod stdio;

use clap::{CommandFactory, Parser, Subcommand};
use exit::Exit;
use kaifuku_io::{BlockCache, CacheConfig, Counted};
use kaifuku_rescue::{inspect_with_keys, Rule, RuleSet};
use source::FileSource;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kaifuku",
    version,
    about = "Repair exported Windows VM disk images offline (CrowdStrike 2024-07-19 and more)",
    after_help = "Exit codes: 0 matching files found, 1 nothing to fix, 2 refused or unsupported (reason printed), 3 error; `check`: 0 clean, 4 = check found problems; `fix` of many images: 0 every image fixed or with nothing to fix, else the worst of 2 and 3, 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the container, partitions, volumes and the files the rule matches. Changes nothing.
    Inspect {
        /// Disk image (raw/img, VHD, VHDX, VMDK, qcow2) or block device; or a disk in cloud
        /// storage: an HTTPS URL (an Azure page blob's SAS URL), s3://BUCKET/KEY, or
        /// ebs://snap-… (an EBS snapshot).
        image: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Match these files instead of the built-in CrowdStrike rule: a path from the volume
        /// root whose last component may be a glob, e.g. '\Windows\Temp\*.tmp'.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// Load rules from this TOML rule file instead of the built-in CrowdStrike rule (which a
        /// file keeps with include = ["crowdstrike-2024-07-19"]); repeatable. `kaifuku rules
        /// --rule FILE` checks a file and lists its rules.
        #[arg(long = "rule", value_name = "FILE")]
        rule_files: Vec<PathBuf>,
        /// Also look for the registry transaction logs that `fix --txr-logs` deletes
        /// (\Windows\System32\config\TxR\*.TxR.*.regtrans-ms and *.TxR.blf). Only on Windows
        /// Server 2016 or later (build 14393+, read from the SOFTWARE hive); skipped elsewhere,
        /// with the reason. Changes nothing.
        #[arg(long)]
        txr_logs: bool,
        #[command(flatten)]
        keys: keys::KeyArgs,
    },
    /// Delete the matching files as NTFS would, verify, and write the fixed image.
    Fix {
        /// Disk image (raw/img, VHD, VHDX, VMDK, qcow2) or block device; or a disk in cloud
        /// storage: an Azure page blob's SAS URL (with --in-place), s3://BUCKET/KEY or
        /// ebs://snap-… (an EBS snapshot). With --out-dir (or --in-place --undo-dir) any number of
        /// them, and directories: the images directly in each.
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<PathBuf>,
        /// Where to write the fixed image (same format as the input). The input is not modified.
        /// For an S3 object a new object (s3://BUCKET/NEW-KEY); for an EBS snapshot ebs://new, a
        /// new snapshot over it.
        #[arg(
            short = 'o',
            long = "output",
            value_name = "OUT",
            required_unless_present_any = ["in_place", "dry_run", "out_dir"]
        )]
        output: Option<PathBuf>,
        /// Many images: write each fixed image to DIR as NAME-fixed.EXT (several at a time, an
        /// existing file never replaced), then print a summary table (--json: JSON Lines).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "undo", "dry_run", "in_place"])]
        out_dir: Option<PathBuf>,
        /// Many images fixed in place: save each one's undo file in DIR as NAME.EXT.undo.
        #[arg(long, value_name = "DIR", requires = "in_place", conflicts_with_all = ["undo", "dry_run"])]
        undo_dir: Option<PathBuf>,
        /// Many images: how many to fix at a time (default: the number of cores).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// The fixed image's format: `same` as the input (default), or `vhd-fixed`, a fixed VHD
        /// of whole MiB that Azure takes for upload, whatever the input's format. A new file: not
        /// with --in-place or --undo (the input stays as it was and is the way back).
        #[arg(long, value_name = "FORMAT", value_enum, default_value_t = fix_cmd::OutputFormat::Same)]
        output_format: fix_cmd::OutputFormat,
        /// Edit IMAGE itself (a file or block device); needs --undo.
        #[arg(long, conflicts_with = "output")]
        in_place: bool,
        /// For the batch: name a described VMDK's new data files for this final name, while
        /// the descriptor is written under a temporary one.
        #[arg(long, value_name = "NAME", hide = true, requires = "output")]
        data_files_named_for: Option<std::ffi::OsString>,
        /// Save the original bytes of every changed range here (restore with `kaifuku undo`).
        #[arg(long, value_name = "FILE")]
        undo: Option<PathBuf>,
        /// Only show the plan: every byte range that would change and why.
        #[arg(long)]
        dry_run: bool,
        /// Consent to discard an unclean journal (normal after a crash) that kaifuku cannot
        /// replay: reset it and mark the volume dirty so Windows runs chkdsk at the next boot.
        /// Without this such volumes are refused. A journal kaifuku can replay is replayed
        /// instead, with or without this option: the replay keeps what Windows had committed.
        #[arg(long)]
        discard_journal: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Delete files matching this path instead of the built-in CrowdStrike rule, e.g.
        /// '\Windows\Temp\*.tmp'.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// Load rules from this TOML rule file instead of the built-in CrowdStrike rule (which a
        /// file keeps with include = ["crowdstrike-2024-07-19"]); repeatable. `kaifuku rules
        /// --rule FILE` checks a file and lists its rules.
        #[arg(long = "rule", value_name = "FILE")]
        rule_files: Vec<PathBuf>,
        /// Also delete the registry transaction logs (\Windows\System32\config\TxR\*.TxR.*.regtrans-ms
        /// and *.TxR.blf), which may otherwise never replay after the crash. Only on Windows
        /// Server 2016 or later (build 14393+, read from the SOFTWARE hive); skipped elsewhere,
        /// with the reason. Off by default.
        #[arg(long)]
        txr_logs: bool,
        #[command(flatten)]
        keys: keys::KeyArgs,
    },
    /// Check every NTFS volume of the image for broken invariants. Changes nothing.
    ///
    /// Verifies what chkdsk verifies in its file-record and index stages (records, bitmaps, runs,
    /// directory indexes, names), plus $MFTMirr and $LogFile. Exit code 0 clean, 4 = check found
    /// problems, 2 nothing to check (BitLocker, unsupported format, no NTFS volume), 3 error.
    Check {
        /// Disk image (raw/img, VHD or VHDX fixed or dynamic) or block device.
        image: PathBuf,
        /// Print the report as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the structures kaifuku reads and the bytes a fix changes, annotated. Changes nothing.
    ///
    /// The partition table, each NTFS boot sector, the index entries that lead from the root to
    /// the rule's directory and to each matched file, each matched file's MFT record and first
    /// bytes, and every patch of the fix before and after with the field each changed byte is in.
    Explain {
        /// Disk image (raw/img, VHD or VHDX fixed or dynamic) or block device.
        image: PathBuf,
        /// Print the structures as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Explain the fix that deletes files matching this path instead of the built-in
        /// CrowdStrike rule.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// Load rules from this TOML rule file instead of the built-in CrowdStrike rule (which a
        /// file keeps with include = ["crowdstrike-2024-07-19"]); repeatable. `kaifuku rules
        /// --rule FILE` checks a file and lists its rules.
        #[arg(long = "rule", value_name = "FILE")]
        rule_files: Vec<PathBuf>,
        /// Also delete the registry transaction logs (\Windows\System32\config\TxR\*.TxR.*.regtrans-ms
        /// and *.TxR.blf), which may otherwise never replay after the crash. Only on Windows
        /// Server 2016 or later (build 14393+, read from the SOFTWARE hive); skipped elsewhere,
        /// with the reason. Off by default.
        #[arg(long)]
        txr_logs: bool,
        /// Show the fix that resets an unclean journal (as `fix --discard-journal` would).
        #[arg(long)]
        discard_journal: bool,
    },
    /// Write a practice disk: a small Windows-like disk with the faulty channel file, for drills.
    ///
    /// OUT.raw (or .img) gets a raw image, OUT.vhd a fixed VHD. An existing file is never
    /// replaced.
    Demo {
        /// Where to write the practice disk: a new file named *.raw, *.img or *.vhd.
        #[arg(value_name = "OUT")]
        output: PathBuf,
        /// Which disk: gpt (GPT with ESP, MSR, Windows), mbr (System Reserved + Windows, as
        /// older servers), unclean (gpt crashed right after the faulty update: its creation
        /// only in the journal, which the fix replays).
        #[arg(long, value_name = "NAME", default_value = "gpt", value_parser = ["gpt", "mbr", "unclean"])]
        scenario: String,
    },
    /// List the rules a run applies: the built-in ones and those of each --rule FILE. Exits 0,
    /// or with the rule file's error, so it also checks rule files.
    Rules {
        /// A TOML rule file to check and list (repeatable).
        #[arg(long = "rule", value_name = "FILE")]
        rule_files: Vec<PathBuf>,
        /// Print the rules as JSON.
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

/// The rules of one run, in order: the built-in rule unless `--path` or `--rule` replaces it (a
/// rule file keeps it with `include`), the `--path` rule, then each file's rules. A rule file
/// that cannot be read or is malformed exits 3; one that names NTFS system files exits 2, like
/// `--path '\$MFT'`. `--txr-logs` appends the two registry transaction-log rules.
fn rule_set_for(
    path: Option<&str>,
    rule_files: &[PathBuf],
    txr_logs: bool,
) -> Result<RuleSet, Exit> {
    let rules = rule_set_without_options(path, rule_files)?;
    if !txr_logs {
        return Ok(rules);
    }
    rules.with_txr_logs().map_err(|why| {
        say!("the rules cannot run together with --txr-logs: {why}");
        Exit::Error
    })
}

/// The rules of one run before the optional ones (see [`rule_set_for`]).
fn rule_set_without_options(path: Option<&str>, rule_files: &[PathBuf]) -> Result<RuleSet, Exit> {
    if rule_files.is_empty() {
        return rule_for(path).map(RuleSet::from).ok_or(Exit::Error);
    }
    let mut rules: Vec<Rule> = Vec::new();
    let mut include_builtin = false;
    let mut from_files = Vec::new();
    for file in rule_files {
        let parsed = rules_cmd::read_rule_file(file)?;
        include_builtin |= parsed.include.iter().any(|k| k == "crowdstrike-2024-07-19");
        from_files.extend(parsed.rules);
    }
    if include_builtin {
        rules.push(Rule::crowdstrike_2024_07_19());
    }
    if let Some(p) = path {
        rules.push(rule_for(Some(p)).ok_or(Exit::Error)?);
    }
    rules.extend(from_files);
    RuleSet::new(rules).map_err(|why| {
        say!("the rules cannot run together: {why}");
        Exit::Error
    })
}

/// `fix` with `-o` and `--in-place` together: which one was meant?
const OUTPUT_AND_IN_PLACE: &str =
    "--in-place edits the image itself and -o writes a fixed copy: give one of them";
/// `fix` with neither `-o`, `--in-place` nor `--dry-run`.
const NO_OUTPUT: &str =
    "say where to write the fixed image with -o OUT (or use --dry-run to only show the plan)";

/// The explanation for a clap error that `fix`'s own rules caused (`-o` against `--in-place`, `-o`
/// missing), worded as kaifuku always worded it; `None` for any other error, which clap explains.
fn fix_rule_broken(e: &clap::Error) -> Option<&'static str> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::ArgumentConflict | ErrorKind::MissingRequiredArgument
    ) {
        return None;
    }
    let mut cmd = Cli::command();
    // Arguments render as in usage only once their command is built.
    cmd.build();
    let fix = cmd.find_subcommand("fix")?;
    // clap names arguments in its errors as their usage renders them ("--output <OUT>").
    let shown = |id: &str| {
        fix.get_arguments()
            .find(|a| a.get_id() == id)
            .map(|a| a.to_string())
    };
    let strings = |kind: ContextKind| -> Vec<String> {
        match e.get(kind) {
            Some(ContextValue::String(s)) => vec![s.clone()],
            Some(ContextValue::Strings(v)) => v.clone(),
            _ => Vec::new(),
        }
    };
    let output = shown("output")?;
    let in_place = shown("in_place")?;
    match e.kind() {
        ErrorKind::ArgumentConflict => {
            let mut both = strings(ContextKind::InvalidArg);
            both.extend(strings(ContextKind::PriorArg));
            both.sort();
            let mut want = vec![output, in_place];
            want.sort();
            (both == want).then_some(OUTPUT_AND_IN_PLACE)
        }
        // Only when `-o` is all that is missing: a missing IMAGE is clap's to explain.
        ErrorKind::MissingRequiredArgument => {
            (strings(ContextKind::InvalidArg) == [output]).then_some(NO_OUTPUT)
        }
        _ => None,
    }
}

fn main() -> ExitCode {
    run().into()
}

fn run() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // `fix`'s own rules about its arguments: kaifuku's words and exit status, as before
            // clap checked them.
            if let Some(why) = fix_rule_broken(&e) {
                say!("{why}");
                return Exit::Error;
            }
            // Help, version or a usage error: printed by clap, whose failure to print (a closed
            // or full stdout) is an error like any other.
            let code = e.exit_code();
            if let Err(w) = e
                .print()
                .and_then(|()| std::io::Write::flush(&mut std::io::stdout()))
            {
                stdio::stdout_failed(&w, "nothing was done");
                return Exit::Error;
            }
            return if code == 0 {
                Exit::Success
            } else {
                Exit::Usage
            };
        }
    };
    match cli.command {
        Command::Inspect {
            image,
            json,
            path,
            rule_files,
            txr_logs,
            keys,
        } => {
            let rule = match rule_set_for(path.as_deref(), &rule_files, txr_logs) {
                Ok(rules) => rules,
                Err(exit) => return exit,
            };
            let keys = match keys.volume_keys() {
                Ok(k) => k,
                Err(why) => {
                    say!("{why}");
                    return Exit::Error;
                }
            };
            // An EBS snapshot or an S3 object: the report, then what went over the wire.
            let cloud = || -> Result<Option<Exit>, String> {
                let name = image.to_string_lossy();
                let inspect = |source: &dyn kaifuku_io::ReadAt, shown: &str| {
                    inspect_source(
                        source,
                        shown,
                        Vec::new(),
                        &rule,
                        json,
                        &keys,
                        remote::cache_config(),
                    )
                };
                let (exit, t) = if ebs::is_ebs(image.as_os_str()) {
                    let id = ebs::SnapshotId::parse(&name)?;
                    let client = ebs::EbsClient::new(aws::AwsConfig::from_env()?);
                    let snapshot = ebs::EbsSnapshot::open(&client, id.clone())?;
                    (inspect(&snapshot, &id.to_string()), client.traffic())
                } else if s3::is_s3(image.as_os_str()) {
                    let loc = s3::S3Location::parse(&name)?;
                    let client = s3::S3Client::new(aws::AwsConfig::from_env()?);
                    let object = s3::S3Object::open(&client, loc.clone())?;
                    (inspect(&object, &loc.to_string()), client.traffic())
                } else {
                    return Ok(None);
                };
                if !json {
                    let line = format!(
                        "Remote: {} request(s), {} read\n",
                        t.requests,
                        report::size(t.bytes_read)
                    );
                    if let Err(e) = stdio::out(&line) {
                        stdio::stdout_failed(&e, "the report is complete");
                        return Ok(Some(Exit::Error));
                    }
                }
                Ok(Some(exit))
            };
            match cloud() {
                Ok(Some(exit)) => return exit,
                Ok(None) => {}
                Err(e) => {
                    say!("{e}");
                    return Exit::Error;
                }
            }
            if remote::is_url(image.as_os_str()) {
                let url = image.to_string_lossy().into_owned();
                return match remote::HttpSource::open(&url) {
                    Ok(source) => {
                        let shown = source.shown();
                        let exit = inspect_source(
                            &source,
                            &shown,
                            Vec::new(),
                            &rule,
                            json,
                            &keys,
                            remote::cache_config(),
                        );
                        if !json {
                            let t = source.traffic();
                            let line = format!(
                                "Remote: {} request(s), {} read\n",
                                t.requests,
                                report::size(t.bytes_read)
                            );
                            if let Err(e) = stdio::out(&line) {
                                stdio::stdout_failed(&e, "the report is complete");
                                return Exit::Error;
                            }
                        }
                        exit
                    }
                    Err(e) => {
                        say!("cannot open {e}");
                        Exit::Error
                    }
                };
            }
            run_inspect(&image, &rule, json, &keys)
        }
        Command::Fix {
            images,
            output,
            out_dir,
            undo_dir,
            jobs,
            in_place,
            data_files_named_for,
            undo,
            dry_run,
            output_format,
            discard_journal,
            json,
            path,
            rule_files,
            txr_logs,
            keys,
        } => {
            let rule = match rule_set_for(path.as_deref(), &rule_files, txr_logs) {
                Ok(rules) => rules,
                Err(exit) => return exit,
            };
            if out_dir.is_some() || undo_dir.is_some() || images.len() > 1 {
                if out_dir.is_none() && undo_dir.is_none() {
                    say!(
                        "{}",
                        if dry_run {
                            "--dry-run plans one image at a time: give one IMAGE"
                        } else if in_place {
                            "several images fixed in place need --undo-dir DIR for their undo files"
                        } else {
                            "-o names one fixed image: for several images give --out-dir DIR"
                        }
                    );
                    return Exit::Error;
                }
                let mut fix_args: Vec<std::ffi::OsString> = Vec::new();
                if let Some(p) = &path {
                    fix_args.extend(["--path".into(), p.into()]);
                }
                for file in &rule_files {
                    // Each image's run reads the file again: its full path, whatever directory
                    // the run starts in.
                    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
                    fix_args.extend(["--rule".into(), file.into()]);
                }
                if txr_logs {
                    fix_args.push("--txr-logs".into());
                }
                if discard_journal {
                    fix_args.push("--discard-journal".into());
                }
                if output_format == fix_cmd::OutputFormat::VhdFixed {
                    if in_place {
                        say!("{}", fix_cmd::VHD_FIXED_NOT_IN_PLACE);
                        return Exit::Error;
                    }
                    fix_args.extend(["--output-format".into(), "vhd-fixed".into()]);
                }
                return batch::run(batch::BatchArgs {
                    output_format,
                    inputs: images,
                    out_dir,
                    undo_dir,
                    jobs: jobs.map(usize::from),
                    json,
                    fix_args,
                    keys,
                });
            }
            let image = images.into_iter().next().unwrap_or_default();
            let remote_url =
                remote::is_url(image.as_os_str()).then(|| image.to_string_lossy().into_owned());
            let keys = match keys.volume_keys() {
                Ok(k) => k,
                Err(why) => {
                    say!("{why}");
                    return Exit::Error;
                }
            };
            let args = fix_cmd::FixArgs {
                keys,
                image: &image,
                output: output.as_deref(),
                undo: undo.as_deref(),
                in_place,
                data_files_named_for: data_files_named_for.as_deref(),
                dry_run,
                output_format,
                json,
                options: kaifuku_rescue::FixOptions { discard_journal },
            };
            if ebs::is_ebs(image.as_os_str()) {
                return remote_cmd::fix_ebs(&args, &image.to_string_lossy(), rule);
            }
            if s3::is_s3(image.as_os_str()) {
                return remote_cmd::fix_s3(&args, &image.to_string_lossy(), rule);
            }
            match &remote_url {
                Some(url) => remote_cmd::fix(&args, url, rule),
                None => fix_cmd::run(&args, rule),
            }
        }
        Command::Check { image, json } => check_cmd::run(&image, json),
        Command::Explain {
            image,
            json,
            path,
            rule_files,
            txr_logs,
            discard_journal,
        } => {
            let rule = match rule_set_for(path.as_deref(), &rule_files, txr_logs) {
                Ok(rules) => rules,
                Err(exit) => return exit,
            };
            let options = kaifuku_rescue::FixOptions { discard_journal };
            explain_cmd::run(&image, &rule, &options, json)
        }
        Command::Demo { output, scenario } => demo::run(&output, &scenario),
        Command::Rules { rule_files, json } => rules_cmd::run(&rule_files, json),
        Command::Undo {
            image,
            undo_file,
            force,
        } if remote::is_url(image.as_os_str()) => {
            let url = image.to_string_lossy().into_owned();
            match remote_cmd::undo(&url, &undo_file, force) {
                Ok((n, t)) => {
                    let line = format!(
                        "Restored {n} range(s) of {} from {}\nRemote: {} request(s), {} read, {} written\n",
                        remote::shown(&url),
                        undo_file.display(),
                        t.requests,
                        report::size(t.bytes_read),
                        report::size(t.bytes_written)
                    );
                    if let Err(e) = stdio::out(&line) {
                        stdio::stdout_failed(&e, "the disk was restored");
                        return Exit::Error;
                    }
                    Exit::Success
                }
                Err(e) => {
                    say!("undo refused: {e}");
                    Exit::Error
                }
            }
        }
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
                    return Exit::Error;
                }
                Exit::Success
            }
            Err(e) => {
                say!("undo refused: {e}");
                Exit::Error
            }
        },
    }
}

fn run_inspect(
    image: &std::path::Path,
    rule: &RuleSet,
    json: bool,
    keys: &kaifuku_rescue::VolumeKeys,
) -> Exit {
    let source = match FileSource::open(image) {
        Ok(s) => s,
        Err(e) => return crate::source::open_failed(image, &e),
    };
    let data_files = source
        .descriptor()
        .map(|_| {
            source
                .parts()
                .iter()
                .map(|p| p.path.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    inspect_source(
        &source,
        &image.display().to_string(),
        data_files,
        rule,
        json,
        keys,
        CacheConfig::default(),
    )
}

/// Inspects `source` (named `name` in the report) and prints the report.
fn inspect_source<R: kaifuku_io::ReadAt>(
    source: R,
    name: &str,
    data_files: Vec<String>,
    rule: &RuleSet,
    json: bool,
    keys: &kaifuku_rescue::VolumeKeys,
    cache: CacheConfig,
) -> Exit {
    let counted = Counted::new(source);
    let cache = BlockCache::new(&counted, cache);
    let report = inspect_with_keys(&cache, rule, keys);
    let stats = counted.stats();
    let text = if json {
        let doc = report::JsonReport {
            image: name.to_string(),
            data_files,
            report: &report,
            reads: stats,
        };
        serde_json::to_string_pretty(&doc).expect("report serialises") + "\n"
    } else if data_files.is_empty() {
        report::text(name, &report, stats)
    } else {
        // A described disk: the data files are named under the image, then the disk's report.
        let shown = format!(
            "{name}\n            a VMware descriptor; the disk is read from {}",
            data_files.join(", ")
        );
        report::text(&shown, &report, stats)
    };
    if let Err(e) = stdio::out(&text) {
        stdio::stdout_failed(&e, "the report is incomplete");
        return Exit::Error;
    }
    Exit::of_inspect(report.outcome)
}
