//! Human names for partition type codes.

// GPT partition type GUIDs (uppercase) that Windows disks carry; more names are in the table below.

/// EFI System partition: FAT, holds the boot manager, never the Windows volume.
pub const GPT_EFI_SYSTEM: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// Microsoft reserved partition (MSR): space Windows keeps aside, with no file system.
pub const GPT_MICROSOFT_RESERVED: &str = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE";
/// Basic data: the type of the Windows volume (and of any other NTFS, FAT or exFAT data volume).
pub const GPT_BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
/// Windows recovery environment: NTFS, but not the volume Windows boots from.
pub const GPT_WINDOWS_RECOVERY: &str = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC";
/// Dynamic disk (LDM) metadata: its presence means the volumes are not described by the GPT.
pub const GPT_LDM_METADATA: &str = "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3";
/// Dynamic disk (LDM) data: holds volumes kaifuku cannot locate without the LDM database.
pub const GPT_LDM_DATA: &str = "AF9B60A0-1431-4F62-BC68-3311714A69AD";
/// A Storage Spaces pool member: its volumes are spread over the pool, not described by the GPT.
pub const GPT_STORAGE_SPACES: &str = "E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D";

const GPT_NAMES: &[(&str, &str)] = &[
    (GPT_EFI_SYSTEM, "EFI System"),
    (GPT_MICROSOFT_RESERVED, "Microsoft reserved"),
    (GPT_BASIC_DATA, "Basic data"),
    (GPT_WINDOWS_RECOVERY, "Windows recovery"),
    (GPT_LDM_METADATA, "Windows LDM metadata"),
    (GPT_LDM_DATA, "Windows LDM data"),
    (GPT_STORAGE_SPACES, "Windows Storage Spaces"),
    ("37AFFC90-EF7D-4E96-91C3-2D7AE055B174", "IBM GPFS"),
    ("21686148-6449-6E6F-744E-656564454649", "BIOS boot"),
    (
        "024DEE41-33E7-11D3-9D69-0008C781F39F",
        "MBR partition scheme",
    ),
    ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"),
    ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"),
    ("E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"),
    ("A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID"),
    (
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
        "Linux root (x86-64)",
    ),
    ("44479540-F297-41B2-9AF7-D131D5F0458A", "Linux root (x86)"),
    (
        "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
        "Linux root (ARM-64)",
    ),
    (
        "BC13C2FF-59E6-4262-A352-B275FD6F7172",
        "Linux extended boot",
    ),
    ("933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home"),
    ("CA7D7CCB-63ED-4C53-861C-1742536059CC", "Linux LUKS"),
    ("516E7CB4-6ECF-11D6-8FF8-00022D09712B", "FreeBSD data"),
    ("48465300-0000-11AA-AA11-00306543ECAC", "Apple HFS/HFS+"),
    ("7C3457EF-0000-11AA-AA11-00306543ECAC", "Apple APFS"),
];

/// Name of a GPT type GUID given in uppercase.
pub fn gpt_type_name(guid_upper: &str) -> &'static str {
    GPT_NAMES
        .iter()
        .find(|(g, _)| *g == guid_upper)
        .map(|(_, n)| *n)
        .unwrap_or("Unknown")
}

/// MBR type bytes of extended (container) partitions: DOS, Windows LBA, Linux.
pub fn mbr_is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0F | 0x85)
}

/// Name of an MBR partition type byte.
pub fn mbr_type_name(t: u8) -> &'static str {
    match t {
        0x00 => "Empty",
        0x01 => "FAT12",
        0x04 => "FAT16 <32M",
        0x05 | 0x0F | 0x85 => "Extended",
        0x06 => "FAT16",
        0x07 => "NTFS/exFAT/HPFS",
        0x0B => "W95 FAT32",
        0x0C => "W95 FAT32 (LBA)",
        0x0E => "W95 FAT16 (LBA)",
        0x11 => "Hidden FAT12",
        0x12 => "Compaq diagnostics / OEM recovery",
        0x14 => "Hidden FAT16 <32M",
        0x16 => "Hidden FAT16",
        0x17 => "Hidden NTFS/exFAT/HPFS",
        0x1B => "Hidden W95 FAT32",
        0x1C => "Hidden W95 FAT32 (LBA)",
        0x1E => "Hidden W95 FAT16 (LBA)",
        0x27 => "Windows recovery (hidden NTFS)",
        0x42 => "Windows dynamic disk (LDM)",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x84 => "Hibernation",
        0x8E => "Linux LVM",
        0xA5 => "FreeBSD",
        0xA6 => "OpenBSD",
        0xA9 => "NetBSD",
        0xAF => "HFS/HFS+",
        0xDE => "Dell utility",
        0xEE => "GPT protective",
        0xEF => "EFI System (FAT)",
        0xFD => "Linux RAID autodetect",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(gpt_type_name(GPT_BASIC_DATA), "Basic data");
        assert_eq!(
            gpt_type_name("00000000-0000-0000-0000-000000000001"),
            "Unknown"
        );
        assert_eq!(mbr_type_name(0x07), "NTFS/exFAT/HPFS");
        assert_eq!(mbr_type_name(0x0F), "Extended");
        assert!(mbr_is_extended(0x85) && !mbr_is_extended(0x07));
    }
}
