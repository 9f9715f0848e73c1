//! Images written by qemu-img, the reference outside this crate: kaifuku must read them byte for
//! byte as qemu does, and files patched through `plan_writes` must read back as expected in qemu.
//!
//! qemu-img is required: without it these tests fail (they would otherwise pass without testing
//! anything).

mod common;

use common::{apply, assert_reads_as, qemu_img, run, s, FileReader, TempDir};

use kaifuku_container::{open, Extent, Format};
use kaifuku_io::{Patch, PatchData};
use std::fs::{self};
use std::path::{Path, PathBuf};

const MIB: usize = 1 << 20;
const RAW_SIZE: usize = 5 * MIB;
/// qemu's VHD block size.
const BLOCK: usize = 2 * MIB;

/// 5 MiB of deterministic noise with zero regions: all of block 1 (2..4 MiB, which qemu leaves
/// unallocated), 256..512 KiB inside block 0, and the last 100 KiB.
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
    v[2 * MIB..4 * MIB].fill(0);
    v[256 << 10..512 << 10].fill(0);
    v[RAW_SIZE - (100 << 10)..].fill(0);
    v
}

/// Writes the raw image and converts it to VHD with the given vpc options.
fn make_vhd(dir: &TempDir, raw: &[u8], options: &str) -> PathBuf {
    let raw_path = dir.path("input.raw");
    fs::write(&raw_path, raw).unwrap();
    let vhd = dir.path("image.vhd");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vpc",
        "-o",
        options,
        s(&raw_path),
        s(&vhd),
    ]);
    vhd
}

/// `-f vpc` is needed: qemu probes VHDs by the footer copy at offset 0, which fixed VHDs lack.
fn qemu_virtual_size(path: &Path) -> u64 {
    let out = qemu_img(&["info", "-f", "vpc", "--output=json", s(path)]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["virtual-size"].as_u64().unwrap()
}

#[test]
fn raw_input_is_raw() {
    let dir = TempDir::new("raw");
    let raw = raw_image();
    let path = dir.path("disk.img");
    fs::write(&path, &raw).unwrap();
    let c = open(FileReader::open(&path)).unwrap();
    assert_eq!(c.format(), Format::Raw);
    assert_reads_as(&c, &raw);
}

#[test]
fn qemu_fixed_vhd() {
    let dir = TempDir::new("fixed");
    let raw = raw_image();
    let vhd = make_vhd(&dir, &raw, "subformat=fixed,force_size=on");
    let c = open(FileReader::open(&vhd)).unwrap();
    assert_eq!(c.format(), Format::VhdFixed);
    assert_eq!(c.virtual_size(), RAW_SIZE as u64);
    assert_eq!(qemu_virtual_size(&vhd), c.virtual_size());
    assert_eq!(c.file_size(), RAW_SIZE as u64 + 512);
    assert_reads_as(&c, &raw);
    let info = serde_json::to_value(c.info()).unwrap();
    assert_eq!(info["format"], "vhd_fixed");
    assert_eq!(info["vhd"]["creator_app"], "qem2");
}

#[test]
fn qemu_dynamic_vhd() {
    let dir = TempDir::new("dynamic");
    let raw = raw_image();
    let vhd = make_vhd(&dir, &raw, "subformat=dynamic,force_size=on");
    let c = open(FileReader::open(&vhd)).unwrap();
    assert_eq!(c.format(), Format::VhdDynamic);
    assert_eq!(c.virtual_size(), RAW_SIZE as u64);
    assert_eq!(qemu_virtual_size(&vhd), c.virtual_size());
    assert_reads_as(&c, &raw);

    let info = c.info();
    let v = info.vhd.as_ref().unwrap();
    assert_eq!(v.block_size, Some(BLOCK as u32));
    assert_eq!(v.total_blocks, Some(3));
    assert_eq!(
        v.allocated_blocks,
        Some(2),
        "qemu leaves the all-zero block out"
    );
    assert_eq!(v.uuid.len(), 32);
    assert_eq!(
        c.map(BLOCK as u64 + 5).unwrap(),
        Extent::Zero {
            len: BLOCK as u64 - 5
        }
    );
    assert!(matches!(c.map(0).unwrap(), Extent::InFile { len, .. } if len == BLOCK as u64));
    assert!(
        matches!(c.map(4 * MIB as u64).unwrap(), Extent::InFile { len, .. } if len == MIB as u64)
    );
}

/// Without force_size qemu rounds the size to a CHS geometry; both readers must agree on it.
#[test]
fn qemu_dynamic_vhd_default_options() {
    let dir = TempDir::new("chs");
    let raw = raw_image();
    let vhd = make_vhd(&dir, &raw, "subformat=dynamic");
    let c = open(FileReader::open(&vhd)).unwrap();
    let size = qemu_virtual_size(&vhd);
    assert_eq!(c.virtual_size(), size);
    let mut want = raw.clone();
    want.resize(size as usize, 0);
    assert_reads_as(&c, &want);
}

/// Where qemu writes the sector bitmap of block `block` of `vhd` (bytes): from its BAT.
fn bitmap_offset(file: &[u8], block: usize) -> usize {
    let table = u64::from_be_bytes(file[512 + 16..512 + 24].try_into().unwrap()) as usize;
    let entry = u32::from_be_bytes(
        file[table + 4 * block..table + 4 * block + 4]
            .try_into()
            .unwrap(),
    );
    assert_ne!(entry, u32::MAX);
    entry as usize * 512
}

#[test]
fn plan_writes_on_qemu_dynamic_vhd() {
    let dir = TempDir::new("patch");
    let raw = raw_image();
    let vhd = make_vhd(&dir, &raw, "subformat=dynamic,force_size=on");
    let mut file = fs::read(&vhd).unwrap();

    // qemu marks every sector of an allocated block in use. Hyper-V does not: mark the all-zero
    // sectors at 256..512 KiB of block 0 unused, as Hyper-V would have left them, so that patches
    // there take the "set the bitmap bit" path. (qemu ignores the bitmap; the file holds zeros
    // there, so qemu and the specification read the same disk.)
    let bitmap0 = bitmap_offset(&file, 0);
    let first_sector = (256 << 10) / 512;
    file[bitmap0 + first_sector / 8..bitmap0 + (512 << 10) / 512 / 8].fill(0);
    let prepared = dir.path("prepared.vhd");
    fs::write(&prepared, &file).unwrap();
    let c = open(FileReader::open(&prepared)).unwrap();
    assert_eq!(c.map(300 << 10).unwrap(), Extent::Zero { len: 212 << 10 });
    assert_reads_as(&c, &raw);

    let p1: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let p2: Vec<u8> = (0..5000u32).map(|i| (i * 13 + 1) as u8).collect();
    let p3: Vec<u8> = (0..700u32).map(|i| (i * 3 + 2) as u8).collect();
    let p4 = [0xeeu8; 16];
    let patches: Vec<(u64, &[u8])> = vec![
        (1000, &p1),                   // in-use sectors of block 0
        (4 * MIB as u64 + 12345, &p2), // block 2, near the end of the disk
        ((300 << 10) + 100, &p3),      // unused sectors of block 0: bitmap + whole sectors
        ((300 << 10) + 1000, &p4),     // overlaps p3's sectors
        ((512 << 10) - 8, &p4),        // straddles the unused/in-use boundary
    ];
    let writes = c.plan_writes(&patches).unwrap();
    let bitmap_writes: Vec<_> = writes
        .iter()
        .filter(|w| {
            matches!(
                w.label,
                kaifuku_container::FileWriteLabel::VhdSectorBitmap { .. }
            )
        })
        .collect();
    assert_eq!(bitmap_writes.len(), 1, "{writes:#?}");
    assert!(bitmap_writes[0].file_offset >= bitmap0 as u64);
    assert!(bitmap_writes[0].end() <= (bitmap0 + 512) as u64);
    // Never the footers, the header or the table.
    let table_end = bitmap_offset(&file, 0).min(bitmap_offset(&file, 2)) as u64;
    for w in &writes {
        assert!(w.file_offset >= table_end, "{w:?}");
        assert!(w.end() <= file.len() as u64 - 512, "{w:?}");
    }

    let mut want = raw.clone();
    for (at, bytes) in &patches {
        want[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
    }
    apply(&mut file, &writes);
    let patched = dir.path("patched.vhd");
    fs::write(&patched, &file).unwrap();

    // kaifuku reads the patched file as intended...
    let c2 = open(FileReader::open(&patched)).unwrap();
    assert_reads_as(&c2, &want);
    // ...and so does qemu.
    let expected = dir.path("expected.raw");
    fs::write(&expected, &want).unwrap();
    let converted = dir.path("converted.raw");
    qemu_img(&[
        "convert",
        "-f",
        "vpc",
        "-O",
        "raw",
        s(&patched),
        s(&converted),
    ]);
    assert!(
        fs::read(&converted).unwrap() == want,
        "qemu reads different bytes"
    );
    qemu_img(&[
        "compare",
        "-f",
        "vpc",
        "-F",
        "raw",
        s(&patched),
        s(&expected),
    ]);
    assert_eq!(qemu_virtual_size(&patched), RAW_SIZE as u64);
    // qemu-img has no consistency check for vpc; if a version gains one, it must pass.
    let check = run("qemu-img", &["check", "-f", "vpc", s(&patched)]);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        check.status.success() || stderr.contains("does not support checks"),
        "qemu-img check failed: {stderr}"
    );
}

#[test]
fn plan_writes_on_qemu_fixed_vhd() {
    let dir = TempDir::new("patch-fixed");
    let raw = raw_image();
    let vhd = make_vhd(&dir, &raw, "subformat=fixed,force_size=on");
    let c = open(FileReader::open(&vhd)).unwrap();
    let p = [0x42u8; 4096];
    let at = RAW_SIZE as u64 - 4096;
    let writes = c.plan_writes(&[(at, &p), (3 * MIB as u64, &p)]).unwrap();
    let mut file = fs::read(&vhd).unwrap();
    apply(&mut file, &writes);
    let patched = dir.path("patched.vhd");
    fs::write(&patched, &file).unwrap();
    let mut want = raw.clone();
    want[at as usize..].fill(0x42);
    want[3 * MIB..3 * MIB + 4096].fill(0x42);
    let converted = dir.path("converted.raw");
    qemu_img(&[
        "convert",
        "-f",
        "vpc",
        "-O",
        "raw",
        s(&patched),
        s(&converted),
    ]);
    assert!(
        fs::read(&converted).unwrap() == want,
        "qemu reads different bytes"
    );
    assert_reads_as(&open(FileReader::open(&patched)).unwrap(), &want);
}

#[test]
fn plan_output_fills_on_qemu_dynamic_vhd() {
    let dir = TempDir::new("fill");
    let raw = raw_image();
    let vhd = make_vhd(&dir, &raw, "subformat=dynamic,force_size=on");
    let mut file = fs::read(&vhd).unwrap();
    // Mark sectors 256..512 KiB of block 0 unused (Hyper-V style), so a fill there must set bits.
    let bitmap0 = bitmap_offset(&file, 0);
    file[bitmap0 + (256 << 10) / 512 / 8..bitmap0 + (512 << 10) / 512 / 8].fill(0);
    let prepared = dir.path("prepared.vhd");
    fs::write(&prepared, &file).unwrap();
    let c = open(FileReader::open(&prepared)).unwrap();

    // A fill across the unused sectors and on into block 2 is not allowed (block 1 is
    // unallocated), so fill inside block 0 across the boundary, plus bytes elsewhere in the
    // same bitmap sector, plus a fill in block 2.
    let bytes = vec![0x5au8; 40];
    let patches = vec![
        Patch {
            offset: 200 << 10,
            data: PatchData::Fill {
                byte: 0xFF,
                len: 128 << 10,
            },
            label: String::from("fill a"),
        },
        Patch {
            offset: (600 << 10) + 3,
            data: PatchData::Bytes(bytes.clone()),
            label: String::from("bytes"),
        },
        Patch {
            offset: 4 * MIB as u64,
            data: PatchData::Fill {
                byte: 0x11,
                len: 8192,
            },
            label: String::from("fill b"),
        },
    ];
    let out = c.plan_output(&patches).unwrap();
    assert!(
        out.writes
            .iter()
            .filter(|w| matches!(
                w.label,
                kaifuku_container::FileWriteLabel::VhdSectorBitmap { .. }
            ))
            .count()
            == 1,
        "{out:#?}"
    );
    for f in &out.fills {
        let end = f.file_offset + f.len;
        file[f.file_offset as usize..end as usize].fill(f.byte);
    }
    apply(&mut file, &out.writes);
    let patched = dir.path("patched.vhd");
    fs::write(&patched, &file).unwrap();

    let mut want = raw.clone();
    want[200 << 10..(200 << 10) + (128 << 10)].fill(0xFF);
    want[(600 << 10) + 3..(600 << 10) + 43].copy_from_slice(&bytes);
    want[4 * MIB..4 * MIB + 8192].fill(0x11);
    assert_reads_as(&open(FileReader::open(&patched)).unwrap(), &want);
    let converted = dir.path("converted.raw");
    qemu_img(&[
        "convert",
        "-f",
        "vpc",
        "-O",
        "raw",
        s(&patched),
        s(&converted),
    ]);
    assert!(
        fs::read(&converted).unwrap() == want,
        "qemu reads different bytes"
    );

    // Fills that overlap byte patches, or that reach an unallocated block, are refused.
    let overlap = vec![
        Patch {
            offset: 1000,
            data: PatchData::Fill { byte: 0, len: 512 },
            label: String::from("f"),
        },
        Patch {
            offset: 1200,
            data: PatchData::Bytes(vec![1]),
            label: String::from("b"),
        },
    ];
    assert!(c.plan_output(&overlap).is_err());
}

/// Patches and a fill in the block qemu-img left unallocated (block 1, 2..4 MiB): the block is
/// added where the footer was, its bitmap marking every sector, zeros around the changes, its
/// table entry pointing there, and the footer written again at the new end. qemu reads the
/// patched disk, libvhdi opens it, kaifuku reads it, and the same patches again add nothing.
#[test]
fn patch_in_an_unallocated_block_adds_the_block() {
    let dir = TempDir::new("grow");
    let raw = raw_image();
    let vhd = make_vhd(&dir, &raw, "subformat=dynamic,force_size=on");
    let original = fs::read(&vhd).unwrap();
    let c = open(FileReader::open(&vhd)).unwrap();
    assert_eq!(
        c.map(3 * MIB as u64).unwrap(),
        Extent::Zero { len: MIB as u64 }
    );
    let patches = vec![
        Patch {
            offset: 3 * MIB as u64 + 5,
            data: PatchData::Bytes(vec![1, 2, 3]),
            label: String::new(),
        },
        // Across allocated block 0 and unallocated block 1.
        Patch {
            offset: 2 * MIB as u64 - 2,
            data: PatchData::Bytes(vec![4, 5, 6, 7]),
            label: String::new(),
        },
        Patch {
            offset: 3 * MIB as u64 + 4096,
            data: PatchData::Fill {
                byte: 0xff,
                len: 8192,
            },
            label: String::new(),
        },
    ];
    let plan = c.plan_output(&patches).unwrap();
    let footer_at = original.len() as u64 - 512;
    let block_bytes = 512 + 2 * MIB as u64; // one bitmap sector, then the block
    assert_eq!(plan.file_size, Some(footer_at + block_bytes + 512));
    let mut file = original.clone();
    file.resize(plan.file_size.unwrap() as usize, 0);
    for f in &plan.fills {
        file[f.file_offset as usize..(f.file_offset + f.len) as usize].fill(f.byte);
    }
    apply(&mut file, &plan.writes);
    // The footer at the new end is the old one; the copy at the start is unchanged.
    assert_eq!(file[file.len() - 512..], original[original.len() - 512..]);
    assert_eq!(file[..512], original[..512]);
    let patched = dir.path("grown.vhd");
    fs::write(&patched, &file).unwrap();

    let mut want = raw.clone();
    want[3 * MIB + 5..3 * MIB + 8].copy_from_slice(&[1, 2, 3]);
    want[2 * MIB - 2..2 * MIB + 2].copy_from_slice(&[4, 5, 6, 7]);
    want[3 * MIB + 4096..3 * MIB + 4096 + 8192].fill(0xff);
    let converted = dir.path("converted.raw");
    qemu_img(&[
        "convert",
        "-f",
        "vpc",
        "-O",
        "raw",
        s(&patched),
        s(&converted),
    ]);
    assert!(
        fs::read(&converted).unwrap() == want,
        "qemu reads different bytes"
    );
    assert_eq!(qemu_virtual_size(&patched), RAW_SIZE as u64);
    let out = run("vhdiinfo", &[s(&patched)]);
    assert!(
        out.status.success(),
        "vhdiinfo refuses the output: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let c2 = open(FileReader::open(&patched)).unwrap();
    assert_reads_as(&c2, &want);
    assert!(matches!(
        c2.map(3 * MIB as u64).unwrap(),
        Extent::InFile { file_offset, .. } if file_offset == footer_at + 512 + MIB as u64
    ));
    assert_eq!(c2.plan_output(&patches).unwrap().file_size, None);
}
