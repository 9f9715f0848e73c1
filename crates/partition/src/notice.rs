//! Notes and warnings about a partition table, as data. Each carries its English sentence (what the
//! command line prints) and a code with parameters, so the web page can say it in Japanese too.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a note or warning is about, with the numbers it quotes. The serialised `code` (snake_case
/// of the variant) and fields are what the JSON report and the web page's wording rely on: renaming
/// a variant or a field changes the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum NoticeKind {
    /// The GPT was found at LBA 1 of 4096-byte sectors: every LBA in the table counts 4096 bytes.
    GptSector4096,
    /// The image ends in a partial sector, so its last bytes belong to no LBA.
    SizeNotWholeSectors {
        /// Size of the image in bytes.
        size: u64,
        /// The logical sector size in use.
        sector_size: u64,
    },
    /// The two GPT copies list different partitions; the primary is used, as Windows uses it.
    GptCopiesDiffer,
    /// The two GPT copies name different disk GUIDs: one of them belongs to another disk.
    GptDiskGuidsDiffer,
    /// Only the primary GPT is usable: the partitions are reliable, but the image may be cut short.
    BackupGptDamaged {
        /// What is wrong with the backup.
        detail: String,
    },
    /// Only the backup GPT is usable, and the partitions come from it.
    PrimaryGptDamaged {
        /// What is wrong with the primary.
        detail: String,
        /// Where the backup header that was used lies.
        backup_lba: u64,
    },
    /// The backup GPT sits before the disk's last sector: the disk grew after partitioning.
    DiskEnlarged {
        /// Where the backup header lies.
        backup_lba: u64,
        /// The disk's last sector now.
        last_lba: u64,
    },
    /// The GPT describes a larger disk than the image holds: the export is incomplete.
    GptTruncated {
        /// Bytes the GPT says the disk has at least.
        needed: u64,
        /// Bytes the image has.
        size: u64,
    },
    /// A GPT entry whose range is impossible (ends before it starts, or overflows); it is skipped.
    GptEntryImpossible {
        /// The partition number the entry would have had.
        number: u32,
        /// The entry's name, empty when it has none.
        name: String,
        /// First LBA as the entry gives it.
        first_lba: u64,
        /// Last LBA as the entry gives it.
        last_lba: u64,
    },
    /// A partition outside the GPT header's usable area: unusual, but listed as the table says.
    OutsideUsableArea {
        /// The partition's number.
        number: u32,
        /// Its first LBA.
        first_lba: u64,
        /// Its last LBA.
        last_lba: u64,
        /// First usable LBA per the header.
        usable_first: u64,
        /// Last usable LBA per the header.
        usable_last: u64,
    },
    /// A GPT partition of a Windows dynamic disk or storage pool: its volumes are not in the GPT.
    DynamicDiskGpt {
        /// The partition's number.
        number: u32,
    },
    /// The MBR lists partitions besides the GPT's protective entry; the GPT is used.
    HybridMbr,
    /// A GPT header with no protective MBR entry: left over from earlier partitioning, ignored.
    StaleGpt {
        /// Byte offset of the stale header.
        at: u64,
    },
    /// A GPT without its protective MBR: readable, but some firmware will not boot the disk.
    ProtectiveMbrMissing,
    /// A bare volume's boot sector gives a sector size other than 512 or 4096; LBAs count 512.
    BareSectorCountedIn512 {
        /// Bytes per sector as the boot sector gives them.
        boot_sector_size: u32,
    },
    /// A bare volume whose boot sector gives no sector size; 512 is assumed.
    BareNoSectorSize,
    /// A partition runs past the end of the image: its last bytes are missing.
    PartitionTruncated {
        /// Whether it is an MBR extended partition rather than one holding a file system.
        extended: bool,
        /// The partition's number.
        number: u32,
        /// Byte offset just past the partition, as the table gives it.
        end: u64,
        /// Bytes the image has.
        size: u64,
        /// Bytes of the partition the image lacks.
        missing: u64,
    },
    /// Two partitions share bytes: writing to one could change the other.
    PartitionsOverlap {
        /// Number of the partition that starts first.
        a: u32,
        /// Number of the other.
        b: u32,
        /// First byte of `a`.
        a_start: u64,
        /// Byte offset just past `a`.
        a_end: u64,
        /// First byte of `b`.
        b_start: u64,
        /// Byte offset just past `b`.
        b_end: u64,
    },
    /// An MBR partition of type 0x42 (Windows dynamic disk): its volumes are in the LDM database,
    /// which kaifuku does not read.
    DynamicDiskMbr {
        /// The partition's number.
        number: u32,
    },
    /// A logical-partition table (EBR) past the end of the image: the logical partitions from
    /// there on are missing.
    EbrPastEnd {
        /// Sector of the missing EBR.
        ebr: u64,
        /// Number of the extended partition whose chain it is in.
        extended: u32,
    },
    /// An EBR without the 55AA signature ends the chain there, as it does for Windows and Linux.
    EbrNoSignature {
        /// Sector of the EBR.
        ebr: u64,
        /// Number of the extended partition whose chain it is in.
        extended: u32,
    },
    /// The sector size of an MBR disk is 4096 because boot sectors inside the partitions say so.
    Mbr4096FromBootSectors {
        /// The partitions whose boot sectors say 4096.
        partitions: Vec<u32>,
    },
    /// The sector size of an MBR disk is 4096 because only then is the extended chain found.
    Mbr4096FromExtendedChain,
    /// The sector size of an MBR disk is 512 because with 4096 the partitions would not fit.
    Mbr512FromDiskSize,
    /// Nothing tells the sector size of an MBR disk; 512 is assumed, and the partitions may be
    /// wrong if the disk uses 4096.
    Mbr512Assumed,
    /// No table: the disk is one volume ("NTFS volume", "BitLocker volume", ...).
    BareVolume {
        /// What the volume is, as the boot sector's OEM id or layout says.
        volume: String,
    },
    /// A valid MBR with no partitions: a disk with nothing to repair.
    EmptyMbr,
}

impl fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoticeKind::GptSector4096 => write!(f, "Logical sector size 4096: the GPT header is at byte 4096 (LBA 1)."),
            NoticeKind::SizeNotWholeSectors { size, sector_size } => {
                write!(f, "The disk size ({size} bytes) is not a whole number of {sector_size}-byte sectors.")
            }
            NoticeKind::GptCopiesDiffer => write!(
                f,
                "The primary and backup GPT differ; the primary was used, as Windows uses it. A partitioning tool may have been interrupted."
            ),
            NoticeKind::GptDiskGuidsDiffer => write!(f, "The primary and backup GPT name different disk GUIDs."),
            NoticeKind::BackupGptDamaged { detail } => write!(
                f,
                "The backup GPT is missing or damaged ({detail}). The primary GPT is intact and was used, so the partitions below are reliable. If the image is shorter than the disk it came from, it is truncated: re-export it completely."
            ),
            NoticeKind::PrimaryGptDamaged { detail, backup_lba } => write!(
                f,
                "The primary GPT is damaged ({detail}); the backup GPT at LBA {backup_lba} is intact and was used. Windows would repair the primary from it; kaifuku leaves it as it is."
            ),
            NoticeKind::DiskEnlarged { backup_lba, last_lba } => write!(
                f,
                "The backup GPT is at LBA {backup_lba}, before the last sector ({last_lba}): the disk was enlarged after it was partitioned; the space after LBA {backup_lba} is unpartitioned."
            ),
            NoticeKind::GptTruncated { needed, size } => write!(
                f,
                "The GPT describes a disk of at least {needed} bytes but the image is only {size} bytes: the image is truncated. Re-export the disk completely if you can."
            ),
            NoticeKind::GptEntryImpossible { number, name, first_lba, last_lba } => write!(
                f,
                "GPT entry {number} ({}) has an impossible range (LBA {first_lba}..{last_lba}) and was skipped.",
                if name.is_empty() { "unnamed" } else { name }
            ),
            NoticeKind::OutsideUsableArea { number, first_lba, last_lba, usable_first, usable_last } => write!(
                f,
                "Partition {number} (LBA {first_lba}..{last_lba}) lies outside the GPT's usable area (LBA {usable_first}..{usable_last})."
            ),
            NoticeKind::DynamicDiskGpt { number } => write!(
                f,
                "Partition {number} belongs to a Windows dynamic disk or storage pool: the volumes inside it are not described by the GPT and kaifuku cannot open them."
            ),
            NoticeKind::HybridMbr => write!(
                f,
                "The MBR is a hybrid MBR (it lists partitions besides the GPT protective entry); the GPT is authoritative and was used."
            ),
            NoticeKind::StaleGpt { at } => write!(
                f,
                "A GPT header is present (at byte {at}) but the MBR has no protective entry, so the GPT is stale and was ignored, as Windows ignores it. The MBR partitions are listed."
            ),
            NoticeKind::ProtectiveMbrMissing => write!(
                f,
                "The protective MBR in the first sector is missing or empty; the GPT was read anyway. Some firmware will not boot this disk until the protective MBR is restored (gdisk can rebuild it)."
            ),
            NoticeKind::BareSectorCountedIn512 { boot_sector_size } => write!(
                f,
                "The boot sector gives {boot_sector_size} bytes per sector; partition sectors are counted in 512."
            ),
            NoticeKind::BareNoSectorSize => write!(f, "The boot sector gives no usable sector size; assuming 512 bytes per sector."),
            NoticeKind::PartitionTruncated { extended, number, end, size, missing } => write!(
                f,
                "{} {number} ends at byte {end} but the disk image is only {size} bytes: the image is truncated (or the table is wrong), and the last {missing} bytes of that partition are missing. Re-export the disk completely if you can.",
                if *extended { "Extended partition" } else { "Partition" }
            ),
            NoticeKind::PartitionsOverlap { a, b, a_start, a_end, b_start, b_end } => write!(
                f,
                "Partitions {a} and {b} overlap (bytes {a_start}..{a_end} and {b_start}..{b_end}): the table is damaged or was edited by hand; treat both with care."
            ),
            NoticeKind::DynamicDiskMbr { number } => write!(
                f,
                "Partition {number} is a Windows dynamic disk (LDM) partition: its volumes are described by the LDM database, which kaifuku does not read."
            ),
            NoticeKind::EbrPastEnd { ebr, extended } => write!(
                f,
                "The logical-partition table at sector {ebr} of extended partition {extended} lies past the end of the disk image (the image is truncated): logical partitions from there on are missing."
            ),
            NoticeKind::EbrNoSignature { ebr, extended } => write!(
                f,
                "The logical-partition table at sector {ebr} of extended partition {extended} has no 55AA signature, so the chain of logical partitions ends there (as it does for Windows and Linux)."
            ),
            NoticeKind::Mbr4096FromBootSectors { partitions } => write!(
                f,
                "Logical sector size 4096: counted in 4096-byte sectors, partition(s) {} start with a boot sector that says 4096 bytes per sector.",
                partitions.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
            ),
            NoticeKind::Mbr4096FromExtendedChain => write!(
                f,
                "Logical sector size 4096: the extended partition's table is found only when sectors are counted as 4096 bytes."
            ),
            NoticeKind::Mbr512FromDiskSize => write!(
                f,
                "Assumed a logical sector size of 512 bytes: no partition starts with a recognisable boot sector, and with 4096-byte sectors the partitions would run past the end of the disk."
            ),
            NoticeKind::BareVolume { volume } => write!(
                f,
                "No partition table: the disk is a bare {volume} (its first sector is the volume's boot sector)."
            ),
            NoticeKind::EmptyMbr => write!(f, "The MBR is valid but lists no partitions: the disk holds no volumes."),
            NoticeKind::Mbr512Assumed => write!(
                f,
                "Could not tell the logical sector size from the disk (no partition starts with a recognisable boot sector); assumed 512 bytes, as almost all disks use. If the partitions look wrong, the disk may use 4096-byte sectors."
            ),
        }
    }
}

/// A note or warning: its code and parameters, and the English sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// What the notice is about, serialised as `code` plus the parameters.
    #[serde(flatten)]
    pub kind: NoticeKind,
    /// The English sentence, as the command line prints it.
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
