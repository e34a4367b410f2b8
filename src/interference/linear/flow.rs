//! Gradient flow on M for the linear static 2x2 model (THEORY I-5, I-6): the general
//! recurrent-backprop gradient M' = eta R^T E kappa_nu^T, the explicit task-B equations, and
//! their integration with the shared Dormand–Prince solver, stopped by an event when the task
//! is learned.

use nalgebra::{Matrix2, SVector, Vector2};
use serde::Serialize;

use super::closed::{self, entries, Params, Task, SINGULAR_D};
use crate::num::ode::{self, OdeOptions};
use crate::{Error, Result};

/// The ODE state (lambda, p, q, s) of M = [[lambda, p], [q, s]].
pub type State = SVector<f64, 4>;

/// (lambda, p, q, s) as an ODE state.
pub fn to_state(m: &Matrix2<f64>) -> State {
    let (l, p, q, s) = entries(m);
    State::new(l, p, q, s)
}

/// M from an ODE state.
pub fn to_matrix(y: &State) -> Matrix2<f64> {
    closed::from_entries(y[0], y[1], y[2], y[3])
}

/// Which readouts a task's loss scores (I.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// L_mu = (zhat - z_mu)^2 / 2.
    Own,
    /// L_mu = [(zhat - z_mu)^2 + z_nu^2] / 2 (the other readout held at zero).
    Aligned,
}

/// The readout error vector E at the fixed point kappa_mu: own loss (zhat - z_mu) e_mu;
/// aligned loss additionally -z_nu e_nu. The loss is |E|^2 / 2.
pub fn error_vector(kappa: &Vector2<f64>, task: Task, loss: Loss, zhat: f64) -> Vector2<f64> {
    let i = task.index();
    let mut e = Vector2::zeros();
    e[i] = zhat - kappa[i];
    if loss == Loss::Aligned {
        let j = task.other().index();
        e[j] = -kappa[j];
    }
    e
}

/// The loss L_mu of `task` at M (I.1 own / aligned, evaluated at the input-driven fixed point).
pub fn loss(m: &Matrix2<f64>, task: Task, loss: Loss, par: &Params) -> Result<f64> {
    let kappa = closed::fixed_point(m, par.u, task)?;
    Ok(error_vector(&kappa, task, loss, par.zhat).norm_squared() / 2.0)
}

/// dL/dM = -R^T E kappa_mu^T (from d kappa = R dM kappa at the fixed point).
pub fn loss_gradient(
    m: &Matrix2<f64>,
    task: Task,
    loss: Loss,
    par: &Params,
) -> Result<Matrix2<f64>> {
    let r = closed::resolvent(m)?;
    let kappa = r.column(task.index()) * par.u;
    let e = error_vector(&kappa, task, loss, par.zhat);
    Ok(-(r.transpose() * e) * kappa.transpose())
}

/// The learning rule that moves M (THEORY III.1, E-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The exact gradient flow M' = eta R^T E kappa_mu^T (I-5): the learning signal is carried
    /// back through the recurrent loop by R^T = (I - M)^-T.
    #[default]
    Gradient,
    /// e-prop (E-1): the adjoint's Jacobian replaced by its diagonal, which in the 2x2 model is
    /// the delta rule M' = eta E kappa_mu^T (learning signal = the readout error itself,
    /// eligibility = the presynaptic state). For task B under the own loss only row b of M
    /// (q, s) moves; lambda and p stay.
    Eprop,
}

impl Rule {
    /// The name used in model files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Gradient => "gradient",
            Rule::Eprop => "eprop",
        }
    }

    /// The names accepted in model files.
    pub const NAMES: [&'static str; 2] = ["gradient", "eprop"];

    /// Parse a model-file name (one of [`Rule::NAMES`]).
    pub fn from_name(name: &str) -> Option<Rule> {
        match name {
            "gradient" => Some(Rule::Gradient),
            "eprop" => Some(Rule::Eprop),
            _ => None,
        }
    }
}

/// The update direction of `rule` for error vector `e` at the fixed point `kappa` (R the
/// resolvent): gradient R^T E kappa^T, e-prop E kappa^T. M' = eta times this.
fn rule_direction(
    r: &Matrix2<f64>,
    kappa: &Vector2<f64>,
    e: &Vector2<f64>,
    rule: Rule,
) -> Matrix2<f64> {
    match rule {
        Rule::Gradient => (r.transpose() * e) * kappa.transpose(),
        Rule::Eprop => e * kappa.transpose(),
    }
}

/// The flow of `rule`: M' = eta R^T E kappa_mu^T (gradient, I-5) or eta E kappa_mu^T (e-prop,
/// E-1).
pub fn rule_flow(
    m: &Matrix2<f64>,
    task: Task,
    loss: Loss,
    rule: Rule,
    par: &Params,
) -> Result<Matrix2<f64>> {
    let r = closed::resolvent(m)?;
    let kappa = r.column(task.index()) * par.u;
    let e = error_vector(&kappa, task, loss, par.zhat);
    Ok(rule_direction(&r, &kappa, &e, rule) * par.eta)
}

/// I-5: the gradient flow M' = -eta dL/dM = eta R^T E kappa_mu^T.
pub fn gradient_flow(
    m: &Matrix2<f64>,
    task: Task,
    loss: Loss,
    par: &Params,
) -> Result<Matrix2<f64>> {
    Ok(-par.eta * loss_gradient(m, task, loss, par)?)
}

/// I-6: the explicit task-B equations for the own loss, e = zhat - z_BB:
/// lambda' = eta e u p q / D^2, p' = eta e u q (1 - lambda) / D^2,
/// q' = eta e u p (1 - lambda) / D^2, s' = eta e u (1 - lambda)^2 / D^2.
pub fn task_b_own_explicit(m: &Matrix2<f64>, par: &Params) -> Result<Matrix2<f64>> {
    let z = closed::readouts(m, par.u)?;
    let d = closed::det_d(m);
    let (l, p, q, _) = entries(m);
    let k = par.eta * (par.zhat - z.z_bb) * par.u / (d * d);
    Ok(closed::from_entries(
        k * p * q,
        k * q * (1.0 - l),
        k * p * (1.0 - l),
        k * (1.0 - l) * (1.0 - l),
    ))
}

/// Which pathways of the flow are left free (I-7 reduced flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pathway {
    /// The full 4-dimensional flow.
    Full,
    /// New formation alone: only s moves (lambda, p, q frozen).
    NewFormation,
    /// Rotation alone: only p and q move (lambda, s frozen).
    Rotation,
}

impl Pathway {
    fn mask(self) -> State {
        match self {
            Pathway::Full => State::new(1.0, 1.0, 1.0, 1.0),
            Pathway::NewFormation => State::new(0.0, 0.0, 0.0, 1.0),
            Pathway::Rotation => State::new(0.0, 1.0, 1.0, 0.0),
        }
    }
}

/// The ODE right-hand side, allocation-free; NaN where I - M is singular, which the integrator
/// reports as an `Ode` error.
fn rhs(y: &State, task: Task, loss: Loss, rule: Rule, par: &Params, mask: &State) -> State {
    let Some(r) = resolvent_at(y[0], y[1], y[2], y[3]) else {
        return State::repeat(f64::NAN);
    };
    let kappa = r.column(task.index()) * par.u;
    let e = error_vector(&kappa, task, loss, par.zhat);
    let g = rule_direction(&r, &kappa, &e, rule) * par.eta;
    State::new(g[(0, 0)], g[(0, 1)], g[(1, 0)], g[(1, 1)]).component_mul(mask)
}

/// R = (I - M)^-1 = (1/D) [[1 - s, p], [q, 1 - lambda]] at the state (lambda, p, q, s) of M,
/// D = (1 - lambda)(1 - s) - p q; `None` where |D| < [`SINGULAR_D`] (the flows' right-hand
/// sides return NaN there, which the integrator reports as an `Ode` error).
fn resolvent_at(l: f64, p: f64, q: f64, s: f64) -> Option<Matrix2<f64>> {
    let d = (1.0 - l) * (1.0 - s) - p * q;
    if d.abs() < SINGULAR_D {
        return None;
    }
    Some(Matrix2::new(1.0 - s, p, q, 1.0 - l) / d)
}

/// sqrt(2 L) without allocation; NaN where singular.
fn root_loss(y: &State, task: Task, loss: Loss, par: &Params) -> f64 {
    let m = to_matrix(y);
    let d = closed::det_d(&m);
    if d.abs() < SINGULAR_D {
        return f64::NAN;
    }
    let kappa = Matrix2::new(1.0 - y[3], y[1], y[2], 1.0 - y[0]).column(task.index()) * (par.u / d);
    error_vector(&kappa, task, loss, par.zhat).norm()
}

/// Integrator settings for the learning flows: rtol 1e-11, atol 1e-14. The stopping test is on
/// the readout, whose error is |grad z| times the state error; |grad z| ~ G_A^2 grows to ~1e4
/// at r = 0.05 (where rotation drives D -> 1e-4), so rtol 1e-11 keeps z accurate to ~1e-7, well
/// inside the 1e-6 task tolerance (at the solver default 1e-9 the event was missed there).
/// At this tolerance [`ode::Method::Auto`] integrates with DOP853 (2-3x fewer evaluations than
/// DP45 for the same digits); only event states are read from the dense output, so it is of
/// full order on the event step alone (`dense: false`).
pub fn ode_options() -> OdeOptions {
    OdeOptions {
        dense: false,
        ..OdeOptions::tol(1e-11, 1e-14)
    }
}

/// Tight settings used where learning *times* are compared to closed forms at 1e-6 relative
/// (I-7), for a task tolerance `tol` relative to zhat. The event sits where the distance to the target is ~tol,
/// and near it the flow contracts at a rate k, so a state error delta moves the event by
/// delta / (k tol): the event time is ill-conditioned by a factor 1/tol. Its relative error is
/// about rtol / (tol ln(1/tol)), so rtol = 1e-6 tol keeps it below 1e-6, clamped to
/// [1e-14, 1e-12] (below 1e-14 rounding in the steps dominates). atol = rtol / 1000. DOP853
/// (by [`ode::Method::Auto`]), dense output of full order on the event step only, as in
/// [`ode_options`].
pub fn precise_options_for(tol: f64) -> OdeOptions {
    let rtol = (1e-6 * tol).clamp(1e-14, 1e-12);
    OdeOptions {
        rtol,
        atol: rtol * 1e-3,
        dense: false,
        ..OdeOptions::default()
    }
}

/// [`precise_options_for`] at the default task tolerance 1e-6: rtol 1e-12, atol 1e-15.
pub fn precise_options() -> OdeOptions {
    precise_options_for(1e-6)
}

/// A learned task: the time at which sqrt(2 L) first fell below the tolerance, the final M and
/// the path (the integrator's accepted steps, in learning time).
#[derive(Debug, Clone)]
pub struct Learning {
    /// Learning time tau at which sqrt(2 L) = tol (|z - zhat| = tol for the own loss).
    pub t: f64,
    /// M at that time.
    pub m: Matrix2<f64>,
    /// Learning times of the accepted steps (ending at `t`).
    pub path_t: Vec<f64>,
    /// States (lambda, p, q, s) at `path_t`.
    pub path: Vec<State>,
}

fn check_start(m0: &Matrix2<f64>, task: Task, loss: Loss, par: &Params, tol: f64) -> Result<f64> {
    closed::resolvent(m0)?;
    let l0 = root_loss(&to_state(m0), task, loss, par);
    if l0 < tol {
        return Err(Error::Requirement(format!(
            "task {task:?} is already learned at the start (sqrt(2 L) = {l0:.3e} < tolerance {tol:.1e})"
        )));
    }
    Ok(l0)
}

/// Integrate M' = eta R^T E kappa^T (masked to `pathway`) from `m0` until sqrt(2 L) < `tol`,
/// in learning time. Fails with `NoConvergence` if this does not happen by
/// tau = 1e4 / (eta u zhat) (a hundred times the slowest learning time of any valid model), or
/// `Ode` if I - M turns singular. Near a singular I - M the flow turns stiff (rates ~1/D^4);
/// for the own loss [`learn_own`] avoids that.
pub fn learn(
    m0: &Matrix2<f64>,
    task: Task,
    loss: Loss,
    pathway: Pathway,
    par: &Params,
    tol: f64,
    opts: &OdeOptions,
) -> Result<Learning> {
    learn_rule(m0, task, loss, pathway, Rule::Gradient, par, tol, opts)
}

/// [`learn`] under a learning rule: M' = eta (rule direction), masked to `pathway`.
#[allow(clippy::too_many_arguments)]
pub fn learn_rule(
    m0: &Matrix2<f64>,
    task: Task,
    loss: Loss,
    pathway: Pathway,
    rule: Rule,
    par: &Params,
    tol: f64,
    opts: &OdeOptions,
) -> Result<Learning> {
    check_start(m0, task, loss, par, tol)?;
    let mask = pathway.mask();
    let t_max = 1e4 / (par.eta * par.u * par.zhat);
    let (trajectory, hit) = ode::solve_until(
        |_, y| rhs(y, task, loss, rule, par, &mask),
        0.0,
        to_state(m0),
        t_max,
        |_, y| root_loss(y, task, loss, par) - tol,
        opts,
    )?;
    let Some(t) = hit else {
        let (_, y) = trajectory.last();
        return Err(Error::NoConvergence {
            solver: format!("{} flow on M (task {task:?}, {pathway:?})", rule.name()),
            iterations: trajectory.t.len(),
            residual: root_loss(&y, task, loss, par),
            tolerance: tol,
        });
    };
    let m = to_matrix(&trajectory.eval(t));
    Ok(Learning {
        t,
        m,
        path_t: trajectory.t,
        path: trajectory.y,
    })
}

/// State of the loss-clock flow: (lambda, p, q, s, t).
type ClockState = SVector<f64, 5>;

/// The own-loss gradient flow in the *loss clock* sigma, in which the error decays as
/// e(sigma) = e(0) exp(-sigma). With g = mask . grad z_mu (grad z_mu = R^T e_mu kappa_mu^T) and
/// M' = eta e g in learning time, e' = -eta |g|^2 e; dividing by the contraction rate
/// eta |g|^2 gives dM/dsigma = e g / |g|^2 and dt/dsigma = 1 / (eta |g|^2). The path in M is the
/// same; the clock removes the 1/D^4 stiffness near a singular I - M (small r, where rotation
/// drives lambda -> 1 and D -> 0).
///
/// Under e-prop the direction is v = mask . (e_mu kappa_mu^T) instead of g, M' = eta e v, and the
/// error contracts at eta <grad z_mu, v> = eta R_mu,mu |kappa_mu|^2 (masked), so
/// dM/dsigma = e v / <grad z, v> and dt/dsigma = 1 / (eta <grad z, v>).
fn rhs_loss_clock(
    y: &ClockState,
    task: Task,
    rule: Rule,
    par: &Params,
    mask: &State,
) -> ClockState {
    let Some(r) = resolvent_at(y[0], y[1], y[2], y[3]) else {
        return ClockState::repeat(f64::NAN);
    };
    let kappa = r.column(task.index()) * par.u;
    let e = par.zhat - kappa[task.index()];
    let grad = r.row(task.index()).transpose() * kappa.transpose();
    let (g, n2) = match rule {
        Rule::Gradient => {
            let g = State::new(grad[(0, 0)], grad[(0, 1)], grad[(1, 0)], grad[(1, 1)])
                .component_mul(mask);
            (g, g.norm_squared())
        }
        Rule::Eprop => {
            let v = task.unit() * kappa.transpose();
            let v = State::new(v[(0, 0)], v[(0, 1)], v[(1, 0)], v[(1, 1)]).component_mul(mask);
            let gz = State::new(grad[(0, 0)], grad[(0, 1)], grad[(1, 0)], grad[(1, 1)]);
            (v, gz.dot(&v))
        }
    };
    if n2 == 0.0 || !n2.is_finite() {
        return ClockState::repeat(f64::NAN);
    }
    let dm = g * (e / n2);
    ClockState::new(dm[0], dm[1], dm[2], dm[3], 1.0 / (par.eta * n2))
}

/// Task `task` with the own loss, integrated in the loss clock sigma
/// (dM/dsigma = e g/|g|^2, dt/dsigma = 1/(eta |g|^2), g = grad z_mu masked to the pathway): the
/// same path and times as [`learn`] with [`Loss::Own`], robust where I - M approaches
/// singularity. The event |z_mu - zhat| = tol is reached at sigma ~ ln(|e(0)| / tol).
///
/// The readout error is |grad z| times the state error, and |grad z| grows like 1/D^2 where
/// I - M nears singularity (small r: D ~ 1e-7 at r = 0.005). If the event is missed at
/// `opts.rtol`, the integration is repeated with rtol divided by 100, down to 1e-14; the event
/// itself is always tested on the computed state, so a returned result does meet the tolerance.
pub fn learn_own(
    m0: &Matrix2<f64>,
    task: Task,
    pathway: Pathway,
    par: &Params,
    tol: f64,
    opts: &OdeOptions,
) -> Result<Learning> {
    learn_own_rule(m0, task, pathway, Rule::Gradient, par, tol, opts)
}

/// [`learn_own`] under a learning rule (see `rhs_loss_clock` for the e-prop clock). The e-prop
/// contraction rate R_mu,mu |kappa_mu|^2 is positive wherever the fixed point is stable
/// (R_bb = (1 - lambda)/D > 0), so the clock is well defined on the whole protocol.
pub fn learn_own_rule(
    m0: &Matrix2<f64>,
    task: Task,
    pathway: Pathway,
    rule: Rule,
    par: &Params,
    tol: f64,
    opts: &OdeOptions,
) -> Result<Learning> {
    let mut o = *opts;
    loop {
        match learn_own_at(m0, task, pathway, rule, par, tol, &o) {
            Err(Error::NoConvergence { .. }) if o.rtol > 1.5e-14 => {
                o.rtol = (o.rtol * 1e-2).max(1e-14);
                o.atol = (o.atol * 1e-2).max(1e-17);
            }
            other => return other,
        }
    }
}

fn learn_own_at(
    m0: &Matrix2<f64>,
    task: Task,
    pathway: Pathway,
    rule: Rule,
    par: &Params,
    tol: f64,
    opts: &OdeOptions,
) -> Result<Learning> {
    let e0 = check_start(m0, task, Loss::Own, par, tol)?;
    let mask = pathway.mask();
    let y0 = to_state(m0);
    let c0 = ClockState::new(y0[0], y0[1], y0[2], y0[3], 0.0);
    // In exact arithmetic the event is at sigma = ln(e0 / tol); 50 more units is e^-50 of slack.
    let sigma_max = (e0 / tol).ln() + 50.0;
    let (trajectory, hit) = ode::solve_until(
        |_, y| rhs_loss_clock(y, task, rule, par, &mask),
        0.0,
        c0,
        sigma_max,
        |_, y| root_loss(&y.fixed_rows::<4>(0).into_owned(), task, Loss::Own, par) - tol,
        opts,
    )?;
    let Some(sigma) = hit else {
        let (_, y) = trajectory.last();
        let d = closed::det_d(&to_matrix(&y.fixed_rows::<4>(0).into_owned()));
        return Err(Error::NoConvergence {
            solver: format!(
                "{} flow on M in the loss clock (task {task:?}, {pathway:?}; det(I - M) = {d:.1e}, \
                 the readout is too sensitive to resolve the tolerance)",
                rule.name()
            ),
            iterations: trajectory.t.len(),
            residual: root_loss(&y.fixed_rows::<4>(0).into_owned(), task, Loss::Own, par),
            tolerance: tol,
        });
    };
    let end = trajectory.eval(sigma);
    Ok(Learning {
        t: end[4],
        m: to_matrix(&end.fixed_rows::<4>(0).into_owned()),
        path_t: trajectory.y.iter().map(|y| y[4]).collect(),
        path: trajectory
            .y
            .iter()
            .map(|y| y.fixed_rows::<4>(0).into_owned())
            .collect(),
    })
}

/// The outcome of task B on the reference protocol of I-8 (task A learned, seed eps in both
/// off-diagonals, own loss on B until |z_BB - zhat| < tol).
#[derive(Debug, Clone, Serialize)]
pub struct TaskB {
    /// Learning time of task B.
    pub t: f64,
    /// M before B, [[lambda, p], [q, s]] row-major.
    pub m_before: [[f64; 2]; 2],
    /// M after B.
    pub m_after: [[f64; 2]; 2],
    pub readouts_before: closed::Readouts,
    pub readouts_after: closed::Readouts,
    /// Interference I = L_A(after B) / L_A(M = 0), own loss on A; L_A(M = 0) = (zhat - u)^2/2.
    pub interference: f64,
    /// Change of s during B (new formation, the one-factor pathway).
    pub delta_s: f64,
    /// Change of p q / (1 - lambda) during B (rotation, the two-factor pathway).
    pub delta_rotation: f64,
    /// Share of the change of s_eff carried by rotation: delta_rotation / (delta_s + delta_rotation).
    pub rotation_share: f64,
    /// Drift of the rule's conserved quantities over the integrator's steps (zero in exact
    /// arithmetic). Gradient: max |(p^2 - q^2)(t) - (p^2 - q^2)(0)| (I-6). e-prop: the largest
    /// of |lambda - lambda_0|, |p - p_0| and |(q - q_0) - p_0 (s - s_0)/(1 - lambda_0)| (E-2: the
    /// path is a straight line in (q, s)).
    pub conserved_drift: f64,
    /// The learning rule that moved M.
    pub rule: Rule,
}

fn rows(m: &Matrix2<f64>) -> [[f64; 2]; 2] {
    [[m[(0, 0)], m[(0, 1)]], [m[(1, 0)], m[(1, 1)]]]
}

/// Task B from `m0` with the own loss (the full I-6 flow, integrated in the loss clock by
/// [`learn_own`]); interference measured on A.
pub fn task_b_from(m0: &Matrix2<f64>, par: &Params, tol: f64, opts: &OdeOptions) -> Result<TaskB> {
    task_b_from_rule(m0, Rule::Gradient, par, tol, opts)
}

/// [`task_b_from`] under a learning rule.
pub fn task_b_from_rule(
    m0: &Matrix2<f64>,
    rule: Rule,
    par: &Params,
    tol: f64,
    opts: &OdeOptions,
) -> Result<TaskB> {
    let learned = learn_own_rule(m0, Task::B, Pathway::Full, rule, par, tol, opts)?;
    let m1 = learned.m;
    let l_a0 = loss(&Matrix2::zeros(), Task::A, Loss::Own, par)?;
    let interference = loss(&m1, Task::A, Loss::Own, par)? / l_a0;
    let delta_s = m1[(1, 1)] - m0[(1, 1)];
    let delta_rotation = closed::rotation_part(&m1) - closed::rotation_part(m0);
    let conserved_drift = match rule {
        Rule::Gradient => {
            let c0 = m0[(0, 1)].powi(2) - m0[(1, 0)].powi(2);
            learned
                .path
                .iter()
                .map(|y| (y[1] * y[1] - y[2] * y[2] - c0).abs())
                .fold(0.0, f64::max)
        }
        Rule::Eprop => {
            let (l0, p0, q0, s0) = entries(m0);
            let slope = p0 / (1.0 - l0);
            learned
                .path
                .iter()
                .map(|y| {
                    let line = (y[2] - q0) - slope * (y[3] - s0);
                    (y[0] - l0).abs().max((y[1] - p0).abs()).max(line.abs())
                })
                .fold(0.0, f64::max)
        }
    };
    Ok(TaskB {
        t: learned.t,
        m_before: rows(m0),
        m_after: rows(&m1),
        readouts_before: closed::readouts(m0, par.u)?,
        readouts_after: closed::readouts(&m1, par.u)?,
        interference,
        delta_s,
        delta_rotation,
        rotation_share: delta_rotation / (delta_s + delta_rotation),
        conserved_drift,
        rule,
    })
}

/// Task B on the reference protocol: from M = [[1 - r, eps], [eps, 0]].
pub fn task_b(par: &Params, eps: f64, tol: f64, opts: &OdeOptions) -> Result<TaskB> {
    task_b_from(&par.after_a(eps), par, tol, opts)
}

/// Task B on the reference protocol under a learning rule.
pub fn task_b_rule(
    par: &Params,
    eps: f64,
    rule: Rule,
    tol: f64,
    opts: &OdeOptions,
) -> Result<TaskB> {
    task_b_from_rule(&par.after_a(eps), rule, par, tol, opts)
}

#[cfg(test)]
mod tests;
