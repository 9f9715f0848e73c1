//! BitLocker volumes, read and written without Windows: the `-FVE-FS-` boot sector, the three
//! FVE metadata blocks and their entries, unlocking with a recovery password, user password,
//! startup key (`.BEK`), key list or clear key, and the decrypted view of the volume as a
//! [`kaifuku_io::ReadAt`], whose patches map back to re-encrypted whole sectors.
//!
//! Pure like the rest of the core: no files, no clock; everything is read through `ReadAt`.
//! Key material lives in [`Secret`]s, zeroed when dropped and never printed.

#![forbid(unsafe_code)]

pub mod boot;
mod bytes;
pub mod cipher;
mod entry;
pub mod error;
pub mod guid;
pub mod key_list;
pub mod metadata;
pub mod method;
pub mod protector;
pub mod recovery_password;
pub mod secret;
pub mod startup_key;
pub mod stretch;
pub mod unlock;
mod unwrap;
pub mod volume;

pub use boot::{is_bitlocker, FveBootSector};
pub use error::{BitLockerError, FveStructure, RecoveryPasswordFault};
pub use guid::Guid;
pub use key_list::{parse_key_list, KeyListEntry};
pub use metadata::{FveMetadata, RelocatedSectors};
pub use method::EncryptionMethod;
pub use protector::{ProtectionType, Protector};
pub use recovery_password::{check_typed_groups, recovery_key};
pub use secret::Secret;
pub use startup_key::StartupKey;
pub use unlock::UnlockKey;
pub use volume::{BitLockerVolume, EncryptedSectors, UnlockedVolume, VolumeDecryptor};
