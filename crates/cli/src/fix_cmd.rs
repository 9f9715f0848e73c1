//! `kaifuku fix`: plan in the core, then write the patched image (same container format) next to
//! the original, never over it unless `--in-place` was asked for with an undo file.

use crate::report::size;
use crate::source::FileSource;
use kaifuku_io::{BlockCache, CacheConfig, Counted};
use kaifuku_rescue::plan::{plan_fix, FixError, FixOptions, Plan};
use kaifuku_rescue::Rule;
use std::path::Path;

pub const EXIT_FIXED: u8 = 0;
pub const EXIT_NOTHING: u8 = 1;
pub const EXIT_REFUSED: u8 = 2;
pub const EXIT_ERROR: u8 = 3;

pub struct FixArgs<'a> {
    pub image: &'a Path,
    pub output: Option<&'a Path>,
    pub undo: Option<&'a Path>,
    pub in_place: bool,
    pub dry_run: bool,
    pub json: bool,
    pub options: FixOptions,
}

pub fn run(args: &FixArgs, rule: &Rule) -> u8 {
    if args.in_place && args.undo.is_none() && !args.dry_run {
        eprintln!(
            "kaifuku: --in-place needs --undo FILE: the original bytes are saved there first"
        );
        return EXIT_ERROR;
    }
    if !args.in_place && args.output.is_none() && !args.dry_run {
        eprintln!("kaifuku: say where to write the fixed image with -o OUT (or use --dry-run to only show the plan)");
        return EXIT_ERROR;
    }
    if let Some(out) = args.output {
        if same_file(args.image, out) {
            eprintln!("kaifuku: the output must not be the input; use --in-place --undo FILE to edit the image itself");
            return EXIT_ERROR;
        }
    }
    let source = match FileSource::open(args.image) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kaifuku: cannot open {}: {e}", args.image.display());
            return EXIT_ERROR;
        }
    };
    let counted = Counted::new(source);
    let cache = BlockCache::new(&counted, CacheConfig::default());
    let (report, plan) = match plan_fix(&cache, rule, &args.options) {
        Ok(p) => p,
        Err(FixError::NothingToFix(why)) => {
            println!("Nothing to fix: {why}");
            return EXIT_NOTHING;
        }
        Err(FixError::Refused(why)) => {
            eprintln!("kaifuku: refused: {why}");
            return EXIT_REFUSED;
        }
        Err(FixError::Failed(why)) => {
            eprintln!("kaifuku: {why}");
            return EXIT_ERROR;
        }
    };
    let container = match kaifuku_container::open(&cache) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kaifuku: {e}");
            return EXIT_ERROR;
        }
    };
    let output = match container.plan_output(&plan.patches) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("kaifuku: cannot map the changes into the image file: {e}");
            return EXIT_ERROR;
        }
    };
    let stats = counted.stats();
    if args.json {
        let doc = serde_json::json!({
            "image": args.image.display().to_string(),
            "dry_run": args.dry_run,
            "report": report,
            "plan": plan,
            "file_writes": output.writes.iter().map(|w| serde_json::json!({
                "file_offset": w.file_offset, "len": w.bytes.len(), "label": w.label
            })).chain(output.fills.iter().map(|f| serde_json::json!({
                "file_offset": f.file_offset, "len": f.len, "label": f.label, "fill": f.byte
            }))).collect::<Vec<_>>(),
            "reads": stats,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        );
    } else {
        print!("{}", describe(&plan, stats));
    }
    if args.dry_run {
        return EXIT_FIXED;
    }
    let result = if args.in_place {
        crate::output::write_in_place(
            args.image,
            &output,
            args.undo.expect("checked above"),
            counted.inner(),
        )
    } else {
        crate::output::write_copy(
            args.image,
            args.output.expect("checked above"),
            &output,
            args.undo,
            counted.inner(),
        )
    };
    match result {
        Ok(()) => {
            if !args.json {
                match args.output {
                    Some(o) => println!("Wrote       {}", o.display()),
                    None => println!("Patched     {} in place", args.image.display()),
                }
                if let Some(u) = args.undo {
                    println!(
                        "Undo file   {} (restore with: kaifuku undo IMAGE {})",
                        u.display(),
                        u.display()
                    );
                }
            }
            EXIT_FIXED
        }
        Err(e) => {
            eprintln!("kaifuku: writing failed: {e}");
            EXIT_ERROR
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

pub fn describe(plan: &Plan, stats: kaifuku_io::ReadStats) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for d in &plan.deletions {
        let what = if d.outcome.record_freed {
            format!(
                "file deleted, MFT record {} freed, {} cluster(s) freed",
                d.outcome.record, d.outcome.clusters_freed
            )
        } else {
            format!(
                "name(s) removed; MFT record {} keeps {} other link(s)",
                d.outcome.record,
                d.outcome.remaining_links.unwrap_or(0)
            )
        };
        let _ = writeln!(o, "Delete      {}", d.path);
        let _ = writeln!(
            o,
            "            {what}; index entries removed: {}",
            d.outcome.removed_names.join(", ")
        );
        for s in &d.outcome.side_indexes {
            let _ = writeln!(o, "            key removed from {s}");
        }
    }
    if !plan.journals_discarded.is_empty() {
        let _ = writeln!(o, "Journal     reset ($LogFile filled with 0xFF) and volume marked dirty: Windows runs chkdsk at the next boot");
    }
    let _ = writeln!(
        o,
        "Patches     {} range(s), {} changed (--json lists every range)",
        plan.patches.len(),
        size(plan.bytes_changed())
    );
    // One line per structure, in disk order.
    let mut seen: Vec<(&str, u64, usize, u64)> = Vec::new();
    for p in &plan.patches {
        match seen.iter_mut().find(|s| s.0 == p.label) {
            Some(s) => {
                s.2 += 1;
                s.3 += p.len();
            }
            None => seen.push((&p.label, p.offset, 1, p.len())),
        }
    }
    for (label, first, n, bytes) in seen {
        let _ = writeln!(
            o,
            "  at byte {first:>14}  {n:>3} range(s) {bytes:>8} B  {label}"
        );
    }
    for c in &plan.verification.checks {
        let _ = writeln!(o, "Verified    {c}");
    }
    let _ = writeln!(
        o,
        "Read        {} in {} calls",
        size(stats.bytes),
        stats.calls
    );
    o
}
