//! Stage 1: choosing the image.

use super::{size, Lang, T};

impl T {
    // ---- picking ----
    pub fn pick_heading(self) -> &'static str {
        pick!(self, "1. ディスクイメージを選ぶ", "1. Choose a disk image")
    }
    pub fn drop_hint(self) -> &'static str {
        pick!(
            self,
            "ディスクイメージ(.raw、.img、固定サイズまたは可変長の .vhd / .vhdx、.qcow2、1 ファイルの .vmdk)をここにドロップするか、",
            "Drop a disk image here (.raw, .img, fixed or dynamic .vhd / .vhdx, .qcow2, single-file .vmdk), or"
        )
    }
    pub fn pick_button(self) -> &'static str {
        pick!(self, "ファイルを選択…", "choose a file…")
    }
    pub fn pick_folder_button(self) -> &'static str {
        pick!(self, "フォルダーを選択…", "choose a folder…")
    }
    pub fn many_hint(self) -> &'static str {
        pick!(
            self,
            "複数のイメージ(またはイメージの入ったフォルダー)を選ぶと、順番に読み取って一覧にします。",
            "Several images (or a folder of them) are queued and read one after another."
        )
    }
    pub fn drop_active(self) -> &'static str {
        pick!(
            self,
            "ここで離すと読み取りを始めます",
            "Release to start reading"
        )
    }
    pub fn folder_without_images(self) -> &'static str {
        pick!(
            self,
            "このフォルダー(サブフォルダーを含む)にはディスクイメージがありません。探したのは .raw、.img、.vhd、.vhdx、.qcow2、.vmdk、.bin、.dd のファイルです。",
            "This folder (with its subfolders) holds no disk image: looked for .raw, .img, .vhd, .vhdx, .qcow2, .vmdk, .bin and .dd files."
        )
    }
    pub fn folder_unreadable(self, detail: &str) -> String {
        pick!(
            self,
            format!("ドロップされたフォルダーを読み取れませんでした({detail})。「フォルダーを選択…」で選んでください。"),
            format!("The dropped folder could not be read ({detail}). Choose it with \"choose a folder…\" instead.")
        )
    }
    pub fn current_file(self, name: &str, bytes: u64) -> String {
        pick!(
            self,
            format!("選択中: {name}({})", size(bytes)),
            format!("Selected: {name} ({})", size(bytes))
        )
    }
}
