//! The worker's session logic, natively, on a crash-simulated volume whose journal kaifuku cannot
//! replay and whose pending updates touch the CrowdStrike folder (`tests/journal-replay.py` makes
//! it with mkntfs and ntfs-3g, `tests/logwriter.py` writes the journal): the page must not say
//! "nothing to fix", must offer the consent to discard the journal, and with that consent plan a
//! discard that deletes nothing and verifies. And on one whose unreplayable journal touches nothing
//! the fix changes: no consent, the journal left for Windows.
#![cfg(not(target_arch = "wasm32"))]

use kaifuku_io::ReadAt;
use kaifuku_rescue::vocabulary::Blocker;
use kaifuku_rescue::Outcome;
use kaifuku_web::i18n::{Lang, T};
use kaifuku_web::session::Session;
use kaifuku_web::view::{CheckView, Problem, Reads};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

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

fn reads(s: kaifuku_io::ReadStats) -> Reads {
    Reads {
        calls: s.calls,
        bytes: s.bytes,
        ms: 0.0,
    }
}

#[test]
fn a_journal_that_may_hold_the_file_asks_for_consent_and_plans_a_discard() {
    let dir = std::env::temp_dir().join(format!("kaifuku-web-journal-{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/journal-replay.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .expect("python3 runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(77) {
        eprintln!("SKIPPED session_journal: {said}");
        return;
    }
    assert!(out.status.success(), "the crashed volumes: {said}");
    let image = dir.join("unknown-undo.img");
    let f = File::open(&image).unwrap();
    let size = f.metadata().unwrap().len();
    let mut s = Session::new(Source(f, size), "crashed.img");

    let v = s.inspect(reads);
    assert_eq!(v.outcome, Outcome::Refused, "{:?}", v.problems);
    assert!(v.can_fix && v.needs_consent, "{:?}", v.problems);
    let journal: Vec<&Problem> = v
        .problems
        .iter()
        .map(|p| &p.problem)
        .filter(|p| p.journal_consent())
        .collect();
    assert!(
        journal.iter().any(|p| matches!(
            p,
            Problem::Blocked {
                blocker: Blocker::JournalMayHoldMatch { .. },
                ..
            }
        )),
        "{journal:?}"
    );
    let (ja, en) = (T(Lang::Ja), T(Lang::En));
    for p in &journal {
        assert_ne!(ja.problem_text(p), en.problem_text(p), "{p:?}");
    }

    // Without consent the plan is refused; with it, the journal is discarded and nothing deleted.
    assert!(s.plan(false, None, reads).is_err());
    let plan = s.plan(true, None, reads).unwrap();
    assert!(plan.deletions.is_empty(), "{:?}", plan.deletions);
    assert_eq!(plan.journal_reset.len(), 1);
    assert_eq!(plan.matches_after, 0);
    let checks = s.verify().unwrap();
    assert!(checks
        .iter()
        .any(|c| matches!(c, CheckView::RuleFinds { count: 0, .. })));

    // A journal that touches nothing the fix changes is left for Windows: no consent asked, and
    // the plan says so in both languages.
    let image = dir.join("left").join("refused.img");
    let f = File::open(&image).unwrap();
    let size = f.metadata().unwrap().len();
    let mut s = Session::new(Source(f, size), "left.img");
    let v = s.inspect(reads);
    assert_eq!(v.outcome, Outcome::Matches, "{:?}", v.problems);
    assert!(v.can_fix && !v.needs_consent, "{:?}", v.problems);
    let plan = s.plan(false, None, reads).unwrap();
    assert_eq!(plan.deletions.len(), 1);
    assert!(plan.journal_reset.is_empty());
    assert_eq!(plan.journal_left.len(), 1, "{:?}", plan.journal_left);
    let (volume, updates) = &plan.journal_left[0];
    assert_eq!(*updates, 1);
    assert_ne!(
        ja.journal_left_line(volume, *updates),
        en.journal_left_line(volume, *updates)
    );
    s.verify().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
