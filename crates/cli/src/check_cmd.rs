//! `kaifuku check IMAGE [--json]`: runs the whole-volume NTFS invariant checker on every NTFS
//! volume of an image and reports what it finds. Changes nothing.

use crate::report::size;
use crate::source::FileSource;
use kaifuku_io::{BlockCache, CacheConfig, Counted, ReadAt, ReadStats};
use kaifuku_ntfs::check::{check_volume, CheckReport};
use kaifuku_ntfs::{boot_kind, BootKind, LogState, NtfsError, Volume};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

/// Exit code when the check found problems (0 clean, 2 refused, 3 error as elsewhere).
pub const EXIT_PROBLEMS: u8 = 4;

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

#[derive(Serialize)]
struct VolumeCheck {
    /// Partition number, or `None` for a bare volume.
    partition: Option<u32>,
    offset: u64,
    size: u64,
    /// "ntfs", "bitlocker" or "other".
    filesystem: String,
    report: Option<CheckReport>,
    error: Option<String>,
    #[serde(skip)]
    refused: bool,
    seconds: f64,
}

#[derive(Serialize)]
struct CheckDoc {
    image: String,
    container: Option<String>,
    volumes: Vec<VolumeCheck>,
    outcome: CheckOutcome,
    reasons: Vec<String>,
    reads: ReadStats,
}

/// Runs `check` and prints the result; returns the exit code.
pub fn run(image: &Path, json: bool) -> u8 {
    let source = match FileSource::open(image) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kaifuku: cannot open {}: {e}", image.display());
            return crate::EXIT_ERROR;
        }
    };
    let counted = Counted::new(source);
    // The check reads all of $MFT and every index: a larger cache than inspect's pays off.
    let cfg = CacheConfig {
        block_size: 64 * 1024,
        capacity_blocks: 256,
        max_readahead_blocks: 16,
    };
    let cache = BlockCache::new(&counted, cfg);
    let mut doc = CheckDoc {
        image: image.display().to_string(),
        container: None,
        volumes: Vec::new(),
        outcome: CheckOutcome::Clean,
        reasons: Vec::new(),
        reads: ReadStats::default(),
    };
    check_image(&cache, &mut doc);
    doc.reads = counted.stats();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("report serialises")
        );
    } else {
        print!("{}", text(&doc));
    }
    match doc.outcome {
        CheckOutcome::Clean => 0,
        CheckOutcome::Problems => EXIT_PROBLEMS,
        CheckOutcome::Refused => crate::EXIT_REFUSED,
        CheckOutcome::Error => crate::EXIT_ERROR,
    }
}

fn check_image<R: ReadAt>(file: R, doc: &mut CheckDoc) {
    let container = match kaifuku_container::open(file) {
        Ok(c) => c,
        Err(e) => {
            doc.outcome = if e.is_unsupported() {
                CheckOutcome::Refused
            } else {
                CheckOutcome::Error
            };
            doc.reasons.push(e.to_string());
            return;
        }
    };
    doc.container = Some(container.info().format.to_string());
    let table = match kaifuku_partition::read_partitions(&container) {
        Ok(t) => t,
        Err(e) => {
            doc.outcome = CheckOutcome::Error;
            doc.reasons.push(e.to_string());
            return;
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
            seconds: 0.0,
        };
        let started = Instant::now();
        match p.view(&container) {
            Ok(view) => check_one(&view, &mut v),
            Err(e) => v.error = Some(format!("the partition lies outside the disk: {e}")),
        }
        v.seconds = started.elapsed().as_secs_f64();
        doc.volumes.push(v);
    }
    let checked = doc.volumes.iter().filter(|v| v.report.is_some()).count();
    let with_problems: Vec<String> = doc
        .volumes
        .iter()
        .filter_map(|v| {
            let r = v.report.as_ref()?;
            let n = r.problems.len() as u64 + r.omitted;
            (n > 0).then(|| format!("{}: {n} problem(s)", place(v)))
        })
        .collect();
    let errors: Vec<String> = doc
        .volumes
        .iter()
        .filter(|v| !v.refused)
        .filter_map(|v| Some(format!("{}: {}", place(v), v.error.as_ref()?)))
        .collect();
    let refusals: Vec<String> = doc
        .volumes
        .iter()
        .filter(|v| v.refused)
        .filter_map(|v| Some(format!("{}: {}", place(v), v.error.as_ref()?)))
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
}

fn check_one<R: ReadAt>(view: &R, v: &mut VolumeCheck) {
    let mut sector = [0u8; 512];
    if view.size() < 512 || view.read_at(0, &mut sector).is_err() {
        return;
    }
    match boot_kind(&sector) {
        None => return,
        Some(BootKind::BitLocker) => {
            v.filesystem = "bitlocker".into();
            v.refused = true;
            v.error = Some(NtfsError::BitLocker.to_string());
            return;
        }
        Some(BootKind::Ntfs) => v.filesystem = "ntfs".into(),
    }
    let result = Volume::open(view).and_then(|vol| check_volume(&vol));
    match result {
        Ok(r) => v.report = Some(r),
        Err(e) => {
            v.refused = matches!(e, NtfsError::Unsupported(_) | NtfsError::BitLocker);
            v.error = Some(e.to_string());
        }
    }
}

fn place(v: &VolumeCheck) -> String {
    match v.partition {
        Some(n) => format!("partition {n}"),
        None => "volume".into(),
    }
}

fn text(doc: &CheckDoc) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Image       {}", doc.image);
    if let Some(c) = &doc.container {
        let _ = writeln!(o, "Container   {c}");
    }
    for v in &doc.volumes {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Volume      {} at byte {}, {}: {}",
            place(v),
            v.offset,
            size(v.size),
            v.filesystem
        );
        if let Some(e) = &v.error {
            let _ = writeln!(
                o,
                "            {}: {e}",
                if v.refused { "cannot check" } else { "ERROR" }
            );
        }
        let Some(r) = &v.report else {
            if v.filesystem == "other" {
                let _ = writeln!(o, "            not NTFS, not checked");
            }
            continue;
        };
        let s = &r.stats;
        let _ = writeln!(
            o,
            "            {} of {} records in use ({} extension), {} names, {} directories, {} index entries in {} blocks",
            s.records_in_use, s.records_total, s.extension_records, s.file_names, s.directories, s.index_entries, s.index_blocks
        );
        let _ = writeln!(
            o,
            "            clusters: {} in use by files, {} marked in $Bitmap, of {}; {} object IDs, {} reparse points",
            s.clusters_in_use, s.clusters_marked, s.clusters_total, s.object_ids, s.reparse_points
        );
        if let Some(state) = &r.volume {
            let log = match &state.log {
                Some(l) if l.state == LogState::Clean && l.empty => "clean (empty)".to_string(),
                Some(l) => format!(
                    "{}{}",
                    match l.state {
                        LogState::Clean => "clean",
                        LogState::Unclean => "unclean (Windows would replay it)",
                        LogState::V2 => "version 2.0 (Windows 8 or later)",
                        LogState::Unreadable => "unreadable",
                    },
                    l.version
                        .as_ref()
                        .map(|v| format!(", v{v}"))
                        .unwrap_or_default()
                ),
                None => "not read".into(),
            };
            let dirty = match state.dirty {
                Some(true) => "SET (Windows will run chkdsk at the next boot)",
                Some(false) => "clear",
                None => "unknown",
            };
            let _ = writeln!(o, "            journal {log}; dirty flag {dirty}");
        }
        if r.is_clean() {
            let _ = writeln!(o, "            no problems found ({:.2} s)", v.seconds);
        } else {
            let total = r.problems.len() as u64 + r.omitted;
            let _ = writeln!(o, "            {total} PROBLEM(S) ({:.2} s):", v.seconds);
            for p in &r.problems {
                let _ = writeln!(o, "  - {}: {}", p.kind.label(), p.message);
            }
            if r.omitted > 0 {
                let _ = writeln!(o, "  ... and {} more of the same kinds", r.omitted);
            }
        }
    }
    let _ = writeln!(o);
    let outcome = match doc.outcome {
        CheckOutcome::Clean => "clean",
        CheckOutcome::Problems => "problems found",
        CheckOutcome::Refused => "refused",
        CheckOutcome::Error => "error",
    };
    let _ = writeln!(o, "Outcome     {outcome}");
    for r in &doc.reasons {
        let _ = writeln!(o, "            {r}");
    }
    let _ = writeln!(
        o,
        "Read        {} in {} calls",
        size(doc.reads.bytes),
        doc.reads.calls
    );
    o
}
