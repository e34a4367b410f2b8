//! The Euler/GD-discretised latent model: the network's trial layout and GD loop with the Gaussian (or finite-N) gain in place of the N neurons.

use super::*;
use crate::num::iterate::{iterate, Gd, Losses, Problem, Reason, Stop};

/// The Euler/GD-discretised latent model of THEORY I.2: the network's Euler map and trial
/// layout with h_N(kappa) replaced by G(|kappa|^2) kappa (erf gain).
#[derive(Debug, Clone)]
pub struct EulerLatent {
    pub gain: Gain,
    pub dt: f64,
    /// Euler steps T of a trial.
    pub steps: usize,
    /// Pulse steps (input u_p for k < n_in, u_s after).
    pub n_in: usize,
    /// Loss-window steps (states kappa_{T - n_loss + 1} .. kappa_T).
    pub n_loss: usize,
    pub u_p: f64,
    pub u_s: f64,
    pub zhat: f64,
    pub loss: LossKind,
    /// Input leak: the input of task mu is u_k (e_mu + leak e_nu).
    pub leak: f64,
    /// The finite-N gain of one pattern draw in place of G(|kappa|^2) kappa (claim I-14;
    /// `None`: the Gaussian limit of I.2).
    pub finite_n: Option<FiniteNGain>,
}

/// A GD run of one task.
#[derive(Debug, Clone, Serialize)]
pub struct GdRun {
    /// Update steps taken.
    pub steps: usize,
    pub converged: bool,
    /// Learning time at which L crosses tol, log-interpolated between the last two steps
    /// (tau = eta x steps on the step grid).
    pub tau: f64,
    pub m_end: [[f64; 2]; 2],
}

/// Learning time of a GD run from its loss record (loss before each step, the last one below
/// tol): log-interpolation of the crossing between the last two records.
pub fn crossing_tau(losses: &[f64], tol: f64, lr: f64) -> f64 {
    let s = losses.len().saturating_sub(1);
    if s == 0 {
        return 0.0;
    }
    let (l0, l1) = (losses[s - 1], losses[s]);
    if !(l1 < tol && l0 >= tol && l1 > 0.0) {
        return lr * s as f64;
    }
    let frac = (l0 / tol).ln() / (l0 / l1).ln();
    lr * ((s - 1) as f64 + frac)
}

pub(super) fn arr(m: &Matrix2<f64>) -> [[f64; 2]; 2] {
    [[m[(0, 0)], m[(0, 1)]], [m[(1, 0)], m[(1, 1)]]]
}

impl EulerLatent {
    /// The latent model of `spec` with input leak `leak`.
    pub fn new(spec: &XvalSpec, leak: f64) -> EulerLatent {
        let w = &spec.task;
        let steps = steps_for(w.t_in + w.t_d, spec.dt);
        EulerLatent {
            gain: Gain::new(GainKind::Erf),
            dt: spec.dt,
            steps,
            n_in: steps_for(w.t_in, spec.dt).min(steps),
            n_loss: if w.t_loss > 0.0 {
                steps_for(w.t_loss, spec.dt).min(steps)
            } else {
                1
            },
            u_p: w.u_p,
            u_s: w.u_s,
            zhat: w.zhat,
            loss: w.loss,
            leak,
            finite_n: None,
        }
    }

    /// The same model with the finite-N gain `gain` (exact h_N or its moment-matched
    /// expansion) in place of the Gaussian G(|kappa|^2) kappa.
    pub fn with_finite_n(mut self, gain: FiniteNGain) -> EulerLatent {
        self.finite_n = Some(gain);
        self
    }

    fn input(&self, k: usize, task: Task) -> Vector2<f64> {
        let u = if k < self.n_in { self.u_p } else { self.u_s };
        let mut d = Vector2::repeat(self.leak * u);
        d[task.index()] = u;
        d
    }

    /// h(kappa) = G kappa and its Jacobian Dh = G I + 2 G' kappa kappa^T (symmetric), or the
    /// finite-N map h_N and Dh_N.
    #[inline]
    pub fn h(&self, k: &Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        if let Some(f) = &self.finite_n {
            return f.h(k);
        }
        let (g, gp) = self.gain.g_and_slope(k.norm_squared());
        (
            k * g,
            Matrix2::identity() * g + k * k.transpose() * (2.0 * gp),
        )
    }

    /// Whether state kappa_j (j = 1..T) carries loss.
    fn in_window(&self, j: usize) -> bool {
        j + self.n_loss > self.steps
    }

    /// Loss term of a window state and its gradient dl/dkappa.
    fn running_loss(&self, task: Task, k: &Vector2<f64>) -> (f64, Vector2<f64>) {
        let (y, dh) = self.h(k);
        let c = 1.0 / self.n_loss as f64;
        let mu = task.index();
        let mut e = Vector2::zeros();
        e[mu] = y[mu] - self.zhat;
        if self.loss == LossKind::Aligned {
            e[1 - mu] = y[1 - mu];
        }
        (0.5 * c * e.norm_squared(), dh * e * c)
    }

    /// Forward trial: fills `states` with kappa_0..kappa_T and returns the loss.
    pub fn trial_into(&self, m: &Matrix2<f64>, task: Task, states: &mut Vec<Vector2<f64>>) -> f64 {
        states.clear();
        let mut k = Vector2::zeros();
        states.push(k);
        let mut l = 0.0;
        for s in 0..self.steps {
            let (h, _) = self.h(&k);
            k += (-k + m * h + self.input(s, task)) * self.dt;
            states.push(k);
            if self.in_window(s + 1) {
                l += self.running_loss(task, &k).0;
            }
        }
        l
    }

    /// Loss L_mu(M).
    pub fn loss(&self, m: &Matrix2<f64>, task: Task) -> f64 {
        let mut st = Vec::with_capacity(self.steps + 1);
        self.trial_into(m, task, &mut st)
    }

    /// kappa(T) at the end of a trial.
    pub fn end_state(&self, m: &Matrix2<f64>, task: Task) -> Vector2<f64> {
        let mut st = Vec::with_capacity(self.steps + 1);
        self.trial_into(m, task, &mut st);
        st[self.steps]
    }

    /// L_mu(M) and dL/dM by the exact discrete adjoint of the Euler map:
    /// lambda_T = dl_T, lambda_j = dl_j + (1 - dt) lambda_{j+1} + dt Dh(kappa_j) M^T lambda_{j+1},
    /// dL/dM = dt sum_k lambda_{k+1} h(kappa_k)^T (the discrete form of claim I-4).
    pub fn loss_and_gradient(
        &self,
        m: &Matrix2<f64>,
        task: Task,
        states: &mut Vec<Vector2<f64>>,
    ) -> (f64, Matrix2<f64>) {
        let l = self.trial_into(m, task, states);
        let t = self.steps;
        let mut lam = self.running_loss(task, &states[t]).1;
        let mut grad = Matrix2::zeros();
        for j in (0..t).rev() {
            // lambda = lambda_{j+1}; kappa_j feeds kappa_{j+1}
            let (h, dh) = self.h(&states[j]);
            grad += lam * h.transpose() * self.dt;
            let mut next = lam * (1.0 - self.dt) + dh * m.tr_mul(&lam) * self.dt;
            if j >= 1 && self.in_window(j) {
                next += self.running_loss(task, &states[j]).1;
            }
            lam = next;
        }
        (l, grad)
    }

    /// GD on one task from `m0` by the iteration driver [`iterate`], the rules of
    /// [`crate::rnn::train::train_task`]: loss before each update, stop when L < tol or after
    /// `max_steps` updates (not converged unless the last point meets the tolerance), a
    /// non-finite loss or gradient is [`Error::Diverged`]. Returns the run and M.
    pub fn train(
        &self,
        m0: &Matrix2<f64>,
        task: Task,
        spec: &XvalSpec,
    ) -> Result<(GdRun, Matrix2<f64>)> {
        let mut problem = EulerTask {
            model: self,
            task,
            states: Vec::with_capacity(self.steps + 1),
        };
        let stop = Stop::steps(
            spec.max_steps,
            &format!("Euler latent model, task {task:?}"),
        )
        .loss_tol(spec.tol)
        .diverge_above(f64::INFINITY)
        .hint("lower the learning rate");
        let mut gd = Gd {
            eta: spec.lr,
            lambda: 0.0,
        };
        let (mut m, mut g) = (*m0, Matrix2::zeros());
        let mut losses = Losses(Vec::with_capacity(
            spec.max_steps.saturating_add(1).min(1 << 20),
        ));
        let out = iterate(&mut problem, &mut gd, &mut m, &mut g, &stop, &mut losses)?;
        let converged =
            out.reason != Reason::MaxSteps || out.loss.is_some_and(|l| stop.below_tol(l));
        Ok((
            GdRun {
                steps: out.steps,
                converged,
                tau: crossing_tau(&losses.0, spec.tol, spec.lr),
                m_end: arr(&m),
            },
            m,
        ))
    }

    /// The fixed point of the delay flow of `task` (input u_s (e_mu + leak e_nu)) reached from
    /// the trial end state, by Newton on F = -kappa + G M kappa + input (Euler keeps fixed points).
    pub fn delay_fixed_point(&self, m: &Matrix2<f64>, task: Task) -> Result<Vector2<f64>> {
        let x0 = self.end_state(m, task);
        let input = self.input(self.steps - 1, task);
        let r = newton_static(
            |k| {
                let (h, dh) = self.h(k);
                (-k + m * h + input, -Matrix2::identity() + m * dh)
            },
            x0,
            &NewtonOptions::default(),
        )?;
        Ok(r.x)
    }
}

/// One task of the Euler latent model as a [`Problem`] of the iteration driver: L(M) and
/// dL/dM by the model's adjoint, the trial's states in a reused buffer.
struct EulerTask<'a> {
    model: &'a EulerLatent,
    task: Task,
    states: Vec<Vector2<f64>>,
}

impl Problem for EulerTask<'_> {
    type Params = Matrix2<f64>;
    type Grad = Matrix2<f64>;

    fn loss_grad(&mut self, _: usize, m: &Matrix2<f64>, g: &mut Matrix2<f64>) -> Result<f64> {
        let (l, grad) = self.model.loss_and_gradient(m, self.task, &mut self.states);
        *g = grad;
        Ok(l)
    }

    /// The whole evaluation at the cap (its gradient is tested for finiteness too).
    fn loss_at_cap(
        &mut self,
        step: usize,
        m: &Matrix2<f64>,
        g: &mut Matrix2<f64>,
    ) -> Result<Option<f64>> {
        self.loss_grad(step, m, g).map(Some)
    }
}
