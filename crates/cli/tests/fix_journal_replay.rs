//! `kaifuku fix` on crash-simulated volumes whose journal holds what the fix is about: the
//! CrowdStrike channel file `C-00000291-00000000-00000032.sys` created at 04:09, the creation
//! committed in the journal but not flushed to the volume (`tests/journal-replay.py` makes the
//! volumes with mkntfs and ntfs-3g, `tests/logwriter.py` writes the journal; see
//! `journal_replay.rs` for the cases and the oracle).
//!
//! The fix must replay the journal by default (as Windows would at its next start), find the
//! file on the replayed volume, delete it, and leave a volume that independent tools judge
//! clean: `ntfsfix -n`, an ntfs-3g read-write mount (refused on an unclean journal) where the
//! file is absent and the other files are there, `kaifuku check`, and a journal read as clean.
//! On the crashed volume without the replay the rule finds nothing: a fix that ignored the
//! journal would leave the file for Windows to bring back at boot.

mod common;

use common::{assert_check_clean, crashed_journal_volumes, kaifuku, ntfs3g, run, Scratch};
use kaifuku_ntfs::Volume;
use kaifuku_rescue::inspect::run_rule;
use kaifuku_rescue::rule::Rule;
use std::ffi::OsStr;
use std::path::Path;

const CS_DIR: &str = "Windows/System32/drivers/CrowdStrike";
const CHANNEL_FILE: &str = "C-00000291-00000000-00000032.sys";
/// The driver next to the channel file, which the fix must leave alone.
const DRIVER: &str = "csagent.sys";

fn inspect_json(image: &Path) -> serde_json::Value {
    let o = kaifuku([
        OsStr::new("inspect"),
        OsStr::new("--json"),
        image.as_os_str(),
    ]);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("inspect --json {}: {e}: {}", image.display(), o.both()))
}

#[test]
fn fix_replays_the_journal_and_deletes_the_file_only_it_holds() {
    let scratch = Scratch::new("fix-journal-replay");
    let Some(dir) = crashed_journal_volumes(&scratch, "fix_journal_replay") else {
        return;
    };
    // (case, its directory, the crashed image, updates committed, unfinished ones).
    let cases = [
        ("committed", "", "committed", 1, 0),
        (
            "flushed-and-uncommitted",
            "",
            "flushed-and-uncommitted",
            1,
            1,
        ),
        // The unfinished creation's new record reached the disk: the undo frees it again.
        (
            "uncommitted-new-record-on-disk",
            "",
            "uncommitted-new-record-on-disk",
            1,
            1,
        ),
        ("index-block", "index-block", "committed", 1, 0),
        // LFS 2.0 logs (Windows 8 and later): the same creation, the log's last page in place,
        // torn in place beside its buffer copy; and the unfinished second creation.
        ("v2-committed", "v2", "committed", 1, 0),
        ("v2-torn", "v2", "torn", 1, 0),
        (
            "v2-flushed-and-uncommitted",
            "v2",
            "flushed-and-uncommitted",
            1,
            1,
        ),
    ];
    let rule = Rule::crowdstrike_2024_07_19();
    for (case, sub, image, committed, uncommitted) in cases {
        let crashed = dir.join(sub).join(format!("{image}.img"));

        // Without the replay the file is not there: the volume alone does not show it, so a fix
        // that ignored the journal would say "nothing to fix" and Windows would bring the file
        // back when it replays its journal at boot.
        let bytes = std::fs::read(&crashed).unwrap();
        let vol = Volume::open(bytes.as_slice()).expect("the crashed volume opens");
        let unreplayed = run_rule(&vol, &rule).expect("the rule runs on the crashed volume");
        assert!(
            unreplayed.directory_exists && unreplayed.matches.is_empty(),
            "{case}: the crashed volume alone shows no match: {:?}",
            unreplayed.matches
        );

        // Inspect sees it on the replayed view and says so.
        let report = inspect_json(&crashed);
        assert_eq!(report["outcome"], "matches", "{case}: {report}");
        let volume = &report["volumes"][0];
        let replay = &volume["journal_replay"];
        assert_eq!(replay["code"], "replayed", "{case}: {volume}");
        assert_eq!(replay["committed"], committed, "{case}: {replay}");
        assert_eq!(replay["uncommitted"], uncommitted, "{case}: {replay}");
        assert!(
            volume["fix_blockers"].as_array().unwrap().is_empty(),
            "{case}: a journal the fix replays blocks nothing: {volume}"
        );
        let matched: Vec<&str> = volume["rule"]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            matched,
            [format!(
                "\\Windows\\System32\\drivers\\CrowdStrike\\{CHANNEL_FILE}"
            )],
            "{case}"
        );

        // The fix, without any consent flag: replay first, then the delete.
        let out = dir.join(format!("{case}.fixed.img"));
        let o = kaifuku([
            OsStr::new("fix"),
            crashed.as_os_str(),
            OsStr::new("-o"),
            out.as_os_str(),
        ]);
        assert_eq!(o.code, 0, "{case}: kaifuku fix: {}", o.both());
        let said = o.both();
        let unfinished = if uncommitted > 0 {
            format!(" (and takes back {uncommitted} unfinished one(s))")
        } else {
            String::new()
        };
        let expected = format!(
            "Journal     replayed first: Windows was interrupted while updating this disk; kaifuku completes the {committed} update(s) Windows had committed{unfinished}, as Windows would at its next start"
        );
        assert!(
            said.lines().next() == Some(expected.as_str()),
            "{case}: the plan opens with the replay:\n{said}"
        );
        assert!(
            said.contains(&format!(
                "Delete      \\Windows\\System32\\drivers\\CrowdStrike\\{CHANNEL_FILE}"
            )),
            "{case}: {said}"
        );
        assert!(
            said.contains("journal replay: redo LSN")
                && said.contains("journal replay: $LogFile first restart page marked clean"),
            "{case}: the replay's writes are labelled in the plan:\n{said}"
        );
        assert!(
            said.contains("the journal reads as clean after the replay"),
            "{case}: {said}"
        );
        assert!(
            !said.contains("reset ($LogFile filled with 0xFF)"),
            "{case}: the journal is replayed, not discarded:\n{said}"
        );

        // Independent judges of the output.
        let n = run("ntfsfix", ["-n".as_ref(), out.as_os_str()]);
        assert_eq!(n.code, 0, "{case}: ntfsfix -n: {}", n.both());
        assert!(
            !n.both().to_lowercase().contains("unclean"),
            "{case}: ntfsfix -n: {}",
            n.both()
        );
        assert_check_clean(&out, case);
        // Read-write: ntfs-3g refuses that on a journal that is not clean.
        let m = ntfs3g(&out, &scratch.path("mnt"), true);
        let listed: Vec<String> = std::fs::read_dir(m.p(CS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        m.unmount();
        assert!(
            !listed.iter().any(|n| n == CHANNEL_FILE),
            "{case}: the 04:09 file is gone: {listed:?}"
        );
        assert!(
            listed.iter().any(|n| n == DRIVER),
            "{case}: the driver stays: {listed:?}"
        );
        let after = inspect_json(&out);
        assert_eq!(after["outcome"], "nothing-to-fix", "{case}: {after}");
        let log = &after["volumes"][0]["ntfs"]["log"];
        assert_eq!(log["state"], "clean", "{case}: the journal is clean: {log}");
        assert!(
            after["volumes"][0].get("journal").is_none(),
            "{case}: a clean journal is not read: {after}"
        );
    }
}

#[test]
fn a_journal_the_replay_refuses_keeps_the_consent_path() {
    let scratch = Scratch::new("fix-journal-refused");
    let Some(dir) = crashed_journal_volumes(&scratch, "fix_journal_replay") else {
        return;
    };
    // An unfinished transaction whose new record reached the disk, its freeing logged as an
    // operation no source describes (0x23): the replay refuses by operation and LSN, and the
    // fix stays as it was.
    let crashed = dir.join("unknown-undo.img");
    let writer = common::load_json(&dir.join("unknown-undo.img.json"));
    let dealloc = writer["records"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["undo"] == 3)
        .unwrap()["lsn"]
        .as_u64()
        .unwrap();
    let report = inspect_json(&crashed);
    let volume = &report["volumes"][0];
    let replay = &volume["journal_replay"];
    assert_eq!(replay["code"], "not_understood", "{volume}");
    assert_eq!(replay["lsn"], dealloc, "{replay}");
    assert_eq!(replay["operation"], "UpdateRelativeDataInIndex", "{replay}");
    assert!(
        volume["fix_blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["code"] == "journal_not_clean"),
        "{volume}"
    );
    let o = kaifuku([OsStr::new("inspect"), crashed.as_os_str()]);
    assert!(
        o.text().contains(&format!(
            "journal replay: kaifuku cannot complete the updates Windows left in the journal: log record {dealloc:#x} (UpdateRelativeDataInIndex) is not understood"
        )),
        "{}",
        o.both()
    );
}

#[test]
fn a_refused_replay_touching_the_rule_folders_is_not_nothing_to_fix() {
    let scratch = Scratch::new("fix-journal-may-hold");
    let Some(dir) = crashed_journal_volumes(&scratch, "fix_journal_replay") else {
        return;
    };
    // The replay refuses (see above), and the pending updates include the 04:09 creation in the
    // CrowdStrike folder: the disk shows no channel file, but Windows would create it at its next
    // start. kaifuku cannot tell, so it must not say "nothing to fix".
    let crashed = dir.join("unknown-undo.img");
    let report = inspect_json(&crashed);
    assert_eq!(report["outcome"], "refused", "{report}");
    let reasons = report["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{report}");
    assert_eq!(reasons[0]["code"], "journal_may_hold_match", "{report}");
    let volume = &report["volumes"][0];
    assert!(
        volume["rule"]["matches"].as_array().unwrap().is_empty(),
        "the disk alone shows no match: {volume}"
    );
    // The folder's MFT record as ntfs-3g's ntfsinfo finds it.
    let folder = common::ntfsinfo_inode(&crashed, CS_DIR);
    let blocker = volume["fix_blockers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["code"] == "journal_may_hold_match")
        .unwrap_or_else(|| panic!("the blocker is listed: {volume}"));
    assert!(
        blocker["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_u64() == Some(folder)),
        "the CrowdStrike folder's record {folder} is named: {blocker}"
    );
    assert_eq!(blocker["unreadable"], false, "{blocker}");

    let o = kaifuku([OsStr::new("inspect"), crashed.as_os_str()]);
    assert_eq!(o.code, 2, "inspect refuses: {}", o.both());
    let expected = "Windows's unfinished updates touch \\Windows\\System32\\drivers\\CrowdStrike, and kaifuku cannot replay them: it cannot tell whether a file matching C-00000291*.sys is there";
    assert!(o.text().contains(expected), "{}", o.both());
    assert!(!o.text().contains("nothing to fix"), "{}", o.both());

    // The fix refuses without consent, and writes nothing.
    let out = dir.join("may-hold.fixed.img");
    let o = kaifuku([
        OsStr::new("fix"),
        crashed.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, 2, "{}", o.both());
    assert!(o.both().contains(expected), "{}", o.both());
    assert!(!out.exists(), "nothing written without consent");

    // With consent the journal is discarded: what is on the disk is then the truth, the rule's
    // "no match" stands, and the output holds the discard (otherwise Windows would bring the
    // file back at boot).
    let o = kaifuku([
        OsStr::new("fix"),
        crashed.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--discard-journal"),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    let said = o.both();
    assert!(
        said.contains("Journal     reset ($LogFile filled with 0xFF) and volume marked dirty")
            && !said.contains("Delete "),
        "the journal is discarded and nothing deleted:\n{said}"
    );
    assert!(
        said.contains("the rule finds 0 file(s) after the fix"),
        "{said}"
    );
    let after = inspect_json(&out);
    assert_eq!(after["outcome"], "nothing-to-fix", "{after}");
    let ntfs = &after["volumes"][0]["ntfs"];
    assert_eq!(ntfs["log"]["state"], "clean", "{ntfs}");
    assert_eq!(ntfs["dirty"], true, "chkdsk runs at the next boot: {ntfs}");
    assert_check_clean(&out, "may-hold");
    let m = ntfs3g(&out, &scratch.path("mnt"), false);
    let listed: Vec<String> = std::fs::read_dir(m.p(CS_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    m.unmount();
    assert!(
        !listed.iter().any(|n| n == CHANNEL_FILE) && listed.iter().any(|n| n == DRIVER),
        "{listed:?}"
    );
}

#[test]
fn a_refused_replay_away_from_the_rule_folders_still_finds_nothing_to_fix() {
    let scratch = Scratch::new("fix-journal-unrelated");
    let Some(dir) = crashed_journal_volumes(&scratch, "fix_journal_replay") else {
        return;
    };
    // The same refusal, but every pending update is in ProgramData\Cache: the journal cannot
    // hold a file in the CrowdStrike folder, so the disk's answer stands.
    let crashed = dir.join("unrelated").join("refused.img");
    let report = inspect_json(&crashed);
    let volume = &report["volumes"][0];
    assert_eq!(
        volume["journal_replay"]["code"], "not_understood",
        "the replay is refused: {volume}"
    );
    assert_eq!(report["outcome"], "nothing-to-fix", "{report}");
    let blockers: Vec<&str> = volume["fix_blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["code"].as_str().unwrap())
        .collect();
    assert_eq!(blockers, ["journal_not_clean"], "{volume}");
    let o = kaifuku([OsStr::new("inspect"), crashed.as_os_str()]);
    assert_eq!(o.code, 1, "{}", o.both());
    assert!(
        o.text().contains("Outcome     nothing to fix"),
        "{}",
        o.both()
    );
    assert!(
        !o.text().contains("Windows's unfinished updates touch"),
        "{}",
        o.both()
    );
}

#[test]
fn discard_consent_on_a_replayable_journal_changes_nothing_the_replay_wins() {
    let scratch = Scratch::new("fix-journal-replay-consent");
    let Some(dir) = crashed_journal_volumes(&scratch, "fix_journal_replay") else {
        return;
    };
    // --discard-journal is consent for the fallback only: a journal kaifuku can replay is
    // replayed (nothing Windows committed is lost), and the output is the same as without it.
    let crashed = dir.join("committed.img");
    let plain = dir.join("plain.fixed.img");
    let consented = dir.join("consented.fixed.img");
    let o = kaifuku([
        OsStr::new("fix"),
        crashed.as_os_str(),
        OsStr::new("-o"),
        plain.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    let o = kaifuku([
        OsStr::new("fix"),
        crashed.as_os_str(),
        OsStr::new("-o"),
        consented.as_os_str(),
        OsStr::new("--discard-journal"),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    let said = o.both();
    assert!(
        said.starts_with(
            "Journal     replayed first: Windows was interrupted while updating this disk"
        ),
        "the plan says the journal was replayed:\n{said}"
    );
    assert!(
        !said.contains("reset ($LogFile filled with 0xFF)") && !said.contains("marked dirty"),
        "nothing is discarded:\n{said}"
    );
    assert!(
        std::fs::read(&plain).unwrap() == std::fs::read(&consented).unwrap(),
        "the output is byte-identical with and without the consent"
    );
    let o = kaifuku([
        OsStr::new("fix"),
        crashed.as_os_str(),
        OsStr::new("--dry-run"),
        OsStr::new("--json"),
        OsStr::new("--discard-journal"),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let plan = &doc["plan"];
    assert_eq!(plan["journals_discarded"], serde_json::json!([]), "{plan}");
    assert_eq!(
        plan["journals_replayed"][0]["replay"]["code"], "replayed",
        "{plan}"
    );
    let after = inspect_json(&consented);
    let ntfs = &after["volumes"][0]["ntfs"];
    assert_eq!(ntfs["log"]["state"], "clean", "{ntfs}");
    assert_eq!(ntfs["dirty"], false, "no chkdsk is asked for: {ntfs}");
}

#[test]
fn a_refused_replay_that_touches_nothing_the_fix_changes_is_left_for_windows() {
    let scratch = Scratch::new("fix-journal-left");
    let Some(dir) = crashed_journal_volumes(&scratch, "fix_journal_replay") else {
        return;
    };
    // The channel file is on the disk; the journal holds a committed, unflushed update of
    // ProgramData\Cache\a.tmp that kaifuku's replay refuses. None of it touches the file's
    // record, its folder's index or the bitmap pages the delete writes: the fix deletes, and
    // leaves the journal exactly as it was for Windows to finish.
    let crashed = dir.join("left").join("refused.img");
    let report = inspect_json(&crashed);
    assert_eq!(report["outcome"], "matches", "{report}");
    let volume = &report["volumes"][0];
    assert_eq!(
        volume["journal_replay"]["code"], "not_understood",
        "{volume}"
    );
    assert!(
        volume["fix_blockers"].as_array().unwrap().is_empty(),
        "a journal left for Windows blocks nothing: {volume}"
    );

    let out = dir.join("left.fixed.img");
    let o = kaifuku([
        OsStr::new("fix"),
        crashed.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    let said = o.both();
    assert_eq!(
        said.lines().next(),
        Some("Journal     left for Windows: Windows will finish its 1 pending update(s) at its next start; they do not touch what kaifuku changes, so the journal is left as it is"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "Delete      \\Windows\\System32\\drivers\\CrowdStrike\\{CHANNEL_FILE}"
        )) && !said.contains("reset ($LogFile"),
        "{said}"
    );

    // $LogFile unchanged, byte for byte, as ntfs-3g's ntfscat reads it; no dirty flag set.
    let log = |image: &Path| {
        let o = run(
            "ntfscat",
            [OsStr::new("-i"), OsStr::new("2"), image.as_os_str()],
        );
        assert_eq!(o.code, 0, "ntfscat: {}", o.both());
        o.stdout
    };
    assert!(log(&crashed) == log(&out), "$LogFile is left as it was");
    let after = inspect_json(&out);
    assert_eq!(after["outcome"], "nothing-to-fix", "{after}");
    assert_eq!(after["volumes"][0]["ntfs"]["dirty"], false, "{after}");

    // ntfsrecover -s, run on a copy of the input and of the output, must end the same way on
    // both, and the two results differ exactly where, and as, the fix changed the image. (On this
    // volume ntfsrecover stops at the same record kaifuku refuses, before it changes anything, so
    // this shows only that the output does not make it act differently; a volume whose journal
    // ntfsrecover replays but kaifuku refuses, without touching the fix's bitmap pages, is not
    // made by the test-side writer yet.)
    let input = std::fs::read(&crashed).unwrap();
    let fixed = std::fs::read(&out).unwrap();
    let recovered = |image: &Path, name: &str| {
        let copy = dir.join(name);
        std::fs::copy(image, &copy).unwrap();
        let o = run("ntfsrecover", [OsStr::new("-s"), copy.as_os_str()]);
        (o.code, std::fs::read(&copy).unwrap())
    };
    let (in_code, in_replayed) = recovered(&crashed, "left.input.recovered.img");
    let (out_code, out_replayed) = recovered(&out, "left.output.recovered.img");
    assert_eq!(in_code, out_code, "ntfsrecover ends the same way on both");
    let mut changed = 0;
    for i in 0..input.len() {
        if fixed[i] != input[i] {
            changed += 1;
            assert_eq!(
                out_replayed[i], fixed[i],
                "byte {i}: the replay after the fix keeps what the fix wrote"
            );
        } else {
            assert_eq!(
                out_replayed[i], in_replayed[i],
                "byte {i}: the replay after the fix does what it does without the fix"
            );
        }
    }
    assert!(changed > 0);
}

/// A crashed volume in memory that counts, for every byte of its `$LogFile`'s record pages (past
/// the two restart pages), how many times it was read.
struct LogPageReads {
    volume: Vec<u8>,
    /// Volume byte ranges of the log's record pages, with a read count per byte.
    pages: Vec<(u64, std::cell::RefCell<Vec<u32>>)>,
    /// Other volume byte ranges (offset, length) whose reads are counted.
    watched: std::cell::RefCell<Vec<((u64, u64), u32)>>,
}

impl LogPageReads {
    fn new(volume: Vec<u8>) -> LogPageReads {
        use kaifuku_ntfs::volume::{AttrValue, RECORD_LOGFILE};
        let (runs, cluster) = {
            let vol = Volume::open(volume.as_slice()).expect("the crashed volume opens");
            let record = vol.read_record(RECORD_LOGFILE).unwrap();
            let Some(AttrValue::NonResident(stream)) = vol
                .value(&record, kaifuku_ntfs::AttributeType::Data, "")
                .unwrap()
            else {
                panic!("$LogFile's data is non-resident on every NTFS volume");
            };
            (stream.runs, vol.cluster_size())
        };
        // The first 8 KiB of the log are its two restart pages: read for the log's state on
        // every volume, clean or not. What follows are the pages of log records.
        let restart_pages = 8192u64;
        let mut pages = Vec::new();
        for run in runs {
            let Some(lcn) = run.lcn else { continue };
            let (mut start, end) = (run.vcn * cluster, (run.vcn + run.length) * cluster);
            let mut on_volume = lcn * cluster;
            if end <= restart_pages {
                continue;
            }
            if start < restart_pages {
                on_volume += restart_pages - start;
                start = restart_pages;
            }
            let len = (end - start) as usize;
            pages.push((on_volume, std::cell::RefCell::new(vec![0u32; len])));
        }
        LogPageReads {
            volume,
            pages,
            watched: Default::default(),
        }
    }

    /// Counts from now on the reads that touch `ranges` (volume offset, length).
    fn watch(&self, ranges: &[(u64, u64)]) {
        self.watched
            .borrow_mut()
            .extend(ranges.iter().map(|&range| (range, 0)));
    }

    /// Reads so far that touched a watched range.
    fn watched_reads(&self) -> u32 {
        self.watched.borrow().iter().map(|(_, reads)| reads).sum()
    }

    /// How many times each byte of the log's record pages has been read so far.
    fn counts(&self) -> Vec<u32> {
        self.pages
            .iter()
            .flat_map(|(_, counts)| counts.borrow().clone())
            .collect()
    }

    /// For each byte of [`LogPageReads::counts`], whether it lies in a 4 KiB page of the volume
    /// that one of `written` (offset, length) touches.
    fn in_written_pages(&self, written: &[(u64, u64)]) -> Vec<bool> {
        let page = |offset: u64| offset / 4096;
        self.pages
            .iter()
            .flat_map(|(start, counts)| {
                let len = counts.borrow().len() as u64;
                (*start..start + len).map(|offset| {
                    written.iter().any(|&(at, n)| {
                        n > 0 && (page(at)..=page(at + n - 1)).contains(&page(offset))
                    })
                })
            })
            .collect()
    }
}

impl kaifuku_io::ReadAt for LogPageReads {
    fn size(&self) -> u64 {
        self.volume.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.volume.as_slice().read_at(offset, buf)?;
        let end = offset + buf.len() as u64;
        for ((start, len), reads) in self.watched.borrow_mut().iter_mut() {
            if offset < *start + *len && *start < end {
                *reads += 1;
            }
        }
        for (start, counts) in &self.pages {
            let mut counts = counts.borrow_mut();
            let stop = start + counts.len() as u64;
            let (from, to) = (offset.max(*start), end.min(stop));
            for c in counts
                .iter_mut()
                .take((to.max(from) - start) as usize)
                .skip((from.min(to) - start) as usize)
            {
                *c += 1;
            }
        }
        Ok(())
    }
}

#[test]
fn inspect_and_plan_read_the_live_span_once() {
    let scratch = Scratch::new("fix-journal-read-once");
    let Some(dir) = crashed_journal_volumes(&scratch, "fix_journal_replay") else {
        return;
    };
    for case in ["committed", "flushed-and-uncommitted", "v2/committed"] {
        let crashed = dir.join(format!("{case}.img"));
        let image = LogPageReads::new(std::fs::read(&crashed).unwrap());
        // The unfinished x.tmp creation's new record, which only the replay reads (it is not on
        // disk; nothing of the fix goes near it).
        if case == "flushed-and-uncommitted" {
            let x_tmp = common::ntfsinfo_inode(&dir.join("post2.img"), "Windows/Temp/x.tmp");
            image.watch(&common::Vol::open(&crashed).record_location(x_tmp));
        }
        // No block cache in between: every read of a log page reaches the image and is counted.
        let mut session = kaifuku_rescue::Session::open(&image, Rule::crowdstrike_2024_07_19());
        assert_eq!(
            session.inspect().outcome,
            kaifuku_rescue::Outcome::Matches,
            "{case}"
        );
        let inspected = image.counts();
        assert!(
            inspected.iter().any(|&c| c > 0),
            "{case}: inspect reads the live span of an unclean journal"
        );
        let watched = image.watched_reads();
        if case == "flushed-and-uncommitted" {
            assert!(watched > 0, "{case}: inspect's replay reads x.tmp's record");
        }
        let fix = session
            .plan(&kaifuku_rescue::plan::FixOptions::default())
            .unwrap_or_else(|e| panic!("{case}: the fix is planned: {e:?}"));
        assert_eq!(fix.plan.journals_replayed.len(), 1, "{case}");
        assert_eq!(
            image.watched_reads(),
            watched,
            "{case}: the plan lays down the replay inspect made, without replaying it again"
        );
        let planned = image.counts();
        // The plan reads what its own writes replace (a 2.0 log left clean as 1.1 gets its tail
        // copies written over buffer pages), to keep only the bytes that differ: those pages
        // are not the live span read again.
        let written: Vec<(u64, u64)> = fix
            .plan
            .patches
            .iter()
            .map(|p| (p.offset, p.end() - p.offset))
            .collect();
        let replaced = image.in_written_pages(&written);
        let read_again = planned
            .iter()
            .zip(&inspected)
            .zip(&replaced)
            .filter(|((after, before), replaced)| after != before && !**replaced)
            .count();
        assert_eq!(
            read_again,
            0,
            "{case}: the plan replays the journal inspect read, without reading its pages again \
             (inspect read {} bytes of log pages, at most {} times each)",
            inspected.iter().filter(|&&c| c > 0).count(),
            inspected.iter().max().unwrap()
        );
    }
}
