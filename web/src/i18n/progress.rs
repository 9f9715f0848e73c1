//! The progress of the worker, cancel, and the reads a step took.

use super::{size, Lang, T};
use crate::protocol::Phase;

impl T {
    // ---- progress ----
    pub fn step(self, phase: Phase) -> &'static str {
        match (self.0, phase) {
            (Lang::Ja, Phase::Inspect) => "イメージを読み取り中",
            (Lang::En, Phase::Inspect) => "Reading the image",
            (Lang::Ja, Phase::Unlock) => "BitLocker のロックを解除中(キーの計算)",
            (Lang::En, Phase::Unlock) => "Unlocking BitLocker (deriving the key)",
            (Lang::Ja, Phase::Plan) => "修復を計画・検証中",
            (Lang::En, Phase::Plan) => "Planning and checking the fix",
            (Lang::Ja, Phase::Verify) => "修復後のイメージを最初から読み直して検証中",
            (Lang::En, Phase::Verify) => "Reading the fixed image back from scratch",
            (Lang::Ja, Phase::Output) => "ダウンロードを準備中",
            (Lang::En, Phase::Output) => "Preparing the download",
        }
    }
    pub fn progress(self, bytes: u64, calls: u64, secs: f64) -> String {
        pick!(
            self,
            format!("{} を読み取り({calls} 回)、経過 {secs:.1} 秒", size(bytes)),
            format!("{} read in {calls} reads, {secs:.1} s elapsed", size(bytes))
        )
    }
    /// How far key stretching has got.
    pub fn stretch_progress(self, done: u32, total: u32) -> String {
        let percent = if total == 0 {
            100
        } else {
            u64::from(done) * 100 / u64::from(total)
        };
        pick!(
            self,
            format!("キーの計算 {percent}%(SHA-256 を {done} / {total} 回)"),
            format!("Key derivation {percent}% ({done} of {total} SHA-256 rounds)")
        )
    }
    pub fn cancel(self) -> &'static str {
        pick!(self, "中止", "Cancel")
    }
    pub fn cancelled(self) -> &'static str {
        pick!(
            self,
            "中止しました。何も変更されていません。",
            "Cancelled. Nothing was changed."
        )
    }
    pub fn done_in(self, bytes: u64, calls: u64, ms: f64) -> String {
        pick!(
            self,
            format!(
                "{} を {calls} 回で読み取り、{:.2} 秒",
                size(bytes),
                ms / 1000.0
            ),
            format!(
                "Read {} in {calls} reads, {:.2} s",
                size(bytes),
                ms / 1000.0
            )
        )
    }
}
