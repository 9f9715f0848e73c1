//! The worker's session logic, natively, on the generated fixture images: the views the page
//! shows agree with the answers independent tools wrote next to each image, the fix verifies,
//! and the download's parts hold the right bytes. (The browser tests run the same code in
//! Chromium; this catches view mistakes quickly.)
#![cfg(not(target_arch = "wasm32"))]

use kaifuku_io::ReadAt;
use kaifuku_rescue::undo::{self, Piece, UndoEntry};
use kaifuku_rescue::vocabulary::Reason;
use kaifuku_rescue::Outcome;
use kaifuku_web::i18n::{Lang, T};
use kaifuku_web::session::{OutPiece, Session};
use kaifuku_web::view::{code, CheckView, Problem, Reads};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

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

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("KAIFUKU_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/out/fixtures"));
    assert!(
        dir.join("manifest.json").exists(),
        "no fixtures in {}: run `python3 tests/make-fixtures.py {}` (test.sh does)",
        dir.display(),
        dir.display()
    );
    Some(dir)
}

fn open(path: &Path) -> Session<Source> {
    let f = File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    Session::new(
        Source(f, size),
        &path.file_name().unwrap().to_string_lossy(),
    )
}

fn reads(s: kaifuku_io::ReadStats) -> Reads {
    Reads {
        calls: s.calls,
        bytes: s.bytes,
        ms: 0.0,
    }
}

#[test]
fn views_agree_with_the_fixture_answers_and_fixes_verify() {
    let Some(dir) = fixtures() else { return };
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut checked = 0;
    for fx in manifest["fixtures"].as_array().unwrap() {
        if fx["kind"] != "good" {
            continue;
        }
        let name = fx["name"].as_str().unwrap();
        let path = dir.join(name);
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(fx["expected"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let mut s = open(&path);
        let v = s.inspect(reads);
        assert_eq!(v.file_name, name);
        let c = v.container.as_ref().unwrap();
        assert_eq!(
            c.virtual_size,
            expected["virtual_size"].as_u64().unwrap(),
            "{name}"
        );
        let want_matches: usize = expected["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|vol| vol["matches"].as_array().map_or(0, |m| m.len()))
            .sum();
        assert_eq!(v.match_count(), want_matches, "{name}: matches");
        let p = v.partitions.as_ref().unwrap();
        assert_eq!(
            code(serde_json::to_value(p.scheme)),
            expected["scheme"].as_str().unwrap_or("none"),
            "{name}"
        );
        if want_matches == 0 {
            assert_eq!(v.outcome, Outcome::NothingToFix, "{name}");
            assert!(!v.can_fix);
            assert!(v.problems.iter().any(|p| matches!(
                &p.problem,
                Problem::Reason {
                    reason: Reason::NoMatch { .. }
                        | Reason::DirectoryMissing { .. }
                        | Reason::NoWindowsVolume
                }
            )));
            continue;
        }
        assert!(v.can_fix && !v.needs_consent, "{name}: {:?}", v.problems);
        // Every match the tools found is shown with their times and header.
        for vol in expected["volumes"].as_array().unwrap() {
            for m in vol["matches"].as_array().into_iter().flatten() {
                let shown = v
                    .volumes
                    .iter()
                    .flat_map(|x| x.matches.iter())
                    .find(|x| x.mft_record == m["mft_record"].as_u64().unwrap())
                    .unwrap_or_else(|| panic!("{name}: {m} not shown"));
                assert_eq!(shown.size, m["size"].as_u64().unwrap(), "{name}");
                if let Some(h) = m["header_hex"].as_str() {
                    assert_eq!(shown.header_hex, h, "{name}");
                }
                assert_eq!(shown.created, m["created"].as_str().unwrap(), "{name}");
                assert_eq!(shown.modified, m["modified"].as_str().unwrap(), "{name}");
                assert_eq!(shown.all_zero, m["all_zero"].as_bool().unwrap(), "{name}");
            }
        }
        let plan = s.plan(false, None, reads).unwrap();
        assert_eq!(plan.deletions.len(), want_matches, "{name}");
        assert_eq!(plan.matches_after, 0);
        // Every structure the plan names is said in Japanese words (the wording is an exhaustive
        // match over the typed names; this checks that real plans reach Japanese, not English).
        let (ja, en) = (T(Lang::Ja), T(Lang::En));
        for r in &plan.patches {
            assert_ne!(
                ja.structure(&r.label),
                en.structure(&r.label),
                "{name}: {:?}",
                r.label
            );
        }
        for r in &plan.file_writes {
            assert_ne!(
                ja.file_write(&r.label),
                en.file_write(&r.label),
                "{name}: {:?}",
                r.label
            );
        }
        let checks = s.verify().unwrap();
        assert!(checks
            .iter()
            .any(|c| matches!(c, CheckView::RuleFinds { count: 0, .. })));
        assert!(checks
            .iter()
            .all(|c| !matches!(c, CheckView::Invariants { problems, .. } if *problems > 0)));

        // The download's parts: the input's size unless the fix stores data anew after its end
        // (a compressed qcow2), and the undo file's originals are the input's bytes (resolved
        // here as the browser's Blob slices would be).
        let file = File::open(&path).unwrap();
        let pieces = s.image_pieces().unwrap();
        let total: u64 = pieces.iter().map(OutPiece::len).sum();
        assert_eq!(total, s.output_size(), "{name}");
        assert_eq!(
            s.output_size() > s.file_size(),
            name.contains("compressed"),
            "{name}"
        );
        // What the fix adds after the input's end comes from planned bytes only; the undo file
        // carries its size and hash.
        let growth = (s.output_size() > s.file_size()).then(|| {
            let mut hash = undo::fnv1a_start();
            let mut at = 0;
            for piece in &pieces {
                let end = at + piece.len();
                if end > s.file_size() {
                    let OutPiece::Bytes(b) = piece else {
                        panic!("{name}: bytes after the input's end that the plan does not give")
                    };
                    hash = undo::fnv1a_more(hash, &b[s.file_size().saturating_sub(at) as usize..]);
                }
                at = end;
            }
            undo::Growth {
                fixed_size: s.output_size(),
                added_hash: hash,
            }
        });
        let mut undo_bytes = Vec::new();
        let mut entries = Vec::new();
        let parts = s.undo_pieces().unwrap();
        for (i, p) in parts.iter().enumerate() {
            match p {
                Piece::Bytes(b) => undo_bytes.extend_from_slice(b),
                Piece::Original { offset, len } => {
                    let mut orig = vec![0u8; *len as usize];
                    file.read_exact_at(&mut orig, *offset).unwrap();
                    undo_bytes.extend_from_slice(&orig);
                    let Piece::Bytes(h) = &parts[i - 1] else {
                        panic!()
                    };
                    let hash = u64::from_le_bytes(h[h.len() - 8..].try_into().unwrap());
                    entries.push(UndoEntry {
                        offset: *offset,
                        original: orig,
                        new_hash: hash,
                    });
                }
            }
        }
        // The undo file names the picked image: its size, container kind and virtual size.
        let info = kaifuku_container::open(Source(File::open(&path).unwrap(), s.file_size()))
            .unwrap()
            .info();
        let id = undo::Identity::of(&info);
        assert_eq!(id.file_size, s.file_size(), "{name}");
        assert_eq!(
            undo_bytes,
            undo::encode_grown(&id, growth, &entries),
            "{name}"
        );
        assert_eq!(undo_bytes.len() as u64, s.undo_size());
        assert_eq!(undo::decode(&undo_bytes).unwrap(), (id, entries), "{name}");
        let report: serde_json::Value =
            serde_json::from_str(&s.report_json(serde_json::json!({}))).unwrap();
        assert_eq!(report["image"], name);
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures with matches");
}

/// "Show the bytes" in the worker's session: the plan the page made is the one shown (not a
/// second one), its patches carry their before and after bytes as in the image file, and what
/// the session shows equals `kaifuku_rescue::explain` of the same image; the view reads back what
/// it serialises (as it crosses from the worker to the page).
#[test]
fn the_structures_shown_are_the_planned_fix_and_cross_to_the_page() {
    let Some(dir) = fixtures() else { return };
    let path = dir.join("gpt-win.raw");
    let mut s = open(&path);
    s.inspect(reads);
    let plan = s.plan(false, None, reads).unwrap();
    let view = s.explain();
    assert!(!view.patches.is_empty());
    assert_eq!(view.patches.len(), plan.patches.len());
    let f = File::open(&path).unwrap();
    for p in &view.patches {
        let mut before = vec![0u8; p.before.len()];
        f.read_exact_at(&mut before, p.disk_offset).unwrap();
        assert_eq!(before, p.before, "raw image: disk offsets are file offsets");
        assert_ne!(p.before, p.after);
    }
    let size = f.metadata().unwrap().len();
    let direct = kaifuku_rescue::explain(
        Source(File::open(&path).unwrap(), size),
        kaifuku_rescue::Rule::crowdstrike_2024_07_19(),
        &kaifuku_rescue::FixOptions::default(),
    );
    assert_eq!(view.structures, direct.structures);
    assert_eq!(view.patches, direct.patches);
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(
        serde_json::from_value::<kaifuku_web::view::ExplainView>(json).unwrap(),
        view
    );
}
