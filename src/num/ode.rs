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
    /// Number of right-hand-side evaluations.
    pub evaluations: usize,
    /// Number of rejected steps.
    pub rejected: usize,
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

#[inline]
fn interpolate5<const D: usize>(c: &[SVector<f64, D>; 8], theta: f64) -> SVector<f64, D> {
    let th1 = 1.0 - theta;
    c[0] + (c[1] + (c[2] + (c[3] + c[4] * th1) * theta) * th1) * theta
}

// Dormand–Prince 5(4) tableau (shared with the dynamic-size solver in `super::rk`).
pub(super) const C2: f64 = 1.0 / 5.0;
pub(super) const C3: f64 = 3.0 / 10.0;
pub(super) const C4: f64 = 4.0 / 5.0;
pub(super) const C5: f64 = 8.0 / 9.0;
pub(super) const A21: f64 = 1.0 / 5.0;
pub(super) const A31: f64 = 3.0 / 40.0;
pub(super) const A32: f64 = 9.0 / 40.0;
pub(super) const A41: f64 = 44.0 / 45.0;
pub(super) const A42: f64 = -56.0 / 15.0;
pub(super) const A43: f64 = 32.0 / 9.0;
pub(super) const A51: f64 = 19372.0 / 6561.0;
pub(super) const A52: f64 = -25360.0 / 2187.0;
pub(super) const A53: f64 = 64448.0 / 6561.0;
pub(super) const A54: f64 = -212.0 / 729.0;
pub(super) const A61: f64 = 9017.0 / 3168.0;
pub(super) const A62: f64 = -355.0 / 33.0;
pub(super) const A63: f64 = 46732.0 / 5247.0;
pub(super) const A64: f64 = 49.0 / 176.0;
pub(super) const A65: f64 = -5103.0 / 18656.0;
pub(super) const A71: f64 = 35.0 / 384.0;
pub(super) const A73: f64 = 500.0 / 1113.0;
pub(super) const A74: f64 = 125.0 / 192.0;
pub(super) const A75: f64 = -2187.0 / 6784.0;
pub(super) const A76: f64 = 11.0 / 84.0;
pub(super) const E1: f64 = 71.0 / 57600.0;
pub(super) const E3: f64 = -71.0 / 16695.0;
pub(super) const E4: f64 = 71.0 / 1920.0;
pub(super) const E5: f64 = -17253.0 / 339200.0;
pub(super) const E6: f64 = 22.0 / 525.0;
pub(super) const E7: f64 = -1.0 / 40.0;
pub(super) const D1: f64 = -12715105075.0 / 11282082432.0;
pub(super) const D3: f64 = 87487479700.0 / 32700410799.0;
pub(super) const D4: f64 = -10690763975.0 / 1880347072.0;
pub(super) const D5: f64 = 701980252875.0 / 199316789632.0;
pub(super) const D6: f64 = -1453857185.0 / 822651844.0;
pub(super) const D7: f64 = 69997945.0 / 29380423.0;

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

/// What distinguishes the two pairs inside the shared driver. `k[0]` holds f(t, y) on entry to
/// [`Pair::attempt`]; [`Pair::accept`] leaves f(t_new, y_new) in `k[0]`'s successor slot and
/// returns it.
trait Pair {
    /// The pair, for the trajectory's dense output.
    const METHOD: Method;
    /// Order of the propagated solution (initial step) and exponent 1/(q + 1) of the controller
    /// (DP45: 1/5 from its 4th-order estimate; DOP853: 1/8 as in Hairer's code).
    const ORDER: i32;
    const EXPONENT: f64;
    /// Bounds of the step-size factor.
    const FAC_MIN: f64;
    const FAC_MAX: f64;

    /// One attempted step: (y_new, error norm, evaluations).
    fn attempt<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        t_new: f64,
        opts: &OdeOptions,
    ) -> Result<(SVector<f64, D>, f64, usize)>;

    /// On acceptance: (f(t_new, y_new), dense-output coefficients, evaluations); the full-order
    /// dense output only if `full`.
    #[allow(clippy::too_many_arguments)]
    fn accept<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        t_new: f64,
        full: bool,
    ) -> Result<(SVector<f64, D>, [SVector<f64, D>; 8], usize)>;

    /// The full-order dense output of an accepted step whose [`Pair::accept`] ran without it
    /// (the step of an event): (coefficients, evaluations).
    fn complete<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
    ) -> Result<Option<([SVector<f64, D>; 8], usize)>>;

    fn interpolate<const D: usize>(c: &[SVector<f64, D>; 8], theta: f64) -> SVector<f64, D>;
}

struct Dp45Pair;

impl Pair for Dp45Pair {
    const METHOD: Method = Method::Dp45;
    const ORDER: i32 = 5;
    const EXPONENT: f64 = 0.2;
    const FAC_MIN: f64 = 0.2;
    const FAC_MAX: f64 = 10.0;

    #[inline]
    fn attempt<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        t_new: f64,
        opts: &OdeOptions,
    ) -> Result<(SVector<f64, D>, f64, usize)> {
        let y = *y;
        let k1 = k[0];
        let k2 = f(t + C2 * hs, &(y + k1 * (A21 * hs)))?;
        let k3 = f(t + C3 * hs, &(y + (k1 * A31 + k2 * A32) * hs))?;
        let k4 = f(t + C4 * hs, &(y + (k1 * A41 + k2 * A42 + k3 * A43) * hs))?;
        let k5 = f(
            t + C5 * hs,
            &(y + (k1 * A51 + k2 * A52 + k3 * A53 + k4 * A54) * hs),
        )?;
        let k6 = f(
            t + hs,
            &(y + (k1 * A61 + k2 * A62 + k3 * A63 + k4 * A64 + k5 * A65) * hs),
        )?;
        let y_new = y + (k1 * A71 + k3 * A73 + k4 * A74 + k5 * A75 + k6 * A76) * hs;
        let k7 = f(t_new, &y_new)?;
        let err_vec = (k1 * E1 + k3 * E3 + k4 * E4 + k5 * E5 + k6 * E6 + k7 * E7) * hs;
        let err = rms_err(&err_vec, &y, &y_new, opts);
        k[1] = k2;
        k[2] = k3;
        k[3] = k4;
        k[4] = k5;
        k[5] = k6;
        k[6] = k7;
        Ok((y_new, err, 6))
    }

    #[inline]
    fn accept<const D: usize>(
        _f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        _t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        _t_new: f64,
        _full: bool,
    ) -> Result<(SVector<f64, D>, [SVector<f64, D>; 8], usize)> {
        let (k1, k3, k4, k5, k6, k7) = (k[0], k[2], k[3], k[4], k[5], k[6]);
        let ydiff = y_new - y;
        let bspl = k1 * hs - ydiff;
        let z = SVector::<f64, D>::zeros();
        let cont = [
            *y,
            ydiff,
            bspl,
            ydiff - k7 * hs - bspl,
            (k1 * D1 + k3 * D3 + k4 * D4 + k5 * D5 + k6 * D6 + k7 * D7) * hs,
            z,
            z,
            z,
        ];
        Ok((k7, cont, 0))
    }

    fn complete<const D: usize>(
        _f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        _t: f64,
        _y: &SVector<f64, D>,
        _y_new: &SVector<f64, D>,
        _k: &mut Stages<D>,
        _hs: f64,
    ) -> Result<Option<([SVector<f64, D>; 8], usize)>> {
        Ok(None)
    }

    #[inline]
    fn interpolate<const D: usize>(c: &[SVector<f64, D>; 8], theta: f64) -> SVector<f64, D> {
        interpolate5(c, theta)
    }
}

struct Dop853Pair;

impl Pair for Dop853Pair {
    const METHOD: Method = Method::Dop853;
    const ORDER: i32 = 8;
    const EXPONENT: f64 = 0.125;
    const FAC_MIN: f64 = 1.0 / 3.0;
    const FAC_MAX: f64 = 6.0;

    #[inline]
    fn attempt<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        _t_new: f64,
        opts: &OdeOptions,
    ) -> Result<(SVector<f64, D>, f64, usize)> {
        let y_new = dop853::attempt(f, t, y, k, hs)?;
        let err = dop853::error_norm(k, y, &y_new, hs, opts.rtol, opts.atol);
        Ok((y_new, err, 11))
    }

    #[inline]
    fn accept<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
        t_new: f64,
        full: bool,
    ) -> Result<(SVector<f64, D>, [SVector<f64, D>; 8], usize)> {
        k[12] = f(t_new, y_new)?;
        let cont = dop853::dense(f, t, y, y_new, k, hs, full)?;
        Ok((k[12], cont, if full { 4 } else { 1 }))
    }

    fn complete<const D: usize>(
        f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
        t: f64,
        y: &SVector<f64, D>,
        y_new: &SVector<f64, D>,
        k: &mut Stages<D>,
        hs: f64,
    ) -> Result<Option<([SVector<f64, D>; 8], usize)>> {
        Ok(Some((dop853::dense(f, t, y, y_new, k, hs, true)?, 3)))
    }

    #[inline]
    fn interpolate<const D: usize>(c: &[SVector<f64, D>; 8], theta: f64) -> SVector<f64, D> {
        dop853::interpolate(c, theta)
    }
}

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
                tr.evaluations += evals;
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
fn clip_step(h: f64, t: f64, t1: f64) -> Result<(f64, bool)> {
    let remaining = (t1 - t).abs();
    let last = h >= remaining * (1.0 - 1e-12);
    let h = if last { remaining } else { h };
    if h < 1e-14 * t.abs().max(1.0) {
        return Err(Error::Ode {
            t,
            reason: format!("step size underflow (h = {h:e})"),
        });
    }
    Ok((h, last))
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
        evaluations: 0,
        rejected: 0,
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
    tr.evaluations += 1;
    let mut g_old = match event.as_mut() {
        Some(g) => g(t, &y)?,
        None => 0.0,
    };
    let mut h = if opts.h0 > 0.0 {
        opts.h0.min(span)
    } else {
        tr.evaluations += 1;
        initial_step(&mut f, t0, &y, &k[0], dir, span, P::ORDER, opts)?
    };
    let mut last_rejected = false;
    let mut attempts = 0usize;
    loop {
        attempts += 1;
        if attempts > opts.max_steps {
            return Err(Error::Ode {
                t,
                reason: format!("step cap {} reached", opts.max_steps),
            });
        }
        let (h_step, last) = clip_step(h, t, t1)?;
        h = h_step;
        let hs = dir * h;
        let t_new = if last { t1 } else { t + hs };
        let (y_new, err, evals) = P::attempt(&mut f, t, &y, &mut k, hs, t_new, opts)?;
        tr.evaluations += evals;
        if !err.is_finite() || y_new.iter().any(|v| !v.is_finite()) || err > 1.0 {
            // a non-finite step is a strong rejection; if the step is already tiny this ends
            // in underflow
            h *= if err.is_finite() && y_new.iter().all(|v| v.is_finite()) {
                reject_factor_with(err, P::EXPONENT, P::FAC_MIN)
            } else {
                0.1
            };
            tr.rejected += 1;
            last_rejected = true;
            continue;
        }
        let full = opts.dense;
        let (f_new, mut cont, evals) = P::accept(&mut f, t, &y, &y_new, &mut k, hs, t_new, full)?;
        tr.evaluations += evals;
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
        h = (h * accept_factor_with(err, last_rejected, P::EXPONENT, P::FAC_MIN, P::FAC_MAX))
            .min(opts.h_max);
        last_rejected = false;
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
mod tests {
    use super::*;
    use nalgebra::{Vector1, Vector2};

    #[test]
    fn harmonic_oscillator_full_period() {
        // y'' = -y: after 2 pi the state returns; energy is conserved to tolerance.
        let opts = OdeOptions::tol(1e-11, 1e-13);
        let tr = solve(
            |_, y: &Vector2<f64>| Vector2::new(y[1], -y[0]),
            0.0,
            Vector2::new(1.0, 0.0),
            2.0 * std::f64::consts::PI,
            &opts,
        )
        .unwrap();
        let (_, y) = tr.last();
        assert!((y - Vector2::new(1.0, 0.0)).norm() < 1e-9, "{y}");
        // dense output between steps
        for &t in &[0.3, 1.7, 4.0] {
            let yt = tr.eval(t);
            assert!((yt[0] - f64::cos(t)).abs() < 1e-8, "t={t}");
        }
    }

    #[test]
    fn backward_integration() {
        let opts = OdeOptions::tol(1e-11, 1e-14);
        let tr = solve(|_, y| -y, 1.0, Vector1::new(1.0), 0.0, &opts).unwrap();
        assert!((tr.last().1[0] - 1f64.exp()).abs() < 1e-9);
        assert!((tr.eval(0.5)[0] - 0.5f64.exp()).abs() < 1e-8);
    }

    #[test]
    fn event_locates_crossing() {
        // y' = 1: crosses 0.37 at t = 0.37.
        let (tr, te) = solve_until(
            |_, _y| Vector1::new(1.0),
            0.0,
            Vector1::new(0.0),
            10.0,
            |_, y| y[0] - 0.37,
            &OdeOptions::default(),
        )
        .unwrap();
        let te = te.unwrap();
        assert!((te - 0.37).abs() < 1e-13, "{te}");
        assert!((tr.last().1[0] - 0.37).abs() < 1e-12);
        // exponential decay crossing 0.5 at ln 2
        let (_, te) = solve_until(
            |_, y| -y,
            0.0,
            Vector1::new(1.0),
            10.0,
            |_, y| y[0] - 0.5,
            &OdeOptions::tol(1e-12, 1e-14),
        )
        .unwrap();
        assert!((te.unwrap() - 2f64.ln()).abs() < 1e-10);
    }

    #[test]
    fn no_event_runs_to_end() {
        let (tr, te) = solve_until(
            |_, _y| Vector1::new(1.0),
            0.0,
            Vector1::new(0.0),
            1.0,
            |_, y| y[0] - 5.0,
            &OdeOptions::default(),
        )
        .unwrap();
        assert!(te.is_none());
        assert!((tr.last().0 - 1.0).abs() < 1e-15);
    }

    #[test]
    fn blow_up_is_an_error_not_a_hang() {
        // y' = y^2, y(0) = 1 blows up at t = 1.
        let opts = OdeOptions {
            max_steps: 10_000,
            ..Default::default()
        };
        let r = solve(
            |_, y| y.component_mul(y),
            0.0,
            Vector1::new(1.0),
            2.0,
            &opts,
        );
        assert!(matches!(r, Err(Error::Ode { .. })), "{r:?}");
    }

    #[test]
    fn nan_input_rejected() {
        let r = solve(
            |_, y| -y,
            0.0,
            Vector1::new(f64::NAN),
            1.0,
            &OdeOptions::default(),
        );
        assert!(r.is_err());
    }
}
