//! A disk in cloud storage, read and written by the worker where it lives: an Azure page blob by
//! its SAS URL (or any URL whose server answers byte ranges, read only). Synchronous
//! `XMLHttpRequest`s, which a worker may make, give the core the blocking reads it wants; the block
//! cache above keeps them few (a fix reads about 2 MiB of a 128 GiB disk).
//!
//! As in the command line (`kaifuku fix --in-place URL`): every read after the first is
//! conditional on the blob's ETag and every page write too, so a concurrent writer is detected, not
//! overwritten; the SAS token (the URL's query) never appears in what the page shows.

use crate::view::{Problem, RemoteProblem};
use crate::worker::ProgressMeter;
use js_sys::Uint8Array;
use kaifuku_container::pages::PAGE;
use kaifuku_io::{check_range, ReadAt};
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use web_sys::{XmlHttpRequest, XmlHttpRequestResponseType};

/// The REST API version sent with every request, as the command line sends it.
const AZURE_VERSION: &str = "2021-08-06";
/// The most one Put Page may carry.
pub const MAX_PUT: u64 = 4 << 20;

fn problem(problem: RemoteProblem, detail: impl Into<String>) -> Problem {
    Problem::Remote {
        problem,
        detail: detail.into(),
    }
}

/// What an answer's status means, in the page's terms (`what` says which request it was).
fn status_problem(status: u16, status_text: &str, shown: &str, what: &str) -> Problem {
    let detail = format!("{what} {shown}: the server answered {status} {status_text}");
    match status {
        0 => problem(
            RemoteProblem::Unreachable,
            format!("{what} {shown}: no answer the page may read (CORS, the page's security policy, or the network)"),
        ),
        401 | 403 => problem(RemoteProblem::AccessDenied, detail),
        412 => problem(RemoteProblem::Changed, detail),
        _ => problem(RemoteProblem::Status, detail),
    }
}

/// Requests made and bytes moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traffic {
    pub requests: u64,
    pub bytes_read: u64,
    pub puts: u64,
    pub bytes_written: u64,
}

/// A blob behind a URL, read by ranges.
pub struct BlobSource {
    url: String,
    shown: String,
    size: u64,
    /// The strong ETag of the first answer, renewed by each write: later requests are conditional
    /// on it.
    etag: RefCell<Option<String>>,
    page_blob: bool,
    traffic: Cell<Traffic>,
    progress: Option<Rc<ProgressMeter>>,
    /// Why the last read failed, in the page's terms (the core sees only an I/O error).
    read_problem: RefCell<Option<Problem>>,
}

/// One synchronous request; `Err` is the browser's refusal to send it or to show its answer, in
/// words without the SAS token.
fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<XmlHttpRequest, String> {
    let js = |e: wasm_bindgen::JsValue| {
        let message =
            crate::js_message(&e).unwrap_or_else(|| "the browser refused the request".to_string());
        // The browser's messages can name the URL whole (`Failed to load '…?sv=…&sig=…'`).
        kaifuku_io::url::without_query(&message, url)
    };
    let xhr = XmlHttpRequest::new().map_err(js)?;
    xhr.open_with_async(method, url, false).map_err(js)?;
    if method == "GET" {
        xhr.set_response_type(XmlHttpRequestResponseType::Arraybuffer);
    }
    // Never the browser's HTTP cache: a range it kept from before a write would be stale bytes,
    // and a revalidated entry can lose the exposed headers the first answer carried (seen with
    // Azurite: an unlock's second read of the first sector lost `Content-Range`).
    xhr.set_request_header("Cache-Control", "no-cache, no-store")
        .map_err(js)?;
    xhr.set_request_header("Pragma", "no-cache").map_err(js)?;
    for (name, value) in headers {
        xhr.set_request_header(name, value).map_err(js)?;
    }
    match body {
        Some(b) => xhr.send_with_opt_buffer_source(Some(&Uint8Array::from(b)).map(|a| a.as_ref())),
        None => xhr.send(),
    }
    .map_err(js)?;
    Ok(xhr)
}

fn header(xhr: &XmlHttpRequest, name: &str) -> Option<String> {
    xhr.get_response_header(name).ok().flatten()
}

impl BlobSource {
    /// Opens the blob at `url`: one ranged `GET` of its first byte, which proves the server
    /// answers ranges and gives the size, the ETag and the blob type.
    pub fn open(url: &str, progress: Option<Rc<ProgressMeter>>) -> Result<BlobSource, Problem> {
        let url = url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(problem(
                RemoteProblem::NotAUrl,
                "the text does not begin with https:// or http://",
            ));
        }
        let shown = kaifuku_io::url::shown(url);
        let xhr = request(
            "GET",
            url,
            &[("x-ms-version", AZURE_VERSION), ("Range", "bytes=0-0")],
            None,
        )
        .map_err(|e| problem(RemoteProblem::Unreachable, format!("reading {shown}: {e}")))?;
        let status = xhr.status().unwrap_or(0);
        if status == 200 {
            return Err(problem(
                RemoteProblem::NoRanges,
                format!("{shown} sent the whole blob for a range request"),
            ));
        }
        if status != 206 {
            let text = xhr.status_text().unwrap_or_default();
            return Err(status_problem(status, &text, &shown, "reading"));
        }
        let hidden = |name: &str| {
            problem(
                RemoteProblem::HeadersHidden,
                format!("{shown}: the answer's {name} header is not exposed to the page (CORS exposed headers)"),
            )
        };
        let range = header(&xhr, "Content-Range").ok_or_else(|| hidden("Content-Range"))?;
        let size = range
            .rsplit('/')
            .next()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                problem(
                    RemoteProblem::NoRanges,
                    format!("{shown}: the answer to a range request gives no total size ({range})"),
                )
            })?;
        let etag = header(&xhr, "ETag").ok_or_else(|| hidden("ETag"))?;
        let blob_type = header(&xhr, "x-ms-blob-type");
        let mut traffic = Traffic {
            requests: 1,
            ..Traffic::default()
        };
        if let Ok(b) = xhr.response() {
            traffic.bytes_read = Uint8Array::new(&b).length() as u64;
        }
        Ok(BlobSource {
            url: url.to_string(),
            shown,
            size,
            etag: RefCell::new((!etag.starts_with("W/")).then_some(etag)),
            page_blob: blob_type.is_some_and(|t| t.eq_ignore_ascii_case("PageBlob")),
            traffic: Cell::new(traffic),
            progress,
            read_problem: RefCell::new(None),
        })
    }

    /// The URL without its query.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The name the undo file is named after: the URL path's last segment.
    pub fn name(&self) -> String {
        kaifuku_io::url::name(&self.url)
            .unwrap_or("disk")
            .to_string()
    }

    /// Where the reads are counted for the page's progress line.
    pub fn progress(&self) -> Option<&Rc<ProgressMeter>> {
        self.progress.as_ref()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_page_blob(&self) -> bool {
        self.page_blob
    }

    /// Why the last failed read failed (taken).
    pub fn take_read_problem(&self) -> Option<Problem> {
        self.read_problem.borrow_mut().take()
    }

    pub fn traffic(&self) -> Traffic {
        self.traffic.get()
    }

    fn count(&self, f: impl FnOnce(&mut Traffic)) {
        let mut t = self.traffic.get();
        f(&mut t);
        self.traffic.set(t);
    }

    fn with_query(&self, extra: &str) -> String {
        let base = self.url.split('#').next().unwrap_or(&self.url);
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{extra}")
    }

    /// Writes `data` (whole pages) at `offset` (page-aligned) with Put Page requests of at most
    /// 4 MiB, each conditional on the blob's current ETag, which each answer renews.
    pub fn put_pages(&self, offset: u64, data: &[u8]) -> Result<(), Problem> {
        let shown = &self.shown;
        if !self.page_blob {
            return Err(problem(
                RemoteProblem::NotPageBlob,
                format!("{shown} is not an Azure page blob"),
            ));
        }
        if !offset.is_multiple_of(PAGE) || !(data.len() as u64).is_multiple_of(PAGE) {
            return Err(Problem::internal(format!(
                "a page write at {offset} of {} bytes is not page-aligned",
                data.len()
            )));
        }
        check_range(offset, data.len(), self.size)
            .map_err(|e| Problem::internal(format!("{shown}: {e}")))?;
        let put_url = self.with_query("comp=page");
        for (i, chunk) in data.chunks(MAX_PUT as usize).enumerate() {
            let at = offset + i as u64 * MAX_PUT;
            let range = format!("bytes={at}-{}", at + chunk.len() as u64 - 1);
            let etag = self.etag.borrow().clone();
            let mut headers = vec![
                ("x-ms-version", AZURE_VERSION),
                ("x-ms-page-write", "update"),
                ("x-ms-range", range.as_str()),
            ];
            if let Some(e) = etag.as_deref() {
                headers.push(("If-Match", e));
            }
            let xhr = request("PUT", &put_url, &headers, Some(chunk)).map_err(|e| {
                problem(RemoteProblem::Unreachable, format!("writing {shown}: {e}"))
            })?;
            let status = xhr.status().unwrap_or(0);
            if status != 201 {
                let text = xhr.status_text().unwrap_or_default();
                return Err(status_problem(status, &text, shown, "writing"));
            }
            match header(&xhr, "ETag") {
                Some(new) => *self.etag.borrow_mut() = Some(new),
                None => {
                    return Err(problem(
                        RemoteProblem::HeadersHidden,
                        format!(
                        "{shown}: the write's answer hides its ETag header (CORS exposed headers)"
                    ),
                    ))
                }
            }
            self.count(|t| {
                t.requests += 1;
                t.puts += 1;
                t.bytes_written += chunk.len() as u64;
            });
        }
        Ok(())
    }
}

impl ReadAt for BlobSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let shown = &self.shown;
        let range = format!("bytes={offset}-{}", offset + buf.len() as u64 - 1);
        let etag = self.etag.borrow().clone();
        let mut headers = vec![("x-ms-version", AZURE_VERSION), ("Range", range.as_str())];
        if let Some(e) = etag.as_deref() {
            headers.push(("If-Match", e));
        }
        let xhr = request("GET", &self.url, &headers, None)
            .map_err(|e| io::Error::other(format!("reading {shown}: {e}")))?;
        let status = xhr.status().unwrap_or(0);
        if status != 206 {
            let text = xhr.status_text().unwrap_or_default();
            let p = status_problem(status, &text, shown, "reading");
            let e = io::Error::other(p.detail().unwrap_or_default());
            *self.read_problem.borrow_mut() = Some(p);
            return Err(e);
        }
        let body = xhr
            .response()
            .map(|b| Uint8Array::new(&b))
            .map_err(|_| io::Error::other(format!("reading {shown}: no body")))?;
        if body.length() as usize != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "reading {shown}: {} bytes at offset {offset} instead of {}",
                    body.length(),
                    buf.len()
                ),
            ));
        }
        body.copy_to(buf);
        self.count(|t| {
            t.requests += 1;
            t.bytes_read += buf.len() as u64;
        });
        if let Some(p) = &self.progress {
            p.counted(buf.len());
        }
        Ok(())
    }
}
