//! The startup key file (`.BEK`): a metadata header and an external key entry holding the GUID of
//! the protector it opens and the 32-byte key.

use crate::bytes::{array_at, u32_at};
use crate::entry::{entry_type, nested, parse_entries, value_type};
use crate::error::{BitLockerError, FveStructure};
use crate::guid::Guid;
use crate::secret::Secret;

/// Size of the header before the entries.
const HEADER_LEN: usize = 48;

/// A startup key read from a `.BEK` file.
#[derive(Debug, Clone)]
pub struct StartupKey {
    /// The protector this key opens.
    pub id: Guid,
    /// The key that unwraps that protector's volume master key.
    pub key: Secret,
}

impl StartupKey {
    /// Reads a `.BEK` file's bytes.
    pub fn parse(file: &[u8]) -> Result<StartupKey, BitLockerError> {
        let damaged =
            |d: &str| BitLockerError::damaged(FveStructure::StartupKeyFile, None, d.to_string());
        let size = u32_at(file, 0).ok_or_else(|| damaged("the file is too short"))? as usize;
        let header_size = u32_at(file, 8).unwrap_or(0) as usize;
        if header_size != HEADER_LEN || size < HEADER_LEN || size > file.len() {
            return Err(damaged("its header does not describe a startup key"));
        }
        for entry in parse_entries(&file[HEADER_LEN..size], None, FveStructure::StartupKeyFile)? {
            if entry.entry_type != entry_type::STARTUP_KEY
                || entry.value_type != value_type::EXTERNAL_KEY
            {
                continue;
            }
            let id = Guid(
                array_at::<16>(&entry.value, 0)
                    .ok_or_else(|| damaged("its key entry is too short"))?,
            );
            for part in nested(&entry, 24, FveStructure::StartupKeyFile)? {
                if part.value_type == value_type::KEY {
                    if let Some(key) = part.value.get(4..).filter(|k| k.len() == 32) {
                        return Ok(StartupKey {
                            id,
                            key: Secret::new(key.to_vec()),
                        });
                    }
                }
            }
        }
        Err(damaged("it holds no startup key"))
    }
}
