//! Smoothed margin of homogeneous nets (THEORY II.3, B-7; Lyu & Li 2020). For the two-layer ReLU
//! net f(x) = sum_j a_j relu(w_j . x), homogeneous of degree L = 2 in theta = (W, a), and the
//! exponential loss L(theta) = sum_i exp(-y_i f(x_i)), the smoothed margin
//! gamma~(theta) = ln(1/L) / |theta|^2 never decreases under GF once L < 1; |theta| grows like
//! (ln t)^{1/2} and the direction converges: cos(theta(t), theta(2t)) -> 1.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::agreement::teacher_data;
use super::nets::{Activation, Loss, TwoLayer, TwoLayerGrad, TwoLayerWork};
use crate::{Error, Result};

/// Result of a smoothed-margin run.
#[derive(Debug, Clone)]
pub struct MarginRun {
    /// step at which L (sum) first fell below 1
    pub t0: usize,
    /// max over steps after t0 of (gamma_k - gamma_{k+1}) / gamma_k (positive = a decrease)
    pub max_rel_decrease: f64,
    /// (t, gamma~, |theta|^2) at log-spaced checkpoints
    pub samples: Vec<(usize, f64, f64)>,
    /// theta flattened at the checkpoints
    pub thetas: Vec<DVector<f64>>,
}

fn flatten(net: &TwoLayer) -> DVector<f64> {
    DVector::from_iterator(
        net.w.len() + net.a.len(),
        net.w.iter().chain(net.a.iter()).copied(),
    )
}

/// GD on the mean exponential loss with step eta (equivalently step eta/n on the sum), recording
/// the smoothed margin every step after L < 1 and theta at `checkpoints` (the B-7 reference:
/// n = 40, d = 5, teacher margin 0.3, k = 20, init std 0.2).
pub fn smoothed_margin_run(
    seed: u64,
    eta: f64,
    steps: usize,
    checkpoints: &[usize],
) -> Result<MarginRun> {
    let (x, y, _) = teacher_data(40, 5, 0.3, seed);
    let s = SmoothedMarginSettings {
        k: 20,
        init: 0.2,
        eta,
        steps,
        rng_seed: seed + 77,
    };
    smoothed_margin_run_on(&x, &y, &s, checkpoints)
}

/// Settings of a B-7 run: k ReLU units, both layers N(0, init^2) from
/// `StdRng::seed_from_u64(rng_seed)` (w first, then a), GD step eta, `steps` steps.
#[derive(Debug, Clone, Copy)]
pub struct SmoothedMarginSettings {
    pub k: usize,
    pub init: f64,
    pub eta: f64,
    pub steps: usize,
    pub rng_seed: u64,
}

/// [`smoothed_margin_run`] on given data (rows of `x`, labels +-1).
pub fn smoothed_margin_run_on(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    s: &SmoothedMarginSettings,
    checkpoints: &[usize],
) -> Result<MarginRun> {
    let (n, d, k) = (x.nrows(), x.ncols(), s.k);
    let (eta, steps) = (s.eta, s.steps);
    let mut rng = StdRng::seed_from_u64(s.rng_seed);
    let mut net = TwoLayer {
        w: DMatrix::from_fn(d, k, |_, _| s.init * rng.sample::<f64, _>(StandardNormal)),
        a: DVector::from_fn(k, |_, _| s.init * rng.sample::<f64, _>(StandardNormal)),
        act: Activation::Relu,
    };
    let mut work = TwoLayerWork::new(n, k);
    let mut g = TwoLayerGrad::zeros(d, k);
    let mut t0 = None;
    let mut prev = f64::NAN;
    let mut worst = f64::NEG_INFINITY;
    let mut samples = Vec::new();
    let mut thetas = Vec::new();
    for t in 0..=steps {
        let mean = net.grad_into(x, y, Loss::Exponential, &mut work, &mut g)?;
        let sum = mean * n as f64;
        if !sum.is_finite() {
            return Err(Error::Diverged {
                what: "smoothed-margin GD".into(),
                step: t,
                loss: sum,
                hint: "reduce eta".into(),
            });
        }
        let th2 = net.w.norm_squared() + net.a.norm_squared();
        if sum < 1.0 {
            let gamma = (1.0 / sum).ln() / th2;
            if t0.is_none() {
                t0 = Some(t);
            } else {
                worst = worst.max((prev - gamma) / prev);
            }
            prev = gamma;
        }
        if checkpoints.contains(&t) {
            samples.push((t, (1.0 / sum).ln() / th2, th2));
            thetas.push(flatten(&net));
        }
        net.step(&g, eta, 0.0);
    }
    let t0 =
        t0.ok_or_else(|| Error::Requirement("loss never fell below 1: train longer".into()))?;
    Ok(MarginRun {
        t0,
        max_rel_decrease: worst,
        samples,
        thetas,
    })
}
