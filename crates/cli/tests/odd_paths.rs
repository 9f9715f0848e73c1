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
