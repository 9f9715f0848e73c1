//! `kaifuku rules` and `--rule FILE`: the rules listed, and hostile rule files refused with their
//! exit status and a message that names the problem, before any image is read.

mod common;

use common::{kaifuku, Scratch};
use serde_json::Value;
use std::ffi::OsStr;

const GOOD: &str = r#"format = 1
[[rule]]
id = "contoso-agent-2025-03-02"
directory = '\ProgramData\Contoso\Agent\Channels'
name = "CH-0042*.bin"
header = "de ad be ef 01 00"
faulty = { from = 2025-03-02T13:09:00+09:00, to = 2025-03-02T04:10:00Z }
[rule.title]
en = "Contoso agent channel file 42"
ja = "Contoso エージェントのチャネルファイル 42"
[rule.description]
en = "The channel file behind the boot loop."
ja = "起動ループの原因となったチャネルファイルです。"
"#;

#[test]
fn rules_lists_the_builtin_rule_and_a_files_rules() {
    let r = kaifuku(["rules", "--json"]);
    assert_eq!(r.code, 0, "{}", r.both());
    let list: Value = serde_json::from_slice(&r.stdout).unwrap();
    // The built-in rule, then the two registry transaction-log rules, off by default.
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[0]["key"], "crowdstrike-2024-07-19");
    assert_eq!(
        list[0]["target"],
        "\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291*.sys"
    );

    let s = Scratch::new("rules-list");
    let file = s.path("good.toml");
    std::fs::write(&file, GOOD).unwrap();
    let r = kaifuku([
        OsStr::new("rules"),
        OsStr::new("--json"),
        OsStr::new("--rule"),
        file.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let list: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(list[1]["key"], "contoso-agent-2025-03-02");
    assert_eq!(list[1]["header"], "deadbeef0100");
    // The +09:00 offset is shown in UTC.
    assert_eq!(list[1]["faulty_from"], "2025-03-02T04:09:00Z");
    let r = kaifuku([OsStr::new("rules"), OsStr::new("--rule"), file.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.both());
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("contoso-agent-2025-03-02  ("), "{text}");
    assert!(
        text.contains("  target      \\ProgramData\\Contoso\\Agent\\Channels\\CH-0042*.bin"),
        "{text}"
    );
}

#[test]
fn hostile_rule_files_are_refused_before_any_image_is_read() {
    let s = Scratch::new("rules-hostile");
    let missing_image = s.path("no-such-image.raw");
    let cases: Vec<(&str, String, i32, &str)> = vec![
        (
            "system",
            GOOD.replace("'\\ProgramData\\Contoso\\Agent\\Channels'", "'\\$MFT'"),
            2,
            "names the NTFS system file $MFT",
        ),
        (
            "root-glob",
            GOOD.replace("'\\ProgramData\\Contoso\\Agent\\Channels'", "'\\'")
                .replace("\"CH-0042*.bin\"", "\"$*\""),
            2,
            "names the NTFS system file $MFT",
        ),
        (
            "deep",
            format!("a = {}{}", "[".repeat(5000), "]".repeat(5000)),
            3,
            "not a valid rule file at line 1",
        ),
        (
            "large",
            format!("{GOOD}#{}", "x".repeat(70_000)),
            3,
            "a rule file is at most 65536 bytes",
        ),
        (
            "unknown-field",
            GOOD.replace("header =", "heder ="),
            3,
            "heder",
        ),
        (
            "local-time",
            GOOD.replace("2025-03-02T04:10:00Z", "2025-03-02T04:10:00"),
            3,
            "has no UTC offset",
        ),
        (
            "stream",
            GOOD.replace("\"CH-0042*.bin\"", "\"CH:evil\""),
            3,
            "the name holds",
        ),
    ];
    for (tag, text, code, says) in cases {
        let file = s.path(&format!("{tag}.toml"));
        std::fs::write(&file, text).unwrap();
        for cmd in ["rules", "inspect", "fix", "explain"] {
            let mut args = vec![OsStr::new(cmd), OsStr::new("--rule"), file.as_os_str()];
            if cmd != "rules" {
                args.push(missing_image.as_os_str());
            }
            if cmd == "fix" {
                args.push(OsStr::new("--dry-run"));
            }
            let r = kaifuku(args);
            assert_eq!(r.code, code, "{tag} {cmd}: {}", r.both());
            let err = &r.stderr;
            assert!(
                err.contains(&format!("kaifuku: rule file {}: ", file.display()))
                    && err.contains(says),
                "{tag} {cmd}: {err}"
            );
            assert!(r.stdout.is_empty(), "{tag} {cmd}: printed {:?}", r.stdout);
        }
    }
}

/// Keys at `indent` spaces in pretty JSON, in order (serde_json's pretty printer puts one key
/// per line).
fn keys_at(json: &str, indent: usize) -> Vec<String> {
    let prefix = format!("{}\"", " ".repeat(indent));
    json.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| l.split_once("\":").map(|(k, _)| k.to_string()))
        .collect()
}

/// The built-in rule alone reports exactly the fields, in the order, it did before rule sets:
/// none of the set's fields appear unless another rule runs.
#[test]
fn the_builtin_rule_alone_reports_as_before() {
    let image = common::fixtures().join("gpt-win.raw");
    let r = kaifuku([
        OsStr::new("inspect"),
        OsStr::new("--json"),
        image.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let text = String::from_utf8(r.stdout).unwrap();
    assert_eq!(
        keys_at(&text, 2),
        [
            "image",
            "container",
            "partitions",
            "volumes",
            "windows_volumes",
            "rule",
            "outcome",
            "reasons",
            "reads"
        ]
    );
    for key in [
        "\"rules\":",
        "\"rule_results\":",
        "\"rule_id\":",
        "\"user\":",
    ] {
        assert!(!text.contains(key), "{key} in the default report");
    }
    // With a second rule, the primary rule stays in `rule`, and the set and its results appear.
    let s = Scratch::new("rules-two");
    let file = s.path("good.toml");
    std::fs::write(
        &file,
        GOOD.replacen(
            "format = 1\n",
            "format = 1\ninclude = [\"crowdstrike-2024-07-19\"]\n",
            1,
        ),
    )
    .unwrap();
    let r = kaifuku([
        OsStr::new("inspect"),
        OsStr::new("--json"),
        OsStr::new("--rule"),
        file.as_os_str(),
        image.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let report: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(report["rule"]["id"], "crowdstrike-2024-07-19");
    assert_eq!(
        report["rules"][1]["user"]["key"],
        "contoso-agent-2025-03-02"
    );
    let windows = report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule_results"].is_array())
        .expect("a volume where both rules ran");
    assert_eq!(
        windows["rule_results"][0]["rule_id"],
        "contoso-agent-2025-03-02"
    );
    assert_eq!(windows["rule_results"][0]["directory_exists"], false);
    assert!(!windows["rule"]["matches"].as_array().unwrap().is_empty());
}

#[test]
fn rules_lists_the_txr_rules_off_by_default_and_gated() {
    let r = kaifuku(["rules", "--json"]);
    assert_eq!(r.code, 0, "{}", r.both());
    let list: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(list[0]["on_by_default"], true);
    assert!(list[0].get("needs_flag").is_none(), "{}", list[0]);
    assert!(list[0].get("min_windows_build").is_none(), "{}", list[0]);
    for (i, key, target) in [
        (
            1,
            "registry-txr-containers",
            "\\Windows\\System32\\config\\TxR\\*.TxR.*.regtrans-ms",
        ),
        (
            2,
            "registry-txr-log",
            "\\Windows\\System32\\config\\TxR\\*.TxR.blf",
        ),
    ] {
        let rule = &list[i];
        assert_eq!(rule["key"], key, "{rule}");
        assert_eq!(rule["target"], target, "{rule}");
        assert_eq!(rule["on_by_default"], false, "{rule}");
        assert_eq!(rule["needs_flag"], "--txr-logs", "{rule}");
        assert_eq!(rule["min_windows_build"], 14393, "{rule}");
        assert_eq!(rule["windows_only"], true, "{rule}");
    }
    let r = kaifuku(["rules"]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(text.contains("registry-txr-log  (built-in)\n"), "{text}");
    assert!(
        text.contains(
            "  applies     off by default, with --txr-logs, on volumes holding \\Windows\\System32 whose SOFTWARE hive records build 14393 or later\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  applies     by default, on volumes holding \\Windows\\System32\n"),
        "{text}"
    );
}

/// A rule file may not take the registry transaction-log rules' keys: they come with
/// `--txr-logs`, both at once.
#[test]
fn a_rule_file_cannot_take_a_txr_rule_key() {
    let s = Scratch::new("rules-txr-key");
    let file = s.path("txr.toml");
    std::fs::write(
        &file,
        GOOD.replace("contoso-agent-2025-03-02", "registry-txr-log"),
    )
    .unwrap();
    let r = kaifuku([OsStr::new("rules"), OsStr::new("--rule"), file.as_os_str()]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(
        r.both()
            .contains("\"registry-txr-log\" is a built-in rule's id; name your rule differently (the registry transaction-log rules run with --txr-logs)"),
        "{}",
        r.both()
    );
}
