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

use super::bptt::Sharded;
use super::hvp::Hvp;
use super::network::{Network, Trainable};
use super::task::Trials;
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
/// (`eta = None`) or the modified flow of GD at step eta, by adaptive Dormand–Prince 5(4) at
/// `rtol` (absolute tolerance `rtol` x 1e-2). For the order test of B-12 on the network.
#[allow(clippy::too_many_arguments)]
pub fn flow_to(
    net: &Network,
    trials: &Trials,
    trainable: &Trainable,
    theta0: &[f64],
    tau: f64,
    eta: Option<f64>,
    rtol: f64,
) -> Result<Vec<f64>> {
    flow_to_with(
        net,
        trials,
        trainable,
        theta0,
        tau,
        eta,
        rtol,
        HessianMethod::Exact,
    )
}

/// [`flow_to`] with the modified flow's Hessian-gradient product computed by `method`.
#[allow(clippy::too_many_arguments)]
pub fn flow_to_with(
    net: &Network,
    trials: &Trials,
    trainable: &Trainable,
    theta0: &[f64],
    tau: f64,
    eta: Option<f64>,
    rtol: f64,
    method: HessianMethod,
) -> Result<Vec<f64>> {
    let mut work = net.clone();
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut penalty = eta
        .map(|e| Penalty::with_method(e, theta0.len(), method))
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

/// The parameters after `steps` GD steps of size `eta` from `theta0` on fixed `trials`.
pub fn gd_steps(
    net: &Network,
    trials: &Trials,
    trainable: &Trainable,
    theta0: &[f64],
    eta: f64,
    steps: usize,
) -> Result<Vec<f64>> {
    let mut work = net.clone();
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut p = theta0.to_vec();
    let mut g = vec![0.0; p.len()];
    for _ in 0..steps {
        work.set_params(trainable, &p);
        ws.loss_and_grad(&work, trials, trainable, &mut g)?;
        for (pi, gi) in p.iter_mut().zip(&g) {
            *pi -= eta * gi;
        }
    }
    Ok(p)
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
mod tests {
    use super::*;
    use crate::rnn::network::{NetworkSpec, Phi, Readout};
    use crate::rnn::task::{Task, WorkingMemory};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn small() -> (Network, Trials) {
        network(16, 0.5, 3)
    }

    /// A tanh network of `n` neurons with random connectivity `g` (seed `seed`) and the short
    /// working-memory test task.
    fn network(n: usize, g: f64, seed: u64) -> (Network, Trials) {
        let mut rng = StdRng::seed_from_u64(seed);
        let spec = NetworkSpec {
            n,
            g,
            dt: 0.2,
            phi: Phi::Tanh,
            readout: Readout::Rate,
            m0: [[0.0; 2]; 2],
        };
        let net = Network::new(&spec, &mut rng);
        let task = Task::WorkingMemory(WorkingMemory::short_test_task());
        let trials = task.trials(net.n, net.inputs(), net.outputs(), net.dt, 1, &mut rng);
        (net, trials)
    }

    fn grad_at(net: &Network, trials: &Trials, theta: &[f64]) -> Vec<f64> {
        let mut w = net.clone();
        w.set_params(&Trainable::FULL, theta);
        let mut ws = Sharded::new(net, trials.steps, trials.batch);
        let mut g = vec![0.0; theta.len()];
        ws.loss_and_grad(&w, trials, &Trainable::FULL, &mut g)
            .unwrap();
        g
    }

    fn hv(net: &Network, trials: &Trials, theta: &[f64], v: &[f64], h: f64) -> Vec<f64> {
        let mut ws = Sharded::new(net, trials.steps, trials.batch);
        let mut scratch = net.clone();
        let mut hp = HessianProduct::new(theta.len());
        let mut out = vec![0.0; theta.len()];
        hp.product(
            &mut ws,
            &mut scratch,
            trials,
            &Trainable::FULL,
            theta,
            v,
            h,
            &mut out,
        )
        .unwrap();
        out
    }

    fn rel(a: &[f64], b: &[f64]) -> f64 {
        distance(a, b) / b.iter().map(|x| x * x).sum::<f64>().sqrt()
    }

    /// The central difference at FD_STEP against a Richardson-extrapolated reference
    /// R = (4 D(h/2) - D(h)) / 3 at h = 1e-3 (truncation O(h^4) ~ 1e-12, rounding ~1e-15 / 1e-3):
    /// relative error below 1e-7 (measured ~1e-9; truncation at 1e-5 is ~1e-10 x |D^3 g|,
    /// rounding ~1e-15 / 1e-5). A wrong sign, factor or step would miss by orders of magnitude.
    /// The plain differences at h = 8e-3 and 4e-3 (not used in R) converge to R at order 2:
    /// halving h cuts their error 4 +- 0.5 times (the O(h^2) remainder of the ratio).
    #[test]
    fn hessian_gradient_product_matches_richardson_reference() {
        let (net, trials) = small();
        let theta = net.params(&Trainable::FULL).as_slice().to_vec();
        let g = grad_at(&net, &trials, &theta);
        let d1 = hv(&net, &trials, &theta, &g, 1e-3);
        let d2 = hv(&net, &trials, &theta, &g, 5e-4);
        let reference: Vec<f64> = d1
            .iter()
            .zip(&d2)
            .map(|(a, b)| (4.0 * b - a) / 3.0)
            .collect();
        let at_step = hv(&net, &trials, &theta, &g, FD_STEP);
        let e = rel(&at_step, &reference);
        assert!(e < 1e-7, "relative error of H g at FD_STEP: {e:e}");
        let e8 = rel(&hv(&net, &trials, &theta, &g, 8e-3), &reference);
        let e4 = rel(&hv(&net, &trials, &theta, &g, 4e-3), &reference);
        assert!(
            e4 > 1e-8 && (e8 / e4 - 4.0).abs() < 0.5,
            "e8 {e8:e} e4 {e4:e}"
        );
    }

    /// Two independent identities of the true Hessian: symmetry u.(H v) = v.(H u) for random
    /// u, v, and u.(H g) = d/ds |g(theta + s u)|^2 / 2 (the penalty's gradient, by a central
    /// difference of the squared gradient norm). Tolerance 1e-6 relative: the FD errors of the
    /// module docs (1e-8) plus the scalar difference's (h = 1e-4: truncation 1e-8, rounding
    /// 1e-11).
    #[test]
    fn hessian_product_is_symmetric_and_the_penalty_gradient() {
        let (net, trials) = small();
        let theta = net.params(&Trainable::FULL).as_slice().to_vec();
        let mut rng = StdRng::seed_from_u64(9);
        use rand_distr::{Distribution, StandardNormal};
        let mut draw = || -> Vec<f64> {
            (0..theta.len())
                .map(|_| StandardNormal.sample(&mut rng))
                .collect()
        };
        let (u, v) = (draw(), draw());
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let hu = hv(&net, &trials, &theta, &u, FD_STEP);
        let hvv = hv(&net, &trials, &theta, &v, FD_STEP);
        let (a, b) = (dot(&u, &hvv), dot(&v, &hu));
        assert!((a - b).abs() <= 1e-6 * a.abs().max(b.abs()), "{a} vs {b}");
        let g = grad_at(&net, &trials, &theta);
        let hg = hv(&net, &trials, &theta, &g, FD_STEP);
        let un = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        let s = 1e-4 / un;
        let sq = |sign: f64| {
            let t: Vec<f64> = theta
                .iter()
                .zip(&u)
                .map(|(t, x)| t + sign * s * x)
                .collect();
            let gg = grad_at(&net, &trials, &t);
            0.5 * dot(&gg, &gg)
        };
        let fd = (sq(1.0) - sq(-1.0)) / (2.0 * s);
        let an = dot(&u, &hg);
        assert!((fd - an).abs() <= 1e-6 * an.abs(), "{fd} vs {an}");
    }

    /// B-12 on the network: GD at step eta for tau = 2 against the plain and the modified
    /// flow. Halving eta halves |GD - flow| (first order) and quarters |GD - modified flow|
    /// (second order). Ratios 2 +- 0.5 and 4 +- 1 (the O(eta) remainder of each ratio at
    /// eta = 1/8 -> 1/16); the flows at rtol 1e-10 are exact to far below the gaps.
    #[test]
    fn gd_follows_the_modified_flow_at_second_order() {
        let (net, trials) = small();
        let theta = net.params(&Trainable::FULL).as_slice().to_vec();
        let tau = 2.0;
        let flow = flow_to(&net, &trials, &Trainable::FULL, &theta, tau, None, 1e-10).unwrap();
        let mut plain = Vec::new();
        let mut modified = Vec::new();
        for eta in [0.125, 0.0625] {
            let gd = gd_steps(
                &net,
                &trials,
                &Trainable::FULL,
                &theta,
                eta,
                (tau / eta) as usize,
            )
            .unwrap();
            let m = flow_to(
                &net,
                &trials,
                &Trainable::FULL,
                &theta,
                tau,
                Some(eta),
                1e-10,
            )
            .unwrap();
            plain.push(distance(&gd, &flow));
            modified.push(distance(&gd, &m));
        }
        let r1 = plain[0] / plain[1];
        let r2 = modified[0] / modified[1];
        assert!((r1 - 2.0).abs() < 0.5, "plain ratio {r1} ({plain:?})");
        assert!((r2 - 4.0).abs() < 1.0, "modified ratio {r2} ({modified:?})");
        assert!(modified[1] < 0.2 * plain[1]);
    }

    /// Power iteration against the dense Hessian of a tiny network (N = 4, built column by
    /// column from the same products, symmetrised, eigenvalues by nalgebra's capped symmetric
    /// solver): lambda_max within 1e-4 relative (the power iteration stops at 1e-10 on the
    /// quotient; the product's error is ~1e-8).
    #[test]
    fn sharpness_matches_the_dense_hessian() {
        let (net, trials) = network(4, 0.8, 4);
        let theta = net.params(&Trainable::FULL).as_slice().to_vec();
        let len = theta.len();
        let mut h = nalgebra::DMatrix::zeros(len, len);
        for j in 0..len {
            let mut e = vec![0.0; len];
            e[j] = 1.0;
            let col = hv(&net, &trials, &theta, &e, FD_STEP);
            for i in 0..len {
                h[(i, j)] = col[i];
            }
        }
        let sym = (&h + h.transpose()) * 0.5;
        let eig = nalgebra::SymmetricEigen::try_new(sym, 1e-14, 10_000).unwrap();
        let top =
            eig.eigenvalues
                .iter()
                .cloned()
                .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        let (lambda, _) = sharpness(&net, &trials, &Trainable::FULL, 2000, 1e-10).unwrap();
        assert!(
            (lambda - top).abs() <= 1e-4 * top.abs(),
            "power {lambda} vs dense {top}"
        );
    }

    /// The modified flow with the exact product against the one with the central difference
    /// (the cross-check): at eta = 1/2 over tau = 2 on the test network, both at rtol 1e-10,
    /// the end points agree to 1e-7 relative to the distance travelled (the difference's
    /// ~1e-9 relative error in the penalty, times (eta/2)|H g| / |g| <= O(1), integrated over
    /// tau = 2, plus the two flows' own tolerances). A wrong penalty (sign or factor) would
    /// differ by the penalty's whole effect, ~1e-2 of the distance (asserted above 1e-4).
    #[test]
    fn modified_flow_is_the_same_with_either_product() {
        let (net, trials) = small();
        let theta = net.params(&Trainable::FULL).as_slice().to_vec();
        let run = |eta, method| {
            flow_to_with(
                &net,
                &trials,
                &Trainable::FULL,
                &theta,
                2.0,
                eta,
                1e-10,
                method,
            )
            .unwrap()
        };
        let exact = run(Some(0.5), HessianMethod::Exact);
        let cd = run(Some(0.5), HessianMethod::CentralDifference { h: FD_STEP });
        let plain = run(None, HessianMethod::Exact);
        let travelled = distance(&exact, &theta);
        let e = distance(&exact, &cd) / travelled;
        let effect = distance(&exact, &plain) / travelled;
        eprintln!("exact vs central difference {e:.2e}, penalty effect {effect:.2e}");
        assert!(
            e < 1e-7,
            "exact vs central difference: {e:e} (penalty effect {effect:e})"
        );
        assert!(effect > 1e-4, "penalty effect {effect:e}");
    }

    #[test]
    fn central_difference_step_is_checked() {
        for h in [0.0, -1e-5, f64::NAN, f64::INFINITY] {
            let m = HessianMethod::CentralDifference { h };
            assert!(Penalty::with_method(0.5, 3, m).is_err(), "h = {h}");
        }
        assert_eq!(Penalty::new(0.5, 3).unwrap().method(), HessianMethod::Exact);
    }

    #[test]
    fn eta_out_of_range_is_refused() {
        for eta in [0.0, -1.0, f64::NAN, 9.0, f64::INFINITY] {
            assert!(Penalty::new(eta, 3).is_err(), "eta = {eta}");
        }
        assert!(Penalty::new(ETA_MAX, 3).is_ok());
    }
}
