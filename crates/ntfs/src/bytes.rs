//! Little-endian field access with bounds checks: on-disk structures come from damaged images, so
//! every read of a field is checked and a short buffer is an error, never a panic.

use crate::NtfsError;
use crate::Structure;

pub(crate) fn u8_at(b: &[u8], off: usize) -> Result<u8, NtfsError> {
    b.get(off).copied().ok_or_else(|| short(off, 1, b.len()))
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> Result<u16, NtfsError> {
    Ok(u16::from_le_bytes(arr(b, off)?))
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Result<u32, NtfsError> {
    Ok(u32::from_le_bytes(arr(b, off)?))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Result<u64, NtfsError> {
    Ok(u64::from_le_bytes(arr(b, off)?))
}

pub(crate) fn slice(b: &[u8], off: usize, len: usize) -> Result<&[u8], NtfsError> {
    off.checked_add(len)
        .and_then(|end| b.get(off..end))
        .ok_or_else(|| short(off, len, b.len()))
}

fn arr<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N], NtfsError> {
    let s = slice(b, off, N)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Ok(a)
}

fn short(off: usize, len: usize, have: usize) -> NtfsError {
    NtfsError::damaged(
        Structure::Unknown,
        format!("a structure field at byte {off} (+{len}) lies outside its {have}-byte buffer"),
    )
}

/// Writes a u16 field of a buffer already read (and so checked) as holding it.
pub(crate) fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes a u32 field of a buffer already read (and so checked) as holding it.
pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes a u64 field of a buffer already read (and so checked) as holding it.
pub(crate) fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Decodes a UTF-16LE name for display (unpaired surrogates become U+FFFD).
pub(crate) fn utf16_name(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

pub(crate) fn utf16_units(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}
