//! Log record pages (`RCRD`): their header, fixups, and which copy of a page is current — the page
//! in place, a 1.1 tail copy or a 2.0 buffer page (`docs/logfile-format.md` §5.1, §5.6).

use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;

use crate::bytes::{u16_at, u32_at, u64_at};
use crate::fixup;
use crate::layout::record_page;
use crate::NtfsError;

use super::restart::{LfsVersion, LsnGeometry};

/// The header of a log record page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordPageHeader {
    /// LSN of the last record starting in the page; in 1.1 tail copies, the file offset of the
    /// page they stand for.
    pub last_lsn: u64,
    /// 0x0001 some record ends here; 0x0002 (2.0) the page holds a client restart record.
    pub flags: u32,
    /// Pages written together in one I/O.
    pub page_count: u16,
    /// 1-based position in that I/O.
    pub page_position: u16,
    /// Offset just past the last record that ends in the page.
    pub next_record_offset: u16,
    /// LSN of the last record that ends in the page.
    pub last_end_lsn: u64,
    /// In 2.0 buffer pages, the offset of the page they stand for (0 elsewhere).
    pub buffer_target_offset: u32,
}

/// A record page whose signature and fixups passed, with its fixups removed.
#[derive(Debug, Clone)]
pub struct RecordPage {
    /// Where the bytes were read from (a tail copy or buffer page when it replaces another).
    pub read_from: u64,
    /// The header.
    pub header: RecordPageHeader,
    /// The page's bytes without fixups.
    pub bytes: Vec<u8>,
    /// A 1.1 tail copy, whose `last_lsn` field holds the offset of the page it stands for.
    pub tail_copy: bool,
}

impl RecordPage {
    /// The LSN of the last record known to start in the page. A tail copy does not say; the last
    /// record that ends in it is the last one it holds whole.
    pub fn effective_last_lsn(&self) -> u64 {
        if self.tail_copy {
            self.header.last_end_lsn
        } else {
            self.header.last_lsn
        }
    }
}

/// Parses a page read from `offset`; `None` when it is not a usable `RCRD` page (never written,
/// stale garbage, or torn: its fixups fail).
pub fn parse_record_page(offset: u64, raw: &[u8]) -> Option<RecordPage> {
    if raw.get(0..4) != Some(b"RCRD") {
        return None;
    }
    let mut bytes = raw.to_vec();
    fixup::apply_read(&mut bytes, "$LogFile record page").ok()?;
    let header = RecordPageHeader {
        last_lsn: u64_at(&bytes, record_page::LAST_LSN).ok()?,
        flags: u32_at(&bytes, record_page::FLAGS).ok()?,
        page_count: u16_at(&bytes, record_page::PAGE_COUNT).ok()?,
        page_position: u16_at(&bytes, record_page::PAGE_POSITION).ok()?,
        next_record_offset: u16_at(&bytes, record_page::NEXT_RECORD_OFFSET).ok()?,
        last_end_lsn: u64_at(&bytes, record_page::LAST_END_LSN).ok()?,
        buffer_target_offset: u32_at(&bytes, record_page::BUFFER_TARGET_OFFSET).ok()?,
    };
    Some(RecordPage {
        read_from: offset,
        header,
        bytes,
        tail_copy: false,
    })
}

/// The reads a journal walk makes, with the function that does them.
pub type ReadFn<'a> = dyn FnMut(u64, usize) -> Result<Vec<u8>, NtfsError> + 'a;

/// Reads record pages on demand, each at most once, putting the newest copy of the partly written
/// last page (1.1 tail copies, 2.0 buffer pages) in place of the stale page it stands for.
pub struct PageReader<'r, 'a> {
    read: &'r mut ReadFn<'a>,
    geometry: LsnGeometry,
    version: LfsVersion,
    /// Newest copy per target offset, loaded on first use.
    overlays: Option<HashMap<u64, Rc<RecordPage>>>,
    pages: HashMap<u64, Option<Rc<RecordPage>>>,
    /// The 2.0 buffer pages chosen over the page in place, in the order they were first used: a
    /// replay writes them back in place before it marks the log clean (§17.5).
    pub buffer_copies_used: Vec<Rc<RecordPage>>,
    /// Bytes read through `read`, for the caller's budget.
    pub bytes_read: u64,
}

impl<'r, 'a> PageReader<'r, 'a> {
    /// A reader over the log `geometry` describes.
    pub fn new(read: &'r mut ReadFn<'a>, geometry: LsnGeometry, version: LfsVersion) -> Self {
        PageReader {
            read,
            geometry,
            version,
            overlays: None,
            pages: HashMap::new(),
            buffer_copies_used: Vec::new(),
            bytes_read: 0,
        }
    }

    fn read_raw(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, NtfsError> {
        self.bytes_read += len as u64;
        (self.read)(offset, len)
    }

    /// The tail copies (1.1, pages 2–3) or buffer pages (2.0, pages 2–33), newest per target, read
    /// in one piece on the first page request.
    fn load_overlays(&mut self) -> Result<(), NtfsError> {
        if self.overlays.is_some() {
            return Ok(());
        }
        let ps = self.geometry.page_size;
        let first = 2 * ps;
        let count = self.version.first_log_page() - 2;
        let raw = self.read_raw(first, (count * ps) as usize)?;
        let mut best: HashMap<u64, Rc<RecordPage>> = HashMap::new();
        for (k, chunk) in raw.chunks_exact(ps as usize).enumerate() {
            let at = first + k as u64 * ps;
            let Some(mut page) = parse_record_page(at, chunk) else {
                continue;
            };
            page.tail_copy = self.version == LfsVersion::V1_1;
            // Which page the copy stands for, and the LSN that orders copies of one target.
            let (target, rank) = match self.version {
                LfsVersion::V1_1 => (page.header.last_lsn, page.header.last_end_lsn),
                LfsVersion::V2_0 => (
                    page.header.buffer_target_offset as u64,
                    page.header.last_lsn,
                ),
            };
            if !target.is_multiple_of(ps) || !self.geometry.in_record_area(target) {
                continue;
            }
            let newer = best
                .get(&target)
                .is_none_or(|b| self.newer_than(&page, b, rank));
            if newer {
                best.insert(target, Rc::new(page));
            }
        }
        self.overlays = Some(best);
        Ok(())
    }

    /// Whether `copy` (whose ordering LSN is `rank`) is newer than `other`. Equal 2.0 LSNs are
    /// broken by how far the page's records reach (`last_end_lsn`, then `next_record_offset`), as
    /// ntfs3 orders buffer pages (§17.2); a full tie keeps `other`.
    fn newer_than(&self, copy: &RecordPage, other: &RecordPage, rank: u64) -> bool {
        let other_rank = self.rank(other);
        if rank != other_rank || self.version == LfsVersion::V1_1 {
            return rank > other_rank;
        }
        (copy.header.last_end_lsn, copy.header.next_record_offset)
            > (other.header.last_end_lsn, other.header.next_record_offset)
    }

    fn rank(&self, page: &RecordPage) -> u64 {
        match self.version {
            LfsVersion::V1_1 => page.header.last_end_lsn,
            LfsVersion::V2_0 => page.header.last_lsn,
        }
    }

    /// The current copy of the record page at `offset` (page-aligned, in the record area), or
    /// `None` when there is no usable page there.
    pub fn page(&mut self, offset: u64) -> Result<Option<Rc<RecordPage>>, NtfsError> {
        if let Some(p) = self.pages.get(&offset) {
            return Ok(p.clone());
        }
        self.load_overlays()?;
        let raw = self.read_raw(offset, self.geometry.page_size as usize)?;
        let in_place = parse_record_page(offset, &raw).map(Rc::new);
        let overlay = self.overlays.as_ref().and_then(|o| o.get(&offset)).cloned();
        let chosen = match (in_place, overlay) {
            (None, o) => o,
            (Some(p), None) => Some(p),
            (Some(p), Some(o)) => {
                if self.newer_than(&o, &p, self.rank(&o)) {
                    Some(o)
                } else {
                    Some(p)
                }
            }
        };
        if let Some(copy) = &chosen {
            if copy.read_from != offset && !copy.tail_copy {
                self.buffer_copies_used.push(copy.clone());
            }
        }
        self.pages.insert(offset, chosen.clone());
        Ok(chosen)
    }
}
