//! B-14: bias and variance of one step with an approximate gradient (`crate::bias::approx_grad`).

use crate::bias::spec::approx_grad::{rows, run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-14 check: the reference run (`models/bias-approx-grad-check.toml`), the same run and rows
/// as `modeflow train` on that model: the E[Delta L] formula against Monte Carlo in three random
/// cases, isotropic descent below 2/(eta(1+r^2)) and its tightness.
pub fn check_b14() -> Result<Vec<Row>> {
    let spec = Spec::reference();
    Ok(rows(&spec, &run(&spec)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b14_check_passes() {
        for row in check_b14().unwrap() {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
