//! AES-CCM unwrapping of the volume master key and the full volume encryption key.

use aes::Aes256;
use ccm::aead::generic_array::GenericArray;
use ccm::aead::AeadInPlace;
use ccm::consts::{U12, U16};
use ccm::{Ccm, KeyInit};

use crate::bytes::u16_at;
use crate::entry::{value_type, HEADER_LEN};
use crate::protector::WrappedKey;
use crate::secret::Secret;

type Aes256Ccm = Ccm<Aes256, U16, U12>;

/// Why an unwrap failed: the key is wrong (the tag does not match) or the key entry inside is
/// malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnwrapFault {
    WrongKey,
    Malformed,
}

/// Decrypts `wrapped` with the 32-byte `key` and returns the key bytes of the entry inside
/// (after its header and 4-byte method).
pub(crate) fn unwrap_key(key: &Secret, wrapped: &WrappedKey) -> Result<Secret, UnwrapFault> {
    if key.expose().len() != 32 {
        return Err(UnwrapFault::WrongKey);
    }
    let cipher = Aes256Ccm::new(GenericArray::from_slice(key.expose()));
    let mut plain = Secret::new(wrapped.ciphertext.clone());
    let mut buffer = plain.expose().to_vec();
    let result = cipher.decrypt_in_place_detached(
        GenericArray::from_slice(&wrapped.nonce),
        &[],
        &mut buffer,
        GenericArray::from_slice(&wrapped.tag),
    );
    plain = Secret::new(buffer);
    result.map_err(|_| UnwrapFault::WrongKey)?;
    let bytes = plain.expose();
    let size = u16_at(bytes, 0).unwrap_or(0) as usize;
    let kind = u16_at(bytes, 4).unwrap_or(0);
    if size != bytes.len() || kind != value_type::KEY || size <= HEADER_LEN + 4 {
        return Err(UnwrapFault::Malformed);
    }
    Ok(Secret::new(bytes[HEADER_LEN + 4..].to_vec()))
}
