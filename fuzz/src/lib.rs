//! Shared pieces of the fuzz targets: byte spaces built from fuzz input, checksum sealing (so that
//! mutations get past CRC and VHD checksums and reach the parsers behind them), and the small real
//! NTFS volume that the whole-image targets mutate.
//!
//! Input formats are documented on each function; `tests/fuzz-seed.py` writes seeds in them.

use kaifuku_io::{check_range, ReadAt};
use std::io;
use std::sync::OnceLock;

/// Largest virtual size a sparse byte space may claim (1 TiB): big enough for every layout
/// question (a GPT backup at the end of a large disk), small enough that offsets stay sane.
pub const MAX_SPARSE_SIZE: u64 = 1 << 40;

/// A byte space of any size that reads as zeros except where segments put bytes (later segments
/// win where they overlap).
pub struct Sparse {
    size: u64,
    segments: Vec<(u64, Vec<u8>)>,
}

impl Sparse {
    pub fn new(size: u64) -> Sparse {
        Sparse {
            size,
            segments: Vec::new(),
        }
    }

    /// Puts `bytes` at `offset`, cut at the end of the space.
    pub fn put(&mut self, offset: u64, bytes: &[u8]) {
        if offset >= self.size || bytes.is_empty() {
            return;
        }
        let n = bytes
            .len()
            .min((self.size - offset).min(usize::MAX as u64) as usize);
        self.segments.push((offset, bytes[..n].to_vec()));
    }

    /// Reads what lies at `offset`, or `None` when the range is outside the space.
    pub fn get(&self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v).ok()?;
        Some(v)
    }

    /// Parses the sparse format:
    ///
    /// ```text
    /// flags u8 | size u64 LE (min'd with MAX_SPARSE_SIZE) | { offset u64 LE | len u16 LE | bytes }*
    /// ```
    ///
    /// Offsets are taken modulo the size; a segment's bytes are cut at the end of the input and of
    /// the space. Returns the flags and the space.
    pub fn parse(data: &[u8]) -> (u8, Sparse) {
        let flags = data.first().copied().unwrap_or(0);
        let size = le(data.get(1..9).unwrap_or(&[])).min(MAX_SPARSE_SIZE);
        let mut s = Sparse::new(size);
        let mut at = 9;
        while at + 10 <= data.len() {
            let offset = le(&data[at..at + 8]);
            let len = le(&data[at + 8..at + 10]) as usize;
            at += 10;
            let bytes = &data[at..(at + len).min(data.len())];
            at += bytes.len();
            if size > 0 {
                s.put(offset % size, bytes);
            }
        }
        (flags, s)
    }
}

impl ReadAt for Sparse {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        buf.fill(0);
        let end = offset + buf.len() as u64;
        for (start, bytes) in &self.segments {
            let s_end = start + bytes.len() as u64;
            if *start >= end || s_end <= offset {
                continue;
            }
            let from = (*start).max(offset);
            let to = s_end.min(end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
        }
        Ok(())
    }
}

/// Little-endian integer of up to 8 bytes (missing bytes are zero).
pub fn le(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .enumerate()
        .fold(0u64, |v, (i, x)| v | (u64::from(*x) << (8 * i)))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    (u64::from(be32(b)) << 32) | u64::from(be32(&b[4..]))
}

/// The VHD checksum (one's complement of the byte sum, the 4-byte field counted as zero), written
/// as the VHD specification defines it.
pub fn vhd_checksum(b: &[u8], field: usize) -> u32 {
    let mut sum = 0u32;
    for (i, x) in b.iter().enumerate() {
        if !(field..field + 4).contains(&i) {
            sum = sum.wrapping_add(u32::from(*x));
        }
    }
    !sum
}

/// Recomputes the checksums of whatever VHD footers (end of file, 512 or 511 bytes; copy at 0)
/// and dynamic header the space holds, so mutations of their fields reach the format checks.
pub fn seal_vhd(s: &mut Sparse) {
    let size = s.size();
    let mut footers = vec![0u64];
    for len in [512u64, 511] {
        if let Some(at) = size.checked_sub(len) {
            footers.push(at);
        }
    }
    for at in footers {
        let len = if size - at == 511 { 511 } else { 512 };
        let Some(mut f) = s.get(at, len) else {
            continue;
        };
        if !f.starts_with(b"conectix") {
            continue;
        }
        f.resize(512, 0);
        let sum = vhd_checksum(&f, 64);
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        s.put(at, &f[..len]);
        let header_at = be64(&f[16..24]);
        if let Some(mut h) = s.get(header_at, 1024) {
            if h.starts_with(b"cxsparse") {
                let sum = vhd_checksum(&h, 36);
                h[36..40].copy_from_slice(&sum.to_be_bytes());
                s.put(header_at, &h);
            }
        }
    }
}

/// CRC-32C (Castagnoli, reflected), the checksum of VHDX headers and region tables; bitwise, as
/// the specification defines it, independent of the container crate's table.
pub fn crc32c(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for x in b {
        c ^= u32::from(*x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0x82F6_3B78 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Recomputes the CRC-32C of whatever VHDX headers (4 KiB at 64 and 128 KiB) and region tables
/// (64 KiB at 192 and 256 KiB) the space holds, so mutations of their fields reach the checks.
pub fn seal_vhdx(s: &mut Sparse) {
    if s.get(0, 8).as_deref() != Some(b"vhdxfile") {
        return;
    }
    for (at, len, sig) in [
        (64u64 << 10, 4096usize, b"head"),
        (128 << 10, 4096, b"head"),
        (192 << 10, 65536, b"regi"),
        (256 << 10, 65536, b"regi"),
    ] {
        let Some(mut b) = s.get(at, len) else {
            continue;
        };
        if &b[..4] != sig {
            continue;
        }
        b[4..8].fill(0);
        let c = crc32c(&b);
        b[4..8].copy_from_slice(&c.to_le_bytes());
        s.put(at, &b);
    }
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE 802.3, reflected), the checksum of GPT headers and entry arrays.
pub fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for x in b {
        c = CRC_TABLE[((c ^ u32::from(*x)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Largest GPT entry array sealed (4096 entries of 128 bytes, the partition crate's limit).
const MAX_SEALED_ENTRIES: u64 = 4096 * 128;

/// Recomputes the entry-array and header CRCs of every GPT header at LBA 1 or the last LBA, for
/// 512- and 4096-byte sectors.
pub fn seal_gpt(s: &mut Sparse) {
    let size = s.size();
    for ss in [512u64, 4096] {
        let last = (size / ss).saturating_sub(1);
        for lba in [1, last] {
            let at = lba * ss;
            let Some(mut h) = s.get(at, ss as usize) else {
                continue;
            };
            if &h[..8] != b"EFI PART" {
                continue;
            }
            let hs = le(&h[12..16]);
            if !(92..=ss).contains(&hs) {
                continue;
            }
            let entries_lba = le(&h[72..80]);
            let n = le(&h[80..84]) * le(&h[84..88]);
            if n <= MAX_SEALED_ENTRIES {
                if let Some(e) = entries_lba
                    .checked_mul(ss)
                    .and_then(|o| s.get(o, n as usize))
                {
                    h[88..92].copy_from_slice(&crc32(&e).to_le_bytes());
                }
            }
            h[16..20].fill(0);
            let crc = crc32(&h[..hs as usize]);
            h[16..20].copy_from_slice(&crc.to_le_bytes());
            s.put(at, &h[..hs as usize]);
        }
    }
}

/// The small real NTFS volume the whole-image targets mutate (`fuzz/data/volume.img`, made by
/// `tests/fuzz-seed.py` with mkntfs and ntfs-3g) and the byte ranges of its metadata
/// (`volume.regions`, found by sleuthkit's istat): boot sectors, `$MFT`, `$MFTMirr`, the
/// `$LogFile` restart pages, `$Bitmap`, `$UpCase`, the index blocks of the directories on the path
/// to the CrowdStrike files, and the first cluster of those files.
pub struct Volume {
    pub bytes: Vec<u8>,
    pub regions: Vec<(u64, u64)>,
}

/// Loads the volume once per process. `KAIFUKU_FUZZ_DATA` overrides the directory.
pub fn volume() -> &'static Volume {
    static V: OnceLock<Volume> = OnceLock::new();
    V.get_or_init(|| {
        let dir = std::env::var("KAIFUKU_FUZZ_DATA")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/data").to_string());
        let bytes = std::fs::read(format!("{dir}/volume.img"))
            .unwrap_or_else(|e| panic!("{dir}/volume.img: {e}; run `tests/fuzz.sh seed` first"));
        let text = std::fs::read_to_string(format!("{dir}/volume.regions")).unwrap_or_else(|e| {
            panic!("{dir}/volume.regions: {e}; run `tests/fuzz.sh seed` first")
        });
        let regions: Vec<(u64, u64)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let start = f.next()?.parse().ok()?;
                let len: u64 = f.next()?.parse().ok()?;
                (len > 0 && start + len <= bytes.len() as u64).then_some((start, len))
            })
            .collect();
        assert!(!regions.is_empty(), "{dir}/volume.regions lists no region");
        Volume { bytes, regions }
    })
}

/// The volume with the fuzz input's mutations laid over it, without copying it.
pub struct Mutated<'a> {
    base: &'a [u8],
    patches: Vec<(u64, Vec<u8>)>,
}

impl Volume {
    /// Applies `data` as mutations:
    ///
    /// ```text
    /// { region u8 | offset u24 LE | len u8 | bytes[len] }*
    /// ```
    ///
    /// `region` picks a metadata region (modulo their count), `offset` a byte in it (modulo its
    /// length); the bytes are cut at the region's end.
    pub fn mutate(&self, data: &[u8]) -> Mutated<'_> {
        let mut patches = Vec::new();
        let mut at = 0;
        while at + 5 <= data.len() {
            let (start, len) = self.regions[data[at] as usize % self.regions.len()];
            let off = le(&data[at + 1..at + 4]) % len;
            let n = data[at + 4] as usize;
            at += 5;
            let bytes = &data[at..(at + n).min(data.len())];
            at += bytes.len();
            let room = (len - off) as usize;
            if !bytes.is_empty() {
                patches.push((start + off, bytes[..bytes.len().min(room)].to_vec()));
            }
        }
        Mutated {
            base: &self.bytes,
            patches,
        }
    }
}

impl ReadAt for Mutated<'_> {
    fn size(&self) -> u64 {
        self.base.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.base.read_at(offset, buf)?;
        let end = offset + buf.len() as u64;
        for (start, bytes) in &self.patches {
            let s_end = start + bytes.len() as u64;
            if *start >= end || s_end <= offset {
                continue;
            }
            let from = (*start).max(offset);
            let to = s_end.min(end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// A GPT written with zeroed CRCs reads as intact once sealed, and a VHD footer with a zeroed
    /// checksum opens once sealed: the sealing is what lets mutations reach the parsers.
    #[test]
    fn sealing_makes_checksums_valid() {
        let size = 1u64 << 20;
        let mut s = Sparse::new(size);
        let mut mbr = [0u8; 512];
        mbr[446 + 4] = 0xEE;
        mbr[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        mbr[446 + 12..446 + 16].copy_from_slice(&((size / 512 - 1) as u32).to_le_bytes());
        mbr[510..].copy_from_slice(&[0x55, 0xAA]);
        s.put(0, &mbr);
        let mut entry = [0u8; 128];
        entry[..16].copy_from_slice(&[0xA2; 16]);
        entry[16..32].copy_from_slice(&[0x11; 16]);
        entry[32..40].copy_from_slice(&64u64.to_le_bytes());
        entry[40..48].copy_from_slice(&127u64.to_le_bytes());
        s.put(1024, &entry);
        let mut h = [0u8; 92];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        for (at, v) in [
            (24, 1u64),
            (32, size / 512 - 1),
            (40, 34),
            (48, size / 512 - 34),
            (72, 2),
        ] {
            h[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        s.put(512, &h);
        assert!(kaifuku_partition::read_partitions(&s).is_err());
        seal_gpt(&mut s);
        let t = kaifuku_partition::read_partitions(&s).expect("sealed GPT");
        assert_eq!(t.partitions.len(), 1);

        let mut f = Sparse::new(4096 + 512);
        let mut footer = [0u8; 512];
        footer[..8].copy_from_slice(b"conectix");
        footer[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        footer[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
        footer[48..56].copy_from_slice(&4096u64.to_be_bytes());
        footer[60..64].copy_from_slice(&2u32.to_be_bytes());
        f.put(4096, &footer);
        assert!(kaifuku_container::open(&f).is_err());
        seal_vhd(&mut f);
        let c = kaifuku_container::open(&f).expect("sealed fixed VHD");
        assert_eq!(c.virtual_size(), 4096);
    }

    #[test]
    fn sparse_reads_segments_over_zeros() {
        let mut d = vec![1u8];
        d.extend_from_slice(&100u64.to_le_bytes());
        d.extend_from_slice(&10u64.to_le_bytes());
        d.extend_from_slice(&3u16.to_le_bytes());
        d.extend_from_slice(&[7, 8, 9]);
        d.extend_from_slice(&198u64.to_le_bytes()); // 198 % 100 = 98: cut at the end
        d.extend_from_slice(&4u16.to_le_bytes());
        d.extend_from_slice(&[5, 6, 7, 8]);
        let (flags, s) = Sparse::parse(&d);
        assert_eq!(flags, 1);
        assert_eq!(s.size(), 100);
        assert_eq!(s.get(8, 6).unwrap(), vec![0, 0, 7, 8, 9, 0]);
        assert_eq!(s.get(97, 3).unwrap(), vec![0, 5, 6]);
        assert!(s.get(99, 2).is_none());
    }
}

/// Reseals the CRC-32 of each FVE metadata block the BitLocker boot sector names (in the
/// validation header after the block), so mutations inside a block get past its checksum.
pub fn seal_fve(s: &mut Sparse) {
    let Ok(boot) = kaifuku_bitlocker::FveBootSector::read(&*s) else {
        return;
    };
    for at in boot.metadata_offsets {
        let Some(head) = s.get(at, 16) else {
            continue;
        };
        let len = u64::from(u16::from_le_bytes([head[8], head[9]])) * 16;
        let Some(mut block) = s.get(at, len as usize + 8) else {
            continue;
        };
        let crc = crc32fast::hash(&block[..len as usize]);
        block[len as usize + 4..].copy_from_slice(&crc.to_le_bytes());
        s.put(at, &block);
    }
}
