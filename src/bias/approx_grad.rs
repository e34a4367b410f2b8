//! Approximate gradients: bias and variance of one step (THEORY II.5, B-14; Ghosh et al. 2023).
//! On L(theta) = (theta - theta*)^T H (theta - theta*) / 2, one step with estimator g + b + n
//! (E n = 0, Cov n = Sigma) changes the loss by, in expectation exactly,
//!   E[Delta L] = -eta g^T (g + b) + (eta^2 / 2) [(g + b)^T H (g + b) + tr(H Sigma)].
//! Isotropic noise with |n| = r |g| (Sigma = r^2 |g|^2 / d I, b = 0) descends whenever
//! lambda_max(H) < 2 / (eta (1 + r^2)), a sufficient condition that is tight for H = lambda I.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

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

#[cfg(test)]
mod tests {
    use super::*;

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
