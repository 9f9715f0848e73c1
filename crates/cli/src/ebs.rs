//! EBS snapshots (`ebs://snap-…`) through the EBS direct APIs: a snapshot is read block by block
//! (`ListSnapshotBlocks`, `GetSnapshotBlock`), only the blocks kaifuku needs, and a fix is
//! written as a **new snapshot whose parent is the original** (`StartSnapshot` with
//! `ParentSnapshotId`, `PutSnapshotBlock` for the blocks that hold changes, `CompleteSnapshot`):
//! the original stays as it was and is the way back, and the new one holds only the changed
//! blocks. Its id is printed; the operator makes a volume of it as of any snapshot.
//!
//! The listing is read lazily, a window of block indices at a time from the first block a read
//! needs, so what is known stays as small as what is read. A block a snapshot does not list holds
//! zeros. The new snapshot is read back on its own for verification: the direct APIs list a
//! child's inherited blocks as its own, so a block its parent lists and it does not is an error
//! (the service did not make it a child), never zeros taken for the disk ([`Inheritance`]). Every
//! block read is checked against the SHA-256 the service gives with it; a request the service
//! throttles or fails (429, 5xx, no answer) is sent again, up to three times.
//!
//! Credentials, region and signing as [`crate::aws`] says; another endpoint from
//! `AWS_ENDPOINT_URL_EBS` (and `AWS_ENDPOINT_URL_EC2`, to delete a new snapshot that does not
//! verify) or `AWS_ENDPOINT_URL`.

use crate::aws::{body_text, send, sha256_hex, transport_error, AwsConfig};
use crate::remote::Traffic;
use base64::Engine;
use kaifuku_container::OutputPlan;
use kaifuku_io::{check_range, ReadAt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Read};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What `-o` (and the batch's `--out-dir`) says for "write the fix as a new snapshot".
pub const NEW_SNAPSHOT: &str = "ebs://new";

/// Whether the command line names an EBS snapshot (`ebs://snap-…`, or `ebs://new` as an output).
pub fn is_ebs(arg: &std::ffi::OsStr) -> bool {
    arg.to_str().is_some_and(|s| s.starts_with("ebs://"))
}

/// A snapshot's id (`snap-` and hexadecimal digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotId(String);

impl SnapshotId {
    pub fn parse(arg: &str) -> Result<SnapshotId, String> {
        let id = arg.strip_prefix("ebs://").unwrap_or(arg);
        let ok = id.strip_prefix("snap-").is_some_and(|h| {
            h.len() >= 8 && h.len() <= 32 && h.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if ok {
            Ok(SnapshotId(id.to_string()))
        } else {
            Err(format!(
                "{arg} is not an EBS snapshot: write ebs://snap-… with the snapshot's id"
            ))
        }
    }

    pub fn id(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ebs://{}", self.0)
    }
}

/// How many blocks one `ListSnapshotBlocks` asks for (the service allows 100 to 10 000).
const LIST_PAGE: u32 = 1000;
/// Pages a listing may take before kaifuku gives up on a service that keeps answering with
/// empty pages.
const MAX_EMPTY_PAGES: u32 = 10_000;
/// Blocks kept after reading, for the cache's smaller reads inside one block.
const RECENT_BLOCKS: usize = 8;
/// The largest block size accepted (the service's is 512 KiB).
const MAX_BLOCK: u64 = 16 << 20;

/// A client for the EBS direct APIs (and EC2, to delete a snapshot).
pub struct EbsClient {
    agent: ureq::Agent,
    cfg: AwsConfig,
    ebs_endpoint: Option<String>,
    ec2_endpoint: Option<String>,
    traffic: RefCell<Traffic>,
}

/// A request that failed: the HTTP status, if the service answered, and the error as worded for
/// the user.
#[derive(Debug)]
pub struct Failure {
    pub status: Option<u16>,
    pub text: String,
}

impl From<Failure> for String {
    fn from(f: Failure) -> String {
        f.text
    }
}

/// Statuses (and no answer at all) worth sending the same request again for: throttling and the
/// service's own trouble. Every request kaifuku sends is idempotent (a snapshot is started with
/// a client token).
fn transient(status: Option<u16>) -> bool {
    matches!(status, None | Some(429 | 500 | 502 | 503 | 504))
}

/// How many times a transient failure is tried again (after 1 s, 2 s, then 4 s).
const RETRIES: u32 = 3;

impl EbsClient {
    pub fn new(cfg: AwsConfig) -> EbsClient {
        EbsClient {
            agent: crate::aws::agent(),
            cfg,
            ebs_endpoint: AwsConfig::endpoint("EBS"),
            ec2_endpoint: AwsConfig::endpoint("EC2"),
            traffic: RefCell::new(Traffic::default()),
        }
    }

    pub fn traffic(&self) -> Traffic {
        *self.traffic.borrow()
    }

    /// A JSON (or XML) answer's `Message`, its first line, without any credential in it.
    fn service_message(&self, r: ureq::Response) -> String {
        let s = body_text(r, 64 << 10, &"").unwrap_or_default();
        serde_json::from_str::<Value>(&s)
            .ok()
            .and_then(|v| {
                v.get("Message")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| {
                let start = s.find("<Message>")? + 9;
                let end = s[start..].find("</Message>")? + start;
                Some(s[start..end].to_string())
            })
            .map(|m| {
                let first: String = m.lines().next().unwrap_or("").chars().take(300).collect();
                format!(": {}", self.cfg.redact(&first))
            })
            .unwrap_or_default()
    }

    /// One signed request to `service` (`ebs` or `ec2`) at `path`, sent again (up to
    /// [`RETRIES`] times, waiting longer each time) while the service is throttling or in
    /// trouble. A status outside 2xx is an error worded with `what` and `about`, never with a
    /// credential.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        service: &str,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: &[u8],
        what: &str,
        about: &str,
    ) -> Result<ureq::Response, Failure> {
        let mut wait = Duration::from_secs(1);
        for _ in 0..RETRIES {
            match self.call_once(service, method, path, query, headers, body, what, about) {
                Err(f) if transient(f.status) => {
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                done => return done,
            }
        }
        self.call_once(service, method, path, query, headers, body, what, about)
    }

    #[allow(clippy::too_many_arguments)]
    fn call_once(
        &self,
        service: &str,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: &[u8],
        what: &str,
        about: &str,
    ) -> Result<ureq::Response, Failure> {
        let endpoint = if service == "ec2" {
            &self.ec2_endpoint
        } else {
            &self.ebs_endpoint
        };
        let (base, host) = match endpoint {
            Some(ep) => (
                ep.clone(),
                ep.split_once("://")
                    .map_or(ep.as_str(), |x| x.1)
                    .to_string(),
            ),
            None => {
                let host = format!("{service}.{}.amazonaws.com", self.cfg.region);
                (format!("https://{host}"), host)
            }
        };
        let result = send(
            &self.agent,
            &self.cfg,
            service,
            method,
            (&base, &host),
            path,
            query,
            headers,
            body,
        );
        let mut t = self.traffic.borrow_mut();
        t.requests += 1;
        t.bytes_written += body.len() as u64;
        drop(t);
        result.map_err(|e| match e {
            ureq::Error::Status(code @ (401 | 403), r) => Failure {
                status: Some(code),
                text: format!(
                    "{what} {about}: access refused ({code}{}); check the credentials and that \
                     they allow the EBS direct APIs",
                    self.service_message(r)
                ),
            },
            ureq::Error::Status(404, r) => Failure {
                status: Some(404),
                text: format!(
                    "{what} {about}: no such snapshot or block{}",
                    self.service_message(r)
                ),
            },
            ureq::Error::Status(code, r) => {
                let text = r.status_text().to_string();
                Failure {
                    status: Some(code),
                    text: format!(
                        "{what} {about}: the service answered {code} {text}{}",
                        self.service_message(r)
                    ),
                }
            }
            ureq::Error::Transport(t) => Failure {
                status: None,
                text: transport_error(what, &about, t),
            },
        })
    }

    fn json(r: ureq::Response, about: &str) -> Result<Value, String> {
        let s = body_text(r, 16 << 20, &about)?;
        serde_json::from_str(&s)
            .map_err(|e| format!("the answer about {about} is not the JSON expected: {e}"))
    }

    /// Deletes a snapshot (a new one that did not verify) through EC2's `DeleteSnapshot`.
    pub fn delete(&self, id: &SnapshotId) -> Result<(), String> {
        let body = format!(
            "Action=DeleteSnapshot&SnapshotId={}&Version=2016-11-15",
            id.id()
        );
        self.call(
            "ec2",
            "POST",
            "/",
            &[],
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            )],
            body.as_bytes(),
            "deleting",
            &id.to_string(),
        )
        .map(|_| ())
        .map_err(String::from)
    }
}

/// What is known of a snapshot's listing: windows of block indices whose blocks are all known
/// (listed with their tokens, or absent), and the tokens.
#[derive(Default)]
struct Listing {
    /// Disjoint inclusive ranges, sorted.
    windows: Vec<(u64, u64)>,
    tokens: BTreeMap<u64, String>,
}

impl Listing {
    fn knows(&self, index: u64) -> bool {
        let at = self.windows.partition_point(|w| w.1 < index);
        self.windows.get(at).is_some_and(|w| w.0 <= index)
    }

    fn add_window(&mut self, lo: u64, hi: u64) {
        self.windows.push((lo, hi));
        self.windows.sort();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.windows.len());
        for &(a, b) in &self.windows {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.windows = merged;
    }
}

/// A snapshot read block by block; for a new snapshot, over its parent.
pub struct EbsSnapshot<'a> {
    client: &'a EbsClient,
    pub id: SnapshotId,
    /// `VolumeSize`, GiB.
    volume_gib: u64,
    block_size: u64,
    listing: RefCell<Listing>,
    recent: RefCell<VecDeque<(u64, Rc<Vec<u8>>)>>,
    /// For a new snapshot read back: its parent, and how a block it does not list is read.
    parent: Option<(Box<EbsSnapshot<'a>>, Inheritance)>,
}

/// How a new snapshot read back for verification stands to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inheritance {
    /// As the EBS direct APIs define a child: it lists every block it holds, its parent's
    /// included. A block it does not list while its parent does means the service did not make
    /// it a child — an error, never zeros taken for the disk.
    Checked,
    /// A block it does not list is its parent's: for a service that keeps only a child's own
    /// blocks (the emulator the tests run on, which does not implement `ParentSnapshotId`).
    /// Chosen only by the test switch `KAIFUKU_TEST_EBS_CHILD_OWN_BLOCKS_ONLY`.
    ReadThroughParent,
}

impl Inheritance {
    pub fn from_env() -> Inheritance {
        if std::env::var_os("KAIFUKU_TEST_EBS_CHILD_OWN_BLOCKS_ONLY").is_some() {
            Inheritance::ReadThroughParent
        } else {
            Inheritance::Checked
        }
    }
}

impl<'a> EbsSnapshot<'a> {
    /// Opens a snapshot: the first page of its listing gives its size and block size.
    pub fn open(client: &'a EbsClient, id: SnapshotId) -> Result<EbsSnapshot<'a>, String> {
        let mut s = EbsSnapshot {
            client,
            id,
            volume_gib: 0,
            block_size: 0,
            listing: RefCell::new(Listing::default()),
            recent: RefCell::new(VecDeque::new()),
            parent: None,
        };
        let (gib, block) = s.list_from(0)?;
        if !(1..=1 << 20).contains(&gib)
            || !(512..=MAX_BLOCK).contains(&block)
            || !block.is_power_of_two()
        {
            return Err(format!(
                "{}: the service gives a volume of {gib} GiB in blocks of {block} bytes, which \
                 kaifuku does not read",
                s.id
            ));
        }
        s.volume_gib = gib;
        s.block_size = block;
        Ok(s)
    }

    /// Opens `id`, a snapshot made over `parent`, to read it back: a block it does not list is
    /// checked against, or read from, the parent as `inheritance` says.
    pub fn open_child(
        client: &'a EbsClient,
        id: SnapshotId,
        parent: EbsSnapshot<'a>,
        inheritance: Inheritance,
    ) -> Result<EbsSnapshot<'a>, String> {
        let mut s = EbsSnapshot::open(client, id)?;
        if s.block_size != parent.block_size || s.volume_gib != parent.volume_gib {
            return Err(format!(
                "{} ({} GiB, blocks of {} bytes) does not have its parent's geometry ({} GiB, \
                 blocks of {} bytes)",
                s.id, s.volume_gib, s.block_size, parent.volume_gib, parent.block_size
            ));
        }
        s.parent = Some((Box::new(parent), inheritance));
        Ok(s)
    }

    /// Lists from block `start` until that block's state is known; returns the `VolumeSize` and
    /// `BlockSize` the service gave.
    fn list_from(&self, start: u64) -> Result<(u64, u64), String> {
        let about = self.id.to_string();
        let path = format!("/snapshots/{}/blocks", self.id.id());
        let start_s = start.to_string();
        let max = LIST_PAGE.to_string();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_EMPTY_PAGES {
            let mut q = vec![
                ("maxResults", max.as_str()),
                ("startingBlockIndex", start_s.as_str()),
            ];
            if let Some(t) = &page_token {
                q.push(("pageToken", t.as_str()));
            }
            let r = self.client.call(
                "ebs",
                "GET",
                &path,
                &q,
                &[],
                &[],
                "listing the blocks of",
                &about,
            )?;
            let v = EbsClient::json(r, &about)?;
            let num = |k: &str| v.get(k).and_then(Value::as_u64);
            let (Some(gib), Some(block)) = (num("VolumeSize"), num("BlockSize")) else {
                return Err(format!(
                    "{about}: the service's block listing gives no volume or block size"
                ));
            };
            let mut listing = self.listing.borrow_mut();
            let mut highest: Option<u64> = None;
            for b in v
                .get("Blocks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(i), Some(t)) = (
                    b.get("BlockIndex").and_then(Value::as_u64),
                    b.get("BlockToken").and_then(Value::as_str),
                ) else {
                    return Err(format!("{about}: a listed block has no index or token"));
                };
                if i >= start {
                    listing.tokens.insert(i, t.to_string());
                    highest = Some(highest.map_or(i, |h| h.max(i)));
                }
            }
            page_token = v
                .get("NextToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            match (&page_token, highest) {
                // The last page: everything from `start` on is known.
                (None, _) => {
                    listing.add_window(start, u64::MAX);
                    return Ok((gib, block));
                }
                // Blocks come in order: up to the highest listed, the rest are absent.
                (Some(_), Some(h)) => {
                    listing.add_window(start, h);
                    return Ok((gib, block));
                }
                (Some(_), None) => continue,
            }
        }
        Err(format!(
            "{about}: the service's block listing never reached block {start}"
        ))
    }

    /// Whether this snapshot lists block `index`.
    fn lists(&self, index: u64) -> Result<bool, String> {
        if !self.listing.borrow().knows(index) {
            self.list_from(index)?;
        }
        Ok(self.listing.borrow().tokens.contains_key(&index))
    }

    /// Block `index` as stored in this snapshot (or its parent), or `None` for zeros.
    fn block(&self, index: u64) -> Result<Option<Rc<Vec<u8>>>, String> {
        if let Some((_, b)) = self.recent.borrow().iter().find(|(i, _)| *i == index) {
            return Ok(Some(b.clone()));
        }
        if !self.listing.borrow().knows(index) {
            self.list_from(index)?;
        }
        let token = self.listing.borrow().tokens.get(&index).cloned();
        let Some(token) = token else {
            return match &self.parent {
                Some((p, Inheritance::ReadThroughParent)) => p.block(index),
                Some((p, Inheritance::Checked)) if p.lists(index)? => Err(format!(
                    "{} does not hold block {index}, which its parent {} holds: the service did \
                     not make it a child of its parent",
                    self.id, p.id
                )),
                _ => Ok(None),
            };
        };
        let about = format!("block {index} of {}", self.id);
        let path = format!("/snapshots/{}/blocks/{index}", self.id.id());
        let get = |token: &str| {
            self.client.call(
                "ebs",
                "GET",
                &path,
                &[("blockToken", token)],
                &[],
                &[],
                "reading",
                &about,
            )
        };
        let r = match get(&token) {
            // A block token can be superseded by a later listing of the same snapshot: list
            // again from this block, and try once more with the new token.
            Err(Failure {
                status: Some(400 | 404),
                ..
            }) => {
                let mut listing = self.listing.borrow_mut();
                *listing = Listing::default();
                drop(listing);
                self.list_from(index)?;
                let fresh = self.listing.borrow().tokens.get(&index).cloned();
                let fresh = fresh.ok_or_else(|| {
                    format!("{about}: the block is no longer listed; the snapshot changed")
                })?;
                get(&fresh)?
            }
            r => r?,
        };
        let checksum = r.header("x-amz-Checksum").map(str::to_string);
        let algorithm = r.header("x-amz-Checksum-Algorithm").map(str::to_string);
        let mut data = Vec::with_capacity(self.block_size as usize);
        r.into_reader()
            .take(self.block_size + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("reading {about}: {e}"))?;
        self.client.traffic.borrow_mut().bytes_read += data.len() as u64;
        if data.len() as u64 != self.block_size {
            return Err(format!(
                "{about}: the service gave {} bytes, not a block of {}",
                data.len(),
                self.block_size
            ));
        }
        match (checksum, algorithm.as_deref()) {
            (Some(sum), Some("SHA256")) if sum == block_checksum(&data) => {}
            (Some(_), Some("SHA256")) => {
                return Err(format!(
                    "{about}: the block does not match the SHA-256 the service gave with it"
                ))
            }
            _ => {
                return Err(format!(
                    "{about}: the service gave the block without its SHA-256, so it cannot be \
                     checked"
                ))
            }
        }
        let data = Rc::new(data);
        let mut recent = self.recent.borrow_mut();
        if recent.len() == RECENT_BLOCKS {
            recent.pop_front();
        }
        recent.push_back((index, data.clone()));
        Ok(Some(data))
    }
}

/// The checksum the EBS direct APIs use: SHA-256, Base64.
fn block_checksum(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

impl ReadAt for EbsSnapshot<'_> {
    fn size(&self) -> u64 {
        self.volume_gib << 30
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size())?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let index = at / self.block_size;
            let within = (at % self.block_size) as usize;
            let n = (self.block_size as usize - within).min(buf.len() - done);
            match self.block(index).map_err(io::Error::other)? {
                Some(b) => buf[done..done + n].copy_from_slice(&b[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(())
    }
}

/// Writes the fix as a new snapshot over `parent`: each block that holds a change, read from the
/// parent, changed and put (`before_put` is asked first); then completed. Returns the new
/// snapshot's id. On a failure after the new snapshot was started, it is deleted if the service
/// allows (and the error says so).
pub fn write_child_snapshot(
    parent: &EbsSnapshot,
    plan: &OutputPlan,
    before_put: &mut dyn FnMut() -> Result<(), String>,
) -> Result<SnapshotId, String> {
    let client = parent.client;
    if plan.file_size.is_some_and(|s| s != parent.size()) {
        return Err(format!(
            "this fix would change the disk's size, which an EBS snapshot of {} GiB cannot \
             hold; nothing was written",
            parent.volume_gib
        ));
    }
    let bs = parent.block_size;
    let mut touched = BTreeSet::new();
    let ranges = plan.writes.iter().map(|w| (w.file_offset, w.end())).chain(
        plan.fills
            .iter()
            .map(|f| (f.file_offset, f.file_offset + f.len)),
    );
    for (a, b) in ranges.filter(|(a, b)| a < b) {
        if b > parent.size() {
            return Err(format!(
                "a change at byte {a} lies past the end of {}; nothing was written — please \
                 report this",
                parent.id
            ));
        }
        touched.extend(a / bs..=(b - 1) / bs);
    }
    let about = format!("a new snapshot of {}", parent.id);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // The same request sent twice (a retry) makes one snapshot.
    let client_token = sha256_hex(format!("{} {now} {}", parent.id, std::process::id()).as_bytes());
    let body = serde_json::json!({
        "VolumeSize": parent.volume_gib,
        "ParentSnapshotId": parent.id.id(),
        "Description": format!("kaifuku fix of {}", parent.id.id()),
        "ClientToken": &client_token[..32],
        "Timeout": 60,
    })
    .to_string();
    let r = client.call(
        "ebs",
        "POST",
        "/snapshots",
        &[],
        &[("content-type", "application/json".to_string())],
        body.as_bytes(),
        "starting",
        &about,
    )?;
    let v = EbsClient::json(r, &about)?;
    let new_id = v
        .get("SnapshotId")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("starting {about}: the service gave no snapshot id"))
        .and_then(SnapshotId::parse)?;
    let written = (|| -> Result<(), String> {
        if v.get("BlockSize").and_then(Value::as_u64) != Some(bs) {
            return Err(format!(
                "{new_id} has another block size than {}",
                parent.id
            ));
        }
        let path = |i: u64| format!("/snapshots/{}/blocks/{i}", new_id.id());
        for &index in &touched {
            let start = index * bs;
            let mut buf = match parent.block(index)? {
                Some(b) => b.as_ref().clone(),
                None => vec![0u8; bs as usize],
            };
            let end = start + bs;
            for w in &plan.writes {
                let (a, b) = (w.file_offset.max(start), w.end().min(end));
                if a < b {
                    buf[(a - start) as usize..(b - start) as usize].copy_from_slice(
                        &w.bytes[(a - w.file_offset) as usize..(b - w.file_offset) as usize],
                    );
                }
            }
            for f in &plan.fills {
                let (a, b) = (f.file_offset.max(start), (f.file_offset + f.len).min(end));
                if a < b {
                    buf[(a - start) as usize..(b - start) as usize].fill(f.byte);
                }
            }
            before_put()?;
            client.call(
                "ebs",
                "PUT",
                &path(index),
                &[],
                &[
                    ("x-amz-Data-Length", bs.to_string()),
                    ("x-amz-Checksum", block_checksum(&buf)),
                    ("x-amz-Checksum-Algorithm", "SHA256".to_string()),
                    ("content-type", "application/octet-stream".to_string()),
                ],
                &buf,
                "writing",
                &format!("block {index} of {new_id}"),
            )?;
        }
        let r = client.call(
            "ebs",
            "POST",
            &format!("/snapshots/completion/{}", new_id.id()),
            &[],
            &[("x-amz-ChangedBlocksCount", touched.len().to_string())],
            &[],
            "completing",
            &new_id.to_string(),
        )?;
        let v = EbsClient::json(r, &new_id.to_string())?;
        match v.get("Status").and_then(Value::as_str) {
            Some("completed") => Ok(()),
            Some("pending") => wait_completed(client, &new_id),
            other => Err(format!(
                "completing {new_id}: the service says its status is {}",
                other.unwrap_or("unknown")
            )),
        }
    })();
    match written {
        Ok(()) => Ok(new_id),
        Err(e) => Err(format!(
            "{e}. {} is unchanged; the unfinished {new_id} {}",
            parent.id,
            if client.delete(&new_id).is_ok() {
                "was deleted"
            } else {
                "could not be deleted: delete it (aws ec2 delete-snapshot --snapshot-id …)"
            }
        )),
    }
}

/// Waits (up to 30 minutes) until a snapshot the service is still completing can be listed. A
/// refusal (401, 403, 404) ends the wait at once.
fn wait_completed(client: &EbsClient, id: &SnapshotId) -> Result<(), String> {
    crate::stdio::err_line(&format!(
        "kaifuku: {id} is being completed by the service; waiting (up to 30 minutes)"
    ));
    let start = std::time::Instant::now();
    loop {
        let listed = client.call(
            "ebs",
            "GET",
            &format!("/snapshots/{}/blocks", id.id()),
            &[("maxResults", "100")],
            &[],
            &[],
            "listing the blocks of",
            &id.to_string(),
        );
        match listed {
            Ok(_) => return Ok(()),
            Err(f) if matches!(f.status, Some(401 | 403 | 404)) => return Err(f.text),
            Err(f) if start.elapsed() > Duration::from_secs(30 * 60) => {
                return Err(format!(
                    "{id} did not complete within 30 minutes: {}",
                    f.text
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_secs(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids() {
        assert_eq!(
            SnapshotId::parse("ebs://snap-0123456789abcdef0")
                .unwrap()
                .id(),
            "snap-0123456789abcdef0"
        );
        assert_eq!(
            SnapshotId::parse("snap-01234567").unwrap().to_string(),
            "ebs://snap-01234567"
        );
        for bad in [
            "ebs://new",
            "ebs://snap-",
            "ebs://snap-xyz12345",
            "ebs://vol-01234567",
            "ebs://snap-0123/x",
        ] {
            assert!(SnapshotId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listing_windows_merge_and_say_what_is_known() {
        let mut l = Listing::default();
        assert!(!l.knows(0));
        l.add_window(10, 19);
        l.add_window(30, 39);
        assert!(l.knows(10) && l.knows(19) && !l.knows(20) && !l.knows(9) && l.knows(35));
        l.add_window(20, 29);
        assert_eq!(l.windows, vec![(10, 39)]);
        l.add_window(0, u64::MAX);
        assert_eq!(l.windows, vec![(0, u64::MAX)]);
        assert!(l.knows(u64::MAX));
    }

    #[test]
    fn block_checksums_are_base64_sha256() {
        // SHA-256 of the empty string, Base64.
        assert_eq!(
            block_checksum(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
