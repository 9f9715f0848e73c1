//! Refusals, notices and failures: a title and an explanation each, for every variant of the
//! core's types the page shows. Every `match` here is exhaustive, with no catch-all arm: a variant
//! the core adds does not compile until it is said in both languages.

use super::{size, Lang, T};
use crate::view::{KeyFileKind, Problem};
use kaifuku_container::{OtherFormat, Qcow2ClusterKind, Qcow2Feature};
use kaifuku_rescue::vocabulary::BitLockerProblem;
use kaifuku_rescue::vocabulary::{
    Blocker, Checked, ContainerProblem, FixFailure, FixRefusal, NtfsProblem, PartitionProblem,
    Reason, RuleNotice, VerifyFailure, VolumeName, VolumeProblem,
};
use kaifuku_rescue::FixError;

/// What a volume problem amounts to for the reader; each has its own title and explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VolumeTrouble {
    BitLocker,
    BitLockerKeyRefused,
    Unsupported,
    Damaged,
    ReadFailed,
}

fn ntfs_trouble(e: &NtfsProblem) -> VolumeTrouble {
    match e {
        NtfsProblem::BitLocker => VolumeTrouble::BitLocker,
        NtfsProblem::Unsupported { .. } | NtfsProblem::Refused { .. } => VolumeTrouble::Unsupported,
        NtfsProblem::NotNtfs
        | NtfsProblem::BadBootSector { .. }
        | NtfsProblem::Damaged { .. }
        | NtfsProblem::ReaderFailed { .. } => VolumeTrouble::Damaged,
        NtfsProblem::ReadFailed { .. } => VolumeTrouble::ReadFailed,
    }
}

fn bitlocker_trouble(p: &BitLockerProblem) -> VolumeTrouble {
    match p {
        BitLockerProblem::RecoveryPassword { .. }
        | BitLockerProblem::WrongKey { .. }
        | BitLockerProblem::NoSuchProtector { .. }
        | BitLockerProblem::NeedsRecoveryPassword { .. }
        | BitLockerProblem::NotInKeyList { .. } => VolumeTrouble::BitLockerKeyRefused,
        BitLockerProblem::EncryptOnWrite
        | BitLockerProblem::Unsupported { .. }
        | BitLockerProblem::WriteIntoMetadata { .. } => VolumeTrouble::Unsupported,
        BitLockerProblem::Damaged { .. } => VolumeTrouble::Damaged,
        BitLockerProblem::ReadFailed { .. } => VolumeTrouble::ReadFailed,
    }
}

fn volume_trouble(p: &VolumeProblem) -> VolumeTrouble {
    match p {
        VolumeProblem::Ntfs { error } => ntfs_trouble(error),
        VolumeProblem::BitLocker { problem } => bitlocker_trouble(problem),
        VolumeProblem::OutsideDisk { .. }
        | VolumeProblem::WindowsPartitionUnreadable { .. }
        | VolumeProblem::WindowsBootSectorUnreadable { .. } => VolumeTrouble::Damaged,
    }
}

impl T {
    pub fn problem_title(self, p: &Problem) -> &'static str {
        match p {
            Problem::Reason { reason } => self.reason_title(reason),
            Problem::Blocked { blocker, .. } => self.blocker_title(blocker),
            Problem::Notice { notice, .. } => self.rule_notice_title(notice),
            Problem::Fix { error } => self.fix_error_title(error),
            Problem::Verify { .. } => pick!(self, "再検証に失敗しました", "Re-verification failed"),
            Problem::KeyFile { kind, .. } => self.key_file_title(*kind),
            Problem::Remote { problem, .. } => self.remote_problem_title(*problem),
            Problem::Internal { .. } => self.internal_title(),
        }
    }

    pub fn problem_text(self, p: &Problem) -> String {
        match p {
            Problem::Reason { reason } => self.reason_text(reason),
            Problem::Blocked { volume, blocker } => self.blocker_text(volume, blocker),
            Problem::Notice { volume, notice } => self.rule_notice_text(volume, notice),
            Problem::Fix { error } => self.fix_error_text(error),
            Problem::Verify { failure } => format!(
                "{} {}",
                pick!(
                    self,
                    "修復後のイメージを読み直して検証したところ、問題が見つかりました。ダウンロードは提供しません。元のファイルは変更していません。",
                    "Reading the fixed image back found a problem, so no download is offered. The original file was not changed."
                ),
                self.verify_failure(failure)
            ),
            Problem::KeyFile { kind, .. } => self.key_file_text(*kind).to_string(),
            Problem::Remote { problem, .. } => self.remote_problem_text(*problem).to_string(),
            Problem::Internal { .. } => self.internal_text().to_string(),
        }
    }

    fn key_file_title(self, kind: KeyFileKind) -> &'static str {
        match (self.0, kind) {
            (Lang::Ja, KeyFileKind::StartupKey) => "スタートアップ キーを読み取れません",
            (Lang::En, KeyFileKind::StartupKey) => "The startup key cannot be read",
            (Lang::Ja, KeyFileKind::KeyList) => "キーの一覧を読み取れません",
            (Lang::En, KeyFileKind::KeyList) => "The key list cannot be read",
        }
    }

    fn key_file_text(self, kind: KeyFileKind) -> &'static str {
        match (self.0, kind) {
            (Lang::Ja, KeyFileKind::StartupKey) => "選んだファイルは BitLocker のスタートアップ キー(.BEK ファイル)ではありません。USB メモリなどに保存された .BEK ファイルを選んでください。",
            (Lang::En, KeyFileKind::StartupKey) => "The chosen file is not a BitLocker startup key (.BEK file). Choose the .BEK file saved on the USB drive or elsewhere.",
            (Lang::Ja, KeyFileKind::KeyList) => "選んだファイルは回復キーの一覧(Entra ID や Active Directory から書き出した CSV、列は Id と Key)として読めないか、回復パスワードが入っていません。書き出したファイルをそのまま選んでください。",
            (Lang::En, KeyFileKind::KeyList) => "The chosen file does not read as a list of recovery keys (a CSV exported from Entra ID or Active Directory, with Id and Key columns), or holds no recovery password. Choose the exported file as it is.",
        }
    }

    fn internal_title(self) -> &'static str {
        pick!(self, "内部エラー", "Internal error")
    }

    fn internal_text(self) -> &'static str {
        pick!(
            self,
            "kaifuku の内部で問題が起きました(不具合です)。何も変更していません。報告の際は下の技術的な詳細をお知らせください。",
            "Something went wrong inside kaifuku (a bug). Nothing was changed. The technical detail below helps to report it."
        )
    }

    fn read_failed_title(self) -> &'static str {
        pick!(self, "ファイルを読み取れません", "The file cannot be read")
    }

    fn read_failed_text(self) -> &'static str {
        pick!(
            self,
            "ファイルを読み取れませんでした。開いている間に移動、削除、変更されませんでしたか。もう一度選択してください。",
            "The file could not be read. Was it moved, deleted or changed while open? Choose it again."
        )
    }

    // ---- what inspection concluded ----
    fn reason_title(self, r: &Reason) -> &'static str {
        match r {
            Reason::Matches { .. } => {
                pick!(self, "一致するファイルがあります", "Files match the rule")
            }
            Reason::Container { problem } => self.container_title(problem),
            Reason::Partitions { problem } => self.partitions_title(problem),
            Reason::Volume { problem, .. } => self.volume_title(volume_trouble(problem)),
            Reason::PartitionTableDamaged { .. } => pick!(
                self,
                "パーティションテーブルが壊れています",
                "The partition table is damaged"
            ),
            Reason::DamagedBareNtfs { .. } => self.volume_title(VolumeTrouble::Damaged),
            Reason::NoWindowsVolume => pick!(self, "Windows が見つかりません", "No Windows found"),
            Reason::DirectoryMissing { .. } => {
                pick!(
                    self,
                    "CrowdStrike のフォルダーがありません",
                    "No CrowdStrike folder"
                )
            }
            Reason::NoMatch { .. } => {
                pick!(self, "該当するファイルはありません", "No matching file")
            }
            Reason::JournalMayHoldMatch { .. } => pick!(
                self,
                "ファイルがジャーナルの中だけにあるかもしれません",
                "The file may exist only in the journal"
            ),
            Reason::VolumeHasProblems { .. } => {
                pick!(self, "ボリュームに問題があります", "A volume has problems")
            }
            Reason::NoNtfsVolume => pick!(self, "NTFS ボリュームがありません", "No NTFS volume"),
            Reason::CheckedClean { .. } => {
                pick!(self, "問題は見つかりませんでした", "No problem found")
            }
        }
    }

    fn reason_text(self, r: &Reason) -> String {
        match r {
            Reason::Matches { count, .. } => pick!(
                self,
                format!("ルールに一致するファイルが {count} 個あります。"),
                format!("{count} file(s) match the rule.")
            ),
            Reason::Container { problem } => self.container_text(problem),
            Reason::Partitions { problem } => self.partitions_text(problem).to_string(),
            Reason::Volume { volume, problem } => {
                self.volume_text(volume, volume_trouble(problem))
            }
            Reason::PartitionTableDamaged { notice } => pick!(
                self,
                format!(
                    "パーティションテーブルが壊れていて、ボリュームが隠れている可能性があります: {}",
                    self.notice(notice)
                ),
                format!(
                    "The partition table is damaged and may hide a volume: {}",
                    self.notice(notice)
                )
            ),
            Reason::DamagedBareNtfs { backup_intact, .. } => {
                let what = pick!(
                    self,
                    "このディスクは NTFS ボリュームですが、ブートセクターが壊れているため読み取れません。",
                    "This disk is an NTFS volume whose boot sector is damaged, so it cannot be read."
                );
                let next = match backup_intact {
                    true => pick!(
                        self,
                        "ディスクの終わりに無傷のバックアップがあります。Windows 回復環境の chkdsk(Linux では ntfsfix)で先頭のブートセクターを戻してから、もう一度試してください。",
                        "An intact backup lies at the end of the disk: chkdsk in Windows Recovery (or ntfsfix on Linux) can restore the first one; then try again."
                    ),
                    false => pick!(
                        self,
                        "正しいイメージか、最後までエクスポートされたかを確かめてください。",
                        "Check that this is the right image and that it was exported completely."
                    ),
                };
                format!("{what} {next}")
            }
            Reason::NoWindowsVolume => pick!(
                self,
                "このイメージには \\Windows\\System32 を含む NTFS ボリュームがないため、修復する Windows がありません。VM のシステムディスク(C: ドライブ)のイメージか確かめてください。",
                "No NTFS volume in this image holds \\Windows\\System32, so there is no Windows installation to repair. Is this the image of the VM's system disk (drive C:)?"
            )
            .to_string(),
            Reason::DirectoryMissing { volume, directory } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: フォルダー {directory} がありません。この Windows には CrowdStrike Falcon が入っていないため、この問題の影響は受けていません。"),
                    format!("{vol}: the folder {directory} does not exist: CrowdStrike Falcon is not installed on this Windows, so this problem does not affect it.")
                )
            }
            Reason::NoMatch {
                volume, pattern, ..
            } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: CrowdStrike のフォルダーに {pattern} はありません。不具合のファイルはすでに削除されたか、届いていません。それでも起動しない場合は、別の原因です。"),
                    format!("{vol}: there is no {pattern} in the CrowdStrike folder: the faulty file was already removed or never arrived. If the machine still does not boot, the cause is something else.")
                )
            }
            Reason::JournalMayHoldMatch {
                volume, pattern, ..
            } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: ディスク上の CrowdStrike のフォルダーに {pattern} はありませんが、Windows の書き込み途中の更新(ジャーナル)がこのフォルダーに触れていて、kaifuku はそれをやり直せません。不具合のファイルがジャーナルの中だけにあり、次の起動で Windows が作り直すかもしれません。ジャーナルの破棄に同意すると、ディスク上の内容が正しい状態になり、削除するものはありません(Windows は次回起動時に chkdsk を実行します)。"),
                    format!("{vol}: there is no {pattern} in the CrowdStrike folder on the disk, but Windows's unfinished updates (its journal) touch that folder, and kaifuku cannot replay them. The faulty file may exist only in the journal, and Windows would create it again at its next start. If you consent to discarding the journal, what is on the disk becomes the truth and there is nothing to delete (Windows then runs chkdsk at the next boot).")
                )
            }
            Reason::VolumeHasProblems { volume, count } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: 問題が {count} 件見つかりました。"),
                    format!("{vol}: {count} problem(s) found.")
                )
            }
            Reason::NoNtfsVolume => pick!(
                self,
                "このイメージには NTFS ボリュームがありません。",
                "The image holds no NTFS volume."
            )
            .to_string(),
            Reason::CheckedClean { volumes } => pick!(
                self,
                format!("NTFS ボリューム {volumes} 個を調べ、問題は見つかりませんでした。"),
                format!("{volumes} NTFS volume(s) checked, no problem found.")
            ),
        }
    }

    // ---- the image file ----
    fn other_format_name(self, f: OtherFormat) -> &'static str {
        match f {
            OtherFormat::Vhdx => "VHDX",
            OtherFormat::VmdkSparse => "VMDK",
            OtherFormat::VmdkDescriptor => pick!(self, "VMDK(記述ファイル)", "VMDK (descriptor)"),
        }
    }

    fn qcow2_feature_text(self, feature: Qcow2Feature) -> &'static str {
        match feature {
            Qcow2Feature::Version => pick!(
                self,
                "この qcow イメージのバージョンは 2 でも 3 でもありません(バージョン 1 は旧形式の qcow です)。qemu-img convert -O qcow2 IMAGE new.qcow2(または -O raw)で変換し、変換したファイルを開いてください。",
                "This qcow image has a version other than 2 or 3 (version 1 is the old qcow format). Convert it with qemu-img convert -O qcow2 IMAGE new.qcow2 (or -O raw) and open the converted file."
            ),
            Qcow2Feature::Encryption => pick!(
                self,
                "この qcow2 イメージは暗号化されているため、kaifuku では読み取れません。鍵を指定して qemu-img convert で暗号化されていないイメージに変換し、それを開いてください。",
                "This qcow2 image is encrypted, and kaifuku cannot read encrypted images. Convert it to an unencrypted image with qemu-img convert and the key, then open that."
            ),
            Qcow2Feature::BackingFile => pick!(
                self,
                "この qcow2 イメージにはバッキングファイルがあります。バッキングファイルに対する変更分しか含まないため、単独では読めません。コマンドライン(kaifuku fix IMAGE)は、イメージのヘッダーが示す場所にバッキングファイルがあればチェーンをたどって読み、イメージだけを変更します。このページはバッキングファイルを読まないので、コマンドラインを使うか、qemu-img convert -O qcow2 IMAGE merged.qcow2 で結合したイメージを開いてください。",
                "This qcow2 image has a backing file: it only holds the changes made on top of that file and cannot be read on its own. The command line (kaifuku fix IMAGE) reads the chain when the backing file is where the image's header says, and changes the image only; this page does not read backing files: use the command line, or merge the chain with qemu-img convert -O qcow2 IMAGE merged.qcow2 and open the merged image."
            ),
            Qcow2Feature::ExternalDataFile => pick!(
                self,
                "この qcow2 イメージはデータを外部データファイルに置いており、kaifuku はそれを読みません。qemu-img convert -O qcow2 IMAGE whole.qcow2 で変換し、それを開いてください。",
                "This qcow2 image keeps its data in an external data file, which kaifuku does not read. Convert it with qemu-img convert -O qcow2 IMAGE whole.qcow2 and open that."
            ),
            Qcow2Feature::Dirty => pick!(
                self,
                "この qcow2 イメージには dirty フラグが立っています。QEMU が正しく閉じなかったため、参照カウントが誤っている可能性があります。先に qemu-img check -r all IMAGE で修復し(元のファイルを残したい場合はコピーに対して)、開き直してください。",
                "This qcow2 image is marked dirty: QEMU did not close it cleanly and its reference counts may be wrong. Repair it first with qemu-img check -r all IMAGE (on a copy if you want to keep the original), then open it again."
            ),
            Qcow2Feature::MarkedCorrupt => pick!(
                self,
                "この qcow2 イメージには corrupt フラグが立っています。QEMU がメタデータの不整合を検出しました。先に qemu-img check -r all IMAGE で修復し(元のファイルを残したい場合はコピーに対して)、開き直してください。",
                "This qcow2 image is marked corrupt: QEMU found its metadata inconsistent. Repair it first with qemu-img check -r all IMAGE (on a copy if you want to keep the original), then open it again."
            ),
            Qcow2Feature::CompressionType => pick!(
                self,
                "この qcow2 イメージは zstd で圧縮されており、kaifuku では読み取れません。qemu-img convert -O qcow2 IMAGE new.qcow2(圧縮なし)で変換し、それを開いてください。",
                "This qcow2 image compresses clusters with zstd, which kaifuku does not read. Convert it with qemu-img convert -O qcow2 IMAGE new.qcow2 (no compression) and open that."
            ),
            Qcow2Feature::UnknownFeatures => pick!(
                self,
                "この qcow2 イメージは kaifuku の知らない非互換機能を使っています(qemu-img info で名前が分かります)。qemu-img convert -O qcow2 -o compat=1.1 IMAGE new.qcow2 で変換し、それを開いてください。",
                "This qcow2 image uses incompatible features kaifuku does not know (qemu-img info names them). Convert it with qemu-img convert -O qcow2 -o compat=1.1 IMAGE new.qcow2 and open that."
            ),
            Qcow2Feature::Bitmaps => pick!(
                self,
                "この qcow2 イメージには永続的なダーティビットマップがあり、その場で書き換えると古いままになります。qemu-img bitmap --remove で削除するか、qemu-img convert -O qcow2 IMAGE new.qcow2 で変換してから修復してください。",
                "This qcow2 image carries persistent dirty bitmaps, which a repair in place would leave stale. Remove them (qemu-img bitmap --remove) or convert the image with qemu-img convert -O qcow2 IMAGE new.qcow2, then repair that."
            ),
        }
    }

    fn qcow2_cluster_text(self, kind: Qcow2ClusterKind) -> &'static str {
        match kind {
            Qcow2ClusterKind::SharedTable => pick!(
                self,
                "変更する箇所を含む qcow2 クラスタの L2 テーブルが、内部スナップショットと共有されています。書き換えるとスナップショットも変わってしまい、kaifuku はテーブルを複製しません。不要なスナップショットを削除する(qemu-img snapshot -d NAME IMAGE)か、qemu-img convert -O qcow2 IMAGE current.qcow2(現在の状態だけを残す)で変換してから修復してください。",
                "A change would land in a cluster of this qcow2 image whose L2 table is shared with an internal snapshot: changing it would change the snapshot too, and kaifuku does not copy tables. Delete the snapshots you do not need (qemu-img snapshot -d NAME IMAGE) or convert the image with qemu-img convert -O qcow2 IMAGE current.qcow2 (which keeps the current state only), and repair that."
            ),
            Qcow2ClusterKind::RefcountTableFull => pick!(
                self,
                "変更する箇所を含む qcow2 クラスタはファイルの末尾に新しく格納する必要がありますが、イメージの参照カウントテーブルに新しいクラスタを数える余地がありません(kaifuku は参照カウントテーブルを拡張しません)。qemu-img convert -O qcow2 IMAGE new.qcow2 か raw に変換してから修復してください。",
                "A change would land in a cluster of this qcow2 image that must be stored anew at the end of the file, but the image's refcount table has no room to count the new clusters (kaifuku does not grow the refcount table). Convert the image with qemu-img convert -O qcow2 IMAGE new.qcow2 or to raw, and repair that."
            ),
        }
    }

    fn container_title(self, p: &ContainerProblem) -> &'static str {
        match p {
            ContainerProblem::UnsupportedFormat { .. } => {
                pick!(
                    self,
                    "まだ読めない形式です",
                    "A format kaifuku cannot read yet"
                )
            }
            ContainerProblem::DifferencingVhd => pick!(self, "差分 VHD です", "A differencing VHD"),
            ContainerProblem::PatchInUnallocatedBlock { .. } => pick!(
                self,
                "可変長 VHD の未割り当て領域です",
                "An unallocated part of a dynamic VHD"
            ),
            ContainerProblem::Qcow2Unsupported { .. } => pick!(
                self,
                "この qcow2 イメージはそのままでは扱えません",
                "A qcow2 image kaifuku cannot handle as it is"
            ),
            ContainerProblem::PatchInQcow2Cluster { .. } => pick!(
                self,
                "qcow2 のクラスタをその場で書き換えられません",
                "A qcow2 cluster that cannot be written in place"
            ),
            ContainerProblem::DifferencingVhdx => {
                pick!(self, "差分 VHDX です", "A differencing VHDX")
            }
            ContainerProblem::VmdkChild { .. } => pick!(
                self,
                "VMDK の子ディスク(スナップショット)です",
                "A VMDK child disk (snapshot)"
            ),
            ContainerProblem::PatchInUnallocatedVmdkGrain { .. } => pick!(
                self,
                "VMDK の未割り当て領域です",
                "An unallocated part of a VMDK"
            ),
            ContainerProblem::ReadFailed { .. } => self.read_failed_title(),
            ContainerProblem::Damaged { .. } => pick!(
                self,
                "イメージファイルが壊れているか不完全です",
                "The image file is damaged or incomplete"
            ),
        }
    }

    pub(crate) fn container_text(self, p: &ContainerProblem) -> String {
        match p {
            ContainerProblem::UnsupportedFormat {
                format: OtherFormat::VmdkDescriptor,
                ..
            } => pick!(
                self,
                "これは VMDK の記述ファイル(ディスクのデータがどのファイルにあるかを書いた小さなテキスト)です。データが 1 つの -flat.vmdk ファイルにあるなら、そのファイル自体が raw ディスクなので、それを選んでください(修復後のファイルも同じ名前のまま記述ファイルと組み合わせて使えます)。データが複数のファイルに分かれている場合は、コマンドラインで kaifuku fix DISK.vmdk -o fixed.vmdk を実行してください。記述ファイルとデータファイルをまとめて読み、同じ形式で書き出します。",
                "This is a VMDK descriptor: a small text file naming the files that hold the disk's data. If the data is in a single -flat.vmdk file, that file is a raw disk: pick it instead (the fixed file, kept under the same name, goes with the same descriptor). If the data is split over several files, use the command line: kaifuku fix DISK.vmdk -o fixed.vmdk reads the descriptor with its data files and writes the fixed disk in the same form."
            )
            .to_string(),
            ContainerProblem::UnsupportedFormat { format, qemu_name } => {
                let format = self.other_format_name(*format);
                pick!(
                    self,
                    format!("これは {format} 形式のイメージです。kaifuku は形式を認識できますが、まだ中身を読み取れません。先に raw 形式に変換してください(例: qemu-img convert -f {qemu_name} -O raw IMAGE disk.raw。固定サイズの VHD でも構いません)。変換したファイルを開き直してください。"),
                    format!("This is a {format} image: kaifuku recognises it but cannot read it yet. Convert it to raw first, for example with qemu-img convert -f {qemu_name} -O raw IMAGE disk.raw (a fixed-size VHD works too), then open the converted file.")
                )
            }
            ContainerProblem::DifferencingVhd => pick!(
                self,
                "これは差分 VHD です。親イメージに対する変更分しか含まないため、単独では修復できません。先に親イメージと結合し(Hyper-V の「ディスクの編集」→「結合」、または qemu-img convert)、結合したイメージを開いてください。",
                "This is a differencing VHD: it only holds the changes made on top of a parent image and cannot be repaired on its own. Merge it into its parent first (Hyper-V: Edit Disk → Merge, or qemu-img convert), then open the merged image."
            )
            .to_string(),
            ContainerProblem::PatchInUnallocatedBlock { .. } => pick!(
                self,
                "変更する箇所が、可変長 VHD のファイル内にまだ場所のない部分にあたり、新しいブロックを置くと VHD のブロックテーブルが指せる 2 TiB を超えてしまいます。固定サイズの VHD か raw に変換してから修復してください。",
                "A change would land in a part of this dynamic VHD that has no space in the file yet, and a new block would lie past the 2 TiB a VHD's block table reaches. Convert the image to a fixed-size VHD or to raw and repair that instead."
            )
            .to_string(),
            ContainerProblem::Qcow2Unsupported { feature } => {
                self.qcow2_feature_text(*feature).to_string()
            }
            ContainerProblem::PatchInQcow2Cluster { kind, .. } => {
                self.qcow2_cluster_text(*kind).to_string()
            }
            ContainerProblem::DifferencingVhdx => pick!(
                self,
                "これは差分 VHDX です。親イメージに対する変更分しか含まないため、単独では修復できません。先に親イメージと結合し(Hyper-V の「ディスクの編集」→「結合」、PowerShell の Merge-VHD、または qemu-img convert)、結合したイメージを開いてください。",
                "This is a differencing VHDX: it only holds the changes made on top of a parent image and cannot be repaired on its own. Merge it into its parent first (Hyper-V: Edit Disk → Merge, Merge-VHD in PowerShell, or qemu-img convert), then open the merged image."
            )
            .to_string(),
            ContainerProblem::VmdkChild { parent } => pick!(
                self,
                format!("これは VMDK の子ディスク(スナップショットまたはリンククローン。親: {parent})です。親ディスクに対する変更分しか含まないため、単独では修復できません。先にスナップショットを統合する(VMware の「すべて削除」/「統合」)か、親ディスクを同じフォルダに置いて qemu-img convert -O vmdk CHILD.vmdk merged.vmdk で結合し、結合したイメージを開いてください。"),
                format!("This is a VMDK child disk (a snapshot or linked clone; parent: {parent}): it only holds the changes made on top of the parent and cannot be repaired on its own. Consolidate the snapshots first (VMware: Delete All snapshots / Consolidate), or with the parent in the same folder merge it with qemu-img convert -O vmdk CHILD.vmdk merged.vmdk, then open the merged image.")
            ),
            ContainerProblem::PatchInUnallocatedVmdkGrain { .. } => pick!(
                self,
                "変更する箇所が、VMDK のファイル内にグレインテーブルそのものがない部分にあたります。kaifuku はグレインを追加できますが、グレインテーブルは追加しません。qemu-img convert -f vmdk -O raw IMAGE disk.raw で raw に変換して修復し、必要なら qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse で VMDK に戻してください。",
                "A change would land in a part of this VMDK whose grain table is missing from the file, and kaifuku adds grains but not grain tables. Convert the image to raw with qemu-img convert -f vmdk -O raw IMAGE disk.raw, repair that, and convert it back with qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse if you need a VMDK."
            )
            .to_string(),
            ContainerProblem::ReadFailed { .. } => self.read_failed_text().to_string(),
            ContainerProblem::Damaged { .. } => pick!(
                self,
                "イメージファイルが壊れているか、不完全です(ダウンロードやコピーが途中で終わった場合など)。イメージをもう一度コピーまたはエクスポートし、最後までコピーされたことを確かめてください。",
                "The image file is damaged or incomplete (for example a download or copy that did not finish). Copy or export the image again and check that the copy is complete."
            )
            .to_string(),
        }
    }

    // ---- the partition table ----
    fn partitions_title(self, p: &PartitionProblem) -> &'static str {
        match p {
            PartitionProblem::ReadFailed { .. } => self.read_failed_title(),
            PartitionProblem::TooSmall { .. }
            | PartitionProblem::NoTable
            | PartitionProblem::Unsupported { .. }
            | PartitionProblem::Damaged { .. } => pick!(
                self,
                "パーティションテーブルを読み取れません",
                "The partition table cannot be read"
            ),
        }
    }

    fn partitions_text(self, p: &PartitionProblem) -> &'static str {
        match p {
            PartitionProblem::ReadFailed { .. } => self.read_failed_text(),
            PartitionProblem::TooSmall { .. }
            | PartitionProblem::NoTable
            | PartitionProblem::Unsupported { .. }
            | PartitionProblem::Damaged { .. } => pick!(
                self,
                "パーティションテーブルを読み取れませんでした。イメージが壊れているか、ディスクイメージではない可能性があります。",
                "The partition table could not be read: the image may be damaged, or it is not a disk image."
            ),
        }
    }

    // ---- a volume ----
    fn volume_title(self, t: VolumeTrouble) -> &'static str {
        match t {
            VolumeTrouble::BitLocker => {
                pick!(
                    self,
                    "BitLocker で暗号化されています",
                    "Encrypted with BitLocker"
                )
            }
            VolumeTrouble::BitLockerKeyRefused => pick!(
                self,
                "BitLocker のロックを解除できません",
                "The BitLocker volume could not be unlocked"
            ),
            VolumeTrouble::Unsupported => pick!(
                self,
                "未対応の機能があります",
                "Something kaifuku does not handle yet"
            ),
            VolumeTrouble::Damaged => {
                pick!(
                    self,
                    "ボリュームを読み取れません",
                    "A volume cannot be read"
                )
            }
            VolumeTrouble::ReadFailed => self.read_failed_title(),
        }
    }

    fn volume_text(self, volume: &VolumeName, t: VolumeTrouble) -> String {
        let vol = self.vol(volume);
        match t {
            VolumeTrouble::BitLocker => pick!(
                self,
                format!("{vol} は BitLocker で暗号化されています。上の欄に回復パスワード(48 桁)、パスワード、スタートアップ キー、または回復キーの一覧を入力すると、このページの中でロックを解除して修復できます。キーはこのページから出ません。"),
                format!("{vol} is encrypted with BitLocker. Give its 48-digit recovery password, its password, its startup key or a recovery key list in the form above, and this page unlocks and fixes it here. The key never leaves this page.")
            ),
            VolumeTrouble::BitLockerKeyRefused => pick!(
                self,
                format!("{vol} は BitLocker で暗号化されていますが、指定されたキーではロックを解除できませんでした。回復パスワード(48 桁)またはキーの一覧を確かめて、もう一度試してください。"),
                format!("{vol} is encrypted with BitLocker, and the key given does not unlock it. Check the 48-digit recovery password or the key list, and try again.")
            ),
            VolumeTrouble::Unsupported => pick!(
                self,
                format!("{vol} には kaifuku がまだ対応していない機能が使われているため、調べられません。"),
                format!("{vol} uses something kaifuku does not handle yet, so it cannot be examined.")
            ),
            VolumeTrouble::Damaged => pick!(
                self,
                format!("{vol} を読み取れませんでした。ファイルシステムが壊れているようです。イメージが完全か確かめてください。"),
                format!("{vol} could not be read: its file system looks damaged. Check that the image is complete.")
            ),
            VolumeTrouble::ReadFailed => self.read_failed_text().to_string(),
        }
    }

    // ---- what stops a fix ----
    fn blocker_title(self, b: &Blocker) -> &'static str {
        match b {
            Blocker::BitLocker => self.volume_title(VolumeTrouble::BitLocker),
            Blocker::JournalNotClean { .. } => pick!(
                self,
                "ボリュームのジャーナルがクリーンではありません",
                "The volume's journal is not clean"
            ),
            Blocker::JournalMayHoldMatch { .. } => pick!(
                self,
                "Windows の書き込み途中の更新が CrowdStrike のフォルダーに触れています",
                "Windows's unfinished updates touch the CrowdStrike folder"
            ),
            Blocker::Hibernated => pick!(self, "Windows が休止状態です", "Windows is hibernated"),
            Blocker::QuotaTracking => {
                pick!(
                    self,
                    "ディスククォータが有効です",
                    "Disk quotas are tracked"
                )
            }
        }
    }

    fn blocker_text(self, volume: &VolumeName, b: &Blocker) -> String {
        let vol = self.vol(volume);
        match b {
            Blocker::BitLocker => self.volume_text(volume, VolumeTrouble::BitLocker),
            Blocker::JournalNotClean { .. } => pick!(
                self,
                format!("{vol}: NTFS は書き込み途中の変更をジャーナル($LogFile)に記録しています。今回のブートループのようなクラッシュの後には、Windows が次にこのボリュームを開くときにやり直す変更が残っていて、そのやり直しが修復を上書きするおそれがあります。安全な方法(ntfsfix と同じ)は、ジャーナルを破棄し、ボリュームに「要チェック」の印(ダーティフラグ)を付けることです。Windows は次回起動時に chkdsk を実行し、クラッシュ直前の処理で中途半端になった部分を修復します。クラッシュの瞬間に書き込み中だった内容は失われることがありますが、ほかのファイルには触れません。"),
                format!("{vol}: NTFS keeps a journal ($LogFile) of changes in progress. After a crash, such as this boot loop, it still holds changes that Windows replays the next time it opens the volume, and that replay could write over the repair. The safe way (what ntfsfix does) is to discard the journal and mark the volume as needing a check (the dirty flag): Windows then runs chkdsk at the next boot, which repairs whatever the last moments before the crash left half-done. What was being written at the moment of the crash may be lost; your other files are not touched.")
            ),
            Blocker::JournalMayHoldMatch { unreadable, .. } => {
                let why = match unreadable {
                    true => pick!(
                        self,
                        "ジャーナルを読み取れないため、書き込み途中の更新が CrowdStrike のフォルダーに触れていないとは言えません。",
                        "The journal cannot be read, so kaifuku cannot tell that Windows's unfinished updates leave the CrowdStrike folder alone."
                    ),
                    false => pick!(
                        self,
                        "Windows の書き込み途中の更新(ジャーナル)が CrowdStrike のフォルダーかその上のフォルダーに触れていて、kaifuku はそれをやり直せません。",
                        "Windows's unfinished updates (its journal) touch the CrowdStrike folder or a folder above it, and kaifuku cannot replay them."
                    ),
                };
                pick!(
                    self,
                    format!("{vol}: {why}不具合のファイルがあるかどうか分かりません。ジャーナルの破棄に同意すると、ディスク上の内容が正しい状態になります(Windows は次回起動時に chkdsk を実行します)。"),
                    format!("{vol}: {why} It cannot tell whether the faulty file is there. If you consent to discarding the journal, what is on the disk becomes the truth (Windows then runs chkdsk at the next boot).")
                )
            }
            Blocker::Hibernated => pick!(
                self,
                format!("{vol}: Windows が休止状態です(hiberfil.sys に保存されたセッションがあります)。復帰するとオフラインで加えた変更が上書きされるため、kaifuku は編集しません。Windows を起動して完全にシャットダウンするか、Windows で休止状態を無効にして(powercfg /h off)から、イメージをもう一度エクスポートしてください。"),
                format!("{vol}: Windows is hibernated (hiberfil.sys holds a saved session). Resuming it would overwrite any offline change, so kaifuku does not edit it. Boot Windows and shut it down fully, or turn hibernation off in Windows (powercfg /h off), then export the image again.")
            ),
            Blocker::QuotaTracking => pick!(
                self,
                format!("{vol}: このボリュームではディスククォータの使用量が記録されています。オフラインで削除するとクォータの集計が合わなくなるため、kaifuku は編集しません。Windows でクォータの記録を無効にするか、Windows 回復環境からファイルを削除してください。"),
                format!("{vol}: disk quota usage is tracked on this volume. An offline delete would leave the quota accounting wrong, so kaifuku does not edit it. Turn quota tracking off in Windows, or delete the file from Windows Recovery.")
            ),
        }
    }

    // ---- what the rule met ----
    fn rule_notice_title(self, n: &RuleNotice) -> &'static str {
        match n {
            RuleNotice::DirectorySkipped { .. } => pick!(
                self,
                "同じ名前のフォルダーは残します",
                "A folder with a matching name stays"
            ),
            RuleNotice::LinkFollowed { .. } => {
                pick!(self, "リンクをたどりました", "A link was followed")
            }
        }
    }

    fn rule_notice_text(self, volume: &VolumeName, n: &RuleNotice) -> String {
        let vol = self.vol(volume);
        match n {
            RuleNotice::DirectorySkipped { path } => pick!(
                self,
                format!("{vol}: {path} はファイルではなくフォルダーです。kaifuku が削除するのはファイルだけなので、このフォルダーはそのまま残します。"),
                format!("{vol}: {path} is a folder, not a file. kaifuku deletes files only, so it stays as it is.")
            ),
            RuleNotice::LinkFollowed { link, target } => pick!(
                self,
                format!("{vol}: {link} は {target} へのリンク(ジャンクションまたはシンボリックリンク)です。Windows と同じようにリンク先を調べました。"),
                format!("{vol}: {link} is a link (junction or symbolic link) to {target}. kaifuku looked where it leads, as Windows does.")
            ),
        }
    }

    // ---- planning the fix ----
    fn fix_error_title(self, e: &FixError) -> &'static str {
        match e {
            FixError::NothingToFix { .. } => {
                pick!(self, "修復の必要はありません", "Nothing to fix")
            }
            FixError::Refused { refusal } => match refusal {
                FixRefusal::Inspect { .. } => pick!(
                    self,
                    "このイメージはここでは修復できません",
                    "This image cannot be fixed here"
                ),
                FixRefusal::Blocked { blocker, .. } => self.blocker_title(blocker),
                FixRefusal::Ntfs { error, .. } => self.volume_title(ntfs_trouble(error)),
                FixRefusal::ChkdskWouldRestore { .. } => pick!(
                    self,
                    "chkdsk がファイルを元に戻すおそれがあります",
                    "chkdsk may bring the file back"
                ),
            },
            FixError::Failed { failure } => match failure {
                FixFailure::OutputNotMappable { problem } => self.container_title(problem),
                FixFailure::BitLocker { problem, .. } => {
                    self.volume_title(bitlocker_trouble(problem))
                }
                FixFailure::ReadFailed { .. } => self.read_failed_title(),
                FixFailure::Internal { .. } => self.internal_title(),
                FixFailure::Inspect { .. }
                | FixFailure::PartitionsOverlap { .. }
                | FixFailure::Ntfs { .. }
                | FixFailure::DirectoryVanished { .. }
                | FixFailure::WriteTargetsDamaged { .. }
                | FixFailure::PatchedVolumeDoesNotOpen { .. }
                | FixFailure::PatchedVolumeUnreadable { .. }
                | FixFailure::CheckFailed { .. }
                | FixFailure::CheckFoundProblems { .. }
                | FixFailure::StillMatches { .. }
                | FixFailure::PatchOverlapsJournalReset { .. } => {
                    pick!(
                        self,
                        "修復を計画できませんでした",
                        "The fix could not be planned"
                    )
                }
            },
        }
    }

    fn reasons_text(self, reasons: &[Reason]) -> String {
        let texts: Vec<String> = reasons.iter().map(|r| self.reason_text(r)).collect();
        texts.join(" ")
    }

    fn fix_error_text(self, e: &FixError) -> String {
        match e {
            FixError::NothingToFix { reasons } => self.reasons_text(reasons),
            FixError::Refused { refusal } => match refusal {
                FixRefusal::Inspect { reasons } => self.reasons_text(reasons),
                FixRefusal::Blocked { volume, blocker } => self.blocker_text(volume, blocker),
                FixRefusal::Ntfs { volume, error, .. } => {
                    self.volume_text(volume, ntfs_trouble(error))
                }
                FixRefusal::ChkdskWouldRestore {
                    volume,
                    directory,
                    files,
                } => {
                    let vol = self.vol(volume);
                    let listed: Vec<String> = files
                        .iter()
                        .map(|f| format!("{} (MFT {})", f.name, f.record))
                        .collect();
                    let listed = listed.join(", ");
                    pick!(
                        self,
                        format!("{vol}: {directory} の一覧には {listed} がありませんが、そのファイルレコードは使用中のままです。Windows がこのファイルを作っている途中で止まったためです。ジャーナルを破棄すると次の起動で chkdsk が動き、このファイルをフォルダーに戻すおそれがあります。何も変更していません。Windows 回復環境からこのボリュームに chkdsk /f を実行し(ジャーナルの続きが実行され、ファイルがフォルダーに戻ります)、もう一度 kaifuku で修復してください。"),
                        format!("{vol}: {directory} does not list {listed}, but its file record is still marked in use: Windows stopped while it was creating the file. Discarding the journal makes Windows run chkdsk at the next start, which may put the file back into the folder. Nothing was changed. Run chkdsk /f on this volume from Windows Recovery (it finishes the journal and puts the file back), then fix the image with kaifuku again.")
                    )
                }
            },
            FixError::Failed { failure } => format!(
                "{} {}",
                pick!(
                    self,
                    "修復を安全に計画できなかったため、何も変更していません。",
                    "The fix could not be planned safely, so nothing was changed."
                ),
                self.fix_failure(failure)
            ),
        }
    }

    /// What the fix's own verification checked, as the object of a sentence.
    fn checked(self, c: Checked) -> &'static str {
        match c {
            Checked::ChangedRecords => {
                pick!(self, "変更した MFT レコード", "the changed MFT records")
            }
            Checked::MftBitmap => "$MFT:$BITMAP",
            Checked::Bitmap => "$Bitmap",
            Checked::EditedDirectory => {
                pick!(
                    self,
                    "編集したディレクトリの索引",
                    "the edited directory index"
                )
            }
            Checked::SideIndexes => pick!(
                self,
                "編集した $Extend\\$ObjId / $Extend\\$Reparse の索引",
                "the edited $Extend\\$ObjId / $Extend\\$Reparse index"
            ),
        }
    }

    fn fix_failure(self, f: &FixFailure) -> String {
        match f {
            FixFailure::Inspect { reasons } => self.reasons_text(reasons),
            FixFailure::PartitionsOverlap { volume, .. } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: このパーティションは別のパーティションと重なっているため、書き込むと他方も変わってしまいます。先にパーティションテーブルを直してください(ハイパーバイザーのディスクツールや testdisk など)。"),
                    format!("{vol}: its partition overlaps another, so a write could change the other one. Fix the partition table first (for example with the hypervisor's disk tools, or testdisk).")
                )
            }
            FixFailure::Ntfs { volume, error, .. } => self.volume_text(volume, ntfs_trouble(error)),
            FixFailure::DirectoryVanished { volume, directory } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: 変更しようとしたときに {directory} が見つかりませんでした。"),
                    format!("{vol}: {directory} was gone when the edit looked it up.")
                )
            }
            FixFailure::WriteTargetsDamaged { volume, problems } => {
                let vol = self.vol(volume);
                let n = problems.len();
                pick!(
                    self,
                    format!("{vol}: 修復で書き込む構造が壊れています(問題 {n} 件)。Windows または Windows 回復環境でこのボリュームに chkdsk を実行してから、もう一度試してください。"),
                    format!("{vol}: structures the fix must write are damaged ({n} problem(s)). Run chkdsk on the volume in Windows or Windows Recovery, then try again.")
                )
            }
            FixFailure::PatchedVolumeDoesNotOpen { volume, .. } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: 変更後のボリュームが開けません。"),
                    format!("{vol}: the changed volume does not open.")
                )
            }
            FixFailure::PatchedVolumeUnreadable { volume, .. } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: 変更後のボリュームを読み直せません。"),
                    format!("{vol}: the changed volume cannot be read again.")
                )
            }
            FixFailure::CheckFailed {
                volume, checked, ..
            } => {
                let vol = self.vol(volume);
                let what = self.checked(*checked);
                pick!(
                    self,
                    format!("{vol}: 変更後の{what}を検査できませんでした。"),
                    format!("{vol}: checking {what} after the change failed.")
                )
            }
            FixFailure::CheckFoundProblems {
                volume,
                checked,
                problems,
            } => {
                let vol = self.vol(volume);
                let what = self.checked(*checked);
                let n = problems.len();
                pick!(
                    self,
                    format!("{vol}: 変更後の{what}に問題が {n} 件見つかりました。"),
                    format!("{vol}: {n} problem(s) found in {what} after the change.")
                )
            }
            FixFailure::StillMatches { count } => pick!(
                self,
                format!("変更後もルールに一致するファイルが {count} 個あります。"),
                format!("After the change the rule still finds {count} file(s).")
            ),
            FixFailure::PatchOverlapsJournalReset { label } => {
                let label = self.structure(label);
                pick!(
                    self,
                    format!("変更箇所({label})がジャーナルのリセット範囲と重なっています。"),
                    format!("A change ({label}) overlaps the journal reset.")
                )
            }
            FixFailure::ReadFailed { .. } => self.read_failed_text().to_string(),
            FixFailure::OutputNotMappable { problem } => self.container_text(problem),
            FixFailure::BitLocker { volume, problem } => {
                self.volume_text(volume, bitlocker_trouble(problem))
            }
            FixFailure::Internal { .. } => self.internal_text().to_string(),
        }
    }

    // ---- verifying the fixed image ----
    fn verify_failure(self, f: &VerifyFailure) -> String {
        match f {
            VerifyFailure::NothingPlanned => {
                pick!(self, "修復が計画されていません。", "Nothing was planned.").to_string()
            }
            VerifyFailure::ContainerDoesNotOpen { .. } => pick!(
                self,
                "修復後のイメージがディスクイメージとして開けません。",
                "The fixed image does not open as a disk image."
            )
            .to_string(),
            VerifyFailure::NoOriginalContainer => pick!(
                self,
                "元のイメージがディスクイメージとして開けませんでした。",
                "The original image did not open as a disk image."
            )
            .to_string(),
            VerifyFailure::ContainerDiffers {
                format,
                virtual_size,
                original_format,
                original_virtual_size,
            } => pick!(
                self,
                format!(
                    "修復後のイメージは {}、{} として開きますが、元は {}、{} です。",
                    self.format_name(*format),
                    size(*virtual_size),
                    self.format_name(*original_format),
                    size(*original_virtual_size)
                ),
                format!(
                    "The fixed image opens as {}, {}; the original as {}, {}.",
                    self.format_name(*format),
                    size(*virtual_size),
                    self.format_name(*original_format),
                    size(*original_virtual_size)
                )
            ),
            VerifyFailure::VolumeGone { volume } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol} が見つかりません。"),
                    format!("{vol} is gone.")
                )
            }
            VerifyFailure::VolumeUnreadable { volume, .. } | VerifyFailure::Ntfs { volume, .. } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol} を読み取れません。"),
                    format!("{vol} cannot be read.")
                )
            }
            VerifyFailure::RecordInUse { volume, record } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol}: MFT レコード {record} がまだ使用中です。"),
                    format!("{vol}: MFT record {record} is still in use.")
                )
            }
            VerifyFailure::CheckerProblems { volume, problems } => {
                let vol = self.vol(volume);
                let n = problems.len();
                pick!(
                    self,
                    format!("{vol}: NTFS の整合性チェックで問題が {n} 件見つかりました。"),
                    format!("{vol}: the NTFS consistency checks find {n} problem(s).")
                )
            }
            VerifyFailure::NotNtfs { volume } => {
                let vol = self.vol(volume);
                pick!(
                    self,
                    format!("{vol} が NTFS ではなくなっています。"),
                    format!("{vol} is not NTFS any more.")
                )
            }
            VerifyFailure::JournalNotReset {
                volume,
                state,
                dirty,
            } => {
                let vol = self.vol(volume);
                let state = self.journal_state(*state, false);
                let dirty = self.dirty(*dirty);
                pick!(
                    self,
                    format!("{vol}: ジャーナルがリセットされていません(ジャーナル: {state}、ダーティフラグ: {dirty})。"),
                    format!("{vol}: the journal is not reset (journal: {state}, dirty flag: {dirty}).")
                )
            }
            VerifyFailure::JournalNotReplayed { volume, state } => {
                let vol = self.vol(volume);
                let state = self.journal_state(*state, false);
                pick!(
                    self,
                    format!("{vol}: ジャーナルの再生後もジャーナルがクリーンではありません(ジャーナル: {state})。"),
                    format!("{vol}: after the journal replay the journal is not clean (journal: {state}).")
                )
            }
            VerifyFailure::StillMatches { count, .. } => pick!(
                self,
                format!("ルールに一致するファイルがまだ {count} 個あります。"),
                format!("The rule still finds {count} file(s).")
            ),
            VerifyFailure::Internal { .. } => self.internal_text().to_string(),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::RemoteProblem;
    use kaifuku_ntfs::check::{Problem as CheckProblem, ProblemKind};
    use kaifuku_ntfs::{BootSectorFault, Damage, LogState, Refusal, Structure};
    use kaifuku_partition::NoticeKind;

    // Each list below names every variant of its type. The `match` after it has no catch-all, so
    // a variant the core adds stops this test from compiling until it is listed (and worded).

    fn volume() -> VolumeName {
        VolumeName {
            partition: Some(2),
            label: Some("Windows".into()),
        }
    }

    fn ntfs_problems() -> Vec<NtfsProblem> {
        let all = vec![
            NtfsProblem::NotNtfs,
            NtfsProblem::BitLocker,
            NtfsProblem::BadBootSector {
                fault: BootSectorFault::MissingEndSignature,
            },
            NtfsProblem::Damaged {
                damage: Damage {
                    structure: Structure::FileRecord,
                    at: None,
                    detail: "bad fixup".into(),
                },
            },
            NtfsProblem::Unsupported {
                unsupported: kaifuku_ntfs::Unsupported::IndexSplit {
                    node: kaifuku_ntfs::NodeId::Root,
                    needed: 100,
                    available: 10,
                },
            },
            NtfsProblem::Refused {
                refusal: Refusal::SystemFile {
                    name: "$MFT".into(),
                    record: 0,
                },
            },
            NtfsProblem::ReadFailed {
                what: "reading record 5".into(),
                detail: "gone".into(),
            },
            NtfsProblem::ReaderFailed {
                detail: "no".into(),
            },
        ];
        for p in &all {
            match p {
                NtfsProblem::NotNtfs
                | NtfsProblem::BitLocker
                | NtfsProblem::BadBootSector { .. }
                | NtfsProblem::Damaged { .. }
                | NtfsProblem::Unsupported { .. }
                | NtfsProblem::Refused { .. }
                | NtfsProblem::ReadFailed { .. }
                | NtfsProblem::ReaderFailed { .. } => {}
            }
        }
        all
    }

    fn bitlocker_problems() -> Vec<BitLockerProblem> {
        use kaifuku_bitlocker::{ProtectionType, RecoveryPasswordFault};
        let all = vec![
            BitLockerProblem::RecoveryPassword {
                fault: RecoveryPasswordFault::MistypedGroup { group: 2 },
            },
            BitLockerProblem::WrongKey {
                protection: ProtectionType::RecoveryPassword,
                tried: 1,
            },
            BitLockerProblem::NoSuchProtector {
                wanted: ProtectionType::Password,
                available: "TPM".into(),
            },
            BitLockerProblem::NeedsRecoveryPassword {
                available: "TPM".into(),
            },
            BitLockerProblem::NotInKeyList {
                ids: vec!["3E55195C-8811-4D9B-97B4-2B9E5F8F5384".into()],
            },
            BitLockerProblem::EncryptOnWrite,
            BitLockerProblem::Unsupported {
                detail: "method".into(),
            },
            BitLockerProblem::Damaged {
                detail: "metadata".into(),
            },
            BitLockerProblem::WriteIntoMetadata { offset: 4096 },
            BitLockerProblem::ReadFailed {
                detail: "eof".into(),
            },
        ];
        for p in &all {
            match p {
                BitLockerProblem::RecoveryPassword { .. }
                | BitLockerProblem::WrongKey { .. }
                | BitLockerProblem::NoSuchProtector { .. }
                | BitLockerProblem::NeedsRecoveryPassword { .. }
                | BitLockerProblem::NotInKeyList { .. }
                | BitLockerProblem::EncryptOnWrite
                | BitLockerProblem::Unsupported { .. }
                | BitLockerProblem::Damaged { .. }
                | BitLockerProblem::WriteIntoMetadata { .. }
                | BitLockerProblem::ReadFailed { .. } => {}
            }
        }
        all
    }

    fn volume_problems() -> Vec<VolumeProblem> {
        let mut all = vec![
            VolumeProblem::OutsideDisk {
                partition: Some(4),
                detail: "ends at 9".into(),
            },
            VolumeProblem::WindowsPartitionUnreadable { detail: None },
            VolumeProblem::WindowsBootSectorUnreadable {
                oem_id: None,
                backup_intact: true,
            },
        ];
        all.extend(
            ntfs_problems()
                .into_iter()
                .map(|error| VolumeProblem::Ntfs { error }),
        );
        all.extend(
            bitlocker_problems()
                .into_iter()
                .map(|problem| VolumeProblem::BitLocker { problem }),
        );
        for p in &all {
            match p {
                VolumeProblem::OutsideDisk { .. }
                | VolumeProblem::WindowsPartitionUnreadable { .. }
                | VolumeProblem::WindowsBootSectorUnreadable { .. }
                | VolumeProblem::Ntfs { .. }
                | VolumeProblem::BitLocker { .. } => {}
            }
        }
        all
    }

    fn container_problems() -> Vec<ContainerProblem> {
        let mut all: Vec<ContainerProblem> = [
            OtherFormat::Vhdx,
            OtherFormat::VmdkSparse,
            OtherFormat::VmdkDescriptor,
        ]
        .into_iter()
        .map(|format| ContainerProblem::UnsupportedFormat {
            format,
            qemu_name: format.qemu_name().into(),
        })
        .collect();
        all.extend(
            [
                Qcow2Feature::Version,
                Qcow2Feature::Encryption,
                Qcow2Feature::BackingFile,
                Qcow2Feature::ExternalDataFile,
                Qcow2Feature::Dirty,
                Qcow2Feature::MarkedCorrupt,
                Qcow2Feature::CompressionType,
                Qcow2Feature::UnknownFeatures,
                Qcow2Feature::Bitmaps,
            ]
            .map(|feature| ContainerProblem::Qcow2Unsupported { feature }),
        );
        all.extend(
            [
                Qcow2ClusterKind::SharedTable,
                Qcow2ClusterKind::RefcountTableFull,
            ]
            .map(|kind| ContainerProblem::PatchInQcow2Cluster {
                offset: 1 << 20,
                cluster: 16,
                kind,
            }),
        );
        all.extend([
            ContainerProblem::DifferencingVhd,
            ContainerProblem::PatchInUnallocatedBlock {
                offset: 4096,
                block: 3,
            },
            ContainerProblem::DifferencingVhdx,
            ContainerProblem::VmdkChild {
                parent: "base.vmdk".into(),
            },
            ContainerProblem::PatchInUnallocatedVmdkGrain {
                offset: 4096,
                grain: 0,
            },
            ContainerProblem::ReadFailed {
                detail: "gone".into(),
            },
            ContainerProblem::Damaged {
                detail: "bad footer".into(),
            },
        ]);
        for p in &all {
            match p {
                ContainerProblem::UnsupportedFormat {
                    format:
                        OtherFormat::Vhdx | OtherFormat::VmdkSparse | OtherFormat::VmdkDescriptor,
                    ..
                }
                | ContainerProblem::Qcow2Unsupported {
                    feature:
                        Qcow2Feature::Version
                        | Qcow2Feature::Encryption
                        | Qcow2Feature::BackingFile
                        | Qcow2Feature::ExternalDataFile
                        | Qcow2Feature::Dirty
                        | Qcow2Feature::MarkedCorrupt
                        | Qcow2Feature::CompressionType
                        | Qcow2Feature::UnknownFeatures
                        | Qcow2Feature::Bitmaps,
                }
                | ContainerProblem::PatchInQcow2Cluster {
                    kind: Qcow2ClusterKind::SharedTable | Qcow2ClusterKind::RefcountTableFull,
                    ..
                }
                | ContainerProblem::DifferencingVhd
                | ContainerProblem::PatchInUnallocatedBlock { .. }
                | ContainerProblem::DifferencingVhdx
                | ContainerProblem::VmdkChild { .. }
                | ContainerProblem::PatchInUnallocatedVmdkGrain { .. }
                | ContainerProblem::ReadFailed { .. }
                | ContainerProblem::Damaged { .. } => {}
            }
        }
        all
    }

    fn partition_problems() -> Vec<PartitionProblem> {
        let all = vec![
            PartitionProblem::TooSmall { size: 100 },
            PartitionProblem::NoTable,
            PartitionProblem::ReadFailed {
                detail: "gone".into(),
            },
            PartitionProblem::Unsupported {
                detail: "odd GPT".into(),
            },
            PartitionProblem::Damaged {
                detail: "both GPTs".into(),
            },
        ];
        for p in &all {
            match p {
                PartitionProblem::TooSmall { .. }
                | PartitionProblem::NoTable
                | PartitionProblem::ReadFailed { .. }
                | PartitionProblem::Unsupported { .. }
                | PartitionProblem::Damaged { .. } => {}
            }
        }
        all
    }

    fn reasons() -> Vec<Reason> {
        let mut all = vec![
            Reason::Matches {
                count: 2,
                rule: "CrowdStrike".into(),
            },
            Reason::PartitionTableDamaged {
                notice: NoticeKind::GptCopiesDiffer,
            },
            Reason::DamagedBareNtfs {
                oem_id_damaged: true,
                backup_intact: true,
            },
            Reason::DamagedBareNtfs {
                oem_id_damaged: false,
                backup_intact: false,
            },
            Reason::NoWindowsVolume,
            Reason::DirectoryMissing {
                volume: volume(),
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
            },
            Reason::NoMatch {
                volume: volume(),
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                pattern: "C-00000291*.sys".into(),
            },
            Reason::JournalMayHoldMatch {
                volume: volume(),
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                pattern: "C-00000291*.sys".into(),
            },
            Reason::VolumeHasProblems {
                volume: volume(),
                count: 3,
            },
            Reason::NoNtfsVolume,
            Reason::CheckedClean { volumes: 2 },
        ];
        all.extend(
            container_problems()
                .into_iter()
                .map(|problem| Reason::Container { problem }),
        );
        all.extend(
            partition_problems()
                .into_iter()
                .map(|problem| Reason::Partitions { problem }),
        );
        all.extend(volume_problems().into_iter().map(|problem| Reason::Volume {
            volume: volume(),
            problem,
        }));
        for r in &all {
            match r {
                Reason::Matches { .. }
                | Reason::Container { .. }
                | Reason::Partitions { .. }
                | Reason::Volume { .. }
                | Reason::PartitionTableDamaged { .. }
                | Reason::DamagedBareNtfs { .. }
                | Reason::NoWindowsVolume
                | Reason::DirectoryMissing { .. }
                | Reason::NoMatch { .. }
                | Reason::JournalMayHoldMatch { .. }
                | Reason::VolumeHasProblems { .. }
                | Reason::NoNtfsVolume
                | Reason::CheckedClean { .. } => {}
            }
        }
        all
    }

    fn blockers() -> Vec<Blocker> {
        let mut all = vec![
            Blocker::BitLocker,
            Blocker::Hibernated,
            Blocker::QuotaTracking,
        ];
        all.extend(
            [false, true].map(|unreadable| Blocker::JournalMayHoldMatch {
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                pattern: "C-00000291*.sys".into(),
                records: vec![5, 64],
                unattributed: 0,
                unreadable,
            }),
        );
        all.extend(
            [
                LogState::Clean,
                LogState::Unclean,
                LogState::V2,
                LogState::Unreadable,
            ]
            .map(|state| Blocker::JournalNotClean { state }),
        );
        for b in &all {
            match b {
                Blocker::BitLocker
                | Blocker::JournalNotClean { .. }
                | Blocker::JournalMayHoldMatch { .. }
                | Blocker::Hibernated
                | Blocker::QuotaTracking => {}
            }
        }
        all
    }

    fn notices() -> Vec<RuleNotice> {
        let all = vec![
            RuleNotice::DirectorySkipped {
                path: "\\Windows\\C-00000291-x.sys".into(),
            },
            RuleNotice::LinkFollowed {
                link: "\\Windows\\CS".into(),
                target: "\\??\\C:\\CS".into(),
            },
        ];
        for n in &all {
            match n {
                RuleNotice::DirectorySkipped { .. } | RuleNotice::LinkFollowed { .. } => {}
            }
        }
        all
    }

    fn fix_failures() -> Vec<FixFailure> {
        let problems = vec![CheckProblem {
            kind: ProblemKind::IndexOrder,
            record: Some(1992),
            message: "entries out of order".into(),
        }];
        let checked = [
            Checked::ChangedRecords,
            Checked::MftBitmap,
            Checked::Bitmap,
            Checked::EditedDirectory,
            Checked::SideIndexes,
        ];
        let mut all = vec![
            FixFailure::Inspect { reasons: reasons() },
            FixFailure::PartitionsOverlap {
                volume: volume(),
                notice: NoticeKind::GptCopiesDiffer,
            },
            FixFailure::Ntfs {
                volume: volume(),
                file: Some("C-00000291-x.sys".into()),
                error: NtfsProblem::NotNtfs,
            },
            FixFailure::DirectoryVanished {
                volume: volume(),
                directory: "\\Windows".into(),
            },
            FixFailure::WriteTargetsDamaged {
                volume: volume(),
                problems: problems.clone(),
            },
            FixFailure::PatchedVolumeDoesNotOpen {
                volume: volume(),
                error: NtfsProblem::NotNtfs,
            },
            FixFailure::PatchedVolumeUnreadable {
                volume: volume(),
                error: NtfsProblem::NotNtfs,
            },
            FixFailure::StillMatches { count: 1 },
            FixFailure::PatchOverlapsJournalReset {
                label: kaifuku_ntfs::edit::ChangedStructure::MftRecord {
                    record: 2,
                    part: None,
                },
            },
            FixFailure::ReadFailed {
                detail: "gone".into(),
            },
            FixFailure::Internal {
                detail: "a bug".into(),
            },
        ];
        for c in checked {
            all.push(FixFailure::CheckFailed {
                volume: volume(),
                checked: c,
                error: NtfsProblem::NotNtfs,
            });
            all.push(FixFailure::CheckFoundProblems {
                volume: volume(),
                checked: c,
                problems: problems.clone(),
            });
        }
        all.extend(
            container_problems()
                .into_iter()
                .map(|problem| FixFailure::OutputNotMappable { problem }),
        );
        all.extend(
            bitlocker_problems()
                .into_iter()
                .map(|problem| FixFailure::BitLocker {
                    volume: volume(),
                    problem,
                }),
        );
        for f in &all {
            match f {
                FixFailure::Inspect { .. }
                | FixFailure::PartitionsOverlap { .. }
                | FixFailure::Ntfs { .. }
                | FixFailure::DirectoryVanished { .. }
                | FixFailure::WriteTargetsDamaged { .. }
                | FixFailure::PatchedVolumeDoesNotOpen { .. }
                | FixFailure::PatchedVolumeUnreadable { .. }
                | FixFailure::CheckFailed { .. }
                | FixFailure::CheckFoundProblems { .. }
                | FixFailure::StillMatches { .. }
                | FixFailure::PatchOverlapsJournalReset { .. }
                | FixFailure::ReadFailed { .. }
                | FixFailure::OutputNotMappable { .. }
                | FixFailure::BitLocker { .. }
                | FixFailure::Internal { .. } => {}
            }
        }
        all
    }

    fn fix_errors() -> Vec<FixError> {
        let mut all = vec![FixError::NothingToFix { reasons: reasons() }];
        all.push(FixError::Refused {
            refusal: FixRefusal::Inspect { reasons: reasons() },
        });
        all.extend(blockers().into_iter().map(|blocker| FixError::Refused {
            refusal: FixRefusal::Blocked {
                volume: volume(),
                blocker,
            },
        }));
        all.extend(ntfs_problems().into_iter().map(|error| FixError::Refused {
            refusal: FixRefusal::Ntfs {
                volume: volume(),
                file: None,
                error,
            },
        }));
        all.push(FixError::Refused {
            refusal: FixRefusal::ChkdskWouldRestore {
                volume: volume(),
                directory: "\\Windows\\System32\\drivers\\CrowdStrike".into(),
                files: vec![kaifuku_rescue::vocabulary::RestorableFile {
                    record: 4269,
                    name: "C-00000291-00000000-00000032.sys".into(),
                }],
            },
        });
        all.extend(
            fix_failures()
                .into_iter()
                .map(|failure| FixError::Failed { failure }),
        );
        for e in &all {
            match e {
                FixError::NothingToFix { .. }
                | FixError::Refused {
                    refusal:
                        FixRefusal::Inspect { .. }
                        | FixRefusal::Blocked { .. }
                        | FixRefusal::Ntfs { .. }
                        | FixRefusal::ChkdskWouldRestore { .. },
                }
                | FixError::Failed { .. } => {}
            }
        }
        all
    }

    fn verify_failures() -> Vec<VerifyFailure> {
        let all = vec![
            VerifyFailure::NothingPlanned,
            VerifyFailure::ContainerDoesNotOpen {
                problem: ContainerProblem::DifferencingVhd,
            },
            VerifyFailure::NoOriginalContainer,
            VerifyFailure::ContainerDiffers {
                format: kaifuku_container::Format::Raw,
                virtual_size: 1 << 30,
                original_format: kaifuku_container::Format::VhdFixed,
                original_virtual_size: 2 << 30,
            },
            VerifyFailure::VolumeGone { volume: volume() },
            VerifyFailure::VolumeUnreadable {
                volume: volume(),
                problem: VolumeProblem::WindowsPartitionUnreadable { detail: None },
            },
            VerifyFailure::Ntfs {
                volume: volume(),
                error: NtfsProblem::NotNtfs,
            },
            VerifyFailure::RecordInUse {
                volume: volume(),
                record: 2146,
            },
            VerifyFailure::CheckerProblems {
                volume: volume(),
                problems: vec![],
            },
            VerifyFailure::NotNtfs { volume: volume() },
            VerifyFailure::JournalNotReset {
                volume: volume(),
                state: LogState::V2,
                dirty: false,
            },
            VerifyFailure::JournalNotReplayed {
                volume: volume(),
                state: LogState::V2,
            },
            VerifyFailure::StillMatches {
                count: 1,
                reasons: vec![],
            },
            VerifyFailure::Internal {
                detail: "a bug".into(),
            },
        ];
        for f in &all {
            match f {
                VerifyFailure::NothingPlanned
                | VerifyFailure::ContainerDoesNotOpen { .. }
                | VerifyFailure::NoOriginalContainer
                | VerifyFailure::ContainerDiffers { .. }
                | VerifyFailure::VolumeGone { .. }
                | VerifyFailure::VolumeUnreadable { .. }
                | VerifyFailure::Ntfs { .. }
                | VerifyFailure::RecordInUse { .. }
                | VerifyFailure::CheckerProblems { .. }
                | VerifyFailure::NotNtfs { .. }
                | VerifyFailure::JournalNotReset { .. }
                | VerifyFailure::JournalNotReplayed { .. }
                | VerifyFailure::StillMatches { .. }
                | VerifyFailure::Internal { .. } => {}
            }
        }
        all
    }

    /// Every problem the page can show, one for each variant of every type in it.
    fn every_problem() -> Vec<Problem> {
        let mut all: Vec<Problem> = reasons()
            .into_iter()
            .map(|reason| Problem::Reason { reason })
            .collect();
        all.extend(blockers().into_iter().map(|blocker| Problem::Blocked {
            volume: volume(),
            blocker,
        }));
        all.extend(notices().into_iter().map(|notice| Problem::Notice {
            volume: volume(),
            notice,
        }));
        all.extend(fix_errors().into_iter().map(|error| Problem::Fix {
            error: Box::new(error),
        }));
        all.extend(
            verify_failures()
                .into_iter()
                .map(|failure| Problem::Verify { failure }),
        );
        all.push(Problem::internal("a bug"));
        for kind in [KeyFileKind::StartupKey, KeyFileKind::KeyList] {
            all.push(Problem::KeyFile {
                kind,
                detail: "not a key".into(),
            });
        }
        for problem in [
            RemoteProblem::NotAUrl,
            RemoteProblem::Unreachable,
            RemoteProblem::HeadersHidden,
            RemoteProblem::NoRanges,
            RemoteProblem::AccessDenied,
            RemoteProblem::Changed,
            RemoteProblem::Status,
            RemoteProblem::NotPageBlob,
            RemoteProblem::SizeChanges,
            RemoteProblem::WriteFailed,
            RemoteProblem::WrittenNotVerified,
        ] {
            // A variant added later makes this match fail to compile until it is listed above.
            match problem {
                RemoteProblem::NotAUrl
                | RemoteProblem::Unreachable
                | RemoteProblem::HeadersHidden
                | RemoteProblem::NoRanges
                | RemoteProblem::AccessDenied
                | RemoteProblem::Changed
                | RemoteProblem::Status
                | RemoteProblem::NotPageBlob
                | RemoteProblem::SizeChanges
                | RemoteProblem::WriteFailed
                | RemoteProblem::WrittenNotVerified => {}
            }
            all.push(Problem::Remote {
                problem,
                detail: "the server's words".into(),
            });
        }
        for p in &all {
            match p {
                Problem::Reason { .. }
                | Problem::Blocked { .. }
                | Problem::Notice { .. }
                | Problem::Fix { .. }
                | Problem::Verify { .. }
                | Problem::KeyFile { .. }
                | Problem::Remote { .. }
                | Problem::Internal { .. } => {}
            }
        }
        all
    }

    fn has_kana(s: &str) -> bool {
        s.chars().any(|c| ('\u{3040}'..='\u{30FF}').contains(&c))
    }

    #[test]
    fn every_problem_has_words_in_both_languages() {
        let all = every_problem();
        assert!(all.len() > 100, "{} problems", all.len());
        for p in &all {
            let (ja, en) = (T(Lang::Ja), T(Lang::En));
            let (ja_title, en_title) = (ja.problem_title(p), en.problem_title(p));
            let (ja_text, en_text) = (ja.problem_text(p), en.problem_text(p));
            assert!(has_kana(ja_title), "{p:?}: Japanese title {ja_title:?}");
            assert!(has_kana(&ja_text), "{p:?}: Japanese text {ja_text:?}");
            assert!(!en_title.is_empty() && !en_text.is_empty(), "{p:?}");
            assert!(
                !has_kana(en_title) && !has_kana(&en_text),
                "{p:?}: {en_text}"
            );
            assert!(
                en_text.chars().all(|c| c.is_ascii() || "→“”—".contains(c)),
                "{p:?}: {en_text}"
            );
            assert_ne!(ja_title, en_title, "{p:?}");
            assert!(!p.code().is_empty(), "{p:?} has no code");
        }
    }

    #[test]
    fn the_facts_of_a_problem_are_in_its_words() {
        let p = Problem::Reason {
            reason: Reason::Container {
                problem: ContainerProblem::UnsupportedFormat {
                    format: OtherFormat::VmdkSparse,
                    qemu_name: "vmdk".into(),
                },
            },
        };
        for lang in [Lang::Ja, Lang::En] {
            assert!(T(lang)
                .problem_text(&p)
                .contains("qemu-img convert -f vmdk -O raw"));
        }
        assert_eq!(p.code(), "unsupported_format");
        let p = Problem::Blocked {
            volume: volume(),
            blocker: Blocker::Hibernated,
        };
        assert!(T(Lang::Ja)
            .problem_text(&p)
            .starts_with("パーティション 2 “Windows”"));
        assert!(T(Lang::En)
            .problem_text(&p)
            .starts_with("Partition 2 “Windows”"));
        let p = Problem::Verify {
            failure: VerifyFailure::RecordInUse {
                volume: volume(),
                record: 2146,
            },
        };
        assert!(T(Lang::Ja).problem_text(&p).contains("2146"));
        assert!(T(Lang::En).problem_text(&p).contains("2146"));
        assert_eq!(p.code(), "record_in_use");
    }
}
