//! The journal reader on the `$LogFile` of volumes Windows formatted and wrote (the CC0 images in
//! tests/data/windows-made), read through the volume like `inspect` reads it, and compared with
//! `ntfsrecover -n -f -v` (ntfs-3g) run on the same log bytes.

mod common;
mod journal_oracle;

use common::{cmd, gunzip, run, shared, Scratch, VolFile};
use journal_oracle::agrees_with_ntfsrecover;
use kaifuku_io::ReadAt;
use kaifuku_ntfs::logfile::analysis::{analyse, TargetGeometry};
use kaifuku_ntfs::logfile::reader::read_journal;
use kaifuku_ntfs::logfile::restart::LfsVersion;
use kaifuku_ntfs::volume::AttrValue;
use kaifuku_ntfs::{AttributeType, Volume};

const LOGFILE_RECORD: u64 = 2;

/// Reads the journal of `volume` through the volume (the way `inspect` reads `$LogFile`), checks
/// what every clean Windows log says (§4.5, §10.5), and writes the log's bytes to `copy` for the
/// oracle. Returns the log's bytes.
fn read_and_check<R: ReadAt>(name: &str, volume: &Volume<R>, copy: &std::path::Path) -> Vec<u8> {
    let record = volume.read_record(LOGFILE_RECORD).unwrap();
    let value = volume
        .value(&record, AttributeType::Data, "")
        .unwrap()
        .expect("$LogFile has data");
    let size = match &value {
        AttrValue::Resident(b) => b.len() as u64,
        AttrValue::NonResident(s) => s.data_size,
    };
    let journal = read_journal(size, &mut |offset, len| {
        volume.read_value(&value, offset, len)
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let restart = journal.restart.as_ref().unwrap();
    // Windows 10 downgrades its log to 1.1 at a clean dismount and sets the clean flag.
    assert_eq!(restart.version, LfsVersion::V1_1, "{name}");
    assert!(restart.area.clean_flag(), "{name}");
    assert!(journal.damaged_restart_pages.is_empty(), "{name}");
    let live = journal.live.as_ref().unwrap();
    assert_eq!(live.last_lsn(), restart.area.current_lsn, "{name}");
    let boot = volume.boot();
    let analysis = analyse(
        &journal,
        Some(TargetGeometry {
            cluster_size: boot.cluster_size,
            file_record_size: boot.file_record_size,
        }),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        live.checkpoint.bytes_per_cluster, boot.cluster_size,
        "{name}"
    );
    assert!(!analysis.has_pending_changes(), "{name}: {analysis:?}");
    assert_eq!(analysis.uncommitted(), 0, "{name}");
    // A clean log's live span is the checkpoint and the record before it: a few pages.
    assert!(
        journal.bytes_read <= 8 * 4096,
        "{name}: {}",
        journal.bytes_read
    );
    let bytes = volume.read_value(&value, 0, size as usize).unwrap();
    std::fs::write(copy, &bytes).unwrap();
    bytes
}

#[test]
fn windows_made_logs_read_and_agree_with_ntfsrecover() {
    let s = Scratch::new("journal-windows");
    for name in ["ntfs-ptrn.raw.gz", "ntfs-ramslack.raw.gz"] {
        let img = s.path(name.trim_end_matches(".gz"));
        gunzip(&shared(&format!("windows-made/{name}")), &img);
        let volume = VolFile::first_mbr_partition(&img).open();
        let copy = s.path("LogFile.bin");
        let log = read_and_check(name, &volume, &copy);
        let compared = agrees_with_ntfsrecover(
            name,
            &log,
            &copy,
            "windows_made_logs_read_and_agree_with_ntfsrecover",
        );
        assert!(compared > 500, "{name}: {compared}");
        std::fs::remove_file(&img).unwrap();
    }
    run(cmd("tar")
        .arg("-xzf")
        .arg(shared("windows-made/ntfs-20h1.tar.gz"))
        .arg("-C")
        .arg(&s.0));
    let volume = VolFile::first_mbr_partition(&s.path("ntfs.raw")).open();
    let copy = s.path("LogFile-20h1.bin");
    let log = read_and_check("ntfs-20h1", &volume, &copy);
    let compared = agrees_with_ntfsrecover(
        "ntfs-20h1",
        &log,
        &copy,
        "windows_made_logs_read_and_agree_with_ntfsrecover",
    );
    assert!(compared > 1000, "{compared}");
}
