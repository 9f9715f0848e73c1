//! How `kaifuku` ends: one exit status per kind of ending, the same for every command. The numbers
//! are stable; scripts rely on them.

use kaifuku_rescue::{CheckOutcome, Outcome};

/// The exit status of a `kaifuku` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: `inspect` found matching files, `fix` fixed (or with `--dry-run` planned) and verified,
    /// `check` found the image clean, `undo` restored; also help and version.
    Success,
    /// 1: nothing to fix (`inspect`, `fix`).
    NothingToFix,
    /// 2: refused or unsupported, with the reason printed (BitLocker, an unsupported format or
    /// feature, a hibernated Windows, ...).
    Refused,
    /// 2: the command line itself is wrong (clap's own usage errors, as clap exits).
    Usage,
    /// 3: an error: the image is damaged or unreadable, a path is refused, a write or its
    /// verification failed.
    Error,
    /// 4: `check` found problems.
    Problems,
    /// 130: a batch `fix` stopped by SIGINT (as shells report a command ended by Ctrl-C).
    Interrupted,
}

impl Exit {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::NothingToFix => 1,
            Exit::Refused | Exit::Usage => 2,
            Exit::Error => 3,
            Exit::Problems => 4,
            Exit::Interrupted => 130,
        }
    }

    /// The exit status for what `inspect` concluded.
    pub fn of_inspect(outcome: Outcome) -> Exit {
        match outcome {
            Outcome::Matches => Exit::Success,
            Outcome::NothingToFix => Exit::NothingToFix,
            Outcome::Refused => Exit::Refused,
            Outcome::Error => Exit::Error,
        }
    }

    /// The exit status for what `check` concluded.
    pub fn of_check(outcome: CheckOutcome) -> Exit {
        match outcome {
            CheckOutcome::Clean => Exit::Success,
            CheckOutcome::Problems => Exit::Problems,
            CheckOutcome::Refused => Exit::Refused,
            CheckOutcome::Error => Exit::Error,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}
