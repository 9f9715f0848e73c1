//! The checkpoint: the NTFS restart area of a client restart record and the tables it names
//! (open attributes, attribute names, dirty pages, transactions), `docs/logfile-format.md` §8.

use serde::Serialize;

use crate::bytes::{slice, u16_at, u32_at, u64_at, u8_at, utf16_name, utf16_units};
use crate::layout::{
    client_restart, dirty_page_v0, dirty_page_v1, open_attribute_v0, open_attribute_v1,
    restart_table, transaction_entry,
};
use crate::NtfsError;

use super::record::damage;

/// The layout of the checkpoint's tables, from the NTFS restart area's major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableVersion {
    /// Version 0 (Windows 7 and earlier): 0x2C-byte open attribute entries.
    V0,
    /// Version 1 (Windows 8 and later): 0x28-byte open attribute entries.
    V1,
}

/// The NTFS restart area: the client data of a client restart record (§8.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientRestart {
    /// Layout of the dumped tables.
    pub table_version: TableVersion,
    /// Minor version.
    pub minor_version: u32,
    /// The last record written before this checkpoint's table dumps.
    pub checkpoint_start_lsn: u64,
    /// The open attribute table dump, 0 when not dumped.
    pub open_attribute_table_lsn: u64,
    /// The attribute names dump, 0 when not dumped.
    pub attribute_names_lsn: u64,
    /// The dirty page table dump, 0 when not dumped.
    pub dirty_page_table_lsn: u64,
    /// The transaction table dump, 0 when not dumped.
    pub transaction_table_lsn: u64,
    /// Bytes of the open attribute table dump.
    pub open_attribute_table_length: u32,
    /// Bytes of the attribute names dump.
    pub attribute_names_length: u32,
    /// Bytes of the dirty page table dump.
    pub dirty_page_table_length: u32,
    /// Bytes of the transaction table dump.
    pub transaction_table_length: u32,
    /// Bytes per cluster of the volume the log belongs to.
    pub bytes_per_cluster: u32,
    /// The oldest LSN still needed.
    pub oldest_lsn: u64,
}

/// Parses the client data of the client restart record at `lsn`.
pub fn parse_client_restart(d: &[u8], lsn: u64) -> Result<ClientRestart, NtfsError> {
    if d.len() < client_restart::MIN_LENGTH {
        return Err(damage(
            lsn,
            format!(
                "client restart record {lsn:#x} holds {} bytes, fewer than the {} of an NTFS restart area",
                d.len(),
                client_restart::MIN_LENGTH
            ),
        ));
    }
    let table_version = match u32_at(d, client_restart::MAJOR_VERSION)? {
        0 => TableVersion::V0,
        1 => TableVersion::V1,
        other => {
            return Err(damage(
                lsn,
                format!("client restart record {lsn:#x} has table version {other} (0 or 1 known)"),
            ))
        }
    };
    let l64 = |o| u64_at(d, o);
    let l32 = |o| u32_at(d, o);
    Ok(ClientRestart {
        table_version,
        minor_version: l32(client_restart::MINOR_VERSION)?,
        checkpoint_start_lsn: l64(client_restart::CHECKPOINT_START_LSN)?,
        open_attribute_table_lsn: l64(client_restart::OPEN_ATTRIBUTE_TABLE_LSN)?,
        attribute_names_lsn: l64(client_restart::ATTRIBUTE_NAMES_LSN)?,
        dirty_page_table_lsn: l64(client_restart::DIRTY_PAGE_TABLE_LSN)?,
        transaction_table_lsn: l64(client_restart::TRANSACTION_TABLE_LSN)?,
        open_attribute_table_length: l32(client_restart::OPEN_ATTRIBUTE_TABLE_LENGTH)?,
        attribute_names_length: l32(client_restart::ATTRIBUTE_NAMES_LENGTH)?,
        dirty_page_table_length: l32(client_restart::DIRTY_PAGE_TABLE_LENGTH)?,
        transaction_table_length: l32(client_restart::TRANSACTION_TABLE_LENGTH)?,
        bytes_per_cluster: l32(client_restart::BYTES_PER_CLUSTER)?,
        oldest_lsn: l64(client_restart::OLDEST_LSN)?,
    })
}

/// The header of a dumped restart table (§8.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartTableHeader {
    /// Bytes per entry.
    pub entry_size: u16,
    /// Allocated entries.
    pub entry_count: u16,
    /// Entries in use.
    pub entries_in_use: u16,
    /// Offset of the first free entry, 0 for none.
    pub first_free: u32,
    /// Offset of the last free entry.
    pub last_free: u32,
}

/// An entry in use of a dumped table: its offset from the table start and its bytes.
type TableEntry<'d> = (u32, &'d [u8]);

/// The entries in use of a dumped table.
fn table_entries<'d>(
    d: &'d [u8],
    lsn: u64,
    what: &str,
    min_entry: usize,
) -> Result<(RestartTableHeader, Vec<TableEntry<'d>>), NtfsError> {
    let header = RestartTableHeader {
        entry_size: u16_at(d, restart_table::ENTRY_SIZE)?,
        entry_count: u16_at(d, restart_table::ENTRY_COUNT)?,
        entries_in_use: u16_at(d, restart_table::ENTRIES_IN_USE)?,
        first_free: u32_at(d, restart_table::FIRST_FREE)?,
        last_free: u32_at(d, restart_table::LAST_FREE)?,
    };
    let size = header.entry_size as usize;
    let end = restart_table::HEADER_LENGTH + size * header.entry_count as usize;
    if size < min_entry || !size.is_multiple_of(4) || end > d.len() {
        return Err(damage(lsn, format!(
            "the {what} dumped at {lsn:#x} declares {} entries of {size} bytes, which do not fit its {} bytes",
            header.entry_count,
            d.len()
        )));
    }
    let mut entries = Vec::new();
    for k in 0..header.entry_count as usize {
        let at = restart_table::HEADER_LENGTH + k * size;
        if u32_at(d, at)? == restart_table::ENTRY_IN_USE {
            entries.push((at as u32, &d[at..at + size]));
        }
    }
    Ok((header, entries))
}

/// An entry of the open attribute table (§8.3): which attribute a record's `target_attribute`
/// names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenAttribute {
    /// Offset of the entry in the table (what records' `target_attribute` holds).
    pub slot: u32,
    /// MFT record number of the attribute's file.
    pub record: u64,
    /// Sequence number of the file reference.
    pub sequence: u16,
    /// Attribute type code.
    pub attribute_type: u32,
    /// Bytes per index buffer (0 when not an index).
    pub bytes_per_index_buffer: u32,
    /// Whether Windows had seen dirty pages of it.
    pub dirty_pages_seen: bool,
    /// LSN when it was opened.
    pub open_lsn: u64,
    /// The attribute's name ("" for none), from the names dump or the open record's undo bytes.
    pub name: String,
}

/// Parses one open attribute table entry of `version` (the first u32 is the in-use mark).
pub fn parse_open_attribute(
    e: &[u8],
    slot: u32,
    version: TableVersion,
) -> Result<OpenAttribute, NtfsError> {
    let (file_ref, open_lsn, seen, ty, ibs) = match version {
        TableVersion::V0 => (
            u64_at(e, open_attribute_v0::FILE_REFERENCE)?,
            u64_at(e, open_attribute_v0::OPEN_LSN)?,
            u8_at(e, open_attribute_v0::DIRTY_PAGES_SEEN)?,
            u32_at(e, open_attribute_v0::ATTRIBUTE_TYPE)?,
            u32_at(e, open_attribute_v0::BYTES_PER_INDEX_BUFFER)?,
        ),
        TableVersion::V1 => (
            u64_at(e, open_attribute_v1::FILE_REFERENCE)?,
            u64_at(e, open_attribute_v1::OPEN_LSN)?,
            u8_at(e, open_attribute_v1::DIRTY_PAGES_SEEN)?,
            u32_at(e, open_attribute_v1::ATTRIBUTE_TYPE)?,
            u32_at(e, open_attribute_v1::BYTES_PER_INDEX_BUFFER)?,
        ),
    };
    Ok(OpenAttribute {
        slot,
        record: file_ref & 0x0000_FFFF_FFFF_FFFF,
        sequence: (file_ref >> 48) as u16,
        attribute_type: ty,
        bytes_per_index_buffer: ibs,
        dirty_pages_seen: seen != 0,
        open_lsn,
        name: String::new(),
    })
}

/// The length of one open attribute entry of `version`.
pub fn open_attribute_length(version: TableVersion) -> usize {
    match version {
        TableVersion::V0 => open_attribute_v0::LENGTH,
        TableVersion::V1 => open_attribute_v1::LENGTH,
    }
}

/// Parses an open attribute table dump.
pub fn parse_open_attribute_table(
    d: &[u8],
    lsn: u64,
    version: TableVersion,
) -> Result<Vec<OpenAttribute>, NtfsError> {
    let (_, entries) = table_entries(
        d,
        lsn,
        "open attribute table",
        open_attribute_length(version),
    )?;
    entries
        .into_iter()
        .map(|(slot, e)| parse_open_attribute(e, slot, version))
        .collect()
}

/// Parses an attribute names dump (§8.4): (slot, name) pairs.
pub fn parse_attribute_names(d: &[u8], lsn: u64) -> Result<Vec<(u32, String)>, NtfsError> {
    let mut names = Vec::new();
    let mut at = 0usize;
    while at + 4 <= d.len() {
        let slot = u16_at(d, at)? as u32;
        if slot == 0 {
            break;
        }
        let length = u16_at(d, at + 2)? as usize;
        let bytes = slice(d, at + 4, length).map_err(|_| {
            damage(
                lsn,
                format!(
                    "the attribute names dumped at {lsn:#x} run past their {} bytes",
                    d.len()
                ),
            )
        })?;
        names.push((slot, utf16_name(&utf16_units(bytes))));
        // Name, then a u16 terminator.
        at += 4 + length + 2;
    }
    Ok(names)
}

/// An entry of the dirty page table (§8.5): a page Windows had changed in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirtyPage {
    /// Offset of the entry in the table.
    pub slot: u32,
    /// The open attribute table entry of the page's attribute.
    pub target_attribute: u32,
    /// Bytes of the page.
    pub transfer_length: u32,
    /// First VCN of the page.
    pub vcn: u64,
    /// The first record that dirtied the page since it was last written.
    pub oldest_lsn: u64,
    /// LCNs of the page's clusters.
    pub lcns: Vec<u64>,
}

/// Parses a dirty page table dump.
pub fn parse_dirty_page_table(
    d: &[u8],
    lsn: u64,
    version: TableVersion,
) -> Result<Vec<DirtyPage>, NtfsError> {
    let (target, transfer, count, vcn, oldest, list) = match version {
        TableVersion::V0 => (
            dirty_page_v0::TARGET_ATTRIBUTE,
            dirty_page_v0::TRANSFER_LENGTH,
            dirty_page_v0::LCN_COUNT,
            dirty_page_v0::VCN,
            dirty_page_v0::OLDEST_LSN,
            dirty_page_v0::LCN_LIST,
        ),
        TableVersion::V1 => (
            dirty_page_v1::TARGET_ATTRIBUTE,
            dirty_page_v1::TRANSFER_LENGTH,
            dirty_page_v1::LCN_COUNT,
            dirty_page_v1::VCN,
            dirty_page_v1::OLDEST_LSN,
            dirty_page_v1::LCN_LIST,
        ),
    };
    let (_, entries) = table_entries(d, lsn, "dirty page table", list)?;
    entries
        .into_iter()
        .map(|(slot, e)| {
            let lcn_count = u32_at(e, count)? as usize;
            if list + 8 * lcn_count > e.len() {
                return Err(damage(lsn, format!(
                    "dirty page entry {slot:#x} dumped at {lsn:#x} lists {lcn_count} LCNs in a {}-byte entry",
                    e.len()
                )));
            }
            Ok(DirtyPage {
                slot,
                target_attribute: u32_at(e, target)?,
                transfer_length: u32_at(e, transfer)?,
                vcn: u64_at(e, vcn)?,
                oldest_lsn: u64_at(e, oldest)?,
                lcns: (0..lcn_count)
                    .map(|k| u64_at(e, list + 8 * k))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

/// A transaction's state in the transaction table (§8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionState {
    /// 0: an entry without state.
    Uninitialized,
    /// 1: still running: undone at recovery.
    Active,
    /// 2: prepared.
    Prepared,
    /// 3: committed.
    Committed,
}

/// An entry of the transaction table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionEntry {
    /// Offset of the entry in the table: the transaction id records carry.
    pub id: u32,
    /// Its state.
    pub state: TransactionState,
    /// Its first record.
    pub first_lsn: u64,
    /// Its last record.
    pub previous_lsn: u64,
    /// The next record to undo.
    pub undo_next_lsn: u64,
    /// Records to undo.
    pub undo_records: u32,
    /// Bytes to undo.
    pub undo_bytes: u32,
}

/// Parses a transaction table dump.
pub fn parse_transaction_table(d: &[u8], lsn: u64) -> Result<Vec<TransactionEntry>, NtfsError> {
    let (_, entries) = table_entries(d, lsn, "transaction table", transaction_entry::LENGTH)?;
    entries
        .into_iter()
        .map(|(id, e)| {
            let state = match u8_at(e, transaction_entry::STATE)? {
                0 => TransactionState::Uninitialized,
                1 => TransactionState::Active,
                2 => TransactionState::Prepared,
                3 => TransactionState::Committed,
                other => {
                    return Err(damage(
                        lsn,
                        format!("transaction {id:#x} dumped at {lsn:#x} has state {other}"),
                    ))
                }
            };
            Ok(TransactionEntry {
                id,
                state,
                first_lsn: u64_at(e, transaction_entry::FIRST_LSN)?,
                previous_lsn: u64_at(e, transaction_entry::PREVIOUS_LSN)?,
                undo_next_lsn: u64_at(e, transaction_entry::UNDO_NEXT_LSN)?,
                undo_records: u32_at(e, transaction_entry::UNDO_RECORDS)?,
                undo_bytes: u32_at(e, transaction_entry::UNDO_BYTES)?,
            })
        })
        .collect()
}

/// The tables a checkpoint names, as dumped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckpointTables {
    /// Open attributes, with their names.
    pub open_attributes: Vec<OpenAttribute>,
    /// Dirty pages.
    pub dirty_pages: Vec<DirtyPage>,
    /// Transactions.
    pub transactions: Vec<TransactionEntry>,
}
