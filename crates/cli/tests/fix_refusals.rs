//! What `fix` must refuse with a plain explanation rather than guess: a file with an
//! `$ATTRIBUTE_LIST`, a BitLocker volume, a hibernated Windows. A refusal is exit 2 and no output.

mod common;

use common::{
    extract, fixtures, gpl_testdata, implant, kaifuku, ntfs3g, refixup, repo_testdata, run_ok, sh,
    sparse_copy, u16le, u32le, unfixup, write_at, Scratch, Vol,
};

fn refuses(args: &[&str], out: &std::path::Path, words: &[&str]) {
    let o = kaifuku(args);
    assert_eq!(o.code, 2, "want a refusal (exit 2): {}", o.both());
    let text = o.both().to_lowercase();
    for w in words {
        assert!(
            text.contains(&w.to_lowercase()),
            "the explanation should mention {w:?}: {}",
            o.both()
        );
    }
    assert!(!out.exists(), "a refused fix must not leave an output file");
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    assert!(
        !std::path::Path::new(&partial).exists(),
        "no partial output either"
    );
}

#[test]
fn attribute_list_file_is_refused() {
    // A real volume whose record 27 has an $ATTRIBUTE_LIST and many hard links (17.txt, 36.txt, ...).
    let s = Scratch::new("refuse-attrlist");
    let img = s.path("attrlist.raw");
    let Some(gz) = gpl_testdata(
        "dfir_ntfs/ntfs3_attrlist.raw.gz",
        "attribute_list_file_is_refused",
    ) else {
        return;
    };
    let o = sh(&format!(
        "gunzip -c '{}' > '{}'",
        gz.display(),
        img.display()
    ));
    assert_eq!(o.code, 0, "gunzip: {}", o.stderr);
    // sleuthkit confirms the premise independently: record 27 has an attribute list.
    let istat = run_ok("istat", [img.to_str().unwrap(), "27"]);
    let istat = String::from_utf8_lossy(&istat);
    assert!(
        istat.contains("$ATTRIBUTE_LIST"),
        "record 27 should have an $ATTRIBUTE_LIST: {istat}"
    );
    let out = s.path("out.raw");
    refuses(
        &[
            "fix",
            img.to_str().unwrap(),
            "--path",
            "\\17.txt",
            "-o",
            out.to_str().unwrap(),
        ],
        &out,
        &["$ATTRIBUTE_LIST"],
    );
}

#[test]
fn bitlocker_volume_is_refused() {
    // Turn the bare fixture volume into what BitLocker leaves at its start: OEM ID -FVE-FS-.
    let s = Scratch::new("refuse-bitlocker");
    let img = s.path("bitlocker.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &img);
    write_at(&img, 3, b"-FVE-FS-");
    let out = s.path("out.raw");
    let o = kaifuku(["inspect", img.to_str().unwrap()]);
    assert_eq!(o.code, 2, "inspect of a BitLocker volume: {}", o.both());
    assert!(o.both().contains("BitLocker"), "{}", o.both());
    refuses(
        &["fix", img.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &out,
        &["BitLocker"],
    );
}

#[test]
fn hibernated_windows_is_refused() {
    // A hiberfil.sys whose header says "hibr", written by ntfs-3g on a copy of the fixture.
    let s = Scratch::new("refuse-hibernation");
    let img = s.path("hib.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &img);
    let m = ntfs3g(&img, &s.path("mnt"), true);
    let mut data = b"hibr".to_vec();
    data.resize(64 * 1024, 0x5a);
    std::fs::write(m.p("hiberfil.sys"), &data).unwrap();
    m.unmount();
    let o = kaifuku(["inspect", img.to_str().unwrap()]);
    assert!(o.text().contains("HIBERNATED"), "{}", o.both());
    let out = s.path("out.raw");
    refuses(
        &["fix", img.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &out,
        &["hibernated"],
    );

    // A hiberfil.sys that is not a saved session (zeroed header) does not block the fix.
    let img2 = s.path("nohib.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &img2);
    let m = ntfs3g(&img2, &s.path("mnt2"), true);
    std::fs::write(m.p("hiberfil.sys"), vec![0u8; 64 * 1024]).unwrap();
    m.unmount();
    let out2 = s.path("out2.raw");
    let o = kaifuku(["fix", img2.to_str().unwrap(), "-o", out2.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert!(out2.exists());
}

#[test]
fn system_files_are_never_deleted() {
    let s = Scratch::new("refuse-system");
    for (fixture, path) in [
        ("cs-rootonly.raw", "\\$MFT"),
        ("cs-rootonly.raw", "\\$Bitmap"),
        ("cs-rootonly.raw", "\\$*"),
        ("bare-64k.raw", "\\$Extend\\$ObjId"),
    ] {
        let img = fixtures().join(fixture);
        let out = s.path("out.raw");
        refuses(
            &[
                "fix",
                img.to_str().unwrap(),
                "--path",
                path,
                "-o",
                out.to_str().unwrap(),
            ],
            &out,
            &["system files"],
        );
    }
}

#[test]
fn check_flags_a_freed_metafile() {
    // Clear the in-use flag of $Extend (record 11), keeping the fixups right.
    let s = Scratch::new("metafile");
    let img = s.path("broken.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &img);
    let vol = Vol::open(&img);
    let mut rec = vol.record_raw(11);
    unfixup(&mut rec).unwrap();
    let flags = u16le(&rec, 0x16) & !1;
    rec[0x16..0x18].copy_from_slice(&flags.to_le_bytes());
    refixup(&mut rec);
    let mut at = 0usize;
    for (off, len) in vol.record_location(11) {
        write_at(&img, off, &rec[at..at + len as usize]);
        at += len as usize;
    }
    let o = kaifuku(["check", img.to_str().unwrap()]);
    assert_eq!(o.code, 4, "{}", o.both());
    assert!(o.both().contains("metafiles"), "{}", o.both());
}

#[test]
fn volume_with_quota_tracking_is_refused() {
    // A volume formatted by Windows has $Extend\$Quota; turn on QUOTA_FLAG_TRACKING_ENABLED (0x10)
    // in its defaults entry (owner id 1 in the $Q index) and the fix must refuse.
    let s = Scratch::new("refuse-quota");
    let img = s.path("ptrn.raw");
    let gz = repo_testdata().join("windows-made/ntfs-ptrn.raw.gz");
    assert_eq!(
        sh(&format!(
            "gunzip -c '{}' > '{}'",
            gz.display(),
            img.display()
        ))
        .code,
        0
    );
    // The partition, as sfdisk reads it.
    let table: serde_json::Value =
        serde_json::from_slice(&run_ok("sfdisk", ["-J", img.to_str().unwrap()])).unwrap();
    let p = &table["partitiontable"]["partitions"][0];
    let (off, len) = (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    );
    let out = s.path("out.raw");
    let o = kaifuku([
        "fix",
        img.to_str().unwrap(),
        "--path",
        "\\1.txt",
        "--dry-run",
    ]);
    assert_eq!(
        o.code,
        0,
        "quotas are off on this volume as Windows made it: {}",
        o.both()
    );

    let vol_file = s.path("vol.raw");
    extract(&img, off, len, &vol_file);
    let vol = Vol::open(&vol_file);
    let quota = run_ok(
        "ntfsinfo",
        ["-F", "/$Extend/$Quota", vol_file.to_str().unwrap()],
    );
    let quota = String::from_utf8_lossy(&quota);
    let n: u64 = quota
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Dumping Inode ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|x| x.parse().ok())
        })
        .unwrap_or_else(|| panic!("ntfsinfo did not name $Quota's record: {quota}"));
    let mut rec = vol.record(n);
    let root = rec
        .attr(0x90, "$Q")
        .expect("$Q index root is resident in the record");
    // INDEX_ROOT value: 16-byte header, then INDEX_HEADER with the entries offset.
    let value_at = root.offset + u16le(&root.raw, 0x14) as usize;
    let mut e = value_at + 0x10 + u32le(&rec.b, value_at + 0x10) as usize;
    let mut flags_at = None;
    loop {
        let len = u16le(&rec.b, e + 8) as usize;
        let eflags = u16le(&rec.b, e + 0x0C);
        if eflags & 2 != 0 {
            break;
        }
        if u32le(&rec.b, e + 0x10) == 1 {
            flags_at = Some(e + u16le(&rec.b, e) as usize + 4);
            break;
        }
        e += len;
    }
    let at = flags_at.expect("the $Q defaults entry (owner id 1) sits in the index root");
    let flags = u32le(&rec.b, at) | 0x10;
    rec.b[at..at + 4].copy_from_slice(&flags.to_le_bytes());
    refixup(&mut rec.b);
    let mut pos = 0usize;
    for (o, l) in vol.record_location(n) {
        write_at(&vol_file, o, &rec.b[pos..pos + l as usize]);
        pos += l as usize;
    }
    implant(&vol_file, &img, off);
    refuses(
        &[
            "fix",
            img.to_str().unwrap(),
            "--path",
            "\\1.txt",
            "-o",
            out.to_str().unwrap(),
        ],
        &out,
        &["quota"],
    );
}

const CS_DIR: &str = "Windows/System32/drivers/CrowdStrike";
/// The channel file whose creation the crash interrupted.
const HALF_CREATED: &str = "C-00000291-00000000-00000032.sys";

/// The first two pages of the journal Windows wrote on the CC0 image `ntfs-ptrn.raw.gz` (its
/// restart pages), with the restart area's clean flag cleared: as a crash leaves them.
fn unclean_windows_restart_pages(s: &Scratch) -> Vec<u8> {
    let img = s.path("ptrn.raw");
    let gz = repo_testdata().join("windows-made/ntfs-ptrn.raw.gz");
    let o = sh(&format!(
        "gunzip -c '{}' > '{}'",
        gz.display(),
        img.display()
    ));
    assert_eq!(o.code, 0, "gunzip: {}", o.both());
    let bytes = std::fs::read(&img).unwrap();
    let page = 4096;
    let at = (0..bytes.len() / page - 1)
        .map(|i| i * page)
        .find(|&o| &bytes[o..o + 4] == b"RSTR" && &bytes[o + page..o + page + 4] == b"RSTR")
        .expect("the Windows image has two restart pages");
    let mut pages = bytes[at..at + 2 * page].to_vec();
    for p in pages.chunks_mut(page) {
        assert_eq!(u32le(p, 0x10) as usize, page, "restart pages of 4096 bytes");
        unfixup(p).unwrap();
        let ra = u16le(p, 0x18) as usize;
        let flags = u16le(p, ra + 0x0E);
        assert_ne!(flags & 2, 0, "Windows left its journal clean");
        p[ra + 0x0E..ra + 0x10].copy_from_slice(&(flags & !2).to_le_bytes());
        refixup(p);
    }
    pages
}

/// A bare mkntfs volume on which the crash interrupted the creation of the 04:09 channel file:
/// its MFT record reached the disk, but its `$MFT:$BITMAP` bit and its entry in the folder's
/// index, which Windows had only in its journal, did not; and the journal is unclean. With
/// `listed_match`, a second matching file, fully created, sits in the folder.
///
/// Made with real tools: ntfs-3g creates the file (after 4200 others, so that its record lies in
/// a stretch of `$MFT` the bitmap marks wholly free once they are removed), the record is saved
/// as ntfs-3g wrote it, ntfs-3g removes the file (which clears its bitmap bit and index entry,
/// and the record's in-use flag and link count), and the saved record is written back: the
/// record on disk, its bit and entry not. Windows's restart pages, clean flag cleared, make the
/// journal unclean (one kaifuku cannot read, so a fix needs consent to discard it). Returns the
/// volume and the half-created file's record number. Without `write_back` the saved record is
/// not written back: the file is wholly deleted, and only the unclean journal is left.
fn half_created_volume(
    s: &Scratch,
    name: &str,
    listed_match: bool,
    write_back: bool,
) -> (std::path::PathBuf, u64) {
    let vol = s.path(name);
    let f = std::fs::File::create(&vol).unwrap();
    f.set_len(256 << 20).unwrap();
    drop(f);
    run_ok(
        "mkntfs",
        ["-Q", "-F", "-q", "-c", "4096", vol.to_str().unwrap()],
    );
    let mnt = s.path("mnt");
    let m = ntfs3g(&vol, &mnt, true);
    std::fs::create_dir_all(m.p(CS_DIR)).unwrap();
    std::fs::create_dir_all(m.p("fill")).unwrap();
    let mut content = vec![0u8; 512];
    content[..8].copy_from_slice(&[0xAA, 0xAA, 0xAA, 0xAA, 0x01, 0x00, 0x23, 0x01]);
    if listed_match {
        std::fs::write(
            m.p(&format!("{CS_DIR}/C-00000291-00000000-00000031.sys")),
            &content,
        )
        .unwrap();
    }
    for i in 0..4200 {
        std::fs::write(m.p(&format!("fill/{i}")), b"").unwrap();
    }
    let path = m.p(&format!("{CS_DIR}/{HALF_CREATED}"));
    std::fs::write(&path, &content).unwrap();
    let record = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    m.unmount();
    // kaifuku's scans read `$MFT` 4096 records at a time and skip stretches the bitmap marks
    // free: the record must lie in one that holds nothing else in use.
    assert!(
        (4096..8192).contains(&record),
        "the file's record {record} lies in records 4096-8191"
    );
    let as_created = Vol::open(&vol).record_location(record);
    let saved: Vec<Vec<u8>> = as_created
        .iter()
        .map(|&(o, l)| common::read_at(&vol, o, l as usize))
        .collect();
    let m = ntfs3g(&vol, &mnt, true);
    std::fs::remove_dir_all(m.p("fill")).unwrap();
    std::fs::remove_file(m.p(&format!("{CS_DIR}/{HALF_CREATED}"))).unwrap();
    m.unmount();
    if write_back {
        for ((o, _), bytes) in as_created.iter().zip(&saved) {
            write_at(&vol, *o, bytes);
        }
    }
    let log = Vol::open(&vol).record(2).attr(0x80, "").unwrap().runs;
    let restart = unclean_windows_restart_pages(s);
    let mut at = 0usize;
    for (o, l) in Vol::open(&vol).map(&log, 0, restart.len() as u64) {
        write_at(&vol, o, &restart[at..at + l as usize]);
        at += l as usize;
    }
    (vol, record)
}

#[test]
fn a_discarded_journal_with_a_half_created_match_is_refused() {
    let s = Scratch::new("refuse-half-created");
    for listed_match in [false, true] {
        let name = if listed_match {
            "listed.vol"
        } else {
            "alone.vol"
        };
        let (vol, record) = half_created_volume(&s, name, listed_match, true);
        let v = vol.to_str().unwrap();

        // Independent judges of the crash state: The Sleuth Kit reads the record as an allocated
        // file in the folder (by the parent its name gives); ntfs-3g, reading the folder's index,
        // does not list it; kaifuku check names the three disagreements.
        let tsk = common::tsk_args(&vol, 0, 512);
        let st = common::istat(&tsk, record);
        assert!(st.allocated, "istat: {}", st.text);
        assert!(
            common::fls(&tsk)
                .iter()
                .any(|(_, _, r, p)| *r == record && p == &format!("{CS_DIR}/{HALF_CREATED}")),
            "fls lists the record under its folder"
        );
        let listed = String::from_utf8_lossy(&run_ok(
            "ntfsls",
            ["-f", "-p", "/Windows/System32/drivers/CrowdStrike", v],
        ))
        .into_owned();
        assert!(!listed.contains(HALF_CREATED), "ntfsls: {listed}");
        let check = common::kaifuku_check(&vol);
        let said = check.both();
        assert_eq!(check.code, 4, "{said}");
        for words in [
            format!("record {record} is in use but its $MFT:$BITMAP bit is clear"),
            format!("\"{HALF_CREATED}\" is missing from the index"),
        ] {
            assert!(said.contains(&words), "kaifuku check: {said}");
        }

        // Without consent the unclean journal refuses as before; with it the journal would be
        // discarded and chkdsk run at the next boot, which may link the record back into the
        // folder: refused, with the file and what to do.
        let out = s.path("out.vol");
        refuses(&["fix", v, "-o", out.to_str().unwrap()], &out, &["journal"]);
        refuses(
            &["fix", v, "-o", out.to_str().unwrap(), "--discard-journal"],
            &out,
            &[
                HALF_CREATED,
                &format!("MFT record {record}"),
                "chkdsk /f",
                "Windows Recovery",
            ],
        );
        // The refusal as the typed value front ends word (its code in docs/report-codes.md).
        let bytes = std::fs::read(&vol).unwrap();
        let options = kaifuku_rescue::FixOptions {
            discard_journal: true,
        };
        match kaifuku_rescue::plan_fix(
            bytes.as_slice(),
            kaifuku_rescue::Rule::crowdstrike_2024_07_19(),
            &options,
        ) {
            Err(kaifuku_rescue::FixError::Refused {
                refusal:
                    kaifuku_rescue::plan::FixRefusal::ChkdskWouldRestore {
                        directory, files, ..
                    },
            }) => {
                assert_eq!(directory, "\\Windows\\System32\\drivers\\CrowdStrike");
                assert_eq!(
                    files,
                    [kaifuku_rescue::vocabulary::RestorableFile {
                        record,
                        name: HALF_CREATED.into(),
                    }]
                );
            }
            other => panic!("want the chkdsk refusal: {other:?}"),
        }
        assert!(!out.exists(), "nothing written");
    }
}

#[test]
fn a_discarding_plan_reads_mft_once() {
    // The same volume without the half-created record: the journal is unclean (and unreadable),
    // the folder holds one fully created match, and with consent the journal is discarded.
    let s = Scratch::new("discard-reads-mft-once");
    let (vol, _) = half_created_volume(&s, "discard.vol", true, false);
    let bytes = std::fs::read(&vol).unwrap();
    let options = kaifuku_rescue::FixOptions {
        discard_journal: true,
    };
    // The plan looks for half-created records in the same pass over `$MFT` that proves whose
    // the clusters it frees and writes are: after inspect, the plan reads `$MFT` once (every
    // record, the stretches its bitmap marks free too), plus the single records it edits and
    // checks, never the whole of it twice.
    let mft = {
        let v = Vol::open(&vol);
        let runs = v.record(0).attr(0x80, "").unwrap().runs;
        v.runs_extent(&runs)
    };
    let image = MftReads {
        volume: bytes,
        mft: mft.clone(),
        read: std::cell::Cell::new(0),
    };
    let mut session =
        kaifuku_rescue::Session::open(&image, kaifuku_rescue::Rule::crowdstrike_2024_07_19());
    session.inspect();
    let inspected = image.read.get();
    let fix = session
        .plan(&options)
        .unwrap_or_else(|e| panic!("the discarding fix is planned: {e:?}"));
    assert_eq!(fix.plan.journals_discarded.len(), 1);
    assert_eq!(fix.plan.deletions.len(), 1);
    let planned = image.read.get() - inspected;
    let mft_bytes: u64 = mft.iter().map(|(_, len)| len).sum();
    assert!(
        planned >= mft_bytes && planned < mft_bytes + mft_bytes / 4,
        "the plan reads $MFT ({mft_bytes} bytes) once: it read {planned} bytes of it"
    );
}

/// An image that counts the bytes read from `mft` (on-volume ranges).
struct MftReads {
    volume: Vec<u8>,
    mft: Vec<(u64, u64)>,
    read: std::cell::Cell<u64>,
}

impl kaifuku_io::ReadAt for MftReads {
    fn size(&self) -> u64 {
        self.volume.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        kaifuku_io::ReadAt::read_at(&self.volume.as_slice(), offset, buf)?;
        let end = offset + buf.len() as u64;
        for &(at, len) in &self.mft {
            let (from, to) = (offset.max(at), end.min(at + len));
            self.read.set(self.read.get() + to.saturating_sub(from));
        }
        Ok(())
    }
}
