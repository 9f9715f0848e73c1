//! Wrong keys on real Windows-made volumes: each refusal is typed and worded, and no error, in
//! `Display` or `Debug`, holds the secret it was given.

mod common;

use common::{archive, fact, FileReader};
use kaifuku_bitlocker::{
    parse_key_list, BitLockerError, BitLockerVolume, ProtectionType, RecoveryPasswordFault,
    StartupKey, UnlockKey,
};

fn open(name: &str, test: &str) -> Option<(FileReader, BitLockerVolume, common::ImageFacts)> {
    let archive = archive(test)?;
    let reader = FileReader::open(&archive.image(name));
    let volume = BitLockerVolume::open(&reader).unwrap();
    Some((reader, volume, archive.images[name].clone()))
}

fn refusal(volume: &BitLockerVolume, reader: &FileReader, key: UnlockKey) -> BitLockerError {
    volume
        .unlock(reader, &key, &mut |_, _| {})
        .expect_err("the key must not unlock the volume")
}

fn assert_no_secret(error: &BitLockerError, secret: &str) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(secret), "the secret leaked into {text}");
    }
}

#[test]
fn a_wrong_recovery_password_is_refused_without_echoing_it() {
    let Some((reader, volume, _)) = open(
        "bitlk-aes-xts-128",
        "a_wrong_recovery_password_is_refused_without_echoing_it",
    ) else {
        return;
    };
    // Every group is a valid multiple of 11, so the key is tried and fails the AES-CCM tag.
    let wrong = "111111-222222-333333-444444-555555-666666-000011-121121";
    let e = refusal(&volume, &reader, UnlockKey::RecoveryPassword(wrong.into()));
    assert!(
        matches!(
            e,
            BitLockerError::WrongKey {
                kind: ProtectionType::RecoveryPassword,
                tried: 1
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("recovery password does not unlock"));
    assert_no_secret(&e, "111111");
}

#[test]
fn a_mistyped_group_is_named_before_any_key_is_tried() {
    let Some((reader, volume, facts)) = open(
        "bitlk-aes-xts-128",
        "a_mistyped_group_is_named_before_any_key_is_tried",
    ) else {
        return;
    };
    let good = fact(&facts, "RP").unwrap();
    let typo = good.replacen("013365", "013366", 1);
    let mut progress_calls = 0;
    let e = volume
        .unlock(&reader, &UnlockKey::RecoveryPassword(typo), &mut |_, _| {
            progress_calls += 1
        })
        .unwrap_err();
    assert!(matches!(
        e,
        BitLockerError::RecoveryPassword(RecoveryPasswordFault::MistypedGroup { group: 4 })
    ));
    assert_eq!(progress_calls, 0, "nothing was stretched");
    assert!(e.to_string().contains("group 4"));
    assert_no_secret(&e, "013366");
}

#[test]
fn a_wrong_password_is_refused() {
    let Some((reader, volume, _)) =
        open("bitlk-aes-xts-128-unicode", "a_wrong_password_is_refused")
    else {
        return;
    };
    // The right one ends in "£"; without it the UTF-16 hash differs.
    let e = refusal(&volume, &reader, UnlockKey::Password("anaconda".into()));
    assert!(matches!(
        e,
        BitLockerError::WrongKey {
            kind: ProtectionType::Password,
            ..
        }
    ));
    assert_no_secret(&e, "anaconda");
}

#[test]
fn a_key_of_a_kind_the_volume_lacks_says_what_it_has() {
    let Some((reader, volume, _)) = open(
        "bitlk-aes-xts-128-smart-card",
        "a_key_of_a_kind_the_volume_lacks_says_what_it_has",
    ) else {
        return;
    };
    let e = refusal(&volume, &reader, UnlockKey::Password("anaconda".into()));
    assert!(
        matches!(
            e,
            BitLockerError::NoSuchProtector {
                wanted: ProtectionType::Password,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("recovery password"), "{e}");
    let e = refusal(&volume, &reader, UnlockKey::ClearKey);
    assert!(matches!(
        e,
        BitLockerError::NoSuchProtector {
            wanted: ProtectionType::ClearKey,
            ..
        }
    ));
}

#[test]
fn a_startup_key_of_another_volume_is_refused() {
    let Some(archive) = archive("a_startup_key_of_another_volume_is_refused") else {
        return;
    };
    let reader = FileReader::open(&archive.image("bitlk-aes-xts-128-startup-key"));
    let volume = BitLockerVolume::open(&reader).unwrap();
    // The key of the Windows 11 volume.
    let other = StartupKey::parse(
        &std::fs::read(archive.dir.join("AA80A52B-9B66-47AE-B097-33F536FFBB07.BEK")).unwrap(),
    )
    .unwrap();
    let e = refusal(&volume, &reader, UnlockKey::StartupKey(other));
    assert!(matches!(
        e,
        BitLockerError::WrongKey {
            kind: ProtectionType::StartupKey,
            ..
        }
    ));
}

#[test]
fn a_key_list_unlocks_by_protector_id_and_says_when_it_has_none() {
    let Some((reader, volume, facts)) = open(
        "bitlk-aes-xts-128-two-recovery",
        "a_key_list_unlocks_by_protector_id_and_says_when_it_has_none",
    ) else {
        return;
    };
    // The second recovery password, under its own protector's id, after an unrelated machine's.
    let csv = format!(
        "Id,Key\n64311dea-4587-4029-924a-ba299647998e,235818-357951-253979-013365-241120-245575-342914-591910\n\"{{{}}}\",\"{}\"\n",
        fact(&facts, "RP2_VMK_GUID").unwrap().to_uppercase(),
        fact(&facts, "RP2").unwrap()
    );
    let list = parse_key_list(&csv).unwrap();
    volume
        .unlock(&reader, &UnlockKey::KeyList(list), &mut |_, _| {})
        .expect("the matching entry unlocks");

    let unrelated = parse_key_list(
        "KeyId,RecoveryKey\n64311dea-4587-4029-924a-ba299647998e,235818-357951-253979-013365-241120-245575-342914-591910\n",
    )
    .unwrap();
    let e = refusal(&volume, &reader, UnlockKey::KeyList(unrelated));
    match &e {
        BitLockerError::NotInKeyList { ids } => {
            let ids: Vec<String> = ids.iter().map(|g| g.to_string().to_lowercase()).collect();
            assert!(ids.contains(&fact(&facts, "RP_VMK_GUID").unwrap().to_string()));
            assert!(ids.contains(&fact(&facts, "RP2_VMK_GUID").unwrap().to_string()));
        }
        other => panic!("{other:?}"),
    }
    assert_no_secret(&e, "235818");
}
