//! Unit tests of `rnn::hvp`.

use super::*;
use crate::rnn::bptt::Sharded;
use crate::rnn::modified_flow::{distance, HessianProduct, FD_STEP};
use crate::rnn::network::{NetworkSpec, Phi};
use crate::rnn::task::{Task, WorkingMemory};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// A network of `n` neurons (random bulk g, seed `seed`, nonlinearity `phi`, readout
/// `readout`, structure m0) and the short working-memory test task with `batch` trials.
fn network(n: usize, g: f64, seed: u64, phi: Phi, readout: Readout) -> (Network, Trials) {
    let mut rng = StdRng::seed_from_u64(seed);
    let spec = NetworkSpec {
        n,
        g,
        dt: 0.2,
        phi,
        readout,
        m0: [[1.2, 0.3], [-0.2, 0.8]],
    };
    let net = Network::new(&spec, &mut rng);
    let task = Task::WorkingMemory(WorkingMemory::short_test_task());
    let trials = task.trials(net.n, net.inputs(), net.outputs(), net.dt, 2, &mut rng);
    (net, trials)
}

const ALL: Trainable = Trainable {
    recurrent: Recurrent::Full,
    input: true,
    readout: true,
};
const LATENT_ALL: Trainable = Trainable {
    recurrent: Recurrent::Latent,
    input: true,
    readout: true,
};

/// The settings every identity is checked on: tanh/erf/identity, rate/state readout,
/// full W / M, with and without input and readout blocks.
fn settings() -> Vec<(Network, Trials, Trainable)> {
    vec![
        {
            let (n, t) = network(12, 0.5, 3, Phi::Tanh, Readout::Rate);
            (n, t, Trainable::FULL)
        },
        {
            let (n, t) = network(10, 0.8, 4, Phi::Erf, Readout::Rate);
            (n, t, ALL)
        },
        {
            let (n, t) = network(9, 0.6, 5, Phi::Tanh, Readout::State);
            (n, t, ALL)
        },
        {
            let (n, t) = network(11, 0.0, 6, Phi::Erf, Readout::Rate);
            (n, t, Trainable::LATENT)
        },
        {
            let (n, t) = network(8, 0.7, 7, Phi::Tanh, Readout::State);
            (n, t, LATENT_ALL)
        },
        {
            let (n, t) = network(7, 0.9, 8, Phi::Identity, Readout::Rate);
            (n, t, ALL)
        },
    ]
}

fn draw(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| StandardNormal.sample(&mut rng)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn bptt_grad(net: &Network, trials: &Trials, t: &Trainable) -> (f64, Vec<f64>) {
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut g = vec![0.0; net.num_params(t)];
    let l = ws.loss_and_grad(net, trials, t, &mut g).unwrap();
    (l, g)
}

/// Central difference of BPTT gradients along v/|v| with step h (the old product).
fn central(net: &Network, trials: &Trials, t: &Trainable, v: &[f64], h: f64) -> Vec<f64> {
    let theta = net.params(t).as_slice().to_vec();
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut scratch = net.clone();
    let mut hp = HessianProduct::new(theta.len());
    let mut out = vec![0.0; theta.len()];
    hp.product(&mut ws, &mut scratch, trials, t, &theta, v, h, &mut out)
        .unwrap();
    out
}

/// The primal half of the product is BPTT: loss and gradient agree with
/// `bptt::Sharded` to rounding (1e-12 relative: sums over T B terms in another order).
#[test]
fn primal_pass_is_bptt() {
    for (net, trials, t) in settings() {
        let (l, g) = bptt_grad(&net, &trials, &t);
        let v = draw(g.len(), 1);
        let mut h = Hvp::new(&net, trials.steps, trials.batch);
        let (mut g2, mut hv) = (vec![0.0; g.len()], vec![0.0; g.len()]);
        let l2 = h
            .product(&net, &trials, &t, &v, Some(&mut g2), &mut hv)
            .unwrap();
        assert!((l - l2).abs() <= 1e-12 * l.abs(), "{t:?}: {l} vs {l2}");
        let e = distance(&g, &g2) / norm(&g);
        assert!(e <= 1e-12, "{t:?}: gradient relative error {e:e}");
    }
}

/// H v against the directional derivative d/ds grad L(theta + s v) by central
/// differences of BPTT gradients, Richardson-extrapolated: R = (4 D(h/2) - D(h)) / 3 at
/// h = 1e-3 (truncation O(h^4) ~ 1e-12, rounding ~1e-15 / 5e-4 ~ 2e-12 relative), on every
/// setting and a random direction. Tolerance 1e-8 relative (the reference's own error with
/// a factor ~5 of margin); a missing term of the tangent (phi'', dW^T Lambda, the readout
/// tangent) misses by 1e-3 or more. The plain central difference at the module's FD_STEP
/// agrees to its documented ~1e-9 (asserted below 1e-7, as in `modified_flow`).
#[test]
fn product_is_the_directional_derivative_of_the_gradient() {
    for (net, trials, t) in settings() {
        let len = net.num_params(&t);
        let v = draw(len, 2);
        let exact = hessian_vector(&net, &trials, &t, &v).unwrap();
        let d1 = central(&net, &trials, &t, &v, 1e-3);
        let d2 = central(&net, &trials, &t, &v, 5e-4);
        let reference: Vec<f64> = d1
            .iter()
            .zip(&d2)
            .map(|(a, b)| (4.0 * b - a) / 3.0)
            .collect();
        let e_ref = distance(&exact, &reference) / norm(&reference);
        assert!(e_ref < 1e-8, "{t:?}: vs Richardson {e_ref:e}");
        let fd = central(&net, &trials, &t, &v, FD_STEP);
        let e_fd = distance(&exact, &fd) / norm(&exact);
        eprintln!("{t:?}: H v vs Richardson {e_ref:.2e}, vs central difference {e_fd:.2e}");
        assert!(e_fd < 1e-7, "{t:?}: vs central difference {e_fd:e}");
    }
}

/// The penalty's direction: H g with g = grad L (the product the modified flow needs),
/// against the Richardson reference as above, and u.(H g) = d/ds |grad L(theta + s u)|^2/2
/// for a random u (scalar central difference, s = 1e-4 / |u|: truncation ~1e-8 relative,
/// rounding ~1e-11; tolerance 1e-6).
#[test]
fn hessian_gradient_product_and_penalty_gradient() {
    for (net, trials, t) in settings().into_iter().take(4) {
        let (_, g) = bptt_grad(&net, &trials, &t);
        let hg = hessian_vector(&net, &trials, &t, &g).unwrap();
        let d1 = central(&net, &trials, &t, &g, 1e-3);
        let d2 = central(&net, &trials, &t, &g, 5e-4);
        let reference: Vec<f64> = d1
            .iter()
            .zip(&d2)
            .map(|(a, b)| (4.0 * b - a) / 3.0)
            .collect();
        let e = distance(&hg, &reference) / norm(&reference);
        eprintln!("{t:?}: H g vs Richardson {e:.2e}");
        assert!(e < 1e-8, "{t:?}: H g vs Richardson {e:e}");
        let theta = net.params(&t).as_slice().to_vec();
        let u = draw(theta.len(), 3);
        let s = 1e-4 / norm(&u);
        let sq = |sign: f64| {
            let mut w = net.clone();
            let p: Vec<f64> = theta
                .iter()
                .zip(&u)
                .map(|(a, b)| a + sign * s * b)
                .collect();
            w.set_params(&t, &p);
            let (_, gg) = bptt_grad(&w, &trials, &t);
            0.5 * dot(&gg, &gg)
        };
        let fd = (sq(1.0) - sq(-1.0)) / (2.0 * s);
        let an = dot(&u, &hg);
        assert!((fd - an).abs() <= 1e-6 * an.abs(), "{t:?}: {fd} vs {an}");
    }
}

/// The dense Hessian built column by column from H e_i on tiny networks (N = 4, all
/// blocks; M only with input and readout) is symmetric to rounding: |H - H^T| <= 1e-13
/// |H| (Frobenius; each entry is a sum of ~T B products of O(1) terms, rounding ~1e-15
/// each). The central difference's Hessian is symmetric only to ~1e-9. Also linearity:
/// H (2u - 3v) = 2 H u - 3 H v to 1e-13.
#[test]
fn dense_hessian_is_symmetric_to_rounding() {
    let cases = [
        (network(4, 0.8, 4, Phi::Tanh, Readout::Rate), ALL),
        (network(4, 0.6, 9, Phi::Erf, Readout::State), LATENT_ALL),
    ];
    for ((net, trials), t) in cases {
        let len = net.num_params(&t);
        let mut h = Hvp::new(&net, trials.steps, trials.batch);
        let mut dense = DMatrix::zeros(len, len);
        let mut col = vec![0.0; len];
        for j in 0..len {
            let mut e = vec![0.0; len];
            e[j] = 1.0;
            h.product(&net, &trials, &t, &e, None, &mut col).unwrap();
            dense.column_mut(j).copy_from_slice(&col);
        }
        let asym = (&dense - dense.transpose()).norm() / dense.norm();
        eprintln!("{t:?}: dense Hessian {len} x {len}, asymmetry {asym:.2e}");
        assert!(asym <= 1e-13, "{t:?}: asymmetry {asym:e}");
        let (u, v) = (draw(len, 5), draw(len, 6));
        let w: Vec<f64> = u.iter().zip(&v).map(|(a, b)| 2.0 * a - 3.0 * b).collect();
        let (hu, hv) = (
            hessian_vector(&net, &trials, &t, &u).unwrap(),
            hessian_vector(&net, &trials, &t, &v).unwrap(),
        );
        let hw = hessian_vector(&net, &trials, &t, &w).unwrap();
        let lin: Vec<f64> = hu.iter().zip(&hv).map(|(a, b)| 2.0 * a - 3.0 * b).collect();
        let e = distance(&hw, &lin) / norm(&hw);
        assert!(e <= 1e-13, "{t:?}: linearity {e:e}");
    }
}

/// Wrong shapes are errors, not panics; the buffers refit to a new trial shape and give
/// the same product as fresh buffers (bit for bit).
#[test]
fn shapes_are_checked_and_buffers_refit() {
    let (net, trials) = network(6, 0.5, 2, Phi::Tanh, Readout::Rate);
    let t = Trainable::FULL;
    let len = net.num_params(&t);
    let mut h = Hvp::new(&net, trials.steps, trials.batch);
    let mut out = vec![0.0; len];
    assert!(h
        .product(&net, &trials, &t, &vec![1.0; len - 1], None, &mut out)
        .is_err());
    let mut short = vec![0.0; len - 1];
    assert!(h
        .product(&net, &trials, &t, &vec![1.0; len], None, &mut short)
        .is_err());
    let mut rng = StdRng::seed_from_u64(11);
    let task = Task::WorkingMemory(WorkingMemory::short_test_task());
    let other = task.trials(net.n, net.inputs(), net.outputs(), net.dt, 3, &mut rng);
    let v = draw(len, 7);
    h.product(&net, &trials, &t, &v, None, &mut out).unwrap();
    h.product(&net, &other, &t, &v, None, &mut out).unwrap();
    let fresh = hessian_vector(&net, &other, &t, &v).unwrap();
    assert_eq!(out, fresh);
    assert_eq!(h.products, 2);
}
