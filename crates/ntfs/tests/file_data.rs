//! `Volume::file_data`: a file's data stream as a byte space, read in pieces of odd sizes across
//! cluster and run boundaries, must hash to what the fixture generator read through an ntfs-3g
//! mount (`<image>.vol<N>.files.json`), sparse files included; reads past the end fail.

use kaifuku_io::{check_range, ReadAt, Slice};
use kaifuku_ntfs::Volume;
use serde_json::Value;
use sha2::{Digest, Sha256};
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

fn fixtures() -> PathBuf {
    std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/out/fixtures"))
}

fn json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/make-fixtures.py)", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// Reads all of `data` in pieces of 1, 7, 4093, 65 537 ... bytes, hashing as it goes.
fn hash_in_pieces<R: ReadAt>(data: &R) -> String {
    let mut h = Sha256::new();
    let sizes = [1usize, 7, 4093, 65_537, 511, 300_001];
    let (mut at, mut i) = (0u64, 0usize);
    while at < data.size() {
        let n = (sizes[i % sizes.len()] as u64).min(data.size() - at) as usize;
        let mut buf = vec![0u8; n];
        data.read_at(at, &mut buf).unwrap();
        h.update(&buf);
        at += n as u64;
        i += 1;
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn file_data_reads_what_ntfs_3g_read() {
    let dir = fixtures();
    let image = dir.join("gpt-win.raw");
    let f = File::open(&image).unwrap();
    let size = f.metadata().unwrap().len();
    let disk = F(f, size);
    let expected = json(&dir.join("gpt-win.raw.expected.json"));
    let volume = expected["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["windows"] == true)
        .expect("a Windows volume");
    let files = json(&dir.join(volume["files_sha256"].as_str().unwrap()));
    let partition = expected["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == volume["partition"])
        .unwrap();
    let view = Slice::new(
        &disk,
        partition["start"].as_u64().unwrap(),
        partition["size"].as_u64().unwrap(),
    )
    .unwrap();
    let vol = Volume::open(view).unwrap();
    let mut checked = 0;
    for path in [
        "Windows/System32/config/SYSTEM",
        "Windows/System32/config/SYSTEM.LOG1",
        "Windows/System32/drivers/CrowdStrike/C-00000291-00000000-00000032.sys",
        "Windows/System32/drivers/etc/hosts",
    ] {
        let want = &files[path];
        assert!(want.is_object(), "{path} is not in the fixture's file list");
        let (_, rec) = vol.lookup_path(path).unwrap().unwrap();
        let data = vol.file_data(&rec).unwrap().expect("a data stream");
        assert_eq!(data.size(), want["size"].as_u64().unwrap(), "{path}");
        assert_eq!(
            hash_in_pieces(&data),
            want["sha256"].as_str().unwrap(),
            "{path}"
        );
        let mut past = [0u8; 2];
        let err = data.read_at(data.size() - 1, &mut past).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{path}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}
