//! Patches as data: every modification kaifuku plans is a byte range over the virtual disk with a
//! label saying which structure it changes. An [`Overlay`] shows a byte space with patches applied,
//! so the verifier reads exactly what will be written.
//!
//! A patch holds either bytes or a fill (one byte repeated): resetting a 64 MiB `$LogFile` to 0xFF
//! must not cost 64 MiB of memory in the browser, nor reading the old log to compare.

use crate::{check_range, ReadAt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::{fmt, io};

/// What a patch puts in its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchData {
    /// These exact bytes (records, bitmap bytes, index blocks).
    Bytes(Vec<u8>),
    /// `len` copies of `byte`, kept as two numbers however large the range (a reset `$LogFile`).
    Fill {
        /// The byte repeated over the range.
        byte: u8,
        /// Length of the range in bytes.
        len: u64,
    },
}

impl PatchData {
    /// Number of bytes this data covers.
    pub fn len(&self) -> u64 {
        match self {
            PatchData::Bytes(b) => b.len() as u64,
            PatchData::Fill { len, .. } => *len,
        }
    }

    /// Whether the data covers no byte at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies bytes `from .. from + buf.len()` of this data into `buf`.
    pub fn copy_to(&self, from: u64, buf: &mut [u8]) {
        match self {
            PatchData::Bytes(b) => {
                buf.copy_from_slice(&b[from as usize..from as usize + buf.len()])
            }
            PatchData::Fill { byte, .. } => buf.fill(*byte),
        }
    }

    /// The bytes of `from .. to`, as data of the same kind.
    pub fn sub(&self, from: u64, to: u64) -> PatchData {
        match self {
            PatchData::Bytes(b) => PatchData::Bytes(b[from as usize..to as usize].to_vec()),
            PatchData::Fill { byte, .. } => PatchData::Fill {
                byte: *byte,
                len: to - from,
            },
        }
    }
}

/// New data for `offset .. offset + data.len()` of a byte space, and what it belongs to.
///
/// `L` names the structure changed; each layer brings its own typed name (the NTFS layer's says
/// "MFT record 42" or "$Bitmap bytes 0x1200..0x1208"), worded in English by its `Display` and in
/// other languages by the front end from its variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch<L = String> {
    /// Where the range starts, in bytes from the start of the byte space it patches.
    pub offset: u64,
    /// What the range holds after the patch.
    pub data: PatchData,
    /// The structure changed.
    pub label: L,
}

/// Serialised as offset, length, the label in English, the label as data (`structure`) and (for
/// a fill) the fill byte; the bytes themselves go into files, not reports.
impl<L: Serialize + fmt::Display> Serialize for Patch<L> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Patch", 5)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("len", &self.len())?;
        st.serialize_field("label", &self.label.to_string())?;
        st.serialize_field("structure", &self.label)?;
        let fill = match self.data {
            PatchData::Fill { byte, .. } => Some(byte),
            PatchData::Bytes(_) => None,
        };
        st.serialize_field("fill", &fill)?;
        st.end()
    }
}

impl<L> Patch<L> {
    /// Number of bytes the patch changes.
    pub fn len(&self) -> u64 {
        self.data.len()
    }
    /// Whether the patch changes no byte at all.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Offset just past the patched range.
    pub fn end(&self) -> u64 {
        self.offset + self.len()
    }
}

/// Fills no larger than this may be turned into bytes when a later write overlaps them.
const MAX_MATERIALISE: u64 = 1 << 20;

/// A byte space seen through a set of non-overlapping patches.
pub struct Overlay<R> {
    base: R,
    /// Keyed by start offset; ranges never overlap.
    ranges: BTreeMap<u64, PatchData>,
}

impl<R: ReadAt> Overlay<R> {
    /// An overlay with no patches yet: it reads exactly as `base`.
    pub fn new(base: R) -> Self {
        Overlay {
            base,
            ranges: BTreeMap::new(),
        }
    }

    /// The unpatched byte space, for comparing old bytes with planned ones.
    pub fn base(&self) -> &R {
        &self.base
    }

    /// Starts of the ranges that overlap or touch `[offset, end]`.
    fn touching(&self, offset: u64, end: u64) -> Vec<u64> {
        self.ranges
            .range(..=end)
            .filter(|(s, v)| **s + v.len() >= offset)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Writes `bytes` at `offset` in the overlay (the base is never touched). Overlapping or
    /// adjacent byte ranges are merged, so the overlay always holds disjoint ranges. A write into a
    /// large fill is refused (nothing in kaifuku does that; it would mean two edits disagree).
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        check_range(offset, bytes.len(), self.base.size())?;
        if bytes.is_empty() {
            return Ok(());
        }
        let end = offset + bytes.len() as u64;
        let mut touching = self.touching(offset, end);
        // Adjacent fills stay separate; overlapping ones are turned into bytes when small.
        touching.retain(|s| {
            let v = &self.ranges[s];
            !(matches!(v, PatchData::Fill { .. }) && (s + v.len() == offset || *s == end))
        });
        for s in &touching {
            if let PatchData::Fill { len, .. } = self.ranges[s] {
                if len > MAX_MATERIALISE {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("a write at {offset} overlaps a {len}-byte fill at {s}"),
                    ));
                }
            }
        }
        let mut new_start = offset;
        let mut new_end = end;
        for s in &touching {
            new_start = new_start.min(*s);
            new_end = new_end.max(s + self.ranges[s].len());
        }
        let mut merged = vec![0u8; (new_end - new_start) as usize];
        // Fill from the current view first so gaps between touched ranges keep the base bytes.
        self.read_at(new_start, &mut merged)?;
        let at = (offset - new_start) as usize;
        merged[at..at + bytes.len()].copy_from_slice(bytes);
        for s in touching {
            self.ranges.remove(&s);
        }
        self.ranges.insert(new_start, PatchData::Bytes(merged));
        Ok(())
    }

    /// Fills `offset .. offset + len` with `byte`. The range must not overlap earlier patches
    /// (an adjacent fill of the same byte is extended).
    pub fn fill(&mut self, offset: u64, len: u64, byte: u8) -> io::Result<()> {
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= self.base.size())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "fill goes past the end")
            })?;
        if len == 0 {
            return Ok(());
        }
        let mut start = offset;
        let mut stop = end;
        for s in self.touching(offset, end) {
            let v = &self.ranges[&s];
            let adjacent = s + v.len() == offset || s == end;
            match v {
                PatchData::Fill { byte: b, len: l } if adjacent && *b == byte => {
                    start = start.min(s);
                    stop = stop.max(s + l);
                    self.ranges.remove(&s);
                }
                _ if adjacent => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("a fill at {offset} overlaps an earlier patch at {s}"),
                    ))
                }
            }
        }
        self.ranges.insert(
            start,
            PatchData::Fill {
                byte,
                len: stop - start,
            },
        );
        Ok(())
    }

    /// The patched ranges, in offset order, with the data they now hold.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, &PatchData)> {
        self.ranges.iter().map(|(s, v)| (*s, v))
    }

    /// The data covering `offset`, if that byte is patched.
    pub fn range_at(&self, offset: u64) -> Option<(u64, &PatchData)> {
        self.ranges
            .range(..=offset)
            .next_back()
            .filter(|(s, v)| offset < **s + v.len())
            .map(|(s, v)| (*s, v))
    }

    /// Whether nothing is patched yet (an empty plan).
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
        let end = offset + buf.len() as u64;
        // Only the gaps between patched ranges come from the base.
        let first = self
            .ranges
            .range(..=offset)
            .next_back()
            .map(|(s, _)| *s)
            .unwrap_or(offset);
        let mut pos = offset;
        for (s, v) in self.ranges.range(first..end) {
            let r_end = s + v.len();
            if r_end <= offset {
                continue;
            }
            let from = (*s).max(offset);
            if from > pos {
                self.base.read_at(
                    pos,
                    &mut buf[(pos - offset) as usize..(from - offset) as usize],
                )?;
            }
            let to = r_end.min(end);
            v.copy_to(
                from - s,
                &mut buf[(from - offset) as usize..(to - offset) as usize],
            );
            pos = to;
        }
        if pos < end {
            self.base
                .read_at(pos, &mut buf[(pos - offset) as usize..])?;
        }
        Ok(())
    }

    fn backing(&self) -> Option<crate::Backing> {
        self.base.backing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(o: &Overlay<&Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
        o.ranges()
            .map(|(s, v)| {
                let mut b = vec![0u8; v.len() as usize];
                v.copy_to(0, &mut b);
                (s, b)
            })
            .collect()
    }

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
        assert_eq!(bytes_of(&o), vec![(10, vec![1, 2, 7, 7]), (20, vec![9])]);
        o.write(14, &[5, 5, 5, 5, 5, 5]).unwrap(); // bridges both
        assert_eq!(
            bytes_of(&o),
            vec![(10, vec![1, 2, 7, 7, 5, 5, 5, 5, 5, 5, 9])]
        );
        assert!(o.write(99, &[1, 2]).is_err());
        assert_eq!(base, vec![0u8; 100]);
    }

    #[test]
    fn fills_are_stored_compactly_and_read_back() {
        let base: Vec<u8> = (0..200u8).collect();
        let mut o = Overlay::new(&base);
        o.fill(50, 20, 0xFF).unwrap();
        o.fill(70, 10, 0xFF).unwrap(); // adjacent, same byte: extended
        assert_eq!(o.ranges().count(), 1);
        assert!(matches!(
            o.ranges().next().unwrap().1,
            PatchData::Fill {
                byte: 0xFF,
                len: 30
            }
        ));
        o.write(80, &[1, 2]).unwrap(); // adjacent to the fill, stays separate
        let mut b = [0u8; 6];
        o.read_at(77, &mut b).unwrap();
        assert_eq!(b, [0xFF, 0xFF, 0xFF, 1, 2, 82]);
        assert!(
            o.fill(60, 5, 0).is_err(),
            "a fill over a fill of another byte is refused"
        );
        assert!(o.fill(81, 5, 0xFF).is_err(), "a fill over bytes is refused");
        // A small fill overlapped by a write becomes bytes.
        o.write(55, &[7]).unwrap();
        let mut c = [0u8; 3];
        o.read_at(54, &mut c).unwrap();
        assert_eq!(c, [0xFF, 7, 0xFF]);
        assert_eq!(o.range_at(54).unwrap().0, 50);
        assert!(o.range_at(10).is_none());
    }
}
