//! Many images at once: the queue's table, its actions and each image's outcome.

use super::{size, Lang, T};

/// Why an image of the queue is not fixed with the others: it needs a decision only the user can
/// make, on that image alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AloneReason {
    /// A BitLocker volume waits for a key.
    Key,
    /// An unclean journal may only be discarded with the user's consent.
    JournalConsent,
}

/// What the plan of a fixable image does with its volume's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalAction {
    /// The journal is clean: nothing to do.
    Untouched,
    /// Replayed first, as Windows would.
    Replayed,
    /// Reset, and the volume marked dirty (chkdsk at the next boot).
    Reset,
    /// Left for Windows to finish (it does not touch what the fix changes).
    LeftForWindows,
}

impl T {
    pub fn queue_heading(self, images: usize) -> String {
        pick!(
            self,
            format!("{images} 個のイメージ"),
            format!("{images} images")
        )
    }
    pub fn queue_intro(self) -> &'static str {
        pick!(
            self,
            "イメージを 1 つずつ読み取ります(1 つにつき新しいワーカーを 1 つ使います)。この一覧を確認してから修復を始めてください。修復するまで何も書き込みません。",
            "The images are read one after another, each in a fresh worker. Nothing is written until you start the fix below, after reviewing this list."
        )
    }
    pub fn queue_column_image(self) -> &'static str {
        pick!(self, "イメージ", "Image")
    }
    pub fn queue_column_outcome(self) -> &'static str {
        pick!(self, "結果", "Outcome")
    }
    pub fn queue_column_journal(self) -> &'static str {
        pick!(self, "ジャーナル", "Journal")
    }
    pub fn queue_column_read(self) -> &'static str {
        pick!(self, "読み取り量", "Read")
    }
    pub fn queue_column_time(self) -> &'static str {
        pick!(self, "時間", "Time")
    }
    pub fn queue_column_output(self) -> &'static str {
        pick!(self, "出力", "Output")
    }
    pub fn queue_waiting(self) -> &'static str {
        pick!(self, "待機中", "waiting")
    }
    pub fn queue_inspecting(self) -> &'static str {
        pick!(self, "読み取り中…", "reading…")
    }
    pub fn queue_fixable(self, files: usize) -> String {
        pick!(
            self,
            format!("修復できます: 削除するファイル {files} 個"),
            format!("fixable: {files} file(s) to delete")
        )
    }
    pub fn queue_nothing_to_fix(self) -> &'static str {
        pick!(self, "修復の必要はありません", "nothing to fix")
    }
    pub fn queue_refused(self, reason: &str) -> String {
        pick!(
            self,
            format!("修復しません: {reason}"),
            format!("refused: {reason}")
        )
    }
    pub fn queue_damaged(self, reason: &str) -> String {
        pick!(
            self,
            format!("読み取れません: {reason}"),
            format!("cannot be read: {reason}")
        )
    }
    pub fn queue_error(self, reason: &str) -> String {
        pick!(
            self,
            format!("エラー: {reason}"),
            format!("error: {reason}")
        )
    }
    pub fn queue_open_alone(self, why: AloneReason) -> String {
        let why = match why {
            AloneReason::Key => pick!(
                self,
                "BitLocker のキーが必要です",
                "a BitLocker key is needed"
            ),
            AloneReason::JournalConsent => pick!(
                self,
                "未完了のジャーナルを破棄するにはあなたの同意が必要です",
                "discarding its unclean journal needs your consent"
            ),
        };
        pick!(
            self,
            format!("このイメージだけを開いてください: {why}"),
            format!("open it alone: {why}")
        )
    }
    pub fn queue_fixing(self) -> &'static str {
        pick!(self, "修復中…", "fixing…")
    }
    pub fn queue_fixed(self, files: usize) -> String {
        pick!(
            self,
            format!("修復済み: ファイル {files} 個を削除し、検証しました"),
            format!("fixed: {files} file(s) deleted, verified")
        )
    }
    pub fn queue_not_fixed(self, reason: &str) -> String {
        pick!(
            self,
            format!("修復できませんでした: {reason}"),
            format!("not fixed: {reason}")
        )
    }
    pub fn queue_skipped(self) -> &'static str {
        pick!(
            self,
            "中止したため未処理",
            "not started: the queue was stopped"
        )
    }
    pub fn queue_journal(self, action: JournalAction) -> &'static str {
        match action {
            JournalAction::Untouched => pick!(self, "なし", "none"),
            JournalAction::Replayed => pick!(self, "再生する", "replayed"),
            JournalAction::Reset => {
                pick!(self, "リセット(起動時に chkdsk)", "reset (chkdsk at boot)")
            }
            JournalAction::LeftForWindows => pick!(self, "Windows に任せる", "left for Windows"),
        }
    }
    pub fn queue_read(self, bytes: u64) -> String {
        size(bytes)
    }
    pub fn queue_time(self, ms: f64) -> String {
        let secs = ms / 1000.0;
        pick!(self, format!("{secs:.1} 秒"), format!("{secs:.1} s"))
    }
    pub fn queue_fix_all(self, fixable: usize) -> String {
        pick!(
            self,
            format!("修復できるものをすべて修復({fixable} 個)"),
            format!("Fix all fixable ({fixable})")
        )
    }
    pub fn queue_stop(self) -> &'static str {
        pick!(self, "このイメージの後で止める", "Stop after this image")
    }
    pub fn queue_stopping(self) -> &'static str {
        pick!(
            self,
            "このイメージが終わったら止めます…",
            "Stopping once this image is done…"
        )
    }
    pub fn queue_status_inspecting(self, done: usize, total: usize) -> String {
        pick!(
            self,
            format!("読み取り中: {done} / {total} 個完了"),
            format!("Reading: {done} of {total} done")
        )
    }
    pub fn queue_status_fixing(self, done: usize, total: usize) -> String {
        pick!(
            self,
            format!("修復中: {done} / {total} 個完了"),
            format!("Fixing: {done} of {total} done")
        )
    }
    pub fn queue_status_idle(self, fixable: usize, fixed: usize) -> String {
        pick!(
            self,
            format!("修復できるもの {fixable} 個、修復済み {fixed} 個。"),
            format!("{fixable} fixable, {fixed} fixed.")
        )
    }
    pub fn queue_alone_hint(self) -> &'static str {
        pick!(
            self,
            "「このイメージだけを開いてください」の行は、そのファイルだけを選び直すと、必要な判断をしながら修復できます。",
            "Rows marked “open it alone” need a decision: pick that file on its own to go through it step by step."
        )
    }
    pub fn queue_download_image(self) -> &'static str {
        pick!(self, "修復済みイメージ", "fixed image")
    }
    pub fn queue_download_undo(self) -> &'static str {
        pick!(self, "元に戻すファイル", "undo file")
    }
    pub fn queue_download_report(self) -> &'static str {
        pick!(self, "レポート", "report")
    }
    pub fn queue_choose_folder(self) -> &'static str {
        pick!(self, "保存先のフォルダーを選ぶ…", "Write into a folder…")
    }
    pub fn queue_folder_hint(self) -> &'static str {
        pick!(
            self,
            "フォルダーを選ぶと、修復済みイメージを 1 つずつダウンロードせずにそのフォルダーへ直接書き込みます(同じ名前のファイルがあれば上書きせずに止めます)。選ばなければ、イメージごとにダウンロードのリンクを出します。",
            "With a folder chosen, each fixed image is written straight into it, with no download prompts (an existing file of the same name is never replaced). Without one, each fixed image gets download links."
        )
    }
    pub fn queue_folder_chosen(self, name: &str) -> String {
        pick!(
            self,
            format!("保存先: {name}"),
            format!("Writing into: {name}")
        )
    }
    pub fn queue_folder_failed(self, detail: &str) -> String {
        pick!(
            self,
            format!("フォルダーを使えません({detail})。ダウンロードで保存します。"),
            format!(
                "The folder cannot be used ({detail}); the fixed images will be downloads instead."
            )
        )
    }
    pub fn queue_written(self, names: &str) -> String {
        pick!(
            self,
            format!("フォルダーに書き込みました: {names}"),
            format!("written into the folder: {names}")
        )
    }
    pub fn queue_exists(self, name: &str) -> String {
        pick!(
            self,
            format!("{name} がフォルダーにすでにあります。移動するか別のフォルダーを選んで、もう一度修復してください"),
            format!("{name} is already in the folder: move it away or choose another folder, then fix again")
        )
    }
    pub fn queue_changed(self) -> &'static str {
        pick!(
            self,
            "読み直すと修復できる状態ではなくなっていました。このイメージだけを開いて確認してください",
            "read again, it was no longer fixable: open it alone to see why"
        )
    }
}
