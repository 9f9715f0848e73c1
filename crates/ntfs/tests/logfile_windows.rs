//! `$LogFile` state on journals written by real Windows (read from the shared test data, which is
//! not copied into the project). Expectations come from that data's documentation: versions 1.1 and
//! 2.0, both restart pages present, an empty log.

use kaifuku_ntfs::logfile::log_state;
use kaifuku_ntfs::{Damage, LogState, NtfsError, Structure};
use std::path::PathBuf;

/// The journal `name` of the shared GPL test data, or `None` (the test is then reported as
/// skipped by name) when that data is not beside the repository.
fn data(name: &str, test: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/dfir_ntfs")
        .join(name);
    if !p.exists() {
        eprintln!(
            "SKIPPED {test}: the GPL test data dfir_ntfs/{name} is absent (it is kept beside the repository in ../shared/testdata, not in it)"
        );
        return None;
    }
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

fn state_of(b: &[u8]) -> kaifuku_ntfs::LogFileInfo {
    log_state(b.len() as u64, &mut |off, len| {
        b.get(off as usize..off as usize + len)
            .map(|s| s.to_vec())
            .ok_or_else(|| NtfsError::Corrupt(Damage::new(Structure::LogFile, None, "short")))
    })
    .unwrap()
}

fn state(name: &str, test: &str) -> Option<kaifuku_ntfs::LogFileInfo> {
    data(name, test).map(|b| state_of(&b))
}

#[test]
fn windows_7_log_is_version_1_1_with_both_restart_pages() {
    let Some(s) = state(
        "LogFile_7.bin",
        "windows_7_log_is_version_1_1_with_both_restart_pages",
    ) else {
        return;
    };
    assert_eq!(s.version.as_deref(), Some("1.1"));
    assert_eq!(s.valid_restart_pages, 2);
    assert!(s.current_lsn.unwrap() > 0);
    assert!(matches!(s.state, LogState::Clean | LogState::Unclean));
    assert_eq!(
        s.state == LogState::Clean,
        s.clean_flag == Some(true) || s.clients_in_use == Some(false)
    );
}

#[test]
fn windows_10_log_is_version_2_and_never_called_clean() {
    for name in ["LogFile_10.bin", "LogFile_10_large.bin"] {
        let Some(s) = state(name, "windows_10_log_is_version_2_and_never_called_clean") else {
            return;
        };
        assert_eq!(s.version.as_deref(), Some("2.0"), "{name}");
        assert_eq!(s.state, LogState::V2, "{name}");
        assert!(s.valid_restart_pages >= 1, "{name}");
    }
}

#[test]
fn downgraded_log_is_version_1_1() {
    let Some(s) = state("LogFile_10_downgraded.bin", "downgraded_log_is_version_1_1") else {
        return;
    };
    assert_eq!(s.version.as_deref(), Some("1.1"));
    assert_ne!(s.state, LogState::V2);
}

#[test]
fn empty_log() {
    // An erased log (every byte 0xFF, as mkntfs and ntfsfix leave it) has nothing to replay.
    let Some(b) = data("LogFile_empty.bin", "empty_log") else {
        return;
    };
    assert!(b.iter().all(|b| *b == 0xFF));
    let s = state_of(&b);
    assert_eq!(s.state, LogState::Clean, "{s:?}");
    assert!(s.empty);
}

#[test]
fn damaged_restart_pages_are_unreadable_not_clean() {
    let Some(mut b) = data(
        "LogFile_7.bin",
        "damaged_restart_pages_are_unreadable_not_clean",
    ) else {
        return;
    };
    b[0..4].copy_from_slice(b"XXXX");
    b[4096..4100].copy_from_slice(b"XXXX");
    let s = log_state(b.len() as u64, &mut |off, len| {
        Ok(b[off as usize..off as usize + len].to_vec())
    })
    .unwrap();
    assert_eq!(s.state, LogState::Unreadable);
    assert!(!s.state.is_clean());
}
