//! Registry hives: the base block, cells, key nodes, subkey lists (`lf`/`lh`/`li`/`ri`), value
//! keys and value data, as inspect reads SOFTWARE and SYSTEM.
//!
//! Input: a flags byte, then the hive file. Flag bit 0 reseals the base block's XOR checksum so
//! that mutated header fields get past it. Checked: lookups end in an answer or a typed error;
//! a key found by path has the name asked for, and a value's string is read without panicking.
#![no_main]

use kaifuku_io::Counted;
use kaifuku_registry::Hive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, hive)) = data.split_first() else {
        return;
    };
    let mut hive = hive.to_vec();
    if flags & 1 != 0 && hive.len() >= 512 {
        let sum = hive[..508].chunks_exact(4).fold(0u32, |a, w| {
            a ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]])
        });
        hive[508..512].copy_from_slice(&sum.to_le_bytes());
    }
    let counted = Counted::new(hive.as_slice());
    let Ok(h) = Hive::open(&counted) else {
        return;
    };
    let _ = h.base_block().is_dirty();
    for path in [r"Microsoft\Windows NT\CurrentVersion", "Select", ""] {
        if let Ok(Some(key)) = h.key(path) {
            if let Some(last) = path.rsplit('\\').next().filter(|l| !l.is_empty()) {
                let name = String::from_utf16_lossy(&key.name);
                assert!(name.eq_ignore_ascii_case(last), "{path} found as {name}");
            }
            for value in ["CurrentBuildNumber", "ProductName", "Current", ""] {
                if let Ok(Some(v)) = h.value(&key, value) {
                    let _ = v.as_string();
                    let _ = v.as_dword();
                }
            }
            let _ = h.subkey_names(&key);
        }
    }
    // Every read is bounded: a hostile hive cannot make the reader loop.
    assert!(counted.stats().calls < 1_000_000, "{:?}", counted.stats());
});
