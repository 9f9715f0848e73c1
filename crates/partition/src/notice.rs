//! Notes and warnings about a partition table, as data. Each carries its English sentence (what the
//! command line prints) and a code with parameters, so the web page can say it in Japanese too.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum NoticeKind {
    GptSector4096,
    SizeNotWholeSectors {
        size: u64,
        sector_size: u64,
    },
    GptCopiesDiffer,
    GptDiskGuidsDiffer,
    BackupGptDamaged {
        detail: String,
    },
    PrimaryGptDamaged {
        detail: String,
        backup_lba: u64,
    },
    DiskEnlarged {
        backup_lba: u64,
        last_lba: u64,
    },
    GptTruncated {
        needed: u64,
        size: u64,
    },
    GptEntryImpossible {
        number: u32,
        name: String,
        first_lba: u64,
        last_lba: u64,
    },
    OutsideUsableArea {
        number: u32,
        first_lba: u64,
        last_lba: u64,
        usable_first: u64,
        usable_last: u64,
    },
    DynamicDiskGpt {
        number: u32,
    },
    HybridMbr,
    StaleGpt {
        at: u64,
    },
    ProtectiveMbrMissing,
    BareSectorCountedIn512 {
        boot_sector_size: u32,
    },
    BareNoSectorSize,
    PartitionTruncated {
        extended: bool,
        number: u32,
        end: u64,
        size: u64,
        missing: u64,
    },
    PartitionsOverlap {
        a: u32,
        b: u32,
        a_start: u64,
        a_end: u64,
        b_start: u64,
        b_end: u64,
    },
    DynamicDiskMbr {
        number: u32,
    },
    EbrPastEnd {
        ebr: u64,
        extended: u32,
    },
    EbrNoSignature {
        ebr: u64,
        extended: u32,
    },
    Mbr4096FromBootSectors {
        partitions: Vec<u32>,
    },
    Mbr4096FromExtendedChain,
    Mbr512FromDiskSize,
    Mbr512Assumed,
    /// No table: the disk is one volume ("NTFS volume", "BitLocker volume", ...).
    BareVolume {
        volume: String,
    },
    EmptyMbr,
}

impl fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use NoticeKind::*;
        match self {
            GptSector4096 => write!(f, "Logical sector size 4096: the GPT header is at byte 4096 (LBA 1)."),
            SizeNotWholeSectors { size, sector_size } => {
                write!(f, "The disk size ({size} bytes) is not a whole number of {sector_size}-byte sectors.")
            }
            GptCopiesDiffer => write!(
                f,
                "The primary and backup GPT differ; the primary was used, as Windows uses it. A partitioning tool may have been interrupted."
            ),
            GptDiskGuidsDiffer => write!(f, "The primary and backup GPT name different disk GUIDs."),
            BackupGptDamaged { detail } => write!(
                f,
                "The backup GPT is missing or damaged ({detail}). The primary GPT is intact and was used, so the partitions below are reliable. If the image is shorter than the disk it came from, it is truncated: re-export it completely."
            ),
            PrimaryGptDamaged { detail, backup_lba } => write!(
                f,
                "The primary GPT is damaged ({detail}); the backup GPT at LBA {backup_lba} is intact and was used. Windows would repair the primary from it; kaifuku leaves it as it is."
            ),
            DiskEnlarged { backup_lba, last_lba } => write!(
                f,
                "The backup GPT is at LBA {backup_lba}, before the last sector ({last_lba}): the disk was enlarged after it was partitioned; the space after LBA {backup_lba} is unpartitioned."
            ),
            GptTruncated { needed, size } => write!(
                f,
                "The GPT describes a disk of at least {needed} bytes but the image is only {size} bytes: the image is truncated. Re-export the disk completely if you can."
            ),
            GptEntryImpossible { number, name, first_lba, last_lba } => write!(
                f,
                "GPT entry {number} ({}) has an impossible range (LBA {first_lba}..{last_lba}) and was skipped.",
                if name.is_empty() { "unnamed" } else { name }
            ),
            OutsideUsableArea { number, first_lba, last_lba, usable_first, usable_last } => write!(
                f,
                "Partition {number} (LBA {first_lba}..{last_lba}) lies outside the GPT's usable area (LBA {usable_first}..{usable_last})."
            ),
            DynamicDiskGpt { number } => write!(
                f,
                "Partition {number} belongs to a Windows dynamic disk or storage pool: the volumes inside it are not described by the GPT and kaifuku cannot open them."
            ),
            HybridMbr => write!(
                f,
                "The MBR is a hybrid MBR (it lists partitions besides the GPT protective entry); the GPT is authoritative and was used."
            ),
            StaleGpt { at } => write!(
                f,
                "A GPT header is present (at byte {at}) but the MBR has no protective entry, so the GPT is stale and was ignored, as Windows ignores it. The MBR partitions are listed."
            ),
            ProtectiveMbrMissing => write!(
                f,
                "The protective MBR in the first sector is missing or empty; the GPT was read anyway. Some firmware will not boot this disk until the protective MBR is restored (gdisk can rebuild it)."
            ),
            BareSectorCountedIn512 { boot_sector_size } => write!(
                f,
                "The boot sector gives {boot_sector_size} bytes per sector; partition sectors are counted in 512."
            ),
            BareNoSectorSize => write!(f, "The boot sector gives no usable sector size; assuming 512 bytes per sector."),
            PartitionTruncated { extended, number, end, size, missing } => write!(
                f,
                "{} {number} ends at byte {end} but the disk image is only {size} bytes: the image is truncated (or the table is wrong), and the last {missing} bytes of that partition are missing. Re-export the disk completely if you can.",
                if *extended { "Extended partition" } else { "Partition" }
            ),
            PartitionsOverlap { a, b, a_start, a_end, b_start, b_end } => write!(
                f,
                "Partitions {a} and {b} overlap (bytes {a_start}..{a_end} and {b_start}..{b_end}): the table is damaged or was edited by hand; treat both with care."
            ),
            DynamicDiskMbr { number } => write!(
                f,
                "Partition {number} is a Windows dynamic disk (LDM) partition: its volumes are described by the LDM database, which kaifuku does not read."
            ),
            EbrPastEnd { ebr, extended } => write!(
                f,
                "The logical-partition table at sector {ebr} of extended partition {extended} lies past the end of the disk image (the image is truncated): logical partitions from there on are missing."
            ),
            EbrNoSignature { ebr, extended } => write!(
                f,
                "The logical-partition table at sector {ebr} of extended partition {extended} has no 55AA signature, so the chain of logical partitions ends there (as it does for Windows and Linux)."
            ),
            Mbr4096FromBootSectors { partitions } => write!(
                f,
                "Logical sector size 4096: counted in 4096-byte sectors, partition(s) {} start with a boot sector that says 4096 bytes per sector.",
                partitions.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
            ),
            Mbr4096FromExtendedChain => write!(
                f,
                "Logical sector size 4096: the extended partition's table is found only when sectors are counted as 4096 bytes."
            ),
            Mbr512FromDiskSize => write!(
                f,
                "Assumed a logical sector size of 512 bytes: no partition starts with a recognisable boot sector, and with 4096-byte sectors the partitions would run past the end of the disk."
            ),
            BareVolume { volume } => write!(
                f,
                "No partition table: the disk is a bare {volume} (its first sector is the volume's boot sector)."
            ),
            EmptyMbr => write!(f, "The MBR is valid but lists no partitions: the disk holds no volumes."),
            Mbr512Assumed => write!(
                f,
                "Could not tell the logical sector size from the disk (no partition starts with a recognisable boot sector); assumed 512 bytes, as almost all disks use. If the partitions look wrong, the disk may use 4096-byte sectors."
            ),
        }
    }
}

/// A note or warning: its code and parameters, and the English sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    #[serde(flatten)]
    pub kind: NoticeKind,
    pub message: String,
}

impl From<NoticeKind> for Notice {
    fn from(kind: NoticeKind) -> Notice {
        Notice {
            message: kind.to_string(),
            kind,
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The sentence, so callers can search and print a notice like text.
impl std::ops::Deref for Notice {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}
