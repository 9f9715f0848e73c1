//! The rescue layer: rules (which files are the problem), the inspect report over a whole disk
//! image, the repair plan and its verification, the verification of a written output, the
//! whole-image check, undo files, and the vocabulary of everything a user is told. A [`Session`]
//! carries one image through inspect → plan → output plan → verify-output, so front ends only
//! open files, show results and write bytes.
#![forbid(unsafe_code)]

pub mod check_image;
mod coded;
pub mod encryption;
pub mod explain;
pub mod human;
pub mod inspect;
pub mod journal;
pub mod plan;
pub mod registry;
pub mod rule;
pub mod rule_file;
pub mod session;
pub mod undo;
pub mod verify;
pub mod vocabulary;

pub use check_image::{check_image, CheckOutcome, CheckedFileSystem, ImageCheck, VolumeCheck};
pub use encryption::{DecryptedDisk, UnlockProgress, Unlocker, VolumeKeys};
pub use explain::{explain, Explanation};
pub use inspect::{inspect, inspect_with_keys, FileSystem, InspectReport, Outcome, VolumeReport};
pub use plan::{plan_fix, FixError, FixOptions, Plan};
pub use rule::{
    Localized, Rule, RuleId, RuleOption, RuleSet, RuleSetError, UserRuleText, Verdict,
    TXR_MIN_WINDOWS_BUILD,
};
pub use session::{PlannedFix, PlannedFixedVhd, Session};
pub use verify::{
    verify_output, verify_output_as, verify_output_with_keys, ConvertedContainer, OutputCheck,
    VerifyError,
};
