//! Width-independence of SGD on over-parameterised leaky-ReLU nets with hinge loss (THEORY II.3,
//! B-9; Brutzkus, Globerson, Malach, Shalev-Shwartz 2018).
//!
//! N(x) = sum_{j=1}^{2k} v_j sigma(w_j . x), v_j = +1/sqrt(k) (j <= k), -1/sqrt(k) (j > k), leaky
//! slope alpha; SGD on the hinge loss max(0, 1 - y N(x)) over reshuffled samples, one sample per
//! step; an update happens only when y N(x) < 1. Count the updates until zero training loss.
//!
//! Why width drops out: from a symmetric init (all w_j of one sign equal) every neuron of a sign
//! gets the same update, and u = sqrt(k) w_+ obeys u <- u + eta y sigma'(u.x) x with N(x) =
//! sigma(u_+.x) - sigma(u_-.x), independent of k. A small random init perturbs this by O(init).

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::{Error, Result};

/// Data on the unit sphere in R^d labelled by a unit teacher with margin |w*.x| >= `margin`.
pub fn sphere_teacher(n: usize, d: usize, margin: f64, seed: u64) -> (DMatrix<f64>, DVector<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let w = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal)).normalize();
    let mut x = DMatrix::zeros(n, d);
    let mut y = DVector::zeros(n);
    let mut i = 0;
    while i < n {
        let v = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal)).normalize();
        let m = w.dot(&v);
        if m.abs() >= margin {
            x.row_mut(i).copy_from(&v.transpose());
            y[i] = m.signum();
            i += 1;
        }
    }
    (x, y)
}

/// Settings of a hinge-loss SGD run.
#[derive(Debug, Clone, Copy)]
pub struct HingeSgd {
    /// neurons per sign
    pub k: usize,
    /// leaky slope
    pub alpha: f64,
    pub eta: f64,
    /// init std of the first layer
    pub init: f64,
    pub seed: u64,
    pub max_updates: usize,
}

/// Number of non-zero SGD updates until zero hinge loss.
pub fn updates_to_zero_loss(x: &DMatrix<f64>, y: &DVector<f64>, s: &HingeSgd) -> Result<usize> {
    let HingeSgd {
        k,
        alpha,
        eta,
        init,
        seed,
        max_updates,
    } = *s;
    let (n, d) = (x.nrows(), x.ncols());
    // separate streams: the sample order must not depend on the width
    let mut init_rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = DMatrix::from_fn(d, 2 * k, |_, _| {
        init * init_rng.sample::<f64, _>(StandardNormal)
    });
    let v = 1.0 / (k as f64).sqrt();
    let vs = DVector::from_fn(2 * k, |j, _| if j < k { v } else { -v });
    let mut z = DVector::zeros(2 * k);
    let mut coef = DVector::zeros(2 * k);
    let mut order: Vec<usize> = (0..n).collect();
    let mut updates = 0;
    loop {
        order.shuffle(&mut rng);
        let mut any = false;
        for &i in &order {
            let xi = x.row(i).transpose();
            z.gemv_tr(1.0, &w, &xi, 0.0);
            let mut f = 0.0;
            for j in 0..2 * k {
                let s = if z[j] > 0.0 { z[j] } else { alpha * z[j] };
                f += vs[j] * s;
            }
            if y[i] * f < 1.0 {
                for j in 0..2 * k {
                    coef[j] = eta * y[i] * vs[j] * if z[j] > 0.0 { 1.0 } else { alpha };
                }
                w.ger(1.0, &xi, &coef, 1.0);
                updates += 1;
                any = true;
                if updates >= max_updates {
                    return Err(Error::NoConvergence {
                        solver: "SGD to zero hinge loss".into(),
                        iterations: updates,
                        residual: f64::NAN,
                        tolerance: 0.0,
                    });
                }
            }
        }
        if !any {
            return Ok(updates);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_init_is_exactly_width_independent() {
        let (x, y) = sphere_teacher(60, 5, 0.1, 1);
        let s = HingeSgd {
            k: 1,
            alpha: 0.3,
            eta: 0.1,
            init: 0.0,
            seed: 0,
            max_updates: 100_000,
        };
        let c1 = updates_to_zero_loss(&x, &y, &s).unwrap();
        let c2 = updates_to_zero_loss(&x, &y, &HingeSgd { k: 37, ..s }).unwrap();
        assert_eq!(c1, c2);
    }
}
