//! Sector encryption: AES-XTS (tweak: the sector number), AES-CBC (IV: the sector's byte offset
//! encrypted with the key) and AES-CBC with the Elephant diffuser (a sector key from the tweak
//! key XORed in, then two diffusers, before CBC).

use aes::cipher::{
    block_padding::NoPadding, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit,
};
use aes::{Aes128, Aes256};
use xts_mode::Xts128;

use crate::method::EncryptionMethod;
use crate::secret::Secret;

/// An AES key of either size.
#[derive(Clone)]
enum AesKey {
    Aes128(Box<Aes128>),
    Aes256(Box<Aes256>),
}

impl AesKey {
    fn new(key: &[u8]) -> AesKey {
        if key.len() == 16 {
            AesKey::Aes128(Box::new(Aes128::new_from_slice(key).expect("16-byte key")))
        } else {
            AesKey::Aes256(Box::new(Aes256::new_from_slice(key).expect("32-byte key")))
        }
    }

    fn encrypt_block(&self, block: &mut [u8; 16]) {
        let b = aes::Block::from_mut_slice(block);
        match self {
            AesKey::Aes128(k) => k.encrypt_block(b),
            AesKey::Aes256(k) => k.encrypt_block(b),
        }
    }
}

enum Mode {
    Xts128(Box<Xts128<Aes128>>),
    Xts256(Box<Xts128<Aes256>>),
    Cbc(Box<CbcKeys>),
}

struct CbcKeys {
    key: Secret,
    iv_key: AesKey,
    tweak: Option<AesKey>,
}

/// Encrypts and decrypts whole sectors of one volume with its full volume encryption key.
pub struct SectorCipher {
    mode: Mode,
    sector_size: usize,
}

impl std::fmt::Debug for SectorCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SectorCipher({} bytes per sector)", self.sector_size)
    }
}

/// Why a key does not fit the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyLengthMismatch {
    pub len: usize,
}

impl SectorCipher {
    /// A cipher for `method` with the decrypted full volume encryption key `fvek`.
    pub(crate) fn new(
        method: EncryptionMethod,
        fvek: &Secret,
        sector_size: usize,
    ) -> Result<SectorCipher, KeyLengthMismatch> {
        let k = fvek.expose();
        let short = || KeyLengthMismatch { len: k.len() };
        let mode = match method {
            EncryptionMethod::AesXts128 => {
                let k = k.get(..32).ok_or_else(short)?;
                Mode::Xts128(Box::new(Xts128::new(
                    Aes128::new_from_slice(&k[..16]).map_err(|_| short())?,
                    Aes128::new_from_slice(&k[16..32]).map_err(|_| short())?,
                )))
            }
            EncryptionMethod::AesXts256 => {
                let k = k.get(..64).ok_or_else(short)?;
                Mode::Xts256(Box::new(Xts128::new(
                    Aes256::new_from_slice(&k[..32]).map_err(|_| short())?,
                    Aes256::new_from_slice(&k[32..64]).map_err(|_| short())?,
                )))
            }
            EncryptionMethod::AesCbc128 | EncryptionMethod::AesCbc256 => {
                let len = if method == EncryptionMethod::AesCbc128 {
                    16
                } else {
                    32
                };
                let key = k.get(..len).ok_or_else(short)?;
                Mode::Cbc(Box::new(CbcKeys {
                    key: Secret::new(key.to_vec()),
                    iv_key: AesKey::new(key),
                    tweak: None,
                }))
            }
            EncryptionMethod::AesCbc128Elephant | EncryptionMethod::AesCbc256Elephant => {
                let len = if method == EncryptionMethod::AesCbc128Elephant {
                    16
                } else {
                    32
                };
                let key = k.get(..len).ok_or_else(short)?;
                let tweak = k.get(32..32 + len).ok_or_else(short)?;
                Mode::Cbc(Box::new(CbcKeys {
                    key: Secret::new(key.to_vec()),
                    iv_key: AesKey::new(key),
                    tweak: Some(AesKey::new(tweak)),
                }))
            }
        };
        Ok(SectorCipher { mode, sector_size })
    }

    /// Bytes per sector.
    pub fn sector_size(&self) -> usize {
        self.sector_size
    }

    /// Decrypts one sector in place; `offset` is its byte offset in the volume (where it lies on
    /// disk, which for the relocated first sectors is their copy's offset).
    pub fn decrypt_sector(&self, sector: &mut [u8], offset: u64) {
        debug_assert_eq!(sector.len(), self.sector_size);
        match &self.mode {
            Mode::Xts128(x) => x.decrypt_sector(sector, self.xts_tweak(offset)),
            Mode::Xts256(x) => x.decrypt_sector(sector, self.xts_tweak(offset)),
            Mode::Cbc(keys) => {
                let CbcKeys { key, iv_key, tweak } = keys.as_ref();
                let iv = cbc_iv(iv_key, offset);
                cbc_decrypt(key, &iv, sector);
                if let Some(tweak) = tweak {
                    diffuser_b_decrypt(sector);
                    diffuser_a_decrypt(sector);
                    xor_sector_key(tweak, offset, sector);
                }
            }
        }
    }

    /// Encrypts one sector in place: the inverse of [`SectorCipher::decrypt_sector`].
    pub fn encrypt_sector(&self, sector: &mut [u8], offset: u64) {
        debug_assert_eq!(sector.len(), self.sector_size);
        match &self.mode {
            Mode::Xts128(x) => x.encrypt_sector(sector, self.xts_tweak(offset)),
            Mode::Xts256(x) => x.encrypt_sector(sector, self.xts_tweak(offset)),
            Mode::Cbc(keys) => {
                let CbcKeys { key, iv_key, tweak } = keys.as_ref();
                if let Some(tweak) = tweak {
                    xor_sector_key(tweak, offset, sector);
                    diffuser_a_encrypt(sector);
                    diffuser_b_encrypt(sector);
                }
                let iv = cbc_iv(iv_key, offset);
                cbc_encrypt(key, &iv, sector);
            }
        }
    }

    fn xts_tweak(&self, offset: u64) -> [u8; 16] {
        ((offset / self.sector_size as u64) as u128).to_le_bytes()
    }
}

/// The CBC IV of the sector at `offset`: its byte offset, little-endian in a block, encrypted.
fn cbc_iv(key: &AesKey, offset: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&offset.to_le_bytes());
    key.encrypt_block(&mut iv);
    iv
}

fn cbc_decrypt(key: &Secret, iv: &[u8; 16], sector: &mut [u8]) {
    let k = key.expose();
    // Sector sizes are multiples of the block size, so no padding is ever needed.
    if k.len() == 16 {
        let _ = cbc::Decryptor::<Aes128>::new_from_slices(k, iv)
            .expect("key and IV sizes")
            .decrypt_padded_mut::<NoPadding>(sector);
    } else {
        let _ = cbc::Decryptor::<Aes256>::new_from_slices(k, iv)
            .expect("key and IV sizes")
            .decrypt_padded_mut::<NoPadding>(sector);
    }
}

fn cbc_encrypt(key: &Secret, iv: &[u8; 16], sector: &mut [u8]) {
    let k = key.expose();
    let len = sector.len();
    if k.len() == 16 {
        let _ = cbc::Encryptor::<Aes128>::new_from_slices(k, iv)
            .expect("key and IV sizes")
            .encrypt_padded_mut::<NoPadding>(sector, len);
    } else {
        let _ = cbc::Encryptor::<Aes256>::new_from_slices(k, iv)
            .expect("key and IV sizes")
            .encrypt_padded_mut::<NoPadding>(sector, len);
    }
}

/// XORs the Elephant sector key (the sector's byte offset encrypted with the tweak key, twice:
/// the second time with 0x80 in the last byte) over the whole sector.
fn xor_sector_key(tweak: &AesKey, offset: u64, sector: &mut [u8]) {
    let mut first = [0u8; 16];
    first[..8].copy_from_slice(&offset.to_le_bytes());
    let mut second = first;
    second[15] = 0x80;
    tweak.encrypt_block(&mut first);
    tweak.encrypt_block(&mut second);
    let mut sector_key = [0u8; 32];
    sector_key[..16].copy_from_slice(&first);
    sector_key[16..].copy_from_slice(&second);
    for chunk in sector.chunks_mut(32) {
        for (b, k) in chunk.iter_mut().zip(sector_key.iter()) {
            *b ^= k;
        }
    }
}

const DIFFUSER_A_ROTATIONS: [u32; 4] = [9, 0, 13, 0];
const DIFFUSER_B_ROTATIONS: [u32; 4] = [0, 10, 0, 25];
const DIFFUSER_A_CYCLES: usize = 5;
const DIFFUSER_B_CYCLES: usize = 3;

fn words(sector: &[u8]) -> Vec<u32> {
    sector
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .collect()
}

fn store_words(sector: &mut [u8], d: &[u32]) {
    for (chunk, w) in sector.chunks_exact_mut(4).zip(d) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
}

fn diffuser_a_decrypt(sector: &mut [u8]) {
    let mut d = words(sector);
    let n = d.len();
    for _ in 0..DIFFUSER_A_CYCLES {
        for i in 0..n {
            let mix =
                d[(i + n - 2) % n] ^ d[(i + n - 5) % n].rotate_left(DIFFUSER_A_ROTATIONS[i % 4]);
            d[i] = d[i].wrapping_add(mix);
        }
    }
    store_words(sector, &d);
}

fn diffuser_a_encrypt(sector: &mut [u8]) {
    let mut d = words(sector);
    let n = d.len();
    for _ in 0..DIFFUSER_A_CYCLES {
        for i in (0..n).rev() {
            let mix =
                d[(i + n - 2) % n] ^ d[(i + n - 5) % n].rotate_left(DIFFUSER_A_ROTATIONS[i % 4]);
            d[i] = d[i].wrapping_sub(mix);
        }
    }
    store_words(sector, &d);
}

fn diffuser_b_decrypt(sector: &mut [u8]) {
    let mut d = words(sector);
    let n = d.len();
    for _ in 0..DIFFUSER_B_CYCLES {
        for i in 0..n {
            let mix = d[(i + 2) % n] ^ d[(i + 5) % n].rotate_left(DIFFUSER_B_ROTATIONS[i % 4]);
            d[i] = d[i].wrapping_add(mix);
        }
    }
    store_words(sector, &d);
}

fn diffuser_b_encrypt(sector: &mut [u8]) {
    let mut d = words(sector);
    let n = d.len();
    for _ in 0..DIFFUSER_B_CYCLES {
        for i in (0..n).rev() {
            let mix = d[(i + 2) % n] ^ d[(i + 5) % n].rotate_left(DIFFUSER_B_ROTATIONS[i % 4]);
            d[i] = d[i].wrapping_sub(mix);
        }
    }
    store_words(sector, &d);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_round_trips_a_sector() {
        let key = Secret::new((0u8..64).collect());
        for method in [
            EncryptionMethod::AesXts128,
            EncryptionMethod::AesXts256,
            EncryptionMethod::AesCbc128,
            EncryptionMethod::AesCbc256,
            EncryptionMethod::AesCbc128Elephant,
            EncryptionMethod::AesCbc256Elephant,
        ] {
            for size in [512usize, 4096] {
                let c = SectorCipher::new(method, &key, size).unwrap();
                let plain: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
                let mut s = plain.clone();
                c.encrypt_sector(&mut s, 0x1234 * size as u64);
                assert_ne!(s, plain, "{method}");
                c.decrypt_sector(&mut s, 0x1234 * size as u64);
                assert_eq!(s, plain, "{method} {size}");
            }
        }
    }
}
