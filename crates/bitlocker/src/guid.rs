//! GUIDs as BitLocker stores them (the first three fields little-endian) and as people write them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A GUID in its on-disk byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, with or without braces, any case.
    pub fn parse(text: &str) -> Option<Guid> {
        let t = text.trim().trim_start_matches('{').trim_end_matches('}');
        let hex: String = t.chars().filter(|c| *c != '-').collect();
        let groups: Vec<&str> = t.split('-').collect();
        if hex.len() != 32
            || groups.len() != 5
            || groups.iter().map(|g| g.len()).ne([8, 4, 4, 4, 12])
        {
            return None;
        }
        let mut text_order = [0u8; 16];
        for (i, byte) in text_order.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        let mut disk = text_order;
        disk[0..4].reverse();
        disk[4..6].reverse();
        disk[6..8].reverse();
        Some(Guid(disk))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        for x in &b[10..16] {
            write!(f, "{x:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

impl Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Guid, D::Error> {
        let text = String::deserialize(d)?;
        Guid::parse(&text).ok_or_else(|| serde::de::Error::custom("not a GUID"))
    }
}

#[cfg(test)]
mod tests {
    use super::Guid;

    #[test]
    fn round_trips_the_text_form() {
        let g = Guid::parse("3e55195c-8811-4d9b-97b4-2b9e5f8f5384").unwrap();
        assert_eq!(g.0[0], 0x5c);
        assert_eq!(g.to_string(), "3E55195C-8811-4D9B-97B4-2B9E5F8F5384");
        assert_eq!(
            Guid::parse("{3E55195C-8811-4D9B-97B4-2B9E5F8F5384}"),
            Some(g)
        );
        assert_eq!(Guid::parse("3e55195c88114d9b97b42b9e5f8f5384"), None);
    }
}
