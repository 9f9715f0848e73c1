//! Key stretching: SHA-256 chained 0x100000 times over (last hash, initial hash, salt, count).

use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// Rounds of SHA-256 BitLocker applies to a password or recovery key.
pub const STRETCH_ROUNDS: u32 = 0x10_0000;
/// How many rounds pass between two calls of the progress callback.
const PROGRESS_EVERY: u32 = 0x1_0000;

/// Progress of a long step, called with (done, total).
pub type Progress<'a> = &'a mut dyn FnMut(u32, u32);

/// The 32-byte key that unwraps a protector, from the first hash of its secret and its salt.
pub fn stretch(initial: &[u8; 32], salt: &[u8; 16], progress: Progress<'_>) -> Secret {
    // last hash (32) · initial hash (32) · salt (16) · count (8, little-endian)
    let mut state = zeroize::Zeroizing::new([0u8; 88]);
    state[32..64].copy_from_slice(initial);
    state[64..80].copy_from_slice(salt);
    for round in 0..STRETCH_ROUNDS {
        if round % PROGRESS_EVERY == 0 {
            progress(round, STRETCH_ROUNDS);
        }
        state[80..88].copy_from_slice(&(round as u64).to_le_bytes());
        let last = Sha256::digest(&state[..]);
        state[0..32].copy_from_slice(&last);
    }
    progress(STRETCH_ROUNDS, STRETCH_ROUNDS);
    Secret::new(state[0..32].to_vec())
}

/// The first hash of a recovery key (16 bytes): SHA-256 once.
pub fn recovery_initial_hash(recovery_key: &Secret) -> zeroize::Zeroizing<[u8; 32]> {
    zeroize::Zeroizing::new(Sha256::digest(recovery_key.expose()).into())
}

/// The first hash of a user password: SHA-256 twice over its UTF-16LE form.
pub fn password_initial_hash(password: &str) -> zeroize::Zeroizing<[u8; 32]> {
    let utf16: zeroize::Zeroizing<Vec<u8>> = zeroize::Zeroizing::new(
        password
            .encode_utf16()
            .flat_map(|unit| unit.to_le_bytes())
            .collect(),
    );
    let once = zeroize::Zeroizing::new(<[u8; 32]>::from(Sha256::digest(&utf16[..])));
    zeroize::Zeroizing::new(Sha256::digest(&once[..]).into())
}
