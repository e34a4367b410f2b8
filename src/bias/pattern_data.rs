//! Pattern-detection data for B-15 (THEORY II.5; talk level, after Brutzkus & Globerson 2019,
//! "Why do larger models generalize better? ... via the XOR problem").
//!
//! A sample is a sequence of `t` patches x_1..x_t in R^d, each patch one of a finite set of
//! true patterns; the patterns are split into positive and negative ones. Label (both tasks):
//! y = +1 iff at least one patch is a positive pattern, else y = -1. Sampling: y = +-1 with
//! probability 1/2; a negative sample draws every patch uniformly from the negative patterns; a
//! positive sample draws every patch uniformly from all patterns, rejecting sequences without a
//! positive pattern.
//!
//! - [`xor_task`] (XOR-type detection, "XORD"): d = 2, patterns (1,1), (-1,-1) positive and
//!   (1,-1), (-1,1) negative, i.e. a patch is positive iff its two bits are equal (XNOR). No
//!   single ReLU filter fires on both positive patterns, so a detector needs >= 2 filters per
//!   sign.
//! - [`orthogonal_task`] (orthogonal-pattern detection, "OPD"): m orthonormal patterns in R^m
//!   (a seeded random rotation of the standard basis), the first m/2 positive.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::{Error, Result};

/// A pattern-detection task: the true patterns and which of them are positive.
#[derive(Debug, Clone)]
pub struct PatternTask {
    /// true patterns (each of length d)
    pub patterns: Vec<DVector<f64>>,
    /// `positive[i]`: pattern i makes a sample positive
    pub positive: Vec<bool>,
    /// patches per sample
    pub t: usize,
}

/// n samples: patches stacked row-wise, sample i owns rows i*t .. (i+1)*t of `x` (n t x d).
#[derive(Debug, Clone)]
pub struct PatternSet {
    pub x: DMatrix<f64>,
    pub y: DVector<f64>,
    pub t: usize,
    /// pattern index of each patch (n t)
    pub ids: Vec<usize>,
}

impl PatternSet {
    /// Number of samples.
    pub fn n(&self) -> usize {
        self.y.len()
    }
}

/// The XOR-type task (module docs) with `t` patches per sample.
pub fn xor_task(t: usize) -> PatternTask {
    let p = |a: f64, b: f64| DVector::from_column_slice(&[a, b]);
    PatternTask {
        patterns: vec![p(1.0, 1.0), p(-1.0, -1.0), p(1.0, -1.0), p(-1.0, 1.0)],
        positive: vec![true, true, false, false],
        t,
    }
}

/// The orthogonal-pattern task: m orthonormal patterns in R^m (seeded random rotation), the
/// first m/2 positive, `t` patches per sample.
pub fn orthogonal_task(m: usize, t: usize, seed: u64) -> PatternTask {
    let mut rng = StdRng::seed_from_u64(seed);
    let g = DMatrix::from_fn(m, m, |_, _| rng.sample::<f64, _>(StandardNormal));
    let q = g.qr().q();
    PatternTask {
        patterns: (0..m).map(|i| q.column(i).into_owned()).collect(),
        positive: (0..m).map(|i| i < m / 2).collect(),
        t,
    }
}

impl PatternTask {
    /// Patch dimension d.
    pub fn d(&self) -> usize {
        self.patterns.first().map_or(0, |p| p.len())
    }

    /// Draw n samples (module docs). Errors if the task has no positive or no negative pattern.
    pub fn sample(&self, n: usize, seed: u64) -> Result<PatternSet> {
        let pos: Vec<usize> = (0..self.patterns.len())
            .filter(|&i| self.positive[i])
            .collect();
        let neg: Vec<usize> = (0..self.patterns.len())
            .filter(|&i| !self.positive[i])
            .collect();
        if pos.is_empty() || neg.is_empty() || self.t == 0 {
            return Err(Error::Requirement(
                "pattern task needs positive and negative patterns and t >= 1".into(),
            ));
        }
        let (t, d, m) = (self.t, self.d(), self.patterns.len());
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = DMatrix::zeros(n * t, d);
        let mut y = DVector::zeros(n);
        let mut ids = vec![0; n * t];
        for i in 0..n {
            let label = rng.random_bool(0.5);
            loop {
                for p in 0..t {
                    ids[i * t + p] = if label {
                        rng.random_range(0..m)
                    } else {
                        neg[rng.random_range(0..neg.len())]
                    };
                }
                if !label || ids[i * t..(i + 1) * t].iter().any(|&q| self.positive[q]) {
                    break;
                }
            }
            for p in 0..t {
                x.row_mut(i * t + p)
                    .copy_from(&self.patterns[ids[i * t + p]].transpose());
            }
            y[i] = if label { 1.0 } else { -1.0 };
        }
        Ok(PatternSet { x, y, t, ids })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_rule_and_are_balanced() {
        for task in [xor_task(4), orthogonal_task(6, 3, 2)] {
            let s = task.sample(2000, 7).unwrap();
            let mut npos = 0;
            for i in 0..s.n() {
                let has = s.ids[i * s.t..(i + 1) * s.t]
                    .iter()
                    .any(|&q| task.positive[q]);
                assert_eq!(has, s.y[i] > 0.0);
                npos += has as usize;
                for p in 0..s.t {
                    let row = s.x.row(i * s.t + p).transpose();
                    assert!((row - &task.patterns[s.ids[i * s.t + p]]).norm() < 1e-15);
                }
            }
            assert!((npos as f64 / 2000.0 - 0.5).abs() < 0.05, "{npos}");
        }
    }

    #[test]
    fn orthogonal_patterns_are_orthonormal() {
        let task = orthogonal_task(8, 3, 1);
        for (i, a) in task.patterns.iter().enumerate() {
            for (j, b) in task.patterns.iter().enumerate() {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((a.dot(b) - e).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn degenerate_task_is_an_error() {
        let mut task = xor_task(3);
        task.positive = vec![true; 4];
        assert!(task.sample(10, 0).is_err());
    }
}
