//! The image report: container, partitions (and the partition reader's notes), volumes, matches.

use super::{grouped, Lang, T};
use crate::view::{
    BitmapView, IndexBlockView, JournalFactsView, JournalReplayView, JournalView, OverlapView,
};
use kaifuku_container::Format;
use kaifuku_ntfs::LogState;
use kaifuku_partition::{NoticeKind, PartitionType, Scheme, WordedType};
use kaifuku_registry::{HiveError, HiveStructure};
use kaifuku_rescue::registry::HiveName;
use kaifuku_rescue::vocabulary::{HiveState, NtfsProblem, VolumeName, WindowsVersion};
use kaifuku_rescue::{FileSystem, Outcome, RuleId, Verdict};

impl T {
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
    pub fn format_name(self, format: Format) -> &'static str {
        match format {
            Format::Raw => pick!(
                self,
                "raw(ディスクをそのまま写したイメージ)",
                "raw (a sector-by-sector copy of the disk)"
            ),
            Format::VhdFixed => pick!(self, "VHD(固定サイズ)", "VHD, fixed size"),
            Format::VhdDynamic => pick!(self, "VHD(可変長)", "VHD, dynamic"),
            Format::Qcow2 => pick!(self, "qcow2(QEMU/KVM)", "qcow2 (QEMU/KVM)"),
            Format::VhdxFixed => pick!(self, "VHDX(固定サイズ)", "VHDX, fixed size"),
            Format::VhdxDynamic => pick!(self, "VHDX(可変長)", "VHDX, dynamic"),
            Format::VmdkSparse => pick!(
                self,
                "VMDK(monolithicSparse、VMware)",
                "VMDK, monolithicSparse (VMware)"
            ),
            Format::VmdkStreamOptimized => pick!(
                self,
                "VMDK(streamOptimized、OVA やクラウドのエクスポート)",
                "VMDK, streamOptimized (OVA or cloud export)"
            ),
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
    pub fn scheme(self, scheme: Scheme, sector: u32) -> String {
        let name = match scheme {
            Scheme::Gpt => "GPT",
            Scheme::Mbr => "MBR",
            Scheme::None => {
                return pick!(
                    self,
                    format!("パーティションテーブルなし(ディスク全体が1つのボリューム)、セクター {sector} バイト"),
                    format!("no partition table (the whole disk is one volume), {sector}-byte sectors")
                )
            }
        };
        pick!(
            self,
            format!("{name}、セクター {sector} バイト"),
            format!("{name}, {sector}-byte sectors")
        )
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
    /// (file-system and vendor names) as they are in every language.
    pub fn partition_type(self, partition_type: PartitionType) -> &'static str {
        match partition_type {
            PartitionType::Worded(t) => self.worded_type(t),
            PartitionType::Named(t) => t.name(),
        }
    }
    fn worded_type(self, t: WordedType) -> &'static str {
        match t {
            WordedType::EfiSystem => pick!(self, "EFI システム パーティション", "EFI System"),
            WordedType::EfiSystemFat => pick!(
                self,
                "EFI システム パーティション (FAT)",
                "EFI System (FAT)"
            ),
            WordedType::MicrosoftReserved => {
                pick!(self, "Microsoft 予約パーティション", "Microsoft reserved")
            }
            WordedType::BasicData => pick!(self, "ベーシック データ パーティション", "Basic data"),
            WordedType::WindowsRecovery => pick!(self, "Windows 回復環境", "Windows recovery"),
            WordedType::WindowsRecoveryHiddenNtfs => pick!(
                self,
                "Windows 回復環境(隠し NTFS)",
                "Windows recovery (hidden NTFS)"
            ),
            WordedType::WindowsLdmMetadata => pick!(
                self,
                "Windows ダイナミックディスク (LDM) メタデータ",
                "Windows LDM metadata"
            ),
            WordedType::WindowsLdmData => pick!(
                self,
                "Windows ダイナミックディスク (LDM) データ",
                "Windows LDM data"
            ),
            WordedType::WindowsDynamicDisk => pick!(
                self,
                "Windows ダイナミックディスク (LDM)",
                "Windows dynamic disk (LDM)"
            ),
            WordedType::WindowsStorageSpaces => {
                pick!(self, "Windows 記憶域スペース", "Windows Storage Spaces")
            }
            WordedType::Extended => pick!(self, "拡張パーティション", "Extended"),
            WordedType::GptProtective => pick!(self, "GPT 保護パーティション", "GPT protective"),
            WordedType::Hibernation => pick!(self, "休止状態", "Hibernation"),
            WordedType::Empty => pick!(self, "空", "Empty"),
            WordedType::Unknown => pick!(self, "不明", "Unknown"),
            WordedType::NtfsVolume => pick!(self, "NTFS ボリューム", "NTFS volume"),
            WordedType::BitLockerVolume => pick!(
                self,
                "BitLocker で暗号化されたボリューム",
                "BitLocker-encrypted volume"
            ),
            WordedType::ExFatVolume => pick!(self, "exFAT ボリューム", "exFAT volume"),
            WordedType::FatVolume => pick!(self, "FAT ボリューム", "FAT volume"),
        }
    }

    /// A partition-table note or warning, in the page's language.
    pub fn notice(self, n: &NoticeKind) -> String {
        if self.0 == Lang::En {
            return n.to_string();
        }
        match n {
            NoticeKind::GptSector4096 => "論理セクターサイズ 4096: GPT ヘッダーは 4096 バイト目(LBA 1)にあります。".into(),
            NoticeKind::SizeNotWholeSectors { size, sector_size } => {
                format!("ディスクのサイズ({size} バイト)が {sector_size} バイトのセクターで割り切れません。")
            }
            NoticeKind::GptCopiesDiffer => "プライマリ GPT とバックアップ GPT の内容が異なります。Windows と同じくプライマリを使いました。パーティション操作が途中で中断された可能性があります。".into(),
            NoticeKind::GptDiskGuidsDiffer => "プライマリ GPT とバックアップ GPT のディスク GUID が異なります。".into(),
            NoticeKind::BackupGptDamaged { detail } => format!("バックアップ GPT がないか壊れています({detail})。プライマリ GPT は無傷で、それを使ったので下のパーティションは信頼できます。イメージが元のディスクより短い場合は途中で切れています。もう一度完全にエクスポートしてください。"),
            NoticeKind::PrimaryGptDamaged { detail, backup_lba } => format!("プライマリ GPT が壊れています({detail})。LBA {backup_lba} のバックアップ GPT は無傷なので、それを使いました。Windows はバックアップからプライマリを修復しますが、kaifuku はそのままにします。"),
            NoticeKind::DiskEnlarged { backup_lba, last_lba } => format!("バックアップ GPT が最終セクター({last_lba})より前の LBA {backup_lba} にあります。パーティション作成後にディスクが拡張されました。LBA {backup_lba} より後ろは未割り当てです。"),
            NoticeKind::GptTruncated { needed, size } => format!("GPT は {needed} バイト以上のディスクを示していますが、イメージは {size} バイトしかありません。イメージが途中で切れています。できればディスク全体をもう一度エクスポートしてください。"),
            NoticeKind::GptEntryImpossible { number, name, first_lba, last_lba } => format!(
                "GPT エントリ {number}({})の範囲(LBA {first_lba}..{last_lba})があり得ない値なので、読み飛ばしました。",
                if name.is_empty() { "名前なし" } else { name }
            ),
            NoticeKind::OutsideUsableArea { number, first_lba, last_lba, usable_first, usable_last } => format!("パーティション {number}(LBA {first_lba}..{last_lba})は GPT の使用可能領域(LBA {usable_first}..{usable_last})の外にあります。"),
            NoticeKind::DynamicDiskGpt { number } => format!("パーティション {number} は Windows のダイナミックディスクまたは記憶域プールの一部です。中のボリュームは GPT に書かれていないため、kaifuku では開けません。"),
            NoticeKind::HybridMbr => "MBR はハイブリッド MBR です(GPT 保護エントリ以外のパーティションも載っています)。正式な GPT を使いました。".into(),
            NoticeKind::StaleGpt { at } => format!("GPT ヘッダー({at} バイト目)がありますが、MBR に保護エントリがないため、Windows と同じく古い GPT として無視しました。MBR のパーティションを表示しています。"),
            NoticeKind::ProtectiveMbrMissing => "先頭セクターの保護 MBR がないか空です。GPT はそのまま読みました。保護 MBR を戻すまで起動できないファームウェアもあります(gdisk で再作成できます)。".into(),
            NoticeKind::BareSectorCountedIn512 { boot_sector_size } => format!("ブートセクターのセクターサイズは {boot_sector_size} バイトですが、パーティションのセクターは 512 バイト単位で数えます。"),
            NoticeKind::BareNoSectorSize => "ブートセクターに使えるセクターサイズがないため、512 バイトとみなしました。".into(),
            NoticeKind::PartitionTruncated { extended, number, end, size, missing } => format!(
                "{} {number} は {end} バイト目で終わりますが、ディスクイメージは {size} バイトしかありません。イメージが途中で切れている(または表が誤っている)ため、このパーティションの最後の {missing} バイトがありません。できればディスク全体をもう一度エクスポートしてください。",
                if *extended { "拡張パーティション" } else { "パーティション" }
            ),
            NoticeKind::PartitionsOverlap { a, b, a_start, a_end, b_start, b_end } => format!("パーティション {a} と {b} が重なっています({a_start}..{a_end} と {b_start}..{b_end} バイト)。表が壊れているか手で編集されています。どちらも慎重に扱ってください。"),
            NoticeKind::DynamicDiskMbr { number } => format!("パーティション {number} は Windows のダイナミックディスク(LDM)のパーティションです。中のボリュームは LDM データベースに書かれており、kaifuku は読みません。"),
            NoticeKind::EbrPastEnd { ebr, extended } => format!("拡張パーティション {extended} のセクター {ebr} にある論理パーティション表がイメージの終わりより後ろにあります(イメージが途中で切れています)。そこから先の論理パーティションはありません。"),
            NoticeKind::EbrNoSignature { ebr, extended } => format!("拡張パーティション {extended} のセクター {ebr} にある論理パーティション表に 55AA の署名がないため、論理パーティションの連鎖はそこで終わります(Windows や Linux と同じ扱いです)。"),
            NoticeKind::Mbr4096FromBootSectors { partitions } => format!(
                "論理セクターサイズ 4096: 4096 バイト単位で数えると、パーティション {} の先頭に「1 セクター 4096 バイト」と書かれたブートセクターがあります。",
                partitions.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
            ),
            NoticeKind::Mbr4096FromExtendedChain => "論理セクターサイズ 4096: 拡張パーティションの表は、セクターを 4096 バイトとして数えたときにだけ見つかります。".into(),
            NoticeKind::Mbr512FromDiskSize => "論理セクターサイズを 512 バイトとみなしました。どのパーティションの先頭にも見分けのつくブートセクターがなく、4096 バイトとするとパーティションがディスクの終わりを越えてしまうためです。".into(),
            NoticeKind::Mbr512Assumed => "ディスクから論理セクターサイズを判断できませんでした(どのパーティションの先頭にも見分けのつくブートセクターがありません)。ほとんどのディスクと同じく 512 バイトとみなしました。パーティションがおかしく見える場合は 4096 バイトセクターのディスクかもしれません。".into(),
            NoticeKind::BareVolume { volume } => format!("パーティション表はありません。ディスク全体が 1 つの {volume} です(先頭セクターがボリュームのブートセクターです)。"),
            NoticeKind::EmptyMbr => "MBR は正常ですがパーティションが 1 つもありません。このディスクにボリュームはありません。".into(),
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
    pub fn fs_name(self, fs: FileSystem, version: Option<&str>) -> String {
        match fs {
            FileSystem::Ntfs => format!("NTFS {}", version.unwrap_or("")).trim().to_string(),
            FileSystem::Bitlocker => {
                pick!(self, "BitLocker(暗号化)", "BitLocker (encrypted)").into()
            }
            FileSystem::Fat => "FAT".into(),
            FileSystem::Exfat => "exFAT".into(),
            FileSystem::Refs => "ReFS".into(),
            FileSystem::Unknown => pick!(self, "不明・未対応", "unknown / not recognised").into(),
        }
    }
    pub fn journal_state(self, state: LogState, empty: bool) -> &'static str {
        match (state, empty) {
            (LogState::Clean, true) => pick!(self, "クリーン(空)", "clean (empty)"),
            (LogState::Clean, false) => pick!(self, "クリーン", "clean"),
            (LogState::Unclean, _) => pick!(
                self,
                "未完了の変更あり(クラッシュ後)",
                "unclean (changes pending after a crash)"
            ),
            (LogState::V2, _) => pick!(
                self,
                "バージョン 2.0(Windows 8 以降の高速スタートアップまたは異常停止)",
                "version 2.0 (Windows 8 or later: Fast Startup or an abrupt stop)"
            ),
            (LogState::Unreadable, _) => pick!(
                self,
                "読み取り不能(未完了として扱います)",
                "unreadable (treated as unclean)"
            ),
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
    pub fn rule_title(self, id: RuleId) -> &'static str {
        match id {
            RuleId::CrowdStrike20240719 => pick!(
                self,
                "CrowdStrike チャネルファイル 291(2024年7月19日)",
                "CrowdStrike channel file 291 (2024-07-19)"
            ),
            RuleId::Path => pick!(self, "パスで選んだファイル", "files chosen by path"),
            // The page shows a user rule's own title (both languages) where it has the rule.
            RuleId::User => pick!(self, "ルールファイルのルール", "a rule from a rule file"),
            RuleId::RegistryTxrContainers => pick!(
                self,
                "レジストリのトランザクションログのコンテナー",
                "registry transaction-log containers"
            ),
            RuleId::RegistryTxrLog => pick!(
                self,
                "レジストリのトランザクションログ",
                "registry transaction log"
            ),
        }
    }
    pub fn rule_line(self, id: RuleId, path: &str) -> String {
        self.rule_line_titled(self.rule_title(id), path)
    }
    /// The rule line with a rule's own title (a user rule's, in the page's language).
    pub fn rule_line_titled(self, title: &str, path: &str) -> String {
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
    pub fn verdict(self, v: Verdict) -> &'static str {
        match v {
            Verdict::Faulty => pick!(self, "不具合版(04:09 UTC)", "faulty version (04:09 UTC)"),
            Verdict::Fixed => pick!(
                self,
                "修正版(05:27 UTC 以降)",
                "fixed version (05:27 UTC or later)"
            ),
            Verdict::NotApplicable => "—",
            Verdict::Unknown => pick!(self, "版は不明", "unknown version"),
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
    pub fn outcome(self, outcome: Outcome, n: usize) -> String {
        match outcome {
            Outcome::Matches => pick!(
                self,
                format!("削除するファイルが {n} 個見つかりました。"),
                format!("Found {n} file(s) to delete.")
            ),
            Outcome::NothingToFix => {
                pick!(self, "修復の必要はありません。", "Nothing to fix.").to_string()
            }
            Outcome::Refused => pick!(
                self,
                "このイメージはここでは修復できません。",
                "This image cannot be fixed here."
            )
            .to_string(),
            Outcome::Error => pick!(
                self,
                "イメージを読み取れませんでした。",
                "The image could not be read."
            )
            .to_string(),
        }
    }
}

// ---- the journal of a volume that is not clean ----

/// Items shown of a list before "and N more".
const JOURNAL_LISTED: usize = 8;

impl T {
    /// `items` joined, the first [`JOURNAL_LISTED`] only, then how many more.
    fn listed(self, items: &[String]) -> String {
        let sep = pick!(self, "、", ", ");
        let mut s = items
            .iter()
            .take(JOURNAL_LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join(sep);
        if items.len() > JOURNAL_LISTED {
            let more = items.len() - JOURNAL_LISTED;
            s.push_str(&pick!(
                self,
                format!(" ほか {more} 件"),
                format!(" and {more} more")
            ));
        }
        s
    }

    fn clusters(first: u64, count: u64) -> String {
        match count {
            0 | 1 => first.to_string(),
            n => format!("{first}–{}", first + n - 1),
        }
    }

    fn index_block(self, b: &IndexBlockView) -> String {
        pick!(
            self,
            format!("レコード {} の {} VCN {}", b.record, b.name, b.vcn),
            format!("record {} {} VCN {}", b.record, b.name, b.vcn)
        )
    }

    fn bitmap(self, b: &BitmapView) -> String {
        match b {
            BitmapView::Clusters => "$Bitmap".into(),
            BitmapView::MftRecords => "$MFT:$BITMAP".into(),
            BitmapView::IndexBlocks { record, name } => pick!(
                self,
                format!("レコード {record} の {name}:$BITMAP"),
                format!("record {record} {name}:$BITMAP")
            ),
            BitmapView::Other {
                record,
                attribute_type,
            } => pick!(
                self,
                format!("レコード {record} の属性 {attribute_type:#x}"),
                format!("record {record} attribute {attribute_type:#x}")
            ),
        }
    }

    pub fn journal_heading(self) -> &'static str {
        pick!(
            self,
            "ジャーナルの内容(次回の起動時に Windows が再生する変更)",
            "Journal content (the changes Windows replays when it next starts)"
        )
    }

    /// The journal of a volume, line by line.
    pub fn journal_lines(self, j: &JournalView) -> Vec<String> {
        match j {
            JournalView::Analysed(facts) => {
                let JournalFactsView {
                    version,
                    checkpoint_lsn,
                    current_lsn,
                    records_after_checkpoint,
                    committed,
                    uncommitted,
                    file_records,
                    index_blocks,
                    lcn_ranges,
                    bitmap_ranges,
                    unresolved,
                    overlap,
                } = &**facts;
                let mut lines = vec![
                    pick!(
                        self,
                        format!("LFS {version}、チェックポイント LSN {checkpoint_lsn:#x}、現在の LSN {current_lsn:#x}、チェックポイント以降のログレコード {records_after_checkpoint} 件"),
                        format!("LFS {version}, checkpoint LSN {checkpoint_lsn:#x}, current LSN {current_lsn:#x}, {records_after_checkpoint} log records after the checkpoint")
                    ),
                    pick!(
                        self,
                        format!("トランザクション: コミット済み {committed} 件、未コミット {uncommitted} 件"),
                        format!("Transactions: {committed} committed, {uncommitted} uncommitted")
                    ),
                ];
                let nothing = file_records.is_empty()
                    && index_blocks.is_empty()
                    && lcn_ranges.is_empty()
                    && bitmap_ranges.is_empty()
                    && *unresolved == 0;
                if nothing {
                    lines.push(
                        pick!(
                            self,
                            "未反映の変更はディスク上の何も変更しません。",
                            "The pending records change nothing on disk."
                        )
                        .to_string(),
                    );
                }
                if !file_records.is_empty() {
                    let items: Vec<String> = file_records
                        .iter()
                        .map(|(n, p)| match p {
                            Some(p) => format!("{n} ({p})"),
                            None => n.to_string(),
                        })
                        .collect();
                    let items = self.listed(&items);
                    lines.push(pick!(
                        self,
                        format!("変更される MFT レコード: {items}"),
                        format!("MFT records changed: {items}")
                    ));
                }
                if !index_blocks.is_empty() {
                    let items: Vec<String> =
                        index_blocks.iter().map(|b| self.index_block(b)).collect();
                    let items = self.listed(&items);
                    lines.push(pick!(
                        self,
                        format!("変更されるインデックスブロック: {items}"),
                        format!("Index blocks changed: {items}")
                    ));
                }
                if !lcn_ranges.is_empty() {
                    let items: Vec<String> = lcn_ranges
                        .iter()
                        .map(|&(f, c)| Self::clusters(f, c))
                        .collect();
                    let items = self.listed(&items);
                    lines.push(pick!(
                        self,
                        format!("変更されるクラスター: {items}"),
                        format!("Clusters changed: {items}")
                    ));
                }
                if !bitmap_ranges.is_empty() {
                    let items: Vec<String> = bitmap_ranges
                        .iter()
                        .map(|(b, f, c)| format!("{} {}", self.bitmap(b), Self::clusters(*f, *c)))
                        .collect();
                    let items = self.listed(&items);
                    lines.push(pick!(
                        self,
                        format!("変更されるビットマップのビット: {items}"),
                        format!("Bitmap bits changed: {items}")
                    ));
                }
                if *unresolved > 0 {
                    lines.push(pick!(
                        self,
                        format!("対象を特定できないレコード: {unresolved} 件"),
                        format!("Records whose target is unknown: {unresolved}")
                    ));
                }
                if let Some(o) = overlap {
                    lines.push(self.journal_overlap(o));
                }
                lines
            }
            JournalView::NoLiveLog => vec![pick!(
                self,
                "ジャーナルには再生の起点となるチェックポイントがありません。Windows が再生する変更はありません。",
                "The journal names no checkpoint to replay from: Windows has nothing to replay."
            )
            .to_string()],
            JournalView::Unreadable { detail } => vec![pick!(
                self,
                format!("ジャーナルを読み取れないため、Windows が再生する内容はわかりません({detail})。"),
                format!("The journal cannot be read, so what Windows would replay is unknown ({detail}).")
            )],
        }
    }

    /// Whether the fix completes the journal as Windows would at its next start, or why not.
    pub fn journal_replay(self, r: &JournalReplayView) -> String {
        let cannot_ja = "ジャーナルに残っている Windows の更新を kaifuku は完了できません";
        let cannot_en = "kaifuku cannot complete the updates Windows left in the journal";
        match r {
            JournalReplayView::Replayed {
                committed,
                uncommitted,
            } => match (self.0, *uncommitted) {
                (Lang::Ja, 0) => format!("このディスクの更新中に Windows が中断されました。Windows が確定していた {committed} 件の更新を、Windows が次回の起動時に行うのと同じように kaifuku が完了します。"),
                (Lang::Ja, n) => format!("このディスクの更新中に Windows が中断されました。Windows が確定していた {committed} 件の更新を完了し、未完了の {n} 件を取り消します。Windows が次回の起動時に行うのと同じ処理です。"),
                (Lang::En, 0) => format!("Windows was interrupted while updating this disk; kaifuku completes the {committed} update(s) Windows had committed, as Windows would at its next start."),
                (Lang::En, n) => format!("Windows was interrupted while updating this disk; kaifuku completes the {committed} update(s) Windows had committed (and takes back {n} unfinished one(s)), as Windows would at its next start."),
            },
            JournalReplayView::UnsupportedVersion { version } => pick!(
                self,
                format!("{cannot_ja}。kaifuku は LFS {version} 形式のジャーナルを再生できません(再生できるのは 1.1 と 2.0 形式です)。"),
                format!("{cannot_en}: kaifuku does not replay LFS {version} journals (it replays versions 1.1 and 2.0).")
            ),
            JournalReplayView::NotUnderstood {
                lsn,
                operation,
                detail,
            } => pick!(
                self,
                format!("{cannot_ja}。ログレコード {lsn:#x}({operation})を正確に解釈できないためです({detail})。"),
                format!("{cannot_en}: log record {lsn:#x} ({operation}) is not understood ({detail}).")
            ),
            JournalReplayView::Failed { detail } => pick!(
                self,
                format!("{cannot_ja}({detail})。"),
                format!("{cannot_en} ({detail}).")
            ),
        }
    }

    /// Whether the journal's pending changes touch what the fix changes.
    pub fn journal_overlap(self, o: &OverlapView) -> String {
        match o {
            OverlapView::NoOverlap => pick!(
                self,
                "未反映の変更は、修復が変更するもの(対象ファイルのレコード、そのディレクトリのインデックス、書き込む $MFT:$BITMAP と $Bitmap のページ)と重なりません。",
                "No pending change touches what the fix changes (the files' records, their directory's index, the $MFT:$BITMAP and $Bitmap pages it writes)."
            )
            .to_string(),
            OverlapView::Overlaps {
                file_records,
                index_blocks,
                mft_bitmap_pages,
                cluster_bitmap_pages,
                clusters,
            } => {
                let mut parts: Vec<String> = Vec::new();
                let numbers =
                    |v: &[u64]| self.listed(&v.iter().map(u64::to_string).collect::<Vec<_>>());
                if !file_records.is_empty() {
                    let items = numbers(file_records);
                    parts.push(pick!(self, format!("MFT レコード {items}"), format!("MFT records {items}")));
                }
                if !index_blocks.is_empty() {
                    let items: Vec<String> =
                        index_blocks.iter().map(|b| self.index_block(b)).collect();
                    let items = self.listed(&items);
                    parts.push(pick!(
                        self,
                        format!("インデックスブロック {items}"),
                        format!("index blocks {items}")
                    ));
                }
                if !mft_bitmap_pages.is_empty() {
                    let items = numbers(mft_bitmap_pages);
                    parts.push(pick!(
                        self,
                        format!("$MFT:$BITMAP のページ {items}"),
                        format!("$MFT:$BITMAP pages {items}")
                    ));
                }
                if !cluster_bitmap_pages.is_empty() {
                    let items = numbers(cluster_bitmap_pages);
                    parts.push(pick!(
                        self,
                        format!("$Bitmap のページ {items}"),
                        format!("$Bitmap pages {items}")
                    ));
                }
                if !clusters.is_empty() {
                    let items: Vec<String> =
                        clusters.iter().map(|&(f, c)| Self::clusters(f, c)).collect();
                    let items = self.listed(&items);
                    parts.push(pick!(self, format!("クラスター {items}"), format!("clusters {items}")));
                }
                let parts = parts.join(pick!(self, "、", "; "));
                pick!(
                    self,
                    format!("未反映の変更が修復の変更箇所と重なります: {parts}。"),
                    format!("Pending changes touch what the fix changes: {parts}.")
                )
            }
        }
    }
}

/// The Windows registry as inspect read it (`SOFTWARE`'s build, the hives' states): read only.
impl T {
    pub fn registry_heading(self) -> &'static str {
        pick!(
            self,
            "Windows のレジストリ(読み取りのみ。書き換えません)",
            "Windows registry (read only, never changed)"
        )
    }

    pub fn windows_version(self, v: &WindowsVersion) -> String {
        let unknown = pick!(self, "Windows のビルドは不明です", "Windows build unknown");
        match v {
            WindowsVersion::Build {
                build,
                product_name,
            } => match (self.0, product_name) {
                (Lang::Ja, Some(p)) => format!("Windows のビルド {build}({p})"),
                (Lang::Ja, None) => format!("Windows のビルド {build}"),
                (Lang::En, Some(p)) => format!("Windows build {build} ({p})"),
                (Lang::En, None) => format!("Windows build {build}"),
            },
            WindowsVersion::NoSoftwareHive => pick!(
                self,
                format!("{unknown}: 読める SOFTWARE ハイブがありません"),
                format!("{unknown}: there is no readable SOFTWARE hive")
            ),
            WindowsVersion::NotRecorded => pick!(
                self,
                format!("{unknown}: SOFTWARE ハイブに CurrentBuildNumber がありません"),
                format!("{unknown}: the SOFTWARE hive records no CurrentBuildNumber")
            ),
            WindowsVersion::NotANumber { text } => pick!(
                self,
                format!("{unknown}: CurrentBuildNumber が数値ではありません({text:?})"),
                format!("{unknown}: CurrentBuildNumber is {text:?}, not a number")
            ),
            WindowsVersion::Damaged { error } => {
                format!("{unknown}: {}", self.hive_error(error))
            }
        }
    }

    pub fn hive_state(self, hive: HiveName, s: &HiveState) -> String {
        match s {
            HiveState::Clean { sequence } => pick!(
                self,
                format!("{hive} ハイブ: 正常(最後の書き込みは完了しています。シーケンス番号 {sequence})"),
                format!("{hive} hive: clean (its last write completed; sequence number {sequence})")
            ),
            HiveState::Dirty {
                primary_sequence,
                secondary_sequence,
            } => pick!(
                self,
                format!("{hive} ハイブ: 書き込み途中。Windows はこのハイブの書き込み中に停止しました(プライマリ シーケンス番号 {primary_sequence}、セカンダリ {secondary_sequence})。次回の起動時に Windows が .LOG1/.LOG2 ファイルから完成させます。"),
                format!("{hive} hive: DIRTY. Windows was writing it when it stopped (primary sequence number {primary_sequence}, secondary {secondary_sequence}); Windows completes it from its .LOG1/.LOG2 files at the next start.")
            ),
            HiveState::Missing => pick!(
                self,
                format!("{hive} ハイブ: ありません"),
                format!("{hive} hive: not found")
            ),
            HiveState::Unreadable { error } => pick!(
                self,
                format!("{hive} ハイブ: 読めません({})", self.hive_file_problem(error)),
                format!("{hive} hive: cannot be read ({})", self.hive_file_problem(error))
            ),
            HiveState::Damaged { error } => pick!(
                self,
                format!("{hive} ハイブ: ハイブとして読めません({})", self.hive_error(error)),
                format!("{hive} hive: cannot be read as a hive ({})", self.hive_error(error))
            ),
        }
    }

    /// Why NTFS could not read a hive's file, in a few words (the English detail is in the
    /// item's tooltip).
    fn hive_file_problem(self, e: &NtfsProblem) -> &'static str {
        match e {
            NtfsProblem::NotNtfs
            | NtfsProblem::BadBootSector { .. }
            | NtfsProblem::Damaged { .. }
            | NtfsProblem::ReaderFailed { .. } => pick!(
                self,
                "そこまでの NTFS の構造が壊れています",
                "NTFS structures on the way to it are damaged"
            ),
            NtfsProblem::BitLocker
            | NtfsProblem::Unsupported { .. }
            | NtfsProblem::Refused { .. } => pick!(
                self,
                "kaifuku が読めない形で保存されています(圧縮・暗号化など)",
                "it is stored in a way kaifuku does not read (compressed, encrypted, ...)"
            ),
            NtfsProblem::ReadFailed { .. } => pick!(
                self,
                "イメージの読み込みに失敗しました",
                "reading the image failed"
            ),
        }
    }

    fn hive_error(self, e: &HiveError) -> String {
        match e {
            HiveError::Read { offset, .. } => pick!(
                self,
                format!("ファイルのバイト {offset} を読めませんでした"),
                format!("the file could not be read at byte {offset}")
            ),
            HiveError::NotAHive => pick!(
                self,
                "先頭が \"regf\" ではありません".to_string(),
                "it does not start with \"regf\"".to_string()
            ),
            HiveError::BadChecksum { stored, computed } => pick!(
                self,
                format!("ベースブロックのチェックサムが合いません(記録値 {stored:#010x}、計算値 {computed:#010x})。次回の起動時に Windows が .LOG ファイルから修復します"),
                format!("its base block checksum does not match (stored {stored:#010x}, computed {computed:#010x}); Windows repairs it from its .LOG files at the next start")
            ),
            HiveError::UnsupportedVersion { major, minor } => pick!(
                self,
                format!("形式バージョン {major}.{minor} は Windows NT 3.51 以降が書く形式ではありません"),
                format!("format version {major}.{minor} is not one Windows NT 3.51 or later writes")
            ),
            HiveError::NotPrimaryFile { file_type } => pick!(
                self,
                format!("ハイブではなくトランザクション ログです(種類 {file_type})"),
                format!("it is a transaction log, not a hive (file type {file_type})")
            ),
            HiveError::Truncated {
                hive_bins_size,
                file_size,
            } => pick!(
                self,
                format!("途中で切れています(4096 バイトのベースブロックの後に {hive_bins_size} バイトのハイブ ビンがあるはずですが、ファイルは {file_size} バイトです)"),
                format!("it is cut short (its 4096-byte base block promises {hive_bins_size} bytes of hive bins, the file holds {file_size} bytes)")
            ),
            HiveError::Damaged {
                structure, offset, ..
            } => pick!(
                self,
                format!("バイト {offset} の{}が壊れています", self.hive_structure(*structure)),
                format!("its {} at byte {offset} is damaged", self.hive_structure(*structure))
            ),
            HiveError::TooMany {
                structure,
                offset,
                count,
                limit,
            } => pick!(
                self,
                format!("バイト {offset} の{}の項目数 {count} が多すぎます(上限 {limit})", self.hive_structure(*structure)),
                format!("its {} at byte {offset} lists {count} entries, more than {limit}", self.hive_structure(*structure))
            ),
            HiveError::WrongType {
                name,
                found,
                expected,
            } => pick!(
                self,
                format!("値 {name} の型は {found} です({expected} ではありません)"),
                format!("the value {name} is of type {found}, not {expected}")
            ),
        }
    }

    fn hive_structure(self, s: HiveStructure) -> &'static str {
        match s {
            HiveStructure::BaseBlock => pick!(self, "ベースブロック", "base block"),
            HiveStructure::Cell => pick!(self, "セル", "cell"),
            HiveStructure::KeyNode => pick!(self, "キー ノード (nk)", "key node (nk)"),
            HiveStructure::SubkeyList => pick!(self, "サブキー リスト", "subkey list"),
            HiveStructure::ValueList => pick!(self, "値リスト", "value list"),
            HiveStructure::ValueKey => pick!(self, "値キー (vk)", "value key (vk)"),
            HiveStructure::ValueData => pick!(self, "値のデータ", "value data"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Japanese text: kana or kanji.
    fn is_japanese(s: &str) -> bool {
        s.chars().any(|c| {
            ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{4e00}'..='\u{9fff}').contains(&c)
        })
    }

    #[test]
    fn every_partition_type_is_said_in_both_languages() {
        use kaifuku_partition::NamedType;
        for t in WordedType::ALL {
            let en = T(Lang::En).partition_type((*t).into());
            let ja = T(Lang::Ja).partition_type((*t).into());
            // English as the command line prints it; Japanese in Windows's Japanese words.
            assert_eq!(en, t.name());
            assert!(is_japanese(ja), "{t:?} has no Japanese text: {ja}");
        }
        for t in NamedType::ALL {
            for lang in [Lang::En, Lang::Ja] {
                assert_eq!(T(lang).partition_type((*t).into()), t.name());
            }
        }
    }

    #[test]
    fn file_systems_and_rules_are_said_in_both_languages() {
        let fs = [
            FileSystem::Ntfs,
            FileSystem::Bitlocker,
            FileSystem::Fat,
            FileSystem::Exfat,
            FileSystem::Refs,
            FileSystem::Unknown,
        ];
        for f in fs {
            assert!(!T(Lang::En).fs_name(f, None).is_empty());
        }
        assert_eq!(
            T(Lang::En).fs_name(FileSystem::Ntfs, Some("3.1")),
            "NTFS 3.1"
        );
        assert!(is_japanese(
            &T(Lang::Ja).fs_name(FileSystem::Bitlocker, None)
        ));
        assert!(is_japanese(&T(Lang::Ja).fs_name(FileSystem::Unknown, None)));
        for id in [
            RuleId::CrowdStrike20240719,
            RuleId::Path,
            RuleId::User,
            RuleId::RegistryTxrContainers,
            RuleId::RegistryTxrLog,
        ] {
            assert!(is_japanese(T(Lang::Ja).rule_title(id)), "{id:?}");
            assert!(!is_japanese(T(Lang::En).rule_title(id)), "{id:?}");
        }
        // The built-in rule reads as the core titles it.
        assert_eq!(
            T(Lang::En).rule_title(RuleId::CrowdStrike20240719),
            kaifuku_rescue::Rule::crowdstrike_2024_07_19().title
        );
        assert_eq!(
            T(Lang::En).rule_title(RuleId::Path),
            kaifuku_rescue::Rule::for_path("\\a\\b").unwrap().title
        );
    }

    #[test]
    fn every_partition_notice_is_said_in_both_languages() {
        let all = vec![
            NoticeKind::GptSector4096,
            NoticeKind::SizeNotWholeSectors {
                size: 1001,
                sector_size: 512,
            },
            NoticeKind::GptCopiesDiffer,
            NoticeKind::GptDiskGuidsDiffer,
            NoticeKind::BackupGptDamaged {
                detail: "CRC".into(),
            },
            NoticeKind::PrimaryGptDamaged {
                detail: "CRC".into(),
                backup_lba: 77,
            },
            NoticeKind::DiskEnlarged {
                backup_lba: 77,
                last_lba: 99,
            },
            NoticeKind::GptTruncated {
                needed: 4096,
                size: 1024,
            },
            NoticeKind::GptEntryImpossible {
                number: 3,
                name: String::new(),
                first_lba: 9,
                last_lba: 2,
            },
            NoticeKind::OutsideUsableArea {
                number: 2,
                first_lba: 1,
                last_lba: 5,
                usable_first: 34,
                usable_last: 99,
            },
            NoticeKind::DynamicDiskGpt { number: 2 },
            NoticeKind::HybridMbr,
            NoticeKind::StaleGpt { at: 512 },
            NoticeKind::ProtectiveMbrMissing,
            NoticeKind::BareSectorCountedIn512 {
                boot_sector_size: 1024,
            },
            NoticeKind::BareNoSectorSize,
            NoticeKind::PartitionTruncated {
                extended: true,
                number: 2,
                end: 10,
                size: 5,
                missing: 5,
            },
            NoticeKind::PartitionsOverlap {
                a: 1,
                b: 2,
                a_start: 0,
                a_end: 10,
                b_start: 5,
                b_end: 20,
            },
            NoticeKind::DynamicDiskMbr { number: 1 },
            NoticeKind::EbrPastEnd {
                ebr: 12,
                extended: 2,
            },
            NoticeKind::EbrNoSignature {
                ebr: 12,
                extended: 2,
            },
            NoticeKind::Mbr4096FromBootSectors {
                partitions: vec![1, 2],
            },
            NoticeKind::Mbr4096FromExtendedChain,
            NoticeKind::Mbr512FromDiskSize,
            NoticeKind::Mbr512Assumed,
            NoticeKind::BareVolume {
                volume: "NTFS volume".into(),
            },
            NoticeKind::EmptyMbr,
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

    /// The numbers a text names (`0x…` included; two characters or more).
    fn numbers(s: &str) -> Vec<String> {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|n| n.len() > 1 && n.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_journal_report_is_said_in_both_languages_with_the_core_s_figures() {
        use kaifuku_ntfs::logfile::analysis::{BitRange, Bitmap, IndexBlock, LcnRange};
        use kaifuku_ntfs::logfile::LfsVersion;
        use kaifuku_rescue::vocabulary::{
            JournalOverlap, JournalReport, JournalSummary, NtfsProblem, TouchedRecord,
        };
        let block = |record, vcn| IndexBlock {
            record,
            name: "$I30".into(),
            vcn,
            block_offset: 0,
            entry_offset: 0x18,
        };
        let summary = |overlap| JournalSummary {
            version: LfsVersion::V2_0,
            checkpoint_lsn: 0x8042d1,
            current_lsn: 0x80541d,
            redo_lsn: 0x80386c,
            last_lsn: 0x80541d,
            records_after_checkpoint: 156,
            transactions_committed: 12,
            transactions_uncommitted: 3,
            file_records: (30..42)
                .map(|record| TouchedRecord {
                    record,
                    path: (record == 35).then(|| "\\Windows".to_string()),
                })
                .collect(),
            index_blocks: vec![block(55, 16)],
            lcn_ranges: vec![LcnRange {
                first: 262143,
                count: 4,
            }],
            bitmap_ranges: vec![
                BitRange {
                    bitmap: Bitmap::Clusters,
                    first: 35,
                    count: 7,
                },
                BitRange {
                    bitmap: Bitmap::MftRecords,
                    first: 40,
                    count: 1,
                },
                BitRange {
                    bitmap: Bitmap::IndexBlocks {
                        record: 55,
                        name: "$I30".into(),
                    },
                    first: 12,
                    count: 1,
                },
                BitRange {
                    bitmap: Bitmap::Other {
                        record: 24,
                        attribute_type: 0xB0,
                    },
                    first: 99,
                    count: 2,
                },
            ],
            unresolved: 17,
            bytes_read: 78336,
            overlap,
        };
        let reports = vec![
            JournalReport::Analysed {
                journal: Box::new(summary(None)),
            },
            JournalReport::Analysed {
                journal: Box::new(summary(Some(JournalOverlap::NoOverlap))),
            },
            JournalReport::Analysed {
                journal: Box::new(summary(Some(JournalOverlap::Overlaps {
                    file_records: vec![2146],
                    index_blocks: vec![block(2140, 8)],
                    mft_bitmap_pages: vec![10],
                    cluster_bitmap_pages: vec![11],
                    clusters: vec![LcnRange {
                        first: 5000,
                        count: 2,
                    }],
                }))),
            },
            JournalReport::NoLiveLog,
            JournalReport::Unreadable {
                error: NtfsProblem::ReaderFailed {
                    detail: "torn".into(),
                },
            },
        ];
        for report in &reports {
            let view = crate::view::JournalView::of(report);
            let ja = T(Lang::Ja).journal_lines(&view).join("\n");
            let en = T(Lang::En).journal_lines(&view).join("\n");
            assert_ne!(ja, en, "{report:?} has no Japanese text");
            assert!(
                ja.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
                "{ja}"
            );
            // The page names the core's figures, in both languages.
            let mut core = report.to_string();
            if let JournalReport::Analysed { journal } = report {
                if let Some(o) = &journal.overlap {
                    core.push_str(&o.to_string());
                }
            }
            for n in numbers(&en) {
                assert!(core.contains(&n), "{n} of {en:?} is not in {core:?}");
                assert!(ja.contains(&n), "{n} missing from {ja}");
            }
        }
    }

    #[test]
    fn every_journal_replay_outcome_is_worded_in_both_languages() {
        use kaifuku_rescue::vocabulary::{JournalReplay, NtfsProblem};
        let outcomes = [
            JournalReplay::Replayed {
                committed: 3,
                uncommitted: 0,
                redone: 9,
                undone: 0,
            },
            JournalReplay::Replayed {
                committed: 2,
                uncommitted: 1,
                redone: 7,
                undone: 2,
            },
            JournalReplay::UnsupportedVersion {
                version: kaifuku_ntfs::logfile::LfsVersion::V2_0,
            },
            JournalReplay::NotUnderstood {
                lsn: 0x100b95,
                operation: "UpdateRelativeDataInIndex".into(),
                detail: "no source says what this operation changes".into(),
            },
            JournalReplay::Failed {
                error: NtfsProblem::ReaderFailed {
                    detail: "torn".into(),
                },
            },
        ];
        for outcome in &outcomes {
            let view = crate::view::JournalReplayView::of(outcome);
            let ja = T(Lang::Ja).journal_replay(&view);
            let en = T(Lang::En).journal_replay(&view);
            assert!(
                ja.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
                "{ja}"
            );
            // The page names the core's figures, in both languages; the replay's sentence is the
            // core's own.
            let core = outcome.to_string();
            if outcome.replayed() {
                assert_eq!(en.trim_end_matches('.'), core);
            }
            for n in numbers(&en) {
                assert!(core.contains(&n), "{n} of {en:?} is not in {core:?}");
                assert!(ja.contains(&n), "{n} missing from {ja}");
            }
        }
    }
    #[test]
    fn every_hive_state_and_windows_version_is_worded_in_both_languages_with_its_figures() {
        use kaifuku_registry::{HiveError, HiveStructure};
        let structures = [
            HiveStructure::BaseBlock,
            HiveStructure::Cell,
            HiveStructure::KeyNode,
            HiveStructure::SubkeyList,
            HiveStructure::ValueList,
            HiveStructure::ValueKey,
            HiveStructure::ValueData,
        ];
        let mut errors = vec![
            HiveError::Read {
                offset: 4100,
                detail: "short".into(),
            },
            HiveError::NotAHive,
            HiveError::BadChecksum {
                stored: 0x3d47ad17,
                computed: 0xee125b32,
            },
            HiveError::UnsupportedVersion { major: 2, minor: 9 },
            HiveError::NotPrimaryFile { file_type: 6 },
            HiveError::Truncated {
                hive_bins_size: 9216000,
                file_size: 8192,
            },
            HiveError::TooMany {
                structure: HiveStructure::KeyNode,
                offset: 4128,
                count: 300000,
                limit: 262144,
            },
            HiveError::WrongType {
                name: "CurrentBuildNumber".into(),
                found: 4,
                expected: 1,
            },
        ];
        errors.extend(structures.iter().map(|&structure| HiveError::Damaged {
            structure,
            offset: 8232,
            detail: "x".into(),
        }));
        let mut states = vec![
            HiveState::Clean { sequence: 41 },
            HiveState::Dirty {
                primary_sequence: 42,
                secondary_sequence: 41,
            },
            HiveState::Missing,
            HiveState::Unreadable {
                error: NtfsProblem::NotNtfs,
            },
        ];
        states.extend(
            errors
                .iter()
                .map(|e| HiveState::Damaged { error: e.clone() }),
        );
        let mut versions = vec![
            WindowsVersion::Build {
                build: 17763,
                product_name: Some("Windows Server 2019 Datacenter".into()),
            },
            WindowsVersion::Build {
                build: 14393,
                product_name: None,
            },
            WindowsVersion::NoSoftwareHive,
            WindowsVersion::NotRecorded,
            WindowsVersion::NotANumber { text: "x17".into() },
        ];
        versions.extend(
            errors
                .iter()
                .map(|e| WindowsVersion::Damaged { error: e.clone() }),
        );
        let mut seen_ja = std::collections::BTreeSet::new();
        let check = |ja: String,
                     en: String,
                     core: String,
                     seen_ja: &mut std::collections::BTreeSet<String>| {
            assert!(is_japanese(&ja), "{ja}");
            assert!(!is_japanese(&en), "{en}");
            for n in numbers(&core) {
                // The core's figures are in both wordings (hexadecimal checksums as the core
                // writes them).
                assert!(en.contains(&n), "{n} of {core:?} missing from {en:?}");
                assert!(ja.contains(&n), "{n} of {core:?} missing from {ja:?}");
            }
            assert!(seen_ja.insert(ja.clone()), "worded twice the same: {ja}");
        };
        for hive in [HiveName::System, HiveName::Software] {
            for s in &states {
                let ja = T(Lang::Ja).hive_state(hive, s);
                let en = T(Lang::En).hive_state(hive, s);
                assert!(ja.starts_with(hive.file_name()) && en.starts_with(hive.file_name()));
                check(ja, en, s.to_string(), &mut seen_ja);
            }
        }
        for v in &versions {
            check(
                T(Lang::Ja).windows_version(v),
                T(Lang::En).windows_version(v),
                v.to_string(),
                &mut seen_ja,
            );
        }
    }
}
