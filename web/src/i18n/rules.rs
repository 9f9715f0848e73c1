//! Rule files: the picker next to the image picker, the rules a file brings, why a file is
//! refused (every [`RuleFileError`], matched exhaustively), and the rules' titles and verdicts in
//! the report and the plan.

use super::{size, Lang, T};
use crate::view::RuleView;
use kaifuku_rescue::rule_file::{
    DirectoryFault, GlobFault, RuleFileError, MAX_DESCRIPTION_CHARS, MAX_FILE_BYTES,
    MAX_HEADER_BYTES, MAX_RULES, MAX_STARS, MAX_TITLE_CHARS,
};
use kaifuku_rescue::vocabulary::RuleSkip;
use kaifuku_rescue::{RuleId, Verdict};

/// Times as the core writes them (RFC 3339, UTC) in a shorter form: "2025-03-02 04:09:00".
fn utc(s: &str) -> String {
    s.replace('T', " ").trim_end_matches('Z').to_string()
}

impl T {
    // ---- the picker ----
    pub fn rules_heading(self) -> &'static str {
        pick!(self, "ルール(任意)", "Rules (optional)")
    }
    pub fn rules_hint(self) -> &'static str {
        pick!(
            self,
            "CrowdStrike のチャネルファイル以外を削除するには、ルールファイル(TOML、64 KiB まで)を読み込みます。次に調べるイメージから使われます。",
            "To delete other files than the CrowdStrike channel file, load a rule file (TOML, at most 64 KiB). Its rules apply from the next image inspected."
        )
    }
    pub fn rules_button(self) -> &'static str {
        pick!(self, "ルール(TOML)…", "Rules (TOML)…")
    }
    pub fn rules_clear(self) -> &'static str {
        pick!(self, "組み込みルールに戻す", "Back to the built-in rule")
    }
    pub fn rules_builtin_only(self) -> &'static str {
        pick!(
            self,
            "ルール: 組み込みの CrowdStrike チャネルファイル 291 のルールのみ。",
            "Rules: the built-in CrowdStrike channel file 291 rule only."
        )
    }
    pub fn rules_loaded(self, file: &str, n: usize) -> String {
        pick!(
            self,
            format!("{file} のルール {n} 個を次に調べるイメージに使います:"),
            format!(
                "{file}: {n} rule{} for the next image inspected:",
                if n == 1 { "" } else { "s" }
            )
        )
    }
    pub fn rules_reading(self, file: &str) -> String {
        pick!(
            self,
            format!("{file} を読み込んでいます…"),
            format!("Reading {file}…")
        )
    }
    /// A refused rule file: the error, then what applies instead.
    pub fn rules_refused(self, file: &str) -> String {
        pick!(
            self,
            format!("ルールファイル {file} は使えません。このファイルのルールは使わず、組み込みのルールのみを使います。"),
            format!("The rule file {file} cannot be used: none of its rules apply, only the built-in rule.")
        )
    }
    pub fn rules_unreadable(self, detail: &str) -> String {
        pick!(
            self,
            format!(
                "ファイルを読めませんでした(ブラウザーの説明: {detail})。もう一度選んでください。"
            ),
            format!("The file could not be read (the browser says: {detail}). Choose it again.")
        )
    }

    // ---- the registry transaction logs ----
    pub fn txr_logs_checkbox(self) -> &'static str {
        pick!(
            self,
            "レジストリのトランザクションログも削除する",
            "Also delete the registry transaction logs"
        )
    }
    /// What the checkbox deletes, why, and where it applies.
    pub fn txr_logs_explanation(self) -> &'static str {
        pick!(
            self,
            "\\Windows\\System32\\config\\TxR の *.TxR.*.regtrans-ms と *.TxR.blf は、レジストリのトランザクションログです。クラッシュの後、Windows が起動時にこれらを再生できず、起動できなくなることがあります(この障害のために Azure が配布した修復スクリプトも削除します)。ハイブ本体は変更しません。Windows Server 2016(ビルド 14393)以降でのみ削除します。ビルドは SOFTWARE ハイブの CurrentBuildNumber から読み、それより前のビルドや読めないボリュームでは理由を示して削除しません。既定ではオフです。",
            "*.TxR.*.regtrans-ms and *.TxR.blf in \\Windows\\System32\\config\\TxR are the registry's transaction logs. After the crash Windows may never replay them at startup and then fail to start (the repair script Azure published for this incident deletes them too). The hives themselves are not changed. They are deleted only on Windows Server 2016 (build 14393) or later: the build is read from the SOFTWARE hive's CurrentBuildNumber, and a volume with an older or unreadable build keeps them, with the reason shown. Off by default."
        )
    }
    /// A rule that did not run on a volume, and why (every [`RuleSkip`]).
    pub fn rule_skipped(self, title: &str, why: &RuleSkip) -> String {
        match why {
            RuleSkip::BuildBelow { build, needs } => pick!(
                self,
                format!("{title}: 実行しません。Windows のビルド {build} は、このルールの対象のビルド {needs} より前です。このルールでは何も削除しません。"),
                format!("{title}: not run. Windows build {build} is older than build {needs}, the first this rule is for; nothing of it is deleted.")
            ),
            RuleSkip::BuildUnknown { version, needs } => pick!(
                self,
                format!("{title}: 実行しません。このルールはビルド {needs} 以降が対象ですが、ここではビルドを確かめられません({})。このルールでは何も削除しません。", self.windows_version(version)),
                format!("{title}: not run. The rule is for Windows build {needs} or later and the build cannot be checked here ({}); nothing of it is deleted.", self.windows_version(version))
            ),
        }
    }

    // ---- one rule ----
    /// A rule's title in the page's language: a user rule's own, or the built-in wording.
    pub fn rule_title_of(self, rule: &RuleView) -> String {
        match (&rule.user, rule.id) {
            (Some(user), _) => pick!(self, user.title.ja.clone(), user.title.en.clone()),
            (None, id) => self.rule_title(id).to_string(),
        }
    }
    pub fn rule_description_of(self, rule: &RuleView) -> Option<String> {
        rule.user
            .as_ref()
            .map(|u| pick!(self, u.description.ja.clone(), u.description.en.clone()))
    }
    pub fn rule_target(self, target: &str, windows_only: bool) -> String {
        match (self.0, windows_only) {
            (Lang::Ja, true) => {
                format!("対象: {target}(\\Windows\\System32 のあるボリュームのみ)")
            }
            (Lang::Ja, false) => format!("対象: {target}(すべての NTFS ボリューム)"),
            (Lang::En, true) => {
                format!("Target: {target} (on volumes holding \\Windows\\System32)")
            }
            (Lang::En, false) => format!("Target: {target} (on every NTFS volume)"),
        }
    }
    pub fn rule_header(self, hex: &str) -> String {
        pick!(
            self,
            format!("既知の不具合版の先頭バイト: {hex}"),
            format!("Known-bad first bytes: {hex}")
        )
    }
    pub fn rule_faulty_window(self, from: &str, to: &str) -> String {
        let (from, to) = (utc(from), utc(to));
        pick!(
            self,
            format!("不具合版: 更新日時が {from} 以上 {to} 未満(UTC)"),
            format!("Faulty version: modified from {from} to before {to} (UTC)")
        )
    }
    pub fn rule_fixed_from(self, from: &str) -> String {
        let from = utc(from);
        pick!(
            self,
            format!("修正版: 更新日時が {from}(UTC)以降"),
            format!("Fixed version: modified at {from} (UTC) or later")
        )
    }
    /// The report's column naming the rule behind a match (when more than one rule ran).
    pub fn col_rule(self) -> &'static str {
        pick!(self, "ルール", "Rule")
    }
    /// A plan's deletion: the rule that chose the file (when more than one rule ran).
    pub fn deletion_rule(self, title: &str) -> String {
        pick!(self, format!("ルール: {title}"), format!("Rule: {title}"))
    }
    /// A match's verdict, worded from its rule: the built-in rule keeps its own words, a user
    /// rule's verdicts name its windows.
    pub fn verdict_of(self, rule: Option<&RuleView>, v: Verdict) -> String {
        let Some(rule) = rule.filter(|r| r.id != RuleId::CrowdStrike20240719) else {
            return self.verdict(v).to_string();
        };
        match v {
            Verdict::Faulty => match &rule.faulty {
                Some((from, to)) => {
                    let (from, to) = (utc(from), utc(to));
                    pick!(
                        self,
                        format!("不具合版(更新 {from} ~ {to} UTC)"),
                        format!("faulty version (modified {from} to {to} UTC)")
                    )
                }
                None => pick!(self, "不具合版", "faulty version").to_string(),
            },
            Verdict::Fixed => match &rule.fixed_from {
                Some(from) => {
                    let from = utc(from);
                    pick!(
                        self,
                        format!("修正版({from} UTC 以降)"),
                        format!("fixed version ({from} UTC or later)")
                    )
                }
                None => pick!(self, "修正版", "fixed version").to_string(),
            },
            Verdict::Unknown | Verdict::NotApplicable => self.verdict(v).to_string(),
        }
    }

    // ---- why a rule file is refused ----
    pub fn rule_file_error(self, e: &RuleFileError) -> String {
        match e {
            RuleFileError::TooLarge { bytes } => pick!(
                self,
                format!(
                    "ファイルが大きすぎます({})。ルールファイルは {} までです。分割してください。",
                    size(*bytes),
                    size(MAX_FILE_BYTES as u64)
                ),
                format!(
                    "The file is too large ({}); a rule file is at most {}, so split it.",
                    size(*bytes),
                    size(MAX_FILE_BYTES as u64)
                )
            ),
            RuleFileError::Syntax {
                line,
                column,
                detail,
            } => pick!(
                self,
                format!("{line} 行 {column} 列目がルールファイルとして読めません(TOML の書式か、知らない項目・足りない項目): {detail}"),
                format!("Not a valid rule file at line {line}, column {column} (TOML syntax, or a field unknown, missing or of the wrong type): {detail}")
            ),
            RuleFileError::Format { format } => pick!(
                self,
                format!("format = {format} は読めない形式です。format = 1 と書いてください。"),
                format!("format = {format} is not a format this page reads; write format = 1.")
            ),
            RuleFileError::NoRules => pick!(
                self,
                "ルール([[rule]])が 1 つもありません。追加してください。".to_string(),
                "The file holds no rule ([[rule]]); add one.".to_string()
            ),
            RuleFileError::TooManyRules { count } => pick!(
                self,
                format!("ルールが {count} 個あります。1 ファイルに {MAX_RULES} 個までです。分割してください。"),
                format!("The file holds {count} rules; at most {MAX_RULES}, so split it.")
            ),
            RuleFileError::BadId { rule } => pick!(
                self,
                format!("ルールの id「{rule}」は使えません。英小文字・数字・「-」で 63 文字まで、英小文字か数字で始めてください。"),
                format!("The rule id \"{rule}\" is not allowed: use lowercase letters, digits and '-', at most 63, starting with a letter or digit.")
            ),
            RuleFileError::DuplicateId { rule } => pick!(
                self,
                format!("id「{rule}」のルールが 2 つあります。ルールごとに別の id を付けてください。"),
                format!("Two rules are named \"{rule}\"; give each rule its own id.")
            ),
            RuleFileError::BuiltinId { rule }
                if kaifuku_rescue::rule_file::TXR_KEYS.contains(&rule.as_str()) =>
            {
                pick!(
                    self,
                    format!("「{rule}」は組み込みルールの id です。別の id を付けてください(レジストリのトランザクションログのルールは「トランザクションログも削除する」で使えます)。"),
                    format!("\"{rule}\" is a built-in rule's id; name your rule differently (the registry transaction-log rules come with the \"also delete the registry transaction logs\" option).")
                )
            }
            RuleFileError::BuiltinId { rule } => pick!(
                self,
                format!("「{rule}」は組み込みルールの id です。別の id を付けてください(組み込みルールを使うには include = [\"{rule}\"])。"),
                format!("\"{rule}\" is a built-in rule's id; name your rule differently (or keep the built-in rule with include = [\"{rule}\"]).")
            ),
            RuleFileError::UnknownInclude { name } => pick!(
                self,
                format!("include の「{name}」という組み込みルールはありません(あるのは crowdstrike-2024-07-19)。"),
                format!("include names \"{name}\", which is no built-in rule (there is crowdstrike-2024-07-19).")
            ),
            RuleFileError::BadDirectory { rule, why } => pick!(
                self,
                format!("ルール「{rule}」: フォルダー(directory){}。ボリュームのルートから書いてください(例: '\\ProgramData\\Vendor\\Channels')。", self.directory_fault(*why)),
                format!("Rule \"{rule}\": the directory {}; write it from the volume root, e.g. '\\ProgramData\\Vendor\\Channels'.", self.directory_fault(*why))
            ),
            RuleFileError::BadGlob { rule, why } => pick!(
                self,
                format!("ルール「{rule}」: 名前(name){}。ファイル名か、* と ? を使ったパターンを 1 つ書いてください(例: 'CH-0042*.bin')。", self.glob_fault(*why)),
                format!("Rule \"{rule}\": the name {}; give one file name or pattern with * and ?, e.g. 'CH-0042*.bin'.", self.glob_fault(*why))
            ),
            RuleFileError::NamesSystemFile { rule, name } => pick!(
                self,
                format!("ルール「{rule}」は NTFS のシステムファイル {name} を指しています。kaifuku はシステムファイルを決して削除しません。通常のファイルを指定してください。"),
                format!("Rule \"{rule}\" names the NTFS system file {name}, which kaifuku never deletes; point the rule at ordinary files.")
            ),
            RuleFileError::BadHeader { rule } => pick!(
                self,
                format!("ルール「{rule}」: header は 1 ~ {MAX_HEADER_BYTES} バイトの 16 進数で書いてください(例: \"de ad be ef\")。"),
                format!("Rule \"{rule}\": the header must be 1 to {MAX_HEADER_BYTES} bytes of hex, e.g. \"de ad be ef\".")
            ),
            RuleFileError::BadTime { rule, time } => pick!(
                self,
                format!("ルール「{rule}」: 時刻 {time} に UTC との時差がありません。Z か時差を付けた日時で書いてください(例: 2025-03-02T04:09:00Z)。"),
                format!("Rule \"{rule}\": the time {time} has no UTC offset; write a date and time with Z or an offset, e.g. 2025-03-02T04:09:00Z.")
            ),
            RuleFileError::WindowOrder { rule } => pick!(
                self,
                format!("ルール「{rule}」: 不具合版の期間(faulty)は開始より後に終わる必要があり、fixed_from はその期間の外にしてください。"),
                format!("Rule \"{rule}\": the faulty window must end after it starts, and fixed_from must not fall inside it.")
            ),
            RuleFileError::MissingLanguage { rule } => pick!(
                self,
                format!("ルール「{rule}」: title と description には英語(en)と日本語(ja)の両方が必要です。"),
                format!("Rule \"{rule}\": the title and the description need both en and ja texts.")
            ),
            RuleFileError::TextTooLong { rule } => pick!(
                self,
                format!("ルール「{rule}」: title は {MAX_TITLE_CHARS} 文字、description は {MAX_DESCRIPTION_CHARS} 文字までで、改行以外の制御文字は使えません。"),
                format!("Rule \"{rule}\": a title is at most {MAX_TITLE_CHARS} characters and a description at most {MAX_DESCRIPTION_CHARS}, without control characters other than newlines.")
            ),
        }
    }
    fn directory_fault(self, why: DirectoryFault) -> &'static str {
        match why {
            DirectoryFault::NotFromRoot => pick!(
                self,
                "がボリュームのルート(\\)から始まっていません",
                "does not start at the volume root (\\)"
            ),
            DirectoryFault::TooLong => pick!(
                self,
                "が 1024 文字を超えています",
                "is longer than 1024 characters"
            ),
            DirectoryFault::TooManyComponents => pick!(
                self,
                "の階層が 32 を超えています",
                "has more than 32 components"
            ),
            DirectoryFault::EmptyOrDotComponent => pick!(
                self,
                "に空の要素、「.」または「..」があります",
                "has an empty, '.' or '..' component"
            ),
            DirectoryFault::ForbiddenCharacter => pick!(
                self,
                "に「:」「/」、ワイルドカードまたは制御文字があります(パターンにできるのは名前だけです)",
                "holds ':', '/', a wildcard or a control character (only the name may be a pattern)"
            ),
            DirectoryFault::ComponentTooLong => pick!(
                self,
                "に 255 文字を超える要素があります",
                "has a component longer than 255 characters"
            ),
        }
    }
    fn glob_fault(self, why: GlobFault) -> String {
        match why {
            GlobFault::Empty => pick!(self, "が空です", "is empty").to_string(),
            GlobFault::Separator => pick!(
                self,
                "に「\\」「/」「:」または制御文字があります",
                "holds '\\', '/', ':' or a control character"
            )
            .to_string(),
            GlobFault::TooLong => pick!(
                self,
                "が 255 文字を超えています",
                "is longer than 255 characters"
            )
            .to_string(),
            GlobFault::TooManyStars => pick!(
                self,
                format!("に「*」が {MAX_STARS} 個より多くあります"),
                format!("has more than {MAX_STARS} '*'")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaifuku_rescue::rule_file::parse;

    /// Each error is worded in both languages, and no two kinds read alike.
    #[test]
    fn every_refusal_is_worded_in_both_languages() {
        let cases = [
            "x".repeat(MAX_FILE_BYTES + 1),
            "format = 1\n[[rule]\n".to_string(),
            "format = 2\n".to_string(),
            "format = 1\n".to_string(),
        ];
        for text in &cases {
            let e = parse(text).unwrap_err();
            let (ja, en) = (
                T(Lang::Ja).rule_file_error(&e),
                T(Lang::En).rule_file_error(&e),
            );
            assert!(!ja.is_empty() && !en.is_empty() && ja != en, "{e:?}");
            assert!(!ja.is_ascii(), "ja for {e:?}: {ja}");
        }
        let system = RuleFileError::NamesSystemFile {
            rule: "r".into(),
            name: "$MFT".into(),
        };
        assert!(T(Lang::Ja)
            .rule_file_error(&system)
            .contains("システムファイル $MFT"));
        assert!(T(Lang::En)
            .rule_file_error(&system)
            .contains("system file $MFT"));
    }
}
