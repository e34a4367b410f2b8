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
//! (these are the Taylor coefficients of h_N at kappa = 0, tested against finite differences of
//! h_N). As a model this power series is useless beyond small |kappa|: the trained trials reach
//! |kappa| ~ 2 during the pulse, where |u_i . kappa| ~ 6 and the truncated series of phi diverges
//! (the fifth-order polynomial blows the trial up). The **moment-matched model** therefore
//! expands the *measure* of the rows, not phi: with the empirical measure nu of the rows and the
//! Gaussian gamma, the Gram-Charlier identity and Gaussian integration by parts give, for
//! f(u) = u_e phi(u . kappa),
//!
//! ```text
//! E_nu f = sum_alpha (c_alpha / alpha!) E_gamma[d^alpha f],  c_alpha = E_nu He_alpha(u)
//!        = (1/N) sum_i He_p(a_i) He_q(b_i)       (alpha = (p, q), probabilists' Hermite),
//! E_gamma[d^alpha f]_e = kappa_e kappa^alpha Phi_(n+1)(D) + d_e(kappa^alpha) Phi_(n-1)(D),
//! ```
//!
//! n = p + q, D = |kappa|^2, Phi_k(D) = E phi^(k)(sqrt(D) z) (Stein's lemma for the u_e factor).
//! f is even in u, so odd n drop out; alpha = 0 is G(D) kappa (Phi_1 = G); n = 2 vanishes exactly
//! (U^T U / N = I); c_alpha for n = 4 are the deviations m_40 - 3, m_31, m_22 - 1, m_13,
//! m_04 - 3, for n = 6 combinations of m_pq, p + q <= 6. The model of order k keeps n <= k + 1:
//!
//! ```text
//! h_k(kappa) = G(D) kappa + sum_{n = 4 (, 6)} sum_{p+q=n} c_pq / (p! q!) [kappa . kappa^alpha Phi_(n+1) + grad(kappa^alpha) Phi_(n-1)].
//! ```
//!
//! The degree-n term starts at |kappa|^(n-1), so h_k - h_N = O(|kappa|^(k+2)) (its Taylor
//! series agrees with the moment series above to order k), every term stays bounded for large
//! kappa (Phi_k decays like D^(-k/2)), and h_k -> G kappa as N -> infinity. For erf
//! (phi' a Gaussian of variance 2/pi) the averages are closed form:
//! Phi_(2j+1)(D) = G(D) (-1)^j (2j-1)!! / (2/pi + D)^j; for tanh they are Gauss-Legendre
//! integrals of the polynomials tanh^(k) = P_k(tanh). Phi_k' = Phi_(k+2) / 2 (heat equation)
//! gives the Jacobian.

use std::sync::Arc;

use nalgebra::{Matrix2, Vector2};
use serde::Serialize;

use super::gain::GainKind;

/// Which finite-N map: the moment-matched expansion to third or fifth order, or the exact
/// empirical h_N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Three,
    Five,
    /// Seventh order: the next term after the model-file orders, a diagnostic of I-14.
    Seven,
    Exact,
}

impl Order {
    /// The model-file name (`3`, `5`, `"exact"`).
    pub fn name(self) -> &'static str {
        match self {
            Order::Three => "3",
            Order::Five => "5",
            Order::Seven => "7",
            Order::Exact => "exact",
        }
    }

    /// The highest power of kappa whose moment deviation is kept (exact: none needed).
    fn max_power(self) -> usize {
        match self {
            Order::Three => 3,
            Order::Five | Order::Exact => 5,
            Order::Seven => 7,
        }
    }
}

/// The largest N of a finite-N latent model: its pattern draw replays the network's N^2 W0
/// draws (16384^2 = 2.7e8 normal draws, a few seconds) before the patterns.
pub const MAX_N: usize = 16_384;

/// `[finite_n]` of a `latent` model: which pattern draw and which map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FiniteNSpec {
    /// Neurons N of the draw.
    pub n: usize,
    /// The network seed whose pattern draw is used.
    pub seed: u64,
    pub order: Order,
}

/// Largest moment order p + q stored: the seventh-order term needs p + q = 8.
const MAX_MOMENT: usize = 8;

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
            c[7] = -pi.powi(3) / 2688.0;
        }
        // tanh x = x - x^3/3 + 2 x^5/15
        GainKind::Tanh => {
            c[1] = 1.0;
            c[3] = -1.0 / 3.0;
            c[5] = 2.0 / 15.0;
            c[7] = -17.0 / 315.0;
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

/// Empirical moments m_pq = (1/N) sum_i a_i^p b_i^q for p + q <= 8, indexed `[p][q]`.
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

/// Coefficients of the probabilists' Hermite polynomials He_0..He_6 (index [n][power]).
fn hermite_coefficients() -> [[f64; MAX_MOMENT + 1]; MAX_MOMENT + 1] {
    let mut h = [[0.0; MAX_MOMENT + 1]; MAX_MOMENT + 1];
    h[0][0] = 1.0;
    h[1][1] = 1.0;
    // He_(n+1) = x He_n - n He_(n-1)
    for n in 1..MAX_MOMENT {
        for r in 0..=MAX_MOMENT {
            let shift = if r > 0 { h[n][r - 1] } else { 0.0 };
            h[n + 1][r] = shift - n as f64 * h[n - 1][r];
        }
    }
    h
}

/// Hermite moments c_pq = E_nu He_p(a) He_q(b) from the power moments m_pq (p + q <= 8).
pub fn hermite_moments(m: &Moments) -> Moments {
    let he = hermite_coefficients();
    let mut c = [[0.0; MAX_MOMENT + 1]; MAX_MOMENT + 1];
    for p in 0..=MAX_MOMENT {
        for q in 0..=(MAX_MOMENT - p) {
            let mut v = 0.0;
            for (r, hp) in he[p].iter().enumerate().take(p + 1) {
                for (s, hq) in he[q].iter().enumerate().take(q + 1) {
                    v += hp * hq * m[r][s];
                }
            }
            c[p][q] = v;
        }
    }
    c
}

fn factorial(n: usize) -> f64 {
    (1..=n).map(|v| v as f64).product()
}

/// Highest k of Phi_k(D) the model needs: n + 3 with n = 8 (the Jacobian of the degree-8 term).
const MAX_PHI: usize = 11;

/// The Gaussian averages Phi_k(D) = E phi^(k)(sqrt(D) z), k = 0..=11 (even k vanish).
#[derive(Debug, Clone)]
enum PhiAverages {
    /// Closed form: Phi_(2j+1) = G (-1)^j (2j-1)!! / (2/pi + D)^j.
    Erf,
    /// Gauss-Legendre panels in x = sqrt(D) z of the polynomials tanh^(k) = P_k(tanh x):
    /// coefficients P_k[power] and the [0, 1] rule.
    Tanh {
        poly: Arc<Vec<Vec<f64>>>,
        rule: Arc<(Vec<f64>, Vec<f64>)>,
    },
}

impl PhiAverages {
    fn new(kind: GainKind) -> Self {
        match kind {
            GainKind::Erf => PhiAverages::Erf,
            GainKind::Tanh => {
                // P_0 = t, P_(k+1) = P_k'(t) (1 - t^2)
                let mut poly = vec![vec![0.0, 1.0]];
                for k in 0..MAX_PHI {
                    let p = &poly[k];
                    let mut d = vec![0.0; p.len() + 1];
                    for (r, c) in p.iter().enumerate().skip(1) {
                        d[r - 1] += r as f64 * c;
                        d[r + 1] -= r as f64 * c;
                    }
                    poly.push(d);
                }
                let gl = crate::num::quad::GaussLegendre::new(TANH_RULE_NODES);
                let nodes = gl.nodes.iter().map(|x| 0.5 * (x + 1.0)).collect();
                let weights = gl.weights.iter().map(|w| 0.5 * w).collect();
                PhiAverages::Tanh {
                    poly: Arc::new(poly),
                    rule: Arc::new((nodes, weights)),
                }
            }
        }
    }

    /// Phi_0..Phi_11 at D >= 0.
    fn at(&self, d: f64) -> [f64; MAX_PHI + 1] {
        let mut out = [0.0; MAX_PHI + 1];
        match self {
            PhiAverages::Erf => {
                let g = 1.0 / (1.0 + std::f64::consts::FRAC_PI_2 * d).sqrt();
                let inv = 1.0 / (std::f64::consts::FRAC_2_PI + d);
                let mut v = g;
                for j in 0..=(MAX_PHI - 1) / 2 {
                    out[2 * j + 1] = v;
                    v *= -((2 * j + 1) as f64) * inv;
                }
            }
            PhiAverages::Tanh { poly, rule } => {
                let eval = |x: f64, out: &mut [f64; MAX_PHI + 1], w: f64| {
                    let t = x.tanh();
                    for k in (1..=MAX_PHI).step_by(2) {
                        let v = poly[k].iter().rev().fold(0.0, |acc, c| acc * t + c);
                        out[k] += w * v;
                    }
                };
                if d <= 0.0 {
                    eval(0.0, &mut out, 1.0);
                    return out;
                }
                // E psi(x), x ~ N(0, D), psi even: 2 int_0^X psi(x) N(x; 0, D) dx over panels of
                // width <= min(1/4, s/2) up to X = min(9 s, 24) (beyond, the Gaussian weight or
                // sech^2 ~ e^(-2x) is below 1e-17 relative). The high derivatives tanh^(k),
                // k <= 11, are polynomials of degree k+1 in tanh: panels of width 1 left errors of
                // 1e-5 at k = 7 (measured as a jump when the panel count changes); at width 1/4
                // the poles of tanh (distance pi/2) are 12 half-widths away.
                let s = d.sqrt();
                let x_max = (9.0 * s).min(24.0);
                let panels = (x_max / (0.25f64).min(0.5 * s)).ceil() as usize;
                let width = x_max / panels as f64;
                let c = 2.0 * width / (s * (2.0 * std::f64::consts::PI).sqrt());
                let inv2d = 0.5 / d;
                for i in 0..panels {
                    let x0 = i as f64 * width;
                    for (&u, &w) in rule.0.iter().zip(&rule.1) {
                        let x = x0 + u * width;
                        eval(x, &mut out, c * w * (-x * x * inv2d).exp());
                    }
                }
            }
        }
        out
    }
}

/// Gauss-Legendre nodes per panel for the tanh averages (as in [`super::gain`]).
const TANH_RULE_NODES: usize = 10;

/// The finite-N gain map of one pattern draw (claim I-14): exact h_N or its moment-matched
/// expansion h_3 / h_5. Cheap to clone (the rows are shared).
#[derive(Debug, Clone)]
pub struct FiniteNGain {
    kind: GainKind,
    order: Order,
    averages: PhiAverages,
    /// m_pq of the draw.
    moments: Moments,
    /// The kept Hermite terms (p, q, c_pq / (p! q!)), even p + q in 4..=order + 1.
    terms: Vec<(usize, usize, f64)>,
    rows: Option<Arc<Rows>>,
}

impl FiniteNGain {
    /// The map of the pattern rows (a_i, b_i) (equal lengths N >= 2).
    pub fn new(kind: GainKind, order: Order, a: &[f64], b: &[f64]) -> FiniteNGain {
        debug_assert_eq!(a.len(), b.len());
        let m = moments(a, b);
        let c = hermite_moments(&m);
        let mut terms = Vec::new();
        // n = 2 is kept although it vanishes to rounding for orthonormalised patterns
        for n in (2..=order.max_power() + 1).step_by(2) {
            for (p, row) in c.iter().enumerate().take(n + 1) {
                let q = n - p;
                terms.push((p, q, row[q] / (factorial(p) * factorial(q))));
            }
        }
        FiniteNGain {
            kind,
            order,
            averages: PhiAverages::new(kind),
            moments: m,
            terms,
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

    /// The empirical moments m_pq (p + q <= 8).
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

    /// h_k and Dh_k: with mono = kappa^alpha, its gradient gr and Hessian H,
    /// h_e += w [kappa_e mono Phi_(n+1) + gr_e Phi_(n-1)] and (dPhi_k/dkappa_f = kappa_f Phi_(k+2))
    /// Dh_ef += w [(delta_ef mono + kappa_e gr_f + gr_e kappa_f) Phi_(n+1)
    ///            + kappa_e kappa_f mono Phi_(n+3) + H_ef Phi_(n-1)].
    fn expansion(&self, k: &Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        let ph = self.averages.at(k.norm_squared());
        let kk = k * k.transpose();
        let mut h = k * ph[1];
        let mut d = Matrix2::identity() * ph[1] + kk * ph[3];
        let pw = |x: f64, e: usize| if e == 0 { 1.0 } else { x.powi(e as i32) };
        for &(p, q, w) in &self.terms {
            let n = p + q;
            let (ka, kb) = (k[0], k[1]);
            let mono = pw(ka, p) * pw(kb, q);
            let fp = p as f64;
            let fq = q as f64;
            let gr = Vector2::new(
                if p > 0 {
                    fp * pw(ka, p - 1) * pw(kb, q)
                } else {
                    0.0
                },
                if q > 0 {
                    fq * pw(ka, p) * pw(kb, q - 1)
                } else {
                    0.0
                },
            );
            let haa = if p > 1 {
                fp * (fp - 1.0) * pw(ka, p - 2) * pw(kb, q)
            } else {
                0.0
            };
            let hab = if p > 0 && q > 0 {
                fp * fq * pw(ka, p - 1) * pw(kb, q - 1)
            } else {
                0.0
            };
            let hbb = if q > 1 {
                fq * (fq - 1.0) * pw(ka, p) * pw(kb, q - 2)
            } else {
                0.0
            };
            let hess = Matrix2::new(haa, hab, hab, hbb);
            h += (k * (mono * ph[n + 1]) + gr * ph[n - 1]) * w;
            let outer = k * gr.transpose() + gr * k.transpose();
            d += ((Matrix2::identity() * mono + outer) * ph[n + 1]
                + kk * (mono * ph[n + 3])
                + hess * ph[n - 1])
                * w;
        }
        (h, d)
    }
}

#[cfg(test)]
mod tests;
