//! Model families of docs/theory.md Part II with hand-written gradients: the two-layer net
//! f(x) = sum_j a_j sigma(w_j . x) (B-1), deep linear nets W_L ... W_1 (B-1), and the ReLU RNN
//! h_{t+1} = relu(W h_t + U x_t + b), y = V h + c (B-2).
//!
//! Every gradient here is checked against central finite differences in the unit tests
//! (proptest over random nets and data). Activations and losses live here; the nets in
//! `two_layer`, `deep_linear` and `rnn` (re-exported).

use serde::Serialize;

mod deep_linear;
mod rnn;
mod two_layer;

pub use deep_linear::{balance_matrices, DeepLinear};
pub use rnn::{ReluRnn, RnnGrad};
pub use two_layer::{FullBatch, TwoLayer, TwoLayerGrad, TwoLayerWork};

/// A 1-homogeneous activation sigma (sigma(c z) = c sigma(z) for c > 0), so that
/// sigma'(z) z = sigma(z) — the property behind the balance laws B-1, B-2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(z, 0); sigma'(0) := 0 (any choice keeps sigma'(z) z = sigma(z)).
    Relu,
    /// max(z, alpha z) with leaky slope alpha.
    LeakyRelu(f64),
    /// sigma(z) = z.
    Linear,
}

impl Activation {
    /// sigma(z).
    #[inline(always)]
    pub fn value(self, z: f64) -> f64 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu(al) => {
                if z > 0.0 {
                    z
                } else {
                    al * z
                }
            }
            Activation::Linear => z,
        }
    }

    /// sigma'(z) (one-sided choice 0 resp. alpha at z = 0).
    #[inline(always)]
    pub fn slope(self, z: f64) -> f64 {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(al) => {
                if z > 0.0 {
                    1.0
                } else {
                    al
                }
            }
            Activation::Linear => 1.0,
        }
    }
}

/// Per-sample loss ell(f, y).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// (f - y)^2 / 2.
    Square,
    /// ln(1 + exp(-y f)), labels y = +-1.
    Logistic,
    /// exp(-y f).
    Exponential,
    /// max(0, 1 - y f) (subgradient 0 at the hinge).
    Hinge,
}

impl Loss {
    /// ell(f, y).
    #[inline(always)]
    pub fn value(self, f: f64, y: f64) -> f64 {
        match self {
            Loss::Square => 0.5 * (f - y) * (f - y),
            Loss::Logistic => softplus(-y * f),
            Loss::Exponential => (-y * f).exp(),
            Loss::Hinge => (1.0 - y * f).max(0.0),
        }
    }

    /// d ell / d f.
    #[inline(always)]
    pub fn deriv(self, f: f64, y: f64) -> f64 {
        match self {
            Loss::Square => f - y,
            Loss::Logistic => -y * sigmoid(-y * f),
            Loss::Exponential => -y * (-y * f).exp(),
            Loss::Hinge => {
                if y * f < 1.0 {
                    -y
                } else {
                    0.0
                }
            }
        }
    }
}

/// ln(1 + e^x) without overflow.
#[inline(always)]
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// 1 / (1 + e^{-x}) without overflow.
#[inline(always)]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops mirror the formulas
mod tests {
    use super::*;
    use crate::Error;
    use nalgebra::{DMatrix, DVector};
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rand_distr::StandardNormal;

    fn randm(rng: &mut StdRng, r: usize, c: usize, s: f64) -> DMatrix<f64> {
        DMatrix::from_fn(r, c, |_, _| s * rng.sample::<f64, _>(StandardNormal))
    }
    fn randv(rng: &mut StdRng, r: usize, s: f64) -> DVector<f64> {
        DVector::from_fn(r, |_, _| s * rng.sample::<f64, _>(StandardNormal))
    }

    /// Central difference with step h; error O(h^2 f''') + O(eps f / h).
    fn fd(mut f: impl FnMut(f64) -> f64, x: f64, h: f64) -> f64 {
        (f(x + h) - f(x - h)) / (2.0 * h)
    }

    // FD tolerance: h = 1e-6 gives truncation ~1e-12 |f'''| and rounding ~1e-16/1e-6 = 1e-10
    // relative to the loss scale; 1e-6 absolute-plus-relative leaves margin over both.
    const FD_TOL: f64 = 1e-6;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn two_layer_gradient_matches_finite_differences(
            seed in 0u64..1000, act_i in 0usize..3, loss_i in 0usize..4, k in 1usize..6, d in 1usize..5, n in 1usize..8
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let act = [Activation::Relu, Activation::LeakyRelu(0.2), Activation::Linear][act_i];
            let loss = [Loss::Square, Loss::Logistic, Loss::Exponential, Loss::Hinge][loss_i];
            let net = TwoLayer { w: randm(&mut rng, d, k, 1.0), a: randv(&mut rng, k, 1.0), act };
            let x = randm(&mut rng, n, d, 1.0);
            let y = DVector::from_fn(n, |i, _| if (i + seed as usize).is_multiple_of(2) { 1.0 } else { -1.0 });
            // kinks (ReLU at 0, hinge at y f = 1) within reach of the FD step: skip the case
            let z = &x * &net.w;
            let f = net.predict(&x);
            prop_assume!(z.iter().all(|v| v.abs() > 1e-4));
            prop_assume!(f.iter().zip(y.iter()).all(|(f, y)| (y * f - 1.0).abs() > 1e-4));
            let mut g = TwoLayerGrad::zeros(d, k);
            let mut work = TwoLayerWork::new(n, k);
            net.grad_into(&x, &y, loss, &mut work, &mut g).unwrap();
            for j in 0..k {
                let num = fd(|t| { let mut m = net.clone(); m.a[j] = t; m.loss(&x, &y, loss).unwrap() }, net.a[j], 1e-6);
                prop_assert!((num - g.a[j]).abs() <= FD_TOL * (1.0 + num.abs()), "a[{}]: fd {} vs {}", j, num, g.a[j]);
                for i in 0..d {
                    let num = fd(|t| { let mut m = net.clone(); m.w[(i, j)] = t; m.loss(&x, &y, loss).unwrap() }, net.w[(i, j)], 1e-6);
                    prop_assert!((num - g.w[(i, j)]).abs() <= FD_TOL * (1.0 + num.abs()), "w[{},{}]: fd {} vs {}", i, j, num, g.w[(i, j)]);
                }
            }
        }

        #[test]
        fn deep_linear_gradient_matches_finite_differences(seed in 0u64..1000, depth in 2usize..5) {
            let mut rng = StdRng::seed_from_u64(seed);
            let dims: Vec<usize> = (0..=depth).map(|_| rng.random_range(1..4)).collect();
            let net = DeepLinear { layers: (0..depth).map(|l| randm(&mut rng, dims[l + 1], dims[l], 0.8)).collect() };
            let x = randm(&mut rng, dims[0], 5, 1.0);
            let y = randm(&mut rng, dims[depth], 5, 1.0);
            let (_, g) = net.loss_grad(&x, &y).unwrap();
            for l in 0..depth {
                for idx in 0..net.layers[l].len() {
                    let num = fd(|t| { let mut m = net.clone(); m.layers[l][idx] = t; m.loss_grad(&x, &y).unwrap().0 }, net.layers[l][idx], 1e-6);
                    prop_assert!((num - g[l][idx]).abs() <= FD_TOL * (1.0 + num.abs()));
                }
            }
        }

        #[test]
        fn rnn_gradient_matches_finite_differences(seed in 0u64..1000, nh in 1usize..5, steps in 1usize..5) {
            let mut rng = StdRng::seed_from_u64(seed);
            let (m, p, bsz) = (2, 2, 3);
            let net = ReluRnn { w: randm(&mut rng, nh, nh, 0.7), u: randm(&mut rng, nh, m, 1.0), b: randv(&mut rng, nh, 0.3), v: randm(&mut rng, p, nh, 1.0), c: randv(&mut rng, p, 0.3) };
            let xs: Vec<_> = (0..steps).map(|_| randm(&mut rng, m, bsz, 1.0)).collect();
            let ts: Vec<_> = (0..steps).map(|_| randm(&mut rng, p, bsz, 1.0)).collect();
            let (_, g) = net.loss_grad(&xs, &ts).unwrap();
            let lossf = |m: &ReluRnn| m.loss_grad(&xs, &ts).unwrap().0;
            macro_rules! check_param {
                ($field:ident) => {
                    for idx in 0..net.$field.len() {
                        let num = fd(|t| { let mut q = net.clone(); q.$field[idx] = t; lossf(&q) }, net.$field[idx], 1e-6);
                        prop_assert!((num - g.$field[idx]).abs() <= FD_TOL * (1.0 + num.abs()), "{}[{}]: fd {} vs {}", stringify!($field), idx, num, g.$field[idx]);
                    }
                };
            }
            check_param!(w); check_param!(u); check_param!(b); check_param!(v); check_param!(c);
        }
    }

    #[test]
    fn shape_errors_are_reported_not_panics() {
        let net = TwoLayer {
            w: DMatrix::zeros(3, 2),
            a: DVector::zeros(2),
            act: Activation::Relu,
        };
        let x = DMatrix::zeros(4, 2);
        let y = DVector::zeros(4);
        assert!(matches!(
            net.loss(&x, &y, Loss::Square),
            Err(Error::Shape { .. })
        ));
    }
}
