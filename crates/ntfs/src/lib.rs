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
pub use index::{DirEntry, Directory, FileNameKey, NodeId};
pub use logfile::{LogFileInfo, LogState};
pub use record::{FileRecord, FileRef};
pub use summary::{FileDetails, Hibernation, VolumeSummary};
pub use volume::Volume;

/// Why an NTFS volume could not be read. Messages say what is wrong and, where there is one, what
/// to do next.
#[derive(Debug, thiserror::Error)]
pub enum NtfsError {
    #[error("not an NTFS volume (no NTFS boot sector)")]
    NotNtfs,
    #[error("the volume is encrypted with BitLocker (-FVE-FS-); unlock or decrypt it in Windows, or use a BitLocker recovery key with a tool that can unlock it, before repairing offline")]
    BitLocker,
    #[error("the NTFS boot sector is damaged: {0}")]
    BadBootSector(String),
    #[error("NTFS structure damaged: {0}")]
    Corrupt(String),
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A request kaifuku will not carry out, whatever the version (e.g. deleting a system file).
    #[error("{0}")]
    Refused(String),
    #[error("reading the image failed while {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the ntfs reader failed: {0}")]
    Reader(String),
}

impl NtfsError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> NtfsError {
        move |source| NtfsError::Io { what, source }
    }
}

impl From<ntfs::NtfsError> for NtfsError {
    fn from(e: ntfs::NtfsError) -> Self {
        NtfsError::Reader(e.to_string())
    }
}
