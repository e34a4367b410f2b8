//! Training the network on one task: GD, SGD, Adam and the gradient flow on the BPTT gradient
//! (THEORY I.1, I.7), or on the update direction of another learning rule ([`LearningRule`],
//! THEORY III.1).
//!
//! The problem (loss and gradient of a [`Network`] on [`Trials`], [`super::bptt`]) is a
//! [`crate::num::iterate::Problem`]; GD, SGD and Adam run on the crate's one iteration driver
//! [`crate::num::iterate::iterate`], which owns the loop, the stopping rules (loss < tol, step
//! cap) and divergence detection; the loss record and the progress display the application
//! installs ([`set_progress`]) are its observers. The gradient flow shares the driver's
//! stopping rule and divergence test ([`crate::num::iterate::Stop`]) inside the integrator's
//! own loop of accepted steps.
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

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use serde::Serialize;

use super::bptt::Sharded;
use super::network::{Network, Trainable};
use super::rules::LearningRule;
use super::task::{Task, Trials};
use crate::Result;

mod flow;
mod stepping;

pub use flow::CROSSING_RTOL;
pub(crate) use stepping::{Stepping, Weights};

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
    observe: impl FnMut(&Progress, &Network) -> Result<()>,
) -> Result<TrainLog> {
    let fresh = match opts.optimizer {
        Optimizer::Sgd => true,
        Optimizer::Gd => false,
        Optimizer::Adam { .. } => task.is_random(),
        Optimizer::Flow { rtol, atol } | Optimizer::ModifiedFlow { rtol, atol, .. } => {
            return flow::train_flow(
                net, trainable, task, opts, rtol, atol, feedback, rng, observe,
            )
        }
    };
    stepping::train_stepping(net, trainable, task, opts, fresh, feedback, rng, observe)
}

/// The rule's fixed feedback matrix when none is given (random e-prop only: drawn from `rng`
/// after the trials; every other rule draws nothing), `None` when `feedback` is given.
fn draw_feedback(
    opts: &TrainOptions,
    feedback: Option<&DMatrix<f64>>,
    net: &Network,
    rng: &mut StdRng,
) -> Option<DMatrix<f64>> {
    match feedback {
        Some(_) => None,
        None => opts.rule.feedback(net, rng),
    }
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
mod tests;
