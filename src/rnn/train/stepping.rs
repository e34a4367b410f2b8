//! The stepping driver: GD, SGD and Adam on the update direction of a learning rule, with the
//! stopping rules (loss < tol, step cap) and divergence detection.

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;

use super::{
    draw_feedback, log_progress, progress_display, Optimizer, Progress, ProgressKind, TrainLog,
    TrainOptions,
};
use crate::rnn::bptt::Sharded;
use crate::rnn::network::{Network, Trainable};
use crate::rnn::rules::{LearningRule, Perturbation};
use crate::rnn::task::{Task, Trials};
use crate::{Error, Result};

/// Adam's moment estimates, reused across steps.
struct Adam {
    m: DVector<f64>,
    v: DVector<f64>,
    t: i32,
}

impl Adam {
    fn new(len: usize) -> Adam {
        Adam {
            m: DVector::zeros(len),
            v: DVector::zeros(len),
            t: 0,
        }
    }
}

/// The parameter update of a stepping optimiser from the direction `grad`.
fn update(opts: &TrainOptions, adam: &mut Adam, p: &mut DVector<f64>, grad: &[f64]) {
    match opts.optimizer {
        Optimizer::Gd | Optimizer::Sgd => {
            for (pi, gi) in p.iter_mut().zip(grad) {
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
}

/// The divergence test of a stepping run: a non-finite loss or gradient, or a loss beyond
/// `diverge_factor` x max(L_0, tol).
fn diverged(
    opts: &TrainOptions,
    step: usize,
    loss: f64,
    limit: f64,
    grad: &[f64],
) -> Option<Error> {
    let bad = !loss.is_finite() || loss > limit || grad.iter().any(|g| !g.is_finite());
    if !bad {
        return None;
    }
    Some(Error::Diverged {
        what: "rnn training".into(),
        step,
        loss,
        hint: format!(
            "the loss left the bound {limit:.3e}; try a smaller learning rate (e.g. lr = {:.3e})",
            opts.lr / 4.0
        ),
    })
}

/// GD / SGD / Adam from `net` (see [`super::train_task_feedback`]): `fresh` draws a new batch
/// of trials before every step after the first.
#[allow(clippy::too_many_arguments)]
pub(super) fn train_stepping(
    net: &mut Network,
    trainable: &Trainable,
    task: &Task,
    opts: &TrainOptions,
    fresh: bool,
    feedback: Option<&DMatrix<f64>>,
    rng: &mut StdRng,
    mut observe: impl FnMut(&Progress, &Network) -> Result<()>,
) -> Result<TrainLog> {
    let (n, k, r, dt) = (net.n, net.inputs(), net.outputs(), net.dt);
    let draw = |rng: &mut StdRng| -> Trials { task.trials(n, k, r, dt, opts.batch, rng) };
    let mut trials = draw(rng);
    // the batch split into shards run in parallel (deterministic for any thread count)
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut p = net.params(trainable);
    let mut grad = vec![0.0; p.len()];
    // the rule's fixed feedback (random e-prop only; other rules draw nothing from rng)
    let drawn = draw_feedback(opts, feedback, net, rng);
    let feedback = feedback.or(drawn.as_ref());
    let mut perturbation = Perturbation::default();
    let mut adam = Adam::new(p.len());
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
        if let Some(e) = diverged(opts, step, loss, limit, &grad) {
            if let Some(b) = &bar {
                b.abandon();
            }
            return Err(e);
        }
        losses.push(loss);
        let tau = opts.lr * step as f64;
        observe(&Progress { step, tau, loss }, net)?;
        if loss < opts.tol {
            converged = true;
            break loss;
        }
        if step >= opts.max_steps {
            break loss;
        }
        update(opts, &mut adam, &mut p, &grad);
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
    Ok(stepping_log(
        opts.lr,
        step,
        converged,
        (initial, loss),
        losses,
    ))
}

/// The log of a stepping run that took `steps` steps at rate `lr` (tau = lr x step), with its
/// initial and final loss and the loss before each step in `losses`.
fn stepping_log(
    lr: f64,
    steps: usize,
    converged: bool,
    (initial_loss, final_loss): (f64, f64),
    losses: Vec<f64>,
) -> TrainLog {
    let taus = (0..losses.len()).map(|k| lr * k as f64).collect();
    TrainLog {
        steps,
        tau: lr * steps as f64,
        gradient_evaluations: losses.len(),
        loss_evaluations: 0,
        rejected: 0,
        rkc_steps: 0,
        rho_evaluations: 0,
        converged,
        initial_loss,
        final_loss,
        losses,
        taus,
    }
}
