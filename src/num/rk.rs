//! Dormand–Prince 5(4) for dynamic-size autonomous systems `y' = f(y)` with a fallible
//! right-hand side, stepped one accepted step at a time.
//!
//! The static-size [`super::ode`] integrator owns its loop and records a dense trajectory; the
//! gradient flow of a network (`d theta / d tau = -grad L`, thousands of parameters, every
//! evaluation a forward + BPTT pass that can fail) needs the opposite: a state held in
//! caller-owned slices, a right-hand side `FnMut(&[f64], &mut [f64]) -> Result<()>`, and the
//! caller's own stopping rule between accepted steps. [`DynDopri`] is that stepper. It shares the
//! tableau and the step-size controller with [`super::ode`] (same error norm
//! `|e_i| <= atol + rtol max(|y_i|, |y_new_i|)` in RMS, same safety factors), and allocates
//! nothing after [`DynDopri::new`]: the seven stage vectors and two work vectors are reused.
//!
//! FSAL contract: the last call of `f` in an accepted step is at the new state (stage 7), so a
//! right-hand side that computes a by-product (the loss) leaves the by-product of the accepted
//! point behind when [`DynDopri::step`] returns.
//!
//! Failure is a value: a step-size underflow or the cap on attempted steps is an
//! [`Error::Ode`]; an error of `f` is passed on; a non-finite stage is a rejection (the step
//! shrinks 10x, ending in an underflow error if it persists).
//!
//! ```
//! use modeflow::num::rk::solve_dyn;
//! use modeflow::num::ode::OdeOptions;
//! // y' = -y, y(0) = 1  ->  y(1) = e^-1
//! let opts = OdeOptions::tol(1e-10, 1e-12);
//! let s = solve_dyn(|y, dy| { dy[0] = -y[0]; Ok(()) }, &[1.0], 1.0, &opts).unwrap();
//! assert!((s.y[0] - (-1.0f64).exp()).abs() < 1e-9);
//! ```

use super::ode::{accept_factor, clip_step, reject_factor, OdeOptions, StepCounts};
use super::ode::{
    A21, A31, A32, A41, A42, A43, A51, A52, A53, A54, A61, A62, A63, A64, A65, A71, A73, A74, A75,
    A76, D1, D3, D4, D5, D6, D7, E1, E3, E4, E5, E6, E7,
};
use crate::{Error, Result};

/// The adaptive stepper and its buffers.
#[derive(Debug, Clone)]
pub struct DynDopri {
    dim: usize,
    /// Stages k1..k7; k[0] holds f(y) at the current accepted state.
    k: [Vec<f64>; 7],
    stage: Vec<f64>,
    y_new: Vec<f64>,
    /// The state at the start of the last accepted step (for the dense output).
    y_prev: Vec<f64>,
    /// Current time.
    t: f64,
    /// Next trial step.
    h: f64,
    /// Size of the last accepted step.
    h_last: f64,
    started: bool,
    /// Evaluations, accepted and rejected steps since the last start.
    pub counts: StepCounts,
}

/// RMS of `e_i / (atol + rtol max(|a_i|, |b_i|))` (shared with [`super::rkc`]).
pub(crate) fn rms_scaled(e: &[f64], a: &[f64], b: &[f64], opts: &OdeOptions) -> f64 {
    let mut s = 0.0;
    for ((ei, ai), bi) in e.iter().zip(a).zip(b) {
        let r = ei / (opts.atol + opts.rtol * ai.abs().max(bi.abs()));
        s += r * r;
    }
    (s / e.len().max(1) as f64).sqrt()
}

/// The input checks of a dynamic-size stepper's `start` (shared by [`DynDopri`] and
/// [`super::rkc::DynRkc`]): the state's length, a finite start, valid tolerances.
pub(crate) fn check_start(
    stepper: &str,
    dim: usize,
    t0: f64,
    y0: &[f64],
    opts: &OdeOptions,
) -> Result<()> {
    if y0.len() != dim {
        return Err(Error::Shape {
            context: format!("{stepper}::start"),
            message: format!(
                "state of length {} for a stepper of dimension {}",
                y0.len(),
                dim
            ),
        });
    }
    if !t0.is_finite() || y0.iter().any(|v| !v.is_finite()) {
        return Err(Error::Ode {
            t: t0,
            reason: "non-finite initial time or state".into(),
        });
    }
    if !(opts.rtol > 0.0 && opts.rtol.is_finite() && opts.atol >= 0.0 && opts.atol.is_finite()) {
        return Err(Error::Ode {
            t: t0,
            reason: format!(
                "tolerances must satisfy 0 < rtol < inf, 0 <= atol < inf (got {}, {})",
                opts.rtol, opts.atol
            ),
        });
    }
    Ok(())
}

/// The checks of a dynamic-size stepper's `step`: started, and a state of its dimension.
pub(crate) fn check_step(
    stepper: &str,
    started: bool,
    t: f64,
    dim: usize,
    y: &[f64],
    t_end: f64,
) -> Result<()> {
    if !started {
        return Err(Error::Ode {
            t,
            reason: format!("{stepper}::step before start"),
        });
    }
    if y.len() != dim {
        return Err(Error::Shape {
            context: format!("{stepper}::step"),
            message: format!("state of length {} for dimension {}", y.len(), dim),
        });
    }
    // the steppers integrate forward only: an end behind the current time (or NaN) is refused
    // instead of being reached by a step of the wrong sign
    if t_end.is_nan() || t_end < t {
        return Err(Error::Ode {
            t,
            reason: format!("{stepper}::step toward t_end = {t_end:e}, behind the current time"),
        });
    }
    Ok(())
}

/// The check of a dynamic-size stepper's `interpolate`: an accepted step to interpolate on, and
/// an output buffer of the stepper's dimension.
pub(crate) fn check_interpolate(
    stepper: &str,
    accepted: usize,
    dim: usize,
    out_len: usize,
) -> Result<()> {
    if accepted == 0 || out_len != dim {
        return Err(Error::Shape {
            context: format!("{stepper}::interpolate"),
            message: format!(
                "needs an accepted step and a buffer of length {dim} (got {accepted} steps, length {out_len})"
            ),
        });
    }
    Ok(())
}

/// The first step of a stepper: `opts.h0` if positive (at most `opts.h_max`), else the
/// stepper's own choice `choose()`.
pub(crate) fn first_step(opts: &OdeOptions, choose: impl FnOnce() -> Result<f64>) -> Result<f64> {
    if opts.h0 > 0.0 {
        Ok(opts.h0.min(opts.h_max))
    } else {
        choose()
    }
}

/// The derivative a stepper starts from (shared by [`DynDopri`] and `num::rkc::DynRkc`):
/// f(y0) into `f0`, one evaluation counted; a non-finite one is an [`Error::Ode`] at `t0`.
pub(crate) fn initial_derivative<F>(
    f: &mut F,
    t0: f64,
    y0: &[f64],
    f0: &mut [f64],
    counts: &mut StepCounts,
) -> Result<()>
where
    F: FnMut(&[f64], &mut [f64]) -> Result<()>,
{
    f(y0, f0)?;
    counts.evaluations += 1;
    if f0.iter().any(|v| !v.is_finite()) {
        return Err(Error::Ode {
            t: t0,
            reason: "non-finite derivative at the initial state".into(),
        });
    }
    Ok(())
}

impl DynDopri {
    /// A stepper for systems of dimension `dim` (all buffers allocated here, once).
    pub fn new(dim: usize) -> DynDopri {
        DynDopri {
            dim,
            k: std::array::from_fn(|_| vec![0.0; dim]),
            stage: vec![0.0; dim],
            y_new: vec![0.0; dim],
            y_prev: vec![0.0; dim],
            t: 0.0,
            h: 0.0,
            h_last: 0.0,
            started: false,
            counts: StepCounts::default(),
        }
    }

    /// Current time.
    pub fn t(&self) -> f64 {
        self.t
    }

    /// The size of the last accepted step (0 before the first).
    pub fn last_step(&self) -> f64 {
        self.h_last
    }

    /// f at the current accepted state.
    pub fn derivative(&self) -> &[f64] {
        &self.k[0]
    }

    /// Start at `(t0, y0)`: check the input, evaluate f(y0) and choose the first step
    /// (`opts.h0` if positive, else Hairer's `hinit`, one more evaluation).
    pub fn start<F>(&mut self, f: &mut F, t0: f64, y0: &[f64], opts: &OdeOptions) -> Result<()>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        check_start("DynDopri", self.dim, t0, y0, opts)?;
        self.t = t0;
        self.counts = StepCounts::default();
        self.h_last = 0.0;
        initial_derivative(f, t0, y0, &mut self.k[0], &mut self.counts)?;
        self.h = first_step(opts, || self.initial_step(f, y0, opts))?;
        self.started = true;
        Ok(())
    }

    /// Hairer's initial step-size heuristic (as in [`super::ode`]), on the work buffers.
    fn initial_step<F>(&mut self, f: &mut F, y0: &[f64], opts: &OdeOptions) -> Result<f64>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        self.stage.iter_mut().for_each(|v| *v = 0.0);
        let d0 = rms_scaled(y0, &self.stage, &self.stage, opts);
        let d1 = rms_scaled(&self.k[0], y0, y0, opts);
        let h0 = if d0 < 1e-5 || d1 < 1e-5 {
            1e-6
        } else {
            0.01 * d0 / d1
        };
        let h0 = h0.min(opts.h_max);
        for ((s, y), k) in self.stage.iter_mut().zip(y0).zip(&self.k[0]) {
            *s = y + h0 * k;
        }
        f(&self.stage, &mut self.k[1])?;
        self.counts.evaluations += 1;
        for (d, (a, b)) in self.y_new.iter_mut().zip(self.k[1].iter().zip(&self.k[0])) {
            *d = a - b;
        }
        let d2 = rms_scaled(&self.y_new, y0, y0, opts) / h0;
        let h1 = if !d2.is_finite() {
            h0
        } else if d1.max(d2) <= 1e-15 {
            (h0 * 1e-3).max(1e-6)
        } else {
            (0.01 / d1.max(d2)).powf(0.2)
        };
        Ok((100.0 * h0).min(h1).min(opts.h_max))
    }

    /// Take one accepted step from `y` (updated in place), not beyond `t_end` (pass
    /// `f64::INFINITY` for no bound; a step that reaches `t_end` lands on it exactly).
    /// Returns the new time. Rejected attempts are retried with a smaller step inside.
    pub fn step<F>(
        &mut self,
        f: &mut F,
        y: &mut [f64],
        t_end: f64,
        opts: &OdeOptions,
    ) -> Result<f64>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        check_step("DynDopri", self.started, self.t, self.dim, y, t_end)?;
        loop {
            self.counts.attempt(opts.max_steps, self.t)?;
            let (h, last) = clip_step(self.h, self.t, t_end)?;
            let ok = self.attempt(f, y, h)?;
            let err = if ok {
                self.error_norm(y, h, opts)
            } else {
                f64::NAN
            };
            if !err.is_finite() {
                // a non-finite stage: a strong rejection (ends in underflow if it persists)
                self.h = h * 0.1;
                self.counts.reject();
                continue;
            }
            if err <= 1.0 {
                self.y_prev.copy_from_slice(y);
                y.copy_from_slice(&self.y_new);
                self.t = if last { t_end } else { self.t + h };
                self.k.swap(0, 6); // FSAL: k7 = f(y_new) is the next k1
                self.h_last = h;
                self.h = (h * accept_factor(err, self.counts.last_rejected())).min(opts.h_max);
                self.counts.accept();
                return Ok(self.t);
            }
            self.counts.reject();
            self.h = h * reject_factor(err);
        }
    }

    /// The dense output on the last accepted step: `out = y(t_prev + theta h)` for theta in
    /// [0, 1] (theta = 1 is the current state), by the 4th-order continuous extension of the
    /// pair (Hairer's `contd5`), accurate to the integration tolerance. Allocates nothing.
    pub fn interpolate(&self, theta: f64, out: &mut [f64]) -> Result<()> {
        check_interpolate("DynDopri", self.counts.accepted, self.dim, out.len())?;
        let h = self.h_last;
        let th1 = 1.0 - theta;
        // after the FSAL swap k[0] holds k7 = f(y_new) and k[6] the step's k1
        let k = &self.k;
        for (i, o) in out.iter_mut().enumerate() {
            let (y0, y1) = (self.y_prev[i], self.y_new[i]);
            let (k1, k7) = (k[6][i], k[0][i]);
            let ydiff = y1 - y0;
            let bspl = h * k1 - ydiff;
            let c3 = ydiff - h * k7 - bspl;
            let c4 =
                h * (D1 * k1 + D3 * k[2][i] + D4 * k[3][i] + D5 * k[4][i] + D6 * k[5][i] + D7 * k7);
            *o = y0 + (ydiff + (bspl + (c3 + c4 * th1) * theta) * th1) * theta;
        }
        Ok(())
    }

    /// One attempted step of size h from y: stages k2..k7 and y_new. False if a stage (or
    /// y_new) is non-finite.
    fn attempt<F>(&mut self, f: &mut F, y: &[f64], h: f64) -> Result<bool>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        // rows of the tableau: (coefficients of k1..k_{s-1}) for stages 2..7
        const ROWS: [&[f64]; 6] = [
            &[A21],
            &[A31, A32],
            &[A41, A42, A43],
            &[A51, A52, A53, A54],
            &[A61, A62, A63, A64, A65],
            &[A71, 0.0, A73, A74, A75, A76],
        ];
        for (s, row) in ROWS.iter().enumerate() {
            let (done, rest) = self.k.split_at_mut(s + 1);
            let target: &mut [f64] = if s == 5 {
                &mut self.y_new
            } else {
                &mut self.stage
            };
            for (i, t) in target.iter_mut().enumerate() {
                let mut acc = 0.0;
                for (a, kj) in row.iter().zip(done.iter()) {
                    acc += a * kj[i];
                }
                *t = y[i] + h * acc;
            }
            if target.iter().any(|v| !v.is_finite()) {
                return Ok(false);
            }
            f(target, &mut rest[0])?;
            self.counts.evaluations += 1;
            if rest[0].iter().any(|v| !v.is_finite()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Scaled RMS of the embedded error estimate of the last attempt (uses `stage` as buffer).
    fn error_norm(&mut self, y: &[f64], h: f64, opts: &OdeOptions) -> f64 {
        let k = &self.k;
        for (i, e) in self.stage.iter_mut().enumerate() {
            *e = h
                * (E1 * k[0][i]
                    + E3 * k[2][i]
                    + E4 * k[3][i]
                    + E5 * k[4][i]
                    + E6 * k[5][i]
                    + E7 * k[6][i]);
        }
        rms_scaled(&self.stage, y, &self.y_new, opts)
    }
}

/// The end state of [`solve_dyn`] and what it cost.
#[derive(Debug, Clone)]
pub struct DynSolution {
    pub t: f64,
    pub y: Vec<f64>,
    /// Evaluations, accepted and rejected steps (the stepper's [`StepCounts`]).
    pub counts: StepCounts,
}

/// Integrate the autonomous system `y' = f(y)` from `y(0) = y0` to time `t1 > 0`.
pub fn solve_dyn<F>(mut f: F, y0: &[f64], t1: f64, opts: &OdeOptions) -> Result<DynSolution>
where
    F: FnMut(&[f64], &mut [f64]) -> Result<()>,
{
    if !(t1 >= 0.0 && t1.is_finite()) {
        return Err(Error::Ode {
            t: 0.0,
            reason: format!("end time must be finite and >= 0 (got {t1})"),
        });
    }
    let mut st = DynDopri::new(y0.len());
    let mut y = y0.to_vec();
    st.start(&mut f, 0.0, &y, opts)?;
    while st.t() < t1 {
        st.step(&mut f, &mut y, t1, opts)?;
    }
    Ok(DynSolution {
        t: st.t(),
        y,
        counts: st.counts,
    })
}

#[cfg(test)]
pub(in crate::num) mod tests;
