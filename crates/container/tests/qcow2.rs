//! qcow2 images written by qemu-img and qemu-io, the reference outside this crate: kaifuku must read
//! them byte for byte as qemu does, and files patched through `plan_writes` (in place) or
//! `plan_output` (clusters stored anew at the end of the file) must pass `qemu-img check` — no
//! errors and no leaked clusters — and read back in qemu as intended. Damaged variants are made
//! from qemu-img's bytes by changing one field.
//!
//! qemu-img and qemu-io are required: without them these tests fail (they would otherwise pass
//! without testing anything).

mod common;

use common::{apply, assert_reads_as, qemu_img, run_ok, s, FileReader, TempDir};

use kaifuku_container::{
    open, ContainerError, Extent, FileWriteLabel, Format, OutputPlan, Qcow2ClusterKind,
    Qcow2Feature, WriteHow,
};
use kaifuku_io::{Patch, PatchData, ReadAt};
use std::fs::{self};
use std::io;
use std::path::{Path, PathBuf};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const RAW_SIZE: usize = 5 * MIB;

/// 5 MiB of deterministic noise with zero regions (2..4 MiB, 256..512 KiB, the last 100 KiB),
/// and one highly compressible MiB (3 bytes repeated) at 1..2 MiB.
fn raw_image() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut v: Vec<u8> = (0..RAW_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    v[2 * MIB..4 * MIB].fill(0);
    v[256 * KIB..512 * KIB].fill(0);
    v[RAW_SIZE - 100 * KIB..].fill(0);
    for (i, b) in v[MIB..2 * MIB].iter_mut().enumerate() {
        *b = b"abc"[i % 3];
    }
    v
}

/// Writes the raw image and converts it to qcow2 with the given options (and `-c` if asked).
fn make_qcow2(dir: &TempDir, raw: &[u8], options: &str, compress: bool) -> PathBuf {
    let raw_path = dir.path("input.raw");
    fs::write(&raw_path, raw).unwrap();
    let out = dir.path("image.qcow2");
    let mut args = vec!["convert", "-f", "raw", "-O", "qcow2", "-o", options];
    if compress {
        args.push("-c");
    }
    args.extend([s(&raw_path), s(&out)]);
    qemu_img(&args);
    out
}

/// What qemu reads: `qemu-img convert -O raw`.
fn qemu_raw(dir: &TempDir, image: &Path) -> Vec<u8> {
    let out = dir.path("qemu.raw");
    qemu_img(&["convert", "-f", "qcow2", "-O", "raw", s(image), s(&out)]);
    fs::read(out).unwrap()
}

fn info(image: &Path) -> serde_json::Value {
    let out = qemu_img(&["info", "-f", "qcow2", "--output=json", s(image)]);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn reads_what_qemu_wrote() {
    let raw = raw_image();
    for (options, compress, version, cluster) in [
        ("compat=0.10", false, 2, 64 * KIB),
        ("compat=1.1", false, 3, 64 * KIB),
        ("compat=1.1,cluster_size=512", false, 3, 512),
        ("compat=0.10,cluster_size=2M", false, 2, 2 * MIB),
        ("compat=1.1,refcount_bits=1", false, 3, 64 * KIB),
        ("compat=1.1,refcount_bits=64", false, 3, 64 * KIB),
        ("compat=1.1,extended_l2=on", false, 3, 64 * KIB),
        (
            "compat=1.1,extended_l2=on,cluster_size=32k",
            false,
            3,
            32 * KIB,
        ),
        ("compat=1.1", true, 3, 64 * KIB),
        ("compat=0.10", true, 2, 64 * KIB),
        ("compat=1.1,cluster_size=4k", true, 3, 4 * KIB),
        ("compat=1.1,extended_l2=on", true, 3, 64 * KIB),
    ] {
        let dir = TempDir::new("read");
        let image = make_qcow2(&dir, &raw, options, compress);
        let c = open(FileReader::open(&image)).unwrap();
        assert_eq!(c.format(), Format::Qcow2, "{options}");
        assert_eq!(
            c.virtual_size(),
            info(&image)["virtual-size"].as_u64().unwrap()
        );
        assert_eq!(qemu_raw(&dir, &image), raw, "{options}: qemu's own reading");
        assert_reads_as(&c, &raw);
        let q = c.info().qcow2.unwrap();
        assert_eq!(
            (q.version, q.cluster_size),
            (version, cluster as u64),
            "{options}"
        );
        assert_eq!(q.extended_l2, options.contains("extended_l2=on"));
        assert_eq!(q.snapshots, 0);
        let json = serde_json::to_value(c.info()).unwrap();
        assert_eq!(json["format"], "qcow2");
        assert!(json.get("vhd").is_none());
        // qemu-img stores a cluster compressed only where that saves space: the repeated MiB.
        if compress {
            let at = (MIB + 20 * KIB) as u64;
            assert!(
                matches!(c.map(at).unwrap(), Extent::Compressed { skip, .. } if skip == at % cluster as u64),
                "{options}"
            );
            assert!(matches!(
                c.map(20 * KIB as u64).unwrap(),
                Extent::InFile { .. }
            ));
        } else {
            assert!(matches!(
                c.map(20 * KIB as u64).unwrap(),
                Extent::InFile { .. }
            ));
        }
        // qemu-img leaves the zero MiBs unallocated.
        assert!(matches!(
            c.map(3 * MIB as u64).unwrap(),
            Extent::Zero { .. }
        ));
    }
}

/// A whole-disk read of a compressed image fetches contiguous compressed clusters in few calls,
/// and reading a cluster piece by piece inflates it from memory.
#[test]
fn compressed_reads_are_batched() {
    let raw = raw_image();
    let dir = TempDir::new("batched");
    let image = make_qcow2(&dir, &raw, "compat=1.1", true);
    let file = FileReader::open(&image);
    let c = open(&file).unwrap();
    let opened = file.calls.get();
    let mut all = vec![0u8; RAW_SIZE];
    c.read_at(0, &mut all).unwrap();
    assert!(all == raw);
    let calls = file.calls.get() - opened;
    // 80 clusters of data: one L2 table and a few runs, never one call per cluster.
    assert!(calls <= 6, "{calls} reads for the whole disk");
    let before = file.calls.get();
    assert!(matches!(
        c.map(MIB as u64 + 7 * 64 * KIB as u64).unwrap(),
        Extent::Compressed { .. }
    ));
    let mut piece = vec![0u8; 4096];
    for i in 0..16 {
        c.read_at(MIB as u64 + 64 * KIB as u64 * 7 + i * 4096, &mut piece)
            .unwrap();
    }
    assert!(file.calls.get() - before <= 1);
}

/// Zero clusters (qcow2 v3): `write -z` on allocated clusters leaves them marked "reads as zeros"
/// with or without their space.
#[test]
fn zero_clusters_read_as_zeros() {
    let mut raw = raw_image();
    let dir = TempDir::new("zero");
    let image = make_qcow2(&dir, &raw, "compat=1.1", false);
    run_ok(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -z 0 128k", s(&image)],
    );
    run_ok(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -z -u 640k 64k", s(&image)],
    );
    raw[..128 * KIB].fill(0);
    raw[640 * KIB..704 * KIB].fill(0);
    assert_eq!(qemu_raw(&dir, &image), raw);
    let c = open(FileReader::open(&image)).unwrap();
    assert_reads_as(&c, &raw);
    assert!(matches!(c.map(0).unwrap(), Extent::Zero { .. }));
    // A patch in a zero cluster that kept its space (cluster 0) and in one that did not
    // (cluster 10): both are stored anew, and the space kept for cluster 0 is released.
    let patches = [(100, vec![1u8; 4]), (650 * KIB as u64, vec![2u8; 4])];
    let want = patched(&raw, &patches);
    let plan = output_plan(&c, &patches);
    assert_eq!(relocated(&plan), vec![0, 10]);
    judge(&dir, &image, &plan, &want);
}

/// Patches planned in place on v2, v3 and extended-L2 images pass `qemu-img check` and read back
/// in qemu (and kaifuku) as the patched disk; only data clusters change.
#[test]
fn in_place_writes_read_back_in_qemu() {
    let raw = raw_image();
    for options in [
        "compat=0.10",
        "compat=1.1",
        "compat=1.1,cluster_size=512",
        "compat=1.1,extended_l2=on",
        "compat=1.1,refcount_bits=1",
    ] {
        let dir = TempDir::new("patch");
        let image = make_qcow2(&dir, &raw, options, false);
        let mut file = fs::read(&image).unwrap();
        let c = open(FileReader::open(&image)).unwrap();
        let p1: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let p2: Vec<u8> = (0..200_000u32).map(|i| (i * 13 + 1) as u8).collect();
        let p3 = [0xeeu8; 16];
        let patches: Vec<(u64, &[u8])> = vec![
            (1000, &p1),
            (600 * KIB as u64 + 77, &p2), // across clusters
            (RAW_SIZE as u64 - 200 * KIB as u64, &p3),
        ];
        let writes = c.plan_writes(&patches).unwrap();
        let mut want = raw.clone();
        for (at, bytes) in &patches {
            want[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
        }
        let before = file.clone();
        apply(&mut file, &writes);
        // Only the bytes that differ change, all of them inside data clusters (never cluster 0).
        let cluster = c.info().qcow2.unwrap().cluster_size as usize;
        let changed: usize = before.iter().zip(&file).filter(|(a, b)| a != b).count();
        assert!(changed > 0 && changed <= 300 + 200_000 + 16, "{options}");
        assert!(
            before[..cluster] == file[..cluster],
            "{options}: header changed"
        );
        let patched = dir.path("patched.qcow2");
        fs::write(&patched, &file).unwrap();
        qemu_img(&["check", "-f", "qcow2", s(&patched)]);
        assert!(
            qemu_raw(&dir, &patched) == want,
            "{options}: qemu reads other bytes"
        );
        let c2 = open(FileReader::open(&patched)).unwrap();
        assert_reads_as(&c2, &want);
    }
}

/// The bytes `raw` with `patches` laid over it.
fn patched(raw: &[u8], patches: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut want = raw.to_vec();
    for (at, bytes) in patches {
        want[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
    }
    want
}

fn output_plan<R: ReadAt>(
    c: &kaifuku_container::Container<R>,
    patches: &[(u64, Vec<u8>)],
) -> OutputPlan {
    let patches: Vec<Patch> = patches
        .iter()
        .map(|(at, bytes)| Patch {
            offset: *at,
            data: PatchData::Bytes(bytes.clone()),
            label: String::new(),
        })
        .collect();
    c.plan_output(&patches).unwrap()
}

/// The guest clusters the plan stores anew.
fn relocated(plan: &OutputPlan) -> Vec<u64> {
    plan.writes
        .iter()
        .filter_map(|w| match w.label {
            FileWriteLabel::VirtualBytes {
                unit: Some(kaifuku_container::ContainerUnit::Qcow2Cluster { cluster }),
                how: WriteHow::Relocated,
                ..
            } => Some(cluster),
            _ => None,
        })
        .collect()
}

/// The plan laid over a copy of `image` (grown to the plan's size, every new byte written):
/// `qemu-img check` finds no error and no leak, qemu and kaifuku read `want`. Returns the
/// patched file.
fn judge(dir: &TempDir, image: &Path, plan: &OutputPlan, want: &[u8]) -> PathBuf {
    let mut file = fs::read(image).unwrap();
    let old_len = file.len();
    if let Some(size) = plan.file_size {
        assert!(size as usize > old_len, "a qcow2 plan only grows the file");
        file.resize(size as usize, 0);
        let mut past_end: Vec<(u64, u64)> = plan
            .writes
            .iter()
            .filter(|w| w.end() > old_len as u64)
            .map(|w| (w.file_offset, w.end()))
            .collect();
        past_end.sort_unstable();
        let mut at = old_len as u64;
        for (from, to) in past_end {
            assert!(from <= at, "nothing is written at {at}..{from}");
            at = at.max(to);
        }
        assert_eq!(at, size, "every new byte is written");
    }
    apply(&mut file, &plan.writes);
    for f in &plan.fills {
        file[f.file_offset as usize..(f.file_offset + f.len) as usize].fill(f.byte);
    }
    let patched = dir.path("patched.qcow2");
    fs::write(&patched, &file).unwrap();
    // Exit 0: no corruption (2) and no leaked cluster (3).
    let check = qemu_img(&["check", "-f", "qcow2", "--output=json", s(&patched)]);
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(report["check-errors"], 0, "{report}");
    assert!(report.get("leaks").is_none(), "{report}");
    assert!(report.get("corruptions").is_none(), "{report}");
    assert!(qemu_raw(dir, &patched) == want, "qemu reads other bytes");
    assert_reads_as(&open(FileReader::open(&patched)).unwrap(), want);
    patched
}

/// Patches in compressed clusters (v2, v3, small clusters, extended L2 entries, 16- and 1-bit
/// refcounts) and in unallocated ones (with and without an L2 table) store those clusters anew at
/// the end of the file, as QEMU's own copy-on-write does: `qemu-img check` finds no error and no
/// leak (the compressed bytes lose their references), and qemu reads the patched disk.
#[test]
fn clusters_that_cannot_take_the_patch_in_place_are_stored_anew() {
    let raw = raw_image();
    for (options, compress) in [
        ("compat=1.1", true),
        ("compat=0.10", true),
        ("compat=1.1,cluster_size=4k", true),
        ("compat=1.1,extended_l2=on", true),
        ("compat=1.1,refcount_bits=1", true),
        ("compat=1.1", false),
    ] {
        let dir = TempDir::new("anew");
        let image = make_qcow2(&dir, &raw, options, compress);
        let c = open(FileReader::open(&image)).unwrap();
        let cluster = c.info().qcow2.unwrap().cluster_size;
        let p2: Vec<u8> = (0..3000u32).map(|i| (i * 13 + 1) as u8).collect();
        let patches = vec![
            // The compressible MiB: compressed clusters, one patch across two of them.
            (MIB as u64 + 70_000, vec![1u8; 4]),
            (MIB as u64 + 4 * 64 * KIB as u64 - 1500, p2),
            // Zeros qemu-img left unallocated, and an allocated cluster beside them.
            (3 * MIB as u64 + 12_345, vec![3u8; 700]),
            (1000, vec![4u8; 300]),
        ];
        let want = patched(&raw, &patches);
        let plan = output_plan(&c, &patches);
        let anew = relocated(&plan);
        assert!(
            anew.contains(&((3 * MIB as u64 + 12_345) / cluster)),
            "{options}"
        );
        if compress {
            assert!(
                anew.contains(&((MIB as u64 + 70_000) / cluster)),
                "{options}"
            );
        }
        judge(&dir, &image, &plan, &want);
    }
    // With 512-byte clusters an L2 table maps 32 KiB; the guest wrote only the first 4 KiB, so
    // the rest of the disk has no L2 table: a new one is made and the L1 table points at it.
    let dir = TempDir::new("anew-l2");
    let image = dir.path("sparse.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "cluster_size=512",
        s(&image),
        "1M",
    ]);
    run_ok(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x07 0 4k", s(&image)],
    );
    let mut raw = vec![0u8; MIB];
    raw[..4096].fill(7);
    let c = open(FileReader::open(&image)).unwrap();
    assert_eq!(c.info().qcow2.unwrap().l2_tables, 1);
    let patches = vec![(600 * KIB as u64 + 100, vec![9u8; 700])];
    let plan = output_plan(&c, &patches);
    assert!(plan.writes.iter().any(|w| matches!(
        w.label,
        FileWriteLabel::Qcow2Metadata {
            part: kaifuku_container::Qcow2Part::NewL2Table { index: 18 }
        }
    )));
    let want = patched(&raw, &patches);
    let out = judge(&dir, &image, &plan, &want);
    assert_eq!(
        open(FileReader::open(&out))
            .unwrap()
            .info()
            .qcow2
            .unwrap()
            .l2_tables,
        2
    );
}

/// Small clusters and 64-bit refcounts: a refcount block covers only 32 KiB of file, so the
/// clusters stored anew need new refcount blocks, which count themselves.
#[test]
fn new_refcount_blocks_are_made_when_none_covers_the_new_clusters() {
    let raw = raw_image();
    let dir = TempDir::new("anew-refblock");
    let image = make_qcow2(
        &dir,
        &raw,
        "compat=1.1,cluster_size=512,refcount_bits=64",
        true,
    );
    let c = open(FileReader::open(&image)).unwrap();
    // 60 KiB across the compressible MiB: 120 clusters stored anew.
    let patches = vec![(MIB as u64 + 512 * 9 + 7, vec![0x42u8; 60 * KIB])];
    let plan = output_plan(&c, &patches);
    assert!(relocated(&plan).len() >= 120);
    assert!(plan.writes.iter().any(|w| matches!(
        w.label,
        FileWriteLabel::Qcow2Metadata {
            part: kaifuku_container::Qcow2Part::NewRefcountBlock { .. }
        }
    )));
    judge(&dir, &image, &plan, &patched(&raw, &patches));
}

/// Clusters shared with an internal snapshot are copied, as QEMU does: the active disk reads the
/// patch, the snapshot keeps its bytes, and `qemu-img check` finds the references right. An L2
/// table shared with a snapshot (taken with no write since) is refused with advice.
#[test]
fn clusters_shared_with_a_snapshot_are_copied() {
    let raw = raw_image();
    let dir = TempDir::new("snapshot");
    let image = make_qcow2(&dir, &raw, "compat=1.1", false);
    qemu_img(&["snapshot", "-c", "before-fix", s(&image)]);
    let c = open(FileReader::open(&image)).unwrap();
    let e = c.plan_writes(&[(1000, &[1u8; 4])]).unwrap_err();
    assert!(
        matches!(
            e,
            ContainerError::PatchInQcow2Cluster {
                kind: Qcow2ClusterKind::SharedTable,
                cluster: 0,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.is_unsupported());
    assert!(e.to_string().contains("snapshot -d"), "{e}");
    // The guest writes one cluster: its L2 table is now the active disk's own, the other
    // clusters in it are still shared.
    run_ok(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x5a 64k 64k", s(&image)],
    );
    let c = open(FileReader::open(&image)).unwrap();
    assert_eq!(c.info().qcow2.unwrap().snapshots, 1);
    let patches = vec![(1000, vec![1u8; 4]), (70_000, vec![2u8; 4])];
    let plan = output_plan(&c, &patches);
    // Cluster 0 is shared and copied; cluster 1 (rewritten by the guest) is written in place.
    assert_eq!(relocated(&plan), vec![0]);
    let mut now = raw.clone();
    now[64 * KIB..128 * KIB].fill(0x5a);
    let out = judge(&dir, &image, &plan, &patched(&now, &patches));
    // The snapshot still holds the old bytes.
    let snap = dir.path("snap.raw");
    qemu_img(&[
        "convert",
        "-f",
        "qcow2",
        "-O",
        "raw",
        "-l",
        "before-fix",
        s(&out),
        s(&snap),
    ]);
    assert!(fs::read(&snap).unwrap() == raw);
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn refuses_features_with_advice() {
    let raw = raw_image();
    let dir = TempDir::new("features");
    let v3 = fs::read(make_qcow2(&dir, &raw, "compat=1.1", false)).unwrap();
    let open_bytes = |bytes: &[u8]| open(bytes.to_vec()).map(|_| ()).unwrap_err();
    let feature = |e: ContainerError| match e {
        ContainerError::Qcow2Unsupported(f) => f,
        other => panic!("{other}"),
    };
    let mut dirty = v3.clone();
    dirty[79] |= 1;
    let e = open_bytes(&dirty);
    assert!(e.to_string().contains("qemu-img check -r all"), "{e}");
    assert_eq!(feature(e), Qcow2Feature::Dirty);
    let mut corrupt = v3.clone();
    corrupt[79] |= 2;
    assert_eq!(feature(open_bytes(&corrupt)), Qcow2Feature::MarkedCorrupt);
    let mut external = v3.clone();
    external[79] |= 4;
    assert_eq!(
        feature(open_bytes(&external)),
        Qcow2Feature::ExternalDataFile
    );
    let mut zstd = v3.clone();
    zstd[79] |= 8;
    assert_eq!(feature(open_bytes(&zstd)), Qcow2Feature::CompressionType);
    let mut unknown = v3.clone();
    unknown[79] |= 0x40;
    assert_eq!(feature(open_bytes(&unknown)), Qcow2Feature::UnknownFeatures);
    let mut encrypted = v3.clone();
    put_u32(&mut encrypted, 32, 1);
    assert_eq!(feature(open_bytes(&encrypted)), Qcow2Feature::Encryption);
    let mut v1 = v3.clone();
    put_u32(&mut v1, 4, 1);
    assert_eq!(feature(open_bytes(&v1)), Qcow2Feature::Version);

    // A backing file, as qemu-img writes it.
    let base = make_qcow2(&dir, &raw, "compat=1.1", false);
    let child = dir.path("child.qcow2");
    qemu_img(&[
        "create",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "-b",
        s(&base),
        s(&child),
    ]);
    let e = open(FileReader::open(&child)).map(|_| ()).unwrap_err();
    assert!(e.is_unsupported());
    assert!(e.to_string().contains("backing file"), "{e}");
    assert_eq!(feature(e), Qcow2Feature::BackingFile);

    // Persistent bitmaps: readable, but not written in place.
    let image = make_qcow2(&dir, &raw, "compat=1.1", false);
    qemu_img(&["bitmap", "--add", s(&image), "tracking"]);
    let c = open(FileReader::open(&image)).unwrap();
    assert_reads_as(&c, &raw);
    let e = c.plan_writes(&[(1000, &[1u8; 4])]).unwrap_err();
    assert_eq!(feature(e), Qcow2Feature::Bitmaps);
}

/// Damaged variants of a qemu-img image: each is a clear error at open or at read, never a panic
/// and never a misread.
#[test]
fn damaged_images_are_errors() {
    let raw = raw_image();
    let dir = TempDir::new("damaged");
    let good = fs::read(make_qcow2(&dir, &raw, "compat=1.1", false)).unwrap();
    let l1_offset = get_u64(&good, 40) as usize;
    let l2_offset = (get_u64(&good, l1_offset) & 0x00ff_ffff_ffff_fe00) as usize;
    let len = good.len() as u64;

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut with = |name: &'static str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        cases.push((name, v));
    };
    with("cluster_bits 8", &|v| put_u32(v, 20, 8));
    with("cluster_bits 22", &|v| put_u32(v, 20, 22));
    with("cluster_bits 63", &|v| put_u32(v, 20, 63));
    with("refcount_order 7", &|v| put_u32(v, 96, 7));
    with("header_length 7", &|v| put_u32(v, 100, 7));
    with("header_length huge", &|v| put_u32(v, 100, 1 << 30));
    with("size huge", &|v| put_u64(v, 24, u64::MAX));
    with("l1_size huge", &|v| put_u32(v, 36, u32::MAX));
    with("l1_size 0", &|v| put_u32(v, 36, 0));
    with("l1 past EOF", &|v| put_u64(v, 40, len + 65536));
    with("l1 misaligned", &|v| put_u64(v, 40, l1_offset as u64 + 8));
    with("refcount table past EOF", &|v| put_u64(v, 48, 1 << 50));
    with("refcount table clusters huge", &|v| {
        put_u32(v, 56, u32::MAX)
    });
    with("snapshots past EOF", &|v| {
        put_u32(v, 60, 1000);
        put_u64(v, 64, 1 << 40)
    });
    with("extension past cluster", &|v| {
        let at = get_u32(v, 100) as usize;
        put_u32(v, at, 0x1234_5678);
        put_u32(v, at + 4, 1 << 20)
    });
    with("L1 entry past EOF", &|v| {
        put_u64(v, l1_offset, (1 << 63) | (1 << 40))
    });
    with("L1 entry misaligned", &|v| {
        put_u64(v, l1_offset, (1 << 63) | (l2_offset as u64 + 512))
    });
    with("L1 entry reserved bits", &|v| {
        put_u64(v, l1_offset, (1 << 63) | l2_offset as u64 | 1)
    });
    with("L2 entry past EOF", &|v| {
        put_u64(v, l2_offset, (1 << 63) | (1 << 40))
    });
    with("L2 entry misaligned", &|v| {
        let e = get_u64(v, l2_offset);
        put_u64(v, l2_offset, e + 4096)
    });
    with("L2 entry compressed past EOF", &|v| {
        put_u64(v, l2_offset, (1 << 62) | (1 << 40))
    });
    with("L2 entry compressed garbage", &|v| {
        put_u64(v, l2_offset, (1 << 62) | 512)
    });
    with("L2 entry reserved bits", &|v| {
        let e = get_u64(v, l2_offset);
        put_u64(v, l2_offset, e | 2)
    });
    with("truncated in L2", &|v| v.truncate(l2_offset + 100));
    with("truncated header", &|v| v.truncate(50));
    for (name, bytes) in cases {
        let len = bytes.len();
        match open(bytes) {
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.is_empty(), "{name}");
                assert!(!e.is_unsupported(), "{name}: {msg}");
            }
            Ok(c) => {
                let mut buf = vec![0u8; RAW_SIZE.min(c.virtual_size() as usize)];
                let e = c.read_at(0, &mut buf).expect_err(name);
                assert_eq!(
                    e.kind(),
                    io::ErrorKind::InvalidData,
                    "{name}: {e} ({len} bytes)"
                );
                assert!(c.plan_writes(&[(0, &[1u8; 4])]).is_err(), "{name}");
            }
        }
    }
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// A data cluster whose L2 entry points at the image's own metadata (with refcount 1, as the header
/// cluster has) is refused for writing: the write would destroy the image.
#[test]
fn writes_never_reach_metadata() {
    let raw = raw_image();
    let dir = TempDir::new("aliased");
    let mut v = fs::read(make_qcow2(&dir, &raw, "compat=1.1", false)).unwrap();
    let l1_offset = get_u64(&v, 40) as usize;
    let l2_offset = get_u64(&v, l1_offset) & 0x00ff_ffff_ffff_fe00;
    let rt = get_u64(&v, 48);
    // Offset 0 means "unallocated" whatever the flags say: the cluster is stored anew, and
    // nothing is written on the header.
    put_u64(&mut v, l2_offset as usize, 1 << 63);
    let c = open(v.clone()).unwrap();
    let plan = output_plan(&c, &[(10, vec![1u8; 4])]);
    assert_eq!(relocated(&plan), vec![0]);
    assert!(plan.writes.iter().all(|w| w.file_offset >= 64 * KIB as u64));
    for target in [l1_offset as u64, l2_offset, rt] {
        put_u64(&mut v, l2_offset as usize, (1 << 63) | target);
        let c = open(v.clone()).unwrap();
        let e = c.plan_writes(&[(10, &[1u8; 4])]).unwrap_err();
        assert!(
            matches!(
                e,
                ContainerError::Qcow2Overlap { .. } | ContainerError::Qcow2Refcount { .. }
            ),
            "target {target}: {e}"
        );
    }
}

/// Extended L2 entries with only some subclusters allocated (qemu-io writes 4 KiB into a fresh
/// image with 2 KiB subclusters): the others read as zeros; a patch in the allocated ones is
/// written in place, one in the others stores the whole cluster anew, and qemu reads both.
#[test]
fn partially_allocated_subclusters() {
    let dir = TempDir::new("subclusters");
    let image = dir.path("ext.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "extended_l2=on",
        s(&image),
        "1M",
    ]);
    run_ok(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x11 4k 4k", s(&image)],
    );
    let mut want = vec![0u8; MIB];
    want[4 * KIB..8 * KIB].fill(0x11);
    assert!(qemu_raw(&dir, &image) == want);
    let c = open(FileReader::open(&image)).unwrap();
    assert!(c.info().qcow2.unwrap().extended_l2);
    assert_reads_as(&c, &want);
    assert_eq!(
        c.map(0).unwrap(),
        Extent::Zero {
            len: 4 * KIB as u64
        }
    );
    assert!(
        matches!(c.map(5000).unwrap(), Extent::InFile { len, .. } if len == 8 * KIB as u64 - 5000)
    );
    assert!(
        matches!(c.map(8 * KIB as u64).unwrap(), Extent::Zero { len } if len == 56 * KIB as u64)
    );
    for patches in [
        vec![(100, vec![1u8; 4])],
        vec![(8 * KIB as u64 - 2, vec![1u8; 4])],
    ] {
        let plan = output_plan(&c, &patches);
        assert_eq!(relocated(&plan), vec![0]);
        judge(&dir, &image, &plan, &patched(&want, &patches));
    }
    let writes = c.plan_writes(&[(5000, &[0x22u8; 100])]).unwrap();
    let mut file = fs::read(&image).unwrap();
    apply(&mut file, &writes);
    let patched = dir.path("patched.qcow2");
    fs::write(&patched, &file).unwrap();
    qemu_img(&["check", "-f", "qcow2", s(&patched)]);
    want[5000..5100].fill(0x22);
    assert!(qemu_raw(&dir, &patched) == want);
}

/// An image file with the backing file a front end found for it.
struct WithBacking {
    file: FileReader,
    backing: kaifuku_io::Backing,
}

impl ReadAt for WithBacking {
    fn size(&self) -> u64 {
        self.file.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_at(offset, buf)
    }
    fn backing(&self) -> Option<kaifuku_io::Backing> {
        Some(self.backing.clone())
    }
}

/// A qcow2 image with extended L2 entries on top of a raw backing file (`qemu-img create -b`),
/// into which qemu-io wrote part of a cluster (its other subclusters still come from the backing
/// file) and a zero cluster (zeros, whatever the backing file holds): kaifuku reads the chain as
/// `qemu-img convert` does, refuses the image without its backing file, and a fix stores the
/// touched clusters in the image, filled from the backing file — `qemu-img check` clean, qemu
/// reads the patched chain, the backing file unchanged.
#[test]
fn an_image_on_a_backing_file_reads_and_is_fixed_through_it() {
    let dir = TempDir::new("backing");
    let raw = raw_image();
    let base = dir.path("base.raw");
    fs::write(&base, &raw).unwrap();
    let child = dir.path("child.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "extended_l2=on",
        "-F",
        "raw",
        "-b",
        "base.raw",
        s(&child),
    ]);
    run_ok(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x11 68k 4k", s(&child)],
    );
    run_ok(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -z 0 64k", s(&child)],
    );
    let want = qemu_raw(&dir, &child);
    assert!(want[..64 * KIB].iter().all(|b| *b == 0));
    assert!(want[68 * KIB..72 * KIB].iter().all(|b| *b == 0x11));
    assert_eq!(want[72 * KIB..], raw[72 * KIB..]);

    let e = open(FileReader::open(&child)).map(|_| ()).unwrap_err();
    assert!(matches!(
        e,
        ContainerError::Qcow2Unsupported(Qcow2Feature::BackingFile)
    ));
    let with_backing = || WithBacking {
        file: FileReader::open(&child),
        backing: std::rc::Rc::new(FileReader::open(&base)),
    };
    let c = open(with_backing()).unwrap();
    assert_eq!(
        c.info().qcow2.unwrap().backing_file.as_deref(),
        Some("base.raw")
    );
    assert_eq!(c.backing_format(), Some(Format::Raw));
    assert_reads_as(&c, &want);
    assert!(matches!(
        c.map(80 * KIB as u64).unwrap(),
        Extent::Backing { .. }
    ));

    let patches = vec![
        // The cluster qemu-io wrote part of: stored anew, its other subclusters from the base.
        (66 * KIB as u64, vec![0x22u8; 100]),
        // A cluster the image does not hold at all.
        (3 * MIB as u64 + 1000, vec![0x33u8; 5000]),
        // The zero cluster.
        (10, vec![0x44u8; 10]),
    ];
    let plan = output_plan(&c, &patches);
    assert_eq!(relocated(&plan), vec![0, 1, 48]);
    let base_bytes = fs::read(&base).unwrap();
    let fixed = patched(&want, &patches);
    let out = judge_chain(&dir, &child, &plan, &fixed);
    assert!(
        fs::read(&base).unwrap() == base_bytes,
        "the backing file is unchanged"
    );
    let c2 = open(WithBacking {
        file: FileReader::open(&out),
        backing: std::rc::Rc::new(FileReader::open(&base)),
    })
    .unwrap();
    assert_reads_as(&c2, &fixed);
}

/// [`judge`] for an image on a backing file beside it: qemu-img reads the chain.
fn judge_chain(dir: &TempDir, image: &Path, plan: &OutputPlan, want: &[u8]) -> PathBuf {
    let mut file = fs::read(image).unwrap();
    if let Some(size) = plan.file_size {
        file.resize(size as usize, 0);
    }
    apply(&mut file, &plan.writes);
    for f in &plan.fills {
        file[f.file_offset as usize..(f.file_offset + f.len) as usize].fill(f.byte);
    }
    let patched = dir.path("patched-child.qcow2");
    fs::write(&patched, &file).unwrap();
    let check = qemu_img(&["check", "-f", "qcow2", "--output=json", s(&patched)]);
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert!(report.get("leaks").is_none(), "{report}");
    assert!(report.get("corruptions").is_none(), "{report}");
    assert!(qemu_raw(dir, &patched) == want, "qemu reads other bytes");
    patched
}
