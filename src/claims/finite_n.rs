//! Claim I-14 (THEORY.md I.8): the moment-matched finite-N latent model predicts the M-only
//! g = 0 network's interference seed by seed. The runs are [`crate::rnn::finite_n`]; this file
//! only turns them into rows.

use super::{Check, Row, Tier, Verdict};
use crate::num::stats::{bootstrap, Band, Bootstrap, Statistic, MIN_SEEDS};
use crate::rnn::finite_n::{compare, SeedComparison};
use crate::rnn::latent_xval::{Measured, XvalSpec};
use crate::Result;

/// The target of I-14: median |ln(I_pred / I_net)| <= ln 1.5.
pub fn target() -> f64 {
    1.5f64.ln()
}

/// The exact-h_N model and the network are the same map computed by two codes: their
/// difference is rounding (N-term sums in a different order, ~1e-15 relative per trial),
/// amplified by the GD steps; measured <= 1e-12 (claim file). 1e-9 leaves room for the
/// amplification and still fails any modelling difference (the finite-N effect is 1e-2 .. 1).
pub const EXACT_TOL: f64 = 1e-9;

/// Resampling seed of the I-14 intervals.
const BOOT_SEED: u64 = 14;

/// The N values of the fast and full tiers.
pub const FAST_N: [usize; 1] = [256];
pub const FULL_N: [usize; 6] = [128, 256, 512, 1024, 2048, 4096];

fn log_errors(rows: &[SeedComparison], model: impl Fn(&SeedComparison) -> &Measured) -> Vec<f64> {
    rows.iter().map(|r| r.log_error(model(r))).collect()
}

/// Median |ln(I_model / I_net)| over `rows` with its interval, against [0, ln 1.5].
fn median_row(
    rows: &[SeedComparison],
    what: &str,
    model: impl Fn(&SeedComparison) -> &Measured,
) -> Result<Row> {
    let e = log_errors(rows, model);
    let est = bootstrap(&e, Statistic::Median, &Bootstrap::new(BOOT_SEED))?;
    let max = e.iter().copied().fold(0.0, f64::max);
    Ok(Row::interval(
        format!("median |ln(I_pred / I_net)|, {what}"),
        &Band::abs(0.0, target()),
        &est,
    )
    .context(format!(
        "target ln 1.5 = {:.4}; worst seed {max:.3}",
        target()
    )))
}

/// The rows of one set of comparisons (one N or pooled).
fn rows_of(rows: &[SeedComparison], what: &str) -> Result<Vec<Row>> {
    let mut out = vec![
        median_row(rows, &format!("moment-matched order 3, {what}"), |r| {
            &r.order3
        })?,
        median_row(rows, &format!("moment-matched order 5, {what}"), |r| {
            &r.order5
        })?,
        median_row(rows, &format!("next term, order 7, {what}"), |r| &r.order7)?,
    ];
    // the input-leak model of X-6 given the same eps: the figure to beat (THEORY: near ln 3),
    // reported beside, with the paired per-seed improvement of order 5 over it
    let leak = log_errors(rows, |r| &r.leak_model);
    let o5 = log_errors(rows, |r| &r.order5);
    out.push(paired_gain_row(what, &leak, &o5)?);
    Ok(out)
}

/// Order 5 against the input-leak model, per seed: the paired gain
/// |ln I_leak/I_net| - |ln I_5/I_net| and the interval rule of THEORY I.7, one-sided.
fn paired_gain_row(what: &str, leak: &[f64], o5: &[f64]) -> Result<Row> {
    let boot = Bootstrap::new(BOOT_SEED);
    let leak_est = bootstrap(leak, Statistic::Median, &boot)?;
    let gain: Vec<f64> = leak.iter().zip(o5).map(|(l, m)| l - m).collect();
    let gain_est = bootstrap(&gain, Statistic::Median, &boot)?;
    // one-sided interval rule (THEORY I.7): holds when the whole 95% interval of the paired
    // gain is above 0, disputed only when it is entirely below 0, undetermined when it
    // straddles 0 (more seeds would decide)
    let mut row = Row::holds(
        format!("order 5 beats the input-leak model (paired median gain > 0), {what}"),
        gain_est.lo > 0.0,
        format!(
            "input-leak median |ln(I_leak / I_net)| {}; paired gain {}",
            leak_est.describe(),
            gain_est.describe()
        ),
    )
    .context("95% interval of the median per-seed gain |ln I_leak/I_net| - |ln I_5/I_net| above 0");
    if gain_est.lo <= 0.0 {
        row.verdict = if gain_est.hi < 0.0 {
            Verdict::Disputed
        } else {
            Verdict::Undetermined
        };
    }
    Ok(row)
}

/// The exact-reduction row: max over the runs of the network vs exact-h_N gap.
fn exact_row(rows: &[SeedComparison]) -> Row {
    let gaps: Vec<f64> = rows.iter().filter_map(|r| r.exact_gap()).collect();
    let worst = gaps.iter().copied().fold(0.0, f64::max);
    Row::abs(
        "exact h_N model = network (max rel. gap in I, eps, tau_A, tau_B, M)",
        0.0,
        worst,
        EXACT_TOL,
    )
    .note(format!("{} runs with the network", gaps.len()))
}

/// I-14 (fast): N = 256, seeds 1..=16, network and all models per seed.
pub fn i14_fast() -> Result<Vec<Row>> {
    let spec = XvalSpec::standard();
    let rows = compare(&spec, &FAST_N, MIN_SEEDS, |_| true)?;
    let mut out = vec![exact_row(&rows)];
    out.extend(rows_of(&rows, "N = 256")?);
    Ok(out)
}

/// I-14 (full): N = 128 .. 4096, seeds 1..=16 each, the network at every N.
pub fn i14_full() -> Result<Vec<Row>> {
    let spec = XvalSpec::standard();
    let rows = compare(&spec, &FULL_N, MIN_SEEDS, |_| true)?;
    let mut out = vec![exact_row(&rows)];
    for n in FULL_N {
        let sel: Vec<SeedComparison> = rows.iter().filter(|r| r.n == n).cloned().collect();
        out.extend(rows_of(&sel, &format!("N = {n}"))?);
    }
    out.extend(rows_of(&rows, "pooled N = 128..4096")?);
    Ok(out)
}

/// The registered checks of this file.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "I-14",
            tier: Tier::Fast,
            run: i14_fast,
        },
        Check {
            id: "I-14-full",
            tier: Tier::Full,
            run: i14_full,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (I-14-full, 2026-12-05): a paired gain whose interval straddles 0 (N = 128:
    /// median 0.19 [-0.07, 3.66]) was reported as a failure; by the interval rule it is
    /// undetermined, and only an interval entirely below 0 disputes the claim.
    #[test]
    fn straddling_paired_gain_is_undetermined_not_a_failure() {
        let leak: Vec<f64> = (0..16).map(|i| 1.0 + 0.1 * i as f64).collect();
        let better: Vec<f64> = leak.iter().map(|l| l - 0.5).collect();
        let row = paired_gain_row("t", &leak, &better).unwrap();
        assert_eq!(row.verdict, Verdict::Pass);
        let mixed: Vec<f64> = leak
            .iter()
            .enumerate()
            .map(|(i, l)| if i % 2 == 0 { l - 0.3 } else { l + 0.3 })
            .collect();
        let row = paired_gain_row("t", &leak, &mixed).unwrap();
        assert_eq!(row.verdict, Verdict::Undetermined, "{}", row.note);
        let worse: Vec<f64> = leak.iter().map(|l| l + 0.5).collect();
        let row = paired_gain_row("t", &leak, &worse).unwrap();
        assert_eq!(row.verdict, Verdict::Disputed);
    }
}
