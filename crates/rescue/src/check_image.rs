//! `check_image`: the whole-image walk of `kaifuku check` — container, partitions, and the
//! whole-volume invariant checker on every NTFS volume — with the same judgement of damage as
//! [`crate::inspect`]: what inspect refuses as damaged, the check reports as an error too.

use crate::inspect::{hiding_damage, unreadable_windows_partition};
use kaifuku_io::ReadAt;
use kaifuku_ntfs::check::{check_volume, CheckReport};
use kaifuku_ntfs::{boot_kind, BootKind, NtfsError, Volume};
use serde::Serialize;

/// What the check concluded, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckOutcome {
    /// Every NTFS volume was checked and no problem was found.
    Clean,
    /// At least one volume has problems.
    Problems,
    /// Nothing could be checked for a reason that is not damage (BitLocker, unsupported format,
    /// no NTFS volume).
    Refused,
    /// The image or a volume could not be read.
    Error,
}

/// One volume of the image and what the check found there.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeCheck {
    /// Partition number, or `None` for a bare volume.
    pub partition: Option<u32>,
    pub offset: u64,
    pub size: u64,
    /// "ntfs", "bitlocker" or "other".
    pub filesystem: String,
    pub report: Option<CheckReport>,
    pub error: Option<String>,
    #[serde(skip)]
    pub refused: bool,
}

impl VolumeCheck {
    /// "partition 3", or "volume" for a bare one.
    pub fn place(&self) -> String {
        match self.partition {
            Some(n) => format!("partition {n}"),
            None => "volume".into(),
        }
    }
}

/// The whole-image check.
#[derive(Debug, Clone, Serialize)]
pub struct ImageCheck {
    /// The container format, when it could be read.
    pub container: Option<String>,
    pub volumes: Vec<VolumeCheck>,
    pub outcome: CheckOutcome,
    pub reasons: Vec<String>,
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
            doc.outcome = if e.is_unsupported() {
                CheckOutcome::Refused
            } else {
                CheckOutcome::Error
            };
            doc.reasons.push(e.to_string());
            return doc;
        }
    };
    doc.container = Some(container.info().format.to_string());
    let table = match kaifuku_partition::read_partitions(&container) {
        Ok(t) => t,
        Err(e) => {
            doc.outcome = CheckOutcome::Error;
            doc.reasons.push(e.to_string());
            return doc;
        }
    };
    let bare = table.scheme == kaifuku_partition::Scheme::None;
    for p in table.data_partitions() {
        let mut v = VolumeCheck {
            partition: (!bare).then_some(p.number),
            offset: p.start,
            size: p.size,
            filesystem: "other".into(),
            report: None,
            error: None,
            refused: false,
        };
        match p.view(&container) {
            Ok(view) => check_one(&view, &p.type_code, &mut v),
            Err(e) => v.error = Some(format!("the partition lies outside the disk: {e}")),
        }
        doc.volumes.push(v);
    }
    let checked = doc.volumes.iter().filter(|v| v.report.is_some()).count();
    let with_problems: Vec<String> = doc
        .volumes
        .iter()
        .filter_map(|v| {
            let r = v.report.as_ref()?;
            let n = r.problems.len() as u64 + r.omitted;
            (n > 0).then(|| format!("{}: {n} problem(s)", v.place()))
        })
        .collect();
    let mut errors: Vec<String> = doc
        .volumes
        .iter()
        .filter(|v| !v.refused)
        .filter_map(|v| Some(format!("{}: {}", v.place(), v.error.as_ref()?)))
        .collect();
    errors.extend(hiding_damage(&container, &table));
    let refusals: Vec<String> = doc
        .volumes
        .iter()
        .filter(|v| v.refused)
        .filter_map(|v| Some(format!("{}: {}", v.place(), v.error.as_ref()?)))
        .collect();
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
        doc.reasons.push("the image holds no NTFS volume".into());
        CheckOutcome::Refused
    } else {
        doc.reasons.push(format!(
            "{checked} NTFS volume(s) checked, no problem found"
        ));
        CheckOutcome::Clean
    };
    doc
}

fn check_one<R: ReadAt>(view: &kaifuku_io::Slice<R>, type_code: &str, v: &mut VolumeCheck) {
    let mut sector = [0u8; 512];
    if view.size() < 512 || view.read_at(0, &mut sector).is_err() {
        v.error = unreadable_windows_partition(view, type_code, None);
        return;
    }
    match boot_kind(&sector) {
        None => {
            v.error = unreadable_windows_partition(view, type_code, Some(&sector));
            return;
        }
        Some(BootKind::BitLocker) => {
            v.filesystem = "bitlocker".into();
            v.refused = true;
            v.error = Some(NtfsError::BitLocker.to_string());
            return;
        }
        Some(BootKind::Ntfs) => v.filesystem = "ntfs".into(),
    }
    match Volume::open(view).and_then(|vol| check_volume(&vol)) {
        Ok(r) => v.report = Some(r),
        Err(e) => {
            v.refused = matches!(e, NtfsError::Unsupported(_) | NtfsError::BitLocker);
            v.error = Some(e.to_string());
        }
    }
}
