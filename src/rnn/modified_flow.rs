//! The modified flow of GD for the network (THEORY B-12, I-18).
//!
//! GD at step eta, theta <- theta - eta grad L, follows to second order in eta (backward-error
//! analysis, Barrett & Dherin 2021) the gradient flow of the modified loss
//! L~ = L + (eta/4)|grad L|^2, whose gradient is
//!
//! ```text
//! grad L~ = grad L + (eta/2) H grad L,
//! ```
//!
//! H the Hessian of L. [`Penalty`] adds the second term to a BPTT gradient; the flow driver of
//! [`mod@super::train`] integrates d theta / d tau = -grad L~ with the same adaptive
//! Dormand–Prince 5(4) and stopping rule as the plain flow when the optimiser is
//! [`super::train::Optimizer::ModifiedFlow`].
//!
//! **The Hessian-gradient product** is exact by default ([`HessianMethod::Exact`]): the
//! forward-over-reverse product of [`super::hvp`] (tangents of the forward pass and of the
//! BPTT adjoint along v), exact to rounding, with no step to choose. The central difference of
//! two BPTT gradients along the unit vector u = g/|g| ([`HessianMethod::CentralDifference`],
//! [`HessianProduct`]) is kept as the independent cross-check:
//!
//! ```text
//! H g = |g| (g(theta + h u) - g(theta - h u)) / (2h) + O(h^2),
//! ```
//!
//! with h = [`FD_STEP`] in parameter units (Euclidean norm of the whole parameter vector). Error
//! budget: truncation (h^2/6)|D^3 g[u, u]|, rounding ~ delta |g| / h with delta the relative
//! rounding of one BPTT gradient (~1e-15..1e-14: sums over T steps and N neurons). The third
//! derivative's scale is set by how far theta must move (in Frobenius norm of W, which bounds
//! the operator norm) before the dynamics change by O(1), i.e. order one, so the two balance at
//! h ~ delta^(1/3) ~ 1e-5. Measured on small networks against a Richardson-extrapolated
//! reference and against the exact product (`tests` below and in [`super::hvp`]): relative
//! error 1e-9..1e-8 at h = 1e-5, growing as h^2 above and as 1/h below. The two methods give
//! the same modified flow to the flow's tolerance (test
//! `modified_flow_is_the_same_with_either_product`). Cost (`bench/README.md`): the exact
//! product of a full-W network costs ~3 gradients' gemm flops against the difference's 2.
//!
//! The product needs the exact gradient: the modified flow is refused for rules other than
//! BPTT (their update is not the gradient of a loss, so H has no meaning for them).

use nalgebra::DVector;
use rand::{rngs::StdRng, SeedableRng};

use super::bptt::Sharded;
use super::hvp::Hvp;
use super::network::{Network, Trainable};
use super::task::Trials;
use super::train::{Stepping, Weights};
use crate::num::iterate::{iterate, Gd, Stop};
use crate::num::ode::OdeOptions;
use crate::num::rk::DynDopri;
use crate::{Error, Result};

/// Step of the central difference along the unit gradient direction (parameter units; see the
/// module docs for the rounding vs truncation balance).
pub const FD_STEP: f64 = 1e-5;

/// Largest eta accepted in a model file: far beyond every step the project uses (I-18-net's
/// ladder is 4 .. 1/256), and GD itself is unstable beyond 2 / lambda_max long before.
pub const ETA_MAX: f64 = 8.0;

/// How the Hessian-gradient product of the modified flow is computed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum HessianMethod {
    /// Forward-over-reverse ([`super::hvp`]): exact to rounding (the default).
    #[default]
    Exact,
    /// Central difference of two BPTT gradients with step `h` along the unit direction (the
    /// cross-check; [`FD_STEP`] balances truncation and rounding).
    CentralDifference { h: f64 },
}

/// Buffers for H v by a central difference of BPTT gradients (allocated once per run).
#[derive(Debug, Clone)]
pub struct HessianProduct {
    shifted: Vec<f64>,
    plus: Vec<f64>,
    minus: Vec<f64>,
    unit: Vec<f64>,
    /// Gradient evaluations spent (two per product).
    pub evaluations: usize,
}

impl HessianProduct {
    /// Buffers for `len` parameters.
    pub fn new(len: usize) -> HessianProduct {
        HessianProduct {
            shifted: vec![0.0; len],
            plus: vec![0.0; len],
            minus: vec![0.0; len],
            unit: vec![0.0; len],
            evaluations: 0,
        }
    }

    /// out = H v at `theta` by the central difference with step h along v/|v| (scaled back by
    /// |v|). `net` is used as scratch (its parameters are left at theta - h v/|v|).
    #[allow(clippy::too_many_arguments)]
    pub fn product(
        &mut self,
        ws: &mut Sharded,
        net: &mut Network,
        trials: &Trials,
        trainable: &Trainable,
        theta: &[f64],
        v: &[f64],
        h: f64,
        out: &mut [f64],
    ) -> Result<()> {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            out.iter_mut().for_each(|o| *o = 0.0);
            return Ok(());
        }
        for (u, x) in self.unit.iter_mut().zip(v) {
            *u = x / norm;
        }
        for (sign, which) in [(1.0, 0), (-1.0, 1)] {
            for ((s, t), u) in self.shifted.iter_mut().zip(theta).zip(&self.unit) {
                *s = t + sign * h * u;
            }
            net.set_params(trainable, &self.shifted);
            let g = if which == 0 {
                &mut self.plus
            } else {
                &mut self.minus
            };
            ws.loss_and_grad(net, trials, trainable, g)?;
            self.evaluations += 1;
        }
        let c = norm / (2.0 * h);
        for ((o, p), m) in out.iter_mut().zip(&self.plus).zip(&self.minus) {
            *o = c * (p - m);
        }
        Ok(())
    }
}

/// The largest Hessian eigenvalue lambda_max of the loss of `net` on `trials` (the sharpness:
/// GD at eta > 2 / lambda_max cannot converge to this point) by power iteration on the
/// exact Hessian-vector product ([`super::hvp`]), from a fixed start vector (deterministic).
/// Stops when the Rayleigh quotient moves by less than `rtol` relative between iterations, or
/// after `iters`.
/// Returns (lambda, iterations); the quotient converges to the eigenvalue of largest modulus
/// (at a minimum of the loss, the largest curvature).
pub fn sharpness(
    net: &Network,
    trials: &Trials,
    trainable: &Trainable,
    iters: usize,
    rtol: f64,
) -> Result<(f64, usize)> {
    let len = net.num_params(trainable);
    let mut hp = Hvp::new(net, trials.steps, trials.batch);
    // a fixed, non-degenerate start: entries 1 + (i mod 7)/7 with alternating signs
    let mut v: Vec<f64> = (0..len)
        .map(|i| {
            let s = if i % 2 == 0 { 1.0 } else { -1.0 };
            s * (1.0 + (i % 7) as f64 / 7.0)
        })
        .collect();
    let mut hv = vec![0.0; len];
    let mut lambda = f64::NAN;
    for k in 0..iters {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        hp.product(net, trials, trainable, &v, None, &mut hv)?;
        let q: f64 = v.iter().zip(&hv).map(|(a, b)| a * b).sum();
        if !q.is_finite() {
            return Err(Error::Numerical(format!(
                "sharpness: non-finite Rayleigh quotient at iteration {k}"
            )));
        }
        let done = (q - lambda).abs() <= rtol * q.abs();
        lambda = q;
        if done {
            return Ok((lambda, k + 1));
        }
        v.copy_from_slice(&hv);
    }
    Ok((lambda, iters))
}

/// The penalty term of the modified flow at step `eta`.
#[derive(Debug, Clone)]
pub struct Penalty {
    pub eta: f64,
    method: HessianMethod,
    /// Buffers of the exact product (allocated on the first call, for the run's shapes).
    exact: Option<Hvp>,
    hv: HessianProduct,
    grad: Vec<f64>,
    out: Vec<f64>,
}

impl Penalty {
    /// The penalty of GD at step `eta` for `len` parameters, with the exact product.
    pub fn new(eta: f64, len: usize) -> Result<Penalty> {
        Penalty::with_method(eta, len, HessianMethod::Exact)
    }

    /// The penalty with the Hessian-gradient product computed by `method`.
    pub fn with_method(eta: f64, len: usize, method: HessianMethod) -> Result<Penalty> {
        if !(eta > 0.0 && eta <= ETA_MAX) {
            return Err(Error::Requirement(format!(
                "modified flow: eta = {eta} must be in (0, {ETA_MAX}]"
            )));
        }
        if let HessianMethod::CentralDifference { h } = method {
            if !(h > 0.0 && h.is_finite()) {
                return Err(Error::Requirement(format!(
                    "modified flow: central-difference step h = {h} must be positive and finite"
                )));
            }
        }
        let cd = matches!(method, HessianMethod::CentralDifference { .. });
        Ok(Penalty {
            eta,
            method,
            exact: None,
            hv: HessianProduct::new(if cd { len } else { 0 }),
            grad: vec![0.0; len],
            out: vec![0.0; len],
        })
    }

    /// The product in use.
    pub fn method(&self) -> HessianMethod {
        self.method
    }

    /// Passes spent on Hessian products so far: one (tangent forward + adjoint pass, ~3
    /// gradients of work) per exact product, two gradient evaluations per central difference.
    pub fn evaluations(&self) -> usize {
        self.hv.evaluations + self.exact.as_ref().map_or(0, |h| h.products)
    }

    /// `grad` (the BPTT gradient at `theta`) <- grad + (eta/2) H grad: the gradient of
    /// L + (eta/4)|grad L|^2. `net` is scratch (its parameters are left at `theta` for the
    /// exact product, at theta - h grad/|grad| for the central difference).
    pub fn correct(
        &mut self,
        ws: &mut Sharded,
        net: &mut Network,
        trials: &Trials,
        trainable: &Trainable,
        theta: &[f64],
        grad: &mut [f64],
    ) -> Result<()> {
        self.grad.copy_from_slice(grad);
        match self.method {
            HessianMethod::Exact => {
                net.set_params(trainable, theta);
                let hp = self
                    .exact
                    .get_or_insert_with(|| Hvp::new(net, trials.steps, trials.batch));
                hp.product(net, trials, trainable, &self.grad, None, &mut self.out)?;
            }
            HessianMethod::CentralDifference { h } => {
                self.hv.product(
                    ws,
                    net,
                    trials,
                    trainable,
                    theta,
                    &self.grad,
                    h,
                    &mut self.out,
                )?;
            }
        }
        let c = 0.5 * self.eta;
        for (g, hg) in grad.iter_mut().zip(&self.out) {
            *g += c * hg;
        }
        Ok(())
    }
}

/// The parameters after flow time `tau` from `theta0` on fixed `trials`: the gradient flow
/// (`modified = None`) or the modified flow of GD at step eta with the Hessian-gradient
/// product computed by `method` (`Some((eta, method))`), by adaptive Dormand–Prince 5(4) at
/// `rtol` (absolute tolerance `rtol` x 1e-2). For the order test of B-12 on the network.
pub fn flow_to(
    net: &Network,
    trials: &Trials,
    trainable: &Trainable,
    theta0: &[f64],
    tau: f64,
    modified: Option<(f64, HessianMethod)>,
    rtol: f64,
) -> Result<Vec<f64>> {
    let mut work = net.clone();
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut penalty = modified
        .map(|(eta, method)| Penalty::with_method(eta, theta0.len(), method))
        .transpose()?;
    let mut scratch = net.clone();
    let mut rhs = |p: &[f64], dp: &mut [f64]| -> Result<()> {
        work.set_params(trainable, p);
        ws.loss_and_grad(&work, trials, trainable, dp)?;
        if let Some(pen) = penalty.as_mut() {
            pen.correct(&mut ws, &mut scratch, trials, trainable, p, dp)?;
        }
        dp.iter_mut().for_each(|d| *d = -*d);
        Ok(())
    };
    let opts = OdeOptions {
        rtol,
        atol: rtol * 1e-2,
        h0: 0.0,
        h_max: f64::INFINITY,
        max_steps: 100_000,
        ..OdeOptions::default()
    };
    let mut st = DynDopri::new(theta0.len());
    let mut y = theta0.to_vec();
    st.start(&mut rhs, 0.0, &y, &opts)?;
    while st.t() < tau {
        st.step(&mut rhs, &mut y, tau, &opts)?;
    }
    Ok(y)
}

/// The parameters after `steps` GD steps of size `eta` from `theta0` on fixed `trials` (the
/// iteration driver [`crate::num::iterate`] on the network's BPTT loss; a non-finite loss is
/// an error).
pub fn gd_steps(
    net: &Network,
    trials: &Trials,
    trainable: &Trainable,
    theta0: &[f64],
    eta: f64,
    steps: usize,
) -> Result<Vec<f64>> {
    let mut work = net.clone();
    // fixed trials and exact BPTT draw nothing from it
    let mut rng = StdRng::seed_from_u64(0);
    let mut problem = Stepping::fixed(net, trials, trainable, &mut rng);
    let theta = DVector::from_column_slice(theta0);
    let mut w = Weights::new(theta, &mut work, trainable);
    let mut grad = DVector::zeros(theta0.len());
    let mut gd = Gd { eta, lambda: 0.0 };
    let stop = Stop::steps(steps, "rnn GD");
    iterate(&mut problem, &mut gd, &mut w, &mut grad, &stop, &mut ())?;
    Ok(w.theta.as_slice().to_vec())
}

/// Euclidean distance of two parameter vectors.
pub fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests;
