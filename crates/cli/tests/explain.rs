//! `kaifuku explain` judged by independent tools, on the practice disks (`gzip -dc` of
//! `web/practice/*.raw.gz`) and on fixtures made by mkntfs/ntfs-3g:
//!
//! * partitions: start and length equal `mmls`'s rows;
//! * the NTFS boot sector: sector size, cluster size, `$MFT` and `$MFTMirr` LCNs, file record and
//!   index block sizes equal `ntfsinfo -m`'s (on the volume cut out by offset);
//! * the walk: each index entry's name and record equal what `fls -r -p` lists for that path;
//! * each matched file's MFT record: number, sequence number, link count, in-use flag,
//!   `$STANDARD_INFORMATION` times and data runs equal `istat`'s, the update sequence fields and
//!   bytes in use equal `ntfsinfo -i`'s;
//! * the plan's patches: `before` is what the image holds at each offset and `after` what
//!   `kaifuku fix` writes there (read from both files, not through kaifuku); the `$MFT:$BITMAP`
//!   bits the fix clears are exactly the matched records' numbers;
//! * explaining the fixed image: nothing to fix, no patches, and the walk stops at the directory.

mod common;

use common::{extract, fls, istat, kaifuku, read_at, run, run_ok, sh, tsk_args, Scratch};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn practice(s: &Scratch, name: &str) -> PathBuf {
    let out = s.path(&format!("{name}.raw"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../web/practice")
        .join(format!("{name}.raw.gz"));
    let o = sh(&format!(
        "gzip -dc '{}' > '{}'",
        src.display(),
        out.display()
    ));
    assert_eq!(o.code, 0, "gzip -dc {}: {}", src.display(), o.both());
    out
}

fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/out/fixtures"));
    let p = dir.join(name);
    assert!(
        p.exists(),
        "fixture {} missing: run `python3 tests/make-fixtures.py {}` (test.sh does)",
        p.display(),
        dir.display()
    );
    p
}

fn explain_json(image: &Path) -> Value {
    let o = kaifuku(["explain".as_ref(), "--json".as_ref(), image.as_os_str()]);
    assert!(
        o.code == 0 || o.code == 1,
        "kaifuku explain {}: exit {}: {}",
        image.display(),
        o.code,
        o.stderr
    );
    serde_json::from_slice(&o.stdout).expect("explain --json prints JSON")
}

/// (start sector, length in sectors) of each partition `mmls` lists.
fn mmls(image: &Path, sector: u64) -> Vec<(u64, u64)> {
    let mut args = Vec::new();
    if sector != 512 {
        args.extend(["-b".to_string(), sector.to_string()]);
    }
    args.push(image.to_string_lossy().into_owned());
    let text = String::from_utf8_lossy(&run_ok("mmls", &args)).into_owned();
    let mut rows = Vec::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        // "004:  000  0000002048  0000071679  0000069632  EFI system partition": a partition
        // row has a slot number (not "Meta" or "-------") and not an extended container.
        if w.len() < 5 || !w[0].ends_with(':') || w[1] == "Meta" || w[1].starts_with('-') {
            continue;
        }
        if l.contains("Extended") {
            continue;
        }
        rows.push((w[2].parse().unwrap(), w[4].parse().unwrap()));
    }
    rows
}

/// `KEY: value` lines of a tool's output (the first of each key).
fn value_of(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"))
}

/// The leading number of `ntfsinfo`'s "512 (0x200) bytes"-style values.
fn leading_number(v: &str) -> u64 {
    v.split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number in {v:?}"))
}

fn structures<'a>(e: &'a Value, kind: &str) -> Vec<&'a Value> {
    e["structures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["what"]["kind"] == kind)
        .collect()
}

fn field<'a>(s: &'a Value, name: &str) -> &'a Value {
    &s["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"]["field"] == name)
        .unwrap_or_else(|| panic!("no field {name} in {}", s["what"]))["value"]
}

fn fields<'a>(s: &'a Value, name: &str) -> Vec<&'a Value> {
    s["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"]["field"] == name)
        .map(|f| &f["value"])
        .collect()
}

fn hex_decode(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

/// `istat`'s time line ("2024-07-19 04:09:13.000000000 (UTC)") as RFC 3339 seconds.
fn istat_time(text: &str, section: &str, key: &str) -> String {
    let body = text
        .split(section)
        .nth(1)
        .unwrap_or_else(|| panic!("{section}"));
    let v = value_of(body, key);
    let (date, rest) = v.split_once(' ').unwrap();
    let time = rest.split('.').next().unwrap();
    assert!(v.ends_with("(UTC)"), "istat must print UTC (TZ=UTC): {v}");
    format!("{date}T{time}")
}

struct Disk {
    image: PathBuf,
    sector: u64,
}

fn judge(d: &Disk, s: &Scratch, tag: &str) {
    let e = explain_json(&d.image);
    assert_eq!(e["outcome"], "matches", "{tag}: {e}");
    assert!(
        e["gaps"].as_array().unwrap().is_empty(),
        "{tag}: {}",
        e["gaps"]
    );

    // Partitions against mmls.
    let parts = e["partitions"].as_array().unwrap();
    let rows = mmls(&d.image, d.sector);
    let ours: Vec<(u64, u64)> = parts
        .iter()
        .map(|p| {
            let first = p["first_lba"].as_u64().unwrap();
            assert_eq!(p["start"].as_u64().unwrap(), first * d.sector, "{tag}");
            (first, p["size"].as_u64().unwrap() / d.sector)
        })
        .collect();
    assert_eq!(ours, rows, "{tag}: partitions against mmls");
    let windows: Vec<&Value> = parts.iter().filter(|p| p["windows"] == true).collect();
    assert_eq!(windows.len(), 1, "{tag}: one Windows partition");
    let win = windows[0];
    let win_number = win["number"].as_u64().unwrap();
    let win_start = win["start"].as_u64().unwrap();
    let win_size = win["size"].as_u64().unwrap();
    // The table's own bytes say the same: GPT entries or MBR slots.
    if e["scheme"] == "gpt" {
        let entry = structures(&e, "gpt_entry")
            .into_iter()
            .find(|s| s["what"]["partition"].as_u64() == Some(win_number))
            .expect("the Windows partition's GPT entry");
        assert_eq!(field(entry, "gpt_first_lba")["value"], win["first_lba"]);
        assert_eq!(field(entry, "gpt_last_lba")["value"], win["last_lba"]);
        // Basic data partition.
        assert_eq!(
            field(entry, "gpt_type_guid")["guid"],
            "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
        );
        assert_eq!(structures(&e, "mbr")[0]["what"]["protective"], true);
    } else {
        let mbr = structures(&e, "mbr")[0];
        let firsts: Vec<u64> = fields(mbr, "mbr_first_lba")
            .iter()
            .map(|v| v["value"].as_u64().unwrap())
            .collect();
        assert!(
            firsts.contains(&win["first_lba"].as_u64().unwrap()),
            "{tag}"
        );
    }

    // The Windows volume's boot sector against ntfsinfo -m.
    let vol = s.path(&format!("{tag}-volume.raw"));
    extract(&d.image, win_start, win_size, &vol);
    let boot = structures(&e, "ntfs_boot_sector")
        .into_iter()
        .find(|b| b["what"]["partition"].as_u64() == Some(win_number))
        .expect("the Windows volume's boot sector");
    assert_eq!(boot["disk_offset"].as_u64().unwrap(), win_start);
    let info = run("ntfsinfo", ["-m".as_ref(), vol.as_os_str()]);
    assert_eq!(info.code, 0, "ntfsinfo -m: {}", info.both());
    let info = info.text();
    let num = |k: &str| leading_number(&value_of(&info, k));
    assert_eq!(
        field(boot, "bytes_per_sector")["value"],
        num("Sector Size:")
    );
    assert_eq!(
        field(boot, "sectors_per_cluster")["bytes"],
        num("Cluster Size:")
    );
    assert_eq!(
        field(boot, "clusters_per_file_record")["bytes"],
        num("MFT Record Size:")
    );
    assert_eq!(
        field(boot, "clusters_per_index_block")["bytes"],
        num("Index Block Size:")
    );
    assert_eq!(
        field(boot, "mft_lcn")["value"],
        num("LCN of Data Attribute for FILE_MFT:")
    );
    assert_eq!(
        field(boot, "mft_mirr_lcn")["value"],
        num("LCN of Data Attribute for File_MFTMirr:")
    );
    let cluster = num("Cluster Size:");

    // The walk against fls: every entry's name and record are what fls lists for that path.
    let tsk = tsk_args(&d.image, win["first_lba"].as_u64().unwrap(), d.sector);
    let listed = fls(&tsk);
    let steps = structures(&e, "index_entry");
    assert!(
        steps.len() >= 5,
        "{tag}: root → Windows → … → CrowdStrike → files"
    );
    let mut expected_parent = 5u64;
    let mut at_directory = true;
    for step in &steps {
        let w = &step["what"];
        let dir = w["directory"].as_str().unwrap();
        let name = w["name"].as_str().unwrap();
        let rel = format!("{}/{name}", dir.trim_start_matches('\\').replace('\\', "/"));
        let rel = rel.trim_start_matches('/');
        let row = listed
            .iter()
            .find(|r| !r.0 && r.3 == rel)
            .unwrap_or_else(|| panic!("{tag}: fls lists no {rel}"));
        assert_eq!(w["record"].as_u64().unwrap(), row.2, "{tag}: {rel}");
        assert_eq!(field(step, "entry_file_reference")["record"], row.2);
        assert_eq!(field(step, "fn_name")["text"], name);
        assert_eq!(field(step, "fn_parent")["record"], w["directory_record"]);
        // Each directory is the one the entry before led to (the files all sit in the last).
        if at_directory {
            assert_eq!(w["directory_record"].as_u64().unwrap(), expected_parent);
        }
        if row.1.starts_with("d/d") {
            expected_parent = row.2;
        } else {
            at_directory = false;
        }
        // The entry's bytes are on the disk where it says (an index block entry can differ only
        // in a sector's last two bytes, which hold the update sequence number on disk).
        let bytes = hex_decode(step["bytes"].as_str().unwrap());
        let on_disk = read_at(&d.image, step["disk_offset"].as_u64().unwrap(), bytes.len());
        let differing = bytes.iter().zip(&on_disk).filter(|(a, b)| a != b).count();
        assert!(differing <= 2, "{tag}: entry {rel} is not where it says");
    }

    // Each matched file's record against istat and ntfsinfo -i.
    let targets = e["targets"].as_array().unwrap();
    assert!(!targets.is_empty());
    let records = structures(&e, "mft_record");
    assert_eq!(records.len(), targets.len());
    let mut target_records = Vec::new();
    for rec in records {
        let n = rec["what"]["record"].as_u64().unwrap();
        target_records.push(n);
        let ist = istat(&tsk, n);
        let mut args = tsk.clone();
        args.push(n.to_string());
        let o = sh(&format!("TZ=UTC istat {}", args.join(" ")));
        assert_eq!(o.code, 0);
        let ist_text = o.text();
        assert!(ist.allocated);
        assert_eq!(
            field(rec, "sequence_number")["value"],
            u64::from(ist.sequence)
        );
        assert_eq!(field(rec, "link_count")["value"], u64::from(ist.links));
        assert_eq!(field(rec, "record_flags")["in_use"], true);
        assert_eq!(field(rec, "record_number")["value"], n);
        let si = "$STANDARD_INFORMATION Attribute Values:";
        for (ours, theirs) in [
            ("si_created", "Created:"),
            ("si_modified", "File Modified:"),
            ("si_mft_changed", "MFT Modified:"),
            ("si_accessed", "Accessed:"),
        ] {
            let utc = field(rec, ours)["utc"].as_str().unwrap();
            assert_eq!(
                &utc[..19],
                istat_time(&ist_text, si, theirs),
                "{tag}: record {n} {ours}"
            );
        }
        let mut clusters = Vec::new();
        for run in field(rec, "data_runs")["runs"].as_array().unwrap() {
            if let Some(lcn) = run["lcn"].as_u64() {
                clusters.extend(lcn..lcn + run["length"].as_u64().unwrap());
            }
        }
        assert_eq!(clusters, ist.clusters, "{tag}: record {n} data runs");
        let i = run(
            "ntfsinfo",
            ["-i".as_ref(), n.to_string().as_ref(), vol.as_os_str()],
        );
        assert_eq!(i.code, 0, "ntfsinfo -i {n}: {}", i.both());
        let i = i.text();
        let inum = |k: &str| leading_number(&value_of(&i, k));
        assert_eq!(
            field(rec, "sequence_number")["value"],
            inum("MFT Record Seq. Numb.:")
        );
        assert_eq!(
            field(rec, "link_count")["value"],
            inum("Number of Hard Links:")
        );
        assert_eq!(
            field(rec, "update_sequence_offset")["value"],
            inum("Upd. Seq. Array Off.:")
        );
        assert_eq!(
            field(rec, "update_sequence_count")["value"],
            inum("Upd. Seq. Array Count:")
        );
        assert_eq!(
            field(rec, "update_sequence_number")["value"],
            inum("Upd. Seq. Number:")
        );
        assert_eq!(field(rec, "bytes_in_use")["value"], inum("Bytes Used:"));
        // The record is where it says, byte for byte as stored.
        let bytes = hex_decode(rec["bytes"].as_str().unwrap());
        assert_eq!(
            bytes,
            read_at(&d.image, rec["disk_offset"].as_u64().unwrap(), bytes.len()),
            "{tag}: record {n}"
        );
        // So are the file's first bytes: its first cluster, per istat.
        let start = structures(&e, "file_start")
            .into_iter()
            .find(|f| f["what"]["record"].as_u64() == Some(n))
            .expect("the file's first bytes");
        assert_eq!(
            start["disk_offset"].as_u64().unwrap(),
            win_start + ist.clusters[0] * cluster
        );
    }
    for t in targets {
        let n = t["record"].as_u64().unwrap();
        let ist = istat(&tsk, n);
        assert_eq!(t["sequence"].as_u64().unwrap(), u64::from(ist.sequence));
        assert_eq!(t["link_count"].as_u64().unwrap(), u64::from(ist.links));
    }

    // The patches against the files: before = the image, after = what `kaifuku fix` wrote.
    let fixed = s.path(&format!("{tag}-fixed.raw"));
    let o = kaifuku([
        "fix".as_ref(),
        d.image.as_os_str(),
        "-o".as_ref(),
        fixed.as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{tag}: kaifuku fix: {}", o.stderr);
    let patches = e["patches"].as_array().unwrap();
    assert!(!patches.is_empty());
    let mut cleared_records = Vec::new();
    for p in patches {
        let at = p["disk_offset"].as_u64().unwrap();
        let before = hex_decode(p["before"].as_str().unwrap());
        let after = hex_decode(p["after"].as_str().unwrap());
        assert_eq!(
            before,
            read_at(&d.image, at, before.len()),
            "{tag}: before at {at}"
        );
        assert_eq!(
            after,
            read_at(&fixed, at, after.len()),
            "{tag}: after at {at}"
        );
        for c in p["changed"].as_array().unwrap() {
            let (off, len) = (
                c["offset"].as_u64().unwrap() as usize,
                c["len"].as_u64().unwrap() as usize,
            );
            assert!(before[off..off + len]
                .iter()
                .zip(&after[off..off + len])
                .all(|(a, b)| a != b));
            if c["field"]["field"] == "mft_bitmap_bits" {
                for b in c["bits"].as_array().unwrap() {
                    assert_eq!(b["set_after"], false);
                    cleared_records.push(b["bit"].as_u64().unwrap());
                }
            }
        }
        // Every changed byte is inside a named run.
        let named: usize = p["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["len"].as_u64().unwrap() as usize)
            .sum();
        let differing = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(named, differing, "{tag}: patch at {at}");
    }
    cleared_records.sort();
    target_records.sort();
    assert_eq!(
        cleared_records, target_records,
        "{tag}: $MFT:$BITMAP bits cleared"
    );
    // The record patches name what changes in a delete: the in-use flag and sequence number.
    let record_fields: Vec<&str> = patches
        .iter()
        .filter(|p| p["label"]["kind"] == "mft_record")
        .flat_map(|p| p["changed"].as_array().unwrap())
        .filter_map(|c| c["field"]["field"].as_str())
        .collect();
    assert!(
        record_fields.contains(&"record_flags"),
        "{tag}: {record_fields:?}"
    );
    assert!(
        record_fields.contains(&"sequence_number"),
        "{tag}: {record_fields:?}"
    );

    // The fixed image explained: nothing left to fix, the walk ends at the directory.
    let after = explain_json(&fixed);
    assert_eq!(after["outcome"], "nothing-to-fix", "{tag}: {after}");
    assert!(after["patches"].as_array().unwrap().is_empty());
    assert!(after["targets"].as_array().unwrap().is_empty());
    assert!(structures(&after, "mft_record").is_empty());
}

#[test]
fn practice_disks_explained_as_independent_tools_read_them() {
    let s = Scratch::new("explain-practice");
    for name in ["gpt", "mbr"] {
        let image = practice(&s, name);
        judge(&Disk { image, sector: 512 }, &s, name);
    }
}

#[test]
fn fixtures_explained_as_independent_tools_read_them() {
    let s = Scratch::new("explain-fixtures");
    for (name, sector) in [
        ("gpt-win.raw", 512),
        ("gpt-4kn.raw", 4096),
        ("mbr-win.raw", 512),
    ] {
        judge(
            &Disk {
                image: fixture(name),
                sector,
            },
            &s,
            name,
        );
    }
}

#[test]
fn a_dynamic_vhd_shows_the_structures_of_its_virtual_disk() {
    // The same disk as a raw image and as a dynamic VHD: the same structures at the same virtual
    // disk offsets.
    let raw = explain_json(&fixture("gpt-win.raw"));
    let vhd = explain_json(&fixture("gpt-win-dynamic.vhd"));
    assert_eq!(raw["structures"], vhd["structures"]);
    assert_eq!(raw["patches"], vhd["patches"]);
}

/// The unclean practice disk's faulty file is only in its journal: the plan replays the journal
/// (no consent asked, no reset) and finds the file on the replayed volume.
#[test]
fn the_unclean_practice_disk_shows_the_journal_replay_in_its_plan() {
    let s = Scratch::new("explain-unclean");
    let image = practice(&s, "unclean");
    let e = explain_json(&image);
    assert_eq!(e["outcome"], "matches");
    assert!(e["plan_problem"].is_null(), "{}", e["plan_problem"]);
    let targets: Vec<&str> = e["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291-00000000-00000032.sys"]
    );
    let kinds = |kind: &str| {
        e["patches"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["label"]["kind"] == kind)
            .count()
    };
    assert!(kinds("journal_replay") > 0, "{}", e["patches"]);
    let marked_clean: std::collections::BTreeSet<&str> = e["patches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["label"]["kind"] == "journal_marked_clean")
        .map(|p| p["label"]["copy"].as_str().unwrap())
        .collect();
    assert_eq!(
        marked_clean.into_iter().collect::<Vec<_>>(),
        ["first", "second"],
        "both restart pages marked clean"
    );
    assert_eq!(kinds("journal_reset"), 0, "{}", e["patches"]);

    // The volume is shown as the replay leaves it, where the file was found: its record is
    // shown (on the image it lies past the end of $MFT), and nothing is left unread.
    let record = e["targets"][0]["record"].as_u64().unwrap();
    assert!(
        e["structures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["what"]["kind"] == "mft_record" && s["what"]["record"] == record),
        "the faulty file's record is shown: {}",
        e["gaps"]
    );
    assert_eq!(e["gaps"], serde_json::json!([]), "{}", e["gaps"]);

    // The plan in its two steps: the replay creates the faulty file's record, then the deletion
    // frees it on the replayed volume. The deletion's own patches are shown (labelled with the
    // record, not hidden under the replay's label), against the replayed record: in use before,
    // not after.
    let patches = e["patches"].as_array().unwrap();
    let replayed_at = patches
        .iter()
        .rposition(|p| {
            p["label"]["kind"] == "journal_replay" && p["label"]["page"]["record"] == record
        })
        .unwrap_or_else(|| panic!("the replay writes record {record}: {}", e["patches"]));
    let flags = patches
        .iter()
        .enumerate()
        .filter(|(_, p)| p["label"]["kind"] == "mft_record" && p["label"]["record"] == record)
        .find_map(|(i, p)| {
            let run = p["changed"]
                .as_array()?
                .iter()
                .find(|c| c["field"]["field"] == "record_flags")?;
            let at = run["offset"].as_u64()? as usize * 2;
            let byte = |side: &str| u8::from_str_radix(&p[side].as_str()?[at..at + 2], 16).ok();
            Some((i, byte("before")?, byte("after")?))
        })
        .unwrap_or_else(|| {
            panic!(
                "the deletion clears record {record}'s flags: {}",
                e["patches"]
            )
        });
    assert!(
        flags.0 > replayed_at,
        "the deletion's step follows the replay's"
    );
    assert_eq!(
        (flags.1 & 1, flags.2 & 1),
        (1, 0),
        "in use on the replayed volume, free after the fix"
    );
    // The replay's bytes are named by what they are (a record's fields, bitmap bits), never as
    // journal bytes: only the restart pages marked clean are the journal's.
    for p in patches
        .iter()
        .filter(|p| p["label"]["kind"] == "journal_replay")
    {
        for c in p["changed"].as_array().unwrap() {
            assert_ne!(c["field"]["field"], "journal_bytes", "{p}");
        }
    }
}

#[test]
fn the_text_names_the_structures_and_fields() {
    let s = Scratch::new("explain-text");
    let image = practice(&s, "gpt");
    let o = kaifuku(["explain".as_ref(), image.as_os_str()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let text = o.text();
    for needle in [
        "== Protective MBR (sector 0) at disk byte 0 (512 bytes)",
        "== GPT header (LBA 1) at disk byte 512",
        "partition type GUID: EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        "sectors per cluster → cluster size: 4096 bytes (stored as 8)",
        "Index entry in \\Windows\\System32\\drivers (MFT record",
        "$STANDARD_INFORMATION modified: 2024-07-19T04:09:13Z",
        "→ faulty version (04:09 UTC), all zeros",
        "$MFT:$BITMAP bits (one per file record)",
        "Outcome     files to fix found",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}
