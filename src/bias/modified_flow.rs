//! Backward-error analysis of (S)GD (THEORY II.5, B-12; Barrett & Dherin 2021; Smith et al. 2021).
//!
//! GD with step eps follows the gradient flow of L~ = L + (eps/4) |grad L|^2 to O(eps^3) per step
//! (grad L~ = grad L + (eps/2) H grad L). For SGD with m batches (L = (1/m) sum_k L_k, one step
//! of size eps per batch), the shuffle-average of one epoch follows L + (eps/(4m)) sum_k |grad L_k|^2
//! for time m eps to O(eps^3).
//!
//! Order test: GD at a fixed horizon has global error O(eps) against GF on L (halving eps -> /2)
//! and O(eps^2) against the modified flow (/4). One SGD epoch averaged over all m! orders has
//! local error O(eps^2) against GF on L (/4) and O(eps^3) against the modified flow (/8).
//!
//! Test problem: l2-regularised logistic regression on a fixed non-separable set in R^3 (smooth,
//! non-quadratic, with a unique minimiser), integrated with classical RK4 at step h = eps/200.

use nalgebra::{DMatrix, DVector};

use super::nets::sigmoid;

/// Logistic regression with l2 term on a set of samples.
#[derive(Debug, Clone)]
pub struct LogReg {
    /// rows are samples
    pub x: DMatrix<f64>,
    pub y: DVector<f64>,
    pub lambda: f64,
}

impl LogReg {
    /// grad L = -(1/n) sum y_i x_i sigma(-y_i w.x_i) + lambda w.
    pub fn grad(&self, w: &DVector<f64>) -> DVector<f64> {
        let n = self.x.nrows() as f64;
        let mut g = w * self.lambda;
        for i in 0..self.x.nrows() {
            let xi = self.x.row(i).transpose();
            let m = self.y[i] * xi.dot(w);
            g.axpy(-self.y[i] * sigmoid(-m) / n, &xi, 1.0);
        }
        g
    }

    /// Hessian (1/n) sum sigma(m)(1 - sigma(m)) x_i x_i^T + lambda I.
    pub fn hessian(&self, w: &DVector<f64>) -> DMatrix<f64> {
        let (n, d) = (self.x.nrows(), self.x.ncols());
        let mut h = DMatrix::identity(d, d) * self.lambda;
        for i in 0..n {
            let xi = self.x.row(i).transpose();
            let s = sigmoid(xi.dot(w));
            h.ger(s * (1.0 - s) / n as f64, &xi, &xi, 1.0);
        }
        h
    }

    /// The same problem restricted to a subset of samples.
    pub fn subset(&self, idx: &[usize]) -> LogReg {
        LogReg {
            x: DMatrix::from_fn(idx.len(), self.x.ncols(), |r, c| self.x[(idx[r], c)]),
            y: DVector::from_fn(idx.len(), |r, _| self.y[idx[r]]),
            lambda: self.lambda,
        }
    }
}

/// Classical RK4 for w' = f(w) over time `t` with `steps` steps.
pub fn rk4(
    f: impl Fn(&DVector<f64>) -> DVector<f64>,
    w0: &DVector<f64>,
    t: f64,
    steps: usize,
) -> DVector<f64> {
    let h = t / steps as f64;
    let mut w = w0.clone();
    for _ in 0..steps {
        let k1 = f(&w);
        let k2 = f(&(&w + &k1 * (h / 2.0)));
        let k3 = f(&(&w + &k2 * (h / 2.0)));
        let k4 = f(&(&w + &k3 * h));
        w += (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
    }
    w
}

/// The fixed test set: 12 points in R^3, labels not linearly separable.
pub fn test_problem() -> LogReg {
    let pts = [
        [1.0, 0.5, -0.2, 1.0],
        [0.8, -1.0, 0.3, 1.0],
        [1.5, 0.2, 0.9, 1.0],
        [-0.3, 1.2, 0.4, 1.0],
        [0.2, -0.4, -1.1, -1.0],
        [0.9, 0.7, 0.1, 1.0],
        [-1.0, -0.5, 0.6, -1.0],
        [-0.7, 0.9, -0.8, -1.0],
        [-1.4, 0.1, 0.2, -1.0],
        [0.6, 0.3, 0.5, -1.0],
        [-0.2, -1.3, -0.4, -1.0],
        [-0.5, 0.4, 1.0, 1.0],
    ];
    LogReg {
        x: DMatrix::from_fn(12, 3, |r, c| pts[r][c]),
        y: DVector::from_fn(12, |r, _| pts[r][3]),
        lambda: 0.05,
    }
}

/// Errors of GD at horizon `t` (from w0) against GF on L and on L + (eps/4)|grad L|^2.
pub fn gd_errors(p: &LogReg, w0: &DVector<f64>, eps: f64, t: f64) -> (f64, f64) {
    let k = (t / eps).round() as usize;
    let mut w = w0.clone();
    for _ in 0..k {
        w -= p.grad(&w) * eps;
    }
    let rk = 200 * k;
    let gf = rk4(|w| -p.grad(w), w0, t, rk);
    let md = rk4(
        |w| {
            let g = p.grad(w);
            -(&g + p.hessian(w) * &g * (eps / 2.0))
        },
        w0,
        t,
        rk,
    );
    ((&w - gf).norm(), (&w - md).norm())
}

fn permutations(m: usize) -> Vec<Vec<usize>> {
    if m == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(m - 1) {
        for pos in 0..=p.len() {
            let mut q = p.clone();
            q.insert(pos, m - 1);
            out.push(q);
        }
    }
    out
}

/// Errors of one SGD epoch (m batches, step eps each), averaged over all m! orders, against GF on
/// L and on L + (eps/(4m)) sum_k |grad L_k|^2, both for time m eps.
pub fn sgd_epoch_errors(
    p: &LogReg,
    batches: &[Vec<usize>],
    w0: &DVector<f64>,
    eps: f64,
) -> (f64, f64) {
    let m = batches.len();
    let parts: Vec<LogReg> = batches.iter().map(|b| p.subset(b)).collect();
    let perms = permutations(m);
    let mut mean = DVector::zeros(w0.len());
    for perm in &perms {
        let mut w = w0.clone();
        for &k in perm {
            w -= parts[k].grad(&w) * eps;
        }
        mean += w;
    }
    mean /= perms.len() as f64;
    let t = m as f64 * eps;
    // L = (1/m) sum L_k requires equal batch sizes (checked by the caller's construction)
    let full = |w: &DVector<f64>| parts.iter().map(|q| q.grad(w)).sum::<DVector<f64>>() / m as f64;
    let gf = rk4(|w| -full(w), w0, t, 400);
    let md = rk4(
        |w| {
            let mut g = full(w);
            for q in &parts {
                let gk = q.grad(w);
                g += q.hessian(w) * &gk * (eps / (2.0 * m as f64));
            }
            -g
        },
        w0,
        t,
        400,
    );
    ((&mean - gf).norm(), (&mean - md).norm())
}

/// Ratio tolerance (brief): within 15% of the predicted 2, 4 (GD) and 4, 8 (SGD); the next order
/// changes a ratio by O(eps) relative (e.g. 2 -> 2(1 + c eps)).
pub const RATIO_TOL: f64 = 0.15;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hessian_and_gradient_match_finite_differences() {
        let p = test_problem();
        let w = DVector::from_vec(vec![0.3, -0.2, 0.5]);
        let loss = |w: &DVector<f64>| {
            (0..12)
                .map(|i| super::super::nets::softplus(-p.y[i] * p.x.row(i).transpose().dot(w)))
                .sum::<f64>()
                / 12.0
                + 0.5 * p.lambda * w.norm_squared()
        };
        let h = 1e-5;
        let g = p.grad(&w);
        let hm = p.hessian(&w);
        for k in 0..3 {
            let mut e = DVector::zeros(3);
            e[k] = h;
            let fd = (loss(&(&w + &e)) - loss(&(&w - &e))) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-9);
            let fdg = (p.grad(&(&w + &e)) - p.grad(&(&w - &e))) / (2.0 * h);
            assert!((fdg - hm.column(k)).amax() < 1e-9);
        }
    }
}
