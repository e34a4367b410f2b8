//! Training the network on one task: GD, SGD and Adam on the BPTT gradient (THEORY I.1).
//!
//! The problem (loss and gradient of a [`Network`] on [`Trials`]) lives in [`super::bptt`];
//! the optimiser is a small update rule on the flat parameter vector; [`train_task`] is the
//! driver that owns the loop, the stopping rules (loss < tol, step cap), divergence detection
//! and the progress bar.

use std::io::IsTerminal;

use nalgebra::DVector;
use rand::rngs::StdRng;
use serde::Serialize;

use super::bptt::Sharded;
use super::network::{Network, Trainable};
use super::task::{Task, Trials};
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
}

impl Optimizer {
    /// Adam with the usual constants (0.9, 0.999, 1e-8).
    pub const ADAM: Optimizer = Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
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
        }
    }
}

/// What a training run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainLog {
    /// Gradient steps taken (the learning time in steps; tau = lr x steps).
    pub steps: usize,
    pub converged: bool,
    pub initial_loss: f64,
    pub final_loss: f64,
    /// Loss before each step.
    pub losses: Vec<f64>,
}

/// Reusable buffers of the optimiser.
struct Adam {
    m: DVector<f64>,
    v: DVector<f64>,
    t: i32,
}

/// Train `net` on `task` (parameters in `trainable`) until the loss is below `opts.tol` or
/// `opts.max_steps` steps. `observe(step, loss, net)` is called before every update (and once
/// after the last step) and may record anything. Deterministic given `rng`.
pub fn train_task(
    net: &mut Network,
    trainable: &Trainable,
    task: &Task,
    opts: &TrainOptions,
    rng: &mut StdRng,
    mut observe: impl FnMut(usize, f64, &Network) -> Result<()>,
) -> Result<TrainLog> {
    let fresh = match opts.optimizer {
        Optimizer::Sgd => true,
        Optimizer::Gd => false,
        Optimizer::Adam { .. } => task.is_random(),
    };
    let (n, k, r, dt) = (net.n, net.inputs(), net.outputs(), net.dt);
    let draw = |rng: &mut StdRng| -> Trials { task.trials(n, k, r, dt, opts.batch, rng) };
    let mut trials = draw(rng);
    // the batch split into shards run in parallel (deterministic for any thread count)
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut p = net.params(trainable);
    let mut grad = vec![0.0; p.len()];
    let mut adam = Adam {
        m: DVector::zeros(p.len()),
        v: DVector::zeros(p.len()),
        t: 0,
    };
    // progress is scaled to the work, not to max_steps: the bar runs over ln(L_0 / tol), the
    // decades of loss left to the tolerance, so its ETA follows the loss curve (terminal only,
    // silenced by --quiet)
    let bar = if opts.progress && std::io::stderr().is_terminal() && !crate::progress::quiet() {
        let b = crate::progress::bar(PROGRESS_UNITS, "(log-loss to tol)");
        b.set_message("training");
        Some(b)
    } else {
        None
    };
    let mut losses = Vec::new();
    let mut initial = f64::NAN;
    let mut converged = false;
    let mut step = 0;
    let loss = loop {
        if fresh && step > 0 {
            trials = draw(rng);
        }
        let loss = ws.loss_and_grad(net, &trials, trainable, &mut grad)?;
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
        observe(step, loss, net)?;
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
            b.set_position(log_progress(initial, loss, opts.tol));
            if step % 20 == 0 {
                b.set_message(format!("training: step {step}, loss {loss:.3e}"));
            }
        }
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok(TrainLog {
        steps: step,
        converged,
        initial_loss: initial,
        final_loss: loss,
        losses,
    })
}

/// Units of the training progress bar.
const PROGRESS_UNITS: u64 = 1000;

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
