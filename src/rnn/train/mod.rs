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
mod tests {
    use super::*;
    use crate::Error;

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
