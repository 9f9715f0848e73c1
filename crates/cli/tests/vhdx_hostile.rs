//! Damaged and unsupported VHDX files (the qemu-img fixture with one structure broken, checksums
//! resealed where the damage must get past them): `fix` gives a clear message and writes nothing;
//! damage is exit 3, a refusal with advice (differencing disk, non-empty log) exit 2. One damaged
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
    fix_refused(
        "log",
        &|f| {
            for h in HEADERS {
                f.write(h + 48, &[0x11; 16]);
                f.reseal(h, 4096);
            }
        },
        2,
        &["non-empty log", "qemu-img check -r all"],
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
