//! Property tests of the latent 2x2 model (docs/theory.md I.2, claims I-1, I-2, I-4):
//! closed-form fixed points = Newton fixed points, their classification agrees with the
//! predicted eigenvalues, and the adjoint gradient equals finite differences.

use modeflow::interference::nonlinear::{LossKind, Schedule, Task, Trials};
use modeflow::latent::flow::{eigen_fixed_points, is_stable, numerical_fixed_points};
use modeflow::latent::{Gain, GainKind};
use modeflow::num::eig2::{eigen2, FixedPointType};
use nalgebra::Matrix2;
use proptest::prelude::*;

/// Random M with two well-separated real eigenvalues, the larger > 1.05 and none within 0.05 of
/// 1 (a fixed point of radius -> 0 merges with the origin, and the Newton search cannot resolve
/// it), and a spread of at least 0.05 (near-equal eigenvalues make the eigenvectors
/// ill-conditioned).
fn matrix_with_real_eigenvalue_above_one() -> impl Strategy<Value = Matrix2<f64>> {
    (-1.0f64..2.5, -1.5f64..1.5, -1.5f64..1.5, -1.0f64..2.5)
        .prop_map(|(a, b, c, d)| Matrix2::new(a, b, c, d))
        .prop_filter(
            "real eigenvalues, max > 1.05, away from 1, separated",
            |m| {
                let e = eigen2(m);
                let (l1, l2) = (e.values[0], e.values[1]);
                l1.im == 0.0
                    && l1.re > 1.05
                    && l1.re < 4.0
                    && (l2.re - 1.0).abs() > 0.05
                    && (l1.re - l2.re) > 0.05
            },
        )
}

fn gain_of(tanh: bool) -> Gain {
    Gain::new(if tanh { GainKind::Tanh } else { GainKind::Erf })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// I-1: the eigenvector formula gives exactly the fixed points grid seeding + Newton finds.
    #[test]
    fn closed_form_fixed_points_equal_newton(m in matrix_with_real_eigenvalue_above_one(), tanh in any::<bool>()) {
        let gain = gain_of(tanh);
        let closed = eigen_fixed_points(&m, &gain).unwrap();
        let num = numerical_fixed_points(&m, &gain, 30).unwrap();
        prop_assert_eq!(closed.len(), num.len(), "closed {:?} newton {:?}",
            closed.iter().map(|c| c.point.x).collect::<Vec<_>>(), num.iter().map(|n| n.x).collect::<Vec<_>>());
        // both sorted by (x, y); Newton locates roots to |F| <= 1e-11 with |J^-1| <= ~20 here
        for (c, n) in closed.iter().zip(&num) {
            let d = (c.point.x[0] - n.x[0]).hypot(c.point.x[1] - n.x[1]);
            prop_assert!(d < 1e-9, "{:?} vs {:?}", c.point.x, n.x);
            prop_assert_eq!(c.point.kind, n.kind);
        }
    }

    /// I-2: at the fixed point on the eigenvector of lambda_i the Jacobian eigenvalues are
    /// 2 G' lambda_i r^2 (along v_i) and lambda_j / lambda_i - 1; at the origin lambda_i - 1.
    /// The classification must agree with these predicted eigenvalues.
    #[test]
    fn classification_agrees_with_predicted_eigenvalues(m in matrix_with_real_eigenvalue_above_one(), tanh in any::<bool>()) {
        let gain = gain_of(tanh);
        let e = eigen2(&m);
        let (l1, l2) = (e.values[0].re, e.values[1].re);
        for fp in eigen_fixed_points(&m, &gain).unwrap() {
            let mut predicted = if fp.radius == 0.0 {
                [l1 - 1.0, l2 - 1.0]
            } else {
                let d = fp.radius * fp.radius;
                let (_, gp) = gain.g_and_slope(d);
                let other = if fp.lambda == l1 { l2 } else { l1 };
                [2.0 * gp * fp.lambda * d, other / fp.lambda - 1.0]
            };
            predicted.sort_by(|a, b| b.total_cmp(a));
            let mut measured = [fp.point.eigenvalues[0][0], fp.point.eigenvalues[1][0]];
            measured.sort_by(|a, b| b.total_cmp(a));
            for k in 0..2 {
                prop_assert!(fp.point.eigenvalues[k][1] == 0.0);
                prop_assert!((predicted[k] - measured[k]).abs() < 1e-10 * (1.0 + predicted[k].abs()),
                    "{:?} vs {:?}", predicted, measured);
            }
            let expected = match (predicted[0] < 0.0, predicted[1] < 0.0) {
                (true, true) => FixedPointType::StableNode,
                (false, false) => FixedPointType::UnstableNode,
                _ => FixedPointType::Saddle,
            };
            prop_assert_eq!(fp.point.kind, expected);
            // the attractor is the point on the largest eigenvalue
            prop_assert_eq!(is_stable(fp.point.kind), fp.radius > 0.0 && fp.lambda == l1);
        }
    }
}

/// A random trial definition: schedule, loss, leak, gain; tight ODE tolerances so that a finite
/// difference of the loss resolves the gradient to ~1e-8.
fn trials_strategy() -> impl Strategy<Value = Trials> {
    (
        (
            0.5f64..1.5,
            0.5f64..3.0,
            -0.5f64..0.5,
            1.0f64..5.0,
            0.1f64..1.0,
        ),
        any::<bool>(),
        0.0f64..0.1,
        prop::sample::select(vec![false, false, true]),
    )
        .prop_map(|((u_p, t_in, u_s, t_d, frac), aligned, leak, tanh)| {
            let schedule = Schedule {
                u_p,
                t_in,
                u_s,
                t_d,
                t_l: frac * t_d,
            };
            let loss = if aligned {
                LossKind::Aligned
            } else {
                LossKind::Own
            };
            Trials::accurate(gain_of(tanh), schedule, loss, leak)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// I-4: the adjoint gradient equals the fourth-order central difference
    /// [L(-2h) - 8 L(-h) + 8 L(h) - L(2h)] / (12 h), h = 1e-3 (truncation h^4 |L^(5)| / 30
    /// ~ 1e-13; trial errors ~1e-12 / h ~ 1e-9), to 1e-6 relative to |grad|_F.
    #[test]
    fn adjoint_gradient_equals_finite_differences(
        entries in (-1.0f64..1.4, -0.8f64..0.8, -0.8f64..0.8, -1.0f64..1.4),
        tr in trials_strategy(),
        task_b in any::<bool>(),
    ) {
        let m = Matrix2::new(entries.0, entries.1, entries.2, entries.3);
        let task = if task_b { Task::B } else { Task::A };
        let (_, grad) = tr.loss_and_gradient(&m, task).unwrap();
        prop_assume!(grad.norm() > 1e-4);
        let h = 1e-3;
        let mut err: f64 = 0.0;
        for i in 0..2 {
            for j in 0..2 {
                let l = |s: f64| {
                    let mut mm = m;
                    mm[(i, j)] += s * h;
                    tr.loss(&mm, task).unwrap()
                };
                let fd = (l(-2.0) - 8.0 * l(-1.0) + 8.0 * l(1.0) - l(2.0)) / (12.0 * h);
                err = err.max((fd - grad[(i, j)]).abs());
            }
        }
        prop_assert!(err / grad.norm() < 1e-6, "rel. error {:e}, grad {}", err / grad.norm(), grad);
    }
}
