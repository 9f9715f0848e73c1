//! NTFS inside a disk image, for kaifuku.
//!
//! Reading of file semantics (volume label and version, `$STANDARD_INFORMATION` times, file data)
//! goes through the `ntfs` crate. Everything the edit layer needs to *locate* on disk — file records
//! and their byte ranges, index nodes, runs, `$UpCase`, `$LogFile` state — is our own code here,
//! because the crate exposes no raw positions and its index walk fails on 64 KiB clusters.
#![forbid(unsafe_code)]

pub mod boot;
mod bytes;
pub mod check;
pub mod edit;
mod error;
pub mod fixup;
pub mod index;
pub mod logfile;
pub mod ownership;
pub mod record;
pub mod reparse;
pub mod runlist;
pub mod summary;
pub mod time;
pub mod upcase;
pub mod volume;

pub use boot::{boot_kind, BootKind, BootSector};
pub use error::{
    BootSectorFault, Damage, LinkDestination, Location, NtfsError, RecordKind, Refusal, Structure,
    Unsupported,
};
pub use index::{DirEntry, Directory, FileNameKey, NodeId};
pub use logfile::{LogFileInfo, LogState};
pub use record::{FileRecord, FileRef};
pub use summary::{FileDetails, Hibernation, VolumeSummary};
pub use volume::Volume;
