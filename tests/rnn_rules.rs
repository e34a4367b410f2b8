//! Gradient checks of the learning rules of THEORY III.1 (`rnn::rules`, `bptt::Credit`): each
//! rule's update is compared with an independent computation of its definition.
//!
//! - e-prop and random e-prop: the exact gradient of a *modified network* in which the weight
//!   W_ij acts only on neuron i's own state (every other neuron frozen on the unperturbed
//!   trajectory) and the readout error e is fixed, read out along the feedback B: central
//!   finite differences on a forward pass written here, independent of `bptt.rs`.
//! - truncated BPTT(h): finite differences of the loss in which each loss step s sees W only
//!   through the h transitions before it (x_{s-h} frozen); tbptt(h >= T) is bptt bit for bit;
//!   the chain path at h = T - 1 equals bptt when the last step carries no loss.
//! - node perturbation: its mean approaches the gradient as the number of samples grows.

use modeflow::rnn::bptt::{Credit, Sharded};
use modeflow::rnn::rules::{feedback_matrix, LearningRule, Perturbation};
use modeflow::rnn::task::Trials;
use modeflow::rnn::{Network, NetworkSpec, Phi, Readout, Trainable, Workspace};
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const N: usize = 7;
const STEPS: usize = 12;
const BATCH: usize = 2;

fn network(phi: Phi, seed: u64) -> Network {
    let mut rng = StdRng::seed_from_u64(seed);
    let spec = NetworkSpec {
        n: N,
        g: 0.9,
        dt: 0.2,
        phi,
        readout: Readout::Rate,
        m0: [[0.3, 0.2], [-0.1, 0.4]],
    };
    let mut net = Network::new(&spec, &mut rng);
    // a full random W with an O(1) diagonal, so that e-prop's W_jj term matters
    for i in 0..N {
        for j in 0..N {
            net.w[(i, j)] += 0.3 * rng.sample::<f64, _>(StandardNormal);
        }
    }
    net
}

/// Trials with an input pulse and loss on steps >= 4 (targets random); `last_active` = false
/// removes the loss of the last step.
fn trials(net: &Network, seed: u64, last_active: bool) -> Trials {
    let mut rng = StdRng::seed_from_u64(seed);
    let (k, r) = (net.inputs(), net.outputs());
    let mut tr = Trials::zeros(N, k, r, STEPS, BATCH);
    for j in 0..BATCH {
        tr.inputs[(j % k, j)] = 1.0;
        tr.inputs[(j % k, BATCH + j)] = 1.0;
        for i in 0..N {
            tr.x0[(i, j)] = 0.1 * rng.sample::<f64, _>(StandardNormal);
        }
    }
    for step in 3..STEPS {
        if step == STEPS - 1 && !last_active {
            continue;
        }
        tr.active[step] = true;
        for j in 0..BATCH {
            for rr in 0..r {
                tr.targets[(rr, step * BATCH + j)] = rng.random_range(-0.5..0.5);
                tr.weights[(rr, step * BATCH + j)] = 1.0;
            }
        }
    }
    tr
}

/// The forward pass written out: states x_0..x_T of trial j (x_{k+1} = (1 - dt) x_k
/// + dt (W phi(x_k) + W_in u_k)).
fn states(net: &Network, w: &DMatrix<f64>, tr: &Trials, j: usize) -> Vec<Vec<f64>> {
    let mut xs = vec![tr.x0.column(j).iter().copied().collect::<Vec<f64>>()];
    for k in 0..STEPS {
        let x = xs[k].clone();
        xs.push(step(net, w, &x, tr, k, j));
    }
    xs
}

fn step(net: &Network, w: &DMatrix<f64>, x: &[f64], tr: &Trials, k: usize, j: usize) -> Vec<f64> {
    let h: Vec<f64> = x.iter().map(|&v| net.phi.f(v)).collect();
    (0..N)
        .map(|i| {
            let rec: f64 = (0..N).map(|l| w[(i, l)] * h[l]).sum();
            let inp: f64 = (0..net.inputs())
                .map(|c| net.w_in[(i, c)] * tr.inputs[(c, k * BATCH + j)])
                .sum();
            (1.0 - net.dt) * x[i] + net.dt * (rec + inp)
        })
        .collect()
}

/// Loss of state x as the readout of step s (x = x_{s+1}... the block k = s - 1 of targets).
fn step_loss(net: &Network, x: &[f64], tr: &Trials, s: usize, j: usize) -> f64 {
    let mut l = 0.0;
    for rr in 0..net.outputs() {
        let col = (s - 1) * BATCH + j;
        let c = tr.weights[(rr, col)];
        if c == 0.0 {
            continue;
        }
        let y: f64 = (0..N)
            .map(|i| net.w_out[(i, rr)] * net.phi.f(x[i]))
            .sum::<f64>()
            / N as f64;
        let d = y - tr.targets[(rr, col)];
        l += 0.5 * c * d * d;
    }
    l
}

fn rule_gradient(net: &Network, tr: &Trials, credit: Credit<'_>) -> Vec<f64> {
    let mut ws = Workspace::new(net, STEPS, BATCH);
    let mut g = vec![0.0; net.num_params(&Trainable::FULL)];
    ws.loss_and_grad_with(net, tr, &Trainable::FULL, credit, &mut g)
        .unwrap();
    g
}

/// The entries (i, j) checked by finite differences: every diagonal entry and a spread of
/// off-diagonal ones.
fn entries() -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = (0..N).map(|i| (i, i)).collect();
    v.extend([(0, 3), (2, 5), (4, 1), (6, 0), (5, 6), (3, 2)]);
    v
}

/// The largest |entry|, and the largest |a_k - b_k|.
fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

/// The rule's gradient `g` (column-major, N x N) against the five-point difference (h = 1e-3)
/// of `loss((i, j), delta)` at the [`entries`]; five-point stencil at h = 1e-3: truncation
/// ~h^4 f^(5) ~ 1e-12, rounding ~1e-16 / h, so agreement to 1e-9 of the largest entry.
/// Returns that largest entry.
fn assert_matches_fd(g: &[f64], loss: impl Fn((usize, usize), f64) -> f64, what: &str) -> f64 {
    let scale = max_abs(g);
    for (i, j) in entries() {
        let f = fd(|d| loss((i, j), d), 1e-3);
        let got = g[j * N + i];
        assert!(
            (got - f).abs() <= 1e-9 * scale,
            "{what}: ({i},{j}) rule {got} vs fd {f}"
        );
    }
    scale
}

/// Five-point central difference of f at 0.
fn fd(f: impl Fn(f64) -> f64, h: f64) -> f64 {
    (8.0 * (f(h) - f(-h)) - (f(2.0 * h) - f(-2.0 * h))) / (12.0 * h)
}

/// The modified network of e-prop: only neuron i feels W_ij + delta, every other neuron runs
/// on the unperturbed trajectory; the loss is e . B^T phi(x~)/N with the readout error e fixed.
fn eprop_modified_loss(
    net: &Network,
    tr: &Trials,
    fb: &DMatrix<f64>,
    (i, jj): (usize, usize),
    delta: f64,
) -> f64 {
    let mut total = 0.0;
    for j in 0..BATCH {
        let xs = states(net, &net.w, tr, j);
        // the fixed readout errors e_{s, r} = c (y - target)
        let mut xi = xs[0][i];
        for k in 0..STEPS {
            let h: Vec<f64> = xs[k].iter().map(|&v| net.phi.f(v)).collect();
            let mut rec = 0.0;
            for (l, &h_l) in h.iter().enumerate() {
                let wl = net.w[(i, l)] + if l == jj { delta } else { 0.0 };
                let hl = if l == i { net.phi.f(xi) } else { h_l };
                rec += wl * hl;
            }
            let inp: f64 = (0..net.inputs())
                .map(|c| net.w_in[(i, c)] * tr.inputs[(c, k * BATCH + j)])
                .sum();
            xi = (1.0 - net.dt) * xi + net.dt * (rec + inp);
            let s = k + 1;
            for rr in 0..net.outputs() {
                let col = (s - 1) * BATCH + j;
                let c = tr.weights[(rr, col)];
                if c == 0.0 {
                    continue;
                }
                let y: f64 = (0..N)
                    .map(|l| net.w_out[(l, rr)] * net.phi.f(xs[s][l]))
                    .sum::<f64>()
                    / N as f64;
                let e = c * (y - tr.targets[(rr, col)]);
                total += e * fb[(i, rr)] * net.phi.f(xi) / N as f64;
            }
        }
    }
    total
}

#[test]
fn eprop_is_bptt_of_the_network_without_the_jacobians_off_diagonal() {
    for phi in [Phi::Tanh, Phi::Erf, Phi::Identity] {
        let net = network(phi, 1);
        let tr = trials(&net, 2, true);
        let mut rng = StdRng::seed_from_u64(9);
        let random_fb = feedback_matrix(&net.w_out, 0.3, &mut rng);
        for fb in [None, Some(&random_fb)] {
            let g = rule_gradient(&net, &tr, Credit::Eprop { feedback: fb });
            let b = fb.unwrap_or(&net.w_out);
            let scale = assert_matches_fd(
                &g,
                |ij, d| eprop_modified_loss(&net, &tr, b, ij, d),
                &format!("{phi:?} fb {}", fb.is_some()),
            );
            // and it is not the exact gradient (the check can tell them apart)
            let exact = rule_gradient(&net, &tr, Credit::Exact);
            let diff = max_diff(&g, &exact);
            assert!(diff > 1e-3 * scale, "{phi:?}: e-prop equals BPTT?");
        }
    }
}

/// The truncated loss: each loss step s sees W only through the h transitions from x_{s-h}
/// (frozen on the unperturbed trajectory) to x_s.
fn truncated_loss(net: &Network, tr: &Trials, h: usize, (i, jj): (usize, usize), d: f64) -> f64 {
    let mut w = net.w.clone();
    w[(i, jj)] += d;
    let mut total = 0.0;
    for j in 0..BATCH {
        let xs = states(net, &net.w, tr, j);
        for s in 1..=STEPS {
            if !tr.active[s - 1] {
                continue;
            }
            let start = s.saturating_sub(h);
            let mut x = xs[start].clone();
            for k in start..s {
                x = step(net, &w, &x, tr, k, j);
            }
            total += step_loss(net, &x, tr, s, j);
        }
    }
    total
}

#[test]
fn truncated_bptt_is_the_gradient_of_the_truncated_loss() {
    for phi in [Phi::Tanh, Phi::Erf] {
        let net = network(phi, 3);
        let tr = trials(&net, 4, true);
        for h in [1, 3, 6] {
            let g = rule_gradient(&net, &tr, Credit::Truncated { h });
            assert_matches_fd(
                &g,
                |ij, d| truncated_loss(&net, &tr, h, ij, d),
                &format!("{phi:?} h = {h}"),
            );
        }
    }
}

#[test]
fn tbptt_with_h_t_is_bptt() {
    let net = network(Phi::Tanh, 5);
    // h >= T runs the exact path: bit for bit
    let tr = trials(&net, 6, true);
    let exact = rule_gradient(&net, &tr, Credit::Exact);
    for h in [STEPS, STEPS + 5] {
        assert_eq!(rule_gradient(&net, &tr, Credit::Truncated { h }), exact);
    }
    // the chain path at h = T - 1 when the last step carries no loss: every loss step's
    // credit needs at most T - 2 Jacobians, so it is exact BPTT summed in another order
    let tr = trials(&net, 6, false);
    let exact = rule_gradient(&net, &tr, Credit::Exact);
    let chains = rule_gradient(&net, &tr, Credit::Truncated { h: STEPS - 1 });
    let scale = max_abs(&exact);
    let diff = max_diff(&exact, &chains);
    // a re-ordered sum of ~T terms: a few ulps of the largest entry
    assert!(diff <= 1e-13 * scale, "{diff:e} vs {scale:e}");
}

#[test]
fn bptt_path_is_unchanged_by_the_rule_plumbing() {
    let net = network(Phi::Tanh, 7);
    let tr = trials(&net, 8, true);
    let mut ws = Workspace::new(&net, STEPS, BATCH);
    let mut g0 = vec![0.0; net.num_params(&Trainable::FULL)];
    ws.loss_and_grad(&net, &tr, &Trainable::FULL, &mut g0)
        .unwrap();
    let g1 = rule_gradient(&net, &tr, LearningRule::Bptt.credit(None));
    assert_eq!(g0, g1);
}

#[test]
fn node_perturbation_mean_approaches_the_gradient() {
    let mut net = network(Phi::Tanh, 11);
    net.sync_w(); // M-only: W = W0 + U M U^T / N
    let tr = trials(&net, 12, true);
    let t = Trainable::LATENT;
    let p = net.params(&t);
    let mut ws = Sharded::new(&net, STEPS, BATCH);
    let mut g = vec![0.0; p.len()];
    ws.loss_and_grad(&net, &tr, &t, &mut g).unwrap();
    let gn = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut rng = StdRng::seed_from_u64(13);
    let mut np = Perturbation::default();
    let mut errs = Vec::new();
    for k in [100usize, 10_000] {
        let mut est = vec![0.0; p.len()];
        let l0 = np
            .estimate(
                &mut ws,
                &mut net,
                &tr,
                &t,
                p.as_slice(),
                1e-6,
                k,
                &mut rng,
                &mut est,
            )
            .unwrap();
        assert_eq!(net.params(&t), p, "parameters restored");
        assert!(l0 > 0.0);
        let err = est
            .iter()
            .zip(&g)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt()
            / gn;
        // E|err|^2 = (P + 1)|g|^2 / K for (g . xi) xi: four standard deviations, plus the
        // O(sigma) bias of the one-sided difference (~1e-6 relative here)
        let bound = 4.0 * ((p.len() + 1) as f64 / k as f64).sqrt();
        assert!(err < bound, "K = {k}: relative error {err} >= {bound}");
        errs.push(err);
    }
    assert!(errs[1] < errs[0], "{errs:?}");
}
