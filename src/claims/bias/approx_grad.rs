//! B-14: bias and variance of one step with an approximate gradient (`crate::bias::approx_grad`).

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::bias::approx_grad::*;
use crate::claims::Row;
use crate::Result;

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
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
