//! Proof of ownership before a fix: every cluster the fix frees belongs to the deleted file alone,
//! and every byte it writes lies in clusters that belong to the structure it names.
//!
//! NTFS keeps no reverse map from clusters to files, and a damaged volume can have a file whose
//! runs point into `$MFT`, the boot sector or another file's data (cross-linked clusters). Freeing
//! such a run would mark live metadata free in `$Bitmap`; nothing else the fix checks would notice,
//! and neither would ntfs-3g or chkdsk's quick checks until the space is reused. So before a plan
//! is accepted, [`prove_ownership`] scans every in-use record of `$MFT` (large sequential reads,
//! skipping stretches `$MFT:$BITMAP` marks free) and refuses the plan when any other record claims
//! a cluster the plan frees or writes.

use crate::layout::file_record;
use crate::record::FileRecord;
use crate::volume::{AttrValue, Volume, RECORD_MFT};
use crate::{AttributeType, Location, NtfsError, Structure};
use kaifuku_io::ReadAt;
use serde::Serialize;

/// Record number of `$Boot`, which owns the boot area (clusters from 0).
pub const RECORD_BOOT: u64 = 7;
/// Bytes at the start of a volume that belong to the boot area (`$Boot` is 8 KiB on every NTFS
/// volume that Windows or mkntfs makes; the boot sector itself is the first sector).
const BOOT_AREA: u64 = 8192;
/// Bytes of `$MFT` read per call of the scan: large enough that a 1 GiB `$MFT` is a few hundred
/// reads, small enough to stay within the worker's memory budget.
const SCAN_CHUNK: u64 = 4 << 20;

/// An attribute stream of a file: the base record and the attribute's type and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamRef {
    /// The base record the stream belongs to.
    pub record: u64,
    /// The attribute type code (serialised as the number).
    pub type_code: u32,
    /// The attribute name (empty for the unnamed stream).
    pub name: String,
}

impl StreamRef {
    /// The stream of attribute (`kind`, `name`) of base record `record`.
    pub fn new(record: u64, kind: AttributeType, name: &str) -> StreamRef {
        StreamRef {
            record,
            type_code: kind.code(),
            name: name.to_string(),
        }
    }

    fn is(&self, base: u64, a: &crate::record::Attribute<'_>) -> bool {
        self.record == base
            && self.type_code == a.type_code
            && a.name.iter().copied().eq(self.name.encode_utf16())
    }
}

/// What a claimed cluster range is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimKind {
    /// The plan marks these clusters free: they must belong to this (base) record, whichever of
    /// its attributes maps them, and to nobody else.
    Free {
        /// The deleted file's base record.
        record: u64,
    },
    /// The plan writes into these clusters (`label` names the structure): they must belong to
    /// this stream and to nothing else — not even another attribute of the same file, so that a
    /// `$MFT:$BITMAP` whose runs point into `$MFT`'s data is caught.
    Write {
        /// The stream whose clusters hold the bytes written.
        stream: StreamRef,
        /// The structure written, for messages.
        label: crate::edit::ChangedStructure,
    },
}

/// A range of clusters the plan frees or writes.
#[derive(Debug, Clone)]
pub struct Claim {
    /// First cluster of the range.
    pub lcn: u64,
    /// Clusters in the range.
    pub count: u64,
    /// Whether the plan frees or writes them, and for whom.
    pub kind: ClaimKind,
}

impl Claim {
    fn describe(&self) -> String {
        let what = match &self.kind {
            ClaimKind::Free { record } => format!("to be freed as part of MFT record {record}"),
            ClaimKind::Write { label, .. } => format!("to be written as {label}"),
        };
        format!("{} {what}", clusters(self.lcn, self.count))
    }

    fn is_free(&self) -> bool {
        matches!(self.kind, ClaimKind::Free { .. })
    }

    /// The boot area may only be written as `$Boot`'s own data (kaifuku never does).
    fn may_touch_boot_area(&self) -> bool {
        matches!(&self.kind, ClaimKind::Write { stream, .. } if stream.record == RECORD_BOOT)
    }

    /// Whether attribute `a` of record `n` (whose base record is `base`) may map these clusters.
    fn allows(&self, base: u64, a: &crate::record::Attribute<'_>) -> bool {
        match &self.kind {
            ClaimKind::Free { record } => *record == base,
            ClaimKind::Write { stream, .. } => stream.is(base, a),
        }
    }
}

/// What the ownership scan read, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OwnershipScan {
    /// MFT records examined (in use, or of unknown state).
    pub records_scanned: u64,
    /// Bytes of `$MFT` read by the scan.
    pub bytes_read: u64,
    /// Cluster ranges proven to belong to their owner alone.
    pub claims_proven: u64,
}

/// Proves that every claim's clusters lie inside the volume, outside the boot area (unless the
/// claim is `$Boot`'s), that freed clusters are allocated in `$Bitmap`, and that no in-use record
/// other than the claim's owner maps any of them. `Err(NtfsError::Corrupt)` names the first
/// conflicts found (which clusters, which other record) — the plan must then be refused.
///
/// The same pass over `$MFT` finds what else a plan must know before it is accepted, so that
/// `$MFT` is read once: in-use records of each of `listings`' directories that its index does not
/// list (conflicts too), and, for the directories `free_records_in_use_under` names, the records
/// [`FreeRecordInUse`] describes (for a plan that discards the journal; this reads the
/// stretches `$MFT:$BITMAP` marks free as well).
pub fn prove_ownership<R: ReadAt>(
    vol: &Volume<R>,
    claims: &[Claim],
    listings: &[DirectoryListing],
    free_records_in_use_under: &[u64],
) -> Result<OwnershipProof, NtfsError> {
    let total = vol.boot().total_clusters();
    let cs = vol.cluster_size();
    let boot_clusters = BOOT_AREA.div_ceil(cs);
    let mut conflicts: Vec<String> = Vec::new();
    for c in claims {
        if c.count == 0 {
            continue;
        }
        if c.lcn.checked_add(c.count).is_none_or(|end| end > total) {
            conflicts.push(format!(
                "{} lie beyond the volume's {total} clusters",
                c.describe()
            ));
        } else if !c.may_touch_boot_area() && c.lcn < boot_clusters {
            conflicts.push(format!(
                "{} lie in the boot area (clusters 0-{}), which belongs to $Boot",
                c.describe(),
                boot_clusters - 1
            ));
        }
    }
    // A run freed twice (two runs of one file, or two deleted files) is cross-linked too.
    let mut frees: Vec<&Claim> = claims
        .iter()
        .filter(|c| c.is_free() && c.count > 0)
        .collect();
    frees.sort_by_key(|c| c.lcn);
    for w in frees.windows(2) {
        if w[0].lcn + w[0].count > w[1].lcn {
            conflicts.push(format!("{} overlap {}", w[0].describe(), w[1].describe()));
        }
    }
    if !conflicts.is_empty() {
        return Err(refusal(conflicts));
    }
    // Freed clusters must be allocated now: freeing a free cluster means the runs are not what
    // the bitmap knows, and the bitmap is what the next allocation trusts.
    let free_runs: Vec<(u64, u64)> = frees.iter().map(|c| (c.lcn, c.count)).collect();
    let bits = crate::check::check_cluster_bits(vol, &free_runs, crate::check::ClusterState::Used)?;
    if !bits.is_clean() {
        return Err(refusal(
            bits.problems
                .iter()
                .map(|p| format!("{} (of the file to delete)", p.message))
                .collect(),
        ));
    }
    let mut scan = OwnershipScan {
        claims_proven: claims.iter().filter(|c| c.count > 0).count() as u64,
        ..OwnershipScan::default()
    };
    let mut sorted: Vec<&Claim> = claims.iter().filter(|c| c.count > 0).collect();
    sorted.sort_by_key(|c| c.lcn);
    let mut free_records_in_use = Vec::new();
    let also = AlsoFind {
        unlisted_in: listings,
        free_records_in_use: (!free_records_in_use_under.is_empty())
            .then_some((free_records_in_use_under, &mut free_records_in_use)),
    };
    scan_records(vol, &sorted, also, &mut scan, &mut conflicts)?;
    if !conflicts.is_empty() {
        return Err(refusal(conflicts));
    }
    Ok(OwnershipProof {
        scan,
        free_records_in_use,
    })
}

/// What [`prove_ownership`] proved and found.
#[derive(Debug, Clone, Default)]
pub struct OwnershipProof {
    /// What the scan read.
    pub scan: OwnershipScan,
    /// The records [`FreeRecordInUse`] describes, in the directory asked about (empty when none
    /// was asked about).
    pub free_records_in_use: Vec<FreeRecordInUse>,
}

/// What the `$MFT` pass looks for beside the claims' owners.
struct AlsoFind<'a> {
    /// Directories whose in-use records their index must list.
    unlisted_in: &'a [DirectoryListing],
    /// Directories, and where to put the base records that are in use by their header, free
    /// in `$MFT:$BITMAP` and name one of those directories as their parent.
    free_records_in_use: Option<(&'a [u64], &'a mut Vec<FreeRecordInUse>)>,
}

/// A directory and the records its index lists, to find in-use records that name it as their
/// parent but are missing from its index (a damaged index hides them from every lookup).
#[derive(Debug, Clone)]
pub struct DirectoryListing {
    /// The directory's record.
    pub record: u64,
    /// The directory's path, for messages.
    pub path: String,
    /// The records the directory's index lists.
    pub indexed: std::collections::BTreeSet<u64>,
}

impl DirectoryListing {
    /// The listing of a live directory, read from its index.
    pub fn read<R: ReadAt>(vol: &Volume<R>, record: u64, path: &str) -> Result<Self, NtfsError> {
        let rec = vol.read_record(record)?;
        let indexed = vol
            .directory(&rec)?
            .entries(vol)?
            .into_iter()
            .map(|e| e.file_ref.record)
            .collect();
        Ok(DirectoryListing {
            record,
            path: path.to_string(),
            indexed,
        })
    }
}

/// Scans `$MFT` for in-use records in `listing`'s directory that its index does not list.
/// `Err(NtfsError::Corrupt)` names them (or records too damaged to tell).
pub fn find_unlisted<R: ReadAt>(
    vol: &Volume<R>,
    listing: &DirectoryListing,
) -> Result<OwnershipScan, NtfsError> {
    let mut scan = OwnershipScan::default();
    let mut conflicts = Vec::new();
    let also = AlsoFind {
        unlisted_in: std::slice::from_ref(listing),
        free_records_in_use: None,
    };
    scan_records(vol, &[], also, &mut scan, &mut conflicts)?;
    if !conflicts.is_empty() {
        let more = conflicts.len().saturating_sub(5);
        conflicts.truncate(5);
        let mut text = conflicts.join("; ");
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        return Err(NtfsError::damaged_at(Structure::Directory, Location::Path { path: listing.path.clone() }, format!(
            "the directory {} is damaged: {text}. Run chkdsk on the volume in Windows or Windows Recovery, then try again",
            listing.path
        )));
    }
    Ok(scan)
}

fn refusal(mut conflicts: Vec<String>) -> NtfsError {
    let more = conflicts.len().saturating_sub(5);
    conflicts.truncate(5);
    let mut text = conflicts.join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    NtfsError::damaged(Structure::Runlist, format!(
        "the clusters this fix would free or write are not the deleted file's alone: {text}. \
         Nothing was written; run chkdsk on the volume (in Windows or Windows Recovery) before deleting the file"
    ))
}

/// A base file record whose header says "in use" while `$MFT:$BITMAP` marks it free, with the
/// names it gives itself in one directory.
#[derive(Debug, Clone)]
pub struct FreeRecordInUse {
    /// The record number.
    pub record: u64,
    /// Whether the record is a directory's.
    pub is_directory: bool,
    /// Its `$FILE_NAME`s whose parent is one of the directories asked about (every namespace).
    pub names: Vec<crate::index::FileNameKey>,
}

/// Record `n` (raw bytes `raw`) as a [`FreeRecordInUse`] of one of `directories`, if it is one: a base
/// record whose header says "in use" although `$MFT:$BITMAP` marks it free (the caller knows
/// the bit), with the names whose parent is one of them.
///
/// Such a record is what a crash leaves when a new file's record reached the disk before its
/// bitmap bit and index entry, which only the journal held. Windows replaying the journal
/// finishes or takes back the creation; with the journal discarded, chkdsk at the next boot finds
/// an in-use record outside every index and may link it back into its parent folder, so the file
/// comes back although no lookup shows it today. Records whose fixups or attributes do not read
/// are left out: their names cannot be known, and chkdsk frees a record it cannot read rather
/// than linking it.
fn free_record_in_use(n: u64, raw: &[u8], directories: &[u64]) -> Option<FreeRecordInUse> {
    if !file_record::is_in_use(raw) {
        return None;
    }
    let mut bytes = raw.to_vec();
    let rec = crate::fixup::apply_read(&mut bytes, &format!("MFT record {n}"))
        .and_then(|_| FileRecord::parse(n, bytes))
        .ok()?;
    if rec.base_ref().record != 0 {
        return None;
    }
    let attrs = rec.attributes().ok()?;
    let names: Vec<crate::index::FileNameKey> = attrs
        .iter()
        .filter(|a| a.type_code == AttributeType::FileName.code() && !a.non_resident)
        .filter_map(|a| {
            a.resident_value()
                .and_then(crate::index::FileNameKey::parse)
                .ok()
        })
        .filter(|k| directories.contains(&k.parent.record))
        .collect();
    (!names.is_empty()).then(|| FreeRecordInUse {
        record: n,
        is_directory: rec.is_directory(),
        names,
    })
}

/// Streams `$MFT` and checks every in-use record's runs against the claims.
fn scan_records<R: ReadAt>(
    vol: &Volume<R>,
    claims: &[&Claim],
    mut also: AlsoFind<'_>,
    scan: &mut OwnershipScan,
    conflicts: &mut Vec<String>,
) -> Result<(), NtfsError> {
    let listings = also.unlisted_in;
    let rs = vol.boot().file_record_size as u64;
    let mft = vol.mft_stream();
    let records = vol.record_count();
    let in_use_map = mft_bitmap(vol, records)?;
    // Records past the initialized size read as zeros: nothing there can own clusters.
    let scan_records = records.min(mft.initialized_size / rs);
    let per_chunk = (SCAN_CHUNK / rs).max(1);
    let mut first = 0u64;
    while first < scan_records {
        let count = per_chunk.min(scan_records - first);
        // Skip stretches the bitmap marks wholly free, unless the free records in use are
        // asked for; a record whose header still says in use there would be a leak that
        // chkdsk reports, and it owns nothing NTFS will honour.
        let any_marked = (first..first + count).any(|n| bit(&in_use_map, n));
        if !any_marked && also.free_records_in_use.is_none() {
            first += count;
            continue;
        }
        let chunk = vol.read_stream(mft, first * rs, (count * rs) as usize)?;
        scan.bytes_read += chunk.len() as u64;
        for i in 0..count {
            let n = first + i;
            let raw = &chunk[(i * rs) as usize..((i + 1) * rs) as usize];
            let marked = bit(&in_use_map, n);
            if let Some((directories, found)) = also.free_records_in_use.as_mut() {
                if !marked {
                    found.extend(free_record_in_use(n, raw, directories));
                }
            }
            // Ownership is judged where the bitmap marks something in use, as without the
            // free records asked for: the proof reads the same records either way.
            if !any_marked {
                continue;
            }
            let header_in_use = file_record::is_in_use(raw);
            if !marked && !header_in_use {
                continue;
            }
            scan.records_scanned += 1;
            if !header_in_use {
                // Marked in use but not a live record: reserved records (16-23) and records
                // Windows zeroed own nothing; anything else is damage we cannot see through.
                if raw.iter().all(|b| *b == 0)
                    || (16..24).contains(&n)
                    || file_record::has_signature(raw)
                {
                    continue;
                }
                conflicts.push(format!(
                    "MFT record {n} is marked in use but is not a readable file record, so what it owns is unknown"
                ));
                continue;
            }
            let mut bytes = raw.to_vec();
            let rec = crate::fixup::apply_read(&mut bytes, &format!("MFT record {n}"))
                .and_then(|_| FileRecord::parse(n, bytes));
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    conflicts.push(format!(
                        "MFT record {n} is in use but damaged ({e}), so what it owns is unknown"
                    ));
                    continue;
                }
            };
            let base = match rec.base_ref().record {
                0 => n,
                b => b,
            };
            let attrs = match rec.attributes() {
                Ok(a) => a,
                Err(e) => {
                    conflicts.push(format!(
                        "MFT record {n} is in use but its attributes are damaged ({e}), so what it owns is unknown"
                    ));
                    continue;
                }
            };
            for l in listings {
                if !l.indexed.contains(&base) {
                    for a in attrs.iter().filter(|a| {
                        a.type_code == AttributeType::FileName.code() && !a.non_resident
                    }) {
                        let Ok(k) = a
                            .resident_value()
                            .and_then(crate::index::FileNameKey::parse)
                        else {
                            continue;
                        };
                        if k.parent.record == l.record {
                            conflicts.push(format!(
                                "MFT record {base} is the file {} in {}, but the directory's index does not list it",
                                k.name_string(),
                                l.path
                            ));
                        }
                    }
                }
            }
            for a in attrs.iter().filter(|a| a.non_resident) {
                let runs = match a.runs() {
                    Ok(r) => r,
                    Err(e) => {
                        conflicts.push(format!(
                            "MFT record {n} is in use but a runlist is damaged ({e}), so what it owns is unknown"
                        ));
                        continue;
                    }
                };
                for run in runs {
                    let Some(lcn) = run.lcn else { continue };
                    let end = lcn.saturating_add(run.length);
                    // Claims are sorted by start: look at those starting before this run ends.
                    let upto = claims.partition_point(|c| c.lcn < end);
                    for c in &claims[..upto] {
                        if c.lcn + c.count <= lcn || c.allows(base, a) {
                            continue;
                        }
                        let (s, e) = (c.lcn.max(lcn), (c.lcn + c.count).min(end));
                        conflicts.push(format!(
                            "{} {} also used by MFT record {n}{} ({})",
                            c.describe(),
                            if e - s == 1 {
                                format!("— cluster {s} is")
                            } else {
                                format!("— clusters {s}-{} are", e - 1)
                            },
                            if base != n {
                                format!(", an extension of record {base}")
                            } else {
                                String::new()
                            },
                            crate::check::describe_attribute(a.type_code, &a.name)
                        ));
                    }
                }
            }
        }
        first += count;
    }
    Ok(())
}

/// `$MFT:$BITMAP` as bytes (one bit per record); records beyond it count as free.
fn mft_bitmap<R: ReadAt>(vol: &Volume<R>, records: u64) -> Result<Vec<u8>, NtfsError> {
    let rec0 = vol.read_record(RECORD_MFT)?;
    let v = vol
        .value(&rec0, AttributeType::Bitmap, "")?
        .ok_or_else(|| NtfsError::damaged(Structure::MftBitmap, "$MFT has no $BITMAP attribute"))?;
    let have = match &v {
        AttrValue::Resident(b) => b.len() as u64,
        AttrValue::NonResident(s) => s.data_size,
    };
    let len = records.div_ceil(8).min(have);
    vol.read_value(&v, 0, len as usize)
}

fn bit(map: &[u8], n: u64) -> bool {
    map.get((n / 8) as usize)
        .is_some_and(|b| b >> (n % 8) & 1 != 0)
}

/// "cluster 7" or "clusters 7-9".
fn clusters(start: u64, len: u64) -> String {
    if len == 1 {
        format!("cluster {start}")
    } else {
        format!("clusters {start}-{}", start + len - 1)
    }
}
