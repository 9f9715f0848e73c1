//! Helpers shared by the container tests that judge kaifuku against images made by qemu-img:
//! a counting `pread` reader, scratch directories, running the external tools, and the read and
//! write checks every format's tests make.
#![allow(dead_code)]

use kaifuku_container::{Container, FileWrite};
use kaifuku_io::{check_range, ReadAt};
use std::cell::Cell;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// `pread` over a file, as the CLI does it, counting the calls.
pub struct FileReader {
    file: File,
    size: u64,
    pub calls: Cell<u64>,
}

impl FileReader {
    pub fn open(path: &Path) -> FileReader {
        let file = File::open(path).unwrap();
        let size = file.metadata().unwrap().len();
        FileReader {
            file,
            size,
            calls: Cell::new(0),
        }
    }
}

impl ReadAt for FileReader {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        self.calls.set(self.calls.get() + 1);
        self.file.read_exact_at(buf, offset)
    }
}

/// A fresh directory, removed when the test ends.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kaifuku-container-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs an external tool and returns what it did, success or not.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "these tests need {program} on PATH (qemu-img and qemu-io: package qemu-utils); \
                 running it failed: {e}"
            )
        })
}

/// Runs an external tool that must succeed.
pub fn run_ok(program: &str, args: &[&str]) -> Output {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn qemu_img(args: &[&str]) -> Output {
    run_ok("qemu-img", args)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every byte, read once whole and once in odd-sized pieces that cross blocks at odd offsets.
pub fn assert_reads_as<R: ReadAt>(c: &Container<R>, want: &[u8]) {
    assert_eq!(c.virtual_size(), want.len() as u64);
    let mut all = vec![0u8; want.len()];
    c.read_at(0, &mut all).unwrap();
    assert!(all == want, "whole-disk read differs");
    let mut off = 0usize;
    let mut piece = 1usize;
    while off < want.len() {
        let len = piece.min(want.len() - off);
        let mut b = vec![0xa5u8; len];
        c.read_at(off as u64, &mut b).unwrap();
        assert!(
            b == want[off..off + len],
            "read of {len} bytes at {off} differs"
        );
        off += len;
        piece = piece * 3 + 511;
    }
}

/// Lays planned writes over a copy of the container file.
pub fn apply(file: &mut [u8], writes: &[FileWrite]) {
    for w in writes {
        file[w.file_offset as usize..w.end() as usize].copy_from_slice(&w.bytes);
    }
}
