//! The two-time bulk kernel of the linear random network (THEORY I-11).
//!
//! e^{(W0 - I)s} = e^{-s} sum_k W0^k s^k / k!, and at large N
//! b^T (W0^T)^j W0^k b / N -> delta_jk g^{2k}, so
//! b^T e^{(W0^T - I)s1} e^{(W0 - I)s2} b / N -> e^{-(s1+s2)} sum_k (g^2 s1 s2)^k / (k!)^2
//! = e^{-(s1+s2)} I0(2 g sqrt(s1 s2)) = sum_k f_k(s1) f_k(s2).

use nalgebra::DMatrix;

use super::bessel::bessel_i0_scaled;
use super::random::RandomNetwork;
use crate::{Error, Result};

/// Large-N bulk kernel K(s1, s2) = e^{-(s1+s2)} I0(2 g sqrt(s1 s2)) (THEORY I-11), for
/// s1, s2 >= 0 (NaN otherwise). Evaluated as exp(-(s1+s2) + x) * e^{-x} I0(x), x = 2 g
/// sqrt(s1 s2), so it neither overflows nor underflows prematurely.
pub fn bulk_kernel(g: f64, s1: f64, s2: f64) -> f64 {
    if s1 < 0.0 || s2 < 0.0 || s1.is_nan() || s2.is_nan() {
        return f64::NAN;
    }
    let x = 2.0 * g.abs() * (s1 * s2).sqrt();
    // s1 + s2 and s1 * s2 are commutative in IEEE arithmetic: K is exactly symmetric.
    (x - (s1 + s2)).exp() * bessel_i0_scaled(x)
}

/// The finite-N kernel p^T e^{(W0^T - I) s1} e^{(W0 - I) s2} p / N for every pattern p of
/// `net` (column 1 is b), on the grid s = m h, m = 0..=steps: returns, per pattern, the
/// (steps+1) x (steps+1) table `K[m1][m2]`.
///
/// V_m = e^{(W0 - I) m h} P is propagated with one matrix exponential (nalgebra's Padé with
/// scaling and squaring); then `K[m1][m2] = v_m1 . v_m2 / N` column by column.
pub fn finite_n_kernel(net: &RandomNetwork, h: f64, steps: usize) -> Result<Vec<Vec<Vec<f64>>>> {
    if !(h.is_finite() && h > 0.0) {
        return Err(Error::Requirement(format!(
            "bulk kernel grid step must be positive, got {h}"
        )));
    }
    let (step, _) = net.propagator_for(h, &DMatrix::zeros(net.n, 0));
    let mut vs: Vec<DMatrix<f64>> = Vec::with_capacity(steps + 1);
    vs.push(net.patterns.clone());
    for m in 0..steps {
        let next = &step * &vs[m];
        vs.push(next);
    }
    let n = net.n as f64;
    Ok((0..net.patterns.ncols())
        .map(|p| {
            vs.iter()
                .map(|v1| {
                    vs.iter()
                        .map(|v2| v1.column(p).dot(&v2.column(p)) / n)
                        .collect()
                })
                .collect()
        })
        .collect())
}

/// Theta_new measured on one finite network (THEORY I-12 at finite N), for every pattern p of
/// `net` (column 1 is b): the NTK of z = p^T x(T)/N with respect to all entries of W at
/// W = W0, input u(t) along p.
///
/// dz/dW = (1/N) int_0^T lambda(t) x(t)^T dt with lambda(t) = e^{(W0^T - I)(T - t)} p, so
/// Theta = sum_{i,i'} w_i w_i' (lambda_i . lambda_i')(x_i . x_i') / N^2 over quadrature nodes.
/// x and lambda are propagated exactly on a grid of step <= `h` (one augmented matrix
/// exponential per input piece); the time integral is composite Simpson on each piece (the
/// integrand is smooth there), error O(h^4).
pub fn finite_n_theta_new(
    net: &RandomNetwork,
    schedule: &super::theta::InputSchedule,
    h: f64,
) -> Result<Vec<f64>> {
    if !(h.is_finite() && h > 0.0) {
        return Err(Error::Requirement(format!(
            "Theta_new grid step must be positive, got {h}"
        )));
    }
    schedule.validate()?;
    let pats = &net.patterns;
    // Even number of Simpson intervals per piece.
    let intervals = |len: f64| 2 * ((len / (2.0 * h)).ceil() as usize).max(1);
    let pieces = [
        (schedule.t_in, schedule.u_p, intervals(schedule.t_in)),
        (schedule.t_d, schedule.u_s, intervals(schedule.t_d)),
    ];
    let mut xs: Vec<DMatrix<f64>> = vec![DMatrix::zeros(net.n, pats.ncols())];
    let mut weights = vec![0.0];
    let mut steps = Vec::new();
    for &(len, u, m) in &pieces {
        let dt = len / m as f64;
        let (step, drive) = net.propagator_for(dt, pats);
        // Simpson weights dt/3 * (1, 4, 2, 4, ..., 4, 1); the node shared by two pieces
        // accumulates both end weights.
        let last = weights.len() - 1;
        weights[last] += dt / 3.0;
        for i in 1..=m {
            let next = &step * xs.last().expect("non-empty") + &drive * u;
            xs.push(next);
            let w = if i == m {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            weights.push(w * dt / 3.0);
        }
        steps.push(step);
    }
    // lambda at the nodes, backward from lambda(T) = p.
    let total = xs.len();
    let mut lambdas: Vec<DMatrix<f64>> = vec![DMatrix::zeros(0, 0); total];
    lambdas[total - 1] = pats.clone();
    let mut idx = total - 1;
    for (p, &(_, _, m)) in pieces.iter().enumerate().rev() {
        let step_t = steps[p].transpose();
        for _ in 0..m {
            lambdas[idx - 1] = &step_t * &lambdas[idx];
            idx -= 1;
        }
    }
    let n = net.n as f64;
    let mut out = Vec::with_capacity(pats.ncols());
    let mut lm = DMatrix::zeros(net.n, total);
    let mut xm = DMatrix::zeros(net.n, total);
    for p in 0..pats.ncols() {
        for i in 0..total {
            lm.set_column(i, &lambdas[i].column(p));
            xm.set_column(i, &xs[i].column(p));
        }
        let gl = lm.tr_mul(&lm);
        let gx = xm.tr_mul(&xm);
        let mut theta = 0.0;
        for i in 0..total {
            for j in 0..total {
                theta += weights[i] * weights[j] * gl[(i, j)] * gx[(i, j)];
            }
        }
        out.push(theta / (n * n));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::theta::f_k;
    use super::*;

    #[test]
    fn kernel_equals_its_series() {
        for &(g, s1, s2) in &[(0.5, 1.0, 2.0), (0.8, 3.0, 0.5), (0.9, 6.0, 7.0)] {
            let series: f64 = (0..80).map(|k| f_k(g, k, s1) * f_k(g, k, s2)).sum();
            let k = bulk_kernel(g, s1, s2);
            assert!((k - series).abs() < 1e-14 * series, "{k} vs {series}");
        }
        assert_eq!(bulk_kernel(0.0, 1.0, 2.0), (-3.0f64).exp());
        assert!(bulk_kernel(0.5, -1.0, 1.0).is_nan());
    }

    #[test]
    fn finite_n_theta_is_exact_at_g_zero() {
        // W0 = 0: Theta = G_00^2 exactly, up to Simpson error O(h^4) ~ 1e-7 at h = 0.05.
        use super::super::theta::{theta_new, InputSchedule};
        let net = RandomNetwork::sample(10, 0.0, 4).unwrap();
        let s = InputSchedule {
            t_in: 2.0,
            u_p: 1.0,
            t_d: 3.0,
            u_s: 0.3,
        };
        let m = finite_n_theta_new(&net, &s, 0.05).unwrap()[1];
        let p = theta_new(0.0, &s);
        assert!((m - p).abs() < 1e-7 * p, "{m} vs {p}");
    }

    #[test]
    fn finite_n_kernel_is_exact_at_g_zero() {
        let net = RandomNetwork::sample(20, 0.0, 2).unwrap();
        let k = &finite_n_kernel(&net, 0.5, 4).unwrap()[1];
        for (m1, row) in k.iter().enumerate() {
            for (m2, v) in row.iter().enumerate() {
                let p = bulk_kernel(0.0, 0.5 * m1 as f64, 0.5 * m2 as f64);
                assert!((v - p).abs() < 1e-13);
            }
        }
    }
}
