//! `kaifuku fix` on a volume whose journal is an unclean LFS 2.0 log (Windows 8 and later, no
//! hibernation file): the journal is replayed and left clean the way Windows leaves a 2.0 log it
//! dismounts (docs/logfile-format.md §17.5): the newer buffer copy of the last page written in
//! place, that page as the two 1.1 tail copies in pages 2–3, both restart pages 1.1 and clean.
//!
//! The log is Windows 10's own (the dfir_ntfs samples, GPL data beside the repository, read at
//! test time and never copied into it), written into the `$LogFile` of an mkntfs volume (§11.3);
//! the result is judged by ntfsrecover (without `--kill-fast-restart`, which a 2.0 log needs),
//! an ntfs-3g read-write mount, `ntfsfix -n` and `kaifuku check`.

mod common;

use common::{
    assert_check_clean, gpl_testdata, kaifuku, ntfs3g, run, run_ok, sparse_copy, u16le, u32le,
    u64le, unfixup, write_at, Scratch, Vol,
};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const CS_DIR: &str = "Windows/System32/drivers/CrowdStrike";
const CS_FILE: &str = "C-00000291-00000000-00000032.sys";

/// A sparse 2 GiB mkntfs volume (its `$LogFile` holds the Windows 10 log's 0x8A0000 bytes) with
/// the CrowdStrike file written by ntfs-3g.
fn volume(s: &Scratch) -> PathBuf {
    let vol = s.path("crashed.vol");
    let f = std::fs::File::create(&vol).unwrap();
    f.set_len(2 << 30).unwrap();
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
    let m = ntfs3g(&vol, &mnt, true);
    std::fs::create_dir_all(m.p(CS_DIR)).unwrap();
    let mut bytes = vec![0u8; 40960];
    bytes[..8].copy_from_slice(&[0xAA, 0xAA, 0xAA, 0xAA, 0x01, 0x00, 0x23, 0x01]);
    std::fs::write(m.p(&format!("{CS_DIR}/{CS_FILE}")), bytes).unwrap();
    m.unmount();
    vol
}

/// The `$LogFile` data of `vol`.
fn log_of(vol: &Path) -> Vec<u8> {
    let v = Vol::open(vol);
    let lf = v.record(2).attr(0x80, "").unwrap();
    v.read_runs(&lf.runs, lf.data_size)
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

fn page(log: &[u8], n: usize) -> Vec<u8> {
    let mut p = log[n * 4096..(n + 1) * 4096].to_vec();
    unfixup(&mut p).unwrap_or_else(|e| panic!("page {n}: {e}"));
    p
}

/// A record page's bytes without the fields a rewrite may change: 0x08 (an LSN, or a tail copy's
/// file offset), page count and position, the update sequence number and 0x3C.
fn page_body(p: &[u8]) -> Vec<u8> {
    let mut b = p.to_vec();
    b[0x08..0x10].fill(0);
    b[0x14..0x18].fill(0);
    b[0x28..0x2A].fill(0);
    b[0x3C..0x40].fill(0);
    b
}

#[test]
fn a_windows_10_journal_is_replayed_and_left_clean_as_windows_downgrades_it() {
    let test = "a_windows_10_journal_is_replayed_and_left_clean_as_windows_downgrades_it";
    let Some(dfir) = gpl_testdata("dfir_ntfs", test) else {
        return;
    };
    let s = Scratch::new("journal-v2");
    let vol = volume(&s);
    let w10 = std::fs::read(dfir.join("LogFile_10.bin")).unwrap();
    put_log(&vol, &w10);
    let out = s.path("fixed.vol");
    let o = kaifuku([
        OsStr::new("fix"),
        vol.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "kaifuku fix: {}", o.both());
    assert!(
        o.both()
            .contains("Windows was interrupted while updating this disk; kaifuku completes the 0 update(s) Windows had committed"),
        "{}",
        o.both()
    );

    let log = log_of(&out);
    assert!(log.len() >= w10.len(), "the sample is the start of the log");
    // Both restart pages: 1.1, clean, equal areas, current LSN the end of the log (the
    // checkpoint at 0x806158, the last record W10 holds).
    let (p0, p1) = (page(&log, 0), page(&log, 1));
    for p in [&p0, &p1] {
        assert_eq!(&p[..4], b"RSTR");
        assert_eq!((u16le(p, 0x1C), u16le(p, 0x1A)), (1, 1), "version 1.1");
        let ra = u16le(p, 0x18) as usize;
        assert_eq!(u64le(p, ra), 0x806158, "current LSN");
        assert_eq!(u16le(p, ra + 0x0E) & 2, 2, "clean flag");
    }
    let ra = u16le(&p0, 0x18) as usize;
    let area_len = u16le(&p0, ra + 0x18) as usize;
    assert_eq!(p0[ra..ra + area_len], p1[ra..ra + area_len], "both areas");
    // W10's newest copy of page 48 (0x30000) is buffer page 18; it is now in place with 0x3C 0.
    let buffer = page(&w10, 18);
    assert_eq!(u32le(&buffer, 0x3C), 0x30000);
    let in_place = page(&log, 48);
    assert_eq!(u64le(&in_place, 0x08), 0x806158);
    assert_eq!(u32le(&in_place, 0x3C), 0);
    assert_eq!(page_body(&in_place), page_body(&buffer));
    // Pages 2 and 3: that page as 1.1 tail copies (0x08 = its file offset, one-page I/O).
    for n in [2, 3] {
        let tail = page(&log, n);
        assert_eq!(u64le(&tail, 0x08), 0x30000, "page {n}");
        assert_eq!((u16le(&tail, 0x14), u16le(&tail, 0x16)), (1, 1));
        assert_eq!(u32le(&tail, 0x3C), 0);
        assert_eq!(page_body(&tail), page_body(&buffer), "page {n}");
    }
    // Pages 4–33 (the other buffer pages) and the pages of the log before page 48 stay as they were.
    assert_eq!(log[4 * 4096..34 * 4096], w10[4 * 4096..34 * 4096]);
    assert_eq!(log[34 * 4096..48 * 4096], w10[34 * 4096..48 * 4096]);

    // kaifuku reads the result as clean, and so do the independent tools.
    let r = kaifuku([OsStr::new("inspect"), OsStr::new("--json"), out.as_os_str()]);
    let report: serde_json::Value = serde_json::from_slice(&r.stdout)
        .unwrap_or_else(|e| panic!("inspect --json: {e}: {}", r.both()));
    assert_eq!(
        report["volumes"][0]["ntfs"]["log"]["state"], "clean",
        "{report}"
    );
    // ntfsrecover refuses the input as a 2.0 ("fast restart") log and finds the output clean;
    // it rewrites restart pages even then, so it runs on copies.
    let recover = |image: &Path, name: &str| {
        let copy = s.path(name);
        sparse_copy(image, &copy);
        run(
            "ntfsrecover",
            [OsStr::new("-s"), OsStr::new("-v"), copy.as_os_str()],
        )
        .both()
    };
    let before = recover(&vol, "input-copy.vol");
    assert!(before.contains("Fast restart mode detected"), "{before}");
    let after = recover(&out, "output-copy.vol");
    assert!(
        after.contains("Volume is clean, nothing to do"),
        "ntfsrecover without --kill-fast-restart: {after}"
    );
    let fixn = run("ntfsfix", [OsStr::new("-n"), out.as_os_str()]);
    assert_eq!(fixn.code, 0, "{}", fixn.both());
    let m = ntfs3g(&out, &s.path("out-mnt"), true);
    assert!(!m.p(&format!("{CS_DIR}/{CS_FILE}")).exists());
    m.unmount();
    assert_check_clean(&out, test);
}
