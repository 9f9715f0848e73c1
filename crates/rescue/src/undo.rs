//! The undo file: the original bytes of every range a fix writes, so the fix can be reverted.
//!
//! One encoding, shared by the front ends so the command line and the web page write identical
//! files, and one streaming decoder. Format version 2 (all integers little-endian u64):
//!
//! ```text
//!  0  "KAIFUKU-UNDO\0\0\0\x02"
//! 16  size of the image file the undo file belongs to
//! 24  size of its virtual disk
//! 32  its container kind: 1 raw, 2 VHD fixed, 3 VHD dynamic (see `kind_code`)
//! 40  entry count
//! 48  per entry, in increasing file-offset order, never overlapping, inside the image file:
//!         offset  length  FNV-1a of the bytes the fix wrote  original bytes (length bytes)
//! end - 64  SHA-256 of all original bytes, entry after entry
//! end - 32  SHA-256 of every byte of the file before this field
//! ```
//!
//! Version 3 is written for a fix that makes the image file longer (a streamOptimized VMDK is
//! extended: its new grains, tables, directory and footer go after its old end). Its magic ends
//! in `\x03`, and two fields follow the entry count, so the entries start at 64:
//!
//! ```text
//! 48  size of the image file after the fix (larger than the size at 16)
//! 56  FNV-1a of the bytes the fix wrote after the old end, up to the new end (zeros where it
//!     wrote none)
//! ```
//!
//! Its entries lie inside the image as it was (offset 16): undoing writes them back, then cuts the
//! file to that size, which removes everything the fix added. A fix that keeps the size still
//! writes version 2.
//!
//! The trailing checksum covers the whole file, so a damaged, truncated or edited undo file is
//! refused instead of restoring wrong bytes. The image identity (file size, virtual size,
//! container kind, originals hash) lets `kaifuku undo` refuse an image the file was not made for.
//! Version 1 (magic ending in `\x01`: no identity, no checksum) is refused with
//! [`UndoError::OldVersion`]: it cannot be verified.
//!
//! The original bytes are the image file's own bytes at the entry's range, so a front end that can
//! reference ranges of the image (a browser `Blob` slice) builds the file from [`layout`] and
//! [`sealed`] without holding them; the command line streams the same bytes with [`write_to`].
//! Either way the originals are read in chunks of at most [`CHUNK`] bytes: with a discarded
//! journal they include a whole `$LogFile` of tens of MiB.

pub use crate::vocabulary::{IdentityMismatch, UndoError, UndoInconsistency};
use kaifuku_container::{ContainerInfo, Format, OutputPlan};
use kaifuku_io::ReadAt;
use sha2::{Digest, Sha256};
use std::io;

/// The first 16 bytes of an undo file of a fix that keeps the image's size (version 2).
pub const MAGIC: &[u8; 16] = b"KAIFUKU-UNDO\0\0\0\x02";
/// The first 16 bytes of an undo file of a fix that makes the image longer (version 3).
pub const MAGIC_GROWN: &[u8; 16] = b"KAIFUKU-UNDO\0\0\0\x03";
/// The newest format version this code writes and reads (it reads 2 and 3).
pub const VERSION: u8 = 3;
/// What every version's magic starts with; the last byte is the version.
const MAGIC_PREFIX: &[u8; 15] = b"KAIFUKU-UNDO\0\0\0";

/// Bytes before the first entry: magic, file size, virtual size, container kind, entry count.
pub const HEADER_LEN: usize = 48;
/// Bytes before the first entry of version 3: [`HEADER_LEN`], the new size and the added bytes'
/// hash.
pub const HEADER_LEN_GROWN: usize = 64;
/// Bytes of an entry before its original data: offset, length, hash.
pub const ENTRY_HEADER_LEN: usize = 24;
/// Bytes after the last entry: the originals' SHA-256, then the whole file's.
pub const TRAILER_LEN: usize = 64;
/// Largest read of the image or of an undo file made at once.
pub const CHUNK: usize = 1 << 20;

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

/// The start value of [`fnv1a_more`] (the hash of nothing).
pub fn fnv1a_start() -> u64 {
    FNV_START
}

/// The hash of `len` copies of `byte`, without materialising them.
pub fn fnv1a_fill(byte: u8, len: u64) -> u64 {
    fnv1a_more_fill(FNV_START, byte, len)
}

/// Continues an FNV-1a hash over `len` copies of `byte`.
pub fn fnv1a_more_fill(start: u64, byte: u8, len: u64) -> u64 {
    let chunk = [byte; 4096];
    let mut h = start;
    let mut left = len;
    while left > 0 {
        let n = left.min(4096) as usize;
        h = fnv1a_more(h, &chunk[..n]);
        left -= n as u64;
    }
    h
}

/// The small stable code of a container kind stored in undo files.
pub fn kind_code(f: Format) -> u64 {
    match f {
        Format::Raw => 1,
        Format::VhdFixed => 2,
        Format::VhdDynamic => 3,
        Format::Qcow2 => 4,
        Format::VhdxFixed => 5,
        Format::VhdxDynamic => 6,
        Format::VmdkSparse => 7,
        Format::VmdkStreamOptimized => 8,
    }
}

/// The container kind of a stored code, if it is one.
pub fn kind_of_code(code: u64) -> Option<Format> {
    match code {
        1 => Some(Format::Raw),
        2 => Some(Format::VhdFixed),
        3 => Some(Format::VhdDynamic),
        4 => Some(Format::Qcow2),
        5 => Some(Format::VhdxFixed),
        6 => Some(Format::VhdxDynamic),
        7 => Some(Format::VmdkSparse),
        8 => Some(Format::VmdkStreamOptimized),
        _ => None,
    }
}

/// Which image an undo file belongs to (besides the hash of the originals it holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Size of the image file (what the ranges are offsets into).
    pub file_size: u64,
    /// Size of the virtual disk the container holds.
    pub virtual_size: u64,
    /// The container kind.
    pub kind: Format,
}

impl Identity {
    /// The identity of the image `info` describes.
    pub fn of(info: &ContainerInfo) -> Identity {
        Identity {
            file_size: info.file_size,
            virtual_size: info.virtual_size,
            kind: info.format,
        }
    }

    /// Why `image` (the image about to be restored) is not the one this undo file was made for;
    /// `None` when it is.
    pub fn mismatch(&self, image: &Identity) -> Option<IdentityMismatch> {
        if image.file_size != self.file_size {
            return Some(IdentityMismatch::FileSize {
                image: image.file_size,
                undo: self.file_size,
            });
        }
        if image.kind != self.kind {
            return Some(IdentityMismatch::Kind {
                image: image.kind,
                undo: self.kind,
            });
        }
        if image.virtual_size != self.virtual_size {
            return Some(IdentityMismatch::VirtualSize {
                image: image.virtual_size,
                undo: self.virtual_size,
            });
        }
        None
    }
}

/// How a fix that makes the image file longer changed its size (undo format version 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Growth {
    /// Size of the image file after the fix.
    pub fixed_size: u64,
    /// FNV-1a of the fixed file's bytes from the old size to `fixed_size`.
    pub added_hash: u64,
}

/// What the fix writes over one range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewData<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// `len` copies of `byte`.
    Fill {
        /// The byte repeated.
        byte: u8,
        /// How many times.
        len: u64,
    },
}

impl NewData<'_> {
    /// How many bytes are written.
    pub fn len(&self) -> u64 {
        match self {
            NewData::Bytes(b) => b.len() as u64,
            NewData::Fill { len, .. } => *len,
        }
    }
    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// FNV-1a of the bytes written.
    pub fn hash(&self) -> u64 {
        self.hash_more(FNV_START)
    }
    /// Continues FNV-1a hash `h` over the bytes written.
    fn hash_more(&self, h: u64) -> u64 {
        match *self {
            NewData::Bytes(b) => fnv1a_more(h, b),
            NewData::Fill { byte, len } => fnv1a_more_fill(h, byte, len),
        }
    }
    /// The part of it from `from` bytes in, `len` bytes long.
    fn part(&self, from: u64, len: u64) -> NewData<'_> {
        match *self {
            NewData::Bytes(b) => NewData::Bytes(&b[from as usize..(from + len) as usize]),
            NewData::Fill { byte, .. } => NewData::Fill { byte, len },
        }
    }
}

/// One range of an undo file held in memory: where, the original bytes, and a hash of the bytes
/// the fix wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoEntry {
    /// Offset in the image file.
    pub offset: u64,
    /// The bytes there before the fix.
    pub original: Vec<u8>,
    /// FNV-1a of the bytes the fix wrote there.
    pub new_hash: u64,
}

/// The bytes before the first entry (version 2).
pub fn header(id: &Identity, entries: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..16].copy_from_slice(MAGIC);
    h[16..24].copy_from_slice(&id.file_size.to_le_bytes());
    h[24..32].copy_from_slice(&id.virtual_size.to_le_bytes());
    h[32..40].copy_from_slice(&kind_code(id.kind).to_le_bytes());
    h[40..48].copy_from_slice(&entries.to_le_bytes());
    h
}

/// The bytes before the first entry: version 2, or version 3 when the fix grows the image.
fn header_for(id: &Identity, growth: Option<Growth>, entries: u64) -> Vec<u8> {
    let mut h = header(id, entries).to_vec();
    if let Some(g) = growth {
        h[..16].copy_from_slice(MAGIC_GROWN);
        h.extend_from_slice(&g.fixed_size.to_le_bytes());
        h.extend_from_slice(&g.added_hash.to_le_bytes());
    }
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

/// The two hashes of the trailer, fed with the file's bytes in order.
struct Sealer {
    file: Sha256,
    originals: Sha256,
}

impl Sealer {
    fn new() -> Sealer {
        Sealer {
            file: Sha256::new(),
            originals: Sha256::new(),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.file.update(b);
    }
    fn original(&mut self, b: &[u8]) {
        self.file.update(b);
        self.originals.update(b);
    }
    fn finish(mut self) -> [u8; TRAILER_LEN] {
        let mut t = [0u8; TRAILER_LEN];
        let originals = self.originals.finalize();
        t[..32].copy_from_slice(&originals);
        self.file.update(originals);
        t[32..].copy_from_slice(&self.file.finalize());
        t
    }
}

/// The whole undo file for entries whose original bytes are at hand, in the order given (front
/// ends sort them by file offset; [`UndoFile::open`] refuses any other order).
pub fn encode(id: &Identity, entries: &[UndoEntry]) -> Vec<u8> {
    encode_grown(id, None, entries)
}

/// [`encode`], of version 3 when `growth` is given.
pub fn encode_grown(id: &Identity, growth: Option<Growth>, entries: &[UndoEntry]) -> Vec<u8> {
    let total: usize = HEADER_LEN_GROWN
        + entries
            .iter()
            .map(|e| ENTRY_HEADER_LEN + e.original.len())
            .sum::<usize>()
        + TRAILER_LEN;
    let mut out = Vec::with_capacity(total);
    let mut seal = Sealer::new();
    let h = header_for(id, growth, entries.len() as u64);
    seal.bytes(&h);
    out.extend_from_slice(&h);
    for e in entries {
        let h = entry_header(e.offset, e.original.len() as u64, e.new_hash);
        seal.bytes(&h);
        out.extend_from_slice(&h);
        seal.original(&e.original);
        out.extend_from_slice(&e.original);
    }
    out.extend_from_slice(&seal.finish());
    out
}

/// A part of an undo file: encoded bytes, or the image file's original bytes at a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Encoded bytes of the undo file (headers, the trailer).
    Bytes(Vec<u8>),
    /// The image file's bytes at `offset..offset + len`.
    Original {
        /// Offset in the image file.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
}

impl Piece {
    /// Its length in the undo file.
    pub fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Original { len, .. } => *len,
        }
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The writes of an output plan as `(file offset, new data)`, the input of [`layout`].
pub fn plan_writes(out: &OutputPlan) -> Vec<(u64, NewData<'_>)> {
    out.writes
        .iter()
        .map(|w| (w.file_offset, NewData::Bytes(&w.bytes)))
        .chain(out.fills.iter().map(|f| {
            (
                f.file_offset,
                NewData::Fill {
                    byte: f.byte,
                    len: f.len,
                },
            )
        }))
        .collect()
}

/// The undo file for the writes `(file offset, new data)` as pieces, in file-offset order,
/// without reading the image and without the trailer ([`sealed`] and [`write_to`] add it).
/// Fails when writes overlap or leave the image file: such a file could not be restored.
pub fn layout(id: &Identity, writes: &[(u64, NewData<'_>)]) -> Result<Vec<Piece>, UndoError> {
    layout_resized(id, id.file_size, writes)
}

/// [`layout`] for a fix that leaves the image file `fixed_size` bytes long: the same when that is
/// its size now (version 2); when it is larger, version 3, whose entries are the parts of the
/// writes inside the file as it is, with the hash of what the fix puts after its end. A fix that
/// shortens the file is refused (the bytes cut off would have to be kept).
pub fn layout_resized(
    id: &Identity,
    fixed_size: u64,
    writes: &[(u64, NewData<'_>)],
) -> Result<Vec<Piece>, UndoError> {
    if fixed_size < id.file_size {
        return Err(inconsistent(UndoInconsistency::ImageShortened {
            file_size: id.file_size,
            fixed_size,
        }));
    }
    let mut sorted: Vec<&(u64, NewData<'_>)> = writes.iter().collect();
    sorted.sort_by_key(|w| w.0);
    let mut end = 0u64;
    for (offset, data) in &sorted {
        let stop = offset.checked_add(data.len()).filter(|s| *s <= fixed_size);
        match stop {
            Some(s) if *offset >= end => end = s,
            _ => {
                return Err(inconsistent(UndoInconsistency::WriteOutsideImage {
                    len: data.len(),
                    offset: *offset,
                    file_size: fixed_size,
                }))
            }
        }
    }
    // What is restored: the parts inside the file as it is.
    let inside: Vec<(u64, NewData<'_>)> = sorted
        .iter()
        .filter(|(offset, data)| *offset < id.file_size && !data.is_empty())
        .map(|(offset, data)| (*offset, data.part(0, data.len().min(id.file_size - offset))))
        .collect();
    let growth = (fixed_size > id.file_size).then(|| {
        // What the fixed file holds after the old end: the writes there, zeros between them.
        let mut h = FNV_START;
        let mut at = id.file_size;
        for (offset, data) in &sorted {
            let stop = offset + data.len();
            if stop <= at {
                continue;
            }
            let from = (*offset).max(at);
            h = fnv1a_more_fill(h, 0, from - at);
            h = data.part(from - offset, stop - from).hash_more(h);
            at = stop;
        }
        Growth {
            fixed_size,
            added_hash: fnv1a_more_fill(h, 0, fixed_size - at),
        }
    });
    let mut pieces = Vec::with_capacity(1 + 2 * inside.len());
    let mut head = header_for(id, growth, inside.len() as u64);
    for (offset, data) in inside {
        head.extend_from_slice(&entry_header(offset, data.len(), data.hash()));
        pieces.push(Piece::Bytes(std::mem::take(&mut head)));
        pieces.push(Piece::Original {
            offset,
            len: data.len(),
        });
    }
    if !head.is_empty() {
        pieces.push(Piece::Bytes(head));
    }
    Ok(pieces)
}

/// The undo file of an output plan, as pieces: [`layout_resized`] with the plan's writes and the
/// size the plan leaves the file (its own when it gives none), for an image of `identity`. The
/// one place both front ends get it from.
pub fn layout_for(id: &Identity, out: &OutputPlan) -> Result<Vec<Piece>, UndoError> {
    let fixed_size = out.file_size.unwrap_or(id.file_size);
    layout_resized(id, fixed_size, &plan_writes(out))
}

/// Size of the undo file made of `pieces` (from [`layout`]), trailer included.
pub fn sealed_len(pieces: &[Piece]) -> u64 {
    pieces.iter().map(Piece::len).sum::<u64>() + TRAILER_LEN as u64
}

/// Streams the file of `pieces` (from [`layout`]) to `sink`, reading the originals from `image`
/// in chunks of at most [`CHUNK`] bytes, trailer included. Returns the trailer.
pub fn write_to<R: ReadAt + ?Sized>(
    pieces: &[Piece],
    image: &R,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<[u8; TRAILER_LEN]> {
    let mut seal = Sealer::new();
    // One buffer for all originals, as large as the largest (at most CHUNK): every read of the
    // image costs a call (about a millisecond in the browser), so no more reads than needed.
    let largest = pieces
        .iter()
        .map(|p| match p {
            Piece::Original { len, .. } => *len,
            Piece::Bytes(_) => 0,
        })
        .max()
        .unwrap_or(0);
    let mut buf = vec![0u8; usize::try_from(largest).map_or(CHUNK, |n| n.min(CHUNK))];
    for p in pieces {
        match p {
            Piece::Bytes(b) => {
                seal.bytes(b);
                sink(b)?;
            }
            Piece::Original { offset, len } => {
                let mut done = 0u64;
                while done < *len {
                    let n = (*len - done).min(buf.len() as u64) as usize;
                    image.read_at(offset + done, &mut buf[..n])?;
                    seal.original(&buf[..n]);
                    sink(&buf[..n])?;
                    done += n as u64;
                }
            }
        }
    }
    let trailer = seal.finish();
    sink(&trailer)?;
    Ok(trailer)
}

/// The pieces of [`layout`] with the trailer appended as bytes: the whole undo file, for a front
/// end that assembles it from references to the image (the originals are read once, in chunks,
/// to hash them).
pub fn sealed<R: ReadAt + ?Sized>(mut pieces: Vec<Piece>, image: &R) -> io::Result<Vec<Piece>> {
    let trailer = write_to(&pieces, image, |_| Ok(()))?;
    pieces.push(Piece::Bytes(trailer.to_vec()));
    Ok(pieces)
}

/// One entry of an undo file: where its original bytes go and where they are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Offset in the image file.
    pub offset: u64,
    /// How many bytes it restores.
    pub len: u64,
    /// FNV-1a of the bytes the fix wrote there.
    pub new_hash: u64,
    /// Where the original bytes start in the undo file.
    data_at: u64,
}

/// A verified undo file, read through [`ReadAt`] in bounded memory: opening it checks the
/// checksum and the structure; entries and their original bytes are read again on demand.
pub struct UndoFile<R> {
    file: R,
    identity: Identity,
    growth: Option<Growth>,
    /// Where the first entry starts (the header's length, by version).
    entries_at: u64,
    count: u64,
    originals_hash: [u8; 32],
}

fn read_err(e: io::Error) -> UndoError {
    UndoError::Read {
        detail: e.to_string(),
    }
}

fn inconsistent(what: UndoInconsistency) -> UndoError {
    UndoError::Inconsistent { what }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<R: ReadAt> UndoFile<R> {
    /// Checks the signature and version, the whole-file checksum (one streaming pass), then the
    /// structure and the originals hash (a second pass).
    pub fn open(file: R) -> Result<UndoFile<R>, UndoError> {
        let size = file.size();
        if size < MAGIC.len() as u64 {
            return Err(UndoError::TooShort);
        }
        let mut magic = [0u8; 16];
        file.read_at(0, &mut magic).map_err(read_err)?;
        if &magic[..15] != MAGIC_PREFIX {
            return Err(UndoError::WrongSignature);
        }
        let header_len = match magic[15] {
            2 => HEADER_LEN,
            3 => HEADER_LEN_GROWN,
            1 => return Err(UndoError::OldVersion { version: 1 }),
            v if v > VERSION => return Err(UndoError::NewerVersion { version: v }),
            _ => return Err(UndoError::WrongSignature),
        };
        if size < (header_len + TRAILER_LEN) as u64 {
            return Err(UndoError::Checksum);
        }
        let body_end = size - TRAILER_LEN as u64;

        // Pass 1: the checksum over everything before its own 32 bytes.
        let mut sum = Sha256::new();
        let mut buf = vec![0u8; usize::try_from(size - 32).map_or(CHUNK, |n| n.min(CHUNK))];
        let mut at = 0u64;
        while at < size - 32 {
            let n = (size - 32 - at).min(buf.len() as u64) as usize;
            file.read_at(at, &mut buf[..n]).map_err(read_err)?;
            sum.update(&buf[..n]);
            at += n as u64;
        }
        let mut trailer = [0u8; TRAILER_LEN];
        file.read_at(body_end, &mut trailer).map_err(read_err)?;
        if sum.finalize().as_slice() != &trailer[32..] {
            return Err(UndoError::Checksum);
        }

        // Pass 2: the structure and the originals hash.
        let mut head = vec![0u8; header_len];
        file.read_at(0, &mut head).map_err(read_err)?;
        let kind = kind_of_code(u64_at(&head, 32)).ok_or_else(|| {
            inconsistent(UndoInconsistency::UnknownContainerKind {
                kind: u64_at(&head, 32),
            })
        })?;
        let identity = Identity {
            file_size: u64_at(&head, 16),
            virtual_size: u64_at(&head, 24),
            kind,
        };
        let count = u64_at(&head, 40);
        let growth = (header_len == HEADER_LEN_GROWN).then(|| Growth {
            fixed_size: u64_at(&head, 48),
            added_hash: u64_at(&head, 56),
        });
        if let Some(g) = growth.filter(|g| g.fixed_size <= identity.file_size) {
            return Err(inconsistent(UndoInconsistency::NotGrown {
                file_size: identity.file_size,
                fixed_size: g.fixed_size,
            }));
        }
        let mut originals_hash = [0u8; 32];
        originals_hash.copy_from_slice(&trailer[..32]);
        let undo = UndoFile {
            file,
            identity,
            growth,
            entries_at: header_len as u64,
            count,
            originals_hash,
        };
        let mut originals = Sha256::new();
        let mut end_in_image = 0u64;
        let mut pos = header_len as u64;
        for e in undo.entries() {
            let e = e?;
            if e.offset < end_in_image {
                return Err(inconsistent(UndoInconsistency::RangeOutOfOrder {
                    offset: e.offset,
                }));
            }
            end_in_image = e
                .offset
                .checked_add(e.len)
                .filter(|x| *x <= identity.file_size)
                .ok_or_else(|| {
                    inconsistent(UndoInconsistency::RangeOutsideImage {
                        offset: e.offset,
                        file_size: identity.file_size,
                    })
                })?;
            let mut done = 0u64;
            while done < e.len {
                let n = (e.len - done).min(buf.len() as u64) as usize;
                undo.read_original(&e, done, &mut buf[..n])
                    .map_err(read_err)?;
                originals.update(&buf[..n]);
                done += n as u64;
            }
            pos = e.data_at + e.len;
        }
        if pos != body_end {
            return Err(inconsistent(UndoInconsistency::TrailingBytes {
                count: body_end - pos,
            }));
        }
        if originals.finalize().as_slice() != undo.originals_hash {
            return Err(inconsistent(UndoInconsistency::OriginalsHash));
        }
        Ok(undo)
    }

    /// The image this undo file was made for, as it was before the fix.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// How the fix made the image longer (version 3), if it did.
    pub fn growth(&self) -> Option<Growth> {
        self.growth
    }

    /// The image this undo file restores, as the fix left it: the identity with the size after
    /// the fix.
    pub fn fixed_identity(&self) -> Identity {
        Identity {
            file_size: self
                .growth
                .map_or(self.identity.file_size, |g| g.fixed_size),
            ..self.identity
        }
    }

    /// How many ranges it restores.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// SHA-256 of all its original bytes, entry after entry.
    pub fn originals_hash(&self) -> [u8; 32] {
        self.originals_hash
    }

    /// Size of the undo file.
    pub fn size(&self) -> u64 {
        self.file.size()
    }

    /// The entries in file order, each read when reached (nothing is kept).
    pub fn entries(&self) -> Entries<'_, R> {
        Entries {
            undo: self,
            next: 0,
            pos: self.entries_at,
        }
    }

    /// Original bytes of `entry` from `within` bytes into it.
    pub fn read_original(&self, entry: &Entry, within: u64, buf: &mut [u8]) -> io::Result<()> {
        if within
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > entry.len)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "read past the end of an undo entry",
            ));
        }
        self.file.read_at(entry.data_at + within, buf)
    }
}

/// Iterator over the entries of an [`UndoFile`].
pub struct Entries<'a, R> {
    undo: &'a UndoFile<R>,
    next: u64,
    pos: u64,
}

impl<R: ReadAt> Iterator for Entries<'_, R> {
    type Item = Result<Entry, UndoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.undo.count {
            return None;
        }
        let body_end = self.undo.file.size() - TRAILER_LEN as u64;
        let truncated = || Some(Err(inconsistent(UndoInconsistency::EntriesDoNotFit)));
        if body_end.saturating_sub(self.pos) < ENTRY_HEADER_LEN as u64 {
            self.next = self.undo.count;
            return truncated();
        }
        let mut h = [0u8; ENTRY_HEADER_LEN];
        if let Err(e) = self.undo.file.read_at(self.pos, &mut h) {
            self.next = self.undo.count;
            return Some(Err(read_err(e)));
        }
        let data_at = self.pos + ENTRY_HEADER_LEN as u64;
        let len = u64_at(&h, 8);
        if len > body_end - data_at {
            self.next = self.undo.count;
            return truncated();
        }
        self.next += 1;
        self.pos = data_at + len;
        Some(Ok(Entry {
            offset: u64_at(&h, 0),
            len,
            new_hash: u64_at(&h, 16),
            data_at,
        }))
    }
}

/// Parses a whole undo file held in memory: the identity and the entries.
pub fn decode(bytes: &[u8]) -> Result<(Identity, Vec<UndoEntry>), UndoError> {
    decode_grown(bytes).map(|(id, _, entries)| (id, entries))
}

/// [`decode`], with the growth a version 3 file records.
pub fn decode_grown(bytes: &[u8]) -> Result<(Identity, Option<Growth>, Vec<UndoEntry>), UndoError> {
    let undo = UndoFile::open(bytes)?;
    let mut out = Vec::new();
    for e in undo.entries() {
        let e = e?;
        let mut original = vec![0u8; e.len as usize];
        undo.read_original(&e, 0, &mut original).map_err(read_err)?;
        out.push(UndoEntry {
            offset: e.offset,
            original,
            new_hash: e.new_hash,
        });
    }
    Ok((undo.identity(), undo.growth(), out))
}

#[cfg(test)]
mod tests {
    use super::{
        decode, encode, fnv1a, fnv1a_fill, header, kind_code, kind_of_code, layout, sealed,
        sealed_len, write_to, Identity, NewData, Piece, UndoEntry, UndoError, UndoFile, CHUNK,
        HEADER_LEN, MAGIC, TRAILER_LEN,
    };
    use super::{
        decode_grown, encode_grown, fnv1a_more_fill, layout_resized, Growth, UndoInconsistency,
        HEADER_LEN_GROWN, MAGIC_GROWN,
    };
    use kaifuku_container::Format;
    use kaifuku_io::ReadAt;
    use sha2::{Digest, Sha256};
    use std::io;

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

    fn id(file_size: u64) -> Identity {
        Identity {
            file_size,
            virtual_size: file_size - 512,
            kind: Format::VhdFixed,
        }
    }

    fn image() -> Vec<u8> {
        (0..4096u32).map(|i| (i * 7 + i / 13) as u8).collect()
    }

    /// A small undo file: a 5-byte write and a 600-byte fill, given out of order.
    fn sample(image: &[u8]) -> (Vec<u8>, Vec<UndoEntry>) {
        let new1 = [1u8, 2, 3, 4, 5];
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
        let ident = id(image.len() as u64);
        let pieces = layout(&ident, &writes).unwrap();
        let mut streamed = Vec::new();
        write_to(&pieces, image, |b| {
            streamed.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        let whole = resolve(&sealed(pieces.clone(), image).unwrap(), image);
        assert_eq!(streamed, whole, "streamed and assembled files differ");
        assert_eq!(sealed_len(&pieces), whole.len() as u64);
        let mut entries: Vec<UndoEntry> = writes
            .iter()
            .map(|(o, d)| UndoEntry {
                offset: *o,
                original: image[*o as usize..(*o + d.len()) as usize].to_vec(),
                new_hash: d.hash(),
            })
            .collect();
        entries.sort_by_key(|e| e.offset);
        assert_eq!(encode(&ident, &entries), whole, "encode differs");
        (whole, entries)
    }

    #[test]
    fn layout_matches_encode_and_decodes() {
        let image = image();
        let (whole, entries) = sample(&image);
        assert_eq!(&whole[..16], MAGIC);
        assert_eq!(whole.len(), 48 + 24 + 5 + 24 + 600 + 64);
        let (ident, back) = decode(&whole).unwrap();
        assert_eq!(ident, id(4096));
        assert_eq!(back, entries);
        assert_eq!(back[1].new_hash, fnv1a(&[0xFF; 600]));
        // The originals hash is the SHA-256 of the originals in order.
        let mut all = image[10..15].to_vec();
        all.extend_from_slice(&image[1000..1600]);
        assert_eq!(
            UndoFile::open(whole.as_slice()).unwrap().originals_hash(),
            Sha256::digest(&all).as_slice()
        );
    }

    /// A fix that makes the 4096-byte image 5000 bytes long: a write inside, one across the old
    /// end, a fill after it, a gap before the new end (the file reads zeros there).
    #[test]
    fn a_growing_fix_writes_version_3() {
        let image = image();
        let inside = [9u8; 20];
        let across: Vec<u8> = (0..100u8).collect();
        let writes = [
            (
                4500u64,
                NewData::Fill {
                    byte: 0xEE,
                    len: 300,
                },
            ),
            (4046u64, NewData::Bytes(&across)),
            (100u64, NewData::Bytes(&inside)),
        ];
        let ident = id(4096);
        let pieces = layout_resized(&ident, 5000, &writes).unwrap();
        let mut whole = Vec::new();
        write_to(&pieces, image.as_slice(), |b| {
            whole.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(&whole[..16], MAGIC_GROWN);
        assert_eq!(
            whole.len(),
            HEADER_LEN_GROWN + 24 + 20 + 24 + 50 + TRAILER_LEN
        );
        let (back_id, growth, entries) = decode_grown(&whole).unwrap();
        assert_eq!(back_id, ident);
        // The fixed file past 4096: the last 50 bytes of `across`, zeros to 4500, the fill, zeros.
        let mut added = across[50..].to_vec();
        added.resize(4500 - 4096, 0);
        added.extend_from_slice(&[0xEE; 300]);
        added.resize(5000 - 4096, 0);
        assert_eq!(
            growth,
            Some(Growth {
                fixed_size: 5000,
                added_hash: fnv1a(&added),
            })
        );
        assert_eq!(
            entries,
            vec![
                UndoEntry {
                    offset: 100,
                    original: image[100..120].to_vec(),
                    new_hash: fnv1a(&inside),
                },
                UndoEntry {
                    offset: 4046,
                    original: image[4046..].to_vec(),
                    new_hash: fnv1a(&across[..50]),
                },
            ]
        );
        assert_eq!(encode_grown(&ident, growth, &entries), whole);
        let undo = UndoFile::open(whole.as_slice()).unwrap();
        assert_eq!(undo.fixed_identity().file_size, 5000);
        assert_eq!(undo.identity().file_size, 4096);
        // Every flipped bit is refused, as in version 2.
        let mut copy = whole.clone();
        for byte in 0..whole.len() {
            for bit in 0..8 {
                copy[byte] ^= 1 << bit;
                assert!(decode_grown(&copy).is_err(), "bit {bit} of byte {byte}");
                copy[byte] ^= 1 << bit;
            }
        }
        // Same size: version 2, as `layout` writes it.
        let same = layout_resized(&ident, 4096, &writes[2..]).unwrap();
        assert_eq!(same, layout(&ident, &writes[2..]).unwrap());
        // Shorter, or a write past the new end: refused.
        assert_eq!(
            layout_resized(&ident, 4000, &writes[2..]),
            Err(UndoError::Inconsistent {
                what: UndoInconsistency::ImageShortened {
                    file_size: 4096,
                    fixed_size: 4000
                }
            })
        );
        assert!(layout_resized(&ident, 4700, &writes).is_err());
        // A version 3 file claiming no growth is refused although its checksums hold.
        let flat = encode_grown(
            &ident,
            Some(Growth {
                fixed_size: 4096,
                added_hash: fnv1a_more_fill(fnv1a(&[]), 0, 0),
            }),
            &entries,
        );
        assert!(matches!(
            decode_grown(&flat),
            Err(UndoError::Inconsistent {
                what: UndoInconsistency::NotGrown { .. }
            })
        ));
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let image = image();
        let (whole, _) = sample(&image);
        let mut copy = whole.clone();
        for byte in 0..whole.len() {
            for bit in 0..8 {
                copy[byte] ^= 1 << bit;
                let r = decode(&copy);
                assert!(
                    r.is_err(),
                    "bit {bit} of byte {byte} flipped was accepted: {r:?}"
                );
                copy[byte] ^= 1 << bit;
            }
        }
        assert!(decode(&copy).is_ok());
    }

    #[test]
    fn truncated_or_extended_files_are_refused() {
        let image = image();
        let (whole, _) = sample(&image);
        for cut in 0..whole.len() {
            assert!(decode(&whole[..cut]).is_err(), "cut to {cut} bytes");
        }
        let mut longer = whole.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(UndoError::Checksum));
        assert_eq!(decode(&whole[..whole.len() - 1]), Err(UndoError::Checksum));
        assert_eq!(decode(b"nope"), Err(UndoError::TooShort));
        assert_eq!(
            decode(b"something else entirely"),
            Err(UndoError::WrongSignature)
        );
    }

    #[test]
    fn version_1_files_are_refused_clearly() {
        // The version 1 layout: magic, image size, entry count, then entries; no checksum.
        let mut v1 = b"KAIFUKU-UNDO\0\0\0\x01".to_vec();
        v1.extend_from_slice(&4096u64.to_le_bytes());
        v1.extend_from_slice(&0u64.to_le_bytes());
        let e = decode(&v1).unwrap_err();
        assert_eq!(e, UndoError::OldVersion { version: 1 });
        assert!(e.to_string().contains("version 1"), "{e}");
        let mut v4 = MAGIC.to_vec();
        v4[15] = 4;
        assert_eq!(decode(&v4), Err(UndoError::NewerVersion { version: 4 }));
    }

    #[test]
    fn a_valid_checksum_does_not_excuse_a_bad_structure() {
        // Files with a correct checksum but impossible contents (only a deliberate edit makes
        // them) are refused too: overlapping ranges, ranges past the image, unknown kinds.
        let ident = id(4096);
        let e = |offset: u64, n: usize| UndoEntry {
            offset,
            original: vec![7; n],
            new_hash: 0,
        };
        let overlap = encode(&ident, &[e(10, 10), e(15, 10)]);
        assert!(matches!(
            decode(&overlap),
            Err(UndoError::Inconsistent { .. })
        ));
        let past = encode(&ident, &[e(4090, 10)]);
        assert!(matches!(decode(&past), Err(UndoError::Inconsistent { .. })));
        let mut bad_kind = encode(&ident, &[e(10, 10)]);
        bad_kind[32] = 9;
        let n = bad_kind.len();
        let sum = Sha256::digest(&bad_kind[..n - 32]);
        bad_kind[n - 32..].copy_from_slice(&sum);
        assert!(matches!(
            decode(&bad_kind),
            Err(UndoError::Inconsistent { .. })
        ));
        // Writes the encoder cannot turn into a restorable file are refused at layout time.
        let w = [1u8; 10];
        assert!(layout(
            &ident,
            &[(10, NewData::Bytes(&w)), (15, NewData::Bytes(&w))]
        )
        .is_err());
        assert!(layout(&ident, &[(4090, NewData::Bytes(&w))]).is_err());
    }

    #[test]
    fn identity_mismatches_are_explained() {
        let a = id(4096);
        assert_eq!(a.mismatch(&a), None);
        let mut b = a;
        b.file_size += 1;
        assert!(a.mismatch(&b).unwrap().to_string().contains("4097 bytes"));
        let mut b = a;
        b.kind = Format::Raw;
        assert!(a.mismatch(&b).unwrap().to_string().contains("raw"));
        let mut b = a;
        b.virtual_size = 1;
        assert!(a.mismatch(&b).unwrap().to_string().contains("virtual disk"));
        for f in [
            Format::Raw,
            Format::VhdFixed,
            Format::VhdDynamic,
            Format::Qcow2,
            Format::VhdxFixed,
            Format::VhdxDynamic,
            Format::VmdkSparse,
            Format::VmdkStreamOptimized,
        ] {
            assert_eq!(kind_of_code(kind_code(f)), Some(f));
        }
        assert_eq!(kind_of_code(0), None);
    }

    #[test]
    fn empty_plan_is_a_header_and_a_trailer() {
        let ident = id(777);
        let pieces = layout(&ident, &[]).unwrap();
        assert_eq!(pieces, vec![Piece::Bytes(header(&ident, 0).to_vec())]);
        let whole = encode(&ident, &[]);
        assert_eq!(whole.len(), HEADER_LEN + TRAILER_LEN);
        assert_eq!(resolve(&sealed(pieces, &[][..]).unwrap(), &[]), whole);
        assert_eq!(decode(&whole).unwrap(), (ident, vec![]));
    }

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_fill(0xAB, 5000), fnv1a(&[0xAB; 5000]));
    }

    #[test]
    fn originals_are_streamed_in_bounded_chunks() {
        // A reader that refuses reads larger than CHUNK and counts them: the encoder and decoder
        // must stay under the bound, and not read in needlessly small pieces either.
        struct Small(Vec<u8>, std::cell::Cell<u64>);
        impl ReadAt for Small {
            fn size(&self) -> u64 {
                self.0.len() as u64
            }
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
                assert!(buf.len() <= CHUNK, "a read of {} bytes", buf.len());
                self.1.set(self.1.get() + 1);
                self.0.as_slice().read_at(offset, buf)
            }
        }
        let image = Small(
            (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect(),
            Default::default(),
        );
        let ident = id(image.size());
        let small = [9u8; 8];
        let pieces = layout(
            &ident,
            &[
                // A small write before the large fill: the buffer must still be large.
                (1, NewData::Bytes(&small[..1])),
                (
                    3,
                    NewData::Fill {
                        byte: 0xFF,
                        len: 2 * CHUNK as u64 + 5,
                    },
                ),
            ],
        )
        .unwrap();
        let mut file = Vec::new();
        write_to(&pieces, &image, |b| {
            file.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(image.1.get(), 1 + 3, "reads of the originals");
        let undo = UndoFile::open(Small(file, Default::default())).unwrap();
        let e = undo.entries().nth(1).unwrap().unwrap();
        assert_eq!((e.offset, e.len), (3, 2 * CHUNK as u64 + 5));
    }
}
