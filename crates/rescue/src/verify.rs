//! Verifying a written output: the fixed image read back from scratch — whatever holds it (the
//! output file, the image fixed in place, or the picked file with the download's writes laid over
//! it) — must be what the plan promised. Both front ends run this before they call a fix done.

use crate::encryption::{Unlocker, VolumeKeys};
use crate::inspect::{inspect_opened, InspectReport, Outcome, Unlisted};
use crate::plan::{side_indexes_edited, Plan};
use crate::rule::RuleSet;
use crate::vocabulary::{ContainerProblem, NtfsProblem};
pub use crate::vocabulary::{OutputCheck, VerifyError, VerifyFailure};
use kaifuku_io::{ReadAt, Slice};
use kaifuku_ntfs::Volume;

/// Re-reads `fixed` (the whole fixed image, container included) from scratch and checks it
/// against what `plan` promised for the image `report` describes.
pub fn verify_output<R: ReadAt>(
    fixed: R,
    report: &InspectReport,
    plan: &Plan,
    rules: impl Into<RuleSet>,
) -> Result<Vec<OutputCheck>, VerifyError> {
    verify_output_with_keys(fixed, report, plan, rules, &VolumeKeys::none())
}

/// [`verify_output`] for an image with BitLocker volumes: they are unlocked afresh with `keys`
/// from the output itself (its metadata, its protectors), and checked decrypted.
pub fn verify_output_with_keys<R: ReadAt>(
    fixed: R,
    report: &InspectReport,
    plan: &Plan,
    rules: impl Into<RuleSet>,
    keys: &VolumeKeys,
) -> Result<Vec<OutputCheck>, VerifyError> {
    verify_output_as(fixed, report, plan, rules, keys, None)
}

/// The container an output written in another format than the input's must open as: its format
/// and virtual size (a fixed VHD made from any input, whose disk is rounded up to a whole MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvertedContainer {
    /// The output's container format.
    pub format: kaifuku_container::Format,
    /// The output's virtual size: at least the input's; what lies past it must read as zeros.
    pub virtual_size: u64,
}

/// [`verify_output_with_keys`] for an output that is the input's container (`converted: None`) or
/// the virtual disk written in another container (`converted`): the volumes must then be found at
/// the same places of the (possibly larger) disk.
pub fn verify_output_as<R: ReadAt>(
    fixed: R,
    report: &InspectReport,
    plan: &Plan,
    rules: impl Into<RuleSet>,
    keys: &VolumeKeys,
    converted: Option<ConvertedContainer>,
) -> Result<Vec<OutputCheck>, VerifyError> {
    let rules = rules.into();
    let failed = VerifyError;
    let mut checks = Vec::new();
    let container = kaifuku_container::open(&fixed).map_err(|e| {
        failed(VerifyFailure::ContainerDoesNotOpen {
            problem: ContainerProblem::from(&e),
        })
    })?;
    let before = report
        .container
        .as_ref()
        .ok_or(failed(VerifyFailure::NoOriginalContainer))?;
    let info = container.info();
    let (want_format, want_size) = match converted {
        Some(c) => (c.format, c.virtual_size),
        None => (before.format, before.virtual_size),
    };
    if info.format != want_format
        || info.virtual_size != want_size
        || info.virtual_size < before.virtual_size
    {
        return Err(failed(VerifyFailure::ContainerDiffers {
            format: info.format,
            virtual_size: info.virtual_size,
            original_format: want_format,
            original_virtual_size: want_size,
        }));
    }
    checks.push(match converted {
        None => OutputCheck::ContainerSame {
            format: info.format,
            virtual_size: info.virtual_size,
        },
        Some(_) => OutputCheck::ContainerConverted {
            format: info.format,
            virtual_size: info.virtual_size,
            original_format: before.format,
            original_virtual_size: before.virtual_size,
        },
    });
    // The plan's ownership proof already scanned `$MFT` for files the directory did not list.
    let mut unlocker = Unlocker::new(keys.clone());
    let after = inspect_opened(
        Ok(&container),
        &rules,
        Unlisted::AlreadyProven,
        &mut unlocker,
    );
    let disk = unlocker.decrypted(&container);
    let total_after: usize = after.matches().count();
    for (vi, v) in report.volumes.iter().enumerate() {
        let deletions: Vec<_> = plan.deletions.iter().filter(|d| d.volume == vi).collect();
        let reset = plan.journals_discarded.contains(&vi);
        let replayed = plan.journals_replayed.iter().any(|r| r.volume == vi);
        if deletions.is_empty() && !reset && !replayed {
            continue;
        }
        let name = v.name();
        let av = after
            .volumes
            .iter()
            .find(|a| a.offset == v.offset)
            .ok_or_else(|| {
                failed(VerifyFailure::VolumeGone {
                    volume: name.clone(),
                })
            })?;
        if let Some(e) = &av.error {
            return Err(failed(VerifyFailure::VolumeUnreadable {
                volume: name,
                problem: e.clone(),
            }));
        }
        let ntfs = |e: kaifuku_ntfs::NtfsError| {
            failed(VerifyFailure::Ntfs {
                volume: name.clone(),
                error: NtfsProblem::from(e),
            })
        };
        // Every rule of the set ran again on the output; what they find is counted together.
        let count: usize = av.results().map(|r| r.matches.len()).sum();
        checks.push(OutputCheck::RuleFinds { volume: vi, count });
        let view = Slice::new(&disk, v.offset, v.size).map_err(|e| {
            failed(VerifyFailure::Internal {
                detail: e.to_string(),
            })
        })?;
        let vol = Volume::open(&view).map_err(ntfs)?;
        let mut freed = Vec::new();
        for d in &deletions {
            let rec = vol.read_record(d.outcome.record).map_err(ntfs)?;
            if d.outcome.record_freed {
                if rec.in_use() {
                    return Err(failed(VerifyFailure::RecordInUse {
                        volume: name,
                        record: d.outcome.record,
                    }));
                }
                freed.push(d.outcome.record);
                checks.push(OutputCheck::RecordFree {
                    volume: vi,
                    record: d.outcome.record,
                });
            }
        }
        let mut problems = Vec::new();
        let mut dirs: Vec<u64> = deletions
            .iter()
            .map(|d| d.outcome.directory_record)
            .collect();
        dirs.sort_unstable();
        dirs.dedup();
        for dir in dirs {
            let r = kaifuku_ntfs::check::check_directory(&vol, dir).map_err(ntfs)?;
            problems.extend(r.problems);
        }
        if !freed.is_empty() {
            let r = kaifuku_ntfs::check::check_records(&vol, &freed).map_err(ntfs)?;
            problems.extend(r.problems);
        }
        // The side indexes the delete removed keys from, read again: sound, and nothing in them
        // still names a freed record.
        let sides = side_indexes_edited(&deletions);
        if !sides.is_empty() {
            let r = kaifuku_ntfs::check::check_side_indexes(&vol, &sides, &freed).map_err(ntfs)?;
            problems.extend(r.problems);
        }
        if !problems.is_empty() {
            problems.truncate(5);
            return Err(failed(VerifyFailure::CheckerProblems {
                volume: name,
                problems,
            }));
        }
        checks.push(OutputCheck::Invariants { volume: vi });
        if !sides.is_empty() {
            checks.push(OutputCheck::SideIndexes {
                volume: vi,
                indexes: sides.iter().map(|s| s.label()).collect(),
            });
        }
        if reset {
            let n = av.ntfs.as_ref().ok_or_else(|| {
                failed(VerifyFailure::NotNtfs {
                    volume: name.clone(),
                })
            })?;
            if !n.log.state.is_clean() || !n.dirty {
                return Err(failed(VerifyFailure::JournalNotReset {
                    volume: name,
                    state: n.log.state,
                    dirty: n.dirty,
                }));
            }
            checks.push(OutputCheck::JournalReset { volume: vi });
        }
        if replayed {
            let n = av.ntfs.as_ref().ok_or_else(|| {
                failed(VerifyFailure::NotNtfs {
                    volume: name.clone(),
                })
            })?;
            if !n.log.state.is_clean() {
                return Err(failed(VerifyFailure::JournalNotReplayed {
                    volume: name,
                    state: n.log.state,
                }));
            }
            checks.push(OutputCheck::JournalReplayed { volume: vi });
        }
    }
    if total_after != 0 || after.outcome == Outcome::Error {
        return Err(failed(VerifyFailure::StillMatches {
            count: total_after,
            reasons: after.reasons,
        }));
    }
    Ok(checks)
}
