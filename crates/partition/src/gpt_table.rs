//! GPT through the `gpt` crate, with the guards it lacks.
//!
//! The crate's `GptConfig::open_from_device` is not used: it wants a `Read + Write + Seek + Debug`
//! device, finds the backup header only at the last sector of the device, asserts (panics) when the
//! entry size is not 128, and allocates `num_parts * 128` bytes for whatever `num_parts` a header
//! with a valid CRC claims. Instead the two headers are parsed and CRC-checked with
//! `gpt::header::read_header_from_arbitrary_device` (each through a window that puts the header
//! where the crate looks for a primary one), checked for sanity here, and the entry array, read in
//! one go, is handed to `gpt::partition::file_read_partitions`, which checks its CRC.

use crate::mbr::Sector0;
use crate::notice::NoticeKind;
use crate::types::{gpt_type, GPT_LDM_DATA, GPT_LDM_METADATA, GPT_STORAGE_SPACES};
use crate::{
    check_layout, read_exact, Partition, PartitionError, PartitionTable, Scheme, MAX_GPT_ENTRIES,
};
use gpt::disk::LogicalBlockSize;
use gpt::header::{Header, HeaderError};
use kaifuku_io::{Cursor, ReadAt, Slice};
use std::collections::BTreeMap;
use std::io;

const SIGNATURE: &[u8; 8] = b"EFI PART";
const ENTRY_SIZE: u32 = 128;

/// Why one copy of the GPT cannot be used.
#[derive(Debug, Clone)]
enum Problem {
    Damaged(String),
    Unsupported(String),
}

impl Problem {
    fn text(&self) -> &str {
        match self {
            Problem::Damaged(s) | Problem::Unsupported(s) => s,
        }
    }
}

fn block_size(ss: u64) -> LogicalBlockSize {
    if ss == 4096 {
        LogicalBlockSize::Lb4096
    } else {
        LogicalBlockSize::Lb512
    }
}

fn has_signature_at<R: ReadAt + ?Sized>(disk: &R, offset: u64) -> Result<bool, PartitionError> {
    if offset.saturating_add(8) > disk.size() {
        return Ok(false);
    }
    let mut sig = [0u8; 8];
    read_exact(disk, "a GPT header", offset, &mut sig)?;
    Ok(&sig == SIGNATURE)
}

/// The sector size whose LBA 1 holds an "EFI PART" signature (512 first).
pub(crate) fn primary_signature<R: ReadAt + ?Sized>(
    disk: &R,
) -> Result<Option<u64>, PartitionError> {
    for ss in [512u64, 4096] {
        if has_signature_at(disk, ss)? {
            return Ok(Some(ss));
        }
    }
    Ok(None)
}

fn last_lba(size: u64, ss: u64) -> Option<u64> {
    (size / ss).checked_sub(1)
}

/// The sector size whose last sector holds an "EFI PART" signature (512 first).
pub(crate) fn backup_signature<R: ReadAt + ?Sized>(
    disk: &R,
) -> Result<Option<u64>, PartitionError> {
    for ss in [512u64, 4096] {
        if let Some(last) = last_lba(disk.size(), ss) {
            if last >= 2 && has_signature_at(disk, last * ss)? {
                return Ok(Some(ss));
            }
        }
    }
    Ok(None)
}

/// Parses and checks the header stored at `lba`.
fn load_header<R: ReadAt + ?Sized>(disk: &R, lba: u64, ss: u64) -> Result<Header, Problem> {
    let size = disk.size();
    // LBA 0 is the MBR; a damaged header may name it as the other copy's place.
    if lba == 0 {
        return Err(Problem::Damaged(
            "it is said to be at LBA 0, where the MBR is".into(),
        ));
    }
    let offset = lba.checked_mul(ss).filter(|o| o.saturating_add(ss) <= size);
    let Some(offset) = offset else {
        return Err(Problem::Damaged(format!(
            "its sector (LBA {lba}) lies past the end of the {size}-byte image, which is \
             probably truncated"
        )));
    };
    // The crate reads a "primary" header at byte `ss` of the device: give it a window whose byte
    // `ss` is the header's sector.
    let window = Slice::new(disk, offset - ss, 2 * ss)
        .map_err(|e| Problem::Damaged(format!("its sector could not be read: {e}")))?;
    let header =
        gpt::header::read_header_from_arbitrary_device(&mut Cursor::new(window), block_size(ss))
            .map_err(|e| match e {
                HeaderError::InvalidGptSignature => Problem::Damaged(format!(
                    "no \"EFI PART\" signature at byte {offset} (LBA {lba})"
                )),
                HeaderError::InvalidCRC32Checksum => Problem::Damaged(format!(
                    "the header at LBA {lba} fails its CRC32 checksum, so it is corrupted"
                )),
                other => Problem::Damaged(format!(
                    "the header at LBA {lba} could not be read: {other}"
                )),
            })?;
    check_header(&header, lba, ss, size)?;
    Ok(header)
}

fn check_header(h: &Header, lba: u64, ss: u64, size: u64) -> Result<(), Problem> {
    if h.current_lba != lba {
        return Err(Problem::Damaged(format!(
            "the header at LBA {lba} says it belongs at LBA {}",
            h.current_lba
        )));
    }
    if !(92..=ss as u32).contains(&h.header_size_le) {
        return Err(Problem::Damaged(format!(
            "the header at LBA {lba} gives an impossible header size of {} bytes",
            h.header_size_le
        )));
    }
    if h.part_size != ENTRY_SIZE {
        return Err(Problem::Unsupported(format!(
            "partition entries of {} bytes (only the standard 128-byte entries are supported)",
            h.part_size
        )));
    }
    if h.num_parts > MAX_GPT_ENTRIES {
        return Err(Problem::Unsupported(format!(
            "{} partition entries (at most {MAX_GPT_ENTRIES} are accepted; Windows writes 128)",
            h.num_parts
        )));
    }
    let array_end = h
        .part_start
        .checked_mul(ss)
        .and_then(|s| s.checked_add(u64::from(h.num_parts) * u64::from(ENTRY_SIZE)));
    match array_end {
        Some(end) if end <= size && h.part_start != lba => {}
        _ => {
            return Err(Problem::Damaged(format!(
                "the header at LBA {lba} puts its partition entries at LBA {}, outside the \
                 {size}-byte image",
                h.part_start
            )))
        }
    }
    if h.first_usable > h.last_usable.saturating_add(1) {
        return Err(Problem::Damaged(format!(
            "the header at LBA {lba} gives a first usable sector ({}) after the last ({})",
            h.first_usable, h.last_usable
        )));
    }
    Ok(())
}

/// The entry array of `h`, read in one call and served to the crate from memory.
struct Window {
    base: u64,
    buf: Vec<u8>,
}

impl ReadAt for Window {
    fn size(&self) -> u64 {
        self.base + self.buf.len() as u64
    }
    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let rel = offset.checked_sub(self.base).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "read before the GPT entry array",
            )
        })?;
        self.buf.as_slice().read_at(rel, out)
    }
}

fn load_entries<R: ReadAt + ?Sized>(
    disk: &R,
    h: &Header,
    ss: u64,
) -> Result<BTreeMap<u32, gpt::partition::Partition>, Problem> {
    // check_header bounded both factors and the range.
    let base = h.part_start * ss;
    let len = h.num_parts as usize * ENTRY_SIZE as usize;
    let mut buf = vec![0u8; len];
    disk.read_at(base, &mut buf).map_err(|e| {
        Problem::Damaged(format!(
            "its partition entries at LBA {} could not be read: {e}",
            h.part_start
        ))
    })?;
    let mut cursor = Cursor::new(Window { base, buf });
    gpt::partition::file_read_partitions(&mut cursor, h, block_size(ss)).map_err(|e| {
        Problem::Damaged(format!(
            "its partition entries at LBA {} fail their CRC32 checksum, so they are corrupted \
             ({e})",
            h.part_start
        ))
    })
}

fn guid_string(u: &uuid::Uuid) -> String {
    u.hyphenated().to_string().to_ascii_uppercase()
}

/// Chooses the sector size: the one with a primary "EFI PART" (the one with a valid header when both
/// have one), else the one with a backup, else what the protective MBR entry's size suggests.
fn choose_sector_size<R: ReadAt + ?Sized>(
    disk: &R,
    s0: Option<&Sector0>,
) -> Result<u64, PartitionError> {
    let p512 = has_signature_at(disk, 512)?;
    let p4096 = has_signature_at(disk, 4096)?;
    match (p512, p4096) {
        (true, false) => return Ok(512),
        (false, true) => return Ok(4096),
        (true, true) => {
            let ok4096 = load_header(disk, 1, 4096).is_ok();
            let ok512 = load_header(disk, 1, 512).is_ok();
            return Ok(if ok4096 && !ok512 { 4096 } else { 512 });
        }
        (false, false) => {}
    }
    if let Some(ss) = backup_signature(disk)? {
        return Ok(ss);
    }
    // The protective entry covers the disk from LBA 1: its sector count tells the sector size.
    let size = disk.size();
    if let Some(e) = s0.and_then(|t| t.used().find(|e| e.kind == 0xEE).copied()) {
        let covers = |ss: u64| {
            let want = (size / ss).saturating_sub(1).min(u64::from(u32::MAX));
            u64::from(e.sectors) == want
        };
        if covers(4096) && !covers(512) {
            return Ok(4096);
        }
    }
    Ok(512)
}

pub(crate) fn read<R: ReadAt + ?Sized>(
    disk: &R,
    s0: Option<&Sector0>,
) -> Result<PartitionTable, PartitionError> {
    let size = disk.size();
    let ss = choose_sector_size(disk, s0)?;
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    if ss == 4096 {
        notes.push(NoticeKind::GptSector4096.into());
    }
    if size % ss != 0 {
        notes.push(
            NoticeKind::SizeNotWholeSectors {
                size,
                sector_size: ss,
            }
            .into(),
        );
    }
    let Some(last) = last_lba(size, ss).filter(|&l| l >= 2) else {
        return Err(PartitionError::GptDamaged {
            primary: format!("the {size}-byte image is too small to hold a GPT"),
            backup: "missing for the same reason".into(),
        });
    };

    let primary = load_header(disk, 1, ss);
    // Where the backup should be: where the primary says, else the last sector.
    let mut spots = Vec::new();
    if let Ok(h) = &primary {
        spots.push(h.backup_lba);
    }
    if !spots.contains(&last) {
        spots.push(last);
    }
    let mut backup = Err(Problem::Damaged("not found".into()));
    for (i, &lba) in spots.iter().enumerate() {
        match load_header(disk, lba, ss) {
            Ok(h) => {
                backup = Ok(h);
                break;
            }
            // Report why the first (expected) spot failed.
            Err(e) if i == 0 => backup = Err(e),
            Err(_) => {}
        }
    }

    let primary_entries = primary
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|h| load_entries(disk, h, ss).map(|e| (h.clone(), e)));
    let backup_entries = backup
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|h| load_entries(disk, h, ss).map(|e| (h.clone(), e)));

    let (header, entries) = match (primary_entries, backup_entries) {
        (Ok(p), Ok(b)) => {
            if p.0.crc32_parts != b.0.crc32_parts || p.1 != b.1 {
                warnings.push(NoticeKind::GptCopiesDiffer.into());
            }
            if p.0.disk_guid != b.0.disk_guid {
                warnings.push(NoticeKind::GptDiskGuidsDiffer.into());
            }
            p
        }
        (Ok(p), Err(be)) => {
            warnings.push(
                NoticeKind::BackupGptDamaged {
                    detail: be.text().to_string(),
                }
                .into(),
            );
            p
        }
        (Err(pe), Ok(b)) => {
            warnings.push(
                NoticeKind::PrimaryGptDamaged {
                    detail: pe.text().to_string(),
                    backup_lba: b.0.current_lba,
                }
                .into(),
            );
            b
        }
        (Err(pe), Err(be)) => {
            if let Some(Problem::Unsupported(d)) = [&pe, &be]
                .into_iter()
                .find(|p| matches!(p, Problem::Unsupported(_)))
            {
                return Err(PartitionError::GptUnsupported { detail: d.clone() });
            }
            return Err(PartitionError::GptDamaged {
                primary: pe.text().to_string(),
                backup: be.text().to_string(),
            });
        }
    };

    // Where the backup header is (or should be), according to the header in use.
    let (ours, theirs) = if header.current_lba == 1 {
        (header.backup_lba, last)
    } else {
        (header.current_lba, last)
    };
    if ours < theirs {
        notes.push(
            NoticeKind::DiskEnlarged {
                backup_lba: ours,
                last_lba: theirs,
            }
            .into(),
        );
    } else if ours > theirs {
        warnings.push(
            NoticeKind::GptTruncated {
                // A damaged header may name any LBA: saturate rather than overflow.
                needed: ours.saturating_add(1).saturating_mul(ss),
                size,
            }
            .into(),
        );
    }

    let mut partitions = Vec::new();
    for (&number, e) in entries.iter().filter(|(_, e)| e.is_used()) {
        let type_code = guid_string(&e.part_type_guid.guid);
        let name = e.name.trim_end_matches('\0').to_string();
        let span = e
            .last_lba
            .checked_sub(e.first_lba)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| n.checked_mul(ss))
            .zip(e.first_lba.checked_mul(ss))
            .filter(|(len, start)| start.checked_add(*len).is_some());
        let Some((len, start)) = span else {
            warnings.push(
                NoticeKind::GptEntryImpossible {
                    number,
                    name: name.clone(),
                    first_lba: e.first_lba,
                    last_lba: e.last_lba,
                }
                .into(),
            );
            continue;
        };
        if e.first_lba < header.first_usable || e.last_lba > header.last_usable {
            notes.push(
                NoticeKind::OutsideUsableArea {
                    number,
                    first_lba: e.first_lba,
                    last_lba: e.last_lba,
                    usable_first: header.first_usable,
                    usable_last: header.last_usable,
                }
                .into(),
            );
        }
        if [GPT_LDM_METADATA, GPT_LDM_DATA, GPT_STORAGE_SPACES].contains(&type_code.as_str()) {
            warnings.push(NoticeKind::DynamicDiskGpt { number }.into());
        }
        partitions.push(Partition {
            number,
            start,
            size: len,
            first_lba: e.first_lba,
            last_lba: e.last_lba,
            type_name: gpt_type(&type_code),
            type_code,
            name: (!name.is_empty()).then_some(name),
            guid: Some(guid_string(&e.part_guid)),
            attributes: Some(e.flags),
            bootable: false,
            logical: false,
            container: false,
        });
    }
    check_layout(size, &partitions, &mut warnings);

    Ok(PartitionTable {
        scheme: Scheme::Gpt,
        sector_size: ss as u32,
        disk_guid: Some(guid_string(&header.disk_guid)),
        disk_signature: None,
        partitions,
        notes,
        warnings,
    })
}
