//! Damaged and unsupported VHDX files (the qemu-img fixture with one structure broken, checksums
//! resealed where the damage must get past them): `fix` gives a clear message and writes nothing;
//! damage is exit 3, a refusal with advice (a differencing disk) exit 2. One damaged
//! copy of a header or region table is tolerated: the fix goes through and `qemu-img check`
//! accepts the output.

mod common;

use common::{fixtures, kaifuku, run_ok, sparse_copy, Scratch};
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

const HEADERS: [u64; 2] = [64 << 10, 128 << 10];
const REGION_TABLES: [u64; 2] = [192 << 10, 256 << 10];
const BAT_GUID: [u8; 4] = [0x66, 0x77, 0xC2, 0x2D];
const METADATA_GUID: [u8; 4] = [0x06, 0xA2, 0x7C, 0x8B];
const FILE_PARAMETERS: [u8; 4] = [0x37, 0x67, 0xA1, 0xCA];
const VIRTUAL_DISK_SIZE: [u8; 4] = [0x24, 0x42, 0xA5, 0x2F];

/// Bitwise CRC-32C, as MS-VHDX defines the header and region-table checksums.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

struct Image(std::fs::File);

impl Image {
    fn open(p: &Path) -> Image {
        Image(OpenOptions::new().read(true).write(true).open(p).unwrap())
    }
    fn read(&self, at: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.0.read_exact_at(&mut b, at).unwrap();
        b
    }
    fn write(&self, at: u64, b: &[u8]) {
        self.0.write_all_at(b, at).unwrap();
    }
    fn u32(&self, at: u64) -> u32 {
        u32::from_le_bytes(self.read(at, 4).try_into().unwrap())
    }
    fn u64(&self, at: u64) -> u64 {
        u64::from_le_bytes(self.read(at, 8).try_into().unwrap())
    }
    /// Recomputes the CRC-32C at offset 4 of the structure at `at`.
    fn reseal(&self, at: u64, len: usize) {
        let mut b = self.read(at, len);
        b[4..8].fill(0);
        let c = crc32c(&b);
        self.write(at + 4, &c.to_le_bytes());
    }
    /// (file offset, length) of a region, from the first region table.
    fn region(&self, guid: [u8; 4]) -> (u64, u64) {
        let t = REGION_TABLES[0];
        (0..u64::from(self.u32(t + 8)))
            .map(|i| t + 16 + i * 32)
            .find(|&e| self.read(e, 4) == guid)
            .map(|e| (self.u64(e + 16), u64::from(self.u32(e + 24))))
            .unwrap()
    }
    /// File offset of a metadata item.
    fn item(&self, guid: [u8; 4]) -> u64 {
        let (m, _) = self.region(METADATA_GUID);
        let n = u64::from(u16::from_le_bytes(self.read(m + 10, 2).try_into().unwrap()));
        (0..n)
            .map(|i| m + 32 + i * 32)
            .find(|&e| self.read(e, 4) == guid)
            .map(|e| m + u64::from(self.u32(e + 16)))
            .unwrap()
    }
}

/// Copies the fixture, breaks it with `damage`, runs `fix`, and checks the exit code, the words
/// of the message, and that nothing was written.
fn fix_refused(name: &str, damage: &dyn Fn(&Image), code: i32, words: &[&str]) {
    let s = Scratch::new(&format!("vhdx-hostile-{name}"));
    let img = s.path(&format!("{name}.vhdx"));
    sparse_copy(&fixtures().join("gpt-win-dynamic.vhdx"), &img);
    damage(&Image::open(&img));
    let out = s.path("out.vhdx");
    let o = kaifuku([
        OsStr::new("fix"),
        img.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, code, "{name}: {}", o.both());
    let text = o.both();
    for w in words {
        assert!(text.contains(w), "{name}: the message lacks {w:?}: {text}");
    }
    assert!(!out.exists(), "{name}: an output was written");
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    assert!(!Path::new(&partial).exists(), "{name}: a partial output");
}

#[test]
fn damaged_vhdx_structures_are_refused_without_output() {
    fix_refused(
        "both-headers",
        &|f| {
            for h in HEADERS {
                f.write(h + 200, &[0x5a]);
            }
        },
        3,
        &["both VHDX headers", "checksum mismatch"],
    );
    fix_refused(
        "both-region-tables",
        &|f| {
            for t in REGION_TABLES {
                f.write(t + 100, &[0x5a]);
            }
        },
        3,
        &["both VHDX region tables"],
    );
    fix_refused(
        "block-size",
        &|f| {
            let p = f.item(FILE_PARAMETERS);
            f.write(p, &(3u32 << 20).to_le_bytes());
        },
        3,
        &["block size 3145728 is invalid"],
    );
    fix_refused(
        "huge-size",
        &|f| {
            let p = f.item(VIRTUAL_DISK_SIZE);
            f.write(p, &(1u64 << 60).to_le_bytes());
        },
        3,
        &["at most 64 TiB"],
    );
    // Every present block's entry moved past the end of the file: the first read of the disk
    // (its partition table, in block 0) fails with the entry's offset.
    fix_refused(
        "bat-past-eof",
        &|f| {
            let (bat, _) = f.region(BAT_GUID);
            let entry = f.u64(bat);
            assert_eq!(entry & 7, 6, "block 0 is present in the fixture");
            f.write(bat, &((1u64 << 40) | 6).to_le_bytes());
        },
        3,
        &["outside the file"],
    );
    fix_refused(
        "bat-into-metadata",
        &|f| {
            let (bat, _) = f.region(BAT_GUID);
            let (meta, _) = f.region(METADATA_GUID);
            f.write(bat, &(meta | 6).to_le_bytes());
        },
        3,
        &["overlaps the metadata region"],
    );
}

#[test]
fn unsupported_vhdx_kinds_are_refused_with_advice() {
    fix_refused(
        "differencing",
        &|f| {
            let p = f.item(FILE_PARAMETERS);
            let flags = f.u32(p + 4) | 2;
            f.write(p + 4, &flags.to_le_bytes());
        },
        2,
        &["differencing VHDX", "Merge"],
    );
}

/// A header naming a log that holds no entry of it: the log cannot be replayed, so the file is
/// damaged (reading past it would show metadata the log may have changed).
#[test]
fn log_without_a_valid_sequence_is_damage() {
    fix_refused(
        "log",
        &|f| {
            for h in HEADERS {
                f.write(h + 48, &[0x11; 16]);
                f.reseal(h, 4096);
            }
        },
        3,
        &["the VHDX log", "no valid sequence"],
    );
}

/// One damaged copy of each: the other is used, the fix goes through, and qemu-img (which reads
/// the same copies by the same rules) accepts and reads the output.
#[test]
fn one_damaged_copy_is_tolerated() {
    let s = Scratch::new("vhdx-one-copy");
    let img = s.path("one-copy.vhdx");
    sparse_copy(&fixtures().join("gpt-win-dynamic.vhdx"), &img);
    let f = Image::open(&img);
    // The header that is not current, and the second region table.
    let stale = if f.u64(HEADERS[0] + 8) < f.u64(HEADERS[1] + 8) {
        HEADERS[0]
    } else {
        HEADERS[1]
    };
    f.write(stale + 300, &[0x77]);
    f.write(REGION_TABLES[1] + 300, &[0x77]);
    drop(f);
    let o = kaifuku([OsStr::new("inspect"), img.as_os_str()]);
    assert!(
        o.text()
            .contains("one copy of the VHDX header or region table is damaged"),
        "{}",
        o.both()
    );
    let out = s.path("out.vhdx");
    let o = kaifuku([
        OsStr::new("fix"),
        img.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    run_ok(
        "qemu-img",
        [
            OsStr::new("check"),
            OsStr::new("-f"),
            OsStr::new("vhdx"),
            out.as_os_str(),
        ],
    );
    // Both headers of the output are valid again.
    let f = Image::open(&out);
    for h in HEADERS {
        let mut b = f.read(h, 4096);
        let stored = u32::from_le_bytes(b[4..8].try_into().unwrap());
        b[4..8].fill(0);
        assert_eq!(stored, crc32c(&b), "header at {h}");
    }
}

/// One log entry per MS-VHDX holding data descriptors (4 KiB each), CRC-32C sealed.
fn log_entry(sequence: u64, guid: &[u8; 16], file_size: u64, writes: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let descriptor_sectors = (64 + 32 * writes.len()).div_ceil(4096);
    let len = 4096 * (descriptor_sectors + writes.len());
    let mut e = vec![0u8; len];
    e[0..4].copy_from_slice(b"loge");
    e[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    e[16..24].copy_from_slice(&sequence.to_le_bytes());
    e[24..28].copy_from_slice(&(writes.len() as u32).to_le_bytes());
    e[32..48].copy_from_slice(guid);
    e[48..56].copy_from_slice(&file_size.to_le_bytes());
    e[56..64].copy_from_slice(&file_size.to_le_bytes());
    for (i, (offset, bytes)) in writes.iter().enumerate() {
        let d = 64 + 32 * i;
        e[d..d + 4].copy_from_slice(b"desc");
        e[d + 4..d + 8].copy_from_slice(&bytes[4092..]);
        e[d + 8..d + 16].copy_from_slice(&bytes[..8]);
        e[d + 16..d + 24].copy_from_slice(&offset.to_le_bytes());
        e[d + 24..d + 32].copy_from_slice(&sequence.to_le_bytes());
        let s = 4096 * (descriptor_sectors + i);
        e[s..s + 4].copy_from_slice(b"data");
        e[s + 4..s + 8].copy_from_slice(&((sequence >> 32) as u32).to_le_bytes());
        e[s + 8..s + 4092].copy_from_slice(&bytes[8..4092]);
        e[s + 4092..s + 4096].copy_from_slice(&(sequence as u32).to_le_bytes());
    }
    e[4..8].fill(0);
    let c = crc32c(&e);
    e[4..8].copy_from_slice(&c.to_le_bytes());
    e
}

/// The fixture with a log entry that rewrites its first BAT sector (with the same bytes) and a
/// sector of the unused gap between the GPT entries and the first partition (one byte differs,
/// virtual byte 65535): `fix` replays
/// it, writes the replayed state with an empty log, and the output is the raw fix's disk (with
/// that byte), checked by `qemu-img check` and `qemu-img compare`; undo restores the input.
#[test]
fn fix_of_a_vhdx_with_a_log() {
    let s = Scratch::new("vhdx-log");
    let img = s.path("logged.vhdx");
    sparse_copy(&fixtures().join("gpt-win-dynamic.vhdx"), &img);
    let f = Image::open(&img);
    let file_size = f.0.metadata().unwrap().len();
    let current = if f.u64(HEADERS[0] + 8) > f.u64(HEADERS[1] + 8) {
        HEADERS[0]
    } else {
        HEADERS[1]
    };
    let log = f.u64(current + 72);
    let (bat, _) = f.region(BAT_GUID);
    let block0 = f.u64(bat) >> 20 << 20;
    // Virtual bytes 61440..65536: after the GPT entry array (which ends at 17408), before the
    // first partition (at 1 MiB); nothing reads or checksums them.
    let mut gap = f.read(block0 + 61440, 4096);
    gap[4095] ^= 0x5a;
    let guid = *b"kaifuku-cli-logs";
    let entry = log_entry(
        7,
        &guid,
        file_size,
        &[(bat, f.read(bat, 4096)), (block0 + 61440, gap)],
    );
    f.write(log, &entry);
    f.write(current + 48, &guid);
    f.reseal(current, 4096);
    drop(f);
    let o = kaifuku([OsStr::new("inspect"), img.as_os_str()]);
    assert!(
        o.text().contains("log not empty: 1 entries replayed"),
        "{}",
        o.both()
    );

    // The raw disk the log describes, fixed: the oracle.
    let raw = s.path("disk.raw");
    run_ok(
        "qemu-img",
        [
            OsStr::new("convert"),
            OsStr::new("-f"),
            OsStr::new("raw"),
            OsStr::new("-O"),
            OsStr::new("raw"),
            fixtures().join("gpt-win.raw").as_os_str(),
            raw.as_os_str(),
        ],
    );
    let r = Image::open(&raw);
    let b = r.read(65535, 1)[0] ^ 0x5a;
    r.write(65535, &[b]);
    drop(r);
    let raw_out = s.path("disk-fixed.raw");
    let o = kaifuku([
        OsStr::new("fix"),
        raw.as_os_str(),
        OsStr::new("-o"),
        raw_out.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());

    let out = s.path("out.vhdx");
    let undo = s.path("out.undo");
    let o = kaifuku([
        OsStr::new("fix"),
        img.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
        OsStr::new("--undo"),
        undo.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    // Read-only qemu-img refuses an image whose log needs replaying: these also prove it is empty.
    for args in [
        vec![
            OsStr::new("check"),
            OsStr::new("-f"),
            OsStr::new("vhdx"),
            out.as_os_str(),
        ],
        vec![
            OsStr::new("compare"),
            OsStr::new("-f"),
            OsStr::new("vhdx"),
            OsStr::new("-F"),
            OsStr::new("raw"),
            out.as_os_str(),
            raw_out.as_os_str(),
        ],
    ] {
        run_ok("qemu-img", args);
    }
    let o = kaifuku([OsStr::new("undo"), out.as_os_str(), undo.as_os_str()]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert_eq!(
        common::sha256(&out),
        common::sha256(&img),
        "undo restores the logged input"
    );
}
