//! `kaifuku fix` on VMDK images made by qemu-img from the raw Windows fixture, judged by
//! independent tools: the monolithicSparse output passes `qemu-img check`, `qemu-img compare`
//! finds its disk identical to the raw fixture fixed the same way, libvmdk's `vmdkinfo` and
//! sleuthkit (`img_stat`, `fls`, which read VMDK directly) accept it and no longer see the files,
//! only the planned bytes of the file change, `--in-place` writes the same bytes, and undo restores
//! the input. streamOptimized images are read (inspect) but a fix is refused, as are child disks.
//!
//! qemu-img, vmdkinfo (libvmdk-utils) and sleuthkit are required: without them these tests fail.

mod common;

use common::{assert_check_clean, diff_files, fixtures, kaifuku, run, run_ok, sha256, Scratch};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Partition 3 ("Windows") of gpt-win.raw, in sectors: where fls reads the volume.
const WINDOWS_SECTOR: &str = "239616";

/// How many channel files the built-in rule matches (`drivers\CrowdStrike\C-00000291*.sys`) fls
/// lists as allocated.
fn channel_files(fls_listing: &str) -> usize {
    fls_listing
        .lines()
        .filter(|l| l.contains("drivers/CrowdStrike/C-00000291") && l.ends_with(".sys"))
        .count()
}

fn raw_fixture() -> PathBuf {
    fixtures().join("gpt-win.raw")
}

fn convert(s: &Scratch, subformat: &str, name: &str) -> PathBuf {
    let out = s.path(name);
    run_ok(
        "qemu-img",
        [
            OsStr::new("convert"),
            OsStr::new("-f"),
            OsStr::new("raw"),
            OsStr::new("-O"),
            OsStr::new("vmdk"),
            OsStr::new("-o"),
            OsStr::new(&format!("subformat={subformat}")),
            raw_fixture().as_os_str(),
            out.as_os_str(),
        ],
    );
    out
}

fn fix_to(image: &Path, out: &Path, extra: &[&OsStr]) -> common::Out {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("fix"),
        image.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ];
    args.extend_from_slice(extra);
    kaifuku(args)
}

/// Undeleted names fls lists on the Windows volume of `image`.
fn fls_names(image: &Path) -> String {
    String::from_utf8_lossy(&run_ok(
        "fls",
        [
            OsStr::new("-r"),
            OsStr::new("-p"),
            OsStr::new("-u"),
            OsStr::new("-o"),
            OsStr::new(WINDOWS_SECTOR),
            image.as_os_str(),
        ],
    ))
    .into_owned()
}

#[test]
fn sparse_fix_is_judged_by_qemu_libvmdk_and_sleuthkit() {
    let s = Scratch::new("vmdk-sparse");
    let input = convert(&s, "monolithicSparse", "disk.vmdk");
    assert_eq!(channel_files(&fls_names(&input)), 3, "premise");
    let out_raw = s.path("out.raw");
    let r = fix_to(&raw_fixture(), &out_raw, &[]);
    assert_eq!(r.code, 0, "raw: {}", r.both());

    let out = s.path("out.vmdk");
    let undo = s.path("out.undo");
    let r = fix_to(
        &input,
        &out,
        &[OsStr::new("--json"), OsStr::new("--undo"), undo.as_os_str()],
    );
    assert_eq!(r.code, 0, "{}", r.both());
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    let writes: Vec<(u64, u64)> = plan["file_writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            assert!(w["label"].as_str().unwrap().contains("VMDK grain"), "{w}");
            let at = w["file_offset"].as_u64().unwrap();
            (at, at + w["len"].as_u64().unwrap())
        })
        .collect();
    assert!(!writes.is_empty());
    // Only planned bytes change: header, descriptor, directories and tables stay as they were.
    let diffs = diff_files(&input, &out);
    assert!(!diffs.is_empty());
    for (from, to) in &diffs {
        assert!(
            writes.iter().any(|(a, b)| a <= from && to <= b),
            "bytes {from}..{to} changed outside the planned writes"
        );
    }

    let check = run(
        "qemu-img",
        [
            OsStr::new("check"),
            OsStr::new("-f"),
            OsStr::new("vmdk"),
            out.as_os_str(),
        ],
    );
    assert!(
        check.code == 0 && check.both().contains("No errors"),
        "qemu-img check: {}",
        check.both()
    );
    let compare = run(
        "qemu-img",
        [
            OsStr::new("compare"),
            OsStr::new("-f"),
            OsStr::new("vmdk"),
            OsStr::new("-F"),
            OsStr::new("raw"),
            out.as_os_str(),
            out_raw.as_os_str(),
        ],
    );
    assert!(
        compare.code == 0 && compare.both().contains("Images are identical"),
        "qemu-img compare with the fixed raw image: {}",
        compare.both()
    );
    // libvmdk (under sleuthkit) opens a monolithicSparse file's data through the extent name in
    // its embedded descriptor, here the input's "disk.vmdk", looked up beside the file: the
    // output is judged under that name in a folder of its own, or fls would read the input.
    let judged = s.path("judged");
    std::fs::create_dir_all(&judged).unwrap();
    let judged = judged.join("disk.vmdk");
    std::fs::copy(&out, &judged).unwrap();
    // The content ID is kept: the descriptor is not rewritten.
    let info_in = run("vmdkinfo", [input.as_os_str()]);
    let info_out = run("vmdkinfo", [judged.as_os_str()]);
    assert!(
        info_out.code == 0 && info_out.both().contains("419430400 bytes"),
        "vmdkinfo: {}",
        info_out.both()
    );
    let cid = |t: &str| {
        t.lines()
            .find(|l| l.contains("Content identifier"))
            .map(str::to_string)
    };
    assert_eq!(cid(&info_in.text()), cid(&info_out.text()));
    assert!(cid(&info_out.text()).is_some());
    let stat = run("img_stat", [judged.as_os_str()]);
    assert!(
        stat.code == 0 && stat.both().contains("vmdk") && stat.both().contains("419430400"),
        "img_stat: {}",
        stat.both()
    );
    let names = fls_names(&judged);
    assert!(names.contains("CrowdStrike"), "fls reads the volume");
    assert_eq!(channel_files(&names), 0, "fls still sees a channel file");
    assert_check_clean(&out, "vmdk output");

    let again = s.path("again.vmdk");
    let r = fix_to(&out, &again, &[]);
    assert_eq!(r.code, 1, "second fix: {}", r.both());
    assert!(!again.exists());
    let r = kaifuku([OsStr::new("undo"), out.as_os_str(), undo.as_os_str()]);
    assert_eq!(r.code, 0, "undo: {}", r.both());
    assert_eq!(
        sha256(&out),
        sha256(&input),
        "undo did not restore the input"
    );
}

#[test]
fn sparse_fix_in_place_matches_the_copy_and_undoes() {
    let s = Scratch::new("vmdk-in-place");
    let input = convert(&s, "monolithicSparse", "disk.vmdk");
    let original = sha256(&input);
    let out = s.path("out.vmdk");
    let r = fix_to(&input, &out, &[]);
    assert_eq!(r.code, 0, "{}", r.both());
    let undo = s.path("disk.undo");
    let r = kaifuku([
        OsStr::new("fix"),
        input.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        undo.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert_eq!(sha256(&input), sha256(&out), "in place and copy differ");
    let r = kaifuku([OsStr::new("undo"), input.as_os_str(), undo.as_os_str()]);
    assert_eq!(r.code, 0, "undo: {}", r.both());
    assert_eq!(sha256(&input), original);
}

#[test]
fn inspect_reports_the_vmdk() {
    let s = Scratch::new("vmdk-inspect");
    for (subformat, format) in [
        ("monolithicSparse", "vmdk_sparse"),
        ("streamOptimized", "vmdk_stream_optimized"),
    ] {
        let image = convert(&s, subformat, &format!("{subformat}.vmdk"));
        let r = kaifuku([
            OsStr::new("inspect"),
            image.as_os_str(),
            OsStr::new("--json"),
        ]);
        assert_eq!(r.code, 0, "{subformat}: {}", r.both());
        let j: Value = serde_json::from_slice(&r.stdout).unwrap();
        let c = &j["container"];
        assert_eq!(c["format"], format);
        assert_eq!(c["virtual_size"], 419430400);
        assert_eq!(c["vmdk"]["subformat"], subformat);
        assert_eq!(c["vmdk"]["grain_size"], 65536);
        // The same volumes and matches as the raw disk it was made from.
        let raw = kaifuku([
            OsStr::new("inspect"),
            raw_fixture().as_os_str(),
            OsStr::new("--json"),
        ]);
        let rj: Value = serde_json::from_slice(&raw.stdout).unwrap();
        assert_eq!(j["volumes"], rj["volumes"], "{subformat}");
        let r = kaifuku([OsStr::new("inspect"), image.as_os_str()]);
        assert!(
            r.text().contains(&format!(
                "Container   VMDK {subformat}, virtual size 400.0 MiB"
            )),
            "{}",
            r.text()
        );
        assert!(r.text().contains("grain 64.0 KiB"), "{}", r.text());
    }
}

#[test]
fn stream_optimized_fix_is_refused_with_advice() {
    let s = Scratch::new("vmdk-stream");
    let input = convert(&s, "streamOptimized", "disk.vmdk");
    let out = s.path("out.vmdk");
    let undo = s.path("out.undo");
    let r = fix_to(&input, &out, &[OsStr::new("--undo"), undo.as_os_str()]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.both().contains("streamOptimized"), "{}", r.both());
    assert!(
        r.both().contains("subformat=monolithicSparse"),
        "{}",
        r.both()
    );
    assert!(!out.exists() && !undo.exists(), "output left behind");
}

#[test]
fn child_disk_is_refused_with_advice() {
    let s = Scratch::new("vmdk-child");
    let base = convert(&s, "monolithicSparse", "base.vmdk");
    let child = s.path("child.vmdk");
    run_ok(
        "qemu-img",
        [
            OsStr::new("create"),
            OsStr::new("-f"),
            OsStr::new("vmdk"),
            OsStr::new("-F"),
            OsStr::new("vmdk"),
            OsStr::new("-b"),
            base.as_os_str(),
            child.as_os_str(),
        ],
    );
    let r = kaifuku([OsStr::new("inspect"), child.as_os_str()]);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.both().contains("child disk"), "{}", r.both());
    let out = s.path("out.vmdk");
    let r = fix_to(&child, &out, &[]);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(!out.exists());
}
