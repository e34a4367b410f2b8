//! B-10, B-11: diagonal linear nets, alpha_inf and the mirror potential (`crate::bias::diagonal`).

use nalgebra::DVector;

use crate::bias::diagonal::{l1_gap, min_l2, reference_data};
use crate::bias::solvers::mirror_argmin;
use crate::bias::spec::diagonal::{rows as diagonal_rows, run_diagonal, DiagonalSpec};
use crate::claims::Row;
use crate::{Error, Result};

/// B-10 check: the GD interpolator (eta = 0.01; `models/bias-diagonal-gd.toml` at alpha = 0.1
/// and 1, the run and the argmin Q_alpha_inf row of `modeflow train`) vs argmin Q_{alpha_inf}
/// (1e-3), and, from the solver alone, the l2 / l1 limits of the potential.
pub fn check_b10() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for alpha in [0.1, 1.0] {
        let spec = DiagonalSpec::gd_reference(alpha);
        let out = run_diagonal(&spec)?;
        let run = &out.run;
        // the third row: the trained beta against argmin Q_alpha_inf (eta <= 0.02)
        let row = diagonal_rows(&spec, &out).swap_remove(2);
        rows.push(Row {
            label: format!("GD (eta=0.01, alpha={alpha}) vs argmin Q_alpha_inf, max |diff|"),
            ..row.note(format!(
                "{} steps, loss {:.1e}, alpha_inf^2/alpha^2 = {:.4}",
                run.steps,
                run.loss,
                run.alpha2_ratio(alpha)
            ))
        });
    }
    let (x, y, _) = reference_data(1);
    let d = x.ncols();
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

/// B-11 check: the per-step identity of u v and the exact mirror form (1e-10) over four runs
/// (`models/bias-diagonal-mirror.toml` and three variants: GD eta 0.02, 0.04; SGD batch 1 eta
/// 0.02; batch 5 eta 0.04), each row the worst run's row of `modeflow train`; SGD vs GD on 3
/// seeds.
pub fn check_b11() -> Result<Vec<Row>> {
    // the worst run's identity row and mirror row (the first two rows of each run)
    let mut worst: [Option<Row>; 2] = [None, None];
    for (eta, batch) in [(0.02, 20), (0.04, 20), (0.02, 1), (0.04, 5)] {
        let spec = DiagonalSpec::mirror_reference(eta, batch);
        for (w, row) in worst
            .iter_mut()
            .zip(diagonal_rows(&spec, &run_diagonal(&spec)?))
        {
            if w.as_ref().is_none_or(|w| row.measured > w.measured) {
                *w = Some(row);
            }
        }
    }
    let [Some(identity), Some(mirror)] = worst else {
        return Err(Error::Requirement(
            "B-11: a diagonal run without its rows".into(),
        ));
    };
    let mut rows = vec![
        Row {
            label: "u v shrinks by (1 - 4 eta^2 g^2) per step: max rel. residual".into(),
            ..identity
        },
        Row {
            label: "trained beta vs exact mirror argmin (alpha_T, delta), max |diff|".into(),
            ..mirror
        }
        .note("GD eta 0.02, 0.04; SGD batch 1 eta 0.02; batch 5 eta 0.04"),
    ];
    rows.extend(sgd_vs_gd(&[1, 2, 3])?);
    Ok(rows)
}

/// SGD (batch 1) vs GD at alpha = 0.3, eta = 0.04 on `seeds` data sets
/// (`models/bias-diagonal-sgd.toml` at seed 1): alpha_inf^2/alpha^2 and |beta|_1.
pub fn sgd_vs_gd(seeds: &[u64]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &seed in seeds {
        let gd = run_diagonal(&DiagonalSpec::sgd_reference(seed, 20))?.run;
        let sgd = run_diagonal(&DiagonalSpec::sgd_reference(seed, 1))?.run;
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
