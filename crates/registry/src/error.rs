//! The hive reader's errors: what could not be read, which structure is damaged and where (a byte
//! offset in the hive file, checkable in a hex viewer).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The on-disk structures of a hive, as errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiveStructure {
    /// The base block (the first 4 KiB: signature, sequence numbers, root cell, checksum).
    BaseBlock,
    /// A cell of a hive bin (its size word and bounds).
    Cell,
    /// A key node (`nk`).
    KeyNode,
    /// A subkey list (`lf`, `lh`, `li`) or index (`ri`).
    SubkeyList,
    /// A key's list of values.
    ValueList,
    /// A value key (`vk`).
    ValueKey,
    /// A value's data, in a cell or in big-data segments (`db`).
    ValueData,
}

impl std::fmt::Display for HiveStructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HiveStructure::BaseBlock => "base block",
            HiveStructure::Cell => "cell",
            HiveStructure::KeyNode => "key node (nk)",
            HiveStructure::SubkeyList => "subkey list",
            HiveStructure::ValueList => "value list",
            HiveStructure::ValueKey => "value key (vk)",
            HiveStructure::ValueData => "value data",
        })
    }
}

/// Why a hive, a key or a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum HiveError {
    /// Reading the file failed (or it ended early).
    #[error("the hive could not be read at byte {offset}: {detail}")]
    Read {
        /// Byte offset in the hive file.
        offset: u64,
        /// What the reader said.
        detail: String,
    },
    /// The file does not start with `regf`.
    #[error("the file is not a registry hive (it does not start with \"regf\")")]
    NotAHive,
    /// The base block's XOR checksum does not match its first 508 bytes.
    #[error("the hive's base block is damaged: its checksum is {stored:#010x} but its bytes give {computed:#010x}; Windows repairs the hive from its .LOG files at the next start")]
    BadChecksum {
        /// The checksum stored at byte 508.
        stored: u32,
        /// The XOR of the first 508 bytes.
        computed: u32,
    },
    /// A format version this reader does not know (only 1.x, x ≥ 2, as Windows NT 3.51 and later
    /// write).
    #[error(
        "the hive's format version {major}.{minor} is not one Windows NT 3.51 or later writes"
    )]
    UnsupportedVersion {
        /// Major version (1).
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// The file is a hive's transaction log, not the hive itself.
    #[error("the file is a registry transaction log (file type {file_type}), not a hive")]
    NotPrimaryFile {
        /// The base block's file type field.
        file_type: u32,
    },
    /// The base block says the hive bins are larger than the file.
    #[error("the hive is cut short: its base block promises {hive_bins_size} bytes of hive bins after the 4096-byte base block, but the file holds {file_size} bytes")]
    Truncated {
        /// Hive bins data size from the base block.
        hive_bins_size: u32,
        /// Size of the file.
        file_size: u64,
    },
    /// A structure is damaged.
    #[error("the hive's {structure} at byte {offset} is damaged: {detail}")]
    Damaged {
        /// Which structure.
        structure: HiveStructure,
        /// Byte offset of the structure in the hive file.
        offset: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// A loop bound was reached: more entries than any real hive holds in one place.
    #[error("the hive's {structure} at byte {offset} lists {count} entries, more than the {limit} this reader follows")]
    TooMany {
        /// Which structure.
        structure: HiveStructure,
        /// Byte offset of the structure in the hive file.
        offset: u64,
        /// How many it lists.
        count: u64,
        /// The bound.
        limit: u64,
    },
    /// A value exists but is not of the type asked for.
    #[error("the value {name} is of registry type {found}, not {expected}")]
    WrongType {
        /// The value's name.
        name: String,
        /// The type it has (`REG_*` code).
        found: u32,
        /// The type asked for.
        expected: u32,
    },
}

impl HiveError {
    pub(crate) fn damaged(
        structure: HiveStructure,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        HiveError::Damaged {
            structure,
            offset,
            detail: detail.into(),
        }
    }
}
