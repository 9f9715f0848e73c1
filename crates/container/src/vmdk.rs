//! VMware sparse extents in one file: monolithicSparse (VMware Workstation, `qemu-img -O vmdk`)
//! and streamOptimized (OVA/OVF exports, AWS VM export and import).
//!
//! Layout, as VMware's "Virtual Disk Format 5.0" defines it (all integers little-endian, offsets
//! and sizes in 512-byte sectors):
//! - a 512-byte **sparse extent header** at offset 0 (magic `KDMV`, version, flags, capacity,
//!   grain size, where the embedded text descriptor, the grain directory and its redundant copy
//!   are, four newline characters a text-mode transfer would have mangled, the compression
//!   algorithm);
//! - the **descriptor**: text naming the disk type (`createType`), its content ID (`CID`) and, for
//!   a child disk, its parent (`parentCID`, `parentFileNameHint`);
//! - the **grain directory** (GD): one 4-byte entry per grain table, its sector (0: none);
//! - **grain tables** (GT): `numGTEsPerGT` 4-byte entries, one per grain: the grain's sector,
//!   0 for a grain never written (zeros, or the parent's data in a child), 1 for a grain marked
//!   as reading zeros when the header's zeroed-grain flag is set;
//! - with the redundant-grain-table flag, a second directory (`rgdOffset`) with its own tables:
//!   the same mapping, kept for recovery.
//!
//! streamOptimized sets the compressed and markers flags: each grain is stored as a marker (its
//! first virtual sector as a u64, the compressed length as a u32) followed by zlib data, and the
//! header's `gdOffset` may be `GD_AT_END`: the real header is then the footer, the second-to-last
//! sector of the file, before the end-of-stream marker.
//!
//! Reading uses the primary grain directory, as VMware and QEMU do. Directory and tables are read
//! a page or a table at a time when a range is first mapped (a 2 TiB disk has a 128 KiB
//! directory and 64 MiB of tables; only what a repair touches is read), a few kept.
//!
//! Writing back a monolithicSparse image is in place, into grains that already have space in the
//! file: no metadata changes. A patch in a grain with no space is refused (kaifuku does not
//! allocate grains there), as is one in a grain the redundant tables map elsewhere: which copy is
//! right cannot be known from the file, and writing into either could destroy data. A
//! streamOptimized image cannot be written in place (its grains are compressed, each exactly as
//! long as it needs): it is re-streamed ([`Vmdk::plan_stream`]), the file kept up to its last
//! grain and the touched grains, every table, the directory, footer and end-of-stream marker
//! written after it; the old grains stay in the file, unreferenced. The descriptor's `CID` is
//! kept in both: the core changes no identifiers it does not have to, and the disk's content ID
//! would only matter to a child disk, which cannot be repaired through its parent anyway.
//!
//! As everywhere in this crate, every field from the file is checked before it sizes a read or an
//! allocation, so a crafted file can neither panic nor make us allocate much memory.

use crate::{
    ContainerError, ContainerUnit, Extent, FileFill, FileWrite, FileWriteLabel, OutputPlan,
    VmdkStreamPart, WriteHow,
};
use kaifuku_io::ReadAt;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

/// The magic at offset 0 (`0x564d444b` little-endian).
pub(crate) const MAGIC: &[u8; 4] = b"KDMV";
const SECTOR: u64 = 512;
const HEADER_LEN: u64 = 512;
/// Where a grain kaifuku adds may start at the earliest: sector 0 is the header, and a grain at
/// sector 1 would have the table entry 1, which means "a grain of zeros" when that flag is set
/// (found by the `container` fuzzer: such a grain read back as zeros).
const FIRST_GRAIN_AT: u64 = 2 * SECTOR;
/// `gdOffset` of a streamOptimized header whose grain directory follows the grains: the footer
/// holds the real offset.
const GD_AT_END: u64 = u64::MAX;

const FLAG_NEWLINE_TEST: u32 = 1 << 0;
const FLAG_REDUNDANT_GT: u32 = 1 << 1;
const FLAG_ZERO_GRAIN: u32 = 1 << 2;
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;
const KNOWN_FLAGS: u32 =
    FLAG_NEWLINE_TEST | FLAG_REDUNDANT_GT | FLAG_ZERO_GRAIN | FLAG_COMPRESSED | FLAG_MARKERS;
const COMPRESS_DEFLATE: u16 = 1;
/// A grain table entry meaning "reads as zeros" when `FLAG_ZERO_GRAIN` is set.
const GTE_ZERO: u32 = 1;
/// Marker types of a streamOptimized file (after the sector count and a zero size).
const MARKER_END_OF_STREAM: u32 = 0;
const MARKER_GRAIN_TABLE: u32 = 1;
const MARKER_GRAIN_DIRECTORY: u32 = 2;
const MARKER_FOOTER: u32 = 3;
/// Bytes in front of a compressed grain's data: its first virtual sector and its length.
const GRAIN_MARKER_LEN: u64 = 12;
/// zlib level of re-compressed grains: zlib's default, as VMware and QEMU write them.
const DEFLATE_LEVEL: u8 = 6;

/// VMware writes 64 KiB grains; 2 MiB bounds what one inflated grain may cost in memory.
const MAX_GRAIN_BYTES: u64 = 2 << 20;
/// The specification fixes 512 entries per grain table; QEMU accepts no more.
const MAX_GT_ENTRIES: u32 = 512;
/// VMware's descriptor area is 10 KiB at most in practice; a larger one is damage.
const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;
/// VMware's largest virtual disk is 62 TB; a larger capacity is damage.
const MAX_CAPACITY_BYTES: u64 = 64 << 40;
/// A grain directory larger than this is damage: 64 TiB in VMware's 64 KiB grains needs 8 MiB.
/// Its size follows from three header fields, so one flipped bit could otherwise ask for
/// gigabytes (found by fuzzing).
const MAX_GD_BYTES: u64 = 32 << 20;
/// The whole re-stream (a stream that does not end as the format wants) holds every grain
/// table in memory and writes them again: 2 TiB in 64 KiB grains is 128 MiB of tables.
const MAX_RESTREAM_TABLE_BYTES: u64 = 256 << 20;
/// Grain directory pages (4 KiB, 1024 tables each) and grain tables kept in memory.
const GD_PAGE_BYTES: u64 = 4096;
const GD_CACHE_PAGES: usize = 4;
const GT_CACHE_TABLES: usize = 8;
const GRAIN_CACHE: usize = 4;

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from(le_u32(b, at)) | (u64::from(le_u32(b, at + 4)) << 32)
}

/// What a VMDK header and its descriptor say about the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmdkInfo {
    /// The descriptor's `createType` (`monolithicSparse`, `streamOptimized`, ...).
    pub subformat: String,
    /// The sparse extent header's version (1, 2 or 3).
    pub version: u32,
    /// Bytes per grain.
    pub grain_size: u64,
    /// Grain tables the directory has room for.
    pub grain_tables: u64,
    /// The descriptor's content ID, as 8 hex digits.
    pub cid: String,
    /// Whether a redundant grain directory and tables are kept.
    pub redundant_grain_directory: bool,
    /// Whether grains are stored compressed (streamOptimized).
    pub compressed: bool,
    /// Whether the header says the image was not closed cleanly.
    pub unclean_shutdown: bool,
}

/// The fields of a sparse extent header kaifuku uses.
#[derive(Debug, Clone)]
struct Header {
    version: u32,
    flags: u32,
    capacity: u64,
    grain_sectors: u64,
    descriptor_offset: u64,
    descriptor_sectors: u64,
    gt_entries: u32,
    rgd_offset: u64,
    gd_offset: u64,
    /// Sectors before the first grain: header, descriptor and (unless at the end) the tables.
    overhead: u64,
    unclean_shutdown: bool,
}

fn header_error(field: &'static str, value: u64, problem: &'static str) -> ContainerError {
    ContainerError::VmdkHeader {
        field,
        value,
        problem,
    }
}

impl Header {
    fn parse(b: &[u8]) -> Result<Header, ContainerError> {
        let version = le_u32(b, 4);
        if !(1..=3).contains(&version) {
            return Err(header_error("version", version.into(), "is not 1, 2 or 3"));
        }
        let flags = le_u32(b, 8);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(header_error(
                "flags",
                flags.into(),
                "has bits the specification does not define",
            ));
        }
        // A transfer in text mode rewrites line ends; the header carries one of each so that the
        // damage shows here rather than as corrupt grains later.
        if flags & FLAG_NEWLINE_TEST != 0 && b[73..77] != *b"\n \r\n" {
            return Err(ContainerError::VmdkHeader {
                field: "singleEndLineChar..doubleEndLineChar2",
                value: u64::from(le_u32(b, 73)),
                problem: "is not \"\\n \\r\\n\": the file went through a text-mode transfer \
                          (FTP in ASCII mode?) which changed its bytes; copy it again in binary \
                          mode",
            });
        }
        let compress = u16::from_le_bytes([b[77], b[78]]);
        if flags & FLAG_COMPRESSED != 0 && compress != COMPRESS_DEFLATE {
            return Err(header_error(
                "compressAlgorithm",
                compress.into(),
                "is not 1 (deflate), the only one defined",
            ));
        }
        let h = Header {
            version,
            flags,
            capacity: le_u64(b, 12),
            grain_sectors: le_u64(b, 20),
            descriptor_offset: le_u64(b, 28),
            descriptor_sectors: le_u64(b, 36),
            gt_entries: le_u32(b, 44),
            rgd_offset: le_u64(b, 48),
            gd_offset: le_u64(b, 56),
            overhead: le_u64(b, 64),
            unclean_shutdown: b[72] != 0,
        };
        // Checked: a grain of 2^55 sectors or more overflows as bytes (found by fuzzing).
        if h.grain_sectors == 0
            || !h.grain_sectors.is_power_of_two()
            || h.grain_sectors
                .checked_mul(SECTOR)
                .is_none_or(|b| b > MAX_GRAIN_BYTES)
        {
            return Err(header_error(
                "grainSize",
                h.grain_sectors,
                "is not a power of two between 1 and 4096 sectors",
            ));
        }
        if h.gt_entries == 0 || h.gt_entries > MAX_GT_ENTRIES {
            return Err(header_error(
                "numGTEsPerGT",
                h.gt_entries.into(),
                "is not between 1 and 512",
            ));
        }
        if h.capacity == 0
            || h.capacity
                .checked_mul(SECTOR)
                .is_none_or(|b| b > MAX_CAPACITY_BYTES)
        {
            return Err(header_error(
                "capacity",
                h.capacity,
                "is zero or larger than the 64 TiB a VMware disk can be",
            ));
        }
        if h.gt_count() * 4 > MAX_GD_BYTES {
            return Err(header_error(
                "capacity",
                h.capacity,
                "with the header's grain size and grain table length needs a grain directory \
                 larger than 32 MiB, which no VMware disk has",
            ));
        }
        Ok(h)
    }

    fn grain_bytes(&self) -> u64 {
        self.grain_sectors * SECTOR
    }

    fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }

    /// Grain tables needed to cover the capacity.
    fn gt_count(&self) -> u64 {
        self.capacity
            .div_ceil(self.grain_sectors)
            .div_ceil(self.gt_entries.into())
    }
}

/// What the embedded descriptor says.
struct Descriptor {
    create_type: String,
    cid: String,
    /// For a child disk: the parent's file name hint and the CID the parent had when the child
    /// was made.
    parent: Option<(String, String)>,
}

/// Reads the `key=value` lines kaifuku needs. `createType` may be missing only from an extent
/// described by a separate file.
fn parse_descriptor(text: &str, described_elsewhere: bool) -> Result<Descriptor, ContainerError> {
    let mut create_type = None;
    let mut cid = None;
    let mut parent_cid = None;
    let mut parent_hint = None;
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "createType" => create_type = Some(value),
            "CID" => cid = Some(value),
            "parentCID" => parent_cid = Some(value),
            "parentFileNameHint" => parent_hint = Some(value),
            _ => {}
        }
    }
    let parent = crate::vmdk_descriptor::parent_of(parent_cid.as_deref(), parent_hint)
        .map(|hint| (hint, parent_cid.unwrap_or_default()));
    let create_type = match create_type {
        Some(t) => t,
        None if described_elsewhere => String::new(),
        None => {
            return Err(ContainerError::VmdkDescriptor {
                problem: "has no createType line",
            })
        }
    };
    Ok(Descriptor {
        create_type,
        cid: cid.unwrap_or_default(),
        parent,
    })
}

/// An opened monolithicSparse or streamOptimized VMDK.
pub(crate) struct Vmdk {
    header: Header,
    /// The header as stored: the first sector, and the sector the fields were read from (the
    /// footer of a stream whose header defers to it, else the first sector again).
    head_bytes: Vec<u8>,
    header_bytes: Vec<u8>,
    /// Byte offsets of the primary and (if kept) redundant grain directories.
    gd: u64,
    rgd: Option<u64>,
    descriptor: Descriptor,
    file_size: u64,
    virtual_size: u64,
    /// A child disk read through its parent: grains it does not hold are the parent's.
    has_backing: bool,
    gd_cache: Cache,
    gt_cache: Cache,
    grain_cache: Cache,
}

type Cache = RefCell<VecDeque<(u64, Rc<[u8]>)>>;

fn cached(cache: &Cache, key: u64) -> Option<Rc<[u8]>> {
    cache
        .borrow()
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| Rc::clone(v))
}

fn remember(cache: &Cache, capacity: usize, key: u64, v: Rc<[u8]>) {
    let mut cache = cache.borrow_mut();
    if cache.len() == capacity {
        cache.pop_front();
    }
    cache.push_back((key, v));
}

/// Checks that `sectors` sectors at sector `start` lie in a `file_size`-byte file; returns the
/// byte range.
fn sectors_in_file(start: u64, sectors: u64, file_size: u64) -> Option<(u64, u64)> {
    let from = start.checked_mul(SECTOR)?;
    let to = from.checked_add(sectors.checked_mul(SECTOR)?)?;
    (to <= file_size).then_some((from, to))
}

impl Vmdk {
    /// Opens a sparse extent; `head` holds the file's first 512 bytes. A file of its own
    /// (`described_elsewhere` false) must carry its embedded descriptor; an extent of a disk
    /// whose descriptor is a separate text file (`twoGbMaxExtentSparse`) has none.
    pub fn open<R: ReadAt>(
        file: &R,
        head: &[u8],
        file_size: u64,
        described_elsewhere: bool,
    ) -> Result<Vmdk, ContainerError> {
        if (head.len() as u64) < HEADER_LEN {
            return Err(ContainerError::FileTooSmall {
                what: "a VMDK sparse extent header",
                needed: HEADER_LEN,
                file_size,
            });
        }
        let head_bytes = head[..HEADER_LEN as usize].to_vec();
        let mut header = Header::parse(&head_bytes)?;
        let mut header_bytes = head_bytes.clone();
        if header.gd_offset == GD_AT_END {
            (header, header_bytes) = Self::footer(file, file_size)?;
        }

        let descriptor = if described_elsewhere && header.descriptor_offset == 0 {
            Descriptor {
                create_type: String::new(),
                cid: String::new(),
                parent: None,
            }
        } else {
            Self::descriptor(file, &header, file_size, described_elsewhere)?
        };
        let virtual_size = header.capacity * SECTOR;
        let gt_count = header.gt_count();
        let gd_sectors = (gt_count * 4).div_ceil(SECTOR);
        let (gd, _) =
            sectors_in_file(header.gd_offset, gd_sectors, file_size).ok_or(header_error(
                "gdOffset",
                header.gd_offset,
                "puts the grain directory past the end of the file (is the file truncated, or \
                 the capacity damaged?)",
            ))?;
        if gd < HEADER_LEN {
            return Err(header_error(
                "gdOffset",
                header.gd_offset,
                "puts the grain directory on the header",
            ));
        }
        let rgd = if header.flags & FLAG_REDUNDANT_GT != 0 {
            let (rgd, _) =
                sectors_in_file(header.rgd_offset, gd_sectors, file_size).ok_or(header_error(
                    "rgdOffset",
                    header.rgd_offset,
                    "puts the redundant grain directory past the end of the file",
                ))?;
            if rgd < HEADER_LEN {
                return Err(header_error(
                    "rgdOffset",
                    header.rgd_offset,
                    "puts the redundant grain directory on the header",
                ));
            }
            Some(rgd)
        } else {
            None
        };
        Ok(Vmdk {
            header,
            head_bytes,
            header_bytes,
            gd,
            rgd,
            descriptor,
            file_size,
            virtual_size,
            has_backing: false,
            gd_cache: RefCell::new(VecDeque::new()),
            gt_cache: RefCell::new(VecDeque::new()),
            grain_cache: RefCell::new(VecDeque::new()),
        })
    }

    /// The footer of a streamOptimized file whose header defers to it: a footer marker, the
    /// header copy with the real `gdOffset`, then the end-of-stream marker.
    fn footer<R: ReadAt>(file: &R, file_size: u64) -> Result<(Header, Vec<u8>), ContainerError> {
        let tail_len = 3 * SECTOR;
        if file_size < HEADER_LEN + tail_len {
            return Err(ContainerError::FileTooSmall {
                what: "a VMDK header, footer and end-of-stream marker",
                needed: HEADER_LEN + tail_len,
                file_size,
            });
        }
        let at = file_size - tail_len;
        let tail = file
            .read_vec(at, tail_len as usize)
            .map_err(|e| ContainerError::read("the VMDK footer", at, e))?;
        let marker_type = le_u32(&tail, 12);
        let eos = &tail[2 * SECTOR as usize..];
        if marker_type != MARKER_FOOTER
            || !tail[SECTOR as usize..].starts_with(MAGIC)
            || eos.iter().any(|&b| b != 0)
        {
            return Err(ContainerError::VmdkFooter { file_offset: at });
        }
        let footer_bytes = tail[SECTOR as usize..2 * SECTOR as usize].to_vec();
        let footer = Header::parse(&footer_bytes)?;
        if footer.gd_offset == GD_AT_END {
            return Err(header_error(
                "gdOffset",
                footer.gd_offset,
                "says \"at the end\" in the footer too, so the grain directory cannot be found",
            ));
        }
        Ok((footer, footer_bytes))
    }

    /// The embedded descriptor. An extent described by a separate file (`described_elsewhere`)
    /// may leave its descriptor area empty (QEMU reserves it and writes nothing) or without a
    /// `createType`; what it does say is still read (a parent refuses it).
    fn descriptor<R: ReadAt>(
        file: &R,
        header: &Header,
        file_size: u64,
        described_elsewhere: bool,
    ) -> Result<Descriptor, ContainerError> {
        if header.descriptor_offset == 0 || header.descriptor_sectors == 0 {
            return Err(ContainerError::VmdkDescriptor {
                problem: "is missing (the header gives it no place): this sparse file is an \
                          extent of a disk described by a separate descriptor file; open that \
                          descriptor's disk with qemu-img instead",
            });
        }
        let (from, to) = sectors_in_file(
            header.descriptor_offset,
            header.descriptor_sectors,
            file_size,
        )
        .filter(|&(from, to)| from >= HEADER_LEN && to - from <= MAX_DESCRIPTOR_BYTES)
        .ok_or(header_error(
            "descriptorOffset",
            header.descriptor_offset,
            "puts the descriptor outside the file, on the header, or makes it larger than 1 MiB",
        ))?;
        let raw = file
            .read_vec(from, (to - from) as usize)
            .map_err(|e| ContainerError::read("the VMDK descriptor", from, e))?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let text =
            std::str::from_utf8(&raw[..end]).map_err(|_| ContainerError::VmdkDescriptor {
                problem: "is not text",
            })?;
        parse_descriptor(text, described_elsewhere)
    }

    pub fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    /// For a child disk, its parent's file name hint (relative to the child's folder) and the
    /// CID the parent had when the child was made.
    pub fn parent(&self) -> Option<(&str, &str)> {
        self.descriptor
            .parent
            .as_ref()
            .map(|(hint, cid)| (hint.as_str(), cid.as_str()))
    }

    /// The disk's content ID, from its descriptor.
    #[cfg(feature = "backing-files")]
    pub fn cid(&self) -> &str {
        &self.descriptor.cid
    }

    /// Reads the grains a child disk does not hold from its parent from now on.
    pub fn read_through_backing(&mut self) {
        self.has_backing = true;
    }

    /// Whether grains are stored compressed (streamOptimized).
    pub fn is_stream(&self) -> bool {
        self.header.compressed()
    }

    pub fn info(&self) -> VmdkInfo {
        VmdkInfo {
            subformat: self.descriptor.create_type.clone(),
            version: self.header.version,
            grain_size: self.header.grain_bytes(),
            grain_tables: self.header.gt_count(),
            cid: self.descriptor.cid.clone(),
            redundant_grain_directory: self.rgd.is_some(),
            compressed: self.header.compressed(),
            unclean_shutdown: self.header.unclean_shutdown,
        }
    }

    /// The grain table entry for `grain`, through the directory at byte offset `gd`: the grain's
    /// sector, 0 (no space) or 1 (zero grain). Returns the entry and where its table is.
    fn gte<R: ReadAt>(&self, file: &R, gd: u64, grain: u64) -> Result<(u32, u64), ContainerError> {
        let entries = u64::from(self.header.gt_entries);
        let table = grain / entries;
        let gd_bytes = self.header.gt_count() * 4;
        let page_start = table * 4 / GD_PAGE_BYTES * GD_PAGE_BYTES;
        let page_len = GD_PAGE_BYTES.min(gd_bytes - page_start);
        let page_at = gd + page_start;
        let page = match cached(&self.gd_cache, page_at) {
            Some(p) => p,
            None => {
                let p: Rc<[u8]> = file
                    .read_vec(page_at, page_len as usize)
                    .map_err(|e| ContainerError::read("the VMDK grain directory", page_at, e))?
                    .into();
                remember(&self.gd_cache, GD_CACHE_PAGES, page_at, Rc::clone(&p));
                p
            }
        };
        let gde_at = (table * 4 - page_start) as usize;
        let gde = le_u32(&page, gde_at);
        if gde == 0 {
            return Ok((0, 0));
        }
        let gt_bytes = entries * 4;
        let (gt_at, _) = sectors_in_file(gde.into(), gt_bytes.div_ceil(SECTOR), self.file_size)
            .filter(|&(at, _)| at >= HEADER_LEN)
            .ok_or(ContainerError::VmdkEntry {
                table: "grain directory",
                entry_offset: page_at + gde_at as u64,
                entry: gde,
                problem: "points on the header or past the end of the file",
            })?;
        let gt = match cached(&self.gt_cache, gt_at) {
            Some(t) => t,
            None => {
                let t: Rc<[u8]> = file
                    .read_vec(gt_at, gt_bytes as usize)
                    .map_err(|e| {
                        ContainerError::read(format!("the VMDK grain table {table}"), gt_at, e)
                    })?
                    .into();
                remember(&self.gt_cache, GT_CACHE_TABLES, gt_at, Rc::clone(&t));
                t
            }
        };
        let at = ((grain % entries) * 4) as usize;
        Ok((le_u32(&gt, at), gt_at + at as u64))
    }

    /// Whether a grain table entry means "no data in the file".
    fn is_empty_entry(&self, gte: u32) -> bool {
        gte == 0 || (gte == GTE_ZERO && self.header.flags & FLAG_ZERO_GRAIN != 0)
    }

    /// Where virtual offset `offset` lives, up to the end of its grain (or, where a whole grain
    /// table is missing, of the range that table would cover).
    pub fn map<R: ReadAt>(&self, file: &R, offset: u64) -> Result<Extent, ContainerError> {
        let size = self.virtual_size;
        if offset >= size {
            return Err(ContainerError::OutOfRange {
                offset,
                virtual_size: size,
            });
        }
        let grain_bytes = self.header.grain_bytes();
        let grain = offset / grain_bytes;
        let in_grain = offset % grain_bytes;
        let limit = (grain_bytes - in_grain).min(size - offset);
        let (gte, gte_at) = self.gte(file, self.gd, grain)?;
        // What a child disk does not hold is its parent's; entry 1 (a grain of zeros) is zeros.
        let not_held = |len| {
            if self.has_backing {
                Extent::Backing { len }
            } else {
                Extent::Zero { len }
            }
        };
        if gte_at == 0 {
            let span = grain_bytes * u64::from(self.header.gt_entries);
            let table_end = (offset / span + 1).saturating_mul(span).min(size);
            return Ok(not_held(table_end - offset));
        }
        if gte == 0 {
            return Ok(not_held(limit));
        }
        if self.is_empty_entry(gte) {
            return Ok(Extent::Zero { len: limit });
        }
        let bad = |problem| ContainerError::VmdkEntry {
            table: "grain table",
            entry_offset: gte_at,
            entry: gte,
            problem,
        };
        let grain_at = u64::from(gte) * SECTOR;
        if grain_at < HEADER_LEN {
            return Err(bad("points on the header"));
        }
        if self.header.compressed() {
            let (stored_at, stored_len) = self.grain_marker(file, grain, grain_at, gte_at, gte)?;
            return Ok(Extent::Compressed {
                file_offset: stored_at,
                stored_len,
                cluster_size: grain_bytes,
                skip: in_grain,
                len: limit,
            });
        }
        // The grain's bytes inside the virtual disk must be in the file.
        let needed = grain_bytes.min(size - grain * grain_bytes);
        if grain_at
            .checked_add(needed)
            .is_none_or(|end| end > self.file_size)
        {
            return Err(bad("points past the end of the file"));
        }
        Ok(Extent::InFile {
            file_offset: grain_at + in_grain,
            len: limit,
        })
    }

    /// Reads the marker in front of a compressed grain: returns where its data starts and how
    /// long it is.
    fn grain_marker<R: ReadAt>(
        &self,
        file: &R,
        grain: u64,
        grain_at: u64,
        gte_at: u64,
        gte: u32,
    ) -> Result<(u64, u64), ContainerError> {
        let bad = |problem| ContainerError::VmdkEntry {
            table: "grain table",
            entry_offset: gte_at,
            entry: gte,
            problem,
        };
        if grain_at + 12 > self.file_size {
            return Err(bad("points past the end of the file"));
        }
        let mut marker = [0u8; 12];
        file.read_at(grain_at, &mut marker)
            .map_err(|e| ContainerError::read("a VMDK grain marker", grain_at, e))?;
        let lba = le_u64(&marker, 0);
        let len = u64::from(le_u32(&marker, 8));
        if lba != grain * self.header.grain_sectors {
            return Err(ContainerError::VmdkCompressedGrain {
                file_offset: grain_at,
                problem: "has a marker naming another grain",
            });
        }
        // zlib never grows data by more than a few bytes per 16 KiB block.
        if len == 0
            || len > self.header.grain_bytes() + 4096
            || grain_at + 12 + len > self.file_size
        {
            return Err(ContainerError::VmdkCompressedGrain {
                file_offset: grain_at,
                problem: "has a marker whose length is zero, too large, or past the end of the \
                          file",
            });
        }
        Ok((grain_at + 12, len))
    }

    /// Inflates the compressed grain whose zlib data is `stored` (read from `file_offset`).
    pub fn inflate(&self, file_offset: u64, stored: &[u8]) -> Result<Rc<[u8]>, ContainerError> {
        if let Some(g) = cached(&self.grain_cache, file_offset) {
            return Ok(g);
        }
        let grain = self.header.grain_bytes() as usize;
        // The last grain may stop where the disk does.
        let last =
            (self.virtual_size - (self.virtual_size - 1) / grain as u64 * grain as u64) as usize;
        let data: Rc<[u8]> = inflate_grain(stored, grain, last)
            .ok_or(ContainerError::VmdkCompressedGrain {
                file_offset: file_offset - 12,
                problem: "does not decompress to a whole grain",
            })?
            .into();
        remember(
            &self.grain_cache,
            GRAIN_CACHE,
            file_offset,
            Rc::clone(&data),
        );
        Ok(data)
    }

    /// The inflated grain at `file_offset`, if it is cached.
    pub fn cached_grain(&self, file_offset: u64) -> Option<Rc<[u8]>> {
        cached(&self.grain_cache, file_offset)
    }

    /// The output for merged, in-range, non-empty patches (sorted, disjoint) and fills: into the
    /// grains the primary tables map, each of which must be mapped the same way by the redundant
    /// tables and lie clear of the image's metadata. A grain with no space in the file (it reads
    /// as zeros) is added after the end of the file, on a sector, as QEMU adds grains: zeros
    /// around the patches, and its entry in both tables pointing there. A grain whose whole grain
    /// table is missing is refused.
    pub fn plan_output<R: ReadAt>(
        &self,
        file: &R,
        backing: Option<&dyn ReadAt>,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<OutputPlan, ContainerError> {
        let grain_bytes = self.header.grain_bytes();
        let new = self.new_grains_in_place(file, merged, fills)?;
        let gd_bytes = self.header.gt_count() * 4;
        let gt_bytes = u64::from(self.header.gt_entries) * 4;
        // Metadata ranges a grain must not overlap: header, descriptor, both directories; the
        // tables of touched grains are added as they are met.
        let mut metadata: Vec<(u64, u64)> = vec![
            (0, HEADER_LEN),
            self.descriptor_span(),
            (self.gd, self.gd + gd_bytes),
        ];
        if let Some(rgd) = self.rgd {
            metadata.push((rgd, rgd + gd_bytes));
        }
        let mut hosts: BTreeSet<(u64, u64)> = BTreeSet::new();
        let mut checked: BTreeSet<u64> = BTreeSet::new();
        let mut writable = |start: u64,
                            end: u64|
         -> Result<Vec<(u64, u64, u64, u64)>, ContainerError> {
            let mut pieces = Vec::new();
            let mut pos = start;
            while pos < end {
                let grain = pos / grain_bytes;
                let piece_end = ((grain + 1) * grain_bytes).min(end);
                if let Some(added) = new.get(&grain) {
                    pieces.push((pos, piece_end, added.at + pos % grain_bytes, grain));
                    pos = piece_end;
                    continue;
                }
                let (gte, gte_at) = self.gte(file, self.gd, grain)?;
                if gte_at == 0 || self.is_empty_entry(gte) {
                    return Err(ContainerError::PatchInUnallocatedVmdkGrain { offset: pos, grain });
                }
                let host = u64::from(gte) * SECTOR;
                if checked.insert(grain) {
                    let gt_at = gte_at - (grain % u64::from(self.header.gt_entries)) * 4;
                    metadata.push((gt_at, gt_at + gt_bytes));
                    if let Some(rgd) = self.rgd {
                        let (copy, copy_at) = self.gte(file, rgd, grain)?;
                        if copy != gte {
                            return Err(ContainerError::VmdkTablesDisagree {
                                grain,
                                primary: gte,
                                redundant: copy,
                            });
                        }
                        let copy_gt = copy_at - (grain % u64::from(self.header.gt_entries)) * 4;
                        metadata.push((copy_gt, copy_gt + gt_bytes));
                    }
                    let host_end = host + grain_bytes.min(self.virtual_size - grain * grain_bytes);
                    if host_end > self.file_size {
                        return Err(ContainerError::VmdkEntry {
                            table: "grain table",
                            entry_offset: gte_at,
                            entry: gte,
                            problem: "points past the end of the file",
                        });
                    }
                    if let Some(&(from, _)) = metadata
                        .iter()
                        .find(|&&(from, to)| host < to && from < host_end)
                    {
                        return Err(ContainerError::VmdkEntry {
                            table: "grain table",
                            entry_offset: gte_at,
                            entry: gte,
                            problem: if from == 0 {
                                "puts a grain on the header"
                            } else {
                                "puts a grain on the image's own descriptor, directory or tables"
                            },
                        });
                    }
                    if hosts.iter().any(|&(from, to)| host < to && from < host_end) {
                        return Err(ContainerError::VmdkEntry {
                            table: "grain table",
                            entry_offset: gte_at,
                            entry: gte,
                            problem: "puts a grain where another grain already is",
                        });
                    }
                    hosts.insert((host, host_end));
                }
                pieces.push((pos, piece_end, host + pos % grain_bytes, grain));
                pos = piece_end;
            }
            Ok(pieces)
        };

        let mut writes = Vec::new();
        for (start, bytes) in merged {
            let end = start + bytes.len() as u64;
            for (from, to, file_offset, grain) in writable(*start, end)? {
                writes.push(FileWrite {
                    file_offset,
                    bytes: bytes[(from - start) as usize..(to - start) as usize].to_vec(),
                    label: FileWriteLabel::VirtualBytes {
                        start: from,
                        end: to,
                        unit: Some(ContainerUnit::VmdkGrain { grain }),
                        how: if new.contains_key(&grain) {
                            WriteHow::NewUnit
                        } else {
                            WriteHow::Bytes
                        },
                    },
                });
            }
        }
        let mut file_fills = Vec::new();
        for &(start, len, byte) in fills {
            for (from, to, file_offset, grain) in writable(start, start + len)? {
                file_fills.push(FileFill {
                    file_offset,
                    len: to - from,
                    byte,
                    label: FileWriteLabel::VirtualBytes {
                        start: from,
                        end: to,
                        unit: Some(ContainerUnit::VmdkGrain { grain }),
                        how: if new.contains_key(&grain) {
                            WriteHow::NewUnit
                        } else {
                            WriteHow::Filled
                        },
                    },
                });
            }
        }
        self.fill_from_backing(backing, &new, merged, fills, &mut writes, &mut file_fills)?;
        let file_size = self.add_grains(&new, &mut writes, &mut file_fills);
        writes.sort_by_key(|w| w.file_offset);
        file_fills.sort_by_key(|f| f.file_offset);
        Ok(OutputPlan {
            writes,
            fills: file_fills,
            file_size,
        })
    }

    /// The grains with no space in the file that the patches and fills touch, each with its new
    /// place after the end of the file (in grain order, from the first whole sector) and where
    /// its entries are in the primary and redundant grain tables. A grain whose table is missing
    /// is refused, and so is one whose two tables disagree.
    fn new_grains_in_place<R: ReadAt>(
        &self,
        file: &R,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<BTreeMap<u64, AddedGrain>, ContainerError> {
        let grain_bytes = self.header.grain_bytes();
        let touched = crate::touched_units(merged, fills, grain_bytes);
        let mut added = BTreeMap::new();
        let mut at = self.file_size.next_multiple_of(SECTOR).max(FIRST_GRAIN_AT);
        for grain in touched {
            let (gte, gte_at) = self.gte(file, self.gd, grain)?;
            if gte_at == 0 {
                return Err(ContainerError::PatchInUnallocatedVmdkGrain {
                    offset: grain * grain_bytes,
                    grain,
                });
            }
            if !self.is_empty_entry(gte) {
                continue;
            }
            let copy_at = match self.rgd {
                Some(rgd) => {
                    let (copy, copy_at) = self.gte(file, rgd, grain)?;
                    if copy != gte || copy_at == 0 {
                        return Err(ContainerError::VmdkTablesDisagree {
                            grain,
                            primary: gte,
                            redundant: copy,
                        });
                    }
                    Some(copy_at)
                }
                None => None,
            };
            let sector = entry_sector(at)?;
            added.insert(
                grain,
                AddedGrain {
                    at,
                    sector,
                    gte_at,
                    copy_at,
                    from_backing: self.has_backing && gte == 0,
                },
            );
            at += grain_bytes;
        }
        Ok(added)
    }

    /// A child disk's grains added at the end hold the parent's bytes: each is written whole,
    /// the parent's grain with the patches and fills laid over it, instead of the pieces.
    fn fill_from_backing(
        &self,
        backing: Option<&dyn ReadAt>,
        added: &BTreeMap<u64, AddedGrain>,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
        writes: &mut Vec<FileWrite>,
        file_fills: &mut Vec<FileFill>,
    ) -> Result<(), ContainerError> {
        let grain_bytes = self.header.grain_bytes();
        for (&grain, g) in added.iter().filter(|(_, g)| g.from_backing) {
            let backing = backing.ok_or(ContainerError::VmdkChild {
                parent: self
                    .parent()
                    .map(|(hint, _)| hint.to_string())
                    .unwrap_or_default(),
            })?;
            let inside = |at: u64| at >= g.at && at < g.at + grain_bytes;
            writes.retain(|w| !inside(w.file_offset));
            file_fills.retain(|f| !inside(f.file_offset));
            let start = grain * grain_bytes;
            let end = (start + grain_bytes).min(self.virtual_size);
            let mut data = vec![0u8; grain_bytes as usize];
            crate::read_backing(backing, start, &mut data[..(end - start) as usize])?;
            crate::lay_over(&mut data, start, end, merged, fills);
            writes.push(FileWrite {
                file_offset: g.at,
                bytes: data,
                label: FileWriteLabel::VirtualBytes {
                    start,
                    end,
                    unit: Some(ContainerUnit::VmdkGrain { grain }),
                    how: WriteHow::FromBacking,
                },
            });
        }
        Ok(())
    }

    /// The rest of the grains added at the end: zeros where no patch lands, their entries in
    /// both tables, and zeros from the old end of the file to the first of them. Returns the new
    /// file size when grains are added.
    fn add_grains(
        &self,
        added: &BTreeMap<u64, AddedGrain>,
        writes: &mut Vec<FileWrite>,
        fills: &mut Vec<FileFill>,
    ) -> Option<u64> {
        let grain_bytes = self.header.grain_bytes();
        let first = added.values().next()?.at;
        if first > self.file_size {
            fills.push(FileFill {
                file_offset: self.file_size,
                len: first - self.file_size,
                byte: 0,
                label: FileWriteLabel::AlignmentPadding,
            });
        }
        let mut end = first;
        for (&grain, g) in added {
            let zeros = crate::zeros_around(
                writes,
                fills,
                (g.at, grain_bytes),
                (grain * grain_bytes, self.virtual_size),
                ContainerUnit::VmdkGrain { grain },
            );
            fills.extend(zeros);
            for entry_at in std::iter::once(g.gte_at).chain(g.copy_at) {
                writes.push(FileWrite {
                    file_offset: entry_at,
                    bytes: g.sector.to_le_bytes().to_vec(),
                    label: FileWriteLabel::UnitTableEntry {
                        unit: ContainerUnit::VmdkGrain { grain },
                    },
                });
            }
            end = g.at + grain_bytes;
        }
        Some(end)
    }
}

/// A grain added after the end of the file: its place, as a table entry, and where its entries
/// are in the primary and redundant grain tables.
struct AddedGrain {
    at: u64,
    sector: u32,
    gte_at: u64,
    copy_at: Option<u64>,
    /// The grain is the parent's (a child disk's grain never written): it is written whole,
    /// filled from the parent.
    from_backing: bool,
}

/// What [`Vmdk::new_grains`] writes: the writes, each grain's new sector, where the last ends.
type NewGrains = (Vec<FileWrite>, Vec<(u64, u32)>, u64);

/// A streamOptimized marker sector: the sector count of what follows, a zero size, the type.
fn marker(sectors: u64, marker_type: u32) -> Vec<u8> {
    let mut m = vec![0u8; SECTOR as usize];
    m[..8].copy_from_slice(&sectors.to_le_bytes());
    m[12..16].copy_from_slice(&marker_type.to_le_bytes());
    m
}

/// Pads `bytes` with zeros to a whole number of sectors.
fn pad_to_sector(bytes: &mut Vec<u8>) {
    bytes.resize(bytes.len().next_multiple_of(SECTOR as usize), 0);
}

/// The sector number of byte offset `at` as a 32-bit table entry, which cannot reach past 2 TiB.
fn entry_sector(at: u64) -> Result<u32, ContainerError> {
    u32::try_from(at / SECTOR).map_err(|_| {
        header_error(
            "gdOffset",
            at / SECTOR,
            "would be past the 2 TiB a 32-bit sector number reaches: the re-streamed image \
             would be too large for its own grain tables",
        )
    })
}

impl Vmdk {
    /// The re-stream of [`Vmdk::plan_stream`] for a stream that ends as the format wants — the
    /// end-of-stream marker, after the footer and its marker when the directory's place is given
    /// there — without reading every grain table: the whole file up to its footer (or marker) is
    /// kept, so nothing any table refers to is dropped; then come a new grain
    /// for each grain a patch touches, a new copy of each grain table that maps one of them, a
    /// new grain directory (pointing at the old tables for the others), the footer and the
    /// end-of-stream marker. What is read is the directory and the tables and grains the patches
    /// touch, however large the disk. The old directory and tables stay in the file, unreferenced
    /// where they were replaced. `None` for a stream that does not end that way (the caller then
    /// re-streams everything after the last grain).
    fn plan_stream_appending<R: ReadAt>(
        &self,
        file: &R,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<Option<(Vec<FileWrite>, u64)>, ContainerError> {
        // The stream's end: an end-of-stream marker (a zero sector), after the footer and its
        // marker when there is one (QEMU writes none: its directory follows the header).
        // A file that is not a whole number of sectors (bytes added by a copy, or a cut) has no
        // sector to append at: a new grain's table entry would name the sector before it (found
        // by fuzzing). The whole re-stream below starts after the last grain, on a sector.
        let tail_len = 3 * SECTOR;
        let Some(tail_at) = self
            .file_size
            .checked_sub(tail_len)
            .filter(|c| *c >= HEADER_LEN && self.file_size.is_multiple_of(SECTOR))
        else {
            return Ok(None);
        };
        let tail = file
            .read_vec(tail_at, tail_len as usize)
            .map_err(|e| ContainerError::read("the end of the VMDK stream", tail_at, e))?;
        if tail[2 * SECTOR as usize..].iter().any(|&b| b != 0) {
            return Ok(None);
        }
        let with_footer = le_u32(&tail, 12) == MARKER_FOOTER
            && le_u64(&tail, 0) == 1
            && tail[SECTOR as usize..].starts_with(MAGIC);
        let cut = if with_footer {
            tail_at
        } else if self.head_bytes == self.header_bytes {
            // No footer: the header holds the directory's place, and the stream ends with the
            // marker alone.
            self.file_size - SECTOR
        } else {
            return Ok(None);
        };
        let grain_bytes = self.header.grain_bytes();
        let entries = u64::from(self.header.gt_entries);
        let gt_count = self.header.gt_count();
        let gt_bytes = entries * 4;
        let gt_sectors = gt_bytes.div_ceil(SECTOR);
        let touched = crate::touched_units(merged, fills, grain_bytes);
        let gd_bytes = gt_count * 4;
        let mut directory = file
            .read_vec(self.gd, gd_bytes as usize)
            .map_err(|e| ContainerError::read("the VMDK grain directory", self.gd, e))?;
        // Tables the new directory keeps pointing at must lie wholly before what is rewritten.
        let kept_before_cut = directory.chunks_exact(4).all(|e| {
            let gde = u64::from(u32::from_le_bytes([e[0], e[1], e[2], e[3]]));
            gde == 0 || sectors_in_file(gde, gt_sectors, cut).is_some()
        });
        if !kept_before_cut {
            return Ok(None);
        }

        let mut writes = Vec::new();
        let mut at = cut;
        let (grain_writes, new_grains, grains_end) =
            self.new_grains(file, &touched, merged, fills, at)?;
        writes.extend(grain_writes);
        at = grains_end;

        // A new copy of each table that maps a new grain; the directory points at it.
        let mut table_bytes = Vec::new();
        let mut written_tables = 0u64;
        let mut next_new = new_grains.iter().peekable();
        while let Some(&&(first_grain, _)) = next_new.peek() {
            let table = first_grain / entries;
            let first = table * entries;
            let gde_at = table * 4;
            let gde = le_u32(&directory, gde_at as usize);
            let mut gt = if gde == 0 {
                vec![0u8; gt_bytes as usize]
            } else {
                let (gt_at, _) = sectors_in_file(gde.into(), gt_sectors, cut)
                    .filter(|&(at, _)| at >= HEADER_LEN)
                    .ok_or(ContainerError::VmdkEntry {
                        table: "grain directory",
                        entry_offset: self.gd + gde_at,
                        entry: gde,
                        problem: "points on the header or past the end of the file",
                    })?;
                file.read_vec(gt_at, gt_bytes as usize).map_err(|e| {
                    ContainerError::read(format!("the VMDK grain table {table}"), gt_at, e)
                })?
            };
            while let Some((grain, sector)) = next_new.next_if(|(g, _)| *g < first + entries) {
                let i = ((grain - first) * 4) as usize;
                gt[i..i + 4].copy_from_slice(&sector.to_le_bytes());
            }
            table_bytes.extend_from_slice(&marker(gt_sectors, MARKER_GRAIN_TABLE));
            let gt_at = at + table_bytes.len() as u64;
            directory[gde_at as usize..gde_at as usize + 4]
                .copy_from_slice(&entry_sector(gt_at)?.to_le_bytes());
            table_bytes.extend_from_slice(&gt);
            pad_to_sector(&mut table_bytes);
            written_tables += 1;
        }
        if !table_bytes.is_empty() {
            let len = table_bytes.len() as u64;
            writes.push(FileWrite {
                file_offset: at,
                bytes: table_bytes,
                label: FileWriteLabel::VmdkStream {
                    part: VmdkStreamPart::GrainTables {
                        count: written_tables,
                    },
                },
            });
            at += len;
        }
        let (directory_and_rest, end) = self.stream_end(at, &directory)?;
        writes.extend(directory_and_rest);
        writes.sort_by_key(|w| w.file_offset);
        Ok(Some((writes, end)))
    }

    /// The output of a fix of a streamOptimized image, in the same format. A stream that ends as
    /// the format wants is extended (see `plan_stream_appending`); any other is re-streamed: the
    /// file's bytes up to the end of its last grain, then for every grain a patch touches a new
    /// compressed grain
    /// holding the whole patched grain, then every grain table (a marker before each) with the
    /// entries of those grains pointing at the new ones, the grain directory (after its marker),
    /// the footer (after its marker) and the end-of-stream marker. The old grains stay in the
    /// file, unreferenced; so do the old tables when they came before the last grain (VMware
    /// interleaves them, QEMU puts them before the grains). The header becomes the footer with
    /// `gdOffset` = `GD_AT_END`, as the stream format wants; it is only rewritten when it differs
    /// (an image written by QEMU keeps its directory after the header and has a redundant copy:
    /// the output has none, so the redundant-tables flag is cleared). The descriptor, and so the
    /// CID, is kept, as for monolithicSparse.
    ///
    /// Returns the writes (sorted, disjoint, every byte from the end of the last kept grain to the
    /// new end of the file covered) and the size of the output file.
    pub fn plan_stream<R: ReadAt>(
        &self,
        file: &R,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<(Vec<FileWrite>, u64), ContainerError> {
        if let Some(appended) = self.plan_stream_appending(file, merged, fills)? {
            return Ok(appended);
        }
        let grain_bytes = self.header.grain_bytes();
        let entries = u64::from(self.header.gt_entries);
        let gt_count = self.header.gt_count();
        let gt_bytes = entries * 4;
        let grains = self.virtual_size.div_ceil(grain_bytes);
        let touched = crate::touched_units(merged, fills, grain_bytes);

        // Every table is read: each is written again. The directory is small (4 bytes per table).
        let gd_bytes = gt_count * 4;
        let directory = file
            .read_vec(self.gd, gd_bytes as usize)
            .map_err(|e| ContainerError::read("the VMDK grain directory", self.gd, e))?;
        let present = directory
            .chunks_exact(4)
            .filter(|e| e.iter().any(|&b| b != 0))
            .count() as u64;
        if present * gt_bytes > MAX_RESTREAM_TABLE_BYTES {
            return Err(ContainerError::VmdkRestreamTooLarge {
                tables: present,
                bytes: present * gt_bytes,
                limit: MAX_RESTREAM_TABLE_BYTES,
            });
        }
        let mut tables: Vec<Option<Vec<u8>>> = Vec::with_capacity(gt_count as usize);
        // The grain stored last in the file: everything after it is metadata, rewritten.
        let mut last: Option<(u64, u32, u64)> = None;
        for table in 0..gt_count {
            let gde_at = table * 4;
            let gde = le_u32(&directory, gde_at as usize);
            if gde == 0 {
                tables.push(None);
                continue;
            }
            let (gt_at, _) = sectors_in_file(gde.into(), gt_bytes.div_ceil(SECTOR), self.file_size)
                .filter(|&(at, _)| at >= HEADER_LEN)
                .ok_or(ContainerError::VmdkEntry {
                    table: "grain directory",
                    entry_offset: self.gd + gde_at,
                    entry: gde,
                    problem: "points on the header or past the end of the file",
                })?;
            let gt = file.read_vec(gt_at, gt_bytes as usize).map_err(|e| {
                ContainerError::read(format!("the VMDK grain table {table}"), gt_at, e)
            })?;
            for i in 0..entries {
                let gte = le_u32(&gt, (i * 4) as usize);
                if self.is_empty_entry(gte) {
                    continue;
                }
                let grain = table * entries + i;
                let bad = |problem| ContainerError::VmdkEntry {
                    table: "grain table",
                    entry_offset: gt_at + i * 4,
                    entry: gte,
                    problem,
                };
                if grain >= grains {
                    return Err(bad("maps a grain past the end of the disk"));
                }
                if u64::from(gte) * SECTOR < HEADER_LEN {
                    return Err(bad("points on the header"));
                }
                if last.is_none_or(|(_, sector, _)| gte > sector) {
                    last = Some((grain, gte, gt_at + i * 4));
                }
            }
            tables.push(Some(gt));
        }
        // Never before sector 2 (`FIRST_GRAIN_AT`): an extent without a descriptor of its own,
        // an overHead of 0 and no grain would otherwise start the re-stream on the header, which
        // is rewritten at offset 0 too (found by the `container` fuzzer: the two writes
        // overlapped and the patch read back as zeros).
        let descriptor_end = self.descriptor_span().1;
        let mut tail_start = descriptor_end
            .max(self.header.overhead.saturating_mul(SECTOR))
            .max(FIRST_GRAIN_AT);
        if let Some((grain, gte, gte_at)) = last {
            let grain_at = u64::from(gte) * SECTOR;
            let (data_at, len) = self.grain_marker(file, grain, grain_at, gte_at, gte)?;
            // Everything after this grain is dropped: its marker's length must be the length
            // of its data, or grain data would be cut (or metadata kept as if it were a grain).
            let stored = file
                .read_vec(data_at, len as usize)
                .map_err(|e| ContainerError::read("a compressed VMDK grain", data_at, e))?;
            let consumed = zlib_stream_len(&stored, grain_bytes as usize).ok_or(
                ContainerError::VmdkCompressedGrain {
                    file_offset: grain_at,
                    problem: "does not decompress to a whole grain within the length its marker \
                              gives",
                },
            )?;
            if len - consumed as u64 >= SECTOR {
                return Err(ContainerError::VmdkCompressedGrain {
                    file_offset: grain_at,
                    problem: "has a marker giving a length a sector or more longer than its data",
                });
            }
            tail_start = tail_start.max((data_at + len).next_multiple_of(SECTOR));
        }
        // What follows must lie in the file, before the footer of a stream that has one.
        let metadata_end = if self.head_bytes != self.header_bytes {
            self.file_size - 3 * SECTOR
        } else {
            self.file_size
        };
        if tail_start > metadata_end {
            return Err(header_error(
                "overHead",
                self.header.overhead,
                "puts the first grain past the end of the file (or on the footer)",
            ));
        }

        let mut writes = Vec::new();
        let mut at = tail_start;
        let (grain_writes, new_grains, grains_end) =
            self.new_grains(file, &touched, merged, fills, at)?;
        writes.extend(grain_writes);
        at = grains_end;

        let gt_sectors = gt_bytes.div_ceil(SECTOR);
        let mut new_directory = vec![0u8; gd_bytes as usize];
        let mut table_bytes = Vec::new();
        let mut written_tables = 0u64;
        let mut next_new = new_grains.iter().peekable();
        for (table, gt) in tables.into_iter().enumerate() {
            let table = table as u64;
            let first = table * entries;
            let has_new = next_new.peek().is_some_and(|(g, _)| *g < first + entries);
            let mut gt = match gt {
                Some(gt) => gt,
                None if has_new => vec![0u8; gt_bytes as usize],
                None => continue,
            };
            while let Some((grain, sector)) = next_new.next_if(|(g, _)| *g < first + entries) {
                let i = ((grain - first) * 4) as usize;
                gt[i..i + 4].copy_from_slice(&sector.to_le_bytes());
            }
            table_bytes.extend_from_slice(&marker(gt_sectors, MARKER_GRAIN_TABLE));
            let gt_at = at + table_bytes.len() as u64;
            new_directory[(table * 4) as usize..(table * 4 + 4) as usize]
                .copy_from_slice(&entry_sector(gt_at)?.to_le_bytes());
            table_bytes.extend_from_slice(&gt);
            pad_to_sector(&mut table_bytes);
            written_tables += 1;
        }
        if !table_bytes.is_empty() {
            let len = table_bytes.len() as u64;
            writes.push(FileWrite {
                file_offset: at,
                bytes: table_bytes,
                label: FileWriteLabel::VmdkStream {
                    part: VmdkStreamPart::GrainTables {
                        count: written_tables,
                    },
                },
            });
            at += len;
        }

        let (directory_and_rest, end) = self.stream_end(at, &new_directory)?;
        writes.extend(directory_and_rest);
        writes.sort_by_key(|w| w.file_offset);
        Ok((writes, end))
    }

    /// A new compressed grain (after its marker) from `at` on for each of `touched`, holding the
    /// whole grain with the patches laid over it. Returns the writes, each grain's new sector and
    /// where the last one ends.
    fn new_grains<R: ReadAt>(
        &self,
        file: &R,
        touched: &BTreeSet<u64>,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
        mut at: u64,
    ) -> Result<NewGrains, ContainerError> {
        let grain_bytes = self.header.grain_bytes();
        let mut writes = Vec::with_capacity(touched.len());
        let mut new_grains: Vec<(u64, u32)> = Vec::with_capacity(touched.len());
        for &grain in touched {
            let start = grain * grain_bytes;
            let end = (start + grain_bytes).min(self.virtual_size);
            let mut data = self.read_grain(file, grain)?;
            crate::lay_over(&mut data, start, end, merged, fills);
            // The whole grain, past the disk's end too (zeros): QEMU wants every grain to
            // inflate to the grain size.
            let deflated = miniz_oxide::deflate::compress_to_vec_zlib(&data, DEFLATE_LEVEL);
            let mut bytes = Vec::with_capacity(GRAIN_MARKER_LEN as usize + deflated.len());
            bytes.extend_from_slice(&(grain * self.header.grain_sectors).to_le_bytes());
            bytes.extend_from_slice(&(deflated.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&deflated);
            pad_to_sector(&mut bytes);
            new_grains.push((grain, entry_sector(at)?));
            let len = bytes.len() as u64;
            writes.push(FileWrite {
                file_offset: at,
                bytes,
                label: FileWriteLabel::VirtualBytes {
                    start,
                    end,
                    unit: Some(ContainerUnit::VmdkGrain { grain }),
                    how: WriteHow::Recompressed,
                },
            });
            at += len;
        }
        Ok((writes, new_grains, at))
    }

    /// The end of a re-stream from `at` on: the grain directory `directory` (after its marker),
    /// the footer (after its marker), the end-of-stream marker, and the header at offset 0 when it
    /// changes. Returns those writes and the end of the file.
    fn stream_end(
        &self,
        mut at: u64,
        directory: &[u8],
    ) -> Result<(Vec<FileWrite>, u64), ContainerError> {
        let mut writes = Vec::new();
        let gd_bytes = directory.len() as u64;
        let mut gd_write = marker(gd_bytes.div_ceil(SECTOR), MARKER_GRAIN_DIRECTORY);
        let gd_sector = entry_sector(at + SECTOR)?;
        gd_write.extend_from_slice(directory);
        pad_to_sector(&mut gd_write);
        let len = gd_write.len() as u64;
        writes.push(FileWrite {
            file_offset: at,
            bytes: gd_write,
            label: FileWriteLabel::VmdkStream {
                part: VmdkStreamPart::GrainDirectory,
            },
        });
        at += len;

        // The footer: the header with the new directory and no redundant one (none is written).
        let mut footer = self.header_bytes.clone();
        let flags = self.header.flags & !FLAG_REDUNDANT_GT;
        footer[8..12].copy_from_slice(&flags.to_le_bytes());
        footer[48..56].copy_from_slice(&0u64.to_le_bytes());
        footer[56..64].copy_from_slice(&u64::from(gd_sector).to_le_bytes());
        let mut new_header = footer.clone();
        new_header[56..64].copy_from_slice(&GD_AT_END.to_le_bytes());
        let mut footer_write = marker(1, MARKER_FOOTER);
        footer_write.extend_from_slice(&footer);
        writes.push(FileWrite {
            file_offset: at,
            bytes: footer_write,
            label: FileWriteLabel::VmdkStream {
                part: VmdkStreamPart::Footer,
            },
        });
        at += 2 * SECTOR;
        writes.push(FileWrite {
            file_offset: at,
            bytes: marker(0, MARKER_END_OF_STREAM),
            label: FileWriteLabel::VmdkStream {
                part: VmdkStreamPart::EndOfStream,
            },
        });
        at += SECTOR;
        if new_header != self.head_bytes {
            writes.insert(
                0,
                FileWrite {
                    file_offset: 0,
                    bytes: new_header,
                    label: FileWriteLabel::VmdkStream {
                        part: VmdkStreamPart::Header,
                    },
                },
            );
        }
        Ok((writes, at))
    }

    /// The file bytes of the embedded descriptor: none when the header gives it no place (an
    /// extent of a disk described by a separate file), whatever its sector count says (found by
    /// fuzzing: a huge count there overflowed).
    fn descriptor_span(&self) -> (u64, u64) {
        if self.header.descriptor_offset == 0 {
            return (0, 0);
        }
        // Checked at open (`sectors_in_file`); saturating all the same.
        let start = self.header.descriptor_offset.saturating_mul(SECTOR);
        let len = self.header.descriptor_sectors.saturating_mul(SECTOR);
        (start, start.saturating_add(len))
    }

    /// The whole of grain `grain` as the disk reads it (zeros past the disk's end).
    fn read_grain<R: ReadAt>(&self, file: &R, grain: u64) -> Result<Vec<u8>, ContainerError> {
        let grain_bytes = self.header.grain_bytes();
        let (gte, gte_at) = self.gte(file, self.gd, grain)?;
        if gte_at == 0 || self.is_empty_entry(gte) {
            return Ok(vec![0u8; grain_bytes as usize]);
        }
        let grain_at = u64::from(gte) * SECTOR;
        if grain_at < HEADER_LEN {
            return Err(ContainerError::VmdkEntry {
                table: "grain table",
                entry_offset: gte_at,
                entry: gte,
                problem: "points on the header",
            });
        }
        let (data_at, len) = self.grain_marker(file, grain, grain_at, gte_at, gte)?;
        let stored = file
            .read_vec(data_at, len as usize)
            .map_err(|e| ContainerError::read("a compressed VMDK grain", data_at, e))?;
        Ok(self.inflate(data_at, &stored)?.to_vec())
    }
}

/// How many bytes of `stored` the zlib stream takes, if it is complete and inflates to no more
/// than `grain` bytes.
fn zlib_stream_len(stored: &[u8], grain: usize) -> Option<usize> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    let mut out = vec![0u8; grain];
    let mut state = Box::<DecompressorOxide>::default();
    let (status, consumed, _) = decompress(
        &mut state,
        stored,
        &mut out,
        0,
        inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
            | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    (status == TINFLStatus::Done).then_some(consumed)
}

/// Inflates zlib data (RFC 1950, as VMware and QEMU write grains) into one grain; the stream must
/// be complete and fill the grain, or at least `last` bytes of it (the disk's last grain may stop
/// where the disk does). What it does not fill reads as zeros.
fn inflate_grain(stored: &[u8], grain: usize, last: usize) -> Option<Vec<u8>> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    let mut out = vec![0u8; grain];
    let mut state = Box::<DecompressorOxide>::default();
    let (status, _, written) = decompress(
        &mut state,
        stored,
        &mut out,
        0,
        inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
            | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    match status {
        TINFLStatus::Done if written == grain || written >= last => Some(out),
        _ => None,
    }
}
