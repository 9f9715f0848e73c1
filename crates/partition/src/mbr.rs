//! Classic MBR with extended/logical partitions, and working out its logical sector size.

use crate::boot;
use crate::notice::{Notice, NoticeKind};
use crate::types::{mbr_is_extended, mbr_type};
use crate::{
    check_layout, read_exact, Partition, PartitionError, PartitionTable, Scheme, MAX_EBRS,
};
use kaifuku_io::ReadAt;
use std::collections::BTreeSet;

/// One 16-byte entry of a partition table sector (MBR or EBR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Slot 0..4.
    pub slot: usize,
    pub status: u8,
    pub kind: u8,
    /// Start in sectors, relative to what the table's kind makes it relative to.
    pub start: u32,
    pub sectors: u32,
}

impl Entry {
    /// Empty entries (type 0 or no sectors) are skipped, as Linux does.
    pub fn used(&self) -> bool {
        self.kind != 0 && self.sectors != 0
    }
}

fn entries(sector: &[u8]) -> [Entry; 4] {
    std::array::from_fn(|slot| {
        let e = &sector[446 + 16 * slot..446 + 16 * (slot + 1)];
        Entry {
            slot,
            status: e[0],
            kind: e[4],
            start: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
            sectors: u32::from_le_bytes([e[12], e[13], e[14], e[15]]),
        }
    })
}

/// A first sector that is a valid MBR: the 55AA signature, status bytes 0x00 or 0x80, and no used
/// entry starting at sector 0 (where the MBR itself is).
#[derive(Debug, Clone)]
pub(crate) struct Sector0 {
    pub entries: [Entry; 4],
    pub signature: u32,
}

impl Sector0 {
    pub fn parse(s0: &[u8]) -> Option<Sector0> {
        if !boot::has_boot_signature(s0) {
            return None;
        }
        let entries = entries(s0);
        let valid = entries
            .iter()
            .all(|e| (e.status == 0 || e.status == 0x80) && (!e.used() || e.start != 0));
        valid.then(|| Sector0 {
            entries,
            signature: u32::from_le_bytes([s0[440], s0[441], s0[442], s0[443]]),
        })
    }

    pub fn used(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.used())
    }

    pub fn has_protective(&self) -> bool {
        self.used().any(|e| e.kind == 0xEE)
    }

    fn signature_string(&self) -> Option<String> {
        (self.signature != 0).then(|| format!("0x{:08x}", self.signature))
    }
}

pub(crate) fn empty_table(t: &Sector0) -> PartitionTable {
    PartitionTable {
        scheme: Scheme::Mbr,
        sector_size: 512,
        disk_guid: None,
        disk_signature: t.signature_string(),
        partitions: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The partitions as read with one assumed sector size, plus the evidence for that size.
#[derive(Debug)]
struct Walk {
    partitions: Vec<Partition>,
    warnings: Vec<Notice>,
    /// Data partitions whose first sector is a boot sector whose bytes-per-sector field equals the
    /// assumed size.
    boot_hits: Vec<u32>,
    /// EBRs found with a 55AA signature.
    ebr_found: usize,
    /// Extended partitions whose first EBR was missing or unreadable.
    ebr_missing: usize,
}

fn make(
    number: u32,
    first_lba: u64,
    e: &Entry,
    ss: u64,
    logical: bool,
    container: bool,
) -> Partition {
    let sectors = u64::from(e.sectors);
    Partition {
        number,
        start: first_lba * ss,
        size: sectors * ss,
        first_lba,
        last_lba: first_lba + sectors - 1,
        type_code: format!("0x{:02x}", e.kind),
        type_name: mbr_type(e.kind),
        name: None,
        guid: None,
        attributes: None,
        bootable: e.status == 0x80,
        logical,
        container,
    }
}

/// Whether the partition's first sector is a boot sector made for `ss`-byte sectors.
fn boot_evidence<R: ReadAt + ?Sized>(disk: &R, p: &Partition, ss: u64) -> bool {
    if p.start.saturating_add(512) > disk.size() {
        return false;
    }
    let mut s = [0u8; 512];
    if disk.read_at(p.start, &mut s).is_err() {
        return false;
    }
    match boot::sniff(&s) {
        Some(b) => b.bytes_per_sector == Some(ss as u32) && boot::has_boot_signature(&s),
        None => false,
    }
}

fn walk<R: ReadAt + ?Sized>(disk: &R, s0: &Sector0, ss: u64) -> Result<Walk, PartitionError> {
    let size = disk.size();
    let mut w = Walk {
        partitions: Vec::new(),
        warnings: Vec::new(),
        boot_hits: Vec::new(),
        ebr_found: 0,
        ebr_missing: 0,
    };
    let mut next_logical = 5u32;
    for e in s0.used() {
        let number = e.slot as u32 + 1;
        let ext = mbr_is_extended(e.kind);
        let p = make(number, u64::from(e.start), e, ss, false, ext);
        if ext {
            w.partitions.push(p);
            walk_chain(disk, e, number, ss, size, &mut next_logical, &mut w)?;
        } else {
            if boot_evidence(disk, &p, ss) {
                w.boot_hits.push(number);
            }
            if e.kind == 0x42 {
                w.warnings
                    .push(NoticeKind::DynamicDiskMbr { number }.into());
            }
            w.partitions.push(p);
        }
    }
    Ok(w)
}

fn walk_chain<R: ReadAt + ?Sized>(
    disk: &R,
    ext: &Entry,
    extended: u32,
    ss: u64,
    size: u64,
    next_logical: &mut u32,
    w: &mut Walk,
) -> Result<(), PartitionError> {
    let ext_start = u64::from(ext.start);
    let ext_end = ext_start + u64::from(ext.sectors); // exclusive
    let mut visited = BTreeSet::new();
    let mut ebr = ext_start;
    loop {
        if !visited.insert(ebr) {
            return Err(PartitionError::ExtendedLoop {
                extended,
                ebr_lba: ebr,
            });
        }
        if visited.len() > MAX_EBRS {
            return Err(PartitionError::ExtendedTooLong {
                extended,
                limit: MAX_EBRS,
            });
        }
        let offset = ebr * ss;
        if offset.saturating_add(512) > size {
            if ebr == ext_start {
                w.ebr_missing += 1;
            }
            w.warnings
                .push(NoticeKind::EbrPastEnd { ebr, extended }.into());
            return Ok(());
        }
        let mut sector = [0u8; 512];
        read_exact(disk, "a logical-partition table (EBR)", offset, &mut sector)?;
        if !boot::has_boot_signature(&sector) {
            if ebr == ext_start {
                w.ebr_missing += 1;
            }
            w.warnings
                .push(NoticeKind::EbrNoSignature { ebr, extended }.into());
            return Ok(());
        }
        w.ebr_found += 1;
        let mut link = None;
        for x in entries(&sector).iter().filter(|x| x.used()) {
            if mbr_is_extended(x.kind) {
                link = link.or(Some(*x));
                continue;
            }
            let first = ebr + u64::from(x.start);
            let end = first + u64::from(x.sectors);
            if x.start == 0 || end > ext_end {
                return Err(PartitionError::ExtendedOutOfRange {
                    detail: format!(
                        "logical partition {} (listed in the table at sector {ebr}) spans sectors \
                         {first}..{}, which is not inside extended partition {extended} (sectors \
                         {ext_start}..{}) {}",
                        *next_logical,
                        end - 1,
                        ext_end - 1,
                        if x.start == 0 {
                            "and overlaps its own table"
                        } else {
                            "but runs past its end"
                        }
                    ),
                });
            }
            let p = make(*next_logical, first, x, ss, true, false);
            if boot_evidence(disk, &p, ss) {
                w.boot_hits.push(p.number);
            }
            w.partitions.push(p);
            *next_logical += 1;
        }
        let Some(link) = link else {
            return Ok(());
        };
        let next = ext_start + u64::from(link.start);
        if next >= ext_end {
            return Err(PartitionError::ExtendedOutOfRange {
                detail: format!(
                    "the logical-partition table at sector {ebr} links to the next table at sector \
                     {next}, outside extended partition {extended} (sectors {ext_start}..{})",
                    ext_end - 1
                ),
            });
        }
        ebr = next;
    }
}

/// Reads an MBR disk whose first sector `s0` is a valid MBR with at least one used entry.
pub(crate) fn read<R: ReadAt + ?Sized>(
    disk: &R,
    s0_bytes: &[u8; 512],
) -> Result<PartitionTable, PartitionError> {
    let s0 = Sector0::parse(s0_bytes).expect("caller checked the MBR");
    let w512 = walk(disk, &s0, 512);
    let w4096 = walk(disk, &s0, 4096);
    let (ss, note) = choose_sector_size(disk.size(), &w512, &w4096);
    let w = if ss == 512 { w512 } else { w4096 }?;
    let mut t = PartitionTable {
        scheme: Scheme::Mbr,
        sector_size: ss as u32,
        disk_guid: None,
        disk_signature: s0.signature_string(),
        partitions: w.partitions,
        notes: note.into_iter().map(Notice::from).collect(),
        warnings: w.warnings,
    };
    t.partitions.sort_by_key(|p| p.number);
    check_layout(disk.size(), &t.partitions, &mut t.warnings);
    Ok(t)
}

fn past_end(size: u64, w: &Walk) -> usize {
    w.partitions.iter().filter(|p| p.end() > size).count()
}

/// Decides 512 or 4096 from the evidence of both readings; 512 when nothing tells them apart.
fn choose_sector_size(
    size: u64,
    w512: &Result<Walk, PartitionError>,
    w4096: &Result<Walk, PartitionError>,
) -> (u64, Option<NoticeKind>) {
    let hits =
        |w: &Result<Walk, PartitionError>| w.as_ref().map(|w| w.boot_hits.len()).unwrap_or(0);
    let (h512, h4096) = (hits(w512), hits(w4096));
    if h4096 > h512 {
        let w = w4096.as_ref().expect("hits imply Ok");
        return (
            4096,
            Some(NoticeKind::Mbr4096FromBootSectors {
                partitions: w.boot_hits.clone(),
            }),
        );
    }
    if h512 > 0 {
        return (512, None);
    }
    // No boot sector says anything: look at the extended chain, then at the disk size.
    let ebr_ok = |w: &Result<Walk, PartitionError>| matches!(w, Ok(w) if w.ebr_found > 0 && w.ebr_missing == 0);
    if ebr_ok(w4096) && !ebr_ok(w512) {
        return (4096, Some(NoticeKind::Mbr4096FromExtendedChain));
    }
    if ebr_ok(w512) && !ebr_ok(w4096) {
        return (512, None);
    }
    if let (Ok(a), Ok(b)) = (w512, w4096) {
        if past_end(size, a) == 0 && past_end(size, b) > 0 {
            return (512, Some(NoticeKind::Mbr512FromDiskSize));
        }
    }
    let no_data = w512
        .as_ref()
        .map(|w| w.partitions.iter().all(|p| p.container))
        .unwrap_or(false);
    if no_data {
        return (512, None);
    }
    (512, Some(NoticeKind::Mbr512Assumed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read_partitions, PartitionError, Scheme};

    const MIB: u64 = 1 << 20;

    fn put_entry(sector: &mut [u8], slot: usize, status: u8, kind: u8, start: u32, sectors: u32) {
        let e = &mut sector[446 + 16 * slot..446 + 16 * (slot + 1)];
        e[0] = status;
        e[4] = kind;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
    }

    fn sign(disk: &mut [u8], offset: usize) {
        disk[offset + 510] = 0x55;
        disk[offset + 511] = 0xAA;
    }

    fn ntfs_boot(disk: &mut [u8], offset: usize, bps: u16) {
        disk[offset] = 0xEB;
        disk[offset + 1] = 0x52;
        disk[offset + 2] = 0x90;
        disk[offset + 3..offset + 11].copy_from_slice(b"NTFS    ");
        disk[offset + 11..offset + 13].copy_from_slice(&bps.to_le_bytes());
        sign(disk, offset);
    }

    /// 8 MiB disk, 512-byte sectors: primary 1 (NTFS, active) at 2048+4096, extended 2 at 8192..16383
    /// with logicals at EBR 8192 (+1 → 8193, 1000 sectors) and EBR 10240 (+2048 → 12288, 2048).
    fn extended_disk() -> Vec<u8> {
        let mut d = vec![0u8; (8 * MIB) as usize];
        put_entry(&mut d, 0, 0x80, 0x07, 2048, 4096);
        put_entry(&mut d, 1, 0x00, 0x05, 8192, 8192);
        d[440..444].copy_from_slice(&0x1234_abcdu32.to_le_bytes());
        sign(&mut d, 0);
        ntfs_boot(&mut d, 2048 * 512, 512);
        // EBR 1 at 8192: logical at +1, link to +2048 (relative to the extended start).
        let e1 = 8192 * 512;
        put_entry(&mut d[e1..e1 + 512], 0, 0, 0x07, 1, 1000);
        put_entry(&mut d[e1..e1 + 512], 1, 0, 0x05, 2048, 4096);
        sign(&mut d, e1);
        // EBR 2 at 10240: logical at +2048 (relative to this EBR) → 12288, no link.
        let e2 = 10240 * 512;
        put_entry(&mut d[e2..e2 + 512], 0, 0, 0x83, 2048, 2048);
        sign(&mut d, e2);
        d
    }

    #[test]
    fn extended_chain() {
        let d = extended_disk();
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.scheme, Scheme::Mbr);
        assert_eq!(t.sector_size, 512);
        assert_eq!(t.disk_signature.as_deref(), Some("0x1234abcd"));
        let got: Vec<(u32, u64, u64, &str, bool, bool, bool)> = t
            .partitions
            .iter()
            .map(|p| {
                (
                    p.number,
                    p.first_lba,
                    p.last_lba,
                    p.type_code.as_str(),
                    p.bootable,
                    p.logical,
                    p.container,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 2048, 6143, "0x07", true, false, false),
                (2, 8192, 16383, "0x05", false, false, true),
                (5, 8193, 9192, "0x07", false, true, false),
                (6, 12288, 14335, "0x83", false, true, false),
            ]
        );
        assert_eq!(t.partitions[1].type_name, "Extended");
        assert_eq!(t.data_partitions().count(), 3);
        assert_eq!(t.partition(6).unwrap().start, 12288 * 512);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        // The boot sector of partition 1 settles the sector size; no note needed.
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        let v = t.partitions[0].view(&d).unwrap();
        assert_eq!(v.size(), 4096 * 512);
        let mut oem = [0u8; 8];
        v.read_at(3, &mut oem).unwrap();
        assert_eq!(&oem, b"NTFS    ");
    }

    #[test]
    fn loop_in_chain_is_an_error() {
        let mut d = extended_disk();
        // EBR 2 links back to the extended start (relative 0) → EBR 1 again.
        let e2 = 10240 * 512;
        put_entry(&mut d[e2..e2 + 512], 1, 0, 0x05, 0, 4096);
        let err = read_partitions(&d).unwrap_err();
        assert!(
            matches!(
                err,
                PartitionError::ExtendedLoop {
                    extended: 2,
                    ebr_lba: 8192
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("loops back"), "{err}");
    }

    #[test]
    fn self_link_is_a_loop() {
        let mut d = extended_disk();
        let e2 = 10240 * 512;
        put_entry(&mut d[e2..e2 + 512], 1, 0, 0x05, 2048, 100);
        let err = read_partitions(&d).unwrap_err();
        assert!(
            matches!(err, PartitionError::ExtendedLoop { ebr_lba: 10240, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn logical_out_of_range_is_an_error() {
        let mut d = extended_disk();
        let e2 = 10240 * 512;
        // Logical starting at 10240+2048 with 8192 sectors runs past the extended end (16384).
        put_entry(&mut d[e2..e2 + 512], 0, 0, 0x83, 2048, 8192);
        let err = read_partitions(&d).unwrap_err();
        assert!(
            matches!(err, PartitionError::ExtendedOutOfRange { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("logical partition 6"), "{err}");
    }

    #[test]
    fn link_out_of_range_is_an_error() {
        let mut d = extended_disk();
        let e1 = 8192 * 512;
        put_entry(&mut d[e1..e1 + 512], 1, 0, 0x05, 9000, 10);
        let err = read_partitions(&d).unwrap_err();
        assert!(
            matches!(err, PartitionError::ExtendedOutOfRange { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("sector 17192"), "{err}");
    }

    #[test]
    fn long_chain_is_bounded() {
        // 300 EBRs, one sector apart, each linking to the next: stops at MAX_EBRS.
        // The extended start read as 4096-byte sectors lies past the end, so 512 is chosen.
        let mut d = vec![0u8; 512 * 400];
        put_entry(&mut d, 0, 0, 0x0F, 60, 330);
        sign(&mut d, 0);
        for i in 0..300u32 {
            let off = (60 + i as usize) * 512;
            put_entry(&mut d[off..off + 512], 1, 0, 0x05, i + 1, 1);
            sign(&mut d, off);
        }
        let err = read_partitions(&d).unwrap_err();
        assert!(
            matches!(err, PartitionError::ExtendedTooLong { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn missing_ebr_signature_ends_the_chain_with_a_warning() {
        let mut d = extended_disk();
        let e2 = 10240 * 512;
        d[e2 + 510] = 0;
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.partitions.len(), 3);
        assert!(
            t.warnings.iter().any(|w| w.contains("55AA")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn primary_past_the_end_is_a_warning() {
        let mut d = vec![0u8; (MIB) as usize];
        put_entry(&mut d, 0, 0x80, 0x07, 2048, 4096); // starts at 1 MiB: past the end
        sign(&mut d, 0);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.partitions.len(), 1);
        assert!(
            t.warnings.iter().any(|w| w.contains("truncated")),
            "{:?}",
            t.warnings
        );
        assert!(t.partitions[0].view(&d).is_err());
    }

    #[test]
    fn sector_size_4096_from_boot_sector() {
        // 4096-byte sectors: partition 1 at LBA 256 (1 MiB), 512 sectors; partition 2 at 1024.
        let mut d = vec![0u8; (8 * MIB) as usize];
        put_entry(&mut d, 0, 0x80, 0x07, 256, 512);
        put_entry(&mut d, 1, 0x00, 0x07, 1024, 512);
        sign(&mut d, 0);
        ntfs_boot(&mut d, 256 * 4096, 4096);
        ntfs_boot(&mut d, 1024 * 4096, 4096);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.sector_size, 4096);
        assert_eq!(t.partitions[0].start, MIB);
        assert_eq!(t.partitions[1].size, 2 * MIB);
        assert!(t.notes.iter().any(|n| n.contains("4096")), "{:?}", t.notes);
    }

    #[test]
    fn ambiguous_sector_size_defaults_to_512_with_a_note() {
        let mut d = vec![0u8; (8 * MIB) as usize];
        put_entry(&mut d, 0, 0x00, 0x07, 256, 512);
        sign(&mut d, 0);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.sector_size, 512);
        assert!(
            t.notes.iter().any(|n| n.contains("assumed 512")),
            "{:?}",
            t.notes
        );
    }

    #[test]
    fn ebr_decides_when_boot_sectors_do_not() {
        // Extended at LBA 256 with 4096-byte sectors; its EBR is at byte 1 MiB.
        let mut d = vec![0u8; (8 * MIB) as usize];
        put_entry(&mut d, 0, 0x00, 0x0F, 256, 1024);
        sign(&mut d, 0);
        let e1 = (256 * 4096) as usize;
        put_entry(&mut d[e1..e1 + 512], 0, 0, 0x07, 256, 512);
        sign(&mut d, e1);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.sector_size, 4096);
        assert_eq!(t.partition(5).unwrap().start, 512 * 4096);
    }

    #[test]
    fn invalid_status_byte_is_not_an_mbr() {
        let mut d = vec![0u8; 4096];
        put_entry(&mut d, 0, 0x12, 0x07, 1, 2);
        sign(&mut d, 0);
        let err = read_partitions(&d).unwrap_err();
        assert!(
            matches!(err, PartitionError::Unrecognized { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn empty_mbr() {
        let mut d = vec![0u8; 4096];
        sign(&mut d, 0);
        let t = read_partitions(&d).unwrap();
        assert_eq!(t.scheme, Scheme::Mbr);
        assert!(t.partitions.is_empty());
        assert!(!t.warnings.is_empty());
    }
}
