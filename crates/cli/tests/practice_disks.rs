//! The practice disks (`web/practice/*.raw.gz`, built by `tests/make-practice-disks.py`):
//!
//! 1. the script rebuilds exactly the committed bytes (needs root and FUSE; skipped by name
//!    otherwise);
//! 2. independent tools judge each disk (decompressed by `gzip -dc`, not by kaifuku): `sgdisk -v`,
//!    `sfdisk -J`, `mmls`, `fsck.vfat -n` on the ESP, `ntfsinfo`, `ntfsls`, a read-only ntfs-3g
//!    mount (every file hashed), `fls`/`istat` on the targets (04:09:13 and 05:27:41 UTC); then
//!    `kaifuku inspect` matches exactly the two channel-291 files, `kaifuku fix` deletes them and
//!    nothing else (gpt, mbr). The unclean disk's machine crashed right after the faulty update
//!    arrived: the file's creation is committed in its journal and not on the volume. There
//!    `ntfsrecover -s` (ntfs-3g) replays a copy, and kaifuku's replay must give the same volume;
//!    the independent tools judge that replayed volume, `kaifuku inspect` finds the faulty file on
//!    it, and `kaifuku fix` (no consent asked) replays, deletes it and leaves the journal clean;
//! 3. `kaifuku demo` writes each disk as raw (the same bytes as `gzip -dc`) and as a fixed VHD
//!    (`qemu-img compare` with the raw), and never replaces a file.

mod common;

use common::{
    assert_check_clean, extract, fls, istat, kaifuku, listing, load_json, ntfs3g, repo_script, run,
    run_ok, sha256, tsk_args, Scratch,
};
use kaifuku_io::{Overlay, ReadAt};
use kaifuku_ntfs::logfile::{read_volume_journal, replay};
use kaifuku_ntfs::Volume;
use serde_json::Value;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

fn practice_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/practice")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn is_root() -> bool {
    run("id", ["-u"]).text().trim() == "0"
}

/// Root and FUSE, or a line saying which test is skipped and why.
fn can_mount(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (ntfs-3g FUSE mounts)");
        return false;
    }
    if !Path::new("/dev/fuse").exists() {
        eprintln!("SKIPPED {test}: /dev/fuse is absent (ntfs-3g needs FUSE)");
        return false;
    }
    true
}

/// `gzip -dc` of a committed disk into the scratch directory.
fn gunzip(s: &Scratch, name: &str) -> PathBuf {
    let out = s.path(&format!("{name}.raw"));
    let src = practice_dir().join(format!("{name}.raw.gz"));
    let o = common::sh(&format!(
        "gzip -dc '{}' > '{}'",
        src.display(),
        out.display()
    ));
    assert_eq!(o.code, 0, "gzip -dc {}: {}", src.display(), o.both());
    out
}

const SECTOR: u64 = 512;
const CS: &str = "Windows/System32/drivers/CrowdStrike";
const FAULTY: &str = "C-00000291-00000000-00000032.sys";
const FIXED: &str = "C-00000291-00000000-00000033.sys";
const CS_HEADER: [u8; 8] = [0xAA, 0xAA, 0xAA, 0xAA, 0x01, 0x00, 0x23, 0x01];

/// What each disk is meant to be: its table, and (number, start sector, sectors) of the ESP and
/// the NTFS volumes, the Windows one last.
struct Layout {
    name: &'static str,
    gpt: bool,
    esp: Option<(u64, u64, u64)>,
    ntfs: &'static [(u64, u64, u64, &'static str)],
    unclean: bool,
}

const LAYOUTS: [Layout; 3] = [
    Layout {
        name: "gpt",
        gpt: true,
        esp: Some((1, 2048, 69632)),
        ntfs: &[(3, 75776, 53248, "Windows")],
        unclean: false,
    },
    Layout {
        name: "mbr",
        gpt: false,
        esp: None,
        ntfs: &[
            (1, 2048, 4096, "System Reserved"),
            (2, 6144, 34816, "Windows"),
        ],
        unclean: false,
    },
    Layout {
        name: "unclean",
        gpt: true,
        esp: Some((1, 2048, 69632)),
        ntfs: &[(3, 75776, 53248, "Windows")],
        unclean: true,
    },
];

/// The names in the CrowdStrike directory: csagent, six ordinary channel files, three decoys, the
/// two channel-291 files.
const CS_NAMES: [&str; 12] = [
    "C-00000285-00000000-00000123.sys",
    "C-00000289-00000000-00000044.sys",
    "C-00000290-00000000-00000007.sys",
    "C-00000290-00000000-00000008.sys",
    FAULTY,
    "C-00000291-00000000-00000035.dat",
    FIXED,
    "C-00000292-00000000-00000001.sys",
    "C-00000303-00000000-00000017.sys",
    "C-00000372-00000001-00000002.sys",
    "C-0000291-00000000-00000032.sys",
    "csagent.sys",
];

#[test]
fn practice_disks_are_reproducible() {
    if !can_mount("practice_disks_are_reproducible") {
        return;
    }
    let s = Scratch::new("practice-rebuild");
    let out = s.path("rebuilt");
    let script = repo_root().join("tests/make-practice-disks.py");
    let o = run("python3", [script.as_os_str(), out.as_os_str()]);
    assert_eq!(o.code, 0, "make-practice-disks.py: {}", o.both());
    let committed = load_json(&practice_dir().join("manifest.json"));
    let rebuilt = load_json(&out.join("manifest.json"));
    for sc in committed["scenarios"].as_array().unwrap() {
        let file = sc["file"].as_str().unwrap();
        let a = std::fs::read(practice_dir().join(file)).unwrap();
        let b = std::fs::read(out.join(file)).unwrap();
        assert!(
            a == b,
            "{file}: the rebuilt disk differs from the committed one. Tools now: {}; when committed: {}",
            rebuilt["tools"],
            committed["tools"]
        );
        assert_eq!(sc["compressed_size"].as_u64().unwrap(), a.len() as u64);
        assert!(
            a.len() < 300 * 1024,
            "{file} is {} bytes compressed: over the 300 KiB budget",
            a.len()
        );
    }
    assert_eq!(committed["scenarios"], rebuilt["scenarios"]);
}

fn partitions_json(img: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&run_ok("sfdisk", [OsStr::new("-J"), img.as_os_str()]))
        .expect("sfdisk -J prints JSON");
    v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .clone()
}

/// The `$STANDARD_INFORMATION` times istat prints for a record, in order: created, file
/// modified, MFT modified, accessed.
fn si_times(text: &str) -> Vec<String> {
    let si = text
        .split("$STANDARD_INFORMATION Attribute Values:")
        .nth(1)
        .and_then(|t| t.split("$FILE_NAME").next())
        .expect("istat prints $STANDARD_INFORMATION");
    si.lines()
        .filter_map(|l| l.split_once(":\t").map(|(_, v)| v.trim().to_string()))
        .collect()
}

/// kaifuku's replay of the crashed volume `crashed` into an overlay, written out to `out`.
fn kaifuku_replay(crashed: &Path, out: &Path) {
    let overlay = RefCell::new(Overlay::new(std::fs::read(crashed).unwrap()));
    {
        let vol = Volume::open(&overlay).expect("the crashed volume opens");
        let journal = read_volume_journal(&vol).expect("its journal reads");
        let mut editor = kaifuku_ntfs::edit::Editor::new(&vol);
        let summary = replay(&mut editor, &journal)
            .unwrap_or_else(|e| panic!("{}: replay refused: {e}", crashed.display()));
        assert_eq!(summary.committed_transactions, 1, "{summary:?}");
        assert_eq!(summary.uncommitted_transactions, 0, "{summary:?}");
    }
    let mut image = vec![0u8; overlay.size() as usize];
    overlay.read_at(0, &mut image).unwrap();
    std::fs::write(out, image).unwrap();
}

/// The unclean disk's crashed Windows volume `crashed`: the faulty file is not on it, only in its
/// journal. Returns `ntfsrecover -s`'s replay of a copy, after checking that kaifuku's replay
/// gives the same volume (every byte outside `$LogFile`, page LSNs and update sequence numbers
/// of FILE and INDX blocks aside: `tests/journal-replay.py --compare`).
fn replayed_by_ntfsrecover(name: &str, crashed: &Path, s: &Scratch) -> PathBuf {
    let ls = run_ok(
        "ntfsls",
        [
            OsStr::new("-f"),
            OsStr::new("-p"),
            OsStr::new(&format!("/{CS}")),
            crashed.as_os_str(),
        ],
    );
    let ls = String::from_utf8_lossy(&ls);
    assert!(
        ls.lines().any(|n| n == "csagent.sys") && !ls.lines().any(|n| n == FAULTY),
        "{name}: without a replay the faulty file should not be on the volume: {ls}"
    );
    let theirs = s.path(&format!("{name}.ntfsrecover.ntfs"));
    std::fs::copy(crashed, &theirs).unwrap();
    let o = run("ntfsrecover", [OsStr::new("-s"), theirs.as_os_str()]);
    assert_eq!(o.code, 0, "{name}: ntfsrecover -s: {}", o.both());
    let ours = s.path(&format!("{name}.kaifuku-replayed.ntfs"));
    kaifuku_replay(crashed, &ours);
    let o = run(
        "python3",
        [
            repo_script("journal-replay.py").as_os_str(),
            OsStr::new("--compare"),
            theirs.as_os_str(),
            ours.as_os_str(),
        ],
    );
    assert_eq!(
        o.code,
        0,
        "{name}: kaifuku's replay differs from ntfsrecover's: {}",
        o.both()
    );
    theirs
}

fn judge_disk(lay: &Layout, s: &Scratch) {
    let name = lay.name;
    let img = gunzip(s, name);
    let manifest = load_json(&practice_dir().join("manifest.json"));
    let entry = manifest["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the manifest"));
    assert_eq!(
        sha256(&img),
        entry["raw_sha256"].as_str().unwrap(),
        "{name}: manifest"
    );

    // The partition table.
    let parts = partitions_json(&img);
    let expected_parts = lay.esp.iter().count() + lay.ntfs.len() + usize::from(lay.gpt); // + MSR
    assert_eq!(parts.len(), expected_parts, "{name}: sfdisk -J: {parts:?}");
    if lay.gpt {
        let v = run_ok("sgdisk", [OsStr::new("-v"), img.as_os_str()]);
        let v = String::from_utf8_lossy(&v);
        assert!(v.contains("No problems found"), "{name}: sgdisk -v: {v}");
    }
    let mmls = String::from_utf8_lossy(&run_ok("mmls", [img.as_os_str()])).into_owned();
    let spans = lay
        .ntfs
        .iter()
        .map(|&(_, st, l, _)| (st, l))
        .chain(lay.esp.map(|(_, st, l)| (st, l)));
    for (start, len) in spans {
        let want = format!("{start:010}   {:010}   {len:010}", start + len - 1);
        assert!(
            mmls.contains(&want),
            "{name}: mmls does not show {want}: {mmls}"
        );
    }
    if !lay.gpt {
        let boot = parts
            .iter()
            .filter(|p| p["bootable"].as_bool() == Some(true))
            .count();
        assert_eq!(boot, 1, "{name}: one active partition: {parts:?}");
    }

    // The ESP.
    if let Some((_, start, len)) = lay.esp {
        let esp = s.path(&format!("{name}.esp"));
        extract(&img, start * SECTOR, len * SECTOR, &esp);
        let o = run("fsck.vfat", [OsStr::new("-n"), esp.as_os_str()]);
        assert_eq!(o.code, 0, "{name}: fsck.vfat -n: {}", o.both());
        let dir = run_ok(
            "mdir",
            [
                OsStr::new("-i"),
                esp.as_os_str(),
                OsStr::new("::/EFI/Microsoft/Boot"),
            ],
        );
        assert!(
            String::from_utf8_lossy(&dir).contains("bootmgfw"),
            "{name}: ESP without EFI/Microsoft/Boot/bootmgfw.efi"
        );
    }

    // The NTFS volumes.
    let mut windows = None;
    for &(n, start, len, label) in lay.ntfs {
        let vol = s.path(&format!("{name}.p{n}.ntfs"));
        extract(&img, start * SECTOR, len * SECTOR, &vol);
        let info = run_ok(
            "ntfsinfo",
            [OsStr::new("-m"), OsStr::new("-f"), vol.as_os_str()],
        );
        let info = String::from_utf8_lossy(&info);
        assert!(
            info.contains(&format!("Volume Name: {label}")),
            "{name}: volume {n}: {info}"
        );
        let o = run("ntfsfix", [OsStr::new("-n"), vol.as_os_str()]);
        assert_eq!(o.code, 0, "{name}: ntfsfix -n on volume {n}: {}", o.both());
        if label == "Windows" {
            windows = Some((n, start, len, vol));
        }
    }
    let (_, start, len, crashed) = windows.expect("a Windows volume");
    // The unclean disk is judged as ntfsrecover replays it: its faulty file is only in the journal.
    let vol = if lay.unclean {
        replayed_by_ntfsrecover(name, &crashed, s)
    } else {
        crashed.clone()
    };
    // The unclean disk's machine crashed right after the faulty update: nothing later exists.
    let later = |p: &str| {
        lay.unclean
            && [
                FIXED,
                "Windows/Temp/C-00000291-00000000-00000032.sys",
                "Windows/System32/drivers/C-00000291-00000000-00000032.sys.bak",
            ]
            .contains(&p)
    };
    let ls = run_ok(
        "ntfsls",
        [
            OsStr::new("-f"),
            OsStr::new("-p"),
            OsStr::new(&format!("/{CS}")),
            vol.as_os_str(),
        ],
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&ls)
        .lines()
        .filter(|n| *n != "." && *n != "..")
        .map(str::to_string)
        .collect();
    names.sort();
    let mut want: Vec<String> = CS_NAMES
        .iter()
        .filter(|n| !later(n))
        .map(|s| s.to_string())
        .collect();
    want.sort();
    assert_eq!(names, want, "{name}: ntfsls of the CrowdStrike directory");

    // Every file through a read-only ntfs-3g mount.
    let mnt = s.path(&format!("{name}.mnt"));
    let m = ntfs3g(&vol, &mnt, false);
    let before = listing(&mnt);
    let faulty = std::fs::read(m.p(&format!("{CS}/{FAULTY}"))).unwrap();
    assert_eq!(faulty.len(), 40795, "{name}: 032 size");
    assert!(
        faulty.iter().all(|b| *b == 0),
        "{name}: 032 is not all zeros"
    );
    if !later(FIXED) {
        let fixed = std::fs::read(m.p(&format!("{CS}/{FIXED}"))).unwrap();
        assert_eq!(fixed.len(), 41028, "{name}: 033 size");
        assert_eq!(fixed[..8], CS_HEADER, "{name}: 033 header");
        assert!(
            fixed.iter().filter(|b| **b == 0).count() < fixed.len() / 16,
            "{name}: 033 should be non-zero content"
        );
    }
    for p in [
        "Windows/System32/config/SYSTEM",
        "Windows/System32/ntoskrnl.exe",
        "Windows/System32/drivers/Ntfs.sys",
        "Windows/System32/drivers/etc/hosts",
        "Windows/Temp/C-00000291-00000000-00000032.sys",
        "Windows/System32/drivers/C-00000291-00000000-00000032.sys.bak",
    ] {
        assert_eq!(
            before.sha.contains_key(p),
            !later(p),
            "{name}: {p} present or absent"
        );
    }
    let sys_count = before
        .sha
        .keys()
        .filter(|p| p.starts_with("Windows/System32/drivers/") && p.matches('/').count() == 3)
        .filter(|p| p.to_lowercase().ends_with(".sys"))
        .count();
    assert!(sys_count >= 10, "{name}: only {sys_count} drivers");
    m.unmount();

    // The targets as sleuthkit sees them.
    let tsk = if lay.unclean {
        tsk_args(&vol, 0, SECTOR)
    } else {
        tsk_args(&img, start, SECTOR)
    };
    let files = fls(&tsk);
    let record_of = |p: &str| {
        let hits: Vec<_> = files.iter().filter(|f| f.3 == p && !f.0).collect();
        assert_eq!(hits.len(), 1, "{name}: fls finds {p} {} times", hits.len());
        hits[0].2
    };
    let mut tsk_utc = vec!["-z".to_string(), "UTC".to_string()];
    tsk_utc.extend(tsk.iter().cloned());
    for (file, when) in [
        (FAULTY, "2024-07-19 04:09:13"),
        (FIXED, "2024-07-19 05:27:41"),
    ]
    .into_iter()
    .filter(|(file, _)| !later(file))
    {
        let rec = record_of(&format!("{CS}/{file}"));
        let st = istat(&tsk_utc, rec);
        assert!(st.allocated, "{name}: {file} not allocated");
        let times = si_times(&st.text);
        assert!(
            times.len() == 4 && times.iter().all(|t| t.starts_with(when)),
            "{name}: {file} times {times:?}, want {when}"
        );
    }

    // kaifuku finds exactly the two channel-291 files in the CrowdStrike directory.
    let o = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), img.as_os_str()]);
    assert_eq!(o.code, 0, "{name}: inspect: {}", o.both());
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut matches: Vec<(String, String, u64)> = Vec::new();
    for v in report["volumes"].as_array().unwrap() {
        for m in v["rule"]["matches"].as_array().into_iter().flatten() {
            matches.push((
                m["path"].as_str().unwrap().to_string(),
                m["verdict"].as_str().unwrap().to_string(),
                v["offset"].as_u64().unwrap(),
            ));
        }
    }
    matches.sort();
    let cs_win = CS.replace('/', "\\");
    let expected_matches: Vec<(String, String, u64)> = [(FAULTY, "faulty"), (FIXED, "fixed")]
        .into_iter()
        .filter(|(file, _)| !later(file))
        .map(|(file, verdict)| {
            (
                format!("\\{cs_win}\\{file}"),
                verdict.to_string(),
                start * SECTOR,
            )
        })
        .collect();
    assert_eq!(matches, expected_matches, "{name}: inspect");

    // The fix.
    let out = s.path(&format!("{name}-fixed.raw"));
    let undo = s.path(&format!("{name}.undo"));
    let fix = |extra: &[&str]| {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("fix"),
            img.as_os_str(),
            OsStr::new("-o"),
            out.as_os_str(),
            OsStr::new("--undo"),
            undo.as_os_str(),
        ];
        args.extend(extra.iter().map(OsStr::new));
        kaifuku(args)
    };
    if lay.unclean {
        let log = run_ok(
            "ntfscat",
            [
                OsStr::new("-f"),
                OsStr::new("-i"),
                OsStr::new("2"),
                crashed.as_os_str(),
            ],
        );
        assert_eq!(&log[..4], b"RSTR", "{name}: $LogFile has no restart page");
    }
    // A journal kaifuku can replay is replayed without consent.
    let o = fix(&[]);
    assert_eq!(o.code, 0, "{name}: fix: {}", o.both());
    assert_eq!(
        o.text().contains("Journal     replayed first"),
        lay.unclean,
        "{name}: the journal is replayed on the unclean disk only: {}",
        o.both()
    );
    assert_check_clean(&out, name);
    let o = kaifuku([OsStr::new("inspect"), out.as_os_str()]);
    assert_eq!(
        o.code,
        1,
        "{name}: the fixed disk has nothing to fix: {}",
        o.both()
    );
    let fixed_vol = s.path(&format!("{name}-fixed.ntfs"));
    extract(&out, start * SECTOR, len * SECTOR, &fixed_vol);
    let o = run("ntfsfix", [OsStr::new("-n"), fixed_vol.as_os_str()]);
    assert_eq!(o.code, 0, "{name}: ntfsfix -n after the fix: {}", o.both());
    // The journal is left clean and the volume not marked dirty: nothing left for chkdsk.
    let info = run_ok(
        "ntfsinfo",
        [OsStr::new("-m"), OsStr::new("-f"), fixed_vol.as_os_str()],
    );
    assert!(
        !String::from_utf8_lossy(&info).contains("DIRTY"),
        "{name}: the fixed volume should not be marked dirty"
    );
    // ntfs-3g, mounting a copy read-write, finds the crashed journal unclean and the fixed one
    // clean.
    let mount_says = |v: &Path| {
        let copy = s.path(&format!("{name}.mounted.ntfs"));
        std::fs::copy(v, &copy).unwrap();
        let mnt = s.path(&format!("{name}.rw.mnt"));
        std::fs::create_dir_all(&mnt).unwrap();
        let o = run("ntfs-3g", [copy.as_os_str(), mnt.as_os_str()]);
        if o.code == 0 {
            run_ok("umount", [mnt.as_os_str()]);
        }
        std::fs::remove_file(&copy).unwrap();
        assert_eq!(o.code, 0, "{name}: ntfs-3g mount: {}", o.both());
        o.both()
    };
    assert_eq!(
        mount_says(&crashed).contains("unclean file system"),
        lay.unclean,
        "{name}: ntfs-3g on the disk as shipped"
    );
    assert!(
        !mount_says(&fixed_vol).contains("unclean file system"),
        "{name}: ntfs-3g finds the fixed volume unclean"
    );
    // Everything but the two targets is still there, byte for byte.
    let m = ntfs3g(&fixed_vol, &s.path(&format!("{name}-fixed.mnt")), false);
    let after = listing(&m.dir);
    m.unmount();
    let mut expected = before.sha.clone();
    expected.remove(&format!("{CS}/{FAULTY}"));
    expected.remove(&format!("{CS}/{FIXED}"));
    assert_eq!(after.sha, expected, "{name}: files after the fix");
    // The other volumes are untouched.
    for &(n, st, l, label) in lay.ntfs {
        if label != "Windows" {
            let a = s.path(&format!("{name}.p{n}.after"));
            extract(&out, st * SECTOR, l * SECTOR, &a);
            assert_eq!(
                sha256(&a),
                sha256(&s.path(&format!("{name}.p{n}.ntfs"))),
                "{name}: volume {n} changed"
            );
        }
    }
}

#[test]
fn practice_disks_judged_by_independent_tools() {
    if !can_mount("practice_disks_judged_by_independent_tools") {
        return;
    }
    for lay in &LAYOUTS {
        let s = Scratch::new(&format!("practice-{}", lay.name));
        judge_disk(lay, &s);
    }
}

#[test]
fn demo_writes_the_practice_disks() {
    let s = Scratch::new("practice-demo");
    for lay in &LAYOUTS {
        let name = lay.name;
        let reference = gunzip(&s, name);
        let raw = s.path(&format!("demo-{name}.raw"));
        let o = kaifuku([
            OsStr::new("demo"),
            raw.as_os_str(),
            OsStr::new("--scenario"),
            OsStr::new(name),
        ]);
        assert_eq!(o.code, 0, "{name}: demo: {}", o.both());
        assert!(
            o.text().contains(&format!("Practice  {name}: ")),
            "{}",
            o.text()
        );
        assert_eq!(sha256(&raw), sha256(&reference), "{name}: demo raw");
        let vhd = s.path(&format!("demo-{name}.vhd"));
        let o = kaifuku([
            OsStr::new("demo"),
            vhd.as_os_str(),
            OsStr::new("--scenario"),
            OsStr::new(name),
        ]);
        assert_eq!(o.code, 0, "{name}: demo vhd: {}", o.both());
        let size = std::fs::metadata(&reference).unwrap().len();
        assert_eq!(std::fs::metadata(&vhd).unwrap().len(), size + 512);
        let info: Value = serde_json::from_slice(&run_ok(
            "qemu-img",
            [
                OsStr::new("info"),
                OsStr::new("--output=json"),
                OsStr::new("-f"),
                OsStr::new("vpc"),
                vhd.as_os_str(),
            ],
        ))
        .unwrap();
        assert_eq!(info["virtual-size"].as_u64(), Some(size), "{name}: {info}");
        // qemu-img has no checker for vpc (exit 63); it must still open the file.
        let o = run(
            "qemu-img",
            [
                OsStr::new("check"),
                OsStr::new("-f"),
                OsStr::new("vpc"),
                vhd.as_os_str(),
            ],
        );
        assert!(
            o.code == 0 || o.code == 63,
            "{name}: qemu-img check: {}",
            o.both()
        );
        let o = run(
            "qemu-img",
            [
                OsStr::new("compare"),
                OsStr::new("-f"),
                OsStr::new("raw"),
                OsStr::new("-F"),
                OsStr::new("vpc"),
                reference.as_os_str(),
                vhd.as_os_str(),
            ],
        );
        assert_eq!(o.code, 0, "{name}: qemu-img compare: {}", o.both());
        let o = kaifuku([OsStr::new("inspect"), vhd.as_os_str()]);
        assert_eq!(o.code, 0, "{name}: inspect the VHD: {}", o.both());
        assert!(o.text().contains("VHD fixed"), "{}", o.text());
    }

    // Never replaces a file, through a link either; refuses unknown names; leaves nothing behind.
    let existing = s.path("demo-gpt.raw");
    let before = sha256(&existing);
    let o = kaifuku([
        OsStr::new("demo"),
        existing.as_os_str(),
        OsStr::new("--scenario"),
        OsStr::new("mbr"),
    ]);
    assert_eq!(o.code, 3, "{}", o.both());
    assert!(o.stderr.contains("already exists"), "{}", o.stderr);
    assert_eq!(sha256(&existing), before);
    let link = s.path("link.raw");
    std::os::unix::fs::symlink(&existing, &link).unwrap();
    let o = kaifuku([OsStr::new("demo"), link.as_os_str()]);
    assert_eq!(o.code, 3, "{}", o.both());
    assert_eq!(sha256(&existing), before);
    let dangling = s.path("dangling.raw");
    std::os::unix::fs::symlink(s.path("nowhere.raw"), &dangling).unwrap();
    let o = kaifuku([OsStr::new("demo"), dangling.as_os_str()]);
    assert_eq!(o.code, 3, "{}", o.both());
    assert!(!s.path("nowhere.raw").exists());
    let o = kaifuku([OsStr::new("demo"), s.path("disk.qcow2").as_os_str()]);
    assert_eq!(o.code, 2, "{}", o.both());
    let o = kaifuku([
        OsStr::new("demo"),
        s.path("x.raw").as_os_str(),
        OsStr::new("--scenario"),
        OsStr::new("nosuch"),
    ]);
    assert_eq!(o.code, 2, "{}", o.both());
    let o = kaifuku([OsStr::new("demo"), s.path("no/such/dir/x.raw").as_os_str()]);
    assert_eq!(o.code, 3, "{}", o.both());
    let left: Vec<String> = std::fs::read_dir(&s.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kaifuku") || n.starts_with("x.") || n.starts_with("disk."))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
