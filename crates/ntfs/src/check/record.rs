//! Stage 1 on one file record: the header and every attribute header are checked field by field
//! (rather than parsed until the first error), and what later checks need is kept in
//! [`RecordFacts`].

use super::{ProblemKind, Problems};
use crate::bytes::{u16_at, u32_at, u64_at, utf16_units};
use crate::index::FileNameKey;
use crate::layout::{attribute, file_name, file_record, multi_sector, AttributeType};
use crate::record::FileRef;
use crate::runlist::{decode_runlist, Run};

/// Volume geometry the record checks need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub record_size: usize,
    pub cluster_size: u64,
    pub total_clusters: u64,
}

/// One attribute header, as far as the cross-record checks need it.
#[derive(Debug, Clone)]
pub(crate) struct AttrFacts {
    pub type_code: u32,
    pub name: Vec<u16>,
    pub instance: u16,
    pub non_resident: bool,
    pub lowest_vcn: u64,
    pub highest_vcn: u64,
    /// Size fields; meaningful only in the extent whose lowest VCN is 0.
    pub allocated_size: u64,
    pub data_size: u64,
    pub initialized_size: u64,
    pub runs: Vec<Run>,
    /// The value of a resident attribute (kept only for the types later checks read).
    pub value: Option<Vec<u8>>,
}

impl AttrFacts {
    pub fn describe(&self) -> String {
        describe_attr(self.type_code, &self.name)
    }

    /// The stream of a non-resident attribute held whole in one extent.
    pub fn stream(&self) -> crate::volume::Stream {
        crate::volume::Stream {
            runs: self.runs.clone(),
            data_size: self.data_size,
            allocated_size: self.allocated_size,
            initialized_size: self.initialized_size,
        }
    }
}

pub(crate) fn describe_attr(type_code: u32, name: &[u16]) -> String {
    let t = AttributeType::from_code(type_code).map_or("", AttributeType::name);
    let t = if t.is_empty() {
        format!("attribute {type_code:#x}")
    } else {
        t.to_string()
    };
    if name.is_empty() {
        t
    } else {
        format!("{t}:{}", crate::bytes::utf16_name(name))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RecordFacts {
    pub number: u64,
    pub sequence: u16,
    pub link_count: u16,
    pub flags: u16,
    pub base: FileRef,
    pub attrs: Vec<AttrFacts>,
    pub names: Vec<FileNameKey>,
}

impl RecordFacts {
    pub fn is_extension(&self) -> bool {
        self.base.record != 0 || self.base.sequence != 0
    }
    pub fn has_attribute_list(&self) -> bool {
        self.attrs
            .iter()
            .any(|a| a.type_code == AttributeType::AttributeList.code())
    }
    pub fn has_i30_root(&self) -> bool {
        self.attrs
            .iter()
            .any(|a| a.type_code == AttributeType::IndexRoot.code() && a.name == I30)
    }
}

pub(crate) const I30: [u16; 4] = [b'$' as u16, b'I' as u16, b'3' as u16, b'0' as u16];

/// Types whose resident value later checks read.
fn keep_value(type_code: u32) -> bool {
    matches!(
        AttributeType::from_code(type_code),
        Some(
            AttributeType::AttributeList
                | AttributeType::FileName
                | AttributeType::ObjectId
                | AttributeType::ReparsePoint
        )
    )
}

/// Checks the header and attributes of in-use record `n` (fixups already removed). Returns `None`
/// when the record is too damaged for its attributes to be trusted at all.
pub(crate) fn examine_record(
    n: u64,
    b: &[u8],
    geo: &Geometry,
    p: &mut Problems,
) -> Option<RecordFacts> {
    let rec = Some(n);
    let bad = |p: &mut Problems, kind: ProblemKind, m: String| {
        p.push(kind, rec, format!("record {n}: {m}"))
    };
    if b.len() < file_record::HEADER_LENGTH || !file_record::has_signature(b) {
        bad(p, ProblemKind::RecordHeader, "no FILE signature".into());
        return None;
    }
    let usa_ofs = u16_at(b, multi_sector::USA_OFFSET).unwrap_or(0) as usize;
    let usa_count = u16_at(b, multi_sector::USA_COUNT).unwrap_or(0) as usize;
    let sequence = u16_at(b, file_record::SEQUENCE).unwrap_or(0);
    let link_count = u16_at(b, file_record::LINK_COUNT).unwrap_or(0);
    let first = u16_at(b, file_record::FIRST_ATTRIBUTE).unwrap_or(0) as usize;
    let flags = u16_at(b, file_record::FLAGS).unwrap_or(0);
    let in_use_bytes = u32_at(b, file_record::BYTES_IN_USE).unwrap_or(0) as usize;
    let allocated = u32_at(b, file_record::BYTES_ALLOCATED).unwrap_or(0) as usize;
    let base = FileRef::from_u64(u64_at(b, file_record::BASE_RECORD).unwrap_or(0));
    let next_instance = u16_at(b, file_record::NEXT_INSTANCE).unwrap_or(0);
    if allocated != geo.record_size {
        bad(
            p,
            ProblemKind::RecordHeader,
            format!(
                "allocated size {allocated} is not the record size {}",
                geo.record_size
            ),
        );
    }
    if in_use_bytes > allocated.min(b.len()) || in_use_bytes & 7 != 0 {
        bad(
            p,
            ProblemKind::RecordHeader,
            format!(
                "bytes in use {in_use_bytes} exceed the allocated {allocated} or are not 8-aligned"
            ),
        );
        return None;
    }
    // NTFS 3.1 records (update sequence array at 0x30) carry their own number at 0x2C.
    if usa_ofs >= file_record::HEADER_LENGTH {
        let own = u32_at(b, file_record::RECORD_NUMBER).unwrap_or(0) as u64;
        if own != n & 0xFFFF_FFFF {
            bad(
                p,
                ProblemKind::RecordHeader,
                format!("says it is record {own}"),
            );
        }
    }
    if first & 7 != 0 || first < usa_ofs + 2 * usa_count || first + 4 > in_use_bytes {
        bad(
            p,
            ProblemKind::RecordHeader,
            format!("first attribute offset {first} is invalid (bytes in use {in_use_bytes})"),
        );
        return None;
    }
    let mut attrs: Vec<AttrFacts> = Vec::new();
    let mut names = Vec::new();
    let mut instances: Vec<u16> = Vec::new();
    let mut off = first;
    let mut prev_type = 0u32;
    let mut ok = true;
    loop {
        if off + 4 > in_use_bytes {
            bad(
                p,
                ProblemKind::AttributeLayout,
                format!("attributes run past bytes in use ({in_use_bytes}) without the end marker"),
            );
            ok = false;
            break;
        }
        let ty = u32_at(b, off + attribute::TYPE).unwrap_or(attribute::END_MARKER);
        if ty == attribute::END_MARKER {
            if off + 8 != in_use_bytes {
                bad(
                    p,
                    ProblemKind::AttributeLayout,
                    format!("the end marker at {off} does not close the record's {in_use_bytes} bytes in use"),
                );
            }
            break;
        }
        let len = u32_at(b, off + attribute::LENGTH).unwrap_or(0) as usize;
        let what = format!("{} at offset {off}", describe_attr(ty, &[]));
        if len < attribute::MIN_LENGTH || len & 7 != 0 || off + len > in_use_bytes {
            bad(p, ProblemKind::AttributeLayout, format!("{what} has length {len} (must be 8-aligned and inside the {in_use_bytes} bytes in use)"));
            ok = false;
            break;
        }
        let raw = &b[off..off + len];
        if ty < prev_type {
            bad(
                p,
                ProblemKind::AttributeLayout,
                format!("{what} follows type {prev_type:#x}: attributes are not sorted by type"),
            );
        }
        prev_type = ty;
        let non_resident = raw[attribute::NON_RESIDENT];
        let name_len = raw[attribute::NAME_LENGTH] as usize;
        let name_off = u16_at(raw, attribute::NAME_OFFSET).unwrap_or(0) as usize;
        let instance = u16_at(raw, attribute::INSTANCE).unwrap_or(0);
        if non_resident > 1 {
            bad(
                p,
                ProblemKind::AttributeLayout,
                format!("{what} has non-resident flag {non_resident}"),
            );
        }
        if instance >= next_instance {
            bad(p, ProblemKind::AttributeLayout, format!("{what} has instance {instance}, not below the record's next instance {next_instance}"));
        }
        if instances.contains(&instance) {
            bad(
                p,
                ProblemKind::AttributeLayout,
                format!("{what} repeats instance {instance}"),
            );
        }
        instances.push(instance);
        let name = if name_len == 0 {
            Vec::new()
        } else if name_off + 2 * name_len > len {
            bad(
                p,
                ProblemKind::AttributeLayout,
                format!("{what}: its name lies outside the attribute"),
            );
            Vec::new()
        } else {
            utf16_units(&raw[name_off..name_off + 2 * name_len])
        };
        let mut facts = AttrFacts {
            type_code: ty,
            name,
            instance,
            non_resident: non_resident != 0,
            lowest_vcn: 0,
            highest_vcn: 0,
            allocated_size: 0,
            data_size: 0,
            initialized_size: 0,
            runs: Vec::new(),
            value: None,
        };
        let what = format!("{} at offset {off}", facts.describe());
        if non_resident == 0 {
            let vlen = u32_at(raw, attribute::resident::VALUE_LENGTH).unwrap_or(u32::MAX) as usize;
            let voff = u16_at(raw, attribute::resident::VALUE_OFFSET).unwrap_or(0) as usize;
            if voff < attribute::resident::HEADER_LENGTH
                || voff.checked_add(vlen).is_none_or(|e| e > len)
            {
                bad(
                    p,
                    ProblemKind::AttributeLayout,
                    format!(
                        "{what}: its value ({vlen} bytes at {voff}) lies outside the attribute"
                    ),
                );
            } else {
                let v = &raw[voff..voff + vlen];
                if ty == AttributeType::FileName.code() {
                    match FileNameKey::parse(v) {
                        Ok(k) if file_name::NAME + 2 * k.name.len() <= vlen => names.push(k),
                        _ => bad(
                            p,
                            ProblemKind::AttributeLayout,
                            format!("{what}: the $FILE_NAME value is truncated"),
                        ),
                    }
                }
                if keep_value(ty) {
                    facts.value = Some(v.to_vec());
                }
            }
        } else if len < attribute::non_resident::HEADER_LENGTH {
            bad(
                p,
                ProblemKind::AttributeLayout,
                format!("{what}: non-resident header of {len} bytes is too short"),
            );
        } else {
            facts.lowest_vcn = u64_at(raw, attribute::non_resident::LOWEST_VCN).unwrap_or(0);
            facts.highest_vcn = u64_at(raw, attribute::non_resident::HIGHEST_VCN).unwrap_or(0);
            let mp =
                u16_at(raw, attribute::non_resident::MAPPING_PAIRS_OFFSET).unwrap_or(0) as usize;
            facts.allocated_size =
                u64_at(raw, attribute::non_resident::ALLOCATED_SIZE).unwrap_or(0);
            facts.data_size = u64_at(raw, attribute::non_resident::DATA_SIZE).unwrap_or(0);
            let initialized = u64_at(raw, attribute::non_resident::INITIALIZED_SIZE).unwrap_or(0);
            facts.initialized_size = initialized;
            if mp < attribute::non_resident::HEADER_LENGTH || mp >= len {
                bad(
                    p,
                    ProblemKind::MappingPairs,
                    format!("{what}: mapping pairs offset {mp} lies outside the attribute"),
                );
            } else {
                match decode_runlist(&raw[mp..], facts.lowest_vcn) {
                    Err(e) => bad(p, ProblemKind::MappingPairs, format!("{what}: {e}")),
                    Ok(runs) => {
                        let covered: u64 = runs.iter().map(|r| r.length).sum();
                        let expect = facts
                            .highest_vcn
                            .wrapping_add(1)
                            .wrapping_sub(facts.lowest_vcn);
                        if covered != expect {
                            bad(
                                p,
                                ProblemKind::MappingPairs,
                                format!(
                                    "{what}: runs cover {covered} clusters but VCNs {}..={} need {expect}",
                                    facts.lowest_vcn, facts.highest_vcn as i64
                                ),
                            );
                        }
                        facts.runs = runs;
                    }
                }
            }
            if facts.lowest_vcn == 0 {
                let a = facts.allocated_size;
                if a & (geo.cluster_size - 1) != 0
                    || facts.data_size > a
                    || initialized > facts.data_size
                {
                    bad(
                        p,
                        ProblemKind::AttributeLayout,
                        format!(
                            "{what}: sizes allocated {a}, data {}, initialized {initialized} are inconsistent",
                            facts.data_size
                        ),
                    );
                }
            }
        }
        attrs.push(facts);
        off += len;
    }
    let facts = RecordFacts {
        number: n,
        sequence,
        link_count,
        flags,
        base,
        attrs,
        names,
    };
    // Without an attribute list every non-resident attribute lives whole in this record.
    if ok && !facts.is_extension() && !facts.has_attribute_list() {
        for a in facts.attrs.iter().filter(|a| a.non_resident) {
            check_whole_extent(n, a, a.allocated_size, geo, p);
        }
    }
    Some(facts)
}

/// A non-resident attribute held in one extent starts at VCN 0 and its runs cover its allocation.
pub(crate) fn check_whole_extent(
    n: u64,
    a: &AttrFacts,
    allocated: u64,
    geo: &Geometry,
    p: &mut Problems,
) {
    let clusters = a.highest_vcn.wrapping_add(1);
    if a.lowest_vcn != 0 || clusters.wrapping_mul(geo.cluster_size) != allocated {
        p.push(
            ProblemKind::MappingPairs,
            Some(n),
            format!(
                "record {n}: {} maps VCNs {}..={} but its allocated size is {allocated} bytes",
                a.describe(),
                a.lowest_vcn,
                a.highest_vcn as i64
            ),
        );
    }
}
