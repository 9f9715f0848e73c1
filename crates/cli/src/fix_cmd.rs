//! `kaifuku fix`: one `rescue::Session` inspects, plans and maps the plan into file writes; this
//! module writes the patched image (same container format, or with `--output-format vhd-fixed` a
//! new fixed VHD) next to the original, never over it unless `--in-place` was asked for with an
//! undo file, then re-opens what it wrote and has the session verify it before exiting 0. Paths are checked first (see `paths`), and nothing is
//! written once printing to stdout failed.

use crate::exit::Exit;
use crate::paths::{self, Role, Target};
use crate::report::size;
use crate::source::FileSource;
use crate::stdio;
use kaifuku_io::{BlockCache, CacheConfig, Counted, ReadAt};
use kaifuku_rescue::plan::{FixError, FixOptions, Plan};
use kaifuku_rescue::{RuleSet, Session};
use std::path::Path;

/// The fixed image's container (`--output-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The input's own container, with only the changed bytes written.
    Same,
    /// A fixed VHD of whole MiB (what Azure takes for upload), whatever the input's container.
    VhdFixed,
}

/// Why `--output-format vhd-fixed` does not go with `--in-place`.
pub const VHD_FIXED_NOT_IN_PLACE: &str = "--output-format vhd-fixed writes a new file in another \
     format, so it cannot edit the image in place: give -o OUT.vhd instead (the input stays as it \
     was and is the way back)";

/// What `kaifuku fix` was asked to do.
pub struct FixArgs<'a> {
    pub keys: kaifuku_rescue::VolumeKeys,
    pub image: &'a Path,
    pub output: Option<&'a Path>,
    pub undo: Option<&'a Path>,
    pub in_place: bool,
    /// A described VMDK's new data files are named for this name instead of the output's.
    pub data_files_named_for: Option<&'a std::ffi::OsStr>,
    pub dry_run: bool,
    pub output_format: OutputFormat,
    pub json: bool,
    pub options: FixOptions,
}

/// Plans, prints, writes and verifies the fix; returns how kaifuku exits.
pub fn run(args: &FixArgs, rule: RuleSet) -> Exit {
    // clap checks `-o` against `--in-place` and that one of `-o`, `--in-place`, `--dry-run` is
    // given; it has no way to say "--undo is needed unless --dry-run", so that is checked here.
    if args.in_place && args.undo.is_none() && !args.dry_run {
        say!("--in-place needs --undo FILE: the original bytes are saved there first");
        return Exit::Error;
    }
    let as_fixed_vhd = args.output_format == OutputFormat::VhdFixed;
    if as_fixed_vhd && args.in_place {
        say!("{VHD_FIXED_NOT_IN_PLACE}");
        return Exit::Error;
    }
    if as_fixed_vhd && args.undo.is_some() {
        say!(
            "--undo does not go with --output-format vhd-fixed: an undo file restores the image it \
             was made for, and the output is a new file in another format. Leave out --undo: the \
             input stays as it was and is the way back"
        );
        return Exit::Error;
    }
    // Every path is checked before anything is opened, planned or written.
    let image_meta = match paths::check_image(args.image) {
        Ok(m) => m,
        Err(e) => {
            say!("cannot open {}: {e}", args.image.display());
            return Exit::Error;
        }
    };
    let targets = (|| {
        let out = args
            .output
            .map(|p| paths::target(p, Role::Output).map(|t| (p, t)))
            .transpose()?;
        let undo = args
            .undo
            .map(|p| paths::target(p, Role::Undo).map(|t| (p, t)))
            .transpose()?;
        paths::refuse_overlaps(
            (args.image, &image_meta),
            out.as_ref().map(|(p, t)| (*p, t)),
            undo.as_ref().map(|(p, t)| (*p, t)),
        )?;
        if let Some((p, t)) = &undo {
            paths::refuse_existing_undo(p, t)?;
        }
        Ok::<_, String>((out, undo))
    })();
    let (out_target, undo_target) = match targets {
        Ok(t) => t,
        Err(e) => {
            say!("{e}");
            return Exit::Error;
        }
    };
    let source = match FileSource::open(args.image) {
        Ok(s) => s,
        Err(e) => return crate::source::open_failed(args.image, &e),
    };
    // A disk read through a VMware descriptor is also its data files: none may be written over,
    // and its copy's new data files must not replace anything.
    if source.descriptor().is_some() {
        if let (Some((_, t)), OutputFormat::Same, false) =
            (&out_target, args.output_format, args.dry_run)
        {
            if !matches!(t, Target::Device { .. }) {
                let free = crate::output::new_data_files(
                    t,
                    args.data_files_named_for,
                    &source
                        .descriptor()
                        .map(|d| d.extents.iter().map(|e| e.kind).collect::<Vec<_>>())
                        .unwrap_or_default(),
                );
                if let Err(e) = free {
                    say!("{e}");
                    return Exit::Error;
                }
            }
        }
        for (p, m) in source.parts().iter().map(|p| (&p.path, &p.meta)) {
            let refused = paths::refuse_overlaps(
                (p, m),
                out_target.as_ref().map(|(p, t)| (*p, t)),
                undo_target.as_ref().map(|(p, t)| (*p, t)),
            );
            if let Err(e) = refused {
                say!("{e}");
                return Exit::Error;
            }
        }
    }
    let counted = Counted::new(source);
    let cache = BlockCache::new(&counted, CacheConfig::default());
    // The container is opened once, here, for inspection, planning, the output plan and the
    // undo file's identity.
    let mut session = Session::open_with_keys(&cache, rule, args.keys.clone());
    if as_fixed_vhd {
        return run_fixed_vhd(args, &mut session, &counted, out_target.map(|(_, t)| t));
    }
    let planning = std::time::Instant::now();
    let planned = session.plan(&args.options).map(|_| ());
    let planning_ms = planning.elapsed().as_secs_f64() * 1000.0;
    if let Err(e) = planned {
        return plan_failed(e);
    }
    let (Some(fix), Some(image_identity)) = (session.planned(), session.undo_identity()) else {
        say!("the plan was lost; nothing was written — please report this");
        return Exit::Error;
    };
    let (report, plan, output) = (&fix.report, &fix.plan, &fix.output);
    // A disk read through a VMware descriptor: the writes are mapped into its data files now
    // (a sparse extent's through its grain tables), so what a data file cannot take is said
    // before the plan, also with --dry-run.
    if counted.inner().descriptor().is_some() {
        if let Err(e) = crate::output::per_file_plans(counted.inner(), output) {
            say!("{e}");
            return Exit::Error;
        }
    }
    // The output's size, when the fix changes it (a re-streamed streamOptimized VMDK).
    let output_size = output.file_size.unwrap_or(counted.size());
    // A fix that makes the file longer (the stream extended after its old end) is undone by
    // writing back the original bytes and cutting the file to its old size; one that makes it
    // shorter, or goes to a device (whose size is not the file's), cannot be.
    let to_device = matches!(&out_target, Some((_, Target::Device { .. })));
    if output.file_size.is_some()
        && undo_target.is_some()
        && (output_size < counted.size() || to_device)
    {
        say!(
            "refused: this fix re-streams the {} image {}, which an undo file cannot restore. \
             Write the fix to a new file with -o and without --undo: the input stays as it was \
             and is the way back",
            image_identity.kind,
            if to_device {
                "onto a device"
            } else {
                "into a shorter file"
            }
        );
        return Exit::Refused;
    }
    // A block device as the output is claimed (and its size checked) before anything is said
    // to be written.
    let device = match (&out_target, args.dry_run) {
        (Some((p, Target::Device { .. })), false) => {
            match crate::output::open_device(p, output_size, image_identity.kind) {
                Ok(d) => Some(d),
                Err(e) => {
                    say!("{e}");
                    return Exit::Error;
                }
            }
        }
        _ => None,
    };
    let stats = counted.stats();
    let printed = if args.json {
        let doc = serde_json::json!({
            "image": args.image.display().to_string(),
            "dry_run": args.dry_run,
            "report": report,
            "plan": plan,
            "file_writes": output.writes.iter().map(|w| serde_json::json!({
                "file_offset": w.file_offset, "len": w.bytes.len(),
                "label": w.label.to_string(), "structure": w.label
            })).chain(output.fills.iter().map(|f| serde_json::json!({
                "file_offset": f.file_offset, "len": f.len,
                "label": f.label.to_string(), "structure": f.label, "fill": f.byte
            }))).collect::<Vec<_>>(),
            "reads": stats,
            "planning_ms": planning_ms,
        });
        stdio::out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        ))
    } else {
        stdio::out(&describe(plan, report.rule.key(), stats, planning_ms))
    };
    if let Err(e) = printed {
        stdio::stdout_failed(&e, "nothing was written");
        return Exit::Error;
    }
    if args.dry_run {
        return Exit::Success;
    }
    let undo_identity = match &device {
        Some(d) => crate::output::device_identity(d, image_identity),
        None => image_identity,
    };
    let pieces = match session.undo_layout(&undo_identity) {
        // Without an undo file nothing needs its layout (and a re-streamed output has none).
        _ if undo_target.is_none() => Vec::new(),
        Some(Ok(p)) => p,
        None => {
            say!("the plan was lost; nothing was written — please report this");
            return Exit::Error;
        }
        Some(Err(e)) => {
            say!("cannot plan the undo file: {e}");
            return Exit::Error;
        }
    };
    let undo_arg = undo_target.as_ref().map(|(_, t)| (t, pieces.as_slice()));
    let result = match (&out_target, undo_arg) {
        (None, Some(u)) => {
            crate::output::write_in_place(args.image, output, u, counted.inner()).map(|()| vec![])
        }
        (Some((_, t)), u) => crate::output::write_copy(
            counted.inner(),
            t,
            args.data_files_named_for,
            device,
            output,
            u,
        ),
        (None, None) => Err("nothing to write to".to_string()),
    };
    // The data files of a described copy, written beside the output's descriptor.
    let data_files = match result {
        Ok(files) => files,
        Err(e) => {
            say!("{e}");
            return Exit::Error;
        }
    };
    // What was written is read back from scratch and verified before the fix is called done.
    let written: &Path = args.output.unwrap_or(args.image);
    if let Err(e) = verify_written(written, output_size, &session) {
        match args.output {
            Some(o) => {
                // A copy that does not verify must not be mistaken for a fixed image.
                if !matches!(&out_target, Some((_, Target::Device { .. }))) {
                    let _ = std::fs::remove_file(o);
                    for f in &data_files {
                        let _ = std::fs::remove_file(f);
                    }
                    if let Some(u) = args.undo {
                        let _ = std::fs::remove_file(u);
                    }
                }
                say!(
                    "{e}. The original image is unchanged; {} — please report this",
                    if matches!(&out_target, Some((_, Target::Device { .. }))) {
                        format!("do not use what was written to {}", o.display())
                    } else {
                        format!("{} was removed", o.display())
                    }
                );
            }
            None => say!(
                "{e}. The image was changed in place but does not verify: restore it with `kaifuku undo {} {}`, and please report this",
                args.image.display(),
                args.undo.map_or("UNDO".into(), |u| u.display().to_string())
            ),
        }
        return Exit::Error;
    }
    if !args.json {
        let mut o = String::new();
        match args.output {
            Some(p) => {
                o.push_str(&format!("Wrote       {}\n", p.display()));
                for f in &data_files {
                    o.push_str(&format!("            {} (its data)\n", f.display()));
                }
            }
            None => o.push_str(&format!("Patched     {} in place\n", args.image.display())),
        }
        if let Some(u) = args.undo {
            o.push_str(&format!(
                "Undo file   {} (restore with: kaifuku undo IMAGE {})\n",
                u.display(),
                u.display()
            ));
        }
        if let Err(e) = stdio::out(&o) {
            stdio::stdout_failed(&e, "the fix itself was written and is complete");
            return Exit::Error;
        }
    }
    Exit::Success
}

/// Test hook: with this variable set, one byte of the first planned write is flipped in the
/// written file before it is verified, so the tests can see that verification catches a fault
/// between write and read-back (a disk or a file system that loses writes).
const DAMAGE_HOOK: &str = "KAIFUKU_TEST_DAMAGE_WRITTEN_OUTPUT";

/// With [`DAMAGE_HOOK`] set, flips the byte at `offset` of the written image (in the data file
/// that holds it, for a described disk).
fn damage_for_test(written: &Path, offset: u64) -> Result<(), String> {
    if std::env::var_os(DAMAGE_HOOK).is_none() {
        return Ok(());
    }
    let described = FileSource::open(written)
        .ok()
        .filter(|s| s.descriptor().is_some())
        .and_then(|s| {
            let (i, at, _, _) = crate::source::split(s.parts(), offset, 1).next()?;
            let part = &s.parts()[i];
            // In a sparse extent, the byte's place in the file comes from its grain tables.
            let at = match &part.sparse {
                Some(c) => match c.map(at).ok()? {
                    kaifuku_container::Extent::InFile { file_offset, .. } => file_offset,
                    _ => return None,
                },
                None => at,
            };
            Some((part.path.clone(), at))
        });
    let (written, offset) = match &described {
        Some((p, at)) => (p.as_path(), *at),
        None => (written, offset),
    };
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(written)
        .map_err(|e| e.to_string())?;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).map_err(|e| e.to_string())?;
    f.write_all_at(&[b[0] ^ 0xFF], offset)
        .map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())
}

/// Re-opens what was written (its first `file_size` bytes: a device may be larger) and has the
/// session verify it against its plan.
fn verify_written<R: ReadAt>(
    written: &Path,
    file_size: u64,
    session: &Session<R>,
) -> Result<(), String> {
    if let Some(w) = session.planned().and_then(|f| f.output.writes.first()) {
        damage_for_test(written, w.file_offset)?;
    }
    let source = FileSource::open(written)
        .map_err(|e| format!("cannot re-open {} to verify it: {e}", written.display()))?;
    if source.size() < file_size {
        return Err(format!(
            "{} is shorter than the image it should hold ({} bytes, not {file_size})",
            written.display(),
            source.size()
        ));
    }
    // Resized, not a slice: it is the same file (cut to the image where a device is larger), so
    // it keeps the backing file the image reads through.
    let fixed = kaifuku_io::Resized::new(&source, file_size);
    let cache = BlockCache::new(&fixed, CacheConfig::default());
    session
        .verify_output(&cache)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", written.display()))
}

/// What is said, and how kaifuku exits, when no plan could be made.
pub(crate) fn plan_failed(e: FixError) -> Exit {
    match e {
        FixError::NothingToFix { reasons } => {
            let why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
            if let Err(e) = stdio::out(&format!("Nothing to fix: {}\n", why.join("; "))) {
                stdio::stdout_failed(&e, "nothing was written");
                return Exit::Error;
            }
            Exit::NothingToFix
        }
        FixError::Refused { refusal } => {
            say!("refused: {refusal}");
            Exit::Refused
        }
        FixError::Failed { failure } => {
            say!("{failure}");
            Exit::Error
        }
    }
}

/// `kaifuku fix --output-format vhd-fixed`: plans the fix for a fixed-VHD output, prints it, writes
/// the new file (never in place, never with an undo file: `run` refused those) and verifies it
/// read back from scratch.
fn run_fixed_vhd<R: ReadAt>(
    args: &FixArgs,
    session: &mut Session<R>,
    counted: &Counted<FileSource>,
    out_target: Option<Target>,
) -> Exit {
    if matches!(&out_target, Some(Target::Device { .. })) {
        say!(
            "--output-format vhd-fixed writes a file, not a block device: give a file name with -o \
             (or leave out --output-format to write the disk to the device)"
        );
        return Exit::Error;
    }
    let made = match new_footer() {
        Ok(m) => m,
        Err(e) => {
            say!("{e}");
            return Exit::Error;
        }
    };
    let planning = std::time::Instant::now();
    let planned = session.plan_fixed_vhd(&args.options, made).map(|_| ());
    let planning_ms = planning.elapsed().as_secs_f64() * 1000.0;
    if let Err(e) = planned {
        return plan_failed(e);
    }
    let (Some(fix), Ok(container)) = (session.planned_fixed_vhd(), session.container()) else {
        say!("the plan was lost; nothing was written — please report this");
        return Exit::Error;
    };
    let input = container.info();
    let stats = counted.stats();
    let printed = if args.json {
        let doc = serde_json::json!({
            "image": args.image.display().to_string(),
            "dry_run": args.dry_run,
            "report": fix.report,
            "plan": fix.plan,
            "output": {
                "format": kaifuku_container::Format::VhdFixed,
                "disk_size": fix.vhd.disk_size,
                "file_size": fix.vhd.file_size(),
            },
            "reads": stats,
            "planning_ms": planning_ms,
        });
        stdio::out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        ))
    } else {
        let mut text = describe(&fix.plan, fix.report.rule.key(), stats, planning_ms);
        text.push_str(&format!(
            "Output      a fixed VHD (for upload to Azure): the {} disk of {}, as {} of whole MiB and the footer\n",
            input.format,
            size(input.virtual_size),
            size(fix.vhd.disk_size)
        ));
        stdio::out(&text)
    };
    if let Err(e) = printed {
        stdio::stdout_failed(&e, "nothing was written");
        return Exit::Error;
    }
    if args.dry_run {
        return Exit::Success;
    }
    let (Some(out), Some(out_path)) = (&out_target, args.output) else {
        say!("--output-format vhd-fixed needs -o OUT.vhd");
        return Exit::Error;
    };
    let patches = fix.plan.disk_patches();
    if let Err(e) =
        crate::output::write_fixed_vhd(counted.inner(), container, &patches, &fix.vhd, out)
    {
        say!("{e}");
        return Exit::Error;
    }
    if let Err(e) = verify_written_fixed_vhd(out_path, fix.vhd.file_size(), session) {
        let _ = std::fs::remove_file(out_path);
        say!(
            "{e}. The original image is unchanged; {} was removed — please report this",
            out_path.display()
        );
        return Exit::Error;
    }
    if !args.json {
        if let Err(e) = stdio::out(&format!("Wrote       {}\n", out_path.display())) {
            stdio::stdout_failed(&e, "the fix itself was written and is complete");
            return Exit::Error;
        }
    }
    Exit::Success
}

/// Re-opens the fixed VHD written from the plan and has the session verify it: it must be
/// `file_size` bytes and open as the planned fixed VHD holding what the plan promised.
fn verify_written_fixed_vhd<R: ReadAt>(
    written: &Path,
    file_size: u64,
    session: &Session<R>,
) -> Result<(), String> {
    // The first byte the plan changes (a patch's offset in the disk is its offset in the file).
    if let Some(p) = session
        .planned_fixed_vhd()
        .and_then(|f| f.plan.disk_patches().first().map(|p| p.offset))
    {
        damage_for_test(written, p)?;
    }
    let source = FileSource::open(written)
        .map_err(|e| format!("cannot re-open {} to verify it: {e}", written.display()))?;
    if source.size() != file_size {
        return Err(format!(
            "{} is {} bytes, not the {file_size} bytes written",
            written.display(),
            source.size()
        ));
    }
    let cache = BlockCache::new(&source, CacheConfig::default());
    session
        .verify_fixed_vhd_output(&cache)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", written.display()))
}

/// The new footer's time (now, in the VHD epoch: seconds since 2000-01-01 00:00:00 UTC) and a
/// random unique id (a VHD input keeps its own; see `Container::fixed_vhd_output`).
fn new_footer() -> Result<kaifuku_container::NewFooter, String> {
    use std::io::Read;
    const VHD_EPOCH_UNIX: u64 = 946_684_800;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(VHD_EPOCH_UNIX);
    let timestamp = u32::try_from(now.saturating_sub(VHD_EPOCH_UNIX)).unwrap_or(u32::MAX);
    let mut unique_id = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut unique_id))
        .map_err(|e| format!("cannot make a unique id for the VHD (reading /dev/urandom: {e})"))?;
    Ok(kaifuku_container::NewFooter {
        timestamp,
        unique_id,
    })
}

/// The plan in plain words; `planning_ms` is how long planning and verifying took (the ownership
/// proof's `$MFT` scan included).
pub fn describe(
    plan: &Plan,
    primary_key: &str,
    stats: kaifuku_io::ReadStats,
    planning_ms: f64,
) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for r in &plan.journals_replayed {
        let _ = writeln!(o, "Journal     replayed first: {}", r.replay);
    }
    for l in &plan.journals_left {
        let _ = writeln!(o, "Journal     left for Windows: {}", l.left);
    }
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
        // A deletion for a rule other than the primary one names its rule.
        match d.rule_id.as_deref().filter(|key| *key != primary_key) {
            Some(key) => {
                let _ = writeln!(o, "Delete      {} (rule {key})", d.path);
            }
            None => {
                let _ = writeln!(o, "Delete      {}", d.path);
            }
        }
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
    for j in &plan.journal_overlaps {
        let _ = writeln!(o, "            before the reset: {}", j.overlap);
    }
    let _ = writeln!(
        o,
        "Patches     {} range(s), {} changed (--json lists every range)",
        plan.patches.len(),
        size(plan.bytes_changed())
    );
    // One line per structure, in disk order.
    let mut seen: Vec<(&kaifuku_ntfs::edit::ChangedStructure, u64, usize, u64)> = Vec::new();
    for p in &plan.patches {
        match seen.iter_mut().find(|s| *s.0 == p.label) {
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
    if !plan.encrypted_sectors.is_empty() {
        let sectors: u64 = plan.encrypted_sectors.iter().map(|p| p.label.sectors).sum();
        let bytes: u64 = plan.encrypted_sectors.iter().map(|p| p.len()).sum();
        let _ = writeln!(
            o,
            "BitLocker   the changes above are written as {sectors} re-encrypted sector(s) in {} range(s), {}",
            plan.encrypted_sectors.len(),
            size(bytes)
        );
    }
    for c in &plan.verification.checks {
        let _ = writeln!(o, "Verified    {c}");
    }
    let _ = writeln!(
        o,
        "Read        {} in {} calls; planned and verified in {planning_ms:.0} ms",
        size(stats.bytes),
        stats.calls
    );
    o
}
