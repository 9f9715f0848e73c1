//! Whole-image plan over the mutated small NTFS volume (see `inspect_image`): inspect, the delete
//! as NTFS does it (index entries, B-tree, record, bitmaps, `$ObjId`/`$Reparse`, journal reset),
//! verification from scratch with the targeted checks, the patch diff and the container's output
//! plan.
//!
//! Input: a flag byte (bit 0: consent to discard an unclean journal), then mutations
//! (`kaifuku_fuzz::Volume::mutate`). Checked: a plan's patches lie in the image and do not
//! overlap, the container maps them to writes, and the image with the patches laid over it,
//! inspected from scratch, has no match left.
#![no_main]

use kaifuku_io::{Overlay, PatchData};
use kaifuku_rescue::{inspect, plan_fix, FixOptions, Rule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mutations)) = data.split_first() else {
        return;
    };
    let image = kaifuku_fuzz::volume().mutate(mutations);
    let rule = Rule::crowdstrike_2024_07_19();
    let opts = FixOptions {
        discard_journal: flags & 1 != 0,
        ..FixOptions::default()
    };
    let Ok((_, plan)) = plan_fix(&image, &rule, &opts) else {
        return;
    };
    assert_eq!(plan.verification.matches_after, 0);
    let size = kaifuku_fuzz::volume().bytes.len() as u64;
    let mut patches: Vec<_> = plan.patches.iter().collect();
    patches.sort_by_key(|p| p.offset);
    for w in patches.windows(2) {
        assert!(w[0].end() <= w[1].offset, "patches overlap");
    }
    assert!(patches.iter().all(|p| p.end() <= size && !p.is_empty()));
    let container = kaifuku_container::open(&image).expect("the image opened for the plan");
    container
        .plan_output(&plan.patches)
        .expect("the container maps the plan");
    let mut fixed = Overlay::new(&image);
    for p in &plan.patches {
        match &p.data {
            PatchData::Bytes(b) => fixed.write(p.offset, b).expect("patch in range"),
            PatchData::Fill { byte, len } => {
                fixed.fill(p.offset, *len, *byte).expect("fill in range")
            }
        }
    }
    let after = inspect(&fixed, &rule);
    assert_eq!(after.matches().count(), 0, "a match is left after the fix");
});
