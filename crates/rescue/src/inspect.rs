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
    /// The directory the matches are in: the rule's own, or where links on the way led.
    pub directory: String,
    pub matches: Vec<MatchReport>,
    /// What the rule met and left alone, or followed, on the way.
    pub notices: Vec<RuleNotice>,
}

/// Something odd the rule met that does not stop it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RuleNotice {
    /// A directory whose name matches the pattern: only files are deleted, so it stays.
    DirectorySkipped { path: String },
    /// A junction or symbolic link on the rule's path was followed, as Windows would.
    LinkFollowed { link: String, target: String },
}

impl std::fmt::Display for RuleNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleNotice::DirectorySkipped { path } => {
                write!(f, "{path} is a directory, not a file: it is left alone")
            }
            RuleNotice::LinkFollowed { link, target } => write!(
                f,
                "{link} is a link to {target}; followed, as Windows would"
            ),
        }
    }
}

/// Where the rule's directory is, after following links on the way.
enum DirLookup<R: ReadAt> {
    Missing,
    Found {
        record: kaifuku_ntfs::FileRecord,
        path: String,
        notices: Vec<RuleNotice>,
        _reader: std::marker::PhantomData<R>,
    },
}

/// Most links followed on one path (Windows stops at 63; real systems use one or two).
const MAX_LINK_HOPS: usize = 8;

/// Looks up `path` from the root, following junctions and symbolic links that lead elsewhere on
/// this (the Windows) volume. A link kaifuku cannot follow is refused with what to do instead.
fn resolve_directory<R: ReadAt>(vol: &Volume<R>, path: &str) -> Result<DirLookup<R>, NtfsError> {
    let split = |p: &str| -> Vec<String> {
        p.split(['\\', '/'])
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let mut pending = split(path);
    let mut notices = Vec::new();
    'restart: for _ in 0..=MAX_LINK_HOPS {
        let mut dir = vol.read_record(kaifuku_ntfs::volume::RECORD_ROOT)?;
        let mut walked: Vec<String> = Vec::new();
        for (i, comp) in pending.iter().enumerate() {
            if !dir.is_directory() {
                return Ok(DirLookup::Missing);
            }
            let name: Vec<u16> = comp.encode_utf16().collect();
            let Some(entry) = vol.directory(&dir)?.lookup(vol, &name)? else {
                return Ok(DirLookup::Missing);
            };
            let rec = vol.read_live(entry.file_ref)?;
            let parent = format!("\\{}", walked.join("\\"));
            walked.push(entry.name());
            let here = format!("\\{}", walked.join("\\"));
            if let Some(link) = vol.reparse_target(&rec)? {
                let shown = match &link {
                    kaifuku_ntfs::reparse::ReparseTarget::Link { target, .. } => target.clone(),
                    kaifuku_ntfs::reparse::ReparseTarget::Other { tag } => {
                        format!("a reparse point of tag {tag:#010x}")
                    }
                };
                let Some(next) = link.on_windows_volume(&parent) else {
                    return Err(NtfsError::Unsupported(format!(
                        "{here} is a link to {shown}, which kaifuku cannot follow on this volume; fix the volume it leads to, or name the real directory with the command line's --path"
                    )));
                };
                notices.push(RuleNotice::LinkFollowed {
                    link: here,
                    target: shown,
                });
                let mut rest = split(&next);
                rest.extend(pending[i + 1..].iter().cloned());
                pending = rest;
                continue 'restart;
            }
            dir = rec;
        }
        if !dir.is_directory() {
            return Ok(DirLookup::Missing);
        }
        // Without links the rule's own spelling names the directory, as before.
        let path = if notices.is_empty() {
            path.to_string()
        } else {
            format!("\\{}", walked.join("\\"))
        };
        return Ok(DirLookup::Found {
            record: dir,
            path,
            notices,
            _reader: std::marker::PhantomData,
        });
    }
    Err(NtfsError::Unsupported(format!(
        "{path}: more than {MAX_LINK_HOPS} links on the way; kaifuku does not follow link loops"
    )))
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
            Ok(view) => inspect_volume(&view, rule, windows_data_type(&p.type_code), &mut report),
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

/// Partition types under which Windows keeps its NTFS volumes: GPT "Microsoft basic data", MBR
/// 0x07 (IFS: NTFS or exFAT) and a bare volume that was recognised as NTFS.
fn windows_data_type(type_code: &str) -> bool {
    matches!(
        type_code,
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" | "0x07" | "NTFS"
    )
}

/// Other file systems a Windows data partition may hold: nothing to repair there, and no damage.
fn other_filesystem(sector: &[u8]) -> Option<&'static str> {
    if &sector[0x52..0x5A] == b"FAT32   "
        || &sector[0x36..0x3B] == b"FAT16"
        || &sector[0x36..0x3B] == b"FAT12"
    {
        Some("fat")
    } else if &sector[3..11] == b"EXFAT   " {
        Some("exfat")
    } else if &sector[3..7] == b"ReFS" {
        Some("refs")
    } else {
        None
    }
}

/// Why a Windows data partition's first sector is no file system, in plain words, with the backup
/// NTFS boot sector (the volume's last sector) mentioned when it is intact.
fn unreadable_boot_sector<R: ReadAt>(view: &Slice<R>, sector: &[u8]) -> String {
    let what = if sector.iter().all(|b| *b == 0) {
        "is all zeros".to_string()
    } else {
        let oem: String = sector[3..11]
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        format!("is not the boot sector of a file system kaifuku knows (OEM id \"{oem}\")")
    };
    let size = view.size();
    let backup = [512u64, 4096].into_iter().any(|ss| {
        let mut b = [0u8; 512];
        size >= ss
            && view.read_at(size - ss, &mut b).is_ok()
            && boot_kind(&b) == Some(BootKind::Ntfs)
    });
    let next = if backup {
        "An intact backup NTFS boot sector lies at the end of the partition: chkdsk in Windows Recovery (or `ntfsfix` on Linux) can restore the first one; then try again"
    } else {
        "The volume cannot be read; check that this is the right image and that it was exported completely"
    };
    format!(
        "this Windows data partition's boot sector {what}, so its volume cannot be read. {next}"
    )
}

fn inspect_volume<R: ReadAt>(
    view: &Slice<R>,
    rule: &Rule,
    windows_type: bool,
    report: &mut VolumeReport,
) {
    let mut sector = [0u8; 512];
    if view.size() < 512 || view.read_at(0, &mut sector).is_err() {
        report.filesystem = "unknown".into();
        if windows_type {
            report.error =
                Some("this Windows data partition is too short or cannot be read".into());
        }
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
            match other_filesystem(&sector) {
                Some(fs) => report.filesystem = fs.into(),
                // A damaged boot sector where Windows keeps its volume must not pass for "nothing
                // to fix": the file may well be there.
                None if windows_type => {
                    report.error = Some(unreadable_boot_sector(view, &sector));
                }
                None => {}
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
    let (dir, directory, mut notices) = match resolve_directory(vol, &rule.directory)? {
        DirLookup::Missing => {
            return Ok(RuleResult {
                directory_exists: false,
                directory: rule.directory.clone(),
                matches: Vec::new(),
                notices: Vec::new(),
            })
        }
        DirLookup::Found {
            record,
            path,
            notices,
            ..
        } => (record, path, notices),
    };
    // The directory is checked before its listing is believed: a damaged index could hide the
    // very file the rule looks for, and "nothing to fix" over it would be a wrong answer.
    let health = kaifuku_ntfs::check::check_directory(vol, dir.number)?;
    if !health.is_clean() {
        let first: Vec<&str> = health
            .problems
            .iter()
            .take(3)
            .map(|p| p.message.as_str())
            .collect();
        return Err(NtfsError::Corrupt(format!(
            "the directory {} is damaged ({}); its listing cannot be trusted. Run chkdsk on the volume in Windows or Windows Recovery, then try again",
            directory,
            first.join("; ")
        )));
    }
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
    let dir_path = directory.trim_end_matches('\\');
    for e in candidates {
        // Only files are deleted: a directory named like one stays, and says so.
        if vol.read_live(e.file_ref)?.is_directory() {
            notices.push(RuleNotice::DirectorySkipped {
                path: format!("{dir_path}\\{}", e.name()),
            });
            continue;
        }
        let details = vol.file_details(&e)?;
        matches.push(MatchReport {
            path: format!("{dir_path}\\{}", details.name),
            header_matches: rule.header_matches(&details),
            verdict: rule.verdict(&details),
            file: details,
        });
    }
    Ok(RuleResult {
        directory_exists: true,
        directory,
        matches,
        notices,
    })
}
