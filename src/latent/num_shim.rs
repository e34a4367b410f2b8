//! TEMPORARY stand-in for `crate::num` (not yet on main when this branch started). It has the
//! exact signatures of the shared API in COMMON.md so the latent code switches to `crate::num`
//! by changing one `use` line per file; this file is then deleted.
#![allow(dead_code)]

pub mod ode {
    use crate::{Error, Result};
    use nalgebra::SVector;

    #[derive(Debug, Clone)]
    pub struct OdeOptions {
        pub rtol: f64,
        pub atol: f64,
        pub h0: f64,
        pub h_max: f64,
        pub max_steps: usize,
    }
    impl Default for OdeOptions {
        fn default() -> Self {
            OdeOptions {
                rtol: 1e-9,
                atol: 1e-12,
                h0: 0.0,
                h_max: f64::INFINITY,
                max_steps: 1_000_000,
            }
        }
    }

    #[derive(Debug, Clone)]
    pub struct Trajectory<const D: usize> {
        pub t: Vec<f64>,
        pub y: Vec<SVector<f64, D>>,
        dy: Vec<SVector<f64, D>>,
    }

    impl<const D: usize> Trajectory<D> {
        pub fn eval(&self, t: f64) -> SVector<f64, D> {
            let n = self.t.len();
            if n == 1 {
                return self.y[0];
            }
            let fwd = self.t[n - 1] >= self.t[0];
            let (lo, hi) = if fwd {
                (self.t[0], self.t[n - 1])
            } else {
                (self.t[n - 1], self.t[0])
            };
            let t = t.clamp(lo, hi);
            // index i with t in [t_i, t_{i+1}]
            let i = if fwd {
                self.t.partition_point(|&s| s <= t).clamp(1, n - 1) - 1
            } else {
                self.t.partition_point(|&s| s >= t).clamp(1, n - 1) - 1
            };
            let (t0, t1) = (self.t[i], self.t[i + 1]);
            let h = t1 - t0;
            let s = (t - t0) / h;
            let (y0, y1, f0, f1) = (self.y[i], self.y[i + 1], self.dy[i], self.dy[i + 1]);
            let h00 = 2.0 * s * s * s - 3.0 * s * s + 1.0;
            let h10 = s * s * s - 2.0 * s * s + s;
            let h01 = -2.0 * s * s * s + 3.0 * s * s;
            let h11 = s * s * s - s * s;
            y0 * h00 + f0 * (h10 * h) + y1 * h01 + f1 * (h11 * h)
        }
        pub fn last(&self) -> (f64, SVector<f64, D>) {
            (*self.t.last().unwrap(), *self.y.last().unwrap())
        }
    }

    pub fn solve<const D: usize>(
        f: impl FnMut(f64, &SVector<f64, D>) -> SVector<f64, D>,
        t0: f64,
        y0: SVector<f64, D>,
        t1: f64,
        opts: &OdeOptions,
    ) -> Result<Trajectory<D>> {
        solve_until(f, t0, y0, t1, |_, _| 1.0, opts).map(|r| r.0)
    }

    pub fn solve_until<const D: usize>(
        mut f: impl FnMut(f64, &SVector<f64, D>) -> SVector<f64, D>,
        t0: f64,
        y0: SVector<f64, D>,
        t_max: f64,
        mut event: impl FnMut(f64, &SVector<f64, D>) -> f64,
        opts: &OdeOptions,
    ) -> Result<(Trajectory<D>, Option<f64>)> {
        const C: [f64; 7] = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
        const A: [[f64; 6]; 7] = [
            [0.0; 6],
            [0.2, 0.0, 0.0, 0.0, 0.0, 0.0],
            [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
            [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
            [
                19372.0 / 6561.0,
                -25360.0 / 2187.0,
                64448.0 / 6561.0,
                -212.0 / 729.0,
                0.0,
                0.0,
            ],
            [
                9017.0 / 3168.0,
                -355.0 / 33.0,
                46732.0 / 5247.0,
                49.0 / 176.0,
                -5103.0 / 18656.0,
                0.0,
            ],
            [
                35.0 / 384.0,
                0.0,
                500.0 / 1113.0,
                125.0 / 192.0,
                -2187.0 / 6784.0,
                11.0 / 84.0,
            ],
        ];
        const E: [f64; 7] = [
            71.0 / 57600.0,
            0.0,
            -71.0 / 16695.0,
            71.0 / 1920.0,
            -17253.0 / 339200.0,
            22.0 / 525.0,
            -1.0 / 40.0,
        ];
        let dir = if t_max >= t0 { 1.0 } else { -1.0 };
        let span = (t_max - t0).abs();
        let mut t = t0;
        let mut y = y0;
        let mut k = [SVector::<f64, D>::zeros(); 7];
        k[0] = f(t, &y);
        let mut traj = Trajectory {
            t: vec![t],
            y: vec![y],
            dy: vec![k[0]],
        };
        if span == 0.0 {
            return Ok((traj, None));
        }
        let mut g_prev = event(t, &y);
        let mut h = if opts.h0 > 0.0 {
            opts.h0
        } else {
            (span * 1e-3).min(1e-2)
        };
        let mut steps = 0;
        while (t_max - t) * dir > 0.0 {
            steps += 1;
            if steps > opts.max_steps {
                return Err(Error::Ode {
                    t,
                    reason: "step cap".into(),
                });
            }
            h = h.min(opts.h_max).min((t_max - t).abs());
            let hs = h * dir;
            for s in 1..7 {
                let mut ys = y;
                for j in 0..s {
                    if A[s][j] != 0.0 {
                        ys += k[j] * (hs * A[s][j]);
                    }
                }
                k[s] = f(t + C[s] * hs, &ys);
            }
            let mut y_new = y;
            for j in 0..6 {
                y_new += k[j] * (hs * A[6][j]);
            }
            let mut err = 0.0f64;
            for i in 0..D {
                let mut e = 0.0;
                for j in 0..7 {
                    e += E[j] * k[j][i];
                }
                let sc = opts.atol + opts.rtol * y[i].abs().max(y_new[i].abs());
                err = err.max((e * hs / sc).abs());
            }
            if !err.is_finite() {
                h *= 0.1;
                if h < 1e-14 * span {
                    return Err(Error::Ode {
                        t,
                        reason: "non-finite".into(),
                    });
                }
                continue;
            }
            if err <= 1.0 {
                let t_new = if (t_max - t).abs() <= h {
                    t_max
                } else {
                    t + hs
                };
                traj.t.push(t_new);
                traj.y.push(y_new);
                traj.dy.push(k[6]);
                let g = event(t_new, &y_new);
                if g_prev * g < 0.0 || (g == 0.0 && g_prev != 0.0) {
                    // bisection on dense output
                    let (mut a, mut b) = (t, t_new);
                    let ga = g_prev;
                    for _ in 0..200 {
                        let m = 0.5 * (a + b);
                        let gm = event(m, &traj.eval(m));
                        if gm * ga > 0.0 {
                            a = m;
                        } else {
                            b = m;
                        }
                        if (b - a).abs() < 1e-14 * (1.0 + b.abs()) {
                            break;
                        }
                    }
                    let te = 0.5 * (a + b);
                    let ye = traj.eval(te);
                    let fe = f(te, &ye);
                    let n = traj.t.len();
                    traj.t[n - 1] = te;
                    traj.y[n - 1] = ye;
                    traj.dy[n - 1] = fe;
                    return Ok((traj, Some(te)));
                }
                g_prev = g;
                t = t_new;
                y = y_new;
                k[0] = k[6];
                h *= (0.9 * err.max(1e-10).powf(-0.2)).min(5.0);
            } else {
                h *= (0.9 * err.powf(-0.2)).max(0.2);
                if h < 1e-14 * span {
                    return Err(Error::Ode {
                        t,
                        reason: "step underflow".into(),
                    });
                }
            }
        }
        Ok((traj, None))
    }
}

pub mod newton {
    use crate::{Error, Result};
    use nalgebra::{SMatrix, SVector};

    #[derive(Debug, Clone)]
    pub struct NewtonOptions {
        pub tol: f64,
        pub max_iter: usize,
        pub min_damping: f64,
    }
    impl Default for NewtonOptions {
        fn default() -> Self {
            NewtonOptions {
                tol: 1e-12,
                max_iter: 100,
                min_damping: 1e-8,
            }
        }
    }
    #[derive(Debug, Clone)]
    pub struct NewtonResult<V> {
        pub x: V,
        pub residual: f64,
        pub iterations: usize,
    }
    pub fn newton_static<const D: usize>(
        mut f: impl FnMut(&SVector<f64, D>) -> (SVector<f64, D>, SMatrix<f64, D, D>),
        x0: SVector<f64, D>,
        opts: &NewtonOptions,
    ) -> Result<NewtonResult<SVector<f64, D>>> {
        let mut x = x0;
        let (mut fx, mut j) = f(&x);
        for it in 0..opts.max_iter {
            let r = fx.norm();
            if r <= opts.tol {
                return Ok(NewtonResult {
                    x,
                    residual: r,
                    iterations: it,
                });
            }
            let jd = nalgebra::DMatrix::from_iterator(D, D, j.iter().cloned());
            let fd = nalgebra::DVector::from_iterator(D, fx.iter().map(|v| -v));
            let dx = match jd.lu().solve(&fd) {
                Some(d) => SVector::<f64, D>::from_iterator(d.iter().cloned()),
                None => {
                    return Err(Error::Singular {
                        context: "newton".into(),
                        pivot: 0.0,
                        threshold: 0.0,
                    })
                }
            };
            let mut a = 1.0;
            loop {
                let xn = x + dx * a;
                let (fn_, jn) = f(&xn);
                if fn_.norm() < r || a < opts.min_damping {
                    x = xn;
                    fx = fn_;
                    j = jn;
                    break;
                }
                a *= 0.5;
            }
        }
        let r = fx.norm();
        if r <= opts.tol {
            return Ok(NewtonResult {
                x,
                residual: r,
                iterations: opts.max_iter,
            });
        }
        Err(Error::NoConvergence {
            solver: "newton".into(),
            iterations: opts.max_iter,
            residual: r,
            tolerance: opts.tol,
        })
    }
}

pub mod quad {
    pub struct GaussHermite {
        pub nodes: Vec<f64>,
        pub weights: Vec<f64>,
    }
    impl GaussHermite {
        pub fn new(n: usize) -> Self {
            let mut j = nalgebra::DMatrix::<f64>::zeros(n, n);
            for k in 1..n {
                let b = (k as f64).sqrt();
                j[(k, k - 1)] = b;
                j[(k - 1, k)] = b;
            }
            let e = j.symmetric_eigen();
            let mut pairs: Vec<(f64, f64)> = (0..n)
                .map(|i| (e.eigenvalues[i], e.eigenvectors[(0, i)].powi(2)))
                .collect();
            pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            GaussHermite {
                nodes: pairs.iter().map(|p| p.0).collect(),
                weights: pairs.iter().map(|p| p.1).collect(),
            }
        }
        pub fn expect(&self, f: impl Fn(f64) -> f64) -> f64 {
            self.nodes
                .iter()
                .zip(&self.weights)
                .map(|(&x, &w)| w * f(x))
                .sum()
        }
    }
    pub struct GaussLegendre {
        pub nodes: Vec<f64>,
        pub weights: Vec<f64>,
    }
    impl GaussLegendre {
        pub fn new(n: usize) -> Self {
            let mut j = nalgebra::DMatrix::<f64>::zeros(n, n);
            for k in 1..n {
                let kf = k as f64;
                let b = kf / (4.0 * kf * kf - 1.0).sqrt();
                j[(k, k - 1)] = b;
                j[(k - 1, k)] = b;
            }
            let e = j.symmetric_eigen();
            let mut pairs: Vec<(f64, f64)> = (0..n)
                .map(|i| (e.eigenvalues[i], 2.0 * e.eigenvectors[(0, i)].powi(2)))
                .collect();
            pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            GaussLegendre {
                nodes: pairs.iter().map(|p| p.0).collect(),
                weights: pairs.iter().map(|p| p.1).collect(),
            }
        }
        pub fn integrate(&self, f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
            let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
            h * self
                .nodes
                .iter()
                .zip(&self.weights)
                .map(|(&x, &w)| w * f(c + h * x))
                .sum::<f64>()
        }
        pub fn integrate_composite(
            &self,
            f: impl Fn(f64) -> f64,
            a: f64,
            b: f64,
            panels: usize,
        ) -> f64 {
            let h = (b - a) / panels as f64;
            (0..panels)
                .map(|i| self.integrate(&f, a + i as f64 * h, a + (i + 1) as f64 * h))
                .sum()
        }
    }
}

pub mod eig2 {
    use nalgebra::{Complex, Matrix2, Vector2};
    use num_complex::Complex64;
    use serde::Serialize;

    pub struct Eigen2 {
        pub values: [Complex64; 2],
        pub vectors: [Vector2<Complex64>; 2],
        pub trace: f64,
        pub det: f64,
    }
    pub fn eigen2(m: &Matrix2<f64>) -> Eigen2 {
        let tr = m.trace();
        let det = m.determinant();
        let disc = tr * tr / 4.0 - det;
        let sq = Complex64::new(disc, 0.0).sqrt();
        let l1 = Complex::new(tr / 2.0, 0.0) + sq;
        let l2 = Complex::new(tr / 2.0, 0.0) - sq;
        let vec_for = |l: Complex64| {
            let (a, b, c, d) = (m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)]);
            let v1 = Vector2::new(Complex::new(b, 0.0), l - a);
            let v2 = Vector2::new(l - d, Complex::new(c, 0.0));
            let v = if v1.norm() >= v2.norm() { v1 } else { v2 };
            if v.norm() == 0.0 {
                Vector2::new(Complex::new(1.0, 0.0), Complex::new(0.0, 0.0))
            } else {
                v / Complex::new(v.norm(), 0.0)
            }
        };
        Eigen2 {
            values: [l1, l2],
            vectors: [vec_for(l1), vec_for(l2)],
            trace: tr,
            det,
        }
    }
    #[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum FixedPointType {
        StableNode,
        UnstableNode,
        StableFocus,
        UnstableFocus,
        Saddle,
        Centre,
        Degenerate,
    }
    pub fn classify(j: &Matrix2<f64>) -> FixedPointType {
        let e = eigen2(j);
        let (l1, l2) = (e.values[0], e.values[1]);
        let tol = 1e-12 * (1.0 + j.norm());
        if l1.im.abs() > tol {
            if l1.re.abs() <= tol {
                FixedPointType::Centre
            } else if l1.re < 0.0 {
                FixedPointType::StableFocus
            } else {
                FixedPointType::UnstableFocus
            }
        } else if l1.re.abs() <= tol || l2.re.abs() <= tol {
            FixedPointType::Degenerate
        } else if l1.re < 0.0 && l2.re < 0.0 {
            FixedPointType::StableNode
        } else if l1.re > 0.0 && l2.re > 0.0 {
            FixedPointType::UnstableNode
        } else {
            FixedPointType::Saddle
        }
    }
}

pub mod planar {
    use super::eig2::{classify, eigen2, FixedPointType};
    use super::newton::{newton_static, NewtonOptions};
    use nalgebra::{Matrix2, Vector2};
    use serde::Serialize;

    pub trait PlanarFlow: Sync {
        fn flow(&self, x: &Vector2<f64>) -> Vector2<f64>;
        fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64>;
    }
    #[derive(Serialize, Clone, Debug)]
    pub struct FixedPoint {
        pub x: [f64; 2],
        pub residual: f64,
        pub eigenvalues: [[f64; 2]; 2],
        pub eigenvectors: [[f64; 2]; 2],
        pub kind: FixedPointType,
    }
    pub fn fixed_point_at(sys: &impl PlanarFlow, x: &Vector2<f64>) -> FixedPoint {
        let j = sys.jacobian(x);
        let e = eigen2(&j);
        FixedPoint {
            x: [x[0], x[1]],
            residual: sys.flow(x).norm(),
            eigenvalues: [
                [e.values[0].re, e.values[0].im],
                [e.values[1].re, e.values[1].im],
            ],
            eigenvectors: [
                [e.vectors[0][0].re, e.vectors[0][1].re],
                [e.vectors[1][0].re, e.vectors[1][1].re],
            ],
            kind: classify(&j),
        }
    }
    pub fn fixed_points_in_box(
        sys: &impl PlanarFlow,
        lo: [f64; 2],
        hi: [f64; 2],
        grid: usize,
    ) -> Vec<FixedPoint> {
        let mut found: Vec<Vector2<f64>> = Vec::new();
        let scale = (hi[0] - lo[0]).abs().max((hi[1] - lo[1]).abs());
        for i in 0..grid {
            for j in 0..grid {
                let x0 = Vector2::new(
                    lo[0] + (hi[0] - lo[0]) * (i as f64 + 0.5) / grid as f64,
                    lo[1] + (hi[1] - lo[1]) * (j as f64 + 0.5) / grid as f64,
                );
                if let Ok(r) = newton_static(
                    |x| (sys.flow(x), sys.jacobian(x)),
                    x0,
                    &NewtonOptions::default(),
                ) {
                    let x = r.x;
                    let inside = x[0] >= lo[0] && x[0] <= hi[0] && x[1] >= lo[1] && x[1] <= hi[1];
                    if inside && !found.iter().any(|y| (y - x).norm() < 1e-7 * scale) {
                        found.push(x);
                    }
                }
            }
        }
        found.sort_by(|a, b| {
            a[0].partial_cmp(&b[0])
                .unwrap()
                .then(a[1].partial_cmp(&b[1]).unwrap())
        });
        found.iter().map(|x| fixed_point_at(sys, x)).collect()
    }
}

pub mod optim {
    use crate::{Error, Result};
    pub fn brent_root(f: impl Fn(f64) -> f64, a: f64, b: f64, tol: f64) -> Result<f64> {
        let (mut a, mut b) = (a, b);
        let (mut fa, fb) = (f(a), f(b));
        if fa * fb > 0.0 {
            return Err(Error::Requirement("brent_root: no sign change".into()));
        }
        for _ in 0..200 {
            let m = 0.5 * (a + b);
            let fm = f(m);
            if fm == 0.0 || (b - a).abs() < tol {
                return Ok(m);
            }
            if fa * fm < 0.0 {
                b = m;
            } else {
                a = m;
                fa = fm;
            }
        }
        Ok(0.5 * (a + b))
    }
}
