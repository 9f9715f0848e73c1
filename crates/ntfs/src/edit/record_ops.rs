//! Byte-level changes inside a fixed-up file record: resizing a resident value and removing an
//! attribute, keeping `bytes_in_use`, the attribute lengths and the end marker consistent.

use crate::bytes::{put_u32, u16_at, u32_at};
use crate::layout::{attribute, file_record};
use crate::NtfsError;
use crate::Unsupported;
use crate::{Location, Structure};

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Changes the value length of the resident attribute at `attr_off` to `new_len`, moving the
/// following attributes. Growing zero-fills the new bytes. Fails when the record has no room.
pub fn resize_resident(rec: &mut [u8], attr_off: usize, new_len: usize) -> Result<(), NtfsError> {
    let used = u32_at(rec, file_record::BYTES_IN_USE)? as usize;
    let allocated = u32_at(rec, file_record::BYTES_ALLOCATED)? as usize;
    let attr_len = u32_at(rec, attr_off + attribute::LENGTH)? as usize;
    let value_off = u16_at(rec, attr_off + attribute::resident::VALUE_OFFSET)? as usize;
    let old_len = u32_at(rec, attr_off + attribute::resident::VALUE_LENGTH)? as usize;
    if rec[attr_off + attribute::NON_RESIDENT] != 0 || value_off + old_len > attr_len {
        return Err(NtfsError::damaged_at(
            Structure::Attribute,
            Location::RecordOffset {
                offset: attr_off as u64,
            },
            format!("attribute at {attr_off} is not a sane resident attribute"),
        ));
    }
    let new_attr_len = align8(value_off + new_len);
    let new_used = used + new_attr_len - attr_len;
    if new_used > allocated.min(rec.len()) {
        return Err(NtfsError::Unsupported(Unsupported::RecordFull {
            grow_by: (new_attr_len - attr_len) as u64,
        }));
    }
    let tail_from = attr_off + attr_len;
    let tail = rec[tail_from..used].to_vec();
    let value_end_old = attr_off + value_off + old_len;
    if new_len < old_len {
        // Shrink: drop the value's tail.
        rec[attr_off + value_off + new_len..value_end_old].fill(0);
    } else {
        rec[value_end_old..attr_off + value_off + new_len].fill(0);
    }
    // Padding between the value and the next attribute is zero.
    rec[attr_off + value_off + new_len..attr_off + new_attr_len].fill(0);
    rec[attr_off + new_attr_len..attr_off + new_attr_len + tail.len()].copy_from_slice(&tail);
    if new_used < used {
        rec[new_used..used].fill(0);
    }
    put_u32(rec, attr_off + attribute::LENGTH, new_attr_len as u32);
    put_u32(
        rec,
        attr_off + attribute::resident::VALUE_LENGTH,
        new_len as u32,
    );
    put_u32(rec, file_record::BYTES_IN_USE, new_used as u32);
    Ok(())
}

/// Removes the attribute at `attr_off`, moving the rest (and the end marker) up.
pub fn remove_attribute(rec: &mut [u8], attr_off: usize) -> Result<(), NtfsError> {
    let used = u32_at(rec, file_record::BYTES_IN_USE)? as usize;
    let attr_len = u32_at(rec, attr_off + attribute::LENGTH)? as usize;
    if attr_len == 0 || attr_off + attr_len > used {
        return Err(NtfsError::damaged_at(
            Structure::Attribute,
            Location::RecordOffset {
                offset: attr_off as u64,
            },
            format!("attribute at {attr_off} has length {attr_len}"),
        ));
    }
    let tail = rec[attr_off + attr_len..used].to_vec();
    rec[attr_off..attr_off + tail.len()].copy_from_slice(&tail);
    let new_used = used - attr_len;
    rec[new_used..used].fill(0);
    put_u32(rec, file_record::BYTES_IN_USE, new_used as u32);
    Ok(())
}
