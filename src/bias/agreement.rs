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

use super::cluster::{cosine_clusters, ClusterCount};
use super::nets::{sigmoid, Activation, Loss, TwoLayer, TwoLayerGrad, TwoLayerWork};
use crate::num::iterate::{iterate, After, Observer, Outcome, Problem, Stepper, Stop};
use crate::{Error, Result};

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
    run_student(&mut net, x, y, eta, steps, "agreement-regime GD", &mut lifted)?;
    Ok(AgreementRun {
        drift,
        agreed,
        lift_gap: gap,
        net,
    })
}

/// A data set of the THEORY II.2 reference runs: n points in R^d labelled by a unit teacher w*
/// with |w* . x| >= margin ([`teacher_sample`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RefData {
    pub n: usize,
    pub d: usize,
    pub margin: f64,
    pub inputs: Inputs,
}

impl RefData {
    /// The reference of THEORY II.2 as we read it (THEORY does not fix the data): d = 5, n = 40,
    /// Gaussian x, teacher margin 0.1 (normalised margin ~0.1/sqrt(5) ~ 0.045).
    pub const THEORY: RefData = RefData {
        n: 40,
        d: 5,
        margin: 0.1,
        inputs: Inputs::Gaussian,
    };
    /// Well-separated variant: d = 5, n = 40, x uniform on the unit sphere, margin 0.3.
    pub const SEPARATED: RefData = RefData {
        n: 40,
        d: 5,
        margin: 0.3,
        inputs: Inputs::Sphere,
    };

    /// Sample (X, y, w*).
    pub fn sample(&self, seed: u64) -> (DMatrix<f64>, DVector<f64>, DVector<f64>) {
        teacher_sample(self.n, self.d, self.margin, self.inputs, seed)
    }
}

/// Everything measured in one reference run ([`reference_trace`]).
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceRun {
    /// cosine cluster counts of the w_j (+ neurons) and the u_j (- neurons)
    pub clusters_pos: ClusterCount,
    pub clusters_neg: ClusterCount,
    /// fraction of 1e4 fresh Gaussian points with sign N(x) = sign((P - Q) . x)
    pub linear: f64,
    /// fraction of the fresh points on which the w_j, or the u_j, do not all share one sign
    /// (outside this set the B-3 lemma makes the boundary exactly linear)
    pub mixed: f64,
    /// fresh points with sign N(x) != sign((P - Q) . x) although both groups are sign-uniform
    /// (0 by the lemma)
    pub nonlinear_uniform: usize,
    /// (step, number of the 2k neurons in the agreement regime) at steps 1, 10, 100, ..., and the end
    pub agreeing: Vec<(usize, usize)>,
    /// first step of the final unbroken stretch in which all 2k neurons agree (None if they do
    /// not all agree at the end)
    pub agreement_from: Option<usize>,
    /// over that stretch: max |(w_j - w_0)(t) - (w_j - w_0)(t_a)| / max |w| within each sign (B-4)
    pub drift_after: f64,
    /// over that stretch: max |(P, Q)_net - theta| / max |theta| with theta the lifted GD of B-5
    /// (step k eta) started from (P, Q) at the first agreeing step
    pub lift_gap_after: f64,
    /// cluster counts of the neurons that agree at the end, per sign (0 if none)
    pub clusters_agreeing: (usize, usize),
    /// final mean logistic loss
    pub loss: f64,
}

/// Whether `step` is 10, 100, 1000, ...
fn is_decade(step: usize) -> bool {
    let mut p = 10;
    while p < step {
        p *= 10;
    }
    p == step
}

/// Marks in `agree` every neuron in the agreement regime at the current weights (sign of
/// w_j . x_i times a_j equals y_i on every point; `z` is scratch, n x 2k) and counts them.
fn agreement_regime(
    net: &TwoLayer,
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    z: &mut DMatrix<f64>,
    agree: &mut [bool],
) -> usize {
    z.gemm(1.0, x, &net.w, 0.0);
    for (j, a) in agree.iter_mut().enumerate() {
        let s = net.a[j];
        *a = (0..x.nrows()).all(|i| z[(i, j)] * y[i] * s > 0.0);
    }
    agree.iter().filter(|&&a| a).count()
}

/// The observer of [`reference_trace`]: the agreement regime before every step (B-4's
/// condition) and, while all neurons agree, the lifted GD (B-5) and the drift of the
/// within-sign differences after every step. No allocation per step.
struct Tracker<'a> {
    k: usize,
    eta: f64,
    x: &'a DMatrix<f64>,
    y: &'a DVector<f64>,
    /// lifted features phi_i (rows)
    phi: DMatrix<f64>,
    /// scratch n x 2k, and the agreement of each neuron at the last measurement
    z: DMatrix<f64>,
    agree: Vec<bool>,
    /// within-sign differences at the start of the streak
    d0: DMatrix<f64>,
    streak: Option<usize>,
    drift: f64,
    agreeing: Vec<(usize, usize)>,
    /// B-5: lifted GD theta = (P, Q) on phi_i, run alongside once all neurons agree
    theta: DVector<f64>,
    nv: DVector<f64>,
    lift_grad: DVector<f64>,
    gap: f64,
    steps: usize,
}

impl Tracker<'_> {
    /// P (r < d) or Q (r >= d) entry r of the net's first layer.
    fn pq(&self, w: &DMatrix<f64>, r: usize) -> f64 {
        let (d, k) = (self.x.ncols(), self.k);
        let (lo, hi) = if r < d { (0, k) } else { (k, 2 * k) };
        (lo..hi).map(|c| w[(r % d, c)]).sum::<f64>()
    }

    /// The agreement regime at `step` (steps taken); starts or ends the streak.
    fn measure(&mut self, step: usize, net: &TwoLayer) {
        let (d, k) = (self.x.ncols(), self.k);
        let m = agreement_regime(net, self.x, self.y, &mut self.z, &mut self.agree);
        if step == 1 || is_decade(step) || step == self.steps {
            self.agreeing.push((step, m));
        }
        if m == 2 * k {
            if self.streak.is_none() {
                self.streak = Some(step);
                self.drift = 0.0;
                self.gap = 0.0;
                for r in 0..2 * d {
                    self.theta[r] = self.pq(&net.w, r);
                }
                for c in 0..2 * k {
                    let base = if c < k { 0 } else { k };
                    for r in 0..d {
                        self.d0[(r, c)] = net.w[(r, c)] - net.w[(r, base)];
                    }
                }
            }
        } else {
            self.streak = None;
        }
    }

    /// After a GD step of the net, within a streak: one lifted GD step, the gap and the drift.
    fn lift(&mut self, net: &TwoLayer) {
        if self.streak.is_none() {
            return;
        }
        let (n, d, k) = (self.x.nrows(), self.x.ncols(), self.k);
        let y = self.y;
        // lifted GD step: theta <- theta - k eta (1/n) sum_i ell'(theta . phi_i, y_i) phi_i
        self.nv.gemv(1.0, &self.phi, &self.theta, 0.0);
        for i in 0..n {
            self.nv[i] = y[i] * sigmoid(-y[i] * self.nv[i]) / n as f64;
        }
        self.lift_grad.gemv_tr(1.0, &self.phi, &self.nv, 0.0);
        self.theta.axpy(k as f64 * self.eta, &self.lift_grad, 1.0);
        let tscale = self.theta.amax();
        for r in 0..2 * d {
            self.gap = self
                .gap
                .max((self.pq(&net.w, r) - self.theta[r]).abs() / tscale);
        }
        let scale = net.w.amax();
        for c in 0..2 * k {
            let base = if c < k { 0 } else { k };
            for r in 0..d {
                let e = (net.w[(r, c)] - net.w[(r, base)] - self.d0[(r, c)]).abs() / scale;
                self.drift = self.drift.max(e);
            }
        }
    }
}

impl<'a> Observer<StudentLoss<'a>> for Tracker<'_> {
    fn before(&mut self, s: usize, net: &TwoLayer, _: &TwoLayerGrad, _: f64) -> Result<()> {
        self.measure(s, net);
        Ok(())
    }
    fn after(&mut self, _: usize, net: &TwoLayer, _: &TwoLayerGrad, _: f64) -> Result<()> {
        self.lift(net);
        Ok(())
    }
}

/// One reference run of THEORY II.2 with data `data`: 10 + 10 leaky-ReLU neurons (alpha = 0.2),
/// second layer fixed at +-1, GD eta = 0.5 on the mean logistic loss for `steps` steps from init
/// std `init`. Tracks the agreement regime per neuron (B-4's condition) and, once all neurons
/// agree, the drift of the within-sign differences.
pub fn reference_trace(data: &RefData, seed: u64, init: f64, steps: usize) -> Result<ReferenceRun> {
    let (k, alpha, eta) = (10, 0.2, 0.5);
    let (n, d) = (data.n, data.d);
    let (x, y, _) = data.sample(seed);
    let mut rng = StdRng::seed_from_u64(seed + 2000);
    let w0 = DMatrix::from_fn(d, 2 * k, |_, _| init * rng.sample::<f64, _>(StandardNormal));
    let mut net = student(w0, k, alpha);
    let mut t = Tracker {
        k,
        eta,
        phi: lifted_features(&x, &y, alpha),
        x: &x,
        y: &y,
        z: DMatrix::zeros(n, 2 * k),
        agree: vec![false; 2 * k],
        d0: DMatrix::zeros(d, 2 * k),
        streak: None,
        drift: 0.0,
        agreeing: Vec::new(),
        theta: DVector::zeros(2 * d),
        nv: DVector::zeros(n),
        lift_grad: DVector::zeros(2 * d),
        gap: 0.0,
        steps,
    };
    let out = run_student(&mut net, &x, &y, eta, steps, "reference GD", &mut t)?;
    t.measure(steps, &net);
    let loss = out.last_step_loss;
    let Tracker {
        agree,
        streak,
        drift,
        agreeing,
        gap,
        ..
    } = t;
    let m = final_measures(&net, &agree, k, &mut rng)?;
    Ok(ReferenceRun {
        clusters_pos: m.clusters_pos,
        clusters_neg: m.clusters_neg,
        linear: m.linear,
        mixed: m.mixed,
        nonlinear_uniform: m.nonlinear_uniform,
        agreeing,
        agreement_from: streak,
        drift_after: if streak.is_some() { drift } else { f64::NAN },
        lift_gap_after: if streak.is_some() { gap } else { f64::NAN },
        clusters_agreeing: m.clusters_agreeing,
        loss,
    })
}

/// The measurements of a trained reference net ([`ReferenceRun`]'s fields of the same names).
struct FinalMeasures {
    clusters_pos: ClusterCount,
    clusters_neg: ClusterCount,
    clusters_agreeing: (usize, usize),
    linear: f64,
    mixed: f64,
    nonlinear_uniform: usize,
}

/// Cluster counts (all neurons, and those in the agreement regime `agree`, per sign) and the
/// boundary on 1e4 fresh Gaussian points drawn from `rng`.
fn final_measures(
    net: &TwoLayer,
    agree: &[bool],
    k: usize,
    rng: &mut StdRng,
) -> Result<FinalMeasures> {
    let d = net.w.nrows();
    let cols = |r: std::ops::Range<usize>| -> Vec<DVector<f64>> {
        r.map(|c| net.w.column(c).into_owned()).collect()
    };
    let clusters_pos = cosine_clusters(&cols(0..k))?;
    let clusters_neg = cosine_clusters(&cols(k..2 * k))?;
    let agreeing_count = |r: std::ops::Range<usize>| -> Result<usize> {
        let v: Vec<DVector<f64>> = r
            .filter(|&c| agree[c])
            .map(|c| net.w.column(c).into_owned())
            .collect();
        if v.is_empty() {
            Ok(0)
        } else {
            Ok(cosine_clusters(&v)?.count)
        }
    };
    let clusters_agreeing = (agreeing_count(0..k)?, agreeing_count(k..2 * k)?);
    let p: DVector<f64> = cols(0..k).iter().sum();
    let q: DVector<f64> = cols(k..2 * k).iter().sum();
    let nt = 10_000;
    let xt = DMatrix::from_fn(nt, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let f = net.predict(&xt);
    let lin = &xt * (&p - &q);
    let zt = &xt * &net.w;
    let uniform = |i: usize, r: std::ops::Range<usize>| -> bool {
        let s0 = zt[(i, r.start)] > 0.0;
        r.into_iter().all(|c| (zt[(i, c)] > 0.0) == s0)
    };
    let (mut agree_lin, mut mixed, mut nonlinear_uniform) = (0usize, 0usize, 0usize);
    for i in 0..nt {
        let same = f[i].signum() == lin[i].signum();
        agree_lin += usize::from(same);
        if uniform(i, 0..k) && uniform(i, k..2 * k) {
            nonlinear_uniform += usize::from(!same);
        } else {
            mixed += 1;
        }
    }
    Ok(FinalMeasures {
        clusters_pos,
        clusters_neg,
        clusters_agreeing,
        linear: agree_lin as f64 / nt as f64,
        mixed: mixed as f64 / nt as f64,
        nonlinear_uniform,
    })
}

/// One reference run of THEORY II.2 on [`RefData::THEORY`]: d = 5, n = 40, 10 + 10 leaky-ReLU
/// neurons (alpha = 0.2), GD eta = 0.5 on the mean logistic loss for `steps` steps from init std
/// `init`. Returns (clusters per sign (+, -), fraction of 1e4 fresh test points with
/// sign N(x) = sign((P - Q).x)).
pub fn reference_run(seed: u64, init: f64, steps: usize) -> Result<(usize, usize, f64)> {
    let r = reference_trace(&RefData::THEORY, seed, init, steps)?;
    if std::env::var_os("MODEFLOW_DEBUG_CLUSTERS").is_some() {
        eprintln!(
            "merge heights +: {}",
            super::stats::fmt_list(&r.clusters_pos.heights)
        );
        eprintln!(
            "merge heights -: {}",
            super::stats::fmt_list(&r.clusters_neg.heights)
        );
    }
    Ok((r.clusters_pos.count, r.clusters_neg.count, r.linear))
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
    let d = x.ncols();
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let w0 = DMatrix::from_fn(d, 2 * k, |_, _| init * rng.sample::<f64, _>(StandardNormal));
    let mut net = student(w0, k, alpha);
    // observe(step, ..) with step the 0-based index of the step just taken
    let mut obs = After(|s: usize, net: &TwoLayer, l: f64| observe(s - 1, net, l));
    run_student(&mut net, x, y, eta, steps, "reference GD", &mut obs)?;
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

    #[test]
    fn decades() {
        assert!(is_decade(10) && is_decade(100) && is_decade(100_000));
        assert!(!is_decade(0) && !is_decade(1) && !is_decade(20) && !is_decade(110));
    }

    #[test]
    fn reference_trace_short_runs() {
        // well-separated data, small init: every neuron agrees within a few steps, the
        // within-sign differences are frozen from then on (B-4), one cluster per sign
        let r = reference_trace(&RefData::SEPARATED, 0, 1e-3, 2000).unwrap();
        assert!(
            r.agreement_from.is_some_and(|t| t <= 10),
            "{:?}",
            r.agreeing
        );
        assert!(r.drift_after < 1e-13, "{}", r.drift_after);
        assert!(r.lift_gap_after < 1e-13, "{}", r.lift_gap_after);
        assert_eq!((r.clusters_pos.count, r.clusters_neg.count), (1, 1));
        assert_eq!(r.clusters_agreeing, (1, 1));
        // the B-3 lemma on sign-uniform points holds in every run, clustered or not
        for data in [RefData::SEPARATED, RefData::THEORY] {
            let r = reference_trace(&data, 1, 0.3, 500).unwrap();
            assert_eq!(r.nonlinear_uniform, 0);
            assert!(r.linear >= 1.0 - r.mixed);
            assert!(r.agreement_from.is_none() || r.drift_after < 1e-13);
        }
        let (cp, cn, lin) = reference_run(0, 1e-3, 300).unwrap();
        assert!(cp >= 1 && cn >= 1 && (0.0..=1.0).contains(&lin));
    }
}
