//! Damped Newton's method on an LU factorisation, with iteration caps.
//!
//! Each iteration solves `J dx = -F`, then backtracks (halving) until the residual norm
//! decreases by the Armijo factor `1 - 1e-4 alpha`; the damping never goes below
//! `min_damping`. Failure is a value: [`Error::Singular`] for a singular Jacobian,
//! [`Error::NoConvergence`] when the cap is reached or the line search stalls.

use nalgebra::{DMatrix, DVector, SMatrix, SVector};

use crate::{Error, Result};

/// Tolerances and caps.
#[derive(Debug, Clone, Copy)]
pub struct NewtonOptions {
    /// Convergence when |F(x)| <= tol (Euclidean norm).
    pub tol: f64,
    /// Iteration cap.
    pub max_iter: usize,
    /// Smallest step fraction tried by the backtracking line search.
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

/// A converged root.
#[derive(Debug, Clone)]
pub struct NewtonResult<V> {
    pub x: V,
    /// |F(x)| at the returned point.
    pub residual: f64,
    pub iterations: usize,
}

/// The two linear-algebra settings of the iteration (static 2x2-world types with a stack LU,
/// dynamic N-world types with nalgebra's LU); [`damped`] is the one iteration over both.
trait Space {
    /// A state or residual vector.
    type V;
    /// A Jacobian.
    type M;
    fn norm(v: &Self::V) -> f64;
    /// The Newton direction dx solving J dx = -F.
    fn direction(j: &Self::M, f: &Self::V) -> Result<Self::V>;
    /// `out = x + alpha dx`.
    fn trial(x: &Self::V, dx: &Self::V, alpha: f64, out: &mut Self::V);
}

struct Static<const D: usize>;

impl<const D: usize> Space for Static<D> {
    type V = SVector<f64, D>;
    type M = SMatrix<f64, D, D>;
    fn norm(v: &Self::V) -> f64 {
        v.norm()
    }
    fn direction(j: &Self::M, f: &Self::V) -> Result<Self::V> {
        lu_solve_static(*j, -f)
    }
    fn trial(x: &Self::V, dx: &Self::V, alpha: f64, out: &mut Self::V) {
        *out = x + dx * alpha;
    }
}

struct Dynamic;

impl Space for Dynamic {
    type V = DVector<f64>;
    type M = DMatrix<f64>;
    fn norm(v: &Self::V) -> f64 {
        v.norm()
    }
    fn direction(j: &Self::M, f: &Self::V) -> Result<Self::V> {
        j.clone()
            .lu()
            .solve(&(-f))
            .ok_or_else(|| singular(0.0, 0.0))
    }
    fn trial(x: &Self::V, dx: &Self::V, alpha: f64, out: &mut Self::V) {
        out.copy_from(x);
        out.axpy(alpha, dx, 1.0);
    }
}

/// State and scratch of one iteration: the iterate with F and J there, and a trial point.
struct Buffers<S: Space> {
    x: S::V,
    fx: S::V,
    jx: S::M,
    xn: S::V,
    fn_: S::V,
    jn: S::M,
}

/// The damped Newton iteration (module docs); `f(x, F, J)` writes F(x) and J(x).
fn damped<S: Space>(
    mut f: impl FnMut(&S::V, &mut S::V, &mut S::M),
    mut b: Buffers<S>,
    opts: &NewtonOptions,
) -> Result<NewtonResult<S::V>> {
    f(&b.x, &mut b.fx, &mut b.jx);
    let mut res = S::norm(&b.fx);
    for it in 0..opts.max_iter {
        if !res.is_finite() {
            break;
        }
        if res <= opts.tol {
            return Ok(NewtonResult {
                x: b.x,
                residual: res,
                iterations: it,
            });
        }
        let dx = S::direction(&b.jx, &b.fx)?;
        let mut alpha = 1.0;
        loop {
            S::trial(&b.x, &dx, alpha, &mut b.xn);
            f(&b.xn, &mut b.fn_, &mut b.jn);
            let rn = S::norm(&b.fn_);
            if rn.is_finite() && rn <= (1.0 - 1e-4 * alpha) * res {
                std::mem::swap(&mut b.x, &mut b.xn);
                std::mem::swap(&mut b.fx, &mut b.fn_);
                std::mem::swap(&mut b.jx, &mut b.jn);
                res = rn;
                break;
            }
            alpha *= 0.5;
            if alpha < opts.min_damping {
                return Err(stalled(opts, it, res));
            }
        }
    }
    if res <= opts.tol {
        return Ok(NewtonResult {
            x: b.x,
            residual: res,
            iterations: opts.max_iter,
        });
    }
    Err(stalled(opts, opts.max_iter, res))
}

/// Damped Newton for a static dimension `D`; `f` returns `(F(x), J(x))`.
pub fn newton_static<const D: usize>(
    mut f: impl FnMut(&SVector<f64, D>) -> (SVector<f64, D>, SMatrix<f64, D, D>),
    x0: SVector<f64, D>,
    opts: &NewtonOptions,
) -> Result<NewtonResult<SVector<f64, D>>> {
    let buffers = Buffers::<Static<D>> {
        x: x0,
        fx: SVector::zeros(),
        jx: SMatrix::zeros(),
        xn: SVector::zeros(),
        fn_: SVector::zeros(),
        jn: SMatrix::zeros(),
    };
    damped(
        |x, fx, jx| {
            (*fx, *jx) = f(x);
        },
        buffers,
        opts,
    )
}

/// Damped Newton for dynamic dimension; `f(x, F, J)` writes F(x) and J(x) into the buffers.
pub fn newton_dyn(
    f: impl FnMut(&DVector<f64>, &mut DVector<f64>, &mut DMatrix<f64>),
    x0: DVector<f64>,
    opts: &NewtonOptions,
) -> Result<NewtonResult<DVector<f64>>> {
    let n = x0.len();
    let buffers = Buffers::<Dynamic> {
        x: x0,
        fx: DVector::zeros(n),
        jx: DMatrix::zeros(n, n),
        xn: DVector::zeros(n),
        fn_: DVector::zeros(n),
        jn: DMatrix::zeros(n, n),
    };
    damped(f, buffers, opts)
}

/// Relative pivot threshold below which the Jacobian is treated as singular: a pivot at the
/// level of rounding of the largest entry carries no information.
const PIVOT_RTOL: f64 = 1e-14;

/// Solve `a x = b` by Gaussian elimination with partial pivoting, in place on the stack
/// (nalgebra's LU needs type-level dimension bounds for const generics).
fn lu_solve_static<const D: usize>(
    mut a: SMatrix<f64, D, D>,
    mut b: SVector<f64, D>,
) -> Result<SVector<f64, D>> {
    let scale = a.amax();
    for k in 0..D {
        let (mut p, mut best) = (k, a[(k, k)].abs());
        for i in k + 1..D {
            if a[(i, k)].abs() > best {
                p = i;
                best = a[(i, k)].abs();
            }
        }
        if best.is_nan() || best <= PIVOT_RTOL * scale {
            return Err(singular(best, PIVOT_RTOL * scale));
        }
        if p != k {
            a.swap_rows(p, k);
            b.swap_rows(p, k);
        }
        for i in k + 1..D {
            let m = a[(i, k)] / a[(k, k)];
            for j in k..D {
                a[(i, j)] -= m * a[(k, j)];
            }
            b[i] -= m * b[k];
        }
    }
    for k in (0..D).rev() {
        let mut s = b[k];
        for j in k + 1..D {
            s -= a[(k, j)] * b[j];
        }
        b[k] = s / a[(k, k)];
    }
    Ok(b)
}

fn singular(pivot: f64, threshold: f64) -> Error {
    Error::Singular {
        context: "Newton step (Jacobian LU)".into(),
        pivot,
        threshold,
    }
}

fn stalled(opts: &NewtonOptions, iterations: usize, residual: f64) -> Error {
    Error::NoConvergence {
        solver: "damped Newton".into(),
        iterations,
        residual,
        tolerance: opts.tol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix2, Vector2};

    #[test]
    fn circle_line_intersection() {
        // x^2 + y^2 = 1, y = x  ->  (1/sqrt2, 1/sqrt2) from (1, 0.2)
        let r = newton_static(
            |v: &Vector2<f64>| {
                (
                    Vector2::new(v[0] * v[0] + v[1] * v[1] - 1.0, v[1] - v[0]),
                    Matrix2::new(2.0 * v[0], 2.0 * v[1], -1.0, 1.0),
                )
            },
            Vector2::new(1.0, 0.2),
            &NewtonOptions::default(),
        )
        .unwrap();
        let s = 0.5f64.sqrt();
        assert!((r.x - Vector2::new(s, s)).norm() < 1e-12);
        assert!(r.residual <= 1e-12);
    }

    #[test]
    fn dynamic_matches_static() {
        let r = newton_dyn(
            |v, fx, j| {
                fx[0] = v[0].powi(3) - 2.0;
                j[(0, 0)] = 3.0 * v[0] * v[0];
            },
            DVector::from_element(1, 5.0),
            &NewtonOptions::default(),
        )
        .unwrap();
        assert!((r.x[0] - 2f64.cbrt()).abs() < 1e-12);
    }

    #[test]
    fn singular_jacobian_is_an_error() {
        let r = newton_static(
            |_v: &Vector2<f64>| (Vector2::new(1.0, 1.0), Matrix2::zeros()),
            Vector2::zeros(),
            &NewtonOptions::default(),
        );
        assert!(matches!(r, Err(Error::Singular { .. })));
    }

    #[test]
    fn no_root_is_an_error_not_a_hang() {
        // x^2 + 1 = 0 has no real root
        let r = newton_static(
            |v: &nalgebra::Vector1<f64>| {
                (
                    nalgebra::Vector1::new(v[0] * v[0] + 1.0),
                    nalgebra::Matrix1::new(2.0 * v[0]),
                )
            },
            nalgebra::Vector1::new(0.3),
            &NewtonOptions::default(),
        );
        assert!(r.is_err());
    }
}
