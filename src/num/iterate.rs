//! One iteration driver for gradient methods (argmin's problem / solver / executor split).
//!
//! - the *problem* ([`Problem`]) says what is minimised: the loss at the current parameters and
//!   its gradient, written into a caller-owned buffer (a stochastic problem picks its minibatch
//!   from the step index, e.g. with [`Minibatches`]);
//! - the *stepper* ([`Stepper`]) says how the parameters move: [`Gd`] (plain or with weight
//!   decay; SGD is `Gd` on a stochastic problem), [`Adam`], or a model's own update (a mirror or
//!   multiplicative step implements [`Stepper`] itself);
//! - the *driver* ([`iterate`]) owns the loop: the stopping rules ([`Stop`]: loss tolerance,
//!   gradient tolerance, step cap), divergence detection (a non-finite loss or one above
//!   [`Stop::diverge_above`] is [`Error::Diverged`]) and the [`Observer`]s, which see the state
//!   before and after every step (balance-law residuals, CSV time series and progress bars are
//!   observers the caller supplies).
//!
//! One iteration at step `s` (0-based) is: `loss = problem.loss_grad(s, params, grad)`; the
//! divergence test; the loss and gradient tests; `observer.before(s, ..)`;
//! `stepper.step(s, loss, params, grad)`; `observer.after(s + 1, ..)`. When the step cap is reached
//! the driver evaluates [`Problem::loss`] once more at the final parameters (with the same
//! divergence test), so [`Outcome::loss`] is the loss *at* the returned parameters (where the
//! problem can say) and
//! [`Outcome::last_step_loss`] the one the last step was taken from.

use nalgebra::DVector;
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
}

/// The Euclidean norm of a gradient (for [`Stop::grad_tol`]).
pub trait GradNorm {
    fn grad_norm(&self) -> f64;
}

impl GradNorm for DVector<f64> {
    fn grad_norm(&self) -> f64 {
        self.norm()
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
        Adam {
            eta,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: DVector::zeros(dim),
            v: DVector::zeros(dim),
        }
    }
}

impl<P: Problem<Params = DVector<f64>, Grad = DVector<f64>>> Stepper<P> for Adam {
    fn step(&mut self, step: usize, _: f64, x: &mut DVector<f64>, g: &DVector<f64>) -> Result<()> {
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
        Ok(())
    }
}

/// Stopping rules and the divergence threshold.
#[derive(Debug, Clone)]
pub struct Stop {
    /// Cap on the number of steps.
    pub max_steps: usize,
    /// Stop (converged) when the loss is <= this before a step.
    pub loss_tol: Option<f64>,
    /// Stop (converged) when |grad| <= this before a step.
    pub grad_tol: Option<f64>,
    /// A loss above this (or non-finite) is [`Error::Diverged`].
    pub diverge_above: f64,
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

    fn check(&self, step: usize, loss: f64) -> Result<()> {
        if !loss.is_finite() || loss > self.diverge_above {
            return Err(Error::Diverged {
                what: self.what.clone(),
                step,
                loss,
                hint: self.hint.clone(),
            });
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
}

/// An observer from a closure called after every step with (steps taken, params, loss).
pub struct After<F>(pub F);

impl<P: Problem + ?Sized, F: FnMut(usize, &P::Params, f64)> Observer<P> for After<F> {
    fn after(&mut self, s: usize, p: &P::Params, _: &P::Grad, l: f64) -> Result<()> {
        (self.0)(s, p, l);
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
    for step in 0..stop.max_steps {
        let loss = problem.loss_grad(step, params, grad)?;
        stop.check(step, loss)?;
        let reason = if stop.loss_tol.is_some_and(|tol| loss <= tol) {
            Some(Reason::LossTol)
        } else if stop.grad_tol.is_some_and(|tol| grad.grad_norm() <= tol) {
            Some(Reason::GradTol)
        } else {
            None
        };
        if let Some(reason) = reason {
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
    let loss = problem.loss(params)?;
    if let Some(l) = loss {
        stop.check(stop.max_steps, l)?;
    }
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
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// L(x) = sum_i c_i x_i^2 / 2, gradient c_i x_i.
    struct Quadratic {
        c: DVector<f64>,
        evaluations: usize,
    }

    impl Problem for Quadratic {
        type Params = DVector<f64>;
        type Grad = DVector<f64>;
        fn loss_grad(&mut self, _: usize, x: &DVector<f64>, g: &mut DVector<f64>) -> Result<f64> {
            self.evaluations += 1;
            g.copy_from(&self.c.component_mul(x));
            Ok(0.5 * self.c.dot(&x.component_mul(x)))
        }
        fn loss(&mut self, x: &DVector<f64>) -> Result<Option<f64>> {
            Ok(Some(0.5 * self.c.dot(&x.component_mul(x))))
        }
    }

    fn quadratic(c: &[f64]) -> Quadratic {
        Quadratic {
            c: DVector::from_column_slice(c),
            evaluations: 0,
        }
    }

    #[test]
    fn gd_on_a_quadratic_matches_the_closed_form() {
        let mut p = quadratic(&[1.0, 0.5]);
        let mut x = DVector::from_column_slice(&[1.0, -2.0]);
        let mut g = DVector::zeros(2);
        let (eta, n) = (0.1, 50);
        let out = iterate(
            &mut p,
            &mut Gd { eta, lambda: 0.0 },
            &mut x,
            &mut g,
            &Stop::steps(n, "test GD"),
            &mut (),
        )
        .unwrap();
        assert_eq!(out.reason, Reason::MaxSteps);
        assert_eq!(out.steps, n);
        // x_k = (1 - eta c)^k x_0; rounding only (50 multiplications)
        let want = [0.9f64.powi(50), -2.0 * 0.95f64.powi(50)];
        for i in 0..2 {
            assert!((x[i] - want[i]).abs() < 1e-14, "{} vs {}", x[i], want[i]);
        }
        let l = 0.5 * (want[0] * want[0] + 0.5 * want[1] * want[1]);
        assert!((out.loss.unwrap() - l).abs() < 1e-15);
        assert_eq!(p.evaluations, n);
    }

    #[test]
    fn loss_and_gradient_tolerances_stop_at_the_first_step_below() {
        for (stop, reason) in [
            (Stop::steps(1000, "t").loss_tol(1e-6), Reason::LossTol),
            (Stop::steps(1000, "t").grad_tol(1e-6), Reason::GradTol),
        ] {
            let mut p = quadratic(&[1.0]);
            let mut x = DVector::from_element(1, 1.0);
            let mut g = DVector::zeros(1);
            let gd = &mut Gd {
                eta: 0.5,
                lambda: 0.0,
            };
            let out = iterate(&mut p, gd, &mut x, &mut g, &stop, &mut ()).unwrap();
            assert_eq!(out.reason, reason);
            // x_k = 2^-k: L = 2^-2k / 2 <= 1e-6 first at k = 10; |g| = 2^-k <= 1e-6 at k = 20
            let k = if reason == Reason::LossTol { 10 } else { 20 };
            assert_eq!(out.steps, k);
            assert_eq!(x[0], 0.5f64.powi(k as i32));
            assert_eq!(out.last_step_loss, 0.5 * 0.25f64.powi(k as i32 - 1));
        }
    }

    #[test]
    fn a_growing_loss_is_a_typed_divergence() {
        // eta c = 3: x_k = (-2)^k, L = 4^k / 2 passes 1e12 at k = 21
        let mut p = quadratic(&[1.0]);
        let mut x = DVector::from_element(1, 1.0);
        let mut g = DVector::zeros(1);
        let gd = &mut Gd {
            eta: 3.0,
            lambda: 0.0,
        };
        let err = iterate(
            &mut p,
            gd,
            &mut x,
            &mut g,
            &Stop::steps(100, "test GD"),
            &mut (),
        )
        .unwrap_err();
        match err {
            Error::Diverged {
                what, step, loss, ..
            } => {
                assert_eq!(what, "test GD");
                assert_eq!(step, 21);
                assert_eq!(loss, 0.5 * 4f64.powi(21));
            }
            e => panic!("expected Diverged, got {e}"),
        }
        // a non-finite loss diverges at once
        let mut x = DVector::from_element(1, f64::NAN);
        let err = iterate(&mut p, gd, &mut x, &mut g, &Stop::steps(5, "t"), &mut ()).unwrap_err();
        assert!(matches!(err, Error::Diverged { step: 0, .. }));
    }

    #[derive(Default)]
    struct Log(Vec<(char, usize, f64)>);

    impl Observer<Quadratic> for Log {
        fn before(&mut self, s: usize, x: &DVector<f64>, _: &DVector<f64>, l: f64) -> Result<()> {
            self.0.push(('b', s, x[0] + l));
            Ok(())
        }
        fn after(&mut self, s: usize, x: &DVector<f64>, _: &DVector<f64>, l: f64) -> Result<()> {
            self.0.push(('a', s, x[0] + l));
            if s == 3 {
                return Err(Error::Numerical("observer stops".into()));
            }
            Ok(())
        }
    }

    #[test]
    fn observers_see_every_step_in_order_and_can_stop_it() {
        let mut p = quadratic(&[1.0]);
        let mut x = DVector::from_element(1, 1.0);
        let mut g = DVector::zeros(1);
        let gd = &mut Gd {
            eta: 0.5,
            lambda: 0.0,
        };
        let mut log = (
            Log::default(),
            After(|_: usize, _: &DVector<f64>, _: f64| {}),
        );
        let err = iterate(&mut p, gd, &mut x, &mut g, &Stop::steps(10, "t"), &mut log);
        assert!(matches!(err, Err(Error::Numerical(_))));
        let l = |k: i32| 0.5 * 0.25f64.powi(k);
        let x = |k: i32| 0.5f64.powi(k);
        let want = vec![
            ('b', 0, x(0) + l(0)),
            ('a', 1, x(1) + l(0)),
            ('b', 1, x(1) + l(1)),
            ('a', 2, x(2) + l(1)),
            ('b', 2, x(2) + l(2)),
            ('a', 3, x(3) + l(2)),
        ];
        assert_eq!(log.0 .0, want);
    }

    #[test]
    fn adam_moves_each_coordinate_by_about_eta_at_first() {
        // the first Adam step is -eta g / (|g| + eps) per coordinate
        let mut p = quadratic(&[1.0, 100.0]);
        let mut x = DVector::from_column_slice(&[1.0, 1.0]);
        let mut g = DVector::zeros(2);
        let mut adam = Adam::new(2, 0.01);
        iterate(
            &mut p,
            &mut adam,
            &mut x,
            &mut g,
            &Stop::steps(1, "Adam"),
            &mut (),
        )
        .unwrap();
        assert!((x[0] - (1.0 - 0.01 / (1.0 + 1e-8))).abs() < 1e-15);
        assert!((x[1] - (1.0 - 0.01 * 100.0 / (100.0 + 1e-8))).abs() < 1e-15);
        // and converges on the quadratic
        let out = iterate(
            &mut p,
            &mut adam,
            &mut x,
            &mut g,
            &Stop::steps(20_000, "Adam").loss_tol(1e-12),
            &mut (),
        )
        .unwrap();
        assert_eq!(out.reason, Reason::LossTol);
    }

    #[test]
    fn minibatches_cover_every_index_once_per_epoch() {
        let mut mb = Minibatches::new(10, 3, StdRng::seed_from_u64(7), "test").unwrap();
        assert!(!mb.full());
        // 3 batches per permutation (one index left over each time)
        for _ in 0..4 {
            let mut seen = Vec::new();
            for _ in 0..3 {
                seen.extend_from_slice(mb.next_batch());
            }
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 9);
        }
        assert!(Minibatches::new(10, 0, StdRng::seed_from_u64(7), "t").is_err());
        assert!(Minibatches::new(10, 11, StdRng::seed_from_u64(7), "t").is_err());
    }
}
