//! The dedicated worker: reads the picked `File` with `FileReaderSync` (synchronous, as the core
//! wants) through the session's block cache, runs the core, and hands the page plain data and
//! `Blob`s made of slices of the picked file (never a copy of the image).
//!
//! Messages from the page: `{type: "inspect", file}`, `{type: "plan", discardJournal}`,
//! `{type: "fix"}`. Messages to the page: `ready`, `progress` (phase, bytes, calls, ms),
//! `inspected` / `planned` / `fixed` (with `json`, the views of [`crate::view`]) and `failed`.

use crate::session::{OutPiece, Session};
use crate::view::{FixedView, Problem, ProblemCode, Reads};
use js_sys::{Array, Object, Reflect, Uint8Array};
use kaifuku_io::{check_range, ReadAt, ReadStats};
use kaifuku_rescue::undo;
use std::cell::{Cell, RefCell};
use std::io;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Blob, BlobPropertyBag, DedicatedWorkerGlobalScope, File, FileReaderSync};

/// Progress messages go out at most this often while a step reads.
const PROGRESS_EVERY_MS: f64 = 100.0;
/// Fills (the journal reset) are built from references to one blob of this size.
const FILL_CHUNK: u64 = 1 << 20;

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

fn set(o: &Object, k: &str, v: impl Into<JsValue>) {
    let _ = Reflect::set(o, &JsValue::from_str(k), &v.into());
}

fn post(o: &Object) {
    let _ = scope().post_message(o);
}

fn message(kind: &str) -> Object {
    let o = Object::new();
    set(&o, "type", kind);
    o
}

struct Progress {
    phase: RefCell<String>,
    started: Cell<f64>,
    last: Cell<f64>,
    calls: Cell<u64>,
    bytes: Cell<u64>,
}

thread_local! {
    static PROGRESS: Progress = const {
        Progress {
            phase: RefCell::new(String::new()),
            started: Cell::new(0.0),
            last: Cell::new(0.0),
            calls: Cell::new(0),
            bytes: Cell::new(0),
        }
    };
    static SESSION: RefCell<Option<Session<FileSource>>> = const { RefCell::new(None) };
    static FILE: RefCell<Option<File>> = const { RefCell::new(None) };
}

fn post_progress(force: bool) {
    PROGRESS.with(|p| {
        let t = now();
        if !force && t - p.last.get() < PROGRESS_EVERY_MS {
            return;
        }
        p.last.set(t);
        let o = message("progress");
        set(&o, "phase", p.phase.borrow().as_str());
        set(&o, "bytes", p.bytes.get() as f64);
        set(&o, "calls", p.calls.get() as f64);
        set(&o, "ms", t - p.started.get());
        post(&o);
    });
}

fn begin_phase(phase: &str) -> f64 {
    let t = now();
    PROGRESS.with(|p| {
        *p.phase.borrow_mut() = phase.to_string();
        p.started.set(t);
        p.last.set(t);
    });
    post_progress(true);
    t
}

/// The picked file, read with `FileReaderSync`: one call per read, about a millisecond each, so
/// it sits under the session's block cache.
pub struct FileSource {
    file: File,
    reader: FileReaderSync,
    size: u64,
}

impl FileSource {
    pub fn new(file: File) -> Result<Self, JsValue> {
        let size = file.size() as u64;
        Ok(FileSource {
            file,
            reader: FileReaderSync::new()?,
            size,
        })
    }
}

fn js_io(what: &str, e: JsValue) -> io::Error {
    let msg = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
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
        PROGRESS.with(|p| {
            p.calls.set(p.calls.get() + 1);
            p.bytes.set(p.bytes.get() + buf.len() as u64);
        });
        post_progress(false);
        Ok(())
    }
}

fn reads(stats: ReadStats, started: f64) -> Reads {
    Reads {
        calls: stats.calls,
        bytes: stats.bytes,
        ms: now() - started,
    }
}

fn post_json(kind: &str, json: &str) -> Object {
    let o = message(kind);
    set(&o, "json", json);
    o
}

fn fail(p: Problem) {
    let json = serde_json::to_string(&p).expect("serialisable");
    post(&post_json("failed", &json));
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

fn get(data: &JsValue, k: &str) -> JsValue {
    Reflect::get(data, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

fn internal(d: impl Into<String>) -> Problem {
    Problem::new(ProblemCode::Internal, None, Some(d.into()))
}

fn on_inspect(file: File) {
    let started = begin_phase("inspect");
    PROGRESS.with(|p| {
        p.calls.set(0);
        p.bytes.set(0);
    });
    let source = match FileSource::new(file.clone()) {
        Ok(s) => s,
        Err(e) => return fail(internal(format!("FileReaderSync: {e:?}"))),
    };
    let mut session = Session::new(source, &file.name());
    let view = session.inspect(|s| reads(s, started));
    SESSION.with(|s| *s.borrow_mut() = Some(session));
    FILE.with(|f| *f.borrow_mut() = Some(file));
    post_progress(true);
    post(&post_json(
        "inspected",
        &serde_json::to_string(&view).expect("serialisable"),
    ));
}

fn on_plan(discard_journal: bool) {
    let started = begin_phase("plan");
    let result = SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let session = s.as_mut().ok_or_else(|| internal("no image"))?;
        session.plan(discard_journal, |st| reads(st, started))
    });
    post_progress(true);
    match result {
        Ok(view) => post(&post_json(
            "planned",
            &serde_json::to_string(&view).expect("serialisable"),
        )),
        Err(p) => fail(p),
    }
}

fn on_fix() {
    let started = begin_phase("verify");
    let result: Result<Object, Problem> = SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let session = s.as_mut().ok_or_else(|| internal("no image"))?;
        let checks = session.verify()?;
        let verified = now();
        begin_phase("output");
        let file = FILE
            .with(|f| f.borrow().clone())
            .ok_or_else(|| internal("no file"))?;
        let pieces = session.image_pieces().ok_or_else(|| internal("no plan"))?;
        let image = image_blob(&file, &pieces).map_err(|e| internal(format!("{e:?}")))?;
        let undo_pieces = session.undo_pieces()?;
        let undo = undo_blob(&file, &undo_pieces).map_err(|e| internal(format!("{e:?}")))?;
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
        .map_err(|e| internal(format!("{e:?}")))?;
        let names = session.names().clone();
        let view = FixedView {
            output_name: names.output,
            undo_name: names.undo,
            report_name: names.report,
            output_size: image.size() as u64,
            undo_size: undo.size() as u64,
            checks,
            reads: reads(session.stats(), started),
            wasm_memory: memory,
        };
        if view.output_size != session.file_size() || view.undo_size != session.undo_size() {
            return Err(internal(format!(
                "assembled sizes differ: image {} (file {}), undo {} (expected {})",
                view.output_size,
                session.file_size(),
                view.undo_size,
                session.undo_size()
            )));
        }
        let o = post_json(
            "fixed",
            &serde_json::to_string(&view).expect("serialisable"),
        );
        set(&o, "image", image);
        set(&o, "undo", undo);
        set(&o, "report", report);
        Ok(o)
    });
    post_progress(true);
    match result {
        Ok(o) => post(&o),
        Err(p) => fail(p),
    }
}

fn on_message(data: JsValue) {
    let kind = get(&data, "type").as_string().unwrap_or_default();
    match kind.as_str() {
        "inspect" => match get(&data, "file").dyn_into::<File>() {
            Ok(f) => on_inspect(f),
            Err(_) => fail(internal("inspect without a file")),
        },
        "plan" => on_plan(get(&data, "discardJournal").as_bool().unwrap_or(false)),
        "fix" => on_fix(),
        "memory" => {
            let o = message("memory");
            set(&o, "bytes", wasm_memory() as f64);
            post(&o);
        }
        other => fail(internal(format!("unknown message {other:?}"))),
    }
}

/// Entry point of the worker binary.
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        fail(internal(format!("panic: {info}")));
    }));
    let listener = gloo::events::EventListener::new(&scope(), "message", |ev| {
        let ev: &web_sys::MessageEvent = ev.unchecked_ref();
        on_message(ev.data());
    });
    listener.forget();
    let o = message("ready");
    set(&o, "memory", wasm_memory() as f64);
    post(&o);
}
