//! Consent to reset an unclean journal, and the plan: deletions and the changed ranges with the
//! structures they belong to.

use super::{grouped, size, Lang, T};
use kaifuku_container::{
    ContainerUnit, FileWriteLabel, Format, Qcow2Part, VmdkStreamPart, WriteHow,
};
use kaifuku_ntfs::edit::{
    BitmapOwner, ChangedStructure, IndexOwner, RecordPart, ReplayedPage, RestartCopy,
};
use kaifuku_ntfs::logfile::ReplayPass;
use kaifuku_ntfs::LogState;
use kaifuku_rescue::vocabulary::{ContainerProblem, VolumeName};

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
    pub fn journal_left_line(self, volume: &VolumeName, updates: u64) -> String {
        let volume = self.vol(volume);
        pick!(
            self,
            format!("{volume}: kaifuku はジャーナルをやり直せませんが、Windows の書き込み途中の更新 {updates} 件は kaifuku が変更する部分に触れません。ジャーナルはそのまま残し、Windows が次回起動時に完了させます(chkdsk は不要です)。"),
            format!("{volume}: kaifuku cannot replay the journal, but Windows's {updates} pending update(s) do not touch what kaifuku changes. The journal is left as it is, and Windows finishes them at its next start (no chkdsk needed).")
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
    pub fn fixed_vhd_label(self) -> &'static str {
        pick!(
            self,
            "修復済みイメージを固定 VHD(Azure にアップロードできる形式)で保存する",
            "Save the fixed image as a fixed VHD (the format Azure takes for upload)"
        )
    }
    pub fn fixed_vhd_line(self, disk_size: u64, file_size: u64) -> String {
        pick!(
            self,
            format!(
                "保存するのは固定 VHD です: ディスク {}(1 MiB 単位に切り上げ)とフッター、計 {} バイト。元に戻すためのファイルは作りません(選んだファイルはそのまま残ります)。",
                size(disk_size),
                grouped(file_size)
            ),
            format!(
                "The download will be a fixed VHD: the disk, {} (rounded up to whole MiB), then the footer, {} bytes in all. No undo file is made (the file you picked stays as it is).",
                size(disk_size),
                grouped(file_size)
            )
        )
    }
    pub fn fixed_vhd_needs_command_line(self, format: Format) -> String {
        pick!(
            self,
            format!(
                "この {} イメージはディスクを圧縮して格納しているため、ページでは固定 VHD を組み立てられません(展開したディスク全体をメモリーに置くことになります)。修復済みイメージは元と同じ形式で保存します。固定 VHD が必要なら、コマンドラインで kaifuku fix IMAGE -o OUT.vhd --output-format vhd-fixed を実行してください。",
                self.format_name(format)
            ),
            format!(
                "This {} image stores its disk compressed, so the page cannot assemble a fixed VHD from it (it would have to hold the whole inflated disk in memory). The fixed image is saved in the picked file's format; for a fixed VHD, run kaifuku fix IMAGE -o OUT.vhd --output-format vhd-fixed on the command line.",
                self.format_name(format)
            )
        )
    }
    pub fn same_format_not_writable(self, problem: &ContainerProblem, disk_size: u64) -> String {
        pick!(
            self,
            format!(
                "元と同じ形式のままでは修復を書き込めません: {} 固定 VHD(ディスク {})なら書き込めます。下のチェックボックスで固定 VHD を選ぶと、修復できるようになります。",
                self.container_text(problem),
                size(disk_size)
            ),
            format!(
                "The fix cannot be written in the picked file's own format: {} It can be written as a fixed VHD (a disk of {}): tick the box below to save it that way.",
                self.container_text(problem),
                size(disk_size)
            )
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

    /// The structure a changed range of the virtual disk belongs to; NTFS identifiers stay as
    /// they are in both languages.
    pub fn structure(self, s: &ChangedStructure) -> String {
        if self.0 == Lang::En {
            return s.to_string();
        }
        match s {
            ChangedStructure::MftRecord { record, part: None } => format!("MFT レコード {record}"),
            ChangedStructure::MftRecord {
                record,
                part: Some(part),
            } => format!("MFT レコード {record}({})", self.record_part(part)),
            ChangedStructure::MftMirrCopy { record } => {
                format!("MFT レコード {record} の $MFTMirr 複製")
            }
            ChangedStructure::BitmapBytes { bitmap, start, end } => {
                format!("{}のバイト {start:#x}..{end:#x}", self.bitmap_name(bitmap))
            }
            ChangedStructure::IndexBlock { vcn, of, index } => {
                format!(
                    "{}の索引 {index} のブロック VCN {vcn}",
                    self.index_owner(of)
                )
            }
            ChangedStructure::JournalReset => "$LogFile(ジャーナル。0xFF で初期化)".into(),
            ChangedStructure::JournalReplay { page, applied } => {
                let steps: Vec<String> = applied
                    .iter()
                    .map(|a| {
                        let pass = match a.pass {
                            ReplayPass::Redo => "再実行",
                            ReplayPass::Undo => "取り消し",
                        };
                        format!("LSN {:#x} の {:?} を{pass}", a.lsn, a.operation)
                    })
                    .collect();
                format!(
                    "ジャーナルの再生: {}({})",
                    self.replayed_page(page),
                    steps.join("、")
                )
            }
            ChangedStructure::JournalMarkedClean { copy, lsn } => {
                let which = match copy {
                    RestartCopy::First => "1 つ目",
                    RestartCopy::Second => "2 つ目",
                };
                format!(
                    "ジャーナルの再生: $LogFile の{which}の再開ページを「正常に閉じた」状態に(LSN {lsn:#x})"
                )
            }
            ChangedStructure::JournalLogPage {
                offset,
                copy_of,
                tail_copy: false,
            } => format!(
                "ジャーナルの再生: $LogFile の {offset:#x} のページに、{copy_of:#x} にある新しい控えを書き戻す"
            ),
            ChangedStructure::JournalLogPage {
                offset,
                copy_of,
                tail_copy: true,
            } => format!(
                "ジャーナルの再生: $LogFile の {offset:#x} に、最後のページ({copy_of:#x})の末尾コピーを書く"
            ),
        }
    }

    fn replayed_page(self, page: &ReplayedPage) -> String {
        match page {
            ReplayedPage::Record { record } => format!("MFT レコード {record}"),
            ReplayedPage::IndexBlock {
                record,
                index,
                offset,
            } => {
                format!("レコード {record} の索引 {index} のバイト {offset:#x} にある索引ブロック")
            }
            ReplayedPage::StreamPage { vcn, .. } => {
                let stream = page.stream_name().unwrap_or_default();
                format!("{stream} の VCN {vcn} のページ")
            }
        }
    }

    fn record_part(self, part: &RecordPart) -> String {
        match part {
            RecordPart::IndexRoot { index, of } => {
                format!("{}の索引ルート $INDEX_ROOT {index}", self.index_owner(of))
            }
            RecordPart::Bitmap { bitmap } => self.bitmap_name(bitmap),
        }
    }

    fn bitmap_name(self, bitmap: &BitmapOwner) -> String {
        match (self.0, bitmap) {
            (Lang::En, b) => b.to_string(),
            (Lang::Ja, BitmapOwner::MftBitmap) => {
                "$MFT:$BITMAP(MFT レコードの使用ビットマップ)".into()
            }
            (Lang::Ja, BitmapOwner::ClusterBitmap) => {
                "$Bitmap(クラスターの使用ビットマップ)".into()
            }
            (Lang::Ja, BitmapOwner::IndexBitmap { index, of }) => {
                format!("{}の索引 {index} のビットマップ", self.index_owner(of))
            }
        }
    }

    fn index_owner(self, owner: &IndexOwner) -> String {
        match (self.0, owner) {
            (Lang::En, o) => o.to_string(),
            (Lang::Ja, IndexOwner::Directory { path, record }) => {
                format!("ディレクトリ {path}(レコード {record})")
            }
            (Lang::Ja, IndexOwner::ObjectIds) => "$Extend\\$ObjId(オブジェクト ID)".into(),
            (Lang::Ja, IndexOwner::ReparsePoints) => "$Extend\\$Reparse(再解析ポイント)".into(),
        }
    }

    /// A container unit's name.
    fn unit(self, unit: &ContainerUnit) -> String {
        match (self.0, unit) {
            (Lang::En, u) => u.to_string(),
            (Lang::Ja, ContainerUnit::VhdBlock { block }) => format!("VHD ブロック {block}"),
            (Lang::Ja, ContainerUnit::VhdxBlock { block }) => format!("VHDX ブロック {block}"),
            (Lang::Ja, ContainerUnit::Qcow2Cluster { cluster }) => {
                format!("qcow2 クラスタ {cluster}")
            }
            (Lang::Ja, ContainerUnit::VmdkGrain { grain }) => format!("VMDK グレイン {grain}"),
        }
    }

    /// What a write to the image file changes (the container's side of the plan).
    pub fn file_write(self, w: &FileWriteLabel) -> String {
        if self.0 == Lang::En {
            return w.to_string();
        }
        match w {
            FileWriteLabel::VirtualBytes {
                start,
                end,
                unit,
                how,
            } => {
                let mut notes: Vec<String> = unit.iter().map(|u| self.unit(u)).collect();
                match how {
                    WriteHow::Bytes => {}
                    WriteHow::Filled => notes.push("同じバイトで埋める".into()),
                    WriteHow::WholeSectors => notes
                        .push("セクター単位。未使用だったセクターは周囲を 0 で埋める".into()),
                    WriteHow::Recompressed => notes
                        .push("グレイン全体を圧縮し直してファイルの末尾に新しく格納".into()),
                    WriteHow::Relocated => {
                        notes.push("クラスタ全体をファイルの末尾に新しく格納".into())
                    }
                    WriteHow::NewUnit => notes.push("ファイルの末尾に追加する新しいブロック".into()),
                    WriteHow::FromBacking => notes.push(
                        "親ディスクの内容で満たしたグレイン全体をファイルの末尾に追加".into(),
                    ),
                }
                if notes.is_empty() {
                    format!("仮想ディスクのバイト {start:#x}..{end:#x}")
                } else {
                    format!(
                        "仮想ディスクのバイト {start:#x}..{end:#x}({})",
                        notes.join("、")
                    )
                }
            }
            FileWriteLabel::VhdSectorBitmap {
                block,
                sectors,
                start,
                end,
            } => format!(
                "VHD ブロック {block} のセクタービットマップ: 仮想バイト {start:#x}..{end:#x} の {sectors} セクターを使用中にする"
            ),
            FileWriteLabel::VhdxHeader {
                slot,
                sequence,
                log_emptied,
            } => format!(
                "VHDX ヘッダー {slot}(シーケンス番号 {sequence}、新しい FileWriteGuid と DataWriteGuid{})",
                if *log_emptied { "、ログは空に" } else { "" }
            ),
            FileWriteLabel::VhdxLogReplay {
                start,
                end,
                with_patches,
            } => format!(
                "ファイルのバイト {start:#x}..{end:#x}(VHDX ログの再生結果{})",
                if *with_patches { "。変更箇所を含む" } else { "" }
            ),
            FileWriteLabel::VmdkStream { part } => match part {
                VmdkStreamPart::Header => {
                    "VMDK ヘッダー(グレインディレクトリは末尾に: gdOffset は GD_AT_END)".into()
                }
                VmdkStreamPart::GrainTables { count } => format!(
                    "VMDK グレインテーブル {count} 個(それぞれマーカーの後。新しいグレインを指す)"
                ),
                VmdkStreamPart::GrainDirectory => {
                    "VMDK グレインディレクトリ(マーカーの後)".into()
                }
                VmdkStreamPart::Footer => "VMDK フッターマーカーとフッター".into(),
                VmdkStreamPart::EndOfStream => "VMDK ストリーム終端マーカー".into(),
            },
            FileWriteLabel::UnitTableEntry { unit } => {
                format!("{} の割り当てテーブルエントリ(新しい位置を指す)", self.unit(unit))
            }
            FileWriteLabel::AlignmentPadding => {
                "最初の新しいブロックまでの 0(ブロックは境界にそろえる)".into()
            }
            FileWriteLabel::VhdFooterMoved => {
                "VHD フッター(追加したブロックの後、ファイルの新しい末尾に)".into()
            }
            FileWriteLabel::Qcow2Metadata { part } => match part {
                Qcow2Part::L1Entry { index } => {
                    format!("qcow2 L1 テーブルのエントリ {index}(新しい L2 テーブルを指す)")
                }
                Qcow2Part::L2Entry { cluster } => {
                    format!("qcow2 クラスタ {cluster} の L2 テーブルエントリ(新しい位置を指す)")
                }
                Qcow2Part::NewL2Table { index } => format!("qcow2 L2 テーブル {index}(新規)"),
                Qcow2Part::RefcountBlock { count } => format!(
                    "qcow2 参照カウント {count} 個(使い始めるクラスタと参照を外すクラスタ)"
                ),
                Qcow2Part::NewRefcountBlock { index } => {
                    format!("qcow2 参照カウントブロック {index}(新規)")
                }
                Qcow2Part::RefcountTableEntry { index } => format!(
                    "qcow2 参照カウントテーブルのエントリ {index}(新しい参照カウントブロックを指す)"
                ),
            },
        }
    }
}

/// A structure name the plan table shows: the NTFS layer's and the container's are worded alike.
pub trait StructureName {
    /// The name in the page's language.
    fn worded(&self, t: T) -> String;
}

impl StructureName for ChangedStructure {
    fn worded(&self, t: T) -> String {
        t.structure(self)
    }
}

impl StructureName for FileWriteLabel {
    fn worded(&self, t: T) -> String {
        t.file_write(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_names_in_japanese() {
        let dir = |path: &str, record| IndexOwner::Directory {
            path: path.into(),
            record,
        };
        let cases = [
            (
                ChangedStructure::MftRecord {
                    record: 2146,
                    part: None,
                },
                "MFT レコード 2146",
            ),
            (
                ChangedStructure::MftMirrCopy { record: 3 },
                "MFT レコード 3 の $MFTMirr 複製",
            ),
            (
                ChangedStructure::BitmapBytes {
                    bitmap: BitmapOwner::ClusterBitmap,
                    start: 0x6f,
                    end: 0x70,
                },
                "$Bitmap(クラスターの使用ビットマップ)のバイト 0x6f..0x70",
            ),
            (
                ChangedStructure::IndexBlock {
                    vcn: 16,
                    of: dir("\\Windows\\System32\\drivers\\CrowdStrike", 1992),
                    index: "$I30".into(),
                },
                "ディレクトリ \\Windows\\System32\\drivers\\CrowdStrike(レコード 1992)の索引 $I30 のブロック VCN 16",
            ),
            (
                ChangedStructure::MftRecord {
                    record: 67,
                    part: Some(RecordPart::IndexRoot {
                        index: "$I30".into(),
                        of: dir("\\Windows\\System32\\drivers\\etc", 67),
                    }),
                },
                "MFT レコード 67(ディレクトリ \\Windows\\System32\\drivers\\etc(レコード 67)の索引ルート $INDEX_ROOT $I30)",
            ),
        ];
        for (s, ja) in cases {
            assert_eq!(T(Lang::Ja).structure(&s), ja);
            assert_eq!(T(Lang::En).structure(&s), s.to_string());
        }
        let writes = [
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x10,
                    end: 0x20,
                    unit: Some(ContainerUnit::VhdxBlock { block: 0 }),
                    how: WriteHow::Bytes,
                },
                "仮想ディスクのバイト 0x10..0x20(VHDX ブロック 0)",
            ),
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x10000,
                    end: 0x20000,
                    unit: Some(ContainerUnit::VmdkGrain { grain: 1 }),
                    how: WriteHow::Recompressed,
                },
                "仮想ディスクのバイト 0x10000..0x20000(VMDK グレイン 1、グレイン全体を圧縮し直してファイルの末尾に新しく格納)",
            ),
            (
                FileWriteLabel::VmdkStream {
                    part: VmdkStreamPart::GrainTables { count: 13 },
                },
                "VMDK グレインテーブル 13 個(それぞれマーカーの後。新しいグレインを指す)",
            ),
            (
                FileWriteLabel::VmdkStream {
                    part: VmdkStreamPart::EndOfStream,
                },
                "VMDK ストリーム終端マーカー",
            ),
            (
                FileWriteLabel::VhdxHeader {
                    slot: 1,
                    sequence: 12,
                    log_emptied: false,
                },
                "VHDX ヘッダー 1(シーケンス番号 12、新しい FileWriteGuid と DataWriteGuid)",
            ),
            (
                FileWriteLabel::VhdxHeader {
                    slot: 2,
                    sequence: 13,
                    log_emptied: true,
                },
                "VHDX ヘッダー 2(シーケンス番号 13、新しい FileWriteGuid と DataWriteGuid、ログは空に)",
            ),
            (
                FileWriteLabel::VhdxLogReplay {
                    start: 0x300000,
                    end: 0x301000,
                    with_patches: false,
                },
                "ファイルのバイト 0x300000..0x301000(VHDX ログの再生結果)",
            ),
            (
                FileWriteLabel::VhdxLogReplay {
                    start: 0x300000,
                    end: 0x301000,
                    with_patches: true,
                },
                "ファイルのバイト 0x300000..0x301000(VHDX ログの再生結果。変更箇所を含む)",
            ),
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x10,
                    end: 0x20,
                    unit: Some(ContainerUnit::VhdBlock { block: 3 }),
                    how: WriteHow::Filled,
                },
                "仮想ディスクのバイト 0x10..0x20(VHD ブロック 3、同じバイトで埋める)",
            ),
            (
                FileWriteLabel::VhdSectorBitmap {
                    block: 2,
                    sectors: 8,
                    start: 0x400,
                    end: 0x1400,
                },
                "VHD ブロック 2 のセクタービットマップ: 仮想バイト 0x400..0x1400 の 8 セクターを使用中にする",
            ),
            (
                FileWriteLabel::VirtualBytes {
                    start: 0x10,
                    end: 0x20,
                    unit: Some(ContainerUnit::Qcow2Cluster { cluster: 7 }),
                    how: WriteHow::Bytes,
                },
                "仮想ディスクのバイト 0x10..0x20(qcow2 クラスタ 7)",
            ),
        ];
        for (w, ja) in writes {
            assert_eq!(T(Lang::Ja).file_write(&w), ja);
            assert_eq!(T(Lang::En).file_write(&w), w.to_string());
        }
    }
}
