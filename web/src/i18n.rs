//! Every sentence the page shows, in Japanese and English. Each message is one `match` on the
//! language, so a message cannot exist in one language only.

use crate::view::{CheckView, Problem, ProblemCode, VolumeName};
use kaifuku_partition::NoticeKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// From a BCP 47 tag such as `navigator.language` ("ja-JP" → Japanese, anything else English).
    pub fn from_tag(tag: &str) -> Lang {
        if tag.trim().to_ascii_lowercase().starts_with("ja") {
            Lang::Ja
        } else {
            Lang::En
        }
    }
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

pub use kaifuku_rescue::human::size;

/// A number with thin grouping, for byte offsets: 53 477 376.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(c);
    }
    out
}

/// The texts of the page in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct T(pub Lang);

macro_rules! pick {
    ($self:ident, $ja:expr, $en:expr) => {
        match $self.0 {
            Lang::Ja => $ja,
            Lang::En => $en,
        }
    };
}

impl T {
    pub fn lang(self) -> Lang {
        self.0
    }

    // ---- frame ----
    pub fn title(self) -> &'static str {
        pick!(self, "kaifuku(回復)", "kaifuku (回復)")
    }
    pub fn subtitle(self) -> &'static str {
        pick!(
            self,
            "Windows の仮想マシンのディスクイメージをオフラインで修復します",
            "Repair a Windows virtual machine disk image offline"
        )
    }
    pub fn intro(self) -> &'static str {
        pick!(
            self,
            "書き出した仮想ディスクイメージから、2024年7月19日に Windows を起動不能にした CrowdStrike のチャネルファイル(C-00000291*.sys)を削除し、結果を検証して、修復済みのコピーを作ります。",
            "Removes the CrowdStrike channel file (C-00000291*.sys) that made Windows boot-loop on 19 July 2024 from an exported disk image, verifies the result and gives you a fixed copy."
        )
    }
    pub fn privacy_title(self) -> &'static str {
        pick!(
            self,
            "イメージはこのコンピューターから出ません",
            "Your image never leaves this computer"
        )
    }
    pub fn privacy(self) -> &'static str {
        pick!(
            self,
            "処理はすべてこのブラウザーの中で行われ、何もアップロードされません。このページはネットワークがなくても動きます。元のファイルは変更しません。",
            "Everything runs here, in your browser: nothing is uploaded anywhere, and the page works with the network gone. The original file is never modified."
        )
    }
    pub fn language(self) -> &'static str {
        pick!(self, "表示言語", "Language")
    }
    pub fn footer(self) -> &'static str {
        pick!(
            self,
            "kaifuku はディスクイメージをこのブラウザーの中だけで読み書きします。ネットワークには何も送りません。",
            "kaifuku reads and builds disk images inside this browser only. Nothing is sent over the network."
        )
    }

    // ---- picking ----
    pub fn pick_heading(self) -> &'static str {
        pick!(self, "1. ディスクイメージを選ぶ", "1. Choose a disk image")
    }
    pub fn drop_hint(self) -> &'static str {
        pick!(
            self,
            "ディスクイメージ(.raw、.img、固定サイズまたは可変長の .vhd)をここにドロップするか、",
            "Drop a disk image here (.raw, .img, fixed or dynamic .vhd), or"
        )
    }
    pub fn pick_button(self) -> &'static str {
        pick!(self, "ファイルを選択…", "choose a file…")
    }
    pub fn drop_active(self) -> &'static str {
        pick!(
            self,
            "ここで離すと読み取りを始めます",
            "Release to start reading"
        )
    }
    pub fn current_file(self, name: &str, bytes: u64) -> String {
        pick!(
            self,
            format!("選択中: {name}({})", size(bytes)),
            format!("Selected: {name} ({})", size(bytes))
        )
    }
    pub fn open_another(self) -> &'static str {
        pick!(self, "別のイメージを開く", "Open another image")
    }

    // ---- progress ----
    pub fn step(self, phase: &str) -> &'static str {
        match (self.0, phase) {
            (Lang::Ja, "inspect") => "イメージを読み取り中",
            (Lang::En, "inspect") => "Reading the image",
            (Lang::Ja, "plan") => "修復を計画・検証中",
            (Lang::En, "plan") => "Planning and checking the fix",
            (Lang::Ja, "verify") => "修復後のイメージを最初から読み直して検証中",
            (Lang::En, "verify") => "Reading the fixed image back from scratch",
            (Lang::Ja, "output") => "ダウンロードを準備中",
            (Lang::En, "output") => "Preparing the download",
            (Lang::Ja, _) => "処理中",
            (Lang::En, _) => "Working",
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

    // ---- image and partitions ----
    pub fn image_heading(self) -> &'static str {
        pick!(self, "イメージ", "Image")
    }
    pub fn file(self) -> &'static str {
        pick!(self, "ファイル", "File")
    }
    pub fn format(self) -> &'static str {
        pick!(self, "形式", "Format")
    }
    pub fn format_name(self, code: &str) -> String {
        match (self.0, code) {
            (Lang::Ja, "raw") => "raw(ディスクをそのまま写したイメージ)".into(),
            (Lang::En, "raw") => "raw (a sector-by-sector copy of the disk)".into(),
            (Lang::Ja, "vhd_fixed") => "VHD(固定サイズ)".into(),
            (Lang::En, "vhd_fixed") => "VHD, fixed size".into(),
            (Lang::Ja, "vhd_dynamic") => "VHD(可変長)".into(),
            (Lang::En, "vhd_dynamic") => "VHD, dynamic".into(),
            (_, other) => other.into(),
        }
    }
    pub fn virtual_size(self) -> &'static str {
        pick!(self, "仮想ディスクのサイズ", "Virtual disk size")
    }
    pub fn file_size(self) -> &'static str {
        pick!(self, "ファイルサイズ", "File size")
    }
    pub fn partitions_heading(self) -> &'static str {
        pick!(self, "パーティション", "Partitions")
    }
    pub fn scheme(self, code: &str, sector: u32) -> String {
        match (self.0, code) {
            (Lang::Ja, "none") => format!(
                "パーティションテーブルなし(ディスク全体が1つのボリューム)、セクター {sector} バイト"
            ),
            (Lang::En, "none") => format!(
                "no partition table (the whole disk is one volume), {sector}-byte sectors"
            ),
            (Lang::Ja, s) => format!("{}、セクター {sector} バイト", s.to_uppercase()),
            (Lang::En, s) => format!("{}, {sector}-byte sectors", s.to_uppercase()),
        }
    }
    pub fn col_number(self) -> &'static str {
        pick!(self, "番号", "#")
    }
    pub fn col_start(self) -> &'static str {
        pick!(self, "開始位置(バイト)", "Start (byte)")
    }
    pub fn col_size(self) -> &'static str {
        pick!(self, "サイズ", "Size")
    }
    pub fn col_type(self) -> &'static str {
        pick!(self, "種類", "Type")
    }
    pub fn col_name(self) -> &'static str {
        pick!(self, "名前", "Name")
    }
    pub fn extended(self) -> &'static str {
        pick!(
            self,
            "(拡張パーティションの入れ物)",
            "(extended: holds logical partitions)"
        )
    }
    /// A partition type's name; the Windows ones as Windows calls them in Japanese, the rest
    /// (file-system and vendor names) as they are.
    pub fn partition_type(self, name: &str) -> String {
        if self.0 == Lang::En {
            return name.to_string();
        }
        match name {
            "EFI System" => "EFI システム パーティション",
            "EFI System (FAT)" => "EFI システム パーティション (FAT)",
            "Microsoft reserved" => "Microsoft 予約パーティション",
            "Basic data" => "ベーシック データ パーティション",
            "Windows recovery" => "Windows 回復環境",
            "Windows recovery (hidden NTFS)" => "Windows 回復環境(隠し NTFS)",
            "Windows LDM metadata" => "Windows ダイナミックディスク (LDM) メタデータ",
            "Windows LDM data" => "Windows ダイナミックディスク (LDM) データ",
            "Windows dynamic disk (LDM)" => "Windows ダイナミックディスク (LDM)",
            "Windows Storage Spaces" => "Windows 記憶域スペース",
            "Extended" => "拡張パーティション",
            "GPT protective" => "GPT 保護パーティション",
            "Hibernation" => "休止状態",
            "Empty" => "空",
            "Unknown" => "不明",
            other => other,
        }
        .to_string()
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

    /// A partition-table note or warning, in the page's language.
    pub fn notice(self, n: &NoticeKind) -> String {
        use NoticeKind::*;
        if self.0 == Lang::En {
            return n.to_string();
        }
        match n {
            GptSector4096 => "論理セクターサイズ 4096: GPT ヘッダーは 4096 バイト目(LBA 1)にあります。".into(),
            SizeNotWholeSectors { size, sector_size } => {
                format!("ディスクのサイズ({size} バイト)が {sector_size} バイトのセクターで割り切れません。")
            }
            GptCopiesDiffer => "プライマリ GPT とバックアップ GPT の内容が異なります。Windows と同じくプライマリを使いました。パーティション操作が途中で中断された可能性があります。".into(),
            GptDiskGuidsDiffer => "プライマリ GPT とバックアップ GPT のディスク GUID が異なります。".into(),
            BackupGptDamaged { detail } => format!("バックアップ GPT がないか壊れています({detail})。プライマリ GPT は無傷で、それを使ったので下のパーティションは信頼できます。イメージが元のディスクより短い場合は途中で切れています。もう一度完全にエクスポートしてください。"),
            PrimaryGptDamaged { detail, backup_lba } => format!("プライマリ GPT が壊れています({detail})。LBA {backup_lba} のバックアップ GPT は無傷なので、それを使いました。Windows はバックアップからプライマリを修復しますが、kaifuku はそのままにします。"),
            DiskEnlarged { backup_lba, last_lba } => format!("バックアップ GPT が最終セクター({last_lba})より前の LBA {backup_lba} にあります。パーティション作成後にディスクが拡張されました。LBA {backup_lba} より後ろは未割り当てです。"),
            GptTruncated { needed, size } => format!("GPT は {needed} バイト以上のディスクを示していますが、イメージは {size} バイトしかありません。イメージが途中で切れています。できればディスク全体をもう一度エクスポートしてください。"),
            GptEntryImpossible { number, name, first_lba, last_lba } => format!(
                "GPT エントリ {number}({})の範囲(LBA {first_lba}..{last_lba})があり得ない値なので、読み飛ばしました。",
                if name.is_empty() { "名前なし" } else { name }
            ),
            OutsideUsableArea { number, first_lba, last_lba, usable_first, usable_last } => format!("パーティション {number}(LBA {first_lba}..{last_lba})は GPT の使用可能領域(LBA {usable_first}..{usable_last})の外にあります。"),
            DynamicDiskGpt { number } => format!("パーティション {number} は Windows のダイナミックディスクまたは記憶域プールの一部です。中のボリュームは GPT に書かれていないため、kaifuku では開けません。"),
            HybridMbr => "MBR はハイブリッド MBR です(GPT 保護エントリ以外のパーティションも載っています)。正式な GPT を使いました。".into(),
            StaleGpt { at } => format!("GPT ヘッダー({at} バイト目)がありますが、MBR に保護エントリがないため、Windows と同じく古い GPT として無視しました。MBR のパーティションを表示しています。"),
            ProtectiveMbrMissing => "先頭セクターの保護 MBR がないか空です。GPT はそのまま読みました。保護 MBR を戻すまで起動できないファームウェアもあります(gdisk で再作成できます)。".into(),
            BareSectorCountedIn512 { boot_sector_size } => format!("ブートセクターのセクターサイズは {boot_sector_size} バイトですが、パーティションのセクターは 512 バイト単位で数えます。"),
            BareNoSectorSize => "ブートセクターに使えるセクターサイズがないため、512 バイトとみなしました。".into(),
            PartitionTruncated { extended, number, end, size, missing } => format!(
                "{} {number} は {end} バイト目で終わりますが、ディスクイメージは {size} バイトしかありません。イメージが途中で切れている(または表が誤っている)ため、このパーティションの最後の {missing} バイトがありません。できればディスク全体をもう一度エクスポートしてください。",
                if *extended { "拡張パーティション" } else { "パーティション" }
            ),
            PartitionsOverlap { a, b, a_start, a_end, b_start, b_end } => format!("パーティション {a} と {b} が重なっています({a_start}..{a_end} と {b_start}..{b_end} バイト)。表が壊れているか手で編集されています。どちらも慎重に扱ってください。"),
            DynamicDiskMbr { number } => format!("パーティション {number} は Windows のダイナミックディスク(LDM)のパーティションです。中のボリュームは LDM データベースに書かれており、kaifuku は読みません。"),
            EbrPastEnd { ebr, extended } => format!("拡張パーティション {extended} のセクター {ebr} にある論理パーティション表がイメージの終わりより後ろにあります(イメージが途中で切れています)。そこから先の論理パーティションはありません。"),
            EbrNoSignature { ebr, extended } => format!("拡張パーティション {extended} のセクター {ebr} にある論理パーティション表に 55AA の署名がないため、論理パーティションの連鎖はそこで終わります(Windows や Linux と同じ扱いです)。"),
            Mbr4096FromBootSectors { partitions } => format!(
                "論理セクターサイズ 4096: 4096 バイト単位で数えると、パーティション {} の先頭に「1 セクター 4096 バイト」と書かれたブートセクターがあります。",
                partitions.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
            ),
            Mbr4096FromExtendedChain => "論理セクターサイズ 4096: 拡張パーティションの表は、セクターを 4096 バイトとして数えたときにだけ見つかります。".into(),
            Mbr512FromDiskSize => "論理セクターサイズを 512 バイトとみなしました。どのパーティションの先頭にも見分けのつくブートセクターがなく、4096 バイトとするとパーティションがディスクの終わりを越えてしまうためです。".into(),
            Mbr512Assumed => "ディスクから論理セクターサイズを判断できませんでした(どのパーティションの先頭にも見分けのつくブートセクターがありません)。ほとんどのディスクと同じく 512 バイトとみなしました。パーティションがおかしく見える場合は 4096 バイトセクターのディスクかもしれません。".into(),
            BareVolume { volume } => format!("パーティション表はありません。ディスク全体が 1 つの {volume} です(先頭セクターがボリュームのブートセクターです)。"),
            EmptyMbr => "MBR は正常ですがパーティションが 1 つもありません。このディスクにボリュームはありません。".into(),
        }
    }

    pub fn table_note(self) -> &'static str {
        pick!(self, "注記", "Note")
    }
    pub fn table_warning(self) -> &'static str {
        pick!(self, "警告", "Warning")
    }

    // ---- volumes ----
    pub fn volumes_heading(self) -> &'static str {
        pick!(self, "ボリューム", "Volumes")
    }
    pub fn volume_name(self, partition: Option<u32>, label: Option<&str>) -> String {
        let place = match (self.0, partition) {
            (Lang::Ja, Some(n)) => format!("パーティション {n}"),
            (Lang::En, Some(n)) => format!("Partition {n}"),
            (Lang::Ja, None) => "ボリューム".to_string(),
            (Lang::En, None) => "Volume".to_string(),
        };
        match label {
            Some(l) => format!("{place} “{l}”"),
            None => place,
        }
    }
    pub fn vol(self, v: &VolumeName) -> String {
        self.volume_name(v.partition, v.label.as_deref())
    }
    pub fn col_volume(self) -> &'static str {
        pick!(self, "ボリューム", "Volume")
    }
    pub fn col_fs(self) -> &'static str {
        pick!(self, "ファイルシステム", "File system")
    }
    pub fn col_cluster(self) -> &'static str {
        pick!(self, "クラスター", "Cluster")
    }
    pub fn col_journal(self) -> &'static str {
        pick!(self, "ジャーナル", "Journal")
    }
    pub fn col_dirty(self) -> &'static str {
        pick!(self, "ダーティフラグ", "Dirty flag")
    }
    pub fn col_encryption(self) -> &'static str {
        pick!(self, "BitLocker", "BitLocker")
    }
    pub fn col_hibernation(self) -> &'static str {
        pick!(self, "休止状態", "Hibernation")
    }
    pub fn fs_name(self, fs: &str, version: Option<&str>) -> String {
        match (self.0, fs) {
            (_, "ntfs") => format!("NTFS {}", version.unwrap_or("")).trim().to_string(),
            (Lang::Ja, "bitlocker") => "BitLocker(暗号化)".into(),
            (Lang::En, "bitlocker") => "BitLocker (encrypted)".into(),
            (_, "fat") => "FAT".into(),
            (_, "exfat") => "exFAT".into(),
            (_, "refs") => "ReFS".into(),
            (Lang::Ja, _) => "不明・未対応".into(),
            (Lang::En, _) => "unknown / not recognised".into(),
        }
    }
    pub fn journal_state(self, state: &str, empty: bool) -> String {
        match (self.0, state, empty) {
            (Lang::Ja, "clean", true) => "クリーン(空)".into(),
            (Lang::En, "clean", true) => "clean (empty)".into(),
            (Lang::Ja, "clean", false) => "クリーン".into(),
            (Lang::En, "clean", false) => "clean".into(),
            (Lang::Ja, "unclean", _) => "未完了の変更あり(クラッシュ後)".into(),
            (Lang::En, "unclean", _) => "unclean (changes pending after a crash)".into(),
            (Lang::Ja, "v2.0", _) => {
                "バージョン 2.0(Windows 8 以降の高速スタートアップまたは異常停止)".into()
            }
            (Lang::En, "v2.0", _) => {
                "version 2.0 (Windows 8 or later: Fast Startup or an abrupt stop)".into()
            }
            (Lang::Ja, _, _) => "読み取り不能(未完了として扱います)".into(),
            (Lang::En, _, _) => "unreadable (treated as unclean)".into(),
        }
    }
    pub fn dirty(self, set: bool) -> &'static str {
        match (self.0, set) {
            (Lang::Ja, true) => "セット(次回起動時に chkdsk)",
            (Lang::En, true) => "set (chkdsk at next boot)",
            (Lang::Ja, false) => "なし",
            (Lang::En, false) => "clear",
        }
    }
    pub fn bitlocker(self, on: bool) -> &'static str {
        match (self.0, on) {
            (Lang::Ja, true) => "暗号化されている",
            (Lang::En, true) => "encrypted",
            (Lang::Ja, false) => "なし",
            (Lang::En, false) => "no",
        }
    }
    pub fn hibernation(self, hibernated: bool, present: bool) -> &'static str {
        match (self.0, hibernated, present) {
            (Lang::Ja, true, _) => "休止状態",
            (Lang::En, true, _) => "hibernated",
            (Lang::Ja, false, true) => "hiberfil.sys あり(休止状態ではない)",
            (Lang::En, false, true) => "hiberfil.sys present, not hibernated",
            (Lang::Ja, false, false) => "なし",
            (Lang::En, false, false) => "none",
        }
    }
    pub fn windows_badge(self) -> &'static str {
        pick!(self, "Windows", "Windows")
    }
    pub fn windows_volume(self) -> &'static str {
        pick!(
            self,
            "Windows が入っているボリューム",
            "the volume that holds Windows"
        )
    }
    pub fn volume_error(self, refused: bool) -> &'static str {
        match (self.0, refused) {
            (Lang::Ja, true) => "調べられません",
            (Lang::En, true) => "cannot examine",
            (Lang::Ja, false) => "エラー",
            (Lang::En, false) => "error",
        }
    }

    // ---- matches ----
    pub fn matches_heading(self) -> &'static str {
        pick!(self, "ルールに一致したファイル", "Files the rule matches")
    }
    pub fn rule_line(self, id: &str, title: &str, path: &str) -> String {
        let title = match (self.0, id) {
            (Lang::Ja, "crowdstrike-2024-07-19") => {
                "CrowdStrike チャネルファイル 291(2024年7月19日)"
            }
            _ => title,
        };
        pick!(
            self,
            format!("ルール: {title} — {path}"),
            format!("Rule: {title} — {path}")
        )
    }
    pub fn col_file(self) -> &'static str {
        pick!(self, "ファイル", "File")
    }
    pub fn col_created(self) -> &'static str {
        pick!(self, "作成(UTC)", "Created (UTC)")
    }
    pub fn col_modified(self) -> &'static str {
        pick!(self, "更新(UTC)", "Modified (UTC)")
    }
    pub fn col_header(self) -> &'static str {
        pick!(self, "先頭8バイト", "First 8 bytes")
    }
    pub fn col_zero(self) -> &'static str {
        pick!(self, "すべてゼロ", "All zeros")
    }
    pub fn col_verdict(self) -> &'static str {
        pick!(self, "判定", "Verdict")
    }
    pub fn bytes(self, n: u64) -> String {
        pick!(
            self,
            format!("{} バイト", grouped(n)),
            format!("{} bytes", grouped(n))
        )
    }
    pub fn mft_record(self, n: u64) -> String {
        pick!(self, format!("MFT レコード {n}"), format!("MFT record {n}"))
    }
    pub fn short_name(self, n: &str) -> String {
        pick!(self, format!("短い名前 {n}"), format!("short name {n}"))
    }
    pub fn header_known_bad(self, known: Option<bool>) -> &'static str {
        match (self.0, known) {
            (Lang::Ja, Some(true)) => "既知の不良ヘッダー",
            (Lang::En, Some(true)) => "the known-bad header",
            (Lang::Ja, Some(false)) => "既知の不良ヘッダーではない",
            (Lang::En, Some(false)) => "not the known-bad header",
            (_, None) => "",
        }
    }
    pub fn empty_file(self) -> &'static str {
        pick!(self, "(空)", "(empty)")
    }
    pub fn yes_no(self, b: bool) -> &'static str {
        match (self.0, b) {
            (Lang::Ja, true) => "はい",
            (Lang::En, true) => "yes",
            (Lang::Ja, false) => "いいえ",
            (Lang::En, false) => "no",
        }
    }
    pub fn verdict(self, v: &str) -> &'static str {
        match (self.0, v) {
            (Lang::Ja, "faulty") => "不具合版(04:09 UTC)",
            (Lang::En, "faulty") => "faulty version (04:09 UTC)",
            (Lang::Ja, "fixed") => "修正版(05:27 UTC 以降)",
            (Lang::En, "fixed") => "fixed version (05:27 UTC or later)",
            (_, "none") => "—",
            (Lang::Ja, _) => "版は不明",
            (Lang::En, _) => "unknown version",
        }
    }
    pub fn guidance(self) -> &'static str {
        pick!(
            self,
            "CrowdStrike と Microsoft の公式手順では、一致するファイルをすべて削除します。kaifuku もすべて削除します(csagent.sys とフォルダー自体には触れません)。",
            "The official guidance (CrowdStrike, Microsoft) is to delete every matching file, and kaifuku deletes all of them (csagent.sys and the folder itself are left alone)."
        )
    }
    /// Matches were found but a blocker (hibernation, BitLocker elsewhere, ...) stops the fix.
    pub fn outcome_blocked(self, n: usize) -> String {
        match self.0 {
            Lang::Ja => {
                format!("一致するファイルが {n} 個ありますが、ここでは削除できません(理由は下記)。")
            }
            Lang::En => format!(
                "Found {n} matching file(s), but they cannot be deleted here (see why below)."
            ),
        }
    }
    pub fn outcome(self, outcome: &str, n: usize) -> String {
        match (self.0, outcome) {
            (Lang::Ja, "matches") => format!("削除するファイルが {n} 個見つかりました。"),
            (Lang::En, "matches") => format!("Found {n} file(s) to delete."),
            (Lang::Ja, "nothing-to-fix") => "修復の必要はありません。".into(),
            (Lang::En, "nothing-to-fix") => "Nothing to fix.".into(),
            (Lang::Ja, "refused") => "このイメージはここでは修復できません。".into(),
            (Lang::En, "refused") => "This image cannot be fixed here.".into(),
            (Lang::Ja, _) => "イメージを読み取れませんでした。".into(),
            (Lang::En, _) => "The image could not be read.".into(),
        }
    }

    // ---- problems ----
    pub fn problem_title(self, p: &ProblemCode) -> &'static str {
        use ProblemCode::*;
        match (self.0, p) {
            (Lang::Ja, UnsupportedFormat { .. }) => "まだ読めない形式です",
            (Lang::En, UnsupportedFormat { .. }) => "A format kaifuku cannot read yet",
            (Lang::Ja, DifferencingVhd) => "差分 VHD です",
            (Lang::En, DifferencingVhd) => "A differencing VHD",
            (Lang::Ja, DamagedContainer) => "イメージファイルが壊れているか不完全です",
            (Lang::En, DamagedContainer) => "The image file is damaged or incomplete",
            (Lang::Ja, DamagedPartitions) => "パーティションテーブルを読み取れません",
            (Lang::En, DamagedPartitions) => "The partition table cannot be read",
            (Lang::Ja, BitLocker) => "BitLocker で暗号化されています",
            (Lang::En, BitLocker) => "Encrypted with BitLocker",
            (Lang::Ja, Hibernated) => "Windows が休止状態です",
            (Lang::En, Hibernated) => "Windows is hibernated",
            (Lang::Ja, QuotaTracking) => "ディスククォータが有効です",
            (Lang::En, QuotaTracking) => "Disk quotas are tracked",
            (Lang::Ja, JournalUnclean { .. }) => "ボリュームのジャーナルがクリーンではありません",
            (Lang::En, JournalUnclean { .. }) => "The volume's journal is not clean",
            (Lang::Ja, NoWindows) => "Windows が見つかりません",
            (Lang::En, NoWindows) => "No Windows found",
            (Lang::Ja, NoCrowdStrikeDirectory) => "CrowdStrike のフォルダーがありません",
            (Lang::En, NoCrowdStrikeDirectory) => "No CrowdStrike folder",
            (Lang::Ja, NoMatch) => "該当するファイルはありません",
            (Lang::En, NoMatch) => "No matching file",
            (Lang::Ja, DirectorySkipped { .. }) => "同じ名前のフォルダーは残します",
            (Lang::En, DirectorySkipped { .. }) => "A folder with a matching name stays",
            (Lang::Ja, LinkFollowed { .. }) => "リンクをたどりました",
            (Lang::En, LinkFollowed { .. }) => "A link was followed",
            (Lang::Ja, VolumeUnsupported) => "未対応の機能があります",
            (Lang::En, VolumeUnsupported) => "Something kaifuku does not handle yet",
            (Lang::Ja, VolumeDamaged) => "ボリュームを読み取れません",
            (Lang::En, VolumeDamaged) => "A volume cannot be read",
            (Lang::Ja, ReadFailed) => "ファイルを読み取れません",
            (Lang::En, ReadFailed) => "The file cannot be read",
            (Lang::Ja, PatchInUnallocatedBlock) => "可変長 VHD の未割り当て領域です",
            (Lang::En, PatchInUnallocatedBlock) => "An unallocated part of a dynamic VHD",
            (Lang::Ja, FixFailed) => "修復を計画できませんでした",
            (Lang::En, FixFailed) => "The fix could not be planned",
            (Lang::Ja, VerificationFailed) => "再検証に失敗しました",
            (Lang::En, VerificationFailed) => "Re-verification failed",
            (Lang::Ja, Internal) => "内部エラー",
            (Lang::En, Internal) => "Internal error",
        }
    }

    pub fn problem_text(self, p: &Problem) -> String {
        use ProblemCode::*;
        let vol = match &p.volume {
            Some(v) => self.vol(v),
            None => pick!(self, "ボリューム".to_string(), "The volume".to_string()),
        };
        match (&p.code, self.0) {
            (UnsupportedFormat { format, qemu }, Lang::Ja) => format!(
                "これは {format} 形式のイメージです。kaifuku は形式を認識できますが、まだ中身を読み取れません。先に raw 形式に変換してください(例: qemu-img convert -f {qemu} -O raw IMAGE disk.raw。固定サイズの VHD でも構いません)。変換したファイルを開き直してください。"
            ),
            (UnsupportedFormat { format, qemu }, Lang::En) => format!(
                "This is a {format} image: kaifuku recognises it but cannot read it yet. Convert it to raw first, for example with qemu-img convert -f {qemu} -O raw IMAGE disk.raw (a fixed-size VHD works too), then open the converted file."
            ),
            (DifferencingVhd, Lang::Ja) => "これは差分 VHD です。親イメージに対する変更分しか含まないため、単独では修復できません。先に親イメージと結合し(Hyper-V の「ディスクの編集」→「結合」、または qemu-img convert)、結合したイメージを開いてください。".into(),
            (DifferencingVhd, Lang::En) => "This is a differencing VHD: it only holds the changes made on top of a parent image and cannot be repaired on its own. Merge it into its parent first (Hyper-V: Edit Disk → Merge, or qemu-img convert), then open the merged image.".into(),
            (DamagedContainer, Lang::Ja) => "イメージファイルが壊れているか、不完全です(ダウンロードやコピーが途中で終わった場合など)。イメージをもう一度コピーまたはエクスポートし、最後までコピーされたことを確かめてください。".into(),
            (DamagedContainer, Lang::En) => "The image file is damaged or incomplete (for example a download or copy that did not finish). Copy or export the image again and check that the copy is complete.".into(),
            (DamagedPartitions, Lang::Ja) => "パーティションテーブルを読み取れませんでした。イメージが壊れているか、ディスクイメージではない可能性があります。".into(),
            (DamagedPartitions, Lang::En) => "The partition table could not be read: the image may be damaged, or it is not a disk image.".into(),
            (BitLocker, Lang::Ja) => format!("{vol} は BitLocker で暗号化されています。kaifuku はまだ暗号化されたボリュームを読み取れません。BitLocker の回復キーでロックを解除できる環境(ディスクを接続したレスキュー用 VM など)でファイルを削除するか、先に暗号化を解除してください。"),
            (BitLocker, Lang::En) => format!("{vol} is encrypted with BitLocker, and kaifuku cannot read encrypted volumes yet. Unlock the disk with its BitLocker recovery key where you can (for example a rescue VM with the disk attached) and delete the file there, or decrypt the volume first."),
            (Hibernated, Lang::Ja) => format!("{vol}: Windows が休止状態です(hiberfil.sys に保存されたセッションがあります)。復帰するとオフラインで加えた変更が上書きされるため、kaifuku は編集しません。Windows を起動して完全にシャットダウンするか、Windows で休止状態を無効にして(powercfg /h off)から、イメージをもう一度エクスポートしてください。"),
            (Hibernated, Lang::En) => format!("{vol}: Windows is hibernated (hiberfil.sys holds a saved session). Resuming it would overwrite any offline change, so kaifuku does not edit it. Boot Windows and shut it down fully, or turn hibernation off in Windows (powercfg /h off), then export the image again."),
            (QuotaTracking, Lang::Ja) => format!("{vol}: このボリュームではディスククォータの使用量が記録されています。オフラインで削除するとクォータの集計が合わなくなるため、kaifuku は編集しません。Windows でクォータの記録を無効にするか、Windows 回復環境からファイルを削除してください。"),
            (QuotaTracking, Lang::En) => format!("{vol}: disk quota usage is tracked on this volume. An offline delete would leave the quota accounting wrong, so kaifuku does not edit it. Turn quota tracking off in Windows, or delete the file from Windows Recovery."),
            (JournalUnclean { .. }, Lang::Ja) => format!("{vol}: NTFS は書き込み途中の変更をジャーナル($LogFile)に記録しています。今回のブートループのようなクラッシュの後には、Windows が次にこのボリュームを開くときにやり直す変更が残っていて、そのやり直しが修復を上書きするおそれがあります。安全な方法(ntfsfix と同じ)は、ジャーナルを破棄し、ボリュームに「要チェック」の印(ダーティフラグ)を付けることです。Windows は次回起動時に chkdsk を実行し、クラッシュ直前の処理で中途半端になった部分を修復します。クラッシュの瞬間に書き込み中だった内容は失われることがありますが、ほかのファイルには触れません。"),
            (JournalUnclean { .. }, Lang::En) => format!("{vol}: NTFS keeps a journal ($LogFile) of changes in progress. After a crash, such as this boot loop, it still holds changes that Windows replays the next time it opens the volume, and that replay could write over the repair. The safe way (what ntfsfix does) is to discard the journal and mark the volume as needing a check (the dirty flag): Windows then runs chkdsk at the next boot, which repairs whatever the last moments before the crash left half-done. What was being written at the moment of the crash may be lost; your other files are not touched."),
            (NoWindows, Lang::Ja) => "このイメージには \\Windows\\System32 を含む NTFS ボリュームがないため、修復する Windows がありません。VM のシステムディスク(C: ドライブ)のイメージか確かめてください。".into(),
            (NoWindows, Lang::En) => "No NTFS volume in this image holds \\Windows\\System32, so there is no Windows installation to repair. Is this the image of the VM's system disk (drive C:)?".into(),
            (NoCrowdStrikeDirectory, Lang::Ja) => format!("{vol}: フォルダー \\Windows\\System32\\drivers\\CrowdStrike がありません。この Windows には CrowdStrike Falcon が入っていないため、この問題の影響は受けていません。"),
            (NoCrowdStrikeDirectory, Lang::En) => format!("{vol}: the folder \\Windows\\System32\\drivers\\CrowdStrike does not exist: CrowdStrike Falcon is not installed on this Windows, so this problem does not affect it."),
            (NoMatch, Lang::Ja) => format!("{vol}: CrowdStrike のフォルダーに C-00000291*.sys はありません。不具合のファイルはすでに削除されたか、届いていません。それでも起動しない場合は、別の原因です。"),
            (NoMatch, Lang::En) => format!("{vol}: there is no C-00000291*.sys in the CrowdStrike folder: the faulty file was already removed or never arrived. If the machine still does not boot, the cause is something else."),
            (DirectorySkipped { path }, Lang::Ja) => format!("{vol}: {path} はファイルではなくフォルダーです。kaifuku が削除するのはファイルだけなので、このフォルダーはそのまま残します。"),
            (DirectorySkipped { path }, Lang::En) => format!("{vol}: {path} is a folder, not a file. kaifuku deletes files only, so it stays as it is."),
            (LinkFollowed { link, target }, Lang::Ja) => format!("{vol}: {link} は {target} へのリンク(ジャンクションまたはシンボリックリンク)です。Windows と同じようにリンク先を調べました。"),
            (LinkFollowed { link, target }, Lang::En) => format!("{vol}: {link} is a link (junction or symbolic link) to {target}. kaifuku looked where it leads, as Windows does."),
            (VolumeUnsupported, Lang::Ja) => format!("{vol} には kaifuku がまだ対応していない機能が使われているため、調べられません。"),
            (VolumeUnsupported, Lang::En) => format!("{vol} uses something kaifuku does not handle yet, so it cannot be examined."),
            (VolumeDamaged, Lang::Ja) => format!("{vol} を読み取れませんでした。ファイルシステムが壊れているようです。イメージが完全か確かめてください。"),
            (VolumeDamaged, Lang::En) => format!("{vol} could not be read: its file system looks damaged. Check that the image is complete."),
            (ReadFailed, Lang::Ja) => "ファイルを読み取れませんでした。開いている間に移動、削除、変更されませんでしたか。もう一度選択してください。".into(),
            (ReadFailed, Lang::En) => "The file could not be read. Was it moved, deleted or changed while open? Choose it again.".into(),
            (PatchInUnallocatedBlock, Lang::Ja) => "変更する箇所が、可変長 VHD のファイル内にまだ場所のない部分にあたります。kaifuku は可変長 VHD を拡張しません。固定サイズの VHD か raw に変換してから修復してください。".into(),
            (PatchInUnallocatedBlock, Lang::En) => "A change would land in a part of this dynamic VHD that has no space in the file yet, and kaifuku does not grow dynamic VHDs. Convert the image to a fixed-size VHD or to raw and repair that instead.".into(),
            (FixFailed, Lang::Ja) => "修復を安全に計画できなかったため、何も変更していません。".into(),
            (FixFailed, Lang::En) => "The fix could not be planned safely, so nothing was changed.".into(),
            (VerificationFailed, Lang::Ja) => "修復後のイメージを読み直して検証したところ、問題が見つかりました。ダウンロードは提供しません。元のファイルは変更していません。".into(),
            (VerificationFailed, Lang::En) => "Reading the fixed image back found a problem, so no download is offered. The original file was not changed.".into(),
            (Internal, Lang::Ja) => "kaifuku の内部で問題が起きました(不具合です)。何も変更していません。報告の際は下の技術的な詳細をお知らせください。".into(),
            (Internal, Lang::En) => "Something went wrong inside kaifuku (a bug). Nothing was changed. The technical detail below helps to report it.".into(),
        }
    }
    pub fn technical_detail(self) -> &'static str {
        pick!(self, "技術的な詳細(英語)", "Technical detail")
    }
    pub fn worker_crashed(self) -> &'static str {
        pick!(
            self,
            "読み取り処理が予期せず停止しました。",
            "The reading process stopped unexpectedly."
        )
    }

    // ---- consent ----
    pub fn consent_state(self, state: &str) -> String {
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
                self.format_name(format),
                size(*virtual_size)
            ),
            (CheckView::ContainerSame { format, virtual_size }, Lang::En) => format!(
                "The fixed image opens as {}, {}, like the original.",
                self.format_name(format),
                size(*virtual_size)
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
            (CheckView::Invariants { volume, problems }, Lang::Ja) => format!(
                "{}: 変更したディレクトリとレコードの NTFS 整合性チェック: 問題 {problems} 件。",
                self.vol(volume)
            ),
            (CheckView::Invariants { volume, problems }, Lang::En) => format!(
                "{}: NTFS consistency checks of the changed directory and records: {problems} problem(s).",
                self.vol(volume)
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
            _ => "",
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

    #[test]
    fn every_partition_notice_is_said_in_both_languages() {
        use kaifuku_partition::NoticeKind::*;
        let all = vec![
            GptSector4096,
            SizeNotWholeSectors {
                size: 1001,
                sector_size: 512,
            },
            GptCopiesDiffer,
            GptDiskGuidsDiffer,
            BackupGptDamaged {
                detail: "CRC".into(),
            },
            PrimaryGptDamaged {
                detail: "CRC".into(),
                backup_lba: 77,
            },
            DiskEnlarged {
                backup_lba: 77,
                last_lba: 99,
            },
            GptTruncated {
                needed: 4096,
                size: 1024,
            },
            GptEntryImpossible {
                number: 3,
                name: String::new(),
                first_lba: 9,
                last_lba: 2,
            },
            OutsideUsableArea {
                number: 2,
                first_lba: 1,
                last_lba: 5,
                usable_first: 34,
                usable_last: 99,
            },
            DynamicDiskGpt { number: 2 },
            HybridMbr,
            StaleGpt { at: 512 },
            ProtectiveMbrMissing,
            BareSectorCountedIn512 {
                boot_sector_size: 1024,
            },
            BareNoSectorSize,
            PartitionTruncated {
                extended: true,
                number: 2,
                end: 10,
                size: 5,
                missing: 5,
            },
            PartitionsOverlap {
                a: 1,
                b: 2,
                a_start: 0,
                a_end: 10,
                b_start: 5,
                b_end: 20,
            },
            DynamicDiskMbr { number: 1 },
            EbrPastEnd {
                ebr: 12,
                extended: 2,
            },
            EbrNoSignature {
                ebr: 12,
                extended: 2,
            },
            Mbr4096FromBootSectors {
                partitions: vec![1, 2],
            },
            Mbr4096FromExtendedChain,
            Mbr512FromDiskSize,
            Mbr512Assumed,
            BareVolume {
                volume: "NTFS volume".into(),
            },
            EmptyMbr,
        ];
        for n in &all {
            let en = T(Lang::En).notice(n);
            let ja = T(Lang::Ja).notice(n);
            assert_eq!(en, n.to_string());
            assert_ne!(ja, en, "{n:?} has no Japanese text");
            assert!(
                ja.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
                "{ja}"
            );
            // Every number the English sentence names is in the Japanese one too.
            for num in en
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| s.len() > 1)
            {
                assert!(ja.contains(num), "{n:?}: {num} missing from {ja}");
            }
        }
    }

    #[test]
    fn language_from_tag() {
        assert_eq!(Lang::from_tag("ja-JP"), Lang::Ja);
        assert_eq!(Lang::from_tag("ja"), Lang::Ja);
        assert_eq!(Lang::from_tag("en-US"), Lang::En);
        assert_eq!(Lang::from_tag("de"), Lang::En);
        assert_eq!(Lang::from_tag(""), Lang::En);
    }

    #[test]
    fn sizes() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1_677_721), "1.6 MiB");
        assert_eq!(size(100 << 30), "100.0 GiB");
        assert_eq!(grouped(53477376), "53\u{202F}477\u{202F}376");
        assert_eq!(grouped(999), "999");
    }

    #[test]
    fn every_problem_has_words_in_both_languages() {
        use ProblemCode::*;
        let codes = [
            UnsupportedFormat {
                format: "VHDX".into(),
                qemu: "vhdx".into(),
            },
            DifferencingVhd,
            DamagedContainer,
            DamagedPartitions,
            BitLocker,
            Hibernated,
            QuotaTracking,
            JournalUnclean {
                state: "unclean".into(),
            },
            NoWindows,
            NoCrowdStrikeDirectory,
            NoMatch,
            DirectorySkipped {
                path: "\\Windows\\C-00000291-x.sys".into(),
            },
            LinkFollowed {
                link: "\\Windows\\CS".into(),
                target: "\\??\\C:\\CS".into(),
            },
            VolumeUnsupported,
            VolumeDamaged,
            ReadFailed,
            PatchInUnallocatedBlock,
            FixFailed,
            VerificationFailed,
            Internal,
        ];
        for c in codes {
            let p = Problem::new(
                c.clone(),
                Some(VolumeName {
                    partition: Some(2),
                    label: Some("Windows".into()),
                }),
                None,
            );
            let ja = T(Lang::Ja).problem_text(&p);
            let en = T(Lang::En).problem_text(&p);
            assert!(!ja.is_empty() && !en.is_empty());
            assert_ne!(ja, en);
            // Japanese text is Japanese.
            assert!(
                ja.chars().any(|ch| ('\u{3040}'..='\u{30FF}').contains(&ch)),
                "{ja}"
            );
            assert!(
                en.chars().all(|c| c.is_ascii() || "→“”".contains(c)),
                "{en}"
            );
            assert_ne!(T(Lang::Ja).problem_title(&c), T(Lang::En).problem_title(&c));
        }
    }
}
