//! Standard output and error without panics. `println!` panics when stdout is a closed pipe
//! (`kaifuku inspect IMG | head -c1`; Rust ignores SIGPIPE, so the write fails with EPIPE) or a
//! full device (`>/dev/full`); here every write to stdout is checked and the caller stops with exit
//! code 3, and messages to stderr are best effort.

use std::io::{self, Write};

/// Writes `text` to stdout and flushes it, so a failure shows now and not at exit.
pub fn out(text: &str) -> io::Result<()> {
    let mut o = io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

/// Writes one line to stderr, ignoring failure: there is nowhere left to report it.
pub fn err_line(text: &str) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{text}");
    let _ = e.flush();
}

/// The message for a failed write to stdout; `done` says what was already completed (or not).
pub fn stdout_failed(e: &io::Error, done: &str) {
    err_line(&format!(
        "kaifuku: cannot write to standard output ({e}); {done}"
    ));
}
