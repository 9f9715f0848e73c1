//! Metadata entries: the typed, nested records inside an FVE metadata block (and a `.BEK` file):
//! `size (2) · entry type (2) · value type (2) · version (2) · value`.

use crate::bytes::u16_at;
use crate::error::{BitLockerError, FveStructure};

/// Size of an entry's header.
pub(crate) const HEADER_LEN: usize = 8;

/// Entry types: what an entry is for.
pub(crate) mod entry_type {
    /// A volume master key protector.
    pub const VMK: u16 = 0x0002;
    /// The full volume encryption key, wrapped with the volume master key.
    pub const FVEK: u16 = 0x0003;
    /// A startup key in a `.BEK` file.
    pub const STARTUP_KEY: u16 = 0x0006;
    /// The location of the relocated first sectors of the volume.
    pub const VOLUME_HEADER_BLOCK: u16 = 0x000F;
}

/// Value types: how an entry's value is laid out.
pub(crate) mod value_type {
    /// Encryption method (4) then the key's bytes.
    pub const KEY: u16 = 0x0001;
    /// Salt and method for key stretching, then nested entries.
    pub const STRETCH_KEY: u16 = 0x0003;
    /// Nonce (12), MAC (16), then a key encrypted with AES-CCM.
    pub const AES_CCM_KEY: u16 = 0x0005;
    /// A volume master key protector: GUID, time, protection type, then nested entries.
    pub const VOLUME_MASTER_KEY: u16 = 0x0008;
    /// An external (startup) key: GUID, time, then nested entries.
    pub const EXTERNAL_KEY: u16 = 0x0009;
    /// Offset (8) and size (8).
    pub const OFFSET_AND_SIZE: u16 = 0x000F;
}

/// One entry, its value as bytes.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub entry_type: u16,
    pub value_type: u16,
    pub value: Vec<u8>,
}

/// Reads the entries of `bytes`, stopping at a zero size (the padding after the last one).
/// `base` is the offset of `bytes` in the volume, for the damage reported.
pub(crate) fn parse_entries(
    bytes: &[u8],
    base: Option<u64>,
    structure: FveStructure,
) -> Result<Vec<Entry>, BitLockerError> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    while at + HEADER_LEN <= bytes.len() {
        let size = u16_at(bytes, at).unwrap_or(0) as usize;
        if size == 0 {
            break;
        }
        if size < HEADER_LEN || at + size > bytes.len() {
            return Err(BitLockerError::damaged(
                structure,
                base.map(|b| b + at as u64),
                format!("an entry says it is {size} bytes long, past the end of its list"),
            ));
        }
        entries.push(Entry {
            entry_type: u16_at(bytes, at + 2).unwrap_or(0),
            value_type: u16_at(bytes, at + 4).unwrap_or(0),
            value: bytes[at + HEADER_LEN..at + size].to_vec(),
        });
        at += size;
    }
    Ok(entries)
}

/// The entries nested in `entry` after its `fixed`-byte value header.
pub(crate) fn nested(
    entry: &Entry,
    fixed: usize,
    structure: FveStructure,
) -> Result<Vec<Entry>, BitLockerError> {
    let inner = entry.value.get(fixed..).ok_or_else(|| {
        BitLockerError::damaged(structure, None, "an entry is shorter than its fixed fields")
    })?;
    parse_entries(inner, None, structure)
}
