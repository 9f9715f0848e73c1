//! Partition tables made by real tools (sfdisk, fdisk, mkntfs, mkfs.vfat) on sparse image files,
//! read back and compared with what independent readers (`sfdisk -J`, `fdisk -l`, `mmls`) say about
//! the same image. A missing tool fails the test with a message; nothing is skipped.

use kaifuku_io::{check_range, Counted, ReadAt};
use kaifuku_partition::{read_partitions, PartitionError, PartitionTable, Scheme};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const MIB: u64 = 1 << 20;
const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const MSR: &str = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE";
const BASIC: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
const WINRE: &str = "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC";

// ---------------------------------------------------------------------------------------------
// Plumbing: a ReadAt over a file, a scratch directory, running tools.

struct FileDisk {
    file: File,
    size: u64,
}

impl FileDisk {
    fn open(path: &Path) -> FileDisk {
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

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kaifuku-partition-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Finds a tool on PATH or in the sbin directories (not always on a user's PATH); panics when absent.
fn tool(name: &str) -> PathBuf {
    let package = match name {
        "sfdisk" | "fdisk" => "fdisk",
        "mmls" => "sleuthkit",
        "mkntfs" => "ntfs-3g",
        "mkfs.vfat" => "dosfstools",
        "truncate" => "coreutils",
        _ => "?",
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is needed by this test but is not installed (Debian package \
                 `{package}`); install it: these tests do not skip"
            )
        })
}

/// Runs a tool in `dir` (so image names stay short); returns stdout, or stdout+stderr on failure.
fn try_run(dir: &Path, name: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(tool(name));
    cmd.args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {name}: {e}"));
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{name} {args:?} failed ({}):\n{stdout}\n{stderr}",
            out.status
        ))
    }
}

fn run(dir: &Path, name: &str, args: &[&str], stdin: Option<&str>) -> String {
    try_run(dir, name, args, stdin).unwrap_or_else(|e| panic!("{e}"))
}

fn new_image(s: &Scratch, name: &str, size: u64) -> PathBuf {
    run(&s.0, "truncate", &["-s", &size.to_string(), name], None);
    s.path(name)
}

/// Copies the non-zero 64 KiB blocks of `src` into `dst` at `offset`, keeping `dst` sparse.
fn copy_nonzero(src: &Path, dst: &Path, offset: u64) {
    let mut input = File::open(src).unwrap();
    let out = OpenOptions::new().write(true).open(dst).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = input.read(&mut buf[filled..]).unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        if buf[..filled].iter().any(|&b| b != 0) {
            out.write_all_at(&buf[..filled], offset + pos).unwrap();
        }
        pos += filled as u64;
    }
}

/// Puts a fresh NTFS volume (quick format, sector size `ss`) into a partition of `image`.
fn format_ntfs(s: &Scratch, image: &Path, start: u64, size: u64, ss: u64, label: &str) {
    let part = new_image(s, "part.ntfs", size);
    let hidden = (start / ss).to_string();
    let ss_text = ss.to_string();
    run(
        &s.0,
        "mkntfs",
        &[
            "-F",
            "-Q",
            "-s",
            &ss_text,
            "-p",
            &hidden,
            "-L",
            label,
            "part.ntfs",
        ],
        None,
    );
    copy_nonzero(&part, image, start);
    std::fs::remove_file(part).unwrap();
}

/// Puts a fresh FAT32 volume (sector size `ss`) into a partition of `image`, as Windows' ESP.
fn format_fat32(s: &Scratch, image: &Path, start: u64, size: u64, ss: u64) {
    let part = new_image(s, "part.fat", size);
    let hidden = (start / ss).to_string();
    let ss_text = ss.to_string();
    run(
        &s.0,
        "mkfs.vfat",
        &[
            "-F", "32", "-s", "1", "-S", &ss_text, "-h", &hidden, "-n", "SYSTEM", "part.fat",
        ],
        None,
    );
    copy_nonzero(&part, image, start);
    std::fs::remove_file(part).unwrap();
}

/// Reads the table through a byte counter; the partition layer must stay cheap.
fn read_table(image: &Path) -> Result<PartitionTable, PartitionError> {
    let disk = Counted::new(FileDisk::open(image));
    let r = read_partitions(&disk);
    let stats = disk.stats();
    assert!(
        stats.bytes <= 256 * 1024,
        "reading the partition table moved {} bytes in {} calls",
        stats.bytes,
        stats.calls
    );
    r
}

fn boot_oem(image: &Path, t: &PartitionTable, number: u32) -> String {
    let disk = FileDisk::open(image);
    let view = t.partition(number).unwrap().view(&disk).unwrap();
    let mut oem = [0u8; 8];
    view.read_at(3, &mut oem).unwrap();
    String::from_utf8_lossy(&oem).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Independent readers.

fn sfdisk_json(s: &Scratch, name: &str) -> Value {
    let out = run(&s.0, "sfdisk", &["-J", name], None);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("sfdisk -J output: {e}\n{out}"))
}

/// The partition number at the end of a device node name such as `disk.img5`.
fn node_number(node: &str) -> u32 {
    let digits: String = node
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

/// Every field sfdisk reports agrees with ours, and neither side has extra partitions.
fn assert_matches_sfdisk(t: &PartitionTable, j: &Value) {
    let pt = &j["partitiontable"];
    let ss = pt["sectorsize"].as_u64().unwrap();
    assert_eq!(u64::from(t.sector_size), ss, "sector size");
    let parts = pt["partitions"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        t.partitions.len(),
        parts.len(),
        "partition count: ours {:#?}\nsfdisk {parts:#?}",
        t.partitions
    );
    match pt["label"].as_str().unwrap() {
        "gpt" => {
            assert_eq!(t.scheme, Scheme::Gpt);
            assert_eq!(t.disk_guid.as_deref(), pt["id"].as_str());
        }
        "dos" => {
            assert_eq!(t.scheme, Scheme::Mbr);
            assert_eq!(t.disk_signature.as_deref(), pt["id"].as_str());
        }
        other => panic!("unexpected label {other}"),
    }
    for p in &parts {
        let number = node_number(p["node"].as_str().unwrap());
        let ours = t
            .partition(number)
            .unwrap_or_else(|| panic!("partition {number} missing: {:#?}", t.partitions));
        let start = p["start"].as_u64().unwrap();
        let size = p["size"].as_u64().unwrap();
        assert_eq!(ours.first_lba, start, "partition {number} start");
        assert_eq!(ours.last_lba, start + size - 1, "partition {number} end");
        assert_eq!(ours.start, start * ss);
        assert_eq!(ours.size, size * ss);
        let ty = p["type"].as_str().unwrap();
        if t.scheme == Scheme::Gpt {
            assert_eq!(ours.type_code, ty);
            assert_eq!(ours.guid.as_deref(), p["uuid"].as_str());
            assert_eq!(
                ours.name.as_deref().unwrap_or(""),
                p["name"].as_str().unwrap_or("")
            );
            let attrs = p["attrs"].as_str().unwrap_or("");
            let bits = ours.attributes.unwrap();
            assert_eq!(
                bits & 1 != 0,
                attrs.contains("RequiredPartition"),
                "{attrs}"
            );
            assert_eq!(bits >> 63 != 0, attrs.contains("GUID:63"), "{attrs}");
        } else {
            let code = u8::from_str_radix(ty, 16).unwrap();
            assert_eq!(ours.type_code, format!("0x{code:02x}"));
            assert_eq!(ours.bootable, p["bootable"].as_bool().unwrap_or(false));
            assert_eq!(ours.container, matches!(code, 0x05 | 0x0F | 0x85));
            assert_eq!(ours.logical, number > 4);
        }
    }
}

/// `mmls -a -M`: allocated, non-metadata volumes as (start, length, description), in sectors.
fn mmls(s: &Scratch, name: &str, ss: u64) -> Vec<(u64, u64, String)> {
    let out = run(
        &s.0,
        "mmls",
        &["-a", "-M", "-b", &ss.to_string(), name],
        None,
    );
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let slot_ok = f.len() >= 5
                && f[0].ends_with(':')
                && f[1]
                    .split(':')
                    .all(|x| x.chars().all(|c| c.is_ascii_digit()));
            slot_ok.then(|| {
                (
                    f[2].parse().unwrap(),
                    f[4].parse().unwrap(),
                    f[5..].join(" "),
                )
            })
        })
        .collect()
}

/// mmls sees the same data partitions (containers aside) at the same sectors.
fn assert_matches_mmls(t: &PartitionTable, rows: &[(u64, u64, String)]) {
    let mut ours: Vec<_> = t.data_partitions().collect();
    ours.sort_by_key(|p| p.first_lba);
    assert_eq!(ours.len(), rows.len(), "ours {ours:#?}\nmmls {rows:#?}");
    for (p, (start, len, desc)) in ours.iter().zip(rows) {
        assert_eq!(p.first_lba, *start, "partition {}", p.number);
        assert_eq!(p.last_lba - p.first_lba + 1, *len, "partition {}", p.number);
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            assert_eq!(name, desc);
        }
    }
}

/// `fdisk -b 4096 -l -o ...` rows for `image`: (number, fields after the device column).
fn fdisk_4k_list(s: &Scratch, name: &str, columns: &str) -> (String, Vec<(u32, Vec<String>)>) {
    let out = run(
        &s.0,
        "fdisk",
        &["-b", "4096", "-l", "-o", columns, name],
        None,
    );
    let rows = out
        .lines()
        .filter(|l| l.starts_with(name))
        .map(|l| {
            let mut f = l.split_whitespace();
            let n = node_number(f.next().unwrap());
            (n, f.map(String::from).collect())
        })
        .collect();
    (out, rows)
}

// ---------------------------------------------------------------------------------------------
// Layouts as Windows makes them.

#[test]
fn gpt_windows_512() {
    let s = Scratch::new("gpt512");
    let img = new_image(&s, "disk.img", 300 * MIB);
    let script = format!(
        "label: gpt\n\
         size=100MiB, type={ESP}, name=\"EFI system partition\"\n\
         size=16MiB, type={MSR}, name=\"Microsoft reserved partition\"\n\
         size=140MiB, type={BASIC}, name=\"Basic data partition\"\n\
         type={WINRE}, attrs=\"RequiredPartition GUID:63\"\n"
    );
    run(&s.0, "sfdisk", &["disk.img"], Some(&script));
    let j = sfdisk_json(&s, "disk.img");
    let t = read_table(&img).unwrap();
    let p = |n: u32| t.partition(n).unwrap().clone();
    format_fat32(&s, &img, p(1).start, p(1).size, 512);
    format_ntfs(&s, &img, p(3).start, p(3).size, 512, "Windows");
    format_ntfs(&s, &img, p(4).start, p(4).size, 512, "Recovery");

    let t = read_table(&img).unwrap();
    assert_matches_sfdisk(&t, &j);
    assert_matches_mmls(&t, &mmls(&s, "disk.img", 512));
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    let names: Vec<&str> = t.partitions.iter().map(|p| p.type_name.name()).collect();
    assert_eq!(
        names,
        [
            "EFI System",
            "Microsoft reserved",
            "Basic data",
            "Windows recovery"
        ]
    );
    assert_eq!(boot_oem(&img, &t, 1), "mkfs.fat");
    assert_eq!(boot_oem(&img, &t, 3), "NTFS    ");
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["scheme"], "gpt");
    assert_eq!(json["partitions"][2]["type_name"], "Basic data");
}

#[test]
fn mbr_windows_512() {
    let s = Scratch::new("mbr512");
    let img = new_image(&s, "disk.img", 256 * MIB);
    let script = "label: dos\n\
                  size=50MiB, type=7, bootable\n\
                  size=150MiB, type=7\n\
                  type=27\n";
    run(&s.0, "sfdisk", &["disk.img"], Some(script));
    let j = sfdisk_json(&s, "disk.img");
    let t = read_table(&img).unwrap();
    let p = |n: u32| t.partition(n).unwrap().clone();
    format_ntfs(&s, &img, p(1).start, p(1).size, 512, "System Reserved");
    format_ntfs(&s, &img, p(2).start, p(2).size, 512, "Windows");
    format_ntfs(&s, &img, p(3).start, p(3).size, 512, "Recovery");

    let t = read_table(&img).unwrap();
    assert_matches_sfdisk(&t, &j);
    assert_matches_mmls(&t, &mmls(&s, "disk.img", 512));
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    // The boot sectors settle the sector size: no "assumed" note.
    assert!(t.notes.is_empty(), "{:?}", t.notes);
    assert!(t.partitions[0].bootable && !t.partitions[1].bootable);
    assert_eq!(t.partitions[0].type_name, "NTFS/exFAT/HPFS");
    assert_eq!(t.partitions[2].type_name, "Windows recovery (hidden NTFS)");
    assert_eq!(boot_oem(&img, &t, 2), "NTFS    ");
    assert_eq!(serde_json::to_value(&t).unwrap()["scheme"], "mbr");
}

#[test]
fn mbr_extended_512() {
    let s = Scratch::new("ext512");
    let img = new_image(&s, "disk.img", 128 * MIB);
    let script = "label: dos\n\
                  size=30MiB, type=7, bootable\n\
                  type=f\n\
                  size=40MiB, type=7\n\
                  type=7\n";
    run(&s.0, "sfdisk", &["disk.img"], Some(script));
    let j = sfdisk_json(&s, "disk.img");
    let t = read_table(&img).unwrap();
    assert_matches_sfdisk(&t, &j);
    for n in [1, 5, 6] {
        let p = t.partition(n).unwrap().clone();
        format_ntfs(&s, &img, p.start, p.size, 512, &format!("Vol{n}"));
    }
    let t = read_table(&img).unwrap();
    assert_matches_sfdisk(&t, &j);
    assert_matches_mmls(&t, &mmls(&s, "disk.img", 512));
    assert!(t.warnings.is_empty() && t.notes.is_empty(), "{t:#?}");
    let ext = t.partition(2).unwrap();
    assert!(ext.container && ext.type_name == "Extended");
    assert_eq!(t.data_partitions().count(), 3);
    assert!(t.partition(5).unwrap().logical && t.partition(6).unwrap().logical);
    assert_eq!(boot_oem(&img, &t, 6), "NTFS    ");
}

// ---------------------------------------------------------------------------------------------
// 4096-byte logical sectors (sfdisk ignores `sector-size: 4096` on a plain file and recalculates
// to 512, so these tables are made with `fdisk -b 4096`).

#[test]
fn sfdisk_sector_size_header_on_a_file() {
    // sfdisk (util-linux 2.38) answers `sector-size: 4096` on a plain file with "the sizes will be
    // recalculated to match the device" and writes a 512-byte-sector table; whatever it does, we
    // must agree with what it reports.
    let s = Scratch::new("sf4k");
    let img = new_image(&s, "disk.img", 64 * MIB);
    let script = format!("label: gpt\nsector-size: 4096\nsize=16MiB, type={BASIC}\n");
    run(&s.0, "sfdisk", &["disk.img"], Some(&script));
    let t = read_table(&img).unwrap();
    assert_matches_sfdisk(&t, &sfdisk_json(&s, "disk.img"));
}

#[test]
fn gpt_windows_4096() {
    let s = Scratch::new("gpt4k");
    let img = new_image(&s, "disk.img", 512 * MIB);
    // The ESP is 260 MiB, as Windows makes it on 4Kn disks (FAT32 needs 65525 clusters).
    let commands = format!(
        "g\n\
         n\n1\n\n+260M\nt\n{ESP}\n\
         n\n2\n\n+16M\nt\n2\n{MSR}\n\
         n\n3\n\n+120M\nt\n3\n{BASIC}\n\
         n\n4\n\n\nt\n4\n{WINRE}\n\
         x\nn\n1\nEFI system partition\nn\n3\nBasic data partition\nn\n4\nRecovery\nR\n4\nr\n\
         w\n"
    );
    run(&s.0, "fdisk", &["-b", "4096", "disk.img"], Some(&commands));
    let t = read_table(&img).unwrap();
    assert_eq!(t.sector_size, 4096);
    let p = |n: u32| t.partition(n).unwrap().clone();
    format_fat32(&s, &img, p(1).start, p(1).size, 4096);
    format_ntfs(&s, &img, p(3).start, p(3).size, 4096, "Windows");
    format_ntfs(&s, &img, p(4).start, p(4).size, 4096, "Recovery");

    let t = read_table(&img).unwrap();
    assert_eq!(t.scheme, Scheme::Gpt);
    assert_eq!(t.sector_size, 4096);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_matches_mmls(&t, &mmls(&s, "disk.img", 4096));
    let (out, rows) = fdisk_4k_list(&s, "disk.img", "Device,Start,Sectors,Type-UUID,UUID");
    assert!(
        out.contains("Sector size (logical/physical): 4096"),
        "{out}"
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Disk identifier: "))
        .unwrap();
    assert_eq!(t.disk_guid.as_deref(), Some(id));
    assert_eq!(rows.len(), 4, "{out}");
    for (n, f) in rows {
        let ours = t.partition(n).unwrap();
        let start: u64 = f[0].parse().unwrap();
        let sectors: u64 = f[1].parse().unwrap();
        assert_eq!(
            (ours.first_lba, ours.last_lba),
            (start, start + sectors - 1)
        );
        assert_eq!((ours.start, ours.size), (start * 4096, sectors * 4096));
        assert_eq!(ours.type_code, f[2]);
        assert_eq!(ours.guid.as_deref(), Some(f[3].as_str()));
    }
    assert_eq!(t.partition(4).unwrap().attributes.unwrap() & 1, 1);
    assert_eq!(t.partition(2).unwrap().type_name, "Microsoft reserved");
    assert_eq!(boot_oem(&img, &t, 1), "mkfs.fat");
    assert_eq!(boot_oem(&img, &t, 3), "NTFS    ");
}

fn assert_matches_fdisk_dos_4k(s: &Scratch, t: &PartitionTable) {
    let (out, rows) = fdisk_4k_list(s, "disk.img", "Device,Start,Sectors,Id,Boot");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Disk identifier: "))
        .unwrap();
    assert_eq!(t.disk_signature.as_deref(), Some(id));
    assert_eq!(rows.len(), t.partitions.len(), "{out}\n{t:#?}");
    for (n, f) in rows {
        let ours = t.partition(n).unwrap();
        let start: u64 = f[0].parse().unwrap();
        let sectors: u64 = f[1].parse().unwrap();
        assert_eq!(
            (ours.first_lba, ours.last_lba),
            (start, start + sectors - 1)
        );
        assert_eq!((ours.start, ours.size), (start * 4096, sectors * 4096));
        let code = u8::from_str_radix(&f[2], 16).unwrap();
        assert_eq!(ours.type_code, format!("0x{code:02x}"));
        assert_eq!(ours.bootable, f.get(3).is_some_and(|b| b == "*"));
    }
}

#[test]
fn mbr_windows_4096() {
    let s = Scratch::new("mbr4k");
    let img = new_image(&s, "disk.img", 256 * MIB);
    let commands = "o\n\
                    n\np\n1\n\n+50M\nt\n7\na\n\
                    n\np\n2\n\n\nt\n2\n7\n\
                    w\n";
    run(&s.0, "fdisk", &["-b", "4096", "disk.img"], Some(commands));

    // Unformatted, nothing on the disk tells 512 from 4096: 512 is assumed, and said so.
    let t = read_table(&img).unwrap();
    assert_eq!(t.sector_size, 512);
    assert!(
        t.notes.iter().any(|n| n.contains("assumed 512")),
        "{:?}",
        t.notes
    );

    // With NTFS boot sectors at the 4096-sector offsets, the size is found.
    let lba = |n: usize| {
        let f = std::fs::read(&img).unwrap();
        let e = &f[446 + 16 * (n - 1)..];
        let start = u64::from(u32::from_le_bytes(e[8..12].try_into().unwrap()));
        let len = u64::from(u32::from_le_bytes(e[12..16].try_into().unwrap()));
        (start * 4096, len * 4096)
    };
    let (s1, l1) = lba(1);
    let (s2, l2) = lba(2);
    format_ntfs(&s, &img, s1, l1, 4096, "System Reserved");
    format_ntfs(&s, &img, s2, l2, 4096, "Windows");
    let t = read_table(&img).unwrap();
    assert_eq!(t.scheme, Scheme::Mbr);
    assert_eq!(t.sector_size, 4096);
    assert!(t.notes.iter().any(|n| n.contains("4096")), "{:?}", t.notes);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    assert_matches_fdisk_dos_4k(&s, &t);
    assert_matches_mmls(&t, &mmls(&s, "disk.img", 4096));
    assert_eq!(boot_oem(&img, &t, 2), "NTFS    ");
}

#[test]
fn mbr_extended_4096() {
    let s = Scratch::new("ext4k");
    let img = new_image(&s, "disk.img", 256 * MIB);
    let commands = "o\n\
                    n\np\n1\n\n+50M\nt\n7\na\n\
                    n\ne\n2\n\n\n\
                    n\n\n+20M\n\
                    n\n\n\n\
                    w\n";
    run(&s.0, "fdisk", &["-b", "4096", "disk.img"], Some(commands));
    // No file systems: the extended partition's tables are found only at 4096-byte offsets.
    let t = read_table(&img).unwrap();
    assert_eq!(t.sector_size, 4096, "{t:#?}");
    assert_eq!(t.partitions.len(), 4);
    assert!(t.partition(2).unwrap().container);
    assert_matches_fdisk_dos_4k(&s, &t);
    assert_matches_mmls(&t, &mmls(&s, "disk.img", 4096));
}

// ---------------------------------------------------------------------------------------------
// No table, damaged tables, truncated images.

#[test]
fn bare_ntfs_volume() {
    let s = Scratch::new("bare");
    let img = new_image(&s, "disk.img", 64 * MIB);
    run(
        &s.0,
        "mkntfs",
        &["-F", "-Q", "-s", "512", "-L", "Bare", "disk.img"],
        None,
    );
    // sfdisk sees the 55AA and calls it an empty DOS label; mmls finds no volume system.
    let j = sfdisk_json(&s, "disk.img");
    assert!(j["partitiontable"]["partitions"].is_null(), "{j}");
    assert!(try_run(&s.0, "mmls", &["disk.img"], None).is_err());

    let t = read_table(&img).unwrap();
    assert_eq!(t.scheme, Scheme::None);
    assert_eq!(t.sector_size, 512);
    let p = &t.partitions[0];
    assert_eq!((p.number, p.start, p.size), (1, 0, 64 * MIB));
    assert_eq!(p.type_code, "NTFS");
    assert_eq!(boot_oem(&img, &t, 1), "NTFS    ");
}

#[test]
fn empty_image_has_no_table() {
    let s = Scratch::new("empty");
    let img = new_image(&s, "disk.img", 16 * MIB);
    let err = read_table(&img).unwrap_err();
    assert!(matches!(err, PartitionError::NoTable), "{err:?}");
}

fn small_gpt(s: &Scratch) -> (PathBuf, Value) {
    let img = new_image(s, "disk.img", 64 * MIB);
    let script = format!(
        "label: gpt\n\
         size=16MiB, type={ESP}, name=\"EFI system partition\"\n\
         size=16MiB, type={MSR}\n\
         type={BASIC}, name=\"Basic data partition\"\n"
    );
    run(&s.0, "sfdisk", &["disk.img"], Some(&script));
    let j = sfdisk_json(s, "disk.img");
    (img, j)
}

fn flip_byte(image: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5A;
    f.write_all_at(&b, offset).unwrap();
}

#[test]
fn gpt_with_both_headers_corrupted_is_refused() {
    let s = Scratch::new("badcrc");
    let (img, _) = small_gpt(&s);
    let size = std::fs::metadata(&img).unwrap().len();
    flip_byte(&img, 512 + 0x38); // disk GUID in the primary header
    flip_byte(&img, size - 512 + 0x38); // and in the backup header
    let err = read_table(&img).unwrap_err();
    match &err {
        PartitionError::GptDamaged { primary, backup } => {
            assert!(primary.contains("CRC32"), "{primary}");
            assert!(backup.contains("CRC32"), "{backup}");
        }
        other => panic!("expected GptDamaged, got {other:?}"),
    }
    assert!(err.to_string().contains("Nothing was changed"), "{err}");
}

#[test]
fn gpt_with_corrupted_primary_uses_the_backup() {
    let s = Scratch::new("badprimary");
    let (img, j) = small_gpt(&s);
    flip_byte(&img, 512 + 0x38);
    let t = read_table(&img).unwrap();
    assert_matches_sfdisk(&t, &j);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("primary GPT is damaged") && w.contains("CRC32")),
        "{:?}",
        t.warnings
    );
}

#[test]
fn truncated_gpt_image() {
    let s = Scratch::new("trunc");
    let (img, j) = small_gpt(&s);
    // Cut the image in the middle of the last partition: the backup GPT is gone.
    run(
        &s.0,
        "truncate",
        &["-s", &(50 * MIB).to_string(), "disk.img"],
        None,
    );
    let t = read_table(&img).unwrap();
    assert_matches_sfdisk(&t, &j);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.contains("backup GPT is missing")),
        "{:?}",
        t.warnings
    );
    assert!(
        t.warnings.iter().any(|w| w.contains("Partition 3 ends")),
        "{:?}",
        t.warnings
    );
    let disk = FileDisk::open(&img);
    assert!(t.partition(3).unwrap().view(&disk).is_err());
    assert!(t.partition(2).unwrap().view(&disk).is_ok());

    // Cut inside the primary header's sector: no answer, and a clear one.
    run(&s.0, "truncate", &["-s", "1000", "disk.img"], None);
    let err = read_table(&img).unwrap_err();
    assert!(matches!(err, PartitionError::GptDamaged { .. }), "{err:?}");
    // Shorter than one sector.
    run(&s.0, "truncate", &["-s", "300", "disk.img"], None);
    let err = read_table(&img).unwrap_err();
    assert!(
        matches!(err, PartitionError::TooSmall { size: 300 }),
        "{err:?}"
    );
}

#[test]
fn truncated_mbr_image() {
    let s = Scratch::new("truncmbr");
    let img = new_image(&s, "disk.img", 64 * MIB);
    run(
        &s.0,
        "sfdisk",
        &["disk.img"],
        Some("label: dos\nsize=16MiB, type=7, bootable\ntype=f\nsize=8MiB, type=7\ntype=7\n"),
    );
    let j = sfdisk_json(&s, "disk.img");
    let t = read_table(&img).unwrap();
    format_ntfs(
        &s,
        &img,
        t.partition(1).unwrap().start,
        t.partition(1).unwrap().size,
        512,
        "A",
    );
    run(
        &s.0,
        "truncate",
        &["-s", &(40 * MIB).to_string(), "disk.img"],
        None,
    );
    let t = read_table(&img).unwrap();
    assert_matches_sfdisk(&t, &j);
    assert!(
        t.warnings.iter().any(|w| w.contains("Partition 6 ends")),
        "{:?}",
        t.warnings
    );
}
