//! The NTFS boot sector (first sector of the volume): geometry, where `$MFT` lives, record sizes.
//! Checked here before anything else reads the volume, so that nonsense geometry gives a clear
//! refusal instead of wild reads.

use crate::bytes::{slice, u16_at, u64_at, u8_at};
use crate::NtfsError;
use serde::Serialize;

/// What kind of volume the boot sector announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootKind {
    Ntfs,
    /// OEM ID `-FVE-FS-`: a BitLocker-encrypted volume; its NTFS structures cannot be read.
    BitLocker,
}

/// Recognises the OEM ID alone (no geometry checks).
pub fn boot_kind(sector: &[u8]) -> Option<BootKind> {
    match sector.get(3..11) {
        Some(b"NTFS    ") => Some(BootKind::Ntfs),
        Some(b"-FVE-FS-") => Some(BootKind::BitLocker),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BootSector {
    pub bytes_per_sector: u32,
    pub cluster_size: u32,
    pub total_sectors: u64,
    pub mft_lcn: u64,
    pub mftmirr_lcn: u64,
    pub file_record_size: u32,
    pub index_record_size: u32,
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
        let bad = |what: String| NtfsError::BadBootSector(what);
        if slice(b, 510, 2)? != [0x55, 0xAA] {
            return Err(bad("the end-of-sector signature 55 AA is missing".into()));
        }
        let bps = u16_at(b, 0x0B)? as u32;
        if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(bad(format!(
                "bytes per sector is {bps}; NTFS uses a power of two from 256 to 4096"
            )));
        }
        let spc_raw = u8_at(b, 0x0D)?;
        let spc: u32 = if spc_raw == 0 {
            return Err(bad("sectors per cluster is 0".into()));
        } else if spc_raw <= 0x80 {
            spc_raw as u32
        } else {
            // Values above 0x80 are a negative power of two (used for clusters above 64 KiB).
            let exp = 256 - spc_raw as u32;
            if exp > 12 {
                return Err(bad(format!(
                    "sectors per cluster byte {spc_raw:#x} is out of range"
                )));
            }
            1 << exp
        };
        if !spc.is_power_of_two() {
            return Err(bad(format!(
                "sectors per cluster is {spc}, not a power of two"
            )));
        }
        let cluster_size = bps * spc;
        if cluster_size > 2 * 1024 * 1024 {
            return Err(bad(format!(
                "cluster size {cluster_size} exceeds the NTFS maximum of 2 MiB"
            )));
        }
        let total_sectors = u64_at(b, 0x28)?;
        let volume_bytes = total_sectors
            .checked_mul(bps as u64)
            .ok_or_else(|| bad("total sector count overflows".into()))?;
        if total_sectors == 0 || volume_bytes > volume_len {
            return Err(bad(format!(
                "the boot sector describes a {volume_bytes}-byte volume but only {volume_len} bytes are there — the image may be truncated"
            )));
        }
        // The backup boot sector follows the volume's last sector: an image that ends before it
        // was cut short.
        if volume_bytes + bps as u64 > volume_len {
            return Err(bad(format!(
                "the volume's backup boot sector (byte {volume_bytes}) lies beyond the {volume_len} bytes that are there — the image may be truncated"
            )));
        }
        let total_clusters = volume_bytes / cluster_size as u64;
        let mft_lcn = u64_at(b, 0x30)?;
        let mftmirr_lcn = u64_at(b, 0x38)?;
        if mft_lcn == 0
            || mft_lcn >= total_clusters
            || mftmirr_lcn == 0
            || mftmirr_lcn >= total_clusters
        {
            return Err(bad(format!(
                "$MFT at cluster {mft_lcn} or $MFTMirr at cluster {mftmirr_lcn} lies outside the volume's {total_clusters} clusters"
            )));
        }
        if mft_lcn == mftmirr_lcn {
            return Err(bad(format!("$MFT and $MFTMirr both at cluster {mft_lcn}")));
        }
        let record_size = |off: usize, what: &str| -> Result<u32, NtfsError> {
            let v = u8_at(b, off)? as i8;
            let size = if v > 0 {
                (v as u64) * cluster_size as u64
            } else {
                let exp = (-(v as i32)) as u32;
                if !(8..=20).contains(&exp) {
                    return Err(NtfsError::BadBootSector(format!(
                        "{what} size code {v} is out of range"
                    )));
                }
                1u64 << exp
            };
            if !(256..=65536).contains(&size) || !size.is_power_of_two() {
                return Err(NtfsError::BadBootSector(format!(
                    "{what} size {size} is not a plausible record size"
                )));
            }
            Ok(size as u32)
        };
        let file_record_size = record_size(0x40, "file record")?;
        let index_record_size = record_size(0x44, "index record")?;
        Ok(BootSector {
            bytes_per_sector: bps,
            cluster_size,
            total_sectors,
            mft_lcn,
            mftmirr_lcn,
            file_record_size,
            index_record_size,
            serial: u64_at(b, 0x48)?,
        })
    }

    pub fn volume_size(&self) -> u64 {
        self.total_sectors * self.bytes_per_sector as u64
    }

    pub fn total_clusters(&self) -> u64 {
        self.volume_size() / self.cluster_size as u64
    }
}
