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

/// A random linear network: connectivity W0 and P >= 2 orthogonal patterns; a and b are the
/// first two (task A, task B), the others are extra independent probes used to average
/// finite-N measurements over patterns.
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
    /// All patterns as columns (N x P, column 0 = a, column 1 = b), mutually orthogonal,
    /// each of squared norm N.
    pub patterns: DMatrix<f64>,
}

impl RandomNetwork {
    /// Sample W0 and orthogonal patterns a, b from `seed`. Needs N >= 2 and finite g >= 0.
    pub fn sample(n: usize, g: f64, seed: u64) -> Result<Self> {
        Self::sample_with_patterns(n, g, seed, 2)
    }

    /// Sample W0 and `p` orthogonal Gaussian patterns (2 <= p <= N) from `seed`
    /// (Gram–Schmidt applied twice, then scaled to norm sqrt(N)).
    pub fn sample_with_patterns(n: usize, g: f64, seed: u64, p: usize) -> Result<Self> {
        if n < 2 || p < 2 || p > n {
            return Err(Error::Requirement(format!(
                "random network needs N >= 2 neurons and 2 <= P <= N patterns, got N = {n}, P = {p}"
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
        let mut pats = DMatrix::from_fn(n, p, |_, _| rng.sample::<f64, _>(StandardNormal));
        let scale = (n as f64).sqrt();
        for j in 0..p {
            for _ in 0..2 {
                for i in 0..j {
                    let c = pats.column(j).dot(&pats.column(i)) / (n as f64);
                    let prev = pats.column(i).into_owned();
                    pats.column_mut(j).axpy(-c, &prev, 1.0);
                }
            }
            let norm = pats.column(j).norm();
            pats.column_mut(j).scale_mut(scale / norm);
        }
        Ok(RandomNetwork {
            n,
            g,
            w0,
            a: pats.column(0).into_owned(),
            b: pats.column(1).into_owned(),
            patterns: pats,
        })
    }

    /// I - W0 (the static propagator's inverse, THEORY I-9).
    pub fn identity_minus_w0(&self) -> DMatrix<f64> {
        DMatrix::identity(self.n, self.n) - &self.w0
    }

    /// exp((W0 - I) h) and, by the augmented-matrix trick, int_0^h exp((W0 - I) s) ds B for
    /// the N x P input matrix B: the exact one-step propagator of x' = (W0 - I) x + B u for
    /// constant u.
    pub fn propagator_for(&self, h: f64, inputs: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
        let n = self.n;
        let p = inputs.ncols();
        let mut aug = DMatrix::zeros(n + p, n + p);
        aug.view_mut((0, 0), (n, n))
            .copy_from(&((&self.w0 - DMatrix::identity(n, n)) * h));
        aug.view_mut((0, n), (n, p)).copy_from(&(inputs * h));
        let e = aug.exp();
        let step = e.view((0, 0), (n, n)).into_owned();
        let drive = e.view((0, n), (n, p)).into_owned();
        (step, drive)
    }

    /// [`Self::propagator_for`] with the single input pattern b.
    pub fn propagator(&self, h: f64) -> (DMatrix<f64>, DVector<f64>) {
        let b = DMatrix::from_column_slice(self.n, 1, self.b.as_slice());
        let (step, drive) = self.propagator_for(h, &b);
        (step, drive.column(0).into_owned())
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
        let many = RandomNetwork::sample_with_patterns(30, 0.5, 7, 6).unwrap();
        let gram = many.patterns.transpose() * &many.patterns;
        assert!((gram - DMatrix::identity(6, 6) * 30.0).amax() < 1e-11);
        assert!(RandomNetwork::sample_with_patterns(3, 0.5, 7, 4).is_err());
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
