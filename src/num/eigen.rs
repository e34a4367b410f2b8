//! Eigenvalues of a dense real N x N matrix: faer's Hessenberg reduction and Francis
//! double-shift QR (LAPACK's `dhseqr` design: aggressive early deflation and exceptional
//! shifts), single-threaded, capped at 30 max(10, N) sweeps, failure as a typed error.
//!
//! Chosen on evidence over the crate's own EISPACK `hqr` (nalgebra's Hessenberg reduction +
//! the double-shift QR with exceptional shifts it replaced): faer is 1.3x faster on a random
//! N = 256 Jacobian and 1.9x on the -I + (low rank) Jacobian of a trained g = 0 network
//! (`cargo bench --bench products -- eigenvalues`; figures in `bench/README.md`). nalgebra's
//! `Schur` has no exceptional shifts and stalls on that -I + (low rank) form (hundreds of
//! eigenvalues at exactly -1); the regression test `minus_identity_plus_low_rank` keeps it in
//! view.

use nalgebra::DMatrix;

use crate::{Error, Result};

/// All eigenvalues (re, im) of the square matrix `m`, in no particular order.
///
/// Errors: [`Error::Shape`] if `m` is not square; [`Error::Numerical`] if an entry is not
/// finite or the QR iteration hits its cap.
pub fn eigenvalues(m: &DMatrix<f64>) -> Result<Vec<(f64, f64)>> {
    let (r, c) = m.shape();
    if r != c {
        return Err(Error::Shape {
            context: "num::eigen::eigenvalues".into(),
            message: format!("{r} x {c} is not square"),
        });
    }
    if let Some(v) = m.iter().find(|v| !v.is_finite()) {
        return Err(Error::Numerical(format!(
            "eigenvalues: the matrix has a non-finite entry ({v})"
        )));
    }
    let ev = faer::MatRef::from_column_major_slice(m.as_slice(), r, c)
        .eigenvalues()
        .map_err(|e| {
            Error::Numerical(format!(
                "eigenvalues of a {r} x {r} matrix: the Schur iteration did not converge \
                 within its cap ({e:?})"
            ))
        })?;
    Ok(ev.into_iter().map(|z| (z.re, z.im)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn sorted(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        v
    }

    /// Against nalgebra's (independent) capped Schur decomposition; 1e-9 is far above the
    /// ~1e-14 backward error of either method on these well-conditioned random matrices.
    #[test]
    fn matches_nalgebra_on_random_matrices() {
        let mut rng = StdRng::seed_from_u64(9);
        for n in [1usize, 2, 3, 5, 12, 40] {
            let m = DMatrix::from_fn(n, n, |_, _| rng.random::<f64>() - 0.5);
            let ours = sorted(eigenvalues(&m).unwrap());
            let theirs = sorted(
                nalgebra::Schur::try_new(m, 1e-14, 10_000)
                    .unwrap()
                    .complex_eigenvalues()
                    .iter()
                    .map(|c| (c.re, c.im))
                    .collect(),
            );
            assert_eq!(ours.len(), n);
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9,
                    "{a:?} {b:?}"
                );
            }
        }
    }

    /// The Jacobian of a trained g = 0 network, -I + (low rank), on which nalgebra's Schur
    /// stalls: J = -I + u v^T has the eigenvalue -1 (n - 1 times) and -1 + v.u. Every eigenvalue
    /// to 1e-10 and real to 1e-6 (a defective-looking cluster may split by ~sqrt(eps)).
    #[test]
    fn minus_identity_plus_low_rank() {
        let n = 200;
        let mut rng = StdRng::seed_from_u64(3);
        let u = nalgebra::DVector::from_fn(n, |_, _| rng.random::<f64>() - 0.5);
        let v = nalgebra::DVector::from_fn(n, |_, _| rng.random::<f64>() - 0.5);
        let j = -DMatrix::identity(n, n) + &u * v.transpose();
        let ev = eigenvalues(&j).unwrap();
        let top = ev.iter().map(|e| e.0).fold(f64::NEG_INFINITY, f64::max);
        let bottom = ev.iter().map(|e| e.0).fold(f64::INFINITY, f64::min);
        let special = -1.0 + v.dot(&u);
        let (hi, lo) = if special > -1.0 {
            (special, -1.0)
        } else {
            (-1.0, special)
        };
        assert!(
            (top - hi).abs() < 1e-10 && (bottom - lo).abs() < 1e-10,
            "{top} {bottom} {special}"
        );
        assert!(ev.iter().all(|e| e.1.abs() < 1e-6));
        let at_minus_one = ev.iter().filter(|e| (e.0 + 1.0).abs() < 1e-10).count();
        assert!(at_minus_one >= n - 1, "{at_minus_one} eigenvalues at -1");
    }

    #[test]
    fn bad_input_and_failure_are_typed() {
        let e = eigenvalues(&DMatrix::zeros(2, 3)).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{e}");
        let mut m = DMatrix::identity(3, 3);
        m[(1, 2)] = f64::NAN;
        let e = eigenvalues(&m).unwrap_err();
        assert!(
            matches!(e, Error::Numerical(_)) && e.exit_code() == 1,
            "{e}"
        );
        assert!(eigenvalues(&DMatrix::zeros(0, 0)).unwrap().is_empty());
    }
}
