//! Predictions of the NeurIPS-2020 linear theory ("interplay between randomness and
//! structure", THEORY I-10) for a linear RNN trained on a constant-input task with target zhat.
//!
//! Everything runs in the dressed learning time tau~ = beta^2 tau (I-9): random connectivity
//! g speeds learning up by beta^2 = (1 - g^2)^{-2} at leading order. The trained-network checks
//! of these formulas belong to the trained-network issue; here they are prediction functions,
//! checked for internal consistency.

use serde::Serialize;

use super::dressing::beta;

/// Dressed learning time tau~ = beta^2 tau.
pub fn dressed_time(g: f64, tau: f64) -> f64 {
    beta(g).powi(2) * tau
}

/// Readout z(tau~) ~ zhat tau~ - zhat tau~^2/2 + zhat tau~^3 (1 + 8 zhat^2 beta)/6
/// (short-time expansion).
pub fn readout(zhat: f64, g: f64, tt: f64) -> f64 {
    let b = beta(g);
    zhat * tt - zhat * tt * tt / 2.0 + zhat * tt.powi(3) * (1.0 + 8.0 * zhat * zhat * b) / 6.0
}

/// Singular values of dW: s1 ~ (zhat/beta)[tau~ - tau~^2/2 + tau~^3 (1 + 3.5 zhat^2 beta)/6],
/// s2 ~ zhat^3 tau~^3 / 12.
pub fn singular_values(zhat: f64, g: f64, tt: f64) -> (f64, f64) {
    let b = beta(g);
    let s1 = zhat / b * (tt - tt * tt / 2.0 + tt.powi(3) * (1.0 + 3.5 * zhat * zhat * b) / 6.0);
    let s2 = zhat.powi(3) * tt.powi(3) / 12.0;
    (s1, s2)
}

/// Eigenvalue of dW ~ zhat^2 tau~^2 / beta.
pub fn eig_dw(zhat: f64, g: f64, tt: f64) -> f64 {
    zhat * zhat * tt * tt / beta(g)
}

/// Outlier eigenvalue of W = W0 + dW ~ g^2 + g sqrt(eig dW) + eig dW / 2 (as quoted).
///
/// Note: at g = 0 (W = dW) this gives eig dW / 2 although the outlier is then eig dW itself;
/// see the I-10 claim file.
pub fn outlier(g: f64, eig: f64) -> f64 {
    g * g + g * eig.max(0.0).sqrt() + eig / 2.0
}

/// Normalised to g = 0: convergence time ~ (1 - g^2)^2 = 1/beta^2.
pub fn convergence_time_ratio(g: f64) -> f64 {
    (1.0 - g * g).powi(2)
}

/// Normalised to g = 0: |dW| ~ 1 - g^2 = 1/beta.
pub fn dw_norm_ratio(g: f64) -> f64 {
    1.0 - g * g
}

/// Normalised to g = 0: mean gradient norm ~ 1/(1 - g^2) = beta.
pub fn mean_gradient_ratio(g: f64) -> f64 {
    1.0 / (1.0 - g * g)
}

/// Loss after shuffling W0 (keeping dW), relative to the untrained loss:
/// L/L0 = g^4 (2 - g^2)^2.
pub fn shuffle_loss_ratio(g: f64) -> f64 {
    g.powi(4) * (2.0 - g * g).powi(2)
}

/// All I-10 predictions at one point, for reports.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LinearTheory {
    pub g: f64,
    pub zhat: f64,
    /// Dressed time tau~.
    pub tau_tilde: f64,
    pub z: f64,
    pub s1: f64,
    pub s2: f64,
    pub eig_dw: f64,
    pub outlier: f64,
    pub convergence_time_ratio: f64,
    pub dw_norm_ratio: f64,
    pub mean_gradient_ratio: f64,
    pub shuffle_loss_ratio: f64,
}

/// Evaluate every I-10 prediction at (g, zhat, tau).
pub fn linear_theory(g: f64, zhat: f64, tau: f64) -> LinearTheory {
    let tt = dressed_time(g, tau);
    let (s1, s2) = singular_values(zhat, g, tt);
    let e = eig_dw(zhat, g, tt);
    LinearTheory {
        g,
        zhat,
        tau_tilde: tt,
        z: readout(zhat, g, tt),
        s1,
        s2,
        eig_dw: e,
        outlier: outlier(g, e),
        convergence_time_ratio: convergence_time_ratio(g),
        dw_norm_ratio: dw_norm_ratio(g),
        mean_gradient_ratio: mean_gradient_ratio(g),
        shuffle_loss_ratio: shuffle_loss_ratio(g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_shuffle_values() {
        // 0.0625 * 1.75^2 = 0.19140625; 0.4096 * 1.36^2 = 0.75759616.
        assert!((shuffle_loss_ratio(0.5) - 0.19140625).abs() < 1e-15);
        assert!((shuffle_loss_ratio(0.8) - 0.75759616).abs() < 1e-14);
    }

    /// Identities between the I-10 formulas (moved here from the I-10 check, where the same
    /// code on both sides could not fail a claim): shuffling W0 removes the dressing, so
    /// L/L0 = (1 - 1/beta^2)^2 = g^4 (2 - g^2)^2; the mean gradient norm is |dW| over the
    /// convergence time, (1 - g^2) / (1 - g^2)^2 = 1/(1 - g^2).
    #[test]
    fn identities_between_the_formulas() {
        for &g in &[0.3, 0.5, 0.8] {
            let b = beta(g);
            let shuffle = (1.0 - 1.0 / (b * b)).powi(2);
            assert!((shuffle_loss_ratio(g) - shuffle).abs() < 1e-12 * shuffle);
            let m = dw_norm_ratio(g) / convergence_time_ratio(g);
            assert!((mean_gradient_ratio(g) - m).abs() < 1e-12 * m);
        }
    }

    #[test]
    fn g_zero_is_undressed() {
        let t = linear_theory(0.0, 1.0, 0.3);
        assert_eq!(t.tau_tilde, 0.3);
        assert_eq!(t.convergence_time_ratio, 1.0);
        assert_eq!(t.shuffle_loss_ratio, 0.0);
        assert!((t.z - (0.3 - 0.045 + 0.027 * 9.0 / 6.0)).abs() < 1e-15);
    }
}
