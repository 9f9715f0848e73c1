//! `inspect`: container → partitions → volumes → the rule's matches, as one report. Never fails:
//! whatever goes wrong is recorded in the report with an outcome the front end maps to an exit code.

use crate::rule::{Rule, Verdict};
use kaifuku_container::{ContainerError, ContainerInfo};
use kaifuku_io::{ReadAt, Slice};
use kaifuku_ntfs::{boot_kind, BootKind, FileDetails, NtfsError, Volume, VolumeSummary};
use kaifuku_partition::PartitionTable;
use serde::Serialize;

/// What inspection concluded, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Files matching the rule were found.
    Matches,
    /// Everything could be read and nothing matches.
    NothingToFix,
    /// Something could not be examined for a reason that is not damage (BitLocker, an unsupported
    /// format or feature) and nothing matched elsewhere.
    Refused,
    /// The image or a volume is damaged or unreadable.
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    /// Full path on the volume, `\`-separated.
    pub path: String,
    #[serde(flatten)]
    pub file: FileDetails,
    /// Whether the first eight bytes are the rule's known-bad header (`None`: the rule has none).
    pub header_matches: Option<bool>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    pub directory_exists: bool,
    pub matches: Vec<MatchReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VolumeReport {
    /// Partition number, or `None` for a bare volume.
    pub partition: Option<u32>,
    pub offset: u64,
    pub size: u64,
    /// "ntfs", "bitlocker", "fat", or "unknown".
    pub filesystem: String,
    pub ntfs: Option<VolumeSummary>,
    /// Present when the rule ran here (NTFS volumes holding `\Windows\System32`).
    pub rule: Option<RuleResult>,
    /// What would stop a fix on this volume, in plain words.
    pub fix_blockers: Vec<String>,
    pub error: Option<String>,
    #[serde(skip)]
    pub refused: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    pub container: Option<ContainerInfo>,
    pub partitions: Option<PartitionTable>,
    pub volumes: Vec<VolumeReport>,
    /// Index into `volumes` of the Windows volume(s).
    pub windows_volumes: Vec<usize>,
    pub rule: Rule,
    pub outcome: Outcome,
    /// Why the outcome is what it is, in plain words.
    pub reasons: Vec<String>,
}

impl InspectReport {
    pub fn matches(&self) -> impl Iterator<Item = (&VolumeReport, &MatchReport)> {
        self.volumes.iter().flat_map(|v| {
            v.rule
                .iter()
                .flat_map(move |r| r.matches.iter().map(move |m| (v, m)))
        })
    }

    fn failed(
        rule: &Rule,
        outcome: Outcome,
        reason: String,
        container: Option<ContainerInfo>,
    ) -> Self {
        InspectReport {
            container,
            partitions: None,
            volumes: Vec::new(),
            windows_volumes: Vec::new(),
            rule: rule.clone(),
            outcome,
            reasons: vec![reason],
        }
    }
}

/// Inspects the disk image `file` (any container format kaifuku reads) with `rule`.
pub fn inspect<R: ReadAt>(file: R, rule: &Rule) -> InspectReport {
    let container = match kaifuku_container::open(file) {
        Ok(c) => c,
        Err(e) => {
            let outcome = if is_unsupported(&e) {
                Outcome::Refused
            } else {
                Outcome::Error
            };
            return InspectReport::failed(rule, outcome, e.to_string(), None);
        }
    };
    let info = container.info();
    let table = match kaifuku_partition::read_partitions(&container) {
        Ok(t) => t,
        Err(e) => return InspectReport::failed(rule, Outcome::Error, e.to_string(), Some(info)),
    };
    let mut volumes = Vec::new();
    for p in table.partitions.iter().filter(|p| !p.container) {
        let bare = table.scheme == kaifuku_partition::Scheme::None;
        let mut report = VolumeReport {
            partition: (!bare).then_some(p.number),
            offset: p.start,
            size: p.size,
            filesystem: "unknown".into(),
            ntfs: None,
            rule: None,
            fix_blockers: Vec::new(),
            error: None,
            refused: false,
        };
        match p.view(&container) {
            Ok(view) => inspect_volume(&view, rule, &mut report),
            Err(e) => {
                report.error = Some(format!("partition {} lies outside the disk: {e}", p.number))
            }
        }
        volumes.push(report);
    }
    let windows_volumes: Vec<usize> = volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| v.ntfs.as_ref().is_some_and(|n| n.windows))
        .map(|(i, _)| i)
        .collect();
    let mut reasons = Vec::new();
    let found: usize = volumes
        .iter()
        .filter_map(|v| v.rule.as_ref())
        .map(|r| r.matches.len())
        .sum();
    let errors: Vec<String> = volumes
        .iter()
        .filter_map(|v| {
            v.error
                .as_ref()
                .filter(|_| !v.refused)
                .map(|e| format!("{}: {e}", volume_name(v)))
        })
        .collect();
    let refusals: Vec<String> = volumes
        .iter()
        .filter_map(|v| {
            v.error
                .as_ref()
                .filter(|_| v.refused)
                .map(|e| format!("{}: {e}", volume_name(v)))
        })
        .collect();
    let outcome = if found > 0 {
        reasons.push(format!("{found} file(s) match {}", rule.title));
        Outcome::Matches
    } else if !errors.is_empty() {
        reasons.extend(errors);
        Outcome::Error
    } else if !refusals.is_empty() {
        reasons.extend(refusals);
        Outcome::Refused
    } else {
        if windows_volumes.is_empty() {
            reasons.push("no NTFS volume holds \\Windows\\System32".into());
        }
        for v in volumes
            .iter()
            .filter_map(|v| v.rule.as_ref().map(|r| (v, r)))
        {
            if !v.1.directory_exists {
                reasons.push(format!(
                    "{}: {} does not exist",
                    volume_name(v.0),
                    rule.directory
                ));
            } else {
                reasons.push(format!(
                    "{}: no file in {} matches {}",
                    volume_name(v.0),
                    rule.directory,
                    rule.pattern
                ));
            }
        }
        Outcome::NothingToFix
    };
    InspectReport {
        container: Some(info),
        partitions: Some(table),
        volumes,
        windows_volumes,
        rule: rule.clone(),
        outcome,
        reasons,
    }
}

pub fn volume_name(v: &VolumeReport) -> String {
    let label = v
        .ntfs
        .as_ref()
        .and_then(|n| n.label.clone())
        .filter(|l| !l.is_empty());
    let place = match v.partition {
        Some(n) => format!("partition {n}"),
        None => "volume".to_string(),
    };
    match label {
        Some(l) => format!("{place} \"{l}\""),
        None => place,
    }
}

fn is_unsupported(e: &ContainerError) -> bool {
    e.is_unsupported()
}

fn inspect_volume<R: ReadAt>(view: &Slice<R>, rule: &Rule, report: &mut VolumeReport) {
    let mut sector = [0u8; 512];
    if view.size() < 512 || view.read_at(0, &mut sector).is_err() {
        report.filesystem = "unknown".into();
        return;
    }
    match boot_kind(&sector) {
        Some(BootKind::BitLocker) => {
            report.filesystem = "bitlocker".into();
            report.refused = true;
            report.error = Some(NtfsError::BitLocker.to_string());
            report.fix_blockers.push(NtfsError::BitLocker.to_string());
            return;
        }
        Some(BootKind::Ntfs) => report.filesystem = "ntfs".into(),
        None => {
            if &sector[0x52..0x5A] == b"FAT32   "
                || &sector[0x36..0x3B] == b"FAT16"
                || &sector[0x36..0x3B] == b"FAT12"
            {
                report.filesystem = "fat".into();
            }
            return;
        }
    }
    let vol = match Volume::open(view) {
        Ok(v) => v,
        Err(e) => {
            report.refused = matches!(e, NtfsError::Unsupported(_));
            report.error = Some(e.to_string());
            return;
        }
    };
    let summary = match vol.summary() {
        Ok(s) => s,
        Err(e) => {
            report.refused = matches!(e, NtfsError::Unsupported(_));
            report.error = Some(e.to_string());
            return;
        }
    };
    if !summary.log.state.is_clean() {
        report.fix_blockers.push(format!(
            "the NTFS journal ($LogFile) is {} — Windows would replay it over an offline edit; fixing needs consent to discard it (Windows then runs chkdsk at the next boot)",
            summary.log.state.describe()
        ));
    }
    if summary.hibernation.hibernated {
        report.fix_blockers.push(
            "Windows is hibernated (hiberfil.sys holds a saved session that would overwrite the edit on resume); boot Windows and shut it down fully, or delete the hibernation file in Windows, first".into(),
        );
    }
    if summary.quota_tracking {
        report.fix_blockers.push(QUOTA_BLOCKER.into());
    }
    let windows = summary.windows;
    report.ntfs = Some(summary);
    if rule.windows_only && !windows {
        return;
    }
    match run_rule(&vol, rule) {
        Ok(r) => report.rule = Some(r),
        Err(e) => {
            report.refused = matches!(e, NtfsError::Unsupported(_));
            report.error = Some(e.to_string());
        }
    }
}

/// Why a volume with disk quotas tracked is not edited offline.
pub const QUOTA_BLOCKER: &str = "disk quotas are tracked on this volume, and an offline delete would leave the quota accounting wrong; turn quota tracking off in Windows, or delete the file from Windows Recovery";

/// Lists the rule's directory and judges every name that matches.
pub fn run_rule<R: ReadAt>(vol: &Volume<R>, rule: &Rule) -> Result<RuleResult, NtfsError> {
    let Some(dir) = vol.lookup_dir(&rule.directory)? else {
        return Ok(RuleResult {
            directory_exists: false,
            matches: Vec::new(),
        });
    };
    let up = vol.upcase()?;
    let pattern: Vec<u16> = rule.pattern.encode_utf16().collect();
    let index = vol.directory(&dir)?;
    // A DOS-only entry is the short twin of a Win32 name; the file is reported once, by its long name.
    let candidates: Vec<_> = index
        .entries(vol)?
        .into_iter()
        .filter(|e| {
            e.key.namespace != kaifuku_ntfs::index::NS_DOS && up.glob_match(&pattern, &e.key.name)
        })
        .collect();
    // Names match case-insensitively, as Windows opens them: POSIX names that differ only in case
    // (made by Linux tools) all match, and are all listed before anything is deleted.
    let mut matches = Vec::new();
    for e in candidates {
        let details = vol.file_details(&e)?;
        let dir_path = rule.directory.trim_end_matches('\\');
        matches.push(MatchReport {
            path: format!("{dir_path}\\{}", details.name),
            header_matches: rule.header_matches(&details),
            verdict: rule.verdict(&details),
            file: details,
        });
    }
    Ok(RuleResult {
        directory_exists: true,
        matches,
    })
}
