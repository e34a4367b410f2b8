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
use serde::Serialize;

use super::nets::{sigmoid, Activation, Loss, TwoLayer, TwoLayerGrad, TwoLayerWork};
use crate::num::iterate::{iterate, After, Observer, Outcome, Problem, Stepper, Stop};
use crate::{Error, Result};

mod reference;

pub use reference::{
    reference_run, reference_run_on, reference_trace, RefData, ReferenceOutcome, ReferenceRun,
};

/// Linearly separable data from a unit teacher w* with |w*.x| >= margin (rejection sampling of
/// Gaussian x). Returns (X n x d, y, w*).
pub fn teacher_data(
    n: usize,
    d: usize,
    margin: f64,
    seed: u64,
) -> (DMatrix<f64>, DVector<f64>, DVector<f64>) {
    teacher_sample(n, d, margin, Inputs::Gaussian, seed)
}

/// Distribution of the inputs x before the margin rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Inputs {
    /// x ~ N(0, I_d): |x| ~ sqrt(d), so the margin relative to the radius is ~ margin / sqrt(d).
    Gaussian,
    /// x uniform on the unit sphere: the margin is the normalised margin gamma / R.
    Sphere,
}

/// Teacher data as in [`teacher_data`] with a choice of input distribution (the Gaussian case
/// draws exactly the same numbers as [`teacher_data`]).
pub fn teacher_sample(
    n: usize,
    d: usize,
    margin: f64,
    inputs: Inputs,
    seed: u64,
) -> (DMatrix<f64>, DVector<f64>, DVector<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let w = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal)).normalize();
    let mut x = DMatrix::zeros(n, d);
    let mut y = DVector::zeros(n);
    let mut i = 0;
    while i < n {
        let mut v = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
        if inputs == Inputs::Sphere {
            v.normalize_mut();
        }
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

/// The mean logistic loss of the +-1 student on (x, y), full batch.
struct StudentLoss<'a> {
    x: &'a DMatrix<f64>,
    y: &'a DVector<f64>,
    work: TwoLayerWork,
}

impl Problem for StudentLoss<'_> {
    type Params = TwoLayer;
    type Grad = TwoLayerGrad;
    fn loss_grad(&mut self, _: usize, net: &TwoLayer, g: &mut TwoLayerGrad) -> Result<f64> {
        net.grad_into(self.x, self.y, Loss::Logistic, &mut self.work, g)
    }
    fn loss(&mut self, net: &TwoLayer) -> Result<Option<f64>> {
        net.loss(self.x, self.y, Loss::Logistic).map(Some)
    }
}

/// [`FirstLayerGd`] of step `eta` on the student loss of (x, y) for `steps` steps from `net`,
/// with `observer` (the driver's stopping and divergence rules: a non-finite loss, before a
/// step or at the end, is [`Error::Diverged`] named `what`).
fn run_student<O: for<'a> Observer<StudentLoss<'a>>>(
    net: &mut TwoLayer,
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    eta: f64,
    steps: usize,
    what: &str,
    observer: &mut O,
) -> Result<Outcome> {
    let mut problem = StudentLoss {
        x,
        y,
        work: TwoLayerWork::new(x.nrows(), net.k()),
    };
    let mut g = TwoLayerGrad::zeros(x.ncols(), net.k());
    let stop = Stop::steps(steps, what).hint("reduce eta");
    iterate(
        &mut problem,
        &mut FirstLayerGd { eta },
        net,
        &mut g,
        &stop,
        observer,
    )
}

/// GD on the first layer only (the second layer stays at +-1).
struct FirstLayerGd {
    eta: f64,
}

impl Stepper<StudentLoss<'_>> for FirstLayerGd {
    fn step(&mut self, _: usize, _: f64, net: &mut TwoLayer, g: &TwoLayerGrad) -> Result<()> {
        let eta = self.eta;
        net.w.zip_apply(&g.w, |w, gw| *w -= eta * gw);
        Ok(())
    }
}

/// Train the first layer of the +-1 student `net` by `steps` GD steps of size `eta` on the mean
/// logistic loss of (x, y); returns the loss before the last step. `what` names the run in a
/// divergence error.
pub fn train_first_layer(
    net: &mut TwoLayer,
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    eta: f64,
    steps: usize,
    what: &str,
) -> Result<f64> {
    let out = run_student(net, x, y, eta, steps, what, &mut ())?;
    Ok(out.last_step_loss)
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

/// Settings of a +-1 student run (THEORY II.2): k neurons per sign, leaky slope alpha, GD step
/// eta on the mean logistic loss (first layer only), `steps` steps.
#[derive(Debug, Clone, Copy)]
pub struct StudentSettings {
    pub k: usize,
    pub alpha: f64,
    pub eta: f64,
    pub steps: usize,
}

/// Train in the agreement regime and compare with lifted GD of step k eta (B-4, B-5): init
/// w_j = w* + `noise` xi_j, u_j = -w* + `noise` xi'_j (xi from `StdRng::seed_from_u64(rng_seed)`),
/// where `ws` separates the data (sign(ws . x_i) = y_i). Errors if that init is not in the
/// agreement regime.
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
    let (mut drift, mut gap): (f64, f64) = (0.0, 0.0);
    let mut agreed = true;
    // after every GD step of the net: one lifted GD step, and the B-4/B-5 measurements
    let mut lifted = After(|_: usize, net: &TwoLayer, _: f64| {
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
        agreed &= in_agreement(net, x, y);
        let scale = net.w.amax();
        drift = drift.max((diffs(net) - &d0).amax() / scale);
        let pq = DVector::from_fn(2 * d, |r, _| {
            let (lo, hi) = if r < d { (0, k) } else { (k, 2 * k) };
            (lo..hi).map(|c| net.w[(r % d, c)]).sum::<f64>()
        });
        gap = gap.max((&pq - &theta).amax() / theta.amax());
    });
    run_student(
        &mut net,
        x,
        y,
        eta,
        steps,
        "agreement-regime GD",
        &mut lifted,
    )?;
    Ok(AgreementRun {
        drift,
        agreed,
        lift_gap: gap,
        net,
    })
}

/// B-3 on random sums: P, Q ~ N(0, I_d), then `n_test` fresh N(0, I_d) points, all drawn (in
/// that order) from `StdRng::seed_from_u64(rng_seed)`. Returns the fraction of the points on
/// which the exactly clustered net w_j = P/k, u_j = Q/k has sign N(x) = sign((P - Q) . x)
/// (1 by the B-3 lemma; ties have probability 0).
pub fn random_clusters_linear_fraction(
    d: usize,
    k: usize,
    alpha: f64,
    n_test: usize,
    rng_seed: u64,
) -> f64 {
    let mut rng = StdRng::seed_from_u64(rng_seed);
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
    let xt = DMatrix::from_fn(n_test, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let f = net.predict(&xt);
    let lin = &xt * (&p - &q);
    (0..n_test)
        .filter(|&i| f[i].signum() == lin[i].signum())
        .count() as f64
        / n_test as f64
}

/// Tolerance of the hard-margin SVMs of [`lifted_direction`] (the plain and the lifted max-margin
/// directions): far below the direction errors measured (~1e-2) and above rounding.
const LIFTED_SVM_TOL: f64 = 1e-13;

/// Lifted GD at one checkpoint t of [`lifted_direction`].
#[derive(Debug, Clone, Copy)]
pub struct LiftedCheckpoint {
    /// GD steps taken
    pub t: usize,
    /// theta . w_hat / |w_hat|^2: the component along the lifted max-margin solution w_hat (grows
    /// like ln t)
    pub along: f64,
    /// |theta - along w_hat|: the rest (bounded)
    pub across: f64,
    /// |theta/|theta| - w_hat/|w_hat||: the direction error (shrinks like 1/ln t)
    pub direction_error: f64,
}

/// What [`lifted_direction`] measured.
#[derive(Debug, Clone)]
pub struct LiftedDirection {
    pub checkpoints: Vec<LiftedCheckpoint>,
    /// cos(P* - Q*, plain SVM direction) of the lifted max-margin solution (P*, Q*)
    pub cos_lifted_plain: f64,
}

/// B-5's direction: GD of step `eta` on the mean logistic loss of the lifted linear problem
/// (theta . phi_i, [`lifted_features`]) from theta = 0, measured at the increasing `checkpoints`
/// against the lifted max-margin solution; and the cosine of its P - Q part with the plain SVM
/// direction. Errors if the data or the lifted data are not separable.
pub fn lifted_direction(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    alpha: f64,
    eta: f64,
    checkpoints: &[usize],
) -> Result<LiftedDirection> {
    let (n, d) = (x.nrows(), x.ncols());
    let phi = lifted_features(x, y, alpha);
    let wh = super::solvers::hard_margin_svm(&phi, y, LIFTED_SVM_TOL)?.w;
    let plain = super::solvers::hard_margin_svm(x, y, LIFTED_SVM_TOL)?.w;
    // z_i = y_i phi_i: the margins are z theta and the gradient is -(1/n) z^T sigmoid(-z theta)
    let z = DMatrix::from_fn(n, 2 * d, |i, c| y[i] * phi[(i, c)]);
    let mut theta = DVector::zeros(2 * d);
    let mut s = DVector::zeros(n);
    let mut t = 0;
    let mut out = Vec::with_capacity(checkpoints.len());
    for &cp in checkpoints {
        while t < cp {
            s.gemv(1.0, &z, &theta, 0.0);
            s.apply(|v| *v = 1.0 / (1.0 + v.exp()));
            theta.gemv_tr(eta / n as f64, &z, &s, 1.0);
            t += 1;
        }
        if !theta.iter().all(|v| v.is_finite()) {
            return Err(Error::Diverged {
                what: "lifted GD".into(),
                step: t,
                loss: f64::NAN,
                hint: "reduce lifted_eta".into(),
            });
        }
        let along = theta.dot(&wh) / wh.norm_squared();
        out.push(LiftedCheckpoint {
            t,
            along,
            across: (&theta - &wh * along).norm(),
            direction_error: (&theta.normalize() - wh.normalize()).norm(),
        });
    }
    let lifted_pq = (wh.rows(0, d) - wh.rows(d, d)).normalize();
    Ok(LiftedDirection {
        checkpoints: out,
        cos_lifted_plain: lifted_pq.dot(&plain.normalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teacher_sample_inputs_and_margin() {
        let (x, y, w) = teacher_sample(50, 5, 0.3, Inputs::Sphere, 7);
        for i in 0..50 {
            let xi = x.row(i).transpose();
            assert!((xi.norm() - 1.0).abs() < 1e-12);
            assert!(y[i] * xi.dot(&w) >= 0.3);
        }
        let a = teacher_data(30, 4, 0.1, 3);
        let b = teacher_sample(30, 4, 0.1, Inputs::Gaussian, 3);
        assert_eq!((a.0, a.1), (b.0, b.1));
    }
}
