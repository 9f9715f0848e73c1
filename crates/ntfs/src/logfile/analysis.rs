//! The analysis pass (`docs/logfile-format.md` §10.2): from the checkpoint forward, which records
//! follow, which transactions finished, and what the pending records change — MFT records, index
//! blocks, clusters and bitmap bits.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::bytes::u32_at;
use crate::layout::AttributeType;
use crate::NtfsError;

use super::checkpoint::{
    open_attribute_length, parse_open_attribute, OpenAttribute, TableVersion, TransactionState,
};
use super::reader::{Journal, LiveLog, LogEnd};
use super::record::{LogRecord, Operation, PageKind, RecordType};
use super::restart::LfsVersion;

/// `$MFT`'s record number.
const MFT_RECORD: u64 = 0;
/// `$Bitmap`'s record number.
const BITMAP_RECORD: u64 = 6;
/// The sector unit of `cluster_block_offset` and `target_block_size`.
const SECTOR: u64 = 512;

/// The sizes needed to turn a record's VCN into an MFT record number or a bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TargetGeometry {
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Bytes per file record, used when a record does not give its block size.
    pub file_record_size: u32,
}

/// The open attribute table as the analysis knows it: the checkpoint's dump, then every
/// `OpenNonresidentAttribute` record.
#[derive(Debug, Clone, Default)]
pub struct AttributeTable {
    version: Option<TableVersion>,
    by_slot: BTreeMap<u32, OpenAttribute>,
}

impl AttributeTable {
    /// The table a checkpoint dumped.
    pub fn from_checkpoint(live: &LiveLog) -> AttributeTable {
        AttributeTable {
            version: Some(live.checkpoint.table_version),
            by_slot: live
                .tables
                .open_attributes
                .iter()
                .map(|a| (a.slot, a.clone()))
                .collect(),
        }
    }

    /// An empty table whose entries use `version`'s layout.
    pub fn empty(version: TableVersion) -> AttributeTable {
        AttributeTable {
            version: Some(version),
            by_slot: BTreeMap::new(),
        }
    }

    /// The entry at `slot`.
    pub fn get(&self, slot: u32) -> Option<&OpenAttribute> {
        self.by_slot.get(&slot)
    }

    /// Applies an `OpenNonresidentAttribute` record (redo bytes: the entry; undo bytes: the name).
    pub fn apply(&mut self, record: &LogRecord) -> Result<(), NtfsError> {
        let (Some(op), Some(version)) = (&record.operation, self.version) else {
            return Ok(());
        };
        if op.redo != Operation::OpenNonresidentAttribute {
            return Ok(());
        }
        let entry = record.redo_bytes();
        if entry.len() < open_attribute_length(version) {
            return Err(super::record::damage(
                record.lsn(),
                format!(
                    "OpenNonresidentAttribute {:#x} holds a {}-byte entry",
                    record.lsn(),
                    entry.len()
                ),
            ));
        }
        let slot = op.target_attribute as u32;
        let mut attribute = parse_open_attribute(&entry, slot, version)?;
        let name = record.undo_bytes();
        attribute.name = crate::bytes::utf16_name(&crate::bytes::utf16_units(&name));
        self.by_slot.insert(slot, attribute);
        Ok(())
    }

    /// What a client record changes.
    pub fn target(&self, record: &LogRecord, geometry: TargetGeometry) -> Target {
        let Some(op) = &record.operation else {
            return Target::None;
        };
        // The redo side says what the record changes; a `Noop` redo with a real undo (a record
        // allocated by the transaction) changes what the undo would.
        let (kind, bytes) = match (op.redo.page_kind(), op.undo.page_kind()) {
            (Some(k), _) => (k, record.redo_bytes()),
            (None, Some(k)) => (k, record.undo_bytes()),
            (None, None) => return Target::None,
        };
        if op.lcns.is_empty() {
            return Target::None;
        }
        let slot = op.target_attribute as u32;
        let Some(attribute) = self.get(slot) else {
            return Target::UnknownAttribute {
                slot,
                vcn: op.target_vcn,
            };
        };
        let cluster = geometry.cluster_size as u64;
        let byte = op
            .target_vcn
            .saturating_mul(cluster)
            .saturating_add(op.cluster_block_offset as u64 * SECTOR);
        let is_type = |t: AttributeType| attribute.attribute_type == t.code();
        match kind {
            PageKind::FileRecord => {
                let record_size = match op.target_block_size {
                    0 => geometry.file_record_size as u64,
                    sectors => sectors as u64 * SECTOR,
                }
                .max(1);
                if attribute.record != MFT_RECORD || !is_type(AttributeType::Data) {
                    return Target::UnexpectedAttribute {
                        slot,
                        record: attribute.record,
                        attribute_type: attribute.attribute_type,
                    };
                }
                Target::FileRecord {
                    record: byte / record_size,
                    attribute_offset: op.record_offset,
                    value_offset: op.attribute_offset,
                }
            }
            PageKind::IndexBlock => Target::IndexBlock(IndexBlock {
                record: attribute.record,
                name: attribute.name.clone(),
                vcn: op.target_vcn,
                block_offset: op.cluster_block_offset,
                entry_offset: op.attribute_offset,
            }),
            PageKind::Stream if is_type(AttributeType::IndexAllocation) => {
                Target::IndexBlock(IndexBlock {
                    record: attribute.record,
                    name: attribute.name.clone(),
                    vcn: op.target_vcn,
                    block_offset: op.cluster_block_offset,
                    entry_offset: op.record_offset,
                })
            }
            PageKind::Stream => Target::StreamBytes {
                record: attribute.record,
                attribute_type: attribute.attribute_type,
                name: attribute.name.clone(),
                offset: byte.saturating_add(op.record_offset as u64),
                length: bytes.len() as u32,
            },
            PageKind::Bitmap => {
                let (Ok(first), Ok(count)) = (u32_at(&bytes, 0), u32_at(&bytes, 4)) else {
                    return Target::UnknownAttribute {
                        slot,
                        vcn: op.target_vcn,
                    };
                };
                let bitmap = if attribute.record == BITMAP_RECORD && is_type(AttributeType::Data) {
                    Bitmap::Clusters
                } else if attribute.record == MFT_RECORD && is_type(AttributeType::Bitmap) {
                    Bitmap::MftRecords
                } else if is_type(AttributeType::Bitmap) {
                    Bitmap::IndexBlocks {
                        record: attribute.record,
                        name: attribute.name.clone(),
                    }
                } else {
                    Bitmap::Other {
                        record: attribute.record,
                        attribute_type: attribute.attribute_type,
                    }
                };
                let first_bit = byte
                    .saturating_add(op.record_offset as u64)
                    .saturating_mul(8)
                    .saturating_add(first as u64);
                Target::BitmapBits(BitRange {
                    bitmap,
                    first: first_bit,
                    count: count as u64,
                })
            }
        }
    }
}

/// What a record changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Target {
    /// Nothing on disk (transaction, table and checkpoint records, `Noop`).
    None,
    /// A file record of `$MFT`.
    FileRecord {
        /// Its number.
        record: u64,
        /// Offset of the attribute in the record.
        attribute_offset: u16,
        /// Offset inside the attribute.
        value_offset: u16,
    },
    /// An `INDX` block.
    IndexBlock(IndexBlock),
    /// Bits of a non-resident bitmap.
    BitmapBits(BitRange),
    /// Bytes of another non-resident stream.
    StreamBytes {
        /// The stream's file record.
        record: u64,
        /// Its attribute type code.
        attribute_type: u32,
        /// Its name.
        name: String,
        /// Offset of the bytes in the stream.
        offset: u64,
        /// How many bytes.
        length: u32,
    },
    /// The record names an open attribute table entry neither the checkpoint nor an open record
    /// defines.
    UnknownAttribute {
        /// The entry's offset in the table.
        slot: u32,
        /// The record's target VCN.
        vcn: u64,
    },
    /// A file record operation whose attribute is not `$MFT`'s data.
    UnexpectedAttribute {
        /// The entry's offset in the table.
        slot: u32,
        /// The attribute's file record.
        record: u64,
        /// Its type code.
        attribute_type: u32,
    },
}

/// An `INDX` block of an index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IndexBlock {
    /// The file record holding the index.
    pub record: u64,
    /// The index's name (`$I30`, ...).
    pub name: String,
    /// The block's VCN in the `$INDEX_ALLOCATION`.
    pub vcn: u64,
    /// Offset of the block from the VCN, in 512-byte units.
    pub block_offset: u16,
    /// Offset of the index entry (or data) changed in the block.
    #[serde(skip)]
    pub entry_offset: u16,
}

/// Which bitmap a bit range is in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Bitmap {
    /// `$Bitmap`: bits are clusters.
    Clusters,
    /// `$MFT:$BITMAP`: bits are file records.
    MftRecords,
    /// An index's `$BITMAP`: bits are index blocks.
    IndexBlocks {
        /// The file record holding the index.
        record: u64,
        /// The index's name.
        name: String,
    },
    /// Another bitmap.
    Other {
        /// Its file record.
        record: u64,
        /// Its attribute type code.
        attribute_type: u32,
    },
}

/// A range of bits of one bitmap.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BitRange {
    /// The bitmap.
    pub bitmap: Bitmap,
    /// First bit.
    pub first: u64,
    /// Bits.
    pub count: u64,
}

/// A range of clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LcnRange {
    /// First cluster.
    pub first: u64,
    /// Clusters.
    pub count: u64,
}

/// One client record after the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnalysedRecord {
    /// Its LSN.
    pub lsn: u64,
    /// Its transaction id.
    pub transaction_id: u32,
    /// The redo operation.
    pub redo: Operation,
    /// The undo operation.
    pub undo: Operation,
    /// What it changes.
    pub target: Target,
    /// The clusters of its target page.
    pub lcns: Vec<u64>,
}

/// How a transaction ended, as far as the log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionOutcome {
    /// Its `ForgetTransaction` is in the log (or it was committed): Windows redoes it.
    Committed,
    /// Prepared but not committed.
    Prepared,
    /// Still active when the log ends: Windows undoes what of it reached the disk.
    Uncommitted,
}

/// One transaction seen since the checkpoint (or open at it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transaction {
    /// Its id (offset in the transaction table).
    pub id: u32,
    /// Its first record.
    pub first_lsn: u64,
    /// Its last record.
    pub last_lsn: u64,
    /// How it ended.
    pub outcome: TransactionOutcome,
    /// Its records after the checkpoint.
    pub records: u32,
    /// How many of them change a page (the others only dump tables or mark the transaction).
    pub page_changes: u32,
}

/// Everything the pending records change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Touched {
    /// File records.
    pub file_records: BTreeSet<u64>,
    /// Index blocks.
    pub index_blocks: BTreeSet<IndexBlock>,
    /// Clusters, merged into ranges.
    pub lcn_ranges: Vec<LcnRange>,
    /// Bitmap bits, merged per bitmap.
    pub bitmap_ranges: Vec<BitRange>,
    /// Records whose target could not be resolved.
    pub unresolved: u32,
}

/// The analysis of a live journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalAnalysis {
    /// Log file service version.
    pub version: LfsVersion,
    /// Whether the restart area says the volume was dismounted cleanly.
    pub clean_flag: bool,
    /// The restart area's current LSN.
    pub current_lsn: u64,
    /// The checkpoint (client restart record) used.
    pub checkpoint_lsn: u64,
    /// The last record before the checkpoint's dumps; the analysis reads the records after it.
    pub checkpoint_start_lsn: u64,
    /// Where redo would start: the oldest of the dirty pages, the open transactions and the first
    /// record after the checkpoint.
    pub redo_lsn: u64,
    /// The last complete record.
    pub last_lsn: u64,
    /// Why the log ends there.
    pub end: LogEnd,
    /// Client records after the checkpoint start, in LSN order.
    pub records: Vec<AnalysedRecord>,
    /// Client restart records after the checkpoint start.
    pub checkpoint_records: u32,
    /// Dirty pages the checkpoint lists.
    pub dirty_pages: u32,
    /// Transactions open at the checkpoint or begun since.
    pub transactions: Vec<Transaction>,
    /// What the records from the redo LSN on change.
    pub touched: Touched,
}

impl JournalAnalysis {
    /// Transactions that end committed and change pages.
    pub fn committed(&self) -> usize {
        self.count(TransactionOutcome::Committed)
    }

    /// Transactions still open that change pages.
    pub fn uncommitted(&self) -> usize {
        self.count(TransactionOutcome::Uncommitted) + self.count(TransactionOutcome::Prepared)
    }

    fn count(&self, outcome: TransactionOutcome) -> usize {
        self.transactions
            .iter()
            .filter(|t| t.outcome == outcome && t.page_changes > 0)
            .count()
    }

    /// Whether a replay could change anything: some record from the redo LSN on changes a page.
    pub fn has_pending_changes(&self) -> bool {
        self.touched != Touched::default()
    }
}

/// Analyses a journal's live part; `None` when it has none (empty, obsolete or closed log).
/// `geometry` comes from the volume; without it, the checkpoint's cluster size and the records'
/// own block sizes are used.
pub fn analyse(
    journal: &Journal,
    geometry: Option<TargetGeometry>,
) -> Result<Option<JournalAnalysis>, NtfsError> {
    let (Some(restart), Some(live)) = (&journal.restart, &journal.live) else {
        return Ok(None);
    };
    let geometry = geometry.unwrap_or(TargetGeometry {
        cluster_size: live.checkpoint.bytes_per_cluster,
        file_record_size: 1024,
    });
    let mut attributes = AttributeTable::from_checkpoint(live);
    let after = live.after_checkpoint();

    // Transactions: the checkpoint's table, then every client record after its start.
    let mut open: BTreeMap<u32, Transaction> = BTreeMap::new();
    for t in &live.tables.transactions {
        let outcome = match t.state {
            TransactionState::Committed => TransactionOutcome::Committed,
            TransactionState::Prepared => TransactionOutcome::Prepared,
            TransactionState::Active | TransactionState::Uninitialized => {
                TransactionOutcome::Uncommitted
            }
        };
        open.insert(
            t.id,
            Transaction {
                id: t.id,
                first_lsn: t.first_lsn,
                last_lsn: t.previous_lsn,
                outcome,
                records: 0,
                page_changes: 0,
            },
        );
    }
    let mut finished = Vec::new();
    let mut records = Vec::new();
    let mut checkpoint_records = 0;
    for record in after {
        if record.header.record_type == RecordType::ClientRestart {
            checkpoint_records += 1;
            continue;
        }
        let Some(op) = &record.operation else {
            continue;
        };
        attributes.apply(record)?;
        let id = record.header.transaction_id;
        let t = open.entry(id).or_insert(Transaction {
            id,
            first_lsn: record.lsn(),
            last_lsn: record.lsn(),
            outcome: TransactionOutcome::Uncommitted,
            records: 0,
            page_changes: 0,
        });
        t.last_lsn = record.lsn();
        t.records += 1;
        let target = attributes.target(record, geometry);
        if target != Target::None {
            t.page_changes += 1;
        }
        match op.redo {
            Operation::CommitTransaction => t.outcome = TransactionOutcome::Committed,
            Operation::PrepareTransaction => t.outcome = TransactionOutcome::Prepared,
            Operation::ForgetTransaction => {
                if let Some(mut done) = open.remove(&id) {
                    done.outcome = TransactionOutcome::Committed;
                    finished.push(done);
                }
            }
            _ => {}
        }
        records.push(AnalysedRecord {
            lsn: record.lsn(),
            transaction_id: id,
            redo: op.redo,
            undo: op.undo,
            target,
            lcns: op.lcns.clone(),
        });
    }
    let mut transactions = finished;
    transactions.extend(open.into_values());
    transactions.sort_by_key(|t| t.first_lsn);

    let redo_lsn = live
        .tables
        .dirty_pages
        .iter()
        .map(|d| d.oldest_lsn)
        .chain(live.tables.transactions.iter().map(|t| t.first_lsn))
        .chain(after.first().map(LogRecord::lsn))
        .filter(|l| *l != 0)
        .min()
        .unwrap_or(live.last_lsn());

    // What the records from the redo LSN on change (those before the checkpoint start resolve
    // against the checkpoint's attribute table).
    let checkpoint_attributes = AttributeTable::from_checkpoint(live);
    let mut later_attributes = AttributeTable::from_checkpoint(live);
    let mut touched = Touched::default();
    let mut lcns = BTreeSet::new();
    let mut bits: BTreeMap<Bitmap, BTreeSet<(u64, u64)>> = BTreeMap::new();
    for record in live.records.iter().filter(|r| r.lsn() >= redo_lsn) {
        let table = if record.lsn() > live.checkpoint.checkpoint_start_lsn {
            later_attributes.apply(record)?;
            &later_attributes
        } else {
            &checkpoint_attributes
        };
        let target = table.target(record, geometry);
        match &target {
            // An operation no source describes, with clusters to change: what it changes is
            // unknown, so it is counted as unattributed, never as nothing.
            Target::None if unknown_change(record) => {
                touched.unresolved += 1;
            }
            Target::None => continue,
            Target::FileRecord { record, .. } => {
                touched.file_records.insert(*record);
            }
            Target::IndexBlock(block) => {
                touched.index_blocks.insert(block.clone());
            }
            Target::BitmapBits(range) => {
                bits.entry(range.bitmap.clone())
                    .or_default()
                    .insert((range.first, range.count));
            }
            Target::StreamBytes { .. } => {}
            Target::UnknownAttribute { .. } | Target::UnexpectedAttribute { .. } => {
                touched.unresolved += 1;
            }
        }
        if let Some(op) = &record.operation {
            lcns.extend(op.lcns.iter().copied());
        }
    }
    touched.lcn_ranges = merge(lcns.into_iter().map(|l| (l, 1)))
        .into_iter()
        .map(|(first, count)| LcnRange { first, count })
        .collect();
    touched.bitmap_ranges = bits
        .into_iter()
        .flat_map(|(bitmap, ranges)| {
            merge(ranges.into_iter())
                .into_iter()
                .map(move |(first, count)| BitRange {
                    bitmap: bitmap.clone(),
                    first,
                    count,
                })
        })
        .collect();

    Ok(Some(JournalAnalysis {
        version: restart.version,
        clean_flag: restart.area.clean_flag(),
        current_lsn: restart.area.current_lsn,
        checkpoint_lsn: live.client.restart_lsn,
        checkpoint_start_lsn: live.checkpoint.checkpoint_start_lsn,
        redo_lsn,
        last_lsn: live.last_lsn(),
        end: live.end,
        records,
        checkpoint_records,
        dirty_pages: live.tables.dirty_pages.len() as u32,
        transactions,
        touched,
    }))
}

/// Whether `record` names an operation no source describes and the clusters it would change.
fn unknown_change(record: &LogRecord) -> bool {
    record.operation.as_ref().is_some_and(|op| {
        !op.lcns.is_empty()
            && (matches!(op.redo, Operation::Unknown(_))
                || matches!(op.undo, Operation::Unknown(_)))
    })
}

/// Merges sorted (first, count) ranges that overlap or touch.
fn merge(ranges: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (first, count) in ranges {
        if count == 0 {
            continue;
        }
        match out.last_mut() {
            Some((f, c)) if first <= f.saturating_add(*c) => {
                *c = (*c).max(first.saturating_add(count) - *f);
            }
            _ => out.push((first, count)),
        }
    }
    out
}
