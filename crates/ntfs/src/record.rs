//! A file record (`FILE`) after fixups: a typed view over its header and attributes.

use crate::bytes::{put_u16, slice, u16_at, u32_at, u64_at, u8_at, utf16_units};
use crate::layout::{attribute, file_record, multi_sector, AttributeType};
use crate::runlist::{decode_runlist, Run};
use crate::{Location, NtfsError, Structure};

/// A 48-bit record number and 16-bit sequence number, as stored in references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileRef {
    /// The record number (48 bits).
    pub record: u64,
    /// The sequence number the record had when the reference was made.
    pub sequence: u16,
}

impl FileRef {
    /// Splits a stored reference into record and sequence number.
    pub fn from_u64(v: u64) -> FileRef {
        FileRef {
            record: v & 0xFFFF_FFFF_FFFF,
            sequence: (v >> 48) as u16,
        }
    }

    /// The reference as stored (record in the low 48 bits, sequence in the high 16).
    pub fn to_u64(self) -> u64 {
        (self.record & 0xFFFF_FFFF_FFFF) | ((self.sequence as u64) << 48)
    }
}

/// The sequence number a record gets when it is freed: "incremented each time that a file record
/// segment is freed" (Microsoft's `FILE_RECORD_SEGMENT_HEADER`); 0 means never used and stays,
/// 0xFFFF wraps to 1. The delete and the journal replay's `DeallocateFileRecordSegment` share it.
pub(crate) fn sequence_after_free(sequence: u16) -> u16 {
    match sequence {
        0 => 0,
        0xFFFF => 1,
        s => s + 1,
    }
}

/// A fixed-up file record and the number it was read as.
#[derive(Debug, Clone)]
pub struct FileRecord {
    /// The record number it was read as.
    pub number: u64,
    /// The record with fixups removed, as long as the file record size.
    pub bytes: Vec<u8>,
}

/// One attribute inside a file record.
#[derive(Debug, Clone)]
pub struct Attribute<'a> {
    /// The type code as stored; [`AttributeType::from_code`] names it.
    pub type_code: u32,
    /// Offset of the attribute header within the record.
    pub offset: usize,
    /// The whole attribute, header and value, inside the record.
    pub raw: &'a [u8],
    /// The attribute name, UTF-16 (empty for the unnamed attribute).
    pub name: Vec<u16>,
    /// Whether the value lives in clusters (mapped by a runlist) rather than in the record.
    pub non_resident: bool,
}

impl FileRecord {
    /// Checks the signature and the used size of a fixed-up record read as `number`.
    pub fn parse(number: u64, bytes: Vec<u8>) -> Result<FileRecord, NtfsError> {
        if bytes.get(multi_sector::SIGNATURE..multi_sector::SIGNATURE + 4)
            != Some(file_record::SIGNATURE.as_slice())
        {
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

    /// The sequence number: references to this file carry it, so a reference to an earlier
    /// file that used the record is recognised as stale.
    pub fn sequence(&self) -> u16 {
        u16_at(&self.bytes, file_record::SEQUENCE).unwrap_or(0)
    }

    /// How many of the file's names are hard links (a DOS twin does not count).
    pub fn link_count(&self) -> u16 {
        u16_at(&self.bytes, file_record::LINK_COUNT).unwrap_or(0)
    }

    /// Where the first attribute starts.
    pub fn first_attribute_offset(&self) -> Result<u16, NtfsError> {
        u16_at(&self.bytes, file_record::FIRST_ATTRIBUTE)
    }

    /// The record flags ([`file_record::FLAG_IN_USE`], [`file_record::FLAG_DIRECTORY`]).
    pub fn flags(&self) -> u16 {
        u16_at(&self.bytes, file_record::FLAGS).unwrap_or(0)
    }

    /// Whether the record holds a live file.
    pub fn in_use(&self) -> bool {
        self.flags() & file_record::FLAG_IN_USE != 0
    }

    /// Whether the record holds a directory.
    pub fn is_directory(&self) -> bool {
        self.flags() & file_record::FLAG_DIRECTORY != 0
    }

    /// Bytes of the record in use, up to and including the end marker.
    pub fn bytes_in_use(&self) -> Result<u32, NtfsError> {
        u32_at(&self.bytes, file_record::BYTES_IN_USE)
    }

    /// Reference to the base record; zero for a base record itself.
    pub fn base_ref(&self) -> FileRef {
        FileRef::from_u64(u64_at(&self.bytes, file_record::BASE_RECORD).unwrap_or(0))
    }

    /// Sets the sequence number (the delete increments it as NTFS does when it frees a record).
    pub fn set_sequence(&mut self, sequence: u16) {
        put_u16(&mut self.bytes, file_record::SEQUENCE, sequence);
    }

    /// Sets the link count (after names were removed from a file that keeps others).
    pub fn set_link_count(&mut self, links: u16) {
        put_u16(&mut self.bytes, file_record::LINK_COUNT, links);
    }

    /// Clears the in-use flag: the record no longer holds a file.
    pub fn mark_not_in_use(&mut self) {
        let flags = self.flags() & !file_record::FLAG_IN_USE;
        put_u16(&mut self.bytes, file_record::FLAGS, flags);
    }

    /// The record's attributes in on-disk order, stopping at the end marker.
    pub fn attributes(&self) -> Result<Vec<Attribute<'_>>, NtfsError> {
        let b = &self.bytes;
        let used = self.bytes_in_use()? as usize;
        let mut off = self.first_attribute_offset()? as usize;
        let mut out = Vec::new();
        loop {
            let ty = u32_at(b, off + attribute::TYPE)?;
            if ty == attribute::END_MARKER {
                break;
            }
            let len = u32_at(b, off + attribute::LENGTH)? as usize;
            if len < attribute::MIN_LENGTH || len & 7 != 0 || off + len > used {
                return Err(NtfsError::damaged_at(Structure::Attribute, Location::MftRecord { record: self.number }, format!(
                    "MFT record {}: attribute {ty:#x} at {off} has length {len}, beyond the record's used bytes",
                    self.number
                )));
            }
            let raw = &b[off..off + len];
            let name_len = u8_at(raw, attribute::NAME_LENGTH)? as usize;
            let name_off = u16_at(raw, attribute::NAME_OFFSET)? as usize;
            let name = utf16_units(slice(raw, name_off, name_len * 2)?);
            out.push(Attribute {
                type_code: ty,
                offset: off,
                raw,
                name,
                non_resident: u8_at(raw, attribute::NON_RESIDENT)? != 0,
            });
            off += len;
        }
        Ok(out)
    }

    /// The first attribute of type `kind` whose name is `name` (empty = unnamed).
    pub fn find(
        &self,
        kind: AttributeType,
        name: &str,
    ) -> Result<Option<Attribute<'_>>, NtfsError> {
        let want: Vec<u16> = name.encode_utf16().collect();
        Ok(self
            .attributes()?
            .into_iter()
            .find(|a| a.is(kind) && a.name == want))
    }
}

impl<'a> Attribute<'a> {
    /// Whether the attribute is of type `kind`.
    pub fn is(&self, kind: AttributeType) -> bool {
        self.type_code == kind.code()
    }

    /// The value of a resident attribute.
    pub fn resident_value(&self) -> Result<&'a [u8], NtfsError> {
        if self.non_resident {
            return Err(NtfsError::damaged(
                Structure::Attribute,
                format!("attribute {:#x} is not resident", self.type_code),
            ));
        }
        let len = u32_at(self.raw, attribute::resident::VALUE_LENGTH)? as usize;
        let off = u16_at(self.raw, attribute::resident::VALUE_OFFSET)? as usize;
        slice(self.raw, off, len)
    }

    /// Offset of the resident value within the record.
    pub fn resident_value_offset(&self) -> Result<usize, NtfsError> {
        Ok(self.offset + u16_at(self.raw, attribute::resident::VALUE_OFFSET)? as usize)
    }

    /// First VCN this extent of a non-resident attribute maps.
    pub fn lowest_vcn(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(attribute::non_resident::LOWEST_VCN)
    }

    /// Last VCN this extent of a non-resident attribute maps.
    pub fn highest_vcn(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(attribute::non_resident::HIGHEST_VCN)
    }

    /// Bytes allocated to a non-resident value (valid in the extent starting at VCN 0).
    pub fn allocated_size(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(attribute::non_resident::ALLOCATED_SIZE)
    }

    /// Size of a non-resident value (valid in the extent starting at VCN 0).
    pub fn data_size(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(attribute::non_resident::DATA_SIZE)
    }

    /// Bytes of a non-resident value written so far; the rest reads as zeros.
    pub fn initialized_size(&self) -> Result<u64, NtfsError> {
        self.nonresident_field(attribute::non_resident::INITIALIZED_SIZE)
    }

    /// Attribute flags ([`attribute::FLAG_COMPRESSED`], [`attribute::FLAG_ENCRYPTED`],
    /// [`attribute::FLAG_SPARSE`]).
    pub fn flags(&self) -> u16 {
        u16_at(self.raw, attribute::FLAGS).unwrap_or(0)
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
        let mp = u16_at(self.raw, attribute::non_resident::MAPPING_PAIRS_OFFSET)? as usize;
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
            Ok(u32_at(self.raw, attribute::resident::VALUE_LENGTH)? as u64)
        }
    }
}
