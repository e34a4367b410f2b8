//! The gradient-flow driver: d theta / d tau = -grad L (or the modified flow of GD) by the
//! adaptive 5(4) pair or RKC2, one accepted step at a time, stopping at the crossing L = tol
//! located on the dense output of the last step (see the parent module's docs).

use std::cell::Cell;

use nalgebra::DMatrix;
use rand::rngs::StdRng;

use super::{
    draw_feedback, progress_display, FlowMethod, Optimizer, Progress, ProgressKind, TrainLog,
    TrainOptions, TrainProgress,
};
use crate::num::iterate::Stop;
use crate::num::ode::OdeOptions;
use crate::num::rk::DynDopri;
use crate::num::rkc::DynRkc;
use crate::rnn::bptt::{Credit, Sharded};
use crate::rnn::modified_flow::Penalty;
use crate::rnn::network::{Network, Recurrent, Trainable};
use crate::rnn::rules::LearningRule;
use crate::rnn::task::{Task, Trials};
use crate::{Error, Result};

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
    /// The stepper of `method` started at theta_0 (tau = 0); with the loss at theta_0, the
    /// first evaluation's (the start may evaluate a trial point after it). A non-finite initial
    /// loss is a divergence at step 0.
    fn start<F>(
        method: FlowMethod,
        rhs: &mut F,
        theta: &[f64],
        ode: &OdeOptions,
        seen: &Evaluations,
    ) -> Result<(FlowStepper, f64)>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        let mut stepper = match method {
            FlowMethod::Rkc => FlowStepper::Rkc(DynRkc::new(theta.len())),
            FlowMethod::Dopri => FlowStepper::Dopri(DynDopri::new(theta.len())),
        };
        let started = match &mut stepper {
            FlowStepper::Dopri(st) => st.start(rhs, 0.0, theta, ode),
            FlowStepper::Rkc(st) => st.start(rhs, 0.0, theta, ode),
        };
        let initial = seen.first_loss.get();
        if !initial.is_finite() {
            return Err(Error::Diverged {
                what: "rnn gradient flow".into(),
                step: 0,
                loss: initial,
                hint: "the loss of the initial network is not finite".into(),
            });
        }
        started?;
        Ok((stepper, initial))
    }

    /// RKC's accepted steps and the gradient evaluations of its spectral-radius estimates
    /// (0 and 0 for the 5(4) pair).
    fn rkc_counts(&self) -> (usize, usize) {
        match self {
            FlowStepper::Rkc(st) => (st.counts.accepted, st.rho_evaluations),
            FlowStepper::Dopri(_) => (0, 0),
        }
    }

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
            FlowStepper::Dopri(s) => (s.counts.accepted, s.counts.rejected),
            FlowStepper::Rkc(s) => (s.counts.accepted, s.counts.rejected),
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
    /// The locator for a flow of `net`'s `params` trainable parameters on `trials`.
    fn new(net: &Network, trials: &Trials, params: usize) -> Crossing {
        Crossing {
            probe: net.clone(),
            ws: Sharded::new(net, trials.steps, trials.batch),
            buf: vec![0.0; params],
            evaluations: 0,
        }
    }

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

/// The flow's integrator options from the model's tolerances, after the checks that the flow
/// applies at all: a fixed set of trials, a deterministic direction, positive finite rtol and a
/// non-negative finite atol (default [`Optimizer::flow_atol`]).
fn flow_options(
    net: &Network,
    trainable: &Trainable,
    task: &Task,
    opts: &TrainOptions,
    rtol: f64,
    atol: Option<f64>,
) -> Result<OdeOptions> {
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
    let full = trainable.recurrent == Recurrent::Full;
    let atol = Optimizer::flow_atol(rtol, atol, full, net.n);
    if !(atol >= 0.0 && atol.is_finite()) {
        return Err(Error::Requirement(format!(
            "flow_atol = {atol}: the flow tolerance must be non-negative and finite"
        )));
    }
    Ok(OdeOptions {
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
    })
}

/// The modified flow's penalty (eta/2) H grad L (module `modified_flow`) with its scratch
/// network; exact BPTT only. `None` for the plain gradient flow.
fn modified_flow_penalty(
    net: &Network,
    opts: &TrainOptions,
    params: usize,
) -> Result<Option<(Penalty, Network)>> {
    let Optimizer::ModifiedFlow { eta, .. } = opts.optimizer else {
        return Ok(None);
    };
    if opts.rule != LearningRule::Bptt {
        return Err(Error::Requirement(
            "optimizer = \"modified_flow\" needs the exact gradient (rule = \"bptt\")".into(),
        ));
    }
    Ok(Some((Penalty::new(eta, params)?, net.clone())))
}

/// What the right-hand side reports beside the derivative: the loss of the last evaluated
/// point (FSAL: after an accepted step that is the new point), the loss of the first, and the
/// gradient evaluations (the modified flow's included).
struct Evaluations {
    last_loss: Cell<f64>,
    first_loss: Cell<f64>,
    count: Cell<usize>,
}

impl Evaluations {
    fn new() -> Evaluations {
        Evaluations {
            last_loss: Cell::new(f64::NAN),
            first_loss: Cell::new(f64::NAN),
            count: Cell::new(0),
        }
    }
}

/// The flow's right-hand side -grad L (the rule's direction, plus the modified flow's
/// penalty) on its own copy of the network.
struct FlowField<'a> {
    work: Network,
    ws: &'a mut Sharded,
    trials: &'a Trials,
    trainable: &'a Trainable,
    credit: Credit<'a>,
    penalty: Option<(Penalty, Network)>,
}

impl FlowField<'_> {
    fn eval(&mut self, seen: &Evaluations, p: &[f64], dp: &mut [f64]) -> Result<()> {
        self.work.set_params(self.trainable, p);
        let l =
            self.ws
                .loss_and_grad_with(&self.work, self.trials, self.trainable, self.credit, dp)?;
        if seen.count.get() == 0 {
            seen.first_loss.set(l);
        }
        seen.count.set(seen.count.get() + 1);
        if let (Some((pen, scratch)), true) = (self.penalty.as_mut(), l.is_finite()) {
            let before = pen.evaluations();
            pen.correct(self.ws, scratch, self.trials, self.trainable, p, dp)?;
            seen.count
                .set(seen.count.get() + pen.evaluations() - before);
        }
        if l.is_finite() {
            for d in dp.iter_mut() {
                *d = -*d;
            }
        } else {
            // a non-finite loss rejects the step (the stepper shrinks it)
            dp.iter_mut().for_each(|d| *d = f64::NAN);
        }
        seen.last_loss.set(l);
        Ok(())
    }
}

/// A failed step of the flow ([`Error::Ode`]) as the user reads it: the step cap as non-convergence (raise
/// max_steps or tol), any other integrator failure with the loss and the tolerances.
fn step_failure(e: Error, opts: &TrainOptions, ode: &OdeOptions, loss: f64) -> Error {
    let Error::Ode { t, reason } = e else {
        return e;
    };
    if reason.contains("step cap") {
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
                "rnn gradient flow: {reason} at loss {loss:.3e} (flow_rtol = {:e}, \
                 flow_atol = {:e})",
                ode.rtol, ode.atol
            ),
        }
    }
}

/// An accepted step on the progress display (its message every 20 steps).
fn show_step(bar: Option<&dyn TrainProgress>, step: usize, tau: f64, loss: f64) {
    if let Some(b) = bar {
        b.position(step as u64);
        if step.is_multiple_of(20) {
            b.message(&format!("tau {tau:.3e}  loss {loss:.3e}"));
        }
    }
}

/// The stopping rule (L < tol) and divergence test (a non-finite loss, or one beyond
/// `diverge_factor` x max(L_0, tol)) of the flow: the iteration driver's ([`Stop`]).
fn flow_stop(opts: &TrainOptions, rtol: f64) -> Stop {
    Stop::steps(opts.max_steps, "rnn gradient flow")
        .loss_tol(opts.tol)
        .diverge_above(f64::INFINITY)
        .relative_divergence(opts.diverge_factor, opts.tol)
        .hint(&format!(
            "the flow of this loss is unbounded, or flow_rtol = {rtol:e} is too loose"
        ))
}

/// The integrator with what it needs to take one recorded step: the tolerances, the stopping
/// rule and the locator of the crossing L = tol.
struct FlowRun<'a> {
    stepper: FlowStepper,
    ode: OdeOptions,
    stop: Stop,
    limit: f64,
    crossing: Crossing,
    trials: &'a Trials,
    trainable: &'a Trainable,
    opts: &'a TrainOptions,
}

impl FlowRun<'_> {
    /// One accepted step from `theta` (loss `prev` there): (accepted steps, tau, loss) at the
    /// new point, which is the crossing L = tol inside the step if the step passes below tol.
    /// A failed step or a divergence abandons `bar`.
    fn advance<F>(
        &mut self,
        rhs: &mut F,
        seen: &Evaluations,
        theta: &mut [f64],
        prev: f64,
        bar: Option<&dyn TrainProgress>,
    ) -> Result<(usize, f64, f64)>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        let tau = match self.stepper.step(rhs, theta, &self.ode) {
            Ok(t) => t,
            Err(e @ Error::Ode { .. }) => {
                bar.inspect(|b| b.abandon());
                return Err(step_failure(e, self.opts, &self.ode, prev));
            }
            Err(e) => return Err(e),
        };
        let loss = seen.last_loss.get();
        let step = self.stepper.counts().0;
        if self.stop.diverged(loss, true, self.limit) {
            bar.inspect(|b| b.abandon());
            let at = format!(" at tau = {tau:.4e}");
            return Err(self.stop.divergence(step, loss, self.limit, &at));
        }
        if !self.stop.below_tol(loss) {
            return Ok((step, tau, loss));
        }
        // the first accepted point below tol: stop at the crossing L = tol inside the step
        let (theta_c, l_c) = self.crossing.locate(
            &self.stepper,
            self.trials,
            self.trainable,
            (prev, loss),
            self.opts.tol,
            theta,
        )?;
        Ok((step, tau - (1.0 - theta_c) * self.stepper.last_step(), l_c))
    }

    /// The log of the run that ended at `loss` (flow time `tau` if converged) with the record
    /// `(losses, taus)` and the right-hand side's evaluations `seen`.
    fn log(
        &self,
        seen: &Evaluations,
        loss: f64,
        tau: f64,
        record: (Vec<f64>, Vec<f64>),
    ) -> TrainLog {
        let (accepted, rejected) = self.stepper.counts();
        let (rkc_steps, rho_evaluations) = self.stepper.rkc_counts();
        let converged = self.stop.below_tol(loss);
        let (losses, taus) = record;
        TrainLog {
            steps: accepted,
            tau: if converged { tau } else { 0.0 },
            gradient_evaluations: seen.count.get(),
            loss_evaluations: self.crossing.evaluations,
            rejected,
            rkc_steps,
            rho_evaluations,
            converged,
            initial_loss: losses[0],
            final_loss: loss,
            losses,
            taus,
        }
    }
}

/// The gradient-flow driver of [`super::train_task_with`] (see the parent module's docs).
#[allow(clippy::too_many_arguments)]
pub(super) fn train_flow(
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
    let ode = flow_options(net, trainable, task, opts, rtol, atol)?;
    let (n, k, r, dt) = (net.n, net.inputs(), net.outputs(), net.dt);
    let trials = task.trials(n, k, r, dt, opts.batch, rng);
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    // the rule's fixed feedback (random e-prop only), drawn after the trials as in the
    // stepping driver; the flow then integrates the rule's deterministic direction
    let drawn = draw_feedback(opts, feedback, net, rng);
    let mut theta: Vec<f64> = net.params(trainable).as_slice().to_vec();
    let mut field = FlowField {
        work: net.clone(),
        ws: &mut ws,
        trials: &trials,
        trainable,
        credit: opts.rule.credit(feedback.or(drawn.as_ref())),
        penalty: modified_flow_penalty(net, opts, theta.len())?,
    };
    let seen = Evaluations::new();
    let mut rhs = |p: &[f64], dp: &mut [f64]| field.eval(&seen, p, dp);
    let bar = progress_display(opts, ProgressKind::FlowSteps);
    let (stepper, initial) = FlowStepper::start(opts.flow_method, &mut rhs, &theta, &ode, &seen)?;
    let stop = flow_stop(opts, ode.rtol);
    let mut run = FlowRun {
        stepper,
        limit: stop.limit(initial),
        stop,
        ode,
        crossing: Crossing::new(net, &trials, theta.len()),
        trials: &trials,
        trainable,
        opts,
    };
    let (mut losses, mut taus) = (vec![initial], vec![0.0]);
    let (mut loss, mut tau) = (initial, 0.0);
    observe(&Progress { step: 0, tau, loss }, net)?;
    while !run.stop.below_tol(loss) {
        let step;
        (step, tau, loss) = run.advance(&mut rhs, &seen, &mut theta, loss, bar.as_deref())?;
        net.set_params(trainable, &theta);
        losses.push(loss);
        taus.push(tau);
        observe(&Progress { step, tau, loss }, net)?;
        show_step(bar.as_deref(), step, tau, loss);
    }
    bar.inspect(|b| b.finish());
    net.set_params(trainable, &theta);
    Ok(run.log(&seen, loss, tau, (losses, taus)))
}
