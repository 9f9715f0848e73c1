//! Training: the practice disks.

use super::{Lang, T};
use crate::practice::Scenario;

impl T {
    pub fn practice_heading(self) -> &'static str {
        pick!(self, "練習用ディスクで試す", "Practise on a sample disk")
    }
    pub fn practice_intro(self) -> &'static str {
        pick!(
            self,
            "障害の日に必要だった作業(Windows のボリュームを見つけ、問題のファイルを 1 つだけ安全に削除する)を、小さな練習用ディスクで試せます。本物のツール(mkntfs、ntfs-3g など)で作った Windows 風のディスクで、04:09 UTC の問題のチャネルファイル(すべてゼロ)と残すべきほかのファイル、修正版が届いたディスクには 05:27 UTC の修正版も入っています。ボタンを押したときにだけ読み込み、このブラウザーの中で展開します。",
            "Practise what the day of the outage called for (find the Windows volume, delete one file safely) on a small practice disk: a Windows-like disk made with real tools (mkntfs, ntfs-3g…), holding the faulty 04:09 UTC channel file (all zeros) and other files that must stay, and, on the disks the fixed update reached, the fixed 05:27 UTC one. It is loaded only when you press a button, and unpacked here in your browser."
        )
    }
    pub fn practice_button(self, s: Scenario) -> &'static str {
        match s {
            Scenario::Gpt => pick!(self, "GPT のディスク", "GPT disk"),
            Scenario::Mbr => pick!(self, "MBR のディスク", "MBR disk"),
            Scenario::Unclean => pick!(self, "クラッシュ後のディスク", "Disk after a crash"),
        }
    }
    pub fn practice_note(self, s: Scenario) -> &'static str {
        match s {
            Scenario::Gpt => pick!(
                self,
                "EFI システムパーティション、MSR、Windows(最近のサーバー)",
                "EFI system partition, MSR, Windows (recent servers)"
            ),
            Scenario::Mbr => pick!(
                self,
                "「システムで予約済み」と Windows(古いサーバー)",
                "\"System Reserved\" and Windows (older servers)"
            ),
            Scenario::Unclean => pick!(
                self,
                "04:09 の更新直後にクラッシュ: 問題のファイルの作成はジャーナルにだけあり、kaifuku が Windows と同じようにジャーナルを再生してから削除します",
                "crashed right after the 04:09 update: the faulty file's creation is only in the journal; kaifuku replays it, as Windows would, then deletes the file"
            ),
        }
    }
    pub fn practice_loading(self, s: Scenario) -> String {
        let name = self.practice_button(s);
        pick!(
            self,
            format!("練習用ディスク「{name}」を読み込んで展開しています…"),
            format!("Loading and unpacking the practice disk \"{name}\"…")
        )
    }
    pub fn practice_failed(self) -> &'static str {
        pick!(
            self,
            "練習用ディスクを読み込めませんでした。ページを再読み込みして、もう一度試してください。",
            "The practice disk could not be loaded. Reload the page and try again."
        )
    }
}
