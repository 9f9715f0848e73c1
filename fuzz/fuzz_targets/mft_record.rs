//! An MFT file record as read from disk: update sequence array (fixups), header, attribute walk,
//! resident values, non-resident sizes and mapping pairs, `$ATTRIBUTE_LIST` entries and
//! `$FILE_NAME` values.
//!
//! Input: the record's on-disk bytes (any length; real ones are 1024 or 4096). Checked: fixups
//! written back and read again give the same record.
#![no_main]

use kaifuku_ntfs::fixup;
use kaifuku_ntfs::index::FileNameKey;
use kaifuku_ntfs::volume::parse_attribute_list;
use kaifuku_ntfs::AttributeType;
use kaifuku_ntfs::FileRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if fixup::apply_read(&mut bytes, "fuzz record").is_ok() {
        let fixed = bytes.clone();
        let mut again = bytes.clone();
        fixup::apply_write(&mut again, "fuzz record").expect("a record that read back writes");
        fixup::apply_read(&mut again, "fuzz record").expect("written fixups read back");
        // Everything but the update sequence number itself round-trips.
        let usa = u16::from_le_bytes([fixed[4], fixed[5]]) as usize;
        assert_eq!(again[..usa], fixed[..usa]);
        assert_eq!(again[usa + 2..], fixed[usa + 2..]);
    } else {
        // Records are also parsed without fixups (the check layer reads damaged ones).
        bytes = data.to_vec();
    }
    let Ok(rec) = FileRecord::parse(7, bytes) else {
        return;
    };
    let _ = (
        rec.sequence(),
        rec.link_count(),
        rec.flags(),
        rec.base_ref(),
    );
    let _ = rec.find(0x80, "");
    let Ok(attrs) = rec.attributes() else {
        return;
    };
    for a in &attrs {
        let _ = a.value_size();
        let _ = a.flags();
        if a.non_resident {
            let _ = (
                a.lowest_vcn(),
                a.highest_vcn(),
                a.allocated_size(),
                a.initialized_size(),
            );
            if let Ok(runs) = a.runs() {
                for w in runs.windows(2) {
                    assert_eq!(w[0].vcn + w[0].length, w[1].vcn);
                }
            }
        } else if let Ok(v) = a.resident_value() {
            let _ = a.resident_value_offset();
            match AttributeType::from_code(a.type_code) {
                Some(AttributeType::AttributeList) => {
                    let _ = parse_attribute_list(v);
                }
                Some(AttributeType::FileName) => {
                    if let Ok(k) = FileNameKey::parse(v) {
                        let _ = k.name_string();
                    }
                }
                _ => {}
            }
        }
    }
});
