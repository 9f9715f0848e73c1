//! Replaying the journal as Windows does at its next mount (`docs/logfile-format.md` §10): the
//! analysis pass from the checkpoint (dirty pages, transactions), the redo of every finished
//! transaction's changes that are not on disk yet (the LSN rule), the undo of an unfinished
//! transaction's changes that reached the disk, and then the journal marked clean, as a dismount
//! leaves it. Every write goes through the [`Editor`], so the replay is a list of labelled
//! patches in the overlay like a delete, and what runs after it reads the replayed volume.
//!
//! Only what is understood is replayed: an operation whose effect on the bytes is not known
//! exactly (§9.1, §9.2), a target whose bytes do not look as the operation expects, a state of the
//! log the passes below do not model: each refuses the whole replay with the operation's name and
//! LSN, before anything is written.
//!
//! Unlike ARIES' "repeat history", the changes of an unfinished transaction are not redone first
//! and undone after: they are undone only where they reached the disk (an MFT record's or index
//! block's LSN at least the record's), which gives the same bytes on every page no finished
//! record changes after them, and leaves a record the unfinished transaction allocated exactly as
//! it was. A finished record changing a page after an unfinished one did is refused.

use std::collections::{BTreeMap, BTreeSet};

use kaifuku_io::{ReadAt, WriteAt};
use serde::Serialize;

use crate::bytes::{u16_at, u32_at, u64_at};
use crate::edit::{AppliedRecord, ChangedStructure, Editor, ReplayedPage, RestartCopy};
use crate::layout::file_record::{FLAGS as RECORD_FLAGS, FLAG_IN_USE, SEQUENCE};
use crate::layout::{restart_area, restart_page};
use crate::ownership::StreamRef;
use crate::record::FileRecord;
use crate::runlist::map_range;
use crate::volume::{AttrValue, Stream, RECORD_BITMAP, RECORD_LOGFILE, RECORD_MFT};
use crate::{AttributeType, NtfsError, Structure, Unsupported};

use super::analysis::{AttributeTable, Target, TargetGeometry};
use super::checkpoint::TransactionState;
use super::reader::{Journal, LiveLog};
use super::record::{LogRecord, Operation, RecordType};
use super::restart::LfsVersion;

/// Offsets inside a file record, an attribute and an index, as §9.2 names them.
mod at {
    /// u64: the LSN of the last change (`FILE` and `INDX` headers).
    pub const PAGE_LSN: usize = 0x08;
    /// Bytes of a file record header: an image shorter than this is not a record.
    pub const HEADER_MIN: usize = 0x30;
    /// u16: link count.
    pub const LINK_COUNT: usize = 0x12;
    /// Bytes of the header a Windows 10 `DeallocateFileRecordSegment` logs as its undo (§9.2):
    /// up to and including the flags.
    pub const DEALLOCATE_UNDO_HEADER: usize = 0x18;
    /// Most zero bytes a `DeallocateFileRecordSegment` carries (Windows 10's undo form, §10.7).
    pub const DEALLOCATE_MAX_ZEROS: usize = 8;
    /// u16: offset of the first attribute.
    pub const FIRST_ATTRIBUTE: usize = 0x14;
    /// u32: bytes in use.
    pub const BYTES_IN_USE: usize = 0x18;
    /// u32: bytes allocated.
    pub const BYTES_ALLOCATED: usize = 0x1C;
    /// u16: next attribute instance.
    pub const NEXT_INSTANCE: usize = 0x28;
    /// Attribute: u32 length.
    pub const ATTR_LENGTH: usize = 0x04;
    /// Attribute: u8 non-resident flag.
    pub const ATTR_NON_RESIDENT: usize = 0x08;
    /// Attribute: u16 instance.
    pub const ATTR_INSTANCE: usize = 0x0E;
    /// Resident attribute: u32 value length.
    pub const VALUE_LENGTH: usize = 0x10;
    /// Resident attribute: u16 value offset.
    pub const VALUE_OFFSET: usize = 0x14;
    /// Resident attribute: u8 indexed flag (set on `$FILE_NAME`).
    pub const RESIDENT_FLAGS: usize = 0x16;
    /// Non-resident attribute: u64 lowest VCN.
    pub const LOWEST_VCN: usize = 0x10;
    /// Non-resident attribute: u64 highest VCN.
    pub const HIGHEST_VCN: usize = 0x18;
    /// Non-resident attribute: u16 mapping pairs offset.
    pub const MAPPING_PAIRS: usize = 0x20;
    /// Non-resident attribute: u64 allocated size.
    pub const ALLOCATED_SIZE: usize = 0x28;
    /// Non-resident attribute: u64 data size.
    pub const DATA_SIZE: usize = 0x30;
    /// Non-resident attribute: u64 initialized size.
    pub const INITIALIZED_SIZE: usize = 0x38;
    /// Non-resident attribute: u64 total allocated (compressed or sparse attributes).
    pub const COMPRESSED_SIZE: usize = 0x40;
    /// Index header, from its start: u32 offset of the first entry.
    pub const ENTRIES_OFFSET: usize = 0x00;
    /// Index header: u32 bytes of the entries.
    pub const ENTRIES_LENGTH: usize = 0x04;
    /// Index header: u32 bytes allocated for the entries.
    pub const ENTRIES_ALLOCATED: usize = 0x08;
    /// The index header in an `$INDEX_ROOT` value.
    pub const ROOT_INDEX_HEADER: usize = 0x10;
    /// The index header in an `INDX` block.
    pub const BLOCK_INDEX_HEADER: usize = 0x18;
    /// Index entry: u16 data offset (view indexes).
    pub const ENTRY_DATA_OFFSET: usize = 0x00;
    /// Index entry: u16 length.
    pub const ENTRY_LENGTH: usize = 0x08;
    /// Index entry: u16 flags (0x01 has a child, 0x02 last).
    pub const ENTRY_FLAGS: usize = 0x0C;
    /// Index entry: the `$FILE_NAME` key's duplicated information, 0x38 bytes.
    pub const ENTRY_DUPLICATED_INFO: usize = 0x18;
    /// Bytes of the duplicated information.
    pub const DUPLICATED_INFO_LENGTH: usize = 0x38;
    /// The resident flag marking an indexed attribute.
    pub const RESIDENT_INDEXED: u8 = 0x01;
    /// Index entry flag: has a child VCN in its last 8 bytes.
    pub const ENTRY_HAS_CHILD: u16 = 0x01;
}

/// What one log record did in the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayStep {
    /// The record's LSN.
    pub lsn: u64,
    /// The operation applied (the redo operation, or the undo operation when undone).
    pub operation: Operation,
    /// What it changed, in words ("MFT record 70", "index block VCN 0 of record 5's $I30").
    pub target: String,
    /// Redone, or undone.
    pub pass: ReplayPass,
}

/// Which pass applied a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayPass {
    /// A finished transaction's change the disk did not hold yet.
    Redo,
    /// An unfinished transaction's change that had reached the disk.
    Undo,
}

/// What the replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplaySummary {
    /// Records applied, in the order applied.
    pub steps: Vec<ReplayStep>,
    /// Page-changing records of finished transactions already on disk (their page's LSN was at
    /// least theirs) or on pages the dirty page table says were written since.
    pub already_on_disk: u32,
    /// Finished transactions whose changes the log holds.
    pub committed_transactions: u32,
    /// Unfinished transactions (nothing of them is kept).
    pub uncommitted_transactions: u32,
    /// The end of the log: the restart area's current LSN after the replay.
    pub last_lsn: u64,
}

/// A page the replay reads and changes: an MFT record, an index block, or one cluster-sized page
/// of another non-resident stream (a bitmap, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PageKey {
    Record(u64),
    IndexBlock {
        record: u64,
        name: String,
        /// Byte offset of the block in the `$INDEX_ALLOCATION`.
        offset: u64,
    },
    StreamPage {
        record: u64,
        attribute_type: u32,
        name: String,
        /// First VCN of the page.
        vcn: u64,
    },
}

impl PageKey {
    fn describe(&self) -> String {
        self.page().to_string()
    }

    /// The page as the change log names it.
    fn page(&self) -> ReplayedPage {
        match self {
            PageKey::Record(n) => ReplayedPage::Record { record: *n },
            PageKey::IndexBlock {
                record,
                name,
                offset,
            } => ReplayedPage::IndexBlock {
                record: *record,
                index: name.clone(),
                offset: *offset,
            },
            PageKey::StreamPage {
                record,
                attribute_type,
                name,
                vcn,
            } => ReplayedPage::StreamPage {
                record: *record,
                attribute_type: *attribute_type,
                name: name.clone(),
                vcn: *vcn,
            },
        }
    }
}

/// A page's bytes as the replay sees them.
struct Page {
    /// Where its bytes lie on the volume, in order.
    pieces: Vec<(u64, u64)>,
    /// Its bytes (fixups removed for `FILE` and `INDX`).
    bytes: Vec<u8>,
    /// Whether the bytes are a protected block (`FILE`/`INDX`) whose LSN the replay reads.
    protected: bool,
    /// The page LSN on disk before the replay (0 where the page has none).
    disk_lsn: u64,
    /// The stream that owns the bytes.
    owner: StreamRef,
    /// Records applied to it, for the label.
    applied: Vec<(u64, Operation, ReplayPass)>,
}

impl Page {
    fn lsn(&self) -> u64 {
        if self.protected {
            u64_at(&self.bytes, at::PAGE_LSN).unwrap_or(0)
        } else {
            0
        }
    }
}

/// Why a replay cannot go on: the operation and its LSN, and what is not understood.
fn refuse(lsn: u64, operation: Operation, detail: impl Into<String>) -> NtfsError {
    NtfsError::Unsupported(Unsupported::JournalReplay {
        lsn,
        operation: format!("{operation:?}"),
        detail: detail.into(),
    })
}

/// A transaction as the analysis pass sees it.
#[derive(Debug, Clone)]
struct TransactionRun {
    id: u32,
    first_lsn: u64,
    last_lsn: u64,
    state: RunState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Active,
    Prepared,
    Committed,
}

/// Replays `journal` (read from `editor`'s volume) into the editor's overlay and marks the
/// journal clean. Returns what it did; a journal without a live part (empty or already clean)
/// is left alone and the summary is empty.
pub fn replay<R: ReadAt + WriteAt>(
    editor: &mut Editor<'_, R>,
    journal: &Journal,
) -> Result<ReplaySummary, NtfsError> {
    let (Some(restart), Some(live)) = (&journal.restart, &journal.live) else {
        return Ok(ReplaySummary::default());
    };
    if restart.area.clean_flag() {
        return Ok(ReplaySummary::default());
    }
    if restart.version == LfsVersion::V2_0 {
        refuse_wrapped_v2_log(live)?;
    }
    let vol = editor.volume();
    let geometry = TargetGeometry {
        cluster_size: vol.boot().cluster_size,
        file_record_size: vol.boot().file_record_size,
    };
    if live.checkpoint.bytes_per_cluster != 0
        && live.checkpoint.bytes_per_cluster != geometry.cluster_size
    {
        return Err(refuse(
            live.client.restart_lsn,
            Operation::Noop,
            format!(
                "the checkpoint was written for {}-byte clusters, the volume has {}",
                live.checkpoint.bytes_per_cluster, geometry.cluster_size
            ),
        ));
    }
    let start = live.checkpoint.checkpoint_start_lsn;

    // Analysis pass (§10.2): transactions and dirty pages from the checkpoint, then every record
    // after its start.
    let mut runs: Vec<TransactionRun> = Vec::new();
    let mut open: BTreeMap<u32, usize> = BTreeMap::new();
    for t in &live.tables.transactions {
        let state = match t.state {
            TransactionState::Active => RunState::Active,
            TransactionState::Prepared => RunState::Prepared,
            TransactionState::Committed => RunState::Committed,
            TransactionState::Uninitialized => continue,
        };
        open.insert(t.id, runs.len());
        runs.push(TransactionRun {
            id: t.id,
            first_lsn: t.first_lsn,
            last_lsn: t.previous_lsn,
            state,
        });
    }
    // (slot, first VCN) -> (VCNs covered, oldest LSN).
    let mut dirty: BTreeMap<(u32, u64), (u64, u64)> = live
        .tables
        .dirty_pages
        .iter()
        .map(|d| {
            (
                (d.target_attribute, d.vcn),
                ((d.lcns.len() as u64).max(1), d.oldest_lsn),
            )
        })
        .collect();
    let covering = |dirty: &BTreeMap<(u32, u64), (u64, u64)>, slot: u32, vcn: u64| {
        dirty
            .range((slot, 0)..=(slot, vcn))
            .next_back()
            .filter(|((_, first), (count, _))| vcn < first + count)
            .map(|(_, (_, oldest))| *oldest)
    };
    let mut attributes = AttributeTable::from_checkpoint(live);
    let checkpoint_attributes = AttributeTable::from_checkpoint(live);
    // Which transaction run each client record belongs to, and its resolved target.
    let mut owner_of: BTreeMap<u64, usize> = BTreeMap::new();
    let mut targets: BTreeMap<u64, Target> = BTreeMap::new();
    for record in &live.records {
        let Some(op) = &record.operation else {
            continue;
        };
        if record.header.record_type != RecordType::Client {
            continue;
        }
        let lsn = record.lsn();
        let id = record.header.transaction_id;
        if lsn <= start {
            // Before the checkpoint: a transaction still open at it, or one finished before it.
            targets.insert(lsn, checkpoint_attributes.target(record, geometry));
            if let Some(&i) = open.get(&id) {
                if runs[i].first_lsn <= lsn {
                    owner_of.insert(lsn, i);
                }
            }
            continue;
        }
        attributes.apply(record)?;
        targets.insert(lsn, attributes.target(record, geometry));
        match op.redo {
            Operation::DeleteDirtyClusters | Operation::HotFix => {
                return Err(refuse(
                    lsn,
                    op.redo,
                    "the replay does not model changes of the dirty page table's clusters",
                ));
            }
            Operation::Unknown(_)
            | Operation::UpdateRelativeDataInIndex
            | Operation::UpdateRelativeDataInIndex2 => {
                return Err(refuse(
                    lsn,
                    op.redo,
                    "no source says what this operation changes",
                ));
            }
            _ => {}
        }
        let i = *open.entry(id).or_insert_with(|| {
            runs.push(TransactionRun {
                id,
                first_lsn: lsn,
                last_lsn: lsn,
                state: RunState::Active,
            });
            runs.len() - 1
        });
        runs[i].last_lsn = lsn;
        owner_of.insert(lsn, i);
        match op.redo {
            Operation::ForgetTransaction => {
                runs[i].state = RunState::Committed;
                open.remove(&id);
            }
            Operation::CommitTransaction => runs[i].state = RunState::Committed,
            Operation::PrepareTransaction => runs[i].state = RunState::Prepared,
            _ => {}
        }
        if op.redo.page_kind().is_some() && !op.lcns.is_empty() {
            let slot = op.target_attribute as u32;
            if covering(&dirty, slot, op.target_vcn).is_none() {
                dirty.insert((slot, op.target_vcn), ((op.lcns.len() as u64).max(1), lsn));
            }
        }
    }
    if let Some(t) = runs.iter().find(|t| t.state == RunState::Prepared) {
        return Err(refuse(
            t.last_lsn,
            Operation::PrepareTransaction,
            format!(
                "transaction {:#x} is prepared but not committed; the replay does not decide its fate",
                t.id
            ),
        ));
    }
    let redo_lsn = live
        .tables
        .dirty_pages
        .iter()
        .map(|d| d.oldest_lsn)
        .chain(live.tables.transactions.iter().map(|t| t.first_lsn))
        .chain(live.after_checkpoint().first().map(LogRecord::lsn))
        .filter(|l| *l != 0)
        .min()
        .unwrap_or(live.last_lsn());
    let last_lsn = live.last_lsn();
    let committed = |lsn: u64| -> bool {
        owner_of
            .get(&lsn)
            .is_none_or(|&i| runs[i].state == RunState::Committed)
    };

    let mut pages: BTreeMap<PageKey, Page> = BTreeMap::new();
    let mut summary = ReplaySummary {
        committed_transactions: runs
            .iter()
            .filter(|t| t.state == RunState::Committed)
            .count() as u32,
        // A transaction of only table dumps has nothing to undo (§10.4).
        uncommitted_transactions: runs
            .iter()
            .enumerate()
            .filter(|(i, t)| {
                t.state == RunState::Active
                    && live.records.iter().any(|r| {
                        owner_of.get(&r.lsn()) == Some(i)
                            && r.operation.as_ref().is_some_and(|op| {
                                op.redo.page_kind().is_some() || op.undo.page_kind().is_some()
                            })
                    })
            })
            .count() as u32,
        last_lsn,
        ..ReplaySummary::default()
    };

    // Every page-changing record from the redo LSN: its page, and which transaction it is of.
    let mut uncommitted_pages: BTreeMap<PageKey, u64> = BTreeMap::new();
    let mut work: Vec<(&LogRecord, PageKey)> = Vec::new();
    for record in live.records.iter().filter(|r| r.lsn() >= redo_lsn) {
        let Some(op) = &record.operation else {
            continue;
        };
        let kind = op.redo.page_kind().or(op.undo.page_kind());
        if kind.is_none() || op.lcns.is_empty() {
            if op.redo.page_kind().is_some() || op.undo.page_kind().is_some() {
                return Err(refuse(
                    record.lsn(),
                    op.redo,
                    "the record changes a page but names no cluster",
                ));
            }
            continue;
        }
        let target = targets.get(&record.lsn()).cloned().unwrap_or(Target::None);
        let key = page_key(record, &target, geometry)?;
        load_page(editor, &mut pages, &key, record)?;
        if !committed(record.lsn()) {
            uncommitted_pages.entry(key.clone()).or_insert(record.lsn());
        } else if let Some(first) = uncommitted_pages.get(&key) {
            return Err(refuse(
                record.lsn(),
                op.redo,
                format!(
                    "{} was changed by an unfinished transaction at LSN {first:#x} before this finished one",
                    key.describe()
                ),
            ));
        }
        work.push((record, key));
    }

    // Redo pass (§10.3), finished transactions only.
    for (record, key) in &work {
        let op = record
            .operation
            .as_ref()
            .expect("page records have an operation");
        let lsn = record.lsn();
        if !committed(lsn) || op.redo == Operation::Noop || op.redo.page_kind().is_none() {
            continue;
        }
        match covering(&dirty, op.target_attribute as u32, op.target_vcn) {
            Some(oldest) if lsn >= oldest => {}
            _ => {
                summary.already_on_disk += 1;
                continue;
            }
        }
        let page = pages.get_mut(key).expect("loaded above");
        if page.protected && page.lsn() >= lsn {
            summary.already_on_disk += 1;
            continue;
        }
        apply(page, key, record, op.redo, &record.redo_bytes(), lsn)?;
        if page.protected {
            crate::bytes::put_u64(&mut page.bytes, at::PAGE_LSN, lsn);
        }
        page.applied.push((lsn, op.redo, ReplayPass::Redo));
        summary.steps.push(ReplayStep {
            lsn,
            operation: op.redo,
            target: key.describe(),
            pass: ReplayPass::Redo,
        });
    }

    // Undo pass (§10.4): each unfinished transaction back along its undo chain, where its
    // change reached the disk.
    let by_lsn: BTreeMap<u64, &PageKey> = work.iter().map(|(r, k)| (r.lsn(), k)).collect();
    for t in runs.iter().filter(|t| t.state == RunState::Active) {
        let mut next = t.last_lsn;
        let mut seen = BTreeSet::new();
        while next != 0 {
            if !seen.insert(next) || next < redo_lsn.min(t.first_lsn) {
                return Err(refuse(
                    next,
                    Operation::Noop,
                    format!(
                        "the undo chain of transaction {:#x} leaves the live journal",
                        t.id
                    ),
                ));
            }
            let Ok(i) = live.records.binary_search_by_key(&next, LogRecord::lsn) else {
                return Err(refuse(
                    next,
                    Operation::Noop,
                    format!(
                        "the undo chain of transaction {:#x} names a missing record",
                        t.id
                    ),
                ));
            };
            let record = &live.records[i];
            let Some(op) = &record.operation else {
                return Err(refuse(
                    next,
                    Operation::Noop,
                    "the undo chain names a checkpoint record",
                ));
            };
            next = record.header.client_undo_next_lsn;
            if op.undo == Operation::CompensationLogRecord || op.undo == Operation::Noop {
                continue;
            }
            let Some(key) = by_lsn.get(&record.lsn()) else {
                return Err(refuse(
                    record.lsn(),
                    op.undo,
                    "the change to undo is not on a page the replay read",
                ));
            };
            let page = pages.get_mut(*key).expect("loaded above");
            let on_disk = match key {
                // A record or block carries the LSN of its last change on disk; one that is not
                // even initialized holds nothing of the transaction.
                PageKey::Record(_) | PageKey::IndexBlock { .. } => {
                    page.protected && page.disk_lsn >= record.lsn()
                }
                // Bitmap pages carry no LSN; their undo (the bits back as they were) is right
                // whether or not the change reached the disk.
                PageKey::StreamPage { .. } => true,
            };
            if !on_disk {
                continue;
            }
            apply(
                page,
                key,
                record,
                op.undo,
                &record.undo_bytes(),
                record.lsn(),
            )?;
            if page.protected {
                crate::bytes::put_u64(&mut page.bytes, at::PAGE_LSN, last_lsn);
            }
            page.applied.push((record.lsn(), op.undo, ReplayPass::Undo));
            summary.steps.push(ReplayStep {
                lsn: record.lsn(),
                operation: op.undo,
                target: key.describe(),
                pass: ReplayPass::Undo,
            });
        }
    }

    // Write every changed page once, protected with a new update sequence number.
    for (key, page) in pages.into_iter().filter(|(_, p)| !p.applied.is_empty()) {
        let label = ChangedStructure::JournalReplay {
            page: key.page(),
            applied: page
                .applied
                .iter()
                .map(|&(lsn, operation, pass)| AppliedRecord {
                    lsn,
                    operation,
                    pass,
                })
                .collect(),
        };
        match key {
            PageKey::Record(n) => {
                let rec = FileRecord::parse(n, page.bytes).map_err(|e| {
                    refuse(
                        page.applied[0].0,
                        page.applied[0].1,
                        format!("MFT record {n} is not a valid record after the replay: {e}"),
                    )
                })?;
                editor.write_record_at(&rec, &page.pieces, label)?;
            }
            PageKey::IndexBlock { .. } => {
                let mut bytes = page.bytes;
                crate::fixup::apply_write(&mut bytes, &key.describe())?;
                editor.write_pieces(&page.pieces, &bytes, &page.owner, &label)?;
            }
            PageKey::StreamPage { .. } => {
                editor.write_pieces(&page.pieces, &page.bytes, &page.owner, &label)?;
            }
        }
    }

    finish_journal(editor, journal, live, last_lsn)?;
    Ok(summary)
}

/// Marks the journal clean the way a dismount does (§10.5): both restart pages get the chosen
/// page's area with the clean flag and the end of the log as current LSN, so Windows neither
/// replays it again nor numbers new records below the LSNs the replay stamped.
fn finish_journal<R: ReadAt + WriteAt>(
    editor: &mut Editor<'_, R>,
    journal: &Journal,
    live: &LiveLog,
    last_lsn: u64,
) -> Result<(), NtfsError> {
    let restart = journal.restart.as_ref().expect("checked by the caller");
    let vol = editor.volume();
    let log = log_stream(vol)?;
    let size = restart.system_page_size as u64;
    let mut page = vol.read_stream(&log, restart.offset, size as usize)?;
    crate::fixup::apply_read(&mut page, "the $LogFile restart page")?;
    let area = restart.restart_area_offset as usize;
    let last_length = live
        .records
        .last()
        .map_or(0, |r| r.header.client_data_length);
    crate::bytes::put_u64(&mut page, area + restart_area::CURRENT_LSN, last_lsn);
    let flags = u16_at(&page, area + restart_area::FLAGS)? | restart_area::FLAG_VOLUME_IS_CLEAN;
    crate::bytes::put_u16(&mut page, area + restart_area::FLAGS, flags);
    crate::bytes::put_u32(
        &mut page,
        area + restart_area::LAST_LSN_DATA_LENGTH,
        last_length,
    );
    let owner = StreamRef::new(RECORD_LOGFILE, AttributeType::Data, "");
    if restart.version == LfsVersion::V2_0 {
        // Windows never leaves a clean 2.0 log: its dismount downgrades the log to 1.1 (§17.1).
        crate::bytes::put_u16(&mut page, restart_page::MAJOR_VERSION, 1);
        crate::bytes::put_u16(&mut page, restart_page::MINOR_VERSION, 1);
        downgrade_log_pages(editor, &log, live, &owner)?;
    }
    crate::fixup::apply_write(&mut page, "the $LogFile restart page")?;
    for (copy, offset) in [(RestartCopy::First, 0), (RestartCopy::Second, size)] {
        let pieces = stream_pieces(vol, &log, offset, size, Structure::LogFile)?;
        editor.write_pieces(
            &pieces,
            &page,
            &owner,
            &ChangedStructure::JournalMarkedClean {
                copy,
                lsn: last_lsn,
            },
        )?;
    }
    Ok(())
}

/// A 2.0 log is left clean as 1.1, whose reader wraps to page 4 where the 2.0 buffer pages lie:
/// a live span that wraps past the end of `$LogFile` could not be read back, so it is refused.
fn refuse_wrapped_v2_log(live: &LiveLog) -> Result<(), NtfsError> {
    let g = live.geometry;
    let lsns: Vec<u64> = live.records.iter().map(LogRecord::lsn).collect();
    let end_page = live.end_page.as_ref().map(|p| end_page_offset(p, &g));
    match wrap_in_live_span(&g, &lsns, end_page) {
        Some(lsn) => Err(refuse(
            lsn,
            Operation::Noop,
            "the live part of this LFS 2.0 journal wraps past the end of $LogFile; kaifuku leaves a 2.0 journal clean as version 1.1 (as Windows does), and a 1.1 reader would continue at page 4, where the 2.0 buffer pages lie",
        )),
        None => Ok(()),
    }
}

/// Where the records `lsns` (in LSN order, the last one ending in the page at `end_page`) pass
/// from the end of the log back to its first page: the first record after the wrap, or the last
/// record when only its end wrapped. `None` when the span does not wrap.
fn wrap_in_live_span(
    g: &super::restart::LsnGeometry,
    lsns: &[u64],
    end_page: Option<u64>,
) -> Option<u64> {
    if let Some(pair) = lsns
        .windows(2)
        .find(|pair| g.offset(pair[1]) <= g.offset(pair[0]))
    {
        return Some(pair[1]);
    }
    let (first, last) = (lsns.first()?, lsns.last()?);
    let first_page = g.offset(*first) - g.offset(*first) % g.page_size;
    end_page.filter(|end| *end < first_page).map(|_| *last)
}

/// The offset of the page a record page stands for: its own, or the 0x3C target of a 2.0
/// buffer page.
fn end_page_offset(page: &super::page::RecordPage, g: &super::restart::LsnGeometry) -> u64 {
    if page.read_from < g.first_page {
        page.header.buffer_target_offset as u64
    } else {
        page.read_from
    }
}

/// The record pages of a 2.0 log written as Windows writes them when it downgrades the log to
/// 1.1 (§17.5): every newer buffer copy the reader used written in place (0x3C = 0), then the
/// page holding the end of the log as the two 1.1 tail copies in pages 2 and 3 (0x08 = its file
/// offset, one-page I/O). The other buffer pages stay as they are, as Windows leaves them.
fn downgrade_log_pages<R: ReadAt + WriteAt>(
    editor: &mut Editor<'_, R>,
    log: &Stream,
    live: &LiveLog,
    owner: &StreamRef,
) -> Result<(), NtfsError> {
    use crate::layout::record_page;
    let g = live.geometry;
    let vol = editor.volume();
    let mut in_place: BTreeMap<u64, (u64, Vec<u8>)> = BTreeMap::new();
    for copy in &live.buffer_copies {
        let target = copy.header.buffer_target_offset as u64;
        let mut bytes = copy.bytes.clone();
        crate::bytes::put_u32(&mut bytes, record_page::BUFFER_TARGET_OFFSET, 0);
        in_place.insert(target, (copy.read_from, bytes));
    }
    let end = live.end_page.as_ref().ok_or_else(|| {
        refuse(
            live.last_lsn(),
            Operation::Noop,
            "the page holding the end of the LFS 2.0 journal was not found",
        )
    })?;
    let end_offset = end_page_offset(end, &g);
    let mut last_page = match in_place.get(&end_offset) {
        Some((_, bytes)) => bytes.clone(),
        None => end.bytes.clone(),
    };
    let mut writes: Vec<(u64, u64, bool, Vec<u8>)> = Vec::new();
    for (target, (buffer, mut bytes)) in in_place {
        crate::fixup::apply_write(&mut bytes, "a $LogFile record page")?;
        writes.push((target, buffer, false, bytes));
    }
    crate::bytes::put_u64(&mut last_page, record_page::LAST_LSN, end_offset);
    crate::bytes::put_u32(&mut last_page, record_page::BUFFER_TARGET_OFFSET, 0);
    crate::bytes::put_u16(&mut last_page, record_page::PAGE_COUNT, 1);
    crate::bytes::put_u16(&mut last_page, record_page::PAGE_POSITION, 1);
    crate::fixup::apply_write(&mut last_page, "a $LogFile tail copy")?;
    for tail in [2, 3] {
        writes.push((tail * g.page_size, end_offset, true, last_page.clone()));
    }
    for (offset, copy_of, tail_copy, bytes) in writes {
        let pieces = stream_pieces(vol, log, offset, g.page_size, Structure::LogFile)?;
        editor.write_pieces(
            &pieces,
            &bytes,
            owner,
            &ChangedStructure::JournalLogPage {
                offset,
                copy_of,
                tail_copy,
            },
        )?;
    }
    Ok(())
}

/// Reads the journal of `vol` through its reader (the block cache in kaifuku).
pub fn read_volume_journal<R: ReadAt>(vol: &crate::Volume<R>) -> Result<Journal, NtfsError> {
    let log = log_stream(vol)?;
    super::read_journal(log.data_size, &mut |offset, len| {
        vol.read_stream(&log, offset, len)
    })
}

fn log_stream<R: ReadAt>(vol: &crate::Volume<R>) -> Result<Stream, NtfsError> {
    let rec = vol.read_record(RECORD_LOGFILE)?;
    match vol.value(&rec, AttributeType::Data, "")? {
        Some(AttrValue::NonResident(s)) => Ok(s),
        _ => Err(NtfsError::damaged(
            Structure::LogFile,
            "$LogFile has no non-resident data",
        )),
    }
}

/// Where `len` bytes at `offset` of a stream lie on the volume.
fn stream_pieces<R: ReadAt>(
    vol: &crate::Volume<R>,
    stream: &Stream,
    offset: u64,
    len: u64,
    structure: Structure,
) -> Result<Vec<(u64, u64)>, NtfsError> {
    map_range(&stream.runs, vol.cluster_size(), offset, len)?
        .into_iter()
        .map(|(o, n)| {
            o.map(|o| (o, n)).ok_or_else(|| {
                NtfsError::damaged(structure, "a page the journal changes is sparse")
            })
        })
        .collect()
}

/// The page a record changes.
fn page_key(
    record: &LogRecord,
    target: &Target,
    geometry: TargetGeometry,
) -> Result<PageKey, NtfsError> {
    let op = record.operation.as_ref().expect("client record");
    let lsn = record.lsn();
    let named = if op.redo.page_kind().is_some() {
        op.redo
    } else {
        op.undo
    };
    match target {
        Target::FileRecord { record: n, .. } => Ok(PageKey::Record(*n)),
        Target::IndexBlock(block) => Ok(PageKey::IndexBlock {
            record: block.record,
            name: block.name.clone(),
            offset: block
                .vcn
                .saturating_mul(geometry.cluster_size as u64)
                .saturating_add(block.block_offset as u64 * 512),
        }),
        Target::BitmapBits(_) | Target::StreamBytes { .. } => stream_key(record, target),
        Target::None => Err(refuse(lsn, named, "the record's target cannot be resolved")),
        Target::UnknownAttribute { slot, .. } => Err(refuse(
            lsn,
            named,
            format!("the record names open attribute {slot:#x}, which neither the checkpoint nor an open record defines"),
        )),
        Target::UnexpectedAttribute {
            record,
            attribute_type,
            ..
        } => Err(refuse(
            lsn,
            named,
            format!("a file record operation on attribute {attribute_type:#x} of record {record}, not on $MFT's data"),
        )),
    }
}

/// The stream page of a bitmap or stream record: its attribute comes from the open attribute
/// table, which `target` resolved.
fn stream_key(record: &LogRecord, target: &Target) -> Result<PageKey, NtfsError> {
    let op = record.operation.as_ref().expect("client record");
    let record_lsn = record.lsn();
    let (record_no, attribute_type, name) = match target {
        Target::BitmapBits(range) => match &range.bitmap {
            super::analysis::Bitmap::Clusters => (RECORD_BITMAP, AttributeType::Data.code(), String::new()),
            super::analysis::Bitmap::MftRecords => {
                (RECORD_MFT, AttributeType::Bitmap.code(), String::new())
            }
            super::analysis::Bitmap::IndexBlocks { record, name } => {
                (*record, AttributeType::Bitmap.code(), name.clone())
            }
            super::analysis::Bitmap::Other {
                record,
                attribute_type,
            } => {
                return Err(refuse(
                    record_lsn,
                    op.redo,
                    format!("bits of attribute {attribute_type:#x} of record {record}, which is not a bitmap"),
                ))
            }
        },
        Target::StreamBytes {
            record: r,
            attribute_type,
            name,
            ..
        } => (*r, *attribute_type, name.clone()),
        _ => unreachable!("called for stream targets"),
    };
    Ok(PageKey::StreamPage {
        record: record_no,
        attribute_type,
        name,
        vcn: op.target_vcn,
    })
}

/// Reads the page a record changes, once, and checks that the log's LCNs are where the volume
/// maps the page.
fn load_page<R: ReadAt + WriteAt>(
    editor: &Editor<'_, R>,
    pages: &mut BTreeMap<PageKey, Page>,
    key: &PageKey,
    record: &LogRecord,
) -> Result<(), NtfsError> {
    let op = record.operation.as_ref().expect("client record");
    let lsn = record.lsn();
    let named = if op.redo.page_kind().is_some() {
        op.redo
    } else {
        op.undo
    };
    let vol = editor.volume();
    let cs = vol.cluster_size();
    // The log's LCNs must be the volume's: a page that moved since is not replayed by guess.
    let check_lcns = |runs: &[crate::runlist::Run]| -> Result<(), NtfsError> {
        let mapped = map_range(
            runs,
            cs,
            op.target_vcn.saturating_mul(cs),
            cs * op.lcns.len() as u64,
        )?;
        let lcns: Vec<Option<u64>> = mapped
            .iter()
            .flat_map(|(o, n)| (0..n / cs).map(move |k| o.map(|o| o / cs + k)))
            .collect();
        if lcns
            .iter()
            .copied()
            .collect::<Option<Vec<u64>>>()
            .as_deref()
            != Some(&op.lcns[..])
        {
            return Err(refuse(
                lsn,
                named,
                format!(
                    "the log places {} at LCNs {:?}, the volume at {:?}",
                    key.describe(),
                    op.lcns,
                    lcns
                ),
            ));
        }
        Ok(())
    };
    match key {
        PageKey::Record(n) => {
            check_lcns(&vol.mft_stream().runs)?;
            if pages.contains_key(key) {
                return Ok(());
            }
            // Inside `$MFT`'s allocation: a replay may grow its data over the record.
            let rs = vol.boot().file_record_size as u64;
            let mft = vol.mft_stream();
            if (n + 1) * rs > mft.allocated_size {
                return Err(refuse(
                    lsn,
                    named,
                    format!("MFT record {n} lies past $MFT's allocation"),
                ));
            }
            let pieces = stream_pieces(vol, mft, n * rs, rs, Structure::Mft)?;
            let mut bytes = Vec::with_capacity(rs as usize);
            for (offset, len) in &pieces {
                let mut piece = vec![0u8; *len as usize];
                vol.reader()
                    .read_at(*offset, &mut piece)
                    .map_err(NtfsError::io("reading an MFT record"))?;
                bytes.extend_from_slice(&piece);
            }
            let protected = bytes.starts_with(b"FILE");
            if protected {
                crate::fixup::apply_read(&mut bytes, &format!("MFT record {n}")).map_err(|e| {
                    refuse(
                        lsn,
                        named,
                        format!("MFT record {n} is torn or damaged: {e}"),
                    )
                })?;
            }
            let disk_lsn = if protected {
                u64_at(&bytes, at::PAGE_LSN)?
            } else {
                0
            };
            pages.insert(
                key.clone(),
                Page {
                    pieces,
                    bytes,
                    protected,
                    disk_lsn,
                    owner: StreamRef::new(RECORD_MFT, AttributeType::Data, ""),
                    applied: Vec::new(),
                },
            );
        }
        PageKey::IndexBlock {
            record: n,
            name,
            offset,
        } => {
            let base = vol.read_record(*n)?;
            let Some(AttrValue::NonResident(stream)) =
                vol.value(&base, AttributeType::IndexAllocation, name)?
            else {
                return Err(refuse(
                    lsn,
                    named,
                    format!("record {n} has no $INDEX_ALLOCATION {name} for the log to change"),
                ));
            };
            check_lcns(&stream.runs)?;
            if pages.contains_key(key) {
                return Ok(());
            }
            let size = vol.boot().index_record_size as u64;
            let pieces = stream_pieces(vol, &stream, *offset, size, Structure::IndexAllocation)?;
            let mut bytes = vol.read_stream(&stream, *offset, size as usize)?;
            let protected = bytes.starts_with(b"INDX");
            if protected {
                crate::fixup::apply_read(&mut bytes, &key.describe()).map_err(|e| {
                    refuse(
                        lsn,
                        named,
                        format!("{} is torn or damaged: {e}", key.describe()),
                    )
                })?;
            }
            let disk_lsn = if protected {
                u64_at(&bytes, at::PAGE_LSN)?
            } else {
                0
            };
            pages.insert(
                key.clone(),
                Page {
                    pieces,
                    bytes,
                    protected,
                    disk_lsn,
                    owner: StreamRef::new(*n, AttributeType::IndexAllocation, name),
                    applied: Vec::new(),
                },
            );
        }
        PageKey::StreamPage {
            record: n,
            attribute_type,
            name,
            vcn,
        } => {
            let base = vol.read_record(*n)?;
            let kind = AttributeType::from_code(*attribute_type).ok_or_else(|| {
                refuse(
                    lsn,
                    named,
                    format!("attribute type {attribute_type:#x} is unknown"),
                )
            })?;
            let Some(AttrValue::NonResident(stream)) = vol.value(&base, kind, name)? else {
                return Err(refuse(
                    lsn,
                    named,
                    format!("{} is not a non-resident stream", key.describe()),
                ));
            };
            check_lcns(&stream.runs)?;
            if pages.contains_key(key) {
                return Ok(());
            }
            // The page, or the part of it inside the stream's data.
            let start = vcn.saturating_mul(cs);
            let len = stream.data_size.saturating_sub(start).min(cs);
            if len == 0 {
                return Err(refuse(
                    lsn,
                    named,
                    format!("{} lies past the stream's data", key.describe()),
                ));
            }
            let pieces = stream_pieces(vol, &stream, start, len, Structure::Bitmap)?;
            let bytes = vol.read_stream(&stream, start, len as usize)?;
            pages.insert(
                key.clone(),
                Page {
                    pieces,
                    bytes,
                    protected: false,
                    disk_lsn: 0,
                    owner: StreamRef::new(*n, kind, name),
                    applied: Vec::new(),
                },
            );
        }
    }
    Ok(())
}

/// Applies one operation (§9.2) with `data` (the redo or undo bytes) to a page in memory.
fn apply(
    page: &mut Page,
    key: &PageKey,
    record: &LogRecord,
    operation: Operation,
    data: &[u8],
    lsn: u64,
) -> Result<(), NtfsError> {
    let op = record.operation.as_ref().expect("client record");
    let ro = op.record_offset as usize;
    let ao = op.attribute_offset as usize;
    let bad = |detail: String| refuse(lsn, operation, format!("{}: {detail}", key.describe()));
    let b = &mut page.bytes;
    let is_record = matches!(key, PageKey::Record(_));
    let is_block = matches!(key, PageKey::IndexBlock { .. });
    let is_stream = matches!(key, PageKey::StreamPage { .. });
    use Operation as O;
    match operation {
        // The undo of a freeing (§9.2): the header's first bytes as they were, in use again.
        O::InitializeFileRecordSegment
            if is_record && page.protected && data.len() == at::DEALLOCATE_UNDO_HEADER =>
        {
            if !data.starts_with(b"FILE") || u16_at(data, RECORD_FLAGS)? & FLAG_IN_USE == 0 {
                return Err(bad("a record header that is not in use".into()));
            }
            if u16_at(b, RECORD_FLAGS)? & FLAG_IN_USE != 0 {
                return Err(bad("the record to restore is still in use".into()));
            }
            b[..data.len()].copy_from_slice(data);
        }
        O::InitializeFileRecordSegment if is_record => {
            if data.len() < at::HEADER_MIN || data.len() > b.len() || !data.starts_with(b"FILE") {
                return Err(bad(format!("a {}-byte record image", data.len())));
            }
            b[..data.len()].copy_from_slice(data);
        }
        _ if is_record && !page.protected => {
            return Err(bad("the record is not initialized".into()));
        }
        // Freeing a record (§9.2, §13 item 3): the in-use flag cleared and the sequence number
        // incremented as the delete does (`sequence_after_free`), so that no reference to the
        // freed file names the record's next file. The link count and attributes stay: Windows logs no
        // change of them with the freeing.
        O::DeallocateFileRecordSegment if is_record => {
            if data.len() > at::DEALLOCATE_MAX_ZEROS || data.iter().any(|&x| x != 0) {
                return Err(bad(format!(
                    "{} bytes logged with the freeing of a record",
                    data.len()
                )));
            }
            let flags = u16_at(b, RECORD_FLAGS)?;
            if flags & FLAG_IN_USE == 0 {
                return Err(bad("the record to free is not in use".into()));
            }
            crate::bytes::put_u16(b, RECORD_FLAGS, flags & !FLAG_IN_USE);
            let sequence = crate::record::sequence_after_free(u16_at(b, SEQUENCE)?);
            crate::bytes::put_u16(b, SEQUENCE, sequence);
        }
        O::CreateAttribute if is_record => {
            let length = u32_at(data, at::ATTR_LENGTH)? as usize;
            if length != data.len() || length < 0x18 {
                return Err(bad(format!(
                    "an attribute of {length} bytes in {} bytes",
                    data.len()
                )));
            }
            attribute_boundary(b, ro, true).map_err(&bad)?;
            insert(b, ro, data).map_err(&bad)?;
            let instance = u16_at(data, at::ATTR_INSTANCE)?;
            if instance >= u16_at(b, at::NEXT_INSTANCE)? {
                crate::bytes::put_u16(b, at::NEXT_INSTANCE, instance + 1);
            }
            if data[at::ATTR_NON_RESIDENT] == 0
                && u32_at(data, 0)? == AttributeType::FileName.code()
                && data[at::RESIDENT_FLAGS] & at::RESIDENT_INDEXED != 0
            {
                let links = u16_at(b, at::LINK_COUNT)?;
                crate::bytes::put_u16(b, at::LINK_COUNT, links + 1);
            }
        }
        O::DeleteAttribute if is_record => {
            let length = attribute_boundary(b, ro, false).map_err(&bad)?;
            if u32_at(b, ro)? == AttributeType::FileName.code()
                && b[ro + at::ATTR_NON_RESIDENT] == 0
                && b[ro + at::RESIDENT_FLAGS] & at::RESIDENT_INDEXED != 0
            {
                let links = u16_at(b, at::LINK_COUNT)?;
                crate::bytes::put_u16(b, at::LINK_COUNT, links.saturating_sub(1));
            }
            remove(b, ro, length).map_err(&bad)?;
        }
        O::UpdateResidentValue if is_record => {
            let length = attribute_boundary(b, ro, false).map_err(&bad)?;
            let (value_offset, value_length) = resident_value(b, ro, length).map_err(&bad)?;
            let other = if operation == op.redo {
                op.undo_length
            } else {
                op.redo_length
            } as usize;
            if ao < value_offset {
                return Err(bad(format!(
                    "bytes at {ao:#x}, before the value at {value_offset:#x}"
                )));
            }
            if data.len() == other {
                if ao + data.len() > value_offset + value_length {
                    return Err(bad("the bytes end past the value".into()));
                }
                let start = ro + ao;
                b[start..start + data.len()].copy_from_slice(data);
            } else {
                // The value now ends with these bytes.
                let new_value_length = ao + data.len() - value_offset;
                let new_attr_length = align8(ao + data.len());
                resize_attribute(b, ro, length, new_attr_length).map_err(&bad)?;
                let start = ro + ao;
                b[start..start + data.len()].copy_from_slice(data);
                let pad_end = ro + new_attr_length;
                b[start + data.len()..pad_end].fill(0);
                crate::bytes::put_u32(b, ro + at::VALUE_LENGTH, new_value_length as u32);
            }
        }
        O::UpdateMappingPairs if is_record => {
            let length = attribute_boundary(b, ro, false).map_err(&bad)?;
            let pairs = non_resident(b, ro, length).map_err(&bad)?;
            if ao < pairs {
                return Err(bad(format!(
                    "bytes at {ao:#x}, before the run list at {pairs:#x}"
                )));
            }
            let new_attr_length = align8(ao + data.len());
            resize_attribute(b, ro, length, new_attr_length).map_err(&bad)?;
            let start = ro + ao;
            b[start..start + data.len()].copy_from_slice(data);
            b[start + data.len()..ro + new_attr_length].fill(0);
            let lowest = u64_at(b, ro + at::LOWEST_VCN)?;
            let runs = crate::runlist::decode_runlist(&b[ro + pairs..ro + new_attr_length], lowest)
                .map_err(|e| bad(format!("the new run list does not decode: {e}")))?;
            let next = runs.last().map_or(lowest, |r| r.vcn + r.length);
            crate::bytes::put_u64(b, ro + at::HIGHEST_VCN, next.saturating_sub(1));
        }
        O::SetNewAttributeSizes if is_record => {
            let length = attribute_boundary(b, ro, false).map_err(&bad)?;
            let pairs = non_resident(b, ro, length).map_err(&bad)?;
            if data.len() != 0x18 && data.len() != 0x20 {
                return Err(bad(format!("{} bytes of sizes", data.len())));
            }
            crate::bytes::put_u64(b, ro + at::ALLOCATED_SIZE, u64_at(data, 0)?);
            crate::bytes::put_u64(b, ro + at::INITIALIZED_SIZE, u64_at(data, 8)?);
            crate::bytes::put_u64(b, ro + at::DATA_SIZE, u64_at(data, 16)?);
            if data.len() == 0x20 {
                if pairs < at::COMPRESSED_SIZE + 8 {
                    return Err(bad("the attribute has no total allocated size".into()));
                }
                crate::bytes::put_u64(b, ro + at::COMPRESSED_SIZE, u64_at(data, 24)?);
            }
        }
        O::ZeroEndOfFileRecord if is_record => {
            let len = op.redo_length as usize;
            if ro + len > b.len() {
                return Err(bad("the bytes to zero end past the record".into()));
            }
            b[ro..ro + len].fill(0);
        }
        O::AddIndexEntryRoot
        | O::DeleteIndexEntryRoot
        | O::SetIndexEntryVcnRoot
        | O::UpdateFileNameRoot
        | O::UpdateRecordDataRoot
            if is_record =>
        {
            let length = attribute_boundary(b, ro, false).map_err(&bad)?;
            if u32_at(b, ro)? != AttributeType::IndexRoot.code() {
                return Err(bad(format!("no $INDEX_ROOT at {ro:#x}")));
            }
            let (value_offset, value_length) = resident_value(b, ro, length).map_err(&bad)?;
            let header = ro + value_offset + at::ROOT_INDEX_HEADER;
            if value_length < at::ROOT_INDEX_HEADER + 0x10 {
                return Err(bad(format!("an $INDEX_ROOT value of {value_length} bytes")));
            }
            let entry = ro + ao;
            let limit = ro + value_offset + value_length;
            index_entry(b, header, entry, operation == O::AddIndexEntryRoot, limit)
                .map_err(&bad)?;
            match operation {
                O::AddIndexEntryRoot => {
                    check_entry_bytes(data).map_err(&bad)?;
                    insert(b, entry, data).map_err(&bad)?;
                    grow_root(b, ro, header, data.len() as i64)?;
                }
                O::DeleteIndexEntryRoot => {
                    let length = u16_at(b, entry + at::ENTRY_LENGTH)? as usize;
                    remove(b, entry, length).map_err(&bad)?;
                    grow_root(b, ro, header, -(length as i64))?;
                }
                _ => entry_update(b, entry, operation, data).map_err(&bad)?,
            }
        }
        O::AddIndexEntryAllocation
        | O::DeleteIndexEntryAllocation
        | O::SetIndexEntryVcnAllocation
        | O::UpdateFileNameAllocation
        | O::UpdateRecordDataAllocation
        | O::WriteEndOfIndexBuffer
            if is_block =>
        {
            if !page.protected {
                return Err(bad("the block is not an INDX block".into()));
            }
            let header = at::BLOCK_INDEX_HEADER;
            let entry = ao;
            let entries_end = header + u32_at(b, header + at::ENTRIES_LENGTH)? as usize;
            let allocated = header + u32_at(b, header + at::ENTRIES_ALLOCATED)? as usize;
            match operation {
                O::AddIndexEntryAllocation => {
                    index_entry(b, header, entry, true, b.len()).map_err(&bad)?;
                    check_entry_bytes(data).map_err(&bad)?;
                    if entries_end + data.len() > allocated.min(b.len()) {
                        return Err(bad("the entry does not fit the block".into()));
                    }
                    b.copy_within(entry..entries_end, entry + data.len());
                    b[entry..entry + data.len()].copy_from_slice(data);
                    let length = u32_at(b, header + at::ENTRIES_LENGTH)?;
                    crate::bytes::put_u32(
                        b,
                        header + at::ENTRIES_LENGTH,
                        length + data.len() as u32,
                    );
                }
                O::DeleteIndexEntryAllocation => {
                    index_entry(b, header, entry, false, b.len()).map_err(&bad)?;
                    let length = u16_at(b, entry + at::ENTRY_LENGTH)? as usize;
                    b.copy_within(entry + length..entries_end, entry);
                    b[entries_end - length..entries_end].fill(0);
                    let total = u32_at(b, header + at::ENTRIES_LENGTH)?;
                    crate::bytes::put_u32(b, header + at::ENTRIES_LENGTH, total - length as u32);
                }
                O::WriteEndOfIndexBuffer => {
                    index_entry(b, header, entry, true, b.len()).map_err(&bad)?;
                    if entry + data.len() > allocated.min(b.len()) {
                        return Err(bad("the entries end past the block's allocation".into()));
                    }
                    b[entry..entry + data.len()].copy_from_slice(data);
                    crate::bytes::put_u32(
                        b,
                        header + at::ENTRIES_LENGTH,
                        (entry - header + data.len()) as u32,
                    );
                }
                _ => {
                    index_entry(b, header, entry, false, b.len()).map_err(&bad)?;
                    entry_update(b, entry, operation, data).map_err(&bad)?;
                }
            }
        }
        O::SetBitsInNonresidentBitMap | O::ClearBitsInNonresidentBitMap if is_stream => {
            let first = u32_at(data, 0)? as usize;
            let count = u32_at(data, 4)? as usize;
            let base = ro * 8;
            if (base + first + count).div_ceil(8) > b.len() || data.len() < 8 {
                return Err(bad(format!("bits {first}+{count} past the page")));
            }
            for bit in base + first..base + first + count {
                if operation == O::SetBitsInNonresidentBitMap {
                    b[bit / 8] |= 1 << (bit % 8);
                } else {
                    b[bit / 8] &= !(1 << (bit % 8));
                }
            }
        }
        O::UpdateNonresidentValue if is_stream => {
            if ro + data.len() > b.len() {
                return Err(bad("the bytes end past the page".into()));
            }
            b[ro..ro + data.len()].copy_from_slice(data);
        }
        _ => {
            return Err(bad(
                "the replay does not apply this operation to this kind of page".into(),
            ))
        }
    }
    if operation == O::InitializeFileRecordSegment {
        // A record image makes the record a protected block with an LSN, even one that was
        // never initialized before.
        page.protected = true;
    }
    Ok(())
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Checks that `offset` is where an attribute starts in a record (or, when `insertion`, where
/// one may be inserted: an attribute's start or the end marker), every attribute before it and
/// itself whole inside the bytes in use; returns its length (0 at the end marker).
fn attribute_boundary(b: &[u8], offset: usize, insertion: bool) -> Result<usize, String> {
    let e = |x: Result<u32, NtfsError>| x.map_err(|e| e.to_string());
    let mut at_ = e(u16_at(b, at::FIRST_ATTRIBUTE).map(u32::from))? as usize;
    let used = e(u32_at(b, at::BYTES_IN_USE))? as usize;
    if used > b.len() {
        return Err(format!("{used} bytes in use in a {}-byte record", b.len()));
    }
    while at_ + 8 <= used {
        let t = e(u32_at(b, at_))?;
        if t == 0xFFFF_FFFF {
            if at_ == offset && insertion {
                return Ok(0);
            }
            break;
        }
        let length = e(u32_at(b, at_ + at::ATTR_LENGTH))? as usize;
        if length < 0x18 || !length.is_multiple_of(8) || at_ + length > used {
            return Err(format!("an attribute at {at_:#x} of {length} bytes"));
        }
        if at_ == offset {
            return Ok(length);
        }
        at_ += length;
    }
    Err(format!("no attribute starts at {offset:#x}"))
}

/// The resident attribute at `ro` (of `length` bytes): its value's offset and length, inside it.
fn resident_value(b: &[u8], ro: usize, length: usize) -> Result<(usize, usize), String> {
    let e = |x: Result<u32, NtfsError>| x.map_err(|e| e.to_string());
    if b[ro + at::ATTR_NON_RESIDENT] != 0 {
        return Err("the attribute is not resident".into());
    }
    let value_offset = e(u16_at(b, ro + at::VALUE_OFFSET).map(u32::from))? as usize;
    let value_length = e(u32_at(b, ro + at::VALUE_LENGTH))? as usize;
    if value_offset < 0x18 || value_offset + value_length > length {
        return Err(format!(
            "a value of {value_length} bytes at {value_offset:#x} in a {length}-byte attribute"
        ));
    }
    Ok((value_offset, value_length))
}

/// Checks that the attribute at `ro` (of `length` bytes) is non-resident with its sizes and run
/// list inside it; returns the run list's offset.
fn non_resident(b: &[u8], ro: usize, length: usize) -> Result<usize, String> {
    if b[ro + at::ATTR_NON_RESIDENT] == 0 {
        return Err("the attribute is resident".into());
    }
    let pairs = u16_at(b, ro + at::MAPPING_PAIRS).map_err(|e| e.to_string())? as usize;
    if length < at::COMPRESSED_SIZE || pairs < at::COMPRESSED_SIZE || pairs > length {
        return Err(format!(
            "a non-resident attribute of {length} bytes with its run list at {pairs:#x}"
        ));
    }
    Ok(pairs)
}

/// Inserts bytes into a record at `offset`, moving the rest of its used part up.
fn insert(b: &mut [u8], offset: usize, data: &[u8]) -> Result<(), String> {
    let used = u32_at(b, at::BYTES_IN_USE).map_err(|e| e.to_string())? as usize;
    let allocated = u32_at(b, at::BYTES_ALLOCATED).map_err(|e| e.to_string())? as usize;
    if used + data.len() > allocated.min(b.len()) || offset > used {
        return Err(format!(
            "{} bytes do not fit the record ({used} of {allocated} in use)",
            data.len()
        ));
    }
    b.copy_within(offset..used, offset + data.len());
    b[offset..offset + data.len()].copy_from_slice(data);
    crate::bytes::put_u32(b, at::BYTES_IN_USE, (used + data.len()) as u32);
    Ok(())
}

/// Removes `length` bytes at `offset` from a record's used part.
fn remove(b: &mut [u8], offset: usize, length: usize) -> Result<(), String> {
    let used = u32_at(b, at::BYTES_IN_USE).map_err(|e| e.to_string())? as usize;
    if offset + length > used || used > b.len() {
        return Err(format!("{length} bytes at {offset:#x} are not in use"));
    }
    b.copy_within(offset + length..used, offset);
    b[used - length..used].fill(0);
    crate::bytes::put_u32(b, at::BYTES_IN_USE, (used - length) as u32);
    Ok(())
}

/// Changes the length of the attribute at `ro`, moving what follows.
fn resize_attribute(b: &mut [u8], ro: usize, old: usize, new: usize) -> Result<(), String> {
    if new > old {
        let gap = vec![0u8; new - old];
        insert(b, ro + old, &gap)?;
    } else if new < old {
        remove(b, ro + new, old - new)?;
    }
    crate::bytes::put_u32(b, ro + at::ATTR_LENGTH, new as u32);
    Ok(())
}

/// An `$INDEX_ROOT` grows (or shrinks) by `delta` bytes: its entries, their allocation, its value
/// and the attribute (the record's bytes in use were adjusted by the insertion).
fn grow_root(b: &mut [u8], ro: usize, header: usize, delta: i64) -> Result<(), NtfsError> {
    let add = |b: &mut [u8], at_: usize| -> Result<(), NtfsError> {
        let v = u32_at(b, at_)? as i64 + delta;
        crate::bytes::put_u32(b, at_, v as u32);
        Ok(())
    };
    add(b, header + at::ENTRIES_LENGTH)?;
    add(b, header + at::ENTRIES_ALLOCATED)?;
    add(b, ro + at::VALUE_LENGTH)?;
    add(b, ro + at::ATTR_LENGTH)?;
    Ok(())
}

/// Checks that `entry` is where an index entry starts under the index header at `header`, its
/// entries (each whole) ending by `limit`; insertions land at an entry's start too, the end
/// entry's included, since it is always last. Returns the entry's length.
fn index_entry(
    b: &[u8],
    header: usize,
    entry: usize,
    insertion: bool,
    limit: usize,
) -> Result<usize, String> {
    let e = |x: Result<u32, NtfsError>| x.map_err(|e| e.to_string());
    let mut at_ = header + e(u32_at(b, header + at::ENTRIES_OFFSET))? as usize;
    let end = header + e(u32_at(b, header + at::ENTRIES_LENGTH))? as usize;
    if end > limit.min(b.len()) {
        return Err(format!(
            "the index entries end at {end:#x}, past {limit:#x}"
        ));
    }
    while at_ + 0x10 <= end {
        let flags = e(u16_at(b, at_ + at::ENTRY_FLAGS).map(u32::from))? as u16;
        let length = e(u16_at(b, at_ + at::ENTRY_LENGTH).map(u32::from))? as usize;
        if length < 0x10 || !length.is_multiple_of(8) || at_ + length > end {
            return Err(format!("an index entry at {at_:#x} of {length} bytes"));
        }
        if at_ == entry && (insertion || flags & 0x02 == 0) {
            return Ok(length);
        }
        if flags & 0x02 != 0 {
            break;
        }
        at_ += length;
    }
    Err(format!("no index entry starts at {entry:#x}"))
}

/// An index entry's bytes as logged: its length field is its length.
fn check_entry_bytes(data: &[u8]) -> Result<(), String> {
    let length = u16_at(data, at::ENTRY_LENGTH).map_err(|e| e.to_string())? as usize;
    if length != data.len() || length < 0x10 || !length.is_multiple_of(8) {
        return Err(format!(
            "an index entry of {length} bytes logged in {}",
            data.len()
        ));
    }
    Ok(())
}

/// The in-place updates of one index entry.
fn entry_update(
    b: &mut [u8],
    entry: usize,
    operation: Operation,
    data: &[u8],
) -> Result<(), String> {
    let e = |x: Result<u16, NtfsError>| x.map_err(|e| e.to_string());
    let length = e(u16_at(b, entry + at::ENTRY_LENGTH))? as usize;
    let (start, len) = match operation {
        Operation::SetIndexEntryVcnRoot | Operation::SetIndexEntryVcnAllocation => {
            if e(u16_at(b, entry + at::ENTRY_FLAGS))? & at::ENTRY_HAS_CHILD == 0 || data.len() != 8
            {
                return Err("the entry has no child VCN".into());
            }
            (entry + length - 8, 8)
        }
        Operation::UpdateFileNameRoot | Operation::UpdateFileNameAllocation => {
            if data.len() != at::DUPLICATED_INFO_LENGTH {
                return Err(format!("{} bytes of duplicated information", data.len()));
            }
            (entry + at::ENTRY_DUPLICATED_INFO, data.len())
        }
        Operation::UpdateRecordDataRoot | Operation::UpdateRecordDataAllocation => {
            let data_offset = e(u16_at(b, entry + at::ENTRY_DATA_OFFSET))? as usize;
            (entry + data_offset, data.len())
        }
        _ => return Err("not an entry update".into()),
    };
    if start + len > entry + length {
        return Err("the bytes end past the entry".into());
    }
    b[start..start + len].copy_from_slice(data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logfile::restart::LsnGeometry;

    /// A 1 MiB log of 4 KiB pages from page 34 (2.0), 44 sequence bits (§5.4).
    fn geometry() -> LsnGeometry {
        LsnGeometry {
            file_data_bits: 20,
            page_size: 4096,
            first_page: 34 * 4096,
            end: 1 << 20,
            data_offset: 0x40,
            header_length: 0x30,
        }
    }

    /// A 1 KiB file record in use, sequence `sequence`, with no attributes.
    fn record_in_use(sequence: u16) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[..4].copy_from_slice(b"FILE");
        crate::bytes::put_u16(&mut b, 4, 0x30);
        crate::bytes::put_u16(&mut b, 6, 3);
        crate::bytes::put_u64(&mut b, at::PAGE_LSN, 0x1000);
        crate::bytes::put_u16(&mut b, SEQUENCE, sequence);
        crate::bytes::put_u16(&mut b, at::LINK_COUNT, 1);
        crate::bytes::put_u16(&mut b, at::FIRST_ATTRIBUTE, 0x38);
        crate::bytes::put_u16(&mut b, RECORD_FLAGS, FLAG_IN_USE);
        crate::bytes::put_u32(&mut b, at::BYTES_IN_USE, 0x40);
        crate::bytes::put_u32(&mut b, at::BYTES_ALLOCATED, 1024);
        crate::bytes::put_u32(&mut b, 0x38, 0xFFFF_FFFF);
        b
    }

    fn record_page(bytes: Vec<u8>) -> Page {
        Page {
            pieces: Vec::new(),
            bytes,
            protected: true,
            disk_lsn: 0x1000,
            owner: StreamRef::new(RECORD_MFT, AttributeType::Data, ""),
            applied: Vec::new(),
        }
    }

    /// A client record of `redo`/`undo` at offset 0 of an MFT record.
    fn record_operation(redo: Operation, undo: Operation) -> LogRecord {
        LogRecord {
            header: super::super::record::RecordHeader {
                this_lsn: 0x2000,
                client_previous_lsn: 0,
                client_undo_next_lsn: 0,
                client_data_length: 0x28,
                client_seq_number: 0,
                client_index: 0,
                record_type: RecordType::Client,
                transaction_id: 0x18,
                flags: 0,
            },
            operation: Some(super::super::record::OperationHeader {
                redo,
                undo,
                redo_offset: 0x28,
                redo_length: 0,
                undo_offset: 0x28,
                undo_length: 0,
                target_attribute: 0x18,
                lcns_to_follow: 1,
                record_offset: 0,
                attribute_offset: 0,
                cluster_block_offset: 2,
                target_block_size: 2,
                target_vcn: 11,
                lcns: vec![0x1234],
            }),
            data: Vec::new(),
        }
    }

    #[test]
    fn freeing_a_record_clears_in_use_and_increments_the_sequence_number() {
        use Operation as O;
        let key = PageKey::Record(45);
        let before = record_in_use(1);
        let freeing = record_operation(
            O::DeallocateFileRecordSegment,
            O::InitializeFileRecordSegment,
        );
        let mut page = record_page(before.clone());
        apply(
            &mut page,
            &key,
            &freeing,
            O::DeallocateFileRecordSegment,
            &[],
            0x2000,
        )
        .unwrap();
        assert_eq!(u16_at(&page.bytes, RECORD_FLAGS).unwrap(), 0);
        assert_eq!(u16_at(&page.bytes, SEQUENCE).unwrap(), 2);
        let changed: Vec<usize> = (0..1024).filter(|&i| page.bytes[i] != before[i]).collect();
        assert_eq!(
            changed,
            vec![SEQUENCE, RECORD_FLAGS],
            "nothing else changes"
        );

        // Its undo, as Windows 10 logs it (the 20H1 sample, LSN 0x20110A2): the header's first
        // 0x18 bytes as they were.
        apply(
            &mut page,
            &key,
            &freeing,
            O::InitializeFileRecordSegment,
            &before[..at::DEALLOCATE_UNDO_HEADER],
            0x2000,
        )
        .unwrap();
        assert_eq!(
            page.bytes, before,
            "restored in use, with the old sequence number"
        );

        // A second freeing of a record already free is not guessed at.
        let mut free = record_page(before.clone());
        crate::bytes::put_u16(&mut free.bytes, RECORD_FLAGS, 0);
        let err = apply(
            &mut free,
            &key,
            &freeing,
            O::DeallocateFileRecordSegment,
            &[],
            0x2000,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("not in use") && err.contains("0x2000"),
            "{err}"
        );
        // Nor is a restore over a record in use.
        let mut used = record_page(before.clone());
        let err = apply(
            &mut used,
            &key,
            &freeing,
            O::InitializeFileRecordSegment,
            &before[..at::DEALLOCATE_UNDO_HEADER],
            0x2000,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("still in use"), "{err}");
    }

    #[test]
    fn freeing_takes_only_windows_zero_bytes_and_never_reaches_sequence_zero() {
        use Operation as O;
        let key = PageKey::Record(70);
        // Windows 10's new-record form: Noop/DeallocateFileRecordSegment with 8 zero undo bytes.
        let new_record = record_operation(O::Noop, O::DeallocateFileRecordSegment);
        let mut page = record_page(record_in_use(0xFFFF));
        apply(
            &mut page,
            &key,
            &new_record,
            O::DeallocateFileRecordSegment,
            &[0; 8],
            0x2000,
        )
        .unwrap();
        assert_eq!(u16_at(&page.bytes, SEQUENCE).unwrap(), 1, "0 is skipped");
        assert_eq!(u16_at(&page.bytes, RECORD_FLAGS).unwrap(), 0);
        for data in [&[0u8; 9][..], &[0, 0, 0, 1][..]] {
            let mut page = record_page(record_in_use(3));
            let err = apply(
                &mut page,
                &key,
                &new_record,
                O::DeallocateFileRecordSegment,
                data,
                0x2000,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("logged with the freeing"), "{err}");
        }
        // A record never initialized is not freed.
        let mut page = record_page(vec![0; 1024]);
        page.protected = false;
        assert!(apply(
            &mut page,
            &key,
            &new_record,
            O::DeallocateFileRecordSegment,
            &[0; 8],
            0x2000
        )
        .is_err());
    }

    #[test]
    fn a_live_span_that_wraps_is_found() {
        let g = geometry();
        let last_page = g.end - g.page_size;
        let before = g.lsn(last_page + 0x40, 2);
        let after = g.lsn(g.first_page + 0x40, 3);
        // Records on both sides of the wrap.
        assert_eq!(
            wrap_in_live_span(&g, &[before, after], Some(g.first_page)),
            Some(after)
        );
        // One record whose end continues at the first page.
        assert_eq!(
            wrap_in_live_span(&g, &[before], Some(g.first_page)),
            Some(before)
        );
        // A span inside one lap.
        let next = g.lsn(last_page + 0x100, 2);
        assert_eq!(
            wrap_in_live_span(&g, &[before, next], Some(last_page)),
            None
        );
        assert_eq!(wrap_in_live_span(&g, &[], None), None);
    }
}
