//! Claim I-18 on networks (proofs-checks/I-18-net-step-size-mode.md): GD at step eta against
//! the gradient flow and against the modified flow of GD at eta, on the same seeds. The domain
//! code ([`crate::rnn::step_size`], [`crate::rnn::modified_flow`]) returns plain outcomes; the
//! rows live here.

use super::{Check, Row, Tier, Verdict};
use crate::num::stats::{self, Bootstrap, Estimate, Statistic};
use crate::rnn::flow_limit::shipped_setting;
use crate::rnn::sequential::SequentialSpec;
use crate::rnn::step_size::{step_size_runs, Outcome, SeedStepSize};
use crate::Result;

/// The registered checks of this file.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "I-18-net",
            tier: Tier::Fast,
            run: check_fast,
        },
        Check {
            id: "I-18-net-full",
            tier: Tier::Full,
            run: check_full,
        },
    ]
}

/// Seeds per setting (THEORY I.7: >= 16 per network-level number).
pub const SEEDS: u64 = 16;
/// Seed of every bootstrap of this file.
const BOOTSTRAP_SEED: u64 = 0x1_18;
/// The critical steps of GD and of the modified flow agree when their log2 differ by at most
/// one rung of the ladder (factor 2).
const RUNG_TOL: f64 = 1.0;

/// The settings: (label, g, N). X-11's shipped model at g = 0.5 (GD and flow disagree at
/// lr >= 1/8) and the g = 0 control.
fn setting(g: f64, n: usize) -> Result<(SequentialSpec, u64)> {
    let (mut spec, seed0, _) = shipped_setting()?;
    spec.network.g = g;
    spec.network.n = n;
    Ok((spec, seed0))
}

/// |ln I_x - ln I_GD| for a run x against GD at the same eta (NaN if either did not converge).
fn log_gap(x: &Outcome, gd: &Outcome) -> f64 {
    if x.converged && gd.converged {
        (x.ln_i() - gd.ln_i()).abs()
    } else {
        f64::NAN
    }
}

/// A one-sided interval row: the statistic must be > 0. Pass when the whole 95% interval lies
/// above 0, Disputed when it lies below 0 (the data exclude the claim), Undetermined otherwise.
fn positive_row(label: String, est: &Estimate, note: String) -> Row {
    let mut r = Row::abs(label, 0.0, est.value, f64::INFINITY);
    r.verdict = if est.lo > 0.0 {
        Verdict::Pass
    } else if est.hi < 0.0 {
        Verdict::Disputed
    } else {
        Verdict::Undetermined
    };
    r.lo = Some(est.lo);
    r.hi = Some(est.hi);
    r.n = Some(est.n);
    r.error = est.value;
    r.note = format!(
        "{} of {} seeds, 95% CI [{:.4e}, {:.4e}], claim: > 0; {note}",
        est.statistic.name(),
        est.n,
        est.lo,
        est.hi
    );
    r
}

/// log2 of a critical step for the statistics: a ladder that never flips counts as one rung
/// above its top (censored: GD or the modified flow keeps the flow's mode up to eta = 1 at
/// least); a ladder that differs even at its smallest step counts as one rung below it.
fn log2_critical(c: Option<f64>, etas: &[f64]) -> f64 {
    match c {
        Some(e) if e.is_infinite() => etas[0].log2() + 1.0,
        Some(e) => e.log2(),
        None => etas[etas.len() - 1].log2() - 1.0,
    }
}

/// The rows of one setting: (a) at each eta, (d), (b), (c), in that order.
fn setting_rows(g: f64, n: usize, etas: &[f64]) -> Result<Vec<Row>> {
    let (spec, seed0) = setting(g, n)?;
    let seeds: Vec<u64> = (seed0..seed0 + SEEDS).collect();
    let runs = step_size_runs(&spec, &seeds, etas)?;
    let boot = Bootstrap::new(BOOTSTRAP_SEED);
    let at = format!("g = {g}, N = {n}");
    let mut rows = Vec::new();
    for (k, &eta) in etas.iter().enumerate() {
        rows.push(closer_row(&runs, k, eta, &at, &boot)?);
    }
    rows.extend(direction_row(&runs, etas, &at, &boot)?);
    rows.push(critical_row(&runs, etas, &at, &boot)?);
    rows.extend(edge_row(&runs, etas, &at, &boot)?);
    Ok(rows)
}

/// (a) at the k-th eta: the modified flow is closer to GD than the plain flow, seed by seed.
fn closer_row(
    runs: &[SeedStepSize],
    k: usize,
    eta: f64,
    at: &str,
    boot: &Bootstrap,
) -> Result<Row> {
    let mut diffs = Vec::new();
    let (mut mode_mf, mut mode_flow, mut resolved) = (0, 0, 0);
    for r in runs {
        let (gd, mf) = (&r.gd[k], &r.modified[k]);
        let d = log_gap(&r.flow, gd) - log_gap(mf, gd);
        if d.is_finite() {
            diffs.push(d);
        }
        if gd.converged && gd.mode != crate::rnn::tmaps::Mode::Unresolved {
            resolved += 1;
            mode_mf += usize::from(mf.mode == gd.mode);
            mode_flow += usize::from(r.flow.mode == gd.mode);
        }
    }
    let dropped = runs.len() - diffs.len();
    let med_i = |f: fn(&SeedStepSize, usize) -> f64| -> f64 {
        let v: Vec<f64> = runs
            .iter()
            .map(|r| f(r, k))
            .filter(|x| x.is_finite())
            .collect();
        stats::median(&v).unwrap_or(f64::NAN)
    };
    let note = format!(
        "median I: GD {:.3e}, modified flow {:.3e}, flow {:.3e}; mode as GD's: modified flow \
         {mode_mf}/{resolved}, flow {mode_flow}/{resolved} (resolved GD seeds); {dropped} \
         seed(s) without a converged GD or modified-flow run",
        med_i(|r, k| r.gd[k].interference),
        med_i(|r, k| r.modified[k].interference),
        med_i(|r, _| r.flow.interference),
    );
    if diffs.is_empty() {
        return Ok(Row::holds(
            format!("{at}, eta = {eta}: GD and the modified flow converge on some seed"),
            false,
            note,
        ));
    }
    let est = stats::bootstrap(&diffs, Statistic::Median, boot)?;
    Ok(positive_row(
        format!("{at}, eta = {eta}: |ln I_flow - ln I_GD| - |ln I_MF - ln I_GD| (MF closer to GD)"),
        &est,
        note,
    ))
}

/// (d) the direction of the penalty (the hypothesis of I-18): at eta = 1, the top of THEORY's
/// ladder, the modified flow forgets more than the plain flow, seed by seed. None if the
/// ladder has no eta = 1 or no seed converged there.
fn direction_row(
    runs: &[SeedStepSize],
    etas: &[f64],
    at: &str,
    boot: &Bootstrap,
) -> Result<Option<Row>> {
    let Some(k) = etas.iter().position(|&e| e == 1.0) else {
        return Ok(None);
    };
    let d: Vec<f64> = runs
        .iter()
        .map(|r| r.modified[k].ln_i() - r.flow.ln_i())
        .filter(|x| x.is_finite())
        .collect();
    if d.is_empty() {
        return Ok(None);
    }
    let est = stats::bootstrap(&d, Statistic::Median, boot)?;
    let rotations = |outs: Vec<&Outcome>| {
        outs.iter()
            .filter(|o| o.mode == crate::rnn::tmaps::Mode::Rotation)
            .count()
    };
    Ok(Some(positive_row(
        format!("{at}, eta = 1: ln I_MF - ln I_flow (the penalty's direction)"),
        &est,
        format!(
            "rotations: flow {}, modified flow {}, GD {} of {}",
            rotations(runs.iter().map(|r| &r.flow).collect()),
            rotations(runs.iter().map(|r| &r.modified[k]).collect()),
            rotations(runs.iter().map(|r| &r.gd[k]).collect()),
            runs.len()
        ),
    )))
}

/// (b) the critical step: where GD's mode leaves the flow's, against the modified flow's.
fn critical_row(runs: &[SeedStepSize], etas: &[f64], at: &str, boot: &Bootstrap) -> Result<Row> {
    let mut shifts = Vec::new();
    let mut pairs = Vec::new();
    for r in runs {
        let (cg, cm) = (r.critical(&r.gd), r.critical(&r.modified));
        if r.flow.mode == crate::rnn::tmaps::Mode::Unresolved {
            continue;
        }
        let (lg, lm) = (log2_critical(cg, etas), log2_critical(cm, etas));
        shifts.push(lm - lg);
        pairs.push(format!("{}:{lg}/{lm}", r.seed));
    }
    if shifts.is_empty() {
        return Ok(Row::holds(
            format!("{at}: the flow's mode is resolved on some seed"),
            false,
            "no seed with a resolved flow mode",
        ));
    }
    let est = stats::bootstrap(&shifts, Statistic::Median, boot)?;
    Ok(Row::interval(
        format!("{at}: log2 eta*_MF - log2 eta*_GD (critical steps, rungs)"),
        &stats::Band::abs(0.0, RUNG_TOL),
        &est,
    )
    .context(format!(
        "seed:log2 eta*_GD/log2 eta*_MF {} (ladder {}..{}, no flip = top + 1)",
        pairs.join(" "),
        etas[0].log2(),
        etas[etas.len() - 1].log2()
    )))
}

/// (c) the stability edge of the flow's end point of B: GD cannot settle there for
/// eta > 2 / lambda_max, so its critical step should sit within a rung of 2 / lambda_max.
/// None if no seed has a finite sharpness and a resolved flow mode.
fn edge_row(
    runs: &[SeedStepSize],
    etas: &[f64],
    at: &str,
    boot: &Bootstrap,
) -> Result<Option<Row>> {
    let mut edge = Vec::new();
    let mut pairs = Vec::new();
    for r in runs {
        let stab = 2.0 / r.sharpness_b;
        if !(stab.is_finite() && stab > 0.0) || r.flow.mode == crate::rnn::tmaps::Mode::Unresolved {
            continue;
        }
        let lg = log2_critical(r.critical(&r.gd), etas);
        edge.push(lg - stab.log2());
        pairs.push(format!("{}:{lg}/{:.2}", r.seed, stab.log2()));
    }
    if edge.is_empty() {
        return Ok(None);
    }
    let est = stats::bootstrap(&edge, Statistic::Median, boot)?;
    Ok(Some(
        Row::interval(
            format!("{at}: log2 eta*_GD - log2 (2 / lambda_max(flow's end of B)) (rungs)"),
            &stats::Band::abs(0.0, RUNG_TOL),
            &est,
        )
        .context(format!(
            "seed:log2 eta*_GD/log2 (2/lambda_max) {}",
            pairs.join(" ")
        )),
    ))
}

/// I-18-net (fast): N = 32, eta in {4, 2, 1, 1/2, 1/4}, g = 0.5 and the g = 0 control, 16
/// seeds. The ladder starts above 1 because the modified flow keeps the flow's mode up to
/// eta = 1 on most seeds (its critical step, if any, lies above the GD ladder of THEORY).
fn check_fast() -> Result<Vec<Row>> {
    let etas = [4.0, 2.0, 1.0, 0.5, 0.25];
    let mut rows = setting_rows(0.5, 32, &etas)?;
    rows.extend(setting_rows(0.0, 32, &etas)?);
    Ok(rows)
}

/// I-18-net-full: N = 64 (X-11's model), eta = 4 .. 1/256, g = 0.5 and the g = 0 control.
fn check_full() -> Result<Vec<Row>> {
    let etas: Vec<f64> = (-2..=8).map(|k| 2f64.powi(-k)).collect();
    let mut rows = setting_rows(0.5, 64, &etas)?;
    rows.extend(setting_rows(0.0, 64, &etas)?);
    Ok(rows)
}
