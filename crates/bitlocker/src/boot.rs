//! The first sector of a BitLocker volume: `-FVE-FS-` (or `MSWIN4.1` for BitLocker To Go), the
//! sector size and the offsets of the three FVE metadata blocks.

use kaifuku_io::ReadAt;

use crate::bytes::{array_at, u16_at, u64_at};
use crate::error::{BitLockerError, FveStructure};
use crate::guid::Guid;

/// The identifier BitLocker (Windows 7 and later) puts next to the metadata offsets.
const FVE_IDENTIFIER: &str = "4967D63B-2E29-4AD8-8399-F6A339E3D001";
/// The identifier of a volume Windows is still converting with "encrypt on write" (used space
/// only, or a conversion paused part-way): its layout is described elsewhere, and no offline
/// implementation reads it reliably.
const EOW_IDENTIFIER: &str = "92A84D3B-DD80-4D0E-9E4E-B1E3284EAED8";
/// Where the identifier and the three offsets are in a `-FVE-FS-` boot sector.
const INFORMATION_AT: usize = 0xA0;
/// Where they are in a BitLocker To Go boot sector (a FAT32 one, `MSWIN4.1`).
const INFORMATION_AT_TO_GO: usize = 0x1A8;
/// The jump of a Windows 7 and later BitLocker boot sector; Vista's (`EB 52 90`) is version 1.
const JUMP_VISTA: [u8; 3] = [0xEB, 0x52, 0x90];

/// What the boot sector of a BitLocker volume says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FveBootSector {
    /// BitLocker To Go (removable drives): the boot sector is a FAT32 one.
    pub to_go: bool,
    /// Bytes per sector: 512 or 4096. Encryption works sector by sector of this size.
    pub bytes_per_sector: u32,
    /// Byte offsets of the three FVE metadata blocks, from the start of the volume.
    pub metadata_offsets: [u64; 3],
}

/// Whether `sector` (the first of a volume) is a BitLocker boot sector, without checking more.
pub fn is_bitlocker(sector: &[u8]) -> bool {
    match sector.get(3..11) {
        Some(b"-FVE-FS-") => true,
        Some(b"MSWIN4.1") => identifier_at(sector, INFORMATION_AT_TO_GO),
        _ => false,
    }
}

fn identifier_at(sector: &[u8], at: usize) -> bool {
    array_at::<16>(sector, at).map(Guid) == Guid::parse(FVE_IDENTIFIER)
}

impl FveBootSector {
    /// Reads and checks the first sector of `volume`.
    pub fn read<R: ReadAt + ?Sized>(volume: &R) -> Result<FveBootSector, BitLockerError> {
        let mut sector = [0u8; 512];
        volume
            .read_at(0, &mut sector)
            .map_err(BitLockerError::io("reading the boot sector"))?;
        FveBootSector::parse(&sector, volume.size())
    }

    /// Checks a boot sector of a volume of `volume_size` bytes.
    pub fn parse(sector: &[u8], volume_size: u64) -> Result<FveBootSector, BitLockerError> {
        let damaged =
            |detail: &str| BitLockerError::damaged(FveStructure::BootSector, Some(0), detail);
        if !is_bitlocker(sector) {
            return Err(BitLockerError::NotBitLocker);
        }
        let to_go = sector.get(3..11) == Some(b"MSWIN4.1");
        if !to_go && sector.get(0..3) == Some(&JUMP_VISTA) {
            return Err(BitLockerError::UnsupportedVersion(1));
        }
        let info = if to_go {
            INFORMATION_AT_TO_GO
        } else {
            INFORMATION_AT
        };
        if array_at::<16>(sector, info).map(Guid) == Guid::parse(EOW_IDENTIFIER) {
            return Err(BitLockerError::EncryptOnWrite);
        }
        if !identifier_at(sector, info) {
            return Err(damaged(
                "the BitLocker identifier next to the metadata offsets is missing",
            ));
        }
        let bytes_per_sector = u16_at(sector, 11).unwrap_or(0) as u32;
        if bytes_per_sector != 512 && bytes_per_sector != 4096 {
            return Err(damaged(&format!(
                "{bytes_per_sector} bytes per sector (expected 512 or 4096)"
            )));
        }
        let mut metadata_offsets = [0u64; 3];
        for (i, offset) in metadata_offsets.iter_mut().enumerate() {
            *offset = u64_at(sector, info + 16 + 8 * i).unwrap_or(0);
            if *offset == 0 || *offset % 512 != 0 || *offset >= volume_size {
                return Err(damaged(&format!(
                    "metadata block {} is at byte {:#x}, outside the volume or unaligned",
                    i + 1,
                    *offset
                )));
            }
        }
        Ok(FveBootSector {
            to_go,
            bytes_per_sector,
            metadata_offsets,
        })
    }
}
