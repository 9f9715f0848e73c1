//! Recognising the first sector of a volume (a "boot sector"), for two purposes: a disk that is a bare
//! volume with no partition table, and deciding the logical sector size of an MBR disk by looking at
//! what its partitions start with.

/// What a volume boot sector says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BootSector {
    pub kind: VolumeKind,
    /// The bytes-per-sector field, when the file system has one that is a power of two in 512..=4096.
    pub bytes_per_sector: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VolumeKind {
    Ntfs,
    BitLocker,
    ExFat,
    Fat,
}

impl VolumeKind {
    pub fn code(self) -> &'static str {
        match self {
            VolumeKind::Ntfs => "NTFS",
            VolumeKind::BitLocker => "BitLocker",
            VolumeKind::ExFat => "exFAT",
            VolumeKind::Fat => "FAT",
        }
    }

    /// The type a bare volume of this kind is listed with.
    pub fn partition_type(self) -> crate::PartitionType {
        crate::PartitionType::Worded(match self {
            VolumeKind::Ntfs => crate::WordedType::NtfsVolume,
            VolumeKind::BitLocker => crate::WordedType::BitLockerVolume,
            VolumeKind::ExFat => crate::WordedType::ExFatVolume,
            VolumeKind::Fat => crate::WordedType::FatVolume,
        })
    }

    pub fn volume_name(self) -> &'static str {
        self.partition_type().name()
    }
}

pub(crate) const OEM_NTFS: &[u8; 8] = b"NTFS    ";
pub(crate) const OEM_BITLOCKER: &[u8; 8] = b"-FVE-FS-";
pub(crate) const OEM_EXFAT: &[u8; 8] = b"EXFAT   ";

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn sector_size_field(v: u32) -> Option<u32> {
    (v.is_power_of_two() && (512..=4096).contains(&v)).then_some(v)
}

pub(crate) fn has_boot_signature(sector: &[u8]) -> bool {
    sector.len() >= 512 && sector[510] == 0x55 && sector[511] == 0xAA
}

/// The volume kind named by the OEM ID at byte 3, for the IDs that are unambiguous on their own
/// (NTFS, BitLocker, exFAT). An MBR never carries these there, so this is checked before the table.
pub(crate) fn by_oem_id(sector: &[u8]) -> Option<BootSector> {
    if sector.len() < 512 {
        return None;
    }
    let oem = &sector[3..11];
    let kind = if oem == OEM_NTFS {
        VolumeKind::Ntfs
    } else if oem == OEM_BITLOCKER {
        VolumeKind::BitLocker
    } else if oem == OEM_EXFAT {
        VolumeKind::ExFat
    } else {
        return None;
    };
    let bytes_per_sector = match kind {
        // exFAT keeps the sector size as a shift at byte 108; bytes 11..64 are zero.
        VolumeKind::ExFat => {
            let shift = sector[108];
            if (9..=12).contains(&shift) {
                Some(1u32 << shift)
            } else {
                None
            }
        }
        _ => sector_size_field(u32::from(le16(sector, 11))),
    };
    Some(BootSector {
        kind,
        bytes_per_sector,
    })
}

/// A FAT boot sector: x86 jump, a power-of-two sector size, a power-of-two cluster size, at least one
/// FAT, and the 55AA signature. Only used where an MBR has already been ruled out or as evidence
/// for a partition's start.
pub(crate) fn fat_like(sector: &[u8]) -> Option<BootSector> {
    if sector.len() < 512 || !has_boot_signature(sector) {
        return None;
    }
    let jump = sector[0] == 0xE9 || (sector[0] == 0xEB && sector[2] == 0x90);
    let bps = sector_size_field(u32::from(le16(sector, 11)))?;
    let spc = sector[13];
    let reserved = le16(sector, 14);
    let fats = sector[16];
    if jump && spc != 0 && spc.is_power_of_two() && reserved != 0 && (1..=4).contains(&fats) {
        Some(BootSector {
            kind: VolumeKind::Fat,
            bytes_per_sector: Some(bps),
        })
    } else {
        None
    }
}

/// Anything that looks like the first sector of a volume Windows could have made.
pub(crate) fn sniff(sector: &[u8]) -> Option<BootSector> {
    by_oem_id(sector).or_else(|| fat_like(sector))
}

/// A short description of a first sector that is not understood, to put in an error message: names
/// container formats that were evidently handed over as raw disks.
pub(crate) fn describe_unknown(sector: &[u8]) -> String {
    let starts = |sig: &[u8]| sector.starts_with(sig);
    if starts(b"conectix") {
        return "it starts with a VHD footer ('conectix'): this is a VHD file read as a raw disk"
            .into();
    }
    if starts(b"vhdxfile") {
        return "it starts with 'vhdxfile': this is a VHDX file read as a raw disk".into();
    }
    if starts(b"KDMV") {
        return "it starts with 'KDMV': this is a VMDK sparse extent read as a raw disk".into();
    }
    if starts(b"# Disk DescriptorFile") {
        return "it is a VMDK text descriptor, not disk data: open the extent file it names".into();
    }
    if starts(&[0x51, 0x46, 0x49, 0xFB]) {
        return "it starts with 'QFI\\xfb': this is a qcow2 file read as a raw disk".into();
    }
    let head: Vec<String> = sector.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let sig = if has_boot_signature(sector) {
        "ends in 55AA but its partition entries are not valid"
    } else {
        "has no 55AA boot signature"
    };
    format!("it begins {} and {sig}", head.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ntfs(bps: u16) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[0] = 0xEB;
        s[1] = 0x52;
        s[2] = 0x90;
        s[3..11].copy_from_slice(OEM_NTFS);
        s[11..13].copy_from_slice(&bps.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    #[test]
    fn oem_ids() {
        let b = by_oem_id(&ntfs(4096)).unwrap();
        assert_eq!(b.kind, VolumeKind::Ntfs);
        assert_eq!(b.bytes_per_sector, Some(4096));
        let mut s = ntfs(512);
        s[3..11].copy_from_slice(OEM_BITLOCKER);
        assert_eq!(by_oem_id(&s).unwrap().kind, VolumeKind::BitLocker);
        assert!(by_oem_id(&[0u8; 512]).is_none());
        assert_eq!(by_oem_id(&ntfs(1000)).unwrap().bytes_per_sector, None);
    }

    #[test]
    fn fat() {
        let mut s = ntfs(512);
        s[3..11].copy_from_slice(b"MSDOS5.0");
        s[13] = 8;
        s[14] = 32;
        s[16] = 2;
        assert_eq!(fat_like(&s).unwrap().kind, VolumeKind::Fat);
        s[16] = 0;
        assert!(fat_like(&s).is_none());
    }
}
