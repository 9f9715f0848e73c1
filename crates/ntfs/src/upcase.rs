//! `$UpCase` (file 10): the volume's own case table. NTFS compares names by mapping each UTF-16 unit
//! through it; Windows wrote the table at format time, so we read it rather than assume Unicode rules.

use crate::NtfsError;
use crate::Structure;
use std::cmp::Ordering;

/// The volume's `$UpCase` table: one upper-case unit for each of the 65536 UTF-16 units.
pub struct UpcaseTable {
    map: Vec<u16>,
}

impl UpcaseTable {
    /// Reads the table from `$UpCase`'s 128 KiB of data.
    pub fn from_bytes(b: &[u8]) -> Result<UpcaseTable, NtfsError> {
        if b.len() != 65536 * 2 {
            return Err(NtfsError::damaged(
                Structure::UpCase,
                format!("$UpCase is {} bytes, expected 131072", b.len()),
            ));
        }
        Ok(UpcaseTable {
            map: crate::bytes::utf16_units(b),
        })
    }

    /// The unit NTFS compares `u` as.
    pub fn upcase(&self, u: u16) -> u16 {
        self.map[u as usize]
    }

    /// Case-insensitive order as NTFS collates file names (shorter prefix first).
    pub fn cmp_ignore_case(&self, a: &[u16], b: &[u16]) -> Ordering {
        for (x, y) in a.iter().zip(b) {
            match self.upcase(*x).cmp(&self.upcase(*y)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        a.len().cmp(&b.len())
    }

    /// Full NTFS file-name collation: case-insensitive, then the raw units as a tie-break.
    pub fn collate(&self, a: &[u16], b: &[u16]) -> Ordering {
        self.cmp_ignore_case(a, b).then_with(|| a.cmp(b))
    }

    /// Case-insensitive glob match: `*` any run, `?` one unit; everything else compared upcased.
    pub fn glob_match(&self, pattern: &[u16], name: &[u16]) -> bool {
        let (mut p, mut n) = (0usize, 0usize);
        let (mut star, mut mark) = (None, 0usize);
        while n < name.len() {
            if p < pattern.len() && pattern[p] == b'*' as u16 {
                star = Some(p);
                mark = n;
                p += 1;
            } else if p < pattern.len()
                && (pattern[p] == b'?' as u16 || self.upcase(pattern[p]) == self.upcase(name[n]))
            {
                p += 1;
                n += 1;
            } else if let Some(s) = star {
                p = s + 1;
                mark += 1;
                n = mark;
            } else {
                return false;
            }
        }
        while p < pattern.len() && pattern[p] == b'*' as u16 {
            p += 1;
        }
        p == pattern.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascii_table() -> UpcaseTable {
        let mut map: Vec<u16> = (0..=u16::MAX).collect();
        for c in b'a'..=b'z' {
            map[c as usize] = (c - 32) as u16;
        }
        UpcaseTable { map }
    }

    fn w(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn glob_and_collation() {
        let t = ascii_table();
        assert!(t.glob_match(
            &w("C-00000291*.sys"),
            &w("c-00000291-00000000-00000034.SYS")
        ));
        assert!(t.glob_match(&w("C-00000291*.sys"), &w("C-00000291.sys")));
        assert!(!t.glob_match(
            &w("C-00000291*.sys"),
            &w("C-00000291-00000000-00000035.dat")
        ));
        assert!(!t.glob_match(
            &w("C-00000291*.sys"),
            &w("C-00000292-00000000-00000001.sys")
        ));
        assert!(!t.glob_match(&w("C-00000291*.sys"), &w("C-0000~1.SYS")));
        assert!(t.glob_match(&w("*"), &w("")));
        assert!(t.glob_match(&w("a?c*"), &w("ABCdef")));
        assert_eq!(t.collate(&w("abc"), &w("ABD")), Ordering::Less);
        assert_eq!(t.collate(&w("ab"), &w("abc")), Ordering::Less);
        assert_eq!(t.collate(&w("ABC"), &w("abc")), Ordering::Less);
        assert_eq!(t.cmp_ignore_case(&w("ABC"), &w("abc")), Ordering::Equal);
    }
}
