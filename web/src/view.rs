//! What the worker tells the page: plain data (serde) built from the core's reports, with every
//! fact the page shows. What the user must be told is the core's own typed values (its reasons,
//! blockers, notices, refusals and failures), carried as they are (the core's types read back what
//! they serialise: a code, the facts, and an English message the page passes over) and worded by
//! the page in the reader's language; the page never parses a sentence.
//!
//! The core's own sentences (English) are at hand as [`Problem::detail`] for the technical
//! reader.

use kaifuku_container::{FileWriteLabel, Format};
use kaifuku_io::PatchData;
use kaifuku_ntfs::edit::ChangedStructure;
use kaifuku_ntfs::logfile::analysis::{Bitmap, IndexBlock};
use kaifuku_ntfs::logfile::LfsVersion;
use kaifuku_ntfs::LogState;
use kaifuku_partition::{NoticeKind, PartitionType, Scheme};
use kaifuku_rescue::explain::{
    self, ExplainGap, Explanation, PatchView, StructureView, TargetView,
};
use kaifuku_rescue::registry::RegistryReport;
use kaifuku_rescue::vocabulary::{
    BitLockerProblem, Blocker, ContainerProblem, FixRefusal, JournalOverlap, JournalReplay,
    JournalReport, NtfsProblem, Reason, RuleNotice, SkippedRule, VerifyFailure, VolumeName,
    VolumeProblem,
};
use kaifuku_rescue::{
    FileSystem, FixError, InspectReport, Outcome, Plan, Rule, RuleId, UserRuleText, Verdict,
    VolumeReport,
};
use serde::{Deserialize, Serialize};

/// "Show the bytes": the image's structures and the fix's patches, annotated
/// ([`kaifuku_rescue::explain`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainView {
    pub partitions: Vec<explain::PartitionView>,
    pub structures: Vec<StructureView>,
    pub targets: Vec<TargetView>,
    pub patches: Vec<PatchView>,
    pub gaps: Vec<ExplainGap>,
}

impl From<Explanation> for ExplainView {
    fn from(e: Explanation) -> Self {
        ExplainView {
            partitions: e.partitions,
            structures: e.structures,
            targets: e.targets,
            patches: e.patches,
            gaps: e.gaps,
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
    pub format: Format,
    pub virtual_size: u64,
    pub file_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionView {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub partition_type: PartitionType,
    pub name: Option<String>,
    pub container: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionsView {
    pub scheme: Scheme,
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
    pub log_state: LogState,
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
    pub verdict: Verdict,
    /// Which rule of [`InspectView::rules`] found it (its index).
    #[serde(default)]
    pub rule: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeView {
    pub name: VolumeName,
    pub partition: Option<u32>,
    pub offset: u64,
    pub size: u64,
    pub filesystem: FileSystem,
    pub windows: bool,
    pub ntfs: Option<NtfsView>,
    /// Whether the rule ran here, and whether its directory exists.
    pub rule_ran: bool,
    pub directory_exists: bool,
    pub matches: Vec<MatchView>,
    /// Why the volume could not be examined, in the core's words (the problems list words it).
    pub error: Option<String>,
    pub refused: bool,
    /// What the journal holds, when it is not clean (the core read it only then).
    #[serde(default)]
    pub journal: Option<JournalView>,
    /// Whether the fix completes that journal as Windows would, or why not.
    #[serde(default)]
    pub journal_replay: Option<JournalReplayView>,
    /// On a Windows volume: the build its `SOFTWARE` hive records and the hives' states (the
    /// core's typed values, worded by the page).
    #[serde(default)]
    pub registry: Option<RegistryReport>,
    /// Rules of the set that did not run here, and why (the registry transaction-log rules on a
    /// build before theirs, or where the build cannot be read).
    #[serde(default)]
    pub skipped_rules: Vec<SkippedRule>,
}

/// Whether the fix completes the journal as Windows would at its next start (the core's
/// `JournalReplay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum JournalReplayView {
    /// The fix replays it first: `committed` updates completed, `uncommitted` taken back.
    Replayed { committed: u32, uncommitted: u32 },
    /// A journal version kaifuku does not replay (1.1 and 2.0 are replayed).
    UnsupportedVersion { version: String },
    /// A log record the replay does not understand exactly.
    NotUnderstood {
        lsn: u64,
        operation: String,
        /// The core's explanation (English), for the technical reader.
        detail: String,
    },
    /// Damage or an unreadable structure; the core's explanation (English).
    Failed { detail: String },
}

impl JournalReplayView {
    /// The page's view of the core's replay outcome.
    pub fn of(r: &JournalReplay) -> JournalReplayView {
        match r {
            JournalReplay::Replayed {
                committed,
                uncommitted,
                ..
            } => JournalReplayView::Replayed {
                committed: *committed,
                uncommitted: *uncommitted,
            },
            JournalReplay::UnsupportedVersion { version } => {
                JournalReplayView::UnsupportedVersion {
                    version: match version {
                        LfsVersion::V1_1 => "1.1".into(),
                        LfsVersion::V2_0 => "2.0".into(),
                    },
                }
            }
            JournalReplay::NotUnderstood {
                lsn,
                operation,
                detail,
            } => JournalReplayView::NotUnderstood {
                lsn: *lsn,
                operation: operation.clone(),
                detail: detail.clone(),
            },
            JournalReplay::Failed { error } => JournalReplayView::Failed {
                detail: error.to_string(),
            },
        }
    }
}

/// An index block the journal changes: its directory's (or index's) record, the index's name and
/// the block's VCN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexBlockView {
    pub record: u64,
    pub name: String,
    pub vcn: u64,
}

/// Which bitmap a range of bits is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum BitmapView {
    /// `$Bitmap`: bits are clusters.
    Clusters,
    /// `$MFT:$BITMAP`: bits are MFT records.
    MftRecords,
    /// An index's `$BITMAP`: bits are its blocks.
    IndexBlocks { record: u64, name: String },
    /// Another bitmap.
    Other { record: u64, attribute_type: u32 },
}

/// Whether the journal's pending changes touch what the fix changes (the core's
/// `JournalOverlap`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum OverlapView {
    NoOverlap,
    Overlaps {
        file_records: Vec<u64>,
        index_blocks: Vec<IndexBlockView>,
        mft_bitmap_pages: Vec<u64>,
        cluster_bitmap_pages: Vec<u64>,
        /// (first cluster, clusters)
        clusters: Vec<(u64, u64)>,
    },
}

/// The analysis of a journal (the core's `JournalSummary`): the facts the page words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalFactsView {
    /// "1.1" or "2.0".
    pub version: String,
    pub checkpoint_lsn: u64,
    pub current_lsn: u64,
    pub records_after_checkpoint: u64,
    pub committed: u64,
    pub uncommitted: u64,
    /// (record, its path when resolved)
    pub file_records: Vec<(u64, Option<String>)>,
    pub index_blocks: Vec<IndexBlockView>,
    /// (first cluster, clusters)
    pub lcn_ranges: Vec<(u64, u64)>,
    /// (bitmap, first bit, bits)
    pub bitmap_ranges: Vec<(BitmapView, u64, u64)>,
    pub unresolved: u32,
    pub overlap: Option<OverlapView>,
}

/// What the journal of a volume that is not clean holds (the core's `JournalReport`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum JournalView {
    Analysed(Box<JournalFactsView>),
    NoLiveLog,
    /// The core's explanation (English), for the technical reader.
    Unreadable {
        detail: String,
    },
}

impl JournalView {
    /// The page's view of the core's journal report.
    pub fn of(j: &JournalReport) -> JournalView {
        match j {
            JournalReport::Analysed { journal } => {
                JournalView::Analysed(Box::new(JournalFactsView {
                    version: match journal.version {
                        LfsVersion::V1_1 => "1.1".into(),
                        LfsVersion::V2_0 => "2.0".into(),
                    },
                    checkpoint_lsn: journal.checkpoint_lsn,
                    current_lsn: journal.current_lsn,
                    records_after_checkpoint: journal.records_after_checkpoint,
                    committed: journal.transactions_committed,
                    uncommitted: journal.transactions_uncommitted,
                    file_records: journal
                        .file_records
                        .iter()
                        .map(|r| (r.record, r.path.clone()))
                        .collect(),
                    index_blocks: journal
                        .index_blocks
                        .iter()
                        .map(IndexBlockView::of)
                        .collect(),
                    lcn_ranges: journal
                        .lcn_ranges
                        .iter()
                        .map(|r| (r.first, r.count))
                        .collect(),
                    bitmap_ranges: journal
                        .bitmap_ranges
                        .iter()
                        .map(|r| {
                            let bitmap = match &r.bitmap {
                                Bitmap::Clusters => BitmapView::Clusters,
                                Bitmap::MftRecords => BitmapView::MftRecords,
                                Bitmap::IndexBlocks { record, name } => BitmapView::IndexBlocks {
                                    record: *record,
                                    name: name.clone(),
                                },
                                Bitmap::Other {
                                    record,
                                    attribute_type,
                                } => BitmapView::Other {
                                    record: *record,
                                    attribute_type: *attribute_type,
                                },
                            };
                            (bitmap, r.first, r.count)
                        })
                        .collect(),
                    unresolved: journal.unresolved,
                    overlap: journal.overlap.as_ref().map(OverlapView::of),
                }))
            }
            JournalReport::NoLiveLog => JournalView::NoLiveLog,
            JournalReport::Unreadable { error } => JournalView::Unreadable {
                detail: error.to_string(),
            },
        }
    }
}

/// The code serde gives a value of the core (what its JSON reports say), for the page's DOM
/// attributes that scripts and tests read: `code(serde_json::to_value(format))`.
pub fn code(value: Result<serde_json::Value, serde_json::Error>) -> String {
    match value {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v
            .get("code")
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .to_string(),
        Err(_) => String::new(),
    }
}

/// What the user must be told about the image or a step: the core's typed values, worded by the
/// page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Why the image, its partition table or a volume cannot be examined, or why nothing matches.
    Reason { reason: Reason },
    /// What stops the fix on a volume whose files match (an unclean journal: until consent).
    Blocked {
        volume: VolumeName,
        blocker: Blocker,
    },
    /// Something the rule met on a volume that does not stop it.
    Notice {
        volume: VolumeName,
        notice: RuleNotice,
    },
    /// Planning the fix found nothing to fix, was refused, or failed.
    Fix { error: Box<FixError> },
    /// The fixed image did not verify.
    Verify { failure: VerifyFailure },
    /// A key file given to unlock BitLocker is not one (or not readable): what the reader said.
    KeyFile { kind: KeyFileKind, detail: String },
    /// A disk in cloud storage (a SAS URL) could not be read or written: what went wrong, and
    /// the browser's or the server's words.
    Remote {
        problem: RemoteProblem,
        detail: String,
    },
    /// The page or its worker failed (a bug), with what it said.
    Internal { detail: String },
}

/// What went wrong with a disk in cloud storage, each with its own advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteProblem {
    /// Not an `https://` (or `http://`) URL.
    NotAUrl,
    /// The browser got no answer it may read: the storage does not allow this page's origin
    /// (CORS), the page's security policy does not allow the host, or the network is down.
    Unreachable,
    /// The answer's headers (`Content-Range`, `ETag`, `x-ms-blob-type`) are hidden from the
    /// page: the CORS rule does not expose them.
    HeadersHidden,
    /// The server sent the whole blob for a range request (or no size): kaifuku reads ranges only.
    NoRanges,
    /// 401 or 403: the SAS token is wrong, expired, or does not allow this (writing needs `w`).
    AccessDenied,
    /// 412: the blob changed since kaifuku first read it (another writer).
    Changed,
    /// Another answer from the server.
    Status,
    /// The blob is not a page blob: it can be inspected, not changed in place.
    NotPageBlob,
    /// The fix would change the image file's size, which a page blob cannot take.
    SizeChanges,
    /// A write failed after others succeeded: the blob may be partly fixed; the undo file
    /// restores it.
    WriteFailed,
    /// The blob was written but does not verify when read back: the undo file restores it.
    WrittenNotVerified,
}

/// Which kind of key file the user picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFileKind {
    /// A startup key (`.BEK`).
    StartupKey,
    /// A key list (CSV).
    KeyList,
}

impl Problem {
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::Internal {
            detail: detail.into(),
        }
    }

    /// The core's technical explanation (English), where the page's words leave facts out.
    pub fn detail(&self) -> Option<String> {
        match self {
            Problem::Reason { reason } => match reason {
                Reason::Container { problem } => Some(problem.to_string()),
                Reason::Partitions { problem } => Some(problem.to_string()),
                Reason::Volume { problem, .. } => Some(problem.to_string()),
                Reason::PartitionTableDamaged { .. } | Reason::DamagedBareNtfs { .. } => {
                    Some(reason.to_string())
                }
                Reason::JournalMayHoldMatch { .. } => Some(reason.to_string()),
                Reason::Matches { .. }
                | Reason::NoWindowsVolume
                | Reason::DirectoryMissing { .. }
                | Reason::NoMatch { .. }
                | Reason::VolumeHasProblems { .. }
                | Reason::NoNtfsVolume
                | Reason::CheckedClean { .. } => None,
            },
            Problem::Blocked { .. } | Problem::Notice { .. } => None,
            Problem::Fix { error } => Some(match error.as_ref() {
                FixError::NothingToFix { reasons }
                | FixError::Refused {
                    refusal: FixRefusal::Inspect { reasons },
                } => reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
                FixError::Refused { refusal } => refusal.to_string(),
                FixError::Failed { failure } => failure.to_string(),
            }),
            Problem::Verify { failure } => Some(failure.to_string()),
            Problem::KeyFile { detail, .. }
            | Problem::Remote { detail, .. }
            | Problem::Internal { detail } => Some(detail.clone()),
        }
    }

    /// The code of the core's value this problem is about (the innermost one that says what
    /// happened), as the JSON reports have it: `bitlocker`, `directory_missing`, `hibernated`, ...
    pub fn code(&self) -> String {
        use serde_json::to_value;
        match self {
            Problem::Reason { reason } => match reason {
                Reason::Container { problem } => code(to_value(problem)),
                Reason::Partitions { problem } => code(to_value(problem)),
                Reason::Volume { problem, .. } => match problem {
                    VolumeProblem::Ntfs { error } => code(to_value(error)),
                    VolumeProblem::BitLocker { problem } => code(to_value(problem)),
                    VolumeProblem::OutsideDisk { .. }
                    | VolumeProblem::WindowsPartitionUnreadable { .. }
                    | VolumeProblem::WindowsBootSectorUnreadable { .. } => code(to_value(problem)),
                },
                Reason::Matches { .. }
                | Reason::PartitionTableDamaged { .. }
                | Reason::DamagedBareNtfs { .. }
                | Reason::NoWindowsVolume
                | Reason::DirectoryMissing { .. }
                | Reason::NoMatch { .. }
                | Reason::JournalMayHoldMatch { .. }
                | Reason::VolumeHasProblems { .. }
                | Reason::NoNtfsVolume
                | Reason::CheckedClean { .. } => code(to_value(reason)),
            },
            Problem::Blocked { blocker, .. } => code(to_value(blocker)),
            Problem::Notice { notice, .. } => code(to_value(notice)),
            Problem::Fix { error } => code(to_value(error)),
            Problem::Verify { failure } => code(to_value(failure)),
            Problem::KeyFile { .. } => "key_file".into(),
            Problem::Remote { problem, .. } => format!(
                "remote_{}",
                to_value(problem)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ),
            Problem::Internal { .. } => "internal".into(),
        }
    }

    /// A journal the user may consent to discard (one kaifuku cannot replay before a delete, or
    /// one that may hold a matching file): explained by the consent section, not the problems
    /// list.
    pub fn journal_consent(&self) -> bool {
        match self {
            Problem::Blocked { blocker, .. } => match blocker {
                Blocker::JournalNotClean { .. } | Blocker::JournalMayHoldMatch { .. } => true,
                Blocker::BitLocker | Blocker::Hibernated | Blocker::QuotaTracking => false,
            },
            Problem::Reason { .. }
            | Problem::Notice { .. }
            | Problem::Fix { .. }
            | Problem::Verify { .. }
            | Problem::KeyFile { .. }
            | Problem::Remote { .. }
            | Problem::Internal { .. } => false,
        }
    }

    /// The state of an unclean journal, for the consent section.
    pub fn journal_state(&self) -> Option<LogState> {
        match self {
            Problem::Blocked {
                blocker: Blocker::JournalNotClean { state },
                ..
            } => Some(*state),
            Problem::Blocked { .. }
            | Problem::Reason { .. }
            | Problem::Notice { .. }
            | Problem::Fix { .. }
            | Problem::Verify { .. }
            | Problem::KeyFile { .. }
            | Problem::Remote { .. }
            | Problem::Internal { .. } => None,
        }
    }
}

/// A problem as the worker sends it: the typed value the page words, with its code (for the
/// page's DOM) and the core's English sentence (for the technical reader) worked out in the
/// worker, so the page carries none of the core's English wording or report serialisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemView {
    pub problem: Problem,
    pub code: String,
    pub detail: Option<String>,
}

impl ProblemView {
    pub fn of(problem: Problem) -> ProblemView {
        ProblemView {
            code: problem.code(),
            detail: problem.detail(),
            problem,
        }
    }

    /// A failure of the page or its worker (a bug).
    pub fn internal(detail: impl Into<String>) -> ProblemView {
        let detail = detail.into();
        ProblemView {
            code: "internal".into(),
            detail: Some(detail.clone()),
            problem: Problem::Internal { detail },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectView {
    pub file_name: String,
    pub file_size: u64,
    /// Which rule ran (the primary one, when the set holds more): the page words its title.
    pub rule_id: RuleId,
    pub rule_path: String,
    /// Every rule the image was inspected with, in the set's order (the first is `rule_id`).
    #[serde(default)]
    pub rules: Vec<RuleView>,
    pub container: Option<ContainerView>,
    pub partitions: Option<PartitionsView>,
    pub volumes: Vec<VolumeView>,
    pub outcome: Outcome,
    pub problems: Vec<ProblemView>,
    /// Matches were found and nothing refuses the fix, perhaps after consent.
    pub can_fix: bool,
    /// The fix needs consent to discard an unclean journal.
    pub needs_consent: bool,
    /// A BitLocker volume waits for a key: the page asks for one.
    #[serde(default)]
    pub key_request: Option<KeyRequest>,
    pub reads: Reads,
}

/// One rule of the set an image was inspected with, with every fact the page lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleView {
    pub id: RuleId,
    /// The built-in rule's id, `path`, or a user rule's own key.
    pub key: String,
    /// `directory\glob`.
    pub target: String,
    /// Runs only on volumes holding `\Windows\System32`.
    pub windows_only: bool,
    /// Known-bad first bytes (hex).
    pub header_hex: Option<String>,
    /// The faulty window, `[from, to)`, as UTC times (RFC 3339).
    pub faulty: Option<(String, String)>,
    /// Modified at or after this (UTC, RFC 3339): the fixed version.
    pub fixed_from: Option<String>,
    /// A user rule's key and words in both languages.
    pub user: Option<UserRuleText>,
}

impl RuleView {
    pub fn of(rule: &Rule) -> RuleView {
        use kaifuku_ntfs::time::format_utc;
        RuleView {
            id: rule.id,
            key: rule.key().to_string(),
            target: rule.target(),
            windows_only: rule.windows_only,
            header_hex: rule.bad_header_hex.clone(),
            faulty: rule
                .faulty_modified
                .map(|(from, to)| (format_utc(from), format_utc(to))),
            fixed_from: rule.fixed_modified_from.map(format_utc),
            user: rule.user.clone(),
        }
    }
}

/// Why the page asks for a BitLocker key: none was given yet, or the one given did not unlock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum KeyRequest {
    /// No key was given and the volume has no clear key.
    Needed,
    /// The key given was refused (wrong, malformed, or of a kind the volume does not have).
    Refused { problem: BitLockerProblem },
}

impl KeyRequest {
    /// What the report says about the image's BitLocker volumes, if a key would help: the first
    /// volume that needs one, or whose key was refused. Damaged or unsupported volumes ask for
    /// nothing (no key makes them readable).
    pub fn of(report: &InspectReport) -> Option<KeyRequest> {
        report.volumes.iter().find_map(|v| match &v.error {
            Some(VolumeProblem::Ntfs {
                error: NtfsProblem::BitLocker,
            }) => Some(KeyRequest::Needed),
            Some(VolumeProblem::BitLocker { problem }) => match problem {
                BitLockerProblem::RecoveryPassword { .. }
                | BitLockerProblem::WrongKey { .. }
                | BitLockerProblem::NoSuchProtector { .. }
                | BitLockerProblem::NeedsRecoveryPassword { .. }
                | BitLockerProblem::NotInKeyList { .. } => Some(KeyRequest::Refused {
                    problem: problem.clone(),
                }),
                BitLockerProblem::EncryptOnWrite
                | BitLockerProblem::Unsupported { .. }
                | BitLockerProblem::Damaged { .. }
                | BitLockerProblem::WriteIntoMetadata { .. }
                | BitLockerProblem::ReadFailed { .. } => None,
            },
            Some(_) | None => None,
        })
    }
}

impl InspectView {
    pub fn match_count(&self) -> usize {
        self.volumes.iter().map(|v| v.matches.len()).sum()
    }
}

/// Builds the page's view of an inspect report.
pub fn inspect_view(file_name: &str, report: &InspectReport, reads: Reads) -> InspectView {
    let container = report.container.as_ref().map(|c| ContainerView {
        format: c.format,
        virtual_size: c.virtual_size,
        file_size: c.file_size,
    });
    let partitions = report.partitions.as_ref().map(|t| PartitionsView {
        scheme: t.scheme,
        sector_size: t.sector_size,
        partitions: t
            .partitions
            .iter()
            .map(|p| PartitionView {
                number: p.number,
                start: p.start,
                size: p.size,
                partition_type: p.type_name,
                name: p.name.clone().filter(|n| !n.is_empty()),
                container: p.container,
            })
            .collect(),
        notes: t.notes.iter().map(|n| n.kind.clone()).collect(),
        warnings: t.warnings.iter().map(|n| n.kind.clone()).collect(),
    });
    let volumes: Vec<VolumeView> = report
        .volumes
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let ntfs = v.ntfs.as_ref().map(|n| NtfsView {
                label: n.label.clone().filter(|l| !l.is_empty()),
                version: n.ntfs_version.clone(),
                size: n.size,
                cluster_size: n.cluster_size,
                sector_size: n.sector_size,
                serial: n.serial.clone(),
                dirty: n.dirty,
                log_state: n.log.state,
                log_empty: n.log.empty,
                hiberfil_present: n.hibernation.hiberfil_present,
                hibernated: n.hibernation.hibernated,
                quota_tracking: n.quota_tracking,
            });
            let matches = v
                .results()
                .flat_map(|r| r.matches.iter().map(move |m| (r.rule_index, m)))
                .map(|(rule, m)| MatchView {
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
                    verdict: m.verdict,
                    rule,
                })
                .collect();
            VolumeView {
                name: v.name(),
                partition: v.partition,
                offset: v.offset,
                size: v.size,
                filesystem: v.filesystem,
                windows: report.windows_volumes.contains(&i),
                ntfs,
                rule_ran: v.results().next().is_some(),
                directory_exists: v.results().any(|r| r.directory_exists),
                matches,
                error: v.error.as_ref().map(ToString::to_string),
                refused: v.refused(),
                journal: v.journal.as_ref().map(JournalView::of),
                journal_replay: v.journal_replay.as_ref().map(JournalReplayView::of),
                registry: v.registry.clone(),
                skipped_rules: v.skipped_rules.clone(),
            }
        })
        .collect();

    // Problems, most important first: the image or its table (the report's first reason says
    // which), then each volume's, then why nothing matches.
    let mut problems = Vec::new();
    if report.container.is_none() || report.partitions.is_none() {
        problems.extend(
            report
                .reasons
                .first()
                .map(|r| Problem::Reason { reason: r.clone() }),
        );
    }
    let mut needs_consent = false;
    let mut blocked = false;
    for v in &report.volumes {
        volume_problems(v, &mut problems, &mut blocked, &mut needs_consent);
    }
    match report.outcome {
        Outcome::NothingToFix => problems.extend(
            report
                .reasons
                .iter()
                .map(|r| Problem::Reason { reason: r.clone() }),
        ),
        Outcome::Matches | Outcome::Refused | Outcome::Error => {}
    }
    // A refusal about the journal alone is settled by consent to discard it (the plan then
    // discards the journal and deletes nothing).
    let journal_refusal_only = report.outcome == Outcome::Refused
        && !report.reasons.is_empty()
        && report
            .reasons
            .iter()
            .all(|r| matches!(r, Reason::JournalMayHoldMatch { .. }));
    let matches = report.outcome == Outcome::Matches || journal_refusal_only;
    InspectView {
        file_name: file_name.to_string(),
        file_size: report.container.as_ref().map_or(0, |c| c.file_size),
        rule_id: report.rule.id,
        rule_path: format!(
            "{}\\{}",
            report.rule.directory.trim_end_matches('\\'),
            report.rule.pattern
        ),
        rules: report.rules.iter().map(RuleView::of).collect(),
        container,
        partitions,
        volumes,
        outcome: report.outcome,
        problems: problems.into_iter().map(ProblemView::of).collect(),
        can_fix: matches && !blocked,
        needs_consent: matches && !blocked && needs_consent,
        key_request: KeyRequest::of(report),
        reads,
    }
}

/// A volume's problems: why it could not be examined, what the rule met, and — where files
/// match — what stops the fix.
fn volume_problems(
    v: &VolumeReport,
    problems: &mut Vec<Problem>,
    blocked: &mut bool,
    needs_consent: &mut bool,
) {
    let volume = v.name();
    if let Some(problem) = &v.error {
        problems.push(Problem::Reason {
            reason: Reason::Volume {
                volume: volume.clone(),
                problem: problem.clone(),
            },
        });
    }
    for notice in v.rule.iter().flat_map(|r| r.notices.iter()) {
        problems.push(Problem::Notice {
            volume: volume.clone(),
            notice: notice.clone(),
        });
    }
    let has_matches = v.rule.as_ref().is_some_and(|r| !r.matches.is_empty());
    if v.ntfs.is_none() {
        return;
    }
    for blocker in &v.fix_blockers {
        match blocker {
            // Listed where nothing matches: the file may exist only in the journal.
            Blocker::JournalMayHoldMatch { .. } => *needs_consent = true,
            _ if !has_matches => continue,
            Blocker::JournalNotClean { .. } => *needs_consent = true,
            Blocker::BitLocker | Blocker::Hibernated | Blocker::QuotaTracking => *blocked = true,
        }
        problems.push(Problem::Blocked {
            volume: volume.clone(),
            blocker: blocker.clone(),
        });
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
    /// Which rule of the inspect view's `rules` found the file (its index).
    #[serde(default)]
    pub rule: usize,
}

/// One changed range: of the virtual disk (`L` = the NTFS structure changed) or of the image
/// file (`L` = what the container write changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeView<L> {
    pub offset: u64,
    pub len: u64,
    /// The structure it belongs to, worded by the page in its language.
    pub label: L,
    /// For a fill (the journal reset): the byte repeated.
    pub fill: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    pub deletions: Vec<DeletionView>,
    /// Volumes whose journal the fix replays first, as Windows would at its next start.
    #[serde(default)]
    pub journal_replays: Vec<PlannedReplayView>,
    /// Volumes whose journal is reset and which are marked dirty.
    pub journal_reset: Vec<VolumeName>,
    /// Volumes whose journal kaifuku cannot replay is left untouched for Windows, with the
    /// number of updates Windows will finish (none touches what the fix changes).
    #[serde(default)]
    pub journal_left: Vec<(VolumeName, u64)>,
    /// For each volume whose journal was read: whether its pending changes touch what the plan
    /// changes.
    #[serde(default)]
    pub journal_overlaps: Vec<PlannedOverlapView>,
    /// Changed ranges of the virtual disk.
    pub patches: Vec<RangeView<ChangedStructure>>,
    /// The same changes as writes to the image file (what the download differs in).
    pub file_writes: Vec<RangeView<FileWriteLabel>>,
    pub bytes_changed: u64,
    /// Matches the core's own verification found on the patched view (0).
    pub matches_after: usize,
    pub reads: Reads,
    /// What the download will be: the picked file's format, or a fixed VHD (the page's choice).
    #[serde(default)]
    pub output: OutputView,
}

/// The format of the download the plan makes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputView {
    /// The picked file's own format, changed only in the planned ranges.
    #[default]
    SameFormat,
    /// A fixed VHD (for upload to Azure): the disk rounded up to whole MiB, then the footer.
    FixedVhd { disk_size: u64, file_size: u64 },
    /// A fixed VHD was asked for, but this image stores the disk compressed: the page would have
    /// to hold the inflated disk in memory, so it writes the picked file's own format and points
    /// to the command line.
    FixedVhdNeedsCommandLine { format: Format },
    /// The picked file's own format cannot take the changes (they fall where its tables would
    /// have to change: a block not allocated, a cluster shared with a snapshot); a fixed VHD can
    /// hold them, once the user asks for one.
    SameFormatNotWritable {
        problem: ContainerProblem,
        disk_size: u64,
        file_size: u64,
    },
}

/// A journal the plan replays before the deletions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedReplayView {
    pub volume: VolumeName,
    pub replay: JournalReplayView,
}

/// Whether the pending changes of a volume's journal touch what the plan changes there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedOverlapView {
    pub volume: VolumeName,
    pub overlap: OverlapView,
}

impl OverlapView {
    /// The page's view of the core's overlap.
    pub fn of(o: &JournalOverlap) -> OverlapView {
        match o {
            JournalOverlap::NoOverlap => OverlapView::NoOverlap,
            JournalOverlap::Overlaps {
                file_records,
                index_blocks,
                mft_bitmap_pages,
                cluster_bitmap_pages,
                clusters,
            } => OverlapView::Overlaps {
                file_records: file_records.clone(),
                index_blocks: index_blocks.iter().map(IndexBlockView::of).collect(),
                mft_bitmap_pages: mft_bitmap_pages.clone(),
                cluster_bitmap_pages: cluster_bitmap_pages.clone(),
                clusters: clusters.iter().map(|r| (r.first, r.count)).collect(),
            },
        }
    }
}

impl IndexBlockView {
    fn of(b: &IndexBlock) -> IndexBlockView {
        IndexBlockView {
            record: b.record,
            name: b.name.clone(),
            vcn: b.vcn,
        }
    }
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
            .map(VolumeReport::name)
            .unwrap_or(VolumeName::place(None))
    };
    let mut file_writes: Vec<RangeView<FileWriteLabel>> = output
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
                rule: d
                    .rule_id
                    .as_deref()
                    .and_then(|key| report.rules.iter().position(|r| r.key() == key))
                    .unwrap_or(0),
            })
            .collect(),
        journal_replays: plan
            .journals_replayed
            .iter()
            .map(|r| PlannedReplayView {
                volume: vname(r.volume),
                replay: JournalReplayView::of(&r.replay),
            })
            .collect(),
        journal_reset: plan.journals_discarded.iter().map(|i| vname(*i)).collect(),
        journal_left: plan
            .journals_left
            .iter()
            .map(|l| (vname(l.volume), l.left.updates))
            .collect(),
        journal_overlaps: plan
            .journal_overlaps
            .iter()
            .map(|o| PlannedOverlapView {
                volume: vname(o.volume),
                overlap: OverlapView::of(&o.overlap),
            })
            .collect(),
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
        output: OutputView::SameFormat,
    }
}

/// One fact re-verified on the fixed image (read back through exactly the bytes of the download).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckView {
    /// The container opens again with the same format and size.
    ContainerSame { format: Format, virtual_size: u64 },
    /// The fixed image, written in another container (a fixed VHD), opens as that container.
    ContainerConverted {
        format: Format,
        virtual_size: u64,
        original_format: Format,
    },
    /// The rule finds this many files on the volume (0 expected).
    RuleFinds { volume: VolumeName, count: usize },
    /// The file's MFT record is marked free.
    RecordFree { volume: VolumeName, record: u64 },
    /// The journal reads as clean and the dirty flag is set (chkdsk at next boot).
    JournalReset { volume: VolumeName },
    /// The journal the fix replayed reads as clean (Windows has nothing left to replay).
    JournalReplayed { volume: VolumeName },
    /// The NTFS invariant checker's findings on the changed records and the directory.
    Invariants { volume: VolumeName, problems: usize },
    /// The side indexes the fix removed keys from (`$Extend\$ObjId:$O`, `$Extend\$Reparse:$R`)
    /// are sound and no entry refers to a deleted file.
    SideIndexes {
        volume: VolumeName,
        indexes: Vec<String>,
    },
    /// The download differs from the picked file only in the planned ranges.
    OnlyPlannedRanges { ranges: usize, bytes: u64 },
}

/// A disk fixed where it lives (an Azure page blob by its SAS URL): what was written and read,
/// and what the read-back from scratch confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteFixedView {
    /// The URL without its query (the SAS token is never shown).
    pub shown: String,
    pub undo_name: String,
    /// Page writes and the bytes they carried.
    pub puts: u64,
    pub bytes_written: u64,
    /// Every request and byte read, the read-back included.
    pub requests: u64,
    pub bytes_read: u64,
    pub checks: Vec<CheckView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedView {
    pub output_name: String,
    pub undo_name: String,
    pub report_name: String,
    pub output_size: u64,
    /// `None`: no undo file is offered (the fix changes the image file's size, which an undo
    /// file cannot restore; the picked file is the way back).
    pub undo_size: Option<u64>,
    pub checks: Vec<CheckView>,
    pub reads: Reads,
    /// The worker's wasm memory, in bytes.
    pub wasm_memory: u64,
    /// The download is a fixed VHD, a new file in another format (so no undo file).
    #[serde(default)]
    pub fixed_vhd: bool,
}
