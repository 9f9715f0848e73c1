//! Fix and verify: what the read-back checked, and the downloads.

use super::{size, Lang, T};
use crate::view::CheckView;

impl T {
    // ---- fix ----
    pub fn fix_heading(self) -> &'static str {
        pick!(self, "3. 修復と検証", "3. Fix and verify")
    }
    pub fn fix_intro(self) -> &'static str {
        pick!(
            self,
            "元のファイルと変更箇所から修復済みイメージを組み立て、それを最初から読み直して検証します。元のファイルはそのままです。",
            "The fixed image is assembled from your original file and the changed ranges, then read back from scratch and checked. Your original file stays as it is."
        )
    }
    pub fn fix_button(self) -> &'static str {
        pick!(self, "修復して検証する", "Fix and verify")
    }
    pub fn check_text(self, c: &CheckView) -> String {
        match (c, self.0) {
            (CheckView::ContainerSame { format, virtual_size }, Lang::Ja) => format!(
                "修復後のイメージは元と同じ {}、{} として開けます。",
                self.format_name(*format),
                size(*virtual_size)
            ),
            (CheckView::ContainerSame { format, virtual_size }, Lang::En) => format!(
                "The fixed image opens as {}, {}, like the original.",
                self.format_name(*format),
                size(*virtual_size)
            ),
            (
                CheckView::ContainerConverted {
                    format,
                    virtual_size,
                    original_format,
                },
                Lang::Ja,
            ) => format!(
                "修復後のイメージは {}（元は {}）、{} として開けます。",
                self.format_name(*format),
                self.format_name(*original_format),
                size(*virtual_size)
            ),
            (
                CheckView::ContainerConverted {
                    format,
                    virtual_size,
                    original_format,
                },
                Lang::En,
            ) => format!(
                "The fixed image opens as {}, {} (the original is {}).",
                self.format_name(*format),
                size(*virtual_size),
                self.format_name(*original_format)
            ),
            (CheckView::RuleFinds { volume, count }, Lang::Ja) => {
                format!("{}: ルールに一致するファイルは {count} 個です。", self.vol(volume))
            }
            (CheckView::RuleFinds { volume, count }, Lang::En) => {
                format!("{}: the rule finds {count} matching file(s).", self.vol(volume))
            }
            (CheckView::RecordFree { volume, record }, Lang::Ja) => {
                format!("{}: MFT レコード {record} は未使用になっています。", self.vol(volume))
            }
            (CheckView::RecordFree { volume, record }, Lang::En) => {
                format!("{}: MFT record {record} is marked free.", self.vol(volume))
            }
            (CheckView::JournalReset { volume }, Lang::Ja) => format!(
                "{}: ジャーナルはリセット済みで、次回起動時に chkdsk が実行されます。",
                self.vol(volume)
            ),
            (CheckView::JournalReset { volume }, Lang::En) => format!(
                "{}: the journal is reset and chkdsk will run at the next boot.",
                self.vol(volume)
            ),
            (CheckView::JournalReplayed { volume }, Lang::Ja) => format!(
                "{}: ジャーナルを再生済みで、クリーンな状態です(Windows が再生するものは残っていません)。",
                self.vol(volume)
            ),
            (CheckView::JournalReplayed { volume }, Lang::En) => format!(
                "{}: the journal is replayed and clean (Windows has nothing left to replay).",
                self.vol(volume)
            ),
            (CheckView::Invariants { volume, problems }, Lang::Ja) => format!(
                "{}: 変更したディレクトリとレコードの NTFS 整合性チェック: 問題 {problems} 件。",
                self.vol(volume)
            ),
            (CheckView::Invariants { volume, problems }, Lang::En) => format!(
                "{}: NTFS consistency checks of the changed directory and records: {problems} problem(s).",
                self.vol(volume)
            ),
            (CheckView::SideIndexes { volume, indexes }, Lang::Ja) => format!(
                "{}: {} を読み直しました。整合しており、削除したファイルを指す項目はありません。",
                self.vol(volume),
                indexes.join("、")
            ),
            (CheckView::SideIndexes { volume, indexes }, Lang::En) => format!(
                "{}: {} read back: consistent, and no entry refers to the deleted file.",
                self.vol(volume),
                indexes.join(" and ")
            ),
            (CheckView::OnlyPlannedRanges { ranges, bytes }, Lang::Ja) => format!(
                "修復済みイメージと元のファイルの違いは、計画した {ranges} 箇所({})だけです。",
                size(*bytes)
            ),
            (CheckView::OnlyPlannedRanges { ranges, bytes }, Lang::En) => format!(
                "The fixed image differs from the original only in the {ranges} planned range(s) ({}).",
                size(*bytes)
            ),
        }
    }

    // ---- download ----
    pub fn download_heading(self) -> &'static str {
        pick!(self, "4. ダウンロード", "4. Download")
    }
    pub fn download_image(self) -> &'static str {
        pick!(self, "修復済みイメージを保存", "Save the fixed image")
    }
    pub fn download_undo(self) -> &'static str {
        pick!(self, "元に戻すためのファイルを保存", "Save the undo file")
    }
    /// Why no undo file is offered: the download is a fixed VHD (a new file in another format),
    /// or a VMDK stream re-streamed whole into a shorter file.
    pub fn no_undo_file(self, fixed_vhd: bool) -> &'static str {
        if fixed_vhd {
            return pick!(
                self,
                "修復済みイメージは別の形式(固定 VHD)の新しいファイルなので、元に戻すためのファイルはありません。選んだファイルはそのまま残っているので、それが元の状態です。",
                "No undo file: the fixed image is a new file in another format (a fixed VHD). The file you picked is left as it was: keep it to go back."
            );
        }
        pick!(
            self,
            "このイメージは最後のグレインの後ろから全体を作り直したため、ファイルが元より短くなり、元に戻すためのファイルは作れません。選んだファイルはそのまま残っているので、それが元の状態です。",
            "No undo file: this image was re-streamed whole from its last grain, which makes the file shorter than it was, and an undo file cannot restore that. The file you picked is left as it was: keep it to go back."
        )
    }
    pub fn download_report(self) -> &'static str {
        pick!(self, "レポート(JSON)を保存", "Save the report (JSON)")
    }
    pub fn undo_hint(self) -> &'static str {
        pick!(
            self,
            "変更した範囲の元のバイトを保存したファイルです。コマンドラインの kaifuku undo IMAGE FILE で元に戻せます。",
            "Keeps the original bytes of every changed range; the command line restores them with kaifuku undo IMAGE FILE."
        )
    }
    pub fn download_note(self) -> &'static str {
        pick!(
            self,
            "保存するとブラウザーがイメージ全体をディスクに書き出します。大きなイメージでは時間がかかり、同じだけの空き容量が必要です。",
            "Saving makes the browser write the whole image to disk: for a large image this takes a while and needs as much free space."
        )
    }
    pub fn next_steps(self, chkdsk: bool) -> String {
        let base = pick!(
            self,
            "VM のディスクを修復済みイメージに置き換えて(またはインポートして)、VM を起動してください。",
            "Replace the VM's disk with the fixed image (or import it) and start the VM."
        );
        let more = match (self.0, chkdsk) {
            (Lang::Ja, true) => {
                "最初の起動時に Windows が chkdsk を実行します。終わるまで待ってください。"
            }
            (Lang::En, true) => "Windows runs chkdsk at the first boot; let it finish.",
            (Lang::Ja | Lang::En, false) => "",
        };
        format!("{base} {more}").trim().to_string()
    }
    pub fn memory_line(self, bytes: u64) -> String {
        pick!(
            self,
            format!("読み取り処理のメモリ: {}", size(bytes)),
            format!("Worker memory: {}", size(bytes))
        )
    }
}
