//! Volume master key protectors: each holds the volume master key wrapped with a key that a
//! password, recovery password, startup key, TPM or nothing (clear key) gives.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::bytes::{array_at, u16_at, u32_at};
use crate::entry::{nested, value_type, Entry};
use crate::error::{BitLockerError, FveStructure};
use crate::guid::Guid;
use crate::secret::Secret;

/// How a protector's key is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectionType {
    /// The key is stored in the clear (protection suspended): no password needed.
    ClearKey,
    /// The TPM of the machine.
    Tpm,
    /// A startup key (`.BEK` file on a USB drive).
    StartupKey,
    /// TPM and a startup key.
    TpmAndStartupKey,
    /// TPM, PIN and a startup key.
    TpmAndPinAndStartupKey,
    /// TPM and a PIN.
    TpmAndPin,
    /// The 48-digit recovery password.
    RecoveryPassword,
    /// A smart card or certificate.
    SmartCard,
    /// A user password.
    Password,
    /// A protection type kaifuku does not know.
    Unknown(u16),
}

impl ProtectionType {
    /// The type for its on-disk code.
    pub fn from_code(code: u16) -> ProtectionType {
        match code {
            0x0000 => ProtectionType::ClearKey,
            0x0100 => ProtectionType::Tpm,
            0x0200 => ProtectionType::StartupKey,
            0x0300 => ProtectionType::TpmAndStartupKey,
            0x0400 => ProtectionType::TpmAndPinAndStartupKey,
            0x0500 => ProtectionType::TpmAndPin,
            0x0800 => ProtectionType::RecoveryPassword,
            0x1000 => ProtectionType::SmartCard,
            0x2000 => ProtectionType::Password,
            other => ProtectionType::Unknown(other),
        }
    }

    /// Whether kaifuku can use this kind offline with something the user types or picks.
    pub fn usable_offline(self) -> bool {
        matches!(
            self,
            ProtectionType::ClearKey
                | ProtectionType::StartupKey
                | ProtectionType::RecoveryPassword
                | ProtectionType::Password
        )
    }
}

impl fmt::Display for ProtectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtectionType::ClearKey => f.write_str("clear key"),
            ProtectionType::Tpm => f.write_str("TPM"),
            ProtectionType::StartupKey => f.write_str("startup key"),
            ProtectionType::TpmAndStartupKey => f.write_str("TPM and startup key"),
            ProtectionType::TpmAndPinAndStartupKey => f.write_str("TPM, PIN and startup key"),
            ProtectionType::TpmAndPin => f.write_str("TPM and PIN"),
            ProtectionType::RecoveryPassword => f.write_str("recovery password"),
            ProtectionType::SmartCard => f.write_str("smart card"),
            ProtectionType::Password => f.write_str("password"),
            ProtectionType::Unknown(code) => write!(f, "unknown protector {code:#06x}"),
        }
    }
}

/// A key encrypted with AES-CCM: nonce, MAC and ciphertext as stored.
#[derive(Clone)]
pub struct WrappedKey {
    /// The 12-byte nonce (a time and a counter).
    pub nonce: [u8; 12],
    /// The 16-byte CCM tag.
    pub tag: [u8; 16],
    /// The encrypted key entry.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.ciphertext.len())
    }
}

impl WrappedKey {
    pub(crate) fn from_entry(entry: &Entry) -> Result<WrappedKey, BitLockerError> {
        let v = &entry.value;
        match (array_at::<12>(v, 0), array_at::<16>(v, 12), v.get(28..)) {
            (Some(nonce), Some(tag), Some(ciphertext)) if !ciphertext.is_empty() => {
                Ok(WrappedKey {
                    nonce,
                    tag,
                    ciphertext: ciphertext.to_vec(),
                })
            }
            _ => Err(BitLockerError::damaged(
                FveStructure::MetadataEntry,
                None,
                "an AES-CCM key entry is too short",
            )),
        }
    }
}

/// One volume master key protector.
#[derive(Debug, Clone)]
pub struct Protector {
    /// Its identifier: the "Key ID" Windows shows next to a recovery password.
    pub id: Guid,
    /// What unlocks it.
    pub protection: ProtectionType,
    /// The salt of key stretching (passwords and recovery passwords).
    pub salt: Option<[u8; 16]>,
    /// The volume master key, wrapped.
    pub wrapped_vmk: Option<WrappedKey>,
    /// The key that unwraps the volume master key, stored in the clear (clear-key protectors).
    pub clear_key: Option<Secret>,
}

impl Protector {
    /// Reads a protector from its VMK entry.
    pub(crate) fn from_entry(entry: &Entry) -> Result<Protector, BitLockerError> {
        let v = &entry.value;
        let damaged =
            |d: &str| BitLockerError::damaged(FveStructure::MetadataEntry, None, d.to_string());
        let id =
            Guid(array_at::<16>(v, 0).ok_or_else(|| damaged("a protector entry is too short"))?);
        let protection = ProtectionType::from_code(
            u16_at(v, 26).ok_or_else(|| damaged("a protector entry is too short"))?,
        );
        let mut protector = Protector {
            id,
            protection,
            salt: None,
            wrapped_vmk: None,
            clear_key: None,
        };
        for part in nested(entry, 28, FveStructure::MetadataEntry)? {
            match part.value_type {
                value_type::STRETCH_KEY => {
                    protector.salt = Some(
                        array_at::<16>(&part.value, 4)
                            .ok_or_else(|| damaged("a stretch key entry is too short"))?,
                    );
                }
                // The first one holds the volume master key; a protector may keep more.
                value_type::AES_CCM_KEY if protector.wrapped_vmk.is_none() => {
                    protector.wrapped_vmk = Some(WrappedKey::from_entry(&part)?);
                }
                value_type::KEY => {
                    let key = part
                        .value
                        .get(4..)
                        .filter(|k| !k.is_empty())
                        .ok_or_else(|| damaged("a clear key entry is too short"))?;
                    let _method = u32_at(&part.value, 0);
                    protector.clear_key = Some(Secret::new(key.to_vec()));
                }
                _ => {}
            }
        }
        Ok(protector)
    }
}
