//! What `inspect` says about a volume and about one file, read through the `ntfs` crate for the
//! semantic parts (label, version, flags, times, data) and through our own code for the rest.

use crate::boot::BootSector;
use crate::layout::{attribute, standard_information, Namespace};
use crate::logfile::{log_state, LogFileInfo};
use crate::record::FileRef;
use crate::time::format_utc;
use crate::volume::{Volume, RECORD_LOGFILE, RECORD_MFT, RECORD_VOLUME};
use crate::{AttributeType, Location, NtfsError, Structure, Unsupported};
use kaifuku_io::{Cursor, ReadAt};
use serde::Serialize;
use std::io::Read;

/// Windows' hibernation file: resuming from it would restore a cached view of the volume and
/// overwrite an offline edit.
#[derive(Debug, Clone, Serialize)]
pub struct Hibernation {
    /// `\\hiberfil.sys` exists.
    pub hiberfil_present: bool,
    /// Its data size.
    pub hiberfil_size: Option<u64>,
    /// First four bytes of `hiberfil.sys`, as text when printable.
    pub header: Option<String>,
    /// True when the header is `hibr`/`HIBR`: a hibernated (or Fast Startup) image is waiting.
    pub hibernated: bool,
}

/// What `inspect` reports about a volume: geometry, label, version, state flags, and what blocks an offline edit.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeSummary {
    /// The volume label (`$VOLUME_NAME`), when it has one.
    pub label: Option<String>,
    /// The serial number as 16 hex digits.
    pub serial: String,
    /// Bytes the boot sector describes (total sectors × sector size).
    pub size: u64,
    /// Whole clusters of the volume (what `$Bitmap` covers).
    pub total_clusters: u64,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Bytes per sector.
    pub sector_size: u32,
    /// Bytes per `$MFT` record.
    pub file_record_size: u32,
    /// Bytes per `INDX` block.
    pub index_record_size: u32,
    /// Records `$MFT` holds.
    pub mft_records: u64,
    /// The NTFS version, e.g. "3.1".
    pub ntfs_version: String,
    /// The volume dirty flag in `$Volume`: Windows runs chkdsk at the next boot when set.
    pub dirty: bool,
    /// The `$LogFile` state.
    pub log: LogFileInfo,
    /// Whether Windows is hibernated (its resume would overwrite an edit).
    pub hibernation: Hibernation,
    /// `\Windows\System32` exists.
    pub windows: bool,
    /// Disk quotas are tracked on the volume (an offline delete would leave them stale).
    pub quota_tracking: bool,
}

/// What `inspect` reports about a file a rule matched, enough to tell a bad file from a good one.
#[derive(Debug, Clone, Serialize)]
pub struct FileDetails {
    /// The name it is listed under.
    pub name: String,
    /// Its DOS 8.3 name, when it has a separate one.
    pub dos_name: Option<String>,
    /// Its base record.
    pub mft_record: u64,
    /// The record's sequence number.
    pub sequence: u16,
    /// Bytes of data.
    pub size: u64,
    /// Creation time (`$STANDARD_INFORMATION`), UTC.
    pub created: String,
    /// Last data change, UTC.
    pub modified: String,
    /// Last change of the record, UTC.
    pub mft_changed: String,
    /// Last access, UTC.
    pub accessed: String,
    /// Creation time in 100 ns ticks since 1601, for rules that compare times.
    #[serde(skip)]
    pub created_ticks: u64,
    /// Last data change in ticks, for rules that compare times.
    #[serde(skip)]
    pub modified_ticks: u64,
    /// First eight bytes of the data (fewer when the file is shorter), lowercase hex.
    pub header_hex: String,
    /// Whether every data byte is zero (how the bad CrowdStrike files look).
    pub all_zero: bool,
    /// Hard links the record counts.
    pub link_count: u16,
}

impl<R: ReadAt> Volume<R> {
    /// The `ntfs` crate's handle on this volume, opened once. It holds the geometry and where
    /// `$MFT` is, not the reader, so every use passes a fresh cursor over the same reader.
    fn semantic_reader(&self) -> Result<&ntfs::Ntfs, NtfsError> {
        let opened = self.semantic_reader.get_or_init(|| {
            // `$MFT`'s own record is read by the crate to find every other one.
            self.check_for_crate(RECORD_MFT)
                .map_err(|e| e.to_string())?;
            let mut fs = Cursor::new(self.reader());
            ntfs::Ntfs::new(&mut fs).map_err(|e| e.to_string())
        });
        opened
            .as_ref()
            .map_err(|message| NtfsError::Reader(message.clone()))
    }

    /// Checks, with kaifuku's own reader, that the `ntfs` crate can be given record `record`
    /// without panicking: the crate (0.4) reaches an `unreachable!` in its error conversion when an
    /// `$ATTRIBUTE_LIST` value ends inside an entry's 26-byte header (found by fuzzing
    /// `plan_image`). Such a list, or an entry shorter than a header, is damage, refused here.
    fn check_for_crate(&self, record: u64) -> Result<(), NtfsError> {
        use crate::layout::attribute_list_entry::{LENGTH, MIN_LENGTH};
        let rec = self.read_record(record)?;
        let Some(list) = rec.find(AttributeType::AttributeList, "")? else {
            return Ok(());
        };
        let bytes = self.attribute_bytes(&list)?;
        let mut off = 0usize;
        while off < bytes.len() {
            let left = bytes.len() - off;
            let len = if left >= MIN_LENGTH {
                crate::bytes::u16_at(&bytes, off + LENGTH)? as usize
            } else {
                0
            };
            if len < MIN_LENGTH {
                return Err(NtfsError::damaged_at(
                    Structure::AttributeList,
                    Location::MftRecord { record },
                    format!(
                        "MFT record {record}: its $ATTRIBUTE_LIST of {} bytes holds a partial entry at byte {off}",
                        bytes.len()
                    ),
                ));
            }
            off += len;
        }
        Ok(())
    }

    /// Label, geometry, version, dirty flag, `$LogFile` state, hibernation and Windows presence.
    pub fn summary(&self) -> Result<VolumeSummary, NtfsError> {
        let mut fs = Cursor::new(self.reader());
        let ntfs = self.semantic_reader()?;
        self.check_for_crate(RECORD_VOLUME)?;
        let label = match ntfs.volume_name(&mut fs) {
            Some(n) => Some(n?.name().to_string_lossy()),
            None => None,
        };
        let vi = ntfs.volume_info(&mut fs)?;
        let boot: &BootSector = self.boot();
        let log_rec = self.read_record(RECORD_LOGFILE)?;
        let log_val = self
            .value(&log_rec, AttributeType::Data, "")?
            .ok_or_else(|| NtfsError::damaged(Structure::LogFile, "$LogFile has no data"))?;
        let log_size = match &log_val {
            crate::volume::AttrValue::Resident(b) => b.len() as u64,
            crate::volume::AttrValue::NonResident(s) => s.data_size,
        };
        let log = log_state(log_size, &mut |off, len| {
            self.read_value(&log_val, off, len)
        })?;
        Ok(VolumeSummary {
            label,
            serial: format!("{:016X}", boot.serial),
            size: boot.volume_size(),
            total_clusters: boot.total_clusters(),
            cluster_size: boot.cluster_size,
            sector_size: boot.bytes_per_sector,
            file_record_size: boot.file_record_size,
            index_record_size: boot.index_record_size,
            mft_records: self.record_count(),
            ntfs_version: format!("{}.{}", vi.major_version(), vi.minor_version()),
            dirty: vi
                .flags()
                .contains(ntfs::structured_values::NtfsVolumeFlags::IS_DIRTY),
            log,
            hibernation: self.hibernation()?,
            quota_tracking: self.quota_tracking()?,
            windows: self
                .lookup_path("\\Windows\\System32")?
                .is_some_and(|(_, r)| r.is_directory()),
        })
    }

    /// Whether disk quotas are tracked: the defaults entry (owner id 1) of `$Extend\$Quota:$Q` has
    /// QUOTA_FLAG_TRACKING_ENABLED. An offline delete would leave the charged bytes stale.
    pub fn quota_tracking(&self) -> Result<bool, NtfsError> {
        const QUOTA_DEFAULTS_ID: [u8; 4] = 1u32.to_le_bytes();
        const TRACKING_ENABLED: u32 = 0x10;
        let Some((_, quota)) = self.lookup_path("\\$Extend\\$Quota")? else {
            return Ok(false);
        };
        if self
            .value(&quota, AttributeType::IndexRoot, "$Q")?
            .is_none()
        {
            return Ok(false);
        }
        let index = crate::index::Directory::open_index(self, &quota, "$Q")?;
        let mut stack = vec![crate::index::NodeId::Root];
        let mut seen = 0usize;
        while let Some(id) = stack.pop() {
            seen += 1;
            if seen > 4096 {
                return Err(NtfsError::damaged(
                    Structure::Extend,
                    "$Quota:$Q has more nodes than it can",
                ));
            }
            let node = index.node(self, id)?;
            for e in &node.entries {
                if let Some(v) = e.subnode {
                    stack.push(crate::index::NodeId::Block(v));
                }
                if !e.is_end && e.key_bytes == QUOTA_DEFAULTS_ID {
                    // QUOTA_CONTROL_ENTRY: a version (u32), then the flags (u32).
                    let flags = crate::bytes::u32_at(&node.bytes, e.offset + e.data_offset + 4)?;
                    return Ok(flags & TRACKING_ENABLED != 0);
                }
            }
        }
        Ok(false)
    }

    fn hibernation(&self) -> Result<Hibernation, NtfsError> {
        let Some((entry, _)) = self.lookup_path("\\hiberfil.sys")? else {
            return Ok(Hibernation {
                hiberfil_present: false,
                hiberfil_size: None,
                header: None,
                hibernated: false,
            });
        };
        let (size, head) = self.read_head(entry.file_ref, 4)?;
        let header = (!head.is_empty()).then(|| {
            head.iter()
                .map(|b| {
                    if b.is_ascii_graphic() {
                        *b as char
                    } else {
                        '.'
                    }
                })
                .collect::<String>()
        });
        let hibernated = head.as_slice() == b"hibr" || head.as_slice() == b"HIBR";
        Ok(Hibernation {
            hiberfil_present: true,
            hiberfil_size: Some(size),
            header,
            hibernated,
        })
    }

    /// The data size of a file and its first `n` bytes, read through the `ntfs` crate.
    fn read_head(&self, r: FileRef, n: usize) -> Result<(u64, Vec<u8>), NtfsError> {
        let mut fs = Cursor::new(self.reader());
        let ntfs = self.semantic_reader()?;
        self.check_for_crate(r.record)?;
        let file = ntfs.file(&mut fs, r.record)?;
        let Some(item) = file.data(&mut fs, "") else {
            return Ok((0, Vec::new()));
        };
        let item = item?;
        let attr = item.to_attribute()?;
        let value = attr.value(&mut fs)?;
        let size = value.len();
        let mut head = vec![0u8; (n as u64).min(size) as usize];
        value
            .attach(&mut fs)
            .read_exact(&mut head)
            .map_err(NtfsError::io("reading file data"))?;
        Ok((size, head))
    }

    /// Size, times, header bytes and all-zero flag of the file an index entry names. Times and data
    /// come from the `ntfs` crate; record number, names and link count from our own reader. The
    /// crate assumes `$MFT` has no `$ATTRIBUTE_LIST` (a fragmented `$MFT` on a large server has
    /// one); where it cannot read the record, our own reader answers instead.
    pub fn file_details(&self, entry: &crate::index::DirEntry) -> Result<FileDetails, NtfsError> {
        match self.file_details_crate(entry) {
            Ok(d) => Ok(d),
            Err(NtfsError::Reader(_)) => self.file_details_own(entry),
            Err(e) => Err(e),
        }
    }

    /// The same facts through our own record and stream reading.
    pub fn file_details_own(
        &self,
        entry: &crate::index::DirEntry,
    ) -> Result<FileDetails, NtfsError> {
        use crate::volume::AttrValue;
        let rec = self.read_live(entry.file_ref)?;
        let dos_name = self.dos_name(&rec)?;
        let si = match self.value(&rec, AttributeType::StandardInformation, "")? {
            Some(AttrValue::Resident(v)) if v.len() >= standard_information::TIMES_LENGTH => v,
            _ => {
                return Err(NtfsError::damaged_at(
                    Structure::StandardInformation,
                    Location::MftRecord { record: rec.number },
                    format!("record {}: no $STANDARD_INFORMATION", rec.number),
                ))
            }
        };
        let tick = |o: usize| u64::from_le_bytes(si[o..o + 8].try_into().expect("8 bytes"));
        let (size, header, all_zero) = match self.value(&rec, AttributeType::Data, "")? {
            None => (0, Vec::new(), true),
            Some(v) => {
                if let Some(a) = self.records_of(&rec)?.iter().find_map(|r| {
                    r.find(AttributeType::Data, "")
                        .ok()
                        .flatten()
                        .map(|a| a.flags())
                }) {
                    if a & (attribute::FLAG_COMPRESSED | attribute::FLAG_ENCRYPTED) != 0 {
                        return Err(NtfsError::Unsupported(
                            Unsupported::CompressedOrEncryptedData { record: rec.number },
                        ));
                    }
                }
                let size = match &v {
                    AttrValue::Resident(b) => b.len() as u64,
                    AttrValue::NonResident(s) => s.data_size,
                };
                let mut header = Vec::new();
                let mut all_zero = true;
                let mut pos = 0u64;
                while pos < size {
                    let n = (size - pos).min(64 * 1024) as usize;
                    let chunk = self.read_value(&v, pos, n)?;
                    if header.len() < 8 {
                        header.extend_from_slice(&chunk[..(8 - header.len()).min(n)]);
                    }
                    all_zero &= chunk.iter().all(|b| *b == 0);
                    pos += n as u64;
                    if !all_zero {
                        break;
                    }
                    // Past the first chunk only allocated, initialized clusters can hold a
                    // non-zero byte (see `stream_zero_from`).
                    if let AttrValue::NonResident(s) = &v {
                        if pos < size {
                            all_zero = self.stream_zero_from(s, pos)?;
                        }
                        break;
                    }
                }
                (size, header, all_zero)
            }
        };
        Ok(FileDetails {
            name: entry.name(),
            dos_name,
            mft_record: entry.file_ref.record,
            sequence: rec.sequence(),
            size,
            created: format_utc(tick(standard_information::CREATED)),
            modified: format_utc(tick(standard_information::MODIFIED)),
            mft_changed: format_utc(tick(standard_information::MFT_CHANGED)),
            accessed: format_utc(tick(standard_information::ACCESSED)),
            created_ticks: tick(standard_information::CREATED),
            modified_ticks: tick(standard_information::MODIFIED),
            header_hex: header.iter().map(|b| format!("{b:02x}")).collect(),
            all_zero,
            link_count: rec.link_count(),
        })
    }

    /// Whether every byte of stream `s` from `from` on is zero, reading only what can hold a
    /// non-zero byte: allocated runs below the initialized size (sparse runs and bytes past the
    /// initialized size are zeros by definition). The work is bounded by the clusters the runs
    /// name, each read through the volume (a run past the volume is an error, not a long scan).
    fn stream_zero_from(&self, s: &crate::volume::Stream, from: u64) -> Result<bool, NtfsError> {
        const CHUNK: u64 = 64 * 1024;
        let cs = self.cluster_size();
        let limit = s.data_size.min(s.initialized_size);
        for run in &s.runs {
            if run.lcn.is_none() {
                continue;
            }
            let mut at = run.vcn.saturating_mul(cs).max(from);
            let end = run
                .vcn
                .saturating_add(run.length)
                .saturating_mul(cs)
                .min(limit);
            while at < end {
                let n = (end - at).min(CHUNK);
                if self.read_stream(s, at, n as usize)?.iter().any(|b| *b != 0) {
                    return Ok(false);
                }
                at += n;
            }
        }
        Ok(true)
    }

    /// The same facts with times and data through the `ntfs` crate, cross-checked against our reader's data size.
    pub fn file_details_crate(
        &self,
        entry: &crate::index::DirEntry,
    ) -> Result<FileDetails, NtfsError> {
        let rec = self.read_live(entry.file_ref)?;
        let dos_name = self.dos_name(&rec)?;
        let mut fs = Cursor::new(self.reader());
        let ntfs = self.semantic_reader()?;
        self.check_for_crate(entry.file_ref.record)?;
        let file = ntfs.file(&mut fs, entry.file_ref.record)?;
        let si = file.info()?;
        let (size, header, all_zero) = match file.data(&mut fs, "") {
            None => (0, Vec::new(), true),
            Some(item) => {
                let item = item?;
                let attr = item.to_attribute()?;
                let value = attr.value(&mut fs)?;
                let size = value.len();
                // The two readers check each other: a damaged record the crate reads with another
                // size than ours is refused, not scanned (a misread size can be 2^59 bytes).
                let own_value = self.value(&rec, AttributeType::Data, "")?;
                let own = match &own_value {
                    Some(crate::volume::AttrValue::Resident(b)) => b.len() as u64,
                    Some(crate::volume::AttrValue::NonResident(s)) => s.data_size,
                    None => 0,
                };
                if own != size {
                    return Err(NtfsError::damaged_at(Structure::FileData, Location::MftRecord { record: rec.number }, format!(
                        "MFT record {}: the ntfs reader says the file holds {size} bytes, kaifuku's own reader {own}",
                        rec.number
                    )));
                }
                let mut reader = value.attach(&mut fs);
                let mut header = Vec::new();
                let mut all_zero = true;
                let mut buf = vec![0u8; 64 * 1024];
                let mut left = size;
                while left > 0 {
                    let n = (buf.len() as u64).min(left) as usize;
                    reader
                        .read_exact(&mut buf[..n])
                        .map_err(NtfsError::io("reading file data"))?;
                    if header.len() < 8 {
                        let take = (8 - header.len()).min(n);
                        header.extend_from_slice(&buf[..take]);
                    }
                    all_zero &= buf[..n].iter().all(|b| *b == 0);
                    left -= n as u64;
                    // The header came with the first chunk; a non-zero byte settles the rest.
                    if !all_zero {
                        break;
                    }
                    // Past the first chunk of a non-resident file only its allocated, initialized
                    // clusters can hold a non-zero byte: scan those with our own reader instead
                    // of every byte of the size, which a sparse or uninitialized file (or a
                    // damaged one) can make as large as 2^63 while the volume holds a few MiB.
                    if let Some(crate::volume::AttrValue::NonResident(s)) = &own_value {
                        if left > 0 {
                            all_zero = self.stream_zero_from(s, size - left)?;
                        }
                        break;
                    }
                }
                (size, header, all_zero)
            }
        };
        let t = |x: ntfs::NtfsTime| x.nt_timestamp();
        Ok(FileDetails {
            name: entry.name(),
            dos_name,
            mft_record: entry.file_ref.record,
            sequence: rec.sequence(),
            size,
            created: format_utc(t(si.creation_time())),
            modified: format_utc(t(si.modification_time())),
            mft_changed: format_utc(t(si.mft_record_modification_time())),
            accessed: format_utc(t(si.access_time())),
            created_ticks: t(si.creation_time()),
            modified_ticks: t(si.modification_time()),
            header_hex: header.iter().map(|b| format!("{b:02x}")).collect(),
            all_zero,
            link_count: rec.link_count(),
        })
    }

    /// The DOS 8.3 name of a file, when it has a separate one (namespace 2).
    pub fn dos_name(&self, rec: &crate::record::FileRecord) -> Result<Option<String>, NtfsError> {
        for r in self.records_of(rec)? {
            for a in r.attributes()? {
                if a.is(AttributeType::FileName) && !a.non_resident {
                    let k = crate::index::FileNameKey::parse(a.resident_value()?)?;
                    if k.namespace == Namespace::Dos {
                        return Ok(Some(k.name_string()));
                    }
                }
            }
        }
        Ok(None)
    }
}
