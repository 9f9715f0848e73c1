//! The journal of a volume whose `$LogFile` is not clean: what Windows would replay at its next
//! mount (read for `inspect` only then, so a clean volume costs no extra read), and whether any of
//! it touches what the fix changes.
//!
//! The records are read and analysed by `kaifuku_ntfs::logfile` (`docs/logfile-format.md` §14);
//! this module turns that analysis into what the user is told ([`JournalReport`]) and compares it
//! with a fix's footprint ([`FixFootprint`] → [`JournalOverlap`]).

use std::collections::BTreeSet;

use kaifuku_io::{ReadAt, WriteAt};
use kaifuku_ntfs::edit::{Change, Editor};
use kaifuku_ntfs::logfile::analysis::{analyse, Bitmap, IndexBlock, TargetGeometry};
use kaifuku_ntfs::logfile::{
    read_journal, read_volume_journal, replay, Journal, ReplayPass, ReplaySummary,
};
use kaifuku_ntfs::volume::{AttrValue, RECORD_LOGFILE, RECORD_ROOT};
use kaifuku_ntfs::{
    AttributeType, Damage, FileNameKey, Namespace, NtfsError, Structure, Unsupported, Volume,
};

use crate::vocabulary::{Blocker, NtfsProblem};
pub use crate::vocabulary::{
    JournalOverlap, JournalReplay, JournalReport, JournalSummary, TouchedRecord,
};

/// How many touched MFT records are resolved to paths (each costs a record read per directory
/// level); the others are listed by number.
pub const PATHS_RESOLVED: usize = 32;
/// Directory levels followed from a record towards the root before giving up on its path.
const MAX_PATH_DEPTH: usize = 64;
/// Bits in one 4096-byte page of a bitmap: the unit Windows logs and writes bitmaps in.
pub const BITS_PER_BITMAP_PAGE: u64 = 4096 * 8;

/// Reads and analyses the journal of `vol` (whose restart pages say it is not clean): every read
/// goes through the volume's reader, so the block cache serves it and the report counts it.
/// Returns the journal as read too, so that a replay of the same volume need not read it again.
pub fn read_journal_report<R: ReadAt>(vol: &Volume<R>) -> (JournalReport, Option<Journal>) {
    match analyse_volume(vol) {
        Ok((Some(summary), journal)) => (
            JournalReport::Analysed {
                journal: Box::new(summary),
            },
            Some(journal),
        ),
        Ok((None, journal)) => (JournalReport::NoLiveLog, Some(journal)),
        Err(e) => (
            JournalReport::Unreadable {
                error: NtfsProblem::from(e),
            },
            None,
        ),
    }
}

fn analyse_volume<R: ReadAt>(
    vol: &Volume<R>,
) -> Result<(Option<JournalSummary>, Journal), NtfsError> {
    let record = vol.read_record(RECORD_LOGFILE)?;
    let value = vol
        .value(&record, AttributeType::Data, "")?
        .ok_or_else(|| {
            NtfsError::Corrupt(Damage::new(
                Structure::LogFile,
                None,
                "$LogFile has no data; run chkdsk on the volume in Windows",
            ))
        })?;
    let size = match &value {
        AttrValue::Resident(b) => b.len() as u64,
        AttrValue::NonResident(s) => s.data_size,
    };
    let journal = read_journal(size, &mut |offset, len| vol.read_value(&value, offset, len))?;
    let boot = vol.boot();
    let geometry = TargetGeometry {
        cluster_size: boot.cluster_size,
        file_record_size: boot.file_record_size,
    };
    let Some(analysis) = analyse(&journal, Some(geometry))? else {
        return Ok((None, journal));
    };
    let file_records = analysis
        .touched
        .file_records
        .iter()
        .enumerate()
        .map(|(i, &record)| TouchedRecord {
            record,
            path: (i < PATHS_RESOLVED)
                .then(|| record_path(vol, record))
                .flatten(),
        })
        .collect();
    let after = analysis.records.len() + analysis.checkpoint_records as usize;
    let summary = JournalSummary {
        version: analysis.version,
        checkpoint_lsn: analysis.checkpoint_lsn,
        current_lsn: analysis.current_lsn,
        redo_lsn: analysis.redo_lsn,
        last_lsn: analysis.last_lsn,
        records_after_checkpoint: after as u64,
        transactions_committed: analysis.committed() as u64,
        transactions_uncommitted: analysis.uncommitted() as u64,
        file_records,
        index_blocks: distinct_blocks(analysis.touched.index_blocks),
        lcn_ranges: analysis.touched.lcn_ranges,
        bitmap_ranges: analysis.touched.bitmap_ranges,
        unresolved: analysis.touched.unresolved,
        bytes_read: journal.bytes_read,
        overlap: None,
    };
    Ok((Some(summary), journal))
}

/// The index blocks, once each: the analysis keeps one per changed entry offset, the report one
/// per block.
fn distinct_blocks(blocks: BTreeSet<IndexBlock>) -> Vec<IndexBlock> {
    let mut out: Vec<IndexBlock> = Vec::new();
    for b in blocks {
        let same = |o: &IndexBlock| {
            o.record == b.record
                && o.name == b.name
                && o.vcn == b.vcn
                && o.block_offset == b.block_offset
        };
        if !out.iter().any(same) {
            out.push(b);
        }
    }
    out
}

/// The path of MFT record `number` as the volume holds it now, by its `$FILE_NAME`s up to the
/// root; `None` when the record is not in use or any step does not check out (a parent not in
/// use, not a directory, or of another sequence number): a pending journal record may well be
/// about a file the disk does not show yet.
pub fn record_path<R: ReadAt>(vol: &Volume<R>, number: u64) -> Option<String> {
    let mut current = vol.read_record(number).ok()?;
    if !current.in_use() {
        return None;
    }
    let base = current.base_ref().record;
    if base != 0 && base != number {
        current = vol.read_record(base).ok()?;
        if !current.in_use() {
            return None;
        }
    }
    let mut names: Vec<String> = Vec::new();
    let mut seen = vec![current.number];
    for _ in 0..MAX_PATH_DEPTH {
        if current.number == RECORD_ROOT {
            names.reverse();
            return Some(format!("\\{}", names.join("\\")));
        }
        let keys: Vec<FileNameKey> = current
            .attributes()
            .ok()?
            .iter()
            .filter(|a| a.is(AttributeType::FileName))
            .filter_map(|a| {
                a.resident_value()
                    .ok()
                    .and_then(|v| FileNameKey::parse(v).ok())
            })
            .collect();
        let key = keys
            .iter()
            .find(|k| k.namespace != Namespace::Dos)
            .or(keys.first())?;
        names.push(String::from_utf16_lossy(&key.name));
        let parent = vol.read_record(key.parent.record).ok()?;
        if !parent.in_use()
            || !parent.is_directory()
            || parent.sequence() != key.parent.sequence
            || seen.contains(&parent.number)
        {
            return None;
        }
        seen.push(parent.number);
        current = parent;
    }
    None
}

/// The MFT records of the directories the rule looks through on `vol` as the disk shows it now:
/// the root, every folder of `directory` that exists (walked by name until one is missing), and
/// `found`, the rule's directory as the rule resolved it (links followed). A journal that changes
/// any of them may hold a file, or a folder on the way, that the disk does not show yet.
pub fn rule_path_records<R: ReadAt>(
    vol: &Volume<R>,
    directory: &str,
    found: Option<u64>,
) -> BTreeSet<u64> {
    let mut records: BTreeSet<u64> = [RECORD_ROOT].into_iter().chain(found).collect();
    let Ok(mut dir) = vol.read_record(RECORD_ROOT) else {
        return records;
    };
    for component in directory.split(['\\', '/']).filter(|c| !c.is_empty()) {
        let name: Vec<u16> = component.encode_utf16().collect();
        let next = vol
            .directory(&dir)
            .and_then(|index| index.lookup(vol, &name))
            .ok()
            .flatten()
            .and_then(|entry| vol.read_live(entry.file_ref).ok())
            .filter(|record| record.is_directory());
        let Some(next) = next else { break };
        records.insert(next.number);
        dir = next;
    }
    records
}

/// Whether the pending updates of a journal kaifuku cannot replay may hold a file the rule looks
/// for: they change a directory of `path` (from [`rule_path_records`]: its record, an index block
/// or its index bitmap), or cannot be attributed, or the journal could not be read. `None` when
/// they provably do not.
pub fn journal_may_hold_match(
    report: &JournalReport,
    path: &BTreeSet<u64>,
    directory: &str,
    pattern: &str,
) -> Option<Blocker> {
    let (records, unattributed, unreadable) = match report {
        JournalReport::NoLiveLog => return None,
        JournalReport::Unreadable { .. } => (BTreeSet::new(), 0, true),
        JournalReport::Analysed { journal } => {
            let mut records: BTreeSet<u64> = journal
                .file_records
                .iter()
                .map(|r| r.record)
                .filter(|r| path.contains(r))
                .collect();
            records.extend(
                journal
                    .index_blocks
                    .iter()
                    .map(|b| b.record)
                    .filter(|r| path.contains(r)),
            );
            records.extend(
                journal
                    .bitmap_ranges
                    .iter()
                    .filter_map(|r| match &r.bitmap {
                        Bitmap::IndexBlocks { record, .. } | Bitmap::Other { record, .. }
                            if path.contains(record) =>
                        {
                            Some(*record)
                        }
                        Bitmap::IndexBlocks { .. }
                        | Bitmap::Other { .. }
                        | Bitmap::Clusters
                        | Bitmap::MftRecords => None,
                    }),
            );
            (records, journal.unresolved, false)
        }
    };
    if records.is_empty() && unattributed == 0 && !unreadable {
        return None;
    }
    Some(Blocker::JournalMayHoldMatch {
        directory: directory.to_string(),
        pattern: pattern.to_string(),
        records: records.into_iter().collect(),
        unattributed,
        unreadable,
    })
}

/// What a fix changes on one volume, as far as the journal can touch it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixFootprint {
    /// MFT records the fix writes (the deleted files' and their directories').
    pub file_records: BTreeSet<u64>,
    /// Directories whose `$I30` index the fix edits (root and blocks).
    pub directories: BTreeSet<u64>,
    /// MFT records whose `$MFT:$BITMAP` bit the fix clears.
    pub mft_bits: BTreeSet<u64>,
    /// Cluster runs whose `$Bitmap` bits the fix clears.
    pub cluster_runs: Vec<(u64, u64)>,
    /// Cluster runs the fix writes (known once the plan is made).
    pub clusters: Vec<(u64, u64)>,
}

impl FixFootprint {
    /// Adds `other`'s footprint to this one (a fix deleting several rules' matches at once).
    pub fn merge(&mut self, other: FixFootprint) {
        self.file_records.extend(other.file_records);
        self.directories.extend(other.directories);
        self.mft_bits.extend(other.mft_bits);
        self.cluster_runs.extend(other.cluster_runs);
        self.clusters.extend(other.clusters);
    }
}

/// What deleting `files` from directory `directory` would change, as inspect can tell before a
/// plan exists: the files' and the directory's records, the directory's index, the files' bits in
/// `$MFT:$BITMAP` and their clusters' bits in `$Bitmap` (from their `$DATA` runs).
pub fn inspect_footprint<R: ReadAt>(
    vol: &Volume<R>,
    directory: u64,
    files: &[u64],
) -> Result<FixFootprint, NtfsError> {
    let mut fix = FixFootprint {
        file_records: files.iter().copied().chain([directory]).collect(),
        directories: [directory].into(),
        mft_bits: files.iter().copied().collect(),
        ..FixFootprint::default()
    };
    for &file in files {
        let record = vol.read_record(file)?;
        if let Some(AttrValue::NonResident(stream)) = vol.value(&record, AttributeType::Data, "")? {
            fix.cluster_runs.extend(
                stream
                    .runs
                    .iter()
                    .filter_map(|r| r.lcn.map(|lcn| (lcn, r.length))),
            );
        }
    }
    Ok(fix)
}

/// The pages (of [`BITS_PER_BITMAP_PAGE`] bits) a bit range lies in.
fn bitmap_pages(first: u64, count: u64) -> impl Iterator<Item = u64> {
    let last = first.saturating_add(count.max(1) - 1);
    first / BITS_PER_BITMAP_PAGE..=last / BITS_PER_BITMAP_PAGE
}

/// Whether two cluster ranges share a cluster.
fn intersect(a: (u64, u64), b: (u64, u64)) -> Option<(u64, u64)> {
    let start = a.0.max(b.0);
    let end = a.0.saturating_add(a.1).min(b.0.saturating_add(b.1));
    (start < end).then_some((start, end - start))
}

/// What of the journal's pending changes (`journal`) touches what the fix changes (`fix`): the
/// same MFT records, blocks of the edited directories' indexes, the same pages of `$MFT:$BITMAP`
/// and `$Bitmap`, the same clusters.
pub fn journal_overlap(journal: &JournalSummary, fix: &FixFootprint) -> JournalOverlap {
    let file_records: Vec<u64> = journal
        .file_records
        .iter()
        .map(|r| r.record)
        .filter(|r| fix.file_records.contains(r))
        .collect();
    let index_blocks: Vec<_> = journal
        .index_blocks
        .iter()
        .filter(|b| fix.directories.contains(&b.record) && b.name == "$I30")
        .cloned()
        .collect();
    let fix_mft_pages: BTreeSet<u64> = fix
        .mft_bits
        .iter()
        .flat_map(|&r| bitmap_pages(r, 1))
        .collect();
    let fix_cluster_pages: BTreeSet<u64> = fix
        .cluster_runs
        .iter()
        .flat_map(|&(first, count)| bitmap_pages(first, count))
        .collect();
    let mut mft_bitmap_pages = BTreeSet::new();
    let mut cluster_bitmap_pages = BTreeSet::new();
    for range in &journal.bitmap_ranges {
        let (pages, wanted) = match range.bitmap {
            Bitmap::MftRecords => (&mut mft_bitmap_pages, &fix_mft_pages),
            Bitmap::Clusters => (&mut cluster_bitmap_pages, &fix_cluster_pages),
            Bitmap::IndexBlocks { .. } | Bitmap::Other { .. } => continue,
        };
        pages.extend(bitmap_pages(range.first, range.count).filter(|p| wanted.contains(p)));
    }
    let mut clusters: Vec<(u64, u64)> = journal
        .lcn_ranges
        .iter()
        .flat_map(|j| {
            fix.clusters
                .iter()
                .filter_map(move |&c| intersect((j.first, j.count), c))
        })
        .collect();
    clusters.sort_unstable();
    clusters.dedup();
    if file_records.is_empty()
        && index_blocks.is_empty()
        && mft_bitmap_pages.is_empty()
        && cluster_bitmap_pages.is_empty()
        && clusters.is_empty()
    {
        return JournalOverlap::NoOverlap;
    }
    JournalOverlap::Overlaps {
        file_records,
        index_blocks,
        mft_bitmap_pages: mft_bitmap_pages.into_iter().collect(),
        cluster_bitmap_pages: cluster_bitmap_pages.into_iter().collect(),
        clusters: clusters
            .into_iter()
            .map(|(first, count)| kaifuku_ntfs::logfile::analysis::LcnRange { first, count })
            .collect(),
    }
}

/// Whether the journal of `vol` can be replayed as Windows would at its next mount, found by
/// replaying it into `vol`'s overlay (which then holds the replayed volume), with the editor's
/// labelled changes. `None` when there is nothing a replay would do (no analysed journal, or a
/// journal whose restart area the replay finds clean): the fix then keeps its other paths.
/// `already_read` is the journal as [`read_journal_report`] read it from the same bytes, when the
/// caller has it; otherwise it is read again.
pub fn replay_journal<R: ReadAt + WriteAt>(
    vol: &Volume<R>,
    report: &JournalReport,
    already_read: Option<&Journal>,
) -> Option<(JournalReplay, Vec<Change>)> {
    let JournalReport::Analysed { .. } = report else {
        return None;
    };
    let failed = |e: NtfsError| match e {
        NtfsError::Unsupported(Unsupported::JournalReplay {
            lsn,
            operation,
            detail,
        }) => JournalReplay::NotUnderstood {
            lsn,
            operation,
            detail,
        },
        e => JournalReplay::Failed {
            error: NtfsProblem::from(e),
        },
    };
    let read_now;
    let read = match already_read {
        Some(j) => j,
        None => match read_volume_journal(vol) {
            Ok(j) => {
                read_now = j;
                &read_now
            }
            Err(e) => return Some((failed(e), Vec::new())),
        },
    };
    let mut editor = Editor::new(vol);
    match replay(&mut editor, read) {
        // A summary without an end of the log replayed nothing and left the journal as it was.
        Ok(summary) if summary.last_lsn == 0 => None,
        Ok(summary) => Some((replay_outcome(&summary), editor.into_changes())),
        Err(e) => Some((failed(e), Vec::new())),
    }
}

/// What a successful replay did, as the user is told.
pub fn replay_outcome(summary: &ReplaySummary) -> JournalReplay {
    let count = |pass: ReplayPass| summary.steps.iter().filter(|s| s.pass == pass).count() as u32;
    JournalReplay::Replayed {
        committed: summary.committed_transactions,
        uncommitted: summary.uncommitted_transactions,
        redone: count(ReplayPass::Redo),
        undone: count(ReplayPass::Undo),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaifuku_ntfs::logfile::analysis::{BitRange, LcnRange};
    use kaifuku_ntfs::logfile::LfsVersion;

    fn summary() -> JournalSummary {
        JournalSummary {
            version: LfsVersion::V2_0,
            checkpoint_lsn: 0x100,
            current_lsn: 0x200,
            redo_lsn: 0xF0,
            last_lsn: 0x200,
            records_after_checkpoint: 9,
            transactions_committed: 2,
            transactions_uncommitted: 1,
            file_records: vec![
                TouchedRecord {
                    record: 40,
                    path: None,
                },
                TouchedRecord {
                    record: 64,
                    path: Some("\\x".into()),
                },
            ],
            index_blocks: vec![IndexBlock {
                record: 39,
                name: "$I30".into(),
                vcn: 4,
                block_offset: 0,
                entry_offset: 0x28,
            }],
            lcn_ranges: vec![LcnRange {
                first: 1000,
                count: 4,
            }],
            bitmap_ranges: vec![
                BitRange {
                    bitmap: Bitmap::MftRecords,
                    first: 64,
                    count: 1,
                },
                BitRange {
                    bitmap: Bitmap::Clusters,
                    first: 70_000,
                    count: 8,
                },
            ],
            unresolved: 0,
            bytes_read: 0,
            overlap: None,
        }
    }

    #[test]
    fn nothing_shared_is_no_overlap() {
        let fix = FixFootprint {
            file_records: [41, 38].into(),
            directories: [38].into(),
            mft_bits: [41].into(),
            // Page 0 of $Bitmap only; the journal's bits are on page 2.
            cluster_runs: vec![(100, 5)],
            clusters: vec![(1004, 2)],
        };
        // Record 41's bit is on page 0 of $MFT:$BITMAP, like the journal's bit 64: that page is
        // shared, nothing else is.
        let o = journal_overlap(&summary(), &fix);
        assert_eq!(
            o,
            JournalOverlap::Overlaps {
                file_records: vec![],
                index_blocks: vec![],
                mft_bitmap_pages: vec![0],
                cluster_bitmap_pages: vec![],
                clusters: vec![],
            }
        );
        let far = FixFootprint {
            mft_bits: [BITS_PER_BITMAP_PAGE * 3].into(),
            ..fix
        };
        assert_eq!(journal_overlap(&summary(), &far), JournalOverlap::NoOverlap);
    }

    #[test]
    fn shared_records_blocks_pages_and_clusters_are_listed() {
        let fix = FixFootprint {
            file_records: [64, 39].into(),
            directories: [39].into(),
            mft_bits: [64].into(),
            cluster_runs: vec![(2 * BITS_PER_BITMAP_PAGE + 1, 3)],
            clusters: vec![(1002, 10)],
        };
        let JournalOverlap::Overlaps {
            file_records,
            index_blocks,
            mft_bitmap_pages,
            cluster_bitmap_pages,
            clusters,
        } = journal_overlap(&summary(), &fix)
        else {
            panic!("overlap expected");
        };
        assert_eq!(file_records, vec![64]);
        assert_eq!(index_blocks.len(), 1);
        assert_eq!(mft_bitmap_pages, vec![0]);
        assert_eq!(cluster_bitmap_pages, vec![2]);
        assert_eq!(
            clusters,
            vec![LcnRange {
                first: 1002,
                count: 2
            }]
        );
    }
}
