//! The native bottom of the read stack: `pread` on an image file or a block device.

use kaifuku_io::{check_range, ReadAt};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

pub struct FileSource {
    file: File,
    size: u64,
    meta: Metadata,
}

impl FileSource {
    /// Opens a disk image read-only: a regular file or a block device, nothing else. The path is
    /// checked before it is opened (opening a FIFO for reading would wait forever for a writer),
    /// and the opened file again (in case the path changed in between). The size comes from
    /// seeking to the end, which works for block devices (whose metadata length is 0) as well as
    /// files.
    pub fn open(path: &Path) -> io::Result<FileSource> {
        Self::open_kind(path, false)
    }

    /// Opens an undo file: a regular file only.
    pub fn open_regular(path: &Path) -> io::Result<FileSource> {
        Self::open_kind(path, true)
    }

    fn open_kind(path: &Path, regular_only: bool) -> io::Result<FileSource> {
        let before = crate::paths::check_image(path)?;
        if regular_only && !before.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a block device, not a file",
            ));
        }
        // O_NONBLOCK: should the path have become a FIFO since it was checked, the open returns
        // at once instead of waiting for a writer; the check below then refuses it.
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(path)?;
        let meta = file.metadata()?;
        let t = meta.file_type();
        if !(t.is_file() || t.is_block_device())
            || meta.dev() != before.dev()
            || meta.ino() != before.ino()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the file changed while it was being opened; try again",
            ));
        }
        let size = file.seek(SeekFrom::End(0))?;
        Ok(FileSource { file, size, meta })
    }

    /// The opened file's metadata (`fstat`).
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn is_block_device(&self) -> bool {
        self.meta.file_type().is_block_device()
    }
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)
    }
}
