//! `kaifuku fix --in-place URL --undo FILE` and `kaifuku undo URL FILE`: a disk fixed in the
//! cloud storage that holds it (an Azure page blob by its SAS URL). The same session inspects,
//! plans and verifies as for a file; only the bottom of the read stack is remote, and the writes
//! are Put Page requests. The undo file is written and synced here before the first remote write;
//! the fixed blob is read back from scratch (a fresh connection, no cache) and verified before
//! the fix is called done.

use crate::exit::Exit;
use crate::fix_cmd::{describe, plan_failed, FixArgs};
use crate::paths::{self, Role};
use crate::remote::{self, HttpSource, Traffic};
use crate::report::size;
use crate::source::FileSource;
use crate::stdio;
use kaifuku_container::{FileWrite, FileWriteLabel, OutputPlan, WriteHow};
use kaifuku_io::{BlockCache, Counted, ReadAt};
use kaifuku_rescue::undo::{self, Identity, UndoFile, CHUNK};
use kaifuku_rescue::{RuleSet, Session};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Why a URL is only fixed in place.
const IN_PLACE_ONLY: &str = "a disk behind a URL is fixed where it lives: give --in-place \
     --undo FILE (an Azure page blob; the undo file is saved here first), or --dry-run to see the \
     plan. kaifuku does not download the whole disk (-o) — it reads a few MiB of it";

fn traffic_line(t: Traffic) -> String {
    format!(
        "Remote      {} request(s), {} read, {} written",
        t.requests,
        size(t.bytes_read),
        size(t.bytes_written)
    )
}

/// Opens a session on a disk in cloud storage (read through `cache`) and plans its fix: the
/// session and how long planning took, or how kaifuku exits.
fn plan_on<R: kaifuku_io::ReadAt>(
    cache: R,
    rules: RuleSet,
    args: &FixArgs,
) -> Result<(Session<R>, f64), Exit> {
    let mut session = Session::open_with_keys(cache, rules, args.keys.clone());
    let planning = std::time::Instant::now();
    let planned = session.plan(&args.options).map(|_| ());
    let planning_ms = planning.elapsed().as_secs_f64() * 1000.0;
    match planned {
        Ok(()) => Ok((session, planning_ms)),
        Err(e) => Err(plan_failed(e)),
    }
}

/// The plan of a disk in cloud storage as `fix` prints it: the text report and the traffic line,
/// or (`--json`) one document holding `extra` too.
fn plan_shown(
    args: &FixArgs,
    fix: &kaifuku_rescue::PlannedFix,
    reads: kaifuku_io::ReadStats,
    traffic: Traffic,
    planning_ms: f64,
    extra: serde_json::Value,
) -> String {
    if args.json {
        let mut doc = serde_json::json!({
            "dry_run": args.dry_run,
            "report": fix.report,
            "plan": fix.plan,
            "reads": reads,
            "remote": traffic,
            "planning_ms": planning_ms,
        });
        if let (Some(d), serde_json::Value::Object(e)) = (doc.as_object_mut(), extra) {
            d.extend(e);
        }
        format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).expect("serialisable")
        )
    } else {
        let mut text = describe(&fix.plan, fix.report.rule.key(), reads, planning_ms);
        text.push_str(&traffic_line(traffic));
        text.push('\n');
        text
    }
}

/// Fixes the page blob at `url` in place (or shows the plan, with `--dry-run`).
pub fn fix(args: &FixArgs, url: &str, rules: RuleSet) -> Exit {
    let shown = remote::shown(url);
    let in_place = args.in_place && args.undo.is_some();
    if args.output.is_some() || !(args.dry_run || in_place) {
        say!("{IN_PLACE_ONLY}");
        return Exit::Error;
    }
    if args.output_format != crate::fix_cmd::OutputFormat::Same {
        say!("--output-format does not apply to a disk fixed in place in its cloud storage");
        return Exit::Error;
    }
    let undo_target = match args.undo.filter(|_| !args.dry_run) {
        Some(p) => match paths::target(p, Role::Undo)
            .and_then(|t| paths::refuse_existing_undo(p, &t).map(|()| t))
        {
            Ok(t) => Some((p, t)),
            Err(e) => {
                say!("{e}");
                return Exit::Error;
            }
        },
        None => None,
    };
    let source = match HttpSource::open(url) {
        Ok(s) => s,
        Err(e) => {
            say!("cannot open {e}");
            return Exit::Error;
        }
    };
    if !args.dry_run && !source.is_page_blob() {
        say!(
            "{shown} is not an Azure page blob, so it cannot be changed in place (`kaifuku inspect \
             URL` reads any server that answers byte ranges)"
        );
        return Exit::Error;
    }
    let counted = Counted::new(&source);
    let cache = BlockCache::new(&counted, remote::cache_config());
    let (session, planning_ms) = match plan_on(&cache, rules, args) {
        Ok(planned) => planned,
        Err(exit) => return exit,
    };
    let (Some(fix), Some(identity)) = (session.planned(), session.undo_identity()) else {
        say!("the plan was lost; nothing was written — please report this");
        return Exit::Error;
    };
    let printed = stdio::out(&plan_shown(
        args,
        fix,
        counted.stats(),
        source.traffic(),
        planning_ms,
        serde_json::json!({
            "image": shown,
            "file_writes": fix.output.writes.iter().map(|w| serde_json::json!({
                "file_offset": w.file_offset, "len": w.bytes.len(), "label": w.label.to_string()
            })).chain(fix.output.fills.iter().map(|f| serde_json::json!({
                "file_offset": f.file_offset, "len": f.len, "label": f.label.to_string(), "fill": f.byte
            }))).collect::<Vec<_>>(),
        }),
    ));
    if let Err(e) = printed {
        stdio::stdout_failed(&e, "nothing was written");
        return Exit::Error;
    }
    if args.dry_run {
        return Exit::Success;
    }
    let Some((undo_path, undo_t)) = undo_target else {
        say!("{IN_PLACE_ONLY}");
        return Exit::Error;
    };
    if fix.output.file_size.is_some() {
        say!("refused: this fix changes the image file's size, which a page blob cannot take");
        return Exit::Refused;
    }
    // The undo file: the original bytes of every range, read from the blob, saved and synced
    // here before anything is written there.
    let pieces = match session.undo_layout(&identity) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            say!("cannot plan the undo file: {e}");
            return Exit::Error;
        }
        None => {
            say!("the plan was lost; nothing was written — please report this");
            return Exit::Error;
        }
    };
    let saved = crate::output::write_new_file(&undo_t.dir(), &undo_t.final_path(), |f| {
        let mut w = BufWriter::with_capacity(CHUNK, f);
        undo::write_to(&pieces, &source, |b| w.write_all(b))
            .and_then(|_| w.flush())
            .map_err(|e| format!("cannot write the undo file {}: {e}", undo_path.display()))
    });
    if let Err(e) = saved {
        say!("{e}; nothing was written to {shown}");
        return Exit::Error;
    }
    let restore = format!(
        "restore it with: kaifuku undo URL {} (the same URL, with its SAS token)",
        undo_path.display()
    );
    let mut hook = TestHook::from_env();
    if let Err(e) = hook.before_writes() {
        say!("{e}");
        return Exit::Error;
    }
    if let Err(e) = kaifuku_container::pages::page_runs(&fix.output, &source, 4 << 20, |at, b| {
        hook.before_put()?;
        source.put_pages(at, b)
    }) {
        say!("{e}. The blob may be partly fixed; {restore}");
        return Exit::Error;
    }
    // Read back from scratch: a new connection, no cache, the blob as it now is.
    let verified = HttpSource::open(url).and_then(|fresh| {
        let c = BlockCache::new(&fresh, remote::cache_config());
        session
            .verify_output(&c)
            .map(|_| fresh.traffic())
            .map_err(|e| format!("{shown}: {e}"))
    });
    let check = match verified {
        Ok(t) => t,
        Err(e) => {
            say!(
                "{e}. The blob was changed but does not verify: {restore}, and please report this"
            );
            return Exit::Error;
        }
    };
    if !args.json {
        let mut all = source.traffic();
        all.requests += check.requests;
        all.bytes_read += check.bytes_read;
        let o = format!(
            "Patched     {shown} in place\nUndo file   {} (restore with: kaifuku undo URL {})\n{} (read-back included)\n",
            undo_path.display(),
            undo_path.display(),
            traffic_line(all)
        );
        if let Err(e) = stdio::out(&o) {
            stdio::stdout_failed(&e, "the fix itself was written and is complete");
            return Exit::Error;
        }
    }
    Exit::Success
}

/// Restores the original bytes an undo file holds into the page blob at `url`: refused for a
/// blob that is not the one the undo file was made for, and (unless `force`) for one whose fixed
/// bytes changed since. Returns the number of ranges restored.
pub fn undo(url: &str, undo_file: &Path, force: bool) -> Result<(u64, Traffic), String> {
    let shown = remote::shown(url);
    let usrc = FileSource::open_regular(undo_file)
        .map_err(|e| format!("cannot open the undo file {}: {e}", undo_file.display()))?;
    let u = UndoFile::open(&usrc).map_err(|e| format!("{}: {e}", undo_file.display()))?;
    let source = HttpSource::open(url).map_err(|e| format!("cannot open {e}"))?;
    if !source.is_page_blob() {
        return Err(format!(
            "{shown} is not an Azure page blob, so it cannot be changed in place"
        ));
    }
    let container = kaifuku_container::open(&source).map_err(|e| {
        format!("{shown} does not open as a disk image ({e}); is it the disk this undo file was made for?")
    })?;
    let info = container.info();
    let found = Identity {
        file_size: source.size(),
        virtual_size: info.virtual_size,
        kind: info.format,
    };
    if let Some(why) = u.identity().mismatch(&found) {
        return Err(format!(
            "{shown} is not the disk {} was made for: {why}",
            undo_file.display()
        ));
    }
    let mut writes = Vec::new();
    for e in u.entries() {
        let e = e.map_err(|e| format!("{}: {e}", undo_file.display()))?;
        let len = usize::try_from(e.len).map_err(|_| "an undo entry is too large".to_string())?;
        let mut cur = vec![0u8; len];
        let mut orig = vec![0u8; len];
        source
            .read_at(e.offset, &mut cur)
            .map_err(|er| format!("reading {shown}: {er}"))?;
        u.read_original(&e, 0, &mut orig)
            .map_err(|er| format!("reading {}: {er}", undo_file.display()))?;
        if undo::fnv1a(&cur) != e.new_hash && cur != orig && !force {
            return Err(format!(
                "bytes at offset {} are neither what the fix wrote nor the originals: the disk changed since the fix (was it booted?). Restoring could damage it; use --force to restore anyway",
                e.offset
            ));
        }
        writes.push(FileWrite {
            file_offset: e.offset,
            label: FileWriteLabel::virtual_bytes(e.offset, e.offset + e.len, WriteHow::Bytes),
            bytes: orig,
        });
    }
    let plan = OutputPlan {
        writes,
        fills: Vec::new(),
        file_size: None,
    };
    kaifuku_container::pages::page_runs(&plan, &source, 4 << 20, |at, b| source.put_pages(at, b))?;
    Ok((u.count(), source.traffic()))
}

/// Test hooks, so the tests can stand in for the world: `KAIFUKU_TEST_BEFORE_REMOTE_WRITE` names a
/// program run once the undo file is saved and before the first write (another writer changing
/// the blob); `KAIFUKU_TEST_REMOTE_PUTS` is how many Put Page (or, for a new EBS snapshot,
/// PutSnapshotBlock) requests may go out before the connection "drops" (an interrupted fix).
struct TestHook {
    before: Option<std::ffi::OsString>,
    puts_left: Option<u64>,
}

impl TestHook {
    fn from_env() -> TestHook {
        TestHook {
            before: std::env::var_os("KAIFUKU_TEST_BEFORE_REMOTE_WRITE"),
            puts_left: std::env::var("KAIFUKU_TEST_REMOTE_PUTS")
                .ok()
                .and_then(|n| n.parse().ok()),
        }
    }

    fn before_writes(&self) -> Result<(), String> {
        if let Some(program) = &self.before {
            let ok = std::process::Command::new(program)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                return Err("the test hook before the remote writes failed".into());
            }
        }
        Ok(())
    }

    fn before_put(&mut self) -> Result<(), String> {
        match &mut self.puts_left {
            Some(0) => Err("the connection dropped (test hook)".into()),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// `kaifuku fix s3://BUCKET/KEY -o s3://BUCKET/NEW-KEY`: the fixed image written as a new object
/// by a server-side multipart copy (only the parts holding changes go over the wire), then read
/// back and verified; an output that does not verify is deleted.
pub fn fix_s3(args: &FixArgs, source_arg: &str, rules: RuleSet) -> Exit {
    use crate::aws::AwsConfig;
    use crate::s3::{self, S3Client, S3Location, S3Object};
    let fail = |e: String| {
        say!("{e}");
        Exit::Error
    };
    let src_loc = match S3Location::parse(source_arg) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let dst_loc = match args.output.map(|o| o.to_string_lossy().into_owned()) {
        Some(o) if s3::is_s3(o.as_ref()) => match S3Location::parse(&o) {
            Ok(l) => Some(l),
            Err(e) => return fail(e),
        },
        Some(_) => {
            return fail(
                "an S3 object is fixed into a new object in the same store: give -o \
                 s3://BUCKET/NEW-KEY (kaifuku does not download the whole disk)"
                    .into(),
            )
        }
        None if args.dry_run => None,
        None => {
            return fail(
                "an S3 object cannot be changed in place: give -o s3://BUCKET/NEW-KEY (the \
                 input stays as it was and is the way back), or --dry-run"
                    .into(),
            )
        }
    };
    if args.in_place
        || args.undo.is_some()
        || args.output_format != crate::fix_cmd::OutputFormat::Same
    {
        return fail(
            "an S3 object is fixed into a new object: --in-place, --undo and --output-format do \
             not apply (the input stays as it was and is the way back)"
                .into(),
        );
    }
    if dst_loc.as_ref() == Some(&src_loc) {
        return fail("the new object must have another key than the input".into());
    }
    let client = match AwsConfig::from_env() {
        Ok(c) => S3Client::new(c),
        Err(e) => return fail(e),
    };
    if let Some(d) = &dst_loc {
        match client.exists(d) {
            Ok(false) => {}
            Ok(true) => {
                return fail(format!(
                    "{d} exists already; kaifuku never replaces an object"
                ))
            }
            Err(e) => return fail(e),
        }
    }
    let source = match S3Object::open(&client, src_loc.clone()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let counted = Counted::new(&source);
    let cache = BlockCache::new(&counted, remote::cache_config());
    let (session, planning_ms) = match plan_on(&cache, rules, args) {
        Ok(planned) => planned,
        Err(exit) => return exit,
    };
    let Some(fix) = session.planned() else {
        return fail("the plan was lost; nothing was written — please report this".into());
    };
    let printed = stdio::out(&plan_shown(
        args,
        fix,
        counted.stats(),
        client.traffic(),
        planning_ms,
        serde_json::json!({
            "image": src_loc.to_string(),
            "output": dst_loc.as_ref().map(ToString::to_string),
        }),
    ));
    if let Err(e) = printed {
        stdio::stdout_failed(&e, "nothing was written");
        return Exit::Error;
    }
    let Some(dst) = dst_loc.filter(|_| !args.dry_run) else {
        return Exit::Success;
    };
    if let Err(e) = s3::write_fixed_copy(&source, &dst, &fix.output) {
        return fail(format!("{e}; {src_loc} is unchanged"));
    }
    // Read back from scratch: the new object, no cache.
    let verified = S3Object::open(&client, dst.clone()).and_then(|fresh| {
        let size = fix.output.file_size.unwrap_or(source.size());
        if fresh.size() != size {
            return Err(format!(
                "{dst} is {} bytes, not the {size} planned",
                fresh.size()
            ));
        }
        let c = BlockCache::new(&fresh, remote::cache_config());
        session
            .verify_output(&c)
            .map(|_| ())
            .map_err(|e| format!("{dst}: {e}"))
    });
    if let Err(e) = verified {
        let deleted = client.delete(&dst).is_ok();
        return fail(format!(
            "{e}. {src_loc} is unchanged; {dst} {} — please report this",
            if deleted {
                "was deleted"
            } else {
                "does not verify: delete it"
            }
        ));
    }
    if !args.json {
        let o = format!("Wrote       {dst}\n{}\n", traffic_line(client.traffic()));
        if let Err(e) = stdio::out(&o) {
            stdio::stdout_failed(&e, "the fix itself was written and is complete");
            return Exit::Error;
        }
    }
    Exit::Success
}

/// `kaifuku fix ebs://snap-… -o ebs://new`: the fixed disk written as a new EBS snapshot whose
/// parent is the original (only the blocks holding changes are put), then read back through the
/// EBS direct APIs and verified; a new snapshot that does not verify is deleted. The new
/// snapshot's id is printed (in `--json`, as `output`, once it exists).
pub fn fix_ebs(args: &FixArgs, source_arg: &str, rules: RuleSet) -> Exit {
    use crate::aws::AwsConfig;
    use crate::ebs::{self, EbsClient, EbsSnapshot, Inheritance, SnapshotId};
    let fail = |e: String| {
        say!("{e}");
        Exit::Error
    };
    let parent_id = match SnapshotId::parse(source_arg) {
        Ok(id) => id,
        Err(e) => return fail(e),
    };
    let new_snapshot = match args.output.map(|o| o.to_string_lossy().into_owned()) {
        Some(o) if o == ebs::NEW_SNAPSHOT => true,
        Some(_) => {
            return fail(format!(
                "an EBS snapshot is fixed into a new snapshot: give -o {} (its parent is the \
                 original, which stays as it was; kaifuku does not download the whole disk)",
                ebs::NEW_SNAPSHOT
            ))
        }
        None if args.dry_run => false,
        None => {
            return fail(format!(
                "an EBS snapshot cannot be changed: give -o {} to write the fix as a new \
                 snapshot (the original stays as it was and is the way back), or --dry-run",
                ebs::NEW_SNAPSHOT
            ))
        }
    };
    if args.in_place
        || args.undo.is_some()
        || args.output_format != crate::fix_cmd::OutputFormat::Same
    {
        return fail(format!(
            "an EBS snapshot is fixed into a new snapshot (-o {}): --in-place, --undo and \
             --output-format do not apply (the original stays as it was and is the way back)",
            ebs::NEW_SNAPSHOT
        ));
    }
    let client = match AwsConfig::from_env() {
        Ok(c) => EbsClient::new(c),
        Err(e) => return fail(e),
    };
    let source = match EbsSnapshot::open(&client, parent_id.clone()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let counted = Counted::new(&source);
    let cache = BlockCache::new(&counted, remote::cache_config());
    let (session, planning_ms) = match plan_on(&cache, rules, args) {
        Ok(planned) => planned,
        Err(exit) => return exit,
    };
    let Some(fix) = session.planned() else {
        return fail("the plan was lost; nothing was written — please report this".into());
    };
    let print = |output: Option<&SnapshotId>| match output.filter(|_| !args.json) {
        Some(id) => stdio::out(&format!(
            "Wrote       {id} (a new snapshot; its parent {parent_id} is unchanged)\n{}\n",
            traffic_line(client.traffic())
        )),
        None => stdio::out(&plan_shown(
            args,
            fix,
            counted.stats(),
            client.traffic(),
            planning_ms,
            serde_json::json!({
                "image": parent_id.to_string(),
                "output": output.map(ToString::to_string),
            }),
        )),
    };
    // The plan is shown first; in --json one document, once the new snapshot exists.
    if !args.json || !new_snapshot || args.dry_run {
        if let Err(e) = print(None) {
            stdio::stdout_failed(&e, "nothing was written");
            return Exit::Error;
        }
    }
    if !new_snapshot || args.dry_run {
        return Exit::Success;
    }
    let mut hook = TestHook::from_env();
    let new_id = match ebs::write_child_snapshot(&source, &fix.output, &mut || hook.before_put()) {
        Ok(id) => id,
        Err(e) => return fail(e),
    };
    // Read back from scratch, no cache: the new snapshot on its own, each block it does not list
    // checked against a fresh reading of its parent.
    let verified = EbsSnapshot::open(&client, parent_id.clone())
        .and_then(|parent| {
            EbsSnapshot::open_child(&client, new_id.clone(), parent, Inheritance::from_env())
        })
        .and_then(|fresh| {
            let c = BlockCache::new(&fresh, remote::cache_config());
            session
                .verify_output(&c)
                .map(|_| ())
                .map_err(|e| format!("{new_id}: {e}"))
        });
    if let Err(e) = verified {
        let deleted = client.delete(&new_id).is_ok();
        return fail(format!(
            "{e}. {parent_id} is unchanged; {new_id} {} — please report this",
            if deleted {
                "was deleted"
            } else {
                "does not verify: delete it"
            }
        ));
    }
    if let Err(e) = print(Some(&new_id)) {
        stdio::stdout_failed(
            &e,
            &format!("the fix itself was written and verified as {new_id}"),
        );
        return Exit::Error;
    }
    Exit::Success
}
