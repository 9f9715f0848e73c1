//! Disks where they live: an image behind an HTTP(S) URL, read by ranged `GET`s (any server that
//! answers ranges), and an Azure page blob written in place by `Put Page` — kaifuku reads a few MiB
//! of a 128 GiB disk and writes a few KiB, so nothing is downloaded or uploaded whole.
//!
//! A remote image is one more positioned reader under the block cache; the core does not know.
//! Writes go page by page (512-byte aligned: the sectors at the edges of a change are read and
//! written back whole), each conditional on the blob's ETag, so a concurrent writer is detected
//! rather than overwritten. The URL's query (a SAS token: the credential) never appears in
//! output, reports or errors: [`shown`] is what people see.

use kaifuku_container::pages::PAGE;
use kaifuku_io::{check_range, CacheConfig, ReadAt};
use std::cell::RefCell;
use std::io::{self, Read};
use std::time::Duration;

/// The REST API version sent with every request (Azure needs one; other servers ignore it).
const AZURE_VERSION: &str = "2021-08-06";
/// The most one Put Page may carry.
const MAX_PUT: u64 = 4 << 20;

/// Whether the command line names a URL rather than a file.
pub fn is_url(arg: &std::ffi::OsStr) -> bool {
    arg.to_str()
        .is_some_and(|s| s.starts_with("https://") || s.starts_with("http://"))
}

pub use kaifuku_io::url::shown;

/// The read cache for a remote disk ([`CacheConfig::remote`]).
pub fn cache_config() -> CacheConfig {
    CacheConfig::remote()
}

/// Requests made and bytes moved, as the command line reports them.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Traffic {
    pub requests: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// An image behind a URL, read by ranges.
pub struct HttpSource {
    agent: ureq::Agent,
    url: String,
    size: u64,
    /// The entity tag the first answer carried, when it is a strong one: every later read is
    /// conditional on it (a disk that changes while kaifuku reads it is an error, not a mix).
    /// Renewed by each write kaifuku makes.
    etag: RefCell<Option<String>>,
    /// `x-ms-blob-type: PageBlob`: an Azure page blob, which can be written in place.
    page_blob: bool,
    traffic: RefCell<Traffic>,
}

/// What went wrong with a request, in words that never hold the URL's query.
fn request_error(shown: &str, what: &str, e: ureq::Error) -> String {
    match e {
        ureq::Error::Status(412, _) => format!(
            "{what} {shown}: the blob changed since kaifuku first read it (another writer?); nothing more was done"
        ),
        ureq::Error::Status(code @ (401 | 403), _) => format!(
            "{what} {shown}: the server refused access ({code}); is the SAS token valid, unexpired, and does it allow {}?",
            if what.starts_with("writing") { "writing (sp=rw)" } else { "reading (sp=r)" }
        ),
        ureq::Error::Status(code, r) => {
            format!("{what} {shown}: the server answered {code} {}", r.status_text())
        }
        ureq::Error::Transport(t) => {
            let detail = t.message().map(|m| format!(": {m}")).unwrap_or_default();
            format!("{what} {shown}: {}{detail}", t.kind())
        }
    }
}

impl HttpSource {
    /// Opens the image at `url`: one ranged `GET` of its first byte, which also proves the server
    /// answers ranges, gives the size (from `Content-Range`), the ETag and the blob type.
    pub fn open(url: &str) -> Result<HttpSource, String> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout(Duration::from_secs(300))
            .build();
        let s = shown(url);
        let r = agent
            .get(url)
            .set("x-ms-version", AZURE_VERSION)
            .set("Range", "bytes=0-0")
            .call()
            .map_err(|e| request_error(&s, "reading", e))?;
        if r.status() != 206 {
            return Err(format!(
                "{s} does not answer byte ranges (it sent the whole file for a range request): \
                 kaifuku reads remote disks by ranges only, never downloads them whole"
            ));
        }
        let size = r
            .header("Content-Range")
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("{s}: the answer to a range request gives no total size"))?;
        let etag = r
            .header("ETag")
            .filter(|e| !e.starts_with("W/"))
            .map(str::to_string);
        let page_blob = r
            .header("x-ms-blob-type")
            .is_some_and(|t| t.eq_ignore_ascii_case("PageBlob"));
        let mut one = Vec::new();
        r.into_reader()
            .take(2)
            .read_to_end(&mut one)
            .map_err(|e| format!("reading {s}: {e}"))?;
        Ok(HttpSource {
            agent,
            url: url.to_string(),
            size,
            etag: RefCell::new(etag),
            page_blob,
            traffic: RefCell::new(Traffic {
                requests: 1,
                bytes_read: one.len() as u64,
                bytes_written: 0,
            }),
        })
    }

    /// The URL as people may see it.
    pub fn shown(&self) -> String {
        shown(&self.url)
    }

    /// Whether the image is an Azure page blob (which `Put Page` can change in place).
    pub fn is_page_blob(&self) -> bool {
        self.page_blob
    }

    /// Requests and bytes so far.
    pub fn traffic(&self) -> Traffic {
        *self.traffic.borrow()
    }

    fn with_query(&self, extra: &str) -> String {
        let (base, fragment) = match self.url.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (self.url.as_str(), None),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        let mut u = format!("{base}{sep}{extra}");
        if let Some(f) = fragment {
            u.push('#');
            u.push_str(f);
        }
        u
    }

    /// Writes `data` (whole pages) at `offset` (page-aligned) with Put Page requests of at most
    /// 4 MiB, each conditional on the blob's current ETag, which each answer renews.
    pub fn put_pages(&self, offset: u64, data: &[u8]) -> Result<(), String> {
        let s = self.shown();
        if !self.page_blob {
            return Err(format!(
                "{s} is not an Azure page blob: it cannot be written in place"
            ));
        }
        if !offset.is_multiple_of(PAGE) || !(data.len() as u64).is_multiple_of(PAGE) {
            return Err(format!(
                "internal: a page write at {offset} of {} bytes is not page-aligned",
                data.len()
            ));
        }
        check_range(offset, data.len(), self.size).map_err(|e| format!("{s}: {e}"))?;
        let put_url = self.with_query("comp=page");
        for (i, chunk) in data.chunks(MAX_PUT as usize).enumerate() {
            let at = offset + i as u64 * MAX_PUT;
            let mut req = self
                .agent
                .put(&put_url)
                .set("x-ms-version", AZURE_VERSION)
                .set("x-ms-page-write", "update")
                .set(
                    "x-ms-range",
                    &format!("bytes={at}-{}", at + chunk.len() as u64 - 1),
                );
            if let Some(etag) = self.etag.borrow().as_deref() {
                req = req.set("If-Match", etag);
            }
            let r = req
                .send_bytes(chunk)
                .map_err(|e| request_error(&s, "writing", e))?;
            if let Some(new) = r.header("ETag") {
                *self.etag.borrow_mut() = Some(new.to_string());
            }
            let mut t = self.traffic.borrow_mut();
            t.requests += 1;
            t.bytes_written += chunk.len() as u64;
        }
        Ok(())
    }
}

impl ReadAt for HttpSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let s = self.shown();
        let end = offset + buf.len() as u64 - 1;
        let mut req = self
            .agent
            .get(&self.url)
            .set("x-ms-version", AZURE_VERSION)
            .set("Range", &format!("bytes={offset}-{end}"));
        if let Some(etag) = self.etag.borrow().as_deref() {
            req = req.set("If-Match", etag);
        }
        let r = req
            .call()
            .map_err(|e| io::Error::other(request_error(&s, "reading", e)))?;
        if r.status() != 206 {
            return Err(io::Error::other(format!(
                "reading {s}: the server answered {} to a range request",
                r.status()
            )));
        }
        r.into_reader()
            .read_exact(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {s} at byte {offset}: {e}")))?;
        let mut t = self.traffic.borrow_mut();
        t.requests += 1;
        t.bytes_read += buf.len() as u64;
        Ok(())
    }
}
