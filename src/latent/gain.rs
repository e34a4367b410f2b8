//! The effective gain G(D) of docs/theory.md I.2: with kappa = U^T x / N and x Gaussian in the
//! pattern plane, Stein's lemma gives U^T phi(x) / N = G(|kappa|^2) kappa with
//! G(D) = <phi'(sqrt(D) z)>, z ~ N(0, 1).
//!
//! - erf, phi(x) = erf(sqrt(pi)/2 x): G(D) = (1 + pi D / 2)^(-1/2) in closed form,
//!   G'(D) = -(pi/4) (1 + pi D / 2)^(-3/2).
//! - tanh: G(D) = <tanh'(s z)>, s = sqrt(D), by quadrature. The derivative is
//!   G'(D) = <z tanh''(s z)> / (2 s) = <tanh'''(s z)> / 2 (Stein's lemma once more), which is
//!   regular at D = 0 and is computed by the same quadrature (no finite differences), so G and
//!   G' are consistent to rounding level.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::num::optim::brent_root;
use crate::num::quad::{GaussHermite, GaussLegendre};
use crate::{Error, Result};

/// Which single-neuron nonlinearity phi the latent reduction comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GainKind {
    /// phi(x) = erf(sqrt(pi)/2 x) (slope 1 at 0): closed-form G.
    Erf,
    /// phi(x) = tanh(x): G by quadrature.
    Tanh,
}

/// Gauss–Hermite nodes for tanh when s = sqrt(D) <= 1/2. The integrands sech^2(s z) and
/// tanh'''(s z) have poles at z = i pi / (2 s), at distance >= pi from the real axis; measured
/// error of the 64-node rule against composite Gauss–Legendre: ~1e-15 at s = 1/2 (but 3e-9 at
/// s = 1, 1e-4 in G' at s = 2: Gauss–Hermite degrades as the poles approach).
pub const TANH_NODES: usize = 64;

/// Switch point D = s^2 = 1/4 between the two tanh quadratures.
pub const TANH_SWITCH_D: f64 = 0.25;

/// For s > 1/2 the poles approach the real axis and Gauss–Hermite in z converges slowly.
/// There we integrate in x = s z instead: G = int sech^2(x) N(x; 0, s^2) dx, with
/// Gauss–Legendre panels of length at most min(1, s) (resolving both factors; the poles of
/// sech^2 sit at distance pi/2 from every panel) over |x| <= min(9 s, 20) (beyond, the Gaussian
/// factor or sech^2 is < 1e-17). Measured error <= 1e-13 in G and G' (unit test).
pub const TANH_PANEL_NODES: usize = 10;

/// The gain function G(D) and its slope G'(D) (docs/theory.md I.2).
#[derive(Debug, Clone)]
pub struct Gain {
    kind: GainKind,
    /// Half of a symmetric Gauss–Hermite rule (nodes >= 0, weights doubled off zero): the
    /// integrands are even in z.
    half: Option<Arc<(Vec<f64>, Vec<f64>)>>,
    /// Gauss–Legendre nodes and weights on [0, 1] for the x-panels (tanh, s > 1).
    panel: Option<Arc<(Vec<f64>, Vec<f64>)>>,
}

impl Gain {
    pub fn new(kind: GainKind) -> Self {
        let (half, panel) = match kind {
            GainKind::Erf => (None, None),
            GainKind::Tanh => {
                let gh = GaussHermite::new(TANH_NODES);
                let mut nodes = Vec::new();
                let mut weights = Vec::new();
                for (&x, &w) in gh.nodes.iter().zip(&gh.weights) {
                    if x > 1e-14 {
                        nodes.push(x);
                        weights.push(2.0 * w);
                    } else if x.abs() <= 1e-14 {
                        nodes.push(0.0);
                        weights.push(w);
                    }
                }
                let gl = GaussLegendre::new(TANH_PANEL_NODES);
                let pn = gl.nodes.iter().map(|x| 0.5 * (x + 1.0)).collect();
                let pw = gl.weights.iter().map(|w| 0.5 * w).collect();
                (Some(Arc::new((nodes, weights))), Some(Arc::new((pn, pw))))
            }
        };
        Gain { kind, half, panel }
    }

    pub fn kind(&self) -> GainKind {
        self.kind
    }

    /// G(D), D = |kappa|^2 >= 0.
    pub fn g(&self, d: f64) -> f64 {
        self.g_and_slope(d).0
    }

    /// (G(D), G'(D)).
    #[inline]
    pub fn g_and_slope(&self, d: f64) -> (f64, f64) {
        match (&self.half, &self.panel) {
            (Some(_), Some(p)) if d > TANH_SWITCH_D => {
                // x = s z: G = 2 int_0^X sech^2(x) N(x; 0, s^2) dx; G' the same with tanh'''/2.
                let s = d.sqrt();
                let x_max = (9.0 * s).min(20.0);
                let panels = (x_max / s.min(1.0)).ceil() as usize;
                let width = x_max / panels as f64;
                let c = 2.0 * width / (s * (2.0 * std::f64::consts::PI).sqrt());
                let inv2s2 = 0.5 / d;
                let (mut g, mut gp) = (0.0, 0.0);
                for i in 0..panels {
                    let x0 = i as f64 * width;
                    for (&u, &w) in p.0.iter().zip(&p.1) {
                        let x = x0 + u * width;
                        let t = x.tanh();
                        let sech2 = 1.0 - t * t;
                        let wg = w * (-x * x * inv2s2).exp();
                        g += wg * sech2;
                        // tanh''' = sech^2 (6 tanh^2 - 2)
                        gp += wg * sech2 * (6.0 * t * t - 2.0);
                    }
                }
                (c * g, 0.5 * c * gp)
            }
            (Some(h), _) => {
                let s = d.max(0.0).sqrt();
                let (mut g, mut gp) = (0.0, 0.0);
                for (&z, &w) in h.0.iter().zip(&h.1) {
                    let t = (s * z).tanh();
                    let sech2 = 1.0 - t * t;
                    g += w * sech2;
                    gp += w * sech2 * (6.0 * t * t - 2.0);
                }
                (g, 0.5 * gp)
            }
            _ => {
                let q = 1.0 + std::f64::consts::FRAC_PI_2 * d;
                let g = 1.0 / q.sqrt();
                (g, -std::f64::consts::FRAC_PI_4 * g / q)
            }
        }
    }

    /// The squared radius D with lambda G(D) = 1: the fixed point on an eigenvector of M with
    /// real eigenvalue lambda > 1 (claim I-1). erf: D = (2/pi)(lambda^2 - 1); tanh: 1-D root.
    pub fn radius_sq_for_eigenvalue(&self, lambda: f64) -> Result<f64> {
        if lambda.is_nan() || lambda <= 1.0 || !lambda.is_finite() {
            return Err(Error::Requirement(format!(
                "a nonzero fixed point needs a real eigenvalue lambda > 1 (got {lambda})"
            )));
        }
        match self.kind {
            GainKind::Erf => Ok(std::f64::consts::FRAC_2_PI * (lambda * lambda - 1.0)),
            GainKind::Tanh => {
                // G decreases from 1 to 0 (G ~ sqrt(2/(pi D)) for large D): bracket by doubling.
                let target = 1.0 / lambda;
                let mut hi = 1.0;
                while self.g(hi) > target {
                    hi *= 2.0;
                    if hi > 1e8 {
                        return Err(Error::Requirement(format!(
                            "no fixed point radius for lambda = {lambda} below D = 1e8"
                        )));
                    }
                }
                brent_root(|d| self.g(d) - target, 0.0, hi, 1e-15 * hi)
            }
        }
    }

    /// lambda_A for a readout target zhat along a (claim I-1): the eigenvalue whose fixed
    /// point has rate readout y = G(D) sqrt(D) = zhat. erf: lambda_A = (1 - pi zhat^2/2)^(-1/2).
    /// Both gains need 0 < zhat < sqrt(2/pi) (sup of sqrt(D) G(D)); otherwise the error names
    /// `zhat`.
    pub fn lambda_for_target(&self, zhat: f64) -> Result<f64> {
        let limit = std::f64::consts::FRAC_2_PI.sqrt();
        if !(zhat > 0.0 && zhat < limit) {
            return Err(Error::Parameter {
                file: String::new(),
                field: "zhat".into(),
                value: zhat.to_string(),
                allowed: format!("(0, sqrt(2/pi) = {limit:.6})"),
                reason: "no attractor has this rate readout (|y| = sqrt(D) G(D) < sqrt(2/pi))"
                    .into(),
            });
        }
        match self.kind {
            GainKind::Erf => Ok(1.0 / (1.0 - std::f64::consts::FRAC_PI_2 * zhat * zhat).sqrt()),
            GainKind::Tanh => {
                // sqrt(D) G(D) = <z tanh(sqrt(D) z)> rises monotonically from 0 to sqrt(2/pi).
                let y = |d: f64| d.sqrt() * self.g(d) - zhat;
                let mut hi = 1.0;
                while y(hi) < 0.0 {
                    hi *= 2.0;
                    if hi > 1e8 {
                        return Err(Error::Requirement(format!(
                            "zhat = {zhat} too close to sqrt(2/pi) for the tanh gain"
                        )));
                    }
                }
                let d = brent_root(y, 0.0, hi, 1e-15 * hi)?;
                Ok(1.0 / self.g(d))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference <f(z)> by composite Gauss–Legendre on [-12, 12] (tail < 1e-31).
    fn reference(f: impl Fn(f64) -> f64) -> f64 {
        let gl = GaussLegendre::new(20);
        let c = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
        gl.integrate_composite(|z| c * (-0.5 * z * z).exp() * f(z), -12.0, 12.0, 400)
    }

    #[test]
    fn tanh_gain_matches_reference_quadrature() {
        let gain = Gain::new(GainKind::Tanh);
        for &d in &[0.0, 0.01, 0.3, 0.999, 1.001, 3.0, 9.0, 30.0] {
            let s: f64 = f64::sqrt(d);
            let g_ref = reference(|z| 1.0 - (s * z).tanh().powi(2));
            let gp_ref = reference(|z| {
                let t = (s * z).tanh();
                0.5 * (1.0 - t * t) * (6.0 * t * t - 2.0)
            });
            let (g, gp) = gain.g_and_slope(d);
            assert!((g - g_ref).abs() < 1e-13, "D={d}: {g} vs {g_ref}");
            assert!((gp - gp_ref).abs() < 1e-13, "D={d}: {gp} vs {gp_ref}");
        }
        // G(0) = tanh'(0) = 1, G'(0) = tanh'''(0)/2 = -1
        let (g0, gp0) = gain.g_and_slope(0.0);
        assert!((g0 - 1.0).abs() < 1e-14 && (gp0 + 1.0).abs() < 1e-14);
    }

    #[test]
    fn slope_is_derivative_of_gain() {
        // central differences: truncation ~h^2 G''' ~ 1e-10, rounding ~1e-16/h ~ 1e-11
        let h = 1e-5;
        for kind in [GainKind::Erf, GainKind::Tanh] {
            let gain = Gain::new(kind);
            for &d in &[0.05, 0.4, 1.5, 4.0] {
                let fd = (gain.g(d + h) - gain.g(d - h)) / (2.0 * h);
                let (_, gp) = gain.g_and_slope(d);
                assert!((fd - gp).abs() < 1e-8, "{kind:?} D={d}: {fd} vs {gp}");
            }
        }
    }

    #[test]
    fn erf_lambda_for_target_reproduces_reference() {
        let gain = Gain::new(GainKind::Erf);
        let l = gain.lambda_for_target(0.5).unwrap();
        let r = gain.radius_sq_for_eigenvalue(l).unwrap().sqrt();
        assert!((l - 1.283).abs() < 5e-4 && (r - 0.642).abs() < 5e-4);
        assert!((r / l - 0.5).abs() < 1e-14);
        let err = gain.lambda_for_target(0.8).unwrap_err().to_string();
        assert!(err.contains("zhat"), "{err}");
    }

    #[test]
    fn tanh_lambda_for_target_has_readout_zhat() {
        let gain = Gain::new(GainKind::Tanh);
        for &z in &[0.1, 0.5, 0.7] {
            let l = gain.lambda_for_target(z).unwrap();
            let d = gain.radius_sq_for_eigenvalue(l).unwrap();
            assert!((d.sqrt() * gain.g(d) - z).abs() < 1e-12, "zhat={z}");
        }
    }
}
