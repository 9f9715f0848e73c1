//! VMDK sparse extents written by qemu-img, the reference outside this crate: kaifuku must read
//! monolithicSparse and streamOptimized files byte for byte as qemu does, refuse what it cannot
//! write in place, and monolithicSparse files patched through `plan_writes` (streamOptimized ones
//! re-streamed through `plan_output`) must pass `qemu-img check`, read back in qemu as intended
//! and open in libvmdk's `vmdkinfo`. Damaged
//! variants are made from qemu-img's bytes by changing one field.
//!
//! qemu-img and vmdkinfo (libvmdk-utils) are required: without them these tests fail.

mod common;

use common::{apply, assert_reads_as, qemu_img, run, run_ok, s, FileReader, TempDir};

use kaifuku_container::{open, ContainerError, Extent, Format, OutputPlan};
use kaifuku_io::{Patch, PatchData, ReadAt};
use std::fs;
use std::path::{Path, PathBuf};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Not a whole number of 64 KiB grains: the last grain is cut where the disk ends.
const RAW_SIZE: usize = 5 * MIB + 3 * 512;

/// Deterministic noise with zero regions (2..4 MiB, 256..512 KiB) and one highly compressible MiB.
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
    v[256 * KIB..512 * KIB].fill(0);
    for (i, b) in v[MIB..2 * MIB].iter_mut().enumerate() {
        *b = b"abc"[i % 3];
    }
    v
}

fn make_vmdk(dir: &TempDir, raw: &[u8], options: &str) -> PathBuf {
    let raw_path = dir.path("input.raw");
    fs::write(&raw_path, raw).unwrap();
    let out = dir.path("image.vmdk");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        options,
        s(&raw_path),
        s(&out),
    ]);
    out
}

/// What qemu reads: `qemu-img convert -O raw`.
fn qemu_raw(dir: &TempDir, image: &Path) -> Vec<u8> {
    let out = dir.path("qemu.raw");
    qemu_img(&["convert", "-f", "vmdk", "-O", "raw", s(image), s(&out)]);
    fs::read(out).unwrap()
}

const SPARSE: &str = "subformat=monolithicSparse";
const STREAM: &str = "subformat=streamOptimized";

#[test]
fn reads_what_qemu_wrote() {
    let raw = raw_image();
    for (options, format) in [
        (SPARSE, Format::VmdkSparse),
        (
            "subformat=monolithicSparse,zeroed_grain=on",
            Format::VmdkSparse,
        ),
        (
            "subformat=monolithicSparse,compat6=on,adapter_type=lsilogic",
            Format::VmdkSparse,
        ),
        (STREAM, Format::VmdkStreamOptimized),
    ] {
        let dir = TempDir::new("read");
        let image = make_vmdk(&dir, &raw, options);
        let c = open(FileReader::open(&image)).unwrap();
        assert_eq!(c.format(), format, "{options}");
        // qemu rounds the capacity to whole sectors; RAW_SIZE is whole sectors.
        assert_eq!(c.virtual_size(), RAW_SIZE as u64);
        assert_eq!(qemu_raw(&dir, &image), raw, "{options}: qemu's own reading");
        assert_reads_as(&c, &raw);
        let v = c.info().vmdk.unwrap();
        assert_eq!(v.grain_size, 64 * KIB as u64, "{options}");
        assert_eq!(
            v.subformat,
            if format == Format::VmdkSparse {
                "monolithicSparse"
            } else {
                "streamOptimized"
            }
        );
        assert_eq!(v.compressed, format == Format::VmdkStreamOptimized);
        // The CID as the embedded descriptor spells it (qemu-img writes it without leading
        // zeros, so its length varies with the random value).
        let bytes = std::fs::read(&image).unwrap();
        let at = bytes
            .windows(5)
            .position(|w| w == b"\nCID=")
            .expect("the embedded descriptor has a CID line")
            + 5;
        let len = bytes[at..].iter().position(|b| *b == b'\n').unwrap();
        let in_file = std::str::from_utf8(&bytes[at..at + len]).unwrap();
        assert_eq!(v.cid, in_file, "{options}");
        assert!(
            u32::from_str_radix(&v.cid, 16).is_ok(),
            "{options}: {}",
            v.cid
        );
        let json = serde_json::to_value(c.info()).unwrap();
        assert_eq!(json["vmdk"]["grain_size"], 65536);
        // qemu-img leaves the zero MiBs unallocated.
        assert!(matches!(
            c.map(3 * MIB as u64).unwrap(),
            Extent::Zero { .. }
        ));
        assert!(
            matches!(
                (format, c.map(20 * KIB as u64).unwrap()),
                (Format::VmdkSparse, Extent::InFile { .. })
                    | (Format::VmdkStreamOptimized, Extent::Compressed { .. })
            ),
            "{options}"
        );
    }
}

/// Opening and reading one sector of a sparse image reads the header, the descriptor, a page
/// of the grain directory and one grain table: never all tables up front.
#[test]
fn tables_are_read_lazily() {
    let dir = TempDir::new("lazy");
    // 64 GiB virtual, nothing allocated: 256 KiB of directory... of which one page is read.
    let image = dir.path("big.vmdk");
    qemu_img(&["create", "-f", "vmdk", "-o", SPARSE, s(&image), "64G"]);
    let reader = FileReader::open(&image);
    let c = open(reader).unwrap();
    let mut b = vec![1u8; 4096];
    c.read_at(40 << 30, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 0));
    assert!(c.file().calls.get() <= 6, "{} reads", c.file().calls.get());
}

/// Patches planned in place pass `qemu-img check` and read back in qemu, libvmdk and kaifuku as
/// the patched disk; only grain bytes change (the header, descriptor and CID are kept).
#[test]
fn in_place_writes_read_back_in_qemu_and_libvmdk() {
    let raw = raw_image();
    for options in [SPARSE, "subformat=monolithicSparse,zeroed_grain=on"] {
        let dir = TempDir::new("patch");
        let image = make_vmdk(&dir, &raw, options);
        let mut file = fs::read(&image).unwrap();
        let c = open(FileReader::open(&image)).unwrap();
        let p1: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let p2: Vec<u8> = (0..200_000u32).map(|i| (i * 13 + 1) as u8).collect();
        let p3 = [0xeeu8; 16];
        let patches: Vec<(u64, &[u8])> = vec![
            (1000, &p1),
            (600 * KIB as u64 + 77, &p2), // across grains
            (RAW_SIZE as u64 - 16, &p3),  // the last, cut grain
        ];
        let writes = c.plan_writes(&patches).unwrap();
        assert!(writes
            .iter()
            .all(|w| w.label.to_string().contains("VMDK grain")));
        let mut want = raw.clone();
        for (at, bytes) in &patches {
            want[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
        }
        let before = file.clone();
        apply(&mut file, &writes);
        let changed: usize = before.iter().zip(&file).filter(|(a, b)| a != b).count();
        assert!(changed > 0 && changed <= 300 + 200_000 + 16, "{options}");
        // Header and descriptor (the first 64 KiB hold them and the directories) are unchanged.
        assert!(before[..64 * KIB] == file[..64 * KIB], "{options}");
        let patched = dir.path("patched.vmdk");
        fs::write(&patched, &file).unwrap();
        qemu_img(&["check", "-f", "vmdk", s(&patched)]);
        assert!(
            qemu_raw(&dir, &patched) == want,
            "{options}: qemu reads other bytes"
        );
        let c2 = open(FileReader::open(&patched)).unwrap();
        assert_reads_as(&c2, &want);
        assert_eq!(c2.info().vmdk.unwrap().cid, c.info().vmdk.unwrap().cid);
        let vi = run_ok("vmdkinfo", &[s(&patched)]);
        let text = String::from_utf8_lossy(&vi.stdout);
        assert!(
            text.contains("Media size") && text.contains(&RAW_SIZE.to_string()),
            "vmdkinfo: {text}"
        );
    }
}

/// Patches in grains qemu-img left without space (the zero MiBs at 2..4 MiB): each grain is added
/// after the end of the file, zeros around the patches, and its entries in the grain table and
/// the redundant one point there. `qemu-img check` accepts the grown file, qemu and libvmdk read
/// the patched disk, and the same patches again add nothing.
#[test]
fn patch_in_a_grain_without_space_adds_the_grain() {
    let raw = raw_image();
    let dir = TempDir::new("grow");
    let image = make_vmdk(&dir, &raw, SPARSE);
    let original = fs::read(&image).unwrap();
    let c = open(FileReader::open(&image)).unwrap();
    assert!(c.info().vmdk.unwrap().redundant_grain_directory);
    let patches = vec![
        Patch {
            offset: 3 * MIB as u64 + 10,
            data: PatchData::Bytes(vec![1u8; 4]),
            label: String::new(),
        },
        // Across an allocated grain and one without space.
        Patch {
            offset: 2 * MIB as u64 - 2,
            data: PatchData::Bytes(vec![4, 5, 6, 7]),
            label: String::new(),
        },
        Patch {
            offset: 3 * MIB as u64 + 64 * KIB as u64,
            data: PatchData::Fill {
                byte: 0xff,
                len: 4096,
            },
            label: String::new(),
        },
    ];
    let plan = c.plan_output(&patches).unwrap();
    let first = original.len().next_multiple_of(512) as u64;
    assert_eq!(
        plan.file_size,
        Some(first + 3 * 64 * KIB as u64),
        "three grains"
    );
    let entries = plan
        .writes
        .iter()
        .filter(|w| {
            matches!(
                w.label,
                kaifuku_container::FileWriteLabel::UnitTableEntry { .. }
            )
        })
        .count();
    assert_eq!(entries, 6, "each grain in both tables");
    let mut file = original.clone();
    file.resize(plan.file_size.unwrap() as usize, 0);
    for f in &plan.fills {
        file[f.file_offset as usize..(f.file_offset + f.len) as usize].fill(f.byte);
    }
    apply(&mut file, &plan.writes);
    let patched = dir.path("grown.vmdk");
    fs::write(&patched, &file).unwrap();
    let mut want = raw.clone();
    want[3 * MIB + 10..3 * MIB + 14].fill(1);
    want[2 * MIB - 2..2 * MIB + 2].copy_from_slice(&[4, 5, 6, 7]);
    want[3 * MIB + 64 * KIB..3 * MIB + 64 * KIB + 4096].fill(0xff);
    qemu_img(&["check", "-f", "vmdk", s(&patched)]);
    assert!(qemu_raw(&dir, &patched) == want, "qemu reads other bytes");
    let out = run("vmdkinfo", &[s(&patched)]);
    assert!(out.status.success(), "vmdkinfo refuses the output");
    let c2 = open(FileReader::open(&patched)).unwrap();
    assert_reads_as(&c2, &want);
    assert_eq!(c2.plan_output(&patches).unwrap().file_size, None);
}

/// The output plan of a streamOptimized image applied to its file: the file cut or extended to
/// the plan's size, then the writes.
fn restreamed(file: &[u8], output: &OutputPlan) -> Vec<u8> {
    let size = output.file_size.expect("a stream output gives its size") as usize;
    assert!(output.fills.is_empty());
    let mut out = file[..size.min(file.len())].to_vec();
    out.resize(size, 0);
    let kept = output
        .writes
        .iter()
        .map(|w| w.file_offset)
        .filter(|&at| at > 0)
        .min()
        .unwrap() as usize;
    apply(&mut out, &output.writes);
    // Every byte past what is kept of the input is written.
    let written: usize = output
        .writes
        .iter()
        .filter(|w| w.file_offset as usize >= kept)
        .map(|w| w.bytes.len())
        .sum();
    assert_eq!(kept + written, size, "the new bytes leave a gap");
    assert!(kept <= file.len());
    out
}

/// A streamOptimized image (as qemu-img writes it, and in VMware's layout with a footer) is
/// re-streamed: patches in allocated grains, across grains, in a grain never written (zeros)
/// and in the last, cut grain, plus a fill. qemu-img check passes, qemu, libvmdk and kaifuku
/// read the patched disk, the kept part of the file is unchanged but for the header, the CID
/// is kept, and a second fix of the output re-streams it again.
#[test]
fn stream_output_reads_back_in_qemu_and_libvmdk() {
    let raw = raw_image();
    for layout in ["qemu", "footer"] {
        let dir = TempDir::new("restream");
        let made = make_vmdk(&dir, &raw, STREAM);
        let image = dir.path("stream.vmdk");
        let mut file = fs::read(&made).unwrap();
        if layout == "footer" {
            // As VMware writes it: no redundant tables, in the header and in the footer.
            file = with_footer(&file);
            let footer = file.len() - 1024;
            for at in [0, footer] {
                let flags = get_u32(&file, at + 8);
                put_u32(&mut file, at + 8, flags & !2);
                put_u64(&mut file, at + 48, 0);
            }
        }
        fs::write(&image, &file).unwrap();
        let c = open(FileReader::open(&image)).unwrap();
        assert!(matches!(
            c.map(3 * MIB as u64).unwrap(),
            Extent::Zero { .. }
        ));
        let p1: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        let p2: Vec<u8> = (0..200_000u32).map(|i| (i * 13 + 1) as u8).collect();
        let p3 = [0xeeu8; 16];
        let p4 = [0x5au8; 100];
        let patch = |offset: u64, bytes: &[u8]| Patch {
            offset,
            data: PatchData::Bytes(bytes.to_vec()),
            label: String::new(),
        };
        let patches = vec![
            patch(1000, &p1),
            patch(600 * KIB as u64 + 77, &p2), // across grains
            patch(3 * MIB as u64 + 5, &p4),    // a grain never written
            patch(RAW_SIZE as u64 - 16, &p3),  // the last, cut grain
            Patch {
                offset: 5000,
                data: PatchData::Fill {
                    byte: 0xff,
                    len: 70_000,
                },
                label: String::new(),
            },
        ];
        let output = c.plan_output(&patches).unwrap();
        let mut want = raw.clone();
        for (at, bytes) in [
            (1000, &p1[..]),
            (600 * KIB + 77, &p2[..]),
            (3 * MIB + 5, &p4[..]),
            (RAW_SIZE - 16, &p3[..]),
        ] {
            want[at..at + bytes.len()].copy_from_slice(bytes);
        }
        want[5000..75_000].fill(0xff);
        let out = restreamed(&file, &output);
        let kept = output
            .writes
            .iter()
            .map(|w| w.file_offset as usize)
            .find(|&at| at > 0)
            .unwrap();
        assert!(
            file[512..kept] == out[512..kept],
            "{layout}: kept bytes changed"
        );
        // The header is rewritten only where it did not defer to a footer yet.
        assert_eq!(
            output.writes[0].file_offset == 0,
            layout == "qemu",
            "{layout}"
        );
        assert_eq!(get_u64(&out, 56), u64::MAX, "{layout}: header gdOffset");
        let patched = dir.path("patched.vmdk");
        fs::write(&patched, &out).unwrap();
        qemu_img(&["check", "-f", "vmdk", s(&patched)]);
        assert!(
            qemu_raw(&dir, &patched) == want,
            "{layout}: qemu reads other bytes"
        );
        let c2 = open(FileReader::open(&patched)).unwrap();
        assert_eq!(c2.format(), Format::VmdkStreamOptimized);
        assert_reads_as(&c2, &want);
        assert_eq!(c2.info().vmdk.unwrap().cid, c.info().vmdk.unwrap().cid);
        assert!(!c2.info().vmdk.unwrap().redundant_grain_directory);
        // libvmdk opens the data through the descriptor's extent name: the image's own.
        let judged = dir.path("judged");
        fs::create_dir_all(&judged).unwrap();
        let judged = judged.join("image.vmdk");
        fs::write(&judged, &out).unwrap();
        let vi = run_ok("vmdkinfo", &[s(&judged)]);
        let text = String::from_utf8_lossy(&vi.stdout);
        assert!(
            text.contains("Stream optimized") && text.contains(&RAW_SIZE.to_string()),
            "vmdkinfo: {text}"
        );

        // Re-streaming the output (a header deferring to its footer) works the same way.
        let p5 = [0x11u8; 40];
        let again = c2
            .plan_output(&[Patch {
                offset: 3 * MIB as u64 + 5,
                data: PatchData::Bytes(p5.to_vec()),
                label: String::new(),
            }])
            .unwrap();
        assert_ne!(again.writes[0].file_offset, 0, "the header already defers");
        let out2 = restreamed(&out, &again);
        want[3 * MIB + 5..3 * MIB + 45].copy_from_slice(&p5);
        fs::write(&patched, &out2).unwrap();
        qemu_img(&["check", "-f", "vmdk", s(&patched)]);
        assert!(
            qemu_raw(&dir, &patched) == want,
            "{layout}: second re-stream"
        );
        assert_reads_as(&open(FileReader::open(&patched)).unwrap(), &want);
    }
}

/// An image file with the parent disk a front end found for it.
struct WithParent {
    file: FileReader,
    parent: kaifuku_io::Backing,
}

impl ReadAt for WithParent {
    fn size(&self) -> u64 {
        self.file.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_at(offset, buf)
    }
    fn backing(&self) -> Option<kaifuku_io::Backing> {
        Some(self.parent.clone())
    }
}

/// A monolithicSparse child made by `qemu-img create -b` on a sparse parent holding data, into
/// which qemu-io wrote part of a grain: without its parent it is refused with what to do; with
/// it, kaifuku reads the disk as `qemu-img convert` reads the chain, and a fix adds the grains
/// it touches to the child, filled from the parent — `qemu-img check` clean, qemu and libvmdk
/// read the patched chain, the parent unchanged. A parent whose CID is not the one the child
/// recorded is refused.
#[test]
fn child_disks_are_read_and_fixed_through_their_parent() {
    let dir = TempDir::new("child");
    let raw = raw_image();
    let base = make_vmdk(&dir, &raw, SPARSE);
    let child = dir.path("child.vmdk");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vmdk",
        "-o",
        SPARSE,
        "-b",
        "image.vmdk",
        "-F",
        "vmdk",
        s(&child),
    ]);
    run_ok(
        "qemu-io",
        &["-f", "vmdk", "-c", "write -P 0x22 68k 4k", s(&child)],
    );
    let want = qemu_raw(&dir, &child);
    assert!(want[68 * KIB..72 * KIB].iter().all(|b| *b == 0x22));
    assert_eq!(want[..64 * KIB], raw[..64 * KIB]);

    let e = open(FileReader::open(&child)).unwrap_err();
    assert!(matches!(&e, ContainerError::VmdkChild { parent } if parent.contains("image.vmdk")));
    assert!(e.is_unsupported());
    let with_parent = |parent: &Path| WithParent {
        file: FileReader::open(&child),
        parent: std::rc::Rc::new(FileReader::open(parent)),
    };
    let c = open(with_parent(&base)).unwrap();
    assert_reads_as(&c, &want);

    let patches = vec![
        // A grain the child does not hold: the parent's bytes, patched.
        (1000, vec![0x33u8; 100]),
        // The grain qemu-io wrote: in place.
        (70 * KIB as u64, vec![0x44u8; 10]),
        // A grain neither holds (the parent's zeros).
        (3 * MIB as u64 + 5, vec![0x55u8; 7]),
    ];
    let plan = c
        .plan_output(
            &patches
                .iter()
                .map(|(at, b)| Patch {
                    offset: *at,
                    data: PatchData::Bytes(b.clone()),
                    label: String::new(),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let mut fixed = want.clone();
    for (at, b) in &patches {
        fixed[*at as usize..*at as usize + b.len()].copy_from_slice(b);
    }
    let base_bytes = fs::read(&base).unwrap();
    let mut file = fs::read(&child).unwrap();
    file.resize(plan.file_size.expect("grains are added") as usize, 0);
    for f in &plan.fills {
        file[f.file_offset as usize..(f.file_offset + f.len) as usize].fill(f.byte);
    }
    apply(&mut file, &plan.writes);
    let patched = dir.path("child-fixed.vmdk");
    fs::write(&patched, &file).unwrap();
    qemu_img(&["check", "-f", "vmdk", s(&patched)]);
    assert!(qemu_raw(&dir, &patched) == fixed, "qemu reads other bytes");
    let out = run("vmdkinfo", &[s(&patched)]);
    assert!(out.status.success(), "vmdkinfo refuses the output");
    assert!(
        fs::read(&base).unwrap() == base_bytes,
        "the parent is unchanged"
    );
    let c2 = open(WithParent {
        file: FileReader::open(&patched),
        parent: std::rc::Rc::new(FileReader::open(&base)),
    })
    .unwrap();
    assert_reads_as(&c2, &fixed);

    // Another disk as the parent (a different CID): refused.
    let other = dir.path("other.vmdk");
    qemu_img(&["create", "-q", "-f", "vmdk", "-o", SPARSE, s(&other), "8M"]);
    let e = open(with_parent(&other)).map(|_| ()).unwrap_err();
    assert!(matches!(e, ContainerError::VmdkParentChanged { .. }), "{e}");
}

/// The streamOptimized layout VMware writes (qemu-img puts the grain directory's place in the
/// header instead): the header says `GD_AT_END`, and a footer marker and a copy of the header with
/// the real `gdOffset` come before the end-of-stream marker.
fn with_footer(stream: &[u8]) -> Vec<u8> {
    let eos = &stream[stream.len() - 512..];
    assert!(eos.iter().all(|&b| b == 0), "qemu-img ends the stream");
    let mut out = stream[..stream.len() - 512].to_vec();
    let mut marker = [0u8; 512];
    put_u64(&mut marker, 0, 1);
    put_u32(&mut marker, 12, 3);
    out.extend_from_slice(&marker);
    out.extend_from_slice(&stream[..512]);
    out.extend_from_slice(eos);
    put_u64(&mut out, 56, u64::MAX);
    out
}

/// A header deferring to its footer reads as qemu reads it.
#[test]
fn stream_with_footer_reads_as_qemu_reads_it() {
    let raw = raw_image();
    let dir = TempDir::new("footer");
    let image = make_vmdk(&dir, &raw, STREAM);
    let footed = dir.path("footed.vmdk");
    fs::write(&footed, with_footer(&fs::read(&image).unwrap())).unwrap();
    assert_eq!(qemu_raw(&dir, &footed), raw, "qemu reads the footer too");
    let c = open(FileReader::open(&footed)).unwrap();
    assert_eq!(c.format(), Format::VmdkStreamOptimized);
    assert_reads_as(&c, &raw);
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// One field changed at a time: each is an error at open, at the first read or at planning,
/// never a panic, never a wrong disk. The redundant tables disagreeing refuses a write there.
#[test]
fn damaged_images_are_errors() {
    let raw = raw_image();
    let dir = TempDir::new("damaged");
    let image = make_vmdk(&dir, &raw, SPARSE);
    let good = fs::read(&image).unwrap();
    let gd = get_u64(&good, 56) as usize * 512;
    let rgd = get_u64(&good, 48) as usize * 512;
    let gt0 = get_u32(&good, gd) as usize * 512;
    let rgt0 = get_u32(&good, rgd) as usize * 512;
    let grain0 = get_u32(&good, gt0) as usize;
    assert!(grain0 > 1, "qemu-img allocated grain 0");

    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Damage)> = vec![
        ("version 9", Box::new(|b| put_u32(b, 4, 9))),
        ("unknown flag", Box::new(|b| put_u32(b, 8, 3 | 1 << 5))),
        ("grain size 3", Box::new(|b| put_u64(b, 20, 3))),
        ("grain size 0", Box::new(|b| put_u64(b, 20, 0))),
        ("grain size huge", Box::new(|b| put_u64(b, 20, 1 << 40))),
        ("huge capacity", Box::new(|b| put_u64(b, 12, u64::MAX / 2))),
        ("capacity of 2 PiB", Box::new(|b| put_u64(b, 12, 1 << 42))),
        ("gt entries 0", Box::new(|b| put_u32(b, 44, 0))),
        ("gt entries 4096", Box::new(|b| put_u32(b, 44, 4096))),
        ("gd past the end", Box::new(|b| put_u64(b, 56, 1 << 40))),
        ("rgd past the end", Box::new(|b| put_u64(b, 48, 1 << 40))),
        ("gd on the header", Box::new(|b| put_u64(b, 56, 0))),
        ("descriptor huge", Box::new(|b| put_u64(b, 36, 1 << 50))),
        ("no descriptor", Box::new(|b| put_u64(b, 28, 0))),
        (
            "text-mode transfer",
            Box::new(|b| {
                b[75] = b'\n';
            }),
        ),
        (
            "gd entry past the end",
            Box::new(move |b| put_u32(b, gd, 0x7fff_fff0)),
        ),
        (
            "gd entry on the header",
            Box::new(move |b| put_u32(b, gd, 0)),
        ),
        (
            "gt entry past the end",
            Box::new(move |b| put_u32(b, gt0, 0x7fff_fff0)),
        ),
        // The grain's own table as its data: a loop between metadata and data.
        (
            "grain on its table",
            Box::new(move |b| put_u32(b, gt0, (gt0 / 512) as u32)),
        ),
        (
            "grain on the header",
            Box::new(move |b| put_u32(b, gt0 + 4, 0)),
        ),
        (
            "two grains in one place",
            Box::new(move |b| {
                let g = get_u32(b, gt0);
                put_u32(b, gt0 + 4, g);
                put_u32(b, rgt0 + 4, g);
            }),
        ),
        (
            "redundant table disagrees",
            Box::new(move |b| put_u32(b, rgt0, grain0 as u32 + 128)),
        ),
        ("truncated", Box::new(|b| b.truncate(b.len() / 2))),
        (
            "child by CID",
            Box::new(|b| {
                let at = b
                    .windows(18)
                    .position(|w| w == b"parentCID=ffffffff")
                    .unwrap();
                b[at + 10..at + 18].copy_from_slice(b"12345678");
            }),
        ),
    ];
    for (name, damage) in cases {
        let mut bytes = good.clone();
        damage(&mut bytes);
        let path = dir.path("damaged.vmdk");
        fs::write(&path, &bytes).unwrap();
        let outcome = open(FileReader::open(&path)).map(|c| {
            let mut all = vec![0u8; c.virtual_size().min(RAW_SIZE as u64) as usize];
            let read = c.read_at(0, &mut all);
            let plan = c.plan_writes(&[(0, &[1u8; 4]), (70_000, &[2u8; 4])]);
            (read.is_ok() && all == raw, plan.is_ok())
        });
        match name {
            // Reading goes through the primary tables and is right; writing is refused.
            "redundant table disagrees" => {
                assert_eq!(outcome.as_ref().ok(), Some(&(true, false)), "{name}");
            }
            // The grains planned into are still in the file.
            "truncated" => assert!(matches!(outcome, Ok((false, _))), "{name}"),
            _ => assert!(
                match &outcome {
                    Err(_) => true,
                    Ok((read_ok, plan_ok)) => !read_ok && !plan_ok,
                },
                "{name}: {outcome:?}"
            ),
        }
    }
}

/// A streamOptimized file cut before its footer, or with a damaged grain marker, is an error.
#[test]
fn damaged_stream_is_an_error() {
    let raw = raw_image();
    let dir = TempDir::new("stream-damaged");
    let image = make_vmdk(&dir, &raw, STREAM);
    let good = fs::read(&image).unwrap();
    let path = dir.path("cut.vmdk");
    let footed = with_footer(&good);
    let mut cut = footed.clone();
    cut.truncate(footed.len() - 512);
    fs::write(&path, &cut).unwrap();
    assert!(matches!(
        open(FileReader::open(&path)).unwrap_err(),
        ContainerError::VmdkFooter { .. }
    ));
    let mut no_gd = footed.clone();
    let footer_at = footed.len() - 1024;
    put_u64(&mut no_gd, footer_at + 56, u64::MAX);
    fs::write(&path, &no_gd).unwrap();
    assert!(matches!(
        open(FileReader::open(&path)).unwrap_err(),
        ContainerError::VmdkHeader { .. }
    ));
    // The first grain's marker names another grain; then its data is garbage.
    let c = open(FileReader::open(&image)).unwrap();
    let Extent::Compressed { file_offset, .. } = c.map(0).unwrap() else {
        panic!("grain 0 is compressed");
    };
    let marker = file_offset as usize - 12;
    for (name, at, value) in [("lba", marker, 7u8), ("data", marker + 14, 0x55)] {
        let mut bytes = good.clone();
        bytes[at] ^= value;
        fs::write(&path, &bytes).unwrap();
        let c = open(FileReader::open(&path)).unwrap();
        let mut b = vec![0u8; 4096];
        assert!(c.read_at(0, &mut b).is_err(), "{name}");
    }
    // vmdkinfo judges the original is a readable VMDK too.
    let out = run("vmdkinfo", &[s(&image)]);
    assert!(out.status.success());
}

/// A qemu-img stream with a few zero bytes after its end-of-stream marker (a copy that padded
/// it): its length is not a whole number of sectors, so the fix cannot append after the marker
/// (a new grain's entry would name the sector before it, and the patch would read back as other
/// bytes). The output is a whole re-stream that qemu-img checks and reads as patched, and
/// kaifuku reads so too. Found by the container fuzzer.
#[test]
fn stream_with_bytes_after_its_end_is_restreamed_whole() {
    let raw = raw_image();
    let dir = TempDir::new("stream-padded");
    let mut file = fs::read(make_vmdk(&dir, &raw, STREAM)).unwrap();
    file.extend_from_slice(&[0u8; 6]);
    let image = dir.path("padded.vmdk");
    fs::write(&image, &file).unwrap();
    assert_eq!(qemu_raw(&dir, &image), raw, "qemu reads the padded stream");
    let c = open(FileReader::open(&image)).unwrap();
    assert_reads_as(&c, &raw);
    let p = [0x5au8; 700];
    let output = c
        .plan_output(&[Patch {
            offset: 0,
            data: PatchData::Bytes(p.to_vec()),
            label: String::new(),
        }])
        .unwrap();
    let out = restreamed(&file, &output);
    assert_eq!(out.len() % 512, 0, "the output is whole sectors");
    let mut want = raw.clone();
    want[..p.len()].copy_from_slice(&p);
    let patched = dir.path("patched.vmdk");
    fs::write(&patched, &out).unwrap();
    qemu_img(&["check", "-f", "vmdk", s(&patched)]);
    assert!(qemu_raw(&dir, &patched) == want, "qemu reads other bytes");
    assert_reads_as(&open(FileReader::open(&patched)).unwrap(), &want);
}
