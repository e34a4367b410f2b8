//! Property tests of the linear static 2x2 model (THEORY I.3, I-5 .. I-7): conserved
//! p^2 - q^2 along the flow, closed-form fixed points solve the dynamics, closed-form learning
//! times equal ODE times, and the general gradient equals the explicit I-6 equations and the
//! finite differences of the loss.

use modeflow::interference::linear::closed::{self, from_entries, Params, Task};
use modeflow::interference::linear::flow::{self, Loss, Pathway};
use modeflow::num::ode;
use nalgebra::{Matrix2, Vector2};
use proptest::prelude::*;

/// A matrix M with D = det(I - M) bounded away from zero (|D| >= 0.1) and entries in [-0.9, 0.9].
fn matrix_strategy() -> impl Strategy<Value = Matrix2<f64>> {
    (-0.9..0.9f64, -0.9..0.9f64, -0.9..0.9f64, -0.9..0.9f64)
        .prop_map(|(l, p, q, s)| from_entries(l, p, q, s))
        .prop_filter("|D| >= 0.1", |m| closed::det_d(m).abs() >= 0.1)
}

fn params_strategy() -> impl Strategy<Value = Params> {
    (0.1..0.9f64, 0.5..2.0f64, 0.3..3.0f64).prop_map(|(r, zhat, eta)| Params {
        u: r * zhat,
        zhat,
        eta,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// I-6: p^2 - q^2 is conserved along the full task-B flow from a random start near the
    /// learned A state. Tolerance 1e-10: DP45 at rtol 1e-11 (see I-6's claim file).
    #[test]
    fn p2_minus_q2_is_conserved(
        par in params_strategy(),
        dl in -0.1..0.1f64, p0 in -0.2..0.2f64, q0 in -0.2..0.2f64, s0 in -0.1..0.1f64,
    ) {
        let m0 = from_entries(par.c() + dl, p0, q0, s0);
        let d0 = closed::det_d(&m0);
        prop_assume!(d0 > 0.05);
        let z0 = closed::readouts(&m0, par.u).unwrap().z_bb;
        prop_assume!((z0 - par.zhat).abs() > 1e-3);
        let b = flow::task_b_from(&m0, &par, 1e-6, &flow::ode_options()).unwrap();
        prop_assert!(b.conserved_drift < 1e-10, "drift {}", b.conserved_drift);
        prop_assert!((b.readouts_after.z_bb - par.zhat).abs() <= 1e-6 * (1.0 + 1e-9));
    }

    /// I-5: the closed-form fixed points solve kappa' = 0, and where stable, the network
    /// relaxes to them from kappa = 0.
    #[test]
    fn closed_form_fixed_points_solve_the_dynamics(m in matrix_strategy(), u in 0.05..2.0f64) {
        for task in [Task::A, Task::B] {
            let kappa = closed::fixed_point(&m, u, task).unwrap();
            let e = task.unit() * u;
            let residual = (-kappa + m * kappa + e).amax();
            // A 2x2 solve: a few ulps of |M| |kappa| + u.
            prop_assert!(residual <= 1e-14 * (kappa.amax() + u), "residual {residual}");
            let ev = modeflow::num::eig2::eigen2(&(m - Matrix2::identity()));
            let rate = -ev.values[0].re.max(ev.values[1].re);
            if rate > 0.05 {
                let opts = ode::OdeOptions::tol(1e-12, 1e-14);
                let t_end = 40.0 / rate; // e^-40 of the initial distance remains
                let tr = ode::solve(|_, x: &Vector2<f64>| -x + m * x + e, 0.0, Vector2::zeros(), t_end, &opts).unwrap();
                let x = tr.last().1;
                prop_assert!((x - kappa).amax() <= 1e-9 * (1.0 + kappa.amax()), "relaxed {x} vs {kappa}");
            }
        }
    }

    /// I-7: t_new and t_rot in closed form equal the event times of the reduced flows
    /// (1e-6 relative, the bar), for task tolerances 1e-8 .. 1e-3 (relative to zhat).
    #[test]
    fn learning_times_match_the_ode(par in params_strategy(), eps_frac in 0.02..0.5f64, tol_exp in -8.0..-3.0f64) {
        let r = par.r();
        let eps = eps_frac * (r * (1.0 - r)).sqrt();
        let tol = 10f64.powf(tol_exp) * par.zhat;
        let target = par.s_eff_target(tol);
        let rho0 = eps * eps * par.gain_a();
        prop_assume!(rho0 < target);
        let opts = flow::precise_options_for(tol);
        let nf = flow::learn(&par.after_a(0.0), Task::B, Loss::Own, Pathway::NewFormation, &par, tol, &opts).unwrap();
        let t_new = closed::t_new(target, &par).unwrap();
        prop_assert!((nf.t - t_new).abs() <= 1e-6 * t_new, "t_new {t_new} vs ODE {}", nf.t);
        let rot = flow::learn(&par.after_a(eps), Task::B, Loss::Own, Pathway::Rotation, &par, tol, &opts).unwrap();
        let t_rot = closed::t_rot(target, rho0, &par).unwrap();
        prop_assert!((rot.t - t_rot).abs() <= 1e-6 * t_rot, "t_rot {t_rot} vs ODE {}", rot.t);
    }

    /// I-5/I-6: the general gradient equals the explicit task-B equations (rounding) and the
    /// five-point finite differences of the loss (relative 1e-7: truncation h^4 L^(5) with
    /// h = 1e-4 and |D| >= 0.1, rounding 1e-16 L / h).
    #[test]
    fn gradient_equals_explicit_equations_and_finite_differences(m in matrix_strategy(), par in params_strategy()) {
        let general = flow::gradient_flow(&m, Task::B, Loss::Own, &par).unwrap();
        let explicit = flow::task_b_own_explicit(&m, &par).unwrap();
        // Both are e times the same rational factor; e = zhat - z_BB is computed along two
        // rounding paths, which differ by ~1e-16 (zhat + |z_BB|) when e itself is small.
        let d = closed::det_d(&m);
        let (l, p, q, _) = closed::entries(&m);
        let factor = par.eta * par.u * q.abs().max((1.0 - l).abs()) * p.abs().max((1.0 - l).abs()) / (d * d);
        let z = closed::readouts(&m, par.u).unwrap().z_bb;
        let e_rounding = 1e-15 * (par.zhat + z.abs());
        prop_assert!((general - explicit).amax() <= 1e-13 * general.amax() + factor * e_rounding);
        for task in [Task::A, Task::B] {
            for loss in [Loss::Own, Loss::Aligned] {
                let g = flow::loss_gradient(&m, task, loss, &par).unwrap();
                let h = 1e-4;
                let mut fd = Matrix2::zeros();
                for i in 0..2 {
                    for j in 0..2 {
                        let at = |k: f64| {
                            let mut mk = m;
                            mk[(i, j)] += k * h;
                            flow::loss(&mk, task, loss, &par).unwrap()
                        };
                        fd[(i, j)] = (8.0 * (at(1.0) - at(-1.0)) - (at(2.0) - at(-2.0))) / (12.0 * h);
                    }
                }
                let scale = g.amax().max(fd.amax()).max(1e-12);
                prop_assert!((g - fd).amax() <= 1e-7 * scale, "{task:?} {loss:?}: {g} vs {fd}");
                // And the flow is -eta times the gradient.
                let flow_m = flow::gradient_flow(&m, task, loss, &par).unwrap();
                prop_assert!((flow_m + g * par.eta).amax() <= 1e-15 * scale * par.eta);
            }
        }
    }
}
