//! The FVE metadata block: its block header (version 2: encrypted size, relocated boot sectors,
//! the three block offsets), its header (volume GUID, encryption method) and its entries.

use kaifuku_io::ReadAt;

use crate::boot::FveBootSector;
use crate::bytes::{array_at, u16_at, u32_at, u64_at};
use crate::entry::{entry_type, parse_entries, value_type};
use crate::error::{BitLockerError, FveStructure};
use crate::guid::Guid;
use crate::method::EncryptionMethod;
use crate::protector::{Protector, WrappedKey};

/// Size of the block header.
const BLOCK_HEADER_LEN: usize = 64;
/// Size of the metadata header that follows it.
const METADATA_HEADER_LEN: usize = 48;
/// Each metadata block occupies 64 KiB that the decrypted volume reads as zeros.
pub const METADATA_AREA_LEN: u64 = 64 * 1024;

/// Where the volume's first sectors really are: they are moved, encrypted, to make room for the
/// `-FVE-FS-` boot sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelocatedSectors {
    /// Byte offset of the copy in the volume.
    pub offset: u64,
    /// Bytes relocated (the decrypted volume's bytes `0 .. len` are read from the copy).
    pub len: u64,
}

/// One checked FVE metadata block.
#[derive(Debug, Clone)]
pub struct FveMetadata {
    /// Which of the three blocks this is (0, 1 or 2).
    pub block_index: usize,
    /// Byte offset of the block in the volume.
    pub block_offset: u64,
    /// The three block offsets, as this block lists them.
    pub metadata_offsets: [u64; 3],
    /// Bytes from the start of the volume that are encrypted; past it the volume is in the clear
    /// (a volume Windows has not finished encrypting).
    pub encrypted_size: u64,
    /// Encryption state (4: fully encrypted; 2: encryption in progress; 1: decrypted).
    pub state: u16,
    /// The volume's BitLocker GUID.
    pub volume_id: Guid,
    /// How sectors are encrypted.
    pub method: EncryptionMethod,
    /// The relocated first sectors.
    pub relocated: RelocatedSectors,
    /// The volume master key protectors, in their on-disk order.
    pub protectors: Vec<Protector>,
    /// The full volume encryption key, wrapped with the volume master key.
    pub wrapped_fvek: WrappedKey,
}

impl FveMetadata {
    /// Reads the first of the three blocks that checks out; if none does, says why the first
    /// one failed.
    pub fn read<R: ReadAt + ?Sized>(
        volume: &R,
        boot: &FveBootSector,
    ) -> Result<FveMetadata, BitLockerError> {
        let mut first_error = None;
        for (index, offset) in boot.metadata_offsets.iter().enumerate() {
            match FveMetadata::read_block(volume, boot, index, *offset) {
                Ok(m) => return Ok(m),
                Err(e @ BitLockerError::UnknownMethod(_)) => return Err(e),
                Err(e @ BitLockerError::ConversionInProgress { .. }) => return Err(e),
                Err(e @ BitLockerError::UnsupportedVersion(_)) => return Err(e),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(BitLockerError::NoValidMetadata {
            first: Box::new(first_error.unwrap_or(BitLockerError::NotBitLocker)),
        })
    }

    fn read_block<R: ReadAt + ?Sized>(
        volume: &R,
        boot: &FveBootSector,
        block_index: usize,
        block_offset: u64,
    ) -> Result<FveMetadata, BitLockerError> {
        let damaged = |at: usize, detail: String| {
            BitLockerError::damaged(
                FveStructure::MetadataBlock,
                Some(block_offset + at as u64),
                detail,
            )
        };
        if block_offset + METADATA_AREA_LEN > volume.size() {
            return Err(damaged(
                0,
                "the block lies past the end of the volume".into(),
            ));
        }
        let block = volume
            .read_vec(block_offset, METADATA_AREA_LEN as usize)
            .map_err(BitLockerError::io("reading an FVE metadata block"))?;
        if block.get(0..8) != Some(b"-FVE-FS-") {
            return Err(damaged(0, "no -FVE-FS- signature".into()));
        }
        let version = u16_at(&block, 10).unwrap_or(0);
        if version != 2 {
            return Err(BitLockerError::UnsupportedVersion(version));
        }
        // The block's CRC-32 follows it, in its validation header (size, version, CRC); its
        // length is given in 16-byte units. A block whose checksum fails is not used: Windows
        // keeps three so that a damaged one is replaced by the next.
        let block_len = usize::from(u16_at(&block, 8).unwrap_or(0)) * 16;
        let stored_crc = u32_at(&block, block_len + 4);
        match stored_crc {
            Some(stored) if block_len >= BLOCK_HEADER_LEN + METADATA_HEADER_LEN => {
                let computed = crc32fast::hash(&block[..block_len]);
                if stored != computed {
                    return Err(damaged(
                        block_len + 4,
                        format!(
                            "its CRC-32 is {computed:#010x}, the validation header says \
                             {stored:#010x}: the block is damaged"
                        ),
                    ));
                }
            }
            _ => {
                return Err(damaged(
                    8,
                    format!(
                        "its length ({block_len} bytes) leaves no room for its header or checksum"
                    ),
                ))
            }
        }
        let state = u16_at(&block, 12).unwrap_or(0);
        // 2: a conversion under way (its region past the encrypted size is in flux); 3:
        // encrypt-on-write. Fully encrypted (4), paused (5, a safe state whose tail past the
        // encrypted size is in the clear) and decrypted (1) are read.
        if matches!(state, 2 | 3) {
            return Err(BitLockerError::ConversionInProgress { state });
        }
        let encrypted_size = u64_at(&block, 16).unwrap_or(0);
        let relocated_count = u32_at(&block, 28).unwrap_or(0) as u64;
        let mut metadata_offsets = [0u64; 3];
        for (i, o) in metadata_offsets.iter_mut().enumerate() {
            *o = u64_at(&block, 32 + 8 * i).unwrap_or(0);
        }
        if metadata_offsets != boot.metadata_offsets {
            return Err(damaged(
                32,
                "its list of block offsets differs from the boot sector's".into(),
            ));
        }
        let relocated_at = u64_at(&block, 56).unwrap_or(0);

        let h = BLOCK_HEADER_LEN;
        let metadata_size = u32_at(&block, h).unwrap_or(0) as usize;
        let header_size = u32_at(&block, h + 8).unwrap_or(0) as usize;
        let size_copy = u32_at(&block, h + 12).unwrap_or(0) as usize;
        if header_size != METADATA_HEADER_LEN
            || metadata_size != size_copy
            || metadata_size < METADATA_HEADER_LEN
            || h + metadata_size > block.len()
        {
            return Err(damaged(
                h,
                format!(
                    "metadata header sizes {metadata_size}/{header_size}/{size_copy} do not agree"
                ),
            ));
        }
        let volume_id = Guid(array_at::<16>(&block, h + 16).unwrap_or([0; 16]));
        let method_code = u16_at(&block, h + 36).unwrap_or(0);
        let method = EncryptionMethod::from_code(method_code)
            .ok_or(BitLockerError::UnknownMethod(method_code))?;

        let entries_at = h + METADATA_HEADER_LEN;
        let entries = parse_entries(
            &block[entries_at..h + metadata_size],
            Some(block_offset + entries_at as u64),
            FveStructure::MetadataEntry,
        )?;
        let mut protectors = Vec::new();
        let mut wrapped_fvek = None;
        let mut relocated = None;
        for entry in &entries {
            match (entry.entry_type, entry.value_type) {
                (entry_type::VMK, value_type::VOLUME_MASTER_KEY) => {
                    protectors.push(Protector::from_entry(entry)?)
                }
                (entry_type::FVEK, value_type::AES_CCM_KEY) => {
                    wrapped_fvek = Some(WrappedKey::from_entry(entry)?)
                }
                (entry_type::VOLUME_HEADER_BLOCK, value_type::OFFSET_AND_SIZE) => {
                    if let (Some(offset), Some(len)) =
                        (u64_at(&entry.value, 0), u64_at(&entry.value, 8))
                    {
                        relocated = Some(RelocatedSectors { offset, len });
                    }
                }
                _ => {}
            }
        }
        let relocated = relocated.unwrap_or(RelocatedSectors {
            offset: relocated_at,
            len: relocated_count * boot.bytes_per_sector as u64,
        });
        let sector = boot.bytes_per_sector as u64;
        if relocated.offset % sector != 0
            || relocated.len % sector != 0
            || relocated.offset.saturating_add(relocated.len) > volume.size()
        {
            return Err(damaged(
                56,
                format!(
                    "the relocated boot sectors ({} bytes at {:#x}) do not fit the volume",
                    relocated.len, relocated.offset
                ),
            ));
        }
        // The decrypted volume's first sectors are read from the copy and written back there:
        // a copy of no sectors, or one that overlaps the sectors it stands for (where the
        // BitLocker boot sector is) or a metadata area, would have a fix write the volume's boot
        // sector over BitLocker's own structures (found by fuzzing).
        let copy_end = relocated.offset + relocated.len;
        if relocated.len == 0
            || relocated.offset < relocated.len
            || metadata_offsets
                .iter()
                .any(|&m| relocated.offset < m + METADATA_AREA_LEN && m < copy_end)
        {
            return Err(damaged(
                56,
                format!(
                    "the relocated boot sectors ({} bytes at {:#x}) are empty or lie on the \
                     sectors they replace or on a metadata block",
                    relocated.len, relocated.offset
                ),
            ));
        }
        let wrapped_fvek = wrapped_fvek
            .ok_or_else(|| damaged(entries_at, "the block holds no encrypted volume key".into()))?;
        if protectors.is_empty() {
            return Err(damaged(
                entries_at,
                "the block lists no key protector".into(),
            ));
        }
        Ok(FveMetadata {
            block_index,
            block_offset,
            metadata_offsets,
            encrypted_size,
            state,
            volume_id,
            method,
            relocated,
            protectors,
            wrapped_fvek,
        })
    }
}
