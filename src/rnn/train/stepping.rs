//! GD, SGD and Adam on the update direction of a learning rule, run by the one iteration driver
//! [`crate::num::iterate`]: the network on its trials is a [`Problem`] ([`Stepping`]: fresh
//! trials per step for SGD and random tasks, node perturbation's estimate or the credit of the
//! rule), the steppers are [`Gd`] and [`Adam`], the stopping rules (L < tol, step cap) and the
//! divergence test (non-finite loss or gradient, L > diverge_factor x max(L_0, tol)) are the
//! driver's [`Stop`], and the loss record and the progress bar are [`Observer`]s.

use std::borrow::Cow;

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;

use super::{
    draw_feedback, log_progress, progress_display, Optimizer, Progress, ProgressKind, TrainLog,
    TrainOptions, TrainProgress,
};
use crate::num::iterate::{
    iterate, Adam, Coordinates, Descend, Gd, Observer, Outcome, Problem, Stop,
};
use crate::rnn::bptt::{Credit, Sharded};
use crate::rnn::network::{Network, Trainable};
use crate::rnn::rules::{LearningRule, Perturbation};
use crate::rnn::task::{Task, Trials};
use crate::{Error, Result};

/// The trained parameters: the flat vector theta (layout of [`Network::params`]) and the
/// network that carries it, kept equal to it after every move.
pub(crate) struct Weights<'a> {
    pub theta: DVector<f64>,
    pub net: &'a mut Network,
    trainable: &'a Trainable,
}

impl<'a> Weights<'a> {
    /// `net`'s trainable parameters set to `theta`.
    pub fn new(theta: DVector<f64>, net: &'a mut Network, trainable: &'a Trainable) -> Self {
        net.set_params(trainable, theta.as_slice());
        Weights {
            theta,
            net,
            trainable,
        }
    }
}

impl Descend<DVector<f64>> for Weights<'_> {
    fn descend(&mut self, grad: &DVector<f64>, eta: f64, lambda: f64) {
        self.theta.descend(grad, eta, lambda);
        self.moved();
    }
}

impl Coordinates for Weights<'_> {
    fn coordinates(&mut self) -> &mut [f64] {
        self.theta.as_mut_slice()
    }
    fn moved(&mut self) {
        self.net.set_params(self.trainable, self.theta.as_slice());
    }
}

/// Fresh trials before every step after the first (SGD; Adam on a random task).
struct Fresh<'a> {
    task: &'a Task,
    batch: usize,
    /// (N, inputs, outputs, dt) of the network.
    shape: (usize, usize, usize, f64),
}

/// The network's loss on its trials and the update direction of a learning rule (the BPTT
/// gradient, the credit of e-prop / truncated BPTT, or node perturbation's estimate).
pub(crate) struct Stepping<'a> {
    trials: Cow<'a, Trials>,
    fresh: Option<Fresh<'a>>,
    ws: Sharded,
    trainable: &'a Trainable,
    rule: LearningRule,
    credit: Credit<'a>,
    perturbation: Perturbation,
    /// Node perturbation's copy of the network (it moves the parameters to probe the loss).
    probe: Option<Network>,
    rng: &'a mut StdRng,
    /// Evaluate the whole step once more at the step cap (the record's last point).
    at_cap: bool,
}

impl<'a> Stepping<'a> {
    /// Exact BPTT on the fixed `trials` (draws nothing from `rng`), no evaluation at the cap.
    pub fn fixed(
        net: &Network,
        trials: &'a Trials,
        trainable: &'a Trainable,
        rng: &'a mut StdRng,
    ) -> Self {
        Stepping {
            ws: Sharded::new(net, trials.steps, trials.batch),
            trials: Cow::Borrowed(trials),
            fresh: None,
            trainable,
            rule: LearningRule::Bptt,
            credit: Credit::Exact,
            perturbation: Perturbation::default(),
            probe: None,
            rng,
            at_cap: false,
        }
    }
}

impl<'a> Problem for Stepping<'a> {
    type Params = Weights<'a>;
    type Grad = DVector<f64>;

    fn loss_grad(&mut self, step: usize, w: &Weights<'a>, grad: &mut DVector<f64>) -> Result<f64> {
        if let (Some(f), true) = (&self.fresh, step > 0) {
            let (n, k, r, dt) = f.shape;
            self.trials = Cow::Owned(f.task.trials(n, k, r, dt, f.batch, self.rng));
        }
        let g = grad.as_mut_slice();
        match self.rule {
            LearningRule::NodePerturbation { sigma, samples } => {
                let probe = self.probe.get_or_insert_with(|| w.net.clone());
                probe.set_params(self.trainable, w.theta.as_slice());
                self.perturbation.estimate(
                    &mut self.ws,
                    probe,
                    &self.trials,
                    self.trainable,
                    w.theta.as_slice(),
                    sigma,
                    samples,
                    self.rng,
                    g,
                )
            }
            _ => self
                .ws
                .loss_and_grad_with(w.net, &self.trials, self.trainable, self.credit, g),
        }
    }

    fn loss_at_cap(
        &mut self,
        step: usize,
        w: &Weights<'a>,
        grad: &mut DVector<f64>,
    ) -> Result<Option<f64>> {
        if !self.at_cap {
            return Ok(None);
        }
        self.loss_grad(step, w, grad).map(Some)
    }
}

/// The loss record: the loss at every evaluated point (before each step and at the end),
/// each reported with the network there to the caller's observer.
struct Record<F> {
    lr: f64,
    losses: Vec<f64>,
    observe: F,
}

impl<F: FnMut(&Progress, &Network) -> Result<()>> Record<F> {
    fn point(&mut self, step: usize, net: &Network, loss: f64) -> Result<()> {
        self.losses.push(loss);
        let tau = self.lr * step as f64;
        (self.observe)(&Progress { step, tau, loss }, net)
    }
}

impl<'a, F: FnMut(&Progress, &Network) -> Result<()>> Observer<Stepping<'a>> for Record<F> {
    fn before(&mut self, s: usize, w: &Weights<'a>, _: &DVector<f64>, loss: f64) -> Result<()> {
        self.point(s, w.net, loss)
    }
    fn end(&mut self, s: usize, w: &Weights<'a>, _: &DVector<f64>, l: Option<f64>) -> Result<()> {
        l.map_or(Ok(()), |loss| self.point(s, w.net, loss))
    }
}

/// The progress bar of a stepping run: it runs over ln(L_0 / tol), the decades of loss left to
/// the tolerance, so its ETA follows the loss curve (terminal only, silenced by --quiet).
struct Bar {
    display: Option<Box<dyn TrainProgress>>,
    initial: f64,
    tol: f64,
}

impl Bar {
    /// Finish the display after the run, or abandon it on divergence.
    fn close(&self, out: Result<Outcome>) -> Result<Outcome> {
        if let Some(b) = &self.display {
            match &out {
                Ok(_) => b.finish(),
                Err(Error::Diverged { .. }) => b.abandon(),
                Err(_) => {}
            }
        }
        out
    }
}

impl<P: Problem> Observer<P> for Bar {
    fn before(&mut self, s: usize, _: &P::Params, _: &P::Grad, loss: f64) -> Result<()> {
        if s == 0 {
            self.initial = loss;
        }
        Ok(())
    }
    fn after(&mut self, s: usize, _: &P::Params, _: &P::Grad, loss: f64) -> Result<()> {
        if let Some(b) = &self.display {
            b.position(log_progress(self.initial, loss, self.tol));
            if s.is_multiple_of(20) {
                b.message(&format!("training: step {s}, loss {loss:.3e}"));
            }
        }
        Ok(())
    }
}

/// The stopping rules (L < tol, the step cap) and the divergence test (a non-finite loss or
/// gradient, or a loss beyond `diverge_factor` x max(L_0, tol)) of a stepping run.
fn stepping_stop(opts: &TrainOptions) -> Stop {
    Stop::steps(opts.max_steps, "rnn training")
        .loss_tol(opts.tol)
        .diverge_above(f64::INFINITY)
        .relative_divergence(opts.diverge_factor, opts.tol)
        .hint(&format!(
            "try a smaller learning rate (e.g. lr = {:.3e})",
            opts.lr / 4.0
        ))
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
    observe: impl FnMut(&Progress, &Network) -> Result<()>,
) -> Result<TrainLog> {
    let shape = (net.n, net.inputs(), net.outputs(), net.dt);
    let trials = task.trials(shape.0, shape.1, shape.2, shape.3, opts.batch, rng);
    // the batch split into shards run in parallel (deterministic for any thread count)
    let ws = Sharded::new(net, trials.steps, trials.batch);
    let theta = net.params(trainable);
    // the rule's fixed feedback (random e-prop only; other rules draw nothing from rng)
    let drawn = draw_feedback(opts, feedback, net, rng);
    let dim = theta.len();
    let mut problem = Stepping {
        trials: Cow::Owned(trials),
        fresh: fresh.then_some(Fresh {
            task,
            batch: opts.batch,
            shape,
        }),
        ws,
        trainable,
        rule: opts.rule,
        credit: opts.rule.credit(feedback.or(drawn.as_ref())),
        perturbation: Perturbation::default(),
        probe: None,
        rng,
        at_cap: true,
    };
    let mut w = Weights::new(theta, net, trainable);
    let mut grad = DVector::zeros(dim);
    let stop = stepping_stop(opts);
    let record = Record {
        lr: opts.lr,
        losses: Vec::new(),
        observe,
    };
    let bar = Bar {
        display: progress_display(opts, ProgressKind::LogLoss),
        initial: f64::NAN,
        tol: opts.tol,
    };
    let mut seen = (record, bar);
    let out = match opts.optimizer {
        Optimizer::Adam { beta1, beta2, eps } => {
            let mut adam = Adam::with(dim, opts.lr, beta1, beta2, eps);
            iterate(&mut problem, &mut adam, &mut w, &mut grad, &stop, &mut seen)
        }
        // GD and SGD (the flow has its own driver, module `flow`)
        _ => {
            let mut gd = Gd {
                eta: opts.lr,
                lambda: 0.0,
            };
            iterate(&mut problem, &mut gd, &mut w, &mut grad, &stop, &mut seen)
        }
    };
    let (record, bar) = seen;
    let out = bar.close(out)?;
    let final_loss = out.loss.unwrap_or(f64::NAN);
    let initial = record.losses.first().copied().unwrap_or(f64::NAN);
    Ok(stepping_log(
        opts.lr,
        out.steps,
        stop.below_tol(final_loss),
        (initial, final_loss),
        record.losses,
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
