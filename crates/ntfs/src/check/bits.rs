//! A plain bit vector (one bit per cluster or per record), LSB-first within each byte as NTFS
//! bitmaps are stored, so that a volume of millions of clusters costs one bit per cluster.

#[derive(Debug, Clone, Default)]
pub(crate) struct Bits {
    words: Vec<u64>,
    len: u64,
}

impl Bits {
    pub fn new(len: u64) -> Bits {
        Bits {
            words: vec![0; len.div_ceil(64) as usize],
            len,
        }
    }

    /// Bits from bytes as NTFS stores them (bit `i` is bit `i % 8` of byte `i / 8`); `len` bits are
    /// kept (missing bytes read as zero).
    pub fn from_bytes(bytes: &[u8], len: u64) -> Bits {
        let mut b = Bits::new(len);
        for (w, chunk) in b.words.iter_mut().zip(bytes.chunks(8)) {
            let mut a = [0u8; 8];
            a[..chunk.len()].copy_from_slice(chunk);
            *w = u64::from_le_bytes(a);
        }
        b.clear_tail();
        b
    }

    fn clear_tail(&mut self) {
        let r = self.len % 64;
        if r != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << r) - 1;
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn get(&self, i: u64) -> bool {
        i < self.len && self.words[(i / 64) as usize] >> (i % 64) & 1 != 0
    }

    pub fn set(&mut self, i: u64) {
        if i < self.len {
            self.words[(i / 64) as usize] |= 1 << (i % 64);
        }
    }

    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// Sets `start .. start+len` (clipped to the vector) and returns the sub-ranges that were
    /// already set, as (start, len) pairs.
    pub fn set_range(&mut self, start: u64, len: u64) -> Vec<(u64, u64)> {
        let end = start.saturating_add(len).min(self.len);
        let mut overlaps = Vec::new();
        let mut pos = start;
        while pos < end {
            let w = (pos / 64) as usize;
            let lo = pos % 64;
            let hi = ((w as u64 + 1) * 64).min(end) - (w as u64) * 64;
            let mask = if hi - lo == 64 {
                !0u64
            } else {
                ((1u64 << (hi - lo)) - 1) << lo
            };
            let already = self.words[w] & mask;
            if already != 0 {
                let mut m = already;
                while m != 0 {
                    let b = m.trailing_zeros() as u64;
                    push_range(&mut overlaps, w as u64 * 64 + b, 1);
                    m &= m - 1;
                }
            }
            self.words[w] |= mask;
            pos = w as u64 * 64 + hi;
        }
        overlaps
    }

    /// The 64 bits starting at bit `64 * w`.
    pub fn word(&self, w: usize) -> u64 {
        self.words.get(w).copied().unwrap_or(0)
    }
}

/// Appends `(start, len)` to a list of ranges, merging with the last one when adjacent.
pub(crate) fn push_range(ranges: &mut Vec<(u64, u64)>, start: u64, len: u64) {
    if let Some(last) = ranges.last_mut() {
        if last.0 + last.1 == start {
            last.1 += len;
            return;
        }
    }
    ranges.push((start, len));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_overlaps() {
        let mut b = Bits::new(200);
        assert!(b.set_range(3, 70).is_empty());
        assert!(b.get(3) && b.get(72) && !b.get(73) && !b.get(2));
        assert_eq!(b.set_range(60, 20), vec![(60, 13)]);
        assert_eq!(b.count_ones(), 77);
        // Clipped at the end.
        assert!(b.set_range(190, 50).is_empty());
        assert_eq!(b.count_ones(), 87);
        let c = Bits::from_bytes(&[0b0000_0101, 0xFF], 12);
        assert!(c.get(0) && !c.get(1) && c.get(2) && c.get(11) && !c.get(12));
        assert_eq!(c.count_ones(), 6);
    }
}
