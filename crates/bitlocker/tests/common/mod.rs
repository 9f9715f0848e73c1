//! The BitLocker volumes Windows made (the cryptsetup project's test set, GPL, kept beside the
//! repository in ../shared/testdata/bitlk): extracted once per test process into a scratch
//! directory, with the facts `images.conf` lists for each.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kaifuku_io::ReadAt;

/// A file read with `pread`.
pub struct FileReader {
    file: File,
    size: u64,
}

impl FileReader {
    pub fn open(path: &Path) -> FileReader {
        let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let size = file.metadata().unwrap().len();
        FileReader { file, size }
    }
}

impl ReadAt for FileReader {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        kaifuku_io::check_range(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)
    }
}

/// One `[section]` of images.conf.
pub type ImageFacts = BTreeMap<String, String>;

pub struct Archive {
    pub dir: PathBuf,
    pub images: BTreeMap<String, ImageFacts>,
}

impl Archive {
    pub fn image(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.img"))
    }
}

fn archive_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/bitlk/bitlk-images.tar.xz")
}

/// The extracted archive, or `None` (the test then says by name that it is skipped) when the
/// shared test data is not beside the repository.
pub fn archive(test: &str) -> Option<&'static Archive> {
    static ARCHIVE: OnceLock<Option<Archive>> = OnceLock::new();
    let found = ARCHIVE.get_or_init(|| {
        let tar = archive_path();
        if !tar.exists() {
            return None;
        }
        // One extracted copy per archive, shared by test runs (the images are only read; tests
        // that write work on copies); made under a private name, then renamed into place.
        let size = std::fs::metadata(&tar).unwrap().len();
        let shared = std::env::temp_dir().join(format!("kaifuku-bitlk-images-{size}"));
        if !shared.join("bitlk-images/images.conf").exists() {
            let private =
                std::env::temp_dir().join(format!("kaifuku-bitlk-extract-{}", std::process::id()));
            std::fs::create_dir_all(&private).unwrap();
            let status = Command::new("tar")
                .arg("-xJf")
                .arg(&tar)
                .arg("-C")
                .arg(&private)
                .status()
                .expect("tar runs");
            assert!(status.success(), "extracting {}", tar.display());
            if std::fs::rename(&private, &shared).is_err() {
                // Another run got there first.
                let _ = std::fs::remove_dir_all(&private);
            }
        }
        let dir = shared.join("bitlk-images");
        let conf = std::fs::read_to_string(dir.join("images.conf")).unwrap();
        Some(Archive {
            images: parse_conf(&conf),
            dir,
        })
    });
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: the GPL test data bitlk/bitlk-images.tar.xz is absent (it is kept beside the repository in ../shared/testdata, not in it)"
        );
    }
    found.as_ref()
}

fn parse_conf(text: &str) -> BTreeMap<String, ImageFacts> {
    let mut images = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            images.insert(name.to_string(), ImageFacts::new());
        } else if let (Some(name), Some((k, v))) = (&current, line.split_once('=')) {
            images
                .get_mut(name)
                .unwrap()
                .insert(k.to_string(), v.to_string());
        }
    }
    images
}

/// A non-empty fact of an image.
pub fn fact<'a>(facts: &'a ImageFacts, key: &str) -> Option<&'a str> {
    facts.get(key).map(String::as_str).filter(|v| !v.is_empty())
}
