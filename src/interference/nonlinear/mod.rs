//! The nonlinear 2x2 learning flow on the latent dynamics (docs/theory.md I.2, claim I-4).
//!
//! **Trial** for task mu in {A, B} (pattern index 0 = a, 1 = b; nu is the other one):
//! kappa(0) = 0 and
//!
//! ```text
//! kappa' = -kappa + G(|kappa|^2) M kappa + u(t) (e_mu + leak e_nu),
//! u(t) = u_p for 0 <= t < T_in (pulse),  u_s for T_in <= t <= T = T_in + T_d (sustained level),
//! ```
//!
//! with rate readouts y = G(|kappa|^2) kappa, i.e. y_e = G kappa . e_e, the latent form of
//! y_e = e^T phi(x) / N. The loss is averaged over the final window [T - T_L, T]
//! (0 < T_L <= T_d):
//!
//! ```text
//! own:     L_mu = (1/T_L) int_window 1/2 (y_mu - zhat)^2 dt
//! aligned: L_mu = (1/T_L) int_window 1/2 [(y_mu - zhat)^2 + y_nu^2] dt
//! ```
//!
//! `leak` is the input leak of the seed eps (a fraction of each input along the other
//! pattern); an initial M_ab = M_ba = eps is the other seed and lives in the initial M.
//!
//! **Adjoint gradient** (claim I-4): with l(kappa, t) the integrand above,
//! -mu' = J^T mu + dl/dkappa, mu(T) = 0, dL/dM = int_0^T mu(t) [G kappa(t)]^T dt, with J the
//! Jacobian of claim I-2. The input switches at T_in and dl/dkappa switches on at T - T_L, so
//! forward and backward solves run piecewise between these breakpoints; the backward solve
//! reads kappa(t) from the forward dense output and carries the gradient integral as four extra
//! states.
//!
//! **Learning flow**: dM/dtau = -eta dL/dM on the four entries of M, integrated with the
//! adaptive Dormand–Prince solver; the run stops at the first learning time tau where the loss
//! falls below the task tolerance (event on the true loss, see [`learn`]).

use std::cell::Cell;

use nalgebra::{Matrix2, SVector, Vector2};
use serde::{Deserialize, Serialize};

use crate::interference::linear::Rule;
use crate::latent::finite_n::FiniteNGain;
use crate::latent::flow::{eigen_fixed_points, fixed_point_box, is_stable, rhs, EigenFixedPoint};
use crate::latent::gain::Gain;
use crate::latent::LatentFlow;
use crate::num::eig2::FixedPointType;
use crate::num::newton::NewtonOptions;
use crate::num::ode::{solve, try_solve_until, OdeOptions, Trajectory};
use crate::num::planar::{self, fixed_point_at, fixed_points_in_box, FixedPoint};
use crate::{Error, Result};

mod sequential;
pub use sequential::*;

/// The input schedule and loss window of one trial (docs/theory.md I.1).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Schedule {
    /// Pulse amplitude u_p.
    pub u_p: f64,
    /// Pulse duration T_in > 0.
    pub t_in: f64,
    /// Sustained input level u_s during the delay (0: pure memory).
    pub u_s: f64,
    /// Delay T_d > 0.
    pub t_d: f64,
    /// Loss window T_L in (0, T_d], at the end of the delay.
    pub t_l: f64,
}

impl Schedule {
    /// Trial length T = T_in + T_d.
    pub fn total(&self) -> f64 {
        self.t_in + self.t_d
    }
    /// Start of the loss window, T - T_L.
    pub fn window_start(&self) -> f64 {
        self.total() - self.t_l
    }
}

/// Which readouts the loss constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// 1/2 (y_mu - zhat)^2.
    Own,
    /// 1/2 [(y_mu - zhat)^2 + y_nu^2].
    Aligned,
}

/// Task A (pattern a, index 0) or B (pattern b, index 1): the linear model's tasks.
pub use crate::interference::linear::Task;

/// Everything that defines a trial and its loss.
#[derive(Debug, Clone)]
pub struct Trials {
    pub gain: Gain,
    pub schedule: Schedule,
    pub loss: LossKind,
    /// Readout target zhat.
    pub zhat: f64,
    /// Input leak: the input of task mu is u(t) (e_mu + leak e_nu).
    pub leak: f64,
    /// Tolerances of the forward and adjoint solves.
    pub ode: OdeOptions,
    /// The finite-N gain of one pattern draw in place of G(|kappa|^2) kappa (claim I-14;
    /// `None`: the Gaussian limit). Readouts are then y = h_N(kappa).
    pub finite_n: Option<FiniteNGain>,
    /// The learning rule that turns the adjoint into the M-update (THEORY III.1):
    /// `Gradient`, the exact adjoint (claim I-4); `Eprop`, the adjoint with the Jacobian
    /// replaced by its diagonal. In the latent model the diagonal of the network's Jacobian is
    /// the leak, (1 - dt) + dt W_jj phi'(x_j) -> -1 in continuous time with W_jj = O(1/N), so
    /// e-prop keeps the learning signal dl/dkappa and the eligibility G kappa and drops the
    /// recurrent credit G M^T mu + 2 G' kappa (M kappa . mu). Only the Gaussian-limit gain
    /// supports it (with a finite-N gain the dropped W_jj term has no 2-D projection).
    pub rule: Rule,
}

/// A forward trial: the pieces [0, T_in], [T_in, T - T_L] (absent if T_L = T_d) and the window,
/// each a dense trajectory of (kappa_a, kappa_b, accumulated loss).
pub struct Trial {
    pub pieces: Vec<Trajectory<3>>,
    /// L_mu of the trial.
    pub loss: f64,
}

impl Trial {
    /// kappa(T) at the end of the trial.
    pub fn end_state(&self) -> Vector2<f64> {
        let (_, y) = self.pieces.last().expect("a trial has pieces").last();
        Vector2::new(y[0], y[1])
    }
}

impl Trials {
    /// Trials of the exact gradient at zhat = 1/2 in the Gaussian limit, forward and adjoint
    /// solves at rtol 1e-11, atol 1e-13: the accuracy at which the adjoint is compared with
    /// central differences of the loss (truncation ~1e-9 at h = 1e-4, trial error / h ~ 1e-7).
    pub fn accurate(gain: Gain, schedule: Schedule, loss: LossKind, leak: f64) -> Trials {
        Trials {
            gain,
            schedule,
            loss,
            zhat: 0.5,
            leak,
            ode: OdeOptions {
                rtol: 1e-11,
                atol: 1e-13,
                ..OdeOptions::default()
            },
            finite_n: None,
            rule: Rule::Gradient,
        }
    }

    fn input_direction(&self, task: Task) -> Vector2<f64> {
        let mut d = Vector2::repeat(self.leak);
        d[task.index()] = 1.0;
        d
    }

    /// The running loss l(kappa) inside the window and its gradient dl/dkappa.
    #[inline]
    fn running_loss(&self, task: Task, k: &Vector2<f64>) -> (f64, Vector2<f64>) {
        if let Some(f) = &self.finite_n {
            // y = h(kappa), dy_e/dkappa = row e of Dh
            let (y, dh) = f.h(k);
            let w = 1.0 / self.schedule.t_l;
            let mu = task.index();
            let mut e = Vector2::zeros();
            e[mu] = y[mu] - self.zhat;
            if self.loss == LossKind::Aligned {
                e[1 - mu] = y[1 - mu];
            }
            return (0.5 * w * e.norm_squared(), dh.tr_mul(&e) * w);
        }
        let (g, gp) = self.gain.g_and_slope(k.norm_squared());
        let w = 1.0 / self.schedule.t_l;
        let mu = task.index();
        let nu = 1 - mu;
        // y_e = G k_e, dy_e/dk = G e_e + 2 G' k_e k
        let e_mu = g * k[mu] - self.zhat;
        let mut grad_y = k * (2.0 * gp * k[mu]);
        grad_y[mu] += g;
        let mut l = 0.5 * w * e_mu * e_mu;
        let mut dl = grad_y * (w * e_mu);
        if self.loss == LossKind::Aligned {
            let y_nu = g * k[nu];
            let mut grad_nu = k * (2.0 * gp * k[nu]);
            grad_nu[nu] += g;
            l += 0.5 * w * y_nu * y_nu;
            dl += grad_nu * (w * y_nu);
        }
        (l, dl)
    }

    /// The breakpoints and input level of each piece: (t0, t1, u, in_window).
    fn pieces(&self) -> Vec<(f64, f64, f64, bool)> {
        let s = &self.schedule;
        let mut v = vec![(0.0, s.t_in, s.u_p, false)];
        if s.window_start() > s.t_in {
            v.push((s.t_in, s.window_start(), s.u_s, false));
        }
        v.push((s.window_start(), s.total(), s.u_s, true));
        v
    }

    /// Run the forward trial of `task` with connectivity `m`.
    pub fn trial(&self, m: &Matrix2<f64>, task: Task) -> Result<Trial> {
        let (pieces, end) = self.integrate_pieces(task, |_, _, k, input| match &self.finite_n {
            Some(f) => -k + m * f.h(k).0 + input,
            None => rhs(&self.gain, m, input, k),
        })?;
        Ok(Trial {
            pieces,
            loss: end[2],
        })
    }

    /// The trial of `task` piece by piece from kappa = 0: kappa' = `dk(i, t, kappa, input)` on
    /// piece i (with that piece's input vector), the running loss accumulated inside the
    /// window. Returns each piece's dense trajectory of (kappa_a, kappa_b, accumulated loss)
    /// and the end state.
    fn integrate_pieces(
        &self,
        task: Task,
        mut dk: impl FnMut(usize, f64, &Vector2<f64>, &Vector2<f64>) -> Vector2<f64>,
    ) -> Result<(Vec<Trajectory<3>>, SVector<f64, 3>)> {
        let dir = self.input_direction(task);
        let mut y0 = SVector::<f64, 3>::zeros();
        let mut pieces = Vec::with_capacity(3);
        for (i, (t0, t1, u, window)) in self.pieces().into_iter().enumerate() {
            let input = dir * u;
            let traj = solve(
                |t, y: &SVector<f64, 3>| {
                    let k = Vector2::new(y[0], y[1]);
                    let dk = dk(i, t, &k, &input);
                    let dl = if window {
                        self.running_loss(task, &k).0
                    } else {
                        0.0
                    };
                    SVector::<f64, 3>::new(dk[0], dk[1], dl)
                },
                t0,
                y0,
                t1,
                &self.ode,
            )?;
            y0 = traj.last().1;
            pieces.push(traj);
        }
        Ok((pieces, y0))
    }

    /// The loss L_mu(M).
    pub fn loss(&self, m: &Matrix2<f64>, task: Task) -> Result<f64> {
        Ok(self.trial(m, task)?.loss)
    }

    /// L_mu(M) and the rule's M-update direction by the adjoint method: dL_mu/dM for
    /// [`Rule::Gradient`] (claim I-4), e-prop's update for [`Rule::Eprop`] (not a gradient).
    pub fn loss_and_gradient(&self, m: &Matrix2<f64>, task: Task) -> Result<(f64, Matrix2<f64>)> {
        if self.rule == Rule::Eprop && self.finite_n.is_some() {
            return Err(Error::Numerical(
                "e-prop in the latent model needs the Gaussian-limit gain (the finite-N W_jj term has no 2-D projection)".into(),
            ));
        }
        let trial = self.trial(m, task)?;
        let breaks = self.pieces();
        // state: (mu_a, mu_b, g_aa, g_ab, g_ba, g_bb), integrated backward from mu(T) = 0.
        let mut z = SVector::<f64, 6>::zeros();
        for (piece, &(t0, t1, _, window)) in trial.pieces.iter().zip(&breaks).rev() {
            let back = solve(
                |t, s: &SVector<f64, 6>| {
                    let y = piece.eval(t);
                    let k = Vector2::new(y[0], y[1]);
                    let mu = Vector2::new(s[0], s[1]);
                    // J^T mu = -mu + G M^T mu + 2 G' kappa (M kappa . mu)   (claim I-2);
                    // finite N: J = -I + M Dh, J^T mu = -mu + Dh M^T mu (Dh symmetric);
                    // e-prop: J -> its diagonal, the leak -I (THEORY III.1)
                    let (jt_mu, gk) = match &self.finite_n {
                        None if self.rule == Rule::Eprop => {
                            let (g, _) = self.gain.g_and_slope(k.norm_squared());
                            (-mu, k * g)
                        }
                        Some(f) => {
                            let (h, dh) = f.h(&k);
                            (-mu + dh * m.tr_mul(&mu), h)
                        }
                        None => {
                            let (g, gp) = self.gain.g_and_slope(k.norm_squared());
                            (
                                -mu + m.tr_mul(&mu) * g + k * (2.0 * gp * (m * k).dot(&mu)),
                                k * g,
                            )
                        }
                    };
                    let mut dmu = -jt_mu;
                    if window {
                        dmu -= self.running_loss(task, &k).1;
                    }
                    SVector::<f64, 6>::new(
                        dmu[0],
                        dmu[1],
                        -mu[0] * gk[0],
                        -mu[0] * gk[1],
                        -mu[1] * gk[0],
                        -mu[1] * gk[1],
                    )
                },
                t1,
                z,
                t0,
                &self.ode,
            )?;
            z = back.last().1;
        }
        Ok((trial.loss, Matrix2::new(z[2], z[3], z[4], z[5])))
    }
}

/// Options of one learning-flow run.
#[derive(Debug, Clone)]
pub struct LearningOptions {
    /// Learning rate eta of dM/dtau = -eta dL/dM.
    pub eta: f64,
    /// Stop when L < tol.
    pub tol: f64,
    /// Give up at learning time tau_max (reported as not converged).
    pub tau_max: f64,
    /// Tolerances of the learning-flow integrator (moderate: the flow is smooth and only the
    /// stopping time and end point matter).
    pub ode: OdeOptions,
}

/// One learning-flow run for one task.
#[derive(Debug, Clone)]
pub struct LearningRun {
    pub task: Task,
    /// Learning time to reach L < tol (tau_max if not converged).
    pub tau: f64,
    pub converged: bool,
    pub loss_start: f64,
    /// The loss at the end, recomputed by a forward trial.
    pub loss_end: f64,
    pub m_start: Matrix2<f64>,
    pub m_end: Matrix2<f64>,
    /// Dense trajectory of (M_aa, M_ab, M_ba, M_bb) over learning time.
    pub path: Trajectory<4>,
}

fn pack(m: &Matrix2<f64>) -> SVector<f64, 4> {
    SVector::<f64, 4>::new(m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)])
}

/// The connectivity M stored in a learning-flow state (row-major).
pub fn unpack(y: &SVector<f64, 4>) -> Matrix2<f64> {
    Matrix2::new(y[0], y[1], y[2], y[3])
}

/// Integrate dM/dtau = -eta dL_task/dM from `m0` until L < tol or tau_max.
///
/// The stopping event is the true loss L(M(tau)) - tol. Each right-hand-side evaluation
/// computes L together with the gradient and caches it, so the event at an accepted step (whose
/// end state is the last evaluated stage of Dormand–Prince, FSAL) costs nothing; states off the
/// step grid (event location on the dense output) cost one forward trial. (A tracked loss
/// Lhat' = -eta |grad|^2 is not used: its integration error, not the loss, then decides when
/// the run stops, and near zero loss it can stall above tol.)
pub fn learn(
    trials: &Trials,
    m0: &Matrix2<f64>,
    task: Task,
    opts: &LearningOptions,
) -> Result<LearningRun> {
    let l0 = trials.loss(m0, task)?;
    // the last right-hand-side state and its loss, shared by the flow and the event function
    let cache: Cell<(SVector<f64, 4>, f64)> = Cell::new((pack(m0), l0));
    let t_end = if l0 < opts.tol { 0.0 } else { opts.tau_max };
    let res = try_solve_until(
        |_, y: &SVector<f64, 4>| {
            let (l, grad) = trials.loss_and_gradient(&unpack(y), task)?;
            cache.set((*y, l));
            Ok(pack(&(-grad * opts.eta)))
        },
        0.0,
        pack(m0),
        t_end,
        |_, y| {
            let (yc, lc) = cache.get();
            let l = if yc == *y {
                lc
            } else {
                trials.loss(&unpack(y), task)?
            };
            Ok(l - opts.tol)
        },
        &opts.ode,
    );
    let (path, hit) = res?;
    let (tau, y) = path.last();
    let m_end = unpack(&y);
    let loss_end = trials.loss(&m_end, task)?;
    if !loss_end.is_finite() || m_end.iter().any(|v| !v.is_finite()) {
        return Err(Error::Diverged {
            what: format!("learning flow of task {task:?}"),
            step: path.t.len(),
            loss: loss_end,
            hint: "lower eta or the learning-flow tolerance".into(),
        });
    }
    Ok(LearningRun {
        task,
        tau,
        converged: hit.is_some() || l0 < opts.tol,
        loss_start: l0,
        loss_end,
        m_start: *m0,
        m_end,
        path,
    })
}

/// Summary of a learning run for reports.
#[derive(Debug, Clone, Serialize)]
pub struct LearningSummary {
    pub tau: f64,
    pub converged: bool,
    pub loss_start: f64,
    pub loss_end: f64,
    /// Accepted steps of the learning-flow integrator.
    pub steps: usize,
}

impl From<&LearningRun> for LearningSummary {
    fn from(r: &LearningRun) -> Self {
        LearningSummary {
            tau: r.tau,
            converged: r.converged,
            loss_start: r.loss_start,
            loss_end: r.loss_end,
            steps: r.path.t.len() - 1,
        }
    }
}

/// Decomposition of the change of M during task B, Delta M = M_afterB - M_afterA, in the
/// pattern basis (a, b):
/// - **new-formation part** N = Delta M_bb e_b e_b^T: the one-factor pathway that builds a
///   fixed point along b by itself (it leaves every state with kappa_b = 0, hence the A fixed
///   point, untouched);
/// - **rotation part** R = Delta M - N (Delta M_aa, Delta M_ab, Delta M_ba): the entries that
///   couple a and b or rescale a, i.e. the changes that move the A fixed point.
///
/// `rotation_share` = |R|_F^2 / |Delta M|_F^2 (0 when Delta M = 0).
#[derive(Debug, Clone, Serialize)]
pub struct Decomposition {
    pub delta_m: [[f64; 2]; 2],
    pub rotation_part: [[f64; 2]; 2],
    pub new_formation_part: [[f64; 2]; 2],
    pub rotation_norm: f64,
    pub new_formation_norm: f64,
    pub rotation_share: f64,
}

/// Row-major array of a 2x2 matrix.
pub fn arr(m: &Matrix2<f64>) -> [[f64; 2]; 2] {
    [[m[(0, 0)], m[(0, 1)]], [m[(1, 0)], m[(1, 1)]]]
}

pub fn decompose(m_before: &Matrix2<f64>, m_after: &Matrix2<f64>) -> Decomposition {
    let d = m_after - m_before;
    let n = Matrix2::new(0.0, 0.0, 0.0, d[(1, 1)]);
    let r = d - n;
    let total = d.norm_squared();
    Decomposition {
        delta_m: arr(&d),
        rotation_part: arr(&r),
        new_formation_part: arr(&n),
        rotation_norm: r.norm(),
        new_formation_norm: n.norm(),
        rotation_share: if total > 0.0 {
            r.norm_squared() / total
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests;
