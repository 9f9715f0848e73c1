//! Directory indexes (`$I30`): the resident `$INDEX_ROOT` node and `INDX` blocks in
//! `$INDEX_ALLOCATION`, walked by our own code so that every node's on-disk location is known (the
//! edit layer needs it) and 64 KiB-cluster volumes work (index VCNs are then in 512-byte units).

use crate::bytes::{slice, u16_at, u32_at, u64_at, u8_at, utf16_name, utf16_units};
use crate::record::{FileRecord, FileRef, ATTR_INDEX_ALLOCATION, ATTR_INDEX_ROOT};
use crate::runlist::map_range;
use crate::volume::{AttrValue, Stream, Volume};
use crate::NtfsError;
use crate::Unsupported;
use crate::{Location, Structure};
use kaifuku_io::ReadAt;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

pub const ENTRY_NODE: u16 = 0x01;
pub const ENTRY_END: u16 = 0x02;

/// Deepest index tree we follow; real trees are a handful of levels.
const MAX_DEPTH: usize = 32;

/// Name spaces of `$FILE_NAME`.
pub const NS_POSIX: u8 = 0;
pub const NS_WIN32: u8 = 1;
pub const NS_DOS: u8 = 2;
pub const NS_WIN32_DOS: u8 = 3;

/// Which node of an index an entry sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeId {
    Root,
    /// An `INDX` block, by its VCN.
    Block(u64),
}

/// The key of a `$I30` entry: a copy of the file's `$FILE_NAME`.
#[derive(Debug, Clone)]
pub struct FileNameKey {
    pub parent: FileRef,
    pub created: u64,
    pub modified: u64,
    pub mft_changed: u64,
    pub accessed: u64,
    pub allocated_size: u64,
    pub data_size: u64,
    pub file_attributes: u32,
    pub namespace: u8,
    pub name: Vec<u16>,
}

impl FileNameKey {
    pub fn parse(b: &[u8]) -> Result<FileNameKey, NtfsError> {
        let name_len = u8_at(b, 0x40)? as usize;
        Ok(FileNameKey {
            parent: FileRef::from_u64(u64_at(b, 0)?),
            created: u64_at(b, 0x08)?,
            modified: u64_at(b, 0x10)?,
            mft_changed: u64_at(b, 0x18)?,
            accessed: u64_at(b, 0x20)?,
            allocated_size: u64_at(b, 0x28)?,
            data_size: u64_at(b, 0x30)?,
            file_attributes: u32_at(b, 0x38)?,
            namespace: u8_at(b, 0x41)?,
            name: utf16_units(slice(b, 0x42, name_len * 2)?),
        })
    }

    pub fn name_string(&self) -> String {
        utf16_name(&self.name)
    }
}

/// One entry of a directory index, with where it lies.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub file_ref: FileRef,
    pub key: FileNameKey,
    pub flags: u16,
    pub node: NodeId,
    /// Byte offset of the entry within its node's fixed-up bytes.
    pub offset: usize,
    pub length: usize,
    pub subnode: Option<u64>,
}

impl DirEntry {
    pub fn name(&self) -> String {
        self.key.name_string()
    }
}

/// One parsed node: its entries including the END entry (which may carry a child VCN).
#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    /// Fixed-up bytes of the node (the `$INDEX_ROOT` value, or the whole `INDX` block).
    pub bytes: Vec<u8>,
    /// Offset of the INDEX_HEADER within `bytes`.
    pub header: usize,
    pub has_children: bool,
    pub entries: Vec<RawEntry>,
}

#[derive(Debug, Clone)]
pub struct RawEntry {
    pub offset: usize,
    pub length: usize,
    pub flags: u16,
    /// For `$I30` entries the file the entry names; for view indexes (`$O`, `$R`) the first eight
    /// bytes of the entry, which are not a reference.
    pub file_ref: FileRef,
    /// Parsed `$FILE_NAME` key (file-name indexes only).
    pub key: Option<FileNameKey>,
    /// The raw key bytes (empty for the END entry).
    pub key_bytes: Vec<u8>,
    pub is_end: bool,
    pub subnode: Option<u64>,
}

/// How an index orders its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collation {
    /// COLLATION_FILE_NAME (1): `$FILE_NAME` keys by upcased name, raw units as tie-break.
    FileName,
    /// COLLATION_NTOFS_ULONGS (0x13): keys as sequences of little-endian u32 (`$O`, `$R`).
    Ulongs,
}

impl Collation {
    fn from_code(code: u32) -> Option<Collation> {
        match code {
            1 => Some(Collation::FileName),
            // COLLATION_NTOFS_ULONG (one u32, `$Quota:$Q`) orders like a one-word ULONGS key.
            0x10 | 0x13 => Some(Collation::Ulongs),
            _ => None,
        }
    }

    /// Compares two raw keys of this index.
    pub fn compare(
        self,
        up: &crate::upcase::UpcaseTable,
        a: &[u8],
        b: &[u8],
    ) -> Result<Ordering, NtfsError> {
        Ok(match self {
            Collation::FileName => {
                let ka = FileNameKey::parse(a)?;
                let kb = FileNameKey::parse(b)?;
                up.collate(&ka.name, &kb.name)
            }
            Collation::Ulongs => {
                let wa = a
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                let wb = b
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                wa.cmp(wb)
            }
        })
    }
}

pub struct Directory {
    pub record: u64,
    /// Attribute name of the index: `$I30` for directories, `$O`/`$R` for view indexes.
    pub index_name: String,
    pub collation: Collation,
    pub root_value: Vec<u8>,
    pub block_size: u32,
    pub allocation: Option<Stream>,
    /// Bytes per index VCN: the cluster size, or 512 when clusters exceed the block size.
    pub vcn_unit: u64,
    pub cluster_size: u64,
}

impl Directory {
    pub fn open<R: ReadAt>(vol: &Volume<R>, rec: &FileRecord) -> Result<Directory, NtfsError> {
        Self::open_index(vol, rec, "$I30")
    }

    /// Opens index `name` of a record: `$I30` of a directory, or a view index such as `$O` of
    /// `$Extend\$ObjId` or `$R` of `$Extend\$Reparse`.
    pub fn open_index<R: ReadAt>(
        vol: &Volume<R>,
        rec: &FileRecord,
        name: &str,
    ) -> Result<Directory, NtfsError> {
        let root_value = match vol.value(rec, ATTR_INDEX_ROOT, name)? {
            Some(AttrValue::Resident(v)) => v,
            Some(AttrValue::NonResident(_)) => {
                return Err(NtfsError::damaged_at(
                    Structure::IndexRoot,
                    Location::MftRecord { record: rec.number },
                    format!("record {}: $INDEX_ROOT is not resident", rec.number),
                ))
            }
            None => {
                return Err(NtfsError::damaged_at(
                    Structure::IndexRoot,
                    Location::MftRecord { record: rec.number },
                    format!("record {} has no {name} index", rec.number),
                ))
            }
        };
        let collation = Collation::from_code(u32_at(&root_value, 4)?);
        let collation = match (name, collation) {
            ("$I30", Some(Collation::FileName))
                if u32_at(&root_value, 0)? == crate::record::ATTR_FILE_NAME =>
            {
                Collation::FileName
            }
            (n, Some(Collation::Ulongs)) if n != "$I30" => Collation::Ulongs,
            _ => {
                return Err(NtfsError::Unsupported(Unsupported::IndexCollation {
                    record: rec.number,
                    index: name.to_string(),
                    rule: u32_at(&root_value, 4)?,
                }))
            }
        };
        let block_size = u32_at(&root_value, 8)?;
        if !(512..=65536).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(NtfsError::damaged_at(
                Structure::IndexRoot,
                Location::MftRecord { record: rec.number },
                format!("record {}: index block size {block_size}", rec.number),
            ));
        }
        let allocation = match vol.value(rec, ATTR_INDEX_ALLOCATION, name)? {
            Some(AttrValue::NonResident(s)) => Some(s),
            Some(AttrValue::Resident(_)) => {
                return Err(NtfsError::damaged_at(
                    Structure::IndexAllocation,
                    Location::MftRecord { record: rec.number },
                    format!("record {}: $INDEX_ALLOCATION is resident", rec.number),
                ))
            }
            None => None,
        };
        if let Some(a) = &allocation {
            if a.data_size > vol.boot().volume_size() {
                return Err(NtfsError::damaged_at(
                    Structure::IndexAllocation,
                    Location::MftRecord { record: rec.number },
                    format!(
                        "record {}: $INDEX_ALLOCATION claims {} bytes, more than the volume",
                        rec.number, a.data_size
                    ),
                ));
            }
        }
        let cs = vol.cluster_size();
        let vcn_unit = if cs <= block_size as u64 { cs } else { 512 };
        Ok(Directory {
            record: rec.number,
            index_name: name.to_string(),
            collation,
            root_value,
            block_size,
            allocation,
            vcn_unit,
            cluster_size: cs,
        })
    }

    /// The root node (offsets relative to the `$INDEX_ROOT` value).
    pub fn root(&self) -> Result<Node, NtfsError> {
        parse_node_with(NodeId::Root, self.root_value.clone(), 0x10, self.collation)
    }

    /// Volume byte ranges holding the block at `vcn`.
    pub fn block_location(&self, vcn: u64) -> Result<Vec<(u64, u64)>, NtfsError> {
        let alloc = self.allocation.as_ref().ok_or_else(|| {
            NtfsError::damaged_at(
                Structure::IndexAllocation,
                Location::IndexNode {
                    directory: Some(self.record),
                    node: NodeId::Block(vcn),
                },
                format!(
                    "directory {}: a node points at VCN {vcn} but there is no $INDEX_ALLOCATION",
                    self.record
                ),
            )
        })?;
        let off = vcn
            .checked_mul(self.vcn_unit)
            .filter(|o| o + self.block_size as u64 <= alloc.data_size);
        let off = off.ok_or_else(|| {
            NtfsError::damaged_at(
                Structure::IndexAllocation,
                Location::IndexNode {
                    directory: Some(self.record),
                    node: NodeId::Block(vcn),
                },
                format!(
                    "directory {}: index VCN {vcn} lies outside its {}-byte $INDEX_ALLOCATION",
                    self.record, alloc.data_size
                ),
            )
        })?;
        map_range(&alloc.runs, self.cluster_size, off, self.block_size as u64)?
            .into_iter()
            .map(|(o, n)| {
                o.map(|o| (o, n)).ok_or_else(|| {
                    NtfsError::damaged_at(
                        Structure::IndexAllocation,
                        Location::IndexNode {
                            directory: Some(self.record),
                            node: NodeId::Block(vcn),
                        },
                        format!("index block VCN {vcn} is sparse"),
                    )
                })
            })
            .collect()
    }

    /// Reads and parses the `INDX` block at `vcn`.
    pub fn block<R: ReadAt>(&self, vol: &Volume<R>, vcn: u64) -> Result<Node, NtfsError> {
        let mut bytes = Vec::with_capacity(self.block_size as usize);
        for (off, len) in self.block_location(vcn)? {
            let mut b = vec![0u8; len as usize];
            vol.reader()
                .read_at(off, &mut b)
                .map_err(NtfsError::io("reading an index block"))?;
            bytes.extend_from_slice(&b);
        }
        if bytes.get(0..4) != Some(b"INDX") {
            return Err(NtfsError::damaged_at(
                Structure::IndexNode,
                Location::IndexNode {
                    directory: Some(self.record),
                    node: NodeId::Block(vcn),
                },
                format!(
                    "directory {}: index block VCN {vcn} has no INDX signature",
                    self.record
                ),
            ));
        }
        crate::fixup::apply_read(
            &mut bytes,
            &format!("index block VCN {vcn} of directory {}", self.record),
        )?;
        let own = u64_at(&bytes, 0x10)?;
        if own != vcn {
            return Err(NtfsError::damaged_at(
                Structure::IndexNode,
                Location::IndexNode {
                    directory: Some(self.record),
                    node: NodeId::Block(vcn),
                },
                format!(
                    "directory {}: index block at VCN {vcn} says it is VCN {own}",
                    self.record
                ),
            ));
        }
        parse_node_with(NodeId::Block(vcn), bytes, 0x18, self.collation)
    }

    pub fn node<R: ReadAt>(&self, vol: &Volume<R>, id: NodeId) -> Result<Node, NtfsError> {
        match id {
            NodeId::Root => self.root(),
            NodeId::Block(v) => self.block(vol, v),
        }
    }

    /// Finds the entry named `name` (case-insensitive, as Win32 lookups are). When a directory holds
    /// POSIX names that differ only in case, the exact match is preferred.
    pub fn lookup<R: ReadAt>(
        &self,
        vol: &Volume<R>,
        name: &[u16],
    ) -> Result<Option<DirEntry>, NtfsError> {
        let up = vol.upcase()?;
        let mut id = NodeId::Root;
        for _ in 0..MAX_DEPTH {
            let node = self.node(vol, id)?;
            let mut next = None;
            let mut found: Option<DirEntry> = None;
            let mut previous: Option<&[u16]> = None;
            for e in &node.entries {
                let Some(key) = &e.key else {
                    next = e.subnode;
                    break;
                };
                // The descent trusts the order of the keys; a node out of order could send it past
                // the file it looks for, and "not found" would then be a wrong answer.
                if let Some(prev) = previous {
                    if up.collate(prev, &key.name) != Ordering::Less {
                        return Err(NtfsError::damaged_at(
                            Structure::IndexNode,
                            Location::IndexNode {
                                directory: Some(self.record),
                                node: node.id,
                            },
                            format!(
                                "directory {}: index node {:?} lists {} after {}, out of order",
                                self.record,
                                node.id,
                                key.name_string(),
                                utf16_name(prev)
                            ),
                        ));
                    }
                }
                previous = Some(&key.name);
                match up.cmp_ignore_case(name, &key.name) {
                    Ordering::Less => {
                        next = e.subnode;
                        break;
                    }
                    Ordering::Equal => {
                        let exact = key.name == name;
                        if found.is_none() || exact {
                            found = Some(to_dir_entry(&node, e));
                        }
                        if exact {
                            return Ok(found);
                        }
                    }
                    Ordering::Greater => {}
                }
            }
            if found.is_some() {
                return Ok(found);
            }
            match next {
                Some(v) => id = NodeId::Block(v),
                None => return Ok(None),
            }
        }
        Err(NtfsError::damaged_at(
            Structure::IndexNode,
            Location::MftRecord {
                record: self.record,
            },
            format!(
                "directory {}: index deeper than {MAX_DEPTH} levels",
                self.record
            ),
        ))
    }

    /// Every entry in collation order (an in-order walk of the tree), DOS-only names included.
    pub fn entries<R: ReadAt>(&self, vol: &Volume<R>) -> Result<Vec<DirEntry>, NtfsError> {
        let mut out = Vec::new();
        let mut visited = Vec::new();
        self.walk(vol, NodeId::Root, 0, &mut visited, &mut out)?;
        Ok(out)
    }

    fn walk<R: ReadAt>(
        &self,
        vol: &Volume<R>,
        id: NodeId,
        depth: usize,
        visited: &mut Vec<u64>,
        out: &mut Vec<DirEntry>,
    ) -> Result<(), NtfsError> {
        if depth > MAX_DEPTH {
            return Err(NtfsError::damaged_at(
                Structure::IndexNode,
                Location::MftRecord {
                    record: self.record,
                },
                format!(
                    "directory {}: index deeper than {MAX_DEPTH} levels",
                    self.record
                ),
            ));
        }
        if let NodeId::Block(v) = id {
            if visited.contains(&v) {
                return Err(NtfsError::damaged_at(
                    Structure::IndexNode,
                    Location::IndexNode {
                        directory: Some(self.record),
                        node: NodeId::Block(v),
                    },
                    format!(
                        "directory {}: index block VCN {v} is referenced twice",
                        self.record
                    ),
                ));
            }
            visited.push(v);
        }
        let node = self.node(vol, id)?;
        for e in &node.entries {
            if let Some(child) = e.subnode {
                self.walk(vol, NodeId::Block(child), depth + 1, visited, out)?;
            }
            if e.key.is_some() && !e.is_end {
                out.push(to_dir_entry(&node, e));
            }
        }
        Ok(())
    }
}

fn to_dir_entry(node: &Node, e: &RawEntry) -> DirEntry {
    DirEntry {
        file_ref: e.file_ref,
        key: e.key.clone().expect("caller checked the key"),
        flags: e.flags,
        node: node.id,
        offset: e.offset,
        length: e.length,
        subnode: e.subnode,
    }
}

/// Parses the entries of a `$I30` node whose INDEX_HEADER is at `header`.
pub fn parse_node(id: NodeId, bytes: Vec<u8>, header: usize) -> Result<Node, NtfsError> {
    parse_node_with(id, bytes, header, Collation::FileName)
}

/// Parses the entries of a node of an index with the given collation.
pub fn parse_node_with(
    id: NodeId,
    bytes: Vec<u8>,
    header: usize,
    collation: Collation,
) -> Result<Node, NtfsError> {
    let corrupt = |m: String| {
        NtfsError::damaged_at(
            Structure::IndexNode,
            Location::IndexNode {
                directory: None,
                node: id,
            },
            format!("index node {id:?}: {m}"),
        )
    };
    let entries_offset = u32_at(&bytes, header)? as usize;
    let index_length = u32_at(&bytes, header + 4)? as usize;
    let has_children = u8_at(&bytes, header + 0x0C)? & 1 != 0;
    let start = header + entries_offset;
    let end = header + index_length;
    if entries_offset < 0x10 || end > bytes.len() || start > end {
        return Err(corrupt(format!(
            "entries {entries_offset}..{index_length} do not fit {} bytes",
            bytes.len()
        )));
    }
    let mut entries = Vec::new();
    let mut off = start;
    loop {
        if off + 0x10 > end {
            return Err(corrupt("no END entry before the end of the node".into()));
        }
        let file_ref = FileRef::from_u64(u64_at(&bytes, off)?);
        let length = u16_at(&bytes, off + 8)? as usize;
        let key_length = u16_at(&bytes, off + 0x0A)? as usize;
        let flags = u16_at(&bytes, off + 0x0C)?;
        if length < 0x10 || length & 7 != 0 || off + length > end {
            return Err(corrupt(format!("entry at {off} has length {length}")));
        }
        let subnode = if flags & ENTRY_NODE != 0 {
            if length < 0x18 {
                return Err(corrupt(format!(
                    "entry at {off} has a child flag but no room for the VCN"
                )));
            }
            Some(u64_at(&bytes, off + length - 8)?)
        } else {
            None
        };
        if (flags & ENTRY_NODE != 0) != has_children {
            return Err(corrupt(format!(
                "entry at {off}: child flag disagrees with the node header"
            )));
        }
        let is_end = flags & ENTRY_END != 0;
        let (key, key_bytes) = if is_end {
            (None, Vec::new())
        } else {
            let min_key = if collation == Collation::FileName {
                0x42
            } else {
                4
            };
            if key_length < min_key || 0x10 + key_length > length {
                return Err(corrupt(format!(
                    "entry at {off} has key length {key_length}"
                )));
            }
            let kb = slice(&bytes, off + 0x10, key_length)?.to_vec();
            let key = if collation == Collation::FileName {
                Some(FileNameKey::parse(&kb)?)
            } else {
                None
            };
            (key, kb)
        };
        entries.push(RawEntry {
            offset: off,
            length,
            flags,
            file_ref,
            key,
            key_bytes,
            is_end,
            subnode,
        });
        off += length;
        if is_end {
            break;
        }
    }
    // The END entry closes the node: bytes in use after it would be entries that every reader
    // skips (a damaged "last entry" flag hides them), so a lookup could miss a file that exists.
    if off != end {
        return Err(corrupt(format!(
            "the last-entry flag at {} hides {} bytes of entries before the end of the node",
            off - entries.last().map_or(0, |e| e.length),
            end - off
        )));
    }
    Ok(Node {
        id,
        bytes,
        header,
        has_children,
        entries,
    })
}
