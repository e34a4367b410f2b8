//! Exact balance laws (THEORY II.1, B-1 and B-2).
//!
//! For a 1-homogeneous activation, w_j . grad_{w_j} L = a_j dL/da_j for every loss and every
//! minibatch (rescaling symmetry w_j -> c w_j, a_j -> a_j / c). Expanding one (S)GD step with
//! weight decay lambda, theta' = (1 - eta lambda) theta - eta g, the cross terms cancel and
//!
//!   D_j' = (1 - eta lambda)^2 D_j + eta^2 (|grad_{w_j} L_B|^2 - (dL_B/da_j)^2),  D_j = |w_j|^2 - a_j^2
//!
//! exactly. The same cancellation gives the deep-linear matrices M_l and the RNN charge Q_j.
//! The runners below train and compare every step against this prediction; the residual is
//! measured relative to the per-unit scale |w_j|^2 + a_j^2 (the size of the rounding error of
//! D_j itself).

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

use super::nets::{
    balance_matrices, Activation, DeepLinear, Loss, ReluRnn, RnnGrad, TwoLayer, TwoLayerGrad,
    TwoLayerWork,
};
use crate::num::iterate::{iterate, After, Gd, Minibatches, Observer, Problem, Stop};
use crate::Result;

/// Result of a balance run: the worst per-step identity residual and the total drift.
#[derive(Debug, Clone, Serialize)]
pub struct BalanceRun {
    /// max over steps and units of |D_measured' - D_predicted'| / scale.
    pub max_residual: f64,
    /// sum_j |D_j(T) - D_j(0)| (no weight decay: the accumulated eta^2 terms).
    pub drift: f64,
    pub steps: usize,
    pub final_loss: f64,
}

/// Settings of a two-layer (S)GD run.
#[derive(Debug, Clone, Copy)]
pub struct SgdSettings {
    pub eta: f64,
    /// weight decay lambda
    pub lambda: f64,
    /// minibatch size (n = full-batch GD)
    pub batch: usize,
    pub steps: usize,
    pub seed: u64,
}

/// Train a two-layer net with (S)GD (reshuffled minibatches) and check the B-1 identity at
/// every step.
pub fn two_layer_run(
    net: &mut TwoLayer,
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    loss: Loss,
    s: &SgdSettings,
) -> Result<BalanceRun> {
    two_layer_run_observed(net, x, y, loss, s, |_, _, _| {})
}

/// A per-unit quantity that one (S)GD step with weight decay changes by exactly
/// X_j' = (1 - eta lambda)^2 X_j + eta^2 form_j(g): the balance D_j of the two-layer net, the
/// charge Q_j of the ReLU RNN.
trait UnitLaw {
    type Grad;
    /// X_j.
    fn law(&self) -> DVector<f64>;
    /// The size against which rounding in X_j is measured.
    fn law_scale(&self) -> DVector<f64>;
    /// The quadratic form of the eta^2 term, evaluated on the gradient.
    fn form(g: &Self::Grad) -> DVector<f64>;
}

impl UnitLaw for TwoLayer {
    type Grad = TwoLayerGrad;
    fn law(&self) -> DVector<f64> {
        self.balance()
    }
    fn law_scale(&self) -> DVector<f64> {
        self.scale()
    }
    fn form(g: &TwoLayerGrad) -> DVector<f64> {
        g.balance_form()
    }
}

impl UnitLaw for ReluRnn {
    type Grad = RnnGrad;
    fn law(&self) -> DVector<f64> {
        self.charge()
    }
    fn law_scale(&self) -> DVector<f64> {
        self.charge_scale()
    }
    fn form(g: &RnnGrad) -> DVector<f64> {
        g.charge_form()
    }
}

/// Observer: the worst per-step residual of a [`UnitLaw`], relative to max(scale before, scale
/// after) of each unit.
struct UnitResidual {
    decay2: f64,
    eta: f64,
    before: DVector<f64>,
    scale_before: DVector<f64>,
    form: DVector<f64>,
    max_res: f64,
}

impl UnitResidual {
    fn new(eta: f64, lambda: f64) -> Self {
        UnitResidual {
            decay2: (1.0 - eta * lambda).powi(2),
            eta,
            before: DVector::zeros(0),
            scale_before: DVector::zeros(0),
            form: DVector::zeros(0),
            max_res: 0.0,
        }
    }
}

impl<P, N> Observer<P> for UnitResidual
where
    N: UnitLaw,
    P: Problem<Params = N, Grad = N::Grad>,
{
    fn before(&mut self, _: usize, net: &N, g: &N::Grad, _: f64) -> Result<()> {
        self.before = net.law();
        self.scale_before = net.law_scale();
        self.form = N::form(g);
        Ok(())
    }

    fn after(&mut self, _: usize, net: &N, _: &N::Grad, _: f64) -> Result<()> {
        let after = net.law();
        let scale_after = net.law_scale();
        for j in 0..after.len() {
            let pred = self.decay2 * self.before[j] + self.eta * self.eta * self.form[j];
            let scale = self.scale_before[j]
                .max(scale_after[j])
                .max(f64::MIN_POSITIVE);
            self.max_res = self.max_res.max((after[j] - pred).abs() / scale);
        }
        Ok(())
    }
}

/// The two-layer net's loss on reshuffled minibatches (the whole set when `batch` = n).
struct TwoLayerProblem<'a> {
    x: &'a DMatrix<f64>,
    y: &'a DVector<f64>,
    loss: Loss,
    xb: DMatrix<f64>,
    yb: DVector<f64>,
    work: TwoLayerWork,
    batches: Minibatches,
}

impl Problem for TwoLayerProblem<'_> {
    type Params = TwoLayer;
    type Grad = TwoLayerGrad;

    fn loss_grad(&mut self, _: usize, net: &TwoLayer, g: &mut TwoLayerGrad) -> Result<f64> {
        if self.batches.full() {
            self.xb.copy_from(self.x);
            self.yb.copy_from(self.y);
        } else {
            for (r, &i) in self.batches.next_batch().iter().enumerate() {
                self.xb.row_mut(r).copy_from(&self.x.row(i));
                self.yb[r] = self.y[i];
            }
        }
        net.grad_into(&self.xb, &self.yb, self.loss, &mut self.work, g)
    }
}

/// [`two_layer_run`] calling `observe(step, net, batch loss)` after every step (for time series).
pub fn two_layer_run_observed(
    net: &mut TwoLayer,
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    loss: Loss,
    s: &SgdSettings,
    observe: impl FnMut(usize, &TwoLayer, f64),
) -> Result<BalanceRun> {
    let (n, d, k) = (x.nrows(), x.ncols(), net.k());
    let batches = Minibatches::new(n, s.batch, StdRng::seed_from_u64(s.seed), "minibatch")?;
    let mut problem = TwoLayerProblem {
        x,
        y,
        loss,
        xb: DMatrix::zeros(s.batch, d),
        yb: DVector::zeros(s.batch),
        work: TwoLayerWork::new(s.batch, k),
        batches,
    };
    let mut g = TwoLayerGrad::zeros(d, k);
    let d0 = net.balance();
    let mut observers = (UnitResidual::new(s.eta, s.lambda), After(observe));
    let out = iterate(
        &mut problem,
        &mut Gd {
            eta: s.eta,
            lambda: s.lambda,
        },
        net,
        &mut g,
        &Stop::steps(s.steps, "two-layer (S)GD"),
        &mut observers,
    )?;
    Ok(BalanceRun {
        max_residual: observers.0.max_res,
        drift: (net.balance() - d0).abs().sum(),
        steps: s.steps,
        final_loss: out.last_step_loss,
    })
}

/// Full-batch square loss of a deep linear net.
struct DeepLinearProblem<'a> {
    x: &'a DMatrix<f64>,
    y: &'a DMatrix<f64>,
}

impl Problem for DeepLinearProblem<'_> {
    type Params = DeepLinear;
    type Grad = Vec<DMatrix<f64>>;

    fn loss_grad(&mut self, _: usize, net: &DeepLinear, g: &mut Vec<DMatrix<f64>>) -> Result<f64> {
        let (loss, grad) = net.loss_grad(self.x, self.y)?;
        *g = grad;
        Ok(loss)
    }
}

/// Observer: the worst per-step residual of the deep-linear matrix law, entrywise, relative to
/// |W_{l+1}|_F^2 + |W_l|_F^2 after the step.
struct MatrixResidual {
    decay2: f64,
    eta: f64,
    before: Vec<DMatrix<f64>>,
    form: Vec<DMatrix<f64>>,
    max_res: f64,
}

impl<P: Problem<Params = DeepLinear, Grad = Vec<DMatrix<f64>>>> Observer<P> for MatrixResidual {
    fn before(&mut self, _: usize, net: &DeepLinear, g: &Vec<DMatrix<f64>>, _: f64) -> Result<()> {
        self.before = net.balance();
        self.form = balance_matrices(g);
        Ok(())
    }

    fn after(&mut self, _: usize, net: &DeepLinear, _: &Vec<DMatrix<f64>>, _: f64) -> Result<()> {
        let after = net.balance();
        for (l, (before, after)) in self.before.iter().zip(&after).enumerate() {
            let scale = (net.layers[l].norm_squared() + net.layers[l + 1].norm_squared())
                .max(f64::MIN_POSITIVE);
            let pred = before * self.decay2 + &self.form[l] * (self.eta * self.eta);
            self.max_res = self.max_res.max((after - pred).amax() / scale);
        }
        Ok(())
    }
}

/// Train a deep linear net by GD and check M_l' = (1 - eta lambda)^2 M_l + eta^2 (G_{l+1}^T
/// G_{l+1} - G_l G_l^T) entrywise, relative to the scale |W_{l+1}|_F^2 + |W_l|_F^2.
pub fn deep_linear_run(
    net: &mut DeepLinear,
    x: &DMatrix<f64>,
    y: &DMatrix<f64>,
    eta: f64,
    lambda: f64,
    steps: usize,
) -> Result<BalanceRun> {
    let m0 = net.balance();
    let mut residual = MatrixResidual {
        decay2: (1.0 - eta * lambda).powi(2),
        eta,
        before: Vec::new(),
        form: Vec::new(),
        max_res: 0.0,
    };
    let out = iterate(
        &mut DeepLinearProblem { x, y },
        &mut Gd { eta, lambda },
        net,
        &mut Vec::new(),
        &Stop::steps(steps, "deep linear GD"),
        &mut residual,
    )?;
    let drift = net
        .balance()
        .iter()
        .zip(&m0)
        .map(|(a, b)| (a - b).norm())
        .sum();
    Ok(BalanceRun {
        max_residual: residual.max_res,
        drift,
        steps,
        final_loss: out.last_step_loss,
    })
}

/// Full-batch BPTT square loss of a ReLU RNN.
struct RnnProblem<'a> {
    xs: &'a [DMatrix<f64>],
    targets: &'a [DMatrix<f64>],
}

impl Problem for RnnProblem<'_> {
    type Params = ReluRnn;
    type Grad = RnnGrad;

    fn loss_grad(&mut self, _: usize, net: &ReluRnn, g: &mut RnnGrad) -> Result<f64> {
        let (loss, grad) = net.loss_grad(self.xs, self.targets)?;
        *g = grad;
        Ok(loss)
    }
}

/// Train a ReLU RNN by BPTT-GD and check Q_j' = (1 - eta lambda)^2 Q_j + eta^2 Q_j(grad).
pub fn rnn_run(
    net: &mut ReluRnn,
    xs: &[DMatrix<f64>],
    targets: &[DMatrix<f64>],
    eta: f64,
    lambda: f64,
    steps: usize,
) -> Result<BalanceRun> {
    let q0 = net.charge();
    let mut g = RnnGrad {
        w: net.w.clone(),
        u: net.u.clone(),
        b: net.b.clone(),
        v: net.v.clone(),
        c: net.c.clone(),
    };
    let mut residual = UnitResidual::new(eta, lambda);
    let out = iterate(
        &mut RnnProblem { xs, targets },
        &mut Gd { eta, lambda },
        net,
        &mut g,
        &Stop::steps(steps, "ReLU RNN BPTT-GD"),
        &mut residual,
    )?;
    Ok(BalanceRun {
        max_residual: residual.max_res,
        drift: (net.charge() - q0).abs().sum(),
        steps,
        final_loss: out.last_step_loss,
    })
}

/// A random two-layer net (entries N(0, s^2)) and regression/classification data.
pub fn random_two_layer(
    rng: &mut StdRng,
    d: usize,
    k: usize,
    n: usize,
    act: Activation,
    loss: Loss,
    init: f64,
) -> (TwoLayer, DMatrix<f64>, DVector<f64>) {
    let w = DMatrix::from_fn(d, k, |_, _| init * rng.sample::<f64, _>(StandardNormal));
    let a = DVector::from_fn(k, |_, _| init * rng.sample::<f64, _>(StandardNormal));
    let x = DMatrix::from_fn(n, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let y = match loss {
        Loss::Square => DVector::from_fn(n, |_, _| rng.sample::<f64, _>(StandardNormal)),
        _ => DVector::from_fn(n, |_, _| if rng.random::<bool>() { 1.0 } else { -1.0 }),
    };
    (TwoLayer { w, a, act }, x, y)
}

/// A random deep linear net with layer widths `widths` (d_0 -> d_1 -> ... -> d_L, entries
/// N(0, init^2), drawn layer by layer) and regression data: inputs X (d_0 x n) and targets
/// Y (d_L x n), entries N(0, 1), drawn after the layers.
pub fn random_deep_linear(
    rng: &mut StdRng,
    widths: &[usize],
    n: usize,
    init: f64,
) -> (DeepLinear, DMatrix<f64>, DMatrix<f64>) {
    let net = DeepLinear {
        layers: widths
            .windows(2)
            .map(|w| {
                DMatrix::from_fn(w[1], w[0], |_, _| {
                    init * rng.sample::<f64, _>(StandardNormal)
                })
            })
            .collect(),
    };
    let x = DMatrix::from_fn(widths[0], n, |_, _| rng.sample::<f64, _>(StandardNormal));
    let y = DMatrix::from_fn(widths[widths.len() - 1], n, |_, _| {
        rng.sample::<f64, _>(StandardNormal)
    });
    (net, x, y)
}

/// A random ReLU RNN with a batch of random sequences and targets.
pub fn random_rnn(
    rng: &mut StdRng,
    nh: usize,
    m: usize,
    p: usize,
    steps: usize,
    bsz: usize,
) -> (ReluRnn, Vec<DMatrix<f64>>, Vec<DMatrix<f64>>) {
    let mut rm = |r: usize, c: usize, s: f64| {
        DMatrix::from_fn(r, c, |_, _| s * rng.sample::<f64, _>(StandardNormal))
    };
    let net = ReluRnn {
        w: rm(nh, nh, 0.5 / (nh as f64).sqrt()),
        u: rm(nh, m, 1.0),
        b: rm(nh, 1, 0.3).column(0).into(),
        v: rm(p, nh, 1.0 / (nh as f64).sqrt()),
        c: rm(p, 1, 0.1).column(0).into(),
    };
    let xs = (0..steps).map(|_| rm(m, bsz, 1.0)).collect();
    let ts = (0..steps).map(|_| rm(p, bsz, 1.0)).collect();
    (net, xs, ts)
}

/// B-1 drift summed over `seeds` runs (seeds 0..seeds) of copies of `net0` under SGD with batch
/// `batch` (the full set: GD), loss `loss`, no weight decay, `steps` steps of size `eta`.
#[allow(clippy::too_many_arguments)]
pub fn summed_drift(
    net0: &TwoLayer,
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    loss: Loss,
    eta: f64,
    batch: usize,
    steps: usize,
    seeds: u64,
) -> Result<f64> {
    let mut total = 0.0;
    for seed in 0..seeds {
        let mut net = net0.clone();
        let settings = SgdSettings {
            eta,
            lambda: 0.0,
            batch,
            steps,
            seed,
        };
        total += two_layer_run(&mut net, x, y, loss, &settings)?.drift;
    }
    Ok(total)
}

/// Per-step identity tolerance: the identity is algebraic; measured relative to the unit's
/// scale the residual is a few ulps per step (each D_j is a sum of d + 1 squares, ~d eps).
pub const IDENTITY_TOL: f64 = 1e-12;

/// Drift exponent tolerance (brief: 1 +- 0.05): drift = c1 eta + c2 eta^2 + ..., so the fitted
/// exponent deviates from 1 by O(eta c2/c1); the step sizes are chosen small enough.
pub const EXPONENT_TOL: f64 = 0.05;

/// Step sizes of the drift-exponent fits.
pub const DRIFT_ETAS: [f64; 4] = [0.004, 0.002, 0.001, 0.0005];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn identity_detects_a_wrong_prediction() {
        // Dropping the eta^2 term must show up as a residual far above the tolerance:
        // the check can fail.
        let mut rng = StdRng::seed_from_u64(5);
        let (net, x, y) = random_two_layer(&mut rng, 4, 5, 20, Activation::Relu, Loss::Square, 1.0);
        let mut g = TwoLayerGrad::zeros(4, 5);
        let mut work = TwoLayerWork::new(20, 5);
        net.grad_into(&x, &y, Loss::Square, &mut work, &mut g)
            .unwrap();
        let mut next = net.clone();
        next.step(&g, 0.1, 0.0);
        let err = (next.balance() - net.balance()).amax() / net.scale().max();
        assert!(
            err > 1e3 * IDENTITY_TOL,
            "eta^2 term too small to detect: {err}"
        );
    }

    #[test]
    fn bad_batch_is_a_shape_error() {
        let mut rng = StdRng::seed_from_u64(5);
        let (mut net, x, y) =
            random_two_layer(&mut rng, 4, 5, 20, Activation::Relu, Loss::Square, 1.0);
        let s = SgdSettings {
            eta: 0.1,
            lambda: 0.0,
            batch: 21,
            steps: 1,
            seed: 0,
        };
        assert!(matches!(
            two_layer_run(&mut net, &x, &y, Loss::Square, &s),
            Err(Error::Shape { .. })
        ));
    }

    #[test]
    fn diverging_step_is_an_error() {
        let mut rng = StdRng::seed_from_u64(5);
        let (mut net, x, y) =
            random_two_layer(&mut rng, 4, 5, 20, Activation::Linear, Loss::Square, 1.0);
        let s = SgdSettings {
            eta: 50.0,
            lambda: 0.0,
            batch: 20,
            steps: 200,
            seed: 0,
        };
        assert!(matches!(
            two_layer_run(&mut net, &x, &y, Loss::Square, &s),
            Err(Error::Diverged { .. })
        ));
    }
}
