//! A disk fixed where it lives: an Azure page blob, by its SAS URL, on Azurite (Microsoft's Azure
//! Storage emulator, started here). The fixture VHD is stored as a page blob with Azure's REST API
//! by `tests/azurite.py` (not kaifuku's code); `kaifuku fix --in-place URL --undo FILE` must leave
//! exactly the bytes `kaifuku fix` writes for the local file (which `fix_oracle` judges against
//! ntfs-3g), read and write only a few MiB (counted from Azurite's own request log, not kaifuku's
//! counters), never print the SAS token, stop on a concurrent writer (ETag), and an interrupted
//! fix must be restored by `kaifuku undo URL FILE`. `kaifuku inspect URL` reads the blob too.
//!
//! Needs node_modules/.bin/azurite-blob (setup.sh installs it) and python3.

mod common;

use common::{assert_check_clean, fixtures, kaifuku, run, sha256, Scratch};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Azurite, started for one test on a free port, stopped (its process group) when dropped.
struct Azurite {
    port: u16,
    pid: i32,
    dir: PathBuf,
}

impl Azurite {
    fn start(s: &Scratch) -> Azurite {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = s.path("azurite");
        let out = azurite_py(&["start", dir.to_str().unwrap(), &port.to_string()]);
        let pid = out.trim().parse().expect("azurite.py start prints the pid");
        Azurite { port, pid, dir }
    }

    /// Stores `file` as page blob `name`; returns its SAS URL.
    fn upload(&self, name: &str, file: &Path) -> String {
        azurite_py(&[
            "upload",
            &self.port.to_string(),
            name,
            file.to_str().unwrap(),
        ])
        .trim()
        .to_string()
    }

    /// What Azurite logged of the requests to `blob`, in order: the method and the bytes moved
    /// (a GET's answer, a Put Page's content).
    fn requests(&self, blob: &str) -> Vec<(String, u64)> {
        let log = std::fs::read_to_string(self.dir.join("requests.log")).unwrap_or_default();
        let mut open: std::collections::HashMap<String, (String, u64)> = Default::default();
        let mut out = Vec::new();
        let number_after = |line: &str, key: &str| -> Option<u64> {
            let rest = line.split(key).nth(1)?;
            rest.trim_start_matches([':', '"'])
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        for line in log.lines() {
            let mut f = line.split_whitespace();
            let (Some(_time), Some(id)) = (f.next(), f.next()) else {
                continue;
            };
            if let Some(rest) = line.split("RequestMethod=").nth(1) {
                if line.contains(&format!("/disks/{blob}")) {
                    let method = rest.split_whitespace().next().unwrap_or("").to_string();
                    open.insert(id.to_string(), (method, 0));
                }
            } else if line.contains("DeserializedParameters=") && line.contains("\"comp\":\"page\"")
            {
                if let (Some(r), Some(n)) =
                    (open.get_mut(id), number_after(line, "\"contentLength\""))
                {
                    r.1 = n;
                }
            } else if line.contains("EndMiddleware: End response") {
                if let Some((method, put)) = open.remove(id) {
                    let bytes = if method == "GET" {
                        number_after(line, "\"content-length\"").unwrap_or(0)
                    } else {
                        put
                    };
                    out.push((method, bytes));
                }
            }
        }
        out
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.pid))
            .status();
    }
}

fn azurite_py(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(repo().join("tests/azurite.py"))
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "tests/azurite.py {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn download(url: &str, to: &Path) {
    azurite_py(&["download", url, to.to_str().unwrap()]);
}

fn fixture() -> PathBuf {
    fixtures().join("gpt-win-fixed.vhd")
}

/// The local fix of the fixture: what the blob must hold after the remote fix.
fn fixed_locally(s: &Scratch) -> PathBuf {
    let out = s.path("local-fixed.vhd");
    let r = kaifuku([
        OsStr::new("fix"),
        fixture().as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    out
}

/// The SAS token's signature, which must never be printed.
fn signature(url: &str) -> String {
    url.split("sig=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_page_blob_is_fixed_in_place_by_its_sas_url() {
    let s = Scratch::new("azure-fix");
    let az = Azurite::start(&s);
    let url = az.upload("disk.vhd", &fixture());
    let sig = signature(&url);

    let r = kaifuku(["inspect", url.as_str()]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.text().contains("3 file(s) match"), "{}", r.text());
    let undo = s.path("disk.undo");
    let before_fix = az.requests("disk.vhd").len();
    let r = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--in-place"),
        OsStr::new(&url),
        OsStr::new("--undo"),
        undo.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.text().contains("Patched"), "{}", r.text());
    // What went over the wire for the fix (planning, undo file, writes, read-back), from
    // Azurite's own log: ranged reads of a few MiB, a few KiB written, never the 400 MiB disk.
    let reqs: Vec<_> = az
        .requests("disk.vhd")
        .into_iter()
        .skip(before_fix)
        .collect();
    for text in [
        r.both(),
        kaifuku(["inspect", "--json", url.as_str()]).both(),
    ] {
        assert!(
            !text.contains(&sig) && !text.contains("sig="),
            "the SAS token was printed: {text}"
        );
    }

    // The blob now holds exactly what the local fix writes.
    let got = s.path("downloaded.vhd");
    download(&url, &got);
    let local = fixed_locally(&s);
    assert_eq!(
        sha256(&got),
        sha256(&local),
        "the blob equals the local fix"
    );
    assert_check_clean(&got, "the fixed blob, downloaded");

    let read: u64 = reqs.iter().filter(|(m, _)| m == "GET").map(|r| r.1).sum();
    let puts: Vec<_> = reqs.iter().filter(|(m, _)| m == "PUT").collect();
    let largest_get = reqs
        .iter()
        .filter(|(m, _)| m == "GET")
        .map(|r| r.1)
        .max()
        .unwrap();
    eprintln!(
        "azurite saw {} requests: {read} bytes read, {} puts; largest read {largest_get}",
        reqs.len(),
        puts.len()
    );
    assert!(!puts.is_empty(), "the fix was written by Put Page");
    assert!(read < 16 << 20, "{read} bytes read");
    let written: u64 = puts.iter().map(|r| r.1).sum();
    assert!(
        written > 0 && written < 256 << 10,
        "{written} bytes written"
    );
    assert!(largest_get <= 4 << 20, "a read of {largest_get} bytes");

    // And undo restores the blob as uploaded.
    let r = kaifuku([OsStr::new("undo"), OsStr::new(&url), undo.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(!r.both().contains(&sig));
    download(&url, &got);
    assert_eq!(sha256(&got), sha256(&fixture()), "undo restores the blob");
}

#[test]
fn a_concurrent_writer_stops_the_fix_and_an_interrupted_fix_is_undone() {
    let s = Scratch::new("azure-conflict");
    let az = Azurite::start(&s);

    // Another writer changes the blob after kaifuku read it: the first Put Page is refused by
    // its ETag condition, and nothing of the fix is written.
    let url = az.upload("busy.vhd", &fixture());
    let size = std::fs::metadata(fixture()).unwrap().len();
    let hook = s.path("other-writer.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nexec python3 '{}' put-page '{url}' {} {}\n",
            repo().join("tests/azurite.py").display(),
            size - 1024,
            "ab".repeat(512)
        ),
    )
    .unwrap();
    run("chmod", ["+x", hook.to_str().unwrap()]);
    let undo = s.path("busy.undo");
    let r = run(
        "env",
        [
            format!("KAIFUKU_TEST_BEFORE_REMOTE_WRITE={}", hook.display()),
            env!("CARGO_BIN_EXE_kaifuku").to_string(),
            "fix".into(),
            "--in-place".into(),
            url.clone(),
            "--undo".into(),
            undo.display().to_string(),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(
        r.stderr.contains("changed since kaifuku first read it"),
        "{}",
        r.stderr
    );
    let got = s.path("busy.vhd");
    download(&url, &got);
    let mut expected = std::fs::read(fixture()).unwrap();
    expected[(size - 1024) as usize..(size - 512) as usize].fill(0xab);
    assert!(
        std::fs::read(&got).unwrap() == expected,
        "only the other writer's page changed"
    );

    // The connection drops after one Put Page: the blob is half fixed; undo restores it.
    let url = az.upload("cut.vhd", &fixture());
    let undo = s.path("cut.undo");
    let r = run(
        "env",
        [
            "KAIFUKU_TEST_REMOTE_PUTS=1".to_string(),
            env!("CARGO_BIN_EXE_kaifuku").to_string(),
            "fix".into(),
            "--in-place".into(),
            url.clone(),
            "--undo".into(),
            undo.display().to_string(),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("kaifuku undo URL"), "{}", r.stderr);
    let got = s.path("cut.vhd");
    download(&url, &got);
    assert_ne!(sha256(&got), sha256(&fixture()), "one page run was written");
    let r = kaifuku([OsStr::new("undo"), OsStr::new(&url), undo.as_os_str()]);
    assert_eq!(r.code, 0, "{}", r.both());
    download(&url, &got);
    assert_eq!(
        sha256(&got),
        sha256(&fixture()),
        "undo restores the interrupted fix"
    );
}

#[test]
fn what_a_url_cannot_do_is_refused_with_the_reason() {
    let s = Scratch::new("azure-refused");
    let az = Azurite::start(&s);
    let url = az.upload("r.vhd", &fixture());
    let sig = signature(&url);
    let out = s.path("copy.vhd");
    for args in [
        vec!["fix", url.as_str(), "-o", out.to_str().unwrap()],
        vec!["fix", "--in-place", url.as_str()],
    ] {
        let r = kaifuku(&args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.both());
        assert!(r.stderr.contains("fixed where it lives"), "{}", r.stderr);
        assert!(!r.both().contains(&sig));
    }
    assert!(!out.exists());
    // A wrong signature: access refused, said without the token.
    let forged = url.replace(&sig, "AAAA");
    let r = kaifuku(["inspect", forged.as_str()]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("refused access"), "{}", r.stderr);
    assert!(!r.both().contains("sig="));
    // A dry run reads and plans without writing.
    let before = az.requests("r.vhd").iter().filter(|r| r.0 == "PUT").count();
    let r = kaifuku(["fix", "--dry-run", url.as_str()]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.text().contains("Remote"), "{}", r.text());
    let after = az.requests("r.vhd").iter().filter(|r| r.0 == "PUT").count();
    assert_eq!(before, after, "a dry run writes nothing");
}

#[test]
fn the_batch_fixes_page_blobs_in_place_with_an_undo_file_each() {
    let s = Scratch::new("azure-batch");
    let az = Azurite::start(&s);
    let urls = [
        az.upload("web01.vhd", &fixture()),
        az.upload("web02.vhd", &fixture()),
    ];
    let undo_dir = s.path("undo");
    std::fs::create_dir_all(&undo_dir).unwrap();
    let r = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--json"),
        OsStr::new("--in-place"),
        OsStr::new("--undo-dir"),
        undo_dir.as_os_str(),
        OsStr::new(&urls[0]),
        OsStr::new(&urls[1]),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    for url in &urls {
        let sig = signature(url);
        assert!(
            !r.both().contains(&sig) && !r.both().contains("sig="),
            "the SAS token was printed: {}",
            r.both()
        );
    }
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", r.text());
    let local = fixed_locally(&s);
    for (i, (url, name)) in urls.iter().zip(["web01.vhd", "web02.vhd"]).enumerate() {
        assert_eq!(lines[i]["outcome"], "fixed", "{}", lines[i]);
        let image = lines[i]["image"].as_str().unwrap();
        assert!(image.ends_with(&format!("/{name}?…")), "{image}");
        // The blob holds what the local fix writes; its undo file restores it.
        let got = s.path(&format!("{name}.got"));
        download(url, &got);
        assert_eq!(sha256(&got), sha256(&local), "{name} equals the local fix");
        let undo = undo_dir.join(format!("{name}.undo"));
        let u = kaifuku([OsStr::new("undo"), OsStr::new(url), undo.as_os_str()]);
        assert_eq!(u.code, 0, "{}", u.both());
        download(url, &got);
        assert_eq!(sha256(&got), sha256(&fixture()), "undo restores {name}");
    }

    // A URL is fixed where it lives: not copied to a folder.
    let out = s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let r = kaifuku([
        OsStr::new("fix"),
        OsStr::new("--out-dir"),
        out.as_os_str(),
        OsStr::new(&urls[0]),
        fixture().as_os_str(),
    ]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("--in-place --undo-dir"), "{}", r.stderr);
    assert!(!r.both().contains(&signature(&urls[0])));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}
