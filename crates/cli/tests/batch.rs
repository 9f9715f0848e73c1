//! `kaifuku fix --out-dir DIR IMAGE…`: many images of mixed formats and outcomes (made from the
//! fixtures with cp, truncate and qemu-img) fixed together with `--jobs 2`. The oracle for each
//! image is the single-image `kaifuku fix` of the same image, which the other tests judge against
//! ntfs-3g's own `rm`: every output is byte-identical to it, every JSON Lines object holds its
//! report, and the batch exits with the worst status. A SIGINT during a batch leaves the finished
//! outputs complete and nothing half-written; inputs with the same file name are refused.

mod common;

use common::{fixtures, kaifuku, run_ok, sha256, Scratch};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `disk.vhd` → `disk-fixed.vhd`, as the batch names its outputs.
fn fixed_name(name: &str) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{}-fixed{}", &name[..i], &name[i..]),
        _ => format!("{name}-fixed"),
    }
}

fn copy_sparse(from: &Path, to: &Path) {
    run_ok(
        "cp",
        ["--sparse=always".as_ref(), from.as_os_str(), to.as_os_str()],
    );
}

fn convert(from: &Path, to: &Path, format: &str, options: &[&str]) {
    let mut args: Vec<String> = vec!["convert".into(), "-f".into(), "raw".into()];
    args.extend(["-O".into(), format.into()]);
    for o in options {
        args.extend(["-o".into(), o.to_string()]);
    }
    args.push(from.display().to_string());
    args.push(to.display().to_string());
    run_ok("qemu-img", &args);
}

/// The descriptor of an ESXi snapshot (a child of `web01.vmdk`, its delta in a VMFSSPARSE file).
const ESXI_SNAPSHOT: &str = "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=3a2b1c0d\n\
parentCID=fffffffe\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"web01.vmdk\"\n\
# Extent description\nRW 83886080 VMFSSPARSE \"web01-000001-delta.vmdk\"\n";

/// Cuts a file to `keep` of its length.
fn truncate_to(p: &Path, fraction: f64) {
    let len = std::fs::metadata(p).unwrap().len();
    let keep = ((len as f64 * fraction) as u64) & !511;
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_len(keep)
        .unwrap();
}

/// The mixed set in `dir`: fixable images in every format kaifuku writes, images with nothing to
/// fix, one refused (an ESXi snapshot's descriptor) and damaged ones; plus a file that is no
/// image, and the data files of two VMDK descriptors (flat and split sparse), which are read with
/// their descriptor.
fn make_mixed_set(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let f = fixtures();
    for name in [
        "gpt-win.raw",
        "gpt-win-fixed.vhd",
        "gpt-win-dynamic.vhd",
        "gpt-win-fixed.vhdx",
        "gpt-win-dynamic.vhdx",
        "gpt-win-v2.qcow2",
        "gpt-win-v3.qcow2",
        "mbr-win.raw",
        "mbr-logical.raw",
        "gpt-4kn.raw",
        "cs-rootonly.raw",
        "bare-64k-dynamic.vhdx",
        "no-crowdstrike.raw",
        "cs-empty.raw",
        "bare-64k-compressed.qcow2",
    ] {
        copy_sparse(&f.join(name), &dir.join(name));
    }
    for (from, to) in [
        ("bad/truncated.vhd", "truncated.vhd"),
        ("bad/truncated.raw", "truncated.raw"),
        ("bad/badsum.vhd", "badsum.vhd"),
    ] {
        copy_sparse(&f.join(from), &dir.join(to));
    }
    convert(
        &f.join("gpt-win.raw"),
        &dir.join("gpt-win.vmdk"),
        "vmdk",
        &[],
    );
    convert(
        &f.join("mbr-win.raw"),
        &dir.join("mbr-win-stream.vmdk"),
        "vmdk",
        &["subformat=streamOptimized"],
    );
    convert(
        &f.join("mbr-logical.raw"),
        &dir.join("mbr-logical.qcow2"),
        "qcow2",
        &[],
    );
    convert(
        &f.join("gpt-4kn.raw"),
        &dir.join("gpt-4kn.vhdx"),
        "vhdx",
        &[],
    );
    convert(
        &f.join("no-crowdstrike.raw"),
        &dir.join("no-crowdstrike.qcow2"),
        "qcow2",
        &[],
    );
    // Descriptors with their flat and sparse extents (one disk each), and an ESXi snapshot's
    // descriptor (a child disk: refused).
    convert(
        &f.join("cs-empty.raw"),
        &dir.join("desc.vmdk"),
        "vmdk",
        &["subformat=monolithicFlat"],
    );
    convert(
        &f.join("cs-empty.raw"),
        &dir.join("split.vmdk"),
        "vmdk",
        &["subformat=twoGbMaxExtentSparse"],
    );
    std::fs::write(dir.join("snap-000001.vmdk"), ESXI_SNAPSHOT).unwrap();
    copy_sparse(&f.join("gpt-win-v3.qcow2"), &dir.join("cut-v3.qcow2"));
    truncate_to(&dir.join("cut-v3.qcow2"), 0.5);
    copy_sparse(&f.join("gpt-win-dynamic.vhdx"), &dir.join("cut.vhdx"));
    truncate_to(&dir.join("cut.vhdx"), 0.6);
    std::fs::write(dir.join("notes.txt"), "exported 2024-07-19\n").unwrap();
}

/// The single-image fix of `image` into `out_dir`: its exit status and `--json` report.
fn single_fix(image: &Path, out_dir: &Path) -> (i32, Option<Value>) {
    let name = image.file_name().unwrap().to_str().unwrap();
    let out = out_dir.join(fixed_name(name));
    let o = kaifuku([
        "fix".as_ref(),
        "--json".as_ref(),
        image.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let report = (o.code == 0).then(|| {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{}: report is not JSON: {e}", image.display()))
    });
    (o.code, report)
}

/// A report without its timing, the one field two runs cannot share.
fn without_timing(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("planning_ms");
    v
}

/// The batch's status from single-image statuses: nothing to fix (1) counts as success.
fn worst_of(codes: impl Iterator<Item = i32>) -> i32 {
    codes.map(|c| if c == 1 { 0 } else { c }).max().unwrap_or(0)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn batch_of_mixed_images_matches_single_image_fixes() {
    let s = Scratch::new("batch-mixed");
    let input = s.path("in");
    make_mixed_set(&input);
    // An image given by itself rather than found in the directory: a blank disk (an error), which
    // the directory scan would skip since it has no boot signature.
    let extra = s.path("extra");
    std::fs::create_dir_all(&extra).unwrap();
    copy_sparse(&fixtures().join("bad/zeros.raw"), &extra.join("zeros.raw"));
    let out = s.path("out");
    let single = s.path("single");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&single).unwrap();

    let mut expected: Vec<PathBuf> = names_in(&input)
        .into_iter()
        .filter(|n| n != "notes.txt" && n != "desc-flat.vmdk" && n != "split-s001.vmdk")
        .map(|n| input.join(n))
        .collect();
    expected.push(extra.join("zeros.raw"));
    assert!(expected.len() >= 20, "{} images", expected.len());

    let o = kaifuku([
        "fix".as_ref(),
        "--jobs".as_ref(),
        "2".as_ref(),
        "--json".as_ref(),
        "--out-dir".as_ref(),
        out.as_os_str(),
        input.as_os_str(),
        extra.join("zeros.raw").as_os_str(),
    ]);
    let lines: Vec<Value> = o
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), expected.len() + 1, "{}", o.both());

    // The oracle: each image fixed alone.
    let mut codes = BTreeMap::new();
    let mut outcomes: BTreeMap<i32, usize> = BTreeMap::new();
    for (image, line) in expected.iter().zip(&lines) {
        let ctx = image.display().to_string();
        assert_eq!(line["image"], ctx.as_str(), "images in order: {line}");
        let (code, report) = single_fix(image, &single);
        codes.insert(ctx.clone(), code);
        *outcomes.entry(code).or_default() += 1;
        assert_eq!(line["exit_code"], code, "{ctx}: {line}");
        let name = fixed_name(image.file_name().unwrap().to_str().unwrap());
        let batch_out = out.join(&name);
        if code == 0 {
            assert_eq!(line["outcome"], "fixed", "{ctx}");
            assert_eq!(line["output"], batch_out.display().to_string().as_str());
            assert_eq!(
                without_timing(line["fix"].clone()),
                without_timing(report.unwrap()),
                "{ctx}: the batch's report is the single-image report"
            );
            assert_eq!(
                sha256(&batch_out),
                sha256(&single.join(&name)),
                "{ctx}: the batch's output is the single-image output"
            );
        } else {
            assert!(line["fix"].is_null(), "{ctx}: {line}");
            assert!(!batch_out.exists(), "{ctx}: no output for exit {code}");
            if code != 1 {
                assert!(
                    o.stderr.contains(&ctx),
                    "{ctx}: failing images are listed on stderr: {}",
                    o.stderr
                );
            }
        }
    }
    // Every kind of outcome took part: fixed, nothing to fix, refused, error.
    for code in [0, 1, 2, 3] {
        assert!(outcomes.get(&code).is_some_and(|n| *n > 0), "{outcomes:?}");
    }
    assert!(outcomes[&0] >= 15, "{outcomes:?}");
    let worst = worst_of(codes.values().copied());
    assert_eq!(worst, 3);
    assert_eq!(o.code, worst, "{}", o.stderr);
    let summary = &lines[expected.len()]["summary"];
    assert_eq!(summary["images"], expected.len(), "{summary}");
    assert_eq!(summary["exit_code"], worst, "{summary}");
    assert_eq!(summary["outcomes"]["fixed"], outcomes[&0], "{summary}");
    // Only final names in DIR: the fixed images, nothing temporary.
    let mut want: Vec<String> = codes
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(p, _)| fixed_name(Path::new(p).file_name().unwrap().to_str().unwrap()))
        .collect();
    want.sort();
    assert_eq!(names_in(&out), want);
    assert!(!o.stderr.contains("notes.txt"), "{}", o.stderr);

    // The same batch again: every output exists, so nothing starts and nothing is replaced.
    let before = sha256(&out.join("gpt-win-fixed.raw"));
    let again = kaifuku([
        "fix".as_ref(),
        "--out-dir".as_ref(),
        out.as_os_str(),
        input.as_os_str(),
    ]);
    assert_eq!(again.code, 3, "{}", again.both());
    assert!(
        again.stderr.contains("gpt-win-fixed.raw exists"),
        "{}",
        again.stderr
    );
    assert_eq!(sha256(&out.join("gpt-win-fixed.raw")), before);
    assert_eq!(names_in(&out), want);
}

#[test]
fn batch_table_and_exit_status() {
    let s = Scratch::new("batch-table");
    let f = fixtures();
    let out = s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    // Fixed and nothing to fix: exit 0.
    let o = kaifuku([
        "fix".as_ref(),
        "--out-dir".as_ref(),
        out.as_os_str(),
        f.join("mbr-win.raw").as_os_str(),
        f.join("no-crowdstrike.raw").as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    let text = o.text();
    let header = text.lines().next().unwrap();
    for column in ["Image", "Outcome", "Removed", "Journal", "Read", "Time"] {
        assert!(header.contains(column), "{text}");
    }
    assert!(text.contains("nothing to fix"), "{text}");
    assert!(
        text.contains("2 image(s): 1 fixed, 1 with nothing to fix, 0 not fixed"),
        "{text}"
    );
    assert!(out.join("mbr-win-fixed.raw").exists());
    // A refused image among them: exit 2, the refused image named on stderr.
    let refused = s.path("snap-000001.vmdk");
    std::fs::write(&refused, ESXI_SNAPSHOT).unwrap();
    let out2 = s.path("out2");
    std::fs::create_dir_all(&out2).unwrap();
    let o = kaifuku([
        "fix".as_ref(),
        "--out-dir".as_ref(),
        out2.as_os_str(),
        f.join("mbr-win.raw").as_os_str(),
        refused.as_os_str(),
    ]);
    assert_eq!(o.code, 2, "{}", o.both());
    assert!(
        o.stderr
            .contains(&format!("{}: refused", refused.display())),
        "{}",
        o.stderr
    );
    assert_eq!(
        sha256(&out2.join("mbr-win-fixed.raw")),
        sha256(&out.join("mbr-win-fixed.raw"))
    );
}

#[test]
fn same_file_names_are_refused_before_starting() {
    let s = Scratch::new("batch-names");
    let (a, b) = (s.path("a"), s.path("b"));
    let out = s.path("out");
    for d in [&a, &b, &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    copy_sparse(&fixtures().join("mbr-win.raw"), &a.join("disk.raw"));
    copy_sparse(&fixtures().join("gpt-win.raw"), &b.join("disk.raw"));
    let o = kaifuku([
        "fix".as_ref(),
        "--out-dir".as_ref(),
        out.as_os_str(),
        a.join("disk.raw").as_os_str(),
        b.as_os_str(),
    ]);
    assert_eq!(o.code, 3, "{}", o.both());
    assert!(
        o.stderr.contains(&a.join("disk.raw").display().to_string())
            && o.stderr.contains(&b.join("disk.raw").display().to_string())
            && o.stderr.contains("same file name"),
        "{}",
        o.stderr
    );
    assert!(names_in(&out).is_empty(), "nothing was written");
}

#[test]
fn sigint_leaves_finished_outputs_complete_and_nothing_partial() {
    let s = Scratch::new("batch-sigint");
    let input = s.path("in");
    std::fs::create_dir_all(&input).unwrap();
    let count = 16;
    for i in 0..count {
        copy_sparse(
            &fixtures().join("gpt-win.raw"),
            &input.join(format!("disk{i:02}.raw")),
        );
    }
    let out = s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kaifuku"))
        .args(["fix", "--jobs", "1", "--json", "--out-dir"])
        .arg(&out)
        .arg(&input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The signal goes once the first output has its final name.
    let start = Instant::now();
    while !names_in(&out).iter().any(|n| !n.starts_with('.')) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no output appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run_ok("kill", ["-INT".to_string(), child.id().to_string()]);
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    let finished = names_in(&out);
    assert!(
        finished.iter().all(|n| !n.starts_with('.')),
        "temporaries left: {finished:?}"
    );
    assert!(
        !finished.is_empty() && finished.len() < count,
        "the batch stopped part-way: {finished:?}"
    );
    // Every finished output is complete: the single-image fix of the same disk.
    let single = s.path("single.raw");
    let r = kaifuku([
        "fix".as_ref(),
        fixtures().join("gpt-win.raw").as_os_str(),
        "-o".as_ref(),
        single.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{}", r.both());
    let want = sha256(&single);
    for n in &finished {
        assert_eq!(sha256(&out.join(n)), want, "{n} is incomplete");
    }
    // The JSON Lines say which images were fixed and which were interrupted.
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), count + 1);
    let fixed: Vec<String> = lines[..count]
        .iter()
        .filter(|l| l["outcome"] == "fixed")
        .map(|l| {
            Path::new(l["output"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(fixed, finished);
    assert!(lines[..count]
        .iter()
        .all(|l| l["outcome"] == "fixed" || l["outcome"] == "interrupted"));
    assert_eq!(lines[count]["summary"]["interrupted"], true);
}

#[test]
fn in_place_batch_keeps_undo_files() {
    let s = Scratch::new("batch-in-place");
    let f = fixtures();
    let images = s.path("images");
    let undo = s.path("undo");
    let single = s.path("single");
    for d in [&images, &undo, &single] {
        std::fs::create_dir_all(d).unwrap();
    }
    for name in ["mbr-win.raw", "gpt-win-fixed.vhd", "no-crowdstrike.raw"] {
        copy_sparse(&f.join(name), &images.join(name));
    }
    // A streamOptimized VMDK grows when fixed: its undo file (version 3) cuts it back.
    let stream_original = single.join("original-stream.vmdk");
    convert(
        &f.join("mbr-win.raw"),
        &stream_original,
        "vmdk",
        &["subformat=streamOptimized"],
    );
    std::fs::copy(&stream_original, images.join("stream.vmdk")).unwrap();
    // Without --undo-dir several images are not patched in place.
    let o = kaifuku([
        "fix".as_ref(),
        "--in-place".as_ref(),
        images.join("mbr-win.raw").as_os_str(),
        images.join("gpt-win-fixed.vhd").as_os_str(),
    ]);
    assert_eq!(o.code, 3, "{}", o.both());
    assert!(o.stderr.contains("--undo-dir"), "{}", o.stderr);
    assert_eq!(
        sha256(&images.join("mbr-win.raw")),
        sha256(&f.join("mbr-win.raw"))
    );

    let o = kaifuku([
        "fix".as_ref(),
        "--in-place".as_ref(),
        "--undo-dir".as_ref(),
        undo.as_os_str(),
        images.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert_eq!(
        names_in(&undo),
        [
            "gpt-win-fixed.vhd.undo",
            "mbr-win.raw.undo",
            "stream.vmdk.undo"
        ]
    );
    for name in ["mbr-win.raw", "gpt-win-fixed.vhd", "stream.vmdk"] {
        let original = if name == "stream.vmdk" {
            let at = single.join(name);
            std::fs::copy(&stream_original, &at).unwrap();
            at
        } else {
            f.join(name)
        };
        let (code, _) = single_fix(&original, &single);
        assert_eq!(code, 0);
        assert_eq!(
            sha256(&images.join(name)),
            sha256(&single.join(fixed_name(name))),
            "{name}: patched in place as the single-image fix writes it"
        );
        let r = kaifuku([
            "undo".as_ref(),
            images.join(name).as_os_str(),
            undo.join(format!("{name}.undo")).as_os_str(),
        ]);
        assert_eq!(r.code, 0, "{}", r.both());
        assert_eq!(sha256(&images.join(name)), sha256(&original));
    }
}

/// A fact (`KEY=value`) of the keys file `make-bitlocker-disk.sh` writes.
fn key_fact(keys: &str, key: &str) -> String {
    keys.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {keys}"))
        .to_string()
}

#[test]
fn one_key_list_unlocks_every_bitlocker_image_of_a_batch() {
    let test = "one_key_list_unlocks_every_bitlocker_image_of_a_batch";
    if common::gpl_testdata("bitlk/bitlk-images.tar.xz", test).is_none() {
        return;
    }
    let s = Scratch::new("batch-bitlocker");
    let images = s.path("images");
    std::fs::create_dir_all(&images).unwrap();
    // Two real BitLocker volumes (different keys, ciphers, layouts and containers), made with
    // dislocker, mkntfs and ntfs-3g by the project's script.
    let mut csv = String::from("KeyId,RecoveryKey\n");
    for (volume, scheme, container, name) in [
        ("bitlk-aes-xts-128", "dos", "raw", "xts.img"),
        ("bitlk-aes-cbc-256", "gpt", "vhd", "cbc.vhd"),
    ] {
        let made = s.path(volume);
        run_ok(
            common::repo_script("make-bitlocker-disk.sh")
                .to_str()
                .unwrap(),
            [made.to_str().unwrap(), volume, scheme, container],
        );
        let disk = made.join(if container == "raw" {
            "disk.img"
        } else {
            "disk.vhd"
        });
        std::fs::rename(&disk, images.join(name)).unwrap();
        let keys = std::fs::read_to_string(made.join("keys")).unwrap();
        csv.push_str(&format!(
            "{},{}\n",
            key_fact(&keys, "RP_VMK_GUID"),
            key_fact(&keys, "RP")
        ));
    }
    let list = s.path("keys.csv");
    std::fs::write(&list, &csv).unwrap();

    // Without keys both are refused: exit 2, nothing written.
    let out = s.path("out-nokey");
    std::fs::create_dir_all(&out).unwrap();
    let o = kaifuku([
        "fix".as_ref(),
        "--out-dir".as_ref(),
        out.as_os_str(),
        images.as_os_str(),
    ]);
    assert_eq!(o.code, 2, "{}", o.both());
    assert!(names_in(&out).is_empty());

    // With the list each image finds its own key, and is fixed as the single-image fix does.
    let out = s.path("out");
    let single = s.path("single");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&single).unwrap();
    let o = kaifuku([
        "fix".as_ref(),
        "--jobs".as_ref(),
        "2".as_ref(),
        "--keys".as_ref(),
        list.as_os_str(),
        "--out-dir".as_ref(),
        out.as_os_str(),
        images.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.both());
    for name in ["cbc.vhd", "xts.img"] {
        let fixed = fixed_name(name);
        let r = kaifuku([
            "fix".as_ref(),
            images.join(name).as_os_str(),
            "-o".as_ref(),
            single.join(&fixed).as_os_str(),
            "--keys".as_ref(),
            list.as_os_str(),
        ]);
        assert_eq!(r.code, 0, "{name}: {}", r.both());
        assert_eq!(
            sha256(&out.join(&fixed)),
            sha256(&single.join(&fixed)),
            "{name}"
        );
    }
    for line in csv.lines().skip(1) {
        let password = line.split(',').nth(1).unwrap();
        assert!(
            !o.both().contains(password),
            "a key was echoed: {}",
            o.both()
        );
    }
}

/// A loop device over a file, detached when dropped.
struct Loop(String);

impl Loop {
    fn attach(file: &Path) -> Loop {
        let o = common::run("losetup", ["-f", "--show", file.to_str().unwrap()]);
        assert_eq!(
            o.code, 0,
            "losetup (util-linux) must attach a loop device, as root: {}",
            o.stderr
        );
        Loop(o.text().trim().to_string())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = common::run("losetup", ["-d", &self.0]);
    }
}

#[test]
fn block_devices_of_a_rescue_vm_fixed_in_place_and_copied() {
    let s = Scratch::new("batch-devices");
    let f = fixtures();
    let (single, undo, out) = (s.path("single"), s.path("undo"), s.path("out"));
    for d in [&single, &undo, &out] {
        std::fs::create_dir_all(d).unwrap();
    }
    let names = ["gpt-win.raw", "mbr-win.raw", "no-crowdstrike.raw"];
    for name in names {
        copy_sparse(&f.join(name), &s.path(name));
    }
    let devices: Vec<Loop> = names.iter().map(|n| Loop::attach(&s.path(n))).collect();
    let device_args: Vec<&str> = devices.iter().map(|d| d.0.as_str()).collect();

    // A copy of each device's disk: named after the device, as the single-image fix writes it.
    let mut args = vec!["fix", "--jobs", "2", "--out-dir", out.to_str().unwrap()];
    args.extend(&device_args);
    let o = kaifuku(&args);
    assert_eq!(o.code, 0, "{}", o.both());
    for (name, dev) in names.iter().zip(&devices) {
        let dev_name = Path::new(&dev.0).file_name().unwrap().to_str().unwrap();
        let copy = out.join(fixed_name(dev_name));
        let (code, _) = single_fix(&f.join(name), &single);
        if code == 0 {
            assert_eq!(
                sha256(&copy),
                sha256(&single.join(fixed_name(name))),
                "{name}"
            );
        } else {
            assert!(!copy.exists(), "{name}: nothing to fix, no copy");
        }
    }

    // In place, as on a rescue VM with the disks attached: each undo file restores its disk.
    let mut args = vec![
        "fix",
        "--jobs",
        "2",
        "--in-place",
        "--undo-dir",
        undo.to_str().unwrap(),
    ];
    args.extend(&device_args);
    let o = kaifuku(&args);
    assert_eq!(o.code, 0, "{}", o.both());
    for (name, dev) in names.iter().zip(&devices) {
        let dev_name = Path::new(&dev.0).file_name().unwrap().to_str().unwrap();
        let undo_file = undo.join(format!("{dev_name}.undo"));
        if !single.join(fixed_name(name)).exists() {
            assert!(!undo_file.exists(), "{name}: nothing to fix, no undo file");
            assert_eq!(sha256(&s.path(name)), sha256(&f.join(name)));
            continue;
        }
        assert_eq!(
            sha256(&s.path(name)),
            sha256(&single.join(fixed_name(name))),
            "{name}: fixed through the device as the single-image fix writes it"
        );
        let r = kaifuku(["undo", &dev.0, undo_file.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.both());
        assert_eq!(sha256(&s.path(name)), sha256(&f.join(name)), "{name}");
    }
}

#[test]
fn an_output_that_does_not_verify_never_gets_its_final_name() {
    let s = Scratch::new("batch-verify");
    let f = fixtures();
    let out = s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    // The test hook flips a byte of each written copy before its run reads it back.
    let o = common::run(
        "env",
        [
            "KAIFUKU_TEST_DAMAGE_WRITTEN_OUTPUT=1".to_string(),
            env!("CARGO_BIN_EXE_kaifuku").to_string(),
            "fix".into(),
            "--jobs".into(),
            "2".into(),
            "--out-dir".into(),
            out.display().to_string(),
            f.join("gpt-win.raw").display().to_string(),
            f.join("mbr-win.raw").display().to_string(),
            f.join("no-crowdstrike.raw").display().to_string(),
        ],
    );
    assert_eq!(o.code, 3, "{}", o.both());
    assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));
    for name in ["gpt-win.raw", "mbr-win.raw"] {
        assert!(
            o.stderr
                .contains(&format!("{}: error", f.join(name).display())),
            "{}",
            o.stderr
        );
    }
}
