//! Kind `bias_modified_flow` (THEORY II.5, B-12; Barrett & Dherin 2021, Smith et al. 2021):
//! order test of backward-error analysis on l2-regularised logistic regression. GD with step eps
//! has global error O(eps) against GF on L and O(eps^2) against GF on L + (eps/4)|grad L|^2; one
//! SGD epoch of m equal batches, averaged over all m! orders, has error O(eps^2) against GF on L
//! and O(eps^3) against the modified flow L + (eps/(4m)) sum_k |grad L_k|^2.
//!
//! Keys: `points`, `labels` (default: the fixed non-separable set of 12 points in R^3 of the
//! B-12 check), `lambda` > 0 (default 0.05), `w0` (default (1.5, -1, 0.8)), `eps` (a decreasing
//! list, >= 2 entries, each dividing `horizon`), `horizon` t of the GD runs, `batches` m (divides
//! the number of points, 2..=6: m! orders), `csv`.
//!
//! Rows, for each consecutive pair eps_i > eps_{i+1} with r = eps_i / eps_{i+1}: error ratios r
//! (GD vs GF), r^2 (GD vs modified flow), r^2 (SGD epoch vs GF), r^3 (SGD epoch vs modified flow),
//! each within 15% (claim file B-12: the next order changes a ratio by a relative O(eps)).

use nalgebra::DVector;
use serde::Deserialize;

use super::{labelled_points, time_series, unpaired_points, Trained};
use crate::bias::modified_flow::{gd_errors, sgd_epoch_errors, test_problem, LogReg, RATIO_TOL};
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
use crate::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    points: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
    lambda: Option<f64>,
    w0: Option<Vec<f64>>,
    eps: Vec<f64>,
    horizon: f64,
    #[serde(default = "default_batches")]
    batches: i64,
    csv: Option<String>,
}

fn default_batches() -> i64 {
    3
}

/// The step sizes: at least two, decreasing, each horizon / k for an integer k >= 1.
fn check_eps(c: &Checker<'_>, eps: &[f64], horizon: f64) -> Result<()> {
    if eps.len() < 2 {
        return Err(c.error(
            "eps",
            format!("{eps:?}"),
            "a decreasing list of at least 2 step sizes",
            "an order test needs two step sizes",
        ));
    }
    for (i, &e) in eps.iter().enumerate() {
        let f = format!("eps[{i}]");
        c.positive(&f, e)?;
        let k = horizon / e;
        if k < 1.0 || (k - k.round()).abs() > 1e-9 * k {
            return Err(c.error(
                &f,
                e,
                &format!("horizon / k for an integer k >= 1 (horizon {horizon})"),
                "the GD runs must end exactly at the horizon",
            ));
        }
        if i > 0 && e >= eps[i - 1] {
            return Err(c.error(
                &f,
                e,
                &format!("< eps[{}] = {}", i - 1, eps[i - 1]),
                "the list must decrease",
            ));
        }
    }
    Ok(())
}

/// B-12's order rows of a [`run`] table: per pair of consecutive step sizes, each error ratio
/// against (eps ratio)^order. What `modeflow train` on a `bias_modified_flow` model and the B-12
/// check report.
pub fn ratio_rows(spec: &Spec, table: &[Vec<f64>]) -> Vec<Row> {
    let m = spec.batches.len();
    let orders: usize = (1..=m).product();
    let mut rows = Vec::new();
    for w in table.windows(2) {
        let (a, z) = (&w[0], &w[1]);
        let r = a[0] / z[0];
        let lab = |what: &str| format!("{what}: error ratio eps {} -> {}", a[0], z[0]);
        for (col, order, what) in [
            (1, 1, "GD vs GF"),
            (2, 2, "GD vs modified flow"),
            (3, 2, "SGD epoch vs GF"),
            (4, 3, "SGD epoch vs modified flow"),
        ] {
            rows.push(
                Row::rel(lab(what), r.powi(order), a[col] / z[col], RATIO_TOL).note(if col <= 2 {
                    format!(
                        "errors at t = {}: {:.3e} -> {:.3e}",
                        spec.horizon, a[col], z[col]
                    )
                } else {
                    format!(
                        "one epoch, {m} batches, mean of {orders} orders: {:.3e} -> {:.3e}",
                        a[col], z[col]
                    )
                }),
            );
        }
    }
    rows
}

/// Per step size: GD run to the horizon inside the ball |w| <= `ball` (beyond it the step is
/// unstable: a divergence error), then the errors of GD and of one SGD epoch against GF and
/// the modified flow: rows (eps, GD-GF, GD-modified, SGD-GF, SGD-modified).
fn error_table(
    p: &LogReg,
    w0: &DVector<f64>,
    eps_list: &[f64],
    horizon: f64,
    batches: &[Vec<usize>],
    ball: f64,
) -> Result<Vec<Vec<f64>>> {
    let m = batches.len();
    let diverged = |eps: f64, step: usize| Error::Diverged {
        what: format!("GD with eps = {eps} (lambda {})", p.lambda),
        step,
        loss: f64::NAN,
        hint: "use a smaller eps (GD is stable for eps < 2 / (lambda + R^2/4), R = max |x_i|)"
            .into(),
    };
    let mut table = Vec::new();
    for &eps in eps_list {
        let mut w = w0.clone();
        for step in 1..=(horizon / eps).round() as usize {
            w -= p.grad(&w) * eps;
            if w.norm().is_nan() || w.norm() > ball {
                return Err(diverged(eps, step));
            }
        }
        let (g0, g1) = gd_errors(p, w0, eps, horizon);
        let (s0, s1) = sgd_epoch_errors(p, batches, w0, eps);
        if ![g0, g1, s0, s1]
            .iter()
            .all(|v| v.is_finite() && *v <= 2.0 * ball)
        {
            return Err(diverged(eps, m));
        }
        table.push(vec![eps, g0, g1, s0, s1]);
    }
    Ok(table)
}

/// A checked `bias_modified_flow` model file.
#[derive(Debug, Clone)]
pub struct Spec {
    /// the l2-regularised logistic regression
    pub problem: LogReg,
    pub w0: DVector<f64>,
    /// decreasing step sizes, each horizon / k
    pub eps: Vec<f64>,
    pub horizon: f64,
    /// the equal batches of the SGD epoch
    pub batches: Vec<Vec<usize>>,
    /// divergence radius: an iterate beyond it is an unstable step size
    pub ball: f64,
    pub csv: Option<String>,
}

/// The divergence radius of a problem from `w0`: with R = max |x_i| the data part of every
/// (batch) gradient is bounded by R, so GF and GD/SGD with eps lambda <= 1 stay in the ball
/// |w| <= B = |w0| + R / lambda (|w'| <= (1 - eps lambda)|w| + eps R); 10 B.
fn divergence_ball(p: &LogReg, w0: &DVector<f64>) -> f64 {
    let r_max = (0..p.x.nrows())
        .map(|i| p.x.row(i).norm())
        .fold(0.0, f64::max);
    10.0 * (w0.norm() + r_max / p.lambda)
}

impl Spec {
    /// The B-12 reference (`models/bias-modified-flow.toml`): the fixed 12 points in R^3,
    /// lambda = 0.05, w0 = (1.5, -1, 0.8), eps = 0.2, 0.1, 0.05 to t = 2, three equal batches.
    pub fn reference() -> Spec {
        let problem = test_problem();
        let w0 = DVector::from_vec(vec![1.5, -1.0, 0.8]);
        let ball = divergence_ball(&problem, &w0);
        Spec {
            problem,
            w0,
            eps: vec![0.2, 0.1, 0.05],
            horizon: 2.0,
            batches: vec![(0..4).collect(), (4..8).collect(), (8..12).collect()],
            ball,
            csv: None,
        }
    }
}

/// Check a `bias_modified_flow` model file without running it (shapes, step sizes, the step
/// budget).
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let mut p = match (&raw.points, &raw.labels) {
        (None, None) => test_problem(),
        (Some(pts), Some(l)) => {
            let (x, y) = labelled_points(&c, pts, l, None)?;
            LogReg { x, y, lambda: 0.05 }
        }
        _ => return Err(unpaired_points(&c)),
    };
    if let Some(l) = raw.lambda {
        p.lambda = c.positive("lambda", l)?;
    }
    let (n, d) = (p.x.nrows(), p.x.ncols());
    let w0 = match &raw.w0 {
        None if raw.points.is_none() => DVector::from_vec(vec![1.5, -1.0, 0.8]),
        None => DVector::zeros(d),
        Some(w) => {
            if w.len() != d {
                return Err(c.error(
                    "w0",
                    format!("{} entries", w.len()),
                    &format!("{d} entries (the dimension of the points)"),
                    "inconsistent shapes",
                ));
            }
            for (i, v) in w.iter().enumerate() {
                c.finite(&format!("w0[{i}]"), *v)?;
            }
            DVector::from_column_slice(w)
        }
    };
    let horizon = c.positive("horizon", raw.horizon)?;
    check_eps(&c, &raw.eps, horizon)?;
    // issue 15: horizon = 1e308 looped silently (the step count saturated); every GD/SGD run
    // takes horizon / eps steps, checked against the step budget before any is taken
    let total_steps: f64 = raw.eps.iter().map(|&e| horizon / e).sum::<f64>() * 2.0;
    crate::budget::check_steps(
        &model.common.file,
        "horizon",
        horizon,
        total_steps,
        "the GD and SGD runs take horizon / eps steps for every eps",
    )?;
    let m = c.count("batches", raw.batches, 2, 6)?;
    if n % m != 0 {
        return Err(c.error(
            "batches",
            m,
            &format!("a divisor of the number of points {n}"),
            "inconsistent shapes: L = (1/m) sum L_k needs equal batches",
        ));
    }
    let b = n / m;
    let batches: Vec<Vec<usize>> = (0..m).map(|j| (j * b..(j + 1) * b).collect()).collect();
    // divergence guard: an iterate beyond this ball is an unstable step size
    let ball = divergence_ball(&p, &w0);
    Ok(Spec {
        problem: p,
        w0,
        eps: raw.eps,
        horizon,
        batches,
        ball,
        csv: raw.csv,
    })
}

/// Columns of the table of [`run`].
pub const TABLE_HEADER: [&str; 5] = [
    "eps",
    "gd_err_gf",
    "gd_err_modified",
    "sgd_epoch_err_gf",
    "sgd_epoch_err_modified",
];

/// The B-12 order test of a checked spec: per step size (eps, GD-GF, GD-modified, SGD-GF,
/// SGD-modified) ([`TABLE_HEADER`]).
pub fn run(spec: &Spec) -> Result<Vec<Vec<f64>>> {
    error_table(
        &spec.problem,
        &spec.w0,
        &spec.eps,
        spec.horizon,
        &spec.batches,
        spec.ball,
    )
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let table = run(&spec)?;
    let (p, horizon, m) = (&spec.problem, spec.horizon, spec.batches.len());
    let n = p.x.nrows();
    let rows = ratio_rows(&spec, &table);
    let summary = vec![
        ("points".into(), n as f64),
        ("lambda".into(), p.lambda),
        ("horizon (GD)".into(), horizon),
        ("batches (SGD)".into(), m as f64),
    ];
    let csv = time_series(model, &spec.csv, &TABLE_HEADER, table)?;
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B-12's reference is the shipped `models/bias-modified-flow.toml`, field by field.
    #[test]
    fn reference_is_the_shipped_model() {
        let (a, b) = (
            super::super::shipped_spec("bias-modified-flow.toml", check),
            Spec::reference(),
        );
        assert_eq!(a.problem.x, b.problem.x);
        assert_eq!(a.problem.y, b.problem.y);
        assert_eq!(a.problem.lambda, b.problem.lambda);
        assert_eq!((&a.w0, &a.eps, a.horizon), (&b.w0, &b.eps, b.horizon));
        assert_eq!((&a.batches, a.ball), (&b.batches, b.ball));
    }
}
