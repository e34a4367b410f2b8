//! Pseudo-arclength continuation of the equilibria of a one-parameter family of planar flows,
//! `F(x; p) = 0` with `x` in R^2, with adaptive steps and the detection and location of folds,
//! branch points (pitchfork, transcritical) and Hopf points; branch switching at branch points.
//!
//! The curve `y(s) = (x(s), p(s))` is followed in scaled coordinates `z = y / scale`
//! (`ContinuationOptions::scale`: typical sizes of x_1, x_2 and p, so that the arclength
//! weighs the state and the parameter alike). Each step is Keller's predictor–corrector:
//! Euler predictor `z + h t` along the unit tangent `t`, then Newton on
//! `[F(z); t . (z - z_pred)] = 0` (a 3x3 system). The tangent is the null vector of the 2x3
//! matrix `A = [F_x S_x, F_p s_p]`, i.e. the cross product of its two rows, oriented to
//! continue the previous one. The step grows by 1.5 after an easy step and halves after a
//! failed corrector or a turn of the tangent by more than `max_angle`.
//!
//! Test functions between consecutive points (each sign change located by bisection along the
//! arc to `locate_tol`):
//! - fold (saddle–node): the p-component of the tangent, `t_p`;
//! - branch point: `det [A; t^T] = (r_1 x r_2) . t`, which changes sign where `A` loses rank
//!   (a fold does not change it); with `t_p` = 0 there too, and the second branch tangent
//!   (the other null vector of `A`) with `|t_p| ~ 0`, it is a pitchfork, else transcritical;
//! - Hopf: the trace of `F_x` where its determinant is positive (planar flows), with the
//!   frequency `omega = sqrt(det F_x)`.
//!
//! Normal forms with closed-form answers are the tests: `x' = p - x^2` (fold at p = 0),
//! `x' = p x - x^3` (pitchfork at p = 0, branch `p = x^2`), `x' = p x - x^2` (transcritical),
//! and the Hopf normal form (Hopf at p = 0, omega = 1).

use nalgebra::{Matrix2, Matrix3, Vector2, Vector3};
use serde::Serialize;

use super::planar::{fixed_point_at, FixedPoint, PlanarFlow};
use crate::{Error, Result};

mod trace;
use trace::*;

/// A one-parameter family of planar flows `F(x; p)`.
pub trait Family: Sync {
    /// F(x; p).
    fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64>;
    /// dF/dx at (x, p).
    fn jacobian(&self, x: &Vector2<f64>, p: f64) -> Matrix2<f64>;
}

/// A family given as a map from the parameter to a planar flow (e.g. learning time tau ->
/// the flow of M(tau)); `dF/dp` is taken by central differences inside `[lo, hi]`.
pub struct FlowFamily<G>(pub G);

impl<F: PlanarFlow, G: Fn(f64) -> F + Sync> Family for FlowFamily<G> {
    fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
        (self.0)(p).flow(x)
    }
    fn jacobian(&self, x: &Vector2<f64>, p: f64) -> Matrix2<f64> {
        (self.0)(p).jacobian(x)
    }
}

/// The member of a family at a fixed parameter, as a [`PlanarFlow`].
pub struct AtParameter<'a, Fm: Family>(pub &'a Fm, pub f64);

impl<Fm: Family> PlanarFlow for AtParameter<'_, Fm> {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        self.0.flow(x, self.1)
    }
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        self.0.jacobian(x, self.1)
    }
}

/// Steps, bounds and tolerances of a continuation.
#[derive(Debug, Clone, Copy)]
pub struct ContinuationOptions {
    /// The parameter interval followed; a branch ends where it leaves it.
    pub p_range: (f64, f64),
    /// The state box; a branch ends where it leaves it (enlarged by 2%).
    pub lo: [f64; 2],
    pub hi: [f64; 2],
    /// Typical sizes of (x_1, x_2, p): arclength is measured in y / scale.
    pub scale: [f64; 3],
    /// First, smallest and largest step in scaled arclength.
    pub h0: f64,
    pub h_min: f64,
    pub h_max: f64,
    /// Largest turn of the tangent accepted in one step (radians).
    pub max_angle: f64,
    /// Corrector tolerance on |F| (absolute; flows of order one).
    pub tol: f64,
    /// Step cap per branch direction.
    pub max_steps: usize,
    /// Events are located to this scaled arclength.
    pub locate_tol: f64,
}

impl ContinuationOptions {
    /// Options for a box and a parameter interval: scale = box half-widths and the interval
    /// length; at least 50 steps across it (h_max = 0.02), 0.1 rad per step at most, |F| to
    /// 1e-11 (a few hundred ulps of an O(1) flow, as the fixed-point finder of `num::planar`),
    /// events located to 1e-10 of the scale.
    pub fn new(p_range: (f64, f64), lo: [f64; 2], hi: [f64; 2]) -> Self {
        let half = |d: usize| (0.5 * (hi[d] - lo[d])).max(1e-12);
        ContinuationOptions {
            p_range,
            lo,
            hi,
            scale: [half(0), half(1), (p_range.1 - p_range.0).abs().max(1e-12)],
            h0: 0.005,
            h_min: 1e-9,
            h_max: 0.02,
            max_angle: 0.1,
            tol: 1e-11,
            max_steps: 5000,
            locate_tol: 1e-10,
        }
    }
}

/// A point of a branch.
#[derive(Debug, Clone, Serialize)]
pub struct BranchPoint {
    pub p: f64,
    /// The equilibrium, its eigenvalues and type at parameter p.
    pub point: FixedPoint,
}

/// Why a branch direction stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchEnd {
    /// Reached an end of the parameter interval (the last point lies on it).
    ParameterBound,
    /// Left the state box.
    LeftBox,
    /// Returned to its start (a closed curve).
    Closed,
    /// The step fell below `h_min` (a singular point the corrector cannot pass).
    StepUnderflow,
    /// `max_steps` reached.
    StepCap,
}

/// A branch of equilibria: points ordered along the arc.
#[derive(Debug, Clone, Serialize)]
pub struct Branch {
    pub points: Vec<BranchPoint>,
    /// How the two ends came about (first point, last point).
    pub ends: [BranchEnd; 2],
}

/// The kind of a located event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventKind {
    /// Saddle–node: two equilibria meet and vanish.
    Fold,
    /// Two branches cross; `pitchfork` when the second branch is tangent to p = const.
    BranchPoint { pitchfork: bool },
    /// A complex pair crosses the imaginary axis at ±i omega.
    Hopf { omega: f64 },
}

impl EventKind {
    /// Plain-words name ("fold", "pitchfork", "transcritical", "Hopf").
    pub fn label(&self) -> &'static str {
        match self {
            EventKind::Fold => "fold",
            EventKind::BranchPoint { pitchfork: true } => "pitchfork",
            EventKind::BranchPoint { pitchfork: false } => "transcritical",
            EventKind::Hopf { .. } => "Hopf",
        }
    }
}

/// A located bifurcation.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(flatten)]
    pub kind: EventKind,
    pub p: f64,
    pub x: [f64; 2],
    /// Branches through it (indices into [`Diagram::branches`]).
    pub branches: Vec<usize>,
}

/// All branches reached from the seeds, and the events on them.
#[derive(Debug, Clone, Serialize)]
pub struct Diagram {
    pub branches: Vec<Branch>,
    /// Sorted by p.
    pub events: Vec<Event>,
}

/// Internal: a family in scaled coordinates z = (x / s_x, p / s_p).
struct Scaled<'a, Fm: Family> {
    fam: &'a Fm,
    s: Vector3<f64>,
    p_range: (f64, f64),
}

impl<Fm: Family> Scaled<'_, Fm> {
    fn y(&self, z: &Vector3<f64>) -> (Vector2<f64>, f64) {
        (
            Vector2::new(z[0] * self.s[0], z[1] * self.s[1]),
            z[2] * self.s[2],
        )
    }

    fn f(&self, z: &Vector3<f64>) -> Vector2<f64> {
        let (x, p) = self.y(z);
        self.fam.flow(&x, p)
    }

    /// A = [F_x S_x, F_p s_p] (2x3) at z. F_p by central differences with step
    /// 1e-6 of the interval (truncation ~1e-12 relative), one-sided at the interval's ends.
    fn a(&self, z: &Vector3<f64>) -> nalgebra::Matrix2x3<f64> {
        let (x, p) = self.y(z);
        let j = self.fam.jacobian(&x, p);
        let (lo, hi) = (
            self.p_range.0.min(self.p_range.1),
            self.p_range.0.max(self.p_range.1),
        );
        let d = 1e-6 * (hi - lo).max(1e-12);
        let (pa, pb) = if p - d < lo {
            (p, p + d)
        } else if p + d > hi {
            (p - d, p)
        } else {
            (p - d, p + d)
        };
        let fp = (self.fam.flow(&x, pb) - self.fam.flow(&x, pa)) / (pb - pa);
        nalgebra::Matrix2x3::new(
            j[(0, 0)] * self.s[0],
            j[(0, 1)] * self.s[1],
            fp[0] * self.s[2],
            j[(1, 0)] * self.s[0],
            j[(1, 1)] * self.s[1],
            fp[1] * self.s[2],
        )
    }

    /// The unscaled cross product of the rows of A (the null direction, not normalised).
    fn null(&self, z: &Vector3<f64>) -> Vector3<f64> {
        let a = self.a(z);
        let r1 = Vector3::new(a[(0, 0)], a[(0, 1)], a[(0, 2)]);
        let r2 = Vector3::new(a[(1, 0)], a[(1, 1)], a[(1, 2)]);
        r1.cross(&r2)
    }

    /// Unit tangent at z oriented along `prev`.
    fn tangent(&self, z: &Vector3<f64>, prev: &Vector3<f64>) -> Option<Vector3<f64>> {
        let c = self.null(z);
        let n = c.norm();
        if n.is_nan() || n <= 0.0 || !n.is_finite() {
            return None;
        }
        let t = c / n;
        Some(if t.dot(prev) < 0.0 { -t } else { t })
    }

    /// Newton on [F(z); t . (z - z_pred)] = 0 from z_pred. Returns the point and the number of
    /// iterations, or None if it does not converge in 8 iterations.
    fn correct(
        &self,
        z_pred: &Vector3<f64>,
        t: &Vector3<f64>,
        tol: f64,
    ) -> Option<(Vector3<f64>, usize)> {
        let mut z = *z_pred;
        for it in 0..8 {
            let f = self.f(&z);
            let g = t.dot(&(z - z_pred));
            if !f[0].is_finite() || !f[1].is_finite() {
                return None;
            }
            let a = self.a(&z);
            let m = Matrix3::new(
                a[(0, 0)],
                a[(0, 1)],
                a[(0, 2)],
                a[(1, 0)],
                a[(1, 1)],
                a[(1, 2)],
                t[0],
                t[1],
                t[2],
            );
            let dz = m.lu().solve(&Vector3::new(-f[0], -f[1], -g))?;
            z += dz;
            if !z.iter().all(|v| v.is_finite()) {
                return None;
            }
            if dz.norm() <= 1e-13 * (1.0 + z.norm()) && self.f(&z).norm() <= tol {
                return Some((z, it + 1));
            }
        }
        (self.f(&z).norm() <= tol).then_some((z, 8))
    }

    /// Newton in x at fixed p (scaled) from z; None if it does not converge.
    fn correct_at_p(&self, z: &Vector3<f64>, tol: f64) -> Option<Vector3<f64>> {
        let mut z = *z;
        for _ in 0..20 {
            let f = self.f(&z);
            if f.norm() <= tol {
                return Some(z);
            }
            let a = self.a(&z);
            let j = Matrix2::new(a[(0, 0)], a[(0, 1)], a[(1, 0)], a[(1, 1)]);
            let dx = j.lu().solve(&(-f))?;
            z[0] += dx[0];
            z[1] += dx[1];
            if !z.iter().all(|v| v.is_finite()) {
                return None;
            }
        }
        (self.f(&z).norm() <= tol).then_some(z)
    }

    fn point(&self, z: &Vector3<f64>) -> BranchPoint {
        let (x, p) = self.y(z);
        BranchPoint {
            p,
            point: fixed_point_at(&AtParameter(self.fam, p), &x),
        }
    }
}
/// Continue every branch through the seeds `(x, p)` (equilibria, e.g. from
/// [`crate::num::planar::fixed_points_in_box`] at a few p), in both directions, within the
/// box and the parameter interval of `o`; switch branches at every branch point found (once
/// per point). A seed within `merge` (scaled) of a branch already computed is skipped.
///
/// Errors: [`Error::Requirement`] for an empty or reversed parameter interval or box, or a
/// seed where F is not ~0 (|F| > 1e-8) or not finite.
pub fn continue_branches<Fm: Family>(
    fam: &Fm,
    seeds: &[(Vector2<f64>, f64)],
    o: &ContinuationOptions,
) -> Result<Diagram> {
    let ordered = o.p_range.1 > o.p_range.0 && (0..2).all(|d| o.hi[d] > o.lo[d]);
    if !ordered {
        return Err(Error::Requirement(format!(
            "continuation: need p_range.0 < p_range.1 and lo < hi, got p in [{}, {}], box {:?} .. {:?}",
            o.p_range.0, o.p_range.1, o.lo, o.hi
        )));
    }
    let sc = Scaled {
        fam,
        s: Vector3::new(o.scale[0], o.scale[1], o.scale[2]),
        p_range: o.p_range,
    };
    // a seed closer than this to a computed branch lies on it: the chord error of a step
    // h <= 0.02 turning by <= 0.1 rad is < 1e-3, so 5e-3 separates distinct branches unless
    // they are closer than that (then they meet at a branch point and switching finds them)
    let merge = 5e-3;
    let mut curves: Vec<Curve> = Vec::new();
    let mut queue: Vec<(Vector3<f64>, Option<Vector3<f64>>)> = Vec::new();
    for (x, p) in seeds {
        let fx = fam.flow(x, *p);
        if fx.norm().is_nan() || fx.norm() > 1e-8 {
            return Err(Error::Requirement(format!(
                "continuation: seed ({}, {}) at p = {p} is not an equilibrium (|F| = {:e})",
                x[0],
                x[1],
                fx.norm()
            )));
        }
        queue.push((
            Vector3::new(x[0] / sc.s[0], x[1] / sc.s[1], p / sc.s[2]),
            None,
        ));
    }
    let mut events: Vec<(EventKind, Vector3<f64>)> = Vec::new();
    let mut switched: Vec<Vector3<f64>> = Vec::new();
    let mut qi = 0;
    while qi < queue.len() {
        let (z0, dir) = queue[qi];
        qi += 1;
        if curves.iter().any(|c| distance_to(&c.0, &z0) < merge) {
            continue;
        }
        let Some(z0) = sc.correct_at_p(&z0, o.tol) else {
            continue;
        };
        let up = Vector3::new(0.0, 0.0, 1.0);
        let t0 = match dir {
            Some(d) => sc.tangent(&z0, &d),
            None => sc
                .tangent(&z0, &up)
                .map(|t| if t[2] == 0.0 { t } else { t * t[2].signum() }),
        };
        let Some(t0) = t0 else { continue };
        let (zs, ts, ends) = both_ways(&sc, z0, t0, o);
        for (kind, z, t2) in events_on(&sc, &zs, &ts, o) {
            if let EventKind::BranchPoint { .. } = kind {
                if !switched.iter().any(|w| (w - z).norm() < merge) {
                    switched.push(z);
                    // step off along the second tangent, both ways, onto the crossing branch
                    let d = 0.02;
                    for s in [1.0, -1.0] {
                        let pred = z + t2 * (d * s);
                        if let Some((zn, _)) = sc.correct(&pred, &(t2 * s), o.tol) {
                            queue.push((zn, Some(t2 * s)));
                        }
                    }
                }
            }
            if !events
                .iter()
                .any(|(k, w)| k.label() == kind.label() && (w - z).norm() < merge)
            {
                events.push((kind, z));
            }
        }
        curves.push((zs, ts, ends));
    }
    Ok(diagram(&sc, &curves, &events, merge))
}

/// The diagram in original coordinates: the branches, and the events sorted by p (a branch
/// point classified as pitchfork or transcritical, with the branches through it).
fn diagram<Fm: Family>(
    sc: &Scaled<'_, Fm>,
    curves: &[Curve],
    events: &[(EventKind, Vector3<f64>)],
    merge: f64,
) -> Diagram {
    let branches: Vec<Branch> = curves
        .iter()
        .map(|(zs, _, ends)| Branch {
            points: zs.iter().map(|z| sc.point(z)).collect(),
            ends: *ends,
        })
        .collect();
    let zs_only: Vec<Vec<Vector3<f64>>> = curves.iter().map(|c| c.0.clone()).collect();
    let mut out: Vec<Event> = events
        .iter()
        .map(|(kind, z)| {
            let (x, p) = sc.y(z);
            let kind = match kind {
                EventKind::BranchPoint { .. } => EventKind::BranchPoint {
                    pitchfork: is_pitchfork(&zs_only, z, merge),
                },
                k => *k,
            };
            Event {
                kind,
                p,
                x: [x[0], x[1]],
                branches: curves
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| distance_to(&c.0, z) < merge)
                    .map(|(i, _)| i)
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.p.total_cmp(&b.p));
    Diagram {
        branches,
        events: out,
    }
}

/// A branch point is a pitchfork when one of the branches through it stays on one side of
/// p = p* near it (the parabola p - p* ~ x^2), transcritical when both cross p = p*.
fn is_pitchfork(curves: &[Vec<Vector3<f64>>], z: &Vector3<f64>, merge: f64) -> bool {
    curves
        .iter()
        .filter(|c| distance_to(c, z) < merge)
        .any(|c| {
            let near: Vec<f64> = c
                .iter()
                .filter(|w| {
                    let d = (*w - z).norm();
                    d > 1e-6 && d < 0.1
                })
                .map(|w| w[2] - z[2])
                .filter(|dp| dp.abs() > 1e-9)
                .collect();
            near.len() >= 2 && (near.iter().all(|d| *d > 0.0) || near.iter().all(|d| *d < 0.0))
        })
}

#[cfg(test)]
mod tests;
