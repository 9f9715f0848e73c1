//! A user's rule file in the page's session, natively: the rule file's text is parsed as the page
//! parses it, travels to the worker as the page sends it, and the worker's session inspects,
//! plans and verifies with it. The image is made by `tests/make-user-rule-fixture.py` (ntfs-3g
//! writes the vendor's files on a copy of gpt-win.raw and `touch` stamps them); what inspect finds
//! must be what ntfs-3g wrote, and the download's bytes must equal `kaifuku fix --rule FILE`'s
//! output. Skipped, by name, when the script cannot run (root, FUSE, ntfs-3g).
#![cfg(not(target_arch = "wasm32"))]

use kaifuku_io::ReadAt;
use kaifuku_rescue::rule_file;
use kaifuku_rescue::{Verdict, VolumeKeys};
use kaifuku_web::i18n::{Lang, T};
use kaifuku_web::protocol::RuleChoice;
use kaifuku_web::session::{OutPiece, Session};
use kaifuku_web::view::Reads;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/out/fixtures"));
    assert!(
        dir.join("gpt-win.raw").exists(),
        "no fixtures in {}: run `python3 tests/make-fixtures.py {}` (test.sh does)",
        dir.display(),
        dir.display()
    );
    dir
}

/// The image and rule file the script makes, or `None` (said) when it cannot run here.
fn user_rule_image(test: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kaifuku-web-rules-{}", std::process::id()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/make-user-rule-fixture.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(fixtures())
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
        _ => panic!("make-user-rule-fixture.py failed:\n{text}"),
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

#[test]
fn a_rule_file_inspects_plans_and_fixes_as_the_cli_does() {
    let test = "a_rule_file_inspects_plans_and_fixes_as_the_cli_does";
    let Some(dir) = user_rule_image(test) else {
        return;
    };
    let image = dir.join("contoso.raw");
    let rule_text = std::fs::read_to_string(dir.join("contoso.toml")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();

    // What the page does with the file's text, and what the worker receives.
    let parsed = rule_file::parse(&rule_text).unwrap();
    let choice = RuleChoice::of_file(&parsed);
    let sent: RuleChoice = serde_json::from_str(&serde_json::to_string(&choice).unwrap()).unwrap();
    let rules = sent.rule_set().unwrap();
    assert_eq!(rules.len(), 1, "no include: the file's rule alone");

    let f = File::open(&image).unwrap();
    let size = f.metadata().unwrap().len();
    let mut s = Session::with_rules(Source(f, size), "contoso.raw", VolumeKeys::none(), rules);
    let view = s.inspect(reads);
    assert!(view.can_fix, "{:?}", view.problems);
    assert_eq!(view.rules.len(), 1);
    assert_eq!(view.rules[0].key, "contoso-agent-2025-03-02");
    let (ja, en) = (T(Lang::Ja), T(Lang::En));
    assert_eq!(
        en.rule_title_of(&view.rules[0]),
        "Contoso agent channel file 42 (2025-03-02)"
    );
    assert_eq!(
        ja.rule_title_of(&view.rules[0]),
        "Contoso エージェントのチャネルファイル 42(2025-03-02)"
    );

    // Inspect finds what ntfs-3g wrote: the two matches (not CH-0041.bin, not the CrowdStrike
    // channel file), judged by the times `stat` read on the mount and the header written.
    let found: Vec<(String, u64, Verdict, Option<bool>)> = view
        .volumes
        .iter()
        .flat_map(|v| v.matches.iter())
        .map(|m| (m.path.clone(), m.size, m.verdict, m.header_known_bad))
        .collect();
    let wanted: Vec<(String, u64, Verdict, Option<bool>)> = expected["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap().to_string(),
                m["size"].as_u64().unwrap(),
                serde_json::from_value(m["verdict"].clone()).unwrap(),
                m["header_matches"].as_bool(),
            )
        })
        .collect();
    assert_eq!(found, wanted);
    let m = &view
        .volumes
        .iter()
        .flat_map(|v| v.matches.iter())
        .next()
        .unwrap();
    assert_eq!(
        en.verdict_of(view.rules.get(m.rule), m.verdict),
        "faulty version (modified 2025-03-02 04:09:00 to 2025-03-02 04:10:00 UTC)"
    );

    // The plan deletes exactly those two files; the download is the CLI's output, byte for byte.
    let plan = s.plan(false, None, reads).unwrap();
    let mut planned: Vec<&str> = plan.deletions.iter().map(|d| d.path.as_str()).collect();
    planned.sort();
    let mut wanted_paths: Vec<&str> = wanted.iter().map(|w| w.0.as_str()).collect();
    wanted_paths.sort();
    assert_eq!(planned, wanted_paths);
    assert!(plan.deletions.iter().all(|d| d.rule == 0));
    s.verify().unwrap();
    let file = File::open(&image).unwrap();
    let mut page = Vec::new();
    for p in s.image_pieces().unwrap() {
        match p {
            OutPiece::Original { start, end } => {
                let mut b = vec![0u8; (end - start) as usize];
                file.read_exact_at(&mut b, start).unwrap();
                page.extend_from_slice(&b);
            }
            OutPiece::Bytes(b) => page.extend_from_slice(b),
            OutPiece::Fill { byte, len } => page.resize(page.len() + len as usize, byte),
        }
    }
    let cli_out = dir.join("cli-fixed.raw");
    let r = Command::new(kaifuku_cli())
        .arg("fix")
        .arg("--rule")
        .arg(dir.join("contoso.toml"))
        .arg(&image)
        .arg("-o")
        .arg(&cli_out)
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(0),
        "kaifuku fix --rule: {}{}",
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
    assert_ne!(
        page,
        std::fs::read(&image).unwrap(),
        "the fix changed the image"
    );
    std::fs::remove_dir_all(&dir).ok();
}
