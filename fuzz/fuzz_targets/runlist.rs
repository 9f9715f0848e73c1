//! Mapping pairs (runlists) and the mapping of a stream range to volume ranges.
//!
//! Input: first VCN (u64 LE), cluster size exponent (u8, 9..=21 used), range offset (u64 LE) and
//! length (u32 LE), then the mapping pairs. Checked: runs are contiguous in VCN order, and a mapped
//! range is exactly as long as asked and lands in the runs' clusters.
#![no_main]

use kaifuku_fuzz::le;
use kaifuku_ntfs::runlist::{decode_runlist, map_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 21 {
        return;
    }
    let first_vcn = le(&data[..8]);
    let cluster_size = 1u64 << (9 + data[8] % 13);
    let offset = le(&data[9..17]);
    let len = le(&data[17..21]);
    let Ok(runs) = decode_runlist(&data[21..], first_vcn) else {
        return;
    };
    let mut vcn = first_vcn;
    for r in &runs {
        assert_eq!(r.vcn, vcn);
        assert!(r.length > 0);
        vcn = r.vcn + r.length;
    }
    let Ok(pieces) = map_range(&runs, cluster_size, offset, len) else {
        return;
    };
    assert_eq!(pieces.iter().map(|p| p.1).sum::<u64>(), len);
    let mut pos = offset;
    for (at, n) in pieces {
        let r = runs
            .iter()
            .find(|r| pos / cluster_size >= r.vcn && pos / cluster_size < r.vcn + r.length)
            .expect("mapped byte lies in a run");
        match (r.lcn, at) {
            (Some(lcn), Some(at)) => {
                assert_eq!(at, lcn * cluster_size + (pos - r.vcn * cluster_size))
            }
            (None, None) => {}
            _ => panic!("sparse mismatch at {pos}"),
        }
        pos += n;
    }
});
