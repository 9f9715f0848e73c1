//! A file's unnamed data stream as a [`ReadAt`] byte space, for readers of file formats inside
//! the volume (the registry hives): they read the few ranges they need, never the whole file.

use crate::layout::{attribute, AttributeType};
use crate::record::FileRecord;
use crate::volume::{AttrValue, Volume};
use crate::{NtfsError, Unsupported};
use kaifuku_io::ReadAt;
use std::io;

/// The `$DATA` stream of one file, read through its volume.
pub struct FileData<'a, R> {
    volume: &'a Volume<R>,
    value: AttrValue,
    size: u64,
}

impl<R: ReadAt> Volume<R> {
    /// The unnamed data stream of the file `rec` as a byte space, or `None` when it has none.
    /// Compressed and encrypted data, which this reader does not decode, are refused.
    pub fn file_data(&self, rec: &FileRecord) -> Result<Option<FileData<'_, R>>, NtfsError> {
        for part in self.records_of(rec)? {
            for a in part.attributes()? {
                if a.is(AttributeType::Data)
                    && a.name.is_empty()
                    && a.flags() & (attribute::FLAG_COMPRESSED | attribute::FLAG_ENCRYPTED) != 0
                {
                    return Err(NtfsError::Unsupported(
                        Unsupported::CompressedOrEncryptedData { record: rec.number },
                    ));
                }
            }
        }
        let Some(value) = self.value(rec, AttributeType::Data, "")? else {
            return Ok(None);
        };
        let size = match &value {
            AttrValue::Resident(bytes) => bytes.len() as u64,
            AttrValue::NonResident(stream) => stream.data_size,
        };
        Ok(Some(FileData {
            volume: self,
            value,
            size,
        }))
    }
}

impl<R: ReadAt> ReadAt for FileData<'_, R> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} past the end of a {}-byte file",
                    buf.len(),
                    self.size
                ),
            ));
        }
        let bytes = self
            .volume
            .read_value(&self.value, offset, buf.len())
            .map_err(|e| io::Error::other(e.to_string()))?;
        buf.copy_from_slice(&bytes);
        Ok(())
    }
}
