//! Adaptive explicit Runge–Kutta integration with dense output and event location: the
//! Dormand–Prince 5(4) pair (below) and the Dormand–Prince 8(5,3) pair
//! ([`super::dop853`]), one driver for both.
//!
//! The state is a static `SVector<f64, D>`, so a step allocates nothing; only the accepted
//! trajectory (and its dense-output coefficients) is pushed to growing vectors. Error control is
//! the usual mixed test `|e_i| <= atol + rtol max(|y_i|, |y_new_i|)` in the RMS norm (DOP853:
//! Hairer's combination of its 5th- and 3rd-order estimators), with the step-size controller of
//! Hairer, Nørsett & Wanner (safety 0.9; growth in [0.2, 10] for DP45, [1/3, 6] for DOP853; no
//! growth right after a rejection). Dense output is the continuous extension of each method
//! (Hairer's `contd5`, order 4; `contd8`, order 7), accurate to the integration tolerance
//! between steps.
//!
//! [`Method::Auto`] (the default) takes DOP853 when `rtol` <= [`DOP853_BELOW_RTOL`] and DP45
//! otherwise (see bench/README.md for the measurement behind the threshold).
//!
//! ```
//! use modeflow::num::ode::{solve, Method, OdeOptions};
//! use nalgebra::Vector1;
//! // y' = -y, y(0) = 1  ->  y(1) = e^-1, with either pair
//! for method in [Method::Dp45, Method::Dop853] {
//!     let opts = OdeOptions { method, ..OdeOptions::default() };
//!     let tr = solve(|_, y| -y, 0.0, Vector1::new(1.0), 1.0, &opts).unwrap();
//!     assert!((tr.last().1[0] - (-1.0f64).exp()).abs() < 1e-10);
//!     assert!((tr.eval(0.5)[0] - (-0.5f64).exp()).abs() < 1e-9);
//! }
//! ```

use nalgebra::SVector;

use super::dop853;
use crate::{Error, Result};

mod counts;
mod dp45;
mod pairs;
pub use counts::StepCounts;
pub(in crate::num) use dp45::*;
use pairs::*;

/// Which Runge–Kutta pair integrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// Dormand–Prince 5(4), dense output of order 4.
    Dp45,
    /// Dormand–Prince 8(5,3), dense output of order 7 ([`super::dop853`]).
    Dop853,
    /// DOP853 when `rtol <= DOP853_BELOW_RTOL`, else DP45.
    #[default]
    Auto,
}

/// [`Method::Auto`] switches to DOP853 at and below this relative tolerance. Measured on the
/// linear 2x2 task-B flow (bench/README.md): DOP853 needs fewer right-hand-side evaluations
/// than DP45 from rtol ~1e-7 on, and is faster in wall time from rtol 1e-8 on.
pub const DOP853_BELOW_RTOL: f64 = 1e-8;

impl Method {
    /// The pair that `self` stands for at relative tolerance `rtol`.
    pub fn resolve(self, rtol: f64) -> Method {
        match self {
            Method::Auto if rtol <= DOP853_BELOW_RTOL => Method::Dop853,
            Method::Auto => Method::Dp45,
            m => m,
        }
    }
}

/// Tolerances and caps of the integrator.
#[derive(Debug, Clone, Copy)]
pub struct OdeOptions {
    /// Relative tolerance per step (local error control).
    pub rtol: f64,
    /// Absolute tolerance per step.
    pub atol: f64,
    /// Initial step; 0 chooses it automatically (Hairer's `hinit`).
    pub h0: f64,
    /// Largest allowed |step|.
    pub h_max: f64,
    /// Cap on the number of attempted steps; exceeding it is an error, never an endless loop.
    pub max_steps: usize,
    /// The Runge–Kutta pair (default [`Method::Auto`]).
    pub method: Method,
    /// Dense output of the method's full order on every step (default). `false` keeps it only
    /// on the step where an event is located and uses the cubic Hermite interpolant of the step
    /// points elsewhere; this saves DOP853 3 of its 15 evaluations per step and changes no
    /// accepted step, event time or event state (DP45's dense output is free either way).
    pub dense: bool,
}

impl Default for OdeOptions {
    fn default() -> Self {
        OdeOptions {
            rtol: 1e-9,
            atol: 1e-12,
            h0: 0.0,
            h_max: f64::INFINITY,
            max_steps: 1_000_000,
            method: Method::Auto,
            dense: true,
        }
    }
}

impl OdeOptions {
    /// Options with the given relative and absolute tolerances.
    pub fn tol(rtol: f64, atol: f64) -> Self {
        OdeOptions {
            rtol,
            atol,
            ..Default::default()
        }
    }
}

/// An accepted trajectory with dense output.
#[derive(Debug, Clone)]
pub struct Trajectory<const D: usize> {
    /// Accepted times (monotone in the direction of integration).
    pub t: Vec<f64>,
    /// States at `t`.
    pub y: Vec<SVector<f64, D>>,
    /// Dense-output coefficients of segment i (from t[i] with step h[i]); DP45 uses the first 5.
    cont: Vec<[SVector<f64, D>; 8]>,
    h: Vec<f64>,
    /// The pair that produced the trajectory ([`Method::Dp45`] or [`Method::Dop853`]).
    pub method: Method,
    /// Right-hand-side evaluations, accepted and rejected steps (accepted = [`Self::steps`]).
    pub counts: StepCounts,
}

impl<const D: usize> Trajectory<D> {
    /// Final time and state.
    pub fn last(&self) -> (f64, SVector<f64, D>) {
        (*self.t.last().unwrap(), *self.y.last().unwrap())
    }

    /// Number of accepted steps.
    pub fn steps(&self) -> usize {
        self.t.len() - 1
    }

    /// The state at time `t` from the dense output; `t` is clamped to the integrated range.
    pub fn eval(&self, t: f64) -> SVector<f64, D> {
        let n = self.t.len();
        if n == 1 {
            return self.y[0];
        }
        let forward = self.t[n - 1] >= self.t[0];
        // index of the segment containing t
        let i = if forward {
            if t <= self.t[0] {
                return self.y[0];
            }
            if t >= self.t[n - 1] {
                return self.y[n - 1];
            }
            self.t.partition_point(|&s| s <= t).saturating_sub(1)
        } else {
            if t >= self.t[0] {
                return self.y[0];
            }
            if t <= self.t[n - 1] {
                return self.y[n - 1];
            }
            self.t.partition_point(|&s| s >= t).saturating_sub(1)
        };
        let i = i.min(self.cont.len() - 1);
        let theta = (t - self.t[i]) / self.h[i];
        match self.method {
            Method::Dop853 => dop853::interpolate(&self.cont[i], theta),
            _ => interpolate5(&self.cont[i], theta),
        }
    }
}

/// Step-size factor after an accepted step with scaled error `err <= 1` (Hairer, Nørsett &
/// Wanner II.4: safety 0.9, exponent -1/5 for the 4th-order error estimate, growth in
/// [0.2, 10], no growth right after a rejection).
pub(super) fn accept_factor(err: f64, last_rejected: bool) -> f64 {
    accept_factor_with(err, last_rejected, 0.2, 0.2, 10.0)
}

/// Step-size factor after a rejected step with scaled error `err > 1` (shrink by at most 5x).
pub(super) fn reject_factor(err: f64) -> f64 {
    reject_factor_with(err, 0.2, 0.2)
}

/// The controller of a pair of error order 1/`exponent` - 1: grow by `0.9 err^-exponent` within
/// [`fac_min`, `fac_max`], never grow right after a rejection.
pub(super) fn accept_factor_with(
    err: f64,
    last_rejected: bool,
    exponent: f64,
    fac_min: f64,
    fac_max: f64,
) -> f64 {
    let fac = (0.9 * err.max(1e-10).powf(-exponent)).clamp(fac_min, fac_max);
    if last_rejected {
        fac.min(1.0)
    } else {
        fac
    }
}

/// Shrink factor after a rejected step (at most by 1/`fac_min`).
pub(super) fn reject_factor_with(err: f64, exponent: f64, fac_min: f64) -> f64 {
    (0.9 * err.powf(-exponent)).max(fac_min)
}

/// Integrate `y' = f(t, y)` from `t0` to `t1` (backward if `t1 < t0`).
pub fn solve<const D: usize>(
    mut f: impl FnMut(f64, &SVector<f64, D>) -> SVector<f64, D>,
    t0: f64,
    y0: SVector<f64, D>,
    t1: f64,
    opts: &OdeOptions,
) -> Result<Trajectory<D>> {
    try_solve(move |t, y| Ok(f(t, y)), t0, y0, t1, opts)
}

/// [`solve`] with a fallible right-hand side: the first error it returns stops the integration
/// and is returned as it is.
pub fn try_solve<const D: usize>(
    f: impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
    t0: f64,
    y0: SVector<f64, D>,
    t1: f64,
    opts: &OdeOptions,
) -> Result<Trajectory<D>> {
    let (tr, _) = dispatch(
        f,
        t0,
        y0,
        t1,
        None::<fn(f64, &SVector<f64, D>) -> Result<f64>>,
        opts,
    )?;
    Ok(tr)
}

/// Integrate until the first sign change of `event(t, y)` or until `t_max`.
///
/// Returns the trajectory, ending at the event if one occurred, and `Some(t_event)`. The event
/// time is located on the dense output by safeguarded regula falsi (Illinois) to a relative
/// accuracy ~1e-14 in t; the state there carries the integration error of the dense output.
/// An event function that is exactly zero at `t0` does not trigger.
pub fn solve_until<const D: usize>(
    mut f: impl FnMut(f64, &SVector<f64, D>) -> SVector<f64, D>,
    t0: f64,
    y0: SVector<f64, D>,
    t_max: f64,
    mut event: impl FnMut(f64, &SVector<f64, D>) -> f64,
    opts: &OdeOptions,
) -> Result<(Trajectory<D>, Option<f64>)> {
    dispatch(
        move |t, y| Ok(f(t, y)),
        t0,
        y0,
        t_max,
        Some(move |t: f64, y: &SVector<f64, D>| Ok(event(t, y))),
        opts,
    )
}

/// [`solve_until`] with a fallible right-hand side and event function: the first error either
/// returns stops the integration and is returned as it is.
pub fn try_solve_until<const D: usize>(
    f: impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
    t0: f64,
    y0: SVector<f64, D>,
    t_max: f64,
    event: impl FnMut(f64, &SVector<f64, D>) -> Result<f64>,
    opts: &OdeOptions,
) -> Result<(Trajectory<D>, Option<f64>)> {
    dispatch(f, t0, y0, t_max, Some(event), opts)
}

fn dispatch<const D: usize, F, G>(
    f: F,
    t0: f64,
    y0: SVector<f64, D>,
    t1: f64,
    event: Option<G>,
    opts: &OdeOptions,
) -> Result<(Trajectory<D>, Option<f64>)>
where
    F: FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
    G: FnMut(f64, &SVector<f64, D>) -> Result<f64>,
{
    match opts.method.resolve(opts.rtol) {
        Method::Dop853 => integrate::<D, F, G, Dop853Pair>(f, t0, y0, t1, event, opts),
        _ => integrate::<D, F, G, Dp45Pair>(f, t0, y0, t1, event, opts),
    }
}

fn rms_err<const D: usize>(
    e: &SVector<f64, D>,
    y0: &SVector<f64, D>,
    y1: &SVector<f64, D>,
    opts: &OdeOptions,
) -> f64 {
    let mut s = 0.0;
    for i in 0..D {
        let sc = opts.atol + opts.rtol * y0[i].abs().max(y1[i].abs());
        let r = e[i] / sc;
        s += r * r;
    }
    (s / D.max(1) as f64).sqrt()
}

/// Hairer's initial step-size heuristic for a method of order `order`.
#[allow(clippy::too_many_arguments)]
fn initial_step<const D: usize>(
    f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
    t0: f64,
    y0: &SVector<f64, D>,
    k1: &SVector<f64, D>,
    dir: f64,
    span: f64,
    order: i32,
    opts: &OdeOptions,
) -> Result<f64> {
    let z = SVector::<f64, D>::zeros();
    let d0 = rms_err(y0, &z, &z, opts);
    let d1 = rms_err(k1, y0, y0, opts);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let h0 = h0.min(span).min(opts.h_max);
    let y1 = y0 + k1 * (dir * h0);
    let k2 = f(t0 + dir * h0, &y1)?;
    let d2 = rms_err(&(k2 - k1), y0, y0, opts) / h0;
    let h1 = if d1.max(d2) <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / order as f64)
    };
    Ok((100.0 * h0).min(h1).min(span).min(opts.h_max))
}

type Stages<const D: usize> = dop853::Stages<D>;

/// The integration interval, initial state and tolerances are usable.
fn check_inputs<const D: usize>(
    t0: f64,
    y0: &SVector<f64, D>,
    t1: f64,
    opts: &OdeOptions,
) -> Result<()> {
    if !(t0.is_finite() && t1.is_finite()) {
        return Err(Error::Ode {
            t: t0,
            reason: format!("non-finite time interval [{t0}, {t1}]"),
        });
    }
    if y0.iter().any(|v| !v.is_finite()) {
        return Err(Error::Ode {
            t: t0,
            reason: "non-finite initial state".into(),
        });
    }
    if !(opts.rtol > 0.0 && opts.atol >= 0.0) {
        return Err(Error::Ode {
            t: t0,
            reason: format!(
                "tolerances must satisfy rtol > 0, atol >= 0 (got {}, {})",
                opts.rtol, opts.atol
            ),
        });
    }
    Ok(())
}

/// One accepted step [t, t_new] with signed size `hs`; `full`: its dense output has the
/// method's full order.
struct Step<const D: usize> {
    t: f64,
    hs: f64,
    t_new: f64,
    y: SVector<f64, D>,
    y_new: SVector<f64, D>,
    full: bool,
}

impl<const D: usize> Trajectory<D> {
    fn push(&mut self, cont: [SVector<f64, D>; 8], hs: f64, t: f64, y: SVector<f64, D>) {
        self.cont.push(cont);
        self.h.push(hs);
        self.t.push(t);
        self.y.push(y);
    }
}

/// The event test on an accepted step: `Some(t_event)` (the trajectory then ends there) when
/// `g` changes sign from `g_old` (updated otherwise).
fn event_on_step<const D: usize, P: Pair>(
    g: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<f64>,
    f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
    tr: &mut Trajectory<D>,
    k: &mut Stages<D>,
    cont: &mut [SVector<f64, D>; 8],
    s: &Step<D>,
    g_old: &mut f64,
) -> Result<Option<f64>> {
    let g_new = g(s.t_new, &s.y_new)?;
    if *g_old != 0.0 && (g_new == 0.0 || g_old.signum() != g_new.signum()) {
        if !s.full {
            if let Some((c, evals)) = P::complete(f, s.t, &s.y, &s.y_new, k, s.hs)? {
                *cont = c;
                tr.counts.evaluations += evals;
            }
        }
        let theta = locate_event::<D, P>(g, cont, s.t, s.hs, *g_old, g_new)?;
        let te = s.t + theta * s.hs;
        tr.push(*cont, s.hs, te, P::interpolate(cont, theta));
        return Ok(Some(te));
    }
    *g_old = g_new;
    Ok(None)
}

/// The step |h| from t toward t1, cut to land on t1 (then `true`: the last step); a step
/// below rounding level of t is an error.
pub(super) fn clip_step(h: f64, t: f64, t1: f64) -> Result<(f64, bool)> {
    let remaining = (t1 - t).abs();
    let last = h >= remaining * (1.0 - 1e-12);
    let h = if last { remaining } else { h };
    if h.is_nan() || h < 1e-14 * t.abs().max(1.0) {
        return Err(Error::Ode {
            t,
            reason: format!("step size underflow (h = {h:e})"),
        });
    }
    Ok((h, last))
}

/// The cap on attempted steps (accepted and rejected) of one integration: an error once
/// `attempts` exceeds `max_steps`. Shared by every adaptive stepper in `num`.
pub(super) fn check_attempts(attempts: usize, max_steps: usize, t: f64) -> Result<()> {
    if attempts > max_steps {
        return Err(Error::Ode {
            t,
            reason: format!("step cap {max_steps} reached"),
        });
    }
    Ok(())
}

fn integrate<const D: usize, F, G, P: Pair>(
    mut f: F,
    t0: f64,
    y0: SVector<f64, D>,
    t1: f64,
    mut event: Option<G>,
    opts: &OdeOptions,
) -> Result<(Trajectory<D>, Option<f64>)>
where
    F: FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
    G: FnMut(f64, &SVector<f64, D>) -> Result<f64>,
{
    check_inputs(t0, &y0, t1, opts)?;
    let mut tr = Trajectory {
        t: vec![t0],
        y: vec![y0],
        cont: Vec::new(),
        h: Vec::new(),
        method: P::METHOD,
        counts: StepCounts::default(),
    };
    let span = (t1 - t0).abs();
    if span == 0.0 {
        return Ok((tr, None));
    }
    let dir = (t1 - t0).signum();
    let mut t = t0;
    let mut y = y0;
    let mut k: Stages<D> = [SVector::zeros(); 16];
    k[0] = f(t, &y)?;
    tr.counts.evaluations += 1;
    let mut g_old = match event.as_mut() {
        Some(g) => g(t, &y)?,
        None => 0.0,
    };
    let mut h = if opts.h0 > 0.0 {
        opts.h0.min(span)
    } else {
        tr.counts.evaluations += 1;
        initial_step(&mut f, t0, &y, &k[0], dir, span, P::ORDER, opts)?
    };
    loop {
        tr.counts.attempt(opts.max_steps, t)?;
        let (h_step, last) = clip_step(h, t, t1)?;
        h = h_step;
        let hs = dir * h;
        let t_new = if last { t1 } else { t + hs };
        let (y_new, err, evals) = P::attempt(&mut f, t, &y, &mut k, hs, t_new, opts)?;
        tr.counts.evaluations += evals;
        if !err.is_finite() || y_new.iter().any(|v| !v.is_finite()) || err > 1.0 {
            // a non-finite step is a strong rejection; if the step is already tiny this ends
            // in underflow
            h *= if err.is_finite() && y_new.iter().all(|v| v.is_finite()) {
                reject_factor_with(err, P::EXPONENT, P::FAC_MIN)
            } else {
                0.1
            };
            tr.counts.reject();
            continue;
        }
        let after_rejection = tr.counts.last_rejected();
        tr.counts.accept();
        let full = opts.dense;
        let (f_new, mut cont, evals) = P::accept(&mut f, t, &y, &y_new, &mut k, hs, t_new, full)?;
        tr.counts.evaluations += evals;
        let step = Step {
            t,
            hs,
            t_new,
            y,
            y_new,
            full,
        };
        if let Some(g) = event.as_mut() {
            let hit =
                event_on_step::<D, P>(g, &mut f, &mut tr, &mut k, &mut cont, &step, &mut g_old)?;
            if hit.is_some() {
                return Ok((tr, hit));
            }
        }
        tr.push(cont, hs, t_new, y_new);
        t = t_new;
        y = y_new;
        k[0] = f_new;
        if last {
            return Ok((tr, None));
        }
        h = (h * accept_factor_with(err, after_rejection, P::EXPONENT, P::FAC_MIN, P::FAC_MAX))
            .min(opts.h_max);
    }
}

fn locate_event<const D: usize, P: Pair>(
    g: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<f64>,
    cont: &[SVector<f64, D>; 8],
    t: f64,
    hs: f64,
    g0: f64,
    g1: f64,
) -> Result<f64> {
    if g1 == 0.0 {
        return Ok(1.0);
    }
    let (mut a, mut b, mut ga, mut gb) = (0.0f64, 1.0f64, g0, g1);
    let mut side = 0i32;
    for _ in 0..200 {
        // stop when the bracket in t is at rounding level of t
        if (b - a) * hs.abs() <= 4.0 * f64::EPSILON * t.abs().max(hs.abs()) {
            break;
        }
        // Illinois variant of regula falsi: guaranteed bracketing, superlinear convergence.
        let c = (a * gb - b * ga) / (gb - ga);
        let c = if c.is_finite() && c > a && c < b {
            c
        } else {
            0.5 * (a + b)
        };
        let gc = g(t + c * hs, &P::interpolate(cont, c))?;
        if gc == 0.0 {
            return Ok(c);
        }
        if gc.signum() == gb.signum() {
            b = c;
            gb = gc;
            if side == 1 {
                ga *= 0.5;
            }
            side = 1;
        } else {
            a = c;
            ga = gc;
            if side == -1 {
                gb *= 0.5;
            }
            side = -1;
        }
    }
    // the sign change lies in [a, b]; return the side where the event has happened
    Ok(b)
}

#[cfg(test)]
mod tests;
