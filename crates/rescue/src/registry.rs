//! What inspect reads from a Windows volume's registry: the build number from the `SOFTWARE`
//! hive, and whether `SYSTEM` and `SOFTWARE` were being written when Windows stopped (their
//! primary and secondary sequence numbers differ). Report only: no hive is ever written.
//!
//! The hives are read through the NTFS reader's view of each file's data
//! ([`kaifuku_ntfs::FileData`]) by [`kaifuku_registry`], which reads the base block and the few
//! cells on the way to one value: a handful of small reads however large the hive. Whatever
//! cannot be read is a typed state in the report, never a failure of inspect.

use crate::vocabulary::{HiveState, NtfsProblem, WindowsVersion};
use kaifuku_io::ReadAt;
use kaifuku_ntfs::Volume;
use kaifuku_registry::{Hive, HiveError};
use serde::{Deserialize, Serialize};

/// Where Windows keeps its machine hives.
pub const CONFIG_DIRECTORY: &str = r"\Windows\System32\config";
/// The key holding the build number.
pub const CURRENT_VERSION_KEY: &str = r"Microsoft\Windows NT\CurrentVersion";

/// A registry hive kaifuku reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiveName {
    /// `SYSTEM`: services, drivers, the control sets.
    System,
    /// `SOFTWARE`: installed software and the Windows version.
    Software,
}

impl HiveName {
    /// The hive's file name in the config directory.
    pub fn file_name(self) -> &'static str {
        match self {
            HiveName::System => "SYSTEM",
            HiveName::Software => "SOFTWARE",
        }
    }
}

impl std::fmt::Display for HiveName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file_name())
    }
}

/// One hive: which, where, and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiveReport {
    /// Which hive.
    pub hive: HiveName,
    /// Its path on the volume.
    pub path: String,
    /// Clean, dirty, or why it could not be read.
    pub state: HiveState,
}

/// What inspect read from the registry of a Windows volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryReport {
    /// The Windows build, from `SOFTWARE`.
    pub windows_version: WindowsVersion,
    /// The `SYSTEM` hive.
    pub system: HiveReport,
    /// The `SOFTWARE` hive.
    pub software: HiveReport,
}

impl RegistryReport {
    /// The build number, when it was read.
    pub fn build(&self) -> Option<u32> {
        match self.windows_version {
            WindowsVersion::Build { build, .. } => Some(build),
            _ => None,
        }
    }
}

/// Reads the build number and the hives' states from the Windows volume `vol`.
pub fn read_registry<R: ReadAt>(vol: &Volume<R>) -> RegistryReport {
    let (system, _) = open_hive(vol, HiveName::System);
    let (software, hive) = open_hive(vol, HiveName::Software);
    let windows_version = match hive {
        Some(hive) => windows_version(&hive),
        None => WindowsVersion::NoSoftwareHive,
    };
    RegistryReport {
        windows_version,
        system,
        software,
    }
}

/// The report on one hive, and the open hive when its base block reads.
fn open_hive<R: ReadAt>(
    vol: &Volume<R>,
    name: HiveName,
) -> (HiveReport, Option<Hive<kaifuku_ntfs::FileData<'_, R>>>) {
    let path = format!(r"{CONFIG_DIRECTORY}\{}", name.file_name());
    let report = |state| HiveReport {
        hive: name,
        path: path.clone(),
        state,
    };
    let unreadable = |e| HiveState::Unreadable {
        error: NtfsProblem::from(e),
    };
    let record = match vol.lookup_path(&path) {
        Ok(Some((_, record))) if !record.is_directory() => record,
        Ok(_) => return (report(HiveState::Missing), None),
        Err(e) => return (report(unreadable(e)), None),
    };
    let data = match vol.file_data(&record) {
        Ok(Some(data)) => data,
        Ok(None) => {
            return (
                report(HiveState::Damaged {
                    error: HiveError::NotAHive,
                }),
                None,
            )
        }
        Err(e) => return (report(unreadable(e)), None),
    };
    match Hive::open(data) {
        Ok(hive) => {
            let b = hive.base_block();
            let state = if b.is_dirty() {
                HiveState::Dirty {
                    primary_sequence: b.primary_sequence,
                    secondary_sequence: b.secondary_sequence,
                }
            } else {
                HiveState::Clean {
                    sequence: b.primary_sequence,
                }
            };
            (report(state), Some(hive))
        }
        Err(error) => (report(HiveState::Damaged { error }), None),
    }
}

/// `CurrentBuildNumber` (and `ProductName`) of an open `SOFTWARE` hive.
fn windows_version<R: ReadAt>(hive: &Hive<R>) -> WindowsVersion {
    let key = match hive.key(CURRENT_VERSION_KEY) {
        Ok(Some(key)) => key,
        Ok(None) => return WindowsVersion::NotRecorded,
        Err(error) => return WindowsVersion::Damaged { error },
    };
    let text = match hive.value(&key, "CurrentBuildNumber") {
        Ok(Some(value)) => match value.as_string() {
            Ok(text) => text,
            Err(_) => return WindowsVersion::NotRecorded,
        },
        Ok(None) => return WindowsVersion::NotRecorded,
        Err(error) => return WindowsVersion::Damaged { error },
    };
    let Ok(build) = text.trim().parse::<u32>() else {
        return WindowsVersion::NotANumber { text };
    };
    // The product name is a courtesy: a damaged or missing one leaves the build standing.
    let product_name = hive
        .value(&key, "ProductName")
        .ok()
        .flatten()
        .and_then(|v| v.as_string().ok())
        .filter(|p| !p.is_empty());
    WindowsVersion::Build {
        build,
        product_name,
    }
}
