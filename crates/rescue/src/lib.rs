//! The rescue layer: rules (which files are the problem), the inspect report over a whole disk
//! image, and the outcome a front end turns into an exit code or a message.
#![forbid(unsafe_code)]

pub mod check_image;
pub mod human;
pub mod inspect;
pub mod plan;
pub mod rule;
pub mod undo;
pub mod verify;

pub use check_image::{check_image, CheckOutcome, ImageCheck, VolumeCheck};
pub use inspect::{inspect, InspectReport, Outcome, VolumeReport};
pub use plan::{plan_fix, FixError, FixOptions, Plan};
pub use rule::{Rule, Verdict};
pub use verify::{verify_output, OutputCheck, VerifyError};
