//! Unlocking: from what the user gives (recovery password, password, startup key, key list, or
//! nothing for a clear key) to the volume master key, then the full volume encryption key.

use std::fmt;

use crate::error::{BitLockerError, FveStructure};
use crate::key_list::KeyListEntry;
use crate::metadata::FveMetadata;
use crate::protector::{ProtectionType, Protector};
use crate::recovery_password::recovery_key;
use crate::secret::Secret;
use crate::startup_key::StartupKey;
use crate::stretch::{password_initial_hash, recovery_initial_hash, stretch, Progress};
use crate::unwrap::{unwrap_key, UnwrapFault};

/// What the user gives to unlock a volume. `Debug` never shows the secret.
#[derive(Clone)]
pub enum UnlockKey {
    /// The 48-digit recovery password (dashes or spaces between groups are fine).
    RecoveryPassword(String),
    /// A user password.
    Password(String),
    /// A startup key read from its `.BEK` file.
    StartupKey(StartupKey),
    /// Recovery passwords by protector GUID, as exported from Entra ID or Active Directory.
    KeyList(Vec<KeyListEntry>),
    /// No secret: the volume's clear key (protection suspended).
    ClearKey,
}

impl fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnlockKey::RecoveryPassword(_) => "UnlockKey::RecoveryPassword(<hidden>)",
            UnlockKey::Password(_) => "UnlockKey::Password(<hidden>)",
            UnlockKey::StartupKey(_) => "UnlockKey::StartupKey(<hidden>)",
            UnlockKey::KeyList(_) => "UnlockKey::KeyList(<hidden>)",
            UnlockKey::ClearKey => "UnlockKey::ClearKey",
        })
    }
}

impl Drop for UnlockKey {
    fn drop(&mut self) {
        match self {
            UnlockKey::RecoveryPassword(s) | UnlockKey::Password(s) => zeroize::Zeroize::zeroize(s),
            _ => {}
        }
    }
}

impl UnlockKey {
    /// The protector kind this key opens.
    pub fn protection(&self) -> ProtectionType {
        match self {
            UnlockKey::RecoveryPassword(_) | UnlockKey::KeyList(_) => {
                ProtectionType::RecoveryPassword
            }
            UnlockKey::Password(_) => ProtectionType::Password,
            UnlockKey::StartupKey(_) => ProtectionType::StartupKey,
            UnlockKey::ClearKey => ProtectionType::ClearKey,
        }
    }
}

fn available(metadata: &FveMetadata) -> String {
    let mut kinds: Vec<String> = Vec::new();
    for p in &metadata.protectors {
        let k = p.protection.to_string();
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds.join(", ")
}

/// The full volume encryption key for `key`, trying every protector of its kind.
pub(crate) fn unlock_fvek(
    metadata: &FveMetadata,
    key: &UnlockKey,
    progress: Progress<'_>,
) -> Result<Secret, BitLockerError> {
    let vmk = unlock_vmk(metadata, key, progress)?;
    unwrap_key(&vmk, &metadata.wrapped_fvek).map_err(|fault| {
        BitLockerError::damaged(
            FveStructure::MetadataEntry,
            None,
            match fault {
                UnwrapFault::WrongKey => {
                    "the volume key does not decrypt with the unlocked master key"
                }
                UnwrapFault::Malformed => "the decrypted volume key entry is malformed",
            },
        )
    })
}

fn unlock_vmk(
    metadata: &FveMetadata,
    key: &UnlockKey,
    progress: Progress<'_>,
) -> Result<Secret, BitLockerError> {
    let wanted = key.protection();
    let candidates: Vec<&Protector> = metadata
        .protectors
        .iter()
        .filter(|p| p.protection == wanted)
        .collect();
    if candidates.is_empty() {
        if !metadata
            .protectors
            .iter()
            .any(|p| p.protection.usable_offline())
        {
            return Err(BitLockerError::NeedsRecoveryPassword {
                available: available(metadata),
            });
        }
        return Err(BitLockerError::NoSuchProtector {
            wanted,
            available: available(metadata),
        });
    }
    let try_with = |p: &Protector, k: &Secret| -> Result<Option<Secret>, BitLockerError> {
        let Some(wrapped) = &p.wrapped_vmk else {
            return Ok(None);
        };
        match unwrap_key(k, wrapped) {
            Ok(vmk) => Ok(Some(vmk)),
            Err(UnwrapFault::WrongKey) => Ok(None),
            Err(UnwrapFault::Malformed) => Err(BitLockerError::damaged(
                FveStructure::MetadataEntry,
                None,
                format!(
                    "the decrypted master key of protector {} is malformed",
                    p.id
                ),
            )),
        }
    };
    let stretched = |p: &Protector, initial: &[u8; 32], progress: Progress<'_>| {
        p.salt.map(|salt| stretch(initial, &salt, progress))
    };
    match key {
        UnlockKey::RecoveryPassword(text) => {
            let rk = recovery_key(text).map_err(BitLockerError::RecoveryPassword)?;
            let initial = recovery_initial_hash(&rk);
            for p in &candidates {
                if let Some(k) = stretched(p, &initial, &mut *progress) {
                    if let Some(vmk) = try_with(p, &k)? {
                        return Ok(vmk);
                    }
                }
            }
        }
        UnlockKey::Password(text) => {
            let initial = password_initial_hash(text);
            for p in &candidates {
                if let Some(k) = stretched(p, &initial, &mut *progress) {
                    if let Some(vmk) = try_with(p, &k)? {
                        return Ok(vmk);
                    }
                }
            }
        }
        UnlockKey::StartupKey(startup) => {
            // The file names its protector; try that one first, then the others.
            let mut ordered = candidates.clone();
            ordered.sort_by_key(|p| p.id != startup.id);
            for p in ordered {
                if let Some(vmk) = try_with(p, &startup.key)? {
                    return Ok(vmk);
                }
            }
        }
        UnlockKey::KeyList(list) => {
            let matching: Vec<(&Protector, &KeyListEntry)> = candidates
                .iter()
                .filter_map(|p| list.iter().find(|e| e.id == p.id).map(|e| (*p, e)))
                .collect();
            if matching.is_empty() {
                return Err(BitLockerError::NotInKeyList {
                    ids: candidates.iter().map(|p| p.id).collect(),
                });
            }
            for (p, entry) in &matching {
                let rk = recovery_key(&entry.recovery_password)
                    .map_err(BitLockerError::RecoveryPassword)?;
                let initial = recovery_initial_hash(&rk);
                if let Some(k) = stretched(p, &initial, &mut *progress) {
                    if let Some(vmk) = try_with(p, &k)? {
                        return Ok(vmk);
                    }
                }
            }
            return Err(BitLockerError::WrongKey {
                kind: wanted,
                tried: matching.len(),
            });
        }
        UnlockKey::ClearKey => {
            for p in &candidates {
                if let Some(k) = &p.clear_key {
                    if let Some(vmk) = try_with(p, k)? {
                        return Ok(vmk);
                    }
                }
            }
        }
    }
    Err(BitLockerError::WrongKey {
        kind: wanted,
        tried: candidates.len(),
    })
}
