//! What `fix` must refuse with a plain explanation rather than guess: a file with an
//! `$ATTRIBUTE_LIST`, a BitLocker volume, a hibernated Windows. A refusal is exit 2 and no output.

mod common;

use common::{
    extract, fixtures, gpl_testdata, implant, kaifuku, ntfs3g, refixup, repo_testdata, run_ok, sh,
    sparse_copy, u16le, u32le, unfixup, write_at, Scratch, Vol,
};

fn refuses(args: &[&str], out: &std::path::Path, words: &[&str]) {
    let o = kaifuku(args);
    assert_eq!(o.code, 2, "want a refusal (exit 2): {}", o.both());
    let text = o.both().to_lowercase();
    for w in words {
        assert!(
            text.contains(&w.to_lowercase()),
            "the explanation should mention {w:?}: {}",
            o.both()
        );
    }
    assert!(!out.exists(), "a refused fix must not leave an output file");
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    assert!(
        !std::path::Path::new(&partial).exists(),
        "no partial output either"
    );
}

#[test]
fn attribute_list_file_is_refused() {
    // A real volume whose record 27 has an $ATTRIBUTE_LIST and many hard links (17.txt, 36.txt, ...).
    let s = Scratch::new("refuse-attrlist");
    let img = s.path("attrlist.raw");
    let Some(gz) = gpl_testdata(
        "dfir_ntfs/ntfs3_attrlist.raw.gz",
        "attribute_list_file_is_refused",
    ) else {
        return;
    };
    let o = sh(&format!(
        "gunzip -c '{}' > '{}'",
        gz.display(),
        img.display()
    ));
    assert_eq!(o.code, 0, "gunzip: {}", o.stderr);
    // sleuthkit confirms the premise independently: record 27 has an attribute list.
    let istat = run_ok("istat", [img.to_str().unwrap(), "27"]);
    let istat = String::from_utf8_lossy(&istat);
    assert!(
        istat.contains("$ATTRIBUTE_LIST"),
        "record 27 should have an $ATTRIBUTE_LIST: {istat}"
    );
    let out = s.path("out.raw");
    refuses(
        &[
            "fix",
            img.to_str().unwrap(),
            "--path",
            "\\17.txt",
            "-o",
            out.to_str().unwrap(),
        ],
        &out,
        &["$ATTRIBUTE_LIST"],
    );
}

#[test]
fn bitlocker_volume_is_refused() {
    // Turn the bare fixture volume into what BitLocker leaves at its start: OEM ID -FVE-FS-.
    let s = Scratch::new("refuse-bitlocker");
    let img = s.path("bitlocker.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &img);
    write_at(&img, 3, b"-FVE-FS-");
    let out = s.path("out.raw");
    let o = kaifuku(["inspect", img.to_str().unwrap()]);
    assert_eq!(o.code, 2, "inspect of a BitLocker volume: {}", o.both());
    assert!(o.both().contains("BitLocker"), "{}", o.both());
    refuses(
        &["fix", img.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &out,
        &["BitLocker"],
    );
}

#[test]
fn hibernated_windows_is_refused() {
    // A hiberfil.sys whose header says "hibr", written by ntfs-3g on a copy of the fixture.
    let s = Scratch::new("refuse-hibernation");
    let img = s.path("hib.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &img);
    let m = ntfs3g(&img, &s.path("mnt"), true);
    let mut data = b"hibr".to_vec();
    data.resize(64 * 1024, 0x5a);
    std::fs::write(m.p("hiberfil.sys"), &data).unwrap();
    m.unmount();
    let o = kaifuku(["inspect", img.to_str().unwrap()]);
    assert!(o.text().contains("HIBERNATED"), "{}", o.both());
    let out = s.path("out.raw");
    refuses(
        &["fix", img.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &out,
        &["hibernated"],
    );

    // A hiberfil.sys that is not a saved session (zeroed header) does not block the fix.
    let img2 = s.path("nohib.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &img2);
    let m = ntfs3g(&img2, &s.path("mnt2"), true);
    std::fs::write(m.p("hiberfil.sys"), vec![0u8; 64 * 1024]).unwrap();
    m.unmount();
    let out2 = s.path("out2.raw");
    let o = kaifuku(["fix", img2.to_str().unwrap(), "-o", out2.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.both());
    assert!(out2.exists());
}

#[test]
fn system_files_are_never_deleted() {
    let s = Scratch::new("refuse-system");
    for (fixture, path) in [
        ("cs-rootonly.raw", "\\$MFT"),
        ("cs-rootonly.raw", "\\$Bitmap"),
        ("cs-rootonly.raw", "\\$*"),
        ("bare-64k.raw", "\\$Extend\\$ObjId"),
    ] {
        let img = fixtures().join(fixture);
        let out = s.path("out.raw");
        refuses(
            &[
                "fix",
                img.to_str().unwrap(),
                "--path",
                path,
                "-o",
                out.to_str().unwrap(),
            ],
            &out,
            &["system files"],
        );
    }
}

#[test]
fn check_flags_a_freed_metafile() {
    // Clear the in-use flag of $Extend (record 11), keeping the fixups right.
    let s = Scratch::new("metafile");
    let img = s.path("broken.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &img);
    let vol = Vol::open(&img);
    let mut rec = vol.record_raw(11);
    unfixup(&mut rec).unwrap();
    let flags = u16le(&rec, 0x16) & !1;
    rec[0x16..0x18].copy_from_slice(&flags.to_le_bytes());
    refixup(&mut rec);
    let mut at = 0usize;
    for (off, len) in vol.record_location(11) {
        write_at(&img, off, &rec[at..at + len as usize]);
        at += len as usize;
    }
    let o = kaifuku(["check", img.to_str().unwrap()]);
    assert_eq!(o.code, 4, "{}", o.both());
    assert!(o.both().contains("metafiles"), "{}", o.both());
}

#[test]
fn volume_with_quota_tracking_is_refused() {
    // A volume formatted by Windows has $Extend\$Quota; turn on QUOTA_FLAG_TRACKING_ENABLED (0x10)
    // in its defaults entry (owner id 1 in the $Q index) and the fix must refuse.
    let s = Scratch::new("refuse-quota");
    let img = s.path("ptrn.raw");
    let gz = repo_testdata().join("windows-made/ntfs-ptrn.raw.gz");
    assert_eq!(
        sh(&format!(
            "gunzip -c '{}' > '{}'",
            gz.display(),
            img.display()
        ))
        .code,
        0
    );
    // The partition, as sfdisk reads it.
    let table: serde_json::Value =
        serde_json::from_slice(&run_ok("sfdisk", ["-J", img.to_str().unwrap()])).unwrap();
    let p = &table["partitiontable"]["partitions"][0];
    let (off, len) = (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    );
    let out = s.path("out.raw");
    let o = kaifuku([
        "fix",
        img.to_str().unwrap(),
        "--path",
        "\\1.txt",
        "--dry-run",
    ]);
    assert_eq!(
        o.code,
        0,
        "quotas are off on this volume as Windows made it: {}",
        o.both()
    );

    let vol_file = s.path("vol.raw");
    extract(&img, off, len, &vol_file);
    let vol = Vol::open(&vol_file);
    let quota = run_ok(
        "ntfsinfo",
        ["-F", "/$Extend/$Quota", vol_file.to_str().unwrap()],
    );
    let quota = String::from_utf8_lossy(&quota);
    let n: u64 = quota
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Dumping Inode ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|x| x.parse().ok())
        })
        .unwrap_or_else(|| panic!("ntfsinfo did not name $Quota's record: {quota}"));
    let mut rec = vol.record(n);
    let root = rec
        .attr(0x90, "$Q")
        .expect("$Q index root is resident in the record");
    // INDEX_ROOT value: 16-byte header, then INDEX_HEADER with the entries offset.
    let value_at = root.offset + u16le(&root.raw, 0x14) as usize;
    let mut e = value_at + 0x10 + u32le(&rec.b, value_at + 0x10) as usize;
    let mut flags_at = None;
    loop {
        let len = u16le(&rec.b, e + 8) as usize;
        let eflags = u16le(&rec.b, e + 0x0C);
        if eflags & 2 != 0 {
            break;
        }
        if u32le(&rec.b, e + 0x10) == 1 {
            flags_at = Some(e + u16le(&rec.b, e) as usize + 4);
            break;
        }
        e += len;
    }
    let at = flags_at.expect("the $Q defaults entry (owner id 1) sits in the index root");
    let flags = u32le(&rec.b, at) | 0x10;
    rec.b[at..at + 4].copy_from_slice(&flags.to_le_bytes());
    refixup(&mut rec.b);
    let mut pos = 0usize;
    for (o, l) in vol.record_location(n) {
        write_at(&vol_file, o, &rec.b[pos..pos + l as usize]);
        pos += l as usize;
    }
    implant(&vol_file, &img, off);
    refuses(
        &[
            "fix",
            img.to_str().unwrap(),
            "--path",
            "\\1.txt",
            "-o",
            out.to_str().unwrap(),
        ],
        &out,
        &["quota"],
    );
}
