//! BitLocker volumes inside a disk: unlocked with the keys the user gave, read decrypted by
//! everything above (inspect, plan, verify see NTFS), and the plan's patches on a decrypted
//! volume mapped back to re-encrypted whole sectors of the disk.
//!
//! The layer sits between the partition table and NTFS: [`DecryptedDisk`] is the virtual disk
//! with each unlocked BitLocker partition replaced by its decrypted view, at the same offsets, so
//! the NTFS code does not know it is there.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use kaifuku_bitlocker::{
    is_bitlocker, BitLockerError, BitLockerVolume, EncryptedSectors, UnlockKey, UnlockedVolume,
    VolumeDecryptor,
};
use kaifuku_io::{check_range, Patch, ReadAt, Slice};
use kaifuku_partition::PartitionTable;

use crate::vocabulary::BitLockerProblem;

/// The keys a user gave for the BitLocker volumes of one image, tried in order on each volume.
/// `Debug` never shows them.
#[derive(Clone, Default)]
pub struct VolumeKeys {
    keys: Vec<UnlockKey>,
}

impl std::fmt::Debug for VolumeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VolumeKeys({} key(s))", self.keys.len())
    }
}

impl VolumeKeys {
    /// No key: BitLocker volumes are reported as needing one (a clear-key volume is still
    /// unlocked, since that needs no secret).
    pub fn none() -> VolumeKeys {
        VolumeKeys::default()
    }

    /// These keys, tried in this order.
    pub fn new(keys: Vec<UnlockKey>) -> VolumeKeys {
        VolumeKeys { keys }
    }

    /// Whether the user gave no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What became of one BitLocker partition.
pub(crate) type UnlockOutcome = Result<Arc<VolumeDecryptor>, BitLockerProblem>;

/// Told how far key stretching has got, as (rounds done, rounds in all), again for each
/// protector tried: a front end shows it while a key is tried (a second or more per protector).
pub type UnlockProgress = Box<dyn FnMut(u32, u32)>;

/// Unlocks the BitLocker partitions of one disk and remembers the result, so inspect and plan
/// stretch each key once. Verification builds a fresh one and unlocks again.
#[derive(Default)]
pub struct Unlocker {
    keys: VolumeKeys,
    /// By partition start offset.
    outcomes: BTreeMap<u64, UnlockOutcome>,
    /// Told of key stretching's progress, when a front end asked.
    progress: Option<UnlockProgress>,
}

impl std::fmt::Debug for Unlocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlocker")
            .field("keys", &self.keys)
            .field("outcomes", &self.outcomes)
            .finish_non_exhaustive()
    }
}

impl Unlocker {
    /// An unlocker that will try `keys`.
    pub fn new(keys: VolumeKeys) -> Unlocker {
        Unlocker {
            keys,
            outcomes: BTreeMap::new(),
            progress: None,
        }
    }

    /// Tells `progress` how far key stretching has got whenever a key is tried from now on.
    pub fn set_progress(&mut self, progress: UnlockProgress) {
        self.progress = Some(progress);
    }

    /// Unlocks every BitLocker partition of `table` on `disk` not tried before.
    pub(crate) fn unlock_table<D: ReadAt + Copy>(&mut self, disk: D, table: &PartitionTable) {
        for p in table.partitions.iter().filter(|p| !p.container) {
            if self.outcomes.contains_key(&p.start) {
                continue;
            }
            let Ok(view) = p.view(disk) else { continue };
            let mut sector = [0u8; 512];
            if view.size() < 512 || view.read_at(0, &mut sector).is_err() || !is_bitlocker(&sector)
            {
                continue;
            }
            let mut silent = |_: u32, _: u32| {};
            let progress: &mut dyn FnMut(u32, u32) = match &mut self.progress {
                Some(p) => p.as_mut(),
                None => &mut silent,
            };
            if let Some(outcome) = unlock_one(&self.keys, &view, progress) {
                self.outcomes.insert(p.start, outcome);
            }
        }
    }
}

/// Unlocks one BitLocker volume with `keys`. `None` when no key was given and the volume has no
/// clear key: the caller reports that a key is needed, as before any unlocking existed.
fn unlock_one<R: ReadAt>(
    keys: &VolumeKeys,
    view: &R,
    progress: &mut dyn FnMut(u32, u32),
) -> Option<UnlockOutcome> {
    let volume = match BitLockerVolume::open(view) {
        Ok(v) => v,
        Err(e) if keys.is_empty() => {
            // Without a key, a volume whose metadata does not read is only "encrypted".
            let _ = e;
            return None;
        }
        Err(e) => return Some(Err(BitLockerProblem::from(&e))),
    };
    let clear_key = [UnlockKey::ClearKey];
    let tried: &[UnlockKey] = if keys.is_empty() {
        let has_clear_key = volume
            .metadata
            .protectors
            .iter()
            .any(|p| p.protection == kaifuku_bitlocker::ProtectionType::ClearKey);
        if !has_clear_key {
            return None;
        }
        &clear_key
    } else {
        &keys.keys
    };
    let mut first_error = None;
    for key in tried {
        match volume.decryptor(view.size(), key, progress) {
            Ok(d) => return Some(Ok(Arc::new(d))),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map(|e| Err(BitLockerProblem::from(&e)))
}

impl Unlocker {
    /// What happened to the BitLocker partition starting at `offset`, if it was tried.
    pub(crate) fn outcome(&self, offset: u64) -> Option<&UnlockOutcome> {
        self.outcomes.get(&offset)
    }

    /// `disk` with every unlocked partition read decrypted.
    pub(crate) fn decrypted<D: ReadAt + Copy>(&self, disk: D) -> DecryptedDisk<D> {
        let volumes = self
            .outcomes
            .iter()
            .filter_map(|(start, o)| {
                let d = o.as_ref().ok()?;
                let slice = Slice::new(disk, *start, d.size()).ok()?;
                Some((*start, UnlockedVolume::new(slice, Arc::clone(d))))
            })
            .collect();
        DecryptedDisk { disk, volumes }
    }
}

impl From<&BitLockerError> for BitLockerProblem {
    fn from(e: &BitLockerError) -> BitLockerProblem {
        match e {
            BitLockerError::RecoveryPassword(fault) => {
                BitLockerProblem::RecoveryPassword { fault: *fault }
            }
            BitLockerError::WrongKey { kind, tried } => BitLockerProblem::WrongKey {
                protection: *kind,
                tried: *tried,
            },
            BitLockerError::NoSuchProtector { wanted, available } => {
                BitLockerProblem::NoSuchProtector {
                    wanted: *wanted,
                    available: available.clone(),
                }
            }
            BitLockerError::NeedsRecoveryPassword { available } => {
                BitLockerProblem::NeedsRecoveryPassword {
                    available: available.clone(),
                }
            }
            BitLockerError::NotInKeyList { ids } => BitLockerProblem::NotInKeyList {
                ids: ids.iter().map(|g| g.to_string()).collect(),
            },
            BitLockerError::EncryptOnWrite => BitLockerProblem::EncryptOnWrite,
            BitLockerError::UnknownMethod(_)
            | BitLockerError::UnsupportedVersion(_)
            | BitLockerError::ConversionInProgress { .. } => BitLockerProblem::Unsupported {
                detail: e.to_string(),
            },
            BitLockerError::WriteIntoMetadata { offset } => {
                BitLockerProblem::WriteIntoMetadata { offset: *offset }
            }
            BitLockerError::Io { .. } => BitLockerProblem::ReadFailed {
                detail: e.to_string(),
            },
            BitLockerError::NotBitLocker
            | BitLockerError::Damaged { .. }
            | BitLockerError::NoValidMetadata { .. }
            | BitLockerError::KeyListLine { .. } => BitLockerProblem::Damaged {
                detail: e.to_string(),
            },
        }
    }
}

/// A virtual disk whose unlocked BitLocker partitions read decrypted, at the same offsets.
pub struct DecryptedDisk<D> {
    disk: D,
    /// By start offset, not overlapping (partitions that overlap are refused before a fix).
    volumes: Vec<(u64, UnlockedVolume<Slice<D>>)>,
}

impl<D: ReadAt + Copy> DecryptedDisk<D> {
    /// Whether any volume is read decrypted.
    pub fn any_unlocked(&self) -> bool {
        !self.volumes.is_empty()
    }

    /// The (start, end) byte ranges read decrypted.
    pub fn volume_ranges(&self) -> Vec<(u64, u64)> {
        self.volumes
            .iter()
            .map(|(start, v)| (*start, start + v.size()))
            .collect()
    }

    /// Splits `patches` of the decrypted disk into those outside every BitLocker volume (kept as
    /// they are) and, for each unlocked volume they touch, its sectors re-encrypted, as patches
    /// of the disk.
    #[allow(clippy::type_complexity)]
    pub fn encrypt_patches<L: Clone>(
        &self,
        patches: &[Patch<L>],
    ) -> Result<(Vec<Patch<L>>, Vec<Patch<EncryptedSectors<L>>>), BitLockerProblem> {
        let mut clear = Vec::new();
        let mut per_volume: Vec<Vec<Patch<L>>> = vec![Vec::new(); self.volumes.len()];
        for p in patches {
            let inside = self
                .volumes
                .iter()
                .position(|(start, v)| p.offset < start + v.size() && p.end() > *start);
            match inside {
                Some(i) => {
                    let (start, v) = &self.volumes[i];
                    if p.offset < *start || p.end() > start + v.size() {
                        return Err(BitLockerProblem::WriteIntoMetadata { offset: p.offset });
                    }
                    let mut relative = p.clone();
                    relative.offset -= start;
                    per_volume[i].push(relative);
                }
                None => clear.push(p.clone()),
            }
        }
        let mut encrypted = Vec::new();
        for (i, relative) in per_volume.iter().enumerate() {
            if relative.is_empty() {
                continue;
            }
            let (start, v) = &self.volumes[i];
            for mut p in v
                .encrypt_patches(relative)
                .map_err(|e| BitLockerProblem::from(&e))?
            {
                p.offset += start;
                encrypted.push(p);
            }
        }
        Ok((clear, encrypted))
    }
}

impl<D: ReadAt + Copy> ReadAt for DecryptedDisk<D> {
    fn size(&self) -> u64 {
        self.disk.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size())?;
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        while pos < end {
            let here = &mut buf[(pos - offset) as usize..];
            // The volume holding `pos`, or the next one starting before `end`.
            let hit = self
                .volumes
                .iter()
                .find(|(start, v)| pos >= *start && pos < start + v.size());
            if let Some((start, v)) = hit {
                let n = ((start + v.size()).min(end) - pos) as usize;
                v.read_at(pos - start, &mut here[..n])?;
                pos += n as u64;
                continue;
            }
            let next = self
                .volumes
                .iter()
                .map(|(start, _)| *start)
                .filter(|s| *s > pos && *s < end)
                .min()
                .unwrap_or(end);
            let n = (next - pos) as usize;
            self.disk.read_at(pos, &mut here[..n])?;
            pos += n as u64;
        }
        Ok(())
    }
}
