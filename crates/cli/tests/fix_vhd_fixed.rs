//! `kaifuku fix --output-format vhd-fixed`: the fixed image written as a fixed VHD of whole MiB
//! (what Azure takes for upload) from every input format, judged by independent tools. qemu-img
//! makes the inputs from the raw Windows fixture (VHDX dynamic, VMDK streamOptimized and
//! monolithicSparse, compressed qcow2, a dynamic VHD whose CHS-rounded size is not whole MiB);
//! `qemu-img compare` must find each output's disk identical to the raw fixture fixed by kaifuku
//! (which `fix_oracle` judges against ntfs-3g's own `rm`), zeros past the input's end included;
//! `qemu-img info` and libvhdi's `vhdiinfo` must read it as a fixed VHD of the rounded size;
//! sleuthkit must read the volume through it without the channel files; `kaifuku check` must
//! find it clean. In place, with an undo file, onto a damaged write and in a batch are tested too.
//!
//! qemu-img, vhdiinfo (libvhdi-utils) and sleuthkit are required: without them these tests fail.

mod common;

use common::{assert_check_clean, fixtures, kaifuku, run, run_ok, sha256, Scratch};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// Partition 3 ("Windows") of gpt-win.raw, in sectors: where fls reads the volume.
const WINDOWS_SECTOR: &str = "239616";

fn raw_fixture() -> PathBuf {
    fixtures().join("gpt-win.raw")
}

/// `qemu-img convert` of the raw fixture to `format` with `options` (and `-c` when `compress`).
fn convert(s: &Scratch, name: &str, format: &str, options: &str, compress: bool) -> PathBuf {
    let out = s.path(name);
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("convert"),
        OsStr::new("-f"),
        OsStr::new("raw"),
        OsStr::new("-O"),
        OsStr::new(format),
    ];
    if !options.is_empty() {
        args.extend([OsStr::new("-o"), OsStr::new(options)]);
    }
    if compress {
        args.push(OsStr::new("-c"));
    }
    let raw = raw_fixture();
    args.extend([raw.as_os_str(), out.as_os_str()]);
    run_ok("qemu-img", args);
    out
}

fn fix_as_vhd(image: &Path, out: &Path, extra: &[&str]) -> common::Out {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("fix"),
        image.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--output-format"),
        OsStr::new("vhd-fixed"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    kaifuku(args)
}

/// `qemu-img info --output=json` of `image` read as `format`.
fn qemu_info(image: &Path, format: &str) -> Value {
    let out = run_ok(
        "qemu-img",
        [
            OsStr::new("info"),
            OsStr::new("--output=json"),
            OsStr::new("-f"),
            OsStr::new(format),
            image.as_os_str(),
        ],
    );
    serde_json::from_slice(&out).unwrap()
}

/// The virtual size qemu-img reads for `image` as `format`.
fn qemu_virtual_size(image: &Path, format: &str) -> u64 {
    qemu_info(image, format)["virtual-size"].as_u64().unwrap()
}

/// How many channel files sleuthkit lists as allocated on the Windows volume of `image`.
fn channel_files_fls(image: &Path) -> usize {
    common::fls_channel_files(image, WINDOWS_SECTOR, &[])
}

/// vhdiinfo's "Disk type", "Media size" (bytes) and "Identifier" of a VHD.
fn vhdiinfo(image: &Path) -> (String, u64, String) {
    let text = String::from_utf8_lossy(&run_ok("vhdiinfo", [image.as_os_str()])).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| panic!("vhdiinfo lists no {name}: {text}"))
    };
    let media = field("Media size");
    let bytes = media
        .split('(')
        .nth(1)
        .and_then(|b| b.split_whitespace().next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("vhdiinfo media size {media:?}"));
    (field("Disk type"), bytes, field("Identifier"))
}

/// Everything an output made from `input` (whose disk is `input_size` bytes) must pass.
fn judge(s: &Scratch, input: &Path, input_size: u64, out: &Path, fixed_raw: &Path) {
    let disk = input_size.div_ceil(MIB) * MIB;
    let len = std::fs::metadata(out).unwrap().len();
    assert_eq!(
        len,
        disk + 512,
        "{}: the disk rounded up to whole MiB, then the footer",
        input.display()
    );
    assert_eq!(
        qemu_virtual_size(out, "vpc"),
        disk,
        "qemu-img reads the rounded size"
    );
    let compare = run(
        "qemu-img",
        [
            OsStr::new("compare"),
            OsStr::new("-f"),
            OsStr::new("vpc"),
            OsStr::new("-F"),
            OsStr::new("raw"),
            out.as_os_str(),
            fixed_raw.as_os_str(),
        ],
    );
    assert!(
        compare.code == 0 && compare.both().contains("Images are identical"),
        "{}: qemu-img compare with the fixed raw image (zeros past its end): {}",
        input.display(),
        compare.both()
    );
    let (kind, media, _) = vhdiinfo(out);
    assert_eq!(kind, "Fixed", "vhdiinfo: disk type");
    assert_eq!(media, disk, "vhdiinfo: media size");
    assert_eq!(channel_files_fls(out), 0, "fls still sees a channel file");
    assert_check_clean(out, &format!("fixed VHD made from {}", input.display()));
    let _ = s;
}

/// The raw fixture fixed by kaifuku in its own format: the disk every output must hold.
fn fixed_raw(s: &Scratch) -> PathBuf {
    let out = s.path("fixed.raw");
    let r = kaifuku([
        OsStr::new("fix"),
        raw_fixture().as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    out
}

#[test]
fn every_input_format_becomes_a_fixed_vhd_of_the_fixed_disk() {
    let s = Scratch::new("vhd-fixed-formats");
    let fixed = fixed_raw(&s);
    let raw_size = std::fs::metadata(raw_fixture()).unwrap().len();
    assert_eq!(
        channel_files_fls(&raw_fixture()),
        3,
        "the fixture has its channel files"
    );
    let inputs = [
        (raw_fixture(), "raw"),
        (
            convert(&s, "in.vhdx", "vhdx", "subformat=dynamic", false),
            "vhdx",
        ),
        (
            convert(
                &s,
                "stream.vmdk",
                "vmdk",
                "subformat=streamOptimized",
                false,
            ),
            "vmdk",
        ),
        (
            convert(
                &s,
                "sparse.vmdk",
                "vmdk",
                "subformat=monolithicSparse",
                false,
            ),
            "vmdk",
        ),
        // Compressed clusters: the input's own container could not take the changes in place.
        (convert(&s, "compressed.qcow2", "qcow2", "", true), "qcow2"),
        // QEMU rounds a dynamic VHD up to its CHS geometry: not a whole number of MiB.
        (
            convert(&s, "chs.vhd", "vpc", "subformat=dynamic", false),
            "vpc",
        ),
    ];
    for (input, format) in &inputs {
        let size = qemu_virtual_size(input, format);
        let out = s.path(&format!(
            "{}.fixed.vhd",
            input.file_name().unwrap().to_string_lossy()
        ));
        let r = fix_as_vhd(input, &out, &[]);
        assert_eq!(r.code, 0, "{}: {}", input.display(), r.both());
        assert!(r.text().contains("Output      a fixed VHD"), "{}", r.text());
        assert!(r.text().contains("Verified"), "{}", r.text());
        judge(&s, input, size, &out, &fixed);
        if *format == "vpc" {
            assert_ne!(size % MIB, 0, "the CHS-rounded VHD tests the rounding");
        }
        if input == &raw_fixture() {
            assert_eq!(size, raw_size);
        }
    }
}

#[test]
fn a_vhd_input_keeps_its_identifier_and_the_input_is_untouched() {
    let s = Scratch::new("vhd-fixed-identity");
    let fixed = fixed_raw(&s);
    for name in ["gpt-win-fixed.vhd", "gpt-win-dynamic.vhd"] {
        let input = fixtures().join(name);
        let before = sha256(&input);
        let out = s.path(&format!("{name}.out.vhd"));
        let r = fix_as_vhd(&input, &out, &[]);
        assert_eq!(r.code, 0, "{name}: {}", r.both());
        judge(&s, &input, qemu_virtual_size(&input, "vpc"), &out, &fixed);
        assert_eq!(
            vhdiinfo(&out).2,
            vhdiinfo(&input).2,
            "{name}: the disk keeps its identifier"
        );
        assert_eq!(sha256(&input), before, "{name}: the input is not modified");
    }
    // Any other input gets a new identifier: two runs, two identifiers.
    let (a, b) = (s.path("a.vhd"), s.path("b.vhd"));
    assert_eq!(fix_as_vhd(&raw_fixture(), &a, &[]).code, 0);
    assert_eq!(fix_as_vhd(&raw_fixture(), &b, &[]).code, 0);
    assert_ne!(vhdiinfo(&a).2, vhdiinfo(&b).2);
}

#[test]
fn dry_run_and_json_say_what_would_be_written_and_write_nothing() {
    let s = Scratch::new("vhd-fixed-dry");
    let out = s.path("never.vhd");
    let r = fix_as_vhd(&raw_fixture(), &out, &["--dry-run", "--json"]);
    assert_eq!(r.code, 0, "{}", r.both());
    let doc: Value = serde_json::from_slice(&r.stdout).unwrap();
    let size = std::fs::metadata(raw_fixture()).unwrap().len();
    let disk = size.div_ceil(MIB) * MIB;
    assert_eq!(doc["output"]["format"], "vhd_fixed");
    assert_eq!(doc["output"]["disk_size"].as_u64(), Some(disk));
    assert_eq!(doc["output"]["file_size"].as_u64(), Some(disk + 512));
    assert!(doc["plan"]["deletions"]
        .as_array()
        .is_some_and(|d| d.len() == 3));
    assert!(!out.exists(), "a dry run writes nothing");
}

#[test]
fn in_place_undo_and_devices_are_refused_before_anything_is_written() {
    let s = Scratch::new("vhd-fixed-refused");
    let image = s.path("disk.raw");
    common::sparse_copy(&raw_fixture(), &image);
    let before = sha256(&image);
    let undo = s.path("disk.undo");
    let out = s.path("out.vhd");

    let r = kaifuku([
        OsStr::new("fix"),
        image.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        undo.as_os_str(),
        OsStr::new("--output-format"),
        OsStr::new("vhd-fixed"),
    ]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(
        r.stderr.contains("cannot edit the image in place"),
        "{}",
        r.stderr
    );

    let r = fix_as_vhd(&image, &out, &["--undo", undo.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("--undo does not go with"), "{}", r.stderr);

    let r = fix_as_vhd(&image, Path::new("/dev/null"), &[]);
    assert_ne!(r.code, 0, "{}", r.both());

    assert!(!out.exists() && !undo.exists(), "nothing was written");
    assert_eq!(sha256(&image), before, "the image is unchanged");
    let leftovers: Vec<_> = std::fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "disk.raw")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn an_output_that_does_not_verify_is_removed() {
    let s = Scratch::new("vhd-fixed-damaged");
    let out = s.path("out.vhd");
    // The test hook flips the first changed byte of the written file before it is read back.
    let r = run(
        "env",
        [
            "KAIFUKU_TEST_DAMAGE_WRITTEN_OUTPUT=1",
            env!("CARGO_BIN_EXE_kaifuku"),
            "fix",
            raw_fixture().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--output-format",
            "vhd-fixed",
        ],
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("was removed"), "{}", r.stderr);
    assert!(!out.exists(), "the output that failed verification is gone");
}

#[test]
fn a_batch_writes_every_image_as_name_fixed_vhd() {
    let s = Scratch::new("vhd-fixed-batch");
    let fixed = fixed_raw(&s);
    let inputs = s.path("in");
    std::fs::create_dir(&inputs).unwrap();
    let vhdx = convert(&s, "in/web01.vhdx", "vhdx", "subformat=dynamic", false);
    let qcow = convert(&s, "in/web02.qcow2", "qcow2", "", true);
    let out_dir = s.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    let r = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--out-dir"),
        out_dir.as_os_str(),
        OsStr::new("--output-format"),
        OsStr::new("vhd-fixed"),
        vhdx.as_os_str(),
        qcow.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    for (input, format, name) in [
        (&vhdx, "vhdx", "web01-fixed.vhd"),
        (&qcow, "qcow2", "web02-fixed.vhd"),
    ] {
        let out = out_dir.join(name);
        assert!(out.exists(), "{name} written: {}", r.both());
        judge(&s, input, qemu_virtual_size(input, format), &out, &fixed);
    }
}

#[test]
fn a_qcow2_that_cannot_take_the_changes_is_fixed_as_a_fixed_vhd() {
    // Its clusters are shared with an internal snapshot: refused in place, with the way out named.
    let s = Scratch::new("vhd-fixed-snapshot");
    let image = fixtures().join("bare-64k-snapshot.qcow2");
    let same = s.path("same.qcow2");
    let r = kaifuku([
        OsStr::new("fix"),
        image.as_os_str(),
        OsStr::new("-o"),
        same.as_os_str(),
    ]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("snapshot"), "{}", r.stderr);
    assert!(
        r.stderr.contains("--output-format vhd-fixed"),
        "{}",
        r.stderr
    );
    assert!(!same.exists());

    let out = s.path("snap.vhd");
    let r = fix_as_vhd(&image, &out, &[]);
    assert_eq!(r.code, 0, "{}", r.both());
    let fixed_raw = s.path("fixed.raw");
    let r = kaifuku([
        OsStr::new("fix"),
        fixtures().join("bare-64k.raw").as_os_str(),
        OsStr::new("-o"),
        fixed_raw.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let compare = run(
        "qemu-img",
        [
            OsStr::new("compare"),
            OsStr::new("-f"),
            OsStr::new("vpc"),
            OsStr::new("-F"),
            OsStr::new("raw"),
            out.as_os_str(),
            fixed_raw.as_os_str(),
        ],
    );
    assert!(
        compare.code == 0 && compare.both().contains("Images are identical"),
        "the snapshot's current disk, fixed: {}",
        compare.both()
    );
    assert_eq!(vhdiinfo(&out).0, "Fixed");
    assert_check_clean(&out, "fixed VHD of a qcow2 with a snapshot");
}
