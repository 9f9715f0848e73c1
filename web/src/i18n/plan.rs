//! Consent to reset an unclean journal, and the plan: deletions and the changed ranges with the
//! structures they belong to.

use super::{size, Lang, T};
use kaifuku_ntfs::LogState;
use kaifuku_rescue::vocabulary::VolumeName;

impl T {
    // ---- consent ----
    pub fn consent_state(self, state: LogState) -> String {
        pick!(
            self,
            format!("ジャーナルの状態: {}", self.journal_state(state, false)),
            format!("Journal state: {}", self.journal_state(state, false))
        )
    }
    pub fn consent_label(self) -> &'static str {
        pick!(
            self,
            "理解しました。ジャーナルを破棄し、次回起動時に Windows が chkdsk を実行するように印を付けてください。",
            "I understand: discard the journal and mark the volume so that Windows runs chkdsk at the next boot."
        )
    }

    // ---- plan ----
    pub fn plan_heading(self) -> &'static str {
        pick!(self, "2. 修復の計画", "2. The plan")
    }
    pub fn plan_button(self) -> &'static str {
        pick!(self, "修復を計画する", "Plan the fix")
    }
    pub fn plan_intro(self) -> &'static str {
        pick!(
            self,
            "ディスクの次のバイト範囲だけが変わります。それ以外はまったく変わりません。各範囲が属する構造も示します。",
            "Only these byte ranges of the disk change; everything else stays exactly as it is. Each range is shown with the structure it belongs to."
        )
    }
    pub fn delete_line(self, path: &str) -> String {
        pick!(self, format!("削除: {path}"), format!("Delete {path}"))
    }
    pub fn deletion_detail(
        self,
        record: u64,
        freed: bool,
        clusters: u64,
        links: Option<u16>,
    ) -> String {
        match (self.0, freed) {
            (Lang::Ja, true) => {
                format!("MFT レコード {record} とクラスター {clusters} 個を解放します")
            }
            (Lang::En, true) => format!("MFT record {record} and {clusters} cluster(s) are freed"),
            (Lang::Ja, false) => format!(
                "名前だけを削除します。MFT レコード {record} には他の名前が {} 個残ります",
                links.unwrap_or(0)
            ),
            (Lang::En, false) => format!(
                "only the name is removed; MFT record {record} keeps {} other link(s)",
                links.unwrap_or(0)
            ),
        }
    }
    pub fn removed_names(self, names: &str) -> String {
        pick!(
            self,
            format!("削除するインデックスエントリ: {names}"),
            format!("index entries removed: {names}")
        )
    }
    pub fn side_index(self, s: &str) -> String {
        pick!(
            self,
            format!("{s} からキーを削除"),
            format!("key removed from {s}")
        )
    }
    pub fn journal_reset_line(self, volume: &VolumeName) -> String {
        let volume = self.vol(volume);
        pick!(
            self,
            format!("{volume}: ジャーナルをリセットし($LogFile を 0xFF で埋める)、ダーティフラグを設定します。Windows は次回起動時に chkdsk を実行します。"),
            format!("{volume}: the journal is reset ($LogFile filled with 0xFF) and the volume marked dirty: Windows runs chkdsk at the next boot.")
        )
    }
    pub fn ranges_summary(self, n: usize, bytes: u64) -> String {
        pick!(
            self,
            format!("{n} 箇所、計 {} を変更", size(bytes)),
            format!("{n} range(s), {} changed", size(bytes))
        )
    }
    pub fn col_offset(self) -> &'static str {
        pick!(self, "ディスク上の位置(バイト)", "Disk offset (byte)")
    }
    pub fn col_file_offset(self) -> &'static str {
        pick!(self, "ファイル上の位置(バイト)", "File offset (byte)")
    }
    pub fn col_length(self) -> &'static str {
        pick!(self, "長さ", "Length")
    }
    pub fn col_structure(self) -> &'static str {
        pick!(self, "構造", "Structure")
    }
    pub fn filled_with(self, b: u8) -> String {
        pick!(
            self,
            format!("(0x{b:02X} で埋める)"),
            format!("(filled with 0x{b:02X})")
        )
    }
    pub fn file_writes_heading(self, n: usize) -> String {
        pick!(
            self,
            format!("イメージファイル内では {n} 箇所の書き込みになります"),
            format!("In the image file these are {n} write(s)")
        )
    }
    pub fn core_checked(self, n: usize) -> String {
        pick!(
            self,
            format!(
                "変更後の状態を最初から読み直して確認済み: ルールに一致するファイルは {n} 個です。"
            ),
            format!("Checked on the changed view, read from scratch: the rule finds {n} file(s).")
        )
    }

    /// The structure a changed range belongs to. The core names structures in English with a
    /// fixed shape ("MFT record 42", "index block VCN 8 of directory \\X (record 7) $I30", ...);
    /// in Japanese the same names are said in Japanese word order, NTFS identifiers unchanged.
    pub fn structure(self, label: &str) -> String {
        if self.0 == Lang::En {
            return label.to_string();
        }
        structure_ja(label).unwrap_or_else(|| label.to_string())
    }
}

/// Japanese for the structure labels the core writes (see `T::structure`); `None` for a shape this
/// function does not know, which the tests forbid for every label a real plan produces.
pub fn structure_ja(label: &str) -> Option<String> {
    // "directory \X (record 7)" → "ディレクトリ \X(レコード 7)"
    fn place(s: &str) -> String {
        if let Some(rest) = s.strip_prefix("directory ") {
            if let Some((path, rec)) = rest.rsplit_once(" (record ") {
                return format!("ディレクトリ {path}(レコード {rec}");
            }
        }
        s.to_string()
    }
    if let Some(rest) = label.strip_prefix("$MFTMirr copy of MFT record ") {
        return Some(format!("MFT レコード {rest} の $MFTMirr 複製"));
    }
    if let Some(rest) = label.strip_prefix("MFT record ") {
        return Some(match rest.split_once(" (") {
            Some((n, inside)) => {
                let inside = inside.strip_suffix(')').unwrap_or(inside);
                format!(
                    "MFT レコード {n}({})",
                    structure_ja(inside).unwrap_or_else(|| inside.to_string())
                )
            }
            None => format!("MFT レコード {rest}"),
        });
    }
    if let Some(rest) = label.strip_prefix("$MFT:$BITMAP bytes ") {
        return Some(format!(
            "$MFT:$BITMAP(MFT レコードの使用ビットマップ)のバイト {rest}"
        ));
    }
    if let Some(rest) = label.strip_prefix("$Bitmap bytes ") {
        return Some(format!(
            "$Bitmap(クラスターの使用ビットマップ)のバイト {rest}"
        ));
    }
    if label == "$LogFile (reset to 0xFF)" {
        return Some("$LogFile(ジャーナル。0xFF で初期化)".into());
    }
    if let Some(rest) = label.strip_prefix("index block VCN ") {
        let (vcn, rest) = rest.split_once(" of ")?;
        let (dir, index) = rest.rsplit_once(' ')?;
        return Some(format!("{}の索引 {index} のブロック VCN {vcn}", place(dir)));
    }
    if let Some(rest) = label.strip_prefix("$INDEX_ROOT ") {
        let (index, dir) = rest.split_once(" of ")?;
        return Some(format!("{}の索引ルート $INDEX_ROOT {index}", place(dir)));
    }
    if let Some(rest) = label.strip_prefix("index bitmap ") {
        let (index, dir) = rest.split_once(" of ")?;
        let dir = dir.split(" bytes ").next().unwrap_or(dir);
        return Some(format!("{}の索引 {index} のビットマップ", place(dir)));
    }
    if let Some(rest) = label.strip_prefix("virtual disk bytes ") {
        let (range, note) = match rest.split_once(" (") {
            Some((r, n)) => (r, Some(n.strip_suffix(')').unwrap_or(n))),
            None => (rest, None),
        };
        let note = note.map(|n| {
            let mut words = Vec::new();
            for part in n.split(", ") {
                if let Some(b) = part.strip_prefix("VHD block ") {
                    words.push(format!("VHD ブロック {b}"));
                } else if let Some(b) = part.strip_prefix("VHDX block ") {
                    words.push(format!("VHDX ブロック {b}"));
                } else if part == "filled" {
                    words.push("同じバイトで埋める".into());
                } else if part.starts_with("whole sectors") {
                    words.push("セクター単位。未使用だったセクターは周囲を 0 で埋める".into());
                } else {
                    words.push(part.to_string());
                }
            }
            words.join("、")
        });
        return Some(match note {
            Some(n) => format!("仮想ディスクのバイト {range}({n})"),
            None => format!("仮想ディスクのバイト {range}"),
        });
    }
    if let Some(rest) = label.strip_prefix("VHD block ") {
        let (block, rest) = rest.split_once(" sector bitmap: mark ")?;
        let (count, rest) = rest.split_once(" sector(s) of virtual bytes ")?;
        let range = rest.strip_suffix(" as in use")?;
        return Some(format!(
            "VHD ブロック {block} のセクタービットマップ: 仮想バイト {range} の {count} セクターを使用中にする"
        ));
    }
    // "VHDX header 2 (sequence 7, new FileWriteGuid and DataWriteGuid)"
    if let Some(rest) = label.strip_prefix("VHDX header ") {
        let (slot, rest) = rest.split_once(" (sequence ")?;
        let (rest, emptied) = match rest.strip_suffix(", log emptied)") {
            Some(r) => (r, "、ログは空に"),
            None => (rest.strip_suffix(')')?, ""),
        };
        let sequence = rest.strip_suffix(", new FileWriteGuid and DataWriteGuid")?;
        return Some(format!(
            "VHDX ヘッダー {slot}(シーケンス番号 {sequence}、新しい FileWriteGuid と DataWriteGuid{emptied})"
        ));
    }
    // "file bytes 0x300000..0x301000 (VHDX log replay, with the patches in them)"
    if let Some(rest) = label.strip_prefix("file bytes ") {
        let (range, note) = rest.split_once(" (VHDX log replay")?;
        let patched = match note {
            ")" => "",
            ", with the patches in them)" => "。変更箇所を含む",
            _ => return None,
        };
        return Some(format!(
            "ファイルのバイト {range}(VHDX ログの再生結果{patched})"
        ));
    }
    if label.starts_with("$Extend\\") {
        return Some(label.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_labels_in_japanese() {
        let cases = [
            ("MFT record 2146", "MFT レコード 2146"),
            ("$MFTMirr copy of MFT record 3", "MFT レコード 3 の $MFTMirr 複製"),
            ("$Bitmap bytes 0x6f..0x70", "$Bitmap(クラスターの使用ビットマップ)のバイト 0x6f..0x70"),
            (
                "index block VCN 16 of directory \\Windows\\System32\\drivers\\CrowdStrike (record 1992) $I30",
                "ディレクトリ \\Windows\\System32\\drivers\\CrowdStrike(レコード 1992)の索引 $I30 のブロック VCN 16",
            ),
            (
                "MFT record 67 ($INDEX_ROOT $I30 of directory \\Windows\\System32\\drivers\\etc (record 67))",
                "MFT レコード 67(ディレクトリ \\Windows\\System32\\drivers\\etc(レコード 67)の索引ルート $INDEX_ROOT $I30)",
            ),
            ("virtual disk bytes 0x10..0x20 (VHD block 3, filled)", "仮想ディスクのバイト 0x10..0x20(VHD ブロック 3、同じバイトで埋める)"),
            ("virtual disk bytes 0x10..0x20 (VHDX block 0)", "仮想ディスクのバイト 0x10..0x20(VHDX ブロック 0)"),
            (
                "VHDX header 1 (sequence 12, new FileWriteGuid and DataWriteGuid)",
                "VHDX ヘッダー 1(シーケンス番号 12、新しい FileWriteGuid と DataWriteGuid)",
            ),
            (
                "VHDX header 2 (sequence 13, new FileWriteGuid and DataWriteGuid, log emptied)",
                "VHDX ヘッダー 2(シーケンス番号 13、新しい FileWriteGuid と DataWriteGuid、ログは空に)",
            ),
            (
                "file bytes 0x300000..0x301000 (VHDX log replay)",
                "ファイルのバイト 0x300000..0x301000(VHDX ログの再生結果)",
            ),
            (
                "file bytes 0x300000..0x301000 (VHDX log replay, with the patches in them)",
                "ファイルのバイト 0x300000..0x301000(VHDX ログの再生結果。変更箇所を含む)",
            ),
            (
                "VHD block 2 sector bitmap: mark 8 sector(s) of virtual bytes 0x400..0x1400 as in use",
                "VHD ブロック 2 のセクタービットマップ: 仮想バイト 0x400..0x1400 の 8 セクターを使用中にする",
            ),
        ];
        for (en, ja) in cases {
            assert_eq!(T(Lang::Ja).structure(en), ja);
            assert_eq!(T(Lang::En).structure(en), en);
        }
        assert_eq!(structure_ja("something new"), None);
    }
}
