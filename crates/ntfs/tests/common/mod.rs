//! Shared by the checker tests (this crate) and the `kaifuku check` tests (the CLI crate):
//! building NTFS volumes with mkntfs and an ntfs-3g mount, unpacking the shared Windows-made
//! images, and breaking copies on purpose by editing records and index blocks through their
//! update sequence arrays. A missing tool fails the test with a message; nothing is skipped.
#![allow(dead_code)]

use kaifuku_io::{check_range, ReadAt, Slice};
use kaifuku_ntfs::index::Directory;
use kaifuku_ntfs::runlist::map_range;
use kaifuku_ntfs::volume::AttrValue;
use kaifuku_ntfs::{AttributeType, Namespace, NodeId, Volume};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Files, scratch directories, tools.

pub struct FileDisk {
    file: File,
    size: u64,
}

impl FileDisk {
    pub fn open(path: &Path) -> FileDisk {
        let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let size = file.metadata().unwrap().len();
        FileDisk { file, size }
    }
}

impl ReadAt for FileDisk {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)
    }
}

/// An NTFS volume inside an image file: the image and the byte offset where the volume starts.
#[derive(Clone, Debug)]
pub struct VolFile {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

impl VolFile {
    pub fn bare(path: &Path) -> VolFile {
        let len = std::fs::metadata(path).unwrap().len();
        VolFile {
            path: path.to_path_buf(),
            offset: 0,
            len,
        }
    }

    /// The first partition of an MBR disk (the Windows-made images are such disks).
    pub fn first_mbr_partition(path: &Path) -> VolFile {
        let d = FileDisk::open(path);
        let mut mbr = [0u8; 512];
        d.read_at(0, &mut mbr).unwrap();
        assert_eq!(&mbr[510..], &[0x55, 0xAA], "{} has no MBR", path.display());
        let lba = u32::from_le_bytes(mbr[0x1BE + 8..0x1BE + 12].try_into().unwrap()) as u64;
        let count = u32::from_le_bytes(mbr[0x1BE + 12..0x1BE + 16].try_into().unwrap()) as u64;
        VolFile {
            path: path.to_path_buf(),
            offset: lba * 512,
            len: count * 512,
        }
    }

    pub fn open(&self) -> Volume<Slice<FileDisk>> {
        let view = Slice::new(FileDisk::open(&self.path), self.offset, self.len).unwrap();
        Volume::open(view)
            .unwrap_or_else(|e| panic!("open the volume in {}: {e}", self.path.display()))
    }

    pub fn read(&self, off: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        File::open(&self.path)
            .unwrap()
            .read_exact_at(&mut b, self.offset + off)
            .unwrap();
        b
    }

    pub fn write(&self, off: u64, bytes: &[u8]) {
        let f = OpenOptions::new().write(true).open(&self.path).unwrap();
        f.write_all_at(bytes, self.offset + off).unwrap();
        f.sync_all().unwrap();
    }

    /// A copy of the image (sparse where the source is) next to `dir`.
    pub fn copy_to(&self, dir: &Path, name: &str) -> VolFile {
        let dst = dir.join(name);
        run(cmd("cp").arg("--sparse=always").arg(&self.path).arg(&dst));
        VolFile {
            path: dst,
            ..self.clone()
        }
    }
}

pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        sweep_stale();
        let dir = std::env::temp_dir().join(format!(
            "kaifuku-check-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

/// Removes scratch directories left by earlier test processes that have exited (a volume shared
/// through a `static` is never dropped).
fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("kaifuku-check-") else {
            continue;
        };
        let mut parts = rest.rsplitn(3, '-');
        let (_n, pid) = (parts.next(), parts.next());
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Finds a tool on PATH or in the sbin directories; panics (with the package to install) when absent.
pub fn tool(name: &str) -> PathBuf {
    let package = match name {
        "mkntfs" | "ntfs-3g" | "ntfsfix" | "ntfsinfo" => "ntfs-3g",
        "istat" | "blkstat" | "fls" | "fsstat" => "sleuthkit",
        "setfattr" => "attr",
        "umount" => "mount",
        "gunzip" => "gzip",
        "tar" => "tar",
        _ => "coreutils",
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("`{name}` is needed by this test but is not installed (Debian package `{package}`); install it: these tests do not skip")
    })
}

pub fn cmd(name: &str) -> Command {
    let mut c = Command::new(tool(name));
    c.env("LC_ALL", "C").stdin(Stdio::null());
    c
}

/// Runs a command; returns stdout, panics with its output on failure.
pub fn run(c: &mut Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("run {c:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{c:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Test data kept in the repository (`tests/data`: the CC0 Windows-made volumes).
pub fn shared(rel: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(rel);
    assert!(p.exists(), "{} is missing from the repository", p.display());
    p
}

/// GPL test data, which stays beside the repository (`../shared/testdata`), never in it. `None`
/// when it is absent — the test then reports by name that it is skipped, and returns.
pub fn gpl_data(rel: &str, test: &str) -> Option<PathBuf> {
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

/// `gunzip -c src > dst`.
pub fn gunzip(src: &Path, dst: &Path) {
    let out = File::create(dst).unwrap();
    let status = cmd("gunzip")
        .arg("-c")
        .arg(src)
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success(), "gunzip {} failed", src.display());
}

// ---------------------------------------------------------------------------------------------
// Building volumes: mkntfs, then ntfs-3g in the foreground so that its exit can be awaited.

pub struct Mount {
    child: Option<Child>,
    pub dir: PathBuf,
}

impl Mount {
    pub fn new(image: &Path, dir: &Path) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let child = cmd("ntfs-3g")
            .args(["-o", "rw,noatime,no_detach"])
            .arg(image)
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ntfs-3g");
        let mut m = Mount {
            child: Some(child),
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mount_point(dir) {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                m.child = None;
                panic!(
                    "ntfs-3g could not mount {} ({st}); FUSE and root are needed",
                    image.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "ntfs-3g mount of {} timed out",
                image.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn unmount(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let mut ok = false;
        for _ in 0..100 {
            if cmd("umount").arg(&self.dir).status().unwrap().success() {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let st = child.wait().unwrap();
        assert!(ok, "umount {} failed", self.dir.display());
        assert!(st.success(), "ntfs-3g exited with {st}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.is_some() && !std::thread::panicking() {
            self.unmount();
        } else if let Some(mut c) = self.child.take() {
            let _ = cmd("umount").arg("-l").arg(&self.dir).status();
            let _ = c.wait();
        }
    }
}

fn is_mount_point(dir: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let d = dir.to_string_lossy().to_string();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(d.as_str()))
}

pub fn setfattr(path: &Path, name: &str, hex_value: &str) {
    run(cmd("setfattr")
        .args(["-n", name, "-v", hex_value])
        .arg(path));
}

/// Formats `path` (a file of `size_mib` MiB) with mkntfs.
pub fn mkntfs(path: &Path, size_mib: u64, sector: u32, cluster: u32) {
    File::create(path).unwrap().set_len(size_mib * MIB).unwrap();
    run(cmd("mkntfs")
        .args([
            "-F",
            "-Q",
            "-q",
            "-s",
            &sector.to_string(),
            "-c",
            &cluster.to_string(),
            "-L",
            "checktest",
        ])
        .arg(path));
}

/// A volume with what real directories hold: a 400-name directory and a 1500-long-name one
/// (multi-level trees), a root-only directory, DOS names (separate and Win32&DOS), case twins,
/// non-ASCII names, hard links (enough for an attribute list), resident, sparse and fragmented
/// files, an object ID and a reparse point.
pub fn populate(m: &Mount) {
    let w = |rel: &str, data: &[u8]| std::fs::write(m.p(rel), data).unwrap();
    for d in ["big", "long", "small", "empty", "Ünïcödé", "links"] {
        std::fs::create_dir_all(m.p(d)).unwrap();
    }
    for i in 0..400 {
        w(
            &format!("big/Driver_{i:04}.sys"),
            format!("driver {i}\n").repeat(i % 7 + 1).as_bytes(),
        );
    }
    for i in (0..400).step_by(9) {
        setfattr(
            &m.p(&format!("big/Driver_{i:04}.sys")),
            "system.ntfs_dos_name",
            &format!("DRIVER~{}.SYS", i / 9 + 1),
        );
    }
    for i in 0..1500 {
        w(&format!("long/amd64_microsoft-windows-component-{i:05}_31bf3856ad364e35_10.0.19041.1_none.manifest"), b"m");
    }
    w("small/a.txt", b"resident");
    w("small/Case", b"upper");
    w("small/case", b"lower");
    w(
        "small/big.bin",
        &(0..300_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    setfattr(&m.p("small/big.bin"), "system.ntfs_dos_name", "BIG~1.BIN");
    // Fragmented: two files grown in turns.
    {
        use std::io::Write;
        let mut a = File::create(m.p("small/frag-a.bin")).unwrap();
        let mut b = File::create(m.p("small/frag-b.bin")).unwrap();
        for k in 0..24u8 {
            a.write_all(&[k; 8192]).unwrap();
            a.sync_all().unwrap();
            b.write_all(&[!k; 8192]).unwrap();
            b.sync_all().unwrap();
        }
    }
    // Sparse: a hole, then data.
    {
        let f = File::create(m.p("small/sparse.bin")).unwrap();
        f.set_len(8 * MIB).unwrap();
        f.write_all_at(b"tail after a hole", 8 * MIB - 17).unwrap();
    }
    w("Ünïcödé/Éßσ文字.txt", "ünï".as_bytes());
    w("Ünïcödé/ÆØÅ.txt", b"x");
    w("links/target.txt", b"linked");
    for i in 0..40 {
        std::fs::hard_link(
            m.p("links/target.txt"),
            m.p(&format!(
                "links/another-rather-long-hard-link-name-{i:03}.txt"
            )),
        )
        .unwrap();
    }
    setfattr(
        &m.p("small/a.txt"),
        "system.ntfs_object_id",
        "0x00112233445566778899aabbccddeeff",
    );
    // A Microsoft-style reparse point (tag 0x80000013, 4 bytes of data).
    w("small/reparse.dat", b"r");
    setfattr(
        &m.p("small/reparse.dat"),
        "system.ntfs_reparse_data",
        "0x1300008004000000deadbeef",
    );
}

/// mkntfs + ntfs-3g population of a new bare volume image.
pub fn build_volume(dir: &Path, name: &str, size_mib: u64, sector: u32, cluster: u32) -> VolFile {
    let image = dir.join(name);
    mkntfs(&image, size_mib, sector, cluster);
    let mut m = Mount::new(&image, &dir.join(format!("{name}.mnt")));
    populate(&m);
    m.unmount();
    VolFile::bare(&image)
}

// ---------------------------------------------------------------------------------------------
// Breaking copies on purpose.

/// Puts the update sequence array back after an edit of a fixed-up record (USN + 1, skipping 0
/// and 0xFFFF as ntfs-3g does).
pub fn write_fixups(b: &mut [u8]) {
    let usa_ofs = u16::from_le_bytes([b[4], b[5]]) as usize;
    let usa_count = u16::from_le_bytes([b[6], b[7]]) as usize;
    let mut usn = u16::from_le_bytes([b[usa_ofs], b[usa_ofs + 1]]).wrapping_add(1);
    if usn == 0 || usn == 0xFFFF {
        usn = 1;
    }
    b[usa_ofs..usa_ofs + 2].copy_from_slice(&usn.to_le_bytes());
    for i in 0..usa_count - 1 {
        let end = (i + 1) * 512 - 2;
        let saved = usa_ofs + 2 + 2 * i;
        b.copy_within(end..end + 2, saved);
        b[end..end + 2].copy_from_slice(&usn.to_le_bytes());
    }
}

fn edit_pieces(v: &VolFile, pieces: &[(u64, u64)], what: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = Vec::new();
    for (off, len) in pieces {
        b.extend_from_slice(&v.read(*off, *len as usize));
    }
    kaifuku_ntfs::fixup::apply_read(&mut b, what).unwrap();
    f(&mut b);
    write_fixups(&mut b);
    let mut at = 0usize;
    for (off, len) in pieces {
        v.write(*off, &b[at..at + *len as usize]);
        at += *len as usize;
    }
}

/// Edits MFT record `n` (fixed-up bytes) and writes it back with a valid update sequence array.
pub fn edit_record(v: &VolFile, n: u64, f: impl FnOnce(&mut Vec<u8>)) {
    let pieces = v.open().record_location(n).unwrap();
    edit_pieces(v, &pieces, &format!("record {n}"), f);
}

/// Edits the `INDX` block at `vcn` of directory `dir` (fixed-up bytes) and writes it back.
pub fn edit_index_block(v: &VolFile, dir: u64, vcn: u64, f: impl FnOnce(&mut Vec<u8>)) {
    let vol = v.open();
    let rec = vol.read_record(dir).unwrap();
    let pieces = Directory::open(&vol, &rec)
        .unwrap()
        .block_location(vcn)
        .unwrap();
    edit_pieces(v, &pieces, &format!("index block {vcn}"), f);
}

/// Sets or clears cluster `lcn`'s bit in `$Bitmap`.
pub fn set_cluster_bit(v: &VolFile, lcn: u64, on: bool) {
    let vol = v.open();
    let rec = vol.read_record(6).unwrap();
    let Some(AttrValue::NonResident(s)) = vol.value(&rec, AttributeType::Data, "").unwrap() else {
        panic!("$Bitmap data")
    };
    let at = map_range(&s.runs, vol.cluster_size(), lcn / 8, 1).unwrap()[0]
        .0
        .unwrap();
    let mut byte = v.read(at, 1)[0];
    if on {
        byte |= 1 << (lcn % 8);
    } else {
        byte &= !(1 << (lcn % 8));
    }
    v.write(at, &[byte]);
}

/// The MFT record of a path.
pub fn record_of(v: &VolFile, path: &str) -> u64 {
    v.open()
        .lookup_path(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{path} not found"))
        .1
        .number
}

/// First LCN of a file's unnamed `$DATA`.
pub fn first_lcn(v: &VolFile, path: &str) -> (u64, u64) {
    let vol = v.open();
    let (_, rec) = vol.lookup_path(path).unwrap().unwrap();
    let Some(AttrValue::NonResident(s)) = vol.value(&rec, AttributeType::Data, "").unwrap() else {
        panic!("{path} is resident")
    };
    (rec.number, s.runs.iter().find_map(|r| r.lcn).unwrap())
}

/// Where an index entry lies: (directory record, node, offset of the entry, its length).
#[derive(Debug, Clone, Copy)]
pub struct EntryAt {
    pub dir: u64,
    pub node: NodeId,
    pub offset: usize,
    pub length: usize,
}

/// Edits the bytes of an index node (the `$INDEX_ROOT` value, or an `INDX` block), fixed up.
/// For the root, `f` gets the whole record and the offset of the value within it.
pub fn edit_node(v: &VolFile, dir: u64, node: NodeId, f: impl FnOnce(&mut Vec<u8>, usize)) {
    match node {
        NodeId::Block(vcn) => edit_index_block(v, dir, vcn, |b| f(b, 0)),
        NodeId::Root => {
            let vol = v.open();
            let rec = vol.read_record(dir).unwrap();
            let at = rec
                .attributes()
                .unwrap()
                .into_iter()
                .find(|a| a.is(AttributeType::IndexRoot))
                .unwrap()
                .resident_value_offset()
                .unwrap();
            edit_record(v, dir, |b| f(b, at));
        }
    }
}

/// The entries of a directory: (entry location, namespace, name, record, has child).
pub fn dir_entries(v: &VolFile, dir_path: &str) -> Vec<(EntryAt, Namespace, String, u64, bool)> {
    let vol = v.open();
    let (_, rec) = vol.lookup_path(dir_path).unwrap().unwrap();
    let d = vol.directory(&rec).unwrap();
    d.entries(&vol)
        .unwrap()
        .into_iter()
        .map(|e| {
            let at = EntryAt {
                dir: rec.number,
                node: e.node,
                offset: e.offset,
                length: e.length,
            };
            (
                at,
                e.key.namespace,
                e.name(),
                e.file_ref.record,
                e.subnode.is_some(),
            )
        })
        .collect()
}

/// A leaf entry in an INDX block of `dir_path` holding a DOS name.
pub fn dos_leaf_entry(v: &VolFile, dir_path: &str) -> (EntryAt, String, u64) {
    dir_entries(v, dir_path)
        .into_iter()
        .find(|(at, ns, _, _, child)| {
            *ns == Namespace::Dos && !child && matches!(at.node, NodeId::Block(_))
        })
        .map(|(at, _, name, rec, _)| (at, name, rec))
        .expect("a DOS-name entry in a leaf block")
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// The break-a-copy cases: each returns the record the problem concerns.
pub mod breaks {
    use super::{
        dir_entries, dos_leaf_entry, edit_index_block, edit_node, edit_record, first_lcn,
        record_of, set_cluster_bit, u32_at, NodeId, VolFile,
    };

    /// Clears the `$Bitmap` bit of the first cluster of a live file's data.
    pub fn clear_cluster_of_live_file(v: &VolFile) -> (u64, u64) {
        let (rec, lcn) = first_lcn(v, "\\small\\big.bin");
        set_cluster_bit(v, lcn, false);
        (rec, lcn)
    }

    /// Clears IN_USE in a file's record and leaves its `$MFT:$BITMAP` bit set.
    pub fn free_record_keep_bit(v: &VolFile) -> u64 {
        let n = record_of(v, "\\small\\Case");
        edit_record(v, n, |b| {
            let flags = u16::from_le_bytes([b[0x16], b[0x17]]) & !1;
            b[0x16..0x18].copy_from_slice(&flags.to_le_bytes());
        });
        n
    }

    /// Changes the sequence number in an index entry (in an INDX block) of `\big`.
    pub fn entry_wrong_sequence(v: &VolFile) -> (u64, u64) {
        let (at, _, _, rec, _) = dir_entries(v, "\\big")
            .into_iter()
            .find(|(at, _, name, _, _)| {
                matches!(at.node, NodeId::Block(_)) && name.starts_with("Driver_0123")
            })
            .expect("Driver_0123.sys in a block");
        edit_node(v, at.dir, at.node, |b, base| {
            let o = base + at.offset + 6;
            let seq = u16::from_le_bytes([b[o], b[o + 1]]).wrapping_add(5);
            b[o..o + 2].copy_from_slice(&seq.to_le_bytes());
        });
        (at.dir, rec)
    }

    /// Removes a DOS-name entry from a leaf block (the `$FILE_NAME` stays in the record).
    pub fn remove_dos_entry(v: &VolFile) -> (u64, u64) {
        let (at, _, rec) = dos_leaf_entry(v, "\\big");
        edit_node(v, at.dir, at.node, |b, base| {
            let h = base + 0x18;
            let index_length = u32_at(b, h + 4) as usize;
            let start = base + at.offset;
            let end = h + index_length;
            b.copy_within(start + at.length..end, start);
            let new_len = (index_length - at.length) as u32;
            b[h + 4..h + 8].copy_from_slice(&new_len.to_le_bytes());
        });
        (at.dir, rec)
    }

    /// Swaps two adjacent entries of a leaf block.
    pub fn swap_adjacent_entries(v: &VolFile) -> u64 {
        let entries = dir_entries(v, "\\big");
        let i = entries
            .windows(2)
            .position(|w| {
                let (a, b) = (&w[0].0, &w[1].0);
                matches!(a.node, NodeId::Block(_))
                    && a.node == b.node
                    && !w[0].4
                    && !w[1].4
                    && a.offset + a.length == b.offset
            })
            .expect("two adjacent leaf entries");
        let (a, b) = (entries[i].0, entries[i + 1].0);
        edit_node(v, a.dir, a.node, |buf, base| {
            let (s, mid, e) = (base + a.offset, base + b.offset, base + b.offset + b.length);
            let mut swapped = buf[mid..e].to_vec();
            swapped.extend_from_slice(&buf[s..mid]);
            buf[s..e].copy_from_slice(&swapped);
        });
        a.dir
    }

    /// Changes the own-VCN field of an INDX block of `\big`.
    pub fn change_block_vcn(v: &VolFile) -> (u64, u64) {
        let (at, ..) = dir_entries(v, "\\big")
            .into_iter()
            .find(|(at, ..)| matches!(at.node, NodeId::Block(_)))
            .unwrap();
        let NodeId::Block(vcn) = at.node else {
            unreachable!()
        };
        edit_index_block(v, at.dir, vcn, |b| {
            let wrong = vcn + 1000;
            b[0x10..0x18].copy_from_slice(&wrong.to_le_bytes());
        });
        (at.dir, vcn)
    }
}
