//! The new-formation kernel Theta_new (THEORY I-12) and the rotation share f_rot (I-13).
//!
//! # Theta_new in closed form
//! For the linear network x' = -x + W0 x + u(t) b with z = b^T x(T)/N, the full-W NTK at
//! initialisation is (large N) Theta_new = sum_{j,k>=0} G_jk^2 with
//! G_jk = int_0^T f_j(T - t) F_k(t) dt, f_k(s) = e^{-s} (g s)^k / k!, F_k = u * f_k.
//! Two facts make this a single series:
//!
//! 1. f_j * f_k (x) = e^{-x} g^{j+k} x^{j+k+1} / (j+k+1)!  (a Beta integral), so G_jk depends
//!    on j + k = n only: G_jk = g^n c_n.
//! 2. For the piecewise-constant input (u_p on [0, T_in), u_s on [T_in, T], T = T_in + T_d),
//!    u = u_p [H(t) - H(t - T_in)] + u_s H(t - T_in) and int_0^L (f_j * f_k) = g^n P(n+2, L),
//!    P the regularised lower incomplete gamma function. Hence
//!    c_n = u_p [P(n+2, T) - P(n+2, T_d)] + u_s P(n+2, T_d),
//!    and, counting the n + 1 pairs (j, k) with j + k = n,
//!
//!    **Theta_new = sum_{n>=0} (n+1) g^{2n} c_n^2.**
//!
//! At g = 0 only n = 0 survives: Theta_new = c_0^2 with P(2, x) = 1 - e^{-x}(1 + x); this is
//! the convention that reproduces the I-12 table (0.0989 at T_d = 2): no extra normalisation.
//!
//! # Controlled truncation
//! Let p_m(x) = e^{-x} x^m / m!. Since d/dx P(a, x) = p_{a-1}(x) and p_m(x) increases in x for
//! x < m, for n + 1 >= T: 0 <= P(n+2,T) - P(n+2,T_d) <= T_in p_{n+1}(T), and
//! P(n+2, T_d) <= P(n+2, T) <= p_{n+2}(T) / (1 - T/(n+3)) (geometric majorant of the Poisson
//! tail). So |c_n| <= B_n = |u_p| T_in p_{n+1}(T) + |u_s| p_{n+2}(T)/(1 - T/(n+3)), and
//! B_{n+1} <= B_n T/(n+2). The term bounds b_n = (n+1) g^{2n} B_n^2 then have ratio
//! b_{n+1}/b_n <= rho_n = g^2 T^2 / ((n+1)(n+2)), decreasing in n, so after the term n = N
//! (with N + 2 >= T and rho_{N+1} < 1) the neglected tail is at most b_{N+1} / (1 - rho_{N+1}).
//! The sum stops at the first N where this bound is below [`SERIES_RTOL`] times the partial sum.

use serde::Serialize;

use super::dressing::beta;
use crate::num::quad::GaussLegendre;
use crate::{Error, Result};

/// Relative truncation tolerance of the Theta_new series (the proven tail bound is below it).
pub const SERIES_RTOL: f64 = 1e-14;

/// Largest g accepted by [`theta_new_series`] (keeps g^{2n} p_n(T)^2 away from under/overflow).
pub const G_MAX: f64 = 1.5;

/// Largest T_in and T_d accepted by [`theta_new_series`].
pub const T_MAX: f64 = 200.0;

/// Cap on the number of series terms (never reached inside the accepted domain).
const MAX_TERMS: usize = 20_000;

/// Input time course of a trial (THEORY I.1): a pulse u_p for T_in, then a sustained level
/// u_s for the delay T_d; the readout is taken at T = T_in + T_d.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InputSchedule {
    /// Pulse duration T_in.
    pub t_in: f64,
    /// Pulse amplitude u_p.
    pub u_p: f64,
    /// Delay T_d.
    pub t_d: f64,
    /// Sustained input during the delay, u_s (0: pure memory).
    pub u_s: f64,
}

impl InputSchedule {
    /// A pure-memory schedule (u_s = 0).
    pub fn memory(t_in: f64, u_p: f64, t_d: f64) -> Self {
        InputSchedule {
            t_in,
            u_p,
            t_d,
            u_s: 0.0,
        }
    }

    /// Total trial time T = T_in + T_d.
    pub fn duration(&self) -> f64 {
        self.t_in + self.t_d
    }

    /// Input u(t) (u_p on [0, T_in), u_s afterwards).
    pub fn input(&self, t: f64) -> f64 {
        if t < self.t_in {
            self.u_p
        } else {
            self.u_s
        }
    }

    /// Check the domain of [`theta_new_series`]: 0 <= T_in, T_d <= [`T_MAX`], finite inputs.
    pub fn validate(&self) -> Result<()> {
        let ok_t = |t: f64| t.is_finite() && (0.0..=T_MAX).contains(&t);
        if !ok_t(self.t_in) || !ok_t(self.t_d) {
            return Err(Error::Requirement(format!(
                "Theta_new needs 0 <= T_in, T_d <= {T_MAX}, got T_in = {}, T_d = {}",
                self.t_in, self.t_d
            )));
        }
        if !self.u_p.is_finite() || !self.u_s.is_finite() {
            return Err(Error::Requirement(format!(
                "Theta_new needs finite inputs, got u_p = {}, u_s = {}",
                self.u_p, self.u_s
            )));
        }
        Ok(())
    }
}

/// Result of the Theta_new series.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ThetaNew {
    /// Theta_new (THEORY I-12).
    pub value: f64,
    /// Number of terms n = 0..terms-1 summed.
    pub terms: usize,
    /// Proven bound on the neglected tail (absolute).
    pub tail_bound: f64,
}

/// Poisson probabilities p_m(x) = e^{-x} x^m / m!, built by the upward recurrence (relative
/// rounding ~ m ulp; no underflow of p_0 for x <= 2 T_MAX).
struct Poisson {
    x: f64,
    pmf: Vec<f64>,
    /// prefix[a] = Q(a, x) = sum_{m<a} p_m(x).
    prefix: Vec<f64>,
}

impl Poisson {
    fn new(x: f64) -> Self {
        Poisson {
            x,
            pmf: vec![(-x).exp()],
            prefix: vec![0.0],
        }
    }

    fn pmf(&mut self, m: usize) -> f64 {
        while self.pmf.len() <= m {
            let k = self.pmf.len();
            let next = self.pmf[k - 1] * self.x / k as f64;
            self.pmf.push(next);
        }
        self.pmf[m]
    }

    /// Q(a, x) = sum_{m<a} p_m(x) by prefix sums of positive terms (relative accuracy ~ a ulp;
    /// used when a <= x, where P(a, x) >~ 1/2 and 1 - Q would lose digits of the small Q).
    fn q(&mut self, a: usize) -> f64 {
        while self.prefix.len() <= a {
            let k = self.prefix.len();
            let p = self.pmf(k - 1);
            let last = self.prefix[k - 1];
            self.prefix.push(last + p);
        }
        self.prefix[a]
    }

    /// P(a, x) = sum_{m>=a} p_m(x): summed directly when a > x (fast, no cancellation),
    /// as 1 - Q otherwise (then P >~ 1/2, no cancellation either).
    fn p(&mut self, a: usize) -> f64 {
        if (a as f64) <= self.x {
            return 1.0 - self.q(a);
        }
        let mut term = self.pmf(a);
        let mut sum = term;
        let mut m = a;
        while term > 1e-18 * sum {
            m += 1;
            term *= self.x / m as f64;
            sum += term;
        }
        sum
    }
}

/// Series coefficients c_n (G_jk = g^{j+k} c_{j+k}), with their Poisson tables.
struct Coefficients {
    s: InputSchedule,
    at_t: Poisson,
    at_td: Poisson,
}

impl Coefficients {
    fn new(s: &InputSchedule) -> Self {
        Coefficients {
            s: *s,
            at_t: Poisson::new(s.duration()),
            at_td: Poisson::new(s.t_d),
        }
    }

    /// c_n = u_p [P(n+2, T) - P(n+2, T_d)] + u_s P(n+2, T_d).
    fn c(&mut self, n: usize) -> f64 {
        let a = n + 2;
        let p_td = self.at_td.p(a);
        let diff = if (a as f64) <= self.s.t_d {
            // Both P near 1: difference of the small upper tails Q instead.
            self.at_td.q(a) - self.at_t.q(a)
        } else {
            self.at_t.p(a) - p_td
        };
        self.s.u_p * diff + self.s.u_s * p_td
    }

    /// ln of the bound b_{n} on term n (valid for n + 1 >= T), see the module docs.
    fn ln_term_bound(&mut self, g: f64, n: usize) -> f64 {
        let t = self.s.duration();
        let nf = n as f64;
        let geo = 1.0 - t / (nf + 3.0);
        let b = self.s.u_p.abs() * self.s.t_in * self.at_t.pmf(n + 1)
            + self.s.u_s.abs() * self.at_t.pmf(n + 2) / geo;
        (nf + 1.0).ln() + 2.0 * nf * g.ln() + 2.0 * b.ln()
    }
}

/// (n+1) g^{2n} c^2, in logs so that g^{2n} cannot overflow.
fn series_term(g: f64, n: usize, c: f64) -> f64 {
    if c == 0.0 {
        return 0.0;
    }
    if n == 0 {
        return c * c;
    }
    if g == 0.0 {
        return 0.0;
    }
    ((n as f64 + 1.0).ln() + 2.0 * (n as f64 * g.ln() + c.abs().ln())).exp()
}

fn validate(g: f64, s: &InputSchedule) -> Result<()> {
    if !(g.is_finite() && (0.0..=G_MAX).contains(&g)) {
        return Err(Error::Requirement(format!(
            "Theta_new needs 0 <= g <= {G_MAX}, got g = {g}"
        )));
    }
    s.validate()
}

/// Tail bound after the term n = `last` (None if the bound is not yet valid).
fn tail_bound(coef: &mut Coefficients, g: f64, last: usize) -> Option<f64> {
    if g == 0.0 {
        return Some(0.0); // every further term carries g^{2n} = 0
    }
    let t = coef.s.duration();
    let n1 = last as f64 + 1.0;
    let rho = g * g * t * t / ((n1 + 1.0) * (n1 + 2.0));
    if n1 + 1.0 < t || rho >= 1.0 {
        return None;
    }
    let ln_b = coef.ln_term_bound(g, last + 1);
    Some(ln_b.exp() / (1.0 - rho))
}

/// Theta_new (THEORY I-12) with its proven truncation bound.
///
/// Domain: 0 <= g <= [`G_MAX`], 0 <= T_in, T_d <= [`T_MAX`], finite u_p, u_s; otherwise
/// `Error::Requirement`. The result's `tail_bound` is <= [`SERIES_RTOL`] * `value`.
pub fn theta_new_series(g: f64, schedule: &InputSchedule) -> Result<ThetaNew> {
    validate(g, schedule)?;
    let mut coef = Coefficients::new(schedule);
    let mut sum = 0.0;
    for n in 0..MAX_TERMS {
        let c = coef.c(n);
        sum += series_term(g, n, c);
        if let Some(bound) = tail_bound(&mut coef, g, n) {
            if bound <= SERIES_RTOL * sum || bound == 0.0 {
                return Ok(ThetaNew {
                    value: sum,
                    terms: n + 1,
                    tail_bound: bound,
                });
            }
        }
    }
    Err(Error::NoConvergence {
        solver: "Theta_new series".into(),
        iterations: MAX_TERMS,
        residual: f64::NAN,
        tolerance: SERIES_RTOL,
    })
}

/// Theta_new(g, schedule): the initial speed of new formation (THEORY I-12),
/// sum_{j,k>=0} G_jk^2, summed to relative accuracy [`SERIES_RTOL`].
///
/// The input runs along b and the readout is z = b^T x(T)/N, the NTK taken with respect to all
/// N^2 entries of W at initialisation (W = W0, linear network), in the large-N limit. Returns
/// NaN outside the domain of [`theta_new_series`] (use that function to get the error).
pub fn theta_new(g: f64, schedule: &InputSchedule) -> f64 {
    theta_new_series(g, schedule)
        .map(|t| t.value)
        .unwrap_or(f64::NAN)
}

/// Partial sum over n < `terms` and the proven bound on the rest (+inf while the bound is not
/// yet valid, i.e. before n + 2 >= T and g^2 T^2 < (n+1)(n+2)).
pub fn theta_new_partial(g: f64, schedule: &InputSchedule, terms: usize) -> Result<(f64, f64)> {
    validate(g, schedule)?;
    let mut coef = Coefficients::new(schedule);
    let mut sum = 0.0;
    for n in 0..terms {
        let c = coef.c(n);
        sum += series_term(g, n, c);
    }
    let bound = if terms == 0 {
        f64::INFINITY
    } else {
        tail_bound(&mut coef, g, terms - 1).unwrap_or(f64::INFINITY)
    };
    Ok((sum, bound))
}

/// G_jk = g^{j+k} c_{j+k} from the closed form (THEORY I-12).
pub fn g_jk(g: f64, schedule: &InputSchedule, j: usize, k: usize) -> Result<f64> {
    validate(g, schedule)?;
    let n = j + k;
    let c = Coefficients::new(schedule).c(n);
    Ok(if n == 0 { c } else { g.powi(n as i32) * c })
}

/// f_k(s) = e^{-s} (g s)^k / k! (THEORY I-12).
pub fn f_k(g: f64, k: usize, s: f64) -> f64 {
    let mut v = (-s).exp();
    for i in 1..=k {
        v *= g * s / i as f64;
    }
    v
}

/// G_jk by nested Gauss–Legendre quadrature of the definition (independent of the closed
/// form): F_k(t) = int_0^t u(t - s) f_k(s) ds, then G_jk = int_0^T f_j(T - t) F_k(t) dt, both
/// split at the input switch so every panel integrand is smooth. Returns the matrix
/// `G[j][k]` for j, k < `size`.
pub fn g_matrix_quadrature(g: f64, schedule: &InputSchedule, size: usize) -> Vec<Vec<f64>> {
    let gl = GaussLegendre::new(24);
    let t_end = schedule.duration();
    let panels = |len: f64| (len.ceil() as usize).max(1) * 2;
    // Outer nodes and weights on [0, T_in] and [T_in, T] (panels of length <= 1/2).
    let mut outer: Vec<(f64, f64)> = Vec::new();
    for &(lo, hi) in &[(0.0, schedule.t_in), (schedule.t_in, t_end)] {
        let m = panels(hi - lo);
        let h = (hi - lo) / m as f64;
        for p in 0..m {
            let mid = lo + (p as f64 + 0.5) * h;
            for (x, w) in gl.nodes.iter().zip(&gl.weights) {
                outer.push((mid + 0.5 * h * x, 0.5 * h * w));
            }
        }
    }
    // F_k(t) = int_0^t u(t - s) f_k(s) ds: u(t - s) = u_s for s < t - T_in, u_p after.
    let f_conv = |k: usize, t: f64| -> f64 {
        let switch = (t - schedule.t_in).max(0.0);
        let late = if switch > 0.0 {
            gl.integrate_composite(|s| f_k(g, k, s), 0.0, switch, panels(switch))
        } else {
            0.0
        };
        let early = gl.integrate_composite(|s| f_k(g, k, s), switch, t, panels(t - switch));
        schedule.u_s * late + schedule.u_p * early
    };
    let big_f: Vec<Vec<f64>> = (0..size)
        .map(|k| outer.iter().map(|&(t, _)| f_conv(k, t)).collect())
        .collect();
    let small_f: Vec<Vec<f64>> = (0..size)
        .map(|j| {
            outer
                .iter()
                .map(|&(t, w)| w * f_k(g, j, t_end - t))
                .collect()
        })
        .collect();
    small_f
        .iter()
        .map(|fj| {
            big_f
                .iter()
                .map(|fk| fj.iter().zip(fk).map(|(a, b)| a * b).sum())
                .collect()
        })
        .collect()
}

/// psi_A^2 = |phi(x_A)|^2 / N at a latent fixed point x_A = kappa a (|a|^2 = N, Gaussian
/// entries) for phi(x) = erf(sqrt(pi) x / 2): E[erf(alpha z)^2] = (2/pi) asin(2 alpha^2 /
/// (1 + 2 alpha^2)), alpha = sqrt(pi) |kappa| / 2 (THEORY I-13).
pub fn psi_sq_erf(kappa_norm: f64) -> f64 {
    let a2 = std::f64::consts::PI * kappa_norm * kappa_norm / 4.0;
    2.0 / std::f64::consts::PI * (2.0 * a2 / (1.0 + 2.0 * a2)).asin()
}

/// Theta_rot ~ psi_A^2 beta (THEORY I-13; estimate, unverified): rotation rides on the
/// persistent attractor activity psi_A^2 = |phi(x_A)|^2/N, with no exponential suppression
/// in the delay.
pub fn theta_rot(psi_a_sq: f64, g: f64) -> f64 {
    psi_a_sq * beta(g)
}

/// f_rot ~ Theta_rot / (Theta_rot + Theta_new): the fraction of the B loss removed by rotation
/// in the lazy regime (THEORY I-13; estimate). NaN if both kernels vanish.
pub fn rotation_share(theta_rot: f64, theta_new: f64) -> f64 {
    theta_rot / (theta_rot + theta_new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(t_d: f64, u_s: f64) -> InputSchedule {
        InputSchedule {
            t_in: 2.0,
            u_p: 1.0,
            t_d,
            u_s,
        }
    }

    /// g = 0: Theta_new = G_00^2 with G_00 = int_0^T e^{-(T-t)} F_0(t) dt, done by hand:
    /// G_00 = u_p [e^{-T_d}(1 + T_d) - e^{-T}(1 + T)] + u_s [1 - e^{-T_d}(1 + T_d)].
    #[test]
    fn g_zero_closed_form() {
        for &(t_d, u_s) in &[(2.0, 0.0), (5.0, 0.0), (10.0, 0.0), (10.0, 0.3), (0.0, 0.7)] {
            let s = sched(t_d, u_s);
            let t = s.duration();
            let q = |x: f64| (-x).exp() * (1.0 + x);
            let g00 = s.u_p * (q(t_d) - q(t)) + u_s * (1.0 - q(t_d));
            let th = theta_new_series(0.0, &s).unwrap();
            assert!(
                (th.value - g00 * g00).abs() <= 1e-14 * g00 * g00,
                "T_d={t_d}: {} vs {}",
                th.value,
                g00 * g00
            );
            assert_eq!(th.terms, 1);
        }
        // T_d = 2: G_00 = 3 e^{-2} - 5 e^{-4} (hand value 0.0988649).
        let g00 = 3.0 * (-2.0f64).exp() - 5.0 * (-4.0f64).exp();
        assert!((theta_new(0.0, &sched(2.0, 0.0)) - g00 * g00).abs() < 1e-16);
    }

    #[test]
    fn closed_form_matches_quadrature_of_the_definition() {
        // Quadrature of G_jk for j, k < 30 (the rest is < 1e-20 here) vs the closed form.
        for &(g, t_d, u_s) in &[(0.5, 2.0, 0.0), (0.8, 5.0, 0.3)] {
            let s = sched(t_d, u_s);
            let gm = g_matrix_quadrature(g, &s, 30);
            let mut quad = 0.0;
            for (j, row) in gm.iter().enumerate() {
                for (k, v) in row.iter().enumerate() {
                    quad += v * v;
                    let cf = g_jk(g, &s, j, k).unwrap();
                    assert!(
                        (v - cf).abs() < 1e-13 * (1.0 + cf.abs()),
                        "G_{j}{k}: {v} vs {cf}"
                    );
                }
            }
            let th = theta_new(g, &s);
            assert!((quad - th).abs() < 1e-12 * th, "g={g}: {quad} vs {th}");
        }
    }

    #[test]
    fn tail_bound_is_honest_and_small() {
        let s = sched(10.0, 0.0);
        let th = theta_new_series(0.8, &s).unwrap();
        assert!(th.tail_bound <= SERIES_RTOL * th.value);
        let (more, _) = theta_new_partial(0.8, &s, th.terms + 50).unwrap();
        assert!(more - th.value <= th.tail_bound + 4.0 * f64::EPSILON * th.value);
        // Before the bound becomes valid it is reported as infinite.
        let (_, b) = theta_new_partial(0.8, &s, 3).unwrap();
        assert!(b.is_infinite());
    }

    #[test]
    fn domain_errors() {
        let s = sched(2.0, 0.0);
        assert!(theta_new_series(-0.1, &s).is_err());
        assert!(theta_new_series(2.0, &s).is_err());
        assert!(theta_new(f64::NAN, &s).is_nan());
        assert!(theta_new_series(0.5, &sched(f64::INFINITY, 0.0)).is_err());
        assert!(theta_new_series(0.5, &sched(1e3, 0.0)).is_err());
        assert!(theta_new_series(0.5, &sched(2.0, f64::NAN)).is_err());
    }

    #[test]
    fn psi_limits() {
        // small kappa: erf(alpha z) ~ 2 alpha z / sqrt(pi) => psi^2 ~ kappa^2.
        assert!((psi_sq_erf(1e-4) / 1e-8 - 1.0).abs() < 1e-7);
        assert!((psi_sq_erf(1e4) - 1.0).abs() < 1e-4);
        assert!((rotation_share(1.0, 1.0) - 0.5).abs() < 1e-15);
    }
}
