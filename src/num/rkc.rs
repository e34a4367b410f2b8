//! Runge–Kutta–Chebyshev, second order (RKC2; Sommeijer, Shampine & Verwer, "RKC: an explicit
//! solver for parabolic PDEs", J. Comput. Appl. Math. 88 (1998) 315–326), for dynamic-size
//! autonomous systems `y' = f(y)` whose Jacobian has a (nearly) real, negative spectrum, stepped
//! one accepted step at a time with the interface of [`super::rk::DynDopri`].
//!
//! The case it is made for is the gradient flow d theta / d tau = -grad L: its Jacobian is
//! -Hessian, symmetric with a real spectrum, negative near a minimum. An explicit pair such as
//! DP45 is stable only for h rho(J) <~ 3.3 and creeps along at h ~ 3 / rho through the long,
//! smooth stretches where the loss barely moves; RKC takes s stages whose stability interval
//! grows as beta(s) ~ 0.65 s^2 (damping eps = 2/13), so a step of size h costs
//! s ~ sqrt(1.54 h rho) evaluations instead of h rho / 3.3.
//!
//! One step (Y_0 = y_n, F_0 = f(y_n), T_j Chebyshev polynomials of the first kind,
//! w0 = 1 + eps / s^2, w1 = T_s'(w0) / T_s''(w0), b_j = T_j''(w0) / T_j'(w0)^2 (j >= 2),
//! b_0 = b_1 = b_2):
//!
//! ```text
//! Y_1 = Y_0 + mu~_1 h F_0,                                   mu~_1 = b_1 w1
//! Y_j = (1 - mu_j - nu_j) Y_0 + mu_j Y_{j-1} + nu_j Y_{j-2}
//!       + mu~_j h f(Y_{j-1}) + gamma~_j h F_0,                j = 2..s
//! mu_j = 2 w0 b_j / b_{j-1},  nu_j = -b_j / b_{j-2},  mu~_j = 2 w1 b_j / b_{j-1},
//! gamma~_j = -(1 - b_{j-1} T_{j-1}(w0)) mu~_j,                y_{n+1} = Y_s
//! ```
//!
//! Local error estimate (of the published code `rkc.f`): est = (4/5)(y_n - y_{n+1}) +
//! (2/5) h (F_n + F_{n+1}), in the RMS norm of [`super::rk`] (|e_i| <= atol + rtol max(|y_n,i|,
//! |y_{n+1},i|)); the step-size controller is rkc.f's (factor 0.8 err^(-1/3), predictive after
//! the first step, limited to [0.1, 10]). F_{n+1} = f(y_{n+1}) is evaluated last in every
//! attempt and is the next step's F_0 (FSAL: the right-hand side's by-product -- the loss of a
//! network -- belongs to the accepted point when [`DynRkc::step`] returns).
//!
//! The stage count of a step of size h is s = 1 + floor(sqrt(1 + 1.54 h rho)) (at least 2,
//! at most [`DynRkc::max_stages`], which then caps h) from an estimate rho of the spectral
//! radius of the Jacobian: a nonlinear power iteration on f (rkc.f's `rkcrho`: difference
//! quotients |f(y + v) - f(y)| / |v| with |v| = sqrt(u) |y|, at most [`RHO_ITERATIONS`]
//! evaluations, converged when two estimates agree to 1 %, then x 1.2), started from the
//! previous dominant direction, repeated every [`DynRkc::rho_every`] accepted steps and after
//! every rejection. For a symmetric Jacobian |J v| / |v| <= rho, so an unconverged iteration
//! errs low; a step that is then unstable shows in the error estimate, is rejected, and the
//! estimate is redone.
//!
//! Failure is a value: step-size underflow or the cap on attempted steps is an
//! [`Error::Ode`] (as in [`super::rk`]); an error of `f` is passed on; a non-finite stage is a
//! rejection (the step shrinks 10x); a non-finite difference quotient of the spectral-radius
//! estimate is an [`Error::Ode`]. All buffers are allocated in [`DynRkc::new`].
//!
//! ```
//! use modeflow::num::rkc::DynRkc;
//! use modeflow::num::ode::OdeOptions;
//! // a slow and a fast mode: y' = diag(-1, -1e4) y
//! let mut f = |y: &[f64], dy: &mut [f64]| { dy[0] = -y[0]; dy[1] = -1e4 * y[1]; Ok(()) };
//! let opts = OdeOptions::tol(1e-6, 1e-9);
//! let mut st = DynRkc::new(2);
//! let mut y = [1.0, 1.0];
//! st.start(&mut f, 0.0, &y, &opts).unwrap();
//! while st.t() < 1.0 {
//!     st.step(&mut f, &mut y, 1.0, &opts).unwrap();
//! }
//! assert!((y[0] - (-1.0f64).exp()).abs() < 1e-5 && y[1].abs() < 1e-6);
//! // an explicit 5(4) pair is held at h ~ 3.3e-4 by stability (~3,000 steps of 6 evaluations);
//! // RKC takes 692 steps of a few stages here (its second-order error at atol 1e-9 sets h)
//! assert!(st.counts.accepted < 1000, "{} steps", st.counts.accepted);
//! ```

use super::ode::{clip_step, OdeOptions, StepCounts};
use super::rk::rms_scaled;
use super::rk::{check_interpolate, check_start, check_step, first_step, initial_derivative};
use crate::{Error, Result};

/// Damping of the Chebyshev polynomial (w0 = 1 + eps / s^2; rkc.f's 2/13).
const DAMPING: f64 = 2.0 / 13.0;

/// Cap on the evaluations of one spectral-radius estimate (nonlinear power iteration).
pub const RHO_ITERATIONS: usize = 20;

/// Safety factor on the spectral-radius estimate (rkc.f).
const RHO_SAFETY: f64 = 1.2;

/// The adaptive RKC2 stepper and its buffers.
#[derive(Debug, Clone)]
pub struct DynRkc {
    dim: usize,
    /// f at the current accepted state (F_0 of the next step).
    f0: Vec<f64>,
    /// f at the new point of the last attempt (F_{n+1}), swapped into `f0` on acceptance.
    f1: Vec<f64>,
    /// Stage buffers Y_{j-2}, Y_{j-1}, Y_j and f(Y_{j-1}).
    yjm2: Vec<f64>,
    yjm1: Vec<f64>,
    yj: Vec<f64>,
    fj: Vec<f64>,
    /// The state at the start of the last accepted step, and f there (dense output).
    y_prev: Vec<f64>,
    f_prev: Vec<f64>,
    /// The new state of the last accepted step (dense output).
    y_last: Vec<f64>,
    /// Dominant direction of the last spectral-radius estimate (start of the next).
    eigvec: Vec<f64>,
    t: f64,
    h: f64,
    h_last: f64,
    /// Error norm of the last accepted step (predictive controller).
    err_last: f64,
    started: bool,
    /// Spectral-radius estimate (with the safety factor) and the accepted step it was made at.
    rho: f64,
    rho_at: Option<usize>,
    rho_stale: bool,
    /// Re-estimate the spectral radius every `rho_every` accepted steps (default 25, rkc.f).
    pub rho_every: usize,
    /// Largest stage count (default: rkc.f's max(2, sqrt(rtol / (10 u))), set in `start`
    /// unless given); a step that would need more is shortened.
    pub max_stages: usize,
    /// Evaluations (stages, error estimates, spectral radius), accepted and rejected steps
    /// since the last start.
    pub counts: StepCounts,
    /// Of the evaluations, the spectral-radius estimates'.
    pub rho_evaluations: usize,
    /// Stage count of the last attempted step, and the largest so far.
    pub stages: usize,
    pub most_stages: usize,
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The stage count for a step `h` at spectral radius `rho` (rkc.f): s = 1 + floor(sqrt(1 +
/// 1.54 h rho)), at least 2. The stability interval of RKC2 with eps = 2/13 is
/// beta(s) ~ 0.653 (s^2 - 1) >= h rho for this s.
pub fn stages_for(h: f64, rho: f64) -> usize {
    let x = (1.0 + 1.54 * h * rho).sqrt();
    if x.is_finite() {
        (1 + x as usize).max(2)
    } else {
        usize::MAX
    }
}

/// The largest step s stages keep stable at spectral radius `rho` (the inverse of
/// [`stages_for`]): h = (s^2 - 1) / (1.54 rho).
fn step_for(s: usize, rho: f64) -> f64 {
    let s = s as f64;
    (s * s - 1.0) / (1.54 * rho)
}

impl DynRkc {
    /// A stepper for systems of dimension `dim` (all buffers allocated here, once).
    pub fn new(dim: usize) -> DynRkc {
        let v = || vec![0.0; dim];
        DynRkc {
            dim,
            f0: v(),
            f1: v(),
            yjm2: v(),
            yjm1: v(),
            yj: v(),
            fj: v(),
            y_prev: v(),
            f_prev: v(),
            y_last: v(),
            eigvec: v(),
            t: 0.0,
            h: 0.0,
            h_last: 0.0,
            err_last: 1.0,
            started: false,
            rho: 0.0,
            rho_at: None,
            rho_stale: true,
            rho_every: 25,
            max_stages: 0,
            counts: StepCounts::default(),
            rho_evaluations: 0,
            stages: 0,
            most_stages: 0,
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
        &self.f0
    }

    /// The current spectral-radius estimate (with its safety factor; 0 before the first).
    pub fn spectral_radius(&self) -> f64 {
        self.rho
    }

    /// Start at `(t0, y0)`: check the input, evaluate f(y0), estimate the spectral radius and
    /// choose the first step (`opts.h0` if positive, else rkc.f's: min(1 / rho, h_max), cut
    /// so that one explicit Euler step's change of f is 1 % of the tolerance scale).
    pub fn start<F>(&mut self, f: &mut F, t0: f64, y0: &[f64], opts: &OdeOptions) -> Result<()>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        check_start("DynRkc", self.dim, t0, y0, opts)?;
        self.t = t0;
        self.counts = StepCounts::default();
        self.rho_evaluations = 0;
        self.h_last = 0.0;
        self.err_last = 1.0;
        self.stages = 0;
        self.most_stages = 0;
        self.rho_at = None;
        self.rho_stale = true;
        if self.max_stages < 2 {
            self.max_stages = ((opts.rtol / (10.0 * f64::EPSILON)).sqrt() as usize).max(2);
        }
        self.eigvec.iter_mut().for_each(|v| *v = 0.0);
        initial_derivative(f, t0, y0, &mut self.f0, &mut self.counts)?;
        self.estimate_rho(f, y0)?;
        self.h = first_step(opts, || self.initial_step(f, y0, opts))?;
        self.started = true;
        Ok(())
    }

    /// rkc.f's first step: h = min(h_max, 1 / rho), then cut to 0.01 / |f(y + h F_0) - F_0|
    /// in the scaled norm (one evaluation).
    fn initial_step<F>(&mut self, f: &mut F, y0: &[f64], opts: &OdeOptions) -> Result<f64>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        let mut h = opts.h_max;
        if self.rho * h > 1.0 {
            h = 1.0 / self.rho;
        }
        if !h.is_finite() {
            h = 1.0;
        }
        for ((s, y), k) in self.yj.iter_mut().zip(y0).zip(&self.f0) {
            *s = y + h * k;
        }
        f(&self.yj, &mut self.fj)?;
        self.counts.evaluations += 1;
        for (d, (a, b)) in self.yjm1.iter_mut().zip(self.fj.iter().zip(&self.f0)) {
            *d = a - b;
        }
        let est = rms_scaled(&self.yjm1, y0, y0, opts);
        if est.is_finite() && h * est > 0.01 {
            h = 0.01 / est;
        }
        Ok(h.max(1e-14 * self.t.abs().max(1.0)))
    }

    /// Nonlinear power iteration for the spectral radius of the Jacobian at `y` (F_0 = f(y) in
    /// `f0`): difference quotients |f(y + v) - f(y)| / |v|, |v| = sqrt(u) |y| (u the unit
    /// roundoff), v from the last dominant direction (F_0 the first time). Converged when two
    /// successive quotients agree to 1 %; after [`RHO_ITERATIONS`] evaluations the largest
    /// quotient is taken. Sets `rho` (x 1.2) and the dominant direction. Uses `yj`, `fj`.
    fn estimate_rho<F>(&mut self, f: &mut F, y: &[f64]) -> Result<()>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        let sqrtu = f64::EPSILON.sqrt();
        let ynrm = norm2(y);
        if norm2(&self.eigvec) == 0.0 {
            self.eigvec.copy_from_slice(&self.f0);
        }
        let vnrm = norm2(&self.eigvec);
        let dynrm = if ynrm > 0.0 { ynrm * sqrtu } else { sqrtu };
        if vnrm > 0.0 {
            self.yj.copy_from_slice(y);
            let c = dynrm / vnrm;
            for (v, e) in self.yj.iter_mut().zip(&self.eigvec) {
                *v += c * e;
            }
        } else {
            // f(y) = 0 and no direction known: perturb every component alike
            let c = dynrm / (self.dim.max(1) as f64).sqrt();
            for (v, yi) in self.yj.iter_mut().zip(y) {
                *v = yi + c;
            }
        }
        let (mut rho, mut best) = (0.0f64, 0.0f64);
        let mut converged = false;
        for iter in 0..RHO_ITERATIONS {
            f(&self.yj, &mut self.fj)?;
            self.counts.evaluations += 1;
            self.rho_evaluations += 1;
            // fj <- f(y + v) - f(y)
            for (d, b) in self.fj.iter_mut().zip(&self.f0) {
                *d -= b;
            }
            let dfnrm = norm2(&self.fj);
            if !dfnrm.is_finite() {
                return Err(Error::Ode {
                    t: self.t,
                    reason: "non-finite right-hand side in the spectral-radius estimate".into(),
                });
            }
            let prev = rho;
            rho = dfnrm / dynrm;
            best = best.max(rho);
            if iter >= 1 && (rho - prev).abs() <= 0.01 * rho.max(f64::MIN_POSITIVE) {
                converged = true;
                break;
            }
            if dfnrm > 0.0 {
                let c = dynrm / dfnrm;
                for ((v, yi), d) in self.yj.iter_mut().zip(y).zip(&self.fj) {
                    *v = yi + c * d;
                }
            } else {
                // no change along v (a null direction): try the next coordinate direction
                let i = iter % self.dim.max(1);
                for (v, yi) in self.yj.iter_mut().zip(y) {
                    *v = *yi;
                }
                if let Some(v) = self.yj.get_mut(i) {
                    *v += dynrm;
                }
            }
        }
        for ((e, v), yi) in self.eigvec.iter_mut().zip(&self.yj).zip(y) {
            *e = v - yi;
        }
        self.rho = RHO_SAFETY * if converged { rho } else { best };
        self.rho_at = Some(self.counts.accepted);
        self.rho_stale = false;
        Ok(())
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
        check_step("DynRkc", self.started, self.t, self.dim, y, t_end)?;
        loop {
            self.counts.attempt(opts.max_steps, self.t)?;
            let due = self
                .rho_at
                .is_none_or(|at| self.counts.accepted >= at + self.rho_every.max(1));
            if self.rho_stale || due {
                self.estimate_rho(f, y)?;
            }
            let mut h = self.h.min(opts.h_max);
            let mut s = stages_for(h, self.rho);
            if s > self.max_stages {
                s = self.max_stages;
                h = step_for(s, self.rho);
            }
            let (h, last) = clip_step(h, self.t, t_end)?;
            if last {
                s = stages_for(h, self.rho).min(self.max_stages);
            }
            self.stages = s;
            self.most_stages = self.most_stages.max(s);
            let ok = self.attempt(f, y, h, s)?;
            let err = if ok {
                self.error_norm(y, h, opts)
            } else {
                f64::NAN
            };
            if !err.is_finite() {
                // a non-finite stage: a strong rejection (ends in underflow if it persists)
                self.h = h * 0.1;
                self.counts.reject();
                self.rho_stale = true;
                continue;
            }
            if err <= 1.0 {
                self.y_prev.copy_from_slice(y);
                y.copy_from_slice(&self.yjm1);
                self.y_last.copy_from_slice(&self.yjm1);
                std::mem::swap(&mut self.f_prev, &mut self.f0);
                std::mem::swap(&mut self.f0, &mut self.f1);
                self.t = if last { t_end } else { self.t + h };
                let fac = self.accept_factor(err, h);
                self.h_last = h;
                self.counts.accept();
                self.h = h * fac;
                self.err_last = err;
                return Ok(self.t);
            }
            self.counts.reject();
            self.h = h * (0.8 / err.cbrt()).max(0.1);
            self.rho_stale = true;
        }
    }

    /// rkc.f's step-size factor after an accepted step of size `h` with error `err` (<= 1):
    /// 0.8 err^(-1/3) on the first step, the predictive 0.8 (h / h_old) err_old^(1/3) /
    /// err^(2/3) after (h_old, err_old of the previous accepted step), limited to [0.1, 10];
    /// no growth right after a rejection.
    fn accept_factor(&self, err: f64, h: f64) -> f64 {
        let mut fac: f64 = 10.0;
        let err = err.max(1e-10);
        if self.counts.accepted == 0 || self.h_last == 0.0 {
            let t2 = err.cbrt();
            if 0.8 < fac * t2 {
                fac = 0.8 / t2;
            }
        } else {
            let t1 = 0.8 * h * self.err_last.max(1e-10).cbrt();
            let t2 = self.h_last * err.powf(2.0 / 3.0);
            if t1 < fac * t2 {
                fac = t1 / t2;
            }
        }
        if self.counts.last_rejected() {
            fac = fac.min(1.0);
        }
        fac.max(0.1)
    }

    /// One attempted step of size h with s stages from y: Y_s into `yjm1`, f(Y_s) into `f1`.
    /// False if a stage is non-finite.
    fn attempt<F>(&mut self, f: &mut F, y: &[f64], h: f64, s: usize) -> Result<bool>
    where
        F: FnMut(&[f64], &mut [f64]) -> Result<()>,
    {
        let w0 = 1.0 + DAMPING / (s * s) as f64;
        // T_s'(w0) and T_s''(w0) by the three-term recurrences, for w1 = T_s' / T_s''
        let (mut z, mut zm) = (w0, 1.0);
        let (mut dz, mut dzm) = (1.0, 0.0);
        let (mut d2z, mut d2zm) = (0.0, 0.0);
        for _ in 2..=s {
            let zn = 2.0 * w0 * z - zm;
            let dzn = 2.0 * w0 * dz - dzm + 2.0 * z;
            let d2zn = 2.0 * w0 * d2z - d2zm + 4.0 * dz;
            (zm, z, dzm, dz, d2zm, d2z) = (z, zn, dz, dzn, d2z, d2zn);
        }
        let w1 = dz / d2z;
        // stage 1
        let mut bjm1 = 1.0 / (2.0 * w0).powi(2);
        let mut bjm2 = bjm1;
        let mus = w1 * bjm1;
        for ((a, b), (yi, fi)) in self
            .yjm2
            .iter_mut()
            .zip(self.yjm1.iter_mut())
            .zip(y.iter().zip(&self.f0))
        {
            *a = *yi;
            *b = yi + h * mus * fi;
        }
        let (mut zjm1, mut zjm2) = (w0, 1.0);
        let (mut dzjm1, mut dzjm2) = (1.0, 0.0);
        let (mut d2zjm1, mut d2zjm2) = (0.0, 0.0);
        for _ in 2..=s {
            let zj = 2.0 * w0 * zjm1 - zjm2;
            let dzj = 2.0 * w0 * dzjm1 - dzjm2 + 2.0 * zjm1;
            let d2zj = 2.0 * w0 * d2zjm1 - d2zjm2 + 4.0 * dzjm1;
            let bj = d2zj / (dzj * dzj);
            let ajm1 = 1.0 - zjm1 * bjm1;
            let mu = 2.0 * w0 * bj / bjm1;
            let nu = -bj / bjm2;
            let mus = mu * w1 / w0;
            if self.yjm1.iter().any(|v| !v.is_finite()) {
                return Ok(false);
            }
            f(&self.yjm1, &mut self.fj)?;
            self.counts.evaluations += 1;
            let c0 = 1.0 - mu - nu;
            let prev = self.yjm1.iter().zip(&self.yjm2);
            let here = y.iter().zip(&self.fj).zip(&self.f0);
            for (yj, ((a, b), ((yi, fj), f0))) in self.yj.iter_mut().zip(prev.zip(here)) {
                *yj = mu * a + nu * b + c0 * yi + h * mus * (fj - ajm1 * f0);
            }
            // shift: Y_{j-2} <- Y_{j-1}, Y_{j-1} <- Y_j
            std::mem::swap(&mut self.yjm2, &mut self.yjm1);
            std::mem::swap(&mut self.yjm1, &mut self.yj);
            (bjm2, bjm1) = (bjm1, bj);
            (zjm2, zjm1) = (zjm1, zj);
            (dzjm2, dzjm1) = (dzjm1, dzj);
            (d2zjm2, d2zjm1) = (d2zjm1, d2zj);
        }
        if self.yjm1.iter().any(|v| !v.is_finite()) {
            return Ok(false);
        }
        f(&self.yjm1, &mut self.f1)?;
        self.counts.evaluations += 1;
        Ok(self.f1.iter().all(|v| v.is_finite()))
    }

    /// Scaled RMS of rkc.f's error estimate (4/5)(y_n - y_{n+1}) + (2/5) h (F_n + F_{n+1})
    /// (uses `yj` as buffer).
    fn error_norm(&mut self, y: &[f64], h: f64, opts: &OdeOptions) -> f64 {
        let ends = y.iter().zip(&self.yjm1);
        let slopes = self.f0.iter().zip(&self.f1);
        for (e, ((y0, y1), (f0, f1))) in self.yj.iter_mut().zip(ends.zip(slopes)) {
            *e = 0.8 * (y0 - y1) + 0.4 * h * (f0 + f1);
        }
        rms_scaled(&self.yj, y, &self.yjm1, opts)
    }

    /// The dense output on the last accepted step: `out = y(t_prev + theta h)` for theta in
    /// [0, 1] by the cubic Hermite interpolant of the step's end points and derivatives (third
    /// order, above the method's second; theta = 1 is the current state). Allocates nothing.
    pub fn interpolate(&self, theta: f64, out: &mut [f64]) -> Result<()> {
        check_interpolate("DynRkc", self.counts.accepted, self.dim, out.len())?;
        let h = self.h_last;
        let (t2, t3) = (theta * theta, theta * theta * theta);
        let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
        let h10 = t3 - 2.0 * t2 + theta;
        let h01 = -2.0 * t3 + 3.0 * t2;
        let h11 = t3 - t2;
        for (i, o) in out.iter_mut().enumerate() {
            *o = h00 * self.y_prev[i]
                + h10 * h * self.f_prev[i]
                + h01 * self.y_last[i]
                + h11 * h * self.f0[i];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
