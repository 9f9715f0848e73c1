//! `$LogFile` state: the two restart pages (RSTR/CHKD signature, fixups, system page size, restart
//! area offset, version, current LSN, clean flag, client in-use list), the all-0xFF empty log.
//!
//! Input: the log's claimed size (u32 LE), then its first bytes; reads past them fail as they would
//! on a truncated image. Checked: the state agrees with what was read.
#![no_main]

use kaifuku_fuzz::le;
use kaifuku_ntfs::logfile::log_state;
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
    let Ok(info) = log_state(size, &mut read) else {
        return;
    };
    assert_eq!(info.size, size);
    assert!(info.valid_restart_pages <= 2);
    if info.empty {
        assert_eq!(info.state, LogState::Clean);
    }
    if info.valid_restart_pages == 0 && !info.empty {
        assert_eq!(info.state, LogState::Unreadable);
    }
    let _ = info.state.describe();
});
