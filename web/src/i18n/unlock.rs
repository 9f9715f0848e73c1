//! The BitLocker key form: what it asks for, the promise that the key stays in the page, the
//! recovery password's mistakes as the core names them, and why a key was refused.

use super::{Lang, T};
use crate::view::KeyRequest;
use kaifuku_bitlocker::RecoveryPasswordFault;
use kaifuku_rescue::vocabulary::BitLockerProblem;

/// The kinds of key the form takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMethod {
    RecoveryPassword,
    Password,
    StartupKey,
    KeyList,
}

impl T {
    pub fn unlock_title(self) -> &'static str {
        pick!(self, "BitLocker のロックを解除", "Unlock BitLocker")
    }
    pub fn unlock_intro(self) -> &'static str {
        pick!(
            self,
            "このディスクのボリュームは BitLocker で暗号化されています。回復パスワード(48 桁)などのキーを入力すると、このページの中で復号して修復し、同じキーで暗号化し直して書き戻します。",
            "A volume of this disk is encrypted with BitLocker. Give its 48-digit recovery password or another key: this page decrypts it here, fixes it, and writes the changed sectors back encrypted with the same key."
        )
    }
    /// The promise about the key, shown next to the form.
    pub fn key_stays_here(self) -> &'static str {
        pick!(
            self,
            "キーはこのページの中(ブラウザーのワーカー)だけで使われ、どこにも送信も保存もされません。ロック解除の後、入力欄は空になります。レポートにもキーは含まれません。",
            "The key is used only inside this page (in the browser's worker): it is never sent anywhere and never saved. The field is emptied once the key is used, and the report never contains it."
        )
    }
    pub fn key_method_legend(self) -> &'static str {
        pick!(self, "キーの種類", "Kind of key")
    }
    pub fn key_method(self, m: KeyMethod) -> &'static str {
        match (self.0, m) {
            (Lang::Ja, KeyMethod::RecoveryPassword) => "回復パスワード(48 桁)",
            (Lang::En, KeyMethod::RecoveryPassword) => "Recovery password (48 digits)",
            (Lang::Ja, KeyMethod::Password) => "パスワード",
            (Lang::En, KeyMethod::Password) => "Password",
            (Lang::Ja, KeyMethod::StartupKey) => "スタートアップ キー(.BEK ファイル)",
            (Lang::En, KeyMethod::StartupKey) => "Startup key (.BEK file)",
            (Lang::Ja, KeyMethod::KeyList) => "回復キーの一覧(CSV ファイル)",
            (Lang::En, KeyMethod::KeyList) => "Recovery key list (CSV file)",
        }
    }
    pub fn recovery_password_hint(self) -> &'static str {
        pick!(
            self,
            "6 桁ずつ 8 組。ハイフンや空白はそのままで構いません(貼り付けもできます)。",
            "8 groups of 6 digits. Dashes or spaces between them are fine (pasting works)."
        )
    }
    pub fn key_file_hint(self, m: KeyMethod) -> &'static str {
        match (self.0, m) {
            (Lang::Ja, KeyMethod::StartupKey) => "BitLocker が USB メモリなどに保存した .BEK ファイルを選んでください。",
            (Lang::En, KeyMethod::StartupKey) => "Choose the .BEK file BitLocker saved on a USB drive or elsewhere.",
            (Lang::Ja, KeyMethod::KeyList) => "Entra ID や Active Directory から書き出した CSV(列は Id と Key)を選んでください。このボリュームの保護機能の ID に合うキーを使います。",
            (Lang::En, KeyMethod::KeyList) => "Choose the CSV exported from Entra ID or Active Directory (Id and Key columns): the key whose ID matches this volume's protector is used.",
            (Lang::Ja, KeyMethod::RecoveryPassword | KeyMethod::Password) => "",
            (Lang::En, KeyMethod::RecoveryPassword | KeyMethod::Password) => "",
        }
    }
    pub fn show_key(self, shown: bool) -> &'static str {
        match (self.0, shown) {
            (Lang::Ja, false) => "表示",
            (Lang::En, false) => "Show",
            (Lang::Ja, true) => "隠す",
            (Lang::En, true) => "Hide",
        }
    }
    pub fn show_key_label(self) -> &'static str {
        pick!(self, "入力したキーを表示", "Show the key as typed")
    }
    pub fn unlock_button(self) -> &'static str {
        pick!(self, "ロックを解除", "Unlock")
    }
    pub fn no_key_file(self) -> &'static str {
        pick!(self, "ファイルを選んでください。", "Choose a file.")
    }
    pub fn no_password(self) -> &'static str {
        pick!(self, "パスワードを入力してください。", "Type the password.")
    }
    /// What is wrong with a recovery password, as the core's check names it.
    pub fn recovery_password_fault(self, f: RecoveryPasswordFault) -> String {
        match f {
            RecoveryPasswordFault::MistypedGroup { group } => pick!(
                self,
                format!("{group} 組目(左から数えて)の 6 桁が違います。印刷された回復キーと見比べてください(各組は 11 の倍数です)。"),
                format!("Group {group} (counting from the left) is mistyped. Check it against the printed recovery key (each group is a multiple of 11).")
            ),
            RecoveryPasswordFault::WrongLength { digits } => pick!(
                self,
                format!("回復パスワードは 6 桁 × 8 組の 48 桁です。いま {digits} 桁あります。"),
                format!("A recovery password has 48 digits in 8 groups of 6; this has {digits}.")
            ),
            RecoveryPasswordFault::NotADigit => pick!(
                self,
                "回復パスワードには数字(と区切りのハイフンや空白)だけが入ります。".to_string(),
                "A recovery password holds only digits (with dashes or spaces between the groups).".to_string()
            ),
        }
    }
    /// Why the page asks for a key again.
    pub fn key_refused(self, request: &KeyRequest) -> Option<String> {
        let KeyRequest::Refused { problem } = request else {
            return None;
        };
        Some(match problem {
            BitLockerProblem::RecoveryPassword { fault } => self.recovery_password_fault(*fault),
            BitLockerProblem::WrongKey { tried, .. } => pick!(
                self,
                format!("このキーではロックを解除できませんでした(保護機能 {tried} 個で試しました)。キーを確かめて、もう一度入力してください。何も書き出していません。"),
                format!("This key did not unlock the volume (tried on {tried} protector(s)). Check the key and try again. Nothing was written.")
            ),
            BitLockerProblem::NoSuchProtector { .. } => pick!(
                self,
                "このボリュームはこの種類のキーでは解除できません。回復パスワードを試してください。".to_string(),
                "This volume cannot be unlocked with this kind of key. Try its recovery password.".to_string()
            ),
            BitLockerProblem::NeedsRecoveryPassword { .. } => pick!(
                self,
                "このボリュームは TPM など元のコンピューターでしか使えない方法で保護されています。回復パスワード(48 桁)を入力してください。".to_string(),
                "This volume is protected by its own computer (TPM or smart card). Give its 48-digit recovery password.".to_string()
            ),
            BitLockerProblem::NotInKeyList { ids } => pick!(
                self,
                format!("キーの一覧に、このボリュームの回復パスワード(ID {})がありません。", ids.join(", ")),
                format!("The key list has no recovery password for this volume (ID {}).", ids.join(", "))
            ),
            BitLockerProblem::EncryptOnWrite
            | BitLockerProblem::Unsupported { .. }
            | BitLockerProblem::Damaged { .. }
            | BitLockerProblem::WriteIntoMetadata { .. }
            | BitLockerProblem::ReadFailed { .. } => pick!(
                self,
                "このボリュームはキーがあっても解除できません(下の説明を参照)。".to_string(),
                "This volume cannot be unlocked with any key (see below).".to_string()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaifuku_bitlocker::ProtectionType;

    fn has_kana(s: &str) -> bool {
        s.chars().any(|c| ('\u{3040}'..='\u{30FF}').contains(&c))
    }

    #[test]
    fn every_fault_and_refusal_is_worded_in_both_languages() {
        let faults = [
            RecoveryPasswordFault::MistypedGroup { group: 3 },
            RecoveryPasswordFault::WrongLength { digits: 47 },
            RecoveryPasswordFault::NotADigit,
        ];
        for f in faults {
            let (ja, en) = (
                T(Lang::Ja).recovery_password_fault(f),
                T(Lang::En).recovery_password_fault(f),
            );
            assert!(has_kana(&ja) && !has_kana(&en), "{ja} / {en}");
        }
        assert!(T(Lang::En)
            .recovery_password_fault(faults[0])
            .starts_with("Group 3 "));
        let refusals = [
            BitLockerProblem::WrongKey {
                protection: ProtectionType::RecoveryPassword,
                tried: 2,
            },
            BitLockerProblem::NoSuchProtector {
                wanted: ProtectionType::StartupKey,
                available: "TPM".into(),
            },
            BitLockerProblem::NeedsRecoveryPassword {
                available: "TPM".into(),
            },
            BitLockerProblem::NotInKeyList {
                ids: vec!["83abdb8f-3218-4bfd-aced-215e1e189bdf".into()],
            },
        ];
        for problem in refusals {
            let request = KeyRequest::Refused { problem };
            let ja = T(Lang::Ja).key_refused(&request).unwrap();
            let en = T(Lang::En).key_refused(&request).unwrap();
            assert!(has_kana(&ja) && !has_kana(&en), "{ja} / {en}");
        }
        assert_eq!(T(Lang::En).key_refused(&KeyRequest::Needed), None);
        for m in [
            KeyMethod::RecoveryPassword,
            KeyMethod::Password,
            KeyMethod::StartupKey,
            KeyMethod::KeyList,
        ] {
            assert!(has_kana(T(Lang::Ja).key_method(m)));
            assert!(!has_kana(T(Lang::En).key_method(m)));
        }
    }
}
