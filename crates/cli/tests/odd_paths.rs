//! Oddities on the rule's path, made by ntfs-3g: a directory named like a channel file, and a
//! CrowdStrike directory that is a junction. Each gets a notice and a sensible outcome — the files
//! that are really there are fixed, what only looks like a target stays — never a refusal of the
//! whole volume, and never "nothing to fix" over files that a link hides.

mod common;

use common::{assert_check_clean, fixtures, kaifuku, ntfs3g, run, sparse_copy, Mount, Scratch};
use std::path::Path;

const CS: &str = "Windows/System32/drivers/CrowdStrike";
const FAULTY: &str = "C-00000291-00000000-00000032.sys";

/// A copy of the small bare fixture volume, changed through a read-write ntfs-3g mount.
fn volume_with(s: &Scratch, name: &str, change: impl FnOnce(&Mount)) -> std::path::PathBuf {
    let img = s.path(name);
    sparse_copy(&fixtures().join("cs-rootonly.raw"), &img);
    let m = ntfs3g(&img, &s.path(&format!("{name}.mnt")), true);
    change(&m);
    m.unmount();
    img
}

/// A junction (IO_REPARSE_TAG_MOUNT_POINT) reparse buffer, as Windows' `mklink /J` stores it.
fn junction(target: &str) -> String {
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect() };
    let subst = utf16(&format!("\\??\\{target}"));
    let print = utf16(target);
    let mut path = subst.clone();
    path.extend_from_slice(&[0, 0]);
    path.extend_from_slice(&print);
    path.extend_from_slice(&[0, 0]);
    let mut data = Vec::new();
    data.extend_from_slice(&0u16.to_le_bytes());
    data.extend_from_slice(&(subst.len() as u16).to_le_bytes());
    data.extend_from_slice(&((subst.len() + 2) as u16).to_le_bytes());
    data.extend_from_slice(&(print.len() as u16).to_le_bytes());
    data.extend_from_slice(&path);
    let mut b = Vec::new();
    b.extend_from_slice(&0xA000_0003u32.to_le_bytes());
    b.extend_from_slice(&(data.len() as u16).to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&data);
    format!(
        "0x{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// Moves the CrowdStrike directory to `real` and leaves a junction to `target` in its place.
fn junction_volume(s: &Scratch, name: &str, real: &str, target: &str) -> std::path::PathBuf {
    volume_with(s, name, |m| {
        std::fs::rename(m.p(CS), m.p(real)).unwrap();
        std::fs::create_dir(m.p(CS)).unwrap();
        let o = run(
            "setfattr",
            [
                "-n",
                "system.ntfs_reparse_data",
                "-v",
                &junction(target),
                m.p(CS).to_str().unwrap(),
            ],
        );
        assert_eq!(o.code, 0, "setfattr: {}", o.both());
    })
}

fn exists_on(image: &Path, s: &Scratch, tag: &str, rel: &str) -> bool {
    let m = ntfs3g(image, &s.path(tag), false);
    let there = std::fs::symlink_metadata(m.p(rel)).is_ok();
    m.unmount();
    there
}

#[test]
fn a_directory_named_like_a_target_stays_and_the_files_go() {
    let s = Scratch::new("odd-dir");
    let dir_name = "C-00000291-00000000-00000099.sys";
    let img = volume_with(&s, "dir.raw", |m| {
        std::fs::create_dir(m.p(&format!("{CS}/{dir_name}"))).unwrap();
    });
    let o = kaifuku(["inspect", img.to_str().unwrap()]);
    assert_eq!(o.code, 0, "the real files still match: {}", o.both());
    assert!(
        o.text().contains(&format!("{dir_name} is a directory")),
        "a notice names the directory: {}",
        o.text()
    );
    let out = s.path("out.raw");
    let o = kaifuku(["fix", img.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, 0, "fix: {}", o.both());
    assert_check_clean(&out, "after the fix");
    assert!(exists_on(&out, &s, "m1", &format!("{CS}/{dir_name}")));
    assert!(!exists_on(&out, &s, "m2", &format!("{CS}/{FAULTY}")));
    assert_eq!(run("ntfsfix", ["-n", out.to_str().unwrap()]).code, 0);
}

#[test]
fn a_junction_to_this_volume_is_followed() {
    let s = Scratch::new("odd-junction");
    let real = "Windows/System32/drivers/CS-real";
    let img = junction_volume(
        &s,
        "junction.raw",
        real,
        "C:\\Windows\\System32\\drivers\\CS-real",
    );
    // The premise, seen by another reader: the CrowdStrike directory is now a reparse point.
    let info = run(
        "ntfsinfo",
        [
            "-F",
            "/Windows/System32/drivers/CrowdStrike",
            img.to_str().unwrap(),
        ],
    );
    assert!(
        info.text().contains("$REPARSE_POINT"),
        "ntfsinfo sees a reparse point: {}",
        info.both()
    );

    let o = kaifuku(["inspect", img.to_str().unwrap()]);
    assert_eq!(o.code, 0, "the files behind the link match: {}", o.both());
    assert!(o.text().contains("is a link to"), "{}", o.text());
    assert!(
        o.text().contains(&format!("\\CS-real\\{FAULTY}")),
        "the match is named where it really is: {}",
        o.text()
    );
    let out = s.path("out.raw");
    let o = kaifuku(["fix", img.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, 0, "fix: {}", o.both());
    assert_check_clean(&out, "after the fix");
    assert!(!exists_on(&out, &s, "m1", &format!("{real}/{FAULTY}")));
    assert!(exists_on(&out, &s, "m2", &format!("{real}/csagent.sys")));
    assert!(exists_on(&out, &s, "m3", CS), "the link itself stays");
    assert_eq!(run("ntfsfix", ["-n", out.to_str().unwrap()]).code, 0);
}

#[test]
fn a_junction_to_another_volume_is_refused_with_what_to_do() {
    let s = Scratch::new("odd-junction-d");
    let img = junction_volume(
        &s,
        "junction-d.raw",
        "Windows/System32/drivers/CS-real",
        "D:\\CS",
    );
    let out = s.path("out.raw");
    let o = kaifuku(["fix", img.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, 2, "not followable, so refused: {}", o.both());
    assert!(o.both().contains("D:\\CS"), "{}", o.both());
    assert!(o.both().contains("--path"), "says what to do: {}", o.both());
    assert!(!out.exists());
}

/// A channel file that is sparse and 1 TiB long (ntfs-3g `truncate`; a damaged or hostile size
/// looks the same): inspect reads only its allocated clusters to decide whether it is all zeros,
/// and finishes (it once scanned every byte of the size, which never ended). A non-zero byte
/// written far into such a file, in its one allocated cluster, is still seen.
#[test]
fn a_huge_sparse_channel_file_is_judged_without_reading_its_size() {
    let s = Scratch::new("odd-sparse");
    const TIB: u64 = 1 << 40;
    let zeros = "C-00000291-00000000-00000077.sys";
    let late = "C-00000291-00000000-00000078.sys";
    let img = volume_with(&s, "sparse.raw", |m| {
        let f = std::fs::File::create(m.p(&format!("{CS}/{zeros}"))).unwrap();
        f.set_len(TIB).unwrap();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(m.p(&format!("{CS}/{late}")))
            .unwrap();
        f.set_len(TIB).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &[0x5A], 1 << 30).unwrap();
    });
    let o = kaifuku(["inspect", "--json", img.to_str().unwrap()]);
    assert_eq!(o.code, 0, "inspect: {}", o.both());
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let matches: Vec<serde_json::Value> = report["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["rule"]["matches"].as_array().cloned().unwrap_or_default())
        .collect();
    let find = |name: &str| {
        matches
            .iter()
            .find(|m| m["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .unwrap_or_else(|| panic!("{name} is listed: {}", o.text()))
            .clone()
    };
    assert_eq!(find(zeros)["size"], TIB);
    assert_eq!(find(zeros)["all_zero"], true);
    assert_eq!(find(late)["size"], TIB);
    assert_eq!(find(late)["all_zero"], false);

    // Our own reader (the fallback where the `ntfs` crate cannot read a record) answers the same,
    // and as quickly.
    let bytes = std::fs::read(&img).unwrap();
    let vol = kaifuku_ntfs::Volume::open(&bytes).unwrap();
    let dir = vol
        .lookup_dir("\\Windows\\System32\\drivers\\CrowdStrike")
        .unwrap()
        .expect("the CrowdStrike directory");
    let mut seen = 0;
    for e in vol.directory(&dir).unwrap().entries(&vol).unwrap() {
        let name = e.name();
        if name == zeros || name == late {
            let own = vol.file_details_own(&e).unwrap();
            assert_eq!((own.size, own.all_zero), (TIB, name == zeros), "{name}");
            seen += 1;
        }
    }
    assert_eq!(seen, 2, "both files listed by our own reader");
}
