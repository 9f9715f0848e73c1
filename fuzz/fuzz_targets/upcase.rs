//! `$UpCase`: the table (which must be exactly 128 KiB), name collation and the rule's glob.
//!
//! Input: count of table changes n (u8), n × (unit u16 LE, upper u16 LE) over an ASCII table, the
//! pattern length in units (u8), then pattern and name as UTF-16LE. Checked: collation is a total
//! order consistent with case-insensitive equality; `*` matches everything; a name matches itself
//! as a pattern when it holds no wildcard.
#![no_main]

use kaifuku_fuzz::le;
use kaifuku_ntfs::upcase::UpcaseTable;
use libfuzzer_sys::fuzz_target;
use std::cmp::Ordering;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    let Some((&n, mut rest)) = data.split_first() else {
        return;
    };
    static ASCII: OnceLock<Vec<u8>> = OnceLock::new();
    let mut table = ASCII
        .get_or_init(|| {
            (0..=u16::MAX)
                .map(|u| {
                    if (0x61..=0x7A).contains(&u) {
                        u - 0x20
                    } else {
                        u
                    }
                })
                .flat_map(u16::to_le_bytes)
                .collect()
        })
        .clone();
    for _ in 0..n {
        if rest.len() < 4 {
            return;
        }
        let at = 2 * le(&rest[..2]) as usize;
        table[at..at + 2].copy_from_slice(&rest[2..4]);
        rest = &rest[4..];
    }
    // Any other length is refused.
    assert!(UpcaseTable::from_bytes(&table[..table.len() - 2]).is_err());
    let up = UpcaseTable::from_bytes(&table).expect("128 KiB table");
    let Some((&plen, rest)) = rest.split_first() else {
        return;
    };
    let units: Vec<u16> = rest.chunks_exact(2).map(|c| le(c) as u16).collect();
    let (pattern, name) = units.split_at((plen as usize).min(units.len()));
    let _ = up.glob_match(pattern, name);
    assert!(up.glob_match(&[b'*' as u16], name));
    if !name.iter().any(|u| *u == b'*' as u16 || *u == b'?' as u16) {
        assert!(up.glob_match(name, name));
    }
    let ab = up.collate(pattern, name);
    assert_eq!(up.collate(name, pattern), ab.reverse());
    assert_eq!(ab == Ordering::Equal, pattern == name);
    if up.cmp_ignore_case(pattern, name) != Ordering::Equal {
        assert_eq!(up.cmp_ignore_case(pattern, name), ab);
    }
});
