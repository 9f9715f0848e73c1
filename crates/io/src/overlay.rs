//! Patches as data: every modification kaifuku plans is a byte range over the virtual disk with a
//! label saying which structure it changes. An [`Overlay`] shows a byte space with patches applied,
//! so the verifier reads exactly what will be written.

use crate::{check_range, ReadAt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;

/// New bytes for `offset .. offset + bytes.len()` of a byte space, and what they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// The structure changed, e.g. "MFT record 42" or "$Bitmap bytes 0x1200..0x1208".
    pub label: String,
}

/// Serialised as offset, length and label (the bytes go into files, not reports).
impl Serialize for Patch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Patch", 3)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("len", &self.bytes.len())?;
        st.serialize_field("label", &self.label)?;
        st.end()
    }
}

impl Patch {
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }
}

/// A byte space seen through a set of non-overlapping patches.
pub struct Overlay<R> {
    base: R,
    /// Keyed by start offset; ranges never overlap (later patches are merged in).
    ranges: BTreeMap<u64, Vec<u8>>,
}

impl<R: ReadAt> Overlay<R> {
    pub fn new(base: R) -> Self {
        Overlay {
            base,
            ranges: BTreeMap::new(),
        }
    }

    pub fn base(&self) -> &R {
        &self.base
    }

    /// Writes `bytes` at `offset` in the overlay (the base is never touched). Overlapping or
    /// adjacent earlier patches are merged, so the overlay always holds disjoint ranges.
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        check_range(offset, bytes.len(), self.base.size())?;
        if bytes.is_empty() {
            return Ok(());
        }
        let end = offset + bytes.len() as u64;
        // Collect ranges that touch [offset, end].
        let touching: Vec<u64> = self
            .ranges
            .range(..=end)
            .filter(|(s, v)| **s + v.len() as u64 >= offset)
            .map(|(s, _)| *s)
            .collect();
        let mut new_start = offset;
        let mut new_end = end;
        for s in &touching {
            let len = self.ranges[s].len() as u64;
            new_start = new_start.min(*s);
            new_end = new_end.max(s + len);
        }
        let mut merged = vec![0u8; (new_end - new_start) as usize];
        // Fill from the current view first so gaps between touched ranges keep the base bytes.
        self.read_at(new_start, &mut merged)?;
        let at = (offset - new_start) as usize;
        merged[at..at + bytes.len()].copy_from_slice(bytes);
        for s in touching {
            self.ranges.remove(&s);
        }
        self.ranges.insert(new_start, merged);
        Ok(())
    }

    /// The patched ranges, in offset order, with the bytes they now hold.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.ranges.iter().map(|(s, v)| (*s, v.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl<R: ReadAt> ReadAt for Overlay<R> {
    fn size(&self) -> u64 {
        self.base.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size())?;
        self.base.read_at(offset, buf)?;
        let end = offset + buf.len() as u64;
        // The range starting at or before `offset` may reach into the read; later ones start inside it.
        let first = self
            .ranges
            .range(..=offset)
            .next_back()
            .map(|(s, _)| *s)
            .unwrap_or(offset);
        for (s, v) in self.ranges.range(first..end) {
            let r_end = s + v.len() as u64;
            if r_end <= offset {
                continue;
            }
            let from = (*s).max(offset);
            let to = r_end.min(end);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&v[(from - s) as usize..(to - s) as usize]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_reads_through_patches_and_merges() {
        let base = vec![0u8; 100];
        let mut o = Overlay::new(&base);
        o.write(10, &[1, 2, 3]).unwrap();
        o.write(20, &[9]).unwrap();
        o.write(12, &[7, 7]).unwrap(); // overlaps the first, adjacent to nothing else
        let mut b = [0u8; 16];
        o.read_at(8, &mut b).unwrap();
        assert_eq!(b, [0, 0, 1, 2, 7, 7, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]);
        let r: Vec<_> = o.ranges().map(|(s, v)| (s, v.to_vec())).collect();
        assert_eq!(r, vec![(10, vec![1, 2, 7, 7]), (20, vec![9])]);
        o.write(14, &[5, 5, 5, 5, 5, 5]).unwrap(); // bridges both
        let r: Vec<_> = o.ranges().map(|(s, v)| (s, v.to_vec())).collect();
        assert_eq!(r, vec![(10, vec![1, 2, 7, 7, 5, 5, 5, 5, 5, 5, 9])]);
        assert!(o.write(99, &[1, 2]).is_err());
        assert_eq!(base, vec![0u8; 100]);
    }
}
