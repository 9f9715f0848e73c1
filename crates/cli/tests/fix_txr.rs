//! `--txr-logs`: the registry transaction logs in `\Windows\System32\config\TxR` deleted with the
//! channel file, on the Windows volumes `tests/make-hive-fixtures.py` makes (hives by hivex,
//! files by ntfs-3g, `config\TxR` populated like Windows'). The deletion is judged like every
//! other (`judge`: ntfs-3g `rm` of the same paths as the oracle, ntfs-3g mounts, sleuthkit,
//! `ntfsfix -n`, `kaifuku check`, a second fix with nothing to do); the hives and their logs are
//! compared by `ntfscat` before and after; the build gate is judged by `hivexget` on the hive
//! `ntfscat` extracts. Skipped, by name, when the script cannot run (no root, FUSE, ntfs-3g or
//! hivex).

mod common;
mod judge;

use common::{hive_volumes, kaifuku, run, run_ok, sha256, Scratch};
use judge::{judge, Case, Target};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const CONFIG: &str = "Windows/System32/config";
const TXR: &str = "Windows/System32/config/TxR";
const CHANNEL_FILE: &str = "Windows/System32/drivers/CrowdStrike/C-00000291-00000000-00000032.sys";
const TXR_GUID: &str = "{6f0d1c3e-8d4a-11ef-9a3b-000d3a1f2b4c}";

/// The files the fixture script puts in `config\TxR`, as Windows names them.
fn txr_files() -> Vec<String> {
    let mut names = vec![format!("{TXR_GUID}.TxR.blf")];
    names.extend((0..3).map(|k| format!("{TXR_GUID}.TxR.{k}.regtrans-ms")));
    names
}

/// `ntfsls` of a directory of the bare volume `vol`, without `.` and `..`, sorted.
fn ntfsls(vol: &Path, dir: &str) -> Vec<String> {
    let out = run_ok(
        "ntfsls",
        [OsStr::new("-p"), OsStr::new(dir), vol.as_os_str()],
    );
    let mut names: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .filter(|n| n != "." && n != ".." && !n.is_empty())
        .collect();
    names.sort();
    names
}

/// sha256 of each file `ntfscat` reads from `vol` (paths from the volume root).
fn ntfscat_hashes(s: &Scratch, vol: &Path, paths: &[String]) -> BTreeMap<String, String> {
    paths
        .iter()
        .map(|p| {
            let bytes = run_ok("ntfscat", [vol.as_os_str(), OsStr::new(&format!("/{p}"))]);
            let file = s.path("ntfscat.out");
            std::fs::write(&file, bytes).unwrap();
            (p.clone(), sha256(&file))
        })
        .collect()
}

/// The hives and their logs, which a fix never writes.
fn hive_files() -> Vec<String> {
    ["SYSTEM", "SOFTWARE"]
        .iter()
        .flat_map(|h| {
            ["", ".LOG1", ".LOG2"]
                .iter()
                .map(move |ext| format!("{CONFIG}/{h}{ext}"))
        })
        .collect()
}

fn txr_paths() -> Vec<String> {
    txr_files().iter().map(|n| format!("{TXR}/{n}")).collect()
}

/// `CurrentBuildNumber` as `hivexget` reads it from the `SOFTWARE` hive `ntfscat` extracts.
fn build_by_hivexget(s: &Scratch, vol: &Path) -> String {
    let file = s.path("SOFTWARE.from-image");
    let bytes = run_ok(
        "ntfscat",
        [vol.as_os_str(), OsStr::new(&format!("/{CONFIG}/SOFTWARE"))],
    );
    std::fs::write(&file, bytes).unwrap();
    let out = run_ok(
        "hivexget",
        [
            file.as_os_str(),
            OsStr::new(r"\Microsoft\Windows NT\CurrentVersion"),
            OsStr::new("CurrentBuildNumber"),
        ],
    );
    String::from_utf8(out).unwrap().trim_end().to_string()
}

fn only_volume(report: &Value) -> &Value {
    let volumes = report["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "{report}");
    &volumes[0]
}

/// The paths a `fix --json` plans to delete, `/`-separated from the volume root, sorted.
fn planned_paths(plan: &Value) -> Vec<String> {
    let mut paths: Vec<String> = plan["plan"]["deletions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["path"]
                .as_str()
                .unwrap()
                .trim_start_matches('\\')
                .replace('\\', "/")
        })
        .collect();
    paths.sort();
    paths
}

fn fix_json(image: &Path, out: &Path, flags: &[&str]) -> (i32, Value, String) {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("fix"),
        OsStr::new("--json"),
        image.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ];
    args.extend(flags.iter().map(OsStr::new));
    let r = kaifuku(args);
    let json = serde_json::from_slice(&r.stdout).unwrap_or(Value::Null);
    (r.code, json, r.both())
}

#[test]
fn txr_logs_are_deleted_like_ntfs3g_rm() {
    let test = "txr_logs_are_deleted_like_ntfs3g_rm";
    let s = Scratch::new("fix-txr");
    let Some(dir) = hive_volumes(&s, test) else {
        return;
    };
    let image = dir.join("win-hives.raw");
    assert_eq!(build_by_hivexget(&s, &image), "17763");
    assert_eq!(ntfsls(&image, &format!("/{TXR}")), {
        let mut want = txr_files();
        want.sort();
        want
    });
    let hives_before = ntfscat_hashes(&s, &image, &hive_files());

    // The plan, in words: the channel file, then each transaction-log file with its rule.
    let dry = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--dry-run"),
        OsStr::new("--txr-logs"),
        image.as_os_str(),
    ]);
    assert_eq!(dry.code, 0, "{}", dry.both());
    let text = dry.text();
    let deletes: Vec<&str> = text.lines().filter(|l| l.starts_with("Delete ")).collect();
    let mut want = vec![format!("Delete      \\{}", CHANNEL_FILE.replace('/', "\\"))];
    for name in txr_files() {
        let rule = if name.ends_with(".blf") {
            "registry-txr-log"
        } else {
            "registry-txr-containers"
        };
        want.push(format!(
            "Delete      \\{}\\{name} (rule {rule})",
            TXR.replace('/', "\\")
        ));
    }
    let mut got: Vec<String> = deletes.iter().map(|l| l.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{text}");

    // ntfs-3g removes the files in the plan's order (the rules' order, then the directory's):
    // an index block both tools empty and free keeps the last name removed in its unused bytes,
    // which sleuthkit still lists, so the same order leaves the same name there.
    let mut targets = vec![Target::new(CHANNEL_FILE)];
    let (logs, containers): (Vec<String>, Vec<String>) =
        txr_paths().into_iter().partition(|p| p.ends_with(".blf"));
    targets.extend(containers.iter().chain(&logs).map(|p| Target::new(p)));
    let in_vol = s.path("in.vol");
    common::sparse_copy(&image, &in_vol);
    let c = Case {
        s: &s,
        image: image.clone(),
        in_vol,
        vol_off: 0,
        vol_len: std::fs::metadata(&image).unwrap().len(),
        sector: 512,
        path_arg: None,
        rule_file: None,
        flags: vec!["--txr-logs"],
        targets,
        files_json: None,
    };
    // ntfs-3g rm of the same five paths, judged; a second `fix --txr-logs` exits 1.
    judge(&c);

    let out = s.path("out.img");
    assert!(
        ntfsls(&out, &format!("/{TXR}")).is_empty(),
        "config\\TxR is not empty after the fix"
    );
    assert_eq!(
        ntfscat_hashes(&s, &out, &hive_files()),
        hives_before,
        "a hive or hive log changed"
    );

    // The deletions name their rule in --json too.
    let (code, plan, both) = fix_json(&image, &s.path("again.img"), &["--txr-logs"]);
    assert_eq!(code, 0, "{both}");
    for d in plan["plan"]["deletions"].as_array().unwrap() {
        let path = d["path"].as_str().unwrap();
        let rule = if path.ends_with(".blf") {
            "registry-txr-log"
        } else if path.ends_with(".regtrans-ms") {
            "registry-txr-containers"
        } else {
            "crowdstrike-2024-07-19"
        };
        assert_eq!(d["rule_id"], rule, "{d}");
    }
}

#[test]
fn without_the_flag_only_the_channel_file_goes() {
    let test = "without_the_flag_only_the_channel_file_goes";
    let s = Scratch::new("fix-txr-off");
    let Some(dir) = hive_volumes(&s, test) else {
        return;
    };
    let image = dir.join("win-hives.raw");
    let out = s.path("out.img");
    let (code, plan, both) = fix_json(&image, &out, &[]);
    assert_eq!(code, 0, "{both}");
    assert_eq!(planned_paths(&plan), vec![CHANNEL_FILE.to_string()]);
    // The built-in rule alone reports as it always did: no rule ids, no other results.
    assert!(
        plan["plan"]["deletions"][0].get("rule_id").is_none(),
        "{both}"
    );
    let v = only_volume(&plan["report"]);
    assert!(v.get("rule_results").is_none(), "{v}");
    assert!(v.get("skipped_rules").is_none(), "{v}");
    assert!(plan["report"].get("rules").is_none());
    let mut want = txr_files();
    want.sort();
    assert_eq!(ntfsls(&out, &format!("/{TXR}")), want);
    assert_eq!(
        ntfscat_hashes(&s, &out, &txr_paths()),
        ntfscat_hashes(&s, &image, &txr_paths())
    );
    let human = kaifuku([OsStr::new("inspect"), image.as_os_str()]);
    assert!(!human.text().contains("rule skipped"), "{}", human.text());
    assert!(!human.text().contains("TxR"), "{}", human.text());
}

/// `inspect --txr-logs` and `fix --txr-logs` on a volume whose gate fails: both TxR rules are
/// skipped with `code`, the human report says so, and only the channel file is deleted.
fn gated_out(image: &Path, s: &Scratch, code: &str, check_why: impl Fn(&Value)) {
    let r = kaifuku([
        OsStr::new("inspect"),
        OsStr::new("--json"),
        OsStr::new("--txr-logs"),
        image.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let report: Value = serde_json::from_slice(&r.stdout).unwrap();
    let v = only_volume(&report);
    let skipped = v["skipped_rules"].as_array().unwrap();
    let ids: Vec<&str> = skipped
        .iter()
        .map(|k| k["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["registry-txr-containers", "registry-txr-log"], "{v}");
    for k in skipped {
        assert_eq!(k["why"]["code"], code, "{k}");
        assert_eq!(k["why"]["needs"], 14393, "{k}");
        check_why(&k["why"]);
    }
    assert!(v.get("rule_results").is_none(), "{v}");
    assert_eq!(report["outcome"], "matches");

    let human = kaifuku([
        OsStr::new("inspect"),
        OsStr::new("--txr-logs"),
        image.as_os_str(),
    ]);
    let text = human.text();
    for k in skipped {
        let line = format!(
            "            rule skipped: {}: {}\n",
            k["rule_id"].as_str().unwrap(),
            k["why"]["message"].as_str().unwrap()
        );
        assert!(text.contains(&line), "{line:?} not in\n{text}");
    }

    let out = s.path("gated-out.img");
    let (code, plan, both) = fix_json(image, &out, &["--txr-logs"]);
    assert_eq!(code, 0, "{both}");
    assert_eq!(planned_paths(&plan), vec![CHANNEL_FILE.to_string()]);
    let mut want = txr_files();
    want.sort();
    assert_eq!(ntfsls(&out, &format!("/{TXR}")), want);
    assert_eq!(
        ntfscat_hashes(s, &out, &txr_paths()),
        ntfscat_hashes(s, image, &txr_paths())
    );
    common::assert_check_clean(&out, "fix --txr-logs on a volume the gate keeps out");
}

#[test]
fn build_9600_keeps_the_txr_logs() {
    let test = "build_9600_keeps_the_txr_logs";
    let s = Scratch::new("fix-txr-9600");
    let Some(dir) = hive_volumes(&s, test) else {
        return;
    };
    let image = dir.join("win-hives-9600.raw");
    assert_eq!(build_by_hivexget(&s, &image), "9600");
    gated_out(&image, &s, "build_below", |why| {
        assert_eq!(why["build"], 9600, "{why}");
        assert!(
            why["message"]
                .as_str()
                .unwrap()
                .contains("build 9600 is older than build 14393"),
            "{why}"
        );
    });
}

#[test]
fn unknown_build_keeps_the_txr_logs() {
    let test = "unknown_build_keeps_the_txr_logs";
    let s = Scratch::new("fix-txr-unknown");
    let Some(dir) = hive_volumes(&s, test) else {
        return;
    };
    // SOFTWARE cut to 8 KiB: hivexget cannot read the build either.
    let image = dir.join("win-hives-broken.raw");
    let file = s.path("SOFTWARE.cut");
    let bytes = run_ok(
        "ntfscat",
        [
            image.as_os_str(),
            OsStr::new(&format!("/{CONFIG}/SOFTWARE")),
        ],
    );
    std::fs::write(&file, bytes).unwrap();
    let hivex = run(
        "hivexget",
        [
            file.as_os_str(),
            OsStr::new(r"\Microsoft\Windows NT\CurrentVersion"),
            OsStr::new("CurrentBuildNumber"),
        ],
    );
    assert_ne!(hivex.code, 0, "hivexget read a build: {}", hivex.both());
    gated_out(&image, &s, "build_unknown", |why| {
        assert_eq!(why["version"]["code"], "no_software_hive", "{why}");
    });
}

/// The batch passes `--txr-logs` to every image's run.
#[test]
fn the_batch_forwards_txr_logs() {
    let test = "the_batch_forwards_txr_logs";
    let s = Scratch::new("fix-txr-batch");
    let Some(dir) = hive_volumes(&s, test) else {
        return;
    };
    let out_dir = s.path("fixed");
    std::fs::create_dir_all(&out_dir).unwrap();
    let images: Vec<PathBuf> = ["win-hives.raw", "win-hives-9600.raw"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("fix"),
        OsStr::new("--txr-logs"),
        OsStr::new("--out-dir"),
        out_dir.as_os_str(),
    ];
    args.extend(images.iter().map(|p| p.as_os_str()));
    let r = kaifuku(args);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(ntfsls(&out_dir.join("win-hives-fixed.raw"), &format!("/{TXR}")).is_empty());
    let mut want = txr_files();
    want.sort();
    assert_eq!(
        ntfsls(
            &out_dir.join("win-hives-9600-fixed.raw"),
            &format!("/{TXR}")
        ),
        want
    );
    for name in ["win-hives-fixed.raw", "win-hives-9600-fixed.raw"] {
        let channel = run(
            "ntfscat",
            [
                out_dir.join(name).as_os_str(),
                OsStr::new(&format!("/{CHANNEL_FILE}")),
            ],
        );
        assert_ne!(channel.code, 0, "{name}: the channel file is still there");
    }
}
