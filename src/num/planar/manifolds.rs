//! Orbits of a planar flow for plotting: trajectories forward and backward in time with an
//! event stop on leaving the box, stable and unstable manifolds of saddles, basins of
//! attraction, and the linearised flow near fixed points.

use nalgebra::Vector2;
use rayon::prelude::*;
use serde::Serialize;

use crate::num::ode::{solve_until, OdeOptions};
use crate::num::planar::{FixedPoint, PlanarFlow};
use crate::Result;

/// Integrator settings for figures: a plotted curve needs ~1e-4 of the box (a fraction of a
/// pixel), so rtol 1e-7 / atol 1e-10 is ample; the step cap bounds the cost of stiff corners.
pub fn plot_ode_options() -> OdeOptions {
    OdeOptions {
        rtol: 1e-7,
        atol: 1e-10,
        max_steps: 20_000,
        ..Default::default()
    }
}

/// The box `[lo, hi]` enlarged by `frac` of its size on each side.
pub fn enlarge(lo: [f64; 2], hi: [f64; 2], frac: f64) -> ([f64; 2], [f64; 2]) {
    let d = [frac * (hi[0] - lo[0]), frac * (hi[1] - lo[1])];
    ([lo[0] - d[0], lo[1] - d[1]], [hi[0] + d[0], hi[1] + d[1]])
}

/// Signed distance-like function: negative inside the box, positive outside.
fn outside(y: &Vector2<f64>, lo: [f64; 2], hi: [f64; 2]) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for d in 0..2 {
        let s = hi[d] - lo[d];
        m = m.max((lo[d] - y[d]) / s).max((y[d] - hi[d]) / s);
    }
    m
}

/// Integrate `x' = F(x)` from `x0` for time `t` (negative: backward) until `t` or until the
/// orbit leaves the box `[lo, hi]` enlarged by 5%; returns points along the orbit (each
/// accepted step plus three dense-output points inside it, so curves are smooth).
pub fn orbit(
    sys: &impl PlanarFlow,
    x0: [f64; 2],
    t: f64,
    lo: [f64; 2],
    hi: [f64; 2],
) -> Result<Vec<[f64; 2]>> {
    let (elo, ehi) = enlarge(lo, hi, 0.05);
    let y0 = Vector2::new(x0[0], x0[1]);
    let (tr, _) = solve_until(
        |_, y| sys.flow(y),
        0.0,
        y0,
        t,
        |_, y| outside(y, elo, ehi),
        &plot_ode_options(),
    )?;
    let mut pts = Vec::with_capacity(4 * tr.t.len());
    for i in 0..tr.t.len() {
        pts.push([tr.y[i][0], tr.y[i][1]]);
        if i + 1 < tr.t.len() {
            for s in 1..4 {
                let tt = tr.t[i] + (tr.t[i + 1] - tr.t[i]) * s as f64 / 4.0;
                let y = tr.eval(tt);
                pts.push([y[0], y[1]]);
            }
        }
    }
    Ok(pts)
}

/// A sample trajectory through `start`.
#[derive(Debug, Clone, Serialize)]
pub struct Orbit {
    pub start: [f64; 2],
    /// From `start` forward in time.
    pub forward: Vec<[f64; 2]>,
    /// From `start` backward in time.
    pub backward: Vec<[f64; 2]>,
}

/// One branch of a saddle's invariant manifold.
#[derive(Debug, Clone, Serialize)]
pub struct Manifold {
    /// Index of the saddle in the fixed-point list.
    pub saddle: usize,
    /// Stable (approached forward in time) or unstable.
    pub stable: bool,
    /// +1 or -1: which side of the saddle along the eigenvector.
    pub side: i8,
    pub points: Vec<[f64; 2]>,
}

/// Stable and unstable manifolds of every saddle in `fps`: start a small step `delta` (1e-5
/// of the box diagonal, where the linear approximation errs by O(delta^2)) along each
/// eigenvector and integrate the unstable ones forward, the stable ones backward, until they
/// leave the box or after `t_max` plus the escape time ln(1/delta)/|lambda| from the saddle.
pub fn saddle_manifolds(
    sys: &impl PlanarFlow,
    fps: &[FixedPoint],
    lo: [f64; 2],
    hi: [f64; 2],
    t_max: f64,
) -> (Vec<Manifold>, Vec<String>) {
    let diam = ((hi[0] - lo[0]).powi(2) + (hi[1] - lo[1]).powi(2)).sqrt();
    let delta = 1e-5 * diam;
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for (s, fp) in fps.iter().enumerate() {
        if fp.kind != crate::num::eig2::FixedPointType::Saddle {
            continue;
        }
        // eigenvalues real, sorted descending: [0] unstable (> 0), [1] stable (< 0)
        for (k, stable) in [(0usize, false), (1usize, true)] {
            let lambda = fp.eigenvalues[k][0];
            let v = fp.eigenvectors[k];
            let t_escape = (1.0 / 1e-5f64).ln() / lambda.abs().max(1e-12);
            let t = (t_max + t_escape).min(1e6);
            for side in [1i8, -1i8] {
                let sd = side as f64;
                let x0 = [fp.x[0] + sd * delta * v[0], fp.x[1] + sd * delta * v[1]];
                let dir = if stable { -t } else { t };
                match orbit(sys, x0, dir, lo, hi) {
                    Ok(mut pts) => {
                        pts.insert(0, fp.x);
                        out.push(Manifold {
                            saddle: s,
                            stable,
                            side,
                            points: pts,
                        });
                    }
                    Err(e) => failed.push(format!(
                        "manifold of saddle {s} ({}, side {side}): {e}",
                        if stable { "stable" } else { "unstable" }
                    )),
                }
            }
        }
    }
    (out, failed)
}

/// Basins of attraction on an `n x n` grid of starts (cell centres).
#[derive(Debug, Clone, Serialize)]
pub struct Basins {
    pub n: usize,
    /// Indices (into the fixed-point list) of the stable fixed points, in label order.
    pub attractors: Vec<usize>,
    /// Row-major in y then x: the label (position in `attractors`) each start converges to,
    /// or -1 if it leaves the box or reaches none within the time limit.
    pub label: Vec<i32>,
}

/// Classify an `n x n` grid of starts by the stable fixed point they reach: integrate forward
/// until within 1% of the box diagonal of a stable fixed point (an event), leaving the box, or
/// time `t_max`. Starts run in parallel; the result does not depend on the thread count.
pub fn basins(
    sys: &impl PlanarFlow,
    fps: &[FixedPoint],
    lo: [f64; 2],
    hi: [f64; 2],
    n: usize,
    t_max: f64,
) -> Basins {
    let attractors: Vec<usize> = (0..fps.len())
        .filter(|&i| fps[i].kind.is_stable())
        .collect();
    let centres: Vec<Vector2<f64>> = attractors.iter().map(|&i| fps[i].vector()).collect();
    let diam = ((hi[0] - lo[0]).powi(2) + (hi[1] - lo[1]).powi(2)).sqrt();
    let r = 0.01 * diam;
    let (elo, ehi) = enlarge(lo, hi, 0.05);
    let opts = plot_ode_options();
    let label: Vec<i32> = (0..n * n)
        .into_par_iter()
        .map(|idx| {
            if centres.is_empty() {
                return -1;
            }
            let (i, k) = (idx % n, idx / n);
            let y0 = Vector2::new(
                lo[0] + (hi[0] - lo[0]) * (i as f64 + 0.5) / n as f64,
                lo[1] + (hi[1] - lo[1]) * (k as f64 + 0.5) / n as f64,
            );
            let nearest = |y: &Vector2<f64>| {
                centres
                    .iter()
                    .enumerate()
                    .map(|(j, c)| (j, (y - c).norm()))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or((0, f64::INFINITY))
            };
            let res = solve_until(
                |_, y| sys.flow(y),
                0.0,
                y0,
                t_max,
                |_, y| {
                    let near = nearest(y).1 - r;
                    let out = outside(y, elo, ehi);
                    // negative while inside the box and away from every attractor
                    -(near.min(-out))
                },
                &opts,
            );
            match res {
                Ok((tr, _)) => {
                    let (_, y) = tr.last();
                    let (j, d) = nearest(&y);
                    if d <= r * 1.001 {
                        j as i32
                    } else {
                        -1
                    }
                }
                Err(_) => -1,
            }
        })
        .collect();
    Basins {
        n,
        attractors,
        label,
    }
}

/// Orbits of the linearisation `y' = J (y - x*)` near each hyperbolic fixed point: eight starts
/// on an ellipse of radii `frac` of the box, integrated both ways until they leave the ellipse
/// scaled by 1.5 or come within 0.1 of its size of x*.
pub fn linearisation(
    sys: &impl PlanarFlow,
    fps: &[FixedPoint],
    lo: [f64; 2],
    hi: [f64; 2],
    frac: f64,
) -> Vec<Vec<[f64; 2]>> {
    let rx = frac * (hi[0] - lo[0]);
    let ry = frac * (hi[1] - lo[1]);
    let opts = plot_ode_options();
    let mut out = Vec::new();
    for fp in fps {
        if fp.kind == crate::num::eig2::FixedPointType::Degenerate {
            continue;
        }
        let rate = fp.eigenvalues[0][0]
            .abs()
            .max(fp.eigenvalues[1][0].abs())
            .max(fp.eigenvalues[0][1].abs());
        if rate.is_nan() || rate <= 0.0 {
            continue;
        }
        let j = sys.jacobian(&fp.vector());
        let ell = |y: &Vector2<f64>| {
            let d = y - fp.vector();
            ((d[0] / rx).powi(2) + (d[1] / ry).powi(2)).sqrt()
        };
        for m in 0..8 {
            let a = std::f64::consts::PI * (m as f64 + 0.5) / 4.0;
            let y0 = fp.vector() + Vector2::new(rx * a.cos(), ry * a.sin());
            let mut line: Vec<[f64; 2]> = Vec::new();
            for t in [-20.0 / rate, 20.0 / rate] {
                let res = solve_until(
                    |_, y| j * (y - fp.vector()),
                    0.0,
                    y0,
                    t,
                    |_, y| {
                        let e = ell(y);
                        // negative in the annulus 0.1 < e < 1.5
                        (e - 1.5).max(0.1 - e)
                    },
                    &opts,
                );
                if let Ok((tr, _)) = res {
                    let pts: Vec<[f64; 2]> = tr.y.iter().map(|y| [y[0], y[1]]).collect();
                    if t < 0.0 {
                        line.extend(pts.into_iter().rev());
                    } else {
                        line.extend(pts.into_iter().skip(1));
                    }
                }
            }
            if line.len() > 1 {
                out.push(line);
            }
        }
    }
    out
}
