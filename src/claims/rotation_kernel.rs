//! Claim I-15 (THEORY.md I.8): the rotation kernel Theta_rot and the rotation share f_rot
//! measured on trained networks against the I-13 estimate. The measurements are
//! [`crate::rnn::rotation_kernel`]; this file turns them into rows. The fast-tier measurement is
//! shared with the I-13 check (`src/claims/kernels.rs`), which compares its estimate with it.

use std::sync::OnceLock;

use super::{Check, Row, Tier};
use crate::interference::kernels::{beta, rotation_share, theta_new, InputSchedule};
use crate::num::stats::{bootstrap, par_map, Band, Bootstrap, Estimate, Statistic, MIN_SEEDS};
use crate::rnn::rotation_kernel::{measure, KernelPoint, KernelSetting};
use crate::{Error, Result};

/// Network size and (g, T_d) points of the fast tier (u_s = 0): seconds on 2 cores.
pub const FAST_N: usize = 64;
pub const FAST_GRID: [(f64, f64); 2] = [(0.0, 10.0), (0.5, 5.0)];
/// Network size and (g, T_d) grid of the full tier.
pub const FULL_N: usize = 128;
pub const FULL_GRID: [(f64, f64); 6] = [
    (0.0, 5.0),
    (0.0, 10.0),
    (0.5, 5.0),
    (0.5, 10.0),
    (0.8, 5.0),
    (0.8, 10.0),
];

/// Band of an estimate whose prefactors are not derived (I-13): a factor 2 either way. A factor
/// 2 in Theta_rot moves the lazy share f_rot by at most 0.17 (at f = 1/2), so an estimate off by
/// more cannot decide the race.
pub const ESTIMATE_FACTOR: f64 = 2.0;

/// Band of a share (f_rot against a prediction): 0.1 absolute, a tenth of the range, the
/// resolution at which "rotation carries most / little of the early decrease" is decided.
pub const SHARE_TOL: f64 = 0.1;

/// "Early" B training: the sum of the first-order decreases eta |grad L|^2 over the probe must
/// match the actual decrease within 10% (median over seeds); beyond that the kernel moved
/// during the probe and the split is not the one at the A solution.
pub const EARLY_TOL: f64 = 0.1;

/// Resampling seed of the I-15 intervals.
const BOOT_SEED: u64 = 15;

/// The 16 seeds of one setting, in seed order (par_map keeps the order: thread-count free).
pub fn measure_setting(s: &KernelSetting) -> Result<Vec<KernelPoint>> {
    let seeds: Vec<u64> = (1..=MIN_SEEDS).collect();
    par_map(&seeds, |&seed| measure(s, seed))
}

type Measured = Vec<(KernelSetting, Vec<KernelPoint>)>;

fn measure_grid(n: usize, grid: &[(f64, f64)]) -> Result<Measured> {
    grid.iter()
        .map(|&(g, t_d)| {
            let s = KernelSetting::reference(n, g, 0.0, t_d);
            Ok((s, measure_setting(&s)?))
        })
        .collect()
}

static FAST: OnceLock<std::result::Result<Measured, String>> = OnceLock::new();

/// The fast-tier measurement, computed once per process (I-13 and I-15 both use it).
pub fn fast_measurement() -> Result<&'static Measured> {
    FAST.get_or_init(|| measure_grid(FAST_N, &FAST_GRID).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::numerical(format!("I-15 fast measurement: {e}")))
}

/// The I-13 estimate of one seed: Theta_rot ~ psi_A^2 beta (psi_A^2 measured on the seed).
pub fn estimate(s: &KernelSetting, p: &KernelPoint) -> f64 {
    p.psi_sq * beta(s.g)
}

/// The I-13 lazy-race share with the estimate and the I-12 series for Theta_new.
pub fn predicted_share(s: &KernelSetting, p: &KernelPoint) -> f64 {
    let sched = InputSchedule {
        t_in: s.t_in,
        u_p: s.u_p,
        t_d: s.t_d,
        u_s: s.u_s,
    };
    rotation_share(estimate(s, p), theta_new(s.g, &sched))
}

fn est(x: &[f64], stat: Statistic) -> Result<Estimate> {
    bootstrap(x, stat, &Bootstrap::new(BOOT_SEED))
}

/// Median of a sample (for notes).
fn med(x: &[f64]) -> f64 {
    crate::num::stats::median(x).unwrap_or(f64::NAN)
}

/// The ratio Theta_rot (measured) / (I-13 estimate), median over seeds, against 1 within a
/// factor 2: the row I-13 itself reports.
pub fn estimate_row(s: &KernelSetting, pts: &[KernelPoint]) -> Result<Row> {
    let r: Vec<f64> = pts.iter().map(|p| p.theta_rot / estimate(s, p)).collect();
    Ok(Row::interval(
        format!(
            "Theta_rot measured / psi_A^2 beta (I-13), N={} g={} T_d={}",
            s.n, s.g, s.t_d
        ),
        &Band::factor(1.0, ESTIMATE_FACTOR),
        &est(&r, Statistic::Median)?,
    )
    .context(format!(
        "median Theta_rot {:.3e}, psi_A^2 beta {:.3e}, |eps| {:.3}, B-trial overlap with the A attractor |c| {:.3}",
        med(&pts.iter().map(|p| p.theta_rot).collect::<Vec<_>>()),
        med(&pts.iter().map(|p| estimate(s, p)).collect::<Vec<_>>()),
        med(&pts.iter().map(|p| p.eps.abs()).collect::<Vec<_>>()),
        med(&pts.iter().map(|p| p.attractor_overlap.abs()).collect::<Vec<_>>()),
    )))
}

/// All rows of one setting.
fn setting_rows(s: &KernelSetting, pts: &[KernelPoint]) -> Result<Vec<Row>> {
    let tag = format!("N={} g={} T_d={}", s.n, s.g, s.t_d);
    let mut rows = Vec::new();
    let failed: Vec<u64> = pts
        .iter()
        .filter(|p| !p.converged_a)
        .map(|p| p.seed)
        .collect();
    rows.push(Row::holds(
        format!("task A learned (L_A < 1e-4) on every seed, {tag}"),
        failed.is_empty(),
        format!("not converged: {failed:?}"),
    ));
    rows.push(estimate_row(s, pts)?);
    // the estimate with its presynaptic factor taken from the B trial: the activity the B
    // gradient sees is phi(x_B), which overlaps phi(x_A) by c, so Theta_rot ~ c^2 psi_A^2 beta
    let r: Vec<f64> = pts
        .iter()
        .map(|p| p.theta_rot / (estimate(s, p) * p.attractor_overlap.powi(2)))
        .collect();
    rows.push(Row::interval(
        format!("Theta_rot / (c^2 psi_A^2 beta), c the B trial's overlap with A, {tag}"),
        &Band::factor(1.0, ESTIMATE_FACTOR),
        &est(&r, Statistic::Median)?,
    ));
    // the single direction b (x) phi(x_A) within the rotation subspace
    let rb: Vec<f64> = pts.iter().map(|p| p.theta_rot_b / p.theta_rot).collect();
    let rb_est = est(&rb, Statistic::Median)?;
    // f_rot measured against the I-13 lazy race (estimate + I-12 series)
    let d: Vec<f64> = pts
        .iter()
        .map(|p| p.f_rot() - predicted_share(s, p))
        .collect();
    rows.push(
        Row::interval(
            format!("f_rot measured - Theta_rot/(Theta_rot+Theta_new) (I-13 + I-12), {tag}"),
            &Band::abs(0.0, SHARE_TOL),
            &est(&d, Statistic::Mean)?,
        )
        .context(format!(
            "median f_rot measured {:.3}, predicted {:.3}",
            med(&pts.iter().map(|p| p.f_rot()).collect::<Vec<_>>()),
            med(&pts
                .iter()
                .map(|p| predicted_share(s, p))
                .collect::<Vec<_>>())
        )),
    );
    // the lazy-race relation itself, with the kernels measured at the A solution
    let dl: Vec<f64> = pts.iter().map(|p| p.f_rot() - p.kernel_share()).collect();
    rows.push(
        Row::interval(
            format!("f_rot measured - Theta_rot/|G|^2 measured (lazy race), {tag}"),
            &Band::abs(0.0, SHARE_TOL),
            &est(&dl, Statistic::Mean)?,
        )
        .context(format!("Theta_rot,b / Theta_rot {}", rb_est.describe())),
    );
    // the probe is early: first-order decreases add up to the actual one
    let q: Vec<f64> = pts
        .iter()
        .map(|p| p.decrease_actual / p.decrease_first_order)
        .collect();
    rows.push(Row::interval(
        format!("early B: actual / first-order loss decrease, {tag}"),
        &Band::abs(1.0, EARLY_TOL),
        &est(&q, Statistic::Median)?,
    ));
    Ok(rows)
}

fn rows_of(m: &Measured) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (s, pts) in m {
        rows.extend(setting_rows(s, pts)?);
    }
    Ok(rows)
}

fn check_fast() -> Result<Vec<Row>> {
    rows_of(fast_measurement()?)
}

fn check_full() -> Result<Vec<Row>> {
    rows_of(&measure_grid(FULL_N, &FULL_GRID)?)
}

/// The I-15 checks: fast (N = 64, two points) and full (N = 128, the (g, T_d) grid).
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "I-15",
            tier: Tier::Fast,
            run: check_fast,
        },
        Check {
            id: "I-15-full",
            tier: Tier::Full,
            run: check_full,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The predicted share is the lazy-race formula on the estimate: at T_d = 20, g = 0 the I-12
    /// Theta_new is < 2e-15 so the share is 1 to 1e-12 for psi_A^2 ~ 0.25.
    #[test]
    fn predicted_share_long_delay() {
        let s = KernelSetting::reference(64, 0.0, 0.0, 20.0);
        let p = KernelPoint {
            seed: 1,
            converged_a: true,
            psi_sq: 0.25,
            eps: 0.0,
            attractor_overlap: 1.0,
            theta_rot: 0.25,
            theta_rot_b: 0.25,
            theta_total: 0.25,
            loss_b0: 0.125,
            decrease_actual: 0.0125,
            decrease_first_order: 0.0125,
            decrease_rotation: 0.0125,
            probe_lr: 1.0,
        };
        assert!((predicted_share(&s, &p) - 1.0).abs() < 1e-12);
        assert_eq!(estimate(&s, &p), 0.25);
    }
}
