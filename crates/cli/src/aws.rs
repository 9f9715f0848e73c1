//! What the AWS services kaifuku talks to (S3, the EBS direct APIs, EC2) share: credentials the
//! usual AWS way, the region, an endpoint per service, and AWS Signature Version 4.
//!
//! Credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else the
//! `[default]` (or `AWS_PROFILE`) section of `~/.aws/credentials`; the region from `AWS_REGION` /
//! `AWS_DEFAULT_REGION` (default `us-east-1`); another endpoint from `AWS_ENDPOINT_URL_<SERVICE>`
//! (`_S3`, `_EBS`, `_EC2`) or `AWS_ENDPOINT_URL`, as the AWS CLI reads them. No key or token is
//! ever printed.

use sha2::{Digest, Sha256};

/// Credentials and region.
#[derive(Clone)]
pub struct AwsConfig {
    pub region: String,
    access_key: String,
    secret_key: String,
    pub session_token: Option<String>,
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

impl AwsConfig {
    pub fn from_env() -> Result<AwsConfig, String> {
        let (mut access, mut secret, mut token) = (
            env("AWS_ACCESS_KEY_ID"),
            env("AWS_SECRET_ACCESS_KEY"),
            env("AWS_SESSION_TOKEN"),
        );
        if access.is_none() || secret.is_none() {
            // Credentials come from one place: a session token goes with its own key pair.
            (access, secret, token) = (None, None, None);
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
        Ok(AwsConfig {
            region: env("AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            access_key,
            secret_key,
            session_token: token,
        })
    }

    /// `text` (a service's own words) with the session token and the secret key taken out: some
    /// services quote the request they expected, headers and all, when a signature does not
    /// match.
    pub fn redact(&self, text: &str) -> String {
        let mut t = text.to_string();
        for secret in [Some(&self.secret_key), self.session_token.as_ref()]
            .into_iter()
            .flatten()
            .filter(|s| s.len() >= 4)
        {
            t = t.replace(secret.as_str(), "…");
        }
        t
    }

    /// Another endpoint than AWS's for `service` (`S3`, `EBS`, `EC2`), as the AWS CLI reads it:
    /// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`.
    pub fn endpoint(service: &str) -> Option<String> {
        env(&format!("AWS_ENDPOINT_URL_{service}"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .map(|e| e.trim_end_matches('/').to_string())
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
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
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
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
pub fn amz_date(unix: u64) -> String {
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
pub struct Signed {
    pub query_string: String,
    pub headers: Vec<(String, String)>,
    pub authorization: String,
}

/// AWS Signature Version 4 of one request to `service` (`s3`, `ebs`, `ec2`; `date_time` as
/// [`amz_date`] gives it). `headers` are signed with `host`, `x-amz-content-sha256` (`payload`,
/// the body's SHA-256 in hex) and `x-amz-date`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    cfg: &AwsConfig,
    service: &str,
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
    let scope = format!("{date}/{}/{service}/aws4_request", cfg.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = hmac(
        format!("AWS4{}", cfg.secret_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [cfg.region.as_str(), service, "aws4_request"] {
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

/// The HTTP agent for a cloud service: 30 s to connect, 10 minutes for a request (a large part
/// or block on a slow link).
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout(std::time::Duration::from_secs(600))
        .build()
}

/// Sends one request to `service`, signed: `base` and `host` say where (`base` the scheme and
/// authority), `path` is the canonical URI, `query` pairs are encoded here, `headers` are signed
/// too (the session token added when there is one). Requests with a body (and every `PUT` and
/// `POST`) send `body`.
// ureq's own error is large; it is worded at once by the caller.
#[allow(clippy::too_many_arguments, clippy::result_large_err)]
pub fn send(
    agent: &ureq::Agent,
    cfg: &AwsConfig,
    service: &str,
    method: &str,
    (base, host): (&str, &str),
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<ureq::Response, ureq::Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut extra: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if let Some(t) = &cfg.session_token {
        extra.push(("x-amz-security-token".into(), t.clone()));
    }
    let signed = sign(
        cfg,
        service,
        method,
        host,
        path,
        query,
        &extra,
        &sha256_hex(body),
        &amz_date(now),
    );
    let url = if signed.query_string.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{}", signed.query_string)
    };
    let mut req = agent
        .request(method, &url)
        .set("Authorization", &signed.authorization);
    for (k, v) in &signed.headers {
        if k != "host" {
            req = req.set(k, v);
        }
    }
    if body.is_empty() && method != "PUT" && method != "POST" {
        req.call()
    } else {
        req.send_bytes(body)
    }
}

/// A request that got no answer (connection, DNS, TLS, timeout), worded with what was being done.
pub fn transport_error(what: &str, about: &dyn std::fmt::Display, t: ureq::Transport) -> String {
    format!(
        "{what} {about}: {}{}",
        t.kind(),
        t.message().map(|m| format!(": {m}")).unwrap_or_default()
    )
}

/// An answer's body as text, at most `limit` bytes of it.
pub fn body_text(
    r: ureq::Response,
    limit: u64,
    about: &dyn std::fmt::Display,
) -> Result<String, String> {
    use std::io::Read;
    let mut s = String::new();
    r.into_reader()
        .take(limit)
        .read_to_string(&mut s)
        .map_err(|e| format!("reading the answer about {about}: {e}"))?;
    Ok(s)
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
        let cfg = AwsConfig {
            region: "us-east-1".into(),
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let s = sign(
            &cfg,
            "s3",
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
    fn credentials_are_taken_out_of_a_service_s_words() {
        let cfg = AwsConfig {
            region: "us-east-1".into(),
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("FwoGZXIvYXdzEJr//token+more".into()),
        };
        assert_eq!(
            cfg.redact(
                "The canonical request should have been 'GET\n/\nx-amz-security-token:\
                 FwoGZXIvYXdzEJr//token+more' (wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY)"
            ),
            "The canonical request should have been 'GET\n/\nx-amz-security-token:…' (…)"
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
}
