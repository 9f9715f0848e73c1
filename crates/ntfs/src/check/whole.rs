//! The whole-volume check: every record streamed from `$MFT` in chunks (stage 1), every
//! directory index (stage 2), the view indexes and the volume files.

use super::bits::{push_range, Bits};
use super::crossref::{
    check_extension, cross_check_list, find_name, match_entry, report_unmatched_names, AttrKey,
    ExtInfo, ListInfo, RecStatus,
};
use super::names::NameTable;
use super::record::{describe_attr, examine_record, Geometry, RecordFacts, I30};
use super::tree::check_tree;
use super::{
    attr_value, claim_runs, clusters_are, geometry, owners_text, plain, reserved_record, soft,
    value_len, CheckReport, CheckStats, Claim, ProblemKind, Problems, VolumeState, BITMAP_CHUNK,
    CHUNK_RECORDS, MAX_PER_KIND,
};
use crate::bytes::{u16_at, u32_at, u64_at};
use crate::layout::Namespace;
use crate::layout::{file_record, object_id_data, reparse_key, reparse_point, volume_information};
use crate::logfile::log_state;
use crate::volume::{
    parse_attribute_list, AttrValue, RECORD_BITMAP, RECORD_LOGFILE, RECORD_VOLUME,
};
use crate::{AttributeType, FileRecord, FileRef, LogState, NtfsError, Volume};
use kaifuku_io::ReadAt;
use std::collections::HashMap;

/// Per-record state bits of the whole-volume scan.
const LIVE: u8 = 1;
const EXT: u8 = 2;
const DIR: u8 = 4;
/// In use, but its header or attributes could not be read.
const BAD: u8 = 8;

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
    object_ids: Vec<([u8; object_id_data::ID_LENGTH], FileRef, u8)>,
    reparse: Vec<(u32, FileRef, u8)>,
    used: Bits,
    conflicts: Vec<Claim>,
}

fn rec_status(state: &[u8], seq: &[u16], r: u64) -> RecStatus {
    match state.get(r as usize) {
        Some(s) => RecStatus {
            damaged: s & BAD != 0,
            live: s & LIVE != 0,
            extension: s & EXT != 0,
            sequence: seq[r as usize],
        },
        None => RecStatus {
            damaged: false,
            live: false,
            extension: false,
            sequence: 0,
        },
    }
}

impl Scan {
    fn status(&self, r: u64) -> RecStatus {
        rec_status(&self.state, &self.seq, r)
    }

    fn is_live_dir(&self, r: FileRef) -> bool {
        let s = self.status(r.record);
        s.live
            && !s.extension
            && self.state[r.record as usize] & DIR != 0
            && s.sequence == r.sequence
    }
}

/// The in-use records whose runs cover some cluster of `ranges`, per range (a second, rare pass
/// to name the files involved in double use or in bitmap holes).
fn owners_of<R: ReadAt>(
    vol: &Volume<R>,
    ranges: &[(u64, u64)],
) -> Result<Vec<Vec<(u64, String)>>, NtfsError> {
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
            if !file_record::is_in_use(&b) {
                continue;
            }
            if crate::fixup::apply_read(&mut b, "").is_err() {
                continue;
            }
            let Ok(rec) = FileRecord::parse(n + i, b) else {
                continue;
            };
            let Ok(attrs) = rec.attributes() else {
                continue;
            };
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

/// Checks the whole volume. Problems go into the report; `Err` only when the image cannot be read.
pub fn check_volume<R: ReadAt>(vol: &Volume<R>) -> Result<CheckReport, NtfsError> {
    let mut p = Problems::default();
    let geo = geometry(vol);
    let records = vol.record_count();
    let rs = geo.record_size as u64;
    let mut stats = CheckStats {
        records_total: records,
        clusters_total: geo.total_clusters,
        ..Default::default()
    };

    // $MFT:$BITMAP, whole (one bit per record).
    let rec0 = soft(
        vol.read_record(0),
        &mut p,
        ProblemKind::Unreadable,
        Some(0),
        "$MFT record 0",
    )?;
    let mft_bitmap = match &rec0 {
        Some(r) => match soft(
            vol.value(r, AttributeType::Bitmap, ""),
            &mut p,
            ProblemKind::Unreadable,
            Some(0),
            "$MFT:$BITMAP",
        )? {
            Some(Some(v)) => soft(
                vol.read_value(&v, 0, value_len(&v) as usize),
                &mut p,
                ProblemKind::Unreadable,
                Some(0),
                "$MFT:$BITMAP",
            )?,
            Some(None) => {
                p.push(
                    ProblemKind::Unreadable,
                    Some(0),
                    "$MFT has no $BITMAP attribute".into(),
                );
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
            format!(
                "$MFT:$BITMAP has {} bits for the {records} records of $MFT",
                mft_bits.len()
            ),
        );
    }
    let mut beyond = Vec::new();
    for i in records..mft_bits.len() {
        if mft_bits.get(i) {
            push_range(&mut beyond, i, 1);
        }
    }
    for (s, l) in beyond {
        p.push(ProblemKind::MftBitmapStale, Some(0), format!("$MFT:$BITMAP marks records {s}-{} in use, past the end of $MFT ({records} records)", s + l - 1));
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
            stage1_record(
                vol,
                n + i,
                raw,
                mft_bits.get(n + i),
                &geo,
                &mut scan,
                &mut p,
                &mut stats,
            )?;
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
                format!(
                    "record {r}: link count {} but {} $FILE_NAME attributes",
                    scan.link[r as usize], scan.name_count[r as usize]
                ),
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
            let shown = find_name(
                vol,
                name.child.record,
                name.parent.record,
                name.namespace,
                name.hash,
            )
            .unwrap_or_default();
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
            check_extension(
                ext,
                by_base.get(&ext.base.record).copied(),
                scan.status(ext.base.record),
                &mut p,
            );
        }
    }
    if !scan.conflicts.is_empty() {
        let ranges: Vec<(u64, u64)> = scan
            .conflicts
            .iter()
            .take(MAX_PER_KIND as usize)
            .map(|c| (c.lcn, c.len))
            .collect();
        let owners = owners_of(vol, &ranges)?;
        for (c, o) in scan
            .conflicts
            .iter()
            .zip(owners.iter().map(Some).chain(std::iter::repeat(None)))
        {
            // Everyone using the range, or at least the claim that collided.
            let users = match o {
                Some(o) if o.len() > 1 => owners_text(o),
                _ => format!("record {} ({}) and another attribute", c.record, c.attr),
            };
            p.push(
                ProblemKind::ClusterDoubleUse,
                Some(c.record),
                format!("{} used twice, by {users}", clusters_are(c.lcn, c.len)),
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
        let Some(base) = soft(
            vol.read_record(d),
            &mut p,
            ProblemKind::Unreadable,
            Some(d),
            &what,
        )?
        else {
            continue;
        };
        let Some(tree) = check_tree(vol, &base, "$I30", &what, &mut p)? else {
            continue;
        };
        stats.directories += 1;
        stats.index_entries += tree.entries.len() as u64;
        stats.index_blocks += tree.blocks;
        if tree.complete {
            complete.set(d);
        }
        let dir = FileRef {
            record: d,
            sequence: scan.seq[d as usize],
        };
        let status = |r: u64| rec_status(&scan.state, &scan.seq, r);
        for e in &tree.entries {
            match_entry(dir, e, &what, &status, &mut scan.names, &mut p);
        }
    }
    {
        let complete_fn = |r: FileRef| scan.is_live_dir(r) && complete.get(r.record);
        let mut name_of = |c: u64, par: u64, ns: Namespace, h: u64| find_name(vol, c, par, ns, h);
        report_unmatched_names(&scan.names, &complete_fn, &mut name_of, &mut p);
    }
    stats.object_ids = scan.object_ids.len() as u64;
    stats.reparse_points = scan.reparse.len() as u64;
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
    let is_file = file_record::has_signature(raw);
    let flags = u16_at(raw, file_record::FLAGS).unwrap_or(0);
    let in_use = is_file && flags & file_record::FLAG_IN_USE != 0;
    // The metafiles $MFT .. $Extend (records 0–11) exist on every NTFS volume.
    if !in_use && n < 12 {
        p.push(
            ProblemKind::RecordHeader,
            Some(n),
            format!(
                "record {n} is one of NTFS's own metafiles but is not in use: the volume is broken"
            ),
        );
    }
    if !in_use {
        if bit && !reserved_record(n) {
            let what = if is_file {
                "is not in use"
            } else {
                "holds no FILE record"
            };
            p.push(
                ProblemKind::MftBitmapStale,
                Some(n),
                format!("record {n} {what} but $MFT:$BITMAP marks it in use"),
            );
        }
        return Ok(());
    }
    stats.records_in_use += 1;
    if !bit {
        p.push(
            ProblemKind::MftBitmapMissing,
            Some(n),
            format!("record {n} is in use but its $MFT:$BITMAP bit is clear"),
        );
    }
    let mut b = raw.to_vec();
    if let Err(e) = crate::fixup::apply_read(&mut b, &format!("record {n}")) {
        p.push(ProblemKind::RecordHeader, Some(n), plain(&e));
        scan.state[n as usize] |= BAD;
        return Ok(());
    }
    let Some(f) = examine_record(n, &b, geo, p) else {
        scan.state[n as usize] |= BAD;
        return Ok(());
    };
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
    let owner = if ext {
        f.base
    } else {
        FileRef {
            record: n,
            sequence: f.sequence,
        }
    };
    if ext {
        scan.state[i] |= EXT;
        stats.extension_records += 1;
        if f.base.record >= scan.records {
            p.push(
                ProblemKind::AttributeList,
                Some(n),
                format!(
                    "record {n} names base record {}, beyond the end of $MFT",
                    f.base.record
                ),
            );
        }
    } else {
        scan.link[i] = f.link_count;
    }
    for a in &f.attrs {
        if a.non_resident {
            claim_runs(&mut scan.used, n, a, geo, p, &mut scan.conflicts);
        }
        match AttributeType::from_code(a.type_code) {
            Some(AttributeType::ObjectId) => {
                if let Some(v) = a
                    .value
                    .as_ref()
                    .filter(|v| v.len() >= object_id_data::ID_LENGTH)
                {
                    let mut g = [0u8; object_id_data::ID_LENGTH];
                    g.copy_from_slice(&v[..object_id_data::ID_LENGTH]);
                    scan.object_ids.push((g, owner, 0));
                }
            }
            Some(AttributeType::ReparsePoint) => {
                if let Some(v) = soft(
                    attr_value(vol, a, 4),
                    p,
                    ProblemKind::Unreadable,
                    Some(n),
                    &format!("record {n}: $REPARSE_POINT"),
                )?
                .flatten()
                {
                    if let Ok(tag) = u32_at(&v, reparse_point::TAG) {
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
        scan.exts.push(ExtInfo {
            record: n,
            sequence: f.sequence,
            base: f.base,
            attrs: f.attrs.iter().map(AttrKey::of).collect(),
        });
        return Ok(());
    }
    let has_i30 = match f
        .attrs
        .iter()
        .find(|a| a.type_code == AttributeType::AttributeList.code())
    {
        None => f.has_i30_root(),
        Some(a) => {
            let v = soft(
                attr_value(vol, a, 64 << 20),
                p,
                ProblemKind::AttributeList,
                Some(n),
                &format!("record {n}: $ATTRIBUTE_LIST"),
            )?
            .flatten();
            let entries = match v.map(|v| parse_attribute_list(&v)) {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    p.push(
                        ProblemKind::AttributeList,
                        Some(n),
                        format!("record {n}: $ATTRIBUTE_LIST: {}", plain(&e)),
                    );
                    Vec::new()
                }
                None => Vec::new(),
            };
            let has = entries
                .iter()
                .any(|e| e.type_code == AttributeType::IndexRoot.code() && e.name == I30);
            scan.lists.push(ListInfo {
                record: n,
                sequence: f.sequence,
                entries,
                attrs: f.attrs.iter().map(AttrKey::of).collect(),
            });
            has
        }
    };
    let dir_flag = f.flags & file_record::FLAG_DIRECTORY != 0;
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
    let Some(rec) = soft(
        vol.read_record(RECORD_BITMAP),
        p,
        ProblemKind::Unreadable,
        r,
        "$Bitmap",
    )?
    else {
        return Ok(());
    };
    let value = match soft(
        vol.value(&rec, AttributeType::Data, ""),
        p,
        ProblemKind::Unreadable,
        r,
        "$Bitmap",
    )? {
        Some(Some(v)) => v,
        Some(None) => {
            p.push(ProblemKind::Unreadable, r, "$Bitmap has no data".into());
            return Ok(());
        }
        None => return Ok(()),
    };
    let total = geo.total_clusters;
    let size = value_len(&value);
    // A damaged record may claim any size: saturate rather than overflow.
    let bits = size.saturating_mul(8);
    if bits < total {
        p.push(
            ProblemKind::BitmapMissing,
            r,
            format!("$Bitmap holds {bits} bits for the volume's {total} clusters"),
        );
    }
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    let mut marked = 0u64;
    let covered = bits.min(total);
    let mut byte = 0u64;
    while byte * 8 < covered {
        let len = BITMAP_CHUNK.min(size - byte);
        let Some(chunk) = soft(
            vol.read_value(&value, byte, len as usize),
            p,
            ProblemKind::Unreadable,
            r,
            "$Bitmap",
        )?
        else {
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
            // Bits past the last cluster (up to the 8-byte-rounded size of $Bitmap) are set by
            // convention: mkntfs and the Windows-made volumes both set them. Not judged.
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
    for (k, &(s, l)) in missing.iter().enumerate() {
        let o = owners.get(k);
        let who = o
            .map(|o| format!(" (used by {})", owners_text(o)))
            .unwrap_or_default();
        let record = o.and_then(|o| o.first()).map(|(r, _)| *r);
        p.push(
            ProblemKind::BitmapMissing,
            record,
            format!("$Bitmap: {} free but in use{who}", clusters_are(s, l)),
        );
    }
    for (s, l) in stale {
        p.push(
            ProblemKind::BitmapStale,
            r,
            format!(
                "$Bitmap: {} marked in use but no file uses them",
                clusters_are(s, l)
            ),
        );
    }
    Ok(())
}

/// `$ObjId:$O` and `$Reparse:$R` against the object IDs and reparse points of the live files.
fn check_view_indexes<R: ReadAt>(
    vol: &Volume<R>,
    scan: &mut Scan,
    p: &mut Problems,
) -> Result<(), NtfsError> {
    scan.object_ids
        .sort_by_key(|(g, f, _)| (*g, f.record, f.sequence));
    scan.reparse
        .sort_by_key(|(t, f, _)| (*t, f.record, f.sequence));
    for (file, index) in [("$ObjId", "$O"), ("$Reparse", "$R")] {
        let path = format!("\\$Extend\\{file}");
        let kind = if index == "$O" {
            ProblemKind::ObjectIdIndex
        } else {
            ProblemKind::ReparseIndex
        };
        let found = soft(
            vol.lookup_path(&path),
            p,
            ProblemKind::Unreadable,
            Some(11),
            &path,
        )?
        .flatten();
        let wanted = if index == "$O" {
            scan.object_ids.len()
        } else {
            scan.reparse.len()
        };
        let Some((_, rec)) = found else {
            if wanted > 0 {
                p.push(
                    kind,
                    None,
                    format!(
                        "{wanted} files carry {} but {path} does not exist",
                        if index == "$O" {
                            "object IDs"
                        } else {
                            "reparse points"
                        }
                    ),
                );
            }
            continue;
        };
        let what = format!("{file}:{index} (record {})", rec.number);
        let Some(tree) = check_tree(vol, &rec, index, &what, p)? else {
            p.push(
                kind,
                Some(rec.number),
                format!("{path} has no {index} index"),
            );
            continue;
        };
        let r = Some(rec.number);
        let status = |x: u64| rec_status(&scan.state, &scan.seq, x);
        for e in &tree.entries {
            if index == "$O" {
                if e.key.len() != object_id_data::ID_LENGTH || e.data.len() < 8 {
                    p.push(
                        kind,
                        r,
                        format!(
                            "{what}: an entry has a {}-byte key and {}-byte data",
                            e.key.len(),
                            e.data.len()
                        ),
                    );
                    continue;
                }
                let target =
                    FileRef::from_u64(u64_at(&e.data, object_id_data::FILE_REF).unwrap_or(0));
                let guid: String = e.key.iter().map(|b| format!("{b:02x}")).collect();
                let s = status(target.record);
                if s.damaged {
                    continue;
                }
                if !s.live || s.extension || s.sequence != target.sequence {
                    p.push(kind, r, format!("{what}: object ID {guid} points at record {} (sequence {}), not a live file", target.record, target.sequence));
                    continue;
                }
                match scan
                    .object_ids
                    .iter_mut()
                    .find(|(g, f, _)| g[..] == e.key[..] && *f == target)
                {
                    Some(x) => x.2 = x.2.saturating_add(1),
                    None => p.push(
                        kind,
                        r,
                        format!(
                            "{what}: object ID {guid} points at record {}, which does not carry it",
                            target.record
                        ),
                    ),
                }
            } else {
                if e.key.len() < reparse_key::LENGTH {
                    p.push(
                        kind,
                        r,
                        format!("{what}: an entry has a {}-byte key", e.key.len()),
                    );
                    continue;
                }
                let tag = u32_at(&e.key, reparse_key::TAG).unwrap_or(0);
                let target = FileRef::from_u64(u64_at(&e.key, reparse_key::FILE_REF).unwrap_or(0));
                let s = status(target.record);
                if s.damaged {
                    continue;
                }
                if !s.live || s.extension || (target.sequence != 0 && s.sequence != target.sequence)
                {
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
                    p.push(
                        kind,
                        Some(f.record),
                        format!(
                            "record {}: object ID {guid} is listed {hits} times in {what}",
                            f.record
                        ),
                    );
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
fn check_volume_files<R: ReadAt>(
    vol: &Volume<R>,
    p: &mut Problems,
) -> Result<VolumeState, NtfsError> {
    let rs = vol.boot().file_record_size as u64;
    // $MFTMirr: the first records of $MFT, byte for byte as stored.
    if let Some(mirr) = soft(
        vol.read_record(1),
        p,
        ProblemKind::MftMirror,
        Some(1),
        "$MFTMirr",
    )? {
        if let Some(Some(v)) = soft(
            vol.value(&mirr, AttributeType::Data, ""),
            p,
            ProblemKind::MftMirror,
            Some(1),
            "$MFTMirr",
        )? {
            let count = (value_len(&v) / rs).min(vol.record_count());
            if count == 0 {
                p.push(
                    ProblemKind::MftMirror,
                    Some(1),
                    "$MFTMirr holds no whole record".into(),
                );
            }
            if let Some(copy) = soft(
                vol.read_value(&v, 0, (count * rs) as usize),
                p,
                ProblemKind::MftMirror,
                Some(1),
                "$MFTMirr",
            )? {
                let orig = vol.read_stream(vol.mft_stream(), 0, (count * rs) as usize)?;
                for k in 0..count as usize {
                    let range = k * rs as usize..(k + 1) * rs as usize;
                    if copy[range.clone()] != orig[range] {
                        p.push(
                            ProblemKind::MftMirror,
                            Some(k as u64),
                            format!("record {k} differs between $MFT and $MFTMirr"),
                        );
                    }
                }
            }
        }
    }
    // $LogFile: valid restart pages, or all 0xFF.
    let mut log = None;
    if let Some(rec) = soft(
        vol.read_record(RECORD_LOGFILE),
        p,
        ProblemKind::LogFile,
        Some(RECORD_LOGFILE),
        "$LogFile",
    )? {
        if let Some(Some(v)) = soft(
            vol.value(&rec, AttributeType::Data, ""),
            p,
            ProblemKind::LogFile,
            Some(RECORD_LOGFILE),
            "$LogFile",
        )? {
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
    if let Some(rec) = soft(
        vol.read_record(RECORD_VOLUME),
        p,
        ProblemKind::Unreadable,
        Some(RECORD_VOLUME),
        "$Volume",
    )? {
        if let Some(Some(AttrValue::Resident(v))) = soft(
            vol.value(&rec, AttributeType::VolumeInformation, ""),
            p,
            ProblemKind::Unreadable,
            Some(RECORD_VOLUME),
            "$Volume",
        )? {
            dirty = u16_at(&v, volume_information::FLAGS)
                .ok()
                .map(|f| f & volume_information::FLAG_DIRTY != 0);
        }
    }
    // The backup boot sector sits in the last sector, just past the volume's sectors.
    let bps = vol.boot().bytes_per_sector as u64;
    let at = vol.boot().volume_size();
    if vol.reader().size() >= at + bps {
        let mut main = vec![0u8; 512];
        let mut backup = vec![0u8; 512];
        vol.reader()
            .read_at(0, &mut main)
            .map_err(NtfsError::io("reading the boot sector"))?;
        vol.reader()
            .read_at(at, &mut backup)
            .map_err(NtfsError::io("reading the backup boot sector"))?;
        if main != backup {
            p.push(
                ProblemKind::BootBackup,
                None,
                format!("the backup boot sector (byte {at}) differs from the boot sector"),
            );
        }
    }
    Ok(VolumeState { dirty, log })
}
