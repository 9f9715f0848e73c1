//! Unit tests on images built by hand, so every field (and every kind of damage) is controlled.
//! Real images written by qemu-img are tested in `tests/qemu.rs`.

use super::*;
use crate::vhd::build::{self, put_u32, put_u64, seal, Dyn, BAT_OFFSET};
use kaifuku_io::Counted;

/// Deterministic bytes (xorshift), never all zero.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn read_all<R: ReadAt>(c: &Container<R>) -> Vec<u8> {
    let mut v = vec![0u8; c.virtual_size() as usize];
    c.read_at(0, &mut v).unwrap();
    v
}

fn apply(file: &[u8], writes: &[FileWrite]) -> Vec<u8> {
    let mut out = file.to_vec();
    for w in writes {
        out[w.file_offset as usize..w.end() as usize].copy_from_slice(&w.bytes);
    }
    out
}

fn err<R: ReadAt>(r: Result<Container<R>, ContainerError>) -> ContainerError {
    r.expect_err("open should fail")
}

const BS: u32 = 4096;

/// Four 4 KiB blocks, the last one half inside the disk:
/// 0 = allocated, all sectors in use; 1 = unallocated; 2 = allocated, only sectors 0 and 2 in use,
/// the file holding 0xEE everywhere (so a clear bit reading anything but zeros shows); 3 = partial.
fn sample() -> Dyn {
    Dyn {
        size: 3 * 4096 + 2048,
        block_size: BS,
        blocks: vec![
            Some((vec![0xff], pattern(4096, 1))),
            None,
            Some((vec![0b1010_0000], vec![0xee; 4096])),
            Some((vec![0xf0], pattern(4096, 3))),
        ],
    }
}

/// What the guest sees on a [`Dyn`] image, computed from the spec rather than the code under test.
fn expected(d: &Dyn) -> Vec<u8> {
    let bs = d.block_size as usize;
    let mut v = vec![0u8; d.blocks.len() * bs];
    for (i, b) in d.blocks.iter().enumerate() {
        if let Some((bitmap, data)) = b {
            for s in 0..bs / 512 {
                if bitmap
                    .get(s / 8)
                    .is_some_and(|byte| byte & (0x80 >> (s % 8)) != 0)
                {
                    let at = i * bs + s * 512;
                    v[at..at + 512].copy_from_slice(&data[s * 512..s * 512 + 512]);
                }
            }
        }
    }
    v.truncate(d.size as usize);
    v
}

#[test]
fn format_names() {
    assert_eq!(Format::Raw.to_string(), "raw");
    assert_eq!(Format::VhdFixed.to_string(), "VHD fixed");
    assert_eq!(Format::VhdDynamic.to_string(), "VHD dynamic");
    assert_eq!(
        serde_json::to_value(Format::VhdDynamic).unwrap(),
        "vhd_dynamic"
    );
}

#[test]
fn raw_is_anything_without_a_signature() {
    let data = pattern(10_000, 7);
    let c = open(&data).unwrap();
    assert_eq!(c.format(), Format::Raw);
    assert_eq!(c.virtual_size(), 10_000);
    assert_eq!(
        c.map(100).unwrap(),
        Extent::InFile {
            file_offset: 100,
            len: 9_900
        }
    );
    assert_eq!(read_all(&c), data);
    assert!(c.map(10_000).is_err());
    assert!(c.info().vhd.is_none());

    let empty: Vec<u8> = Vec::new();
    let c = open(&empty).unwrap();
    assert_eq!((c.format(), c.virtual_size()), (Format::Raw, 0));
    let tiny = b"hello".to_vec();
    assert_eq!(open(&tiny).unwrap().format(), Format::Raw);
}

#[test]
fn fixed_vhd() {
    let data = pattern(8192 + 512, 2);
    let file = build::fixed(&data);
    let c = open(&file).unwrap();
    assert_eq!(c.format(), Format::VhdFixed);
    assert_eq!(c.virtual_size(), data.len() as u64);
    assert_eq!(read_all(&c), data);
    assert_eq!(
        c.map(8000).unwrap(),
        Extent::InFile {
            file_offset: 8000,
            len: 704
        }
    );
    // Reading into the footer through the virtual disk is impossible.
    let mut b = [0u8; 2];
    let e = c.read_at(data.len() as u64 - 1, &mut b).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);

    let info = c.info();
    let vhd = info.vhd.as_ref().unwrap();
    assert_eq!(info.file_size, file.len() as u64);
    assert_eq!(vhd.creator_app, "test");
    assert_eq!(vhd.creator_os, "Wi2k");
    assert_eq!(vhd.creator_version, "1.2");
    assert_eq!(vhd.uuid, "00112233445566778899aabbccddeeff");
    assert_eq!(
        vhd.disk_geometry,
        DiskGeometry {
            cylinders: 0x0102,
            heads: 0x10,
            sectors_per_track: 0x3f
        }
    );
    assert_eq!(vhd.block_size, None);
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["format"], "vhd_fixed");
    assert_eq!(json["vhd"]["uuid"], "00112233445566778899aabbccddeeff");
    assert!(json["vhd"].get("block_size").is_none());
}

#[test]
fn fixed_vhd_with_old_511_byte_footer() {
    let data = pattern(4096, 4);
    let mut file = build::fixed(&data);
    file.pop(); // the reserved last byte is zero, so the checksum does not change
    let c = open(&file).unwrap();
    assert_eq!(c.format(), Format::VhdFixed);
    assert_eq!(c.info().vhd.unwrap().footer_len, 511);
    assert_eq!(read_all(&c), data);
}

#[test]
fn footer_checksum_is_checked() {
    let mut file = build::fixed(&pattern(4096, 5));
    let footer_at = file.len() - 512;
    file[footer_at + 48 + 7] ^= 1; // current_size, checksum left stale
    let e = err(open(&file));
    assert!(matches!(e, ContainerError::FooterChecksum { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("VHD footer checksum mismatch: stored 0x"),
        "{msg}"
    );
    assert!(msg.ends_with("— the file is damaged or truncated"), "{msg}");
}

#[test]
fn fixed_vhd_shorter_than_its_size() {
    let mut file = pattern(4096, 6);
    file.extend(build::footer(2, 8192, u64::MAX));
    let e = err(open(&file));
    assert!(
        matches!(e, ContainerError::Truncated { end: 8192, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("truncated"));

    let mut file = pattern(4096, 6);
    file.extend(build::footer(2, u64::MAX - 100, u64::MAX));
    let e = err(open(&file));
    assert!(matches!(e, ContainerError::Overflow(_)), "{e}");
}

#[test]
fn unsupported_vhd_kinds() {
    let mut file = vec![0u8; 4096];
    file.extend(build::footer(4, 4096, 512));
    assert!(matches!(err(open(&file)), ContainerError::DifferencingVhd));

    let mut file = vec![0u8; 4096];
    file.extend(build::footer(9, 4096, 512));
    assert!(matches!(
        err(open(&file)),
        ContainerError::UnknownVhdDiskType(9)
    ));

    let mut file = vec![0u8; 4096];
    let mut footer = build::footer(2, 4096, 512);
    put_u32(&mut footer, 12, 0x0002_0000);
    seal(&mut footer, 64);
    file.extend(footer);
    let e = err(open(&file));
    assert!(matches!(e, ContainerError::UnsupportedVhdVersion { .. }));
    assert!(e.to_string().contains("version 2.0"), "{e}");
}

#[test]
fn other_formats_are_recognised_and_refused() {
    let cases: [(&[u8], OtherFormat, &str); 1] = [(
        b"# Disk DescriptorFile\nversion=1\n",
        OtherFormat::VmdkDescriptor,
        "-flat.vmdk",
    )];
    for (magic, format, hint) in cases {
        let mut file = magic.to_vec();
        file.resize(65536, 0);
        let e = err(open(&file));
        assert!(
            matches!(e, ContainerError::UnsupportedFormat(f) if f == format),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains("qemu-img convert"), "{msg}");
        assert!(msg.contains("-O raw") && msg.contains("-O vpc"), "{msg}");
        assert!(msg.contains(hint), "{msg}");
    }
    // Sparse VMDK is read now: its magic with a header of zeros is a damaged VMDK, never a raw
    // disk.
    let mut file = b"KDMV\x01\0\0\0".to_vec();
    file.resize(65536, 0);
    let e = err(open(&file));
    assert!(matches!(e, ContainerError::VmdkHeader { .. }), "{e}");
    assert!(!e.is_unsupported());
    // A grain of 2^62 sectors, whose size in bytes overflows (found by the `container` fuzzer):
    // refused by name, never a wrapped size.
    let mut file = b"KDMV\x01\0\0\0\0\0\0\0".to_vec();
    file.resize(65536, 0);
    file[12..20].copy_from_slice(&2048u64.to_le_bytes());
    file[20..28].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let e = err(open(&file));
    assert!(
        matches!(
            e,
            ContainerError::VmdkHeader {
                field: "grainSize",
                ..
            }
        ),
        "{e}"
    );
    // qcow2 is read now: its magic with a header of zeros is a damaged qcow2, never a raw disk.
    let mut file = b"QFI\xfb\0\0\0\x03".to_vec();
    file.resize(65536, 0);
    let e = err(open(&file));
    assert!(
        matches!(
            e,
            ContainerError::Qcow2Header {
                field: "header_length",
                ..
            }
        ),
        "{e}"
    );
    // VHDX is read now: a file with only its signature is a truncated VHDX, never raw.
    let mut file = b"vhdxfile".to_vec();
    file.resize(65536, 0);
    let e = err(open(&file));
    assert!(matches!(e, ContainerError::FileTooSmall { .. }), "{e}");
}

#[test]
fn vhd_that_lost_its_end() {
    let file = sample().build();
    let cut = file[..file.len() - 700].to_vec();
    assert!(matches!(err(open(&cut)), ContainerError::MissingFooter));
    let tiny = file[..300].to_vec();
    let e = err(open(&tiny));
    assert!(matches!(e, ContainerError::FileTooSmall { .. }), "{e}");
    assert!(e.to_string().contains("300 bytes"), "{e}");
}

#[test]
fn dynamic_vhd_reads_and_maps() {
    let d = sample();
    let file = d.build();
    let c = open(&file).unwrap();
    assert_eq!(c.format(), Format::VhdDynamic);
    assert_eq!(c.virtual_size(), d.size);
    let want = expected(&d);
    assert_eq!(read_all(&c), want);
    // Every start offset and a few lengths, crossing blocks and bitmap runs.
    for off in (0..d.size).step_by(97) {
        for len in [1usize, 511, 4097] {
            let len = len.min((d.size - off) as usize);
            let mut b = vec![0x55u8; len];
            c.read_at(off, &mut b).unwrap();
            assert_eq!(b, want[off as usize..off as usize + len], "at {off}+{len}");
        }
    }

    let data0 = d.block_offset(0) + 512;
    let data2 = d.block_offset(2) + 512;
    let data3 = d.block_offset(3) + 512;
    assert_eq!(
        c.map(0).unwrap(),
        Extent::InFile {
            file_offset: data0,
            len: 4096
        }
    );
    assert_eq!(
        c.map(1000).unwrap(),
        Extent::InFile {
            file_offset: data0 + 1000,
            len: 3096
        }
    );
    assert_eq!(c.map(4096 + 10).unwrap(), Extent::Zero { len: 4086 });
    assert_eq!(
        c.map(8192 + 100).unwrap(),
        Extent::InFile {
            file_offset: data2 + 100,
            len: 412
        }
    );
    assert_eq!(c.map(8192 + 512).unwrap(), Extent::Zero { len: 512 });
    assert_eq!(c.map(8192 + 1536).unwrap(), Extent::Zero { len: 2560 });
    assert_eq!(
        c.map(12288).unwrap(),
        Extent::InFile {
            file_offset: data3,
            len: 2048
        }
    );
    assert!(matches!(
        c.map(d.size),
        Err(ContainerError::OutOfRange { .. })
    ));

    let info = c.info();
    let vhd = info.vhd.as_ref().unwrap();
    assert_eq!(vhd.block_size, Some(BS));
    assert_eq!(vhd.allocated_blocks, Some(3));
    assert_eq!(vhd.total_blocks, Some(4));
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["format"], "vhd_dynamic");
    assert_eq!(json["virtual_size"], d.size);
    assert_eq!(json["vhd"]["allocated_blocks"], 3);
}

#[test]
fn contiguous_reads_are_one_call() {
    let d = Dyn {
        size: 3 * 4096,
        block_size: BS,
        blocks: vec![
            Some((vec![0xff], pattern(4096, 8))),
            None,
            Some((vec![0xff], pattern(4096, 9))),
        ],
    };
    let file = d.build();
    let counted = Counted::new(&file);
    let c = open(&counted).unwrap();
    let opened = counted.stats().calls;
    assert_eq!(opened, 4, "head, tail, header, BAT");
    let mut b = vec![0u8; 3 * 4096];
    c.read_at(0, &mut b).unwrap();
    // Two bitmaps and two data runs; the unallocated block costs nothing.
    assert_eq!(counted.stats().calls - opened, 4);
    c.read_at(0, &mut b).unwrap();
    // Bitmaps are cached now.
    assert_eq!(counted.stats().calls - opened, 6);
    assert_eq!(b, expected(&d));

    let raw = pattern(100_000, 10);
    let counted = Counted::new(&raw);
    let c = open(&counted).unwrap();
    let before = counted.stats().calls;
    let mut b = vec![0u8; 99_000];
    c.read_at(500, &mut b).unwrap();
    assert_eq!(counted.stats().calls - before, 1);
}

#[test]
fn dynamic_header_checks() {
    let d = sample();
    let good = d.build();
    let header = |f: &mut Vec<u8>, edit: &dyn Fn(&mut [u8]), reseal: bool| {
        edit(&mut f[512..1536]);
        if reseal {
            seal(&mut f[512..1536], 36);
        }
    };

    let mut f = good.clone();
    header(&mut f, &|h| h[40] ^= 0xff, false);
    let e = err(open(&f));
    assert!(matches!(e, ContainerError::HeaderChecksum { .. }), "{e}");
    assert!(e.to_string().contains("header checksum mismatch"), "{e}");

    let mut f = good.clone();
    header(&mut f, &|h| h[0] = b'X', true);
    assert!(matches!(
        err(open(&f)),
        ContainerError::MissingDynamicHeader { offset: 512 }
    ));

    for bad in [0u32, 3000, 256, 1 << 30] {
        let mut f = good.clone();
        header(&mut f, &|h| put_u32(h, 32, bad), true);
        assert!(
            matches!(err(open(&f)), ContainerError::BadBlockSize(b) if b == bad),
            "{bad}"
        );
    }

    let mut f = good.clone();
    header(&mut f, &|h| put_u32(h, 28, 3), true);
    let e = err(open(&f));
    assert!(
        matches!(e, ContainerError::TableTooSmall { needed: 4, .. }),
        "{e}"
    );

    let mut f = good.clone();
    header(&mut f, &|h| put_u64(h, 16, good.len() as u64 - 520), true);
    assert!(matches!(err(open(&f)), ContainerError::Truncated { .. }));

    let mut f = good.clone();
    header(&mut f, &|h| put_u64(h, 16, u64::MAX - 3), true);
    assert!(matches!(err(open(&f)), ContainerError::Overflow(_)));
}

/// Rewrites the footer at both ends of a dynamic image.
fn edit_footers(f: &mut [u8], edit: &dyn Fn(&mut [u8])) {
    let n = f.len();
    for at in [0, n - 512] {
        edit(&mut f[at..at + 512]);
        seal(&mut f[at..at + 512], 64);
    }
}

#[test]
fn dynamic_footer_fields_are_bounded() {
    let good = sample().build();

    let mut f = good.clone();
    edit_footers(&mut f, &|h| put_u64(h, 16, good.len() as u64));
    let e = err(open(&f));
    assert!(matches!(e, ContainerError::Truncated { .. }), "{e}");

    let mut f = good.clone();
    edit_footers(&mut f, &|h| put_u64(h, 16, u64::MAX));
    assert!(matches!(err(open(&f)), ContainerError::Overflow(_)));

    // A disk too large for its table, then a table too large to load: no huge allocation.
    let mut f = good.clone();
    edit_footers(&mut f, &|h| put_u64(h, 48, 1 << 40));
    assert!(matches!(
        err(open(&f)),
        ContainerError::TableTooSmall { .. }
    ));
    header_entries(&mut f, u32::MAX);
    let e = err(open(&f));
    assert!(matches!(e, ContainerError::TableTooLarge { .. }), "{e}");

    // A large but loadable table that does not fit the file.
    let mut f = good.clone();
    edit_footers(&mut f, &|h| put_u64(h, 48, 1 << 30));
    header_entries(&mut f, u32::MAX);
    assert!(matches!(err(open(&f)), ContainerError::Truncated { .. }));
}

fn header_entries(f: &mut [u8], n: u32) {
    put_u32(&mut f[512..1536], 28, n);
    seal(&mut f[512..1536], 36);
}

fn set_bat(f: &mut [u8], block: usize, entry: u32) {
    put_u32(f, BAT_OFFSET as usize + block * 4, entry);
}

#[test]
fn bat_entries_are_checked() {
    let d = sample();
    let good = d.build();
    let data_end = good.len() as u64 - 512;

    let mut f = good.clone();
    set_bat(&mut f, 1, (data_end / 512) as u32);
    let e = err(open(&f));
    assert!(
        matches!(e, ContainerError::BlockOutsideFile { block: 1, .. }),
        "{e}"
    );

    let mut f = good.clone();
    set_bat(&mut f, 1, 0xFFFF_FFF0);
    assert!(matches!(
        err(open(&f)),
        ContainerError::BlockOutsideFile { .. }
    ));

    // A file cut inside the blocks, with a footer still at its end (block 3 needs 2048 bytes of
    // data: the part of it inside the virtual disk).
    let mut f = good[..good.len() - 512 - 2049].to_vec();
    f.extend_from_slice(&good[good.len() - 512..]);
    assert!(matches!(
        err(open(&f)),
        ContainerError::BlockOutsideFile { block: 3, .. }
    ));

    for (entry, what) in [
        (0u32, "footer copy"),
        (2, "dynamic disk header"),
        (3, "block allocation table"),
    ] {
        let mut f = good.clone();
        set_bat(&mut f, 1, entry);
        let e = err(open(&f));
        assert!(matches!(e, ContainerError::BlockOverlap { .. }), "{e}");
        assert!(e.to_string().contains(what), "{e}");
    }

    let mut f = good.clone();
    set_bat(&mut f, 1, (d.block_offset(2) / 512) as u32);
    let e = err(open(&f));
    assert!(matches!(e, ContainerError::BlockOverlap { .. }), "{e}");
    assert!(e.to_string().contains("VHD block"), "{e}");

    let mut f = good.clone();
    set_bat(&mut f, 1, (d.block_offset(2) / 512) as u32 + 1);
    assert!(matches!(err(open(&f)), ContainerError::BlockOverlap { .. }));
}

#[test]
fn plan_writes_raw_and_fixed() {
    let data = pattern(8192, 11);
    let fixed = build::fixed(&data);
    for file in [&data, &fixed] {
        let c = open(file).unwrap();
        let a = [1u8; 10];
        let b = [2u8; 4];
        let writes = c
            .plan_writes(&[(100, &a), (105, &b), (8190, &[9, 9]), (50, &[])])
            .unwrap();
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0].file_offset, 100);
        assert_eq!(writes[0].bytes, [1, 1, 1, 1, 1, 2, 2, 2, 2, 1]);
        assert_eq!(writes[1].file_offset, 8190);
        let out = apply(file, &writes);
        if file.len() > data.len() {
            assert_eq!(out[data.len()..], file[data.len()..], "footer untouched");
        }
        let mut want = data.clone();
        want[100..110].copy_from_slice(&writes[0].bytes);
        want[8190..].fill(9);
        assert_eq!(read_all(&open(&out).unwrap()), want);

        let e = c.plan_writes(&[(8190, &[1, 2, 3])]).unwrap_err();
        assert!(matches!(e, ContainerError::PatchOutOfRange { .. }), "{e}");
        assert!(c.plan_writes(&[(u64::MAX, &[1])]).is_err());
    }
    let json = serde_json::to_value(
        open(&data)
            .unwrap()
            .plan_writes(&[(0, &[1, 2, 3])])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json[0]["len"], 3);
    assert_eq!(json[0]["file_offset"], 0);
}

#[test]
fn plan_writes_dynamic() {
    let d = sample();
    let file = d.build();
    let c = open(&file).unwrap();
    let bitmap2 = d.block_offset(2);
    let data0 = d.block_offset(0) + 512;
    let data2 = bitmap2 + 512;

    // In-use sectors: the patch bytes as they are.
    let writes = c.plan_writes(&[(700, &[7; 100])]).unwrap();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].file_offset, data0 + 700);
    assert_eq!(writes[0].bytes, vec![7; 100]);

    // Block 2: sector 0 in use, 1 not, 2 in use, 3 not. A patch over sectors 0..3 and a second,
    // separate patch inside sector 3.
    let p1 = pattern(1236, 12); // ends where sector 3 begins
    let p2 = [0xabu8; 8];
    let (at1, at2) = (8192 + 300, 8192 + 3 * 512 + 100);
    let writes = c.plan_writes(&[(at1, &p1), (at2, &p2)]).unwrap();
    // Bitmap: one byte changes (sectors 1 and 3 join 0 and 2).
    assert_eq!(writes[0].file_offset, bitmap2);
    assert_eq!(writes[0].bytes, vec![0b1111_0000]);
    assert!(
        matches!(writes[0].label, FileWriteLabel::VhdSectorBitmap { .. }),
        "{}",
        writes[0].label
    );
    // Data: one contiguous write from the patch start to the end of sector 3 (sectors 1 and 3
    // written whole).
    assert_eq!(writes.len(), 2, "{writes:#?}");
    assert_eq!(writes[1].file_offset, data2 + 300);
    assert_eq!(writes[1].end(), data2 + 4 * 512);

    let out = apply(&file, &writes);
    let mut want = expected(&d);
    want[at1 as usize..at1 as usize + p1.len()].copy_from_slice(&p1);
    want[at2 as usize..at2 as usize + p2.len()].copy_from_slice(&p2);
    assert_eq!(read_all(&open(&out).unwrap()), want);
    // Only the block's bitmap and data changed: footers, header and table are untouched.
    let first_change = file.iter().zip(&out).position(|(a, b)| a != b).unwrap();
    let last_change = file.iter().zip(&out).rposition(|(a, b)| a != b).unwrap();
    assert!(first_change as u64 >= bitmap2);
    assert!((last_change as u64) < data2 + 4096);

    // Two patches in one unused sector become one whole-sector write, the later patch winning.
    let writes = c
        .plan_writes(&[
            (8192 + 512 + 10, &[1; 4]),
            (8192 + 512 + 400, &[2; 4]),
            (8192 + 512 + 12, &[3]),
        ])
        .unwrap();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[1].file_offset, data2 + 512);
    assert_eq!(writes[1].bytes.len(), 512);
    let mut sector = vec![0u8; 512];
    sector[10..14].copy_from_slice(&[1, 1, 3, 1]);
    sector[400..404].fill(2);
    assert_eq!(writes[1].bytes, sector);

    // Unallocated block 1, reached from block 0: it is added where the footer was (bitmap, data
    // of zeros around the patch, table entry), and the footer follows it.
    let out = c
        .plan_output(&[Patch {
            offset: 4090,
            data: PatchData::Bytes(vec![5; 8]),
            label: String::new(),
        }])
        .unwrap();
    let footer_at = file.len() as u64 - 512;
    assert_eq!(out.file_size, Some(footer_at + 512 + u64::from(BS) + 512));
    let mut grown = file.clone();
    grown.resize(out.file_size.unwrap() as usize, 0);
    for f in &out.fills {
        grown[f.file_offset as usize..(f.file_offset + f.len) as usize].fill(f.byte);
    }
    let grown = apply(&grown, &out.writes);
    let mut want = expected(&d);
    want[4090..4098].fill(5);
    let c2 = open(&grown).unwrap();
    assert_eq!(read_all(&c2), want);
    assert_eq!(grown[grown.len() - 512..], file[file.len() - 512..]);
    assert!(matches!(
        c2.map(4096).unwrap(),
        Extent::InFile { file_offset, .. } if file_offset == footer_at + 512
    ));
}

#[test]
fn plan_writes_dynamic_across_blocks() {
    let d = Dyn {
        size: 2 * 4096,
        block_size: BS,
        blocks: vec![
            Some((vec![0xff], pattern(4096, 13))),
            Some((vec![0x7f], pattern(4096, 14))),
        ],
    };
    let file = d.build();
    let c = open(&file).unwrap();
    let patch = pattern(1000, 15);
    let writes = c.plan_writes(&[(4096 - 500, &patch)]).unwrap();
    // Block 0 data, block 1 bitmap, block 1 data (sector 0 zero-filled, its bit set).
    assert_eq!(writes.len(), 3, "{writes:#?}");
    assert_eq!(writes[0].file_offset, d.block_offset(0) + 512 + 4096 - 500);
    assert_eq!(writes[1].file_offset, d.block_offset(1));
    assert_eq!(writes[1].bytes, vec![0xff]);
    assert_eq!(writes[2].file_offset, d.block_offset(1) + 512);
    assert_eq!(writes[2].bytes.len(), 512);
    let out = apply(&file, &writes);
    let mut want = expected(&d);
    want[4096 - 500..4096 + 500].copy_from_slice(&patch);
    assert_eq!(read_all(&open(&out).unwrap()), want);
}

#[test]
fn read_errors_are_io_errors() {
    let file = sample().build();
    let c = open(&file).unwrap();
    let mut b = [0u8; 16];
    let e = c.read_at(c.virtual_size() - 8, &mut b).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    let io: io::Error = ContainerError::BadBlockSize(3).into();
    assert_eq!(io.kind(), io::ErrorKind::InvalidData);
}

/// Damaged images of every kind must give an error or a working container, never a panic.
#[test]
fn garbage_never_panics() {
    let d = sample();
    let good = d.build();
    let mut rng = pattern(1 << 16, 99).into_iter().cycle();
    let mut next = move || rng.next().unwrap();
    let mut opened = 0;
    for round in 0..3000 {
        let mut f = good.clone();
        // Damage a few bytes of the footer, header or table, resealing most of the time so the
        // damage gets past the checksums.
        for _ in 0..1 + next() % 4 {
            let region = match next() % 4 {
                0 => f.len() - 512 + 8 + usize::from(next()) % 80,
                1 => 512 + 8 + usize::from(next()) % 32,
                2 => BAT_OFFSET as usize + usize::from(next()) % 16,
                _ => usize::from(next()) * 64 % f.len(),
            };
            f[region] = if next() % 2 == 0 { next() } else { 0xff };
        }
        if round % 5 != 0 {
            let n = f.len();
            seal(&mut f[n - 512..], 64);
            seal(&mut f[512..1536], 36);
        }
        if round % 7 == 0 {
            f.truncate(f.len() - usize::from(next()) * 13);
        }
        if let Ok(c) = open(&f) {
            opened += 1;
            let size = c.virtual_size().min(1 << 20);
            let mut b = vec![0u8; size as usize];
            let _ = c.read_at(0, &mut b);
            let _ = c.map(c.virtual_size().saturating_sub(1));
            let _ = c.plan_writes(&[(0, &[1, 2, 3]), (size.saturating_sub(600), &[4; 600])]);
            let _ = c.info();
        }
    }
    assert!(opened > 0);
}

#[test]
fn refusals_are_told_apart_from_damage() {
    let mut vmdk = b"# Disk DescriptorFile\n".to_vec();
    vmdk.resize(4096, 0);
    assert!(err(open(&vmdk)).is_unsupported());
    let mut sparse = b"KDMV\x01\0\0\0".to_vec();
    sparse.resize(4096, 0);
    assert!(!err(open(&sparse)).is_unsupported());
    let mut vhdx = b"vhdxfile".to_vec();
    vhdx.resize(4096, 0);
    assert!(!err(open(&vhdx)).is_unsupported());
    let mut diff = vec![0u8; 4096];
    diff.extend(build::footer(4, 4096, 512));
    assert!(err(open(&diff)).is_unsupported());
    let mut bad = build::fixed(&[0u8; 4096]);
    bad[4096 + 70] ^= 1;
    assert!(!err(open(&bad)).is_unsupported());
}

#[test]
fn dynamic_footer_copies_must_agree() {
    let good = sample().build();
    let mut f = good.clone();
    // One byte of the copy at the start, resealed so that it is a valid footer on its own.
    f[40] ^= 1;
    seal(&mut f[0..512], 64);
    assert!(matches!(err(open(&f)), ContainerError::FooterCopiesDiffer));
    // The reserved bytes count too: readers checksum the whole copy.
    let mut f = good.clone();
    f[300] ^= 0x80;
    assert!(matches!(err(open(&f)), ContainerError::FooterCopiesDiffer));
}

#[test]
fn declared_table_must_fit_the_file() {
    let good = sample().build();
    let mut f = good.clone();
    // Enough entries for the disk, but far more than the file has room for.
    header_entries(&mut f, u32::MAX);
    let e = err(open(&f));
    assert!(
        matches!(e, ContainerError::DeclaredTableTooLarge { .. }),
        "{e}"
    );
}

#[test]
fn geometry_follows_the_vhd_specification() {
    // 64 MiB: 131072 sectors; 17 sectors per track gives 7710 cylinders x heads, 8 heads.
    let g = DiskGeometry::for_size(64 << 20);
    assert_eq!((g.cylinders, g.heads, g.sectors_per_track), (963, 8, 17));
    // 1 GiB needs 63 sectors per track and 16 heads.
    let g = DiskGeometry::for_size(1 << 30);
    assert_eq!((g.cylinders, g.heads, g.sectors_per_track), (2080, 16, 63));
    // Past 65535 x 16 x 63 sectors the maximum geometry.
    let g = DiskGeometry::for_size(200 << 30);
    assert_eq!(
        (g.cylinders, g.heads, g.sectors_per_track),
        (65535, 16, 255)
    );
}

const MADE: NewFooter = NewFooter {
    timestamp: 0x2E3F_4A5B,
    unique_id: [7; 16],
};

#[test]
fn a_new_fixed_footer_opens_as_the_disk_it_describes() {
    let data = pattern(3 << 20, 9);
    let mut file = data.clone();
    file.extend_from_slice(&fixed_footer(data.len() as u64, MADE));
    let c = open(&file).unwrap();
    assert_eq!(c.format(), Format::VhdFixed);
    assert_eq!(c.virtual_size(), data.len() as u64);
    assert_eq!(read_all(&c), data);
    let vhd = c.info().vhd.unwrap();
    assert_eq!(vhd.creator_app, "kfku");
    assert_eq!(vhd.creator_os, "Wi2k");
    assert_eq!(vhd.timestamp, MADE.timestamp);
    assert_eq!(vhd.uuid, "07".repeat(16));
    assert_eq!(vhd.original_size, data.len() as u64);
    assert_eq!(vhd.disk_geometry, DiskGeometry::for_size(data.len() as u64));
}

#[test]
fn fixed_vhd_output_rounds_to_a_whole_mib_and_keeps_a_vhds_id() {
    // A raw disk of 3 MiB + 512 bytes becomes 4 MiB of disk with the given id.
    let raw = pattern((3 << 20) + 512, 3);
    let c = open(&raw).unwrap();
    let out = c.fixed_vhd_output(MADE).unwrap();
    assert_eq!(out.disk_size, 4 << 20);
    assert_eq!(out.file_size(), (4 << 20) + 512);
    assert_eq!(out.footer, fixed_footer(4 << 20, MADE));
    // A whole-MiB disk keeps its size.
    let raw = pattern(2 << 20, 4);
    let out = open(&raw).unwrap().fixed_vhd_output(MADE).unwrap();
    assert_eq!(out.disk_size, 2 << 20);
    // A VHD keeps its unique id (the disk is the same disk); the time is the new one.
    let file = build::fixed(&pattern(8192 + 512, 2));
    let out = open(&file).unwrap().fixed_vhd_output(MADE).unwrap();
    assert_eq!(out.disk_size, 1 << 20);
    assert_eq!(
        &out.footer[68..84],
        &[
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff
        ]
    );
    assert_eq!(&out.footer[24..28], &MADE.timestamp.to_be_bytes());
}

fn le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn le64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A streamOptimized VMDK header (version 3, no redundant tables) with its embedded descriptor
/// in sector 1 and the grain directory at sector 2, in a file of `sectors` sectors.
fn stream_vmdk(capacity: u64, grain_sectors: u64, overhead: u64, sectors: u64) -> Vec<u8> {
    let mut f = vec![0u8; (sectors * 512) as usize];
    f[..4].copy_from_slice(b"KDMV");
    le32(&mut f, 4, 3);
    le32(&mut f, 8, 1 | (1 << 16) | (1 << 17));
    le64(&mut f, 12, capacity);
    le64(&mut f, 20, grain_sectors);
    le64(&mut f, 28, 1);
    le64(&mut f, 36, 1);
    le32(&mut f, 44, 512);
    le64(&mut f, 56, 2);
    le64(&mut f, 64, overhead);
    f[73..77].copy_from_slice(b"\n \r\n");
    f[77] = 1;
    let text = b"# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\ncreateType=\"streamOptimized\"\n";
    f[512..512 + text.len()].copy_from_slice(text);
    f
}

/// Header fields whose product would make kaifuku hold gigabytes (found by the `container`
/// fuzzer: a 4 PiB and a 55 EiB capacity made it read a directory of 512 MiB and more, 5.8 GB
/// of memory in all) are refused when the header is read, before anything is allocated.
#[test]
fn vmdk_sizes_that_would_cost_gigabytes_are_refused() {
    let capacity_refused = |f: &[u8]| {
        let e = err(open(f));
        assert!(
            matches!(
                e,
                ContainerError::VmdkHeader {
                    field: "capacity",
                    ..
                }
            ),
            "{e}"
        );
    };
    // Over the 64 TiB a VMware disk can be.
    capacity_refused(&stream_vmdk((64 << 40) / 512 + 1, 128, 8, 16));
    // 32 TiB in grains of one sector: a 512 MiB grain directory.
    capacity_refused(&stream_vmdk((32 << 40) / 512, 1, 8, 16));
    // 64 TiB in VMware's 64 KiB grains (an 8 MiB directory) is a disk; this file is too short
    // for that directory, which is said as such.
    let e = err(open(&stream_vmdk((64 << 40) / 512, 128, 8, 16)));
    assert!(
        matches!(
            e,
            ContainerError::VmdkHeader {
                field: "gdOffset",
                ..
            }
        ),
        "{e}"
    );
}

/// A stream that does not end as the format wants is re-streamed whole, every grain table held
/// in memory: with more tables than 256 MiB it is refused by name (here 140 000 directory entries
/// all naming one table, a 4.3 TiB disk in a 560 KiB file), never allocated.
#[test]
fn a_whole_restream_with_too_many_tables_is_refused() {
    let tables = 140_000u64;
    let capacity = tables * 512 * 128;
    let gd_sectors = (tables * 4).div_ceil(512);
    let table_at = 2 + gd_sectors;
    let overhead = table_at + 4;
    let mut f = stream_vmdk(capacity, 128, overhead, overhead + 1);
    for t in 0..tables as usize {
        le32(&mut f, 1024 + 4 * t, table_at as u32);
    }
    // Not an end-of-stream marker: the last sector is not zeros.
    *f.last_mut().unwrap() = 0xAA;
    let c = open(&f).unwrap();
    let e = c
        .plan_output(&[Patch {
            offset: 0,
            data: PatchData::Bytes(vec![1; 512]),
            label: String::new(),
        }])
        .unwrap_err();
    assert!(
        matches!(
            e,
            ContainerError::VmdkRestreamTooLarge {
                tables: 140_000,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("qemu-img convert"), "{e}");
}

/// An extent of a disk described by a separate file may leave its embedded descriptor out
/// (offset 0); a huge sector count there then means nothing, and planning a fix must not
/// compute with it (found by the `container` fuzzer: the re-stream's descriptor end overflowed).
#[test]
fn an_extent_without_a_descriptor_ignores_its_descriptor_size() {
    // One grain's disk: directory at sector 2, one table at 3..7, nothing allocated; the last
    // sector is not an end-of-stream marker, so the fix re-streams it whole.
    let mut f = stream_vmdk(128, 128, 8, 9);
    le64(&mut f, 28, 0);
    le64(&mut f, 36, 1 << 60);
    le32(&mut f, 1024, 3);
    *f.last_mut().unwrap() = 0xAA;
    let c = open_sparse_extent(&f[..]).unwrap();
    let plan = c
        .plan_output(&[Patch {
            offset: 0,
            data: PatchData::Bytes(vec![7; 512]),
            label: String::new(),
        }])
        .unwrap();
    let size = plan.file_size.unwrap() as usize;
    let mut out = f[..size.min(f.len())].to_vec();
    out.resize(size, 0);
    let out = apply(&out, &plan.writes);
    let mut got = vec![0u8; 512];
    open_sparse_extent(&out[..])
        .unwrap()
        .read_at(0, &mut got)
        .unwrap();
    assert_eq!(got, vec![7; 512]);
}

/// An extent without a descriptor of its own, an overHead of 0 and no grain yet: the whole
/// re-stream starts after the header, never on it (found by the `container` fuzzer: the new
/// grain was planned at offset 0, where the new header is written too, and the patch read back
/// as zeros). The grain tables hold 221 entries here, which the format allows.
///
/// Nor at sector 1 (overHead 1) when the header's flag makes table entry 1 mean "a grain of
/// zeros": the new grain would read as zeros (found by the fuzzer after the first fix).
#[test]
fn a_restream_never_starts_on_the_header() {
    for (overhead, zero_grain_flag) in [(0, false), (1, true), (1, false), (0, true)] {
        restream_of_an_empty_extent(overhead, zero_grain_flag);
    }
}

fn restream_of_an_empty_extent(overhead: u64, zero_grain_flag: bool) {
    // A 5-sector disk in one 64 KiB grain: directory at sector 2, no table, nothing allocated;
    // the last sector is not an end-of-stream marker, so the fix re-streams the file whole.
    let mut f = stream_vmdk(5, 128, overhead, 9);
    le64(&mut f, 28, 0);
    le64(&mut f, 36, 0);
    le32(&mut f, 44, 221);
    if zero_grain_flag {
        f[8] |= 4;
    }
    *f.last_mut().unwrap() = 0xAA;
    let c = open_sparse_extent(&f[..]).unwrap();
    let patches = [
        Patch {
            offset: 0,
            data: PatchData::Bytes(vec![7; 700]),
            label: String::new(),
        },
        Patch {
            offset: 1792,
            data: PatchData::Bytes(vec![9; 768]),
            label: String::new(),
        },
    ];
    let plan = c.plan_output(&patches).unwrap();
    assert!(
        plan.writes
            .iter()
            .all(|w| w.file_offset == 0 || w.file_offset >= 512),
        "only the header is written on the header: {:?}",
        plan.writes
            .iter()
            .map(|w| (w.file_offset, w.end()))
            .collect::<Vec<_>>()
    );
    let size = plan.file_size.unwrap() as usize;
    let mut out = f[..size.min(f.len())].to_vec();
    out.resize(size, 0);
    let out = apply(&out, &plan.writes);
    let patched = open_sparse_extent(&out[..]).unwrap();
    for p in &patches {
        let mut got = vec![0u8; p.len() as usize];
        patched.read_at(p.offset, &mut got).unwrap();
        let PatchData::Bytes(want) = &p.data else {
            unreachable!()
        };
        assert_eq!(
            &got, want,
            "overHead {overhead}, zero-grain flag {zero_grain_flag}: patch at {}",
            p.offset
        );
    }
}

/// A qcow2 header that puts its L1 table and its refcount table at the same place: a fix that
/// must store a cluster anew (a new L2 table, a new refcount block) would write both tables'
/// first entries over each other. It is refused as damage before any write is planned (found by
/// the `container` fuzzer, where the guard against overlapping writes caught it).
#[test]
fn qcow2_tables_on_each_other_are_refused_before_a_cluster_is_stored_anew() {
    let mut f = vec![0u8; 3 * 65536];
    f[..4].copy_from_slice(b"QFI\xfb");
    f[4..8].copy_from_slice(&3u32.to_be_bytes());
    f[20..24].copy_from_slice(&16u32.to_be_bytes()); // 64 KiB clusters
    f[24..32].copy_from_slice(&65536u64.to_be_bytes()); // virtual size
    f[36..40].copy_from_slice(&1u32.to_be_bytes()); // l1_size
    f[40..48].copy_from_slice(&65536u64.to_be_bytes()); // l1_table_offset
    f[48..56].copy_from_slice(&65536u64.to_be_bytes()); // refcount_table_offset, the same
    f[56..60].copy_from_slice(&1u32.to_be_bytes());
    f[96..100].copy_from_slice(&4u32.to_be_bytes()); // 16-bit refcounts
    f[100..104].copy_from_slice(&104u32.to_be_bytes());
    let c = open(&f[..]).unwrap();
    let e = c
        .plan_output(&[Patch {
            offset: 0,
            data: PatchData::Bytes(vec![1; 512]),
            label: String::new(),
        }])
        .unwrap_err();
    assert!(matches!(e, ContainerError::Qcow2Refcount { .. }), "{e}");
}

/// A plan two of whose writes (or a write and a fill) share file bytes is refused, whichever
/// planner made it: which one lands last would decide what the disk holds.
#[test]
fn overlapping_planned_writes_are_refused() {
    let write = |file_offset: u64, len: usize| FileWrite {
        file_offset,
        bytes: vec![1; len],
        label: FileWriteLabel::VmdkStream {
            part: VmdkStreamPart::Header,
        },
    };
    let fill = |file_offset: u64, len: u64| FileFill {
        file_offset,
        len,
        byte: 0,
        label: FileWriteLabel::virtual_bytes(0, len, WriteHow::Filled),
    };
    let plan = |writes, fills| OutputPlan {
        writes,
        fills,
        file_size: None,
    };
    // Touching is not overlapping; empty writes overlap nothing.
    plan(
        vec![write(0, 512), write(512, 512), write(600, 0)],
        vec![fill(1024, 512)],
    )
    .check_disjoint()
    .unwrap();
    let e = plan(vec![write(0, 512), write(511, 10)], vec![])
        .check_disjoint()
        .unwrap_err();
    assert!(
        matches!(
            e,
            ContainerError::PlannedWritesOverlap {
                first: (0, 512),
                second: (511, 521)
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("nothing was written"), "{e}");
    let e = plan(vec![write(4096, 512)], vec![fill(0, 4097)])
        .check_disjoint()
        .unwrap_err();
    assert!(
        matches!(e, ContainerError::PlannedWritesOverlap { .. }),
        "{e}"
    );
}
