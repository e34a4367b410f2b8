//! Width-independence of SGD on over-parameterised leaky-ReLU nets with hinge loss (THEORY II.3,
//! B-9; Brutzkus, Globerson, Malach, Shalev-Shwartz 2018).
//!
//! N(x) = sum_{j=1}^{2k} v_j sigma(w_j . x), v_j = +1/sqrt(k) (j <= k), -1/sqrt(k) (j > k), leaky
//! slope alpha; SGD on the hinge loss max(0, 1 - y N(x)) over reshuffled samples, one sample per
//! step; an update happens only when y N(x) < 1. Count the updates until zero training loss.
//!
//! Why width drops out: from a symmetric init (all w_j of one sign equal) every neuron of a sign
//! gets the same update, and u = sqrt(k) w_+ obeys u <- u + eta y sigma'(u.x) x with N(x) =
//! sigma(u_+.x) - sigma(u_-.x), independent of k. A small random init perturbs this by O(init).

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use rand_distr::StandardNormal;

use super::agreement::{teacher_sample, Inputs};
use crate::num::iterate::{iterate, GradNorm, Problem, Reason, Stepper, Stop};
use crate::{Error, Result};

/// Data on the unit sphere in R^d labelled by a unit teacher with margin |w*.x| >= `margin`.
pub fn sphere_teacher(n: usize, d: usize, margin: f64, seed: u64) -> (DMatrix<f64>, DVector<f64>) {
    let (x, y, _) = teacher_sample(n, d, margin, Inputs::Sphere, seed);
    (x, y)
}

/// Settings of a hinge-loss SGD run.
#[derive(Debug, Clone, Copy)]
pub struct HingeSgd {
    /// neurons per sign
    pub k: usize,
    /// leaky slope
    pub alpha: f64,
    pub eta: f64,
    /// init std of the first layer
    pub init: f64,
    pub seed: u64,
    pub max_updates: usize,
}

/// The network output N(x_i) = sum_j v_j sigma(w_j . x_i) (leaky slope `alpha`), with the
/// pre-activations w_j . x_i left in `z` (one code path for the loss and the SGD step, so both
/// see the same rounding).
fn output(
    w: &DMatrix<f64>,
    x: &DMatrix<f64>,
    i: usize,
    vs: &DVector<f64>,
    alpha: f64,
    z: &mut DVector<f64>,
) -> f64 {
    let xi = x.row(i).transpose();
    z.gemv_tr(1.0, w, &xi, 0.0);
    let mut f = 0.0;
    for j in 0..vs.len() {
        let s = if z[j] > 0.0 { z[j] } else { alpha * z[j] };
        f += vs[j] * s;
    }
    f
}

/// The summed hinge loss sum_i max(0, 1 - y_i N(x_i)) of the first layer `w`, for [`iterate`]:
/// zero exactly when an epoch of [`HingeEpoch`] would make no update (every sample has
/// y N(x) >= 1, the update condition's complement), so the loss tolerance 0 is the stopping
/// rule "an epoch without an update" without running that epoch.
struct HingeLoss<'a> {
    x: &'a DMatrix<f64>,
    y: &'a DVector<f64>,
    vs: &'a DVector<f64>,
    alpha: f64,
    z: DVector<f64>,
}

/// [`HingeEpoch`] takes its own per-sample subgradients: the driver's buffer is empty.
struct PerSample;

impl GradNorm for PerSample {
    /// No full-batch gradient is formed (the gradient tolerance never applies).
    fn grad_norm(&self) -> f64 {
        f64::NAN
    }
    /// No gradient to test: each per-sample step's loss is.
    fn is_finite(&self) -> bool {
        true
    }
}

impl Problem for HingeLoss<'_> {
    type Params = DMatrix<f64>;
    type Grad = PerSample;
    fn loss_grad(&mut self, _: usize, w: &DMatrix<f64>, _: &mut PerSample) -> Result<f64> {
        let mut total = 0.0;
        for i in 0..self.x.nrows() {
            let f = output(w, self.x, i, self.vs, self.alpha, &mut self.z);
            total += (1.0 - self.y[i] * f).max(0.0);
        }
        Ok(total)
    }
}

/// One epoch of hinge-loss SGD (one driver step): the samples in a fresh random order, an
/// update w_j += eta y v_j sigma'(w_j . x) x whenever y N(x) < 1; counts the updates and fails
/// ([`Error::NoConvergence`]) at `max_updates`.
struct HingeEpoch<'a> {
    x: &'a DMatrix<f64>,
    y: &'a DVector<f64>,
    vs: &'a DVector<f64>,
    alpha: f64,
    eta: f64,
    order: Vec<usize>,
    rng: StdRng,
    z: DVector<f64>,
    coef: DVector<f64>,
    updates: usize,
    max_updates: usize,
}

impl<'a> Stepper<HingeLoss<'a>> for HingeEpoch<'_> {
    fn step(&mut self, _: usize, _: f64, w: &mut DMatrix<f64>, _: &PerSample) -> Result<()> {
        let (x, y, vs, alpha) = (self.x, self.y, self.vs, self.alpha);
        self.order.shuffle(&mut self.rng);
        for &i in &self.order {
            let f = output(w, x, i, vs, alpha, &mut self.z);
            if y[i] * f < 1.0 {
                let xi = x.row(i).transpose();
                for j in 0..vs.len() {
                    let slope = if self.z[j] > 0.0 { 1.0 } else { alpha };
                    self.coef[j] = self.eta * y[i] * vs[j] * slope;
                }
                w.ger(1.0, &xi, &self.coef, 1.0);
                self.updates += 1;
                if self.updates >= self.max_updates {
                    return Err(Error::NoConvergence {
                        solver: "SGD to zero hinge loss".into(),
                        iterations: self.updates,
                        residual: f64::NAN,
                        tolerance: 0.0,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Number of non-zero SGD updates until zero hinge loss: epochs of hinge-loss SGD (one epoch
/// per driver step) on the iteration driver until the training hinge loss is 0.
pub fn updates_to_zero_loss(x: &DMatrix<f64>, y: &DVector<f64>, s: &HingeSgd) -> Result<usize> {
    let HingeSgd {
        k,
        alpha,
        eta,
        init,
        seed,
        max_updates,
    } = *s;
    let (n, d) = (x.nrows(), x.ncols());
    // separate streams: the sample order must not depend on the width
    let mut init_rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut w = DMatrix::from_fn(d, 2 * k, |_, _| {
        init * init_rng.sample::<f64, _>(StandardNormal)
    });
    let v = 1.0 / (k as f64).sqrt();
    let vs = DVector::from_fn(2 * k, |j, _| if j < k { v } else { -v });
    let mut problem = HingeLoss {
        x,
        y,
        vs: &vs,
        alpha,
        z: DVector::zeros(2 * k),
    };
    let mut epoch = HingeEpoch {
        x,
        y,
        vs: &vs,
        alpha,
        eta,
        order: (0..n).collect(),
        rng: StdRng::seed_from_u64(seed),
        z: DVector::zeros(2 * k),
        coef: DVector::zeros(2 * k),
        updates: 0,
        max_updates,
    };
    // every epoch before the last makes an update, so the update cap binds before this one
    // zero hinge loss: L < MIN_POSITIVE (a positive sum of hinge terms is >= ~1e-16)
    let stop = Stop::steps(max_updates, "hinge-loss SGD").loss_tol(f64::MIN_POSITIVE);
    let out = iterate(
        &mut problem,
        &mut epoch,
        &mut w,
        &mut PerSample,
        &stop,
        &mut (),
    )?;
    if out.reason != Reason::LossTol {
        return Err(Error::NoConvergence {
            solver: "SGD to zero hinge loss".into(),
            iterations: epoch.updates,
            residual: out.loss.unwrap_or(f64::NAN),
            tolerance: 0.0,
        });
    }
    Ok(epoch.updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_init_is_exactly_width_independent() {
        let (x, y) = sphere_teacher(60, 5, 0.1, 1);
        let s = HingeSgd {
            k: 1,
            alpha: 0.3,
            eta: 0.1,
            init: 0.0,
            seed: 0,
            max_updates: 100_000,
        };
        let c1 = updates_to_zero_loss(&x, &y, &s).unwrap();
        let c2 = updates_to_zero_loss(&x, &y, &HingeSgd { k: 37, ..s }).unwrap();
        assert_eq!(c1, c2);
    }
}
