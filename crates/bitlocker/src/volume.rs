//! A BitLocker volume: its metadata read and checked, and once unlocked, the decrypted view as a
//! `ReadAt`, with the mapping of patches on that view to re-encrypted sectors of the volume.

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use kaifuku_io::{check_range, Patch, PatchData, ReadAt};
use serde::Serialize;

use crate::boot::FveBootSector;
use crate::cipher::SectorCipher;
use crate::error::{BitLockerError, FveStructure};
use crate::metadata::{FveMetadata, METADATA_AREA_LEN};
use crate::method::EncryptionMethod;
use crate::protector::ProtectionType;
use crate::stretch::Progress;
use crate::unlock::{unlock_fvek, UnlockKey};

/// A BitLocker volume whose metadata has been read and checked, not yet unlocked.
#[derive(Debug, Clone)]
pub struct BitLockerVolume {
    /// The boot sector.
    pub boot: FveBootSector,
    /// The metadata block in use.
    pub metadata: FveMetadata,
}

impl BitLockerVolume {
    /// Reads the boot sector and the first valid metadata block of `volume`.
    pub fn open<R: ReadAt + ?Sized>(volume: &R) -> Result<BitLockerVolume, BitLockerError> {
        let boot = FveBootSector::read(volume)?;
        let metadata = FveMetadata::read(volume, &boot)?;
        Ok(BitLockerVolume { boot, metadata })
    }

    /// Unlocks the volume read through `reader` (the same bytes `open` read) with `key`.
    /// `progress` is called during key stretching (a second or so per protector tried).
    pub fn unlock<R: ReadAt>(
        &self,
        reader: R,
        key: &UnlockKey,
        progress: Progress<'_>,
    ) -> Result<UnlockedVolume<R>, BitLockerError> {
        let decryptor = self.decryptor(reader.size(), key, progress)?;
        Ok(UnlockedVolume::new(reader, Arc::new(decryptor)))
    }

    /// The keys and layout that decrypt this volume (of `size` bytes), without a reader: kept
    /// once unlocked, so later readers of the same volume need no second key stretching.
    pub fn decryptor(
        &self,
        size: u64,
        key: &UnlockKey,
        progress: Progress<'_>,
    ) -> Result<VolumeDecryptor, BitLockerError> {
        let fvek = unlock_fvek(&self.metadata, key, progress)?;
        let sector_size = self.boot.bytes_per_sector as usize;
        let cipher = SectorCipher::new(self.metadata.method, &fvek, sector_size).map_err(|m| {
            BitLockerError::damaged(
                FveStructure::MetadataEntry,
                None,
                format!(
                    "the volume key is {} bytes, too short for {}",
                    m.len, self.metadata.method
                ),
            )
        })?;
        let layout = Layout::new(&self.metadata, sector_size as u64, size);
        Ok(VolumeDecryptor {
            cipher,
            layout,
            method: self.metadata.method,
            protection: key.protection(),
        })
    }
}

/// Where each sector of the decrypted view comes from.
#[derive(Debug, Clone)]
struct Layout {
    sector_size: u64,
    size: u64,
    relocated: Range<u64>,
    /// Regions that read as zeros and are never written: the three metadata areas and the
    /// relocated copy of the first sectors.
    reserved: Vec<Range<u64>>,
    encrypted_size: u64,
}

/// What a sector of the decrypted view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SectorSource {
    /// Encrypted, at this byte offset of the volume.
    Encrypted(u64),
    /// In the clear at the same offset (past the encrypted size).
    Clear,
    /// BitLocker's own: reads as zeros.
    Reserved,
}

impl Layout {
    fn new(metadata: &FveMetadata, sector_size: u64, size: u64) -> Layout {
        let relocated =
            metadata.relocated.offset..metadata.relocated.offset + metadata.relocated.len;
        let mut reserved: Vec<Range<u64>> = metadata
            .metadata_offsets
            .iter()
            .map(|o| *o..o + METADATA_AREA_LEN)
            .collect();
        reserved.push(relocated.clone());
        Layout {
            sector_size,
            size,
            relocated,
            reserved,
            encrypted_size: metadata.encrypted_size,
        }
    }

    fn source(&self, offset: u64) -> SectorSource {
        if offset < self.relocated.end - self.relocated.start {
            return SectorSource::Encrypted(self.relocated.start + offset);
        }
        if self.reserved.iter().any(|r| r.contains(&offset)) {
            return SectorSource::Reserved;
        }
        if offset >= self.encrypted_size {
            return SectorSource::Clear;
        }
        SectorSource::Encrypted(offset)
    }
}

/// What decrypts one unlocked volume: its sector cipher (holding the key) and layout.
pub struct VolumeDecryptor {
    cipher: SectorCipher,
    layout: Layout,
    method: EncryptionMethod,
    protection: ProtectionType,
}

impl VolumeDecryptor {
    /// How the volume's sectors are encrypted.
    pub fn method(&self) -> EncryptionMethod {
        self.method
    }

    /// The kind of protector that unlocked it.
    pub fn protection(&self) -> ProtectionType {
        self.protection
    }

    /// Size of the volume it decrypts.
    pub fn size(&self) -> u64 {
        self.layout.size
    }
}

impl fmt::Debug for VolumeDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VolumeDecryptor")
            .field("method", &self.method)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// The decrypted view of an unlocked BitLocker volume: same size as the volume; the first
/// sectors come from their relocated copy, BitLocker's metadata areas read as zeros, and past the
/// encrypted size the volume is read as it is.
pub struct UnlockedVolume<R> {
    reader: R,
    decryptor: Arc<VolumeDecryptor>,
}

impl<R> fmt::Debug for UnlockedVolume<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnlockedVolume")
            .field("decryptor", &self.decryptor)
            .finish_non_exhaustive()
    }
}

/// A patch on the volume that re-encrypts sectors changed in the decrypted view; it carries the
/// labels of the changes it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncryptedSectors<L> {
    /// The first sector changed, numbered in the decrypted view.
    pub first_sector: u64,
    /// How many sectors.
    pub sectors: u64,
    /// Whether these are the relocated copy of the volume's first sectors.
    pub relocated: bool,
    /// The changes to the decrypted view these sectors carry.
    pub inner: Vec<L>,
}

impl<L: fmt::Display> fmt::Display for EncryptedSectors<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BitLocker sectors {}..{}{} re-encrypted (",
            self.first_sector,
            self.first_sector + self.sectors,
            if self.relocated {
                " (relocated copy)"
            } else {
                ""
            }
        )?;
        for (i, l) in self.inner.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{l}")?;
        }
        f.write_str(")")
    }
}

impl<R: ReadAt> UnlockedVolume<R> {
    /// The decrypted view of `reader` (the encrypted volume `decryptor` was unlocked for).
    pub fn new(reader: R, decryptor: Arc<VolumeDecryptor>) -> UnlockedVolume<R> {
        UnlockedVolume { reader, decryptor }
    }

    /// What decrypts it.
    pub fn decryptor(&self) -> &Arc<VolumeDecryptor> {
        &self.decryptor
    }

    /// The encrypted volume below.
    pub fn inner(&self) -> &R {
        &self.reader
    }

    /// Bytes per sector.
    pub fn sector_size(&self) -> u64 {
        self.decryptor.layout.sector_size
    }

    /// Turns patches on the decrypted view into patches on the encrypted volume: every sector a
    /// patch touches is read, patched, encrypted where it lies and written whole. Patches that
    /// share a sector are merged into one. A patch touching BitLocker's metadata areas is refused.
    pub fn encrypt_patches<L: Clone>(
        &self,
        patches: &[Patch<L>],
    ) -> Result<Vec<Patch<EncryptedSectors<L>>>, BitLockerError> {
        let s = self.decryptor.layout.sector_size;
        let mut order: Vec<&Patch<L>> = patches.iter().filter(|p| !p.is_empty()).collect();
        order.sort_by_key(|p| p.offset);
        // Groups of patches whose sector ranges overlap.
        let mut groups: Vec<(Range<u64>, Vec<&Patch<L>>)> = Vec::new();
        for p in order {
            let sectors = p.offset / s..p.end().div_ceil(s);
            match groups.last_mut() {
                Some((range, members)) if sectors.start < range.end => {
                    range.end = range.end.max(sectors.end);
                    members.push(p);
                }
                _ => groups.push((sectors, vec![p])),
            }
        }
        let mut out = Vec::new();
        for (sectors, members) in groups {
            let start = sectors.start * s;
            let len = (sectors.end - sectors.start) * s;
            check_range(start, len as usize, self.decryptor.layout.size).map_err(
                BitLockerError::io("mapping a patch onto the encrypted volume"),
            )?;
            let mut plain = self
                .read_vec(start, len as usize)
                .map_err(BitLockerError::io("reading sectors to re-encrypt"))?;
            for p in &members {
                let at = (p.offset - start) as usize;
                p.data.copy_to(0, &mut plain[at..at + p.len() as usize]);
            }
            let inner: Vec<L> = members.iter().map(|p| p.label.clone()).collect();
            // Runs of sectors contiguous on disk become one patch each.
            let mut run: Option<(u64, u64, u64, Vec<u8>)> = None; // (first sector, disk offset, count, bytes)
            for (i, sector) in plain.chunks_mut(s as usize).enumerate() {
                let view_offset = start + i as u64 * s;
                let disk = match self.decryptor.layout.source(view_offset) {
                    SectorSource::Reserved => {
                        return Err(BitLockerError::WriteIntoMetadata {
                            offset: view_offset,
                        })
                    }
                    SectorSource::Clear => view_offset,
                    SectorSource::Encrypted(at) => {
                        self.decryptor.cipher.encrypt_sector(sector, at);
                        at
                    }
                };
                match &mut run {
                    Some((_, at, count, bytes)) if *at + *count * s == disk => {
                        *count += 1;
                        bytes.extend_from_slice(sector);
                    }
                    _ => {
                        if let Some(done) = run.take() {
                            out.push(self.sector_patch(done, &inner));
                        }
                        run = Some((view_offset / s, disk, 1, sector.to_vec()));
                    }
                }
            }
            if let Some(done) = run.take() {
                out.push(self.sector_patch(done, &inner));
            }
        }
        Ok(out)
    }

    fn sector_patch<L: Clone>(
        &self,
        (first_sector, disk, count, bytes): (u64, u64, u64, Vec<u8>),
        inner: &[L],
    ) -> Patch<EncryptedSectors<L>> {
        Patch {
            offset: disk,
            data: PatchData::Bytes(bytes),
            label: EncryptedSectors {
                first_sector,
                sectors: count,
                relocated: disk != first_sector * self.decryptor.layout.sector_size,
                inner: inner.to_vec(),
            },
        }
    }

    /// Decrypts in place sectors read from `disk_offset` for the view at `view_offset`.
    fn decode(&self, view_offset: u64, sectors: &mut [u8]) -> io::Result<()> {
        let s = self.decryptor.layout.sector_size;
        for (i, sector) in sectors.chunks_mut(s as usize).enumerate() {
            let at = view_offset + i as u64 * s;
            match self.decryptor.layout.source(at) {
                SectorSource::Reserved => sector.fill(0),
                SectorSource::Clear => {}
                SectorSource::Encrypted(disk) if disk == at => {
                    self.decryptor.cipher.decrypt_sector(sector, disk)
                }
                SectorSource::Encrypted(disk) => {
                    self.reader.read_at(disk, sector)?;
                    self.decryptor.cipher.decrypt_sector(sector, disk);
                }
            }
        }
        Ok(())
    }
}

impl<R: ReadAt> ReadAt for UnlockedVolume<R> {
    fn size(&self) -> u64 {
        self.decryptor.layout.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size())?;
        if buf.is_empty() {
            return Ok(());
        }
        let s = self.decryptor.layout.sector_size;
        let first = offset / s * s;
        let end = (offset + buf.len() as u64).div_ceil(s) * s;
        let end = end.min(self.decryptor.layout.size / s * s).max(first);
        // Whole sectors covering the request; a partial last sector of an odd-sized volume is
        // never part of BitLocker's encrypted area and is read as it is.
        if first == offset && end == offset + buf.len() as u64 {
            self.reader.read_at(offset, buf)?;
            return self.decode(offset, buf);
        }
        let mut sectors = vec![0u8; (end - first) as usize];
        self.reader.read_at(first, &mut sectors)?;
        self.decode(first, &mut sectors)?;
        let from = (offset - first) as usize;
        let available = sectors.len().saturating_sub(from).min(buf.len());
        buf[..available].copy_from_slice(&sectors[from..from + available]);
        if available < buf.len() {
            let tail = offset + available as u64;
            self.reader.read_at(tail, &mut buf[available..])?;
        }
        Ok(())
    }
}
