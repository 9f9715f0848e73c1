//! Every BitLocker volume of the Windows-made test set unlocked with every protector it has; the
//! SHA-256 of the whole decrypted view must equal the one images.conf lists (computed there from
//! an independent implementation's decrypted device).

mod common;

use common::{archive, fact, FileReader};
use kaifuku_bitlocker::{BitLockerError, BitLockerVolume, StartupKey, UnlockKey};
use kaifuku_io::ReadAt;
use sha2::{Digest, Sha256};

fn sha256_of(view: &impl ReadAt) -> String {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < view.size() {
        let n = buf.len().min((view.size() - at) as usize);
        view.read_at(at, &mut buf[..n]).unwrap();
        hash.update(&buf[..n]);
        at += n as u64;
    }
    format!("{:x}", hash.finalize())
}

/// The keys an image lists, each with a name for the failure message.
fn keys_of(dir: &std::path::Path, facts: &common::ImageFacts) -> Vec<(String, UnlockKey)> {
    let mut keys = Vec::new();
    for rp in ["RP", "RP2"] {
        if let Some(v) = fact(facts, rp) {
            keys.push((rp.to_string(), UnlockKey::RecoveryPassword(v.to_string())));
        }
    }
    if let Some(v) = fact(facts, "PW") {
        keys.push(("PW".into(), UnlockKey::Password(v.to_string())));
    }
    if let Some(id) = fact(facts, "SK_VMK_GUID") {
        let bek = dir.join(format!("{}.BEK", id.to_uppercase()));
        let key = StartupKey::parse(&std::fs::read(&bek).unwrap()).unwrap();
        assert_eq!(key.id.to_string(), id.to_uppercase());
        keys.push(("SK".into(), UnlockKey::StartupKey(key)));
    }
    if fact(facts, "CLEARKEY_VMK_GUID").is_some() {
        keys.push(("CLEARKEY".into(), UnlockKey::ClearKey));
    }
    keys
}

#[test]
fn every_image_decrypts_with_every_protector_to_the_listed_sha256() {
    let Some(archive) = archive("every_image_decrypts_with_every_protector_to_the_listed_sha256")
    else {
        return;
    };
    let only = std::env::var("KAIFUKU_BITLK_IMAGE").ok();
    let mut checked = 0;
    let mut refused = 0;
    for (name, facts) in &archive.images {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let reader = FileReader::open(&archive.image(name));
        let volume = match BitLockerVolume::open(&reader) {
            // Volumes still converting (their boot sector carries the encrypt-on-write
            // identifier, as dislocker-metadata reports too) are refused, not guessed at.
            Err(BitLockerError::EncryptOnWrite)
                if name.contains("eow") || name.contains("partially") =>
            {
                refused += 1;
                continue;
            }
            other => other.unwrap_or_else(|e| panic!("{name}: {e}")),
        };
        let expected = fact(facts, "SHA256SUM");
        for (kind, key) in keys_of(&archive.dir, facts) {
            // The smart-card protector needs the card; its recovery password must still work.
            let mut calls = 0;
            let view = volume
                .unlock(&reader, &key, &mut |_, _| calls += 1)
                .unwrap_or_else(|e| panic!("{name} {kind}: {e}"));
            if matches!(key, UnlockKey::RecoveryPassword(_) | UnlockKey::Password(_)) {
                assert!(calls >= 2, "{name} {kind}: stretching reports progress");
            }
            match expected {
                Some(sum) => {
                    assert_eq!(sha256_of(&view), sum, "{name} unlocked by {kind}");
                    checked += 1;
                }
                None => panic!("{name}: images.conf lists no SHA-256 for an image that opened"),
            }
        }
    }
    if only.is_none() {
        // 19 volumes open; with their recovery passwords (two on one), passwords, startup keys
        // and clear key that makes 37 unlocks.
        assert_eq!(checked, 37, "unlocks compared");
        assert_eq!(refused, 2, "the two volumes still converting are refused");
    }
}
