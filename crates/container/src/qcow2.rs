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
//! Writing back is in place only: a patch may land in a standard cluster whose refcount is one (and
//! whose L2 entry says so). A patch in an unallocated, zero, compressed or shared cluster would need
//! new clusters and refcount updates; it is refused with the conversion that avoids it. The header
//! is never written: images that are dirty or marked corrupt are refused, so the output never
//! carries either bit.
//!
//! As in `vhd.rs`, every field from the file is checked before it sizes a read or an allocation,
//! with checked arithmetic, so a crafted file can neither panic nor make us allocate much memory.

use crate::{ContainerError, ContainerUnit, Extent, FileFill, FileWrite, FileWriteLabel, WriteHow};
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

/// What kind of guest cluster a patch landed in, when it cannot be written in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qcow2ClusterKind {
    /// No space in the file (reads as zeros).
    Unallocated,
    /// Marked "reads as zeros" in its L2 entry.
    Zero,
    /// Stored compressed.
    Compressed,
    /// Shared with an internal snapshot (refcount above one, or no COPIED flag).
    Shared,
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
}

/// One guest cluster, as its L2 entry describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cluster {
    Unallocated,
    Zero,
    /// A standard cluster at `host` (cluster-aligned). `sub_alloc`/`sub_zero`: the subcluster
    /// bitmaps of an extended L2 entry (all allocated otherwise).
    Normal {
        host: u64,
        copied: bool,
        sub_alloc: u32,
        sub_zero: u32,
    },
    /// `stored_len` bytes of raw deflate at `offset` (clamped to the file's end).
    Compressed {
        offset: u64,
        stored_len: u64,
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
}

/// An opened qcow2 image: the active L1 table in memory, a few L2 tables and clusters cached.
pub(crate) struct Qcow2 {
    header: Header,
    file_size: u64,
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
        if backing_file_offset != 0 {
            return Err(ContainerError::Qcow2Unsupported(Qcow2Feature::BackingFile));
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
            l1,
            l2_cache: RefCell::new(VecDeque::new()),
            cluster_cache: RefCell::new(VecDeque::new()),
        })
    }

    pub fn virtual_size(&self) -> u64 {
        self.header.size
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
            return Ok(Cluster::Compressed { offset, stored_len });
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
            return Ok(Cluster::Zero);
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
        Ok(match self.cluster(file, guest)? {
            Cluster::Unallocated | Cluster::Zero => Extent::Zero { len: limit },
            Cluster::Compressed {
                offset: at,
                stored_len,
            } => Extent::Compressed {
                file_offset: at,
                stored_len,
                cluster_size: cluster,
                skip: in_cluster,
                len: limit,
            },
            Cluster::Normal {
                host, sub_alloc, ..
            } => {
                let sub = cluster / 32;
                let (len, allocated) = if sub_alloc == u32::MAX {
                    (limit, true)
                } else {
                    let first = (in_cluster / sub) as u32;
                    let allocated = sub_alloc & (1 << first) != 0;
                    let mut s = first + 1;
                    while s < 32 && (sub_alloc & (1 << s) != 0) == allocated {
                        s += 1;
                    }
                    ((u64::from(s) * sub - in_cluster).min(limit), allocated)
                };
                if !allocated {
                    Extent::Zero { len }
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

    /// File writes for merged, in-range, non-empty patches (sorted, disjoint) and fills.
    ///
    /// Every touched cluster must be a standard cluster owned once: COPIED in its L2 entry and
    /// refcount one in the refcount table (both are checked: they disagree only in damaged or
    /// half-written images), clear of the image's own metadata, and for extended L2 entries the
    /// touched subclusters allocated.
    pub fn plan_writes<R: ReadAt>(
        &self,
        file: &R,
        merged: &[(u64, Vec<u8>)],
        fills: &[(u64, u64, u8)],
    ) -> Result<(Vec<FileWrite>, Vec<FileFill>), ContainerError> {
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
        // Guest clusters touched, and their host clusters (two guests on one host is damage).
        let mut guests: BTreeSet<u64> = BTreeSet::new();
        let mut hosts: BTreeSet<u64> = BTreeSet::new();
        let mut writable = |start: u64,
                            end: u64|
         -> Result<Vec<(u64, u64, u64, u64)>, ContainerError> {
            // (virtual start, virtual end, file offset, guest cluster) per cluster piece.
            let mut pieces = Vec::new();
            let mut pos = start;
            while pos < end {
                let guest = pos / cluster;
                let piece_end = ((guest + 1) * cluster).min(end);
                let refuse = |kind| ContainerError::PatchInQcow2Cluster {
                    offset: pos,
                    cluster: guest,
                    kind,
                };
                let host = match self.cluster(file, guest)? {
                    Cluster::Unallocated => return Err(refuse(Qcow2ClusterKind::Unallocated)),
                    Cluster::Zero => return Err(refuse(Qcow2ClusterKind::Zero)),
                    Cluster::Compressed { .. } => return Err(refuse(Qcow2ClusterKind::Compressed)),
                    Cluster::Normal {
                        host,
                        copied,
                        sub_alloc,
                        sub_zero,
                    } => {
                        let sub = cluster / 32;
                        let first = (pos % cluster) / sub;
                        let last = (piece_end - 1) % cluster / sub;
                        for s in first..=last {
                            if sub_alloc & (1 << s) == 0 {
                                return Err(refuse(if sub_zero & (1 << s) != 0 {
                                    Qcow2ClusterKind::Zero
                                } else {
                                    Qcow2ClusterKind::Unallocated
                                }));
                            }
                        }
                        if !copied {
                            return Err(refuse(Qcow2ClusterKind::Shared));
                        }
                        host
                    }
                };
                if !guests.contains(&guest) {
                    let count = refcounts.get(host)?;
                    if count == 0 {
                        return Err(ContainerError::Qcow2Refcount {
                            host_offset: host,
                            problem: "is in use by the guest but has refcount 0",
                        });
                    }
                    if count > 1 {
                        return Err(refuse(Qcow2ClusterKind::Shared));
                    }
                    if hosts.contains(&host) {
                        return Err(ContainerError::Qcow2Refcount {
                            host_offset: host,
                            problem: "is mapped by two guest clusters",
                        });
                    }
                    self.check_not_metadata(host, &tables)?;
                    if host + (piece_end - 1) % cluster >= self.file_size {
                        return Err(ContainerError::Qcow2Refcount {
                            host_offset: host,
                            problem: "ends past the end of the file (a write would grow it)",
                        });
                    }
                    guests.insert(guest);
                    hosts.insert(host);
                }
                pieces.push((pos, piece_end, host + pos % cluster, guest));
                pos = piece_end;
            }
            Ok(pieces)
        };

        let mut writes = Vec::new();
        for (start, bytes) in merged {
            let end = start + bytes.len() as u64;
            for (from, to, file_offset, guest) in writable(*start, end)? {
                writes.push(FileWrite {
                    file_offset,
                    bytes: bytes[(from - start) as usize..(to - start) as usize].to_vec(),
                    label: FileWriteLabel::VirtualBytes {
                        start: from,
                        end: to,
                        unit: Some(ContainerUnit::Qcow2Cluster { cluster: guest }),
                        how: WriteHow::Bytes,
                    },
                });
            }
        }
        let mut file_fills = Vec::new();
        for &(start, len, byte) in fills {
            for (from, to, file_offset, guest) in writable(start, start + len)? {
                file_fills.push(FileFill {
                    file_offset,
                    len: to - from,
                    byte,
                    label: FileWriteLabel::VirtualBytes {
                        start: from,
                        end: to,
                        unit: Some(ContainerUnit::Qcow2Cluster { cluster: guest }),
                        how: WriteHow::Filled,
                    },
                });
            }
        }
        writes.sort_by_key(|w| w.file_offset);
        file_fills.sort_by_key(|f| f.file_offset);
        Ok((writes, file_fills))
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

/// Refcounts read for one output plan: the refcount table entries the file spans, and the blocks
/// asked for.
struct Refcounts<'a, R> {
    image: &'a Qcow2,
    file: &'a R,
    table: Vec<u64>,
    blocks: BTreeMap<u64, Vec<u8>>,
}

impl<'a, R: ReadAt> Refcounts<'a, R> {
    fn new(image: &'a Qcow2, file: &'a R) -> Result<Self, ContainerError> {
        let h = &image.header;
        let cluster = h.cluster_size();
        let per_block = cluster * 8 / u64::from(h.refcount_bits());
        // Only the entries that cover the file: the rest describe clusters the file does not have.
        let declared = u64::from(h.refcount_table_clusters) * cluster / 8;
        let spans = image.file_size.div_ceil(cluster).div_ceil(per_block);
        let entries = declared.min(spans);
        let raw = file
            .read_vec(h.refcount_table_offset, (entries * 8) as usize)
            .map_err(|e| {
                ContainerError::read("the qcow2 refcount table", h.refcount_table_offset, e)
            })?;
        let mut table = Vec::with_capacity(entries as usize);
        for (i, c) in raw.chunks_exact(8).enumerate() {
            let entry = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            check_table_entry(
                "refcount table",
                h.refcount_table_offset + i as u64 * 8,
                entry,
                !OFFSET_MASK,
                cluster,
                image.file_size,
                true,
            )?;
            table.push(entry);
        }
        Ok(Refcounts {
            image,
            file,
            table,
            blocks: BTreeMap::new(),
        })
    }

    /// The refcount of the host cluster at `host`.
    fn get(&mut self, host: u64) -> Result<u64, ContainerError> {
        let h = &self.image.header;
        let cluster = h.cluster_size();
        let bits = u64::from(h.refcount_bits());
        let per_block = cluster * 8 / bits;
        let index = host / cluster;
        let Some(&block) = self.table.get((index / per_block) as usize) else {
            return Ok(0);
        };
        if block == 0 {
            return Ok(0);
        }
        if !self.blocks.contains_key(&block) {
            let raw = self
                .file
                .read_vec(block, cluster as usize)
                .map_err(|e| ContainerError::read("a qcow2 refcount block", block, e))?;
            self.blocks.insert(block, raw);
        }
        let raw = &self.blocks[&block];
        let i = index % per_block;
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
