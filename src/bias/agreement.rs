//! Linear teacher, two-layer leaky-ReLU student with second layer fixed at +-1 (THEORY II.2,
//! B-3, B-4, B-5): N(x) = sum_{j in +} sigma(w_j . x) - sum_{j in -} sigma(u_j . x), logistic loss.
//!
//! - B-3: two exact clusters w_j = P/k, u_j = Q/k give N(x) = sigma(P.x) - sigma(Q.x), whose sign is
//!   sign((P - Q).x) because sigma is strictly increasing: a linear boundary.
//! - B-4: in the agreement regime (sign(w_j.x_i) = y_i, sign(u_j.x_i) = -y_i for all i, j) sigma'
//!   depends only on the label, so all neurons of one sign get identical updates.
//! - B-5: then P = sum w_j, Q = sum u_j follow GD with step k eta on the lifted linear problem
//!   N_i = theta . phi_i, theta = (P, Q), phi_i = (x_i, -alpha x_i) (y_i = +1) or (alpha x_i, -x_i)
//!   (y_i = -1), and converge in direction to its max-margin solution.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::nets::{sigmoid, Activation, Loss, TwoLayer, TwoLayerGrad, TwoLayerWork};
use super::solvers::hard_margin_svm;
use crate::claims::Row;
use crate::{Error, Result};

/// Linearly separable data from a unit teacher w* with |w*.x| >= margin (rejection sampling of
/// Gaussian x). Returns (X n x d, y, w*).
pub fn teacher_data(
    n: usize,
    d: usize,
    margin: f64,
    seed: u64,
) -> (DMatrix<f64>, DVector<f64>, DVector<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let w = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal)).normalize();
    let mut x = DMatrix::zeros(n, d);
    let mut y = DVector::zeros(n);
    let mut i = 0;
    while i < n {
        let v = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let m = w.dot(&v);
        if m.abs() >= margin {
            x.row_mut(i).copy_from(&v.transpose());
            y[i] = m.signum();
            i += 1;
        }
    }
    (x, y, w)
}

/// The +-1 student as a [`TwoLayer`] with a = (1, ..., 1, -1, ..., -1) (k of each); columns
/// 0..k of `w` are the w_j, k..2k the u_j.
pub fn student(w: DMatrix<f64>, k: usize, alpha: f64) -> TwoLayer {
    TwoLayer {
        w,
        a: DVector::from_fn(2 * k, |j, _| if j < k { 1.0 } else { -1.0 }),
        act: Activation::LeakyRelu(alpha),
    }
}

/// Whether every neuron agrees in sign with the label on every training point.
pub fn in_agreement(net: &TwoLayer, x: &DMatrix<f64>, y: &DVector<f64>) -> bool {
    let z = x * &net.w;
    (0..z.nrows()).all(|i| (0..z.ncols()).all(|j| z[(i, j)] * y[i] * net.a[j] > 0.0))
}

/// Lifted features phi_i (rows, 2d wide) of B-5.
pub fn lifted_features(x: &DMatrix<f64>, y: &DVector<f64>, alpha: f64) -> DMatrix<f64> {
    let (n, d) = (x.nrows(), x.ncols());
    DMatrix::from_fn(n, 2 * d, |i, c| {
        let (p_coef, q_coef) = if y[i] > 0.0 {
            (1.0, -alpha)
        } else {
            (alpha, -1.0)
        };
        if c < d {
            p_coef * x[(i, c)]
        } else {
            q_coef * x[(i, c - d)]
        }
    })
}

/// One GD step of the first layer only (second layer fixed at +-1).
fn first_layer_step(
    net: &mut TwoLayer,
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    eta: f64,
    work: &mut TwoLayerWork,
    g: &mut TwoLayerGrad,
) -> Result<f64> {
    let l = net.grad_into(x, y, Loss::Logistic, work, g)?;
    net.w.zip_apply(&g.w, |w, gw| *w -= eta * gw);
    Ok(l)
}

/// B-3 check: exact clusters => sign N(x) = sign((P - Q).x) on 1e4 random points (3 seeds).
pub fn check_b3() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(300 + seed);
        let (d, k, alpha) = (5, 10, 0.2);
        let p = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let q = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let w = DMatrix::from_fn(d, 2 * k, |r, c| {
            if c < k {
                p[r] / k as f64
            } else {
                q[r] / k as f64
            }
        });
        let net = student(w, k, alpha);
        let xt = DMatrix::from_fn(10_000, d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let f = net.predict(&xt);
        let lin = &xt * (&p - &q);
        let agree = (0..10_000)
            .filter(|&i| f[i].signum() == lin[i].signum())
            .count() as f64
            / 1e4;
        rows.push(Row::abs(
            format!("seed {seed}: fraction sign N = sign((P-Q).x), 1e4 points"),
            1.0,
            agree,
            0.0,
        ));
    }
    Ok(rows)
}

/// Result of an agreement-regime run.
pub struct AgreementRun {
    /// max over steps of max_{j in group} |(w_j - w_0)(t) - (w_j - w_0)(0)| / max |w|
    pub drift: f64,
    /// whether agreement held at every step
    pub agreed: bool,
    /// max over steps of |(P, Q)_net - theta_lifted| / |theta|
    pub lift_gap: f64,
    pub net: TwoLayer,
}

/// Train in the agreement regime from w_j = c w* + eps xi_j, u_j = -c w* + eps xi'_j and compare
/// with lifted GD of step k eta (the B-4/B-5 reference: n = 40, d = 5, 10 + 10 neurons, alpha =
/// 0.2, teacher margin 0.3, eps = 0.02).
pub fn agreement_run(seed: u64, steps: usize, eta: f64) -> Result<AgreementRun> {
    let (x, y, ws) = teacher_data(40, 5, 0.3, seed);
    let s = StudentSettings {
        k: 10,
        alpha: 0.2,
        eta,
        steps,
    };
    agreement_run_on(&x, &y, &ws, &s, 0.02, seed + 1000)
}

/// Settings of a +-1 student run (THEORY II.2): k neurons per sign, leaky slope alpha, GD step
/// eta on the mean logistic loss (first layer only), `steps` steps.
#[derive(Debug, Clone, Copy)]
pub struct StudentSettings {
    pub k: usize,
    pub alpha: f64,
    pub eta: f64,
    pub steps: usize,
}

/// [`agreement_run`] on given data: init w_j = w* + `noise` xi_j, u_j = -w* + `noise` xi'_j
/// (xi from `StdRng::seed_from_u64(rng_seed)`), where `ws` separates the data
/// (sign(ws . x_i) = y_i). Errors if that init is not in the agreement regime.
pub fn agreement_run_on(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    ws: &DVector<f64>,
    s: &StudentSettings,
    noise: f64,
    rng_seed: u64,
) -> Result<AgreementRun> {
    let StudentSettings {
        k,
        alpha,
        eta,
        steps,
    } = *s;
    let (n, d) = (x.nrows(), x.ncols());
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let w0 = DMatrix::from_fn(d, 2 * k, |r, c| {
        let s = if c < k { 1.0 } else { -1.0 };
        s * ws[r] + noise * rng.sample::<f64, _>(StandardNormal)
    });
    let mut net = student(w0, k, alpha);
    if !in_agreement(&net, x, y) {
        return Err(Error::Requirement(
            "initialisation not in the agreement regime".into(),
        ));
    }
    let diffs = |net: &TwoLayer| -> DMatrix<f64> {
        DMatrix::from_fn(d, 2 * k, |r, c| {
            let base = if c < k { 0 } else { k };
            net.w[(r, c)] - net.w[(r, base)]
        })
    };
    let d0 = diffs(&net);
    let phi = lifted_features(x, y, alpha);
    let mut theta = DVector::from_fn(2 * d, |r, _| {
        let (lo, hi) = if r < d { (0, k) } else { (k, 2 * k) };
        (lo..hi).map(|c| net.w[(r % d, c)]).sum::<f64>()
    });
    let mut work = TwoLayerWork::new(n, 2 * k);
    let mut g = TwoLayerGrad::zeros(d, 2 * k);
    let (mut drift, mut gap): (f64, f64) = (0.0, 0.0);
    let mut agreed = true;
    for _ in 0..steps {
        first_layer_step(&mut net, x, y, eta, &mut work, &mut g)?;
        // lifted GD: grad = (1/n) sum ell'(N_i) phi_i, step k eta
        let nvals = &phi * &theta;
        let mut grad = DVector::zeros(2 * d);
        for i in 0..n {
            grad.axpy(
                -y[i] * sigmoid(-y[i] * nvals[i]) / n as f64,
                &phi.row(i).transpose(),
                1.0,
            );
        }
        theta.axpy(-(k as f64) * eta, &grad, 1.0);
        agreed &= in_agreement(&net, x, y);
        let scale = net.w.amax();
        drift = drift.max((diffs(&net) - &d0).amax() / scale);
        let pq = DVector::from_fn(2 * d, |r, _| {
            let (lo, hi) = if r < d { (0, k) } else { (k, 2 * k) };
            (lo..hi).map(|c| net.w[(r % d, c)]).sum::<f64>()
        });
        gap = gap.max((&pq - &theta).amax() / theta.amax());
    }
    Ok(AgreementRun {
        drift,
        agreed,
        lift_gap: gap,
        net,
    })
}

/// B-4 check: pairwise differences constant in the agreement regime (3 seeds, 2000 steps).
pub fn check_b4() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for seed in 0..3 {
        let r = agreement_run(seed, 2000, 0.5)?;
        rows.push(Row::holds(
            format!("seed {seed}: agreement held for 2000 steps"),
            r.agreed,
            "",
        ));
        rows.push(
            Row::abs(
                format!("seed {seed}: drift of w_j - w_0 within each sign / max|w|"),
                0.0,
                r.drift,
                1e-12,
            )
            .note("identical updates: only rounding (~1e-15 per step) accumulates"),
        );
    }
    Ok(rows)
}

/// B-5 check: (P, Q) equals lifted GD (exact), and lifted GD tends in direction to the lifted
/// max-margin solution: the component along w_hat grows like ln t (slope 1 in units of w_hat) and
/// the direction error shrinks like 1/ln t.
pub fn check_b5() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for seed in 0..3 {
        let r = agreement_run(seed, 2000, 0.5)?;
        rows.push(
            Row::abs(
                format!("seed {seed}: (P, Q) vs lifted GD (step k eta), max rel. gap"),
                0.0,
                r.lift_gap,
                1e-12,
            )
            .note("2000 steps, eta 0.5, k = 10 per sign"),
        );
    }
    // direction: long lifted GD (cheap, 10-dimensional)
    let (x, y, _) = teacher_data(40, 5, 0.3, 0);
    let alpha = 0.2;
    let phi = lifted_features(&x, &y, alpha);
    let svm = hard_margin_svm(&phi, &y, 1e-13)?;
    let plain = hard_margin_svm(&x, &y, 1e-13)?;
    let eta = 5.0;
    let z = DMatrix::from_fn(40, 10, |i, c| y[i] * phi[(i, c)]);
    let wh = &svm.w;
    let mut theta = DVector::zeros(10);
    let checkpoints = [100_000u64, 1_000_000];
    let mut proj = Vec::new();
    let mut t = 0u64;
    for &cp in &checkpoints {
        while t < cp {
            let m = &z * &theta;
            let s = m.map(|v| 1.0 / (1.0 + v.exp()));
            theta.gemv_tr(eta / 40.0, &z, &s, 1.0);
            t += 1;
        }
        proj.push((
            theta.dot(wh) / wh.norm_squared(),
            (&theta - wh * (theta.dot(wh) / wh.norm_squared())).norm(),
            (&theta.normalize() - wh.normalize()).norm(),
        ));
    }
    let slope = (proj[1].0 - proj[0].0) / (10f64).ln();
    rows.push(Row::holds(
        "lifted GD: direction error |theta/|theta| - w_hat/|w_hat|| decreases from t = 1e5 to 1e6",
        proj[1].2 < proj[0].2,
        format!(
            "{:.4e} -> {:.4e}; slope of theta.w_hat/|w_hat|^2 vs ln t = {slope:.4}",
            proj[0].2, proj[1].2
        ),
    ));
    // With rho(t) -> rho_inf bounded, e(t) = |rho_perp| / (|w_hat| ln t) (1 + O(1/ln t)): the ratio
    // e(1e6)/e(1e5) is ln(1e5)/ln(1e6) = 5/6 up to the O(1/ln t) correction (5%).
    rows.push(
        Row::rel(
            "lifted GD: direction error ratio e(1e6)/e(1e5) = ln 1e5 / ln 1e6",
            5.0 / 6.0,
            proj[1].2 / proj[0].2,
            0.05,
        )
        .note("logarithmic convergence in direction with a bounded rho"),
    );
    let lifted_dir = {
        let p = wh.rows(0, 5) - wh.rows(5, 5);
        p.normalize()
    };
    let cos = lifted_dir.dot(&plain.w.normalize());
    rows.push(Row::holds(
        "lifted max-margin P - Q differs from the plain SVM direction (cos < 1 - 1e-6)",
        cos < 1.0 - 1e-6,
        format!("cos = {cos:.6}"),
    ));
    Ok(rows)
}

/// One reference run of THEORY II.2: d = 5, n = 40, 10 + 10 leaky-ReLU neurons (alpha = 0.2), GD
/// eta = 0.5 on the mean logistic loss for `steps` steps from init std `init`. Returns (clusters
/// per sign (+, -), fraction of 1e4 fresh test points with sign N(x) = sign((P - Q).x)).
pub fn reference_run(seed: u64, init: f64, steps: usize) -> Result<(usize, usize, f64)> {
    let (x, y, _) = teacher_data(40, 5, 0.1, seed);
    let s = StudentSettings {
        k: 10,
        alpha: 0.2,
        eta: 0.5,
        steps,
    };
    let r = reference_run_on(&x, &y, &s, init, 10_000, seed + 2000, |_, _, _| {})?;
    if std::env::var_os("MODEFLOW_DEBUG_CLUSTERS").is_some() {
        eprintln!(
            "merge heights +: {}",
            super::stats::fmt_list(&r.clusters.0.heights)
        );
        eprintln!(
            "merge heights -: {}",
            super::stats::fmt_list(&r.clusters.1.heights)
        );
    }
    Ok((r.clusters.0.count, r.clusters.1.count, r.linear_fraction))
}

/// Outcome of [`reference_run_on`].
pub struct ReferenceOutcome {
    /// cosine clusters of the w_j (+) and of the u_j (-)
    pub clusters: (super::cluster::ClusterCount, super::cluster::ClusterCount),
    /// fraction of fresh Gaussian test points with sign N(x) = sign((P - Q).x)
    pub linear_fraction: f64,
    /// P = sum w_j, Q = sum u_j
    pub p: DVector<f64>,
    pub q: DVector<f64>,
    /// the fresh test points (n_test x d)
    pub test: DMatrix<f64>,
    pub net: TwoLayer,
}

/// [`reference_run`] on given data: init std `init`, `n_test` fresh N(0, I) test points, both
/// drawn from `StdRng::seed_from_u64(rng_seed)`; `observe(step, net, loss)` after every step.
/// Errors: non-finite loss ([`Error::Diverged`]), a zero neuron (cannot be clustered).
pub fn reference_run_on(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    s: &StudentSettings,
    init: f64,
    n_test: usize,
    rng_seed: u64,
    mut observe: impl FnMut(usize, &TwoLayer, f64),
) -> Result<ReferenceOutcome> {
    let StudentSettings {
        k,
        alpha,
        eta,
        steps,
    } = *s;
    let (n, d) = (x.nrows(), x.ncols());
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let w0 = DMatrix::from_fn(d, 2 * k, |_, _| init * rng.sample::<f64, _>(StandardNormal));
    let mut net = student(w0, k, alpha);
    let mut work = TwoLayerWork::new(n, 2 * k);
    let mut g = TwoLayerGrad::zeros(d, 2 * k);
    for step in 0..steps {
        let l = first_layer_step(&mut net, x, y, eta, &mut work, &mut g)?;
        if !l.is_finite() || !net.w.iter().all(|v| v.is_finite()) {
            return Err(Error::Diverged {
                what: "reference GD".into(),
                step,
                loss: l,
                hint: "reduce eta".into(),
            });
        }
        observe(step, &net, l);
    }
    let cols = |r: std::ops::Range<usize>| -> Vec<DVector<f64>> {
        r.map(|c| net.w.column(c).into_owned()).collect()
    };
    let ccp = super::cluster::cosine_clusters(&cols(0..k))?;
    let ccn = super::cluster::cosine_clusters(&cols(k..2 * k))?;
    let p: DVector<f64> = cols(0..k).iter().sum();
    let q: DVector<f64> = cols(k..2 * k).iter().sum();
    let xt = DMatrix::from_fn(n_test, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let f = net.predict(&xt);
    let lin = &xt * (&p - &q);
    let agree = (0..n_test)
        .filter(|&i| f[i].signum() == lin[i].signum())
        .count() as f64
        / n_test.max(1) as f64;
    Ok(ReferenceOutcome {
        clusters: (ccp, ccn),
        linear_fraction: agree,
        p,
        q,
        test: xt,
        net,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b3_b4_b5_checks_pass() {
        for row in check_b3()
            .unwrap()
            .into_iter()
            .chain(check_b4().unwrap())
            .chain(check_b5().unwrap())
        {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
