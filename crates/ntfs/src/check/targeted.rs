//! Targeted checks, for the structures an edit touched: they read only those records, index
//! trees and bitmap bytes, so the fix step can verify its patched view cheaply.

use super::bits::{push_range, Bits};
use super::crossref::{
    check_extension, cross_check_list, find_name, match_entry, report_unmatched_names, AttrKey,
    ExtInfo, ListInfo, RecStatus,
};
use super::names::NameTable;
use super::record::{examine_record, Geometry, RecordFacts, I30};
use super::tree::check_tree;
use super::{
    attr_value, claim_runs, clusters, clusters_are, geometry, plain, reserved_record, soft,
    value_len, CheckReport, CheckStats, ProblemKind, Problems,
};
use crate::bytes::{u16_at, u64_at};
use crate::layout::{file_record, object_id_data, reparse_key, Namespace};
use crate::volume::{parse_attribute_list, AttrValue, RECORD_BITMAP};
use crate::{
    AttributeType, FileNameKey, FileRecord, FileRef, Location, NtfsError, Structure, Volume,
};
use kaifuku_io::ReadAt;
use serde::Serialize;
use std::collections::HashMap;

// ---------------------------------------------------------------------------------------------
// Targeted checks, for the structures an edit touched.

/// Reads bits `first .. first+count` of a bitmap attribute value.
fn read_bits<R: ReadAt>(
    vol: &Volume<R>,
    v: &AttrValue,
    first: u64,
    count: u64,
) -> Result<Vec<bool>, NtfsError> {
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
    vol.value(&rec0, AttributeType::Bitmap, "")?
        .ok_or_else(|| NtfsError::damaged(Structure::MftBitmap, "$MFT has no $BITMAP attribute"))
}

fn volume_bitmap_value<R: ReadAt>(vol: &Volume<R>) -> Result<AttrValue, NtfsError> {
    let rec = vol.read_record(RECORD_BITMAP)?;
    vol.value(&rec, AttributeType::Data, "")?
        .ok_or_else(|| NtfsError::damaged(Structure::Bitmap, "$Bitmap has no data"))
}

/// IN_USE ⇔ `$MFT:$BITMAP` for the given records.
pub fn check_mft_bits<R: ReadAt>(
    vol: &Volume<R>,
    records: &[u64],
) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let Some(bitmap) = soft(
        mft_bitmap_value(vol),
        &mut p,
        ProblemKind::Unreadable,
        Some(0),
        "$MFT:$BITMAP",
    )?
    else {
        return Ok(p.into_report(CheckStats::default(), None));
    };
    for &n in records {
        mft_bit_of(vol, &bitmap, n, &mut p)?;
    }
    Ok(p.into_report(CheckStats::default(), None))
}

/// Checks record `n`'s `$MFT:$BITMAP` bit against its IN_USE flag; returns the raw record when it
/// is in use.
fn mft_bit_of<R: ReadAt>(
    vol: &Volume<R>,
    bitmap: &AttrValue,
    n: u64,
    p: &mut Problems,
) -> Result<Option<Vec<u8>>, NtfsError> {
    let Some(raw) = soft(
        vol.read_record_raw(n),
        p,
        ProblemKind::Unreadable,
        Some(n),
        &format!("record {n}"),
    )?
    else {
        return Ok(None);
    };
    let bit = soft(
        read_bits(vol, bitmap, n, 1),
        p,
        ProblemKind::Unreadable,
        Some(0),
        "$MFT:$BITMAP",
    )?
    .is_some_and(|b| b[0]);
    let in_use = file_record::is_in_use(&raw);
    if in_use && !bit {
        p.push(
            ProblemKind::MftBitmapMissing,
            Some(n),
            format!("record {n} is in use but its $MFT:$BITMAP bit is clear"),
        );
    } else if !in_use && bit && !reserved_record(n) {
        p.push(
            ProblemKind::MftBitmapStale,
            Some(n),
            format!("record {n} is not in use but $MFT:$BITMAP marks it in use"),
        );
    }
    Ok(in_use.then_some(raw))
}

/// Whether clusters are expected in use or free in `$Bitmap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    /// The clusters belong to a file: their bits must be set.
    Used,
    /// The clusters were freed: their bits must be clear.
    Free,
}

/// Checks that the `$Bitmap` bits of the given cluster ranges `(lcn, count)` are all `expect`
/// (after a delete: the freed clusters are free).
pub fn check_cluster_bits<R: ReadAt>(
    vol: &Volume<R>,
    ranges: &[(u64, u64)],
    expect: ClusterState,
) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    if let Some(bitmap) = soft(
        volume_bitmap_value(vol),
        &mut p,
        ProblemKind::Unreadable,
        Some(RECORD_BITMAP),
        "$Bitmap",
    )? {
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
    let Some(bits) = soft(
        read_bits(vol, bitmap, lcn, len),
        p,
        ProblemKind::Unreadable,
        Some(RECORD_BITMAP),
        "$Bitmap",
    )?
    else {
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
            let who = owner
                .map(|(r, a)| format!(" (used by record {r}, {a})"))
                .unwrap_or_default();
            (
                ProblemKind::BitmapMissing,
                format!("$Bitmap: {} free but in use{who}", clusters_are(s, l)),
            )
        } else {
            (
                ProblemKind::BitmapStale,
                format!(
                    "$Bitmap: {} marked in use but expected free",
                    clusters_are(s, l)
                ),
            )
        };
        p.push(kind, owner.map(|o| o.0), text);
    }
    Ok(())
}

/// Stage 1 for the given records and the files they belong to: header and attributes, the
/// `$MFT:$BITMAP` bit, link count, directory flag, attribute list against extension records, runs
/// inside the volume and marked in `$Bitmap`, no cluster used twice within the file, and each
/// name's parent a live directory. Whether each name is indexed is [`check_directory`]'s part.
pub fn check_records<R: ReadAt>(
    vol: &Volume<R>,
    records: &[u64],
) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let geo = geometry(vol);
    let mut stats = CheckStats::default();
    let Some(mft_bitmap) = soft(
        mft_bitmap_value(vol),
        &mut p,
        ProblemKind::Unreadable,
        Some(0),
        "$MFT:$BITMAP",
    )?
    else {
        return Ok(p.into_report(stats, None));
    };
    let cluster_bitmap = soft(
        volume_bitmap_value(vol),
        &mut p,
        ProblemKind::Unreadable,
        Some(RECORD_BITMAP),
        "$Bitmap",
    )?;
    let mut done: Vec<u64> = Vec::new();
    let mut reported: Vec<u64> = Vec::new();
    for &n in records {
        let f = match read_checked(vol, &mft_bitmap, n, &geo, &mut p, &mut reported)? {
            Checked::Free => continue,
            Checked::Damaged => {
                stats.records_in_use += 1;
                continue;
            }
            Checked::Ok(f) => f,
        };
        stats.records_in_use += 1;
        // Work on the whole file: its base record and every extension record.
        let base_no = if f.is_extension() { f.base.record } else { n };
        if done.contains(&base_no) {
            continue;
        }
        done.push(base_no);
        check_file(
            vol,
            base_no,
            &mft_bitmap,
            cluster_bitmap.as_ref(),
            &geo,
            &mut p,
            &mut stats,
            &mut reported,
        )?;
    }
    Ok(p.into_report(stats, None))
}

/// What reading one record for a targeted check gave.
enum Checked {
    Free,
    Damaged,
    Ok(RecordFacts),
}

/// Reads record `x` and checks its `$MFT:$BITMAP` bit, fixups and layout. Problems go to `p`
/// the first time a record is read in this check, so a record reached twice (as given and as
/// part of its file) is reported once.
fn read_checked<R: ReadAt>(
    vol: &Volume<R>,
    mft_bitmap: &AttrValue,
    x: u64,
    geo: &Geometry,
    p: &mut Problems,
    reported: &mut Vec<u64>,
) -> Result<Checked, NtfsError> {
    let mut quiet = Problems::default();
    let first = !reported.contains(&x);
    let sink: &mut Problems = if first {
        reported.push(x);
        p
    } else {
        &mut quiet
    };
    let Some(mut b) = mft_bit_of(vol, mft_bitmap, x, sink)? else {
        return Ok(Checked::Free);
    };
    if let Err(e) = crate::fixup::apply_read(&mut b, &format!("record {x}")) {
        sink.push(ProblemKind::RecordHeader, Some(x), plain(&e));
        return Ok(Checked::Damaged);
    }
    Ok(match examine_record(x, &b, geo, sink) {
        Some(f) => Checked::Ok(f),
        None => Checked::Damaged,
    })
}

/// Stage 1 on one file (base record `b` and its extension records).
#[allow(clippy::too_many_arguments)]
fn check_file<R: ReadAt>(
    vol: &Volume<R>,
    b: u64,
    mft_bitmap: &AttrValue,
    cluster_bitmap: Option<&AttrValue>,
    geo: &Geometry,
    p: &mut Problems,
    stats: &mut CheckStats,
    reported: &mut Vec<u64>,
) -> Result<(), NtfsError> {
    let r = Some(b);
    let base = match read_checked(vol, mft_bitmap, b, geo, p, reported)? {
        Checked::Free => {
            p.push(
                ProblemKind::AttributeList,
                r,
                format!("record {b} is the base of a record checked but is not in use"),
            );
            return Ok(());
        }
        Checked::Damaged => return Ok(()),
        Checked::Ok(f) => f,
    };
    if base.is_extension() {
        p.push(
            ProblemKind::AttributeList,
            r,
            format!(
                "record {b} is named as a base record but is itself an extension of {}",
                base.base.record
            ),
        );
        return Ok(());
    }
    let mut files: Vec<RecordFacts> = vec![base.clone()];
    let mut exts: Vec<ExtInfo> = Vec::new();
    let mut list = None;
    if let Some(a) = base
        .attrs
        .iter()
        .find(|a| a.type_code == AttributeType::AttributeList.code())
    {
        let v = soft(
            attr_value(vol, a, 64 << 20),
            p,
            ProblemKind::AttributeList,
            r,
            &format!("record {b}: $ATTRIBUTE_LIST"),
        )?
        .flatten();
        let entries = match v.map(|v| parse_attribute_list(&v)) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                p.push(
                    ProblemKind::AttributeList,
                    r,
                    format!("record {b}: $ATTRIBUTE_LIST: {}", plain(&e)),
                );
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
            let Checked::Ok(xf) = read_checked(vol, mft_bitmap, x, geo, p, reported)? else {
                continue;
            };
            if xf.is_extension() {
                exts.push(ExtInfo {
                    record: x,
                    sequence: xf.sequence,
                    base: xf.base,
                    attrs: xf.attrs.iter().map(AttrKey::of).collect(),
                });
                files.push(xf);
            }
        }
        list = Some(ListInfo {
            record: b,
            sequence: base.sequence,
            entries,
            attrs: base.attrs.iter().map(AttrKey::of).collect(),
        });
    }
    exts.sort_by_key(|x| x.record);
    let seqs: HashMap<u64, u16> = files.iter().map(|f| (f.number, f.sequence)).collect();
    let status = |x: u64| match seqs.get(&x) {
        Some(s) => RecStatus {
            damaged: false,
            live: true,
            extension: x != b,
            sequence: *s,
        },
        None => RecStatus {
            damaged: false,
            live: false,
            extension: false,
            sequence: 0,
        },
    };
    if let Some(list) = &list {
        cross_check_list(list, &exts, &status, geo, p);
    }
    let base_status = RecStatus {
        damaged: false,
        live: true,
        extension: false,
        sequence: base.sequence,
    };
    for ext in &exts {
        check_extension(ext, list.as_ref(), base_status, p);
    }
    // Link count and names' parents.
    let names: Vec<&FileNameKey> = files.iter().flat_map(|f| f.names.iter()).collect();
    stats.file_names += names.len() as u64;
    if names.len() != base.link_count as usize {
        p.push(
            ProblemKind::LinkCount,
            r,
            format!(
                "record {b}: link count {} but {} $FILE_NAME attributes",
                base.link_count,
                names.len()
            ),
        );
    }
    for k in &names {
        let parent = k.parent;
        let ok = match vol.read_record(parent.record) {
            Ok(pr) => {
                pr.in_use()
                    && pr.sequence() == parent.sequence
                    && pr.is_directory()
                    && pr.base_ref().record == 0
            }
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
        Some(l) => l
            .entries
            .iter()
            .any(|e| e.type_code == AttributeType::IndexRoot.code() && e.name == I30),
        None => base.has_i30_root(),
    };
    let dir_flag = base.flags & file_record::FLAG_DIRECTORY != 0;
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
                    "{} claimed by record {} ({}) and record {} ({})",
                    clusters(b2.0, (a.0 + a.1).min(b2.0 + b2.1) - b2.0),
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
            cluster_bits(
                vol,
                bm,
                *lcn,
                *len,
                ClusterState::Used,
                Some((*rec, attr)),
                p,
            )?;
        }
    }
    Ok(())
}

/// Stage 2 on one directory: its `$I30` tree (root, blocks, `$BITMAP`, depth, order), every entry
/// against the record it names, and every name of those records that has this directory as
/// parent indexed exactly once.
pub fn check_directory<R: ReadAt>(
    vol: &Volume<R>,
    dir_record: u64,
) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let mut stats = CheckStats::default();
    let what = format!("directory {dir_record}");
    let base = vol.read_record(dir_record)?;
    if !base.in_use() || base.base_ref().record != 0 {
        return Err(NtfsError::damaged_at(
            Structure::Directory,
            Location::MftRecord { record: dir_record },
            format!("record {dir_record} is not a base record in use"),
        ));
    }
    let geo = geometry(vol);
    let Some(tree) = check_tree(vol, &base, "$I30", &what, &mut p)? else {
        return Err(NtfsError::damaged_at(
            Structure::Directory,
            Location::MftRecord { record: dir_record },
            format!("record {dir_record} is not a directory (no $I30 index)"),
        ));
    };
    stats.directories = 1;
    stats.index_entries = tree.entries.len() as u64;
    stats.index_blocks = tree.blocks;
    let dir = FileRef {
        record: dir_record,
        sequence: base.sequence(),
    };
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
            Err(_) => RecStatus {
                damaged: false,
                live: false,
                extension: false,
                sequence: 0,
            },
            Ok(raw) => {
                let mut b = raw;
                let in_use = file_record::is_in_use(&b);
                let seq = u16_at(&b, file_record::SEQUENCE).unwrap_or(0);
                let ext = u64_at(&b, file_record::BASE_RECORD).unwrap_or(0) != 0;
                let mut damaged = false;
                if in_use && !ext {
                    if let Err(e) = crate::fixup::apply_read(&mut b, &format!("record {t}")) {
                        p.push(ProblemKind::RecordHeader, Some(t), plain(&e));
                        damaged = true;
                    }
                }
                if in_use && !ext && !damaged {
                    let facts = examine_record(t, &b, &geo, &mut quiet);
                    damaged = facts.is_none();
                    if let Some(f) = facts {
                        let me = FileRef {
                            record: t,
                            sequence: f.sequence,
                        };
                        let rec = FileRecord {
                            number: t,
                            bytes: b,
                        };
                        let all = soft(
                            vol.records_of(&rec),
                            &mut p,
                            ProblemKind::AttributeList,
                            Some(t),
                            &format!("record {t}"),
                        )?;
                        for r in all.unwrap_or_default() {
                            let Ok(attrs) = r.attributes() else { continue };
                            for a in attrs.iter().filter(|a| {
                                a.type_code == AttributeType::FileName.code() && !a.non_resident
                            }) {
                                if let Ok(k) = a.resident_value().and_then(FileNameKey::parse) {
                                    if k.parent.record == dir_record {
                                        names.add(me, &k);
                                    }
                                }
                            }
                        }
                    }
                }
                RecStatus {
                    damaged,
                    live: in_use,
                    extension: ext,
                    sequence: seq,
                }
            }
        };
        status_of.insert(t, st);
    }
    names.sort();
    let status = |r: u64| {
        status_of.get(&r).copied().unwrap_or(RecStatus {
            damaged: false,
            live: false,
            extension: false,
            sequence: 0,
        })
    };
    for e in &tree.entries {
        match_entry(dir, e, &what, &status, &mut names, &mut p);
    }
    if tree.complete {
        let complete = |r: FileRef| r == dir;
        let mut name_of = |c: u64, par: u64, ns: Namespace, h: u64| find_name(vol, c, par, ns, h);
        report_unmatched_names(&names, &complete, &mut name_of, &mut p);
    }
    stats.file_names = names.names.len() as u64;
    Ok(p.into_report(stats, None))
}

/// The structure of one directory's `$I30` tree alone (root, blocks, fixups, `$BITMAP`, depth,
/// order, no loops or shared children), without reading the records its entries name: cheap
/// enough for every directory a path walk passes through.
pub fn check_directory_index<R: ReadAt>(
    vol: &Volume<R>,
    dir_record: u64,
) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let base = vol.read_record(dir_record)?;
    let what = format!("directory {dir_record}");
    if check_tree(vol, &base, "$I30", &what, &mut p)?.is_none() {
        p.push(
            ProblemKind::IndexRoot,
            Some(dir_record),
            format!("record {dir_record} is not a directory (no $I30 index)"),
        );
    }
    Ok(p.into_report(CheckStats::default(), None))
}

/// Record number of `$Extend`, for messages about the files in it.
const RECORD_EXTEND: u64 = 11;

/// A view index in `$Extend` that holds a key per file: the delete removes the target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SideIndex {
    /// `$Extend\$ObjId:$O`: object id → file.
    ObjectIds,
    /// `$Extend\$Reparse:$R`: (reparse tag, file) → nothing.
    ReparsePoints,
}

impl SideIndex {
    /// Both side indexes.
    pub const ALL: [SideIndex; 2] = [SideIndex::ObjectIds, SideIndex::ReparsePoints];

    /// The file holding the index, under `$Extend`.
    pub fn file(self) -> &'static str {
        match self {
            SideIndex::ObjectIds => "$ObjId",
            SideIndex::ReparsePoints => "$Reparse",
        }
    }

    /// The index's name.
    pub fn index(self) -> &'static str {
        match self {
            SideIndex::ObjectIds => "$O",
            SideIndex::ReparsePoints => "$R",
        }
    }

    /// How the delete's outcome and messages name it: `$Extend\$ObjId:$O`.
    pub fn label(self) -> String {
        format!("$Extend\\{}:{}", self.file(), self.index())
    }

    fn problem_kind(self) -> ProblemKind {
        match self {
            SideIndex::ObjectIds => ProblemKind::ObjectIdIndex,
            SideIndex::ReparsePoints => ProblemKind::ReparseIndex,
        }
    }

    /// The file an entry refers to: in the data of an `$O` entry, in the key of an `$R` entry.
    fn referent(self, key: &[u8], data: &[u8]) -> Option<FileRef> {
        let raw = match self {
            SideIndex::ObjectIds => (key.len() == object_id_data::ID_LENGTH)
                .then(|| u64_at(data, object_id_data::FILE_REF).ok())
                .flatten(),
            SideIndex::ReparsePoints => (key.len() >= reparse_key::LENGTH)
                .then(|| u64_at(key, reparse_key::FILE_REF).ok())
                .flatten(),
        };
        raw.map(FileRef::from_u64)
    }
}

/// Stage 2 on side indexes a delete removed keys from: each is read from scratch (root, blocks,
/// `$BITMAP`, order, as for a directory) and no entry may still refer to one of the `freed`
/// records, whatever sequence number it carries. Whether the other entries match the files that
/// carry them is [`check_volume`](super::check_volume)'s part: that needs every record.
pub fn check_side_indexes<R: ReadAt>(
    vol: &Volume<R>,
    indexes: &[SideIndex],
    freed: &[u64],
) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let mut stats = CheckStats::default();
    for &side in indexes {
        let path = format!("\\$Extend\\{}", side.file());
        let kind = side.problem_kind();
        let found = soft(
            vol.lookup_path(&path),
            &mut p,
            ProblemKind::Unreadable,
            Some(RECORD_EXTEND),
            &path,
        )?
        .flatten();
        let Some((_, rec)) = found else {
            p.push(kind, None, format!("{path} does not exist"));
            continue;
        };
        let what = format!("{}:{} (record {})", side.file(), side.index(), rec.number);
        let Some(tree) = check_tree(vol, &rec, side.index(), &what, &mut p)? else {
            p.push(
                kind,
                Some(rec.number),
                format!("{path} has no {} index", side.index()),
            );
            continue;
        };
        stats.index_entries += tree.entries.len() as u64;
        stats.index_blocks += tree.blocks;
        for e in &tree.entries {
            match side.referent(&e.key, &e.data) {
                None => p.push(
                    kind,
                    Some(rec.number),
                    format!(
                        "{what}: an entry has a {}-byte key and {}-byte data",
                        e.key.len(),
                        e.data.len()
                    ),
                ),
                Some(f) if freed.contains(&f.record) => p.push(
                    kind,
                    Some(rec.number),
                    format!(
                        "{what}: an entry still refers to record {} (sequence {}), which the delete freed",
                        f.record, f.sequence
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    Ok(p.into_report(stats, None))
}
