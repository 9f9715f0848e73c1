//! A front end can follow key stretching: the session tells its progress callback how far the
//! SHA-256 rounds have got while inspect unlocks a BitLocker volume (a Windows-made one of the
//! shared test set), from none to all, and the key is stretched once for inspect, plan and an
//! inspect with other rules.

#[path = "../../bitlocker/tests/common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::rc::Rc;

use kaifuku_bitlocker::{ProtectionType, UnlockKey};
use kaifuku_rescue::{Rule, RuleSet, Session, VolumeKeys};

#[test]
fn inspect_tells_how_far_key_stretching_has_got() {
    let test = "inspect_tells_how_far_key_stretching_has_got";
    let Some(archive) = common::archive(test) else {
        return;
    };
    let name = "bitlk-aes-xts-128";
    let rp = common::fact(&archive.images[name], "RP").expect("a recovery password");
    let volume = common::FileReader::open(&archive.image(name));
    let keys = VolumeKeys::new(vec![UnlockKey::RecoveryPassword(rp.to_string())]);
    let mut session = Session::open_with_keys(&volume, Rule::crowdstrike_2024_07_19(), keys);
    let calls: Rc<RefCell<Vec<(u32, u32)>>> = Rc::default();
    let seen = Rc::clone(&calls);
    session.set_unlock_progress(Box::new(move |done, total| {
        seen.borrow_mut().push((done, total))
    }));
    let report = session.inspect().clone();
    let summary = report.volumes[0]
        .bitlocker
        .as_ref()
        .expect("the volume was unlocked");
    assert_eq!(summary.unlocked_with, ProtectionType::RecoveryPassword);

    let after_inspect = calls.borrow().clone();
    let total = 0x10_0000;
    assert_eq!(after_inspect.first(), Some(&(0, total)));
    assert_eq!(after_inspect.last(), Some(&(total, total)));
    assert!(after_inspect.len() > 10, "{} calls", after_inspect.len());
    assert!(
        after_inspect
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 == w[1].1),
        "rounds only grow: {after_inspect:?}"
    );
    // The plan (it fails: this volume's NTFS has no readable $MFT) reuses the unlocked volume:
    // no second stretch.
    let _ = session.plan(&kaifuku_rescue::plan::FixOptions {
        discard_journal: false,
    });
    assert_eq!(calls.borrow().len(), after_inspect.len());

    // Other rules (the page's transaction-log checkbox): the report and the plan made with the
    // old rules are dropped, and the new report is made without stretching the key again.
    session.set_rules(RuleSet::builtin().with_txr_logs().unwrap());
    assert!(session.report().is_none(), "the old report is kept");
    assert!(session.planned().is_none(), "the old plan is kept");
    let again = session.inspect().clone();
    assert_eq!(session.rules().len(), 3);
    assert_eq!(
        again.volumes[0].bitlocker.as_ref().map(|b| b.unlocked_with),
        Some(ProtectionType::RecoveryPassword)
    );
    assert_eq!(
        calls.borrow().len(),
        after_inspect.len(),
        "the key was stretched again"
    );
}
