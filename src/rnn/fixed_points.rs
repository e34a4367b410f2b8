//! Fixed and slow points of a trained network (THEORY I.1, "measured quantities").
//!
//! F(x) = -x + W phi(x) + v (v a constant input, e.g. u_s a during the delay of task A),
//! J(x) = -I + W diag(phi'(x)). Fixed points: damped Newton ([`crate::num::newton::newton_dyn`])
//! from trial end states. Slow points in the style of FixedPointFinder: many starts, minimise
//! q(x) = |F(x)|^2 / 2 (gradient J^T F) with L-BFGS ([`crate::num::optim::lbfgs`]), dedupe;
//! q and |F| are always reported. Jacobian spectra use nalgebra's capped `Schur::try_new`.
//!
//! Tracking the A fixed point through B training: theta is the angle in the readout plane
//! (y_a, y_b) between the A fixed point before and after B. Under the aligned loss a rotation
//! by theta at fixed readout norm zhat gives L_A = zhat^2 (1 - cos theta), and with an untrained
//! readout near 0, I = 2 (1 - cos theta) \[der\].

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::network::Network;
use crate::num::newton::{newton_dyn, NewtonOptions};
use crate::num::optim::{lbfgs, LbfgsOptions};
use crate::{Error, Result};

/// Options of the fixed-point finders.
#[derive(Debug, Clone, Copy)]
pub struct FixedPointOptions {
    pub newton: NewtonOptions,
    pub lbfgs: LbfgsOptions,
    /// Slow-point starts per end state (perturbed copies).
    pub slow_starts: usize,
    /// Relative size of the perturbation of a start (times |x| / sqrt(N) per coordinate).
    pub slow_noise: f64,
    /// A slow point with q below this is reported as a fixed point candidate.
    pub q_tol: f64,
    /// Two points closer than `dedupe_tol` x sqrt(N) are the same.
    pub dedupe_tol: f64,
    /// How many leading eigenvalues (by real part) to report.
    pub n_eigs: usize,
    /// A minimum of q whose rms speed |F| / sqrt(N) exceeds this is not a slow point: the
    /// search from that start found no fixed point.
    pub slow_speed_max: f64,
}

impl Default for FixedPointOptions {
    fn default() -> Self {
        FixedPointOptions {
            // |F| ~ sqrt(N) x rounding of O(1) entries: 1e-10 is far above it for N <= 1e4
            newton: NewtonOptions {
                tol: 1e-10,
                max_iter: 100,
                min_damping: 1e-8,
            },
            lbfgs: LbfgsOptions {
                max_iter: 2000,
                grad_tol: 1e-10,
                cost_tol: 1e-20,
                memory: 10,
            },
            slow_starts: 4,
            slow_noise: 0.2,
            q_tol: 1e-8,
            dedupe_tol: 1e-3,
            n_eigs: 4,
            // states are O(0.1-1); 1e-2 per unit time moves a slow point by < 2e-2 rms over a
            // loss window of 2 time units, while a start with no fixed point in reach keeps a
            // speed of the order of the input (e.g. u = 1 along a marginal direction)
            slow_speed_max: 1e-2,
        }
    }
}

/// A fixed (or slow) point.
#[derive(Debug, Clone, Serialize)]
pub struct RnnFixedPoint {
    /// The state (not serialised; N numbers).
    #[serde(skip)]
    pub x: DVector<f64>,
    /// Latent coordinates kappa = U^T x / N.
    pub kappa: [f64; 2],
    /// Readouts y (one per readout channel).
    pub readout: Vec<f64>,
    /// q = |F|^2 / 2 and |F|.
    pub q: f64,
    pub residual: f64,
    /// "newton" or "slow".
    pub method: &'static str,
    /// Leading Jacobian eigenvalues [re, im], by decreasing real part.
    pub eigenvalues: Vec<[f64; 2]>,
    /// Largest real part of the spectrum of J (stable if < 0).
    pub max_real: f64,
    pub stable: bool,
}

/// F(x) and J(x) into preallocated outputs.
fn flow_jac(
    net: &Network,
    v: &DVector<f64>,
    x: &DVector<f64>,
    f: &mut DVector<f64>,
    j: &mut DMatrix<f64>,
) {
    net.flow(x, v, f);
    net.jacobian(x, j);
}

/// Relative threshold for a zero eigenvalue of J at a fixed point: the Schur QR is
/// backward stable (eigenvalue errors ~ 1e-16 |J| x condition), so anything below 1e-9 x the
/// spectral radius is zero to rounding; a trained attractor's slowest mode is >= 1e-4.
pub const SINGULAR_RTOL: f64 = 1e-9;

/// Eigenvalues of J(x), sorted by decreasing real part ([`crate::num::eigen::eigenvalues`]:
/// faer's capped QR with exceptional shifts, which also handles the -I + (low rank) Jacobians
/// of trained g = 0 networks on which nalgebra's Schur stalls).
pub fn jacobian_eigenvalues(net: &Network, x: &DVector<f64>) -> Result<Vec<[f64; 2]>> {
    let mut j = DMatrix::zeros(net.n, net.n);
    net.jacobian(x, &mut j);
    if j.iter().any(|v| !v.is_finite()) {
        return Err(Error::numerical("Jacobian has non-finite entries"));
    }
    let mut ev: Vec<[f64; 2]> = crate::num::eigen::eigenvalues(&j)?
        .into_iter()
        .map(|(re, im)| [re, im])
        .collect();
    ev.sort_by(|a, b| b[0].total_cmp(&a[0]).then(b[1].total_cmp(&a[1])));
    Ok(ev)
}

/// Describe a point: readouts, q, |F|, spectrum.
pub fn describe(
    net: &Network,
    v: &DVector<f64>,
    x: DVector<f64>,
    method: &'static str,
    opts: &FixedPointOptions,
) -> Result<RnnFixedPoint> {
    let mut f = DVector::zeros(net.n);
    net.flow(&x, v, &mut f);
    let residual = f.norm();
    let ev = jacobian_eigenvalues(net, &x)?;
    let radius = ev.iter().map(|e| e[0].hypot(e[1])).fold(1.0, f64::max);
    let smallest = ev
        .iter()
        .map(|e| e[0].hypot(e[1]))
        .fold(f64::INFINITY, f64::min);
    if smallest <= SINGULAR_RTOL * radius {
        let k = net.kappa(&x);
        return Err(Error::Singular {
            context: format!(
                "the Jacobian J = -I + W diag(phi') at the point found by {method}, kappa = ({:.4}, {:.4}), \
                 |F| = {residual:.2e}: it has a zero eigenvalue, so the point is not isolated \
                 (a continuum of fixed points) and its stability is undefined",
                k[0], k[1]
            ),
            pivot: smallest,
            threshold: SINGULAR_RTOL * radius,
        });
    }
    let max_real = ev.first().map(|e| e[0]).unwrap_or(f64::NAN);
    Ok(RnnFixedPoint {
        kappa: net.kappa(&x),
        readout: net.readouts(&x).iter().copied().collect(),
        q: 0.5 * residual * residual,
        residual,
        method,
        eigenvalues: ev.into_iter().take(opts.n_eigs).collect(),
        max_real,
        stable: max_real < 0.0,
        x,
    })
}

/// Damped Newton on F(x) = 0 from `x0` with constant input `v`.
pub fn newton_from(
    net: &Network,
    v: &DVector<f64>,
    x0: DVector<f64>,
    opts: &FixedPointOptions,
) -> Result<RnnFixedPoint> {
    describe(net, v, newton_solve(net, v, x0, opts)?, "newton", opts)
}

/// Damped Newton on F(x) = 0 from `x0`: the root only (no spectrum).
fn newton_solve(
    net: &Network,
    v: &DVector<f64>,
    x0: DVector<f64>,
    opts: &FixedPointOptions,
) -> Result<DVector<f64>> {
    Ok(newton_dyn(|x, f, j| flow_jac(net, v, x, f, j), x0, &opts.newton)?.x)
}

/// The point a trajectory from `x0` settles to: Newton from `x0`; if that fails, minimise q
/// from `x0` (L-BFGS) and polish by Newton; if the polish fails too, the slow point itself
/// (method "slow", with its q and |F|) if its rms speed is below `opts.slow_speed_max`.
/// Errors: [`Error::NoConvergence`] if nothing slow is in reach, [`Error::Singular`] if the
/// point found has a singular Jacobian (not isolated).
pub fn settle(
    net: &Network,
    v: &DVector<f64>,
    x0: DVector<f64>,
    opts: &FixedPointOptions,
) -> Result<RnnFixedPoint> {
    if let Ok(x) = newton_solve(net, v, x0.clone(), opts) {
        return describe(net, v, x, "newton", opts);
    }
    let n = net.n;
    let cost_grad = |x: &DVector<f64>| -> (f64, DVector<f64>) {
        let mut f = DVector::zeros(n);
        let mut j = DMatrix::zeros(n, n);
        flow_jac(net, v, x, &mut f, &mut j);
        (0.5 * f.norm_squared(), j.tr_mul(&f))
    };
    let m = lbfgs(cost_grad, x0, &opts.lbfgs)?;
    if let Ok(x) = newton_solve(net, v, m.x.clone(), opts) {
        return describe(net, v, x, "newton", opts);
    }
    let speed = (2.0 * m.cost).sqrt() / (n as f64).sqrt();
    if speed.is_nan() || speed > opts.slow_speed_max {
        return Err(Error::NoConvergence {
            solver: format!(
                "fixed-point search from the trial end state (Newton, then L-BFGS on \
                 q = |F|^2/2): no fixed or slow point in reach, the minimum of q moves at rms \
                 speed {speed:.3e} (slow-point bound {:.1e}); the network may have no fixed \
                 point for this input",
                opts.slow_speed_max
            ),
            iterations: m.iterations as usize,
            residual: (2.0 * m.cost).sqrt(),
            tolerance: opts.slow_speed_max * (n as f64).sqrt(),
        });
    }
    describe(net, v, m.x, "slow", opts)
}

/// Slow-point search: minimise q = |F|^2/2 by L-BFGS from each start; keep minima with
/// q < q_tol (polished by Newton when it converges), deduplicated.
pub fn slow_points(
    net: &Network,
    v: &DVector<f64>,
    starts: &[DVector<f64>],
    opts: &FixedPointOptions,
) -> Result<Vec<RnnFixedPoint>> {
    Ok(slow_points_min_q(net, v, starts, opts)?.0)
}

/// [`slow_points`] and the smallest q reached from any start.
fn slow_points_min_q(
    net: &Network,
    v: &DVector<f64>,
    starts: &[DVector<f64>],
    opts: &FixedPointOptions,
) -> Result<(Vec<RnnFixedPoint>, f64)> {
    let n = net.n;
    let cost_grad = |x: &DVector<f64>| -> (f64, DVector<f64>) {
        let mut f = DVector::zeros(n);
        let mut j = DMatrix::zeros(n, n);
        flow_jac(net, v, x, &mut f, &mut j);
        let g = j.tr_mul(&f);
        (0.5 * f.norm_squared(), g)
    };
    let mut found: Vec<RnnFixedPoint> = Vec::new();
    let mut min_q = f64::INFINITY;
    for s in starts {
        let m = lbfgs(cost_grad, s.clone(), &opts.lbfgs)?;
        min_q = min_q.min(m.cost);
        if m.cost >= opts.q_tol {
            continue;
        }
        let p = match newton_solve(net, v, m.x.clone(), opts) {
            Ok(x) => describe(net, v, x, "newton", opts)?,
            Err(_) => describe(net, v, m.x, "slow", opts)?,
        };
        push_unique(&mut found, p, opts.dedupe_tol * (n as f64).sqrt());
    }
    Ok((found, min_q))
}

fn push_unique(found: &mut Vec<RnnFixedPoint>, p: RnnFixedPoint, tol: f64) {
    if !found.iter().any(|q| (&q.x - &p.x).norm() < tol) {
        found.push(p);
    }
}

/// All fixed points reachable from the given end states: Newton from each, plus slow-point
/// searches from perturbed copies (seeded). Errors with a clear message if none is found
/// ([`Error::NoConvergence`]) or if a point found has a singular Jacobian ([`Error::Singular`]).
pub fn find_fixed_points(
    net: &Network,
    v: &DVector<f64>,
    end_states: &[DVector<f64>],
    opts: &FixedPointOptions,
    seed: u64,
) -> Result<Vec<RnnFixedPoint>> {
    let n = net.n;
    let tol = opts.dedupe_tol * (n as f64).sqrt();
    let mut found = Vec::new();
    for x0 in end_states {
        // a start from which Newton fails is left to the slow-point search; a root whose
        // Jacobian is singular is an error (describe)
        if let Ok(x) = newton_solve(net, v, x0.clone(), opts) {
            push_unique(&mut found, describe(net, v, x, "newton", opts)?, tol);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut starts = Vec::new();
    for x0 in end_states {
        let s = opts.slow_noise * x0.norm().max(1.0) / (n as f64).sqrt();
        for _ in 0..opts.slow_starts {
            starts.push(x0.map(|v| {
                v + s * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
            }));
        }
    }
    let (slow, min_q) = slow_points_min_q(net, v, &starts, opts)?;
    for p in slow {
        push_unique(&mut found, p, tol);
    }
    if found.is_empty() {
        return Err(Error::NoConvergence {
            solver: format!(
                "no fixed point found: the fixed-point search (Newton from {} trial end \
                 state(s), L-BFGS on q = |F|^2/2 from {} perturbed starts; the network may \
                 have no fixed point for this input)",
                end_states.len(),
                starts.len()
            ),
            iterations: end_states.len() * (1 + opts.slow_starts),
            // the smallest |F| = sqrt(2 q) reached, against the |F| of q_tol
            residual: (2.0 * min_q).sqrt(),
            tolerance: (2.0 * opts.q_tol).sqrt(),
        });
    }
    Ok(found)
}

/// Angle (radians) between two readout vectors.
pub fn readout_angle(y1: &[f64], y2: &[f64]) -> f64 {
    let dot: f64 = y1.iter().zip(y2).map(|(a, b)| a * b).sum();
    let n1: f64 = y1.iter().map(|a| a * a).sum::<f64>().sqrt();
    let n2: f64 = y2.iter().map(|a| a * a).sum::<f64>().sqrt();
    (dot / (n1 * n2).max(f64::MIN_POSITIVE))
        .clamp(-1.0, 1.0)
        .acos()
}

/// How learning B changed the A fixed point.
#[derive(Debug, Clone, Serialize)]
pub struct Tracking {
    /// A fixed point before B ([`settle`] from the A-trial end state).
    pub a_before: RnnFixedPoint,
    /// Where A trials settle after B (Newton from the new A-trial end state).
    pub a_after: RnnFixedPoint,
    /// A's old fixed point continued into the trained-on-B network (None if Newton failed).
    pub a_continued: Option<RnnFixedPoint>,
    /// The B fixed point after B (Newton from the B-trial end state).
    pub b_after: RnnFixedPoint,
    /// Rotation angle theta (readout plane) between `a_before` and `a_after`.
    pub theta: f64,
    /// 2 (1 - cos theta), the predicted interference under the aligned loss.
    pub interference_predicted: f64,
    /// "new_formation" (A's point persists, B's is a different point) or "rotation".
    pub outcome: &'static str,
}

/// Track the A fixed point through B training. `a_end_before` / `a_end_after` are A-trial end
/// states of the networks `before` / `after`, `b_end_after` a B-trial end state of `after`;
/// `v_a`, `v_b` the constant inputs at the end of A and B trials.
#[allow(clippy::too_many_arguments)]
pub fn track(
    before: &Network,
    after: &Network,
    a_end_before: &DVector<f64>,
    a_end_after: &DVector<f64>,
    b_end_after: &DVector<f64>,
    v_a: &DVector<f64>,
    v_b: &DVector<f64>,
    opts: &FixedPointOptions,
) -> Result<Tracking> {
    let a_before = settle(before, v_a, a_end_before.clone(), opts)?;
    let a_after = settle(after, v_a, a_end_after.clone(), opts)?;
    let a_continued = newton_from(after, v_a, a_before.x.clone(), opts).ok();
    let b_after = settle(after, v_b, b_end_after.clone(), opts)?;
    let theta = readout_angle(&a_before.readout, &a_after.readout);
    // new formation: A's old point still exists near where it was (readout angle < 0.1 rad)
    // and A trials still reach it
    let persisted = a_continued
        .as_ref()
        .map(|c| readout_angle(&a_before.readout, &c.readout) < 0.1 && c.stable)
        .unwrap_or(false);
    let outcome = if persisted && theta < 0.1 {
        "new_formation"
    } else {
        "rotation"
    };
    Ok(Tracking {
        a_before,
        a_after,
        a_continued,
        b_after,
        theta,
        interference_predicted: 2.0 * (1.0 - theta.cos()),
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::network::{NetworkSpec, Phi, Readout};

    #[test]
    fn latent_attractor_of_rank_two_structure() {
        // g = 0, erf, M = lambda e_a e_a^T: fixed points kappa_a = ±|kappa*| with
        // |kappa*|^2 = (2/pi)(lambda^2 - 1) in the large-N limit (THEORY I-1); at finite N the
        // patterns are exactly orthogonal but phi is applied to a finite sample, so compare
        // to within the O(1/sqrt(N)) sampling fluctuation of the empirical Gaussian average.
        let mut rng = StdRng::seed_from_u64(2);
        let lambda: f64 = 1.283;
        let net = Network::new(
            &NetworkSpec {
                n: 400,
                g: 0.0,
                dt: 0.2,
                phi: Phi::Erf,
                readout: Readout::Rate,
                m0: [[lambda, 0.0], [0.0, 0.0]],
            },
            &mut rng,
        );
        let v = DVector::zeros(400);
        let x0 = net.u.column(0) * 0.6;
        let p = newton_from(&net, &v, x0, &FixedPointOptions::default()).unwrap();
        let kstar = (2.0 / std::f64::consts::PI * (lambda * lambda - 1.0)).sqrt();
        assert!(p.residual < 1e-10);
        assert!(
            (p.kappa[0] - kstar).abs() < 0.1 * kstar,
            "{:?} vs {kstar}",
            p.kappa
        );
        assert!(p.kappa[1].abs() < 1e-8);
        assert!(p.stable, "{:?}", p.eigenvalues);
        // the b direction relaxes at rate -1 (J = -I on the complement of a)
        assert!(p.eigenvalues.iter().any(|e| (e[0] + 1.0).abs() < 1e-8));
        // the origin is a saddle with growth rate lambda - 1 along a
        let o = describe(
            &net,
            &v,
            DVector::zeros(400),
            "newton",
            &FixedPointOptions::default(),
        )
        .unwrap();
        assert!((o.max_real - (lambda - 1.0)).abs() < 1e-9, "{}", o.max_real);
        // slow-point search from noisy starts finds the same attractor (and no junk)
        let found = find_fixed_points(
            &net,
            &v,
            &[net.u.column(0) * 0.5],
            &FixedPointOptions::default(),
            1,
        )
        .unwrap();
        assert!(found.iter().all(|f| f.q < 1e-8));
        assert!(found.iter().any(|f| (&f.x - &p.x).norm() < 1e-6));
    }

    /// g = 0, identity, M = e_a e_a^T: W = a a^T / N, so J = W - I is singular along a.
    fn marginal_linear_net() -> Network {
        let mut rng = StdRng::seed_from_u64(7);
        Network::new(
            &NetworkSpec {
                n: 30,
                g: 0.0,
                dt: 0.5,
                phi: Phi::Identity,
                readout: Readout::State,
                m0: [[1.0, 0.0], [0.0, 0.0]],
            },
            &mut rng,
        )
    }

    #[test]
    fn no_fixed_point_is_a_typed_error() {
        // input along the null direction a of W - I: F = (W - I) x + a has no root, the
        // smallest |F| is |a| = sqrt(N)
        let net = marginal_linear_net();
        let v = net.u.column(0).into_owned();
        let x0 = net.u.column(0) * 3.0;
        let opts = FixedPointOptions::default();
        match find_fixed_points(&net, &v, std::slice::from_ref(&x0), &opts, 1) {
            Err(Error::NoConvergence {
                solver, residual, ..
            }) => {
                assert!(solver.contains("no fixed point found"), "{solver}");
                assert!((residual - 30f64.sqrt()).abs() < 1e-6, "{residual}");
            }
            other => panic!("expected NoConvergence, got {other:?}"),
        }
        match settle(&net, &v, x0, &opts) {
            Err(Error::NoConvergence { solver, .. }) => {
                assert!(
                    solver.contains("no fixed or slow point in reach"),
                    "{solver}"
                )
            }
            other => panic!("expected NoConvergence, got {other:?}"),
        }
    }

    #[test]
    fn singular_jacobian_is_a_typed_error() {
        // no input: F = (W - I) x vanishes on the line along a
        let net = marginal_linear_net();
        let v = DVector::zeros(30);
        let x0 = net.u.column(0) * 0.7 + net.u.column(1) * 0.01;
        let opts = FixedPointOptions::default();
        for r in [
            find_fixed_points(&net, &v, std::slice::from_ref(&x0), &opts, 1).map(|_| ()),
            settle(&net, &v, x0.clone(), &opts).map(|_| ()),
            newton_from(&net, &v, x0.clone(), &opts).map(|_| ()),
        ] {
            match r {
                Err(Error::Singular {
                    context,
                    pivot,
                    threshold,
                }) => {
                    assert!(context.contains("not isolated"), "{context}");
                    assert!(pivot <= threshold);
                }
                other => panic!("expected Singular, got {other:?}"),
            }
        }
        // a regular linear network (M_aa = 0.5) has exactly one fixed point and no error
        let mut reg = net.clone();
        reg.m = nalgebra::Matrix2::new(0.5, 0.0, 0.0, 0.0);
        reg.sync_w();
        let p = newton_from(&reg, &v, x0, &opts).unwrap();
        assert!(p.x.norm() < 1e-9 && p.stable);
    }

    #[test]
    fn readout_angle_is_the_plane_angle() {
        let t = readout_angle(&[1.0, 0.0], &[0.5, 0.5]);
        assert!((t - std::f64::consts::FRAC_PI_4).abs() < 1e-15);
    }
}
