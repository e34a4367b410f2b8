//! Progress bars on stderr: drawn only when stderr is a terminal and `--quiet` is not given, so
//! logs, pipes and batch jobs stay clean. Every bar shows what is running, the count, the
//! elapsed time and an ETA; `--quiet` ([`set_quiet`]) also silences notes and warnings that
//! the CLI would print on stderr ([`note`]).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Silence progress bars and notes for the rest of the process (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A bar of `len` units of work labelled `what` (e.g. "points", "claims", "training steps"),
/// hidden unless stderr is a terminal and the process is not quiet.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if !quiet() && std::io::stderr().is_terminal() {
        let template = format!("{{msg}} {{bar:40}} {{pos}}/{{len}} {what} [{{elapsed}} < {{eta}}]");
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// A note or warning on stderr, unless quiet.
pub fn note(text: &str) {
    if !quiet() {
        eprintln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_hidden_off_a_terminal_and_when_quiet() {
        // cargo test captures stderr: never a terminal here
        assert!(bar(10, "points").is_hidden());
        set_quiet(true);
        assert!(quiet() && bar(10, "points").is_hidden());
        set_quiet(false);
    }
}
