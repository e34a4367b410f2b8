//! Full-W training of the linear network on the NeurIPS-2020 static task (THEORY I-10,
//! issue 3 item 7(b)): the curves of convergence time, |dW|, mean gradient norm and the
//! shuffle loss against g, each normalised to g = 0 (claim X-5).
//!
//! The network is x' = -x + W x + u a (phi = identity, state readout z = b^T x(T)/N with the
//! readout b orthogonal to the input a), trained by plain gradient descent on
//! L = (z - zhat)^2/2 with the rate eta = eta0 (1 - g^2)^2 of I-10. Learning time is
//! tau = eta x steps; the dressed time is tau~ = beta^2 tau (I-9).

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use super::bptt::Workspace;
use super::network::{Network, NetworkSpec, Phi, Readout, Trainable};
use super::task::{StaticTask, Task, Trials};
use crate::num::iterate::{iterate, Descend, Gd, GradNorm, Observer, Problem, Reason, Stop};
use crate::{Error, Result};

/// One static-task training setting.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StaticSetting {
    /// Neurons N.
    pub n: usize,
    /// Random bulk strength g.
    pub g: f64,
    /// Euler step dt and trial length t_max.
    pub dt: f64,
    pub t_max: f64,
    /// Constant input u (along a) and target zhat (on the b readout).
    pub u: f64,
    pub zhat: f64,
    /// Base rate eta0; the run uses eta = eta0 (1 - g^2)^2.
    pub lr0: f64,
    /// Convergence: L < tol.
    pub tol: f64,
    /// Step cap.
    pub max_steps: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StaticRun {
    pub g: f64,
    pub seed: u64,
    /// Learning rate eta used.
    pub lr: f64,
    /// Gradient steps until L < tol.
    pub steps: usize,
    /// Convergence time tau_conv = eta x (steps, log-interpolated across the tol crossing).
    pub tau_conv: f64,
    /// |W - W0|_F at convergence.
    pub dw_norm: f64,
    /// Mean over steps of |dL/dW|_F.
    pub mean_grad: f64,
    /// Initial loss L0 (untrained network).
    pub loss0: f64,
    /// Loss of W0' + dW with W0' a random permutation of the entries of W0.
    pub loss_shuffled: f64,
    /// Readout z after each step 0..=steps (`z[0]` at initialisation).
    pub z: Vec<f64>,
}

/// The time at which a decreasing loss sequence (sampled every `lr` in tau, index 0 at
/// tau = 0) first drops below `tol`, interpolated linearly in log L between the two samples
/// that bracket the crossing. None if it never does.
pub fn crossing_time(losses: &[f64], tol: f64, lr: f64) -> Option<f64> {
    let k = losses.iter().position(|&l| l < tol)?;
    if k == 0 {
        return Some(0.0);
    }
    let (a, b) = (losses[k - 1].ln(), losses[k].ln());
    let frac = if a > b { (a - tol.ln()) / (a - b) } else { 1.0 };
    Some(lr * ((k - 1) as f64 + frac))
}

/// W0 with its entries randomly permuted (same empirical distribution, correlations with any
/// learned dW destroyed). Deterministic given `rng`.
pub fn permute_entries(w0: &DMatrix<f64>, rng: &mut StdRng) -> DMatrix<f64> {
    let mut v: Vec<f64> = w0.as_slice().to_vec();
    v.shuffle(rng);
    DMatrix::from_vec(w0.nrows(), w0.ncols(), v)
}

/// Mean and standard error of the mean of a sample (0 error for one value).
pub fn mean_sem(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (m, 0.0);
    }
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// The linear network of I-10 (phi = identity, state readout, M0 = 0; W0 drawn from `rng`)
/// and its static task.
pub fn static_network(
    n: usize,
    g: f64,
    dt: f64,
    task: StaticTask,
    rng: &mut StdRng,
) -> (Network, Task) {
    let spec = NetworkSpec {
        n,
        g,
        dt,
        phi: Phi::Identity,
        readout: Readout::State,
        m0: [[0.0; 2]; 2],
    };
    (Network::new(&spec, rng), Task::Static(task))
}

/// Seed `seed` of a static-task setting: the linear network of [`static_network`] on the
/// static task (pattern 0, input `u`, horizon `t_max`, target `zhat`), and the generator after
/// its draws.
pub fn seeded_static_network(
    n: usize,
    g: f64,
    dt: f64,
    (u, t_max, zhat): (f64, f64, f64),
    seed: u64,
) -> (StdRng, Network, Task) {
    let mut rng = StdRng::seed_from_u64(seed);
    let task = StaticTask {
        pattern: 0,
        u,
        t_max,
        zhat,
    };
    let (net, task) = static_network(n, g, dt, task, &mut rng);
    (rng, net, task)
}

/// The single trial of the static task (drawn from `rng`), its last step and a workspace for it.
pub fn static_trial(net: &Network, task: &Task, rng: &mut StdRng) -> (Trials, usize, Workspace) {
    let trials = task.trials(net.n, net.inputs(), net.outputs(), net.dt, 1, rng);
    let last = trials.steps - 1;
    let ws = Workspace::new(net, trials.steps, 1);
    (trials, last, ws)
}

/// The static task as a [`Problem`] of the iteration driver: the loss L(W) of the single trial,
/// dL/dW into [`StaticEval::grad`] and the readout z there into [`StaticEval::z`] (full W
/// trained, everything else fixed).
pub struct StaticProblem {
    ws: Workspace,
    trials: Trials,
    /// The last Euler step (where z is read).
    last: usize,
}

/// What [`StaticProblem`] writes at W: dL/dW (N x N, column-major: the layout of `net.w`) and
/// the readout z = b^T x(T)/N.
#[derive(Debug, Clone)]
pub struct StaticEval {
    pub grad: Vec<f64>,
    pub z: f64,
}

impl StaticEval {
    /// A buffer for a network of `n` neurons (z NaN until written).
    pub fn new(n: usize) -> Self {
        StaticEval {
            grad: vec![0.0; n * n],
            z: f64::NAN,
        }
    }
}

impl GradNorm for StaticEval {
    /// |dL/dW|_F, summed in storage order.
    fn grad_norm(&self) -> f64 {
        self.grad.iter().map(|v| v * v).sum::<f64>().sqrt()
    }
    fn is_finite(&self) -> bool {
        self.grad.iter().all(|g| g.is_finite())
    }
}

/// GD on the network's recurrent weights: W <- (1 - eta lambda) W - eta dL/dW.
impl Descend<StaticEval> for Network {
    fn descend(&mut self, e: &StaticEval, eta: f64, lambda: f64) {
        if lambda != 0.0 {
            self.w *= 1.0 - eta * lambda;
        }
        for (w, gi) in self.w.as_mut_slice().iter_mut().zip(&e.grad) {
            *w -= eta * gi;
        }
    }
}

impl StaticProblem {
    /// Seed `seed` of a static-task setting ([`seeded_static_network`]) and its single trial
    /// ([`static_trial`]): the generator after its draws, the network and the problem.
    pub fn seeded(
        n: usize,
        g: f64,
        dt: f64,
        task: (f64, f64, f64),
        seed: u64,
    ) -> (StdRng, Network, StaticProblem) {
        let (mut rng, net, task) = seeded_static_network(n, g, dt, task, seed);
        let (trials, last, ws) = static_trial(&net, &task, &mut rng);
        (rng, net, StaticProblem { ws, trials, last })
    }

    /// The loss of `net` on the trial (no gradient).
    pub fn loss_only(&mut self, net: &Network) -> Result<f64> {
        self.ws.loss_only(net, &self.trials)
    }
}

impl Problem for StaticProblem {
    type Params = Network;
    type Grad = StaticEval;

    fn loss_grad(&mut self, _: usize, net: &Network, e: &mut StaticEval) -> Result<f64> {
        let loss = self
            .ws
            .loss_and_grad(net, &self.trials, &Trainable::FULL, &mut e.grad)?;
        e.z = self.ws.readouts(self.last)[(1, 0)];
        Ok(loss)
    }

    /// The whole evaluation at the cap (the last point of a record carries z).
    fn loss_at_cap(
        &mut self,
        step: usize,
        net: &Network,
        e: &mut StaticEval,
    ) -> Result<Option<f64>> {
        self.loss_grad(step, net, e).map(Some)
    }
}

/// The record of [`run_static`]: the loss and z at every evaluated point (before each step and
/// at the end) and the sum of |dL/dW| over the steps taken.
struct StaticRecord {
    losses: Vec<f64>,
    z: Vec<f64>,
    grad_sum: f64,
}

impl StaticRecord {
    fn point(&mut self, loss: f64, e: &StaticEval) {
        self.losses.push(loss);
        self.z.push(e.z);
    }
}

impl Observer<StaticProblem> for StaticRecord {
    fn before(&mut self, _: usize, _: &Network, e: &StaticEval, loss: f64) -> Result<()> {
        self.point(loss, e);
        self.grad_sum += e.grad_norm();
        Ok(())
    }
    fn end(&mut self, _: usize, _: &Network, e: &StaticEval, loss: Option<f64>) -> Result<()> {
        if let Some(l) = loss {
            self.point(l, e);
        }
        Ok(())
    }
}

/// The stopping rules of [`run_static`]: L < tol, the step cap, and divergence at a non-finite
/// loss or gradient or a loss above 1e4 L_0.
fn static_stop(s: &StaticSetting, seed: u64) -> Stop {
    Stop::steps(s.max_steps, &format!("static task g={} seed={seed}", s.g))
        .loss_tol(s.tol)
        .diverge_above(f64::INFINITY)
        .relative_divergence(1e4, 0.0)
        .hint(&format!("try a smaller lr0 (e.g. {:.3e})", s.lr0 / 4.0))
}

/// Train one network (seed `seed`) on the static task with plain GD (the iteration driver
/// [`iterate`] with [`Gd`]) and measure. Not reaching L < tol within the step cap is
/// [`Error::NoConvergence`].
pub fn run_static(s: &StaticSetting, seed: u64) -> Result<StaticRun> {
    let task = (s.u, s.t_max, s.zhat);
    let (mut rng, mut net, mut problem) = StaticProblem::seeded(s.n, s.g, s.dt, task, seed);
    let lr = s.lr0 * (1.0 - s.g * s.g).powi(2);
    let mut eval = StaticEval::new(s.n);
    let points = s.max_steps.saturating_add(1).min(1 << 20);
    let mut record = StaticRecord {
        losses: Vec::with_capacity(points),
        z: Vec::with_capacity(points),
        grad_sum: 0.0,
    };
    let stop = static_stop(s, seed);
    let mut gd = Gd {
        eta: lr,
        lambda: 0.0,
    };
    let out = iterate(
        &mut problem,
        &mut gd,
        &mut net,
        &mut eval,
        &stop,
        &mut record,
    )?;
    // the cap's point counts when it meets the tolerance
    let loss = out.loss.unwrap_or(f64::NAN);
    if out.reason == Reason::MaxSteps && !stop.below_tol(loss) {
        return Err(Error::NoConvergence {
            solver: "static-task GD".into(),
            iterations: out.steps,
            residual: loss,
            tolerance: s.tol,
        });
    }
    let step = out.steps;
    let dw = &net.w - &net.w0;
    let tau_conv = crossing_time(&record.losses, s.tol, lr).unwrap_or(f64::NAN);
    let mut shuffled = net.clone();
    shuffled.w = permute_entries(&net.w0, &mut rng) + &dw;
    let loss_shuffled = problem.loss_only(&shuffled)?;
    Ok(StaticRun {
        g: s.g,
        seed,
        lr,
        steps: step,
        tau_conv,
        dw_norm: dw.norm(),
        mean_grad: record.grad_sum / step.max(1) as f64,
        loss0: record.losses[0],
        loss_shuffled,
        z: record.z,
    })
}

/// The X-5 setting at bulk strength g (proofs-checks/X-05): N = 256, dt = 0.5, t_max = 30,
/// u = 1, zhat = 0.5, eta0 = 0.02, tol = 1e-4 zhat^2.
pub fn x5_setting(g: f64) -> StaticSetting {
    StaticSetting {
        n: 256,
        g,
        dt: 0.5,
        t_max: 30.0,
        u: 1.0,
        zhat: 0.5,
        lr0: 0.02,
        tol: 1e-4 * 0.25,
        max_steps: 5000,
    }
}

/// The I-10 quantities at one g, one value per seed, each normalised to the g = 0 network
/// (which has W0 = 0 and so is the same for every seed): tau_conv, |dW|, mean gradient and
/// z at tau~ = `tt_probe`; the shuffle loss L(W0 permuted + dW) / L0 is its own ratio.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    pub g: f64,
    pub seeds: usize,
    pub tau_conv: Vec<f64>,
    pub dw_norm: Vec<f64>,
    pub mean_grad: Vec<f64>,
    pub shuffle_ratio: Vec<f64>,
    pub z_probe: Vec<f64>,
    /// Mean initial loss L0 / (zhat^2/2) - 1 (finite-N random readout of the untrained net).
    pub loss0_offset: f64,
}

/// The readout z at dressed time tau~ = beta^2 eta k, linearly interpolated in k.
pub fn z_at_dressed_time(run: &StaticRun, tt: f64) -> f64 {
    let b2 = (1.0 - run.g * run.g).powi(-2);
    let x = tt / (b2 * run.lr);
    let k = x.floor() as usize;
    if k + 1 >= run.z.len() {
        return *run.z.last().unwrap_or(&f64::NAN);
    }
    let f = x - k as f64;
    run.z[k] * (1.0 - f) + run.z[k + 1] * f
}

/// Train networks at each g of `gs` (the first must be 0: the normalisation; W0 = 0 there, so
/// one network suffices and the result does not depend on the draw of the orthogonal patterns)
/// and `seeds` networks (seeds 1..=seeds) at every other g; all runs in parallel, results in
/// (g, seed) order.
pub fn curve(
    setting: impl Fn(f64) -> StaticSetting + Sync + Send,
    gs: &[f64],
    seeds: u64,
    tt_probe: f64,
) -> Result<Vec<CurvePoint>> {
    if gs.first() != Some(&0.0) {
        return Err(Error::Requirement(
            "the I-10 curves are normalised to g = 0: the first g must be 0".into(),
        ));
    }
    let jobs: Vec<(f64, u64)> = gs
        .iter()
        .flat_map(|&g| (1..=if g == 0.0 { 1 } else { seeds }).map(move |s| (g, s)))
        .collect();
    let runs = crate::num::stats::par_map(&jobs, |&(g, seed)| run_static(&setting(g), seed))?;
    let base = &runs[0];
    let z0 = z_at_dressed_time(base, tt_probe);
    let mut out = Vec::new();
    for &g in gs {
        let rs: Vec<&StaticRun> = runs.iter().filter(|r| r.g == g).collect();
        let col = |f: &dyn Fn(&StaticRun) -> f64| rs.iter().map(|r| f(r)).collect::<Vec<_>>();
        let zhat = setting(g).zhat;
        let offsets = col(&|r| r.loss0 / (0.5 * zhat * zhat));
        out.push(CurvePoint {
            g,
            seeds: rs.len(),
            tau_conv: col(&|r| r.tau_conv / base.tau_conv),
            dw_norm: col(&|r| r.dw_norm / base.dw_norm),
            mean_grad: col(&|r| r.mean_grad / base.mean_grad),
            shuffle_ratio: col(&|r| r.loss_shuffled / r.loss0),
            z_probe: col(&|r| z_at_dressed_time(r, tt_probe) / z0),
            loss0_offset: offsets.iter().sum::<f64>() / offsets.len() as f64 - 1.0,
        });
    }
    Ok(out)
}

/// Bulk strengths of X-5.
pub const X5_G: [f64; 4] = [0.0, 0.3, 0.5, 0.7];
/// Networks per g > 0 (THEORY I.7).
pub const X5_SEEDS: u64 = crate::num::stats::MIN_SEEDS;
/// Dressed time at which the collapse of z(tau~) is probed.
pub const X5_TT: f64 = 0.5;
/// Relative half-width of every band: the finite learning rate (eta0 = 0.02, ~130 steps to
/// convergence, so one step is < 1% of tau_conv; halving eta0 moves the seed means by less
/// than their intervals, proofs-checks/X-05).
pub const FLOOR: f64 = 0.02;
/// Resampling seed of the bootstrap intervals of.
pub const BOOT_SEED: u64 = 5;

/// The X-10 setting (proofs-checks/X-10): X-5 at N = 1024 and zhat = 0.2, where the
/// higher-order terms in zhat^2 beta and the random untrained readout (~ g beta / sqrt(N)) are
/// both smaller; tol = 1e-4 zhat^2.
pub fn x10_setting(g: f64) -> StaticSetting {
    StaticSetting {
        n: 1024,
        zhat: 0.2,
        tol: 1e-4 * 0.04,
        ..x5_setting(g)
    }
}

#[cfg(test)]
mod tests;
