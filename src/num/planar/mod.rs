//! Phase-plane analysis of any planar flow `x' = F(x)`: all fixed points in a box (grid
//! seeding + damped Newton + dedupe) with their eigenvalues, eigenvectors and type (here),
//! every branch of the nullclines ([`nullclines`]), trajectories, saddle manifolds, basins and
//! linearisations ([`manifolds`]). Continuation of fixed points in a parameter is
//! [`crate::num::continuation`]. `crate::plot` draws what these compute.

pub mod manifolds;
pub mod nullclines;

use nalgebra::{Matrix2, Vector2};
use serde::Serialize;

use crate::num::eig2::{classify, eigen2, FixedPointType};
use crate::num::newton::{newton_static, NewtonOptions, NewtonResult};

/// A planar vector field with its Jacobian.
pub trait PlanarFlow: Sync {
    /// F(x).
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64>;
    /// dF/dx at x.
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64>;
}

/// A fixed point with its linearisation.
#[derive(Debug, Clone, Serialize)]
pub struct FixedPoint {
    pub x: [f64; 2],
    /// |F(x)| at the reported point.
    pub residual: f64,
    /// Eigenvalues of the Jacobian as [re, im], real ones sorted descending.
    pub eigenvalues: [[f64; 2]; 2],
    /// Real parts of the unit eigenvectors (for complex pairs: the real part of the first).
    pub eigenvectors: [[f64; 2]; 2],
    #[serde(rename = "type")]
    pub kind: FixedPointType,
}

impl FixedPoint {
    pub fn vector(&self) -> Vector2<f64> {
        Vector2::new(self.x[0], self.x[1])
    }
}

/// Linearise at a known root `x`.
pub fn fixed_point_at(sys: &impl PlanarFlow, x: &Vector2<f64>) -> FixedPoint {
    let j = sys.jacobian(x);
    let e = eigen2(&j);
    FixedPoint {
        x: [x[0], x[1]],
        residual: sys.flow(x).norm(),
        eigenvalues: e.values.map(|l| [l.re, l.im]),
        eigenvectors: e.vectors.map(|v| [v[0].re, v[1].re]),
        kind: classify(&j),
    }
}

/// Up to three plain Newton steps while the residual decreases: brings a root accepted at
/// |F| <= 1e-11 to rounding level, so merged duplicates and reported coordinates agree to ~1e-15.
fn polish(sys: &impl PlanarFlow, mut x: Vector2<f64>) -> Vector2<f64> {
    let mut res = sys.flow(&x).norm();
    for _ in 0..3 {
        let Some(inv) = sys.jacobian(&x).try_inverse() else {
            break;
        };
        let xn = x - inv * sys.flow(&x);
        let rn = sys.flow(&xn).norm();
        if rn.is_nan() || rn >= res {
            break;
        }
        x = xn;
        res = rn;
    }
    x
}

/// Damped Newton on the flow from `x0`: a fixed point F(x) = 0 with J the flow's Jacobian.
pub fn newton_fixed_point(
    sys: &impl PlanarFlow,
    x0: Vector2<f64>,
    opts: &NewtonOptions,
) -> crate::Result<NewtonResult<Vector2<f64>>> {
    newton_static(|x| (sys.flow(x), sys.jacobian(x)), x0, opts)
}

/// All fixed points found from a `grid x grid` lattice of Newton starts in the box `[lo, hi]`.
///
/// A root is kept if Newton converges to |F| <= 1e-11 (a few ulps of O(1) flows) inside the box
/// enlarged by 1%; roots closer than 1e-7 of the box diameter are merged (Newton converges
/// quadratically, so true duplicates agree to ~1e-12; distinct roots that close would be
/// numerically indistinguishable anyway). Sorted by x then y.
pub fn fixed_points_in_box(
    sys: &impl PlanarFlow,
    lo: [f64; 2],
    hi: [f64; 2],
    grid: usize,
) -> Vec<FixedPoint> {
    let grid = grid.max(2);
    let diam = ((hi[0] - lo[0]).powi(2) + (hi[1] - lo[1]).powi(2)).sqrt();
    let merge = 1e-7 * diam.max(1e-300);
    let pad = [0.01 * (hi[0] - lo[0]), 0.01 * (hi[1] - lo[1])];
    let opts = NewtonOptions {
        tol: 1e-11,
        max_iter: 60,
        min_damping: 1e-6,
    };
    let mut roots: Vec<Vector2<f64>> = Vec::new();
    for i in 0..grid {
        for k in 0..grid {
            let x0 = Vector2::new(
                lo[0] + (hi[0] - lo[0]) * i as f64 / (grid - 1) as f64,
                lo[1] + (hi[1] - lo[1]) * k as f64 / (grid - 1) as f64,
            );
            let Ok(r) = newton_fixed_point(sys, x0, &opts) else {
                continue;
            };
            let x = polish(sys, r.x);
            let inside = (0..2).all(|d| x[d] >= lo[d] - pad[d] && x[d] <= hi[d] + pad[d]);
            if inside && !roots.iter().any(|y| (y - x).norm() <= merge) {
                roots.push(x);
            }
        }
    }
    roots.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    roots.iter().map(|x| fixed_point_at(sys, x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x' = x - x^3, y' = -y: saddle at 0, stable nodes at (+-1, 0).
    struct Pitchfork;
    impl PlanarFlow for Pitchfork {
        fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
            Vector2::new(x[0] - x[0].powi(3), -x[1])
        }
        fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
            Matrix2::new(1.0 - 3.0 * x[0] * x[0], 0.0, 0.0, -1.0)
        }
    }

    #[test]
    fn pitchfork_has_three_fixed_points() {
        let fps = fixed_points_in_box(&Pitchfork, [-2.0, -2.0], [2.0, 2.0], 9);
        assert_eq!(fps.len(), 3);
        assert_eq!(fps[0].kind, FixedPointType::StableNode);
        assert_eq!(fps[1].kind, FixedPointType::Saddle);
        assert_eq!(fps[2].kind, FixedPointType::StableNode);
        assert!((fps[0].x[0] + 1.0).abs() < 1e-12);
        assert!((fps[1].eigenvalues[0][0] - 1.0).abs() < 1e-12);
    }
}
