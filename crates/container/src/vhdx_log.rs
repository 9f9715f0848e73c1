//! The VHDX log: finding the active sequence of entries and replaying it in memory.
//!
//! MS-VHDX's log is a circular buffer of 4 KiB sectors in the log region. Each entry is a header
//! (`loge`, CRC-32C over the whole entry, its length, the offset of the sequence's first entry
//! (`Tail`), a sequence number, the `LogGuid` it belongs to, and the file sizes it needs), then
//! 32-byte descriptors padded to whole sectors, then one data sector per data descriptor. A data
//! descriptor (`desc`) writes 4 KiB at a file offset: its first 8 bytes and last 4 come from the
//! descriptor (the data sector keeps its signature and sequence number there), the 4084 between
//! from the data sector. A zero descriptor (`zero`) writes zeros over a range.
//!
//! The active sequence is the chain of valid entries with consecutive sequence numbers whose last
//! entry (the head) has the highest sequence number and whose `Tail` is the offset of an entry of
//! the chain; it is replayed from that entry through the head. A reader that does not replay it
//! reads a file whose metadata (the BAT, the metadata region) may be half-updated, so kaifuku
//! replays it into an overlay that every later read of the file goes through, and writes the
//! replayed sectors into the output with a header whose `LogGuid` is zero (an empty log).

use crate::vhdx::crc32c;
use crate::ContainerError;
use kaifuku_io::{check_range, ReadAt};
use std::collections::BTreeMap;
use std::io;

const SECTOR: u64 = 4096;
const ENTRY_HEADER_LEN: usize = 64;
const DESCRIPTOR_LEN: usize = 32;
/// The largest log kaifuku scans (the header's field is 32 bits; Hyper-V and qemu write 1 MiB).
const MAX_LOG_LEN: u64 = 64 << 20;
/// The largest entry kaifuku reads into memory (4096 sectors; real entries are a few sectors).
const MAX_ENTRY_LEN: u64 = 16 << 20;
/// Sectors a replay may hold in memory (data and zeroed ones): 64 Ki × 4 KiB = 256 MiB of file,
/// far beyond the metadata and BAT updates a log carries.
const MAX_REPLAY_SECTORS: usize = 1 << 16;

/// The file as the log says it should be: sectors replaced by the active sequence.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// 4 KiB-aligned file offset → the sector's bytes after replay (`None`: zeros).
    pub sectors: BTreeMap<u64, Option<Box<[u8; SECTOR as usize]>>>,
    /// Entries replayed.
    pub entries: u64,
}

impl Replay {
    /// Lays the replayed sectors over `buf`, which holds file bytes from `offset`.
    pub fn overlay(&self, offset: u64, buf: &mut [u8]) {
        let end = offset + buf.len() as u64;
        let first = offset / SECTOR * SECTOR;
        for (&at, sector) in self.sectors.range(first..end) {
            let from = at.max(offset);
            let to = (at + SECTOR).min(end);
            let dst = &mut buf[(from - offset) as usize..(to - offset) as usize];
            match sector {
                Some(bytes) => {
                    dst.copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize])
                }
                None => dst.fill(0),
            }
        }
    }

    /// The replayed bytes of the sector at `at`.
    pub fn sector_bytes(&self, at: u64) -> Vec<u8> {
        match self.sectors.get(&at) {
            Some(Some(bytes)) => bytes.to_vec(),
            _ => vec![0u8; SECTOR as usize],
        }
    }
}

/// A reader of the file with the replayed sectors laid over it.
pub(crate) struct Replayed<'a, R> {
    pub file: &'a R,
    pub replay: Option<&'a Replay>,
}

impl<R: ReadAt> ReadAt for Replayed<'_, R> {
    fn size(&self) -> u64 {
        self.file.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.file.size())?;
        self.file.read_at(offset, buf)?;
        if let Some(r) = self.replay {
            r.overlay(offset, buf);
        }
        Ok(())
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from(le_u32(b, at)) | (u64::from(le_u32(b, at + 4)) << 32)
}

fn damaged(at: u64, detail: impl Into<String>) -> ContainerError {
    ContainerError::VhdxDamaged {
        what: "the VHDX log".into(),
        offset: at,
        detail: detail.into(),
    }
}

/// One valid log entry, as read.
struct Entry {
    /// Offset of the entry in the log (not the file).
    at: u64,
    len: u64,
    tail: u64,
    sequence: u64,
    flushed_file_offset: u64,
    last_file_offset: u64,
    bytes: Vec<u8>,
}

/// Reads the entry at log offset `at` (wrapping at the end of the log), or `None` if it is not a
/// valid entry of the log `guid`.
fn read_entry<R: ReadAt>(
    file: &R,
    log_offset: u64,
    log_len: u64,
    at: u64,
    guid: &[u8; 16],
) -> Result<Option<Entry>, ContainerError> {
    let read_wrapped = |start: u64, len: u64| -> Result<Vec<u8>, ContainerError> {
        let mut out = vec![0u8; len as usize];
        let mut done = 0u64;
        while done < len {
            let pos = (start + done) % log_len;
            let n = (log_len - pos).min(len - done);
            file.read_at(
                log_offset + pos,
                &mut out[done as usize..(done + n) as usize],
            )
            .map_err(|e| ContainerError::read("the VHDX log", log_offset + pos, e))?;
            done += n;
        }
        Ok(out)
    };
    let head = read_wrapped(at, SECTOR)?;
    if &head[..4] != b"loge" || &head[32..48] != guid {
        return Ok(None);
    }
    let len = u64::from(le_u32(&head, 8));
    let descriptors = le_u32(&head, 24) as usize;
    if len == 0 || !len.is_multiple_of(SECTOR) || len > log_len || len > MAX_ENTRY_LEN {
        return Ok(None);
    }
    let descriptor_bytes = (ENTRY_HEADER_LEN + descriptors * DESCRIPTOR_LEN) as u64;
    if descriptor_bytes.div_ceil(SECTOR) * SECTOR > len {
        return Ok(None);
    }
    let mut bytes = read_wrapped(at, len)?;
    let stored = le_u32(&bytes, 4);
    bytes[4..8].fill(0);
    if crc32c(&bytes) != stored {
        return Ok(None);
    }
    bytes[4..8].copy_from_slice(&stored.to_le_bytes());
    let sequence = le_u64(&bytes, 16);
    // Data sectors: one per data descriptor, after the descriptor sectors, each stamped with the
    // entry's sequence number.
    let data_start = descriptor_bytes.div_ceil(SECTOR) * SECTOR;
    let mut data_sectors = 0u64;
    for i in 0..descriptors {
        let d = &bytes[ENTRY_HEADER_LEN + i * DESCRIPTOR_LEN..][..DESCRIPTOR_LEN];
        match &d[..4] {
            b"desc" => {
                let s = data_start + data_sectors * SECTOR;
                if s + SECTOR > len {
                    return Ok(None);
                }
                let sector = &bytes[s as usize..(s + SECTOR) as usize];
                let stamped =
                    (u64::from(le_u32(sector, 4)) << 32) | u64::from(le_u32(sector, 4092));
                if &sector[..4] != b"data" || stamped != sequence || le_u64(d, 24) != sequence {
                    return Ok(None);
                }
                data_sectors += 1;
            }
            b"zero" => {
                if le_u64(d, 24) != sequence {
                    return Ok(None);
                }
            }
            _ => return Ok(None),
        }
    }
    if data_start + data_sectors * SECTOR != len {
        return Ok(None);
    }
    Ok(Some(Entry {
        at,
        len,
        tail: u64::from(le_u32(&bytes, 12)),
        sequence,
        flushed_file_offset: le_u64(&bytes, 48),
        last_file_offset: le_u64(&bytes, 56),
        bytes,
    }))
}

/// Finds the active sequence of the log at `log_offset` (`log_len` bytes) for `guid` and replays
/// it. The file must be large enough for what the log says was flushed, and the replay must not
/// grow it (kaifuku writes an output the same size as its input).
pub(crate) fn replay<R: ReadAt>(
    file: &R,
    log_offset: u64,
    log_len: u64,
    guid: &[u8; 16],
    file_size: u64,
) -> Result<Replay, ContainerError> {
    if log_len == 0 || !log_len.is_multiple_of(SECTOR) || log_len > MAX_LOG_LEN {
        return Err(damaged(
            log_offset,
            format!("its length {log_len} is invalid: whole 4 KiB sectors, at most 64 MiB, are expected"),
        ));
    }
    // Every valid entry, by its log offset.
    let mut entries: BTreeMap<u64, Entry> = BTreeMap::new();
    let mut at = 0;
    while at < log_len {
        if let Some(e) = read_entry(file, log_offset, log_len, at, guid)? {
            entries.insert(at, e);
        }
        at += SECTOR;
    }
    // For each entry, the chain that ends there: follow predecessors backwards is awkward, so
    // follow successors forward from every entry and keep the best head.
    let mut best: Option<(u64, Vec<u64>)> = None;
    // An entry already seen inside a chain starts only a suffix of it, with the same head and a
    // tail that chain contains too: skipping it keeps the search linear.
    let mut seen = std::collections::HashSet::new();
    for (&start, first) in &entries {
        if !seen.insert(start) {
            continue;
        }
        let mut chain = vec![start];
        let mut last = first;
        loop {
            let next = (last.at + last.len) % log_len;
            match entries.get(&next) {
                // Sequence numbers rise by one, so a chain never comes back to an entry.
                Some(e) if e.sequence == last.sequence.wrapping_add(1) => {
                    seen.insert(next);
                    chain.push(next);
                    last = e;
                }
                _ => break,
            }
        }
        // The head's tail must be an entry of this chain: replay from there.
        let Some(from) = chain.iter().position(|&o| o == last.tail) else {
            continue;
        };
        let candidate = chain[from..].to_vec();
        if best.as_ref().is_none_or(|(seq, _)| last.sequence > *seq) {
            best = Some((last.sequence, candidate));
        }
    }
    let Some((_, chain)) = best else {
        return Err(damaged(
            log_offset,
            "the header says the log holds updates, but no valid sequence of log entries is in it",
        ));
    };
    let head = &entries[chain.last().expect("a chain has entries")];
    if head.flushed_file_offset > file_size {
        return Err(damaged(
            log_offset,
            format!(
                "the log says the file was {} bytes long when it was written, but it is only \
                 {file_size} bytes: it is truncated",
                head.flushed_file_offset
            ),
        ));
    }
    if head.last_file_offset > file_size {
        return Err(damaged(
            log_offset,
            format!(
                "replaying the log would grow the file to {} bytes (it is {file_size}); kaifuku \
                 does not grow images. Run `qemu-img check -r all` on a copy, which replays the \
                 log, and open that copy",
                head.last_file_offset
            ),
        ));
    }

    let mut r = Replay::default();
    for at in &chain {
        let e = &entries[at];
        let descriptors = le_u32(&e.bytes, 24) as usize;
        let data_start =
            ((ENTRY_HEADER_LEN + descriptors * DESCRIPTOR_LEN) as u64).div_ceil(SECTOR) * SECTOR;
        let mut data_sectors = 0u64;
        for i in 0..descriptors {
            let d = &e.bytes[ENTRY_HEADER_LEN + i * DESCRIPTOR_LEN..][..DESCRIPTOR_LEN];
            let desc_at = log_offset + e.at + (ENTRY_HEADER_LEN + i * DESCRIPTOR_LEN) as u64;
            let target = le_u64(d, 16);
            if !target.is_multiple_of(SECTOR) {
                return Err(damaged(
                    desc_at,
                    format!("a log descriptor targets file offset {target}, not 4 KiB-aligned"),
                ));
            }
            if &d[..4] == b"desc" {
                if target + SECTOR > file_size {
                    return Err(damaged(
                        desc_at,
                        format!("a log descriptor targets file offset {target}, past the end"),
                    ));
                }
                let s = (data_start + data_sectors * SECTOR) as usize;
                let mut sector = Box::new([0u8; SECTOR as usize]);
                sector.copy_from_slice(&e.bytes[s..s + SECTOR as usize]);
                sector[..8].copy_from_slice(&d[8..16]); // leading bytes
                sector[4092..].copy_from_slice(&d[4..8]); // trailing bytes
                r.sectors.insert(target, Some(sector));
                data_sectors += 1;
            } else {
                let len = le_u64(d, 8);
                let end = target.checked_add(len).filter(|e| *e <= file_size);
                let Some(end) = end.filter(|_| len.is_multiple_of(SECTOR)) else {
                    return Err(damaged(
                        desc_at,
                        format!(
                            "a log descriptor zeroes {len} bytes from file offset {target}, which \
                             is not whole sectors inside the file"
                        ),
                    ));
                };
                let mut s = target;
                while s < end {
                    r.sectors.insert(s, None);
                    s += SECTOR;
                    if r.sectors.len() > MAX_REPLAY_SECTORS {
                        break;
                    }
                }
            }
            if r.sectors.len() > MAX_REPLAY_SECTORS {
                return Err(damaged(
                    desc_at,
                    format!(
                        "the log rewrites more than {MAX_REPLAY_SECTORS} sectors, more than \
                         kaifuku replays in memory"
                    ),
                ));
            }
        }
        r.entries += 1;
    }
    Ok(r)
}
