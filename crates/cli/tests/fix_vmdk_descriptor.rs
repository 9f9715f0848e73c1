//! `kaifuku` on VMDKs kept as a text descriptor and data files (ESXi's `disk.vmdk` +
//! `disk-flat.vmdk`, Workstation's split preallocated and split growable disks), judged by
//! independent tools:
//! `qemu-img compare` finds the fixed copy's disk identical to the raw fixture fixed the same way,
//! libvmdk's `vmdkinfo` and sleuthkit (reading through libvmdk) accept it and no longer see the
//! channel files, the copy's descriptor is the input's with only the data file names changed, the
//! input's files are untouched, in-place fixing writes the same disk and undo restores every data
//! file; a split growable disk is changed in the grains its extents have. Refusals (an output over
//! a data file, taken data file names, a missing or short data file, ESXi snapshot extents, a
//! SPARSE extent that is not one or of another size, child disks, a copy that does not verify)
//! leave nothing behind, and the batch
//! reads a folder's descriptor with its data files as one disk.
//!
//! The descriptors are QEMU's (`qemu-img convert -O vmdk -o subformat=monolithicFlat`) or written
//! here by hand in VMware's published syntax, and QEMU reading them is the premise of each test.
//!
//! qemu-img, vmdkinfo (libvmdk-utils) and sleuthkit are required: without them these tests fail.

mod common;

use common::{assert_check_clean, fixtures, kaifuku, run, run_ok, sha256, Scratch};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Partition 3 ("Windows") of gpt-win.raw, in sectors: where fls reads the volume.
const WINDOWS_SECTOR: &str = "239616";
const MIB: u64 = 1024 * 1024;

fn raw_fixture() -> PathBuf {
    fixtures().join("gpt-win.raw")
}

/// The raw fixture fixed by `kaifuku fix` (the reference every fixed disk is compared with).
fn fixed_raw(s: &Scratch) -> PathBuf {
    let out = s.path("fixed.raw");
    let r = kaifuku([
        OsStr::new("fix"),
        raw_fixture().as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "raw fix: {}", r.both());
    out
}

/// `qemu-img compare` of a descriptor's disk with a raw image.
fn assert_same_disk(vmdk: &Path, raw: &Path, ctx: &str) {
    common::assert_qemu_identical(vmdk, "vmdk", raw, ctx);
}

/// Channel files sleuthkit lists on the Windows volume of `image` (read through libvmdk).
fn channel_files(image: &Path) -> usize {
    common::fls_channel_files(image, WINDOWS_SECTOR, &["-i", "vmdk"])
}

/// A descriptor splitting the raw fixture (400 MiB) into three FLAT extents; with `lead`, the
/// second is stored after 1 MiB of unrelated bytes (offset 2048 sectors), as the syntax allows.
/// (libvmdk reads such an offset but does not apply it, so only QEMU judges those disks.)
/// Returns the descriptor and its data files.
fn split_disk(s: &Scratch, name: &str, lead: bool) -> (PathBuf, Vec<PathBuf>) {
    let raw = std::fs::read(raw_fixture()).unwrap();
    assert_eq!(raw.len() as u64, 400 * MIB, "premise: the fixture's size");
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| s.path(&format!("{name}-f00{i}.vmdk")))
        .collect();
    std::fs::write(&files[0], &raw[..(100 * MIB) as usize]).unwrap();
    let lead_len = if lead { MIB } else { 0 };
    let mut second: Vec<u8> = (0..lead_len).map(|i| (i * 7 % 251) as u8).collect();
    second.extend_from_slice(&raw[(100 * MIB) as usize..(350 * MIB) as usize]);
    std::fs::write(&files[1], &second).unwrap();
    std::fs::write(&files[2], &raw[(350 * MIB) as usize..]).unwrap();
    let descriptor = s.path(&format!("{name}.vmdk"));
    std::fs::write(
        &descriptor,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=5c0ffee5\nparentCID=ffffffff\n\
             createType=\"twoGbMaxExtentFlat\"\n\n# Extent description\n\
             RW 204800 FLAT \"{name}-f001.vmdk\" 0\nRW 512000 FLAT \"{name}-f002.vmdk\" {offset}\n\
             RW 102400 FLAT \"{name}-f003.vmdk\" 0\n\n# The Disk Data Base\n#DDB\n\n\
             ddb.adapterType = \"lsilogic\"\nddb.geometry.cylinders = \"812\"\n",
            offset = lead_len / 512
        ),
    )
    .unwrap();
    assert_same_disk(
        &descriptor,
        &raw_fixture(),
        "premise: QEMU reads the split disk",
    );
    (descriptor, files)
}

/// `qemu-img convert` of the raw `from` into a VMDK of `subformat` at `to`.
fn to_vmdk(from: &Path, subformat: &str, to: &Path) {
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
            from.as_os_str(),
            to.as_os_str(),
        ],
    );
}

fn fix(args: &[&OsStr]) -> common::Out {
    let mut all = vec![OsStr::new("fix")];
    all.extend_from_slice(args);
    kaifuku(all)
}

#[test]
fn monolithic_flat_and_vmfs_copies_are_judged_by_qemu_libvmdk_and_sleuthkit() {
    let s = Scratch::new("vmdk-desc-mono");
    let reference = fixed_raw(&s);
    let input = s.path("disk.vmdk");
    to_vmdk(&raw_fixture(), "monolithicFlat", &input);
    // ESXi's form of the same disk: one VMFS extent without an offset.
    let vmfs = s.path("esxi.vmdk");
    let text = std::fs::read_to_string(&input).unwrap();
    let text = text.trim_end_matches('\0');
    assert!(
        text.contains("RW 819200 FLAT \"disk-flat.vmdk\" 0"),
        "{text}"
    );
    std::fs::write(
        &vmfs,
        text.replace("monolithicFlat", "vmfs")
            .replace("FLAT \"disk-flat.vmdk\" 0", "VMFS \"disk-flat.vmdk\""),
    )
    .unwrap();
    assert_same_disk(
        &vmfs,
        &raw_fixture(),
        "premise: QEMU reads the VMFS descriptor",
    );

    for (input, out_name) in [(&input, "fixed.vmdk"), (&vmfs, "fixed-esxi.vmdk")] {
        let before_desc = sha256(input);
        let before_data = sha256(&s.path("disk-flat.vmdk"));
        assert_eq!(channel_files(input), 3, "premise");
        let r = kaifuku([
            OsStr::new("inspect"),
            OsStr::new("--json"),
            input.as_os_str(),
        ]);
        assert_eq!(r.code, 0, "inspect: {}", r.both());
        let report: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        assert_eq!(
            report["data_files"][0]
                .as_str()
                .map(|p| p.ends_with("disk-flat.vmdk")),
            Some(true),
            "{report}"
        );

        let out = s.path(out_name);
        let r = fix(&[input.as_os_str(), OsStr::new("-o"), out.as_os_str()]);
        assert_eq!(r.code, 0, "{}", r.both());
        let data = s.path(&out_name.replace(".vmdk", "-flat.vmdk"));
        assert!(
            r.text().contains(&data.display().to_string()),
            "{}",
            r.both()
        );
        // The copy's descriptor is the input's, naming its own data file.
        let in_text = std::fs::read_to_string(input).unwrap();
        let out_text = std::fs::read_to_string(&out).unwrap();
        let data_name = data.file_name().unwrap().to_str().unwrap();
        assert_eq!(out_text, in_text.replace("disk-flat.vmdk", data_name));
        // The input is untouched.
        assert_eq!(sha256(input), before_desc);
        assert_eq!(sha256(&s.path("disk-flat.vmdk")), before_data);

        assert_same_disk(&out, &reference, "the fixed copy");
        let info = run("vmdkinfo", [out.as_os_str()]);
        assert!(
            info.code == 0 && info.both().contains("419430400 bytes"),
            "vmdkinfo: {}",
            info.both()
        );
        assert_eq!(channel_files(&out), 0, "fls still sees a channel file");
        assert_check_clean(&out, "described copy");
        // Fixed once: nothing left to do, nothing written.
        let again = s.path("again.vmdk");
        let r = fix(&[out.as_os_str(), OsStr::new("-o"), again.as_os_str()]);
        assert_eq!(r.code, 1, "second fix: {}", r.both());
        assert!(!again.exists() && !s.path("again-flat.vmdk").exists());
    }
}

#[test]
fn split_flat_disk_is_fixed_as_a_copy_in_place_and_as_a_fixed_vhd_and_undone() {
    let s = Scratch::new("vmdk-desc-split");
    let reference = fixed_raw(&s);
    let (input, files) = split_disk(&s, "web01", false);
    let originals: Vec<String> = files.iter().map(|f| sha256(f)).collect();

    let out = s.path("fixed.vmdk");
    let r = fix(&[input.as_os_str(), OsStr::new("-o"), out.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.both());
    let out_files: Vec<PathBuf> = (1..=3)
        .map(|i| s.path(&format!("fixed-f00{i}.vmdk")))
        .collect();
    for (o, i) in out_files.iter().zip(&files) {
        assert_eq!(
            std::fs::metadata(o).unwrap().len(),
            std::fs::metadata(i).unwrap().len(),
            "{} keeps its original's size",
            o.display()
        );
    }
    assert_same_disk(&out, &reference, "the fixed split copy");
    assert_eq!(channel_files(&out), 0);
    assert_check_clean(&out, "split copy");
    for (f, h) in files.iter().zip(&originals) {
        assert_eq!(&sha256(f), h, "{} changed", f.display());
    }

    // A fixed VHD of the same disk.
    let vhd = s.path("fixed.vhd");
    let r = fix(&[
        input.as_os_str(),
        OsStr::new("--output-format"),
        OsStr::new("vhd-fixed"),
        OsStr::new("-o"),
        vhd.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    common::assert_qemu_identical(&vhd, "vpc", &reference, "the fixed VHD of the split disk");

    // In place: the same disk; the undo file restores every data file.
    let undo = s.path("web01.undo");
    let r = fix(&[
        input.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        undo.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert_same_disk(&input, &reference, "fixed in place");
    let r = kaifuku([OsStr::new("undo"), input.as_os_str(), undo.as_os_str()]);
    assert_eq!(r.code, 0, "undo: {}", r.both());
    for (f, h) in files.iter().zip(&originals) {
        assert_eq!(&sha256(f), h, "undo did not restore {}", f.display());
    }

    // An extent stored from an offset in its file: the bytes before it are copied as they were,
    // and in place they stay.
    let (input, files) = split_disk(&s, "lead", true);
    let lead = common::read_at(&files[1], 0, MIB as usize);
    let out = s.path("lead-fixed.vmdk");
    let r = fix(&[input.as_os_str(), OsStr::new("-o"), out.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert_same_disk(
        &out,
        &reference,
        "the fixed copy of a disk with an extent offset",
    );
    assert_eq!(
        common::read_at(&s.path("lead-fixed-f002.vmdk"), 0, MIB as usize),
        lead
    );
    let undo = s.path("lead.undo");
    let r = fix(&[
        input.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        undo.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert_same_disk(&input, &reference, "fixed in place, with an extent offset");
    assert_eq!(common::read_at(&files[1], 0, MIB as usize), lead);
}

#[test]
fn refusals_leave_nothing_behind() {
    let s = Scratch::new("vmdk-desc-refuse");
    let (input, files) = split_disk(&s, "app", true);
    let originals: Vec<String> = files.iter().map(|f| sha256(f)).collect();
    let listing = || {
        let mut names: Vec<String> = std::fs::read_dir(&s.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();

    // The output over one of the input's data files.
    let r = fix(&[input.as_os_str(), OsStr::new("-o"), files[1].as_os_str()]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("are the same file"), "{}", r.stderr);
    // The undo file over a data file (it exists, so it is refused too).
    let r = fix(&[
        input.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        files[2].as_os_str(),
    ]);
    assert_eq!(r.code, 3, "{}", r.both());
    // A copy whose data file name is taken: the taken file is left alone.
    let taken = s.path("copy-f002.vmdk");
    std::fs::write(&taken, b"someone else's file").unwrap();
    let copy = s.path("copy.vmdk");
    let r = fix(&[input.as_os_str(), OsStr::new("-o"), copy.as_os_str()]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("exists already"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "refused before planning: {}", r.text());
    assert_eq!(std::fs::read(&taken).unwrap(), b"someone else's file");
    std::fs::remove_file(&taken).unwrap();
    // A copy that does not verify is removed with its data files.
    let damaged = s.path("damaged.vmdk");
    let r = run_with_env(
        &[input.as_os_str(), OsStr::new("-o"), damaged.as_os_str()],
        "KAIFUKU_TEST_DAMAGE_WRITTEN_OUTPUT",
    );
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("does not verify"), "{}", r.stderr);
    assert_eq!(listing(), before, "files left behind");
    for (f, h) in files.iter().zip(&originals) {
        assert_eq!(&sha256(f), h);
    }

    // Broken descriptors and data files: a clear error (exit 3), nothing written; disks kaifuku
    // does not repair: refused (exit 2), as the same disk in one file would be.
    let refused = |descriptor: &Path, words: &str, code: i32| {
        let out = s.path("never.vmdk");
        for args in [
            vec![OsStr::new("inspect"), descriptor.as_os_str()],
            vec![OsStr::new("check"), descriptor.as_os_str()],
            vec![
                OsStr::new("fix"),
                descriptor.as_os_str(),
                OsStr::new("-o"),
                out.as_os_str(),
            ],
        ] {
            let r = kaifuku(&args);
            assert_eq!(r.code, code, "{args:?}: {}", r.both());
            assert!(r.stderr.contains(words), "{args:?}: {}", r.stderr);
        }
        assert!(!out.exists() && !s.path("never-flat.vmdk").exists());
    };
    for (name, text, words, code) in [
        (
            "missing.vmdk",
            "parentCID=ffffffff\nRW 100 FLAT \"gone-flat.vmdk\" 0\n",
            "cannot be opened",
            3,
        ),
        (
            "short.vmdk",
            "parentCID=ffffffff\nRW 204801 FLAT \"app-f001.vmdk\" 0\n",
            "the file is incomplete",
            3,
        ),
        (
            "outside.vmdk",
            "RW 100 FLAT \"../etc/app-f001.vmdk\" 0\n",
            "not a file name in the descriptor's own folder",
            3,
        ),
        (
            "child.vmdk",
            "parentCID=5c0ffee5\nparentFileNameHint=\"app.vmdk\"\nRW 204800 FLAT \"app-f001.vmdk\" 0\n",
            "child disk",
            2,
        ),
        // An ESXi snapshot's delta, and a SPARSE extent whose file is flat.
        (
            "delta.vmdk",
            "RW 204800 VMFSSPARSE \"app-000001-delta.vmdk\"\n",
            "VMFSSPARSE extent",
            2,
        ),
        (
            "not-sparse.vmdk",
            "RW 204800 SPARSE \"app-f001.vmdk\"\n",
            "no sparse extent",
            3,
        ),
    ] {
        let descriptor = s.path(name);
        std::fs::write(&descriptor, format!("# Disk DescriptorFile\n{text}")).unwrap();
        refused(&descriptor, words, code);
    }
    let (other, _) = sparse_split_disk(&s, "other");
    let text = std::fs::read_to_string(&other).unwrap();
    std::fs::write(&other, text.replace("RW 204800 SPARSE", "RW 204801 SPARSE")).unwrap();
    refused(&other, "do not belong together", 3);
}

/// The raw fixture split into three SPARSE extents (100, 250 and 50 MiB), each converted by
/// qemu-img into a sparse extent file, with a descriptor naming them (QEMU reads the disk as the
/// fixture: the premise).
fn sparse_split_disk(s: &Scratch, name: &str) -> (PathBuf, Vec<PathBuf>) {
    let raw = std::fs::read(raw_fixture()).unwrap();
    let mut lines = String::new();
    let mut files = Vec::new();
    for (i, (from, to)) in [(0, 100), (100, 350), (350, 400)].into_iter().enumerate() {
        let piece = s.path(&format!("{name}-piece{i}.raw"));
        std::fs::write(&piece, &raw[(from * MIB) as usize..(to * MIB) as usize]).unwrap();
        let file = s.path(&format!("{name}-s00{}.vmdk", i + 1));
        to_vmdk(&piece, "monolithicSparse", &file);
        std::fs::remove_file(&piece).unwrap();
        lines.push_str(&format!(
            "RW {} SPARSE \"{name}-s00{}.vmdk\"\n",
            (to - from) * MIB / 512,
            i + 1
        ));
        files.push(file);
    }
    let descriptor = s.path(&format!("{name}.vmdk"));
    std::fs::write(
        &descriptor,
        format!(
            "# Disk DescriptorFile\nversion=1\nCID=7e57c0de\nparentCID=ffffffff\n\
             createType=\"twoGbMaxExtentSparse\"\n\n# Extent description\n{lines}\n\
             # The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n"
        ),
    )
    .unwrap();
    assert_same_disk(
        &descriptor,
        &raw_fixture(),
        "premise: QEMU reads the split sparse disk",
    );
    (descriptor, files)
}

#[test]
fn split_sparse_disks_are_fixed_in_their_grains_copied_in_place_and_undone() {
    let s = Scratch::new("vmdk-desc-sparse");
    let reference = fixed_raw(&s);
    // QEMU's own split sparse disk (one 400 MiB extent: extents are 2 GiB), and three extents.
    let qemu = s.path("ws.vmdk");
    to_vmdk(&raw_fixture(), "twoGbMaxExtentSparse", &qemu);
    let (split, split_files) = sparse_split_disk(&s, "three");
    for (input, files, out_name) in [
        (&qemu, vec![s.path("ws-s001.vmdk")], "ws-fixed.vmdk"),
        (&split, split_files, "three-fixed.vmdk"),
    ] {
        let originals: Vec<String> = files.iter().map(|f| sha256(f)).collect();
        let out = s.path(out_name);
        let r = fix(&[input.as_os_str(), OsStr::new("-o"), out.as_os_str()]);
        assert_eq!(r.code, 0, "{}", r.both());
        let stem = out_name.trim_end_matches(".vmdk");
        let out_files: Vec<PathBuf> = (1..=files.len())
            .map(|i| s.path(&format!("{stem}-s00{i}.vmdk")))
            .collect();
        for (o, i) in out_files.iter().zip(&files) {
            // Written in the grains the extent already has: the file keeps its size.
            assert_eq!(
                std::fs::metadata(o).unwrap().len(),
                std::fs::metadata(i).unwrap().len(),
                "{}",
                o.display()
            );
        }
        assert_same_disk(&out, &reference, out_name);
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
            "{}",
            check.both()
        );
        assert_eq!(
            channel_files(&out),
            0,
            "{out_name}: fls still sees a channel file"
        );
        assert_check_clean(&out, out_name);
        for (f, h) in files.iter().zip(&originals) {
            assert_eq!(&sha256(f), h, "{} changed", f.display());
        }
        // In place, then undo: every data file as it was.
        let undo = s.path(&format!("{stem}.undo"));
        let r = fix(&[
            input.as_os_str(),
            OsStr::new("--in-place"),
            OsStr::new("--undo"),
            undo.as_os_str(),
        ]);
        assert_eq!(r.code, 0, "{}", r.both());
        assert_same_disk(input, &reference, "fixed in place");
        let r = kaifuku([OsStr::new("undo"), input.as_os_str(), undo.as_os_str()]);
        assert_eq!(r.code, 0, "undo: {}", r.both());
        for (f, h) in files.iter().zip(&originals) {
            assert_eq!(&sha256(f), h, "undo did not restore {}", f.display());
        }
    }
}

/// `kaifuku fix ARGS` with the environment variable `var` set.
fn run_with_env(args: &[&OsStr], var: &str) -> common::Out {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kaifuku"))
        .arg("fix")
        .args(args)
        .env(var, "1")
        .output()
        .unwrap();
    common::Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_batch_reads_a_folder_s_descriptor_with_its_data_files() {
    let s = Scratch::new("vmdk-desc-batch");
    let reference = fixed_raw(&s);
    let images = s.path("images");
    std::fs::create_dir_all(&images).unwrap();
    let inner = Scratch::new("vmdk-desc-batch-inner");
    let (desc, files) = split_disk(&inner, "vm7", true);
    for f in files.iter().chain([&desc]) {
        std::fs::copy(f, images.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::copy(raw_fixture(), images.join("other.raw")).unwrap();
    let out_dir = s.path("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let r = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--json"),
        OsStr::new("--out-dir"),
        out_dir.as_os_str(),
        images.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Two images (the descriptor and the raw one), then the summary: no data file on its own.
    assert_eq!(lines.len(), 3, "{}", r.text());
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "other-fixed.raw",
            "vm7-fixed-f001.vmdk",
            "vm7-fixed-f002.vmdk",
            "vm7-fixed-f003.vmdk",
            "vm7-fixed.vmdk"
        ]
    );
    let fixed = out_dir.join("vm7-fixed.vmdk");
    assert!(std::fs::read_to_string(&fixed)
        .unwrap()
        .contains("\"vm7-fixed-f002.vmdk\" 2048"));
    assert_same_disk(&fixed, &reference, "the batch's described copy");

    // A data file named beside its descriptor is refused, before anything is done.
    let out2 = s.path("out2");
    std::fs::create_dir_all(&out2).unwrap();
    let r = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--out-dir"),
        out2.as_os_str(),
        images.join("vm7.vmdk").as_os_str(),
        images.join("vm7-f001.vmdk").as_os_str(),
    ]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(
        r.stderr.contains("is a data file of the VMware disk"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_dir(&out2).unwrap().count(), 0);
}
