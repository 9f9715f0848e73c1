//! S3 objects fixed into new objects by a server-side multipart copy, on moto (an AWS emulator,
//! started here in server mode). The images are stored and fetched with boto3, AWS's own SDK
//! (`tests/s3.py`), never kaifuku's code. The new object must be byte for byte what `kaifuku fix`
//! writes for the local file (a fixed VHD, and a streamOptimized VMDK as AWS's VM export writes
//! them, whose output grows); moto's own request recording must show that the source was read
//! only by ranges of a few MiB and that most of the new object was copied by the store, not
//! uploaded; the input must be unchanged. Refusals: an existing output, in place, a local `-o`.
//!
//! Needs .venv-tools (setup.sh: moto[server] and boto3), qemu-img and python3.

mod common;

use common::moto::{s3_py, Moto};
use common::{assert_check_clean, fixtures, kaifuku, run_ok, sha256, Scratch};
use serde_json::Value;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// What the S3 tests ask of moto.
impl Moto {
    fn upload(&self, key: &str, file: &Path) {
        s3_py(&["upload", &self.port, "disks", key, file.to_str().unwrap()]);
    }

    fn download(&self, key: &str, to: &Path) {
        s3_py(&["download", &self.port, "disks", key, to.to_str().unwrap()]);
    }

    /// What moto recorded for `keys` since the last call.
    fn traffic(&self, keys: &[&str]) -> Value {
        let mut args = vec!["traffic", self.port.as_str(), "disks"];
        args.extend_from_slice(keys);
        serde_json::from_str(&s3_py(&args)).unwrap()
    }
}

fn local_fix(input: &Path, out: &Path) {
    let r = kaifuku([
        OsStr::new("fix"),
        input.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
}

/// Fixes `key` into `key.fixed` and judges it against the local fix of `input`.
fn fix_and_judge(s: &Scratch, moto: &Moto, key: &str, input: &Path) -> Value {
    moto.upload(key, input);
    moto.traffic(&[key]);
    let r = moto.kaifuku(&["inspect", &format!("s3://disks/{key}")]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.text().contains("3 file(s) match"), "{}", r.text());
    let fixed_key = format!("{key}.fixed");
    let r = moto.kaifuku(&[
        "fix",
        &format!("s3://disks/{key}"),
        "-o",
        &format!("s3://disks/{fixed_key}"),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.text().contains("Wrote       s3://disks/"), "{}", r.text());
    let traffic = moto.traffic(&[key, &fixed_key]);

    let got = s.path(&format!("{key}.got"));
    moto.download(&fixed_key, &got);
    let local = s.path(&format!("{key}.local"));
    local_fix(input, &local);
    assert_eq!(
        sha256(&got),
        sha256(&local),
        "{key}: the new object equals the local fix"
    );
    let back = s.path(&format!("{key}.back"));
    moto.download(key, &back);
    assert_eq!(
        sha256(&back),
        sha256(input),
        "{key}: the input object is unchanged"
    );
    eprintln!("{key}: {traffic}");
    traffic
}

#[test]
fn an_object_is_fixed_into_a_new_object_by_a_server_side_copy() {
    let s = Scratch::new("s3-fix");
    let moto = Moto::start(&s);
    let vhd = fixtures().join("gpt-win-fixed.vhd");
    let size = std::fs::metadata(&vhd).unwrap().len();
    let t = fix_and_judge(&s, &moto, "web01.vhd", &vhd);
    let (src, dst) = (&t["web01.vhd"], &t["web01.vhd.fixed"]);
    // The source: read by ranges only, a few MiB for the plan and the changed parts.
    assert!(
        src["methods"].get("PUT").is_none(),
        "the source is never written: {src}"
    );
    let largest = src["largest_read"].as_i64().unwrap();
    assert!(
        largest > 0 && largest <= 8 << 20,
        "a read of {largest} bytes: {src}"
    );
    assert!(src["read"].as_u64().unwrap() < 48 << 20, "{src}");
    // The new object: most of it copied by the store, the changed parts uploaded.
    let (copied, uploaded) = (
        dst["copied"].as_u64().unwrap(),
        dst["uploaded"].as_u64().unwrap(),
    );
    assert!(uploaded > 0 && uploaded < 48 << 20, "{dst}");
    assert!(
        copied >= size - uploaded,
        "the rest is copied by the store: {dst}"
    );
    let got = s.path("web01.vhd.got");
    assert_check_clean(&got, "the new object");
}

#[test]
fn an_aws_export_vmdk_is_re_streamed_into_a_new_object() {
    let s = Scratch::new("s3-vmdk");
    let moto = Moto::start(&s);
    let vmdk = s.path("export.vmdk");
    run_ok(
        "qemu-img",
        [
            OsStr::new("convert"),
            OsStr::new("-f"),
            OsStr::new("raw"),
            OsStr::new("-O"),
            OsStr::new("vmdk"),
            OsStr::new("-o"),
            OsStr::new("subformat=streamOptimized"),
            fixtures().join("gpt-win.raw").as_os_str(),
            vmdk.as_os_str(),
        ],
    );
    let t = fix_and_judge(&s, &moto, "export.vmdk", &vmdk);
    assert!(t["export.vmdk"]["largest_read"].as_i64().unwrap() > 0);
}

#[test]
fn what_s3_cannot_do_is_refused_with_the_reason() {
    let s = Scratch::new("s3-refused");
    let moto = Moto::start(&s);
    let vhd = fixtures().join("gpt-win-fixed.vhd");
    moto.upload("a.vhd", &vhd);
    moto.upload("b.vhd", &vhd);
    let local = s.path("local.vhd");
    let undo = s.path("u.undo");
    for (args, says) in [
        (
            vec!["fix", "s3://disks/a.vhd", "-o", "s3://disks/b.vhd"],
            "exists already",
        ),
        (
            vec!["fix", "s3://disks/a.vhd", "-o", "s3://disks/a.vhd"],
            "another key",
        ),
        (
            vec!["fix", "s3://disks/a.vhd", "-o", local.to_str().unwrap()],
            "new object in the same store",
        ),
        (
            vec![
                "fix",
                "--in-place",
                "s3://disks/a.vhd",
                "--undo",
                undo.to_str().unwrap(),
            ],
            "cannot be changed in place",
        ),
        (
            vec!["inspect", "s3://disks/missing.vhd"],
            "no such bucket or object",
        ),
    ] {
        let r = moto.kaifuku(&args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.both());
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    assert!(!local.exists() && !undo.exists());
    let back = s.path("b.back");
    moto.download("b.vhd", &back);
    assert_eq!(
        sha256(&back),
        sha256(&vhd),
        "an existing object is never replaced"
    );
    // Without credentials: said, nothing read.
    let r = Command::new(env!("CARGO_BIN_EXE_kaifuku"))
        .args(["inspect", "s3://disks/a.vhd"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", s.path("nohome"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no AWS credentials"));
}

#[test]
fn the_batch_fixes_objects_into_new_objects_under_a_prefix() {
    let s = Scratch::new("s3-batch");
    let moto = Moto::start(&s);
    let vhd = fixtures().join("gpt-win-fixed.vhd");
    moto.upload("exports/web01.vhd", &vhd);
    moto.upload("exports/web02.vhd", &vhd);
    let r = moto.kaifuku(&[
        "fix",
        "--json",
        "--out-dir",
        "s3://disks/fixed/",
        "s3://disks/exports/web01.vhd",
        "s3://disks/exports/web02.vhd",
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", r.text());
    let local = s.path("local.vhd");
    local_fix(&vhd, &local);
    for (i, name) in ["web01", "web02"].iter().enumerate() {
        assert_eq!(lines[i]["outcome"], "fixed", "{}", lines[i]);
        assert_eq!(
            lines[i]["output"],
            format!("s3://disks/fixed/{name}-fixed.vhd"),
            "{}",
            lines[i]
        );
        let got = s.path(&format!("{name}.got"));
        moto.download(&format!("fixed/{name}-fixed.vhd"), &got);
        assert_eq!(
            sha256(&got),
            sha256(&local),
            "{name}: the new object equals the local fix"
        );
        // The input object is as it was.
        let input = s.path(&format!("{name}.in"));
        moto.download(&format!("exports/{name}.vhd"), &input);
        assert_eq!(sha256(&input), sha256(&vhd));
    }
    // Again: the new objects exist, so both runs are refused and nothing is replaced.
    let r = moto.kaifuku(&[
        "fix",
        "--out-dir",
        "s3://disks/fixed",
        "s3://disks/exports/web01.vhd",
        "s3://disks/exports/web02.vhd",
    ]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(r.stderr.contains("exists already"), "{}", r.stderr);

    // S3 objects and local images do not share a run; an object is never changed in place.
    for args in [
        vec![
            "fix",
            "--out-dir",
            "s3://disks/fixed2",
            "s3://disks/exports/web01.vhd",
            vhd.to_str().unwrap(),
        ],
        vec![
            "fix",
            "--in-place",
            "--undo-dir",
            s.path("").to_str().unwrap(),
            "s3://disks/exports/web01.vhd",
        ],
    ] {
        let r = moto.kaifuku(&args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.both());
        assert!(r.stderr.contains("nothing was done"), "{}", r.stderr);
    }
}
