//! A small Gauss–Legendre rule for the kernel cross-checks (kept local so the kernels do not
//! depend on the timing of `crate::num`; the lead may replace it by `num::quad::GaussLegendre`).

/// Gauss–Legendre nodes and weights on [-1, 1].
#[derive(Debug, Clone)]
pub struct Legendre {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

impl Legendre {
    /// n-point rule (n >= 1), exact for polynomials of degree 2n - 1. Nodes by Newton's method
    /// on P_n from Tricomi's initial guesses (converged to rounding in < 10 steps for n <= 200).
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        let mut nodes = vec![0.0; n];
        let mut weights = vec![0.0; n];
        let nf = n as f64;
        for i in 0..n {
            let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
            let mut dp = 1.0;
            for _ in 0..100 {
                let (p, d) = legendre_and_derivative(n, x);
                dp = d;
                let dx = p / d;
                x -= dx;
                if dx.abs() < 1e-16 {
                    break;
                }
            }
            let (_, d) = legendre_and_derivative(n, x);
            if d.is_finite() {
                dp = d;
            }
            nodes[i] = x;
            weights[i] = 2.0 / ((1.0 - x * x) * dp * dp);
        }
        Legendre { nodes, weights }
    }

    /// int_a^b f, split into `panels` equal panels.
    pub fn integrate(&self, f: impl Fn(f64) -> f64, a: f64, b: f64, panels: usize) -> f64 {
        let panels = panels.max(1);
        let h = (b - a) / panels as f64;
        let mut sum = 0.0;
        for p in 0..panels {
            let lo = a + h * p as f64;
            let mid = lo + 0.5 * h;
            for (x, w) in self.nodes.iter().zip(&self.weights) {
                sum += w * f(mid + 0.5 * h * x);
            }
        }
        0.5 * h * sum
    }
}

/// (P_n(x), P_n'(x)) by the three-term recurrence.
fn legendre_and_derivative(n: usize, x: f64) -> (f64, f64) {
    let (mut p0, mut p1) = (1.0, x);
    for k in 2..=n {
        let kf = k as f64;
        let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
        p0 = p1;
        p1 = p2;
    }
    if n == 0 {
        return (1.0, 0.0);
    }
    let d = n as f64 * (x * p1 - p0) / (x * x - 1.0);
    (p1, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_for_polynomials_and_accurate_for_exp() {
        let gl = Legendre::new(10);
        let wsum: f64 = gl.weights.iter().sum();
        assert!((wsum - 2.0).abs() < 1e-14);
        // degree 19 is integrated exactly: int_0^1 x^19 = 1/20.
        let v = gl.integrate(|x| x.powi(19), 0.0, 1.0, 1);
        assert!((v - 0.05).abs() < 1e-15);
        let e = gl.integrate(f64::exp, 0.0, 3.0, 4);
        assert!((e - (3f64.exp() - 1.0)).abs() < 1e-13);
    }
}
