//! Every sentence the page shows, in Japanese and English. Each message is one `match` on the
//! language, so a message cannot exist in one language only. The messages are grouped by the part
//! of the page that shows them, as the components in `ui` are: the frame here, then `picker`,
//! `progress`, `report`, `problems`, `plan` (with the consent) and `fixed`.

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

mod fixed;
mod picker;
mod plan;
mod practice;
mod problems;
mod progress;
mod queue;
mod remote;
mod report;
mod rules;
mod structures;
mod unlock;
mod walk;
pub use unlock::KeyMethod;
pub use walk::WalkStep;

pub use plan::StructureName;
pub use queue::{AloneReason, JournalAction};

impl T {
    pub fn lang(self) -> Lang {
        self.0
    }

    // ---- frame ----
    /// The browser tab's title.
    pub fn document_title(self) -> &'static str {
        pick!(
            self,
            "kaifuku(回復)— Windows VM ディスクイメージのオフライン修復",
            "kaifuku (回復) — repair a Windows VM disk image offline"
        )
    }
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
            "処理はすべてこのブラウザーの中で行われ、選んだファイルは何もアップロードされません。このページはネットワークがなくても動きます。元のファイルは変更しません。(クラウド上のディスクを SAS URL で修復する場合だけは、そのストレージとだけ通信します。)",
            "Everything runs here, in your browser: nothing of a picked file is uploaded anywhere, and the page works with the network gone. The original file is never modified. (Only a disk fixed where it lives in the cloud, by its SAS URL, makes the page talk to that storage, and to nothing else.)"
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
