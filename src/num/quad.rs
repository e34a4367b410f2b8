//! Gaussian quadrature by the Golub–Welsch algorithm (eigen-decomposition of the Jacobi matrix
//! of the three-term recurrence, with the capped `SymmetricEigen::try_new`), refined by a few
//! Newton steps on the orthogonal polynomial so nodes are accurate to rounding level.
//!
//! ```
//! use modeflow::num::quad::{GaussHermite, GaussLegendre};
//! let gh = GaussHermite::new(20);
//! assert!((gh.expect(|z| z * z) - 1.0).abs() < 1e-13); // E z^2 = 1
//! let gl = GaussLegendre::new(10);
//! assert!((gl.integrate(f64::exp, 0.0, 1.0) - (1f64.exp() - 1.0)).abs() < 1e-14);
//! ```

use nalgebra::{DMatrix, SymmetricEigen};

/// Probabilists' Gauss–Hermite rule: `expect(f)` approximates E f(z), z ~ N(0, 1); exact for
/// polynomials of degree <= 2n - 1.
#[derive(Debug, Clone)]
pub struct GaussHermite {
    pub nodes: Vec<f64>,
    /// Weights summing to 1.
    pub weights: Vec<f64>,
}

impl GaussHermite {
    /// The n-point rule (1 <= n <= 200).
    pub fn new(n: usize) -> Self {
        // He_{k+1} = x He_k - k He_{k-1}: Jacobi matrix with zero diagonal, off-diagonal sqrt(k).
        let (nodes, weights) = golub_welsch(n, |_| 0.0, |k| (k as f64).sqrt(), 1.0);
        // Newton refinement on He_n (weights from the eigenvectors are already accurate).
        let nodes = nodes
            .into_iter()
            .map(|mut x| {
                for _ in 0..3 {
                    let (p, dp) = hermite_he(n, x);
                    if dp != 0.0 {
                        x -= p / dp;
                    }
                }
                x
            })
            .collect();
        GaussHermite { nodes, weights }
    }

    /// E f(z) for z ~ N(0, 1).
    pub fn expect(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(&x, &w)| w * f(x))
            .sum()
    }
}

/// Gauss–Legendre rule on [-1, 1]; exact for polynomials of degree <= 2n - 1.
#[derive(Debug, Clone)]
pub struct GaussLegendre {
    pub nodes: Vec<f64>,
    /// Weights summing to 2.
    pub weights: Vec<f64>,
}

impl GaussLegendre {
    /// The n-point rule (1 <= n <= 200).
    pub fn new(n: usize) -> Self {
        // (k+1) P_{k+1} = (2k+1) x P_k - k P_{k-1}: off-diagonal k / sqrt(4k^2 - 1).
        let (nodes, _) = golub_welsch(
            n,
            |_| 0.0,
            |k| {
                let k = k as f64;
                k / (4.0 * k * k - 1.0).sqrt()
            },
            2.0,
        );
        let nodes: Vec<f64> = nodes
            .into_iter()
            .map(|mut x| {
                for _ in 0..3 {
                    let (p, dp) = legendre(n, x);
                    if dp != 0.0 {
                        x -= p / dp;
                    }
                }
                x
            })
            .collect();
        // Weights from the refined nodes: w = 2 / ((1 - x^2) P_n'(x)^2).
        let weights = nodes
            .iter()
            .map(|&x| {
                let (_, dp) = legendre(n, x);
                2.0 / ((1.0 - x * x) * dp * dp)
            })
            .collect();
        GaussLegendre { nodes, weights }
    }

    /// Integral of f over [a, b].
    pub fn integrate(&self, f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
        let (m, r) = (0.5 * (a + b), 0.5 * (b - a));
        r * self
            .nodes
            .iter()
            .zip(&self.weights)
            .map(|(&x, &w)| w * f(m + r * x))
            .sum::<f64>()
    }

    /// Composite rule: `panels` equal panels, each with this rule.
    pub fn integrate_composite(
        &self,
        f: impl Fn(f64) -> f64,
        a: f64,
        b: f64,
        panels: usize,
    ) -> f64 {
        let panels = panels.max(1);
        let h = (b - a) / panels as f64;
        (0..panels)
            .map(|i| {
                let lo = a + h * i as f64;
                self.integrate(&f, lo, lo + h)
            })
            .sum()
    }
}

/// Golub–Welsch: nodes are the eigenvalues of the symmetric Jacobi matrix, weights
/// `mu0 * v_0^2`. Sorted ascending.
fn golub_welsch(
    n: usize,
    diag: impl Fn(usize) -> f64,
    offdiag: impl Fn(usize) -> f64,
    mu0: f64,
) -> (Vec<f64>, Vec<f64>) {
    assert!(
        (1..=200).contains(&n),
        "quadrature order must be in 1..=200"
    );
    let mut j = DMatrix::<f64>::zeros(n, n);
    for i in 0..n {
        j[(i, i)] = diag(i);
        if i + 1 < n {
            let b = offdiag(i + 1);
            j[(i, i + 1)] = b;
            j[(i + 1, i)] = b;
        }
    }
    // Tridiagonal symmetric: converges in a few sweeps per eigenvalue; the cap guards anyway.
    let eig = SymmetricEigen::try_new(j, 1e-15, 10_000 * n)
        .expect("symmetric tridiagonal eigenproblem converges");
    let mut pairs: Vec<(f64, f64)> = (0..n)
        .map(|i| (eig.eigenvalues[i], mu0 * eig.eigenvectors[(0, i)].powi(2)))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    pairs.into_iter().unzip()
}

/// Probabilists' Hermite He_n(x) and its derivative n He_{n-1}(x).
fn hermite_he(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 1..n {
        let p2 = x * p1 - k as f64 * p0;
        p0 = p1;
        p1 = p2;
    }
    (p1, n as f64 * p0)
}

/// Legendre P_n(x) and P_n'(x).
fn legendre(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 1..n {
        let k = k as f64;
        let p2 = ((2.0 * k + 1.0) * x * p1 - k * p0) / (k + 1.0);
        p0 = p1;
        p1 = p2;
    }
    let dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, dp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermite_moments() {
        let gh = GaussHermite::new(30);
        assert!((gh.weights.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        // E z^4 = 3, E z^6 = 15, E z^8 = 105
        assert!((gh.expect(|z| z.powi(4)) - 3.0).abs() < 1e-12);
        assert!((gh.expect(|z| z.powi(6)) - 15.0).abs() < 1e-11);
        assert!((gh.expect(|z| z.powi(8)) - 105.0).abs() < 1e-10);
        // E cos(z) = e^{-1/2}
        assert!((gh.expect(f64::cos) - (-0.5f64).exp()).abs() < 1e-14);
    }

    #[test]
    fn legendre_exactness() {
        for n in [1, 2, 5, 16, 64] {
            let gl = GaussLegendre::new(n);
            assert!(
                (gl.weights.iter().sum::<f64>() - 2.0).abs() < 1e-13,
                "n={n}"
            );
            let deg = 2 * n - 1;
            let exact = if deg % 2 == 1 {
                0.0
            } else {
                2.0 / (deg as f64 + 1.0)
            };
            let got = gl.integrate(|x| x.powi(deg as i32), -1.0, 1.0);
            assert!((got - exact).abs() < 1e-13, "n={n}: {got}");
            let got = gl.integrate(|x| x.powi(2 * (n as i32 - 1)), -1.0, 1.0);
            let exact = 2.0 / (2.0 * (n as f64 - 1.0) + 1.0);
            assert!((got - exact).abs() < 1e-13, "n={n}: {got}");
        }
    }

    #[test]
    fn composite_converges() {
        let gl = GaussLegendre::new(8);
        let exact = 1.0 - (-20.0f64).exp();
        let got = gl.integrate_composite(|x| (-x).exp(), 0.0, 20.0, 10);
        assert!((got - exact).abs() < 1e-13);
    }
}
