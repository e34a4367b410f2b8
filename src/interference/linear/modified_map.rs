//! The step size that picks the mode, mapped over the linear race (THEORY I-18: "is there an
//! eta*(r, eps) for the linear race?").
//!
//! Below the full-flow crossover r*(eps) (I-16's exact path criterion, equal to the integrated
//! flow's crossover to 1e-5) the gradient flow learns task B by rotation. At each grid point
//! (r, eps), r a fraction of r*(eps), this module computes three step sizes (all in the
//! learning-rate units of [`super::modified`], tau = h k):
//!
//! - h*_MF: the modified flow's critical step ([`super::modified::eta_star_modified`]): the
//!   smallest h at which the flow of L + (h/4)|grad L|^2 ends with rotation share below 1/2;
//! - h_GD: GD's critical step ([`gd_critical`]): the ladder h = 2^-k from below the
//!   stability edge up to 1 gives the largest rung from which on every smaller rung GD learns B
//!   with the flow's winner; the factor 2 above it is then bisected in log2 h to
//!   [`BISECT_LOG2_TOL`] (assuming one transition inside that last octave);
//! - h_stab = 2 / N_end ([`super::modified::stability_step`]): the stability edge of GD at
//!   the flow's end point, where the loss Hessian is g g^T with the single eigenvalue
//!   N_end = |grad z_BB|^2 = zhat^2 / (u^2 cos^4 phi_end) (I-16's path angle phi).
//!
//! - h_half = 2 u^2 cos^4(phi_h) / zhat^2 ([`half_rotation_step`]): the stability edge of the
//!   flattest end point that still counts as rotation. On the solution set z_BB = zhat the
//!   sharpness is N = zhat^2 (1 + p^2/a^2)(1 + q^2/a^2) / u^2 (a = 1 - lambda), growing with
//!   the rotation part rho = p q / a; an end point with rotation share exactly 1/2 has
//!   rho = (T + rho0) / 2 (T the target s_eff, rho0 = eps^2 / r), which on the flow's balanced
//!   family (p = q, a^2 + p^2 = R^2, I-16) is the point phi_h of I-16's criterion, with
//!   p/a = tan(phi_h): N_half = zhat^2 / (u^2 cos^4 phi_h). GD past h_stab cannot settle at the
//!   flow's end point and settles (if at all) where N <= 2/h; it can still end rotated while
//!   some rotated end point has N <= 2/h, i.e. up to h ~ h_half >= h_stab (equal at r*, where
//!   the flow's end is itself half rotated). This assumes GD stays near the balanced family
//!   (GD conserves the balance only to O(h) per unit time).
//!
//! Beside h_GD it records how GD ends just above it: learned by new formation (a flatter end
//! point), or leaving the stable region (D <= 0 or |e| > 10, [`Ending::Diverged`]). The map's
//! closed-form candidate is h_GD = c h_stab, c fitted as the geometric mean of h_GD / h_stab
//! ([`fit_ratio`]).

use rayon::prelude::*;
use serde::Serialize;

use super::closed::Params;
use super::exact_path;
use super::modified::{self, Ending, StepOutcome};
use super::race::{valid_point, Mode};
use crate::{Error, Result};

/// Bisection tolerance of [`gd_critical`] in log2 h: 1/16 of an octave (h to ~4.4%), far below
/// the factor 2 between h_GD and h*_MF or h_stab that the map is about.
pub const BISECT_LOG2_TOL: f64 = 1.0 / 16.0;

/// The ladder of [`gd_critical`] starts this many octaves below the stability edge h_stab
/// (GD there is within O(h) of the flow and keeps its winner; checked: the smallest rung must
/// agree, otherwise the point reports no h_GD).
pub const LADDER_BELOW_STAB: i32 = 3;

/// Points whose stability edge lies below this step are not run by GD (cost ~ t_B / h
/// steps: 2^-24 ~ 6e-8 means ~1e8 closed-form steps per run); they report h_GD = None.
pub const H_STAB_MIN: f64 = 6e-8;

/// GD's critical step at (r, eps) and how GD ends just above it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GdCritical {
    /// The largest rung of the ladder from which on GD keeps the flow's winner.
    pub ladder: f64,
    /// h_GD after bisecting the octave above the rung (the largest step found to keep it).
    pub h: f64,
    /// The smallest step found to lose it (h_GD < h_fail <= h_GD 2^BISECT_LOG2_TOL), and GD's
    /// end there.
    pub h_fail: f64,
    pub fail: StepOutcome,
    /// GD runs spent.
    pub runs: usize,
}

/// GD's critical step at (r, eps) (see the module docs): the ladder 2^-k from
/// 2^-(ceil(log2(1/h_floor))) up to 1, then bisection in log2 h. `Ok(None)` if GD already
/// differs from the flow at the smallest rung, or keeps the flow's winner up to h = 1.
pub fn gd_critical(r: f64, eps: f64, tol: f64, h_floor: f64) -> Result<Option<GdCritical>> {
    if !(h_floor > 0.0 && h_floor <= 1.0) {
        return Err(Error::Requirement(format!(
            "GD ladder floor must be in (0, 1] (got {h_floor})"
        )));
    }
    let flow_mode = modified::modified_task_b(r, eps, 0.0, tol)?.mode();
    let keeps = |o: &StepOutcome| o.mode().is_some() && o.mode() == flow_mode;
    let k_max = (1.0 / h_floor).log2().ceil() as i32;
    let mut runs = 0;
    let mut ok = None;
    let mut fail = None;
    for k in (0..=k_max).rev() {
        let h = 0.5f64.powi(k);
        let o = modified::gd_task_b(r, eps, h, tol)?;
        runs += 1;
        if !keeps(&o) {
            fail = Some((h, o));
            break;
        }
        ok = Some(h);
    }
    let (Some(ladder), Some((mut h_bad, mut o_bad))) = (ok, fail) else {
        return Ok(None);
    };
    let mut h_ok = ladder;
    while (h_bad / h_ok).log2() > BISECT_LOG2_TOL {
        let mid = (h_ok * h_bad).sqrt();
        let o = modified::gd_task_b(r, eps, mid, tol)?;
        runs += 1;
        if keeps(&o) {
            h_ok = mid;
        } else {
            h_bad = mid;
            o_bad = o;
        }
    }
    Ok(Some(GdCritical {
        ladder,
        h: h_ok,
        h_fail: h_bad,
        fail: o_bad,
        runs,
    }))
}

/// h_half = 2 u^2 cos^4(phi_h) / zhat^2 at (r, eps) on the reference protocol (u = r, zhat = 1):
/// GD's stability edge at the flattest half-rotated end point of the balanced family (module
/// docs). Closed form: cos(phi_h) = I-16's `x_at_rho((T + rho0) / 2)`.
pub fn half_rotation_step(r: f64, eps: f64, tol: f64) -> Result<f64> {
    let path = exact_path::BalancedPath::new(r, eps)?;
    let par = Params::reference(r);
    let t = par.s_eff_target(tol);
    if t.is_nan() || t <= path.rho0 {
        return Err(Error::Requirement(format!(
            "task B is already learned at the start (r = {r}, eps = {eps}, tol = {tol})"
        )));
    }
    let x = path.x_at_rho(0.5 * (t + path.rho0));
    Ok(2.0 * par.u * par.u * x.powi(4) / (par.zhat * par.zhat))
}

/// The grid of claim I-18-map and its figure: eps (THEORY I-16's range) and r as fractions of
/// the crossover r*(eps).
pub const EPS: [f64; 6] = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2];
pub const FRACTIONS: [f64; 8] = [0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98];

/// One point of the map.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MapPoint {
    pub eps: f64,
    /// r*(eps), I-16's exact crossover.
    pub r_star: f64,
    /// r / r*.
    pub fraction: f64,
    pub r: f64,
    /// The plain flow's rotation share at the end of B (> 1/2: rotation).
    pub flow_share: f64,
    /// N_end = |grad z_BB|^2 at the flow's end point and h_stab = 2 / N_end.
    pub n_end: f64,
    pub h_stab: f64,
    /// The stability edge of the flattest half-rotated end point ([`half_rotation_step`]).
    pub h_half: f64,
    /// The modified flow's critical step (None: no flip for h <= 1).
    pub h_modified: Option<f64>,
    /// GD's critical step (None: not run, see [`H_STAB_MIN`], or no flip inside the ladder).
    pub gd: Option<GdCritical>,
}

impl MapPoint {
    /// log2(h_GD / h_stab), if GD was run and flipped.
    pub fn log2_gd_over_stab(&self) -> Option<f64> {
        self.gd.map(|g| (g.h / self.h_stab).log2())
    }

    /// log2(h_GD / h_half), if GD was run and flipped.
    pub fn log2_gd_over_half(&self) -> Option<f64> {
        self.gd.map(|g| (g.h / self.h_half).log2())
    }

    /// log2(h*_MF / h_GD), if both exist.
    pub fn log2_modified_over_gd(&self) -> Option<f64> {
        match (self.h_modified, self.gd) {
            (Some(m), Some(g)) => Some((m / g.h).log2()),
            _ => None,
        }
    }
}

/// The map over `eps` x `fractions` (r = fraction r*(eps)), each point as [`map_point`];
/// points run in parallel (rayon), the result is in grid order (eps outer) and independent of
/// the thread count.
pub fn step_size_map(eps: &[f64], fractions: &[f64], tol: f64) -> Result<Vec<MapPoint>> {
    let mut grid = Vec::new();
    for &e in eps {
        let r_star = exact_path::r_star_refined(e, tol)?.ok_or_else(|| {
            Error::Requirement(format!("no crossover r*(eps) at eps = {e} (tol {tol})"))
        })?;
        for &f in fractions {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::Requirement(format!(
                    "map fraction r / r* = {f} must be in (0, 1) (below the crossover)"
                )));
            }
            grid.push((e, r_star, f));
        }
    }
    grid.par_iter()
        .map(|&(e, r_star, f)| map_point(e, r_star, f, tol))
        .collect()
}

/// One point: the flow's end (share, N_end), h*_MF on (0, 1], and GD's critical step with the
/// ladder starting [`LADDER_BELOW_STAB`] octaves below h_stab (not run below [`H_STAB_MIN`]).
pub fn map_point(eps: f64, r_star: f64, fraction: f64, tol: f64) -> Result<MapPoint> {
    let r = fraction * r_star;
    if !valid_point(r, eps) {
        return Err(Error::Requirement(format!(
            "map point r = {r}, eps = {eps} outside the protocol (0 < eps < sqrt(r (1 - r)))"
        )));
    }
    let flow = modified::modified_task_b(r, eps, 0.0, tol)?;
    if flow.ending != Ending::Learned {
        return Err(Error::Numerical(format!(
            "the plain flow does not learn task B at r = {r}, eps = {eps}"
        )));
    }
    let h_stab = modified::stability_step(r, eps, tol)?;
    let h_half = half_rotation_step(r, eps, tol)?;
    let h_modified = if flow.mode() == Some(Mode::Rotation) {
        modified::eta_star_modified(r, eps, tol, 1.0)?
    } else {
        None
    };
    let gd = if h_stab >= H_STAB_MIN {
        let floor = (h_stab * 0.5f64.powi(LADDER_BELOW_STAB)).min(1.0);
        gd_critical(r, eps, tol, floor)?
    } else {
        None
    };
    Ok(MapPoint {
        eps,
        r_star,
        fraction,
        r,
        flow_share: flow.rotation_share,
        n_end: 2.0 / h_stab,
        h_stab,
        h_half,
        h_modified,
        gd,
    })
}

/// The closed-form candidate h_GD = c h_stab = 2c / N_end over the points with an h_GD:
/// c as the geometric mean of h_GD / h_stab, and the largest |log2(h_GD / (c h_stab))|
/// (its error in octaves). Also the log-log slope of h_GD against h_stab (least squares;
/// 1 if the form holds). `None` with fewer than two points.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RatioFit {
    pub points: usize,
    pub c: f64,
    pub max_log2_error: f64,
    pub slope: f64,
}

/// [`RatioFit`] of the points' (h_stab, h) pairs.
pub fn fit_ratio(pairs: &[(f64, f64)]) -> Option<RatioFit> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let logs: Vec<(f64, f64)> = pairs.iter().map(|&(s, h)| (s.log2(), h.log2())).collect();
    let mean_ratio = logs.iter().map(|(s, h)| h - s).sum::<f64>() / n as f64;
    let max_log2_error = logs
        .iter()
        .map(|(s, h)| (h - s - mean_ratio).abs())
        .fold(0.0, f64::max);
    let (ms, mh) = (
        logs.iter().map(|l| l.0).sum::<f64>() / n as f64,
        logs.iter().map(|l| l.1).sum::<f64>() / n as f64,
    );
    let sxy: f64 = logs.iter().map(|(s, h)| (s - ms) * (h - mh)).sum();
    let sxx: f64 = logs.iter().map(|(s, _)| (s - ms) * (s - ms)).sum();
    Some(RatioFit {
        points: n,
        c: mean_ratio.exp2(),
        max_log2_error,
        slope: sxy / sxx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bisected critical step lies in the octave above the ladder's rung, keeps the
    /// flow's winner, and agrees with `modified::gd_critical_step` (the ladder 1 .. 2^-15 of
    /// the I-18 check) at (0.25, 0.05), where that ladder reaches below the edge.
    #[test]
    fn bisection_refines_the_ladder() {
        let (r, eps) = (0.25, 0.05);
        let hs = modified::stability_step(r, eps, 1e-6).unwrap();
        let g = gd_critical(r, eps, 1e-6, hs / 8.0).unwrap().unwrap();
        let ladder = modified::gd_critical_step(r, eps, 1e-6, 15)
            .unwrap()
            .unwrap();
        assert_eq!(g.ladder, ladder);
        assert!(g.h >= g.ladder && g.h < 2.0 * g.ladder, "{g:?}");
        assert!((g.h_fail / g.h).log2() <= BISECT_LOG2_TOL + 1e-12);
        let keeps = modified::gd_task_b(r, eps, g.h, 1e-6).unwrap();
        assert_eq!(keeps.mode(), Some(Mode::Rotation));
        assert_ne!(g.fail.mode(), Some(Mode::Rotation));
    }

    #[test]
    fn ratio_fit_recovers_a_constant() {
        let pairs = [(1e-3, 2.5e-3), (1e-4, 2.5e-4), (3e-5, 7.5e-5)];
        let f = fit_ratio(&pairs).unwrap();
        assert!(
            (f.c - 2.5).abs() < 1e-12 && f.max_log2_error < 1e-12,
            "{f:?}"
        );
        assert!((f.slope - 1.0).abs() < 1e-12);
        assert!(fit_ratio(&pairs[..1]).is_none());
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(gd_critical(0.25, 0.05, 1e-6, 0.0).is_err());
        assert!(step_size_map(&[0.05], &[1.2], 1e-6).is_err());
        assert!(map_point(0.3, 0.1, 0.5, 1e-6).is_err());
    }

    /// h_half is GD's stability edge 2 / N at the balanced point whose rotation part is
    /// (T + rho0) / 2: N from `modified::derivatives` at M = [[1 - a, p], [p, s]] with s chosen
    /// so that z_BB = zhat (D = u a / zhat), against the closed form, to 1e-12 relative. At
    /// the crossover the flow's end is itself half rotated: h_half -> h_stab (within 1% at
    /// r = 0.999 r*); below it h_half > h_stab.
    #[test]
    fn half_rotation_step_is_the_edge_of_the_half_rotated_point() {
        let (r, eps, tol) = (0.2, 0.05, 1e-6);
        let par = Params::reference(r);
        let path = exact_path::BalancedPath::new(r, eps).unwrap();
        let x = path.x_at_rho(0.5 * (par.s_eff_target(tol) + path.rho0));
        let (a, p) = (path.radius * x, path.radius * (1.0 - x * x).sqrt());
        // D = a (1 - s) - p^2 = u a / zhat
        let s = 1.0 - (par.u * a / par.zhat + p * p) / a;
        let y = crate::interference::linear::flow::State::new(1.0 - a, p, p, s);
        let d = modified::derivatives(&y, &par).unwrap();
        assert!(d.e.abs() < 1e-12);
        let h = half_rotation_step(r, eps, tol).unwrap();
        assert!((2.0 / d.n - h).abs() < 1e-12 * h, "{} vs {h}", 2.0 / d.n);
        assert!(h > modified::stability_step(r, eps, tol).unwrap());
        let r_star = exact_path::r_star_refined(eps, tol).unwrap().unwrap();
        let near = 0.999 * r_star;
        let (hh, hs) = (
            half_rotation_step(near, eps, tol).unwrap(),
            modified::stability_step(near, eps, tol).unwrap(),
        );
        assert!((hh / hs - 1.0).abs() < 0.01, "{hh} vs {hs}");
    }
}
