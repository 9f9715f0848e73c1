//! The NTFS boot sector: OEM ID, geometry, `$MFT`/`$MFTMirr` location, record size codes.
//!
//! Input: the size of the volume holding the sector (u64 LE), then the sector. Checked: accepted
//! geometry is what the parser promises (powers of two in range, `$MFT` inside the volume).
#![no_main]

use kaifuku_fuzz::le;
use kaifuku_ntfs::{boot_kind, BootSector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let volume_len = le(&data[..8]);
    let sector = &data[8..];
    let _ = boot_kind(sector);
    let Ok(b) = BootSector::parse(sector, volume_len) else {
        return;
    };
    assert!(b.bytes_per_sector.is_power_of_two() && (256..=4096).contains(&b.bytes_per_sector));
    assert!(b.cluster_size.is_power_of_two() && b.cluster_size <= 2 << 20);
    assert!(b.volume_size() <= volume_len);
    assert!(b.mft_lcn > 0 && b.mft_lcn < b.total_clusters());
    assert!(b.mftmirr_lcn > 0 && b.mftmirr_lcn < b.total_clusters());
    for s in [b.file_record_size, b.index_record_size] {
        assert!(s.is_power_of_two() && (256..=65536).contains(&s));
    }
});
