//! The repair plan: inspect, delete every match in an overlay, re-open the patched view from
//! scratch and verify it, then describe the result as patches over the virtual disk.

use crate::encryption::Unlocker;
use crate::inspect::{
    inspect_opened, run_rule_with, InspectReport, Outcome, ReplayedWrites, Unlisted,
};
use crate::journal::replay_journal;
use crate::journal::{journal_overlap, FixFootprint};
use crate::rule::{Rule, RuleSet};
use crate::vocabulary::{
    Blocker, JournalLeftToWindows, JournalOverlap, JournalReplay, JournalReport, NtfsProblem,
    Reason, RestorableFile, VolumeName,
};
pub use crate::vocabulary::{Checked, FixError, FixFailure, FixRefusal, PlanCheck};
use kaifuku_bitlocker::EncryptedSectors;
use kaifuku_container::Container;
use kaifuku_io::{Overlay, Patch, PatchData, ReadAt, Slice, WriteAt};
use kaifuku_ntfs::check::SideIndex;
use kaifuku_ntfs::edit::{Change, ChangedStructure, DeleteOutcome, Editor};
use kaifuku_ntfs::ownership::{
    prove_ownership, Claim, ClaimKind, DirectoryListing, FreeRecordInUse, OwnershipScan,
};
use kaifuku_ntfs::{NtfsError, Volume};
use serde::Serialize;
use std::cell::RefCell;

/// What the user allows a fix to do beyond deleting the matches.
#[derive(Debug, Clone, Default)]
pub struct FixOptions {
    /// The user consents to discarding an unclean journal: `$LogFile` is reset and the volume
    /// marked dirty so Windows runs chkdsk at the next boot.
    pub discard_journal: bool,
}

/// One file the plan deletes.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedDeletion {
    /// Index into the inspect report's volumes.
    pub volume: usize,
    /// The file's path on the volume.
    pub path: String,
    /// The key of the rule that matched the file; only when the set has more than one rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// What the delete changes: names, record, clusters, side indexes.
    #[serde(flatten)]
    pub outcome: DeleteOutcome,
}

/// What the plan's own verification of the patched view confirmed.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Matches the rule finds on the patched view (must be 0).
    pub matches_after: usize,
    /// What was checked.
    pub checks: Vec<PlanCheck>,
    /// The ownership proof of each fixed volume: what its `$MFT` scan read.
    pub ownership: Vec<OwnershipScan>,
}

/// Whether the pending changes of a volume's journal touch what the plan changes there.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedJournalOverlap {
    /// Index into the inspect report's volumes.
    pub volume: usize,
    /// What overlaps.
    pub overlap: JournalOverlap,
}

/// A journal the plan replays before the deletions.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedJournalReplay {
    /// Index into the inspect report's volumes.
    pub volume: usize,
    /// What the replay does (always [`JournalReplay::Replayed`]).
    pub replay: JournalReplay,
}

/// A journal the plan leaves untouched for Windows to replay at its next start.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedJournalLeft {
    /// Index into the inspect report's volumes.
    pub volume: usize,
    /// What Windows will do with it.
    pub left: JournalLeftToWindows,
}

/// A plan that replays a journal, as two steps: the replay against the image, then the
/// deletions against the replayed disk. Applied in turn they give the same disk as the plan's
/// patches.
#[derive(Debug, Clone)]
pub struct PlanSteps {
    /// What the replay changes on the image (the volume as Windows would recover it).
    pub replay: Vec<Patch<ChangedStructure>>,
    /// What the deletions change on the replayed disk.
    pub fix: Vec<Patch<ChangedStructure>>,
}

/// A verified repair plan: the deletions, and the bytes of the virtual disk that change.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Every file deleted.
    pub deletions: Vec<PlannedDeletion>,
    /// Volumes whose journal was reset and dirty flag set.
    pub journals_discarded: Vec<usize>,
    /// Volumes whose journal is replayed as Windows would at its next start: their writes come
    /// first, and the deletions run on the replayed volume.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journals_replayed: Vec<PlannedJournalReplay>,
    /// Volumes whose journal kaifuku cannot replay but whose pending updates touch nothing the
    /// plan changes: the journal is left untouched (no reset, no dirty flag) for Windows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journals_left: Vec<PlannedJournalLeft>,
    /// For each volume whose journal was read (it was not clean): whether its pending changes
    /// touch what this plan changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journal_overlaps: Vec<PlannedJournalOverlap>,
    /// Byte ranges of the virtual disk that change, each labelled with its structure. Inside an
    /// unlocked BitLocker volume they are ranges of its decrypted view (same offsets), and
    /// `encrypted_sectors` holds what the disk receives there.
    pub patches: Vec<Patch<ChangedStructure>>,
    /// A plan that replays a journal, as its two steps (for explanations; `patches` is what is
    /// written).
    #[serde(skip)]
    pub steps: Option<PlanSteps>,
    /// The sectors of BitLocker volumes that carry `patches` there, re-encrypted, as ranges of
    /// the virtual disk.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encrypted_sectors: Vec<Patch<EncryptedSectors<ChangedStructure>>>,
    /// The (start, end) byte ranges of the virtual disk read decrypted.
    #[serde(skip)]
    pub encrypted_volumes: Vec<(u64, u64)>,
    /// What the plan's verification confirmed.
    pub verification: Verification,
}

impl Plan {
    /// What the virtual disk receives: the patches outside BitLocker volumes and the
    /// re-encrypted sectors inside them. Labels are left out; `patches` and
    /// `encrypted_sectors` carry them.
    pub fn disk_patches(&self) -> Vec<Patch<()>> {
        let inside = |p: &Patch<ChangedStructure>| {
            self.encrypted_volumes
                .iter()
                .any(|(start, end)| p.offset < *end && p.end() > *start)
        };
        let mut out: Vec<Patch<()>> = self
            .patches
            .iter()
            .filter(|p| !inside(p))
            .map(|p| Patch {
                offset: p.offset,
                data: p.data.clone(),
                label: (),
            })
            .chain(self.encrypted_sectors.iter().map(|p| Patch {
                offset: p.offset,
                data: p.data.clone(),
                label: (),
            }))
            .collect();
        out.sort_by_key(|p| p.offset);
        out
    }

    /// Bytes of the virtual disk that change.
    pub fn bytes_changed(&self) -> u64 {
        self.patches.iter().map(|p| p.len()).sum()
    }
}

/// A refusal or failure of the NTFS layer while editing `volume` (and `file`, when one is being
/// deleted): refusals and unsupported features refuse the fix, anything else fails it.
fn ntfs_error(volume: &VolumeName, file: Option<&str>, e: NtfsError) -> FixError {
    let error = NtfsProblem::from(e);
    let volume = volume.clone();
    let file = file.map(str::to_string);
    if error.is_refusal() {
        FixError::Refused {
            refusal: FixRefusal::Ntfs {
                volume,
                file,
                error,
            },
        }
    } else {
        FixError::Failed {
            failure: FixFailure::Ntfs {
                volume,
                file,
                error,
            },
        }
    }
}

fn failed(failure: FixFailure) -> FixError {
    FixError::Failed { failure }
}

/// A volume's range that no longer fits the disk (it fitted when inspected): a bug.
fn internal(e: std::io::Error) -> FixError {
    failed(FixFailure::Internal {
        detail: e.to_string(),
    })
}

/// Plans the repair of `image` with `rules` (one rule, or a [`RuleSet`]). Nothing is written
/// anywhere: the result is the inspect report and a verified plan whose patches a front end
/// writes out.
pub fn plan_fix<R: ReadAt>(
    image: R,
    rules: impl Into<RuleSet>,
    opts: &FixOptions,
) -> Result<(InspectReport, Plan), FixError> {
    let rules = rules.into();
    let rule = &rules;
    let opened = kaifuku_container::open(image);
    let mut unlocker = Unlocker::default();
    let report = inspect_opened(opened.as_ref(), rule, Unlisted::Scan, &mut unlocker);
    let container = match &opened {
        Ok(c) => c,
        // Inspect said why (and did not find matches).
        Err(_) => return Err(not_fixable(&report)),
    };
    let plan = plan_unlocked(container, &unlocker, &report, rule, opts)?;
    Ok((report, plan))
}

/// Why a report whose outcome is not `Matches` cannot be fixed.
pub(crate) fn not_fixable(report: &InspectReport) -> FixError {
    let reasons = report.reasons.clone();
    match report.outcome {
        Outcome::NothingToFix => FixError::NothingToFix { reasons },
        Outcome::Refused => FixError::Refused {
            refusal: FixRefusal::Inspect { reasons },
        },
        Outcome::Error | Outcome::Matches => failed(FixFailure::Inspect { reasons }),
    }
}

/// Plans the repair of the image `container` holds, which `report` is the inspection of, with
/// its BitLocker volumes read decrypted through `unlocker` (which inspect unlocked them with):
/// the changes on a decrypted volume are also mapped to its re-encrypted sectors.
pub(crate) fn plan_unlocked<R: ReadAt>(
    container: &Container<R>,
    unlocker: &Unlocker,
    report: &InspectReport,
    rule: &RuleSet,
    opts: &FixOptions,
) -> Result<Plan, FixError> {
    let disk = unlocker.decrypted(container);
    let mut plan = plan_inspected(&disk, report, rule, opts)?;
    if disk.any_unlocked() {
        let (_, encrypted) = disk.encrypt_patches(&plan.patches).map_err(|problem| {
            failed(FixFailure::BitLocker {
                volume: plan
                    .deletions
                    .first()
                    .map(|d| report.volumes[d.volume].name())
                    .unwrap_or(VolumeName {
                        partition: None,
                        label: None,
                    }),
                problem,
            })
        })?;
        plan.encrypted_sectors = encrypted;
        plan.encrypted_volumes = disk.volume_ranges();
    }
    Ok(plan)
}

/// Plans the repair on `container`: the virtual disk, or the disk with its BitLocker volumes
/// read decrypted.
pub(crate) fn plan_inspected<D: ReadAt>(
    container: &D,
    report: &InspectReport,
    rules: &RuleSet,
    opts: &FixOptions,
) -> Result<Plan, FixError> {
    // Consent to discard the journal settles the one refusal that is about the journal alone:
    // after the discard, what is on the disk is the truth, and the rule found nothing there.
    let discard_settles = opts.discard_journal
        && report.outcome == Outcome::Refused
        && report
            .reasons
            .iter()
            .all(|r| matches!(r, Reason::JournalMayHoldMatch { .. }));
    if report.outcome != Outcome::Matches && !discard_settles {
        return Err(not_fixable(report));
    }
    // Two layers: the journal replays (the volume as Windows would see it after its own
    // recovery), and over them the deletions. Proofs that judge "the volume before the fix" read
    // the replayed layer; the patches are the top layer against the image.
    let replayed = RefCell::new(Overlay::new(container));
    let overlay = RefCell::new(Overlay::new(&replayed));
    let mut deletions = Vec::new();
    let mut journals_discarded = Vec::new();
    let mut journals_replayed = Vec::new();
    let mut journals_left = Vec::new();
    let mut replay_changes: Vec<(u64, Change)> = Vec::new();
    let mut journal_overlaps = Vec::new();
    let mut changes: Vec<(u64, Change)> = Vec::new();
    let mut ownership = Vec::new();
    let mut ownership_checks = Vec::new();
    for (vi, v) in report.volumes.iter().enumerate() {
        // Every rule's result here; one editor deletes the matches of them all.
        let results: Vec<&crate::inspect::RuleResult> = v.results().collect();
        if results.is_empty() {
            continue;
        }
        let journal_may_hold = v
            .fix_blockers
            .iter()
            .any(|b| matches!(b, Blocker::JournalMayHoldMatch { .. }));
        // Nothing to delete, but a journal that may hold a match: discarded, with consent.
        let discard_only = !v.has_matches() && journal_may_hold && opts.discard_journal;
        if !v.has_matches() && !discard_only {
            continue;
        }
        let name = v.name();
        // Writing into a partition that overlaps another could change the other one's data.
        if let (Some(number), Some(table)) = (v.partition, &report.partitions) {
            for n in &table.warnings {
                if let kaifuku_partition::NoticeKind::PartitionsOverlap { a, b, .. } = n.kind {
                    if a == number || b == number {
                        return Err(failed(FixFailure::PartitionsOverlap {
                            volume: name,
                            notice: n.kind.clone(),
                        }));
                    }
                }
            }
        }
        let ntfs = v.ntfs.as_ref().expect("the rule only runs on NTFS volumes");
        let blocked = |blocker: Blocker| FixError::Refused {
            refusal: FixRefusal::Blocked {
                volume: name.clone(),
                blocker,
            },
        };
        if ntfs.hibernation.hibernated {
            return Err(blocked(Blocker::Hibernated));
        }
        if ntfs.quota_tracking {
            return Err(blocked(Blocker::QuotaTracking));
        }
        let clean = ntfs.log.state.is_clean();
        // Inspect found the rule's matches on the replayed volume: the fix replays too.
        let replaying = !clean
            && v.journal_replay
                .as_ref()
                .is_some_and(JournalReplay::replayed);
        // Inspect lifted the journal's blocker: the replay is refused, but the pending updates
        // touch nothing the deletions change. The exact footprint is checked once they are made.
        let leave_candidate = !clean
            && !replaying
            && !discard_only
            && !v.fix_blockers.iter().any(|b| {
                matches!(
                    b,
                    Blocker::JournalNotClean { .. } | Blocker::JournalMayHoldMatch { .. }
                )
            });
        if !clean && !replaying && !leave_candidate && !opts.discard_journal {
            return Err(blocked(Blocker::JournalNotClean {
                state: ntfs.log.state,
            }));
        }
        let on_volume = |e: NtfsError| ntfs_error(&name, None, e);
        if replaying {
            let replay_view = Slice::new(&replayed, v.offset, v.size).map_err(internal)?;
            let replay = match (&v.journal_replayed, &v.journal_replay) {
                // The replay inspect made: the same bytes laid on this view, the journal neither
                // read nor replayed a second time.
                (Some(ReplayedWrites(writes)), Some(replay @ JournalReplay::Replayed { .. })) => {
                    for (change, bytes) in writes.iter() {
                        replay_view
                            .write_at(change.offset, bytes)
                            .map_err(internal)?;
                        replay_changes.push((v.offset, change.clone()));
                    }
                    replay.clone()
                }
                // A report without them (made elsewhere): replay the journal inspect read.
                _ => {
                    let replay_vol = Volume::open(&replay_view).map_err(on_volume)?;
                    let journal = v
                        .journal
                        .as_ref()
                        .expect("a replay is found on a read journal");
                    // Its live span is not read a second time.
                    let already_read = v.journal_read.as_ref().map(|read| &*read.0);
                    match replay_journal(&replay_vol, journal, already_read) {
                        Some((replay @ JournalReplay::Replayed { .. }, changes)) => {
                            replay_changes.extend(changes.into_iter().map(|c| (v.offset, c)));
                            replay
                        }
                        // Inspect replayed this very journal: anything else now is a bug.
                        other => {
                            return Err(failed(FixFailure::Internal {
                                detail: format!(
                                    "{name}: the journal replay inspect made does not repeat: {other:?}"
                                ),
                            }))
                        }
                    }
                }
            };
            journals_replayed.push(PlannedJournalReplay { volume: vi, replay });
        }
        let view = Slice::new(&overlay, v.offset, v.size).map_err(internal)?;
        let vol = Volume::open(&view).map_err(on_volume)?;
        let mut ed = Editor::new(&vol);
        if !clean && !replaying && !leave_candidate {
            ed.discard_journal().map_err(on_volume)?;
            journals_discarded.push(vi);
        }
        // The directories the report found the matches in (links on the way already followed),
        // each looked up once; a discard alone has none to look in (the rule's directory may not
        // even exist).
        let mut dirs: Vec<(String, kaifuku_ntfs::FileRecord)> = Vec::new();
        for result in results.iter().filter(|r| !r.matches.is_empty()) {
            if dirs.iter().any(|(path, _)| *path == result.directory) {
                continue;
            }
            let dir = vol
                .lookup_dir(&result.directory)
                .map_err(on_volume)?
                .ok_or_else(|| {
                    failed(FixFailure::DirectoryVanished {
                        volume: name.clone(),
                        directory: result.directory.clone(),
                    })
                })?;
            dirs.push((result.directory.clone(), dir));
        }
        for result in &results {
            let Some((_, dir)) = dirs.iter().find(|(path, _)| *path == result.directory) else {
                continue;
            };
            // Defence in depth: inspect never runs a rule gated on a Windows build the volume
            // does not have, so its matches reaching the plan would be a bug.
            if let Some(needs) = rules
                .get(result.rule_index)
                .and_then(|rule| rule.min_windows_build)
            {
                if let Some(why) = crate::inspect::build_gate(v.registry.as_ref(), needs) {
                    return Err(failed(FixFailure::Internal {
                        detail: format!(
                            "{name}: rule {} found files although it must not run here ({why})",
                            rules.get(result.rule_index).map_or("?", |r| r.key())
                        ),
                    }));
                }
            }
            for m in &result.matches {
                // A name two rules match is deleted once, for the first rule.
                if deletions.iter().any(|d: &PlannedDeletion| {
                    d.volume == vi
                        && d.outcome.directory_record == dir.number
                        && d.outcome.record == m.file.mft_record
                        && d.path == m.path
                }) {
                    continue;
                }
                let file_name: Vec<u16> = m.file.name.encode_utf16().collect();
                let outcome = ed
                    .delete(dir.number, &result.directory, &file_name)
                    .map_err(|e| ntfs_error(&name, Some(&m.path), e))?;
                deletions.push(PlannedDeletion {
                    volume: vi,
                    path: m.path.clone(),
                    rule_id: (!rules.is_single())
                        .then(|| rules.get(result.rule_index).map(|r| r.key().to_string()))
                        .flatten(),
                    outcome,
                });
            }
        }
        let mut left = false;
        if leave_candidate {
            match leave_to_windows(v.journal.as_ref(), &deletions, vi) {
                Some(updates) => {
                    journals_left.push(PlannedJournalLeft {
                        volume: vi,
                        left: JournalLeftToWindows { updates },
                    });
                    left = true;
                }
                None if opts.discard_journal => {
                    ed.discard_journal().map_err(on_volume)?;
                    journals_discarded.push(vi);
                }
                None => {
                    return Err(blocked(Blocker::JournalNotClean {
                        state: ntfs.log.state,
                    }))
                }
            }
        }
        let volume_changes = ed.into_changes();
        // A replayed journal has nothing pending left to overlap with; a journal left for
        // Windows was just proven not to overlap.
        if let (false, false, false, Some(JournalReport::Analysed { journal })) =
            (replaying, discard_only, left, &v.journal)
        {
            let cs = vol.cluster_size();
            let mut fix = FixFootprint::default();
            for d in deletions.iter().filter(|d| d.volume == vi) {
                fix.file_records.insert(d.outcome.record);
                fix.file_records.insert(d.outcome.directory_record);
                fix.directories.insert(d.outcome.directory_record);
                if d.outcome.record_freed {
                    fix.mft_bits.insert(d.outcome.record);
                }
                fix.cluster_runs
                    .extend(d.outcome.freed_runs.iter().copied());
            }
            fix.clusters = volume_changes
                .iter()
                .filter(|c| c.len > 0)
                .map(|c| {
                    (
                        c.offset / cs,
                        (c.offset + c.len - 1) / cs - c.offset / cs + 1,
                    )
                })
                .collect();
            journal_overlaps.push(PlannedJournalOverlap {
                volume: vi,
                overlap: journal_overlap(journal, &fix),
            });
        }
        // Before anything is accepted: the clusters freed are the deleted files' alone, and
        // every write lands in clusters of the structure it names, the journal replay's too
        // (proven on the volume before the delete, where the runs that led there came from: the
        // replayed one when the journal is replayed).
        let cs = vol.cluster_size();
        let this_replay = replay_changes
            .iter()
            .filter(|(base, _)| *base == v.offset)
            .map(|(_, c)| c);
        let mut claims: Vec<Claim> = volume_changes
            .iter()
            .chain(this_replay.clone())
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
        let base_view = Slice::new(&replayed, v.offset, v.size).map_err(internal)?;
        let base_vol = Volume::open(&base_view).map_err(on_volume)?;
        // Every record whose attributes the fix writes through (`$MFT`, `$MFTMirr`, `$Bitmap`,
        // the directory, `$ObjId`, ...) must be sound before: the edit followed their runs.
        let mut through: Vec<u64> = volume_changes
            .iter()
            .chain(this_replay)
            .map(|c| c.owner.record)
            .collect();
        through.sort_unstable();
        through.dedup();
        let health = kaifuku_ntfs::check::check_records(&base_vol, &through).map_err(on_volume)?;
        if !health.is_clean() {
            return Err(failed(FixFailure::WriteTargetsDamaged {
                volume: name,
                problems: health.problems.into_iter().take(3).collect(),
            }));
        }
        // The same pass finds files that name the directory as their parent but that its
        // index does not list: a damaged index would hide further matches from the rule.
        let listings = dirs
            .iter()
            .map(|(path, dir)| DirectoryListing::read(&base_vol, dir.number, path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(on_volume)?;
        // A plan that discards the journal must also know the records a chkdsk after the
        // discard could link back into the rules' directories; the same pass over `$MFT` finds
        // them.
        let mut discarding_in: Vec<u64> = Vec::new();
        if journals_discarded.contains(&vi) {
            discarding_in.extend(results.iter().filter_map(|r| r.directory_record));
            discarding_in.sort_unstable();
            discarding_in.dedup();
        }
        // A conflict the proof finds fails the fix, whatever its kind: the edit cannot be trusted.
        let proof =
            prove_ownership(&base_vol, &claims, &listings, &discarding_in).map_err(|e| {
                failed(FixFailure::Ntfs {
                    volume: name.clone(),
                    file: None,
                    error: NtfsProblem::from(e),
                })
            })?;
        if !discarding_in.is_empty() {
            for result in &results {
                let Some(rule) = rules.get(result.rule_index) else {
                    continue;
                };
                refuse_if_chkdsk_would_restore(
                    &base_vol,
                    &proof.free_records_in_use,
                    result,
                    rule,
                    &name,
                )?;
            }
        }
        let scan = proof.scan;
        ownership_checks.push(PlanCheck::OwnershipProven {
            volume: name.clone(),
            records_scanned: scan.records_scanned,
            bytes_read: scan.bytes_read,
            claims_proven: scan.claims_proven,
        });
        ownership.push(scan);
        changes.extend(volume_changes.into_iter().map(|c| (v.offset, c)));
    }
    // Verify on the patched view, opened from scratch.
    let mut checks = ownership_checks;
    let mut matches_after = 0;
    for (vi, v) in report.volumes.iter().enumerate() {
        let deleted_here = deletions.iter().any(|d| d.volume == vi);
        if !deleted_here && !journals_discarded.contains(&vi) {
            continue;
        }
        let name = v.name();
        let view = Slice::new(&overlay, v.offset, v.size).map_err(internal)?;
        let vol = Volume::open(&view).map_err(|e| {
            failed(FixFailure::PatchedVolumeDoesNotOpen {
                volume: name.clone(),
                error: NtfsProblem::from(e),
            })
        })?;
        // Only a volume with deletions had its `$MFT` scanned by the ownership proof.
        let unlisted = if deleted_here {
            Unlisted::AlreadyProven
        } else {
            Unlisted::Scan
        };
        // Every rule that ran here runs again; what they find is counted together.
        let mut found_after = 0;
        for result in v.results() {
            let Some(rule) = rules.get(result.rule_index) else {
                continue;
            };
            let after = run_rule_with(&vol, rule, unlisted).map_err(|e| {
                failed(FixFailure::PatchedVolumeUnreadable {
                    volume: name.clone(),
                    error: NtfsProblem::from(e),
                })
            })?;
            found_after += after.matches.len();
        }
        matches_after += found_after;
        checks.push(PlanCheck::RuleFindsAfterFix {
            volume: name.clone(),
            count: found_after,
        });
        if !deleted_here {
            // A discard alone changed `$LogFile` and the volume's dirty flag: the output check
            // reads both back.
            continue;
        }
        // The invariant checker on every structure the edit touched (docs/ntfs-delete.md §5).
        use kaifuku_ntfs::check::{
            check_cluster_bits, check_directory, check_mft_bits, check_records, check_side_indexes,
            ClusterState,
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
        let fail = |checked: Checked, e: NtfsError| {
            failed(FixFailure::CheckFailed {
                volume: name.clone(),
                checked,
                error: NtfsProblem::from(e),
            })
        };
        let mut reports = vec![
            (
                Checked::ChangedRecords,
                check_records(&vol, &records).map_err(|e| fail(Checked::ChangedRecords, e))?,
            ),
            (
                Checked::MftBitmap,
                check_mft_bits(&vol, &freed).map_err(|e| fail(Checked::MftBitmap, e))?,
            ),
            (
                Checked::Bitmap,
                check_cluster_bits(&vol, &runs, ClusterState::Free)
                    .map_err(|e| fail(Checked::Bitmap, e))?,
            ),
        ];
        for d in &dirs {
            reports.push((
                Checked::EditedDirectory,
                check_directory(&vol, *d).map_err(|e| fail(Checked::EditedDirectory, e))?,
            ));
        }
        // The side indexes the delete removed keys from, read again from scratch: nothing may
        // still name a freed record there (its number is reused by the next file created).
        let sides = side_indexes_edited(&mine);
        if !sides.is_empty() {
            reports.push((
                Checked::SideIndexes,
                check_side_indexes(&vol, &sides, &freed)
                    .map_err(|e| fail(Checked::SideIndexes, e))?,
            ));
        }
        for (checked, r) in reports {
            if !r.is_clean() {
                return Err(failed(FixFailure::CheckFoundProblems {
                    volume: name,
                    checked,
                    problems: r.problems.into_iter().take(5).collect(),
                }));
            }
        }
        checks.push(PlanCheck::InvariantsPass {
            volume: name.clone(),
            records: records.len(),
            freed_runs: runs.len(),
            directories: dirs.len(),
        });
        if !sides.is_empty() {
            checks.push(PlanCheck::SideIndexesClean {
                volume: name.clone(),
                indexes: sides.iter().map(|s| s.label()).collect(),
            });
        }
        if journals_replayed.iter().any(|r| r.volume == vi) {
            let state = vol
                .summary()
                .map_err(|e| {
                    failed(FixFailure::PatchedVolumeUnreadable {
                        volume: name.clone(),
                        error: NtfsProblem::from(e),
                    })
                })?
                .log
                .state;
            if !state.is_clean() {
                return Err(failed(FixFailure::Internal {
                    detail: format!(
                        "{name}: after the journal replay the journal is {}",
                        state.describe()
                    ),
                }));
            }
            checks.push(PlanCheck::JournalClean { volume: name });
        }
    }
    if matches_after != 0 {
        return Err(failed(FixFailure::StillMatches {
            count: matches_after,
        }));
    }
    // For the explanation, a replaying plan is also described as its two steps, each against
    // the layer below it: the merged patches name a byte both change by the replay alone, which
    // would hide what the deletions change on the replayed volume.
    let steps = if replay_changes.is_empty() {
        None
    } else {
        Some(PlanSteps {
            replay: diff_patches(&replayed, container, &replay_changes)?,
            fix: diff_patches(&overlay, &replayed, &changes)?,
        })
    };
    // The replay's writes first: a byte both change is labelled with the replay's structure.
    let all_changes: Vec<(u64, Change)> = replay_changes.into_iter().chain(changes).collect();
    let patches = diff_patches(&overlay, container, &all_changes)?;
    Ok(Plan {
        deletions,
        journals_discarded,
        journals_replayed,
        journals_left,
        journal_overlaps,
        patches,
        steps,
        encrypted_sectors: Vec::new(),
        encrypted_volumes: Vec::new(),
        verification: Verification {
            matches_after,
            checks,
            ownership,
        },
    })
}

/// Refuses a plan that discards the journal of `vol` when `$MFT` holds a file matching `rule` in
/// the rule's directory whose record is in use by its header but free in `$MFT:$BITMAP` and
/// listed by no index (the lookups and the unlisted-file scans, which skip free stretches of the
/// bitmap, do not see it). That is a creation the crash interrupted: Windows, replaying the
/// journal, would finish or take it back, but after the discard chkdsk runs at the next boot and
/// may link the record back into the folder, and the file would come back.
///
/// Refused rather than deleted: freeing the record would be a guess at what the lost journal
/// held (whether the creation was to be finished, and whose its clusters' `$Bitmap` bits are),
/// made on a volume whose record and bitmap already disagree. chkdsk run first (from Windows
/// Recovery, where Windows replays the journal itself) puts the file back where the rule finds
/// and deletes it like any other.
///
/// `found` are the records of the rule's directory that are in use by their header but free in
/// `$MFT:$BITMAP`, as the ownership proof's pass over `$MFT` found them.
fn refuse_if_chkdsk_would_restore<R: ReadAt>(
    vol: &Volume<R>,
    found: &[FreeRecordInUse],
    result: &crate::inspect::RuleResult,
    rule: &Rule,
    name: &VolumeName,
) -> Result<(), FixError> {
    // No rule's directory, no folder for chkdsk to put a file back into at the rule's path.
    let Some(directory) = result.directory_record else {
        return Ok(());
    };
    let on_volume = |e: NtfsError| ntfs_error(name, None, e);
    if found.is_empty() {
        return Ok(());
    }
    let upcase = vol.upcase().map_err(on_volume)?;
    let pattern: Vec<u16> = rule.pattern.encode_utf16().collect();
    // A record the folder lists is one the rule already found by its name; this check is about
    // the ones no lookup sees.
    let listed = DirectoryListing::read(vol, directory, &result.directory).map_err(on_volume)?;
    let files: Vec<RestorableFile> = found
        .iter()
        .filter(|r| !listed.indexed.contains(&r.record))
        // The rule leaves directories named like its files alone; so does this check.
        .filter(|r| !r.is_directory)
        .filter_map(|r| {
            r.names
                .iter()
                .filter(|k| k.parent.record == directory)
                .filter(|k| k.namespace != kaifuku_ntfs::Namespace::Dos)
                .find(|k| upcase.glob_match(&pattern, &k.name))
                .map(|k| RestorableFile {
                    record: r.record,
                    name: k.name_string(),
                })
        })
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    Err(FixError::Refused {
        refusal: FixRefusal::ChkdskWouldRestore {
            volume: name.clone(),
            directory: result.directory.clone(),
            files,
        },
    })
}

/// Whether the journal of volume `vi`, which cannot be replayed, can be left for Windows after
/// `deletions`: every pending update is attributed, and none touches the deleted files' records,
/// their directories' records or index blocks, or the `$MFT:$BITMAP` and `$Bitmap` pages the
/// deletions write (the journal's file-record updates are per record, as Windows redoes them, so
/// another record in the same `$MFT` cluster does not count). A deletion that edits a side index
/// (`$ObjId`, `$Reparse`) is not left: those writes are not in the footprint. Returns the number
/// of transactions Windows will finish or take back.
fn leave_to_windows(
    journal: Option<&JournalReport>,
    deletions: &[PlannedDeletion],
    vi: usize,
) -> Option<u64> {
    let Some(JournalReport::Analysed { journal }) = journal else {
        return None;
    };
    if journal.unresolved > 0 {
        return None;
    }
    let mut fix = FixFootprint::default();
    for d in deletions.iter().filter(|d| d.volume == vi) {
        if !d.outcome.side_indexes.is_empty() {
            return None;
        }
        fix.file_records.insert(d.outcome.record);
        fix.file_records.insert(d.outcome.directory_record);
        fix.directories.insert(d.outcome.directory_record);
        fix.mft_bits.insert(d.outcome.record);
        fix.cluster_runs
            .extend(d.outcome.freed_runs.iter().copied());
    }
    (journal_overlap(journal, &fix) == JournalOverlap::NoOverlap)
        .then_some(journal.transactions_committed + journal.transactions_uncommitted)
}

/// The side indexes (`$ObjId:$O`, `$Reparse:$R`) any of `deletions` removed a key from.
pub(crate) fn side_indexes_edited(deletions: &[&PlannedDeletion]) -> Vec<SideIndex> {
    SideIndex::ALL
        .into_iter()
        .filter(|s| {
            let label = s.label();
            deletions
                .iter()
                .any(|d| d.outcome.side_indexes.contains(&label))
        })
        .collect()
}

/// Bytes closer than this inside one structure are reported as one patch.
const MERGE_GAP: u64 = 8;

/// Turns logged writes into patches that hold exactly the bytes that differ from the image,
/// each labelled with the first structure written there. Fills (the journal reset) are kept as
/// fills: they are not compared byte by byte, so the old journal is never read.
fn diff_patches<N: ReadAt, O: ReadAt>(
    new_view: &N,
    old_view: &O,
    changes: &[(u64, Change)],
) -> Result<Vec<Patch<ChangedStructure>>, FixError> {
    let read_failed = |e: std::io::Error| {
        failed(FixFailure::ReadFailed {
            detail: e.to_string(),
        })
    };
    let mut patches: Vec<Patch<ChangedStructure>> = Vec::new();
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
    let mut ranges: Vec<(u64, u64, &ChangedStructure)> = changes
        .iter()
        .filter(|(_, c)| c.fill.is_none())
        .map(|(base, c)| (base + c.offset, base + c.offset + c.len, &c.label))
        .collect();
    // A stable sort: at one offset the first change listed names the bytes.
    ranges.sort_by_key(|r| r.0);
    let mut covered_to = 0u64;
    for (start, end, label) in ranges {
        let start = start.max(covered_to);
        if start >= end {
            continue;
        }
        if fills.iter().any(|&(fs, fe)| start < fe && fs < end) {
            return Err(failed(FixFailure::PatchOverlapsJournalReset {
                label: label.clone(),
            }));
        }
        let len = (end - start) as usize;
        let mut new = vec![0u8; len];
        new_view.read_at(start, &mut new).map_err(read_failed)?;
        let mut old = vec![0u8; len];
        old_view.read_at(start, &mut old).map_err(read_failed)?;
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
                label: label.clone(),
            });
            i = run_end;
        }
        covered_to = end;
    }
    patches.sort_by_key(|p| p.offset);
    Ok(patches)
}

#[cfg(test)]
mod tests {
    use super::{plan_inspected, FixError, FixFailure, FixOptions};
    use crate::inspect::{inspect_with, Unlisted};
    use crate::rule::{Rule, RuleSet};
    use kaifuku_io::ReadAt;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    /// A fixture image read with `pread`.
    struct Image(std::fs::File, u64);

    impl ReadAt for Image {
        fn size(&self) -> u64 {
            self.1
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            kaifuku_io::check_range(offset, buf.len(), self.1)?;
            self.0.read_exact_at(buf, offset)
        }
    }

    fn fixture(name: &str) -> Image {
        let dir = std::env::var_os("KAIFUKU_FIXTURES").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/out/fixtures"),
            PathBuf::from,
        );
        let path = dir.join(name);
        let file = std::fs::File::open(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run `python3 tests/make-fixtures.py {}` (test.sh does)",
                path.display(),
                dir.display()
            )
        });
        let size = file.metadata().unwrap().len();
        Image(file, size)
    }

    /// Inspect never runs a rule whose build gate fails, so its matches can only reach the plan
    /// through a bug; the plan refuses them as an internal failure instead of deleting them.
    /// (gpt-win.raw has no `SOFTWARE` hive: its build is unknown.)
    #[test]
    fn a_gated_rules_deletion_where_the_gate_fails_is_an_internal_failure() {
        let image = fixture("gpt-win.raw");
        let ungated = Rule::crowdstrike_2024_07_19();
        let report = inspect_with(&image, &ungated, Unlisted::Scan);
        assert_eq!(report.outcome, crate::inspect::Outcome::Matches);
        // The same rule, gated: as if inspect had ignored the gate.
        let mut gated = ungated.clone();
        gated.min_windows_build = Some(crate::rule::TXR_MIN_WINDOWS_BUILD);
        let opened = kaifuku_container::open(&image).unwrap();
        let err = plan_inspected(
            &opened,
            &report,
            &RuleSet::from(gated),
            &FixOptions::default(),
        )
        .unwrap_err();
        match err {
            FixError::Failed {
                failure: FixFailure::Internal { detail },
            } => assert!(
                detail.contains("crowdstrike-2024-07-19") && detail.contains("build unknown"),
                "{detail}"
            ),
            other => panic!("{other:?}"),
        }
        // Ungated, the same report plans.
        plan_inspected(
            &opened,
            &report,
            &RuleSet::from(ungated),
            &FixOptions::default(),
        )
        .unwrap();
    }
}
