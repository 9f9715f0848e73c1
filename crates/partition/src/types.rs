//! What partition type codes mean, and their names.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

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

/// Defines an enum of unit variants with one English name each: `name()`, `ALL` (every variant,
/// for reading a name back) and `Display`.
macro_rules! named {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every variant.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The English name, as the reports print it.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named! {
    /// A partition type named after a file system, an operating system or a vendor: the same
    /// words in every language, so a front end shows [`NamedType::name`] as it is.
    pub enum NamedType {
        /// GPT, IBM GPFS.
        IbmGpfs => "IBM GPFS",
        /// GPT BIOS boot partition (GRUB).
        BiosBoot => "BIOS boot",
        /// GPT, an MBR-partitioned disk inside a partition.
        MbrPartitionScheme => "MBR partition scheme",
        /// GPT Linux filesystem data.
        LinuxFilesystem => "Linux filesystem",
        /// GPT or MBR (0x82) Linux swap.
        LinuxSwap => "Linux swap",
        /// GPT or MBR (0x8E) Linux LVM.
        LinuxLvm => "Linux LVM",
        /// GPT Linux RAID.
        LinuxRaid => "Linux RAID",
        /// GPT Linux root (x86-64).
        LinuxRootX86_64 => "Linux root (x86-64)",
        /// GPT Linux root (x86).
        LinuxRootX86 => "Linux root (x86)",
        /// GPT Linux root (ARM-64).
        LinuxRootArm64 => "Linux root (ARM-64)",
        /// GPT Linux extended boot.
        LinuxExtendedBoot => "Linux extended boot",
        /// GPT Linux home.
        LinuxHome => "Linux home",
        /// GPT Linux LUKS.
        LinuxLuks => "Linux LUKS",
        /// GPT FreeBSD data.
        FreeBsdData => "FreeBSD data",
        /// GPT Apple HFS/HFS+.
        AppleHfs => "Apple HFS/HFS+",
        /// GPT Apple APFS.
        AppleApfs => "Apple APFS",
        /// MBR 0x01.
        Fat12 => "FAT12",
        /// MBR 0x04.
        Fat16Under32M => "FAT16 <32M",
        /// MBR 0x06.
        Fat16 => "FAT16",
        /// MBR 0x07: NTFS (the Windows volume of an MBR disk), exFAT or HPFS.
        NtfsExfatHpfs => "NTFS/exFAT/HPFS",
        /// MBR 0x0B.
        W95Fat32 => "W95 FAT32",
        /// MBR 0x0C.
        W95Fat32Lba => "W95 FAT32 (LBA)",
        /// MBR 0x0E.
        W95Fat16Lba => "W95 FAT16 (LBA)",
        /// MBR 0x11.
        HiddenFat12 => "Hidden FAT12",
        /// MBR 0x12.
        CompaqDiagnostics => "Compaq diagnostics / OEM recovery",
        /// MBR 0x14.
        HiddenFat16Under32M => "Hidden FAT16 <32M",
        /// MBR 0x16.
        HiddenFat16 => "Hidden FAT16",
        /// MBR 0x17.
        HiddenNtfsExfatHpfs => "Hidden NTFS/exFAT/HPFS",
        /// MBR 0x1B.
        HiddenW95Fat32 => "Hidden W95 FAT32",
        /// MBR 0x1C.
        HiddenW95Fat32Lba => "Hidden W95 FAT32 (LBA)",
        /// MBR 0x1E.
        HiddenW95Fat16Lba => "Hidden W95 FAT16 (LBA)",
        /// MBR 0x83.
        Linux => "Linux",
        /// MBR 0xA5.
        FreeBsd => "FreeBSD",
        /// MBR 0xA6.
        OpenBsd => "OpenBSD",
        /// MBR 0xA9.
        NetBsd => "NetBSD",
        /// MBR 0xAF.
        Hfs => "HFS/HFS+",
        /// MBR 0xDE.
        DellUtility => "Dell utility",
        /// MBR 0xFD.
        LinuxRaidAutodetect => "Linux RAID autodetect",
    }
}

named! {
    /// What a partition's type code says it is, for the types a front end words in its own
    /// language (Windows's partitions, the table's own structures, a bare volume); the rest are
    /// [`NamedType`]s. Serialised as its English name ("Basic data", "EFI System", ...), which is
    /// what the reports have always carried as `type_name`.
    pub enum WordedType {
        /// GPT EFI System partition (FAT, holds the boot manager).
        EfiSystem => "EFI System",
        /// MBR 0xEF, an EFI System partition on an MBR disk.
        EfiSystemFat => "EFI System (FAT)",
        /// GPT Microsoft reserved partition (MSR).
        MicrosoftReserved => "Microsoft reserved",
        /// GPT basic data: the type of the Windows volume (and of other NTFS, FAT, exFAT volumes).
        BasicData => "Basic data",
        /// GPT Windows recovery environment.
        WindowsRecovery => "Windows recovery",
        /// MBR 0x27, the Windows recovery environment on an MBR disk.
        WindowsRecoveryHiddenNtfs => "Windows recovery (hidden NTFS)",
        /// GPT dynamic disk (LDM) metadata.
        WindowsLdmMetadata => "Windows LDM metadata",
        /// GPT dynamic disk (LDM) data.
        WindowsLdmData => "Windows LDM data",
        /// MBR 0x42, a dynamic disk (LDM) partition.
        WindowsDynamicDisk => "Windows dynamic disk (LDM)",
        /// GPT Storage Spaces pool member.
        WindowsStorageSpaces => "Windows Storage Spaces",
        /// MBR 0x05, 0x0F, 0x85: an extended partition holding logical partitions.
        Extended => "Extended",
        /// MBR 0xEE: the protective entry in front of a GPT.
        GptProtective => "GPT protective",
        /// MBR 0x84: a hibernation partition.
        Hibernation => "Hibernation",
        /// MBR 0x00: an empty slot.
        Empty => "Empty",
        /// A type code kaifuku has no name for.
        Unknown => "Unknown",
        /// No partition table: the whole disk is an NTFS volume.
        NtfsVolume => "NTFS volume",
        /// No partition table: the whole disk is a BitLocker-encrypted volume.
        BitLockerVolume => "BitLocker-encrypted volume",
        /// No partition table: the whole disk is an exFAT volume.
        ExFatVolume => "exFAT volume",
        /// No partition table: the whole disk is a FAT volume.
        FatVolume => "FAT volume",
    }
}

/// What a partition's type code says it is: a type a front end words in its language, or one
/// named after a file system or vendor, the same in every language. Serialised as its English
/// name, the report's `type_name`, and read back from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionType {
    /// Windows's own partitions, the table's structures, a bare volume.
    Worded(WordedType),
    /// Named after a file system, an operating system or a vendor.
    Named(NamedType),
}

impl PartitionType {
    /// The English name ("Basic data", "Linux swap", ...).
    pub fn name(self) -> &'static str {
        match self {
            PartitionType::Worded(t) => t.name(),
            PartitionType::Named(t) => t.name(),
        }
    }

    /// The type with this English name, if any.
    pub fn from_name(name: &str) -> Option<PartitionType> {
        let worded = WordedType::ALL.iter().map(|t| PartitionType::Worded(*t));
        let named = NamedType::ALL.iter().map(|t| PartitionType::Named(*t));
        worded.chain(named).find(|t| t.name() == name)
    }
}

impl fmt::Display for PartitionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<&str> for PartitionType {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl Serialize for PartitionType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for PartitionType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        PartitionType::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format_args!("no partition type is named \"{name}\""))
        })
    }
}

impl From<WordedType> for PartitionType {
    fn from(t: WordedType) -> Self {
        PartitionType::Worded(t)
    }
}

impl From<NamedType> for PartitionType {
    fn from(t: NamedType) -> Self {
        PartitionType::Named(t)
    }
}

const GPT_TYPES: &[(&str, PartitionType)] = &[
    (GPT_EFI_SYSTEM, PartitionType::Worded(WordedType::EfiSystem)),
    (
        GPT_MICROSOFT_RESERVED,
        PartitionType::Worded(WordedType::MicrosoftReserved),
    ),
    (GPT_BASIC_DATA, PartitionType::Worded(WordedType::BasicData)),
    (
        GPT_WINDOWS_RECOVERY,
        PartitionType::Worded(WordedType::WindowsRecovery),
    ),
    (
        GPT_LDM_METADATA,
        PartitionType::Worded(WordedType::WindowsLdmMetadata),
    ),
    (
        GPT_LDM_DATA,
        PartitionType::Worded(WordedType::WindowsLdmData),
    ),
    (
        GPT_STORAGE_SPACES,
        PartitionType::Worded(WordedType::WindowsStorageSpaces),
    ),
    (
        "37AFFC90-EF7D-4E96-91C3-2D7AE055B174",
        PartitionType::Named(NamedType::IbmGpfs),
    ),
    (
        "21686148-6449-6E6F-744E-656564454649",
        PartitionType::Named(NamedType::BiosBoot),
    ),
    (
        "024DEE41-33E7-11D3-9D69-0008C781F39F",
        PartitionType::Named(NamedType::MbrPartitionScheme),
    ),
    (
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        PartitionType::Named(NamedType::LinuxFilesystem),
    ),
    (
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
        PartitionType::Named(NamedType::LinuxSwap),
    ),
    (
        "E6D6D379-F507-44C2-A23C-238F2A3DF928",
        PartitionType::Named(NamedType::LinuxLvm),
    ),
    (
        "A19D880F-05FC-4D3B-A006-743F0F84911E",
        PartitionType::Named(NamedType::LinuxRaid),
    ),
    (
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
        PartitionType::Named(NamedType::LinuxRootX86_64),
    ),
    (
        "44479540-F297-41B2-9AF7-D131D5F0458A",
        PartitionType::Named(NamedType::LinuxRootX86),
    ),
    (
        "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
        PartitionType::Named(NamedType::LinuxRootArm64),
    ),
    (
        "BC13C2FF-59E6-4262-A352-B275FD6F7172",
        PartitionType::Named(NamedType::LinuxExtendedBoot),
    ),
    (
        "933AC7E1-2EB4-4F13-B844-0E14E2AEF915",
        PartitionType::Named(NamedType::LinuxHome),
    ),
    (
        "CA7D7CCB-63ED-4C53-861C-1742536059CC",
        PartitionType::Named(NamedType::LinuxLuks),
    ),
    (
        "516E7CB4-6ECF-11D6-8FF8-00022D09712B",
        PartitionType::Named(NamedType::FreeBsdData),
    ),
    (
        "48465300-0000-11AA-AA11-00306543ECAC",
        PartitionType::Named(NamedType::AppleHfs),
    ),
    (
        "7C3457EF-0000-11AA-AA11-00306543ECAC",
        PartitionType::Named(NamedType::AppleApfs),
    ),
];

/// The type of a GPT type GUID given in uppercase.
pub fn gpt_type(guid_upper: &str) -> PartitionType {
    GPT_TYPES
        .iter()
        .find(|(g, _)| *g == guid_upper)
        .map(|(_, t)| *t)
        .unwrap_or(PartitionType::Worded(WordedType::Unknown))
}

/// MBR type bytes of extended (container) partitions: DOS, Windows LBA, Linux.
pub fn mbr_is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0F | 0x85)
}

/// The type of an MBR partition type byte.
pub fn mbr_type(t: u8) -> PartitionType {
    use NamedType as N;
    use WordedType as W;
    match t {
        0x00 => W::Empty.into(),
        0x01 => N::Fat12.into(),
        0x04 => N::Fat16Under32M.into(),
        0x05 | 0x0F | 0x85 => W::Extended.into(),
        0x06 => N::Fat16.into(),
        0x07 => N::NtfsExfatHpfs.into(),
        0x0B => N::W95Fat32.into(),
        0x0C => N::W95Fat32Lba.into(),
        0x0E => N::W95Fat16Lba.into(),
        0x11 => N::HiddenFat12.into(),
        0x12 => N::CompaqDiagnostics.into(),
        0x14 => N::HiddenFat16Under32M.into(),
        0x16 => N::HiddenFat16.into(),
        0x17 => N::HiddenNtfsExfatHpfs.into(),
        0x1B => N::HiddenW95Fat32.into(),
        0x1C => N::HiddenW95Fat32Lba.into(),
        0x1E => N::HiddenW95Fat16Lba.into(),
        0x27 => W::WindowsRecoveryHiddenNtfs.into(),
        0x42 => W::WindowsDynamicDisk.into(),
        0x82 => N::LinuxSwap.into(),
        0x83 => N::Linux.into(),
        0x84 => W::Hibernation.into(),
        0x8E => N::LinuxLvm.into(),
        0xA5 => N::FreeBsd.into(),
        0xA6 => N::OpenBsd.into(),
        0xA9 => N::NetBsd.into(),
        0xAF => N::Hfs.into(),
        0xDE => N::DellUtility.into(),
        0xEE => W::GptProtective.into(),
        0xEF => W::EfiSystemFat.into(),
        0xFD => N::LinuxRaidAutodetect.into(),
        _ => W::Unknown.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(gpt_type(GPT_BASIC_DATA).name(), "Basic data");
        assert_eq!(
            gpt_type("00000000-0000-0000-0000-000000000001"),
            PartitionType::Worded(WordedType::Unknown)
        );
        assert_eq!(mbr_type(0x07).name(), "NTFS/exFAT/HPFS");
        assert_eq!(mbr_type(0x0F), PartitionType::Worded(WordedType::Extended));
        assert!(mbr_is_extended(0x85) && !mbr_is_extended(0x07));
    }

    #[test]
    fn every_type_reads_back_from_its_name() {
        let all: Vec<PartitionType> = WordedType::ALL
            .iter()
            .map(|t| PartitionType::from(*t))
            .chain(NamedType::ALL.iter().map(|t| PartitionType::from(*t)))
            .collect();
        for t in &all {
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
            assert_eq!(&serde_json::from_str::<PartitionType>(&json).unwrap(), t);
        }
        // Names are unique, so reading one back is never a guess.
        let mut names: Vec<&str> = all.iter().map(|t| t.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        // Every MBR type byte and known GPT GUID gives a type with a name.
        for b in 0..=255u8 {
            assert!(!mbr_type(b).name().is_empty());
        }
        assert!(serde_json::from_str::<PartitionType>("\"No such type\"").is_err());
    }
}
