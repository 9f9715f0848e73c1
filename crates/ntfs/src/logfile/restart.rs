//! Restart pages (`RSTR`/`CHKD`), their restart area and its client array
//! (`docs/logfile-format.md` §4).

use serde::{Deserialize, Serialize};

use crate::bytes::{u16_at, u32_at, u64_at, utf16_name, utf16_units};
use crate::layout::restart_area::{FLAG_VOLUME_IS_CLEAN, NO_CLIENT};
use crate::layout::{log_client, multi_sector, restart_area, restart_page};
use crate::{fixup, Location, NtfsError, Structure, Unsupported};

/// Smallest and largest page size accepted (system or log page).
const MIN_PAGE: u32 = 512;
const MAX_PAGE: u32 = 65536;
/// Bytes of a restart page readable before fixups are applied (the last two of the first sector
/// hold the update sequence number).
const BEFORE_FIXUPS: usize = 510;
/// Largest `$LogFile` NTFS writes (4 GiB).
pub const MAX_LOG_SIZE: u64 = 1 << 32;

/// What a restart page's signature says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartMagic {
    /// `RSTR`: an ordinary restart page.
    Restart,
    /// `CHKD`: chkdsk repaired the volume and made the log obsolete.
    Chkdsk,
}

/// The log file service version of a restart page kaifuku reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LfsVersion {
    /// 1.1: Windows NT to 7, and Windows 8 and later after a clean dismount.
    #[serde(rename = "1.1")]
    V1_1,
    /// 2.0: Windows 8 and later while the volume is mounted.
    #[serde(rename = "2.0")]
    V2_0,
}

impl LfsVersion {
    /// Page index (in log pages) where the circular record area starts.
    pub fn first_log_page(self) -> u64 {
        match self {
            LfsVersion::V1_1 => 4,
            LfsVersion::V2_0 => 34,
        }
    }
}

/// One client of the log ("NTFS").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogClient {
    /// The oldest LSN the client still needs for recovery.
    pub oldest_lsn: u64,
    /// LSN of the client's latest client restart record (its checkpoint).
    pub restart_lsn: u64,
    /// Previous client in its list, 0xFFFF for none.
    pub prev_client: u16,
    /// Next client in its list, 0xFFFF for none.
    pub next_client: u16,
    /// Sequence number the client's record headers carry.
    pub seq_number: u16,
    /// The client's name ("NTFS").
    pub name: String,
}

/// The restart area of a restart page (§4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartArea {
    /// LSN of the last record when the page was written.
    pub current_lsn: u64,
    /// Entries in the client array.
    pub client_count: u16,
    /// First free client, 0xFFFF for none.
    pub free_list: u16,
    /// First client in use, 0xFFFF for none (a closed log).
    pub in_use_list: u16,
    /// 0x0002: cleanly dismounted.
    pub flags: u16,
    /// Bits of an LSN that count laps.
    pub seq_number_bits: u32,
    /// Bytes of the area and its client array.
    pub restart_area_length: u16,
    /// Offset of the client array from the area's start.
    pub client_array_offset: u16,
    /// Usable bytes of the log.
    pub log_file_size: u64,
    /// Client data length of the record at `current_lsn`.
    pub last_lsn_data_length: u32,
    /// Bytes of a log record header (0x30).
    pub record_header_length: u16,
    /// Where records start in a record page.
    pub log_page_data_offset: u16,
    /// Changes each time the log is opened.
    pub open_count: u32,
    /// The client array.
    pub clients: Vec<LogClient>,
}

impl RestartArea {
    /// Whether the area says the volume was dismounted cleanly.
    pub fn clean_flag(&self) -> bool {
        self.flags & FLAG_VOLUME_IS_CLEAN != 0
    }

    /// The client in use, if the log is open.
    pub fn client_in_use(&self) -> Option<(u16, &LogClient)> {
        if self.in_use_list == NO_CLIENT {
            return None;
        }
        self.clients
            .get(self.in_use_list as usize)
            .map(|c| (self.in_use_list, c))
    }
}

/// A restart page that passed every check (§4.4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartPage {
    /// Where the page is in `$LogFile`.
    pub offset: u64,
    /// `RSTR` or `CHKD`.
    pub magic: RestartMagic,
    /// Last LSN chkdsk saw (`CHKD` only).
    pub chkdsk_lsn: u64,
    /// System page size (the size of this page).
    pub system_page_size: u32,
    /// Log record page size.
    pub log_page_size: u32,
    /// Offset of the restart area in the page.
    pub restart_area_offset: u16,
    /// The version.
    pub version: LfsVersion,
    /// The restart area.
    pub area: RestartArea,
}

/// A restart page could not be used: the reason, where the page is.
fn bad(offset: u64, detail: String) -> NtfsError {
    NtfsError::damaged_at(
        Structure::LogFile,
        Location::LogOffset { offset },
        format!("$LogFile restart page at byte {offset}: {detail}"),
    )
}

/// The page size a restart page declares, read before fixups, when it is plausible.
pub fn declared_page_size(page: &[u8]) -> Option<u32> {
    let p = u32_at(page, restart_page::SYSTEM_PAGE_SIZE).ok()?;
    ((MIN_PAGE..=MAX_PAGE).contains(&p) && p.is_power_of_two()).then_some(p)
}

/// Parses and checks the restart page read at `offset` (`page` holds at least its system page
/// size). `data_size` is the size of `$LogFile`'s data. A version other than 1.1 and 2.0 is
/// [`Unsupported::LogVersion`]; everything else wrong is damage at the page.
pub fn parse_restart_page(
    offset: u64,
    page: &[u8],
    data_size: u64,
) -> Result<RestartPage, NtfsError> {
    let magic = match page.get(0..4) {
        Some(b"RSTR") => RestartMagic::Restart,
        Some(b"CHKD") => RestartMagic::Chkdsk,
        _ => return Err(bad(offset, "no RSTR or CHKD signature".into())),
    };
    let system_page_size = declared_page_size(page).ok_or_else(|| {
        bad(
            offset,
            "the system page size is not a power of two from 512 to 65536".into(),
        )
    })?;
    let log_page_size = u32_at(page, restart_page::LOG_PAGE_SIZE)?;
    if !(MIN_PAGE..=MAX_PAGE).contains(&log_page_size) || !log_page_size.is_power_of_two() {
        return Err(bad(
            offset,
            format!("log page size {log_page_size} is not a power of two from 512 to 65536"),
        ));
    }
    let Some(bytes) = page.get(..system_page_size as usize) else {
        return Err(bad(
            offset,
            "the page is shorter than its system page size".into(),
        ));
    };
    let mut page = bytes.to_vec();
    let ra = u16_at(&page, restart_page::RESTART_AREA_OFFSET)? as usize;
    let usa_end = u16_at(&page, multi_sector::USA_OFFSET)? as usize
        + 2 * u16_at(&page, multi_sector::USA_COUNT)? as usize;
    // The fields up to the log size and the start of the client array must be readable before
    // fixups (ntfs3 and ntfs-3g check the same).
    if !ra.is_multiple_of(8) || ra < usa_end || ra + restart_area::LOG_FILE_SIZE + 8 > BEFORE_FIXUPS
    {
        return Err(bad(
            offset,
            format!("restart area offset {ra} is out of range"),
        ));
    }
    fixup::apply_read(&mut page, "$LogFile restart page")
        .map_err(|e| bad(offset, e.to_string()))?;
    let minor = u16_at(&page, restart_page::MINOR_VERSION)? as i16;
    let major = u16_at(&page, restart_page::MAJOR_VERSION)? as i16;
    let version = match (major, minor) {
        (1, 1) => LfsVersion::V1_1,
        (2, 0) => LfsVersion::V2_0,
        _ => {
            return Err(NtfsError::Unsupported(Unsupported::LogVersion {
                major,
                minor,
            }))
        }
    };
    let area = parse_restart_area(offset, &page, ra, data_size)?;
    Ok(RestartPage {
        offset,
        magic,
        chkdsk_lsn: u64_at(&page, restart_page::CHKDSK_LSN)?,
        system_page_size,
        log_page_size,
        restart_area_offset: ra as u16,
        version,
        area,
    })
}

fn parse_restart_area(
    offset: u64,
    page: &[u8],
    ra: usize,
    data_size: u64,
) -> Result<RestartArea, NtfsError> {
    let field16 = |f: usize| u16_at(page, ra + f);
    let client_count = field16(restart_area::CLIENT_COUNT)?;
    let free_list = field16(restart_area::CLIENT_FREE_LIST)?;
    let in_use_list = field16(restart_area::CLIENT_IN_USE_LIST)?;
    let restart_area_length = field16(restart_area::RESTART_AREA_LENGTH)?;
    let client_array_offset = field16(restart_area::CLIENT_ARRAY_OFFSET)?;
    let record_header_length = field16(restart_area::RECORD_HEADER_LENGTH)?;
    let log_page_data_offset = field16(restart_area::LOG_PAGE_DATA_OFFSET)?;
    let seq_number_bits = u32_at(page, ra + restart_area::SEQ_NUMBER_BITS)?;
    let log_file_size = u64_at(page, ra + restart_area::LOG_FILE_SIZE)?;
    let clients_end = client_array_offset as usize + client_count as usize * log_client::LENGTH;
    if !client_array_offset.is_multiple_of(8)
        || ra + client_array_offset as usize > BEFORE_FIXUPS
        || clients_end > restart_area_length as usize
        || ra + restart_area_length as usize > page.len()
    {
        return Err(bad(offset, format!(
            "the client array ({client_count} clients at {client_array_offset}) does not fit the {restart_area_length}-byte restart area"
        )));
    }
    for (list, name) in [(free_list, "free"), (in_use_list, "in-use")] {
        if list != NO_CLIENT && list >= client_count {
            return Err(bad(
                offset,
                format!("the {name} client list starts at client {list} of {client_count}"),
            ));
        }
    }
    if log_file_size > data_size || log_file_size > MAX_LOG_SIZE || log_file_size == 0 {
        return Err(bad(
            offset,
            format!(
            "the restart area's log size {log_file_size} exceeds the {data_size} bytes of $LogFile"
        ),
        ));
    }
    let expected_bits = 67 - (64 - log_file_size.leading_zeros());
    if seq_number_bits != expected_bits {
        return Err(bad(offset, format!(
            "{seq_number_bits} sequence number bits do not match the log size {log_file_size} ({expected_bits} expected)"
        )));
    }
    if !record_header_length.is_multiple_of(8)
        || (record_header_length as usize) < crate::layout::log_record::HEADER_LENGTH
        || !log_page_data_offset.is_multiple_of(8)
    {
        return Err(bad(offset, format!(
            "record header length {record_header_length} or page data offset {log_page_data_offset} is not a multiple of 8"
        )));
    }
    let mut clients = Vec::with_capacity(client_count as usize);
    for k in 0..client_count as usize {
        let c = ra + client_array_offset as usize + k * log_client::LENGTH;
        let name_length = (u32_at(page, c + log_client::NAME_LENGTH)? as usize)
            .min(log_client::NAME_CAPACITY)
            & !1;
        let name = crate::bytes::slice(page, c + log_client::NAME, name_length)?;
        clients.push(LogClient {
            oldest_lsn: u64_at(page, c + log_client::OLDEST_LSN)?,
            restart_lsn: u64_at(page, c + log_client::RESTART_LSN)?,
            prev_client: u16_at(page, c + log_client::PREV_CLIENT)?,
            next_client: u16_at(page, c + log_client::NEXT_CLIENT)?,
            seq_number: u16_at(page, c + log_client::SEQ_NUMBER)?,
            name: utf16_name(&utf16_units(name)),
        });
    }
    Ok(RestartArea {
        current_lsn: u64_at(page, ra + restart_area::CURRENT_LSN)?,
        client_count,
        free_list,
        in_use_list,
        flags: field16(restart_area::FLAGS)?,
        seq_number_bits,
        restart_area_length,
        client_array_offset,
        log_file_size,
        last_lsn_data_length: u32_at(page, ra + restart_area::LAST_LSN_DATA_LENGTH)?,
        record_header_length,
        log_page_data_offset,
        open_count: u32_at(page, ra + restart_area::OPEN_COUNT)?,
        clients,
    })
}

/// How LSNs map to byte offsets of one log (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LsnGeometry {
    /// Bits of the LSN that hold the offset in 8-byte units.
    pub file_data_bits: u32,
    /// Log record page size.
    pub page_size: u64,
    /// Offset of the first log record page.
    pub first_page: u64,
    /// Offset just past the last log record page.
    pub end: u64,
    /// Where records start in a page.
    pub data_offset: u64,
    /// Bytes of a record header.
    pub header_length: u64,
}

impl LsnGeometry {
    /// The geometry of the log a checked restart page describes, or damage when its record area
    /// is too small to hold a record.
    pub fn of(page: &RestartPage) -> Result<LsnGeometry, NtfsError> {
        let page_size = page.log_page_size as u64;
        let first_page = page.version.first_log_page() * page_size;
        let end = page.area.log_file_size & !(page_size - 1);
        let data_offset = page.area.log_page_data_offset as u64;
        let header_length = page.area.record_header_length as u64;
        if end <= first_page || data_offset + header_length > page_size || data_offset < 0x28 {
            return Err(bad(page.offset, format!(
                "a {}-byte log with {page_size}-byte pages and records from byte {data_offset} of a page holds no record page",
                page.area.log_file_size
            )));
        }
        Ok(LsnGeometry {
            file_data_bits: 64 - page.area.seq_number_bits,
            page_size,
            first_page,
            end,
            data_offset,
            header_length,
        })
    }

    /// Byte offset of an LSN in `$LogFile`.
    pub fn offset(&self, lsn: u64) -> u64 {
        (lsn & ((1u64 << self.file_data_bits) - 1)) << 3
    }

    /// The lap (sequence number) of an LSN.
    pub fn sequence(&self, lsn: u64) -> u64 {
        lsn >> self.file_data_bits
    }

    /// The LSN of byte `offset` in lap `sequence`.
    pub fn lsn(&self, offset: u64, sequence: u64) -> u64 {
        (sequence << self.file_data_bits) | (offset >> 3)
    }

    /// Whether `offset` lies in the record area.
    pub fn in_record_area(&self, offset: u64) -> bool {
        (self.first_page..self.end).contains(&offset)
    }
}
