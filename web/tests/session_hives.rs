//! The page's session, natively, on the Windows volumes of `tests/make-hive-fixtures.py` (hives
//! written by hivex): the inspect view carries the build and each hive's state as the script's
//! hivexget and header reads give them, they cross to the page unchanged, and the page words them
//! in both languages. Skipped, by name, when the script cannot run (root, FUSE, ntfs-3g, hivex).
#![cfg(not(target_arch = "wasm32"))]

use kaifuku_io::ReadAt;
use kaifuku_rescue::registry::HiveName;
use kaifuku_rescue::vocabulary::{HiveState, WindowsVersion};
use kaifuku_web::i18n::{Lang, T};
use kaifuku_web::session::Session;
use kaifuku_web::view::{InspectView, Reads};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Source(File, u64);

impl ReadAt for Source {
    fn size(&self) -> u64 {
        self.1
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        kaifuku_io::check_range(offset, buf.len(), self.1)?;
        self.0.read_exact_at(buf, offset)
    }
}

fn hive_volumes(test: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kaifuku-web-hives-{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/make-hive-fixtures.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(dir),
        Some(77) => {
            eprintln!("SKIPPED {test}: {}", text.trim());
            None
        }
        _ => panic!("make-hive-fixtures.py failed:\n{text}"),
    }
}

fn inspect(path: &Path) -> InspectView {
    let f = File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    let mut s = Session::new(Source(f, size), "win-hives.raw");
    s.inspect(|r| Reads {
        calls: r.calls,
        bytes: r.bytes,
        ms: 0.0,
    })
}

#[test]
fn the_page_shows_the_build_and_the_dirty_hive() {
    let test = "the_page_shows_the_build_and_the_dirty_hive";
    let Some(dir) = hive_volumes(test) else {
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let view = inspect(&dir.join("win-hives.raw"));
    let broken = inspect(&dir.join("win-hives-broken.raw"));
    std::fs::remove_dir_all(&dir).ok();

    // What the worker sends is what the page reads back.
    let json = serde_json::to_string(&view).unwrap();
    let back: InspectView = serde_json::from_str(&json).unwrap();
    assert_eq!(back, view);

    assert_eq!(view.volumes.len(), 1);
    let registry = view.volumes[0]
        .registry
        .as_ref()
        .expect("a registry section");
    let build: u32 = expected["SOFTWARE"]["CurrentBuildNumber"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        registry.windows_version,
        WindowsVersion::Build {
            build,
            product_name: Some(expected["SOFTWARE"]["ProductName"].as_str().unwrap().into()),
        }
    );
    let header = &expected["SYSTEM"]["header"];
    let system = HiveState::Dirty {
        primary_sequence: header["primary_sequence"].as_u64().unwrap() as u32,
        secondary_sequence: header["secondary_sequence"].as_u64().unwrap() as u32,
    };
    assert_eq!(registry.system.state, system);
    let sequence = expected["SOFTWARE"]["header"]["primary_sequence"]
        .as_u64()
        .unwrap() as u32;
    assert_eq!(registry.software.state, HiveState::Clean { sequence });

    let (ja, en) = (T(Lang::Ja), T(Lang::En));
    assert_eq!(
        en.windows_version(&registry.windows_version),
        format!("Windows build {build} (Windows Server 2019 Datacenter)")
    );
    assert!(ja
        .windows_version(&registry.windows_version)
        .starts_with(&format!("Windows のビルド {build}")));
    assert!(en
        .hive_state(HiveName::System, &system)
        .starts_with("SYSTEM hive: DIRTY."));
    assert!(ja
        .hive_state(HiveName::System, &system)
        .starts_with("SYSTEM ハイブ: 書き込み途中。"));

    let registry = broken.volumes[0]
        .registry
        .as_ref()
        .expect("a registry section");
    assert_eq!(registry.system.state, HiveState::Missing);
    assert!(matches!(
        registry.software.state,
        HiveState::Damaged {
            error: kaifuku_registry::HiveError::Truncated {
                file_size: 8192,
                ..
            }
        }
    ));
    assert_eq!(registry.windows_version, WindowsVersion::NoSoftwareHive);
    assert_eq!(
        en.hive_state(HiveName::System, &registry.system.state),
        "SYSTEM hive: not found"
    );
}
