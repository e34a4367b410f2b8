//! Saxe mode dynamics (THEORY II.5, B-13; Saxe, McClelland, Ganguli 2014): a balanced, aligned
//! two-layer linear net W2 W1 learning Sigma = U S V^T (whitened inputs, loss |Sigma - W2 W1|_F^2 / 2)
//! decouples into modes u_i = d_i^2 with
//!   GF:  u(t) = s e^{2st} / (e^{2st} - 1 + s/u0),  half-time t_half = ln(s/u0 - 1) / (2 s),
//!   GD:  u_{k+1} = u_k (1 + eta (s - u_k))^2 exactly.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::compare::Row;
use crate::Result;

/// Mode strength under gradient flow, u(t) = s e^{2st} / (e^{2st} - 1 + s/u0).
pub fn mode_gf(t: f64, s: f64, u0: f64) -> f64 {
    // divide through by e^{2st} to avoid overflow at large t
    let e = (-2.0 * s * t).exp();
    s / (1.0 - e + e * s / u0)
}

/// One GD step of a mode: u (1 + eta (s - u))^2.
pub fn mode_gd(u: f64, s: f64, eta: f64) -> f64 {
    let f = 1.0 + eta * (s - u);
    u * f * f
}

/// Half-time of a mode under GF: ln(s/u0 - 1) / (2s) (u0 < s/2).
pub fn half_time(s: f64, u0: f64) -> f64 {
    (s / u0 - 1.0).ln() / (2.0 * s)
}

/// Random orthogonal matrix (QR of a Gaussian matrix).
fn orthogonal(rng: &mut StdRng, n: usize) -> DMatrix<f64> {
    let g = DMatrix::from_fn(n, n, |_, _| rng.sample::<f64, _>(StandardNormal));
    g.qr().q()
}

/// Train the balanced aligned net W1 = D V^T, W2 = U D by GD for `steps` steps and return the
/// diagonal of U^T W2 W1 V (the mode strengths) after each step, and the largest off-diagonal.
pub fn train_aligned(
    s: &[f64],
    u0: &[f64],
    eta: f64,
    steps: usize,
    seed: u64,
) -> (Vec<DVector<f64>>, f64) {
    let m = s.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let uu = orthogonal(&mut rng, m);
    let vv = orthogonal(&mut rng, m);
    let sigma = &uu * DMatrix::from_diagonal(&DVector::from_column_slice(s)) * vv.transpose();
    let d0 = DMatrix::from_diagonal(&DVector::from_iterator(m, u0.iter().map(|u| u.sqrt())));
    let mut w1 = &d0 * vv.transpose();
    let mut w2 = &uu * &d0;
    let mut out = Vec::with_capacity(steps);
    let mut off: f64 = 0.0;
    for _ in 0..steps {
        let e = &sigma - &w2 * &w1;
        let g1 = w2.transpose() * &e;
        let g2 = &e * w1.transpose();
        w1 += g1 * eta;
        w2 += g2 * eta;
        let modes = uu.transpose() * &w2 * &w1 * &vv;
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    off = off.max(modes[(i, j)].abs());
                }
            }
        }
        out.push(modes.diagonal());
    }
    (out, off)
}

/// B-13 check.
pub fn check_b13() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let s = [3.0, 2.0, 1.0, 0.5];
    let u0 = [1e-3, 1e-3, 1e-3, 1e-3];
    let eta = 0.02;
    let steps = 1500;
    let (modes, off) = train_aligned(&s, &u0, eta, steps, 1);
    // scalar map
    let mut worst: f64 = 0.0;
    let mut u = u0;
    for m in &modes {
        for i in 0..s.len() {
            u[i] = mode_gd(u[i], s[i], eta);
            worst = worst.max((m[i] - u[i]).abs() / s[i]);
        }
    }
    rows.push(
        Row::abs(
            "net modes vs discrete map u(1+eta(s-u))^2, max |diff|/s",
            0.0,
            worst,
            1e-10,
        )
        .note("4 modes s = 3, 2, 1, 0.5, u0 = 1e-3, eta = 0.02, 1500 steps, random U, V"),
    );
    rows.push(Row::abs(
        "off-diagonal of U^T W2 W1 V (decoupling)",
        0.0,
        off,
        1e-10,
    ));
    // GD -> GF at first order in eta: error of the map against u(t) at t = 3, halving eta
    let (sm, um, t_end) = (2.0, 1e-3, 3.0);
    let err = |eta: f64| {
        let k = (t_end / eta).round() as usize;
        let mut u = um;
        let mut e: f64 = 0.0;
        for j in 1..=k {
            u = mode_gd(u, sm, eta);
            e = e.max((u - mode_gf(j as f64 * eta, sm, um)).abs());
        }
        e
    };
    let (e1, e2, e3) = (err(0.01), err(0.005), err(0.0025));
    rows.push(
        Row::rel(
            "GD map vs GF curve: error ratio on halving eta (first order)",
            2.0,
            e1 / e2,
            0.15,
        )
        .note(format!(
            "max error over t in [0, 3]: {e1:.3e}, {e2:.3e}, {e3:.3e}"
        )),
    );
    rows.push(Row::rel("same, next halving", 2.0, e2 / e3, 0.15));
    // half-time: steps to reach s/2 times eta vs ln(s/u0 - 1)/(2s)
    let th = half_time(sm, um);
    for eta in [0.001, 0.0001] {
        let mut u = um;
        let mut k = 0usize;
        while u < sm / 2.0 {
            let next = mode_gd(u, sm, eta);
            k += 1;
            if next >= sm / 2.0 {
                // linear interpolation of the crossing within the step
                let frac = (sm / 2.0 - u) / (next - u);
                let t = (k as f64 - 1.0 + frac) * eta;
                rows.push(
                    Row::abs(format!("half-time, eta={eta}"), th, t, 2.0 * eta)
                        .note("GD half-time differs from GF by O(eta) (measured ~eta x const)"),
                );
                break;
            }
            u = next;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_solves_the_mode_ode() {
        // u' = 2 u (s - u) by central differences
        let (s, u0) = (1.5, 0.01);
        for t in [0.1, 1.0, 2.0, 4.0] {
            let h = 1e-5;
            let du = (mode_gf(t + h, s, u0) - mode_gf(t - h, s, u0)) / (2.0 * h);
            let u = mode_gf(t, s, u0);
            assert!(
                (du - 2.0 * u * (s - u)).abs() < 1e-8,
                "{t}: {du} vs {}",
                2.0 * u * (s - u)
            );
        }
        assert!((mode_gf(0.0, s, u0) - u0).abs() < 1e-15);
        assert!((mode_gf(half_time(s, u0), s, u0) - s / 2.0).abs() < 1e-12);
    }

    #[test]
    fn b13_check_passes() {
        for row in check_b13().unwrap() {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::compare::Verdict::Pass, "{row:?}");
        }
    }
}
