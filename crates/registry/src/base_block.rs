//! The base block: the first 4 KiB of a hive file, of which the first 512 bytes are read.
//!
//! Layout (all little-endian): `regf` at 0, primary sequence number at 4, secondary at 8, last
//! written FILETIME at 12, major and minor format version at 20 and 24, file type at 28 (0: the
//! hive itself; 1, 2, 6: transaction logs), root key cell offset at 36 and hive bins data size at
//! 40 (both relative to the end of the base block), and at 508 the XOR of the 32-bit words of
//! the first 508 bytes.
//!
//! Windows raises the primary sequence number before it writes the hive and sets the secondary
//! to match once the write is complete: when they differ, the hive was being written when the
//! system stopped, and Windows completes it from the `.LOG1`/`.LOG2` files at the next start.

use crate::bytes::{u32_at, u64_at};
use crate::error::{HiveError, HiveStructure};
use serde::Serialize;

/// Size of the base block; the hive bins follow it.
pub const BASE_BLOCK_SIZE: u64 = 4096;
/// The bytes of the base block that hold its fields and checksum.
pub const BASE_BLOCK_FIELDS: usize = 512;
/// Hive bins are laid out in multiples of this.
pub const HIVE_BIN_ALIGNMENT: u32 = 4096;

/// The base block's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BaseBlock {
    /// Raised before Windows writes the hive.
    pub primary_sequence: u32,
    /// Set equal to the primary once the write completed.
    pub secondary_sequence: u32,
    /// When the hive was last written (FILETIME: 100 ns ticks since 1601, UTC).
    pub last_written: u64,
    /// Format version, major (1).
    pub major_version: u32,
    /// Format version, minor (3 on NT 4.0 style hives, 5 on Windows XP and later SOFTWARE/SYSTEM).
    pub minor_version: u32,
    /// Offset of the root key's cell, from the start of the hive bins.
    pub root_cell: u32,
    /// Size of the hive bins in bytes.
    pub hive_bins_size: u32,
}

impl BaseBlock {
    /// Reads the fields of `bytes` (the first 512 bytes of the file), checking the signature,
    /// checksum, version and file type.
    pub fn parse(bytes: &[u8; BASE_BLOCK_FIELDS]) -> Result<BaseBlock, HiveError> {
        if &bytes[0..4] != b"regf" {
            return Err(HiveError::NotAHive);
        }
        let stored = u32_at(bytes, 508);
        let computed = checksum(bytes);
        if stored != computed {
            return Err(HiveError::BadChecksum { stored, computed });
        }
        let major_version = u32_at(bytes, 20);
        let minor_version = u32_at(bytes, 24);
        if major_version != 1 || !(2..=6).contains(&minor_version) {
            return Err(HiveError::UnsupportedVersion {
                major: major_version,
                minor: minor_version,
            });
        }
        let file_type = u32_at(bytes, 28);
        if file_type != 0 {
            return Err(HiveError::NotPrimaryFile { file_type });
        }
        let block = BaseBlock {
            primary_sequence: u32_at(bytes, 4),
            secondary_sequence: u32_at(bytes, 8),
            last_written: u64_at(bytes, 12),
            major_version,
            minor_version,
            root_cell: u32_at(bytes, 36),
            hive_bins_size: u32_at(bytes, 40),
        };
        if block.hive_bins_size == 0 || block.hive_bins_size % HIVE_BIN_ALIGNMENT != 0 {
            return Err(HiveError::damaged(
                HiveStructure::BaseBlock,
                40,
                format!(
                    "the hive bins size {} is not a non-zero multiple of 4096",
                    block.hive_bins_size
                ),
            ));
        }
        if block.root_cell >= block.hive_bins_size {
            return Err(HiveError::damaged(
                HiveStructure::BaseBlock,
                36,
                format!(
                    "the root key cell offset {} lies past the {} bytes of hive bins",
                    block.root_cell, block.hive_bins_size
                ),
            ));
        }
        Ok(block)
    }

    /// Whether the hive was being written when Windows stopped (the sequence numbers differ).
    pub fn is_dirty(&self) -> bool {
        self.primary_sequence != self.secondary_sequence
    }

    /// Whether values larger than one cell are kept in big-data (`db`) segments (format 1.4 and
    /// later).
    pub fn has_big_data(&self) -> bool {
        self.minor_version >= 4
    }
}

/// The XOR of the 32-bit little-endian words of the first 508 bytes.
pub fn checksum(bytes: &[u8; BASE_BLOCK_FIELDS]) -> u32 {
    bytes[..508].chunks_exact(4).fold(0u32, |acc, w| {
        acc ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..4].copy_from_slice(b"regf");
        b[4..8].copy_from_slice(&7u32.to_le_bytes());
        b[8..12].copy_from_slice(&7u32.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[24..28].copy_from_slice(&5u32.to_le_bytes());
        b[36..40].copy_from_slice(&0x20u32.to_le_bytes());
        b[40..44].copy_from_slice(&8192u32.to_le_bytes());
        seal(&mut b);
        b
    }

    fn seal(b: &mut [u8; 512]) {
        let c = checksum(b);
        b[508..512].copy_from_slice(&c.to_le_bytes());
    }

    #[test]
    fn a_sealed_block_reads_and_is_clean() {
        let b = BaseBlock::parse(&block()).unwrap();
        assert_eq!((b.primary_sequence, b.secondary_sequence), (7, 7));
        assert!(!b.is_dirty());
        assert_eq!((b.root_cell, b.hive_bins_size), (0x20, 8192));
    }

    #[test]
    fn differing_sequence_numbers_are_dirty() {
        let mut b = block();
        b[4..8].copy_from_slice(&8u32.to_le_bytes());
        seal(&mut b);
        assert!(BaseBlock::parse(&b).unwrap().is_dirty());
    }

    #[test]
    fn a_changed_byte_fails_the_checksum() {
        let mut b = block();
        b[100] ^= 1;
        assert_eq!(
            BaseBlock::parse(&b),
            Err(HiveError::BadChecksum {
                stored: u32_at(&b, 508),
                computed: checksum(&b)
            })
        );
    }

    #[test]
    fn refusals() {
        let mut b = block();
        b[0] = b'R';
        assert_eq!(BaseBlock::parse(&b), Err(HiveError::NotAHive));
        let mut b = block();
        b[28] = 6;
        seal(&mut b);
        assert_eq!(
            BaseBlock::parse(&b),
            Err(HiveError::NotPrimaryFile { file_type: 6 })
        );
        let mut b = block();
        b[40..44].copy_from_slice(&4097u32.to_le_bytes());
        seal(&mut b);
        assert!(matches!(
            BaseBlock::parse(&b),
            Err(HiveError::Damaged { offset: 40, .. })
        ));
        let mut b = block();
        b[36..40].copy_from_slice(&8192u32.to_le_bytes());
        seal(&mut b);
        assert!(matches!(
            BaseBlock::parse(&b),
            Err(HiveError::Damaged { offset: 36, .. })
        ));
    }
}
