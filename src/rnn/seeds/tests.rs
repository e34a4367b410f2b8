//! Unit tests of `rnn::seeds`.

use super::*;
use crate::rnn::network::{NetworkSpec, Readout};

fn small_net(g: f64, n: usize, phi: Phi, seed: u64) -> Network {
    Network::new(
        &NetworkSpec {
            n,
            g,
            dt: 0.2,
            phi,
            readout: Readout::Rate,
            m0: [[1.25, 0.05], [-0.03, 0.2]],
        },
        &mut StdRng::seed_from_u64(seed),
    )
}

/// The tangent trial is the derivative of eps along W0: with M frozen and W0 = t Z,
/// eps(t) - eps(0) - t eps'(0) = O(t^2). Central differences at t = 1e-3 agree with the
/// tangent to 1e-6 relative (truncation t^2 eps''' / 6 ~ 1e-7, rounding 1e-16 / 1e-3);
/// the one-sided remainder falls 4x when t halves (second order), and at t = 0.05 is
/// still a small fraction of the first-order term.
#[test]
fn tangent_is_the_derivative_of_eps_in_w0() {
    let spec = XvalSpec::standard();
    let net = small_net(1.0, 96, Phi::Erf, 3);
    let z = &net.w0; // g = 1: Z itself
    let m = net.m;
    let trial = BTrial::new(&spec, &net.u, Phi::Erf);
    let r = trial.reference(&m);
    let e0 = trial.eps(&m, None);
    assert!((e0 - r.eps).abs() < 1e-15, "{e0} vs {}", r.eps);
    let d = trial.tangent(&m, z, &r, Drive::Full, false);
    let at = |t: f64| trial.eps(&m, Some(&(z * t)));
    let h = 1e-3;
    let fd = (at(h) - at(-h)) / (2.0 * h);
    assert!((fd - d).abs() < 1e-6 * d.abs(), "fd {fd} vs tangent {d}");
    let rem = |t: f64| (at(t) - e0 - t * d).abs();
    let (r1, r2) = (rem(0.02), rem(0.01));
    let order = (r1 / r2).log2();
    println!("tangent {d:.6e}, fd {fd:.6e}, remainders {r1:.3e} {r2:.3e}, order {order:.3}");
    assert!((order - 2.0).abs() < 0.15, "remainder order {order}");
    assert!(rem(0.05) < 0.1 * 0.05 * d.abs());
    // the bulk tangent agrees with the first-order one to O(g) relative (second order)
    let bulk = |t: f64| trial.tangent(&m, &(z * t), &r, Drive::Full, true) / t;
    let gap = |t: f64| (bulk(t) - d).abs();
    let o = (gap(0.02) / gap(0.01)).log2();
    assert!((o - 1.0).abs() < 0.1, "bulk - first order in g: {o}");
}

/// For a linear phi the bulk tangent is exact at any g: eps(W0) - eps(0) = a^T delta_T / N
/// with W0 in the propagator (the trial is linear in x).
#[test]
fn bulk_tangent_is_exact_for_a_linear_network() {
    let spec = XvalSpec::standard();
    let net = small_net(0.8, 80, Phi::Identity, 5);
    let trial = BTrial::new(&spec, &net.u, Phi::Identity);
    let r = trial.reference(&net.m);
    let exact = trial.eps(&net.m, Some(&net.w0)) - r.eps;
    let bulk = trial.tangent(&net.m, &net.w0, &r, Drive::Full, true);
    let first = trial.tangent(&net.m, &net.w0, &r, Drive::Full, false);
    assert!(
        (exact - bulk).abs() < 1e-12 * exact.abs(),
        "{exact} vs {bulk}"
    );
    // and the first-order tangent misses by the bulk's higher orders (g = 0.8: visible)
    assert!((exact - first).abs() > 1e-3 * exact.abs());
}

/// A bulk made only of the a-b coupling, W0 = c a b^T / N, has a^T W0 b / N = c and
/// drives the tangent exactly as its a^T W0 b / N part.
#[test]
fn ab_part_is_the_whole_drive_of_a_pure_ab_bulk() {
    let spec = XvalSpec::standard();
    let net = small_net(0.0, 64, Phi::Erf, 7);
    let (a, b) = (net.u.column(0), net.u.column(1));
    let w0 = a * b.transpose() * (0.03 / 64.0);
    let trial = BTrial::new(&spec, &net.u, Phi::Erf);
    let r = trial.reference(&net.m);
    let full = trial.tangent(&net.m, &w0, &r, Drive::Full, false);
    let ab = trial.tangent(&net.m, &w0, &r, Drive::AlongAb, false);
    assert!((full - ab).abs() < 1e-12 * full.abs(), "{full} vs {ab}");
    assert!(full.abs() > 1e-4);
}

/// The measured eps is the protocol's: run_sequential's eps (Workspace forward) equals
/// this module's trial at W_afterA to rounding; at g = 0 the pattern predictor is the
/// measurement (the same map, I-14).
#[test]
fn measured_eps_is_the_protocols() {
    use super::super::sequential::run_sequential;
    let spec = XvalSpec::standard();
    for g in [0.0, 0.5] {
        let s = seed_eps(&spec, g, 64, 2).unwrap();
        let seq = spec.sequential(64, g);
        let (res, _) = run_sequential(&seq, 2).unwrap();
        assert!(
            (res.eps - s.eps).abs() < 1e-10 * s.eps.abs(),
            "g {g}: {} vs {}",
            res.eps,
            s.eps
        );
        if g == 0.0 {
            for p in s.predictions() {
                assert!((p - s.eps).abs() < 1e-9 * s.eps.abs(), "{p} vs {}", s.eps);
            }
        }
    }
}

#[test]
fn median_exponent_recovers_a_power_law() {
    // |v| = 3 N^-0.5 (1 + spread) with the same spread at every N: slope exactly -0.5
    let groups: Vec<(usize, Vec<f64>)> = [128usize, 256, 512]
        .iter()
        .map(|&n| {
            let s = 3.0 * (n as f64).powf(-0.5);
            (n, (0..16).map(|i| s * (0.5 + 0.1 * i as f64)).collect())
        })
        .collect();
    let e = median_exponent(&groups, &Bootstrap::new(1)).unwrap();
    assert!((e.value + 0.5).abs() < 1e-12, "{e:?}");
    assert!(e.lo <= e.value && e.value <= e.hi && e.hi - e.lo < 1.0);
    assert!(median_exponent(&groups[..1], &Bootstrap::new(1)).is_err());
}
