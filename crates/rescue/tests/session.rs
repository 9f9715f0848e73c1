//! A `Session` carries one fixture image through inspect → plan → output plan → verify, with the
//! container opened once; a fault in what was written is caught; images with nothing to fix or
//! no container at all say why in typed values.

use kaifuku_io::{Counted, Overlay, ReadAt};
use kaifuku_rescue::plan::{FixError, FixOptions};
use kaifuku_rescue::vocabulary::{Reason, VerifyFailure};
use kaifuku_rescue::{Outcome, Rule, Session};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A fixture file read with `pread`.
struct Source(File, u64);

impl ReadAt for Source {
    fn size(&self) -> u64 {
        self.1
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        kaifuku_io::check_range(offset, buf.len(), self.1)?;
        self.0.read_exact_at(buf, offset)
    }
}

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/out/fixtures"));
    assert!(
        dir.join("manifest.json").exists(),
        "fixtures missing in {}: run `python3 tests/make-fixtures.py {}` (test.sh does)",
        dir.display(),
        dir.display()
    );
    dir
}

fn source(name: &str) -> Source {
    let f = File::open(fixtures().join(name)).unwrap();
    let size = f.metadata().unwrap().len();
    Source(f, size)
}

#[test]
fn a_session_plans_and_verifies_each_image_with_matches() {
    for name in [
        "gpt-win.raw",
        "mbr-logical.raw",
        "bare-64k.raw",
        "gpt-win-dynamic.vhd",
        "cs-rootonly.raw",
    ] {
        let counted = Counted::new(source(name));
        let mut session = Session::open(&counted, Rule::crowdstrike_2024_07_19());
        assert_eq!(session.inspect().outcome, Outcome::Matches, "{name}");
        let fix = session.plan(&FixOptions::default()).unwrap();
        assert!(!fix.plan.deletions.is_empty(), "{name}");
        assert!(!fix.output.writes.is_empty(), "{name}");
        assert_eq!(fix.plan.verification.matches_after, 0, "{name}");
        // Planning used the inspection already made: inspecting and then planning from the file
        // (which inspects again and opens the container again) reads more.
        let session_calls = counted.stats().calls;
        let twice = Counted::new(source(name));
        let _ = kaifuku_rescue::inspect(&twice, session.rule());
        kaifuku_rescue::plan_fix(&twice, session.rule(), &FixOptions::default()).unwrap();
        assert!(
            session_calls < twice.stats().calls,
            "{name}: {session_calls} reads in the session, {} inspecting twice",
            twice.stats().calls
        );
        let checks = session.verify_writes().unwrap();
        assert!(checks.len() >= 3, "{name}: {checks:?}");
        // The identity an undo file carries is the image's.
        let id = session.undo_identity().unwrap();
        assert_eq!(id.file_size, counted.size(), "{name}");
        let pieces = session.undo_layout(&id).unwrap().unwrap();
        assert!(!pieces.is_empty(), "{name}");

        // A written output with one byte of one write lost does not verify.
        let fix = session.planned().unwrap();
        let mut damaged = Overlay::new(&counted);
        for w in &fix.output.writes {
            damaged.write(w.file_offset, &w.bytes).unwrap();
        }
        for f in &fix.output.fills {
            damaged.fill(f.file_offset, f.len, f.byte).unwrap();
        }
        let first = &fix.output.writes[0];
        damaged
            .write(first.file_offset, &[first.bytes[0] ^ 0xFF])
            .unwrap();
        let e = session.verify_output(&damaged).unwrap_err();
        assert!(
            e.to_string().starts_with("the output does not verify: "),
            "{name}: {e}"
        );
    }
}

#[test]
fn a_plan_comes_with_its_own_inspection() {
    // No explicit inspect: plan inspects once and keeps the report.
    let mut session = Session::open(source("bare-64k.raw"), Rule::crowdstrike_2024_07_19());
    assert!(session.report().is_none());
    let fix = session.plan(&FixOptions::default()).unwrap();
    assert_eq!(fix.report.outcome, Outcome::Matches);
    assert!(session.report().is_some());
}

#[test]
fn nothing_to_fix_says_why_in_reasons() {
    let mut session = Session::open(source("no-crowdstrike.raw"), Rule::crowdstrike_2024_07_19());
    match session.plan(&FixOptions::default()) {
        Err(FixError::NothingToFix { reasons }) => {
            assert!(
                reasons
                    .iter()
                    .any(|r| matches!(r, Reason::DirectoryMissing { .. })),
                "{reasons:?}"
            );
        }
        other => panic!("want nothing to fix: {:?}", other.map(|f| &f.plan)),
    }
    assert!(session.planned().is_none());
    assert_eq!(
        session.verify_writes().unwrap_err().0,
        VerifyFailure::NothingPlanned
    );
}

#[test]
fn an_image_that_is_no_container_is_reported_not_planned() {
    let mut session = Session::open(source("bad/zeros.raw"), Rule::crowdstrike_2024_07_19());
    let outcome = session.inspect().outcome;
    assert_ne!(outcome, Outcome::Matches);
    assert!(session.plan(&FixOptions::default()).is_err());
    assert!(session.planned().is_none());
}

/// Runs a program and returns its stdout; panics with its output when it fails.
fn run(prog: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A match carrying an object id (set by ntfs-3g): the plan reads `$Extend\$ObjId:$O` again after
/// the delete and says so, the written output is checked the same way, and an output in which the
/// key was not removed (every planned write but those to `$ObjId`) does not verify.
#[test]
fn the_object_id_index_is_checked_again_after_the_delete() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("session-object-id");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("mnt")).unwrap();
    let image = dir.join("cs-rootonly.raw");
    let os = |p: &Path| p.as_os_str().to_owned();
    run(
        "cp",
        &[
            "--sparse=always".as_ref(),
            &os(&fixtures().join("cs-rootonly.raw")),
            &os(&image),
        ],
    );
    let target = "Windows/System32/drivers/CrowdStrike/C-00000291-00000000-00000032.sys";
    run("ntfs-3g", &[&os(&image), &os(&dir.join("mnt"))]);
    let set = std::process::Command::new("setfattr")
        .args(["-n", "system.ntfs_object_id", "-v"])
        .arg("0x0123456789abcdef0123456789abcdef")
        .arg(dir.join("mnt").join(target))
        .output()
        .unwrap();
    run("umount", &[&os(&dir.join("mnt"))]);
    assert!(set.status.success(), "setfattr: {set:?}");
    // ntfs-3g's own tools see the object id on the file, and its key in $O.
    let info = run("ntfsinfo", &["-F".as_ref(), target.as_ref(), &os(&image)]);
    assert!(info.contains("$OBJECT_ID"), "{info}");

    let file = File::open(&image).unwrap();
    let size = file.metadata().unwrap().len();
    let source = Source(file, size);
    let mut session = Session::open(&source, Rule::crowdstrike_2024_07_19());
    let fix = session.plan(&FixOptions::default()).unwrap();
    let label = "$Extend\\$ObjId:$O".to_string();
    assert!(
        fix.plan
            .deletions
            .iter()
            .any(|d| d.outcome.side_indexes.contains(&label)),
        "{:?}",
        fix.plan.deletions
    );
    assert!(
        fix.plan.verification.checks.iter().any(|c| matches!(
            c,
            kaifuku_rescue::plan::PlanCheck::SideIndexesClean { indexes, .. } if *indexes == [label.as_str()]
        )),
        "{:?}",
        fix.plan.verification.checks
    );
    let checks = session.verify_writes().unwrap();
    assert!(
        checks.iter().any(|c| matches!(
            c,
            kaifuku_rescue::OutputCheck::SideIndexes { indexes, .. } if *indexes == [label.as_str()]
        )),
        "{checks:?}"
    );

    // The image is raw, so the patches' virtual-disk offsets are file offsets; they carry the
    // structure each one changes.
    let fix = session.planned().unwrap();
    let mut key_left = Overlay::new(&source);
    let mut skipped = 0;
    for p in &fix.plan.patches {
        if belongs_to_object_ids(&p.label) {
            skipped += 1;
            continue;
        }
        match &p.data {
            kaifuku_io::PatchData::Bytes(b) => key_left.write(p.offset, b).unwrap(),
            kaifuku_io::PatchData::Fill { byte, len } => {
                key_left.fill(p.offset, *len, *byte).unwrap()
            }
        }
    }
    assert!(
        skipped > 0,
        "no patch to $ObjId planned: {:?}",
        fix.plan
            .patches
            .iter()
            .map(|p| &p.label)
            .collect::<Vec<_>>()
    );
    let e = session.verify_output(&key_left).unwrap_err();
    match &e.0 {
        VerifyFailure::CheckerProblems { problems, .. } => assert!(
            problems
                .iter()
                .any(|p| p.kind == kaifuku_ntfs::check::ProblemKind::ObjectIdIndex),
            "{e}"
        ),
        other => panic!("want the checker's problems with $O, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether a change is to `$Extend\$ObjId`'s index (its root, blocks or bitmap).
fn belongs_to_object_ids(s: &kaifuku_ntfs::edit::ChangedStructure) -> bool {
    use kaifuku_ntfs::edit::{BitmapOwner, ChangedStructure, IndexOwner, RecordPart};
    let objid_bitmap = |b: &BitmapOwner| {
        matches!(
            b,
            BitmapOwner::IndexBitmap {
                of: IndexOwner::ObjectIds,
                ..
            }
        )
    };
    match s {
        ChangedStructure::IndexBlock { of, .. } => *of == IndexOwner::ObjectIds,
        ChangedStructure::MftRecord {
            part: Some(RecordPart::IndexRoot { of, .. }),
            ..
        } => *of == IndexOwner::ObjectIds,
        ChangedStructure::MftRecord {
            part: Some(RecordPart::Bitmap { bitmap }),
            ..
        }
        | ChangedStructure::BitmapBytes { bitmap, .. } => objid_bitmap(bitmap),
        ChangedStructure::MftRecord { part: None, .. }
        | ChangedStructure::MftMirrCopy { .. }
        | ChangedStructure::JournalReset
        | ChangedStructure::JournalReplay { .. }
        | ChangedStructure::JournalMarkedClean { .. }
        | ChangedStructure::JournalLogPage { .. } => false,
    }
}

#[test]
fn the_fixed_image_is_explained_from_its_own_bytes() {
    use kaifuku_rescue::explain::{FieldName, FieldValue, StructureKind};
    for name in ["gpt-win.raw", "gpt-win-dynamic.vhd"] {
        let mut session = Session::open(source(name), Rule::crowdstrike_2024_07_19());
        assert!(
            session.explain_fixed().is_none(),
            "{name}: nothing planned yet"
        );
        let fix = session.plan(&FixOptions::default()).unwrap().clone();
        let before = kaifuku_rescue::explain::explain_session(&mut session, &FixOptions::default());
        let after = session.explain_fixed().unwrap();
        assert!(after.gaps.is_empty(), "{name}: {:?}", after.gaps);
        assert!(
            after.targets.is_empty(),
            "{name}: the rule matches nothing after the fix"
        );
        // Every deleted file's record is read again: stored, no longer in use.
        let records: Vec<u64> = fix
            .plan
            .deletions
            .iter()
            .map(|d| d.outcome.record)
            .collect();
        for record in &records {
            let shown = after
                .structures
                .iter()
                .find(|s| matches!(&s.what, StructureKind::MftRecord { record: r, .. } if r == record))
                .unwrap_or_else(|| panic!("{name}: record {record} not re-read"));
            let flags = shown
                .fields
                .iter()
                .find(|f| f.name == FieldName::RecordFlags)
                .unwrap();
            assert!(
                matches!(flags.value, FieldValue::RecordFlags { in_use: false, .. }),
                "{name}: {flags:?}"
            );
        }
        // The patched ranges, read again, hold what the plan wrote; the $MFT:$BITMAP bit of
        // each deleted record is clear.
        assert_eq!(after.patches.len(), before.patches.len(), "{name}");
        for (a, b) in after.patches.iter().zip(&before.patches) {
            assert_eq!(a.disk_offset, b.disk_offset, "{name}");
            assert_eq!(a.after, b.after, "{name}: re-read differs from the plan");
            assert_eq!(a.before, b.before, "{name}");
        }
        let cleared: Vec<u64> = after
            .patches
            .iter()
            .flat_map(|p| &p.changed)
            .filter(|c| c.field == Some(FieldName::MftBitmapBits))
            .flat_map(|c| &c.bits)
            .map(|b| {
                assert!(!b.set_after, "{name}: bit {} set after the fix", b.bit);
                b.bit
            })
            .collect();
        for record in &records {
            assert!(
                cleared.contains(record),
                "{name}: {cleared:?} lacks {record}"
            );
        }
        // The walk still reaches the rule's directory on the fixed image.
        assert!(
            after
                .structures
                .iter()
                .any(|s| matches!(&s.what, StructureKind::IndexEntry { name, .. } if name == "CrowdStrike")),
            "{name}"
        );
    }
}
