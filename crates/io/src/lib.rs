//! The one way the core reads a disk image: positioned reads over a byte space.
//!
//! Every layer of kaifuku (container, partition, NTFS, rescue) reads through [`ReadAt`]. The front
//! end supplies the bottom source (`pread` natively, `FileReaderSync` in the browser worker), wraps it
//! in a [`Counted`] source and a [`BlockCache`], and the layers stack views on top ([`Slice`] for a
//! partition, [`Overlay`] for the patched view). Nothing here touches files, the clock or the web.
#![forbid(unsafe_code)]

mod cache;
mod overlay;
pub mod url;

pub use cache::{BlockCache, CacheConfig};
pub use overlay::{Overlay, Patch, PatchData};

use std::cell::Cell;
use std::io;
use std::rc::Rc;

/// A byte space that can be read at any offset.
///
/// `read_at` fills the whole buffer or fails; reading past [`ReadAt::size`] is an
/// `UnexpectedEof` error, never a short read, so callers cannot silently use stale bytes.
pub trait ReadAt {
    /// Size of the byte space in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` with the bytes at `offset .. offset + buf.len()`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Read `len` bytes at `offset` into a new vector.
    fn read_vec(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }

    /// The file this image file refers to for the bytes it does not hold itself (a qcow2
    /// image's backing file), when the front end found and opened it. The container layer reads
    /// through it; it is never written. Wrappers of the same image file (caches, counters,
    /// overlays of planned writes) pass it on; views of another byte space (a partition, a
    /// decrypted volume) do not.
    fn backing(&self) -> Option<Backing> {
        None
    }
}

/// A backing file as the container layer reads it: shared, because every view of the image file
/// (the inspection's, the verification's) reads through the same one.
pub type Backing = Rc<dyn ReadAt>;

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn backing(&self) -> Option<Backing> {
        (**self).backing()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn backing(&self) -> Option<Backing> {
        (**self).backing()
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Rc<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn backing(&self) -> Option<Backing> {
        (**self).backing()
    }
}

/// A byte space that accepts planned writes. Only an [`Overlay`] (behind a `RefCell`) implements it
/// in the core: writes become patches, never changes to the image itself.
pub trait WriteAt {
    /// Records `bytes` as the new content of `offset .. offset + bytes.len()`; fails past the end.
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Writes `len` copies of `byte` at `offset` without materialising them.
    fn fill_at(&self, offset: u64, len: u64, byte: u8) -> io::Result<()>;
}

impl<T: WriteAt + ?Sized> WriteAt for &T {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        (**self).write_at(offset, bytes)
    }
    fn fill_at(&self, offset: u64, len: u64, byte: u8) -> io::Result<()> {
        (**self).fill_at(offset, len, byte)
    }
}

impl<B: ReadAt> ReadAt for std::cell::RefCell<Overlay<B>> {
    fn size(&self) -> u64 {
        self.borrow().size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.borrow().read_at(offset, buf)
    }
    fn backing(&self) -> Option<Backing> {
        self.borrow().backing()
    }
}

impl<B: ReadAt> WriteAt for std::cell::RefCell<Overlay<B>> {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.borrow_mut().write(offset, bytes)
    }
    fn fill_at(&self, offset: u64, len: u64, byte: u8) -> io::Result<()> {
        self.borrow_mut().fill(offset, len, byte)
    }
}

impl<R: ReadAt + WriteAt> WriteAt for Slice<R> {
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        check_range(offset, bytes.len(), self.len)?;
        self.inner.write_at(self.start + offset, bytes)
    }
    fn fill_at(&self, offset: u64, len: u64, byte: u8) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => self.inner.fill_at(self.start + offset, len, byte),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "fill goes past the end of the slice",
            )),
        }
    }
}

/// Checks that `offset .. offset + len` lies inside a space of `size` bytes.
pub fn check_range(offset: u64, len: usize, size: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("read of {len} bytes at offset {offset} goes past the end ({size} bytes)"),
        )),
    }
}

/// An in-memory byte space (tests, small patched buffers).
impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len() as u64)?;
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_at(offset, buf)
    }
}

/// How many calls reached the underlying source and how many bytes they moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadStats {
    /// Calls that reached the source: in the browser each costs about a millisecond.
    pub calls: u64,
    /// Bytes those calls moved, read-ahead included.
    pub bytes: u64,
}

/// Counts every call that reaches the wrapped source: the figure the cache exists to keep small.
pub struct Counted<R> {
    inner: R,
    calls: Cell<u64>,
    bytes: Cell<u64>,
}

impl<R: ReadAt> Counted<R> {
    /// Wraps `inner` with both counts at zero.
    pub fn new(inner: R) -> Self {
        Counted {
            inner,
            calls: Cell::new(0),
            bytes: Cell::new(0),
        }
    }
    /// The counts so far, for the benchmark figures and the report's read statistics.
    pub fn stats(&self) -> ReadStats {
        ReadStats {
            calls: self.calls.get(),
            bytes: self.bytes.get(),
        }
    }
    /// The wrapped source, for reads that should stay out of the counts (copying the image to the
    /// output).
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: ReadAt> ReadAt for Counted<R> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.calls.set(self.calls.get() + 1);
        self.bytes.set(self.bytes.get() + buf.len() as u64);
        self.inner.read_at(offset, buf)
    }
    fn backing(&self) -> Option<Backing> {
        self.inner.backing()
    }
}

/// A window `start .. start + len` of another byte space (a partition of a disk, say).
#[derive(Clone)]
pub struct Slice<R> {
    inner: R,
    start: u64,
    len: u64,
}

impl<R: ReadAt> Slice<R> {
    /// Fails when the window does not lie inside `inner`.
    pub fn new(inner: R, start: u64, len: u64) -> io::Result<Self> {
        match start.checked_add(len) {
            Some(end) if end <= inner.size() => Ok(Slice { inner, start, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "range {start}+{len} lies outside the {}-byte space it was cut from",
                    inner.size()
                ),
            )),
        }
    }
    /// Offset of this window's first byte in the underlying space.
    pub fn start(&self) -> u64 {
        self.start
    }
    /// The space this window was cut from (the whole disk under a partition).
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

impl<R: ReadAt> ReadAt for Slice<R> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        self.inner.read_at(self.start + offset, buf)
    }
}

/// Another byte space cut or extended to `len` bytes; bytes past the end of the other read as
/// zeros. What a file looks like after `set_len`: the base of an output that changes the image
/// file's size, under an [`Overlay`] of the writes.
#[derive(Clone)]
pub struct Resized<R> {
    inner: R,
    len: u64,
}

impl<R: ReadAt> Resized<R> {
    /// `inner` cut or extended to `len` bytes.
    pub fn new(inner: R, len: u64) -> Self {
        Resized { inner, len }
    }
}

impl<R: ReadAt> ReadAt for Resized<R> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        let inner_len = self.inner.size();
        let from_inner = inner_len.saturating_sub(offset).min(buf.len() as u64) as usize;
        if from_inner > 0 {
            self.inner.read_at(offset, &mut buf[..from_inner])?;
        }
        buf[from_inner..].fill(0);
        Ok(())
    }
    fn backing(&self) -> Option<Backing> {
        self.inner.backing()
    }
}

/// `std::io::Read + Seek` over a [`ReadAt`], for crates (such as `ntfs`) that want a stream.
pub struct Cursor<R> {
    inner: R,
    pos: u64,
}

impl<R: ReadAt> Cursor<R> {
    /// A stream positioned at the first byte of `inner`.
    pub fn new(inner: R) -> Self {
        Cursor { inner, pos: 0 }
    }
    /// The byte space under the stream, for reads at absolute offsets beside the stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: ReadAt> io::Read for Cursor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.inner.size();
        if self.pos >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - self.pos) as usize;
        self.inner.read_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: ReadAt> io::Seek for Cursor<R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let new = match pos {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => self.inner.size().checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start",
            )),
        }
    }
}

/// `Write` that refuses: for APIs (such as `gpt`'s disk device) that demand a writer on a read path.
impl<R> io::Write for Cursor<R> {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "kaifuku reads images; writes go through patches",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn resized_cuts_and_extends_with_zeros() {
        let base: Vec<u8> = (1..=8).collect();
        let longer = Resized::new(&base, 12);
        assert_eq!(longer.size(), 12);
        assert_eq!(longer.read_vec(6, 6).unwrap(), vec![7, 8, 0, 0, 0, 0]);
        assert_eq!(longer.read_vec(9, 3).unwrap(), vec![0, 0, 0]);
        let shorter = Resized::new(&base, 5);
        assert_eq!(shorter.size(), 5);
        assert_eq!(shorter.read_vec(2, 3).unwrap(), vec![3, 4, 5]);
        assert!(shorter.read_vec(4, 2).is_err());
    }

    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    #[test]
    fn slice_and_cursor() {
        let data: Vec<u8> = (0..=255u8).collect();
        let s = Slice::new(&data, 16, 32).unwrap();
        let mut b = [0u8; 4];
        s.read_at(4, &mut b).unwrap();
        assert_eq!(b, [20, 21, 22, 23]);
        assert!(s.read_at(30, &mut b).is_err());
        assert!(Slice::new(&data, 250, 10).is_err());
        let mut c = Cursor::new(s);
        c.seek(SeekFrom::End(-2)).unwrap();
        let mut v = Vec::new();
        c.read_to_end(&mut v).unwrap();
        assert_eq!(v, vec![46, 47]);
    }

    #[test]
    fn counted_counts() {
        let data = vec![7u8; 100];
        let c = Counted::new(&data);
        let mut b = [0u8; 10];
        c.read_at(0, &mut b).unwrap();
        c.read_at(50, &mut b).unwrap();
        assert_eq!(
            c.stats(),
            ReadStats {
                calls: 2,
                bytes: 20
            }
        );
    }
}
