//! The undo file: the original bytes of every range a fix writes, so the fix can be reverted.
//!
//! Pure encoding, shared by the front ends so the command line and the web page write identical
//! files. Layout (all integers little-endian u64):
//!
//! ```text
//! "KAIFUKU-UNDO\0\0\0\x01"  image size  entry count
//! per entry, in file-offset order:  offset  length  FNV-1a of the new bytes  original bytes
//! ```
//!
//! The original bytes are the image file's own bytes at the entry's range, so a front end that can
//! reference ranges of the image (a browser `Blob` slice) builds the file from [`layout`] without
//! copying them; one that reads them uses [`encode`].

/// The first 16 bytes of every undo file (format version 1).
pub const MAGIC: &[u8; 16] = b"KAIFUKU-UNDO\0\0\0\x01";

/// Bytes before the first entry: magic, image size, entry count.
pub const HEADER_LEN: usize = 32;
/// Bytes of an entry before its original data: offset, length, hash.
pub const ENTRY_HEADER_LEN: usize = 24;

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Continues an FNV-1a hash over `b`.
pub fn fnv1a_more(mut h: u64, b: &[u8]) -> u64 {
    for x in b {
        h ^= *x as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1a: detects that bytes changed since the fix (not a security hash).
pub fn fnv1a(b: &[u8]) -> u64 {
    fnv1a_more(FNV_START, b)
}

/// The hash of `len` copies of `byte`, without materialising them.
pub fn fnv1a_fill(byte: u8, len: u64) -> u64 {
    let chunk = [byte; 4096];
    let mut h = FNV_START;
    let mut left = len;
    while left > 0 {
        let n = left.min(4096) as usize;
        h = fnv1a_more(h, &chunk[..n]);
        left -= n as u64;
    }
    h
}

/// What the fix writes over one range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewData<'a> {
    Bytes(&'a [u8]),
    Fill { byte: u8, len: u64 },
}

impl NewData<'_> {
    pub fn len(&self) -> u64 {
        match self {
            NewData::Bytes(b) => b.len() as u64,
            NewData::Fill { len, .. } => *len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn hash(&self) -> u64 {
        match *self {
            NewData::Bytes(b) => fnv1a(b),
            NewData::Fill { byte, len } => fnv1a_fill(byte, len),
        }
    }
}

/// One range of an undo file: where, the original bytes, and a hash of the bytes the fix wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoEntry {
    pub offset: u64,
    pub original: Vec<u8>,
    pub new_hash: u64,
}

/// The 32 bytes before the first entry.
pub fn header(image_size: u64, entries: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..16].copy_from_slice(MAGIC);
    h[16..24].copy_from_slice(&image_size.to_le_bytes());
    h[24..32].copy_from_slice(&entries.to_le_bytes());
    h
}

/// The 24 bytes before an entry's original data.
pub fn entry_header(offset: u64, len: u64, new_hash: u64) -> [u8; ENTRY_HEADER_LEN] {
    let mut h = [0u8; ENTRY_HEADER_LEN];
    h[..8].copy_from_slice(&offset.to_le_bytes());
    h[8..16].copy_from_slice(&len.to_le_bytes());
    h[16..24].copy_from_slice(&new_hash.to_le_bytes());
    h
}

/// The whole undo file for entries whose original bytes are at hand. Entries are written in the
/// order given (front ends sort them by offset).
pub fn encode(image_size: u64, entries: &[UndoEntry]) -> Vec<u8> {
    let total: usize = HEADER_LEN
        + entries
            .iter()
            .map(|e| ENTRY_HEADER_LEN + e.original.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&header(image_size, entries.len() as u64));
    for e in entries {
        out.extend_from_slice(&entry_header(e.offset, e.original.len() as u64, e.new_hash));
        out.extend_from_slice(&e.original);
    }
    out
}

/// A part of an undo file: encoded bytes, or the image file's original bytes at a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Bytes(Vec<u8>),
    Original { offset: u64, len: u64 },
}

/// The undo file for the writes `(file offset, new data)` as pieces, in file-offset order, without
/// reading the image: concatenating the pieces (with [`Piece::Original`] replaced by the image
/// file's bytes there) gives exactly what [`encode`] gives.
pub fn layout(image_size: u64, writes: &[(u64, NewData<'_>)]) -> Vec<Piece> {
    let mut sorted: Vec<&(u64, NewData<'_>)> = writes.iter().collect();
    sorted.sort_by_key(|w| w.0);
    let mut pieces = Vec::with_capacity(1 + 2 * sorted.len());
    let mut head = header(image_size, sorted.len() as u64).to_vec();
    for (offset, data) in sorted {
        head.extend_from_slice(&entry_header(*offset, data.len(), data.hash()));
        pieces.push(Piece::Bytes(std::mem::take(&mut head)));
        pieces.push(Piece::Original {
            offset: *offset,
            len: data.len(),
        });
    }
    if !head.is_empty() {
        pieces.push(Piece::Bytes(head));
    }
    pieces
}

/// Why bytes are not an undo file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndoError {
    #[error("too short")]
    TooShort,
    #[error("wrong signature")]
    WrongSignature,
    #[error("entry count does not fit the file")]
    BadCount,
    #[error("truncated")]
    Truncated,
}

/// Parses a whole undo file held in memory: the image size and the entries.
pub fn decode(bytes: &[u8]) -> Result<(u64, Vec<UndoEntry>), UndoError> {
    if bytes.len() < HEADER_LEN {
        return Err(UndoError::TooShort);
    }
    if &bytes[..16] != MAGIC {
        return Err(UndoError::WrongSignature);
    }
    let u = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let size = u(16);
    let count = u(24);
    if count > (bytes.len() / ENTRY_HEADER_LEN) as u64 {
        return Err(UndoError::BadCount);
    }
    let mut at = HEADER_LEN;
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if bytes.len() - at < ENTRY_HEADER_LEN {
            return Err(UndoError::Truncated);
        }
        let offset = u(at);
        let len = u(at + 8);
        let new_hash = u(at + 16);
        at += ENTRY_HEADER_LEN;
        if len > (bytes.len() - at) as u64 {
            return Err(UndoError::Truncated);
        }
        let len = len as usize;
        entries.push(UndoEntry {
            offset,
            original: bytes[at..at + len].to_vec(),
            new_hash,
        });
        at += len;
    }
    Ok((size, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(pieces: &[Piece], image: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::Original { offset, len } => {
                    out.extend_from_slice(&image[*offset as usize..(*offset + *len) as usize])
                }
            }
        }
        out
    }

    #[test]
    fn layout_matches_encode_and_decodes() {
        let image: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        let new1 = [1u8, 2, 3, 4, 5];
        // Given out of order: both encodings sort by offset.
        let writes = [
            (
                1000u64,
                NewData::Fill {
                    byte: 0xFF,
                    len: 600,
                },
            ),
            (10u64, NewData::Bytes(&new1)),
        ];
        let pieces = layout(image.len() as u64, &writes);
        let mut entries: Vec<UndoEntry> = writes
            .iter()
            .map(|(o, d)| UndoEntry {
                offset: *o,
                original: image[*o as usize..(*o + d.len()) as usize].to_vec(),
                new_hash: d.hash(),
            })
            .collect();
        entries.sort_by_key(|e| e.offset);
        let whole = encode(image.len() as u64, &entries);
        assert_eq!(resolve(&pieces, &image), whole);
        assert_eq!(&whole[..16], MAGIC);
        assert_eq!(whole.len(), 32 + 24 + 5 + 24 + 600);
        let (size, back) = decode(&whole).unwrap();
        assert_eq!(size, 4096);
        assert_eq!(back, entries);
        assert_eq!(back[1].new_hash, fnv1a(&[0xFF; 600]));
        assert_eq!(decode(&whole[..whole.len() - 1]), Err(UndoError::Truncated));
        assert_eq!(decode(b"nope"), Err(UndoError::TooShort));
    }

    #[test]
    fn empty_plan_is_a_header() {
        let pieces = layout(77, &[]);
        assert_eq!(pieces, vec![Piece::Bytes(header(77, 0).to_vec())]);
        assert_eq!(encode(77, &[]), header(77, 0).to_vec());
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_fill(0xAB, 5000), fnv1a(&[0xAB; 5000]));
    }
}
