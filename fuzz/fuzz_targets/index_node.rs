//! Index nodes: `INDX` blocks (fixups, header, entries) and `$INDEX_ROOT` values, for file-name
//! (`$I30`) and ULONGS (`$O`, `$R`) collations; keys compared as the index orders them.
//!
//! Input: a mode byte (bit 0: an `INDX` block, else a root value; bit 1: ULONGS collation), then
//! the node's bytes. Checked: entries lie in the node, in order, the END entry last, child
//! pointers present exactly when the node says it has children.
#![no_main]

use kaifuku_ntfs::fixup;
use kaifuku_ntfs::index::{parse_node_with, Collation, NodeId};
use kaifuku_ntfs::upcase::UpcaseTable;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn ascii_upcase() -> &'static UpcaseTable {
    static T: OnceLock<UpcaseTable> = OnceLock::new();
    T.get_or_init(|| {
        let b: Vec<u8> = (0..=u16::MAX)
            .map(|u| {
                if (0x61..=0x7A).contains(&u) {
                    u - 0x20
                } else {
                    u
                }
            })
            .flat_map(u16::to_le_bytes)
            .collect();
        UpcaseTable::from_bytes(&b).expect("a 128 KiB table")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let collation = if mode & 2 != 0 {
        Collation::Ulongs
    } else {
        Collation::FileName
    };
    let mut bytes = rest.to_vec();
    let (id, header) = if mode & 1 != 0 {
        let _ = fixup::apply_read(&mut bytes, "fuzz index block");
        (NodeId::Block(0), 0x18)
    } else {
        (NodeId::Root, 0x10)
    };
    let len = bytes.len();
    let Ok(node) = parse_node_with(id, bytes, header, collation) else {
        return;
    };
    let last = node.entries.len() - 1;
    let mut prev_end = 0;
    for (i, e) in node.entries.iter().enumerate() {
        assert!(e.offset >= prev_end && e.offset + e.length <= len);
        prev_end = e.offset + e.length;
        assert_eq!(e.is_end, i == last);
        assert_eq!(e.subnode.is_some(), node.has_children);
        assert_eq!(
            e.key.is_some(),
            !e.is_end && collation == Collation::FileName
        );
        if let Some(k) = &e.key {
            let _ = k.name_string();
        }
    }
    let up = ascii_upcase();
    for w in node.entries[..last].windows(2) {
        let _ = collation.compare(up, &w[0].key_bytes, &w[1].key_bytes);
    }
});
