//! The dedicated worker: reads the picked `File` with `FileReaderSync` (synchronous, as the core
//! wants) through the session's block cache, runs the core, and hands the page plain data and
//! `Blob`s made of slices of the picked file (never a copy of the image).
//!
//! It speaks [`crate::protocol`]: [`ToWorker`] in, [`FromWorker`] out. The page starts it before
//! any image is picked (so its wasm is compiled by then) and waits for [`FromWorker::Ready`]; one
//! worker serves one image and is terminated after it, or to cancel.

use crate::protocol::{FromWorker, KeyInput, Phase, Progress, RuleChoice, Stretch, ToWorker};
use crate::remote::{BlobSource, MAX_PUT};
use crate::session::{OutPiece, Session};
use crate::view::{
    FixedView, KeyFileKind, Problem, ProblemView, Reads, RemoteFixedView, RemoteProblem,
};
use js_sys::{Array, Uint8Array};
use kaifuku_bitlocker::{parse_key_list, StartupKey, UnlockKey};
use kaifuku_io::{check_range, CacheConfig, ReadAt, ReadStats};
use kaifuku_rescue::undo;
use kaifuku_rescue::{RuleSet, VolumeKeys};
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, BlobPropertyBag, DedicatedWorkerGlobalScope, File, FileReaderSync};

/// Progress messages go out at most this often while a step reads.
const PROGRESS_EVERY_MS: f64 = 100.0;
/// Fills (the journal reset) are built from references to one blob of this size.
const FILL_CHUNK: u64 = 1 << 20;
/// A startup key or key list larger than this is no key file (a `.BEK` is about 200 bytes).
const KEY_FILE_MAX: f64 = (4 << 20) as f64;

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Milliseconds on the worker's clock.
pub fn now() -> f64 {
    scope()
        .performance()
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

fn post(message: &FromWorker) {
    if let Err(e) = message.post(&scope()) {
        web_sys::console::error_1(&e);
    }
}

/// The reads of the current step, told to the page at most every [`PROGRESS_EVERY_MS`].
pub struct ProgressMeter {
    phase: Cell<Phase>,
    started: Cell<f64>,
    last: Cell<f64>,
    calls: Cell<u64>,
    bytes: Cell<u64>,
    stretch: Cell<Option<Stretch>>,
}

impl ProgressMeter {
    fn new() -> Self {
        ProgressMeter {
            phase: Cell::new(Phase::Inspect),
            started: Cell::new(0.0),
            last: Cell::new(0.0),
            calls: Cell::new(0),
            bytes: Cell::new(0),
            stretch: Cell::new(None),
        }
    }

    /// Key stretching got this far: told at once (the core calls this 17 times per key tried).
    /// Once a key is stretched, the step goes on reading the unlocked volume.
    fn stretched(&self, done: u32, total: u32) {
        self.phase.set(Phase::Unlock);
        self.stretch.set(Some(Stretch { done, total }));
        self.report(true);
        if done >= total {
            self.stretch.set(None);
        }
    }

    /// Starts a step (the counts go on from the step before); returns its start time.
    fn begin(&self, phase: Phase) -> f64 {
        let t = now();
        self.phase.set(phase);
        self.stretch.set(None);
        self.started.set(t);
        self.last.set(t);
        self.report(true);
        t
    }

    pub fn counted(&self, bytes: usize) {
        self.calls.set(self.calls.get() + 1);
        self.bytes.set(self.bytes.get() + bytes as u64);
        self.report(false);
    }

    fn report(&self, force: bool) {
        let t = now();
        if !force && t - self.last.get() < PROGRESS_EVERY_MS {
            return;
        }
        self.last.set(t);
        post(&FromWorker::Progress(Progress {
            phase: self.phase.get(),
            bytes: self.bytes.get(),
            calls: self.calls.get(),
            ms: t - self.started.get(),
            stretch: self.stretch.get(),
        }));
    }
}

/// The picked file, read with `FileReaderSync`: one call per read, about a millisecond each, so
/// it sits under the session's block cache.
pub struct FileSource {
    file: File,
    reader: FileReaderSync,
    size: u64,
    progress: Option<Rc<ProgressMeter>>,
}

impl FileSource {
    pub fn new(file: File) -> Result<Self, JsValue> {
        let size = file.size() as u64;
        Ok(FileSource {
            file,
            reader: FileReaderSync::new()?,
            size,
            progress: None,
        })
    }

    /// The same, counting every read into `progress`.
    fn with_progress(file: File, progress: Rc<ProgressMeter>) -> Result<Self, JsValue> {
        Ok(FileSource {
            progress: Some(progress),
            ..FileSource::new(file)?
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

fn js_io(what: &str, e: JsValue) -> io::Error {
    let msg = crate::js_message(&e).unwrap_or_else(|| format!("{e:?}"));
    io::Error::other(format!("{what}: {msg}"))
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        let blob = self
            .file
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(|e| js_io("slicing the file", e))?;
        let ab = self
            .reader
            .read_as_array_buffer(&blob)
            .map_err(|e| js_io("reading the file", e))?;
        let arr = Uint8Array::new(&ab);
        if arr.length() as usize != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file gave {} bytes at offset {offset} instead of {} (did it change?)",
                    arr.length(),
                    buf.len()
                ),
            ));
        }
        arr.copy_to(buf);
        if let Some(p) = &self.progress {
            p.counted(buf.len());
        }
        Ok(())
    }
}

/// What the worker reads: the picked file, or a blob in cloud storage by its URL.
pub enum Source {
    File(FileSource),
    Blob(BlobSource),
}

impl Source {
    fn progress(&self) -> Option<&Rc<ProgressMeter>> {
        match self {
            Source::File(f) => f.progress.as_ref(),
            Source::Blob(b) => b.progress(),
        }
    }
}

impl ReadAt for Source {
    fn size(&self) -> u64 {
        match self {
            Source::File(f) => f.size(),
            Source::Blob(b) => b.size(),
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Source::File(f) => f.read_at(offset, buf),
            Source::Blob(b) => b.read_at(offset, buf),
        }
    }
}

fn reads(stats: ReadStats, started: f64) -> Reads {
    Reads {
        calls: stats.calls,
        bytes: stats.bytes,
        ms: now() - started,
    }
}

/// Bytes of the worker's wasm memory (it only grows).
pub fn wasm_memory() -> u64 {
    wasm_bindgen::memory()
        .unchecked_into::<js_sys::WebAssembly::Memory>()
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as u64
}

fn bag(mime: &str) -> BlobPropertyBag {
    let b = BlobPropertyBag::new();
    b.set_type(mime);
    b
}

fn blob_of(parts: &Array, mime: &str) -> Result<Blob, JsValue> {
    Blob::new_with_blob_sequence_and_options(parts, &bag(mime))
}

fn bytes_part(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

/// `len` copies of `byte` as blob parts: references to one shared chunk, so a 64 MiB journal reset
/// costs 1 MiB.
fn fill_parts(parts: &Array, byte: u8, len: u64) -> Result<(), JsValue> {
    let chunk_len = len.min(FILL_CHUNK);
    let chunk = blob_of(
        &Array::of1(&Uint8Array::from(vec![byte; chunk_len as usize].as_slice())),
        "application/octet-stream",
    )?;
    let mut left = len;
    while left >= chunk_len && left > 0 {
        parts.push(&chunk);
        left -= chunk_len;
    }
    if left > 0 {
        let tail: JsValue = chunk.slice_with_f64_and_f64(0.0, left as f64)?.into();
        parts.push(&tail);
    }
    Ok(())
}

/// The fixed image: slices of the picked file between the new bytes.
pub fn image_blob(file: &File, pieces: &[OutPiece<'_>]) -> Result<Blob, JsValue> {
    let parts = Array::new();
    for p in pieces {
        match p {
            OutPiece::Original { start, end } => {
                let slice: JsValue = file
                    .slice_with_f64_and_f64(*start as f64, *end as f64)?
                    .into();
                parts.push(&slice);
            }
            OutPiece::Bytes(b) => {
                parts.push(&bytes_part(b));
            }
            OutPiece::Fill { byte, len } => fill_parts(&parts, *byte, *len)?,
        }
    }
    blob_of(&parts, "application/octet-stream")
}

/// The undo file: encoded headers between slices of the picked file (the original bytes), then
/// the trailer (see [`crate::session::undo_pieces`]).
pub fn undo_blob(file: &File, pieces: &[undo::Piece]) -> Result<Blob, JsValue> {
    let parts = Array::new();
    for p in pieces {
        match p {
            undo::Piece::Bytes(b) => {
                parts.push(&bytes_part(b));
            }
            undo::Piece::Original { offset, len } => {
                let slice: JsValue = file
                    .slice_with_f64_and_f64(*offset as f64, (*offset + *len) as f64)?
                    .into();
                parts.push(&slice);
            }
        }
    }
    blob_of(&parts, "application/octet-stream")
}

/// One image: its session (the picked file is its source), from the first message on.
#[derive(Default)]
struct ImageWorker {
    session: Option<Session<Source>>,
    /// The rules the image was inspected with (the built-in rule until a message says
    /// otherwise); unlocking inspects again with the same rules.
    rules: Option<RuleSet>,
}

impl ImageWorker {
    fn session(&mut self) -> Result<&mut Session<Source>, Problem> {
        self.session
            .as_mut()
            .ok_or_else(|| Problem::internal("no image"))
    }

    fn on_message(&mut self, message: ToWorker) -> FromWorker {
        let result = match message {
            ToWorker::Inspect { file, rules } => self.inspect(file, &rules),
            ToWorker::InspectUrl { url, rules } => self.inspect_url(&url, &rules),
            ToWorker::WriteRemote => self.write_remote(),
            ToWorker::SetRules { rules } => self.set_rules(&rules),
            ToWorker::Unlock { key } => self.unlock(key),
            ToWorker::Plan {
                discard_journal,
                fixed_vhd,
            } => self.plan(discard_journal, fixed_vhd),
            ToWorker::Fix => self.fix(),
            ToWorker::Explain => self.session().and_then(|s| {
                serde_json::to_string(&s.explain())
                    .map(|json| FromWorker::Explained { json })
                    .map_err(|e| Problem::internal(e.to_string()))
            }),
            ToWorker::ExplainFixed => self.session().and_then(|s| {
                let view = s
                    .explain_fixed()
                    .ok_or_else(|| Problem::internal("no plan yet"))?;
                serde_json::to_string(&view)
                    .map(|json| FromWorker::ExplainedFixed { json })
                    .map_err(|e| Problem::internal(e.to_string()))
            }),
        };
        if let Some(s) = &self.session {
            if let Some(p) = s.source().progress() {
                p.report(true);
            }
        }
        result.unwrap_or_else(|p| FromWorker::Failed(ProblemView::of(p)))
    }

    fn inspect(&mut self, file: File, rules: &RuleChoice) -> Result<FromWorker, Problem> {
        // Made again from the rules received: the core checks every rule itself.
        let rules = rules
            .rule_set()
            .map_err(|e| Problem::internal(format!("the rules cannot run: {e}")))?;
        let progress = Rc::new(ProgressMeter::new());
        let started = progress.begin(Phase::Inspect);
        let source = FileSource::with_progress(file.clone(), progress)
            .map_err(|e| Problem::internal(format!("FileReaderSync: {e:?}")))?;
        self.rules = Some(rules.clone());
        let session = self.session.insert(Session::with_rules(
            Source::File(source),
            &file.name(),
            VolumeKeys::none(),
            rules,
        ));
        Ok(FromWorker::Inspected(
            session.inspect(|s| reads(s, started)),
        ))
    }

    /// Opens the blob at `url` (one ranged read, which also proves the storage lets the page
    /// read it) and inspects it as a picked file is inspected.
    fn inspect_url(&mut self, url: &str, rules: &RuleChoice) -> Result<FromWorker, Problem> {
        let rules = rules
            .rule_set()
            .map_err(|e| Problem::internal(format!("the rules cannot run: {e}")))?;
        let progress = Rc::new(ProgressMeter::new());
        let started = progress.begin(Phase::Inspect);
        let blob = BlobSource::open(url, Some(progress))?;
        let name = blob.name();
        self.rules = Some(rules.clone());
        let session = self.session.insert(Session::with_cache(
            Source::Blob(blob),
            &name,
            VolumeKeys::none(),
            rules,
            CacheConfig::remote(),
        ));
        Ok(FromWorker::Inspected(
            session.inspect(|s| reads(s, started)),
        ))
    }

    /// Inspects the same image again with other rules (the registry transaction-log checkbox):
    /// the report and any plan made with the old rules are gone, and the volumes already unlocked
    /// stay unlocked, so no key is stretched again.
    fn set_rules(&mut self, rules: &RuleChoice) -> Result<FromWorker, Problem> {
        let rules = rules
            .rule_set()
            .map_err(|e| Problem::internal(format!("the rules cannot run: {e}")))?;
        self.rules = Some(rules.clone());
        let (session, started) = self.begin(Phase::Inspect)?;
        session.set_rules(rules);
        Ok(FromWorker::Inspected(
            session.inspect(|s| reads(s, started)),
        ))
    }

    /// Inspects the picked image again with `key` for its BitLocker volumes: a fresh session
    /// (the key stretched once, here, with progress), which the plan and the fix then use.
    fn unlock(&mut self, key: KeyInput) -> Result<FromWorker, Problem> {
        let key = match unlock_key(key) {
            Ok(k) => k,
            Err(problem) => return Ok(FromWorker::KeyFileRefused(ProblemView::of(problem))),
        };
        let progress = Rc::new(ProgressMeter::new());
        let started = progress.begin(Phase::Unlock);
        let (source, name) = match self.session()?.source() {
            Source::File(f) => {
                let file = f.file().clone();
                let source = FileSource::with_progress(file.clone(), progress.clone())
                    .map_err(|e| Problem::internal(format!("FileReaderSync: {e:?}")))?;
                (Source::File(source), file.name())
            }
            Source::Blob(b) => {
                let blob = BlobSource::open(b.url(), Some(progress.clone()))?;
                let name = blob.name();
                (Source::Blob(blob), name)
            }
        };
        let rules = self.rules.clone().unwrap_or_else(RuleSet::builtin);
        let mut session = Session::with_rules(source, &name, VolumeKeys::new(vec![key]), rules);
        session.set_unlock_progress(Box::new(move |done, total| progress.stretched(done, total)));
        let session = self.session.insert(session);
        Ok(FromWorker::Inspected(
            session.inspect(|s| reads(s, started)),
        ))
    }

    fn begin(&mut self, phase: Phase) -> Result<(&mut Session<Source>, f64), Problem> {
        let session = self.session()?;
        let started = match session.source().progress() {
            Some(p) => p.begin(phase),
            None => now(),
        };
        Ok((session, started))
    }

    fn plan(&mut self, discard_journal: bool, fixed_vhd: bool) -> Result<FromWorker, Problem> {
        // The footer a fixed VHD gets: asked for, or offered when the picked file's own format
        // cannot take the changes.
        let made = new_footer()?;
        let (session, started) = self.begin(Phase::Plan)?;
        // A blob is fixed where it lives, in its own format: no fixed-VHD download.
        let local = matches!(session.source(), Source::File(_));
        let view = session.plan_with_fallback(
            discard_journal,
            (fixed_vhd && local).then_some(made),
            local.then_some(made),
            |st| reads(st, started),
        )?;
        Ok(FromWorker::Planned(view))
    }

    fn fix(&mut self) -> Result<FromWorker, Problem> {
        if matches!(self.session()?.source(), Source::Blob(_)) {
            return self.prepare_remote();
        }
        let (session, started) = self.begin(Phase::Verify)?;
        let checks = session.verify()?;
        let verified = now();
        if let Some(p) = session.source().progress() {
            p.begin(Phase::Output);
        }
        let Source::File(file) = session.source() else {
            return Err(Problem::internal("no picked file"));
        };
        let file = file.file().clone();
        let pieces = session
            .image_pieces()
            .ok_or_else(|| Problem::internal("no plan"))?;
        let image = image_blob(&file, &pieces).map_err(|e| Problem::internal(format!("{e:?}")))?;
        // Without an undo file (a fix that changes the file's size) the Blob is empty and the
        // view says none is offered.
        let undo = if session.undo_offered() {
            let undo_pieces = session.undo_pieces()?;
            undo_blob(&file, &undo_pieces).map_err(|e| Problem::internal(format!("{e:?}")))?
        } else {
            blob_of(&Array::new(), "application/octet-stream")
                .map_err(|e| Problem::internal(format!("{e:?}")))?
        };
        let ms = now() - started;
        let memory = wasm_memory();
        let report_text = session.report_json(serde_json::json!({
            "fix_ms": ms,
            "verify_ms": verified - started,
            "wasm_memory": memory,
        }));
        let report = blob_of(
            &Array::of1(&JsValue::from_str(&report_text)),
            "application/json",
        )
        .map_err(|e| Problem::internal(format!("{e:?}")))?;
        let names = session.names();
        let view = FixedView {
            output_name: names.output,
            undo_name: names.undo,
            report_name: names.report,
            output_size: image.size() as u64,
            undo_size: session.undo_offered().then_some(undo.size() as u64),
            checks,
            reads: reads(session.stats(), started),
            wasm_memory: memory,
            fixed_vhd: session.is_fixed_vhd(),
        };
        let undo_expected = session.undo_offered().then_some(session.undo_size());
        if view.output_size != session.output_size() || view.undo_size != undo_expected {
            return Err(Problem::internal(format!(
                "assembled sizes differ: image {} (expected {}), undo {:?} (expected {:?})",
                view.output_size,
                session.output_size(),
                view.undo_size,
                undo_expected
            )));
        }
        Ok(FromWorker::Fixed {
            view,
            image,
            undo,
            report,
        })
    }
}

impl ImageWorker {
    /// The blob's fix, before anything is written: verified on the patched view, then its undo
    /// file made from the blob's original bytes (a few KiB) for the user to save. Nothing is
    /// written to the blob until [`ToWorker::WriteRemote`].
    fn prepare_remote(&mut self) -> Result<FromWorker, Problem> {
        let session = self.session()?;
        let Source::Blob(blob) = session.source() else {
            return Err(Problem::internal("not a blob"));
        };
        if !blob.is_page_blob() {
            return Err(Problem::Remote {
                problem: RemoteProblem::NotPageBlob,
                detail: format!("{} is not an Azure page blob", blob.shown()),
            });
        }
        let output = session
            .planned_output()
            .ok_or_else(|| Problem::internal("no plan"))?;
        if output.file_size.is_some() {
            return Err(Problem::Remote {
                problem: RemoteProblem::SizeChanges,
                detail: format!(
                    "this fix changes the image file's size; {} cannot take that",
                    blob.shown()
                ),
            });
        }
        // Named as the batch names a blob's undo file (`--undo-dir DIR`: DIR/NAME.undo): it
        // restores the blob itself, not a copy.
        let undo_name = format!("{}.undo", blob.name());
        let checks = session.verify()?;
        let undo = session.undo_bytes()?;
        let undo_size = undo.len() as u64;
        let undo = blob_of(&Array::of1(&bytes_part(&undo)), "application/octet-stream")
            .map_err(|e| Problem::internal(format!("{e:?}")))?;
        Ok(FromWorker::RemoteUndo {
            undo,
            undo_name,
            undo_size,
            checks,
        })
    }

    /// Writes the planned changes into the blob as whole pages (each Put Page conditional on the
    /// blob's ETag), then reads the blob back from scratch and verifies it.
    fn write_remote(&mut self) -> Result<FromWorker, Problem> {
        let session = self.session()?;
        let Source::Blob(blob) = session.source() else {
            return Err(Problem::internal("not a blob"));
        };
        let output = session
            .planned_output()
            .ok_or_else(|| Problem::internal("no plan"))?;
        let shown = blob.shown().to_string();
        let undo_name = format!("{}.undo", blob.name());
        let restore = format!(
            "restore it with: kaifuku undo URL {undo_name} (the same URL, with its SAS token)"
        );
        let failed: RefCell<Option<Problem>> = RefCell::new(None);
        let written = kaifuku_container::pages::page_runs(output, blob, MAX_PUT, |at, b| {
            blob.put_pages(at, b).map_err(|p| {
                let text = p.detail().unwrap_or_default();
                *failed.borrow_mut() = Some(p);
                text
            })
        });
        if let Err(e) = written {
            let traffic = blob.traffic();
            let why = failed.into_inner().or_else(|| blob.take_read_problem());
            return Err(match why {
                // Nothing reached the blob (the first write, or a read of the pages at its
                // edges, was refused): the problem as it stands.
                Some(p) if traffic.puts == 0 => p,
                _ => Problem::Remote {
                    problem: RemoteProblem::WriteFailed,
                    detail: format!("{e}. The blob may be partly fixed; {restore}"),
                },
            });
        }
        // From here on the blob is changed: whatever fails is told as such (never "nothing was
        // changed"), with the way back.
        let not_verified = |p: Problem| Problem::Remote {
            problem: RemoteProblem::WrittenNotVerified,
            detail: format!(
                "{}. {shown} was changed but does not verify: {restore}",
                p.detail().unwrap_or_default()
            ),
        };
        let fresh = BlobSource::open(blob.url(), None).map_err(not_verified)?;
        let opened = fresh.traffic();
        let (checks, read_back) = session
            .verify_written(Source::Blob(fresh), CacheConfig::remote())
            .map_err(not_verified)?;
        let written = blob.traffic();
        Ok(FromWorker::RemoteWritten(RemoteFixedView {
            shown,
            undo_name,
            puts: written.puts,
            bytes_written: written.bytes_written,
            requests: written.requests + opened.requests + read_back.calls,
            bytes_read: written.bytes_read + opened.bytes_read + read_back.bytes,
            checks,
        }))
    }
}

/// A new fixed VHD footer's time (now, in seconds since 2000-01-01 00:00:00 UTC, the VHD epoch)
/// and a random unique id, as the command line makes them.
fn new_footer() -> Result<kaifuku_container::NewFooter, Problem> {
    const VHD_EPOCH_UNIX_MS: f64 = 946_684_800_000.0;
    let since = ((js_sys::Date::now() - VHD_EPOCH_UNIX_MS) / 1000.0).max(0.0);
    let timestamp = since.min(f64::from(u32::MAX)) as u32;
    let mut unique_id = [0u8; 16];
    scope()
        .crypto()
        .and_then(|c| {
            c.get_random_values_with_u8_array(&mut unique_id)
                .map(|_| ())
        })
        .map_err(|e| Problem::internal(format!("crypto.getRandomValues: {e:?}")))?;
    Ok(kaifuku_container::NewFooter {
        timestamp,
        unique_id,
    })
}

/// The core's key for what the user gave; key files are read here, whole (they are small), and
/// their bytes cleared once parsed. Errors name the kind of file, never its content.
fn unlock_key(key: KeyInput) -> Result<UnlockKey, Problem> {
    match key {
        KeyInput::RecoveryPassword { text } => Ok(UnlockKey::RecoveryPassword(text)),
        KeyInput::Password { text } => Ok(UnlockKey::Password(text)),
        KeyInput::StartupKey { file } => {
            let kind = KeyFileKind::StartupKey;
            let mut bytes = key_file_bytes(&file, kind)?;
            let parsed = StartupKey::parse(&bytes);
            bytes.fill(0);
            parsed
                .map(UnlockKey::StartupKey)
                .map_err(|e| key_file_problem(kind, e.to_string()))
        }
        KeyInput::KeyList { file } => {
            let kind = KeyFileKind::KeyList;
            let mut bytes = key_file_bytes(&file, kind)?;
            // Read in place (no copy) when the file is UTF-8, as exports are.
            let parsed =
                parse_key_list(String::from_utf8_lossy(&bytes).trim_start_matches('\u{feff}'));
            bytes.fill(0);
            match parsed {
                Ok(list) if !list.is_empty() => Ok(UnlockKey::KeyList(list)),
                Ok(_) => Err(key_file_problem(
                    kind,
                    "the key list holds no recovery password".into(),
                )),
                Err(e) => Err(key_file_problem(kind, e.to_string())),
            }
        }
    }
}

fn key_file_problem(kind: KeyFileKind, detail: String) -> Problem {
    Problem::KeyFile { kind, detail }
}

fn key_file_bytes(file: &File, kind: KeyFileKind) -> Result<Vec<u8>, Problem> {
    if file.size() > KEY_FILE_MAX {
        return Err(key_file_problem(
            kind,
            format!("{} bytes is too large for a key file", file.size()),
        ));
    }
    let reader = FileReaderSync::new()
        .map_err(|e| key_file_problem(kind, format!("FileReaderSync: {e:?}")))?;
    let buffer = reader
        .read_as_array_buffer(file)
        .map_err(|e| key_file_problem(kind, js_io("reading the key file", e).to_string()))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Entry point of the worker binary.
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        post(&FromWorker::Failed(ProblemView::internal(format!(
            "panic: {info}"
        ))));
    }));
    let worker = RefCell::new(ImageWorker::default());
    let listener = gloo::events::EventListener::new(&scope(), "message", move |ev| {
        let ev: &web_sys::MessageEvent = ev.unchecked_ref();
        let reply = match ToWorker::from_js(ev.data()) {
            Ok(message) => worker.borrow_mut().on_message(message),
            Err(e) => FromWorker::Failed(ProblemView::internal(format!("unreadable message: {e}"))),
        };
        post(&reply);
    });
    listener.forget();
    post(&FromWorker::Ready);
}
