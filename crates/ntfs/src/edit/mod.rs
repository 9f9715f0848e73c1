//! The edit layer: deleting a file the way NTFS itself does, as writes into an overlay.
//!
//! Every write goes through [`kaifuku_io::WriteAt`] on the volume's reader, which in kaifuku is
//! always an overlay (the image itself is never written here), and is logged with the structure it
//! changes. Reads after a write see it, so each step re-reads what earlier steps changed.
//!
//! What NTFS changes when it deletes a file, in the order it changes it (so that a volume cut off
//! between two steps has at worst a leak, never a name pointing at a freed record):
//!
//! 1. The name leaves its directory's `$I30` index, with its Win32/DOS twin (`btree` removes
//!    entries from leaves and internal nodes, frees emptied blocks in the index `$BITMAP`, and
//!    refuses a change that would need a block split or merge).
//! 2. A file that keeps other names (hard links) only loses the removed `$FILE_NAME` attributes
//!    and that many links; nothing else changes.
//! 3. Otherwise its keys leave `$Extend\$ObjId:$O` and `$Extend\$Reparse:$R`;
//! 4. its record is marked not in use and its sequence number incremented (fixups re-applied with
//!    a new update sequence number; `$MFTMirr` keeps the same bytes for the records it mirrors);
//! 5. its bit in `$MFT:$BITMAP` is cleared;
//! 6. its clusters are marked free in `$Bitmap`.
//!
//! Records 0–23 and everything under `$Extend` are NTFS's own and are never deleted; a file whose
//! attributes span several records (`$ATTRIBUTE_LIST`) is refused.

mod btree;
mod changed;
mod record_ops;

pub use changed::{
    AppliedRecord, BitmapOwner, ChangedStructure, IndexOwner, RecordPart, ReplayedPage, RestartCopy,
};

use crate::check::SideIndex;
use crate::index::{Directory, FileNameKey};
use crate::layout::{object_id_data, volume_information, Namespace};
use crate::ownership::StreamRef;
use crate::record::{FileRecord, FileRef};
use crate::runlist::map_range;
use crate::volume::{AttrValue, Volume, RECORD_BITMAP, RECORD_LOGFILE, RECORD_MFT, RECORD_VOLUME};
use crate::{AttributeType, Location, NtfsError, Refusal, Structure, Unsupported};
use kaifuku_io::{ReadAt, WriteAt};
use serde::Serialize;
use std::collections::BTreeMap;

pub use record_ops::{remove_attribute, resize_resident};

/// Record number of `$MFTMirr`.
const RECORD_MFTMIRR: u64 = 1;
/// Record number of `$Extend`.
const RECORD_EXTEND: u64 = 11;
/// Records below this are NTFS metafiles or reserved for them.
const FIRST_USER_RECORD: u64 = 24;

/// One logged write: volume byte range and the structure it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// Volume byte offset of the first byte written.
    pub offset: u64,
    /// Bytes written.
    pub len: u64,
    /// The structure written ("MFT record 64", "$Bitmap bytes 0x10..0x11").
    pub label: ChangedStructure,
    /// The attribute stream that holds these bytes (`$MFT`'s `$DATA` for file records, the
    /// directory's `$INDEX_ALLOCATION` for its index blocks, `$Bitmap`'s `$DATA` for its bits,
    /// ...): the plan proves that nothing else maps the clusters written.
    pub owner: StreamRef,
    /// Set when the range was filled with this byte (not written byte by byte).
    pub fill: Option<u8>,
}

/// What deleting one name did.
#[derive(Debug, Clone, Serialize)]
pub struct DeleteOutcome {
    /// The deleted file's base record.
    pub record: u64,
    /// Names whose index entries were removed (Win32/POSIX and DOS).
    pub removed_names: Vec<String>,
    /// The record was freed (false when the file keeps names in other directories).
    pub record_freed: bool,
    /// Clusters marked free in `$Bitmap`.
    pub clusters_freed: u64,
    /// The cluster runs `(lcn, count)` marked free in `$Bitmap`.
    pub freed_runs: Vec<(u64, u64)>,
    /// The directory the names were removed from.
    pub directory_record: u64,
    /// Link count left on the record when only some names were removed.
    pub remaining_links: Option<u16>,
    /// Side indexes that lost a key (`$Extend\$ObjId:$O`, `$Extend\$Reparse:$R`: the labels of
    /// [`SideIndex`]).
    pub side_indexes: Vec<String>,
}

/// Deletes files from a volume by writing through its reader (an overlay in kaifuku), logging every write with the structure it changes.
pub struct Editor<'v, R> {
    vol: &'v Volume<R>,
    changes: Vec<Change>,
}

impl<'v, R: ReadAt + WriteAt> Editor<'v, R> {
    /// An editor with an empty change log over `vol`.
    pub fn new(vol: &'v Volume<R>) -> Self {
        Editor {
            vol,
            changes: Vec::new(),
        }
    }

    /// The volume being edited; reads through it see the writes so far.
    pub fn volume(&self) -> &'v Volume<R> {
        self.vol
    }

    /// Every write so far, in order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// The change log, for the plan that turns it into patches.
    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }

    fn write(
        &mut self,
        offset: u64,
        bytes: &[u8],
        owner: &StreamRef,
        label: ChangedStructure,
    ) -> Result<(), NtfsError> {
        self.vol
            .reader()
            .write_at(offset, bytes)
            .map_err(NtfsError::io("writing to the overlay"))?;
        self.changes.push(Change {
            offset,
            len: bytes.len() as u64,
            label,
            owner: owner.clone(),
            fill: None,
        });
        Ok(())
    }

    pub(crate) fn write_pieces(
        &mut self,
        pieces: &[(u64, u64)],
        bytes: &[u8],
        owner: &StreamRef,
        label: &ChangedStructure,
    ) -> Result<(), NtfsError> {
        let mut at = 0usize;
        for (off, len) in pieces {
            self.write(*off, &bytes[at..at + *len as usize], owner, label.clone())?;
            at += *len as usize;
        }
        Ok(())
    }

    /// Writes a modified (fixed-up) record back with a new update sequence number; a record that
    /// `$MFTMirr` mirrors is written there too, with the same bytes.
    pub fn write_record(&mut self, rec: &FileRecord) -> Result<(), NtfsError> {
        self.write_record_as(rec, None)
    }

    /// Like [`Editor::write_record`], naming what inside the record changed (e.g. the
    /// `$INDEX_ROOT` of a directory) in the change log.
    pub fn write_record_as(
        &mut self,
        rec: &FileRecord,
        inside: Option<RecordPart>,
    ) -> Result<(), NtfsError> {
        let label = ChangedStructure::MftRecord {
            record: rec.number,
            part: inside,
        };
        let pieces = self.vol.record_location(rec.number)?;
        self.write_record_at(rec, &pieces, label)
    }

    /// Writes a record at `pieces` (its place in `$MFT`, which may lie past the data size the
    /// volume was opened with, when a journal replay grows `$MFT`), and its `$MFTMirr` copy.
    pub(crate) fn write_record_at(
        &mut self,
        rec: &FileRecord,
        pieces: &[(u64, u64)],
        label: ChangedStructure,
    ) -> Result<(), NtfsError> {
        let mut bytes = rec.bytes.clone();
        crate::fixup::apply_write(&mut bytes, &format!("MFT record {}", rec.number))?;
        self.write_pieces(
            pieces,
            &bytes,
            &StreamRef::new(RECORD_MFT, AttributeType::Data, ""),
            &label,
        )?;
        let mirror = self.vol.read_record(RECORD_MFTMIRR)?;
        if let Some(AttrValue::NonResident(s)) = self.vol.value(&mirror, AttributeType::Data, "")? {
            let rs = self.vol.boot().file_record_size as u64;
            if rec.number < s.data_size / rs {
                let pieces: Vec<(u64, u64)> =
                    map_range(&s.runs, self.vol.cluster_size(), rec.number * rs, rs)?
                        .into_iter()
                        .map(|(o, n)| {
                            o.map(|o| (o, n)).ok_or_else(|| {
                                NtfsError::damaged(Structure::MftMirr, "$MFTMirr is sparse")
                            })
                        })
                        .collect::<Result<_, _>>()?;
                self.write_pieces(
                    &pieces,
                    &bytes,
                    &StreamRef::new(RECORD_MFTMIRR, AttributeType::Data, ""),
                    &ChangedStructure::MftMirrCopy { record: rec.number },
                )?;
            }
        }
        Ok(())
    }

    /// Clears (`set == false`) or sets bits of a bitmap stream: `$MFT:$BITMAP`, `$Bitmap` or a
    /// non-resident index `$BITMAP`. Bits are grouped into byte runs so each changed byte range is
    /// written once.
    fn change_bits(
        &mut self,
        rec: &FileRecord,
        kind: AttributeType,
        name: &str,
        bits: &[(u64, u64)],
        set: bool,
        bitmap: BitmapName,
    ) -> Result<(), NtfsError> {
        let BitmapName { owner, structure } = bitmap;
        let label = owner.to_string();
        let mut masks: BTreeMap<u64, u8> = BTreeMap::new();
        for &(first, count) in bits {
            for b in first..first + count {
                *masks.entry(b / 8).or_insert(0) |= 1 << (b % 8);
            }
        }
        if masks.is_empty() {
            return Ok(());
        }
        match self.vol.value(rec, kind, name)? {
            Some(AttrValue::NonResident(s)) => {
                // Group consecutive bytes.
                let mut groups: Vec<(u64, Vec<u8>)> = Vec::new();
                for (&byte, &mask) in &masks {
                    match groups.last_mut() {
                        Some((start, m)) if *start + m.len() as u64 == byte => m.push(mask),
                        _ => groups.push((byte, vec![mask])),
                    }
                }
                for (start, group_masks) in groups {
                    let mut cur = self.vol.read_stream(&s, start, group_masks.len())?;
                    for (b, m) in cur.iter_mut().zip(&group_masks) {
                        if set {
                            *b |= m;
                        } else {
                            *b &= !m;
                        }
                    }
                    let pieces: Vec<(u64, u64)> =
                        map_range(&s.runs, self.vol.cluster_size(), start, cur.len() as u64)?
                            .into_iter()
                            .map(|(o, n)| {
                                o.map(|o| (o, n)).ok_or_else(|| {
                                    NtfsError::damaged(structure, format!("{label} is sparse"))
                                })
                            })
                            .collect::<Result<_, _>>()?;
                    let end = start + cur.len() as u64;
                    self.write_pieces(
                        &pieces,
                        &cur,
                        &StreamRef::new(rec.number, kind, name),
                        &ChangedStructure::BitmapBytes {
                            bitmap: owner.clone(),
                            start,
                            end,
                        },
                    )?;
                }
                Ok(())
            }
            Some(AttrValue::Resident(_)) => {
                let mut holder = self.record_holding(rec, kind, name)?;
                let attr = holder
                    .find(kind, name)?
                    .ok_or_else(|| NtfsError::damaged(structure, format!("{label} vanished")))?;
                let at = attr.resident_value_offset()?;
                let len = attr.resident_value()?.len() as u64;
                for (&byte, &mask) in &masks {
                    if byte >= len {
                        return Err(NtfsError::damaged(
                            structure,
                            format!("{label}: bit {} is beyond the bitmap", byte * 8),
                        ));
                    }
                    let b = &mut holder.bytes[at + byte as usize];
                    if set {
                        *b |= mask;
                    } else {
                        *b &= !mask;
                    }
                }
                self.write_record_as(&holder, Some(RecordPart::Bitmap { bitmap: owner }))
            }
            None => Err(NtfsError::damaged(
                structure,
                format!("{label} does not exist"),
            )),
        }
    }

    /// The record (base or extension) that holds attribute (`type_code`, `name`) of `base`.
    pub(crate) fn record_holding(
        &self,
        base: &FileRecord,
        kind: AttributeType,
        name: &str,
    ) -> Result<FileRecord, NtfsError> {
        for r in self.vol.records_of(base)? {
            if r.find(kind, name)?.is_some() {
                return Ok(r);
            }
        }
        Err(NtfsError::damaged_at(
            Structure::Attribute,
            Location::MftRecord {
                record: base.number,
            },
            format!(
                "record {} has no attribute {:#x} {name}",
                base.number,
                kind.code()
            ),
        ))
    }

    /// Marks MFT records free in `$MFT:$BITMAP`.
    fn clear_mft_bits(&mut self, records: &[u64]) -> Result<(), NtfsError> {
        let mft = self.vol.read_record(RECORD_MFT)?;
        let bits: Vec<(u64, u64)> = records.iter().map(|r| (*r, 1)).collect();
        self.change_bits(
            &mft,
            AttributeType::Bitmap,
            "",
            &bits,
            false,
            BitmapName {
                owner: BitmapOwner::MftBitmap,
                structure: Structure::MftBitmap,
            },
        )
    }

    /// Marks clusters free in `$Bitmap`.
    fn clear_clusters(&mut self, runs: &[(u64, u64)]) -> Result<(), NtfsError> {
        let bitmap = self.vol.read_record(RECORD_BITMAP)?;
        self.change_bits(
            &bitmap,
            AttributeType::Data,
            "",
            runs,
            false,
            BitmapName {
                owner: BitmapOwner::ClusterBitmap,
                structure: Structure::Bitmap,
            },
        )
    }

    /// Deletes the name `name` (exact, as listed) from directory `dir_record`: every name the file
    /// has in this directory goes (Win32/POSIX and DOS); when the file has no other names, the
    /// record, its `$MFT:$BITMAP` bit, its clusters and its `$ObjId`/`$Reparse` keys are freed too.
    /// `dir_label` names the directory in the change log (its path, for people).
    pub fn delete(
        &mut self,
        dir_record: u64,
        dir_label: &str,
        name: &[u16],
    ) -> Result<DeleteOutcome, NtfsError> {
        let vol = self.vol;
        let dir = vol.read_record(dir_record)?;
        if !dir.in_use() || !dir.is_directory() {
            return Err(NtfsError::damaged_at(
                Structure::Directory,
                Location::MftRecord { record: dir_record },
                format!("record {dir_record} is not a live directory"),
            ));
        }
        let index = vol.directory(&dir)?;
        let entry = index
            .lookup(vol, name)?
            .filter(|e| e.key.name == name)
            .ok_or_else(|| {
                NtfsError::damaged_at(
                    Structure::Directory,
                    Location::MftRecord { record: dir_record },
                    format!(
                        "{} is not in directory record {dir_record}",
                        crate::bytes::utf16_name(name)
                    ),
                )
            })?;
        let file = vol.read_live(entry.file_ref)?;
        let what = format!("{} (MFT record {})", entry.name(), file.number);
        if file.is_directory() {
            return Err(NtfsError::Unsupported(Unsupported::TargetIsDirectory {
                name: entry.name(),
                record: file.number,
            }));
        }
        // NTFS's own files: records 0–23 (the metafiles and the reserved records) and everything
        // under $Extend ($ObjId, $Quota, $Reparse, $UsnJrnl, ...). Freeing one would destroy the
        // volume, and the per-file checks would not notice.
        if file.number < FIRST_USER_RECORD || self.under_extend(dir_record)? {
            return Err(NtfsError::Refused(Refusal::SystemFile {
                name: entry.name(),
                record: file.number,
            }));
        }
        if file.base_ref().record != 0 {
            return Err(NtfsError::damaged_at(
                Structure::IndexEntry,
                Location::MftRecord {
                    record: file.number,
                },
                format!("{what}: the index names an extension record"),
            ));
        }
        // The record must be sound before it is edited: its runs inside the volume and
        // consistent with its sizes, its header and attributes well formed. A damaged record would
        // otherwise steer the delete (a run of 2^40 clusters, a wrong size) into other data.
        let health = crate::check::check_records(vol, &[file.number])?;
        if !health.is_clean() {
            return Err(NtfsError::damaged_at(
                Structure::FileRecord,
                Location::MftRecord {
                    record: file.number,
                },
                format!(
                    "{what} is damaged ({}); run chkdsk on the volume before deleting it",
                    health.first_problems(3)
                ),
            ));
        }
        if file.find(AttributeType::AttributeList, "")?.is_some() {
            return Err(NtfsError::Unsupported(Unsupported::AttributeListOnTarget {
                name: entry.name(),
                record: file.number,
            }));
        }
        // The name asked for goes, with its Win32/DOS partner in the same directory; any other
        // name (a hard link, here or in another directory) keeps the file alive.
        let mut names: Vec<(FileNameKey, Vec<u8>)> = Vec::new();
        for a in file.attributes()? {
            if a.type_code == AttributeType::FileName.code() {
                let v = a.resident_value()?;
                names.push((FileNameKey::parse(v)?, v.to_vec()));
            }
        }
        let target = names
            .iter()
            .position(|(k, _)| k.parent.record == dir_record && k.name == name)
            .ok_or_else(|| {
                NtfsError::damaged_at(
                    Structure::FileName,
                    Location::MftRecord {
                        record: file.number,
                    },
                    format!("{what}: no $FILE_NAME in the record matches the directory entry"),
                )
            })?;
        let partner_ns = match names[target].0.namespace {
            Namespace::Win32 => Some(Namespace::Dos),
            Namespace::Dos => Some(Namespace::Win32),
            _ => None,
        };
        let partner = partner_ns.and_then(|ns| {
            names
                .iter()
                .position(|(k, _)| k.parent.record == dir_record && k.namespace == ns)
        });
        // A DOS name pairs with one long name, but the pairing is not recorded: with two long
        // names in this directory we could remove the other name's short twin. Refuse.
        let long_here = names
            .iter()
            .filter(|(k, _)| k.parent.record == dir_record && k.namespace != Namespace::Dos)
            .count();
        if partner.is_some() && long_here > 1 {
            return Err(NtfsError::Refused(Refusal::AmbiguousDosName {
                name: entry.name(),
                record: file.number,
            }));
        }
        let mut here: Vec<(FileNameKey, Vec<u8>)> = Vec::new();
        let mut others = 0usize;
        for (i, n) in names.into_iter().enumerate() {
            if i == target || Some(i) == partner {
                here.push(n);
            } else {
                others += 1;
            }
        }
        // DOS names first, as NTFS does: the long name stays findable until the last step.
        here.sort_by_key(|(k, _)| if k.namespace == Namespace::Dos { 0 } else { 1 });
        let mut outcome = DeleteOutcome {
            record: file.number,
            removed_names: Vec::new(),
            record_freed: false,
            clusters_freed: 0,
            freed_runs: Vec::new(),
            directory_record: dir_record,
            remaining_links: None,
            side_indexes: Vec::new(),
        };
        for (k, key_bytes) in &here {
            let owner = IndexOwner::Directory {
                path: dir_label.to_string(),
                record: dir_record,
            };
            btree::remove_key(
                self,
                dir_record,
                "$I30",
                key_bytes,
                Some(file.number),
                &owner,
            )?;
            outcome.removed_names.push(k.name_string());
        }
        let file = vol.read_record(file.number)?;
        if others > 0 {
            // Hard links: only the removed names leave the record; the record and data stay.
            let mut rec = file.clone();
            let mut offsets = Vec::new();
            for a in rec.attributes()? {
                if a.type_code != AttributeType::FileName.code() {
                    continue;
                }
                let k = FileNameKey::parse(a.resident_value()?)?;
                if here.iter().any(|(h, _)| {
                    h.parent == k.parent && h.namespace == k.namespace && h.name == k.name
                }) {
                    offsets.push(a.offset);
                }
            }
            for off in offsets.iter().rev() {
                remove_attribute(&mut rec.bytes, *off)?;
            }
            let links = rec.link_count().saturating_sub(here.len() as u16);
            rec.set_link_count(links);
            self.write_record(&rec)?;
            outcome.remaining_links = Some(links);
            return Ok(outcome);
        }
        // The file is gone: side-index keys, then the record, its bitmap bit and its clusters.
        if let Some(oid) = file.find(AttributeType::ObjectId, "")? {
            let v = oid.resident_value()?;
            let key = crate::bytes::slice(v, 0, object_id_data::ID_LENGTH)?.to_vec();
            let side = SideIndex::ObjectIds;
            let objid = self.extend_file(side.file())?;
            btree::remove_key(
                self,
                objid,
                side.index(),
                &key,
                Some(file.number),
                &IndexOwner::ObjectIds,
            )?;
            outcome.side_indexes.push(side.label());
        }
        if let Some(rp) = file.find(AttributeType::ReparsePoint, "")? {
            let tag = match vol.value(&file, AttributeType::ReparsePoint, "")? {
                Some(v) => vol.read_value(&v, 0, 4)?,
                None => unreachable!("found above"),
            };
            let _ = rp;
            let mut key = tag;
            let fref = FileRef {
                record: file.number,
                sequence: file.sequence(),
            };
            key.extend_from_slice(&fref.to_u64().to_le_bytes());
            let side = SideIndex::ReparsePoints;
            let reparse = self.extend_file(side.file())?;
            btree::remove_key(
                self,
                reparse,
                side.index(),
                &key,
                None,
                &IndexOwner::ReparsePoints,
            )?;
            outcome.side_indexes.push(side.label());
        }
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for a in file.attributes()? {
            if a.non_resident {
                for r in a.runs()? {
                    if let Some(lcn) = r.lcn {
                        runs.push((lcn, r.length));
                    }
                }
            }
        }
        let mut rec = file.clone();
        rec.mark_not_in_use();
        rec.set_sequence(crate::record::sequence_after_free(rec.sequence()));
        self.write_record(&rec)?;
        self.clear_mft_bits(&[file.number])?;
        self.clear_clusters(&runs)?;
        outcome.record_freed = true;
        outcome.clusters_freed = runs.iter().map(|r| r.1).sum();
        outcome.freed_runs = runs;
        Ok(outcome)
    }

    /// Whether directory `dir` is `$Extend` or lies below it (following `$FILE_NAME` parents).
    fn under_extend(&self, mut dir: u64) -> Result<bool, NtfsError> {
        for _ in 0..64 {
            if dir == RECORD_EXTEND {
                return Ok(true);
            }
            if dir == crate::volume::RECORD_ROOT {
                return Ok(false);
            }
            let rec = self.vol.read_record(dir)?;
            let parent = rec
                .attributes()?
                .iter()
                .find(|a| a.type_code == AttributeType::FileName.code() && !a.non_resident)
                .map(|a| a.resident_value().and_then(FileNameKey::parse))
                .transpose()?
                .map(|k| k.parent.record);
            match parent {
                Some(p) if p != dir => dir = p,
                _ => return Ok(false),
            }
        }
        Err(NtfsError::damaged_at(
            Structure::Directory,
            Location::MftRecord { record: dir },
            format!("directory {dir}: parent chain deeper than 64 levels"),
        ))
    }

    /// Record number of a file in `$Extend` (`$ObjId`, `$Reparse`, ...).
    fn extend_file(&self, name: &str) -> Result<u64, NtfsError> {
        match self.vol.lookup_path(&format!("\\$Extend\\{name}"))? {
            Some((e, _)) => Ok(e.file_ref.record),
            None => Err(NtfsError::damaged(
                Structure::Extend,
                format!("\\$Extend\\{name} does not exist but a file refers to it"),
            )),
        }
    }

    /// Discards the journal as `ntfsfix` does — every byte of `$LogFile` becomes 0xFF — and sets the
    /// volume dirty flag (record 3 and its mirror) so Windows runs chkdsk at the next boot.
    pub fn discard_journal(&mut self) -> Result<(), NtfsError> {
        let log = self.vol.read_record(RECORD_LOGFILE)?;
        let Some(AttrValue::NonResident(s)) = self.vol.value(&log, AttributeType::Data, "")? else {
            return Err(NtfsError::damaged(
                Structure::LogFile,
                "$LogFile has no non-resident data",
            ));
        };
        let cs = self.vol.cluster_size();
        for r in &s.runs {
            let Some(lcn) = r.lcn else { continue };
            let (offset, len) = (lcn * cs, r.length * cs);
            self.vol
                .reader()
                .fill_at(offset, len, 0xFF)
                .map_err(NtfsError::io("writing to the overlay"))?;
            self.changes.push(Change {
                offset,
                len,
                label: ChangedStructure::JournalReset,
                owner: StreamRef::new(RECORD_LOGFILE, AttributeType::Data, ""),
                fill: Some(0xFF),
            });
        }
        self.set_dirty()
    }

    /// Sets the volume dirty flag in `$Volume`'s `$VOLUME_INFORMATION`.
    pub fn set_dirty(&mut self) -> Result<(), NtfsError> {
        let mut rec = self.vol.read_record(RECORD_VOLUME)?;
        let attr = rec
            .find(AttributeType::VolumeInformation, "")?
            .ok_or_else(|| {
                NtfsError::damaged(
                    Structure::VolumeInformation,
                    "$Volume has no $VOLUME_INFORMATION",
                )
            })?;
        let at = attr.resident_value_offset()? + volume_information::FLAGS;
        let flags = crate::bytes::u16_at(&rec.bytes, at)? | volume_information::FLAG_DIRTY;
        crate::bytes::put_u16(&mut rec.bytes, at, flags);
        self.write_record(&rec)
    }
}

/// Index `name` of record `record`, opened afresh so that it reflects the writes so far.
fn open_index<R: ReadAt>(vol: &Volume<R>, record: u64, name: &str) -> Result<Directory, NtfsError> {
    let rec = vol.read_record(record)?;
    Directory::open_index(vol, &rec, name)
}

/// A bitmap an edit changes: its name in the change log, and the structure errors name.
pub(crate) struct BitmapName {
    owner: BitmapOwner,
    structure: Structure,
}
