//! `kaifuku fix` on VMDK images made by qemu-img from the raw Windows fixture, judged by
//! independent tools: the monolithicSparse output passes `qemu-img check`, `qemu-img compare`
//! finds its disk identical to the raw fixture fixed the same way, libvmdk's `vmdkinfo` and
//! sleuthkit (`img_stat`, `fls`, which read VMDK directly) accept it and no longer see the files,
//! only the planned bytes of the file change, `--in-place` writes the same bytes, and undo restores
//! the input. A streamOptimized fix is re-streamed in the same format and judged the same way,
//! plus its layout read by the specification and ntfs-3g mounting the volume; undo and in-place
//! are refused for it, as are hostile streams and child disks.
//!
//! qemu-img, vmdkinfo (libvmdk-utils), sleuthkit, sfdisk and ntfs-3g are required: without them these tests fail.

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

/// The plan's writes to the output file (`fix --json`): start, end and label of each.
fn file_writes(fix_json: &[u8]) -> Vec<(u64, u64, String)> {
    let plan: Value = serde_json::from_slice(fix_json).unwrap();
    plan["file_writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let at = w["file_offset"].as_u64().unwrap();
            let label = w["label"].as_str().unwrap().to_string();
            (at, at + w["len"].as_u64().unwrap(), label)
        })
        .collect()
}

/// QEMU's judgement of a fixed VMDK: `qemu-img check` finds no errors, and `qemu-img compare`
/// finds its virtual disk identical to the raw fixture fixed by the same rule.
fn assert_qemu_accepts(out: &Path, fixed_raw: &Path) {
    assert_qemu_check(out);
    common::assert_qemu_identical(
        out,
        "vmdk",
        fixed_raw,
        "the fixed VMDK and the fixed raw image",
    );
}

/// `qemu-img check` finds no errors in the VMDK `out`.
fn assert_qemu_check(out: &Path) {
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
}

/// libvmdk's judgement of a fixed VMDK made from `input`: vmdkinfo reads it (with `kind` in its
/// description) and finds the input's content ID (the descriptor is not rewritten), and
/// sleuthkit, reading through libvmdk, finds the CrowdStrike folder without a channel file.
///
/// libvmdk opens a monolithic file's data through the extent name in its embedded descriptor,
/// here the input's "disk.vmdk", looked up beside the file: the output is judged under that name
/// in a folder of its own, or the tools would read the input. Returns that copy.
fn assert_libvmdk_accepts(s: &Scratch, input: &Path, out: &Path, kind: &str) -> PathBuf {
    let judged = s.path("judged");
    std::fs::create_dir_all(&judged).unwrap();
    let judged = judged.join("disk.vmdk");
    std::fs::copy(out, &judged).unwrap();
    let info_in = run("vmdkinfo", [input.as_os_str()]);
    let info_out = run("vmdkinfo", [judged.as_os_str()]);
    assert!(
        info_out.code == 0
            && info_out.both().contains("419430400 bytes")
            && info_out.both().contains(kind),
        "vmdkinfo: {}",
        info_out.both()
    );
    let cid = |t: &str| {
        t.lines()
            .find(|l| l.contains("Content identifier"))
            .map(str::to_string)
    };
    assert!(cid(&info_out.text()).is_some(), "{}", info_out.text());
    assert_eq!(
        cid(&info_in.text()),
        cid(&info_out.text()),
        "the CID is kept"
    );
    let names = fls_names(&judged);
    assert!(names.contains("CrowdStrike"), "fls reads the volume");
    assert_eq!(channel_files(&names), 0, "fls still sees a channel file");
    judged
}

/// Fixed once: a second fix of `out` finds nothing to do and writes nothing.
fn assert_nothing_left_to_fix(s: &Scratch, out: &Path) {
    let again = s.path("again.vmdk");
    let r = fix_to(out, &again, &[]);
    assert_eq!(r.code, 1, "second fix: {}", r.both());
    assert!(!again.exists());
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
    let writes = file_writes(&r.stdout);
    for w in &writes {
        assert!(w.2.contains("VMDK grain"), "{w:?}");
    }
    assert!(!writes.is_empty());
    // Only planned bytes change: header, descriptor, directories and tables stay as they were.
    let diffs = diff_files(&input, &out);
    assert!(!diffs.is_empty());
    for (from, to) in &diffs {
        assert!(
            writes.iter().any(|(a, b, _)| a <= from && to <= b),
            "bytes {from}..{to} changed outside the planned writes"
        );
    }

    assert_qemu_accepts(&out, &out_raw);
    let judged = assert_libvmdk_accepts(&s, &input, &out, "vmdk");
    let stat = run("img_stat", [judged.as_os_str()]);
    assert!(
        stat.code == 0 && stat.both().contains("vmdk") && stat.both().contains("419430400"),
        "img_stat: {}",
        stat.both()
    );
    assert_check_clean(&out, "vmdk output");

    assert_nothing_left_to_fix(&s, &out);
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

/// The virtual disk of a VMDK, converted to raw by qemu-img.
fn to_raw(s: &Scratch, image: &Path, name: &str) -> PathBuf {
    let raw = s.path(name);
    run_ok(
        "qemu-img",
        [
            OsStr::new("convert"),
            OsStr::new("-f"),
            OsStr::new("vmdk"),
            OsStr::new("-O"),
            OsStr::new("raw"),
            image.as_os_str(),
            raw.as_os_str(),
        ],
    );
    raw
}

/// The sector range of the "Windows" partition as sfdisk reads it from a raw disk.
fn windows_partition(raw: &Path) -> (u64, u64) {
    let table: Value =
        serde_json::from_slice(&run_ok("sfdisk", [OsStr::new("-J"), raw.as_os_str()])).unwrap();
    let p = table["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["start"].as_u64() == Some(WINDOWS_SECTOR.parse().unwrap()))
        .expect("the Windows partition");
    (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The sector of the compressed grain stored last in a QEMU streamOptimized image (whose header
/// gives the grain directory; tables follow it).
/// The sector where grain `grain` of a stream whose directory follows its header is stored.
fn grain_sector(image: &Path, grain: u64) -> u64 {
    let bytes = std::fs::read(image).unwrap();
    let gd = u64_at(&bytes, 56) as usize * 512;
    let per_table = u64::from(u32_at(&bytes, 44));
    let gt = u32_at(&bytes, gd + 4 * (grain / per_table) as usize) as usize * 512;
    let sector = u64::from(u32_at(&bytes, gt + 4 * (grain % per_table) as usize));
    assert!(sector > 0, "premise: grain {grain} is stored");
    sector
}

#[test]
fn stream_optimized_fix_is_judged_by_qemu_libvmdk_ntfs3g_and_sleuthkit() {
    let s = Scratch::new("vmdk-stream");
    let input = convert(&s, "streamOptimized", "disk.vmdk");
    let input_len = std::fs::metadata(&input).unwrap().len();
    assert_eq!(channel_files(&fls_names(&input)), 3, "premise");
    let out_raw = s.path("out.raw");
    let r = fix_to(&raw_fixture(), &out_raw, &[]);
    assert_eq!(r.code, 0, "raw: {}", r.both());

    let out = s.path("out.vmdk");
    let r = fix_to(&input, &out, &[OsStr::new("--json")]);
    assert_eq!(r.code, 0, "{}", r.both());
    let writes = file_writes(&r.stdout);
    let labelled = |what: &str| writes.iter().filter(|w| w.2.contains(what)).count();
    assert!(labelled("compressed again") > 0, "{writes:?}");
    assert_eq!(labelled("VMDK grain tables"), 1, "{writes:?}");
    assert_eq!(labelled("VMDK grain directory"), 1, "{writes:?}");
    assert_eq!(labelled("VMDK footer"), 1, "{writes:?}");
    assert_eq!(labelled("end-of-stream"), 1, "{writes:?}");
    // QEMU keeps its directory after the header: the header now defers to the footer.
    assert_eq!(labelled("VMDK header"), 1, "{writes:?}");
    // The output is the input up to its last grain, then the new bytes: the writes are
    // contiguous from there to the end of the output, and nothing else changes.
    let out_len = std::fs::metadata(&out).unwrap().len();
    let tail: Vec<&(u64, u64, String)> = writes.iter().filter(|w| w.0 > 0).collect();
    assert_eq!(tail.last().unwrap().1, out_len, "the writes end the file");
    for pair in tail.windows(2) {
        assert_eq!(
            pair[0].1, pair[1].0,
            "a gap between the new bytes: {pair:?}"
        );
    }
    let kept = tail[0].0;
    assert!(kept <= input_len && kept.is_multiple_of(512), "{kept}");
    for (from, to) in diff_files(&input, &out) {
        assert!(
            to <= 512 || from >= kept,
            "bytes {from}..{to} changed in the part of the input that is kept"
        );
    }

    // The stream's layout, read by the specification: header GD_AT_END, footer marker, footer
    // with the directory's place after a grain directory marker, end-of-stream marker.
    let bytes = std::fs::read(&out).unwrap();
    let end = bytes.len();
    assert_eq!(&bytes[..4], b"KDMV");
    assert_eq!(u64_at(&bytes, 56), u64::MAX, "header gdOffset");
    let footer_marker = &bytes[end - 1536..end - 1024];
    assert_eq!(
        (
            u64_at(footer_marker, 0),
            u32_at(footer_marker, 8),
            u32_at(footer_marker, 12)
        ),
        (1, 0, 3)
    );
    let footer = &bytes[end - 1024..end - 512];
    assert_eq!(&footer[..4], b"KDMV");
    assert!(bytes[end - 512..].iter().all(|&b| b == 0), "end-of-stream");
    let gd = u64_at(footer, 56) as usize * 512;
    let gd_marker = &bytes[gd - 512..gd];
    assert_eq!((u32_at(gd_marker, 8), u32_at(gd_marker, 12)), (0, 2));
    assert_eq!(&footer[..56], &bytes[..56], "the footer repeats the header");

    assert_qemu_accepts(&out, &out_raw);
    assert_libvmdk_accepts(&s, &input, &out, "Stream optimized");
    assert_check_clean(&out, "streamOptimized output");

    // ntfs-3g mounts the Windows volume of the output (converted to raw by qemu-img).
    let disk = to_raw(&s, &out, "converted.raw");
    let (start, sectors) = windows_partition(&disk);
    let volume = s.path("windows.vol");
    common::extract(&disk, start * 512, sectors * 512, &volume);
    let mount = common::ntfs3g(&volume, &s.path("mnt"), false);
    let dir = mount.p("Windows/System32/drivers/CrowdStrike");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    mount.unmount();
    assert!(
        !left
            .iter()
            .any(|n| n.starts_with("C-00000291") && n.ends_with(".sys")),
        "ntfs-3g still lists a channel file: {left:?}"
    );

    assert_nothing_left_to_fix(&s, &out);
}

/// How many grain tables the plan rewrites (from the label of its one grain-tables write).
fn tables_written(writes: &[(u64, u64, String)]) -> u64 {
    let label = &writes
        .iter()
        .find(|w| w.2.contains("VMDK grain tables"))
        .expect("a grain-tables write")
        .2;
    label
        .split('(')
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{label}"))
}

#[test]
fn a_stream_is_extended_with_only_the_tables_that_change_and_can_be_fixed_again() {
    let s = Scratch::new("vmdk-stream-again");
    let input = convert(&s, "streamOptimized", "disk.vmdk");
    let input_len = std::fs::metadata(&input).unwrap().len();
    // QEMU's stream (no footer): kept whole but its end-of-stream marker; only the grain tables
    // that map a changed grain are written again (the disk has 13 tables of 32 MiB).
    let out1 = s.path("once.vmdk");
    let r = fix_to(&input, &out1, &[OsStr::new("--json")]);
    assert_eq!(r.code, 0, "{}", r.both());
    let writes = file_writes(&r.stdout);
    let tables = tables_written(&writes);
    assert!((1..13).contains(&tables), "{tables} tables rewritten");
    let first_new = writes
        .iter()
        .filter(|w| w.0 > 0)
        .map(|w| w.0)
        .min()
        .unwrap();
    assert_eq!(
        first_new,
        input_len - 512,
        "only the end-of-stream marker is replaced"
    );

    // The output (a stream with a footer) fixed again, for another file: appended to the same
    // way, and judged against the raw disk fixed twice.
    let other = OsStr::new("\\Windows\\Temp\\C-00000291*.sys");
    let raw1 = s.path("once.raw");
    assert_eq!(fix_to(&raw_fixture(), &raw1, &[]).code, 0);
    let raw2 = s.path("twice.raw");
    let r = fix_to(&raw1, &raw2, &[OsStr::new("--path"), other]);
    assert_eq!(r.code, 0, "raw, again: {}", r.both());
    let out2 = s.path("twice.vmdk");
    let r = fix_to(
        &out1,
        &out2,
        &[OsStr::new("--path"), other, OsStr::new("--json")],
    );
    assert_eq!(r.code, 0, "{}", r.both());
    let writes = file_writes(&r.stdout);
    let out1_len = std::fs::metadata(&out1).unwrap().len();
    let first_new = writes
        .iter()
        .filter(|w| w.0 > 0)
        .map(|w| w.0)
        .min()
        .unwrap();
    assert_eq!(
        first_new,
        out1_len - 1536,
        "only the footer and end-of-stream are replaced"
    );
    assert!(tables_written(&writes) < 13);
    let grown = std::fs::metadata(&out2).unwrap().len() - out1_len;
    assert!(grown < 1 << 20, "the stream grew by {grown} bytes");
    assert_qemu_accepts(&out2, &raw2);
    assert_libvmdk_accepts(&s, &input, &out2, "Stream optimized");
    assert_check_clean(&out2, "a stream fixed twice");
}

/// A stream is extended after its end, so the fix makes the file longer: the undo file (format
/// version 3) writes the old bytes back and cuts the file to its old size. In place and as a
/// copy the result is the same file; `kaifuku undo` on either gives back the input byte for byte;
/// bytes changed after the old end stop the undo unless forced. A stream whose fix would make the
/// file shorter (bytes after its end-of-stream marker, dropped by the whole re-stream) is refused
/// in place with nothing changed.
#[test]
fn stream_optimized_fix_in_place_matches_the_copy_and_undoes() {
    let s = Scratch::new("vmdk-stream-undo");
    let input = convert(&s, "streamOptimized", "disk.vmdk");
    let original = sha256(&input);
    let old_len = std::fs::metadata(&input).unwrap().len();
    let out = s.path("out.vmdk");
    let out_undo = s.path("out.undo");
    let r = fix_to(&input, &out, &[OsStr::new("--undo"), out_undo.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.both());
    let fixed = sha256(&out);
    let new_len = std::fs::metadata(&out).unwrap().len();
    assert!(new_len > old_len, "the stream is extended");
    assert_eq!(
        &std::fs::read(&out_undo).unwrap()[..16],
        b"KAIFUKU-UNDO\0\0\0\x03",
        "a growing fix writes undo format version 3"
    );

    let undo = s.path("disk.undo");
    let r = kaifuku([
        OsStr::new("fix"),
        input.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        undo.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert_eq!(sha256(&input), fixed, "in place and copy differ");
    assert_qemu_check(&input);
    assert_check_clean(&input, "a stream fixed in place");

    // The copy's added bytes changed: refused unless forced.
    let tampered = s.path("tampered.vmdk");
    std::fs::copy(&out, &tampered).unwrap();
    let mut bytes = std::fs::read(&tampered).unwrap();
    bytes[old_len as usize + 100] ^= 0x40;
    std::fs::write(&tampered, &bytes).unwrap();
    let r = kaifuku([
        OsStr::new("undo"),
        tampered.as_os_str(),
        out_undo.as_os_str(),
    ]);
    assert_ne!(r.code, 0, "{}", r.both());
    assert!(r.both().contains("--force"), "{}", r.both());
    assert_eq!(
        std::fs::metadata(&tampered).unwrap().len(),
        new_len,
        "nothing restored"
    );
    let r = kaifuku([
        OsStr::new("undo"),
        tampered.as_os_str(),
        out_undo.as_os_str(),
        OsStr::new("--force"),
    ]);
    assert_eq!(r.code, 0, "forced: {}", r.both());
    assert_eq!(sha256(&tampered), original, "forced undo of the copy");

    for (image, undo_file) in [(&out, &out_undo), (&input, &undo)] {
        let r = kaifuku([OsStr::new("undo"), image.as_os_str(), undo_file.as_os_str()]);
        assert_eq!(r.code, 0, "undo: {}", r.both());
        assert_eq!(std::fs::metadata(image).unwrap().len(), old_len);
        assert_eq!(sha256(image), original, "{} undone", image.display());
    }

    // Bytes after the end-of-stream marker: the whole re-stream drops them, the file would
    // shrink, and in place that is refused with the image untouched.
    let padded = s.path("padded.vmdk");
    let mut bytes = std::fs::read(&input).unwrap();
    bytes.extend(std::iter::repeat_n(0xAB, 1 << 20));
    std::fs::write(&padded, &bytes).unwrap();
    let before = sha256(&padded);
    let padded_undo = s.path("padded.undo");
    let r = kaifuku([
        OsStr::new("fix"),
        padded.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        padded_undo.as_os_str(),
    ]);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.both().contains("shorter file"), "{}", r.both());
    assert!(!padded_undo.exists(), "undo file left behind");
    assert_eq!(sha256(&padded), before, "the image changed");
}

#[test]
fn hostile_stream_optimized_images_are_refused_without_output() {
    let s = Scratch::new("vmdk-stream-hostile");
    let input = convert(&s, "streamOptimized", "disk.vmdk");
    let bytes = std::fs::read(&input).unwrap();
    // A grain the fix rewrites (whose marker it must read and trust): the one holding the
    // plan's first changed byte. (The rest of the stream is kept as it is, so a lie in a grain
    // the fix does not touch is not the fix's to find.)
    let r = fix_to(
        &input,
        &s.path("unused.vmdk"),
        &[OsStr::new("--dry-run"), OsStr::new("--json")],
    );
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    let first_patch = plan["plan"]["patches"][0]["offset"].as_u64().unwrap();
    let last = grain_sector(&input, first_patch / 65536) as usize * 512;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Cut short: the last grains are gone.
    cases.push(("truncated", bytes[..bytes.len() / 2].to_vec()));
    // The grain directory far past the end of the file.
    let mut gd_past = bytes.clone();
    gd_past[56..64].copy_from_slice(&(1u64 << 40).to_le_bytes());
    cases.push(("directory past the end", gd_past));
    // The rewritten grain's marker names another grain.
    let mut wrong_lba = bytes.clone();
    let lba = u64_at(&bytes, last) + 128;
    wrong_lba[last..last + 8].copy_from_slice(&lba.to_le_bytes());
    cases.push(("marker naming another grain", wrong_lba));
    // The rewritten grain's marker claims no data, or less than its compressed data: it cannot
    // be read.
    for (what, len) in [
        ("marker of no data", 0u32),
        ("marker shorter than its data", 100),
    ] {
        let mut lying = bytes.clone();
        lying[last + 8..last + 12].copy_from_slice(&len.to_le_bytes());
        cases.push((what, lying));
    }
    // A marker claiming more than its data still reads (the compressed stream ends where it
    // ends); the fix replaces that grain with a new one, and the old one stays unreferenced: the
    // output is sound.
    let fixed_raw = s.path("fixed.raw");
    assert_eq!(fix_to(&raw_fixture(), &fixed_raw, &[]).code, 0);
    for len in [60_000u32, 69_536] {
        let mut long = bytes.clone();
        long[last + 8..last + 12].copy_from_slice(&len.to_le_bytes());
        let path = s.path("long.vmdk");
        std::fs::write(&path, &long).unwrap();
        let out = s.path("long-out.vmdk");
        let _ = std::fs::remove_file(&out);
        let r = fix_to(&path, &out, &[]);
        assert_eq!(r.code, 0, "marker of {len} bytes: {}", r.both());
        assert_qemu_accepts(&out, &fixed_raw);
    }
    for (what, image) in cases {
        let path = s.path("hostile.vmdk");
        std::fs::write(&path, &image).unwrap();
        let out = s.path("hostile-out.vmdk");
        let r = fix_to(&path, &out, &[]);
        assert!(
            r.code != 0 && r.code != 1,
            "{what}: exit {} {}",
            r.code,
            r.both()
        );
        assert!(!out.exists(), "{what}: output written");
        assert!(
            r.both().contains("VMDK") || r.both().contains("vmdk"),
            "{what}: {}",
            r.both()
        );
    }
}

/// A child disk made by `qemu-img create -b` is read through its parent when the parent is where
/// the child names it (the fix itself is judged in `fix_oracle.rs`); with the parent moved away,
/// the image does not open, and the error names where the parent was looked for and how to point
/// the child at it. Nothing is written.
#[test]
fn child_disk_without_its_parent_is_an_error_with_advice() {
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
    assert_eq!(r.code, 0, "{}", r.both());
    std::fs::rename(&base, s.path("moved.vmdk")).unwrap();
    let r = kaifuku([OsStr::new("inspect"), child.as_os_str()]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.both().contains("base.vmdk"), "{}", r.both());
    assert!(r.both().contains("qemu-img rebase"), "{}", r.both());
    let out = s.path("out.vmdk");
    let r = fix_to(&child, &out, &[]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(!out.exists());
}
