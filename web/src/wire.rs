//! How the core's typed values cross from the worker to the page. The core's vocabulary only
//! serialises (its reports are written, never read back), but the page must receive the very
//! values the worker got from the core, to word them itself. These are serde's *remote*
//! definitions of those types: the same shape and codes, deserialisable. Being remote
//! definitions, they are checked against the core's types when they compile: a variant or field
//! the core adds, removes or renames breaks this module until it follows.
//!
//! Used as `#[serde(with = "wire::ReasonDef")]` on fields of the page's views; lists use the
//! `*_list` modules. On this wire the enums are externally tagged (`{"no_match": {...}}`), not
//! tagged by `"code"` as in the core's reports: that needs no buffering of the whole value when it
//! is read, which keeps the page's wasm some 190 KiB smaller.

use kaifuku_container::{Format, OtherFormat};
use kaifuku_ntfs::check::{Problem as CheckProblem, ProblemKind};
use kaifuku_ntfs::{BootSectorFault, Damage, LogState, Refusal, Unsupported};
use kaifuku_partition::{NoticeKind, Scheme};
use kaifuku_rescue::vocabulary::{
    Blocker, Checked, ContainerProblem, FixFailure, FixRefusal, NtfsProblem, PartitionProblem,
    Reason, RuleNotice, VerifyFailure, VolumeName, VolumeProblem,
};
use kaifuku_rescue::{FixError, Outcome, Verdict};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(remote = "Format", rename_all = "snake_case")]
pub enum FormatDef {
    Raw,
    VhdFixed,
    VhdDynamic,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "OtherFormat", rename_all = "snake_case")]
pub enum OtherFormatDef {
    Vhdx,
    VmdkSparse,
    VmdkDescriptor,
    Qcow2,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Scheme", rename_all = "lowercase")]
pub enum SchemeDef {
    Gpt,
    Mbr,
    None,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "LogState")]
pub enum LogStateDef {
    #[serde(rename = "clean")]
    Clean,
    #[serde(rename = "unclean")]
    Unclean,
    #[serde(rename = "v2.0")]
    V2,
    #[serde(rename = "unreadable")]
    Unreadable,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Outcome", rename_all = "kebab-case")]
pub enum OutcomeDef {
    Matches,
    NothingToFix,
    Refused,
    Error,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "VolumeName")]
pub struct VolumeNameDef {
    pub partition: Option<u32>,
    pub label: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Reason", rename_all = "snake_case")]
pub enum ReasonDef {
    Matches {
        count: usize,
        rule: String,
    },
    Container {
        #[serde(with = "ContainerProblemDef")]
        problem: ContainerProblem,
    },
    Partitions {
        #[serde(with = "PartitionProblemDef")]
        problem: PartitionProblem,
    },
    Volume {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "VolumeProblemDef")]
        problem: VolumeProblem,
    },
    PartitionTableDamaged {
        notice: NoticeKind,
    },
    DamagedBareNtfs {
        oem_id_damaged: bool,
        backup_intact: bool,
    },
    NoWindowsVolume,
    DirectoryMissing {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        directory: String,
    },
    NoMatch {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        directory: String,
        pattern: String,
    },
    VolumeHasProblems {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        count: u64,
    },
    NoNtfsVolume,
    CheckedClean {
        volumes: usize,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "VolumeProblem", rename_all = "snake_case")]
pub enum VolumeProblemDef {
    OutsideDisk {
        partition: Option<u32>,
        detail: String,
    },
    WindowsPartitionUnreadable,
    WindowsBootSectorUnreadable {
        oem_id: Option<String>,
        backup_intact: bool,
    },
    Ntfs {
        #[serde(with = "NtfsProblemDef")]
        error: NtfsProblem,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "NtfsProblem", rename_all = "snake_case")]
pub enum NtfsProblemDef {
    NotNtfs,
    #[serde(rename = "bitlocker")]
    BitLocker,
    BadBootSector {
        fault: BootSectorFault,
    },
    Damaged {
        damage: Damage,
    },
    Unsupported {
        unsupported: Unsupported,
    },
    Refused {
        refusal: Refusal,
    },
    ReadFailed {
        what: String,
        detail: String,
    },
    ReaderFailed {
        detail: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "ContainerProblem", rename_all = "snake_case")]
pub enum ContainerProblemDef {
    UnsupportedFormat {
        #[serde(with = "OtherFormatDef")]
        format: OtherFormat,
        qemu_name: String,
    },
    DifferencingVhd,
    PatchInUnallocatedBlock {
        offset: u64,
        block: u64,
    },
    ReadFailed {
        detail: String,
    },
    Damaged {
        detail: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "PartitionProblem", rename_all = "snake_case")]
pub enum PartitionProblemDef {
    TooSmall { size: u64 },
    NoTable,
    ReadFailed { detail: String },
    Unsupported { detail: String },
    Damaged { detail: String },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "RuleNotice", rename_all = "snake_case")]
pub enum RuleNoticeDef {
    DirectorySkipped { path: String },
    LinkFollowed { link: String, target: String },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Blocker", rename_all = "snake_case")]
pub enum BlockerDef {
    #[serde(rename = "bitlocker")]
    BitLocker,
    JournalNotClean {
        #[serde(with = "LogStateDef")]
        state: LogState,
    },
    Hibernated,
    QuotaTracking,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "FixError", rename_all = "snake_case")]
pub enum FixErrorDef {
    NothingToFix {
        #[serde(with = "reason_list")]
        reasons: Vec<Reason>,
    },
    Refused {
        #[serde(with = "FixRefusalDef")]
        refusal: FixRefusal,
    },
    Failed {
        #[serde(with = "FixFailureDef")]
        failure: FixFailure,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "FixRefusal", rename_all = "snake_case")]
pub enum FixRefusalDef {
    Inspect {
        #[serde(with = "reason_list")]
        reasons: Vec<Reason>,
    },
    Blocked {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "BlockerDef")]
        blocker: Blocker,
    },
    Ntfs {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        file: Option<String>,
        #[serde(with = "NtfsProblemDef")]
        error: NtfsProblem,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Checked", rename_all = "snake_case")]
pub enum CheckedDef {
    ChangedRecords,
    MftBitmap,
    Bitmap,
    EditedDirectory,
    SideIndexes,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "FixFailure", rename_all = "snake_case")]
pub enum FixFailureDef {
    Inspect {
        #[serde(with = "reason_list")]
        reasons: Vec<Reason>,
    },
    PartitionsOverlap {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        notice: NoticeKind,
    },
    Ntfs {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        file: Option<String>,
        #[serde(with = "NtfsProblemDef")]
        error: NtfsProblem,
    },
    DirectoryVanished {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        directory: String,
    },
    WriteTargetsDamaged {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "check_problem_list")]
        problems: Vec<CheckProblem>,
    },
    PatchedVolumeDoesNotOpen {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "NtfsProblemDef")]
        error: NtfsProblem,
    },
    PatchedVolumeUnreadable {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "NtfsProblemDef")]
        error: NtfsProblem,
    },
    CheckFailed {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "CheckedDef")]
        checked: Checked,
        #[serde(with = "NtfsProblemDef")]
        error: NtfsProblem,
    },
    CheckFoundProblems {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "CheckedDef")]
        checked: Checked,
        #[serde(with = "check_problem_list")]
        problems: Vec<CheckProblem>,
    },
    StillMatches {
        count: usize,
    },
    PatchOverlapsJournalReset {
        label: String,
    },
    ReadFailed {
        detail: String,
    },
    OutputNotMappable {
        #[serde(with = "ContainerProblemDef")]
        problem: ContainerProblem,
    },
    Internal {
        detail: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "VerifyFailure", rename_all = "snake_case")]
pub enum VerifyFailureDef {
    NothingPlanned,
    ContainerDoesNotOpen {
        #[serde(with = "ContainerProblemDef")]
        problem: ContainerProblem,
    },
    NoOriginalContainer,
    ContainerDiffers {
        #[serde(with = "FormatDef")]
        format: Format,
        virtual_size: u64,
        #[serde(with = "FormatDef")]
        original_format: Format,
        original_virtual_size: u64,
    },
    VolumeGone {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
    },
    VolumeUnreadable {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "VolumeProblemDef")]
        problem: VolumeProblem,
    },
    Ntfs {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "NtfsProblemDef")]
        error: NtfsProblem,
    },
    RecordInUse {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        record: u64,
    },
    CheckerProblems {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "check_problem_list")]
        problems: Vec<CheckProblem>,
    },
    NotNtfs {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
    },
    JournalNotReset {
        #[serde(with = "VolumeNameDef")]
        volume: VolumeName,
        #[serde(with = "LogStateDef")]
        state: LogState,
        dirty: bool,
    },
    StillMatches {
        count: usize,
        #[serde(with = "reason_list")]
        reasons: Vec<Reason>,
    },
    Internal {
        detail: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "CheckProblem")]
pub struct CheckProblemDef {
    #[serde(with = "ProblemKindDef")]
    pub kind: ProblemKind,
    pub record: Option<u64>,
    pub message: String,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "ProblemKind", rename_all = "snake_case")]
pub enum ProblemKindDef {
    RecordHeader,
    AttributeLayout,
    MappingPairs,
    MftBitmapMissing,
    MftBitmapStale,
    LinkCount,
    DirectoryFlag,
    AttributeList,
    RunOutsideVolume,
    ClusterDoubleUse,
    BitmapMissing,
    BitmapStale,
    NameParent,
    IndexRoot,
    IndexBlockHeader,
    IndexBlockVcn,
    IndexEntryLayout,
    IndexTree,
    IndexBitmap,
    IndexEmptyBlock,
    IndexOrder,
    IndexEntryStale,
    IndexEntryName,
    NameNotIndexed,
    NameIndexedTwice,
    ObjectIdIndex,
    ReparseIndex,
    MftMirror,
    LogFile,
    BootBackup,
    Unreadable,
}

/// `with` modules for lists of remote types: serde's remote definitions cover one value, so a
/// list is a sequence of one-value wrappers.
macro_rules! carried_list {
    ($module:ident, $t:ty, $def:literal) => {
        pub mod $module {
            use super::*;

            #[derive(Serialize)]
            struct Out<'a>(#[serde(with = $def)] &'a $t);
            #[derive(Deserialize)]
            struct In(#[serde(with = $def)] $t);

            pub fn serialize<S: Serializer>(values: &[$t], s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(values.iter().map(Out))
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<$t>, D::Error> {
                Ok(Vec::<In>::deserialize(d)?
                    .into_iter()
                    .map(|x| x.0)
                    .collect())
            }
        }
    };
}

carried_list!(reason_list, Reason, "ReasonDef");
carried_list!(check_problem_list, CheckProblem, "CheckProblemDef");
carried_list!(volume_name_list, VolumeName, "VolumeNameDef");

#[derive(Serialize, Deserialize)]
#[serde(remote = "Verdict", rename_all = "lowercase")]
pub enum VerdictDef {
    Faulty,
    Fixed,
    Unknown,
    #[serde(rename = "none")]
    NotApplicable,
}

/// A boxed [`FixError`] (the largest value a problem carries, kept out of line).
pub mod boxed_fix_error {
    use super::{Deserializer, FixError, FixErrorDef, Serializer};

    pub fn serialize<S: Serializer>(value: &FixError, s: S) -> Result<S::Ok, S::Error> {
        FixErrorDef::serialize(value, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<FixError>, D::Error> {
        FixErrorDef::deserialize(d).map(Box::new)
    }
}
