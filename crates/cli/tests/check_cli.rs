//! `kaifuku check` as a user runs it: exit 0 on sound volumes (every good fixture, a fresh mkntfs
//! volume populated through ntfs-3g, the Windows-made images of the shared test data), exit 4 with
//! the right problem kinds on copies broken on purpose, 3 on unreadable images, 2 when there is no
//! NTFS volume to check.

#[path = "../../ntfs/tests/common/mod.rs"]
mod common;

use common::{breaks, build_volume, cmd, gunzip, run, shared, Scratch, VolFile};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

fn check_json(image: &Path) -> (i32, Value) {
    let run = kaifuku(&["check", "--json", image.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json of {} is not JSON ({e}): {}{}",
            image.display(),
            run.stdout,
            run.stderr
        )
    });
    (run.code, v)
}

/// Problem kinds reported for any volume.
fn kinds(v: &Value) -> Vec<String> {
    v["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|vol| {
            vol["report"]["problems"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

fn base() -> &'static VolFile {
    static BASE: OnceLock<(Scratch, VolFile)> = OnceLock::new();
    &BASE
        .get_or_init(|| {
            let s = Scratch::new("cli-base");
            let v = build_volume(&s.0, "base.raw", 96, 512, 4096);
            (s, v)
        })
        .1
}

#[test]
fn fresh_volume_is_clean_in_text_and_json() {
    let v = base();
    let run = kaifuku(&["check", v.path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no problems found"), "{}", run.stdout);
    assert!(run.stdout.contains("Outcome     clean"), "{}", run.stdout);
    let (code, j) = check_json(&v.path);
    assert_eq!(code, 0);
    assert_eq!(j["outcome"], "clean");
    let vol = &j["volumes"][0];
    assert_eq!(vol["filesystem"], "ntfs");
    assert_eq!(vol["report"]["problems"].as_array().unwrap().len(), 0);
    assert!(vol["report"]["stats"]["records_in_use"].as_u64().unwrap() > 1900);
    assert_eq!(vol["report"]["volume"]["dirty"], false);
}

#[test]
fn broken_copies_exit_4_with_the_right_kind() {
    type Break = fn(&VolFile) -> Option<u64>;
    let cases: [(&str, Break, &str); 6] = [
        (
            "bitmap",
            |v| Some(breaks::clear_cluster_of_live_file(v).0),
            "bitmap_missing",
        ),
        (
            "mftbit",
            |v| Some(breaks::free_record_keep_bit(v)),
            "mft_bitmap_stale",
        ),
        (
            "sequence",
            |v| Some(breaks::entry_wrong_sequence(v).0),
            "index_entry_stale",
        ),
        (
            "dos",
            |v| Some(breaks::remove_dos_entry(v).1),
            "name_not_indexed",
        ),
        (
            "order",
            |v| Some(breaks::swap_adjacent_entries(v)),
            "index_order",
        ),
        (
            "vcn",
            |v| Some(breaks::change_block_vcn(v).0),
            "index_block_vcn",
        ),
    ];
    for (tag, brk, kind) in cases {
        let s = Scratch::new(&format!("cli-{tag}"));
        let v = base().copy_to(&s.0, "broken.raw");
        let record = brk(&v);
        let (code, j) = check_json(&v.path);
        assert_eq!(code, 4, "{tag}: exit code; {j:#}");
        assert_eq!(j["outcome"], "problems", "{tag}");
        let problems = j["volumes"][0]["report"]["problems"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            problems
                .iter()
                .any(|p| p["kind"] == kind && p["record"].as_u64() == record),
            "{tag}: expected {kind} for record {record:?}: {problems:#?}"
        );
        let text = kaifuku(&["check", v.path.to_str().unwrap()]);
        assert_eq!(text.code, 4, "{tag}");
        assert!(text.stdout.contains("PROBLEM"), "{tag}: {}", text.stdout);
    }
}

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

#[test]
fn every_good_fixture_checks_clean_and_bad_ones_are_errors() {
    let dir = fixtures();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut good = 0;
    for f in manifest["fixtures"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let kind = f["kind"].as_str().unwrap();
        let path = dir.join(name);
        assert!(
            path.exists(),
            "{} listed in the manifest but missing",
            path.display()
        );
        let (code, j) = check_json(&path);
        // "unwritable" images read and check like good ones; only their fix is refused.
        if kind == "good" || kind == "unwritable" {
            good += 1;
            assert_eq!(code, 0, "{name} should check clean: {j:#}");
            let ntfs = j["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["filesystem"] == "ntfs")
                .count();
            assert!(ntfs >= 1, "{name}: no NTFS volume checked: {j:#}");
        } else {
            // Damaged containers, tables and boot sectors cannot be checked: an error, not "clean"
            // and not "problems" (nothing was examined).
            assert_eq!(code, 3, "{name} ({}): {j:#}", f["note"]);
        }
    }
    assert!(good >= 8, "only {good} good fixtures");
}

#[test]
fn windows_made_images_check_clean() {
    let s = Scratch::new("cli-windows");
    let img = s.path("ntfs-ptrn.raw");
    gunzip(&shared("windows-made/ntfs-ptrn.raw.gz"), &img);
    let (code, j) = check_json(&img);
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(j["volumes"][0]["partition"], 1);
    std::fs::remove_file(&img).unwrap();
    run(cmd("tar")
        .arg("-xzf")
        .arg(shared("windows-made/ntfs-20h1.tar.gz"))
        .arg("-C")
        .arg(&s.0));
    let (code, j) = check_json(&s.path("ntfs.raw"));
    assert_eq!(code, 0, "{j:#}");
    assert!(kinds(&j).is_empty());
}

#[test]
fn no_ntfs_volume_is_refused() {
    let s = Scratch::new("cli-nontfs");
    // An MBR disk with one FAT32 partition full of zeros.
    let img = s.path("fat.raw");
    let mut disk = vec![0u8; 4 << 20];
    let e = 0x1BE;
    disk[e + 4] = 0x0C;
    disk[e + 8..e + 12].copy_from_slice(&2048u32.to_le_bytes());
    disk[e + 12..e + 16].copy_from_slice(&4096u32.to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xAA;
    std::fs::write(&img, &disk).unwrap();
    let (code, j) = check_json(&img);
    assert_eq!(code, 2, "{j:#}");
    assert_eq!(j["outcome"], "refused");
    let missing = kaifuku(&["check", s.path("nothing.raw").to_str().unwrap()]);
    assert_eq!(missing.code, 3);
}
