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

/// Test functions at a point of a branch with tangent t.
#[derive(Debug, Clone, Copy)]
struct Tests {
    fold: f64,
    bp: f64,
    trace: f64,
    det: f64,
}

fn tests<Fm: Family>(sc: &Scaled<Fm>, z: &Vector3<f64>, t: &Vector3<f64>) -> Tests {
    let (x, p) = sc.y(z);
    let j = sc.fam.jacobian(&x, p);
    Tests {
        fold: t[2],
        bp: sc.null(z).dot(t),
        trace: j.trace(),
        det: j.determinant(),
    }
}

/// One direction of a branch from a point on it.
struct Run {
    z: Vec<Vector3<f64>>,
    t: Vec<Vector3<f64>>,
    end: BranchEnd,
}

fn inside<Fm: Family>(sc: &Scaled<Fm>, z: &Vector3<f64>, o: &ContinuationOptions) -> bool {
    let (x, _) = sc.y(z);
    (0..2).all(|d| {
        let pad = 0.02 * (o.hi[d] - o.lo[d]);
        x[d] >= o.lo[d] - pad && x[d] <= o.hi[d] + pad
    })
}

fn p_in<Fm: Family>(sc: &Scaled<Fm>, z: &Vector3<f64>, o: &ContinuationOptions) -> bool {
    let p = z[2] * sc.s[2];
    let (lo, hi) = (o.p_range.0.min(o.p_range.1), o.p_range.0.max(o.p_range.1));
    p >= lo && p <= hi
}

fn run<Fm: Family>(
    sc: &Scaled<Fm>,
    z0: Vector3<f64>,
    t0: Vector3<f64>,
    o: &ContinuationOptions,
) -> Run {
    let mut zs = vec![z0];
    let mut ts = vec![t0];
    let mut h = o.h0;
    let (plo, phi) = (o.p_range.0.min(o.p_range.1), o.p_range.0.max(o.p_range.1));
    for _ in 0..o.max_steps {
        let z = *zs.last().expect("non-empty");
        let t = *ts.last().expect("non-empty");
        let step = loop {
            if h < o.h_min {
                break None;
            }
            let pred = z + t * h;
            match sc.correct(&pred, &t, o.tol) {
                Some((zn, it)) => match sc.tangent(&zn, &t) {
                    Some(tn) if tn.dot(&t).clamp(-1.0, 1.0).acos() <= o.max_angle => {
                        break Some((zn, tn, it))
                    }
                    _ => h *= 0.5,
                },
                None => h *= 0.5,
            }
        };
        let Some((zn, tn, it)) = step else {
            return Run {
                z: zs,
                t: ts,
                end: BranchEnd::StepUnderflow,
            };
        };
        // leaving the parameter interval: end exactly on its bound
        if !p_in(sc, &zn, o) {
            let pb = if zn[2] * sc.s[2] > phi { phi } else { plo };
            let frac = (pb / sc.s[2] - z[2]) / (zn[2] - z[2]);
            let mut zb = z + (zn - z) * frac;
            zb[2] = pb / sc.s[2];
            if let Some(zb) = sc.correct_at_p(&zb, o.tol) {
                // (not again if the branch started on the bound)
                if (zb - z).norm() > 1e-12 {
                    let tb = sc.tangent(&zb, &t).unwrap_or(t);
                    zs.push(zb);
                    ts.push(tb);
                }
            }
            return Run {
                z: zs,
                t: ts,
                end: BranchEnd::ParameterBound,
            };
        }
        zs.push(zn);
        ts.push(tn);
        if !inside(sc, &zn, o) {
            return Run {
                z: zs,
                t: ts,
                end: BranchEnd::LeftBox,
            };
        }
        if zs.len() > 3 && (zn - zs[0]).norm() < 0.5 * h && tn.dot(&ts[0]) > 0.0 {
            return Run {
                z: zs,
                t: ts,
                end: BranchEnd::Closed,
            };
        }
        if it <= 3 && tn.dot(&t).clamp(-1.0, 1.0).acos() < 0.5 * o.max_angle {
            h = (h * 1.5).min(o.h_max);
        }
    }
    Run {
        z: zs,
        t: ts,
        end: BranchEnd::StepCap,
    }
}

/// Bisect along the arc from (z, t) for a sign change of `f` between s = 0 and s = h.
fn locate<Fm: Family>(
    sc: &Scaled<Fm>,
    z: &Vector3<f64>,
    t: &Vector3<f64>,
    h: f64,
    f: impl Fn(&Vector3<f64>, &Vector3<f64>) -> f64,
    o: &ContinuationOptions,
) -> Vector3<f64> {
    let at = |s: f64| -> Option<(Vector3<f64>, Vector3<f64>)> {
        let (zn, _) = sc.correct(&(z + t * s), t, o.tol)?;
        let tn = sc.tangent(&zn, t).unwrap_or(*t);
        Some((zn, tn))
    };
    let (mut a, mut b) = (0.0, h);
    let fa0 = f(z, t);
    let mut best = *z;
    for _ in 0..200 {
        if b - a <= o.locate_tol {
            break;
        }
        // the midpoint, or beside it where the corrector is singular (exactly on a branch
        // point the bordered Jacobian loses rank)
        let Some((m, (zm, tm))) = [0.5, 0.45, 0.55, 0.3, 0.7]
            .iter()
            .map(|w| a + w * (b - a))
            .find_map(|m| at(m).map(|r| (m, r)))
        else {
            break;
        };
        best = zm;
        let fm = f(&zm, &tm);
        if fm == 0.0 {
            return zm;
        }
        if (fm > 0.0) == (fa0 > 0.0) {
            a = m;
        } else {
            b = m;
        }
    }
    best
}

/// Events on one branch (points and tangents ordered along the arc).
fn events_on<Fm: Family>(
    sc: &Scaled<Fm>,
    zs: &[Vector3<f64>],
    ts: &[Vector3<f64>],
    o: &ContinuationOptions,
) -> Vec<(EventKind, Vector3<f64>, Vector3<f64>)> {
    let mut out = Vec::new();
    for k in 0..zs.len().saturating_sub(1) {
        let (a, b) = (tests(sc, &zs[k], &ts[k]), tests(sc, &zs[k + 1], &ts[k + 1]));
        // the arclength of this step: the predictor length that lands on zs[k+1]
        let h = ts[k].dot(&(zs[k + 1] - zs[k]));
        if h <= 0.0 {
            continue;
        }
        let bp = a.bp * b.bp < 0.0;
        let fold = a.fold * b.fold < 0.0;
        if bp {
            let z = locate(sc, &zs[k], &ts[k], h, |z, t| sc.null(z).dot(t), o);
            // the second branch tangent: the null vector of A orthogonal to this branch's
            // tangent, i.e. r x t with r the dominant row of A (rank one at the point)
            // (a direction to step off along, not the crossing branch's tangent: pitchfork or
            // transcritical is decided once both branches are known, see `classify_branch_points`)
            let a_m = sc.a(&z);
            let r1 = Vector3::new(a_m[(0, 0)], a_m[(0, 1)], a_m[(0, 2)]);
            let r2 = Vector3::new(a_m[(1, 0)], a_m[(1, 1)], a_m[(1, 2)]);
            let r = if r1.norm() >= r2.norm() { r1 } else { r2 };
            let t2 = r.cross(&ts[k]).normalize();
            out.push((EventKind::BranchPoint { pitchfork: false }, z, t2));
        } else if fold {
            let z = locate(sc, &zs[k], &ts[k], h, |_, t| t[2], o);
            out.push((EventKind::Fold, z, Vector3::zeros()));
        }
        if a.det > 0.0 && b.det > 0.0 && a.trace * b.trace < 0.0 {
            let z = locate(
                sc,
                &zs[k],
                &ts[k],
                h,
                |z, _| {
                    let (x, p) = sc.y(z);
                    sc.fam.jacobian(&x, p).trace()
                },
                o,
            );
            let (x, p) = sc.y(&z);
            let omega = sc.fam.jacobian(&x, p).determinant().max(0.0).sqrt();
            out.push((EventKind::Hopf { omega }, z, Vector3::zeros()));
        }
    }
    out
}

/// Both directions from a point on a branch, joined: the backward run reversed, then the
/// forward run. `t0` is the forward direction.
fn both_ways<Fm: Family>(
    sc: &Scaled<Fm>,
    z0: Vector3<f64>,
    t0: Vector3<f64>,
    o: &ContinuationOptions,
) -> (Vec<Vector3<f64>>, Vec<Vector3<f64>>, [BranchEnd; 2]) {
    let fwd = run(sc, z0, t0, o);
    let bwd = run(sc, z0, -t0, o);
    let mut z: Vec<Vector3<f64>> = bwd.z.iter().rev().copied().collect();
    let mut t: Vec<Vector3<f64>> = bwd.t.iter().rev().map(|v| -v).collect();
    z.extend_from_slice(&fwd.z[1..]);
    t.extend_from_slice(&fwd.t[1..]);
    (z, t, [bwd.end, fwd.end])
}

/// A computed branch in scaled coordinates: points, tangents, how its ends came about.
type Curve = (Vec<Vector3<f64>>, Vec<Vector3<f64>>, [BranchEnd; 2]);

/// Scaled distance from z to the polyline of a branch.
fn distance_to(zs: &[Vector3<f64>], z: &Vector3<f64>) -> f64 {
    if zs.len() == 1 {
        return (zs[0] - z).norm();
    }
    zs.windows(2)
        .map(|w| {
            let d = w[1] - w[0];
            let l2 = d.norm_squared();
            let s = if l2 > 0.0 {
                ((z - w[0]).dot(&d) / l2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            (w[0] + d * s - z).norm()
        })
        .fold(f64::INFINITY, f64::min)
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
mod tests {
    use super::*;
    use crate::num::eig2::FixedPointType;

    /// x' = p - x^2, y' = -y.
    struct Fold;
    impl Family for Fold {
        fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
            Vector2::new(p - x[0] * x[0], -x[1])
        }
        fn jacobian(&self, x: &Vector2<f64>, _: f64) -> Matrix2<f64> {
            Matrix2::new(-2.0 * x[0], 0.0, 0.0, -1.0)
        }
    }

    /// x' = p x - x^3, y' = -y.
    struct Pitchfork;
    impl Family for Pitchfork {
        fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
            Vector2::new(p * x[0] - x[0].powi(3), -x[1])
        }
        fn jacobian(&self, x: &Vector2<f64>, p: f64) -> Matrix2<f64> {
            Matrix2::new(p - 3.0 * x[0] * x[0], 0.0, 0.0, -1.0)
        }
    }

    /// x' = p x - x^2, y' = -y.
    struct Transcritical;
    impl Family for Transcritical {
        fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
            Vector2::new(p * x[0] - x[0] * x[0], -x[1])
        }
        fn jacobian(&self, x: &Vector2<f64>, p: f64) -> Matrix2<f64> {
            Matrix2::new(p - 2.0 * x[0], 0.0, 0.0, -1.0)
        }
    }

    /// Hopf normal form x' = p x - y - x r^2, y' = x + p y - y r^2.
    struct Hopf;
    impl Family for Hopf {
        fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
            let r2 = x.norm_squared();
            Vector2::new(p * x[0] - x[1] - x[0] * r2, x[0] + p * x[1] - x[1] * r2)
        }
        fn jacobian(&self, x: &Vector2<f64>, p: f64) -> Matrix2<f64> {
            let (a, b) = (x[0], x[1]);
            let r2 = a * a + b * b;
            Matrix2::new(
                p - r2 - 2.0 * a * a,
                -1.0 - 2.0 * a * b,
                1.0 - 2.0 * a * b,
                p - r2 - 2.0 * b * b,
            )
        }
    }

    fn opts(p: (f64, f64)) -> ContinuationOptions {
        ContinuationOptions::new(p, [-1.5, -1.0], [1.5, 1.0])
    }

    // Location tolerance: bisection to 1e-10 scaled arclength, i.e. ~1e-10 x (scale) in p
    // and x; 1e-8 leaves a hundredfold margin for the corrector's 1e-11 residual.
    const LOC: f64 = 1e-8;

    #[test]
    fn fold_normal_form_is_located_at_the_origin() {
        let d =
            continue_branches(&Fold, &[(Vector2::new(1.0, 0.0), 1.0)], &opts((-1.0, 1.0))).unwrap();
        assert_eq!(d.branches.len(), 1);
        assert_eq!(d.events.len(), 1, "{:?}", d.events);
        let e = &d.events[0];
        assert_eq!(e.kind, EventKind::Fold);
        assert!(e.p.abs() < LOC && e.x[0].abs() < 1e-4, "{e:?}");
        // the branch runs from x = 1 to x = -1 at p = 1 through the fold, every point on p = x^2,
        // stable for x > 0 and a saddle for x < 0
        let b = &d.branches[0];
        assert_eq!(b.ends, [BranchEnd::ParameterBound; 2]);
        let (first, last) = (&b.points[0], b.points.last().unwrap());
        assert!((first.p - 1.0).abs() < 1e-12 && (last.p - 1.0).abs() < 1e-12);
        assert!((first.point.x[0] + last.point.x[0]).abs() < 1e-9);
        for q in &b.points {
            assert!((q.p - q.point.x[0].powi(2)).abs() < 1e-10);
            if q.point.x[0] > 1e-6 {
                assert!(q.point.kind.is_stable());
            } else if q.point.x[0] < -1e-6 {
                assert_eq!(q.point.kind, FixedPointType::Saddle);
            }
        }
    }

    #[test]
    fn pitchfork_is_located_and_both_branches_are_found() {
        let d =
            continue_branches(&Pitchfork, &[(Vector2::zeros(), -1.0)], &opts((-1.0, 1.0))).unwrap();
        assert_eq!(d.branches.len(), 2, "trivial branch and the parabola");
        let pf: Vec<_> = d
            .events
            .iter()
            .filter(|e| e.kind == EventKind::BranchPoint { pitchfork: true })
            .collect();
        assert_eq!(pf.len(), 1, "{:?}", d.events);
        assert!(pf[0].p.abs() < LOC && pf[0].x[0].abs() < LOC);
        assert_eq!(pf[0].branches, vec![0, 1]);
        // no spurious folds: the tip of the parabola is the branch point itself
        assert_eq!(d.events.len(), 1, "{:?}", d.events);
        let par = &d.branches[1];
        for q in &par.points {
            assert!((q.p - q.point.x[0].powi(2)).abs() < 1e-10, "{q:?}");
        }
        let xs: Vec<f64> = par.points.iter().map(|q| q.point.x[0]).collect();
        let (mn, mx) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        assert!(
            (mx - 1.0).abs() < 1e-9 && (mn + 1.0).abs() < 1e-9,
            "{mn} {mx}"
        );
        // the trivial branch: stable for p < 0, a saddle for p > 0
        for q in &d.branches[0].points {
            assert!(q.point.x[0].abs() < 1e-12);
            if q.p < -1e-6 {
                assert!(q.point.kind.is_stable());
            } else if q.p > 1e-6 {
                assert_eq!(q.point.kind, FixedPointType::Saddle);
            }
        }
    }

    #[test]
    fn transcritical_is_a_branch_point_but_not_a_pitchfork() {
        let d = continue_branches(
            &Transcritical,
            &[(Vector2::zeros(), -0.5)],
            &opts((-1.0, 1.0)),
        )
        .unwrap();
        assert_eq!(d.branches.len(), 2);
        let e: Vec<_> = d.events.iter().collect();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].kind, EventKind::BranchPoint { pitchfork: false });
        assert!(e[0].p.abs() < LOC, "{e:?}");
        for q in &d.branches[1].points {
            assert!((q.point.x[0] - q.p).abs() < 1e-10);
        }
    }

    #[test]
    fn hopf_normal_form_is_located_with_its_frequency() {
        let d = continue_branches(&Hopf, &[(Vector2::zeros(), -0.5)], &opts((-0.5, 0.5))).unwrap();
        assert_eq!(d.events.len(), 1, "{:?}", d.events);
        let e = &d.events[0];
        let EventKind::Hopf { omega } = e.kind else {
            panic!("{e:?}")
        };
        assert!(e.p.abs() < LOC && (omega - 1.0).abs() < 1e-8, "{e:?}");
        assert_eq!(
            d.branches[0].points[0].point.kind,
            FixedPointType::StableFocus
        );
        assert_eq!(
            d.branches[0].points.last().unwrap().point.kind,
            FixedPointType::UnstableFocus
        );
    }

    #[test]
    fn a_flow_family_by_closure_and_bad_input() {
        struct Lin(f64);
        impl PlanarFlow for Lin {
            fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
                Vector2::new(self.0 - x[0], -x[1])
            }
            fn jacobian(&self, _: &Vector2<f64>) -> Matrix2<f64> {
                Matrix2::new(-1.0, 0.0, 0.0, -1.0)
            }
        }
        let fam = FlowFamily(|p: f64| Lin(p));
        let d =
            continue_branches(&fam, &[(Vector2::new(0.2, 0.0), 0.2)], &opts((-1.0, 1.0))).unwrap();
        assert_eq!(d.branches.len(), 1);
        assert!(d.events.is_empty());
        // x* = p along the whole interval, F_p by differences exact for a linear family
        for q in &d.branches[0].points {
            assert!((q.point.x[0] - q.p).abs() < 1e-10);
        }
        assert_eq!(d.branches[0].ends, [BranchEnd::ParameterBound; 2]);
        let e = continue_branches(&fam, &[(Vector2::new(0.5, 0.0), 0.2)], &opts((-1.0, 1.0)))
            .unwrap_err();
        assert!(
            matches!(e, Error::Requirement(ref m) if m.contains("not an equilibrium")),
            "{e}"
        );
        let e = continue_branches(&fam, &[], &opts((1.0, -1.0))).unwrap_err();
        assert!(matches!(e, Error::Requirement(_)));
    }
}
