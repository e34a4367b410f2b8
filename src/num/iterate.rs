//! One iteration driver for gradient methods (argmin's problem / solver / executor split).
//!
//! - the *problem* ([`Problem`]) says what is minimised: the loss at the current parameters and
//!   its gradient, written into a caller-owned buffer (a stochastic problem picks its minibatch
//!   from the step index, e.g. with [`Minibatches`]);
//! - the *stepper* ([`Stepper`]) says how the parameters move: [`Gd`] (plain or with weight
//!   decay; SGD is `Gd` on a stochastic problem), [`Adam`], or a model's own update (a mirror or
//!   multiplicative step implements [`Stepper`] itself);
//! - the *driver* ([`iterate`]) owns the loop: the stopping rules ([`Stop`]: loss tolerance
//!   `L < loss_tol`, gradient tolerance, step cap), divergence detection (a non-finite loss or
//!   gradient, a loss above [`Stop::diverge_above`] or above `factor x max(L_0, floor)`
//!   ([`Stop::relative_divergence`]) is [`Error::Diverged`]) and the [`Observer`]s, which see
//!   the state before and after every step and at the final point (balance-law residuals, CSV
//!   time series, loss records ([`Losses`]) and progress bars are observers the caller supplies).
//!
//! One iteration at step `s` (0-based) is: `loss = problem.loss_grad(s, params, grad)`; the
//! divergence test; the loss and gradient tests; `observer.before(s, ..)`;
//! `stepper.step(s, loss, params, grad)`; `observer.after(s + 1, ..)`. When the step cap is reached
//! the driver evaluates [`Problem::loss_at_cap`] once more at the final parameters (with the same
//! divergence test), so [`Outcome::loss`] is the loss *at* the returned parameters (where the
//! problem can say) and
//! [`Outcome::last_step_loss`] the one the last step was taken from. [`Observer::end`] sees the
//! final point, converged or capped.
//!
//! The loss tolerance is strict, `L < loss_tol` (THEORY I.1: train to L < tol); a run that must
//! reach exactly zero loss asks for `L < f64::MIN_POSITIVE`.

use nalgebra::{DVector, SMatrix};
use rand::{rngs::StdRng, seq::SliceRandom};

use crate::{Error, Result};

/// Loss above which an iteration counts as diverged (default of [`Stop::diverge_above`]): far
/// beyond any loss of the bias models (O(1) data), far below overflow.
pub const DIVERGE_ABOVE: f64 = 1e12;

/// What is minimised.
pub trait Problem {
    /// The parameters (a flat vector or a model's own weight struct).
    type Params;
    /// The gradient buffer, owned by the caller of [`iterate`].
    type Grad: GradNorm;
    /// The loss at `params` (at step `step`'s minibatch for a stochastic problem); writes the
    /// gradient of the same loss into `grad`.
    fn loss_grad(
        &mut self,
        step: usize,
        params: &Self::Params,
        grad: &mut Self::Grad,
    ) -> Result<f64>;
    /// The loss at `params` after the last step (evaluated once, when the step cap is
    /// reached); `None` (the default) where there is no such number without a minibatch.
    fn loss(&mut self, _params: &Self::Params) -> Result<Option<f64>> {
        Ok(None)
    }
    /// The loss at the parameters the step cap left (`step` = the cap), evaluated once; the
    /// default is [`Problem::loss`]. A stochastic problem whose data come from a random stream
    /// may evaluate the whole step here (loss and gradient into `grad`, drawing as one more
    /// step would), so that a run continued later sees the stream where it expects it; a
    /// gradient written here is tested for finiteness like every other.
    fn loss_at_cap(
        &mut self,
        _step: usize,
        params: &Self::Params,
        _grad: &mut Self::Grad,
    ) -> Result<Option<f64>> {
        self.loss(params)
    }
}

/// The Euclidean norm of a gradient (for [`Stop::grad_tol`]) and whether it is finite (a
/// non-finite gradient is a divergence).
pub trait GradNorm {
    fn grad_norm(&self) -> f64;
    /// Whether every entry is finite; by default whether the norm is (a norm beyond f64's
    /// range counts as divergence too). A type that forms no gradient says `true`.
    fn is_finite(&self) -> bool {
        self.grad_norm().is_finite()
    }
}

impl GradNorm for DVector<f64> {
    fn grad_norm(&self) -> f64 {
        self.norm()
    }
    fn is_finite(&self) -> bool {
        self.iter().all(|g| g.is_finite())
    }
}

/// A fixed-size matrix (the 2x2 world's M) as a gradient: its Frobenius norm.
impl<const R: usize, const C: usize> GradNorm for SMatrix<f64, R, C> {
    fn grad_norm(&self) -> f64 {
        self.norm()
    }
    fn is_finite(&self) -> bool {
        self.iter().all(|g| g.is_finite())
    }
}

/// How the parameters move, given the loss and gradient at step `step` (the loss names the
/// state in an error, e.g. a step that would leave the model's domain).
pub trait Stepper<P: Problem + ?Sized> {
    fn step(
        &mut self,
        step: usize,
        loss: f64,
        params: &mut P::Params,
        grad: &P::Grad,
    ) -> Result<()>;
}

/// Parameters that a first-order method can move: `self <- (1 - eta lambda) self - eta g`.
pub trait Descend<G> {
    fn descend(&mut self, grad: &G, eta: f64, lambda: f64);
}

impl Descend<DVector<f64>> for DVector<f64> {
    fn descend(&mut self, grad: &DVector<f64>, eta: f64, lambda: f64) {
        if lambda != 0.0 {
            *self *= 1.0 - eta * lambda;
        }
        self.axpy(-eta, grad, 1.0);
    }
}

impl<const R: usize, const C: usize> Descend<SMatrix<f64, R, C>> for SMatrix<f64, R, C> {
    fn descend(&mut self, grad: &SMatrix<f64, R, C>, eta: f64, lambda: f64) {
        if lambda != 0.0 {
            *self *= 1.0 - eta * lambda;
        }
        *self -= grad * eta;
    }
}

/// Gradient descent with step `eta` and decoupled weight decay `lambda` (0: plain GD).
#[derive(Debug, Clone, Copy)]
pub struct Gd {
    pub eta: f64,
    pub lambda: f64,
}

impl<P: Problem> Stepper<P> for Gd
where
    P::Params: Descend<P::Grad>,
{
    fn step(&mut self, _: usize, _: f64, params: &mut P::Params, grad: &P::Grad) -> Result<()> {
        params.descend(grad, self.eta, self.lambda);
        Ok(())
    }
}

/// Parameters that a coordinate-wise method ([`Adam`]) moves: a flat view of the coordinates,
/// and a hook after every move (a model that keeps its weights beside the flat vector copies
/// them back there).
pub trait Coordinates {
    fn coordinates(&mut self) -> &mut [f64];
    /// Called after every move of the coordinates.
    fn moved(&mut self) {}
}

impl Coordinates for DVector<f64> {
    fn coordinates(&mut self) -> &mut [f64] {
        self.as_mut_slice()
    }
}

/// Adam (Kingma & Ba 2015) on flat parameters, with bias-corrected moments.
#[derive(Debug, Clone)]
pub struct Adam {
    pub eta: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    m: DVector<f64>,
    v: DVector<f64>,
}

impl Adam {
    /// Adam for `dim` parameters with the usual constants (beta1 0.9, beta2 0.999, eps 1e-8).
    pub fn new(dim: usize, eta: f64) -> Self {
        Adam::with(dim, eta, 0.9, 0.999, 1e-8)
    }

    /// Adam for `dim` parameters with moment decays `beta1`, `beta2` and denominator guard `eps`.
    pub fn with(dim: usize, eta: f64, beta1: f64, beta2: f64, eps: f64) -> Self {
        Adam {
            eta,
            beta1,
            beta2,
            eps,
            m: DVector::zeros(dim),
            v: DVector::zeros(dim),
        }
    }
}

impl<P: Problem<Grad = DVector<f64>>> Stepper<P> for Adam
where
    P::Params: Coordinates,
{
    fn step(
        &mut self,
        step: usize,
        _: f64,
        params: &mut P::Params,
        g: &DVector<f64>,
    ) -> Result<()> {
        let x = params.coordinates();
        if g.len() != self.m.len() || x.len() != self.m.len() {
            return Err(Error::Shape {
                context: "Adam".into(),
                message: format!(
                    "moments have {} entries, parameters {}, gradient {}",
                    self.m.len(),
                    x.len(),
                    g.len()
                ),
            });
        }
        let t = (step + 1) as i32;
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        for i in 0..g.len() {
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g[i];
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g[i] * g[i];
            x[i] -= self.eta * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + self.eps);
        }
        params.moved();
        Ok(())
    }
}

/// Stopping rules and the divergence threshold.
#[derive(Debug, Clone)]
pub struct Stop {
    /// Cap on the number of steps.
    pub max_steps: usize,
    /// Stop (converged) when the loss is < this (strict) before a step.
    pub loss_tol: Option<f64>,
    /// Stop (converged) when |grad| <= this before a step.
    pub grad_tol: Option<f64>,
    /// A loss above this (or a non-finite loss or gradient) is [`Error::Diverged`].
    pub diverge_above: f64,
    /// `(factor, floor)`: a loss above `factor x max(L_0, floor)` is [`Error::Diverged`] too,
    /// L_0 the first loss (a bound relative to where the run started).
    pub diverge_relative: Option<(f64, f64)>,
    /// Names the iteration in a divergence error ("two-layer (S)GD").
    pub what: String,
    /// The advice in a divergence error.
    pub hint: String,
}

impl Stop {
    /// Exactly `max_steps` steps (no tolerance), diverging above [`DIVERGE_ABOVE`].
    pub fn steps(max_steps: usize, what: &str) -> Self {
        Stop {
            max_steps,
            loss_tol: None,
            grad_tol: None,
            diverge_above: DIVERGE_ABOVE,
            diverge_relative: None,
            what: what.into(),
            hint: "reduce the step size eta".into(),
        }
    }

    /// The same with a loss tolerance.
    pub fn loss_tol(self, tol: f64) -> Self {
        Stop {
            loss_tol: Some(tol),
            ..self
        }
    }

    /// The same with a gradient tolerance.
    pub fn grad_tol(self, tol: f64) -> Self {
        Stop {
            grad_tol: Some(tol),
            ..self
        }
    }

    /// The same with another divergence hint.
    pub fn hint(self, hint: &str) -> Self {
        Stop {
            hint: hint.into(),
            ..self
        }
    }

    /// The same with another absolute divergence threshold (`f64::INFINITY`: none).
    pub fn diverge_above(self, above: f64) -> Self {
        Stop {
            diverge_above: above,
            ..self
        }
    }

    /// The same with the relative divergence bound `factor x max(L_0, floor)`.
    pub fn relative_divergence(self, factor: f64, floor: f64) -> Self {
        Stop {
            diverge_relative: Some((factor, floor)),
            ..self
        }
    }

    /// Whether `loss` meets the loss tolerance (`loss < loss_tol`; never without one).
    pub fn below_tol(&self, loss: f64) -> bool {
        self.loss_tol.is_some_and(|tol| loss < tol)
    }

    /// The divergence bound of a run whose first loss is `first`: [`Stop::diverge_above`], or
    /// the smaller relative bound `factor x max(first, floor)`.
    pub fn limit(&self, first: f64) -> f64 {
        match self.diverge_relative {
            Some((factor, floor)) => self.diverge_above.min(factor * first.max(floor)),
            None => self.diverge_above,
        }
    }

    /// Whether `loss` (or the gradient, `grad_finite` false) has diverged: it is not finite,
    /// or above `limit` (from [`Stop::limit`]).
    pub fn diverged(&self, loss: f64, grad_finite: bool, limit: f64) -> bool {
        !(loss.is_finite() && loss <= limit && grad_finite)
    }

    /// The [`Error::Diverged`] at `step` with `loss` beyond `limit`; `at` places the step in
    /// the hint of a relative bound (e.g. " at tau = 1.0e2"; "" for none).
    pub fn divergence(&self, step: usize, loss: f64, limit: f64, at: &str) -> Error {
        let hint = if self.diverge_relative.is_some() {
            format!("the loss left the bound {limit:.3e}{at}; {}", self.hint)
        } else {
            self.hint.clone()
        };
        Error::Diverged {
            what: self.what.clone(),
            step,
            loss,
            hint,
        }
    }

    /// The divergence test of [`iterate`] at `step`.
    fn check(&self, step: usize, loss: f64, grad_finite: bool, limit: f64) -> Result<()> {
        if self.diverged(loss, grad_finite, limit) {
            return Err(self.divergence(step, loss, limit, ""));
        }
        Ok(())
    }
}

/// Why the iteration stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MaxSteps,
    LossTol,
    GradTol,
}

/// The end of an iteration.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Steps taken.
    pub steps: usize,
    /// The loss at the returned parameters (`None` after the step cap if [`Problem::loss`]
    /// gives none).
    pub loss: Option<f64>,
    /// The loss the last step was taken from (NaN if no step was taken).
    pub last_step_loss: f64,
    pub reason: Reason,
}

/// Sees the iteration; both hooks default to nothing. An error stops the iteration and is
/// returned by [`iterate`].
pub trait Observer<P: Problem + ?Sized> {
    /// Before step `step` (0-based), with the loss and gradient the step will use.
    fn before(
        &mut self,
        _step: usize,
        _params: &P::Params,
        _grad: &P::Grad,
        _loss: f64,
    ) -> Result<()> {
        Ok(())
    }
    /// After the step, with `step` steps taken and `loss` the loss the step was taken from.
    fn after(
        &mut self,
        _step: usize,
        _params: &P::Params,
        _grad: &P::Grad,
        _loss: f64,
    ) -> Result<()> {
        Ok(())
    }
    /// At the final point, after `step` steps: the converged one (with the loss and gradient
    /// that met the tolerance) or the one the step cap left (with [`Problem::loss_at_cap`]'s
    /// loss, `None` where the problem gives none).
    fn end(
        &mut self,
        _step: usize,
        _params: &P::Params,
        _grad: &P::Grad,
        _loss: Option<f64>,
    ) -> Result<()> {
        Ok(())
    }
}

/// No observer.
impl<P: Problem + ?Sized> Observer<P> for () {}

/// Two observers, `.0` first.
impl<P: Problem + ?Sized, A: Observer<P>, B: Observer<P>> Observer<P> for (A, B) {
    fn before(&mut self, s: usize, p: &P::Params, g: &P::Grad, l: f64) -> Result<()> {
        self.0.before(s, p, g, l)?;
        self.1.before(s, p, g, l)
    }
    fn after(&mut self, s: usize, p: &P::Params, g: &P::Grad, l: f64) -> Result<()> {
        self.0.after(s, p, g, l)?;
        self.1.after(s, p, g, l)
    }
    fn end(&mut self, s: usize, p: &P::Params, g: &P::Grad, l: Option<f64>) -> Result<()> {
        self.0.end(s, p, g, l)?;
        self.1.end(s, p, g, l)
    }
}

/// An observer from a closure called after every step with (steps taken, params, loss).
pub struct After<F>(pub F);

impl<P: Problem + ?Sized, F: FnMut(usize, &P::Params, f64)> Observer<P> for After<F> {
    fn after(&mut self, s: usize, p: &P::Params, _: &P::Grad, l: f64) -> Result<()> {
        (self.0)(s, p, l);
        Ok(())
    }
}

/// The loss record: the loss at every evaluated point, before each step and at the final point
/// (where the problem gives one), in order; `.0[0]` is L_0.
#[derive(Debug, Clone, Default)]
pub struct Losses(pub Vec<f64>);

impl<P: Problem + ?Sized> Observer<P> for Losses {
    fn before(&mut self, _: usize, _: &P::Params, _: &P::Grad, loss: f64) -> Result<()> {
        self.0.push(loss);
        Ok(())
    }
    fn end(&mut self, _: usize, _: &P::Params, _: &P::Grad, loss: Option<f64>) -> Result<()> {
        self.0.extend(loss);
        Ok(())
    }
}

/// Run `stepper` on `problem` from `params` until a rule of `stop` holds.
pub fn iterate<P, S, O>(
    problem: &mut P,
    stepper: &mut S,
    params: &mut P::Params,
    grad: &mut P::Grad,
    stop: &Stop,
    observer: &mut O,
) -> Result<Outcome>
where
    P: Problem,
    S: Stepper<P>,
    O: Observer<P>,
{
    let mut last = f64::NAN;
    let mut limit = stop.diverge_above;
    for step in 0..stop.max_steps {
        let loss = problem.loss_grad(step, params, grad)?;
        if step == 0 {
            limit = stop.limit(loss);
        }
        stop.check(step, loss, GradNorm::is_finite(&*grad), limit)?;
        let reason = if stop.below_tol(loss) {
            Some(Reason::LossTol)
        } else if stop.grad_tol.is_some_and(|tol| grad.grad_norm() <= tol) {
            Some(Reason::GradTol)
        } else {
            None
        };
        if let Some(reason) = reason {
            observer.end(step, params, grad, Some(loss))?;
            return Ok(Outcome {
                steps: step,
                loss: Some(loss),
                last_step_loss: last,
                reason,
            });
        }
        observer.before(step, params, grad, loss)?;
        stepper.step(step, loss, params, grad)?;
        observer.after(step + 1, params, grad, loss)?;
        last = loss;
    }
    let loss = problem.loss_at_cap(stop.max_steps, params, grad)?;
    if let Some(l) = loss {
        if stop.max_steps == 0 {
            limit = stop.limit(l);
        }
        stop.check(stop.max_steps, l, GradNorm::is_finite(&*grad), limit)?;
    }
    observer.end(stop.max_steps, params, grad, loss)?;
    Ok(Outcome {
        steps: stop.max_steps,
        loss,
        last_step_loss: last,
        reason: Reason::MaxSteps,
    })
}

/// Reshuffled minibatches of `batch` out of `n` indices: a new permutation (from `rng`) whenever
/// the rest of the current one holds fewer than `batch` indices, and at the first call.
#[derive(Debug, Clone)]
pub struct Minibatches {
    order: Vec<usize>,
    pos: usize,
    batch: usize,
    rng: StdRng,
}

impl Minibatches {
    /// Batches of `batch` in 1..=`n`; a shape error otherwise.
    pub fn new(n: usize, batch: usize, rng: StdRng, context: &str) -> Result<Self> {
        if batch == 0 || batch > n {
            return Err(Error::Shape {
                context: context.into(),
                message: format!("batch size {batch} not in 1..={n}"),
            });
        }
        Ok(Minibatches {
            order: (0..n).collect(),
            pos: n,
            batch,
            rng,
        })
    }

    /// Whether every batch is the whole data set (full-batch GD: no shuffling happens).
    pub fn full(&self) -> bool {
        self.batch == self.order.len()
    }

    /// The next batch of indices.
    pub fn next_batch(&mut self) -> &[usize] {
        if self.pos + self.batch > self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.pos = 0;
        }
        let b = &self.order[self.pos..self.pos + self.batch];
        self.pos += self.batch;
        b
    }
}

#[cfg(test)]
mod tests;
