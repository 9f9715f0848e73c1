//! Inputs found by the fuzz target `partitions` (fuzz/fuzz_targets/partitions.rs) that once made
//! the reader panic. The disk is rebuilt here field by field from the minimised input, with valid
//! CRCs, so the test says what the damage is.

use kaifuku_partition::{read_partitions, NoticeKind, Scheme};

fn crc32(b: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b)
}

/// A 1 MiB disk: protective MBR, a primary GPT header at LBA 1 whose backup LBA is `backup_lba`,
/// one Basic data entry at LBA 64..127, and no backup copy.
fn disk_with_backup_lba(backup_lba: u64) -> Vec<u8> {
    let mut d = vec![0u8; 1 << 20];
    let last = (d.len() / 512 - 1) as u32;
    // Protective MBR: one 0xEE entry from LBA 1 to the end.
    d[446 + 4] = 0xEE;
    d[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    d[446 + 12..446 + 16].copy_from_slice(&last.to_le_bytes());
    d[510] = 0x55;
    d[511] = 0xAA;
    // Entry 1 at LBA 2: Basic data (EBD0A0A2-B9E5-4433-87C0-68B6B72699C7), LBA 64..127.
    let e = 1024;
    d[e..e + 16].copy_from_slice(&[
        0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99,
        0xC7,
    ]);
    d[e + 16..e + 32].copy_from_slice(&[0x11; 16]);
    d[e + 32..e + 40].copy_from_slice(&64u64.to_le_bytes());
    d[e + 40..e + 48].copy_from_slice(&127u64.to_le_bytes());
    let entries_crc = crc32(&d[1024..1024 + 128 * 128]);
    let h = 512;
    d[h..h + 8].copy_from_slice(b"EFI PART");
    d[h + 8..h + 12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    d[h + 12..h + 16].copy_from_slice(&92u32.to_le_bytes());
    d[h + 24..h + 32].copy_from_slice(&1u64.to_le_bytes());
    d[h + 32..h + 40].copy_from_slice(&backup_lba.to_le_bytes());
    d[h + 40..h + 48].copy_from_slice(&34u64.to_le_bytes());
    d[h + 48..h + 56].copy_from_slice(&(u64::from(last) - 33).to_le_bytes());
    d[h + 56..h + 72].copy_from_slice(&[0x22; 16]);
    d[h + 72..h + 80].copy_from_slice(&2u64.to_le_bytes());
    d[h + 80..h + 84].copy_from_slice(&128u32.to_le_bytes());
    d[h + 84..h + 88].copy_from_slice(&128u32.to_le_bytes());
    d[h + 88..h + 92].copy_from_slice(&entries_crc.to_le_bytes());
    let header_crc = crc32(&d[h..h + 92]);
    d[h + 16..h + 20].copy_from_slice(&header_crc.to_le_bytes());
    d
}

/// A valid primary header naming a backup at LBA 0xFFFFFEFFFFFFFFFF (the fuzzer's value): the
/// size the disk would need overflowed when the truncation warning was worded.
#[test]
fn gpt_backup_lba_near_u64_max() {
    let t = read_partitions(&disk_with_backup_lba(0xFFFF_FEFF_FFFF_FFFF))
        .expect("the primary GPT is intact");
    assert_eq!(t.scheme, Scheme::Gpt);
    assert_eq!(t.partitions.len(), 1);
    assert_eq!(t.partitions[0].start, 64 * 512);
    assert!(
        t.warnings.iter().any(|w| matches!(
            w.kind,
            NoticeKind::GptTruncated {
                needed: u64::MAX,
                ..
            }
        )),
        "{:?}",
        t.warnings
    );
}

/// A valid primary header naming LBA 0 as its backup's place (the fuzzer's minimised disk had no
/// protective entry, which takes the same path): reading "the header at LBA 0" subtracted a sector
/// from offset 0.
#[test]
fn gpt_backup_lba_zero() {
    let t = read_partitions(&disk_with_backup_lba(0)).expect("the primary GPT is intact");
    assert_eq!(t.scheme, Scheme::Gpt);
    assert_eq!(t.partitions.len(), 1);
    assert!(
        t.warnings.iter().any(|w| matches!(
            &w.kind,
            NoticeKind::BackupGptDamaged { detail } if detail.contains("LBA 0")
        )),
        "{:?}",
        t.warnings
    );
}
