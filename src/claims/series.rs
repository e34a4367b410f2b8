//! Claim I-17 (THEORY.md I.8): the I-10 short-time series coefficients measured on trained
//! linear networks early in training. The runs are [`crate::rnn::series`]; this file only turns
//! them into rows.

use super::{Check, Row, Tier};
use crate::num::stats::{bootstrap, par_map, Band, Bootstrap, Statistic, MIN_SEEDS};
use crate::rnn::series::{run_series, SeriesRun, SeriesSetting};
use crate::Result;

/// Network size of the fast tier and the g > 0 points of each tier (g = 0 is deterministic:
/// W0 = 0 and every pattern draw gives the same network up to a rotation).
pub const FAST_N: usize = 128;
pub const FAST_G: [f64; 1] = [0.5];
pub const FULL_N: usize = 256;
pub const FULL_G: [f64; 3] = [0.3, 0.5, 0.8];

/// g = 0: GD with step h = 2.5e-4 in tau~ changes the series coefficients by relative O(k h) for
/// the tau~^k term (<= 1e-3 up to k = 3), the fits leave <= 1e-3 (measured on the exact 2x2 flow:
/// z's cubic 0.25023 for 0.25, eig's quadratic 0.26946 for 0.26934); 1e-2 covers both with margin.
pub const EXACT_TOL: f64 = 1e-2;

/// g > 0: the series is the N -> infinity limit; the dressing overlaps of I-9 carry O(beta^2/N)
/// biases (I-12's measured relative bias N (mean/pred - 1) ~ 3..9 at g = 0.5..0.8, i.e.
/// 2..7% at N = 128): a 10% band around each coefficient's prediction, the mean over seeds.
pub const FINITE_N_TOL: f64 = 0.1;

/// Resampling seed of the I-17 intervals.
const BOOT_SEED: u64 = 17;

/// (label, measured coefficient of a run, predicted coefficient at (zhat, beta)).
type Coefficient = (&'static str, fn(&SeriesRun) -> f64, fn(f64, f64) -> f64);

fn coefficient(
    label: &'static str,
    measured: fn(&SeriesRun) -> f64,
    predicted: fn(f64, f64) -> f64,
) -> Coefficient {
    (label, measured, predicted)
}

/// The measured series coefficients and their I-10 predictions.
pub fn coefficients() -> Vec<Coefficient> {
    vec![
        coefficient("z: tau~ coefficient, zhat", |r| r.z_coef[1], |z, _| z),
        coefficient(
            "z: tau~^2 coefficient, -zhat/2",
            |r| r.z_coef[2],
            |z, _| -z / 2.0,
        ),
        coefficient(
            "z: tau~^3 coefficient, zhat (1 + 8 zhat^2 beta)/6",
            |r| r.z_coef[3],
            |z, b| z * (1.0 + 8.0 * z * z * b) / 6.0,
        ),
        coefficient(
            "s1: tau~ coefficient, zhat/beta",
            |r| r.s1_coef[1],
            |z, b| z / b,
        ),
        coefficient(
            "s1: tau~^3 coefficient, zhat (1 + 3.5 zhat^2 beta)/(6 beta)",
            |r| r.s1_coef[3],
            |z, b| z * (1.0 + 3.5 * z * z * b) / (6.0 * b),
        ),
        coefficient(
            "s2: tau~^3 coefficient, zhat^3/12",
            |r| r.s2_coef[3],
            |z, _| z.powi(3) / 12.0,
        ),
        coefficient(
            "eig dW: tau~^2 coefficient, zhat^2/beta",
            |r| r.eig_coef[2],
            |z, b| z * z / b,
        ),
    ]
}

/// Our finding for the eigenvalue at g = 0 (claim file): W = dW stays in the (a, b) plane, where
/// the flow gives M = [[zhat^2 tau^2/2, zhat^3 tau^3/3], [zhat tau, zhat^2 tau^2/2]] + O(tau^3)
/// (series solution of the 2x2 gradient flow), so eig dW = M_aa + sqrt(M_ab M_ba) =
/// zhat^2 tau^2 (1/2 + 1/sqrt(3)), 7.7% above the quoted zhat^2 tau^2.
pub fn eig_g0_finding(zhat: f64) -> f64 {
    zhat * zhat * (0.5 + 1.0 / 3f64.sqrt())
}

fn deterministic_rows(s: &SeriesSetting) -> Result<Vec<Row>> {
    let run = run_series(s, 1)?;
    Ok(coefficients()
        .into_iter()
        .map(|(label, m, p)| {
            let label = format!("{label} (g=0, N={})", s.n);
            if label.starts_with("eig") {
                Row::disputed(
                    label,
                    p(s.zhat, s.beta()),
                    m(&run),
                    EXACT_TOL,
                    eig_g0_finding(s.zhat),
                    EXACT_TOL,
                )
            } else {
                Row::rel(label, p(s.zhat, s.beta()), m(&run), EXACT_TOL)
            }
        })
        .collect())
}

fn seed_rows(s: &SeriesSetting) -> Result<Vec<Row>> {
    let seeds: Vec<u64> = (1..=MIN_SEEDS).collect();
    let runs = par_map(&seeds, |&seed| run_series(s, seed))?;
    let boot = Bootstrap::new(BOOT_SEED);
    let mut rows = Vec::new();
    for (label, m, p) in coefficients() {
        let pred = p(s.zhat, s.beta());
        let x: Vec<f64> = runs.iter().map(m).collect();
        let est = bootstrap(&x, Statistic::Mean, &boot)?;
        rows.push(Row::interval(
            format!("{label} (g={}, N={})", s.g, s.n),
            &Band::rel(pred, FINITE_N_TOL),
            &est,
        ));
    }
    let z0: Vec<f64> = runs.iter().map(|r| r.z0.abs()).collect();
    let im = runs.iter().map(|r| r.eig_imag).fold(0.0f64, f64::max);
    if let Some(r) = rows.first_mut() {
        r.note = format!(
            "{}; median |z(0)| {:.3e}, largest |Im eig| {:.1e}",
            r.note,
            crate::num::stats::median(&z0)?,
            im
        );
    }
    Ok(rows)
}

fn check(n: usize, gs: &[f64]) -> Result<Vec<Row>> {
    let mut rows = deterministic_rows(&SeriesSetting::reference(n, 0.0))?;
    for &g in gs {
        rows.extend(seed_rows(&SeriesSetting::reference(n, g))?);
    }
    Ok(rows)
}

fn check_fast() -> Result<Vec<Row>> {
    check(FAST_N, &FAST_G)
}

fn check_full() -> Result<Vec<Row>> {
    check(FULL_N, &FULL_G)
}

/// The I-17 checks: fast (N = 128, g = 0 and 0.5) and full (N = 256, g = 0, 0.3, 0.5, 0.8).
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "I-17",
            tier: Tier::Fast,
            run: check_fast,
        },
        Check {
            id: "I-17-full",
            tier: Tier::Full,
            run: check_full,
        },
    ]
}
