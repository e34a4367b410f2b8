//! Cross-validation claims X-1.. (proofs-checks/X-*.md): the 2x2 theory against networks
//! built and trained by modeflow.

use super::{Check, Row, Tier};
use crate::interference::kernels::{theta_new_series, InputSchedule};
use crate::num::stats::{bootstrap, par_map, share_of, Band, Bootstrap, Statistic, MIN_SEEDS};
use crate::rnn::measure::{theta_new_measured, ThetaNewSetting};
use crate::rnn::rotation_interference::{
    reference_protocol, x2_hypothesis, x2_point_with, x2_tolerance, X2Point,
};
use crate::rnn::sequential::SequentialSpec;
use crate::rnn::train::Optimizer;
use crate::Result;

/// The registered checks of the trained-network module.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "X-1",
            tier: Tier::Fast,
            run: x1_fast,
        },
        Check {
            id: "X-3",
            tier: Tier::Full,
            run: x1_full,
        },
        Check {
            id: "X-2",
            tier: Tier::Fast,
            run: x2_fast,
        },
        Check {
            id: "X-4",
            tier: Tier::Full,
            run: x2_full,
        },
        Check {
            id: "X-5",
            tier: Tier::Fast,
            run: super::static_curves::x5_check,
        },
        Check {
            id: "X-10",
            tier: Tier::Full,
            run: super::static_curves::x10_check,
        },
        Check {
            id: "X-8",
            tier: Tier::Full,
            run: super::divergence::x8_check,
        },
        Check {
            id: "X-9",
            tier: Tier::Full,
            run: super::divergence::x9_check,
        },
        Check {
            id: "X-11",
            tier: Tier::Fast,
            run: x11_fast,
        },
        Check {
            id: "X-12",
            tier: Tier::Full,
            run: x12_full,
        },
    ]
}

/// Seeds of the flow-limit claims X-11 / X-12 (THEORY I.7: >= 16 per network-level number).
pub const FLOW_LIMIT_SEEDS: u64 = 16;

/// Largest tolerated move of I when the flow's tolerance is tightened (THEORY I.7: < 0.5%).
pub const FLOW_TOLERANCE_MOVE: f64 = 5e-3;

/// Noise floor of a GD-vs-flow gap, relative to I: the flow's own error at its working
/// tolerance (measured <= 1.2e-4 for 100x tightening) and the located stop (1e-4 in L), with
/// margin; gaps below it are not resolved.
pub const FLOW_GAP_FLOOR: f64 = 1e-3;

/// The rows of the flow-limit claim on the shipped `models/rnn-flow.toml`: the flow's
/// tolerance (tightened by each factor of `tighten`), and, seed by seed, the shrinking of
/// |I_GD(lr) - I_flow| from the largest rung of `lrs` to the smallest. First order predicts
/// the ratio e(lr_min) / E(lr_max) = lr_min / lr_max, with E(lr_max) the largest gap over the
/// ladder (the envelope: at small I the gap of GD is O(lr) but not monotone, the step that
/// crosses tol jumps with lr); the row allows twice that plus the floor, so a gap that does not
/// shrink (order 0) or shrinks like sqrt(lr) fails.
fn flow_limit_rows(lrs: &[f64], tighten: &[f64], cost_rel: Option<f64>) -> Result<Vec<Row>> {
    use crate::rnn::flow_limit::{cost, lr_limit, shipped_setting};
    let (spec, seed0, _) = shipped_setting()?;
    let seeds: Vec<u64> = (seed0..seed0 + FLOW_LIMIT_SEEDS).collect();
    let limits = lr_limit(&spec, &seeds, lrs, tighten)?;
    let mut rows = Vec::new();
    let rtol = match spec.train.optimizer {
        Optimizer::Flow { rtol, .. } => rtol,
        _ => f64::NAN,
    };
    for (k, t) in tighten.iter().enumerate() {
        let (worst, seed) = limits
            .iter()
            .map(|l| (l.tolerance_moves()[k], l.seed))
            .fold((0.0f64, 0), |a, b| if b.0 > a.0 { b } else { a });
        rows.push(
            Row::abs(
                format!(
                    "flow: max |dI|/I over {} seeds, rtol {rtol:e} -> {:e}",
                    seeds.len(),
                    rtol / t
                ),
                0.0,
                worst,
                FLOW_TOLERANCE_MOVE,
            )
            .note(format!("largest at seed {seed}; THEORY I.7 asks < 0.5%")),
        );
    }
    let (lr_max, lr_min) = (lrs[0], lrs[lrs.len() - 1]);
    let first_order = lr_min / lr_max;
    for l in &limits {
        let e = l.gaps();
        let envelope = e.iter().cloned().fold(0.0f64, f64::max);
        let i_ref = l.i_ref();
        let e_min = e[e.len() - 1];
        let floor = FLOW_GAP_FLOOR * i_ref.abs();
        // not resolved: GD agrees with the flow within the floor on every rung
        if envelope <= floor {
            rows.push(
                Row::abs(
                    format!("seed {}: GD within the floor at every lr", l.seed),
                    0.0,
                    envelope / i_ref.abs(),
                    FLOW_GAP_FLOOR,
                )
                .note(format!("I_flow = {i_ref:.6}")),
            );
            continue;
        }
        let ratio = e_min / envelope;
        rows.push(
            Row::abs(
                format!(
                    "seed {}: gap(lr {lr_min}) / max gap(lr <= {lr_max}), order 1",
                    l.seed
                ),
                first_order,
                ratio,
                first_order + floor / envelope,
            )
            .note(format!(
                "I_flow = {i_ref:.6}, I_GD = {} at lr = {}; tau_A = {:.3}, tau_B = {:.3}",
                l.gd.iter()
                    .map(|p| format!("{:.6}", p.interference))
                    .collect::<Vec<_>>()
                    .join(" / "),
                lrs.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(" / "),
                l.tau_a,
                l.tau_b
            )),
        );
    }
    if let Some(rel) = cost_rel {
        let c = cost(&limits, rel);
        rows.push(Row::holds(
            format!(
                "cost: flow <= GD at the largest lr within {:.0}% on every seed (gradient evaluations)",
                rel * 100.0
            ),
            c.lr.is_some() && c.flow_evaluations <= c.gd_evaluations,
            format!(
                "flow {} evaluations ({:.2} s), GD at lr = {:?}: {} evaluations ({:.2} s), sums over {} seeds",
                c.flow_evaluations,
                c.flow_seconds,
                c.lr,
                c.gd_evaluations,
                c.gd_seconds,
                limits.len()
            ),
        ));
    }
    Ok(rows)
}

/// X-11 (fast): GD at lr = 1/4 .. 1/32 against the flow, 16 seeds; the flow's tolerance 100x.
fn x11_fast() -> Result<Vec<Row>> {
    flow_limit_rows(&[0.25, 0.125, 0.0625, 0.03125], &[100.0], None)
}

/// X-12 (full): GD at lr = 1/4 .. 1/256 against the flow, 16 seeds; the flow's tolerance 10x
/// and 100x; the cost of the flow against GD at the largest lr within 1% on every seed.
fn x12_full() -> Result<Vec<Row>> {
    let lrs: Vec<f64> = (2..=8).map(|k| 2f64.powi(-k)).collect();
    flow_limit_rows(&lrs, &[10.0, 100.0], Some(0.01))
}

/// Reference values of THEORY I-12 (T_in = 2, u_p = 1): (T_d, u_s, g, Theta_new).
pub const THETA_NEW_TABLE: &[(f64, f64, f64, f64)] = &[
    (2.0, 0.0, 0.0, 0.099),
    (2.0, 0.0, 0.5, 0.237),
    (2.0, 0.0, 0.8, 0.718),
    (5.0, 0.0, 0.0, 1.1e-3),
    (5.0, 0.0, 0.5, 1.9e-2),
    (5.0, 0.0, 0.8, 0.33),
    (10.0, 0.0, 0.0, 1.7e-7),
    (10.0, 0.0, 0.5, 1.8e-4),
    (10.0, 0.0, 0.8, 6.3e-2),
    (10.0, 0.3, 0.0, 0.092),
    (10.0, 0.3, 0.5, 0.165),
    (10.0, 0.3, 0.8, 0.794),
];

/// Mean measured Theta_new over `seeds` networks.
pub fn theta_new_mean(n: usize, g: f64, u_s: f64, t_d: f64, seeds: u64) -> Result<f64> {
    let s = ThetaNewSetting {
        n,
        g,
        u_p: 1.0,
        t_in: 2.0,
        u_s,
        t_d,
        dt: 0.1,
    };
    // g = 0: W0 = 0 and the measurement does not depend on the draw
    let seeds = if g == 0.0 { 1 } else { seeds };
    // seeds in parallel, summed in seed order (the same sum for any thread count)
    let seed_list: Vec<u64> = (0..seeds).collect();
    let mut sum = 0.0;
    for v in par_map(&seed_list, |&seed| theta_new_measured(&s, seed))? {
        sum += v;
    }
    Ok(sum / seeds as f64)
}

fn x1_rows(t_d_max: f64, seeds: u64) -> Result<Vec<Row>> {
    // the table's settings are independent: in parallel, rows in table order
    let settings: Vec<&(f64, f64, f64, f64)> = THETA_NEW_TABLE
        .iter()
        .filter(|&&(t_d, ..)| t_d <= t_d_max)
        .collect();
    par_map(&settings, |&&(t_d, u_s, g, reference)| {
        x1_row(t_d, u_s, g, reference, seeds)
    })
}

fn x1_row(t_d: f64, u_s: f64, g: f64, reference: f64, seeds: u64) -> Result<Row> {
    let m = theta_new_mean(600, g, u_s, t_d, seeds)?;
    let schedule = InputSchedule {
        t_in: 2.0,
        u_p: 1.0,
        t_d,
        u_s,
    };
    let series = theta_new_series(g, &schedule)?.value;
    // g = 0: deterministic network, extrapolated Euler, O(dt^3) < 5e-3 relative;
    // g > 0: the finite-N spread of the seed mean plus the series truncation
    // (proofs-checks/X-01): 15%
    let tol = if g == 0.0 { 5e-3 } else { 0.15 };
    let nets = if g == 0.0 { 1 } else { seeds };
    Ok(Row::rel(
        format!("Theta_new N=600 T_d={t_d} u_s={u_s} g={g} vs series"),
        series,
        m,
        tol,
    )
    .note(format!(
        "mean of {nets} networks, log-Richardson dt 0.1/0.05/0.025; I-12 table value {reference}"
    )))
}

fn x1_fast() -> Result<Vec<Row>> {
    x1_rows(5.0, 4)
}

fn x1_full() -> Result<Vec<Row>> {
    x1_rows(10.0, 8)
}

/// Seeds of per grid point (THEORY I.7).
pub const X2_SEEDS: u64 = MIN_SEEDS;
/// Resampling seed of the bootstrap intervals of.
const X2_BOOT_SEED: u64 = 2;
/// Neurons of the fast X-2 point: the I.6 protocol at N = 100 instead of 200 (4x cheaper per
/// step, so that 16 seeds stay a fast check; the full tier X-4 runs N = 200).
pub const X2_FAST_N: usize = 100;

/// The measurements of one grid point (seeds 1..=16, in parallel, in seed order).
fn x2_seeds(spec: &SequentialSpec) -> Result<Vec<X2Point>> {
    let seeds: Vec<u64> = (1..=X2_SEEDS).collect();
    par_map(&seeds, |&seed| x2_point_with(spec, seed))
}

/// Rows of one grid point: with `min_share`, the share of seeds that meet the hypotheses
/// (Wilson interval) against [min_share, 1]; over those seeds the median of
/// I / (2(1 - cos theta)) against 1 with the band of the median per-seed tolerance
/// ([`x2_tolerance`]). With fewer than 4 seeds meeting the hypotheses there is nothing to
/// compare: without `min_share` the share is then reported as an undetermined row.
fn x2_rows(label: &str, pts: &[X2Point], min_share: Option<f64>) -> Result<Vec<Row>> {
    let ok: Vec<&X2Point> = pts.iter().filter(|p| x2_hypothesis(p)).collect();
    let sh = share_of(ok.len(), pts.len())?;
    let rotations = pts.iter().filter(|p| p.outcome == "rotation").count();
    let unresolved = pts.iter().filter(|p| p.outcome == "unresolved").count();
    let share_text = format!(
        "{} of {} seeds meet the hypotheses (Wilson 95% [{:.3}, {:.3}]), {rotations} rotate, {unresolved} unresolved (no isolated A fixed point after B)",
        ok.len(),
        pts.len(),
        sh.lo,
        sh.hi
    );
    let mut rows = Vec::new();
    // A minimum share is a requirement of the setting (fast X-2); without one the share
    // is reported in the ratio row's note, and a row of its own only when too few seeds meet
    // the hypotheses for a comparison (undetermined: the formula is not tested there).
    if let Some(min) = min_share {
        rows.push(Row::interval(
            format!("share of seeds meeting the X-2 hypotheses, {label}"),
            &Band {
                predicted: 1.0,
                lo: min,
                hi: 1.0,
                tol: 1.0 - min,
                relative: false,
            },
            &sh,
        ));
    }
    if ok.len() >= 4 {
        let ratios: Vec<f64> = ok.iter().map(|p| p.interference / p.predicted).collect();
        let mut tols: Vec<f64> = ok.iter().map(|p| x2_tolerance(p)).collect();
        tols.sort_by(f64::total_cmp);
        let tol = tols[tols.len() / 2];
        let est = bootstrap(&ratios, Statistic::Median, &Bootstrap::new(X2_BOOT_SEED))?;
        let thetas: Vec<f64> = ok.iter().map(|p| p.theta).collect();
        rows.push(
            Row::interval(
                format!("I / 2(1-cos theta), {label}"),
                &Band::rel(1.0, tol),
                &est,
            )
            .context(format!(
                "{share_text}; band: median per-seed tolerance 0.03 + |norm change| + |untrained offset| + settle gap; theta median {:.4} rad",
                crate::num::stats::median(&thetas)?
            )),
        );
    } else if min_share.is_none() {
        let mut r = Row::interval(
            format!("share of seeds meeting the X-2 hypotheses, {label}"),
            &Band {
                predicted: 1.0,
                lo: 0.0,
                hi: 1.0,
                tol: 1.0,
                relative: false,
            },
            &sh,
        )
        .context(format!(
            "{share_text}; fewer than 4: the formula is not tested here"
        ));
        if r.verdict == crate::claims::Verdict::Pass {
            r.verdict = crate::claims::Verdict::Undetermined;
        }
        rows.push(r);
    }
    Ok(rows)
}

fn x2_fast() -> Result<Vec<Row>> {
    let mut spec = reference_protocol(0.0, 0.0, 10.0);
    spec.network.n = X2_FAST_N;
    // the fast case is chosen to meet the hypotheses: at least 3/4 of the seeds must
    x2_rows(
        &format!("N={X2_FAST_N} g=0 u_s=0 T_d=10"),
        &x2_seeds(&spec)?,
        Some(0.75),
    )
}

/// The grid of X-4: (g, u_s, T_d).
pub const X4_GRID: [(f64, f64, f64); 5] = [
    (0.0, 0.0, 10.0),
    (0.5, 0.0, 10.0),
    (0.8, 0.0, 10.0),
    (0.0, 0.3, 10.0),
    (0.5, 0.0, 5.0),
];

/// Relative tolerance of X-4's gradient flow, integrated by RKC2 (the T-maps' setting): the B
/// phases at g > 0 are stiff (DP45 at 1e-6 ran out of 20,000 steps at tau ~ 8 on one seed); at a
/// stiff T-map point RKC at 1e-7 reproduces DP45 at 1e-7 to 0.2% in I with 22x fewer gradient
/// evaluations (bench/README.md), far inside X-4's bands of 5-15%.
pub const X4_FLOW_RTOL: f64 = 1e-7;

/// X-4 (full): the I.6 grid at N = 200, 16 seeds per point, trained by the gradient flow
/// (THEORY I.7; GD at lr = 1 is not in the flow limit at g > 0, T_d = 5, and its full-W steps
/// amplify rounding differences between kernel paths); X-2's rows per point (no minimum share:
/// where few seeds meet the hypotheses the formula is simply not tested).
fn x2_full() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &(g, u_s, t_d) in &X4_GRID {
        let mut spec = reference_protocol(g, u_s, t_d);
        spec.train.optimizer = Optimizer::Flow {
            rtol: X4_FLOW_RTOL,
            atol: None,
        };
        spec.train.flow_method = crate::rnn::train::FlowMethod::Rkc;
        rows.extend(x2_rows(
            &format!("g={g} u_s={u_s} T_d={t_d} (flow)"),
            &x2_seeds(&spec)?,
            None,
        )?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (2026-12-05): X-4 on the gradient flow stopped with "singular matrix in the
    /// Jacobian" when one seed's A fixed point after B was not isolated. Such a seed is
    /// unresolved: counted, outside the hypotheses, never a failed run.
    #[test]
    fn unresolved_seed_is_outside_the_hypotheses_not_an_error() {
        let resolved = X2Point {
            interference: 1.98,
            theta: 1.55,
            predicted: 1.96,
            norm_change: 0.01,
            untrained_offset: 0.0,
            outcome: "rotation",
            predicted_general: 1.97,
            settle_gap: 0.01,
        };
        let unresolved = X2Point {
            theta: f64::NAN,
            predicted: f64::NAN,
            norm_change: f64::NAN,
            outcome: "unresolved",
            predicted_general: f64::NAN,
            settle_gap: f64::INFINITY,
            ..resolved.clone()
        };
        assert!(x2_hypothesis(&resolved));
        assert!(!x2_hypothesis(&unresolved));
        let mut pts = vec![resolved; 5];
        pts.push(unresolved);
        let rows = x2_rows("test", &pts, None).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0].note.contains("5 of 6 seeds meet"),
            "{}",
            rows[0].note
        );
        assert!(rows[0].note.contains("1 unresolved"), "{}", rows[0].note);
        assert!(rows[0].measured.is_finite());
    }
}
