//! Helpers shared by the integration tests that judge kaifuku with independent tools: scratch
//! directories, running tools, ntfs-3g mounts, sparse copies and byte diffs of large images, and a
//! small NTFS reader of our own (boot sector, records, runs, index nodes) that shares no code with
//! the crates under test.
#![allow(dead_code)]

pub mod moto;

use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Locations

pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/out/fixtures"));
    assert!(
        dir.join("manifest.json").exists(),
        "fixtures missing in {}: run `python3 tests/make-fixtures.py {}` (test.sh does)",
        dir.display(),
        dir.display()
    );
    dir
}

/// Test data kept in the repository (`tests/data`: the CC0 Windows-made volumes).
pub fn repo_testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// GPL test data, which stays beside the repository (`../shared/testdata`), never in it. `None`
/// when it is absent — the test then reports by name that it is skipped, and returns.
pub fn gpl_testdata(rel: &str, test: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED {test}: the GPL test data {rel} is absent (it is kept beside the repository in ../shared/testdata, not in it)"
        );
        None
    }
}

pub fn load_json(p: &Path) -> Value {
    let text =
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

// ---------------------------------------------------------------------------------------------
// Scratch directories

/// A per-test directory under the system temp dir, removed at the end (kept after a failure when
/// KAIFUKU_KEEP_SCRATCH is set: the images are large).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("kaifuku-judge-{tag}-{}", std::process::id()));
        if dir.exists() {
            unmount_all_under(&dir);
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        unmount_all_under(&self.dir);
        if std::thread::panicking() && std::env::var_os("KAIFUKU_KEEP_SCRATCH").is_some() {
            eprintln!("test failed; its files are kept in {}", self.dir.display());
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "test failed; set KAIFUKU_KEEP_SCRATCH=1 to keep its files ({})",
                self.dir.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// Running programs

pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn both(&self) -> String {
        format!("{}{}", self.text(), self.stderr)
    }
}

fn install_hint(prog: &str) -> &'static str {
    match prog {
        "ntfs-3g" | "ntfscat" | "ntfsls" | "ntfsinfo" | "ntfsfix" => "ntfs-3g",
        "istat" | "blkstat" | "fls" => "sleuthkit",
        "qemu-img" => "qemu-utils",
        "setfattr" | "getfattr" => "attr",
        _ => "its package",
    }
}

pub fn run<I, S>(prog: &str, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                panic!(
                    "required tool `{prog}` is not installed (install {}; setup.sh does)",
                    install_hint(prog)
                )
            }
            panic!("cannot run {prog}: {e}")
        });
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a tool that must succeed; returns its stdout.
pub fn run_ok<I, S>(prog: &str, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let o = run(prog, &args);
    assert_eq!(
        o.code,
        0,
        "{prog} {args:?} failed (exit {}): {}",
        o.code,
        o.both()
    );
    o.stdout
}

pub fn sh(script: &str) -> Out {
    run("sh", ["-c", script])
}

pub fn kaifuku<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let o = run(env!("CARGO_BIN_EXE_kaifuku"), args);
    assert!(
        !o.stderr.contains("panicked"),
        "kaifuku panicked: {}",
        o.stderr
    );
    o
}

/// How many channel files (`drivers/CrowdStrike/C-00000291*.sys`) sleuthkit's `fls` lists as
/// allocated on the volume at sector `offset` of `image` (`extra`: options such as the image
/// type); panics when fls cannot read the volume.
pub fn fls_channel_files(image: &Path, offset: &str, extra: &[&str]) -> usize {
    let mut args: Vec<&OsStr> = ["-r", "-p", "-u"].map(OsStr::new).to_vec();
    args.extend(extra.iter().map(OsStr::new));
    args.extend([OsStr::new("-o"), OsStr::new(offset), image.as_os_str()]);
    let listing = String::from_utf8_lossy(&run_ok("fls", args)).into_owned();
    assert!(listing.contains("CrowdStrike"), "fls reads the volume");
    listing
        .lines()
        .filter(|l| l.contains("drivers/CrowdStrike/C-00000291") && l.ends_with(".sys"))
        .count()
}

/// `qemu-img compare`: the disk of `image` (in qemu's `format`) is identical to the raw `raw`.
pub fn assert_qemu_identical(image: &Path, format: &str, raw: &Path, ctx: &str) {
    let compare = run(
        "qemu-img",
        [
            OsStr::new("compare"),
            OsStr::new("-f"),
            OsStr::new(format),
            OsStr::new("-F"),
            OsStr::new("raw"),
            image.as_os_str(),
            raw.as_os_str(),
        ],
    );
    assert!(
        compare.code == 0 && compare.both().contains("Images are identical"),
        "{ctx}: qemu-img compare {} {}: {}",
        image.display(),
        raw.display(),
        compare.both()
    );
}

/// `kaifuku check IMAGE`: exit 0 when the image is clean.
/// The MFT record of the file or folder at `path` (`/`-separated, from the volume's root) of the
/// bare volume `image`, as ntfs-3g's ntfsinfo finds it.
pub fn ntfsinfo_inode(image: &Path, path: &str) -> u64 {
    let info = run(
        "ntfsinfo",
        ["-F".as_ref(), path.as_ref(), image.as_os_str()],
    );
    info.text()
        .lines()
        .find_map(|l| l.strip_prefix("Dumping Inode "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ntfsinfo -F {path} {}: {}", image.display(), info.both()))
}

pub fn kaifuku_check(image: &Path) -> Out {
    let o = kaifuku([OsStr::new("check"), image.as_os_str()]);
    if o.code == 2
        && (o.stderr.contains("unrecognized subcommand")
            || o.stderr.contains("unexpected argument"))
    {
        panic!("`kaifuku check` does not exist yet: {}", o.stderr);
    }
    o
}

pub fn assert_check_clean(image: &Path, ctx: &str) {
    let o = kaifuku_check(image);
    assert_eq!(
        o.code,
        0,
        "{ctx}: `kaifuku check {}` is not clean (exit {}): {}",
        image.display(),
        o.code,
        o.both()
    );
}

// ---------------------------------------------------------------------------------------------
// ntfs-3g mounts

fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(|s| s.replace("\\040", " ")))
        .collect()
}

fn is_mounted(dir: &Path) -> bool {
    let d = dir.to_string_lossy();
    mount_points().iter().any(|m| *m == d)
}

fn unmount_all_under(dir: &Path) {
    let d = dir.to_string_lossy().to_string();
    for m in mount_points() {
        if m.starts_with(&d) {
            let _ = Command::new("umount").arg(&m).status();
        }
    }
}

/// An ntfs-3g mount of a volume file, run in the foreground so that unmounting waits until
/// ntfs-3g has written everything and exited.
pub struct Mount {
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

pub fn ntfs3g(vol: &Path, dir: &Path, rw: bool) -> Mount {
    std::fs::create_dir_all(dir).unwrap();
    let log = dir.with_extension("ntfs-3g.log");
    let opts = if rw {
        "noatime,no_detach"
    } else {
        "ro,noatime,no_detach"
    };
    let child = Command::new("ntfs-3g")
        .args(["-o", opts])
        .arg(vol)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ntfs-3g (install ntfs-3g; setup.sh does): {e}"));
    let mut m = Mount {
        dir: dir.to_path_buf(),
        child: Some(child),
        log,
    };
    let start = Instant::now();
    loop {
        if is_mounted(dir) {
            return m;
        }
        if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
            m.child = None;
            panic!(
                "ntfs-3g could not mount {} ({st}): {}",
                vol.display(),
                std::fs::read_to_string(&m.log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ntfs-3g mount of {} timed out",
            vol.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Mount {
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel.trim_start_matches('/'))
    }

    pub fn unmount(mut self) {
        self.finish(true);
    }

    fn finish(&mut self, strict: bool) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut ok = false;
        for _ in 0..100 {
            let st = Command::new("umount")
                .arg(&self.dir)
                .stderr(Stdio::null())
                .status();
            if st.map(|s| s.success()).unwrap_or(false) || !is_mounted(&self.dir) {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if strict {
            assert!(ok, "cannot unmount {}", self.dir.display());
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            assert!(
                status.is_some_and(|s| s.success()),
                "ntfs-3g on {} ended badly ({status:?}): {log}",
                self.dir.display()
            );
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// Every file, directory and link below `dir`: "type links size path" lines, and the sha256 of every
/// regular file by path.
pub struct Listing {
    pub entries: Vec<String>,
    pub sha: BTreeMap<String, String>,
}

pub fn listing(dir: &Path) -> Listing {
    let d = dir.to_string_lossy();
    let o = sh(&format!(
        "cd '{d}' && find . -mindepth 1 -printf '%y %n %s %p\\n' | LC_ALL=C sort"
    ));
    assert_eq!(o.code, 0, "listing {d}: {}", o.both());
    let entries: Vec<String> = o.text().lines().map(|l| l.to_string()).collect();
    let o = sh(&format!(
        "cd '{d}' && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum"
    ));
    assert_eq!(o.code, 0, "hashing {d}: {}", o.both());
    let mut sha = BTreeMap::new();
    for l in o.text().lines() {
        let (h, p) = l
            .split_once("  ")
            .unwrap_or_else(|| panic!("sha256sum line {l}"));
        let h = h.trim_start_matches('\\');
        sha.insert(p.trim_start_matches("./").to_string(), h.to_string());
    }
    Listing { entries, sha }
}

// ---------------------------------------------------------------------------------------------
// Sparse copies and byte diffs

const CHUNK: usize = 1 << 20;

/// Data regions of `f` within [start, end): (offset, end).
pub fn data_regions(f: &File, start: u64, end: u64) -> Vec<(u64, u64)> {
    use nix::unistd::{lseek, Whence};
    let mut v = Vec::new();
    let mut pos = start;
    while pos < end {
        let data = match lseek(f, pos as i64, Whence::SeekData) {
            Ok(d) => d as u64,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(_) => {
                v.push((pos, end));
                break;
            }
        };
        if data >= end {
            break;
        }
        let hole = match lseek(f, data as i64, Whence::SeekHole) {
            Ok(h) => (h as u64).min(end),
            Err(_) => end,
        };
        v.push((data, hole));
        pos = hole.max(data + 1);
    }
    v
}

fn merge_regions(mut a: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    a.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in a {
        match out.last_mut() {
            Some(l) if s <= l.1 => l.1 = l.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Copies `len` bytes of `src` at `src_off` into `dst` (created with size `len`), keeping holes.
pub fn extract(src: &Path, src_off: u64, len: u64, dst: &Path) {
    let s = File::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let d = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)
        .unwrap();
    d.set_len(len).unwrap();
    let mut buf = vec![0u8; CHUNK];
    for (a, b) in data_regions(&s, src_off, src_off + len) {
        let mut at = a;
        while at < b {
            let n = ((b - at) as usize).min(CHUNK);
            s.read_exact_at(&mut buf[..n], at).unwrap();
            if buf[..n].iter().any(|x| *x != 0) {
                d.write_all_at(&buf[..n], at - src_off).unwrap();
            }
            at += n as u64;
        }
    }
}

pub fn sparse_copy(src: &Path, dst: &Path) {
    let len = std::fs::metadata(src).unwrap().len();
    extract(src, 0, len, dst);
}

/// Makes `image[off..off+len(vol)]` equal to `vol`.
pub fn implant(vol: &Path, image: &Path, off: u64) {
    let v = File::open(vol).unwrap();
    let i = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let len = v.metadata().unwrap().len();
    let regions = merge_regions(
        data_regions(&v, 0, len)
            .into_iter()
            .chain(
                data_regions(&i, off, off + len)
                    .into_iter()
                    .map(|(a, b)| (a - off, b - off)),
            )
            .collect(),
    );
    let mut a = vec![0u8; CHUNK];
    let mut b = vec![0u8; CHUNK];
    for (s, e) in regions {
        let mut at = s;
        while at < e {
            let n = ((e - at) as usize).min(CHUNK);
            v.read_exact_at(&mut a[..n], at).unwrap();
            i.read_exact_at(&mut b[..n], off + at).unwrap();
            if a[..n] != b[..n] {
                i.write_all_at(&a[..n], off + at).unwrap();
            }
            at += n as u64;
        }
    }
}

/// Byte ranges [start, end) where `a` and `b` differ; bytes past the end of the shorter file count
/// as different.
pub fn diff_files(a: &Path, b: &Path) -> Vec<(u64, u64)> {
    let fa = File::open(a).unwrap();
    let fb = File::open(b).unwrap();
    let la = fa.metadata().unwrap().len();
    let lb = fb.metadata().unwrap().len();
    let common = la.min(lb);
    let regions = merge_regions(
        data_regions(&fa, 0, common)
            .into_iter()
            .chain(data_regions(&fb, 0, common))
            .collect(),
    );
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut push = |s: u64, e: u64| match out.last_mut() {
        Some(l) if l.1 == s => l.1 = e,
        _ => out.push((s, e)),
    };
    let mut x = vec![0u8; CHUNK];
    let mut y = vec![0u8; CHUNK];
    for (s, e) in regions {
        let mut at = s;
        while at < e {
            let n = ((e - at) as usize).min(CHUNK);
            fa.read_exact_at(&mut x[..n], at).unwrap();
            fb.read_exact_at(&mut y[..n], at).unwrap();
            if x[..n] != y[..n] {
                for k in (0..n).step_by(512) {
                    let ke = (k + 512).min(n);
                    if x[k..ke] == y[k..ke] {
                        continue;
                    }
                    for j in k..ke {
                        if x[j] != y[j] {
                            push(at + j as u64, at + j as u64 + 1);
                        }
                    }
                }
            }
            at += n as u64;
        }
    }
    if la != lb {
        push(common, la.max(lb));
    }
    out
}

pub fn read_at(p: &Path, off: u64, len: usize) -> Vec<u8> {
    let f = File::open(p).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, off).unwrap();
    b
}

pub fn write_at(p: &Path, off: u64, bytes: &[u8]) {
    let f = OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

pub fn sha256(p: &Path) -> String {
    let o = run_ok("sha256sum", [p]);
    String::from_utf8_lossy(&o)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// A minimal NTFS reader (independent of the crates under test)

pub fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
pub fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
pub fn u64le(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Undoes the update sequence array (512-byte stride) of a FILE/INDX/RSTR record.
pub fn unfixup(b: &mut [u8]) -> Result<(), String> {
    let uo = u16le(b, 4) as usize;
    let uc = u16le(b, 6) as usize;
    if uc == 0 || uo + 2 * uc > b.len() {
        return Err(format!("bad update sequence array ({uo}, {uc})"));
    }
    let usn = [b[uo], b[uo + 1]];
    for i in 1..uc {
        let end = i * 512;
        if end > b.len() {
            break;
        }
        if b[end - 2..end] != usn {
            return Err(format!("torn record: stride {i} does not end in the USN"));
        }
        b[end - 2] = b[uo + 2 * i];
        b[end - 1] = b[uo + 2 * i + 1];
    }
    Ok(())
}

/// Whether every 512-byte stride already ends in its saved word (and not all in the USN).
pub fn already_fixed_up(b: &[u8]) -> bool {
    let uo = u16le(b, 4) as usize;
    let uc = u16le(b, 6) as usize;
    if uc < 2 || uo + 2 * uc > b.len() {
        return false;
    }
    let usn = [b[uo], b[uo + 1]];
    let strides: Vec<usize> = (1..uc).filter(|i| i * 512 <= b.len()).collect();
    let saved = strides
        .iter()
        .all(|i| b[i * 512 - 2..i * 512] == b[uo + 2 * i..uo + 2 * i + 2]);
    let all_usn = strides.iter().all(|i| b[i * 512 - 2..i * 512] == usn);
    saved && !all_usn
}

/// Applies the update sequence array again (same USN).
pub fn refixup(b: &mut [u8]) {
    let uo = u16le(b, 4) as usize;
    let uc = u16le(b, 6) as usize;
    let usn = [b[uo], b[uo + 1]];
    for i in 1..uc {
        let end = i * 512;
        if end > b.len() {
            break;
        }
        b[uo + 2 * i] = b[end - 2];
        b[uo + 2 * i + 1] = b[end - 1];
        b[end - 2] = usn[0];
        b[end - 1] = usn[1];
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub vcn: u64,
    pub lcn: Option<u64>,
    pub len: u64,
}

pub fn decode_runs(b: &[u8], first_vcn: u64) -> Vec<Run> {
    let mut v = Vec::new();
    let mut i = 0;
    let mut vcn = first_vcn;
    let mut lcn: i64 = 0;
    while i < b.len() && b[i] != 0 {
        let ls = (b[i] & 0xF) as usize;
        let os = (b[i] >> 4) as usize;
        i += 1;
        let mut len = 0u64;
        for k in 0..ls {
            len |= (b[i + k] as u64) << (8 * k);
        }
        i += ls;
        let run_lcn = if os == 0 {
            None
        } else {
            let mut d: i64 = 0;
            for k in 0..os {
                d |= (b[i + k] as i64) << (8 * k);
            }
            if b[i + os - 1] & 0x80 != 0 && os < 8 {
                d -= 1i64 << (8 * os);
            }
            lcn += d;
            Some(lcn as u64)
        };
        i += os;
        v.push(Run {
            vcn,
            lcn: run_lcn,
            len,
        });
        vcn += len;
    }
    v
}

#[derive(Debug, Clone)]
pub struct Attr {
    /// Offset of the attribute record in the (fixed-up) file record.
    pub offset: usize,
    pub type_code: u32,
    pub name: String,
    pub non_resident: bool,
    /// The whole attribute record.
    pub raw: Vec<u8>,
    /// Resident value.
    pub value: Vec<u8>,
    pub runs: Vec<Run>,
    pub data_size: u64,
}

#[derive(Debug, Clone)]
pub struct Rec {
    pub number: u64,
    pub b: Vec<u8>,
}

impl Rec {
    pub fn seq(&self) -> u16 {
        u16le(&self.b, 0x10)
    }
    pub fn links(&self) -> u16 {
        u16le(&self.b, 0x12)
    }
    pub fn flags(&self) -> u16 {
        u16le(&self.b, 0x16)
    }
    pub fn in_use(&self) -> bool {
        self.flags() & 1 != 0
    }
    pub fn bytes_in_use(&self) -> u32 {
        u32le(&self.b, 0x18)
    }
    pub fn attrs(&self) -> Vec<Attr> {
        let b = &self.b;
        let mut v = Vec::new();
        let mut o = u16le(b, 0x14) as usize;
        while o + 8 <= b.len() {
            let t = u32le(b, o);
            if t == 0xFFFF_FFFF {
                break;
            }
            let l = u32le(b, o + 4) as usize;
            assert!(
                l >= 0x18 && o + l <= b.len(),
                "record {}: attribute length {l} at {o}",
                self.number
            );
            let raw = b[o..o + l].to_vec();
            let nl = raw[9] as usize;
            let no = u16le(&raw, 10) as usize;
            let name = String::from_utf16_lossy(
                &(0..nl)
                    .map(|k| u16le(&raw, no + 2 * k))
                    .collect::<Vec<u16>>(),
            );
            let non_resident = raw[8] != 0;
            let (value, runs, data_size) = if non_resident {
                let mp = u16le(&raw, 0x20) as usize;
                (
                    Vec::new(),
                    decode_runs(&raw[mp..], u64le(&raw, 0x10)),
                    u64le(&raw, 0x30),
                )
            } else {
                let vl = u32le(&raw, 0x10) as usize;
                let vo = u16le(&raw, 0x14) as usize;
                (raw[vo..vo + vl].to_vec(), Vec::new(), vl as u64)
            };
            v.push(Attr {
                offset: o,
                type_code: t,
                name,
                non_resident,
                raw,
                value,
                runs,
                data_size,
            });
            o += l;
        }
        v
    }
    pub fn attr(&self, t: u32, name: &str) -> Option<Attr> {
        self.attrs()
            .into_iter()
            .find(|a| a.type_code == t && a.name == name)
    }
    /// `$FILE_NAME` values: (parent record, namespace, name).
    pub fn names(&self) -> Vec<(u64, u8, String)> {
        self.attrs()
            .iter()
            .filter(|a| a.type_code == 0x30)
            .map(|a| {
                let v = &a.value;
                let n = v[0x40] as usize;
                let name = String::from_utf16_lossy(
                    &(0..n).map(|k| u16le(v, 0x42 + 2 * k)).collect::<Vec<u16>>(),
                );
                (u64le(v, 0) & 0xFFFF_FFFF_FFFF, v[0x41], name)
            })
            .collect()
    }
}

/// A bare NTFS volume file, read with our own minimal code.
pub struct Vol {
    pub path: PathBuf,
    f: File,
    pub sector: u64,
    pub cluster: u64,
    pub record_size: u64,
    pub block_size: u64,
    pub mft_lcn: u64,
    pub mirr_lcn: u64,
    mft_runs: Vec<Run>,
}

impl Vol {
    pub fn open(path: &Path) -> Vol {
        let f = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut boot = [0u8; 512];
        f.read_exact_at(&mut boot, 0).unwrap();
        assert_eq!(&boot[3..11], b"NTFS    ", "{} is not NTFS", path.display());
        let sector = u16le(&boot, 0x0B) as u64;
        let spc = boot[0x0D];
        let spc = if spc <= 0x80 {
            spc as u64
        } else {
            1u64 << (256 - spc as u32)
        };
        let cluster = sector * spc;
        let size_of = |v: u8| -> u64 {
            let s = v as i8;
            if s > 0 {
                s as u64 * cluster
            } else {
                1u64 << (-(s as i32))
            }
        };
        let record_size = size_of(boot[0x40]);
        let block_size = size_of(boot[0x44]);
        let mft_lcn = u64le(&boot, 0x30);
        let mirr_lcn = u64le(&boot, 0x38);
        let mut v = Vol {
            path: path.to_path_buf(),
            f,
            sector,
            cluster,
            record_size,
            block_size,
            mft_lcn,
            mirr_lcn,
            mft_runs: vec![Run {
                vcn: 0,
                lcn: Some(mft_lcn),
                len: 1 + record_size / cluster,
            }],
        };
        let r0 = v.record(0);
        v.mft_runs = r0.attr(0x80, "").expect("$MFT has $DATA").runs;
        v
    }

    pub fn read(&self, off: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.f.read_exact_at(&mut b, off).unwrap();
        b
    }

    /// Volume byte ranges of `len` bytes at `offset` of a stream with these runs.
    pub fn map(&self, runs: &[Run], offset: u64, len: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut pos = offset;
        let end = offset + len;
        while pos < end {
            let vcn = pos / self.cluster;
            let r = runs
                .iter()
                .find(|r| vcn >= r.vcn && vcn < r.vcn + r.len)
                .unwrap_or_else(|| panic!("{}: offset {pos} not mapped", self.path.display()));
            let run_end = (r.vcn + r.len) * self.cluster;
            let n = (end.min(run_end)) - pos;
            if let Some(lcn) = r.lcn {
                out.push((lcn * self.cluster + (pos - r.vcn * self.cluster), n));
            }
            pos += n;
        }
        out
    }

    pub fn runs_extent(&self, runs: &[Run]) -> Vec<(u64, u64)> {
        runs.iter()
            .filter_map(|r| r.lcn.map(|l| (l * self.cluster, r.len * self.cluster)))
            .collect()
    }

    pub fn record_location(&self, n: u64) -> Vec<(u64, u64)> {
        self.map(&self.mft_runs, n * self.record_size, self.record_size)
    }

    /// Where `$MFTMirr` keeps record `n`, if it mirrors it.
    pub fn mirror_location(&self, n: u64) -> Option<Vec<(u64, u64)>> {
        let m = self.record(1);
        let a = m.attr(0x80, "")?;
        if (n + 1) * self.record_size > a.data_size {
            return None;
        }
        Some(self.map(&a.runs, n * self.record_size, self.record_size))
    }

    pub fn record_raw(&self, n: u64) -> Vec<u8> {
        let mut b = Vec::new();
        for (o, l) in self.record_location(n) {
            b.extend(self.read(o, l as usize));
        }
        b
    }

    pub fn record(&self, n: u64) -> Rec {
        let mut b = self.record_raw(n);
        assert_eq!(
            &b[0..4],
            b"FILE",
            "{}: record {n} has no FILE signature",
            self.path.display()
        );
        unfixup(&mut b).unwrap_or_else(|e| panic!("{}: record {n}: {e}", self.path.display()));
        Rec { number: n, b }
    }

    pub fn read_runs(&self, runs: &[Run], size: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(size as usize);
        for (o, l) in self.map_with_holes(runs, 0, size) {
            match o {
                Some(o) => out.extend(self.read(o, l as usize)),
                None => out.extend(std::iter::repeat_n(0u8, l as usize)),
            }
        }
        out
    }

    fn map_with_holes(&self, runs: &[Run], offset: u64, len: u64) -> Vec<(Option<u64>, u64)> {
        let mut out = Vec::new();
        let mut pos = offset;
        let end = offset + len;
        while pos < end {
            let vcn = pos / self.cluster;
            let r = runs
                .iter()
                .find(|r| vcn >= r.vcn && vcn < r.vcn + r.len)
                .unwrap();
            let run_end = (r.vcn + r.len) * self.cluster;
            let n = end.min(run_end) - pos;
            out.push((
                r.lcn
                    .map(|l| l * self.cluster + (pos - r.vcn * self.cluster)),
                n,
            ));
            pos += n;
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Index B-trees, read with ntfscat

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Bytes 0..8: the file reference ($I30) or data offset/length (view indexes).
    pub head: Vec<u8>,
    pub length: u16,
    pub flags: u16,
    pub key: Vec<u8>,
    /// View indexes: the data bytes.
    pub data: Vec<u8>,
    pub child: Option<u64>,
}

impl Entry {
    pub fn is_end(&self) -> bool {
        self.flags & 2 != 0
    }
    pub fn file_record(&self) -> u64 {
        u64le(&self.head, 0) & 0xFFFF_FFFF_FFFF
    }
    /// For `$I30` keys: (namespace, name).
    pub fn file_name(&self) -> Option<(u8, String)> {
        if self.is_end() || self.key.len() < 0x42 {
            return None;
        }
        let n = self.key[0x40] as usize;
        if self.key.len() < 0x42 + 2 * n {
            return None;
        }
        let name = String::from_utf16_lossy(
            &(0..n)
                .map(|k| u16le(&self.key, 0x42 + 2 * k))
                .collect::<Vec<u16>>(),
        );
        Some((self.key[0x41], name))
    }
    pub fn show(&self, i30: bool) -> String {
        let child = self.child.map(|c| format!("->{c}")).unwrap_or_default();
        if self.is_end() {
            return format!("END{child}");
        }
        if i30 {
            if let Some((ns, name)) = self.file_name() {
                return format!("{name}[ns{ns} #{}]{child}", self.file_record());
            }
        }
        let hex: String = self.key.iter().map(|b| format!("{b:02x}")).collect();
        format!("key {hex}{child}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// INDX blocks: the VCN the block says it has.
    pub own_vcn: Option<u64>,
    pub index_length: u32,
    pub allocated: u32,
    pub flags: u8,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub struct IndexDump {
    pub name: String,
    /// The 16 bytes before the root's index header (type, collation, block size, clusters/block).
    pub root_head: Vec<u8>,
    pub root: Node,
    pub block_size: u64,
    /// Size of a VCN in bytes for this index.
    pub vcn_unit: u64,
    pub alloc_len: Option<u64>,
    pub bitmap: Option<Vec<u8>>,
    /// In-use blocks by block number.
    pub blocks: BTreeMap<u64, Node>,
}

fn parse_entries(b: &[u8], start: usize, end: usize, i30: bool, ctx: &str) -> Vec<Entry> {
    let mut v = Vec::new();
    let mut o = start;
    loop {
        assert!(o + 16 <= end, "{ctx}: entries run past index_length");
        let length = u16le(b, o + 8);
        let key_len = u16le(b, o + 10) as usize;
        let flags = u16le(b, o + 12);
        assert!(
            length >= 16 && o + length as usize <= end,
            "{ctx}: bad entry length {length} at {o}"
        );
        let e_end = o + length as usize;
        let child = if flags & 1 != 0 {
            Some(u64le(b, e_end - 8))
        } else {
            None
        };
        let key = b[o + 16..o + 16 + key_len].to_vec();
        let data = if !i30 && flags & 2 == 0 {
            let doff = u16le(b, o) as usize;
            let dlen = u16le(b, o + 2) as usize;
            b[o + doff..o + doff + dlen].to_vec()
        } else {
            Vec::new()
        };
        let e = Entry {
            head: b[o..o + 8].to_vec(),
            length,
            flags,
            key,
            data,
            child,
        };
        let end_entry = e.is_end();
        v.push(e);
        o = e_end;
        if end_entry {
            break;
        }
    }
    v
}

fn parse_node(b: &[u8], hdr: usize, own_vcn: Option<u64>, i30: bool, ctx: &str) -> Node {
    let eo = u32le(b, hdr) as usize;
    let il = u32le(b, hdr + 4);
    let al = u32le(b, hdr + 8);
    let flags = b[hdr + 12];
    assert!(
        hdr + il as usize <= b.len(),
        "{ctx}: index_length {il} beyond the node"
    );
    Node {
        own_vcn,
        index_length: il,
        allocated: al,
        flags,
        entries: parse_entries(b, hdr + eo, hdr + il as usize, i30, ctx),
    }
}

fn ntfscat_attr(vol: &Path, inode: u64, ty: &str, name: &str) -> Option<Vec<u8>> {
    let o = run(
        "ntfscat",
        [
            OsStr::new("-f"),
            OsStr::new("-i"),
            OsStr::new(&inode.to_string()),
            OsStr::new("-a"),
            OsStr::new(ty),
            OsStr::new("-n"),
            OsStr::new(name),
            vol.as_os_str(),
        ],
    );
    if o.code != 0 {
        assert!(
            o.stderr.contains("Cannot find attribute"),
            "ntfscat -i {inode} -a {ty} -n {name} {}: {}",
            vol.display(),
            o.stderr
        );
        return None;
    }
    Some(o.stdout)
}

/// Reads index `name` of file `inode` with ntfscat (root, allocation, bitmap) and parses it.
pub fn dump_index(vol: &Path, inode: u64, name: &str) -> IndexDump {
    let ctx = format!("{} inode {inode} index {name}", vol.display());
    let i30 = name == "$I30";
    let root =
        ntfscat_attr(vol, inode, "0x90", name).unwrap_or_else(|| panic!("{ctx}: no $INDEX_ROOT"));
    let block_size = u32le(&root, 8) as u64;
    let cluster = Vol::open(vol).cluster;
    let vcn_unit = if cluster <= block_size { cluster } else { 512 };
    let root_node = parse_node(&root, 0x10, None, i30, &format!("{ctx} root"));
    let alloc = ntfscat_attr(vol, inode, "0xA0", name);
    let bitmap = ntfscat_attr(vol, inode, "0xB0", name);
    let mut blocks = BTreeMap::new();
    if let (Some(a), Some(bm)) = (&alloc, &bitmap) {
        let n = a.len() as u64 / block_size;
        for k in 0..n {
            if bm
                .get((k / 8) as usize)
                .is_none_or(|x| x & (1 << (k % 8)) == 0)
            {
                continue;
            }
            let mut b = a[(k * block_size) as usize..((k + 1) * block_size) as usize].to_vec();
            let bctx = format!("{ctx} block {k}");
            assert_eq!(&b[0..4], b"INDX", "{bctx}: in use but no INDX signature");
            // ntfscat returns index blocks with the fixups already applied: then every stride ends
            // in its saved word rather than in the USN.
            if !already_fixed_up(&b) {
                unfixup(&mut b).unwrap_or_else(|e| panic!("{bctx}: {e}"));
            }
            let own = u64le(&b, 0x10);
            blocks.insert(k, parse_node(&b, 0x18, Some(own), i30, &bctx));
        }
    }
    IndexDump {
        name: name.to_string(),
        root_head: root[0..16].to_vec(),
        root: root_node,
        block_size,
        vcn_unit,
        alloc_len: alloc.map(|a| a.len() as u64),
        bitmap,
        blocks,
    }
}

/// A node of a B-tree walk: where it is and its entries.
#[derive(Debug, Clone)]
pub struct WalkNode {
    /// None = the root, Some(block number).
    pub block: Option<u64>,
    pub depth: usize,
    pub leaf: bool,
    /// The parent node and the index of the entry pointing here.
    pub parent: Option<(Option<u64>, usize)>,
    pub entries: Vec<Entry>,
}

impl IndexDump {
    pub fn block_of_vcn(&self, vcn: u64) -> u64 {
        vcn * self.vcn_unit / self.block_size
    }

    pub fn walk(&self) -> Vec<WalkNode> {
        let mut out = Vec::new();
        self.walk_node(None, 0, None, &mut out);
        out
    }

    fn walk_node(
        &self,
        block: Option<u64>,
        depth: usize,
        parent: Option<(Option<u64>, usize)>,
        out: &mut Vec<WalkNode>,
    ) {
        let node = match block {
            None => &self.root,
            Some(k) => self.blocks.get(&k).unwrap_or_else(|| {
                panic!(
                    "index {}: block {k} is referenced but not in use",
                    self.name
                )
            }),
        };
        let leaf = node.entries.iter().all(|e| e.child.is_none());
        out.push(WalkNode {
            block,
            depth,
            leaf,
            parent,
            entries: node.entries.clone(),
        });
        for (i, e) in node.entries.iter().enumerate() {
            if let Some(c) = e.child {
                self.walk_node(Some(self.block_of_vcn(c)), depth + 1, Some((block, i)), out);
            }
        }
    }

    /// The tree as text, one node a line.
    pub fn show(&self) -> String {
        let i30 = self.name == "$I30";
        let mut s = String::new();
        for n in self.walk() {
            let id = match n.block {
                None => "root".to_string(),
                Some(k) => format!("block {k}"),
            };
            let names: Vec<String> = n.entries.iter().map(|e| e.show(i30)).collect();
            s.push_str(&format!(
                "{}{id}: {}\n",
                "  ".repeat(n.depth),
                names.join(", ")
            ));
        }
        s
    }

    /// Clears the duplicated information (times, sizes) in `$I30` keys of entries naming these
    /// records: ntfs-3g refreshes it, NTFS and kaifuku need not.
    pub fn mask_dup_info(&mut self, records: &[u64]) {
        if self.name != "$I30" {
            return;
        }
        let mask = |n: &mut Node| {
            for e in &mut n.entries {
                if !e.is_end() && records.contains(&e.file_record()) && e.key.len() >= 0x38 {
                    e.key[0x08..0x38].fill(0);
                }
            }
        };
        mask(&mut self.root);
        for n in self.blocks.values_mut() {
            mask(n);
        }
    }

    /// Names of all `$I30` entries with their namespace, in tree order.
    pub fn names(&self) -> Vec<(u8, String, u64)> {
        let mut v = Vec::new();
        for n in self.walk() {
            for e in &n.entries {
                if let Some((ns, name)) = e.file_name() {
                    v.push((ns, name, e.file_record()));
                }
            }
        }
        v
    }
}

/// Compares two index dumps node by node; returns a description of the first differences.
pub fn index_differences(a: &IndexDump, b: &IndexDump) -> Vec<String> {
    let mut d = Vec::new();
    if a.root_head != b.root_head {
        d.push("root header (type/collation/block size) differs".into());
    }
    let cmp_node = |what: &str, x: &Node, y: &Node, d: &mut Vec<String>| {
        if x.index_length != y.index_length
            || x.allocated != y.allocated
            || x.flags != y.flags
            || x.own_vcn != y.own_vcn
        {
            d.push(format!(
                "{what}: header index_length/allocated/flags/vcn {}/{}/{}/{:?} vs {}/{}/{}/{:?}",
                x.index_length,
                x.allocated,
                x.flags,
                x.own_vcn,
                y.index_length,
                y.allocated,
                y.flags,
                y.own_vcn
            ));
        }
        if x.entries.len() != y.entries.len() {
            d.push(format!(
                "{what}: {} vs {} entries",
                x.entries.len(),
                y.entries.len()
            ));
        }
        for (i, (e, f)) in x.entries.iter().zip(&y.entries).enumerate() {
            if e != f {
                d.push(format!(
                    "{what}: entry {i} differs: {} vs {}",
                    e.show(a.name == "$I30"),
                    f.show(a.name == "$I30")
                ));
                break;
            }
        }
    };
    cmp_node("root", &a.root, &b.root, &mut d);
    if a.alloc_len != b.alloc_len {
        d.push(format!(
            "$INDEX_ALLOCATION length {:?} vs {:?}",
            a.alloc_len, b.alloc_len
        ));
    }
    if a.bitmap != b.bitmap {
        d.push(format!(
            "index $BITMAP {:02x?} vs {:02x?}",
            a.bitmap, b.bitmap
        ));
    }
    let keys: std::collections::BTreeSet<u64> =
        a.blocks.keys().chain(b.blocks.keys()).copied().collect();
    for k in keys {
        match (a.blocks.get(&k), b.blocks.get(&k)) {
            (Some(x), Some(y)) => cmp_node(&format!("block {k}"), x, y, &mut d),
            (x, y) => d.push(format!(
                "block {k} in use: {} vs {}",
                x.is_some(),
                y.is_some()
            )),
        }
    }
    d
}

// ---------------------------------------------------------------------------------------------
// Sleuthkit

/// What istat says about a record.
#[derive(Debug, Clone)]
pub struct Istat {
    pub sequence: u16,
    pub allocated: bool,
    pub links: u16,
    /// Clusters of every non-resident attribute.
    pub clusters: Vec<u64>,
    pub text: String,
}

pub fn tsk_args(image: &Path, sector_offset: u64, sector_size: u64) -> Vec<String> {
    let mut v = vec!["-o".to_string(), sector_offset.to_string()];
    if sector_size != 512 {
        v.push("-b".into());
        v.push(sector_size.to_string());
    }
    v.push(image.to_string_lossy().into_owned());
    v
}

pub fn istat(tsk: &[String], record: u64) -> Istat {
    let mut args = tsk.to_vec();
    args.push(record.to_string());
    let text = String::from_utf8_lossy(&run_ok("istat", &args)).into_owned();
    let mut sequence = None;
    let mut allocated = None;
    let mut links = None;
    let mut clusters = Vec::new();
    let mut in_runs = false;
    for l in text.lines() {
        if l.starts_with("Entry:") && sequence.is_none() {
            if let Some(p) = l.find("Sequence:") {
                sequence = l[p + 9..].trim().parse().ok();
            }
        }
        if l == "Allocated File" {
            allocated = Some(true);
        }
        if l == "Not Allocated File" {
            allocated = Some(false);
        }
        if let Some(x) = l.strip_prefix("Links:") {
            links = x.trim().parse().ok();
        }
        if l.starts_with("Type: ") {
            in_runs = l.contains("Non-Resident");
            continue;
        }
        if in_runs {
            if l.trim().is_empty() {
                in_runs = false;
                continue;
            }
            for w in l.split_whitespace() {
                // istat prints 0 for sparse (and compressed-away) clusters.
                if let Ok(c) = w.parse::<u64>() {
                    if c != 0 {
                        clusters.push(c);
                    }
                }
            }
        }
    }
    Istat {
        sequence: sequence.unwrap_or_else(|| panic!("istat {record}: no sequence: {text}")),
        allocated: allocated
            .unwrap_or_else(|| panic!("istat {record}: no allocation state: {text}")),
        links: links.unwrap_or(0),
        clusters,
        text,
    }
}

pub fn blkstat_allocated(tsk: &[String], cluster: u64) -> bool {
    let mut args = tsk.to_vec();
    args.push(cluster.to_string());
    let text = String::from_utf8_lossy(&run_ok("blkstat", &args)).into_owned();
    if text.contains("Not Allocated") {
        false
    } else if text.contains("Allocated") {
        true
    } else {
        panic!("blkstat {cluster}: {text}")
    }
}

/// `fls -r -p` lines: (deleted, type, record, path).
pub fn fls(tsk: &[String]) -> Vec<(bool, String, u64, String)> {
    let mut args = vec!["-r".to_string(), "-p".to_string()];
    args.extend(tsk.iter().cloned());
    let text = String::from_utf8_lossy(&run_ok("fls", &args)).into_owned();
    let mut v = Vec::new();
    for l in text.lines() {
        let Some((head, path)) = l.split_once(":\t") else {
            continue;
        };
        let deleted = head.contains(" * ");
        let mut parts = head.split_whitespace();
        let ty = parts.next().unwrap_or("").to_string();
        let inode = head
            .split_whitespace()
            .last()
            .and_then(|x| x.split('-').next())
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        v.push((deleted, ty, inode, path.to_string()));
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Crashed volumes for the journal tests

/// A script of the repository's `tests/` directory.
pub fn repo_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests")
        .join(name)
}

/// Runs `tests/journal-replay.py` (the test-side journal writer, judged by ntfsrecover) into
/// `scratch`; `None`, after saying so under the test's name, when it must be skipped (exit 77:
/// a tool or FUSE is missing).
pub fn crashed_journal_volumes(scratch: &Scratch, test: &str) -> Option<PathBuf> {
    let dir = scratch.path("volumes");
    let out = run(
        "python3",
        [
            repo_script("journal-replay.py").as_os_str(),
            dir.as_os_str(),
        ],
    );
    if out.code == 77 {
        eprintln!("SKIPPED {test}: {}", out.both().trim());
        return None;
    }
    assert_eq!(
        out.code,
        0,
        "the oracle failed: ntfsrecover's replay of the writer's journal is not POST:\n{}",
        out.both()
    );
    Some(dir)
}

/// Runs `tests/make-hive-fixtures.py` (hives made by hivex, on volumes filled by ntfs-3g) into
/// `scratch`; `None`, after saying so under the test's name, when it must be skipped (exit 77:
/// no root, FUSE, ntfs-3g or hivex).
pub fn hive_volumes(scratch: &Scratch, test: &str) -> Option<PathBuf> {
    let dir = scratch.path("hives");
    let out = run(
        "python3",
        [
            repo_script("make-hive-fixtures.py").as_os_str(),
            dir.as_os_str(),
        ],
    );
    if out.code == 77 {
        eprintln!("SKIPPED {test}: {}", out.both().trim());
        return None;
    }
    assert_eq!(out.code, 0, "make-hive-fixtures.py failed:\n{}", out.both());
    Some(dir)
}
