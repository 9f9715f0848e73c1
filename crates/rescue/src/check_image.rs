//! `check_image`: the whole-image walk of `kaifuku check` — container, partitions, and the
//! whole-volume invariant checker on every NTFS volume — with the same judgement of damage as
//! [`crate::inspect`]: what inspect refuses as damaged, the check reports as an error too.

use crate::inspect::{hiding_damage, unreadable_windows_partition};
pub use crate::vocabulary::CheckOutcome;
use crate::vocabulary::{
    ContainerProblem, NtfsProblem, PartitionProblem, Reason, VolumeName, VolumeProblem,
};
use kaifuku_io::ReadAt;
use kaifuku_ntfs::check::{check_volume, CheckReport};
use kaifuku_ntfs::{boot_kind, BootKind, Volume};
use serde::Serialize;

/// What the check took a volume for; serialised (and printed) as a lowercase code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckedFileSystem {
    /// NTFS: checked.
    Ntfs,
    /// BitLocker-encrypted: cannot be checked.
    Bitlocker,
    /// Anything else (another file system, an unreadable or unrecognised first sector): not
    /// checked.
    Other,
}

impl std::fmt::Display for CheckedFileSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckedFileSystem::Ntfs => "ntfs",
            CheckedFileSystem::Bitlocker => "bitlocker",
            CheckedFileSystem::Other => "other",
        })
    }
}

/// One volume of the image and what the check found there.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeCheck {
    /// Partition number, or `None` for a bare volume.
    pub partition: Option<u32>,
    /// Byte offset on the virtual disk.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is NTFS (checked), BitLocker (not checked) or something else.
    pub filesystem: CheckedFileSystem,
    /// What the whole-volume checker found, when it ran.
    pub report: Option<CheckReport>,
    /// Why the volume could not be checked.
    pub error: Option<VolumeProblem>,
}

impl VolumeCheck {
    /// "partition 3", or "volume" for a bare one.
    pub fn place(&self) -> VolumeName {
        VolumeName::place(self.partition)
    }

    /// Whether the volume could not be checked for a reason that is not damage (BitLocker, an
    /// unsupported feature).
    pub fn refused(&self) -> bool {
        self.error.as_ref().is_some_and(VolumeProblem::is_refusal)
    }
}

/// The whole-image check.
#[derive(Debug, Clone, Serialize)]
pub struct ImageCheck {
    /// The container format, when it could be read.
    pub container: Option<String>,
    /// Every data partition (or the bare volume).
    pub volumes: Vec<VolumeCheck>,
    /// What the check concluded.
    pub outcome: CheckOutcome,
    /// Why the outcome is what it is.
    pub reasons: Vec<Reason>,
}

/// Checks every NTFS volume of the disk image `file`. Never fails: what goes wrong is in the
/// result.
pub fn check_image<R: ReadAt>(file: R) -> ImageCheck {
    let mut doc = ImageCheck {
        container: None,
        volumes: Vec::new(),
        outcome: CheckOutcome::Clean,
        reasons: Vec::new(),
    };
    let container = match kaifuku_container::open(file) {
        Ok(c) => c,
        Err(e) => {
            let problem = ContainerProblem::from(&e);
            doc.outcome = if problem.is_unsupported() {
                CheckOutcome::Refused
            } else {
                CheckOutcome::Error
            };
            doc.reasons.push(Reason::Container { problem });
            return doc;
        }
    };
    doc.container = Some(container.info().format.to_string());
    let table = match kaifuku_partition::read_partitions(&container) {
        Ok(t) => t,
        Err(e) => {
            doc.outcome = CheckOutcome::Error;
            doc.reasons.push(Reason::Partitions {
                problem: PartitionProblem::from(&e),
            });
            return doc;
        }
    };
    let bare = table.scheme == kaifuku_partition::Scheme::None;
    for p in table.data_partitions() {
        let mut v = VolumeCheck {
            partition: (!bare).then_some(p.number),
            offset: p.start,
            size: p.size,
            filesystem: CheckedFileSystem::Other,
            report: None,
            error: None,
        };
        match p.view(&container) {
            Ok(view) => check_one(&view, &p.type_code, &mut v),
            Err(e) => {
                v.error = Some(VolumeProblem::OutsideDisk {
                    partition: None,
                    detail: e.to_string(),
                })
            }
        }
        doc.volumes.push(v);
    }
    let checked = doc.volumes.iter().filter(|v| v.report.is_some()).count();
    let with_problems: Vec<Reason> = doc
        .volumes
        .iter()
        .filter_map(|v| {
            let r = v.report.as_ref()?;
            let count = r.problems.len() as u64 + r.omitted;
            (count > 0).then(|| Reason::VolumeHasProblems {
                volume: v.place(),
                count,
            })
        })
        .collect();
    let problems = |refused: bool| -> Vec<Reason> {
        doc.volumes
            .iter()
            .filter(|v| v.refused() == refused)
            .filter_map(|v| {
                Some(Reason::Volume {
                    volume: v.place(),
                    problem: v.error.clone()?,
                })
            })
            .collect()
    };
    let mut errors = problems(false);
    errors.extend(hiding_damage(&container, &table));
    let refusals = problems(true);
    doc.outcome = if !with_problems.is_empty() {
        doc.reasons.extend(with_problems);
        doc.reasons.extend(errors);
        CheckOutcome::Problems
    } else if !errors.is_empty() {
        doc.reasons.extend(errors);
        CheckOutcome::Error
    } else if !refusals.is_empty() {
        doc.reasons.extend(refusals);
        CheckOutcome::Refused
    } else if checked == 0 {
        doc.reasons.push(Reason::NoNtfsVolume);
        CheckOutcome::Refused
    } else {
        doc.reasons.push(Reason::CheckedClean { volumes: checked });
        CheckOutcome::Clean
    };
    doc
}

fn check_one<R: ReadAt>(view: &kaifuku_io::Slice<R>, type_code: &str, v: &mut VolumeCheck) {
    let mut sector = [0u8; 512];
    let read = if view.size() < 512 {
        Err(None)
    } else {
        view.read_at(0, &mut sector)
            .map_err(|e| Some(e.to_string()))
    };
    if let Err(detail) = read {
        v.error = unreadable_windows_partition(view, type_code, Err(detail));
        return;
    }
    match boot_kind(&sector) {
        None => {
            v.error = unreadable_windows_partition(view, type_code, Ok(&sector));
            return;
        }
        Some(BootKind::BitLocker) => {
            v.filesystem = CheckedFileSystem::Bitlocker;
            v.error = Some(VolumeProblem::Ntfs {
                error: NtfsProblem::BitLocker,
            });
            return;
        }
        Some(BootKind::Ntfs) => v.filesystem = CheckedFileSystem::Ntfs,
    }
    match Volume::open(view).and_then(|vol| check_volume(&vol)) {
        Ok(r) => v.report = Some(r),
        Err(e) => {
            v.error = Some(VolumeProblem::Ntfs {
                error: NtfsProblem::from(e),
            })
        }
    }
}
