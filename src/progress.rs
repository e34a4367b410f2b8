//! Progress bars on stderr: drawn only when stderr is a terminal and `--quiet` is not given, so
//! logs, pipes and batch jobs stay clean. Every bar shows what is running, the count, the
//! elapsed time and an ETA; `--quiet` ([`set_quiet`]) also silences notes and warnings that
//! the CLI would print on stderr ([`note`]).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::claims::runner::Observer;
use crate::rnn::train::{ProgressKind, TrainProgress, PROGRESS_UNITS};

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

/// The claims runner's display: a bar over the selected claims ([`bar`]: hidden off a
/// terminal and when quiet).
pub struct ClaimsBar(ProgressBar);

impl ClaimsBar {
    pub fn new() -> Self {
        ClaimsBar(bar(0, "claims"))
    }
}

impl Default for ClaimsBar {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for ClaimsBar {
    fn start(&self, n: usize) {
        self.0.set_length(n as u64);
        self.0.set_message("check");
    }
    fn begin(&self, id: &str) {
        self.0.set_message(format!("check {id}"));
    }
    fn done(&self) {
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A training run's display: an indicatif bar (or spinner) on stderr.
struct TrainingBar(ProgressBar);

impl TrainProgress for TrainingBar {
    fn position(&self, units: u64) {
        self.0.set_position(units);
    }
    fn message(&self, text: &str) {
        self.0.set_message(text.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
    fn abandon(&self) {
        self.0.abandon();
    }
}

/// The CLI's training display (installed with `rnn::train::set_progress`): GD / SGD / Adam get
/// a bar over the decades of loss left to the tolerance, the gradient flow a spinner counting
/// accepted steps; nothing off a terminal or when quiet.
pub fn training(kind: ProgressKind) -> Option<Box<dyn TrainProgress>> {
    if quiet() || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = match kind {
        ProgressKind::LogLoss => {
            let b = bar(PROGRESS_UNITS, "(log-loss to tol)");
            b.set_message("training");
            b
        }
        ProgressKind::FlowSteps => {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} flow: {pos} steps  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b
        }
    };
    Some(Box::new(TrainingBar(b)))
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

    #[test]
    fn training_draws_nothing_off_a_terminal() {
        assert!(training(ProgressKind::LogLoss).is_none());
        assert!(training(ProgressKind::FlowSteps).is_none());
    }
}
