//! A disk fixed where it lives: an Azure page blob by its SAS URL — the form, the steps (undo
//! file first, then the write), the result, and what can go wrong (CORS above all).

use super::{size, Lang, T};
use crate::view::RemoteProblem;

impl T {
    // ---- the form ----
    pub fn remote_heading(self) -> &'static str {
        pick!(
            self,
            "または: クラウド上のディスクをその場で修復(Azure ページ BLOB)",
            "Or: fix a disk where it lives in the cloud (Azure page blob)"
        )
    }
    pub fn remote_intro(self) -> &'static str {
        pick!(
            self,
            "マネージド ディスクのエクスポートやストレージ アカウント上の VHD の SAS URL を貼り付けてください。ダウンロードもアップロードもせず、必要な数 MiB だけを範囲指定で読み、変更する数 KiB だけを書き込みます。このページが通信するのは、貼り付けた URL のストレージだけです。",
            "Paste the SAS URL of a managed disk export or of a VHD in a storage account. Nothing is downloaded or uploaded: kaifuku reads the few MiB it needs by ranges and writes only the few KiB it changes. The page talks to no one but the storage the URL names."
        )
    }
    pub fn remote_label(self) -> &'static str {
        pick!(self, "SAS URL", "SAS URL")
    }
    pub fn remote_open_button(self) -> &'static str {
        pick!(self, "開く", "Open")
    }
    pub fn remote_cors_heading(self) -> &'static str {
        pick!(
            self,
            "事前に: ストレージ アカウントでこのページのオリジンを許可する(CORS)",
            "First: let the storage account accept this page's origin (CORS)"
        )
    }
    pub fn remote_cors_text(self, origin: &str) -> String {
        pick!(
            self,
            format!("ブラウザーは、ストレージ アカウントが許可したページにしか BLOB の読み書きを許しません。このページのオリジンは {origin} です。Azure CLI では次のとおりです(許可するメソッドは GET、PUT、HEAD、OPTIONS、ヘッダーはすべて。修復が終わったら規則を削除して構いません)。SAS トークンには読み取りと書き込み(sp=rw)の権限が必要です。ファイルとして開いた kaifuku.html のオリジンは null で、その場合は --origins '*' が必要です。"),
            format!("Browsers let a page read or write a blob only when the storage account allows the page's origin. This page's origin is {origin}. With the Azure CLI (methods GET, PUT, HEAD, OPTIONS, every header; the rule can be removed once the fix is done). The SAS token must allow reading and writing (sp=rw). kaifuku.html opened as a file has the origin null, which needs --origins '*'.")
        )
    }

    // ---- the plan and the steps ----
    pub fn remote_selected(self, shown: &str) -> String {
        pick!(
            self,
            format!("選択中の BLOB: {shown}"),
            format!("Blob: {shown}")
        )
    }
    pub fn remote_fix_intro(self, shown: &str) -> String {
        pick!(
            self,
            format!("{shown} をその場で修復します。まず変更前のバイトを収めた取り消しファイルを作ります。それを保存してから書き込みます。各書き込みは BLOB の ETag を条件とするため、ほかの誰かが同時に書き込んでいれば何も上書きせずに止まります。"),
            format!("{shown} is fixed where it lives. First the undo file (the bytes as they are now) is made; you save it, then the changes are written. Each write is conditional on the blob's ETag, so a concurrent writer stops the fix instead of being overwritten.")
        )
    }
    pub fn remote_prepare_button(self) -> &'static str {
        pick!(
            self,
            "検証して取り消しファイルを作る",
            "Verify and make the undo file"
        )
    }
    pub fn remote_undo_heading(self) -> &'static str {
        pick!(
            self,
            "取り消しファイルを保存してから書き込む",
            "Save the undo file, then write"
        )
    }
    pub fn remote_undo_text(self) -> &'static str {
        pick!(
            self,
            "修復は変更後のイメージで検証済みです。BLOB はまだ変更していません。取り消しファイルを保存してください。書き込みが途中で失敗しても、kaifuku undo URL ファイル で BLOB を元に戻せます。",
            "The fix is verified on the patched view; the blob is not changed yet. Save the undo file: should the write fail half-way, kaifuku undo URL FILE puts the blob back as it was."
        )
    }
    pub fn remote_undo_link(self, name: &str, bytes: u64) -> String {
        pick!(
            self,
            format!("取り消しファイル {name} を保存({})", size(bytes)),
            format!("Save the undo file {name} ({})", size(bytes))
        )
    }
    pub fn remote_write_button(self) -> &'static str {
        pick!(self, "BLOB に書き込む", "Write the changes to the blob")
    }
    pub fn remote_write_hint(self) -> &'static str {
        pick!(
            self,
            "取り消しファイルを保存すると書き込めるようになります。",
            "Writing is possible once the undo file is saved."
        )
    }
    pub fn remote_writing_no_cancel(self) -> &'static str {
        pick!(
            self,
            "BLOB への書き込み中は中止できません(途中で止めると一部だけ修復された状態になります)。",
            "Writing to the blob cannot be cancelled (stopping half-way would leave it partly fixed)."
        )
    }
    pub fn remote_done_heading(self) -> &'static str {
        pick!(self, "BLOB を修復しました", "The blob is fixed")
    }
    pub fn remote_done_text(
        self,
        shown: &str,
        puts: u64,
        bytes_written: u64,
        requests: u64,
        bytes_read: u64,
    ) -> String {
        pick!(
            self,
            format!("{shown} に {puts} 回の書き込みで {} を書き込み、最初から読み直して検証しました。通信は合計 {requests} リクエスト、読み取り {}(読み直しを含む)。", size(bytes_written), size(bytes_read)),
            format!("{} were written to {shown} in {puts} page writes, then the blob was read back from scratch and verified. In all {requests} requests, {} read (the read-back included).", size(bytes_written), size(bytes_read))
        )
    }
    pub fn remote_restore(self, undo_name: &str) -> String {
        pick!(
            self,
            format!("元に戻すには: kaifuku undo \"SAS URL\" {undo_name}"),
            format!("To put it back: kaifuku undo \"SAS URL\" {undo_name}")
        )
    }

    // ---- what can go wrong ----
    pub fn remote_problem_title(self, p: RemoteProblem) -> &'static str {
        match (self.0, p) {
            (Lang::Ja, RemoteProblem::NotAUrl) => "URL ではありません",
            (Lang::En, RemoteProblem::NotAUrl) => "This is not a URL",
            (Lang::Ja, RemoteProblem::Unreachable) => "ストレージに接続できません",
            (Lang::En, RemoteProblem::Unreachable) => "The storage cannot be reached",
            (Lang::Ja, RemoteProblem::HeadersHidden) => "CORS 規則が応答ヘッダーを公開していません",
            (Lang::En, RemoteProblem::HeadersHidden) => "The CORS rule hides the answer's headers",
            (Lang::Ja, RemoteProblem::NoRanges) => "範囲読み取りに対応していないサーバーです",
            (Lang::En, RemoteProblem::NoRanges) => "The server does not answer byte ranges",
            (Lang::Ja, RemoteProblem::AccessDenied) => "アクセスが拒否されました",
            (Lang::En, RemoteProblem::AccessDenied) => "Access was refused",
            (Lang::Ja, RemoteProblem::Changed) => "BLOB がほかから変更されました",
            (Lang::En, RemoteProblem::Changed) => "The blob was changed by someone else",
            (Lang::Ja, RemoteProblem::Status) => "ストレージがエラーを返しました",
            (Lang::En, RemoteProblem::Status) => "The storage answered with an error",
            (Lang::Ja, RemoteProblem::NotPageBlob) => "ページ BLOB ではありません",
            (Lang::En, RemoteProblem::NotPageBlob) => "Not a page blob",
            (Lang::Ja, RemoteProblem::SizeChanges) => "この修復は BLOB の大きさを変えます",
            (Lang::En, RemoteProblem::SizeChanges) => "This fix changes the blob's size",
            (Lang::Ja, RemoteProblem::WriteFailed) => "書き込みが途中で失敗しました",
            (Lang::En, RemoteProblem::WriteFailed) => "The write failed half-way",
            (Lang::Ja, RemoteProblem::WrittenNotVerified) => "書き込んだ BLOB を検証できません",
            (Lang::En, RemoteProblem::WrittenNotVerified) => "The written blob does not verify",
        }
    }

    pub fn remote_problem_text(self, p: RemoteProblem) -> &'static str {
        match (self.0, p) {
            (Lang::Ja, RemoteProblem::NotAUrl) => "https:// で始まる SAS URL を貼り付けてください。",
            (Lang::En, RemoteProblem::NotAUrl) => "Paste a SAS URL beginning with https://.",
            (Lang::Ja, RemoteProblem::Unreachable) => "ブラウザーが応答を受け取れませんでした。多くの場合、ストレージ アカウントの CORS 規則がこのページのオリジンを許可していないためです(上の「事前に」を参照)。ほかに、URL のホストがこのページで許可された Azure Blob Storage(*.blob.core.windows.net など)でない、ネットワークがつながっていない、という原因もあります。何も変更していません。",
            (Lang::En, RemoteProblem::Unreachable) => "The browser got no answer it may read. Most often the storage account's CORS rules do not allow this page's origin (see \"First\" above). Otherwise the URL's host is not an Azure Blob Storage host this page may talk to (such as *.blob.core.windows.net), or the network is down. Nothing was changed.",
            (Lang::Ja, RemoteProblem::HeadersHidden) => "CORS 規則の公開ヘッダー(exposed headers)に Content-Range、ETag、x-ms-blob-type が含まれていないため、BLOB の大きさと版を確かめられません。--exposed-headers '*' で規則を作り直してください。何も変更していません。",
            (Lang::En, RemoteProblem::HeadersHidden) => "The CORS rule's exposed headers leave out Content-Range, ETag or x-ms-blob-type, so the blob's size and version cannot be checked. Make the rule again with --exposed-headers '*'. Nothing was changed.",
            (Lang::Ja, RemoteProblem::NoRanges) => "kaifuku はディスクを範囲指定で読むだけで、丸ごとダウンロードはしません。範囲読み取りに対応したストレージ(Azure Blob Storage)の URL を使ってください。",
            (Lang::En, RemoteProblem::NoRanges) => "kaifuku reads disks by ranges and never downloads them whole. Use the URL of storage that answers ranges (Azure Blob Storage).",
            (Lang::Ja, RemoteProblem::AccessDenied) => "SAS トークンが正しくないか、期限切れか、必要な権限がありません。修復には読み取りと書き込み(sp=rw)が必要です。新しい SAS URL を発行してください。",
            (Lang::En, RemoteProblem::AccessDenied) => "The SAS token is wrong, expired, or lacks a permission: a fix needs reading and writing (sp=rw). Issue a new SAS URL.",
            (Lang::Ja, RemoteProblem::Changed) => "kaifuku が最初に読んでから BLOB が変更されました(ほかの書き込み)。kaifuku は何も上書きしていません。ディスクを使っているものを止めてから、開き直してください。",
            (Lang::En, RemoteProblem::Changed) => "The blob changed since kaifuku first read it (another writer). kaifuku overwrote nothing. Stop whatever uses the disk, then open it again.",
            (Lang::Ja, RemoteProblem::Status) => "ストレージが予期しない応答を返しました。何も変更していません。下の技術的な詳細を確認してください。",
            (Lang::En, RemoteProblem::Status) => "The storage gave an unexpected answer. Nothing was changed. The technical detail below says which.",
            (Lang::Ja, RemoteProblem::NotPageBlob) => "ブロック BLOB などはその場で書き換えられません。調査はできますが、修復にはページ BLOB(VHD)が必要です。",
            (Lang::En, RemoteProblem::NotPageBlob) => "A block blob (or other kind) cannot be changed in place. It can be inspected; fixing it needs a page blob (a VHD).",
            (Lang::Ja, RemoteProblem::SizeChanges) => "ページ BLOB の大きさは変えられないため、この修復はその場ではできません。何も変更していません。",
            (Lang::En, RemoteProblem::SizeChanges) => "A page blob's size cannot change, so this fix cannot be made in place. Nothing was changed.",
            (Lang::Ja, RemoteProblem::WriteFailed) => "一部の書き込みは済んでいます。保存した取り消しファイルで BLOB を元に戻してください: kaifuku undo \"SAS URL\" 取り消しファイル",
            (Lang::En, RemoteProblem::WriteFailed) => "Some writes were made. Put the blob back with the undo file you saved: kaifuku undo \"SAS URL\" UNDO-FILE",
            (Lang::Ja, RemoteProblem::WrittenNotVerified) => "書き込みは済みましたが、読み直した BLOB が約束どおりではありません。保存した取り消しファイルで元に戻し、この問題を報告してください: kaifuku undo \"SAS URL\" 取り消しファイル",
            (Lang::En, RemoteProblem::WrittenNotVerified) => "The changes were written, but the blob read back is not what was promised. Put it back with the undo file you saved, and please report this: kaifuku undo \"SAS URL\" UNDO-FILE",
        }
    }
}
