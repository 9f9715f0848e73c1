//! Partition tables of a virtual disk: protective MBR + GPT, plain MBR with extended/logical
//! partitions, or a bare volume with no table at all; logical sector size 512 or 4096.
//!
//! [`read_partitions`] reads a handful of sectors through [`ReadAt`] (first sector, GPT headers and
//! entry arrays, EBRs, and the first sector of each partition when the sector size of an MBR disk has
//! to be worked out) and returns a [`PartitionTable`]. Damage that still leaves a trustworthy answer
//! (a broken primary GPT with a good backup, an image cut short) is reported in
//! [`PartitionTable::warnings`]; damage that leaves none is a [`PartitionError`] whose message says
//! what is wrong and what to do next.
#![forbid(unsafe_code)]

mod boot;
mod gpt_table;
mod mbr;
pub mod notice;
pub mod types;

pub use notice::{Notice, NoticeKind};
pub use types::{NamedType, PartitionType, WordedType};

use kaifuku_io::{ReadAt, Slice};
use serde::Serialize;
use std::io;

/// Most GPT partition entries accepted (Windows and every common tool write 128).
pub const MAX_GPT_ENTRIES: u32 = 4096;
/// Most extended boot records followed in one extended partition.
pub const MAX_EBRS: usize = 256;

/// How the disk is divided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// GUID partition table (behind a protective MBR).
    Gpt,
    /// Classic MBR, possibly with an extended partition holding logical partitions.
    Mbr,
    /// No partition table: the whole disk is one volume.
    None,
}

/// The partitions of a disk, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionTable {
    /// Which kind of table was found, and so how partitions are numbered.
    pub scheme: Scheme,
    /// Logical sector size in bytes (512 or 4096); LBAs below count sectors of this size.
    pub sector_size: u32,
    /// GPT disk GUID, uppercase.
    pub disk_guid: Option<String>,
    /// MBR disk signature (bytes 440..444) as `0x` + 8 hex digits; Windows' boot configuration
    /// refers to MBR disks by it.
    pub disk_signature: Option<String>,
    /// Every partition, in number order. Extended containers are included with `container: true`.
    pub partitions: Vec<Partition>,
    /// How the answer was reached, when that is worth saying (an assumed sector size, say).
    pub notes: Vec<Notice>,
    /// Damage or oddities that did not prevent an answer but that a user should know about.
    pub warnings: Vec<Notice>,
}

impl PartitionTable {
    /// The partitions that can hold a file system (everything but extended containers).
    pub fn data_partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.iter().filter(|p| !p.container)
    }

    /// The partition with this number (1-based, as Linux numbers them).
    pub fn partition(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// 1-based, as Linux numbers them: GPT entry index + 1; MBR slots 1-4, logicals 5.. in chain order.
    pub number: u32,
    /// Byte offset on the virtual disk.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// First logical sector (of [`PartitionTable::sector_size`] bytes).
    pub first_lba: u64,
    /// Last logical sector, inclusive.
    pub last_lba: u64,
    /// GPT type GUID in uppercase, MBR type as `0x` + two hex digits, or for a bare volume the kind
    /// of file system (`NTFS`, `BitLocker`, `exFAT`, `FAT`).
    pub type_code: String,
    /// What the type code says the partition is; serialised as its English name ("Basic data",
    /// "NTFS/exFAT/HPFS", "Extended", ...).
    pub type_name: PartitionType,
    /// GPT partition name (None when the entry has none).
    pub name: Option<String>,
    /// GPT unique partition GUID, uppercase.
    pub guid: Option<String>,
    /// GPT attribute bits (bit 0 required, bit 62 hidden, bit 63 no drive letter, ...).
    pub attributes: Option<u64>,
    /// MBR active flag.
    pub bootable: bool,
    /// MBR logical partition (inside an extended partition).
    pub logical: bool,
    /// MBR extended partition: a container of logical partitions that holds no file system itself.
    pub container: bool,
}

impl Partition {
    /// The partition's bytes as a byte space of their own. Fails when the partition runs past the end
    /// of `disk` (a truncated image).
    pub fn view<R: ReadAt>(&self, disk: R) -> io::Result<Slice<R>> {
        Slice::new(disk, self.start, self.size)
    }

    /// Byte offset just past the partition's last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }
}

/// Why no partition table could be given.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The disk is shorter than one sector: the export or the copy is incomplete.
    #[error(
        "the disk image is only {size} bytes, too small to hold even a partition table \
         (512 bytes). Check that the whole disk was exported and the file was copied completely."
    )]
    TooSmall {
        /// Bytes the disk has.
        size: u64,
    },

    /// The reader below failed (an I/O error, or damaged container metadata under the disk).
    #[error("could not read {what} at byte {offset} of the disk: {source}")]
    Read {
        /// The structure being read, in words ("the first sector").
        what: String,
        /// Where on the disk the read started.
        offset: u64,
        /// What the reader said.
        #[source]
        source: io::Error,
    },

    /// The first sector is all zeros: a blank disk or an export that missed its start.
    #[error(
        "the disk has no partition table and no NTFS boot sector: its first sector is all zeros. \
         The image may be blank, or its start was not exported; check the export. If the disk \
         really held partitions, a recovery tool such as testdisk can search a copy for lost ones."
    )]
    NoTable,

    /// The first sector is neither a table nor a boot sector kaifuku knows: perhaps a container
    /// file opened as raw.
    #[error(
        "the first sector of the disk holds neither a partition table nor an NTFS boot sector: \
         {detail}. If this is a container file (VHD, VHDX, VMDK, qcow2), open it as that format; \
         otherwise the image is not a disk kaifuku can read."
    )]
    Unrecognized {
        /// What the sector looks like instead.
        detail: String,
    },

    /// Both GPT copies are damaged, so no partition can be trusted and nothing is guessed.
    #[error(
        "the GPT partition table is damaged and neither copy can be trusted. Primary: {primary}. \
         Backup: {backup}. Nothing was changed. Re-export the disk if you can; otherwise repair a \
         copy of the image with gdisk's recovery menu or testdisk, then try again."
    )]
    GptDamaged {
        /// What is wrong with the primary GPT.
        primary: String,
        /// What is wrong with the backup GPT.
        backup: String,
    },

    /// A GPT that is intact but uses entry sizes or counts kaifuku does not accept.
    #[error(
        "the GPT partition table uses a layout kaifuku does not support: {detail}. Nothing was \
         changed; use another tool for this disk."
    )]
    GptUnsupported {
        /// Which layout it is.
        detail: String,
    },

    /// The chain of logical-partition tables points back to itself: following it would never end.
    #[error(
        "the chain of logical partitions inside extended partition {extended} loops back to the \
         table at sector {ebr_lba}: the MBR's extended partition is damaged. Nothing was changed. \
         Repair a copy of the image with testdisk (or re-create the logical partitions at the \
         same sectors with fdisk), then try again."
    )]
    ExtendedLoop {
        /// Number of the extended partition.
        extended: u32,
        /// Sector of the table the chain returns to.
        ebr_lba: u64,
    },

    /// A logical partition or a link in the chain lies outside its extended partition.
    #[error(
        "the extended partition of this MBR disk is damaged: {detail}. Nothing was changed. Repair a \
         copy of the image with testdisk, then try again."
    )]
    ExtendedOutOfRange {
        /// Which one, and the sectors involved.
        detail: String,
    },

    /// The chain of logical-partition tables is longer than [`MAX_EBRS`]: no real disk comes close,
    /// so the chain is damaged and further links would only be garbage.
    #[error(
        "extended partition {extended} chains more than {limit} logical partition tables; the chain \
         is damaged. Nothing was changed. Repair a copy of the image with testdisk, then try again."
    )]
    ExtendedTooLong {
        /// Number of the extended partition.
        extended: u32,
        /// The most tables followed ([`MAX_EBRS`]).
        limit: usize,
    },
}

pub(crate) fn read_exact<R: ReadAt + ?Sized>(
    disk: &R,
    what: &str,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), PartitionError> {
    disk.read_at(offset, buf)
        .map_err(|source| PartitionError::Read {
            what: what.to_string(),
            offset,
            source,
        })
}

/// Reads the partition table of a virtual disk.
///
/// Order of recognition: an NTFS/BitLocker/exFAT boot sector at sector 0 means a bare volume (such a
/// boot sector ends in 55AA like an MBR, so it is checked first); a protective (0xEE) MBR entry means
/// GPT; other valid MBR entries mean MBR (a GPT header without a protective entry is stale and is
/// ignored, as Windows does); a GPT header with an empty or missing MBR is still read, with a
/// warning.
pub fn read_partitions<R: ReadAt>(disk: &R) -> Result<PartitionTable, PartitionError> {
    let size = disk.size();
    if size < 512 {
        return Err(PartitionError::TooSmall { size });
    }
    let mut s0 = [0u8; 512];
    read_exact(disk, "the first sector", 0, &mut s0)?;

    if let Some(bs) = boot::by_oem_id(&s0) {
        return Ok(bare_volume(size, bs));
    }

    let table = mbr::Sector0::parse(&s0);
    let used = table.as_ref().map(|t| t.used().count()).unwrap_or(0);
    let protective = table.as_ref().is_some_and(|t| t.has_protective());

    if protective {
        let mut t = gpt_table::read(disk, table.as_ref())?;
        if used > 1 {
            t.notes.push(NoticeKind::HybridMbr.into());
        }
        return Ok(t);
    }

    let gpt_primary = gpt_table::primary_signature(disk)?;
    if used > 0 {
        let mut t = mbr::read(disk, &s0)?;
        if let Some(ss) = gpt_primary {
            t.warnings.push(NoticeKind::StaleGpt { at: ss }.into());
        }
        return Ok(t);
    }

    if gpt_primary.is_some() || gpt_table::backup_signature(disk)?.is_some() {
        let mut t = gpt_table::read(disk, table.as_ref())?;
        t.warnings.push(NoticeKind::ProtectiveMbrMissing.into());
        return Ok(t);
    }

    if let Some(bs) = boot::fat_like(&s0) {
        return Ok(bare_volume(size, bs));
    }

    if let Some(t) = table {
        // A valid, empty MBR: an initialised disk with no partitions.
        let mut pt = mbr::empty_table(&t);
        pt.warnings.push(NoticeKind::EmptyMbr.into());
        return Ok(pt);
    }

    if s0.iter().all(|&b| b == 0) {
        return Err(PartitionError::NoTable);
    }
    Err(PartitionError::Unrecognized {
        detail: boot::describe_unknown(&s0),
    })
}

fn bare_volume(size: u64, bs: boot::BootSector) -> PartitionTable {
    let mut notes: Vec<Notice> = vec![NoticeKind::BareVolume {
        volume: bs.kind.volume_name().to_string(),
    }
    .into()];
    let sector_size = match bs.bytes_per_sector {
        Some(s @ (512 | 4096)) => s,
        Some(s) => {
            notes.push(
                NoticeKind::BareSectorCountedIn512 {
                    boot_sector_size: s,
                }
                .into(),
            );
            512
        }
        None => {
            notes.push(NoticeKind::BareNoSectorSize.into());
            512
        }
    };
    let ss = u64::from(sector_size);
    if size % ss != 0 {
        notes.push(
            NoticeKind::SizeNotWholeSectors {
                size,
                sector_size: ss,
            }
            .into(),
        );
    }
    PartitionTable {
        scheme: Scheme::None,
        sector_size,
        disk_guid: None,
        disk_signature: None,
        partitions: vec![Partition {
            number: 1,
            start: 0,
            size,
            first_lba: 0,
            last_lba: (size / ss).saturating_sub(1),
            type_code: bs.kind.code().into(),
            type_name: bs.kind.partition_type(),
            name: None,
            guid: None,
            attributes: None,
            bootable: false,
            logical: false,
            container: false,
        }],
        notes,
        warnings: Vec::new(),
    }
}

/// Warnings shared by both schemes: partitions past the end of the image, overlapping partitions.
pub(crate) fn check_layout(disk_size: u64, parts: &[Partition], warnings: &mut Vec<Notice>) {
    for p in parts {
        if p.end() > disk_size {
            warnings.push(
                NoticeKind::PartitionTruncated {
                    extended: p.container,
                    number: p.number,
                    end: p.end(),
                    size: disk_size,
                    missing: p.end() - disk_size.max(p.start),
                }
                .into(),
            );
        }
    }
    let mut data: Vec<&Partition> = parts.iter().filter(|p| !p.container).collect();
    data.sort_by_key(|p| (p.start, p.number));
    for w in data.windows(2) {
        if w[1].start < w[0].end() {
            warnings.push(
                NoticeKind::PartitionsOverlap {
                    a: w[0].number,
                    b: w[1].number,
                    a_start: w[0].start,
                    a_end: w[0].end(),
                    b_start: w[1].start,
                    b_end: w[1].end(),
                }
                .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpt::disk::LogicalBlockSize;

    const MIB: usize = 1 << 20;

    /// A GPT disk made by the gpt crate itself: EFI System (1 MiB) + Basic data (2 MiB).
    fn gpt_disk(size: usize, lb: LogicalBlockSize) -> Vec<u8> {
        let ss = lb.as_usize();
        let mut dev = std::io::Cursor::new(vec![0u8; size]);
        gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(size / ss - 1).unwrap())
            .overwrite_lba0(&mut dev)
            .unwrap();
        let mut g = gpt::GptConfig::default()
            .writable(true)
            .logical_block_size(lb)
            .create_from_device(dev, None)
            .unwrap();
        g.add_partition(
            "EFI system partition",
            MIB as u64,
            gpt::partition_types::EFI,
            0,
            None,
        )
        .unwrap();
        g.add_partition(
            "Basic data partition",
            2 * MIB as u64,
            gpt::partition_types::BASIC,
            0x8000_0000_0000_0000,
            None,
        )
        .unwrap();
        g.write().unwrap().into_inner()
    }

    fn crc32(b: &[u8]) -> u32 {
        crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b)
    }

    /// Rewrites a u32 field of the header at `at` and fixes the header CRC, as a tool would.
    fn patch_header_u32(d: &mut [u8], at: usize, field: usize, value: u32) {
        d[at + field..at + field + 4].copy_from_slice(&value.to_le_bytes());
        d[at + 16..at + 20].fill(0);
        let c = crc32(&d[at..at + 92]);
        d[at + 16..at + 20].copy_from_slice(&c.to_le_bytes());
    }

    fn backup_at(d: &[u8], ss: usize) -> usize {
        d.len() - ss
    }

    #[test]
    fn gpt_basic() {
        let d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.scheme, Scheme::Gpt);
        assert_eq!(t.sector_size, 512);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert!(t.disk_guid.is_some());
        assert_eq!(t.partitions.len(), 2);
        let efi = &t.partitions[0];
        assert_eq!(efi.number, 1);
        assert_eq!(efi.type_code, types::GPT_EFI_SYSTEM);
        assert_eq!(efi.type_name, "EFI System");
        assert_eq!(efi.name.as_deref(), Some("EFI system partition"));
        assert_eq!(efi.size, MIB as u64);
        assert_eq!(efi.start, efi.first_lba * 512);
        let data = &t.partitions[1];
        assert_eq!(data.type_name, "Basic data");
        assert_eq!(data.attributes, Some(0x8000_0000_0000_0000));
        assert_eq!(data.last_lba - data.first_lba + 1, (2 * MIB / 512) as u64);
        let g = data.guid.as_deref().unwrap();
        assert_eq!(g, g.to_ascii_uppercase());
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["scheme"], "gpt");
    }

    #[test]
    fn gpt_4096() {
        let d = gpt_disk(16 * MIB, LogicalBlockSize::Lb4096);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.sector_size, 4096);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.partitions[1].start, t.partitions[1].first_lba * 4096);
        assert_eq!(t.partitions[1].size, 2 * MIB as u64);
    }

    #[test]
    fn damaged_primary_uses_backup_with_a_warning() {
        let good = read_partitions(&gpt_disk(8 * MIB, LogicalBlockSize::Lb512)).unwrap();
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        d[512 + 60] ^= 0xFF; // inside the disk GUID: header CRC no longer matches
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.partitions.len(), 2);
        for (a, b) in t.partitions.iter().zip(&good.partitions) {
            assert_eq!((a.first_lba, a.last_lba), (b.first_lba, b.last_lba));
        }
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("primary GPT is damaged")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn damaged_primary_entries_use_backup() {
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        d[1024 + 40] ^= 0x01; // first entry's first LBA: entry-array CRC fails
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert!(
            t.warnings.iter().any(|w| w.contains("CRC32")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn both_headers_damaged_is_an_error() {
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        let b = backup_at(&d, 512);
        d[512 + 60] ^= 0xFF;
        d[b + 60] ^= 0xFF;
        let err = read_partitions(&d).unwrap_err();
        assert!(matches!(err, PartitionError::GptDamaged { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("CRC32") && msg.contains("gdisk"), "{msg}");
    }

    #[test]
    fn huge_entry_count_is_refused_before_the_crate_sees_it() {
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        let b = backup_at(&d, 512);
        patch_header_u32(&mut d, 512, 80, u32::MAX);
        patch_header_u32(&mut d, b, 80, u32::MAX);
        let err = read_partitions(&d).unwrap_err();
        assert!(
            matches!(err, PartitionError::GptUnsupported { .. }),
            "{err:?}"
        );
        // Only the primary claims it: the backup is used.
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        patch_header_u32(&mut d, 512, 80, 1_000_000);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert!(!t.warnings.is_empty());
    }

    #[test]
    fn odd_entry_size_does_not_panic() {
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        let b = backup_at(&d, 512);
        patch_header_u32(&mut d, 512, 84, 256);
        patch_header_u32(&mut d, b, 84, 256);
        let err = read_partitions(&d).unwrap_err();
        assert!(
            matches!(err, PartitionError::GptUnsupported { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("256"), "{err}");
    }

    #[test]
    fn wiped_start_falls_back_to_backup_gpt() {
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        d[..64 * 1024].fill(0);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.scheme, Scheme::Gpt);
        assert_eq!(t.partitions.len(), 2);
        assert!(t.warnings.len() >= 2, "{:?}", t.warnings);
    }

    #[test]
    fn truncated_gpt_disk_warns() {
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        d.truncate(3 * MIB);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("backup GPT is missing")),
            "{:?}",
            t.warnings
        );
        assert!(
            t.warnings.iter().any(|w| w.contains("Partition 2 ends")),
            "{:?}",
            t.warnings
        );
        assert!(t.partitions[1].view(&d).is_err());
    }

    #[test]
    fn stale_gpt_behind_a_real_mbr_is_ignored() {
        let mut d = gpt_disk(8 * MIB, LogicalBlockSize::Lb512);
        // Replace the protective entry by an NTFS one.
        d[446 + 4] = 0x07;
        d[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        d[446 + 12..446 + 16].copy_from_slice(&4096u32.to_le_bytes());
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.scheme, Scheme::Mbr);
        assert!(
            t.warnings.iter().any(|w| w.contains("stale")),
            "{:?}",
            t.warnings
        );
    }

    fn boot_sector(oem: &[u8; 8], bps: u16) -> Vec<u8> {
        let mut d = vec![0u8; 64 * 1024];
        d[0..3].copy_from_slice(&[0xEB, 0x52, 0x90]);
        d[3..11].copy_from_slice(oem);
        d[11..13].copy_from_slice(&bps.to_le_bytes());
        d[510] = 0x55;
        d[511] = 0xAA;
        d
    }

    #[test]
    fn bare_ntfs_and_bitlocker() {
        let d = boot_sector(b"NTFS    ", 4096);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.scheme, Scheme::None);
        assert_eq!(t.sector_size, 4096);
        assert_eq!(t.partitions.len(), 1);
        let p = &t.partitions[0];
        assert_eq!((p.number, p.start, p.size), (1, 0, d.len() as u64));
        assert_eq!(p.last_lba, 15);
        assert_eq!(p.type_code, "NTFS");
        assert_eq!(serde_json::to_value(&t).unwrap()["scheme"], "none");

        let t = read_partitions(&boot_sector(b"-FVE-FS-", 512)).unwrap();
        assert_eq!(t.scheme, Scheme::None);
        assert_eq!(t.sector_size, 512);
        assert_eq!(t.partitions[0].type_code, "BitLocker");
    }

    #[test]
    fn empty_disk_has_no_table() {
        let err = read_partitions(&vec![0u8; 1 << 20]).unwrap_err();
        assert!(matches!(err, PartitionError::NoTable), "{err:?}");
        assert!(err.to_string().contains("all zeros"), "{err}");
    }

    #[test]
    fn too_small_and_unrecognised() {
        let err = read_partitions(&vec![0u8; 100]).unwrap_err();
        assert!(
            matches!(err, PartitionError::TooSmall { size: 100 }),
            "{err:?}"
        );
        let mut d = vec![0u8; 4096];
        d[..8].copy_from_slice(b"conectix");
        let err = read_partitions(&d).unwrap_err();
        assert!(err.to_string().contains("VHD"), "{err}");
    }

    #[test]
    fn read_errors_are_reported_with_their_offset() {
        struct Broken;
        impl ReadAt for Broken {
            fn size(&self) -> u64 {
                1 << 30
            }
            fn read_at(&self, _: u64, _: &mut [u8]) -> io::Result<()> {
                Err(io::Error::other("device gone"))
            }
        }
        let err = read_partitions(&Broken).unwrap_err();
        assert!(
            matches!(err, PartitionError::Read { offset: 0, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("device gone"), "{err}");
    }
}
