//! Reading the journal: choosing the restart page, then walking log records from the checkpoint's
//! oldest needed LSN to the end of the log (`docs/logfile-format.md` §4.4, §5.3, §10.1).
//!
//! Only the restart pages, the tail copies or buffer pages, and the pages of the live span are
//! read, each once; everything goes through the caller's `read`, so the volume's block cache
//! serves repeated reads.

use serde::Serialize;

use crate::bytes::u64_at;
use crate::layout::log_record;
use crate::{Damage, Location, NtfsError, Structure};

use super::checkpoint::{
    parse_attribute_names, parse_client_restart, parse_dirty_page_table,
    parse_open_attribute_table, parse_transaction_table, CheckpointTables, ClientRestart,
};
use super::page::{PageReader, ReadFn, RecordPage};
use super::record::{damage, parse_record_header, LogRecord, Operation, RecordType};
use super::restart::{
    declared_page_size, parse_restart_page, LogClient, LsnGeometry, RestartMagic, RestartPage,
};

/// Why the walk through the log stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum LogEnd {
    /// No record at the next position: the log ends cleanly there.
    NoNextRecord {
        /// The LSN the next record would have had.
        next_lsn: u64,
    },
    /// The next record's header is there but its end is not in valid pages (a torn write).
    TornRecord {
        /// The torn record's LSN.
        lsn: u64,
    },
}

/// A record found at an LSN, or why none is there.
enum Found {
    Record(Box<LogRecord>, u64),
    NotThere,
    Torn,
}

/// Walks log records through a [`PageReader`].
pub struct RecordWalker<'r, 'a> {
    pages: PageReader<'r, 'a>,
    geometry: LsnGeometry,
    client_index: u16,
    client_seq: u16,
    /// The copy of the page the last record found ends in.
    last_end_page: Option<std::rc::Rc<RecordPage>>,
}

/// Records of one walk and where it stopped.
#[derive(Debug, Clone)]
pub struct Walk {
    /// The records, in LSN order.
    pub records: Vec<LogRecord>,
    /// Why it stopped.
    pub end: LogEnd,
    /// The copy of the page the last record ends in.
    pub end_page: Option<RecordPage>,
}

impl<'r, 'a> RecordWalker<'r, 'a> {
    /// A walker over the log described by `restart`, for the client in use `client_index`.
    pub fn new(
        read: &'r mut ReadFn<'a>,
        restart: &RestartPage,
        client_index: u16,
    ) -> Result<Self, NtfsError> {
        let geometry = LsnGeometry::of(restart)?;
        let client_seq = restart
            .area
            .clients
            .get(client_index as usize)
            .map_or(0, |c| c.seq_number);
        Ok(RecordWalker {
            pages: PageReader::new(read, geometry, restart.version),
            geometry,
            client_index,
            client_seq,
            last_end_page: None,
        })
    }

    /// The 2.0 buffer pages read so far instead of the page in place.
    pub fn buffer_copies_used(&self) -> Vec<RecordPage> {
        self.pages
            .buffer_copies_used
            .iter()
            .map(|p| p.as_ref().clone())
            .collect()
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.pages.bytes_read
    }

    /// The geometry of the log.
    pub fn geometry(&self) -> LsnGeometry {
        self.geometry
    }

    fn record_at(&mut self, lsn: u64) -> Result<Found, NtfsError> {
        let g = self.geometry;
        let offset = g.offset(lsn);
        let sequence = g.sequence(lsn);
        let in_page = offset % g.page_size;
        if !g.in_record_area(offset)
            || in_page < g.data_offset
            || in_page + g.header_length > g.page_size
            || !in_page.is_multiple_of(8)
        {
            return Ok(Found::NotThere);
        }
        let mut page_offset = offset - in_page;
        let Some(mut page) = self.pages.page(page_offset)? else {
            return Ok(Found::NotThere);
        };
        if page.effective_last_lsn() < lsn {
            return Ok(Found::NotThere);
        }
        let start = in_page as usize;
        let head = &page.bytes[start..start + log_record::HEADER_LENGTH];
        if u64_at(head, log_record::THIS_LSN)? != lsn {
            return Ok(Found::NotThere);
        }
        let header = parse_record_header(head, lsn)?;
        if header.client_index != self.client_index || header.client_seq_number != self.client_seq {
            return Err(damage(lsn, format!(
                "log record {lsn:#x} belongs to client {} (sequence {}), not to the log's client {} (sequence {})",
                header.client_index, header.client_seq_number, self.client_index, self.client_seq
            )));
        }
        let data_length = header.client_data_length as u64;
        if !data_length.is_multiple_of(8) || data_length > g.end - g.first_page {
            return Err(damage(
                lsn,
                format!("log record {lsn:#x} claims {data_length} bytes of client data"),
            ));
        }
        // Gather the record across pages (wrapping to the first record page, one lap further).
        let total = (g.header_length + data_length) as usize;
        // Grow with the pages actually read: a hostile length must not allocate up front.
        let mut bytes = Vec::with_capacity(total.min(4 * g.page_size as usize));
        let mut position = start;
        let mut lap = sequence;
        loop {
            let take = (total - bytes.len()).min(g.page_size as usize - position);
            bytes.extend_from_slice(&page.bytes[position..position + take]);
            position += take;
            if bytes.len() == total {
                break;
            }
            page_offset += g.page_size;
            if page_offset >= g.end {
                page_offset = g.first_page;
                lap += 1;
            }
            let Some(next) = self.pages.page(page_offset)? else {
                return Ok(Found::Torn);
            };
            if next.effective_last_lsn().max(next.header.last_end_lsn) < lsn {
                return Ok(Found::Torn);
            }
            page = next;
            position = g.data_offset as usize;
        }
        if page.header.last_end_lsn < lsn {
            return Ok(Found::Torn);
        }
        // The next record: 8-aligned, on the next page when too little room is left.
        let mut next = (position as u64).div_ceil(8) * 8;
        if next + g.header_length > g.page_size {
            page_offset += g.page_size;
            if page_offset >= g.end {
                page_offset = g.first_page;
                lap += 1;
            }
            next = g.data_offset;
        }
        let next_lsn = lap
            .checked_shl(g.file_data_bits)
            .filter(|_| lap >> (64 - g.file_data_bits) == 0)
            .map(|_| g.lsn(page_offset + next, lap))
            .unwrap_or(0);
        let data = bytes.split_off(g.header_length as usize);
        let record = LogRecord::new(header, data)?;
        self.last_end_page = Some(page);
        Ok(Found::Record(Box::new(record), next_lsn))
    }

    /// Reads forward from the record at `from` (which must be there) to the end of the log.
    pub fn walk(&mut self, from: u64) -> Result<Walk, NtfsError> {
        let g = self.geometry;
        let budget = g.end - g.first_page;
        let mut walked = 0u64;
        let mut records = Vec::new();
        let mut lsn = from;
        let end = loop {
            match self.record_at(lsn)? {
                Found::Record(record, next) => {
                    walked += g.header_length + record.data.len() as u64;
                    if walked > budget {
                        return Err(damage(lsn, format!(
                            "the records from {from:#x} on are longer than the log's {budget} bytes: the log wraps onto itself"
                        )));
                    }
                    records.push(*record);
                    if next <= lsn {
                        break LogEnd::NoNextRecord { next_lsn: next };
                    }
                    lsn = next;
                }
                Found::NotThere if records.is_empty() => {
                    return Err(damage(
                        lsn,
                        format!("the journal has no record at LSN {lsn:#x}, where its restart area points"),
                    ))
                }
                Found::NotThere => break LogEnd::NoNextRecord { next_lsn: lsn },
                Found::Torn if records.is_empty() => {
                    return Err(damage(
                        lsn,
                        format!("log record {lsn:#x}, where the restart area points, is torn: its end was never written"),
                    ))
                }
                Found::Torn => break LogEnd::TornRecord { lsn },
            }
        };
        let end_page = self.last_end_page.as_deref().cloned();
        Ok(Walk {
            records,
            end,
            end_page,
        })
    }

    /// The one record at `lsn`, which must be there and complete.
    pub fn record(&mut self, lsn: u64) -> Result<LogRecord, NtfsError> {
        match self.record_at(lsn)? {
            Found::Record(record, _) => Ok(*record),
            Found::NotThere => Err(damage(
                lsn,
                format!("the journal has no record at LSN {lsn:#x}"),
            )),
            Found::Torn => Err(damage(
                lsn,
                format!("log record {lsn:#x} is torn: its end was never written"),
            )),
        }
    }
}

/// The journal's live part: the checkpoint and the records from the oldest one it needs.
#[derive(Debug, Clone)]
pub struct LiveLog {
    /// Index of the client in use in the restart area's client array.
    pub client_index: u16,
    /// That client ("NTFS").
    pub client: LogClient,
    /// How LSNs map to offsets.
    pub geometry: LsnGeometry,
    /// The client restart record at the client's restart LSN.
    pub checkpoint: ClientRestart,
    /// The tables it names, with the open attributes' names.
    pub tables: CheckpointTables,
    /// Every record from the oldest LSN needed to the end of the log, in LSN order.
    pub records: Vec<LogRecord>,
    /// Why the log ends where it does.
    pub end: LogEnd,
    /// The current copy of the page the last record ends in (the page in place, a 1.1 tail copy
    /// or a 2.0 buffer page), without its fixups.
    pub end_page: Option<RecordPage>,
    /// 2.0 buffer pages the walk read instead of the page in place (their target at 0x3C).
    pub buffer_copies: Vec<RecordPage>,
}

impl LiveLog {
    /// The LSN of the last complete record.
    pub fn last_lsn(&self) -> u64 {
        self.records.last().map_or(0, LogRecord::lsn)
    }

    /// The records after the checkpoint's start (what the analysis pass reads).
    pub fn after_checkpoint(&self) -> &[LogRecord] {
        let start = self.checkpoint.checkpoint_start_lsn;
        let first = self.records.partition_point(|r| r.lsn() <= start);
        &self.records[first..]
    }
}

/// What `$LogFile` holds: the chosen restart page and, for an open log, its live part.
#[derive(Debug, Clone)]
pub struct Journal {
    /// Bytes of `$LogFile`'s data.
    pub data_size: u64,
    /// The restart page used; `None` when the log is empty (all 0xFF).
    pub restart: Option<RestartPage>,
    /// Restart pages that failed their checks (the other copy was used).
    pub damaged_restart_pages: Vec<Damage>,
    /// The checkpoint and records; `None` when the log is empty, obsolete (`CHKD`) or closed.
    pub live: Option<LiveLog>,
    /// Bytes read through the caller's `read`.
    pub bytes_read: u64,
}

/// Reads `$LogFile` (`data_size` bytes) through `read(offset, len)`: both restart pages, then, when
/// a client is in use, its checkpoint and every record from the oldest LSN it needs to the end of
/// the log. Damage that makes recovery impossible is an error: both restart pages unusable, the
/// checkpoint missing or torn, a record out of place, the log ending before the restart area's
/// current LSN.
pub fn read_journal(data_size: u64, read: &mut ReadFn<'_>) -> Result<Journal, NtfsError> {
    let mut bytes_read = 0u64;
    let mut counted = |offset: u64, len: usize| -> Result<Vec<u8>, NtfsError> {
        bytes_read += len as u64;
        read(offset, len)
    };
    if data_size < 8192 {
        return Err(NtfsError::damaged(
            Structure::LogFile,
            format!("$LogFile is only {data_size} bytes"),
        ));
    }
    let first = counted(0, 4096)?;
    if first.iter().all(|b| *b == 0xFF) && counted(4096, 4096)?.iter().all(|b| *b == 0xFF) {
        return Ok(Journal {
            data_size,
            restart: None,
            damaged_restart_pages: Vec::new(),
            live: None,
            bytes_read,
        });
    }
    let (restart, damaged) = choose_restart_page(data_size, first, &mut counted)?;
    let mut journal = Journal {
        data_size,
        restart: Some(restart.clone()),
        damaged_restart_pages: damaged,
        live: None,
        bytes_read: 0,
    };
    let client = match (restart.magic, restart.area.client_in_use()) {
        (RestartMagic::Restart, Some((index, client))) => (index, client.clone()),
        _ => {
            journal.bytes_read = bytes_read;
            return Ok(journal);
        }
    };
    let mut walker = RecordWalker::new(&mut counted, &restart, client.0)?;
    let live = read_live(&mut walker, &restart, client)?;
    drop(walker);
    journal.live = Some(live);
    journal.bytes_read = bytes_read;
    Ok(journal)
}

/// Reads both restart pages and picks the one with the larger current LSN.
fn choose_restart_page(
    data_size: u64,
    first: Vec<u8>,
    read: &mut ReadFn<'_>,
) -> Result<(RestartPage, Vec<Damage>), NtfsError> {
    let mut found: Vec<Result<RestartPage, NtfsError>> = Vec::new();
    let page0 = match declared_page_size(&first) {
        Some(p) if p as usize > first.len() && 2 * p as u64 <= data_size => read(0, p as usize)?,
        _ => first,
    };
    let page0 = parse_restart_page(0, &page0, data_size);
    // The second page sits at the system page size; when the first is unusable, probe the sizes
    // it may sit at, up to the first record page.
    let candidates: Vec<u64> = match &page0 {
        Ok(p) => vec![p.system_page_size as u64],
        Err(_) => (9..=16).map(|b| 1u64 << b).collect(),
    };
    found.push(page0);
    for at in candidates {
        if 2 * at > data_size {
            break;
        }
        let head = read(at, 512)?;
        match head.get(0..4) {
            Some(b"RSTR") | Some(b"CHKD") => {}
            Some(b"RCRD") => break,
            _ if found[0].is_ok() => {
                found.push(parse_restart_page(at, &head, data_size));
                break;
            }
            _ => continue,
        }
        let page = match declared_page_size(&head) {
            Some(size) if at + size as u64 <= data_size && size > 512 => read(at, size as usize)?,
            _ => head,
        };
        found.push(parse_restart_page(at, &page, data_size));
        break;
    }
    let mut valid = Vec::new();
    let mut damaged = Vec::new();
    let mut unsupported = None;
    for f in found {
        match f {
            Ok(p) => valid.push(p),
            Err(NtfsError::Corrupt(d)) => damaged.push(d),
            Err(e @ NtfsError::Unsupported(_)) => unsupported = Some(e),
            Err(e) => return Err(e),
        }
    }
    let Some(best) = valid.into_iter().max_by_key(|p| p.area.current_lsn) else {
        if let Some(e) = unsupported {
            return Err(e);
        }
        let details: Vec<String> = damaged.iter().map(|d| d.detail.clone()).collect();
        return Err(NtfsError::damaged_at(
            Structure::LogFile,
            Location::LogOffset { offset: 0 },
            format!(
                "both restart pages of $LogFile are damaged ({}); the journal cannot be read — let Windows run chkdsk on the volume",
                details.join("; ")
            ),
        ));
    };
    Ok((best, damaged))
}

fn read_live(
    walker: &mut RecordWalker<'_, '_>,
    restart: &RestartPage,
    (client_index, client): (u16, LogClient),
) -> Result<LiveLog, NtfsError> {
    let restart_lsn = client.restart_lsn;
    let checkpoint_record = walker.record(restart_lsn)?;
    if checkpoint_record.header.record_type != RecordType::ClientRestart {
        return Err(damage(
            restart_lsn,
            format!("the checkpoint at LSN {restart_lsn:#x} is not a client restart record"),
        ));
    }
    let checkpoint = parse_client_restart(&checkpoint_record.data, restart_lsn)?;
    let table_lsns = [
        checkpoint.open_attribute_table_lsn,
        checkpoint.attribute_names_lsn,
        checkpoint.dirty_page_table_lsn,
        checkpoint.transaction_table_lsn,
    ];
    let start = [
        client.oldest_lsn,
        checkpoint.checkpoint_start_lsn,
        restart_lsn,
    ]
    .into_iter()
    .chain(table_lsns)
    .filter(|l| *l != 0)
    .min()
    .unwrap_or(restart_lsn);
    let walk = walker.walk(start)?;
    let last = walk.records.last().map_or(0, LogRecord::lsn);
    if last < restart.area.current_lsn {
        return Err(damage(
            last,
            format!(
                "the journal ends at LSN {last:#x}, before the restart area's current LSN {:#x}: a record is torn or missing",
                restart.area.current_lsn
            ),
        ));
    }
    let find = |lsn: u64, op: Operation| -> Result<Option<&LogRecord>, NtfsError> {
        if lsn == 0 {
            return Ok(None);
        }
        let i = walk.records.binary_search_by_key(&lsn, LogRecord::lsn);
        match i.ok().map(|i| &walk.records[i]) {
            Some(r) if r.operation.as_ref().is_some_and(|o| o.redo == op) => Ok(Some(r)),
            _ => Err(damage(
                lsn,
                format!("the checkpoint names LSN {lsn:#x} as its {op:?}, but no such record is in the log"),
            )),
        }
    };
    let version = checkpoint.table_version;
    let mut tables = CheckpointTables::default();
    if let Some(r) = find(
        checkpoint.open_attribute_table_lsn,
        Operation::OpenAttributeTableDump,
    )? {
        tables.open_attributes = parse_open_attribute_table(&r.redo_bytes(), r.lsn(), version)?;
    }
    if let Some(r) = find(
        checkpoint.attribute_names_lsn,
        Operation::AttributeNamesDump,
    )? {
        for (slot, name) in parse_attribute_names(&r.redo_bytes(), r.lsn())? {
            if let Some(a) = tables.open_attributes.iter_mut().find(|a| a.slot == slot) {
                a.name = name;
            }
        }
    }
    if let Some(r) = find(
        checkpoint.dirty_page_table_lsn,
        Operation::DirtyPageTableDump,
    )? {
        tables.dirty_pages = parse_dirty_page_table(&r.redo_bytes(), r.lsn(), version)?;
    }
    if let Some(r) = find(
        checkpoint.transaction_table_lsn,
        Operation::TransactionTableDump,
    )? {
        tables.transactions = parse_transaction_table(&r.redo_bytes(), r.lsn())?;
    }
    Ok(LiveLog {
        client_index,
        client,
        geometry: walker.geometry(),
        checkpoint,
        tables,
        records: walk.records,
        end: walk.end,
        end_page: walk.end_page,
        buffer_copies: walker.buffer_copies_used(),
    })
}
