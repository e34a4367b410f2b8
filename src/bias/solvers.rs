//! Reference solvers of Part II: the hard-margin SVM (B-6) by dual coordinate ascent, and the
//! minimiser of the hyperbolic-entropy potential Q_alpha over {X beta = y} (B-10, B-11) by a
//! damped Newton method on the (convex) dual, in a log domain so tiny alpha works.

use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use crate::{Error, Result};

/// The hard-margin SVM through the origin: w_hat = argmin |w|^2 s.t. y_i w . x_i >= 1.
#[derive(Debug, Clone, Serialize)]
pub struct Svm {
    /// w_hat = sum_i alpha_i y_i x_i.
    pub w: DVector<f64>,
    /// Dual variables alpha_i >= 0 (non-zero exactly on support vectors).
    pub alpha: DVector<f64>,
    /// Indices with alpha_i > 1e-9 max alpha.
    pub support: Vec<usize>,
    /// Largest KKT violation at exit.
    pub kkt: f64,
    pub sweeps: usize,
}

/// Hard-margin SVM without bias by coordinate ascent on the dual
/// max sum alpha_i - |sum alpha_i y_i x_i|^2 / 2, alpha >= 0 (exact coordinate maximisation).
/// Rows of `x` are the points. Errors: shape mismatch, labels not +-1, non-separable data
/// (dual unbounded), no convergence.
pub fn hard_margin_svm(x: &DMatrix<f64>, y: &DVector<f64>, tol: f64) -> Result<Svm> {
    let (n, d) = (x.nrows(), x.ncols());
    if n != y.len() || n == 0 {
        return Err(Error::Shape {
            context: "hard-margin SVM".into(),
            message: format!("{n} points but {} labels", y.len()),
        });
    }
    if y.iter().any(|&v| v != 1.0 && v != -1.0) {
        return Err(Error::Requirement("SVM labels must be +1 or -1".into()));
    }
    let z = DMatrix::from_fn(n, d, |i, j| y[i] * x[(i, j)]);
    let sq: Vec<f64> = (0..n).map(|i| z.row(i).norm_squared()).collect();
    if sq.contains(&0.0) {
        return Err(Error::Requirement(
            "a point at the origin cannot be separated by a hyperplane through the origin".into(),
        ));
    }
    let r2 = sq.iter().cloned().fold(0.0, f64::max);
    let mut alpha: DVector<f64> = DVector::zeros(n);
    let mut w = DVector::zeros(d);
    let max_sweeps = 1_000_000;
    let mut kkt = f64::INFINITY;
    for sweep in 0..max_sweeps {
        kkt = 0.0;
        for i in 0..n {
            let zi = z.row(i).transpose();
            let g = 1.0 - zi.dot(&w);
            // KKT violation: g > 0 with any alpha, or g < 0 with alpha > 0
            let viol = if alpha[i] > 0.0 { g.abs() } else { g.max(0.0) };
            kkt = kkt.max(viol);
            let new = (alpha[i] + g / sq[i]).max(0.0);
            let delta = new - alpha[i];
            if delta != 0.0 {
                w.axpy(delta, &zi, 1.0);
                alpha[i] = new;
            }
        }
        // Gordan: not separable iff some alpha >= 0, alpha != 0 has sum alpha_i z_i = 0; then
        // sum alpha -> infinity with |w| bounded. Separable with margin gamma: the dual bound
        // sum alpha - |w|^2/2 <= 1/(2 gamma^2) forces gamma^2 <= 1/(2 sum alpha (1 - ratio/2)).
        // So sum alpha R^2 > 1e6 with |w|^2 / sum alpha < 1e-2 means: not separable, or the
        // normalised margin gamma / R is below ~1e-3.
        let sa = alpha.sum();
        if sa * r2 > 1e6 && w.norm_squared() < 1e-2 * sa {
            return Err(Error::Requirement(format!(
                "data not linearly separable through the origin (or normalised margin < 1e-3): SVM dual unbounded after {sweep} sweeps"
            )));
        }
        if kkt <= tol {
            let amax = alpha.max();
            let support = (0..n).filter(|&i| alpha[i] > 1e-9 * amax).collect();
            return Ok(Svm {
                w,
                alpha,
                support,
                kkt,
                sweeps: sweep + 1,
            });
        }
    }
    Err(Error::NoConvergence {
        solver: "SVM dual coordinate ascent".into(),
        iterations: max_sweeps,
        residual: kkt,
        tolerance: tol,
    })
}

/// beta_i(nu) = 2 alpha_i^2 sinh(z_i), z = X^T nu + delta, computed from ln(alpha_i^2) without
/// cancellation or underflow: 2 a^2 sinh z = sign(z) exp(ln a^2 + |z|) (-expm1(-2|z|)). Returns
/// (beta, dbeta/dz = 2 a^2 cosh z, 2 a^2 (cosh z - 1) = exp(ln a^2 + |z|) expm1(-|z|)^2).
fn beta_of(ln_a2: &DVector<f64>, z: &DVector<f64>) -> (DVector<f64>, DVector<f64>, DVector<f64>) {
    let d = z.len();
    let mut beta = DVector::zeros(d);
    let mut c = DVector::zeros(d);
    let mut e = DVector::zeros(d);
    for i in 0..d {
        let az = z[i].abs();
        let big = (ln_a2[i] + az).exp();
        beta[i] = z[i].signum() * big * (-(-2.0 * az).exp_m1());
        c[i] = big * (1.0 + (-2.0 * az).exp());
        let m = (-az).exp_m1();
        e[i] = big * m * m;
    }
    (beta, c, e)
}

/// Minimiser of the mirror potential over the affine set:
/// beta* = argmin_{X beta = y} sum_i alpha_i^2 q(beta_i / alpha_i^2) - delta . beta,
/// q(z) = 2 - sqrt(4 + z^2) + z asinh(z/2) (THEORY B-10; `delta` = 0 is Q_alpha, a non-zero
/// `delta` is the O(eta^3) tilt of B-11). `ln_alpha2[i]` = ln(alpha_i^2).
///
/// KKT: asinh(beta_i / (2 alpha_i^2)) = (X^T nu)_i + delta_i, i.e. beta = 2 alpha^2 sinh(X^T nu +
/// delta). Newton on the convex dual phi(nu) = sum 2 alpha^2 cosh(X^T nu + delta) - y . nu, whose
/// gradient is X beta(nu) - y, with backtracking on phi. X is n x d (rows are samples).
pub fn mirror_argmin(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    ln_alpha2: &DVector<f64>,
    delta: &DVector<f64>,
    tol: f64,
) -> Result<DVector<f64>> {
    let (n, d) = (x.nrows(), x.ncols());
    if y.len() != n || ln_alpha2.len() != d || delta.len() != d {
        return Err(Error::Shape {
            context: "mirror argmin".into(),
            message: format!(
                "X is {n}x{d}, y has {}, alpha has {}, delta has {}",
                y.len(),
                ln_alpha2.len(),
                delta.len()
            ),
        });
    }
    // Continuation in alpha for tiny alpha: solve with ln(alpha^2) raised by s (so that
    // min ln alpha^2 >= -2), then lower s in steps of 4 (alpha^2 / e^4) warm-starting Newton.
    let lo = ln_alpha2.min();
    let mut shift = (-2.0 - lo).max(0.0);
    let mut nu = DVector::zeros(n);
    loop {
        let la = ln_alpha2.add_scalar(shift);
        let final_stage = shift == 0.0;
        let stage_tol = if final_stage { tol } else { tol.max(1e-8) };
        let (nu_new, beta) = newton_stage(x, y, &la, delta, nu, stage_tol)?;
        if final_stage {
            return Ok(beta);
        }
        nu = nu_new;
        shift = (shift - 4.0).max(0.0);
    }
}

fn newton_stage(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    ln_alpha2: &DVector<f64>,
    delta: &DVector<f64>,
    mut nu: DVector<f64>,
    tol: f64,
) -> Result<(DVector<f64>, DVector<f64>)> {
    let d = x.ncols();
    let phi = |nu: &DVector<f64>| -> f64 {
        let z = x.tr_mul(nu) + delta;
        // phi up to the constant sum 2 alpha^2 (cancellation-free form)
        let (_, _, e) = beta_of(ln_alpha2, &z);
        e.sum() - y.dot(nu)
    };
    let max_iter = 500;
    let mut res = f64::INFINITY;
    for _ in 0..max_iter {
        let z = x.tr_mul(&nu) + delta;
        let (beta, c, _) = beta_of(ln_alpha2, &z);
        let grad = x * &beta - y;
        res = grad.amax();
        if res <= tol * (1.0 + y.amax()) {
            return Ok((nu, beta));
        }
        // Hessian X diag(2 alpha^2 cosh z) X^T
        let mut xs = x.clone();
        for j in 0..d {
            let s = c[j];
            xs.column_mut(j).scale_mut(s);
        }
        let h = &xs * x.transpose();
        let step = match h.clone().cholesky() {
            Some(chol) => chol.solve(&grad),
            // Tiny alpha: weights 2 alpha^2 cosh z of inactive coordinates underflow relative to
            // the active ones and H is numerically rank-deficient; the system is consistent on
            // the active span, so take the minimum-norm Newton step (pseudo-inverse, cutoff
            // 1e-14 of the largest eigenvalue).
            None => pinv_solve(h, &grad)?,
        };
        let f0 = phi(&nu);
        let slope = -grad.dot(&step);
        let mut t = 1.0;
        loop {
            let cand = &nu - &step * t;
            let f1 = phi(&cand);
            // Armijo on phi; near the solution the decrease of phi is below its rounding level,
            // so a decrease of the residual |X beta - y| is accepted as well.
            let zc = x.tr_mul(&cand) + delta;
            let rc = (x * beta_of(ln_alpha2, &zc).0 - y).amax();
            if f1.is_finite() && (f1 <= f0 + 1e-4 * t * slope || rc < (1.0 - 0.5 * t) * res) {
                nu = cand;
                break;
            }
            t *= 0.5;
            if t < 1e-12 {
                // No descent possible: we are at rounding level of phi. Accept if the
                // residual is at rounding level of y, otherwise report.
                if res <= 1e-12 * (1.0 + y.amax()) {
                    return Ok((nu, beta));
                }
                return Err(Error::NoConvergence {
                    solver: "mirror-potential dual Newton (line search)".into(),
                    iterations: max_iter,
                    residual: res,
                    tolerance: tol,
                });
            }
        }
    }
    Err(Error::NoConvergence {
        solver: "mirror-potential dual Newton".into(),
        iterations: max_iter,
        residual: res,
        tolerance: tol,
    })
}

/// Minimum-norm solution of H s = g for symmetric positive semi-definite H (capped eigen-solver).
fn pinv_solve(h: DMatrix<f64>, g: &DVector<f64>) -> Result<DVector<f64>> {
    let n = h.nrows();
    let eig = nalgebra::SymmetricEigen::try_new(h, 1e-15, 10_000).ok_or_else(|| {
        Error::NoConvergence {
            solver: "symmetric eigen-decomposition (mirror argmin Hessian)".into(),
            iterations: 10_000,
            residual: f64::NAN,
            tolerance: 1e-15,
        }
    })?;
    let lmax = eig.eigenvalues.amax();
    if lmax.is_nan() || lmax <= 0.0 {
        return Err(Error::Singular {
            context: "mirror argmin dual Hessian (all weights underflow)".into(),
            pivot: lmax,
            threshold: 0.0,
        });
    }
    let q = &eig.eigenvectors;
    let coef = q.tr_mul(g);
    let mut out = DVector::zeros(n);
    for k in 0..n {
        let l = eig.eigenvalues[k];
        if l > 1e-14 * lmax {
            out.axpy(coef[k] / l, &q.column(k), 1.0);
        }
    }
    Ok(out)
}

/// q(z) = 2 - sqrt(4 + z^2) + z asinh(z/2), the hyperbolic entropy of B-10.
pub fn q_entropy(z: f64) -> f64 {
    2.0 - (4.0 + z * z).sqrt() + z * (z / 2.0).asinh()
}

/// Q_alpha(beta) = alpha^2 sum_i q(beta_i / alpha^2).
pub fn q_alpha(alpha: f64, beta: &DVector<f64>) -> f64 {
    let a2 = alpha * alpha;
    a2 * beta.iter().map(|&b| q_entropy(b / a2)).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svm_of_a_symmetric_pair() {
        // points (1,1)+ and (-1,1)-: w_hat = (1, 0), alpha = (1/2, 1/2)
        let x = DMatrix::from_row_slice(2, 2, &[1.0, 1.0, -1.0, 1.0]);
        let y = DVector::from_vec(vec![1.0, -1.0]);
        let s = hard_margin_svm(&x, &y, 1e-14).unwrap();
        assert!(
            (s.w[0] - 1.0).abs() < 1e-12 && s.w[1].abs() < 1e-12,
            "{:?}",
            s.w
        );
        assert!((s.alpha[0] - 0.5).abs() < 1e-12 && (s.alpha[1] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn non_separable_data_is_a_requirement_error() {
        let x = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 2.0, 0.0]);
        let y = DVector::from_vec(vec![1.0, -1.0]);
        assert!(matches!(
            hard_margin_svm(&x, &y, 1e-12),
            Err(Error::Requirement(_))
        ));
    }

    #[test]
    fn mirror_argmin_limits_l2_and_l1() {
        // one equation beta_1 + 2 beta_2 = 1: min-l2 = (1/5, 2/5); min-l1 = (0, 1/2)
        let x = DMatrix::from_row_slice(1, 2, &[1.0, 2.0]);
        let y = DVector::from_vec(vec![1.0]);
        let zero = DVector::zeros(2);
        let big = mirror_argmin(
            &x,
            &y,
            &DVector::from_element(2, (1e3f64).ln()),
            &zero,
            1e-13,
        )
        .unwrap();
        // large alpha: Q ~ |beta|^2 / (4 alpha^2), correction O(|beta|^2/alpha^4)
        assert!(
            (big[0] - 0.2).abs() < 1e-5 && (big[1] - 0.4).abs() < 1e-5,
            "{big:?}"
        );
        let tiny = mirror_argmin(
            &x,
            &y,
            &DVector::from_element(2, (1e-300f64).ln() * 2.0),
            &zero,
            1e-13,
        )
        .unwrap();
        // alpha^2 = 1e-600 (below f64 range: log domain); beta_1 ~ alpha^2-scale
        assert!(
            tiny[0].abs() < 1e-10 && (tiny[1] - 0.5).abs() < 1e-10,
            "{tiny:?}"
        );
    }

    #[test]
    fn mirror_argmin_satisfies_kkt_and_minimises() {
        let x = DMatrix::from_row_slice(2, 4, &[1.0, 0.5, -0.3, 2.0, 0.2, -1.0, 1.5, 0.7]);
        let y = DVector::from_vec(vec![1.0, -0.5]);
        let alpha: f64 = 0.3;
        let b = mirror_argmin(
            &x,
            &y,
            &DVector::from_element(4, (alpha * alpha).ln()),
            &DVector::zeros(4),
            1e-14,
        )
        .unwrap();
        assert!((&x * &b - &y).amax() < 1e-13);
        // any feasible perturbation (null space of X) increases Q_alpha
        let svd = x.clone().try_svd(false, true, 1e-15, 10_000).unwrap();
        let vt = svd.v_t.unwrap();
        let q0 = q_alpha(alpha, &b);
        // null space of a 2x4 matrix: complete the row space with Gram-Schmidt
        let mut basis: Vec<DVector<f64>> = (0..2).map(|i| vt.row(i).transpose()).collect();
        for e in 0..4 {
            let mut v = DVector::zeros(4);
            v[e] = 1.0;
            for b in &basis {
                v -= b * b.dot(&v);
            }
            if v.norm() > 1e-8 {
                basis.push(v.normalize());
            }
        }
        for v in &basis[2..] {
            for s in [1e-3, -1e-3] {
                assert!(q_alpha(alpha, &(&b + v * s)) > q0);
            }
        }
    }
}
