//! Values: a key's value list (a cell of 32-bit value key cells), value keys (`vk`), and their
//! data.
//!
//! `vk` layout: `vk` at 0, name length at 2, data size at 4 (bit 31 set: up to four bytes of
//! data are kept in the data-offset field itself), data cell at 8, type at 12, flags at 16 (bit
//! 0: the name is Latin-1, else UTF-16LE), name at 20. Data larger than 16344 bytes in a hive of
//! format 1.4 or later is kept in big-data segments: a `db` cell (`db`, segment count, the cell
//! of the segment list), the list, and segments of up to 16344 bytes each.

use crate::bytes::{u16_at, u32_at};
use crate::cell::{file_offset, read_cell, NO_CELL};
use crate::error::{HiveError, HiveStructure};
use crate::key::KeyNode;
use crate::name::{display, same_name, stored_name};
use kaifuku_io::ReadAt;
use serde::Serialize;

const VK_FIXED: usize = 20;
const DATA_INLINE: u32 = 0x8000_0000;
const COMPRESSED_NAME: u16 = 0x0001;
/// Most values one key may list.
pub const MAX_VALUES: u32 = 1 << 16;
/// Largest value data read (1 MiB): more than any value this reader is asked for.
pub const MAX_VALUE_DATA: u32 = 1 << 20;
/// Largest big-data segment.
const SEGMENT_SIZE: usize = 16344;

/// `REG_SZ`: a UTF-16LE string.
pub const REG_SZ: u32 = 1;
/// `REG_EXPAND_SZ`: a UTF-16LE string with `%VARIABLES%`.
pub const REG_EXPAND_SZ: u32 = 2;
/// `REG_DWORD`: a 32-bit little-endian integer.
pub const REG_DWORD: u32 = 4;

/// A value: its name, type and data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Value {
    /// The value's name (empty for the key's default value).
    pub name: String,
    /// Its registry type (`REG_*` code).
    pub value_type: u32,
    /// Its data.
    pub data: Vec<u8>,
}

impl Value {
    /// The data of a `REG_SZ` or `REG_EXPAND_SZ` value, up to its first NUL.
    pub fn as_string(&self) -> Result<String, HiveError> {
        if self.value_type != REG_SZ && self.value_type != REG_EXPAND_SZ {
            return Err(HiveError::WrongType {
                name: self.name.clone(),
                found: self.value_type,
                expected: REG_SZ,
            });
        }
        let units: Vec<u16> = self
            .data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        Ok(String::from_utf16_lossy(&units))
    }

    /// The data of a `REG_DWORD` value.
    pub fn as_dword(&self) -> Result<u32, HiveError> {
        match (self.value_type, self.data.as_slice()) {
            (REG_DWORD, [a, b, c, d]) => Ok(u32::from_le_bytes([*a, *b, *c, *d])),
            _ => Err(HiveError::WrongType {
                name: self.name.clone(),
                found: self.value_type,
                expected: REG_DWORD,
            }),
        }
    }
}

/// A value key's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueKey {
    /// The cell it is in.
    pub cell: u32,
    /// Its name (UTF-16 units).
    pub name: Vec<u16>,
    /// The data size field as stored (bit 31: the data is in `data_cell` itself).
    pub data_size: u32,
    /// The data's cell, or the data itself.
    pub data_cell: u32,
    /// The registry type.
    pub value_type: u32,
}

impl ValueKey {
    /// Parses the data of cell `cell`.
    pub fn parse(cell: u32, data: &[u8]) -> Result<ValueKey, HiveError> {
        let at = file_offset(cell);
        let damaged = |detail: String| HiveError::damaged(HiveStructure::ValueKey, at, detail);
        if data.len() < VK_FIXED || &data[0..2] != b"vk" {
            return Err(damaged(format!(
                "the cell at {cell:#x} is not a value key (it starts {:02x?})",
                &data[..data.len().min(2)]
            )));
        }
        let name_len = usize::from(u16_at(data, 2));
        let flags = u16_at(data, 16);
        let name =
            stored_name(data, VK_FIXED, name_len, flags & COMPRESSED_NAME != 0).map_err(damaged)?;
        Ok(ValueKey {
            cell,
            name,
            data_size: u32_at(data, 4),
            data_cell: u32_at(data, 8),
            value_type: u32_at(data, 12),
        })
    }
}

/// The value key cells of `key`'s value list.
fn value_cells<R: ReadAt>(
    reader: &R,
    bins_size: u32,
    key: &KeyNode,
) -> Result<Vec<u32>, HiveError> {
    if key.value_count == 0 {
        return Ok(Vec::new());
    }
    let at = file_offset(key.cell);
    if key.value_count > MAX_VALUES {
        return Err(HiveError::TooMany {
            structure: HiveStructure::KeyNode,
            offset: at,
            count: u64::from(key.value_count),
            limit: u64::from(MAX_VALUES),
        });
    }
    if key.value_list == NO_CELL {
        return Err(HiveError::damaged(
            HiveStructure::KeyNode,
            at,
            format!("it counts {} values but has no value list", key.value_count),
        ));
    }
    let data = read_cell(reader, bins_size, key.value_list, HiveStructure::ValueList)?;
    let count = key.value_count as usize;
    if count * 4 > data.len() {
        return Err(HiveError::damaged(
            HiveStructure::ValueList,
            file_offset(key.value_list),
            format!(
                "its key counts {count} values, more than the {}-byte list holds",
                data.len()
            ),
        ));
    }
    Ok((0..count).map(|i| u32_at(&data, i * 4)).collect())
}

/// The value of `key` named `name` (ignoring case; empty for the default value), or `None`.
pub(crate) fn find_value<R: ReadAt>(
    reader: &R,
    bins_size: u32,
    big_data: bool,
    key: &KeyNode,
    name: &[u16],
) -> Result<Option<Value>, HiveError> {
    for cell in value_cells(reader, bins_size, key)? {
        let data = read_cell(reader, bins_size, cell, HiveStructure::ValueKey)?;
        let vk = ValueKey::parse(cell, &data)?;
        if same_name(&vk.name, name) {
            let data = value_data(reader, bins_size, big_data, &vk)?;
            return Ok(Some(Value {
                name: display(&vk.name),
                value_type: vk.value_type,
                data,
            }));
        }
    }
    Ok(None)
}

/// The data of a value key.
pub(crate) fn value_data<R: ReadAt>(
    reader: &R,
    bins_size: u32,
    big_data: bool,
    vk: &ValueKey,
) -> Result<Vec<u8>, HiveError> {
    let at = file_offset(vk.cell);
    if vk.data_size & DATA_INLINE != 0 {
        let len = (vk.data_size & !DATA_INLINE) as usize;
        if len > 4 {
            return Err(HiveError::damaged(
                HiveStructure::ValueKey,
                at,
                format!("its data is marked as kept in the key itself, but is {len} bytes long (at most 4 fit)"),
            ));
        }
        return Ok(vk.data_cell.to_le_bytes()[..len].to_vec());
    }
    let size = vk.data_size;
    if size == 0 {
        return Ok(Vec::new());
    }
    if size > MAX_VALUE_DATA {
        return Err(HiveError::TooMany {
            structure: HiveStructure::ValueData,
            offset: at,
            count: u64::from(size),
            limit: u64::from(MAX_VALUE_DATA),
        });
    }
    let size = size as usize;
    let cell = read_cell(reader, bins_size, vk.data_cell, HiveStructure::ValueData)?;
    if big_data && size > SEGMENT_SIZE && cell.starts_with(b"db") {
        return big_data_segments(reader, bins_size, vk.data_cell, &cell, size);
    }
    match cell.get(..size) {
        Some(d) => Ok(d.to_vec()),
        None => Err(HiveError::damaged(
            HiveStructure::ValueData,
            file_offset(vk.data_cell),
            format!(
                "the value claims {size} bytes of data but its cell holds {}",
                cell.len()
            ),
        )),
    }
}

/// The data of a value kept in big-data segments (`db`).
fn big_data_segments<R: ReadAt>(
    reader: &R,
    bins_size: u32,
    db_cell: u32,
    db: &[u8],
    size: usize,
) -> Result<Vec<u8>, HiveError> {
    let at = file_offset(db_cell);
    if db.len() < 8 {
        return Err(HiveError::damaged(
            HiveStructure::ValueData,
            at,
            "the big-data cell is too small",
        ));
    }
    let segments = usize::from(u16_at(db, 2));
    let needed = size.div_ceil(SEGMENT_SIZE);
    if segments < needed {
        return Err(HiveError::damaged(
            HiveStructure::ValueData,
            at,
            format!("{segments} big-data segments cannot hold {size} bytes"),
        ));
    }
    let list_cell = u32_at(db, 4);
    let list = read_cell(reader, bins_size, list_cell, HiveStructure::ValueData)?;
    if list.len() < needed * 4 {
        return Err(HiveError::damaged(
            HiveStructure::ValueData,
            file_offset(list_cell),
            "the big-data segment list is shorter than its segment count",
        ));
    }
    let mut out = Vec::with_capacity(size);
    for i in 0..needed {
        let seg_cell = u32_at(&list, i * 4);
        let seg = read_cell(reader, bins_size, seg_cell, HiveStructure::ValueData)?;
        let take = (size - out.len()).min(SEGMENT_SIZE);
        let Some(part) = seg.get(..take) else {
            return Err(HiveError::damaged(
                HiveStructure::ValueData,
                file_offset(seg_cell),
                format!(
                    "a big-data segment holds {} bytes, fewer than the {take} it must",
                    seg.len()
                ),
            ));
        };
        out.extend_from_slice(part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Puts an in-use cell holding `payload` at offset `cell` of the hive bins in `file`.
    fn put_cell(file: &mut Vec<u8>, cell: u32, payload: &[u8]) -> u32 {
        let size = (4 + payload.len()).div_ceil(8) * 8;
        let at = 4096 + cell as usize;
        if file.len() < at + size {
            file.resize(at + size, 0);
        }
        file[at..at + 4].copy_from_slice(&(-(size as i32)).to_le_bytes());
        file[at + 4..at + 4 + payload.len()].copy_from_slice(payload);
        cell + size as u32
    }

    /// A value kept in two big-data segments reads as their data joined, cut at its size; a
    /// segment list shorter than the value needs is damage.
    #[test]
    fn big_data_segments_are_joined() {
        let first: Vec<u8> = (0..SEGMENT_SIZE).map(|i| (i % 251) as u8).collect();
        let second: Vec<u8> = (0..SEGMENT_SIZE).map(|i| (i % 241) as u8).collect();
        let size = SEGMENT_SIZE + 3656;
        let mut file = vec![0u8; 4096];
        let db = 0x20;
        let list = put_cell(
            &mut file,
            db,
            &[
                b"db".as_slice(),
                &2u16.to_le_bytes(),
                &0x30u32.to_le_bytes(),
                &[0; 4],
            ]
            .concat(),
        );
        assert_eq!(list, 0x30);
        let seg1 = put_cell(
            &mut file,
            list,
            &[0x40u32.to_le_bytes(), 0u32.to_le_bytes()].concat(),
        );
        let seg2 = put_cell(&mut file, seg1, &first);
        put_cell(&mut file, seg2, &second);
        // The second element of the list, now that its cell is known.
        file[4096 + 0x30 + 8..4096 + 0x30 + 12].copy_from_slice(&seg2.to_le_bytes());
        file.resize(file.len().div_ceil(4096) * 4096, 0);
        let bins = (file.len() - 4096) as u32;
        let vk = ValueKey {
            cell: 0x8,
            name: Vec::new(),
            data_size: size as u32,
            data_cell: db,
            value_type: 3,
        };
        let data = value_data(&file.as_slice(), bins, true, &vk).unwrap();
        assert_eq!(data.len(), size);
        assert_eq!(&data[..SEGMENT_SIZE], first.as_slice());
        assert_eq!(&data[SEGMENT_SIZE..], &second[..3656]);
        // One segment listed where two are needed.
        file[4096 + db as usize + 6..4096 + db as usize + 8].copy_from_slice(&1u16.to_le_bytes());
        assert!(matches!(
            value_data(&file.as_slice(), bins, true, &vk),
            Err(HiveError::Damaged {
                structure: HiveStructure::ValueData,
                ..
            })
        ));
    }

    #[test]
    fn small_data_is_kept_in_the_key() {
        let vk = ValueKey {
            cell: 0x20,
            name: Vec::new(),
            data_size: 0x8000_0004,
            data_cell: 17763,
            value_type: REG_DWORD,
        };
        let file = vec![0u8; 8192];
        let data = value_data(&file.as_slice(), 4096, true, &vk).unwrap();
        let value = Value {
            name: String::new(),
            value_type: REG_DWORD,
            data,
        };
        assert_eq!(value.as_dword().unwrap(), 17763);
        let too_long = ValueKey {
            data_size: 0x8000_0005,
            ..vk
        };
        assert!(value_data(&file.as_slice(), 4096, true, &too_long).is_err());
    }
}
