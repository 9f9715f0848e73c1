//! Directory indexes (`$I30`) and view indexes (`$O`, `$R`, `$Q`): the resident `$INDEX_ROOT`
//! node and `INDX` blocks in `$INDEX_ALLOCATION`, walked by our own code so that every node's
//! on-disk location is known (the edit layer needs it) and 64 KiB-cluster volumes work (index VCNs
//! are then in 512-byte units). Path lookup on a [`Volume`] lives here too, on top of the indexes.

use crate::bytes::{slice, u32_at, u64_at, u8_at, utf16_name, utf16_units};
use crate::layout::{
    file_name, index_block, index_entry, index_header, index_root, multi_sector, AttributeType,
    EntryChain, EntryChainBreak, IndexHeader, Namespace,
};
use crate::record::{FileRecord, FileRef};
use crate::runlist::map_range;
use crate::volume::{AttrValue, Stream, Volume, RECORD_ROOT};
use crate::NtfsError;
use crate::Unsupported;
use crate::{Location, Structure};
use kaifuku_io::ReadAt;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Deepest index tree we follow; real trees are a handful of levels.
const MAX_DEPTH: usize = 32;

/// Which node of an index an entry sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeId {
    /// The resident `$INDEX_ROOT` node.
    Root,
    /// An `INDX` block, by its VCN.
    Block(u64),
}

/// The key of a `$I30` entry: a copy of the file's `$FILE_NAME`.
#[derive(Debug, Clone)]
pub struct FileNameKey {
    /// The directory the name is in.
    pub parent: FileRef,
    /// Creation time (100 ns ticks since 1601), as copied when the name was last updated.
    pub created: u64,
    /// Last data change, as copied.
    pub modified: u64,
    /// Last change of the file record, as copied.
    pub mft_changed: u64,
    /// Last access, as copied.
    pub accessed: u64,
    /// Allocated size of the data, as copied.
    pub allocated_size: u64,
    /// Size of the data, as copied.
    pub data_size: u64,
    /// DOS/Windows file attributes (read-only, hidden, directory, ...).
    pub file_attributes: u32,
    /// Which naming rules the name follows (a long name and its DOS twin are two entries).
    pub namespace: Namespace,
    /// The name as stored, UTF-16 (not necessarily valid Unicode).
    pub name: Vec<u16>,
}

impl FileNameKey {
    /// Reads a `$FILE_NAME` value or `$I30` key.
    pub fn parse(b: &[u8]) -> Result<FileNameKey, NtfsError> {
        let name_len = u8_at(b, file_name::NAME_LENGTH)? as usize;
        Ok(FileNameKey {
            parent: FileRef::from_u64(u64_at(b, file_name::PARENT)?),
            created: u64_at(b, file_name::CREATED)?,
            modified: u64_at(b, file_name::MODIFIED)?,
            mft_changed: u64_at(b, file_name::MFT_CHANGED)?,
            accessed: u64_at(b, file_name::ACCESSED)?,
            allocated_size: u64_at(b, file_name::ALLOCATED_SIZE)?,
            data_size: u64_at(b, file_name::DATA_SIZE)?,
            file_attributes: u32_at(b, file_name::FILE_ATTRIBUTES)?,
            namespace: Namespace::from_byte(u8_at(b, file_name::NAMESPACE)?),
            name: utf16_units(slice(b, file_name::NAME, name_len * 2)?),
        })
    }

    /// The name for display (unpaired surrogates shown as U+FFFD).
    pub fn name_string(&self) -> String {
        utf16_name(&self.name)
    }
}

/// One entry of a directory index, with where it lies.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// The file the entry names.
    pub file_ref: FileRef,
    /// The entry's key: a copy of the file's `$FILE_NAME`.
    pub key: FileNameKey,
    /// The entry flags ([`index_entry::FLAG_NODE`], [`index_entry::FLAG_END`]).
    pub flags: u16,
    /// The node holding the entry.
    pub node: NodeId,
    /// Byte offset of the entry within its node's fixed-up bytes.
    pub offset: usize,
    /// Length of the entry in bytes.
    pub length: usize,
    /// The VCN of the child block the entry points at, in a node with children.
    pub subnode: Option<u64>,
}

impl DirEntry {
    /// The file name for display.
    pub fn name(&self) -> String {
        self.key.name_string()
    }
}

/// One parsed node: its entries including the END entry (which may carry a child VCN).
#[derive(Debug, Clone)]
pub struct Node {
    /// Which node this is.
    pub id: NodeId,
    /// Fixed-up bytes of the node (the `$INDEX_ROOT` value, or the whole `INDX` block).
    pub bytes: Vec<u8>,
    /// Offset of the INDEX_HEADER within `bytes`.
    pub header: usize,
    /// Whether the node's entries point at child blocks.
    pub has_children: bool,
    /// The entries in on-disk order, END last.
    pub entries: Vec<RawEntry>,
}

/// One entry of a node as parsed, for any index (`$I30` or a view index).
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// Byte offset of the entry in its node's fixed-up bytes.
    pub offset: usize,
    /// Length of the entry in bytes.
    pub length: usize,
    /// The entry flags ([`index_entry::FLAG_NODE`], [`index_entry::FLAG_END`]).
    pub flags: u16,
    /// For `$I30` entries the file the entry names; for view indexes (`$O`, `$R`) the first eight
    /// bytes of the entry, which are not a reference.
    pub file_ref: FileRef,
    /// Parsed `$FILE_NAME` key (file-name indexes only).
    pub key: Option<FileNameKey>,
    /// The raw key bytes (empty for the END entry).
    pub key_bytes: Vec<u8>,
    /// Offset of the data from the entry's start (view indexes; `$I30` entries have none).
    pub data_offset: usize,
    /// Length of the data (view indexes).
    pub data_length: usize,
    /// Whether this is the END entry that closes the node (it has no key).
    pub is_end: bool,
    /// The VCN of the child block the entry points at, in a node with children.
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
            index_root::COLLATION_FILE_NAME => Some(Collation::FileName),
            // COLLATION_NTOFS_ULONG (one u32, `$Quota:$Q`) orders like a one-word ULONGS key.
            index_root::COLLATION_NTOFS_ULONG | index_root::COLLATION_NTOFS_ULONGS => {
                Some(Collation::Ulongs)
            }
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

/// An open index of one file (a directory's `$I30`, or a view index such as `$ObjId:$O`): its root value and where its blocks lie.
pub struct Directory {
    /// The record holding the index.
    pub record: u64,
    /// Attribute name of the index: `$I30` for directories, `$O`/`$R` for view indexes.
    pub index_name: String,
    /// How the index orders its keys.
    pub collation: Collation,
    /// The `$INDEX_ROOT` value as read.
    pub root_value: Vec<u8>,
    /// Bytes per `INDX` block.
    pub block_size: u32,
    /// The `$INDEX_ALLOCATION` stream holding the blocks; `None` for an index that fits its root.
    pub allocation: Option<Stream>,
    /// Bytes per index VCN: the cluster size, or 512 when clusters exceed the block size.
    pub vcn_unit: u64,
    /// The volume's cluster size, for mapping blocks to volume offsets.
    pub cluster_size: u64,
}

impl Directory {
    /// Opens the `$I30` index of a directory record.
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
        let root_value = match vol.value(rec, AttributeType::IndexRoot, name)? {
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
        let collation = Collation::from_code(u32_at(&root_value, index_root::COLLATION)?);
        let collation = match (name, collation) {
            ("$I30", Some(Collation::FileName))
                if u32_at(&root_value, index_root::INDEXED_TYPE)?
                    == AttributeType::FileName.code() =>
            {
                Collation::FileName
            }
            (n, Some(Collation::Ulongs)) if n != "$I30" => Collation::Ulongs,
            _ => {
                return Err(NtfsError::Unsupported(Unsupported::IndexCollation {
                    record: rec.number,
                    index: name.to_string(),
                    rule: u32_at(&root_value, index_root::COLLATION)?,
                }))
            }
        };
        let block_size = u32_at(&root_value, index_root::BLOCK_SIZE)?;
        if !(512..=65536).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(NtfsError::damaged_at(
                Structure::IndexRoot,
                Location::MftRecord { record: rec.number },
                format!("record {}: index block size {block_size}", rec.number),
            ));
        }
        let allocation = match vol.value(rec, AttributeType::IndexAllocation, name)? {
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
        parse_node_with(
            NodeId::Root,
            self.root_value.clone(),
            index_root::HEADER,
            self.collation,
        )
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
        if bytes.get(multi_sector::SIGNATURE..multi_sector::SIGNATURE + 4)
            != Some(index_block::SIGNATURE.as_slice())
        {
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
        let own = u64_at(&bytes, index_block::VCN)?;
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
        parse_node_with(
            NodeId::Block(vcn),
            bytes,
            index_block::HEADER,
            self.collation,
        )
    }

    /// Reads and parses node `id`: the root, or the block at its VCN.
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
    let h = IndexHeader::read(&bytes, header)?;
    let (entries_offset, index_length) = (h.entries_offset, h.index_length);
    let has_children = h.has_children;
    let start = h.entries_start();
    let end = h.entries_end();
    if entries_offset < index_header::LENGTH || end > bytes.len() || start > end {
        return Err(corrupt(format!(
            "entries {entries_offset}..{index_length} do not fit {} bytes",
            bytes.len()
        )));
    }
    let mut entries = Vec::new();
    let mut chain = EntryChain::new(&bytes, &h);
    for link in chain.by_ref() {
        let e = match link {
            Ok(e) => e,
            Err(EntryChainBreak::NoEnd) => {
                return Err(corrupt("no END entry before the end of the node".into()))
            }
            Err(EntryChainBreak::BadLength { entry }) => {
                return Err(corrupt(format!(
                    "entry at {} has length {}",
                    entry.offset, entry.length
                )))
            }
            Err(EntryChainBreak::NoRoomForChild { entry }) => {
                return Err(corrupt(format!(
                    "entry at {} has a child flag but no room for the VCN",
                    entry.offset
                )))
            }
        };
        let off = e.offset;
        if e.has_child_flag() != has_children {
            return Err(corrupt(format!(
                "entry at {off}: child flag disagrees with the node header"
            )));
        }
        let is_end = e.is_end();
        let (key, key_bytes) = if is_end {
            (None, Vec::new())
        } else {
            let min_key = if collation == Collation::FileName {
                file_name::NAME
            } else {
                4
            };
            let key_length = e.key_length;
            if key_length < min_key || index_entry::KEY + key_length > e.length {
                return Err(corrupt(format!(
                    "entry at {off} has key length {key_length}"
                )));
            }
            let kb = slice(&bytes, off + index_entry::KEY, key_length)?.to_vec();
            let key = if collation == Collation::FileName {
                Some(FileNameKey::parse(&kb)?)
            } else {
                None
            };
            (key, kb)
        };
        entries.push(RawEntry {
            offset: off,
            length: e.length,
            flags: e.flags,
            file_ref: FileRef::from_u64(e.file_ref),
            key,
            key_bytes,
            data_offset: e.data_offset(),
            data_length: e.data_length(),
            is_end,
            subnode: e.child,
        });
    }
    let off = chain.position();
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

impl<R: ReadAt> Volume<R> {
    /// Opens the directory index of a live directory record.
    pub fn directory(&self, rec: &FileRecord) -> Result<Directory, NtfsError> {
        Directory::open(self, rec)
    }

    /// The live directory record at `path` (`\` is the root), or `None` when it does not exist or
    /// is not a directory.
    pub fn lookup_dir(&self, path: &str) -> Result<Option<FileRecord>, NtfsError> {
        if path.split(['\\', '/']).all(|c| c.is_empty()) {
            return Ok(Some(self.read_record(RECORD_ROOT)?));
        }
        Ok(self
            .lookup_path(path)?
            .map(|(_, r)| r)
            .filter(|r| r.is_directory()))
    }

    /// Looks up a `\`-separated path from the root, case-insensitively as Windows does.
    /// Returns `None` when some component does not exist.
    pub fn lookup_path(&self, path: &str) -> Result<Option<(DirEntry, FileRecord)>, NtfsError> {
        let mut dir = self.read_record(RECORD_ROOT)?;
        let mut found = None;
        for comp in path.split(['\\', '/']).filter(|c| !c.is_empty()) {
            if !dir.is_directory() {
                return Ok(None);
            }
            let name: Vec<u16> = comp.encode_utf16().collect();
            let d = self.directory(&dir)?;
            let Some(entry) = d.lookup(self, &name)? else {
                return Ok(None);
            };
            let rec = self.read_live(entry.file_ref)?;
            if !names_itself_in(&rec, dir.number, &entry.key.name) {
                return Err(NtfsError::damaged_at(Structure::Directory, Location::MftRecord { record: dir.number }, format!(
                    "directory record {} lists {} as record {}, but that record is not a file of that name in the directory",
                    dir.number,
                    entry.name(),
                    rec.number
                )));
            }
            dir = rec.clone();
            found = Some((entry, rec));
        }
        Ok(found)
    }
}

/// Whether `rec` has a `$FILE_NAME` naming it `name` in directory record `dir`: what an index
/// entry promises about the record it points at.
pub fn names_itself_in(rec: &FileRecord, dir: u64, name: &[u16]) -> bool {
    rec.attributes().is_ok_and(|attrs| {
        attrs.iter().any(|a| {
            a.is(AttributeType::FileName)
                && a.resident_value()
                    .and_then(FileNameKey::parse)
                    .is_ok_and(|k| k.parent.record == dir && k.name == name)
        })
    })
}
