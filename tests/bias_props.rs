//! Property tests of Part II invariants over random nets, data and step sizes.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use modeflow::bias::balance::{
    deep_linear_run, random_rnn, random_two_layer, rnn_run, two_layer_run, SgdSettings,
    IDENTITY_TOL,
};
use modeflow::bias::nets::{Activation, DeepLinear, Loss};
use nalgebra::DMatrix;
use proptest::prelude::*;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(std::env::var("BP_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(32)))]

    /// B-1: Delta(|w_j|^2 - a_j^2) = eta^2(|grad_wj|^2 - (dL/da_j)^2), with weight decay
    /// D' = (1 - eta lambda)^2 D + eta^2(...), any minibatch, per step to 1e-12 relative.
    #[test]
    fn two_layer_balance_identity(
        seed in 0u64..10_000, act_i in 0usize..3, logistic in any::<bool>(),
        d in 1usize..8, k in 1usize..16, n in 2usize..30, batch_frac in 0.05f64..1.0,
        eta in 1e-3f64..0.2, lambda in prop_oneof![Just(0.0), 0.0f64..0.5], init in 0.1f64..2.0,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let act = [Activation::Relu, Activation::LeakyRelu(0.1), Activation::Linear][act_i];
        let loss = if logistic { Loss::Logistic } else { Loss::Square };
        let (mut net, x, y) = random_two_layer(&mut rng, d, k, n, act, loss, init);
        let batch = ((n as f64 * batch_frac).ceil() as usize).clamp(1, n);
        // step size scaled by the curvature scale so the run stays stable: the Hessian of the
        // square loss grows like |x|^2 (|a|^2 + |W|_F^2) ~ d (k + k d) init^2 (the earlier
        // k d init^2 / 4 scale let proptest find runs that diverge at eta ~ 0.2, init ~ 2)
        let eta = eta / (1.0 + init * init * (k * d * (d + 1)) as f64);
        let s = SgdSettings { eta, lambda, batch, steps: 30, seed };
        let r = two_layer_run(&mut net, &x, &y, loss, &s).unwrap();
        prop_assert!(r.max_residual <= IDENTITY_TOL, "residual {}", r.max_residual);
    }

    /// B-1 deep linear: M_l' = (1 - eta lambda)^2 M_l + eta^2 (G_{l+1}^T G_{l+1} - G_l G_l^T).
    #[test]
    fn deep_linear_balance_identity(seed in 0u64..10_000, depth in 2usize..5, eta in 1e-3f64..0.05, lambda in 0.0f64..0.3) {
        let mut rng = StdRng::seed_from_u64(seed);
        let dims: Vec<usize> = (0..=depth).map(|_| rng.random_range(1..6)).collect();
        let mut net = DeepLinear { layers: (0..depth).map(|l| DMatrix::from_fn(dims[l + 1], dims[l], |_, _| 0.5 * rng.sample::<f64, _>(StandardNormal))).collect() };
        let x = DMatrix::from_fn(dims[0], 12, |_, _| rng.sample::<f64, _>(StandardNormal));
        let y = DMatrix::from_fn(dims[depth], 12, |_, _| rng.sample::<f64, _>(StandardNormal));
        let r = deep_linear_run(&mut net, &x, &y, eta, lambda, 30).unwrap();
        prop_assert!(r.max_residual <= IDENTITY_TOL, "residual {}", r.max_residual);
    }

    /// B-2: ReLU RNN charge Q_j under BPTT-GD, per step to 1e-12 relative.
    #[test]
    fn rnn_charge_identity(seed in 0u64..10_000, nh in 1usize..10, steps in 1usize..8, eta in 1e-3f64..0.1, lambda in prop_oneof![Just(0.0), 0.0f64..0.3]) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut net, xs, ts) = random_rnn(&mut rng, nh, 2, 2, steps, 5);
        let r = rnn_run(&mut net, &xs, &ts, eta, lambda, 20).unwrap();
        prop_assert!(r.max_residual <= IDENTITY_TOL, "residual {}", r.max_residual);
    }
}

mod diagonal_props {
    use modeflow::bias::diagonal::{sparse_regression, train_diagonal, DiagSettings};
    use modeflow::bias::solvers::mirror_argmin;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(std::env::var("BP_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(12)))]
        /// B-11: the trained diagonal net is the exact mirror argmin (alpha_T, delta) — formula
        /// vs solver on random sparse regressions, step sizes, batch sizes and init scales.
        #[test]
        fn trained_diagonal_net_is_the_mirror_argmin(
            seed in 0u64..1000, n in 3usize..10, extra in 2usize..12, alpha in 0.2f64..1.5,
            eta in 0.005f64..0.02, batch_small in any::<bool>(),
        ) {
            let d = n + extra;
            let (x, y, _) = sparse_regression(n, d, 2, 1.0, seed);
            let batch = if batch_small { 1 } else { n };
            // single-sample curvature ~ 4 alpha^2 |x_i|^2 ~ 4 alpha^2 d: keep eta below its inverse
            let eta = if batch_small { eta * 4.0 / d as f64 } else { eta };
            let s = DiagSettings { alpha, eta, batch, max_steps: 2_000_000, loss_tol: 1e-27, seed };
            let run = train_diagonal(&x, &y, &s).unwrap();
            prop_assume!(run.loss <= 1e-27); // converged (ill-conditioned draws may be slow)
            prop_assert!(run.max_identity_residual <= 1e-12);
            let b = mirror_argmin(&x, &y, &run.ln_alpha2, &run.delta, 1e-13).unwrap();
            prop_assert!((&run.beta - &b).amax() <= 1e-10, "diff {}", (&run.beta - &b).amax());
        }
    }
}
