//! The rotation kernel measured on trained networks (THEORY I-15, I-13).
//!
//! After task A the network holds an attractor x_A along a. Task B's readout z_BB = b^T phi(x_B(T))/N
//! (the B trial's readout at its end, as in I-12) has the full-W gradient
//! G = dz_BB/dW = sum_k dt Lambda_k phi(x_k)^T (BPTT of the network itself). Its neural tangent
//! kernel splits by the presynaptic factor:
//!
//! - **rotation**: W changed along w (x) phi(x_A) for any postsynaptic w (the existing attractor's
//!   activity drives the change; b (x) phi(x_A) is the direction I-13 names, the postsynaptic
//!   factor being dressed by the bulk): Theta_rot = |G p|^2 with p = phi(x_A)/|phi(x_A)|, i.e. the
//!   N Jacobian-vector products of z_BB along e_i (x) p;
//! - the single direction b (x) p: Theta_rot,b = (b^T G p)^2 / N;
//! - **new formation** (everything else, mainly the input-driven activity carried across the
//!   delay): Theta_rest = |G|_F^2 - Theta_rot.
//!
//! The I-13 estimate is Theta_rot ~ psi_A^2 beta, psi_A^2 = |phi(x_A)|^2/N; the lazy race gives
//! the share of the B loss removed by rotation f_rot ~ Theta_rot / (Theta_rot + Theta_new).
//! [`measure`] measures f_rot directly: a few small GD steps of task B (own loss on z_BB) from the
//! A solution, each step's first-order loss decrease eta |grad L|^2 split into its rotation part
//! eta |grad L p|^2 and the rest; the sum of the first-order decreases is compared with the actual
//! loss decrease (a check that the steps are small enough to be "early").
//!
//! Plain results only (the claim rows are built in `src/claims/rotation_kernel.rs`).

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::bptt::Workspace;
use super::network::{Network, NetworkSpec, Phi, Readout, Trainable};
use super::task::{LossKind, Task, Trials, WorkingMemory};
use super::train::{train_task, Optimizer, TrainOptions};
use crate::{Error, Result};

/// One measurement setting: network, task (A on a, B on b) and the early-B probe.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct KernelSetting {
    pub n: usize,
    pub g: f64,
    pub phi: Phi,
    pub dt: f64,
    /// Input pulse u_p for T_in, sustained level u_s for the delay T_d.
    pub u_p: f64,
    pub t_in: f64,
    pub u_s: f64,
    pub t_d: f64,
    /// Target zhat of both tasks.
    pub zhat: f64,
    /// Loss window of task A (task B's loss is on the trial end, where z_BB is read).
    pub t_loss_a: f64,
    /// Task A is trained by the gradient flow to L_A < `tol_a`.
    pub tol_a: f64,
    /// Early B: `probe_steps` GD steps whose first-order decreases add up to `probe_fraction`
    /// of the initial B loss (the step size is set from the first gradient).
    pub probe_steps: usize,
    pub probe_fraction: f64,
}

impl KernelSetting {
    /// The reference setting of the I-15 checks: tanh, rate readout, dt = 0.2, T_in = 2,
    /// u_p = 1, zhat = 0.5, A to L_A < 1e-4 (loss window 2), probe 8 steps removing 2% of L_B
    /// (at 10% the kernel of the seeds nearest the saddle moved visibly during the probe).
    pub fn reference(n: usize, g: f64, u_s: f64, t_d: f64) -> KernelSetting {
        KernelSetting {
            n,
            g,
            phi: Phi::Tanh,
            dt: 0.2,
            u_p: 1.0,
            t_in: 2.0,
            u_s,
            t_d,
            zhat: 0.5,
            t_loss_a: 2.0,
            tol_a: 1e-4,
            probe_steps: 8,
            probe_fraction: 0.02,
        }
    }

    fn network_spec(&self) -> NetworkSpec {
        NetworkSpec {
            n: self.n,
            g: self.g,
            dt: self.dt,
            phi: self.phi,
            readout: Readout::Rate,
            m0: [[0.0; 2]; 2],
        }
    }

    fn task(&self, pattern: usize, t_loss: f64) -> Task {
        Task::WorkingMemory(WorkingMemory {
            pattern,
            u_p: self.u_p,
            t_in: self.t_in,
            u_s: self.u_s,
            t_d: self.t_d,
            t_loss,
            zhat: self.zhat,
            loss: LossKind::Own,
            sigma0: 0.0,
        })
    }

    fn validate(&self) -> Result<()> {
        let bad = |field: &str, v: String, allowed: &str| {
            Err(Error::Requirement(format!(
                "rotation kernel: {field} = {v} (allowed: {allowed})"
            )))
        };
        if self.n < 4 {
            return bad("n", self.n.to_string(), ">= 4");
        }
        if !(self.g.is_finite() && (0.0..1.0).contains(&self.g)) {
            return bad(
                "g",
                self.g.to_string(),
                "0 <= g < 1 (beta = 1/(1-g^2) finite)",
            );
        }
        if !(self.probe_fraction > 0.0 && self.probe_fraction < 1.0) || self.probe_steps == 0 {
            return bad(
                "probe",
                format!(
                    "{} steps, fraction {}",
                    self.probe_steps, self.probe_fraction
                ),
                ">= 1 step, 0 < fraction < 1",
            );
        }
        Ok(())
    }
}

/// Everything measured on one seed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct KernelPoint {
    pub seed: u64,
    /// Task A converged (L_A < tol_a).
    pub converged_a: bool,
    /// psi_A^2 = |phi(x_A)|^2 / N at the A trial's end state.
    pub psi_sq: f64,
    /// Seed covariate eps = a^T x_B(T) / N before B.
    pub eps: f64,
    /// Overlap of the B trial's end rates with the A attractor's: phi(x_B(T)).phi(x_A)/|phi(x_A)|^2.
    pub attractor_overlap: f64,
    /// Theta_rot = |G p|^2 (all postsynaptic directions, presynaptic phi(x_A)).
    pub theta_rot: f64,
    /// Theta_rot,b = (b^T G p)^2 / N (the single direction b (x) phi(x_A)).
    pub theta_rot_b: f64,
    /// |G|_F^2, the full NTK of z_BB.
    pub theta_total: f64,
    /// Initial B loss and its decrease over the probe.
    pub loss_b0: f64,
    pub decrease_actual: f64,
    /// Sum of the first-order decreases eta |grad L_k|^2 and their rotation part.
    pub decrease_first_order: f64,
    pub decrease_rotation: f64,
    /// Step size of the probe.
    pub probe_lr: f64,
}

impl KernelPoint {
    /// Theta_rest = |G|^2 - Theta_rot (new formation and everything not driven by x_A).
    pub fn theta_rest(&self) -> f64 {
        self.theta_total - self.theta_rot
    }
    /// The measured lazy share Theta_rot / |G|^2.
    pub fn kernel_share(&self) -> f64 {
        self.theta_rot / self.theta_total
    }
    /// The measured f_rot: rotation part of the early B-loss decrease.
    pub fn f_rot(&self) -> f64 {
        self.decrease_rotation / self.decrease_first_order
    }
}

/// The cotangent of z_BB = y_b at the trial end (readout channel 1, last step).
fn end_cotangent(net: &Network, trials: &Trials) -> DMatrix<f64> {
    let mut ey = DMatrix::zeros(net.outputs(), trials.steps * trials.batch);
    ey[(1, (trials.steps - 1) * trials.batch)] = 1.0;
    ey
}

/// z_BB = y_b(T) of the B trial (`trials`, one trial, loss on the last step) and its full-W
/// gradient G (N x N, G_ij = dz/dW_ij) by the network's BPTT.
pub fn readout_gradient(net: &Network, trials: &Trials) -> Result<(f64, DMatrix<f64>)> {
    let mut ws = Workspace::new(net, trials.steps, trials.batch);
    ws.forward(net, trials)?;
    let z = ws.readouts(trials.steps - 1)[(1, 0)];
    ws.set_cotangent(&end_cotangent(net, trials));
    let mut grad = vec![0.0; net.num_params(&Trainable::FULL)];
    ws.backward(net, trials, &Trainable::FULL, &mut grad)?;
    Ok((z, DMatrix::from_vec(net.n, net.n, grad)))
}

/// z_BB alone (forward pass only).
pub fn readout_value(net: &Network, trials: &Trials) -> Result<f64> {
    let mut ws = Workspace::new(net, trials.steps, trials.batch);
    ws.forward(net, trials)?;
    Ok(ws.readouts(trials.steps - 1)[(1, 0)])
}

/// The Jacobian-vector product of z along dW = w p^T: w^T G p.
pub fn jvp(grad: &DMatrix<f64>, w: &DVector<f64>, p: &DVector<f64>) -> f64 {
    w.dot(&(grad * p))
}

/// The kernel split of one gradient G for the unit presynaptic vector `p` and the postsynaptic
/// pattern `b` (norm sqrt(N)): (|G p|^2, (b^T G p)^2 / N, |G|_F^2).
pub fn kernel_split(grad: &DMatrix<f64>, p: &DVector<f64>, b: &DVector<f64>) -> (f64, f64, f64) {
    let gp = grad * p;
    let n = b.len() as f64;
    (
        gp.norm_squared(),
        b.dot(&gp).powi(2) / n,
        grad.norm_squared(),
    )
}

/// End state of the first trial of `trials` on `net`.
fn end_state(net: &Network, trials: &Trials) -> Result<DVector<f64>> {
    let mut ws = Workspace::new(net, trials.steps, trials.batch);
    ws.forward(net, trials)?;
    Ok(ws.end_state().column(0).into_owned())
}

/// The network of seed `seed` after task A (gradient flow), with its A and B trials.
pub fn after_a(s: &KernelSetting, seed: u64) -> Result<(Network, bool, Trials, Trials)> {
    s.validate()?;
    let mut net = Network::new(&s.network_spec(), &mut StdRng::seed_from_u64(seed));
    let task_a = s.task(0, s.t_loss_a);
    let task_b = s.task(1, 0.0);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7a1e_0b0b);
    let (n, k, r, dt) = (net.n, net.inputs(), net.outputs(), net.dt);
    let trials_a = task_a.trials(n, k, r, dt, 1, &mut rng);
    let trials_b = task_b.trials(n, k, r, dt, 1, &mut rng);
    let opts = TrainOptions {
        optimizer: Optimizer::FLOW,
        lr: 0.0,
        tol: s.tol_a,
        max_steps: 20_000,
        ..TrainOptions::default()
    };
    let log = train_task(
        &mut net,
        &Trainable::FULL,
        &task_a,
        &opts,
        &mut rng,
        |_, _, _| Ok(()),
    )?;
    Ok((net, log.converged, trials_a, trials_b))
}

/// Measure the kernels and the early-B split on seed `seed`.
pub fn measure(s: &KernelSetting, seed: u64) -> Result<KernelPoint> {
    let (mut net, converged_a, trials_a, trials_b) = after_a(s, seed)?;
    let nf = net.n as f64;
    let x_a = end_state(&net, &trials_a)?;
    let rates_a = x_a.map(|v| net.phi.f(v));
    let psi_sq = rates_a.norm_squared() / nf;
    if psi_sq <= 0.0 || !psi_sq.is_finite() {
        return Err(Error::numerical(format!(
            "rotation kernel, seed {seed}: no A activity (psi_A^2 = {psi_sq})"
        )));
    }
    let p = &rates_a / rates_a.norm();
    let a = net.u.column(0).into_owned();
    let b = net.u.column(1).into_owned();
    let x_b = end_state(&net, &trials_b)?;
    let eps = a.dot(&x_b) / nf;
    let attractor_overlap = x_b.map(|v| net.phi.f(v)).dot(&rates_a) / rates_a.norm_squared();

    let (z0, grad) = readout_gradient(&net, &trials_b)?;
    let (theta_rot, theta_rot_b, theta_total) = kernel_split(&grad, &p, &b);

    // early B: GD on L = (z - zhat)^2 / 2 with a step set so that the first-order decreases
    // add up to `probe_fraction` of L_B(0) if the gradient stayed as it is
    let loss = |z: f64| 0.5 * (z - s.zhat).powi(2);
    let loss_b0 = loss(z0);
    let g0 = (z0 - s.zhat).powi(2) * theta_total;
    if !(g0 > 0.0 && g0.is_finite()) {
        return Err(Error::numerical(format!(
            "rotation kernel, seed {seed}: zero or non-finite B gradient (|grad L|^2 = {g0})"
        )));
    }
    let lr = s.probe_fraction * loss_b0 / (s.probe_steps as f64 * g0);
    let (mut first, mut rot) = (0.0, 0.0);
    let (mut z, mut grad) = (z0, grad);
    for _ in 0..s.probe_steps {
        let e = z - s.zhat;
        let (gr, _, gt) = kernel_split(&grad, &p, &b);
        first += lr * e * e * gt;
        rot += lr * e * e * gr;
        net.w -= &grad * (lr * e);
        let next = readout_gradient(&net, &trials_b)?;
        z = next.0;
        grad = next.1;
    }
    Ok(KernelPoint {
        seed,
        converged_a,
        psi_sq,
        eps,
        attractor_overlap,
        theta_rot,
        theta_rot_b,
        theta_total,
        loss_b0,
        decrease_actual: loss_b0 - loss(z),
        decrease_first_order: first,
        decrease_rotation: rot,
        probe_lr: lr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::StandardNormal;

    /// The Jacobian-vector product w^T G p from BPTT against central finite differences of the
    /// forward pass along dW = w p^T, on a trained network at g = 0.5 (tanh): truncation
    /// h^2 z'''/6 with h = 1e-4 and z''' = O(1) is ~1e-9, rounding eps_mach |z| / h ~ 1e-12.
    #[test]
    fn jvp_matches_finite_differences() {
        let s = KernelSetting::reference(24, 0.5, 0.0, 4.0);
        let (net, _, trials_a, trials_b) = after_a(&s, 3).unwrap();
        let x_a = end_state(&net, &trials_a).unwrap();
        let ra = x_a.map(|v| net.phi.f(v));
        let p = &ra / ra.norm();
        let (_, grad) = readout_gradient(&net, &trials_b).unwrap();
        let mut rng = StdRng::seed_from_u64(11);
        let dirs: Vec<DVector<f64>> = vec![
            net.u.column(1).into_owned(),
            net.u.column(0).into_owned(),
            DVector::from_fn(net.n, |_, _| rng.sample::<f64, _>(StandardNormal)),
        ];
        let h = 1e-4;
        for w in &dirs {
            let pert = w * p.transpose();
            let mut plus = net.clone();
            plus.w += &pert * h;
            let mut minus = net.clone();
            minus.w -= &pert * h;
            let fd = (readout_value(&plus, &trials_b).unwrap()
                - readout_value(&minus, &trials_b).unwrap())
                / (2.0 * h);
            let an = jvp(&grad, w, &p);
            assert!(
                (fd - an).abs() < 1e-7 * (1.0 + an.abs()),
                "jvp {an:e} vs finite difference {fd:e}"
            );
        }
    }

    /// The split is a decomposition: 0 <= Theta_rot,b <= Theta_rot <= |G|^2, and for G = b p^T / N
    /// (all of it along the rotation direction) Theta_rot = Theta_rot,b = |G|^2 = 1/N.
    #[test]
    fn split_of_a_pure_rotation_gradient() {
        let n = 16;
        let b = DVector::from_fn(n, |i, _| if i % 2 == 0 { 1.0 } else { -1.0 });
        let p = DVector::from_fn(n, |i, _| (i as f64 + 1.0).sin()).normalize();
        let g = &b * p.transpose() / n as f64;
        let (r, rb, t) = kernel_split(&g, &p, &b);
        for v in [r, rb, t] {
            assert!((v - 1.0 / n as f64).abs() < 1e-15, "{v}");
        }
        let g2 = DMatrix::from_fn(n, n, |i, j| ((i * 7 + j * 3) as f64).cos());
        let (r, rb, t) = kernel_split(&g2, &p, &b);
        assert!(rb <= r * (1.0 + 1e-12) && r <= t * (1.0 + 1e-12));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut s = KernelSetting::reference(32, 1.0, 0.0, 5.0);
        assert!(measure(&s, 1).is_err());
        s.g = 0.5;
        s.probe_fraction = 1.5;
        assert!(measure(&s, 1).is_err());
    }
}
