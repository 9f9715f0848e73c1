//! The worker's session logic for the page's "save as a fixed VHD" choice, on images qemu-img
//! makes from the raw Windows fixture: the download is assembled from ranges of the picked file,
//! zeros, the planned bytes and the footer; qemu-img (`info`, `compare` against the raw fixture
//! fixed by the same session code) and libvhdi's `vhdiinfo` judge it, and `kaifuku`'s own reader
//! opens it as a fixed VHD of whole MiB. A disk stored compressed is written in its own format
//! with the reason, never inflated into memory; no undo file is offered for a fixed VHD.
#![cfg(not(target_arch = "wasm32"))]

use kaifuku_io::ReadAt;
use kaifuku_web::session::{OutPiece, Session};
use kaifuku_web::view::{OutputView, Reads};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Source(File, u64);

impl ReadAt for Source {
    fn size(&self) -> u64 {
        self.1
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        kaifuku_io::check_range(offset, buf.len(), self.1)?;
        self.0.read_exact_at(buf, offset)
    }
}

fn raw_fixture() -> PathBuf {
    let dir = std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/out/fixtures"));
    let raw = dir.join("gpt-win.raw");
    assert!(
        raw.exists(),
        "no fixtures in {}: run `python3 tests/make-fixtures.py {}` (test.sh does)",
        dir.display(),
        dir.display()
    );
    raw
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kaifuku-web-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn qemu_img(args: &[&str]) -> std::process::Output {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("these tests need qemu-img (package qemu-utils)");
    assert!(
        out.status.success(),
        "qemu-img {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn session(path: &Path) -> Session<Source> {
    let f = File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    Session::new(
        Source(f, size),
        &path.file_name().unwrap().to_string_lossy(),
    )
}

fn reads(s: kaifuku_io::ReadStats) -> Reads {
    Reads {
        calls: s.calls,
        bytes: s.bytes,
        ms: 0.0,
    }
}

const MIB: u64 = 1 << 20;

const MADE: kaifuku_container::NewFooter = kaifuku_container::NewFooter {
    timestamp: 0x2E00_0000,
    unique_id: [0x5a; 16],
};

/// The download's bytes, as the page's Blob would hold them, written to `out`.
fn assemble(s: &Session<Source>, input: &Path, out: &Path) {
    let file = File::open(input).unwrap();
    let mut bytes = Vec::new();
    for p in s.image_pieces().unwrap() {
        match p {
            OutPiece::Original { start, end } => {
                let mut b = vec![0u8; (end - start) as usize];
                file.read_exact_at(&mut b, start).unwrap();
                bytes.extend_from_slice(&b);
            }
            OutPiece::Bytes(b) => bytes.extend_from_slice(b),
            OutPiece::Fill { byte, len } => bytes.resize(bytes.len() + len as usize, byte),
        }
    }
    assert_eq!(bytes.len() as u64, s.output_size());
    std::fs::write(out, bytes).unwrap();
}

/// The page's same-format fix of the raw fixture: the disk every fixed VHD must hold.
fn fixed_raw(dir: &Path) -> PathBuf {
    let out = dir.join("fixed.raw");
    let mut s = session(&raw_fixture());
    s.inspect(reads);
    s.plan(false, None, reads).unwrap();
    s.verify().unwrap();
    assemble(&s, &raw_fixture(), &out);
    out
}

fn virtual_size(image: &Path) -> u64 {
    let info = qemu_img(&["info", "--output=json", image.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    v["virtual-size"].as_u64().unwrap()
}

#[test]
fn the_page_assembles_a_fixed_vhd_from_every_uncompressed_format() {
    let dir = scratch("fixed-vhd");
    let fixed = fixed_raw(&dir);
    let raw = raw_fixture();
    let mut inputs = vec![raw.clone()];
    for (name, fmt, opts) in [
        ("in.vhdx", "vhdx", "subformat=dynamic"),
        ("chs.vhd", "vpc", "subformat=dynamic"),
        ("in.qcow2", "qcow2", "compat=1.1"),
        ("sparse.vmdk", "vmdk", "subformat=monolithicSparse"),
    ] {
        let p = dir.join(name);
        qemu_img(&[
            "convert",
            "-f",
            "raw",
            "-O",
            fmt,
            "-o",
            opts,
            raw.to_str().unwrap(),
            p.to_str().unwrap(),
        ]);
        inputs.push(p);
    }
    for input in &inputs {
        let size = virtual_size(input);
        let disk = size.div_ceil(MIB) * MIB;
        let mut s = session(input);
        assert!(s.inspect(reads).can_fix);
        let plan = s.plan(false, Some(MADE), reads).unwrap();
        assert_eq!(
            plan.output,
            OutputView::FixedVhd {
                disk_size: disk,
                file_size: disk + 512
            },
            "{}",
            input.display()
        );
        assert!(s.is_fixed_vhd());
        assert!(
            !s.undo_offered(),
            "no undo file for a new file in another format"
        );
        assert!(
            s.names().output.ends_with("-fixed.vhd"),
            "{}",
            s.names().output
        );
        let checks = s.verify().unwrap();
        assert!(!checks.is_empty());
        let out = dir.join(format!(
            "{}.page.vhd",
            input.file_name().unwrap().to_string_lossy()
        ));
        assemble(&s, input, &out);
        assert_eq!(std::fs::metadata(&out).unwrap().len(), disk + 512);
        let info = qemu_img(&["info", "--output=json", "-f", "vpc", out.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(
            v["virtual-size"].as_u64(),
            Some(disk),
            "{}",
            input.display()
        );
        let cmp = qemu_img(&[
            "compare",
            "-f",
            "vpc",
            "-F",
            "raw",
            out.to_str().unwrap(),
            fixed.to_str().unwrap(),
        ]);
        assert!(String::from_utf8_lossy(&cmp.stdout).contains("Images are identical"));
        let vhdi = Command::new("vhdiinfo")
            .arg(&out)
            .output()
            .expect("vhdiinfo (libvhdi-utils)");
        let text = String::from_utf8_lossy(&vhdi.stdout);
        assert!(
            vhdi.status.success() && text.contains("Fixed"),
            "vhdiinfo: {text}"
        );
        // The footer is the one asked for, read back by kaifuku's own reader.
        let f = File::open(&out).unwrap();
        let len = f.metadata().unwrap().len();
        let c = kaifuku_container::open(Source(f, len)).unwrap();
        let vhd = c.info().vhd.unwrap();
        assert_eq!(c.format(), kaifuku_container::Format::VhdFixed);
        assert_eq!(vhd.timestamp, MADE.timestamp);
        if !input.to_string_lossy().ends_with(".vhd") {
            assert_eq!(vhd.uuid, "5a".repeat(16), "{}", input.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_compressed_disk_keeps_its_format_and_says_why() {
    let dir = scratch("fixed-vhd-compressed");
    let raw = raw_fixture();
    let stream = dir.join("stream.vmdk");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        raw.to_str().unwrap(),
        stream.to_str().unwrap(),
    ]);
    let mut s = session(&stream);
    assert!(s.inspect(reads).can_fix);
    let plan = s.plan(false, Some(MADE), reads).unwrap();
    assert_eq!(
        plan.output,
        OutputView::FixedVhdNeedsCommandLine {
            format: kaifuku_container::Format::VmdkStreamOptimized
        }
    );
    assert!(!s.is_fixed_vhd());
    assert!(s.names().output.ends_with("-fixed.vmdk"));
    s.verify().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_format_that_cannot_take_the_changes_offers_a_fixed_vhd() {
    // Clusters shared with an internal snapshot: the qcow2 itself cannot take the changes in
    // place; a fixed VHD of its current disk can.
    let dir = raw_fixture().parent().unwrap().to_path_buf();
    let image = dir.join("bare-64k-snapshot.qcow2");
    let mut s = session(&image);
    assert!(s.inspect(reads).can_fix);
    assert!(
        s.plan(false, None, reads).is_err(),
        "the same format is refused"
    );
    let plan = s
        .plan_with_fallback(false, None, Some(MADE), reads)
        .unwrap();
    let OutputView::SameFormatNotWritable {
        problem, disk_size, ..
    } = &plan.output
    else {
        panic!("no fixed VHD offered: {:?}", plan.output);
    };
    assert!(problem.to_string().contains("snapshot"), "{problem}");
    assert_eq!(*disk_size, 256 << 20);
    assert!(!plan.deletions.is_empty());
    // Nothing is downloadable until the fixed VHD is asked for.
    assert!(s.image_pieces().is_none());
    assert!(s.verify().is_err());
    let plan = s
        .plan_with_fallback(false, Some(MADE), Some(MADE), reads)
        .unwrap();
    assert!(matches!(plan.output, OutputView::FixedVhd { .. }));
    s.verify().unwrap();
    let out_dir = scratch("fixed-vhd-snapshot");
    let out = out_dir.join("snap.vhd");
    assemble(&s, &image, &out);
    let info = qemu_img(&["info", "--output=json", "-f", "vpc", out.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["virtual-size"].as_u64(), Some(256 << 20));
    // The disk is the qcow2's current state with the fix: the same as the raw fixture fixed.
    let raw = dir.join("bare-64k.raw");
    let mut r = session(&raw);
    r.inspect(reads);
    r.plan(false, None, reads).unwrap();
    r.verify().unwrap();
    let fixed_raw = out_dir.join("fixed.raw");
    assemble(&r, &raw, &fixed_raw);
    let cmp = qemu_img(&[
        "compare",
        "-f",
        "vpc",
        "-F",
        "raw",
        out.to_str().unwrap(),
        fixed_raw.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&cmp.stdout).contains("Images are identical"));
    let _ = std::fs::remove_dir_all(&out_dir);
}
