//! VHDX images written by qemu-img: kaifuku must read them byte for byte as qemu does, files
//! patched through `plan_output` must pass `qemu-img check` and read back in qemu (and in libvhdi's
//! `vhdiinfo`) as the patched disk, and damaged copies must be refused.
//!
//! qemu-img and vhdiinfo are required: without them these tests fail (they would otherwise pass without testing
//! anything).

mod common;

use common::{apply, assert_reads_as, qemu_img, run, s, FileReader, TempDir};

use kaifuku_container::{open, ContainerError, Extent, FileWriteLabel, Format};
use kaifuku_io::{check_range, Patch, PatchData, ReadAt};
use std::fs::{self};
use std::io;
use std::path::PathBuf;

const MIB: usize = 1 << 20;
const RAW_SIZE: usize = 9 * MIB;
const HEADER_OFFSETS: [usize; 2] = [64 << 10, 128 << 10];

/// An image held in memory (for the damaged variants).
struct Bytes(Vec<u8>);

impl ReadAt for Bytes {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size())?;
        buf.copy_from_slice(&self.0[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
}

/// 9 MiB of deterministic noise with zero regions: blocks 2..5 (1 MiB blocks; qemu leaves them
/// unallocated in a dynamic image), and 256..512 KiB inside block 0.
fn raw_image() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut v: Vec<u8> = (0..RAW_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    v[2 * MIB..5 * MIB].fill(0);
    v[256 << 10..512 << 10].fill(0);
    v
}

fn make_vhdx(dir: &TempDir, raw: &[u8], subformat: &str) -> PathBuf {
    let raw_path = dir.path("input.raw");
    fs::write(&raw_path, raw).unwrap();
    let out = dir.path(&format!("{subformat}.vhdx"));
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        &format!("subformat={subformat},block_size=1M"),
        s(&raw_path),
        s(&out),
    ]);
    out
}

/// A GUID stored in the Microsoft layout, as text.
fn guid_text(g: &[u8]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let rev = |b: &[u8]| b.iter().rev().copied().collect::<Vec<u8>>();
    format!(
        "{}-{}-{}-{}-{}",
        hex(&rev(&g[0..4])),
        hex(&rev(&g[4..6])),
        hex(&rev(&g[6..8])),
        hex(&g[8..10]),
        hex(&g[10..16])
    )
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn qemu_vhdx_fixed_and_dynamic_read_as_the_raw_disk() {
    let dir = TempDir::new("read");
    let raw = raw_image();
    for (sub, format) in [
        ("fixed", Format::VhdxFixed),
        ("dynamic", Format::VhdxDynamic),
    ] {
        let path = make_vhdx(&dir, &raw, sub);
        let c = open(FileReader::open(&path)).unwrap();
        assert_eq!(c.format(), format, "{sub}");
        assert_reads_as(&c, &raw);
        let info = c.info();
        let v = info.vhdx.as_ref().unwrap();
        assert_eq!(v.block_size, MIB as u32);
        assert_eq!(v.logical_sector_size, 512);
        assert_eq!(v.total_blocks, 9);
        assert!(v.log_empty);
        assert!(!v.damaged_copy);
        assert!(info.vhd.is_none());
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["format"], format!("vhdx_{sub}"));
        if sub == "dynamic" {
            assert_eq!(
                c.map(2 * MIB as u64 + 7).unwrap(),
                Extent::Zero {
                    len: MIB as u64 - 7
                }
            );
        }
        assert!(matches!(c.map(5).unwrap(), Extent::InFile { len, .. } if len == MIB as u64 - 5));
    }
}

/// Patches through `plan_output` land in qemu's view of the disk, and qemu-img check accepts the
/// file with its rewritten headers.
#[test]
fn plan_output_on_qemu_vhdx() {
    let dir = TempDir::new("patch");
    let raw = raw_image();
    for sub in ["fixed", "dynamic"] {
        let path = make_vhdx(&dir, &raw, sub);
        let original = fs::read(&path).unwrap();
        let c = open(FileReader::open(&path)).unwrap();
        let before = c.info().vhdx.unwrap();
        let p1: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let patches = vec![
            Patch {
                offset: MIB as u64 - 1000, // across blocks 0 and 1
                data: PatchData::Bytes(p1.clone()),
                label: String::from("bytes"),
            },
            Patch {
                offset: 6 * MIB as u64,
                data: PatchData::Fill {
                    byte: 0xff,
                    len: 64 << 10,
                },
                label: String::from("fill"),
            },
        ];
        let plan = c.plan_output(&patches).unwrap();
        let headers: Vec<_> = plan
            .writes
            .iter()
            .filter(|w| {
                matches!(
                    w.label,
                    kaifuku_container::FileWriteLabel::VhdxHeader { .. }
                )
            })
            .collect();
        assert_eq!(headers.len(), 2, "{:#?}", plan.writes);
        let mut file = original.clone();
        apply(&mut file, &plan.writes);
        for f in &plan.fills {
            file[f.file_offset as usize..(f.file_offset + f.len) as usize].fill(f.byte);
        }
        // Nothing but the headers and block data changed: never the region table, the BAT or the
        // metadata (which holds the disk's identity).
        let (bat, bat_len) = region(&original, BAT_GUID);
        let (meta, meta_len) = region(&original, METADATA_GUID);
        for w in &plan.writes {
            let (start, end) = (w.file_offset as usize, w.end() as usize);
            if HEADER_OFFSETS.contains(&start) {
                assert_eq!(end - start, 4096, "{w:?}");
                continue;
            }
            assert!(start >= MIB, "{w:?}");
            for (r, len) in [(bat, bat_len), (meta, meta_len)] {
                assert!(end <= r || start >= r + len, "{w:?}");
            }
        }
        let patched = dir.path(&format!("patched-{sub}.vhdx"));
        fs::write(&patched, &file).unwrap();
        let mut want = raw.clone();
        let at = MIB - 1000;
        want[at..at + p1.len()].copy_from_slice(&p1);
        want[6 * MIB..6 * MIB + (64 << 10)].fill(0xff);

        let c2 = open(FileReader::open(&patched)).unwrap();
        assert_reads_as(&c2, &want);
        let after = c2.info().vhdx.unwrap();
        assert_eq!(
            after.virtual_disk_id, before.virtual_disk_id,
            "the disk keeps its identity"
        );
        assert_eq!(after.header_sequence, before.header_sequence + 2);
        assert_eq!(after.current_header, before.current_header);
        // Both headers are valid, one sequence number apart, with new write GUIDs.
        let seqs: Vec<u64> = HEADER_OFFSETS
            .iter()
            .map(|&h| u64_at(&file, h + 8))
            .collect();
        assert_eq!(seqs.iter().max().unwrap() - seqs.iter().min().unwrap(), 1);
        for &h in &HEADER_OFFSETS {
            assert_ne!(
                file[h + 16..h + 48],
                original[h + 16..h + 48],
                "write GUIDs renewed"
            );
        }

        qemu_img(&["check", "-f", "vhdx", s(&patched)]);
        let expected = dir.path("expected.raw");
        fs::write(&expected, &want).unwrap();
        qemu_img(&[
            "compare",
            "-f",
            "vhdx",
            "-F",
            "raw",
            s(&patched),
            s(&expected),
        ]);
        // libvhdi (package libvhdi-utils) reads it too, with the same identity.
        let out = run("vhdiinfo", &[s(&patched)]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "vhdiinfo refuses the output: {text}");
        assert!(text.contains("VHDX"), "{text}");
        assert!(text.contains(&format!("({RAW_SIZE} bytes)")), "{text}");
        // Its "Identifier" is the current header's DataWriteGuid: the new one, from the header
        // kaifuku made current.
        let current = HEADER_OFFSETS[after.current_header as usize - 1];
        let data_write = guid_text(&file[current + 32..current + 48]);
        assert!(
            text.contains(&format!("Identifier\t\t: {data_write}")),
            "{data_write}: {text}"
        );

        // A second fix of the patched file keeps working (sequence numbers keep rising).
        let c3 = open(Bytes(file.clone())).unwrap();
        let plan2 = c3.plan_output(&patches[..1]).unwrap();
        let mut again = file.clone();
        apply(&mut again, &plan2.writes);
        let c4 = open(Bytes(again)).unwrap();
        assert_eq!(
            c4.info().vhdx.unwrap().header_sequence,
            before.header_sequence + 4
        );
    }
}

/// Patches in blocks qemu-img left absent (blocks 2..5 read as zeros): each such block is added
/// after the end of the file, on a MiB boundary, with zeros around the patches, and its table entry
/// points there. qemu-img check accepts the grown file, qemu reads the patched disk, libvhdi opens
/// it, and a second fix of it adds nothing more.
#[test]
fn patch_in_a_block_that_is_not_present_adds_the_block() {
    let dir = TempDir::new("absent");
    let raw = raw_image();
    let path = make_vhdx(&dir, &raw, "dynamic");
    let original = fs::read(&path).unwrap();
    let c = open(FileReader::open(&path)).unwrap();
    let patches = vec![
        Patch {
            offset: 3 * MIB as u64 + 5,
            data: PatchData::Bytes(vec![1, 2, 3]),
            label: String::new(),
        },
        // Across present block 1 and absent block 2.
        Patch {
            offset: 2 * MIB as u64 - 2,
            data: PatchData::Bytes(vec![4, 5, 6, 7]),
            label: String::new(),
        },
        Patch {
            offset: 4 * MIB as u64 + 4096,
            data: PatchData::Fill {
                byte: 0xff,
                len: 8192,
            },
            label: String::new(),
        },
    ];
    let plan = c.plan_output(&patches).unwrap();
    let size = plan.file_size.expect("the file grows") as usize;
    let first_new = original.len().next_multiple_of(MIB);
    assert_eq!(size, first_new + 3 * MIB, "three blocks added");
    let entries = plan
        .writes
        .iter()
        .filter(|w| matches!(w.label, FileWriteLabel::UnitTableEntry { .. }))
        .count();
    assert_eq!(entries, 3);
    let mut file = original.clone();
    file.resize(size, 0);
    apply(&mut file, &plan.writes);
    for f in &plan.fills {
        file[f.file_offset as usize..(f.file_offset + f.len) as usize].fill(f.byte);
    }
    // Every byte after the old end is planned.
    let mut planned: Vec<(u64, u64)> = plan
        .writes
        .iter()
        .map(|w| (w.file_offset, w.end()))
        .chain(
            plan.fills
                .iter()
                .map(|f| (f.file_offset, f.file_offset + f.len)),
        )
        .filter(|&(_, to)| to > original.len() as u64)
        .collect();
    planned.sort_unstable();
    let mut at = original.len() as u64;
    for (from, to) in planned {
        assert!(from <= at, "nothing is planned at {at}..{from}");
        at = at.max(to);
    }
    assert_eq!(at, size as u64);

    let mut want = raw.clone();
    want[3 * MIB + 5..3 * MIB + 8].copy_from_slice(&[1, 2, 3]);
    want[2 * MIB - 2..2 * MIB + 2].copy_from_slice(&[4, 5, 6, 7]);
    want[4 * MIB + 4096..4 * MIB + 4096 + 8192].fill(0xff);
    let patched = dir.path("grown.vhdx");
    fs::write(&patched, &file).unwrap();
    qemu_img(&["check", "-f", "vhdx", s(&patched)]);
    let expected = dir.path("expected.raw");
    fs::write(&expected, &want).unwrap();
    qemu_img(&[
        "compare",
        "-f",
        "vhdx",
        "-F",
        "raw",
        s(&patched),
        s(&expected),
    ]);
    let out = run("vhdiinfo", &[s(&patched)]);
    assert!(
        out.status.success(),
        "vhdiinfo refuses the output: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let c2 = open(FileReader::open(&patched)).unwrap();
    assert_reads_as(&c2, &want);
    for block in [2u64, 3, 4] {
        assert!(
            matches!(
                c2.map(block * MIB as u64).unwrap(),
                Extent::InFile { file_offset, .. } if file_offset >= first_new as u64
            ),
            "block {block}"
        );
    }
    // The same patches again: the blocks are present now, nothing grows.
    let again = c2.plan_output(&patches).unwrap();
    assert_eq!(again.file_size, None);
}

fn crc32c(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32C, independent of the crate's table.
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn reseal(file: &mut [u8], at: usize, len: usize) {
    file[at + 4..at + 8].fill(0);
    let c = crc32c(&file[at..at + len]);
    file[at + 4..at + 8].copy_from_slice(&c.to_le_bytes());
}

/// File offset and length of the region `guid_first_bytes` names in the region table.
fn region(file: &[u8], guid_first_bytes: [u8; 4]) -> (usize, usize) {
    let t = 192 << 10;
    let n = u32::from_le_bytes(file[t + 8..t + 12].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| t + 16 + i * 32)
        .find(|&e| file[e..e + 4] == guid_first_bytes)
        .map(|e| {
            (
                u64_at(file, e + 16) as usize,
                u32::from_le_bytes(file[e + 24..e + 28].try_into().unwrap()) as usize,
            )
        })
        .unwrap()
}
const BAT_GUID: [u8; 4] = [0x66, 0x77, 0xC2, 0x2D];
const METADATA_GUID: [u8; 4] = [0x06, 0xA2, 0x7C, 0x8B];

/// Offset in the file of the metadata item whose GUID starts with these bytes.
fn metadata_item(file: &[u8], guid_first_bytes: [u8; 4]) -> usize {
    let (m, _) = region(file, METADATA_GUID);
    let n = u16::from_le_bytes(file[m + 10..m + 12].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| m + 32 + i * 32)
        .find(|&e| file[e..e + 4] == guid_first_bytes)
        .map(|e| m + u32::from_le_bytes(file[e + 16..e + 20].try_into().unwrap()) as usize)
        .unwrap()
}

fn refused(file: Vec<u8>) -> String {
    match open(Bytes(file)) {
        Ok(_) => panic!("a damaged VHDX was opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn damaged_vhdx_is_refused_or_read_from_the_good_copy() {
    let dir = TempDir::new("hostile");
    let raw = raw_image();
    let good = fs::read(make_vhdx(&dir, &raw, "dynamic")).unwrap();

    // One damaged header or region table: the other copy is used.
    for at in [
        HEADER_OFFSETS[0] + 100,
        HEADER_OFFSETS[1] + 100,
        (192 << 10) + 40,
        (256 << 10) + 40,
    ] {
        let mut f = good.clone();
        f[at] ^= 0x55;
        let c = open(Bytes(f)).unwrap_or_else(|e| panic!("byte {at}: {e}"));
        assert!(c.info().vhdx.unwrap().damaged_copy, "byte {at}");
        assert_reads_as(&c, &raw);
    }
    // Both headers bad.
    let mut f = good.clone();
    f[HEADER_OFFSETS[0] + 100] ^= 1;
    f[HEADER_OFFSETS[1] + 100] ^= 1;
    let e = refused(f);
    assert!(
        e.contains("both VHDX headers") && e.contains("checksum mismatch"),
        "{e}"
    );
    // Both region tables bad.
    let mut f = good.clone();
    f[(192 << 10) + 40] ^= 1;
    f[(256 << 10) + 40] ^= 1;
    assert!(refused(f).contains("both VHDX region tables"));

    // Metadata: block size not a power of two, a huge virtual size, a bad sector size.
    let params = metadata_item(&good, [0x37, 0x67, 0xA1, 0xCA]);
    let mut f = good.clone();
    f[params..params + 4].copy_from_slice(&(3 * MIB as u32).to_le_bytes());
    assert!(refused(f).contains("block size 3145728 is invalid"));
    let size = metadata_item(&good, [0x24, 0x42, 0xA5, 0x2F]);
    let mut f = good.clone();
    f[size..size + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(refused(f).contains("at most 64 TiB"));
    // A size the BAT is too small for.
    let mut f = good.clone();
    f[size..size + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(refused(f).contains("needs"));
    let logical = metadata_item(&good, [0x1D, 0xBF, 0x41, 0x81]);
    let mut f = good.clone();
    f[logical..logical + 4].copy_from_slice(&1000u32.to_le_bytes());
    assert!(refused(f).contains("must be 512 or 4096"));
    // HasParent: a differencing disk.
    let mut f = good.clone();
    f[params + 4] |= 2;
    assert!(matches!(
        open(Bytes(f)),
        Err(ContainerError::DifferencingVhdx)
    ));

    // A region past the end of the file (both table copies agree, checksums fixed).
    let mut f = good.clone();
    for t in [192usize << 10, 256 << 10] {
        let n = u32::from_le_bytes(f[t + 8..t + 12].try_into().unwrap()) as usize;
        for e in (0..n).map(|i| t + 16 + i * 32) {
            if f[e..e + 4] == BAT_GUID {
                f[e + 16..e + 24].copy_from_slice(&(1u64 << 40).to_le_bytes());
            }
        }
        reseal(&mut f, t, 64 << 10);
    }
    assert!(refused(f).contains("past the end"));

    // A header naming a log with no entries of that log: damage, not a silent read.
    let mut f = good.clone();
    for h in HEADER_OFFSETS {
        f[h + 48] = 0x11;
        reseal(&mut f, h, 4096);
    }
    assert!(refused(f).contains("no valid sequence"));

    // A BAT entry past the end of the file: the open succeeds (the table is read lazily), reading
    // that block fails, and a plan touching it is refused.
    let (bat, _) = region(&good, BAT_GUID);
    let mut f = good.clone();
    let entry = (1u64 << 40 >> 20 << 20) | 6;
    f[bat + 8..bat + 16].copy_from_slice(&entry.to_le_bytes());
    let c = open(Bytes(f)).unwrap();
    let mut buf = [0u8; 16];
    let e = c.read_at(MIB as u64, &mut buf).unwrap_err();
    assert!(e.to_string().contains("outside the file"), "{e}");
    assert!(c.plan_writes(&[(MIB as u64, &[1])]).is_err());
    // The largest offset the field can hold (found by the container fuzz target: the block's end
    // overflowed).
    let mut f = good.clone();
    f[bat + 8..bat + 16].copy_from_slice(&(!7u64 | 6).to_le_bytes());
    let c = open(Bytes(f)).unwrap();
    let e = c.read_at(MIB as u64, &mut buf).unwrap_err();
    assert!(e.to_string().contains("outside the file"), "{e}");
    // A BAT entry pointing into the header section or the metadata region.
    for target in [0u64, region(&good, METADATA_GUID).0 as u64] {
        let mut f = good.clone();
        f[bat + 8..bat + 16].copy_from_slice(&(target | 6).to_le_bytes());
        let c = open(Bytes(f)).unwrap();
        assert!(
            c.read_at(MIB as u64, &mut buf).is_err(),
            "block at {target}"
        );
    }
    // Two blocks sharing file bytes: a plan writing both is refused.
    let mut f = good.clone();
    let first = u64_at(&f, bat);
    f[bat + 8..bat + 16].copy_from_slice(&first.to_le_bytes());
    let c = open(Bytes(f)).unwrap();
    let e = c.plan_writes(&[(0, &[1]), (MIB as u64, &[2])]).unwrap_err();
    assert!(e.to_string().contains("shares file bytes"), "{e}");

    // Truncated anywhere: refused or read without panicking; never a panic.
    for cut in [
        0usize,
        100,
        64 << 10,
        200 << 10,
        MIB,
        3 * MIB,
        good.len() - 1,
    ] {
        let f = good[..cut].to_vec();
        if let Ok(c) = open(Bytes(f)) {
            let mut all = vec![0u8; RAW_SIZE];
            let _ = c.read_at(0, &mut all);
        }
    }
}

/// Appends a log entry to `log` (bytes of the log region from its start, at `at`) per MS-VHDX:
/// header, descriptors padded to a sector, one data sector per data descriptor; CRC-32C over it.
/// `writes`: (file offset, Some(4 KiB of data) or None with a zero length).
fn log_entry(
    sequence: u64,
    tail: u32,
    guid: &[u8; 16],
    file_size: u64,
    writes: &[(u64, Result<Vec<u8>, u64>)],
) -> Vec<u8> {
    let descriptor_sectors = (64 + 32 * writes.len()).div_ceil(4096);
    let data: Vec<&Vec<u8>> = writes.iter().filter_map(|(_, w)| w.as_ref().ok()).collect();
    let len = 4096 * (descriptor_sectors + data.len());
    let mut e = vec![0u8; len];
    e[0..4].copy_from_slice(b"loge");
    e[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    e[12..16].copy_from_slice(&tail.to_le_bytes());
    e[16..24].copy_from_slice(&sequence.to_le_bytes());
    e[24..28].copy_from_slice(&(writes.len() as u32).to_le_bytes());
    e[32..48].copy_from_slice(guid);
    e[48..56].copy_from_slice(&file_size.to_le_bytes());
    e[56..64].copy_from_slice(&file_size.to_le_bytes());
    let mut data_index = 0;
    for (i, (offset, w)) in writes.iter().enumerate() {
        let d = 64 + 32 * i;
        match w {
            Ok(bytes) => {
                assert_eq!(bytes.len(), 4096);
                e[d..d + 4].copy_from_slice(b"desc");
                e[d + 4..d + 8].copy_from_slice(&bytes[4092..]); // trailing bytes
                e[d + 8..d + 16].copy_from_slice(&bytes[..8]); // leading bytes
                let s = 4096 * (descriptor_sectors + data_index);
                e[s..s + 4].copy_from_slice(b"data");
                e[s + 4..s + 8].copy_from_slice(&((sequence >> 32) as u32).to_le_bytes());
                e[s + 8..s + 4092].copy_from_slice(&bytes[8..4092]);
                e[s + 4092..s + 4096].copy_from_slice(&(sequence as u32).to_le_bytes());
                data_index += 1;
            }
            Err(zero_len) => {
                e[d..d + 4].copy_from_slice(b"zero");
                e[d + 8..d + 16].copy_from_slice(&zero_len.to_le_bytes());
            }
        }
        e[d + 16..d + 24].copy_from_slice(&offset.to_le_bytes());
        e[d + 24..d + 32].copy_from_slice(&sequence.to_le_bytes());
    }
    reseal(&mut e, 0, len);
    e
}

/// A VHDX whose log holds two entries (a BAT update that makes block 0 read as zeros, a new 4 KiB
/// in block 1, 8 KiB zeroed in block 6): kaifuku reads it as qemu does after `qemu-img check -r
/// all` replays the log, and a fix writes the replayed state with an empty log that qemu-img check
/// accepts as it is.
#[test]
fn non_empty_log_is_replayed_like_qemu() {
    let dir = TempDir::new("log");
    let raw = raw_image();
    let path = make_vhdx(&dir, &raw, "dynamic");
    let mut f = fs::read(&path).unwrap();
    let file_size = f.len() as u64;
    let current = if u64_at(&f, HEADER_OFFSETS[0] + 8) > u64_at(&f, HEADER_OFFSETS[1] + 8) {
        HEADER_OFFSETS[0]
    } else {
        HEADER_OFFSETS[1]
    };
    let log_offset = u64_at(&f, current + 72) as usize;
    let (bat, _) = region(&f, BAT_GUID);
    let guid: [u8; 16] = *b"kaifuku-test-log";

    let mut bat_sector = f[bat..bat + 4096].to_vec();
    bat_sector[0..8].copy_from_slice(&2u64.to_le_bytes()); // block 0: PAYLOAD_BLOCK_ZERO
    let block1 = (u64_at(&f, bat + 8) >> 20 << 20) as usize;
    let block6 = (u64_at(&f, bat + 6 * 8) >> 20 << 20) as usize;
    assert_eq!(u64_at(&f, bat + 8) & 7, 6, "block 1 is present");
    assert_eq!(u64_at(&f, bat + 6 * 8) & 7, 6, "block 6 is present");
    let new_data: Vec<u8> = (0..4096u32).map(|i| (i * 31 + 7) as u8).collect();
    // Two entries, a sequence: the tail of the head (the second) is the first.
    let e1 = log_entry(
        41,
        0,
        &guid,
        file_size,
        &[
            (bat as u64, Ok(bat_sector)),
            (block1 as u64 + 8192, Ok(new_data.clone())),
        ],
    );
    let e2 = log_entry(
        42,
        0,
        &guid,
        file_size,
        &[(block6 as u64 + 4096, Err(8192))],
    );
    f[log_offset..log_offset + e1.len()].copy_from_slice(&e1);
    f[log_offset + e1.len()..log_offset + e1.len() + e2.len()].copy_from_slice(&e2);
    f[current + 48..current + 64].copy_from_slice(&guid);
    reseal(&mut f, current, 4096);
    let logged = dir.path("logged.vhdx");
    fs::write(&logged, &f).unwrap();

    // What the log means, by hand from the raw disk: qemu must agree after replaying it.
    let mut want = raw.clone();
    want[..MIB].fill(0);
    want[MIB + 8192..MIB + 8192 + 4096].copy_from_slice(&new_data);
    want[6 * MIB + 4096..6 * MIB + 4096 + 8192].fill(0);
    let replayed_by_qemu = dir.path("replayed-by-qemu.vhdx");
    fs::copy(&logged, &replayed_by_qemu).unwrap();
    qemu_img(&["check", "-r", "all", "-f", "vhdx", s(&replayed_by_qemu)]);
    let qemu_raw = dir.path("qemu.raw");
    qemu_img(&[
        "convert",
        "-f",
        "vhdx",
        "-O",
        "raw",
        s(&replayed_by_qemu),
        s(&qemu_raw),
    ]);
    assert!(
        fs::read(&qemu_raw).unwrap() == want,
        "qemu replays the log differently"
    );

    let c = open(FileReader::open(&logged)).unwrap();
    let info = c.info().vhdx.unwrap();
    assert!(!info.log_empty);
    assert_eq!(info.log_entries_replayed, 2);
    assert_eq!(info.log_sectors_replayed, 4);
    assert_reads_as(&c, &want);

    // A fix: patches in block 1 (one inside the replayed sector) and a fill over block 6.
    let patches = vec![
        Patch {
            offset: MIB as u64 + 8192 + 100,
            data: PatchData::Bytes(vec![0xab; 5000]),
            label: String::from("across the replayed sector"),
        },
        Patch {
            offset: 6 * MIB as u64,
            data: PatchData::Fill {
                byte: 0xff,
                len: 8192,
            },
            label: String::from("over a zeroed sector"),
        },
    ];
    let plan = c.plan_output(&patches).unwrap();
    let mut out = f.clone();
    for fl in &plan.fills {
        out[fl.file_offset as usize..(fl.file_offset + fl.len) as usize].fill(fl.byte);
    }
    apply(&mut out, &plan.writes);
    let mut spans: Vec<(u64, u64)> = plan
        .writes
        .iter()
        .map(|w| (w.file_offset, w.end()))
        .chain(
            plan.fills
                .iter()
                .map(|f| (f.file_offset, f.file_offset + f.len)),
        )
        .collect();
    spans.sort();
    assert!(
        spans.windows(2).all(|p| p[0].1 <= p[1].0),
        "writes and fills overlap"
    );
    let fixed = dir.path("fixed.vhdx");
    fs::write(&fixed, &out).unwrap();
    for h in HEADER_OFFSETS {
        assert_eq!(out[h + 48..h + 64], [0u8; 16], "LogGuid cleared");
    }
    qemu_img(&["check", "-f", "vhdx", s(&fixed)]);
    let mut want_fixed = want.clone();
    want_fixed[MIB + 8192 + 100..MIB + 8192 + 5100].fill(0xab);
    want_fixed[6 * MIB..6 * MIB + 8192].fill(0xff);
    let expected = dir.path("expected.raw");
    fs::write(&expected, &want_fixed).unwrap();
    // Read-only: qemu refuses a file whose log still needs replaying, so this also proves the
    // log is empty.
    qemu_img(&[
        "compare",
        "-f",
        "vhdx",
        "-F",
        "raw",
        s(&fixed),
        s(&expected),
    ]);
    let c2 = open(Bytes(out)).unwrap();
    assert!(c2.info().vhdx.unwrap().log_empty);
    assert_reads_as(&c2, &want_fixed);

    // A log whose only entry's tail points elsewhere is no valid sequence: refused as damage.
    let mut g = f.clone();
    let bad = log_entry(
        41,
        4096 * 7,
        &guid,
        file_size,
        &[(block6 as u64, Err(4096))],
    );
    g[log_offset..log_offset + bad.len() + e2.len()].fill(0);
    g[log_offset..log_offset + bad.len()].copy_from_slice(&bad);
    let e = refused(g);
    assert!(e.contains("no valid sequence"), "{e}");
    // A replay that would grow the file is refused.
    let mut g = f.clone();
    let grow = {
        let mut e = log_entry(41, 0, &guid, file_size, &[(block6 as u64, Err(4096))]);
        e[56..64].copy_from_slice(&(file_size + (1 << 20)).to_le_bytes());
        reseal(&mut e, 0, 4096);
        e
    };
    g[log_offset..log_offset + e1.len() + e2.len()].fill(0);
    g[log_offset..log_offset + grow.len()].copy_from_slice(&grow);
    let e = refused(g);
    assert!(e.contains("would grow the file"), "{e}");
}
