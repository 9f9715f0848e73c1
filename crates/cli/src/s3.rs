//! S3 objects (an AWS VM export, any S3-compatible store): read by signed ranged `GET`s, and
//! fixed into a new object by a server-side multipart copy — the unchanged ranges copied by the
//! store itself (`UploadPartCopy`), only the parts that hold changes uploaded — so the image never
//! streams through this machine. S3 objects cannot be changed in place: the input stays as it was
//! and is the way back.
//!
//! Credentials come the usual AWS way: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`, else the `[default]` (or `AWS_PROFILE`) section of
//! `~/.aws/credentials`; the region from `AWS_REGION` / `AWS_DEFAULT_REGION` (default
//! `us-east-1`); another store's endpoint from `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (then
//! path-style URLs). Requests are signed with AWS Signature Version 4. No key or token is ever
//! printed.

use crate::remote::Traffic;
use kaifuku_container::OutputPlan;
use kaifuku_io::{check_range, ReadAt};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::io::{self, Read};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Credentials, region and endpoint.
#[derive(Clone)]
pub struct S3Config {
    endpoint: Option<String>,
    region: String,
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `key = value` lines of section `[section]` of an INI file (as `~/.aws/credentials` is).
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') && line.ends_with(']') {
            inside = line[1..line.len() - 1].trim() == section;
        } else if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    out
}

impl S3Config {
    pub fn from_env() -> Result<S3Config, String> {
        let (mut access, mut secret, mut token) = (
            env("AWS_ACCESS_KEY_ID"),
            env("AWS_SECRET_ACCESS_KEY"),
            env("AWS_SESSION_TOKEN"),
        );
        if access.is_none() || secret.is_none() {
            let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
            let path = env("AWS_SHARED_CREDENTIALS_FILE")
                .or_else(|| env("HOME").map(|h| format!("{h}/.aws/credentials")));
            if let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) {
                for (k, v) in ini_section(&text, &profile) {
                    match k.as_str() {
                        "aws_access_key_id" => access = Some(v),
                        "aws_secret_access_key" => secret = Some(v),
                        "aws_session_token" => token = Some(v),
                        _ => {}
                    }
                }
            }
        }
        let (Some(access_key), Some(secret_key)) = (access, secret) else {
            return Err(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                 give them in ~/.aws/credentials"
                    .into(),
            );
        };
        Ok(S3Config {
            endpoint: env("AWS_ENDPOINT_URL_S3")
                .or_else(|| env("AWS_ENDPOINT_URL"))
                .map(|e| e.trim_end_matches('/').to_string()),
            region: env("AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            access_key,
            secret_key,
            session_token: token,
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// RFC 3986 encoding as SigV4 wants it; `/` kept when `keep_slash`.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b'/' if keep_slash => o.push('/'),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

/// UTC `YYYYMMDDTHHMMSSZ` for a Unix time (the proleptic Gregorian calendar, days from civil).
fn amz_date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A signed request's parts: the query string as sent, the headers to send (host included) and
/// the `Authorization` value.
struct Signed {
    query_string: String,
    headers: Vec<(String, String)>,
    authorization: String,
}

/// AWS Signature Version 4 of one S3 request (`date_time` as [`amz_date`] gives it). `headers`
/// are signed with `host`, `x-amz-content-sha256` (`payload`, the body's SHA-256 in hex) and
/// `x-amz-date`.
#[allow(clippy::too_many_arguments)]
fn sign(
    cfg: &S3Config,
    method: &str,
    host: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(String, String)],
    payload: &str,
    date_time: &str,
) -> Signed {
    let date = &date_time[..8];
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    q.sort();
    let query_string = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut signed: Vec<(String, String)> = vec![
        ("host".into(), host.to_string()),
        ("x-amz-content-sha256".into(), payload.to_string()),
        ("x-amz-date".into(), date_time.to_string()),
    ];
    for (k, v) in headers {
        signed.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    signed.sort();
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_names = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical =
        format!("{method}\n{path}\n{query_string}\n{canonical_headers}\n{signed_names}\n{payload}");
    let scope = format!("{date}/{}/s3/aws4_request", cfg.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = hmac(
        format!("AWS4{}", cfg.secret_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [cfg.region.as_str(), "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    Signed {
        query_string,
        headers: signed,
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_names}, Signature={signature}",
            cfg.access_key
        ),
    }
}

/// A client for one store.
pub struct S3Client {
    agent: ureq::Agent,
    cfg: S3Config,
    traffic: RefCell<Traffic>,
}

impl S3Client {
    pub fn new(cfg: S3Config) -> S3Client {
        S3Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(30))
                .timeout(Duration::from_secs(600))
                .build(),
            cfg,
            traffic: RefCell::new(Traffic::default()),
        }
    }

    pub fn traffic(&self) -> Traffic {
        *self.traffic.borrow()
    }

    /// URL, Host and canonical URI of an object.
    fn address(&self, loc: &S3Location) -> (String, String, String) {
        let key = uri_encode(&loc.key, true);
        match &self.cfg.endpoint {
            Some(ep) => {
                let host = ep
                    .split_once("://")
                    .map_or(ep.as_str(), |x| x.1)
                    .to_string();
                let path = format!("/{}/{key}", uri_encode(&loc.bucket, false));
                (format!("{ep}{path}"), host, path)
            }
            None => {
                let host = format!("{}.s3.{}.amazonaws.com", loc.bucket, self.cfg.region);
                let path = format!("/{key}");
                (format!("https://{host}{path}"), host, path)
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
        let (url, host, path) = self.address(loc);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let payload = sha256_hex(body);
        let mut extra: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if let Some(t) = &self.cfg.session_token {
            extra.push(("x-amz-security-token".into(), t.clone()));
        }
        let signed = sign(
            &self.cfg,
            method,
            &host,
            &path,
            query,
            &extra,
            &payload,
            &amz_date(now),
        );
        let query_string = signed.query_string.clone();
        let full_url = if query_string.is_empty() {
            url
        } else {
            format!("{url}?{query_string}")
        };
        let mut req = self
            .agent
            .request(method, &full_url)
            .set("Authorization", &signed.authorization);
        for (k, v) in &signed.headers {
            if k != "host" {
                req = req.set(k, v);
            }
        }
        let result = if body.is_empty() && method != "PUT" && method != "POST" {
            req.call()
        } else {
            req.send_bytes(body)
        };
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
            ureq::Error::Transport(t) => format!(
                "{what} {loc}: {}{}",
                t.kind(),
                t.message().map(|m| format!(": {m}")).unwrap_or_default()
            ),
        })
    }

    fn body_text(r: ureq::Response, loc: &S3Location) -> Result<String, String> {
        let mut s = String::new();
        r.into_reader()
            .take(1 << 20)
            .read_to_string(&mut s)
            .map_err(|e| format!("reading the answer about {loc}: {e}"))?;
        Ok(s)
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
    fn hmac_sha256_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sigv4_signing_key_matches_the_aws_example() {
        // AWS's documented example of deriving the signing key.
        let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215");
        for part in ["us-east-1", "iam", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn a_request_is_signed_as_the_aws_example_is() {
        // "Example: GET Object" of AWS's Signature Version 4 documentation for S3.
        let cfg = S3Config {
            endpoint: None,
            region: "us-east-1".into(),
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let s = sign(
            &cfg,
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            &[],
            &[("range".into(), "bytes=0-9".into())],
            &sha256_hex(b""),
            "20130524T000000Z",
        );
        assert_eq!(
            s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn dates_and_encoding() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_721_368_082), "20240719T054802Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(uri_encode("a b/c~d+e", true), "a%20b/c~d%2Be");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }

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
