//! Update sequence arrays ("fixups") of multi-sector records (`FILE`, `INDX`, `RSTR`, `RCRD`).
//! The last u16 of every 512-byte stride on disk holds the update sequence number; the true bytes
//! live in the array. The stride is 512 bytes whatever the sector size.

use crate::bytes::u16_at;
use crate::NtfsError;

pub const STRIDE: usize = 512;

/// Checks and removes the fixups of `rec` in place. `what` names the record for error messages.
pub fn apply_read(rec: &mut [u8], what: &str) -> Result<(), NtfsError> {
    let usa_ofs = u16_at(rec, 4)? as usize;
    let usa_count = u16_at(rec, 6)? as usize;
    let strides = rec.len() / STRIDE;
    if usa_count == 0 || usa_count - 1 != strides || rec.len() % STRIDE != 0 {
        return Err(NtfsError::Corrupt(format!(
            "{what}: update sequence array has {usa_count} entries for a {}-byte record",
            rec.len()
        )));
    }
    if usa_ofs % 2 != 0 || usa_ofs + 2 * usa_count > STRIDE - 2 {
        return Err(NtfsError::Corrupt(format!("{what}: update sequence array offset {usa_ofs} is invalid")));
    }
    let usn = u16_at(rec, usa_ofs)?;
    for i in 0..strides {
        let end = (i + 1) * STRIDE - 2;
        if u16_at(rec, end)? != usn {
            return Err(NtfsError::Corrupt(format!(
                "{what}: sector {i} does not end with the update sequence number (a torn write or damage)"
            )));
        }
        let saved = usa_ofs + 2 + 2 * i;
        rec[end] = rec[saved];
        rec[end + 1] = rec[saved + 1];
    }
    Ok(())
}
