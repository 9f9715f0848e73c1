//! Update sequence arrays ("fixups") of multi-sector records (`FILE`, `INDX`, `RSTR`, `RCRD`).
//! The last u16 of every 512-byte stride on disk holds the update sequence number; the true bytes
//! live in the array. The stride is 512 bytes whatever the sector size.

use crate::bytes::u16_at;
use crate::layout::multi_sector;
use crate::NtfsError;
use crate::Structure;

/// Bytes each update sequence number protects, whatever the sector size.
pub const STRIDE: usize = 512;

/// Checks and removes the fixups of `rec` in place. `what` names the record for error messages.
pub fn apply_read(rec: &mut [u8], what: &str) -> Result<(), NtfsError> {
    let usa_ofs = u16_at(rec, multi_sector::USA_OFFSET)? as usize;
    let usa_count = u16_at(rec, multi_sector::USA_COUNT)? as usize;
    let strides = rec.len() / STRIDE;
    if usa_count == 0 || usa_count - 1 != strides || rec.len() & (STRIDE - 1) != 0 {
        return Err(NtfsError::damaged(
            Structure::UpdateSequence,
            format!(
                "{what}: update sequence array has {usa_count} entries for a {}-byte record",
                rec.len()
            ),
        ));
    }
    // The array lies after the 8-byte header holding its own offset and count: one overlapping
    // them would be rewritten by the next write of the record.
    if usa_ofs & 1 != 0
        || usa_ofs < multi_sector::HEADER_LENGTH
        || usa_ofs + 2 * usa_count > STRIDE - 2
    {
        return Err(NtfsError::damaged(
            Structure::UpdateSequence,
            format!("{what}: update sequence array offset {usa_ofs} is invalid"),
        ));
    }
    let usn = u16_at(rec, usa_ofs)?;
    for i in 0..strides {
        let end = (i + 1) * STRIDE - 2;
        if u16_at(rec, end)? != usn {
            return Err(NtfsError::damaged(Structure::UpdateSequence, format!(
                "{what}: sector {i} does not end with the update sequence number (a torn write or damage)"
            )));
        }
        let saved = usa_ofs + 2 + 2 * i;
        rec[end] = rec[saved];
        rec[end + 1] = rec[saved + 1];
    }
    Ok(())
}

/// The next update sequence number. Kept in 1..=0x7FFF, which both Windows and the Linux drivers
/// accept (readers only test equality).
pub fn next_usn(usn: u16) -> u16 {
    if usn == 0 || usn >= 0x7FFF {
        1
    } else {
        usn + 1
    }
}

/// Prepares a fixed-up record for writing: a new update sequence number goes at the end of every
/// 512-byte stride and the true words move into the array. `rec` is turned into on-disk bytes.
pub fn apply_write(rec: &mut [u8], what: &str) -> Result<(), NtfsError> {
    let usa_ofs = u16_at(rec, multi_sector::USA_OFFSET)? as usize;
    let usa_count = u16_at(rec, multi_sector::USA_COUNT)? as usize;
    let strides = rec.len() / STRIDE;
    if usa_count == 0
        || usa_count - 1 != strides
        || usa_ofs < multi_sector::HEADER_LENGTH
        || usa_ofs + 2 * usa_count > STRIDE - 2
    {
        return Err(NtfsError::damaged(
            Structure::UpdateSequence,
            format!("{what}: update sequence array does not fit the record"),
        ));
    }
    let usn = next_usn(u16_at(rec, usa_ofs)?);
    rec[usa_ofs..usa_ofs + 2].copy_from_slice(&usn.to_le_bytes());
    for i in 0..strides {
        let end = (i + 1) * STRIDE - 2;
        let saved = usa_ofs + 2 + 2 * i;
        rec[saved] = rec[end];
        rec[saved + 1] = rec[end + 1];
        rec[end..end + 2].copy_from_slice(&usn.to_le_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips() {
        let mut rec = vec![0u8; 1024];
        rec[0..4].copy_from_slice(b"FILE");
        rec[4..6].copy_from_slice(&0x30u16.to_le_bytes());
        rec[6..8].copy_from_slice(&3u16.to_le_bytes());
        rec[0x30..0x32].copy_from_slice(&0x7FFFu16.to_le_bytes());
        rec[510] = 0xAB;
        rec[511] = 0xCD;
        rec[1022] = 0x12;
        let original = rec.clone();
        apply_write(&mut rec, "test").unwrap();
        assert_eq!(u16_at(&rec, 0x30).unwrap(), 1, "USN wraps from 0x7FFF to 1");
        assert_eq!(u16_at(&rec, 510).unwrap(), 1);
        assert_eq!(u16_at(&rec, 1022).unwrap(), 1);
        apply_read(&mut rec, "test").unwrap();
        assert_eq!(rec[..0x30], original[..0x30]);
        assert_eq!(rec[0x36..], original[0x36..]);
        assert_eq!(next_usn(5), 6);
        assert_eq!(next_usn(0), 1);
    }
}
