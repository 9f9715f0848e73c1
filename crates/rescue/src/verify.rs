//! Verifying a written output: the fixed image read back from scratch — whatever holds it (the
//! output file, the image fixed in place, or the picked file with the download's writes laid over
//! it) — must be what the plan promised. Both front ends run this before they call a fix done.

use crate::inspect::{inspect_with, volume_name, InspectReport, Outcome, Unlisted};
use crate::plan::Plan;
use crate::rule::Rule;
use kaifuku_container::Format;
use kaifuku_io::{ReadAt, Slice};
use kaifuku_ntfs::Volume;
use serde::Serialize;

/// One thing the verification confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum OutputCheck {
    /// The container opens again with the same format and virtual size.
    ContainerSame { format: Format, virtual_size: u64 },
    /// The rule finds this many files on the volume (always 0 when verification passes).
    RuleFinds { volume: usize, count: usize },
    /// The deleted file's MFT record is marked free.
    RecordFree { volume: usize, record: u64 },
    /// The journal reads as clean and the dirty flag is set (chkdsk at the next boot).
    JournalReset { volume: usize },
    /// The invariant checker found nothing on the changed records and the directory.
    Invariants { volume: usize },
}

impl std::fmt::Display for OutputCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputCheck::ContainerSame {
                format,
                virtual_size,
            } => write!(
                f,
                "the output opens as the same {format} of {virtual_size} bytes"
            ),
            OutputCheck::RuleFinds { count, .. } => {
                write!(f, "the rule finds {count} file(s) in the output")
            }
            OutputCheck::RecordFree { record, .. } => {
                write!(f, "MFT record {record} is free in the output")
            }
            OutputCheck::JournalReset { .. } => write!(
                f,
                "the journal is reset and the volume marked for chkdsk in the output"
            ),
            OutputCheck::Invariants { .. } => write!(
                f,
                "the invariant checker finds nothing wrong with the changed records and directory in the output"
            ),
        }
    }
}

/// Why an output did not verify (nothing about it can be trusted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the output does not verify: {0}")]
pub struct VerifyError(pub String);

/// Re-reads `fixed` (the whole fixed image, container included) from scratch and checks it
/// against what `plan` promised for the image `report` describes.
pub fn verify_output<R: ReadAt>(
    fixed: R,
    report: &InspectReport,
    plan: &Plan,
    rule: &Rule,
) -> Result<Vec<OutputCheck>, VerifyError> {
    let failed = |d: String| VerifyError(d);
    let mut checks = Vec::new();
    let container = kaifuku_container::open(&fixed).map_err(|e| failed(e.to_string()))?;
    let before = report
        .container
        .as_ref()
        .ok_or_else(|| failed("the original image had no readable container".into()))?;
    let info = container.info();
    if info.format != before.format || info.virtual_size != before.virtual_size {
        return Err(failed(format!(
            "it opens as {} of {} bytes, the original as {} of {} bytes",
            info.format, info.virtual_size, before.format, before.virtual_size
        )));
    }
    checks.push(OutputCheck::ContainerSame {
        format: info.format,
        virtual_size: info.virtual_size,
    });
    // The plan's ownership proof already scanned `$MFT` for files the directory did not list.
    let after = inspect_with(&container, rule, Unlisted::AlreadyProven);
    let total_after: usize = after.matches().count();
    for (vi, v) in report.volumes.iter().enumerate() {
        let deletions: Vec<_> = plan.deletions.iter().filter(|d| d.volume == vi).collect();
        let reset = plan.journals_discarded.contains(&vi);
        if deletions.is_empty() && !reset {
            continue;
        }
        let name = volume_name(v);
        let av = after
            .volumes
            .iter()
            .find(|a| a.offset == v.offset)
            .ok_or_else(|| failed(format!("{name} is gone")))?;
        if let Some(e) = &av.error {
            return Err(failed(format!("{name}: {e}")));
        }
        let count = av.rule.as_ref().map_or(0, |r| r.matches.len());
        checks.push(OutputCheck::RuleFinds { volume: vi, count });
        let view = Slice::new(&container, v.offset, v.size).map_err(|e| failed(e.to_string()))?;
        let vol = Volume::open(&view).map_err(|e| failed(format!("{name}: {e}")))?;
        let mut freed = Vec::new();
        for d in &deletions {
            let rec = vol
                .read_record(d.outcome.record)
                .map_err(|e| failed(format!("{name}: {e}")))?;
            if d.outcome.record_freed {
                if rec.in_use() {
                    return Err(failed(format!(
                        "{name}: MFT record {} is still in use",
                        d.outcome.record
                    )));
                }
                freed.push(d.outcome.record);
                checks.push(OutputCheck::RecordFree {
                    volume: vi,
                    record: d.outcome.record,
                });
            }
        }
        let mut problems: Vec<String> = Vec::new();
        let mut dirs: Vec<u64> = deletions
            .iter()
            .map(|d| d.outcome.directory_record)
            .collect();
        dirs.sort_unstable();
        dirs.dedup();
        for dir in dirs {
            let r = kaifuku_ntfs::check::check_directory(&vol, dir)
                .map_err(|e| failed(format!("{name}: {e}")))?;
            problems.extend(r.problems.into_iter().map(|p| p.message));
        }
        if !freed.is_empty() {
            let r = kaifuku_ntfs::check::check_records(&vol, &freed)
                .map_err(|e| failed(format!("{name}: {e}")))?;
            problems.extend(r.problems.into_iter().map(|p| p.message));
        }
        if !problems.is_empty() {
            problems.truncate(5);
            return Err(failed(format!(
                "{name}: the NTFS checker finds problems: {}",
                problems.join("; ")
            )));
        }
        checks.push(OutputCheck::Invariants { volume: vi });
        if reset {
            let n = av
                .ntfs
                .as_ref()
                .ok_or_else(|| failed(format!("{name}: not NTFS any more")))?;
            if !n.log.state.is_clean() || !n.dirty {
                return Err(failed(format!(
                    "{name}: after the journal reset the journal is {} and the dirty flag is {}",
                    n.log.state.describe(),
                    if n.dirty { "set" } else { "clear" }
                )));
            }
            checks.push(OutputCheck::JournalReset { volume: vi });
        }
    }
    if total_after != 0 || after.outcome == Outcome::Error {
        return Err(failed(format!(
            "the rule still finds {total_after} file(s) ({})",
            after.reasons.join("; ")
        )));
    }
    Ok(checks)
}
