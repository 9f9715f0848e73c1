//! Key and value names: stored as Latin-1 bytes when the "compressed name" flag is set, else
//! UTF-16LE; compared case-insensitively, as the registry does (each UTF-16 unit upper-cased on
//! its own).

/// The name stored in a key or value cell: `len` bytes at `at` of `data`, Latin-1 when
/// `compressed`, else UTF-16LE. `Err` says what is wrong, for the caller's damage report.
pub(crate) fn stored_name(
    data: &[u8],
    at: usize,
    len: usize,
    compressed: bool,
) -> Result<Vec<u16>, String> {
    let Some(raw) = data.get(at..at + len) else {
        return Err(format!(
            "its name of {len} bytes runs past the {}-byte cell",
            data.len()
        ));
    };
    if !compressed && len % 2 != 0 {
        return Err(format!("its UTF-16 name has an odd length ({len} bytes)"));
    }
    Ok(units(raw, compressed))
}

/// A name as stored, decoded to UTF-16 units.
pub(crate) fn units(raw: &[u8], compressed: bool) -> Vec<u16> {
    if compressed {
        raw.iter().map(|&b| u16::from(b)).collect()
    } else {
        raw.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    }
}

/// The upper case of one UTF-16 unit when it has a one-unit upper case; the unit itself otherwise
/// (surrogates, characters whose upper case is several characters).
pub(crate) fn upcase_unit(u: u16) -> u16 {
    let Some(c) = char::from_u32(u32::from(u)) else {
        return u;
    };
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(single), None) if (single as u32) <= 0xFFFF => single as u16,
        _ => u,
    }
}

/// Whether two names are equal ignoring case.
pub(crate) fn same_name(a: &[u16], b: &[u16]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&x, &y)| x == y || upcase_unit(x) == upcase_unit(y))
}

/// The `lh` list's hash of a name: `h = h * 37 + upcase(unit)` over its UTF-16 units, modulo 2^32.
pub(crate) fn lh_hash(name: &[u16]) -> u32 {
    name.iter().fold(0u32, |h, &u| {
        h.wrapping_mul(37).wrapping_add(u32::from(upcase_unit(u)))
    })
}

/// The `lf` list's hint of a name: its first four characters as stored (Latin-1 bytes; zero
/// padded), compared ignoring ASCII case.
pub(crate) fn lf_hint_matches(hint: u32, name: &[u16]) -> bool {
    let hint = hint.to_le_bytes();
    (0..4).all(|i| {
        let want = name.get(i).copied();
        let have = hint[i];
        match want {
            None => have == 0,
            // A character outside Latin-1 is kept in the hint in a way this reader does not
            // model: it matches anything, and the name is compared in full.
            Some(u) if u > 0xFF => true,
            Some(u) => upcase_unit(u) == upcase_unit(u16::from(have)),
        }
    })
}

/// A name for messages.
pub(crate) fn display(name: &[u16]) -> String {
    String::from_utf16_lossy(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn names_compare_ignoring_case() {
        assert!(same_name(&u("CurrentVersion"), &u("CURRENTVERSION")));
        assert!(same_name(&u("Ünïcødé"), &u("üNÏCØDÉ")));
        assert!(!same_name(&u("Windows"), &u("Windows NT")));
    }

    #[test]
    fn lh_hash_is_case_blind() {
        assert_eq!(lh_hash(&u("Microsoft")), lh_hash(&u("MICROSOFT")));
        assert_eq!(lh_hash(&u("ab")), u32::from(b'A') * 37 + u32::from(b'B'));
    }

    #[test]
    fn lf_hint() {
        let hint = u32::from_le_bytes(*b"Micr");
        assert!(lf_hint_matches(hint, &u("microsoft")));
        assert!(!lf_hint_matches(hint, &u("Classes")));
        let short = u32::from_le_bytes([b'N', b'T', 0, 0]);
        assert!(lf_hint_matches(short, &u("nt")));
    }
}
