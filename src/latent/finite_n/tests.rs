//! Unit tests of `latent::finite_n`.

use super::*;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Gaussian rows, a.b removed and both scaled to norm sqrt(N) (the network's patterns are
/// QR-orthonormalised the same way; the tests here need only some finite-N draw).
fn rows(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut a: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let mut b: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
    let scale = |v: &mut Vec<f64>| {
        let s = (n as f64).sqrt() / v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x *= s);
    };
    scale(&mut a);
    let ab = a.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>() / n as f64;
    b.iter_mut().zip(&a).for_each(|(y, x)| *y -= ab * x);
    scale(&mut b);
    (a, b)
}

#[test]
fn gaussian_moments_and_binomials() {
    assert_eq!(gaussian_moment(4, 0), 3.0);
    assert_eq!(gaussian_moment(2, 2), 1.0);
    assert_eq!(gaussian_moment(6, 0), 15.0);
    assert_eq!(gaussian_moment(4, 2), 3.0);
    assert_eq!(gaussian_moment(1, 3), 0.0);
    assert_eq!(binomial(5, 2), 10.0);
    assert_eq!(binomial(3, 0), 1.0);
}

/// The Taylor coefficients of phi against finite differences of phi itself: the odd
/// remainder (phi(x) - c_1 x - c_3 x^3 - c_5 x^5) / x^7 stays bounded (it tends to c_7:
/// erf -pi^3/2688 = -1.15e-2, tanh -17/315 = -0.054) as x -> 0; a wrong c_3 or c_5 makes it
/// grow like x^-4 or x^-2 (at x = 0.05: 1e3 or 4e-1 for an error of 1e-2 in c_5).
#[test]
fn phi_coefficients_match_the_function() {
    for (kind, c7) in [
        (GainKind::Erf, -std::f64::consts::PI.powi(3) / 2688.0),
        (GainKind::Tanh, -17.0 / 315.0),
    ] {
        let g = FiniteNGain::new(kind, Order::Exact, &[1.0, -1.0], &[1.0, 1.0]);
        let c = phi_coefficients(kind);
        for x in [0.2, 0.1] {
            let (f, _) = g.phi(x);
            let r = (f - c[1] * x - c[3] * x.powi(3) - c[5] * x.powi(5)) / x.powi(7);
            // next term c_9 x^2 (|c_9| < 0.03) and rounding 1e-16 / x^6 = 1.6e-10 at 0.1
            assert!(
                (r - c7).abs() < 0.03 * x * x + 1e-8,
                "{kind:?} x={x}: {r} vs {c7}"
            );
        }
    }
}

/// The expansion coefficients c_j T_j(.; m) against the exact h_N of the same draw: along
/// a direction v, R(s) = [h_N(s v) - s v - s^3 c_3 T_3(v; m)] / s^5 -> c_5 T_5(v; m) with
/// an O(s^2) error (the c_7 term); a wrong third-order term makes R grow like s^-2.
/// Asserted: |R(s) - c_5 T_5| <= 0.05 |c_5 T_5| + 1e-3 at s = 0.05, and the error falls
/// by ~4 from s = 0.1 to 0.05 (ratio > 3; rounding 1e-16 / 0.05^4 = 2e-11 is negligible).
#[test]
fn expansion_coefficients_match_finite_differences_of_h_n() {
    let (a, b) = rows(300, 11);
    for kind in [GainKind::Erf, GainKind::Tanh] {
        let exact = FiniteNGain::new(kind, Order::Exact, &a, &b);
        let m = exact.moments();
        let c = phi_coefficients(kind);
        for v in [
            Vector2::new(1.0, 0.0),
            Vector2::new(0.0, 1.0),
            Vector2::new(0.6, -0.8),
        ] {
            let (t3, _) = power_term(3, m, &v);
            let (t5, _) = power_term(5, m, &v);
            let target = t5 * c[5];
            let err = |s: f64| {
                let (h, _) = exact.h(&(v * s));
                let r = (h - v * s - t3 * (c[3] * s.powi(3))) / s.powi(5);
                (r - target).norm()
            };
            let (e1, e2) = (err(0.1), err(0.05));
            assert!(
                e2 <= 0.05 * target.norm() + 1e-3 && e1 / e2 > 3.0,
                "{kind:?} v={v:?}: {e1:.3e} {e2:.3e} target {target:?}"
            );
        }
    }
}

/// The moment-matched model of order k agrees with h_N to O(|kappa|^(k+2)): halving
/// |kappa| divides the error by ~2^(k+2) (asserted within [0.6, 1.6] x 2^(k+2)).
#[test]
fn moment_matched_model_has_the_stated_order() {
    let (a, b) = rows(400, 12);
    for kind in [GainKind::Erf, GainKind::Tanh] {
        let exact = FiniteNGain::new(kind, Order::Exact, &a, &b);
        for (order, k) in [(Order::Three, 3), (Order::Five, 5)] {
            let model = FiniteNGain::new(kind, order, &a, &b);
            let v = Vector2::new(0.3, 0.9);
            let err = |s: f64| (model.h(&(v * s)).0 - exact.h(&(v * s)).0).norm();
            let ratio = err(0.2) / err(0.1);
            let expect = 2f64.powi(k + 2);
            assert!(
                ratio > 0.6 * expect && ratio < 1.6 * expect,
                "{kind:?} {order:?}: ratio {ratio}, expected {expect}"
            );
        }
    }
}

/// The Gaussian part: T_j(kappa; mu) reproduces the Taylor coefficients of G(|kappa|^2)
/// kappa (erf: G = 1 - (pi/4) D + (3 pi^2/32) D^2 - ...), so the expansion around the
/// Gaussian limit is consistent: c_3 T_3(kappa; mu) = -(pi/4) |kappa|^2 kappa and
/// c_5 T_5(kappa; mu) = (3 pi^2 / 32) |kappa|^4 kappa, to rounding.
#[test]
fn gaussian_moments_give_the_series_of_g() {
    let mut mu = [[0.0; MAX_MOMENT + 1]; MAX_MOMENT + 1];
    for (p, row) in mu.iter_mut().enumerate() {
        for (q, v) in row.iter_mut().enumerate() {
            *v = gaussian_moment(p, q);
        }
    }
    let c = phi_coefficients(GainKind::Erf);
    let pi = std::f64::consts::PI;
    let k = Vector2::new(0.7, -0.4);
    let d = k.norm_squared();
    let t3 = power_term(3, &mu, &k).0 * c[3];
    let t5 = power_term(5, &mu, &k).0 * c[5];
    assert!((t3 - k * (-pi / 4.0 * d)).norm() < 1e-15);
    assert!((t5 - k * (3.0 * pi * pi / 32.0 * d * d)).norm() < 1e-15);
}

/// The Gaussian averages: Phi_1 = G and Phi_3 = 2 G' against [`Gain`] (erf closed form,
/// tanh quadrature), and Phi_k(0) = phi^(k)(0) = k! c_k; Phi_k' = Phi_(k+2) / 2 by central
/// differences (h = 2e-5: truncation h^2 Phi_(k+6) / 48 <= 2e-7 relative for tanh k = 7,
/// whose high derivatives grow factorially; rounding 1e-16 / h = 5e-12).
#[test]
fn phi_averages_are_consistent() {
    use super::super::gain::Gain;
    for kind in [GainKind::Erf, GainKind::Tanh] {
        let av = PhiAverages::new(kind);
        let gain = Gain::new(kind);
        let c = phi_coefficients(kind);
        let at0 = av.at(0.0);
        for k in [1usize, 3, 5] {
            let want = factorial(k) * c[k];
            assert!((at0[k] - want).abs() < 1e-12 * want.abs(), "{kind:?} k={k}");
        }
        for d in [0.01, 0.3, 1.0, 4.0] {
            let ph = av.at(d);
            let (g, gp) = gain.g_and_slope(d);
            assert!(
                (ph[1] - g).abs() < 1e-10,
                "{kind:?} D={d}: {} vs {g}",
                ph[1]
            );
            assert!((ph[3] - 2.0 * gp).abs() < 1e-9, "{kind:?} D={d}");
            let e = 2e-5;
            let (p, m) = (av.at(d + e), av.at(d - e));
            for k in [1usize, 3, 5, 7] {
                let fd = (p[k] - m[k]) / (2.0 * e);
                let want = 0.5 * ph[k + 2];
                assert!(
                    (fd - want).abs() < 1e-6 * want.abs().max(1e-2),
                    "{kind:?} D={d} k={k}: {fd} vs {want}"
                );
            }
        }
    }
}

/// Hermite moments from power moments: c_40 = m_40 - 3 (orthonormal rows: m_20 = 1),
/// c_22 = m_22 - 1, c_60 = m_60 - 15 m_40 + 30, equal to direct averages of He_p He_q.
#[test]
fn hermite_moments_are_direct_averages() {
    let (a, b) = rows(100, 15);
    let m = moments(&a, &b);
    let c = hermite_moments(&m);
    let he = |n: usize, x: f64| match n {
        0 => 1.0,
        1 => x,
        2 => x * x - 1.0,
        3 => x.powi(3) - 3.0 * x,
        4 => x.powi(4) - 6.0 * x * x + 3.0,
        _ => unreachable!(),
    };
    for (p, q) in [(4, 0), (3, 1), (2, 2), (1, 3), (0, 4), (2, 1)] {
        let direct = a
            .iter()
            .zip(&b)
            .map(|(x, y)| he(p, *x) * he(q, *y))
            .sum::<f64>()
            / 100.0;
        assert!((c[p][q] - direct).abs() < 1e-12, "({p},{q})");
    }
    assert!((c[4][0] - (m[4][0] - 3.0)).abs() < 1e-12);
    assert!((c[6][0] - (m[6][0] - 15.0 * m[4][0] + 45.0 * m[2][0] - 15.0)).abs() < 1e-11);
    assert!(c[2][0].abs() < 1e-12 && c[1][1].abs() < 1e-12);
}

/// Jacobians of both maps against central differences (h = 1e-6: truncation h^2 h''' ~
/// 1e-12, rounding 1e-16 / 1e-6 = 1e-10).
#[test]
fn jacobians_match_central_differences() {
    let (a, b) = rows(200, 13);
    for kind in [GainKind::Erf, GainKind::Tanh] {
        for order in [Order::Three, Order::Five, Order::Exact] {
            let g = FiniteNGain::new(kind, order, &a, &b);
            let k = Vector2::new(0.5, -0.35);
            let (_, d) = g.h(&k);
            let eps = 1e-6;
            for j in 0..2 {
                let mut kp = k;
                kp[j] += eps;
                let mut km = k;
                km[j] -= eps;
                let col = (g.h(&kp).0 - g.h(&km).0) / (2.0 * eps);
                for i in 0..2 {
                    assert!(
                        (col[i] - d[(i, j)]).abs() < 1e-8,
                        "{kind:?} {order:?} ({i},{j}): {} vs {}",
                        col[i],
                        d[(i, j)]
                    );
                }
            }
            assert!((d[(0, 1)] - d[(1, 0)]).abs() < 1e-14, "Dh is symmetric");
        }
    }
}

/// The leak of THEORY I-14: from a pure b state, h_N,a(kappa_b e_b) = c_3 m_13 kappa_b^3
/// + O(kappa_b^5), and the linear term is absent (a.b = 0).
#[test]
fn leak_into_a_is_cubic_in_kappa_b() {
    let (a, b) = rows(256, 14);
    let g = FiniteNGain::new(GainKind::Erf, Order::Exact, &a, &b);
    let m13 = g.moments()[1][3];
    let c3 = phi_coefficients(GainKind::Erf)[3];
    for s in [0.05, 0.1] {
        let leak = g.h(&Vector2::new(0.0, s)).0[0];
        let lead = c3 * m13 * s.powi(3);
        // relative O(s^2) correction (m_15 c_5 / (m_13 c_3) ~ 5 with these moments)
        assert!(
            ((leak - lead) / lead).abs() < 10.0 * s * s,
            "s={s}: {leak} vs {lead}"
        );
    }
}
