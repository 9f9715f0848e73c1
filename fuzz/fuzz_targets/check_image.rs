//! The whole-volume invariant checker (`kaifuku check`) over the mutated small NTFS volume (see
//! `inspect_image`): every record, attribute, run, bitmap and index is read and cross-checked.
//! Damage must become problems in the report (or an error), never a panic or a hang.
//!
//! Input: mutations (`kaifuku_fuzz::Volume::mutate`).
#![no_main]

use kaifuku_ntfs::check::check_volume;
use kaifuku_ntfs::Volume;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let image = kaifuku_fuzz::volume().mutate(data);
    let Ok(vol) = Volume::open(&image) else {
        return;
    };
    if let Ok(report) = check_volume(&vol) {
        if data.is_empty() {
            assert!(
                report.is_clean(),
                "the unmutated volume is not clean: {:?}",
                report.problems
            );
        }
    }
});
