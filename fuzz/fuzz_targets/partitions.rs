//! Partition tables: protective MBR + GPT (both headers, entry arrays), plain MBR with the EBR
//! chain of an extended partition, bare volumes, 512- and 4096-byte sectors.
//!
//! Input: a sparse disk (`kaifuku_fuzz::Sparse`); flag bit 0 reseals the GPT header and entry
//! array CRCs so that mutated fields get past them. Checked: the table's geometry is coherent.
#![no_main]

use kaifuku_fuzz::{seal_gpt, Sparse};
use kaifuku_io::ReadAt;
use kaifuku_partition::{read_partitions, Scheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (flags, mut disk) = Sparse::parse(data);
    if flags & 1 != 0 {
        seal_gpt(&mut disk);
    }
    let Ok(t) = read_partitions(&disk) else {
        return;
    };
    let ss = u64::from(t.sector_size);
    assert!(ss == 512 || ss == 4096, "sector size {ss}");
    for p in &t.partitions {
        assert!(p.last_lba >= p.first_lba || p.size == 0, "{p:?}");
        if t.scheme != Scheme::None {
            assert_eq!(p.start, p.first_lba * ss, "{p:?}");
            assert_eq!(p.size, (p.last_lba - p.first_lba + 1) * ss, "{p:?}");
        }
        if let Ok(v) = p.view(&disk) {
            assert_eq!(v.size(), p.size);
        }
    }
    let _ = t.data_partitions().count();
});
