//! Microsoft VHD (Virtual PC / Hyper-V / Azure): fixed and dynamic disks.
//!
//! Layout, as the VHD specification defines it (all integers big-endian):
//! - **fixed**: the disk's bytes, then a 512-byte footer (cookie `conectix`). Azure exports are
//!   fixed VHDs.
//! - **dynamic**: a copy of the footer at offset 0, a 1024-byte dynamic header (cookie `cxsparse`) at
//!   the footer's `data_offset`, a block allocation table (BAT) at the header's `table_offset`, the
//!   allocated blocks, and the footer again at the end. Each BAT entry is the sector number of a
//!   block, or `0xFFFFFFFF` when the block was never written (it reads as zeros). A block is a sector
//!   bitmap (one bit per sector, most significant bit first, padded to whole sectors) followed by
//!   the block's data; a sector whose bit is clear reads as zeros whatever the file holds there.
//! - **differencing** (type 4) needs its parent image and is refused.
//!
//! Why the checks: kaifuku also *writes* through this mapping ([`crate::Container::plan_output`]).
//! A footer or header that is silently misread (a checksum mismatch, a BAT entry pointing into
//! metadata or past the end of the file, two blocks sharing bytes) would turn a repair into
//! corruption, so every such inconsistency is an error at open time, and every size computed from
//! file fields uses checked arithmetic so a crafted file can neither panic nor make us allocate
//! much memory.

use crate::{
    ContainerError, ContainerUnit, Extent, FileFill, FileWrite, FileWriteLabel, OutputPlan,
    WriteHow,
};
use kaifuku_io::ReadAt;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

/// Footer cookie, at the start of the footer (end of file; for dynamic disks also at offset 0).
pub(crate) const COOKIE: &[u8; 8] = b"conectix";
const SPARSE_COOKIE: &[u8; 8] = b"cxsparse";
/// The footer size written since Virtual PC 2004.
pub(crate) const FOOTER_LEN: u64 = 512;
/// Versions before Virtual PC 2004 wrote the same footer without its last (reserved) byte.
const LEGACY_FOOTER_LEN: u64 = 511;
const HEADER_LEN: usize = 1024;
const SECTOR: u64 = 512;
const UNALLOCATED: u32 = u32::MAX;

const DISK_FIXED: u32 = 2;
const DISK_DYNAMIC: u32 = 3;
const DISK_DIFFERENCING: u32 = 4;

/// The largest BAT we load into memory (16 Mi blocks: 32 TiB with the usual 2 MiB blocks, far
/// beyond the 2040 GiB a VHD can hold). A larger value can only come from a damaged header.
pub const MAX_BAT_BYTES: u64 = 64 << 20;
const MIN_BLOCK_SIZE: u32 = 512;
/// Real writers use 512 KiB or 2 MiB; 256 MiB bounds the bitmap at 64 KiB.
const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Sector bitmaps kept in memory, so reading a block piece by piece does not re-read its bitmap.
const BITMAP_CACHE_BLOCKS: usize = 16;

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_u64(b: &[u8], at: usize) -> u64 {
    (u64::from(be_u32(b, at)) << 32) | u64::from(be_u32(b, at + 4))
}

/// The VHD checksum: one's complement of the byte sum of the structure, with the 4-byte checksum
/// field at `field` counted as zero.
fn checksum(bytes: &[u8], field: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| !(field..field + 4).contains(i))
        .fold(0u32, |s, (_, b)| s.wrapping_add(u32::from(*b)));
    !sum
}

/// Cylinders, heads and sectors per track, as the footer records them for BIOS-era guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskGeometry {
    /// Number of cylinders (at most 65535: the footer's geometry caps a disk at about 127 GiB).
    pub cylinders: u16,
    /// Heads per cylinder.
    pub heads: u8,
    /// Sectors per track.
    pub sectors_per_track: u8,
}

impl DiskGeometry {
    /// The geometry the VHD specification's CHS algorithm (its appendix "CHS Calculation") gives
    /// a disk of `size` bytes; disks past 65535 × 16 × 255 sectors keep that maximum.
    pub fn for_size(size: u64) -> DiskGeometry {
        let total = (size / SECTOR).min(65535 * 16 * 255);
        let (sectors_per_track, heads, cylinders_times_heads) = if total >= 65535 * 16 * 63 {
            (255, 16, total / 255)
        } else {
            let mut spt = 17;
            let mut cth = total / spt;
            let mut heads = cth.div_ceil(1024).max(4);
            if cth >= heads * 1024 || heads > 16 {
                spt = 31;
                heads = 16;
                cth = total / spt;
            }
            if cth >= heads * 1024 {
                spt = 63;
                heads = 16;
                cth = total / spt;
            }
            (spt, heads, cth)
        };
        DiskGeometry {
            cylinders: (cylinders_times_heads / heads) as u16,
            heads: heads as u8,
            sectors_per_track: sectors_per_track as u8,
        }
    }
}

/// Who made a new VHD and when: the footer fields a writer chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewFooter {
    /// Creation time, seconds since 2000-01-01 00:00:00 UTC (the front end reads the clock).
    pub timestamp: u32,
    /// The disk's unique id.
    pub unique_id: [u8; 16],
}

/// The 512-byte footer of a fixed VHD whose disk is `size` bytes: the disk's bytes followed by
/// this footer are the whole file. The creator is "kfku" (this tool), version 1.0, on "Wi2k" (the
/// host OS Azure's tools write). Readers take a fixed disk's size from `current_size` (QEMU does
/// for fixed disks whatever the creator; Hyper-V and Azure always do).
pub fn fixed_footer(size: u64, made: NewFooter) -> [u8; FOOTER_LEN as usize] {
    let mut f = [0u8; FOOTER_LEN as usize];
    f[0..8].copy_from_slice(COOKIE);
    f[8..12].copy_from_slice(&2u32.to_be_bytes()); // features: the reserved bit, always set
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes()); // format version 1.0
    f[16..24].copy_from_slice(&u64::MAX.to_be_bytes()); // data offset: none for a fixed disk
    f[24..28].copy_from_slice(&made.timestamp.to_be_bytes());
    f[28..32].copy_from_slice(b"kfku");
    f[32..36].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes()); // original size
    f[48..56].copy_from_slice(&size.to_be_bytes()); // current size
    let g = DiskGeometry::for_size(size);
    f[56..58].copy_from_slice(&g.cylinders.to_be_bytes());
    f[58] = g.heads;
    f[59] = g.sectors_per_track;
    f[60..64].copy_from_slice(&DISK_FIXED.to_be_bytes());
    f[68..84].copy_from_slice(&made.unique_id);
    let sum = checksum(&f, 64);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    f
}

/// What a VHD's footer (and, for a dynamic disk, its header and BAT) says about the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VhdInfo {
    /// Four-character code of the tool that created the file, e.g. `win`, `vpc`, `qem2`.
    pub creator_app: String,
    /// Version of that tool, `major.minor`.
    pub creator_version: String,
    /// Four-character code of the host OS, e.g. `Wi2k` (Windows) or `Mac`.
    pub creator_os: String,
    /// The CHS geometry the footer records; larger disks keep the maximum.
    pub disk_geometry: DiskGeometry,
    /// The disk's unique id, 32 lowercase hex digits in file order.
    pub uuid: String,
    /// Size the disk had when it was created (`current_size` is the size now).
    pub original_size: u64,
    /// Creation time, seconds since 2000-01-01 00:00:00 UTC as the footer stores it.
    pub timestamp: u32,
    /// Set when the VM was in a saved state; the disk then may not be consistent on its own.
    pub saved_state: bool,
    /// 512, or 511 for images written before Virtual PC 2004.
    pub footer_len: u64,
    /// Dynamic disks only: bytes per block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Dynamic disks only: blocks that have space in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_blocks: Option<u64>,
    /// Dynamic disks only: blocks the virtual size spans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_blocks: Option<u64>,
}

/// The fields of the hard disk footer kaifuku uses or reports.
#[derive(Debug, Clone)]
pub(crate) struct Footer {
    /// Bytes the footer occupies at the end of the file (512, or 511 for old images).
    pub len: u64,
    pub data_offset: u64,
    pub timestamp: u32,
    pub creator_app: [u8; 4],
    pub creator_version: u32,
    pub creator_host_os: [u8; 4],
    pub original_size: u64,
    pub current_size: u64,
    pub geometry: DiskGeometry,
    pub disk_type: u32,
    pub uuid: [u8; 16],
    pub saved_state: bool,
    /// The footer as stored, to compare with the copy at the start of a dynamic disk.
    pub raw: [u8; FOOTER_LEN as usize],
}

/// Finds the footer in `tail`, the last `min(512, file size)` bytes of the file.
///
/// `Ok(None)` means there is no footer cookie: the file is not a VHD (or lost its end). A cookie
/// with a wrong checksum is an error rather than "not a VHD": treating a damaged VHD as raw would
/// show the user a disk without partitions instead of saying the file is damaged.
pub(crate) fn find_footer(tail: &[u8]) -> Result<Option<Footer>, ContainerError> {
    let mut raw = [0u8; FOOTER_LEN as usize];
    let n = tail.len();
    let len = if n >= 512 && tail[n - 512..].starts_with(COOKIE) {
        raw.copy_from_slice(&tail[n - 512..]);
        FOOTER_LEN
    } else if n >= 511 && tail[n - 511..].starts_with(COOKIE) {
        raw[..511].copy_from_slice(&tail[n - 511..]);
        LEGACY_FOOTER_LEN
    } else {
        return Ok(None);
    };
    Footer::parse(&raw, len).map(Some)
}

impl Footer {
    fn parse(raw: &[u8; FOOTER_LEN as usize], len: u64) -> Result<Footer, ContainerError> {
        // The checksum is checked before anything else: the footer decides the format, the
        // virtual size and where the metadata is, so a damaged one must not be trusted at all.
        let stored = be_u32(raw, 64);
        let computed = checksum(raw, 64);
        if stored != computed {
            return Err(ContainerError::FooterChecksum { stored, computed });
        }
        let version = be_u32(raw, 12);
        if version >> 16 != 1 {
            return Err(ContainerError::UnsupportedVhdVersion {
                structure: "footer",
                version,
            });
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&raw[68..84]);
        Ok(Footer {
            len,
            data_offset: be_u64(raw, 16),
            timestamp: be_u32(raw, 24),
            creator_app: [raw[28], raw[29], raw[30], raw[31]],
            creator_version: be_u32(raw, 32),
            creator_host_os: [raw[36], raw[37], raw[38], raw[39]],
            original_size: be_u64(raw, 40),
            current_size: be_u64(raw, 48),
            geometry: DiskGeometry {
                cylinders: be_u16(raw, 56),
                heads: raw[58],
                sectors_per_track: raw[59],
            },
            disk_type: be_u32(raw, 60),
            uuid,
            saved_state: raw[84] != 0,
            raw: *raw,
        })
    }

    pub fn is_fixed(&self) -> bool {
        self.disk_type == DISK_FIXED
    }

    /// Refuses disk types kaifuku cannot map, with the reason.
    pub fn check_supported(&self) -> Result<(), ContainerError> {
        match self.disk_type {
            DISK_FIXED | DISK_DYNAMIC => Ok(()),
            DISK_DIFFERENCING => Err(ContainerError::DifferencingVhd),
            other => Err(ContainerError::UnknownVhdDiskType(other)),
        }
    }

    pub fn info(&self) -> VhdInfo {
        let code = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        VhdInfo {
            creator_app: code(&self.creator_app),
            creator_version: format!(
                "{}.{}",
                self.creator_version >> 16,
                self.creator_version & 0xffff
            ),
            creator_os: code(&self.creator_host_os),
            disk_geometry: self.geometry,
            uuid: self.uuid.iter().map(|b| format!("{b:02x}")).collect(),
            original_size: self.original_size,
            timestamp: self.timestamp,
            saved_state: self.saved_state,
            footer_len: self.len,
            block_size: None,
            allocated_blocks: None,
            total_blocks: None,
        }
    }
}

/// A fixed VHD: the disk is file bytes `0..current_size`, the footer follows.
pub(crate) struct Fixed {
    pub footer: Footer,
}

impl Fixed {
    pub fn open(footer: Footer, file_size: u64) -> Result<Fixed, ContainerError> {
        let data_end = file_size - footer.len;
        let end = footer
            .current_size
            .checked_add(footer.len)
            .ok_or(ContainerError::Overflow("current size"))?;
        if end > file_size {
            return Err(ContainerError::Truncated {
                what: "the fixed disk's data (footer `current size`)",
                start: 0,
                end: footer.current_size,
                data_end,
                file_size,
            });
        }
        Ok(Fixed { footer })
    }
}

/// A dynamic VHD with its BAT in memory and a few sector bitmaps cached.
pub(crate) struct Dynamic {
    pub footer: Footer,
    block_size: u64,
    /// Bytes of the bitmap that carry bits (one per sector of the block).
    bitmap_bytes: usize,
    /// Bytes the bitmap occupies in the file (whole sectors); block data follows it.
    bitmap_len: u64,
    /// One entry per block the virtual size spans (entries past that are never read).
    bat: Vec<u32>,
    /// Where the block allocation table starts in the file.
    table_offset: u64,
    /// Where the footer at the end of the file starts.
    data_end: u64,
    allocated: u64,
    bitmaps: RefCell<VecDeque<(u64, Rc<[u8]>)>>,
}

impl Dynamic {
    /// Opens a dynamic disk; `head` is the file's first bytes (where the footer's copy is).
    pub fn open<R: ReadAt>(
        file: &R,
        head: &[u8],
        footer: Footer,
        file_size: u64,
    ) -> Result<Dynamic, ContainerError> {
        let data_end = file_size - footer.len;

        // A dynamic VHD starts with a copy of its footer; readers differ in which copy they
        // trust, so two that disagree describe two different disks.
        // (511 bytes: old images keep a 511-byte footer at the end.)
        if head.get(..511) != Some(&footer.raw[..511]) {
            return Err(ContainerError::FooterCopiesDiffer);
        }

        let header_offset = footer.data_offset;
        let header_end = header_offset
            .checked_add(HEADER_LEN as u64)
            .ok_or(ContainerError::Overflow("data offset"))?;
        if header_end > data_end {
            return Err(ContainerError::Truncated {
                what: "the dynamic disk header",
                start: header_offset,
                end: header_end,
                data_end,
                file_size,
            });
        }
        let mut h = [0u8; HEADER_LEN];
        file.read_at(header_offset, &mut h)
            .map_err(|e| ContainerError::read("the VHD dynamic disk header", header_offset, e))?;
        if !h.starts_with(SPARSE_COOKIE) {
            return Err(ContainerError::MissingDynamicHeader {
                offset: header_offset,
            });
        }
        // Same reason as the footer: the header says where the BAT is and how big blocks are.
        let stored = be_u32(&h, 36);
        let computed = checksum(&h, 36);
        if stored != computed {
            return Err(ContainerError::HeaderChecksum { stored, computed });
        }
        let version = be_u32(&h, 24);
        if version >> 16 != 1 {
            return Err(ContainerError::UnsupportedVhdVersion {
                structure: "dynamic disk header",
                version,
            });
        }
        let table_offset = be_u64(&h, 16);
        let max_table_entries = be_u32(&h, 28);
        let block_size_field = be_u32(&h, 32);
        if !block_size_field.is_power_of_two()
            || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size_field)
        {
            return Err(ContainerError::BadBlockSize(block_size_field));
        }
        let block_size = u64::from(block_size_field);

        // The BAT must cover the whole virtual disk; we read only the entries it spans.
        let virtual_size = footer.current_size;
        let needed = virtual_size.div_ceil(block_size);
        if needed > u64::from(max_table_entries) {
            return Err(ContainerError::TableTooSmall {
                max_table_entries,
                needed,
                virtual_size,
                block_size,
            });
        }
        let bat_bytes = needed * 4; // needed <= u32::MAX: cannot overflow
        if bat_bytes > MAX_BAT_BYTES {
            return Err(ContainerError::TableTooLarge {
                bytes: bat_bytes,
                limit: MAX_BAT_BYTES,
            });
        }
        let bat_end = table_offset
            .checked_add(bat_bytes)
            .ok_or(ContainerError::Overflow("table offset"))?;
        // Checked before allocating, so a tiny crafted file cannot make us allocate 64 MiB.
        if bat_end > data_end {
            return Err(ContainerError::Truncated {
                what: "the block allocation table",
                start: table_offset,
                end: bat_end,
                data_end,
                file_size,
            });
        }
        // The table the header declares must fit too: a header claiming more entries than the
        // file can hold is damaged, and other readers (qemu-img, Hyper-V) refuse it.
        let declared = u64::from(max_table_entries) * 4;
        if table_offset.saturating_add(declared) > data_end {
            return Err(ContainerError::DeclaredTableTooLarge {
                entries: max_table_entries,
                bytes: declared,
                offset: table_offset,
                data_end,
            });
        }
        let raw_bat = file
            .read_vec(table_offset, bat_bytes as usize)
            .map_err(|e| ContainerError::read("the VHD block allocation table", table_offset, e))?;
        let bat: Vec<u32> = raw_bat
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        drop(raw_bat);

        let sectors_per_block = block_size / SECTOR;
        let bitmap_bytes = sectors_per_block.div_ceil(8);
        let mut dynamic = Dynamic {
            footer,
            block_size,
            bitmap_bytes: bitmap_bytes as usize,
            bitmap_len: bitmap_bytes.div_ceil(SECTOR) * SECTOR,
            bat,
            table_offset,
            data_end,
            allocated: 0,
            bitmaps: RefCell::new(VecDeque::new()),
        };
        let metadata = [
            (0, FOOTER_LEN, "the footer copy at the start of the file"),
            (header_offset, header_end, "the dynamic disk header"),
            (table_offset, bat_end, "the block allocation table"),
        ];
        dynamic.allocated = dynamic.check_blocks(&metadata, data_end)?;
        Ok(dynamic)
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }
    pub fn total_blocks(&self) -> u64 {
        self.bat.len() as u64
    }
    pub fn allocated_blocks(&self) -> u64 {
        self.allocated
    }

    fn virtual_size(&self) -> u64 {
        self.footer.current_size
    }

    /// File bytes block `block` (stored at BAT entry `entry`) uses: its bitmap and the part of its
    /// data that the virtual size reaches, in whole sectors. The last block of a disk whose size is
    /// not a multiple of the block size may be stored shorter, so only that part is required.
    fn block_span(&self, block: u64, entry: u32) -> (u64, u64) {
        let start = u64::from(entry) * SECTOR;
        let data = self
            .block_size
            .min(self.virtual_size() - block * self.block_size);
        (
            start,
            start + self.bitmap_len + data.div_ceil(SECTOR) * SECTOR,
        )
    }

    /// Every allocated block must lie in the data area, clear of the metadata and of every other
    /// block: otherwise a patch planned for one block would land in another structure. Returns
    /// the number of allocated blocks.
    fn check_blocks(
        &self,
        metadata: &[(u64, u64, &'static str)],
        data_end: u64,
    ) -> Result<u64, ContainerError> {
        let mut entries: Vec<u32> = Vec::new();
        for (block, &entry) in self.bat.iter().enumerate() {
            if entry == UNALLOCATED {
                continue;
            }
            let block = block as u64;
            let (start, end) = self.block_span(block, entry);
            if end > data_end {
                return Err(ContainerError::BlockOutsideFile {
                    block,
                    start,
                    end,
                    data_end,
                });
            }
            for &(m_start, m_end, what) in metadata {
                if start < m_end && m_start < end {
                    return Err(ContainerError::BlockOverlap {
                        block,
                        start,
                        end,
                        other: what.to_string(),
                    });
                }
            }
            entries.push(entry);
        }
        // Sorted by position, each block must end before the next begins. Only the last block can
        // be shorter than the others, so the end follows from the entry without a reverse lookup.
        entries.sort_unstable();
        let last = self.bat.len().saturating_sub(1) as u64;
        let last_entry = self.bat.last().copied().unwrap_or(UNALLOCATED);
        let full = self.bitmap_len + self.block_size;
        for pair in entries.windows(2) {
            let first_end = if pair[0] == last_entry {
                self.block_span(last, pair[0]).1
            } else {
                u64::from(pair[0]) * SECTOR + full
            };
            if first_end > u64::from(pair[1]) * SECTOR {
                // Error path only: find which blocks these are (equal entries name two blocks).
                let mut owners = self
                    .bat
                    .iter()
                    .enumerate()
                    .filter(|(_, &e)| e == pair[0] || e == pair[1])
                    .map(|(i, _)| i as u64);
                let first = owners.next().unwrap_or(0);
                let second = owners.next().unwrap_or(0);
                let (start, end) = self.block_span(second, self.bat[second as usize]);
                return Err(ContainerError::BlockOverlap {
                    block: second,
                    start,
                    end,
                    other: format!("VHD block {first}"),
                });
            }
        }
        Ok(entries.len() as u64)
    }

    /// The sector bitmap of allocated block `block`, from the cache or the file.
    fn bitmap<R: ReadAt>(
        &self,
        file: &R,
        block: u64,
        entry: u32,
    ) -> Result<Rc<[u8]>, ContainerError> {
        let cached = self
            .bitmaps
            .borrow()
            .iter()
            .find(|(b, _)| *b == block)
            .map(|(_, bm)| Rc::clone(bm));
        if let Some(bm) = cached {
            return Ok(bm);
        }
        let at = u64::from(entry) * SECTOR;
        let bm: Rc<[u8]> = file
            .read_vec(at, self.bitmap_bytes)
            .map_err(|e| {
                ContainerError::read(format!("the sector bitmap of VHD block {block}"), at, e)
            })?
            .into();
        let mut cache = self.bitmaps.borrow_mut();
        if cache.len() == BITMAP_CACHE_BLOCKS {
            cache.pop_front();
        }
        cache.push_back((block, Rc::clone(&bm)));
        Ok(bm)
    }

    /// Where virtual offset `offset` lives. The extent ends where the block ends, where the
    /// virtual disk ends, or where the bitmap switches between "in the file" and "zeros".
    pub fn map<R: ReadAt>(&self, file: &R, offset: u64) -> Result<Extent, ContainerError> {
        let size = self.virtual_size();
        if offset >= size {
            return Err(ContainerError::OutOfRange {
                offset,
                virtual_size: size,
            });
        }
        let bs = self.block_size;
        let block = offset / bs;
        let in_block = offset % bs;
        let limit = (bs - in_block).min(size - offset);
        let entry = self.bat[block as usize];
        if entry == UNALLOCATED {
            return Ok(Extent::Zero { len: limit });
        }
        let bm = self.bitmap(file, block, entry)?;
        let first = in_block / SECTOR;
        let end_sector = (in_block + limit).div_ceil(SECTOR);
        let in_file = bit(&bm, first);
        let mut s = first + 1;
        while s < end_sector {
            // Whole bytes of equal bits are skipped at once: allocated blocks are usually all ones.
            let full = if in_file { 0xff } else { 0x00 };
            if s & 7 == 0 && s + 8 <= end_sector && bm[(s / 8) as usize] == full {
                s += 8;
            } else if bit(&bm, s) == in_file {
                s += 1;
            } else {
                break;
            }
        }
        let len = (s * SECTOR).min(in_block + limit) - in_block;
        Ok(if in_file {
            Extent::InFile {
                file_offset: u64::from(entry) * SECTOR + self.bitmap_len + in_block,
                len,
            }
        } else {
            Extent::Zero { len }
        })
    }

    /// The output for merged, in-range, non-empty patches (sorted, disjoint, not adjacent).
    ///
    /// Sectors whose bitmap bit is set take the patch bytes as they are. A sector whose bit is
    /// clear reads as zeros, but the file may hold anything there, so it is written whole (zeros
    /// around the patch bytes) and its bit is set: the disk then reads exactly as the overlay did.
    /// A block with no place in the file (it reads as zeros) is added where the footer is, as
    /// QEMU and Hyper-V add blocks: its bitmap with every sector marked, zeros around the
    /// patches, its table entry pointing there, and the footer after it at the new end.
    pub fn plan_output<R: ReadAt>(
        &self,
        file: &R,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<OutputPlan, ContainerError> {
        let bs = self.block_size;
        let new = self.new_block_places(merged, fills)?;
        // Virtual offset -> (bytes, zero-filled). One entry per sector piece; joined below.
        let mut pieces: BTreeMap<u64, (Vec<u8>, bool)> = BTreeMap::new();
        // Writes into blocks added at the end.
        let mut new_writes = Vec::new();
        // Virtual sector number -> whole-sector contents, for sectors whose bit is clear.
        let mut clear_sectors: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for (start, bytes) in merged {
            let start = *start;
            let end = start + bytes.len() as u64;
            let mut pos = start;
            while pos < end {
                let block = pos / bs;
                let block_end = ((block + 1) * bs).min(end);
                if let Some(&at) = new.places.get(&block) {
                    new_writes.push(FileWrite {
                        file_offset: at + self.bitmap_len + pos % bs,
                        bytes: bytes[(pos - start) as usize..(block_end - start) as usize].to_vec(),
                        label: FileWriteLabel::VirtualBytes {
                            start: pos,
                            end: block_end,
                            unit: Some(ContainerUnit::VhdBlock { block }),
                            how: WriteHow::NewUnit,
                        },
                    });
                    pos = block_end;
                    continue;
                }
                let entry = self.bat[block as usize];
                let bm = self.bitmap(file, block, entry)?;
                while pos < block_end {
                    let sector_end = ((pos / SECTOR + 1) * SECTOR).min(block_end);
                    let chunk = &bytes[(pos - start) as usize..(sector_end - start) as usize];
                    if bit(&bm, (pos % bs) / SECTOR) {
                        pieces.insert(pos, (chunk.to_vec(), false));
                    } else {
                        let sector = clear_sectors
                            .entry(pos / SECTOR)
                            .or_insert_with(|| vec![0u8; SECTOR as usize]);
                        let at = (pos % SECTOR) as usize;
                        sector[at..at + chunk.len()].copy_from_slice(chunk);
                    }
                    pos = sector_end;
                }
            }
        }

        // Fills: whole sectors through the block table; sectors whose bit is clear only need the
        // bit set (the fill writes all of their bytes).
        let mut file_fills = Vec::new();
        let mut marks: std::collections::BTreeSet<u64> = clear_sectors.keys().copied().collect();
        for &(start, len, byte) in fills {
            let end = start + len;
            if start % SECTOR != 0 || end % SECTOR != 0 {
                return Err(ContainerError::Overflow(
                    "a fill that is not sector-aligned in a dynamic VHD",
                ));
            }
            let mut pos = start;
            while pos < end {
                let block = pos / bs;
                let block_end = ((block + 1) * bs).min(end);
                if let Some(&at) = new.places.get(&block) {
                    file_fills.push(FileFill {
                        file_offset: at + self.bitmap_len + pos % bs,
                        len: block_end - pos,
                        byte,
                        label: FileWriteLabel::VirtualBytes {
                            start: pos,
                            end: block_end,
                            unit: Some(ContainerUnit::VhdBlock { block }),
                            how: WriteHow::NewUnit,
                        },
                    });
                    pos = block_end;
                    continue;
                }
                let entry = self.bat[block as usize];
                let bm = self.bitmap(file, block, entry)?;
                let mut s = pos / SECTOR;
                while s * SECTOR < block_end {
                    if !bit(&bm, (s * SECTOR % bs) / SECTOR) {
                        marks.insert(s);
                    }
                    s += 1;
                }
                file_fills.push(FileFill {
                    file_offset: u64::from(entry) * SECTOR + self.bitmap_len + pos % bs,
                    len: block_end - pos,
                    byte,
                    label: FileWriteLabel::VirtualBytes {
                        start: pos,
                        end: block_end,
                        unit: Some(ContainerUnit::VhdBlock { block }),
                        how: WriteHow::Filled,
                    },
                });
                pos = block_end;
            }
        }

        let mut writes = Vec::new();
        // Bitmap updates, one write per block covering the bitmap bytes that change.
        let mut sectors = marks.iter().peekable();
        while let Some(&first) = sectors.next() {
            let block = first * SECTOR / bs;
            let mut in_block = vec![first];
            while let Some(&&s) = sectors.peek() {
                if s * SECTOR / bs != block {
                    break;
                }
                in_block.push(s);
                sectors.next();
            }
            let entry = self.bat[block as usize];
            let mut bm = self.bitmap(file, block, entry)?.to_vec();
            let first_in_block = block * bs / SECTOR;
            for s in &in_block {
                let i = s - first_in_block;
                bm[(i / 8) as usize] |= 0x80 >> (i % 8);
            }
            let lo = ((in_block[0] - first_in_block) / 8) as usize;
            let hi = ((in_block[in_block.len() - 1] - first_in_block) / 8) as usize;
            writes.push(FileWrite {
                file_offset: u64::from(entry) * SECTOR + lo as u64,
                bytes: bm[lo..=hi].to_vec(),
                label: FileWriteLabel::VhdSectorBitmap {
                    block,
                    sectors: in_block.len() as u64,
                    start: in_block[0] * SECTOR,
                    end: (in_block[in_block.len() - 1] + 1) * SECTOR,
                },
            });
        }
        for (s, bytes) in clear_sectors {
            pieces.insert(s * SECTOR, (bytes, true));
        }

        // Join pieces that follow each other inside one block: one write each.
        let mut current: Option<(u64, Vec<u8>, bool)> = None;
        for (at, (bytes, zero_filled)) in pieces {
            match &mut current {
                Some((start, buf, z))
                    if *start + buf.len() as u64 == at && *start / bs == at / bs =>
                {
                    buf.extend_from_slice(&bytes);
                    *z |= zero_filled;
                }
                _ => {
                    if let Some(done) = current.take() {
                        writes.push(self.data_write(done));
                    }
                    current = Some((at, bytes, zero_filled));
                }
            }
        }
        if let Some(done) = current {
            writes.push(self.data_write(done));
        }
        writes.extend(new_writes);
        let file_size = self.new_blocks(&new, &mut writes, &mut file_fills)?;
        writes.sort_by_key(|w| w.file_offset);
        file_fills.sort_by_key(|f| f.file_offset);
        Ok(OutputPlan {
            writes,
            fills: file_fills,
            file_size,
        })
    }

    /// Where the blocks with no place in the file that the patches and fills touch are added:
    /// from the footer's place (on a sector), in block order, each its bitmap and its data.
    fn new_block_places(
        &self,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<NewBlocks, ContainerError> {
        let bs = self.block_size;
        let touched = crate::touched_units(merged, fills, bs)
            .into_iter()
            .filter(|&block| self.bat[block as usize] == UNALLOCATED);
        let first = self.data_end.next_multiple_of(SECTOR);
        let mut places = BTreeMap::new();
        let mut at = first;
        for block in touched {
            // A table entry is a 32-bit sector number: the block must start below 2 TiB.
            if at / SECTOR > u64::from(u32::MAX - 1) {
                return Err(ContainerError::PatchInUnallocatedBlock {
                    offset: block * bs,
                    block,
                });
            }
            places.insert(block, at);
            at += self.bitmap_len + bs;
        }
        Ok(NewBlocks {
            places,
            first,
            end: at,
        })
    }

    /// The rest of the blocks added at the end (see [`Dynamic::new_block_places`]): their bitmaps
    /// with every sector marked, zeros where no patch lands, their table entries, the padding
    /// from the old footer's place, and the footer at the new end. Returns the new file size.
    fn new_blocks(
        &self,
        new: &NewBlocks,
        writes: &mut Vec<FileWrite>,
        fills: &mut Vec<FileFill>,
    ) -> Result<Option<u64>, ContainerError> {
        if new.places.is_empty() {
            return Ok(None);
        }
        let bs = self.block_size;
        if new.first > self.data_end {
            fills.push(FileFill {
                file_offset: self.data_end,
                len: new.first - self.data_end,
                byte: 0,
                label: FileWriteLabel::AlignmentPadding,
            });
        }
        for (&block, &at) in &new.places {
            writes.push(FileWrite {
                file_offset: at,
                bytes: vec![0xff; self.bitmap_len as usize],
                label: FileWriteLabel::VhdSectorBitmap {
                    block,
                    sectors: bs / SECTOR,
                    start: block * bs,
                    end: (block + 1) * bs,
                },
            });
            let zeros = crate::zeros_around(
                writes,
                fills,
                (at + self.bitmap_len, bs),
                (block * bs, self.virtual_size()),
                ContainerUnit::VhdBlock { block },
            );
            fills.extend(zeros);
            writes.push(FileWrite {
                file_offset: self.table_offset + block * 4,
                bytes: ((at / SECTOR) as u32).to_be_bytes().to_vec(),
                label: FileWriteLabel::UnitTableEntry {
                    unit: ContainerUnit::VhdBlock { block },
                },
            });
        }
        writes.push(FileWrite {
            file_offset: new.end,
            bytes: self.footer.raw.to_vec(),
            label: FileWriteLabel::VhdFooterMoved,
        });
        Ok(Some(new.end + FOOTER_LEN))
    }

    fn data_write(&self, (at, bytes, zero_filled): (u64, Vec<u8>, bool)) -> FileWrite {
        let block = at / self.block_size;
        let entry = self.bat[block as usize];
        let end = at + bytes.len() as u64;
        let how = if zero_filled {
            WriteHow::WholeSectors
        } else {
            WriteHow::Bytes
        };
        FileWrite {
            file_offset: u64::from(entry) * SECTOR + self.bitmap_len + at % self.block_size,
            label: FileWriteLabel::VirtualBytes {
                start: at,
                end,
                unit: Some(ContainerUnit::VhdBlock { block }),
                how,
            },
            bytes,
        }
    }
}

/// Blocks added after the end of the data: each block's place, where the first starts, and where
/// the last ends (the new footer's place).
struct NewBlocks {
    places: BTreeMap<u64, u64>,
    first: u64,
    end: u64,
}

/// Bit for sector `sector` of a block: most significant bit first, as the VHD specification and
/// its reference implementations store it.
fn bit(bitmap: &[u8], sector: u64) -> bool {
    bitmap[(sector / 8) as usize] & (0x80 >> (sector % 8)) != 0
}

#[cfg(test)]
pub(crate) mod build {
    //! Hand-built VHD images for tests: small, with every field under the test's control.

    use super::*;

    pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }

    /// Recomputes the checksum of a footer (field 64) or dynamic header (field 36).
    pub fn seal(b: &mut [u8], field: usize) {
        let c = checksum(b, field);
        put_u32(b, field, c);
    }

    pub fn footer(disk_type: u32, size: u64, data_offset: u64) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        f[0..8].copy_from_slice(COOKIE);
        put_u32(&mut f, 8, 2);
        put_u32(&mut f, 12, 0x0001_0000);
        put_u64(&mut f, 16, data_offset);
        f[28..32].copy_from_slice(b"test");
        put_u32(&mut f, 32, 0x0001_0002);
        f[36..40].copy_from_slice(b"Wi2k");
        put_u64(&mut f, 40, size);
        put_u64(&mut f, 48, size);
        f[56..60].copy_from_slice(&[0x01, 0x02, 0x10, 0x3f]);
        put_u32(&mut f, 60, disk_type);
        for (i, b) in f[68..84].iter_mut().enumerate() {
            *b = i as u8 * 17;
        }
        seal(&mut f, 64);
        f
    }

    pub fn fixed(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.extend(footer(DISK_FIXED, data.len() as u64, u64::MAX));
        v
    }

    /// A dynamic VHD layout: footer copy at 0, header at 512, BAT at 1536 (one sector per 128
    /// entries), blocks after it in the order given.
    pub struct Dyn {
        pub size: u64,
        pub block_size: u32,
        /// Per block: None = unallocated, Some((bitmap, data)).
        pub blocks: Vec<Option<(Vec<u8>, Vec<u8>)>>,
    }

    pub const BAT_OFFSET: u64 = 1536;

    impl Dyn {
        pub fn bitmap_len(&self) -> usize {
            ((self.block_size as usize / 512).div_ceil(8)).div_ceil(512) * 512
        }
        pub fn first_block_offset(&self) -> u64 {
            BAT_OFFSET + ((self.blocks.len() * 4).div_ceil(512) * 512) as u64
        }
        /// File offset of block `i`'s bitmap as `build` lays it out.
        pub fn block_offset(&self, i: usize) -> u64 {
            let per = self.bitmap_len() as u64 + u64::from(self.block_size);
            let n = self.blocks[..i].iter().filter(|b| b.is_some()).count() as u64;
            self.first_block_offset() + n * per
        }
        pub fn build(&self) -> Vec<u8> {
            let foot = footer(DISK_DYNAMIC, self.size, 512);
            let mut v = foot.clone();
            let mut h = vec![0u8; 1024];
            h[0..8].copy_from_slice(SPARSE_COOKIE);
            put_u64(&mut h, 8, u64::MAX);
            put_u64(&mut h, 16, BAT_OFFSET);
            put_u32(&mut h, 24, 0x0001_0000);
            put_u32(&mut h, 28, self.blocks.len() as u32);
            put_u32(&mut h, 32, self.block_size);
            seal(&mut h, 36);
            v.extend(h);
            let mut bat = vec![0xffu8; (self.blocks.len() * 4).div_ceil(512) * 512];
            for (i, b) in self.blocks.iter().enumerate() {
                if b.is_some() {
                    put_u32(&mut bat, i * 4, (self.block_offset(i) / 512) as u32);
                }
            }
            v.extend(bat);
            for (bitmap, data) in self.blocks.iter().flatten() {
                let mut bm = bitmap.clone();
                bm.resize(self.bitmap_len(), 0);
                v.extend(bm);
                let mut d = data.clone();
                d.resize(self.block_size as usize, 0);
                v.extend(d);
            }
            v.extend(foot);
            v
        }
    }
}
