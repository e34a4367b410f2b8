//! Unit tests of `rnnified_flow`.

use super::*;
use crate::rnn::network::{NetworkSpec, Phi, Readout};
use crate::rnn::task::{Task, WorkingMemory};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn small() -> (Network, Trials) {
    network(16, 0.5, 3)
}

/// A tanh network of `n` neurons with random connectivity `g` (seed `seed`) and the short
/// working-memory test task.
fn network(n: usize, g: f64, seed: u64) -> (Network, Trials) {
    let mut rng = StdRng::seed_from_u64(seed);
    let spec = NetworkSpec {
        n,
        g,
        dt: 0.2,
        phi: Phi::Tanh,
        readout: Readout::Rate,
        m0: [[0.0; 2]; 2],
    };
    let net = Network::new(&spec, &mut rng);
    let task = Task::WorkingMemory(WorkingMemory::short_test_task());
    let trials = task.trials(net.n, net.inputs(), net.outputs(), net.dt, 1, &mut rng);
    (net, trials)
}

fn grad_at(net: &Network, trials: &Trials, theta: &[f64]) -> Vec<f64> {
    let mut w = net.clone();
    w.set_params(&Trainable::FULL, theta);
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut g = vec![0.0; theta.len()];
    ws.loss_and_grad(&w, trials, &Trainable::FULL, &mut g)
        .unwrap();
    g
}

fn hv(net: &Network, trials: &Trials, theta: &[f64], v: &[f64], h: f64) -> Vec<f64> {
    let mut ws = Sharded::new(net, trials.steps, trials.batch);
    let mut scratch = net.clone();
    let mut hp = HessianProduct::new(theta.len());
    let mut out = vec![0.0; theta.len()];
    hp.product(
        &mut ws,
        &mut scratch,
        trials,
        &Trainable::FULL,
        theta,
        v,
        h,
        &mut out,
    )
    .unwrap();
    out
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    distance(a, b) / b.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The central difference at FD_STEP against a Richardson-extrapolated reference
/// R = (4 D(h/2) - D(h)) / 3 at h = 1e-3 (truncation O(h^4) ~ 1e-12, rounding ~1e-15 / 1e-3):
/// relative error below 1e-7 (measured ~1e-9; truncation at 1e-5 is ~1e-10 x |D^3 g|,
/// rounding ~1e-15 / 1e-5). A wrong sign, factor or step would miss by orders of magnitude.
/// The plain differences at h = 8e-3 and 4e-3 (not used in R) converge to R at order 2:
/// halving h cuts their error 4 +- 0.5 times (the O(h^2) remainder of the ratio).
#[test]
fn hessian_gradient_product_matches_richardson_reference() {
    let (net, trials) = small();
    let theta = net.params(&Trainable::FULL).as_slice().to_vec();
    let g = grad_at(&net, &trials, &theta);
    let d1 = hv(&net, &trials, &theta, &g, 1e-3);
    let d2 = hv(&net, &trials, &theta, &g, 5e-4);
    let reference: Vec<f64> = d1
        .iter()
        .zip(&d2)
        .map(|(a, b)| (4.0 * b - a) / 3.0)
        .collect();
    let at_step = hv(&net, &trials, &theta, &g, FD_STEP);
    let e = rel(&at_step, &reference);
    assert!(e < 1e-7, "relative error of H g at FD_STEP: {e:e}");
    let e8 = rel(&hv(&net, &trials, &theta, &g, 8e-3), &reference);
    let e4 = rel(&hv(&net, &trials, &theta, &g, 4e-3), &reference);
    assert!(
        e4 > 1e-8 && (e8 / e4 - 4.0).abs() < 0.5,
        "e8 {e8:e} e4 {e4:e}"
    );
}

/// Two independent identities of the true Hessian: symmetry u.(H v) = v.(H u) for random
/// u, v, and u.(H g) = d/ds |g(theta + s u)|^2 / 2 (the penalty's gradient, by a central
/// difference of the squared gradient norm). Tolerance 1e-6 relative: the FD errors of the
/// module docs (1e-8) plus the scalar difference's (h = 1e-4: truncation 1e-8, rounding
/// 1e-11).
#[test]
fn hessian_product_is_symmetric_and_the_penalty_gradient() {
    let (net, trials) = small();
    let theta = net.params(&Trainable::FULL).as_slice().to_vec();
    let mut rng = StdRng::seed_from_u64(9);
    use rand_distr::{Distribution, StandardNormal};
    let mut draw = || -> Vec<f64> {
        (0..theta.len())
            .map(|_| StandardNormal.sample(&mut rng))
            .collect()
    };
    let (u, v) = (draw(), draw());
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let hu = hv(&net, &trials, &theta, &u, FD_STEP);
    let hvv = hv(&net, &trials, &theta, &v, FD_STEP);
    let (a, b) = (dot(&u, &hvv), dot(&v, &hu));
    assert!((a - b).abs() <= 1e-6 * a.abs().max(b.abs()), "{a} vs {b}");
    let g = grad_at(&net, &trials, &theta);
    let hg = hv(&net, &trials, &theta, &g, FD_STEP);
    let un = u.iter().map(|x| x * x).sum::<f64>().sqrt();
    let s = 1e-4 / un;
    let sq = |sign: f64| {
        let t: Vec<f64> = theta
            .iter()
            .zip(&u)
            .map(|(t, x)| t + sign * s * x)
            .collect();
        let gg = grad_at(&net, &trials, &t);
        0.5 * dot(&gg, &gg)
    };
    let fd = (sq(1.0) - sq(-1.0)) / (2.0 * s);
    let an = dot(&u, &hg);
    assert!((fd - an).abs() <= 1e-6 * an.abs(), "{fd} vs {an}");
}

/// B-12 on the network: GD at step eta for tau = 2 against the plain and the modified
/// flow. Halving eta halves |GD - flow| (first order) and quarters |GD - modified flow|
/// (second order). Ratios 2 +- 0.5 and 4 +- 1 (the O(eta) remainder of each ratio at
/// eta = 1/8 -> 1/16); the flows at rtol 1e-10 are exact to far below the gaps.
#[test]
fn gd_follows_the_modified_flow_at_second_order() {
    let (net, trials) = small();
    let theta = net.params(&Trainable::FULL).as_slice().to_vec();
    let tau = 2.0;
    let flow = flow_to(&net, &trials, &Trainable::FULL, &theta, tau, None, 1e-10).unwrap();
    let mut plain = Vec::new();
    let mut modified = Vec::new();
    for eta in [0.125, 0.0625] {
        let gd = gd_steps(
            &net,
            &trials,
            &Trainable::FULL,
            &theta,
            eta,
            (tau / eta) as usize,
        )
        .unwrap();
        let m = flow_to(
            &net,
            &trials,
            &Trainable::FULL,
            &theta,
            tau,
            Some((eta, HessianMethod::Exact)),
            1e-10,
        )
        .unwrap();
        plain.push(distance(&gd, &flow));
        modified.push(distance(&gd, &m));
    }
    let r1 = plain[0] / plain[1];
    let r2 = modified[0] / modified[1];
    assert!((r1 - 2.0).abs() < 0.5, "plain ratio {r1} ({plain:?})");
    assert!((r2 - 4.0).abs() < 1.0, "modified ratio {r2} ({modified:?})");
    assert!(modified[1] < 0.2 * plain[1]);
}

/// Power iteration against the dense Hessian of a tiny network (N = 4, built column by
/// column from the same products, symmetrised, eigenvalues by nalgebra's capped symmetric
/// solver): lambda_max within 1e-4 relative (the power iteration stops at 1e-10 on the
/// quotient; the product's error is ~1e-8).
#[test]
fn sharpness_matches_the_dense_hessian() {
    let (net, trials) = network(4, 0.8, 4);
    let theta = net.params(&Trainable::FULL).as_slice().to_vec();
    let len = theta.len();
    let mut h = nalgebra::DMatrix::zeros(len, len);
    for j in 0..len {
        let mut e = vec![0.0; len];
        e[j] = 1.0;
        let col = hv(&net, &trials, &theta, &e, FD_STEP);
        for i in 0..len {
            h[(i, j)] = col[i];
        }
    }
    let sym = (&h + h.transpose()) * 0.5;
    let eig = nalgebra::SymmetricEigen::try_new(sym, 1e-14, 10_000).unwrap();
    let top = eig
        .eigenvalues
        .iter()
        .cloned()
        .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
    let (lambda, _) = sharpness(&net, &trials, &Trainable::FULL, 2000, 1e-10).unwrap();
    assert!(
        (lambda - top).abs() <= 1e-4 * top.abs(),
        "power {lambda} vs dense {top}"
    );
}

/// The modified flow with the exact product against the one with the central difference
/// (the cross-check): at eta = 1/2 over tau = 2 on the test network, both at rtol 1e-10,
/// the end points agree to 1e-7 relative to the distance travelled (the difference's
/// ~1e-9 relative error in the penalty, times (eta/2)|H g| / |g| <= O(1), integrated over
/// tau = 2, plus the two flows' own tolerances). A wrong penalty (sign or factor) would
/// differ by the penalty's whole effect, ~1e-2 of the distance (asserted above 1e-4).
#[test]
fn modified_flow_is_the_same_with_either_product() {
    let (net, trials) = small();
    let theta = net.params(&Trainable::FULL).as_slice().to_vec();
    let run = |eta: Option<f64>, method| {
        let modified = eta.map(|e| (e, method));
        flow_to(
            &net,
            &trials,
            &Trainable::FULL,
            &theta,
            2.0,
            modified,
            1e-10,
        )
        .unwrap()
    };
    let exact = run(Some(0.5), HessianMethod::Exact);
    let cd = run(Some(0.5), HessianMethod::CentralDifference { h: FD_STEP });
    let plain = run(None, HessianMethod::Exact);
    let travelled = distance(&exact, &theta);
    let e = distance(&exact, &cd) / travelled;
    let effect = distance(&exact, &plain) / travelled;
    eprintln!("exact vs central difference {e:.2e}, penalty effect {effect:.2e}");
    assert!(
        e < 1e-7,
        "exact vs central difference: {e:e} (penalty effect {effect:e})"
    );
    assert!(effect > 1e-4, "penalty effect {effect:e}");
}

#[test]
fn central_difference_step_is_checked() {
    for h in [0.0, -1e-5, f64::NAN, f64::INFINITY] {
        let m = HessianMethod::CentralDifference { h };
        assert!(Penalty::with_method(0.5, 3, m).is_err(), "h = {h}");
    }
    assert_eq!(Penalty::new(0.5, 3).unwrap().method(), HessianMethod::Exact);
}

#[test]
fn eta_out_of_range_is_refused() {
    for eta in [0.0, -1.0, f64::NAN, 9.0, f64::INFINITY] {
        assert!(Penalty::new(eta, 3).is_err(), "eta = {eta}");
    }
    assert!(Penalty::new(ETA_MAX, 3).is_ok());
}
