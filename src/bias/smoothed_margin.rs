//! Smoothed margin of homogeneous nets (THEORY II.3, B-7; Lyu & Li 2020). For the two-layer ReLU
//! net f(x) = sum_j a_j relu(w_j . x), homogeneous of degree L = 2 in theta = (W, a), and the
//! exponential loss L(theta) = sum_i exp(-y_i f(x_i)), the smoothed margin
//! gamma~(theta) = ln(1/L) / |theta|^2 never decreases under GF once L < 1; |theta| grows like
//! (ln t)^{1/2} and the direction converges: cos(theta(t), theta(2t)) -> 1.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::nets::{Activation, FullBatch, Loss, TwoLayer, TwoLayerGrad};
use crate::num::iterate::{iterate, Gd, Observer, Stop};
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

/// The observer of [`smoothed_margin_run_on`]: before every step t, the smoothed margin
/// gamma~ = ln(1/L) / |theta|^2 (L the summed loss, `n` times the mean) once L < 1, and theta at
/// the checkpoints.
struct Margins<'c> {
    n: f64,
    checkpoints: &'c [usize],
    t0: Option<usize>,
    prev: f64,
    worst: f64,
    samples: Vec<(usize, f64, f64)>,
    thetas: Vec<DVector<f64>>,
}

impl<'a> Observer<FullBatch<'a>> for Margins<'_> {
    fn before(&mut self, t: usize, net: &TwoLayer, _: &TwoLayerGrad, mean: f64) -> Result<()> {
        let sum = mean * self.n;
        let th2 = net.w.norm_squared() + net.a.norm_squared();
        if sum < 1.0 {
            let gamma = (1.0 / sum).ln() / th2;
            if self.t0.is_none() {
                self.t0 = Some(t);
            } else {
                self.worst = self.worst.max((self.prev - gamma) / self.prev);
            }
            self.prev = gamma;
        }
        if self.checkpoints.contains(&t) {
            self.samples.push((t, (1.0 / sum).ln() / th2, th2));
            self.thetas.push(flatten(net));
        }
        Ok(())
    }
}

/// GD on the mean exponential loss with step eta (equivalently step eta/n on the sum) on data
/// (rows of `x`, labels +-1), recording the smoothed margin every step after L < 1 and theta at
/// `checkpoints`.
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
    let mut m = Margins {
        n: n as f64,
        checkpoints,
        t0: None,
        prev: f64::NAN,
        worst: f64::NEG_INFINITY,
        samples: Vec::new(),
        thetas: Vec::new(),
    };
    // steps + 1 GD steps: the measurement before each, the last at t = steps
    iterate(
        &mut FullBatch::new(x, y, Loss::Exponential, k),
        &mut Gd { eta, lambda: 0.0 },
        &mut net,
        &mut TwoLayerGrad::zeros(d, k),
        &Stop::steps(steps + 1, "smoothed-margin GD").hint("reduce eta"),
        &mut m,
    )?;
    let Margins {
        t0,
        worst,
        samples,
        thetas,
        ..
    } = m;
    let t0 =
        t0.ok_or_else(|| Error::Requirement("loss never fell below 1: train longer".into()))?;
    Ok(MarginRun {
        t0,
        max_rel_decrease: worst,
        samples,
        thetas,
    })
}
