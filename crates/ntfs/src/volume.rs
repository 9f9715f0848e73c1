//! An open NTFS volume: the boot sector, the map of `$MFT`, raw record reads with their on-disk
//! locations, and attribute streams (across `$ATTRIBUTE_LIST` extension records). Directory
//! indexes and path lookup build on it in [`crate::index`]; this module does not depend on them.

use crate::boot::BootSector;
use crate::bytes::{u16_at, u64_at, u8_at};
use crate::layout::{attribute_list_entry, file_record, AttributeType};
use crate::record::{FileRecord, FileRef};
use crate::runlist::{map_range, Run};
use crate::upcase::UpcaseTable;
use crate::NtfsError;
use crate::Unsupported;
use crate::{Location, Structure};
use kaifuku_io::ReadAt;
use std::cell::OnceCell;

/// Record number of `$MFT`.
pub const RECORD_MFT: u64 = 0;
/// Record number of `$LogFile`.
pub const RECORD_LOGFILE: u64 = 2;
/// Record number of `$Volume`.
pub const RECORD_VOLUME: u64 = 3;
/// Record number of the root directory.
pub const RECORD_ROOT: u64 = 5;
/// Record number of `$Bitmap`.
pub const RECORD_BITMAP: u64 = 6;
/// Record number of `$UpCase`.
pub const RECORD_UPCASE: u64 = 10;

/// Most file records a volume can have before we call the `$MFT` size absurd (2^32).
const MAX_RECORDS: u64 = 1 << 32;

/// A non-resident attribute stream gathered from all of its extents.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The runs of all extents, in VCN order.
    pub runs: Vec<Run>,
    /// Bytes of data.
    pub data_size: u64,
    /// Bytes allocated (whole clusters).
    pub allocated_size: u64,
    /// Bytes written so far; the rest reads as zeros.
    pub initialized_size: u64,
}

/// The value of an attribute, wherever it lives.
#[derive(Debug, Clone)]
pub enum AttrValue {
    /// A value stored in the record itself.
    Resident(Vec<u8>),
    /// A value stored in clusters.
    NonResident(Stream),
}

/// An open NTFS volume over a reader (a partition or a bare disk): its boot sector, the map of `$MFT`, and the readers of records, attributes and indexes.
pub struct Volume<R> {
    reader: R,
    boot: BootSector,
    mft: Stream,
    upcase: OnceCell<UpcaseTable>,
    /// The `ntfs` crate's view of the volume, opened on first use and kept for the volume's
    /// life (or the message of its refusal, which every later use reports again).
    pub(crate) semantic_reader: OnceCell<Result<ntfs::Ntfs, String>>,
}

impl<R: ReadAt> Volume<R> {
    /// Opens the volume occupying all of `reader` (a partition or a bare disk).
    pub fn open(reader: R) -> Result<Self, NtfsError> {
        let size = reader.size();
        let mut sector = [0u8; 512];
        reader
            .read_at(0, &mut sector)
            .map_err(NtfsError::io("reading the boot sector"))?;
        let boot = BootSector::parse(&sector, size)?;
        let cs = boot.cluster_size as u64;
        let rs = boot.file_record_size as u64;
        // Bootstrap: record 0 sits at the start of the first run, so read it directly.
        let rec0_bytes = {
            let mut b = vec![0u8; rs as usize];
            reader
                .read_at(boot.mft_lcn * cs, &mut b)
                .map_err(NtfsError::io("reading $MFT record 0"))?;
            crate::fixup::apply_read(&mut b, "$MFT record 0")?;
            b
        };
        let rec0 = FileRecord::parse(0, rec0_bytes)?;
        if !rec0.in_use() || u64_at(&rec0.bytes, file_record::BASE_RECORD)? != 0 {
            return Err(NtfsError::damaged_at(
                Structure::Mft,
                Location::MftRecord { record: 0 },
                "$MFT's own record (record 0) is not a base record in use",
            ));
        }
        let data = rec0
            .find(AttributeType::Data, "")?
            .ok_or_else(|| NtfsError::damaged(Structure::Mft, "$MFT has no $DATA attribute"))?;
        if !data.non_resident {
            return Err(NtfsError::damaged(
                Structure::Mft,
                "$MFT's $DATA is resident",
            ));
        }
        // Record 0 maps `$MFT` starting with itself: its first run must be where the boot sector
        // found it, or the boot sector and `$MFT` disagree about where `$MFT` is.
        let first_lcn = data.runs()?.first().and_then(|r| r.lcn);
        if first_lcn != Some(boot.mft_lcn) {
            return Err(NtfsError::damaged_at(
                Structure::Mft,
                Location::Cluster { lcn: boot.mft_lcn },
                format!(
                    "the boot sector puts $MFT at cluster {}, but $MFT's own record maps it at {}",
                    boot.mft_lcn,
                    first_lcn.map_or("no cluster".to_string(), |l| format!("cluster {l}"))
                ),
            ));
        }
        let mut mft = Stream {
            runs: data.runs()?,
            data_size: data.data_size()?,
            allocated_size: data.allocated_size()?,
            initialized_size: data.initialized_size()?,
        };
        if mft.data_size / rs > MAX_RECORDS || mft.allocated_size > boot.volume_size() {
            return Err(NtfsError::damaged(
                Structure::Mft,
                format!("$MFT claims {} bytes", mft.data_size),
            ));
        }
        let mut vol = Volume {
            reader,
            boot,
            mft: mft.clone(),
            upcase: OnceCell::new(),
            semantic_reader: OnceCell::new(),
        };
        // A fragmented $MFT keeps further $DATA extents in extension records listed in its
        // $ATTRIBUTE_LIST; those records lie in the part already mapped, so add extents in VCN order.
        if let Some(list) = rec0.find(AttributeType::AttributeList, "")? {
            let list_bytes = vol.attribute_bytes(&list)?;
            let mut entries = parse_attribute_list(&list_bytes)?;
            entries.retain(|e| {
                e.type_code == AttributeType::Data.code()
                    && e.name.is_empty()
                    && e.record.record != 0
            });
            entries.sort_by_key(|e| e.lowest_vcn);
            for e in entries {
                vol.mft = mft.clone();
                let ext = vol.read_record(e.record.record)?;
                let attr = ext.find(AttributeType::Data, "")?.ok_or_else(|| {
                    NtfsError::damaged_at(
                        Structure::AttributeList,
                        Location::MftRecord {
                            record: e.record.record,
                        },
                        format!(
                            "$MFT extension record {} lacks its $DATA extent",
                            e.record.record
                        ),
                    )
                })?;
                mft.runs.extend(attr.runs()?);
            }
            vol.mft = mft;
        }
        // Likewise `$MFTMirr` (record 1), whose copies every record edit also writes.
        let mirror = vol.read_record(1)?;
        let mirror_lcn = match mirror.find(AttributeType::Data, "")? {
            Some(a) if a.non_resident => a.runs()?.first().and_then(|r| r.lcn),
            _ => None,
        };
        if mirror_lcn != Some(vol.boot.mftmirr_lcn) {
            return Err(NtfsError::damaged_at(
                Structure::MftMirr,
                Location::Cluster {
                    lcn: vol.boot.mftmirr_lcn,
                },
                format!(
                    "the boot sector puts $MFTMirr at cluster {}, but its own record maps it at {}",
                    vol.boot.mftmirr_lcn,
                    mirror_lcn.map_or("no cluster".to_string(), |l| format!("cluster {l}"))
                ),
            ));
        }
        Ok(vol)
    }

    /// The validated boot sector.
    pub fn boot(&self) -> &BootSector {
        &self.boot
    }

    /// The reader the volume is read through (an overlay when editing).
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// Bytes per cluster.
    pub fn cluster_size(&self) -> u64 {
        self.boot.cluster_size as u64
    }

    /// Number of file records the `$MFT` holds.
    pub fn record_count(&self) -> u64 {
        self.mft.data_size / self.boot.file_record_size as u64
    }

    /// The runs and sizes of `$MFT`'s data, across its extension records.
    pub fn mft_stream(&self) -> &Stream {
        &self.mft
    }

    /// Where record `n`'s bytes lie on the volume: (volume offset, length) pieces in order.
    pub fn record_location(&self, n: u64) -> Result<Vec<(u64, u64)>, NtfsError> {
        if n >= self.record_count() {
            return Err(NtfsError::damaged_at(
                Structure::Mft,
                Location::MftRecord { record: n },
                format!(
                    "MFT record {n} is beyond the {} records of $MFT",
                    self.record_count()
                ),
            ));
        }
        let rs = self.boot.file_record_size as u64;
        map_range(&self.mft.runs, self.cluster_size(), n * rs, rs)?
            .into_iter()
            .map(|(off, len)| {
                off.map(|o| (o, len)).ok_or_else(|| {
                    NtfsError::damaged_at(
                        Structure::Mft,
                        Location::MftRecord { record: n },
                        format!("MFT record {n} lies in a sparse part of $MFT"),
                    )
                })
            })
            .collect()
    }

    /// Reads record `n` as stored (fixups still in place).
    pub fn read_record_raw(&self, n: u64) -> Result<Vec<u8>, NtfsError> {
        let mut out = Vec::with_capacity(self.boot.file_record_size as usize);
        for (off, len) in self.record_location(n)? {
            let mut b = vec![0u8; len as usize];
            self.reader
                .read_at(off, &mut b)
                .map_err(NtfsError::io("reading an MFT record"))?;
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    /// Reads and fixes up record `n` (in use or not).
    pub fn read_record(&self, n: u64) -> Result<FileRecord, NtfsError> {
        let mut b = self.read_record_raw(n)?;
        crate::fixup::apply_read(&mut b, &format!("MFT record {n}"))?;
        FileRecord::parse(n, b)
    }

    /// Reads the record a reference points at and checks it is the same, live file.
    pub fn read_live(&self, r: FileRef) -> Result<FileRecord, NtfsError> {
        let rec = self.read_record(r.record)?;
        if !rec.in_use() || rec.sequence() != r.sequence {
            return Err(NtfsError::damaged_at(Structure::FileRecord, Location::MftRecord { record: r.record }, format!(
                "MFT record {} is not the live file the index names (in use: {}, sequence {} vs {})",
                r.record,
                rec.in_use(),
                rec.sequence(),
                r.sequence
            )));
        }
        Ok(rec)
    }

    /// Reads `len` bytes at `offset` of a non-resident stream (sparse parts read as zeros; bytes
    /// past the initialized size read as zeros, as NTFS defines).
    pub fn read_stream(&self, s: &Stream, offset: u64, len: usize) -> Result<Vec<u8>, NtfsError> {
        self.check_read_len(len)?;
        let end = offset
            .checked_add(len as u64)
            .filter(|e| *e <= s.data_size)
            .ok_or_else(|| {
                NtfsError::damaged_at(
                    Structure::Runlist,
                    Location::StreamOffset { offset },
                    format!(
                        "read of {len} bytes at {offset} beyond a {}-byte stream",
                        s.data_size
                    ),
                )
            })?;
        let mut out = vec![0u8; len];
        let mut at = 0usize;
        for (vol_off, n) in map_range(&s.runs, self.cluster_size(), offset, len as u64)? {
            if let Some(o) = vol_off {
                self.reader
                    .read_at(o, &mut out[at..at + n as usize])
                    .map_err(NtfsError::io("reading an attribute stream"))?;
            }
            at += n as usize;
        }
        if end > s.initialized_size {
            let from = s.initialized_size.saturating_sub(offset) as usize;
            out[from.min(len)..].fill(0);
        }
        Ok(out)
    }

    /// The largest single read the volume can need: its `$Bitmap` (one bit per cluster) or 64 MiB,
    /// whichever is larger. Sizes come from a damaged image; a read past this is refused rather
    /// than allocated.
    fn check_read_len(&self, len: usize) -> Result<(), NtfsError> {
        let limit = (self.boot.total_clusters() / 8 + (1 << 20)).max(64 << 20);
        if len as u64 > limit {
            return Err(NtfsError::damaged(
                Structure::Attribute,
                format!(
                    "an attribute claims {len} bytes, more than anything on this volume can hold"
                ),
            ));
        }
        Ok(())
    }

    /// The whole value of an attribute of one record (no attribute-list handling; see `value`).
    pub fn attribute_bytes(&self, a: &crate::record::Attribute<'_>) -> Result<Vec<u8>, NtfsError> {
        if a.non_resident {
            let s = Stream {
                runs: a.runs()?,
                data_size: a.data_size()?,
                allocated_size: a.allocated_size()?,
                initialized_size: a.initialized_size()?,
            };
            if s.data_size > 64 * 1024 * 1024 {
                return Err(NtfsError::Unsupported(Unsupported::AttributeTooLarge {
                    type_code: a.type_code,
                    size: s.data_size,
                }));
            }
            self.read_stream(&s, 0, s.data_size as usize)
        } else {
            Ok(a.resident_value()?.to_vec())
        }
    }

    /// The base record followed by its extension records (from `$ATTRIBUTE_LIST`, if any).
    pub fn records_of(&self, base: &FileRecord) -> Result<Vec<FileRecord>, NtfsError> {
        let mut out = vec![base.clone()];
        if let Some(list) = base.find(AttributeType::AttributeList, "")? {
            let bytes = self.attribute_bytes(&list)?;
            let mut seen = vec![base.number];
            for e in parse_attribute_list(&bytes)? {
                if seen.contains(&e.record.record) {
                    continue;
                }
                seen.push(e.record.record);
                let ext = self.read_record(e.record.record)?;
                if ext.base_ref().record != base.number {
                    return Err(NtfsError::damaged_at(
                        Structure::AttributeList,
                        Location::MftRecord { record: ext.number },
                        format!(
                            "record {} is listed as an extension of {} but names base {}",
                            ext.number,
                            base.number,
                            ext.base_ref().record
                        ),
                    ));
                }
                out.push(ext);
            }
        }
        Ok(out)
    }

    /// The value of attribute (`kind`, `name`) of a file, gathered across extension records.
    pub fn value(
        &self,
        base: &FileRecord,
        kind: AttributeType,
        name: &str,
    ) -> Result<Option<AttrValue>, NtfsError> {
        let type_code = kind.code();
        let records = self.records_of(base)?;
        let want: Vec<u16> = name.encode_utf16().collect();
        let mut extents: Vec<(u64, Stream)> = Vec::new();
        for rec in &records {
            for a in rec.attributes()? {
                if !a.is(kind) || a.name != want {
                    continue;
                }
                if !a.non_resident {
                    return Ok(Some(AttrValue::Resident(a.resident_value()?.to_vec())));
                }
                extents.push((
                    a.lowest_vcn()?,
                    Stream {
                        runs: a.runs()?,
                        data_size: a.data_size()?,
                        allocated_size: a.allocated_size()?,
                        initialized_size: a.initialized_size()?,
                    },
                ));
            }
        }
        if extents.is_empty() {
            return Ok(None);
        }
        extents.sort_by_key(|(v, _)| *v);
        if let Some((_, s)) = extents.first() {
            // Sizes are nested: initialized <= data <= allocated, as NTFS keeps them.
            if s.initialized_size > s.data_size || s.data_size > s.allocated_size {
                return Err(NtfsError::damaged_at(Structure::Attribute, Location::MftRecord { record: base.number }, format!(
                    "record {}: attribute {type_code:#x} has sizes initialized {} / data {} / allocated {} out of order",
                    base.number, s.initialized_size, s.data_size, s.allocated_size
                )));
            }
        }
        let mut iter = extents.into_iter();
        let (first_vcn, mut stream) = iter.next().expect("not empty");
        if first_vcn != 0 {
            return Err(NtfsError::damaged_at(
                Structure::Runlist,
                Location::MftRecord {
                    record: base.number,
                },
                format!(
                    "record {}: attribute {type_code:#x} has no extent starting at VCN 0",
                    base.number
                ),
            ));
        }
        for (_, s) in iter {
            stream.runs.extend(s.runs);
        }
        Ok(Some(AttrValue::NonResident(stream)))
    }

    /// Reads `len` bytes at `offset` of an attribute value (resident or not).
    pub fn read_value(&self, v: &AttrValue, offset: u64, len: usize) -> Result<Vec<u8>, NtfsError> {
        match v {
            AttrValue::Resident(b) => {
                crate::bytes::slice(b, offset as usize, len).map(|s| s.to_vec())
            }
            AttrValue::NonResident(s) => self.read_stream(s, offset, len),
        }
    }

    /// The `$UpCase` table, read on first use (128 KiB).
    pub fn upcase(&self) -> Result<&UpcaseTable, NtfsError> {
        if let Some(t) = self.upcase.get() {
            return Ok(t);
        }
        let rec = self.read_record(RECORD_UPCASE)?;
        let v = self
            .value(&rec, AttributeType::Data, "")?
            .ok_or_else(|| NtfsError::damaged(Structure::UpCase, "$UpCase has no data"))?;
        let bytes = self.read_value(&v, 0, 131072)?;
        let t = UpcaseTable::from_bytes(&bytes)?;
        Ok(self.upcase.get_or_init(|| t))
    }
}

/// One entry of an `$ATTRIBUTE_LIST` value.
#[derive(Debug, Clone)]
pub struct AttributeListEntry {
    /// The attribute type code.
    pub type_code: u32,
    /// The attribute name.
    pub name: Vec<u16>,
    /// First VCN of the extent the entry lists.
    pub lowest_vcn: u64,
    /// The record holding the extent.
    pub record: FileRef,
    /// The attribute's instance number in that record.
    pub instance: u16,
}

/// Reads the entries of an `$ATTRIBUTE_LIST` value.
pub fn parse_attribute_list(b: &[u8]) -> Result<Vec<AttributeListEntry>, NtfsError> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + attribute_list_entry::MIN_LENGTH <= b.len() {
        let type_code = crate::bytes::u32_at(b, off + attribute_list_entry::TYPE)?;
        let len = u16_at(b, off + attribute_list_entry::LENGTH)? as usize;
        if len < attribute_list_entry::MIN_LENGTH || off + len > b.len() {
            return Err(NtfsError::damaged_at(
                Structure::AttributeList,
                Location::StreamOffset { offset: off as u64 },
                format!("$ATTRIBUTE_LIST entry at {off} has length {len}"),
            ));
        }
        let name_len = u8_at(b, off + attribute_list_entry::NAME_LENGTH)? as usize;
        let name_off = u8_at(b, off + attribute_list_entry::NAME_OFFSET)? as usize;
        let name = crate::bytes::utf16_units(crate::bytes::slice(b, off + name_off, name_len * 2)?);
        out.push(AttributeListEntry {
            type_code,
            name,
            lowest_vcn: u64_at(b, off + attribute_list_entry::LOWEST_VCN)?,
            record: FileRef::from_u64(u64_at(b, off + attribute_list_entry::RECORD)?),
            instance: u16_at(b, off + attribute_list_entry::INSTANCE)?,
        });
        off += len;
    }
    Ok(out)
}
