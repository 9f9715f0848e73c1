//! Rendering the inspect report for a person (text) or a program (JSON).

use kaifuku_io::ReadStats;
use kaifuku_rescue::inspect::{volume_name, InspectReport};
use kaifuku_rescue::Verdict;
use serde::Serialize;
use std::fmt::Write;

#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub image: String,
    /// The data files a VMware descriptor named, read as the disk (in disk order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_files: Vec<String>,
    #[serde(flatten)]
    pub report: &'a InspectReport,
    pub reads: ReadStats,
}

pub use kaifuku_rescue::human::size;

pub fn text(image: &str, r: &InspectReport, reads: ReadStats) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Image       {image}");
    if let Some(c) = &r.container {
        let _ = writeln!(
            o,
            "Container   {}, virtual size {} ({} bytes)",
            c.format,
            size(c.virtual_size),
            c.virtual_size
        );
        if let Some(q) = &c.qcow2 {
            let _ = writeln!(
                o,
                "            qcow2 version {}, cluster {}, {}-bit refcounts{}, {} snapshot(s)",
                q.version,
                size(q.cluster_size),
                q.refcount_bits,
                if q.extended_l2 {
                    ", extended L2 entries"
                } else {
                    ""
                },
                q.snapshots
            );
            if let Some(backing) = &q.backing_file {
                let _ = writeln!(
                    o,
                    "            on backing file {backing}: read through it; a fix changes this \
                     image only"
                );
            }
        }
        if let Some(x) = &c.vhdx {
            let _ = writeln!(
                o,
                "            VHDX {} blocks, {}-byte logical / {}-byte physical sectors, header {} \
                 (sequence {}), log {}",
                size(u64::from(x.block_size)),
                x.logical_sector_size,
                x.physical_sector_size,
                x.current_header,
                x.header_sequence,
                if x.log_empty {
                    "empty".to_string()
                } else {
                    format!(
                        "not empty: {} entries replayed in memory ({} sectors), written out by a fix",
                        x.log_entries_replayed, x.log_sectors_replayed
                    )
                }
            );
            if x.damaged_copy {
                let _ = writeln!(
                    o,
                    "            WARNING: one copy of the VHDX header or region table is damaged; \
                     the other copy is used"
                );
            }
        }
        if let Some(v) = &c.vmdk {
            let _ = writeln!(
                o,
                "            VMDK {} (version {}), grain {}, {} grain table(s){}{}, CID {}",
                v.subformat,
                v.version,
                size(v.grain_size),
                v.grain_tables,
                if v.compressed {
                    ", compressed grains"
                } else {
                    ""
                },
                if v.redundant_grain_directory {
                    ", redundant grain directory"
                } else {
                    ""
                },
                v.cid
            );
            if v.unclean_shutdown {
                let _ = writeln!(
                    o,
                    "            note: the VMDK header says it was not closed cleanly"
                );
            }
        }
    }
    if let Some(t) = &r.partitions {
        let scheme = match t.scheme {
            kaifuku_partition::Scheme::Gpt => "GPT",
            kaifuku_partition::Scheme::Mbr => "MBR",
            kaifuku_partition::Scheme::None => "none (bare volume)",
        };
        let _ = writeln!(o, "Partitions  {scheme}, {}-byte sectors", t.sector_size);
        for n in &t.notes {
            let _ = writeln!(o, "            note: {n}");
        }
        for w in &t.warnings {
            let _ = writeln!(o, "            WARNING: {w}");
        }
        if t.scheme != kaifuku_partition::Scheme::None {
            for p in &t.partitions {
                let _ = writeln!(
                    o,
                    "  #{:<3} start {:>12}  size {:>10}  {}{}",
                    p.number,
                    p.start,
                    size(p.size),
                    p.type_name,
                    p.name
                        .as_ref()
                        .filter(|n| !n.is_empty())
                        .map(|n| format!(" \"{n}\""))
                        .unwrap_or_default()
                );
            }
        }
    }
    for (i, v) in r.volumes.iter().enumerate() {
        let _ = writeln!(o);
        let windows = if r.windows_volumes.contains(&i) {
            "  [Windows]"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "Volume      {} at byte {}: {}{windows}",
            volume_name(v),
            v.offset,
            v.filesystem
        );
        if let Some(b) = &v.bitlocker {
            let _ = writeln!(
                o,
                "            BitLocker {}, unlocked with its {}; the volume below is the decrypted one",
                b.method, b.unlocked_with
            );
        }
        if let Some(n) = &v.ntfs {
            let _ = writeln!(
                o,
                "            NTFS {}, {} ({} bytes), cluster {} B, sector {} B, file record {} B, index record {} B, serial {}",
                n.ntfs_version,
                size(n.size),
                n.size,
                n.cluster_size,
                n.sector_size,
                n.file_record_size,
                n.index_record_size,
                n.serial
            );
            let log = match n.log.state {
                kaifuku_ntfs::LogState::Clean if n.log.empty => "clean (empty)".to_string(),
                s => format!(
                    "{}{}",
                    plain_state(s),
                    n.log
                        .version
                        .as_ref()
                        .map(|v| format!(" (v{v})"))
                        .unwrap_or_default()
                ),
            };
            let hib = if n.hibernation.hibernated {
                "HIBERNATED"
            } else if n.hibernation.hiberfil_present {
                "hiberfil.sys present, not hibernated"
            } else {
                "no hibernation file"
            };
            let _ = writeln!(
                o,
                "            journal {log}; dirty flag {}; {hib}",
                if n.dirty { "SET" } else { "clear" }
            );
        }
        if let Some(j) = &v.journal {
            let _ = writeln!(o, "            journal content: {j}");
            if let kaifuku_rescue::vocabulary::JournalReport::Analysed { journal } = j {
                if let Some(overlap) = &journal.overlap {
                    let _ = writeln!(o, "            journal and fix: {overlap}");
                }
            }
        }
        if let Some(r) = &v.journal_replay {
            let _ = writeln!(o, "            journal replay: {r}");
        }
        if let Some(reg) = &v.registry {
            let _ = writeln!(o, "            Windows {}", reg.windows_version);
            for hive in [&reg.system, &reg.software] {
                let _ = writeln!(o, "            registry hive {}: {}", hive.hive, hive.state);
            }
        }
        if let Some(e) = &v.error {
            let _ = writeln!(
                o,
                "            {}: {e}",
                if v.refused() {
                    "cannot examine"
                } else {
                    "ERROR"
                }
            );
        }
        for b in &v.fix_blockers {
            let _ = writeln!(o, "            fix blocked: {b}");
        }
        for skipped in &v.skipped_rules {
            let _ = writeln!(o, "            rule skipped: {skipped}");
        }
        // Each rule that ran here, the primary first; a set of one reads as it always did.
        for rule in v.results() {
            let of = r.rules.get(rule.rule_index).unwrap_or(&r.rule);
            if !rule.directory_exists {
                let _ = writeln!(o, "            {} does not exist", of.directory);
            } else if rule.matches.is_empty() {
                let _ = writeln!(
                    o,
                    "            no file matches {} in {}",
                    of.pattern, of.directory
                );
            }
            for n in &rule.notices {
                let _ = writeln!(o, "            note: {n}");
            }
            for m in &rule.matches {
                let verdict = verdict_words(of, m.verdict);
                let _ = writeln!(o, "  match     {}", m.path);
                if let Some(d) = &m.file.dos_name {
                    let _ = writeln!(o, "            short name {d}");
                }
                let _ = writeln!(
                    o,
                    "            MFT record {}, {} bytes, created {}, modified {}",
                    m.file.mft_record, m.file.size, m.file.created, m.file.modified
                );
                let header = match m.header_matches {
                    Some(true) => " (the known-bad header)",
                    Some(false) => "",
                    None => "",
                };
                let _ = writeln!(
                    o,
                    "            first bytes {}{header}{}{}{verdict}",
                    if m.file.header_hex.is_empty() {
                        "(empty)"
                    } else {
                        &m.file.header_hex
                    },
                    if m.file.all_zero && m.file.size > 0 {
                        ", ALL ZEROS"
                    } else {
                        ""
                    },
                    if verdict.is_empty() {
                        ""
                    } else {
                        "; verdict: "
                    },
                );
            }
        }
    }
    let _ = writeln!(o);
    for rule in r.rules.iter() {
        let _ = writeln!(o, "Rule        {}: {}", rule.title, rule.target());
    }
    let _ = writeln!(o, "Outcome     {}", r.outcome);
    for reason in &r.reasons {
        let _ = writeln!(o, "            {reason}");
    }
    let _ = writeln!(
        o,
        "Read        {} in {} calls",
        size(reads.bytes),
        reads.calls
    );
    o
}

fn plain_state(s: kaifuku_ntfs::LogState) -> &'static str {
    match s {
        kaifuku_ntfs::LogState::Clean => "clean",
        kaifuku_ntfs::LogState::Unclean => "UNCLEAN",
        kaifuku_ntfs::LogState::V2 => "v2.0",
        kaifuku_ntfs::LogState::Unreadable => "UNREADABLE",
    }
}

/// A match's verdict in words: the built-in rule's times as always; another rule's from its
/// own windows.
fn verdict_words(rule: &kaifuku_rescue::Rule, verdict: Verdict) -> String {
    use kaifuku_ntfs::time::format_utc;
    if rule.id == kaifuku_rescue::RuleId::CrowdStrike20240719 {
        return match verdict {
            Verdict::Faulty => "FAULTY version (04:09 UTC)",
            Verdict::Fixed => "fixed version (05:27 UTC or later)",
            Verdict::Unknown => "unknown version",
            Verdict::NotApplicable => "",
        }
        .to_string();
    }
    match (verdict, rule.faulty_modified, rule.fixed_modified_from) {
        (Verdict::Faulty, Some((from, to)), _) => format!(
            "FAULTY version (modified {} to {})",
            format_utc(from),
            format_utc(to)
        ),
        (Verdict::Fixed, _, Some(from)) => {
            format!("fixed version (modified {} or later)", format_utc(from))
        }
        (Verdict::NotApplicable, _, _) => String::new(),
        _ => "unknown version".to_string(),
    }
}
