//! The worker's session logic on VMDK images that qemu-img makes from the raw Windows fixture: a
//! monolithicSparse image is inspected, planned, verified and its download assembled from the
//! picked file's slices and the planned bytes; qemu-img judges the result (`check`, and `compare`
//! against the raw fixture fixed by the same session code). A streamOptimized image is re-streamed
//! the same way and judged alike; the page offers no undo file for it.
#![cfg(not(target_arch = "wasm32"))]

use kaifuku_io::ReadAt;
use kaifuku_web::i18n::{Lang, T};
use kaifuku_web::session::{OutPiece, Session};
use kaifuku_web::view::Reads;
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

/// Plans, verifies and assembles the download as the page's Blob would hold it.
fn fixed_by_the_page(input: &Path, out: &Path) -> Vec<String> {
    let mut s = session(input);
    let v = s.inspect(reads);
    assert!(v.can_fix, "{}: {:?}", input.display(), v.problems);
    let plan = s.plan(false, None, reads).unwrap();
    let (ja, en) = (T(Lang::Ja), T(Lang::En));
    let labels: Vec<String> = plan
        .file_writes
        .iter()
        .map(|r| {
            assert_ne!(ja.file_write(&r.label), en.file_write(&r.label));
            en.file_write(&r.label)
        })
        .collect();
    s.verify().unwrap();
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
    labels
}

/// Whether the page offers an undo file for the fix of `input`.
fn undo_offered(input: &Path) -> bool {
    let mut s = session(input);
    s.inspect(reads);
    s.plan(false, None, reads).unwrap();
    s.undo_offered()
}

#[test]
fn sparse_vmdk_download_is_judged_by_qemu_img() {
    let dir = scratch("vmdk");
    let raw = raw_fixture();
    let vmdk = dir.join("disk.vmdk");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=monolithicSparse",
        raw.to_str().unwrap(),
        vmdk.to_str().unwrap(),
    ]);
    let out_raw = dir.join("out.raw");
    fixed_by_the_page(&raw, &out_raw);
    let out = dir.join("out.vmdk");
    let labels = fixed_by_the_page(&vmdk, &out);
    assert!(!labels.is_empty() && labels.iter().all(|l| l.contains("VMDK grain")));
    let check = qemu_img(&["check", "-f", "vmdk", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("No errors"));
    let compare = qemu_img(&[
        "compare",
        "-f",
        "vmdk",
        "-F",
        "raw",
        out.to_str().unwrap(),
        out_raw.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&compare.stdout).contains("Images are identical"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stream_optimized_vmdk_download_is_judged_by_qemu_img() {
    let dir = scratch("vmdk-stream");
    let raw = raw_fixture();
    let vmdk = dir.join("disk.vmdk");
    qemu_img(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        raw.to_str().unwrap(),
        vmdk.to_str().unwrap(),
    ]);
    let out_raw = dir.join("out.raw");
    fixed_by_the_page(&raw, &out_raw);
    assert!(undo_offered(&raw));
    let out = dir.join("out.vmdk");
    let labels = fixed_by_the_page(&vmdk, &out);
    assert!(
        labels.iter().any(|l| l.contains("compressed again")),
        "{labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.contains("VMDK footer")),
        "{labels:?}"
    );
    // The stream is extended after its end: an undo file (version 3) writes the old bytes
    // back and cuts the file to its old size.
    assert!(undo_offered(&vmdk), "an extended stream can be undone");
    let check = qemu_img(&["check", "-f", "vmdk", out.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("No errors"));
    let compare = qemu_img(&[
        "compare",
        "-f",
        "vmdk",
        "-F",
        "raw",
        out.to_str().unwrap(),
        out_raw.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&compare.stdout).contains("Images are identical"));
    let _ = std::fs::remove_dir_all(&dir);
}
