//! A file record (`FILE`) after fixups: a typed view over its header and attributes.

use crate::bytes::{slice, u16_at, u32_at, u64_at, u8_at, utf16_units};
use crate::runlist::{decode_runlist, Run};
use crate::NtfsError;
use crate::{Location, Structure};

pub const ATTR_STANDARD_INFORMATION: u32 = 0x10;
pub const ATTR_ATTRIBUTE_LIST: u32 = 0x20;
pub const ATTR_FILE_NAME: u32 = 0x30;
pub const ATTR_OBJECT_ID: u32 = 0x40;
pub const ATTR_VOLUME_NAME: u32 = 0x60;
pub const ATTR_VOLUME_INFORMATION: u32 = 0x70;
pub const ATTR_DATA: u32 = 0x80;
pub const ATTR_INDEX_ROOT: u32 = 0x90;
pub const ATTR_INDEX_ALLOCATION: u32 = 0xA0;
pub const ATTR_BITMAP: u32 = 0xB0;
pub const ATTR_REPARSE_POINT: u32 = 0xC0;
pub const ATTR_END: u32 = 0xFFFF_FFFF;

pub const FLAG_IN_USE: u16 = 0x0001;
pub const FLAG_DIRECTORY: u16 = 0x0002;

/// A 48-bit record number and 16-bit sequence number, as stored in references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef {
    pub record: u64,
    pub sequence: u16,
}

impl FileRef {
    pub fn from_u64(v: u64) -> FileRef {
        FileRef {
            record: v & 0xFFFF_FFFF_FFFF,
            sequence: (v >> 48) as u16,
        }
    }
}

/// A fixed-up file record and the number it was read as.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub number: u64,
    pub bytes: Vec<u8>,
}

/// One attribute inside a file record.
#[derive(Debug, Clone)]
pub struct Attribute<'a> {
    pub type_code: u32,
    /// Offset of the attribute header within the record.
    pub offset: usize,
    pub raw: &'a [u8],
    pub name: Vec<u16>,
    pub non_resident: bool,
}

impl FileRecord {
    pub fn parse(number: u64, bytes: Vec<u8>) -> Result<FileRecord, NtfsError> {
        if bytes.get(0..4) != Some(b"FILE") {
            return Err(NtfsError::damaged_at(
                Structure::FileRecord,
                Location::MftRecord { record: number },
                format!("MFT record {number} has no FILE signature"),
            ));
        }
        let rec = FileRecord { number, bytes };
        let used = rec.bytes_in_use()? as usize;
        let first = rec.first_attribute_offset()? as usize;
        if used > rec.bytes.len() || first >= used {
            return Err(NtfsError::damaged_at(Structure::FileRecord, Location::MftRecord { record: number }, format!(
                "MFT record {number}: bytes in use {used} / first attribute {first} do not fit a {}-byte record",
                rec.bytes.len()
            )));
        }
        Ok(rec)
    }

    pub fn sequence(&self) -> u16 {
        u16_at(&self.bytes, 0x10).unwrap_or(0)
    }
    pub fn link_count(&self) -> u16 {
        u16_at(&self.bytes, 0x12).unwrap_or(0)
    }
    pub fn first_attribute_offset(&self) -> Result<u16, NtfsError> {
        u16_at(&self.bytes, 0x14)
    }
    pub fn flags(&self) -> u16 {
        u16_at(&self.bytes, 0x16).unwrap_or(0)
    }
    pub fn in_use(&self) -> bool {
        self.flags() & FLAG_IN_USE != 0
    }
    pub fn is_directory(&self) -> bool {
        self.flags() & FLAG_DIRECTORY != 0
    }
    pub fn bytes_in_use(&self) -> Result<u32, NtfsError> {
        u32_at(&self.bytes, 0x18)
    }
    /// Reference to the base record; zero for a base record itself.
    pub fn base_ref(&self) -> FileRef {
        FileRef::from_u64(u64_at(&self.bytes, 0x20).unwrap_or(0))
    }

    /// The record's attributes in on-disk order, stopping at the end marker.
    pub fn attributes(&self) -> Result<Vec<Attribute<'_>>, NtfsError> {
        let b = &self.bytes;
        let used = self.bytes_in_use()? as usize;
        let mut off = self.first_attribute_offset()? as usize;
        let mut out = Vec::new();
        loop {
            let ty = u32_at(b, off)?;
            if ty == ATTR_END {
                break;
            }
            let len = u32_at(b, off + 4)? as usize;
            if len < 0x18 || len & 7 != 0 || off + len > used {
                return Err(NtfsError::damaged_at(Structure::Attribute, Location::MftRecord { record: self.number }, format!(
                    "MFT record {}: attribute {ty:#x} at {off} has length {len}, beyond the record's used bytes",
                    self.number
                )));
            }
            let raw = &b[off..off + len];
            let name_len = u8_at(raw, 9)? as usize;
            let name_off = u16_at(raw, 0x0A)? as usize;
            let name = utf16_units(slice(raw, name_off, name_len * 2)?);
            out.push(Attribute {
                type_code: ty,
                offset: off,
                raw,
                name,
                non_resident: u8_at(raw, 8)? != 0,
            });
            off += len;
        }
        Ok(out)
    }

    /// The first attribute of `type_code` whose name is `name` (empty = unnamed).
    pub fn find(&self, type_code: u32, name: &str) -> Result<Option<Attribute<'_>>, NtfsError> {
        let want: Vec<u16> = name.encode_utf16().collect();
        Ok(self
            .attributes()?
            .into_iter()
            .find(|a| a.type_code == type_code && a.name == want))
    }
}

impl<'a> Attribute<'a> {
    /// The value of a resident attribute.
    pub fn resident_value(&self) -> Result<&'a [u8], NtfsError> {
        if self.non_resident {
            return Err(NtfsError::damaged(
                Structure::Attribute,
                format!("attribute {:#x} is not resident", self.type_code),
            ));
        }
        let len = u32_at(self.raw, 0x10)? as usize;
        let off = u16_at(self.raw, 0x14)? as usize;
        slice(self.raw, off, len)
    }

    /// Offset of the resident value within the record.
    pub fn resident_value_offset(&self) -> Result<usize, NtfsError> {
        Ok(self.offset + u16_at(self.raw, 0x14)? as usize)
    }

    pub fn lowest_vcn(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(0x10)
    }
    pub fn highest_vcn(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(0x18)
    }
    pub fn allocated_size(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(0x28)
    }
    pub fn data_size(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(0x30)
    }
    pub fn initialized_size(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(0x38)
    }
    /// Attribute flags: 0x0001 compressed, 0x4000 encrypted, 0x8000 sparse.
    pub fn flags(&self) -> u16 {
        u16_at(self.raw, 0x0C).unwrap_or(0)
    }

    fn nonresident_field(&self, off: usize) -> Result<u64, NtfsError> {
        if !self.non_resident {
            return Err(NtfsError::damaged(
                Structure::Attribute,
                format!("attribute {:#x} is resident", self.type_code),
            ));
        }
        u64_at(self.raw, off)
    }

    /// The decoded mapping pairs of a non-resident attribute.
    pub fn runs(&self) -> Result<Vec<Run>, NtfsError> {
        let mp = u16_at(self.raw, 0x20)? as usize;
        let lowest = self.lowest_vcn()?;
        decode_runlist(
            slice(self.raw, mp, self.raw.len().saturating_sub(mp))?,
            lowest,
        )
    }

    /// Size of the value: resident length or non-resident data size.
    pub fn value_size(&self) -> Result<u64, NtfsError> {
        if self.non_resident {
            self.data_size()
        } else {
            Ok(u32_at(self.raw, 0x10)? as u64)
        }
    }
}
