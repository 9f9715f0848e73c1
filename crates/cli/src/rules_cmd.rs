//! `kaifuku rules`: lists the rules a run applies (the built-in ones and each rule file's), and
//! reads rule files for every command that takes `--rule FILE`.

use crate::exit::Exit;
use crate::stdio;
use kaifuku_ntfs::time::format_utc;
use kaifuku_rescue::rule_file::{self, RuleFile, RuleFileError};
use kaifuku_rescue::Rule;
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Reads and checks the rule file `file`: its size before its text, then the rules. Says why
/// it is refused and returns the exit status: 2 for a rule that names NTFS system files (like
/// `--path '\$MFT'`), 3 for a file that cannot be read or is malformed.
pub fn read_rule_file(file: &Path) -> Result<RuleFile, Exit> {
    let cannot_read = |e: std::io::Error| {
        say!(
            "rule file {}: cannot read it: {e}; check the path and its permissions",
            file.display()
        );
        Exit::Error
    };
    let opened = std::fs::File::open(file).map_err(cannot_read)?;
    let limit = rule_file::MAX_FILE_BYTES as u64;
    let mut bytes = Vec::new();
    // One byte past the limit tells a file that is too large without reading it all.
    opened
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    let refused = |why: RuleFileError| {
        say!("rule file {}: {why}", file.display());
        if matches!(why, RuleFileError::NamesSystemFile { .. }) {
            Exit::Refused
        } else {
            Exit::Error
        }
    };
    if bytes.len() as u64 > limit {
        let size = std::fs::metadata(file).map_or(bytes.len() as u64, |m| m.len());
        return Err(refused(RuleFileError::TooLarge { bytes: size }));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        say!(
            "rule file {}: not UTF-8 text; save it as UTF-8",
            file.display()
        );
        return Err(Exit::Error);
    };
    rule_file::parse(&text).map_err(refused)
}

/// One rule as `kaifuku rules` lists it.
#[derive(Serialize)]
struct Listed {
    key: String,
    /// Where it comes from: "built-in" or the rule file's path.
    source: String,
    /// Whether a run applies it without being asked.
    on_by_default: bool,
    /// The flag that turns it on, for a rule that is off by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    needs_flag: Option<&'static str>,
    /// The first Windows build it runs on (read from the SOFTWARE hive).
    #[serde(skip_serializing_if = "Option::is_none")]
    min_windows_build: Option<u32>,
    target: String,
    windows_only: bool,
    header: Option<String>,
    faulty_from: Option<String>,
    faulty_to: Option<String>,
    fixed_from: Option<String>,
    title: String,
    description: Option<String>,
}

fn listed(rule: &Rule, source: String) -> Listed {
    Listed {
        key: rule.key().to_string(),
        source,
        on_by_default: rule.option.is_none(),
        needs_flag: rule.option.map(|o| o.flag()),
        min_windows_build: rule.min_windows_build,
        target: rule.target(),
        windows_only: rule.windows_only,
        header: rule.bad_header_hex.clone(),
        faulty_from: rule.faulty_modified.map(|(from, _)| format_utc(from)),
        faulty_to: rule.faulty_modified.map(|(_, to)| format_utc(to)),
        fixed_from: rule.fixed_modified_from.map(format_utc),
        title: rule
            .user
            .as_ref()
            .map_or(rule.title.clone(), |u| u.title.en.clone()),
        description: rule.user.as_ref().map(|u| u.description.en.clone()),
    }
}

/// Lists the built-in rule, the rules of `files`, then the built-in rules that are off by
/// default; the first file that is refused ends the run with its exit status.
pub fn run(files: &[PathBuf], json: bool) -> Exit {
    let mut rules = vec![listed(&Rule::crowdstrike_2024_07_19(), "built-in".into())];
    for file in files {
        match read_rule_file(file) {
            Ok(parsed) => rules.extend(
                parsed
                    .rules
                    .iter()
                    .map(|r| listed(r, file.display().to_string())),
            ),
            Err(exit) => return exit,
        }
    }
    rules.extend(
        Rule::registry_txr()
            .iter()
            .map(|r| listed(r, "built-in".into())),
    );
    let text = if json {
        serde_json::to_string_pretty(&rules).expect("rules serialise") + "\n"
    } else {
        let mut o = String::new();
        for r in &rules {
            o.push_str(&format!("{}  ({})\n", r.key, r.source));
            o.push_str(&format!("  {}\n", r.title));
            o.push_str(&format!("  target      {}\n", r.target));
            o.push_str(&format!(
                "  applies     {}{}{}\n",
                match r.needs_flag {
                    None => "by default".to_string(),
                    Some(flag) => format!("off by default, with {flag}"),
                },
                if r.windows_only {
                    ", on volumes holding \\Windows\\System32"
                } else {
                    ", on every NTFS volume"
                },
                r.min_windows_build
                    .map(|b| format!(" whose SOFTWARE hive records build {b} or later"))
                    .unwrap_or_default()
            ));
            if let Some(h) = &r.header {
                o.push_str(&format!("  header      {h}\n"));
            }
            if let (Some(from), Some(to)) = (&r.faulty_from, &r.faulty_to) {
                o.push_str(&format!("  faulty      modified {from} to {to}\n"));
            }
            if let Some(from) = &r.fixed_from {
                o.push_str(&format!("  fixed       modified {from} or later\n"));
            }
            if let Some(d) = &r.description {
                o.push_str(&format!("  {d}\n"));
            }
        }
        o
    };
    if let Err(e) = stdio::out(&text) {
        stdio::stdout_failed(&e, "the list is incomplete");
        return Exit::Error;
    }
    Exit::Success
}
