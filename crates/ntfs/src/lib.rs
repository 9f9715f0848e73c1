//! NTFS volumes inside a disk image, for kaifuku: reading them, deleting a file the way NTFS
//! does (as writes into an overlay), and checking the invariants chkdsk checks.
//!
//! # Two readers, and who reads what
//!
//! The `ntfs` crate is opened once per [`Volume`] (on first use, then kept with it) and reads
//! what it can read better than a position-oriented reader: attribute *semantics* and file data.
//!
//! * The `ntfs` crate reads the volume label (`$VOLUME_NAME`), the NTFS version and the dirty
//!   flag (`$VOLUME_INFORMATION`) for [`Volume::summary`]; the size and first bytes of
//!   `hiberfil.sys` for the hibernation check; and, in [`Volume::file_details`], the
//!   `$STANDARD_INFORMATION` times, the data size and the data of the files a rule matched.
//! * Our own code reads everything the edit layer and the checker need to *locate* on disk, which
//!   the crate does not expose: the boot sector ([`boot`]), the `$MFT` map including an
//!   `$ATTRIBUTE_LIST`-extended `$MFT` ([`volume`]), file records with their fixups and byte
//!   ranges ([`record`], [`fixup`]), attributes across extension records, runlists
//!   ([`runlist`]), directory and view indexes with every node's position ([`index`]; the crate's
//!   index walk also fails on 64 KiB clusters), `$UpCase` collation ([`upcase`]), `$LogFile` state
//!   ([`logfile`]), reparse points ([`reparse`]), quota tracking and the path lookups.
//!
//! Where both read the same thing, ours is the fallback and the cross-check:
//!
//! * [`Volume::file_details`] asks the crate first; when the crate refuses
//!   ([`NtfsError::Reader`], e.g. for a file whose record lies past the first extent of an
//!   `$ATTRIBUTE_LIST`-extended `$MFT`, which the crate does not map), our reader answers
//!   ([`Volume::file_details_own`], which refuses compressed or encrypted data as
//!   [`Unsupported::CompressedOrEncryptedData`]).
//! * The crate's data size is compared with ours; a file they disagree on is reported as damage
//!   ([`Structure::FileData`]) instead of scanned.
//! * Names, DOS names, record numbers, sequence and link counts always come from our reader.
//! * [`Volume::summary`] has no fallback: when the crate cannot open the volume or read its label,
//!   version or `hiberfil.sys`, the summary fails with [`NtfsError::Reader`].
//!
//! # Layers
//!
//! [`layout`] names every on-disk field the crate touches; [`record`], [`index`] and [`volume`]
//! read; [`edit`] deletes (every write logged with the structure it changes); [`check`] verifies;
//! [`ownership`] proves the clusters a fix frees or writes belong to the file or structure it
//! names. Failures are typed ([`NtfsError`] with [`Damage`], [`Unsupported`], [`Refusal`],
//! [`BootSectorFault`]); their `Display` is the English the command line prints.
#![forbid(unsafe_code)]

pub mod boot;
mod bytes;
pub mod check;
pub mod edit;
mod error;
pub mod file_data;
pub mod fixup;
pub mod index;
pub mod layout;
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
pub use file_data::FileData;
pub use index::{DirEntry, Directory, FileNameKey, NodeId};
pub use layout::{AttributeType, Namespace};
pub use logfile::{LogFileInfo, LogState};
pub use record::{FileRecord, FileRef};
pub use summary::{FileDetails, Hibernation, VolumeSummary};
pub use volume::Volume;
