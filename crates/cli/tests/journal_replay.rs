//! Journal replay on crash-simulated volumes (docs/logfile-format.md §10, §15).
//!
//! `tests/journal-replay.py` makes the volumes with mkntfs and ntfs-3g (libfaketime freezes the
//! clocks, so every run makes the same bytes): PRE, POST (the CrowdStrike channel file
//! `C-00000291-00000000-00000032.sys` created at 2024-07-19 04:09:13) and POST2 (then
//! `Windows\Temp\x.tmp`). `tests/logwriter.py`, a test-side writer following the published format
//! and nothing of kaifuku's, turns them into crashed volumes: POST with the described metadata put
//! back to PRE's bytes and a journal whose records describe the change.
//!
//! * `committed`: the 04:09 creation logged and committed, nothing of it on disk.
//! * `flushed-and-uncommitted`: the same with the new file's record already on disk (its LSN
//!   stamped: the replay must skip it), then the x.tmp creation logged without its
//!   `ForgetTransaction` and not on disk (the replay must leave it out).
//!
//! * `index-block`: case 1 in a directory of 40 more files, whose entries ntfs-3g keeps in an
//!   index block: the name goes in with `AddIndexEntryAllocation`.
//! * `uncommitted-on-disk`: case 2 with the x.tmp creation's changes of existing records (its
//!   directory's index root and times, `$MFT`'s sizes, the parent's entry) on disk: the undo pass
//!   must take them back. ntfsrecover has no undo pass in `-s`, so POST alone judges it.
//! * `uncommitted-new-record-on-disk`: case 2 with x.tmp's new record on disk: the undo frees it
//!   again (in use cleared, sequence number incremented), POST everywhere else.
//! * `unknown-undo`: the last with the freeing logged as 0x23, an operation no source describes:
//!   the replay refuses, naming the operation and LSN.
//! * `deleted/committed`: POST2, then ntfs-3g deletes x.tmp; the deletion committed, nothing of it
//!   on disk: the redo frees x.tmp's record (`DeallocateFileRecordSegment`) and takes its name out
//!   of the folder's index root.
//!
//! The oracle (the script's own judgement): ntfsrecover lists every record with the values
//! written, and `ntfsrecover -s` on a copy gives POST on every metadata byte; without a replay
//! the 04:09 file is not on the volume. Then kaifuku's replay (`kaifuku_ntfs::logfile::replay`,
//! into an overlay) must give POST and ntfsrecover's result on every metadata byte (page LSNs and
//! update sequence numbers aside, which a replay stamps), leave a journal ntfs-3g mounts
//! read-write (it refuses an unclean one), that `ntfsfix -n` and `kaifuku check` find clean, and
//! list the 04:09 file.

mod common;

use common::{
    assert_check_clean, crashed_journal_volumes, ntfs3g, repo_script, run, u16le, u32le, u64le,
    unfixup, Scratch, Vol,
};
use kaifuku_io::{Overlay, ReadAt};
use kaifuku_ntfs::logfile::{read_volume_journal, replay, Operation, ReplayPass, ReplaySummary};
use kaifuku_ntfs::Volume;
use std::cell::RefCell;
use std::path::Path;

/// (case, its directory under the script's, the crashed image's name there).
const CASES: [(&str, &str, &str); 7] = [
    ("committed", "", "committed"),
    ("flushed-and-uncommitted", "", "flushed-and-uncommitted"),
    ("index-block", "index-block", "committed"),
    // LFS 2.0 logs (docs/logfile-format.md §17.7): the log's last page in place and in a buffer
    // page, only in a buffer page, torn in place beside a good buffer copy.
    ("v2-committed", "v2", "committed"),
    ("v2-buffer-only", "v2", "buffer-only"),
    ("v2-torn", "v2", "torn"),
    (
        "v2-flushed-and-uncommitted",
        "v2",
        "flushed-and-uncommitted",
    ),
];
const CS_DIR: &str = "Windows/System32/drivers/CrowdStrike";
const CHANNEL_FILE: &str = "C-00000291-00000000-00000032.sys";

/// kaifuku's replay of `crashed` into an overlay, written out as a new image.
fn kaifuku_replay(crashed: &Path, out: &Path) -> ReplaySummary {
    try_replay(crashed, out)
        .unwrap_or_else(|e| panic!("{}: replay refused: {e}", crashed.display()))
}

/// The same, the refusal returned.
fn try_replay(crashed: &Path, out: &Path) -> Result<ReplaySummary, kaifuku_ntfs::NtfsError> {
    let bytes = std::fs::read(crashed).unwrap();
    let overlay = RefCell::new(Overlay::new(bytes));
    let summary = {
        let vol = Volume::open(&overlay).expect("the crashed volume opens");
        let journal = read_volume_journal(&vol).expect("its journal reads");
        let mut editor = kaifuku_ntfs::edit::Editor::new(&vol);
        replay(&mut editor, &journal)?
    };
    let size = overlay.size();
    let mut image = vec![0u8; size as usize];
    overlay.read_at(0, &mut image).unwrap();
    std::fs::write(out, image).unwrap();
    Ok(summary)
}

fn compare(a: &Path, b: &Path) -> String {
    compare_with("--compare", a, b)
}

/// The same comparison with file records compared up to their bytes in use (see
/// `tests/journal-replay.py`'s `compare`).
fn compare_in_use(a: &Path, b: &Path) -> String {
    compare_with("--compare-in-use", a, b)
}

fn compare_with(how: &str, a: &Path, b: &Path) -> String {
    let o = run(
        "python3",
        [
            repo_script("journal-replay.py").as_os_str(),
            how.as_ref(),
            a.as_os_str(),
            b.as_os_str(),
        ],
    );
    if o.code == 0 {
        String::new()
    } else {
        o.both()
    }
}

/// A replayed 2.0 log is left as Windows leaves one it dismounts (docs/logfile-format.md §17.5):
/// both restart pages version 1.1 with the clean flag and the end of the log as current LSN, and
/// the page holding that end as the two 1.1 tail copies (0x08 = its file offset), equal to the
/// page now in place apart from 0x08, page count and position and the update sequence number.
fn left_as_windows_downgrades(image: &Path, report: &serde_json::Value, case: &str) {
    let v = Vol::open(image);
    let lf = v.record(2).attr(0x80, "").unwrap();
    let end_page = report["end_page_offset"].as_u64().unwrap() as usize;
    let log = v.read_runs(&lf.runs, (end_page + 4096) as u64);
    let page = |n: usize| {
        let mut p = log[n..n + 4096].to_vec();
        unfixup(&mut p).unwrap_or_else(|e| panic!("{case}: page at {n:#x}: {e}"));
        p
    };
    let end_lsn = report["end_lsn"].as_u64().unwrap();
    for at in [0, 4096] {
        let p = page(at);
        assert_eq!(
            (u16le(&p, 0x1C), u16le(&p, 0x1A)),
            (1, 1),
            "{case}: version"
        );
        let ra = u16le(&p, 0x18) as usize;
        assert_eq!(u64le(&p, ra), end_lsn, "{case}: current LSN");
        assert_eq!(u16le(&p, ra + 0x0E) & 2, 2, "{case}: clean flag");
    }
    let body = |mut p: Vec<u8>| {
        p[0x08..0x10].fill(0);
        p[0x14..0x18].fill(0);
        p[0x28..0x2A].fill(0);
        p
    };
    let in_place = page(end_page);
    assert_eq!(u32le(&in_place, 0x3C), 0, "{case}: the page in place");
    for tail in [2 * 4096, 3 * 4096] {
        let t = page(tail);
        assert_eq!(
            u64le(&t, 0x08),
            end_page as u64,
            "{case}: tail copy at {tail:#x}"
        );
        assert_eq!((u16le(&t, 0x14), u16le(&t, 0x16)), (1, 1));
        assert_eq!(
            body(t),
            body(in_place.clone()),
            "{case}: tail copy at {tail:#x}"
        );
    }
}

#[test]
fn replay_gives_the_post_operation_volume() {
    let scratch = Scratch::new("journal-replay");
    let Some(dir) = crashed_journal_volumes(&scratch, "journal_replay") else {
        return;
    };
    for (case, sub, image) in CASES {
        let dir = dir.join(sub);
        let post = dir.join("post.img");
        let crashed = dir.join(format!("{image}.img"));
        let ours = dir.join(format!("{case}.kaifuku.img"));
        let summary = kaifuku_replay(&crashed, &ours);
        let differences = compare(&ours, &post);
        assert!(
            differences.is_empty(),
            "{case}: kaifuku's replay differs from POST:\n{differences}"
        );
        let theirs = dir.join(format!("{case}.replayed.img"));
        let differences = compare(&ours, &theirs);
        assert!(
            differences.is_empty(),
            "{case}: kaifuku's replay differs from ntfsrecover's:\n{differences}"
        );

        // What the writer logged (its JSON report) against what the replay did.
        let report = common::load_json(&dir.join(format!("{image}.img.json")));
        let records = report["records"].as_array().unwrap();
        let init_lsns: Vec<u64> = records
            .iter()
            .filter(|r| r["redo"] == 2)
            .map(|r| r["lsn"].as_u64().unwrap())
            .collect();
        let first_init = init_lsns[0];
        let redone_init = summary
            .steps
            .iter()
            .any(|s| s.lsn == first_init && s.operation == Operation::InitializeFileRecordSegment);
        let end = report["end_lsn"].as_u64().unwrap();
        assert_eq!(summary.last_lsn, end, "{case}: the end of the log");
        match case {
            "committed" | "index-block" | "v2-committed" | "v2-buffer-only" | "v2-torn" => {
                assert!(redone_init, "{case}: the new record's image is redone");
                assert!(
                    summary.steps.iter().all(|s| s.pass == ReplayPass::Redo),
                    "{case}: a finished transaction only is redone: {:?}",
                    summary.steps
                );
                assert_eq!(
                    summary.already_on_disk, 0,
                    "{case}: nothing was on disk: {summary:?}"
                );
                assert_eq!(summary.uncommitted_transactions, 0);
                if case == "index-block" {
                    assert!(
                        summary
                            .steps
                            .iter()
                            .any(|s| s.operation == Operation::AddIndexEntryAllocation),
                        "{case}: the name goes into an index block: {:?}",
                        summary.steps
                    );
                }
            }
            _ => {
                assert!(
                    !redone_init,
                    "{case}: the flushed record (LSN stamped) is skipped by the LSN rule"
                );
                assert_eq!(summary.already_on_disk, 1, "{case}: {:?}", summary);
                assert_eq!(summary.uncommitted_transactions, 1);
                let t2_first = records.iter().rev().find(|r| r["redo"] == 0x1B).unwrap()["lsn"]
                    .as_u64()
                    .unwrap();
                // Its records and blocks never reached the disk, so only its bitmap bits (which
                // carry no LSN to tell) are put back, and nothing of it is redone.
                let t2_bits: Vec<u64> = records
                    .iter()
                    .filter(|r| r["lsn"].as_u64().unwrap() > t2_first && r["redo"] == 0x15)
                    .map(|r| r["lsn"].as_u64().unwrap())
                    .collect();
                let undone: Vec<u64> = summary
                    .steps
                    .iter()
                    .filter(|s| s.pass == ReplayPass::Undo)
                    .map(|s| s.lsn)
                    .collect();
                assert_eq!(undone, t2_bits, "{case}: undone: {:?}", summary.steps);
                assert!(
                    summary
                        .steps
                        .iter()
                        .all(|s| s.lsn < t2_first || s.pass == ReplayPass::Undo),
                    "{case}: nothing of the unfinished transaction is redone: {:?}",
                    summary.steps
                );
            }
        }

        if sub == "v2" {
            left_as_windows_downgrades(&ours, &report, case);
        }

        // Independent judges of the result: ntfsfix, an ntfs-3g read-write mount (refused on an
        // unclean journal), kaifuku check.
        let o = run("ntfsfix", ["-n".as_ref(), ours.as_os_str()]);
        assert_eq!(o.code, 0, "{case}: ntfsfix -n: {}", o.both());
        assert!(
            !o.both().contains("unclean") && !o.both().contains("Unclean"),
            "{case}: ntfsfix -n: {}",
            o.both()
        );
        assert_check_clean(&ours, case);
        let m = ntfs3g(&ours, &scratch.path("mnt"), true);
        let listed: Vec<String> = std::fs::read_dir(m.p(CS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        m.unmount();
        assert!(
            listed.iter().any(|n| n == CHANNEL_FILE),
            "{case}: the 04:09 file is listed after the replay: {listed:?}"
        );
    }
}

#[test]
fn undo_takes_back_an_unfinished_transaction_that_reached_the_disk() {
    let scratch = Scratch::new("journal-undo");
    let Some(dir) = crashed_journal_volumes(&scratch, "journal_replay") else {
        return;
    };
    let post = dir.join("post.img");
    let crashed = dir.join("uncommitted-on-disk.img");
    let ours = dir.join("uncommitted-on-disk.kaifuku.img");
    let summary = kaifuku_replay(&crashed, &ours);
    let differences = compare(&crashed, &post);
    assert!(
        !differences.is_empty(),
        "the crashed volume holds the unfinished transaction's changes"
    );
    let differences = compare(&ours, &post);
    assert!(
        differences.is_empty(),
        "kaifuku's replay (redo, then undo) differs from POST:\n{differences}"
    );
    let report = common::load_json(&dir.join("uncommitted-on-disk.img.json"));
    let undone: Vec<Operation> = summary
        .steps
        .iter()
        .filter(|s| s.pass == ReplayPass::Undo)
        .map(|s| s.operation)
        .collect();
    for op in [
        Operation::DeleteIndexEntryRoot,
        Operation::UpdateResidentValue,
        Operation::UpdateFileNameRoot,
        Operation::SetNewAttributeSizes,
    ] {
        assert!(undone.contains(&op), "{op:?} undone: {:?}", summary.steps);
    }
    assert_eq!(summary.last_lsn, report["end_lsn"].as_u64().unwrap());
    let (temp, channel) = clean_and_mounted(&scratch, &ours, "uncommitted-on-disk");
    assert!(
        temp.is_empty(),
        "x.tmp is gone with its transaction: {temp:?}"
    );
    assert!(channel, "the finished 04:09 creation stays");

    // Its new record on disk too: the undo frees it again (`DeallocateFileRecordSegment`). The
    // result is POST everywhere but in that record, which keeps x.tmp's attributes (Windows
    // leaves a freed record's attributes) and is not in use, its sequence number one above
    // x.tmp's (docs/logfile-format.md §13 item 3).
    let crashed = dir.join("uncommitted-new-record-on-disk.img");
    let ours = dir.join("uncommitted-new-record-on-disk.kaifuku.img");
    let post2 = dir.join("post2.img");
    // x.tmp's record as ntfs-3g's ntfsinfo finds it on POST2, where x.tmp exists.
    let x_tmp = common::ntfsinfo_inode(&post2, "Windows/Temp/x.tmp");
    let summary = kaifuku_replay(&crashed, &ours);
    let freed = summary
        .steps
        .iter()
        .find(|s| {
            s.pass == ReplayPass::Undo && s.operation == Operation::DeallocateFileRecordSegment
        })
        .unwrap_or_else(|| panic!("x.tmp's record is freed: {:?}", summary.steps));
    assert_eq!(freed.target, format!("MFT record {x_tmp}"), "{freed:?}");
    let before = Vol::open(&post2).record(x_tmp);
    let after = Vol::open(&ours).record(x_tmp);
    assert!(
        before.in_use() && !after.in_use(),
        "freed: flags {:#x}",
        after.flags()
    );
    let next = match before.seq().wrapping_add(1) {
        0 => 1,
        n => n,
    };
    assert_eq!(after.seq(), next, "the sequence number is incremented");
    // Past the header's LSN, sequence number and flags, but for the update sequence array,
    // which a rewritten record gets anew.
    let used = before.bytes_in_use() as usize;
    let usa = u16le(&before.b, 4) as usize
        ..u16le(&before.b, 4) as usize + 2 * u16le(&before.b, 6) as usize;
    assert_eq!(
        (&after.b[0x18..usa.start], &after.b[usa.end..used]),
        (&before.b[0x18..usa.start], &before.b[usa.end..used]),
        "x.tmp's attributes stay in the freed record"
    );
    assert_eq!(after.links(), before.links());
    // Everything else is POST: put POST's record back in a copy and compare the whole volume.
    let rest = dir.join("uncommitted-new-record-on-disk.rest.img");
    with_record_of(&ours, &post, x_tmp, &rest);
    let differences = compare(&rest, &post);
    assert!(
        differences.is_empty(),
        "kaifuku's replay differs from POST outside x.tmp's record:\n{differences}"
    );
    let (temp, channel) = clean_and_mounted(&scratch, &ours, "uncommitted-new-record-on-disk");
    assert!(
        temp.is_empty(),
        "x.tmp is gone with its transaction: {temp:?}"
    );
    assert!(channel, "the finished 04:09 creation stays");

    // The same with the freeing logged as an operation no source describes: refused by name and
    // LSN, nothing written.
    let crashed = dir.join("unknown-undo.img");
    let report = common::load_json(&dir.join("unknown-undo.img.json"));
    let patched = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["undo"] == 3)
        .unwrap()["lsn"]
        .as_u64()
        .unwrap();
    let refused = try_replay(&crashed, &dir.join("refused.img")).expect_err("refused");
    let text = refused.to_string();
    assert!(
        text.contains(&format!("{patched:#x}")) && text.contains("UpdateRelativeDataInIndex"),
        "the refusal names the operation and its LSN: {text}"
    );
}

/// A copy of `image` with MFT record `n` as `from` holds it.
fn with_record_of(image: &Path, from: &Path, n: u64, copy: &Path) {
    std::fs::copy(image, copy).unwrap();
    let source = Vol::open(from);
    let bytes = source.record_raw(n);
    let mut at = 0;
    for (offset, length) in source.record_location(n) {
        common::write_at(copy, offset, &bytes[at..at + length as usize]);
        at += length as usize;
    }
}

/// `ntfsfix -n` and `kaifuku check` find the replayed `image` clean and ntfs-3g mounts it
/// read-write (it refuses an unclean journal): what `Windows\Temp` holds there, and whether the
/// 04:09 channel file is there.
fn clean_and_mounted(scratch: &Scratch, image: &Path, case: &str) -> (Vec<String>, bool) {
    let o = run("ntfsfix", ["-n".as_ref(), image.as_os_str()]);
    assert_eq!(o.code, 0, "{case}: ntfsfix -n: {}", o.both());
    assert_check_clean(image, case);
    let m = ntfs3g(image, &scratch.path("mnt"), true);
    let temp: Vec<String> = std::fs::read_dir(m.p("Windows/Temp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let channel = m.p(CS_DIR).join(CHANNEL_FILE).exists();
    m.unmount();
    (temp, channel)
}

#[test]
fn a_finished_deletion_is_redone_as_windows_frees_a_record() {
    let scratch = Scratch::new("journal-deletion");
    let Some(dir) = crashed_journal_volumes(&scratch, "journal_replay") else {
        return;
    };
    // PRE holds Windows\Temp\x.tmp; POST is PRE after ntfs-3g deleted it; the crashed volume
    // holds the deletion in its journal, committed, none of it on disk.
    let dir = dir.join("deleted");
    let (pre, post, crashed) = (
        dir.join("pre.img"),
        dir.join("post.img"),
        dir.join("committed.img"),
    );
    let x_tmp = common::ntfsinfo_inode(&pre, "Windows/Temp/x.tmp");
    let ours = dir.join("committed.kaifuku.img");
    let summary = kaifuku_replay(&crashed, &ours);
    let redone: Vec<(Operation, &str)> = summary
        .steps
        .iter()
        .filter(|s| s.pass == ReplayPass::Redo)
        .map(|s| (s.operation, s.target.as_str()))
        .collect();
    let x_record = format!("MFT record {x_tmp}");
    assert!(
        redone.contains(&(Operation::DeallocateFileRecordSegment, x_record.as_str())),
        "{redone:?}"
    );
    assert!(
        redone
            .iter()
            .any(|(op, _)| *op == Operation::DeleteIndexEntryRoot),
        "{redone:?}"
    );
    // The freed record: free, its sequence number incremented as ntfs-3g's delete (and
    // Microsoft's documentation) does, its attributes and link count as they were (ntfs-3g
    // zeroes the count; Windows logs no change of it).
    let (before, expected, after) = (
        Vol::open(&pre).record(x_tmp),
        Vol::open(&post).record(x_tmp),
        Vol::open(&ours).record(x_tmp),
    );
    assert!(!after.in_use() && after.flags() == expected.flags());
    assert_eq!(
        after.seq(),
        expected.seq(),
        "the sequence number as ntfs-3g's delete leaves it"
    );
    assert_ne!(after.seq(), before.seq());
    assert_eq!(after.links(), before.links());
    let used = before.bytes_in_use() as usize;
    let usa = u16le(&before.b, 4) as usize
        ..u16le(&before.b, 4) as usize + 2 * u16le(&before.b, 6) as usize;
    assert_eq!(
        (&after.b[0x18..usa.start], &after.b[usa.end..used]),
        (&before.b[0x18..usa.start], &before.b[usa.end..used]),
        "the freed record keeps its attributes"
    );
    // Everything else is POST, each record up to its bytes in use: where the name left the
    // folder's index root, ntfs-3g leaves the bytes that moved down past the new end, a replay
    // zeroes them.
    let rest = dir.join("committed.rest.img");
    with_record_of(&ours, &post, x_tmp, &rest);
    let differences = compare_in_use(&rest, &post);
    assert!(
        differences.is_empty(),
        "kaifuku's replay differs from POST outside x.tmp's record:\n{differences}"
    );
    let (temp, channel) = clean_and_mounted(&scratch, &ours, "deleted");
    assert!(temp.is_empty(), "x.tmp is deleted: {temp:?}");
    assert!(channel, "the 04:09 file is untouched by the replay");

    // The fix replays the deletion, then deletes the channel file.
    let out = dir.join("committed.fixed.img");
    let o = common::kaifuku([
        "fix".as_ref(),
        crashed.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "kaifuku fix: {}", o.both());
    assert!(
        o.both().contains("journal replay: redo LSN")
            && o.both().contains("DeallocateFileRecordSegment"),
        "{}",
        o.both()
    );
    let o = run("ntfsfix", ["-n".as_ref(), out.as_os_str()]);
    assert_eq!(o.code, 0, "ntfsfix -n: {}", o.both());
    assert_check_clean(&out, "deleted, fixed");
    let m = ntfs3g(&out, &scratch.path("mnt"), true);
    let temp = std::fs::read_dir(m.p("Windows/Temp")).unwrap().count();
    let listed: Vec<String> = std::fs::read_dir(m.p(CS_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    m.unmount();
    assert_eq!(temp, 0, "x.tmp stays deleted");
    assert_eq!(
        listed,
        ["csagent.sys"],
        "the channel file is deleted, the driver kept"
    );
}

/// Changes two bytes of the client data of the log record at `lsn` in a copy of `crashed`
/// (located with the tests' own reader, not kaifuku's), at `at` from the client data's start.
fn patch_log_record(
    crashed: &Path,
    copy: &Path,
    report: &serde_json::Value,
    lsn: u64,
    at: u64,
    value: u16,
) {
    std::fs::copy(crashed, copy).unwrap();
    let vol = common::Vol::open(copy);
    let log = vol.record(2).attr(0x80, "").expect("$LogFile has data");
    let seq_bits = report["seq_number_bits"].as_u64().unwrap();
    let offset = (lsn & ((1u64 << (64 - seq_bits)) - 1)) * 8 + 0x30 + at;
    assert!(
        offset % 512 != 510,
        "the field is not at a sector end, where the update sequence array holds it"
    );
    let (disk, _) = vol.map(&log.runs, offset, 2)[0];
    common::write_at(copy, disk, &value.to_le_bytes());
}

#[test]
fn refuses_what_it_does_not_understand() {
    let scratch = Scratch::new("journal-refusals");
    let Some(dir) = crashed_journal_volumes(&scratch, "journal_replay") else {
        return;
    };
    let crashed = dir.join("committed.img");
    let report = common::load_json(&dir.join("committed.img.json"));
    let lsn_of = |redo: u64| {
        report["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["redo"] == redo)
            .unwrap()["lsn"]
            .as_u64()
            .unwrap()
    };
    // An operation no source describes, in place of UpdateFileNameRoot (0x13).
    let lsn = lsn_of(0x13);
    let copy = scratch.path("unknown-op.img");
    patch_log_record(&crashed, &copy, &report, lsn, 0, 0x23);
    let text = try_replay(&copy, &scratch.path("out.img"))
        .expect_err("an operation whose effect is unknown is refused")
        .to_string();
    assert!(
        text.contains(&format!("{lsn:#x}")) && text.contains("UpdateRelativeDataInIndex"),
        "{text}"
    );
    // AddIndexEntryRoot (0x0C) at a place where no index entry starts (attribute offset + 8).
    let lsn = lsn_of(0x0C);
    let entry = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["redo"] == 0x0C)
        .unwrap()["attribute_offset"]
        .as_u64()
        .unwrap();
    let copy = scratch.path("misplaced-entry.img");
    patch_log_record(&crashed, &copy, &report, lsn, 0x12, entry as u16 + 8);
    let text = try_replay(&copy, &scratch.path("out.img"))
        .expect_err("an entry that would land inside another is refused")
        .to_string();
    assert!(
        text.contains(&format!("{lsn:#x}"))
            && text.contains("AddIndexEntryRoot")
            && text.contains("no index entry starts"),
        "{text}"
    );
}

/// Turns the journal on `vol` back to checkpoint `restart_lsn` (needing `oldest_lsn`): both
/// restart pages point the client there, the clean flag cleared (read and written with the
/// tests' own reader).
fn turn_back(vol: &Path, restart_lsn: u64, oldest_lsn: u64) {
    let v = common::Vol::open(vol);
    let lf = v.record(2).attr(0x80, "").unwrap();
    let read = |offset: u64, len: u64| -> Vec<u8> {
        v.map(&lf.runs, offset, len)
            .into_iter()
            .flat_map(|(off, n)| common::read_at(vol, off, n as usize))
            .collect()
    };
    let page = common::u32le(&read(0, 512), 0x10) as u64;
    for at in [0, page] {
        let mut p = read(at, page);
        common::unfixup(&mut p).unwrap();
        let ra = common::u16le(&p, 0x18) as usize;
        let flags = common::u16le(&p, ra + 0x0E) & !2;
        p[ra + 0x0E..ra + 0x10].copy_from_slice(&flags.to_le_bytes());
        let client = ra + common::u16le(&p, ra + 0x16) as usize;
        p[client..client + 8].copy_from_slice(&oldest_lsn.to_le_bytes());
        p[client + 8..client + 16].copy_from_slice(&restart_lsn.to_le_bytes());
        common::refixup(&mut p);
        let mut done = 0usize;
        for (off, n) in v.map(&lf.runs, at, page) {
            common::write_at(vol, off, &p[done..done + n as usize]);
            done += n as usize;
        }
    }
}

/// A volume Windows made and dismounted cleanly (CC0, tests/data/windows-made), its own journal
/// turned back to a checkpoint in the middle of its last session: everything the records after it
/// change is already on disk. kaifuku's replay must give what `ntfsrecover -s` gives on every
/// byte outside `$LogFile`, and the volume as Windows left it everywhere but in `$Secure:$SDS`:
/// Windows logged its `$SDS` pages with the disk's pre-fill ("PTRN") in the padding between
/// descriptors, where the disk holds zeros, and both replays write what the log holds. Or it
/// refuses by operation and LSN.
#[test]
fn replaying_a_windows_journal_already_on_disk_changes_nothing() {
    let test = "replaying_a_windows_journal_already_on_disk_changes_nothing";
    let src = common::repo_testdata()
        .join("windows-made")
        .join("ntfs-ptrn.raw.gz");
    if !src.exists() {
        eprintln!("SKIPPED {test}: {} is absent", src.display());
        return;
    }
    if run("ntfsrecover", ["-h"]).code == 127 {
        eprintln!("SKIPPED {test}: ntfsrecover (ntfs-3g) is missing");
        return;
    }
    let s = Scratch::new("journal-replay-windows-made");
    let img = s.path("ptrn.raw");
    let o = common::sh(&format!(
        "gunzip -c '{}' > '{}'",
        src.display(),
        img.display()
    ));
    assert_eq!(o.code, 0, "gunzip: {}", o.both());
    let mbr = common::read_at(&img, 0, 512);
    let (start, len) = (
        common::u32le(&mbr, 0x1BE + 8) as u64 * 512,
        common::u32le(&mbr, 0x1BE + 12) as u64 * 512,
    );
    let vol = s.path("ptrn.vol");
    common::extract(&img, start, len, &vol);
    // The checkpoints of the log as ntfsrecover lists them: (LSN, checkpoint start, oldest LSN).
    let out = run(
        "ntfsrecover",
        ["-n".as_ref(), "-f".as_ref(), "-v".as_ref(), vol.as_os_str()],
    );
    let mut checkpoints: Vec<(u64, u64)> = Vec::new();
    let (mut lsn, mut kind, mut attributes, mut oldest) = (0u64, 0u64, 0u64, 0u64);
    let hex = |s: &str| u64::from_str_radix(s, 16).unwrap_or(0);
    for line in out.text().lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["this_lsn", v, ..] => {
                if kind == 2 && attributes != 0 && !checkpoints.iter().any(|c| c.0 == lsn) {
                    checkpoints.push((lsn, oldest));
                }
                (lsn, kind, attributes, oldest) = (hex(v), 0, 0, 0);
            }
            ["record_type", v, ..] => kind = hex(v),
            ["attributes_lsn", v, ..] => attributes = hex(v),
            ["unknown-8", v, ..] => oldest = hex(v),
            _ => {}
        }
    }
    assert!(checkpoints.len() >= 3, "{checkpoints:x?}");
    let (checkpoint, oldest) = checkpoints[checkpoints.len() / 2];
    turn_back(&vol, checkpoint, oldest);
    let ours = s.path("ptrn.kaifuku.vol");
    match try_replay(&vol, &ours) {
        Ok(summary) => {
            let theirs = s.path("ptrn.ntfsrecover.vol");
            std::fs::copy(&vol, &theirs).unwrap();
            let o = run("ntfsrecover", ["-s".as_ref(), theirs.as_os_str()]);
            assert!(
                o.text().contains("Syncing successful"),
                "ntfsrecover -s: {}",
                o.both()
            );
            let differences = compare(&ours, &theirs);
            assert!(
                differences.is_empty(),
                "kaifuku's replay differs from ntfsrecover's:\n{differences}\n{summary:?}"
            );
            let v = common::Vol::open(&vol);
            let sds = v.record(9).attr(0x80, "$SDS").expect("$Secure:$SDS");
            let sds_clusters: Vec<(u64, u64)> = v
                .runs_extent(&sds.runs)
                .into_iter()
                .map(|(off, len)| (off / v.cluster, len / v.cluster))
                .collect();
            for line in compare(&ours, &vol).lines() {
                let cluster: u64 = line
                    .strip_prefix("differs at cluster ")
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected comparison output: {line}"));
                assert!(
                    sds_clusters
                        .iter()
                        .any(|(first, n)| (*first..first + n).contains(&cluster)),
                    "the replay changed cluster {cluster}, outside $SDS"
                );
            }
            assert_check_clean(&ours, test);
            let o = run("ntfsfix", ["-n".as_ref(), ours.as_os_str()]);
            assert_eq!(o.code, 0, "ntfsfix -n: {}", o.both());
            let m = ntfs3g(&ours, &s.path("mnt"), true);
            m.unmount();
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    kaifuku_ntfs::NtfsError::Unsupported(
                        kaifuku_ntfs::Unsupported::JournalReplay { .. }
                    )
                ),
                "a refusal of the replay, not damage: {e}"
            );
            eprintln!("{test}: refused: {e}");
        }
    }
}
