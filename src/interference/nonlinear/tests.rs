//! Unit tests of `interference::nonlinear`.

use super::*;
use crate::latent::gain::GainKind;

pub(crate) fn trials(kind: GainKind, loss: LossKind, leak: f64) -> Trials {
    let schedule = Schedule {
        u_p: 1.0,
        t_in: 2.0,
        u_s: 0.1,
        t_d: 4.0,
        t_l: 1.5,
    };
    Trials::accurate(Gain::new(kind), schedule, loss, leak)
}

/// The loss of task B when only the *direct* effect of M on the trajectory is kept: the
/// recurrent drive is M' G(|kappa0|^2) kappa0 along the frozen trajectory kappa0(t) of M,
/// so the sensitivity obeys d(dkappa)/dt = -dkappa + dM G kappa0 (Jacobian -> the leak).
/// Its derivative in M' at M' = M is e-prop's update by construction (THEORY III.1): an
/// independent forward computation of what the e-prop adjoint must return.
fn frozen_loss(tr: &Trials, m: &Matrix2<f64>, mp: &Matrix2<f64>, task: Task) -> f64 {
    let base = tr.trial(m, task).unwrap();
    let (_, end) = tr
        .integrate_pieces(task, |i, t, k, input| {
            let z0 = base.pieces[i].eval(t);
            let k0 = Vector2::new(z0[0], z0[1]);
            let (g0, _) = tr.gain.g_and_slope(k0.norm_squared());
            // kappa0 solves kappa0' = -kappa0 + M G0 kappa0 + input (so kappa = kappa0
            // at M' = M); only the direct drive M' G0 kappa0 sees M'
            -k + mp * (k0 * g0) + input
        })
        .unwrap();
    end[2]
}

#[test]
fn eprop_update_is_the_derivative_of_the_frozen_recurrence_loss() {
    let m = Matrix2::new(1.3, 0.2, -0.15, 0.4);
    for kind in [GainKind::Erf, GainKind::Tanh] {
        for loss in [LossKind::Own, LossKind::Aligned] {
            let mut tr = trials(kind, loss, 0.05);
            tr.rule = Rule::Eprop;
            let (l, upd) = tr.loss_and_gradient(&m, Task::B).unwrap();
            assert!((l - tr.loss(&m, Task::B).unwrap()).abs() < 1e-15);
            let (_, grad) = {
                let mut g = tr.clone();
                g.rule = Rule::Gradient;
                g.loss_and_gradient(&m, Task::B).unwrap()
            };
            // e-prop is not the gradient here (M != 0 carries recurrent credit) ...
            assert!((upd - grad).norm() > 1e-3 * grad.norm(), "{upd} vs {grad}");
            // ... but it is the derivative of the frozen-recurrence loss, by central
            // differences (h = 1e-4: truncation ~1e-8 relative, ODE error 1e-11 / h).
            let h = 1e-4;
            for i in 0..2 {
                for j in 0..2 {
                    let (mut mp, mut mm) = (m, m);
                    mp[(i, j)] += h;
                    mm[(i, j)] -= h;
                    let fd = (frozen_loss(&tr, &m, &mp, Task::B)
                        - frozen_loss(&tr, &m, &mm, Task::B))
                        / (2.0 * h);
                    assert!(
                        (fd - upd[(i, j)]).abs() < 1e-6 * upd.norm() + 1e-9,
                        "{kind:?} {loss:?} ({i},{j}): fd {fd} vs e-prop {}",
                        upd[(i, j)]
                    );
                }
            }
        }
    }
}

#[test]
fn eprop_equals_the_gradient_without_recurrence() {
    // M = 0: the Jacobian is -I, its own diagonal, so both adjoints coincide.
    let m = Matrix2::zeros();
    for kind in [GainKind::Erf, GainKind::Tanh] {
        let mut tr = trials(kind, LossKind::Aligned, 0.05);
        let (_, g) = tr.loss_and_gradient(&m, Task::A).unwrap();
        tr.rule = Rule::Eprop;
        let (_, e) = tr.loss_and_gradient(&m, Task::A).unwrap();
        assert!((g - e).norm() <= 1e-14 * g.norm(), "{g} vs {e}");
    }
}

#[test]
fn eprop_with_a_finite_n_gain_is_refused() {
    let mut tr = trials(GainKind::Erf, LossKind::Own, 0.0);
    tr.rule = Rule::Eprop;
    let (a, b) = ([1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]);
    tr.finite_n = Some(FiniteNGain::new(
        GainKind::Erf,
        crate::latent::finite_n::Order::Exact,
        &a,
        &b,
    ));
    assert!(tr.loss_and_gradient(&Matrix2::identity(), Task::B).is_err());
}

#[test]
fn adjoint_gradient_matches_central_differences() {
    let m = Matrix2::new(1.3, 0.2, -0.15, 0.4);
    for kind in [GainKind::Erf, GainKind::Tanh] {
        for loss in [LossKind::Own, LossKind::Aligned] {
            let tr = trials(kind, loss, 0.05);
            for task in [Task::A, Task::B] {
                let (_, grad) = tr.loss_and_gradient(&m, task).unwrap();
                // h = 1e-4: truncation h^2 L''' ~ 1e-8 relative; ODE error ~1e-11 / h = 1e-7
                // absolute in the quotient is the floor, well below 1e-6 |grad|.
                let h = 1e-4;
                for i in 0..2 {
                    for j in 0..2 {
                        let mut mp = m;
                        mp[(i, j)] += h;
                        let mut mm = m;
                        mm[(i, j)] -= h;
                        let fd =
                            (tr.loss(&mp, task).unwrap() - tr.loss(&mm, task).unwrap()) / (2.0 * h);
                        let err = (fd - grad[(i, j)]).abs() / grad.norm();
                        assert!(
                            err < 1e-6,
                            "{kind:?} {loss:?} {task:?} ({i},{j}): {fd} vs {}",
                            grad[(i, j)]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn line_kappa_a_zero_is_invariant_without_seed() {
    // M = diag(lambda, s), no leak: the B trial keeps kappa_a = 0 and the off-diagonal
    // gradient vanishes exactly (claim I-4).
    let tr = trials(GainKind::Erf, LossKind::Aligned, 0.0);
    let m = Matrix2::new(1.283, 0.0, 0.0, 0.3);
    let (_, grad) = tr.loss_and_gradient(&m, Task::B).unwrap();
    assert_eq!(grad[(0, 1)], 0.0);
    assert_eq!(grad[(1, 0)], 0.0);
    assert!(grad[(1, 1)].abs() > 1e-3);
}

#[test]
fn decomposition_separates_the_bb_entry() {
    let before = Matrix2::new(1.28, 0.05, 0.05, 0.0);
    let after = Matrix2::new(1.20, 0.35, -0.25, 0.9);
    let d = decompose(&before, &after);
    assert_eq!(d.new_formation_part, [[0.0, 0.0], [0.0, 0.9]]);
    let r = d.rotation_part;
    assert!((r[0][0] + 0.08).abs() < 1e-15 && (r[0][1] - 0.3).abs() < 1e-15);
    assert!((r[1][0] + 0.3).abs() < 1e-15 && r[1][1] == 0.0);
    let total = 0.08f64.powi(2) + 2.0 * 0.09 + 0.81;
    assert!((d.rotation_share - (0.08f64.powi(2) + 0.18) / total).abs() < 1e-14);
    assert_eq!(decompose(&before, &before).rotation_share, 0.0);
}

#[test]
fn learning_flow_reaches_the_tolerance_and_lowers_the_loss() {
    let tr = Trials {
        ode: OdeOptions {
            rtol: 1e-8,
            atol: 1e-11,
            ..OdeOptions::default()
        },
        ..trials(GainKind::Erf, LossKind::Aligned, 0.0)
    };
    let opts = LearningOptions {
        eta: 1.0,
        tol: 1e-4,
        tau_max: 1e3,
        ode: OdeOptions {
            rtol: 1e-6,
            atol: 1e-9,
            ..OdeOptions::default()
        },
    };
    let run = learn(&tr, &Matrix2::zeros(), Task::A, &opts).unwrap();
    assert!(run.converged && run.loss_start > 1e-2);
    // the event stops where L(M(tau)) = tol, located to ~1e-13 in tau
    assert!((run.loss_end - 1e-4).abs() < 1e-9, "{}", run.loss_end);
    // the loss decreases monotonically along the gradient flow (checked on the stored steps)
    let losses: Vec<f64> = run
        .path
        .y
        .iter()
        .map(|y| tr.loss(&unpack(y), Task::A).unwrap())
        .collect();
    assert!(losses.windows(2).all(|w| w[1] <= w[0] * (1.0 + 1e-9)));
}
