//! B-10, B-11: diagonal linear nets, alpha_inf and the mirror potential (`crate::bias::diagonal`).

use nalgebra::DVector;

use crate::bias::diagonal::*;
use crate::bias::solvers::mirror_argmin;
use crate::claims::Row;
use crate::Result;

/// B-10 check: GD (eta = 0.01) interpolator vs argmin Q_{alpha_inf} (1e-3) and the l2 / l1 limits
/// of the potential.
pub fn check_b10() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let (x, y, _) = reference_data(1);
    let d = x.ncols();
    for alpha in [0.1, 1.0] {
        let run = train_diagonal(
            &x,
            &y,
            &DiagSettings {
                alpha,
                eta: 0.01,
                batch: x.nrows(),
                max_steps: 2_000_000,
                loss_tol: 1e-24,
                seed: 0,
            },
        )?;
        let b_inf = mirror_argmin(&x, &y, &run.ln_alpha2, &DVector::zeros(d), 1e-13)?;
        rows.push(
            Row::abs(
                format!("GD (eta=0.01, alpha={alpha}) vs argmin Q_alpha_inf, max |diff|"),
                0.0,
                (&run.beta - &b_inf).amax(),
                1e-3,
            )
            .note(format!(
                "{} steps, loss {:.1e}, alpha_inf^2/alpha^2 = {:.4}",
                run.steps,
                run.loss,
                run.alpha2_ratio(alpha)
            )),
        );
    }
    // limits of the potential: alpha large -> min-l2; alpha -> 0 -> min-l1 (dual certificate)
    let l2 = min_l2(&x, &y)?;
    let big = mirror_argmin(
        &x,
        &y,
        &DVector::from_element(d, 2.0 * (100.0f64).ln()),
        &DVector::zeros(d),
        1e-13,
    )?;
    rows.push(
        Row::abs("argmin Q_alpha, alpha=100, vs min-l2 interpolator", 0.0, (&big - &l2).amax(), 1e-6)
            .note("Q_alpha = |beta|^2/(4 alpha^2) + O(|beta|^4/alpha^6): relative error ~ |beta|^2/alpha^4 = 1e-8"),
    );
    let ln_a2 = 2.0 * (1e-100f64).ln();
    let tiny = mirror_argmin(
        &x,
        &y,
        &DVector::from_element(d, ln_a2),
        &DVector::zeros(d),
        1e-13,
    )?;
    // l1 duality gap: a dual-feasible certificate nu' (|X^T nu'|_inf <= 1) gives
    // y . nu' <= min |beta|_1 <= |tiny|_1; the relative gap bounds the distance to min-l1.
    let gap = l1_gap(&x, &y, &tiny)?;
    rows.push(
        Row::abs("argmin Q_alpha, alpha=1e-100: relative l1 duality gap", 0.0, gap, 2e-3)
            .note("tolerance 1/ln(1/alpha^2) ~ 2e-3, the rate at which Q_alpha/(alpha^2 ln(1/alpha^2)) -> |.|_1"),
    );
    Ok(rows)
}

/// B-11 check: per-step identity of u v, exact mirror form (1e-10), SGD vs GD on 3 seeds.
pub fn check_b11() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let (x, y, _) = reference_data(2);
    let n = x.nrows();
    let mut worst: f64 = 0.0;
    let mut worst_mirror: f64 = 0.0;
    for (eta, batch) in [(0.02, n), (0.04, n), (0.02, 1), (0.04, 5)] {
        let run = train_diagonal(
            &x,
            &y,
            &DiagSettings {
                alpha: 0.3,
                eta,
                batch,
                max_steps: 3_000_000,
                loss_tol: 1e-28,
                seed: 7,
            },
        )?;
        worst = worst.max(run.max_identity_residual);
        let b = mirror_argmin(&x, &y, &run.ln_alpha2, &run.delta, 1e-13)?;
        worst_mirror = worst_mirror.max((&run.beta - &b).amax());
    }
    rows.push(Row::abs(
        "u v shrinks by (1 - 4 eta^2 g^2) per step: max rel. residual",
        0.0,
        worst,
        1e-12,
    ));
    rows.push(
        Row::abs(
            "trained beta vs exact mirror argmin (alpha_T, delta), max |diff|",
            0.0,
            worst_mirror,
            MIRROR_TOL,
        )
        .note("GD eta 0.02, 0.04; SGD batch 1 eta 0.02; batch 5 eta 0.04"),
    );
    rows.extend(sgd_vs_gd(&[1, 2, 3])?);
    Ok(rows)
}

/// SGD (batch 1) vs GD at alpha = 0.3, eta = 0.04 on `seeds` data sets: alpha_inf^2/alpha^2 and |beta|_1.
pub fn sgd_vs_gd(seeds: &[u64]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &seed in seeds {
        let (x, y, _) = reference_data(10 + seed);
        let base = DiagSettings {
            alpha: 0.3,
            eta: 0.04,
            batch: x.nrows(),
            max_steps: 3_000_000,
            loss_tol: 1e-20,
            seed,
        };
        let gd = train_diagonal(&x, &y, &base)?;
        let sgd = train_diagonal(&x, &y, &DiagSettings { batch: 1, ..base })?;
        let (rg, rs) = (gd.alpha2_ratio(0.3), sgd.alpha2_ratio(0.3));
        let (lg, ls) = (gd.beta.abs().sum(), sgd.beta.abs().sum());
        rows.push(Row::holds(
            format!("seed {seed}: SGD alpha_inf^2/alpha^2 < GD's"),
            rs < rg,
            format!("SGD {rs:.4} vs GD {rg:.4}"),
        ));
        rows.push(Row::holds(
            format!("seed {seed}: SGD |beta|_1 < GD's"),
            ls < lg,
            format!("SGD {ls:.4} vs GD {lg:.4}"),
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b10_b11_checks_pass() {
        for row in check_b10().unwrap().into_iter().chain(check_b11().unwrap()) {
            eprintln!("{} | {:e} | {}", row.label, row.measured, row.note);
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
