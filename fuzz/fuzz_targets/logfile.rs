//! `$LogFile`: the restart-page state (RSTR/CHKD signature, fixups, system page size, restart area
//! offset, version, current LSN, clean flag, client in-use list, the all-0xFF empty log), then the
//! journal reader and its analysis (both restart pages, the client, log record pages with their
//! fixups, 1.1 tail copies and 2.0 buffer pages, records spanning pages and the circular wrap,
//! the checkpoint and its tables).
//!
//! Input: the log's claimed size (u32 LE), then its first bytes. The state reads past them fail
//! as they would on a truncated image; the journal reader sees never-written pages (0xFF) there,
//! so a short input can describe a whole log. Checked: the state agrees with what was read, the
//! journal never reads past the claimed size, its records come in LSN order and the analysis
//! only lists records of the walk.
#![no_main]

use kaifuku_fuzz::le;
use kaifuku_ntfs::logfile::{analyse, log_state, read_journal};
use kaifuku_ntfs::{Damage, LogState, NtfsError, Structure};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let size = le(&data[..4]);
    let log = &data[4..];
    let mut read = |offset: u64, len: usize| -> Result<Vec<u8>, NtfsError> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        assert!(
            offset.saturating_add(len as u64) <= size,
            "read past the log's size"
        );
        log.get(start..start.saturating_add(len))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                NtfsError::Corrupt(Damage::new(
                    Structure::LogFile,
                    None,
                    "fuzz: past the input",
                ))
            })
    };
    if let Ok(info) = log_state(size, &mut read) {
        assert_eq!(info.size, size);
        assert!(info.valid_restart_pages <= 2);
        if info.empty {
            assert_eq!(info.state, LogState::Clean);
        }
        if info.valid_restart_pages == 0 && !info.empty {
            assert_eq!(info.state, LogState::Unreadable);
        }
        let _ = info.state.describe();
    }

    let mut padded = |offset: u64, len: usize| -> Result<Vec<u8>, NtfsError> {
        assert!(
            offset.saturating_add(len as u64) <= size,
            "read past the log's size"
        );
        let mut out = vec![0xFF; len];
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start < log.len() {
            let n = (log.len() - start).min(len);
            out[..n].copy_from_slice(&log[start..start + n]);
        }
        Ok(out)
    };
    let Ok(journal) = read_journal(size, &mut padded) else {
        return;
    };
    assert!(journal.damaged_restart_pages.len() <= 1);
    if let Some(live) = &journal.live {
        assert!(live.records.windows(2).all(|w| w[0].lsn() < w[1].lsn()));
        assert!(live.records.iter().any(|r| r.lsn() == live.client.restart_lsn));
    }
    if let Ok(Some(analysis)) = analyse(&journal, None) {
        let live = journal.live.as_ref().expect("analysis needs the live log");
        for r in &analysis.records {
            assert!(live.records.iter().any(|l| l.lsn() == r.lsn));
            assert!(r.lsn > analysis.checkpoint_start_lsn);
        }
        assert!(analysis.last_lsn >= analysis.current_lsn);
    }
});
