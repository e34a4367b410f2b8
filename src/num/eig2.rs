//! Closed-form eigen-decomposition of a real 2x2 matrix and the classification of planar
//! fixed points by the Jacobian's trace and determinant.
//!
//! ```
//! use modeflow::num::eig2::{classify, eigen2, FixedPointType};
//! use nalgebra::Matrix2;
//! let j = Matrix2::new(-1.0, 0.0, 0.0, 2.0);
//! assert_eq!(classify(&j), FixedPointType::Saddle);
//! assert_eq!(eigen2(&j).values[0].re, 2.0);
//! ```

use nalgebra::{Matrix2, Vector2};
use serde::Serialize;

/// Complex f64: num-complex's type as nalgebra re-exports it (serde through nalgebra's
/// `serde-serialize` feature), so the crate needs no direct num-complex dependency.
pub type Complex64 = nalgebra::Complex<f64>;

/// Eigenvalues and unit eigenvectors of a real 2x2 matrix.
#[derive(Debug, Clone, Copy)]
pub struct Eigen2 {
    /// Real eigenvalues sorted descending; a complex pair as (re + i im, re - i im), im > 0.
    pub values: [Complex64; 2],
    /// Unit-norm eigenvectors matching `values`.
    pub vectors: [Vector2<Complex64>; 2],
    pub trace: f64,
    pub det: f64,
}

impl Eigen2 {
    /// Whether the eigenvalues are real.
    pub fn is_real(&self) -> bool {
        self.values[0].im == 0.0
    }
}

/// Closed-form eigen-decomposition.
pub fn eigen2(m: &Matrix2<f64>) -> Eigen2 {
    let (a, b, c, d) = (m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)]);
    let trace = a + d;
    let det = a * d - b * c;
    // discriminant of (l - a)(l - d) - bc, computed without cancellation in (a-d)^2/4 + bc
    let half_diff = 0.5 * (a - d);
    let disc = half_diff * half_diff + b * c;
    let mean = 0.5 * trace;
    let values = if disc >= 0.0 {
        let sq = disc.sqrt();
        [
            Complex64::new(mean + sq, 0.0),
            Complex64::new(mean - sq, 0.0),
        ]
    } else {
        let sq = (-disc).sqrt();
        [Complex64::new(mean, sq), Complex64::new(mean, -sq)]
    };
    let vectors = values.map(|l| eigvec(a, b, c, d, l));
    // For a multiple of the identity every vector is an eigenvector: use the basis.
    let vectors = if b == 0.0 && c == 0.0 && a == d {
        [
            Vector2::new(Complex64::new(1.0, 0.0), Complex64::new(0.0, 0.0)),
            Vector2::new(Complex64::new(0.0, 0.0), Complex64::new(1.0, 0.0)),
        ]
    } else {
        vectors
    };
    Eigen2 {
        values,
        vectors,
        trace,
        det,
    }
}

fn eigvec(a: f64, b: f64, c: f64, d: f64, l: Complex64) -> Vector2<Complex64> {
    // (M - l) v = 0: candidates (b, l - a) and (l - d, c); take the better conditioned one.
    let v1 = Vector2::new(Complex64::new(b, 0.0), l - a);
    let v2 = Vector2::new(l - d, Complex64::new(c, 0.0));
    let (n1, n2) = (v1.norm(), v2.norm());
    let (v, n) = if n1 >= n2 { (v1, n1) } else { (v2, n2) };
    if n == 0.0 {
        // diagonal with distinct entries: l equals a or d exactly
        if (l.re - a).abs() <= (l.re - d).abs() {
            return Vector2::new(Complex64::new(1.0, 0.0), Complex64::new(0.0, 0.0));
        }
        return Vector2::new(Complex64::new(0.0, 0.0), Complex64::new(1.0, 0.0));
    }
    // normalise and fix the phase so the largest component is real and positive
    let v = v / Complex64::new(n, 0.0);
    let k = if v[0].norm() >= v[1].norm() { 0 } else { 1 };
    let phase = v[k] / Complex64::new(v[k].norm(), 0.0);
    v / phase
}

/// Type of a fixed point of a planar flow, from the Jacobian there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixedPointType {
    StableNode,
    UnstableNode,
    StableFocus,
    UnstableFocus,
    Saddle,
    Centre,
    /// A zero eigenvalue (det = 0 at rounding level): not hyperbolic, no linear verdict.
    Degenerate,
}

impl FixedPointType {
    /// Whether small perturbations decay (both eigenvalues with negative real part).
    pub fn is_stable(self) -> bool {
        matches!(self, Self::StableNode | Self::StableFocus)
    }

    /// Human-readable name.
    pub fn label(self) -> &'static str {
        match self {
            Self::StableNode => "stable node",
            Self::UnstableNode => "unstable node",
            Self::StableFocus => "stable focus",
            Self::UnstableFocus => "unstable focus",
            Self::Saddle => "saddle",
            Self::Centre => "centre",
            Self::Degenerate => "degenerate",
        }
    }
}

/// Classify by trace and determinant. "Zero" means below rounding level relative to the size
/// of the matrix: |det| <= 1e-12 s^2 and |tr| <= 1e-12 s with s the largest |entry|, so the
/// verdict is stable under perturbations at machine precision and agrees with the eigenvalues.
pub fn classify(j: &Matrix2<f64>) -> FixedPointType {
    let s = j.amax().max(f64::MIN_POSITIVE);
    let tr = j.trace();
    let det = j.determinant();
    let zero_det = det.abs() <= 1e-12 * s * s;
    let zero_tr = tr.abs() <= 1e-12 * s;
    if zero_det {
        return FixedPointType::Degenerate;
    }
    if det < 0.0 {
        return FixedPointType::Saddle;
    }
    let half_diff = 0.5 * (j[(0, 0)] - j[(1, 1)]);
    let disc = half_diff * half_diff + j[(0, 1)] * j[(1, 0)];
    if disc >= 0.0 {
        if tr < 0.0 {
            FixedPointType::StableNode
        } else {
            FixedPointType::UnstableNode
        }
    } else if zero_tr {
        FixedPointType::Centre
    } else if tr < 0.0 {
        FixedPointType::StableFocus
    } else {
        FixedPointType::UnstableFocus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_pairs(m: &Matrix2<f64>) {
        let e = eigen2(m);
        let mc = m.map(|x| Complex64::new(x, 0.0));
        for k in 0..2 {
            let r = mc * e.vectors[k] - e.vectors[k] * e.values[k];
            assert!(
                r.norm() < 1e-12 * (1.0 + m.amax()),
                "{m} k={k} r={}",
                r.norm()
            );
            assert!((e.vectors[k].norm() - 1.0).abs() < 1e-14);
        }
        let sum = e.values[0] + e.values[1];
        let prod = e.values[0] * e.values[1];
        assert!((sum.re - m.trace()).abs() < 1e-12 * (1.0 + m.amax()));
        assert!((prod.re - m.determinant()).abs() < 1e-12 * (1.0 + m.amax().powi(2)));
    }

    #[test]
    fn eigenpairs_of_examples() {
        for m in [
            Matrix2::new(2.0, 1.0, 1.0, 3.0),
            Matrix2::new(0.0, -1.0, 1.0, 0.0),
            Matrix2::new(1.0, 5.0, 0.0, 1.0),
            Matrix2::new(3.0, 0.0, 0.0, -2.0),
            Matrix2::new(1.283, 0.05, 0.05, 0.0),
            Matrix2::identity(),
        ] {
            check_pairs(&m);
        }
    }

    #[test]
    fn classification_examples() {
        use FixedPointType::*;
        assert_eq!(classify(&Matrix2::new(-1.0, 0.0, 0.0, -2.0)), StableNode);
        assert_eq!(classify(&Matrix2::new(1.0, 0.0, 0.0, 2.0)), UnstableNode);
        assert_eq!(classify(&Matrix2::new(-0.1, -1.0, 1.0, -0.1)), StableFocus);
        assert_eq!(classify(&Matrix2::new(0.1, -1.0, 1.0, 0.1)), UnstableFocus);
        assert_eq!(classify(&Matrix2::new(0.0, -1.0, 1.0, 0.0)), Centre);
        assert_eq!(classify(&Matrix2::new(1.0, 0.0, 0.0, -1.0)), Saddle);
        assert_eq!(classify(&Matrix2::new(1.0, 0.0, 0.0, 0.0)), Degenerate);
    }
}
