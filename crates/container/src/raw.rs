//! Raw images (`.raw`, `.img`, a block device) and the identity mapping they share with fixed VHDs.
//!
//! A raw image has no metadata: virtual offset = file offset. A fixed VHD is the same thing with a
//! 512-byte footer appended, so it reuses this mapping with a virtual size that stops before the
//! footer — which is also why patches can never reach the footer.

use crate::{ContainerError, Extent, FileWrite, FileWriteLabel, WriteHow};

/// Maps `offset` of a `size`-byte disk stored byte for byte at the start of the file.
pub(crate) fn map_identity(offset: u64, size: u64) -> Result<Extent, ContainerError> {
    if offset >= size {
        return Err(ContainerError::OutOfRange {
            offset,
            virtual_size: size,
        });
    }
    Ok(Extent::InFile {
        file_offset: offset,
        len: size - offset,
    })
}

/// Writes for merged, in-range patches on an identity-mapped disk: the same bytes at the same offset.
pub(crate) fn plan_identity(merged: Vec<(u64, Vec<u8>)>) -> Vec<FileWrite> {
    merged
        .into_iter()
        .map(|(offset, bytes)| FileWrite {
            file_offset: offset,
            label: FileWriteLabel::virtual_bytes(
                offset,
                offset + bytes.len() as u64,
                WriteHow::Bytes,
            ),
            bytes,
        })
        .collect()
}
