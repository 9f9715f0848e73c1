//! `inspect` on a volume whose journal is not clean: the analysis in the JSON and the human
//! report, judged by `ntfsrecover -n -f -v` (ntfs-3g) run on the same volume.
//!
//! The volume is made by mkntfs (large enough for the sample log's size, docs/logfile-format.md
//! §11.3), the CrowdStrike file is written by an ntfs-3g mount, and then the Windows 7 journal of
//! the dfir_ntfs samples (GPL data beside the repository, never copied into it) is written into its
//! `$LogFile` with the restart area turned back to an earlier checkpoint of the same log, the clean
//! flag cleared: as if Windows had stopped after writing the records that follow that checkpoint.

mod common;

use common::{
    extract, gpl_testdata, kaifuku, ntfs3g, read_at, refixup, repo_testdata, run, run_ok, u16le,
    u32le as mbr_u32, u32le, unfixup, write_at, Scratch, Vol,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// What ntfsrecover -v says of one record (its first listing).
#[derive(Debug, Default)]
struct Listed {
    record_type: u64,
    redo: String,
    undo: String,
    inode: Option<u64>,
    /// A checkpoint's fields at 0x08 (the checkpoint start; ntfsrecover calls it
    /// "transaction_lsn"), 0x10 ("attributes_lsn") and 0x68 (the oldest LSN it needs,
    /// "unknown-8"): §8.1.
    checkpoint_start: u64,
    attributes_lsn: u64,
    oldest_lsn: u64,
}

struct Recover {
    /// The newer restart page's current LSN (§4.4).
    current_lsn: u64,
    /// Its client's restart LSN: the checkpoint recovery starts from.
    client_restart_lsn: u64,
    records: BTreeMap<u64, Listed>,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ntfsrecover(vol: &Path, v2: bool) -> Recover {
    let mut cmd = std::process::Command::new("ntfsrecover");
    cmd.arg("-n");
    if v2 {
        // Version 2.0 logs are listed only with -k (--kill-fast-restart); -n keeps it read-only.
        cmd.arg("-k");
    }
    let out = cmd
        .args([OsStr::new("-f"), OsStr::new("-v")])
        .arg(vol)
        .output()
        .expect("ntfsrecover (ntfs-3g) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // (current LSN, client restart LSN) of each restart page listed.
    let mut restart_pages: Vec<(u64, u64)> = Vec::new();
    let mut records: BTreeMap<u64, Listed> = BTreeMap::new();
    let mut at: Option<u64> = None;
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 2 {
            continue;
        }
        if w[0] == "current_lsn" && at.is_none() {
            restart_pages.push((hex(w[1]), 0));
        }
        if w[0] == "client_restart_lsn" && at.is_none() {
            if let Some(p) = restart_pages.last_mut() {
                p.1 = hex(w[1]);
            }
        }
        if w[0] == "this_lsn" {
            let lsn = hex(w[1]);
            at = (!records.contains_key(&lsn)).then(|| {
                records.insert(lsn, Listed::default());
                lsn
            });
            continue;
        }
        let Some(r) = at.and_then(|l| records.get_mut(&l)) else {
            continue;
        };
        match w[0] {
            "record_type" => r.record_type = hex(w[1]),
            "redo_operation" if w.len() > 2 => r.redo = w[2].to_string(),
            "undo_operation" if w.len() > 2 => r.undo = w[2].to_string(),
            "transaction_lsn" => r.checkpoint_start = hex(w[1]),
            "attributes_lsn" => r.attributes_lsn = hex(w[1]),
            "unknown-8" => r.oldest_lsn = hex(w[1]),
            "target_vcn" => {
                if let Some(i) = line.split("(inode ").nth(1) {
                    r.inode = Some(i.trim_end_matches(')').parse().unwrap());
                }
            }
            _ => {}
        }
    }
    let (current_lsn, client_restart_lsn) = restart_pages
        .into_iter()
        .max()
        .expect("ntfsrecover prints the restart areas");
    Recover {
        current_lsn,
        client_restart_lsn,
        records,
    }
}

/// Writes `log` over the `$LogFile` data of `vol`.
fn put_log(vol: &Path, log: &[u8]) {
    let v = Vol::open(vol);
    let lf = v.record(2).attr(0x80, "").unwrap();
    let mut at = 0usize;
    for (off, len) in v.map(&lf.runs, 0, log.len() as u64) {
        write_at(vol, off, &log[at..at + len as usize]);
        at += len as usize;
    }
}

/// `log` with both restart pages pointing the client at checkpoint `restart_lsn` (needing
/// `oldest_lsn`) and the clean flag cleared.
fn turned_back(log: &[u8], restart_lsn: u64, oldest_lsn: u64) -> Vec<u8> {
    let mut log = log.to_vec();
    let page = u32le(&log, 0x10) as usize;
    for p in log[..2 * page].chunks_mut(page) {
        unfixup(p).unwrap();
        let ra = u16le(p, 0x18) as usize;
        let flags = u16le(p, ra + 0x0E) & !2;
        p[ra + 0x0E..ra + 0x10].copy_from_slice(&flags.to_le_bytes());
        let client = ra + u16le(p, ra + 0x16) as usize;
        p[client..client + 8].copy_from_slice(&oldest_lsn.to_le_bytes());
        p[client + 8..client + 16].copy_from_slice(&restart_lsn.to_le_bytes());
        refixup(p);
    }
    log
}

const CS_DIR: &str = "Windows/System32/drivers/CrowdStrike";
const CS_FILE: &str = "C-00000291-00000000-00000032.sys";

/// A sparse mkntfs volume of `gib` GiB (mkntfs makes `$LogFile` 1/200 of it: 5 GiB holds the
/// Windows 7 log's 0x1678000 bytes, 2 GiB the Windows 10 log's 0x8A0000) with the CrowdStrike
/// file written by ntfs-3g.
fn volume(s: &Scratch, gib: u64) -> PathBuf {
    let vol = s.path("crashed.vol");
    let f = std::fs::File::create(&vol).unwrap();
    f.set_len(gib << 30).unwrap();
    drop(f);
    run_ok(
        "mkntfs",
        [
            OsStr::new("-Q"),
            OsStr::new("-F"),
            OsStr::new("-q"),
            OsStr::new("-c"),
            OsStr::new("4096"),
            vol.as_os_str(),
        ],
    );
    let mnt = s.path("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let m = ntfs3g(&vol, &mnt, true);
    std::fs::create_dir_all(m.p(CS_DIR)).unwrap();
    let mut bytes = vec![0u8; 40960];
    bytes[..8].copy_from_slice(&[0xAA, 0xAA, 0xAA, 0xAA, 0x01, 0x00, 0x23, 0x01]);
    std::fs::write(m.p(&format!("{CS_DIR}/{CS_FILE}")), bytes).unwrap();
    m.unmount();
    vol
}

#[test]
fn an_unclean_windows_7_journal_is_analysed_as_ntfsrecover_reads_it() {
    let test = "an_unclean_windows_7_journal_is_analysed_as_ntfsrecover_reads_it";
    let Some(dfir) = gpl_testdata("dfir_ntfs", test) else {
        return;
    };
    let s = Scratch::new("inspect-journal");
    let vol = volume(&s, 5);
    let log = std::fs::read(dfir.join("LogFile_7.bin")).unwrap();
    put_log(&vol, &log);
    // The checkpoints of the log, as ntfsrecover lists them: the one in the middle that dumped
    // its open attribute table is where the restart area is turned back to.
    let listed = ntfsrecover(&vol, false);
    let checkpoints: Vec<(u64, &Listed)> = listed
        .records
        .iter()
        .filter(|(lsn, r)| {
            r.record_type == 2 && r.attributes_lsn != 0 && **lsn <= listed.current_lsn
        })
        .map(|(l, r)| (*l, r))
        .collect();
    assert!(checkpoints.len() >= 3, "{checkpoints:?}");
    let (checkpoint, cp) = checkpoints[checkpoints.len() / 2];
    let (start, oldest) = (cp.checkpoint_start, cp.oldest_lsn);
    put_log(&vol, &turned_back(&log, checkpoint, oldest));
    let recover = ntfsrecover(&vol, false);
    assert_eq!(recover.client_restart_lsn, checkpoint);
    let current = recover.current_lsn;
    // ntfsrecover's figures: the records after the checkpoint's start up to the current LSN;
    // the MFT records ("inode N") of those from the oldest LSN the checkpoint needs.
    let after = recover.records.range(start + 1..=current).count() as u64;
    let pending: Vec<&Listed> = recover
        .records
        .range(oldest..=current)
        .map(|(_, r)| r)
        .collect();
    let inodes: BTreeSet<u64> = pending.iter().filter_map(|r| r.inode).collect();
    assert!(!inodes.is_empty());

    let r = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), vol.as_os_str()]);
    let report: Value = serde_json::from_slice(&r.stdout)
        .unwrap_or_else(|e| panic!("inspect --json: {e}: {}", r.both()));
    let v = &report["volumes"][0];
    assert_eq!(v["ntfs"]["log"]["state"], "unclean", "{v}");
    let j = &v["journal"];
    assert_eq!(j["code"], "analysed", "{j}");
    let a = &j["journal"];
    assert_eq!(a["version"], "1.1");
    assert_eq!(a["checkpoint_lsn"], checkpoint);
    assert_eq!(a["current_lsn"], current);
    assert_eq!(a["last_lsn"], current);
    assert_eq!(a["redo_lsn"], oldest);
    assert_eq!(
        a["records_after_checkpoint"], after,
        "ntfsrecover lists {after}"
    );
    let ours: BTreeSet<u64> = a["file_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"].as_u64().unwrap())
        .collect();
    assert_eq!(ours, inodes, "MFT records the pending records change");
    // Paths come from the volume as it is: the root and the system files are there.
    let path_of = |n: u64| {
        a["file_records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["record"] == n)
            .map(|r| r["path"].clone())
    };
    if inodes.contains(&5) {
        assert_eq!(path_of(5), Some(Value::from("\\")));
    }
    if inodes.contains(&3) {
        assert_eq!(path_of(3), Some(Value::from("\\$Volume")));
    }
    // The pending span commits transactions and creates records.
    assert!(a["transactions_committed"].as_u64().unwrap() > 0, "{a}");
    let creates = pending
        .iter()
        .filter(|r| {
            r.redo == "InitializeFileRecordSegment" || r.undo == "DeallocateFileRecordSegment"
        })
        .count();
    assert!(creates > 0, "the pending span creates records");
    // Records created or freed: their `$MFT:$BITMAP` bits are among the bit ranges.
    assert!(
        a["bitmap_ranges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["bitmap"]["code"] == "mft_records"),
        "{a}"
    );
    // The analysis costs a few pages of the log; the whole inspect stays within its budget.
    assert!(a["bytes_read"].as_u64().unwrap() < 256 << 10, "{a}");
    assert!(
        report["reads"]["bytes"].as_u64().unwrap() <= 2 << 20,
        "{}",
        report["reads"]
    );

    // The match: its record and `$MFT:$BITMAP` page 0 are what the fix changes; the journal
    // creates records whose bits are on page 0 too, so the overlap says so.
    let matches: Vec<&Value> = v["rule"]["matches"].as_array().unwrap().iter().collect();
    assert_eq!(matches.len(), 1, "{v}");
    let record = matches[0]["mft_record"].as_u64().unwrap();
    assert!(record < 32768);
    let overlap = &a["overlap"];
    assert_eq!(overlap["code"], "overlaps", "{overlap}");
    assert_eq!(
        overlap["mft_bitmap_pages"],
        serde_json::json!([0]),
        "{overlap}"
    );
    assert!(
        !overlap["file_records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| !inodes.contains(&r.as_u64().unwrap())),
        "{overlap}"
    );

    // The human report: the same figures, in the report's words.
    let r = kaifuku([OsStr::new("inspect"), vol.as_os_str()]);
    let text = r.text();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("journal content:"))
        .unwrap_or_else(|| panic!("no journal line: {text}"));
    for want in [
        "LFS 1.1".to_string(),
        format!("checkpoint LSN {checkpoint:#x}"),
        format!("current LSN {current:#x}"),
        format!("{after} log records after the checkpoint"),
        "MFT records".to_string(),
    ] {
        assert!(line.contains(&want), "{want:?} not in {line}");
    }
    assert!(
        text.lines().any(|l| l
            .contains("journal and fix: pending journal changes touch what the fix changes")
            && l.contains("$MFT:$BITMAP pages 0")),
        "{text}"
    );

    // fix (with consent to discard, the policy until replay exists) states the overlap of its
    // own plan.
    let out = s.path("fixed.vol");
    let r = kaifuku([
        OsStr::new("fix"),
        vol.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--discard-journal"),
        OsStr::new("--json"),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    let overlaps = plan["plan"]["journal_overlaps"]
        .as_array()
        .unwrap_or_else(|| panic!("no journal_overlaps: {plan}"));
    assert_eq!(overlaps.len(), 1);
    assert_eq!(overlaps[0]["overlap"]["code"], "overlaps");
    let out = s.path("fixed-text.vol");
    let r = kaifuku([
        OsStr::new("fix"),
        vol.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--discard-journal"),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.text()
            .contains("before the reset: pending journal changes touch what the fix changes:"),
        "{}",
        r.both()
    );
}

#[test]
fn a_windows_10_journal_is_analysed_as_ntfsrecover_reads_it() {
    let test = "a_windows_10_journal_is_analysed_as_ntfsrecover_reads_it";
    let Some(dfir) = gpl_testdata("dfir_ntfs", test) else {
        return;
    };
    let s = Scratch::new("inspect-journal-v2");
    let vol = volume(&s, 2);
    // A version 2.0 log as Windows 10 left it: not clean by its version alone (§4.6).
    put_log(&vol, &std::fs::read(dfir.join("LogFile_10.bin")).unwrap());
    let recover = ntfsrecover(&vol, true);
    let current = recover.current_lsn;
    let checkpoint = recover.client_restart_lsn;
    let cp = &recover.records[&checkpoint];
    assert_eq!(cp.record_type, 2);
    let after = recover
        .records
        .range(cp.checkpoint_start + 1..=current)
        .count() as u64;
    let inodes: BTreeSet<u64> = recover
        .records
        .range(cp.oldest_lsn..=current)
        .filter_map(|(_, r)| r.inode)
        .collect();

    let r = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), vol.as_os_str()]);
    let report: Value = serde_json::from_slice(&r.stdout)
        .unwrap_or_else(|e| panic!("inspect --json: {e}: {}", r.both()));
    let v = &report["volumes"][0];
    assert_eq!(v["ntfs"]["log"]["state"], "v2.0", "{v}");
    let j = &v["journal"];
    assert_eq!(j["code"], "analysed", "{j}");
    let a = &j["journal"];
    assert_eq!(a["version"], "2.0");
    assert_eq!(a["checkpoint_lsn"], checkpoint);
    assert_eq!(a["current_lsn"], current);
    assert_eq!(
        a["records_after_checkpoint"], after,
        "ntfsrecover lists {after}"
    );
    let ours: BTreeSet<u64> = a["file_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"].as_u64().unwrap())
        .collect();
    assert_eq!(ours, inodes, "MFT records the pending records change");
    assert!(
        report["reads"]["bytes"].as_u64().unwrap() <= 2 << 20,
        "{}",
        report["reads"]
    );
    let text = kaifuku([OsStr::new("inspect"), vol.as_os_str()]).text();
    assert!(
        text.contains(&format!(
            "journal content: LFS 2.0, checkpoint LSN {checkpoint:#x}, current LSN {current:#x}; {after} log records after the checkpoint"
        )),
        "{text}"
    );
}

/// Turns the journal already on `vol` back to checkpoint `restart_lsn` (its restart pages only).
fn turn_back_on_volume(vol: &Path, restart_lsn: u64, oldest_lsn: u64) {
    let v = Vol::open(vol);
    let lf = v.record(2).attr(0x80, "").unwrap();
    let mut head = Vec::new();
    for (off, len) in v.map(&lf.runs, 0, 8192) {
        head.extend(read_at(vol, off, len as usize));
    }
    let page = u32le(&head, 0x10) as usize;
    if head.len() < 2 * page {
        for (off, len) in v.map(&lf.runs, 8192, (2 * page - head.len()) as u64) {
            head.extend(read_at(vol, off, len as usize));
        }
    }
    put_log(
        vol,
        &turned_back(&head[..2 * page], restart_lsn, oldest_lsn),
    );
}

#[test]
fn a_windows_made_volume_s_own_journal_turned_back_is_analysed_with_its_paths() {
    let test = "a_windows_made_volume_s_own_journal_turned_back_is_analysed_with_its_paths";
    let src = repo_testdata()
        .join("windows-made")
        .join("ntfs-ptrn.raw.gz");
    if !src.exists() {
        eprintln!("SKIPPED {test}: {} is absent", src.display());
        return;
    }
    let s = Scratch::new("inspect-journal-windows-made");
    let img = s.path("ptrn.raw");
    let o = common::sh(&format!(
        "gunzip -c '{}' > '{}'",
        src.display(),
        img.display()
    ));
    assert_eq!(o.code, 0, "gunzip: {}", o.both());
    let mbr = read_at(&img, 0, 512);
    let (start, len) = (
        mbr_u32(&mbr, 0x1BE + 8) as u64 * 512,
        mbr_u32(&mbr, 0x1BE + 12) as u64 * 512,
    );
    let vol = s.path("ptrn.vol");
    extract(&img, start, len, &vol);
    // Windows dismounted it cleanly: the journal is not read.
    let r = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), vol.as_os_str()]);
    let report: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(report["volumes"][0].get("journal").is_none(), "{report}");

    let listed = ntfsrecover(&vol, false);
    let checkpoints: Vec<(u64, &Listed)> = listed
        .records
        .iter()
        .filter(|(lsn, r)| {
            r.record_type == 2 && r.attributes_lsn != 0 && **lsn <= listed.current_lsn
        })
        .map(|(l, r)| (*l, r))
        .collect();
    assert!(checkpoints.len() >= 3, "{checkpoints:?}");
    let (checkpoint, cp) = checkpoints[checkpoints.len() / 2];
    let (cp_start, oldest) = (cp.checkpoint_start, cp.oldest_lsn);
    turn_back_on_volume(&vol, checkpoint, oldest);
    let recover = ntfsrecover(&vol, false);
    assert_eq!(recover.client_restart_lsn, checkpoint);
    let current = recover.current_lsn;
    let after = recover.records.range(cp_start + 1..=current).count() as u64;
    let inodes: BTreeSet<u64> = recover
        .records
        .range(oldest..=current)
        .filter_map(|(_, r)| r.inode)
        .collect();

    let r = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), vol.as_os_str()]);
    let report: Value = serde_json::from_slice(&r.stdout).unwrap();
    let a = &report["volumes"][0]["journal"]["journal"];
    assert_eq!(a["checkpoint_lsn"], checkpoint, "{a}");
    assert_eq!(a["current_lsn"], current);
    assert_eq!(
        a["records_after_checkpoint"], after,
        "ntfsrecover lists {after}"
    );
    let records = a["file_records"].as_array().unwrap();
    let ours: BTreeSet<u64> = records
        .iter()
        .map(|r| r["record"].as_u64().unwrap())
        .collect();
    assert_eq!(ours, inodes, "MFT records the pending records change");
    assert!(
        report["reads"]["bytes"].as_u64().unwrap() <= 2 << 20,
        "{}",
        report["reads"]
    );
    // Every path resolved is the one sleuthkit's ffind gives for that record.
    let mut resolved = 0;
    for r in records {
        let Some(path) = r["path"].as_str() else {
            continue;
        };
        let n = r["record"].as_u64().unwrap();
        let number = n.to_string();
        let o = run("ffind", [vol.as_os_str(), OsStr::new(&number)]);
        // ffind writes "/" for the root and "//$Volume" for files in it.
        let mut theirs = String::new();
        for c in o.text().lines().next().unwrap_or_default().chars() {
            let c = if c == '/' { '\\' } else { c };
            if !(c == '\\' && theirs.ends_with('\\')) {
                theirs.push(c);
            }
        }
        assert_eq!(path, theirs, "record {n}: ffind says {}", o.both());
        resolved += 1;
    }
    assert!(resolved > 0, "{a}");
}
