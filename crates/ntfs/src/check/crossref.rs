//! Cross-record checks shared by the whole-volume and the targeted checks: attribute lists
//! against extension records, and index entries against the names of the files they point at.

use super::names::{name_hash, NameTable};
use super::record::{describe_attr, AttrFacts, Geometry};
use super::tree::TreeEntry;
use super::{ProblemKind, Problems};
use crate::layout::Namespace;
use crate::volume::AttributeListEntry;
use crate::{AttributeType, FileNameKey, FileRef, NodeId, Volume};
use kaifuku_io::ReadAt;
use std::collections::BTreeMap;

/// An attribute as the attribute-list checks compare it.
#[derive(Debug, Clone)]
pub(super) struct AttrKey {
    pub(super) type_code: u32,
    pub(super) name: Vec<u16>,
    pub(super) lowest_vcn: u64,
    pub(super) highest_vcn: u64,
    pub(super) instance: u16,
    pub(super) non_resident: bool,
    pub(super) allocated_size: u64,
}

impl AttrKey {
    pub(super) fn of(a: &AttrFacts) -> AttrKey {
        AttrKey {
            type_code: a.type_code,
            name: a.name.clone(),
            lowest_vcn: a.lowest_vcn,
            highest_vcn: a.highest_vcn,
            instance: a.instance,
            non_resident: a.non_resident,
            allocated_size: a.allocated_size,
        }
    }

    pub(super) fn matches(&self, e: &AttributeListEntry) -> bool {
        self.type_code == e.type_code
            && self.name == e.name
            && self.instance == e.instance
            && self.lowest_vcn == e.lowest_vcn
    }
}

/// A base record with an `$ATTRIBUTE_LIST`.
#[derive(Debug, Clone)]
pub(super) struct ListInfo {
    pub(super) record: u64,
    pub(super) sequence: u16,
    pub(super) entries: Vec<AttributeListEntry>,
    pub(super) attrs: Vec<AttrKey>,
}

/// An extension record in use.
#[derive(Debug, Clone)]
pub(super) struct ExtInfo {
    pub(super) record: u64,
    pub(super) sequence: u16,
    pub(super) base: FileRef,
    pub(super) attrs: Vec<AttrKey>,
}

/// What the matching of index entries needs to know about a record.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecStatus {
    pub(super) live: bool,
    /// In use but too damaged to read (already reported); its entries are not judged.
    pub(super) damaged: bool,
    pub(super) extension: bool,
    pub(super) sequence: u16,
}

/// Compares an `$ATTRIBUTE_LIST` with the attributes of its base record and extension records
/// (`exts`, sorted by record number); `status` tells whether a record is live.
pub(super) fn cross_check_list(
    list: &ListInfo,
    exts: &[ExtInfo],
    status: &dyn Fn(u64) -> RecStatus,
    geo: &Geometry,
    p: &mut Problems,
) {
    let b = list.record;
    let r = Some(b);
    for e in &list.entries {
        let what = describe_attr(e.type_code, &e.name);
        if e.record.record == b {
            if e.record.sequence != list.sequence {
                p.push(
                    ProblemKind::AttributeList,
                    r,
                    format!("record {b}: $ATTRIBUTE_LIST places {what} in record {b} with sequence {}, not {}", e.record.sequence, list.sequence),
                );
            }
            if !list.attrs.iter().any(|a| a.matches(e)) {
                p.push(
                    ProblemKind::AttributeList,
                    r,
                    format!("record {b}: $ATTRIBUTE_LIST lists {what} (VCN {}, instance {}) in the base record, which does not hold it", e.lowest_vcn, e.instance),
                );
            }
            continue;
        }
        let x = e.record.record;
        match exts.binary_search_by_key(&x, |x| x.record) {
            Err(_) => {
                let s = status(x);
                let why = if !s.live {
                    "not in use"
                } else {
                    "not an extension record"
                };
                p.push(
                    ProblemKind::AttributeList,
                    r,
                    format!(
                        "record {b}: $ATTRIBUTE_LIST places {what} in record {x}, which is {why}"
                    ),
                );
            }
            Ok(i) => {
                let ext = &exts[i];
                if ext.sequence != e.record.sequence {
                    p.push(
                        ProblemKind::AttributeList,
                        r,
                        format!("record {b}: $ATTRIBUTE_LIST refers to record {x} with sequence {}, but it has sequence {}", e.record.sequence, ext.sequence),
                    );
                }
                if ext.base.record != b {
                    p.push(ProblemKind::AttributeList, r, format!("record {b}: $ATTRIBUTE_LIST lists record {x}, an extension of record {}", ext.base.record));
                } else if !ext.attrs.iter().any(|a| a.matches(e)) {
                    p.push(
                        ProblemKind::AttributeList,
                        r,
                        format!("record {b}: $ATTRIBUTE_LIST lists {what} (VCN {}, instance {}) in record {x}, which does not hold it", e.lowest_vcn, e.instance),
                    );
                }
            }
        }
    }
    // Every attribute of the base record (the list itself aside) is listed.
    for a in &list.attrs {
        if a.type_code == AttributeType::AttributeList.code() {
            continue;
        }
        if !list
            .entries
            .iter()
            .any(|e| e.record.record == b && a.matches(e))
        {
            p.push(
                ProblemKind::AttributeList,
                r,
                format!(
                    "record {b}: holds {} (instance {}), which its $ATTRIBUTE_LIST does not list",
                    describe_attr(a.type_code, &a.name),
                    a.instance
                ),
            );
        }
    }
    // The extents of each non-resident attribute follow each other from VCN 0 to its allocation.
    let mut groups: BTreeMap<(u32, Vec<u16>), Vec<AttrKey>> = BTreeMap::new();
    for e in &list.entries {
        let holder = if e.record.record == b {
            Some(&list.attrs)
        } else {
            exts.binary_search_by_key(&e.record.record, |x| x.record)
                .ok()
                .map(|i| &exts[i].attrs)
        };
        if let Some(a) = holder.and_then(|attrs| attrs.iter().find(|a| a.matches(e))) {
            if a.non_resident {
                groups
                    .entry((a.type_code, a.name.clone()))
                    .or_default()
                    .push(a.clone());
            }
        }
    }
    for ((ty, name), mut extents) in groups {
        extents.sort_by_key(|a| a.lowest_vcn);
        let what = describe_attr(ty, &name);
        let mut next = 0u64;
        let mut broken = false;
        for a in &extents {
            if a.lowest_vcn != next {
                p.push(
                    ProblemKind::MappingPairs,
                    r,
                    format!(
                        "record {b}: an extent of {what} starts at VCN {}, expected {next}",
                        a.lowest_vcn
                    ),
                );
                broken = true;
                break;
            }
            next = a.highest_vcn.wrapping_add(1);
        }
        let allocated = extents.first().map_or(0, |a| a.allocated_size);
        if !broken && next.wrapping_mul(geo.cluster_size) != allocated {
            p.push(
                ProblemKind::MappingPairs,
                r,
                format!("record {b}: the extents of {what} end at VCN {next} but its allocated size is {allocated} bytes"),
            );
        }
    }
}

/// Checks that an extension record is listed by its base's attribute list.
pub(super) fn check_extension(
    ext: &ExtInfo,
    list: Option<&ListInfo>,
    base: RecStatus,
    p: &mut Problems,
) {
    let x = ext.record;
    let b = ext.base.record;
    let r = Some(x);
    if !base.live || base.extension {
        p.push(
            ProblemKind::AttributeList,
            r,
            format!("record {x} is an extension of record {b}, which is not a base record in use"),
        );
        return;
    }
    if base.sequence != ext.base.sequence {
        p.push(
            ProblemKind::AttributeList,
            r,
            format!(
                "record {x} names base record {b} with sequence {}, but it has sequence {}",
                ext.base.sequence, base.sequence
            ),
        );
    }
    let Some(list) = list else {
        p.push(
            ProblemKind::AttributeList,
            r,
            format!("record {x} is an extension of record {b}, which has no $ATTRIBUTE_LIST"),
        );
        return;
    };
    for a in &ext.attrs {
        if !list
            .entries
            .iter()
            .any(|e| e.record.record == x && a.matches(e))
        {
            p.push(
                ProblemKind::AttributeList,
                r,
                format!(
                    "record {x}: holds {} (instance {}) of record {b}, whose $ATTRIBUTE_LIST does not list it",
                    describe_attr(a.type_code, &a.name),
                    a.instance
                ),
            );
        }
    }
}

/// Matches one `$I30` entry of directory `dir` against the names of live files.
pub(super) fn match_entry(
    dir: FileRef,
    e: &TreeEntry,
    what: &str,
    status: &dyn Fn(u64) -> RecStatus,
    names: &mut NameTable,
    p: &mut Problems,
) {
    let Some(key) = &e.name else { return };
    let loc = match e.node {
        NodeId::Root => format!("index root of {what}"),
        NodeId::Block(v) => format!("index block VCN {v} of {what}"),
    };
    let t = e.file_ref;
    let shown = format!("\"{}\" ({})", key.name_string(), key.namespace.name());
    let r = Some(dir.record);
    let s = status(t.record);
    if s.damaged {
        return;
    }
    if !s.live {
        p.push(
            ProblemKind::IndexEntryStale,
            r,
            format!(
                "{loc}: entry {shown} points at record {}, which is not in use",
                t.record
            ),
        );
        return;
    }
    if s.extension {
        p.push(
            ProblemKind::IndexEntryStale,
            r,
            format!(
                "{loc}: entry {shown} points at record {}, an extension record",
                t.record
            ),
        );
        return;
    }
    if s.sequence != t.sequence {
        p.push(
            ProblemKind::IndexEntryStale,
            r,
            format!("{loc}: entry {shown} points at record {} with sequence {}, but the record has sequence {}", t.record, t.sequence, s.sequence),
        );
        return;
    }
    if key.parent != dir {
        p.push(
            ProblemKind::IndexEntryName,
            r,
            format!(
                "{loc}: entry {shown} for record {} names parent {} (sequence {}), not this directory (record {}, sequence {})",
                t.record, key.parent.record, key.parent.sequence, dir.record, dir.sequence
            ),
        );
        return;
    }
    match names.find_mut(dir.record, t.record, key.namespace, &key.name) {
        Some(n) if n.parent == dir => n.hits = n.hits.saturating_add(1),
        _ => p.push(
            ProblemKind::IndexEntryName,
            r,
            format!("{loc}: entry {shown} matches no $FILE_NAME of record {} with this directory as parent", t.record),
        ),
    }
}

/// After all entries of the directories in `complete` were matched: names indexed zero or several
/// times. `name_of` recovers a name for the message.
pub(super) fn report_unmatched_names(
    names: &NameTable,
    complete: &dyn Fn(FileRef) -> bool,
    name_of: &mut dyn FnMut(u64, u64, Namespace, u64) -> Option<String>,
    p: &mut Problems,
) {
    for n in &names.names {
        if n.hits == 1 || !complete(n.parent) {
            continue;
        }
        let shown = name_of(n.child.record, n.parent.record, n.namespace, n.hash)
            .unwrap_or_else(|| "?".into());
        let ns = n.namespace.name();
        if n.hits == 0 {
            p.push(
                ProblemKind::NameNotIndexed,
                Some(n.child.record),
                format!("record {}: its {ns} name \"{shown}\" is missing from the index of directory {}", n.child.record, n.parent.record),
            );
        } else {
            p.push(
                ProblemKind::NameIndexedTwice,
                Some(n.child.record),
                format!(
                    "record {}: its {ns} name \"{shown}\" is indexed {} times in directory {}",
                    n.child.record, n.hits, n.parent.record
                ),
            );
        }
    }
}

/// Finds a name of record `child` (its base or extension records) by parent, namespace and hash.
pub(super) fn find_name<R: ReadAt>(
    vol: &Volume<R>,
    child: u64,
    parent: u64,
    ns: Namespace,
    hash: u64,
) -> Option<String> {
    let rec = vol.read_record(child).ok()?;
    for r in vol.records_of(&rec).ok()? {
        for a in r.attributes().ok()? {
            if a.type_code == AttributeType::FileName.code() && !a.non_resident {
                if let Ok(k) = FileNameKey::parse(a.resident_value().ok()?) {
                    if k.parent.record == parent && k.namespace == ns && name_hash(&k.name) == hash
                    {
                        return Some(k.name_string());
                    }
                }
            }
        }
    }
    None
}
