//! The encryption methods BitLocker uses for sectors.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How the sectors of a volume are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncryptionMethod {
    /// AES-CBC, 128-bit key, with the Elephant diffuser (Windows Vista and 7 default).
    AesCbc128Elephant,
    /// AES-CBC, 256-bit key, with the Elephant diffuser.
    AesCbc256Elephant,
    /// AES-CBC, 128-bit key (Windows 8 default).
    AesCbc128,
    /// AES-CBC, 256-bit key.
    AesCbc256,
    /// AES-XTS, 128-bit keys (Windows 10 1511 and later default).
    AesXts128,
    /// AES-XTS, 256-bit keys.
    AesXts256,
}

impl EncryptionMethod {
    /// The method for its on-disk code, if known.
    pub fn from_code(code: u16) -> Option<EncryptionMethod> {
        Some(match code {
            0x8000 => EncryptionMethod::AesCbc128Elephant,
            0x8001 => EncryptionMethod::AesCbc256Elephant,
            0x8002 => EncryptionMethod::AesCbc128,
            0x8003 => EncryptionMethod::AesCbc256,
            0x8004 => EncryptionMethod::AesXts128,
            0x8005 => EncryptionMethod::AesXts256,
            _ => return None,
        })
    }
}

impl fmt::Display for EncryptionMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncryptionMethod::AesCbc128Elephant => "AES-CBC 128-bit with Elephant diffuser",
            EncryptionMethod::AesCbc256Elephant => "AES-CBC 256-bit with Elephant diffuser",
            EncryptionMethod::AesCbc128 => "AES-CBC 128-bit",
            EncryptionMethod::AesCbc256 => "AES-CBC 256-bit",
            EncryptionMethod::AesXts128 => "AES-XTS 128-bit",
            EncryptionMethod::AesXts256 => "AES-XTS 256-bit",
        })
    }
}
