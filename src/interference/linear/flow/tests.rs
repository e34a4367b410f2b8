//! Unit tests of `interference::linear::flow`.

use super::*;
use approx::assert_relative_eq;

#[test]
fn gradient_matches_finite_differences_and_i6() {
    let par = Params {
        u: 0.3,
        zhat: 1.0,
        eta: 1.3,
    };
    let m = closed::from_entries(0.6, 0.2, -0.1, 0.3);
    for task in [Task::A, Task::B] {
        for l in [Loss::Own, Loss::Aligned] {
            let g = loss_gradient(&m, task, l, &par).unwrap();
            for i in 0..2 {
                for j in 0..2 {
                    let h = 1e-6;
                    let (mut mp, mut mm) = (m, m);
                    mp[(i, j)] += h;
                    mm[(i, j)] -= h;
                    let fd = (loss(&mp, task, l, &par).unwrap()
                        - loss(&mm, task, l, &par).unwrap())
                        / (2.0 * h);
                    assert!(
                        (fd - g[(i, j)]).abs() < 1e-8 * g.amax(),
                        "{task:?} {l:?} ({i},{j})"
                    );
                }
            }
        }
    }
    let general = gradient_flow(&m, Task::B, Loss::Own, &par).unwrap();
    let explicit = task_b_own_explicit(&m, &par).unwrap();
    assert!((general - explicit).amax() < 1e-15);
}

#[test]
fn task_a_from_zero_reaches_lambda_a() {
    let par = Params {
        u: 0.25,
        zhat: 0.5,
        eta: 2.0,
    };
    let tol = 1e-9;
    let a = learn(
        &Matrix2::zeros(),
        Task::A,
        Loss::Own,
        Pathway::Full,
        &par,
        tol,
        &precise_options(),
    )
    .unwrap();
    // Stops at |z_AA - zhat| = tol: lambda short by tol u / zhat^2.
    assert_relative_eq!(
        a.m[(0, 0)],
        1.0 - par.r() - tol * par.u / (par.zhat * par.zhat),
        epsilon = 1e-12
    );
    assert_eq!((a.m[(0, 1)], a.m[(1, 0)], a.m[(1, 1)]), (0.0, 0.0, 0.0));
    // The aligned loss gives the same lambda (z_BA stays 0).
    let b = learn(
        &Matrix2::zeros(),
        Task::A,
        Loss::Aligned,
        Pathway::Full,
        &par,
        tol,
        &precise_options(),
    )
    .unwrap();
    assert_relative_eq!(a.m[(0, 0)], b.m[(0, 0)], epsilon = 1e-12);
}

#[test]
fn reduced_flows_keep_their_frozen_entries() {
    let par = Params::reference(0.3);
    let rot = learn(
        &par.after_a(0.05),
        Task::B,
        Loss::Own,
        Pathway::Rotation,
        &par,
        1e-6,
        &ode_options(),
    )
    .unwrap();
    assert_eq!((rot.m[(0, 0)], rot.m[(1, 1)]), (0.7, 0.0));
    assert_relative_eq!(rot.m[(0, 1)], rot.m[(1, 0)], max_relative = 1e-12);
    let nf = learn(
        &par.after_a(0.05),
        Task::B,
        Loss::Own,
        Pathway::NewFormation,
        &par,
        1e-6,
        &ode_options(),
    )
    .unwrap();
    assert_eq!(
        (nf.m[(0, 0)], nf.m[(0, 1)], nf.m[(1, 0)]),
        (0.7, 0.05, 0.05)
    );
}

#[test]
fn learned_start_and_singular_start_are_errors() {
    let par = Params::reference(0.3);
    let learn_b = |m: &Matrix2<f64>| {
        learn(
            m,
            Task::B,
            Loss::Own,
            Pathway::Full,
            &par,
            1e-6,
            &ode_options(),
        )
    };
    let done = closed::from_entries(0.7, 0.0, 0.0, 0.7);
    assert!(matches!(learn_b(&done), Err(Error::Requirement(_))));
    let sing = closed::from_entries(1.0, 0.0, 0.0, 0.0);
    assert!(matches!(learn_b(&sing), Err(Error::Singular { .. })));
}

/// Task B at (r, eps) = (0.3, 0.05) with each pair at rtol 1e-11: the same results to the
/// integration accuracy (interference and rotation share to 1e-9 relative, a hundred times
/// rtol for the readout's sensitivity |grad z| ~ G_A^2 ~ 10; measured ~1e-12), and
/// DOP853 with under half of DP45's evaluations. `--nocapture` prints the counts
/// (bench/README.md).
#[test]
fn dop853_and_dp45_agree_on_task_b_with_fewer_evaluations() {
    let par = Params::reference(0.3);
    let m0 = par.after_a(0.05);
    let run = |method| {
        let o = OdeOptions {
            method,
            ..ode_options()
        };
        let l = learn_own(&m0, Task::B, Pathway::Full, &par, 1e-6, &o).unwrap();
        let b = task_b(&par, 0.05, 1e-6, &o).unwrap();
        (l, b)
    };
    let (l5, b5) = run(ode::Method::Dp45);
    let (l8, b8) = run(ode::Method::Dop853);
    assert_relative_eq!(b5.interference, b8.interference, max_relative = 1e-9);
    assert_relative_eq!(b5.rotation_share, b8.rotation_share, max_relative = 1e-9);
    // The event time is ill-conditioned by 1/tol: rtol / (tol ln(1/tol)) ~ 1e-6 (see
    // precise_options_for); measured 7e-9.
    assert_relative_eq!(b5.t, b8.t, max_relative = 1e-6);
    // Evaluations: the loss-clock flow, counted through the right-hand side.
    let count = |method| {
        let mut n = 0usize;
        let o = OdeOptions {
            method,
            ..ode_options()
        };
        let e0 = root_loss(&to_state(&m0), Task::B, Loss::Own, &par);
        let y0 = to_state(&m0);
        let (tr, hit) = ode::solve_until(
            |_, y: &ClockState| {
                n += 1;
                rhs_loss_clock(y, Task::B, Rule::Gradient, &par, &Pathway::Full.mask())
            },
            0.0,
            ClockState::new(y0[0], y0[1], y0[2], y0[3], 0.0),
            (e0 / 1e-6).ln() + 50.0,
            |_, y| root_loss(&y.fixed_rows::<4>(0).into_owned(), Task::B, Loss::Own, &par) - 1e-6,
            &o,
        )
        .unwrap();
        assert!(hit.is_some());
        assert_eq!(n, tr.counts.evaluations);
        (tr.steps(), n)
    };
    let (s5, n5) = count(ode::Method::Dp45);
    let (s8, n8) = count(ode::Method::Dop853);
    eprintln!(
        "task B (r = 0.3, eps = 0.05), rtol 1e-11: DP45 {s5} steps {n5} evaluations; \
         DOP853 {s8} steps {n8} evaluations; paths of {} and {} points",
        l5.path.len(),
        l8.path.len()
    );
    assert!(2 * n8 < n5, "DOP853 {n8} vs DP45 {n5} evaluations");
}

#[test]
fn reference_interference_values() {
    // I-8 reference values at eps = 0.05 (one or two significant digits).
    let opts = ode_options();
    for (r, expected) in [
        (0.60, 0.008),
        (0.45, 0.11),
        (0.30, 7.9),
        (0.25, 37.0),
        (0.20, 174.0),
    ] {
        let b = task_b(&Params::reference(r), 0.05, 1e-6, &opts).unwrap();
        assert_relative_eq!(b.interference, expected, max_relative = 0.1);
        assert!(b.conserved_drift < 1e-10);
        assert!((b.readouts_after.z_bb - 1.0).abs() <= 1e-6 + 1e-12);
    }
}

#[test]
fn eprop_is_the_delta_rule_and_matches_its_closed_form() {
    let par = Params {
        u: 0.3,
        zhat: 1.2,
        eta: 0.7,
    };
    let m = closed::from_entries(0.6, 0.2, -0.1, 0.3);
    // E-1: task B, own loss: only row b moves, by eta e kappa_B^T.
    let f = rule_flow(&m, Task::B, Loss::Own, Rule::Eprop, &par).unwrap();
    let kb = closed::fixed_point(&m, par.u, Task::B).unwrap();
    let e = par.zhat - kb[1];
    assert_eq!((f[(0, 0)], f[(0, 1)]), (0.0, 0.0));
    assert_relative_eq!(f[(1, 0)], par.eta * e * kb[0], max_relative = 1e-15);
    assert_relative_eq!(f[(1, 1)], par.eta * e * kb[1], max_relative = 1e-15);
    // The gradient rule is the existing flow, bit for bit.
    assert_eq!(
        rule_flow(&m, Task::B, Loss::Aligned, Rule::Gradient, &par).unwrap(),
        gradient_flow(&m, Task::B, Loss::Aligned, &par).unwrap()
    );
    // The integrated e-prop race against the closed form (E-2), reference protocol.
    for (r, eps) in [(0.2, 0.05), (0.45, 0.05), (0.1, 0.2)] {
        let par = Params::reference(r);
        let b = task_b_rule(&par, eps, Rule::Eprop, 1e-6, &precise_options()).unwrap();
        let c = closed::eprop_task_b(&par.after_a(eps), &par, 1e-6).unwrap();
        assert_eq!(b.rule, Rule::Eprop);
        assert!(b.conserved_drift < 1e-12, "{}", b.conserved_drift);
        assert_relative_eq!(b.t, c.t, max_relative = 1e-7);
        assert_relative_eq!(b.interference, c.interference, max_relative = 1e-7);
        assert_relative_eq!(b.rotation_share, c.rotation_share, max_relative = 1e-7);
    }
}

#[test]
fn loss_clock_escalates_tolerance_near_singular_i_minus_m() {
    // r = 0.005: rotation drives D to ~1e-7; at rtol 1e-11 the event is missed, the retry
    // at tighter rtol meets it (checked on the computed state).
    let par = Params::reference(0.005);
    let b = task_b(&par, 0.001, 1e-6, &ode_options()).unwrap();
    assert!((b.readouts_after.z_bb - 1.0).abs() <= 1e-6);
    assert!(
        closed::det_d(&closed::from_entries(
            b.m_after[0][0],
            b.m_after[0][1],
            b.m_after[1][0],
            b.m_after[1][1]
        )) < 1e-6
    );
    // r = 0.001 (D ~ 1e-9 at the end): beyond DP45 even at rtol 1e-14, a clear
    // NoConvergence, not a wrong answer; DOP853 (the default at this rtol) resolves it, and
    // the event is met on the computed state.
    let par = Params::reference(0.001);
    let dp45 = OdeOptions {
        method: ode::Method::Dp45,
        ..ode_options()
    };
    assert!(matches!(
        task_b(&par, 1e-4, 1e-6, &dp45),
        Err(Error::NoConvergence { .. })
    ));
    let b = task_b(&par, 1e-4, 1e-6, &ode_options()).unwrap();
    assert!((b.readouts_after.z_bb - 1.0).abs() <= 1e-6);
}
