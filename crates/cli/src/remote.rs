//! Disks where they live: an image behind an HTTP(S) URL, read by ranged `GET`s (any server that
//! answers ranges), and an Azure page blob written in place by `Put Page` — kaifuku reads a few MiB
//! of a 128 GiB disk and writes a few KiB, so nothing is downloaded or uploaded whole.
//!
//! A remote image is one more positioned reader under the block cache; the core does not know.
//! Writes go page by page (512-byte aligned: the sectors at the edges of a change are read and
//! written back whole), each conditional on the blob's ETag, so a concurrent writer is detected
//! rather than overwritten. The URL's query (a SAS token: the credential) never appears in
//! output, reports or errors: [`shown`] is what people see.

use kaifuku_container::{FileFill, FileWrite, OutputPlan};
use kaifuku_io::{check_range, CacheConfig, ReadAt};
use std::cell::RefCell;
use std::io::{self, Read};
use std::time::Duration;

/// The REST API version sent with every request (Azure needs one; other servers ignore it).
const AZURE_VERSION: &str = "2021-08-06";
/// Azure's page size: a Put Page covers whole pages.
pub const PAGE: u64 = 512;
/// The most one Put Page may carry.
const MAX_PUT: u64 = 4 << 20;

/// Whether the command line names a URL rather than a file.
pub fn is_url(arg: &std::ffi::OsStr) -> bool {
    arg.to_str()
        .is_some_and(|s| s.starts_with("https://") || s.starts_with("http://"))
}

/// The URL as people may see it: scheme, host and path, never the query (a SAS token) nor any
/// user and password.
pub fn shown(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or("");
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let hidden = if url.contains('?') { "?…" } else { "" };
            format!("{scheme}://{host}/{path}{hidden}")
        }
        None => "(URL)".to_string(),
    }
}

/// The read cache for a remote disk: every read is a round trip, so fewer, larger ones than for a
/// file (128 KiB blocks, read-ahead up to 2 MiB, 16 MiB kept).
pub fn cache_config() -> CacheConfig {
    CacheConfig {
        block_size: 128 * 1024,
        capacity_blocks: 128,
        max_readahead_blocks: 16,
    }
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

/// The changes of `plan` as whole-page writes: every run of pages a write or fill touches, with
/// the bytes at its edges that no change covers read from `source` (the blob as it is), then the
/// changes laid over them. Runs are in offset order and do not overlap; none is longer than
/// `max_run` bytes (the journal reset's fill is not held whole).
pub fn page_runs<R: ReadAt>(
    plan: &OutputPlan,
    source: &R,
    max_run: u64,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    enum Change<'a> {
        Bytes(&'a FileWrite),
        Fill(&'a FileFill),
    }
    let mut changes: Vec<(u64, u64, Change)> = plan
        .writes
        .iter()
        .map(|w| (w.file_offset, w.end(), Change::Bytes(w)))
        .chain(
            plan.fills
                .iter()
                .map(|f| (f.file_offset, f.file_offset + f.len, Change::Fill(f))),
        )
        .filter(|(s, e, _)| e > s)
        .collect();
    changes.sort_by_key(|c| c.0);
    // Page-aligned runs covering the changes (touching or overlapping pages merged).
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (s, e, _) in &changes {
        let (a, b) = (s / PAGE * PAGE, e.div_ceil(PAGE) * PAGE);
        match runs.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => runs.push((a, b)),
        }
    }
    let size = source.size();
    let mut first_change = 0usize;
    for (run_start, run_end) in runs {
        if run_end > size {
            return Err(format!(
                "a change ends at byte {run_end}, past the blob's {size} bytes"
            ));
        }
        let mut at = run_start;
        while at < run_end {
            let end = (at + max_run.max(PAGE) / PAGE * PAGE).min(run_end);
            let mut buf = vec![0u8; (end - at) as usize];
            // What the changes cover of this window; the rest keeps the blob's bytes.
            let mut covered = vec![false; buf.len()];
            while first_change < changes.len() && changes[first_change].1 <= at {
                first_change += 1;
            }
            for (s, e, c) in changes[first_change..].iter() {
                if *s >= end {
                    break;
                }
                let (from, to) = ((*s).max(at), (*e).min(end));
                if from >= to {
                    continue;
                }
                let (bf, bt) = ((from - at) as usize, (to - at) as usize);
                match c {
                    Change::Bytes(w) => buf[bf..bt].copy_from_slice(
                        &w.bytes[(from - w.file_offset) as usize..(to - w.file_offset) as usize],
                    ),
                    Change::Fill(f) => buf[bf..bt].fill(f.byte),
                }
                covered[bf..bt].fill(true);
            }
            // Only the pages at a run's edges can be partly covered: read what they keep.
            for page in (0..buf.len()).step_by(PAGE as usize) {
                let p = &covered[page..page + PAGE as usize];
                if p.iter().all(|c| *c) {
                    continue;
                }
                let mut orig = vec![0u8; PAGE as usize];
                source
                    .read_at(at + page as u64, &mut orig)
                    .map_err(|e| e.to_string())?;
                for (i, c) in p.iter().enumerate() {
                    if !c {
                        buf[page + i] = orig[i];
                    }
                }
            }
            each(at, &buf)?;
            at = end;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaifuku_container::{FileWriteLabel, WriteHow};

    #[test]
    fn the_query_is_never_shown() {
        assert_eq!(
            shown("https://acct.blob.core.windows.net/vhds/disk.vhd?sv=2022&sig=SECRET"),
            "https://acct.blob.core.windows.net/vhds/disk.vhd?…"
        );
        assert_eq!(
            shown("https://user:pw@host/x.vhd#frag"),
            "https://host/x.vhd"
        );
        assert_eq!(shown("http://host"), "http://host/");
        assert!(!shown("https://h/p?sig=abc%2F").contains("sig"));
    }

    #[test]
    fn changes_become_whole_pages_with_their_edges_kept() {
        let image: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
        let label = |a, b| FileWriteLabel::virtual_bytes(a, b, WriteHow::Bytes);
        let plan = OutputPlan {
            writes: vec![
                FileWrite {
                    file_offset: 10,
                    bytes: vec![1; 5],
                    label: label(10, 15),
                },
                FileWrite {
                    file_offset: 600,
                    bytes: vec![2; 4],
                    label: label(600, 604),
                },
            ],
            fills: vec![FileFill {
                file_offset: 3000,
                len: 2100,
                byte: 0xFF,
                label: label(3000, 5100),
            }],
            file_size: None,
        };
        let mut got = Vec::new();
        page_runs(&plan, &image, 1024, |at, b| {
            got.push((at, b.to_vec()));
            Ok(())
        })
        .unwrap();
        let mut expected = image.clone();
        expected[10..15].fill(1);
        expected[600..604].fill(2);
        expected[3000..5100].fill(0xFF);
        // Pages 0-1 (one run), then 2560..5120 cut into windows of at most 1024 bytes.
        let starts: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(starts, vec![0, 2560, 3584, 4608]);
        let mut rebuilt = image.clone();
        for (at, b) in &got {
            assert_eq!(at % PAGE, 0);
            assert_eq!(b.len() as u64 % PAGE, 0);
            assert!(b.len() <= 1024);
            rebuilt[*at as usize..*at as usize + b.len()].copy_from_slice(b);
        }
        assert_eq!(rebuilt, expected);
    }
}
