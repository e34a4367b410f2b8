//! I-16: the task-B path of the linear 2x2 gradient flow in closed form, and the race
//! criterion it gives (the exact crossover, no leading-order estimate).
//!
//! Every component of the own-loss task-B flow (I-6) carries the same factor eta e u / D^2:
//! lambda' = k p q, p' = k q (1 - lambda), q' = k p (1 - lambda), s' = k (1 - lambda)^2 with
//! k = eta e u / D^2 > 0 while e > 0. In the path parameter theta (d theta = k dt) the flow is
//! autonomous and free of eta, u, zhat and e: the path in M is fixed by M(0) alone, and the
//! error only sets the speed along it. With a = 1 - lambda,
//!
//!   a' = -p q,  p' = q a,  q' = p a,  s' = a^2,
//!
//! so a^2 + p^2 and a^2 + q^2 are conserved. On the reference protocol (p = q = eps,
//! a = r at the start) write a = R cos(phi), p = q = R sin(phi), R = sqrt(r^2 + eps^2): then
//! phi' = R sin(phi), and
//!
//!   rho(phi) = p q / a = R sin^2(phi) / cos(phi)                    (rotation part of s_eff)
//!   s(phi)   = R [ln(tan(phi/2) / tan(phi0/2)) + cos(phi) - cos(phi0)]   (new formation),
//!
//! the latter from ds/dphi = a^2 / (R sin phi) = R (1/sin(phi) - sin(phi)). Task B ends where
//! s_eff = s + rho reaches T = 1 - u / (zhat - tol) (|z_BB - zhat| = tol). Both s and rho grow
//! monotonically along the path, so rotation carries more than half of delta s_eff exactly
//! when, at the point phi_h where rho has covered half of it (rho(phi_h) = (T + rho0) / 2),
//! s has covered less than the other half:
//!
//!   margin(r, eps) = s(phi_h) - (T - rho0) / 2  < 0   <=>   rotation wins.
//!
//! rho(phi) = K solves as a quadratic in x = cos(phi): x = 2R / (K + sqrt(K^2 + 4 R^2)), so the
//! margin is explicit and r*_refined(eps) is its root in r, found by a scan and Brent's method.

use nalgebra::Matrix2;
use serde::Serialize;

use super::closed::{self, Params};
use super::race::valid_point;
use crate::{Error, Result};

/// The balanced task-B path from M = [[1 - r, eps], [eps, 0]] (reference protocol of I-8),
/// parametrised by x = cos(phi) in (0, r/R]; x falls as learning proceeds.
#[derive(Debug, Clone, Copy)]
pub struct BalancedPath {
    /// R = sqrt(r^2 + eps^2), the conserved radius of (1 - lambda, p).
    pub radius: f64,
    /// x0 = cos(phi0) = r / R.
    pub x0: f64,
    /// ln tan(phi0 / 2) = ln(eps / (R + r)).
    log_tan0: f64,
    /// rho0 = eps^2 / r, the seed of the rotation part.
    pub rho0: f64,
}

impl BalancedPath {
    /// The path from the reference start at (r, eps); `Requirement` error where the protocol is
    /// undefined ([`valid_point`]).
    pub fn new(r: f64, eps: f64) -> Result<Self> {
        if !valid_point(r, eps) {
            return Err(Error::Requirement(format!(
                "exact task-B path undefined at r = {r}, eps = {eps} (needs 0 < r < 1, 0 < eps < sqrt(r(1-r)))"
            )));
        }
        let radius = r.hypot(eps);
        Ok(BalancedPath {
            radius,
            x0: r / radius,
            // tan(phi/2) = sin(phi)/(1 + cos(phi)) = (eps/R)/(1 + r/R): no cancellation.
            log_tan0: (eps / (radius + r)).ln(),
            rho0: eps * eps / r,
        })
    }

    /// The rotation part rho = p q / (1 - lambda) = R (1 - x^2) / x at x = cos(phi).
    pub fn rho(&self, x: f64) -> f64 {
        self.radius * (1.0 - x) * (1.0 + x) / x
    }

    /// The new-formation part s = R [ln tan(phi/2) - ln tan(phi0/2) + x - x0] at x = cos(phi),
    /// with tan(phi/2) = sqrt((1 - x)/(1 + x)).
    pub fn s(&self, x: f64) -> f64 {
        let log_tan = 0.5 * ((1.0 - x) / (1.0 + x)).ln();
        self.radius * (log_tan - self.log_tan0 + (x - self.x0))
    }

    /// The x at which rho(x) = k (k > 0): x = 2R / (k + sqrt(k^2 + 4 R^2)).
    pub fn x_at_rho(&self, k: f64) -> f64 {
        let r2 = 2.0 * self.radius;
        r2 / (k + k.hypot(r2))
    }

    /// M = [[lambda, p], [p, s]] at x.
    pub fn m(&self, x: f64) -> Matrix2<f64> {
        let a = self.radius * x;
        let p = self.radius * ((1.0 - x) * (1.0 + x)).sqrt();
        closed::from_entries(1.0 - a, p, p, self.s(x))
    }
}

/// The s_eff at which task B counts as learned on the reference protocol (zhat = 1, u = r):
/// z_BB = r / (1 - s_eff) = 1 - tol.
fn target(r: f64, tol: f64) -> f64 {
    1.0 - r / (1.0 - tol)
}

/// I-16's refined race margin at (r, eps) for task tolerance `tol` (reference protocol):
/// s(phi_h) - (T - rho0)/2, the new-formation part at the point where rotation has covered
/// half of delta s_eff, minus the other half. Negative: rotation carries more than half of
/// delta s_eff (rotation wins); zero exactly at the full-flow crossover. NaN where the
/// protocol is undefined or B starts learned.
pub fn refined_margin(r: f64, eps: f64, tol: f64) -> f64 {
    let Ok(path) = BalancedPath::new(r, eps) else {
        return f64::NAN;
    };
    let t = target(r, tol);
    if t.is_nan() || t <= path.rho0 {
        return f64::NAN;
    }
    let xh = path.x_at_rho(0.5 * (t + path.rho0));
    path.s(xh) - 0.5 * (t - path.rho0)
}

/// Task B on the reference protocol from the closed-form path: the end point, the rotation
/// share and the interference, without integrating anything.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ExactTaskB {
    /// x = cos(phi) at the end of B.
    pub x_end: f64,
    /// M after B, [[lambda, p], [q, s]] row-major.
    pub m_after: [[f64; 2]; 2],
    /// Change of s during B.
    pub delta_s: f64,
    /// Change of p q / (1 - lambda) during B.
    pub delta_rotation: f64,
    /// delta_rotation / (delta_s + delta_rotation).
    pub rotation_share: f64,
    /// I = L_A(after B) / L_A(M = 0), own loss on A.
    pub interference: f64,
}

/// Tolerance of the end point x_end: Brent to 1e-15 in x (x is O(0.1..1); the end point's
/// sensitivity d s_eff / dx = -(R/((1 - x^2) x^2))(...) is O(1/x^2), so s_eff is met to ~1e-13).
const X_TOL: f64 = 1e-15;

/// Task B at (r, eps) until |z_BB - 1| = tol, from the closed-form path (I-16).
pub fn task_b_exact(r: f64, eps: f64, tol: f64) -> Result<ExactTaskB> {
    let path = BalancedPath::new(r, eps)?;
    let t = target(r, tol);
    if t.is_nan() || t <= path.rho0 {
        return Err(Error::Requirement(format!(
            "task B is already learned at the start (r = {r}, eps = {eps}, tol = {tol})"
        )));
    }
    // s + rho rises as x falls; at x_hi = x0 it is rho0 < T, at x_lo (rho = T) it is >= T.
    let (x_lo, x_hi) = (path.x_at_rho(t), path.x0);
    let x_end = if path.s(x_lo) + path.rho(x_lo) == t {
        x_lo
    } else {
        crate::num::optim::brent_root(|x| path.s(x) + path.rho(x) - t, x_lo, x_hi, X_TOL)?
    };
    let m1 = path.m(x_end);
    let par = Params::reference(r);
    let z = closed::readouts(&m1, par.u)?;
    let delta_s = m1[(1, 1)];
    let delta_rotation = closed::rotation_part(&m1) - path.rho0;
    Ok(ExactTaskB {
        x_end,
        m_after: [[m1[(0, 0)], m1[(0, 1)]], [m1[(1, 0)], m1[(1, 1)]]],
        delta_s,
        delta_rotation,
        rotation_share: delta_rotation / (delta_s + delta_rotation),
        interference: (par.zhat - z.z_aa).powi(2) / (par.zhat - par.u).powi(2),
    })
}

/// Bracket tolerance of [`r_star_refined`]: the margin has slope O(1) in r at its root, so
/// 1e-12 in r is far below the 0.005 target and above rounding.
pub const R_STAR_REFINED_XTOL: f64 = 1e-12;

/// I-16: the refined crossover r*(eps), the first r (from below) at which the refined margin
/// turns from negative (rotation) to positive (new formation), for task tolerance `tol`.
/// `Ok(None)` if it does not change sign on the valid range above r = 1e-3 (the same range
/// [`super::race::crossover_ode`] searches). A 64-point geometric scan of the valid range and
/// Brent's method on the first bracket; every evaluation is closed form.
pub fn r_star_refined(eps: f64, tol: f64) -> Result<Option<f64>> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::Requirement(format!(
            "refined r*(eps) needs a finite eps > 0 (got {eps})"
        )));
    }
    if !(tol > 0.0 && tol < 1.0) {
        return Err(Error::Requirement(format!(
            "refined r*(eps) needs a task tolerance in (0, 1) (got {tol})"
        )));
    }
    let disc = (0.25 - eps * eps).max(0.0).sqrt();
    let (lo, hi) = (0.5 - disc, 0.5 + disc);
    if hi - lo < 1e-6 {
        return Ok(None);
    }
    let (a, b) = ((lo * 1.001).max(1e-3), hi * 0.999);
    let f = |r: f64| refined_margin(r, eps, tol);
    let n = 64;
    let mut prev: Option<(f64, f64)> = None;
    for k in 0..=n {
        let r = a * (b / a).powf(k as f64 / n as f64);
        let m = f(r);
        if !m.is_finite() {
            continue;
        }
        if let Some((r0, m0)) = prev {
            if m0 < 0.0 && m >= 0.0 {
                return crate::num::optim::brent_root(f, r0, r, R_STAR_REFINED_XTOL).map(Some);
            }
        }
        prev = Some((r, m));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interference::linear::flow;
    use crate::interference::linear::race;
    use approx::assert_relative_eq;

    /// The closed-form path satisfies the theta-flow a' = -p^2, p' = p a, s' = a^2 with
    /// phi' = R sin(phi): d/dphi of each closed form, by central differences, equals the
    /// flow divided by R sin(phi). Step 1e-6 in phi: truncation ~1e-12, rounding ~1e-10.
    #[test]
    fn closed_forms_solve_the_path_equations() {
        let path = BalancedPath::new(0.3, 0.05).unwrap();
        let big_r = path.radius;
        for phi in [0.2, 0.5, 0.9, 1.3] {
            let h = 1e-6;
            let at = |ph: f64| path.m(ph.cos());
            let (mp, mm, m) = (at(phi + h), at(phi - h), at(phi));
            let dphi = big_r * phi.sin();
            let (l, p, _, _) = closed::entries(&m);
            let a = 1.0 - l;
            let d = |i: usize, j: usize| (mp[(i, j)] - mm[(i, j)]) / (2.0 * h) * dphi;
            assert_relative_eq!(d(0, 0), p * p, max_relative = 1e-8);
            assert_relative_eq!(d(0, 1), p * a, max_relative = 1e-8);
            assert_relative_eq!(d(1, 1), a * a, max_relative = 1e-8);
            assert_relative_eq!(path.rho(phi.cos()), p * p / a, max_relative = 1e-14);
        }
        // the start: x0 gives M(0) exactly (s = 0 to rounding)
        let m0 = path.m(path.x0);
        assert!((m0 - Params::reference(0.3).after_a(0.05)).amax() < 1e-15);
        assert_relative_eq!(path.rho(path.x0), path.rho0, max_relative = 1e-14);
    }

    /// The closed-form end point against the integrated I-6 flow (loss clock, rtol 1e-12):
    /// rotation share and interference to 1e-7 relative (the ODE's end state carries ~rtol
    /// times the readout's sensitivity G_A^2 ~ 1e2 at r = 0.1).
    #[test]
    fn exact_task_b_equals_the_ode() {
        let opts = flow::precise_options();
        for (r, eps) in [
            (0.1, 0.01),
            (0.3, 0.05),
            (0.45, 0.05),
            (0.6, 0.2),
            (0.2, 0.15),
        ] {
            let ode = race::reference_task_b(r, eps, 1e-6, &opts).unwrap();
            let ex = task_b_exact(r, eps, 1e-6).unwrap();
            assert_relative_eq!(ex.rotation_share, ode.rotation_share, max_relative = 1e-7);
            assert_relative_eq!(ex.interference, ode.interference, max_relative = 1e-7);
            assert_relative_eq!(ex.delta_s, ode.delta_s, max_relative = 1e-7);
        }
    }

    #[test]
    fn margin_sign_is_the_ode_winner_and_refined_star_is_the_ode_crossover() {
        for eps in [0.005, 0.05, 0.2] {
            let rs = r_star_refined(eps, 1e-6).unwrap().unwrap();
            let ode = race::crossover_ode(eps, 1e-6).unwrap().unwrap();
            // the ODE crossover is found to CROSSOVER_XTOL = 1e-6 in r
            assert!((rs - ode).abs() < 2e-6, "eps {eps}: {rs} vs {ode}");
            for (r, rot) in [(0.9 * rs, true), (1.1 * rs, false)] {
                assert_eq!(refined_margin(r, eps, 1e-6) < 0.0, rot);
                assert_eq!(
                    task_b_exact(r, eps, 1e-6).unwrap().rotation_share > 0.5,
                    rot
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors_or_nan() {
        assert!(r_star_refined(0.0, 1e-6).is_err());
        assert!(r_star_refined(f64::NAN, 1e-6).is_err());
        assert!(r_star_refined(0.05, 0.0).is_err());
        assert_eq!(r_star_refined(0.6, 1e-6).unwrap(), None);
        assert!(refined_margin(0.01, 0.2, 1e-6).is_nan());
        assert!(task_b_exact(0.5, 0.6, 1e-6).is_err());
    }
}
