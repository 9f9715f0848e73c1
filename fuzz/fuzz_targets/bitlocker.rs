//! BitLocker volumes: the `-FVE-FS-` boot sector (and BitLocker To Go's), the three FVE metadata
//! blocks and their headers (version, sizes, offsets, encrypted size, relocated first sectors,
//! CRC-32 validation), the metadata entries and their nested values (VMK protectors, the FVEK,
//! stretch keys, AES-CCM blobs), then, with the clear key (a suspended volume: no key
//! stretching, so every run unlocks), the decrypted view and the re-encryption of patches.
//!
//! Input: a sparse file (`kaifuku_fuzz::Sparse`), the volume itself; flag bit 0 reseals each
//! metadata block's CRC-32 so that mutated fields get past it. Seeds are the Windows-made volumes
//! of the shared BitLocker test set (`tests/fuzz-seed.py`). Checked: opening
//! and unlocking never panic; the decrypted view reads at every probe; and patches on it, turned
//! into sector patches of the encrypted volume (refused when they touch BitLocker's own areas),
//! laid over the file and unlocked again from scratch, read back as the patch.
#![no_main]

use kaifuku_bitlocker::unlock::UnlockKey;
use kaifuku_bitlocker::BitLockerVolume;
use kaifuku_fuzz::Sparse;
use kaifuku_io::{Patch, PatchData, ReadAt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (flags, mut file) = Sparse::parse(data);
    if flags & 1 != 0 {
        kaifuku_fuzz::seal_fve(&mut file);
    }
    let Ok(volume) = BitLockerVolume::open(&file) else {
        return;
    };
    let _ = format!("{:?}", volume.metadata);
    let Ok(unlocked) = volume.unlock(&file, &UnlockKey::ClearKey, &mut |_, _| {}) else {
        return;
    };
    let size = unlocked.size();
    let s = unlocked.sector_size();
    if size < 4 * s {
        return;
    }
    let probes = [0, s, size / 3 / s * s, size / 2 / s * s, size - s];
    for &at in &probes {
        let mut b = vec![0u8; s as usize];
        let _ = unlocked.read_at(at, &mut b);
    }

    // Patches inside a sector, across two, and a whole sector, at the probes.
    let mut patches: Vec<Patch<()>> = Vec::new();
    for (i, &at) in probes.iter().enumerate() {
        let (offset, len) = match i % 3 {
            0 => (at + 7, 100),
            1 => (at + s - 50, 100.min(size - at - s + 50)),
            _ => (at, s),
        };
        if offset + len > size || patches.iter().any(|p| offset < p.end() + s && p.offset < offset + len + s) {
            continue;
        }
        patches.push(Patch {
            offset,
            data: PatchData::Bytes((0..len).map(|j| (j as u8) ^ (i as u8) ^ 0xA5).collect()),
            label: (),
        });
    }
    let Ok(sector_patches) = unlocked.encrypt_patches(&patches) else {
        return;
    };
    for p in &sector_patches {
        assert!(p.end() <= file.size(), "a sector patch leaves the volume");
        assert_eq!(p.offset % s, 0, "a sector patch is not sector-aligned");
        assert_eq!(p.len() % s, 0, "a sector patch is not whole sectors");
    }
    let written = Written {
        base: &file,
        patches: &sector_patches,
    };
    let again = BitLockerVolume::open(&written).expect("the written volume no longer opens");
    let unlocked = again
        .unlock(&written, &UnlockKey::ClearKey, &mut |_, _| {})
        .expect("the written volume no longer unlocks");
    for p in &patches {
        let mut got = vec![0u8; p.len() as usize];
        unlocked.read_at(p.offset, &mut got).expect("read back a patch");
        let mut want = vec![0u8; p.len() as usize];
        p.data.copy_to(0, &mut want);
        assert_eq!(got, want, "patch at {} does not read back", p.offset);
    }
});

/// The volume as it will be after the sector patches.
struct Written<'a, L> {
    base: &'a Sparse,
    patches: &'a [Patch<L>],
}

impl<L> ReadAt for Written<'_, L> {
    fn size(&self) -> u64 {
        self.base.size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.base.read_at(offset, buf)?;
        let end = offset + buf.len() as u64;
        for p in self.patches {
            let from = p.offset.max(offset);
            let to = p.end().min(end);
            if from < to {
                p.data.copy_to(
                    from - p.offset,
                    &mut buf[(from - offset) as usize..(to - offset) as usize],
                );
            }
        }
        Ok(())
    }
}
