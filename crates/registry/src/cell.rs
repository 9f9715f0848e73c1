//! Cells of the hive bins: a signed 32-bit size (negative when the cell is in use, including the
//! size word itself, a multiple of 8) followed by the cell's data.
//!
//! Cells are found by their offset from the start of the hive bins (the end of the base block).
//! Only the cells a lookup needs are read, each with two reads (its size, then its data), so a
//! 100 MB hive costs a few dozen small reads; hive bin headers are not read.

use crate::base_block::BASE_BLOCK_SIZE;
use crate::error::{HiveError, HiveStructure};
use kaifuku_io::ReadAt;

/// The offset that means "no cell" in a key's list fields.
pub const NO_CELL: u32 = 0xFFFF_FFFF;
/// Largest cell read (1 MiB). Windows keeps cells of one value's data under 16 KiB and a list of
/// 100 000 subkeys in under 1 MiB; a larger size is damage.
pub const MAX_CELL_SIZE: u32 = 1 << 20;

/// The file offset of the cell at `cell` (an offset in the hive bins).
pub fn file_offset(cell: u32) -> u64 {
    BASE_BLOCK_SIZE + u64::from(cell)
}

/// Reads the data of the in-use cell at `cell`, which must lie inside the `bins_size` bytes of
/// hive bins. `structure` is what the caller expects there, for the error.
pub(crate) fn read_cell<R: ReadAt>(
    reader: &R,
    bins_size: u32,
    cell: u32,
    structure: HiveStructure,
) -> Result<Vec<u8>, HiveError> {
    let at = file_offset(cell);
    let damaged = |detail: String| HiveError::damaged(structure, at, detail);
    if cell == NO_CELL || cell % 8 != 0 || cell.checked_add(8).is_none_or(|end| end > bins_size) {
        return Err(damaged(format!(
            "the cell offset {cell:#x} is not an 8-byte-aligned offset inside the {bins_size} bytes of hive bins"
        )));
    }
    let mut size_word = [0u8; 4];
    read(reader, at, &mut size_word)?;
    let raw = i32::from_le_bytes(size_word);
    if raw >= 0 {
        return Err(damaged(format!(
            "the cell at {cell:#x} is free (size word {raw}), not a {structure}"
        )));
    }
    let size = raw.unsigned_abs();
    if size < 8 || size % 8 != 0 || size > MAX_CELL_SIZE {
        return Err(HiveError::damaged(
            HiveStructure::Cell,
            at,
            format!("the cell at {cell:#x} claims {size} bytes (cells are 8 to {MAX_CELL_SIZE} bytes, in multiples of 8)"),
        ));
    }
    if u64::from(cell) + u64::from(size) > u64::from(bins_size) {
        return Err(HiveError::damaged(
            HiveStructure::Cell,
            at,
            format!(
                "the cell at {cell:#x} of {size} bytes runs past the {bins_size} bytes of hive bins"
            ),
        ));
    }
    let mut data = vec![0u8; size as usize - 4];
    read(reader, at + 4, &mut data)?;
    Ok(data)
}

/// One read of the hive file, its failure worded with the offset.
pub(crate) fn read<R: ReadAt>(reader: &R, offset: u64, buf: &mut [u8]) -> Result<(), HiveError> {
    reader.read_at(offset, buf).map_err(|e| HiveError::Read {
        offset,
        detail: e.to_string(),
    })
}
