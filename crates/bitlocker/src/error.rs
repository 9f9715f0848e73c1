//! Why a BitLocker volume could not be read or unlocked, as typed values.
//!
//! No variant carries key material: a password, recovery password or key never appears in an
//! error, its `Debug` or its `Display`, so errors can be logged and reported as they are.

use serde::{Deserialize, Serialize};

use crate::guid::Guid;
use crate::protector::ProtectionType;

/// Which on-disk structure of a BitLocker volume a fault was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FveStructure {
    /// The volume's first sector (`-FVE-FS-` or, for BitLocker To Go, `MSWIN4.1`).
    BootSector,
    /// One of the three FVE metadata blocks.
    MetadataBlock,
    /// The metadata entries of a block (protectors, keys, the volume header block).
    MetadataEntry,
    /// A startup key (`.BEK`) file.
    StartupKeyFile,
}

impl std::fmt::Display for FveStructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FveStructure::BootSector => "BitLocker boot sector",
            FveStructure::MetadataBlock => "FVE metadata block",
            FveStructure::MetadataEntry => "FVE metadata entry",
            FveStructure::StartupKeyFile => "startup key (.BEK) file",
        })
    }
}

/// Why a recovery password was not accepted before any key was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryPasswordFault {
    /// Not 48 digits in 8 groups of 6 (dashes and spaces between groups are fine).
    WrongLength {
        /// How many digits were given.
        digits: usize,
    },
    /// A character other than a digit, a dash or a space.
    NotADigit,
    /// This group (1 to 8) is not a multiple of 11 or is too large: it was mistyped.
    MistypedGroup {
        /// The group, counted from 1 at the left.
        group: u8,
    },
}

impl std::fmt::Display for RecoveryPasswordFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecoveryPasswordFault::WrongLength { digits } => write!(
                f,
                "a recovery password has 48 digits in 8 groups of 6; {digits} digits were given"
            ),
            RecoveryPasswordFault::NotADigit => write!(
                f,
                "a recovery password holds only digits (dashes or spaces between the groups are fine)"
            ),
            RecoveryPasswordFault::MistypedGroup { group } => write!(
                f,
                "group {group} of the recovery password is mistyped (each group of 6 digits is a multiple of 11 below 720896); check it against the printed key"
            ),
        }
    }
}

/// Why a BitLocker volume could not be read, unlocked or written.
#[derive(Debug, thiserror::Error)]
pub enum BitLockerError {
    /// The first sector carries no BitLocker signature.
    #[error("not a BitLocker volume (no -FVE-FS- boot sector)")]
    NotBitLocker,
    /// A structure contradicts itself; `detail` says which field, `offset` where (bytes from the
    /// start of the volume) when known.
    #[error("the {structure} is damaged{}: {detail}; the volume cannot be unlocked offline (let Windows' `repair-bde` recover it)", .offset.map(|o| format!(" at byte {o:#x}")).unwrap_or_default())]
    Damaged {
        /// Which structure.
        structure: FveStructure,
        /// Where, in bytes from the start of the volume (or the file), when known.
        offset: Option<u64>,
        /// What is wrong with it.
        detail: String,
    },
    /// None of the three FVE metadata blocks could be read and checked.
    #[error("none of the three FVE metadata blocks is readable (first: {first}); let Windows' `repair-bde` recover the volume")]
    NoValidMetadata {
        /// Why the first block was refused.
        first: Box<BitLockerError>,
    },
    /// The volume is still being converted by "encrypt on write" (Windows 10 and later, or an
    /// encryption paused part-way); its layout is not read offline.
    #[error("this BitLocker volume is still being encrypted (encrypt-on-write conversion in progress); let Windows finish or resume it (`manage-bde -resume`), or repair the machine from Windows' recovery environment")]
    EncryptOnWrite,
    /// The metadata says a conversion is under way (state 2: Windows was encrypting or
    /// decrypting the volume when it stopped; 3: encrypt-on-write activated). Around the
    /// conversion point sectors are in neither state for sure, so nothing is read as if it were.
    #[error("this BitLocker volume is in the middle of a conversion (state {state}: Windows was encrypting or decrypting it when it stopped), so which of its sectors are encrypted cannot be known offline; let Windows finish or resume the conversion (`manage-bde -resume`), or repair the machine from Windows' recovery environment")]
    ConversionInProgress {
        /// The metadata's current state.
        state: u16,
    },
    /// The metadata names an encryption method kaifuku does not know.
    #[error("unknown BitLocker encryption method {0:#06x}")]
    UnknownMethod(u16),
    /// A metadata version kaifuku does not read (Windows Vista's BitLocker is version 1).
    #[error(
        "BitLocker metadata version {0} is not supported (only Windows 7 and later, version 2)"
    )]
    UnsupportedVersion(u16),
    /// The recovery password is malformed; nothing was tried.
    #[error("{0}")]
    RecoveryPassword(RecoveryPasswordFault),
    /// The volume has no protector of the kind the given key unlocks.
    #[error("the volume has no {wanted} protector (it has: {available}); use one of those")]
    NoSuchProtector {
        /// What the given key needs.
        wanted: ProtectionType,
        /// The protector kinds the volume has, in words.
        available: String,
    },
    /// The key was tried on every protector of its kind and opened none.
    #[error("the {kind} does not unlock this volume (tried {tried} protector(s)); check it and try again")]
    WrongKey {
        /// What was given.
        kind: ProtectionType,
        /// How many protectors were tried.
        tried: usize,
    },
    /// Only protectors that need a TPM, smart card or other hardware: no offline unlock.
    #[error("this volume is protected only by {available}, which cannot be used offline; give its 48-digit recovery password")]
    NeedsRecoveryPassword {
        /// The protector kinds the volume has, in words.
        available: String,
    },
    /// A key list has no entry for any protector of the volume.
    #[error("the key list has no key for this volume's recovery password protector(s) {}; export the keys for this machine", .ids.iter().map(|g| g.to_string()).collect::<Vec<_>>().join(", "))]
    NotInKeyList {
        /// The GUIDs of the volume's recovery password protectors.
        ids: Vec<Guid>,
    },
    /// A key list line could not be read.
    #[error("line {line} of the key list is not `Id,Key` with a protector GUID and a 48-digit recovery password")]
    KeyListLine {
        /// The line, counted from 1.
        line: usize,
    },
    /// A patch falls in a region BitLocker keeps for itself (metadata or the relocated boot
    /// sectors): writing it would damage the encryption metadata.
    #[error("a write at byte {offset:#x} of the decrypted volume falls in BitLocker's own metadata area; refused")]
    WriteIntoMetadata {
        /// Offset in the decrypted view.
        offset: u64,
    },
    /// Reading the volume failed.
    #[error("reading the BitLocker volume failed while {what}: {source}")]
    Io {
        /// What was being read.
        what: &'static str,
        /// The error of the layer below.
        #[source]
        source: std::io::Error,
    },
}

impl BitLockerError {
    pub(crate) fn damaged(
        structure: FveStructure,
        offset: Option<u64>,
        detail: impl Into<String>,
    ) -> BitLockerError {
        BitLockerError::Damaged {
            structure,
            offset,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> BitLockerError {
        move |source| BitLockerError::Io { what, source }
    }
}
