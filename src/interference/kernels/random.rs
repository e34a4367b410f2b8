//! Finite-N random networks for the kernel measurements (THEORY I.1, I.4, I.5).
//!
//! W0_ij ~ N(0, g^2/N); patterns a, b Gaussian, exactly orthogonalised (Gram–Schmidt, applied
//! twice) and scaled to |a|^2 = |b|^2 = N. Deterministic for a given seed.

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::{Error, Result};

/// A random linear network: connectivity W0 and the two task patterns a, b.
#[derive(Debug, Clone)]
pub struct RandomNetwork {
    /// Number of neurons N.
    pub n: usize,
    /// Random-connectivity strength g.
    pub g: f64,
    /// W0, entries N(0, g^2/N).
    pub w0: DMatrix<f64>,
    /// Pattern a, |a|^2 = N.
    pub a: DVector<f64>,
    /// Pattern b, |b|^2 = N, a.b = 0 to rounding.
    pub b: DVector<f64>,
}

impl RandomNetwork {
    /// Sample W0 and orthogonal patterns a, b from `seed`. Needs N >= 2 and finite g >= 0.
    pub fn sample(n: usize, g: f64, seed: u64) -> Result<Self> {
        if n < 2 {
            return Err(Error::Requirement(format!(
                "random network needs N >= 2 neurons, got {n}"
            )));
        }
        if !(g.is_finite() && g >= 0.0) {
            return Err(Error::Requirement(format!(
                "random network needs a finite g >= 0, got {g}"
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let sd = g / (n as f64).sqrt();
        let w0 = DMatrix::from_fn(n, n, |_, _| sd * rng.sample::<f64, _>(StandardNormal));
        let mut a = DVector::from_fn(n, |_, _| rng.sample::<f64, _>(StandardNormal));
        let mut b = DVector::from_fn(n, |_, _| rng.sample::<f64, _>(StandardNormal));
        let scale = (n as f64).sqrt();
        a *= scale / a.norm();
        for _ in 0..2 {
            let c = b.dot(&a) / a.dot(&a);
            b.axpy(-c, &a, 1.0);
        }
        b *= scale / b.norm();
        Ok(RandomNetwork { n, g, w0, a, b })
    }

    /// I - W0 (the static propagator's inverse, THEORY I-9).
    pub fn identity_minus_w0(&self) -> DMatrix<f64> {
        DMatrix::identity(self.n, self.n) - &self.w0
    }

    /// exp((W0 - I) h) and, by the augmented-matrix trick, int_0^h exp((W0 - I) s) ds b:
    /// the exact one-step propagator of x' = (W0 - I) x + u b for constant u.
    pub fn propagator(&self, h: f64) -> (DMatrix<f64>, DVector<f64>) {
        let n = self.n;
        let mut aug = DMatrix::zeros(n + 1, n + 1);
        aug.view_mut((0, 0), (n, n))
            .copy_from(&((&self.w0 - DMatrix::identity(n, n)) * h));
        aug.view_mut((0, n), (n, 1)).copy_from(&(&self.b * h));
        let e = aug.exp();
        let step = e.view((0, 0), (n, n)).into_owned();
        let drive = e.view((0, n), (n, 1)).column(0).into_owned();
        (step, drive)
    }
}

/// Mean and standard error of a sample (standard error 0 for a single value).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SampleMean {
    pub mean: f64,
    /// Standard error of the mean, s / sqrt(n) with the unbiased sample deviation s.
    pub sem: f64,
    pub count: usize,
}

impl SampleMean {
    /// Summarise `values` (empty input gives NaN).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return SampleMean {
                mean: f64::NAN,
                sem: f64::NAN,
                count: 0,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sem = if n > 1 {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (var / n as f64).sqrt()
        } else {
            0.0
        };
        SampleMean {
            mean,
            sem,
            count: n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_orthogonal_and_normalised() {
        let net = RandomNetwork::sample(50, 0.5, 7).unwrap();
        assert!((net.a.norm_squared() - 50.0).abs() < 1e-12);
        assert!((net.b.norm_squared() - 50.0).abs() < 1e-12);
        assert!(net.a.dot(&net.b).abs() < 1e-12);
        // Same seed, same network.
        let again = RandomNetwork::sample(50, 0.5, 7).unwrap();
        assert_eq!(net.w0, again.w0);
        assert!(RandomNetwork::sample(1, 0.5, 0).is_err());
        assert!(RandomNetwork::sample(5, f64::NAN, 0).is_err());
    }

    #[test]
    fn propagator_matches_scalar_case_at_g_zero() {
        // g = 0: step = e^{-h} I, drive = (1 - e^{-h}) b.
        let net = RandomNetwork::sample(6, 0.0, 1).unwrap();
        let (step, drive) = net.propagator(0.3);
        let e = (-0.3f64).exp();
        assert!((step - DMatrix::identity(6, 6) * e).amax() < 1e-14);
        assert!((drive - &net.b * (1.0 - e)).amax() < 1e-14);
    }
}
