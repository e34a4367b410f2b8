//! Tracing one branch: test functions, steps inside the box, locating events (folds, branch points, Hopf) on a step.

use super::*;

/// Test functions at a point of a branch with tangent t.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tests {
    fold: f64,
    bp: f64,
    trace: f64,
    det: f64,
}

pub(super) fn tests<Fm: Family>(sc: &Scaled<Fm>, z: &Vector3<f64>, t: &Vector3<f64>) -> Tests {
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
pub(super) struct Run {
    z: Vec<Vector3<f64>>,
    t: Vec<Vector3<f64>>,
    end: BranchEnd,
}

pub(super) fn inside<Fm: Family>(
    sc: &Scaled<Fm>,
    z: &Vector3<f64>,
    o: &ContinuationOptions,
) -> bool {
    let (x, _) = sc.y(z);
    (0..2).all(|d| {
        let pad = 0.02 * (o.hi[d] - o.lo[d]);
        x[d] >= o.lo[d] - pad && x[d] <= o.hi[d] + pad
    })
}

pub(super) fn p_in<Fm: Family>(sc: &Scaled<Fm>, z: &Vector3<f64>, o: &ContinuationOptions) -> bool {
    let p = z[2] * sc.s[2];
    let (lo, hi) = (o.p_range.0.min(o.p_range.1), o.p_range.0.max(o.p_range.1));
    p >= lo && p <= hi
}

pub(super) fn run<Fm: Family>(
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
pub(super) fn locate<Fm: Family>(
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
pub(super) fn events_on<Fm: Family>(
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
pub(super) fn both_ways<Fm: Family>(
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
pub(super) type Curve = (Vec<Vector3<f64>>, Vec<Vector3<f64>>, [BranchEnd; 2]);

/// Scaled distance from z to the polyline of a branch.
pub(super) fn distance_to(zs: &[Vector3<f64>], z: &Vector3<f64>) -> f64 {
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
