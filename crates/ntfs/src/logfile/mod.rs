//! `$LogFile`, the journal. After a crash (a BSOD boot loop) Windows leaves redo/undo records that
//! it will replay at the next mount — over any edit made offline — so every edit decision starts
//! here.
//!
//! [`log_state`] reads only the restart pages and says whether Windows would replay the log.
//! [`read_journal`] reads the journal itself, one module per on-disk structure: restart pages and
//! their client ([`restart`]), log record pages with their tail copies and buffer pages
//! ([`page`]), log records and their NTFS operations ([`record`]), the checkpoint and its tables
//! ([`checkpoint`]); [`reader`] walks the records from the checkpoint's oldest needed LSN to the
//! end of the log, and [`analysis`] says what they change. The format, with the evidence for
//! each field, is in `docs/logfile-format.md`.

pub mod analysis;
pub mod checkpoint;
pub mod page;
pub mod reader;
pub mod record;
pub mod replay;
pub mod restart;

pub use analysis::{analyse, JournalAnalysis};
pub use reader::{read_journal, Journal, LiveLog, LogEnd};
pub use record::{LogRecord, Operation};
pub use replay::{read_volume_journal, replay, ReplayPass, ReplayStep, ReplaySummary};
pub use restart::LfsVersion;

use crate::bytes::{u16_at, u32_at, u64_at};
use crate::layout::restart_area::{FLAG_VOLUME_IS_CLEAN, NO_CLIENT};
use crate::layout::{restart_area, restart_page};
use crate::{fixup, NtfsError, Structure};
use serde::{Deserialize, Serialize};

/// Whether Windows would replay `$LogFile` at the next mount (over an offline edit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogState {
    /// Nothing to replay: the log is empty (all 0xFF) or its restart area says clean.
    #[serde(rename = "clean")]
    Clean,
    /// A v1.x restart area with a client in use and no clean flag: Windows will replay it.
    #[serde(rename = "unclean")]
    Unclean,
    /// A v2.0 restart area (Windows 8 and later; Fast Startup or an abrupt stop).
    #[serde(rename = "v2.0")]
    V2,
    /// Neither restart page is valid: treat as unclean.
    #[serde(rename = "unreadable")]
    Unreadable,
}

impl LogState {
    /// Whether an offline edit is safe without consent to discard the journal.
    pub fn is_clean(self) -> bool {
        self == LogState::Clean
    }

    /// The state in plain words, for reports and refusals.
    pub fn describe(self) -> &'static str {
        match self {
            LogState::Clean => "clean",
            LogState::Unclean => "unclean",
            LogState::V2 => "version 2.0 (Windows 8 or later: Fast Startup or an abrupt stop)",
            LogState::Unreadable => "unreadable",
        }
    }
}

/// What the restart pages of `$LogFile` say, for the report and the decision to edit.
#[derive(Debug, Clone, Serialize)]
pub struct LogFileInfo {
    /// The verdict: clean, unclean, version 2.0 or unreadable.
    pub state: LogState,
    /// True when the whole restart area is 0xFF (fresh from mkntfs or reset by ntfsfix).
    pub empty: bool,
    /// "1.1", "2.0", ... of the restart page used.
    pub version: Option<String>,
    /// The current log sequence number of the newer restart page.
    pub current_lsn: Option<u64>,
    /// The restart area's clean-shutdown flag.
    pub clean_flag: Option<bool>,
    /// Whether a log client is still registered (an unclean v1.x log).
    pub clients_in_use: Option<bool>,
    /// How many of the two restart pages passed their checks.
    pub valid_restart_pages: u8,
    /// Bytes of `$LogFile` data.
    pub size: u64,
}

struct Restart {
    major: i16,
    minor: i16,
    current_lsn: u64,
    flags: u16,
    in_use_list: u16,
}

fn parse_restart_page(page: &[u8]) -> Result<Restart, NtfsError> {
    let magic = page.get(0..4);
    if magic != Some(b"RSTR") && magic != Some(b"CHKD") {
        return Err(NtfsError::damaged(
            Structure::LogFile,
            "no RSTR/CHKD signature",
        ));
    }
    let mut page = page.to_vec();
    fixup::apply_read(&mut page, "$LogFile restart page")?;
    let ra = u16_at(&page, restart_page::RESTART_AREA_OFFSET)? as usize;
    let minor = u16_at(&page, restart_page::MINOR_VERSION)? as i16;
    let major = u16_at(&page, restart_page::MAJOR_VERSION)? as i16;
    if ra < restart_page::HEADER_LENGTH || ra + restart_area::LENGTH > page.len() {
        return Err(NtfsError::damaged(
            Structure::LogFile,
            "restart area offset out of range",
        ));
    }
    Ok(Restart {
        major,
        minor,
        current_lsn: u64_at(&page, ra + restart_area::CURRENT_LSN)?,
        in_use_list: u16_at(&page, ra + restart_area::CLIENT_IN_USE_LIST)?,
        flags: u16_at(&page, ra + restart_area::FLAGS)?,
    })
}

/// Reads the state from the first bytes of `$LogFile`'s data, through `read(offset, len)`.
pub fn log_state(
    size: u64,
    read: &mut dyn FnMut(u64, usize) -> Result<Vec<u8>, NtfsError>,
) -> Result<LogFileInfo, NtfsError> {
    let mut info = LogFileInfo {
        state: LogState::Unreadable,
        empty: false,
        version: None,
        current_lsn: None,
        clean_flag: None,
        clients_in_use: None,
        valid_restart_pages: 0,
        size,
    };
    if size < 8192 {
        return Err(NtfsError::damaged(
            Structure::LogFile,
            format!("$LogFile is only {size} bytes"),
        ));
    }
    let first = read(0, 4096)?;
    if first.iter().all(|b| *b == 0xFF) {
        // Whole restart area erased: nothing to replay. Check the second page too.
        let second = read(4096, 4096)?;
        if second.iter().all(|b| *b == 0xFF) {
            info.state = LogState::Clean;
            info.empty = true;
            return Ok(info);
        }
    }
    // The system page size is in each restart page header; 4096 is usual.
    let mut pages = Vec::new();
    let page_size = match u32_at(&first, restart_page::SYSTEM_PAGE_SIZE) {
        Ok(p) if (512..=65536).contains(&p) && p.is_power_of_two() && (2 * p as u64) <= size => {
            p as u64
        }
        _ => 4096,
    };
    for k in 0..2u64 {
        let page = read(k * page_size, page_size as usize)?;
        if let Ok(r) = parse_restart_page(&page) {
            pages.push(r);
        }
    }
    info.valid_restart_pages = pages.len() as u8;
    let Some(r) = pages.into_iter().max_by_key(|r| r.current_lsn) else {
        return Ok(info);
    };
    info.version = Some(format!("{}.{}", r.major, r.minor));
    info.current_lsn = Some(r.current_lsn);
    let clean_flag = r.flags & FLAG_VOLUME_IS_CLEAN != 0;
    info.clean_flag = Some(clean_flag);
    info.clients_in_use = Some(r.in_use_list != NO_CLIENT);
    info.state = if r.major >= 2 {
        LogState::V2
    } else if r.major == 1 && (clean_flag || r.in_use_list == NO_CLIENT) {
        LogState::Clean
    } else if r.major == 1 {
        LogState::Unclean
    } else {
        LogState::Unreadable
    };
    Ok(info)
}
