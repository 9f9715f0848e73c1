//! The write side on real Windows-made volumes of every method and sector size: re-encrypting an
//! unchanged sector gives back exactly the bytes on disk (relocated sectors at their copy), a
//! write into BitLocker's metadata is refused, and patches written through this layer are read
//! back by an independent implementation (dislocker) as the patched plaintext.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use common::{archive, fact, FileReader};
use kaifuku_bitlocker::{BitLockerError, BitLockerVolume, UnlockKey};
use kaifuku_io::{Overlay, Patch, PatchData, ReadAt};

/// One volume of each method, sector size and boot sector kind.
const METHODS: [&str; 10] = [
    "bitlk-aes-xts-128",
    "bitlk-aes-xts-256",
    "bitlk-aes-cbc-128",
    "bitlk-aes-cbc-256",
    "bitlk-aes-cbc-elephant-128",
    "bitlk-aes-cbc-elephant-256",
    "bitlk-aes-xts-128-4k",
    "bitlk-aes-cbc-128-4k",
    "bitlk-togo-aes-xts-128",
    "bitlk-togo-aes-cbc-128",
];

fn bytes_patch(offset: u64, data: Vec<u8>, label: &'static str) -> Patch<&'static str> {
    Patch {
        offset,
        data: PatchData::Bytes(data),
        label,
    }
}

#[test]
fn reencrypting_unchanged_sectors_gives_back_the_bytes_on_disk() {
    let Some(archive) = archive("reencrypting_unchanged_sectors_gives_back_the_bytes_on_disk")
    else {
        return;
    };
    for name in METHODS {
        let facts = &archive.images[name];
        let reader = FileReader::open(&archive.image(name));
        let volume = BitLockerVolume::open(&reader).unwrap();
        let key = UnlockKey::RecoveryPassword(fact(facts, "RP").unwrap().into());
        let view = volume.unlock(&reader, &key, &mut |_, _| {}).unwrap();
        let s = view.sector_size();
        let relocated = volume.metadata.relocated;
        let last = view.size() / s - 1;
        let samples = [
            0,
            1,
            relocated.len / s - 1,
            relocated.len / s,
            777,
            last / 2 + 3,
            last,
        ];
        for sector in samples {
            let plain = view.read_vec(sector * s, s as usize).unwrap();
            let out = view
                .encrypt_patches(&[bytes_patch(sector * s, plain, "same bytes")])
                .unwrap();
            assert_eq!(out.len(), 1, "{name} sector {sector}");
            let p = &out[0];
            let on_disk_at = if sector * s < relocated.len {
                relocated.offset + sector * s
            } else {
                sector * s
            };
            assert_eq!(p.offset, on_disk_at, "{name} sector {sector}");
            assert_eq!(p.label.relocated, sector * s < relocated.len);
            assert_eq!(p.label.first_sector, sector);
            assert_eq!(p.label.inner, vec!["same bytes"]);
            let PatchData::Bytes(cipher) = &p.data else {
                panic!("sector patches are bytes")
            };
            assert_eq!(
                cipher,
                &reader.read_vec(on_disk_at, s as usize).unwrap(),
                "{name}: encrypt(decrypt(sector {sector})) differs from the disk"
            );
        }
        // Each metadata block and the relocated copy are BitLocker's: writing there is refused.
        for at in volume
            .metadata
            .metadata_offsets
            .iter()
            .chain([&relocated.offset])
        {
            let e = view
                .encrypt_patches(&[bytes_patch(at + 10, vec![1, 2, 3], "metadata")])
                .unwrap_err();
            assert!(
                matches!(e, BitLockerError::WriteIntoMetadata { offset } if offset == at / s * s),
                "{name}: {e:?}"
            );
        }
    }
}

/// The patches of the dislocker test, on a volume of `size` bytes with `s`-byte sectors: inside
/// the relocated boot sector, across a sector boundary, two sharing one sector, a fill over
/// several sectors, the volume's last bytes.
fn test_patches(size: u64, s: u64) -> Vec<Patch<&'static str>> {
    let mid = size / 2 / s * s;
    vec![
        bytes_patch(0x60, b"kaifuku boot code".to_vec(), "in sector 0"),
        bytes_patch(0x40_0000 - 5, vec![0xAB; 11], "across a sector boundary"),
        bytes_patch(mid + 8, vec![0x11; 4], "first of two in one sector"),
        bytes_patch(mid + 100, vec![0x22; 4], "second of two in one sector"),
        Patch {
            offset: mid + 3 * s + 17,
            data: PatchData::Fill {
                byte: 0xFF,
                len: 2 * s + 30,
            },
            label: "a fill",
        },
        bytes_patch(size - 3, vec![0x5A; 3], "the last bytes"),
    ]
}

fn dislocker_decrypt(image: &Path, recovery_password: &str, out: &Path) {
    let result = Command::new("dislocker-file")
        .arg("-V")
        .arg(image)
        .arg(format!("-p{recovery_password}"))
        .arg("--")
        .arg(out)
        .output()
        .expect("dislocker-file runs (Debian package dislocker)");
    assert!(
        result.status.success(),
        "dislocker-file failed: {}",
        String::from_utf8_lossy(&result.stdout)
    );
}

#[test]
fn dislocker_reads_the_patched_plaintext_from_what_was_written() {
    let Some(archive) = archive("dislocker_reads_the_patched_plaintext_from_what_was_written")
    else {
        return;
    };
    let scratch = std::env::temp_dir().join(format!("kaifuku-bitlk-write-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    for name in METHODS {
        let facts = &archive.images[name];
        let rp = fact(facts, "RP").unwrap();
        let copy = scratch.join(format!("{name}.img"));
        let status = Command::new("cp")
            .arg("--sparse=always")
            .arg(archive.image(name))
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());

        let reader = FileReader::open(&copy);
        let volume = BitLockerVolume::open(&reader).unwrap();
        let key = UnlockKey::RecoveryPassword(rp.into());
        let view = volume.unlock(&reader, &key, &mut |_, _| {}).unwrap();
        let patches = test_patches(view.size(), view.sector_size());
        let encrypted = view.encrypt_patches(&patches).unwrap();
        // Two patches share a sector and the boundary patch spans two sectors.
        assert_eq!(encrypted.len(), patches.len() - 1, "{name}");

        // What the decrypted volume must read afterwards.
        let mut expected = Overlay::new(&view);
        for p in &patches {
            match &p.data {
                PatchData::Bytes(b) => expected.write(p.offset, b).unwrap(),
                PatchData::Fill { byte, len } => expected.fill(p.offset, *len, *byte).unwrap(),
            }
        }
        let expected = expected.read_vec(0, view.size() as usize).unwrap();
        drop(view);
        drop(reader);

        let file = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
        for p in &encrypted {
            let PatchData::Bytes(b) = &p.data else {
                panic!("sector patches are bytes")
            };
            file.write_all_at(b, p.offset).unwrap();
        }
        drop(file);

        let decrypted = scratch.join(format!("{name}.dec"));
        let _ = std::fs::remove_file(&decrypted);
        dislocker_decrypt(&copy, rp, &decrypted);
        let got = std::fs::read(&decrypted).unwrap();
        assert_eq!(got.len(), expected.len(), "{name}: dislocker's volume size");
        if let Some(at) = (0..got.len()).find(|i| got[*i] != expected[*i]) {
            panic!(
                "{name}: dislocker reads {:#04x} at byte {at:#x}, expected {:#04x}",
                got[at], expected[at]
            );
        }
        std::fs::remove_file(&decrypted).unwrap();
        std::fs::remove_file(&copy).unwrap();
    }
    std::fs::remove_dir(&scratch).unwrap();
}

/// A metadata block whose copy of the volume's first sectors is empty, or lies on the sectors it
/// stands for, would map the decrypted volume's boot sector onto BitLocker's own boot sector, and
/// a fix would write over it (found by the `bitlocker` fuzzer: the volume no longer opened as
/// BitLocker). The clear-key Windows volume, its copy's place edited in all three blocks, is
/// refused when opened.
#[test]
fn a_relocated_copy_that_would_land_on_bitlocker_structures_is_refused() {
    let Some(archive) =
        archive("a_relocated_copy_that_would_land_on_bitlocker_structures_is_refused")
    else {
        return;
    };
    let name = "bitlk-aes-xts-128-clearkey-only";
    let original = std::fs::read(archive.image(name)).unwrap();
    let volume = BitLockerVolume::open(&original[..]).unwrap();
    let relocated = volume.metadata.relocated;
    let sector = volume.boot.bytes_per_sector as u64;
    assert!(relocated.len >= sector && relocated.offset >= relocated.len);
    let first_area = volume.boot.metadata_offsets[0];
    // The copy's place is stored in each block as (offset, size): found by its bytes.
    let needle: Vec<u8> = [relocated.offset.to_le_bytes(), relocated.len.to_le_bytes()].concat();
    let places: Vec<usize> = original
        .windows(16)
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(places.len(), 3, "one (offset, size) per metadata block");
    for (what, offset, len) in [
        ("an empty copy", relocated.offset, 0),
        ("a copy over the boot sector", 0, relocated.len),
        (
            "a copy over a metadata block",
            first_area + 4096,
            relocated.len,
        ),
    ] {
        let mut edited = original.clone();
        for &at in &places {
            edited[at..at + 8].copy_from_slice(&offset.to_le_bytes());
            edited[at + 8..at + 16].copy_from_slice(&len.to_le_bytes());
        }
        // Each block's CRC-32 resealed, as a deliberate edit would, so the edit is judged.
        for &m in &volume.boot.metadata_offsets {
            reseal_block(&mut edited, m as usize);
        }
        let e = BitLockerVolume::open(&edited[..])
            .err()
            .unwrap_or_else(|| panic!("{what}: opened"));
        assert!(
            e.to_string().contains("relocated boot sectors"),
            "{what}: {e}"
        );
    }
}

/// Writes the CRC-32 of the FVE metadata block at `at` into its validation header.
fn reseal_block(volume: &mut [u8], at: usize) {
    let len = u16::from_le_bytes([volume[at + 8], volume[at + 9]]) as usize * 16;
    let crc = crc32fast::hash(&volume[at..at + len]);
    volume[at + len + 4..at + len + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Each metadata block carries a CRC-32 in the validation header after it; a block that fails it
/// is passed over for the next, as Windows keeps three for. The test set's "crc" volume has its
/// first two blocks damaged: the third is used (and the volume still decrypts to the SHA-256 its
/// README lists, in `windows_volumes.rs`); one flipped byte in the first block of a sound volume
/// makes the second the one used; all three flipped, nothing opens.
#[test]
fn a_metadata_block_whose_checksum_fails_is_passed_over() {
    let Some(archive) = archive("a_metadata_block_whose_checksum_fails_is_passed_over") else {
        return;
    };
    let crc = std::fs::read(archive.image("bitlk-aes-xts-128-crc")).unwrap();
    assert_eq!(
        BitLockerVolume::open(&crc[..])
            .unwrap()
            .metadata
            .block_index,
        2
    );
    let mut sound = std::fs::read(archive.image("bitlk-aes-xts-128")).unwrap();
    let offsets = BitLockerVolume::open(&sound[..])
        .unwrap()
        .boot
        .metadata_offsets;
    assert_eq!(
        BitLockerVolume::open(&sound[..])
            .unwrap()
            .metadata
            .block_index,
        0
    );
    sound[offsets[0] as usize + 200] ^= 1;
    assert_eq!(
        BitLockerVolume::open(&sound[..])
            .unwrap()
            .metadata
            .block_index,
        1
    );
    sound[offsets[1] as usize + 200] ^= 1;
    sound[offsets[2] as usize + 200] ^= 1;
    let e = BitLockerVolume::open(&sound[..]).unwrap_err();
    assert!(e.to_string().contains("CRC-32"), "{e}");
}

/// A metadata block whose state says a conversion is under way (2: Windows was encrypting or
/// decrypting when it stopped; 3: encrypt-on-write) is refused by name; a paused one (5) opens,
/// and past its encrypted size the volume reads as it is on disk. The clear-key Windows volume,
/// its state (and encrypted size) edited in all three blocks and resealed.
#[test]
fn a_volume_in_mid_conversion_is_refused_and_a_paused_one_read() {
    let Some(archive) = archive("a_volume_in_mid_conversion_is_refused_and_a_paused_one_read")
    else {
        return;
    };
    let original = std::fs::read(archive.image("bitlk-aes-xts-128-clearkey-only")).unwrap();
    let offsets = BitLockerVolume::open(&original[..])
        .unwrap()
        .boot
        .metadata_offsets;
    let edited = |state: u16, encrypted_size: u64| {
        let mut v = original.clone();
        for &m in &offsets {
            let m = m as usize;
            v[m + 12..m + 14].copy_from_slice(&state.to_le_bytes());
            v[m + 16..m + 24].copy_from_slice(&encrypted_size.to_le_bytes());
            reseal_block(&mut v, m);
        }
        v
    };
    let size = original.len() as u64;
    for state in [2u16, 3] {
        let e = BitLockerVolume::open(&edited(state, size / 2)[..]).unwrap_err();
        assert!(
            matches!(e, BitLockerError::ConversionInProgress { state: s } if s == state),
            "{e}"
        );
        assert!(e.to_string().contains("manage-bde -resume"), "{e}");
    }
    let paused = edited(5, size / 2);
    let volume = BitLockerVolume::open(&paused[..]).unwrap();
    let view = volume
        .unlock(&paused[..], &UnlockKey::ClearKey, &mut |_, _| {})
        .unwrap();
    let at = size / 2 + 4096;
    let mut got = vec![0u8; 4096];
    view.read_at(at, &mut got).unwrap();
    assert_eq!(
        got,
        paused[at as usize..at as usize + 4096],
        "the clear tail"
    );
}
