//! A channel file whose `$ATTRIBUTE_LIST` ends in a partial entry (found by fuzzing `plan_image`):
//! the `ntfs` crate, which kaifuku's inspect uses to cross-check a match's times and data, reaches
//! an `unreachable!` on such a list and panicked the whole run (exit 101). The list is now checked
//! by kaifuku's own reader before the crate is given the record, and the record is reported as
//! damaged: inspect and fix exit 3 with the reason, nothing is written, nothing panics.
//!
//! The damaged record is made here from the bare fixture volume: a resident `$ATTRIBUTE_LIST` is
//! inserted into the channel file's record (one entry naming its `$STANDARD_INFORMATION`, then 8
//! stray bytes), with the record's fixups kept valid.

mod common;

use common::{fixtures, kaifuku, refixup, sparse_copy, u16le, u32le, unfixup, Scratch, Vol};
use std::ffi::OsStr;
use std::os::unix::fs::FileExt;

/// The channel file the built-in rule matches first on `bare-64k.raw` (its record number comes
/// from `kaifuku inspect --json` below, so a changed fixture is noticed).
const CHANNEL_FILE: &str = "C-00000291-00000000-00000032.sys";

#[test]
fn a_partial_attribute_list_entry_is_damage_not_a_panic() {
    let s = Scratch::new("damaged-attribute-list");
    let image = s.path("bare.raw");
    sparse_copy(&fixtures().join("bare-64k.raw"), &image);
    let r = kaifuku([
        OsStr::new("inspect"),
        OsStr::new("--json"),
        image.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "premise: {}", r.both());
    let report: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let record = report["volumes"][0]["rule"]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == CHANNEL_FILE)
        .and_then(|m| m["mft_record"].as_u64())
        .expect("the channel file's record");

    // The record with fixups undone; insert the list after $STANDARD_INFORMATION (type 0x10).
    let vol = Vol::open(&image);
    let mut rec = vol.record_raw(record);
    unfixup(&mut rec).unwrap();
    let first = u16le(&rec, 0x14) as usize;
    assert_eq!(
        u32le(&rec, first),
        0x10,
        "premise: $STANDARD_INFORMATION first"
    );
    let si_len = u32le(&rec, first + 4) as usize;
    let si_instance = u16le(&rec, first + 0x0E);
    let at = first + si_len;
    let mut value = Vec::new();
    value.extend_from_slice(&0x10u32.to_le_bytes()); // type: $STANDARD_INFORMATION
    value.extend_from_slice(&32u16.to_le_bytes()); // entry length
    value.extend_from_slice(&[0, 0x1A]); // no name, name offset
    value.extend_from_slice(&0u64.to_le_bytes()); // lowest VCN
    let seq = u16le(&rec, 0x10);
    value.extend_from_slice(&(record | u64::from(seq) << 48).to_le_bytes()); // this record
    value.extend_from_slice(&si_instance.to_le_bytes());
    value.resize(32, 0);
    value.extend_from_slice(&[0xAB; 8]); // a partial second entry: 8 of its 26 header bytes
    let next_instance = u16le(&rec, 0x28);
    let mut attr = Vec::new();
    attr.extend_from_slice(&0x20u32.to_le_bytes()); // $ATTRIBUTE_LIST
    attr.extend_from_slice(&(0x18u32 + value.len() as u32).to_le_bytes());
    attr.extend_from_slice(&[0, 0]); // resident, no name
    attr.extend_from_slice(&0x18u16.to_le_bytes()); // name offset
    attr.extend_from_slice(&0u16.to_le_bytes()); // flags
    attr.extend_from_slice(&next_instance.to_le_bytes());
    attr.extend_from_slice(&(value.len() as u32).to_le_bytes());
    attr.extend_from_slice(&0x18u16.to_le_bytes()); // value offset
    attr.extend_from_slice(&[0, 0]);
    attr.extend_from_slice(&value);
    assert_eq!(attr.len() % 8, 0);
    let used = u32le(&rec, 0x18) as usize;
    assert!(
        used + attr.len() <= rec.len(),
        "premise: room in the record"
    );
    rec.splice(at..at, attr.iter().copied());
    rec.truncate(vol.record_size as usize);
    rec[0x18..0x1C].copy_from_slice(&((used + attr.len()) as u32).to_le_bytes());
    rec[0x28..0x2A].copy_from_slice(&(next_instance + 1).to_le_bytes());
    refixup(&mut rec);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    let mut done = 0usize;
    for (off, len) in vol.record_location(record) {
        f.write_all_at(&rec[done..done + len as usize], off)
            .unwrap();
        done += len as usize;
    }
    drop(f);

    let before = common::sha256(&image);
    let r = kaifuku([OsStr::new("inspect"), image.as_os_str()]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(
        r.both().contains("$ATTRIBUTE_LIST") && r.both().contains("partial entry"),
        "{}",
        r.both()
    );
    let out = s.path("out.raw");
    let r = kaifuku([
        OsStr::new("fix"),
        image.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 3, "{}", r.both());
    assert!(!out.exists());
    assert_eq!(common::sha256(&image), before);
}
