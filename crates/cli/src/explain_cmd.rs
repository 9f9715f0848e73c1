//! `kaifuku explain`: the structures behind an inspection and a plan, as annotated hex, for
//! training and for checking kaifuku's reading in a hex viewer. Changes nothing.

use crate::exit::Exit;
use crate::report::size;
use crate::source::FileSource;
use kaifuku_io::{BlockCache, CacheConfig, Counted};
use kaifuku_rescue::explain::{explain, Explanation, FieldValue, PatchView, StructureView};
use kaifuku_rescue::{FixOptions, RuleSet, Verdict};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

#[derive(Serialize)]
struct JsonExplanation<'a> {
    image: String,
    #[serde(flatten)]
    explanation: &'a Explanation,
}

pub fn run(image: &Path, rule: &RuleSet, options: &FixOptions, json: bool) -> Exit {
    let source = match FileSource::open(image) {
        Ok(s) => s,
        Err(e) => return crate::source::open_failed(image, &e),
    };
    let counted = Counted::new(source);
    let cache = BlockCache::new(&counted, CacheConfig::default());
    let explanation = explain(&cache, rule, options);
    let shown = image.display().to_string();
    let out = if json {
        let doc = JsonExplanation {
            image: shown,
            explanation: &explanation,
        };
        serde_json::to_string_pretty(&doc).expect("explanation serialises") + "\n"
    } else {
        text(&shown, &explanation)
    };
    if let Err(e) = crate::stdio::out(&out) {
        crate::stdio::stdout_failed(&e, "the explanation is incomplete");
        return Exit::Error;
    }
    Exit::of_inspect(explanation.outcome)
}

/// Hex lines of 16 bytes, each with its disk offset; a run of all-zero lines is shown as `*`.
fn hex_dump(o: &mut String, disk_offset: u64, bytes: &[u8]) {
    let mut zeros_skipped = false;
    for (i, line) in bytes.chunks(16).enumerate() {
        let zero = line.iter().all(|&b| b == 0);
        if zero && i > 0 && i * 16 + 16 < bytes.len() {
            if !zeros_skipped {
                let _ = writeln!(o, "    *");
                zeros_skipped = true;
            }
            continue;
        }
        zeros_skipped = false;
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = line
            .iter()
            .map(|&c| {
                if c.is_ascii_graphic() || c == b' ' {
                    c as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(
            o,
            "    {:012x}  {:<47}  |{text}|",
            disk_offset + (i * 16) as u64,
            hex.join(" ")
        );
    }
}

fn structure(o: &mut String, s: &StructureView) {
    let _ = writeln!(
        o,
        "\n== {} at disk byte {} ({} bytes)",
        s.what,
        s.disk_offset,
        s.bytes.len()
    );
    hex_dump(o, s.disk_offset, &s.bytes);
    for f in &s.fields {
        let value = match &f.value {
            FieldValue::Opaque => String::new(),
            v => format!(": {v}"),
        };
        let _ = writeln!(
            o,
            "    +{:#06x} {:>4} B  {}{value}",
            f.offset, f.len, f.name
        );
    }
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Faulty => "faulty version (04:09 UTC)",
        Verdict::Fixed => "fixed version (05:27 UTC or later)",
        Verdict::Unknown => "neither known version",
        Verdict::NotApplicable => "no versions known for this rule",
    }
}

fn patch(o: &mut String, p: &PatchView) {
    let _ = writeln!(o, "\n== {} at disk byte {}", p.label, p.disk_offset);
    if let Some((byte, len)) = p.fill {
        let _ = writeln!(
            o,
            "    filled with {byte:#04x}, {} ({len} bytes)",
            size(len)
        );
        return;
    }
    let hex = |b: &[u8]| -> String {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (i, (before, after)) in p.before.chunks(16).zip(p.after.chunks(16)).enumerate() {
        let at = p.disk_offset + (i * 16) as u64;
        let _ = writeln!(o, "    {at:012x}  before  {}", hex(before));
        let _ = writeln!(o, "    {at:012x}  after   {}", hex(after));
    }
    for c in &p.changed {
        let field = c
            .field
            .map(|f| f.to_string())
            .unwrap_or_else(|| "(no named field)".to_string());
        let _ = writeln!(
            o,
            "    changed +{:#x}, {} byte(s): {field}",
            c.offset, c.len
        );
        for b in &c.bits {
            let _ = writeln!(
                o,
                "      bit {} {}",
                b.bit,
                if b.set_after { "set" } else { "cleared" }
            );
        }
    }
}

pub fn text(image: &str, e: &Explanation) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Image       {image}");
    if let Some(c) = &e.container {
        let _ = writeln!(
            o,
            "Container   {}, virtual size {} ({} bytes)",
            c.format,
            size(c.virtual_size),
            c.virtual_size
        );
    }
    if !e.partitions.is_empty() {
        let _ = writeln!(o, "Partitions");
    }
    for p in &e.partitions {
        let _ = writeln!(
            o,
            "  #{:<3} start {:>12} (sector {}), {} bytes (sectors {}..={}), {}, {}{}",
            p.number,
            p.start,
            p.first_lba,
            p.size,
            p.first_lba,
            p.last_lba,
            p.type_name,
            p.filesystem,
            if p.windows {
                "  [Windows: NTFS holding \\Windows\\System32]"
            } else {
                ""
            }
        );
    }
    for s in &e.structures {
        structure(&mut o, s);
    }
    if !e.targets.is_empty() {
        let _ = writeln!(o, "\nMatched files");
    }
    for t in &e.targets {
        let _ = writeln!(
            o,
            "  {}: MFT record {}, sequence {}, {} link(s){}, modified {} → {}{}",
            t.path,
            t.record,
            t.sequence,
            t.link_count,
            t.dos_name
                .as_ref()
                .map(|d| format!(", 8.3 name {d}"))
                .unwrap_or_default(),
            t.modified,
            verdict(t.verdict),
            if t.all_zero {
                ", all zeros"
            } else if t.header_matches == Some(true) {
                ", starts with the known-bad header"
            } else {
                ""
            }
        );
    }
    if !e.patches.is_empty() {
        let _ = writeln!(o, "\nThe fix's patches (before and after)");
    }
    for p in &e.patches {
        patch(&mut o, p);
    }
    if let Some(p) = &e.plan_problem {
        let _ = writeln!(o, "\nNo plan: {p}");
    }
    for g in &e.gaps {
        let _ = writeln!(o, "\nNot shown ({:?}): {}", g.reading, g.detail);
    }
    let _ = writeln!(o, "\nOutcome     {}", e.outcome);
    o
}
