//! `kaifuku check IMAGE [--json]`: runs the whole-volume NTFS invariant checker on every NTFS
//! volume of an image and reports what it finds. Changes nothing.

use crate::exit::Exit;
use crate::report::size;
use crate::source::FileSource;
use kaifuku_io::{BlockCache, CacheConfig, Counted, ReadStats};
use kaifuku_ntfs::LogState;
use kaifuku_rescue::{check_image, CheckedFileSystem, ImageCheck};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

#[derive(Serialize)]
struct CheckDoc {
    image: String,
    #[serde(flatten)]
    check: ImageCheck,
    /// Seconds the whole check took.
    seconds: f64,
    reads: ReadStats,
}

/// Runs `check` and prints the result; returns how kaifuku exits.
pub fn run(image: &Path, json: bool) -> Exit {
    let source = match FileSource::open(image) {
        Ok(s) => s,
        Err(e) => return crate::source::open_failed(image, &e),
    };
    let counted = Counted::new(source);
    // The check reads all of $MFT and every index: a larger cache than inspect's pays off.
    let cfg = CacheConfig {
        block_size: 64 * 1024,
        capacity_blocks: 256,
        max_readahead_blocks: 16,
    };
    let cache = BlockCache::new(&counted, cfg);
    let started = Instant::now();
    let check = check_image(&cache);
    let doc = CheckDoc {
        image: image.display().to_string(),
        check,
        seconds: started.elapsed().as_secs_f64(),
        reads: counted.stats(),
    };
    let shown = if json {
        serde_json::to_string_pretty(&doc).expect("report serialises") + "\n"
    } else {
        text(&doc)
    };
    if let Err(e) = crate::stdio::out(&shown) {
        crate::stdio::stdout_failed(&e, "the report is incomplete");
        return Exit::Error;
    }
    Exit::of_check(doc.check.outcome)
}

fn text(doc: &CheckDoc) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Image       {}", doc.image);
    if let Some(c) = &doc.check.container {
        let _ = writeln!(o, "Container   {c}");
    }
    for v in &doc.check.volumes {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Volume      {} at byte {}, {}: {}",
            v.place(),
            v.offset,
            size(v.size),
            v.filesystem
        );
        if let Some(e) = &v.error {
            let _ = writeln!(
                o,
                "            {}: {e}",
                if v.refused() { "cannot check" } else { "ERROR" }
            );
        }
        let Some(r) = &v.report else {
            if v.filesystem == CheckedFileSystem::Other {
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
            let _ = writeln!(o, "            no problems found");
        } else {
            let total = r.problems.len() as u64 + r.omitted;
            let _ = writeln!(o, "            {total} PROBLEM(S):");
            for p in &r.problems {
                let _ = writeln!(o, "  - {}: {}", p.kind.label(), p.message);
            }
            if r.omitted > 0 {
                let _ = writeln!(o, "  ... and {} more of the same kinds", r.omitted);
            }
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "Outcome     {}", doc.check.outcome);
    for r in &doc.check.reasons {
        let _ = writeln!(o, "            {r}");
    }
    let _ = writeln!(
        o,
        "Read        {} in {} calls, {:.2} s",
        size(doc.reads.bytes),
        doc.reads.calls,
        doc.seconds
    );
    o
}
