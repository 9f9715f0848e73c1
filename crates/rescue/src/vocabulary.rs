//! Everything kaifuku can tell a user, as typed values: outcomes, the reasons behind them, what
//! blocks a fix, why a fix is refused or failed, what was verified, and notices.
//!
//! Each type has one English `Display` — the words the command line prints — and serialises with a
//! stable snake_case `"code"`, its facts as fields, and that English sentence under `"message"`
//! (`{"code":"hibernated","message":"Windows is hibernated (…)"}`), which is what the JSON reports
//! carry; each type reads that shape back too, passing over the message, which is how the page
//! receives the core's values from its worker. A front end that speaks another language matches on the variants (exhaustively: a new
//! variant does not compile until it is worded) and words the facts itself; the sentences never
//! need parsing. `docs/report-codes.md` documents every code, and a test fails when one is missing
//! there.
//!
//! Values from the layers below are wrapped, not re-worded: NTFS damage, unsupported features and
//! refusals keep the `ntfs` crate's own types ([`NtfsProblem`]), partition-table notices their
//! [`NoticeKind`]. The container and partition crates' errors are not serialisable, so their
//! details travel as those crates' English sentences next to a code ([`ContainerProblem`],
//! [`PartitionProblem`]).

use crate::coded::{CodeFirst, CodeTagged};
use crate::rule_file::{
    MAX_DESCRIPTION_CHARS, MAX_FILE_BYTES, MAX_HEADER_BYTES, MAX_RULES, MAX_TITLE_CHARS,
};
use kaifuku_bitlocker::{ProtectionType, RecoveryPasswordFault};
use kaifuku_container::{ContainerError, Format, OtherFormat, Qcow2ClusterKind, Qcow2Feature};
use kaifuku_ntfs::check::Problem;
use kaifuku_ntfs::edit::ChangedStructure;
use kaifuku_ntfs::logfile::analysis::{BitRange, Bitmap, IndexBlock, LcnRange};
use kaifuku_ntfs::logfile::LfsVersion;
use kaifuku_ntfs::{BootSectorFault, Damage, LogState, NtfsError, Refusal, Unsupported};
use kaifuku_partition::{NoticeKind, PartitionError};
use kaifuku_registry::HiveError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Gives each type its `Serialize`: the derived form (`#[serde(remote = "Self")]` keeps it as an
/// associated function) written as the report has it, `"code"`, the facts, then `"message"` (its
/// `Display`); and its `Deserialize`, which reads that same shape back and passes over
/// `"message"` (the words are the reader's to choose). The page receives the core's values this
/// way from its worker. See [`crate::coded`].
macro_rules! serde_with_message {
    ($($t:ty),* $(,)?) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(
                    self,
                    CodeTagged {
                        inner: serializer,
                        message: &self.to_string(),
                    },
                )
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$t>::deserialize(CodeFirst(deserializer))
            }
        }
    )*};
}

serde_with_message!(
    Reason,
    VolumeProblem,
    NtfsProblem,
    ContainerProblem,
    PartitionProblem,
    Blocker,
    RuleNotice,
    FixError,
    FixRefusal,
    FixFailure,
    PlanCheck,
    OutputCheck,
    VerifyFailure,
    UndoError,
    UndoInconsistency,
    IdentityMismatch,
    JournalReport,
    JournalOverlap,
    JournalReplay,
    BitLockerProblem,
    HiveState,
    WindowsVersion,
    RuleSkip,
    RuleFileError,
);

/// Joins sentences with "; ", the way a list of reasons is printed on one line.
struct Joined<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for Joined<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, x) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{x}")?;
        }
        Ok(())
    }
}

/// The messages of checker problems, joined with "; ".
struct ProblemMessages<'a>(&'a [Problem]);

impl fmt::Display for ProblemMessages<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<&str> = self.0.iter().map(|p| p.message.as_str()).collect();
        f.write_str(&messages.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------
// Volumes and outcomes

/// A volume as messages name it: `partition 3 "Windows"`, `partition 2`, or `volume` for a disk
/// without a partition table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeName {
    /// Partition number, or `None` for a bare volume.
    pub partition: Option<u32>,
    /// The NTFS volume label, when it was read and is not empty.
    pub label: Option<String>,
}

impl VolumeName {
    /// A volume named by its place alone (no label read): what `check` reports.
    pub fn place(partition: Option<u32>) -> VolumeName {
        VolumeName {
            partition,
            label: None,
        }
    }
}

impl fmt::Display for VolumeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.partition {
            Some(n) => write!(f, "partition {n}")?,
            None => f.write_str("volume")?,
        }
        match &self.label {
            Some(l) => write!(f, " \"{l}\""),
            None => Ok(()),
        }
    }
}

/// What inspection concluded, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum Outcome {
    /// Files matching the rule were found.
    Matches,
    /// Everything could be read and nothing matches.
    NothingToFix,
    /// Something could not be examined for a reason that is not damage (BitLocker, an unsupported
    /// format or feature) and nothing matched elsewhere.
    Refused,
    /// The image or a volume is damaged or unreadable.
    Error,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Matches => "files to fix found",
            Outcome::NothingToFix => "nothing to fix",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        })
    }
}

/// What the whole-image check concluded, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum CheckOutcome {
    /// Every NTFS volume was checked and no problem was found.
    Clean,
    /// At least one volume has problems.
    Problems,
    /// Nothing could be checked for a reason that is not damage (BitLocker, unsupported format,
    /// no NTFS volume).
    Refused,
    /// The image or a volume could not be read.
    Error,
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckOutcome::Clean => "clean",
            CheckOutcome::Problems => "problems found",
            CheckOutcome::Refused => "refused",
            CheckOutcome::Error => "error",
        })
    }
}

/// Why an outcome (of inspect or of the whole-image check) is what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum Reason {
    /// Files match the rule.
    Matches {
        /// How many.
        count: usize,
        /// The rule's title.
        rule: String,
    },
    /// The image file does not open as a disk image.
    Container {
        /// Why.
        problem: ContainerProblem,
    },
    /// The partition table cannot be read.
    Partitions {
        /// Why.
        problem: PartitionProblem,
    },
    /// A volume could not be examined (damage, or a refusal such as BitLocker).
    Volume {
        /// Which volume.
        volume: VolumeName,
        /// Why.
        problem: VolumeProblem,
    },
    /// The partition table is damaged in a way that could hide a volume (and with it the files
    /// the rule looks for).
    PartitionTableDamaged {
        /// The damage, as the partition reader reports it.
        notice: NoticeKind,
    },
    /// The disk has no partition table but is an NTFS volume whose first boot sector is damaged.
    DamagedBareNtfs {
        /// The first sector has NTFS's parameter block under an OEM id that is not NTFS
        /// (otherwise: it is not an NTFS boot sector at all).
        oem_id_damaged: bool,
        /// An intact backup boot sector lies at the end of the disk.
        backup_intact: bool,
    },
    /// No NTFS volume holds `\Windows\System32` (the built-in rule looks only there).
    NoWindowsVolume,
    /// The rule's directory does not exist on a volume.
    DirectoryMissing {
        /// Which volume.
        volume: VolumeName,
        /// The rule's directory.
        directory: String,
    },
    /// The rule's directory exists and no file in it matches.
    NoMatch {
        /// Which volume.
        volume: VolumeName,
        /// The rule's directory.
        directory: String,
        /// The rule's file-name pattern.
        pattern: String,
    },
    /// The rule found nothing on a volume whose journal kaifuku cannot replay, and the journal's
    /// pending updates touch the rule's directory or a folder above it: a matching file may exist
    /// only in the journal (Windows would create it at its next start). Consent to discard the
    /// journal resolves it: after the discard, what is on the disk is the truth.
    JournalMayHoldMatch {
        /// Which volume.
        volume: VolumeName,
        /// The rule's directory.
        directory: String,
        /// The rule's file-name pattern.
        pattern: String,
    },
    /// The check found problems on a volume.
    VolumeHasProblems {
        /// Which volume.
        volume: VolumeName,
        /// How many (listed and omitted).
        count: u64,
    },
    /// The image holds no NTFS volume to check.
    NoNtfsVolume,
    /// Every NTFS volume was checked and none has a problem.
    CheckedClean {
        /// How many volumes were checked.
        volumes: usize,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Matches { count, rule } => write!(f, "{count} file(s) match {rule}"),
            Reason::Container { problem } => write!(f, "{problem}"),
            Reason::Partitions { problem } => write!(f, "{problem}"),
            Reason::Volume { volume, problem } => write!(f, "{volume}: {problem}"),
            Reason::PartitionTableDamaged { notice } => {
                write!(f, "the partition table is damaged: {notice}")
            }
            Reason::DamagedBareNtfs {
                oem_id_damaged,
                backup_intact,
            } => write!(
                f,
                "the disk is an NTFS volume whose boot sector is damaged ({}), so it cannot be read. {}",
                if *oem_id_damaged {
                    "its OEM id is not NTFS"
                } else {
                    "not an NTFS boot sector"
                },
                if *backup_intact {
                    "An intact backup boot sector lies at the end of the disk: chkdsk in Windows Recovery (or `ntfsfix` on Linux) can restore the first one; then try again"
                } else {
                    "Check that this is the right image and that it was exported completely"
                }
            ),
            Reason::NoWindowsVolume => f.write_str("no NTFS volume holds \\Windows\\System32"),
            Reason::DirectoryMissing { volume, directory } => {
                write!(f, "{volume}: {directory} does not exist")
            }
            Reason::NoMatch {
                volume,
                directory,
                pattern,
            } => write!(f, "{volume}: no file in {directory} matches {pattern}"),
            Reason::JournalMayHoldMatch {
                volume,
                directory,
                pattern,
            } => write!(
                f,
                "{volume}: Windows's unfinished updates touch {directory}, and kaifuku cannot replay them: it cannot tell whether a file matching {pattern} is there. \
                 Fixing with consent to discard the journal (--discard-journal) settles it: after the discard, what is on the disk is the truth"
            ),
            Reason::VolumeHasProblems { volume, count } => {
                write!(f, "{volume}: {count} problem(s)")
            }
            Reason::NoNtfsVolume => f.write_str("the image holds no NTFS volume"),
            Reason::CheckedClean { volumes } => {
                write!(f, "{volumes} NTFS volume(s) checked, no problem found")
            }
        }
    }
}

/// Why one volume could not be examined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum VolumeProblem {
    /// The partition table puts the partition (partly) outside the disk.
    OutsideDisk {
        /// The partition's number, when the message names it (inspect does; check names the
        /// volume before the message).
        partition: Option<u32>,
        /// What the reader said.
        detail: String,
    },
    /// A Windows data partition is too short to hold a boot sector, or it cannot be read.
    WindowsPartitionUnreadable {
        /// What the reader said when the first sector could not be read (a damaged container
        /// block, a read error); absent for a partition too short to hold one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A Windows data partition's first sector is no boot sector of a file system kaifuku
    /// knows, so the volume cannot be read.
    WindowsBootSectorUnreadable {
        /// The sector's OEM id as printable text, or `None` when the sector is all zeros.
        oem_id: Option<String>,
        /// An intact backup NTFS boot sector lies at the end of the partition.
        backup_intact: bool,
    },
    /// The NTFS volume could not be read, or holds something kaifuku does not handle.
    Ntfs {
        /// What the NTFS layer said.
        error: NtfsProblem,
    },
    /// A BitLocker volume that the keys given did not unlock.
    #[serde(rename = "bitlocker")]
    BitLocker {
        /// Why.
        problem: BitLockerProblem,
    },
}

impl VolumeProblem {
    /// Whether this is a refusal (something kaifuku does not handle) rather than damage.
    pub fn is_refusal(&self) -> bool {
        match self {
            VolumeProblem::Ntfs { error } => error.is_refusal(),
            VolumeProblem::BitLocker { problem } => problem.is_refusal(),
            VolumeProblem::OutsideDisk { .. }
            | VolumeProblem::WindowsPartitionUnreadable { .. }
            | VolumeProblem::WindowsBootSectorUnreadable { .. } => false,
        }
    }
}

impl fmt::Display for VolumeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeProblem::OutsideDisk {
                partition: Some(n),
                detail,
            } => write!(f, "partition {n} lies outside the disk: {detail}"),
            VolumeProblem::OutsideDisk {
                partition: None,
                detail,
            } => write!(f, "the partition lies outside the disk: {detail}"),
            VolumeProblem::WindowsPartitionUnreadable { detail: None } => {
                f.write_str("this Windows data partition is too short or cannot be read")
            }
            VolumeProblem::WindowsPartitionUnreadable {
                detail: Some(detail),
            } => {
                write!(f, "this Windows data partition cannot be read: {detail}")
            }
            VolumeProblem::WindowsBootSectorUnreadable {
                oem_id,
                backup_intact,
            } => {
                f.write_str("this Windows data partition's boot sector ")?;
                match oem_id {
                    None => f.write_str("is all zeros")?,
                    Some(oem) => write!(
                        f,
                        "is not the boot sector of a file system kaifuku knows (OEM id \"{oem}\")"
                    )?,
                }
                f.write_str(", so its volume cannot be read. ")?;
                f.write_str(if *backup_intact {
                    "An intact backup NTFS boot sector lies at the end of the partition: chkdsk in Windows Recovery (or `ntfsfix` on Linux) can restore the first one; then try again"
                } else {
                    "The volume cannot be read; check that this is the right image and that it was exported completely"
                })
            }
            VolumeProblem::Ntfs { error } => write!(f, "{error}"),
            VolumeProblem::BitLocker { problem } => write!(f, "{problem}"),
        }
    }
}

/// Why a BitLocker volume was not unlocked or cannot be written, as a value the report keeps.
/// No variant carries key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum BitLockerProblem {
    /// The recovery password is malformed (wrong length, a character that is no digit, or a
    /// mistyped group); nothing was tried.
    RecoveryPassword {
        /// What is wrong with it.
        fault: RecoveryPasswordFault,
    },
    /// The key was tried on every protector of its kind and opened none.
    WrongKey {
        /// What kind of key was given.
        protection: ProtectionType,
        /// How many protectors were tried.
        tried: usize,
    },
    /// The volume has no protector of the kind given.
    NoSuchProtector {
        /// The kind given.
        wanted: ProtectionType,
        /// The kinds the volume has, in words.
        available: String,
    },
    /// Only protectors that need the machine (TPM, smart card): the recovery password is needed.
    NeedsRecoveryPassword {
        /// The kinds the volume has, in words.
        available: String,
    },
    /// The key list holds no key for this volume's recovery password protectors.
    NotInKeyList {
        /// The protectors' IDs.
        ids: Vec<String>,
    },
    /// The volume is still being encrypted (encrypt-on-write conversion).
    EncryptOnWrite,
    /// A BitLocker version or encryption method kaifuku does not read.
    Unsupported {
        /// What, in English.
        detail: String,
    },
    /// The BitLocker metadata is damaged.
    Damaged {
        /// What, in English.
        detail: String,
    },
    /// A change would land in BitLocker's own metadata area.
    WriteIntoMetadata {
        /// Offset in the decrypted volume.
        offset: u64,
    },
    /// The volume could not be read.
    ReadFailed {
        /// What the reader said.
        detail: String,
    },
}

impl BitLockerProblem {
    /// Whether this is a refusal (a key that does not fit, something not handled) rather than
    /// damage or a failed read.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            BitLockerProblem::Damaged { .. } | BitLockerProblem::ReadFailed { .. }
        )
    }
}

impl fmt::Display for BitLockerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitLockerProblem::RecoveryPassword { fault } => write!(f, "BitLocker: {fault}"),
            BitLockerProblem::WrongKey { protection, tried } => write!(
                f,
                "BitLocker: the {protection} given does not unlock this volume (tried {tried} protector(s)); check it and try again"
            ),
            BitLockerProblem::NoSuchProtector { wanted, available } => write!(
                f,
                "BitLocker: the volume has no {wanted} protector (it has: {available}); give one of those"
            ),
            BitLockerProblem::NeedsRecoveryPassword { available } => write!(
                f,
                "BitLocker: the volume is protected only by {available}, which cannot be used offline; give its 48-digit recovery password"
            ),
            BitLockerProblem::NotInKeyList { ids } => write!(
                f,
                "BitLocker: the key list has no key for this volume's recovery password protector(s) {}; export the keys for this machine",
                ids.join(", ")
            ),
            BitLockerProblem::EncryptOnWrite => f.write_str(
                "BitLocker: the volume is still being encrypted (encrypt-on-write conversion in progress); let Windows finish or resume it (`manage-bde -resume`), or repair the machine from Windows' recovery environment",
            ),
            BitLockerProblem::Unsupported { detail } | BitLockerProblem::Damaged { detail } => {
                f.write_str(detail)
            }
            BitLockerProblem::WriteIntoMetadata { offset } => write!(
                f,
                "BitLocker: a change at byte {offset:#x} of the decrypted volume falls in BitLocker's own metadata area; refused"
            ),
            BitLockerProblem::ReadFailed { detail } => f.write_str(detail),
        }
    }
}

/// What the NTFS layer reported: [`NtfsError`] as a value that can be kept, compared and
/// serialised. Its typed findings are kept as they are ([`Damage`] with the damaged structure and
/// its location, [`BootSectorFault`], [`Unsupported`], [`Refusal`], each with its own `"code"`);
/// only a failed read carries the reader's message instead of the `io::Error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum NtfsProblem {
    /// The boot sector does not carry the NTFS OEM id.
    NotNtfs,
    /// The volume is encrypted with BitLocker.
    #[serde(rename = "bitlocker")]
    BitLocker,
    /// The boot sector says NTFS but its geometry is impossible.
    BadBootSector {
        /// What is wrong with it.
        fault: BootSectorFault,
    },
    /// An on-disk structure is damaged.
    Damaged {
        /// Which structure, where, and what is wrong with it.
        damage: Damage,
    },
    /// Something NTFS allows that kaifuku does not handle (yet): index splits and merges, a
    /// file with an attribute list, a link kaifuku cannot follow, ...
    Unsupported {
        /// What.
        unsupported: Unsupported,
    },
    /// A request kaifuku will not carry out, whatever the version: deleting a system file, a
    /// DOS name whose long name is ambiguous.
    Refused {
        /// What and why.
        refusal: Refusal,
    },
    /// The image could not be read.
    ReadFailed {
        /// What was being read.
        what: String,
        /// The read error.
        detail: String,
    },
    /// The `ntfs` crate refused what it was asked to read.
    ReaderFailed {
        /// Its message.
        detail: String,
    },
}

impl NtfsProblem {
    /// Whether this is a refusal (something kaifuku does not or will not handle) rather than
    /// damage or a failed read.
    pub fn is_refusal(&self) -> bool {
        match self {
            NtfsProblem::BitLocker
            | NtfsProblem::Unsupported { .. }
            | NtfsProblem::Refused { .. } => true,
            NtfsProblem::NotNtfs
            | NtfsProblem::BadBootSector { .. }
            | NtfsProblem::Damaged { .. }
            | NtfsProblem::ReadFailed { .. }
            | NtfsProblem::ReaderFailed { .. } => false,
        }
    }
}

impl From<NtfsError> for NtfsProblem {
    fn from(e: NtfsError) -> Self {
        match e {
            NtfsError::NotNtfs => NtfsProblem::NotNtfs,
            NtfsError::BitLocker => NtfsProblem::BitLocker,
            NtfsError::BadBootSector(fault) => NtfsProblem::BadBootSector { fault },
            NtfsError::Corrupt(damage) => NtfsProblem::Damaged { damage },
            NtfsError::Unsupported(unsupported) => NtfsProblem::Unsupported { unsupported },
            NtfsError::Refused(refusal) => NtfsProblem::Refused { refusal },
            NtfsError::Io { what, source } => NtfsProblem::ReadFailed {
                what: what.to_string(),
                detail: source.to_string(),
            },
            NtfsError::Reader(detail) => NtfsProblem::ReaderFailed { detail },
        }
    }
}

impl fmt::Display for NtfsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The NTFS layer's own words, through its own type.
        let same = match self {
            NtfsProblem::NotNtfs => NtfsError::NotNtfs,
            NtfsProblem::BitLocker => NtfsError::BitLocker,
            NtfsProblem::BadBootSector { fault } => NtfsError::BadBootSector(fault.clone()),
            NtfsProblem::Damaged { damage } => NtfsError::Corrupt(damage.clone()),
            NtfsProblem::Unsupported { unsupported } => NtfsError::Unsupported(unsupported.clone()),
            NtfsProblem::Refused { refusal } => NtfsError::Refused(refusal.clone()),
            NtfsProblem::ReadFailed { what, detail } => {
                return write!(f, "reading the image failed while {what}: {detail}")
            }
            NtfsProblem::ReaderFailed { detail } => NtfsError::Reader(detail.clone()),
        };
        write!(f, "{same}")
    }
}

/// Why the image file does not open as a disk image, or a plan cannot be mapped into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum ContainerProblem {
    /// A format kaifuku recognises but does not read (VMDK): convert it first.
    UnsupportedFormat {
        /// Which format.
        format: OtherFormat,
        /// The name `qemu-img -f` uses for it.
        qemu_name: String,
    },
    /// A differencing VHD: it holds only changes on top of a parent image.
    DifferencingVhd,
    /// A change would land in an unallocated block of a dynamic VHD, and a new block would lie past
    /// the 2 TiB its block table reaches.
    PatchInUnallocatedBlock {
        /// Offset of the change on the virtual disk.
        offset: u64,
        /// The VHD block.
        block: u64,
    },
    /// A qcow2 image using a feature kaifuku does not handle (encryption, a backing file, the
    /// dirty or corrupt bit, ...): the message says what to do.
    Qcow2Unsupported {
        /// Which feature.
        feature: Qcow2Feature,
    },
    /// A change would land in a qcow2 cluster that cannot be written in place (unallocated, zero,
    /// compressed, or shared with a snapshot).
    PatchInQcow2Cluster {
        /// Offset of the change on the virtual disk.
        offset: u64,
        /// The guest cluster.
        cluster: u64,
        /// What kind of cluster it is.
        kind: Qcow2ClusterKind,
    },
    /// A differencing VHDX: it holds only changes on top of a parent image.
    DifferencingVhdx,
    /// A VMDK child disk (snapshot or linked clone): it holds only changes on top of a parent.
    VmdkChild {
        /// The parent the descriptor names, if any.
        parent: String,
    },
    /// A change would land in a VMDK grain that has no space in the file (kaifuku does not
    /// allocate).
    PatchInUnallocatedVmdkGrain {
        /// Offset of the change on the virtual disk.
        offset: u64,
        /// The grain.
        grain: u64,
    },
    /// The image file could not be read.
    ReadFailed {
        /// The container layer's message.
        detail: String,
    },
    /// The container's own structures (VHD footer, header, block table) are damaged or the file
    /// is truncated.
    Damaged {
        /// The container layer's message: which structure, where, and what to do.
        detail: String,
    },
}

impl ContainerProblem {
    /// Whether this is a refusal with advice (the image is intact but not something kaifuku
    /// handles) rather than damage or a failed read.
    pub fn is_unsupported(&self) -> bool {
        match self {
            ContainerProblem::UnsupportedFormat { .. }
            | ContainerProblem::DifferencingVhd
            | ContainerProblem::PatchInUnallocatedBlock { .. }
            | ContainerProblem::Qcow2Unsupported { .. }
            | ContainerProblem::PatchInQcow2Cluster { .. } => true,
            ContainerProblem::DifferencingVhdx => true,
            ContainerProblem::VmdkChild { .. }
            | ContainerProblem::PatchInUnallocatedVmdkGrain { .. } => true,
            ContainerProblem::ReadFailed { .. } | ContainerProblem::Damaged { .. } => false,
        }
    }
}

impl From<&ContainerError> for ContainerProblem {
    fn from(e: &ContainerError) -> Self {
        match e {
            ContainerError::UnsupportedFormat(f) => ContainerProblem::UnsupportedFormat {
                format: *f,
                qemu_name: f.qemu_name().to_string(),
            },
            ContainerError::DifferencingVhd => ContainerProblem::DifferencingVhd,
            ContainerError::PatchInUnallocatedBlock { offset, block } => {
                ContainerProblem::PatchInUnallocatedBlock {
                    offset: *offset,
                    block: *block,
                }
            }
            ContainerError::Qcow2Unsupported(feature) => {
                ContainerProblem::Qcow2Unsupported { feature: *feature }
            }
            ContainerError::PatchInQcow2Cluster {
                offset,
                cluster,
                kind,
            } => ContainerProblem::PatchInQcow2Cluster {
                offset: *offset,
                cluster: *cluster,
                kind: *kind,
            },
            ContainerError::DifferencingVhdx => ContainerProblem::DifferencingVhdx,
            ContainerError::VmdkChild { parent } => ContainerProblem::VmdkChild {
                parent: parent.clone(),
            },
            ContainerError::PatchInUnallocatedVmdkGrain { offset, grain } => {
                ContainerProblem::PatchInUnallocatedVmdkGrain {
                    offset: *offset,
                    grain: *grain,
                }
            }
            ContainerError::Read { .. } => ContainerProblem::ReadFailed {
                detail: e.to_string(),
            },
            _ => ContainerProblem::Damaged {
                detail: e.to_string(),
            },
        }
    }
}

impl fmt::Display for ContainerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The container layer's own words, through its own type where the facts rebuild it.
        match self {
            ContainerProblem::UnsupportedFormat { format, .. } => {
                write!(f, "{}", ContainerError::UnsupportedFormat(*format))
            }
            ContainerProblem::DifferencingVhd => write!(f, "{}", ContainerError::DifferencingVhd),
            ContainerProblem::PatchInUnallocatedBlock { offset, block } => write!(
                f,
                "{}",
                ContainerError::PatchInUnallocatedBlock {
                    offset: *offset,
                    block: *block
                }
            ),
            ContainerProblem::Qcow2Unsupported { feature } => {
                write!(f, "{}", ContainerError::Qcow2Unsupported(*feature))
            }
            ContainerProblem::PatchInQcow2Cluster {
                offset,
                cluster,
                kind,
            } => write!(
                f,
                "{}",
                ContainerError::PatchInQcow2Cluster {
                    offset: *offset,
                    cluster: *cluster,
                    kind: *kind
                }
            ),
            ContainerProblem::DifferencingVhdx => write!(f, "{}", ContainerError::DifferencingVhdx),
            ContainerProblem::VmdkChild { parent } => write!(
                f,
                "{}",
                ContainerError::VmdkChild {
                    parent: parent.clone()
                }
            ),
            ContainerProblem::PatchInUnallocatedVmdkGrain { offset, grain } => write!(
                f,
                "{}",
                ContainerError::PatchInUnallocatedVmdkGrain {
                    offset: *offset,
                    grain: *grain
                }
            ),
            ContainerProblem::ReadFailed { detail } | ContainerProblem::Damaged { detail } => {
                f.write_str(detail)
            }
        }
    }
}

/// Why the partition table cannot be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum PartitionProblem {
    /// The disk is smaller than one sector.
    TooSmall {
        /// Its size in bytes.
        size: u64,
    },
    /// The first sector is all zeros: no table and no boot sector.
    NoTable,
    /// The disk could not be read.
    ReadFailed {
        /// The partition layer's message.
        detail: String,
    },
    /// A GPT layout kaifuku does not support.
    Unsupported {
        /// The partition layer's message.
        detail: String,
    },
    /// The table is damaged (both GPT copies, an MBR extended-partition chain) or unrecognisable.
    Damaged {
        /// The partition layer's message: what is damaged and what to do.
        detail: String,
    },
}

impl From<&PartitionError> for PartitionProblem {
    fn from(e: &PartitionError) -> Self {
        match e {
            PartitionError::TooSmall { size } => PartitionProblem::TooSmall { size: *size },
            PartitionError::NoTable => PartitionProblem::NoTable,
            PartitionError::Read { .. } => PartitionProblem::ReadFailed {
                detail: e.to_string(),
            },
            PartitionError::GptUnsupported { .. } => PartitionProblem::Unsupported {
                detail: e.to_string(),
            },
            _ => PartitionProblem::Damaged {
                detail: e.to_string(),
            },
        }
    }
}

impl fmt::Display for PartitionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionProblem::TooSmall { size } => {
                write!(f, "{}", PartitionError::TooSmall { size: *size })
            }
            PartitionProblem::NoTable => write!(f, "{}", PartitionError::NoTable),
            PartitionProblem::ReadFailed { detail }
            | PartitionProblem::Unsupported { detail }
            | PartitionProblem::Damaged { detail } => f.write_str(detail),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the rule met, and what stops a fix

/// Something odd the rule met that does not stop it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum RuleNotice {
    /// A directory whose name matches the pattern: only files are deleted, so it stays.
    DirectorySkipped {
        /// Its path on the volume.
        path: String,
    },
    /// A junction or symbolic link on the rule's path was followed, as Windows would.
    LinkFollowed {
        /// The link's path on the volume.
        link: String,
        /// Where it leads.
        target: String,
    },
}

impl fmt::Display for RuleNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleNotice::DirectorySkipped { path } => {
                write!(f, "{path} is a directory, not a file: it is left alone")
            }
            RuleNotice::LinkFollowed { link, target } => write!(
                f,
                "{link} is a link to {target}; followed, as Windows would"
            ),
        }
    }
}

/// What stops a fix on a volume whose files match (listed by inspect before anything is planned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum Blocker {
    /// The volume is encrypted with BitLocker.
    #[serde(rename = "bitlocker")]
    BitLocker,
    /// The journal is not clean: Windows would replay it over an offline edit. A fix needs
    /// consent to discard it.
    JournalNotClean {
        /// What the journal's restart area says.
        state: LogState,
    },
    /// The journal is not clean, kaifuku cannot replay it, and its pending updates touch the
    /// rule's directory or a folder above it (or cannot be attributed, or the journal cannot be
    /// read): the rule found nothing, but a matching file may exist only in the journal. A fix
    /// needs consent to discard the journal; then what is on the disk is the truth.
    JournalMayHoldMatch {
        /// The rule's directory.
        directory: String,
        /// The rule's file-name pattern.
        pattern: String,
        /// MFT records of directories on the rule's path whose record, index blocks or index
        /// bitmap the pending updates change.
        records: Vec<u64>,
        /// Pending updates whose target kaifuku cannot attribute.
        unattributed: u32,
        /// The journal could not be read at all.
        unreadable: bool,
    },
    /// Windows is hibernated: resuming would overwrite an offline edit.
    Hibernated,
    /// Disk quotas are tracked: an offline delete would leave the accounting wrong.
    QuotaTracking,
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::BitLocker => write!(f, "{}", NtfsError::BitLocker),
            Blocker::JournalNotClean { state } => write!(
                f,
                "the NTFS journal ($LogFile) is {} — Windows would replay it over an offline edit; fixing needs consent to discard it (Windows then runs chkdsk at the next boot)",
                state.describe()
            ),
            Blocker::JournalMayHoldMatch {
                directory,
                pattern,
                records,
                unattributed,
                unreadable,
            } => {
                f.write_str("Windows's unfinished updates ")?;
                if *unreadable {
                    f.write_str("(in a journal kaifuku cannot read) may touch ")?;
                } else {
                    f.write_str("touch ")?;
                }
                write!(f, "{directory} or a folder above it")?;
                let mut said = Vec::new();
                if !records.is_empty() {
                    let numbers: Vec<String> = records.iter().map(u64::to_string).collect();
                    said.push(format!("MFT record(s) {}", numbers.join(", ")));
                }
                if *unattributed > 0 {
                    said.push(format!(
                        "{unattributed} update(s) kaifuku cannot attribute"
                    ));
                }
                if !said.is_empty() {
                    write!(f, " ({})", said.join("; "))?;
                }
                write!(
                    f,
                    ", and kaifuku cannot replay them: it cannot tell whether a file matching {pattern} is there. \
                     Fixing needs consent to discard the journal (Windows then runs chkdsk at the next boot); after the discard, what is on the disk is the truth"
                )
            }
            Blocker::Hibernated => f.write_str(
                "Windows is hibernated (hiberfil.sys holds a saved session that would overwrite the edit on resume); boot Windows and shut it down fully, or delete the hibernation file in Windows, first",
            ),
            Blocker::QuotaTracking => f.write_str(
                "disk quotas are tracked on this volume, and an offline delete would leave the quota accounting wrong; turn quota tracking off in Windows, or delete the file from Windows Recovery",
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The journal of an unclean volume

/// A journal the fix leaves for Windows to replay at its next start: kaifuku cannot replay it,
/// and the analysis proves that none of its pending updates touches what the fix changes (the
/// deleted files' records, their directory's index, the `$MFT:$BITMAP` and `$Bitmap` pages the
/// fix writes), and that every one of them could be attributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalLeftToWindows {
    /// The transactions Windows will finish (committed) or take back (unfinished).
    pub updates: u64,
}

impl fmt::Display for JournalLeftToWindows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Windows will finish its {} pending update(s) at its next start; they do not touch what kaifuku changes, so the journal is left as it is",
            self.updates
        )
    }
}

/// A touched MFT record and, where it could be resolved cheaply and safely, its path now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchedRecord {
    /// The record number.
    pub record: u64,
    /// Its path on the volume as the disk shows it now (`None`: not resolved, not in use, or not
    /// reachable from the root).
    pub path: Option<String>,
}

impl fmt::Display for TouchedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} ({p})", self.record),
            None => write!(f, "{}", self.record),
        }
    }
}

/// What the journal of a volume that is not clean holds: what Windows would replay at its next
/// mount (`docs/logfile-format.md` §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalSummary {
    /// The log file service version of the restart page used.
    pub version: LfsVersion,
    /// The checkpoint (client restart record) recovery starts from.
    pub checkpoint_lsn: u64,
    /// The restart area's current LSN.
    pub current_lsn: u64,
    /// Where redo would start.
    pub redo_lsn: u64,
    /// The last complete record.
    pub last_lsn: u64,
    /// Log records after the checkpoint's start.
    pub records_after_checkpoint: u64,
    /// Transactions that end committed and change pages: Windows redoes them.
    pub transactions_committed: u64,
    /// Transactions still open (or only prepared) that change pages: Windows undoes them.
    pub transactions_uncommitted: u64,
    /// MFT records the pending records change.
    pub file_records: Vec<TouchedRecord>,
    /// Index blocks they change.
    pub index_blocks: Vec<IndexBlock>,
    /// Clusters they change.
    pub lcn_ranges: Vec<LcnRange>,
    /// Bitmap bits they change.
    pub bitmap_ranges: Vec<BitRange>,
    /// Pending records whose target could not be resolved.
    pub unresolved: u32,
    /// Bytes of `$LogFile` read.
    pub bytes_read: u64,
    /// Whether the pending changes touch what the fix changes (when files match).
    pub overlap: Option<JournalOverlap>,
}

/// Up to `MAX_LISTED` items, then how many more.
struct Listed<'a, T>(&'a [T]);

const MAX_LISTED: usize = 8;

impl<T: fmt::Display> fmt::Display for Listed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, x) in self.0.iter().take(MAX_LISTED).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{x}")?;
        }
        if self.0.len() > MAX_LISTED {
            write!(f, " and {} more", self.0.len() - MAX_LISTED)?;
        }
        Ok(())
    }
}

/// A cluster range as `first` or `first–last`.
struct Clusters(u64, u64);

impl fmt::Display for Clusters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            0 | 1 => write!(f, "{}", self.0),
            n => write!(f, "{}–{}", self.0, self.0 + n - 1),
        }
    }
}

/// An index block as `record N $I30 VCN v`.
struct Block<'a>(&'a IndexBlock);

impl fmt::Display for Block<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "record {} {} VCN {}", b.record, b.name, b.vcn)?;
        if b.block_offset != 0 {
            write!(f, "+{}", b.block_offset)?;
        }
        Ok(())
    }
}

/// A bit range with the bitmap it is in.
struct Bits<'a>(&'a BitRange);

impl fmt::Display for Bits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        match &r.bitmap {
            Bitmap::Clusters => f.write_str("$Bitmap ")?,
            Bitmap::MftRecords => f.write_str("$MFT:$BITMAP ")?,
            Bitmap::IndexBlocks { record, name } => write!(f, "record {record} {name}:$BITMAP ")?,
            Bitmap::Other {
                record,
                attribute_type,
            } => write!(f, "record {record} attribute {attribute_type:#x} ")?,
        }
        write!(f, "{}", Clusters(r.first, r.count))
    }
}

impl fmt::Display for JournalSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = match self.version {
            LfsVersion::V1_1 => "1.1",
            LfsVersion::V2_0 => "2.0",
        };
        write!(
            f,
            "LFS {version}, checkpoint LSN {:#x}, current LSN {:#x}; {} log records after the checkpoint; transactions: {} committed, {} uncommitted",
            self.checkpoint_lsn,
            self.current_lsn,
            self.records_after_checkpoint,
            self.transactions_committed,
            self.transactions_uncommitted
        )?;
        if self.file_records.is_empty()
            && self.index_blocks.is_empty()
            && self.lcn_ranges.is_empty()
            && self.bitmap_ranges.is_empty()
            && self.unresolved == 0
        {
            return f.write_str("; the pending records change nothing on disk");
        }
        f.write_str("; the pending records change")?;
        let mut first = true;
        let mut part = |f: &mut fmt::Formatter<'_>| {
            let sep = if first { " " } else { "; " };
            first = false;
            f.write_str(sep)
        };
        if !self.file_records.is_empty() {
            part(f)?;
            write!(f, "MFT records {}", Listed(&self.file_records))?;
        }
        if !self.index_blocks.is_empty() {
            part(f)?;
            let blocks: Vec<Block> = self.index_blocks.iter().map(Block).collect();
            write!(f, "index blocks {}", Listed(&blocks))?;
        }
        if !self.lcn_ranges.is_empty() {
            part(f)?;
            let ranges: Vec<Clusters> = self
                .lcn_ranges
                .iter()
                .map(|r| Clusters(r.first, r.count))
                .collect();
            write!(f, "clusters {}", Listed(&ranges))?;
        }
        if !self.bitmap_ranges.is_empty() {
            part(f)?;
            let bits: Vec<Bits> = self.bitmap_ranges.iter().map(Bits).collect();
            write!(f, "bits {}", Listed(&bits))?;
        }
        if self.unresolved > 0 {
            part(f)?;
            write!(f, "{} records whose target is unknown", self.unresolved)?;
        }
        Ok(())
    }
}

/// What inspect found in the journal of a volume that is not clean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum JournalReport {
    /// The journal was read and analysed from its checkpoint.
    Analysed {
        /// What Windows would replay.
        journal: Box<JournalSummary>,
    },
    /// The restart area names no checkpoint to replay from (no client in use, or chkdsk made the
    /// log obsolete): nothing to replay, although the restart area is not marked clean.
    NoLiveLog,
    /// The journal could not be read: Windows could not replay it either and would run chkdsk.
    Unreadable {
        /// Why.
        error: NtfsProblem,
    },
}

impl fmt::Display for JournalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalReport::Analysed { journal } => write!(f, "{journal}"),
            JournalReport::NoLiveLog => f.write_str(
                "the journal names no checkpoint to replay from: Windows has nothing to replay",
            ),
            JournalReport::Unreadable { error } => write!(
                f,
                "the journal cannot be read, so what Windows would replay is unknown: {error}"
            ),
        }
    }
}

/// Whether the journal's pending changes touch what the fix changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum JournalOverlap {
    /// Nothing the journal changes is something the fix changes.
    NoOverlap,
    /// Some pending changes touch what the fix changes: a replay at the next boot would write
    /// over the fix there.
    Overlaps {
        /// MFT records both change.
        file_records: Vec<u64>,
        /// Blocks of the edited directories' indexes the journal changes.
        index_blocks: Vec<IndexBlock>,
        /// Pages (4096 bytes) of `$MFT:$BITMAP` both change.
        mft_bitmap_pages: Vec<u64>,
        /// Pages (4096 bytes) of `$Bitmap` both change.
        cluster_bitmap_pages: Vec<u64>,
        /// Clusters both write.
        clusters: Vec<LcnRange>,
    },
}

impl JournalOverlap {
    /// Whether anything overlaps.
    pub fn overlaps(&self) -> bool {
        matches!(self, JournalOverlap::Overlaps { .. })
    }
}

impl fmt::Display for JournalOverlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalOverlap::NoOverlap => f.write_str(
                "no pending journal change touches what the fix changes (its files' records, their directory's index, the $MFT:$BITMAP and $Bitmap pages it writes)",
            ),
            JournalOverlap::Overlaps {
                file_records,
                index_blocks,
                mft_bitmap_pages,
                cluster_bitmap_pages,
                clusters,
            } => {
                f.write_str("pending journal changes touch what the fix changes:")?;
                let mut parts: Vec<String> = Vec::new();
                if !file_records.is_empty() {
                    parts.push(format!("MFT records {}", Listed(file_records)));
                }
                if !index_blocks.is_empty() {
                    let blocks: Vec<Block> = index_blocks.iter().map(Block).collect();
                    parts.push(format!("index blocks {}", Listed(&blocks)));
                }
                if !mft_bitmap_pages.is_empty() {
                    parts.push(format!("$MFT:$BITMAP pages {}", Listed(mft_bitmap_pages)));
                }
                if !cluster_bitmap_pages.is_empty() {
                    parts.push(format!("$Bitmap pages {}", Listed(cluster_bitmap_pages)));
                }
                if !clusters.is_empty() {
                    let ranges: Vec<Clusters> =
                        clusters.iter().map(|r| Clusters(r.first, r.count)).collect();
                    parts.push(format!("clusters {}", Listed(&ranges)));
                }
                write!(f, " {}", parts.join("; "))
            }
        }
    }
}

/// Whether kaifuku can complete, as Windows would at its next start, the updates an interrupted
/// Windows left in the journal of a volume that is not clean (`docs/logfile-format.md` §10, §14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum JournalReplay {
    /// The replay is understood in full: the fix applies it first, and the rule runs on the
    /// volume as Windows would see it after its own recovery.
    Replayed {
        /// Finished transactions whose changes the journal holds (completed where the disk lacks
        /// them).
        committed: u32,
        /// Unfinished transactions (what of them reached the disk is taken back).
        uncommitted: u32,
        /// Log records redone.
        redone: u32,
        /// Log records undone.
        undone: u32,
    },
    /// The journal's LFS version is one kaifuku does not replay. Versions 1.1 and 2.0 are
    /// replayed; the reader refuses any other version before a replay is tried.
    UnsupportedVersion {
        /// The log's version.
        version: LfsVersion,
    },
    /// A log record or a state of the log the replay does not understand exactly.
    NotUnderstood {
        /// The log record's LSN.
        lsn: u64,
        /// Its operation's name.
        operation: String,
        /// What is not understood.
        detail: String,
    },
    /// The replay met damage or an unreadable structure.
    Failed {
        /// Why.
        error: NtfsProblem,
    },
}

impl JournalReplay {
    /// Whether the fix replays the journal.
    pub fn replayed(&self) -> bool {
        matches!(self, JournalReplay::Replayed { .. })
    }
}

impl fmt::Display for JournalReplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cannot = "kaifuku cannot complete the updates Windows left in the journal";
        match self {
            JournalReplay::Replayed {
                committed,
                uncommitted,
                ..
            } => {
                write!(
                    f,
                    "Windows was interrupted while updating this disk; kaifuku completes the {committed} update(s) Windows had committed"
                )?;
                if *uncommitted > 0 {
                    write!(f, " (and takes back {uncommitted} unfinished one(s))")?;
                }
                f.write_str(", as Windows would at its next start")
            }
            JournalReplay::UnsupportedVersion { version } => {
                let version = match version {
                    LfsVersion::V1_1 => "1.1",
                    LfsVersion::V2_0 => "2.0",
                };
                write!(
                    f,
                    "{cannot}: kaifuku does not replay LFS {version} journals (it replays versions 1.1 and 2.0)"
                )
            }
            JournalReplay::NotUnderstood {
                lsn,
                operation,
                detail,
            } => write!(
                f,
                "{cannot}: log record {lsn:#x} ({operation}) is not understood: {detail}"
            ),
            JournalReplay::Failed { error } => write!(f, "{cannot}: {error}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Windows registry (inspect reads it, never writes it)

/// The state of one registry hive of a Windows volume (`SYSTEM`, `SOFTWARE`), as its base block
/// says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum HiveState {
    /// The last write completed: both sequence numbers agree.
    Clean {
        /// The sequence number.
        sequence: u32,
    },
    /// Windows was writing the hive when it stopped (the primary sequence number differs from
    /// the secondary); it completes the hive from its `.LOG1`/`.LOG2` files at the next start.
    Dirty {
        /// Raised before the write.
        primary_sequence: u32,
        /// Set once the write completed.
        secondary_sequence: u32,
    },
    /// There is no such file on the volume.
    Missing,
    /// The file is there but NTFS could not read it.
    Unreadable {
        /// Why.
        error: NtfsProblem,
    },
    /// The file is not a hive kaifuku can read (damaged, cut short, another format).
    Damaged {
        /// What is wrong, and where in the file.
        error: HiveError,
    },
}

impl fmt::Display for HiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveState::Clean { sequence } => write!(f, "clean (sequence number {sequence})"),
            HiveState::Dirty {
                primary_sequence,
                secondary_sequence,
            } => write!(
                f,
                "DIRTY: Windows was writing it when it stopped (primary sequence number {primary_sequence}, secondary {secondary_sequence}); Windows completes it from its .LOG1/.LOG2 files at the next start"
            ),
            HiveState::Missing => f.write_str("not found"),
            HiveState::Unreadable { error } => write!(f, "cannot be read: {error}"),
            HiveState::Damaged { error } => write!(f, "cannot be read as a hive: {error}"),
        }
    }
}

/// Which Windows the `SOFTWARE` hive says this is (`Microsoft\Windows NT\CurrentVersion`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum WindowsVersion {
    /// `CurrentBuildNumber`, and `ProductName` when it is there.
    Build {
        /// The build number (14393: Windows Server 2016; 17763: Server 2019; 20348: Server 2022).
        build: u32,
        /// The product name, as Windows records it.
        product_name: Option<String>,
    },
    /// The `SOFTWARE` hive could not be read (its state says why).
    NoSoftwareHive,
    /// The hive holds no `CurrentBuildNumber` string.
    NotRecorded,
    /// `CurrentBuildNumber` is not a number.
    NotANumber {
        /// What it holds.
        text: String,
    },
    /// Reading the key or the value met damage.
    Damaged {
        /// What is wrong, and where in the file.
        error: HiveError,
    },
}

impl fmt::Display for WindowsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowsVersion::Build {
                build,
                product_name,
            } => {
                write!(f, "build {build}")?;
                match product_name {
                    Some(p) => write!(f, " ({p})"),
                    None => Ok(()),
                }
            }
            WindowsVersion::NoSoftwareHive => {
                f.write_str("build unknown: there is no readable SOFTWARE hive")
            }
            WindowsVersion::NotRecorded => {
                f.write_str("build unknown: the SOFTWARE hive records no CurrentBuildNumber")
            }
            WindowsVersion::NotANumber { text } => {
                write!(
                    f,
                    "build unknown: CurrentBuildNumber is {text:?}, not a number"
                )
            }
            WindowsVersion::Damaged { error } => write!(f, "build unknown: {error}"),
        }
    }
}

/// A rule of the set that did not run on a volume, and why (`"skipped_rules"` of a volume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedRule {
    /// The rule's key, e.g. `registry-txr-log`.
    pub rule_id: String,
    /// Why it did not run.
    pub why: RuleSkip,
}

impl fmt::Display for SkippedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule_id, self.why)
    }
}

/// Why a rule gated on the Windows build did not run on a Windows volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum RuleSkip {
    /// The `SOFTWARE` hive records an older build than the rule needs.
    BuildBelow {
        /// The volume's build.
        build: u32,
        /// The first build the rule runs on.
        needs: u32,
    },
    /// The build could not be read, so the rule's gate cannot be passed.
    BuildUnknown {
        /// What the registry gave instead of a build.
        version: WindowsVersion,
        /// The first build the rule runs on.
        needs: u32,
    },
}

impl fmt::Display for RuleSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleSkip::BuildBelow { build, needs } => write!(
                f,
                "Windows build {build} is older than build {needs}, the first this rule is for; nothing of it is deleted"
            ),
            RuleSkip::BuildUnknown { version, needs } => write!(
                f,
                "the rule is for Windows build {needs} or later and cannot be checked here ({version}); nothing of it is deleted"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Planning a fix

/// Why no fix was planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum FixError {
    /// Inspection found nothing to fix.
    #[error("nothing to fix: {}", Joined(.reasons))]
    NothingToFix {
        /// Why (what inspection concluded).
        reasons: Vec<Reason>,
    },
    /// The fix is refused: something kaifuku does not or will not do, or that needs the user
    /// first.
    #[error("refused: {refusal}")]
    Refused {
        /// Why.
        refusal: FixRefusal,
    },
    /// Planning or verifying the fix failed (damage, a failed read, a plan that does not verify).
    #[error("{failure}")]
    Failed {
        /// Why.
        failure: FixFailure,
    },
}

/// Why a fix is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum FixRefusal {
    /// Inspection refused the image (nothing matched where it could look).
    Inspect {
        /// What inspection concluded.
        reasons: Vec<Reason>,
    },
    /// A volume with matches is blocked (hibernation, quota tracking, an unclean journal without
    /// consent).
    Blocked {
        /// Which volume.
        volume: VolumeName,
        /// What blocks it.
        blocker: Blocker,
    },
    /// The NTFS layer refused or does not support the edit.
    Ntfs {
        /// Which volume.
        volume: VolumeName,
        /// The file being deleted, when the refusal concerns one.
        file: Option<String>,
        /// What it said.
        error: NtfsProblem,
    },
    /// The fix would discard the journal, and `$MFT` holds records of files matching the rule
    /// in the rule's directory that their header marks in use while `$MFT:$BITMAP` marks them
    /// free and no index lists them: what a crash leaves half-created. chkdsk, which runs after
    /// the discard, may link them back into the folder, so the file would come back.
    ChkdskWouldRestore {
        /// Which volume.
        volume: VolumeName,
        /// The rule's directory.
        directory: String,
        /// The records and their names.
        files: Vec<RestorableFile>,
    },
}

/// A file record chkdsk may link back into its folder: in use by its header, free in
/// `$MFT:$BITMAP`, listed by no index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorableFile {
    /// The MFT record number.
    pub record: u64,
    /// Its name in the rule's directory.
    pub name: String,
}

impl fmt::Display for FixRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixRefusal::Inspect { reasons } => write!(f, "{}", Joined(reasons)),
            // A refusal says what to do now, more directly than the blocker listed by inspect.
            FixRefusal::Blocked { volume, blocker } => match blocker {
                Blocker::Hibernated => write!(
                    f,
                    "{volume}: Windows is hibernated; resuming would overwrite any offline edit. Boot Windows and shut it down fully (or remove the hibernation file in Windows), then try again"
                ),
                Blocker::JournalNotClean { state } => write!(
                    f,
                    "{volume}: the NTFS journal is not clean ({}), as after a crash. Windows would replay it over an offline edit. \
                     Re-run with --discard-journal to reset the journal and mark the volume dirty so Windows runs chkdsk at the next boot \
                     (the last moments before the crash may be lost; chkdsk repairs what they left half-done)",
                    state.describe()
                ),
                Blocker::BitLocker | Blocker::QuotaTracking | Blocker::JournalMayHoldMatch { .. } => {
                    write!(f, "{volume}: {blocker}")
                }
            },
            FixRefusal::Ntfs {
                volume,
                file: Some(file),
                error,
            } => write!(f, "{volume}: {file}: {error}"),
            FixRefusal::Ntfs {
                volume,
                file: None,
                error,
            } => write!(f, "{volume}: {error}"),
            FixRefusal::ChkdskWouldRestore {
                volume,
                directory,
                files,
            } => {
                let listed: Vec<String> = files
                    .iter()
                    .map(|file| format!("{} (MFT record {})", file.name, file.record))
                    .collect();
                write!(
                    f,
                    "{volume}: {directory} does not list {}, but its MFT record is marked in use: Windows was creating it when it crashed. \
                     Discarding the journal makes Windows run chkdsk, which may put it back into the folder. Nothing was written; \
                     run chkdsk /f on the volume from Windows Recovery (it finishes the journal and re-links the file), then run kaifuku again",
                    listed.join(", ")
                )
            }
        }
    }
}

/// A structure the fix's own verification checks on the patched volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum Checked {
    /// The MFT records the fix changed.
    ChangedRecords,
    /// `$MFT:$BITMAP`, for the freed records.
    MftBitmap,
    /// `$Bitmap`, for the freed clusters.
    Bitmap,
    /// The index of a directory the fix edited.
    EditedDirectory,
    /// `$Extend\$ObjId:$O` / `$Extend\$Reparse:$R`, when the fix removed a key from them.
    SideIndexes,
}

impl Checked {
    /// Short words for "checking … failed".
    fn short(self) -> &'static str {
        match self {
            Checked::ChangedRecords => "records",
            Checked::MftBitmap => "$MFT:$BITMAP",
            Checked::Bitmap => "$Bitmap",
            Checked::EditedDirectory => "the directory",
            Checked::SideIndexes => "$ObjId/$Reparse",
        }
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Checked::ChangedRecords => "the changed MFT records",
            Checked::MftBitmap => "$MFT:$BITMAP",
            Checked::Bitmap => "$Bitmap",
            Checked::EditedDirectory => "the edited directory index",
            Checked::SideIndexes => "the edited $Extend\\$ObjId / $Extend\\$Reparse index",
        })
    }
}

/// Why planning or verifying a fix failed. Nothing was written in any case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum FixFailure {
    /// Inspection found damage or could not read the image.
    Inspect {
        /// What inspection concluded.
        reasons: Vec<Reason>,
    },
    /// The volume's partition overlaps another: a write could change the other one.
    PartitionsOverlap {
        /// Which volume.
        volume: VolumeName,
        /// The overlap, as the partition reader reports it.
        notice: NoticeKind,
    },
    /// The NTFS layer failed while editing (damage, a failed read).
    Ntfs {
        /// Which volume.
        volume: VolumeName,
        /// The file being deleted, when the failure concerns one.
        file: Option<String>,
        /// What it said.
        error: NtfsProblem,
    },
    /// The directory inspect found the matches in is gone when the edit looks it up.
    DirectoryVanished {
        /// Which volume.
        volume: VolumeName,
        /// The directory.
        directory: String,
    },
    /// Records the fix must write through (`$MFT`, `$Bitmap`, the directory, ...) do not check
    /// clean before the edit.
    WriteTargetsDamaged {
        /// Which volume.
        volume: VolumeName,
        /// The first problems the checker found.
        problems: Vec<Problem>,
    },
    /// The patched volume does not open again.
    PatchedVolumeDoesNotOpen {
        /// Which volume.
        volume: VolumeName,
        /// What the NTFS layer said.
        error: NtfsProblem,
    },
    /// The rule cannot be run again on the patched volume.
    PatchedVolumeUnreadable {
        /// Which volume.
        volume: VolumeName,
        /// What the NTFS layer said.
        error: NtfsProblem,
    },
    /// A check of the patched volume could not run.
    CheckFailed {
        /// Which volume.
        volume: VolumeName,
        /// What was being checked.
        checked: Checked,
        /// What the NTFS layer said.
        error: NtfsProblem,
    },
    /// A check of the patched volume found problems.
    CheckFoundProblems {
        /// Which volume.
        volume: VolumeName,
        /// What was checked.
        checked: Checked,
        /// The first problems found.
        problems: Vec<Problem>,
    },
    /// The rule still finds files on the patched image.
    StillMatches {
        /// How many.
        count: usize,
    },
    /// A change overlaps the journal reset: the plan is inconsistent.
    PatchOverlapsJournalReset {
        /// The structure the change belongs to.
        label: ChangedStructure,
    },
    /// Reading the image failed while the changes were compared with it.
    ReadFailed {
        /// The read error.
        detail: String,
    },
    /// The changes cannot be mapped into writes of the image file.
    OutputNotMappable {
        /// Why.
        problem: ContainerProblem,
    },
    /// The changes on a decrypted BitLocker volume cannot be re-encrypted into its sectors.
    #[serde(rename = "bitlocker")]
    BitLocker {
        /// Which volume.
        volume: VolumeName,
        /// Why.
        problem: BitLockerProblem,
    },
    /// Something that cannot happen did (a bug): a volume's range no longer fits the disk.
    Internal {
        /// What.
        detail: String,
    },
}

impl fmt::Display for FixFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixFailure::Inspect { reasons } => write!(f, "{}", Joined(reasons)),
            FixFailure::PartitionsOverlap { volume, notice } => write!(
                f,
                "{volume}: {notice} Nothing was written: fix the partition table first (for example with the hypervisor's disk tools, or testdisk)"
            ),
            FixFailure::Ntfs {
                volume,
                file: Some(file),
                error,
            } => write!(f, "{volume}: {file}: {error}"),
            FixFailure::Ntfs {
                volume,
                file: None,
                error,
            } => write!(f, "{volume}: {error}"),
            FixFailure::DirectoryVanished { volume, directory } => {
                write!(f, "{volume}: {directory} vanished")
            }
            FixFailure::WriteTargetsDamaged { volume, problems } => write!(
                f,
                "{volume}: structures the fix must write are damaged ({}); nothing was written. Run chkdsk on the volume in Windows or Windows Recovery, then try again",
                ProblemMessages(problems)
            ),
            FixFailure::PatchedVolumeDoesNotOpen { volume, error } => {
                write!(f, "{volume}: the patched volume does not open: {error}")
            }
            FixFailure::PatchedVolumeUnreadable { volume, error } => {
                write!(f, "{volume}: re-reading the patched volume failed: {error}")
            }
            FixFailure::CheckFailed {
                volume,
                checked,
                error,
            } => write!(f, "{volume}: checking {} failed: {error}", checked.short()),
            FixFailure::CheckFoundProblems {
                volume,
                checked,
                problems,
            } => write!(
                f,
                "verification failed on {checked} of {volume}; nothing was written. Problems: {}",
                ProblemMessages(problems)
            ),
            FixFailure::StillMatches { count } => write!(
                f,
                "verification failed: the patched image still has {count} matching file(s); nothing was written"
            ),
            FixFailure::PatchOverlapsJournalReset { label } => write!(
                f,
                "{label} overlaps the journal reset; refusing an inconsistent plan"
            ),
            FixFailure::ReadFailed { detail } | FixFailure::Internal { detail } => {
                f.write_str(detail)
            }
            FixFailure::OutputNotMappable { problem } => write!(
                f,
                "cannot map the changes into the image file: {problem}. Or write the fixed disk \
                 to a new fixed VHD, which needs no change to this image's own tables: kaifuku fix \
                 IMAGE -o OUT.vhd --output-format vhd-fixed"
            ),
            FixFailure::BitLocker { volume, problem } => write!(f, "{volume}: {problem}"),
        }
    }
}

/// What the plan's own verification confirmed on the patched view, before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum PlanCheck {
    /// The ownership proof: a scan of `$MFT` showed every freed or written cluster range belongs
    /// to its own structure alone.
    OwnershipProven {
        /// Which volume.
        volume: VolumeName,
        /// In-use MFT records scanned.
        records_scanned: u64,
        /// Bytes of `$MFT` read.
        bytes_read: u64,
        /// Cluster ranges proven.
        claims_proven: u64,
    },
    /// The rule, run again on the patched volume, finds this many files (0).
    RuleFindsAfterFix {
        /// Which volume.
        volume: VolumeName,
        /// How many files.
        count: usize,
    },
    /// The invariant checker passes on everything the edit touched.
    InvariantsPass {
        /// Which volume.
        volume: VolumeName,
        /// MFT records checked.
        records: usize,
        /// Freed cluster runs checked in `$Bitmap`.
        freed_runs: usize,
        /// Directory indexes checked.
        directories: usize,
    },
    /// The side indexes the fix removed keys from, read again from scratch, are sound and no
    /// entry refers to a freed record.
    SideIndexesClean {
        /// Which volume.
        volume: VolumeName,
        /// The indexes (`$Extend\$ObjId:$O`, `$Extend\$Reparse:$R`).
        indexes: Vec<String>,
    },
    /// The journal the fix replayed reads as clean on the patched volume, so Windows has nothing
    /// left to replay.
    JournalClean {
        /// Which volume.
        volume: VolumeName,
    },
}

impl fmt::Display for PlanCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanCheck::OwnershipProven {
                volume,
                records_scanned,
                bytes_read,
                claims_proven,
            } => write!(
                f,
                "{volume}: {records_scanned} in-use MFT record(s) scanned ({} of $MFT): the {claims_proven} cluster range(s) freed or written belong to their own structures alone",
                crate::human::size(*bytes_read)
            ),
            PlanCheck::RuleFindsAfterFix { volume, count } => {
                write!(f, "{volume}: the rule finds {count} file(s) after the fix")
            }
            PlanCheck::InvariantsPass {
                volume,
                records,
                freed_runs,
                directories,
            } => write!(
                f,
                "{volume}: invariant checks pass on {records} MFT record(s), their $MFT:$BITMAP bits, {freed_runs} freed cluster run(s) and {directories} directory index(es)"
            ),
            PlanCheck::SideIndexesClean { volume, indexes } => write!(
                f,
                "{volume}: {} read again: sound, and no entry refers to a deleted file",
                indexes.join(" and ")
            ),
            PlanCheck::JournalClean { volume } => write!(
                f,
                "{volume}: the journal reads as clean after the replay: Windows has nothing left to replay"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Verifying a written output

/// One thing the verification of a written output confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum OutputCheck {
    /// The container opens again with the same format and virtual size.
    ContainerSame {
        /// The container format.
        format: Format,
        /// The virtual disk's size in bytes.
        virtual_size: u64,
    },
    /// The output, written in another container than the input's, opens as that container with
    /// the virtual disk at least as large as the input's.
    ContainerConverted {
        /// The output's container format.
        format: Format,
        /// The output's virtual size in bytes.
        virtual_size: u64,
        /// The input's container format.
        original_format: Format,
        /// The input's virtual size in bytes.
        original_virtual_size: u64,
    },
    /// The rule finds this many files on the volume (always 0 when verification passes).
    RuleFinds {
        /// Index of the volume in the inspect report.
        volume: usize,
        /// How many files.
        count: usize,
    },
    /// The deleted file's MFT record is marked free.
    RecordFree {
        /// Index of the volume in the inspect report.
        volume: usize,
        /// The record.
        record: u64,
    },
    /// The journal reads as clean and the dirty flag is set (chkdsk at the next boot).
    JournalReset {
        /// Index of the volume in the inspect report.
        volume: usize,
    },
    /// The journal the fix replayed reads as clean (Windows has nothing left to replay).
    JournalReplayed {
        /// Index of the volume in the inspect report.
        volume: usize,
    },
    /// The invariant checker found nothing on the changed records and the directory.
    Invariants {
        /// Index of the volume in the inspect report.
        volume: usize,
    },
    /// The side indexes the fix removed keys from are sound and no entry refers to a freed
    /// record.
    SideIndexes {
        /// Index of the volume in the inspect report.
        volume: usize,
        /// The indexes (`$Extend\$ObjId:$O`, `$Extend\$Reparse:$R`).
        indexes: Vec<String>,
    },
}

impl fmt::Display for OutputCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputCheck::ContainerSame {
                format,
                virtual_size,
            } => write!(
                f,
                "the output opens as the same {format} of {virtual_size} bytes"
            ),
            OutputCheck::ContainerConverted {
                format,
                virtual_size,
                original_format,
                original_virtual_size,
            } => write!(
                f,
                "the output opens as a {format} of {virtual_size} bytes (the input: {original_format} of {original_virtual_size} bytes)"
            ),
            OutputCheck::RuleFinds { count, .. } => {
                write!(f, "the rule finds {count} file(s) in the output")
            }
            OutputCheck::RecordFree { record, .. } => {
                write!(f, "MFT record {record} is free in the output")
            }
            OutputCheck::JournalReset { .. } => write!(
                f,
                "the journal is reset and the volume marked for chkdsk in the output"
            ),
            OutputCheck::JournalReplayed { .. } => write!(
                f,
                "the journal is replayed and reads as clean in the output"
            ),
            OutputCheck::Invariants { .. } => write!(
                f,
                "the invariant checker finds nothing wrong with the changed records and directory in the output"
            ),
            OutputCheck::SideIndexes { indexes, .. } => write!(
                f,
                "{} in the output: sound, and no entry refers to a deleted file",
                indexes.join(" and ")
            ),
        }
    }
}

/// Why an output did not verify (nothing about it can be trusted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("the output does not verify: {0}")]
pub struct VerifyError(pub VerifyFailure);

/// What is wrong with a written output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum VerifyFailure {
    /// Nothing was planned, so there is nothing to verify against.
    NothingPlanned,
    /// The output does not open as a disk image.
    ContainerDoesNotOpen {
        /// Why.
        problem: ContainerProblem,
    },
    /// The original image had no readable container (there cannot be a plan for it).
    NoOriginalContainer,
    /// The output opens as another format or size than the original.
    ContainerDiffers {
        /// The output's format.
        format: Format,
        /// The output's virtual size.
        virtual_size: u64,
        /// The original's format.
        original_format: Format,
        /// The original's virtual size.
        original_virtual_size: u64,
    },
    /// A fixed volume is not found at its place in the output.
    VolumeGone {
        /// Which volume.
        volume: VolumeName,
    },
    /// A fixed volume cannot be examined in the output.
    VolumeUnreadable {
        /// Which volume.
        volume: VolumeName,
        /// Why.
        problem: VolumeProblem,
    },
    /// The NTFS layer failed on a fixed volume of the output.
    Ntfs {
        /// Which volume.
        volume: VolumeName,
        /// What it said.
        error: NtfsProblem,
    },
    /// A record the fix freed is still in use in the output.
    RecordInUse {
        /// Which volume.
        volume: VolumeName,
        /// The record.
        record: u64,
    },
    /// The invariant checker finds problems in the output.
    CheckerProblems {
        /// Which volume.
        volume: VolumeName,
        /// The first problems found.
        problems: Vec<Problem>,
    },
    /// A volume whose journal was reset or replayed is no NTFS volume in the output.
    NotNtfs {
        /// Which volume.
        volume: VolumeName,
    },
    /// After the journal reset the journal is not clean or the dirty flag is not set.
    JournalNotReset {
        /// Which volume.
        volume: VolumeName,
        /// The journal's state in the output.
        state: LogState,
        /// Whether the dirty flag is set in the output.
        dirty: bool,
    },
    /// After the journal replay the journal is not clean.
    JournalNotReplayed {
        /// Which volume.
        volume: VolumeName,
        /// The journal's state in the output.
        state: LogState,
    },
    /// The rule still finds files in the output, or the output cannot be inspected.
    StillMatches {
        /// How many files.
        count: usize,
        /// What inspecting the output concluded.
        reasons: Vec<Reason>,
    },
    /// Something that cannot happen did (a bug): a volume's range no longer fits the disk.
    Internal {
        /// What.
        detail: String,
    },
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::NothingPlanned => f.write_str("nothing was planned"),
            VerifyFailure::ContainerDoesNotOpen { problem } => write!(f, "{problem}"),
            VerifyFailure::NoOriginalContainer => {
                f.write_str("the original image had no readable container")
            }
            VerifyFailure::ContainerDiffers {
                format,
                virtual_size,
                original_format,
                original_virtual_size,
            } => write!(
                f,
                "it opens as {format} of {virtual_size} bytes, the original as {original_format} of {original_virtual_size} bytes"
            ),
            VerifyFailure::VolumeGone { volume } => write!(f, "{volume} is gone"),
            VerifyFailure::VolumeUnreadable { volume, problem } => {
                write!(f, "{volume}: {problem}")
            }
            VerifyFailure::Ntfs { volume, error } => write!(f, "{volume}: {error}"),
            VerifyFailure::RecordInUse { volume, record } => {
                write!(f, "{volume}: MFT record {record} is still in use")
            }
            VerifyFailure::CheckerProblems { volume, problems } => write!(
                f,
                "{volume}: the NTFS checker finds problems: {}",
                ProblemMessages(problems)
            ),
            VerifyFailure::NotNtfs { volume } => write!(f, "{volume}: not NTFS any more"),
            VerifyFailure::JournalNotReset {
                volume,
                state,
                dirty,
            } => write!(
                f,
                "{volume}: after the journal reset the journal is {} and the dirty flag is {}",
                state.describe(),
                if *dirty { "set" } else { "clear" }
            ),
            VerifyFailure::JournalNotReplayed { volume, state } => write!(
                f,
                "{volume}: after the journal replay the journal is {}",
                state.describe()
            ),
            VerifyFailure::StillMatches { count, reasons } => write!(
                f,
                "the rule still finds {count} file(s) ({})",
                Joined(reasons)
            ),
            VerifyFailure::Internal { detail } => f.write_str(detail),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Undo files

/// Why bytes are not a usable undo file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum UndoError {
    /// Shorter than the signature.
    #[error("too short to be a kaifuku undo file")]
    TooShort,
    /// Not a kaifuku undo file.
    #[error("not a kaifuku undo file (wrong signature)")]
    WrongSignature,
    /// A format version without a checksum, which cannot be verified.
    #[error("an undo file of format version {version}, written by an earlier kaifuku: that format has no checksum, so its contents cannot be verified and it is refused. Restore with the kaifuku release that wrote it, or start again from a copy of the original image")]
    OldVersion {
        /// The version found.
        version: u8,
    },
    /// A newer format version than this kaifuku reads.
    #[error("an undo file of format version {version}, newer than this kaifuku reads (version {}); use the kaifuku release that wrote it", crate::undo::VERSION)]
    NewerVersion {
        /// The version found.
        version: u8,
    },
    /// The whole-file checksum does not match: damaged or incomplete.
    #[error("the undo file is damaged or incomplete: its checksum does not match its contents (was it copied completely?). Nothing can be restored from it safely")]
    Checksum,
    /// The checksum matches but the contents contradict themselves.
    #[error("the undo file is inconsistent: {what}")]
    Inconsistent {
        /// What is inconsistent.
        what: UndoInconsistency,
    },
    /// The undo file could not be read.
    #[error("reading the undo file: {detail}")]
    Read {
        /// The read error.
        detail: String,
    },
}

/// How an undo file contradicts itself, or how a fix's writes could not make one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum UndoInconsistency {
    /// A planned write overlaps another or leaves the image file.
    WriteOutsideImage {
        /// The write's length.
        len: u64,
        /// Its file offset.
        offset: u64,
        /// The image file's size.
        file_size: u64,
    },
    /// The container kind code is not one kaifuku writes.
    UnknownContainerKind {
        /// The code found.
        kind: u64,
    },
    /// A range overlaps or precedes the one before (ranges are stored in order).
    RangeOutOfOrder {
        /// The range's image offset.
        offset: u64,
    },
    /// A range leaves the image the file was made for.
    RangeOutsideImage {
        /// The range's image offset.
        offset: u64,
        /// The image file's size.
        file_size: u64,
    },
    /// Bytes follow the last entry.
    TrailingBytes {
        /// How many.
        count: u64,
    },
    /// The original bytes do not match their stored hash.
    OriginalsHash,
    /// The entries run past the end of the file.
    EntriesDoNotFit,
    /// A planned fix would make the image file shorter, which an undo file cannot restore.
    ImageShortened {
        /// The image file's size now.
        file_size: u64,
        /// Its size after the fix.
        fixed_size: u64,
    },
    /// A version 3 file whose size after the fix is not larger than before.
    NotGrown {
        /// The image file's size before the fix.
        file_size: u64,
        /// Its size after the fix, as recorded.
        fixed_size: u64,
    },
}

impl fmt::Display for UndoInconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UndoInconsistency::WriteOutsideImage {
                len,
                offset,
                file_size,
            } => write!(
                f,
                "a write of {len} bytes at file offset {offset} overlaps another or leaves the {file_size}-byte image"
            ),
            UndoInconsistency::UnknownContainerKind { kind } => {
                write!(f, "unknown container kind {kind}")
            }
            UndoInconsistency::RangeOutOfOrder { offset } => write!(
                f,
                "the range at image offset {offset} overlaps or precedes the one before"
            ),
            UndoInconsistency::RangeOutsideImage { offset, file_size } => write!(
                f,
                "the range at image offset {offset} leaves the {file_size}-byte image"
            ),
            UndoInconsistency::TrailingBytes { count } => {
                write!(f, "{count} bytes after the last entry")
            }
            UndoInconsistency::OriginalsHash => {
                f.write_str("the original bytes do not match their hash")
            }
            UndoInconsistency::EntriesDoNotFit => f.write_str("the entries do not fit the file"),
            UndoInconsistency::ImageShortened {
                file_size,
                fixed_size,
            } => write!(
                f,
                "the fix would cut the {file_size}-byte image file to {fixed_size} bytes, which an undo file cannot restore"
            ),
            UndoInconsistency::NotGrown {
                file_size,
                fixed_size,
            } => write!(
                f,
                "it records a fix that made the {file_size}-byte image {fixed_size} bytes long, which is not longer"
            ),
        }
    }
}

/// Why an image is not the one an undo file was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum IdentityMismatch {
    /// The image file has another size.
    FileSize {
        /// The image's size.
        image: u64,
        /// The size the undo file was made for.
        undo: u64,
    },
    /// The image is another container kind.
    Kind {
        /// The image's kind.
        image: Format,
        /// The kind the undo file was made for.
        undo: Format,
    },
    /// The image's virtual disk has another size.
    VirtualSize {
        /// The image's virtual size.
        image: u64,
        /// The virtual size the undo file was made for.
        undo: u64,
    },
}

impl fmt::Display for IdentityMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityMismatch::FileSize { image, undo } => write!(
                f,
                "the image is {image} bytes but the undo file was made for a {undo}-byte image"
            ),
            IdentityMismatch::Kind { image, undo } => write!(
                f,
                "the image is a {image} image but the undo file was made for a {undo} image"
            ),
            IdentityMismatch::VirtualSize { image, undo } => write!(
                f,
                "the image holds a {image}-byte virtual disk but the undo file was made for a {undo}-byte one"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rule files

/// What is wrong with a rule's directory (see [`RuleFileError::BadDirectory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum DirectoryFault {
    /// It does not start with `\`.
    NotFromRoot,
    /// Over 1024 characters.
    TooLong,
    /// Over 32 components.
    TooManyComponents,
    /// A component is empty, `.` or `..`.
    EmptyOrDotComponent,
    /// A component holds `:` (a stream), `/`, a wildcard or a control character.
    ForbiddenCharacter,
    /// A component is over 255 UTF-16 units.
    ComponentTooLong,
}

impl fmt::Display for DirectoryFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DirectoryFault::NotFromRoot => "does not start at the volume root (\\)",
            DirectoryFault::TooLong => "is longer than 1024 characters",
            DirectoryFault::TooManyComponents => "has more than 32 components",
            DirectoryFault::EmptyOrDotComponent => "has an empty, '.' or '..' component",
            DirectoryFault::ForbiddenCharacter => {
                "holds ':', '/', a wildcard or a control character (only the name may be a glob)"
            }
            DirectoryFault::ComponentTooLong => "has a component longer than 255 characters",
        })
    }
}

/// What is wrong with a rule's name glob (see [`RuleFileError::BadGlob`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(strum::EnumIter))]
pub enum GlobFault {
    /// No name at all.
    Empty,
    /// It holds `\`, `/`, `:` or a control character.
    Separator,
    /// Over 255 UTF-16 units.
    TooLong,
    /// More than [`crate::rule_file::MAX_STARS`] `*`.
    TooManyStars,
}

impl fmt::Display for GlobFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GlobFault::Empty => "is empty",
            GlobFault::Separator => "holds '\\', '/', ':' or a control character",
            GlobFault::TooLong => "is longer than 255 characters",
            GlobFault::TooManyStars => "has more than 8 '*'",
        })
    }
}

/// Why a rule file is refused. `rule` is the id of the rule at fault (as written, when it has
/// one). The page shows these in its own words; the command line prints the `Display` after
/// `rule file F: `.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
#[cfg_attr(
    test,
    derive(strum::EnumDiscriminants),
    strum_discriminants(derive(strum::EnumIter), vis(pub(crate)))
)]
pub enum RuleFileError {
    /// The file is larger than [`MAX_FILE_BYTES`].
    TooLarge {
        /// Its size in bytes.
        bytes: u64,
    },
    /// Not TOML, not the schema (an unknown or missing field, a wrong type), or nested too deep.
    Syntax {
        /// Line, from 1 (0 when the parser gave no position).
        line: usize,
        /// Column, from 1.
        column: usize,
        /// What the parser said (English).
        detail: String,
    },
    /// `format` is not 1.
    Format {
        /// The value given.
        format: i64,
    },
    /// The file holds no rule.
    NoRules,
    /// More than [`MAX_RULES`] rules.
    TooManyRules {
        /// How many.
        count: usize,
    },
    /// An id that is not `[a-z0-9][a-z0-9-]{0,62}`.
    BadId {
        /// The id as written.
        rule: String,
    },
    /// Two rules with one id.
    DuplicateId {
        /// The id.
        rule: String,
    },
    /// A rule named like a built-in rule.
    BuiltinId {
        /// The id.
        rule: String,
    },
    /// `include` names no built-in rule.
    UnknownInclude {
        /// The name given.
        name: String,
    },
    /// The directory is not an absolute `\`-separated path of plain components.
    BadDirectory {
        /// The rule.
        rule: String,
        /// What is wrong with it.
        why: DirectoryFault,
    },
    /// The glob is empty, holds a separator, a stream or a control character, or is too long.
    BadGlob {
        /// The rule.
        rule: String,
        /// What is wrong with it.
        why: GlobFault,
    },
    /// The rule names an NTFS system file (or a folder of them).
    NamesSystemFile {
        /// The rule.
        rule: String,
        /// The system file.
        name: String,
    },
    /// The header is not 1 to 8 bytes of hex.
    BadHeader {
        /// The rule.
        rule: String,
    },
    /// A time without a UTC offset, or without a time of day.
    BadTime {
        /// The rule.
        rule: String,
        /// The time as written.
        time: String,
    },
    /// `to` is not after `from`, or `fixed_from` falls inside the faulty window.
    WindowOrder {
        /// The rule.
        rule: String,
    },
    /// A title or description lacks English or Japanese.
    MissingLanguage {
        /// The rule.
        rule: String,
    },
    /// A title or description is too long or holds a control character.
    TextTooLong {
        /// The rule.
        rule: String,
    },
}

impl std::fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use RuleFileError as E;
        match self {
            E::TooLarge { bytes } => write!(
                f,
                "the file is {bytes} bytes; a rule file is at most {MAX_FILE_BYTES} bytes, so split it"
            ),
            E::Syntax {
                line,
                column,
                detail,
            } => write!(
                f,
                "not a valid rule file at line {line}, column {column}: {detail}; see docs/rules.md for the fields"
            ),
            E::Format { format } => write!(
                f,
                "format = {format} is not a format this kaifuku reads; write format = 1"
            ),
            E::NoRules => f.write_str("the file holds no [[rule]]; add one"),
            E::TooManyRules { count } => write!(
                f,
                "the file holds {count} rules; at most {MAX_RULES}, so split it"
            ),
            E::BadId { rule } => write!(
                f,
                "rule id {rule:?} is not allowed; use lowercase letters, digits and '-', at most 63, starting with a letter or digit"
            ),
            E::DuplicateId { rule } => {
                write!(f, "two rules are named {rule:?}; give each rule its own id")
            }
            E::BuiltinId { rule } if crate::rule_file::TXR_KEYS.contains(&rule.as_str()) => write!(
                f,
                "{rule:?} is a built-in rule's id; name your rule differently (the registry transaction-log rules run with --txr-logs)"
            ),
            E::BuiltinId { rule } => write!(
                f,
                "{rule:?} is a built-in rule's id; name your rule differently (or keep the built-in rule with include = [{rule:?}])"
            ),
            E::UnknownInclude { name } => write!(
                f,
                "include names {name:?}, which is no built-in rule; `kaifuku rules` lists them"
            ),
            E::BadDirectory { rule, why } => write!(
                f,
                "rule {rule:?}: the directory {why}; write it from the volume root, e.g. '\\ProgramData\\Vendor\\Channels'"
            ),
            E::BadGlob { rule, why } => write!(
                f,
                "rule {rule:?}: the name {why}; give one file name or glob (* and ?), e.g. 'CH-0042*.bin'"
            ),
            E::NamesSystemFile { rule, name } => write!(
                f,
                "rule {rule:?} names the NTFS system file {name}, which kaifuku never deletes; point the rule at ordinary files"
            ),
            E::BadHeader { rule } => write!(
                f,
                "rule {rule:?}: the header must be 1 to {MAX_HEADER_BYTES} bytes of hex, e.g. \"de ad be ef\""
            ),
            E::BadTime { rule, time } => write!(
                f,
                "rule {rule:?}: the time {time} has no UTC offset; write a date and time with Z or an offset, e.g. 2025-03-02T04:09:00Z"
            ),
            E::WindowOrder { rule } => write!(
                f,
                "rule {rule:?}: the faulty window must end after it starts, and fixed_from must not fall inside it"
            ),
            E::MissingLanguage { rule } => write!(
                f,
                "rule {rule:?}: the title and the description need both en and ja texts"
            ),
            E::TextTooLong { rule } => write!(
                f,
                "rule {rule:?}: a title is at most {MAX_TITLE_CHARS} characters and a description at most {MAX_DESCRIPTION_CHARS}, without control characters other than newlines"
            ),
        }
    }
}

impl std::error::Error for RuleFileError {}

#[cfg(test)]
mod tests {
    use super::{BitLockerProblem, BitLockerProblemDiscriminants};
    use super::{
        BitRange, Bitmap, IndexBlock, JournalOverlap, JournalOverlapDiscriminants, JournalReplay,
        JournalReplayDiscriminants, JournalReport, JournalReportDiscriminants, JournalSummary,
        LcnRange, LfsVersion, TouchedRecord,
    };
    use super::{
        Blocker, BlockerDiscriminants, CheckOutcome, CheckOutcomeDiscriminants, Checked,
        CheckedDiscriminants, ContainerProblem, ContainerProblemDiscriminants, FixError,
        FixErrorDiscriminants, FixFailure, FixFailureDiscriminants, FixRefusal,
        FixRefusalDiscriminants, IdentityMismatch, IdentityMismatchDiscriminants, NtfsProblem,
        NtfsProblemDiscriminants, Outcome, OutcomeDiscriminants, OutputCheck,
        OutputCheckDiscriminants, PartitionProblem, PartitionProblemDiscriminants, PlanCheck,
        PlanCheckDiscriminants, Reason, ReasonDiscriminants, RuleNotice, RuleNoticeDiscriminants,
        UndoError, UndoErrorDiscriminants, UndoInconsistency, UndoInconsistencyDiscriminants,
        VerifyError, VerifyFailure, VerifyFailureDiscriminants, VolumeName, VolumeProblem,
        VolumeProblemDiscriminants,
    };
    use super::{DirectoryFault, GlobFault, RuleFileError, RuleFileErrorDiscriminants};
    use super::{
        HiveError, HiveState, HiveStateDiscriminants, RuleSkip, RuleSkipDiscriminants,
        WindowsVersion, WindowsVersionDiscriminants,
    };
    use kaifuku_bitlocker::{ProtectionType, RecoveryPasswordFault};
    use kaifuku_container::{Format, OtherFormat, Qcow2ClusterKind, Qcow2Feature};
    use kaifuku_ntfs::check::{Problem, ProblemKind};
    use kaifuku_ntfs::{
        BootSectorFault, Damage, Location, LogState, NodeId, Refusal, Structure, Unsupported,
    };
    use kaifuku_partition::NoticeKind;
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;
    use std::fmt::Display;
    use strum::IntoEnumIterator;

    const DOC: &str = include_str!("../../../docs/report-codes.md");

    fn windows() -> VolumeName {
        VolumeName {
            partition: Some(3),
            label: Some("Windows".into()),
        }
    }

    fn problem() -> Problem {
        Problem {
            kind: ProblemKind::RecordHeader,
            record: Some(64),
            message: "record 64: bad signature".into(),
        }
    }

    fn ntfs() -> NtfsProblem {
        NtfsProblem::Damaged {
            damage: Damage::new(
                Structure::FileRecord,
                Some(Location::MftRecord { record: 5 }),
                "record 5: bad signature",
            ),
        }
    }

    fn overlap() -> NoticeKind {
        NoticeKind::PartitionsOverlap {
            a: 2,
            b: 3,
            a_start: 1 << 20,
            a_end: 3 << 20,
            b_start: 2 << 20,
            b_end: 4 << 20,
        }
    }

    fn outcomes() -> Vec<Outcome> {
        vec![
            Outcome::Matches,
            Outcome::NothingToFix,
            Outcome::Refused,
            Outcome::Error,
        ]
    }

    fn check_outcomes() -> Vec<CheckOutcome> {
        vec![
            CheckOutcome::Clean,
            CheckOutcome::Problems,
            CheckOutcome::Refused,
            CheckOutcome::Error,
        ]
    }

    fn reasons() -> Vec<Reason> {
        vec![
            Reason::Matches {
                count: 2,
                rule: "CrowdStrike channel file 291 (2024-07-19)".into(),
            },
            Reason::Container {
                problem: ContainerProblem::DifferencingVhd,
            },
            Reason::Partitions {
                problem: PartitionProblem::NoTable,
            },
            Reason::Volume {
                volume: windows(),
                problem: VolumeProblem::WindowsPartitionUnreadable { detail: None },
            },
            Reason::PartitionTableDamaged { notice: overlap() },
            Reason::DamagedBareNtfs {
                oem_id_damaged: true,
                backup_intact: false,
            },
            Reason::NoWindowsVolume,
            Reason::DirectoryMissing {
                volume: windows(),
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
            },
            Reason::NoMatch {
                volume: windows(),
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                pattern: "C-00000291*.sys".into(),
            },
            Reason::JournalMayHoldMatch {
                volume: windows(),
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                pattern: "C-00000291*.sys".into(),
            },
            Reason::VolumeHasProblems {
                volume: VolumeName::place(Some(3)),
                count: 2,
            },
            Reason::NoNtfsVolume,
            Reason::CheckedClean { volumes: 1 },
        ]
    }

    fn volume_problems() -> Vec<VolumeProblem> {
        vec![
            VolumeProblem::OutsideDisk {
                partition: Some(2),
                detail: "range 0+10 lies outside the 5-byte space it was cut from".into(),
            },
            VolumeProblem::WindowsPartitionUnreadable { detail: None },
            VolumeProblem::WindowsBootSectorUnreadable {
                oem_id: Some("MSDOS5.0".into()),
                backup_intact: true,
            },
            VolumeProblem::Ntfs { error: ntfs() },
            VolumeProblem::BitLocker {
                problem: BitLockerProblem::WrongKey {
                    protection: ProtectionType::Password,
                    tried: 1,
                },
            },
        ]
    }

    fn ntfs_problems() -> Vec<NtfsProblem> {
        vec![
            NtfsProblem::NotNtfs,
            NtfsProblem::BitLocker,
            NtfsProblem::BadBootSector {
                fault: BootSectorFault::ZeroSectorsPerCluster,
            },
            ntfs(),
            NtfsProblem::Unsupported {
                unsupported: Unsupported::IndexSplit {
                    node: NodeId::Root,
                    needed: 600,
                    available: 480,
                },
            },
            NtfsProblem::Refused {
                refusal: Refusal::SystemFile {
                    name: "$MFT".into(),
                    record: 0,
                },
            },
            NtfsProblem::ReadFailed {
                what: "reading an MFT record".into(),
                detail: "failed to fill whole buffer".into(),
            },
            NtfsProblem::ReaderFailed {
                detail: "bad attribute".into(),
            },
        ]
    }

    fn container_problems() -> Vec<ContainerProblem> {
        vec![
            ContainerProblem::UnsupportedFormat {
                format: OtherFormat::Vhdx,
                qemu_name: "vhdx".into(),
            },
            ContainerProblem::DifferencingVhd,
            ContainerProblem::DifferencingVhdx,
            ContainerProblem::VmdkChild {
                parent: "base.vmdk".into(),
            },
            ContainerProblem::PatchInUnallocatedVmdkGrain {
                offset: 3 << 30,
                grain: 49152,
            },
            ContainerProblem::PatchInUnallocatedBlock {
                offset: 1 << 30,
                block: 512,
            },
            ContainerProblem::Qcow2Unsupported {
                feature: Qcow2Feature::Dirty,
            },
            ContainerProblem::PatchInQcow2Cluster {
                offset: 1 << 20,
                cluster: 16,
                kind: Qcow2ClusterKind::SharedTable,
            },
            ContainerProblem::ReadFailed {
                detail: "could not read the VHD footer at file offset 0: gone".into(),
            },
            ContainerProblem::Damaged {
                detail: "VHD footer checksum mismatch".into(),
            },
        ]
    }

    fn partition_problems() -> Vec<PartitionProblem> {
        vec![
            PartitionProblem::TooSmall { size: 100 },
            PartitionProblem::NoTable,
            PartitionProblem::ReadFailed {
                detail: "could not read the first sector".into(),
            },
            PartitionProblem::Unsupported {
                detail: "a GPT layout".into(),
            },
            PartitionProblem::Damaged {
                detail: "the GPT partition table is damaged".into(),
            },
        ]
    }

    fn blockers() -> Vec<Blocker> {
        vec![
            Blocker::BitLocker,
            Blocker::JournalNotClean {
                state: LogState::Unclean,
            },
            Blocker::JournalMayHoldMatch {
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                pattern: "C-00000291*.sys".into(),
                records: vec![5, 64],
                unattributed: 1,
                unreadable: false,
            },
            Blocker::Hibernated,
            Blocker::QuotaTracking,
        ]
    }

    fn journal_overlaps() -> Vec<JournalOverlap> {
        vec![
            JournalOverlap::NoOverlap,
            JournalOverlap::Overlaps {
                file_records: vec![2146],
                index_blocks: vec![IndexBlock {
                    record: 2140,
                    name: "$I30".into(),
                    vcn: 0,
                    block_offset: 0,
                    // Reports name index blocks, not the entries in them: the entry's offset is
                    // not written (`#[serde(skip)]`) and reads back as 0.
                    entry_offset: 0,
                }],
                mft_bitmap_pages: vec![0],
                cluster_bitmap_pages: vec![1],
                clusters: vec![LcnRange {
                    first: 5000,
                    count: 2,
                }],
            },
        ]
    }

    fn hive_states() -> Vec<HiveState> {
        vec![
            HiveState::Clean { sequence: 2 },
            HiveState::Dirty {
                primary_sequence: 3,
                secondary_sequence: 2,
            },
            HiveState::Missing,
            HiveState::Unreadable {
                error: NtfsProblem::NotNtfs,
            },
            HiveState::Damaged {
                error: HiveError::Truncated {
                    hive_bins_size: 9216000,
                    file_size: 8192,
                },
            },
        ]
    }

    fn windows_versions() -> Vec<WindowsVersion> {
        vec![
            WindowsVersion::Build {
                build: 17763,
                product_name: Some("Windows Server 2019 Datacenter".into()),
            },
            WindowsVersion::NoSoftwareHive,
            WindowsVersion::NotRecorded,
            WindowsVersion::NotANumber {
                text: "seventeen".into(),
            },
            WindowsVersion::Damaged {
                error: HiveError::Damaged {
                    structure: kaifuku_registry::HiveStructure::SubkeyList,
                    offset: 0x2020,
                    detail: "its 9 elements do not fit in the 28-byte cell".into(),
                },
            },
        ]
    }

    fn rule_skips() -> Vec<RuleSkip> {
        vec![
            RuleSkip::BuildBelow {
                build: 9600,
                needs: 14393,
            },
            RuleSkip::BuildUnknown {
                version: WindowsVersion::NoSoftwareHive,
                needs: 14393,
            },
        ]
    }

    fn journal_replays() -> Vec<JournalReplay> {
        vec![
            JournalReplay::Replayed {
                committed: 3,
                uncommitted: 1,
                redone: 14,
                undone: 2,
            },
            JournalReplay::UnsupportedVersion {
                version: LfsVersion::V2_0,
            },
            JournalReplay::NotUnderstood {
                lsn: 0x80541d,
                operation: "UpdateRelativeDataInIndex".into(),
                detail: "no source says what this operation changes".into(),
            },
            JournalReplay::Failed {
                error: NtfsProblem::NotNtfs,
            },
        ]
    }

    fn journal_reports() -> Vec<JournalReport> {
        vec![
            JournalReport::Analysed {
                journal: Box::new(JournalSummary {
                    version: LfsVersion::V1_1,
                    checkpoint_lsn: 0x8042d1,
                    current_lsn: 0x80541d,
                    redo_lsn: 0x80386c,
                    last_lsn: 0x80541d,
                    records_after_checkpoint: 148,
                    transactions_committed: 12,
                    transactions_uncommitted: 1,
                    file_records: vec![
                        TouchedRecord {
                            record: 5,
                            path: Some("\\".into()),
                        },
                        TouchedRecord {
                            record: 2146,
                            path: None,
                        },
                    ],
                    index_blocks: vec![],
                    lcn_ranges: vec![LcnRange { first: 4, count: 3 }],
                    bitmap_ranges: vec![BitRange {
                        bitmap: Bitmap::MftRecords,
                        first: 2146,
                        count: 1,
                    }],
                    unresolved: 0,
                    bytes_read: 40960,
                    overlap: Some(JournalOverlap::NoOverlap),
                }),
            },
            JournalReport::NoLiveLog,
            JournalReport::Unreadable {
                error: NtfsProblem::Damaged {
                    damage: Damage::new(
                        Structure::LogFile,
                        Some(Location::LogOffset { offset: 0 }),
                        "both restart pages of $LogFile are damaged",
                    ),
                },
            },
        ]
    }

    fn notices() -> Vec<RuleNotice> {
        vec![
            RuleNotice::DirectorySkipped {
                path: "\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291-dir.sys".into(),
            },
            RuleNotice::LinkFollowed {
                link: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                target: "\\CS-real".into(),
            },
        ]
    }

    fn fix_refusals() -> Vec<FixRefusal> {
        vec![
            FixRefusal::Inspect {
                reasons: vec![Reason::Volume {
                    volume: windows(),
                    problem: VolumeProblem::Ntfs {
                        error: NtfsProblem::BitLocker,
                    },
                }],
            },
            FixRefusal::Blocked {
                volume: windows(),
                blocker: Blocker::Hibernated,
            },
            FixRefusal::ChkdskWouldRestore {
                volume: windows(),
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                files: vec![super::RestorableFile {
                    record: 4269,
                    name: "C-00000291-00000000-00000032.sys".into(),
                }],
            },
            FixRefusal::Ntfs {
                volume: windows(),
                file: Some("\\$MFT".into()),
                error: NtfsProblem::Refused {
                    refusal: Refusal::AmbiguousDosName {
                        name: "C-00000291-00000000-00000032.sys".into(),
                        record: 64,
                    },
                },
            },
        ]
    }

    fn fix_failures() -> Vec<FixFailure> {
        vec![
            FixFailure::Inspect {
                reasons: vec![Reason::NoNtfsVolume],
            },
            FixFailure::PartitionsOverlap {
                volume: windows(),
                notice: overlap(),
            },
            FixFailure::Ntfs {
                volume: windows(),
                file: None,
                error: ntfs(),
            },
            FixFailure::DirectoryVanished {
                volume: windows(),
                directory: "\\Windows".into(),
            },
            FixFailure::WriteTargetsDamaged {
                volume: windows(),
                problems: vec![problem()],
            },
            FixFailure::PatchedVolumeDoesNotOpen {
                volume: windows(),
                error: ntfs(),
            },
            FixFailure::PatchedVolumeUnreadable {
                volume: windows(),
                error: ntfs(),
            },
            FixFailure::CheckFailed {
                volume: windows(),
                checked: Checked::Bitmap,
                error: ntfs(),
            },
            FixFailure::CheckFoundProblems {
                volume: windows(),
                checked: Checked::EditedDirectory,
                problems: vec![problem()],
            },
            FixFailure::StillMatches { count: 1 },
            FixFailure::PatchOverlapsJournalReset {
                label: kaifuku_ntfs::edit::ChangedStructure::MftRecord {
                    record: 0,
                    part: None,
                },
            },
            FixFailure::ReadFailed {
                detail: "failed to fill whole buffer".into(),
            },
            FixFailure::OutputNotMappable {
                problem: ContainerProblem::PatchInUnallocatedBlock {
                    offset: 4096,
                    block: 0,
                },
            },
            FixFailure::Internal {
                detail: "range outside".into(),
            },
            FixFailure::BitLocker {
                volume: windows(),
                problem: BitLockerProblem::WriteIntoMetadata { offset: 0x2195000 },
            },
        ]
    }

    fn bitlocker_problems() -> Vec<BitLockerProblem> {
        vec![
            BitLockerProblem::RecoveryPassword {
                fault: RecoveryPasswordFault::MistypedGroup { group: 3 },
            },
            BitLockerProblem::WrongKey {
                protection: ProtectionType::RecoveryPassword,
                tried: 2,
            },
            BitLockerProblem::NoSuchProtector {
                wanted: ProtectionType::Password,
                available: "TPM, recovery password".into(),
            },
            BitLockerProblem::NeedsRecoveryPassword {
                available: "TPM".into(),
            },
            BitLockerProblem::NotInKeyList {
                ids: vec!["3E55195C-8811-4D9B-97B4-2B9E5F8F5384".into()],
            },
            BitLockerProblem::EncryptOnWrite,
            BitLockerProblem::Unsupported {
                detail: "unknown BitLocker encryption method 0x8006".into(),
            },
            BitLockerProblem::Damaged {
                detail: "none of the three FVE metadata blocks is readable".into(),
            },
            BitLockerProblem::WriteIntoMetadata { offset: 0x2195000 },
            BitLockerProblem::ReadFailed {
                detail: "failed to fill whole buffer".into(),
            },
        ]
    }

    fn fix_errors() -> Vec<FixError> {
        vec![
            FixError::NothingToFix {
                reasons: vec![Reason::NoWindowsVolume],
            },
            FixError::Refused {
                refusal: fix_refusals().remove(1),
            },
            FixError::Failed {
                failure: FixFailure::StillMatches { count: 1 },
            },
        ]
    }

    fn checked() -> Vec<Checked> {
        vec![
            Checked::ChangedRecords,
            Checked::MftBitmap,
            Checked::Bitmap,
            Checked::EditedDirectory,
            Checked::SideIndexes,
        ]
    }

    fn plan_checks() -> Vec<PlanCheck> {
        vec![
            PlanCheck::OwnershipProven {
                volume: windows(),
                records_scanned: 1200,
                bytes_read: 5 << 20,
                claims_proven: 9,
            },
            PlanCheck::RuleFindsAfterFix {
                volume: windows(),
                count: 0,
            },
            PlanCheck::InvariantsPass {
                volume: windows(),
                records: 2,
                freed_runs: 3,
                directories: 1,
            },
            PlanCheck::SideIndexesClean {
                volume: windows(),
                indexes: vec!["$Extend\\$ObjId:$O".into()],
            },
            PlanCheck::JournalClean { volume: windows() },
        ]
    }

    fn output_checks() -> Vec<OutputCheck> {
        vec![
            OutputCheck::ContainerSame {
                format: Format::VhdDynamic,
                virtual_size: 1 << 30,
            },
            OutputCheck::ContainerConverted {
                format: Format::VhdFixed,
                virtual_size: 2 << 30,
                original_format: Format::VmdkStreamOptimized,
                original_virtual_size: (2 << 30) - 512,
            },
            OutputCheck::RuleFinds {
                volume: 1,
                count: 0,
            },
            OutputCheck::RecordFree {
                volume: 1,
                record: 64,
            },
            OutputCheck::JournalReset { volume: 1 },
            OutputCheck::JournalReplayed { volume: 1 },
            OutputCheck::Invariants { volume: 1 },
            OutputCheck::SideIndexes {
                volume: 1,
                indexes: vec!["$Extend\\$Reparse:$R".into()],
            },
        ]
    }

    fn verify_failures() -> Vec<VerifyFailure> {
        vec![
            VerifyFailure::NothingPlanned,
            VerifyFailure::ContainerDoesNotOpen {
                problem: ContainerProblem::Damaged {
                    detail: "VHD footer checksum mismatch".into(),
                },
            },
            VerifyFailure::NoOriginalContainer,
            VerifyFailure::ContainerDiffers {
                format: Format::Raw,
                virtual_size: 100,
                original_format: Format::VhdFixed,
                original_virtual_size: 100,
            },
            VerifyFailure::VolumeGone { volume: windows() },
            VerifyFailure::VolumeUnreadable {
                volume: windows(),
                problem: VolumeProblem::WindowsPartitionUnreadable { detail: None },
            },
            VerifyFailure::Ntfs {
                volume: windows(),
                error: ntfs(),
            },
            VerifyFailure::RecordInUse {
                volume: windows(),
                record: 64,
            },
            VerifyFailure::CheckerProblems {
                volume: windows(),
                problems: vec![problem()],
            },
            VerifyFailure::NotNtfs { volume: windows() },
            VerifyFailure::JournalNotReset {
                volume: windows(),
                state: LogState::V2,
                dirty: false,
            },
            VerifyFailure::JournalNotReplayed {
                volume: windows(),
                state: LogState::V2,
            },
            VerifyFailure::StillMatches {
                count: 1,
                reasons: vec![Reason::NoWindowsVolume],
            },
            VerifyFailure::Internal {
                detail: "range outside".into(),
            },
        ]
    }

    fn undo_errors() -> Vec<UndoError> {
        vec![
            UndoError::TooShort,
            UndoError::WrongSignature,
            UndoError::OldVersion { version: 1 },
            UndoError::NewerVersion { version: 3 },
            UndoError::Checksum,
            UndoError::Inconsistent {
                what: UndoInconsistency::OriginalsHash,
            },
            UndoError::Read {
                detail: "Input/output error (os error 5)".into(),
            },
        ]
    }

    fn undo_inconsistencies() -> Vec<UndoInconsistency> {
        vec![
            UndoInconsistency::WriteOutsideImage {
                len: 10,
                offset: 95,
                file_size: 100,
            },
            UndoInconsistency::UnknownContainerKind { kind: 9 },
            UndoInconsistency::RangeOutOfOrder { offset: 10 },
            UndoInconsistency::RangeOutsideImage {
                offset: 95,
                file_size: 100,
            },
            UndoInconsistency::TrailingBytes { count: 3 },
            UndoInconsistency::OriginalsHash,
            UndoInconsistency::EntriesDoNotFit,
            UndoInconsistency::ImageShortened {
                file_size: 100,
                fixed_size: 90,
            },
            UndoInconsistency::NotGrown {
                file_size: 100,
                fixed_size: 100,
            },
        ]
    }

    fn identity_mismatches() -> Vec<IdentityMismatch> {
        vec![
            IdentityMismatch::FileSize {
                image: 4097,
                undo: 4096,
            },
            IdentityMismatch::Kind {
                image: Format::Raw,
                undo: Format::VhdFixed,
            },
            IdentityMismatch::VirtualSize {
                image: 1 << 20,
                undo: 2 << 20,
            },
        ]
    }

    /// The section of the document about `name` (from its `## `name`` heading to the next).
    fn section(name: &str) -> &'static str {
        let heading = format!("\n## `{name}`");
        let start = DOC
            .find(&heading)
            .unwrap_or_else(|| panic!("docs/report-codes.md has no section {heading:?}"));
        let rest = &DOC[start + heading.len()..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    }

    /// The codes a section's tables list (the first cell of each row).
    fn listed_codes(section: &str) -> Vec<String> {
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_string)
            .collect()
    }

    /// Every variant of `T` has an example (`D` lists the variants), and every example's code is
    /// documented in `T`'s section, which lists no other code. Returns the examples' JSON.
    fn documented<T, D>(name: &str, examples: Vec<T>) -> Vec<Value>
    where
        T: Serialize + Display,
        D: IntoEnumIterator + PartialEq + std::fmt::Debug + for<'a> From<&'a T>,
    {
        let kinds: Vec<D> = examples.iter().map(D::from).collect();
        for d in D::iter() {
            assert!(kinds.contains(&d), "{name}: no example of {d:?}");
        }
        let sec = section(name);
        let listed = listed_codes(sec);
        let mut codes = Vec::new();
        let values: Vec<Value> = examples
            .iter()
            .map(|e| {
                let v = serde_json::to_value(e).expect("serialises");
                let code = match &v {
                    Value::String(s) => s.clone(),
                    Value::Object(m) => {
                        assert_eq!(
                            m.get("message"),
                            Some(&Value::String(e.to_string())),
                            "{name}: the JSON carries the English sentence: {v}"
                        );
                        m["code"].as_str().expect("code is a string").to_string()
                    }
                    other => panic!("{name}: unexpected JSON {other}"),
                };
                assert!(
                    listed.contains(&code),
                    "{name}: code `{code}` is not documented in docs/report-codes.md"
                );
                codes.push(code);
                v
            })
            .collect();
        for l in &listed {
            assert!(
                codes.contains(l),
                "{name}: docs/report-codes.md lists `{l}`, which is no code of it"
            );
        }
        values
    }

    #[test]
    fn every_code_is_documented() {
        documented::<_, OutcomeDiscriminants>("Outcome", outcomes());
        documented::<_, CheckOutcomeDiscriminants>("CheckOutcome", check_outcomes());
        documented::<_, ReasonDiscriminants>("Reason", reasons());
        documented::<_, VolumeProblemDiscriminants>("VolumeProblem", volume_problems());
        documented::<_, NtfsProblemDiscriminants>("NtfsProblem", ntfs_problems());
        documented::<_, BitLockerProblemDiscriminants>("BitLockerProblem", bitlocker_problems());
        documented::<_, ContainerProblemDiscriminants>("ContainerProblem", container_problems());
        documented::<_, PartitionProblemDiscriminants>("PartitionProblem", partition_problems());
        documented::<_, BlockerDiscriminants>("Blocker", blockers());
        documented::<_, RuleNoticeDiscriminants>("RuleNotice", notices());
        documented::<_, JournalReportDiscriminants>("JournalReport", journal_reports());
        documented::<_, JournalOverlapDiscriminants>("JournalOverlap", journal_overlaps());
        documented::<_, JournalReplayDiscriminants>("JournalReplay", journal_replays());
        documented::<_, HiveStateDiscriminants>("HiveState", hive_states());
        documented::<_, WindowsVersionDiscriminants>("WindowsVersion", windows_versions());
        documented::<_, RuleSkipDiscriminants>("RuleSkip", rule_skips());
        documented::<_, FixErrorDiscriminants>("FixError", fix_errors());
        documented::<_, FixRefusalDiscriminants>("FixRefusal", fix_refusals());
        documented::<_, FixFailureDiscriminants>("FixFailure", fix_failures());
        documented::<_, CheckedDiscriminants>("Checked", checked());
        documented::<_, PlanCheckDiscriminants>("PlanCheck", plan_checks());
        documented::<_, OutputCheckDiscriminants>("OutputCheck", output_checks());
        documented::<_, VerifyFailureDiscriminants>("VerifyFailure", verify_failures());
        documented::<_, UndoErrorDiscriminants>("UndoError", undo_errors());
        documented::<_, UndoInconsistencyDiscriminants>(
            "UndoInconsistency",
            undo_inconsistencies(),
        );
        documented::<_, IdentityMismatchDiscriminants>("IdentityMismatch", identity_mismatches());
        documented::<_, RuleFileErrorDiscriminants>("RuleFileError", rule_file_errors());
    }

    fn rule_file_errors() -> Vec<RuleFileError> {
        let rule = || "contoso-agent".to_string();
        let mut v = vec![
            RuleFileError::TooLarge { bytes: 70_000 },
            RuleFileError::Syntax {
                line: 3,
                column: 1,
                detail: "unknown field `nmae`".into(),
            },
            RuleFileError::Format { format: 2 },
            RuleFileError::NoRules,
            RuleFileError::TooManyRules { count: 33 },
            RuleFileError::BadId {
                rule: "Contoso!".into(),
            },
            RuleFileError::DuplicateId { rule: rule() },
            RuleFileError::BuiltinId {
                rule: "crowdstrike-2024-07-19".into(),
            },
            RuleFileError::UnknownInclude {
                name: "crowdstrike".into(),
            },
            RuleFileError::NamesSystemFile {
                rule: rule(),
                name: "$MFT".into(),
            },
            RuleFileError::BadHeader { rule: rule() },
            RuleFileError::BadTime {
                rule: rule(),
                time: "2025-03-02T04:09:00".into(),
            },
            RuleFileError::WindowOrder { rule: rule() },
            RuleFileError::MissingLanguage { rule: rule() },
            RuleFileError::TextTooLong { rule: rule() },
        ];
        v.extend(
            DirectoryFault::iter().map(|why| RuleFileError::BadDirectory { rule: rule(), why }),
        );
        v.extend(GlobFault::iter().map(|why| RuleFileError::BadGlob { rule: rule(), why }));
        v
    }

    /// Serialises each example as the JSON reports have it (code, fields, English message) and
    /// reads it back: the value must come back equal, the message passed over. This is how the
    /// page receives the core's values from its worker.
    fn round_trips<T>(name: &str, examples: &[T])
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for e in examples {
            let json = serde_json::to_string(e).expect("serialises");
            let back: T = serde_json::from_str(&json)
                .unwrap_or_else(|err| panic!("{name}: {json} does not read back: {err}"));
            assert_eq!(&back, e, "{name}: {json} reads back as another value");
        }
    }

    #[test]
    fn every_variant_reads_back_as_itself() {
        // The same lists that `every_code_is_documented` holds to one example of each variant.
        round_trips("Outcome", &outcomes());
        round_trips("CheckOutcome", &check_outcomes());
        round_trips("RuleFileError", &rule_file_errors());
        round_trips("Reason", &reasons());
        round_trips("VolumeProblem", &volume_problems());
        round_trips("NtfsProblem", &ntfs_problems());
        round_trips("ContainerProblem", &container_problems());
        round_trips("PartitionProblem", &partition_problems());
        round_trips("Blocker", &blockers());
        round_trips("RuleNotice", &notices());
        round_trips("FixError", &fix_errors());
        round_trips("FixRefusal", &fix_refusals());
        round_trips("FixFailure", &fix_failures());
        round_trips("Checked", &checked());
        round_trips("PlanCheck", &plan_checks());
        round_trips("OutputCheck", &output_checks());
        round_trips("VerifyFailure", &verify_failures());
        round_trips("UndoError", &undo_errors());
        round_trips("UndoInconsistency", &undo_inconsistencies());
        round_trips("IdentityMismatch", &identity_mismatches());
        round_trips(
            "VerifyError",
            &verify_failures()
                .into_iter()
                .map(VerifyError)
                .collect::<Vec<_>>(),
        );
        round_trips("VolumeName", &[windows(), VolumeName::place(None)]);
        round_trips("JournalReport", &journal_reports());
        round_trips("JournalOverlap", &journal_overlaps());
        round_trips("JournalReplay", &journal_replays());
        round_trips("HiveState", &hive_states());
        round_trips("WindowsVersion", &windows_versions());
        round_trips("RuleSkip", &rule_skips());
        // Every journal state, as blockers carry them.
        round_trips(
            "Blocker",
            &[
                LogState::Clean,
                LogState::Unclean,
                LogState::V2,
                LogState::Unreadable,
            ]
            .map(|state| Blocker::JournalNotClean { state }),
        );
        // The message is passed over, whatever it says: the reader words the value itself.
        let v: Blocker =
            serde_json::from_str(r#"{"code":"hibernated","message":"anything"}"#).unwrap();
        assert_eq!(v, Blocker::Hibernated);
    }

    /// `examples` of a type of the NTFS layer (no variant lister there): `index` names each
    /// variant by its position with an exhaustive match, so a new variant does not compile here
    /// until it is counted in `variants` and given an example. Checks that `name`'s section lists
    /// exactly the examples' codes.
    fn documented_ntfs<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        name: &str,
        examples: Vec<T>,
        variants: usize,
        index: fn(&T) -> usize,
    ) {
        let mut seen: Vec<usize> = examples.iter().map(index).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(
            seen,
            (0..variants).collect::<Vec<_>>(),
            "{name}: an example of each"
        );
        round_trips(name, &examples);
        let listed = listed_codes(section(name));
        let codes: Vec<String> = examples
            .iter()
            .map(|e| match serde_json::to_value(e).expect("serialises") {
                Value::String(s) => s,
                Value::Object(m) => m["code"].as_str().expect("code").to_string(),
                other => panic!("{name}: unexpected JSON {other}"),
            })
            .collect();
        for c in &codes {
            assert!(listed.contains(c), "{name}: `{c}` is not documented");
        }
        for l in &listed {
            assert!(codes.contains(l), "{name}: `{l}` is documented but no code");
        }
    }

    #[test]
    fn every_code_of_the_ntfs_layer_is_documented() {
        use Structure as S;
        let structures = vec![
            S::Unknown,
            S::Mft,
            S::MftMirr,
            S::FileRecord,
            S::Attribute,
            S::AttributeList,
            S::Runlist,
            S::UpdateSequence,
            S::IndexRoot,
            S::IndexAllocation,
            S::IndexNode,
            S::IndexEntry,
            S::IndexBitmap,
            S::Directory,
            S::UpCase,
            S::LogFile,
            S::Bitmap,
            S::MftBitmap,
            S::VolumeInformation,
            S::StandardInformation,
            S::FileName,
            S::Extend,
            S::FileData,
        ];
        // Structure has no fields: every variant is its own position in the list above, which
        // the exhaustive match checks against.
        documented_ntfs("Structure", structures, 23, |s| match s {
            S::Unknown => 0,
            S::Mft => 1,
            S::MftMirr => 2,
            S::FileRecord => 3,
            S::Attribute => 4,
            S::AttributeList => 5,
            S::Runlist => 6,
            S::UpdateSequence => 7,
            S::IndexRoot => 8,
            S::IndexAllocation => 9,
            S::IndexNode => 10,
            S::IndexEntry => 11,
            S::IndexBitmap => 12,
            S::Directory => 13,
            S::UpCase => 14,
            S::LogFile => 15,
            S::Bitmap => 16,
            S::MftBitmap => 17,
            S::VolumeInformation => 18,
            S::StandardInformation => 19,
            S::FileName => 20,
            S::Extend => 21,
            S::FileData => 22,
        });
        use Location as L;
        documented_ntfs(
            "Location",
            vec![
                L::MftRecord { record: 5 },
                L::RecordOffset { offset: 56 },
                L::IndexNode {
                    directory: Some(5),
                    node: NodeId::Block(4),
                },
                L::Cluster { lcn: 9 },
                L::StreamOffset { offset: 4096 },
                L::Path {
                    path: "\\Windows".into(),
                },
                L::LogOffset { offset: 4096 },
                L::LogRecord { lsn: 0x80541D },
            ],
            8,
            |l| match l {
                L::MftRecord { .. } => 0,
                L::RecordOffset { .. } => 1,
                L::IndexNode { .. } => 2,
                L::Cluster { .. } => 3,
                L::StreamOffset { .. } => 4,
                L::Path { .. } => 5,
                L::LogOffset { .. } => 6,
                L::LogRecord { .. } => 7,
            },
        );
        use kaifuku_ntfs::RecordKind as K;
        use BootSectorFault as B;
        documented_ntfs(
            "BootSectorFault",
            vec![
                B::MissingEndSignature,
                B::BytesPerSector { value: 3 },
                B::ZeroSectorsPerCluster,
                B::SectorsPerClusterCode { byte: 0xE0 },
                B::SectorsPerClusterNotPowerOfTwo { value: 3 },
                B::ClusterTooLarge {
                    cluster_size: 4 << 20,
                },
                B::TotalSectorsOverflow,
                B::Truncated {
                    described: 100,
                    present: 50,
                },
                B::BackupBeyondEnd {
                    backup_at: 100,
                    present: 50,
                },
                B::MftOutsideVolume {
                    mft_lcn: 99,
                    mftmirr_lcn: 2,
                    total_clusters: 50,
                },
                B::MftAndMirrorShareCluster { lcn: 4 },
                B::RecordSizeCode {
                    record: K::FileRecord,
                    size_code: -40,
                },
                B::ImplausibleRecordSize {
                    record: K::IndexRecord,
                    size: 100,
                },
            ],
            13,
            |b| match b {
                B::MissingEndSignature => 0,
                B::BytesPerSector { .. } => 1,
                B::ZeroSectorsPerCluster => 2,
                B::SectorsPerClusterCode { .. } => 3,
                B::SectorsPerClusterNotPowerOfTwo { .. } => 4,
                B::ClusterTooLarge { .. } => 5,
                B::TotalSectorsOverflow => 6,
                B::Truncated { .. } => 7,
                B::BackupBeyondEnd { .. } => 8,
                B::MftOutsideVolume { .. } => 9,
                B::MftAndMirrorShareCluster { .. } => 10,
                B::RecordSizeCode { .. } => 11,
                B::ImplausibleRecordSize { .. } => 12,
            },
        );
        documented_ntfs(
            "RecordKind",
            vec![K::FileRecord, K::IndexRecord],
            2,
            |k| match k {
                K::FileRecord => 0,
                K::IndexRecord => 1,
            },
        );
        use kaifuku_ntfs::LinkDestination as D;
        let destinations = vec![
            D::Path {
                path: "D:\\CS".into(),
            },
            D::OtherReparsePoint { tag: 0x8000_0017 },
        ];
        documented_ntfs("LinkDestination", destinations.clone(), 2, |d| match d {
            D::Path { .. } => 0,
            D::OtherReparsePoint { .. } => 1,
        });
        use Unsupported as U;
        documented_ntfs(
            "Unsupported",
            vec![
                U::IndexSplit {
                    node: NodeId::Root,
                    needed: 600,
                    available: 480,
                },
                U::IndexBlockOverflow {
                    node: NodeId::Block(0),
                },
                U::IndexMerge {
                    node: NodeId::Block(8),
                    directory: "\\Windows".into(),
                },
                U::RecordFull { grow_by: 80 },
                U::TargetIsDirectory {
                    name: "x".into(),
                    record: 70,
                },
                U::AttributeListOnTarget {
                    name: "17.txt".into(),
                    record: 27,
                },
                U::IndexCollation {
                    record: 9,
                    index: "$SDH".into(),
                    rule: 0x12,
                },
                U::AttributeTooLarge {
                    type_code: 0x80,
                    size: 1 << 40,
                },
                U::CompressedOrEncryptedData { record: 70 },
                U::UnfollowableLink {
                    link: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                    destination: destinations[0].clone(),
                },
                U::TooManyLinks {
                    path: "\\a".into(),
                    max_hops: 8,
                },
                U::LogVersion { major: 3, minor: 0 },
                U::JournalReplay {
                    lsn: 0x100b14,
                    operation: "WriteEndOfFileRecordSegment".into(),
                    detail: "no sample shows what it changes".into(),
                },
            ],
            13,
            |u| match u {
                U::IndexSplit { .. } => 0,
                U::IndexBlockOverflow { .. } => 1,
                U::IndexMerge { .. } => 2,
                U::RecordFull { .. } => 3,
                U::TargetIsDirectory { .. } => 4,
                U::AttributeListOnTarget { .. } => 5,
                U::IndexCollation { .. } => 6,
                U::AttributeTooLarge { .. } => 7,
                U::CompressedOrEncryptedData { .. } => 8,
                U::UnfollowableLink { .. } => 9,
                U::TooManyLinks { .. } => 10,
                U::LogVersion { .. } => 11,
                U::JournalReplay { .. } => 12,
            },
        );
        documented_ntfs(
            "Refusal",
            vec![
                Refusal::SystemFile {
                    name: "$MFT".into(),
                    record: 0,
                },
                Refusal::AmbiguousDosName {
                    name: "a.sys".into(),
                    record: 64,
                },
            ],
            2,
            |r| match r {
                Refusal::SystemFile { .. } => 0,
                Refusal::AmbiguousDosName { .. } => 1,
            },
        );
        // Damage is a struct: its section describes its fields.
        assert!(section("Damage").contains("structure"));
    }

    #[test]
    fn json_carries_code_fields_and_message() {
        let v = serde_json::to_value(Blocker::BitLocker).unwrap();
        assert_eq!(v["code"], "bitlocker");
        assert!(v["message"].as_str().unwrap().contains("BitLocker"));
        let v = serde_json::to_value(Blocker::JournalNotClean {
            state: LogState::V2,
        })
        .unwrap();
        assert_eq!(v["code"], "journal_not_clean");
        assert_eq!(v["state"], "v2.0");
        // Nested values keep their own code and message.
        let v = serde_json::to_value(FixError::Refused {
            refusal: FixRefusal::Blocked {
                volume: windows(),
                blocker: Blocker::QuotaTracking,
            },
        })
        .unwrap();
        assert_eq!(v["code"], "refused");
        assert_eq!(v["refusal"]["code"], "blocked");
        assert_eq!(v["refusal"]["volume"]["partition"], 3);
        assert_eq!(v["refusal"]["blocker"]["code"], "quota_tracking");
        assert!(v["message"]
            .as_str()
            .unwrap()
            .starts_with("refused: partition 3 \"Windows\": disk quotas"));
        // A verification error serialises as its failure.
        let v = serde_json::to_value(VerifyError(VerifyFailure::NothingPlanned)).unwrap();
        assert_eq!(v["code"], "nothing_planned");
        assert_eq!(Checked::Bitmap.to_string(), "$Bitmap");
    }

    #[test]
    fn volume_names_read_as_before() {
        assert_eq!(windows().to_string(), "partition 3 \"Windows\"");
        assert_eq!(VolumeName::place(Some(2)).to_string(), "partition 2");
        assert_eq!(VolumeName::place(None).to_string(), "volume");
    }
}
