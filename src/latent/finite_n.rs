//! The finite-N latent gain of THEORY.md I.8, claim I-14: the map h(kappa) that replaces the
//! Gaussian average G(|kappa|^2) kappa of I.2 by the empirical average over the N pattern rows
//! u_i = (a_i, b_i) of one draw,
//!
//! ```text
//! h_N(kappa) = U^T phi(U kappa) / N = (1/N) sum_i u_i phi(u_i . kappa),
//! Dh_N(kappa) = (1/N) sum_i u_i u_i^T phi'(u_i . kappa)      (symmetric),
//! ```
//!
//! and its **moment-matched** expansion. With phi(x) = sum_j c_j x^j (odd j; erf(sqrt(pi)/2 x):
//! c = 1, -pi/12, pi^2/160; tanh: 1, -1/3, 2/15) and the empirical moments
//! m_pq = (1/N) sum_i a_i^p b_i^q,
//!
//! ```text
//! h_N,e(kappa) = sum_j c_j T_j(kappa; m)_e,
//! T_j(kappa; m)_a = sum_l C(j,l) kappa_a^(j-l) kappa_b^l m_(j-l+1, l),
//! T_j(kappa; m)_b = sum_l C(j,l) kappa_a^(j-l) kappa_b^l m_(j-l, l+1).
//! ```
//!
//! The Gaussian limit has m_pq -> mu_pq = (p-1)!! (q-1)!! (p, q even; 0 otherwise), and
//! sum_j c_j T_j(kappa; mu) is the Taylor series of G(|kappa|^2) kappa. The model of order k
//! keeps the Gaussian part resummed and expands only the deviation:
//!
//! ```text
//! h_k(kappa) = G(|kappa|^2) kappa + sum_{j = 3, 5; j <= k} c_j T_j(kappa; m - mu),
//! ```
//!
//! so h_k - h_N = O(|kappa|^(k+2)) *and* h_k -> h exactly as N -> infinity. (The plain truncated
//! polynomial sum_{j <= k} c_j T_j(kappa; m) would carry a truncation error of the Gaussian
//! part itself, 20% of G at the trained memory |kappa_A| = 0.64 for k = 3, ten times the
//! finite-N effect it is meant to capture.) The j = 1 deviation vanishes: U^T U / N = I exactly
//! for the orthonormalised patterns (m_20 = m_02 = 1, m_11 = 0), which is why the leak into a
//! from a pure b state starts at third order, h_N,a(kappa_b e_b) = c_3 m_13 kappa_b^3 + ...

use std::sync::Arc;

use nalgebra::{Matrix2, Vector2};
use serde::Serialize;

use super::gain::{Gain, GainKind};

/// Which finite-N map: the moment-matched expansion to third or fifth order, or the exact
/// empirical h_N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Three,
    Five,
    Exact,
}

impl Order {
    /// The model-file name (`3`, `5`, `"exact"`).
    pub fn name(self) -> &'static str {
        match self {
            Order::Three => "3",
            Order::Five => "5",
            Order::Exact => "exact",
        }
    }

    /// The highest power of kappa whose moment deviation is kept (exact: none needed).
    fn max_power(self) -> usize {
        match self {
            Order::Three => 3,
            Order::Five | Order::Exact => 5,
        }
    }
}

/// Largest moment order p + q stored: the fifth-order term needs p + q = 6.
const MAX_MOMENT: usize = 6;

/// Taylor coefficients c_1, c_3, c_5 of phi (odd powers; index j = power).
pub fn phi_coefficients(kind: GainKind) -> [f64; MAX_MOMENT] {
    let pi = std::f64::consts::PI;
    let mut c = [0.0; MAX_MOMENT];
    match kind {
        // erf(sqrt(pi)/2 x) = sum_n (-1)^n (pi/4)^n x^(2n+1) / (n! (2n+1))
        GainKind::Erf => {
            c[1] = 1.0;
            c[3] = -pi / 12.0;
            c[5] = pi * pi / 160.0;
        }
        // tanh x = x - x^3/3 + 2 x^5/15
        GainKind::Tanh => {
            c[1] = 1.0;
            c[3] = -1.0 / 3.0;
            c[5] = 2.0 / 15.0;
        }
    }
    c
}

/// Gaussian moment mu_pq = E[a^p] E[b^q] = (p-1)!! (q-1)!! for even p, q (0 otherwise).
pub fn gaussian_moment(p: usize, q: usize) -> f64 {
    let dfact = |k: usize| -> f64 {
        if k % 2 == 1 {
            return 0.0;
        }
        (1..k).step_by(2).map(|v| v as f64).product()
    };
    dfact(p) * dfact(q)
}

/// Empirical moments m_pq = (1/N) sum_i a_i^p b_i^q for p + q <= 6, indexed [p][q].
pub type Moments = [[f64; MAX_MOMENT + 1]; MAX_MOMENT + 1];

/// The moments of one pattern draw (a, b of equal length N >= 1).
pub fn moments(a: &[f64], b: &[f64]) -> Moments {
    let mut m = [[0.0; MAX_MOMENT + 1]; MAX_MOMENT + 1];
    for (&ai, &bi) in a.iter().zip(b) {
        let mut ap = 1.0;
        for row in m.iter_mut() {
            let mut bq = 1.0;
            for (q, v) in row.iter_mut().enumerate() {
                *v += ap * bq;
                if q < MAX_MOMENT {
                    bq *= bi;
                }
            }
            ap *= ai;
        }
    }
    let inv = 1.0 / a.len() as f64;
    for (p, row) in m.iter_mut().enumerate() {
        for (q, v) in row.iter_mut().enumerate() {
            *v = if p + q <= MAX_MOMENT { *v * inv } else { 0.0 };
        }
    }
    m
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// T_j(kappa; m) of the module docs and its Jacobian dT_j/dkappa.
pub fn power_term(j: usize, m: &Moments, k: &Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
    let (ka, kb) = (k[0], k[1]);
    let pw = |x: f64, e: usize| if e == 0 { 1.0 } else { x.powi(e as i32) };
    let mut t = Vector2::zeros();
    let mut d = Matrix2::zeros();
    for l in 0..=j {
        let c = binomial(j, l);
        let mono = pw(ka, j - l) * pw(kb, l);
        let d_a = if j > l {
            (j - l) as f64 * pw(ka, j - l - 1) * pw(kb, l)
        } else {
            0.0
        };
        let d_b = if l > 0 {
            l as f64 * pw(ka, j - l) * pw(kb, l - 1)
        } else {
            0.0
        };
        let (ma, mb) = (m[j - l + 1][l], m[j - l][l + 1]);
        t[0] += c * mono * ma;
        t[1] += c * mono * mb;
        d[(0, 0)] += c * d_a * ma;
        d[(0, 1)] += c * d_b * ma;
        d[(1, 0)] += c * d_a * mb;
        d[(1, 1)] += c * d_b * mb;
    }
    (t, d)
}

/// The pattern rows of one draw, stored for the exact map.
#[derive(Debug, Clone)]
struct Rows {
    a: Vec<f64>,
    b: Vec<f64>,
}

/// sqrt(pi)/2, the argument scale of phi(x) = erf(sqrt(pi)/2 x).
const ERF_SCALE: f64 = 0.886_226_925_452_758;

/// The finite-N gain map of one pattern draw (claim I-14): exact h_N or its moment-matched
/// expansion h_3 / h_5. Cheap to clone (the rows are shared).
#[derive(Debug, Clone)]
pub struct FiniteNGain {
    kind: GainKind,
    order: Order,
    gain: Gain,
    coeff: [f64; MAX_MOMENT],
    /// m_pq of the draw.
    moments: Moments,
    /// m_pq - mu_pq.
    deviation: Moments,
    rows: Option<Arc<Rows>>,
}

impl FiniteNGain {
    /// The map of the pattern rows (a_i, b_i) (equal lengths N >= 2).
    pub fn new(kind: GainKind, order: Order, a: &[f64], b: &[f64]) -> FiniteNGain {
        debug_assert_eq!(a.len(), b.len());
        let m = moments(a, b);
        let mut dev = m;
        for (p, row) in dev.iter_mut().enumerate() {
            for (q, v) in row.iter_mut().enumerate() {
                if p + q <= MAX_MOMENT {
                    *v -= gaussian_moment(p, q);
                }
            }
        }
        FiniteNGain {
            kind,
            order,
            gain: Gain::new(kind),
            coeff: phi_coefficients(kind),
            moments: m,
            deviation: dev,
            rows: (order == Order::Exact).then(|| {
                Arc::new(Rows {
                    a: a.to_vec(),
                    b: b.to_vec(),
                })
            }),
        }
    }

    pub fn order(&self) -> Order {
        self.order
    }

    pub fn kind(&self) -> GainKind {
        self.kind
    }

    /// The empirical moments m_pq (p + q <= 6).
    pub fn moments(&self) -> &Moments {
        &self.moments
    }

    /// phi and phi' of the network's nonlinearity.
    #[inline]
    fn phi(&self, x: f64) -> (f64, f64) {
        match self.kind {
            GainKind::Erf => (
                libm::erf(ERF_SCALE * x),
                (-std::f64::consts::FRAC_PI_4 * x * x).exp(),
            ),
            GainKind::Tanh => {
                let t = x.tanh();
                (t, 1.0 - t * t)
            }
        }
    }

    /// h(kappa) and its Jacobian Dh(kappa).
    #[inline]
    pub fn h(&self, k: &Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        match &self.rows {
            Some(r) => self.exact(r, k),
            None => self.expansion(k),
        }
    }

    fn exact(&self, r: &Rows, k: &Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        let (mut h0, mut h1) = (0.0, 0.0);
        let (mut d00, mut d01, mut d11) = (0.0, 0.0, 0.0);
        for (&ai, &bi) in r.a.iter().zip(&r.b) {
            let (f, df) = self.phi(ai * k[0] + bi * k[1]);
            h0 += ai * f;
            h1 += bi * f;
            d00 += ai * ai * df;
            d01 += ai * bi * df;
            d11 += bi * bi * df;
        }
        let inv = 1.0 / r.a.len() as f64;
        (
            Vector2::new(h0, h1) * inv,
            Matrix2::new(d00, d01, d01, d11) * inv,
        )
    }

    fn expansion(&self, k: &Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        let (g, gp) = self.gain.g_and_slope(k.norm_squared());
        let mut h = k * g;
        let mut d = Matrix2::identity() * g + k * k.transpose() * (2.0 * gp);
        for j in (1..=self.order.max_power()).step_by(2) {
            let (t, dt) = power_term(j, &self.deviation, k);
            h += t * self.coeff[j];
            d += dt * self.coeff[j];
        }
        (h, d)
    }
}

#[cfg(test)]
mod tests {
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
                assert!((r - c7).abs() < 0.03 * x * x + 1e-8, "{kind:?} x={x}: {r} vs {c7}");
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
    /// |kappa| divides the error by ~2^(k+2) (asserted > 0.6 2^(k+2)), and at N -> infinity it is
    /// the Gaussian G kappa (checked on the deviation: T_j(.; mu) sums to the Taylor series of
    /// G kappa, so h_k(kappa) - G kappa is only the deviation term).
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
}
