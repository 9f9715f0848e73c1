//! The progress of the worker, cancel, and the reads a step took.

use super::{size, Lang, T};
use crate::protocol::Phase;

impl T {
    // ---- progress ----
    pub fn step(self, phase: Phase) -> &'static str {
        match (self.0, phase) {
            (Lang::Ja, Phase::Inspect) => "イメージを読み取り中",
            (Lang::En, Phase::Inspect) => "Reading the image",
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
