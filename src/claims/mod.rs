//! The claims registry: every analytic claim of THEORY.md has a markdown file in
//! `proofs-checks/` (statement, derivation, tolerance, check id) and a numerical check here,
//! one file per family (the domains compute, these files turn the results into rows; a new
//! family registers its `checks()` with one line in [`registry`]). [`Row`] and [`Verdict`] live
//! in the leaf [`crate::compare`] and are re-exported here.
//!
//! A check returns [`Row`]s: predicted vs measured with a tolerance. A row of a claim that the
//! workbench found to be false is built with [`Row::disputed`]: it records what the claim says,
//! what we measure and our own finding; it stays visible with the verdict `disputed` and does not
//! fail the run as long as the measurement still agrees with the documented finding.
//!
//! A row over seeds of trained networks is built with [`Row::interval`]: it carries the 95%
//! interval and the seed count (`lo`, `hi`, `n`) and is disputed only when the whole interval
//! excludes the prediction band (THEORY.md I.7; `crate::num::stats`).

use serde::Serialize;

pub use crate::compare::{Row, Verdict};
use crate::Result;

/// Which runs a check belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Runs in `modeflow check` (seconds).
    Fast,
    /// Runs only in `modeflow check --full` (long asymptotic runs, sweeps).
    Full,
}

/// A registered numerical check.
#[derive(Clone, Copy)]
pub struct Check {
    /// Claim id, e.g. `I-1`, `B-6`, `X-2`; must match the `id:` of a file in `proofs-checks/`.
    pub id: &'static str,
    pub tier: Tier,
    pub run: fn() -> Result<Vec<Row>>,
}

pub mod bias;
pub mod divergence;
pub mod finite_n;
pub mod kernels;
pub mod latent;
pub mod latent_xval;
pub mod linear;
pub mod race;
pub mod rnn;
pub mod rotation_kernel;
pub mod rule_stats;
pub mod rules;
pub mod rules_map;
pub mod runner;
pub mod seeds;
pub mod series;
pub mod static_curves;
pub mod step_size_map;
pub mod step_size_net;
pub mod tmaps;

/// Every registered check of the library.
pub fn registry() -> Vec<Check> {
    let mut checks: Vec<Check> = Vec::new();
    checks.extend(latent::checks());
    checks.extend(linear::checks());
    checks.extend(kernels::checks());
    checks.extend(rnn::checks());
    checks.extend(latent_xval::checks());
    checks.extend(tmaps::checks());
    checks.extend(race::checks());
    checks.extend(step_size_net::checks());
    checks.extend(step_size_map::checks());
    checks.extend(finite_n::checks());
    checks.extend(rotation_kernel::checks());
    checks.extend(series::checks());
    checks.extend(seeds::checks());
    checks.extend(rules::checks());
    checks.extend(rules_map::checks());
    checks.extend(rule_stats::checks());
    checks.extend(bias::checks());
    checks
}

/// Test helper of the claim files: print the rows of `what` (run since `t0`), and assert that
/// every label fits the 42 columns `modeflow check` prints and every row passes.
#[cfg(test)]
pub(crate) fn assert_rows_pass(what: &str, rows: &[Row], t0: std::time::Instant) {
    for r in rows {
        println!(
            "{:<44} {:>14.6e} {:>14.6e} {:>9.2e} {:>9.2e} {:?} {}",
            r.label, r.predicted, r.measured, r.error, r.tolerance, r.verdict, r.note
        );
        assert!(r.label.chars().count() <= 42, "{}", r.label);
    }
    println!("{what}: {:.2} s", t0.elapsed().as_secs_f64());
    assert!(rows.iter().all(|r| r.verdict == Verdict::Pass));
}
