//! `inspect` on Windows volumes holding registry hives made by hivex
//! (`tests/make-hive-fixtures.py`): the build number and the hives' states in `--json` and in the
//! human report, judged by `hivexget` run on the hive `ntfscat` extracts from the same image, and
//! by the sequence numbers the script read from the hives' headers. Skipped, by name, when the
//! script cannot run (no root, FUSE, ntfs-3g or hivex).

mod common;

use common::{hive_volumes, kaifuku, load_json, run, run_ok, Scratch};
use serde_json::Value;
use std::path::Path;

/// `hivexget` of a value of the hive `name` as `ntfscat` reads it out of `image`.
fn hivexget_from_image(
    scratch: &Scratch,
    image: &Path,
    name: &str,
    key: &str,
    value: &str,
) -> String {
    let file = scratch.path(&format!("{name}.from-image"));
    let bytes = run_ok(
        "ntfscat",
        [
            image.as_os_str(),
            format!("/Windows/System32/config/{name}").as_ref(),
        ],
    );
    std::fs::write(&file, bytes).unwrap();
    let text = run_ok("hivexget", [file.as_os_str(), key.as_ref(), value.as_ref()]);
    String::from_utf8(text)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

fn only_volume(report: &Value) -> &Value {
    let volumes = report["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "{report}");
    &volumes[0]
}

#[test]
fn the_build_and_dirty_hives_are_reported() {
    let test = "the_build_and_dirty_hives_are_reported";
    let scratch = Scratch::new("inspect-hives");
    let Some(dir) = hive_volumes(&scratch, test) else {
        return;
    };
    let expected = load_json(&dir.join("expected.json"));
    let image = dir.join("win-hives.raw");
    let out = kaifuku(["inspect".as_ref(), "--json".as_ref(), image.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.both());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let registry = &only_volume(&report)["registry"];

    let build = hivexget_from_image(
        &scratch,
        &image,
        "SOFTWARE",
        r"\Microsoft\Windows NT\CurrentVersion",
        "CurrentBuildNumber",
    );
    assert_eq!(build, "17763");
    assert_eq!(registry["windows_version"]["code"], "build");
    assert_eq!(
        registry["windows_version"]["build"]
            .as_u64()
            .unwrap()
            .to_string(),
        build
    );
    let product = hivexget_from_image(
        &scratch,
        &image,
        "SOFTWARE",
        r"\Microsoft\Windows NT\CurrentVersion",
        "ProductName",
    );
    assert_eq!(
        registry["windows_version"]["product_name"],
        product.as_str()
    );

    let software = &expected["SOFTWARE"]["header"];
    assert_eq!(
        registry["software"]["path"],
        r"\Windows\System32\config\SOFTWARE"
    );
    assert_eq!(registry["software"]["state"]["code"], "clean");
    assert_eq!(
        registry["software"]["state"]["sequence"],
        software["primary_sequence"]
    );
    assert_eq!(software["primary_sequence"], software["secondary_sequence"]);

    let system = &expected["SYSTEM"]["header"];
    assert_eq!(
        registry["system"]["path"],
        r"\Windows\System32\config\SYSTEM"
    );
    assert_eq!(registry["system"]["state"]["code"], "dirty");
    assert_eq!(
        registry["system"]["state"]["primary_sequence"],
        system["primary_sequence"]
    );
    assert_eq!(
        registry["system"]["state"]["secondary_sequence"],
        system["secondary_sequence"]
    );
    assert_ne!(system["primary_sequence"], system["secondary_sequence"]);
    // The hive on the image is the one the script judged (hivex, then its header patch).
    let on_image = run_ok(
        "ntfscat",
        [
            image.as_os_str(),
            "/Windows/System32/config/SYSTEM".as_ref(),
        ],
    );
    assert_eq!(on_image, std::fs::read(dir.join("SYSTEM")).unwrap());

    // The registry changes nothing else: the rule still finds the 04:09 file.
    assert_eq!(report["outcome"], "matches");

    let human = kaifuku(["inspect".as_ref(), image.as_os_str()]);
    let text = human.text();
    assert!(
        text.contains(&format!("            Windows build 17763 ({product})\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "            registry hive SYSTEM: DIRTY: Windows was writing it when it stopped (primary sequence number {}, secondary {});",
            system["primary_sequence"], system["secondary_sequence"]
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "            registry hive SOFTWARE: clean (sequence number {})\n",
            software["primary_sequence"]
        )),
        "{text}"
    );
}

#[test]
fn missing_and_cut_hives_are_notes_not_failures() {
    let test = "missing_and_cut_hives_are_notes_not_failures";
    let scratch = Scratch::new("inspect-hives-broken");
    let Some(dir) = hive_volumes(&scratch, test) else {
        return;
    };
    let image = dir.join("win-hives-broken.raw");
    // ntfs-3g sees the layout the test is about: SOFTWARE cut to 8 KiB, no SYSTEM.
    let software = run_ok(
        "ntfscat",
        [
            image.as_os_str(),
            "/Windows/System32/config/SOFTWARE".as_ref(),
        ],
    );
    assert_eq!(software.len(), 8192);
    let system = run(
        "ntfscat",
        [
            image.as_os_str(),
            "/Windows/System32/config/SYSTEM".as_ref(),
        ],
    );
    assert_ne!(system.code, 0, "ntfscat found a SYSTEM hive");

    let out = kaifuku(["inspect".as_ref(), "--json".as_ref(), image.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.both());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "matches");
    let registry = &only_volume(&report)["registry"];
    assert_eq!(registry["system"]["state"]["code"], "missing");
    let state = &registry["software"]["state"];
    assert_eq!(state["code"], "damaged");
    assert_eq!(state["error"]["code"], "truncated");
    assert_eq!(state["error"]["file_size"], 8192);
    let header_bins = u32::from_le_bytes(software[40..44].try_into().unwrap());
    assert_eq!(state["error"]["hive_bins_size"], header_bins);
    assert_eq!(registry["windows_version"]["code"], "no_software_hive");

    // A fix is not held back by the hives: it plans and verifies as on any volume.
    let fixed = scratch.path("fixed.raw");
    let fix = kaifuku([
        "fix".as_ref(),
        "-o".as_ref(),
        fixed.as_os_str(),
        image.as_os_str(),
    ]);
    assert_eq!(fix.code, 0, "{}", fix.both());
}

/// On the fixtures' Windows volumes `SOFTWARE` is absent and `SYSTEM` is 1 MiB of noise behind a
/// `regf` signature: judged by `ntfscat` (what is there), by this test's own XOR of the header
/// and by `hivexget`, which refuses the file as well.
#[test]
fn fixture_volumes_without_real_hives_say_so() {
    let scratch = Scratch::new("inspect-hives-fixture");
    let image = common::fixtures().join("gpt-win.raw");
    let out = kaifuku(["inspect".as_ref(), "--json".as_ref(), image.as_os_str()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let volumes = report["volumes"].as_array().unwrap();
    let windows: Vec<&Value> = volumes
        .iter()
        .filter(|v| v["ntfs"]["windows"] == true)
        .collect();
    assert_eq!(windows.len(), 1);
    let v = windows[0];
    // The Windows volume alone, extracted for ntfs-3g's tools.
    let volume = scratch.path("windows.vol");
    common::extract(
        &image,
        v["offset"].as_u64().unwrap(),
        v["size"].as_u64().unwrap(),
        &volume,
    );
    let software = run(
        "ntfscat",
        [
            volume.as_os_str(),
            "/Windows/System32/config/SOFTWARE".as_ref(),
        ],
    );
    assert_ne!(software.code, 0, "ntfscat found a SOFTWARE hive");
    assert_eq!(v["registry"]["software"]["state"]["code"], "missing", "{v}");
    assert_eq!(
        v["registry"]["windows_version"]["code"], "no_software_hive",
        "{v}"
    );

    let system = run_ok(
        "ntfscat",
        [
            volume.as_os_str(),
            "/Windows/System32/config/SYSTEM".as_ref(),
        ],
    );
    assert_eq!(&system[..4], b"regf");
    let computed = system[..508]
        .chunks_exact(4)
        .fold(0u32, |a, w| a ^ u32::from_le_bytes(w.try_into().unwrap()));
    let stored = u32::from_le_bytes(system[508..512].try_into().unwrap());
    assert_ne!(computed, stored);
    let file = scratch.path("SYSTEM");
    std::fs::write(&file, &system).unwrap();
    let hivex = run("hivexget", [file.as_os_str(), r"\".as_ref()]);
    assert_ne!(
        hivex.code,
        0,
        "hivexget read the noise as a hive: {}",
        hivex.both()
    );
    let state = &v["registry"]["system"]["state"];
    assert_eq!(state["code"], "damaged", "{v}");
    assert_eq!(state["error"]["code"], "bad_checksum", "{v}");
    assert_eq!(state["error"]["stored"], stored);
    assert_eq!(state["error"]["computed"], computed);
    // Other volumes have no registry section.
    for v in volumes {
        if v["ntfs"]["windows"] != true {
            assert!(v.get("registry").is_none(), "{v}");
        }
    }
}
