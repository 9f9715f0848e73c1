//! `kaifuku fix` judged by independent tools. For every case the same deletion is done twice: by
//! kaifuku on the whole image (container and partition mapping included), and by ntfs-3g's own
//! `rm` on a copy of the volume, which is the oracle. Then:
//!
//! 1. `$Bitmap`, `$MFT:$BITMAP`, the directory listing (ntfsls) and the index B-trees read with
//!    ntfscat are equal; every other byte of the volume is equal too, except where NTFS permits a
//!    difference (the parent's `$STANDARD_INFORMATION` times and the duplicated information that
//!    ntfs-3g refreshes, the freed record's body, bytes past the end of index nodes and records);
//! 2. ntfs-3g mounts the result read-only and every remaining file reads the same, then read-write
//!    for more creates and deletes, after which `kaifuku check` and `ntfsfix -n` are still clean;
//! 3. sleuthkit sees the record free with its sequence number raised, each freed cluster free, and
//!    the name no longer allocated;
//! 4. the bytes that differ between input and output are exactly the planned file writes;
//! 5. VHD outputs equal the raw output of the same disk (qemu-img convert);
//! 6. a second run has nothing to do; 7. undo restores the input; 8. unclean journals are refused
//!    unless the user consents to discarding them.
//!
//! Case shapes (leaf, internal separator, root separator, emptied leaf, a root left with only END,
//! root-only directory, Win32+DOS pairs in different nodes, a DOS name set by ntfs-3g, resident and
//! fragmented files, hard links, object IDs and reparse points) are made on a copy with ntfs-3g
//! before either tool runs. So are the shapes kaifuku refuses (an index block or root that would
//! have to split, an internal block that would have to merge, a DOS name beside two long names):
//! their premise is read back from the index, and the refusal must be exit 2 with its reason and
//! no output.

mod common;
mod judge;

use common::{
    assert_check_clean, diff_files, dump_index, extract, fixtures, fls, gpl_testdata, implant,
    istat, kaifuku, load_json, ntfs3g, read_at, refixup, repo_testdata, run, run_ok, sh, sha256,
    sparse_copy, tsk_args, u16le, u32le, unfixup, write_at, Entry, IndexDump, Mount, Rec, Scratch,
    Vol, WalkNode,
};
use judge::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Fixtures

struct Fixture {
    image: PathBuf,
    container: String,
    /// Disk sector size (for sleuthkit's -o/-b).
    sector: u64,
    vol_off: u64,
    vol_len: u64,
    files_json: Option<PathBuf>,
    /// Paths (from the volume root, `/`-separated) of the files the built-in rule matches.
    matches: Vec<String>,
}

fn fixture(name: &str) -> Fixture {
    let dir = fixtures();
    let image = dir.join(name);
    assert!(image.exists(), "fixture {} missing", image.display());
    let exp = load_json(&dir.join(format!("{name}.expected.json")));
    let v = exp["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["windows"] == true)
        .unwrap_or_else(|| panic!("{name}: no Windows volume in the expected json"));
    let vol_off = v["offset"].as_u64().unwrap();
    let vol_len = match v["partition"].as_u64() {
        Some(n) => exp["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["number"] == n)
            .unwrap()["size"]
            .as_u64()
            .unwrap(),
        None => exp["virtual_size"].as_u64().unwrap() - vol_off,
    };
    Fixture {
        image,
        container: exp["container"].as_str().unwrap().to_string(),
        sector: exp["sector_size"].as_u64().unwrap(),
        vol_off,
        vol_len,
        files_json: v["files_sha256"].as_str().map(|f| dir.join(f)),
        matches: v["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["path"].as_str().unwrap().to_string())
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Case set-up

/// A case on a fixture's Windows volume as it is.
fn untouched<'a>(
    s: &'a Scratch,
    fx: &Fixture,
    path_arg: Option<String>,
    targets: Vec<Target>,
) -> Case<'a> {
    let in_vol = s.path("in.vol");
    extract(&fx.image, fx.vol_off, fx.vol_len, &in_vol);
    Case {
        s,
        image: fx.image.clone(),
        in_vol,
        vol_off: fx.vol_off,
        vol_len: fx.vol_len,
        sector: fx.sector,
        path_arg,
        rule_file: None,
        flags: Vec::new(),
        targets,
        files_json: fx.files_json.clone(),
    }
}

/// A case on a copy of the fixture whose Windows volume `prep` changed first (with ntfs-3g).
fn prepared<'a, F>(s: &'a Scratch, fx: &Fixture, prep: F) -> (Case<'a>, Vec<Target>)
where
    F: FnOnce(&Path, &Scratch) -> Vec<Target>,
{
    assert_eq!(fx.container, "raw");
    let in_vol = s.path("in.vol");
    extract(&fx.image, fx.vol_off, fx.vol_len, &in_vol);
    let targets = prep(&in_vol, s);
    let image = s.path("in.img");
    sparse_copy(&fx.image, &image);
    implant(&in_vol, &image, fx.vol_off);
    let case = Case {
        s,
        image,
        in_vol,
        vol_off: fx.vol_off,
        vol_len: fx.vol_len,
        sector: fx.sector,
        path_arg: None,
        rule_file: None,
        flags: Vec::new(),
        targets: targets.clone(),
        files_json: None,
    };
    (case, targets)
}

fn path_case<F>(tag: &str, s: &Scratch, prep: F)
where
    F: FnOnce(&Path, &Scratch) -> Vec<Target>,
{
    let fx = fixture("gpt-win.raw");
    let (mut c, targets) = prepared(s, &fx, prep);
    assert_eq!(targets.len(), 1, "{tag}: one target");
    c.path_arg = Some(targets[0].windows());
    judge(&c);
}

fn with_mount<T>(vol: &Path, s: &Scratch, f: impl FnOnce(&Mount) -> T) -> T {
    let m = ntfs3g(vol, &s.path("prep-mnt"), true);
    let r = f(&m);
    m.unmount();
    r
}

const DRIVERS: &str = "/Windows/System32/drivers";

/// A file with one name (no DOS partner, no hard link) and data in clusters.
fn plain_file(v: &Vol, rec: u64) -> bool {
    let r = v.record(rec);
    r.in_use()
        && r.names().len() == 1
        && r.attr(0x80, "").is_some_and(|a| a.non_resident)
        && r.attr(0x20, "").is_none()
}

fn middle<T: Clone>(v: &[T]) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v[v.len() / 2].clone())
    }
}

// ---------------------------------------------------------------------------------------------
// The built-in rule on every good fixture

fn builtin_raw(name: &str) {
    let s = Scratch::new(&format!("builtin-{name}"));
    let fx = fixture(name);
    assert!(!fx.matches.is_empty(), "{name}: the rule matches nothing");
    let targets = fx.matches.iter().map(|p| Target::new(p)).collect();
    let c = untouched(&s, &fx, None, targets);
    judge(&c);
}

#[test]
fn builtin_gpt_win() {
    builtin_raw("gpt-win.raw");
}

#[test]
fn builtin_mbr_win_512_byte_clusters() {
    builtin_raw("mbr-win.raw");
}

#[test]
fn builtin_mbr_logical_partition_dos_names() {
    builtin_raw("mbr-logical.raw");
}

#[test]
fn builtin_bare_64k_clusters() {
    builtin_raw("bare-64k.raw");
}

#[test]
fn builtin_gpt_4kn() {
    builtin_raw("gpt-4kn.raw");
}

/// Any other good raw fixture the generator makes whose rule matches.
#[test]
fn builtin_other_raw_fixtures() {
    let manifest = load_json(&fixtures().join("manifest.json"));
    let known = [
        "gpt-win.raw",
        "mbr-win.raw",
        "mbr-logical.raw",
        "bare-64k.raw",
        "gpt-4kn.raw",
    ];
    for f in manifest["fixtures"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        if f["kind"] != "good"
            || f["container"] != "raw"
            || known.contains(&name)
            || f["matches"].as_u64().unwrap_or(0) == 0
        {
            continue;
        }
        builtin_raw(name);
    }
}

/// VHD input → VHD output whose raw conversion equals the raw fix of the same disk.
fn builtin_vhd(vhd: &str, raw: &str) {
    let s = Scratch::new(&format!("builtin-{vhd}"));
    let fv = fixture(vhd);
    let fr = fixture(raw);
    let ctx = vhd.to_string();
    let out_raw = s.path("out.raw");
    let r = kaifuku(fix_args(&fr.image, &out_raw, &None, &[]));
    assert_eq!(r.code, 0, "{raw}: {}", r.both());
    let out_vhd = s.path("out.vhd");
    let undo = s.path("out.undo");
    let r = kaifuku(fix_args(
        &fv.image,
        &out_vhd,
        &None,
        &["--json", "--undo", undo.to_str().unwrap()],
    ));
    assert_eq!(r.code, 0, "{ctx}: {}", r.both());
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    check_writes(
        &fv.image,
        &out_vhd,
        &plan,
        fv.container == "vhd-fixed",
        &ctx,
    );
    let conv = s.path("out-converted.raw");
    run_ok(
        "qemu-img",
        [
            OsStr::new("convert"),
            OsStr::new("-f"),
            OsStr::new("vpc"),
            OsStr::new("-O"),
            OsStr::new("raw"),
            out_vhd.as_os_str(),
            conv.as_os_str(),
        ],
    );
    let d = diff_files(&conv, &out_raw);
    assert!(
        d.is_empty(),
        "{ctx}: qemu-img's raw view of the fixed VHD differs from the fixed raw image at {:?}",
        &d[..d.len().min(10)]
    );
    let o = run(
        "qemu-img",
        [
            OsStr::new("check"),
            OsStr::new("-f"),
            OsStr::new("vpc"),
            out_vhd.as_os_str(),
        ],
    );
    assert!(
        o.code == 0 || o.both().contains("does not support checks"),
        "{ctx}: qemu-img check: {}",
        o.both()
    );
    let again = s.path("again.vhd");
    let r = kaifuku(fix_args(&out_vhd, &again, &None, &[]));
    assert_eq!(r.code, 1, "{ctx}: second fix: {}", r.both());
    assert!(!again.exists());
    let r = kaifuku([OsStr::new("undo"), out_vhd.as_os_str(), undo.as_os_str()]);
    assert_eq!(r.code, 0, "{ctx}: undo: {}", r.both());
    assert_eq!(
        sha256(&out_vhd),
        sha256(&fv.image),
        "{ctx}: undo did not restore the input"
    );
}

#[test]
fn builtin_vhd_fixed() {
    builtin_vhd("gpt-win-fixed.vhd", "gpt-win.raw");
}

#[test]
fn builtin_vhd_dynamic() {
    builtin_vhd("gpt-win-dynamic.vhd", "gpt-win.raw");
}

#[test]
fn builtin_vhd_dynamic_64k_clusters() {
    builtin_vhd("bare-64k-dynamic.vhd", "bare-64k.raw");
}

/// qcow2 input → qcow2 output written in place in the copy: `qemu-img check` accepts it (no
/// errors, no leaked clusters), qemu's raw view equals the raw fix of the same disk, libqcow's
/// `qcowinfo` reads it, a second fix has nothing to do, and undo restores the input. A plain image
/// changes in its data clusters only; a compressed one has the clusters the fix touches stored
/// anew at the end of the file, with their tables and reference counts.
fn builtin_qcow2(image: &str, raw: &str) {
    let s = Scratch::new(&format!("builtin-{image}"));
    let fq = fixture(image);
    let fr = fixture(raw);
    let ctx = image.to_string();
    let out_raw = s.path("out.raw");
    let r = kaifuku(fix_args(&fr.image, &out_raw, &None, &[]));
    assert_eq!(r.code, 0, "{raw}: {}", r.both());
    let out = s.path("out.qcow2");
    let undo = s.path("out.undo");
    let r = kaifuku(fix_args(
        &fq.image,
        &out,
        &None,
        &["--json", "--undo", undo.to_str().unwrap()],
    ));
    assert_eq!(r.code, 0, "{ctx}: {}", r.both());
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    check_writes(&fq.image, &out, &plan, false, &ctx);
    // The header cluster stays as it was; a plain image's tables too: writes go to data clusters
    // only. A compressed image's touched clusters are stored anew, after the old end of the file.
    let header_cluster = 64 << 10;
    let old_end = fs::metadata(&fq.image).unwrap().len();
    let mut anew = 0;
    for w in plan["file_writes"].as_array().unwrap() {
        let at = w["file_offset"].as_u64().unwrap();
        let label = w["label"].as_str().unwrap();
        assert!(at >= header_cluster, "{ctx}: {w}");
        if label.contains("stored anew") {
            assert!(at >= old_end, "{ctx}: {w}");
            anew += 1;
        } else if !image.contains("compressed") {
            assert!(label.contains("qcow2 cluster"), "{ctx}: {w}");
        }
    }
    assert_eq!(anew > 0, image.contains("compressed"), "{ctx}");
    assert_eq!(
        fs::metadata(&out).unwrap().len() > old_end,
        image.contains("compressed"),
        "{ctx}: the output grows only when clusters are stored anew"
    );
    let o = run(
        "qemu-img",
        [
            OsStr::new("check"),
            OsStr::new("-f"),
            OsStr::new("qcow2"),
            out.as_os_str(),
        ],
    );
    assert!(
        o.code == 0 && o.both().contains("No errors") && !o.both().contains("leaked"),
        "{ctx}: qemu-img check: {}",
        o.both()
    );
    let o = run(
        "qemu-img",
        [
            OsStr::new("compare"),
            OsStr::new("-f"),
            OsStr::new("qcow2"),
            OsStr::new("-F"),
            OsStr::new("raw"),
            out.as_os_str(),
            out_raw.as_os_str(),
        ],
    );
    assert!(
        o.code == 0 && o.both().contains("Images are identical"),
        "{ctx}: qemu-img compare with the fixed raw image: {}",
        o.both()
    );
    let o = run("qcowinfo", [out.as_os_str()]);
    assert!(
        o.code == 0 && o.both().contains("Media size"),
        "{ctx}: qcowinfo: {}",
        o.both()
    );
    let again = s.path("again.qcow2");
    let r = kaifuku(fix_args(&out, &again, &None, &[]));
    assert_eq!(r.code, 1, "{ctx}: second fix: {}", r.both());
    assert!(!again.exists());
    let r = kaifuku([OsStr::new("undo"), out.as_os_str(), undo.as_os_str()]);
    assert_eq!(r.code, 0, "{ctx}: undo: {}", r.both());
    assert_eq!(
        sha256(&out),
        sha256(&fq.image),
        "{ctx}: undo did not restore the input"
    );
}

#[test]
fn builtin_qcow2_v2() {
    builtin_qcow2("gpt-win-v2.qcow2", "gpt-win.raw");
}

#[test]
fn builtin_qcow2_v3() {
    builtin_qcow2("gpt-win-v3.qcow2", "gpt-win.raw");
}

#[test]
fn builtin_qcow2_compressed() {
    builtin_qcow2("bare-64k-compressed.qcow2", "bare-64k.raw");
}

/// `--in-place --undo` on a copy of a qcow2 image: the same bytes as `-o`, and undo restores it
/// (for the compressed image, whose fix makes the file longer, to its old length too).
#[test]
fn builtin_qcow2_in_place() {
    for image in ["gpt-win-v3.qcow2", "bare-64k-compressed.qcow2"] {
        qcow2_in_place(image);
    }
}

fn qcow2_in_place(image: &str) {
    let s = Scratch::new(&format!("qcow2-in-place-{image}"));
    let fq = fixture(image);
    let copy = s.path("disk.qcow2");
    run_ok(
        "cp",
        [
            OsStr::new("--sparse=always"),
            fq.image.as_os_str(),
            copy.as_os_str(),
        ],
    );
    let out = s.path("out.qcow2");
    let r = kaifuku(fix_args(&fq.image, &out, &None, &[]));
    assert_eq!(r.code, 0, "{}", r.both());
    let undo = s.path("disk.undo");
    let r = kaifuku([
        OsStr::new("fix"),
        copy.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        undo.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{image}: {}", r.both());
    assert_eq!(
        sha256(&copy),
        sha256(&out),
        "{image}: in place and copy differ"
    );
    let r = kaifuku([OsStr::new("undo"), copy.as_os_str(), undo.as_os_str()]);
    assert_eq!(r.code, 0, "{image}: undo: {}", r.both());
    assert_eq!(sha256(&copy), sha256(&fq.image), "{image}");
}

/// An image whose L2 tables are shared with a snapshot taken after it was written cannot be
/// changed without changing the snapshot: the fix is refused with what to do, and nothing is left
/// where the output and undo file were to go.
#[test]
fn qcow2_snapshot_sharing_its_tables_is_refused() {
    let image = "bare-64k-snapshot.qcow2";
    let s = Scratch::new("refused-snapshot");
    let fq = fixture(image);
    let out = s.path("out.qcow2");
    let undo = s.path("out.undo");
    let r = kaifuku(fix_args(
        &fq.image,
        &out,
        &None,
        &["--undo", undo.to_str().unwrap()],
    ));
    assert_eq!(r.code, 3, "{image}: {}", r.both());
    assert!(r.both().contains("snapshot -d"), "{image}: {}", r.both());
    assert!(
        r.both()
            .contains("L2 table is shared with an internal snapshot"),
        "{image}: {}",
        r.both()
    );
    assert!(
        !out.exists() && !undo.exists(),
        "{image}: output left behind"
    );
}

/// An image QEMU left dirty (the bit set in a copy of qemu-img's output) is refused before
/// anything is read past the header (exit code 2), with what to do.
#[test]
fn qcow2_dirty_is_refused() {
    let s = Scratch::new("qcow2-refused-open");
    let fq = fixture("gpt-win-v3.qcow2");
    let dirty = s.path("dirty.qcow2");
    let mut bytes = std::fs::read(&fq.image).unwrap();
    bytes[79] |= 1; // incompatible_features bit 0: dirty
    std::fs::write(&dirty, &bytes).unwrap();
    let r = kaifuku([OsStr::new("inspect"), dirty.as_os_str()]);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.both().contains("qemu-img check -r all"), "{}", r.both());
    let out = s.path("out.qcow2");
    let r = kaifuku(fix_args(&dirty, &out, &None, &[]));
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(!out.exists());
}

fn qemu_img_create_child(dir: &Path, name: &str, backing: &str, backing_format: &str) -> PathBuf {
    let child = dir.join(name);
    let format = if name.ends_with(".vmdk") {
        "vmdk"
    } else {
        "qcow2"
    };
    run_ok(
        "qemu-img",
        [
            OsStr::new("create"),
            OsStr::new("-q"),
            OsStr::new("-f"),
            OsStr::new(format),
            OsStr::new("-F"),
            OsStr::new(backing_format),
            OsStr::new("-b"),
            OsStr::new(backing),
            child.as_os_str(),
        ],
    );
    child
}

/// Images made by `qemu-img create -b` on top of the fixture's disk — qcow2 on a raw backing
/// file, a chain of two (an empty qcow2 over the qcow2 fixture), and a VMDK child on a
/// monolithicSparse parent — named relative to the image's folder, as QEMU writes them. The
/// command line reads the chain from beside the image and changes the top image only: the
/// clusters or grains the fix touches are stored in it, filled from below. `qemu-img compare`
/// finds the chain identical to the raw fixture fixed the same way, `qemu-img check` finds no
/// errors or leaks, the files below are unchanged, in place with undo gives the same bytes and
/// undo restores the image. A backing file that is not where the header says is an error naming
/// it, with no output.
#[test]
fn images_on_a_backing_file_or_parent_are_fixed_in_the_top_image_only() {
    let s = Scratch::new("qcow2-backing");
    let fr = fixture("gpt-win.raw");
    let out_raw = s.path("fixed.raw");
    let r = kaifuku(fix_args(&fr.image, &out_raw, &None, &[]));
    assert_eq!(r.code, 0, "{}", r.both());
    let dir = s.path("chain");
    fs::create_dir_all(&dir).unwrap();
    run_ok(
        "cp",
        [
            OsStr::new("--sparse=always"),
            fr.image.as_os_str(),
            dir.join("base.raw").as_os_str(),
        ],
    );
    run_ok(
        "cp",
        [
            OsStr::new("--sparse=always"),
            fixture("gpt-win-v3.qcow2").image.as_os_str(),
            dir.join("base.qcow2").as_os_str(),
        ],
    );
    run_ok(
        "qemu-img",
        [
            OsStr::new("convert"),
            OsStr::new("-f"),
            OsStr::new("raw"),
            OsStr::new("-O"),
            OsStr::new("vmdk"),
            fr.image.as_os_str(),
            dir.join("base.vmdk").as_os_str(),
        ],
    );
    let over_raw = qemu_img_create_child(&dir, "over-raw.qcow2", "base.raw", "raw");
    let mid = qemu_img_create_child(&dir, "mid.qcow2", "base.qcow2", "qcow2");
    let top = qemu_img_create_child(&dir, "top.qcow2", "mid.qcow2", "qcow2");
    let _ = mid;
    // A VMDK child (a snapshot as qemu-img makes it) on a monolithicSparse parent.
    let vmdk_child = qemu_img_create_child(&dir, "child.vmdk", "base.vmdk", "vmdk");
    let bases: Vec<(PathBuf, String)> = ["base.raw", "base.qcow2", "mid.qcow2", "base.vmdk"]
        .iter()
        .map(|n| (dir.join(n), sha256(&dir.join(n))))
        .collect();
    for image in [&over_raw, &top, &vmdk_child] {
        let ctx = image.display().to_string();
        let format = if ctx.ends_with(".vmdk") {
            "vmdk"
        } else {
            "qcow2"
        };
        let r = kaifuku([OsStr::new("inspect"), image.as_os_str()]);
        assert_eq!(r.code, 0, "{ctx}: {}", r.both());
        if format == "qcow2" {
            assert!(r.both().contains("on backing file"), "{ctx}: {}", r.both());
        }
        let out = dir.join(format!("fixed.{format}"));
        let undo = s.path("fixed.undo");
        let r = kaifuku(fix_args(
            image,
            &out,
            &None,
            &["--undo", undo.to_str().unwrap()],
        ));
        assert_eq!(r.code, 0, "{ctx}: {}", r.both());
        let o = run(
            "qemu-img",
            [
                OsStr::new("check"),
                OsStr::new("-f"),
                OsStr::new(format),
                out.as_os_str(),
            ],
        );
        assert!(
            o.code == 0 && o.both().contains("No errors") && !o.both().contains("leaked"),
            "{ctx}: qemu-img check: {}",
            o.both()
        );
        let o = run(
            "qemu-img",
            [
                OsStr::new("compare"),
                OsStr::new("-f"),
                OsStr::new(format),
                OsStr::new("-F"),
                OsStr::new("raw"),
                out.as_os_str(),
                out_raw.as_os_str(),
            ],
        );
        assert!(
            o.code == 0 && o.both().contains("Images are identical"),
            "{ctx}: qemu-img compare with the fixed raw image: {}",
            o.both()
        );
        // In place, with undo: the same bytes; undo gives the image back.
        let copy = dir.join(format!("in-place.{format}"));
        fs::copy(image, &copy).unwrap();
        let undo2 = s.path("in-place.undo");
        let r = kaifuku([
            OsStr::new("fix"),
            copy.as_os_str(),
            OsStr::new("--in-place"),
            OsStr::new("--undo"),
            undo2.as_os_str(),
        ]);
        assert_eq!(r.code, 0, "{ctx}: {}", r.both());
        assert_eq!(
            sha256(&copy),
            sha256(&out),
            "{ctx}: in place and copy differ"
        );
        let r = kaifuku([OsStr::new("undo"), copy.as_os_str(), undo2.as_os_str()]);
        assert_eq!(r.code, 0, "{ctx}: undo: {}", r.both());
        assert_eq!(sha256(&copy), sha256(image), "{ctx}: undo");
        for f in [&out, &copy, &undo, &undo2] {
            fs::remove_file(f).unwrap();
        }
    }
    for (path, hash) in &bases {
        assert_eq!(&sha256(path), hash, "{} changed", path.display());
    }
    // The backing file moved away: an error that names where it was looked for; nothing written.
    fs::rename(dir.join("base.raw"), s.path("moved.raw")).unwrap();
    let out = dir.join("fixed.qcow2");
    let r = kaifuku(fix_args(&over_raw, &out, &None, &[]));
    assert_ne!(r.code, 0, "{}", r.both());
    assert!(r.both().contains("base.raw"), "{}", r.both());
    assert!(r.both().contains("qemu-img rebase"), "{}", r.both());
    assert!(!out.exists());
}

/// Reading a compressed or snapshotted qcow2 gives exactly the disk `qemu-img convert -O raw`
/// gives: the inspect reports agree on everything but the container.
#[test]
fn qcow2_inspects_as_its_raw_conversion() {
    for image in [
        "bare-64k-compressed.qcow2",
        "bare-64k-snapshot.qcow2",
        "gpt-win-v2.qcow2",
    ] {
        let s = Scratch::new(&format!("inspect-{image}"));
        let fq = fixture(image);
        let conv = s.path("converted.raw");
        run_ok(
            "qemu-img",
            [
                OsStr::new("convert"),
                OsStr::new("-f"),
                OsStr::new("qcow2"),
                OsStr::new("-O"),
                OsStr::new("raw"),
                fq.image.as_os_str(),
                conv.as_os_str(),
            ],
        );
        let report = |p: &Path| {
            let r = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), p.as_os_str()]);
            assert_eq!(r.code, 0, "{image}: {}", r.both());
            let mut v: Value = serde_json::from_slice(&r.stdout).unwrap();
            let m = v.as_object_mut().unwrap();
            let container = m.remove("container").unwrap();
            m.remove("image");
            m.remove("reads");
            (v, container)
        };
        let (q, qc) = report(&fq.image);
        let (r, rc) = report(&conv);
        assert_eq!(q, r, "{image}: inspect differs from its raw conversion");
        assert_eq!(qc["format"], "qcow2");
        assert_eq!(qc["virtual_size"], rc["virtual_size"]);
        assert!(qc["qcow2"]["cluster_size"].as_u64().unwrap() >= 512);
    }
}

// ---------------------------------------------------------------------------------------------
// Tree shapes in \Windows\System32\drivers (a 3-level index)

#[test]
fn path_leaf_entry() {
    let s = Scratch::new("leaf");
    path_case("leaf", &s, |vol, _| {
        let v = Vol::open(vol);
        let t = dump_index(vol, ntfsls_inode(vol, DRIVERS), "$I30");
        let leaf = t
            .walk()
            .into_iter()
            .filter(|n| n.leaf && n.block.is_some() && n.entries.len() >= 5)
            .nth(2)
            .expect("a leaf with entries");
        let cands: Vec<String> = leaf
            .entries
            .iter()
            .filter_map(|e| {
                e.file_name()
                    .filter(|(ns, _)| *ns != 2 && plain_file(&v, e.file_record()))
                    .map(|x| x.1)
            })
            .collect();
        let name = middle(&cands).expect("a plain file in the leaf");
        vec![Target::new(&format!("{DRIVERS}/{name}"))]
    });
}

#[test]
fn path_internal_block_separator() {
    let s = Scratch::new("internal");
    path_case("internal", &s, |vol, _| {
        let v = Vol::open(vol);
        let t = dump_index(vol, ntfsls_inode(vol, DRIVERS), "$I30");
        let node = t
            .walk()
            .into_iter()
            .find(|n| !n.leaf && n.block.is_some())
            .unwrap_or_else(|| panic!("drivers has no internal INDX block:\n{}", t.show()));
        let cands: Vec<String> = node
            .entries
            .iter()
            .filter_map(|e| {
                e.file_name()
                    .filter(|(ns, _)| *ns != 2 && plain_file(&v, e.file_record()))
                    .map(|x| x.1)
            })
            .collect();
        let name = middle(&cands).expect("a plain file as a separator");
        vec![Target::new(&format!("{DRIVERS}/{name}"))]
    });
}

#[test]
fn path_win32_dos_pair_in_different_nodes() {
    let s = Scratch::new("pair");
    path_case("pair", &s, |vol, _| {
        let v = Vol::open(vol);
        let t = dump_index(vol, ntfsls_inode(vol, DRIVERS), "$I30");
        let nodes = t.walk();
        let node_of = |ns: u8, name: &str| {
            nodes
                .iter()
                .find(|n| {
                    n.entries
                        .iter()
                        .any(|e| e.file_name().is_some_and(|(a, b)| a == ns && b == name))
                })
                .map(|n| (n.block, n.leaf))
        };
        let mut best: Option<String> = None;
        for n in &nodes {
            for e in &n.entries {
                let Some((1, long)) = e.file_name() else {
                    continue;
                };
                let r = v.record(e.file_record());
                let names = r.names();
                if names.len() != 2 || r.attr(0x80, "").is_none_or(|a| !a.non_resident) {
                    continue;
                }
                let Some(dos) = names.iter().find(|x| x.1 == 2).map(|x| x.2.clone()) else {
                    continue;
                };
                let a = node_of(1, &long).unwrap();
                let b = node_of(2, &dos).expect("the DOS name is indexed");
                if a.0 != b.0 && a.1 && b.1 {
                    best = Some(long.clone());
                    break;
                }
                if a.0 != b.0 && best.is_none() {
                    best = Some(long.clone());
                }
            }
        }
        let name =
            best.unwrap_or_else(|| panic!("no Win32+DOS pair in different nodes:\n{}", t.show()));
        vec![Target::new(&format!("{DRIVERS}/{name}"))]
    });
}

/// Deletes with ntfs-3g every file named in leaf `block` but `keep`, until it holds only `keep`.
fn thin_leaf(vol: &Path, s: &Scratch, dir: &str, block: u64, keep: &str) {
    for _round in 0..5 {
        let v = Vol::open(vol);
        let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
        let node = t
            .blocks
            .get(&block)
            .unwrap_or_else(|| panic!("leaf {block} vanished while thinning:\n{}", t.show()));
        let real: Vec<&Entry> = node.entries.iter().filter(|e| !e.is_end()).collect();
        if real.len() == 1 {
            assert_eq!(
                real[0].file_name().unwrap().1,
                keep,
                "the leaf kept another entry:\n{}",
                t.show()
            );
            return;
        }
        let mut victims: BTreeSet<String> = BTreeSet::new();
        for e in real {
            let (_, name) = e.file_name().unwrap();
            if name == keep {
                continue;
            }
            // The long name of the record, for DOS-only entries.
            let r = v.record(e.file_record());
            let n = r
                .names()
                .into_iter()
                .find(|x| x.1 != 2)
                .map(|x| x.2)
                .unwrap_or(name);
            victims.insert(n);
        }
        with_mount(vol, s, |m| {
            for n in &victims {
                std::fs::remove_file(m.p(&format!("{dir}/{n}")))
                    .unwrap_or_else(|e| panic!("pre-delete {n}: {e}"));
            }
        });
    }
    panic!("could not thin leaf {block} down to {keep}");
}

fn emptied_leaf(tag: &str, under_end: bool) {
    let s = Scratch::new(tag);
    path_case(tag, &s, |vol, s| {
        let v = Vol::open(vol);
        let t = dump_index(vol, ntfsls_inode(vol, DRIVERS), "$I30");
        let nodes = t.walk();
        let parent_entry = |n: &WalkNode| -> Option<Entry> {
            let (pb, i) = n.parent?;
            let p = nodes.iter().find(|x| x.block == pb)?;
            Some(p.entries[i].clone())
        };
        let leaf = nodes
            .iter()
            .filter(|n| n.leaf && n.block.is_some())
            .filter(|n| parent_entry(n).is_some_and(|e| e.is_end() == under_end))
            .filter(|n| {
                n.entries.iter().any(|e| {
                    e.file_name().is_some_and(|(ns, _)| ns != 2) && plain_file(&v, e.file_record())
                })
            })
            .nth(if under_end { 0 } else { 1 })
            .unwrap_or_else(|| panic!("no suitable leaf:\n{}", t.show()))
            .clone();
        let keep = leaf
            .entries
            .iter()
            .rev()
            .filter_map(|e| {
                e.file_name()
                    .filter(|(ns, _)| *ns != 2 && plain_file(&v, e.file_record()))
                    .map(|x| x.1)
            })
            .next()
            .unwrap();
        thin_leaf(vol, s, DRIVERS, leaf.block.unwrap(), &keep);
        vec![Target::new(&format!("{DRIVERS}/{keep}"))]
    });
}

#[test]
fn path_emptied_leaf_under_a_separator() {
    emptied_leaf("emptied-leaf", false);
}

#[test]
fn path_emptied_leaf_under_end() {
    emptied_leaf("emptied-leaf-end", true);
}

#[test]
fn path_root_separator() {
    let s = Scratch::new("rootsep");
    path_case("rootsep", &s, |vol, s| {
        let dir = "/Windows/Temp/rs";
        with_mount(vol, s, |m| {
            std::fs::create_dir(m.p(dir)).unwrap();
            for i in 0..45 {
                let body: Vec<u8> = (0..3000u32).map(|x| (x + i) as u8).collect();
                std::fs::write(
                    m.p(&format!("{dir}/rootsep-a-fairly-long-file-name-{i:02}.dat")),
                    body,
                )
                .unwrap();
            }
        });
        let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
        let sep = t
            .root
            .entries
            .iter()
            .find(|e| !e.is_end() && e.child.is_some())
            .unwrap_or_else(|| panic!("the root of {dir} has no separator:\n{}", t.show()));
        vec![Target::new(&format!(
            "{dir}/{}",
            sep.file_name().unwrap().1
        ))]
    });
}

#[test]
fn path_root_only_directory() {
    let s = Scratch::new("rootonly");
    path_case("rootonly", &s, |vol, _| {
        let dir = format!("{DRIVERS}/etc");
        let t = dump_index(vol, ntfsls_inode(vol, &dir), "$I30");
        assert!(
            t.alloc_len.is_none() || t.blocks.is_empty(),
            "{dir} is not root-only:\n{}",
            t.show()
        );
        vec![Target::new(&format!("{dir}/hosts"))]
    });
}

#[test]
fn path_resident_file() {
    let s = Scratch::new("resident");
    path_case("resident", &s, |vol, s| {
        let p = format!("{DRIVERS}/judge-resident.txt");
        with_mount(vol, s, |m| std::fs::write(m.p(&p), [b'r'; 100]).unwrap());
        let v = Vol::open(vol);
        let r = v.record(ntfsls_inode(vol, &p));
        assert!(
            r.attr(0x80, "").is_some_and(|a| !a.non_resident),
            "{p} is not resident"
        );
        vec![Target::new(&p)]
    });
}

#[test]
fn path_fragmented_file() {
    let s = Scratch::new("fragmented");
    path_case("fragmented", &s, |vol, s| {
        let p = format!("{DRIVERS}/judge-fragmented.sys");
        with_mount(vol, s, |m| {
            // Fill the free space around small files, free every other one, then write.
            std::fs::create_dir(m.p("/judge-frag")).unwrap();
            for i in 0..64 {
                std::fs::write(m.p(&format!("/judge-frag/f{i}")), vec![i as u8 + 1; 16384])
                    .unwrap();
            }
            let fill = m.p("/judge-filler").to_string_lossy().into_owned();
            sh(&format!("dd if=/dev/zero of='{fill}' bs=1M status=none; dd if=/dev/zero of='{fill}2' bs=4k status=none; true"));
            for i in (0..64).step_by(2) {
                std::fs::remove_file(m.p(&format!("/judge-frag/f{i}"))).unwrap();
            }
            let body: Vec<u8> = (0..200_000u32).map(|x| (x * 31 % 251) as u8).collect();
            std::fs::write(m.p(&p), body).unwrap();
            std::fs::remove_file(&fill).unwrap();
            std::fs::remove_file(format!("{fill}2")).unwrap();
        });
        let st = istat(&tsk_args(vol, 0, 512), ntfsls_inode(vol, &p));
        let runs = 1 + st.clusters.windows(2).filter(|w| w[1] != w[0] + 1).count();
        assert!(
            runs >= 3,
            "{p} has {runs} run(s), want a fragmented file:\n{}",
            st.text
        );
        vec![Target::new(&p)]
    });
}

#[test]
fn path_hard_link() {
    let s = Scratch::new("hardlink");
    path_case("hardlink", &s, |vol, _| {
        let v = Vol::open(vol);
        let drivers = ntfsls_inode(vol, DRIVERS);
        let t = dump_index(vol, drivers, "$I30");
        let name = t
            .names()
            .into_iter()
            .filter(|(ns, _, _)| *ns != 2)
            .find(|(_, _, rec)| {
                let r = v.record(*rec);
                let names = r.names();
                names.iter().any(|n| n.0 != drivers)
                    && names.iter().filter(|n| n.0 == drivers).count() == 1
                    && r.attr(0x80, "").is_some_and(|a| a.non_resident)
            })
            .map(|x| x.1)
            .expect("a drivers file hard-linked from WinSxS");
        vec![Target::new(&format!("{DRIVERS}/{name}"))]
    });
}

/// Two names of one file in the same directory: deleting one keeps the file under the other.
#[test]
fn path_hard_link_same_directory() {
    let s = Scratch::new("hardlink-same-dir");
    path_case("hardlink-same-dir", &s, |vol, s| {
        let a = format!("{DRIVERS}/judge-link-a.sys");
        let b = format!("{DRIVERS}/judge-link-b.sys");
        with_mount(vol, s, |m| {
            std::fs::write(m.p(&a), vec![0x4c; 9000]).unwrap();
            std::fs::hard_link(m.p(&a), m.p(&b)).unwrap();
        });
        let v = Vol::open(vol);
        assert_eq!(
            v.record(ntfsls_inode(vol, &a)).names().len(),
            2,
            "{a} has two names"
        );
        vec![Target::new(&a)]
    });
}

#[test]
fn path_object_id() {
    let s = Scratch::new("objid");
    path_case("objid", &s, |vol, s| {
        let p = format!("{DRIVERS}/judge-objid.sys");
        with_mount(vol, s, |m| {
            std::fs::write(m.p(&p), vec![0x5a; 5000]).unwrap();
            // A neighbour with an object ID too, so the $O index keeps an entry.
            std::fs::write(
                m.p(&format!("{DRIVERS}/judge-objid-keep.sys")),
                vec![0x5b; 5000],
            )
            .unwrap();
            for (f, id) in [
                (&p, "0x00112233445566778899aabbccddeeff"),
                (
                    &format!("{DRIVERS}/judge-objid-keep.sys"),
                    "0x0f0e0d0c0b0a09080706050403020100",
                ),
            ] {
                let o = run(
                    "setfattr",
                    [
                        OsStr::new("-n"),
                        OsStr::new("system.ntfs_object_id"),
                        OsStr::new("-v"),
                        OsStr::new(id),
                        m.p(f).as_os_str(),
                    ],
                );
                assert_eq!(o.code, 0, "setfattr object id: {}", o.both());
            }
        });
        let v = Vol::open(vol);
        assert!(
            v.record(ntfsls_inode(vol, &p)).attr(0x40, "").is_some(),
            "{p} has no $OBJECT_ID"
        );
        vec![Target::new(&p)]
    });
}

#[test]
fn path_reparse_point() {
    let s = Scratch::new("reparse");
    path_case("reparse", &s, |vol, s| {
        let p = format!("{DRIVERS}/judge-reparse.sys");
        with_mount(vol, s, |m| {
            for f in [p.clone(), format!("{DRIVERS}/judge-reparse-keep.sys")] {
                std::fs::write(m.p(&f), vec![0x6c; 5000]).unwrap();
                // IO_REPARSE_TAG_APPEXECLINK with 8 bytes of data.
                let o = run(
                    "setfattr",
                    [
                        OsStr::new("-n"),
                        OsStr::new("system.ntfs_reparse_data"),
                        OsStr::new("-v"),
                        OsStr::new("0x1b00008008000000aabbccddeeff0011"),
                        m.p(&f).as_os_str(),
                    ],
                );
                assert_eq!(o.code, 0, "setfattr reparse data: {}", o.both());
            }
        });
        let v = Vol::open(vol);
        assert!(
            v.record(ntfsls_inode(vol, &p)).attr(0xC0, "").is_some(),
            "{p} has no $REPARSE_POINT"
        );
        vec![Target::new(&p)]
    });
}

// ---------------------------------------------------------------------------------------------
// DOS names set by ntfs-3g, and the case kaifuku refuses

fn set_dos_name(m: &Mount, path: &str, dos: &str) {
    let o = run(
        "setfattr",
        [
            OsStr::new("-n"),
            OsStr::new("system.ntfs_dos_name"),
            OsStr::new("-v"),
            OsStr::new(dos),
            m.p(path).as_os_str(),
        ],
    );
    assert_eq!(o.code, 0, "setfattr DOS name of {path}: {}", o.both());
}

/// Names of a record in one directory by namespace (0 POSIX, 1 Win32, 2 DOS, 3 Win32&DOS), read
/// with our test reader and cross-checked with ntfs-3g's ntfsinfo.
fn names_in(vol: &Path, record: u64, dir: u64) -> Vec<(u8, String)> {
    let mut names: Vec<(u8, String)> = Vol::open(vol)
        .record(record)
        .names()
        .into_iter()
        .filter(|n| n.0 == dir)
        .map(|n| (n.1, n.2))
        .collect();
    names.sort();
    let info = String::from_utf8_lossy(&run_ok(
        "ntfsinfo",
        [
            OsStr::new("-i"),
            OsStr::new(&record.to_string()),
            vol.as_os_str(),
        ],
    ))
    .into_owned();
    for (_, n) in &names {
        assert!(
            info.contains(&format!("'{n}'")),
            "ntfsinfo -i {record} does not list {n}:\n{info}"
        );
    }
    names
}

/// One long name with the DOS name ntfs-3g gives it on request: both go, as with ntfs-3g's rm.
#[test]
fn path_dos_name_set_by_ntfs3g() {
    let s = Scratch::new("dosname");
    path_case("dosname", &s, |vol, s| {
        let p = format!("{DRIVERS}/judge-long-name-with-a-dos-name.sys");
        with_mount(vol, s, |m| {
            std::fs::write(m.p(&p), vec![0x44; 7000]).unwrap();
            set_dos_name(m, &p, "JUDGEL~1.SYS");
        });
        let names = names_in(vol, ntfsls_inode(vol, &p), ntfsls_inode(vol, DRIVERS));
        assert_eq!(
            names,
            vec![
                (1, "judge-long-name-with-a-dos-name.sys".to_string()),
                (2, "JUDGEL~1.SYS".to_string())
            ],
            "a Win32 name and its DOS name"
        );
        vec![Target::new(&p)]
    });
}

/// `kaifuku fix IMAGE --path PATH` must refuse (exit 2), name the reason, and write nothing.
fn assert_refused(image: &Path, path: &str, out: &Path, words: &[&str]) -> String {
    let o = kaifuku([
        OsStr::new("fix"),
        image.as_os_str(),
        OsStr::new("--path"),
        OsStr::new(path),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, 2, "{path}: want a refusal (exit 2): {}", o.both());
    for w in words {
        assert!(
            o.both().contains(w),
            "{path}: the refusal should say {w:?}: {}",
            o.both()
        );
    }
    assert!(
        !out.exists(),
        "{path}: a refused fix left {}",
        out.display()
    );
    o.both()
}

/// The input of a refusal test is a sound volume by ntfs-3g's and kaifuku's checkers, so the
/// refusal is about the delete, not about damage.
fn assert_sound_input(c: &Case) {
    let o = run("ntfsfix", [OsStr::new("-n"), c.in_vol.as_os_str()]);
    assert_eq!(o.code, 0, "ntfsfix -n on the input: {}", o.both());
    assert_check_clean(&c.image, "the input");
}

/// A DOS name with two long names in the directory (a hard link made after the DOS name was
/// set): NTFS does not record which long name the DOS name belongs to, so kaifuku refuses to
/// delete the Win32 name (and with it a DOS name that may be the other's); the other long name (POSIX, no partner) is only a hard link
/// and goes as ntfs-3g's rm removes it.
#[test]
fn dos_name_with_several_long_names() {
    let s = Scratch::new("ambiguous-dos");
    let fx = fixture("gpt-win.raw");
    let a = format!("{DRIVERS}/judge-ambiguous.sys");
    let b = format!("{DRIVERS}/judge-ambiguous-link.sys");
    let (mut c, _) = prepared(&s, &fx, |vol, s| {
        with_mount(vol, s, |m| {
            std::fs::write(m.p(&a), vec![0x41; 9000]).unwrap();
            set_dos_name(m, &a, "JUDGEA~1.SYS");
            // ntfs-3g refuses a DOS name on a file that already has several links, so the link
            // comes after.
            std::fs::hard_link(m.p(&a), m.p(&b)).unwrap();
        });
        vec![Target::new(&b)]
    });
    let rec = ntfsls_inode(&c.in_vol, &a);
    assert_eq!(
        names_in(&c.in_vol, rec, ntfsls_inode(&c.in_vol, DRIVERS)),
        vec![
            (0, "judge-ambiguous-link.sys".to_string()),
            (1, "judge-ambiguous.sys".to_string()),
            (2, "JUDGEA~1.SYS".to_string())
        ],
        "one record: a POSIX name, a Win32 name and a DOS name"
    );
    assert_sound_input(&c);
    assert_refused(
        &c.image,
        &Target::new(&a).windows(),
        &s.path("refused.img"),
        &[
            "several long names and a DOS name",
            &format!("MFT record {rec}"),
        ],
    );
    // The POSIX name has no DOS partner: it is removed like any hard link.
    c.path_arg = Some(Target::new(&b).windows());
    judge(&c);
}

// ---------------------------------------------------------------------------------------------
// Index trees that need restructuring: refused, or (a root left with only END) handled

/// A deterministic stream of numbers (64-bit LCG, Knuth's constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Creates files in `dir` with ntfs-3g, 40 a round, names `NNNNN` + 1 or 240 `x` in a shuffled
/// order (fixed seed), until `done` holds for the directory's index or `rounds` are used up.
/// Returns the index as it ends up.
fn grow_until(
    vol: &Path,
    s: &Scratch,
    dir: &str,
    rounds: usize,
    done: impl Fn(&IndexDump) -> bool,
) -> IndexDump {
    let mut rng = Lcg(0x6b61_6966_756b_7530);
    let mut next = 0u64;
    with_mount(vol, s, |m| {
        if !m.p(dir).exists() {
            std::fs::create_dir(m.p(dir)).unwrap();
        }
    });
    for _ in 0..rounds {
        let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
        if done(&t) {
            return t;
        }
        let mut batch: Vec<u64> = (next..next + 40).collect();
        next += 40;
        for i in (1..batch.len()).rev() {
            batch.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        with_mount(vol, s, |m| {
            for i in batch {
                let tail = if rng.next().is_multiple_of(2) { 1 } else { 240 };
                let name = format!("{i:05}{}", "x".repeat(tail));
                std::fs::write(m.p(&format!("{dir}/{name}")), [b'g'; 10]).unwrap();
            }
        });
    }
    let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
    assert!(
        done(&t),
        "{dir}: the wanted shape did not appear:\n{}",
        t.show()
    );
    t
}

/// A node of an index by id (None = the root).
fn node(t: &IndexDump, id: Option<u64>) -> &common::Node {
    match id {
        None => &t.root,
        Some(b) => &t.blocks[&b],
    }
}

fn real_entries(n: &common::Node) -> Vec<&Entry> {
    n.entries.iter().filter(|e| !e.is_end()).collect()
}

/// The leaf reached from the child at `vcn` by following first (or last) entries down.
fn leaf_below(t: &IndexDump, vcn: u64, first: bool) -> u64 {
    let mut b = t.block_of_vcn(vcn);
    loop {
        let n = &t.blocks[&b];
        let e = if first {
            n.entries.first()
        } else {
            n.entries.last()
        };
        match e.and_then(|e| e.child) {
            Some(c) => b = t.block_of_vcn(c),
            None => return b,
        }
    }
}

/// Internal entries whose removal needs a longer entry in their place (the documented donor: the
/// successor, from a leaf that keeps another entry, else the predecessor from such a leaf), with
/// the bytes the node grows by: (node, name, growth).
fn growing_replacements(t: &IndexDump) -> Vec<(Option<u64>, String, i64)> {
    let mut out = Vec::new();
    for w in t.walk() {
        for (i, e) in w.entries.iter().enumerate() {
            let (Some(child), Some((_, name))) = (e.child, e.file_name()) else {
                continue;
            };
            let Some(next) = w.entries.get(i + 1).and_then(|n| n.child) else {
                continue;
            };
            let succ = &t.blocks[&leaf_below(t, next, true)];
            let pred = &t.blocks[&leaf_below(t, child, false)];
            let donor = if real_entries(succ).len() >= 2 {
                real_entries(succ)[0]
            } else if real_entries(pred).len() >= 2 {
                *real_entries(pred).last().unwrap()
            } else {
                continue;
            };
            let growth = donor.length as i64 + 8 - e.length as i64;
            if growth > 0 {
                out.push((w.block, name, growth));
            }
        }
    }
    out
}

/// Bytes free (allocated − in use) in the MFT record that holds directory `dir`'s `$INDEX_ROOT`:
/// the base record, or the extension record ntfs-3g moved it to (as ntfsinfo reports).
fn index_root_room(vol: &Path, dir: u64) -> i64 {
    let info = String::from_utf8_lossy(&run_ok(
        "ntfsinfo",
        [
            OsStr::new("-i"),
            OsStr::new(&dir.to_string()),
            vol.as_os_str(),
        ],
    ))
    .into_owned();
    let holder: u64 = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("Dumping attribute $INDEX_ROOT (0x90) from mft record ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("ntfsinfo names no record for $INDEX_ROOT of {dir}:\n{info}"));
    let r = Vol::open(vol).record(holder);
    assert!(
        r.attr(0x90, "$I30").is_some(),
        "record {holder} holds no $INDEX_ROOT"
    );
    u32le(&r.b, 0x1C) as i64 - r.bytes_in_use() as i64
}

/// An internal block that would have to split: a short separator whose successor is long, in a
/// block with less room than the difference.
#[test]
fn index_block_split_is_refused() {
    let s = Scratch::new("refuse-split");
    let fx = fixture("gpt-win.raw");
    let dir = "/Windows/Temp/judge-split";
    let mut found: Option<String> = None;
    let (c, _) = prepared(&s, &fx, |vol, s| {
        let t = grow_until(vol, s, dir, 30, |t| {
            growing_replacements(t).iter().any(|(id, _, growth)| {
                id.is_some_and(|b| {
                    let n = &t.blocks[&b];
                    n.index_length as i64 + growth > n.allocated as i64
                })
            })
        });
        let (id, name, growth) = growing_replacements(&t)
            .into_iter()
            .find(|(id, _, growth)| {
                id.is_some_and(|b| {
                    let n = &t.blocks[&b];
                    n.index_length as i64 + growth > n.allocated as i64
                })
            })
            .unwrap();
        eprintln!("split: {name} in block {id:?} grows it by {growth}");
        found = Some(name.clone());
        vec![Target::new(&format!("{dir}/{name}"))]
    });
    assert_sound_input(&c);
    let name = found.unwrap();
    assert_refused(
        &c.image,
        &Target::new(&format!("{dir}/{name}")).windows(),
        &s.path("refused.img"),
        &["NTFS would split the block"],
    );
}

/// The same in the root: the replacement would not fit the directory's MFT record.
#[test]
fn index_root_outgrowing_its_record_is_refused() {
    let s = Scratch::new("refuse-root-grow");
    let fx = fixture("gpt-win.raw");
    // ntfs-3g gives the directory a security descriptor; when its root grows, it moves the root
    // to an extension record of its own, which the root then fills.
    let dir = "/Windows/Temp/judge-root".to_string();
    let mut found: Option<String> = None;
    let (c, _) = prepared(&s, &fx, |vol, s| {
        let t = grow_until(vol, s, &dir, 30, |t| {
            let room = index_root_room(vol, ntfsls_inode(vol, &dir));
            growing_replacements(t)
                .iter()
                .any(|(id, _, growth)| id.is_none() && *growth > room)
        });
        let room = index_root_room(vol, ntfsls_inode(vol, &dir));
        let (_, name, growth) = growing_replacements(&t)
            .into_iter()
            .find(|(id, _, growth)| id.is_none() && *growth > room)
            .unwrap();
        eprintln!("root: {name} grows the root by {growth}, {room} bytes free");
        found = Some(name);
        vec![]
    });
    assert_sound_input(&c);
    let name = found.unwrap();
    assert_refused(
        &c.image,
        &Target::new(&format!("{dir}/{name}")).windows(),
        &s.path("refused.img"),
        &["the MFT record has no room to grow an attribute"],
    );
}

/// An internal block left with no key when the file alone in one of its two leaves goes (under
/// its one key, and under its END): NTFS would merge blocks.
#[test]
fn index_merge_is_refused() {
    let s = Scratch::new("refuse-merge");
    let fx = fixture("gpt-win.raw");
    let dir = "/Windows/Temp/judge-merge";
    let mut targets: Vec<String> = Vec::new();
    let (c, _) = prepared(&s, &fx, |vol, s| {
        grow_until(vol, s, dir, 30, |t| {
            t.walk().iter().any(|w| w.block.is_some() && !w.leaf)
        });
        // Empty the first leaf of the internal block with the fewest keys until one key is left:
        // each emptied leaf takes one key out of its parent (ntfs-3g moves it to the next leaf).
        let mut internal = None;
        for _ in 0..40 {
            let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
            let w = t
                .walk()
                .into_iter()
                .filter(|w| w.block.is_some() && !w.leaf)
                .min_by_key(|w| real_entries(node(&t, w.block)).len())
                .unwrap();
            if real_entries(node(&t, w.block)).len() == 1 {
                internal = w.block;
                break;
            }
            let first = &t.blocks[&t.block_of_vcn(w.entries[0].child.unwrap())];
            let names: Vec<String> = real_entries(first)
                .iter()
                .map(|e| e.file_name().unwrap().1)
                .collect();
            with_mount(vol, s, |m| {
                for n in &names {
                    std::fs::remove_file(m.p(&format!("{dir}/{n}"))).unwrap();
                }
            });
        }
        let internal = internal.expect("an internal block with one key");
        let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
        let parent = &t.blocks[&internal];
        for e in &parent.entries {
            let leaf = t.block_of_vcn(e.child.unwrap());
            let keep = real_entries(&t.blocks[&leaf])[0].file_name().unwrap().1;
            thin_leaf(vol, s, dir, leaf, &keep);
            targets.push(keep);
        }
        let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
        let parent = &t.blocks[&internal];
        assert_eq!(real_entries(parent).len(), 1, "{}", t.show());
        for e in &parent.entries {
            let leaf = &t.blocks[&t.block_of_vcn(e.child.unwrap())];
            assert_eq!(real_entries(leaf).len(), 1, "{}", t.show());
        }
        eprintln!("merge: block {internal}, targets {targets:?}");
        vec![]
    });
    assert_sound_input(&c);
    assert_eq!(targets.len(), 2);
    for name in &targets {
        assert_refused(
            &c.image,
            &Target::new(&format!("{dir}/{name}")).windows(),
            &s.path("refused.img"),
            &["NTFS would merge blocks"],
        );
    }
}

/// A leaf emptied under a separator whose key does not fit the leaf it goes back into: that leaf
/// would have to split.
#[test]
fn reinserted_key_into_a_full_leaf_is_refused() {
    let s = Scratch::new("refuse-reinsert");
    let fx = fixture("gpt-win.raw");
    let dir = "/Windows/Temp/judge-reinsert";
    let mut target: Option<String> = None;
    let (c, _) = prepared(&s, &fx, |vol, s| {
        let t = grow_until(vol, s, dir, 30, |t| {
            t.walk().iter().any(|w| w.block.is_some() && !w.leaf)
        });
        // A short separator P in an internal block with another key, between two leaves.
        let (leaf, next_leaf, sep) = t
            .walk()
            .into_iter()
            .filter(|w| w.block.is_some() && !w.leaf && real_entries(node(&t, w.block)).len() >= 2)
            .find_map(|w| {
                w.entries.windows(2).find_map(|p| {
                    let (_, name) = p[0].file_name()?;
                    let l = t.block_of_vcn(p[0].child?);
                    let n = t.block_of_vcn(p[1].child?);
                    (name.len() < 10
                        && t.blocks[&l].entries.iter().all(|e| e.child.is_none())
                        && t.blocks[&n].entries.iter().all(|e| e.child.is_none()))
                    .then_some((l, n, p[0].clone()))
                })
            })
            .unwrap_or_else(|| panic!("no short separator between two leaves:\n{}", t.show()));
        let sep_name = sep.file_name().unwrap().1;
        let keep = real_entries(&t.blocks[&leaf])[0].file_name().unwrap().1;
        thin_leaf(vol, s, dir, leaf, &keep);
        // Fill the next leaf with names that sort right after the separator, to the byte.
        let key_len = sep.length as i64 - 8;
        let min_add = (0x52 + 2 * (sep_name.len() as i64 + 2) + 7) / 8 * 8;
        for k in 0..20 {
            let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
            let n = &t.blocks[&next_leaf];
            let room = n.allocated as i64 - n.index_length as i64;
            if room < key_len {
                break;
            }
            let add = if room <= 592 {
                room
            } else if room - 592 >= min_add {
                592
            } else {
                room - min_add
            };
            assert!(
                add >= min_add,
                "cannot fill leaf {next_leaf} to the byte ({room} free)"
            );
            let chars = (add as usize - 0x52) / 2;
            let name = format!("{sep_name}-{k:x}{}", "f".repeat(chars - sep_name.len() - 2));
            with_mount(vol, s, |m| {
                std::fs::write(m.p(&format!("{dir}/{name}")), b"f").unwrap()
            });
        }
        let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
        let n = &t.blocks[&next_leaf];
        assert!(
            (n.allocated as i64 - (n.index_length as i64)) < key_len,
            "leaf {next_leaf} still has room for {sep_name}:\n{}",
            t.show()
        );
        assert_eq!(real_entries(&t.blocks[&leaf]).len(), 1, "{}", t.show());
        eprintln!(
            "reinsert: {keep} alone in block {leaf}, {sep_name} goes back into block {next_leaf}"
        );
        target = Some(keep);
        vec![]
    });
    assert_sound_input(&c);
    let name = target.unwrap();
    assert_refused(
        &c.image,
        &Target::new(&format!("{dir}/{name}")).windows(),
        &s.path("refused.img"),
        &["NTFS would split the block"],
    );
}

/// A root whose only child is a leaf holding one file: deleting it makes the root a leaf again,
/// as ntfs-3g's rm does.
#[test]
fn path_root_becomes_a_leaf_again() {
    let s = Scratch::new("root-leaf");
    path_case("root-leaf", &s, |vol, s| {
        let dir = "/Windows/Temp/judge-root-leaf";
        let name = |i: usize| format!("{i}-{}", "y".repeat(200));
        with_mount(vol, s, |m| {
            std::fs::create_dir(m.p(dir)).unwrap();
            for i in 0..8 {
                std::fs::write(m.p(&format!("{dir}/{}", name(i))), [b'y'; 3000]).unwrap();
            }
        });
        with_mount(vol, s, |m| {
            for i in 0..7 {
                std::fs::remove_file(m.p(&format!("{dir}/{}", name(i)))).unwrap();
            }
        });
        let t = dump_index(vol, ntfsls_inode(vol, dir), "$I30");
        assert!(
            t.root.entries.len() == 1 && t.root.entries[0].child.is_some(),
            "the root holds only END with a child:\n{}",
            t.show()
        );
        let leaf = &t.blocks[&t.block_of_vcn(t.root.entries[0].child.unwrap())];
        assert_eq!(real_entries(leaf).len(), 1, "{}", t.show());
        vec![Target::new(&format!("{dir}/{}", name(7)))]
    });
}

// ---------------------------------------------------------------------------------------------
// Volumes formatted and written by Windows

/// Unpacks a shared Windows-made image into `s`; returns it with its first MBR partition.
fn windows_made(s: &Scratch, file: &str) -> (PathBuf, u64, u64) {
    let src = repo_testdata().join("windows-made").join(file);
    assert!(src.exists(), "{} missing", src.display());
    let img = s.path("windows.raw");
    if file.ends_with(".tar.gz") {
        let dir = s.path("untar");
        std::fs::create_dir_all(&dir).unwrap();
        run_ok(
            "tar",
            [
                OsStr::new("-xzf"),
                src.as_os_str(),
                OsStr::new("-C"),
                dir.as_os_str(),
            ],
        );
        std::fs::rename(dir.join("ntfs.raw"), &img).unwrap();
    } else {
        let o = sh(&format!(
            "gunzip -c '{}' > '{}'",
            src.display(),
            img.display()
        ));
        assert_eq!(o.code, 0, "gunzip: {}", o.both());
        run("fallocate", [OsStr::new("--dig-holes"), img.as_os_str()]);
    }
    let mbr = read_at(&img, 0, 512);
    assert_eq!(&mbr[510..512], &[0x55, 0xAA], "{file}: no MBR");
    let start = u32le(&mbr, 0x1BE + 8) as u64 * 512;
    let len = u32le(&mbr, 0x1BE + 12) as u64 * 512;
    (img, start, len)
}

fn windows_made_case(tag: &str, file: &str, paths: &[&str]) {
    let s = Scratch::new(tag);
    let (img, off, len) = windows_made(&s, file);
    for p in paths {
        let sub = Scratch::new(&format!("{tag}-{}", p.replace(['/', '.'], "_")));
        let in_vol = sub.path("in.vol");
        extract(&img, off, len, &in_vol);
        let t = Target::new(p);
        let c = Case {
            s: &sub,
            image: img.clone(),
            in_vol,
            vol_off: off,
            vol_len: len,
            sector: 512,
            path_arg: Some(t.windows()),
            rule_file: None,
            flags: Vec::new(),
            targets: vec![t],
            files_json: None,
        };
        judge(&c);
    }
}

#[test]
fn windows_made_ptrn() {
    windows_made_case("win-ptrn", "ntfs-ptrn.raw.gz", &["/1.txt", "/2.txt"]);
}

#[test]
fn windows_made_ramslack() {
    windows_made_case("win-ramslack", "ntfs-ramslack.raw.gz", &["/1.txt"]);
}

#[test]
fn windows_made_20h1() {
    windows_made_case("win-20h1", "ntfs-20h1.tar.gz", &["/test_dir/file_1.txt"]);
}

// ---------------------------------------------------------------------------------------------
// Undo

#[test]
fn undo_round_trips() {
    let s = Scratch::new("undo");
    let fx = fixture("gpt-win.raw");
    let original = sha256(&fx.image);

    let out = s.path("out.img");
    let u = s.path("out.undo");
    let r = kaifuku(fix_args(
        &fx.image,
        &out,
        &None,
        &["--undo", u.to_str().unwrap()],
    ));
    assert_eq!(r.code, 0, "{}", r.both());
    assert_ne!(sha256(&out), original);
    let r = kaifuku([OsStr::new("undo"), out.as_os_str(), u.as_os_str()]);
    assert_eq!(r.code, 0, "undo: {}", r.both());
    assert_eq!(sha256(&out), original, "undo of the output");

    let copy = s.path("copy.img");
    sparse_copy(&fx.image, &copy);
    let u2 = s.path("inplace.undo");
    let r = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--in-place"),
        copy.as_os_str(),
        OsStr::new("--undo"),
        u2.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert_eq!(r.code, 0, "in place: {}", r.both());
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    check_writes(&fx.image, &copy, &plan, true, "in place");
    let r = kaifuku([OsStr::new("undo"), copy.as_os_str(), u2.as_os_str()]);
    assert_eq!(r.code, 0, "undo in place: {}", r.both());
    assert_eq!(sha256(&copy), original, "undo of the in-place fix");

    // A fixed byte changed since (e.g. Windows booted): refused without --force.
    let u3 = s.path("again.undo");
    let r = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--in-place"),
        copy.as_os_str(),
        OsStr::new("--undo"),
        u3.as_os_str(),
        OsStr::new("--json"),
    ]);
    assert_eq!(r.code, 0, "in place again: {}", r.both());
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    let w = &plan["file_writes"][0];
    let at = w["file_offset"].as_u64().unwrap();
    let b = read_at(&copy, at, 1)[0];
    write_at(&copy, at, &[b ^ 0x5A]);
    let changed = sha256(&copy);
    let r = kaifuku([OsStr::new("undo"), copy.as_os_str(), u3.as_os_str()]);
    assert_eq!(
        r.code,
        3,
        "undo over a modified image must be refused: {}",
        r.both()
    );
    assert!(
        r.both().contains("--force"),
        "the refusal should name --force: {}",
        r.both()
    );
    assert_eq!(sha256(&copy), changed, "a refused undo wrote to the image");
    let r = kaifuku([
        OsStr::new("undo"),
        OsStr::new("--force"),
        copy.as_os_str(),
        u3.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "undo --force: {}", r.both());
    assert_eq!(
        sha256(&copy),
        original,
        "undo --force restores every saved range"
    );
}

// ---------------------------------------------------------------------------------------------
// Unclean volumes

/// Sets VOLUME_IS_DIRTY in `$Volume` (record 3) and its `$MFTMirr` copy, fixups respected.
fn set_dirty_flag(vol: &Path) {
    let v = Vol::open(vol);
    let mut places = vec![v.record_location(3)];
    places.extend(v.mirror_location(3));
    for loc in places {
        assert_eq!(loc.len(), 1, "record 3 in one piece");
        let (off, len) = loc[0];
        let mut b = read_at(vol, off, len as usize);
        unfixup(&mut b).unwrap();
        let rec = Rec {
            number: 3,
            b: b.clone(),
        };
        let a = rec.attr(0x70, "").expect("$VOLUME_INFORMATION");
        let at = a.offset + u16le(&a.raw, 0x14) as usize + 0x0A;
        let flags = u16le(&b, at) | 1;
        b[at..at + 2].copy_from_slice(&flags.to_le_bytes());
        refixup(&mut b);
        write_at(vol, off, &b);
    }
}

/// Writes the first two restart pages of a real journal over the volume's `$LogFile`;
/// `unclean` clears the restart area's clean flag.
fn put_restart_pages(vol: &Path, log: &Path, unclean: bool) {
    let src = std::fs::read(log).unwrap();
    let page = u32le(&src, 0x10) as usize;
    let mut pages = src[..2 * page].to_vec();
    if unclean {
        for p in pages.chunks_mut(page) {
            unfixup(p).unwrap();
            let ra = u16le(p, 0x18) as usize;
            let flags = u16le(p, ra + 0x0E) & !2;
            p[ra + 0x0E..ra + 0x10].copy_from_slice(&flags.to_le_bytes());
            refixup(p);
        }
    }
    let v = Vol::open(vol);
    let lf = v.record(2).attr(0x80, "").unwrap();
    let mut at = 0usize;
    for (off, len) in v.map(&lf.runs, 0, pages.len() as u64) {
        write_at(vol, off, &pages[at..at + len as usize]);
        at += len as usize;
    }
}

fn volume_flags(vol: &Path) -> String {
    let o = run_ok(
        "ntfsinfo",
        [OsStr::new("-f"), OsStr::new("-m"), vol.as_os_str()],
    );
    String::from_utf8_lossy(&o)
        .lines()
        .find(|l| l.contains("Volume Flags:"))
        .unwrap_or_else(|| panic!("ntfsinfo -m printed no volume flags"))
        .trim()
        .to_string()
}

#[test]
fn unclean_volumes() {
    let Some(dfir) = gpl_testdata("dfir_ntfs", "unclean_volumes") else {
        return;
    };
    let s = Scratch::new("unclean");
    let fx = fixture("gpt-win.raw");
    let in_vol = s.path("clean.vol");
    extract(&fx.image, fx.vol_off, fx.vol_len, &in_vol);

    // What ntfs-3g's rm leaves on the clean volume: the reference for the bitmaps.
    let oracle = s.path("oracle.vol");
    sparse_copy(&in_vol, &oracle);
    with_mount(&oracle, &s, |m| {
        for p in &fx.matches {
            std::fs::remove_file(m.p(p)).unwrap();
        }
    });
    let oracle_bitmap = ntfscat_bytes(&oracle, 6, None);
    let oracle_mftbitmap = ntfscat_bytes(&oracle, 0, Some("0xB0"));

    enum Expect {
        Refused,
        Proceeds,
    }
    type Make<'a> = Box<dyn Fn(&Path) + 'a>;
    // The journal decides: a clean log (all 0xFF, or a v1.1 restart area with the clean flag) is
    // left alone, whatever the dirty flag says (a set flag stays set and chkdsk runs at the next
    // boot anyway). An unclean v1.1 or any v2.0 restart area needs the user's consent.
    let variants: Vec<(&str, Make, Expect)> = vec![
        (
            "dirty flag only",
            Box::new(|v: &Path| set_dirty_flag(v)),
            Expect::Proceeds,
        ),
        (
            "clean v1.1 journal with records (Windows 7)",
            Box::new(|v: &Path| put_restart_pages(v, &dfir.join("LogFile_7.bin"), false)),
            Expect::Proceeds,
        ),
        (
            "unclean v1.1 journal",
            Box::new(|v: &Path| put_restart_pages(v, &dfir.join("LogFile_7.bin"), true)),
            Expect::Refused,
        ),
        (
            "v2.0 journal (Windows 10)",
            Box::new(|v: &Path| put_restart_pages(v, &dfir.join("LogFile_10.bin"), false)),
            Expect::Refused,
        ),
        (
            "unclean v1.1 journal and dirty flag",
            Box::new(|v: &Path| {
                put_restart_pages(v, &dfir.join("LogFile_7.bin"), true);
                set_dirty_flag(v);
            }),
            Expect::Refused,
        ),
    ];
    for (what, make, expect) in variants {
        let vol = s.path("case.vol");
        sparse_copy(&in_vol, &vol);
        make(&vol);
        let img = s.path("case.img");
        sparse_copy(&fx.image, &img);
        implant(&vol, &img, fx.vol_off);
        let log_before = ntfscat_bytes(&vol, 2, None);
        let dirty_before = volume_flags(&vol).contains("DIRTY");
        // inspect reads the journal only when it is not clean. Here only the restart pages of a
        // real log were copied, not its records (and its size exceeds this volume's
        // `$LogFile`): the journal cannot be read, and inspect says why instead of guessing.
        let r = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), img.as_os_str()]);
        let report: Value = serde_json::from_slice(&r.stdout)
            .unwrap_or_else(|e| panic!("{what}: inspect --json: {e}: {}", r.both()));
        let journals: Vec<&Value> = report["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.get("journal"))
            .collect();
        let text = kaifuku([OsStr::new("inspect"), img.as_os_str()]).text();
        match expect {
            Expect::Refused => {
                assert_eq!(journals.len(), 1, "{what}: {report}");
                assert_eq!(journals[0]["code"], "unreadable", "{what}: {}", journals[0]);
                assert_eq!(
                    journals[0]["error"]["code"], "damaged",
                    "{what}: {}",
                    journals[0]
                );
                assert!(
                    text.contains("journal content: the journal cannot be read"),
                    "{what}: {text}"
                );
            }
            Expect::Proceeds => {
                assert!(
                    journals.is_empty(),
                    "{what}: a clean journal is not read: {report}"
                );
                assert!(!text.contains("journal content"), "{what}: {text}");
            }
        }
        let out = s.path("case-out.img");
        let _ = std::fs::remove_file(&out);
        let r = kaifuku(fix_args(&img, &out, &None, &[]));
        match expect {
            Expect::Refused => {
                assert_eq!(r.code, 2, "{what}: fix must refuse (exit 2): {}", r.both());
                assert!(
                    r.both().contains("--discard-journal"),
                    "{what}: the refusal should name --discard-journal: {}",
                    r.both()
                );
                assert!(
                    !out.exists(),
                    "{what}: a refused fix wrote {}",
                    out.display()
                );
                let mut partial = out.as_os_str().to_owned();
                partial.push(".partial");
                assert!(
                    !Path::new(&partial).exists(),
                    "{what}: a refused fix left a partial output"
                );
                let r = kaifuku(fix_args(
                    &img,
                    &out,
                    &None,
                    &["--discard-journal", "--json"],
                ));
                assert_eq!(r.code, 0, "{what}: fix --discard-journal: {}", r.both());
                let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
                check_writes(&img, &out, &plan, false, what);
                let ours = s.path("case-ours.vol");
                extract(&out, fx.vol_off, fx.vol_len, &ours);
                let flags = volume_flags(&ours);
                assert!(flags.contains("DIRTY"), "{what}: ntfsinfo -m: {flags}");
                let log = ntfscat_bytes(&ours, 2, None);
                assert!(
                    !log.is_empty() && log.iter().all(|b| *b == 0xFF),
                    "{what}: $LogFile is not all 0xFF after --discard-journal"
                );
                let v = Vol::open(&ours);
                assert_eq!(
                    v.record_raw(3),
                    read_at(
                        &ours,
                        v.mirror_location(3).unwrap()[0].0,
                        v.record_size as usize
                    ),
                    "{what}: $MFTMirr copy of $Volume differs from the record"
                );
                assert!(
                    ntfscat_bytes(&ours, 6, None) == oracle_bitmap,
                    "{what}: $Bitmap differs from ntfs-3g's rm"
                );
                assert!(
                    ntfscat_bytes(&ours, 0, Some("0xB0")) == oracle_mftbitmap,
                    "{what}: $MFT:$BITMAP differs from ntfs-3g's rm"
                );
                // ntfsfix -n on the result: "Mounting volume... OK", "Processing of $MFT and
                // $MFTMirr completed successfully", "NTFS partition ... was processed
                // successfully", exit 0. In no-action mode it reports neither the dirty flag nor
                // the journal (it says the same about the unclean input).
                let o = run("ntfsfix", [OsStr::new("-n"), ours.as_os_str()]);
                assert_eq!(o.code, 0, "{what}: ntfsfix -n: {}", o.both());
                assert!(
                    o.both().contains("processed successfully"),
                    "{what}: ntfsfix -n: {}",
                    o.both()
                );
                assert_check_clean(&out, what);
            }
            Expect::Proceeds => {
                assert_eq!(r.code, 0, "{what}: fix: {}", r.both());
                let ours = s.path("case-ours.vol");
                extract(&out, fx.vol_off, fx.vol_len, &ours);
                assert_eq!(
                    ntfscat_bytes(&ours, 2, None),
                    log_before,
                    "{what}: the journal was changed"
                );
                assert_eq!(
                    volume_flags(&ours).contains("DIRTY"),
                    dirty_before,
                    "{what}: the dirty flag changed"
                );
                assert!(
                    ntfscat_bytes(&ours, 6, None) == oracle_bitmap,
                    "{what}: $Bitmap differs from ntfs-3g's rm"
                );
                assert!(
                    ntfscat_bytes(&ours, 0, Some("0xB0")) == oracle_mftbitmap,
                    "{what}: $MFT:$BITMAP differs"
                );
                assert_check_clean(&out, what);
            }
        }
    }
}

/// VHDX input → VHDX output: qemu-img's raw view of it equals the raw fix of the same disk,
/// `qemu-img check` finds no error, libvhdi (`vhdiinfo`, and sleuthkit through it) reads it with the
/// matches gone, the file changed only in the two header slots and in block data, the disk keeps
/// its VirtualDiskId, and undo restores the input byte for byte; in place with undo as well.
fn builtin_vhdx(vhdx: &str, raw: &str) {
    let s = Scratch::new(&format!("builtin-{vhdx}"));
    let fv = fixture(vhdx);
    let fr = fixture(raw);
    let ctx = vhdx.to_string();
    let out_raw = s.path("out.raw");
    let r = kaifuku(fix_args(&fr.image, &out_raw, &None, &[]));
    assert_eq!(r.code, 0, "{raw}: {}", r.both());
    let out = s.path("out.vhdx");
    let undo = s.path("out.undo");
    let r = kaifuku(fix_args(
        &fv.image,
        &out,
        &None,
        &["--json", "--undo", undo.to_str().unwrap()],
    ));
    assert_eq!(r.code, 0, "{ctx}: {}", r.both());
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    check_writes(&fv.image, &out, &plan, false, &ctx);
    // Below 1 MiB (the header section) only the two headers, whole, are written.
    for w in plan["file_writes"].as_array().unwrap() {
        let at = w["file_offset"].as_u64().unwrap();
        if at < 1 << 20 {
            assert!(
                (at == 64 << 10 || at == 128 << 10) && w["len"] == 4096,
                "{ctx}: write in the header section: {w}"
            );
        }
    }
    let conv = s.path("out-converted.raw");
    run_ok(
        "qemu-img",
        [
            OsStr::new("convert"),
            OsStr::new("-f"),
            OsStr::new("vhdx"),
            OsStr::new("-O"),
            OsStr::new("raw"),
            out.as_os_str(),
            conv.as_os_str(),
        ],
    );
    let d = diff_files(&conv, &out_raw);
    assert!(
        d.is_empty(),
        "{ctx}: qemu-img's raw view of the fixed VHDX differs from the fixed raw image at {:?}",
        &d[..d.len().min(10)]
    );
    run_ok(
        "qemu-img",
        [
            OsStr::new("check"),
            OsStr::new("-f"),
            OsStr::new("vhdx"),
            out.as_os_str(),
        ],
    );
    let info = String::from_utf8_lossy(&run_ok("vhdiinfo", [out.as_os_str()])).into_owned();
    let kind = if fv.container == "vhdx-fixed" {
        "Fixed"
    } else {
        "Dynamic"
    };
    assert!(
        info.contains("VHDX") && info.contains(&format!("Disk type\t\t: {kind}")),
        "{ctx}: vhdiinfo: {info}"
    );
    let tsk = tsk_args(&out, fv.vol_off / fv.sector, fv.sector);
    let mut tsk_vhd = vec!["-i".to_string(), "vhd".to_string()];
    tsk_vhd.extend(tsk);
    let listed = fls(&tsk_vhd);
    for m in &fv.matches {
        assert!(
            !listed.iter().any(|(deleted, _, _, p)| !deleted && p == m),
            "{ctx}: fls -i vhd still lists {m} as allocated"
        );
    }
    // The disk's identity: the id the generator gave it, in the output.
    let exp = load_json(&fixtures().join(format!("{vhdx}.expected.json")));
    let r = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), out.as_os_str()]);
    let report: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(
        report["container"]["vhdx"]["virtual_disk_id"], exp["vhdx_virtual_disk_id"],
        "{ctx}: VirtualDiskId"
    );

    let again = s.path("again.vhdx");
    let r = kaifuku(fix_args(&out, &again, &None, &[]));
    assert_eq!(r.code, 1, "{ctx}: second fix: {}", r.both());
    assert!(!again.exists());
    let r = kaifuku([OsStr::new("undo"), out.as_os_str(), undo.as_os_str()]);
    assert_eq!(r.code, 0, "{ctx}: undo: {}", r.both());
    assert_eq!(
        sha256(&out),
        sha256(&fv.image),
        "{ctx}: undo did not restore the input"
    );

    // In place, with undo: the same bytes as the copy, and undo restores the input.
    let copy_sha = {
        let r = kaifuku(fix_args(&fv.image, &again, &None, &[]));
        assert_eq!(r.code, 0, "{ctx}: {}", r.both());
        sha256(&again)
    };
    let inplace = s.path("inplace.vhdx");
    sparse_copy(&fv.image, &inplace);
    let undo2 = s.path("inplace.undo");
    let r = kaifuku([
        OsStr::new("fix"),
        inplace.as_os_str(),
        OsStr::new("--in-place"),
        OsStr::new("--undo"),
        undo2.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{ctx}: in place: {}", r.both());
    assert_eq!(
        sha256(&inplace),
        copy_sha,
        "{ctx}: in place differs from the copy"
    );
    let r = kaifuku([OsStr::new("undo"), inplace.as_os_str(), undo2.as_os_str()]);
    assert_eq!(r.code, 0, "{ctx}: undo in place: {}", r.both());
    assert_eq!(sha256(&inplace), sha256(&fv.image), "{ctx}: undo in place");
}

#[test]
fn builtin_vhdx_fixed() {
    builtin_vhdx("gpt-win-fixed.vhdx", "gpt-win.raw");
}

#[test]
fn builtin_vhdx_dynamic() {
    builtin_vhdx("gpt-win-dynamic.vhdx", "gpt-win.raw");
}

#[test]
fn builtin_vhdx_dynamic_64k_clusters() {
    builtin_vhdx("bare-64k-dynamic.vhdx", "bare-64k.raw");
}

// ---------------------------------------------------------------------------------------------
// A user's rule file

/// A rule file for another vendor's channel files: `CH-0042*.bin` in
/// `\ProgramData\Contoso\Agent\Channels`, faulty when modified in 04:09-04:10 UTC on 2025-03-02,
/// fixed from 05:27 UTC, with a known-bad header.
const CONTOSO_RULE: &str = r#"format = 1
[[rule]]
id = "contoso-agent-2025-03-02"
directory = '\ProgramData\Contoso\Agent\Channels'
name = "CH-0042*.bin"
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

/// ntfs-3g makes the Contoso directory with two matching files (one faulty with the bad header,
/// one fixed) and one that does not match; `fix --rule` must delete exactly what ntfs-3g's `rm`
/// of the two matches deletes, and inspect must judge them as `stat` on the mount shows them.
#[test]
fn user_rule_file_deletes_like_ntfs3g_rm() {
    let s = Scratch::new("user-rule");
    let fx = fixture("gpt-win.raw");
    let dir = "/ProgramData/Contoso/Agent/Channels";
    let (mut c, targets) = prepared(&s, &fx, |vol, s| {
        with_mount(vol, s, |m| {
            std::fs::create_dir_all(m.p(dir)).unwrap();
            let mut faulty = vec![0xde, 0xad, 0xbe, 0xef, 0x01, 0x00];
            faulty.extend((0..9000u32).map(|i| (i * 7) as u8));
            std::fs::write(m.p(&format!("{dir}/CH-0042-a.bin")), &faulty).unwrap();
            let fixed: Vec<u8> = (0..7000u32).map(|i| (i * 13 + 1) as u8).collect();
            std::fs::write(m.p(&format!("{dir}/CH-0042-b.bin")), &fixed).unwrap();
            std::fs::write(m.p(&format!("{dir}/CH-0041.bin")), &fixed).unwrap();
            for (name, when) in [
                ("CH-0042-a.bin", "@1740888570"),
                ("CH-0042-b.bin", "@1740895200"),
                ("CH-0041.bin", "@1740888570"),
            ] {
                let o = run(
                    "touch",
                    [
                        OsStr::new("-m"),
                        OsStr::new("-d"),
                        OsStr::new(when),
                        m.p(&format!("{dir}/{name}")).as_os_str(),
                    ],
                );
                assert_eq!(o.code, 0, "touch {name}: {}", o.both());
            }
        });
        vec![
            Target::new(&format!("{dir}/CH-0042-a.bin")),
            Target::new(&format!("{dir}/CH-0042-b.bin")),
        ]
    });
    let rule_file = s.path("contoso.toml");
    std::fs::write(&rule_file, CONTOSO_RULE).unwrap();

    // Inspect's verdicts and header results, against what was written and stamped.
    let r = kaifuku([
        OsStr::new("inspect"),
        OsStr::new("--json"),
        OsStr::new("--rule"),
        rule_file.as_os_str(),
        c.image.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "inspect --rule: {}", r.both());
    let report: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(report["rule"]["id"], "user");
    assert_eq!(report["rule"]["user"]["key"], "contoso-agent-2025-03-02");
    let found: Vec<(String, String, Value)> = report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["rule"]["matches"].as_array())
        .flatten()
        .map(|m| {
            (
                m["path"].as_str().unwrap().to_string(),
                m["verdict"].as_str().unwrap().to_string(),
                m["header_matches"].clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "\\ProgramData\\Contoso\\Agent\\Channels\\CH-0042-a.bin".to_string(),
                "faulty".to_string(),
                Value::Bool(true)
            ),
            (
                "\\ProgramData\\Contoso\\Agent\\Channels\\CH-0042-b.bin".to_string(),
                "fixed".to_string(),
                Value::Bool(false)
            ),
        ]
    );
    // The human report words the user rule's verdicts from its own windows.
    let r = kaifuku([
        OsStr::new("inspect"),
        OsStr::new("--rule"),
        rule_file.as_os_str(),
        c.image.as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains(
            "verdict: FAULTY version (modified 2025-03-02T04:09:00Z to 2025-03-02T04:10:00Z)"
        ),
        "{text}"
    );
    assert!(
        text.contains("Rule        Contoso agent channel file 42 (2025-03-02): \\ProgramData\\Contoso\\Agent\\Channels\\CH-0042*.bin"),
        "{text}"
    );

    c.rule_file = Some(rule_file);
    assert_eq!(targets.len(), 2);
    judge(&c);
}

/// Two rules reach one record: the built-in rule by the channel file's name, and a user rule by
/// a hard link to it in another directory. The plan deletes both names through one editor, so the
/// record goes with its last name; ntfs-3g's `rm` of both names is the oracle.
#[test]
fn two_rules_matching_two_names_of_one_record_delete_like_ntfs3g_rm() {
    let s = Scratch::new("two-rules-hard-link");
    let fx = fixture("gpt-win.raw");
    assert!(
        !fx.matches.is_empty(),
        "gpt-win.raw: the built-in rule matches nothing"
    );
    let dir = "/ProgramData/Contoso/Agent/Channels";
    let link = format!("{dir}/CH-0042-link.bin");
    let channel_file = fx.matches[0].clone();
    let (mut c, targets) = prepared(&s, &fx, |vol, s| {
        with_mount(vol, s, |m| {
            std::fs::create_dir_all(m.p(dir)).unwrap();
            std::fs::hard_link(m.p(&Target::new(&channel_file).0), m.p(&link)).unwrap();
            let md = std::fs::metadata(m.p(&link)).unwrap();
            assert_eq!(md.nlink(), 2, "ntfs-3g made the hard link");
        });
        let mut t: Vec<Target> = fx.matches.iter().map(|p| Target::new(p)).collect();
        t.push(Target::new(&link));
        t
    });
    assert_eq!(targets.len(), fx.matches.len() + 1);
    let rule_file = s.path("contoso-and-builtin.toml");
    std::fs::write(
        &rule_file,
        CONTOSO_RULE
            .replace(
                "format = 1\n",
                "format = 1\ninclude = [\"crowdstrike-2024-07-19\"]\n",
            )
            .replace("header = \"de ad be ef 01 00\"\n", ""),
    )
    .unwrap();
    c.rule_file = Some(rule_file);
    judge(&c);
}
