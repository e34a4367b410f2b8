//! Nullclines of a planar flow: the zero sets of each component `F_i(x) = 0`, every branch.
//!
//! Marching squares on a fine grid finds the crossings of each cell edge (linear
//! interpolation); the segments are joined into polylines through shared edges, so each
//! connected branch (open or closed) is one polyline. Each point is then moved onto the curve by
//! a few Gauss–Newton steps along the gradient, `x <- x - g(x) grad g / |grad g|^2`, with the
//! gradient taken from the Jacobian row — accepted only while |g| decreases and the point stays
//! within one cell of where it started (so a refinement never jumps to another branch).

use std::collections::HashMap;

use nalgebra::Vector2;
use serde::Serialize;

use crate::num::planar::PlanarFlow;

/// One connected branch of a nullcline.
#[derive(Debug, Clone, Serialize)]
pub struct Branch {
    /// Which component vanishes: 0 for `x1' = 0`, 1 for `x2' = 0`.
    pub component: usize,
    /// Points along the branch (refined onto the curve).
    pub points: Vec<[f64; 2]>,
    /// Whether the branch is a closed loop (first point repeated at the end).
    pub closed: bool,
    /// Largest |F_i| over the refined points.
    pub max_residual: f64,
}

/// Edge identifier: (i, k, dir) — edge from node (i, k) along x (dir 0) or along y (dir 1).
type Edge = (usize, usize, u8);

/// All branches of the nullcline `F_component = 0` in the box `[lo, hi]` on an `n x n` cell grid.
pub fn nullcline(
    sys: &impl PlanarFlow,
    component: usize,
    lo: [f64; 2],
    hi: [f64; 2],
    n: usize,
) -> Vec<Branch> {
    let n = n.max(2);
    let hx = (hi[0] - lo[0]) / n as f64;
    let hy = (hi[1] - lo[1]) / n as f64;
    let node = |i: usize, k: usize| [lo[0] + hx * i as f64, lo[1] + hy * k as f64];
    let g = |p: [f64; 2]| sys.flow(&Vector2::new(p[0], p[1]))[component];
    // values on the (n+1)^2 nodes; row-major in k (y) then i (x)
    let mut vals = vec![0.0; (n + 1) * (n + 1)];
    for k in 0..=n {
        for i in 0..=n {
            vals[k * (n + 1) + i] = g(node(i, k));
        }
    }
    let v = |i: usize, k: usize| vals[k * (n + 1) + i];
    let crossing = |e: Edge| -> [f64; 2] {
        let (i, k, d) = e;
        let (i2, k2) = if d == 0 { (i + 1, k) } else { (i, k + 1) };
        let (a, b) = (v(i, k), v(i2, k2));
        let t = if a.is_finite() && b.is_finite() && a != b {
            (a / (a - b)).clamp(0.0, 1.0)
        } else {
            0.5
        };
        let (p, q) = (node(i, k), node(i2, k2));
        [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]
    };
    let segs = cell_segments(&v, n);
    let cell = hx.abs().max(hy.abs());
    let mut branches = Vec::new();
    for (chain, closed) in chains(&segs) {
        let mut points = Vec::with_capacity(chain.len());
        let mut max_residual = 0.0f64;
        for e in chain {
            let p = refine(sys, component, crossing(e), cell);
            max_residual = max_residual.max(g(p).abs());
            points.push(p);
        }
        branches.push(Branch {
            component,
            points,
            closed,
            max_residual,
        });
    }
    branches
}

/// The marching-squares segments of the cells of an `n x n` grid with node values `v(i, k)`
/// (a node is "positive" if >= 0; cells with a non-finite corner are skipped; saddle cells are
/// resolved by the centre value).
fn cell_segments(v: &impl Fn(usize, usize) -> f64, n: usize) -> Vec<(Edge, Edge)> {
    let pos = |x: f64| x >= 0.0;
    let mut segs: Vec<(Edge, Edge)> = Vec::new();
    for k in 0..n {
        for i in 0..n {
            let (a, b, c, d) = (v(i, k), v(i + 1, k), v(i + 1, k + 1), v(i, k + 1));
            if !(a.is_finite() && b.is_finite() && c.is_finite() && d.is_finite()) {
                // the flow is undefined at a corner: no verdict on a sign change here
                continue;
            }
            let idx =
                (pos(a) as u8) | (pos(b) as u8) << 1 | (pos(c) as u8) << 2 | (pos(d) as u8) << 3;
            let bottom = (i, k, 0u8);
            let right = (i + 1, k, 1u8);
            let top = (i, k + 1, 0u8);
            let left = (i, k, 1u8);
            let centre_pos = pos(0.25 * (a + b + c + d));
            match idx {
                0 | 15 => {}
                1 | 14 => segs.push((left, bottom)),
                2 | 13 => segs.push((bottom, right)),
                3 | 12 => segs.push((left, right)),
                4 | 11 => segs.push((right, top)),
                6 | 9 => segs.push((bottom, top)),
                7 | 8 => segs.push((left, top)),
                5 => {
                    // a and c positive: saddle cell, resolved by the centre value
                    if centre_pos {
                        segs.push((left, top));
                        segs.push((bottom, right));
                    } else {
                        segs.push((left, bottom));
                        segs.push((right, top));
                    }
                }
                10 => {
                    if centre_pos {
                        segs.push((left, bottom));
                        segs.push((right, top));
                    } else {
                        segs.push((left, top));
                        segs.push((bottom, right));
                    }
                }
                _ => unreachable!("4-bit index"),
            }
        }
    }
    segs
}

/// The segments joined through shared edges into chains of edges (open ones first, then the
/// closed loops, in segment order so that the output is deterministic), each with whether it
/// closes on itself.
fn chains(segs: &[(Edge, Edge)]) -> Vec<(Vec<Edge>, bool)> {
    let mut adj: HashMap<Edge, Vec<usize>> = HashMap::new();
    for (s, (e1, e2)) in segs.iter().enumerate() {
        adj.entry(*e1).or_default().push(s);
        adj.entry(*e2).or_default().push(s);
    }
    let mut used = vec![false; segs.len()];
    let mut out = Vec::new();
    // start from open ends first (edges with a single segment), then the remaining loops;
    // iterate in segment order so the output is deterministic
    let mut starts: Vec<(Edge, usize)> = Vec::new();
    for (s, (e1, e2)) in segs.iter().enumerate() {
        for e in [e1, e2] {
            if adj[e].len() == 1 {
                starts.push((*e, s));
            }
        }
    }
    let loop_starts: Vec<(Edge, usize)> = segs
        .iter()
        .enumerate()
        .map(|(s, (e1, _))| (*e1, s))
        .collect();
    for (start_edge, s0) in starts.into_iter().chain(loop_starts) {
        if used[s0] {
            continue;
        }
        let mut chain = vec![start_edge];
        let mut edge = start_edge;
        let mut s = s0;
        let mut closed = false;
        loop {
            used[s] = true;
            let (e1, e2) = segs[s];
            let next = if e1 == edge { e2 } else { e1 };
            chain.push(next);
            if next == start_edge {
                closed = true;
                break;
            }
            match adj[&next].iter().find(|&&t| !used[t]) {
                Some(&t) => {
                    edge = next;
                    s = t;
                }
                None => break,
            }
        }
        out.push((chain, closed));
    }
    out
}

/// Move `p` onto `F_component = 0` by up to 4 gradient-Newton steps (see the module docs).
fn refine(sys: &impl PlanarFlow, component: usize, p: [f64; 2], cell: f64) -> [f64; 2] {
    let x0 = Vector2::new(p[0], p[1]);
    let mut x = x0;
    let mut r = sys.flow(&x)[component];
    if !r.is_finite() {
        return p;
    }
    for _ in 0..4 {
        if r == 0.0 {
            break;
        }
        let j = sys.jacobian(&x);
        let grad = Vector2::new(j[(component, 0)], j[(component, 1)]);
        let g2 = grad.norm_squared();
        if !g2.is_finite() || g2 <= 0.0 {
            break;
        }
        let xn = x - grad * (r / g2);
        let rn = sys.flow(&xn)[component];
        if rn.is_nan() || rn.abs() >= r.abs() || (xn - x0).norm() > cell {
            break;
        }
        x = xn;
        r = rn;
    }
    [x[0], x[1]]
}

/// Both nullclines: branches of `F_1 = 0` then of `F_2 = 0`.
pub fn nullclines(sys: &impl PlanarFlow, lo: [f64; 2], hi: [f64; 2], n: usize) -> Vec<Branch> {
    let mut b = nullcline(sys, 0, lo, hi, n);
    b.extend(nullcline(sys, 1, lo, hi, n));
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Matrix2;

    /// x' = x^2 + y^2 - 1 (a circle), y' = y - x^3 (one cubic branch).
    struct CircleCubic;
    impl PlanarFlow for CircleCubic {
        fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
            Vector2::new(x[0] * x[0] + x[1] * x[1] - 1.0, x[1] - x[0].powi(3))
        }
        fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
            Matrix2::new(2.0 * x[0], 2.0 * x[1], -3.0 * x[0] * x[0], 1.0)
        }
    }

    #[test]
    fn circle_is_one_closed_branch_on_the_curve() {
        let b = nullcline(&CircleCubic, 0, [-2.0, -2.0], [2.0, 2.0], 80);
        assert_eq!(b.len(), 1);
        assert!(b[0].closed);
        // refined to rounding level: |x|^2 - 1 with |x| ~ 1 and a few Newton steps
        assert!(b[0].max_residual < 1e-12, "{}", b[0].max_residual);
        for p in &b[0].points {
            assert!(((p[0] * p[0] + p[1] * p[1]).sqrt() - 1.0).abs() < 1e-12);
        }
        // a closed loop through ~4 * 80/4 * pi/... cells: at least one point per crossed cell
        assert!(b[0].points.len() > 60);
    }

    #[test]
    fn cubic_is_one_open_branch() {
        let b = nullcline(&CircleCubic, 1, [-2.0, -2.0], [2.0, 2.0], 80);
        assert_eq!(b.len(), 1);
        assert!(!b[0].closed);
        for p in &b[0].points {
            assert!((p[1] - p[0].powi(3)).abs() < 1e-12);
        }
    }

    /// x' = x (x - 1)(x + 1): three vertical lines, one on a grid line.
    struct ThreeLines;
    impl PlanarFlow for ThreeLines {
        fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
            Vector2::new(x[0] * (x[0] - 1.0) * (x[0] + 1.0), -x[1])
        }
        fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
            Matrix2::new(3.0 * x[0] * x[0] - 1.0, 0.0, 0.0, -1.0)
        }
    }

    #[test]
    fn lines_on_grid_nodes_are_found_once() {
        let b = nullcline(&ThreeLines, 0, [-2.0, -2.0], [2.0, 2.0], 40);
        assert_eq!(b.len(), 3);
        let mut xs: Vec<f64> = b.iter().map(|br| br.points[0][0]).collect();
        xs.sort_by(f64::total_cmp);
        for (x, want) in xs.iter().zip([-1.0, 0.0, 1.0]) {
            assert!((x - want).abs() < 1e-12);
        }
    }

    proptest::proptest! {
        /// A straight nullcline a x + b y + c = 0 crossing the box is one open branch whose
        /// points lie on the line to rounding level (linear g: one Newton step is exact).
        #[test]
        fn straight_lines_are_one_branch(
            a in -2.0f64..2.0, b in -2.0f64..2.0, c in -0.5f64..0.5,
        ) {
            proptest::prop_assume!(a.abs() + b.abs() > 0.2);
            struct Line(f64, f64, f64);
            impl PlanarFlow for Line {
                fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
                    Vector2::new(self.0 * x[0] + self.1 * x[1] + self.2, 1.0)
                }
                fn jacobian(&self, _: &Vector2<f64>) -> Matrix2<f64> {
                    Matrix2::new(self.0, self.1, 0.0, 0.0)
                }
            }
            // |c| / |(a, b)| < 0.5 / 0.2 * ... keep the line well inside the unit box
            proptest::prop_assume!(c.abs() / (a * a + b * b).sqrt() < 0.8);
            let br = nullcline(&Line(a, b, c), 0, [-1.0, -1.0], [1.0, 1.0], 50);
            proptest::prop_assert_eq!(br.len(), 1);
            proptest::prop_assert!(!br[0].closed);
            for p in &br[0].points {
                proptest::prop_assert!((a * p[0] + b * p[1] + c).abs() < 1e-13);
            }
        }
    }
}
