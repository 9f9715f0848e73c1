//! The practice disks of training mode (`web/practice/*.raw.gz`, made by
//! `tests/make-practice-disks.py` with real tools): which there are and what the page calls
//! their files. Loading them is the page's (`ui::practice`).

/// The practice disks, as `kaifuku demo --scenario` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// GPT with an ESP, an MSR and the Windows volume.
    Gpt,
    /// MBR: System Reserved + Windows, as on older servers.
    Mbr,
    /// GPT whose Windows volume has the journal a crash leaves.
    Unclean,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [Scenario::Gpt, Scenario::Mbr, Scenario::Unclean];

    pub fn code(self) -> &'static str {
        match self {
            Scenario::Gpt => "gpt",
            Scenario::Mbr => "mbr",
            Scenario::Unclean => "unclean",
        }
    }
}

impl Scenario {
    /// The name the decompressed disk gets, as if the user had picked it: the downloads are
    /// named after it (`practice-gpt-fixed.raw`).
    pub fn file_name(self) -> String {
        format!("practice-{}.raw", self.code())
    }
}
