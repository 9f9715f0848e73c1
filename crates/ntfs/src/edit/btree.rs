//! Removing one key from an NTFS index B-tree (`$I30`, `$O`, `$R`) the way NTFS does it:
//! - from a leaf: the following entries move down;
//! - from an internal node: replaced by its in-order successor (or by its predecessor when the
//!   successor's leaf would be left empty and the predecessor's would not), which takes over the
//!   removed entry's child pointer;
//! - from the resident root: the `$INDEX_ROOT` attribute shrinks or grows with it;
//! - a leaf block left with only its END entry is freed in the index `$BITMAP`, and the parent entry
//!   that pointed at it goes: a real key is re-inserted as the first key of the leftmost leaf under
//!   the next entry; when END pointed at it, END takes the previous entry's child and that key is
//!   re-inserted as the last key of the rightmost leaf under it; a parent block left with only END
//!   is freed the same way, one level up; a root left with only END becomes a leaf again.
//!
//! Refused with [`Unsupported`], because kaifuku does not restructure the tree:
//! - `IndexSplit`: a block that would outgrow its allocated size (a longer replacement in an
//!   internal block, or a key re-inserted into a full leaf); NTFS would split the block;
//! - `RecordFull` (from `resize_resident`): a root that would outgrow its MFT record; NTFS would
//!   move the root's entries into a new block;
//! - `IndexMerge`: an internal block left with no real entry after its key for an emptied child
//!   went; NTFS would merge blocks;
//! - `IndexBlockOverflow`: a block whose header claims more room than the block has (damage; a
//!   sound block never gets there).
//!
//! When: while the delete runs in the plan's overlay. Each node is changed in memory and the size
//! checked before that node is written, but not before the whole delete: earlier steps of the
//! same delete may already be in the overlay when a later one refuses (the DOS name's removal,
//! an internal node's replacement, an emptied block's `$BITMAP` bit, cleared before its parent is
//! looked at). The error ends the plan: the overlay, with everything written to it, is dropped,
//! and nothing reaches the image.

use super::{resize_resident, BitmapOwner, ChangedStructure, Editor, IndexOwner, RecordPart};
use crate::bytes::{put_u16, put_u32, put_u64, u16_at, u32_at};
use crate::index::{parse_node_with, Collation, Directory, Node, NodeId, RawEntry};
use crate::layout::{index_entry, index_header, index_root};
use crate::{AttributeType, Location, NtfsError, Structure, Unsupported};
use kaifuku_io::{ReadAt, WriteAt};
use std::cmp::Ordering;

const MAX_DEPTH: usize = 32;

/// A node's bytes being edited: the `$INDEX_ROOT` value (header at 0x10) or a whole `INDX` block
/// (header at 0x18), fixed up.
struct NodeBuf {
    id: NodeId,
    bytes: Vec<u8>,
    header: usize,
    collation: Collation,
}

impl NodeBuf {
    fn from_node(n: Node, collation: Collation) -> NodeBuf {
        NodeBuf {
            id: n.id,
            bytes: n.bytes,
            header: n.header,
            collation,
        }
    }

    fn parse(&self) -> Result<Node, NtfsError> {
        parse_node_with(self.id, self.bytes.clone(), self.header, self.collation)
    }

    fn index_length(&self) -> usize {
        u32_at(&self.bytes, self.header + index_header::INDEX_LENGTH).unwrap_or(0) as usize
    }

    fn set_index_length(&mut self, v: usize) {
        put_u32(
            &mut self.bytes,
            self.header + index_header::INDEX_LENGTH,
            v as u32,
        );
    }

    /// Clears the has-children flag: the root became a leaf.
    fn mark_leaf(&mut self) {
        self.bytes[self.header + index_header::FLAGS] &= !index_header::FLAG_HAS_CHILDREN;
    }

    /// Bytes available for the header and entries (blocks only; the root's room is the record's).
    fn capacity(&self) -> usize {
        match self.id {
            NodeId::Root => usize::MAX,
            NodeId::Block(_) => u32_at(&self.bytes, self.header + index_header::ALLOCATED_SIZE)
                .unwrap_or(0) as usize,
        }
    }

    fn entry_bytes(&self, e: &RawEntry) -> Vec<u8> {
        self.bytes[e.offset..e.offset + e.length].to_vec()
    }

    /// Replaces `old_len` bytes at `at` by `new`, moving the rest of the used area.
    fn splice(&mut self, at: usize, old_len: usize, new: &[u8]) -> Result<(), NtfsError> {
        let used_end = self.header + self.index_length();
        let new_index_length = self.index_length() + new.len() - old_len;
        if new_index_length > self.capacity() {
            return Err(NtfsError::Unsupported(Unsupported::IndexSplit {
                node: self.id,
                needed: new_index_length as u64,
                available: self.capacity() as u64,
            }));
        }
        let tail = self.bytes[at + old_len..used_end].to_vec();
        let new_end = at + new.len() + tail.len();
        if new_end > self.bytes.len() {
            if self.id == NodeId::Root {
                self.bytes.resize(new_end, 0);
            } else {
                return Err(NtfsError::Unsupported(Unsupported::IndexBlockOverflow {
                    node: self.id,
                }));
            }
        }
        self.bytes[at..at + new.len()].copy_from_slice(new);
        self.bytes[at + new.len()..new_end].copy_from_slice(&tail);
        if new_end < used_end {
            // Stale bytes past the used area are zeroed (NTFS ignores them; zero is tidier).
            self.bytes[new_end..used_end].fill(0);
        }
        self.set_index_length(new_index_length);
        Ok(())
    }

    fn remove(&mut self, e: &RawEntry) -> Result<(), NtfsError> {
        self.splice(e.offset, e.length, &[])
    }

    fn replace(&mut self, e: &RawEntry, new: &[u8]) -> Result<(), NtfsError> {
        self.splice(e.offset, e.length, new)
    }

    fn insert_before(&mut self, e: &RawEntry, new: &[u8]) -> Result<(), NtfsError> {
        self.splice(e.offset, 0, new)
    }

    fn real_entries(&self) -> Result<usize, NtfsError> {
        Ok(self.parse()?.entries.iter().filter(|e| !e.is_end).count())
    }
}

/// The entry with a child pointer to `vcn` (NODE flag set, VCN in the last 8 bytes).
fn with_child(entry: &[u8], vcn: u64) -> Vec<u8> {
    let mut e = entry.to_vec();
    let flags = u16_at(&e, index_entry::FLAGS).unwrap_or(0);
    if flags & index_entry::FLAG_NODE == 0 {
        e.extend_from_slice(&[0u8; index_entry::CHILD_VCN_LENGTH]);
        let len = e.len() as u16;
        put_u16(&mut e, index_entry::LENGTH, len);
        put_u16(&mut e, index_entry::FLAGS, flags | index_entry::FLAG_NODE);
    }
    let n = e.len();
    put_u64(&mut e, n - index_entry::CHILD_VCN_LENGTH, vcn);
    e
}

/// The entry without a child pointer.
fn without_child(entry: &[u8]) -> Vec<u8> {
    let mut e = entry.to_vec();
    let flags = u16_at(&e, index_entry::FLAGS).unwrap_or(0);
    if flags & index_entry::FLAG_NODE != 0 {
        e.truncate(e.len() - index_entry::CHILD_VCN_LENGTH);
        let len = e.len() as u16;
        put_u16(&mut e, index_entry::LENGTH, len);
        put_u16(&mut e, index_entry::FLAGS, flags & !index_entry::FLAG_NODE);
    }
    e
}

struct Ctx<'a, 'v, R> {
    ed: &'a mut Editor<'v, R>,
    record: u64,
    index_name: &'a str,
    /// The file the index belongs to, for the change log and messages.
    label: &'a IndexOwner,
}

impl<R: ReadAt + WriteAt> Ctx<'_, '_, R> {
    fn index(&self) -> Result<Directory, NtfsError> {
        super::open_index(self.ed.vol, self.record, self.index_name)
    }

    fn load(&self, id: NodeId) -> Result<NodeBuf, NtfsError> {
        let idx = self.index()?;
        Ok(NodeBuf::from_node(
            idx.node(self.ed.vol, id)?,
            idx.collation,
        ))
    }

    fn node_label(&self, id: NodeId) -> ChangedStructure {
        match id {
            NodeId::Root => ChangedStructure::MftRecord {
                record: self.record,
                part: Some(self.root_part()),
            },
            NodeId::Block(vcn) => ChangedStructure::IndexBlock {
                vcn,
                of: self.label.clone(),
                index: self.index_name.to_string(),
            },
        }
    }

    fn root_part(&self) -> RecordPart {
        RecordPart::IndexRoot {
            index: self.index_name.to_string(),
            of: self.label.clone(),
        }
    }

    /// Writes a node back: a block with new fixups at its location; the root into its record,
    /// resizing the resident `$INDEX_ROOT` to the new length.
    fn store(&mut self, node: &NodeBuf) -> Result<(), NtfsError> {
        match node.id {
            NodeId::Block(vcn) => {
                let idx = self.index()?;
                let pieces = idx.block_location(vcn)?;
                let mut bytes = node.bytes.clone();
                crate::fixup::apply_write(&mut bytes, &self.node_label(node.id).to_string())?;
                let label = self.node_label(node.id);
                self.ed.write_pieces(
                    &pieces,
                    &bytes,
                    &crate::ownership::StreamRef::new(
                        self.record,
                        crate::AttributeType::IndexAllocation,
                        self.index_name,
                    ),
                    &label,
                )
            }
            NodeId::Root => {
                let vol = self.ed.vol;
                let base = vol.read_record(self.record)?;
                let mut rec =
                    self.ed
                        .record_holding(&base, AttributeType::IndexRoot, self.index_name)?;
                let attr = rec
                    .find(AttributeType::IndexRoot, self.index_name)?
                    .ok_or_else(|| {
                        NtfsError::damaged(Structure::IndexRoot, "index root vanished")
                    })?;
                let attr_off = attr.offset;
                let value_at = attr.resident_value_offset()?;
                let index_length = node.index_length();
                // The root's allocated size always equals its index length.
                let mut value = node.bytes[..index_root::HEADER + index_length].to_vec();
                put_u32(
                    &mut value,
                    index_root::HEADER + index_header::ALLOCATED_SIZE,
                    index_length as u32,
                );
                resize_resident(&mut rec.bytes, attr_off, value.len())?;
                rec.bytes[value_at..value_at + value.len()].copy_from_slice(&value);
                self.ed.write_record_as(&rec, Some(self.root_part()))
            }
        }
    }

    /// Path from the root to the entry whose key collates equal to `key`: (node, entry index).
    fn find_path(
        &self,
        key: &[u8],
        expect_record: Option<u64>,
    ) -> Result<Vec<(NodeId, usize)>, NtfsError> {
        let idx = self.index()?;
        let up = self.ed.vol.upcase()?;
        let mut path = Vec::new();
        let mut id = NodeId::Root;
        for _ in 0..MAX_DEPTH {
            let node = idx.node(self.ed.vol, id)?;
            let mut next = None;
            for (i, e) in node.entries.iter().enumerate() {
                let ord = if e.is_end {
                    Ordering::Less
                } else {
                    idx.collation.compare(up, key, &e.key_bytes)?
                };
                match ord {
                    Ordering::Greater => continue,
                    Ordering::Equal => {
                        if let Some(r) = expect_record {
                            // $I30 entries start with the file reference; view-index entries
                            // ($O) keep it at the start of their data.
                            let owner = if idx.collation == Collation::FileName {
                                e.file_ref.record
                            } else {
                                let data =
                                    crate::bytes::u64_at(&node.bytes, e.offset + e.data_offset)?;
                                crate::record::FileRef::from_u64(data).record
                            };
                            if owner != r {
                                return Err(NtfsError::damaged(Structure::IndexEntry, format!(
                                    "{}: the index entry for this key belongs to record {owner}, not {r}",
                                    self.label
                                )));
                            }
                        }
                        path.push((id, i));
                        return Ok(path);
                    }
                    Ordering::Less => {
                        path.push((id, i));
                        next = e.subnode;
                        break;
                    }
                }
            }
            match next {
                Some(v) => id = NodeId::Block(v),
                None => {
                    return Err(NtfsError::damaged(
                        Structure::IndexEntry,
                        format!("{}: key not found in index {}", self.label, self.index_name),
                    ))
                }
            }
        }
        Err(NtfsError::damaged(
            Structure::IndexNode,
            format!("{}: index deeper than {MAX_DEPTH}", self.label),
        ))
    }

    /// From block `vcn` down the first (`first == true`) or last child pointers to a leaf.
    /// Returns the node ids visited, the leaf last.
    fn descend(&self, vcn: u64, first: bool) -> Result<Vec<NodeId>, NtfsError> {
        let idx = self.index()?;
        let mut ids = vec![NodeId::Block(vcn)];
        for _ in 0..MAX_DEPTH {
            let node = idx.node(self.ed.vol, *ids.last().expect("not empty"))?;
            let e = if first {
                node.entries.first()
            } else {
                node.entries.last()
            };
            match e.and_then(|e| e.subnode) {
                Some(v) => ids.push(NodeId::Block(v)),
                None => return Ok(ids),
            }
        }
        Err(NtfsError::damaged(
            Structure::IndexNode,
            format!("{}: index deeper than {MAX_DEPTH}", self.label),
        ))
    }

    /// Clears block `vcn`'s bit in the index `$BITMAP`.
    fn free_block(&mut self, vcn: u64) -> Result<(), NtfsError> {
        let idx = self.index()?;
        // Bit k covers byte k·block_size of $INDEX_ALLOCATION.
        let bit = vcn * idx.vcn_unit / idx.block_size as u64;
        let base = self.ed.vol.read_record(self.record)?;
        self.ed.change_bits(
            &base,
            AttributeType::Bitmap,
            self.index_name,
            &[(bit, 1)],
            false,
            super::BitmapName {
                owner: BitmapOwner::IndexBitmap {
                    index: self.index_name.to_string(),
                    of: self.label.clone(),
                },
                structure: Structure::IndexBitmap,
            },
        )
    }

    fn remove(&mut self, key: &[u8], expect_record: Option<u64>) -> Result<(), NtfsError> {
        let path = self.find_path(key, expect_record)?;
        let (nid, i) = *path.last().expect("path is never empty");
        let mut node = self.load(nid)?;
        let parsed = node.parse()?;
        let e = parsed.entries[i].clone();
        let ancestors: Vec<NodeId> = path[..path.len() - 1].iter().map(|(id, _)| *id).collect();
        let Some(child) = e.subnode else {
            // Leaf (a block, or a root that is a leaf).
            node.remove(&e)?;
            if nid != NodeId::Root && node.real_entries()? == 0 {
                let NodeId::Block(vcn) = nid else {
                    unreachable!()
                };
                return self.emptied(ancestors, vcn);
            }
            return self.store(&node);
        };
        // Internal entry: take a donor from a leaf next to it in order.
        let next_child = parsed
            .entries
            .get(i + 1)
            .and_then(|n| n.subnode)
            .ok_or_else(|| {
                NtfsError::damaged(
                    Structure::IndexNode,
                    format!("{}: internal entry without a following child", self.label),
                )
            })?;
        let succ_ids = self.descend(next_child, true)?;
        let pred_ids = self.descend(child, false)?;
        let succ_leaf = self.load(*succ_ids.last().expect("not empty"))?;
        let pred_leaf = self.load(*pred_ids.last().expect("not empty"))?;
        let (ids, mut leaf, first) = if succ_leaf.real_entries()? >= 2 {
            (succ_ids, succ_leaf, true)
        } else if pred_leaf.real_entries()? >= 2 {
            (pred_ids, pred_leaf, false)
        } else {
            (succ_ids, succ_leaf, true)
        };
        let lp = leaf.parse()?;
        let donor = if first {
            lp.entries.iter().find(|x| !x.is_end)
        } else {
            lp.entries.iter().rev().find(|x| !x.is_end)
        }
        .ok_or_else(|| {
            NtfsError::damaged(
                Structure::IndexNode,
                format!("{}: an index leaf has no entries", self.label),
            )
        })?
        .clone();
        let replacement = with_child(&leaf.entry_bytes(&donor), child);
        node.replace(&e, &replacement)?;
        leaf.remove(&donor)?;
        self.store(&node)?;
        if leaf.real_entries()? == 0 {
            let mut leaf_ancestors: Vec<NodeId> = ancestors.clone();
            leaf_ancestors.push(nid);
            leaf_ancestors.extend_from_slice(&ids[..ids.len() - 1]);
            let NodeId::Block(vcn) = leaf.id else {
                unreachable!("leaves below an entry are blocks")
            };
            return self.emptied(leaf_ancestors, vcn);
        }
        self.store(&leaf)
    }

    /// Block `vcn` holds only END now: free it and fix its parent (`ancestors` = root .. parent).
    fn emptied(&mut self, ancestors: Vec<NodeId>, vcn: u64) -> Result<(), NtfsError> {
        self.free_block(vcn)?;
        let pid = *ancestors.last().ok_or_else(|| {
            NtfsError::damaged(Structure::IndexNode, "an emptied block has no parent")
        })?;
        let mut parent = self.load(pid)?;
        let pp = parent.parse()?;
        let j = pp
            .entries
            .iter()
            .position(|x| x.subnode == Some(vcn))
            .ok_or_else(|| {
                NtfsError::damaged_at(
                    Structure::IndexNode,
                    Location::IndexNode {
                        directory: Some(self.record),
                        node: NodeId::Block(vcn),
                    },
                    format!(
                        "{}: no parent entry points at index block VCN {vcn}",
                        self.label
                    ),
                )
            })?;
        let pe = pp.entries[j].clone();
        if !pe.is_end {
            // Take the parent key out and put it back as the first key of the next subtree.
            let key_entry = without_child(&parent.entry_bytes(&pe));
            parent.remove(&pe)?;
            self.refuse_empty_internal(&parent)?;
            let next = parent.parse()?.entries[j].subnode.ok_or_else(|| {
                NtfsError::damaged(
                    Structure::IndexNode,
                    format!(
                        "{}: parent entry after the emptied block has no child",
                        self.label
                    ),
                )
            })?;
            let target_ids = self.descend(next, true)?;
            let mut target = self.load(*target_ids.last().expect("not empty"))?;
            let tp = target.parse()?;
            let first = tp.entries.first().expect("a node always has END").clone();
            target.insert_before(&first, &key_entry)?;
            self.store(&parent)?;
            return self.store(&target);
        }
        if j > 0 {
            // END pointed at the emptied block: END takes the previous entry's child, and that
            // entry's key goes back as the last key of that subtree.
            let prev = pp.entries[j - 1].clone();
            let prev_child = prev.subnode.ok_or_else(|| {
                NtfsError::damaged(
                    Structure::IndexNode,
                    format!("{}: an internal entry has no child", self.label),
                )
            })?;
            let key_entry = without_child(&parent.entry_bytes(&prev));
            let end_new = with_child(&parent.entry_bytes(&pe), prev_child);
            parent.replace(&pe, &end_new)?;
            parent.remove(&prev)?;
            self.refuse_empty_internal(&parent)?;
            let target_ids = self.descend(prev_child, false)?;
            let mut target = self.load(*target_ids.last().expect("not empty"))?;
            let tp = target.parse()?;
            let end = tp.entries.last().expect("a node always has END").clone();
            target.insert_before(&end, &key_entry)?;
            self.store(&parent)?;
            return self.store(&target);
        }
        // The parent has nothing left but END.
        match pid {
            NodeId::Root => {
                // The root becomes a leaf again: END loses its child, LARGE_INDEX is cleared.
                let end_new = without_child(&parent.entry_bytes(&pe));
                parent.replace(&pe, &end_new)?;
                parent.mark_leaf();
                self.store(&parent)
            }
            NodeId::Block(pvcn) => self.emptied(ancestors[..ancestors.len() - 1].to_vec(), pvcn),
        }
    }

    /// An internal block left with only END would be an empty allocated block; merging it away is
    /// not implemented, so refuse. Called after the emptied child's `$BITMAP` bit was cleared in
    /// the overlay (the plan is discarded with it). The root may hold only END with a child.
    fn refuse_empty_internal(&self, node: &NodeBuf) -> Result<(), NtfsError> {
        if node.id != NodeId::Root && node.real_entries()? == 0 {
            return Err(NtfsError::Unsupported(Unsupported::IndexMerge {
                node: node.id,
                directory: self.label.to_string(),
            }));
        }
        Ok(())
    }
}

/// Removes the entry whose key collates equal to `key` from index `index_name` of `record`.
pub(super) fn remove_key<R: ReadAt + WriteAt>(
    ed: &mut Editor<'_, R>,
    record: u64,
    index_name: &str,
    key: &[u8],
    expect_record: Option<u64>,
    label: &IndexOwner,
) -> Result<(), NtfsError> {
    let mut ctx = Ctx {
        ed,
        record,
        index_name,
        label,
    };
    ctx.remove(key, expect_record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_pointer_round_trip() {
        let mut e = vec![0u8; 0x58];
        e[8..10].copy_from_slice(&0x58u16.to_le_bytes());
        let n = with_child(&e, 7);
        assert_eq!(n.len(), 0x60);
        assert_eq!(u16_at(&n, 8).unwrap(), 0x60);
        assert_eq!(
            u16_at(&n, 0x0C).unwrap() & index_entry::FLAG_NODE,
            index_entry::FLAG_NODE
        );
        assert_eq!(&n[0x58..], &7u64.to_le_bytes());
        let again = with_child(&n, 9);
        assert_eq!(again.len(), 0x60);
        assert_eq!(&again[0x58..], &9u64.to_le_bytes());
        assert_eq!(without_child(&n), e);
    }
}
