//! Rule files: the TOML a user (or anyone who hands a user a file) writes. Input: the file's
//! bytes; the front ends refuse text that is not UTF-8 before parsing, and so does this target.
//!
//! Checked: parsing ends in rules or a typed error, never a panic or a runaway (nesting, size);
//! every rule a file brings makes a rule set with the built-in rule; and no accepted rule can reach
//! an NTFS system file. That last check uses the NTFS crate's own glob matcher (the one inspect
//! runs) with a case table that, like Windows' `$UpCase`, maps only ASCII letters to ASCII, so it
//! judges the rule file checker by a second implementation (the metafile lists are the checker's
//! own: they are data, not logic).
#![no_main]

use kaifuku_ntfs::upcase::UpcaseTable;
use kaifuku_rescue::rule::{Rule, RuleSet};
use kaifuku_rescue::rule_file::{self, EXTEND_METAFILES, ROOT_METAFILES};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn ascii_upcase() -> &'static UpcaseTable {
    static TABLE: OnceLock<UpcaseTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let bytes: Vec<u8> = (0..=u16::MAX)
            .map(|u| match u8::try_from(u) {
                Ok(b) => u16::from(b.to_ascii_uppercase()),
                Err(_) => u,
            })
            .flat_map(u16::to_le_bytes)
            .collect();
        UpcaseTable::from_bytes(&bytes).expect("65536 units")
    })
}

fn units(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn same_name(upcase: &UpcaseTable, a: &str, b: &str) -> bool {
    upcase.cmp_ignore_case(&units(a), &units(b)).is_eq()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = rule_file::parse(text) else {
        return;
    };
    assert!(!file.rules.is_empty() && file.rules.len() <= rule_file::MAX_RULES);
    let upcase = ascii_upcase();
    for rule in &file.rules {
        let components: Vec<&str> = rule.directory[1..]
            .split('\\')
            .filter(|c| !c.is_empty())
            .collect();
        if let Some(first) = components.first() {
            assert!(
                !ROOT_METAFILES.iter().any(|m| same_name(upcase, first, m)),
                "{rule:?} reaches a root metafile"
            );
        } else {
            for m in ROOT_METAFILES {
                assert!(
                    !upcase.glob_match(&units(&rule.pattern), &units(m)),
                    "{rule:?} matches {m}"
                );
            }
        }
        for c in &components {
            assert!(
                !EXTEND_METAFILES.iter().any(|m| same_name(upcase, c, m)),
                "{rule:?} reaches a metafile under $Extend"
            );
        }
        // Matching a hostile glob against a long name stays cheap (the stars are bounded).
        let long: Vec<u16> = units(&"a".repeat(255));
        let _ = upcase.glob_match(&units(&rule.pattern), &long);
        assert!(rule.bad_header_hex.as_ref().is_none_or(|h| h.len() <= 16));
    }
    let mut rules = vec![Rule::crowdstrike_2024_07_19()];
    rules.extend(file.rules);
    if let Err(why) = RuleSet::new(rules) {
        panic!("a parsed rule file makes no rule set: {why}");
    }
});
