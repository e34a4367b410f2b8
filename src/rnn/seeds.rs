//! The seed eps at g > 0 (issue 12, claim I-19): eps(g, N) measured on M-only erf networks in
//! the X-6 protocol, against predictions computed per seed from that seed's own draw.
//!
//! **Setting.** [`XvalSpec::standard`] (M0 = diag(1.2, 0), pulse u_p = 1 for T_in = 2, u_s = 0,
//! T_d = 3, loss on the final state, zhat = 0.5, own loss, dt = 0.2, GD eta = 1 to L < 1e-6),
//! erf, rate readouts, only M trained, now with the random bulk W0 = g Z, Z_ij ~ N(0, 1/N). The
//! generator draws Z before the patterns whatever g is ([`Network::new`]), so for one seed the
//! patterns a, b and Z are the same at every g: eps(g) of a seed is a curve, not a new draw.
//! eps = a^T x_B(T) / N is the end of the B trial at W_afterA = W0 + U M_afterA U^T / N, before
//! any B training (as [`super::sequential`] measures it).
//!
//! **The Euler B trial** (input u_k b, x_0 = 0): x_{k+1} = x_k + dt (-x_k + W phi(x_k) + u_k b).
//! At W0 = 0 it stays in span(U): x0_k = U kappa_k, and its eps is the pattern leak of I-14
//! (the exact h_N map). The predictors, each from the seed's own draw, none fitted:
//!
//! - (i) `pattern`: the g = 0 network of the same seed (exact h_N map trained by the same GD):
//!   eps_pat = a^T x0_T / N at M_afterA(g = 0).
//! - (ii) `first`: first order in W0. Differentiating the Euler map in the direction W0 around
//!   the W0 = 0 trial gives the tangent trial
//!   delta_{k+1} = delta_k + dt (-delta_k + W_lat D_k delta_k + W0 phi(x0_k)), delta_0 = 0,
//!   W_lat = U M U^T / N, D_k = diag(phi'(x0_k)); eps_first = eps_pat + a^T delta_T / N. It is
//!   linear in W0, so ~ g / sqrt(N) (a^T W0 v / N has sd g |v| / N for |a| = sqrt(N)).
//!   `first_ab` keeps only the a^T W0 b / N part of the drive: phi(x0_k) has the component
//!   h_b,k b along b (h = U^T phi / N), and W0 h_b,k b has the component c_ab h_b,k a along a,
//!   c_ab = a^T W0 b / N (sd g / sqrt(N)); the rest (W0 acting on the nonlinear, off-pattern
//!   part of phi(x0), and the off-pattern part of W0 b fed back into a through W_lat D_k) is
//!   `first - first_ab`.
//! - (iii) `bulk`: the bulk propagation of THEORY I.5: the same tangent with the bulk in its
//!   propagator, delta_{k+1} = delta_k + dt (-delta_k + (W_lat + W0) D_k delta_k + W0 phi(x0_k)):
//!   every order in W0 (the slow bulk modes carry the leak across the delay), first order in
//!   the deviation delta. Exact for a linear phi (unit test).
//! - (iv) task A at g > 0 changes M_afterA (off-diagonal entries ~ g / sqrt(N), and M_ab feeds
//!   kappa_b straight into a): `trained_pattern` is the pattern leak at the network's own
//!   M_afterA(g) (W0 = 0), `trained` adds the bulk tangent around that trial. These use the
//!   trained network's M (a measured 2x2 matrix, no fit).
//! - (v) a diagnostic that separates (iii) from (iv): `frozen`, the full nonlinear trial with
//!   the seed's W0 at the g = 0 network's M_afterA(0): everything but task A's change of M, so
//!   eps - frozen is what training at g > 0 changes and frozen - bulk is the nonlinearity in
//!   the deviation (second and higher order in delta) that the tangent leaves out.

use nalgebra::{DMatrix, DVector, Matrix2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::latent_xval::{EulerLatent, XvalSpec};
use super::network::{Network, Phi, Trainable};
use super::task::{steps_for, Task as NetTask};
use super::train::train_task;
use crate::interference::nonlinear::Task;
use crate::latent::finite_n::{FiniteNGain, Order};
use crate::latent::gain::GainKind;
use crate::num::stats::{Bootstrap, Estimate, Statistic};
use crate::{Error, Result};

/// The Euler B trial of one network (patterns, bulk, nonlinearity, input schedule).
#[derive(Debug, Clone)]
pub struct BTrial<'a> {
    /// Patterns U = [a, b] (N x 2), |a|^2 = |b|^2 = N.
    pub u: &'a DMatrix<f64>,
    pub phi: Phi,
    pub dt: f64,
    /// Euler steps T.
    pub steps: usize,
    /// Pulse steps (input u_p for k < n_in, u_s after).
    pub n_in: usize,
    pub u_p: f64,
    pub u_s: f64,
}

/// Which part of the first-order drive W0 phi(x0_k) a tangent trial is driven by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// The whole W0 phi(x0_k).
    Full,
    /// Only its a^T W0 b / N part, c_ab h_b,k a.
    AlongAb,
}

/// The W0 = 0 reference trial: phi(x0_k) and phi'(x0_k) for k = 0..T-1 (columns) and eps.
#[derive(Debug, Clone)]
pub struct Reference {
    pub phi: DMatrix<f64>,
    pub dphi: DMatrix<f64>,
    /// a^T x0_T / N.
    pub eps: f64,
    /// h_b,k = b^T phi(x0_k) / N.
    pub h_b: Vec<f64>,
}

impl<'a> BTrial<'a> {
    /// The B trial of the X-6 setting `spec` on patterns `u`.
    pub fn new(spec: &XvalSpec, u: &'a DMatrix<f64>, phi: Phi) -> BTrial<'a> {
        let w = &spec.task;
        let steps = steps_for(w.t_in + w.t_d, spec.dt);
        BTrial {
            u,
            phi,
            dt: spec.dt,
            steps,
            n_in: steps_for(w.t_in, spec.dt).min(steps),
            u_p: w.u_p,
            u_s: w.u_s,
        }
    }

    fn n(&self) -> usize {
        self.u.nrows()
    }

    fn input(&self, k: usize) -> f64 {
        if k < self.n_in {
            self.u_p
        } else {
            self.u_s
        }
    }

    /// out += c U M U^T v / N (the latent part of W applied to v), without allocation.
    fn add_latent(&self, m: &Matrix2<f64>, v: &DVector<f64>, c: f64, out: &mut DVector<f64>) {
        let (a, b) = (self.u.column(0), self.u.column(1));
        let inv = 1.0 / self.n() as f64;
        let (ha, hb) = (a.dot(v) * inv, b.dot(v) * inv);
        let (ya, yb) = (
            m[(0, 0)] * ha + m[(0, 1)] * hb,
            m[(1, 0)] * ha + m[(1, 1)] * hb,
        );
        out.axpy(c * ya, &a, 1.0);
        out.axpy(c * yb, &b, 1.0);
    }

    /// eps = a^T x_T / N of the B trial at W = W0 + U M U^T / N (`w0 = None`: W0 = 0).
    pub fn eps(&self, m: &Matrix2<f64>, w0: Option<&DMatrix<f64>>) -> f64 {
        let n = self.n();
        let mut x = DVector::zeros(n);
        let mut p = DVector::zeros(n);
        let b = self.u.column(1);
        for k in 0..self.steps {
            for (pi, &xi) in p.iter_mut().zip(x.iter()) {
                *pi = self.phi.f(xi);
            }
            x.scale_mut(1.0 - self.dt);
            if let Some(w0) = w0 {
                x.gemv(self.dt, w0, &p, 1.0);
            }
            self.add_latent(m, &p, self.dt, &mut x);
            x.axpy(self.dt * self.input(k), &b, 1.0);
        }
        self.u.column(0).dot(&x) / n as f64
    }

    /// The W0 = 0 trial at M, with what the tangent trials need.
    pub fn reference(&self, m: &Matrix2<f64>) -> Reference {
        let n = self.n();
        let t = self.steps;
        let mut phi = DMatrix::zeros(n, t);
        let mut dphi = DMatrix::zeros(n, t);
        let mut h_b = Vec::with_capacity(t);
        let mut x = DVector::zeros(n);
        let mut p = DVector::zeros(n);
        let b = self.u.column(1);
        for k in 0..t {
            for i in 0..n {
                let f = self.phi.f(x[i]);
                p[i] = f;
                phi[(i, k)] = f;
                dphi[(i, k)] = self.phi.df(x[i], f);
            }
            h_b.push(b.dot(&p) / n as f64);
            x.scale_mut(1.0 - self.dt);
            self.add_latent(m, &p, self.dt, &mut x);
            x.axpy(self.dt * self.input(k), &b, 1.0);
        }
        Reference {
            phi,
            dphi,
            eps: self.u.column(0).dot(&x) / n as f64,
            h_b,
        }
    }

    /// a^T delta_T / N of the tangent trial around `r` (the W0 = 0 trial at M), driven by
    /// `drive` of W0 phi(x0_k); with `bulk` the propagator carries W0 too (THEORY I.5).
    pub fn tangent(
        &self,
        m: &Matrix2<f64>,
        w0: &DMatrix<f64>,
        r: &Reference,
        drive: Drive,
        bulk: bool,
    ) -> f64 {
        let n = self.n();
        let a = self.u.column(0);
        // the drive of every step at once: W0 [phi(x0_0) .. phi(x0_{T-1})] (one gemm)
        let forcing = match drive {
            Drive::Full => Some(w0 * &r.phi),
            Drive::AlongAb => None,
        };
        let c_ab = a.dot(&(w0 * self.u.column(1))) / n as f64;
        let mut d = DVector::zeros(n);
        let mut dd = DVector::zeros(n);
        for k in 0..self.steps {
            for i in 0..n {
                dd[i] = r.dphi[(i, k)] * d[i];
            }
            d.scale_mut(1.0 - self.dt);
            self.add_latent(m, &dd, self.dt, &mut d);
            if bulk {
                d.gemv(self.dt, w0, &dd, 1.0);
            }
            match &forcing {
                Some(f) => d.axpy(self.dt, &f.column(k), 1.0),
                None => d.axpy(self.dt * c_ab * r.h_b[k], &a, 1.0),
            }
        }
        a.dot(&d) / n as f64
    }
}

/// eps of one (g, N, seed) beside its predictors (see the module doc).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeedEps {
    pub g: f64,
    pub n: usize,
    pub seed: u64,
    /// Measured: a^T x_B(T) / N of the network at W_afterA.
    pub eps: f64,
    /// (i) the pattern leak of the g = 0 network (exact h_N map), M_afterA(0).
    pub pattern: f64,
    /// (ii) pattern + first order in W0 around the g = 0 trial at M_afterA(0).
    pub first: f64,
    /// (ii) pattern + only the a^T W0 b / N part of the first order.
    pub first_ab: f64,
    /// (iii) pattern + the bulk-propagated tangent (W0 in the propagator).
    pub bulk: f64,
    /// (iv) the pattern leak at the network's own M_afterA(g), W0 = 0.
    pub trained_pattern: f64,
    /// (iv) trained_pattern + the bulk-propagated tangent around that trial.
    pub trained: f64,
    /// (v) the full nonlinear trial with W0 at M_afterA(0) (no training change).
    pub frozen: f64,
    /// c_ab = a^T W0 b / N.
    pub c_ab: f64,
    /// M_afterA of the network (g) and of the g = 0 network, row-major.
    pub m_after_a: [[f64; 2]; 2],
    pub m_after_a0: [[f64; 2]; 2],
    /// GD steps of task A on the network.
    pub steps_a: usize,
}

/// The predictor names, in the order of [`SeedEps::predictions`].
pub const PREDICTORS: [&str; 7] = [
    "pattern leak (i)",
    "first order in W0 (ii)",
    "a^T W0 b / N part only (ii)",
    "bulk propagation (iii)",
    "pattern leak at M_afterA(g) (iv)",
    "M_afterA(g) + bulk (iv)",
    "full trial at M_afterA(0) (v)",
];

impl SeedEps {
    /// The predictions in the order of [`PREDICTORS`].
    pub fn predictions(&self) -> [f64; 7] {
        [
            self.pattern,
            self.first,
            self.first_ab,
            self.bulk,
            self.trained_pattern,
            self.trained,
            self.frozen,
        ]
    }
}

fn arr(m: &Matrix2<f64>) -> [[f64; 2]; 2] {
    [[m[(0, 0)], m[(0, 1)]], [m[(1, 0)], m[(1, 1)]]]
}

/// The M-only erf network of (g, N, seed) in the X-6 setting, trained on task A by the
/// protocol's GD (the generator and training stream of [`super::sequential::run_sequential`]).
pub fn network_after_a(spec: &XvalSpec, g: f64, n: usize, seed: u64) -> Result<(Network, usize)> {
    let mut net = Network::new(&spec.network(n, g), &mut StdRng::seed_from_u64(seed));
    let opts = spec.gd();
    let task = NetTask::WorkingMemory(spec.task).on_pattern(0);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7a1e_0b0b);
    let log = train_task(
        &mut net,
        &Trainable::LATENT,
        &task,
        &opts,
        &mut rng,
        |_, _, _| Ok(()),
    )?;
    if !log.converged {
        return Err(Error::NoConvergence {
            solver: format!("network g = {g}, N = {n}, seed {seed}: GD on task A"),
            iterations: spec.max_steps,
            residual: log.final_loss,
            tolerance: spec.tol,
        });
    }
    Ok((net, log.steps))
}

/// Measure eps and compute every predictor for (g, N, seed).
pub fn seed_eps(spec: &XvalSpec, g: f64, n: usize, seed: u64) -> Result<SeedEps> {
    let (net, steps_a) = network_after_a(spec, g, n, seed)?;
    let trial = BTrial::new(spec, &net.u, net.phi);
    let eps = trial.eps(&net.m, Some(&net.w0));
    // the g = 0 network of the same seed: the exact h_N map of the same patterns, same GD
    let gain = FiniteNGain::new(
        GainKind::Erf,
        Order::Exact,
        net.u.column(0).as_slice(),
        net.u.column(1).as_slice(),
    );
    let lat = EulerLatent::new(spec, 0.0).with_finite_n(gain);
    let (run0, m0) = lat.train(&spec.m0(), Task::A, spec)?;
    if !run0.converged {
        return Err(Error::NoConvergence {
            solver: format!("exact h_N model N = {n}, seed {seed}: GD on task A"),
            iterations: spec.max_steps,
            residual: f64::NAN,
            tolerance: spec.tol,
        });
    }
    let r0 = trial.reference(&m0);
    let first = trial.tangent(&m0, &net.w0, &r0, Drive::Full, false);
    let first_ab = trial.tangent(&m0, &net.w0, &r0, Drive::AlongAb, false);
    let bulk = trial.tangent(&m0, &net.w0, &r0, Drive::Full, true);
    let rg = trial.reference(&net.m);
    let trained = trial.tangent(&net.m, &net.w0, &rg, Drive::Full, true);
    let c_ab = net.u.column(0).dot(&(&net.w0 * net.u.column(1))) / n as f64;
    let out = SeedEps {
        g,
        n,
        seed,
        eps,
        pattern: r0.eps,
        first: r0.eps + first,
        first_ab: r0.eps + first_ab,
        bulk: r0.eps + bulk,
        trained_pattern: rg.eps,
        trained: rg.eps + trained,
        frozen: trial.eps(&m0, Some(&net.w0)),
        c_ab,
        m_after_a: arr(&net.m),
        m_after_a0: arr(&m0),
        steps_a,
    };
    let all = [out.eps]
        .into_iter()
        .chain(out.predictions())
        .all(f64::is_finite);
    if !all {
        return Err(Error::Numerical(format!(
            "seed eps g = {g}, N = {n}, seed {seed}: a non-finite value in {out:?}"
        )));
    }
    Ok(out)
}

/// [`seed_eps`] over the grid g x N x seeds 1..=`seeds`, in parallel, rows in (g, N, seed)
/// order (deterministic for any thread count).
pub fn grid(spec: &XvalSpec, gs: &[f64], ns: &[usize], seeds: u64) -> Result<Vec<SeedEps>> {
    let jobs: Vec<(f64, usize, u64)> = gs
        .iter()
        .flat_map(|&g| {
            ns.iter()
                .flat_map(move |&n| (1..=seeds).map(move |s| (g, n, s)))
        })
        .collect();
    crate::num::stats::par_map(&jobs, |&(g, n, s)| seed_eps(spec, g, n, s))
}

/// Least-squares slope of y on x.
fn slope(x: &[f64], y: &[f64]) -> f64 {
    let k = x.len() as f64;
    let mx = x.iter().sum::<f64>() / k;
    let my = y.iter().sum::<f64>() / k;
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

fn median_of(x: &mut [f64]) -> f64 {
    x.sort_unstable_by(f64::total_cmp);
    let n = x.len();
    if n % 2 == 1 {
        x[n / 2]
    } else {
        0.5 * (x[n / 2 - 1] + x[n / 2])
    }
}

/// The exponent p of median |v| ~ C N^p: the least-squares slope of ln(median) on ln N over the
/// groups `(N, sample)`, with a seeded bootstrap percentile 95% interval (each group resampled
/// with replacement on its own, `boot.resamples` times). At least two N values, each sample
/// non-empty, finite and with a non-zero median.
pub fn median_exponent(groups: &[(usize, Vec<f64>)], boot: &Bootstrap) -> Result<Estimate> {
    if groups.len() < 2 || groups.iter().any(|(_, s)| s.is_empty()) {
        return Err(Error::Requirement(
            "median exponent: at least two N values with non-empty samples".into(),
        ));
    }
    let ln_n: Vec<f64> = groups.iter().map(|(n, _)| (*n as f64).ln()).collect();
    let fit = |meds: &[f64]| slope(&ln_n, &meds.iter().map(|m| m.ln()).collect::<Vec<_>>());
    let meds: Vec<f64> = groups
        .iter()
        .map(|(_, s)| median_of(&mut s.iter().map(|v| v.abs()).collect::<Vec<_>>()))
        .collect();
    let value = fit(&meds);
    if !value.is_finite() {
        return Err(Error::Numerical(format!(
            "median exponent: medians {meds:?} give no finite slope"
        )));
    }
    let mut rng = StdRng::seed_from_u64(boot.seed);
    let mut draws = Vec::with_capacity(boot.resamples);
    let mut scratch = Vec::new();
    let mut m = vec![0.0; groups.len()];
    for _ in 0..boot.resamples {
        for (mj, (_, s)) in m.iter_mut().zip(groups) {
            scratch.clear();
            scratch.extend((0..s.len()).map(|_| s[rng.random_range(0..s.len())].abs()));
            *mj = median_of(&mut scratch);
        }
        draws.push(fit(&m));
    }
    draws.sort_unstable_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (draws.len() - 1) as f64;
        let i = pos.floor() as usize;
        let f = pos - i as f64;
        draws[i] + f * (draws[(i + 1).min(draws.len() - 1)] - draws[i])
    };
    Ok(Estimate {
        statistic: Statistic::Median,
        value,
        lo: q(0.025).min(value),
        hi: q(0.975).max(value),
        n: groups.iter().map(|(_, s)| s.len()).sum(),
    })
}

#[cfg(test)]
mod tests;
