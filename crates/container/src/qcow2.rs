//! QEMU copy-on-write images, qcow2 versions 2 and 3 (OpenStack and KVM exports).
//!
//! Layout, as QEMU's `docs/interop/qcow2.txt` defines it (all integers big-endian):
//! - a header in the first cluster (magic `QFI\xfb`, version, cluster size, virtual size, where the
//!   tables are; version 3 adds feature bits, the refcount width and header extensions);
//! - the **L1 table**, one 8-byte entry per L2 table: bits 9–55 are the L2 table's file offset (0:
//!   the whole range is unallocated), bit 63 says its refcount is exactly one;
//! - **L2 tables**, one cluster each, one entry per guest cluster (16 bytes with extended L2
//!   entries): a *standard* cluster (bits 9–55 its file offset, bit 0 "reads as zeros" in version 3,
//!   bit 63 "refcount exactly one", called COPIED), or a *compressed* one (bit 62: a byte offset and
//!   a count of 512-byte sectors holding raw deflate data that inflates to one cluster);
//! - the **refcount table** and its refcount blocks: how many references each host cluster has. A
//!   cluster shared with an internal snapshot has more than one, and writing it in place would
//!   change the snapshot too.
//!
//! Reading needs only the header and the L1 table at open; L2 tables are read when a guest range
//! is first mapped, and a few are kept. Refcounts are read only when planning output.
//!
//! Writing back: a patch in a standard cluster whose refcount is one (and whose L2 entry says so) is
//! written in place. A patch in an unallocated, zero, compressed or shared cluster stores the whole
//! guest cluster anew at the end of the file, as QEMU's copy-on-write does: the L2 entry (or a new
//! L2 table and its L1 entry), the refcounts (or a new refcount block and its table entry) and the
//! old cluster's references are updated, so `qemu-img check` finds neither leaks nor errors. The
//! header is never written: images that are dirty or marked corrupt are refused, so the output
//! never carries either bit.
//!
//! As in `vhd.rs`, every field from the file is checked before it sizes a read or an allocation,
//! with checked arithmetic, so a crafted file can neither panic nor make us allocate much memory.

use crate::{
    ContainerError, ContainerUnit, Extent, FileFill, FileWrite, FileWriteLabel, OutputPlan,
    Qcow2Part, WriteHow,
};
use kaifuku_io::ReadAt;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

/// The magic at offset 0.
pub(crate) const MAGIC: &[u8; 4] = b"QFI\xfb";
const V2_HEADER_LEN: usize = 72;
const V3_MIN_HEADER_LEN: usize = 104;
/// The spec's minimum (512-byte clusters) and QEMU's implementation limit (2 MiB).
const MIN_CLUSTER_BITS: u32 = 9;
const MAX_CLUSTER_BITS: u32 = 21;
/// Extended L2 entries split a cluster into 32 subclusters, so clusters are at least 16 KiB.
const MIN_EXTENDED_L2_CLUSTER_BITS: u32 = 14;
/// QEMU's limit on the length of a backing file's name.
const MAX_BACKING_NAME: u32 = 1023;
/// QEMU's limits on the tables it loads; larger values only come from damaged headers.
const MAX_L1_BYTES: u64 = 32 << 20;
const MAX_REFCOUNT_TABLE_BYTES: u64 = 8 << 20;
/// Header extensions are read from the first 64 KiB of the file at most (QEMU writes a few hundred
/// bytes of them).
const MAX_HEADER_AREA: u64 = 64 << 10;
/// L2 tables and inflated clusters kept in memory.
const L2_CACHE_TABLES: usize = 8;
const CLUSTER_CACHE: usize = 4;

/// Bits 9–55: a host offset in L1, L2 and refcount table entries.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const COPIED: u64 = 1 << 63;
const COMPRESSED: u64 = 1 << 62;
const ZERO_FLAG: u64 = 1;
/// Reserved bits of an L1 entry (0–8, 56–62).
const L1_RESERVED: u64 = 0x7f00_0000_0000_01ff;
/// Reserved bits of a standard L2 entry (1–8, 56–61); bit 0 is the zero flag.
const L2_RESERVED: u64 = 0x3f00_0000_0000_01fe;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;
const AUTOCLEAR_BITMAPS: u64 = 1 << 0;

const EXT_END: u32 = 0;
const EXT_FEATURE_TABLE: u32 = 0x6803_f857;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_u64(b: &[u8], at: usize) -> u64 {
    (u64::from(be_u32(b, at)) << 32) | u64::from(be_u32(b, at + 4))
}

/// A qcow2 feature kaifuku recognises but does not handle: the image is refused with what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qcow2Feature {
    /// The old qcow format (version 1) or a version after 3.
    Version,
    /// The guest data is encrypted (AES or LUKS).
    Encryption,
    /// The image holds only the changes on top of a backing file.
    BackingFile,
    /// The guest data lives in a separate data file.
    ExternalDataFile,
    /// The dirty bit: QEMU did not close the image, its refcounts may be wrong.
    Dirty,
    /// The corrupt bit: QEMU found the metadata inconsistent and stopped writing.
    MarkedCorrupt,
    /// Compressed clusters use a method other than deflate (zstd).
    CompressionType,
    /// Incompatible feature bits this reader does not know.
    UnknownFeatures,
    /// Persistent dirty bitmaps, which in-place writes would leave stale (output only).
    Bitmaps,
}

/// Why a guest cluster that must be stored anew cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qcow2ClusterKind {
    /// Its L2 table is shared with an internal snapshot (no COPIED flag in the L1 entry):
    /// changing it would change the snapshot too, and kaifuku does not copy tables.
    SharedTable,
    /// The refcount table has no room for the refcount block the new clusters need.
    RefcountTableFull,
}

/// What a qcow2 header and its tables say about the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Qcow2Info {
    /// Format version: 2 (`compat=0.10`) or 3 (`compat=1.1`).
    pub version: u32,
    /// Bytes per cluster.
    pub cluster_size: u64,
    /// Bits per reference count.
    pub refcount_bits: u32,
    /// Whether L2 entries carry subcluster bitmaps (extended L2 entries).
    pub extended_l2: bool,
    /// Internal snapshots the image holds.
    pub snapshots: u32,
    /// L2 tables the active L1 table points at.
    pub l2_tables: u64,
    /// Whether the lazy-refcounts compatible feature is set.
    pub lazy_refcounts: bool,
    /// The backing file the header names (the image holds only what differs from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backing_file: Option<String>,
}

/// One guest cluster, as its L2 entry describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cluster {
    Unallocated,
    /// Reads as zeros; `host` is the cluster kept for it (0: none).
    Zero {
        host: u64,
    },
    /// A standard cluster at `host` (cluster-aligned). `sub_alloc`/`sub_zero`: the subcluster
    /// bitmaps of an extended L2 entry (all allocated otherwise).
    Normal {
        host: u64,
        copied: bool,
        sub_alloc: u32,
        sub_zero: u32,
    },
    /// `stored_len` bytes of raw deflate at `offset` (clamped to the file's end), in `sectors`
    /// 512-byte sectors as the entry counts them from `offset`'s sector.
    Compressed {
        offset: u64,
        stored_len: u64,
        sectors: u64,
    },
}

pub(crate) struct Header {
    version: u32,
    cluster_bits: u32,
    size: u64,
    l1_size: u32,
    l1_offset: u64,
    refcount_table_offset: u64,
    refcount_table_clusters: u32,
    snapshots: u32,
    snapshots_offset: u64,
    compatible: u64,
    autoclear: u64,
    refcount_order: u32,
    extended_l2: bool,
    /// Where the backing file's name is in the header cluster, and its length (0: no backing).
    backing_name: (u64, u32),
}

/// An opened qcow2 image: the active L1 table in memory, a few L2 tables and clusters cached.
pub(crate) struct Qcow2 {
    header: Header,
    file_size: u64,
    /// The backing file's name as the header gives it, when there is one.
    backing_file: Option<String>,
    /// Whether the front end gave the backing file: clusters the image does not hold read from
    /// it. Without it, an image that names one is refused at open.
    has_backing: bool,
    /// L1 entries the virtual size spans.
    l1: Vec<u64>,
    l2_cache: Cache,
    cluster_cache: Cache,
}

/// A few clusters' worth of bytes (L2 tables, inflated clusters) keyed by file offset, oldest
/// first.
type Cache = RefCell<VecDeque<(u64, Rc<[u8]>)>>;

fn header_error(field: &'static str, value: u64, problem: &'static str) -> ContainerError {
    ContainerError::Qcow2Header {
        field,
        value,
        problem,
    }
}

impl Header {
    /// Parses and checks the fixed header fields. `head` is the start of the file.
    fn parse(head: &[u8], file_size: u64) -> Result<Header, ContainerError> {
        if head.len() < V2_HEADER_LEN {
            return Err(ContainerError::FileTooSmall {
                what: "a qcow2 header",
                needed: V2_HEADER_LEN as u64,
                file_size,
            });
        }
        let version = be_u32(head, 4);
        if version != 2 && version != 3 {
            return Err(ContainerError::Qcow2Unsupported(Qcow2Feature::Version));
        }
        let backing_file_offset = be_u64(head, 8);
        let cluster_bits = be_u32(head, 20);
        let size = be_u64(head, 24);
        let crypt_method = be_u32(head, 32);
        let (incompatible, compatible, autoclear, refcount_order, header_len) = if version == 3 {
            if head.len() < V3_MIN_HEADER_LEN {
                return Err(ContainerError::FileTooSmall {
                    what: "a qcow2 version 3 header",
                    needed: V3_MIN_HEADER_LEN as u64,
                    file_size,
                });
            }
            (
                be_u64(head, 72),
                be_u64(head, 80),
                be_u64(head, 88),
                be_u32(head, 96),
                be_u32(head, 100),
            )
        } else {
            (0, 0, 0, 4, V2_HEADER_LEN as u32)
        };

        // Refusals first: they say what to do, whatever else the header holds.
        if crypt_method != 0 {
            return Err(ContainerError::Qcow2Unsupported(Qcow2Feature::Encryption));
        }
        if incompatible & INCOMPAT_CORRUPT != 0 {
            return Err(ContainerError::Qcow2Unsupported(
                Qcow2Feature::MarkedCorrupt,
            ));
        }
        if incompatible & INCOMPAT_DIRTY != 0 {
            return Err(ContainerError::Qcow2Unsupported(Qcow2Feature::Dirty));
        }
        if incompatible & INCOMPAT_DATA_FILE != 0 {
            return Err(ContainerError::Qcow2Unsupported(
                Qcow2Feature::ExternalDataFile,
            ));
        }
        let backing_file_size = be_u32(head, 16);
        if backing_file_offset != 0
            && (backing_file_size == 0
                || backing_file_size > MAX_BACKING_NAME
                || backing_file_offset
                    .checked_add(u64::from(backing_file_size))
                    .is_none_or(|end| {
                        end > (1u64 << cluster_bits.min(MAX_CLUSTER_BITS)).min(MAX_HEADER_AREA)
                    }))
        {
            return Err(header_error(
                "backing_file_offset",
                backing_file_offset,
                "puts the backing file's name outside the first cluster, or gives it no length \
                 or more than 1023 bytes",
            ));
        }
        let known = INCOMPAT_DIRTY
            | INCOMPAT_CORRUPT
            | INCOMPAT_DATA_FILE
            | INCOMPAT_COMPRESSION
            | INCOMPAT_EXTL2;
        if incompatible & !known != 0 {
            return Err(ContainerError::Qcow2Unsupported(
                Qcow2Feature::UnknownFeatures,
            ));
        }
        if version == 3 {
            if (header_len as usize) < V3_MIN_HEADER_LEN || header_len % 8 != 0 {
                return Err(header_error(
                    "header_length",
                    header_len.into(),
                    "must be a multiple of 8 of at least 104",
                ));
            }
            // The compression type (byte 104) is present when the header reaches it.
            let compression_type = if header_len > 104 && head.len() > 104 {
                head[104]
            } else {
                0
            };
            if incompatible & INCOMPAT_COMPRESSION != 0 || compression_type != 0 {
                return Err(ContainerError::Qcow2Unsupported(
                    Qcow2Feature::CompressionType,
                ));
            }
        }
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
            return Err(header_error(
                "cluster_bits",
                cluster_bits.into(),
                "must be from 9 (512-byte clusters) to 21 (2 MiB)",
            ));
        }
        let extended_l2 = incompatible & INCOMPAT_EXTL2 != 0;
        if extended_l2 && cluster_bits < MIN_EXTENDED_L2_CLUSTER_BITS {
            return Err(header_error(
                "cluster_bits",
                cluster_bits.into(),
                "must be at least 14 (16 KiB) with extended L2 entries",
            ));
        }
        if refcount_order > 6 {
            return Err(header_error(
                "refcount_order",
                refcount_order.into(),
                "must be at most 6 (64-bit refcounts)",
            ));
        }
        let cluster = 1u64 << cluster_bits;
        if u64::from(header_len) > cluster {
            return Err(header_error(
                "header_length",
                header_len.into(),
                "is larger than a cluster",
            ));
        }
        let header = Header {
            version,
            cluster_bits,
            size,
            l1_size: be_u32(head, 36),
            l1_offset: be_u64(head, 40),
            refcount_table_offset: be_u64(head, 48),
            refcount_table_clusters: be_u32(head, 56),
            snapshots: be_u32(head, 60),
            snapshots_offset: be_u64(head, 64),
            compatible,
            autoclear,
            refcount_order,
            extended_l2,
            backing_name: if backing_file_offset == 0 {
                (0, 0)
            } else {
                (backing_file_offset, backing_file_size)
            },
        };
        header.check_offsets(file_size)?;
        Ok(header)
    }

    fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Guest clusters one L2 table maps.
    fn l2_entries(&self) -> u64 {
        self.cluster_size() / self.l2_entry_len()
    }

    fn l2_entry_len(&self) -> u64 {
        if self.extended_l2 {
            16
        } else {
            8
        }
    }

    fn refcount_bits(&self) -> u32 {
        1 << self.refcount_order
    }

    /// The tables the header points at must start on a cluster boundary and lie in the file.
    fn check_offsets(&self, file_size: u64) -> Result<(), ContainerError> {
        let cluster = self.cluster_size();
        let check = |field: &'static str, offset: u64, len: u64| {
            if !offset.is_multiple_of(cluster) {
                return Err(header_error(
                    field,
                    offset,
                    "is not aligned to a cluster boundary",
                ));
            }
            match offset.checked_add(len) {
                Some(end) if end <= file_size => Ok(()),
                _ => Err(header_error(
                    field,
                    offset,
                    "puts its table past the end of the file (truncated or damaged)",
                )),
            }
        };
        check(
            "l1_table_offset",
            self.l1_offset,
            u64::from(self.l1_size) * 8,
        )?;
        let rt_len = u64::from(self.refcount_table_clusters) * cluster;
        if rt_len > MAX_REFCOUNT_TABLE_BYTES {
            return Err(header_error(
                "refcount_table_clusters",
                self.refcount_table_clusters.into(),
                "makes a refcount table larger than 8 MiB",
            ));
        }
        if rt_len == 0 {
            return Err(header_error(
                "refcount_table_clusters",
                0,
                "is zero: every image has a refcount table",
            ));
        }
        check("refcount_table_offset", self.refcount_table_offset, rt_len)?;
        if self.snapshots > 0 {
            // 40 bytes is the smallest snapshot table entry.
            check(
                "snapshots_offset",
                self.snapshots_offset,
                u64::from(self.snapshots) * 40,
            )?;
        }
        Ok(())
    }
}

/// Walks the header extensions after the header: each is a type, a length and the data padded to
/// 8 bytes, until type 0. Only their bounds matter to reading; the feature name table names unknown
/// incompatible bits (already refused above), so none changes how the image is read.
fn check_extensions(area: &[u8], start: usize) -> Result<(), ContainerError> {
    let mut at = start;
    loop {
        if at + 8 > area.len() {
            return Err(header_error(
                "header extension",
                at as u64,
                "runs past the end of the header area without an end marker",
            ));
        }
        let kind = be_u32(area, at);
        let len = be_u32(area, at + 4) as usize;
        if kind == EXT_END {
            return Ok(());
        }
        let padded = len.checked_add(7).map(|l| l & !7);
        match padded.and_then(|p| (at + 8).checked_add(p)) {
            Some(next) if next <= area.len() => {
                if kind == EXT_FEATURE_TABLE && !len.is_multiple_of(48) {
                    return Err(header_error(
                        "feature name table",
                        len as u64,
                        "has a length that is not a whole number of 48-byte entries",
                    ));
                }
                at = next;
            }
            _ => {
                return Err(header_error(
                    "header extension",
                    at as u64,
                    "has a length that runs past the first cluster",
                ))
            }
        }
    }
}

impl Qcow2 {
    /// Opens a qcow2 image; `head` holds the file's first bytes (at least what `open` read).
    pub fn open<R: ReadAt>(file: &R, head: &[u8], file_size: u64) -> Result<Qcow2, ContainerError> {
        let header = Header::parse(head, file_size)?;
        let cluster = header.cluster_size();

        // Header extensions live in the first cluster, after the header.
        let area_len = cluster.min(MAX_HEADER_AREA).min(file_size);
        let area = if head.len() as u64 >= area_len {
            head[..area_len as usize].to_vec()
        } else {
            file.read_vec(0, area_len as usize)
                .map_err(|e| ContainerError::read("the qcow2 header extensions", 0, e))?
        };
        let header_len = if header.version == 3 {
            be_u32(&area, 100) as usize
        } else {
            V2_HEADER_LEN
        };
        if header_len > area.len() {
            return Err(ContainerError::FileTooSmall {
                what: "the qcow2 header",
                needed: header_len as u64,
                file_size,
            });
        }
        check_extensions(&area, header_len)?;
        let backing_file = match header.backing_name {
            (_, 0) => None,
            (at, len) => {
                let end = (at + u64::from(len)) as usize;
                let bytes = area.get(at as usize..end).ok_or(header_error(
                    "backing_file_offset",
                    at,
                    "puts the backing file's name past the end of the file",
                ))?;
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
        };

        // The L1 table must cover the virtual size; only the entries it spans are read.
        let span = cluster
            .checked_mul(header.l2_entries())
            .ok_or(header_error(
                "cluster_bits",
                header.cluster_bits.into(),
                "overflows",
            ))?;
        let needed = header.size.div_ceil(span);
        if needed > u64::from(header.l1_size) {
            return Err(header_error(
                "l1_size",
                header.l1_size.into(),
                "is too small for the virtual size",
            ));
        }
        let l1_bytes = needed * 8;
        if u64::from(header.l1_size) * 8 > MAX_L1_BYTES {
            return Err(header_error(
                "l1_size",
                header.l1_size.into(),
                "makes an L1 table larger than 32 MiB",
            ));
        }
        // check_offsets made sure the declared table lies in the file, so this read is bounded
        // by the file as well as by 32 MiB.
        let raw = file
            .read_vec(header.l1_offset, l1_bytes as usize)
            .map_err(|e| ContainerError::read("the qcow2 L1 table", header.l1_offset, e))?;
        let mut l1 = Vec::with_capacity(needed as usize);
        for (i, c) in raw.chunks_exact(8).enumerate() {
            let entry = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            let at = header.l1_offset + i as u64 * 8;
            check_table_entry("L1 table", at, entry, L1_RESERVED, cluster, file_size, true)?;
            l1.push(entry);
        }
        Ok(Qcow2 {
            header,
            file_size,
            backing_file,
            has_backing: false,
            l1,
            l2_cache: RefCell::new(VecDeque::new()),
            cluster_cache: RefCell::new(VecDeque::new()),
        })
    }

    pub fn virtual_size(&self) -> u64 {
        self.header.size
    }

    /// The backing file's name as the header gives it (relative names are relative to the
    /// image's folder, as QEMU reads them).
    pub fn backing_file(&self) -> Option<&str> {
        self.backing_file.as_deref()
    }

    /// Reads what the image does not hold from its backing disk from now on.
    pub fn read_through_backing(&mut self) {
        self.has_backing = true;
    }

    pub fn info(&self) -> Qcow2Info {
        Qcow2Info {
            version: self.header.version,
            cluster_size: self.header.cluster_size(),
            refcount_bits: self.header.refcount_bits(),
            extended_l2: self.header.extended_l2,
            snapshots: self.header.snapshots,
            l2_tables: self.l1.iter().filter(|e| *e & OFFSET_MASK != 0).count() as u64,
            lazy_refcounts: self.header.compatible & 1 != 0,
            backing_file: self.backing_file.clone(),
        }
    }

    /// The L2 table `l1_index` points at, from the cache or the file; `None` when unallocated.
    fn l2_table<R: ReadAt>(
        &self,
        file: &R,
        l1_index: u64,
    ) -> Result<Option<Rc<[u8]>>, ContainerError> {
        let offset = self.l1[l1_index as usize] & OFFSET_MASK;
        if offset == 0 {
            return Ok(None);
        }
        if let Some(t) = cached(&self.l2_cache, offset) {
            return Ok(Some(t));
        }
        let table: Rc<[u8]> = file
            .read_vec(offset, self.header.cluster_size() as usize)
            .map_err(|e| ContainerError::read(format!("the qcow2 L2 table {l1_index}"), offset, e))?
            .into();
        remember(&self.l2_cache, L2_CACHE_TABLES, offset, Rc::clone(&table));
        Ok(Some(table))
    }

    /// What guest cluster `guest` is, from its L2 entry (checked).
    fn cluster<R: ReadAt>(&self, file: &R, guest: u64) -> Result<Cluster, ContainerError> {
        let h = &self.header;
        let l1_index = guest / h.l2_entries();
        let Some(table) = self.l2_table(file, l1_index)? else {
            return Ok(Cluster::Unallocated);
        };
        let at = ((guest % h.l2_entries()) * h.l2_entry_len()) as usize;
        let entry = be_u64(&table, at);
        let entry_offset = (self.l1[l1_index as usize] & OFFSET_MASK) + at as u64;
        if entry & COMPRESSED != 0 {
            // Bits 0..x-1: the byte offset; bits x..61: extra 512-byte sectors.
            let x = 62 - (h.cluster_bits - 8);
            let offset = entry & ((1u64 << x) - 1);
            let sectors = ((entry >> x) & ((1u64 << (h.cluster_bits - 8)) - 1)) + 1;
            if entry & COPIED != 0 || offset >> 56 != 0 {
                return Err(ContainerError::Qcow2Entry {
                    table: "L2 table",
                    entry_offset,
                    entry,
                    problem: "describes a compressed cluster with reserved bits set",
                });
            }
            if offset >= self.file_size {
                return Err(ContainerError::Qcow2Entry {
                    table: "L2 table",
                    entry_offset,
                    entry,
                    problem: "puts a compressed cluster past the end of the file",
                });
            }
            let stored_len = (sectors * 512 - (offset & 511)).min(self.file_size - offset);
            return Ok(Cluster::Compressed {
                offset,
                stored_len,
                sectors,
            });
        }
        let (sub_alloc, sub_zero) = if h.extended_l2 {
            let bitmap = be_u64(&table, at + 8);
            let alloc = bitmap as u32;
            let zero = (bitmap >> 32) as u32;
            if alloc & zero != 0 {
                return Err(ContainerError::Qcow2Entry {
                    table: "L2 table",
                    entry_offset: entry_offset + 8,
                    entry: bitmap,
                    problem: "marks a subcluster both allocated and zero",
                });
            }
            (alloc, zero)
        } else {
            (u32::MAX, 0)
        };
        let zero_flag = !h.extended_l2 && h.version >= 3 && entry & ZERO_FLAG != 0;
        let reserved = if h.extended_l2 || h.version < 3 {
            L2_RESERVED | ZERO_FLAG
        } else {
            L2_RESERVED
        };
        check_table_entry(
            "L2 table",
            entry_offset,
            entry,
            reserved | COMPRESSED,
            h.cluster_size(),
            self.file_size,
            false,
        )?;
        let host = entry & OFFSET_MASK;
        if zero_flag {
            return Ok(Cluster::Zero { host });
        }
        if host == 0 {
            if h.extended_l2 && sub_alloc != 0 {
                return Err(ContainerError::Qcow2Entry {
                    table: "L2 table",
                    entry_offset,
                    entry,
                    problem: "marks subclusters allocated in a cluster with no file offset",
                });
            }
            // Extended L2 entries mark subclusters as reading zeros without any space in the
            // file: those read as zeros, the others are not held (the backing file's).
            if sub_zero != 0 {
                return Ok(Cluster::Normal {
                    host: 0,
                    copied: false,
                    sub_alloc: 0,
                    sub_zero,
                });
            }
            return Ok(Cluster::Unallocated);
        }
        Ok(Cluster::Normal {
            host,
            copied: entry & COPIED != 0,
            sub_alloc,
            sub_zero,
        })
    }

    /// Where virtual offset `offset` lives, up to the end of its cluster (or of the run of
    /// subclusters that share a state).
    pub fn map<R: ReadAt>(&self, file: &R, offset: u64) -> Result<Extent, ContainerError> {
        let size = self.virtual_size();
        if offset >= size {
            return Err(ContainerError::OutOfRange {
                offset,
                virtual_size: size,
            });
        }
        let cluster = self.header.cluster_size();
        let guest = offset / cluster;
        let in_cluster = offset % cluster;
        let limit = (cluster - in_cluster).min(size - offset);
        // What the image does not hold: the backing file's bytes when there is one, else zeros.
        let not_held = |len| {
            if self.has_backing {
                Extent::Backing { len }
            } else {
                Extent::Zero { len }
            }
        };
        Ok(match self.cluster(file, guest)? {
            Cluster::Unallocated => not_held(limit),
            Cluster::Zero { .. } => Extent::Zero { len: limit },
            Cluster::Compressed {
                offset: at,
                stored_len,
                ..
            } => Extent::Compressed {
                file_offset: at,
                stored_len,
                cluster_size: cluster,
                skip: in_cluster,
                len: limit,
            },
            Cluster::Normal {
                host,
                sub_alloc,
                sub_zero,
                ..
            } => {
                let sub = cluster / 32;
                // A subcluster is allocated (0), reads as zeros (1), or is not held (2).
                let state = |s: u32| {
                    if sub_alloc & (1 << s) != 0 {
                        0
                    } else if sub_zero & (1 << s) != 0 {
                        1
                    } else {
                        2
                    }
                };
                let (len, kind) = if sub_alloc == u32::MAX {
                    (limit, 0)
                } else {
                    let first = (in_cluster / sub) as u32;
                    let kind = state(first);
                    let mut s = first + 1;
                    while s < 32 && state(s) == kind {
                        s += 1;
                    }
                    ((u64::from(s) * sub - in_cluster).min(limit), kind)
                };
                if kind == 1 {
                    Extent::Zero { len }
                } else if kind == 2 {
                    not_held(len)
                } else {
                    // A cluster may end past the file's end (the file was not padded): what lies
                    // beyond reads as zeros, as in QEMU.
                    let at = host + in_cluster;
                    if at >= self.file_size {
                        Extent::Zero { len }
                    } else {
                        Extent::InFile {
                            file_offset: at,
                            len: len.min(self.file_size - at),
                        }
                    }
                }
            }
        })
    }

    /// Inflates the compressed cluster whose deflate data is `stored` (read from `file_offset`).
    pub fn inflate(&self, file_offset: u64, stored: &[u8]) -> Result<Rc<[u8]>, ContainerError> {
        if let Some(c) = cached(&self.cluster_cache, file_offset) {
            return Ok(c);
        }
        let data: Rc<[u8]> = inflate_cluster(stored, self.header.cluster_size() as usize)
            .ok_or(ContainerError::Qcow2Compressed { file_offset })?
            .into();
        remember(
            &self.cluster_cache,
            CLUSTER_CACHE,
            file_offset,
            Rc::clone(&data),
        );
        Ok(data)
    }

    /// The inflated cluster at `file_offset`, if it is cached (so it is not read again).
    pub fn cached_cluster(&self, file_offset: u64) -> Option<Rc<[u8]>> {
        cached(&self.cluster_cache, file_offset)
    }

    /// The output for merged, in-range, non-empty patches (sorted, disjoint) and fills.
    ///
    /// A touched guest cluster that is a standard cluster owned once (COPIED in its L2 entry and
    /// refcount one: both are checked, they disagree only in damaged or half-written images),
    /// clear of the image's own metadata, with the touched subclusters allocated, is written in
    /// place. Any other is stored anew, as QEMU's own copy-on-write does: the whole guest cluster
    /// as it reads now, with the patches laid over it, in a new cluster at the end of the file;
    /// its L2 entry points there (a new L2 table when it had none), the new clusters get
    /// refcount one (in a new refcount block when no block covers them), and what the old entry
    /// referred to (a compressed cluster's bytes, a shared cluster, a preallocated zero cluster)
    /// loses one reference, as `qemu-img check` counts them. An L2 table shared with a snapshot,
    /// and a refcount table with no room for the new clusters, are refused.
    pub fn plan_output<R: ReadAt>(
        &self,
        file: &R,
        backing: Option<&dyn ReadAt>,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<OutputPlan, ContainerError> {
        if self.header.autoclear & AUTOCLEAR_BITMAPS != 0 {
            return Err(ContainerError::Qcow2Unsupported(Qcow2Feature::Bitmaps));
        }
        // The spec lets a writer keep unknown auto-clear bits only by clearing them, which would
        // mean writing the header.
        if self.header.autoclear & !AUTOCLEAR_BITMAPS != 0 {
            return Err(ContainerError::Qcow2Unsupported(
                Qcow2Feature::UnknownFeatures,
            ));
        }
        let mut refcounts = Refcounts::new(self, file)?;
        let cluster = self.header.cluster_size();
        // The host clusters holding L2 tables and refcount blocks: never data to write.
        let tables: BTreeSet<u64> = self
            .l1
            .iter()
            .map(|e| e & OFFSET_MASK)
            .chain(refcounts.table.iter().copied())
            .filter(|&at| at != 0)
            .collect();

        // The virtual ranges each touched guest cluster receives.
        let mut touched: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
        let ranges = merged
            .iter()
            .map(|(start, bytes)| (*start, start + bytes.len() as u64))
            .chain(fills.iter().map(|&(start, len, _)| (start, start + len)));
        for (start, end) in ranges {
            for (guest, from, to) in pieces_of(start, end, cluster) {
                touched.entry(guest).or_default().push((from, to));
            }
        }

        // Where each touched guest cluster is written.
        let mut in_place: BTreeMap<u64, u64> = BTreeMap::new();
        let mut relocated: Vec<u64> = Vec::new();
        let mut released: Vec<Release> = Vec::new();
        let mut hosts: BTreeSet<u64> = BTreeSet::new();
        for (&guest, pieces) in &touched {
            let offset = pieces[0].0;
            let damaged = |host_offset, problem| ContainerError::Qcow2Refcount {
                host_offset,
                problem,
            };
            let release = match self.cluster(file, guest)? {
                Cluster::Unallocated => None,
                // Subclusters of zeros with no space in the file: nothing to release.
                Cluster::Normal { host: 0, .. } => None,
                Cluster::Zero { host: 0 } => None,
                Cluster::Zero { host } => Some(Release::Cluster(host)),
                Cluster::Compressed {
                    offset, sectors, ..
                } => Some(Release::Compressed { offset, sectors }),
                Cluster::Normal {
                    host,
                    copied,
                    sub_alloc,
                    ..
                } => {
                    let count = refcounts.get(host)?;
                    if count == 0 {
                        return Err(damaged(host, "is in use by the guest but has refcount 0"));
                    }
                    if copied != (count == 1) {
                        return Err(damaged(
                            host,
                            if copied {
                                "is marked as referenced once (COPIED) but has a refcount above one"
                            } else {
                                "has refcount one but is not marked as referenced once (COPIED)"
                            },
                        ));
                    }
                    let sub = cluster / 32;
                    let all_allocated = pieces.iter().all(|&(from, to)| {
                        (from % cluster / sub..=(to - 1) % cluster / sub)
                            .all(|s| sub_alloc & (1 << s) != 0)
                    });
                    if copied && all_allocated {
                        if !hosts.insert(host) {
                            return Err(damaged(host, "is mapped by two guest clusters"));
                        }
                        self.check_not_metadata(host, &tables)?;
                        let last = pieces.iter().map(|&(_, to)| to).max().unwrap_or(offset);
                        if host + (last - 1) % cluster >= self.file_size {
                            return Err(damaged(
                                host,
                                "ends past the end of the file (a write would grow it)",
                            ));
                        }
                        in_place.insert(guest, host);
                        continue;
                    }
                    Some(Release::Cluster(host))
                }
            };
            // Stored anew: its L2 table must be this image's alone.
            let l1_index = guest / self.header.l2_entries();
            let l1_entry = self.l1[l1_index as usize];
            let table_at = l1_entry & OFFSET_MASK;
            if table_at != 0 {
                if l1_entry & COPIED == 0 {
                    return Err(ContainerError::PatchInQcow2Cluster {
                        offset,
                        cluster: guest,
                        kind: Qcow2ClusterKind::SharedTable,
                    });
                }
                if refcounts.get(table_at)? != 1 {
                    return Err(damaged(
                        table_at,
                        "holds an L2 table marked as referenced once (COPIED) whose refcount is \
                         not one",
                    ));
                }
            }
            relocated.push(guest);
            released.extend(release);
        }

        let mut writes = Vec::new();
        let mut file_fills = Vec::new();
        let label = |from: u64, to: u64, guest: u64, how: WriteHow| FileWriteLabel::VirtualBytes {
            start: from,
            end: to,
            unit: Some(ContainerUnit::Qcow2Cluster { cluster: guest }),
            how,
        };
        for (start, bytes) in merged {
            let end = start + bytes.len() as u64;
            for (guest, from, to) in pieces_of(*start, end, cluster) {
                if let Some(&host) = in_place.get(&guest) {
                    writes.push(FileWrite {
                        file_offset: host + from % cluster,
                        bytes: bytes[(from - start) as usize..(to - start) as usize].to_vec(),
                        label: label(from, to, guest, WriteHow::Bytes),
                    });
                }
            }
        }
        for &(start, len, byte) in fills {
            for (guest, from, to) in pieces_of(start, start + len, cluster) {
                if let Some(&host) = in_place.get(&guest) {
                    file_fills.push(FileFill {
                        file_offset: host + from % cluster,
                        len: to - from,
                        byte,
                        label: label(from, to, guest, WriteHow::Filled),
                    });
                }
            }
        }

        if relocated.is_empty() {
            writes.sort_by_key(|w| w.file_offset);
            file_fills.sort_by_key(|f| f.file_offset);
            return Ok(OutputPlan {
                writes,
                fills: file_fills,
                file_size: None,
            });
        }

        // New clusters go after the file's last byte, on a cluster boundary.
        let first_new = self.file_size.div_ceil(cluster);
        let mut next = first_new;
        let mut new_tables: BTreeMap<u64, (u64, Vec<u8>)> = BTreeMap::new();
        let entry_len = self.header.l2_entry_len();
        for &guest in &relocated {
            let l1_index = guest / self.header.l2_entries();
            if self.l1[l1_index as usize] & OFFSET_MASK == 0 && !new_tables.contains_key(&l1_index)
            {
                let at = refcounts.allocate(&mut next)?;
                new_tables.insert(l1_index, (at, vec![0u8; cluster as usize]));
            }
            let host = refcounts.allocate(&mut next)?;
            let start = guest * cluster;
            let end = (start + cluster).min(self.virtual_size());
            let mut data = self.guest_cluster(file, backing, guest)?;
            crate::lay_over(&mut data, start, end, merged, fills);
            writes.push(FileWrite {
                file_offset: host,
                bytes: data,
                label: label(start, end, guest, WriteHow::Relocated),
            });
            // The new entry: the cluster, referenced once; with extended L2 entries, every
            // subcluster allocated (the whole cluster was written).
            let mut entry = (host | COPIED).to_be_bytes().to_vec();
            if self.header.extended_l2 {
                entry.extend_from_slice(&u64::from(u32::MAX).to_be_bytes());
            }
            let in_table = ((guest % self.header.l2_entries()) * entry_len) as usize;
            match new_tables.get_mut(&l1_index) {
                Some((_, table)) => {
                    table[in_table..in_table + entry.len()].copy_from_slice(&entry);
                }
                None => writes.push(FileWrite {
                    file_offset: (self.l1[l1_index as usize] & OFFSET_MASK) + in_table as u64,
                    bytes: entry,
                    label: FileWriteLabel::Qcow2Metadata {
                        part: Qcow2Part::L2Entry { cluster: guest },
                    },
                }),
            }
        }
        for (l1_index, (at, table)) in new_tables {
            writes.push(FileWrite {
                file_offset: at,
                bytes: table,
                label: FileWriteLabel::Qcow2Metadata {
                    part: Qcow2Part::NewL2Table { index: l1_index },
                },
            });
            writes.push(FileWrite {
                file_offset: self.header.l1_offset + l1_index * 8,
                bytes: (at | COPIED).to_be_bytes().to_vec(),
                label: FileWriteLabel::Qcow2Metadata {
                    part: Qcow2Part::L1Entry { index: l1_index },
                },
            });
        }
        for release in released {
            let (from, to) = match release {
                Release::Cluster(host) => (host, host + cluster),
                // As QEMU frees them: every cluster the compressed bytes touch.
                Release::Compressed { offset, sectors } => {
                    (offset, (offset & !511) + sectors * 512)
                }
            };
            let mut host = from / cluster * cluster;
            while host < to {
                let count = refcounts.get(host)?;
                if count == 0 {
                    return Err(ContainerError::Qcow2Refcount {
                        host_offset: host,
                        problem: "is in use by the guest but has refcount 0",
                    });
                }
                refcounts.set(host, count - 1)?;
                host += cluster;
            }
        }
        self.check_structures_apart(&relocated, &refcounts)?;
        writes.extend(refcounts.writes());
        if self.file_size < first_new * cluster {
            writes.push(FileWrite {
                file_offset: self.file_size,
                bytes: vec![0u8; (first_new * cluster - self.file_size) as usize],
                label: FileWriteLabel::AlignmentPadding,
            });
        }
        writes.sort_by_key(|w| w.file_offset);
        file_fills.sort_by_key(|f| f.file_offset);
        Ok(OutputPlan {
            writes,
            fills: file_fills,
            file_size: Some(next * cluster),
        })
    }

    /// The structures a fix that stores clusters anew writes in place — the L1 table, the
    /// refcount table, the L2 tables of the clusters stored anew and the refcount blocks that
    /// change — must each be where no other of them (nor the header) is: in a damaged image two
    /// of them can share bytes, and a write to one would change the other.
    fn check_structures_apart<R: ReadAt>(
        &self,
        relocated: &[u64],
        refcounts: &Refcounts<'_, R>,
    ) -> Result<(), ContainerError> {
        let h = &self.header;
        let cluster = h.cluster_size();
        let mut ranges: BTreeSet<(u64, u64)> = BTreeSet::new();
        ranges.insert((0, cluster));
        ranges.insert((h.l1_offset, h.l1_offset + u64::from(h.l1_size) * 8));
        ranges.insert((
            h.refcount_table_offset,
            h.refcount_table_offset + u64::from(h.refcount_table_clusters) * cluster,
        ));
        let l2_tables: BTreeSet<u64> = relocated
            .iter()
            .map(|guest| self.l1[(guest / h.l2_entries()) as usize] & OFFSET_MASK)
            .filter(|&at| at != 0)
            .collect();
        let structures = l2_tables
            .iter()
            .chain(refcounts.changed.keys())
            .map(|&at| (at, at + cluster));
        let mut count = ranges.len();
        for range in structures {
            ranges.insert(range);
            count += 1;
        }
        let sorted: Vec<(u64, u64)> = ranges.iter().copied().collect();
        let overlap = sorted.windows(2).find(|pair| pair[1].0 < pair[0].1);
        if let Some(pair) = overlap {
            return Err(ContainerError::Qcow2Refcount {
                host_offset: pair[1].0,
                problem: "holds two of the image's own structures at once (the header, the L1 \
                          or refcount table, an L2 table or a refcount block)",
            });
        }
        if sorted.len() != count {
            // Two structures at the very same place (an L2 table that is also a refcount block).
            return Err(ContainerError::Qcow2Refcount {
                host_offset: 0,
                problem: "is where two of the image's own structures both claim to be",
            });
        }
        Ok(())
    }

    /// The whole of guest cluster `guest` as the disk reads it (zeros past the disk's end and
    /// where nothing is stored; the backing disk's bytes where the image holds none).
    fn guest_cluster<R: ReadAt>(
        &self,
        file: &R,
        backing: Option<&dyn ReadAt>,
        guest: u64,
    ) -> Result<Vec<u8>, ContainerError> {
        let cluster = self.header.cluster_size();
        let start = guest * cluster;
        let end = (start + cluster).min(self.virtual_size());
        let mut data = vec![0u8; cluster as usize];
        let mut pos = start;
        while pos < end {
            let extent = self.map(file, pos)?;
            let len = extent.len();
            let into = &mut data[(pos - start) as usize..(pos - start + len) as usize];
            match extent {
                Extent::Zero { .. } => {}
                Extent::Backing { .. } => {
                    let backing = backing
                        .ok_or(ContainerError::Qcow2Unsupported(Qcow2Feature::BackingFile))?;
                    crate::read_backing(backing, pos, into)?;
                }
                Extent::InFile { file_offset, .. } => file
                    .read_at(file_offset, into)
                    .map_err(|e| ContainerError::read("a qcow2 cluster", file_offset, e))?,
                Extent::Compressed {
                    file_offset,
                    stored_len,
                    skip,
                    ..
                } => {
                    let inflated = match self.cached_cluster(file_offset) {
                        Some(c) => c,
                        None => {
                            let stored =
                                file.read_vec(file_offset, stored_len as usize)
                                    .map_err(|e| {
                                        ContainerError::read(
                                            "a compressed qcow2 cluster",
                                            file_offset,
                                            e,
                                        )
                                    })?;
                            self.inflate(file_offset, &stored)?
                        }
                    };
                    into.copy_from_slice(&inflated[skip as usize..(skip + len) as usize]);
                }
            }
            pos += len;
        }
        Ok(data)
    }

    /// A data cluster written in place must not be one of the image's own structures: with
    /// consistent refcounts it cannot be, but a damaged L2 entry could point anywhere.
    fn check_not_metadata(&self, host: u64, tables: &BTreeSet<u64>) -> Result<(), ContainerError> {
        let h = &self.header;
        let cluster = h.cluster_size();
        let overlaps =
            |start: u64, len: u64| host < start.saturating_add(len) && start < host + cluster;
        let what = if host < cluster {
            Some("the header")
        } else if overlaps(h.l1_offset, u64::from(h.l1_size) * 8) {
            Some("the L1 table")
        } else if overlaps(
            h.refcount_table_offset,
            u64::from(h.refcount_table_clusters) * cluster,
        ) {
            Some("the refcount table")
        } else if h.snapshots > 0 && overlaps(h.snapshots_offset, u64::from(h.snapshots) * 40) {
            Some("the snapshot table")
        } else if tables.contains(&host) {
            Some("an L2 table or a refcount block")
        } else {
            None
        };
        match what {
            Some(what) => Err(ContainerError::Qcow2Overlap {
                host_offset: host,
                what,
            }),
            None => Ok(()),
        }
    }
}

/// Checks a table entry's host offset: reserved bits clear, aligned, inside the file.
fn check_table_entry(
    table: &'static str,
    entry_offset: u64,
    entry: u64,
    reserved: u64,
    cluster: u64,
    file_size: u64,
    whole_cluster: bool,
) -> Result<(), ContainerError> {
    let problem = if entry & reserved != 0 {
        Some("sets reserved bits")
    } else {
        let host = entry & OFFSET_MASK;
        if !host.is_multiple_of(cluster) {
            Some("points at an offset that is not aligned to a cluster boundary")
        } else if host != 0 && host >= file_size
            || whole_cluster && host != 0 && host + cluster > file_size
        {
            Some("points past the end of the file (truncated or damaged)")
        } else {
            None
        }
    };
    match problem {
        Some(problem) => Err(ContainerError::Qcow2Entry {
            table,
            entry_offset,
            entry,
            problem,
        }),
        None => Ok(()),
    }
}

/// Refcounts read (and changed) for one output plan: the refcount table entries asked for, and
/// the blocks.
struct Refcounts<'a, R> {
    image: &'a Qcow2,
    file: &'a R,
    /// The table's first entries (those the file spans, and more as new clusters need them).
    table: Vec<u64>,
    /// How many entries the table has room for.
    capacity: u64,
    /// Blocks read or made, by file offset.
    blocks: BTreeMap<u64, Vec<u8>>,
    /// Bytes changed in blocks read from the file, and how many counts each change holds.
    changed: BTreeMap<u64, BTreeMap<usize, u64>>,
    /// New blocks, by table index.
    new_blocks: BTreeMap<u64, u64>,
}

impl<'a, R: ReadAt> Refcounts<'a, R> {
    fn new(image: &'a Qcow2, file: &'a R) -> Result<Self, ContainerError> {
        let h = &image.header;
        let cluster = h.cluster_size();
        let capacity = u64::from(h.refcount_table_clusters) * cluster / 8;
        let mut refcounts = Refcounts {
            image,
            file,
            table: Vec::new(),
            capacity,
            blocks: BTreeMap::new(),
            changed: BTreeMap::new(),
            new_blocks: BTreeMap::new(),
        };
        // The entries that cover the file: the rest describe clusters the file does not have.
        let spans = image
            .file_size
            .div_ceil(cluster)
            .div_ceil(refcounts.per_block());
        if let Some(last) = spans.min(capacity).checked_sub(1) {
            refcounts.entry(last)?;
        }
        Ok(refcounts)
    }

    fn per_block(&self) -> u64 {
        self.image.header.cluster_size() * 8 / u64::from(self.image.header.refcount_bits())
    }

    /// Refcount table entry `index` (read when first asked for); `None` past the table's room.
    fn entry(&mut self, index: u64) -> Result<Option<u64>, ContainerError> {
        if index >= self.capacity {
            return Ok(None);
        }
        let h = &self.image.header;
        let have = self.table.len() as u64;
        if index >= have {
            let from = h.refcount_table_offset + have * 8;
            let raw = self
                .file
                .read_vec(from, ((index + 1 - have) * 8) as usize)
                .map_err(|e| ContainerError::read("the qcow2 refcount table", from, e))?;
            for (i, c) in raw.chunks_exact(8).enumerate() {
                let entry = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
                check_table_entry(
                    "refcount table",
                    from + i as u64 * 8,
                    entry,
                    !OFFSET_MASK,
                    h.cluster_size(),
                    self.image.file_size,
                    true,
                )?;
                self.table.push(entry);
            }
        }
        Ok(Some(self.table[index as usize]))
    }

    /// The block holding the refcount of the cluster at `host`, read when first asked for, and
    /// the entry's index in it; `None` when no block covers it (refcount 0).
    fn block(&mut self, host: u64) -> Result<Option<(u64, u64)>, ContainerError> {
        let cluster = self.image.header.cluster_size();
        let index = host / cluster;
        let per_block = self.per_block();
        let block = match self.entry(index / per_block)? {
            None | Some(0) => return Ok(None),
            Some(block) => block,
        };
        if !self.blocks.contains_key(&block) {
            let raw = self
                .file
                .read_vec(block, cluster as usize)
                .map_err(|e| ContainerError::read("a qcow2 refcount block", block, e))?;
            self.blocks.insert(block, raw);
        }
        Ok(Some((block, index % per_block)))
    }

    /// The refcount of the host cluster at `host`.
    fn get(&mut self, host: u64) -> Result<u64, ContainerError> {
        let Some((block, i)) = self.block(host)? else {
            return Ok(0);
        };
        let bits = u64::from(self.image.header.refcount_bits());
        let raw = &self.blocks[&block];
        Ok(if bits >= 8 {
            let width = (bits / 8) as usize;
            let at = i as usize * width;
            raw[at..at + width]
                .iter()
                .fold(0u64, |v, b| (v << 8) | u64::from(*b))
        } else {
            // Sub-byte widths: bit 0 is the least significant bit of the byte.
            let bit = i * bits;
            (u64::from(raw[(bit / 8) as usize]) >> (bit % 8)) & ((1 << bits) - 1)
        })
    }

    /// Sets the refcount of the host cluster at `host`, which a block covers, to `value` (which
    /// fits: only 1 and decrements are set).
    fn set(&mut self, host: u64, value: u64) -> Result<(), ContainerError> {
        let Some((block, i)) = self.block(host)? else {
            return Err(ContainerError::Qcow2Refcount {
                host_offset: host,
                problem: "has no refcount block to count it in",
            });
        };
        let bits = u64::from(self.image.header.refcount_bits());
        let is_new = self.new_blocks.values().any(|&b| b == block);
        let raw = self.blocks.get_mut(&block).expect("read by block()");
        // The bytes the entry occupies (a sub-byte entry shares its byte with others).
        let (first, len) = if bits >= 8 {
            let width = (bits / 8) as usize;
            let at = i as usize * width;
            let bytes = value.to_be_bytes();
            raw[at..at + width].copy_from_slice(&bytes[8 - width..]);
            (at, width)
        } else {
            let bit = i * bits;
            let byte = (bit / 8) as usize;
            let mask = (((1u16 << bits) - 1) << (bit % 8)) as u8;
            raw[byte] = (raw[byte] & !mask) | (((value as u8) << (bit % 8)) & mask);
            (byte, 1)
        };
        if !is_new {
            let changed = self.changed.entry(block).or_default();
            *changed.entry(first).or_default() += 1;
            for at in first + 1..first + len {
                changed.entry(at).or_default();
            }
        }
        Ok(())
    }

    /// Takes the next cluster from `next` (a cluster index past the file's end) into use with
    /// refcount one, making a refcount block first where none covers it (the block then counts
    /// itself). Returns the cluster's file offset.
    fn allocate(&mut self, next: &mut u64) -> Result<u64, ContainerError> {
        let cluster = self.image.header.cluster_size();
        loop {
            let host = *next * cluster;
            let index = *next / self.per_block();
            *next += 1;
            match self.entry(index)? {
                None => {
                    return Err(ContainerError::PatchInQcow2Cluster {
                        offset: host,
                        cluster: host / cluster,
                        kind: Qcow2ClusterKind::RefcountTableFull,
                    })
                }
                Some(0) => {
                    self.table[index as usize] = host;
                    self.new_blocks.insert(index, host);
                    self.blocks.insert(host, vec![0u8; cluster as usize]);
                    self.set(host, 1)?;
                }
                Some(_) => {
                    if self.get(host)? != 0 {
                        return Err(ContainerError::Qcow2Refcount {
                            host_offset: host,
                            problem: "lies past the end of the file but has a refcount",
                        });
                    }
                    self.set(host, 1)?;
                    return Ok(host);
                }
            }
        }
    }

    /// The writes of every change: runs of changed bytes in the blocks read from the file, the
    /// new blocks whole, and the table entries pointing at them.
    fn writes(&self) -> Vec<FileWrite> {
        let mut writes = Vec::new();
        for (&block, bytes) in &self.changed {
            let mut run: Option<(usize, usize, u64)> = None;
            let flush = |run: (usize, usize, u64), writes: &mut Vec<FileWrite>| {
                writes.push(FileWrite {
                    file_offset: block + run.0 as u64,
                    bytes: self.blocks[&block][run.0..run.1].to_vec(),
                    label: FileWriteLabel::Qcow2Metadata {
                        part: Qcow2Part::RefcountBlock { count: run.2 },
                    },
                });
            };
            for (&at, &count) in bytes {
                run = match run {
                    Some((from, to, n)) if to == at => Some((from, at + 1, n + count)),
                    Some(done) => {
                        flush(done, &mut writes);
                        Some((at, at + 1, count))
                    }
                    None => Some((at, at + 1, count)),
                };
            }
            if let Some(done) = run {
                flush(done, &mut writes);
            }
        }
        let h = &self.image.header;
        for (&index, &block) in &self.new_blocks {
            writes.push(FileWrite {
                file_offset: block,
                bytes: self.blocks[&block].clone(),
                label: FileWriteLabel::Qcow2Metadata {
                    part: Qcow2Part::NewRefcountBlock { index },
                },
            });
            writes.push(FileWrite {
                file_offset: h.refcount_table_offset + index * 8,
                bytes: block.to_be_bytes().to_vec(),
                label: FileWriteLabel::Qcow2Metadata {
                    part: Qcow2Part::RefcountTableEntry { index },
                },
            });
        }
        writes
    }
}

/// What a cluster stored anew referred to before: it loses that reference.
enum Release {
    /// A standard cluster (shared with a snapshot, partly allocated, or a preallocated zero
    /// cluster).
    Cluster(u64),
    /// The bytes of a compressed cluster: `sectors` 512-byte sectors from `offset`'s sector.
    Compressed { offset: u64, sectors: u64 },
}

/// The pieces of virtual range `start..end` in each cluster: (guest cluster, from, to).
fn pieces_of(start: u64, end: u64, cluster: u64) -> impl Iterator<Item = (u64, u64, u64)> {
    let mut pos = start;
    std::iter::from_fn(move || {
        (pos < end).then(|| {
            let guest = pos / cluster;
            let to = ((guest + 1) * cluster).min(end);
            let piece = (guest, pos, to);
            pos = to;
            piece
        })
    })
}

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

/// Inflates raw deflate data (no zlib header) into exactly one cluster. Like QEMU, the stream may
/// go on past the cluster (it is cut there) but must not end before it.
fn inflate_cluster(stored: &[u8], cluster: usize) -> Option<Vec<u8>> {
    use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
    use miniz_oxide::inflate::TINFLStatus;
    let mut out = vec![0u8; cluster];
    let mut state = Box::<DecompressorOxide>::default();
    let (status, _, written) = decompress(
        &mut state,
        stored,
        &mut out,
        0,
        inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    match status {
        TINFLStatus::Done | TINFLStatus::HasMoreOutput if written == cluster => Some(out),
        _ => None,
    }
}
