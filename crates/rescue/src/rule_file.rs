//! Rule files: the TOML a user writes for the next incident of this kind (a directory, one name
//! glob, optional header bytes and time windows, words in English and Japanese). Parsing is pure:
//! the front ends read the file (after checking its size) and hand over the text.
//!
//! A rule file is untrusted input. Everything is checked before a rule exists: the size, the
//! syntax (nesting is bounded by the parser), unknown fields, the id, the directory and the glob
//! (never an NTFS system file), the header, the times and the texts. Each refusal is a
//! [`RuleFileError`] that names the rule and says what to change.

use crate::rule::{Localized, Rule, RuleId, UserRuleText};
use kaifuku_ntfs::time::from_utc;
use serde::Deserialize;

pub use crate::vocabulary::{DirectoryFault, GlobFault, RuleFileError};

/// Largest rule file read (checked before parsing).
pub const MAX_FILE_BYTES: usize = 64 * 1024;
/// Most rules in one file.
pub const MAX_RULES: usize = 32;
/// Most `*` in one glob (each one makes matching slower on hostile names).
pub const MAX_STARS: usize = 8;
/// Most header bytes (inspect reads a file's first eight).
pub const MAX_HEADER_BYTES: usize = 8;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// The NTFS metafiles in the root directory: no rule may name them.
pub const ROOT_METAFILES: [&str; 12] = [
    "$MFT", "$MFTMirr", "$LogFile", "$Volume", "$AttrDef", "$Bitmap", "$Boot", "$BadClus",
    "$Secure", "$UpCase", "$Extend", "$Quota",
];
/// The metafiles under `\$Extend`: no directory component may be one of them.
pub const EXTEND_METAFILES: [&str; 9] = [
    "$ObjId",
    "$Reparse",
    "$UsnJrnl",
    "$RmMetadata",
    "$Txf",
    "$TxfLog",
    "$Tops",
    "$Repair",
    "$Deleted",
];

/// A parsed rule file: built-in rules to keep, and the user's rules, in the file's order.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// Keys of built-in rules the file keeps in the set (`include = [...]`).
    pub include: Vec<String>,
    /// The file's rules.
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    format: i64,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    rule: Vec<RuleText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    id: String,
    directory: String,
    name: String,
    #[serde(default = "yes")]
    windows_only: bool,
    header: Option<String>,
    faulty: Option<WindowText>,
    fixed_from: Option<toml::value::Datetime>,
    title: LocalizedText,
    description: LocalizedText,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowText {
    from: toml::value::Datetime,
    to: toml::value::Datetime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalizedText {
    en: Option<String>,
    ja: Option<String>,
}

/// The keys of the built-in rules a rule file may `include`.
pub const BUILTIN_KEYS: [&str; 1] = ["crowdstrike-2024-07-19"];

/// The keys of the registry transaction-log rules: built in, but never included by a file (they
/// come with `--txr-logs`, both at once).
pub const TXR_KEYS: [&str; 2] = ["registry-txr-containers", "registry-txr-log"];

/// Parses and checks a rule file's text.
pub fn parse(text: &str) -> Result<RuleFile, RuleFileError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(RuleFileError::TooLarge {
            bytes: text.len() as u64,
        });
    }
    let file: FileText = toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((0, 0), |span| line_column(text, span.start));
        RuleFileError::Syntax {
            line,
            column,
            detail: e.message().trim().to_string(),
        }
    })?;
    if file.format != 1 {
        return Err(RuleFileError::Format {
            format: file.format,
        });
    }
    for name in &file.include {
        if !BUILTIN_KEYS.contains(&name.as_str()) {
            return Err(RuleFileError::UnknownInclude { name: name.clone() });
        }
    }
    if file.rule.is_empty() {
        return Err(RuleFileError::NoRules);
    }
    if file.rule.len() > MAX_RULES {
        return Err(RuleFileError::TooManyRules {
            count: file.rule.len(),
        });
    }
    let mut rules: Vec<Rule> = Vec::new();
    for text in file.rule {
        let rule = rule_from(text)?;
        if rules.iter().any(|r| r.key() == rule.key()) {
            return Err(RuleFileError::DuplicateId {
                rule: rule.key().to_string(),
            });
        }
        rules.push(rule);
    }
    Ok(RuleFile {
        include: file.include,
        rules,
    })
}

/// Line and column (from 1) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

fn rule_from(text: RuleText) -> Result<Rule, RuleFileError> {
    let id = text.id;
    let id_ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if !id_ok {
        return Err(RuleFileError::BadId { rule: id });
    }
    // The registry transaction-log rules' keys are taken too (they come with `--txr-logs`, both
    // at once, never from a file).
    let taken = ["path", "user"];
    if BUILTIN_KEYS.contains(&id.as_str())
        || taken.contains(&id.as_str())
        || TXR_KEYS.contains(&id.as_str())
    {
        return Err(RuleFileError::BuiltinId { rule: id });
    }
    let header = match text.header {
        None => None,
        Some(h) => {
            Some(header_hex(&h).ok_or_else(|| RuleFileError::BadHeader { rule: id.clone() })?)
        }
    };
    let ticks = |t: &toml::value::Datetime| -> Result<u64, RuleFileError> {
        utc_ticks(t).ok_or_else(|| RuleFileError::BadTime {
            rule: id.clone(),
            time: t.to_string(),
        })
    };
    let faulty = match &text.faulty {
        None => None,
        Some(w) => Some((ticks(&w.from)?, ticks(&w.to)?)),
    };
    let fixed_from = text.fixed_from.as_ref().map(ticks).transpose()?;
    if let Some((from, to)) = faulty {
        let fixed_inside = fixed_from.is_some_and(|f| f >= from && f < to);
        if to <= from || fixed_inside {
            return Err(RuleFileError::WindowOrder { rule: id });
        }
    }
    let title = localized(&id, text.title, MAX_TITLE_CHARS)?;
    let description = localized(&id, text.description, MAX_DESCRIPTION_CHARS)?;
    let rule = Rule {
        id: RuleId::User,
        title: title.en.clone(),
        directory: text.directory,
        pattern: text.name,
        bad_header_hex: header,
        faulty_modified: faulty,
        fixed_modified_from: fixed_from,
        windows_only: text.windows_only,
        user: Some(UserRuleText {
            key: id,
            title,
            description,
        }),
        min_windows_build: None,
        option: None,
    };
    validate(&rule)?;
    Ok(rule)
}

/// Both languages, each within `max` characters and without control characters but newlines.
fn localized(id: &str, text: LocalizedText, max: usize) -> Result<Localized, RuleFileError> {
    let (Some(en), Some(ja)) = (text.en, text.ja) else {
        return Err(RuleFileError::MissingLanguage {
            rule: id.to_string(),
        });
    };
    if en.trim().is_empty() || ja.trim().is_empty() {
        return Err(RuleFileError::MissingLanguage {
            rule: id.to_string(),
        });
    }
    let fits =
        |s: &str| s.chars().count() <= max && !s.chars().any(|c| c.is_control() && c != '\n');
    if !fits(&en) || !fits(&ja) {
        return Err(RuleFileError::TextTooLong {
            rule: id.to_string(),
        });
    }
    Ok(Localized { en, ja })
}

/// `"de ad be ef"` or `"deadbeef"` as lowercase hex without spaces: 1 to 8 whole bytes.
fn header_hex(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| *c != ' ').collect();
    let ok = !hex.is_empty()
        && hex.len().is_multiple_of(2)
        && hex.len() <= 2 * MAX_HEADER_BYTES
        && hex.chars().all(|c| c.is_ascii_hexdigit());
    ok.then(|| hex.to_ascii_lowercase())
}

/// A TOML offset date-time as NTFS ticks (UTC); `None` for a local date-time, a date or a time.
fn utc_ticks(t: &toml::value::Datetime) -> Option<u64> {
    let (date, time, offset) = (t.date?, t.time?, t.offset?);
    let minutes: i64 = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => minutes.into(),
    };
    let local = from_utc(
        date.year.into(),
        date.month.into(),
        date.day.into(),
        time.hour.into(),
        time.minute.into(),
        time.second.unwrap_or(0).into(),
    ) as i64;
    // Local time = UTC + offset.
    let utc = local.checked_sub(minutes.checked_mul(60 * 10_000_000)?)?;
    u64::try_from(utc).ok()
}

fn is_system_name(name: &str, list: &[&str]) -> Option<String> {
    list.iter()
        .find(|m| m.eq_ignore_ascii_case(name))
        .map(|m| m.to_string())
}

/// Checks a user rule's directory and glob: absolute, `\`-separated plain components, one glob,
/// and never an NTFS system file. (The edit layer refuses system records too; this refuses the
/// rule before it runs.)
pub fn validate(rule: &Rule) -> Result<(), RuleFileError> {
    let id = rule.key().to_string();
    let bad_dir = |why: DirectoryFault| RuleFileError::BadDirectory {
        rule: id.clone(),
        why,
    };
    let dir = &rule.directory;
    if !dir.starts_with('\\') {
        return Err(bad_dir(DirectoryFault::NotFromRoot));
    }
    if dir.chars().count() > 1024 {
        return Err(bad_dir(DirectoryFault::TooLong));
    }
    let components: Vec<&str> = if dir == "\\" {
        Vec::new()
    } else {
        dir[1..].split('\\').collect()
    };
    if components.len() > 32 {
        return Err(bad_dir(DirectoryFault::TooManyComponents));
    }
    if let Some(name) = components
        .first()
        .and_then(|c| is_system_name(c, &ROOT_METAFILES))
    {
        return Err(RuleFileError::NamesSystemFile { rule: id, name });
    }
    for c in &components {
        if c.is_empty() || *c == "." || *c == ".." {
            return Err(bad_dir(DirectoryFault::EmptyOrDotComponent));
        }
        if c.contains([':', '/', '*', '?']) || c.chars().any(char::is_control) {
            return Err(bad_dir(DirectoryFault::ForbiddenCharacter));
        }
        if c.encode_utf16().count() > 255 {
            return Err(bad_dir(DirectoryFault::ComponentTooLong));
        }
        if let Some(name) = is_system_name(c, &EXTEND_METAFILES) {
            return Err(RuleFileError::NamesSystemFile { rule: id, name });
        }
    }
    let bad_glob = |why: GlobFault| RuleFileError::BadGlob {
        rule: id.clone(),
        why,
    };
    let glob = &rule.pattern;
    if glob.is_empty() {
        return Err(bad_glob(GlobFault::Empty));
    }
    if glob.contains(['\\', '/', ':']) || glob.chars().any(char::is_control) {
        return Err(bad_glob(GlobFault::Separator));
    }
    if glob.encode_utf16().count() > 255 {
        return Err(bad_glob(GlobFault::TooLong));
    }
    if glob.matches('*').count() > MAX_STARS {
        return Err(bad_glob(GlobFault::TooManyStars));
    }
    if components.is_empty() {
        if let Some(name) = ROOT_METAFILES.iter().find(|m| glob_matches(glob, m)) {
            return Err(RuleFileError::NamesSystemFile {
                rule: id,
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

/// `*`/`?` glob matching, case-insensitive for ASCII (enough for the metafiles' ASCII names).
fn glob_matches(glob: &str, name: &str) -> bool {
    let g: Vec<char> = glob.chars().map(|c| c.to_ascii_uppercase()).collect();
    let n: Vec<char> = name.chars().map(|c| c.to_ascii_uppercase()).collect();
    let (mut gi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ni;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
