//! The invariant checker: what chkdsk verifies in its first two stages, as a report of problems.
//!
//! * Stage 1 (file records): every record's header and attributes, IN_USE against
//!   `$MFT:$BITMAP`, link counts, the directory flag, `$ATTRIBUTE_LIST` against the extension
//!   records, runs inside the volume, no cluster used twice, and the union of all runs against
//!   `$Bitmap`.
//! * Stage 2 (indexes): every directory's `$I30` tree (root, `INDX` blocks, `$BITMAP`, depth,
//!   order), every entry against the file it names, every name against the entries, and the
//!   `$ObjId:$O` / `$Reparse:$R` view indexes against the files that carry object IDs and reparse
//!   points.
//! * The volume: `$MFTMirr`, `$LogFile`, the backup boot sector; the dirty flag is reported.
//!
//! [`check_volume`] streams the whole `$MFT` in chunks and keeps one bit per cluster and a few
//! bytes per record. The targeted checks ([`check_records`], [`check_directory`],
//! [`check_mft_bits`], [`check_cluster_bits`], [`check_side_indexes`]) read only the structures an
//! edit touched, so the fix step can verify its patched view cheaply.
//!
//! Nothing here fails on damage: damage becomes a [`Problem`]. An `Err` means the image itself
//! could not be read.

mod bits;
mod crossref;
mod names;
mod record;
mod targeted;
mod tree;
mod whole;

pub use targeted::{
    check_cluster_bits, check_directory, check_directory_index, check_mft_bits, check_records,
    check_side_indexes, ClusterState, SideIndex,
};
pub use whole::check_volume;

/// How an attribute is named in messages (`$DATA`, `$INDEX_ALLOCATION $I30`, ...).
pub(crate) use record::describe_attr as describe_attribute;

use crate::logfile::LogFileInfo;
use crate::volume::{AttrValue, Volume};
use crate::NtfsError;
use bits::Bits;
use kaifuku_io::ReadAt;
use record::{AttrFacts, Geometry};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What invariant a problem breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A file record's header: signature, update sequence array (fixups), sizes, own number.
    RecordHeader,
    /// Attribute headers: alignment, lengths, order by type, end marker, instance numbers, values
    /// inside the record, non-resident sizes.
    AttributeLayout,
    /// Mapping pairs that cannot be decoded or do not cover the attribute's VCNs.
    MappingPairs,
    /// A record in use whose `$MFT:$BITMAP` bit is clear.
    MftBitmapMissing,
    /// A `$MFT:$BITMAP` bit set for a record that is not in use (or past the end of `$MFT`).
    MftBitmapStale,
    /// A base record's link count differs from its number of `$FILE_NAME` attributes.
    LinkCount,
    /// The directory flag disagrees with the presence of an `$I30` index.
    DirectoryFlag,
    /// `$ATTRIBUTE_LIST` and the extension records disagree.
    AttributeList,
    /// A run reaches past the last cluster of the volume.
    RunOutsideVolume,
    /// A cluster belongs to two attributes.
    ClusterDoubleUse,
    /// A cluster in use by a file is free in `$Bitmap`.
    BitmapMissing,
    /// A cluster marked in use in `$Bitmap` belongs to no file (leaked).
    BitmapStale,
    /// A `$FILE_NAME` names a parent that is not a directory in use (or has another sequence).
    NameParent,
    /// The `$INDEX_ROOT` header: indexed type, collation, block size, lengths.
    IndexRoot,
    /// An `INDX` block's header: signature, update sequence array, sizes.
    IndexBlockHeader,
    /// An `INDX` block whose own VCN field differs from where it is.
    IndexBlockVcn,
    /// Index entries: lengths, key lengths, END position, NODE flag.
    IndexEntryLayout,
    /// The tree's shape: child VCNs, blocks referenced twice, unequal leaf depths.
    IndexTree,
    /// The index `$BITMAP` disagrees with the blocks the tree uses.
    IndexBitmap,
    /// An allocated index block with no entries.
    IndexEmptyBlock,
    /// Entries out of collation order.
    IndexOrder,
    /// An entry points at a record that is not in use or has another sequence number.
    IndexEntryStale,
    /// An entry's key matches no `$FILE_NAME` of the file it points at.
    IndexEntryName,
    /// A `$FILE_NAME` of a live file that its parent directory does not index.
    NameNotIndexed,
    /// A `$FILE_NAME` indexed more than once.
    NameIndexedTwice,
    /// `$Extend\$ObjId:$O` disagrees with the files' `$OBJECT_ID` attributes.
    ObjectIdIndex,
    /// `$Extend\$Reparse:$R` disagrees with the files' `$REPARSE_POINT` attributes.
    ReparseIndex,
    /// `$MFTMirr` differs from the first records of `$MFT`.
    MftMirror,
    /// `$LogFile` has no valid restart page and is not all 0xFF.
    LogFile,
    /// The backup boot sector differs from the boot sector.
    BootBackup,
    /// A structure the check needs could not be read at all.
    Unreadable,
}

impl ProblemKind {
    /// A few plain words for the kind, for people.
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::RecordHeader => "damaged file record header",
            ProblemKind::AttributeLayout => "damaged attribute",
            ProblemKind::MappingPairs => "damaged run list",
            ProblemKind::MftBitmapMissing => "record in use but free in the MFT bitmap",
            ProblemKind::MftBitmapStale => "record free but marked in the MFT bitmap",
            ProblemKind::LinkCount => "wrong link count",
            ProblemKind::DirectoryFlag => "wrong directory flag",
            ProblemKind::AttributeList => "attribute list disagrees with extension records",
            ProblemKind::RunOutsideVolume => "run outside the volume",
            ProblemKind::ClusterDoubleUse => "cluster used twice",
            ProblemKind::BitmapMissing => "cluster in use but free in $Bitmap",
            ProblemKind::BitmapStale => "cluster marked in $Bitmap but unused",
            ProblemKind::NameParent => "name under a missing parent",
            ProblemKind::IndexRoot => "damaged index root",
            ProblemKind::IndexBlockHeader => "damaged index block",
            ProblemKind::IndexBlockVcn => "index block at the wrong VCN",
            ProblemKind::IndexEntryLayout => "damaged index entry",
            ProblemKind::IndexTree => "damaged index tree",
            ProblemKind::IndexBitmap => "index bitmap disagrees with the tree",
            ProblemKind::IndexEmptyBlock => "empty index block",
            ProblemKind::IndexOrder => "index entries out of order",
            ProblemKind::IndexEntryStale => "index entry for a deleted or reused file",
            ProblemKind::IndexEntryName => "index entry without a matching name",
            ProblemKind::NameNotIndexed => "name missing from its directory",
            ProblemKind::NameIndexedTwice => "name indexed twice",
            ProblemKind::ObjectIdIndex => "object ID index disagrees with the files",
            ProblemKind::ReparseIndex => "reparse point index disagrees with the files",
            ProblemKind::MftMirror => "$MFTMirr differs from $MFT",
            ProblemKind::LogFile => "damaged $LogFile",
            ProblemKind::BootBackup => "backup boot sector differs",
            ProblemKind::Unreadable => "unreadable structure",
        }
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Which invariant is broken.
    pub kind: ProblemKind,
    /// The file record concerned (for index problems, the directory), when there is one.
    pub record: Option<u64>,
    /// What is wrong, naming the structure (record N, index block VCN v of directory D, ...).
    pub message: String,
}

/// What a check looked at, so a clean report can be told apart from one that saw nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckStats {
    /// File records in `$MFT`.
    pub records_total: u64,
    /// Records with the in-use flag set.
    pub records_in_use: u64,
    /// In-use records that extend a base record (listed in its `$ATTRIBUTE_LIST`).
    pub extension_records: u64,
    /// Directories whose index was walked.
    pub directories: u64,
    /// `$FILE_NAME` attributes of live files.
    pub file_names: u64,
    /// Index entries (not END) found in the indexes walked.
    pub index_entries: u64,
    /// `INDX` blocks read.
    pub index_blocks: u64,
    /// Clusters in the volume.
    pub clusters_total: u64,
    /// Clusters the files' runs use.
    pub clusters_in_use: u64,
    /// Clusters `$Bitmap` marks in use.
    pub clusters_marked: u64,
    /// Files carrying an `$OBJECT_ID` / a `$REPARSE_POINT` (matched against `$O` / `$R`).
    pub object_ids: u64,
    /// Files carrying a `$REPARSE_POINT`.
    pub reparse_points: u64,
}

/// Volume state that is reported, not judged.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeState {
    /// The dirty flag of `$Volume`: Windows runs chkdsk at the next boot when set.
    pub dirty: Option<bool>,
    /// The `$LogFile` state, when it could be read.
    pub log: Option<LogFileInfo>,
}

/// The result of a check: the problems found (capped per kind) and what was looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// The problems found, in the order the check met them.
    pub problems: Vec<Problem>,
    /// Problems not listed because one kind passed [`MAX_PER_KIND`].
    pub omitted: u64,
    /// What the check looked at.
    pub stats: CheckStats,
    /// Present for whole-volume checks.
    pub volume: Option<VolumeState>,
}

impl CheckReport {
    /// Whether the check found nothing wrong (listed or omitted).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.omitted == 0
    }

    /// The first `n` problems' messages joined with "; ", for a refusal that names them.
    pub fn first_problems(&self, n: usize) -> String {
        self.problems
            .iter()
            .take(n)
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Whether a problem of `kind` is listed.
    pub fn has(&self, kind: ProblemKind) -> bool {
        self.problems.iter().any(|p| p.kind == kind)
    }

    /// Problem counts by kind.
    pub fn counts(&self) -> BTreeMap<ProblemKind, usize> {
        let mut m = BTreeMap::new();
        for p in &self.problems {
            *m.entry(p.kind).or_insert(0) += 1;
        }
        m
    }
}

/// Most problems of one kind listed in a report (a badly damaged volume stays readable).
pub const MAX_PER_KIND: u64 = 500;

#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
    per_kind: HashMap<ProblemKind, u64>,
    omitted: u64,
}

impl Problems {
    pub fn push(&mut self, kind: ProblemKind, record: Option<u64>, message: String) {
        let n = self.per_kind.entry(kind).or_insert(0);
        *n += 1;
        if *n > MAX_PER_KIND {
            self.omitted += 1;
        } else {
            self.list.push(Problem {
                kind,
                record,
                message,
            });
        }
    }

    fn into_report(self, stats: CheckStats, volume: Option<VolumeState>) -> CheckReport {
        CheckReport {
            problems: self.list,
            omitted: self.omitted,
            stats,
            volume,
        }
    }
}

/// Turns damage into a problem (returning `None`) and passes I/O failures on as errors.
pub(crate) fn soft<T>(
    r: Result<T, NtfsError>,
    p: &mut Problems,
    kind: ProblemKind,
    record: Option<u64>,
    ctx: &str,
) -> Result<Option<T>, NtfsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e @ NtfsError::Io { .. }) => Err(e),
        Err(e) => {
            p.push(kind, record, format!("{ctx}: {}", plain(&e)));
            Ok(None)
        }
    }
}

fn plain(e: &NtfsError) -> String {
    match e {
        NtfsError::Corrupt(m) => m.detail.clone(),
        e => e.to_string(),
    }
}

/// Records 16–23 are reserved. mkntfs leaves them as FILE records that are not in use with clear
/// bits; Windows 10 leaves them zeroed with clear bits; older Windows and other implementations mark
/// them in use in `$MFT:$BITMAP` without using them (and may use them for `$MFT`'s own extension
/// records). So a set bit over a reserved record that is not in use is a reservation, not a leak.
fn reserved_record(n: u64) -> bool {
    (16..24).contains(&n)
}

/// Records per `$MFT` read of the whole-volume scan.
const CHUNK_RECORDS: u64 = 256;
/// Bytes of `$Bitmap` compared per read.
const BITMAP_CHUNK: u64 = 1 << 20;

fn geometry<R: ReadAt>(vol: &Volume<R>) -> Geometry {
    Geometry {
        record_size: vol.boot().file_record_size as usize,
        cluster_size: vol.cluster_size(),
        total_clusters: vol.boot().total_clusters(),
    }
}

fn value_len(v: &AttrValue) -> u64 {
    match v {
        AttrValue::Resident(b) => b.len() as u64,
        AttrValue::NonResident(s) => s.data_size,
    }
}

/// Where a claimed cluster range came from, for messages.
#[derive(Debug, Clone)]
struct Claim {
    lcn: u64,
    len: u64,
    record: u64,
    attr: String,
}

/// Marks an attribute's clusters in `used`, reporting runs outside the volume and clusters that
/// were already taken. The system files need no special case: `$Boot`'s `$DATA` maps clusters
/// 0.. (the boot area), `$MFTMirr` and `$LogFile` map their clusters like any file, and
/// `$BadClus:$Bad` is sparse over the whole volume except for its bad clusters, which are real runs
/// and are marked in `$Bitmap`; sparse runs own nothing.
fn claim_runs(
    used: &mut Bits,
    n: u64,
    a: &AttrFacts,
    geo: &Geometry,
    p: &mut Problems,
    conflicts: &mut Vec<Claim>,
) {
    for run in &a.runs {
        let Some(lcn) = run.lcn else { continue };
        if lcn.saturating_add(run.length) > geo.total_clusters {
            p.push(
                ProblemKind::RunOutsideVolume,
                Some(n),
                format!(
                    "record {n}: {} maps VCN {} to {}, beyond the volume's {} clusters",
                    a.describe(),
                    run.vcn,
                    clusters(lcn, run.length),
                    geo.total_clusters
                ),
            );
        }
        for (s, l) in used.set_range(lcn, run.length) {
            conflicts.push(Claim {
                lcn: s,
                len: l,
                record: n,
                attr: a.describe(),
            });
        }
    }
}

/// Reads the value of a non-resident attribute held whole in one extent (attribute lists and
/// reparse points of the files being scanned).
fn nonresident_value<R: ReadAt>(
    vol: &Volume<R>,
    a: &AttrFacts,
    max: u64,
) -> Result<Vec<u8>, NtfsError> {
    let s = a.stream();
    let len = s.data_size.min(max);
    vol.read_stream(&s, 0, len as usize)
}

fn attr_value<R: ReadAt>(
    vol: &Volume<R>,
    a: &AttrFacts,
    max: u64,
) -> Result<Option<Vec<u8>>, NtfsError> {
    if a.non_resident {
        if a.lowest_vcn != 0 {
            return Ok(None);
        }
        nonresident_value(vol, a, max).map(Some)
    } else {
        Ok(a.value.clone())
    }
}

/// "cluster 7" or "clusters 7-9": a run of `len` clusters from `start`, both ends included.
fn clusters(start: u64, len: u64) -> String {
    if len == 1 {
        format!("cluster {start}")
    } else {
        format!("clusters {start}-{}", start + len - 1)
    }
}

/// "cluster 7 is" or "clusters 7-9 are".
fn clusters_are(start: u64, len: u64) -> String {
    format!(
        "{} {}",
        clusters(start, len),
        if len == 1 { "is" } else { "are" }
    )
}

fn owners_text(owners: &[(u64, String)]) -> String {
    owners
        .iter()
        .map(|(r, a)| format!("record {r} ({a})"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_capped_per_kind() {
        let mut p = Problems::default();
        for i in 0..MAX_PER_KIND + 5 {
            p.push(ProblemKind::BitmapStale, None, format!("{i}"));
        }
        p.push(ProblemKind::LinkCount, Some(1), "x".into());
        let r = p.into_report(CheckStats::default(), None);
        assert_eq!(r.problems.len() as u64, MAX_PER_KIND + 1);
        assert_eq!(r.omitted, 5);
        assert!(!r.is_clean());
        assert_eq!(r.counts()[&ProblemKind::LinkCount], 1);
    }
}
