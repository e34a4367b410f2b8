//! B-1, B-2: the exact balance laws per step and their drift exponents (`crate::bias::balance`
//! runs them).

use crate::bias::spec::{balance, rnn_balance};
use crate::claims::Row;
use crate::Result;

/// B-1 check: the reference run (`models/bias-balance-check.toml`), the same run and rows as
/// `modeflow train` on that model: the per-step identity of its own SGD run, of every
/// activation/loss combination under GD and SGD with and without weight decay, and of a deep
/// linear net; the drift exponents of GD and SGD (b = 8, summed over 8 shuffles so the fitted
/// exponent measures the eta-dependence, not the noise of one batch sequence).
pub fn check_b1() -> Result<Vec<Row>> {
    let spec = balance::Spec::reference();
    Ok(balance::rows(&spec, &balance::run(&spec)?).0)
}

/// B-2 check: the reference run (`models/bias-rnn-balance.toml`), the same run and rows as
/// `modeflow train` on that model: the ReLU RNN charge identity under BPTT-GD (with and without
/// weight decay) and the drift exponent.
pub fn check_b2() -> Result<Vec<Row>> {
    let spec = rnn_balance::Spec::reference();
    Ok(rnn_balance::rows(&spec, &rnn_balance::run(&spec)?).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b1_and_b2_checks_pass() {
        for row in check_b1().unwrap().into_iter().chain(check_b2().unwrap()) {
            eprintln!("{} | {:e} | {}", row.label, row.measured, row.note);
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
