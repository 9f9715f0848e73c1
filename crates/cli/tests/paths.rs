//! Paths: kaifuku never destroys what the user pointed at. The image, the output and the undo file
//! may not be one file however they are spelled; device nodes, FIFOs and sockets are refused (a
//! block device output is written in place); a FIFO is never opened for reading; a closed or full
//! stdout is an error, not a panic; a failed run leaves no undo file and no temporary file; and a
//! damaged or foreign undo file is refused without touching the image.
//!
//! Some cases need root (loop devices, mknod, a small tmpfs, chattr); the test suite runs as root.

mod common;

use common::{
    assert_check_clean, fixtures, kaifuku, read_at, run, run_ok, sh, sha256, sparse_copy, write_at,
    Out, Scratch,
};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "cs-rootonly.raw";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kaifuku")
}

/// Runs kaifuku with a deadline: a hang (a FIFO opened for reading, say) fails the test instead
/// of blocking it.
fn kaifuku_within<I, S>(secs: u64, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kaifuku did not finish within {secs} s (it hangs)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = Out {
        code: status.code().unwrap_or(-1),
        stdout: t1.join().unwrap(),
        stderr: String::from_utf8_lossy(&t2.join().unwrap()).into_owned(),
    };
    assert!(
        !o.stderr.contains("panicked"),
        "kaifuku panicked: {}",
        o.stderr
    );
    o
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

/// A fresh copy of the test image in the scratch directory.
fn image_copy(s: &Scratch, name: &str) -> PathBuf {
    let img = s.path(name);
    sparse_copy(&fixtures().join(IMAGE), &img);
    img
}

/// Names in a directory (sorted), to prove nothing was left behind.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn assert_refused(o: &Out, words: &str, ctx: &str) {
    assert_eq!(o.code, 3, "{ctx}: want exit 3: {}", o.both());
    assert!(
        o.stderr.contains(words),
        "{ctx}: the message should say {words:?}: {}",
        o.stderr
    );
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Overlapping paths

#[test]
fn undo_equal_to_the_image_is_refused() {
    let s = Scratch::new("paths-undo-image");
    let img = image_copy(&s, "disk.raw");
    let before = sha256(&img);
    let out = s.path("out.raw");
    let link = s.path("link.raw");
    std::os::unix::fs::symlink(&img, &link).unwrap();
    let hard = s.path("hard.raw");
    fs::hard_link(&img, &hard).unwrap();
    for undo in [&img, &link, &hard] {
        let o = kaifuku(["fix", p(&img), "-o", p(&out), "--undo", p(undo)]);
        assert_refused(
            &o,
            "same file",
            &format!("-o with --undo {}", undo.display()),
        );
        let o = kaifuku(["fix", "--in-place", p(&img), "--undo", p(undo)]);
        assert_refused(
            &o,
            "same file",
            &format!("--in-place --undo {}", undo.display()),
        );
        assert_eq!(sha256(&img), before, "the image changed");
        assert!(!out.exists(), "an output was written");
    }
    // Through /proc/self/fd: the shell opens the image as fd 3 and kaifuku inherits it.
    let o = run(
        "sh",
        [
            "-c",
            "exec 3<\"$1\"; exec \"$2\" fix --in-place \"$1\" --undo /proc/self/fd/3",
            "sh",
            p(&img),
            bin(),
        ],
    );
    assert_refused(&o, "same file", "--undo /proc/self/fd/3");
    assert_eq!(sha256(&img), before, "the image changed");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        names(&s.dir),
        ["disk.raw", "hard.raw", "link.raw"],
        "files left behind"
    );
}

#[test]
fn undo_equal_to_the_output_is_refused() {
    let s = Scratch::new("paths-undo-out");
    let img = image_copy(&s, "disk.raw");
    let before = sha256(&img);
    let out = s.path("out.raw");
    fs::create_dir(s.path("sub")).unwrap();
    let out_other_spelling = s.path("sub/../out.raw");
    // Both new.
    let o = kaifuku(["fix", p(&img), "-o", p(&out), "--undo", p(&out)]);
    assert_refused(&o, "same file", "new -o and --undo");
    let o = kaifuku([
        "fix",
        p(&img),
        "-o",
        p(&out),
        "--undo",
        p(&out_other_spelling),
    ]);
    assert_refused(&o, "same file", "new -o and --undo spelled differently");
    assert!(!out.exists());
    // The output exists already (a regular file that -o may replace).
    fs::write(&out, b"keep me").unwrap();
    let o = kaifuku(["fix", p(&img), "-o", p(&out), "--undo", p(&out)]);
    assert_refused(&o, "same file", "existing -o and --undo");
    assert_eq!(fs::read(&out).unwrap(), b"keep me");
    assert_eq!(sha256(&img), before);
    assert_eq!(names(&s.dir), ["disk.raw", "out.raw", "sub"]);
}

#[test]
fn output_equal_to_the_image_is_refused_however_spelled() {
    let s = Scratch::new("paths-out-image");
    let img = image_copy(&s, "disk.raw");
    let before = sha256(&img);
    let link = s.path("link.raw");
    std::os::unix::fs::symlink(&img, &link).unwrap();
    let hard = s.path("hard.raw");
    fs::hard_link(&img, &hard).unwrap();
    for out in [&img, &link, &hard] {
        let o = kaifuku(["fix", p(&img), "-o", p(out)]);
        assert_refused(&o, "same file", &format!("-o {}", out.display()));
        // The image named through a link and the output as the image itself.
        let o = kaifuku(["fix", p(out), "-o", p(&img)]);
        assert_refused(&o, "same file", &format!("image {}", out.display()));
    }
    let o = run(
        "sh",
        [
            "-c",
            "exec 3<\"$1\"; exec \"$2\" fix \"$1\" -o /proc/self/fd/3",
            "sh",
            p(&img),
            bin(),
        ],
    );
    assert_refused(&o, "same file", "-o /proc/self/fd/3");
    assert_eq!(sha256(&img), before, "the image changed");
    assert_eq!(
        fs::metadata(&img).unwrap().nlink(),
        2,
        "the hard link is gone"
    );
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(names(&s.dir), ["disk.raw", "hard.raw", "link.raw"]);
    // -o and --in-place together are refused (which one was meant?).
    let o = kaifuku([
        "fix",
        "--in-place",
        p(&img),
        "-o",
        p(&s.path("x.raw")),
        "--undo",
        p(&s.path("x.undo")),
    ]);
    assert_refused(&o, "give one of them", "--in-place with -o");
    assert_eq!(sha256(&img), before);
}

// ---------------------------------------------------------------------------------------------
// Device nodes, FIFOs

/// A character device node in the scratch directory, the same device as /dev/null (1:3): should
/// kaifuku ever replace a device node by a regular file again, it replaces this node and not the
/// system's /dev/null.
fn char_device(s: &Scratch) -> PathBuf {
    let node = s.path("null");
    let o = run("mknod", [p(&node), "c", "1", "3"]);
    assert_eq!(o.code, 0, "mknod (as root): {}", o.both());
    node
}

#[test]
fn char_devices_and_fifos_are_refused_as_output_and_undo() {
    let s = Scratch::new("paths-nodes");
    let img = image_copy(&s, "disk.raw");
    let before = sha256(&img);
    let null = char_device(&s);
    let fifo = s.path("fifo");
    run_ok("mkfifo", [p(&fifo)]);
    let out = s.path("out.raw");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["fix", p(&img), "-o", p(&null)], "character device"),
        (vec!["fix", p(&img), "-o", p(&fifo)], "FIFO"),
        (
            vec!["fix", p(&img), "-o", p(&out), "--undo", p(&null)],
            "character device",
        ),
        (
            vec!["fix", p(&img), "-o", p(&out), "--undo", p(&fifo)],
            "FIFO",
        ),
        (
            vec!["fix", "--in-place", p(&img), "--undo", p(&fifo)],
            "FIFO",
        ),
        (
            vec!["fix", "--in-place", p(&img), "--undo", p(&null)],
            "character device",
        ),
    ];
    for (args, words) in cases {
        let o = kaifuku_within(60, &args);
        assert_refused(&o, words, &format!("{args:?}"));
        assert!(fs::metadata(&null).unwrap().file_type().is_char_device());
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(names(&s.dir), ["disk.raw", "fifo", "null"], "{args:?}");
        assert_eq!(sha256(&img), before, "{args:?}");
    }
}

#[test]
fn a_fifo_or_device_as_image_is_refused_at_once() {
    let s = Scratch::new("paths-fifo-image");
    let fifo = s.path("image.fifo");
    run_ok("mkfifo", [p(&fifo)]);
    let null = char_device(&s);
    let out = s.path("out.raw");
    let undo = s.path("out.undo");
    let made = s.path("made.raw");
    sparse_copy(&fixtures().join(IMAGE), &made);
    let good_undo = s.path("good.undo");
    let o = kaifuku(["fix", p(&made), "-o", p(&out), "--undo", p(&good_undo)]);
    assert_eq!(o.code, 0, "{}", o.both());
    fs::remove_file(&out).unwrap();
    for (node, words) in [(&fifo, "FIFO"), (&null, "character device")] {
        let cases: Vec<Vec<&str>> = vec![
            vec!["inspect", p(node)],
            vec!["check", p(node)],
            vec!["fix", p(node), "-o", p(&out)],
            vec!["fix", p(node), "--dry-run"],
            vec!["fix", "--in-place", p(node), "--undo", p(&undo)],
            vec!["undo", p(node), p(&good_undo)],
            // The undo file itself must be a regular file too.
            vec!["undo", p(&made), p(node)],
        ];
        for args in cases {
            let t = Instant::now();
            let o = kaifuku_within(20, &args);
            assert_refused(&o, words, &format!("{args:?}"));
            assert!(t.elapsed() < Duration::from_secs(10), "{args:?} was slow");
            assert!(!out.exists() && !undo.exists(), "{args:?} wrote a file");
        }
    }
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(
        names(&s.dir),
        ["good.undo", "image.fifo", "made.raw", "null"]
    );
}

// ---------------------------------------------------------------------------------------------
// Block devices as the output

/// A loop device over `file`. `node` is a block device node for it made in the scratch directory:
/// the tests write through that node, so should kaifuku ever replace a device node by a regular
/// file again, it replaces the scratch node and not the system's `/dev/loopN`.
struct Loop {
    dev: String,
    node: String,
}

impl Loop {
    fn attach(file: &Path, s: &Scratch) -> Loop {
        let o = run("losetup", ["-f", "--show", p(file)]);
        assert_eq!(
            o.code, 0,
            "losetup (util-linux) must attach a loop device, as root: {}",
            o.stderr
        );
        let dev = o.text().trim().to_string();
        let rdev = fs::metadata(&dev).unwrap().rdev();
        let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        let node = s.path(Path::new(&dev).file_name().unwrap().to_str().unwrap());
        let made = run(
            "mknod",
            [p(&node), "b", &major.to_string(), &minor.to_string()],
        );
        let l = Loop {
            dev,
            node: p(&node).to_string(),
        };
        assert_eq!(made.code, 0, "mknod (as root): {}", made.both());
        l
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run("losetup", ["-d", &self.dev]);
        let _ = fs::remove_file(&self.node);
    }
}

/// Puts recognisable junk every 8 MiB of `file` (so a copy that skips the image's zeros is seen).
fn junk(file: &Path, size: u64) {
    let block = vec![0xA5u8; 1 << 20];
    let mut at = 0;
    while at < size {
        write_at(file, at, &block[..(size - at).min(1 << 20) as usize]);
        at += 8 << 20;
    }
}

#[test]
fn a_block_device_output_gets_the_image_written_in_place() {
    assert!(is_root(), "this test needs root (loop devices)");
    let s = Scratch::new("paths-blockdev");
    let input = fixtures().join(IMAGE);
    let size = fs::metadata(&input).unwrap().len();
    let want = s.path("want.raw");
    let o = kaifuku(["fix", p(&input), "-o", p(&want)]);
    assert_eq!(o.code, 0, "{}", o.both());

    // A device bigger than the image, full of junk.
    let backing = s.path("backing.bin");
    let dev_size = size + (24 << 20);
    fs::File::create(&backing)
        .unwrap()
        .set_len(dev_size)
        .unwrap();
    junk(&backing, dev_size);
    let tail_before = read_at(&backing, size, (dev_size - size) as usize);
    let dev = Loop::attach(&backing, &s);
    let undo = s.path("dev.undo");
    let o = kaifuku(["fix", p(&input), "-o", &dev.node, "--undo", p(&undo)]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert!(
        fs::metadata(&dev.node)
            .unwrap()
            .file_type()
            .is_block_device(),
        "the device node was replaced"
    );
    let o = run("cmp", ["-n", &size.to_string(), &dev.dev, p(&want)]);
    assert_eq!(
        o.code,
        0,
        "the device does not hold the fixed image: {}",
        o.both()
    );
    assert_eq!(
        read_at(&backing, size, (dev_size - size) as usize),
        tail_before,
        "bytes past the image changed"
    );
    // The undo file restores the device to the input image.
    let o = kaifuku(["undo", &dev.node, p(&undo)]);
    assert_eq!(o.code, 0, "{}", o.both());
    let o = run("cmp", ["-n", &size.to_string(), &dev.dev, p(&input)]);
    assert_eq!(o.code, 0, "undo did not restore the device: {}", o.both());
    drop(dev);

    // A device smaller than the image is refused and left alone.
    let small = s.path("small.bin");
    fs::File::create(&small)
        .unwrap()
        .set_len(size - (4 << 20))
        .unwrap();
    junk(&small, size - (4 << 20));
    let small_before = sha256(&small);
    let dev = Loop::attach(&small, &s);
    let undo2 = s.path("small.undo");
    let o = kaifuku(["fix", p(&input), "-o", &dev.node, "--undo", p(&undo2)]);
    assert_refused(&o, "smaller than the image", "too small a device");
    drop(dev);
    assert_eq!(sha256(&small), small_before, "the small device was written");
    assert!(!undo2.exists(), "an undo file was left");
    assert_eq!(
        names(&s.dir),
        ["backing.bin", "dev.undo", "small.bin", "want.raw"]
    );
}

#[test]
fn the_image_own_loop_device_is_not_an_output() {
    assert!(is_root(), "this test needs root (loop devices)");
    let s = Scratch::new("paths-own-loop");
    let img = image_copy(&s, "disk.raw");
    let before = sha256(&img);
    let dev = Loop::attach(&img, &s);
    let o = kaifuku(["fix", p(&img), "-o", &dev.node]);
    assert_refused(&o, "same file", "-o the image's own loop device");
    let o = kaifuku(["fix", &dev.node, "-o", p(&img)]);
    assert_refused(&o, "same file", "the loop device as image, its file as -o");
    drop(dev);
    assert_eq!(sha256(&img), before);
}

// ---------------------------------------------------------------------------------------------
// stdout closed or full

/// Runs kaifuku with stdout a pipe whose reading end is already closed (as after `| head -c1`),
/// deterministically: every write fails with EPIPE.
fn with_closed_stdout(args: &[&str]) -> Out {
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let o = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: Vec::new(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn with_full_stdout(args: &[&str]) -> Out {
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: Vec::new(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn a_closed_or_full_stdout_is_an_error_not_a_panic() {
    let s = Scratch::new("paths-stdout");
    let img = image_copy(&s, "disk.raw");
    let before = sha256(&img);
    let out = s.path("out.raw");
    let undo = s.path("out.undo");
    type Runner = fn(&[&str]) -> Out;
    let runners: [(&str, Runner); 2] = [
        ("closed pipe", with_closed_stdout),
        ("/dev/full", with_full_stdout),
    ];
    for (how, runner) in runners {
        for args in [
            vec!["inspect", p(&img)],
            vec!["inspect", "--json", p(&img)],
            vec!["check", p(&img)],
            vec!["fix", "--dry-run", p(&img)],
            vec!["fix", p(&img), "-o", p(&out), "--undo", p(&undo)],
            vec!["fix", "--json", p(&img), "-o", p(&out), "--undo", p(&undo)],
            vec!["fix", "--in-place", p(&img), "--undo", p(&undo)],
        ] {
            let o = runner(&args);
            let ctx = format!("{how}: {args:?}");
            assert!(!o.stderr.contains("panicked"), "{ctx}: {}", o.stderr);
            assert_eq!(o.code, 3, "{ctx}: exit {}: {}", o.code, o.stderr);
            assert!(
                o.stderr.contains("standard output"),
                "{ctx}: say why: {}",
                o.stderr
            );
            // The plan could not be shown, so nothing was written.
            assert_eq!(sha256(&img), before, "{ctx}: the image changed");
            assert_eq!(names(&s.dir), ["disk.raw"], "{ctx}: files left behind");
        }
    }
    for args in [["--help"], ["--version"]] {
        let o = with_full_stdout(&args);
        assert_eq!(o.code, 3, "{args:?}: {}", o.stderr);
        assert!(
            o.stderr.contains("standard output"),
            "{args:?}: {}",
            o.stderr
        );
    }
    // After the work is done only the closing lines fail: the result is complete, and said so.
    let o = kaifuku(["fix", p(&img), "-o", p(&out), "--undo", p(&undo)]);
    assert_eq!(o.code, 0, "{}", o.both());
    let fixed = sha256(&out);
    let o = with_full_stdout(&["undo", p(&out), p(&undo)]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("restored"), "{}", o.stderr);
    assert_ne!(sha256(&out), fixed);
    assert_eq!(sha256(&out), before, "undo restored the output");

    // The shell's way: `| head -c1` closes the pipe whenever head exits.
    for args in ["inspect", "inspect --json", "check"] {
        let o = sh(&format!(
            "{{ '{}' {args} '{}'; echo $? >'{}'; }} | head -c1 >/dev/null",
            bin(),
            p(&img),
            p(&s.path("code"))
        ));
        let code: i32 = fs::read_to_string(s.path("code"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!o.stderr.contains("panicked"), "{args}: {}", o.stderr);
        assert!(code == 0 || code == 3, "{args}: exit {code}: {}", o.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// A failed run leaves nothing behind

fn assert_nothing_left(dirs: &[&Path], want: &[&[&str]], ctx: &str) {
    for (d, w) in dirs.iter().zip(want) {
        assert_eq!(names(d), *w, "{ctx}: left behind in {}", d.display());
    }
}

#[test]
fn an_output_that_cannot_be_written_leaves_no_undo_file() {
    let s = Scratch::new("paths-leftovers");
    let img = image_copy(&s, "disk.raw");
    let undo_dir = s.path("undo");
    fs::create_dir(&undo_dir).unwrap();
    let undo = undo_dir.join("out.undo");

    // The output is an existing directory.
    let as_dir = s.path("outdir");
    fs::create_dir(&as_dir).unwrap();
    let o = kaifuku(["fix", p(&img), "-o", p(&as_dir), "--undo", p(&undo)]);
    assert_refused(&o, "directory", "-o a directory");
    assert_nothing_left(&[&undo_dir, &as_dir], &[&[], &[]], "-o a directory");

    // The output's directory does not exist.
    let o = kaifuku([
        "fix",
        p(&img),
        "-o",
        p(&s.path("missing/out.raw")),
        "--undo",
        p(&undo),
    ]);
    assert_refused(&o, "does not exist", "-o in a missing directory");
    assert_nothing_left(&[&undo_dir], &[&[]], "-o in a missing directory");

    // The output's directory is immutable (read-only even for root).
    let ro = s.path("ro");
    fs::create_dir(&ro).unwrap();
    let o = run("chattr", ["+i", p(&ro)]);
    assert_eq!(o.code, 0, "chattr +i (e2fsprogs, as root): {}", o.both());
    let o = kaifuku([
        "fix",
        p(&img),
        "-o",
        p(&ro.join("out.raw")),
        "--undo",
        p(&undo),
    ]);
    let _ = run("chattr", ["-i", p(&ro)]);
    assert_eq!(o.code, 3, "-o in a read-only directory: {}", o.both());
    assert_nothing_left(&[&undo_dir, &ro], &[&[], &[]], "-o in a read-only dir");
}

/// A tmpfs of 64 KiB under `dir`, filled up so that no data fits.
fn full_tmpfs(dir: &Path) {
    fs::create_dir(dir).unwrap();
    let o = run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", p(dir)]);
    assert_eq!(o.code, 0, "mount tmpfs (as root): {}", o.both());
    let _ = run(
        "dd",
        [
            "if=/dev/zero",
            &format!("of={}", p(&dir.join("fill"))),
            "bs=4k",
        ],
    );
}

#[test]
fn a_full_disk_for_either_file_leaves_neither() {
    assert!(is_root(), "this test needs root (tmpfs)");
    let s = Scratch::new("paths-full");
    let img = image_copy(&s, "disk.raw");
    let full = s.path("full");
    full_tmpfs(&full);
    let roomy = s.path("roomy");
    fs::create_dir(&roomy).unwrap();

    // The output does not fit; the undo file would.
    let o = kaifuku([
        "fix",
        p(&img),
        "-o",
        p(&full.join("out.raw")),
        "--undo",
        p(&roomy.join("out.undo")),
    ]);
    assert_eq!(o.code, 3, "output on a full disk: {}", o.both());
    assert_nothing_left(&[&full, &roomy], &[&["fill"], &[]], "output on a full disk");

    // The undo file does not fit; the output would.
    let o = kaifuku([
        "fix",
        p(&img),
        "-o",
        p(&roomy.join("out.raw")),
        "--undo",
        p(&full.join("out.undo")),
    ]);
    assert_eq!(o.code, 3, "undo on a full disk: {}", o.both());
    assert_nothing_left(&[&full, &roomy], &[&["fill"], &[]], "undo on a full disk");

    // In place: the undo file cannot be written, so the image is not touched.
    let before = sha256(&img);
    let o = kaifuku([
        "fix",
        "--in-place",
        p(&img),
        "--undo",
        p(&full.join("in.undo")),
    ]);
    assert_eq!(o.code, 3, "in place, undo on a full disk: {}", o.both());
    assert_eq!(
        sha256(&img),
        before,
        "the image was written without an undo file"
    );
    assert_nothing_left(&[&full], &[&["fill"]], "in place, undo on a full disk");
}

#[test]
fn an_existing_undo_file_is_never_replaced() {
    let s = Scratch::new("paths-undo-exists");
    let img = image_copy(&s, "disk.raw");
    let before = sha256(&img);
    let undo = s.path("old.undo");
    fs::write(&undo, b"an earlier undo file").unwrap();
    let out = s.path("out.raw");
    let o = kaifuku(["fix", p(&img), "-o", p(&out), "--undo", p(&undo)]);
    assert_refused(&o, "already exists", "-o with an existing --undo");
    let o = kaifuku(["fix", "--in-place", p(&img), "--undo", p(&undo)]);
    assert_refused(&o, "already exists", "--in-place with an existing --undo");
    assert_eq!(fs::read(&undo).unwrap(), b"an earlier undo file");
    assert_eq!(sha256(&img), before);
    assert_eq!(names(&s.dir), ["disk.raw", "old.undo"]);
    // An existing regular output is replaced (that is what -o means), through a symbolic link
    // too: the file it points at gets the fixed image, the link stays.
    let real = s.path("real.raw");
    fs::write(&real, b"old output").unwrap();
    let link = s.path("out-link.raw");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let o = kaifuku(["fix", p(&img), "-o", p(&link)]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::metadata(&real).unwrap().len(),
        fs::metadata(&img).unwrap().len()
    );
    assert_check_clean(&real, "the output written through a link");
}

// ---------------------------------------------------------------------------------------------
// Damaged and foreign undo files

#[test]
fn damaged_truncated_or_old_undo_files_are_refused_without_writing() {
    let s = Scratch::new("paths-undo-damage");
    let img = image_copy(&s, "disk.raw");
    let out = s.path("out.raw");
    let undo = s.path("out.undo");
    let o = kaifuku(["fix", p(&img), "-o", p(&out), "--undo", p(&undo)]);
    assert_eq!(o.code, 0, "{}", o.both());
    let good = fs::read(&undo).unwrap();
    let fixed = sha256(&out);
    let n = good.len();
    assert!(n > 48 + 24 + 64, "undo file of {n} bytes");
    // One bit in every field of the header, in the first entry's header and data, in the last
    // entry's data, and in both trailer hashes; plus every bit of the first 64 bytes.
    let mut positions: Vec<usize> = (0..64).collect();
    positions.extend([
        70,
        72 + 3,
        100,
        n / 2,
        n - 65,
        n - 64,
        n - 40,
        n - 33,
        n - 32,
        n - 1,
    ]);
    let bad = s.path("bad.undo");
    // Any write changes the modification time; the whole image is hashed again at the end.
    let stamp = || fs::metadata(&out).unwrap().modified().unwrap();
    let untouched = stamp();
    for at in positions {
        for bit in [0u8, 3, 7] {
            let mut b = good.clone();
            b[at] ^= 1 << bit;
            fs::write(&bad, &b).unwrap();
            let o = kaifuku(["undo", p(&out), p(&bad)]);
            let ctx = format!("bit {bit} of byte {at}");
            assert_eq!(o.code, 3, "{ctx}: accepted: {}", o.both());
            assert_eq!(stamp(), untouched, "{ctx}: the image was written");
        }
    }
    // Cut short, or with a byte more.
    for cut in [n - 1, n - 32, n - 64, 100, 47, 16, 3] {
        fs::write(&bad, &good[..cut]).unwrap();
        let o = kaifuku(["undo", p(&out), p(&bad)]);
        assert_eq!(o.code, 3, "cut to {cut} bytes: {}", o.both());
        assert_eq!(
            stamp(),
            untouched,
            "cut to {cut} bytes: the image was written"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    fs::write(&bad, &longer).unwrap();
    let o = kaifuku(["undo", p(&out), p(&bad)]);
    assert_refused(&o, "checksum", "a byte appended");
    // A flipped bit in the data says the file is damaged, in words.
    let mut b = good.clone();
    b[n / 2] ^= 0x10;
    fs::write(&bad, &b).unwrap();
    let o = kaifuku(["undo", p(&out), p(&bad)]);
    assert_refused(&o, "damaged", "a flipped bit");
    // The earlier format (no checksum, no identity) is refused clearly.
    let mut v1 = b"KAIFUKU-UNDO\0\0\0\x01".to_vec();
    v1.extend_from_slice(&good[16..24]);
    v1.extend_from_slice(&good[40..48]);
    v1.extend_from_slice(&good[48..n - 64]);
    fs::write(&bad, &v1).unwrap();
    let o = kaifuku(["undo", p(&out), p(&bad)]);
    assert_refused(&o, "version 1", "a version 1 undo file");
    assert_eq!(sha256(&out), fixed);
    // The intact file still restores.
    let o = kaifuku(["undo", p(&out), p(&undo)]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert_eq!(sha256(&out), sha256(&img));
}

#[test]
fn an_undo_file_for_another_image_is_refused() {
    let s = Scratch::new("paths-undo-foreign");
    let img = image_copy(&s, "disk.raw");
    let out = s.path("out.raw");
    let undo = s.path("out.undo");
    let o = kaifuku(["fix", p(&img), "-o", p(&out), "--undo", p(&undo)]);
    assert_eq!(o.code, 0, "{}", o.both());

    // Another size.
    let other = s.path("other.raw");
    sparse_copy(&fixtures().join("mbr-win.raw"), &other);
    let other_before = sha256(&other);
    let o = kaifuku(["undo", p(&other), p(&undo)]);
    assert_refused(&o, "is not the image", "an image of another size");
    assert_eq!(sha256(&other), other_before);

    // Same file size, another container kind: a fixed VHD whose footer was wiped reads as raw.
    let vhd = fixtures().join("gpt-win-fixed.vhd");
    let vhd_out = s.path("out.vhd");
    let vhd_undo = s.path("out.vhd.undo");
    let o = kaifuku(["fix", p(&vhd), "-o", p(&vhd_out), "--undo", p(&vhd_undo)]);
    assert_eq!(o.code, 0, "{}", o.both());
    let len = fs::metadata(&vhd_out).unwrap().len();
    write_at(&vhd_out, len - 512, &[0u8; 512]);
    let wiped = sha256(&vhd_out);
    let o = kaifuku(["undo", p(&vhd_out), p(&vhd_undo)]);
    assert_refused(&o, "raw", "a raw image of the VHD's size");
    assert_eq!(sha256(&vhd_out), wiped);

    // The undo file and the image are the same file.
    let o = kaifuku(["undo", p(&undo), p(&undo)]);
    assert_eq!(o.code, 3, "{}", o.both());
    assert!(o.stderr.contains("same file"), "{}", o.stderr);
}
