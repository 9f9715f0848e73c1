//! Key nodes (`nk` cells, format 1.2 and later).
//!
//! Layout of the cell data: `nk` at 0, flags at 2 (0x20: the name is Latin-1, else UTF-16LE),
//! last-written FILETIME at 4, parent key cell at 16, number of subkeys at 20, subkey list cell
//! at 28, number of values at 36, value list cell at 40, name length in bytes at 72, name at 76.
//! Volatile subkeys (counted at 24, listed at 32) exist only in memory and are never on disk.

use crate::bytes::{u16_at, u32_at};
use crate::cell::{file_offset, read_cell};
use crate::error::{HiveError, HiveStructure};
use crate::name::stored_name;
use kaifuku_io::ReadAt;

const FIXED: usize = 76;
/// Flag: the name is stored as Latin-1 bytes.
const COMPRESSED_NAME: u16 = 0x0020;

/// A key node's fields that lookups need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNode {
    /// The cell the node is in.
    pub cell: u32,
    /// Its name (UTF-16 units).
    pub name: Vec<u16>,
    /// How many subkeys it has.
    pub subkey_count: u32,
    /// The cell of its subkey list (`NO_CELL` when none).
    pub subkey_list: u32,
    /// How many values it has.
    pub value_count: u32,
    /// The cell of its value list (`NO_CELL` when none).
    pub value_list: u32,
    /// When it was last written (FILETIME).
    pub last_written: u64,
}

impl KeyNode {
    /// Reads the key node in cell `cell`.
    pub(crate) fn read<R: ReadAt>(
        reader: &R,
        bins_size: u32,
        cell: u32,
    ) -> Result<KeyNode, HiveError> {
        let data = read_cell(reader, bins_size, cell, HiveStructure::KeyNode)?;
        KeyNode::parse(cell, &data)
    }

    /// Parses the data of cell `cell`.
    pub fn parse(cell: u32, data: &[u8]) -> Result<KeyNode, HiveError> {
        let at = file_offset(cell);
        let damaged = |detail: String| HiveError::damaged(HiveStructure::KeyNode, at, detail);
        if data.len() < FIXED || &data[0..2] != b"nk" {
            return Err(damaged(format!(
                "the cell at {cell:#x} is not a key node (it starts {:02x?})",
                &data[..data.len().min(2)]
            )));
        }
        let flags = u16_at(data, 2);
        let name_len = usize::from(u16_at(data, 72));
        let name =
            stored_name(data, FIXED, name_len, flags & COMPRESSED_NAME != 0).map_err(damaged)?;
        Ok(KeyNode {
            cell,
            name,
            subkey_count: u32_at(data, 20),
            subkey_list: u32_at(data, 28),
            value_count: u32_at(data, 36),
            value_list: u32_at(data, 40),
            last_written: crate::bytes::u64_at(data, 4),
        })
    }
}
