//! The THEORY II.2 reference runs of the +-1 student from small init: the agreement regime per
//! neuron (B-4's condition) along training, the lifted GD (B-5) once all neurons agree, cluster
//! counts and the linear boundary on fresh points (B-3).

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

use super::{
    lifted_features, run_student, student, teacher_sample, Inputs, StudentLoss, StudentSettings,
};
use crate::bias::cluster::{cosine_clusters, ClusterCount};
use crate::bias::nets::{sigmoid, TwoLayer, TwoLayerGrad};
use crate::num::iterate::{After, Observer};
use crate::Result;

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
            crate::bias::stats::fmt_list(&r.clusters_pos.heights)
        );
        eprintln!(
            "merge heights -: {}",
            crate::bias::stats::fmt_list(&r.clusters_neg.heights)
        );
    }
    Ok((r.clusters_pos.count, r.clusters_neg.count, r.linear))
}

/// Outcome of [`reference_run_on`].
pub struct ReferenceOutcome {
    /// cosine clusters of the w_j (+) and of the u_j (-)
    pub clusters: (ClusterCount, ClusterCount),
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
/// Errors: non-finite loss ([`crate::Error::Diverged`]), a zero neuron (cannot be clustered).
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
    let ccp = cosine_clusters(&cols(0..k))?;
    let ccn = cosine_clusters(&cols(k..2 * k))?;
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
