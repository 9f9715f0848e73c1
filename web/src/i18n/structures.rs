//! The structure viewer ("show the bytes"): the names of structures and fields and their values,
//! worded from the core's typed explanation (`kaifuku_rescue::explain`), every variant in both
//! languages.

use super::{grouped, Lang, T};
use kaifuku_ntfs::index::NodeId;
use kaifuku_ntfs::{AttributeType, Namespace};
use kaifuku_rescue::explain::{FieldName, FieldValue, StructureKind};
use kaifuku_rescue::Verdict;

impl T {
    pub fn structures_heading(self) -> &'static str {
        pick!(
            self,
            "ディスク上の構造(バイト列)",
            "The structures on the disk (bytes)"
        )
    }
    pub fn structures_intro(self) -> &'static str {
        pick!(
            self,
            "kaifuku が読んだ構造と、修復で変わるバイトです。各構造の位置は仮想ディスク先頭からのバイト数で、16 進エディターで確かめられます。表は各フィールドの名前と値です(16 進表示と同じ内容)。",
            "The structures kaifuku read, and the bytes the fix changes. Each structure's position is its byte offset on the virtual disk, so you can check it in any hex editor. The tables name every field and its value (the same as the hex view)."
        )
    }
    pub fn show_bytes_button(self) -> &'static str {
        pick!(self, "バイト列を見る", "Show the bytes")
    }
    pub fn structures_loading(self) -> &'static str {
        pick!(self, "構造を読んでいます…", "Reading the structures…")
    }
    pub fn at_disk_byte(self, offset: u64, len: usize) -> String {
        pick!(
            self,
            format!(
                "位置: ディスクの {} バイト目から {len} バイト",
                grouped(offset)
            ),
            format!("At disk byte {}, {len} bytes", grouped(offset))
        )
    }
    pub fn hex_label(self) -> &'static str {
        pick!(self, "16 進表示", "Hex view")
    }
    pub fn col_field_offset(self) -> &'static str {
        pick!(self, "構造内の位置", "Offset in the structure")
    }
    pub fn col_field(self) -> &'static str {
        pick!(self, "フィールド", "Field")
    }
    pub fn col_value(self) -> &'static str {
        pick!(self, "値", "Value")
    }
    pub fn patches_heading(self) -> &'static str {
        pick!(
            self,
            "修復で変わるバイト(前と後)",
            "What the fix changes (before and after)"
        )
    }
    pub fn before(self) -> &'static str {
        pick!(self, "前", "Before")
    }
    pub fn after(self) -> &'static str {
        pick!(self, "後", "After")
    }
    pub fn changed_run(self, offset: usize, len: usize, field: Option<FieldName>) -> String {
        let field = field.map_or_else(
            || pick!(self, "(名前のないバイト)", "(no named field)").to_string(),
            |f| self.field_name(f),
        );
        pick!(
            self,
            format!("+{offset:#x} から {len} バイト: {field}"),
            format!("+{offset:#x}, {len} byte(s): {field}")
        )
    }
    pub fn changed_bit(self, bit: u64, set_after: bool) -> String {
        match (self.0, set_after) {
            (Lang::Ja, true) => format!("ビット {bit} を 1 に"),
            (Lang::Ja, false) => format!("ビット {bit} を 0 に"),
            (Lang::En, true) => format!("bit {bit} set"),
            (Lang::En, false) => format!("bit {bit} cleared"),
        }
    }
    pub fn filled(self, byte: u8, len: u64) -> String {
        pick!(
            self,
            format!("{len} バイトを {byte:#04x} で埋めます"),
            format!("{len} bytes filled with {byte:#04x}")
        )
    }
    pub fn verdict_word(self, v: Verdict) -> &'static str {
        match v {
            Verdict::Faulty => pick!(self, "問題の版(04:09 UTC)", "faulty version (04:09 UTC)"),
            Verdict::Fixed => pick!(
                self,
                "修正版(05:27 UTC 以降)",
                "fixed version (05:27 UTC or later)"
            ),
            Verdict::Unknown => pick!(self, "どちらの版でもない", "neither known version"),
            Verdict::NotApplicable => pick!(self, "版の判定なし", "no versions known"),
        }
    }

    pub fn structure_kind(self, k: &StructureKind) -> String {
        match k {
            StructureKind::Mbr { protective: true } => {
                pick!(self, "保護 MBR(セクター 0)", "Protective MBR (sector 0)").into()
            }
            StructureKind::Mbr { protective: false } => {
                pick!(self, "MBR(セクター 0)", "MBR (sector 0)").into()
            }
            StructureKind::GptHeader => {
                pick!(self, "GPT ヘッダー(LBA 1)", "GPT header (LBA 1)").into()
            }
            StructureKind::GptEntry { partition } => pick!(
                self,
                format!("パーティション {partition} の GPT エントリー"),
                format!("GPT entry of partition {partition}")
            ),
            StructureKind::NtfsBootSector { partition: Some(p) } => pick!(
                self,
                format!("パーティション {p} の NTFS ブートセクター"),
                format!("NTFS boot sector of partition {p}")
            ),
            StructureKind::NtfsBootSector { partition: None } => {
                pick!(self, "NTFS ブートセクター", "NTFS boot sector").into()
            }
            StructureKind::IndexEntry {
                directory,
                directory_record,
                node,
                name,
                record,
            } => {
                let node = match (self.0, node) {
                    (_, NodeId::Root) => "$INDEX_ROOT".to_string(),
                    (Lang::Ja, NodeId::Block(vcn)) => format!("インデックスブロック VCN {vcn}"),
                    (Lang::En, NodeId::Block(vcn)) => format!("index block VCN {vcn}"),
                };
                pick!(
                    self,
                    format!("{directory}(MFT レコード {directory_record}、{node})のインデックスエントリー: {name} → MFT レコード {record}"),
                    format!("Index entry in {directory} (MFT record {directory_record}, {node}): {name} → MFT record {record}")
                )
            }
            StructureKind::MftRecord { record, path } => pick!(
                self,
                format!("MFT レコード {record}: {path}"),
                format!("MFT record {record}: {path}")
            ),
            StructureKind::FileStart { record, path } => pick!(
                self,
                format!("{path}(MFT レコード {record})の先頭バイト"),
                format!("First bytes of {path} (MFT record {record})")
            ),
        }
    }

    pub fn field_name(self, n: FieldName) -> String {
        use FieldName as N;
        let fixed = |ja: &'static str, en: &'static str| -> String { pick!(self, ja, en).into() };
        match n {
            N::BootCode => fixed("ブートコード", "boot code"),
            N::DiskSignature => fixed("ディスク署名", "disk signature"),
            N::MbrStatus { slot } => pick!(
                self,
                format!("エントリー {slot}: 状態(0x80 = アクティブ)"),
                format!("entry {slot}: status (0x80 = active)")
            ),
            N::MbrType { slot } => pick!(
                self,
                format!("エントリー {slot}: パーティションの種類"),
                format!("entry {slot}: partition type")
            ),
            N::MbrFirstLba { slot } => pick!(
                self,
                format!("エントリー {slot}: 先頭セクター"),
                format!("entry {slot}: first sector")
            ),
            N::MbrSectors { slot } => pick!(
                self,
                format!("エントリー {slot}: セクター数"),
                format!("entry {slot}: sectors")
            ),
            N::BootSignature => fixed("ブート署名 55 AA", "boot signature 55 AA"),
            N::GptSignature => fixed("GPT 署名", "GPT signature"),
            N::GptRevision => fixed("リビジョン", "revision"),
            N::GptHeaderSize => fixed("ヘッダーの大きさ", "header size"),
            N::GptHeaderCrc => fixed("ヘッダーの CRC-32", "header CRC-32"),
            N::GptCurrentLba => fixed("このヘッダーの LBA", "this header's LBA"),
            N::GptBackupLba => fixed("予備ヘッダーの LBA", "backup header's LBA"),
            N::GptFirstUsableLba => fixed("使える最初の LBA", "first usable LBA"),
            N::GptLastUsableLba => fixed("使える最後の LBA", "last usable LBA"),
            N::GptDiskGuid => fixed("ディスク GUID", "disk GUID"),
            N::GptEntriesLba => fixed("パーティションエントリーの LBA", "partition entries LBA"),
            N::GptEntryCount => fixed("エントリー数", "number of entries"),
            N::GptEntrySize => fixed("エントリーの大きさ", "entry size"),
            N::GptEntriesCrc => fixed("エントリーの CRC-32", "entries CRC-32"),
            N::GptTypeGuid => fixed("パーティション種類 GUID", "partition type GUID"),
            N::GptPartitionGuid => fixed("パーティション GUID", "partition GUID"),
            N::GptFirstLba => fixed("先頭 LBA", "first LBA"),
            N::GptLastLba => fixed("最後の LBA", "last LBA"),
            N::GptAttributes => fixed("属性", "attributes"),
            N::GptName => fixed("名前", "name"),
            N::OemId => fixed("OEM ID", "OEM id"),
            N::BytesPerSector => fixed("セクターあたりのバイト数", "bytes per sector"),
            N::SectorsPerCluster => fixed(
                "クラスターあたりのセクター数 → クラスターの大きさ",
                "sectors per cluster → cluster size",
            ),
            N::TotalSectors => fixed("総セクター数", "total sectors"),
            N::MftLcn => fixed("$MFT の先頭クラスター(LCN)", "$MFT first cluster (LCN)"),
            N::MftMirrLcn => fixed(
                "$MFTMirr の先頭クラスター(LCN)",
                "$MFTMirr first cluster (LCN)",
            ),
            N::ClustersPerFileRecord => fixed("ファイルレコードの大きさ", "file record size"),
            N::ClustersPerIndexBlock => fixed("インデックスブロックの大きさ", "index block size"),
            N::VolumeSerial => fixed("ボリュームのシリアル番号", "volume serial number"),
            N::Signature => fixed("署名", "signature"),
            N::UpdateSequenceOffset => fixed("更新シーケンスの位置", "update sequence offset"),
            N::UpdateSequenceCount => fixed("更新シーケンスの数", "update sequence count"),
            N::LogSequenceNumber => fixed(
                "$LogFile のシーケンス番号(LSN)",
                "$LogFile sequence number (LSN)",
            ),
            N::UpdateSequenceNumber => fixed("更新シーケンス番号", "update sequence number"),
            N::UpdateSequenceArray => fixed(
                "更新シーケンス配列(セクター末尾の退避)",
                "update sequence array (saved sector ends)",
            ),
            N::SectorEnd => fixed(
                "セクター末尾(ディスク上では更新シーケンス番号)",
                "sector end (holds the update sequence number)",
            ),
            N::SequenceNumber => fixed("シーケンス番号", "sequence number"),
            N::LinkCount => fixed("リンク数", "link count"),
            N::FirstAttributeOffset => fixed("最初の属性の位置", "first attribute offset"),
            N::RecordFlags => fixed("フラグ", "flags"),
            N::BytesInUse => fixed("使用バイト数", "bytes in use"),
            N::BytesAllocated => fixed("割り当てバイト数", "bytes allocated"),
            N::BaseRecord => fixed("ベースレコード", "base record"),
            N::NextAttributeId => fixed("次の属性 ID", "next attribute id"),
            N::RecordNumber => fixed("レコード番号", "record number"),
            N::AttributeTypeCode => fixed("属性の種類", "attribute type"),
            N::AttributeLength => fixed("属性の長さ", "attribute length"),
            N::AttributesEnd => fixed("属性の終わり", "end of attributes"),
            N::SiCreated => fixed(
                "$STANDARD_INFORMATION 作成日時",
                "$STANDARD_INFORMATION created",
            ),
            N::SiModified => fixed(
                "$STANDARD_INFORMATION 更新日時",
                "$STANDARD_INFORMATION modified",
            ),
            N::SiMftChanged => fixed(
                "$STANDARD_INFORMATION レコード変更日時",
                "$STANDARD_INFORMATION record changed",
            ),
            N::SiAccessed => fixed(
                "$STANDARD_INFORMATION アクセス日時",
                "$STANDARD_INFORMATION accessed",
            ),
            N::FileAttributes => fixed("ファイル属性", "file attributes"),
            N::FnParent => fixed("$FILE_NAME 親ディレクトリー", "$FILE_NAME parent directory"),
            N::FnAllocatedSize => fixed("$FILE_NAME 割り当てサイズ", "$FILE_NAME allocated size"),
            N::FnDataSize => fixed("$FILE_NAME データサイズ", "$FILE_NAME data size"),
            N::FnNameLength => fixed("$FILE_NAME 名前の長さ", "$FILE_NAME name length"),
            N::FnNamespace => fixed("$FILE_NAME 名前空間", "$FILE_NAME namespace"),
            N::FnName => fixed("$FILE_NAME 名前", "$FILE_NAME name"),
            N::AllocatedSize => fixed("割り当てサイズ", "allocated size"),
            N::DataSize => fixed("データサイズ", "data size"),
            N::DataRuns => fixed("データラン", "data runs"),
            N::ResidentValue => fixed("常駐値", "resident value"),
            N::IndexedAttributeType => fixed("索引する属性", "indexed attribute"),
            N::CollationRule => fixed("照合規則", "collation rule"),
            N::IndexBlockSize => fixed("インデックスブロックの大きさ", "index block size"),
            N::IndexBlockVcn => fixed("インデックスブロックの VCN", "index block VCN"),
            N::EntriesOffset => fixed("エントリーの位置", "entries offset"),
            N::IndexLength => fixed("インデックスの長さ", "index length"),
            N::IndexAllocatedSize => fixed("インデックスの割り当てサイズ", "index allocated size"),
            N::IndexFlags => fixed(
                "インデックスのフラグ(1 = 子あり)",
                "index flags (1 = has children)",
            ),
            N::EntryFileReference => fixed("エントリー: ファイル参照", "entry: file reference"),
            N::EntryLength => fixed("エントリー: 長さ", "entry: length"),
            N::EntryKeyLength => fixed("エントリー: キーの長さ", "entry: key length"),
            N::EntryFlags => fixed(
                "エントリー: フラグ(1 = 子ノード、2 = 最後)",
                "entry: flags (1 = child node, 2 = last)",
            ),
            N::EntrySubnode => fixed("エントリー: 子ノードの VCN", "entry: child node VCN"),
            N::FirstBytes => fixed("先頭バイト", "first bytes"),
            N::MftBitmapBits => fixed(
                "$MFT:$BITMAP のビット(ファイルレコードごとに 1 ビット)",
                "$MFT:$BITMAP bits (one per file record)",
            ),
            N::ClusterBitmapBits => fixed(
                "$Bitmap のビット(クラスターごとに 1 ビット)",
                "$Bitmap bits (one per cluster)",
            ),
            N::IndexBitmapBits => fixed(
                "インデックスの $BITMAP のビット(ブロックごとに 1 ビット)",
                "index $BITMAP bits (one per index block)",
            ),
            N::JournalBytes => fixed("$LogFile のバイト", "$LogFile bytes"),
        }
    }

    pub fn field_value(self, v: &FieldValue) -> String {
        match v {
            FieldValue::Number { value } => value.to_string(),
            FieldValue::Hex { value } => format!("{value:#x}"),
            FieldValue::Size { encoded, bytes } => pick!(
                self,
                format!("{bytes} バイト(格納値 {encoded})"),
                format!("{bytes} bytes (stored as {encoded})")
            ),
            FieldValue::Text { text } => format!("\"{text}\""),
            FieldValue::Guid { guid } => guid.clone(),
            FieldValue::Time { utc, .. } => utc.clone(),
            FieldValue::FileReference { record, sequence } => pick!(
                self,
                format!("レコード {record}、シーケンス {sequence}"),
                format!("record {record}, sequence {sequence}")
            ),
            FieldValue::RecordFlags { in_use, directory } => {
                let state = match (self.0, in_use) {
                    (Lang::Ja, true) => "使用中",
                    (Lang::Ja, false) => "未使用",
                    (Lang::En, true) => "in use",
                    (Lang::En, false) => "not in use",
                };
                let kind = match (self.0, directory) {
                    (Lang::Ja, true) => "ディレクトリー",
                    (Lang::Ja, false) => "ファイル",
                    (Lang::En, true) => "directory",
                    (Lang::En, false) => "file",
                };
                pick!(self, format!("{state}、{kind}"), format!("{state}, {kind}"))
            }
            FieldValue::Namespace { namespace } => match namespace {
                Namespace::Posix => "POSIX".into(),
                Namespace::Win32 => pick!(self, "Win32(長い名前)", "Win32 (long name)").into(),
                Namespace::Dos => pick!(self, "DOS(8.3 形式の名前)", "DOS (8.3 name)").into(),
                Namespace::Win32AndDos => pick!(self, "Win32 と DOS", "Win32 and DOS").into(),
                Namespace::Unknown(b) => {
                    pick!(self, format!("不明({b})"), format!("unknown ({b})"))
                }
            },
            FieldValue::Attribute { code, attribute } => match attribute {
                Some(a) => format!("{} ({code:#x})", attribute_name(*a)),
                None => format!("{code:#x}"),
            },
            FieldValue::Runs { runs } => runs
                .iter()
                .map(|r| match (self.0, r.lcn) {
                    (Lang::Ja, Some(lcn)) => {
                        format!("VCN {}: LCN {lcn} から {} クラスター", r.vcn, r.length)
                    }
                    (Lang::Ja, None) => format!("VCN {}: スパース {} クラスター", r.vcn, r.length),
                    (Lang::En, Some(lcn)) => {
                        format!("VCN {}: {} cluster(s) at LCN {lcn}", r.vcn, r.length)
                    }
                    (Lang::En, None) => format!("VCN {}: {} sparse cluster(s)", r.vcn, r.length),
                })
                .collect::<Vec<_>>()
                .join(pick!(self, "、", ", ")),
            FieldValue::Bytes { hex } => hex
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            FieldValue::Opaque => String::new(),
        }
    }
}

/// An attribute type's on-disk name, the same in every language.
fn attribute_name(a: AttributeType) -> &'static str {
    a.name()
}
