//! Training the network on one task: GD, SGD, Adam and the gradient flow on the BPTT gradient
//! (THEORY I.1, I.7), or on the update direction of another learning rule ([`LearningRule`],
//! THEORY III.1).
//!
//! The problem (loss and gradient of a [`Network`] on [`Trials`]) lives in [`super::bptt`];
//! the optimiser is a small update rule on the flat parameter vector; [`train_task`] is the
//! driver that owns the loop, the stopping rules (loss < tol, step cap), divergence detection
//! and the progress display the application installs ([`set_progress`]).
//!
//! [`Optimizer::Flow`] is the gradient flow the theory describes, d theta / d tau = -grad L,
//! integrated by the adaptive Dormand–Prince 5(4) pair of [`crate::num::rk`] with local error
//! control (`flow_rtol`, `flow_atol`) on the parameter vector: every step is within the stated
//! tolerance of the flow, whatever the curvature, so no learning rate enters the result. Every
//! right-hand-side evaluation is one forward + BPTT pass ([`Sharded::loss_and_grad`]); the loss
//! of an accepted point is the by-product of its gradient (the pair is FSAL), so stopping at
//! L < tol costs no extra pass. The flow needs a fixed, deterministic set of trials: a random
//! task (noise `sigma0 > 0`, the flip-flop) is refused. Results carry the flow time `tau`
//! (for the stepping rules tau = lr x steps) and the number of gradient evaluations.
//!
//! Stiff flows ([`FlowMethod`]): the Jacobian of the flow is -Hessian, and in the long B phases
//! at g > 0 the 5(4) pair's steps are held at h ~ 3.3 / rho(Hessian) by its stability interval
//! while the loss barely moves. `flow_method = "rkc"` integrates the flow by
//! Runge–Kutta–Chebyshev 2 ([`crate::num::rkc`]) instead: s ~ sqrt(1.54 h rho) stages per step
//! from a power-iteration estimate of rho, the same `flow_rtol` / `flow_atol` on its embedded
//! error estimate, the same FSAL loss and a cubic Hermite dense output for the stopping point.
//! The default stays the 5(4) pair (more accurate per evaluation where the flow is not stiff).

use std::sync::OnceLock;

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use serde::Serialize;

use super::bptt::Sharded;
use super::network::{Network, Trainable};
use super::rules::{LearningRule, Perturbation};
use super::task::{Task, Trials};
use crate::num::ode::OdeOptions;
use crate::num::rk::DynDopri;
use crate::num::rkc::DynRkc;
use crate::{Error, Result};

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Full-batch gradient descent on a fixed set of `batch` trials drawn once.
    Gd,
    /// Online SGD: a fresh batch of `batch` trials every step.
    Sgd,
    /// Adam (Kingma & Ba) on fresh batches if the task is random, else on the fixed set.
    Adam { beta1: f64, beta2: f64, eps: f64 },
    /// The gradient flow d theta / d tau = -grad L on a fixed set of trials, integrated by
    /// adaptive Dormand–Prince 5(4) with the local error test
    /// |e_i| <= atol + rtol max(|theta_i|, |theta_new_i|) (RMS over the parameters). `atol`
    /// defaults to [`Optimizer::flow_atol`]. `lr`, if positive, is the first trial step in tau.
    Flow { rtol: f64, atol: Option<f64> },
    /// The modified flow of GD at step `eta` (THEORY B-12, I-18): the flow of
    /// L + (eta/4)|grad L|^2, integrated exactly as `Flow` (same tolerances and stop); the
    /// penalty's gradient (eta/2) H grad L comes from [`super::modified_flow::Penalty`].
    ModifiedFlow {
        eta: f64,
        rtol: f64,
        atol: Option<f64>,
    },
}

impl Optimizer {
    /// Adam with the usual constants (0.9, 0.999, 1e-8).
    pub const ADAM: Optimizer = Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };

    /// Default relative tolerance of the flow. Tightening it 10x or 100x moves I on the
    /// shipped `models/rnn-flow.toml` by at most 1.1e-4 relative over 16 seeds (X-11, X-12;
    /// THEORY I.7 asks < 0.5%); at 1e-4 the 100x move was up to 2.8%, at 1e-5 0.14%.
    pub const FLOW_RTOL: f64 = 1e-6;

    /// The flow with the default tolerances.
    pub const FLOW: Optimizer = Optimizer::Flow {
        rtol: Self::FLOW_RTOL,
        atol: None,
    };

    /// The absolute tolerance of the flow for `params` parameters of `n` neurons: `atol` if
    /// given, else rtol x the scale of one parameter, 1/sqrt(N) for full W (the size of an
    /// entry of W0 at g = 1; W at g = 0 starts at 0, so a purely relative test would stall)
    /// and 1 for M (entries of order one).
    pub fn flow_atol(rtol: f64, atol: Option<f64>, full: bool, n: usize) -> f64 {
        atol.unwrap_or_else(|| if full { rtol / (n as f64).sqrt() } else { rtol })
    }

    /// Whether this is the gradient flow (plain or modified: the flow driver integrates it).
    pub fn is_flow(&self) -> bool {
        matches!(
            self,
            Optimizer::Flow { .. } | Optimizer::ModifiedFlow { .. }
        )
    }
}

/// The integrator of the gradient flow ([`Optimizer::Flow`]; `[training] flow_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowMethod {
    /// Dormand–Prince 5(4) ([`crate::num::rk`]): the accurate choice where the flow is not
    /// stiff (models/rnn-flow.toml: half RKC's gradient evaluations, bench/README.md).
    #[default]
    Dopri,
    /// Runge–Kutta–Chebyshev 2 ([`crate::num::rkc`]): for stiff flows, whose explicit 5(4)
    /// steps are held at h ~ 3.3 / rho(Hessian) (the B phases at g > 0: 26x fewer gradient
    /// evaluations at g = 0.8, N = 256, bench/README.md).
    Rkc,
}

impl FlowMethod {
    /// The names of the model file's `flow_method`.
    pub const NAMES: [&'static str; 2] = ["dopri", "rkc"];

    /// The method named `name` (one of [`FlowMethod::NAMES`]).
    pub fn from_name(name: &str) -> Option<FlowMethod> {
        match name {
            "dopri" => Some(FlowMethod::Dopri),
            "rkc" => Some(FlowMethod::Rkc),
            _ => None,
        }
    }
}

/// Options of one training run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TrainOptions {
    pub optimizer: Optimizer,
    /// Learning rate eta.
    pub lr: f64,
    /// Stop when the loss drops below `tol`.
    pub tol: f64,
    /// Step cap.
    pub max_steps: usize,
    /// Trials per step.
    pub batch: usize,
    /// Divergence: loss above `diverge_factor` x max(initial loss, tol), or non-finite.
    pub diverge_factor: f64,
    /// Show a progress bar (only if stderr is a terminal).
    pub progress: bool,
    /// The learning rule that produces the update direction (THEORY III.1; default BPTT).
    pub rule: LearningRule,
    /// The flow's integrator (flow only; default [`FlowMethod::Dopri`]).
    pub flow_method: FlowMethod,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            optimizer: Optimizer::Gd,
            lr: 0.1,
            tol: 1e-4,
            max_steps: 10_000,
            batch: 1,
            diverge_factor: 1e4,
            progress: false,
            rule: LearningRule::Bptt,
            flow_method: FlowMethod::Dopri,
        }
    }
}

/// What a training run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainLog {
    /// Gradient steps taken (the learning time in steps; tau = lr x steps), or accepted steps
    /// of the flow integrator.
    pub steps: usize,
    /// Flow time: the integrated tau of the flow, lr x steps for the stepping rules.
    pub tau: f64,
    /// Forward + BPTT passes (gradient evaluations), including rejected flow steps.
    pub gradient_evaluations: usize,
    /// Forward-only passes locating the flow's crossing L = tol inside its last step.
    pub loss_evaluations: usize,
    /// Rejected steps of the flow integrator (0 for the stepping rules).
    pub rejected: usize,
    /// Accepted flow steps taken by RKC (0 for Dormand–Prince and the stepping rules), and the
    /// gradient evaluations RKC spent on its spectral-radius estimates.
    pub rkc_steps: usize,
    pub rho_evaluations: usize,
    pub converged: bool,
    pub initial_loss: f64,
    pub final_loss: f64,
    /// Loss before each step (at each accepted point of the flow).
    pub losses: Vec<f64>,
    /// tau at each entry of `losses`.
    pub taus: Vec<f64>,
}

/// Where a training run is, as the driver reports it to its observer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Step (accepted step of the flow).
    pub step: usize,
    /// Flow time tau (lr x step for the stepping rules).
    pub tau: f64,
    /// Loss at this point.
    pub loss: f64,
}

/// Reusable buffers of the optimiser.
struct Adam {
    m: DVector<f64>,
    v: DVector<f64>,
    t: i32,
}

/// Train `net` on `task` (parameters in `trainable`) until the loss is below `opts.tol` or
/// `opts.max_steps` steps. `observe(step, loss, net)` is called before every update (and once
/// after the last step; for the flow at every accepted point) and may record anything.
/// Deterministic given `rng`.
pub fn train_task(
    net: &mut Network,
    trainable: &Trainable,
    task: &Task,
    opts: &TrainOptions,
    rng: &mut StdRng,
    mut observe: impl FnMut(usize, f64, &Network) -> Result<()>,
) -> Result<TrainLog> {
    train_task_with(net, trainable, task, opts, rng, |p, net| {
        observe(p.step, p.loss, net)
    })
}

/// [`train_task`] with an observer that also sees the flow time ([`Progress`]).
pub fn train_task_with(
    net: &mut Network,
    trainable: &Trainable,
    task: &Task,
    opts: &TrainOptions,
    rng: &mut StdRng,
    observe: impl FnMut(&Progress, &Network) -> Result<()>,
) -> Result<TrainLog> {
    train_task_feedback(net, trainable, task, opts, None, rng, observe)
}

/// [`train_task_with`] with the rule's fixed feedback matrix given: random e-prop's B belongs to
/// the network, drawn once ([`LearningRule::feedback`]) and kept for every task it learns
/// (the sequential protocol passes the same B to A and to B). `None` draws it from `rng` after
/// the trials (a single run); rules other than random e-prop ignore it.
#[allow(clippy::too_many_arguments)]
pub fn train_task_feedback(
    net: &mut Network,
    trainable: &Trainable,
    task: &Task,
    opts: &TrainOptions,
    feedback: Option<&DMatrix<f64>>,
    rng: &mut StdRng,
    mut observe: impl FnMut(&Progress, &Network) -> Result<()>,
) -> Result<TrainLog> {
    let fresh = match opts.optimizer {
        Optimizer::Sgd => true,
        Optimizer::Gd => false,
        Optimizer::Adam { .. } => task.is_random(),
        Optimizer::Flow { rtol, atol } | Optimizer::ModifiedFlow { rtol, atol, .. } => {
            return train_flow(
                net, trainable, task, opts, rtol, atol, feedback, rng, observe,
            )
        }
    };
    let (n, k, r, dt) = (net.n, net.inputs(), net.outputs(), net.dt);
    let draw = |rng: &mut StdRng| -> Trials { task.trials(n, k, r, dt, opts.batch, rng) };
    let mut trials = draw(rng);
    // the batch split into shards run in parallel (deterministic for any thread count)
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut p = net.params(trainable);
    let mut grad = vec![0.0; p.len()];
    // the rule's fixed feedback (random e-prop only; other rules draw nothing from rng)
    let drawn = match feedback {
        Some(_) => None,
        None => opts.rule.feedback(net, rng),
    };
    let feedback = feedback.or(drawn.as_ref());
    let mut perturbation = Perturbation::default();
    let mut adam = Adam {
        m: DVector::zeros(p.len()),
        v: DVector::zeros(p.len()),
        t: 0,
    };
    // progress is scaled to the work, not to max_steps: the bar runs over ln(L_0 / tol), the
    // decades of loss left to the tolerance, so its ETA follows the loss curve (terminal only,
    // silenced by --quiet)
    let bar = progress_display(opts, ProgressKind::LogLoss);
    let mut losses = Vec::new();
    let mut initial = f64::NAN;
    let mut converged = false;
    let mut step = 0;
    let loss = loop {
        if fresh && step > 0 {
            trials = draw(rng);
        }
        let loss = match opts.rule {
            LearningRule::NodePerturbation { sigma, samples } => perturbation.estimate(
                &mut ws,
                net,
                &trials,
                trainable,
                p.as_slice(),
                sigma,
                samples,
                rng,
                &mut grad,
            )?,
            rule => {
                ws.loss_and_grad_with(net, &trials, trainable, rule.credit(feedback), &mut grad)?
            }
        };
        if step == 0 {
            initial = loss;
        }
        let limit = opts.diverge_factor * initial.max(opts.tol);
        if !loss.is_finite() || loss > limit || grad.iter().any(|g| !g.is_finite()) {
            if let Some(b) = &bar {
                b.abandon();
            }
            return Err(Error::Diverged {
                what: "rnn training".into(),
                step,
                loss,
                hint: format!(
                    "the loss left the bound {limit:.3e}; try a smaller learning rate (e.g. lr = {:.3e})",
                    opts.lr / 4.0
                ),
            });
        }
        losses.push(loss);
        observe(
            &Progress {
                step,
                tau: opts.lr * step as f64,
                loss,
            },
            net,
        )?;
        if loss < opts.tol {
            converged = true;
            break loss;
        }
        if step >= opts.max_steps {
            break loss;
        }
        match opts.optimizer {
            Optimizer::Gd | Optimizer::Sgd => {
                for (pi, gi) in p.iter_mut().zip(&grad) {
                    *pi -= opts.lr * gi;
                }
            }
            Optimizer::Flow { .. } | Optimizer::ModifiedFlow { .. } => {
                unreachable!("the flow has its own driver")
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                adam.t += 1;
                let c1 = 1.0 - beta1.powi(adam.t);
                let c2 = 1.0 - beta2.powi(adam.t);
                for i in 0..p.len() {
                    let g = grad[i];
                    adam.m[i] = beta1 * adam.m[i] + (1.0 - beta1) * g;
                    adam.v[i] = beta2 * adam.v[i] + (1.0 - beta2) * g * g;
                    p[i] -= opts.lr * (adam.m[i] / c1) / ((adam.v[i] / c2).sqrt() + eps);
                }
            }
        }
        net.set_params(trainable, p.as_slice());
        step += 1;
        if let Some(b) = &bar {
            b.position(log_progress(initial, loss, opts.tol));
            if step % 20 == 0 {
                b.message(&format!("training: step {step}, loss {loss:.3e}"));
            }
        }
    };
    if let Some(b) = &bar {
        b.finish();
    }
    let taus = (0..losses.len()).map(|k| opts.lr * k as f64).collect();
    Ok(TrainLog {
        steps: step,
        tau: opts.lr * step as f64,
        gradient_evaluations: losses.len(),
        loss_evaluations: 0,
        rejected: 0,
        rkc_steps: 0,
        rho_evaluations: 0,
        converged,
        initial_loss: initial,
        final_loss: loss,
        losses,
        taus,
    })
}

/// Relative accuracy of the flow's stopping point: the loss there is in
/// [tol (1 - CROSSING_RTOL), tol). GD stops at its first step below tol, i.e. O(lr) below it;
/// the flow's stop is located on the dense output so that it does not overshoot by a whole
/// (possibly long) step, which would move I by an amount that no learning rate reproduces.
pub const CROSSING_RTOL: f64 = 1e-4;

/// The flow's integrator: the 5(4) pair or RKC2, one accepted step at a time.
enum FlowStepper {
    Dopri(DynDopri),
    Rkc(DynRkc),
}

impl FlowStepper {
    fn step<F>(&mut self, f: &mut F, y: &mut [f64], ode: &OdeOptions) -> Result<f64>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        match self {
            FlowStepper::Dopri(s) => s.step(f, y, f64::INFINITY, ode),
            FlowStepper::Rkc(s) => s.step(f, y, f64::INFINITY, ode),
        }
    }

    fn interpolate(&self, theta: f64, out: &mut [f64]) -> Result<()> {
        match self {
            FlowStepper::Dopri(s) => s.interpolate(theta, out),
            FlowStepper::Rkc(s) => s.interpolate(theta, out),
        }
    }

    fn t(&self) -> f64 {
        match self {
            FlowStepper::Dopri(s) => s.t(),
            FlowStepper::Rkc(s) => s.t(),
        }
    }

    fn last_step(&self) -> f64 {
        match self {
            FlowStepper::Dopri(s) => s.last_step(),
            FlowStepper::Rkc(s) => s.last_step(),
        }
    }

    /// (accepted, rejected) steps of this stepper.
    fn counts(&self) -> (usize, usize) {
        match self {
            FlowStepper::Dopri(s) => (s.accepted, s.rejected),
            FlowStepper::Rkc(s) => (s.accepted, s.rejected),
        }
    }
}

/// Locates tau* with L(theta(tau*)) = tol inside the last accepted step of the flow.
struct Crossing {
    probe: Network,
    ws: Sharded,
    buf: Vec<f64>,
    evaluations: usize,
}

impl Crossing {
    /// Illinois regula falsi on g(s) = ln L(theta(s)) - ln tol over s in [0, 1] of the last
    /// step (dense output), from g(0) >= 0 > g(1); returns (s, L) with L in
    /// [tol (1 - CROSSING_RTOL), tol) and writes theta(s) into `theta`.
    fn locate(
        &mut self,
        stepper: &FlowStepper,
        trials: &Trials,
        trainable: &Trainable,
        (l0, l1): (f64, f64),
        tol: f64,
        theta: &mut [f64],
    ) -> Result<(f64, f64)> {
        let g = |l: f64| l.ln() - tol.ln();
        let (mut a, mut ga) = (0.0f64, g(l0));
        let (mut b, mut gb, mut lb) = (1.0f64, g(l1), l1);
        if ga.is_nan() || ga < 0.0 {
            // the previous point is already below tol (only at the start): no crossing inside
            return Ok((1.0, l1));
        }
        let mut side = 0i32;
        for _ in 0..60 {
            if lb >= tol * (1.0 - CROSSING_RTOL) || b - a < 1e-12 {
                break;
            }
            let c = (a * gb - b * ga) / (gb - ga);
            let c = if c.is_finite() && c > a && c < b {
                c
            } else {
                0.5 * (a + b)
            };
            stepper.interpolate(c, &mut self.buf)?;
            self.probe.set_params(trainable, &self.buf);
            let lc = self.ws.loss_only(&self.probe, trials)?;
            self.evaluations += 1;
            let gc = g(lc);
            if !gc.is_finite() {
                return Err(Error::Ode {
                    t: stepper.t(),
                    reason: format!("non-finite loss {lc} on the dense output of the last step"),
                });
            }
            if gc < 0.0 {
                (b, gb, lb) = (c, gc, lc);
                if side == 1 {
                    ga *= 0.5;
                }
                side = 1;
            } else {
                (a, ga) = (c, gc);
                if side == -1 {
                    gb *= 0.5;
                }
                side = -1;
            }
        }
        if b < 1.0 {
            stepper.interpolate(b, theta)?;
        }
        Ok((b, lb))
    }
}

/// The gradient-flow driver of [`train_task_with`] (see the module docs).
#[allow(clippy::too_many_arguments)]
fn train_flow(
    net: &mut Network,
    trainable: &Trainable,
    task: &Task,
    opts: &TrainOptions,
    rtol: f64,
    atol: Option<f64>,
    feedback: Option<&DMatrix<f64>>,
    rng: &mut StdRng,
    mut observe: impl FnMut(&Progress, &Network) -> Result<()>,
) -> Result<TrainLog> {
    if task.is_random() {
        return Err(Error::Requirement(format!(
            "optimizer = \"flow\" integrates the gradient flow of one fixed set of trials; the \
             task `{}` draws random trials (noise sigma0 > 0 or random pulses) and needs fresh \
             batches: use sigma0 = 0, or optimizer = \"sgd\" / \"adam\"",
            task.family()
        )));
    }
    if !(rtol > 0.0 && rtol.is_finite()) {
        return Err(Error::Requirement(format!(
            "flow_rtol = {rtol}: the flow tolerance must be positive and finite"
        )));
    }
    if let LearningRule::NodePerturbation { .. } = opts.rule {
        return Err(Error::Requirement(
            "optimizer = \"flow\" integrates a deterministic update direction; node \
             perturbation is a random estimate (use optimizer = \"gd\" or \"sgd\" with it)"
                .into(),
        ));
    }
    let full = trainable.recurrent == super::network::Recurrent::Full;
    let atol = Optimizer::flow_atol(rtol, atol, full, net.n);
    if !(atol >= 0.0 && atol.is_finite()) {
        return Err(Error::Requirement(format!(
            "flow_atol = {atol}: the flow tolerance must be non-negative and finite"
        )));
    }
    let ode = OdeOptions {
        rtol,
        atol,
        h0: if opts.lr > 0.0 && opts.lr.is_finite() {
            opts.lr
        } else {
            0.0
        },
        h_max: f64::INFINITY,
        max_steps: opts.max_steps,
        // the dynamic-size stepper (num::rk) is the 5(4) pair; method and dense do not apply
        ..OdeOptions::default()
    };
    let (n, k, r, dt) = (net.n, net.inputs(), net.outputs(), net.dt);
    let trials = task.trials(n, k, r, dt, opts.batch, rng);
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    // the rule's fixed feedback (random e-prop only), drawn after the trials as in the
    // stepping driver; the flow then integrates the rule's deterministic direction
    let drawn = match feedback {
        Some(_) => None,
        None => opts.rule.feedback(net, rng),
    };
    let credit = opts.rule.credit(feedback.or(drawn.as_ref()));
    let mut theta: Vec<f64> = net.params(trainable).as_slice().to_vec();
    // the modified flow's penalty (eta/2) H grad L (module `modified_flow`); exact BPTT only
    let mut penalty = match opts.optimizer {
        Optimizer::ModifiedFlow { eta, .. } => {
            if opts.rule != LearningRule::Bptt {
                return Err(Error::Requirement(
                    "optimizer = \"modified_flow\" needs the exact gradient (rule = \"bptt\")"
                        .into(),
                ));
            }
            Some((
                super::modified_flow::Penalty::new(eta, theta.len())?,
                net.clone(),
            ))
        }
        _ => None,
    };
    // the right-hand side -grad L on its own copy of the network; the loss of the last
    // evaluated point is kept beside it (FSAL: after an accepted step that is the new point)
    let mut work = net.clone();
    let last_loss = std::cell::Cell::new(f64::NAN);
    let first_loss = std::cell::Cell::new(f64::NAN);
    let evals = std::cell::Cell::new(0usize);
    let mut rhs = |p: &[f64], dp: &mut [f64]| -> Result<()> {
        work.set_params(trainable, p);
        let l = ws.loss_and_grad_with(&work, &trials, trainable, credit, dp)?;
        if evals.get() == 0 {
            first_loss.set(l);
        }
        evals.set(evals.get() + 1);
        if let (Some((pen, scratch)), true) = (penalty.as_mut(), l.is_finite()) {
            let before = pen.evaluations();
            pen.correct(&mut ws, scratch, &trials, trainable, p, dp)?;
            evals.set(evals.get() + pen.evaluations() - before);
        }
        if l.is_finite() {
            for d in dp.iter_mut() {
                *d = -*d;
            }
        } else {
            // a non-finite loss rejects the step (the stepper shrinks it)
            dp.iter_mut().for_each(|d| *d = f64::NAN);
        }
        last_loss.set(l);
        Ok(())
    };
    let bar = progress_display(opts, ProgressKind::FlowSteps);
    let mut stepper = match opts.flow_method {
        FlowMethod::Rkc => FlowStepper::Rkc(DynRkc::new(theta.len())),
        FlowMethod::Dopri => FlowStepper::Dopri(DynDopri::new(theta.len())),
    };
    let started = match &mut stepper {
        FlowStepper::Dopri(st) => st.start(&mut rhs, 0.0, &theta, &ode),
        FlowStepper::Rkc(st) => st.start(&mut rhs, 0.0, &theta, &ode),
    };
    // the loss at theta0 is the first evaluation's (the start may evaluate a trial point after)
    let initial = first_loss.get();
    if !initial.is_finite() {
        return Err(Error::Diverged {
            what: "rnn gradient flow".into(),
            step: 0,
            loss: initial,
            hint: "the loss of the initial network is not finite".into(),
        });
    }
    started?;
    let mut losses = vec![initial];
    let mut taus = vec![0.0];
    let mut loss = initial;
    observe(
        &Progress {
            step: 0,
            tau: 0.0,
            loss,
        },
        net,
    )?;
    let limit = opts.diverge_factor * initial.max(opts.tol);
    let mut converged = loss < opts.tol;
    let mut final_tau = 0.0;
    let mut crossing = Crossing {
        probe: net.clone(),
        ws: Sharded::new(net, trials.steps, trials.batch),
        buf: vec![0.0; theta.len()],
        evaluations: 0,
    };
    while !converged {
        let tau = match stepper.step(&mut rhs, &mut theta, &ode) {
            Ok(t) => t,
            Err(Error::Ode { t, reason }) => {
                if let Some(b) = &bar {
                    b.abandon();
                }
                return Err(if reason.contains("step cap") {
                    Error::NoConvergence {
                        solver: format!(
                            "rnn gradient flow (training.max_steps = {} attempted steps, \
                             reached tau = {t:.4e}; raise max_steps or tol)",
                            opts.max_steps
                        ),
                        iterations: opts.max_steps,
                        residual: loss,
                        tolerance: opts.tol,
                    }
                } else {
                    Error::Ode {
                        t,
                        reason: format!(
                            "rnn gradient flow: {reason} at loss {loss:.3e} (flow_rtol = {rtol:e}, \
                             flow_atol = {atol:e})"
                        ),
                    }
                });
            }
            Err(e) => return Err(e),
        };
        loss = last_loss.get();
        let step = stepper.counts().0;
        if !loss.is_finite() || loss > limit {
            if let Some(b) = &bar {
                b.abandon();
            }
            return Err(Error::Diverged {
                what: "rnn gradient flow".into(),
                step,
                loss,
                hint: format!(
                    "the loss left the bound {limit:.3e} at tau = {tau:.4e}; the flow of this \
                     loss is unbounded, or flow_rtol = {rtol:e} is too loose"
                ),
            });
        }
        // the first accepted point below tol: stop at the crossing L = tol inside the step
        let (tau, stop_loss) = if loss < opts.tol {
            let prev = *losses.last().unwrap_or(&initial);
            let (theta_c, l_c) = crossing.locate(
                &stepper,
                &trials,
                trainable,
                (prev, loss),
                opts.tol,
                &mut theta,
            )?;
            (tau - (1.0 - theta_c) * stepper.last_step(), l_c)
        } else {
            (tau, loss)
        };
        loss = stop_loss;
        net.set_params(trainable, &theta);
        losses.push(loss);
        taus.push(tau);
        observe(&Progress { step, tau, loss }, net)?;
        converged = loss < opts.tol;
        if converged {
            final_tau = tau;
        }
        if let Some(b) = &bar {
            b.position(step as u64);
            if step.is_multiple_of(20) {
                b.message(&format!("tau {tau:.3e}  loss {loss:.3e}"));
            }
        }
    }
    if let Some(b) = &bar {
        b.finish();
    }
    net.set_params(trainable, &theta);
    let (accepted, rejected) = stepper.counts();
    let (rkc_steps, rho_evaluations) = match &stepper {
        FlowStepper::Rkc(st) => (st.accepted, st.rho_evaluations),
        FlowStepper::Dopri(_) => (0, 0),
    };
    Ok(TrainLog {
        steps: accepted,
        tau: final_tau,
        gradient_evaluations: evals.get(),
        loss_evaluations: crossing.evaluations,
        rejected,
        rkc_steps,
        rho_evaluations,
        converged,
        initial_loss: initial,
        final_loss: loss,
        losses,
        taus,
    })
}

/// A progress display of one training run, supplied by the application (the CLI draws a
/// terminal bar, `crate::progress`); the trainers only report to it.
pub trait TrainProgress {
    /// Work done: for [`ProgressKind::LogLoss`] in units of [`PROGRESS_UNITS`], for
    /// [`ProgressKind::FlowSteps`] the accepted steps.
    fn position(&self, units: u64);
    /// What the run is doing (step, loss).
    fn message(&self, text: &str);
    /// The run ended (converged or out of steps).
    fn finish(&self);
    /// The run stopped on divergence.
    fn abandon(&self);
}

/// What a run reports as its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressKind {
    /// GD / SGD / Adam: the decades of loss left to the tolerance, over [`PROGRESS_UNITS`].
    LogLoss,
    /// The gradient flow: accepted steps (no known total).
    FlowSteps,
}

/// Makes the display of one run, or `None` to draw nothing.
pub type ProgressFactory = fn(ProgressKind) -> Option<Box<dyn TrainProgress>>;

static PROGRESS: OnceLock<ProgressFactory> = OnceLock::new();

/// Install the application's progress display for the rest of the process (the first call
/// wins). Without it, training draws nothing.
pub fn set_progress(factory: ProgressFactory) {
    let _ = PROGRESS.set(factory);
}

/// The display of a run with `opts` (none unless `opts.progress` and a factory is installed).
fn progress_display(opts: &TrainOptions, kind: ProgressKind) -> Option<Box<dyn TrainProgress>> {
    if !opts.progress {
        return None;
    }
    PROGRESS.get().and_then(|make| make(kind))
}

/// Units of the training progress bar.
pub const PROGRESS_UNITS: u64 = 1000;

/// How far the loss has come from `initial` to `tol` on a log scale, in [0, PROGRESS_UNITS].
fn log_progress(initial: f64, loss: f64, tol: f64) -> u64 {
    let total = (initial / tol).ln();
    let f = if total > 0.0 {
        (initial / loss).ln() / total
    } else {
        1.0
    };
    (f.clamp(0.0, 1.0) * PROGRESS_UNITS as f64) as u64
}

/// Loss of `net` on `trials` (forward only).
pub fn evaluate(net: &Network, trials: &Trials) -> Result<f64> {
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    ws.loss_only(net, trials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_follows_the_log_loss() {
        assert_eq!(log_progress(1.0, 1.0, 1e-4), 0);
        assert_eq!(log_progress(1.0, 1e-2, 1e-4), 500);
        assert_eq!(log_progress(1.0, 1e-5, 1e-4), 1000);
        assert_eq!(log_progress(1.0, 2.0, 1e-4), 0);
        assert_eq!(log_progress(1e-5, 1e-6, 1e-4), 1000);
        assert_eq!(log_progress(1.0, f64::NAN, 1e-4), 0);
    }
    use crate::rnn::network::{NetworkSpec, Phi, Readout};
    use crate::rnn::task::WorkingMemory;
    use rand::SeedableRng;

    fn setup(phi: Phi) -> (Network, Task) {
        let mut rng = StdRng::seed_from_u64(11);
        let spec = NetworkSpec {
            n: 40,
            g: 0.5,
            dt: 0.2,
            phi,
            readout: Readout::Rate,
            m0: [[0.0; 2]; 2],
        };
        let net = Network::new(&spec, &mut rng);
        let task = Task::WorkingMemory(WorkingMemory::short_test_task());
        (net, task)
    }

    #[test]
    fn gd_and_adam_reach_tolerance_deterministically() {
        for opt in [Optimizer::Gd, Optimizer::ADAM] {
            let lr = if opt == Optimizer::Gd { 2.0 } else { 0.01 };
            let opts = TrainOptions {
                optimizer: opt,
                lr,
                tol: 1e-4,
                max_steps: 3000,
                ..TrainOptions::default()
            };
            let run = || {
                let (mut net, task) = setup(Phi::Tanh);
                let mut rng = StdRng::seed_from_u64(5);
                let log = train_task(
                    &mut net,
                    &Trainable::FULL,
                    &task,
                    &opts,
                    &mut rng,
                    |_, _, _| Ok(()),
                )
                .unwrap();
                (log, net.w.clone())
            };
            let (log, w1) = run();
            assert!(
                log.converged,
                "{opt:?}: {} steps, loss {}",
                log.steps, log.final_loss
            );
            assert!(log.final_loss < 1e-4);
            let (_, w2) = run();
            assert_eq!(w1, w2, "training is not deterministic");
        }
    }

    /// The display the application installs sees every run that asks for progress: made once
    /// per run, told the position and finished once. The recorder counts per thread (the
    /// factory and the display are called on the thread of `train_task`), so other tests that
    /// train with a display do not disturb the counts.
    #[test]
    fn installed_progress_display_follows_the_run() {
        use std::cell::Cell;
        thread_local! {
            static MADE: Cell<usize> = const { Cell::new(0) };
            static FINISHED: Cell<usize> = const { Cell::new(0) };
            static LAST: Cell<u64> = const { Cell::new(0) };
        }
        struct Recorder;
        impl TrainProgress for Recorder {
            fn position(&self, units: u64) {
                LAST.with(|c| c.set(units));
            }
            fn message(&self, _: &str) {}
            fn finish(&self) {
                FINISHED.with(|c| c.set(c.get() + 1));
            }
            fn abandon(&self) {}
        }
        set_progress(|_| {
            MADE.with(|c| c.set(c.get() + 1));
            Some(Box::new(Recorder))
        });
        let opts = TrainOptions {
            optimizer: Optimizer::Gd,
            lr: 2.0,
            tol: 1e-4,
            max_steps: 3000,
            progress: true,
            ..TrainOptions::default()
        };
        let (mut net, task) = setup(Phi::Tanh);
        let mut rng = StdRng::seed_from_u64(5);
        let log = train_task(
            &mut net,
            &Trainable::FULL,
            &task,
            &opts,
            &mut rng,
            |_, _, _| Ok(()),
        )
        .unwrap();
        assert!(log.converged);
        assert_eq!(MADE.with(Cell::get), 1);
        assert_eq!(FINISHED.with(Cell::get), 1);
        // the last position is that of the step before the loss reached the tolerance: most of
        // the decades of loss are behind it
        let last = LAST.with(Cell::get);
        assert!(
            last > PROGRESS_UNITS / 2 && last <= PROGRESS_UNITS,
            "{last}"
        );
    }

    #[test]
    fn tiny_flip_flop_trains_to_tolerance() {
        // 2-bit flip-flop, state readouts (targets +-1 are out of reach of a tanh rate
        // readout along a Gaussian pattern: |y| <= E|a_i| = 0.8), Adam on fresh batches
        use crate::rnn::task::{Channels, FlipFlop};
        let run = || {
            let mut rng = StdRng::seed_from_u64(2);
            let spec = NetworkSpec {
                n: 40,
                g: 0.5,
                dt: 0.2,
                phi: Phi::Tanh,
                readout: Readout::State,
                m0: [[0.0; 2]; 2],
            };
            let mut net = Network::new(&spec, &mut rng);
            let task = Task::FlipFlop(FlipFlop {
                channels: Channels::Both,
                t_max: 10.0,
                rate: 0.3,
                t_pulse: 1.0,
                sigma0: 0.0,
            });
            let opts = TrainOptions {
                optimizer: Optimizer::ADAM,
                lr: 0.01,
                tol: 0.01,
                max_steps: 3000,
                batch: 8,
                ..TrainOptions::default()
            };
            train_task(
                &mut net,
                &Trainable::FULL,
                &task,
                &opts,
                &mut rng,
                |_, _, _| Ok(()),
            )
            .unwrap()
        };
        let log = run();
        assert!(
            log.converged,
            "{} steps, loss {}",
            log.steps, log.final_loss
        );
        assert!(
            log.final_loss < 0.01 && log.initial_loss > 0.1,
            "{}",
            log.initial_loss
        );
        assert_eq!(log.losses, run().losses, "not deterministic");
    }

    fn flow_opts(rtol: f64, max_steps: usize) -> TrainOptions {
        TrainOptions {
            optimizer: Optimizer::Flow { rtol, atol: None },
            lr: 0.0,
            tol: 1e-4,
            max_steps,
            ..TrainOptions::default()
        }
    }

    fn run_flow(opts: &TrainOptions) -> Result<(TrainLog, Network, Vec<Progress>)> {
        let (mut net, task) = setup(Phi::Tanh);
        let mut rng = StdRng::seed_from_u64(5);
        let mut seen = Vec::new();
        let log = train_task_with(&mut net, &Trainable::FULL, &task, opts, &mut rng, |p, n| {
            // the observer sees the network at the accepted point
            let mut r = StdRng::seed_from_u64(0);
            let tr = task.trials(n.n, n.inputs(), n.outputs(), n.dt, 1, &mut r);
            let l = evaluate(n, &tr)?;
            assert!(
                (l - p.loss).abs() <= 1e-12 * p.loss.max(1e-300),
                "{l} vs {}",
                p.loss
            );
            seen.push(*p);
            Ok(())
        })?;
        Ok((log, net, seen))
    }

    #[test]
    fn flow_reaches_tolerance_deterministically_and_reports_tau() {
        let opts = flow_opts(1e-5, 5000);
        let (log, net, seen) = run_flow(&opts).unwrap();
        assert!(log.converged && log.final_loss < 1e-4, "{log:?}");
        // the stop is the crossing L = tol located inside the last step, not an overshoot
        assert!(log.final_loss >= 1e-4 * (1.0 - CROSSING_RTOL), "{log:?}");
        assert!(log.loss_evaluations > 0);
        assert!(log.tau > 0.0 && log.tau.is_finite());
        assert_eq!(seen.len(), log.steps + 1);
        assert_eq!(seen.last().unwrap().tau, log.tau);
        // tau increases, the loss of the flow never increases (up to the local error)
        for w in seen.windows(2) {
            assert!(w[1].tau > w[0].tau);
            assert!(w[1].loss <= w[0].loss * (1.0 + 1e-6), "{w:?}");
        }
        // FSAL: 6 evaluations per attempted step, plus the start (1, + 1 for the first step)
        assert_eq!(
            log.gradient_evaluations,
            2 + 6 * (log.steps + log.rejected),
            "{log:?}"
        );
        let (log2, net2, _) = run_flow(&opts).unwrap();
        assert_eq!(net.w, net2.w, "the flow is not deterministic");
        assert_eq!(log.losses, log2.losses);
    }

    #[test]
    fn rkc_and_the_pair_reach_the_same_network() {
        // the flow by RKC2 at rtol 1e-6 against the 5(4) pair at 1e-9 (the reference): the
        // stopping time and the trained W agree to the effect of the tolerance on a
        // second-order method (global error ~ rtol^(2/3) per unit tau: ~1e-4; asserted 1e-3)
        let (r, net_r, seen) = run_flow(&TrainOptions {
            flow_method: FlowMethod::Rkc,
            ..flow_opts(1e-6, 20000)
        })
        .unwrap();
        let (d, net_d, _) = run_flow(&TrainOptions {
            flow_method: FlowMethod::Dopri,
            ..flow_opts(1e-9, 20000)
        })
        .unwrap();
        assert!(r.converged && d.converged);
        assert!(r.final_loss >= 1e-4 * (1.0 - CROSSING_RTOL) && r.final_loss < 1e-4);
        assert_eq!((r.rkc_steps, d.rkc_steps), (r.steps, 0));
        assert!(r.rho_evaluations > 0 && r.rho_evaluations < r.gradient_evaluations);
        assert_eq!(seen.len(), r.steps + 1);
        let (w0, _) = setup(Phi::Tanh);
        let moved = (&net_d.w - &w0.w).norm();
        let gap = (&net_r.w - &net_d.w).norm();
        assert!(
            gap < 1e-3 * moved,
            "|W_rkc - W_dp| = {gap:e}, |W_dp - W0| = {moved:e}"
        );
        assert!(
            (r.tau - d.tau).abs() < 1e-3 * d.tau,
            "tau {} vs {}",
            r.tau,
            d.tau
        );
    }

    #[test]
    fn gd_at_a_small_rate_follows_the_flow() {
        // at tau = the flow's end time, GD with lr -> 0 approaches the flow's loss: the
        // global error of Euler is O(lr), so halving lr halves the gap (ratio in [1.6, 2.4])
        let (flow, _, seen) = run_flow(&flow_opts(1e-8, 20000)).unwrap();
        // the loss of the flow at a tau on the flow's grid, reached by GD in whole steps
        let tau = seen[seen.len() / 2].tau;
        let l_flow = seen[seen.len() / 2].loss;
        let gd_loss = |lr: f64| {
            let steps = (tau / lr).round() as usize;
            let lr = tau / steps as f64;
            let (mut net, task) = setup(Phi::Tanh);
            let mut rng = StdRng::seed_from_u64(5);
            let opts = TrainOptions {
                lr,
                tol: 0.0,
                max_steps: steps,
                ..TrainOptions::default()
            };
            train_task(
                &mut net,
                &Trainable::FULL,
                &task,
                &opts,
                &mut rng,
                |_, _, _| Ok(()),
            )
            .unwrap()
            .final_loss
        };
        let lr = tau / 40.0;
        let (e1, e2) = (
            (gd_loss(lr) - l_flow).abs(),
            (gd_loss(lr / 2.0) - l_flow).abs(),
        );
        assert!(
            e2 < 0.05 * l_flow,
            "GD at lr {} off by {e2} of {l_flow}",
            lr / 2.0
        );
        assert!(
            (1.6..2.4).contains(&(e1 / e2)),
            "ratio {} ({e1}, {e2})",
            e1 / e2
        );
        assert!(flow.converged);
    }

    #[test]
    fn flow_failures_are_errors() {
        // the attempted-step cap: a clear error naming training.max_steps (exit 1)
        match run_flow(&flow_opts(1e-6, 3)) {
            Err(e @ Error::NoConvergence { .. }) => {
                assert_eq!(e.exit_code(), 1);
                assert!(e.to_string().contains("training.max_steps = 3"), "{e}");
            }
            other => panic!("expected NoConvergence, got {:?}", other.map(|r| r.0)),
        }
        // a random task (trial noise) is refused (bad input, exit 2)
        let (mut net, _) = setup(Phi::Tanh);
        let noisy = Task::WorkingMemory(WorkingMemory {
            sigma0: 0.1,
            ..WorkingMemory::short_test_task()
        });
        let mut rng = StdRng::seed_from_u64(5);
        let e = train_task(
            &mut net,
            &Trainable::FULL,
            &noisy,
            &flow_opts(1e-4, 100),
            &mut rng,
            |_, _, _| Ok(()),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains("fresh"), "{e}");
        // an initial network whose loss is not finite (a linear network exploding along the
        // trial): an error at once, not a hang
        let mut rng = StdRng::seed_from_u64(11);
        let spec = NetworkSpec {
            n: 40,
            g: 1e8,
            dt: 0.2,
            phi: Phi::Identity,
            readout: Readout::Rate,
            m0: [[0.0; 2]; 2],
        };
        let mut net = Network::new(&spec, &mut rng);
        let task = Task::WorkingMemory(WorkingMemory::short_test_task());
        let r = train_task(
            &mut net,
            &Trainable::FULL,
            &task,
            &flow_opts(1e-4, 1000),
            &mut rng,
            |_, _, _| Ok(()),
        );
        assert!(
            matches!(r, Err(Error::Diverged { .. } | Error::Ode { .. })),
            "{r:?}"
        );
    }

    #[test]
    fn huge_rate_is_reported_as_divergence() {
        // a linear network: a large step makes W unstable and the loss explode
        let (mut net, task) = setup(Phi::Identity);
        let opts = TrainOptions {
            lr: 1e3,
            max_steps: 50,
            ..TrainOptions::default()
        };
        let mut rng = StdRng::seed_from_u64(5);
        let err = train_task(
            &mut net,
            &Trainable::FULL,
            &task,
            &opts,
            &mut rng,
            |_, _, _| Ok(()),
        )
        .unwrap_err();
        match err {
            Error::Diverged { step, hint, .. } => {
                assert!((1..50).contains(&step));
                assert!(hint.contains("smaller learning rate"));
            }
            e => panic!("expected Diverged, got {e}"),
        }
    }
}
