//! Refusals, notices and failures: a title and an explanation each.

use super::{Lang, T};
use crate::view::{Problem, ProblemCode};

impl T {
    // ---- problems ----
    pub fn problem_title(self, p: &ProblemCode) -> &'static str {
        match (self.0, p) {
            (Lang::Ja, ProblemCode::UnsupportedFormat { .. }) => "まだ読めない形式です",
            (Lang::En, ProblemCode::UnsupportedFormat { .. }) => "A format kaifuku cannot read yet",
            (Lang::Ja, ProblemCode::DifferencingVhd) => "差分 VHD です",
            (Lang::En, ProblemCode::DifferencingVhd) => "A differencing VHD",
            (Lang::Ja, ProblemCode::DamagedContainer) => "イメージファイルが壊れているか不完全です",
            (Lang::En, ProblemCode::DamagedContainer) => "The image file is damaged or incomplete",
            (Lang::Ja, ProblemCode::DamagedPartitions) => "パーティションテーブルを読み取れません",
            (Lang::En, ProblemCode::DamagedPartitions) => "The partition table cannot be read",
            (Lang::Ja, ProblemCode::BitLocker) => "BitLocker で暗号化されています",
            (Lang::En, ProblemCode::BitLocker) => "Encrypted with BitLocker",
            (Lang::Ja, ProblemCode::Hibernated) => "Windows が休止状態です",
            (Lang::En, ProblemCode::Hibernated) => "Windows is hibernated",
            (Lang::Ja, ProblemCode::QuotaTracking) => "ディスククォータが有効です",
            (Lang::En, ProblemCode::QuotaTracking) => "Disk quotas are tracked",
            (Lang::Ja, ProblemCode::JournalUnclean { .. }) => {
                "ボリュームのジャーナルがクリーンではありません"
            }
            (Lang::En, ProblemCode::JournalUnclean { .. }) => "The volume's journal is not clean",
            (Lang::Ja, ProblemCode::NoWindows) => "Windows が見つかりません",
            (Lang::En, ProblemCode::NoWindows) => "No Windows found",
            (Lang::Ja, ProblemCode::NoCrowdStrikeDirectory) => {
                "CrowdStrike のフォルダーがありません"
            }
            (Lang::En, ProblemCode::NoCrowdStrikeDirectory) => "No CrowdStrike folder",
            (Lang::Ja, ProblemCode::NoMatch) => "該当するファイルはありません",
            (Lang::En, ProblemCode::NoMatch) => "No matching file",
            (Lang::Ja, ProblemCode::DirectorySkipped { .. }) => "同じ名前のフォルダーは残します",
            (Lang::En, ProblemCode::DirectorySkipped { .. }) => {
                "A folder with a matching name stays"
            }
            (Lang::Ja, ProblemCode::LinkFollowed { .. }) => "リンクをたどりました",
            (Lang::En, ProblemCode::LinkFollowed { .. }) => "A link was followed",
            (Lang::Ja, ProblemCode::VolumeUnsupported) => "未対応の機能があります",
            (Lang::En, ProblemCode::VolumeUnsupported) => "Something kaifuku does not handle yet",
            (Lang::Ja, ProblemCode::VolumeDamaged) => "ボリュームを読み取れません",
            (Lang::En, ProblemCode::VolumeDamaged) => "A volume cannot be read",
            (Lang::Ja, ProblemCode::ReadFailed) => "ファイルを読み取れません",
            (Lang::En, ProblemCode::ReadFailed) => "The file cannot be read",
            (Lang::Ja, ProblemCode::PatchInUnallocatedBlock) => "可変長 VHD の未割り当て領域です",
            (Lang::En, ProblemCode::PatchInUnallocatedBlock) => {
                "An unallocated part of a dynamic VHD"
            }
            (Lang::Ja, ProblemCode::FixFailed) => "修復を計画できませんでした",
            (Lang::En, ProblemCode::FixFailed) => "The fix could not be planned",
            (Lang::Ja, ProblemCode::VerificationFailed) => "再検証に失敗しました",
            (Lang::En, ProblemCode::VerificationFailed) => "Re-verification failed",
            (Lang::Ja, ProblemCode::Internal) => "内部エラー",
            (Lang::En, ProblemCode::Internal) => "Internal error",
        }
    }

    pub fn problem_text(self, p: &Problem) -> String {
        let vol = match &p.volume {
            Some(v) => self.vol(v),
            None => pick!(self, "ボリューム".to_string(), "The volume".to_string()),
        };
        match (&p.code, self.0) {
            (ProblemCode::UnsupportedFormat { format, qemu }, Lang::Ja) => format!(
                "これは {format} 形式のイメージです。kaifuku は形式を認識できますが、まだ中身を読み取れません。先に raw 形式に変換してください(例: qemu-img convert -f {qemu} -O raw IMAGE disk.raw。固定サイズの VHD でも構いません)。変換したファイルを開き直してください。"
            ),
            (ProblemCode::UnsupportedFormat { format, qemu }, Lang::En) => format!(
                "This is a {format} image: kaifuku recognises it but cannot read it yet. Convert it to raw first, for example with qemu-img convert -f {qemu} -O raw IMAGE disk.raw (a fixed-size VHD works too), then open the converted file."
            ),
            (ProblemCode::DifferencingVhd, Lang::Ja) => "これは差分 VHD です。親イメージに対する変更分しか含まないため、単独では修復できません。先に親イメージと結合し(Hyper-V の「ディスクの編集」→「結合」、または qemu-img convert)、結合したイメージを開いてください。".into(),
            (ProblemCode::DifferencingVhd, Lang::En) => "This is a differencing VHD: it only holds the changes made on top of a parent image and cannot be repaired on its own. Merge it into its parent first (Hyper-V: Edit Disk → Merge, or qemu-img convert), then open the merged image.".into(),
            (ProblemCode::DamagedContainer, Lang::Ja) => "イメージファイルが壊れているか、不完全です(ダウンロードやコピーが途中で終わった場合など)。イメージをもう一度コピーまたはエクスポートし、最後までコピーされたことを確かめてください。".into(),
            (ProblemCode::DamagedContainer, Lang::En) => "The image file is damaged or incomplete (for example a download or copy that did not finish). Copy or export the image again and check that the copy is complete.".into(),
            (ProblemCode::DamagedPartitions, Lang::Ja) => "パーティションテーブルを読み取れませんでした。イメージが壊れているか、ディスクイメージではない可能性があります。".into(),
            (ProblemCode::DamagedPartitions, Lang::En) => "The partition table could not be read: the image may be damaged, or it is not a disk image.".into(),
            (ProblemCode::BitLocker, Lang::Ja) => format!("{vol} は BitLocker で暗号化されています。kaifuku はまだ暗号化されたボリュームを読み取れません。BitLocker の回復キーでロックを解除できる環境(ディスクを接続したレスキュー用 VM など)でファイルを削除するか、先に暗号化を解除してください。"),
            (ProblemCode::BitLocker, Lang::En) => format!("{vol} is encrypted with BitLocker, and kaifuku cannot read encrypted volumes yet. Unlock the disk with its BitLocker recovery key where you can (for example a rescue VM with the disk attached) and delete the file there, or decrypt the volume first."),
            (ProblemCode::Hibernated, Lang::Ja) => format!("{vol}: Windows が休止状態です(hiberfil.sys に保存されたセッションがあります)。復帰するとオフラインで加えた変更が上書きされるため、kaifuku は編集しません。Windows を起動して完全にシャットダウンするか、Windows で休止状態を無効にして(powercfg /h off)から、イメージをもう一度エクスポートしてください。"),
            (ProblemCode::Hibernated, Lang::En) => format!("{vol}: Windows is hibernated (hiberfil.sys holds a saved session). Resuming it would overwrite any offline change, so kaifuku does not edit it. Boot Windows and shut it down fully, or turn hibernation off in Windows (powercfg /h off), then export the image again."),
            (ProblemCode::QuotaTracking, Lang::Ja) => format!("{vol}: このボリュームではディスククォータの使用量が記録されています。オフラインで削除するとクォータの集計が合わなくなるため、kaifuku は編集しません。Windows でクォータの記録を無効にするか、Windows 回復環境からファイルを削除してください。"),
            (ProblemCode::QuotaTracking, Lang::En) => format!("{vol}: disk quota usage is tracked on this volume. An offline delete would leave the quota accounting wrong, so kaifuku does not edit it. Turn quota tracking off in Windows, or delete the file from Windows Recovery."),
            (ProblemCode::JournalUnclean { .. }, Lang::Ja) => format!("{vol}: NTFS は書き込み途中の変更をジャーナル($LogFile)に記録しています。今回のブートループのようなクラッシュの後には、Windows が次にこのボリュームを開くときにやり直す変更が残っていて、そのやり直しが修復を上書きするおそれがあります。安全な方法(ntfsfix と同じ)は、ジャーナルを破棄し、ボリュームに「要チェック」の印(ダーティフラグ)を付けることです。Windows は次回起動時に chkdsk を実行し、クラッシュ直前の処理で中途半端になった部分を修復します。クラッシュの瞬間に書き込み中だった内容は失われることがありますが、ほかのファイルには触れません。"),
            (ProblemCode::JournalUnclean { .. }, Lang::En) => format!("{vol}: NTFS keeps a journal ($LogFile) of changes in progress. After a crash, such as this boot loop, it still holds changes that Windows replays the next time it opens the volume, and that replay could write over the repair. The safe way (what ntfsfix does) is to discard the journal and mark the volume as needing a check (the dirty flag): Windows then runs chkdsk at the next boot, which repairs whatever the last moments before the crash left half-done. What was being written at the moment of the crash may be lost; your other files are not touched."),
            (ProblemCode::NoWindows, Lang::Ja) => "このイメージには \\Windows\\System32 を含む NTFS ボリュームがないため、修復する Windows がありません。VM のシステムディスク(C: ドライブ)のイメージか確かめてください。".into(),
            (ProblemCode::NoWindows, Lang::En) => "No NTFS volume in this image holds \\Windows\\System32, so there is no Windows installation to repair. Is this the image of the VM's system disk (drive C:)?".into(),
            (ProblemCode::NoCrowdStrikeDirectory, Lang::Ja) => format!("{vol}: フォルダー \\Windows\\System32\\drivers\\CrowdStrike がありません。この Windows には CrowdStrike Falcon が入っていないため、この問題の影響は受けていません。"),
            (ProblemCode::NoCrowdStrikeDirectory, Lang::En) => format!("{vol}: the folder \\Windows\\System32\\drivers\\CrowdStrike does not exist: CrowdStrike Falcon is not installed on this Windows, so this problem does not affect it."),
            (ProblemCode::NoMatch, Lang::Ja) => format!("{vol}: CrowdStrike のフォルダーに C-00000291*.sys はありません。不具合のファイルはすでに削除されたか、届いていません。それでも起動しない場合は、別の原因です。"),
            (ProblemCode::NoMatch, Lang::En) => format!("{vol}: there is no C-00000291*.sys in the CrowdStrike folder: the faulty file was already removed or never arrived. If the machine still does not boot, the cause is something else."),
            (ProblemCode::DirectorySkipped { path }, Lang::Ja) => format!("{vol}: {path} はファイルではなくフォルダーです。kaifuku が削除するのはファイルだけなので、このフォルダーはそのまま残します。"),
            (ProblemCode::DirectorySkipped { path }, Lang::En) => format!("{vol}: {path} is a folder, not a file. kaifuku deletes files only, so it stays as it is."),
            (ProblemCode::LinkFollowed { link, target }, Lang::Ja) => format!("{vol}: {link} は {target} へのリンク(ジャンクションまたはシンボリックリンク)です。Windows と同じようにリンク先を調べました。"),
            (ProblemCode::LinkFollowed { link, target }, Lang::En) => format!("{vol}: {link} is a link (junction or symbolic link) to {target}. kaifuku looked where it leads, as Windows does."),
            (ProblemCode::VolumeUnsupported, Lang::Ja) => format!("{vol} には kaifuku がまだ対応していない機能が使われているため、調べられません。"),
            (ProblemCode::VolumeUnsupported, Lang::En) => format!("{vol} uses something kaifuku does not handle yet, so it cannot be examined."),
            (ProblemCode::VolumeDamaged, Lang::Ja) => format!("{vol} を読み取れませんでした。ファイルシステムが壊れているようです。イメージが完全か確かめてください。"),
            (ProblemCode::VolumeDamaged, Lang::En) => format!("{vol} could not be read: its file system looks damaged. Check that the image is complete."),
            (ProblemCode::ReadFailed, Lang::Ja) => "ファイルを読み取れませんでした。開いている間に移動、削除、変更されませんでしたか。もう一度選択してください。".into(),
            (ProblemCode::ReadFailed, Lang::En) => "The file could not be read. Was it moved, deleted or changed while open? Choose it again.".into(),
            (ProblemCode::PatchInUnallocatedBlock, Lang::Ja) => "変更する箇所が、可変長 VHD のファイル内にまだ場所のない部分にあたります。kaifuku は可変長 VHD を拡張しません。固定サイズの VHD か raw に変換してから修復してください。".into(),
            (ProblemCode::PatchInUnallocatedBlock, Lang::En) => "A change would land in a part of this dynamic VHD that has no space in the file yet, and kaifuku does not grow dynamic VHDs. Convert the image to a fixed-size VHD or to raw and repair that instead.".into(),
            (ProblemCode::FixFailed, Lang::Ja) => "修復を安全に計画できなかったため、何も変更していません。".into(),
            (ProblemCode::FixFailed, Lang::En) => "The fix could not be planned safely, so nothing was changed.".into(),
            (ProblemCode::VerificationFailed, Lang::Ja) => "修復後のイメージを読み直して検証したところ、問題が見つかりました。ダウンロードは提供しません。元のファイルは変更していません。".into(),
            (ProblemCode::VerificationFailed, Lang::En) => "Reading the fixed image back found a problem, so no download is offered. The original file was not changed.".into(),
            (ProblemCode::Internal, Lang::Ja) => "kaifuku の内部で問題が起きました(不具合です)。何も変更していません。報告の際は下の技術的な詳細をお知らせください。".into(),
            (ProblemCode::Internal, Lang::En) => "Something went wrong inside kaifuku (a bug). Nothing was changed. The technical detail below helps to report it.".into(),
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
    use crate::view::VolumeName;

    #[test]
    fn every_problem_has_words_in_both_languages() {
        let codes = [
            ProblemCode::UnsupportedFormat {
                format: "VHDX".into(),
                qemu: "vhdx".into(),
            },
            ProblemCode::DifferencingVhd,
            ProblemCode::DamagedContainer,
            ProblemCode::DamagedPartitions,
            ProblemCode::BitLocker,
            ProblemCode::Hibernated,
            ProblemCode::QuotaTracking,
            ProblemCode::JournalUnclean {
                state: "unclean".into(),
            },
            ProblemCode::NoWindows,
            ProblemCode::NoCrowdStrikeDirectory,
            ProblemCode::NoMatch,
            ProblemCode::DirectorySkipped {
                path: "\\Windows\\C-00000291-x.sys".into(),
            },
            ProblemCode::LinkFollowed {
                link: "\\Windows\\CS".into(),
                target: "\\??\\C:\\CS".into(),
            },
            ProblemCode::VolumeUnsupported,
            ProblemCode::VolumeDamaged,
            ProblemCode::ReadFailed,
            ProblemCode::PatchInUnallocatedBlock,
            ProblemCode::FixFailed,
            ProblemCode::VerificationFailed,
            ProblemCode::Internal,
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
