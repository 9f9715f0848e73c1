//! S3 objects (an AWS VM export, any S3-compatible store): read by signed ranged `GET`s, and
//! fixed into a new object by a server-side multipart copy — the unchanged ranges copied by the
//! store itself (`UploadPartCopy`), only the parts that hold changes uploaded — so the image never
//! streams through this machine. S3 objects cannot be changed in place: the input stays as it was
//! and is the way back.
//!
//! Credentials, region and signing as [`crate::aws`] says; another store's endpoint from
//! `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (then path-style URLs).

use crate::aws::{body_text, send, transport_error, uri_encode, AwsConfig};
use crate::remote::Traffic;
use kaifuku_container::OutputPlan;
use kaifuku_io::{check_range, ReadAt};
use std::cell::RefCell;
use std::io::{self, Read};

/// Whether the command line names an S3 object (`s3://BUCKET/KEY`).
pub fn is_s3(arg: &std::ffi::OsStr) -> bool {
    arg.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// Where an object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    pub fn parse(arg: &str) -> Result<S3Location, String> {
        let rest = arg
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{arg} is not an s3://BUCKET/KEY address"))?;
        match rest.split_once('/') {
            Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok(S3Location {
                bucket: b.to_string(),
                key: k.to_string(),
            }),
            _ => Err(format!("{arg} is not an s3://BUCKET/KEY address")),
        }
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// A client for one store.
pub struct S3Client {
    agent: ureq::Agent,
    cfg: AwsConfig,
    endpoint: Option<String>,
    traffic: RefCell<Traffic>,
}

impl S3Client {
    pub fn new(cfg: AwsConfig) -> S3Client {
        S3Client {
            agent: crate::aws::agent(),
            cfg,
            endpoint: AwsConfig::endpoint("S3"),
            traffic: RefCell::new(Traffic::default()),
        }
    }

    pub fn traffic(&self) -> Traffic {
        *self.traffic.borrow()
    }

    /// Scheme and authority, Host and canonical URI of an object.
    fn address(&self, loc: &S3Location) -> (String, String, String) {
        let key = uri_encode(&loc.key, true);
        match &self.endpoint {
            Some(ep) => {
                let host = ep
                    .split_once("://")
                    .map_or(ep.as_str(), |x| x.1)
                    .to_string();
                let path = format!("/{}/{key}", uri_encode(&loc.bucket, false));
                (ep.clone(), host, path)
            }
            None => {
                let host = format!("{}.s3.{}.amazonaws.com", loc.bucket, self.cfg.region);
                let path = format!("/{key}");
                (format!("https://{host}"), host, path)
            }
        }
    }

    /// One signed request. `query` pairs are sent as given (values encoded here); `headers` are
    /// signed too. A status outside 2xx is an error worded with `what`, never with a credential.
    fn call(
        &self,
        method: &str,
        loc: &S3Location,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: &[u8],
        what: &str,
    ) -> Result<ureq::Response, String> {
        let (base, host, path) = self.address(loc);
        let result = send(
            &self.agent,
            &self.cfg,
            "s3",
            method,
            (&base, &host),
            &path,
            query,
            headers,
            body,
        );
        let mut t = self.traffic.borrow_mut();
        t.requests += 1;
        t.bytes_written += body.len() as u64;
        drop(t);
        result.map_err(|e| match e {
            ureq::Error::Status(412, _) => format!(
                "{what} {loc}: the object changed since kaifuku first read it; nothing was written"
            ),
            ureq::Error::Status(code @ (401 | 403), _) => format!(
                "{what} {loc}: access refused ({code}); check the credentials and that they allow this"
            ),
            ureq::Error::Status(404, _) => format!("{what} {loc}: no such bucket or object"),
            ureq::Error::Status(code, r) => {
                format!("{what} {loc}: the store answered {code} {}", r.status_text())
            }
            ureq::Error::Transport(t) => transport_error(what, loc, t),
        })
    }

    fn body_text(r: ureq::Response, loc: &S3Location) -> Result<String, String> {
        body_text(r, 1 << 20, loc)
    }

    /// Deletes an object (an output that did not verify).
    pub fn delete(&self, loc: &S3Location) -> Result<(), String> {
        self.call("DELETE", loc, &[], &[], &[], "deleting")
            .map(|_| ())
    }

    /// Whether an object exists (HEAD).
    pub fn exists(&self, loc: &S3Location) -> Result<bool, String> {
        match self.call("HEAD", loc, &[], &[], &[], "looking for") {
            Ok(_) => Ok(true),
            Err(e) if e.contains("no such bucket or object") => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The text between `<tag>` and `</tag>`, the first one.
fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(
        xml[start..end]
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// An object read by ranges.
pub struct S3Object<'a> {
    client: &'a S3Client,
    pub loc: S3Location,
    size: u64,
    etag: Option<String>,
}

impl<'a> S3Object<'a> {
    /// Opens `loc`: one ranged GET of its first byte gives the size and the ETag.
    pub fn open(client: &'a S3Client, loc: S3Location) -> Result<S3Object<'a>, String> {
        let r = client.call(
            "GET",
            &loc,
            &[],
            &[("range", "bytes=0-0".to_string())],
            &[],
            "reading",
        )?;
        let size = r
            .header("Content-Range")
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("{loc}: the store gave no size for a range request"))?;
        let etag = r.header("ETag").map(str::to_string);
        let mut one = Vec::new();
        let _ = r.into_reader().take(2).read_to_end(&mut one);
        client.traffic.borrow_mut().bytes_read += one.len() as u64;
        Ok(S3Object {
            client,
            loc,
            size,
            etag,
        })
    }

    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }
}

impl ReadAt for S3Object<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut headers = vec![(
            "range",
            format!("bytes={offset}-{}", offset + buf.len() as u64 - 1),
        )];
        if let Some(e) = &self.etag {
            headers.push(("if-match", e.clone()));
        }
        let r = self
            .client
            .call("GET", &self.loc, &[], &headers, &[], "reading")
            .map_err(io::Error::other)?;
        r.into_reader()
            .read_exact(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", self.loc)))?;
        self.client.traffic.borrow_mut().bytes_read += buf.len() as u64;
        Ok(())
    }
}

/// One part of the new object: copied by the store from the source, or uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Copy { start: u64, end: u64 },
    Upload { start: u64, end: u64 },
}

/// Parts of an output of `size` bytes whose changed ranges are `changed` (sorted), over a source
/// of `source_size` bytes: cells of `cell` bytes, each changed cell uploaded, runs of unchanged
/// cells copied by the store (at most 5 GiB each). Every part but the last is at least `cell`
/// bytes, so at least S3's 5 MiB minimum when `cell` is.
fn parts(size: u64, source_size: u64, changed: &[(u64, u64)], cell: u64) -> Vec<Part> {
    const MAX_COPY: u64 = 5 << 30;
    let mut out: Vec<Part> = Vec::new();
    let mut at = 0u64;
    let mut ci = 0usize;
    while at < size {
        let end = (at + cell).min(size);
        while ci < changed.len() && changed[ci].1 <= at {
            ci += 1;
        }
        let dirty = (ci < changed.len() && changed[ci].0 < end) || end > source_size;
        match (out.last_mut(), dirty) {
            (_, true) => out.push(Part::Upload { start: at, end }),
            (Some(Part::Copy { start, end: e }), false) if end - *start <= MAX_COPY => *e = end,
            (_, false) => out.push(Part::Copy { start: at, end }),
        }
        at = end;
    }
    out
}

/// Writes `dst`, a new object: the source object with `plan`'s changes, by a multipart upload
/// whose unchanged parts the store copies from the source (conditional on its ETag) and whose
/// changed parts are read, changed and uploaded. Aborted (nothing left) on any failure.
pub fn write_fixed_copy(src: &S3Object, dst: &S3Location, plan: &OutputPlan) -> Result<(), String> {
    let client = src.client;
    let size = plan.file_size.unwrap_or(src.size);
    // S3 allows 10000 parts of at least 5 MiB (but the last): cells of 5 MiB, more for very
    // large objects.
    let cell = (size.div_ceil(9_000).div_ceil(1 << 20) << 20).max(5 << 20);
    let mut changed: Vec<(u64, u64)> = plan
        .writes
        .iter()
        .map(|w| (w.file_offset, w.end()))
        .chain(
            plan.fills
                .iter()
                .map(|f| (f.file_offset, f.file_offset + f.len)),
        )
        .collect();
    changed.sort();
    let layout = parts(size, src.size, &changed, cell);
    let r = client.call(
        "POST",
        dst,
        &[("uploads", "")],
        &[],
        &[],
        "starting the upload of",
    )?;
    let xml = S3Client::body_text(r, dst)?;
    let upload_id = xml_value(&xml, "UploadId")
        .ok_or_else(|| format!("starting the upload of {dst}: the store gave no upload id"))?;
    let result = (|| -> Result<Vec<String>, String> {
        let mut etags = Vec::new();
        let copy_source = format!(
            "/{}/{}",
            uri_encode(&src.loc.bucket, false),
            uri_encode(&src.loc.key, true)
        );
        for (i, part) in layout.iter().enumerate() {
            let number = (i + 1).to_string();
            let q = [
                ("partNumber", number.as_str()),
                ("uploadId", upload_id.as_str()),
            ];
            let etag = match *part {
                Part::Copy { start, end } => {
                    let mut h = vec![
                        ("x-amz-copy-source", copy_source.clone()),
                        (
                            "x-amz-copy-source-range",
                            format!("bytes={start}-{}", end - 1),
                        ),
                    ];
                    if let Some(e) = src.etag() {
                        h.push(("x-amz-copy-source-if-match", e.to_string()));
                    }
                    let r = client.call("PUT", dst, &q, &h, &[], "copying into")?;
                    let xml = S3Client::body_text(r, dst)?;
                    xml_value(&xml, "ETag")
                }
                Part::Upload { start, end } => {
                    let mut buf = vec![0u8; (end - start) as usize];
                    let kept_end = end.min(src.size);
                    if kept_end > start {
                        src.read_at(start, &mut buf[..(kept_end - start) as usize])
                            .map_err(|e| e.to_string())?;
                    }
                    for w in &plan.writes {
                        let (a, b) = (w.file_offset.max(start), w.end().min(end));
                        if a < b {
                            buf[(a - start) as usize..(b - start) as usize].copy_from_slice(
                                &w.bytes
                                    [(a - w.file_offset) as usize..(b - w.file_offset) as usize],
                            );
                        }
                    }
                    for f in &plan.fills {
                        let (a, b) = (f.file_offset.max(start), (f.file_offset + f.len).min(end));
                        if a < b {
                            buf[(a - start) as usize..(b - start) as usize].fill(f.byte);
                        }
                    }
                    let r = client.call("PUT", dst, &q, &[], &buf, "uploading to")?;
                    r.header("ETag").map(str::to_string)
                }
            };
            etags.push(etag.ok_or_else(|| format!("the store gave no ETag for part {number}"))?);
        }
        Ok(etags)
    })();
    let etags = match result {
        Ok(e) => e,
        Err(e) => {
            let _ = client.call(
                "DELETE",
                dst,
                &[("uploadId", upload_id.as_str())],
                &[],
                &[],
                "aborting the upload of",
            );
            return Err(e);
        }
    };
    let mut body = String::from("<CompleteMultipartUpload>");
    for (i, e) in etags.iter().enumerate() {
        body.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
            i + 1,
            e.replace('&', "&amp;").replace('"', "&quot;")
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    let r = client.call(
        "POST",
        dst,
        &[("uploadId", upload_id.as_str())],
        &[],
        body.as_bytes(),
        "completing the upload of",
    )?;
    // S3 can answer 200 with an error document.
    let xml = S3Client::body_text(r, dst)?;
    if xml.contains("<Error>") {
        return Err(format!(
            "completing the upload of {dst}: {}",
            xml_value(&xml, "Message").unwrap_or_else(|| "the store reported an error".into())
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_cells_are_uploaded() {
        let mib = 1u64 << 20;
        let p = parts(
            100 * mib,
            100 * mib,
            &[(20 * mib + 5, 20 * mib + 10), (95 * mib, 96 * mib)],
            8 * mib,
        );
        assert_eq!(
            p,
            vec![
                Part::Copy {
                    start: 0,
                    end: 16 * mib
                },
                Part::Upload {
                    start: 16 * mib,
                    end: 24 * mib
                },
                Part::Copy {
                    start: 24 * mib,
                    end: 88 * mib
                },
                Part::Upload {
                    start: 88 * mib,
                    end: 96 * mib
                },
                Part::Copy {
                    start: 96 * mib,
                    end: 100 * mib
                },
            ]
        );
        // Past the source's end everything is uploaded (a re-streamed VMDK grows).
        let p = parts(20 * mib, 12 * mib, &[], 8 * mib);
        assert_eq!(
            p,
            vec![
                Part::Copy {
                    start: 0,
                    end: 8 * mib
                },
                Part::Upload {
                    start: 8 * mib,
                    end: 16 * mib
                },
                Part::Upload {
                    start: 16 * mib,
                    end: 20 * mib
                },
            ]
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(
            S3Location::parse("s3://b/dir/disk.vmdk").unwrap(),
            S3Location {
                bucket: "b".into(),
                key: "dir/disk.vmdk".into()
            }
        );
        assert!(S3Location::parse("s3://b").is_err());
        assert!(S3Location::parse("s3:///k").is_err());
    }
}
