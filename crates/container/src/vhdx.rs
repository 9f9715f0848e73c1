//! Microsoft VHDX (Hyper-V since Windows Server 2012): fixed and dynamic disks.
//!
//! Layout, as the MS-VHDX specification defines it (all integers little-endian, GUIDs in the
//! mixed-endian Microsoft layout):
//! - **header section** (first 1 MiB): the file identifier (`vhdxfile`) at 0, two 4 KiB headers
//!   at 64 KiB and 128 KiB (`head`, CRC-32C, sequence number, the write GUIDs, where the log is),
//!   two copies of the 64 KiB region table at 192 KiB and 256 KiB (`regi`, CRC-32C), which say
//!   where the block allocation table (BAT) and the metadata region are.
//! - **metadata region**: a table of items: block size and flags (fixed disks keep their blocks
//!   allocated; `HasParent` marks a differencing disk), virtual disk size, virtual disk id, logical
//!   and physical sector size.
//! - **BAT**: one 64-bit entry per payload block (state in bits 0–2, file offset in MiB in bits
//!   20–63), with one sector-bitmap entry after every `chunk ratio` payload entries
//!   (chunk ratio = 2^23 × logical sector size / block size: the blocks one bitmap block covers).
//! - **log**: a journal of metadata updates; a header with a non-zero `LogGuid` has entries that a
//!   reader must replay first (`vhdx_log.rs`: replayed in memory, and written out by a fix).
//!
//! The current header is the one with a valid checksum and the higher sequence number, so one
//! damaged copy is tolerated; the region table likewise. Every value from the file is bounded
//! before it sizes a read or an allocation, and the BAT is read a page at a time as blocks are
//! touched (a 64 TiB disk with 1 MiB blocks has a 512 MiB BAT): opening costs the header section
//! and the metadata table, never the whole table.
//!
//! Writing: patches go to blocks that are fully present, in place; a block that is not (it reads as
//! zeros) is added after the end of the file on a MiB boundary, as QEMU and Hyper-V add blocks,
//! with zeros around the patches, and its BAT entry is set to fully present at that place. The
//! header is rewritten as the specification requires of a writer before its first change (new
//! `FileWriteGuid` and `DataWriteGuid`, sequence number raised, checksum), into both slots, so that
//! whichever copy a reader picks describes the changed file.

use crate::vhdx_log::{self, Replay, Replayed};
use crate::{
    ContainerError, ContainerUnit, Extent, FileFill, FileWrite, FileWriteLabel, OutputPlan,
    WriteHow,
};
use kaifuku_io::ReadAt;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

/// File identifier signature at offset 0.
pub(crate) const SIGNATURE: &[u8; 8] = b"vhdxfile";
const HEADER_OFFSETS: [u64; 2] = [64 << 10, 128 << 10];
const HEADER_LEN: usize = 4096;
const REGION_TABLE_OFFSETS: [u64; 2] = [192 << 10, 256 << 10];
const REGION_TABLE_LEN: usize = 64 << 10;
/// Entries a region table can hold (the spec's limit: 2047 × 32 bytes after a 16-byte header).
const MAX_REGION_ENTRIES: u32 = 2047;
const METADATA_TABLE_LEN: usize = 64 << 10;
const MAX_METADATA_ENTRIES: u16 = 2047;
const MIB: u64 = 1 << 20;
/// Structures in the file are placed on 1 MiB boundaries, past the 1 MiB header section.
const HEADER_SECTION_LEN: u64 = MIB;

const MIN_BLOCK_SIZE: u64 = MIB;
const MAX_BLOCK_SIZE: u64 = 256 * MIB;
/// The largest virtual disk the specification allows.
const MAX_VIRTUAL_SIZE: u64 = 64 << 40;
/// One BAT page, read and cached as a unit.
const BAT_PAGE_BYTES: u64 = 4096;
const BAT_PAGE_ENTRIES: u64 = BAT_PAGE_BYTES / 8;
/// BAT pages kept in memory: 64 × 512 entries spans 1 TiB of a disk with 32 MiB blocks.
const BAT_CACHE_PAGES: usize = 64;

const BAT_REGION: [u8; 16] = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
const METADATA_REGION: [u8; 16] = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const FILE_PARAMETERS: [u8; 16] = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const VIRTUAL_DISK_SIZE: [u8; 16] = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const VIRTUAL_DISK_ID: [u8; 16] = guid(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
const LOGICAL_SECTOR_SIZE: [u8; 16] = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
const PHYSICAL_SECTOR_SIZE: [u8; 16] = guid(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
const PARENT_LOCATOR: [u8; 16] = guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

// Payload block states (BAT entry bits 0–2).
const PAYLOAD_BLOCK_NOT_PRESENT: u64 = 0;
const PAYLOAD_BLOCK_UNDEFINED: u64 = 1;
const PAYLOAD_BLOCK_ZERO: u64 = 2;
const PAYLOAD_BLOCK_UNMAPPED: u64 = 3;
const PAYLOAD_BLOCK_FULLY_PRESENT: u64 = 6;
const PAYLOAD_BLOCK_PARTIALLY_PRESENT: u64 = 7;

/// A GUID as the Microsoft layout stores it: the first three fields little-endian.
const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

/// A GUID in its usual text form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase).
fn guid_text(g: &[u8; 16]) -> String {
    let d1 = u32::from_le_bytes([g[0], g[1], g[2], g[3]]);
    let d2 = u16::from_le_bytes([g[4], g[5]]);
    let d3 = u16::from_le_bytes([g[6], g[7]]);
    let tail: String = g[10..].iter().map(|b| format!("{b:02x}")).collect();
    format!("{d1:08x}-{d2:04x}-{d3:04x}-{:02x}{:02x}-{tail}", g[8], g[9])
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from(le_u32(b, at)) | (u64::from(le_u32(b, at + 4)) << 32)
}
fn guid_at(b: &[u8], at: usize) -> [u8; 16] {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    g
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as VHDX checksums its headers and
/// region tables. A 256-entry table built at compile time: a few lines, and it builds anywhere.
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// The checksum of a structure whose 4-byte checksum field sits at offset 4, counted as zero.
fn structure_crc(bytes: &[u8]) -> u32 {
    let mut copy = bytes.to_vec();
    copy[4..8].fill(0);
    crc32c(&copy)
}

/// What a VHDX's headers and metadata say about the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VhdxInfo {
    /// Bytes per payload block (1 MiB to 256 MiB).
    pub block_size: u32,
    /// Sector size the guest sees: 512 or 4096.
    pub logical_sector_size: u32,
    /// Sector size the disk reports as its physical one: 512 or 4096.
    pub physical_sector_size: u32,
    /// The disk's identity (`VirtualDiskId`), kept by a fix.
    pub virtual_disk_id: String,
    /// Sequence number of the current header.
    pub header_sequence: u64,
    /// Which header slot is current: 1 (at 64 KiB) or 2 (at 128 KiB).
    pub current_header: u8,
    /// Whether one of the two headers or region tables is damaged (the other one is used).
    pub damaged_copy: bool,
    /// Blocks kept allocated (`LeaveBlocksAllocated`: a fixed disk).
    pub leave_blocks_allocated: bool,
    /// Payload blocks the virtual size spans.
    pub total_blocks: u64,
    /// Bytes of the log region in the file.
    pub log_length: u32,
    /// Whether the log is empty (a zero `LogGuid`). A non-empty log is replayed in memory before
    /// anything else is read, and a fix writes the replayed state with an empty log.
    pub log_empty: bool,
    /// Log entries replayed (the active sequence), 0 for an empty log.
    pub log_entries_replayed: u64,
    /// 4 KiB sectors of the file the replay changed.
    pub log_sectors_replayed: u64,
}

/// One validated header.
#[derive(Clone)]
struct Header {
    /// Boxed: a 4 KiB array would make every `Layout` that large.
    raw: Box<[u8; HEADER_LEN]>,
    sequence: u64,
    slot: usize,
}

impl Header {
    fn file_write_guid(&self) -> [u8; 16] {
        guid_at(&self.raw[..], 16)
    }
    fn data_write_guid(&self) -> [u8; 16] {
        guid_at(&self.raw[..], 32)
    }
    fn log_guid(&self) -> [u8; 16] {
        guid_at(&self.raw[..], 48)
    }
    fn log_length(&self) -> u32 {
        le_u32(&self.raw[..], 68)
    }
    fn log_offset(&self) -> u64 {
        le_u64(&self.raw[..], 72)
    }
}

/// Why a header slot does not hold a usable header (only reported when both fail).
fn parse_header(raw: &[u8], slot: usize) -> Result<Header, String> {
    if &raw[..4] != b"head" {
        return Err("no `head` signature".into());
    }
    let stored = le_u32(raw, 4);
    let computed = structure_crc(&raw[..HEADER_LEN]);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    let version = le_u16(raw, 66);
    if version != 1 {
        return Err(format!("version {version}, only 1 is defined"));
    }
    let mut h = Box::new([0u8; HEADER_LEN]);
    h.copy_from_slice(&raw[..HEADER_LEN]);
    Ok(Header {
        sequence: le_u64(raw, 8),
        raw: h,
        slot,
    })
}

/// A region of the file: where it is and how long.
#[derive(Clone, Copy)]
struct Region {
    offset: u64,
    len: u64,
    name: &'static str,
}

impl Region {
    fn end(&self) -> u64 {
        self.offset + self.len
    }
    fn overlaps(&self, start: u64, end: u64) -> bool {
        start < self.end() && self.offset < end
    }
}

/// An opened VHDX: the current header, the geometry from the metadata, and a small cache of BAT
/// pages.
pub(crate) struct Vhdx {
    header: Header,
    damaged_copy: bool,
    bat: Region,
    /// Regions no payload block may overlap (header section, log, BAT, metadata).
    reserved: Vec<Region>,
    block_size: u64,
    logical_sector_size: u32,
    physical_sector_size: u32,
    virtual_size: u64,
    virtual_disk_id: [u8; 16],
    leave_blocks_allocated: bool,
    chunk_ratio: u64,
    total_blocks: u64,
    file_size: u64,
    bat_pages: RefCell<VecDeque<(u64, Rc<[u64]>)>>,
    /// The log's active sequence replayed, when the log is not empty.
    replay: Option<Replay>,
}

fn damaged(what: impl Into<String>, offset: u64, detail: impl Into<String>) -> ContainerError {
    ContainerError::VhdxDamaged {
        what: what.into(),
        offset,
        detail: detail.into(),
    }
}

fn read<R: ReadAt>(
    file: &R,
    what: &str,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, ContainerError> {
    let end = offset.saturating_add(len as u64);
    if end > file.size() {
        return Err(damaged(
            what,
            offset,
            format!(
                "it needs file bytes {offset}..{end} but the file is only {} bytes",
                file.size()
            ),
        ));
    }
    file.read_vec(offset, len)
        .map_err(|e| ContainerError::read(what.to_string(), offset, e))
}

impl Vhdx {
    /// Opens a file whose first bytes are the `vhdxfile` signature.
    pub fn open<R: ReadAt>(file: &R) -> Result<Vhdx, ContainerError> {
        let file_size = file.size();
        if file_size < HEADER_SECTION_LEN {
            return Err(ContainerError::FileTooSmall {
                what: "the VHDX header section",
                needed: HEADER_SECTION_LEN,
                file_size,
            });
        }

        // Headers: the current one is valid and has the higher sequence number.
        let mut headers = Vec::new();
        let mut faults = Vec::new();
        for (slot, &at) in HEADER_OFFSETS.iter().enumerate() {
            let raw = read(file, "the VHDX header", at, HEADER_LEN)?;
            match parse_header(&raw, slot) {
                Ok(h) => headers.push(h),
                Err(why) => faults.push(format!("header {} at file offset {at}: {why}", slot + 1)),
            }
        }
        let header = match headers.as_slice() {
            [] => {
                return Err(damaged(
                    "both VHDX headers",
                    HEADER_OFFSETS[0],
                    faults.join("; "),
                ))
            }
            [one] => one.clone(),
            [a, b] => {
                if b.sequence > a.sequence {
                    b.clone()
                } else {
                    a.clone()
                }
            }
            _ => unreachable!("two header slots"),
        };
        let mut damaged_copy = headers.len() < 2;
        let log_version = le_u16(&header.raw[..], 64);
        if log_version != 0 {
            return Err(damaged(
                "the VHDX header",
                HEADER_OFFSETS[header.slot],
                format!("log version {log_version}, only 0 is defined"),
            ));
        }

        // A non-empty log is replayed first: the region table, metadata and BAT are read through
        // it, as Hyper-V would see them after opening the file.
        let log_len = u64::from(header.log_length());
        let log = Region {
            offset: header.log_offset(),
            len: log_len,
            name: "the log",
        };
        let replay = if header.log_guid() != [0u8; 16] {
            check_region(&log, file_size, HEADER_OFFSETS[header.slot] + 72)?;
            let r = vhdx_log::replay(file, log.offset, log.len, &header.log_guid(), file_size)?;
            if let Some((&at, _)) = r
                .sectors
                .iter()
                .find(|(&at, _)| at < HEADER_SECTION_LEN || log.overlaps(at, at + 4096))
            {
                return Err(damaged(
                    "the VHDX log",
                    log.offset,
                    format!(
                        "it rewrites file offset {at}, in the header section or the log itself"
                    ),
                ));
            }
            Some(r)
        } else {
            None
        };
        let file = &Replayed {
            file,
            replay: replay.as_ref(),
        };

        // Region table: both copies should be equal; the first valid one is used.
        let mut table = None;
        let mut table_faults = Vec::new();
        for &at in &REGION_TABLE_OFFSETS {
            let raw = read(file, "the VHDX region table", at, REGION_TABLE_LEN)?;
            if &raw[..4] != b"regi" {
                table_faults.push(format!(
                    "region table at file offset {at}: no `regi` signature"
                ));
                continue;
            }
            let stored = le_u32(&raw, 4);
            let computed = structure_crc(&raw);
            if stored != computed {
                table_faults.push(format!(
                    "region table at file offset {at}: checksum mismatch (stored {stored:#010x}, \
                     computed {computed:#010x})"
                ));
                continue;
            }
            if table.is_none() {
                table = Some((at, raw));
            }
        }
        let Some((table_at, table)) = table else {
            return Err(damaged(
                "both VHDX region tables",
                REGION_TABLE_OFFSETS[0],
                table_faults.join("; "),
            ));
        };
        damaged_copy |= !table_faults.is_empty();
        let count = le_u32(&table, 8);
        if count > MAX_REGION_ENTRIES {
            return Err(damaged(
                "the VHDX region table",
                table_at,
                format!("{count} entries, more than the {MAX_REGION_ENTRIES} it can hold"),
            ));
        }
        let mut bat = None;
        let mut metadata = None;
        for i in 0..count as usize {
            let e = &table[16 + i * 32..16 + (i + 1) * 32];
            let id = guid_at(e, 0);
            let offset = le_u64(e, 16);
            let len = u64::from(le_u32(e, 24));
            let required = le_u32(e, 28) & 1 != 0;
            let entry_at = table_at + 16 + i as u64 * 32;
            let name = if id == BAT_REGION {
                "the block allocation table"
            } else if id == METADATA_REGION {
                "the metadata region"
            } else if required {
                return Err(damaged(
                    "the VHDX region table",
                    entry_at,
                    format!(
                        "it lists a region {} that readers must understand, and kaifuku does \
                         not know it (a newer VHDX version?)",
                        guid_text(&id)
                    ),
                ));
            } else {
                continue;
            };
            let region = Region { offset, len, name };
            check_region(&region, file_size, entry_at)?;
            let slot = if id == BAT_REGION {
                &mut bat
            } else {
                &mut metadata
            };
            if slot.replace(region).is_some() {
                return Err(damaged(
                    "the VHDX region table",
                    entry_at,
                    format!("{name} is listed twice"),
                ));
            }
        }
        let missing = |what: &str| {
            damaged(
                "the VHDX region table",
                table_at,
                format!("it does not list {what}"),
            )
        };
        let bat = bat.ok_or_else(|| missing("the block allocation table"))?;
        let metadata = metadata.ok_or_else(|| missing("the metadata region"))?;

        let mut reserved = vec![
            Region {
                offset: 0,
                len: HEADER_SECTION_LEN,
                name: "the header section",
            },
            bat,
            metadata,
        ];
        if log_len > 0 {
            check_region(&log, file_size, HEADER_OFFSETS[header.slot] + 72)?;
            reserved.push(log);
        }
        for (i, a) in reserved.iter().enumerate() {
            for b in &reserved[i + 1..] {
                if a.overlaps(b.offset, b.end()) {
                    return Err(damaged(
                        "the VHDX layout",
                        b.offset,
                        format!(
                            "{} (file bytes {}..{}) overlaps {} (file bytes {}..{})",
                            b.name,
                            b.offset,
                            b.end(),
                            a.name,
                            a.offset,
                            a.end()
                        ),
                    ));
                }
            }
        }

        let items = read_metadata(file, &metadata)?;
        let item =
            |id: &[u8; 16], name: &str, len: usize| -> Result<(u64, Vec<u8>), ContainerError> {
                let Some(&(offset, item_len)) = items.iter().find(|(i, _)| i == id).map(|(_, v)| v)
                else {
                    return Err(damaged(
                        "the VHDX metadata table",
                        metadata.offset,
                        format!("the required item `{name}` is missing"),
                    ));
                };
                if (item_len as usize) < len {
                    return Err(damaged(
                        "the VHDX metadata table",
                        metadata.offset,
                        format!("the item `{name}` is {item_len} bytes, it needs {len}"),
                    ));
                }
                let at = metadata.offset + u64::from(offset);
                Ok((
                    at,
                    read(file, &format!("the VHDX metadata item `{name}`"), at, len)?,
                ))
            };
        let (params_at, params) = item(&FILE_PARAMETERS, "file parameters", 8)?;
        let flags = le_u32(&params, 4);
        if flags & 2 != 0 || items.iter().any(|(i, _)| *i == PARENT_LOCATOR) {
            return Err(ContainerError::DifferencingVhdx);
        }
        let block_size = u64::from(le_u32(&params, 0));
        if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
        {
            return Err(damaged(
                "the VHDX file parameters",
                params_at,
                format!(
                    "block size {block_size} is invalid: it must be a power of two from 1 MiB to \
                     256 MiB"
                ),
            ));
        }
        let (size_at, size) = item(&VIRTUAL_DISK_SIZE, "virtual disk size", 8)?;
        let virtual_size = le_u64(&size, 0);
        let (_, id) = item(&VIRTUAL_DISK_ID, "virtual disk id", 16)?;
        let (logical_at, logical) = item(&LOGICAL_SECTOR_SIZE, "logical sector size", 4)?;
        let logical_sector_size = le_u32(&logical, 0);
        let (physical_at, physical) = item(&PHYSICAL_SECTOR_SIZE, "physical sector size", 4)?;
        let physical_sector_size = le_u32(&physical, 0);
        for (at, name, value) in [
            (logical_at, "logical", logical_sector_size),
            (physical_at, "physical", physical_sector_size),
        ] {
            if value != 512 && value != 4096 {
                return Err(damaged(
                    format!("the VHDX {name} sector size"),
                    at,
                    format!("{value} is invalid: it must be 512 or 4096"),
                ));
            }
        }
        if virtual_size == 0
            || virtual_size > MAX_VIRTUAL_SIZE
            || !virtual_size.is_multiple_of(u64::from(logical_sector_size))
        {
            return Err(damaged(
                "the VHDX virtual disk size",
                size_at,
                format!(
                    "{virtual_size} bytes is invalid: it must be a non-zero multiple of the \
                     {logical_sector_size}-byte sector, at most 64 TiB"
                ),
            ));
        }
        let chunk_ratio = ((1u64 << 23) * u64::from(logical_sector_size)) / block_size;
        let total_blocks = virtual_size.div_ceil(block_size);
        // Payload entries plus one sector-bitmap entry after each full chunk of them.
        let bat_entries = total_blocks + (total_blocks - 1) / chunk_ratio;
        let bat_needed = bat_entries * 8;
        if bat_needed > bat.len {
            return Err(damaged(
                "the VHDX block allocation table",
                bat.offset,
                format!(
                    "it is {} bytes, but a {virtual_size}-byte disk with {block_size}-byte blocks \
                     needs {bat_needed}",
                    bat.len
                ),
            ));
        }

        Ok(Vhdx {
            header,
            damaged_copy,
            bat,
            reserved,
            block_size,
            logical_sector_size,
            physical_sector_size,
            virtual_size,
            virtual_disk_id: guid_at(&id, 0),
            leave_blocks_allocated: flags & 1 != 0,
            chunk_ratio,
            total_blocks,
            file_size,
            bat_pages: RefCell::new(VecDeque::new()),
            replay,
        })
    }

    /// Reads file bytes as the replayed log leaves them.
    pub fn read_file<R: ReadAt>(
        &self,
        file: &R,
        offset: u64,
        buf: &mut [u8],
    ) -> std::io::Result<()> {
        Replayed {
            file,
            replay: self.replay.as_ref(),
        }
        .read_at(offset, buf)
    }

    pub fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    /// Fixed when the file keeps all blocks allocated (how Hyper-V and qemu-img mark a fixed VHDX).
    pub fn is_fixed(&self) -> bool {
        self.leave_blocks_allocated
    }

    pub fn info(&self) -> VhdxInfo {
        VhdxInfo {
            block_size: self.block_size as u32,
            logical_sector_size: self.logical_sector_size,
            physical_sector_size: self.physical_sector_size,
            virtual_disk_id: guid_text(&self.virtual_disk_id),
            header_sequence: self.header.sequence,
            current_header: self.header.slot as u8 + 1,
            damaged_copy: self.damaged_copy,
            leave_blocks_allocated: self.leave_blocks_allocated,
            total_blocks: self.total_blocks,
            log_length: self.header.log_length(),
            log_empty: self.header.log_guid() == [0u8; 16],
            log_entries_replayed: self.replay.as_ref().map_or(0, |r| r.entries),
            log_sectors_replayed: self.replay.as_ref().map_or(0, |r| r.sectors.len() as u64),
        }
    }

    /// The BAT entry of payload block `block`, through the page cache.
    fn bat_entry<R: ReadAt>(&self, file: &R, block: u64) -> Result<u64, ContainerError> {
        let index = block + block / self.chunk_ratio;
        let page = index / BAT_PAGE_ENTRIES;
        let cached = self
            .bat_pages
            .borrow()
            .iter()
            .find(|(p, _)| *p == page)
            .map(|(_, entries)| Rc::clone(entries));
        let entries = match cached {
            Some(e) => e,
            None => {
                let start = page * BAT_PAGE_BYTES;
                // The last page may be cut by the region's end (validated to cover every entry).
                let len = BAT_PAGE_BYTES.min(self.bat.len - start) as usize;
                let at = self.bat.offset + start;
                let replayed = Replayed {
                    file,
                    replay: self.replay.as_ref(),
                };
                let bytes = read(&replayed, "the VHDX block allocation table", at, len)?;
                let entries: Rc<[u64]> = bytes.chunks_exact(8).map(|c| le_u64(c, 0)).collect();
                let mut cache = self.bat_pages.borrow_mut();
                if cache.len() == BAT_CACHE_PAGES {
                    cache.pop_front();
                }
                cache.push_back((page, Rc::clone(&entries)));
                entries
            }
        };
        Ok(entries[(index % BAT_PAGE_ENTRIES) as usize])
    }

    /// The file offset of payload block `block` if it is fully present, `None` if it reads as
    /// zeros; an error for states this disk cannot have and for blocks outside the file's data.
    fn block_offset<R: ReadAt>(&self, file: &R, block: u64) -> Result<Option<u64>, ContainerError> {
        let entry = self.bat_entry(file, block)?;
        let entry_at = self.bat.offset + (block + block / self.chunk_ratio) * 8;
        match entry & 7 {
            PAYLOAD_BLOCK_NOT_PRESENT
            | PAYLOAD_BLOCK_UNDEFINED
            | PAYLOAD_BLOCK_ZERO
            | PAYLOAD_BLOCK_UNMAPPED => Ok(None),
            PAYLOAD_BLOCK_FULLY_PRESENT => {
                let start = (entry >> 20) * MIB;
                // The last block of the disk may be cut short in the file.
                let len = self
                    .block_size
                    .min(self.virtual_size - block * self.block_size);
                // The offset field reaches 2^64 - 1 MiB: saturate, and the check below refuses it.
                let end = start.saturating_add(len);
                if end > self.file_size || start < HEADER_SECTION_LEN {
                    return Err(damaged(
                        format!("the VHDX block allocation table entry of block {block}"),
                        entry_at,
                        format!(
                            "it puts the block at file bytes {start}..{end}, outside the file's \
                             data ({} bytes)",
                            self.file_size
                        ),
                    ));
                }
                if let Some(r) = self.reserved.iter().find(|r| r.overlaps(start, end)) {
                    return Err(damaged(
                        format!("the VHDX block allocation table entry of block {block}"),
                        entry_at,
                        format!(
                            "it puts the block at file bytes {start}..{end}, which overlaps {}",
                            r.name
                        ),
                    ));
                }
                Ok(Some(start))
            }
            PAYLOAD_BLOCK_PARTIALLY_PRESENT => Err(damaged(
                format!("the VHDX block allocation table entry of block {block}"),
                entry_at,
                "the block is marked partially present, which only a differencing disk may have",
            )),
            state => Err(damaged(
                format!("the VHDX block allocation table entry of block {block}"),
                entry_at,
                format!("block state {state} is not defined"),
            )),
        }
    }

    pub fn map<R: ReadAt>(&self, file: &R, offset: u64) -> Result<Extent, ContainerError> {
        if offset >= self.virtual_size {
            return Err(ContainerError::OutOfRange {
                offset,
                virtual_size: self.virtual_size,
            });
        }
        let block = offset / self.block_size;
        let in_block = offset % self.block_size;
        let len = (self.block_size - in_block).min(self.virtual_size - offset);
        Ok(match self.block_offset(file, block)? {
            Some(start) => Extent::InFile {
                file_offset: start + in_block,
                len,
            },
            None => Extent::Zero { len },
        })
    }

    /// The file offset of every block the patches and fills touch: a fully present block where
    /// it is, checked to share no file byte with another; an absent one (not present, zero,
    /// unmapped, undefined: it reads as zeros) at a new place after the file's end, on a MiB
    /// boundary as the specification wants, taken in block order. Returns the places, which
    /// blocks are new, and the new file size when the file grows.
    fn block_places<R: ReadAt>(
        &self,
        file: &R,
        touched: &BTreeSet<u64>,
    ) -> Result<BlockPlaces, ContainerError> {
        let mut places = BTreeMap::new();
        let mut new = BTreeSet::new();
        let mut next = self.file_size.next_multiple_of(MIB);
        for &block in touched {
            let start = match self.block_offset(file, block)? {
                Some(start) => {
                    // Two blocks sharing file bytes would change each other: refuse before
                    // writing either.
                    let end = start + self.block_size;
                    if let Some((&other, _)) = places
                        .iter()
                        .find(|&(_, &s)| s < end && start < s + self.block_size)
                    {
                        return Err(damaged(
                            format!("the VHDX block allocation table entry of block {block}"),
                            self.bat.offset + (block + block / self.chunk_ratio) * 8,
                            format!("block {block} shares file bytes with block {other}"),
                        ));
                    }
                    start
                }
                None => {
                    let start = next;
                    next += self.block_size;
                    new.insert(block);
                    start
                }
            };
            places.insert(block, start);
        }
        let grown = (!new.is_empty()).then_some(next);
        Ok(BlockPlaces { places, new, grown })
    }

    /// The output for merged, in-range, non-empty patches (sorted, disjoint) and fills: writes
    /// into the blocks the table maps; a block that is not present is added at the end of the
    /// file (the patches laid over zeros, as it read before) and its table entry points there;
    /// plus the two header updates the specification requires of a writer.
    pub fn plan_output<R: ReadAt>(
        &self,
        file: &R,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<OutputPlan, ContainerError> {
        let bs = self.block_size;
        let touched = crate::touched_units(merged, fills, bs);
        let BlockPlaces { places, new, grown } = self.block_places(file, &touched)?;
        let how = |block| {
            if new.contains(&block) {
                WriteHow::NewUnit
            } else {
                WriteHow::Bytes
            }
        };
        let mut writes = Vec::new();
        for (start, bytes) in merged {
            let end = start + bytes.len() as u64;
            let mut pos = *start;
            while pos < end {
                let block = pos / bs;
                let piece_end = ((block + 1) * bs).min(end);
                writes.push(FileWrite {
                    file_offset: places[&block] + pos % bs,
                    bytes: bytes[(pos - start) as usize..(piece_end - start) as usize].to_vec(),
                    label: FileWriteLabel::VirtualBytes {
                        start: pos,
                        end: piece_end,
                        unit: Some(ContainerUnit::VhdxBlock { block }),
                        how: how(block),
                    },
                });
                pos = piece_end;
            }
        }
        let mut file_fills = Vec::new();
        for &(start, len, byte) in fills {
            let end = start + len;
            let mut pos = start;
            while pos < end {
                let block = pos / bs;
                let piece_end = ((block + 1) * bs).min(end);
                file_fills.push(FileFill {
                    file_offset: places[&block] + pos % bs,
                    len: piece_end - pos,
                    byte,
                    label: FileWriteLabel::VirtualBytes {
                        start: pos,
                        end: piece_end,
                        unit: Some(ContainerUnit::VhdxBlock { block }),
                        how: if new.contains(&block) {
                            WriteHow::NewUnit
                        } else {
                            WriteHow::Filled
                        },
                    },
                });
                pos = piece_end;
            }
        }
        if writes.is_empty() && file_fills.is_empty() && self.replay.is_none() {
            return Ok(OutputPlan {
                writes,
                fills: file_fills,
                file_size: None,
            });
        }
        // New blocks: zeros wherever no patch or fill lands (as the block read before), their
        // table entries, and zeros from the old end of the file to the first of them.
        if let Some(first) = new.first() {
            if places[first] > self.file_size {
                file_fills.push(FileFill {
                    file_offset: self.file_size,
                    len: places[first] - self.file_size,
                    byte: 0,
                    label: FileWriteLabel::AlignmentPadding,
                });
            }
        }
        for &block in &new {
            let start = places[&block];
            let zeros = crate::zeros_around(
                &writes,
                &file_fills,
                (start, bs),
                (block * bs, self.virtual_size),
                ContainerUnit::VhdxBlock { block },
            );
            file_fills.extend(zeros);
            let entry = PAYLOAD_BLOCK_FULLY_PRESENT | (start / MIB) << 20;
            writes.push(FileWrite {
                file_offset: self.bat.offset + (block + block / self.chunk_ratio) * 8,
                bytes: entry.to_le_bytes().to_vec(),
                label: FileWriteLabel::UnitTableEntry {
                    unit: ContainerUnit::VhdxBlock { block },
                },
            });
        }
        if let Some(replay) = &self.replay {
            (writes, file_fills) = replayed_writes(replay, writes, file_fills);
        }
        writes.extend(self.header_updates(merged, fills));
        writes.sort_by_key(|w| w.file_offset);
        file_fills.sort_by_key(|f| f.file_offset);
        Ok(OutputPlan {
            writes,
            fills: file_fills,
            file_size: grown,
        })
    }

    /// The new headers: the specification has a writer give the file a new `FileWriteGuid` before
    /// its first write and a new `DataWriteGuid` before it changes the disk's contents, raise the
    /// sequence number, and write the header to the slot that is not current; writing it twice
    /// (sequence + 1 to the other slot, then + 2 to the old current one) leaves both copies
    /// describing the changed file, so a reader that falls back to the other copy sees it too.
    ///
    /// The GUIDs only need to differ from every earlier one; this core has no randomness or clock,
    /// so they are derived from the old GUIDs and the patched bytes. Two different fixes of one
    /// image get different GUIDs; repeating the same fix gives the same ones, which is what the
    /// CLI and the page must agree on.
    fn header_updates(
        &self,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Vec<FileWrite> {
        let mut digest = Vec::new();
        digest.extend_from_slice(&self.header.file_write_guid());
        digest.extend_from_slice(&self.header.data_write_guid());
        for (offset, bytes) in merged {
            digest.extend_from_slice(&offset.to_le_bytes());
            digest.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            digest.extend_from_slice(&crc32c(bytes).to_le_bytes());
        }
        for &(offset, len, byte) in fills {
            digest.extend_from_slice(&offset.to_le_bytes());
            digest.extend_from_slice(&len.to_le_bytes());
            digest.push(byte);
        }
        let file_write = derive_guid(b"kaifuku FileWriteGuid", &digest);
        let data_write = derive_guid(b"kaifuku DataWriteGuid", &digest);
        let other = 1 - self.header.slot;
        [(other, 1u64), (self.header.slot, 2u64)]
            .into_iter()
            .map(|(slot, step)| {
                let mut h = *self.header.raw;
                let sequence = self.header.sequence.wrapping_add(step);
                h[8..16].copy_from_slice(&sequence.to_le_bytes());
                h[16..32].copy_from_slice(&file_write);
                h[32..48].copy_from_slice(&data_write);
                // The replayed sectors are written with the data: the log is empty now.
                h[48..64].fill(0);
                h[4..8].fill(0);
                let crc = crc32c(&h);
                h[4..8].copy_from_slice(&crc.to_le_bytes());
                FileWrite {
                    file_offset: HEADER_OFFSETS[slot],
                    bytes: h.to_vec(),
                    label: FileWriteLabel::VhdxHeader {
                        slot: slot as u8 + 1,
                        sequence,
                        log_emptied: self.replay.is_some(),
                    },
                }
            })
            .collect()
    }
}

/// Where the blocks a fix touches are written ([`Vhdx::block_places`]).
struct BlockPlaces {
    /// Each block's file offset.
    places: BTreeMap<u64, u64>,
    /// The blocks added after the file's end.
    new: BTreeSet<u64>,
    /// The file's new size, when blocks are added.
    grown: Option<u64>,
}

/// The writes and fills with the replayed log sectors added: each replayed sector is written whole,
/// with the patch bytes and fill bytes that fall in it laid over it, and the patches and fills are
/// cut around it, so that writes and fills stay disjoint.
fn replayed_writes(
    replay: &Replay,
    mut writes: Vec<FileWrite>,
    mut fills: Vec<FileFill>,
) -> (Vec<FileWrite>, Vec<FileFill>) {
    const SECTOR: u64 = 4096;
    let mut sectors = Vec::new();
    for &at in replay.sectors.keys() {
        let end = at + SECTOR;
        let mut bytes = replay.sector_bytes(at);
        let mut kept = Vec::with_capacity(writes.len());
        let mut patched = false;
        for w in writes {
            if w.end() <= at || end <= w.file_offset {
                kept.push(w);
                continue;
            }
            patched = true;
            let from = w.file_offset.max(at);
            let to = w.end().min(end);
            bytes[(from - at) as usize..(to - at) as usize].copy_from_slice(
                &w.bytes[(from - w.file_offset) as usize..(to - w.file_offset) as usize],
            );
            if w.file_offset < at {
                kept.push(FileWrite {
                    file_offset: w.file_offset,
                    bytes: w.bytes[..(at - w.file_offset) as usize].to_vec(),
                    label: w.label.clone(),
                });
            }
            if w.end() > end {
                kept.push(FileWrite {
                    file_offset: end,
                    bytes: w.bytes[(end - w.file_offset) as usize..].to_vec(),
                    label: w.label.clone(),
                });
            }
        }
        writes = kept;
        let mut kept = Vec::with_capacity(fills.len());
        for f in fills {
            let f_end = f.file_offset + f.len;
            if f_end <= at || end <= f.file_offset {
                kept.push(f);
                continue;
            }
            patched = true;
            let from = f.file_offset.max(at);
            let to = f_end.min(end);
            bytes[(from - at) as usize..(to - at) as usize].fill(f.byte);
            if f.file_offset < at {
                kept.push(FileFill {
                    len: at - f.file_offset,
                    ..f.clone()
                });
            }
            if f_end > end {
                kept.push(FileFill {
                    file_offset: end,
                    len: f_end - end,
                    ..f
                });
            }
        }
        fills = kept;
        sectors.push(FileWrite {
            file_offset: at,
            bytes,
            label: FileWriteLabel::VhdxLogReplay {
                start: at,
                end,
                with_patches: patched,
            },
        });
    }
    writes.extend(sectors);
    writes.sort_by_key(|w| w.file_offset);
    fills.sort_by_key(|f| f.file_offset);
    (writes, fills)
}

/// A random-looking version-4 GUID from `tag` and `digest`: four CRC-32C values over the input with
/// different prefixes.
fn derive_guid(tag: &[u8], digest: &[u8]) -> [u8; 16] {
    let mut g = [0u8; 16];
    for (i, chunk) in g.chunks_exact_mut(4).enumerate() {
        let mut input = Vec::with_capacity(tag.len() + 1 + digest.len());
        input.extend_from_slice(tag);
        input.push(i as u8);
        input.extend_from_slice(digest);
        chunk.copy_from_slice(&crc32c(&input).to_le_bytes());
    }
    g[7] = (g[7] & 0x0f) | 0x40; // version 4 (Data3's high nibble, little-endian)
    g[8] = (g[8] & 0x3f) | 0x80; // RFC 4122 variant
    g
}

/// A region from the region table or the header: on 1 MiB boundaries, past the header section,
/// inside the file.
fn check_region(r: &Region, file_size: u64, entry_at: u64) -> Result<(), ContainerError> {
    let end = r.offset.checked_add(r.len);
    if !r.offset.is_multiple_of(MIB)
        || !r.len.is_multiple_of(MIB)
        || r.len == 0
        || r.offset < HEADER_SECTION_LEN
    {
        return Err(damaged(
            format!("the VHDX entry for {}", r.name),
            entry_at,
            format!(
                "file offset {} and length {} must be non-zero multiples of 1 MiB past the header \
                 section",
                r.offset, r.len
            ),
        ));
    }
    match end {
        Some(end) if end <= file_size => Ok(()),
        _ => Err(damaged(
            format!("the VHDX entry for {}", r.name),
            entry_at,
            format!(
                "{} at file bytes {}..{} lies past the end of the {file_size}-byte file",
                r.name,
                r.offset,
                r.offset.saturating_add(r.len)
            ),
        )),
    }
}

/// A metadata item: its id, and (offset in the metadata region, length).
type MetadataItem = ([u8; 16], (u32, u32));

/// The metadata table's known items. Unknown required items refuse.
fn read_metadata<R: ReadAt>(
    file: &R,
    region: &Region,
) -> Result<Vec<MetadataItem>, ContainerError> {
    let t = read(
        file,
        "the VHDX metadata table",
        region.offset,
        METADATA_TABLE_LEN,
    )?;
    if &t[..8] != b"metadata" {
        return Err(damaged(
            "the VHDX metadata table",
            region.offset,
            "no `metadata` signature",
        ));
    }
    let count = le_u16(&t, 10);
    if count > MAX_METADATA_ENTRIES {
        return Err(damaged(
            "the VHDX metadata table",
            region.offset,
            format!("{count} entries, more than the {MAX_METADATA_ENTRIES} it can hold"),
        ));
    }
    let known = [
        FILE_PARAMETERS,
        VIRTUAL_DISK_SIZE,
        VIRTUAL_DISK_ID,
        LOGICAL_SECTOR_SIZE,
        PHYSICAL_SECTOR_SIZE,
        PARENT_LOCATOR,
    ];
    let mut items = Vec::new();
    for i in 0..usize::from(count) {
        let e = &t[32 + i * 32..32 + (i + 1) * 32];
        let id = guid_at(e, 0);
        let offset = le_u32(e, 16);
        let len = le_u32(e, 20);
        let required = le_u32(e, 24) & 4 != 0;
        let entry_at = region.offset + 32 + i as u64 * 32;
        if len > 0
            && (u64::from(offset) < METADATA_TABLE_LEN as u64
                || u64::from(offset) + u64::from(len) > region.len)
        {
            return Err(damaged(
                "the VHDX metadata table",
                entry_at,
                format!(
                    "item {} at bytes {offset}..{} of the metadata region lies outside it",
                    guid_text(&id),
                    u64::from(offset) + u64::from(len)
                ),
            ));
        }
        if !known.contains(&id) {
            if required {
                return Err(damaged(
                    "the VHDX metadata table",
                    entry_at,
                    format!(
                        "it lists an item {} that readers must understand, and kaifuku does not \
                         know it (a newer VHDX version?)",
                        guid_text(&id)
                    ),
                ));
            }
            continue;
        }
        if items.iter().any(|(i, _)| *i == id) {
            return Err(damaged(
                "the VHDX metadata table",
                entry_at,
                format!("item {} is listed twice", guid_text(&id)),
            ));
        }
        items.push((id, (offset, len)));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn guid_layout_and_text() {
        assert_eq!(
            guid_text(&BAT_REGION),
            "2dc27766-f623-4200-9d64-115e9bfd4a08"
        );
        assert_eq!(&BAT_REGION[..4], &[0x66, 0x77, 0xC2, 0x2D]);
    }
}
