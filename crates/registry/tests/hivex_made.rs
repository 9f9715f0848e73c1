//! The hive reader against hives written by hivex (`tests/make-hive-fixtures.py --hives-only`),
//! judged by what `hivexget` and `hivexsh` read back from them (the script's `expected.json`).
//! Skipped, by name, when python3-hivex or libhivex-bin is missing.

use kaifuku_io::Counted;
use kaifuku_registry::{Hive, HiveError, HiveStructure, REG_DWORD, REG_SZ};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const CURRENT_VERSION: &str = r"Microsoft\Windows NT\CurrentVersion";

/// The hives, made once per test run (or taken from `KAIFUKU_HIVE_FIXTURES`); `None` when the
/// script says it must be skipped.
fn hives(test: &str) -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("KAIFUKU_HIVE_FIXTURES") {
            return Some(PathBuf::from(d));
        }
        // Under the build's own scratch directory (`target/tmp`), which `cargo clean` empties.
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hives-{}", std::process::id()));
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/make-hive-fixtures.py");
        let out = Command::new("python3")
            .arg(&script)
            .arg("--hives-only")
            .arg(&dir)
            .output()
            .expect("running python3");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => Some(dir),
            Some(77) => {
                eprintln!("{}", text.trim());
                None
            }
            _ => panic!("make-hive-fixtures.py failed:\n{text}"),
        }
    });
    if dir.is_none() {
        eprintln!("SKIPPED {test}: the hive fixtures could not be made (see above)");
    }
    dir.as_deref()
}

fn expected(dir: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
}

fn load(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

/// hivexsh's `lsval` line for a value: `"name"="text"` or `"name"=dword:xxxxxxxx`.
fn hivexsh_line(name: &str, value: &kaifuku_registry::Value) -> String {
    match value.value_type {
        REG_SZ => format!(
            "\"{name}\"=\"{}\"",
            value.as_string().unwrap().replace('\\', "\\\\")
        ),
        REG_DWORD => format!("\"{name}\"=dword:{:08x}", value.as_dword().unwrap()),
        other => panic!("the fixture holds no value of type {other}"),
    }
}

#[test]
fn the_build_number_is_what_hivexget_reads() {
    let Some(dir) = hives("the_build_number_is_what_hivexget_reads") else {
        return;
    };
    let e = &expected(dir)["SOFTWARE"];
    let bytes = load(dir, "SOFTWARE");
    let counted = Counted::new(bytes.as_slice());
    let hive = Hive::open(&counted).unwrap();
    let build = hive
        .value_at(CURRENT_VERSION, "CurrentBuildNumber")
        .unwrap()
        .expect("CurrentBuildNumber is there");
    assert_eq!(build.value_type, REG_SZ);
    assert_eq!(
        build.as_string().unwrap(),
        e["CurrentBuildNumber"].as_str().unwrap()
    );
    assert_eq!(build.as_string().unwrap(), "17763");
    // Only the cells on the way are read: a few KiB of a 9 MB hive.
    let stats = counted.stats();
    assert!(
        stats.bytes < 64 * 1024 && stats.calls < 100,
        "reading one value took {} reads and {} bytes of a {}-byte hive",
        stats.calls,
        stats.bytes,
        bytes.len()
    );
    let product = hive
        .value_at(CURRENT_VERSION, "productname")
        .unwrap()
        .unwrap();
    assert_eq!(
        product.as_string().unwrap(),
        e["ProductName"].as_str().unwrap()
    );
    let major = hive
        .value_at(CURRENT_VERSION, "CurrentMajorVersionNumber")
        .unwrap()
        .unwrap();
    assert_eq!(
        major.as_dword().unwrap().to_string(),
        e["CurrentMajorVersionNumber"].as_str().unwrap()
    );
    let ubr = hive.value_at(CURRENT_VERSION, "UBR").unwrap().unwrap();
    assert_eq!(
        ubr.as_dword().unwrap().to_string(),
        e["UBR"].as_str().unwrap()
    );
    // Asking a string for a number is a typed error, not a guess.
    assert!(matches!(
        build.as_dword(),
        Err(HiveError::WrongType {
            found: REG_SZ,
            expected: REG_DWORD,
            ..
        })
    ));
}

#[test]
fn every_value_of_current_version_is_what_hivexsh_lists() {
    let Some(dir) = hives("every_value_of_current_version_is_what_hivexsh_lists") else {
        return;
    };
    let e = &expected(dir)["SOFTWARE"];
    let bytes = load(dir, "SOFTWARE");
    let hive = Hive::open(bytes.as_slice()).unwrap();
    let key = hive.key(CURRENT_VERSION).unwrap().unwrap();
    let listed: Vec<&str> = e["current_version_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), key.value_count as usize);
    for line in listed {
        let name = line.split('"').nth(1).unwrap();
        let value = hive.value(&key, name).unwrap().unwrap();
        assert_eq!(hivexsh_line(name, &value), line);
    }
    assert_eq!(hive.value(&key, "NoSuchValue").unwrap(), None);
}

#[test]
fn subkeys_through_lh_and_ri_lists_are_what_hivexsh_lists() {
    let Some(dir) = hives("subkeys_through_lh_and_ri_lists_are_what_hivexsh_lists") else {
        return;
    };
    let e = &expected(dir)["SOFTWARE"];
    // The fixture has the list kinds this test is about (counted by the script's own walk).
    assert_eq!(e["subkey_lists"]["ri"], 1);
    assert!(e["subkey_lists"]["lh"].as_u64().unwrap() >= 2);
    let bytes = load(dir, "SOFTWARE");
    let hive = Hive::open(bytes.as_slice()).unwrap();
    let names = |v: &Json| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    let root = hive.root().unwrap();
    assert_eq!(hive.subkey_names(&root).unwrap(), names(&e["root_subkeys"]));
    let microsoft = hive.key("Microsoft").unwrap().unwrap();
    let listed = names(&e["microsoft_subkeys"]);
    assert_eq!(hive.subkey_names(&microsoft).unwrap(), listed);
    // Every one of them is found by name, in other cases too, whichever leaf of the index it is in.
    for name in &listed {
        let path = format!("Microsoft\\{}", name.to_uppercase());
        let key = hive
            .key(&path)
            .unwrap()
            .unwrap_or_else(|| panic!("{path} not found"));
        assert_eq!(String::from_utf16_lossy(&key.name), *name);
    }
    assert!(hive.key(r"microsoft\ünïcødé κλειδί").unwrap().is_some());
    assert!(hive.key(r"Microsoft\キー").unwrap().is_some());
    assert_eq!(hive.key(r"Microsoft\Vendor9999").unwrap(), None);
    assert_eq!(
        hive.key(r"Microsoft\Windows NT\CurrentVersion\Nope")
            .unwrap(),
        None
    );
    assert_eq!(
        hive.value_at(r"Nope\Nope", "CurrentBuildNumber").unwrap(),
        None
    );
}

#[test]
fn a_value_larger_than_a_segment_is_what_hivex_reads() {
    let Some(dir) = hives("a_value_larger_than_a_segment_is_what_hivex_reads") else {
        return;
    };
    let bytes = load(dir, "SOFTWARE");
    let hive = Hive::open(bytes.as_slice()).unwrap();
    let blob = hive
        .value_at(r"Microsoft\Cryptography", "Blob")
        .unwrap()
        .unwrap();
    assert_eq!(blob.value_type, 3);
    assert_eq!(blob.data, load(dir, "Blob.hivex"));
    assert_eq!(blob.data.len(), 40000);
}

#[test]
fn sequence_numbers_and_checksum_are_the_headers() {
    let Some(dir) = hives("sequence_numbers_and_checksum_are_the_headers") else {
        return;
    };
    let e = expected(dir);
    for (file, dirty) in [
        ("SOFTWARE", false),
        ("SYSTEM", true),
        ("SYSTEM.clean", false),
    ] {
        let bytes = load(dir, file);
        let hive = Hive::open(bytes.as_slice()).unwrap();
        let b = hive.base_block();
        let h = &e[file]["header"];
        assert_eq!(
            u64::from(b.primary_sequence),
            h["primary_sequence"].as_u64().unwrap()
        );
        assert_eq!(
            u64::from(b.secondary_sequence),
            h["secondary_sequence"].as_u64().unwrap()
        );
        assert_eq!(u64::from(b.root_cell), h["root_cell"].as_u64().unwrap());
        assert_eq!(
            u64::from(b.hive_bins_size),
            h["hive_bins_size"].as_u64().unwrap()
        );
        assert_eq!(b.is_dirty(), dirty, "{file}");
    }
    let system = load(dir, "SYSTEM");
    let hive = Hive::open(system.as_slice()).unwrap();
    let name = hive
        .value_at(
            r"ControlSet001\Control\ComputerName\ComputerName",
            "ComputerName",
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        name.as_string().unwrap(),
        e["SYSTEM"]["ComputerName"].as_str().unwrap()
    );
}

#[test]
fn cut_and_damaged_hives_are_typed_errors() {
    let Some(dir) = hives("cut_and_damaged_hives_are_typed_errors") else {
        return;
    };
    let software = load(dir, "SOFTWARE");
    let cut = &software[..8192];
    assert!(matches!(
        Hive::open(cut),
        Err(HiveError::Truncated {
            file_size: 8192,
            ..
        })
    ));
    assert!(matches!(
        Hive::open(&software[..100]),
        Err(HiveError::Read { .. })
    ));
    let mut flipped = software.clone();
    flipped[200] ^= 0x40;
    assert!(matches!(
        Hive::open(flipped.as_slice()),
        Err(HiveError::BadChecksum { .. })
    ));
    // The root key's cell turned free: a typed error naming the key node and its offset.
    let mut freed = software.clone();
    let root = u32::from_le_bytes(software[36..40].try_into().unwrap()) as usize;
    let at = 4096 + root;
    let size = i32::from_le_bytes(freed[at..at + 4].try_into().unwrap());
    freed[at..at + 4].copy_from_slice(&(-size).to_le_bytes());
    let hive = Hive::open(freed.as_slice()).unwrap();
    assert!(matches!(
        hive.key(CURRENT_VERSION),
        Err(HiveError::Damaged { structure: HiveStructure::KeyNode, offset, .. }) if offset == at as u64
    ));
}

/// Every 32-bit word of the SYSTEM hive's bins, overwritten in turn with values chosen to
/// break sizes, counts and offsets: every lookup ends in an answer or a typed error, never a
/// panic or a long loop.
#[test]
fn overwritten_words_never_panic() {
    let Some(dir) = hives("overwritten_words_never_panic") else {
        return;
    };
    let system = load(dir, "SYSTEM.clean");
    for at in (4096..system.len()).step_by(4) {
        for word in [
            0u32,
            0xFFFF_FFFF,
            0x8000_0000,
            0x7FFF_FFF8,
            0x0000_0020,
            0xFFFF_FFF0,
            0x0010_FFFF,
        ] {
            let mut bytes = system.clone();
            bytes[at..at + 4].copy_from_slice(&word.to_le_bytes());
            let counted = Counted::new(bytes.as_slice());
            let Ok(hive) = Hive::open(&counted) else {
                continue;
            };
            let _ = hive.value_at(
                r"ControlSet001\Control\ComputerName\ComputerName",
                "ComputerName",
            );
            let _ = hive.value_at("Select", "Current");
            if let Ok(root) = hive.root() {
                let _ = hive.subkey_names(&root);
            }
            assert!(
                counted.stats().calls < 10_000,
                "word {word:#x} at {at}: {:?}",
                counted.stats()
            );
        }
    }
}
