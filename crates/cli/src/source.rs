//! The native bottom of the read stack: `pread` on an image file or a block device.

use kaifuku_io::{check_range, ReadAt};
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub struct FileSource {
    file: File,
    size: u64,
}

impl FileSource {
    /// Opens read-only. The size comes from seeking to the end, which works for block devices
    /// (whose metadata length is 0) as well as files.
    pub fn open(path: &Path) -> io::Result<FileSource> {
        let mut file = File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory, not a disk image",
            ));
        }
        let size = file.seek(SeekFrom::End(0))?;
        Ok(FileSource { file, size })
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
