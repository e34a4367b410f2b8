//! Approximate gradients: bias and variance of one step (THEORY II.5, B-14; Ghosh et al. 2023).
//! On L(theta) = (theta - theta*)^T H (theta - theta*) / 2, one step with estimator g + b + n
//! (E n = 0, Cov n = Sigma) changes the loss by, in expectation exactly,
//!   E[Delta L] = -eta g^T (g + b) + (eta^2 / 2) [(g + b)^T H (g + b) + tr(H Sigma)].
//! Isotropic noise with |n| = r |g| (Sigma = r^2 |g|^2 / d I, b = 0) descends whenever
//! lambda_max(H) < 2 / (eta (1 + r^2)), a sufficient condition that is tight for H = lambda I.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::compare::Row;
use crate::Result;

/// The exact expected loss change of one step (B-14).
pub fn expected_delta(
    h: &DMatrix<f64>,
    g: &DVector<f64>,
    b: &DVector<f64>,
    sigma: &DMatrix<f64>,
    eta: f64,
) -> f64 {
    let gb = g + b;
    -eta * g.dot(&gb) + 0.5 * eta * eta * (gb.dot(&(h * &gb)) + (h * sigma).trace())
}

/// Monte Carlo estimate of E[Delta L] with n = A xi (xi ~ N(0, I), Sigma = A A^T) and its
/// standard error; the loss is evaluated exactly at theta and theta - eta (g + b + n).
pub fn monte_carlo_delta(
    h: &DMatrix<f64>,
    theta_minus_star: &DVector<f64>,
    b: &DVector<f64>,
    a: &DMatrix<f64>,
    eta: f64,
    samples: usize,
    seed: u64,
) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = h.nrows();
    let e0 = theta_minus_star;
    let g = h * e0;
    let l0 = 0.5 * e0.dot(&g);
    let mut xi = DVector::zeros(d);
    let mut step = DVector::zeros(d);
    let mut hs = DVector::zeros(d);
    let (mut sum, mut sum2) = (0.0, 0.0);
    for _ in 0..samples {
        xi.apply(|v| *v = rng.sample(StandardNormal));
        step.copy_from(&g);
        step += b;
        step.gemv(1.0, a, &xi, 1.0);
        // e1 = e0 - eta step; L1 = e1^T H e1 / 2
        step.scale_mut(-eta);
        step += e0;
        hs.gemv(1.0, h, &step, 0.0);
        let dl = 0.5 * step.dot(&hs) - l0;
        sum += dl;
        sum2 += dl * dl;
    }
    let m = sum / samples as f64;
    let var = (sum2 / samples as f64 - m * m).max(0.0);
    (m, (var / samples as f64).sqrt())
}

/// Random symmetric positive definite H = Q diag(l) Q^T (Q Haar-orthogonal) with eigenvalues
/// spread evenly over [0.05 lmax, lmax].
pub fn random_spd(rng: &mut StdRng, d: usize, lmax: f64) -> DMatrix<f64> {
    let a = DMatrix::from_fn(d, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let q = a.qr().q();
    let l = DVector::from_fn(d, |i, _| {
        lmax * (0.05 + 0.95 * (i as f64) / (d as f64 - 1.0).max(1.0))
    });
    &q * DMatrix::from_diagonal(&l) * q.transpose()
}

/// B-14 check.
pub fn check_b14() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut rng = StdRng::seed_from_u64(14);
    let d = 5;
    for case in 0..3 {
        let h = random_spd(&mut rng, d, 2.0);
        let e0 = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let b = DVector::from_fn(d, |_, _| 0.3 * rng.sample::<f64, _>(StandardNormal));
        let a = DMatrix::from_fn(d, d, |_, _| 0.5 * rng.sample::<f64, _>(StandardNormal));
        let sigma = &a * a.transpose();
        let eta = 0.3;
        let g = &h * &e0;
        let pred = expected_delta(&h, &g, &b, &sigma, eta);
        let (mc, se) = monte_carlo_delta(&h, &e0, &b, &a, eta, 200_000, 100 + case);
        // 4 standard errors: a correct formula fails with probability 6e-5 (fixed seed).
        rows.push(
            Row::abs(
                format!("E[Delta L] formula vs Monte Carlo, case {case}"),
                pred,
                mc,
                4.0 * se,
            )
            .note(format!("2e5 samples, standard error {se:.2e}, eta = {eta}")),
        );
    }
    // isotropic noise: sufficient condition lambda_max < 2/(eta(1+r^2)) => descent (100 draws)
    let (eta, r) = (0.5, 1.5);
    let bound = 2.0 / (eta * (1.0 + r * r));
    let mut worst = f64::NEG_INFINITY;
    for _ in 0..100 {
        let h = random_spd(&mut rng, d, 0.999 * bound);
        let g = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let sigma = DMatrix::identity(d, d) * (r * r * g.norm_squared() / d as f64);
        let de = expected_delta(&h, &g, &DVector::zeros(d), &sigma, eta) / g.norm_squared();
        worst = worst.max(de);
    }
    rows.push(Row::holds(
        "isotropic noise: E[Delta L] < 0 for all 100 H with lambda_max < 2/(eta(1+r^2))",
        worst < 0.0,
        format!("largest E[Delta L]/|g|^2 = {worst:.3e} (eta 0.5, r 1.5)"),
    ));
    // tightness for H = lambda I: E[Delta L] = eta |g|^2 (-1 + eta lambda (1 + r^2)/2), zero at the bound
    let g = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let sigma = DMatrix::identity(d, d) * (r * r * g.norm_squared() / d as f64);
    let at = |lam: f64| {
        expected_delta(
            &(DMatrix::identity(d, d) * lam),
            &g,
            &DVector::zeros(d),
            &sigma,
            eta,
        )
    };
    rows.push(Row::abs(
        "H = lambda I at the bound: E[Delta L] / |g|^2 = 0",
        0.0,
        at(bound) / g.norm_squared(),
        1e-14,
    ));
    rows.push(Row::holds(
        "H = 1.01 bound I ascends",
        at(1.01 * bound) > 0.0,
        format!("{:.3e}", at(1.01 * bound)),
    ));
    Ok(rows)
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
            assert_eq!(row.verdict, crate::compare::Verdict::Pass, "{row:?}");
        }
    }

    #[test]
    fn formula_detects_a_missing_trace_term() {
        // Without tr(H Sigma) the prediction falls outside the Monte Carlo error bar: the check
        // can fail.
        let mut rng = StdRng::seed_from_u64(3);
        let d = 4;
        let h = random_spd(&mut rng, d, 2.0);
        let e0 = DVector::from_element(d, 1.0);
        let a = DMatrix::identity(d, d) * 0.5;
        let g = &h * &e0;
        let zero = DVector::zeros(d);
        let wrong = expected_delta(&h, &g, &zero, &DMatrix::zeros(d, d), 0.3);
        let (mc, se) = monte_carlo_delta(&h, &e0, &zero, &a, 0.3, 50_000, 1);
        assert!((wrong - mc).abs() > 10.0 * se);
    }
}
