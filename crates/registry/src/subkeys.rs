//! Subkey lists: the leaves `lf` (element: key cell + the name's first four characters), `lh`
//! (key cell + a hash of the whole name), `li` (key cell only), and the index `ri`, whose elements
//! are leaf lists (never another index). Layout of each: a two-byte signature, a 16-bit element
//! count, then the elements.
//!
//! A lookup reads the list (and, for an index, its leaves), then only the key nodes whose hint
//! matches the wanted name; the others are read only when none of those is the key, so a damaged
//! hint cannot turn "present" into "missing".

use crate::bytes::{u16_at, u32_at};
use crate::cell::{file_offset, read_cell, NO_CELL};
use crate::error::{HiveError, HiveStructure};
use crate::key::KeyNode;
use crate::name::{lf_hint_matches, lh_hash, same_name};
use kaifuku_io::ReadAt;

/// Most subkeys one key may list (real hives stay far below: the largest keys of a SOFTWARE hive,
/// such as `Classes\CLSID`, hold some ten thousand).
pub const MAX_SUBKEYS: u32 = 1 << 18;

/// What a leaf element says about the name of the key it points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameHint {
    /// `li`: nothing.
    None,
    /// `lf`: the first four characters.
    Prefix(u32),
    /// `lh`: the hash of the upper-cased name.
    Hash(u32),
}

impl NameHint {
    fn matches(self, name: &[u16]) -> bool {
        match self {
            NameHint::None => true,
            NameHint::Prefix(hint) => lf_hint_matches(hint, name),
            NameHint::Hash(h) => h == lh_hash(name),
        }
    }
}

/// One element of a leaf list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafEntry {
    /// The key node's cell.
    pub cell: u32,
    /// What the list says of its name.
    pub hint: NameHint,
}

/// A subkey list cell, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubkeyList {
    /// `lf`, `lh` or `li`: the keys themselves.
    Leaf(Vec<LeafEntry>),
    /// `ri`: the cells of leaf lists.
    Index(Vec<u32>),
}

impl SubkeyList {
    /// Parses the data of cell `cell`.
    pub fn parse(cell: u32, data: &[u8]) -> Result<SubkeyList, HiveError> {
        let at = file_offset(cell);
        if data.len() < 4 {
            return Err(HiveError::damaged(
                HiveStructure::SubkeyList,
                at,
                "the cell is too small for a list header",
            ));
        }
        let count = usize::from(u16_at(data, 2));
        let sig = [data[0], data[1]];
        let width = match &sig {
            b"lf" | b"lh" => 8,
            b"li" | b"ri" => 4,
            _ => {
                return Err(HiveError::damaged(
                    HiveStructure::SubkeyList,
                    at,
                    format!("the cell at {cell:#x} is not a subkey list (it starts {sig:02x?})"),
                ))
            }
        };
        if 4 + count * width > data.len() {
            return Err(HiveError::damaged(
                HiveStructure::SubkeyList,
                at,
                format!(
                    "its {count} elements do not fit in the {}-byte cell",
                    data.len()
                ),
            ));
        }
        let element = |i: usize| 4 + i * width;
        Ok(match &sig {
            b"ri" => SubkeyList::Index((0..count).map(|i| u32_at(data, element(i))).collect()),
            _ => SubkeyList::Leaf(
                (0..count)
                    .map(|i| {
                        let e = element(i);
                        let hint = match &sig {
                            b"lf" => NameHint::Prefix(u32_at(data, e + 4)),
                            b"lh" => NameHint::Hash(u32_at(data, e + 4)),
                            _ => NameHint::None,
                        };
                        LeafEntry {
                            cell: u32_at(data, e),
                            hint,
                        }
                    })
                    .collect(),
            ),
        })
    }
}

/// Every leaf element of `parent`'s subkey list, its index resolved. The number must be the
/// key's subkey count: a list that disagrees with its key could hide the key looked for.
pub(crate) fn subkey_entries<R: ReadAt>(
    reader: &R,
    bins_size: u32,
    parent: &KeyNode,
) -> Result<Vec<LeafEntry>, HiveError> {
    if parent.subkey_count == 0 {
        return Ok(Vec::new());
    }
    let at = file_offset(parent.cell);
    if parent.subkey_count > MAX_SUBKEYS {
        return Err(HiveError::TooMany {
            structure: HiveStructure::KeyNode,
            offset: at,
            count: u64::from(parent.subkey_count),
            limit: u64::from(MAX_SUBKEYS),
        });
    }
    if parent.subkey_list == NO_CELL {
        return Err(HiveError::damaged(
            HiveStructure::KeyNode,
            at,
            format!(
                "it counts {} subkeys but has no subkey list",
                parent.subkey_count
            ),
        ));
    }
    let list_cell = parent.subkey_list;
    let data = read_cell(reader, bins_size, list_cell, HiveStructure::SubkeyList)?;
    let entries = match SubkeyList::parse(list_cell, &data)? {
        SubkeyList::Leaf(entries) => entries,
        SubkeyList::Index(leaves) => {
            let mut all = Vec::new();
            for leaf in leaves {
                let data = read_cell(reader, bins_size, leaf, HiveStructure::SubkeyList)?;
                match SubkeyList::parse(leaf, &data)? {
                    SubkeyList::Leaf(entries) => all.extend(entries),
                    SubkeyList::Index(_) => {
                        return Err(HiveError::damaged(
                            HiveStructure::SubkeyList,
                            file_offset(leaf),
                            "an index (ri) lists another index; only leaf lists may be listed",
                        ))
                    }
                }
                if all.len() > parent.subkey_count as usize {
                    break;
                }
            }
            all
        }
    };
    if entries.len() != parent.subkey_count as usize {
        return Err(HiveError::damaged(
            HiveStructure::SubkeyList,
            file_offset(list_cell),
            format!(
                "the list holds {}{} keys but its key counts {}",
                entries.len().min(parent.subkey_count as usize + 1),
                if entries.len() > parent.subkey_count as usize {
                    " or more"
                } else {
                    ""
                },
                parent.subkey_count
            ),
        ));
    }
    Ok(entries)
}

/// The subkey of `parent` named `name` (ignoring case), or `None` when it has none of that name.
pub(crate) fn find_subkey<R: ReadAt>(
    reader: &R,
    bins_size: u32,
    parent: &KeyNode,
    name: &[u16],
) -> Result<Option<KeyNode>, HiveError> {
    let entries = subkey_entries(reader, bins_size, parent)?;
    let (likely, others): (Vec<LeafEntry>, Vec<LeafEntry>) =
        entries.into_iter().partition(|e| e.hint.matches(name));
    for entry in likely.iter().chain(&others) {
        let key = KeyNode::read(reader, bins_size, entry.cell)?;
        if same_name(&key.name, name) {
            return Ok(Some(key));
        }
    }
    Ok(None)
}
