//! EBS snapshots fixed into new snapshots through the EBS direct APIs, on moto (an AWS emulator,
//! started here in server mode). The disk is made by sfdisk, mkntfs and ntfs-3g; it is stored as
//! a snapshot, and snapshots are read back, with boto3 (AWS's own SDK, `tests/s3.py`), never
//! kaifuku's code.
//!
//! Judged: the new snapshot, read as the EBS direct APIs define a child (its parent's blocks with
//! its own over them — moto does not implement `ParentSnapshotId`, so `tests/s3.py` lays the
//! child's blocks over the parent's itself), is byte for byte what `kaifuku fix` writes for the
//! local disk, and ntfs-3g sees the channel file gone and the other file whole; the new snapshot
//! holds exactly the blocks in which the local fix differs from the original; the original is
//! unchanged; moto's request recording shows that kaifuku read a few hundred KiB of blocks, put
//! only the changed ones, and started and completed one snapshot. Refusals, the batch and the
//! secret key never printed too.
//!
//! Needs .venv-tools (setup.sh: moto[server] and boto3), mkntfs, ntfs-3g (FUSE), sfdisk.

mod common;

use common::moto::{s3_py, Moto};
use common::{assert_check_clean, diff_files, extract, implant, ntfs3g, run_ok, sh, Scratch};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const CS_DIR: &str = "Windows/System32/drivers/CrowdStrike";
const MATCH: &str = "C-00000291-00000000-00000032.sys";
const OTHER: &str = "C-00000290-00000000-00000001.sys";
const VOLUME_AT: u64 = 1 << 20;

/// What the EBS tests ask of moto.
impl Moto {
    /// A completed snapshot of `disk`; its id.
    fn upload(&self, disk: &Path) -> String {
        s3_py(&["ebs-upload", &self.port, disk.to_str().unwrap()])
            .trim()
            .to_string()
    }

    /// The disk `snap` holds (over `parent`, as a child is defined), written to `to`.
    fn download(&self, snap: &str, parent: Option<&str>, to: &Path) {
        let mut args = vec!["ebs-download", &self.port, snap, to.to_str().unwrap()];
        args.extend(parent);
        s3_py(&args);
    }

    /// The indices of the blocks `snap` itself holds.
    fn blocks(&self, snap: &str) -> BTreeSet<u64> {
        serde_json::from_str(&s3_py(&["ebs-blocks", &self.port, snap])).unwrap()
    }

    /// What moto recorded since the last call.
    fn traffic(&self) -> Value {
        serde_json::from_str(&s3_py(&["ebs-traffic", &self.port])).unwrap()
    }

    /// The ids of the snapshots EC2 lists.
    fn snapshots(&self) -> BTreeSet<String> {
        serde_json::from_str(&s3_py(&["ec2-snapshots", &self.port])).unwrap()
    }
}

/// Lets kaifuku read the new snapshot as the EBS direct APIs define a child, on moto, which keeps
/// only a child's own blocks (see `ebs::Inheritance`).
const OWN_BLOCKS_ONLY: (&str, &str) = ("KAIFUKU_TEST_EBS_CHILD_OWN_BLOCKS_ONLY", "1");

/// No write of any kind in `t` (what `Moto::traffic` gives).
fn assert_nothing_written(t: &Value) {
    for k in ["start", "put_block", "complete", "ec2"] {
        assert_eq!(t[k], 0, "{k}: {t}");
    }
}

/// A 1 GiB disk (the smallest EBS volume) as a Windows root volume's snapshot holds it: an MBR,
/// a 15 MiB NTFS partition at 1 MiB made by mkntfs, the channel file 291 and another channel
/// file written by ntfs-3g, zeros after.
fn windows_disk(s: &Scratch, name: &str) -> PathBuf {
    let vol = s.path(&format!("{name}.vol"));
    std::fs::File::create(&vol)
        .unwrap()
        .set_len(15 << 20)
        .unwrap();
    run_ok(
        "mkntfs",
        [
            "-Q",
            "-F",
            "-q",
            "-p",
            "2048",
            "-H",
            "255",
            "-S",
            "63",
            "-L",
            "Windows",
            vol.to_str().unwrap(),
        ],
    );
    let m = ntfs3g(&vol, &s.path(&format!("{name}.mnt")), true);
    std::fs::create_dir_all(m.p(CS_DIR)).unwrap();
    let mut bad = vec![0xAA, 0xAA, 0xAA, 0xAA, 0x01, 0x00, 0x23, 0x01];
    bad.extend((0..3000u32).map(|i| (i * 7 % 251) as u8));
    std::fs::write(m.p(&format!("{CS_DIR}/{MATCH}")), &bad).unwrap();
    let other: Vec<u8> = (0..3000u32).map(|i| (i * 13 % 253) as u8 + 1).collect();
    std::fs::write(m.p(&format!("{CS_DIR}/{OTHER}")), &other).unwrap();
    m.unmount();
    let disk = s.path(&format!("{name}.img"));
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let r = sh(&format!(
        "echo 'start=2048, size=30720, type=7' | sfdisk -q '{}'",
        disk.display()
    ));
    assert_eq!(r.code, 0, "sfdisk: {}", r.both());
    implant(&vol, &disk, VOLUME_AT);
    disk
}

/// The files ntfs-3g lists in the channel-file folder of the disk `img`, with their sizes.
fn channel_files(s: &Scratch, img: &Path, tag: &str) -> Vec<(String, u64)> {
    let vol = s.path(&format!("{tag}.vol"));
    extract(img, VOLUME_AT, 15 << 20, &vol);
    let m = ntfs3g(&vol, &s.path(&format!("{tag}.mnt")), false);
    let mut files: Vec<(String, u64)> = std::fs::read_dir(m.p(CS_DIR))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    m.unmount();
    files
}

/// The local fix of `disk`.
fn local_fix(s: &Scratch, disk: &Path) -> PathBuf {
    let out = s.path("local-fixed.img");
    let r = common::kaifuku([
        "fix".as_ref(),
        disk.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    out
}

/// The block indices (of `block` bytes) in which `a` and `b` differ.
fn differing_blocks(a: &Path, b: &Path, block: u64) -> BTreeSet<u64> {
    diff_files(a, b)
        .into_iter()
        .flat_map(|(s, e)| s / block..=(e - 1) / block)
        .collect()
}

#[test]
fn a_snapshot_is_fixed_into_a_new_snapshot_holding_only_the_changed_blocks() {
    let s = Scratch::new("ebs-fix");
    let moto = Moto::start(&s);
    let disk = windows_disk(&s, "web01");
    let snap = moto.upload(&disk);
    moto.traffic();

    let r = moto.kaifuku(&["inspect", &format!("ebs://{snap}")]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.text().contains("1 file(s) match"), "{}", r.text());
    assert!(r.text().contains("Remote: "), "{}", r.text());
    assert_nothing_written(&moto.traffic());

    // moto keeps only a child's own blocks: read back as AWS defines a child, the new snapshot
    // would lack its parent's. kaifuku's verification sees that, and the new snapshot is deleted.
    let before = moto.snapshots();
    moto.traffic();
    let r = moto.kaifuku(&["fix", &format!("ebs://{snap}"), "-o", "ebs://new"]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(
        r.stderr
            .contains("the service did not make it a child of its parent")
            && r.stderr.contains("was deleted"),
        "{}",
        r.stderr
    );
    let t = moto.traffic();
    assert_eq!(
        (t["start"].as_u64(), t["ec2"].as_u64()),
        (Some(1), Some(1)),
        "{t}"
    );
    assert_eq!(moto.snapshots(), before, "the new snapshot is gone");
    moto.traffic();

    let r = moto.kaifuku_with(
        &[OWN_BLOCKS_ONLY],
        &["fix", "--json", &format!("ebs://{snap}"), "-o", "ebs://new"],
    );
    assert_eq!(r.code, 0, "{}", r.both());
    let doc: Value = serde_json::from_slice(&r.stdout).unwrap();
    let new = doc["output"]
        .as_str()
        .and_then(|o| o.strip_prefix("ebs://"))
        .unwrap_or_else(|| panic!("no new snapshot in {doc}"))
        .to_string();
    assert_ne!(new, snap);
    let t = moto.traffic();

    // The new snapshot, read as a child is defined, is the local fix.
    let got = s.path("got.img");
    moto.download(&new, Some(&snap), &got);
    let local = local_fix(&s, &disk);
    assert!(
        diff_files(&got, &local).is_empty(),
        "the new snapshot differs from the local fix at {:?}",
        diff_files(&got, &local)
    );
    assert_check_clean(&got, "the new snapshot");
    // ntfs-3g: the channel file is gone, the other one whole.
    assert_eq!(
        channel_files(&s, &disk, "before"),
        vec![(OTHER.to_string(), 3000), (MATCH.to_string(), 3008)]
    );
    assert_eq!(
        channel_files(&s, &got, "after"),
        vec![(OTHER.to_string(), 3000)]
    );

    // Only the changed blocks are in the new snapshot, and only they were put.
    let block = 512; // moto's EBS block size
    let changed = differing_blocks(&disk, &local, block);
    assert!(!changed.is_empty());
    assert_eq!(moto.blocks(&new), changed, "the new snapshot's own blocks");
    assert_eq!(t["put_block"], changed.len() as u64, "{t}");
    assert_eq!(t["put_bytes"], changed.len() as u64 * block, "{t}");
    assert_eq!(
        (t["start"].as_u64(), t["complete"].as_u64()),
        (Some(1), Some(1)),
        "{t}"
    );
    // A child of the original, of its size.
    let body = &t["start_bodies"][0];
    assert_eq!(
        (
            body["ParentSnapshotId"].as_str(),
            body["VolumeSize"].as_u64()
        ),
        (Some(snap.as_str()), Some(1)),
        "{t}"
    );
    // A few hundred KiB of blocks read (planning and verification), of a 1 GiB disk.
    let read = t["get_block"].as_u64().unwrap() * block;
    assert!(read > 0 && read < 4 << 20, "{read} bytes read: {t}");
    assert_eq!(t["ec2"], 0, "nothing deleted: {t}");

    // The original is as it was.
    let back = s.path("back.img");
    moto.download(&snap, None, &back);
    assert!(diff_files(&back, &disk).is_empty(), "the original changed");
}

#[test]
fn what_a_snapshot_cannot_take_is_refused_with_the_reason() {
    let s = Scratch::new("ebs-refused");
    let moto = Moto::start(&s);
    let disk = windows_disk(&s, "db01");
    let snap = moto.upload(&disk);
    let source = format!("ebs://{snap}");
    moto.traffic();
    let local = s.path("local.img");
    let undo = s.path("u.undo");
    for (args, says) in [
        (
            vec!["fix", &source, "-o", local.to_str().unwrap()],
            "give -o ebs://new",
        ),
        (
            vec![
                "fix",
                "--in-place",
                &source,
                "--undo",
                undo.to_str().unwrap(),
            ],
            "cannot be changed",
        ),
        (
            vec![
                "fix",
                &source,
                "-o",
                "ebs://new",
                "--output-format",
                "vhd-fixed",
            ],
            "do not apply",
        ),
        (vec!["inspect", "ebs://snap-nothex!"], "not an EBS snapshot"),
        (
            vec!["inspect", "ebs://vol-0123456789abcdef0"],
            "not an EBS snapshot",
        ),
        (
            vec!["inspect", "ebs://snap-0123456789abcdef0"],
            "listing the blocks of ebs://snap-0123456789abcdef0",
        ),
    ] {
        let r = moto.kaifuku(&args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.both());
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    assert!(!local.exists() && !undo.exists());
    assert_nothing_written(&moto.traffic());
    // A write that breaks off half-way: the unfinished snapshot is deleted, the original kept.
    let before = moto.snapshots();
    moto.traffic();
    let r = moto.kaifuku_with(
        &[("KAIFUKU_TEST_REMOTE_PUTS", "2")],
        &["fix", &source, "-o", "ebs://new"],
    );
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(
        r.stderr.contains("the connection dropped (test hook)")
            && r.stderr.contains(&format!("{source} is unchanged"))
            && r.stderr.contains("was deleted"),
        "{}",
        r.stderr
    );
    let t = moto.traffic();
    assert_eq!(
        (
            t["start"].as_u64(),
            t["put_block"].as_u64(),
            t["complete"].as_u64(),
            t["ec2"].as_u64()
        ),
        (Some(1), Some(2), Some(0), Some(1)),
        "{t}"
    );
    assert_eq!(moto.snapshots(), before, "the unfinished snapshot is gone");
    let back = s.path("back.img");
    moto.download(&snap, None, &back);
    assert!(diff_files(&back, &disk).is_empty(), "the original changed");
    // A dry run writes nothing.
    moto.traffic();
    let r = moto.kaifuku(&["fix", "--dry-run", &source]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert_nothing_written(&moto.traffic());
    // Without credentials: said, nothing read.
    let r = Command::new(env!("CARGO_BIN_EXE_kaifuku"))
        .args(["inspect", &source])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env_remove("AWS_PROFILE")
        .env("HOME", s.path("nohome"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no AWS credentials"));
}

#[test]
fn the_batch_fixes_snapshot_ids_into_new_snapshots() {
    let s = Scratch::new("ebs-batch");
    let moto = Moto::start(&s);
    let disk = windows_disk(&s, "app");
    let a = moto.upload(&disk);
    let b = moto.upload(&disk);
    let r = moto.kaifuku_with(
        &[OWN_BLOCKS_ONLY],
        &[
            "fix",
            "--json",
            "--out-dir",
            "ebs://new",
            &format!("ebs://{a}"),
            &format!("ebs://{b}"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.both());
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", r.text());
    let local = local_fix(&s, &disk);
    let mut news = BTreeSet::new();
    for (line, parent) in lines.iter().zip([&a, &b]) {
        assert_eq!(line["outcome"], "fixed", "{line}");
        assert_eq!(line["image"], format!("ebs://{parent}"), "{line}");
        let new = line["output"]
            .as_str()
            .unwrap()
            .strip_prefix("ebs://")
            .unwrap();
        assert!(
            news.insert(new.to_string()),
            "two runs, one snapshot: {line}"
        );
        let got = s.path(&format!("{new}.img"));
        moto.download(new, Some(parent), &got);
        assert!(
            diff_files(&got, &local).is_empty(),
            "{new} is the local fix"
        );
    }
    // The table names the new snapshots.
    let r = moto.kaifuku_with(
        &[OWN_BLOCKS_ONLY],
        &["fix", "--out-dir", "ebs://new", &format!("ebs://{a}")],
    );
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.text().contains(&format!(
            "ebs://{a} fixed into the new snapshot ebs://snap-"
        )),
        "{}",
        r.text()
    );
    // Snapshots and other images do not share a run; only ebs://new names new snapshots.
    for (args, says) in [
        (
            vec![
                "fix",
                "--out-dir",
                "ebs://new",
                &format!("ebs://{a}"),
                disk.to_str().unwrap(),
            ],
            "takes EBS snapshots only",
        ),
        (
            vec![
                "fix",
                "--out-dir",
                s.path("").to_str().unwrap(),
                &format!("ebs://{a}"),
            ],
            "give --out-dir ebs://new",
        ),
        (
            vec!["fix", "--out-dir", "ebs://elsewhere", &format!("ebs://{a}")],
            "--out-dir for EBS snapshots is ebs://new",
        ),
    ] {
        let r = moto.kaifuku(&args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.both());
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("nothing was done"), "{}", r.stderr);
    }
}
