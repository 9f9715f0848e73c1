//! The undo file reader (what `kaifuku undo` and the web page's undo check read before restoring
//! bytes): signature and version (2, and 3 with the size after a fix that grew the file),
//! whole-file checksum, header identity, entries, originals hash.
//!
//! Input: a flag byte, then the file. Flag bit 1 recomputes the originals hash (walking the entries
//! as the format lays them out) and bit 0 the whole-file checksum, so that mutated fields get past
//! them. Checked: whatever decodes encodes back to exactly the same file.
#![no_main]

use kaifuku_fuzz::le;
use kaifuku_rescue::undo::{self, ENTRY_HEADER_LEN, HEADER_LEN, HEADER_LEN_GROWN, TRAILER_LEN};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let mut file = file.to_vec();
    // Version 3 has two more header fields before the entries.
    let header_len = if file.get(15) == Some(&3) {
        HEADER_LEN_GROWN
    } else {
        HEADER_LEN
    };
    if file.len() >= header_len + TRAILER_LEN {
        let body_end = file.len() - TRAILER_LEN;
        if flags & 2 != 0 {
            let mut h = Sha256::new();
            let mut pos = header_len;
            for _ in 0..le(&file[40..48]).min(1 << 16) {
                if pos + ENTRY_HEADER_LEN > body_end {
                    break;
                }
                let len = le(&file[pos + 8..pos + 16]);
                let start = pos + ENTRY_HEADER_LEN;
                let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l));
                match end {
                    Some(end) if end <= body_end => {
                        h.update(&file[start..end]);
                        pos = end;
                    }
                    _ => break,
                }
            }
            file[body_end..body_end + 32].copy_from_slice(&h.finalize());
        }
        if flags & 1 != 0 {
            let n = file.len() - 32;
            let sum = Sha256::digest(&file[..n]);
            file[n..].copy_from_slice(&sum);
        }
    }
    let Ok((id, growth, entries)) = undo::decode_grown(&file) else {
        return;
    };
    assert_eq!(
        undo::encode_grown(&id, growth, &entries),
        file,
        "decode/encode do not round-trip"
    );
});
