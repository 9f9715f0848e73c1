//! The NTFS boot sector (first sector of the volume): geometry, where `$MFT` lives, record sizes.
//! Checked here before anything else reads the volume, so that nonsense geometry gives a clear
//! refusal instead of wild reads.

use crate::bytes::{slice, u16_at, u64_at, u8_at};
use crate::layout::boot_sector;
use crate::{BootSectorFault, NtfsError, RecordKind};
use serde::Serialize;

/// What kind of volume the boot sector announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootKind {
    /// OEM ID `NTFS    `: an NTFS volume kaifuku can read.
    Ntfs,
    /// OEM ID `-FVE-FS-`: a BitLocker-encrypted volume; its NTFS structures cannot be read.
    BitLocker,
}

/// Recognises the OEM ID alone (no geometry checks).
pub fn boot_kind(sector: &[u8]) -> Option<BootKind> {
    match sector.get(boot_sector::OEM_ID..boot_sector::OEM_ID + 8) {
        Some(b"NTFS    ") => Some(BootKind::Ntfs),
        Some(b"-FVE-FS-") => Some(BootKind::BitLocker),
        _ => None,
    }
}

/// The geometry of an NTFS volume, from its validated boot sector.
#[derive(Debug, Clone, Serialize)]
pub struct BootSector {
    /// Sector size: a power of two from 256 to 4096.
    pub bytes_per_sector: u32,
    /// Cluster size in bytes (sectors per cluster × sector size).
    pub cluster_size: u32,
    /// Sectors in the volume; the backup boot sector follows them.
    pub total_sectors: u64,
    /// Cluster where `$MFT` starts.
    pub mft_lcn: u64,
    /// Cluster where `$MFTMirr` starts.
    pub mftmirr_lcn: u64,
    /// Bytes per `$MFT` file record (1024 or 4096 in practice).
    pub file_record_size: u32,
    /// Bytes per `INDX` block of every index.
    pub index_record_size: u32,
    /// The volume serial number Windows shows (its low 32 bits) and tools identify the volume by.
    pub serial: u64,
}

impl BootSector {
    /// Parses and validates an NTFS boot sector; `volume_len` is the size of the space holding it.
    pub fn parse(b: &[u8], volume_len: u64) -> Result<BootSector, NtfsError> {
        match boot_kind(b) {
            Some(BootKind::Ntfs) => {}
            Some(BootKind::BitLocker) => return Err(NtfsError::BitLocker),
            None => return Err(NtfsError::NotNtfs),
        }
        let bad = NtfsError::BadBootSector;
        if slice(b, boot_sector::END_SIGNATURE, 2)? != [0x55, 0xAA] {
            return Err(bad(BootSectorFault::MissingEndSignature));
        }
        let bps = u16_at(b, boot_sector::BYTES_PER_SECTOR)? as u32;
        if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(bad(BootSectorFault::BytesPerSector { value: bps }));
        }
        let spc_raw = u8_at(b, boot_sector::SECTORS_PER_CLUSTER)?;
        let spc: u32 = if spc_raw == 0 {
            return Err(bad(BootSectorFault::ZeroSectorsPerCluster));
        } else if spc_raw <= 0x80 {
            spc_raw as u32
        } else {
            // Values above 0x80 are a negative power of two (used for clusters above 64 KiB).
            let exp = 256 - spc_raw as u32;
            if exp > 12 {
                return Err(bad(BootSectorFault::SectorsPerClusterCode {
                    byte: spc_raw,
                }));
            }
            1 << exp
        };
        if !spc.is_power_of_two() {
            return Err(bad(BootSectorFault::SectorsPerClusterNotPowerOfTwo {
                value: spc,
            }));
        }
        let cluster_size = bps * spc;
        if cluster_size > 2 * 1024 * 1024 {
            return Err(bad(BootSectorFault::ClusterTooLarge { cluster_size }));
        }
        let total_sectors = u64_at(b, boot_sector::TOTAL_SECTORS)?;
        let volume_bytes = total_sectors
            .checked_mul(bps as u64)
            .ok_or_else(|| bad(BootSectorFault::TotalSectorsOverflow))?;
        if total_sectors == 0 || volume_bytes > volume_len {
            return Err(bad(BootSectorFault::Truncated {
                described: volume_bytes,
                present: volume_len,
            }));
        }
        // The backup boot sector follows the volume's last sector: an image that ends before it
        // was cut short.
        if volume_bytes + bps as u64 > volume_len {
            return Err(bad(BootSectorFault::BackupBeyondEnd {
                backup_at: volume_bytes,
                present: volume_len,
            }));
        }
        let total_clusters = volume_bytes / cluster_size as u64;
        let mft_lcn = u64_at(b, boot_sector::MFT_LCN)?;
        let mftmirr_lcn = u64_at(b, boot_sector::MFTMIRR_LCN)?;
        if mft_lcn == 0
            || mft_lcn >= total_clusters
            || mftmirr_lcn == 0
            || mftmirr_lcn >= total_clusters
        {
            return Err(bad(BootSectorFault::MftOutsideVolume {
                mft_lcn,
                mftmirr_lcn,
                total_clusters,
            }));
        }
        if mft_lcn == mftmirr_lcn {
            return Err(bad(BootSectorFault::MftAndMirrorShareCluster {
                lcn: mft_lcn,
            }));
        }
        let record_size = |off: usize, record: RecordKind| -> Result<u32, NtfsError> {
            let v = u8_at(b, off)? as i8;
            let size = if v > 0 {
                (v as u64) * cluster_size as u64
            } else {
                let exp = (-(v as i32)) as u32;
                if !(8..=20).contains(&exp) {
                    return Err(bad(BootSectorFault::RecordSizeCode {
                        record,
                        size_code: v,
                    }));
                }
                1u64 << exp
            };
            if !(256..=65536).contains(&size) || !size.is_power_of_two() {
                return Err(bad(BootSectorFault::ImplausibleRecordSize { record, size }));
            }
            Ok(size as u32)
        };
        let file_record_size = record_size(boot_sector::FILE_RECORD_SIZE, RecordKind::FileRecord)?;
        let index_record_size =
            record_size(boot_sector::INDEX_RECORD_SIZE, RecordKind::IndexRecord)?;
        Ok(BootSector {
            bytes_per_sector: bps,
            cluster_size,
            total_sectors,
            mft_lcn,
            mftmirr_lcn,
            file_record_size,
            index_record_size,
            serial: u64_at(b, boot_sector::SERIAL)?,
        })
    }

    /// Bytes the volume spans (total sectors × sector size), without the backup boot sector.
    pub fn volume_size(&self) -> u64 {
        self.total_sectors * self.bytes_per_sector as u64
    }

    /// Whole clusters in the volume: what `$Bitmap` covers.
    pub fn total_clusters(&self) -> u64 {
        self.volume_size() / self.cluster_size as u64
    }
}
