//! Log records: the LFS record header and the NTFS operation header of client records
//! (`docs/logfile-format.md` §6, §7, §9).

use std::borrow::Cow;

use serde::Serialize;

use crate::bytes::{u16_at, u32_at, u64_at};
use crate::layout::{log_operation, log_record};
use crate::{Location, NtfsError, Structure};

/// What kind of LFS record a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordType {
    /// An NTFS update (type 1).
    Client,
    /// A client restart record: the end of a checkpoint (type 2).
    ClientRestart,
}

/// The LFS header of a log record (0x30 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordHeader {
    /// The record's LSN.
    pub this_lsn: u64,
    /// The previous record of the same transaction, 0 for the first.
    pub client_previous_lsn: u64,
    /// The next record to undo for the transaction, 0 for none.
    pub client_undo_next_lsn: u64,
    /// Bytes of client data.
    pub client_data_length: u32,
    /// The client's sequence number.
    pub client_seq_number: u16,
    /// The client's index in the restart area's client array.
    pub client_index: u16,
    /// Client record or client restart record.
    pub record_type: RecordType,
    /// Offset of the transaction's entry in the transaction table (0 in client restart records).
    pub transaction_id: u32,
    /// 0x0001 the record spans pages; 0x0002 / 0x0004 written by Windows 8 and later.
    pub flags: u16,
}

/// Parses a record header from its first 0x30 bytes, `at` its LSN (for the error's location).
pub fn parse_record_header(b: &[u8], lsn: u64) -> Result<RecordHeader, NtfsError> {
    let record_type = match u32_at(b, log_record::RECORD_TYPE)? {
        1 => RecordType::Client,
        2 => RecordType::ClientRestart,
        other => {
            return Err(damage(
                lsn,
                format!("log record {lsn:#x} has record type {other} (1 or 2 expected)"),
            ))
        }
    };
    Ok(RecordHeader {
        this_lsn: u64_at(b, log_record::THIS_LSN)?,
        client_previous_lsn: u64_at(b, log_record::CLIENT_PREVIOUS_LSN)?,
        client_undo_next_lsn: u64_at(b, log_record::CLIENT_UNDO_NEXT_LSN)?,
        client_data_length: u32_at(b, log_record::CLIENT_DATA_LENGTH)?,
        client_seq_number: u16_at(b, log_record::CLIENT_SEQ_NUMBER)?,
        client_index: u16_at(b, log_record::CLIENT_INDEX)?,
        record_type,
        transaction_id: u32_at(b, log_record::TRANSACTION_ID)?,
        flags: u16_at(b, log_record::FLAGS)?,
    })
}

pub(crate) fn damage(lsn: u64, detail: String) -> NtfsError {
    NtfsError::damaged_at(Structure::LogFile, Location::LogRecord { lsn }, detail)
}

/// An NTFS log operation (the redo or undo code of a client record), §9.1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
pub enum Operation {
    /// 0x00: nothing.
    Noop,
    /// 0x01: marks a record as not undoable.
    CompensationLogRecord,
    /// 0x02: write a whole file record.
    InitializeFileRecordSegment,
    /// 0x03: free a file record.
    DeallocateFileRecordSegment,
    /// 0x04: write the end of a file record.
    WriteEndOfFileRecordSegment,
    /// 0x05: insert an attribute.
    CreateAttribute,
    /// 0x06: remove an attribute.
    DeleteAttribute,
    /// 0x07: change a resident value.
    UpdateResidentValue,
    /// 0x08: change bytes of a non-resident stream page.
    UpdateNonresidentValue,
    /// 0x09: change a run list.
    UpdateMappingPairs,
    /// 0x0A: drop dirty pages of LCN ranges.
    DeleteDirtyClusters,
    /// 0x0B: change a non-resident attribute's sizes.
    SetNewAttributeSizes,
    /// 0x0C: insert an entry in an `$INDEX_ROOT`.
    AddIndexEntryRoot,
    /// 0x0D: remove an entry from an `$INDEX_ROOT`.
    DeleteIndexEntryRoot,
    /// 0x0E: insert an entry in an index block.
    AddIndexEntryAllocation,
    /// 0x0F: remove an entry from an index block.
    DeleteIndexEntryAllocation,
    /// 0x10: rewrite the end of an index block.
    WriteEndOfIndexBuffer,
    /// 0x11: set an `$INDEX_ROOT` entry's child VCN.
    SetIndexEntryVcnRoot,
    /// 0x12: set an index block entry's child VCN.
    SetIndexEntryVcnAllocation,
    /// 0x13: update a `$FILE_NAME` key in an `$INDEX_ROOT`.
    UpdateFileNameRoot,
    /// 0x14: update a `$FILE_NAME` key in an index block.
    UpdateFileNameAllocation,
    /// 0x15: set bits of a non-resident bitmap.
    SetBitsInNonresidentBitMap,
    /// 0x16: clear bits of a non-resident bitmap.
    ClearBitsInNonresidentBitMap,
    /// 0x17: replace a dirty page's LCN.
    HotFix,
    /// 0x18: end of a nested top-level action.
    EndTopLevelAction,
    /// 0x19: transaction prepared.
    PrepareTransaction,
    /// 0x1A: transaction committed.
    CommitTransaction,
    /// 0x1B: transaction finished.
    ForgetTransaction,
    /// 0x1C: an open attribute table entry.
    OpenNonresidentAttribute,
    /// 0x1D: checkpoint dump of the open attribute table.
    OpenAttributeTableDump,
    /// 0x1E: checkpoint dump of the attribute names.
    AttributeNamesDump,
    /// 0x1F: checkpoint dump of the dirty page table.
    DirtyPageTableDump,
    /// 0x20: checkpoint dump of the transaction table.
    TransactionTableDump,
    /// 0x21: overwrite a view index entry's data in an `$INDEX_ROOT`.
    UpdateRecordDataRoot,
    /// 0x22: overwrite a view index entry's data in an index block.
    UpdateRecordDataAllocation,
    /// 0x23: named by other readers, semantics unknown.
    UpdateRelativeDataInIndex,
    /// 0x24: named by other readers, semantics unknown.
    UpdateRelativeDataInIndex2,
    /// 0x25: zero the end of a file record.
    ZeroEndOfFileRecord,
    /// A code no source names.
    Unknown(u16),
}

impl Operation {
    /// The operation a code stands for.
    pub fn from_code(code: u16) -> Operation {
        use Operation as O;
        const BY_CODE: [Operation; 0x26] = [
            O::Noop,
            O::CompensationLogRecord,
            O::InitializeFileRecordSegment,
            O::DeallocateFileRecordSegment,
            O::WriteEndOfFileRecordSegment,
            O::CreateAttribute,
            O::DeleteAttribute,
            O::UpdateResidentValue,
            O::UpdateNonresidentValue,
            O::UpdateMappingPairs,
            O::DeleteDirtyClusters,
            O::SetNewAttributeSizes,
            O::AddIndexEntryRoot,
            O::DeleteIndexEntryRoot,
            O::AddIndexEntryAllocation,
            O::DeleteIndexEntryAllocation,
            O::WriteEndOfIndexBuffer,
            O::SetIndexEntryVcnRoot,
            O::SetIndexEntryVcnAllocation,
            O::UpdateFileNameRoot,
            O::UpdateFileNameAllocation,
            O::SetBitsInNonresidentBitMap,
            O::ClearBitsInNonresidentBitMap,
            O::HotFix,
            O::EndTopLevelAction,
            O::PrepareTransaction,
            O::CommitTransaction,
            O::ForgetTransaction,
            O::OpenNonresidentAttribute,
            O::OpenAttributeTableDump,
            O::AttributeNamesDump,
            O::DirtyPageTableDump,
            O::TransactionTableDump,
            O::UpdateRecordDataRoot,
            O::UpdateRecordDataAllocation,
            O::UpdateRelativeDataInIndex,
            O::UpdateRelativeDataInIndex2,
            O::ZeroEndOfFileRecord,
        ];
        BY_CODE
            .get(code as usize)
            .copied()
            .unwrap_or(O::Unknown(code))
    }

    /// The code on disk.
    pub fn code(self) -> u16 {
        use Operation as O;
        match self {
            O::Noop => 0x00,
            O::CompensationLogRecord => 0x01,
            O::InitializeFileRecordSegment => 0x02,
            O::DeallocateFileRecordSegment => 0x03,
            O::WriteEndOfFileRecordSegment => 0x04,
            O::CreateAttribute => 0x05,
            O::DeleteAttribute => 0x06,
            O::UpdateResidentValue => 0x07,
            O::UpdateNonresidentValue => 0x08,
            O::UpdateMappingPairs => 0x09,
            O::DeleteDirtyClusters => 0x0A,
            O::SetNewAttributeSizes => 0x0B,
            O::AddIndexEntryRoot => 0x0C,
            O::DeleteIndexEntryRoot => 0x0D,
            O::AddIndexEntryAllocation => 0x0E,
            O::DeleteIndexEntryAllocation => 0x0F,
            O::WriteEndOfIndexBuffer => 0x10,
            O::SetIndexEntryVcnRoot => 0x11,
            O::SetIndexEntryVcnAllocation => 0x12,
            O::UpdateFileNameRoot => 0x13,
            O::UpdateFileNameAllocation => 0x14,
            O::SetBitsInNonresidentBitMap => 0x15,
            O::ClearBitsInNonresidentBitMap => 0x16,
            O::HotFix => 0x17,
            O::EndTopLevelAction => 0x18,
            O::PrepareTransaction => 0x19,
            O::CommitTransaction => 0x1A,
            O::ForgetTransaction => 0x1B,
            O::OpenNonresidentAttribute => 0x1C,
            O::OpenAttributeTableDump => 0x1D,
            O::AttributeNamesDump => 0x1E,
            O::DirtyPageTableDump => 0x1F,
            O::TransactionTableDump => 0x20,
            O::UpdateRecordDataRoot => 0x21,
            O::UpdateRecordDataAllocation => 0x22,
            O::UpdateRelativeDataInIndex => 0x23,
            O::UpdateRelativeDataInIndex2 => 0x24,
            O::ZeroEndOfFileRecord => 0x25,
            O::Unknown(code) => code,
        }
    }

    /// What kind of page the operation changes (§9.1's target column).
    pub fn page_kind(self) -> Option<PageKind> {
        use Operation as O;
        match self {
            O::InitializeFileRecordSegment
            | O::DeallocateFileRecordSegment
            | O::WriteEndOfFileRecordSegment
            | O::CreateAttribute
            | O::DeleteAttribute
            | O::UpdateResidentValue
            | O::UpdateMappingPairs
            | O::SetNewAttributeSizes
            | O::AddIndexEntryRoot
            | O::DeleteIndexEntryRoot
            | O::SetIndexEntryVcnRoot
            | O::UpdateFileNameRoot
            | O::UpdateRecordDataRoot
            | O::UpdateRelativeDataInIndex
            | O::ZeroEndOfFileRecord => Some(PageKind::FileRecord),
            O::AddIndexEntryAllocation
            | O::DeleteIndexEntryAllocation
            | O::WriteEndOfIndexBuffer
            | O::SetIndexEntryVcnAllocation
            | O::UpdateFileNameAllocation
            | O::UpdateRecordDataAllocation
            | O::UpdateRelativeDataInIndex2 => Some(PageKind::IndexBlock),
            O::SetBitsInNonresidentBitMap | O::ClearBitsInNonresidentBitMap => {
                Some(PageKind::Bitmap)
            }
            O::UpdateNonresidentValue => Some(PageKind::Stream),
            O::Noop
            | O::CompensationLogRecord
            | O::DeleteDirtyClusters
            | O::HotFix
            | O::EndTopLevelAction
            | O::PrepareTransaction
            | O::CommitTransaction
            | O::ForgetTransaction
            | O::OpenNonresidentAttribute
            | O::OpenAttributeTableDump
            | O::AttributeNamesDump
            | O::DirtyPageTableDump
            | O::TransactionTableDump
            | O::Unknown(_) => None,
        }
    }
}

/// The kind of page an operation changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// A file record of `$MFT`.
    FileRecord,
    /// An `INDX` block.
    IndexBlock,
    /// A page of a non-resident bitmap.
    Bitmap,
    /// A page of another non-resident stream.
    Stream,
}

/// The NTFS header of a client record (§7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationHeader {
    /// Redo operation.
    pub redo: Operation,
    /// Undo operation.
    pub undo: Operation,
    /// Offset of the redo bytes in the client data.
    pub redo_offset: u16,
    /// Length of the redo bytes.
    pub redo_length: u16,
    /// Offset of the undo bytes.
    pub undo_offset: u16,
    /// Length of the undo bytes.
    pub undo_length: u16,
    /// Offset of the target's entry in the open attribute table.
    pub target_attribute: u16,
    /// Entries in the LCN list.
    pub lcns_to_follow: u16,
    /// Offset of the attribute in the record, or of the data in the page.
    pub record_offset: u16,
    /// Offset inside the attribute, or of the index entry in the block.
    pub attribute_offset: u16,
    /// Offset of the target block from `target_vcn`, in 512-byte units.
    pub cluster_block_offset: u16,
    /// Size of the target block in 512-byte units (0 for bitmaps and plain data).
    pub target_block_size: u16,
    /// First VCN of the target page.
    pub target_vcn: u64,
    /// LCNs of `target_vcn`, `target_vcn + 1`, ...
    pub lcns: Vec<u64>,
}

/// A log record: its header and client data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// The LFS header.
    pub header: RecordHeader,
    /// The NTFS operation header of a client record (`None` for a client restart record).
    pub operation: Option<OperationHeader>,
    /// The client data, as logged.
    #[serde(skip)]
    pub data: Vec<u8>,
}

impl LogRecord {
    /// Builds a record from its header and client data, checking the NTFS header of a client
    /// record: its LCN list and its redo and undo bytes lie inside the data, or the bytes are
    /// absent altogether (they then stand for zeros, §7.1).
    pub fn new(header: RecordHeader, data: Vec<u8>) -> Result<LogRecord, NtfsError> {
        let lsn = header.this_lsn;
        let operation = match header.record_type {
            RecordType::ClientRestart => None,
            RecordType::Client => Some(parse_operation(&data, lsn)?),
        };
        Ok(LogRecord {
            header,
            operation,
            data,
        })
    }

    /// The LSN.
    pub fn lsn(&self) -> u64 {
        self.header.this_lsn
    }

    /// The redo bytes (zeros when the record does not hold them).
    pub fn redo_bytes(&self) -> Cow<'_, [u8]> {
        match &self.operation {
            Some(op) => payload(&self.data, op.redo_offset, op.redo_length),
            None => Cow::Borrowed(&[]),
        }
    }

    /// The undo bytes (zeros when the record does not hold them).
    pub fn undo_bytes(&self) -> Cow<'_, [u8]> {
        match &self.operation {
            Some(op) => payload(&self.data, op.undo_offset, op.undo_length),
            None => Cow::Borrowed(&[]),
        }
    }
}

fn payload(data: &[u8], offset: u16, length: u16) -> Cow<'_, [u8]> {
    let (o, l) = (offset as usize, length as usize);
    match data.get(o..o + l) {
        Some(b) => Cow::Borrowed(b),
        None => Cow::Owned(vec![0; l]),
    }
}

fn parse_operation(d: &[u8], lsn: u64) -> Result<OperationHeader, NtfsError> {
    if d.len() < log_operation::LCN_LIST {
        return Err(damage(
            lsn,
            format!(
                "log record {lsn:#x} holds {} bytes of client data, too few for its NTFS header",
                d.len()
            ),
        ));
    }
    let f16 = |o: usize| u16_at(d, o);
    let lcns_to_follow = f16(log_operation::LCNS_TO_FOLLOW)?;
    let lcns_end = log_operation::LCN_LIST + 8 * lcns_to_follow as usize;
    if lcns_end > d.len() {
        return Err(damage(
            lsn,
            format!(
                "log record {lsn:#x} lists {lcns_to_follow} LCNs but holds {} bytes",
                d.len()
            ),
        ));
    }
    let lcns = (0..lcns_to_follow as usize)
        .map(|k| u64_at(d, log_operation::LCN_LIST + 8 * k))
        .collect::<Result<Vec<_>, _>>()?;
    let op = OperationHeader {
        redo: Operation::from_code(f16(log_operation::REDO_OPERATION)?),
        undo: Operation::from_code(f16(log_operation::UNDO_OPERATION)?),
        redo_offset: f16(log_operation::REDO_OFFSET)?,
        redo_length: f16(log_operation::REDO_LENGTH)?,
        undo_offset: f16(log_operation::UNDO_OFFSET)?,
        undo_length: f16(log_operation::UNDO_LENGTH)?,
        target_attribute: f16(log_operation::TARGET_ATTRIBUTE)?,
        lcns_to_follow,
        record_offset: f16(log_operation::RECORD_OFFSET)?,
        attribute_offset: f16(log_operation::ATTRIBUTE_OFFSET)?,
        cluster_block_offset: f16(log_operation::CLUSTER_BLOCK_OFFSET)?,
        target_block_size: f16(log_operation::TARGET_BLOCK_SIZE)?,
        target_vcn: u64_at(d, log_operation::TARGET_VCN)?,
        lcns,
    };
    for (what, offset, length) in [
        ("redo", op.redo_offset, op.redo_length),
        ("undo", op.undo_offset, op.undo_length),
    ] {
        let (o, l) = (offset as usize, length as usize);
        // Present bytes lie after the header; absent ones (offset + length past the data) stand
        // for zeros. Bytes that start inside the header would overwrite it.
        if l > 0 && o + l <= d.len() && o < log_operation::LCN_LIST {
            return Err(damage(
                lsn,
                format!("log record {lsn:#x}: its {what} bytes at {o} overlap its NTFS header"),
            ));
        }
    }
    Ok(op)
}
