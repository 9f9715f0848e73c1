//! Windows registry hive files (regf), read from any [`ReadAt`]: enough to answer "which Windows
//! build is this" and "was this hive being written when Windows stopped", never the whole hive.
//!
//! [`Hive::open`] reads the base block ([`base_block`]: signature, the primary and secondary
//! sequence numbers whose difference means the hive is dirty, the XOR checksum, the root key cell
//! and the size of the hive bins). [`Hive::key`] walks a `\`-separated key path from the root
//! through key nodes ([`key`], `nk`) and subkey lists ([`subkeys`], `lf`/`lh`/`li` leaves and `ri`
//! indexes), comparing names case-insensitively in Latin-1 or UTF-16 as each node stores them;
//! [`Hive::value`] reads one value ([`value`]: the value list, `vk`, data in the key, in a cell
//! or in big-data `db` segments).
//!
//! Only the cells a lookup needs are read ([`cell`]), each bounds-checked against the hive bins
//! before it is read; every count from the file is checked against the cell that holds it and a
//! fixed limit before it drives a loop or sizes an allocation. Damage is a [`HiveError`] naming
//! the structure and its byte offset in the file; nothing here panics on hostile input (the
//! `hive` fuzz target holds it to that). The format's facts come from the public description of
//! the regf format (libregf's documentation); this is the project's own code. Pure like the rest
//! of the core: no files, no clock.
#![forbid(unsafe_code)]

pub mod base_block;
mod bytes;
pub mod cell;
pub mod error;
pub mod key;
mod name;
pub mod subkeys;
pub mod value;

pub use base_block::BaseBlock;
pub use error::{HiveError, HiveStructure};
pub use key::KeyNode;
pub use value::{Value, REG_DWORD, REG_EXPAND_SZ, REG_SZ};

use base_block::{BASE_BLOCK_FIELDS, BASE_BLOCK_SIZE};
use kaifuku_io::ReadAt;

/// Most components of a key path (the registry allows 512; real paths have under 20).
pub const MAX_PATH_DEPTH: usize = 64;

/// An open hive: its base block, and its reader for the cells a lookup needs.
pub struct Hive<R> {
    reader: R,
    base: BaseBlock,
}

impl<R: ReadAt> Hive<R> {
    /// Reads and checks the base block of the hive file `reader` (one 512-byte read).
    pub fn open(reader: R) -> Result<Hive<R>, HiveError> {
        let file_size = reader.size();
        let mut bytes = [0u8; BASE_BLOCK_FIELDS];
        if file_size < BASE_BLOCK_FIELDS as u64 {
            return Err(HiveError::Read {
                offset: 0,
                detail: format!(
                    "the file is {file_size} bytes long, shorter than a hive's base block"
                ),
            });
        }
        cell::read(&reader, 0, &mut bytes)?;
        let base = BaseBlock::parse(&bytes)?;
        if BASE_BLOCK_SIZE + u64::from(base.hive_bins_size) > file_size {
            return Err(HiveError::Truncated {
                hive_bins_size: base.hive_bins_size,
                file_size,
            });
        }
        Ok(Hive { reader, base })
    }

    /// The base block's fields.
    pub fn base_block(&self) -> &BaseBlock {
        &self.base
    }

    /// The root key.
    pub fn root(&self) -> Result<KeyNode, HiveError> {
        KeyNode::read(&self.reader, self.base.hive_bins_size, self.base.root_cell)
    }

    /// The key at `path` (`\`-separated from the root, case-insensitive; empty components are
    /// ignored), or `None` when some component does not exist.
    pub fn key(&self, path: &str) -> Result<Option<KeyNode>, HiveError> {
        let components: Vec<&str> = path.split('\\').filter(|c| !c.is_empty()).collect();
        if components.len() > MAX_PATH_DEPTH {
            return Err(HiveError::TooMany {
                structure: HiveStructure::KeyNode,
                offset: cell::file_offset(self.base.root_cell),
                count: components.len() as u64,
                limit: MAX_PATH_DEPTH as u64,
            });
        }
        let mut key = self.root()?;
        for component in components {
            let name: Vec<u16> = component.encode_utf16().collect();
            match subkeys::find_subkey(&self.reader, self.base.hive_bins_size, &key, &name)? {
                Some(next) => key = next,
                None => return Ok(None),
            }
        }
        Ok(Some(key))
    }

    /// The names of `key`'s subkeys, in list order.
    pub fn subkey_names(&self, key: &KeyNode) -> Result<Vec<String>, HiveError> {
        subkeys::subkey_entries(&self.reader, self.base.hive_bins_size, key)?
            .into_iter()
            .map(|e| {
                KeyNode::read(&self.reader, self.base.hive_bins_size, e.cell)
                    .map(|k| String::from_utf16_lossy(&k.name))
            })
            .collect()
    }

    /// The value of `key` named `name` (case-insensitive; `""` is the default value), or `None`.
    pub fn value(&self, key: &KeyNode, name: &str) -> Result<Option<Value>, HiveError> {
        let name: Vec<u16> = name.encode_utf16().collect();
        value::find_value(
            &self.reader,
            self.base.hive_bins_size,
            self.base.has_big_data(),
            key,
            &name,
        )
    }

    /// The value `name` of the key at `path`: `None` when the key or the value is missing.
    pub fn value_at(&self, path: &str, name: &str) -> Result<Option<Value>, HiveError> {
        match self.key(path)? {
            Some(key) => self.value(&key, name),
            None => Ok(None),
        }
    }
}
