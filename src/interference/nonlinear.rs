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

/// Task A (pattern a, index 0) or B (pattern b, index 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Task {
    A,
    B,
}

impl Task {
    pub fn index(self) -> usize {
        match self {
            Task::A => 0,
            Task::B => 1,
        }
    }
}

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
        let dir = self.input_direction(task);
        let mut y0 = SVector::<f64, 3>::zeros();
        let mut pieces = Vec::with_capacity(3);
        for (t0, t1, u, window) in self.pieces() {
            let input = dir * u;
            let traj = solve(
                |_, y: &SVector<f64, 3>| {
                    let k = Vector2::new(y[0], y[1]);
                    let dk = match &self.finite_n {
                        Some(f) => -k + m * f.h(&k).0 + input,
                        None => rhs(&self.gain, m, &input, &k),
                    };
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
        Ok(Trial {
            pieces,
            loss: y0[2],
        })
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

/// Which learning mode task B took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The A fixed point moved by theta >= 45 degrees or vanished, and a B fixed point along b
    /// exists: A was overwritten.
    Rotation,
    /// The A fixed point persisted (theta < 45 degrees, still stable) and a B fixed point along
    /// b exists.
    NewFormation,
    /// Neither picture fits (e.g. no stable B fixed point along b, or no A fixed point).
    Undetermined,
}

/// Tracking of the A fixed point through the learning of B.
///
/// The "A fixed point" is the stable fixed point of the *delay flow of task A*,
/// kappa' = -kappa + G M kappa + u_s (e_a + leak e_b), reached at the end of the A trial (for
/// u_s = 0 the autonomous memory attractor, for u_s != 0 the input-driven fixed point).
#[derive(Debug, Clone, Serialize)]
pub struct AFixedPointTrack {
    /// The A fixed point for M_afterA.
    pub before: [f64; 2],
    /// Its continuation to M_afterB (Newton along the dense learning path of B), if it survived.
    pub after: Option<[f64; 2]>,
    pub after_kind: Option<FixedPointType>,
    /// Learning time at which the continuation was lost (the fixed point vanished, e.g. the
    /// eigenvalue of M carrying it fell below 1), if it was.
    pub vanished_at: Option<f64>,
    /// Rotation angle of the continued A fixed point (radians, [0, pi]).
    pub theta_continued: Option<f64>,
    /// Angle between the A fixed point before and the closest (in angle) stable fixed point of
    /// the A delay flow after B — defined also when the continuation vanished.
    pub theta_nearest: Option<f64>,
    /// 2 (1 - cos theta) with theta = theta_continued, else theta_nearest: the interference of a
    /// pure rotation at fixed norm under the aligned loss (docs/theory.md I.1).
    pub interference_from_theta: Option<f64>,
}

/// Fixed points (with stability) of the delay flows, by grid seeding + Newton in a box.
#[derive(Debug, Clone, Serialize)]
pub struct DelayFixedPoints {
    /// Delay flow of task A (input u_s (e_a + leak e_b)).
    pub task_a: Vec<FixedPoint>,
    /// Delay flow of task B (input u_s (e_b + leak e_a)).
    pub task_b: Vec<FixedPoint>,
}

/// The sequential protocol: learn A from M0, then B from M_afterA.
#[derive(Debug, Clone)]
pub struct Sequential {
    pub trials: Trials,
    pub learning_a: LearningOptions,
    pub learning_b: LearningOptions,
}

/// Everything measured in one sequential run.
#[derive(Debug, Clone, Serialize)]
pub struct SequentialResult {
    pub m0: [[f64; 2]; 2],
    pub m_after_a: [[f64; 2]; 2],
    pub m_after_b: [[f64; 2]; 2],
    pub learning_a: LearningSummary,
    pub learning_b: LearningSummary,
    /// L_A(M0).
    pub loss_a_untrained: f64,
    pub loss_a_after_a: f64,
    pub loss_a_after_b: f64,
    pub loss_b_after_a: f64,
    pub loss_b_after_b: f64,
    /// I = L_A(after B) / L_A(untrained).
    pub interference: f64,
    pub decomposition: Decomposition,
    /// Memories of the autonomous flow (u = 0) in closed form (claim I-1), after A and after B.
    pub attractors_after_a: Vec<EigenFixedPoint>,
    pub attractors_after_b: Vec<EigenFixedPoint>,
    /// Fixed points of the delay flows before B (= after A) and after B.
    pub delay_fixed_points_after_a: DelayFixedPoints,
    pub delay_fixed_points_after_b: DelayFixedPoints,
    pub a_fixed_point: Option<AFixedPointTrack>,
    /// The B fixed point after B (stable fixed point of the B delay flow reached by the B
    /// trial), if it lies along b (|cos| with e_b > cos 45 degrees).
    pub b_fixed_point: Option<[f64; 2]>,
    pub mode: Mode,
    pub mode_reason: String,
}

/// Substeps per accepted learning step in the continuation of the A fixed point.
const CONTINUATION_SUBSTEPS: usize = 8;
/// Grid of the fixed-point search in the delay flows.
const FIXED_POINT_GRID: usize = 16;

impl Sequential {
    fn delay_flow(&self, m: &Matrix2<f64>, task: Task) -> LatentFlow {
        let t = &self.trials;
        LatentFlow {
            m: *m,
            input: t.input_direction(task) * t.schedule.u_s,
            gain: t.gain.clone(),
        }
    }

    fn delay_fixed_points(&self, m: &Matrix2<f64>) -> Result<DelayFixedPoints> {
        // every fixed point has |k| <= r(|M|_F) + |u| (|k| = |G M k + u|, and G |M k| <= |k|
        // beyond the autonomous radius); the box adds a margin
        let u = self.trials.schedule.u_s.abs() * (1.0 + self.trials.leak.abs());
        let r = fixed_point_box(m, &self.trials.gain)? + 2.0 * u;
        let find = |task| {
            fixed_points_in_box(
                &self.delay_flow(m, task),
                [-r, -r],
                [r, r],
                FIXED_POINT_GRID,
            )
        };
        Ok(DelayFixedPoints {
            task_a: find(Task::A),
            task_b: find(Task::B),
        })
    }

    /// Run A then B; also returns the raw learning runs.
    pub fn run(&self, m0: &Matrix2<f64>) -> Result<(SequentialResult, LearningRun, LearningRun)> {
        let t = &self.trials;
        let run_a = learn(t, m0, Task::A, &self.learning_a)?;
        let m_a = run_a.m_end;
        let run_b = learn(t, &m_a, Task::B, &self.learning_b)?;
        let m_b = run_b.m_end;
        let loss_a_untrained = t.loss(m0, Task::A)?;
        let loss_a_after_b = t.loss(&m_b, Task::A)?;
        let delay_a = self.delay_fixed_points(&m_a)?;
        let delay_b = self.delay_fixed_points(&m_b)?;

        // The A fixed point: Newton in the A delay flow from the end of the A trial, else the
        // stable fixed point of that flow with the largest kappa_a.
        let end_a = t.trial(&m_a, Task::A)?.end_state();
        let a_point = self.stable_point_from(&m_a, Task::A, &end_a).or_else(|| {
            delay_a
                .task_a
                .iter()
                .filter(|f| is_stable(f.kind) && f.x[0].hypot(f.x[1]) > 1e-8)
                .max_by(|p, q| p.x[0].total_cmp(&q.x[0]))
                .map(|f| Vector2::new(f.x[0], f.x[1]))
        });
        let track = a_point.map(|x| self.track(&run_b, x, &delay_b.task_a));

        // The B fixed point: Newton in the B delay flow from the end of the B trial.
        let end_b = t.trial(&m_b, Task::B)?.end_state();
        let b_point = self
            .stable_point_from(&m_b, Task::B, &end_b)
            .filter(|x| x[1].abs() / x.norm() > std::f64::consts::FRAC_1_SQRT_2)
            .map(|x| [x[0], x[1]]);

        let (mode, mode_reason) = match &track {
            None => (
                Mode::Undetermined,
                "task A did not produce a stable fixed point".to_string(),
            ),
            Some(tr) => {
                let persisted = tr
                    .theta_continued
                    .is_some_and(|th| th < std::f64::consts::FRAC_PI_4)
                    && tr.after_kind.is_some_and(is_stable);
                match (persisted, b_point.is_some()) {
                    (true, true) => (
                        Mode::NewFormation,
                        format!(
                            "the A fixed point persisted (theta = {:.4} rad) and a B fixed point formed along b",
                            tr.theta_continued.unwrap_or(0.0)
                        ),
                    ),
                    (false, true) => (
                        Mode::Rotation,
                        match (tr.theta_continued, tr.vanished_at) {
                            (Some(th), _) => format!(
                                "the A fixed point rotated by theta = {th:.4} rad toward b"
                            ),
                            (None, Some(tau)) => format!(
                                "the A fixed point vanished at tau = {tau:.4}; the nearest remaining one is {} rad away",
                                tr.theta_nearest.map_or("-".to_string(), |th| format!("{th:.4}"))
                            ),
                            _ => "the A fixed point was lost".to_string(),
                        },
                    ),
                    (true, false) => (
                        Mode::Undetermined,
                        "the A fixed point persisted but no B fixed point along b formed"
                            .to_string(),
                    ),
                    (false, false) => (
                        Mode::Undetermined,
                        "the A fixed point was lost and no B fixed point along b formed"
                            .to_string(),
                    ),
                }
            }
        };

        let result = SequentialResult {
            m0: arr(m0),
            m_after_a: arr(&m_a),
            m_after_b: arr(&m_b),
            learning_a: (&run_a).into(),
            learning_b: (&run_b).into(),
            loss_a_untrained,
            loss_a_after_a: run_a.loss_end,
            loss_a_after_b,
            loss_b_after_a: run_b.loss_start,
            loss_b_after_b: run_b.loss_end,
            interference: loss_a_after_b / loss_a_untrained,
            decomposition: decompose(&m_a, &m_b),
            attractors_after_a: eigen_fixed_points(&m_a, &t.gain)?,
            attractors_after_b: eigen_fixed_points(&m_b, &t.gain)?,
            delay_fixed_points_after_a: delay_a,
            delay_fixed_points_after_b: delay_b,
            a_fixed_point: track,
            b_fixed_point: b_point,
            mode,
            mode_reason,
        };
        Ok((result, run_a, run_b))
    }

    /// Newton in the delay flow of `task` from `x0`: the point if it is a stable fixed point.
    fn stable_point_from(
        &self,
        m: &Matrix2<f64>,
        task: Task,
        x0: &Vector2<f64>,
    ) -> Option<Vector2<f64>> {
        let flow = self.delay_flow(m, task);
        let x = newton_fixed_point(&flow, x0)?;
        let fp = fixed_point_at(&flow, &x);
        (x.norm() > 1e-8 && is_stable(fp.kind)).then_some(x)
    }

    /// Continue the A fixed point along the learning path of B by Newton from the previous
    /// point, `CONTINUATION_SUBSTEPS` substeps per accepted step (dense output of M(tau)).
    /// Newton failing, or converging to a point that jumped by more than half its norm, marks
    /// the point as vanished.
    fn track(
        &self,
        run_b: &LearningRun,
        start: Vector2<f64>,
        after: &[FixedPoint],
    ) -> AFixedPointTrack {
        let mut x = start;
        let mut vanished_at = None;
        'outer: for w in run_b.path.t.windows(2) {
            for s in 1..=CONTINUATION_SUBSTEPS {
                let tau = w[0] + (w[1] - w[0]) * s as f64 / CONTINUATION_SUBSTEPS as f64;
                let m = unpack(&run_b.path.eval(tau));
                match newton_fixed_point(&self.delay_flow(&m, Task::A), &x) {
                    Some(xn) if (xn - x).norm() < 0.5 * x.norm() => x = xn,
                    _ => {
                        vanished_at = Some(tau);
                        break 'outer;
                    }
                }
            }
        }
        let angle = |y: &Vector2<f64>| {
            (start.dot(y) / (start.norm() * y.norm()))
                .clamp(-1.0, 1.0)
                .acos()
        };
        let theta_nearest = after
            .iter()
            .filter(|f| is_stable(f.kind) && f.x[0].hypot(f.x[1]) > 1e-8)
            .map(|f| angle(&Vector2::new(f.x[0], f.x[1])))
            .min_by(|p, q| p.total_cmp(q));
        let (after_pt, after_kind, theta_continued) = if vanished_at.is_some() {
            (None, None, None)
        } else {
            let kind = fixed_point_at(&self.delay_flow(&run_b.m_end, Task::A), &x).kind;
            (Some([x[0], x[1]]), Some(kind), Some(angle(&x)))
        };
        let theta = theta_continued.or(theta_nearest);
        AFixedPointTrack {
            before: [start[0], start[1]],
            after: after_pt,
            after_kind,
            vanished_at,
            theta_continued,
            theta_nearest,
            interference_from_theta: theta.map(|th| 2.0 * (1.0 - th.cos())),
        }
    }
}

/// Newton on the autonomous flow from `x0`; None if it does not converge.
fn newton_fixed_point(flow: &LatentFlow, x0: &Vector2<f64>) -> Option<Vector2<f64>> {
    planar::newton_fixed_point(flow, *x0, &NewtonOptions::default())
        .ok()
        .map(|r| r.x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::gain::GainKind;

    pub(crate) fn trials(kind: GainKind, loss: LossKind, leak: f64) -> Trials {
        Trials {
            gain: Gain::new(kind),
            schedule: Schedule {
                u_p: 1.0,
                t_in: 2.0,
                u_s: 0.1,
                t_d: 4.0,
                t_l: 1.5,
            },
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

    /// The loss of task B when only the *direct* effect of M on the trajectory is kept: the
    /// recurrent drive is M' G(|kappa0|^2) kappa0 along the frozen trajectory kappa0(t) of M,
    /// so the sensitivity obeys d(dkappa)/dt = -dkappa + dM G kappa0 (Jacobian -> the leak).
    /// Its derivative in M' at M' = M is e-prop's update by construction (THEORY III.1): an
    /// independent forward computation of what the e-prop adjoint must return.
    fn frozen_loss(tr: &Trials, m: &Matrix2<f64>, mp: &Matrix2<f64>, task: Task) -> f64 {
        let base = tr.trial(m, task).unwrap();
        let dir = tr.input_direction(task);
        let mut y0 = SVector::<f64, 3>::zeros();
        for ((t0, t1, u, window), piece) in tr.pieces().into_iter().zip(&base.pieces) {
            let input = dir * u;
            let traj = solve(
                |t, y: &SVector<f64, 3>| {
                    let k = Vector2::new(y[0], y[1]);
                    let z0 = piece.eval(t);
                    let k0 = Vector2::new(z0[0], z0[1]);
                    let (g0, _) = tr.gain.g_and_slope(k0.norm_squared());
                    // kappa0 solves kappa0' = -kappa0 + M G0 kappa0 + input (so kappa = kappa0
                    // at M' = M); only the direct drive M' G0 kappa0 sees M'
                    let dk = -k + mp * (k0 * g0) + input;
                    let dl = if window {
                        tr.running_loss(task, &k).0
                    } else {
                        0.0
                    };
                    SVector::<f64, 3>::new(dk[0], dk[1], dl)
                },
                t0,
                y0,
                t1,
                &tr.ode,
            )
            .unwrap();
            y0 = traj.last().1;
        }
        y0[2]
    }

    #[test]
    fn eprop_update_is_the_derivative_of_the_frozen_recurrence_loss() {
        let m = Matrix2::new(1.3, 0.2, -0.15, 0.4);
        for kind in [GainKind::Erf, GainKind::Tanh] {
            for loss in [LossKind::Own, LossKind::Aligned] {
                let mut tr = trials(kind, loss, 0.05);
                tr.rule = Rule::Eprop;
                let (l, upd) = tr.loss_and_gradient(&m, Task::B).unwrap();
                assert!((l - tr.loss(&m, Task::B).unwrap()).abs() < 1e-15);
                let (_, grad) = {
                    let mut g = tr.clone();
                    g.rule = Rule::Gradient;
                    g.loss_and_gradient(&m, Task::B).unwrap()
                };
                // e-prop is not the gradient here (M != 0 carries recurrent credit) ...
                assert!((upd - grad).norm() > 1e-3 * grad.norm(), "{upd} vs {grad}");
                // ... but it is the derivative of the frozen-recurrence loss, by central
                // differences (h = 1e-4: truncation ~1e-8 relative, ODE error 1e-11 / h).
                let h = 1e-4;
                for i in 0..2 {
                    for j in 0..2 {
                        let (mut mp, mut mm) = (m, m);
                        mp[(i, j)] += h;
                        mm[(i, j)] -= h;
                        let fd = (frozen_loss(&tr, &m, &mp, Task::B)
                            - frozen_loss(&tr, &m, &mm, Task::B))
                            / (2.0 * h);
                        assert!(
                            (fd - upd[(i, j)]).abs() < 1e-6 * upd.norm() + 1e-9,
                            "{kind:?} {loss:?} ({i},{j}): fd {fd} vs e-prop {}",
                            upd[(i, j)]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn eprop_equals_the_gradient_without_recurrence() {
        // M = 0: the Jacobian is -I, its own diagonal, so both adjoints coincide.
        let m = Matrix2::zeros();
        for kind in [GainKind::Erf, GainKind::Tanh] {
            let mut tr = trials(kind, LossKind::Aligned, 0.05);
            let (_, g) = tr.loss_and_gradient(&m, Task::A).unwrap();
            tr.rule = Rule::Eprop;
            let (_, e) = tr.loss_and_gradient(&m, Task::A).unwrap();
            assert!((g - e).norm() <= 1e-14 * g.norm(), "{g} vs {e}");
        }
    }

    #[test]
    fn eprop_with_a_finite_n_gain_is_refused() {
        let mut tr = trials(GainKind::Erf, LossKind::Own, 0.0);
        tr.rule = Rule::Eprop;
        let (a, b) = ([1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]);
        tr.finite_n = Some(FiniteNGain::new(
            GainKind::Erf,
            crate::latent::finite_n::Order::Exact,
            &a,
            &b,
        ));
        assert!(tr.loss_and_gradient(&Matrix2::identity(), Task::B).is_err());
    }

    #[test]
    fn adjoint_gradient_matches_central_differences() {
        let m = Matrix2::new(1.3, 0.2, -0.15, 0.4);
        for kind in [GainKind::Erf, GainKind::Tanh] {
            for loss in [LossKind::Own, LossKind::Aligned] {
                let tr = trials(kind, loss, 0.05);
                for task in [Task::A, Task::B] {
                    let (_, grad) = tr.loss_and_gradient(&m, task).unwrap();
                    // h = 1e-4: truncation h^2 L''' ~ 1e-8 relative; ODE error ~1e-11 / h = 1e-7
                    // absolute in the quotient is the floor, well below 1e-6 |grad|.
                    let h = 1e-4;
                    for i in 0..2 {
                        for j in 0..2 {
                            let mut mp = m;
                            mp[(i, j)] += h;
                            let mut mm = m;
                            mm[(i, j)] -= h;
                            let fd = (tr.loss(&mp, task).unwrap() - tr.loss(&mm, task).unwrap())
                                / (2.0 * h);
                            let err = (fd - grad[(i, j)]).abs() / grad.norm();
                            assert!(
                                err < 1e-6,
                                "{kind:?} {loss:?} {task:?} ({i},{j}): {fd} vs {}",
                                grad[(i, j)]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn line_kappa_a_zero_is_invariant_without_seed() {
        // M = diag(lambda, s), no leak: the B trial keeps kappa_a = 0 and the off-diagonal
        // gradient vanishes exactly (claim I-4).
        let tr = trials(GainKind::Erf, LossKind::Aligned, 0.0);
        let m = Matrix2::new(1.283, 0.0, 0.0, 0.3);
        let (_, grad) = tr.loss_and_gradient(&m, Task::B).unwrap();
        assert_eq!(grad[(0, 1)], 0.0);
        assert_eq!(grad[(1, 0)], 0.0);
        assert!(grad[(1, 1)].abs() > 1e-3);
    }

    #[test]
    fn decomposition_separates_the_bb_entry() {
        let before = Matrix2::new(1.28, 0.05, 0.05, 0.0);
        let after = Matrix2::new(1.20, 0.35, -0.25, 0.9);
        let d = decompose(&before, &after);
        assert_eq!(d.new_formation_part, [[0.0, 0.0], [0.0, 0.9]]);
        let r = d.rotation_part;
        assert!((r[0][0] + 0.08).abs() < 1e-15 && (r[0][1] - 0.3).abs() < 1e-15);
        assert!((r[1][0] + 0.3).abs() < 1e-15 && r[1][1] == 0.0);
        let total = 0.08f64.powi(2) + 2.0 * 0.09 + 0.81;
        assert!((d.rotation_share - (0.08f64.powi(2) + 0.18) / total).abs() < 1e-14);
        assert_eq!(decompose(&before, &before).rotation_share, 0.0);
    }

    #[test]
    fn learning_flow_reaches_the_tolerance_and_lowers_the_loss() {
        let tr = Trials {
            ode: OdeOptions {
                rtol: 1e-8,
                atol: 1e-11,
                ..OdeOptions::default()
            },
            ..trials(GainKind::Erf, LossKind::Aligned, 0.0)
        };
        let opts = LearningOptions {
            eta: 1.0,
            tol: 1e-4,
            tau_max: 1e3,
            ode: OdeOptions {
                rtol: 1e-6,
                atol: 1e-9,
                ..OdeOptions::default()
            },
        };
        let run = learn(&tr, &Matrix2::zeros(), Task::A, &opts).unwrap();
        assert!(run.converged && run.loss_start > 1e-2);
        // the event stops where L(M(tau)) = tol, located to ~1e-13 in tau
        assert!((run.loss_end - 1e-4).abs() < 1e-9, "{}", run.loss_end);
        // the loss decreases monotonically along the gradient flow (checked on the stored steps)
        let losses: Vec<f64> = run
            .path
            .y
            .iter()
            .map(|y| tr.loss(&unpack(y), Task::A).unwrap())
            .collect();
        assert!(losses.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-9)));
    }
}
