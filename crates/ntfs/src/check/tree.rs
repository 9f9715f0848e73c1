//! Stage 2 on one index (a directory's `$I30`, or a view index such as `$ObjId:$O`): the root and
//! every `INDX` block reachable from it are read and checked field by field, the tree's shape and
//! order are checked, and the `$BITMAP` of the index is compared with the blocks the tree uses.
//! What the entries point at is checked by the caller, from the entries returned here.

use super::bits::{push_range, Bits};
use super::{soft, ProblemKind, Problems};
use crate::bytes::{u32_at, u64_at, utf16_units};
use crate::index::{Collation, Directory, FileNameKey, NodeId};
use crate::layout::{
    file_name, index_block, index_entry, index_header, index_root, EntryChain, EntryChainBreak,
    IndexEntryHeader, IndexHeader,
};
use crate::record::{FileRecord, FileRef};
use crate::upcase::UpcaseTable;
use crate::volume::{AttrValue, Volume};
use crate::AttributeType;
use crate::NtfsError;
use kaifuku_io::ReadAt;
use std::cmp::Ordering;

/// Deepest tree followed; real indexes are a handful of levels deep.
const MAX_DEPTH: usize = 32;

/// One entry (not END) found in the tree.
#[derive(Debug, Clone)]
pub(crate) struct TreeEntry {
    pub node: NodeId,
    /// The entry's file reference (`$I30`); zero for view indexes.
    pub file_ref: FileRef,
    pub key: Vec<u8>,
    /// The data part of a view-index entry.
    pub data: Vec<u8>,
    /// The parsed key of a `$I30` entry.
    pub name: Option<FileNameKey>,
}

#[derive(Debug, Default)]
pub(crate) struct TreeReport {
    pub entries: Vec<TreeEntry>,
    /// False when a node could not be read or parsed, so entries may be missing.
    pub complete: bool,
    pub blocks: u64,
}

#[derive(Debug)]
struct Parsed {
    offset: usize,
    flags: u16,
    file_ref: FileRef,
    key: Vec<u8>,
    data: Vec<u8>,
    child: Option<u64>,
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

fn node_name(id: NodeId, what: &str) -> String {
    match id {
        NodeId::Root => format!("index root of {what}"),
        NodeId::Block(v) => format!("index block VCN {v} of {what}"),
    }
}

/// Parses the entries of a node whose INDEX_HEADER is at `header`. Returns the node's
/// has-children flag and its entries (END included, last) or `None` when the entry chain is broken.
#[allow(clippy::too_many_arguments)]
fn parse_entries(
    bytes: &[u8],
    header: usize,
    id: NodeId,
    what: &str,
    file_names: bool,
    rec: u64,
    header_kind: ProblemKind,
    p: &mut Problems,
) -> Option<(bool, Vec<Parsed>)> {
    let loc = node_name(id, what);
    let r = Some(rec);
    let h = IndexHeader::read_or_zero(bytes, header);
    let (entries_offset, index_length, allocated) =
        (h.entries_offset, h.index_length, h.allocated_size);
    let has_children = h.has_children;
    if entries_offset < index_header::LENGTH
        || entries_offset & 7 != 0
        || index_length < entries_offset
        || index_length > allocated
    {
        p.push(
            header_kind,
            r,
            format!("{loc}: entries offset {entries_offset}, index length {index_length} and allocated size {allocated} are inconsistent"),
        );
        return None;
    }
    if header + allocated > bytes.len() {
        p.push(
            header_kind,
            r,
            format!(
                "{loc}: allocated size {allocated} exceeds the node's {} bytes",
                bytes.len() - header
            ),
        );
        return None;
    }
    let end = h.entries_end();
    let child_flag_disagrees = |e: &IndexEntryHeader, p: &mut Problems| {
        let node = e.has_child_flag();
        if node != has_children {
            p.push(
                ProblemKind::IndexEntryLayout,
                r,
                format!(
                    "{loc}: entry at {} {} a child pointer but the node header says it {} children",
                    e.offset - header,
                    if node { "has" } else { "lacks" },
                    if has_children { "has" } else { "has no" }
                ),
            );
        }
    };
    let mut out = Vec::new();
    for link in EntryChain::new(bytes, &h) {
        let e = match link {
            Ok(e) => e,
            Err(EntryChainBreak::NoEnd) => {
                p.push(
                    ProblemKind::IndexEntryLayout,
                    r,
                    format!("{loc}: no END entry before the index length {index_length}"),
                );
                return None;
            }
            Err(EntryChainBreak::BadLength { entry }) => {
                let (at, length) = (entry.offset - header, entry.length);
                p.push(
                    ProblemKind::IndexEntryLayout,
                    r,
                    format!("{loc}: entry at {at} has length {length}, which is not 8-aligned or runs past the index length {index_length}"),
                );
                return None;
            }
            Err(EntryChainBreak::NoRoomForChild { entry }) => {
                child_flag_disagrees(&entry, p);
                p.push(
                    ProblemKind::IndexEntryLayout,
                    r,
                    format!(
                        "{loc}: entry at {} is too short for its child VCN",
                        entry.offset - header
                    ),
                );
                return None;
            }
        };
        child_flag_disagrees(&e, p);
        let (off, length, key_length, flags) = (e.offset, e.length, e.key_length, e.flags);
        let at = off - header;
        let file_ref = FileRef::from_u64(e.file_ref);
        let node = e.has_child_flag();
        let child = e.child;
        let body_end = e.body_end();
        if e.is_end() {
            if off + length != end {
                p.push(
                    ProblemKind::IndexEntryLayout,
                    r,
                    format!("{loc}: the END entry at {at} ends at {} but the index length is {index_length}", at + length),
                );
            }
            out.push(Parsed {
                offset: at,
                flags,
                file_ref,
                key: Vec::new(),
                data: Vec::new(),
                child,
            });
            return Some((has_children, out));
        }
        let key_at = off + index_entry::KEY;
        let (key, data) = if file_names {
            let name_len = bytes
                .get(key_at + file_name::NAME_LENGTH)
                .copied()
                .unwrap_or(0) as usize;
            let want_key = file_name::NAME + 2 * name_len;
            let want_len = align8(index_entry::KEY + want_key)
                + if node {
                    index_entry::CHILD_VCN_LENGTH
                } else {
                    0
                };
            if key_length < file_name::NAME || index_entry::KEY + key_length > body_end {
                p.push(
                    ProblemKind::IndexEntryLayout,
                    r,
                    format!("{loc}: entry at {at} has key length {key_length} in an entry of {length} bytes"),
                );
                return None;
            }
            if key_length != want_key || length != want_len {
                p.push(
                    ProblemKind::IndexEntryLayout,
                    r,
                    format!(
                        "{loc}: entry at {at} has length {length} and key length {key_length}, but a {name_len}-character name needs {want_len} and {want_key}"
                    ),
                );
                if index_entry::KEY + want_key > body_end {
                    return None;
                }
            }
            (
                bytes[key_at..key_at + want_key.min(key_length).max(file_name::NAME)].to_vec(),
                Vec::new(),
            )
        } else {
            let data_offset = e.data_offset();
            let data_length = e.data_length();
            if index_entry::KEY + key_length > body_end
                || (data_length > 0
                    && (data_offset < index_entry::HEADER_LENGTH
                        || data_offset + data_length > body_end))
            {
                p.push(
                    ProblemKind::IndexEntryLayout,
                    r,
                    format!("{loc}: entry at {at}: key ({key_length} bytes) or data ({data_length} bytes at {data_offset}) lies outside its {length} bytes"),
                );
                return None;
            }
            let data = if data_length > 0 {
                bytes[off + data_offset..off + data_offset + data_length].to_vec()
            } else {
                Vec::new()
            };
            (bytes[key_at..key_at + key_length].to_vec(), data)
        };
        out.push(Parsed {
            offset: at,
            flags,
            file_ref,
            key,
            data,
            child,
        });
    }
    // The chain ends with END (returned above) or a break (also returned above).
    None
}

enum Order<'a> {
    Names(&'a UpcaseTable),
    Ulongs,
    Unchecked,
}

impl Order<'_> {
    fn cmp(&self, a: &[u8], b: &[u8]) -> Option<Ordering> {
        match self {
            Order::Names(up) => Some(up.collate(&key_name(a), &key_name(b))),
            Order::Ulongs => {
                let ua = a.chunks(4).map(|c| u32::from_le_bytes(pad4(c)));
                let ub = b.chunks(4).map(|c| u32::from_le_bytes(pad4(c)));
                Some(ua.cmp(ub))
            }
            Order::Unchecked => None,
        }
    }

    fn show(&self, k: &[u8]) -> String {
        match self {
            Order::Names(_) => format!("\"{}\"", crate::bytes::utf16_name(&key_name(k))),
            _ => k.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

fn pad4(c: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a[..c.len()].copy_from_slice(c);
    a
}

fn key_name(k: &[u8]) -> Vec<u16> {
    let n = k.get(file_name::NAME_LENGTH).copied().unwrap_or(0) as usize;
    utf16_units(
        k.get(file_name::NAME..(file_name::NAME + 2 * n).min(k.len()))
            .unwrap_or(&[]),
    )
}

struct Pending {
    id: NodeId,
    depth: usize,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    parent: NodeId,
}

/// Checks the index `index_name` of the file whose base record is `base` (`what` names it in
/// messages, e.g. "directory 5"). Returns `None` when the file has no such index.
pub(crate) fn check_tree<R: ReadAt>(
    vol: &Volume<R>,
    base: &FileRecord,
    index_name: &str,
    what: &str,
    p: &mut Problems,
) -> Result<Option<TreeReport>, NtfsError> {
    let rec = base.number;
    let r = Some(rec);
    let root_what = format!("index root of {what}");
    let Some(root) = soft(
        vol.value(base, AttributeType::IndexRoot, index_name),
        p,
        ProblemKind::Unreadable,
        r,
        &root_what,
    )?
    else {
        return Ok(Some(TreeReport::default()));
    };
    let root = match root {
        None => return Ok(None),
        Some(AttrValue::Resident(v)) => v,
        Some(AttrValue::NonResident(_)) => {
            p.push(
                ProblemKind::IndexRoot,
                r,
                format!("{root_what}: $INDEX_ROOT is non-resident"),
            );
            return Ok(Some(TreeReport::default()));
        }
    };
    if root.len() < index_root::HEADER + index_header::LENGTH {
        p.push(
            ProblemKind::IndexRoot,
            r,
            format!("{root_what}: only {} bytes", root.len()),
        );
        return Ok(Some(TreeReport::default()));
    }
    let indexed_type = u32_at(&root, index_root::INDEXED_TYPE).unwrap_or(0);
    let collation = u32_at(&root, index_root::COLLATION).unwrap_or(0);
    let block_size = u32_at(&root, index_root::BLOCK_SIZE).unwrap_or(0);
    let clusters_per_block = root[index_root::CLUSTERS_PER_BLOCK] as u64;
    let file_names = indexed_type == AttributeType::FileName.code();
    let boot_block = vol.boot().index_record_size;
    let cs = vol.cluster_size();
    if file_names && collation != index_root::COLLATION_FILE_NAME {
        p.push(
            ProblemKind::IndexRoot,
            r,
            format!(
                "{root_what}: file names collated by rule {collation:#x}, not the file-name rule"
            ),
        );
    }
    if block_size != boot_block {
        p.push(
            ProblemKind::IndexRoot,
            r,
            format!("{root_what}: block size {block_size}, but the boot sector says {boot_block}"),
        );
        return Ok(Some(TreeReport::default()));
    }
    // Blocks at least a cluster big are counted in clusters; smaller ones in 512-byte units.
    let want_cpb = if block_size as u64 >= cs {
        block_size as u64 / cs
    } else {
        block_size as u64 / 512
    };
    if clusters_per_block != want_cpb {
        p.push(
            ProblemKind::IndexRoot,
            r,
            format!("{root_what}: {clusters_per_block} clusters per block, expected {want_cpb}"),
        );
    }
    let root_header = IndexHeader::read_or_zero(&root, index_root::HEADER);
    let root_length = root_header.index_length;
    let root_alloc = root_header.allocated_size;
    if root_length != root_alloc {
        p.push(ProblemKind::IndexRoot, r, format!("{root_what}: index length {root_length} differs from its allocated size {root_alloc}"));
    }
    if root.len() != index_root::HEADER + root_alloc {
        p.push(
            ProblemKind::IndexRoot,
            r,
            format!(
                "{root_what}: value of {} bytes for an allocated size of {root_alloc}",
                root.len()
            ),
        );
    }
    let order = if file_names {
        match vol.upcase() {
            Ok(u) => Order::Names(u),
            Err(NtfsError::Io { what, source }) => return Err(NtfsError::Io { what, source }),
            Err(e) => {
                p.push(
                    ProblemKind::Unreadable,
                    Some(crate::volume::RECORD_UPCASE),
                    format!("$UpCase: {e}"),
                );
                Order::Unchecked
            }
        }
    } else if collation == index_root::COLLATION_NTOFS_ULONG
        || collation == index_root::COLLATION_NTOFS_ULONGS
    {
        Order::Ulongs
    } else {
        Order::Unchecked
    };
    let allocation = match soft(
        vol.value(base, AttributeType::IndexAllocation, index_name),
        p,
        ProblemKind::Unreadable,
        r,
        what,
    )? {
        Some(Some(AttrValue::NonResident(s))) if s.data_size > vol.boot().volume_size() => {
            p.push(
                ProblemKind::IndexTree,
                r,
                format!(
                    "{what}: $INDEX_ALLOCATION claims {} bytes, more than the volume",
                    s.data_size
                ),
            );
            None
        }
        Some(Some(AttrValue::NonResident(s))) => Some(s),
        Some(Some(AttrValue::Resident(_))) => {
            p.push(
                ProblemKind::IndexTree,
                r,
                format!("{what}: $INDEX_ALLOCATION is resident"),
            );
            None
        }
        _ => None,
    };
    let bitmap = match soft(
        vol.value(base, AttributeType::Bitmap, index_name),
        p,
        ProblemKind::Unreadable,
        r,
        what,
    )? {
        Some(Some(v)) => {
            let len = match &v {
                AttrValue::Resident(b) => b.len() as u64,
                AttrValue::NonResident(s) => s.data_size,
            };
            soft(
                vol.read_value(&v, 0, len as usize),
                p,
                ProblemKind::Unreadable,
                r,
                what,
            )?
        }
        _ => None,
    };
    let vcn_unit = if cs <= block_size as u64 { cs } else { 512 };
    let vcn_per_block = block_size as u64 / vcn_unit;
    let n_blocks = allocation
        .as_ref()
        .map_or(0, |a| a.data_size / block_size as u64);
    if allocation.is_some() && bitmap.is_none() {
        p.push(
            ProblemKind::IndexBitmap,
            r,
            format!("{what} has $INDEX_ALLOCATION but no $BITMAP"),
        );
    }
    let bitmap_bits = bitmap
        .as_ref()
        .map(|b| Bits::from_bytes(b, b.len() as u64 * 8));
    let dir = Directory {
        record: rec,
        index_name: index_name.to_string(),
        collation: if file_names {
            Collation::FileName
        } else {
            Collation::Ulongs
        },
        root_value: root.clone(),
        block_size,
        allocation: allocation.clone(),
        vcn_unit,
        cluster_size: cs,
    };

    let mut report = TreeReport {
        entries: Vec::new(),
        complete: true,
        blocks: 0,
    };
    let mut referenced = Bits::new(n_blocks);
    let mut leaf_depths: Vec<(usize, NodeId)> = Vec::new();
    let mut stack = vec![Pending {
        id: NodeId::Root,
        depth: 0,
        lower: None,
        upper: None,
        parent: NodeId::Root,
    }];
    while let Some(item) = stack.pop() {
        let loc = node_name(item.id, what);
        if item.depth > MAX_DEPTH {
            p.push(
                ProblemKind::IndexTree,
                r,
                format!("{loc}: the tree is deeper than {MAX_DEPTH} levels"),
            );
            report.complete = false;
            continue;
        }
        let (bytes, header, header_kind) = match item.id {
            NodeId::Root => (root.clone(), index_root::HEADER, ProblemKind::IndexRoot),
            NodeId::Block(vcn) => {
                let from = node_name(item.parent, what);
                if allocation.is_none() {
                    p.push(
                        ProblemKind::IndexTree,
                        r,
                        format!("{from} points at VCN {vcn} but there is no $INDEX_ALLOCATION"),
                    );
                    report.complete = false;
                    continue;
                }
                if vcn % vcn_per_block != 0 || vcn / vcn_per_block >= n_blocks {
                    p.push(
                        ProblemKind::IndexTree,
                        r,
                        format!("{from} points at VCN {vcn}, which is not the start of one of its {n_blocks} blocks"),
                    );
                    report.complete = false;
                    continue;
                }
                let k = vcn / vcn_per_block;
                if referenced.get(k) {
                    p.push(
                        ProblemKind::IndexTree,
                        r,
                        format!("{loc} is referenced more than once (again from {from})"),
                    );
                    report.complete = false;
                    continue;
                }
                referenced.set(k);
                report.blocks += 1;
                if !bitmap_bits.as_ref().is_some_and(|b| b.get(k)) {
                    p.push(
                        ProblemKind::IndexBitmap,
                        r,
                        format!("{loc} is in the tree but its $BITMAP bit is clear"),
                    );
                }
                let Some(pieces) =
                    soft(dir.block_location(vcn), p, ProblemKind::IndexTree, r, &loc)?
                else {
                    report.complete = false;
                    continue;
                };
                let mut b = Vec::with_capacity(block_size as usize);
                for (off, len) in pieces {
                    let mut piece = vec![0u8; len as usize];
                    vol.reader()
                        .read_at(off, &mut piece)
                        .map_err(NtfsError::io("reading an index block"))?;
                    b.extend_from_slice(&piece);
                }
                if b.get(..4) != Some(index_block::SIGNATURE.as_slice()) {
                    p.push(
                        ProblemKind::IndexBlockHeader,
                        r,
                        format!("{loc} has no INDX signature"),
                    );
                    report.complete = false;
                    continue;
                }
                if let Err(e) = crate::fixup::apply_read(&mut b, &loc) {
                    p.push(
                        ProblemKind::IndexBlockHeader,
                        r,
                        e.to_string().replace("NTFS structure damaged: ", ""),
                    );
                    report.complete = false;
                    continue;
                }
                let own = u64_at(&b, index_block::VCN).unwrap_or(u64::MAX);
                if own != vcn {
                    p.push(
                        ProblemKind::IndexBlockVcn,
                        r,
                        format!("{loc} says it is VCN {own}"),
                    );
                }
                let alloc = IndexHeader::read_or_zero(&b, index_block::HEADER).allocated_size;
                let room = block_size as usize - index_block::HEADER;
                if alloc != room {
                    p.push(
                        ProblemKind::IndexBlockHeader,
                        r,
                        format!("{loc}: allocated size {alloc}, expected {room} for a {block_size}-byte block"),
                    );
                }
                (b, index_block::HEADER, ProblemKind::IndexBlockHeader)
            }
        };
        let Some((has_children, entries)) = parse_entries(
            &bytes,
            header,
            item.id,
            what,
            file_names,
            rec,
            header_kind,
            p,
        ) else {
            report.complete = false;
            continue;
        };
        let keyed = entries.len() - 1;
        if keyed == 0 && matches!(item.id, NodeId::Block(_)) {
            p.push(
                ProblemKind::IndexEmptyBlock,
                r,
                format!("{loc} is allocated but holds no entry (only END)"),
            );
        }
        if !has_children {
            leaf_depths.push((item.depth, item.id));
        }
        // Order inside the node and against the bounds inherited from the parent.
        let mut prev: Option<&[u8]> = item.lower.as_deref();
        for (i, e) in entries.iter().enumerate() {
            let is_end = e.flags & index_entry::FLAG_END != 0;
            let this: Option<&[u8]> = if is_end {
                item.upper.as_deref()
            } else {
                Some(&e.key)
            };
            if !is_end {
                if let (Some(a), Some(b)) = (prev, this) {
                    if order.cmp(a, b).is_some_and(|o| o != Ordering::Less) {
                        let bound = i == 0;
                        p.push(
                            ProblemKind::IndexOrder,
                            r,
                            format!(
                                "{loc}: entry at {} {} does not sort after {} {}",
                                e.offset,
                                order.show(b),
                                if bound {
                                    "the separator above it,"
                                } else {
                                    "the entry before it,"
                                },
                                order.show(a)
                            ),
                        );
                    }
                }
                if i + 1 == keyed {
                    if let (Some(a), Some(u)) = (this, item.upper.as_deref()) {
                        if order.cmp(a, u).is_some_and(|o| o != Ordering::Less) {
                            p.push(
                                ProblemKind::IndexOrder,
                                r,
                                format!("{loc}: entry {} does not sort before the separator above it, {}", order.show(a), order.show(u)),
                            );
                        }
                    }
                }
                let name = if file_names {
                    FileNameKey::parse(&e.key).ok()
                } else {
                    None
                };
                report.entries.push(TreeEntry {
                    node: item.id,
                    file_ref: if file_names {
                        e.file_ref
                    } else {
                        FileRef {
                            record: 0,
                            sequence: 0,
                        }
                    },
                    key: e.key.clone(),
                    data: e.data.clone(),
                    name,
                });
            }
            if let Some(child) = e.child {
                stack.push(Pending {
                    id: NodeId::Block(child),
                    depth: item.depth + 1,
                    lower: prev.map(|k| k.to_vec()),
                    upper: this.map(|k| k.to_vec()),
                    parent: item.id,
                });
            }
            if !is_end {
                prev = Some(&e.key);
            }
        }
    }
    if let (Some(min), Some(max)) = (
        leaf_depths.iter().map(|d| d.0).min(),
        leaf_depths.iter().map(|d| d.0).max(),
    ) {
        if min != max {
            let shallow: Vec<String> = leaf_depths
                .iter()
                .filter(|d| d.0 == min)
                .take(4)
                .map(|d| node_name(d.1, what))
                .collect();
            p.push(
                ProblemKind::IndexTree,
                r,
                format!(
                    "{what}: leaves lie at depths {min} to {max} (shallowest: {})",
                    shallow.join(", ")
                ),
            );
        }
    }
    if let Some(bits) = &bitmap_bits {
        if allocation.is_some() && bits.len() < n_blocks {
            p.push(
                ProblemKind::IndexBitmap,
                r,
                format!(
                    "{what}: $BITMAP has {} bits for {n_blocks} blocks",
                    bits.len()
                ),
            );
        }
        let mut stale = Vec::new();
        for k in 0..bits.len() {
            if bits.get(k) && !referenced.get(k) {
                push_range(&mut stale, k, 1);
            }
        }
        for (k, n) in stale {
            let (a, b) = (k * vcn_per_block, (k + n - 1) * vcn_per_block);
            let blocks = if n == 1 {
                format!("index block VCN {a}")
            } else {
                format!("index blocks VCN {a}..={b}")
            };
            let why = if k + n > n_blocks {
                "beyond $INDEX_ALLOCATION"
            } else {
                "not referenced from the tree"
            };
            p.push(
                ProblemKind::IndexBitmap,
                r,
                format!(
                    "{what}: $BITMAP marks {blocks} in use, but {} {why}",
                    if n == 1 { "it is" } else { "they are" }
                ),
            );
        }
    }
    Ok(Some(report))
}
