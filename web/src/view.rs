//! What the worker tells the page: plain data (serde) built from the core's reports, with every
//! fact the page shows and every problem as a code the page words in the reader's language.
//!
//! The core's own sentences (English) travel along as `detail` for the technical reader; the page
//! never needs to parse them.

use kaifuku_container::{ContainerError, Format, OtherFormat};
use kaifuku_io::PatchData;
use kaifuku_ntfs::LogState;
use kaifuku_partition::NoticeKind;
use kaifuku_partition::Scheme;
use kaifuku_rescue::inspect::RuleNotice;
use kaifuku_rescue::{InspectReport, Outcome, Plan, Verdict};
use serde::{Deserialize, Serialize};

/// A volume as the page names it: "partition 3 “Windows”" / "パーティション 3 “Windows”".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeName {
    pub partition: Option<u32>,
    pub label: Option<String>,
}

impl VolumeName {
    pub fn of(v: &kaifuku_rescue::VolumeReport) -> VolumeName {
        VolumeName {
            partition: v.partition,
            label: v
                .ntfs
                .as_ref()
                .and_then(|n| n.label.clone())
                .filter(|l| !l.is_empty()),
        }
    }
}

/// How many calls reached the picked file and how many bytes they moved, and how long it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Reads {
    pub calls: u64,
    pub bytes: u64,
    /// Milliseconds the step took in the worker.
    pub ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerView {
    /// "raw", "vhd_fixed" or "vhd_dynamic".
    pub format: String,
    pub virtual_size: u64,
    pub file_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionView {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub type_name: String,
    pub name: Option<String>,
    pub container: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionsView {
    /// "gpt", "mbr" or "none".
    pub scheme: String,
    pub sector_size: u32,
    pub partitions: Vec<PartitionView>,
    /// The partition reader's notes and warnings, as codes the page says in either language.
    pub notes: Vec<NoticeKind>,
    pub warnings: Vec<NoticeKind>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NtfsView {
    pub label: Option<String>,
    pub version: String,
    pub size: u64,
    pub cluster_size: u32,
    pub sector_size: u32,
    pub serial: String,
    pub dirty: bool,
    /// "clean", "unclean", "v2.0" or "unreadable".
    pub log_state: String,
    pub log_empty: bool,
    pub hiberfil_present: bool,
    pub hibernated: bool,
    pub quota_tracking: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchView {
    pub path: String,
    pub name: String,
    pub dos_name: Option<String>,
    pub mft_record: u64,
    pub size: u64,
    pub created: String,
    pub modified: String,
    pub header_hex: String,
    /// Whether the first bytes are the rule's known-bad header (`None`: the rule knows none).
    pub header_known_bad: Option<bool>,
    pub all_zero: bool,
    /// "faulty", "fixed" or "unknown".
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeView {
    pub name: VolumeName,
    pub partition: Option<u32>,
    pub offset: u64,
    pub size: u64,
    /// "ntfs", "bitlocker", "fat", "exfat", "refs" or "unknown".
    pub filesystem: String,
    pub windows: bool,
    pub ntfs: Option<NtfsView>,
    /// Whether the rule ran here, and whether its directory exists.
    pub rule_ran: bool,
    pub directory_exists: bool,
    pub matches: Vec<MatchView>,
    pub error: Option<String>,
    pub refused: bool,
}

/// Why something cannot go on, or what the user must know; worded by the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ProblemCode {
    /// VHDX, VMDK, qcow2: recognised but not read yet.
    UnsupportedFormat {
        format: String,
        qemu: String,
    },
    DifferencingVhd,
    /// The container (VHD metadata) is damaged or the file is truncated.
    DamagedContainer,
    /// The partition table could not be read.
    DamagedPartitions,
    BitLocker,
    Hibernated,
    /// Disk quotas are tracked on the volume: an offline delete would leave them stale.
    QuotaTracking,
    /// Unclean or v2.0 journal on the Windows volume: consent needed.
    JournalUnclean {
        state: String,
    },
    NoWindows,
    NoCrowdStrikeDirectory,
    NoMatch,
    /// An entry named like a target is a directory: left alone (a notice).
    DirectorySkipped {
        path: String,
    },
    /// A junction or symbolic link on the rule's path was followed (a notice).
    LinkFollowed {
        link: String,
        target: String,
    },
    /// A volume uses an NTFS feature kaifuku does not handle yet.
    VolumeUnsupported,
    /// A volume is damaged.
    VolumeDamaged,
    /// The picked file could not be read (removed, changed, permission).
    ReadFailed,
    /// A patch would land in an unallocated block of a dynamic VHD.
    PatchInUnallocatedBlock,
    /// Planning or verifying the fix failed.
    FixFailed,
    /// The fixed view did not pass re-verification.
    VerificationFailed,
    /// Anything else (a bug).
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(flatten)]
    pub code: ProblemCode,
    /// The volume it concerns.
    pub volume: Option<VolumeName>,
    /// The core's technical explanation (English), if any.
    pub detail: Option<String>,
}

impl Problem {
    pub fn new(code: ProblemCode, volume: Option<VolumeName>, detail: Option<String>) -> Self {
        Problem {
            code,
            volume,
            detail,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectView {
    pub file_name: String,
    pub file_size: u64,
    pub rule_id: String,
    pub rule_title: String,
    pub rule_path: String,
    pub container: Option<ContainerView>,
    pub partitions: Option<PartitionsView>,
    pub volumes: Vec<VolumeView>,
    /// "matches", "nothing-to-fix", "refused" or "error".
    pub outcome: String,
    pub problems: Vec<Problem>,
    /// Matches were found and nothing refuses the fix, perhaps after consent.
    pub can_fix: bool,
    /// The fix needs consent to discard an unclean journal.
    pub needs_consent: bool,
    pub reads: Reads,
}

impl InspectView {
    pub fn match_count(&self) -> usize {
        self.volumes.iter().map(|v| v.matches.len()).sum()
    }
}

pub fn format_code(f: Format) -> &'static str {
    match f {
        Format::Raw => "raw",
        Format::VhdFixed => "vhd_fixed",
        Format::VhdDynamic => "vhd_dynamic",
    }
}

pub fn log_state_code(s: LogState) -> &'static str {
    match s {
        LogState::Clean => "clean",
        LogState::Unclean => "unclean",
        LogState::V2 => "v2.0",
        LogState::Unreadable => "unreadable",
    }
}

fn verdict_code(v: Verdict) -> &'static str {
    match v {
        Verdict::Faulty => "faulty",
        Verdict::Fixed => "fixed",
        Verdict::Unknown => "unknown",
        Verdict::NotApplicable => "none",
    }
}

/// The problem a container error stands for.
pub fn container_problem(e: &ContainerError) -> Problem {
    let code = match e {
        ContainerError::UnsupportedFormat(f) => ProblemCode::UnsupportedFormat {
            format: match f {
                OtherFormat::Vhdx => "VHDX".into(),
                OtherFormat::VmdkSparse => "VMDK".into(),
                OtherFormat::VmdkDescriptor => "VMDK (descriptor)".into(),
                OtherFormat::Qcow2 => "qcow2".into(),
                #[allow(unreachable_patterns)]
                _ => f.to_string(),
            },
            qemu: f.qemu_name().into(),
        },
        ContainerError::DifferencingVhd => ProblemCode::DifferencingVhd,
        ContainerError::PatchInUnallocatedBlock { .. } => ProblemCode::PatchInUnallocatedBlock,
        ContainerError::Read { .. } => ProblemCode::ReadFailed,
        _ => ProblemCode::DamagedContainer,
    };
    Problem::new(code, None, Some(e.to_string()))
}

/// Builds the page's view of an inspect report. `container_error` is what opening the container
/// said, when it failed (the report only keeps its message).
pub fn inspect_view(
    file_name: &str,
    report: &InspectReport,
    container_error: Option<&ContainerError>,
    reads: Reads,
) -> InspectView {
    let container = report.container.as_ref().map(|c| ContainerView {
        format: format_code(c.format).into(),
        virtual_size: c.virtual_size,
        file_size: c.file_size,
    });
    let partitions = report.partitions.as_ref().map(|t| PartitionsView {
        scheme: match t.scheme {
            Scheme::Gpt => "gpt",
            Scheme::Mbr => "mbr",
            Scheme::None => "none",
        }
        .into(),
        sector_size: t.sector_size,
        partitions: t
            .partitions
            .iter()
            .map(|p| PartitionView {
                number: p.number,
                start: p.start,
                size: p.size,
                type_name: p.type_name.clone(),
                name: p.name.clone().filter(|n| !n.is_empty()),
                container: p.container,
            })
            .collect(),
        notes: t.notes.iter().map(|n| n.kind.clone()).collect(),
        warnings: t.warnings.iter().map(|n| n.kind.clone()).collect(),
    });
    let mut problems = Vec::new();
    let volumes: Vec<VolumeView> = report
        .volumes
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = VolumeName::of(v);
            let ntfs = v.ntfs.as_ref().map(|n| NtfsView {
                label: n.label.clone().filter(|l| !l.is_empty()),
                version: n.ntfs_version.clone(),
                size: n.size,
                cluster_size: n.cluster_size,
                sector_size: n.sector_size,
                serial: n.serial.clone(),
                dirty: n.dirty,
                log_state: log_state_code(n.log.state).into(),
                log_empty: n.log.empty,
                hiberfil_present: n.hibernation.hiberfil_present,
                hibernated: n.hibernation.hibernated,
                quota_tracking: n.quota_tracking,
            });
            let matches = v
                .rule
                .iter()
                .flat_map(|r| r.matches.iter())
                .map(|m| MatchView {
                    path: m.path.clone(),
                    name: m.file.name.clone(),
                    dos_name: m.file.dos_name.clone(),
                    mft_record: m.file.mft_record,
                    size: m.file.size,
                    created: m.file.created.clone(),
                    modified: m.file.modified.clone(),
                    header_hex: m.file.header_hex.clone(),
                    header_known_bad: m.header_matches,
                    all_zero: m.file.all_zero && m.file.size > 0,
                    verdict: verdict_code(m.verdict).into(),
                })
                .collect();
            VolumeView {
                name,
                partition: v.partition,
                offset: v.offset,
                size: v.size,
                filesystem: v.filesystem.clone(),
                windows: report.windows_volumes.contains(&i),
                ntfs,
                rule_ran: v.rule.is_some(),
                directory_exists: v.rule.as_ref().is_some_and(|r| r.directory_exists),
                matches,
                error: v.error.as_ref().map(ToString::to_string),
                refused: v.refused(),
            }
        })
        .collect();

    // Problems, most important first.
    if report.container.is_none() {
        match container_error {
            Some(e) => problems.push(container_problem(e)),
            None => problems.push(Problem::new(
                ProblemCode::DamagedContainer,
                None,
                report.reasons.first().map(ToString::to_string),
            )),
        }
    } else if report.partitions.is_none() {
        problems.push(Problem::new(
            ProblemCode::DamagedPartitions,
            None,
            report.reasons.first().map(ToString::to_string),
        ));
    }
    let mut needs_consent = false;
    let mut blocked = false;
    // `volumes` was made from `report.volumes`, one for one.
    for (v, rv) in volumes.iter().zip(&report.volumes) {
        if v.filesystem == "bitlocker" {
            problems.push(Problem::new(
                ProblemCode::BitLocker,
                Some(v.name.clone()),
                v.error.clone(),
            ));
            continue;
        }
        if let Some(e) = &v.error {
            let code = if v.refused {
                ProblemCode::VolumeUnsupported
            } else {
                ProblemCode::VolumeDamaged
            };
            problems.push(Problem::new(code, Some(v.name.clone()), Some(e.clone())));
        }
        if let Some(r) = &rv.rule {
            for notice in &r.notices {
                let code = match notice {
                    RuleNotice::DirectorySkipped { path } => {
                        ProblemCode::DirectorySkipped { path: path.clone() }
                    }
                    RuleNotice::LinkFollowed { link, target } => ProblemCode::LinkFollowed {
                        link: link.clone(),
                        target: target.clone(),
                    },
                };
                problems.push(Problem::new(code, Some(v.name.clone()), None));
            }
        }
        let Some(n) = &v.ntfs else { continue };
        if v.matches.is_empty() {
            continue;
        }
        if n.hibernated {
            blocked = true;
            problems.push(Problem::new(
                ProblemCode::Hibernated,
                Some(v.name.clone()),
                None,
            ));
        }
        if n.quota_tracking {
            blocked = true;
            problems.push(Problem::new(
                ProblemCode::QuotaTracking,
                Some(v.name.clone()),
                None,
            ));
        }
        if n.log_state != "clean" {
            needs_consent = true;
            problems.push(Problem::new(
                ProblemCode::JournalUnclean {
                    state: n.log_state.clone(),
                },
                Some(v.name.clone()),
                None,
            ));
        }
    }
    if report.outcome == Outcome::NothingToFix {
        if report.windows_volumes.is_empty() {
            problems.push(Problem::new(ProblemCode::NoWindows, None, None));
        }
        for v in volumes.iter().filter(|v| v.rule_ran) {
            let code = if v.directory_exists {
                ProblemCode::NoMatch
            } else {
                ProblemCode::NoCrowdStrikeDirectory
            };
            problems.push(Problem::new(code, Some(v.name.clone()), None));
        }
    }
    let outcome = match report.outcome {
        Outcome::Matches => "matches",
        Outcome::NothingToFix => "nothing-to-fix",
        Outcome::Refused => "refused",
        Outcome::Error => "error",
    };
    InspectView {
        file_name: file_name.to_string(),
        file_size: report.container.as_ref().map_or(0, |c| c.file_size),
        rule_id: report.rule.id.clone(),
        rule_title: report.rule.title.clone(),
        rule_path: format!(
            "{}\\{}",
            report.rule.directory.trim_end_matches('\\'),
            report.rule.pattern
        ),
        container,
        partitions,
        volumes,
        outcome: outcome.into(),
        problems,
        can_fix: report.outcome == Outcome::Matches && !blocked,
        needs_consent: report.outcome == Outcome::Matches && !blocked && needs_consent,
        reads,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionView {
    pub path: String,
    pub volume: VolumeName,
    pub mft_record: u64,
    pub record_freed: bool,
    pub clusters_freed: u64,
    pub remaining_links: Option<u16>,
    pub removed_names: Vec<String>,
    pub side_indexes: Vec<String>,
}

/// One changed range of the virtual disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeView {
    pub offset: u64,
    pub len: u64,
    /// The structure it belongs to (technical, in English: "MFT record 2146", ...).
    pub label: String,
    /// For a fill (the journal reset): the byte repeated.
    pub fill: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub deletions: Vec<DeletionView>,
    /// Volumes whose journal is reset and which are marked dirty.
    pub journal_reset: Vec<VolumeName>,
    /// Changed ranges of the virtual disk.
    pub patches: Vec<RangeView>,
    /// The same changes as writes to the image file (what the download differs in).
    pub file_writes: Vec<RangeView>,
    pub bytes_changed: u64,
    /// Matches the core's own verification found on the patched view (0).
    pub matches_after: usize,
    pub reads: Reads,
}

pub fn plan_view(
    report: &InspectReport,
    plan: &Plan,
    output: &kaifuku_container::OutputPlan,
    reads: Reads,
) -> PlanView {
    let vname = |i: usize| {
        report
            .volumes
            .get(i)
            .map(VolumeName::of)
            .unwrap_or(VolumeName {
                partition: None,
                label: None,
            })
    };
    let mut file_writes: Vec<RangeView> = output
        .writes
        .iter()
        .map(|w| RangeView {
            offset: w.file_offset,
            len: w.bytes.len() as u64,
            label: w.label.clone(),
            fill: None,
        })
        .chain(output.fills.iter().map(|f| RangeView {
            offset: f.file_offset,
            len: f.len,
            label: f.label.clone(),
            fill: Some(f.byte),
        }))
        .collect();
    file_writes.sort_by_key(|r| r.offset);
    PlanView {
        deletions: plan
            .deletions
            .iter()
            .map(|d| DeletionView {
                path: d.path.clone(),
                volume: vname(d.volume),
                mft_record: d.outcome.record,
                record_freed: d.outcome.record_freed,
                clusters_freed: d.outcome.clusters_freed,
                remaining_links: d.outcome.remaining_links,
                removed_names: d.outcome.removed_names.clone(),
                side_indexes: d.outcome.side_indexes.clone(),
            })
            .collect(),
        journal_reset: plan.journals_discarded.iter().map(|i| vname(*i)).collect(),
        patches: plan
            .patches
            .iter()
            .map(|p| RangeView {
                offset: p.offset,
                len: p.len(),
                label: p.label.clone(),
                fill: match p.data {
                    PatchData::Fill { byte, .. } => Some(byte),
                    PatchData::Bytes(_) => None,
                },
            })
            .collect(),
        file_writes,
        bytes_changed: plan.bytes_changed(),
        matches_after: plan.verification.matches_after,
        reads,
    }
}

/// One fact re-verified on the fixed image (read back through exactly the bytes of the download).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckView {
    /// The container opens again with the same format and size.
    ContainerSame { format: String, virtual_size: u64 },
    /// The rule finds this many files on the volume (0 expected).
    RuleFinds { volume: VolumeName, count: usize },
    /// The file's MFT record is marked free.
    RecordFree { volume: VolumeName, record: u64 },
    /// The journal reads as clean and the dirty flag is set (chkdsk at next boot).
    JournalReset { volume: VolumeName },
    /// The NTFS invariant checker's findings on the changed records and the directory.
    Invariants { volume: VolumeName, problems: usize },
    /// The download differs from the picked file only in the planned ranges.
    OnlyPlannedRanges { ranges: usize, bytes: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedView {
    pub output_name: String,
    pub undo_name: String,
    pub report_name: String,
    pub output_size: u64,
    pub undo_size: u64,
    pub checks: Vec<CheckView>,
    pub reads: Reads,
    /// The worker's wasm memory, in bytes.
    pub wasm_memory: u64,
}
