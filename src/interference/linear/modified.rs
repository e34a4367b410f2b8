//! I-18 in the linear 2x2 model: does the step size pick the mode? Gradient descent at step h on
//! task B (own loss, reference protocol of I-8) against the modified flow of
//! L~ = L + (h/4) |grad L|^2 that GD follows to second order (backward-error analysis, B-12),
//! and against the plain flow (h = 0).
//!
//! With e = zhat - z_BB and g = grad z_BB (the I-6 factors), L = e^2/2 and grad L = -e g, so
//! |grad L|^2 = e^2 N with N = |g|^2. In 2x2 both have closed forms: with a = 1 - lambda,
//! D = a (1 - s) - p q,
//!
//!   g = (u / D^2) (p q, q a, p a, a^2),   N = u^2 (a^2 + p^2)(a^2 + q^2) / D^4,
//!
//! and grad N follows by the product rule (dD = -(1 - s) dlambda... see [`derivatives`]). The
//! Hessian-gradient product is H grad L = grad(|grad L|^2)/2 = -e N g + (e^2/2) grad N, so
//!
//!   grad L~ = grad L + (h/2) H grad L = -e g (1 + h N / 2) + (h/4) e^2 grad N.
//!
//! On the solution set z_BB = zhat (D = u a / zhat) the sharpness is
//! N = zhat^2 (1 + p^2/a^2)(1 + q^2/a^2) / u^2: lowest for pure new formation (p = q = 0) and
//! growing with rotation, so the implicit penalty -(h/4) e^2 grad N does not obviously favour
//! rotation here; the numbers decide.
//!
//! Time: GD is M_{k+1} = M_k - h grad L (learning rate h, eta of [`Params`] ignored: the
//! reference protocol has eta = 1), learning time tau = h k; the flows are in tau.

use nalgebra::Matrix2;
use serde::Serialize;

use super::closed::{self, Params};
use super::flow::{to_matrix, to_state, State};
use super::race::{valid_point, Mode};
use crate::num::ode::{self, OdeOptions};
use crate::{Error, Result};

/// The task-B (own loss) quantities at M: error, gradient of z_BB, its squared norm N and the
/// gradient of N, all in the (lambda, p, q, s) coordinates.
#[derive(Debug, Clone, Copy)]
pub struct Derivatives {
    /// e = zhat - z_BB.
    pub e: f64,
    /// g = grad z_BB.
    pub grad_z: State,
    /// N = |grad z_BB|^2.
    pub n: f64,
    /// grad N.
    pub grad_n: State,
}

/// [`Derivatives`] at the state y = (lambda, p, q, s); `None` where |D| < SINGULAR_D or the
/// values are not finite.
pub fn derivatives(y: &State, par: &Params) -> Option<Derivatives> {
    let (l, p, q, s) = (y[0], y[1], y[2], y[3]);
    let a = 1.0 - l;
    let d = a * (1.0 - s) - p * q;
    if d.abs() < closed::SINGULAR_D || !d.is_finite() {
        return None;
    }
    let u = par.u;
    let d2 = d * d;
    let d4 = d2 * d2;
    let z = u * a / d;
    let grad_z = State::new(p * q, q * a, p * a, a * a) * (u / d2);
    let (ap, aq) = (a * a + p * p, a * a + q * q);
    let n = u * u * ap * aq / d4;
    // N = u^2 ap aq D^-4 with d(ap) = (-2a, 2p, 0, 0), d(aq) = (-2a, 0, 2q, 0) and
    // dD = (-(1 - s), -q, -p, -a) in (lambda, p, q, s): the D^-4 factor gives -4 N dD / D.
    let k = u * u / d4;
    let grad_n = State::new(
        -2.0 * a * k * (aq + ap) + 4.0 * n * (1.0 - s) / d,
        2.0 * p * k * aq + 4.0 * n * q / d,
        2.0 * q * k * ap + 4.0 * n * p / d,
        4.0 * n * a / d,
    );
    let out = Derivatives {
        e: par.zhat - z,
        grad_z,
        n,
        grad_n,
    };
    (out.e.is_finite() && out.n.is_finite()).then_some(out)
}

/// The task-B loss L = e^2/2 at y (`None` where singular).
pub fn loss(y: &State, par: &Params) -> Option<f64> {
    derivatives(y, par).map(|d| d.e * d.e / 2.0)
}

/// grad L = -e g.
pub fn loss_gradient(d: &Derivatives) -> State {
    d.grad_z * (-d.e)
}

/// The Hessian-gradient product H grad L = grad(|grad L|^2)/2 = -e N g + (e^2/2) grad N.
pub fn hessian_gradient(d: &Derivatives) -> State {
    d.grad_z * (-d.e * d.n) + d.grad_n * (0.5 * d.e * d.e)
}

/// The modified flow's vector field -grad L~ = -(grad L + (h/2) H grad L) at step h
/// (h = 0: the plain gradient flow).
pub fn modified_field(d: &Derivatives, h: f64) -> State {
    -(loss_gradient(d) + hessian_gradient(d) * (0.5 * h))
}

/// How a run of task B ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// |z_BB - zhat| < tol.
    Learned,
    /// GD left the stable region: D <= 0, a non-finite value or |e| > 10 (ten times the
    /// largest initial error of the protocol, 1 - r < 1).
    Diverged,
    /// Neither within the step cap.
    NotConverged,
}

/// Task B at one step size: the rotation share of the change of s_eff, the interference and
/// the learning time (when learned).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepOutcome {
    /// Step h (0: the plain gradient flow).
    pub h: f64,
    pub ending: Ending,
    /// Learning time tau (h times the number of GD steps).
    pub t: f64,
    /// GD steps taken (0 for the flows).
    pub steps: usize,
    /// delta[p q/(1 - lambda)] / delta s_eff (meaningful when learned).
    pub rotation_share: f64,
    /// I = L_A(after B) / L_A(M = 0) (NaN unless learned).
    pub interference: f64,
}

impl StepOutcome {
    /// The winner by rotation share (`None` unless learned).
    pub fn mode(&self) -> Option<Mode> {
        (self.ending == Ending::Learned).then(|| Mode::from_share(self.rotation_share))
    }
}

fn outcome(
    m0: &Matrix2<f64>,
    m1: &Matrix2<f64>,
    par: &Params,
    h: f64,
    t: f64,
    steps: usize,
    ending: Ending,
) -> StepOutcome {
    let delta_s = m1[(1, 1)] - m0[(1, 1)];
    let delta_rot = closed::rotation_part(m1) - closed::rotation_part(m0);
    let interference = if ending == Ending::Learned {
        closed::readouts(m1, par.u)
            .map(|z| (par.zhat - z.z_aa).powi(2) / (par.zhat - par.u).powi(2))
            .unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    StepOutcome {
        h,
        ending,
        t,
        steps,
        rotation_share: delta_rot / (delta_s + delta_rot),
        interference,
    }
}

fn start(r: f64, eps: f64) -> Result<(Params, Matrix2<f64>)> {
    if !valid_point(r, eps) {
        return Err(Error::Requirement(format!(
            "reference protocol undefined at r = {r}, eps = {eps} (needs 0 < r < 1, 0 < eps < sqrt(r(1-r)))"
        )));
    }
    let par = Params::reference(r);
    Ok((par, par.after_a(eps)))
}

/// The horizon in learning time for every run: 1e3, a hundred times the slowest task-B time of
/// the protocol on r >= 0.1 (t_B <= 10 there).
pub const TAU_MAX: f64 = 1e3;

/// Discrete GD on task B from the reference start at (r, eps): M <- M - h grad L until
/// |e| < tol, divergence, or tau = [`TAU_MAX`]. Allocation-free loop.
pub fn gd_task_b(r: f64, eps: f64, h: f64, tol: f64) -> Result<StepOutcome> {
    if !(h > 0.0 && h.is_finite()) {
        return Err(Error::Requirement(format!(
            "GD step must be finite and > 0 (got {h})"
        )));
    }
    let (par, m0) = start(r, eps)?;
    let mut y = to_state(&m0);
    let max_steps = (TAU_MAX / h).ceil() as usize;
    for k in 0..=max_steps {
        let Some(d) = derivatives(&y, &par).filter(|d| {
            let m = to_matrix(&y);
            closed::det_d(&m) > 0.0 && d.e.abs() <= 10.0
        }) else {
            return Ok(outcome(
                &m0,
                &to_matrix(&y),
                &par,
                h,
                h * k as f64,
                k,
                Ending::Diverged,
            ));
        };
        if d.e.abs() < tol {
            return Ok(outcome(
                &m0,
                &to_matrix(&y),
                &par,
                h,
                h * k as f64,
                k,
                Ending::Learned,
            ));
        }
        y -= loss_gradient(&d) * h;
    }
    Ok(outcome(
        &m0,
        &to_matrix(&y),
        &par,
        h,
        h * max_steps as f64,
        max_steps,
        Ending::NotConverged,
    ))
}

/// Integrator settings of the modified flow: rtol 1e-11, atol 1e-14 (as the I-6 flow,
/// [`super::flow::ode_options`]: the readout's sensitivity ~G_A^2 keeps z to ~1e-8).
pub fn ode_options() -> OdeOptions {
    super::flow::ode_options()
}

/// The modified flow dM/dtau = -grad L~_h on task B from the reference start at (r, eps), until
/// |e| < tol (h = 0: the plain flow, the same path as I-6 in learning time).
pub fn modified_task_b(r: f64, eps: f64, h: f64, tol: f64) -> Result<StepOutcome> {
    if !(h >= 0.0 && h.is_finite()) {
        return Err(Error::Requirement(format!(
            "modified-flow step must be finite and >= 0 (got {h})"
        )));
    }
    let (par, m0) = start(r, eps)?;
    let field = |_: f64, y: &State| match derivatives(y, &par) {
        Some(d) => modified_field(&d, h),
        None => State::repeat(f64::NAN),
    };
    let event = |_: f64, y: &State| match derivatives(y, &par) {
        Some(d) => d.e.abs() - tol,
        None => f64::NAN,
    };
    let (tr, hit) = ode::solve_until(field, 0.0, to_state(&m0), TAU_MAX, event, &ode_options())?;
    match hit {
        Some(t) => Ok(outcome(
            &m0,
            &to_matrix(&tr.eval(t)),
            &par,
            h,
            t,
            0,
            Ending::Learned,
        )),
        None => {
            let (t, y) = tr.last();
            Ok(outcome(
                &m0,
                &to_matrix(&y),
                &par,
                h,
                t,
                0,
                Ending::NotConverged,
            ))
        }
    }
}

/// The GD ladder of I-18: h = 1, 1/2, ..., 1/256.
pub fn step_ladder() -> Vec<f64> {
    (0..=8).map(|k| 0.5f64.powi(k)).collect()
}

/// Tolerance in h of [`eta_star_modified`]: 1e-6 relative to the bracket, far below the factor-2
/// spacing of the GD ladder.
pub const ETA_STAR_RTOL: f64 = 1e-6;

/// The modified flow's critical step h* at (r, eps): the smallest h in (0, h_max] at which its
/// rotation share crosses 1/2, i.e. the outcome differs from the plain flow's. Scans h
/// geometrically from h_max/2^12 up to h_max (25 points), then Brent on the first sign change.
/// `Ok(None)` if the outcome never flips on that range.
pub fn eta_star_modified(r: f64, eps: f64, tol: f64, h_max: f64) -> Result<Option<f64>> {
    let share = |h: f64| -> f64 {
        match modified_task_b(r, eps, h, tol) {
            Ok(o) if o.ending == Ending::Learned => o.rotation_share - 0.5,
            _ => f64::NAN,
        }
    };
    let f0 = share(0.0);
    if !f0.is_finite() {
        return Err(Error::Requirement(format!(
            "the plain flow does not learn task B at r = {r}, eps = {eps}"
        )));
    }
    let n = 24;
    let lo = h_max / 4096.0;
    let mut prev = 0.0;
    for k in 0..=n {
        let h = lo * (h_max / lo).powf(k as f64 / n as f64);
        let f = share(h);
        if !f.is_finite() {
            continue;
        }
        if f.signum() != f0.signum() {
            let bracket_lo = prev;
            return crate::num::optim::brent_root(share, bracket_lo, h, ETA_STAR_RTOL * h)
                .map(Some);
        }
        prev = h;
    }
    Ok(None)
}

/// GD's stability bound at the plain flow's end point: h_stab = 2 / N_end, N_end = |grad z_BB|^2
/// at M after B from the closed-form path (I-16). At the end e = 0, so the Hessian of L is
/// g g^T with the single non-zero eigenvalue N: GD at h > h_stab cannot converge to that point
/// (it is linearly unstable there) and must end elsewhere on z_BB = zhat, or diverge. On that
/// set N = zhat^2 (1 + p^2/a^2)(1 + q^2/a^2)/u^2 grows with rotation, so the rotated end points
/// are the sharp ones.
pub fn stability_step(r: f64, eps: f64, tol: f64) -> Result<f64> {
    let ex = super::exact_path::task_b_exact(r, eps, tol)?;
    let m = ex.m_after;
    let y = State::new(m[0][0], m[0][1], m[1][0], m[1][1]);
    let d = derivatives(&y, &Params::reference(r)).ok_or_else(|| Error::Singular {
        context: format!("end point of task B at r = {r}, eps = {eps}"),
        pivot: 0.0,
        threshold: closed::SINGULAR_D,
    })?;
    Ok(2.0 / d.n)
}

/// GD's measured critical step on the ladder h = 2^-k, k = 0..=k_max: the largest h such that
/// GD at h and at every smaller ladder step learns B with the plain flow's winner. `Ok(None)`
/// if GD at 2^-k_max already differs (or fails).
pub fn gd_critical_step(r: f64, eps: f64, tol: f64, k_max: i32) -> Result<Option<f64>> {
    let flow_mode = modified_task_b(r, eps, 0.0, tol)?.mode();
    let mut last = None;
    for k in (0..=k_max).rev() {
        let h = 0.5f64.powi(k);
        if gd_task_b(r, eps, h, tol)?.mode() != flow_mode {
            break;
        }
        last = Some(h);
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interference::linear::race;
    use approx::assert_relative_eq;

    fn fd<F: Fn(&State) -> f64>(f: F, y: &State, step: f64) -> State {
        let mut g = State::zeros();
        for i in 0..4 {
            let (mut yp, mut ym) = (*y, *y);
            yp[i] += step;
            ym[i] -= step;
            g[i] = (f(&yp) - f(&ym)) / (2.0 * step);
        }
        g
    }

    /// grad z, grad N, grad L and H grad L against central differences (step 1e-6: truncation
    /// ~1e-12 times the third derivative, rounding ~1e-16/1e-6 = 1e-10 relative) at an
    /// unbalanced, non-reference M and u != zhat.
    #[test]
    fn closed_forms_match_finite_differences() {
        let par = Params {
            u: 0.3,
            zhat: 1.2,
            eta: 1.0,
        };
        let y = State::new(0.6, 0.2, -0.1, 0.3);
        let d = derivatives(&y, &par).unwrap();
        let z = |y: &State| par.zhat - derivatives(y, &par).unwrap().e;
        let n = |y: &State| derivatives(y, &par).unwrap().n;
        let l = |y: &State| loss(y, &par).unwrap();
        assert!((fd(z, &y, 1e-6) - d.grad_z).amax() < 1e-8 * d.grad_z.amax());
        assert!((fd(n, &y, 1e-6) - d.grad_n).amax() < 1e-8 * d.grad_n.amax());
        assert!((fd(l, &y, 1e-6) - loss_gradient(&d)).amax() < 1e-8 * loss_gradient(&d).amax());
        assert_relative_eq!(d.n, d.grad_z.norm_squared(), max_relative = 1e-14);
        // H grad L: directional difference of the gradient along grad L (step 1e-6 / |grad L|)
        let gl = loss_gradient(&d);
        let t = 1e-6 / gl.norm();
        let grad_at = |y: &State| loss_gradient(&derivatives(y, &par).unwrap());
        let hv = (grad_at(&(y + gl * t)) - grad_at(&(y - gl * t))) / (2.0 * t);
        let hg = hessian_gradient(&d);
        assert!((hv - hg).amax() < 1e-7 * hg.amax(), "{hv} vs {hg}");
    }

    /// h = 0 is the I-6 flow: same rotation share and interference as the loss-clock ODE.
    #[test]
    fn plain_flow_is_the_i6_flow() {
        let o = modified_task_b(0.3, 0.05, 0.0, 1e-6).unwrap();
        let b =
            race::reference_task_b(0.3, 0.05, 1e-6, &super::super::flow::ode_options()).unwrap();
        assert_eq!(o.ending, Ending::Learned);
        assert_relative_eq!(o.rotation_share, b.rotation_share, max_relative = 1e-7);
        assert_relative_eq!(o.interference, b.interference, max_relative = 1e-6);
        assert_relative_eq!(o.t, b.t, max_relative = 1e-5);
    }

    /// B-12's order test on this model: over a fixed learning time, GD at h is O(h) from the
    /// plain flow and O(h^2) from the modified flow, so halving h cuts the two errors by ~2x
    /// and ~4x. Measured on the rotation share at the end of B.
    #[test]
    fn gd_approaches_the_modified_flow_at_second_order() {
        let (r, eps) = (0.3, 0.05);
        let err = |h: f64| {
            let g = gd_task_b(r, eps, h, 1e-6).unwrap();
            let m = modified_task_b(r, eps, h, 1e-6).unwrap();
            let p = modified_task_b(r, eps, 0.0, 1e-6).unwrap();
            assert_eq!(g.ending, Ending::Learned);
            (
                (g.rotation_share - p.rotation_share).abs(),
                (g.rotation_share - m.rotation_share).abs(),
            )
        };
        let (p1, m1) = err(1.0 / 64.0);
        let (p2, m2) = err(1.0 / 128.0);
        eprintln!(
            "h 1/64: |GD - flow| {p1:.3e} |GD - modified| {m1:.3e}; 1/128: {p2:.3e} {m2:.3e}"
        );
        assert!((1.6..2.5).contains(&(p1 / p2)), "plain ratio {}", p1 / p2);
        assert!(
            (3.0..5.0).contains(&(m1 / m2)),
            "modified ratio {}",
            m1 / m2
        );
    }

    /// GD keeps the flow's rotation while h < 2/N_end and loses it within a factor 4 beyond
    /// (measured ratios 1.3-2.2 at these points); the modified flow's h* is 8-40x larger.
    #[test]
    fn gd_flips_at_the_stability_edge_of_the_rotated_end() {
        for (r, eps) in [(0.2, 0.05), (0.25, 0.05)] {
            let hs = stability_step(r, eps, 1e-6).unwrap();
            let hg = gd_critical_step(r, eps, 1e-6, 15).unwrap().unwrap();
            let hm = eta_star_modified(r, eps, 1e-6, 1.0).unwrap().unwrap();
            assert!(hg >= hs && hg < 4.0 * hs, "r {r}: GD {hg} vs 2/N {hs}");
            assert!(hm > 8.0 * hg, "r {r}: modified {hm} vs GD {hg}");
        }
    }

    #[test]
    fn bad_steps_are_errors() {
        assert!(gd_task_b(0.3, 0.05, 0.0, 1e-6).is_err());
        assert!(modified_task_b(0.3, 0.05, -1.0, 1e-6).is_err());
        assert!(modified_task_b(0.3, 0.6, 0.1, 1e-6).is_err());
    }
}
