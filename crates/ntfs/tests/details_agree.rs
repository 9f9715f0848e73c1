//! Our own reader and the `ntfs` crate must agree on every file's size, times, header and all-zero
//! flag: the own reader is the fallback when the crate cannot read a record (an `$MFT` with an
//! `$ATTRIBUTE_LIST`), so it must never answer differently.

use kaifuku_io::{check_range, ReadAt, Slice};
use kaifuku_ntfs::Volume;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

struct F(File, u64);
impl ReadAt for F {
    fn size(&self) -> u64 {
        self.1
    }
    fn read_at(&self, o: u64, b: &mut [u8]) -> std::io::Result<()> {
        check_range(o, b.len(), self.1)?;
        self.0.read_exact_at(b, o)
    }
}

fn open(p: &Path) -> F {
    let f = File::open(p)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/make-fixtures.py)", p.display()));
    let n = f.metadata().unwrap().len();
    F(f, n)
}

fn fixtures() -> PathBuf {
    std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/out/fixtures"))
}

fn compare_dir<R: ReadAt>(vol: &Volume<R>, dir: &str) -> usize {
    let rec = vol
        .lookup_dir(dir)
        .unwrap()
        .unwrap_or_else(|| panic!("{dir} missing"));
    let mut n = 0;
    for e in vol.directory(&rec).unwrap().entries(vol).unwrap() {
        if e.key.namespace == kaifuku_ntfs::Namespace::Dos
            || e.key.file_attributes & 0x1000_0000 != 0
        {
            continue; // DOS twins and subdirectories
        }
        let r = vol.read_live(e.file_ref).unwrap();
        if r.is_directory() {
            continue;
        }
        let a = vol.file_details_crate(&e).unwrap();
        let b = vol.file_details_own(&e).unwrap();
        let ctx = format!("{dir}\\{}", e.name());
        assert_eq!(a.size, b.size, "{ctx}");
        assert_eq!(
            (a.created_ticks, a.modified_ticks),
            (b.created_ticks, b.modified_ticks),
            "{ctx}"
        );
        assert_eq!(
            (&a.mft_changed, &a.accessed),
            (&b.mft_changed, &b.accessed),
            "{ctx}"
        );
        assert_eq!(a.header_hex, b.header_hex, "{ctx}");
        assert_eq!(a.all_zero, b.all_zero, "{ctx}");
        n += 1;
    }
    n
}

#[test]
fn own_reader_agrees_with_the_ntfs_crate_on_fixtures() {
    // Bare volume, 64 KiB clusters; the CrowdStrike directory has ~150 files of many sizes.
    let src = open(&fixtures().join("bare-64k.raw"));
    let vol = Volume::open(&src).unwrap();
    assert!(compare_dir(&vol, "\\Windows\\System32\\drivers\\CrowdStrike") > 100);
    // 512-byte clusters with an all-zero file, inside an MBR partition (offset from sfdisk via the
    // generator's expected answers).
    let exp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("mbr-win.raw.expected.json")).unwrap(),
    )
    .unwrap();
    let v = exp["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["windows"] == true)
        .unwrap();
    let disk = open(&fixtures().join("mbr-win.raw"));
    let part = Slice::new(
        &disk,
        v["offset"].as_u64().unwrap(),
        disk.size() - v["offset"].as_u64().unwrap(),
    )
    .unwrap();
    let vol = Volume::open(&part).unwrap();
    assert!(compare_dir(&vol, "\\Windows\\System32\\drivers\\CrowdStrike") > 100);
    assert!(compare_dir(&vol, "\\Windows\\System32\\drivers") > 300);
}
