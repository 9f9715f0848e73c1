//! Rules: a directory, a name pattern and how to judge each match. The built-in rule is the
//! CrowdStrike channel file of 2024-07-19; user rules are the same data (serde), so a user can
//! name another directory and glob.

use kaifuku_ntfs::time::from_utc;
use kaifuku_ntfs::FileDetails;
use serde::{Deserialize, Serialize};

/// Which files are the problem and how to judge each one found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    /// Which rule this is; serialised as a stable identifier ("crowdstrike-2024-07-19", "path").
    pub id: RuleId,
    /// A title for people.
    pub title: String,
    /// Directory from the volume root, `\`-separated, matched case-insensitively.
    pub directory: String,
    /// File-name glob (`*`, `?`), matched case-insensitively with the volume's `$UpCase`.
    pub pattern: String,
    /// Header bytes (hex) that mark the known-bad content, if the rule knows them.
    pub bad_header_hex: Option<String>,
    /// Version windows by last-modified time (UTC, NTFS ticks): `[from, to)` = faulty.
    pub faulty_modified: Option<(u64, u64)>,
    /// Modified at or after this = the fixed version.
    pub fixed_modified_from: Option<u64>,
    /// Run only on volumes that hold `\Windows\System32` (the built-in rule); a user's path
    /// applies to every NTFS volume.
    #[serde(default)]
    pub windows_only: bool,
}

/// Which rule a [`Rule`] is: a front end words its title from this (in any language), never from
/// the English [`Rule::title`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleId {
    /// The built-in rule: the CrowdStrike channel file 291 of 2024-07-19.
    #[serde(rename = "crowdstrike-2024-07-19")]
    CrowdStrike20240719,
    /// Files a user chose by path (`--path`).
    #[serde(rename = "path")]
    Path,
}

/// Which version of a matching file it is, judged by its last-modified time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The faulty version (04:09 UTC for the 2024-07-19 rule).
    Faulty,
    /// The fixed version (05:27 UTC or later).
    Fixed,
    /// Neither time window: an older channel file or altered timestamps.
    Unknown,
    /// The rule knows no versions (a user-chosen path).
    #[serde(rename = "none")]
    NotApplicable,
}

impl Rule {
    /// `\Windows\System32\drivers\CrowdStrike\C-00000291*.sys`, the file behind the 2024-07-19
    /// `PAGE_FAULT_IN_NONPAGED_AREA` boot loop. The faulty version is timestamped 04:09 UTC, the
    /// fixed one 05:27 UTC or later; CrowdStrike's recovery tooling recognises the faulty content by
    /// its first eight bytes `AA AA AA AA 01 00 23 01`.
    pub fn crowdstrike_2024_07_19() -> Rule {
        Rule {
            id: RuleId::CrowdStrike20240719,
            title: "CrowdStrike channel file 291 (2024-07-19)".into(),
            directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
            pattern: "C-00000291*.sys".into(),
            bad_header_hex: Some("aaaaaaaa01002301".into()),
            faulty_modified: Some((
                from_utc(2024, 7, 19, 4, 9, 0),
                from_utc(2024, 7, 19, 4, 10, 0),
            )),
            fixed_modified_from: Some(from_utc(2024, 7, 19, 5, 27, 0)),
            windows_only: true,
        }
    }

    /// A rule for a user-chosen path: `\dir\sub\glob`.
    pub fn for_path(path: &str) -> Option<Rule> {
        let p = path.replace('/', "\\");
        let (dir, pattern) = p.rsplit_once('\\')?;
        if pattern.is_empty() {
            return None;
        }
        Some(Rule {
            id: RuleId::Path,
            title: "files chosen by path".into(),
            directory: if dir.is_empty() {
                "\\".into()
            } else {
                dir.into()
            },
            pattern: pattern.into(),
            bad_header_hex: None,
            faulty_modified: None,
            fixed_modified_from: None,
            windows_only: false,
        })
    }

    /// The rule's target as one path, e.g. `\Windows\...\C-00000291*.sys` or `\1.txt`.
    pub fn target(&self) -> String {
        format!(
            "{}\\{}",
            self.directory.trim_end_matches('\\'),
            self.pattern
        )
    }

    /// Judges a matching file by its last-modified time.
    pub fn verdict(&self, f: &FileDetails) -> Verdict {
        if self.faulty_modified.is_none() && self.fixed_modified_from.is_none() {
            return Verdict::NotApplicable;
        }
        if let Some((from, to)) = self.faulty_modified {
            if f.modified_ticks >= from && f.modified_ticks < to {
                return Verdict::Faulty;
            }
        }
        if let Some(from) = self.fixed_modified_from {
            if f.modified_ticks >= from {
                return Verdict::Fixed;
            }
        }
        Verdict::Unknown
    }

    /// Whether the file's first bytes are the rule's known-bad header (`None`: the rule knows
    /// none).
    pub fn header_matches(&self, f: &FileDetails) -> Option<bool> {
        self.bad_header_hex
            .as_ref()
            .map(|h| f.header_hex.eq_ignore_ascii_case(h))
    }
}
