//! `kaifuku inspect` against images built by real tools (tests/make-fixtures.py: mkntfs, ntfs-3g,
//! sfdisk, qemu-img). Every expected value comes from the `*.expected.json` the generator wrote
//! from independent readers (sfdisk -J, ntfsinfo, istat, an ntfs-3g mount), never from constants.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/out/fixtures"));
    assert!(
        dir.join("manifest.json").exists(),
        "fixtures missing in {}: run `python3 tests/make-fixtures.py {}` (test.sh does)",
        dir.display(),
        dir.display()
    );
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn kaifuku(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_kaifuku"))
        .args(args)
        .output()
        .expect("run kaifuku");
    let run = Run {
        code: out.status.code().expect("kaifuku exited by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "kaifuku panicked: {}",
        run.stderr
    );
    run
}

fn inspect_json(image: &Path) -> (i32, Value) {
    let run = kaifuku(&["inspect", "--json", image.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "inspect --json of {} is not JSON ({e}): {}{}",
            image.display(),
            run.stdout,
            run.stderr
        )
    });
    (run.code, v)
}

fn expected_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 8,
        "expected at least 8 good fixtures, found {}",
        v.len()
    );
    v
}

fn load(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The generator's container names → ours.
fn container_name(s: &str) -> &str {
    match s {
        "raw" => "raw",
        "vhd-fixed" => "vhd_fixed",
        "vhd-dynamic" => "vhd_dynamic",
        "qcow2-v2" | "qcow2-v3" => "qcow2",
        "vhdx-fixed" => "vhdx_fixed",
        "vhdx-dynamic" => "vhdx_dynamic",
        other => panic!("unknown container {other} in expected json"),
    }
}

#[test]
fn every_good_fixture_matches_the_independent_tools() {
    let dir = fixtures();
    for exp_path in expected_files(&dir) {
        let exp = load(&exp_path);
        let image = dir.join(exp["image"].as_str().unwrap());
        let (code, got) = inspect_json(&image);
        let ctx = image.display().to_string();

        assert_eq!(
            got["container"]["format"].as_str().unwrap(),
            container_name(exp["container"].as_str().unwrap()),
            "{ctx}"
        );
        assert_eq!(
            got["container"]["virtual_size"], exp["virtual_size"],
            "{ctx}"
        );
        assert_eq!(got["partitions"]["scheme"], exp["scheme"], "{ctx}");
        assert_eq!(
            got["partitions"]["sector_size"], exp["sector_size"],
            "{ctx}"
        );

        // Partitions: the same numbers, starts and sizes as sfdisk reports.
        let ours: Vec<&Value> = got["partitions"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        for p in exp["partitions"].as_array().unwrap() {
            let found = ours.iter().find(|q| q["number"] == p["number"]);
            let q = found.unwrap_or_else(|| panic!("{ctx}: partition {} missing", p["number"]));
            assert_eq!(
                q["start"], p["start"],
                "{ctx}: start of partition {}",
                p["number"]
            );
            assert_eq!(
                q["size"], p["size"],
                "{ctx}: size of partition {}",
                p["number"]
            );
        }

        let mut any_match = false;
        let vols = got["volumes"].as_array().unwrap();
        for ev in exp["volumes"].as_array().unwrap() {
            if ev["fs"] != "ntfs" {
                continue;
            }
            let v = vols
                .iter()
                .find(|v| v["offset"] == ev["offset"])
                .unwrap_or_else(|| panic!("{ctx}: no volume at offset {}", ev["offset"]));
            let n = &v["ntfs"];
            assert!(
                n.is_object(),
                "{ctx}: volume at {} not read as NTFS: {}",
                ev["offset"],
                v
            );
            let vctx = format!("{ctx} volume at {}", ev["offset"]);
            assert_eq!(n["label"], ev["label"], "{vctx}");
            assert_eq!(
                n["serial"].as_str().unwrap().to_uppercase(),
                ev["serial"].as_str().unwrap().to_uppercase(),
                "{vctx}"
            );
            assert_eq!(n["cluster_size"], ev["cluster_size"], "{vctx}");
            assert_eq!(n["sector_size"], ev["sector_size"], "{vctx}");
            assert_eq!(n["file_record_size"], ev["mft_record_size"], "{vctx}");
            assert_eq!(n["index_record_size"], ev["index_record_size"], "{vctx}");
            // ntfsinfo gives the size in whole clusters.
            assert_eq!(
                n["total_clusters"].as_u64().unwrap() * n["cluster_size"].as_u64().unwrap(),
                ev["volume_size"].as_u64().unwrap(),
                "{vctx}"
            );
            assert_eq!(n["windows"], ev["windows"], "{vctx}");
            assert_eq!(
                n["log"]["state"], "clean",
                "{vctx}: fresh mkntfs/ntfs-3g volumes have a clean journal"
            );
            assert_eq!(n["dirty"], false, "{vctx}");
            if ev["windows"] != true {
                assert!(
                    v["rule"].is_null(),
                    "{vctx}: rule ran on a non-Windows volume"
                );
                continue;
            }
            let rule = &v["rule"];
            assert_eq!(rule["directory_exists"], ev["crowdstrike_dir"], "{vctx}");
            let mut got_m: Vec<&Value> = rule["matches"].as_array().unwrap().iter().collect();
            let mut exp_m: Vec<&Value> = ev["matches"].as_array().unwrap().iter().collect();
            got_m.sort_by_key(|m| m["name"].as_str().unwrap().to_lowercase());
            exp_m.sort_by_key(|m| m["name"].as_str().unwrap().to_lowercase());
            let names = |v: &[&Value]| {
                v.iter()
                    .map(|m| m["name"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            };
            assert_eq!(names(&got_m), names(&exp_m), "{vctx}: matched names");
            for (g, e) in got_m.iter().zip(&exp_m) {
                let mctx = format!("{vctx} {}", e["name"]);
                assert_eq!(g["mft_record"], e["mft_record"], "{mctx}");
                assert_eq!(g["size"], e["size"], "{mctx}");
                assert_eq!(g["created"], e["created"], "{mctx}");
                assert_eq!(g["modified"], e["modified"], "{mctx}");
                assert_eq!(g["header_hex"], e["header_hex"], "{mctx}");
                assert_eq!(g["all_zero"], e["all_zero"], "{mctx}");
                assert_eq!(g["dos_name"], e["dos_name"], "{mctx}");
                // The verdict follows from the modified time the independent tool saw.
                let modified = e["modified"].as_str().unwrap();
                let want = if modified.starts_with("2024-07-19T04:09:") {
                    "faulty"
                } else if modified.as_bytes() >= b"2024-07-19T05:27:00Z".as_slice() {
                    "fixed"
                } else {
                    "unknown"
                };
                assert_eq!(g["verdict"], want, "{mctx}");
                let bad = e["header_hex"] == "aaaaaaaa01002301";
                assert_eq!(g["header_matches"], bad, "{mctx}");
                any_match = true;
            }
        }
        assert_eq!(
            code,
            if any_match { 0 } else { 1 },
            "{ctx}: exit code; report: {got}"
        );
        assert_eq!(
            got["outcome"],
            if any_match {
                "matches"
            } else {
                "nothing-to-fix"
            },
            "{ctx}"
        );
        // Reading never loads the image: a small part of it is enough.
        let read = got["reads"]["bytes"].as_u64().unwrap();
        assert!(
            read < exp["virtual_size"].as_u64().unwrap() / 8,
            "{ctx}: read {read} bytes"
        );
    }
}

#[test]
fn text_report_names_the_faulty_file() {
    let dir = fixtures();
    let run = kaifuku(&["inspect", dir.join("gpt-win.raw").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("C-00000291-00000000-00000032.sys"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("FAULTY version"), "{}", run.stdout);
    assert!(run.stdout.contains("[Windows]"), "{}", run.stdout);
}

#[test]
fn bad_inputs_give_a_clear_error_and_exit_3() {
    let dir = fixtures().join("bad");
    let mut n = 0;
    for name in [
        "truncated.raw",
        "truncated.vhd",
        "badsum.vhd",
        "badsum-dynamic.vhd",
        "gpt-badcrc.raw",
        "ntfs-badgeom.raw",
        "zeros.raw",
        "random.raw",
    ] {
        let p = dir.join(name);
        assert!(p.exists(), "bad fixture {name} missing");
        for json in [false, true] {
            let mut args = vec!["inspect", p.to_str().unwrap()];
            if json {
                args.push("--json");
            }
            let run = kaifuku(&args);
            assert_eq!(
                run.code, 3,
                "{name}: want exit 3 (error), got {}: {}{}",
                run.code, run.stdout, run.stderr
            );
            let text = format!("{}{}", run.stdout, run.stderr);
            assert!(text.len() > 40, "{name}: no explanation: {text}");
        }
        n += 1;
    }
    assert_eq!(n, 8);
}

#[test]
fn missing_file_is_an_error() {
    let run = kaifuku(&["inspect", "/nonexistent/image.raw"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("cannot open"), "{}", run.stderr);
}
