//! Rules: a directory, a name pattern and how to judge each match. The built-in rule is the
//! CrowdStrike channel file of 2024-07-19; user rules are the same data (serde), so a user can
//! name another directory and glob.
//!
//! The registry transaction-log rules ([`Rule::registry_txr`]) are optional: off unless asked
//! for ([`RuleSet::with_txr_logs`]), and gated on the Windows build the volume's `SOFTWARE` hive
//! records. **Invariant:** a `.TxR.blf` log and its `.TxR.*.regtrans-ms` containers are deleted
//! together or not at all. Windows replays them as one common log file; a log without its
//! containers (or containers without their log) is worse than either. This holds because both
//! rules come from one switch (`with_txr_logs` appends both, never one), share one gate
//! (`min_windows_build` = [`TXR_MIN_WINDOWS_BUILD`], read once per volume, so both run or both
//! are skipped), and a plan is all or nothing (one refusal or failure anywhere plans nothing).

use kaifuku_ntfs::time::from_utc;
use kaifuku_ntfs::FileDetails;
use serde::{Deserialize, Serialize};

/// Which files are the problem and how to judge each one found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A rule loaded from a rule file: its key and its words in both languages. Absent for
    /// the built-in rules and `--path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRuleText>,
    /// Run only on volumes whose `SOFTWARE` hive records at least this Windows build; a volume
    /// whose build is lower or cannot be read skips the rule, and its report says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_windows_build: Option<u32>,
    /// The switch that turns an optional rule on; absent for rules that run by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<RuleOption>,
}

/// The first Windows build whose registry keeps transaction logs in `config\TxR` that may never
/// replay after a crash: 14393, Windows Server 2016 (and Windows 10 1607).
pub const TXR_MIN_WINDOWS_BUILD: u32 = 14393;

/// The switch that turns an optional rule on (every front end offers it, off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOption {
    /// The registry transaction logs (`--txr-logs` on the command line).
    TxrLogs,
}

impl RuleOption {
    /// The command-line flag that turns the option on.
    pub fn flag(self) -> &'static str {
        match self {
            RuleOption::TxrLogs => "--txr-logs",
        }
    }
}

/// A user rule's own key and words (a rule file gives both languages, always).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRuleText {
    /// The rule's key, unique in its set: `[a-z0-9][a-z0-9-]{0,62}`.
    pub key: String,
    /// What the rule is about, for people.
    pub title: Localized,
    /// What the files are and why deleting them helps.
    pub description: Localized,
}

/// One text in English and Japanese.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localized {
    /// English.
    pub en: String,
    /// Japanese.
    pub ja: String,
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
    /// A rule from a rule file (`--rule`); its key and words are in [`Rule::user`].
    #[serde(rename = "user")]
    User,
    /// The registry transaction-log containers, `config\TxR\*.TxR.*.regtrans-ms` (optional).
    #[serde(rename = "registry-txr-containers")]
    RegistryTxrContainers,
    /// The registry transaction log itself, `config\TxR\*.TxR.blf` (optional).
    #[serde(rename = "registry-txr-log")]
    RegistryTxrLog,
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
            user: None,
            min_windows_build: None,
            option: None,
        }
    }

    /// The registry's transaction logs in `\Windows\System32\config\TxR`: the containers
    /// (`*.TxR.*.regtrans-ms`) and their common log (`*.TxR.blf`), which the Azure repair script
    /// for the 2024-07-19 incident deletes because after the crash they may never replay and
    /// keep the registry from loading. Two rules (one directory and one glob each) behind one
    /// switch and one gate: see the module's invariant. Only on Windows Server 2016 and later
    /// (build [`TXR_MIN_WINDOWS_BUILD`]); no version windows or header: every match goes.
    pub fn registry_txr() -> [Rule; 2] {
        let txr = |id, title: &str, pattern: &str| Rule {
            id,
            title: title.into(),
            directory: "\\Windows\\System32\\config\\TxR".into(),
            pattern: pattern.into(),
            bad_header_hex: None,
            faulty_modified: None,
            fixed_modified_from: None,
            windows_only: true,
            user: None,
            min_windows_build: Some(TXR_MIN_WINDOWS_BUILD),
            option: Some(RuleOption::TxrLogs),
        };
        [
            txr(
                RuleId::RegistryTxrContainers,
                "registry transaction-log containers",
                "*.TxR.*.regtrans-ms",
            ),
            txr(
                RuleId::RegistryTxrLog,
                "registry transaction log",
                "*.TxR.blf",
            ),
        ]
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
            user: None,
            min_windows_build: None,
            option: None,
        })
    }

    /// The rule's key, unique in a [`RuleSet`]: the built-in rule's id, `path`, or a user
    /// rule's own key.
    pub fn key(&self) -> &str {
        match (self.id, &self.user) {
            (RuleId::CrowdStrike20240719, _) => "crowdstrike-2024-07-19",
            (RuleId::Path, _) => "path",
            (RuleId::RegistryTxrContainers, _) => "registry-txr-containers",
            (RuleId::RegistryTxrLog, _) => "registry-txr-log",
            (RuleId::User, Some(user)) => &user.key,
            (RuleId::User, None) => "user",
        }
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

    /// Whether the file's first bytes begin with the rule's known-bad header (`None`: the rule
    /// knows none). A rule's header is at most the eight bytes inspect reads, so for the
    /// built-in rule's eight this is equality.
    pub fn header_matches(&self, f: &FileDetails) -> Option<bool> {
        self.bad_header_hex.as_ref().map(|h| {
            f.header_hex
                .get(..h.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(h))
        })
    }
}

/// The rules one run applies, in order; the first is the primary rule, the one a report's
/// `rule` fields name (so a run with the built-in rule alone reports exactly as before rule
/// sets existed). Keys are unique.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct RuleSet(Vec<Rule>);

/// Why a list of rules is no rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSetError {
    /// No rule at all.
    Empty,
    /// More rules than a set holds.
    TooMany {
        /// How many were given.
        count: usize,
    },
    /// Two rules share a key.
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A rule a rule file could not hold (a system file, a bad directory or glob ...): rules
    /// that arrive as data (the page's worker gets them in a message) are checked again here.
    Invalid {
        /// Why.
        error: crate::rule_file::RuleFileError,
    },
}

impl std::fmt::Display for RuleSetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSetError::Empty => f.write_str("no rule to run"),
            RuleSetError::TooMany { count } => write!(
                f,
                "{count} rules given; at most {} run at once, so split them over several runs",
                RuleSet::MAX_RULES
            ),
            RuleSetError::DuplicateKey { key } => {
                write!(f, "two rules are named {key:?}; give each rule its own id")
            }
            RuleSetError::Invalid { error } => write!(f, "{error}"),
        }
    }
}

impl RuleSet {
    /// Most rules one run applies (each costs a directory walk, and a `$MFT` scan when it finds
    /// nothing).
    pub const MAX_RULES: usize = 64;

    /// A set of `rules`, in order: 1 to [`RuleSet::MAX_RULES`] rules with unique keys, each one
    /// (but a `--path` rule, which the user typed for this run) passing
    /// [`crate::rule_file::validate`], wherever it came from.
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, RuleSetError> {
        if rules.is_empty() {
            return Err(RuleSetError::Empty);
        }
        if rules.len() > Self::MAX_RULES {
            return Err(RuleSetError::TooMany { count: rules.len() });
        }
        for (i, r) in rules.iter().enumerate() {
            if r.id != RuleId::Path {
                crate::rule_file::validate(r).map_err(|error| RuleSetError::Invalid { error })?;
            }
            if rules[..i].iter().any(|o| o.key() == r.key()) {
                return Err(RuleSetError::DuplicateKey {
                    key: r.key().to_string(),
                });
            }
        }
        Ok(RuleSet(rules))
    }

    /// The built-in rule alone.
    pub fn builtin() -> RuleSet {
        RuleSet(vec![Rule::crowdstrike_2024_07_19()])
    }

    /// The first rule: the one the report's `rule` fields name.
    pub fn primary(&self) -> &Rule {
        &self.0[0]
    }

    /// The rules, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Rule> {
        self.0.iter()
    }

    /// Rule `index` of the set.
    pub fn get(&self, index: usize) -> Option<&Rule> {
        self.0.get(index)
    }

    /// How many rules the set holds (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never: a set holds at least one rule.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The set with the registry transaction-log rules appended (both, in one step: see the
    /// module's invariant). Fails when the set would hold too many rules or already holds them.
    pub fn with_txr_logs(self) -> Result<RuleSet, RuleSetError> {
        let mut rules = self.0;
        rules.extend(Rule::registry_txr());
        RuleSet::new(rules)
    }

    /// Whether the set is one rule alone (reports then look as they did before rule sets).
    pub fn is_single(&self) -> bool {
        self.0.len() == 1
    }
}

impl From<Rule> for RuleSet {
    fn from(rule: Rule) -> RuleSet {
        RuleSet(vec![rule])
    }
}

impl From<&Rule> for RuleSet {
    fn from(rule: &Rule) -> RuleSet {
        RuleSet(vec![rule.clone()])
    }
}

impl From<&RuleSet> for RuleSet {
    fn from(rules: &RuleSet) -> RuleSet {
        rules.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::{Rule, RuleId, RuleOption, RuleSet, RuleSetError, TXR_MIN_WINDOWS_BUILD};

    #[test]
    fn txr_logs_append_both_rules_behind_one_switch_and_one_gate() {
        let set = RuleSet::builtin().with_txr_logs().unwrap();
        let keys: Vec<&str> = set.iter().map(Rule::key).collect();
        assert_eq!(
            keys,
            [
                "crowdstrike-2024-07-19",
                "registry-txr-containers",
                "registry-txr-log"
            ]
        );
        assert_eq!(set.primary().id, RuleId::CrowdStrike20240719);
        for rule in set.iter().skip(1) {
            assert_eq!(rule.directory, r"\Windows\System32\config\TxR");
            assert_eq!(rule.min_windows_build, Some(TXR_MIN_WINDOWS_BUILD));
            assert_eq!(rule.option, Some(RuleOption::TxrLogs));
            assert!(rule.windows_only);
        }
        assert_eq!(set.get(1).unwrap().pattern, "*.TxR.*.regtrans-ms");
        assert_eq!(set.get(2).unwrap().pattern, "*.TxR.blf");
        assert_eq!(TXR_MIN_WINDOWS_BUILD, 14393);
        // Asked for twice: refused, not appended again.
        assert_eq!(
            set.with_txr_logs().unwrap_err(),
            RuleSetError::DuplicateKey {
                key: "registry-txr-containers".into()
            }
        );
        // A set with no room left for both gets neither.
        let full: Vec<Rule> = (0..RuleSet::MAX_RULES - 1)
            .map(|k| Rule::for_path(&format!("\\d{k}\\*.x")).unwrap())
            .enumerate()
            .map(|(k, mut r)| {
                r.id = RuleId::User;
                r.user = Some(super::UserRuleText {
                    key: format!("r{k}"),
                    title: super::Localized {
                        en: "t".into(),
                        ja: "t".into(),
                    },
                    description: super::Localized {
                        en: "d".into(),
                        ja: "d".into(),
                    },
                });
                r
            })
            .collect();
        let full = RuleSet::new(full).unwrap();
        assert!(matches!(
            full.with_txr_logs(),
            Err(RuleSetError::TooMany { count }) if count == RuleSet::MAX_RULES + 1
        ));
    }

    #[test]
    fn the_builtin_rule_serialises_without_the_new_fields() {
        let json = serde_json::to_value(Rule::crowdstrike_2024_07_19()).unwrap();
        let fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert!(!fields.contains(&"min_windows_build"), "{json}");
        assert!(!fields.contains(&"option"), "{json}");
        let txr = serde_json::to_value(&Rule::registry_txr()[1]).unwrap();
        assert_eq!(txr["id"], "registry-txr-log");
        assert_eq!(txr["min_windows_build"], 14393);
        assert_eq!(txr["option"], "txr_logs");
        // And reads back as itself.
        let back: Rule = serde_json::from_value(txr).unwrap();
        assert_eq!(back.min_windows_build, Some(14393));
        assert_eq!(back.option, Some(RuleOption::TxrLogs));
    }
}
