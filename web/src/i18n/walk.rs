//! Training: the guided walk from the outage to the fixed practice disk, and its exercises.

use super::{Lang, T};
use kaifuku_rescue::Verdict;

/// The steps of the walk, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkStep {
    Outage,
    PartitionTable,
    BootSector,
    PathWalk,
    Record,
    Plan,
    AfterFix,
    Downloads,
}

impl WalkStep {
    pub const ALL: [WalkStep; 8] = [
        WalkStep::Outage,
        WalkStep::PartitionTable,
        WalkStep::BootSector,
        WalkStep::PathWalk,
        WalkStep::Record,
        WalkStep::Plan,
        WalkStep::AfterFix,
        WalkStep::Downloads,
    ];

    /// A stable name for scripts and tests (`data-step`).
    pub fn code(self) -> &'static str {
        match self {
            WalkStep::Outage => "outage",
            WalkStep::PartitionTable => "partitions",
            WalkStep::BootSector => "boot-sector",
            WalkStep::PathWalk => "path-walk",
            WalkStep::Record => "record",
            WalkStep::Plan => "plan",
            WalkStep::AfterFix => "after-fix",
            WalkStep::Downloads => "downloads",
        }
    }
}

impl T {
    pub fn walk_heading(self) -> &'static str {
        pick!(self, "手順を追って学ぶ", "Guided walk")
    }
    pub fn walk_intro(self) -> &'static str {
        pick!(
            self,
            "青い画面から修復済みのディスクまで、8 つの手順で進みます。ボタンか矢印キー(← →)で手順を移れます。",
            "From the blue screen to the fixed disk in eight steps. Move between steps with the buttons or the arrow keys (← →)."
        )
    }
    pub fn walk_steps_label(self) -> &'static str {
        pick!(self, "手順", "Steps")
    }
    pub fn walk_step_title(self, s: WalkStep) -> &'static str {
        match s {
            WalkStep::Outage => pick!(
                self,
                "2024-07-19 に起きたこと",
                "What happened on 2024-07-19"
            ),
            WalkStep::PartitionTable => {
                pick!(self, "パーティションテーブル", "The partition table")
            }
            WalkStep::BootSector => pick!(self, "NTFS のブートセクター", "The NTFS boot sector"),
            WalkStep::PathWalk => pick!(
                self,
                "ルートから CrowdStrike フォルダーまで",
                "The path from the root to CrowdStrike"
            ),
            WalkStep::Record => pick!(
                self,
                "対象ファイルの MFT レコード",
                "The target's MFT record"
            ),
            WalkStep::Plan => pick!(self, "修復の計画(前と後)", "The plan (before and after)"),
            WalkStep::AfterFix => pick!(
                self,
                "修復後: 修復済みのイメージを読み直す",
                "After the fix: the fixed image read again"
            ),
            WalkStep::Downloads => pick!(self, "ダウンロードと演習", "Downloads and drills"),
        }
    }
    pub fn walk_step_of(self, n: usize, total: usize) -> String {
        pick!(
            self,
            format!("手順 {n} / {total}"),
            format!("Step {n} of {total}")
        )
    }
    pub fn walk_previous(self) -> &'static str {
        pick!(self, "← 前の手順", "← Previous step")
    }
    pub fn walk_next(self) -> &'static str {
        pick!(self, "次の手順 →", "Next step →")
    }
    pub fn walk_waiting(self) -> &'static str {
        pick!(self, "ディスクを読んでいます…", "Reading the disk…")
    }
    pub fn walk_nothing_here(self) -> &'static str {
        pick!(
            self,
            "このディスクには、この手順で見せる構造がありません。",
            "This disk has no structure to show at this step."
        )
    }

    // Step 1
    pub fn bsod_alt(self) -> &'static str {
        pick!(
            self,
            "Windows のブルースクリーン(文字で再現): 停止コード PAGE_FAULT_IN_NONPAGED_AREA、失敗したもの csagent.sys",
            "A Windows blue screen (as text): stop code PAGE_FAULT_IN_NONPAGED_AREA, what failed: csagent.sys"
        )
    }
    pub fn bsod_text(self) -> &'static str {
        pick!(
            self,
            ":(\n\nPC で問題が発生したため、再起動する必要があります。\nエラー情報を収集しています。自動的に再起動します。\n\n停止コード: PAGE_FAULT_IN_NONPAGED_AREA\n失敗した内容: csagent.sys",
            ":(\n\nYour PC ran into a problem and needs to restart.\nWe're just collecting some error info, and then we'll restart for you.\n\nStop code: PAGE_FAULT_IN_NONPAGED_AREA\nWhat failed: csagent.sys"
        )
    }
    pub fn outage_what(self) -> &'static str {
        pick!(
            self,
            "2024 年 7 月 19 日 04:09 UTC、CrowdStrike Falcon センサーのチャネルファイル 291(C-00000291-….sys)の更新が配信されました。センサーのドライバー csagent.sys はこのファイルを読んで無効なメモリーを参照し、Windows は起動のたびにブルースクリーンで止まりました(約 850 万台)。05:27 UTC に修正版が配信されましたが、起動できないマシンは受け取れません。",
            "On 19 July 2024 at 04:09 UTC, CrowdStrike shipped an update of Falcon's channel file 291 (C-00000291-….sys). The sensor's driver csagent.sys read it, touched invalid memory, and Windows stopped with a blue screen at every boot (about 8.5 million machines). A fixed version followed at 05:27 UTC, but machines that cannot boot cannot receive it."
        )
    }
    pub fn outage_manual(self) -> &'static str {
        pick!(
            self,
            "運用者は手作業で直しました: セーフモードか回復環境(WinRE)で起動する、クラウドの VM ならディスクを外して別の「救助用 VM」に付ける。そして \\Windows\\System32\\drivers\\CrowdStrike の C-00000291*.sys(04:09 UTC の版)を削除し、ディスクを戻して起動します。BitLocker があれば回復キーも要ります。めったに使わない技能なので、練習していない人には難しい作業でした。",
            "Operators fixed it by hand: boot into Safe Mode or the recovery environment (WinRE), or, for cloud VMs, detach the disk and attach it to a separate rescue VM; then delete C-00000291*.sys (the 04:09 UTC version) in \\Windows\\System32\\drivers\\CrowdStrike, put the disk back and boot. With BitLocker, the recovery key is needed too. These are rarely used skills, hard for anyone who never practised them."
        )
    }
    pub fn outage_here(self) -> &'static str {
        pick!(
            self,
            "この練習では、救助用 VM で行う作業(Windows のボリュームを見つけ、1 つのファイルを NTFS と同じやり方で削除する)を、ディスクの実際のバイト列を見ながら進めます。",
            "This walk does what a rescue VM is for (find the Windows volume, delete one file the way NTFS would) while showing the real bytes of the disk."
        )
    }

    // Steps 2-6
    pub fn walk_partitions_intro(self) -> &'static str {
        pick!(
            self,
            "ディスクの先頭には MBR(GPT ディスクでは保護用 MBR)があり、GPT ディスクでは LBA 1 に GPT ヘッダー、その後にパーティションエントリーが続きます。Windows は NTFS のボリュームで、\\Windows フォルダーがあるものです。",
            "The disk starts with the MBR (on a GPT disk, the protective MBR); a GPT disk has its header at LBA 1 and the partition entries after it. Windows is the NTFS volume that holds a \\Windows folder."
        )
    }
    pub fn walk_partition_row(
        self,
        number: u32,
        type_name: &str,
        fs: &str,
        first_lba: u64,
    ) -> String {
        pick!(
            self,
            format!("パーティション {number}: {type_name}、{fs}、開始 LBA {first_lba}"),
            format!("Partition {number}: {type_name}, {fs}, first LBA {first_lba}")
        )
    }
    pub fn walk_boot_intro(self) -> &'static str {
        pick!(
            self,
            "NTFS ボリュームの最初のセクターです。セクターのバイト数、クラスターのセクター数、$MFT の位置(クラスター番号)から、ファイルのレコードがどこにあるかが分かります。",
            "The first sector of the NTFS volume. Bytes per sector, sectors per cluster and where $MFT starts (a cluster number) tell where every file's record is."
        )
    }
    pub fn walk_path_intro(self) -> &'static str {
        pick!(
            self,
            "ルートフォルダーから Windows → System32 → drivers → CrowdStrike とたどります。各フォルダーの索引(B+ 木のノード)にある、次へ進むエントリーです。エントリーは名前と、その名前の MFT レコード番号を持ちます。",
            "From the root folder through Windows → System32 → drivers → CrowdStrike. Each step is the entry, in a directory's index (a B+ tree node), that leads on: it carries a name and the MFT record number of that name."
        )
    }
    pub fn walk_record_intro(self) -> &'static str {
        pick!(
            self,
            "一致したファイルの MFT レコード(ヘッダー: 署名 FILE、シーケンス番号、使用中フラグ、リンク数)、$STANDARD_INFORMATION の時刻(版の判定の元)、$FILE_NAME(長い名前と 8.3 形式)、$DATA のラン、ファイルの先頭バイトです。",
            "The matched files' MFT records (header: the FILE signature, sequence number, in-use flag, link count), the $STANDARD_INFORMATION times (what the verdict is drawn from), $FILE_NAME (long and 8.3), the $DATA runs, and each file's first bytes."
        )
    }
    pub fn walk_target(self, path: &str, record: u64, modified: &str, verdict: Verdict) -> String {
        let v = self.verdict_word(verdict);
        pick!(
            self,
            format!("{path}: MFT レコード {record}、更新時刻 {modified} → {v}"),
            format!("{path}: MFT record {record}, modified {modified} → {v}")
        )
    }
    pub fn walk_plan_intro(self) -> &'static str {
        pick!(
            self,
            "修復で書き換える範囲ごとに、前と後のバイトを並べています。変わるバイトは強調表示し、そのフィールドの名前を添えています。まだ何も書き込んでいません。",
            "Every range the fix writes, its bytes before and after side by side, the changed bytes highlighted and the field they fall in named. Nothing is written yet."
        )
    }
    pub fn walk_plan_replay(self) -> &'static str {
        pick!(
            self,
            "このディスクの Windows はクラッシュしたとき、ジャーナルに確定済みの更新をまだボリュームに書き込んでいませんでした。問題のファイルの作成もその中にあります。修復はまず、Windows が次回の起動時に行うのと同じようにジャーナルを再生し、それからファイルを削除します。",
            "This disk's Windows crashed before writing updates its journal had committed to the volume, among them the faulty file's creation. The fix first replays the journal as Windows would at its next start, then deletes the file."
        )
    }
    pub fn walk_plan_waiting(self) -> &'static str {
        pick!(
            self,
            "計画はまだありません(ジャーナルの扱いに同意が要る場合は、下の同意欄で選んでください)。",
            "No plan yet (if the journal needs your consent, give it in the consent section below)."
        )
    }

    // Step 7
    pub fn walk_after_intro(self) -> &'static str {
        pick!(
            self,
            "修復済みのイメージ(元のディスクに修復の書き込みを重ねたもの)を最初から読み直した結果です。対象のレコードは使用中ではなくなり、$MFT:$BITMAP のそのレコードのビットは 0 になっています。",
            "The fixed image (the original disk with the fix's writes laid over it), read again from scratch. The target's record is no longer in use, and its bit in $MFT:$BITMAP is 0."
        )
    }
    pub fn walk_fix_first(self) -> &'static str {
        pick!(
            self,
            "まず修復して確認します。ボタンを押すと、修復済みのイメージを読み直して確かめます(元のディスクは変わりません)。",
            "Fix first. The button verifies the fix by reading the fixed image again (the original disk is not changed)."
        )
    }
    pub fn walk_fix_button(self) -> &'static str {
        pick!(self, "修復して確認する", "Fix and verify")
    }
    pub fn walk_reread_heading(self) -> &'static str {
        pick!(
            self,
            "修復済みのイメージから読み直したバイト(前と後)",
            "The changed ranges read again from the fixed image (before and after)"
        )
    }

    // Step 8
    pub fn walk_downloads_intro(self) -> &'static str {
        pick!(
            self,
            "修復済みの練習用ディスクと、手を付けていない練習用ディスクをダウンロードできます。",
            "Download the fixed practice disk and the untouched one."
        )
    }
    pub fn walk_download_fixed(self) -> &'static str {
        pick!(self, "修復済みの練習用ディスク", "The fixed practice disk")
    }
    pub fn walk_download_untouched(self) -> &'static str {
        pick!(
            self,
            "手を付けていない練習用ディスク",
            "The untouched practice disk"
        )
    }
    pub fn walk_download_after_fix(self) -> &'static str {
        pick!(
            self,
            "修復済みのディスクは、手順 7 で修復したあとにダウンロードできます。",
            "The fixed disk can be downloaded once it is fixed (step 7)."
        )
    }
    pub fn walk_drills(self) -> [&'static str; 4] {
        match self.0 {
            Lang::Ja => [
                "Linux でマウントして確かめる: sudo mount -t ntfs-3g -o ro,offset=<開始バイト> practice-…-fixed.raw /mnt(開始バイトは手順 2 の開始 LBA × 512)。CrowdStrike フォルダーに 04:09 のファイルがないことを確かめます。",
                "Sleuth Kit で確かめる: mmls でパーティションの開始、fls -o <開始セクター> -r で CrowdStrike フォルダーの中身、istat -o <開始セクター> <レコード番号> でレコードが使用中でないこと。",
                "救助用 VM の演習: 手を付けていないディスクを qemu-img convert -O vpc で VHD にし、救助用 VM に付けて、手作業でファイルを見つけて削除します。結果を kaifuku fix の出力と比べます。",
                "同じディスクを kaifuku demo でも作れます(kaifuku demo OUT.vhd --scenario gpt)。kaifuku explain IMAGE で同じ構造を文字で表示します。",
            ],
            Lang::En => [
                "Mount it on Linux: sudo mount -t ntfs-3g -o ro,offset=<start byte> practice-…-fixed.raw /mnt (the start byte is step 2's first LBA × 512), and check that the 04:09 file is gone from the CrowdStrike folder.",
                "Check it with the Sleuth Kit: mmls for the partition start, fls -o <start sector> -r for the CrowdStrike folder, istat -o <start sector> <record> to see the record is not in use.",
                "A rescue-VM drill: turn the untouched disk into a VHD (qemu-img convert -O vpc), attach it to a rescue VM, find and delete the file by hand, and compare the result with kaifuku fix's output.",
                "kaifuku demo writes the same disks (kaifuku demo OUT.vhd --scenario gpt), and kaifuku explain IMAGE prints the same structures as text.",
            ],
        }
    }

    // Exercises
    pub fn exercise_heading(self) -> &'static str {
        pick!(self, "練習問題", "Exercise")
    }
    pub fn exercise_partition(self) -> &'static str {
        pick!(
            self,
            "Windows があるのはどのパーティションですか?",
            "Which partition holds Windows?"
        )
    }
    pub fn exercise_file(self) -> &'static str {
        pick!(
            self,
            "どのファイルが問題のファイルですか?",
            "Which of these files is the faulty one?"
        )
    }
    pub fn exercise_bit(self) -> &'static str {
        pick!(
            self,
            "$MFT:$BITMAP のどのビットが変わりますか?(当てはまるものをすべて)",
            "Which bits in $MFT:$BITMAP will change? (choose all that apply)"
        )
    }
    pub fn exercise_partition_choice(self, number: u32, type_name: &str) -> String {
        pick!(
            self,
            format!("パーティション {number}({type_name})"),
            format!("Partition {number} ({type_name})")
        )
    }
    pub fn exercise_bit_choice(self, bit: u64) -> String {
        pick!(self, format!("ビット {bit}"), format!("Bit {bit}"))
    }
    pub fn exercise_check(self) -> &'static str {
        pick!(self, "答え合わせ", "Check the answer")
    }
    pub fn exercise_choose_first(self) -> &'static str {
        pick!(
            self,
            "選択肢を 1 つ選んでください。",
            "Choose one answer first."
        )
    }
    pub fn exercise_right(self) -> &'static str {
        pick!(self, "正解です。", "Right.")
    }
    pub fn exercise_wrong(self) -> &'static str {
        pick!(self, "違います。", "Not quite.")
    }
    pub fn exercise_partition_note(self, number: u32, what: &str) -> String {
        pick!(
            self,
            format!("パーティション {number} は {what} です。"),
            format!("Partition {number} is {what}.")
        )
    }
    pub fn exercise_partition_why(self, number: u32) -> String {
        pick!(
            self,
            format!(
                "Windows はパーティション {number} です: NTFS のボリュームで、\\Windows フォルダーがあります。"
            ),
            format!(
                "Windows is on partition {number}: an NTFS volume holding a \\Windows folder."
            )
        )
    }
    pub fn exercise_file_note(self, name: &str, modified: &str, verdict: Verdict) -> String {
        let v = self.verdict_word(verdict);
        pick!(
            self,
            format!("{name} の時刻は {modified} で、{v}です。"),
            format!("{name} is timestamped {modified}: the {v}.")
        )
    }
    pub fn exercise_file_why(self, faulty: &str, modified: &str, all_zero: bool) -> String {
        let zeros = match (self.0, all_zero) {
            (Lang::Ja, true) => "中身はすべてゼロです(多くのクラッシュしたマシンと同じ)。",
            (Lang::En, true) => " Its content is all zeros, as on many crashed machines.",
            (_, false) => "",
        };
        pick!(
            self,
            format!(
                "問題のファイルは {faulty} です。$STANDARD_INFORMATION の更新時刻が {modified}(04:09 UTC の版)です。{zeros}"
            ),
            format!(
                "The faulty file is {faulty}: its $STANDARD_INFORMATION time is {modified}, the 04:09 UTC version.{zeros}"
            )
        )
    }
    pub fn exercise_bit_why(self, records: &[u64]) -> String {
        let list = records
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(pick!(self, "、", ", "));
        pick!(
            self,
            format!(
                "$MFT:$BITMAP はレコード番号ごとに 1 ビットです。削除するファイルのレコードは {list} なので、ビット {list} が 1 から 0 になります(レコードが空きになる)。"
            ),
            format!(
                "$MFT:$BITMAP has one bit per record number. The deleted files' records are {list}, so bit(s) {list} go from 1 to 0 (the records become free)."
            )
        )
    }
}
