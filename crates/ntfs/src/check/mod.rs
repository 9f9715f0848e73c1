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
//! [`check_mft_bits`], [`check_cluster_bits`]) read only the structures an edit touched, so the fix
//! step can verify its patched view cheaply.
//!
//! Nothing here fails on damage: damage becomes a [`Problem`]. An `Err` means the image itself
//! could not be read.

mod bits;
mod names;
mod record;
mod tree;

use crate::bytes::{u16_at, u32_at, u64_at};
use crate::index::{FileNameKey, NodeId};
use crate::logfile::{log_state, LogFileInfo, LogState};
use crate::record::{
    FileRecord, FileRef, ATTR_ATTRIBUTE_LIST, ATTR_BITMAP, ATTR_DATA, ATTR_INDEX_ROOT, ATTR_OBJECT_ID,
    ATTR_REPARSE_POINT, ATTR_VOLUME_INFORMATION, FLAG_DIRECTORY, FLAG_IN_USE,
};
use crate::volume::{parse_attribute_list, AttrValue, AttributeListEntry, Volume, RECORD_BITMAP, RECORD_LOGFILE, RECORD_VOLUME};
use crate::NtfsError;
use bits::{push_range, Bits};
use kaifuku_io::ReadAt;
use names::{name_hash, NameTable};
use record::{describe_attr, examine_record, namespace_name, AttrFacts, Geometry, RecordFacts, I30};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use tree::{check_tree, TreeEntry};

/// What invariant a problem breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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
        use ProblemKind::*;
        match self {
            RecordHeader => "damaged file record header",
            AttributeLayout => "damaged attribute",
            MappingPairs => "damaged run list",
            MftBitmapMissing => "record in use but free in the MFT bitmap",
            MftBitmapStale => "record free but marked in the MFT bitmap",
            LinkCount => "wrong link count",
            DirectoryFlag => "wrong directory flag",
            AttributeList => "attribute list disagrees with extension records",
            RunOutsideVolume => "run outside the volume",
            ClusterDoubleUse => "cluster used twice",
            BitmapMissing => "cluster in use but free in $Bitmap",
            BitmapStale => "cluster marked in $Bitmap but unused",
            NameParent => "name under a missing parent",
            IndexRoot => "damaged index root",
            IndexBlockHeader => "damaged index block",
            IndexBlockVcn => "index block at the wrong VCN",
            IndexEntryLayout => "damaged index entry",
            IndexTree => "damaged index tree",
            IndexBitmap => "index bitmap disagrees with the tree",
            IndexEmptyBlock => "empty index block",
            IndexOrder => "index entries out of order",
            IndexEntryStale => "index entry for a deleted or reused file",
            IndexEntryName => "index entry without a matching name",
            NameNotIndexed => "name missing from its directory",
            NameIndexedTwice => "name indexed twice",
            ObjectIdIndex => "object ID index disagrees with the files",
            ReparseIndex => "reparse point index disagrees with the files",
            MftMirror => "$MFTMirr differs from $MFT",
            LogFile => "damaged $LogFile",
            BootBackup => "backup boot sector differs",
            Unreadable => "unreadable structure",
        }
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The file record concerned (for index problems, the directory), when there is one.
    pub record: Option<u64>,
    /// What is wrong, naming the structure (record N, index block VCN v of directory D, ...).
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckStats {
    pub records_total: u64,
    pub records_in_use: u64,
    pub extension_records: u64,
    pub directories: u64,
    pub file_names: u64,
    pub index_entries: u64,
    pub index_blocks: u64,
    pub clusters_total: u64,
    /// Clusters the files' runs use.
    pub clusters_in_use: u64,
    /// Clusters `$Bitmap` marks in use.
    pub clusters_marked: u64,
}

/// Volume state that is reported, not judged.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeState {
    /// The dirty flag of `$Volume`: Windows runs chkdsk at the next boot when set.
    pub dirty: Option<bool>,
    pub log: Option<LogFileInfo>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// Problems not listed because one kind passed [`MAX_PER_KIND`].
    pub omitted: u64,
    pub stats: CheckStats,
    /// Present for whole-volume checks.
    pub volume: Option<VolumeState>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.omitted == 0
    }

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
            self.list.push(Problem { kind, record, message });
        }
    }

    fn into_report(self, stats: CheckStats, volume: Option<VolumeState>) -> CheckReport {
        CheckReport { problems: self.list, omitted: self.omitted, stats, volume }
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
        NtfsError::Corrupt(m) => m.clone(),
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

/// Per-record state bits of the whole-volume scan.
const LIVE: u8 = 1;
const EXT: u8 = 2;
const DIR: u8 = 4;

/// An attribute as the attribute-list checks compare it.
#[derive(Debug, Clone)]
struct AttrKey {
    type_code: u32,
    name: Vec<u16>,
    lowest_vcn: u64,
    highest_vcn: u64,
    instance: u16,
    non_resident: bool,
    allocated_size: u64,
}

impl AttrKey {
    fn of(a: &AttrFacts) -> AttrKey {
        AttrKey {
            type_code: a.type_code,
            name: a.name.clone(),
            lowest_vcn: a.lowest_vcn,
            highest_vcn: a.highest_vcn,
            instance: a.instance,
            non_resident: a.non_resident,
            allocated_size: a.allocated_size,
        }
    }

    fn matches(&self, e: &AttributeListEntry) -> bool {
        self.type_code == e.type_code && self.name == e.name && self.instance == e.instance && self.lowest_vcn == e.lowest_vcn
    }
}

/// A base record with an `$ATTRIBUTE_LIST`.
#[derive(Debug, Clone)]
struct ListInfo {
    record: u64,
    sequence: u16,
    entries: Vec<AttributeListEntry>,
    attrs: Vec<AttrKey>,
}

/// An extension record in use.
#[derive(Debug, Clone)]
struct ExtInfo {
    record: u64,
    sequence: u16,
    base: FileRef,
    attrs: Vec<AttrKey>,
}

/// What the matching of index entries needs to know about a record.
#[derive(Debug, Clone, Copy)]
struct RecStatus {
    live: bool,
    extension: bool,
    sequence: u16,
}

/// Where a claimed cluster range came from, for messages.
#[derive(Debug, Clone)]
struct Claim {
    lcn: u64,
    len: u64,
    record: u64,
    attr: String,
}

/// Everything stage 1 of the whole-volume check keeps.
struct Scan {
    records: u64,
    seq: Vec<u16>,
    state: Vec<u8>,
    link: Vec<u16>,
    name_count: Vec<u16>,
    names: NameTable,
    dirs: Vec<u64>,
    exts: Vec<ExtInfo>,
    lists: Vec<ListInfo>,
    object_ids: Vec<([u8; 16], FileRef, u8)>,
    reparse: Vec<(u32, FileRef, u8)>,
    used: Bits,
    conflicts: Vec<Claim>,
}

fn rec_status(state: &[u8], seq: &[u16], r: u64) -> RecStatus {
    match state.get(r as usize) {
        Some(s) => RecStatus { live: s & LIVE != 0, extension: s & EXT != 0, sequence: seq[r as usize] },
        None => RecStatus { live: false, extension: false, sequence: 0 },
    }
}

impl Scan {
    fn status(&self, r: u64) -> RecStatus {
        rec_status(&self.state, &self.seq, r)
    }

    fn is_live_dir(&self, r: FileRef) -> bool {
        let s = self.status(r.record);
        s.live && !s.extension && self.state[r.record as usize] & DIR != 0 && s.sequence == r.sequence
    }
}

/// Marks an attribute's clusters in `used`, reporting runs outside the volume and clusters that
/// were already taken.
fn claim_runs(used: &mut Bits, n: u64, a: &AttrFacts, geo: &Geometry, p: &mut Problems, conflicts: &mut Vec<Claim>) {
    for run in &a.runs {
        let Some(lcn) = run.lcn else { continue };
        if lcn.saturating_add(run.length) > geo.total_clusters {
            p.push(
                ProblemKind::RunOutsideVolume,
                Some(n),
                format!(
                    "record {n}: {} maps VCN {} to clusters {lcn}..{} beyond the volume's {} clusters",
                    a.describe(),
                    run.vcn,
                    lcn.saturating_add(run.length),
                    geo.total_clusters
                ),
            );
        }
        for (s, l) in used.set_range(lcn, run.length) {
            conflicts.push(Claim { lcn: s, len: l, record: n, attr: a.describe() });
        }
    }
}

/// Reads the value of a non-resident attribute held whole in one extent (attribute lists and
/// reparse points of the files being scanned).
fn nonresident_value<R: ReadAt>(vol: &Volume<R>, a: &AttrFacts, max: u64) -> Result<Vec<u8>, NtfsError> {
    let s = a.stream();
    let len = s.data_size.min(max);
    vol.read_stream(&s, 0, len as usize)
}

fn attr_value<R: ReadAt>(vol: &Volume<R>, a: &AttrFacts, max: u64) -> Result<Option<Vec<u8>>, NtfsError> {
    if a.non_resident {
        if a.lowest_vcn != 0 {
            return Ok(None);
        }
        nonresident_value(vol, a, max).map(Some)
    } else {
        Ok(a.value.clone())
    }
}

/// Compares an `$ATTRIBUTE_LIST` with the attributes of its base record and extension records
/// (`exts`, sorted by record number); `status` tells whether a record is live.
fn cross_check_list(list: &ListInfo, exts: &[ExtInfo], status: &dyn Fn(u64) -> RecStatus, geo: &Geometry, p: &mut Problems) {
    let b = list.record;
    let r = Some(b);
    for e in &list.entries {
        let what = describe_attr(e.type_code, &e.name);
        if e.record.record == b {
            if e.record.sequence != list.sequence {
                p.push(
                    ProblemKind::AttributeList,
                    r,
                    format!("record {b}: $ATTRIBUTE_LIST places {what} in record {b} with sequence {}, not {}", e.record.sequence, list.sequence),
                );
            }
            if !list.attrs.iter().any(|a| a.matches(e)) {
                p.push(
                    ProblemKind::AttributeList,
                    r,
                    format!("record {b}: $ATTRIBUTE_LIST lists {what} (VCN {}, instance {}) in the base record, which does not hold it", e.lowest_vcn, e.instance),
                );
            }
            continue;
        }
        let x = e.record.record;
        match exts.binary_search_by_key(&x, |x| x.record) {
            Err(_) => {
                let s = status(x);
                let why = if !s.live { "not in use" } else { "not an extension record" };
                p.push(ProblemKind::AttributeList, r, format!("record {b}: $ATTRIBUTE_LIST places {what} in record {x}, which is {why}"));
            }
            Ok(i) => {
                let ext = &exts[i];
                if ext.sequence != e.record.sequence {
                    p.push(
                        ProblemKind::AttributeList,
                        r,
                        format!("record {b}: $ATTRIBUTE_LIST refers to record {x} with sequence {}, but it has sequence {}", e.record.sequence, ext.sequence),
                    );
                }
                if ext.base.record != b {
                    p.push(ProblemKind::AttributeList, r, format!("record {b}: $ATTRIBUTE_LIST lists record {x}, an extension of record {}", ext.base.record));
                } else if !ext.attrs.iter().any(|a| a.matches(e)) {
                    p.push(
                        ProblemKind::AttributeList,
                        r,
                        format!("record {b}: $ATTRIBUTE_LIST lists {what} (VCN {}, instance {}) in record {x}, which does not hold it", e.lowest_vcn, e.instance),
                    );
                }
            }
        }
    }
    // Every attribute of the base record (the list itself aside) is listed.
    for a in &list.attrs {
        if a.type_code == ATTR_ATTRIBUTE_LIST {
            continue;
        }
        if !list.entries.iter().any(|e| e.record.record == b && a.matches(e)) {
            p.push(
                ProblemKind::AttributeList,
                r,
                format!("record {b}: holds {} (instance {}), which its $ATTRIBUTE_LIST does not list", describe_attr(a.type_code, &a.name), a.instance),
            );
        }
    }
    // The extents of each non-resident attribute follow each other from VCN 0 to its allocation.
    let mut groups: BTreeMap<(u32, Vec<u16>), Vec<AttrKey>> = BTreeMap::new();
    for e in &list.entries {
        let holder = if e.record.record == b {
            Some(&list.attrs)
        } else {
            exts.binary_search_by_key(&e.record.record, |x| x.record).ok().map(|i| &exts[i].attrs)
        };
        if let Some(a) = holder.and_then(|attrs| attrs.iter().find(|a| a.matches(e))) {
            if a.non_resident {
                groups.entry((a.type_code, a.name.clone())).or_default().push(a.clone());
            }
        }
    }
    for ((ty, name), mut extents) in groups {
        extents.sort_by_key(|a| a.lowest_vcn);
        let what = describe_attr(ty, &name);
        let mut next = 0u64;
        let mut broken = false;
        for a in &extents {
            if a.lowest_vcn != next {
                p.push(ProblemKind::MappingPairs, r, format!("record {b}: an extent of {what} starts at VCN {}, expected {next}", a.lowest_vcn));
                broken = true;
                break;
            }
            next = a.highest_vcn.wrapping_add(1);
        }
        let allocated = extents.first().map_or(0, |a| a.allocated_size);
        if !broken && next.wrapping_mul(geo.cluster_size) != allocated {
            p.push(
                ProblemKind::MappingPairs,
                r,
                format!("record {b}: the extents of {what} end at VCN {next} but its allocated size is {allocated} bytes"),
            );
        }
    }
}

/// Checks that an extension record is listed by its base's attribute list.
fn check_extension(ext: &ExtInfo, list: Option<&ListInfo>, base: RecStatus, p: &mut Problems) {
    let x = ext.record;
    let b = ext.base.record;
    let r = Some(x);
    if !base.live || base.extension {
        p.push(ProblemKind::AttributeList, r, format!("record {x} is an extension of record {b}, which is not a base record in use"));
        return;
    }
    if base.sequence != ext.base.sequence {
        p.push(
            ProblemKind::AttributeList,
            r,
            format!("record {x} names base record {b} with sequence {}, but it has sequence {}", ext.base.sequence, base.sequence),
        );
    }
    let Some(list) = list else {
        p.push(ProblemKind::AttributeList, r, format!("record {x} is an extension of record {b}, which has no $ATTRIBUTE_LIST"));
        return;
    };
    for a in &ext.attrs {
        if !list.entries.iter().any(|e| e.record.record == x && a.matches(e)) {
            p.push(
                ProblemKind::AttributeList,
                r,
                format!(
                    "record {x}: holds {} (instance {}) of record {b}, whose $ATTRIBUTE_LIST does not list it",
                    describe_attr(a.type_code, &a.name),
                    a.instance
                ),
            );
        }
    }
}

/// Matches one `$I30` entry of directory `dir` against the names of live files.
fn match_entry(
    dir: FileRef,
    e: &TreeEntry,
    what: &str,
    status: &dyn Fn(u64) -> RecStatus,
    names: &mut NameTable,
    p: &mut Problems,
) {
    let Some(key) = &e.name else { return };
    let loc = match e.node {
        NodeId::Root => format!("index root of {what}"),
        NodeId::Block(v) => format!("index block VCN {v} of {what}"),
    };
    let t = e.file_ref;
    let shown = format!("\"{}\" ({})", key.name_string(), namespace_name(key.namespace));
    let r = Some(dir.record);
    let s = status(t.record);
    if !s.live {
        p.push(ProblemKind::IndexEntryStale, r, format!("{loc}: entry {shown} points at record {}, which is not in use", t.record));
        return;
    }
    if s.extension {
        p.push(ProblemKind::IndexEntryStale, r, format!("{loc}: entry {shown} points at record {}, an extension record", t.record));
        return;
    }
    if s.sequence != t.sequence {
        p.push(
            ProblemKind::IndexEntryStale,
            r,
            format!("{loc}: entry {shown} points at record {} with sequence {}, but the record has sequence {}", t.record, t.sequence, s.sequence),
        );
        return;
    }
    if key.parent != dir {
        p.push(
            ProblemKind::IndexEntryName,
            r,
            format!(
                "{loc}: entry {shown} for record {} names parent {} (sequence {}), not this directory (record {}, sequence {})",
                t.record, key.parent.record, key.parent.sequence, dir.record, dir.sequence
            ),
        );
        return;
    }
    match names.find_mut(dir.record, t.record, key.namespace, &key.name) {
        Some(n) if n.parent == dir => n.hits = n.hits.saturating_add(1),
        _ => p.push(
            ProblemKind::IndexEntryName,
            r,
            format!("{loc}: entry {shown} matches no $FILE_NAME of record {} with this directory as parent", t.record),
        ),
    }
}

/// After all entries of the directories in `complete` were matched: names indexed zero or several
/// times. `name_of` recovers a name for the message.
fn report_unmatched_names(
    names: &NameTable,
    complete: &dyn Fn(FileRef) -> bool,
    name_of: &mut dyn FnMut(u64, u64, u8, u64) -> Option<String>,
    p: &mut Problems,
) {
    for n in &names.names {
        if n.hits == 1 || !complete(n.parent) {
            continue;
        }
        let shown = name_of(n.child.record, n.parent.record, n.namespace, n.hash).unwrap_or_else(|| "?".into());
        let ns = namespace_name(n.namespace);
        if n.hits == 0 {
            p.push(
                ProblemKind::NameNotIndexed,
                Some(n.child.record),
                format!("record {}: its {ns} name \"{shown}\" is missing from the index of directory {}", n.child.record, n.parent.record),
            );
        } else {
            p.push(
                ProblemKind::NameIndexedTwice,
                Some(n.child.record),
                format!(
                    "record {}: its {ns} name \"{shown}\" is indexed {} times in directory {}",
                    n.child.record, n.hits, n.parent.record
                ),
            );
        }
    }
}

/// Finds a name of record `child` (its base or extension records) by parent, namespace and hash.
fn find_name<R: ReadAt>(vol: &Volume<R>, child: u64, parent: u64, ns: u8, hash: u64) -> Option<String> {
    let rec = vol.read_record(child).ok()?;
    for r in vol.records_of(&rec).ok()? {
        for a in r.attributes().ok()? {
            if a.type_code == crate::record::ATTR_FILE_NAME && !a.non_resident {
                if let Ok(k) = FileNameKey::parse(a.resident_value().ok()?) {
                    if k.parent.record == parent && k.namespace == ns && name_hash(&k.name) == hash {
                        return Some(k.name_string());
                    }
                }
            }
        }
    }
    None
}

/// The in-use records whose runs cover some cluster of `ranges`, per range (a second, rare pass
/// to name the files involved in double use or in bitmap holes).
fn owners_of<R: ReadAt>(vol: &Volume<R>, ranges: &[(u64, u64)]) -> Result<Vec<Vec<(u64, String)>>, NtfsError> {
    let mut out = vec![Vec::new(); ranges.len()];
    if ranges.is_empty() {
        return Ok(out);
    }
    let rs = vol.boot().file_record_size as u64;
    let total = vol.record_count();
    let mut n = 0;
    while n < total {
        let count = CHUNK_RECORDS.min(total - n);
        let chunk = vol.read_stream(vol.mft_stream(), n * rs, (count * rs) as usize)?;
        for i in 0..count {
            let mut b = chunk[(i * rs) as usize..((i + 1) * rs) as usize].to_vec();
            if &b[0..4] != b"FILE" || u16_at(&b, 0x16).unwrap_or(0) & FLAG_IN_USE == 0 {
                continue;
            }
            if crate::fixup::apply_read(&mut b, "").is_err() {
                continue;
            }
            let Ok(rec) = FileRecord::parse(n + i, b) else { continue };
            let Ok(attrs) = rec.attributes() else { continue };
            for a in attrs.iter().filter(|a| a.non_resident) {
                let Ok(runs) = a.runs() else { continue };
                for run in runs {
                    let Some(lcn) = run.lcn else { continue };
                    for (k, (s, l)) in ranges.iter().enumerate() {
                        if lcn < s + l && *s < lcn + run.length {
                            let label = describe_attr(a.type_code, &a.name);
                            if !out[k].iter().any(|(r, d)| *r == n + i && *d == label) {
                                out[k].push((n + i, label));
                            }
                        }
                    }
                }
            }
        }
        n += count;
    }
    Ok(out)
}

fn owners_text(owners: &[(u64, String)]) -> String {
    owners.iter().map(|(r, a)| format!("record {r} ({a})")).collect::<Vec<_>>().join(", ")
}

/// Checks the whole volume. Problems go into the report; `Err` only when the image cannot be read.
pub fn check_volume<R: ReadAt>(vol: &Volume<R>) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let geo = geometry(vol);
    let records = vol.record_count();
    let rs = geo.record_size as u64;
    let mut stats = CheckStats { records_total: records, clusters_total: geo.total_clusters, ..Default::default() };

    // $MFT:$BITMAP, whole (one bit per record).
    let rec0 = soft(vol.read_record(0), &mut p, ProblemKind::Unreadable, Some(0), "$MFT record 0")?;
    let mft_bitmap = match &rec0 {
        Some(r) => match soft(vol.value(r, ATTR_BITMAP, ""), &mut p, ProblemKind::Unreadable, Some(0), "$MFT:$BITMAP")? {
            Some(Some(v)) => soft(vol.read_value(&v, 0, value_len(&v) as usize), &mut p, ProblemKind::Unreadable, Some(0), "$MFT:$BITMAP")?,
            Some(None) => {
                p.push(ProblemKind::Unreadable, Some(0), "$MFT has no $BITMAP attribute".into());
                None
            }
            None => None,
        },
        None => None,
    };
    let Some(mft_bitmap) = mft_bitmap else {
        return Ok(p.into_report(stats, None));
    };
    let mft_bits = Bits::from_bytes(&mft_bitmap, mft_bitmap.len() as u64 * 8);
    if mft_bits.len() < records {
        p.push(
            ProblemKind::MftBitmapMissing,
            Some(0),
            format!("$MFT:$BITMAP has {} bits for the {records} records of $MFT", mft_bits.len()),
        );
    }
    let mut beyond = Vec::new();
    for i in records..mft_bits.len() {
        if mft_bits.get(i) {
            push_range(&mut beyond, i, 1);
        }
    }
    for (s, l) in beyond {
        p.push(ProblemKind::MftBitmapStale, Some(0), format!("$MFT:$BITMAP marks records {s}..{} in use, past the end of $MFT ({records} records)", s + l));
    }

    // Stage 1: every record, streamed in chunks.
    let mut scan = Scan {
        records,
        seq: vec![0; records as usize],
        state: vec![0; records as usize],
        link: vec![0; records as usize],
        name_count: vec![0; records as usize],
        names: NameTable::default(),
        dirs: Vec::new(),
        exts: Vec::new(),
        lists: Vec::new(),
        object_ids: Vec::new(),
        reparse: Vec::new(),
        used: Bits::new(geo.total_clusters),
        conflicts: Vec::new(),
    };
    let mut n = 0u64;
    while n < records {
        let count = CHUNK_RECORDS.min(records - n);
        let chunk = vol.read_stream(vol.mft_stream(), n * rs, (count * rs) as usize)?;
        for i in 0..count {
            let raw = &chunk[(i * rs) as usize..((i + 1) * rs) as usize];
            stage1_record(vol, n + i, raw, mft_bits.get(n + i), &geo, &mut scan, &mut p, &mut stats)?;
        }
        n += count;
    }

    // Stage 1, across records.
    for r in 0..records {
        let s = scan.state[r as usize];
        if s & LIVE != 0 && s & EXT == 0 && scan.link[r as usize] != scan.name_count[r as usize] {
            p.push(
                ProblemKind::LinkCount,
                Some(r),
                format!("record {r}: link count {} but {} $FILE_NAME attributes", scan.link[r as usize], scan.name_count[r as usize]),
            );
        }
    }
    scan.names.sort();
    stats.file_names = scan.names.names.len() as u64;
    for name in &scan.names.names {
        if !scan.is_live_dir(name.parent) {
            let s = scan.status(name.parent.record);
            let why = if !s.live || s.extension {
                "which is not a file in use".to_string()
            } else if scan.state[name.parent.record as usize] & DIR == 0 {
                "which is not a directory".to_string()
            } else {
                format!("whose sequence is {}", s.sequence)
            };
            let shown = find_name(vol, name.child.record, name.parent.record, name.namespace, name.hash).unwrap_or_default();
            p.push(
                ProblemKind::NameParent,
                Some(name.child.record),
                format!(
                    "record {}: name \"{shown}\" names parent record {} (sequence {}), {why}",
                    name.child.record, name.parent.record, name.parent.sequence
                ),
            );
        }
    }
    scan.exts.sort_by_key(|x| x.record);
    {
        let status = |r: u64| scan.status(r);
        for list in &scan.lists {
            cross_check_list(list, &scan.exts, &status, &geo, &mut p);
        }
        let by_base: HashMap<u64, &ListInfo> = scan.lists.iter().map(|l| (l.record, l)).collect();
        for ext in &scan.exts {
            check_extension(ext, by_base.get(&ext.base.record).copied(), scan.status(ext.base.record), &mut p);
        }
    }
    if !scan.conflicts.is_empty() {
        let ranges: Vec<(u64, u64)> = scan.conflicts.iter().take(MAX_PER_KIND as usize).map(|c| (c.lcn, c.len)).collect();
        let owners = owners_of(vol, &ranges)?;
        for (c, o) in scan.conflicts.iter().zip(owners.iter().map(Some).chain(std::iter::repeat(None))) {
            let others = o.map(|o| owners_text(o)).unwrap_or_default();
            p.push(
                ProblemKind::ClusterDoubleUse,
                Some(c.record),
                format!(
                    "clusters {}..{} are claimed twice: again by record {} ({}); users: {}",
                    c.lcn,
                    c.lcn + c.len,
                    c.record,
                    c.attr,
                    if others.is_empty() { "?".into() } else { others }
                ),
            );
        }
    }
    stats.clusters_in_use = scan.used.count_ones();
    compare_volume_bitmap(vol, &scan.used, &geo, &mut p, &mut stats)?;

    // Stage 2: every directory index.
    let mut complete = Bits::new(records);
    let dirs = std::mem::take(&mut scan.dirs);
    for d in dirs {
        let what = format!("directory {d}");
        let Some(base) = soft(vol.read_record(d), &mut p, ProblemKind::Unreadable, Some(d), &what)? else { continue };
        let Some(tree) = check_tree(vol, &base, "$I30", &what, &mut p)? else { continue };
        stats.directories += 1;
        stats.index_entries += tree.entries.len() as u64;
        stats.index_blocks += tree.blocks;
        if tree.complete {
            complete.set(d);
        }
        let dir = FileRef { record: d, sequence: scan.seq[d as usize] };
        let status = |r: u64| rec_status(&scan.state, &scan.seq, r);
        for e in &tree.entries {
            match_entry(dir, e, &what, &status, &mut scan.names, &mut p);
        }
    }
    {
        let complete_fn = |r: FileRef| scan.is_live_dir(r) && complete.get(r.record);
        let mut name_of = |c: u64, par: u64, ns: u8, h: u64| find_name(vol, c, par, ns, h);
        report_unmatched_names(&scan.names, &complete_fn, &mut name_of, &mut p);
    }
    check_view_indexes(vol, &mut scan, &mut p)?;

    // The volume.
    let state = check_volume_files(vol, &mut p)?;
    Ok(p.into_report(stats, Some(state)))
}

#[allow(clippy::too_many_arguments)]
fn stage1_record<R: ReadAt>(
    vol: &Volume<R>,
    n: u64,
    raw: &[u8],
    bit: bool,
    geo: &Geometry,
    scan: &mut Scan,
    p: &mut Problems,
    stats: &mut CheckStats,
) -> Result<(), NtfsError> {
    let is_file = &raw[0..4] == b"FILE";
    let flags = u16_at(raw, 0x16).unwrap_or(0);
    let in_use = is_file && flags & FLAG_IN_USE != 0;
    if !in_use {
        if bit && !reserved_record(n) {
            let what = if is_file { "is not in use" } else { "holds no FILE record" };
            p.push(ProblemKind::MftBitmapStale, Some(n), format!("record {n} {what} but $MFT:$BITMAP marks it in use"));
        }
        return Ok(());
    }
    stats.records_in_use += 1;
    if !bit {
        p.push(ProblemKind::MftBitmapMissing, Some(n), format!("record {n} is in use but its $MFT:$BITMAP bit is clear"));
    }
    let mut b = raw.to_vec();
    if let Err(e) = crate::fixup::apply_read(&mut b, &format!("record {n}")) {
        p.push(ProblemKind::RecordHeader, Some(n), plain(&e));
        return Ok(());
    }
    let Some(f) = examine_record(n, &b, geo, p) else { return Ok(()) };
    absorb(vol, &f, geo, scan, p, stats)
}

/// Adds one examined record to the scan state.
fn absorb<R: ReadAt>(
    vol: &Volume<R>,
    f: &RecordFacts,
    geo: &Geometry,
    scan: &mut Scan,
    p: &mut Problems,
    stats: &mut CheckStats,
) -> Result<(), NtfsError> {
    let n = f.number;
    let i = n as usize;
    scan.seq[i] = f.sequence;
    scan.state[i] |= LIVE;
    let ext = f.is_extension();
    let owner = if ext { f.base } else { FileRef { record: n, sequence: f.sequence } };
    if ext {
        scan.state[i] |= EXT;
        stats.extension_records += 1;
        if f.base.record >= scan.records {
            p.push(ProblemKind::AttributeList, Some(n), format!("record {n} names base record {}, beyond the end of $MFT", f.base.record));
        }
    } else {
        scan.link[i] = f.link_count;
    }
    for a in &f.attrs {
        if a.non_resident {
            claim_runs(&mut scan.used, n, a, geo, p, &mut scan.conflicts);
        }
        match a.type_code {
            ATTR_OBJECT_ID => {
                if let Some(v) = a.value.as_ref().filter(|v| v.len() >= 16) {
                    let mut g = [0u8; 16];
                    g.copy_from_slice(&v[..16]);
                    scan.object_ids.push((g, owner, 0));
                }
            }
            ATTR_REPARSE_POINT => {
                if let Some(v) = soft(attr_value(vol, a, 4), p, ProblemKind::Unreadable, Some(n), &format!("record {n}: $REPARSE_POINT"))?.flatten() {
                    if let Ok(tag) = u32_at(&v, 0) {
                        scan.reparse.push((tag, owner, 0));
                    }
                }
            }
            _ => {}
        }
    }
    if owner.record < scan.records {
        for k in &f.names {
            scan.names.add(owner, k);
            let c = &mut scan.name_count[owner.record as usize];
            *c = c.saturating_add(1);
        }
    }
    if ext {
        scan.exts.push(ExtInfo { record: n, sequence: f.sequence, base: f.base, attrs: f.attrs.iter().map(AttrKey::of).collect() });
        return Ok(());
    }
    let has_i30 = match f.attrs.iter().find(|a| a.type_code == ATTR_ATTRIBUTE_LIST) {
        None => f.has_i30_root(),
        Some(a) => {
            let v = soft(attr_value(vol, a, 64 << 20), p, ProblemKind::AttributeList, Some(n), &format!("record {n}: $ATTRIBUTE_LIST"))?.flatten();
            let entries = match v.map(|v| parse_attribute_list(&v)) {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    p.push(ProblemKind::AttributeList, Some(n), format!("record {n}: $ATTRIBUTE_LIST: {}", plain(&e)));
                    Vec::new()
                }
                None => Vec::new(),
            };
            let has = entries.iter().any(|e| e.type_code == ATTR_INDEX_ROOT && e.name == I30);
            scan.lists.push(ListInfo { record: n, sequence: f.sequence, entries, attrs: f.attrs.iter().map(AttrKey::of).collect() });
            has
        }
    };
    let dir_flag = f.flags & FLAG_DIRECTORY != 0;
    if dir_flag != has_i30 {
        p.push(
            ProblemKind::DirectoryFlag,
            Some(n),
            if dir_flag {
                format!("record {n} has the directory flag but no $I30 index")
            } else {
                format!("record {n} has an $I30 index but not the directory flag")
            },
        );
    }
    if has_i30 {
        scan.state[i] |= DIR;
        scan.dirs.push(n);
    }
    Ok(())
}

/// Compares the clusters the files use with `$Bitmap`, one chunk at a time.
fn compare_volume_bitmap<R: ReadAt>(
    vol: &Volume<R>,
    used: &Bits,
    geo: &Geometry,
    p: &mut Problems,
    stats: &mut CheckStats,
) -> Result<(), NtfsError> {
    let r = Some(RECORD_BITMAP);
    let Some(rec) = soft(vol.read_record(RECORD_BITMAP), p, ProblemKind::Unreadable, r, "$Bitmap")? else { return Ok(()) };
    let value = match soft(vol.value(&rec, ATTR_DATA, ""), p, ProblemKind::Unreadable, r, "$Bitmap")? {
        Some(Some(v)) => v,
        Some(None) => {
            p.push(ProblemKind::Unreadable, r, "$Bitmap has no data".into());
            return Ok(());
        }
        None => return Ok(()),
    };
    let total = geo.total_clusters;
    let size = value_len(&value);
    if size * 8 < total {
        p.push(ProblemKind::BitmapMissing, r, format!("$Bitmap holds {} bits for the volume's {total} clusters", size * 8));
    }
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    let mut marked = 0u64;
    let covered = (size * 8).min(total);
    let mut byte = 0u64;
    while byte * 8 < covered {
        let len = BITMAP_CHUNK.min(size - byte);
        let Some(chunk) = soft(vol.read_value(&value, byte, len as usize), p, ProblemKind::Unreadable, r, "$Bitmap")? else {
            return Ok(());
        };
        let first_word = (byte / 8) as usize;
        for (k, w8) in chunk.chunks(8).enumerate() {
            let w = first_word + k;
            let start = w as u64 * 64;
            if start >= covered {
                break;
            }
            let mut a = [0u8; 8];
            a[..w8.len()].copy_from_slice(w8);
            let mut m = u64::from_le_bytes(a);
            // Bits past the last cluster are set by convention (mkntfs and Windows); not judged.
            if covered - start < 64 {
                m &= (1u64 << (covered - start)) - 1;
            }
            marked += m.count_ones() as u64;
            let u = used.word(w);
            for (diff, out) in [(u & !m, &mut missing), (m & !u, &mut stale)] {
                let mut d = diff;
                while d != 0 {
                    let b = d.trailing_zeros() as u64;
                    push_range(out, start + b, 1);
                    d &= d - 1;
                }
            }
        }
        byte += len;
    }
    stats.clusters_marked = marked;
    let shown: Vec<(u64, u64)> = missing.iter().take(20).copied().collect();
    let owners = owners_of(vol, &shown)?;
    for (k, (s, l)) in missing.iter().enumerate() {
        let o = owners.get(k);
        let who = o.map(|o| format!(" (used by {})", owners_text(o))).unwrap_or_default();
        let record = o.and_then(|o| o.first()).map(|(r, _)| *r);
        p.push(ProblemKind::BitmapMissing, record, format!("$Bitmap clusters {s}..{} are free but in use{who}", s + l));
    }
    for (s, l) in stale {
        p.push(ProblemKind::BitmapStale, r, format!("$Bitmap clusters {s}..{} are marked in use but no file uses them", s + l));
    }
    Ok(())
}

/// `$ObjId:$O` and `$Reparse:$R` against the object IDs and reparse points of the live files.
fn check_view_indexes<R: ReadAt>(vol: &Volume<R>, scan: &mut Scan, p: &mut Problems) -> Result<(), NtfsError> {
    scan.object_ids.sort_by_key(|(g, f, _)| (*g, f.record, f.sequence));
    scan.reparse.sort_by_key(|(t, f, _)| (*t, f.record, f.sequence));
    for (file, index) in [("$ObjId", "$O"), ("$Reparse", "$R")] {
        let path = format!("\\$Extend\\{file}");
        let kind = if index == "$O" { ProblemKind::ObjectIdIndex } else { ProblemKind::ReparseIndex };
        let found = soft(vol.lookup_path(&path), p, ProblemKind::Unreadable, Some(11), &path)?.flatten();
        let wanted = if index == "$O" { scan.object_ids.len() } else { scan.reparse.len() };
        let Some((_, rec)) = found else {
            if wanted > 0 {
                p.push(kind, None, format!("{wanted} files carry {} but {path} does not exist", if index == "$O" { "object IDs" } else { "reparse points" }));
            }
            continue;
        };
        let what = format!("{file}:{index} (record {})", rec.number);
        let Some(tree) = check_tree(vol, &rec, index, &what, p)? else {
            p.push(kind, Some(rec.number), format!("{path} has no {index} index"));
            continue;
        };
        let r = Some(rec.number);
        let status = |x: u64| rec_status(&scan.state, &scan.seq, x);
        for e in &tree.entries {
            if index == "$O" {
                if e.key.len() != 16 || e.data.len() < 8 {
                    p.push(kind, r, format!("{what}: an entry has a {}-byte key and {}-byte data", e.key.len(), e.data.len()));
                    continue;
                }
                let target = FileRef::from_u64(u64_at(&e.data, 0).unwrap_or(0));
                let guid: String = e.key.iter().map(|b| format!("{b:02x}")).collect();
                let s = status(target.record);
                if !s.live || s.extension || s.sequence != target.sequence {
                    p.push(kind, r, format!("{what}: object ID {guid} points at record {} (sequence {}), not a live file", target.record, target.sequence));
                    continue;
                }
                match scan.object_ids.iter_mut().find(|(g, f, _)| g[..] == e.key[..] && *f == target) {
                    Some(x) => x.2 = x.2.saturating_add(1),
                    None => p.push(kind, r, format!("{what}: object ID {guid} points at record {}, which does not carry it", target.record)),
                }
            } else {
                if e.key.len() < 12 {
                    p.push(kind, r, format!("{what}: an entry has a {}-byte key", e.key.len()));
                    continue;
                }
                let tag = u32_at(&e.key, 0).unwrap_or(0);
                let target = FileRef::from_u64(u64_at(&e.key, 4).unwrap_or(0));
                let s = status(target.record);
                if !s.live || s.extension || (target.sequence != 0 && s.sequence != target.sequence) {
                    p.push(kind, r, format!("{what}: reparse tag {tag:#x} points at record {} (sequence {}), not a live file", target.record, target.sequence));
                    continue;
                }
                match scan.reparse.iter_mut().find(|(t, f, _)| *t == tag && f.record == target.record) {
                    Some(x) => x.2 = x.2.saturating_add(1),
                    None => p.push(kind, r, format!("{what}: reparse tag {tag:#x} points at record {}, which has no such reparse point", target.record)),
                }
            }
        }
        if !tree.complete {
            continue;
        }
        if index == "$O" {
            for (g, f, hits) in &scan.object_ids {
                if *hits != 1 {
                    let guid: String = g.iter().map(|b| format!("{b:02x}")).collect();
                    p.push(kind, Some(f.record), format!("record {}: object ID {guid} is listed {hits} times in {what}", f.record));
                }
            }
        } else {
            for (t, f, hits) in &scan.reparse {
                if *hits != 1 {
                    p.push(kind, Some(f.record), format!("record {}: reparse point (tag {t:#x}) is listed {hits} times in {what}", f.record));
                }
            }
        }
    }
    Ok(())
}

/// `$MFTMirr`, `$LogFile`, the dirty flag and the backup boot sector.
fn check_volume_files<R: ReadAt>(vol: &Volume<R>, p: &mut Problems) -> Result<VolumeState, NtfsError> {
    let rs = vol.boot().file_record_size as u64;
    // $MFTMirr: the first records of $MFT, byte for byte as stored.
    if let Some(mirr) = soft(vol.read_record(1), p, ProblemKind::MftMirror, Some(1), "$MFTMirr")? {
        if let Some(Some(v)) = soft(vol.value(&mirr, ATTR_DATA, ""), p, ProblemKind::MftMirror, Some(1), "$MFTMirr")? {
            let count = (value_len(&v) / rs).min(vol.record_count());
            if count == 0 {
                p.push(ProblemKind::MftMirror, Some(1), "$MFTMirr holds no whole record".into());
            }
            if let Some(copy) = soft(vol.read_value(&v, 0, (count * rs) as usize), p, ProblemKind::MftMirror, Some(1), "$MFTMirr")? {
                let orig = vol.read_stream(vol.mft_stream(), 0, (count * rs) as usize)?;
                for k in 0..count as usize {
                    let range = k * rs as usize..(k + 1) * rs as usize;
                    if copy[range.clone()] != orig[range] {
                        p.push(ProblemKind::MftMirror, Some(k as u64), format!("record {k} differs between $MFT and $MFTMirr"));
                    }
                }
            }
        }
    }
    // $LogFile: valid restart pages, or all 0xFF.
    let mut log = None;
    if let Some(rec) = soft(vol.read_record(RECORD_LOGFILE), p, ProblemKind::LogFile, Some(RECORD_LOGFILE), "$LogFile")? {
        if let Some(Some(v)) = soft(vol.value(&rec, ATTR_DATA, ""), p, ProblemKind::LogFile, Some(RECORD_LOGFILE), "$LogFile")? {
            let info = soft(
                log_state(value_len(&v), &mut |off, len| vol.read_value(&v, off, len)),
                p,
                ProblemKind::LogFile,
                Some(RECORD_LOGFILE),
                "$LogFile",
            )?;
            if let Some(info) = info {
                if info.state == LogState::Unreadable {
                    p.push(
                        ProblemKind::LogFile,
                        Some(RECORD_LOGFILE),
                        "$LogFile has no valid restart page and is not erased (all 0xFF)".into(),
                    );
                }
                log = Some(info);
            }
        }
    }
    // The dirty flag ($VOLUME_INFORMATION flags, bit 0).
    let mut dirty = None;
    if let Some(rec) = soft(vol.read_record(RECORD_VOLUME), p, ProblemKind::Unreadable, Some(RECORD_VOLUME), "$Volume")? {
        if let Some(Some(AttrValue::Resident(v))) = soft(vol.value(&rec, ATTR_VOLUME_INFORMATION, ""), p, ProblemKind::Unreadable, Some(RECORD_VOLUME), "$Volume")? {
            dirty = u16_at(&v, 0x0A).ok().map(|f| f & 1 != 0);
        }
    }
    // The backup boot sector sits in the last sector, just past the volume's sectors.
    let bps = vol.boot().bytes_per_sector as u64;
    let at = vol.boot().volume_size();
    if vol.reader().size() >= at + bps {
        let mut main = vec![0u8; 512];
        let mut backup = vec![0u8; 512];
        vol.reader().read_at(0, &mut main).map_err(NtfsError::io("reading the boot sector"))?;
        vol.reader().read_at(at, &mut backup).map_err(NtfsError::io("reading the backup boot sector"))?;
        if main != backup {
            p.push(ProblemKind::BootBackup, None, format!("the backup boot sector (byte {at}) differs from the boot sector"));
        }
    }
    Ok(VolumeState { dirty, log })
}

// ---------------------------------------------------------------------------------------------
// Targeted checks, for the structures an edit touched.

/// Reads bits `first .. first+count` of a bitmap attribute value.
fn read_bits<R: ReadAt>(vol: &Volume<R>, v: &AttrValue, first: u64, count: u64) -> Result<Vec<bool>, NtfsError> {
    let end = first + count;
    let (b0, b1) = (first / 8, end.div_ceil(8).min(value_len(v)));
    if b1 <= b0 {
        return Ok(vec![false; count as usize]);
    }
    let bytes = vol.read_value(v, b0, (b1 - b0) as usize)?;
    Ok((first..end)
        .map(|i| {
            let k = (i / 8 - b0) as usize;
            bytes.get(k).is_some_and(|b| b >> (i % 8) & 1 != 0)
        })
        .collect())
}

fn mft_bitmap_value<R: ReadAt>(vol: &Volume<R>) -> Result<AttrValue, NtfsError> {
    let rec0 = vol.read_record(0)?;
    vol.value(&rec0, ATTR_BITMAP, "")?.ok_or_else(|| NtfsError::Corrupt("$MFT has no $BITMAP attribute".into()))
}

fn volume_bitmap_value<R: ReadAt>(vol: &Volume<R>) -> Result<AttrValue, NtfsError> {
    let rec = vol.read_record(RECORD_BITMAP)?;
    vol.value(&rec, ATTR_DATA, "")?.ok_or_else(|| NtfsError::Corrupt("$Bitmap has no data".into()))
}

/// IN_USE ⇔ `$MFT:$BITMAP` for the given records.
pub fn check_mft_bits<R: ReadAt>(vol: &Volume<R>, records: &[u64]) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let Some(bitmap) = soft(mft_bitmap_value(vol), &mut p, ProblemKind::Unreadable, Some(0), "$MFT:$BITMAP")? else {
        return Ok(p.into_report(CheckStats::default(), None));
    };
    for &n in records {
        mft_bit_of(vol, &bitmap, n, &mut p)?;
    }
    Ok(p.into_report(CheckStats::default(), None))
}

/// Checks record `n`'s `$MFT:$BITMAP` bit against its IN_USE flag; returns the raw record when it
/// is in use.
fn mft_bit_of<R: ReadAt>(vol: &Volume<R>, bitmap: &AttrValue, n: u64, p: &mut Problems) -> Result<Option<Vec<u8>>, NtfsError> {
    let Some(raw) = soft(vol.read_record_raw(n), p, ProblemKind::Unreadable, Some(n), &format!("record {n}"))? else {
        return Ok(None);
    };
    let bit = soft(read_bits(vol, bitmap, n, 1), p, ProblemKind::Unreadable, Some(0), "$MFT:$BITMAP")?.is_some_and(|b| b[0]);
    let in_use = &raw[0..4] == b"FILE" && u16_at(&raw, 0x16).unwrap_or(0) & FLAG_IN_USE != 0;
    if in_use && !bit {
        p.push(ProblemKind::MftBitmapMissing, Some(n), format!("record {n} is in use but its $MFT:$BITMAP bit is clear"));
    } else if !in_use && bit && !reserved_record(n) {
        p.push(ProblemKind::MftBitmapStale, Some(n), format!("record {n} is not in use but $MFT:$BITMAP marks it in use"));
    }
    Ok(in_use.then_some(raw))
}

/// Whether clusters are expected in use or free in `$Bitmap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    Used,
    Free,
}

/// Checks that the `$Bitmap` bits of the given cluster ranges `(lcn, count)` are all `expect`
/// (after a delete: the freed clusters are free).
pub fn check_cluster_bits<R: ReadAt>(vol: &Volume<R>, ranges: &[(u64, u64)], expect: ClusterState) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    if let Some(bitmap) = soft(volume_bitmap_value(vol), &mut p, ProblemKind::Unreadable, Some(RECORD_BITMAP), "$Bitmap")? {
        for &(lcn, len) in ranges {
            cluster_bits(vol, &bitmap, lcn, len, expect, None, &mut p)?;
        }
    }
    Ok(p.into_report(CheckStats::default(), None))
}

fn cluster_bits<R: ReadAt>(
    vol: &Volume<R>,
    bitmap: &AttrValue,
    lcn: u64,
    len: u64,
    expect: ClusterState,
    owner: Option<(u64, &str)>,
    p: &mut Problems,
) -> Result<(), NtfsError> {
    let total = vol.boot().total_clusters();
    let len = len.min(total.saturating_sub(lcn));
    let Some(bits) = soft(read_bits(vol, bitmap, lcn, len), p, ProblemKind::Unreadable, Some(RECORD_BITMAP), "$Bitmap")? else {
        return Ok(());
    };
    let want = expect == ClusterState::Used;
    let mut wrong = Vec::new();
    for (k, b) in bits.iter().enumerate() {
        if *b != want {
            push_range(&mut wrong, lcn + k as u64, 1);
        }
    }
    for (s, l) in wrong {
        let (kind, text) = if want {
            let who = owner.map(|(r, a)| format!(" (used by record {r}, {a})")).unwrap_or_default();
            (ProblemKind::BitmapMissing, format!("$Bitmap clusters {s}..{} are free but in use{who}", s + l))
        } else {
            (ProblemKind::BitmapStale, format!("$Bitmap clusters {s}..{} are marked in use but expected free", s + l))
        };
        p.push(kind, owner.map(|o| o.0), text);
    }
    Ok(())
}

/// Stage 1 for the given records and the files they belong to: header and attributes, the
/// `$MFT:$BITMAP` bit, link count, directory flag, attribute list against extension records, runs
/// inside the volume and marked in `$Bitmap`, no cluster used twice within the file, and each
/// name's parent a live directory. Whether each name is indexed is [`check_directory`]'s part.
pub fn check_records<R: ReadAt>(vol: &Volume<R>, records: &[u64]) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let geo = geometry(vol);
    let mut stats = CheckStats::default();
    let Some(mft_bitmap) = soft(mft_bitmap_value(vol), &mut p, ProblemKind::Unreadable, Some(0), "$MFT:$BITMAP")? else {
        return Ok(p.into_report(stats, None));
    };
    let cluster_bitmap = soft(volume_bitmap_value(vol), &mut p, ProblemKind::Unreadable, Some(RECORD_BITMAP), "$Bitmap")?;
    let mut done: Vec<u64> = Vec::new();
    for &n in records {
        let Some(raw) = mft_bit_of(vol, &mft_bitmap, n, &mut p)? else { continue };
        stats.records_in_use += 1;
        let mut b = raw;
        if let Err(e) = crate::fixup::apply_read(&mut b, &format!("record {n}")) {
            p.push(ProblemKind::RecordHeader, Some(n), plain(&e));
            continue;
        }
        let Some(f) = examine_record(n, &b, &geo, &mut p) else { continue };
        // Work on the whole file: its base record and every extension record.
        let base_no = if f.is_extension() { f.base.record } else { n };
        if done.contains(&base_no) {
            continue;
        }
        done.push(base_no);
        check_file(vol, base_no, &mft_bitmap, cluster_bitmap.as_ref(), &geo, &mut p, &mut stats)?;
    }
    Ok(p.into_report(stats, None))
}

/// Stage 1 on one file (base record `b` and its extension records).
fn check_file<R: ReadAt>(
    vol: &Volume<R>,
    b: u64,
    mft_bitmap: &AttrValue,
    cluster_bitmap: Option<&AttrValue>,
    geo: &Geometry,
    p: &mut Problems,
    stats: &mut CheckStats,
) -> Result<(), NtfsError> {
    let r = Some(b);
    let Some(raw) = mft_bit_of(vol, mft_bitmap, b, p)? else {
        p.push(ProblemKind::AttributeList, r, format!("record {b} is the base of a record checked but is not in use"));
        return Ok(());
    };
    let mut bytes = raw;
    if let Err(e) = crate::fixup::apply_read(&mut bytes, &format!("record {b}")) {
        p.push(ProblemKind::RecordHeader, r, plain(&e));
        return Ok(());
    }
    let Some(base) = examine_record(b, &bytes, geo, &mut Problems::default()) else { return Ok(()) };
    if base.is_extension() {
        p.push(ProblemKind::AttributeList, r, format!("record {b} is named as a base record but is itself an extension of {}", base.base.record));
        return Ok(());
    }
    let mut files: Vec<RecordFacts> = vec![base.clone()];
    let mut exts: Vec<ExtInfo> = Vec::new();
    let mut list = None;
    if let Some(a) = base.attrs.iter().find(|a| a.type_code == ATTR_ATTRIBUTE_LIST) {
        let v = soft(attr_value(vol, a, 64 << 20), p, ProblemKind::AttributeList, r, &format!("record {b}: $ATTRIBUTE_LIST"))?.flatten();
        let entries = match v.map(|v| parse_attribute_list(&v)) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                p.push(ProblemKind::AttributeList, r, format!("record {b}: $ATTRIBUTE_LIST: {}", plain(&e)));
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut seen = vec![b];
        for e in &entries {
            let x = e.record.record;
            if seen.contains(&x) {
                continue;
            }
            seen.push(x);
            let Some(raw) = mft_bit_of(vol, mft_bitmap, x, p)? else { continue };
            let mut xb = raw;
            if let Err(err) = crate::fixup::apply_read(&mut xb, &format!("record {x}")) {
                p.push(ProblemKind::RecordHeader, Some(x), plain(&err));
                continue;
            }
            let Some(xf) = examine_record(x, &xb, geo, p) else { continue };
            if xf.is_extension() {
                exts.push(ExtInfo { record: x, sequence: xf.sequence, base: xf.base, attrs: xf.attrs.iter().map(AttrKey::of).collect() });
                files.push(xf);
            }
        }
        list = Some(ListInfo { record: b, sequence: base.sequence, entries, attrs: base.attrs.iter().map(AttrKey::of).collect() });
    }
    exts.sort_by_key(|x| x.record);
    let seqs: HashMap<u64, u16> = files.iter().map(|f| (f.number, f.sequence)).collect();
    let status = |x: u64| match seqs.get(&x) {
        Some(s) => RecStatus { live: true, extension: x != b, sequence: *s },
        None => RecStatus { live: false, extension: false, sequence: 0 },
    };
    if let Some(list) = &list {
        cross_check_list(list, &exts, &status, geo, p);
    }
    let base_status = RecStatus { live: true, extension: false, sequence: base.sequence };
    for ext in &exts {
        check_extension(ext, list.as_ref(), base_status, p);
    }
    // Link count and names' parents.
    let names: Vec<&FileNameKey> = files.iter().flat_map(|f| f.names.iter()).collect();
    stats.file_names += names.len() as u64;
    if names.len() != base.link_count as usize {
        p.push(ProblemKind::LinkCount, r, format!("record {b}: link count {} but {} $FILE_NAME attributes", base.link_count, names.len()));
    }
    for k in &names {
        let parent = k.parent;
        let ok = match vol.read_record(parent.record) {
            Ok(pr) => pr.in_use() && pr.sequence() == parent.sequence && pr.is_directory() && pr.base_ref().record == 0,
            Err(NtfsError::Io { what, source }) => return Err(NtfsError::Io { what, source }),
            Err(_) => false,
        };
        if !ok {
            p.push(
                ProblemKind::NameParent,
                r,
                format!(
                    "record {b}: name \"{}\" names parent record {} (sequence {}), which is not a directory in use with that sequence",
                    k.name_string(),
                    parent.record,
                    parent.sequence
                ),
            );
        }
    }
    // Directory flag.
    let has_i30 = match &list {
        Some(l) => l.entries.iter().any(|e| e.type_code == ATTR_INDEX_ROOT && e.name == I30),
        None => base.has_i30_root(),
    };
    let dir_flag = base.flags & FLAG_DIRECTORY != 0;
    if dir_flag != has_i30 {
        p.push(
            ProblemKind::DirectoryFlag,
            r,
            if dir_flag {
                format!("record {b} has the directory flag but no $I30 index")
            } else {
                format!("record {b} has an $I30 index but not the directory flag")
            },
        );
    }
    if has_i30 {
        stats.directories += 1;
    }
    // Runs: inside the volume, not overlapping each other, marked in $Bitmap.
    let mut claims: Vec<(u64, u64, u64, String)> = Vec::new();
    for f in &files {
        for a in f.attrs.iter().filter(|a| a.non_resident) {
            let mut scratch = Bits::new(0);
            let mut none = Vec::new();
            claim_runs(&mut scratch, f.number, a, geo, p, &mut none);
            for run in &a.runs {
                if let Some(lcn) = run.lcn {
                    claims.push((lcn, run.length, f.number, a.describe()));
                }
            }
        }
    }
    claims.sort();
    for w in claims.windows(2) {
        let (a, b2) = (&w[0], &w[1]);
        if b2.0 < a.0 + a.1 {
            p.push(
                ProblemKind::ClusterDoubleUse,
                Some(b2.2),
                format!(
                    "clusters {}..{} are claimed by record {} ({}) and record {} ({})",
                    b2.0,
                    (a.0 + a.1).min(b2.0 + b2.1),
                    a.2,
                    a.3,
                    b2.2,
                    b2.3
                ),
            );
        }
    }
    if let Some(bm) = cluster_bitmap {
        for (lcn, len, rec, attr) in &claims {
            cluster_bits(vol, bm, *lcn, *len, ClusterState::Used, Some((*rec, attr)), p)?;
        }
    }
    Ok(())
}

/// Stage 2 on one directory: its `$I30` tree (root, blocks, `$BITMAP`, depth, order), every entry
/// against the record it names, and every name of those records that has this directory as
/// parent indexed exactly once.
pub fn check_directory<R: ReadAt>(vol: &Volume<R>, dir_record: u64) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let mut stats = CheckStats::default();
    let what = format!("directory {dir_record}");
    let base = vol.read_record(dir_record)?;
    if !base.in_use() || base.base_ref().record != 0 {
        return Err(NtfsError::Corrupt(format!("record {dir_record} is not a base record in use")));
    }
    let geo = geometry(vol);
    let Some(tree) = check_tree(vol, &base, "$I30", &what, &mut p)? else {
        return Err(NtfsError::Corrupt(format!("record {dir_record} is not a directory (no $I30 index)")));
    };
    stats.directories = 1;
    stats.index_entries = tree.entries.len() as u64;
    stats.index_blocks = tree.blocks;
    let dir = FileRef { record: dir_record, sequence: base.sequence() };
    // The records the entries name, read once each.
    let mut status_of: HashMap<u64, RecStatus> = HashMap::new();
    let mut names = NameTable::default();
    let mut quiet = Problems::default();
    for e in &tree.entries {
        let t = e.file_ref.record;
        if status_of.contains_key(&t) {
            continue;
        }
        let st = match vol.read_record_raw(t) {
            Err(NtfsError::Io { what, source }) => return Err(NtfsError::Io { what, source }),
            Err(_) => RecStatus { live: false, extension: false, sequence: 0 },
            Ok(raw) => {
                let mut b = raw;
                let in_use = &b[0..4] == b"FILE" && u16_at(&b, 0x16).unwrap_or(0) & FLAG_IN_USE != 0;
                let seq = u16_at(&b, 0x10).unwrap_or(0);
                let ext = u64_at(&b, 0x20).unwrap_or(0) != 0;
                if in_use && !ext && crate::fixup::apply_read(&mut b, "").is_ok() {
                    if let Some(f) = examine_record(t, &b, &geo, &mut quiet) {
                        let me = FileRef { record: t, sequence: f.sequence };
                        let rec = FileRecord { number: t, bytes: b };
                        let all = soft(vol.records_of(&rec), &mut p, ProblemKind::AttributeList, Some(t), &format!("record {t}"))?;
                        for r in all.unwrap_or_default() {
                            let Ok(attrs) = r.attributes() else { continue };
                            for a in attrs.iter().filter(|a| a.type_code == crate::record::ATTR_FILE_NAME && !a.non_resident) {
                                if let Ok(k) = a.resident_value().and_then(FileNameKey::parse) {
                                    if k.parent.record == dir_record {
                                        names.add(me, &k);
                                    }
                                }
                            }
                        }
                    }
                }
                RecStatus { live: in_use, extension: ext, sequence: seq }
            }
        };
        status_of.insert(t, st);
    }
    names.sort();
    let status = |r: u64| status_of.get(&r).copied().unwrap_or(RecStatus { live: false, extension: false, sequence: 0 });
    for e in &tree.entries {
        match_entry(dir, e, &what, &status, &mut names, &mut p);
    }
    if tree.complete {
        let complete = |r: FileRef| r == dir;
        let mut name_of = |c: u64, par: u64, ns: u8, h: u64| find_name(vol, c, par, ns, h);
        report_unmatched_names(&names, &complete, &mut name_of, &mut p);
    }
    stats.file_names = names.names.len() as u64;
    Ok(p.into_report(stats, None))
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
