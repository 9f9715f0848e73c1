//! The journal reader against logs Windows wrote (the shared dfir_ntfs test data, read from
//! beside the repository, never copied into it) and against an independent parser: `ntfsrecover`
//! (ntfs-3g) run on the same bytes. Both are skipped by name when absent.

mod journal_oracle;

use std::collections::BTreeMap;
use std::path::PathBuf;

use journal_oracle::{agrees_with_ntfsrecover, declared_size, journal, padded, session};

use kaifuku_ntfs::logfile::analysis::{analyse, Bitmap, Target, TransactionOutcome};
use kaifuku_ntfs::logfile::reader::read_journal;
use kaifuku_ntfs::logfile::record::{LogRecord, RecordType};
use kaifuku_ntfs::logfile::restart::LfsVersion;
use kaifuku_ntfs::logfile::{analysis::AttributeTable, Operation};
use kaifuku_ntfs::{Location, NtfsError};

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/dfir_ntfs")
}

/// The journal `name` of the shared GPL test data, or `None` (the test is then reported as
/// skipped by name) when that data is not beside the repository.
fn data(name: &str, test: &str) -> Option<Vec<u8>> {
    let p = shared_dir().join(name);
    if !p.exists() {
        eprintln!(
            "SKIPPED {test}: the GPL test data dfir_ntfs/{name} is absent (it is kept beside the repository in ../shared/testdata, not in it)"
        );
        return None;
    }
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

#[test]
fn windows_7_checkpoint_and_end() {
    let Some(log) = data("LogFile_7.bin", "windows_7_checkpoint_and_end") else {
        return;
    };
    let j = journal(&log);
    let restart = j.restart.as_ref().unwrap();
    assert_eq!(restart.version, LfsVersion::V1_1);
    assert!(j.damaged_restart_pages.is_empty());
    assert_eq!(restart.area.clients[0].name, "NTFS");
    let live = j.live.as_ref().unwrap();
    // §4.2–4.3, §8.1: the restart area, the client and its last checkpoint.
    assert_eq!(restart.area.current_lsn, 0x80541D);
    assert_eq!(live.client.oldest_lsn, 0x805412);
    assert_eq!(live.client.restart_lsn, 0x80541D);
    assert_eq!(live.checkpoint.checkpoint_start_lsn, 0x805412);
    assert_eq!(live.checkpoint.bytes_per_cluster, 4096);
    assert_eq!(live.checkpoint.oldest_lsn, 0x805412);
    // The last two records exist only in the tail copy (page 2).
    let lsns: Vec<u64> = live.records.iter().map(LogRecord::lsn).collect();
    assert_eq!(lsns, [0x805412, 0x80541D]);
    assert_eq!(
        live.records[0].operation.as_ref().unwrap().redo,
        Operation::ForgetTransaction
    );
    assert_eq!(
        live.records[1].header.record_type,
        RecordType::ClientRestart
    );
    // The upstream facts: no record carries... the client restart LSN is a record of its own.
    let a = analyse(&j, None).unwrap().unwrap();
    assert!(a.clean_flag);
    assert_eq!(a.records.len(), 0);
    assert_eq!(a.checkpoint_records, 1);
    assert!(!a.has_pending_changes());
    // Reading cost: restart pages, the two tail copies, the one record page of the span.
    assert!(j.bytes_read <= 6 * 4096, "{}", j.bytes_read);
}

#[test]
fn windows_10_checkpoint_tables() {
    let Some(log) = data("LogFile_10.bin", "windows_10_checkpoint_tables") else {
        return;
    };
    let j = journal(&log);
    let restart = j.restart.as_ref().unwrap();
    assert_eq!(restart.version, LfsVersion::V2_0);
    // Page 0 (0x806158) beats page 1 (0x8060A5).
    assert_eq!(restart.offset, 0);
    assert_eq!(restart.area.current_lsn, 0x806158);
    let live = j.live.as_ref().unwrap();
    assert_eq!(live.checkpoint.checkpoint_start_lsn, 0x8060A5);
    assert_eq!(live.checkpoint.open_attribute_table_lsn, 0x8060B9);
    assert_eq!(live.checkpoint.attribute_names_lsn, 0x80613F);
    // §8.3's table: nine attributes with their names.
    let oat: Vec<(u32, u64, u32, &str)> = live
        .tables
        .open_attributes
        .iter()
        .map(|a| (a.slot, a.record, a.attribute_type, a.name.as_str()))
        .collect();
    // The last dump holds two more directories than the earlier one §8.3 lists.
    assert_eq!(oat.len(), 11);
    assert_eq!(
        oat[..9],
        [
            (0x18, 0, 0x80, ""),
            (0x40, 5, 0xA0, "$I30"),
            (0x68, 9, 0x80, "$SDS"),
            (0x90, 9, 0xA0, "$SII"),
            (0xB8, 9, 0xA0, "$SDH"),
            (0xE0, 0, 0xB0, ""),
            (0x108, 36, 0xA0, "$I30"),
            (0x130, 6, 0x80, ""),
            (0x158, 25, 0xA0, "$O"),
        ]
    );
    assert!(live.tables.dirty_pages.is_empty());
    assert!(live.tables.transactions.is_empty());
    // §4.5: not clean, yet nothing but table dumps after the checkpoint: nothing pending.
    let a = analyse(&j, None).unwrap().unwrap();
    assert!(!a.clean_flag);
    assert_eq!(a.last_lsn, 0x806158);
    let ops: Vec<Operation> = a.records.iter().map(|r| r.redo).collect();
    assert_eq!(
        ops,
        [
            Operation::OpenAttributeTableDump,
            Operation::AttributeNamesDump
        ]
    );
    assert!(a.records.iter().all(|r| r.target == Target::None));
    assert!(!a.has_pending_changes());
    assert_eq!(a.committed(), 0);
    assert_eq!(a.uncommitted(), 0);
}

#[test]
fn windows_10_large_uses_the_newer_second_restart_page_and_a_buffer_page() {
    let Some(log) = data(
        "LogFile_10_large.bin",
        "windows_10_large_uses_the_newer_second_restart_page_and_a_buffer_page",
    ) else {
        return;
    };
    let j = journal(&log);
    let restart = j.restart.as_ref().unwrap();
    assert_eq!(restart.offset, 4096);
    assert_eq!(restart.area.current_lsn, 0x406E75);
    // The end of the log lies in page 55, past the end of the file: only buffer page 2 has it.
    assert_eq!(j.live.as_ref().unwrap().last_lsn(), 0x406E75);
}

#[test]
fn one_damaged_restart_page_is_tolerated_both_are_refused() {
    let Some(mut log) = data(
        "LogFile_10.bin",
        "one_damaged_restart_page_is_tolerated_both_are_refused",
    ) else {
        return;
    };
    let size = declared_size(&log);
    // Tear page 0 (its second sector no longer ends with the update sequence number): page 1,
    // older, is used.
    log[1022] ^= 0xFF;
    let j = read_journal(size, &mut padded(&log)).expect("page 1 is enough");
    assert_eq!(j.restart.as_ref().unwrap().offset, 4096);
    assert_eq!(j.damaged_restart_pages.len(), 1);
    assert_eq!(
        j.damaged_restart_pages[0].at,
        Some(Location::LogOffset { offset: 0 })
    );
    assert_eq!(j.live.as_ref().unwrap().client.restart_lsn, 0x8060A5);
    log[4096 + 1022] ^= 0xFF;
    match read_journal(size, &mut padded(&log)) {
        Err(NtfsError::Corrupt(d)) => {
            assert_eq!(d.at, Some(Location::LogOffset { offset: 0 }));
            assert!(d.detail.contains("both restart pages"), "{}", d.detail);
        }
        other => panic!("both pages damaged must be refused: {other:?}"),
    };
}

#[test]
fn a_torn_record_before_the_current_lsn_is_refused() {
    let Some(mut log) = data(
        "LogFile_7.bin",
        "a_torn_record_before_the_current_lsn_is_refused",
    ) else {
        return;
    };
    // The last record (0x80541D at 0x2A0E8) lives only in tail copy page 2; tear that copy.
    log[2 * 4096 + 510] ^= 0xFF;
    match read_journal(declared_size(&log), &mut padded(&log)) {
        Err(NtfsError::Corrupt(d)) => {
            assert!(matches!(d.at, Some(Location::LogRecord { .. })), "{d:?}")
        }
        other => panic!("a missing checkpoint must be refused: {other:?}"),
    };
}

#[test]
fn windows_7_targets_resolve_as_documented() {
    let Some(log) = data("LogFile_7.bin", "windows_7_targets_resolve_as_documented") else {
        return;
    };
    let records = session(&log);
    let j = journal(&log);
    let geometry = kaifuku_ntfs::logfile::analysis::TargetGeometry {
        cluster_size: 4096,
        file_record_size: 1024,
    };
    let mut table = AttributeTable::empty(j.live.unwrap().checkpoint.table_version);
    let mut targets = BTreeMap::new();
    for r in &records {
        table.apply(r).unwrap();
        targets.insert(r.lsn(), table.target(r, geometry));
    }
    // §7.2's examples.
    assert!(matches!(
        targets[&0x80082D],
        Target::FileRecord {
            record: 9,
            attribute_offset: 0x180,
            ..
        }
    ));
    match &targets[&0x80094B] {
        Target::IndexBlock(b) => {
            assert_eq!((b.record, b.name.as_str(), b.vcn), (5, "$I30", 0));
        }
        other => panic!("{other:?}"),
    }
    match &targets[&0x800A19] {
        Target::BitmapBits(b) => {
            assert_eq!(b.bitmap, Bitmap::Clusters);
            assert_eq!((b.first, b.count), (7 * 32768 + 0x7FFE, 1));
        }
        other => panic!("{other:?}"),
    }
    // Every page-changing record of the session resolves.
    for r in &records {
        assert!(
            !matches!(
                targets[&r.lsn()],
                Target::UnknownAttribute { .. } | Target::UnexpectedAttribute { .. }
            ),
            "{:#x}: {:?}",
            r.lsn(),
            targets[&r.lsn()]
        );
    }
}

#[test]
fn windows_7_records_agree_with_ntfsrecover() {
    let Some(log) = data("LogFile_7.bin", "windows_7_records_agree_with_ntfsrecover") else {
        return;
    };
    agrees_with_ntfsrecover(
        "LogFile_7.bin",
        &log,
        &shared_dir().join("LogFile_7.bin"),
        "windows_7_records_agree_with_ntfsrecover",
    );
}

#[test]
fn windows_10_records_agree_with_ntfsrecover() {
    let Some(log) = data(
        "LogFile_10.bin",
        "windows_10_records_agree_with_ntfsrecover",
    ) else {
        return;
    };
    agrees_with_ntfsrecover(
        "LogFile_10.bin",
        &log,
        &shared_dir().join("LogFile_10.bin"),
        "windows_10_records_agree_with_ntfsrecover",
    );
}

#[test]
fn windows_10_large_records_agree_with_ntfsrecover() {
    let Some(log) = data(
        "LogFile_10_large.bin",
        "windows_10_large_records_agree_with_ntfsrecover",
    ) else {
        return;
    };
    agrees_with_ntfsrecover(
        "LogFile_10_large.bin",
        &log,
        &shared_dir().join("LogFile_10_large.bin"),
        "windows_10_large_records_agree_with_ntfsrecover",
    );
}

#[test]
fn windows_10_downgraded_records_agree_with_ntfsrecover() {
    let Some(log) = data(
        "LogFile_10_downgraded.bin",
        "windows_10_downgraded_records_agree_with_ntfsrecover",
    ) else {
        return;
    };
    agrees_with_ntfsrecover(
        "LogFile_10_downgraded.bin",
        &log,
        &shared_dir().join("LogFile_10_downgraded.bin"),
        "windows_10_downgraded_records_agree_with_ntfsrecover",
    );
}

#[test]
fn every_session_record_of_every_sample_parses_and_analyses() {
    for name in [
        "LogFile_7.bin",
        "LogFile_10.bin",
        "LogFile_10_large.bin",
        "LogFile_10_downgraded.bin",
    ] {
        let Some(log) = data(
            name,
            "every_session_record_of_every_sample_parses_and_analyses",
        ) else {
            return;
        };
        let records = session(&log);
        assert!(records.len() > 200, "{name}: {}", records.len());
        let j = journal(&log);
        let a = analyse(&j, None).unwrap().unwrap();
        // Windows writes one transaction at a time, always in slot 0x18 (§10.7), and every one
        // in these logs ended.
        assert!(a.transactions.iter().all(|t| t.id == 0x18));
        assert!(a
            .transactions
            .iter()
            .filter(|t| t.page_changes > 0)
            .all(|t| t.outcome == TransactionOutcome::Committed));
    }
}

#[test]
fn mutated_windows_logs_never_panic() {
    // Deterministic byte flips over the restart pages, the buffer pages and the live record
    // pages of both versions: every outcome is a journal or a typed error, never a panic, and a
    // read never exceeds the restart pages, the buffer pages and the log's record area.
    for name in ["LogFile_7.bin", "LogFile_10_large.bin"] {
        let Some(log) = data(name, "mutated_windows_logs_never_panic") else {
            return;
        };
        let size = declared_size(&log);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let mut bytes = log.clone();
            for _ in 0..1 + next() % 8 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            let mut read = padded(&bytes);
            if let Ok(j) = read_journal(size, &mut read) {
                assert!(j.bytes_read <= size + 64 * 4096, "{name}: {}", j.bytes_read);
                let _ = analyse(&j, None);
            }
        }
    }
}

#[test]
fn a_huge_record_length_is_torn_not_allocated() {
    let Some(mut log) = data(
        "LogFile_7.bin",
        "a_huge_record_length_is_torn_not_allocated",
    ) else {
        return;
    };
    let size = declared_size(&log);
    // Record 0x805412 sits at 0x90 of tail copy page 2; its client data length (+0x18) becomes
    // 15 MiB: the pages it would need are never-written, so it is torn, and reading it costs
    // a page, not 15 MiB.
    let at = 2 * 4096 + 0x90 + 0x18;
    assert_eq!(&log[at..at + 4], &0x28u32.to_le_bytes());
    log[at..at + 4].copy_from_slice(&0x00F0_0000u32.to_le_bytes());
    match read_journal(size, &mut padded(&log)) {
        Err(NtfsError::Corrupt(d)) => {
            assert_eq!(d.at, Some(Location::LogRecord { lsn: 0x805412 }), "{d:?}");
            assert!(d.detail.contains("torn"), "{}", d.detail);
        }
        other => panic!("{other:?}"),
    };
}

/// §17.1, §17.8 step 2: W10 and W10D are one session, so W10's restart pages and buffer pages
/// with W10D's record pages 34–51 are a log whose end lies past the restart area's current LSN,
/// as after a crash in which Windows wrote records after its last restart page write.
#[test]
fn windows_10_with_its_later_record_pages_is_read_past_the_current_lsn() {
    let test = "windows_10_with_its_later_record_pages_is_read_past_the_current_lsn";
    let (Some(w10), Some(w10d)) = (
        data("LogFile_10.bin", test),
        data("LogFile_10_downgraded.bin", test),
    ) else {
        return;
    };
    let page = 4096;
    let mut log = w10.clone();
    log[34 * page..52 * page].copy_from_slice(&w10d[34 * page..52 * page]);
    let j = journal(&log);
    let restart = j.restart.as_ref().unwrap();
    assert_eq!(restart.version, LfsVersion::V2_0);
    assert_eq!(restart.area.current_lsn, 0x806158);
    let live = j.live.as_ref().unwrap();
    assert_eq!(live.client.restart_lsn, 0x806158);
    assert_eq!(live.last_lsn(), 0x8064AF);
    // Page 48 in place (W10D) is newer than W10's buffer page 18 for the same target: the page
    // in place wins and no buffer copy is used.
    assert!(live.buffer_copies.is_empty());
    let a = analyse(&j, None).unwrap().unwrap();
    assert_eq!(a.last_lsn, 0x8064AF);
    // Every transaction after the checkpoint ends with its ForgetTransaction (§10.7); the record
    // list itself is judged against ntfsrecover below.
    let forgets = live
        .after_checkpoint()
        .iter()
        .filter(|r| {
            r.operation
                .as_ref()
                .is_some_and(|o| o.redo == Operation::ForgetTransaction)
        })
        .count();
    let finished = a
        .transactions
        .iter()
        .filter(|t| t.outcome == TransactionOutcome::Committed)
        .count();
    assert_eq!(finished, forgets);
    // §17.8: eight finished transactions, six of which change pages (the other two change none).
    assert_eq!(finished, 8);
    assert!(a.committed() > 0 && a.committed() <= finished);
    assert_eq!(a.uncommitted(), 0);
    let path = std::env::temp_dir().join(format!(
        "kaifuku-w10-with-later-pages-{}.bin",
        std::process::id()
    ));
    std::fs::write(&path, &log).unwrap();
    agrees_with_ntfsrecover("W10 + W10D pages 34-51", &log, &path, test);
    std::fs::remove_file(&path).unwrap();
}
