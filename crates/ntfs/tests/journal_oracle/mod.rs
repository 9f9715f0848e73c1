//! Shared by the journal tests: reading a bare `$LogFile` copy, walking its current session,
//! and `ntfsrecover -n -f -v` (ntfs-3g) as the independent parser to compare with.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use kaifuku_ntfs::logfile::analysis::{AttributeTable, Target, TargetGeometry};
use kaifuku_ntfs::logfile::reader::{read_journal, Journal, RecordWalker};
use kaifuku_ntfs::logfile::record::{LogRecord, RecordType};
use kaifuku_ntfs::logfile::restart::{parse_restart_page, LfsVersion, LsnGeometry};
use kaifuku_ntfs::NtfsError;

/// The samples are prefixes of larger logs: the size their restart area declares, and a reader
/// that returns never-written pages (0xFF) past the end of the file.
pub fn declared_size(log: &[u8]) -> u64 {
    parse_restart_page(0, &log[..4096], u64::MAX)
        .expect("page 0 of every sample is valid")
        .area
        .log_file_size
}

pub fn padded<'a>(log: &'a [u8]) -> impl FnMut(u64, usize) -> Result<Vec<u8>, NtfsError> + 'a {
    move |offset, len| {
        let mut out = vec![0xFF; len];
        let start = offset as usize;
        if start < log.len() {
            let n = (log.len() - start).min(len);
            out[..n].copy_from_slice(&log[start..start + n]);
        }
        Ok(out)
    }
}

pub fn journal(log: &[u8]) -> Journal {
    read_journal(declared_size(log), &mut padded(log)).expect("the sample reads")
}

/// Every record of the current session: from the first record page's first record in the lap
/// of the restart area's current LSN, to the end of the log.
pub fn session(log: &[u8]) -> Vec<LogRecord> {
    let j = journal(log);
    let restart = j.restart.expect("a restart page");
    let g = LsnGeometry::of(&restart).unwrap();
    let mut read = padded(log);
    let mut walker = RecordWalker::new(&mut read, &restart, restart.area.in_use_list).unwrap();
    // A Windows 10 log downgraded to 1.1 keeps its records from page 34 on (§2).
    let sequence = g.sequence(restart.area.current_lsn);
    let walk = [g.first_page, 34 * g.page_size]
        .into_iter()
        .find_map(|page| walker.walk(g.lsn(page + g.data_offset, sequence)).ok())
        .expect("the session reads");
    assert_eq!(
        walk.records.last().map(LogRecord::lsn),
        j.live.as_ref().map(|l| l.last_lsn()),
        "the session ends where the live log ends"
    );
    walk.records
}

/// What ntfsrecover -v prints for one record.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Oracle {
    fields: BTreeMap<String, u64>,
    lcns: Vec<u64>,
    /// The MFT record ntfsrecover says a record targets ("(inode N)" after `target_vcn`).
    inode: Option<u64>,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Runs `ntfsrecover -n -f -v` on the log bytes, keeping the first listing of each LSN; with the
/// cluster size it assumed for the bare copy.
pub fn ntfsrecover(log: &Path, v2: bool, test: &str) -> Option<(u32, BTreeMap<u64, Oracle>)> {
    let mut cmd = Command::new("ntfsrecover");
    cmd.arg("-n");
    if v2 {
        cmd.arg("-k");
    }
    let out = match cmd.args(["-f", "-v"]).arg(log).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED {test}: ntfsrecover (ntfs-3g) cannot be run: {e}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut records = BTreeMap::new();
    let mut current: Option<(u64, Oracle)> = None;
    let cluster_size = text
        .lines()
        .find_map(|l| l.strip_prefix("* Assuming cluster size "))
        .map(|n| n.trim().parse().unwrap())
        .expect("ntfsrecover says the cluster size it assumes for a bare log");
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            if let Some((lsn, o)) = current.take() {
                records.entry(lsn).or_insert(o);
            }
            continue;
        };
        if key == "this_lsn" {
            if let Some((lsn, o)) = current.take() {
                records.entry(lsn).or_insert(o);
            }
            current = Some((hex(value), Oracle::default()));
            continue;
        }
        let Some((_, o)) = current.as_mut() else {
            continue;
        };
        if key.starts_with('(') && line.contains(") lcn") {
            let after = line.split(") lcn").nth(1).unwrap();
            o.lcns.push(hex(after.split_whitespace().next().unwrap()));
        } else if key == "target_vcn" {
            o.fields.insert(key.to_string(), hex(value));
            if let Some(inode) = line.split("(inode ").nth(1) {
                o.inode = Some(inode.trim_end_matches(')').parse().unwrap());
            }
        } else if [
            "client_previous_lsn",
            "client_undo_next_lsn",
            "client_data_length",
            "record_type",
            "transaction_id",
            "redo_operation",
            "undo_operation",
            "redo_offset",
            "redo_length",
            "undo_offset",
            "undo_length",
            "target_attribute",
            "lcns_to_follow",
            "record_offset",
            "attribute_offset",
            "cluster_index",
            "attribute_flags",
            "target_vcn",
        ]
        .contains(&key)
        {
            o.fields.insert(key.to_string(), hex(value));
        }
    }
    if let Some((lsn, o)) = current.take() {
        records.entry(lsn).or_insert(o);
    }
    Some((cluster_size, records))
}

/// Our record in ntfsrecover's terms.
fn as_oracle(r: &LogRecord) -> Oracle {
    let h = &r.header;
    let mut fields = BTreeMap::from([
        ("client_previous_lsn".to_string(), h.client_previous_lsn),
        ("client_undo_next_lsn".to_string(), h.client_undo_next_lsn),
        (
            "client_data_length".to_string(),
            h.client_data_length as u64,
        ),
        (
            "record_type".to_string(),
            match h.record_type {
                RecordType::Client => 1,
                RecordType::ClientRestart => 2,
            },
        ),
        ("transaction_id".to_string(), h.transaction_id as u64),
    ]);
    let mut lcns = Vec::new();
    if let Some(op) = &r.operation {
        for (k, v) in [
            ("redo_operation", op.redo.code() as u64),
            ("undo_operation", op.undo.code() as u64),
            ("redo_offset", op.redo_offset as u64),
            ("redo_length", op.redo_length as u64),
            ("undo_offset", op.undo_offset as u64),
            ("undo_length", op.undo_length as u64),
            ("target_attribute", op.target_attribute as u64),
            ("lcns_to_follow", op.lcns_to_follow as u64),
            ("record_offset", op.record_offset as u64),
            ("attribute_offset", op.attribute_offset as u64),
            ("cluster_index", op.cluster_block_offset as u64),
            ("attribute_flags", op.target_block_size as u64),
            ("target_vcn", op.target_vcn),
        ] {
            fields.insert(k.to_string(), v);
        }
        lcns = op.lcns.clone();
    }
    Oracle {
        fields,
        lcns,
        inode: None,
    }
}

/// ntfsrecover prints a client restart record's NTFS restart area under the operation header's
/// names (§11.7): only the LFS header fields compare.
fn lfs_only(o: &Oracle) -> Oracle {
    let keep = [
        "client_previous_lsn",
        "client_undo_next_lsn",
        "client_data_length",
        "record_type",
        "transaction_id",
    ];
    Oracle {
        fields: o
            .fields
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        lcns: Vec::new(),
        inode: None,
    }
}

/// Checks that the current session of `log` (whose bytes are also in the file `path`) reads as
/// `ntfsrecover` lists it; returns the number of records compared.
pub fn agrees_with_ntfsrecover(name: &str, log: &[u8], path: &Path, test: &str) -> usize {
    let ours = session(log);
    let v2 = journal(log).restart.unwrap().version == LfsVersion::V2_0;
    let Some((oracle_cluster_size, oracle)) = ntfsrecover(path, v2, test) else {
        return 0;
    };
    let first = ours.first().unwrap().lsn();
    let last = ours.last().unwrap().lsn();
    let theirs: BTreeMap<u64, &Oracle> = oracle
        .iter()
        .filter(|(lsn, _)| (first..=last).contains(*lsn))
        .map(|(l, o)| (*l, o))
        .collect();
    let our_lsns: Vec<u64> = ours.iter().map(LogRecord::lsn).collect();
    let their_lsns: Vec<u64> = theirs.keys().copied().collect();
    assert_eq!(our_lsns, their_lsns, "{name}: the session's LSNs");
    let j = journal(log);
    let live = j.live.as_ref().unwrap();
    let mut table = AttributeTable::empty(live.checkpoint.table_version);
    // A bare copy carries no boot sector: ntfsrecover guesses the cluster size (wrongly for the
    // Windows 10 samples, whose checkpoint says 4096), so its record numbers follow that guess.
    let geometry = TargetGeometry {
        cluster_size: oracle_cluster_size,
        file_record_size: 1024,
    };
    let mut inodes_compared = 0;
    for r in &ours {
        let mut mine = as_oracle(r);
        let theirs = theirs[&r.lsn()];
        table.apply(r).unwrap();
        if let (Target::FileRecord { record, .. }, Some(_)) =
            (table.target(r, geometry), theirs.inode)
        {
            mine.inode = Some(record);
            inodes_compared += 1;
        } else {
            mine.inode = theirs.inode;
        }
        match r.header.record_type {
            RecordType::Client => assert_eq!(&mine, theirs, "{name} {:#x}", r.lsn()),
            RecordType::ClientRestart => {
                assert_eq!(lfs_only(&mine), lfs_only(theirs), "{name} {:#x}", r.lsn())
            }
        }
    }
    assert!(inodes_compared > 0, "{name}: no MFT record target compared");
    eprintln!(
        "{name}: {} records agree with ntfsrecover, {inodes_compared} MFT record targets",
        ours.len()
    );
    ours.len()
}
