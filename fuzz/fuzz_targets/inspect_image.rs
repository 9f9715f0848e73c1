//! Whole-image inspect over a small real NTFS volume (mkntfs + ntfs-3g, holding
//! `\Windows\System32\drivers\CrowdStrike\C-00000291-00000000-00000032.sys`) whose metadata the
//! fuzz input mutates: container, bare-volume detection, boot sector, `$MFT`, records, attributes,
//! `$UpCase`, `$LogFile`, `$Volume`, hibernation and quota checks, the index walk down to the
//! CrowdStrike directory, file details through the `ntfs` crate, the rule.
//!
//! Input: mutations (`kaifuku_fuzz::Volume::mutate`). Checked: the outcome agrees with the matches.
#![no_main]

use kaifuku_rescue::{inspect, Outcome, Rule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let image = kaifuku_fuzz::volume().mutate(data);
    let report = inspect(&image, &Rule::crowdstrike_2024_07_19());
    assert_eq!(
        report.outcome == Outcome::Matches,
        report.matches().count() > 0,
        "{:?}",
        report.reasons
    );
    for (_, m) in report.matches() {
        assert!(m
            .path
            .starts_with("\\Windows\\System32\\drivers\\CrowdStrike\\"));
    }
});
