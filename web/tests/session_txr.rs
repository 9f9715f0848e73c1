//! The registry transaction logs in the page's session, natively, on the Windows volumes of
//! `tests/make-hive-fixtures.py` (hives written by hivex, files by ntfs-3g, `config\TxR`
//! populated like Windows'): with the page's checkbox the plan lists the channel file and every
//! TxR file `ntfsls` lists, each with its rule's title in both languages, and the download's bytes
//! equal `kaifuku fix --txr-logs`'s output; ticking the checkbox on an image already planned drops
//! the old plan (it can no longer be downloaded); on a build-9600 volume both rules are skipped
//! with the reason, worded in both languages. Skipped, by name, when the script cannot run (root,
//! FUSE, ntfs-3g, hivex).
#![cfg(not(target_arch = "wasm32"))]

use kaifuku_io::ReadAt;
use kaifuku_rescue::vocabulary::RuleSkip;
use kaifuku_rescue::{VolumeKeys, TXR_MIN_WINDOWS_BUILD};
use kaifuku_web::i18n::{Lang, T};
use kaifuku_web::protocol::RuleChoice;
use kaifuku_web::session::{OutPiece, Session};
use kaifuku_web::view::{InspectView, Reads};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const TXR_DIR: &str = "/Windows/System32/config/TxR";
const CHANNEL_DIR: &str = "/Windows/System32/drivers/CrowdStrike";

struct Source(File, u64);

impl ReadAt for Source {
    fn size(&self) -> u64 {
        self.1
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        kaifuku_io::check_range(offset, buf.len(), self.1)?;
        self.0.read_exact_at(buf, offset)
    }
}

fn reads(s: kaifuku_io::ReadStats) -> Reads {
    Reads {
        calls: s.calls,
        bytes: s.bytes,
        ms: 0.0,
    }
}

fn hive_volumes(test: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kaifuku-web-txr-{}-{test}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/make-hive-fixtures.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Some(dir),
        Some(77) => {
            eprintln!("SKIPPED {test}: {}", text.trim());
            None
        }
        _ => panic!("make-hive-fixtures.py failed:\n{text}"),
    }
}

/// The command line built next to this crate (test.sh builds it before the browser tests).
fn kaifuku_cli() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("kaifuku"))
        .find(|p| p.exists())
        .expect("no kaifuku binary: run `cargo build --release -p kaifuku-cli` first")
}

/// The files of `dir` on the bare volume `image` as ntfs-3g's `ntfsls` lists them, as
/// backslashed paths from the volume root.
fn ntfsls(image: &Path, dir: &str) -> Vec<String> {
    let out = Command::new("ntfsls")
        .arg("-p")
        .arg(dir)
        .arg(image)
        .output()
        .unwrap();
    assert!(out.status.success(), "ntfsls {dir}: {out:?}");
    let mut paths: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .map(|n| format!("{dir}/{n}").replace('/', "\\"))
        .collect();
    paths.sort();
    paths
}

/// The channel files ntfsls lists (the rule's `C-00000291*.sys`; the agent's other files stay).
fn channel_files(image: &Path) -> Vec<String> {
    ntfsls(image, CHANNEL_DIR)
        .into_iter()
        .filter(|p| {
            let name = p.rsplit('\\').next().unwrap();
            name.starts_with("C-00000291") && name.ends_with(".sys")
        })
        .collect()
}

fn session(image: &Path, rules: &RuleChoice) -> Session<Source> {
    // What the page sends is what the worker receives and turns into a rule set.
    let sent: RuleChoice = serde_json::from_str(&serde_json::to_string(rules).unwrap()).unwrap();
    let f = File::open(image).unwrap();
    let size = f.metadata().unwrap().len();
    let name = image.file_name().unwrap().to_str().unwrap();
    Session::with_rules(
        Source(f, size),
        name,
        VolumeKeys::none(),
        sent.rule_set().unwrap(),
    )
}

/// The download's bytes: the picked file with the plan's writes laid over it.
fn download(s: &Session<Source>, image: &Path) -> Vec<u8> {
    let file = File::open(image).unwrap();
    let mut bytes = Vec::new();
    for p in s.image_pieces().expect("a plan") {
        match p {
            OutPiece::Original { start, end } => {
                let mut b = vec![0u8; (end - start) as usize];
                file.read_exact_at(&mut b, start).unwrap();
                bytes.extend_from_slice(&b);
            }
            OutPiece::Bytes(b) => bytes.extend_from_slice(b),
            OutPiece::Fill { byte, len } => bytes.resize(bytes.len() + len as usize, byte),
        }
    }
    bytes
}

fn build_of(view: &InspectView) -> Option<u32> {
    view.volumes[0].registry.as_ref().and_then(|r| r.build())
}

#[test]
fn the_checkbox_deletes_the_txr_logs_as_the_cli_does() {
    let test = "the_checkbox_deletes_the_txr_logs_as_the_cli_does";
    let Some(dir) = hive_volumes(test) else {
        return;
    };
    let image = dir.join("win-hives.raw");
    let channel = channel_files(&image);
    let txr = ntfsls(&image, TXR_DIR);
    assert_eq!(channel.len(), 1, "{channel:?}");
    assert!(
        txr.iter().any(|p| p.ends_with(".TxR.blf"))
            && txr.iter().any(|p| p.ends_with(".regtrans-ms")),
        "{txr:?}"
    );

    // The checkbox is off: the channel file alone is planned.
    let mut s = session(&image, &RuleChoice::default());
    let view = s.inspect(reads);
    assert!(build_of(&view).is_some_and(|b| b >= TXR_MIN_WINDOWS_BUILD));
    assert!(view.volumes[0].skipped_rules.is_empty());
    let plan = s.plan(false, None, reads).unwrap();
    let planned: Vec<&str> = plan.deletions.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(planned, channel);
    assert!(s.image_pieces().is_some());

    // Ticked in the report: the worker sets the new rules. The old plan is gone, so its image
    // can never be downloaded, and the new report plans the transaction logs too.
    let ticked = RuleChoice {
        txr_logs: true,
        ..RuleChoice::default()
    };
    s.set_rules(ticked.rule_set().unwrap());
    assert!(s.image_pieces().is_none(), "the old plan is still offered");
    assert!(
        s.explain_fixed().is_none(),
        "the old plan is still explained"
    );
    let view = s.inspect(reads);
    assert!(view.volumes[0].skipped_rules.is_empty());
    let keys: Vec<&str> = view.rules.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "crowdstrike-2024-07-19",
            "registry-txr-containers",
            "registry-txr-log"
        ]
    );
    let plan = s.plan(false, None, reads).unwrap();
    let mut planned: Vec<String> = plan.deletions.iter().map(|d| d.path.clone()).collect();
    planned.sort();
    let mut wanted: Vec<String> = channel.iter().chain(&txr).cloned().collect();
    wanted.sort();
    assert_eq!(planned, wanted);
    // Each deletion names its rule, titled in both languages.
    let (ja, en) = (T(Lang::Ja), T(Lang::En));
    for d in &plan.deletions {
        let rule = &view.rules[d.rule];
        let (key, title_en, title_ja) = if d.path.ends_with(".TxR.blf") {
            (
                "registry-txr-log",
                "registry transaction log",
                "レジストリのトランザクションログ",
            )
        } else if d.path.ends_with(".regtrans-ms") {
            (
                "registry-txr-containers",
                "registry transaction-log containers",
                "レジストリのトランザクションログのコンテナー",
            )
        } else {
            (
                "crowdstrike-2024-07-19",
                "CrowdStrike channel file 291 (2024-07-19)",
                "CrowdStrike チャネルファイル 291(2024年7月19日)",
            )
        };
        assert_eq!(rule.key, key, "{}", d.path);
        assert_eq!(en.rule_title_of(rule), title_en);
        assert_eq!(ja.rule_title_of(rule), title_ja);
    }

    // The download is `kaifuku fix --txr-logs`'s output, byte for byte.
    s.verify().unwrap();
    let page = download(&s, &image);
    let cli_out = dir.join("cli-fixed.raw");
    let r = Command::new(kaifuku_cli())
        .arg("fix")
        .arg("--txr-logs")
        .arg(&image)
        .arg("-o")
        .arg(&cli_out)
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(0),
        "kaifuku fix --txr-logs: {}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    let cli_bytes = std::fs::read(&cli_out).unwrap();
    assert_eq!(page.len(), cli_bytes.len());
    let first_diff = page.iter().zip(&cli_bytes).position(|(a, b)| a != b);
    assert_eq!(
        first_diff, None,
        "the page's download differs from the CLI's output"
    );
    std::fs::write(dir.join("page-fixed.raw"), &page).unwrap();
    assert!(
        ntfsls(&dir.join("page-fixed.raw"), TXR_DIR).is_empty(),
        "config\\TxR is not empty after the fix"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn build_9600_skips_the_txr_rules_with_the_reason() {
    let test = "build_9600_skips_the_txr_rules_with_the_reason";
    let Some(dir) = hive_volumes(test) else {
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    // hivexget's reading of the hive the script put on this volume.
    let build: u32 = expected["SOFTWARE-9600"]["CurrentBuildNumber"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(build, 9600);
    let image = dir.join("win-hives-9600.raw");
    let channel = channel_files(&image);
    let ticked = RuleChoice {
        txr_logs: true,
        ..RuleChoice::default()
    };
    let mut s = session(&image, &ticked);
    let view = s.inspect(reads);

    // What the worker sends is what the page reads back.
    let back: InspectView = serde_json::from_str(&serde_json::to_string(&view).unwrap()).unwrap();
    assert_eq!(back, view);

    assert_eq!(build_of(&view), Some(build));
    let mut skipped: Vec<(&str, &RuleSkip)> = view.volumes[0]
        .skipped_rules
        .iter()
        .map(|s| (s.rule_id.as_str(), &s.why))
        .collect();
    skipped.sort_by_key(|s| s.0);
    let why = RuleSkip::BuildBelow {
        build,
        needs: TXR_MIN_WINDOWS_BUILD,
    };
    assert_eq!(
        skipped,
        [
            ("registry-txr-containers", &why),
            ("registry-txr-log", &why)
        ]
    );
    let (ja, en) = (T(Lang::Ja), T(Lang::En));
    assert_eq!(
        en.rule_skipped("registry transaction log", &why),
        "registry transaction log: not run. Windows build 9600 is older than build 14393, the \
         first this rule is for; nothing of it is deleted."
    );
    assert_eq!(
        ja.rule_skipped("レジストリのトランザクションログ", &why),
        "レジストリのトランザクションログ: 実行しません。Windows のビルド 9600 は、このルールの\
         対象のビルド 14393 より前です。このルールでは何も削除しません。"
    );

    // Only the channel file is planned: the transaction logs stay.
    let plan = s.plan(false, None, reads).unwrap();
    let planned: Vec<&str> = plan.deletions.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(planned, channel);
    std::fs::remove_dir_all(&dir).ok();
}
