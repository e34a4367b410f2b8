//! Full-tier (long) checks of THEORY Part II: the reference runs of II.2 (B-16, extending B-3,
//! B-4), the long orthogonally-separable run (B-17, extending B-8) and the long smoothed-margin
//! run (B-18, extending B-7). Each runs its seeds in parallel; each takes well under 2 min in
//! release on two cores.

use rayon::prelude::*;

use crate::bias::cluster::TwoClusterRun;
use crate::bias::spec::{clusters, smoothed_margin, student_reference};
use crate::bias::stats::fmt_list;
use crate::compare::Row;
use crate::Result;

/// B-16 check: the reference runs of THEORY II.2 (`models/bias-student-reference.toml`, the run
/// and rows of `modeflow train` on it; see the claim file for the rows).
pub fn check_b16() -> Result<Vec<Row>> {
    let spec = student_reference::Spec::reference();
    student_reference::rows(&spec, &student_reference::run(&spec)?)
}

/// B-17 check: the B-8 setting run to 1e6 steps (`models/bias-clusters-long.toml`, the run of
/// `modeflow train` on it), 3 seeds, measured at t = 1e4, 1e5, 1e6.
pub fn check_b17() -> Result<Vec<Row>> {
    let runs: Vec<clusters::Outcome> = (0..3u64)
        .into_par_iter()
        .map(|seed| clusters::run(&clusters::Spec::long_reference(seed)))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (seed, out) in runs.iter().enumerate() {
        let traj: Vec<&TwoClusterRun> = out.decades.iter().map(|(_, r)| r).collect();
        let last = traj[traj.len() - 1];
        rows.push(
            Row::abs(
                format!("seed {seed}: cluster count of active neurons at t = 1e6"),
                2.0,
                last.clusters.count as f64,
                0.0,
            )
            .note(format!(
                "counts at 1e4, 1e5, 1e6: {:?}; {} active; gap ratio {:.1e}",
                traj.iter().map(|r| r.clusters.count).collect::<Vec<_>>(),
                last.active,
                last.clusters.gap_ratio
            )),
        );
        let e: Vec<f64> = traj
            .iter()
            .map(|r| 1.0 - r.cos_pos.min(r.cos_neg))
            .collect();
        rows.push(Row::holds(
            format!("seed {seed}: 1 - min cos(neuron, own-class max-margin vector) falls every decade 1e4 -> 1e6"),
            e.windows(2).all(|p| p[1] < p[0]),
            fmt_list(&e),
        ));
        // With the one-class implicit bias (B-6 form) the direction error is
        // |rho_perp| / (|w_hat| ln t) (1 + O(1/ln t)): e(1e6)/e(1e4) = ln 1e4 / ln 1e6 = 2/3.
        rows.push(
            Row::rel(
                format!("seed {seed}: direction error ratio e(1e6)/e(1e4) vs ln 1e4 / ln 1e6"),
                2.0 / 3.0,
                e[e.len() - 1] / e[0],
                B17_RATIO_TOL,
            )
            .note("logarithmic approach; tolerance: O(1/ln t) corrections"),
        );
    }
    Ok(rows)
}

/// Relative tolerance on the B-17 direction-error ratio against 2/3: the time origin of the log is
/// not fixed by the law (GD steps t give 2/3, GF time eta t gives ln 2e3 / ln 2e5 = 0.62), and the
/// O(1/ln t) correction with an O(1) coefficient moves the ratio by ~1/ln 1e4 = 11%: 25% in all.
pub const B17_RATIO_TOL: f64 = 0.25;

/// B-18 check: the B-7 setting run to 1.024e6 steps (`models/bias-smoothed-margin-long.toml`,
/// the run of `modeflow train` on it), 3 seeds; the rows use the doubling checkpoints
/// t = 1000 * 2^m, m = 0..10.
pub fn check_b18() -> Result<Vec<Row>> {
    let runs: Vec<_> = (0..3u64)
        .into_par_iter()
        .map(|seed| smoothed_margin::run(&smoothed_margin::Spec::long_reference(seed)))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (seed, out) in runs.iter().enumerate() {
        rows.extend(long_margin_rows(seed, out));
    }
    Ok(rows)
}

/// B-18's rows of one long run (`seed` names them): gamma~ never decreases, the direction
/// settles at every doubling after L < 1, gamma~ converges, ln(1/L) grows like ln t + ln ln t.
fn long_margin_rows(seed: usize, out: &smoothed_margin::Outcome) -> Vec<Row> {
    let r = &out.run;
    let steps = out.doubling[out.doubling.len() - 1];
    // the samples and directions at the doubling checkpoints
    let at: Vec<usize> = (0..r.samples.len())
        .filter(|&i| out.doubling.contains(&r.samples[i].0))
        .collect();
    let samples: Vec<(usize, f64, f64)> = at.iter().map(|&i| r.samples[i]).collect();
    let mut rows = vec![Row::abs(
        format!("seed {seed}: max relative per-step decrease of gamma~ over 1e6 steps"),
        0.0,
        r.max_rel_decrease.max(0.0),
        1e-8,
    )
    .note(format!(
        "L < 1 from step {}; GD eta 0.01, mean exp loss",
        r.t0
    ))];
    let c: Vec<f64> = at
        .windows(2)
        .map(|p| {
            let (a, b) = (&r.thetas[p[0]], &r.thetas[p[1]]);
            1.0 - a.dot(b) / (a.norm() * b.norm())
        })
        .collect();
    // only doublings that start after L < 1 (the asymptotic regime)
    let first = samples.iter().position(|s| s.0 > r.t0).unwrap_or(0);
    let late = &c[first.min(c.len() - 1)..];
    rows.push(Row::holds(
        format!("seed {seed}: 1 - cos(theta(t), theta(2t)) falls at every doubling to 1e6"),
        late.windows(2).all(|p| p[1] < p[0]),
        fmt_list(late),
    ));
    let th2: Vec<f64> = samples[first..].iter().map(|s| s.2).collect();
    let gam: Vec<f64> = samples[first..].iter().map(|s| s.1).collect();
    let dgam: Vec<f64> = gam.windows(2).map(|p| p[1] - p[0]).collect();
    // gamma~ converges: its increments per doubling shrink at every doubling
    rows.push(Row::holds(
        format!("seed {seed}: increments of gamma~ per doubling shrink at every doubling"),
        dgam.windows(2).all(|p| p[1] < p[0]) && dgam.iter().all(|&v| v >= 0.0),
        format!(
            "gamma~ {}; last/first increment {:.3}",
            fmt_list(&gam),
            dgam[dgam.len() - 1] / dgam[0]
        ),
    ));
    // ln(1/L) = gamma~ |theta|^2 grows like ln t + ln ln t (Lyu & Li: L ~ 1/(t (ln t)^(2 - 2/L))
    // for L = 2): per doubling ln 2 + ln(ln 2tau / ln tau), tau = eta t the GF time.
    let lnl: Vec<f64> = gam.iter().zip(&th2).map(|(g, t)| g * t).collect();
    let last = lnl.len() - 1;
    let tau = 0.01 * steps as f64;
    let pred = std::f64::consts::LN_2 + ((2.0 * tau).ln() / tau.ln()).ln();
    rows.push(
        Row::rel(
            format!("seed {seed}: last increment of ln(1/L) per doubling (L ~ 1/(t ln t))"),
            pred,
            lnl[last] - lnl[last - 1],
            B18_LNL_TOL,
        )
        .note(format!(
            "|theta|^2 = ln(1/L) / gamma~ ~ ln t / gamma*: |theta|^2 {}, increments {}",
            fmt_list(&th2),
            fmt_list(&th2.windows(2).map(|p| p[1] - p[0]).collect::<Vec<_>>())
        )),
    );
    rows
}

/// Relative tolerance of the ln(1/L) increment per doubling: the constants of the rate
/// L = Theta(1/(t ln t)) shift the ln ln term, itself ln(1 + ln 2 / ln tau) ~ 7% of the
/// prediction at tau = 1e4, by O(1/ln tau); 10%.
pub const B18_LNL_TOL: f64 = 0.1;
