use super::*;
use crate::rule::RuleSet;

/// The example rule file of the README.
const EXAMPLE: &str = r#"format = 1
include = ["crowdstrike-2024-07-19"]
[[rule]]
id = "contoso-agent-2025-03-02"
directory = '\ProgramData\Contoso\Agent\Channels'
name = "CH-0042*.bin"
windows_only = true
header = "de ad be ef 01 00"
faulty = { from = 2025-03-02T04:09:00Z, to = 2025-03-02T04:10:00Z }
fixed_from = 2025-03-02T05:27:00Z
[rule.title]
en = "Contoso agent channel file 42 (2025-03-02)"
ja = "Contoso エージェントのチャネルファイル 42(2025-03-02)"
[rule.description]
en = "The channel file behind the 2025-03-02 boot loop; deleting it lets Windows start."
ja = "2025-03-02 の起動ループの原因となったチャネルファイルです。削除すると Windows が起動します。"
"#;

/// A file with one rule whose `field = value` lines replace the example's.
fn with(directory: &str, name: &str, extra: &str) -> String {
    format!(
        "format = 1\n[[rule]]\nid = \"r\"\ndirectory = '{directory}'\nname = '{name}'\n{extra}\n[rule.title]\nen = \"t\"\nja = \"ち\"\n[rule.description]\nen = \"d\"\nja = \"せ\"\n"
    )
}

fn err(text: &str) -> RuleFileError {
    parse(text).expect_err("refused")
}

#[test]
fn the_example_parses_to_its_rule() {
    let file = parse(EXAMPLE).unwrap();
    assert_eq!(file.include, ["crowdstrike-2024-07-19"]);
    let [rule] = file.rules.as_slice() else {
        panic!("one rule")
    };
    assert_eq!(rule.id, RuleId::User);
    assert_eq!(rule.key(), "contoso-agent-2025-03-02");
    assert_eq!(rule.directory, "\\ProgramData\\Contoso\\Agent\\Channels");
    assert_eq!(rule.pattern, "CH-0042*.bin");
    assert_eq!(rule.bad_header_hex.as_deref(), Some("deadbeef0100"));
    assert_eq!(
        rule.faulty_modified,
        Some((
            from_utc(2025, 3, 2, 4, 9, 0),
            from_utc(2025, 3, 2, 4, 10, 0)
        ))
    );
    assert_eq!(
        rule.fixed_modified_from,
        Some(from_utc(2025, 3, 2, 5, 27, 0))
    );
    assert!(rule.windows_only);
    let user = rule.user.as_ref().unwrap();
    assert_eq!(user.title.en, "Contoso agent channel file 42 (2025-03-02)");
    assert!(user.description.ja.contains("起動ループ"));
}

#[test]
fn offsets_are_converted_to_utc() {
    let text = with(
        "\\a",
        "*.bin",
        "faulty = { from = 2025-03-02T13:09:00+09:00, to = 2025-03-02T04:10:00Z }",
    );
    let rule = &parse(&text).unwrap().rules[0];
    assert_eq!(
        rule.faulty_modified.unwrap().0,
        from_utc(2025, 3, 2, 4, 9, 0)
    );
}

#[test]
fn file_level_refusals() {
    let big = format!("{EXAMPLE}#{}", "x".repeat(MAX_FILE_BYTES));
    assert!(matches!(err(&big), RuleFileError::TooLarge { .. }));
    let deep = format!("a = {}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(matches!(err(&deep), RuleFileError::Syntax { .. }));
    let unknown = EXAMPLE.replace("windows_only", "windows_onyl");
    match err(&unknown) {
        RuleFileError::Syntax { line, detail, .. } => {
            assert_eq!(line, 7, "{detail}");
            assert!(detail.contains("windows_onyl"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err(&EXAMPLE.replace("format = 1", "format = 2")),
        RuleFileError::Format { format: 2 }
    );
    assert_eq!(err("format = 1\n"), RuleFileError::NoRules);
    let rule = with("\\a", "*.bin", "");
    let body = rule.split_once("[[rule]]").unwrap().1;
    let many = format!(
        "format = 1\n{}",
        (0..33)
            .map(|i| format!(
                "[[rule]]{}",
                body.replace("id = \"r\"", &format!("id = \"r{i}\""))
            ))
            .collect::<String>()
    );
    assert_eq!(err(&many), RuleFileError::TooManyRules { count: 33 });
    let twice = format!("format = 1\n[[rule]]{body}[[rule]]{body}");
    assert_eq!(err(&twice), RuleFileError::DuplicateId { rule: "r".into() });
    assert_eq!(
        err(&EXAMPLE.replace("\"contoso-agent-2025-03-02\"", "\"crowdstrike-2024-07-19\"")),
        RuleFileError::BuiltinId {
            rule: "crowdstrike-2024-07-19".into()
        }
    );
    // The registry transaction-log rules' keys are taken, and cannot be included.
    for key in ["registry-txr-containers", "registry-txr-log"] {
        assert_eq!(
            err(&EXAMPLE.replace("\"contoso-agent-2025-03-02\"", &format!("\"{key}\""))),
            RuleFileError::BuiltinId { rule: key.into() }
        );
        assert_eq!(
            err(&EXAMPLE.replace(
                "include = [\"crowdstrike-2024-07-19\"]",
                &format!("include = [\"{key}\"]")
            )),
            RuleFileError::UnknownInclude { name: key.into() }
        );
    }
    assert_eq!(
        err(&EXAMPLE.replace("\"contoso-agent-2025-03-02\"", "\"Contoso\"")),
        RuleFileError::BadId {
            rule: "Contoso".into()
        }
    );
    assert!(matches!(
        err(&EXAMPLE.replace(
            "include = [\"crowdstrike-2024-07-19\"]",
            "include = [\"x\"]"
        )),
        RuleFileError::UnknownInclude { .. }
    ));
}

#[test]
fn globs_and_directories_are_checked() {
    for glob in ["a:b", "a\\b", "", "*a*b*c*d*e*f*g*h*i"] {
        assert!(
            matches!(err(&with("\\a", glob, "")), RuleFileError::BadGlob { .. }),
            "{glob:?}"
        );
    }
    for dir in ["\\..\\x", "a\\b", "\\a\\\\b", "\\a:s", "\\a\\*"] {
        assert!(
            matches!(err(&with(dir, "x", "")), RuleFileError::BadDirectory { .. }),
            "{dir:?}"
        );
    }
}

#[test]
fn ntfs_system_files_are_refused() {
    for (dir, glob, name) in [
        ("\\$MFT", "x", "$MFT"),
        ("\\$extend\\$ObjId", "x", "$Extend"),
        ("\\a\\$UsnJrnl", "x", "$UsnJrnl"),
        ("\\", "$*", "$MFT"),
        ("\\", "*", "$MFT"),
        ("\\", "$bitm?p", "$Bitmap"),
    ] {
        assert_eq!(
            err(&with(dir, glob, "")),
            RuleFileError::NamesSystemFile {
                rule: "r".into(),
                name: name.into()
            },
            "{dir} {glob}"
        );
    }
    // An ordinary file in the root is allowed.
    assert!(parse(&with("\\", "pagefile.old", "")).is_ok());
}

#[test]
fn headers_times_and_texts_are_checked() {
    for header in ["abc", "zz", "00 11 22 33 44 55 66 77 88"] {
        assert!(
            matches!(
                err(&with("\\a", "x", &format!("header = \"{header}\""))),
                RuleFileError::BadHeader { .. }
            ),
            "{header}"
        );
    }
    assert!(matches!(
        err(&with("\\a", "x", "fixed_from = 2025-03-02T05:27:00")),
        RuleFileError::BadTime { .. }
    ));
    assert!(matches!(
        err(&with("\\a", "x", "fixed_from = 2025-03-02")),
        RuleFileError::BadTime { .. }
    ));
    assert!(matches!(
        err(&with(
            "\\a",
            "x",
            "faulty = { from = 2025-03-02T04:10:00Z, to = 2025-03-02T04:10:00Z }"
        )),
        RuleFileError::WindowOrder { .. }
    ));
    assert!(matches!(
        err(&EXAMPLE.replace(
            "ja = \"Contoso エージェントのチャネルファイル 42(2025-03-02)\"\n",
            ""
        )),
        RuleFileError::MissingLanguage { .. }
    ));
    let long = format!("en = \"{}\"", "t".repeat(MAX_TITLE_CHARS + 1));
    assert!(matches!(
        err(&EXAMPLE.replace("en = \"Contoso agent channel file 42 (2025-03-02)\"", &long)),
        RuleFileError::TextTooLong { .. }
    ));
}

#[test]
fn a_parsed_file_makes_a_rule_set() {
    let file = parse(EXAMPLE).unwrap();
    let mut rules = vec![Rule::crowdstrike_2024_07_19()];
    rules.extend(file.rules);
    let set = RuleSet::new(rules).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.primary().key(), "crowdstrike-2024-07-19");
    assert_eq!(set.get(1).unwrap().key(), "contoso-agent-2025-03-02");
    assert!(RuleSet::new(vec![Rule::crowdstrike_2024_07_19(); 2]).is_err());
}

/// Rules that arrive as data (the page's worker receives them in a message, already parsed) are
/// checked again when the set is made: a rule naming `$MFT` never runs, however it was built.
#[test]
fn a_rule_set_checks_rules_that_arrive_as_data() {
    let mut rule = parse(EXAMPLE).unwrap().rules.remove(0);
    rule.directory = "\\$MFT".into();
    let json = serde_json::to_string(&rule).unwrap();
    let arrived: Rule = serde_json::from_str(&json).unwrap();
    match RuleSet::new(vec![arrived]) {
        Err(crate::RuleSetError::Invalid {
            error: RuleFileError::NamesSystemFile { name, .. },
        }) => assert_eq!(name, "$MFT"),
        other => panic!("a rule naming $MFT made a set: {other:?}"),
    }
    let mut rule = parse(EXAMPLE).unwrap().rules.remove(0);
    rule.pattern = "a\\b".into();
    assert!(matches!(
        RuleSet::new(vec![rule]),
        Err(crate::RuleSetError::Invalid {
            error: RuleFileError::BadGlob {
                why: GlobFault::Separator,
                ..
            }
        })
    ));
}

#[test]
fn a_rule_set_checks_user_rules_however_they_were_made() {
    let mut rule = parse(EXAMPLE).unwrap().rules.remove(0);
    rule.directory = r"\$Extend\$ObjId".into();
    assert!(matches!(
        RuleSet::new(vec![rule.clone()]),
        Err(crate::RuleSetError::Invalid {
            error: RuleFileError::NamesSystemFile { .. }
        })
    ));
    rule.directory = r"\".into();
    rule.pattern = "$M*".into();
    assert!(matches!(
        RuleSet::new(vec![rule]),
        Err(crate::RuleSetError::Invalid {
            error: RuleFileError::NamesSystemFile { .. }
        })
    ));
}
