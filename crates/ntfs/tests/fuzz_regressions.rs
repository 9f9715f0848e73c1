//! Inputs found by the fuzz targets (fuzz/fuzz_targets/) that once made a parser panic, hang or
//! allocate without bound. Each is the minimised input, fed through the same public API the
//! target calls; the parser must answer with an error (or a value), never a panic.

use kaifuku_ntfs::runlist::{decode_runlist, map_range};
use kaifuku_ntfs::NtfsError;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn le(b: &[u8]) -> u64 {
    b.iter()
        .enumerate()
        .fold(0, |v, (i, x)| v | (u64::from(*x) << (8 * i)))
}

/// The `runlist` target: first VCN, cluster size exponent, range offset and length, mapping pairs.
fn runlist_case(data: &[u8]) -> Result<Vec<(Option<u64>, u64)>, NtfsError> {
    let first_vcn = le(&data[..8]);
    let cluster_size = 1u64 << (9 + data[8] % 13);
    let offset = le(&data[9..17]);
    let len = le(&data[17..21]);
    let runs = decode_runlist(&data[21..], first_vcn)?;
    map_range(&runs, cluster_size, offset, len)
}

/// Runs that end near VCN 2^64: the byte offset of their end overflowed (multiply).
#[test]
fn runlist_run_end_beyond_u64() {
    let data = hex("0000000000000000 03 0000215201291818 18181818
         181818181818181818181818181818181818181818181818181818181818181818
         0000000000000000030000001800");
    let runs = decode_runlist(&data[21..], 0).expect("the mapping pairs themselves are valid");
    assert!(runs.len() >= 2 && runs[1].vcn > 1 << 60);
    assert!(matches!(runlist_case(&data), Err(NtfsError::Corrupt(_))));
}

/// A range whose end is past 2^64 (offset + length overflowed), with no runs at all.
#[test]
fn runlist_range_end_beyond_u64() {
    let data = hex("1818181818181818 18 18ffffffffffffff 00000018 00");
    assert!(matches!(runlist_case(&data), Err(NtfsError::Corrupt(_))));
    // The same range expressed directly.
    assert!(map_range(&[], 4096, u64::MAX - 10, 100).is_err());
}

/// An LCN whose byte offset overflows: the run is valid as clusters but not as bytes.
#[test]
fn runlist_lcn_byte_offset_beyond_u64() {
    // One run: 1 cluster at LCN 2^55 (8-byte offset field).
    let pairs = hex("81 01 0000000000008000 00");
    let runs = decode_runlist(&pairs, 0).unwrap();
    assert_eq!(runs[0].lcn, Some(1 << 55));
    assert!(map_range(&runs, 1 << 20, 0, 512).is_err());
    // A sane one still maps.
    let runs = decode_runlist(&hex("21 01 0010 00"), 0).unwrap();
    assert_eq!(
        map_range(&runs, 4096, 100, 10).unwrap(),
        vec![(Some(0x1000 * 4096 + 100), 10)]
    );
}

/// The `mft_record` target's round trip (fixups removed, written back, removed again): an update
/// sequence array at offset 4 overlaps its own offset and count, so writing the record changed the
/// offset (the new update sequence number landed on it) and the record no longer read back.
#[test]
fn fixup_array_overlapping_its_header_is_refused() {
    use kaifuku_ntfs::fixup;
    let mut rec = vec![0u8; 1024];
    rec[..4].copy_from_slice(b"FILE");
    rec[4..6].copy_from_slice(&4u16.to_le_bytes()); // array offset 4: the array starts here
    rec[6..8].copy_from_slice(&3u16.to_le_bytes()); // 3 entries: the number and two sectors
    rec[510..512].copy_from_slice(&4u16.to_le_bytes());
    rec[1022..1024].copy_from_slice(&4u16.to_le_bytes());
    let mut read = rec.clone();
    assert!(matches!(
        fixup::apply_read(&mut read, "record"),
        Err(NtfsError::Corrupt(_))
    ));
    let mut write = rec.clone();
    assert!(fixup::apply_write(&mut write, "record").is_err());
    assert_eq!(write, rec, "a refused write leaves the record as it was");
    // The usual layout (array at 0x30) still works both ways.
    rec[4..6].copy_from_slice(&0x30u16.to_le_bytes());
    rec[0x30..0x32].copy_from_slice(&4u16.to_le_bytes());
    let mut r = rec.clone();
    fixup::apply_read(&mut r, "record").unwrap();
    let mut w = r.clone();
    fixup::apply_write(&mut w, "record").unwrap();
    fixup::apply_read(&mut w, "record").unwrap();
    assert_eq!(w[..0x30], r[..0x30]);
    assert_eq!(w[0x32..], r[0x32..]);
}

/// The `inspect_image` target: a `$STANDARD_INFORMATION` time of 2^63 or more (a flipped top bit)
/// overflowed when converted to Unix time for the report. Such a time is shown as what it is, a
/// far-future date (the expected strings were computed with Python's calendar, 400-year cycles
/// added; the first is Windows' own documented maximum FILETIME, plus one tick).
#[test]
fn timestamps_of_2_pow_63_and_more_format() {
    use kaifuku_ntfs::time::format_utc;
    assert_eq!(format_utc(1 << 63), "30828-09-14T02:48:05.4775808Z");
    assert_eq!(format_utc(u64::MAX), "60056-05-28T05:36:10.9551615Z");
    assert_eq!(format_utc((1 << 63) - 1), "30828-09-14T02:48:05.4775807Z");
}

fn fixtures() -> std::path::PathBuf {
    std::env::var_os("KAIFUKU_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/out/fixtures")
        })
}

/// An image file read in place, with a few bytes changed in memory.
struct Patched {
    file: std::fs::File,
    size: u64,
    patches: Vec<(u64, Vec<u8>)>,
}

impl kaifuku_io::ReadAt for Patched {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        kaifuku_io::check_range(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)?;
        for (at, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= offset && p < offset + buf.len() as u64 {
                    buf[(p - offset) as usize] = *b;
                }
            }
        }
        Ok(())
    }
}

/// The `inspect_image` target (a 10-second input, then a hang): the data size of a CrowdStrike
/// file's `$DATA` overwritten with 0x08FFFFFF01300130 and its initialized size with a larger
/// value. kaifuku's reader refuses such sizes, but the `ntfs` crate trusted them, and the
/// all-zero scan of the file then read 2^59 bytes of "uninitialized" zeros. The two readers now
/// check each other, and the scan stops at the first non-zero byte.
#[test]
fn file_details_refuses_a_data_size_the_readers_disagree_on() {
    use kaifuku_ntfs::AttributeType;
    let path = fixtures().join("cs-rootonly.raw");
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/make-fixtures.py)", path.display()));
    let size = file.metadata().unwrap().len();
    let mut img = Patched {
        file,
        size,
        patches: Vec::new(),
    };
    let name = "\\Windows\\System32\\drivers\\CrowdStrike\\C-00000291-00000000-00000033.sys";
    let (entry, rec, data_at) = {
        let vol = kaifuku_ntfs::Volume::open(&img).unwrap();
        let (entry, rec) = vol.lookup_path(name).unwrap().expect("the fixture has 033");
        let before = vol.file_details(&entry).unwrap();
        assert!(before.size > 0 && !before.all_zero);
        let attr = rec
            .find(AttributeType::Data, "")
            .unwrap()
            .expect("033 has $DATA");
        assert!(attr.non_resident, "033 is non-resident in the fixture");
        let loc = vol.record_location(rec.number).unwrap();
        assert_eq!(loc.len(), 1, "the record is contiguous");
        (entry, rec.number, loc[0].0 + attr.offset as u64)
    };
    // Data size (+0x30) and initialized size (+0x38), as the fuzzer wrote them. Neither field
    // reaches the last two bytes of a 512-byte stride, so the update sequence array is untouched.
    assert!((data_at + 0x30) % 512 < 496);
    img.patches.push((
        data_at + 0x30,
        0x08FF_FFFF_0130_0130u64.to_le_bytes().to_vec(),
    ));
    img.patches.push((
        data_at + 0x38,
        0x7A95_9595_D2D2_7F2Cu64.to_le_bytes().to_vec(),
    ));
    let vol = kaifuku_ntfs::Volume::open(&img).unwrap();
    let started = std::time::Instant::now();
    let got = vol.file_details(&entry);
    assert!(
        matches!(got, Err(NtfsError::Corrupt(_))),
        "record {rec}: {got:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// The `check_image` target: `$Bitmap`'s `$DATA` claiming 2^61 bytes (allocated and data size)
/// made the whole-volume check overflow when it counted the bits (`size * 8`). The claim now
/// saturates: the bits the volume needs are compared as usual, and nothing is called missing.
#[test]
fn check_volume_with_a_bitmap_claiming_2_pow_61_bytes() {
    use kaifuku_ntfs::check::{check_volume, ProblemKind};
    use kaifuku_ntfs::AttributeType;
    let path = fixtures().join("cs-rootonly.raw");
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run tests/make-fixtures.py)", path.display()));
    let size = file.metadata().unwrap().len();
    let mut img = Patched {
        file,
        size,
        patches: Vec::new(),
    };
    let data_at = {
        let vol = kaifuku_ntfs::Volume::open(&img).unwrap();
        assert!(
            check_volume(&vol).unwrap().is_clean(),
            "the fixture checks clean"
        );
        let rec = vol.read_record(6).unwrap();
        let attr = rec
            .find(AttributeType::Data, "")
            .unwrap()
            .expect("$Bitmap has $DATA");
        assert!(attr.non_resident);
        let loc = vol.record_location(6).unwrap();
        assert_eq!(loc.len(), 1, "the record is contiguous");
        loc[0].0 + attr.offset as u64
    };
    // Allocated (+0x28) and data (+0x30) size; clear of the stride ends holding the sequence number.
    assert!((data_at + 0x28) % 512 < 494);
    let huge = (1u64 << 61).to_le_bytes().to_vec();
    img.patches.push((data_at + 0x28, huge.clone()));
    img.patches.push((data_at + 0x30, huge));
    let vol = kaifuku_ntfs::Volume::open(&img).unwrap();
    let report = check_volume(&vol).expect("damage is reported, not an error");
    assert!(
        !report.has(ProblemKind::BitmapMissing),
        "{:?}",
        report.problems
    );
}
