//! The repair plan: inspect, delete every match in an overlay, re-open the patched view from
//! scratch and verify it, then describe the result as patches over the virtual disk.

use crate::inspect::{inspect, run_rule_with, InspectReport, Outcome, Unlisted};
use crate::rule::Rule;
use kaifuku_io::{Overlay, Patch, PatchData, ReadAt, Slice};
use kaifuku_ntfs::edit::{Change, DeleteOutcome, Editor};
use kaifuku_ntfs::ownership::{prove_ownership, Claim, ClaimKind, DirectoryListing, OwnershipScan};
use kaifuku_ntfs::{NtfsError, Volume};
use serde::Serialize;
use std::cell::RefCell;

#[derive(Debug, Clone, Default)]
pub struct FixOptions {
    /// The user consents to discarding an unclean journal: `$LogFile` is reset and the volume
    /// marked dirty so Windows runs chkdsk at the next boot.
    pub discard_journal: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedDeletion {
    /// Index into the inspect report's volumes.
    pub volume: usize,
    pub path: String,
    #[serde(flatten)]
    pub outcome: DeleteOutcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Matches the rule finds on the patched view (must be 0).
    pub matches_after: usize,
    /// What was checked, in plain words.
    pub checks: Vec<String>,
    /// The ownership proof of each fixed volume: what its `$MFT` scan read.
    pub ownership: Vec<OwnershipScan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub deletions: Vec<PlannedDeletion>,
    /// Volumes whose journal was reset and dirty flag set.
    pub journals_discarded: Vec<usize>,
    /// Byte ranges of the virtual disk that change, each labelled with its structure.
    pub patches: Vec<Patch>,
    pub verification: Verification,
}

impl Plan {
    pub fn bytes_changed(&self) -> u64 {
        self.patches.iter().map(|p| p.len()).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("nothing to fix: {0}")]
    NothingToFix(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
}

impl FixError {
    fn from_ntfs(what: &str, e: NtfsError) -> FixError {
        match e {
            NtfsError::Unsupported(_) | NtfsError::BitLocker | NtfsError::Refused(_) => {
                FixError::Refused(format!("{what}: {e}"))
            }
            e => FixError::Failed(format!("{what}: {e}")),
        }
    }
}

/// Plans the repair of `image` with `rule`. Nothing is written anywhere: the result is the inspect
/// report and a verified plan whose patches a front end writes out.
pub fn plan_fix<R: ReadAt>(
    image: R,
    rule: &Rule,
    opts: &FixOptions,
) -> Result<(InspectReport, Plan), FixError> {
    let report = inspect(&image, rule);
    match report.outcome {
        Outcome::Matches => {}
        Outcome::NothingToFix => return Err(FixError::NothingToFix(report.reasons.join("; "))),
        Outcome::Refused => return Err(FixError::Refused(report.reasons.join("; "))),
        Outcome::Error => return Err(FixError::Failed(report.reasons.join("; "))),
    }
    let container = kaifuku_container::open(&image).map_err(|e| FixError::Failed(e.to_string()))?;
    let overlay = RefCell::new(Overlay::new(&container));
    let mut deletions = Vec::new();
    let mut journals_discarded = Vec::new();
    let mut changes: Vec<(u64, Change)> = Vec::new();
    let mut ownership = Vec::new();
    let mut ownership_checks = Vec::new();
    for (vi, v) in report.volumes.iter().enumerate() {
        let Some(result) = &v.rule else { continue };
        if result.matches.is_empty() {
            continue;
        }
        let name = crate::inspect::volume_name(v);
        // Writing into a partition that overlaps another could change the other one's data.
        if let (Some(number), Some(table)) = (v.partition, &report.partitions) {
            for n in &table.warnings {
                if let kaifuku_partition::NoticeKind::PartitionsOverlap { a, b, .. } = n.kind {
                    if a == number || b == number {
                        return Err(FixError::Failed(format!(
                            "{name}: {} Nothing was written: fix the partition table first (for example with the hypervisor's disk tools, or testdisk)",
                            n.message
                        )));
                    }
                }
            }
        }
        let ntfs = v.ntfs.as_ref().expect("the rule only runs on NTFS volumes");
        if ntfs.hibernation.hibernated {
            return Err(FixError::Refused(format!(
                "{name}: Windows is hibernated; resuming would overwrite any offline edit. Boot Windows and shut it down fully (or remove the hibernation file in Windows), then try again"
            )));
        }
        if ntfs.quota_tracking {
            return Err(FixError::Refused(format!(
                "{name}: {}",
                crate::inspect::QUOTA_BLOCKER
            )));
        }
        let clean = ntfs.log.state.is_clean();
        if !clean && !opts.discard_journal {
            return Err(FixError::Refused(format!(
                "{name}: the NTFS journal is not clean ({}), as after a crash. Windows would replay it over an offline edit. \
                 Re-run with --discard-journal to reset the journal and mark the volume dirty so Windows runs chkdsk at the next boot \
                 (the last moments before the crash may be lost; chkdsk repairs what they left half-done)",
                ntfs.log.state.describe()
            )));
        }
        let view =
            Slice::new(&overlay, v.offset, v.size).map_err(|e| FixError::Failed(e.to_string()))?;
        let vol = Volume::open(&view).map_err(|e| FixError::from_ntfs(&name, e))?;
        let mut ed = Editor::new(&vol);
        if !clean {
            ed.discard_journal()
                .map_err(|e| FixError::from_ntfs(&name, e))?;
            journals_discarded.push(vi);
        }
        // The directory the report found the matches in (links on the way already followed).
        let dir = vol
            .lookup_dir(&result.directory)
            .map_err(|e| FixError::from_ntfs(&name, e))?
            .ok_or_else(|| FixError::Failed(format!("{name}: {} vanished", result.directory)))?;
        for m in &result.matches {
            let file_name: Vec<u16> = m.file.name.encode_utf16().collect();
            let outcome = ed
                .delete(dir.number, &result.directory, &file_name)
                .map_err(|e| FixError::from_ntfs(&format!("{name}: {}", m.path), e))?;
            deletions.push(PlannedDeletion {
                volume: vi,
                path: m.path.clone(),
                outcome,
            });
        }
        let volume_changes = ed.into_changes();
        // Before anything is accepted: the clusters freed are the deleted files' alone, and
        // every write lands in clusters of the structure it names (proven on the unpatched
        // volume, where the runs that led there came from).
        let cs = vol.cluster_size();
        let mut claims: Vec<Claim> = volume_changes
            .iter()
            .filter(|c| c.len > 0)
            .map(|c| Claim {
                lcn: c.offset / cs,
                count: (c.offset + c.len - 1) / cs - c.offset / cs + 1,
                kind: ClaimKind::Write {
                    stream: c.owner.clone(),
                    label: c.label.clone(),
                },
            })
            .collect();
        for d in deletions.iter().filter(|d| d.volume == vi) {
            claims.extend(d.outcome.freed_runs.iter().map(|&(lcn, count)| Claim {
                lcn,
                count,
                kind: ClaimKind::Free {
                    record: d.outcome.record,
                },
            }));
        }
        let base_view = Slice::new(&container, v.offset, v.size)
            .map_err(|e| FixError::Failed(e.to_string()))?;
        let base_vol = Volume::open(&base_view).map_err(|e| FixError::from_ntfs(&name, e))?;
        // Every record whose attributes the fix writes through (`$MFT`, `$MFTMirr`, `$Bitmap`,
        // the directory, `$ObjId`, ...) must be sound before: the edit followed their runs.
        let mut through: Vec<u64> = volume_changes.iter().map(|c| c.owner.record).collect();
        through.sort_unstable();
        through.dedup();
        let health = kaifuku_ntfs::check::check_records(&base_vol, &through)
            .map_err(|e| FixError::from_ntfs(&name, e))?;
        if !health.is_clean() {
            return Err(FixError::Failed(format!(
                "{name}: structures the fix must write are damaged ({}); nothing was written. Run chkdsk on the volume in Windows or Windows Recovery, then try again",
                health.first_problems(3)
            )));
        }
        // The same pass finds files that name the directory as their parent but that its
        // index does not list: a damaged index would hide further matches from the rule.
        let listing = DirectoryListing::read(&base_vol, dir.number, &result.directory)
            .map_err(|e| FixError::from_ntfs(&name, e))?;
        let scan = prove_ownership(&base_vol, &claims, Some(&listing))
            .map_err(|e| FixError::Failed(format!("{name}: {e}")))?;
        ownership_checks.push(format!(
            "{name}: {} in-use MFT record(s) scanned ({} of $MFT): the {} cluster range(s) freed or written belong to their own structures alone",
            scan.records_scanned,
            crate::human::size(scan.bytes_read),
            scan.claims_proven
        ));
        ownership.push(scan);
        changes.extend(volume_changes.into_iter().map(|c| (v.offset, c)));
    }
    // Verify on the patched view, opened from scratch.
    let mut checks = ownership_checks;
    let mut matches_after = 0;
    for (vi, v) in report.volumes.iter().enumerate() {
        if !deletions.iter().any(|d| d.volume == vi) {
            continue;
        }
        let name = crate::inspect::volume_name(v);
        let view =
            Slice::new(&overlay, v.offset, v.size).map_err(|e| FixError::Failed(e.to_string()))?;
        let vol = Volume::open(&view).map_err(|e| {
            FixError::Failed(format!("{name}: the patched volume does not open: {e}"))
        })?;
        let after = run_rule_with(&vol, rule, Unlisted::AlreadyProven).map_err(|e| {
            FixError::Failed(format!("{name}: re-reading the patched volume failed: {e}"))
        })?;
        matches_after += after.matches.len();
        checks.push(format!(
            "{name}: the rule finds {} file(s) after the fix",
            after.matches.len()
        ));
        // The invariant checker on every structure the edit touched (ntfs-delete.md §5).
        use kaifuku_ntfs::check::{
            check_cluster_bits, check_directory, check_mft_bits, check_records, ClusterState,
        };
        let mine: Vec<&PlannedDeletion> = deletions.iter().filter(|d| d.volume == vi).collect();
        let records: Vec<u64> = mine.iter().map(|d| d.outcome.record).collect();
        let freed: Vec<u64> = mine
            .iter()
            .filter(|d| d.outcome.record_freed)
            .map(|d| d.outcome.record)
            .collect();
        let runs: Vec<(u64, u64)> = mine
            .iter()
            .flat_map(|d| d.outcome.freed_runs.iter().copied())
            .collect();
        let mut dirs: Vec<u64> = mine.iter().map(|d| d.outcome.directory_record).collect();
        dirs.sort_unstable();
        dirs.dedup();
        let fail = |what: &str, e: NtfsError| {
            FixError::Failed(format!("{name}: checking {what} failed: {e}"))
        };
        let mut reports = vec![
            (
                "the changed MFT records",
                check_records(&vol, &records).map_err(|e| fail("records", e))?,
            ),
            (
                "$MFT:$BITMAP",
                check_mft_bits(&vol, &freed).map_err(|e| fail("$MFT:$BITMAP", e))?,
            ),
            (
                "$Bitmap",
                check_cluster_bits(&vol, &runs, ClusterState::Free)
                    .map_err(|e| fail("$Bitmap", e))?,
            ),
        ];
        for d in &dirs {
            reports.push((
                "the edited directory index",
                check_directory(&vol, *d).map_err(|e| fail("the directory", e))?,
            ));
        }
        for (what, r) in &reports {
            if !r.is_clean() {
                let first: Vec<String> = r
                    .problems
                    .iter()
                    .take(5)
                    .map(|p| p.message.clone())
                    .collect();
                return Err(FixError::Failed(format!(
                    "verification failed on {what} of {name}; nothing was written. Problems: {}",
                    first.join("; ")
                )));
            }
        }
        checks.push(format!(
            "{name}: invariant checks pass on {} MFT record(s), their $MFT:$BITMAP bits, {} freed cluster run(s) and {} directory index(es)",
            records.len(),
            runs.len(),
            dirs.len()
        ));
    }
    if matches_after != 0 {
        return Err(FixError::Failed(format!(
            "verification failed: the patched image still has {matches_after} matching file(s); nothing was written"
        )));
    }
    let patches =
        diff_patches(&overlay.borrow(), &changes).map_err(|e| FixError::Failed(e.to_string()))?;
    Ok((
        report,
        Plan {
            deletions,
            journals_discarded,
            patches,
            verification: Verification {
                matches_after,
                checks,
                ownership,
            },
        },
    ))
}

/// Bytes closer than this inside one structure are reported as one patch.
const MERGE_GAP: u64 = 8;

/// Turns logged writes into patches that hold exactly the bytes that differ from the image,
/// each labelled with the first structure written there. Fills (the journal reset) are kept as
/// fills: they are not compared byte by byte, so the old journal is never read.
fn diff_patches<B: ReadAt>(
    overlay: &Overlay<B>,
    changes: &[(u64, Change)],
) -> std::io::Result<Vec<Patch>> {
    let mut patches: Vec<Patch> = Vec::new();
    let mut fills: Vec<(u64, u64)> = Vec::new();
    for (base, c) in changes.iter().filter(|(_, c)| c.fill.is_some()) {
        let (start, end) = (base + c.offset, base + c.offset + c.len);
        fills.push((start, end));
        patches.push(Patch {
            offset: start,
            data: PatchData::Fill {
                byte: c.fill.expect("filtered"),
                len: c.len,
            },
            label: c.label.clone(),
        });
    }
    let mut ranges: Vec<(u64, u64, &str)> = changes
        .iter()
        .filter(|(_, c)| c.fill.is_none())
        .map(|(base, c)| (base + c.offset, base + c.offset + c.len, c.label.as_str()))
        .collect();
    ranges.sort_by_key(|r| r.0);
    let mut covered_to = 0u64;
    for (start, end, label) in ranges {
        let start = start.max(covered_to);
        if start >= end {
            continue;
        }
        if fills.iter().any(|&(fs, fe)| start < fe && fs < end) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{label} overlaps the journal reset; refusing an inconsistent plan"),
            ));
        }
        let len = (end - start) as usize;
        let mut new = vec![0u8; len];
        overlay.read_at(start, &mut new)?;
        let mut old = vec![0u8; len];
        overlay.base().read_at(start, &mut old)?;
        let mut i = 0usize;
        while i < len {
            if new[i] == old[i] {
                i += 1;
                continue;
            }
            let run_start = i;
            let mut run_end = i + 1;
            let mut j = i + 1;
            while j < len && (j - run_end) < MERGE_GAP as usize {
                if new[j] != old[j] {
                    run_end = j + 1;
                }
                j += 1;
            }
            patches.push(Patch {
                offset: start + run_start as u64,
                data: PatchData::Bytes(new[run_start..run_end].to_vec()),
                label: label.to_string(),
            });
            i = run_end;
        }
        covered_to = end;
    }
    patches.sort_by_key(|p| p.offset);
    Ok(patches)
}
