//! Unit tests of `num::rk`.

use super::*;
use nalgebra::DMatrix;

fn fixed(h: f64) -> OdeOptions {
    // a fixed step: tolerances so loose that every step is accepted, no growth allowed
    OdeOptions {
        rtol: 1e30,
        atol: 1e30,
        h0: h,
        h_max: h,
        max_steps: 1_000_000,
        ..OdeOptions::default()
    }
}

#[test]
fn exponential_decay_to_tolerance() {
    for &(rtol, bound) in &[(1e-6, 1e-5), (1e-9, 1e-8), (1e-12, 1e-11)] {
        let opts = OdeOptions::tol(rtol, rtol * 1e-3);
        let s = solve_dyn(
            |y, dy| {
                dy[0] = -2.0 * y[0];
                Ok(())
            },
            &[1.0],
            3.0,
            &opts,
        )
        .unwrap();
        let exact = (-6.0f64).exp();
        // global error ~ (number of steps) x rtol x |y|; the bound allows 10x that
        assert!(
            ((s.y[0] - exact) / exact).abs() < bound * 10.0,
            "rtol {rtol}: {} vs {exact}",
            s.y[0]
        );
        assert_eq!(s.t, 3.0);
    }
}

#[test]
fn harmonic_oscillator_and_the_static_solver_agree() {
    let opts = OdeOptions::tol(1e-11, 1e-13);
    let s = solve_dyn(
        |y, dy| {
            dy[0] = y[1];
            dy[1] = -y[0];
            Ok(())
        },
        &[1.0, 0.0],
        2.0 * std::f64::consts::PI,
        &opts,
    )
    .unwrap();
    assert!(
        (s.y[0] - 1.0).abs() < 1e-9 && s.y[1].abs() < 1e-9,
        "{:?}",
        s.y
    );
    // same tableau and controller as the static-size solver: same steps, same numbers
    let tr = crate::num::ode::solve(
        |_, y: &nalgebra::Vector2<f64>| nalgebra::Vector2::new(y[1], -y[0]),
        0.0,
        nalgebra::Vector2::new(1.0, 0.0),
        2.0 * std::f64::consts::PI,
        // the static solver's automatic choice takes DOP853 this tight; compare the 5(4) pair
        &OdeOptions {
            method: crate::num::ode::Method::Dp45,
            ..opts
        },
    )
    .unwrap();
    assert_eq!(tr.steps(), s.counts.accepted);
    assert_eq!(tr.counts.rejected, s.counts.rejected);
    let (_, y) = tr.last();
    assert!((y[0] - s.y[0]).abs() < 1e-14 && (y[1] - s.y[1]).abs() < 1e-14);
}

#[test]
fn order_of_convergence_is_five() {
    // fixed steps h, h/2, h/4 on the oscillator over [0, 2]: the error ratio -> 2^5 = 32
    let rhs = |y: &[f64], dy: &mut [f64]| {
        dy[0] = y[1];
        dy[1] = -y[0];
        Ok(())
    };
    let err = |h: f64| {
        let s = solve_dyn(rhs, &[1.0, 0.0], 2.0, &fixed(h)).unwrap();
        ((s.y[0] - 2f64.cos()).powi(2) + (s.y[1] + 2f64.sin()).powi(2)).sqrt()
    };
    let (e1, e2, e3) = (err(0.2), err(0.1), err(0.05));
    let (p1, p2) = ((e1 / e2).log2(), (e2 / e3).log2());
    // observed order within 0.3 of 5 (the leading term dominates at these h; the errors
    // are 1e-7..1e-10, far above rounding)
    assert!(
        (p1 - 5.0).abs() < 0.3 && (p2 - 5.0).abs() < 0.3,
        "{p1} {p2}"
    );
}

#[test]
fn stiff_linear_system_is_accurate_and_stability_limited() {
    // y' = A y with eigenvalues -1 and -1000 (a rotated diagonal): the fast mode dies
    // at once, the slow one sets the answer; the explicit pair takes steps ~ 3.3/1000
    let q = std::f64::consts::FRAC_1_SQRT_2;
    let a = DMatrix::from_row_slice(2, 2, &[-500.5, 499.5, 499.5, -500.5]);
    let y0 = [1.0, 0.0];
    let opts = OdeOptions::tol(1e-8, 1e-12);
    let s = solve_dyn(
        |y, dy| {
            dy[0] = a[(0, 0)] * y[0] + a[(0, 1)] * y[1];
            dy[1] = a[(1, 0)] * y[0] + a[(1, 1)] * y[1];
            Ok(())
        },
        &y0,
        2.0,
        &opts,
    )
    .unwrap();
    // exact: y = c1 e^-t v1 + c2 e^-1000t v2, v1 = (1, 1)/sqrt2, v2 = (1, -1)/sqrt2
    let c1 = q * (y0[0] + y0[1]);
    let slow = c1 * (-2.0f64).exp() * q;
    assert!(
        (s.y[0] - slow).abs() < 1e-7 && (s.y[1] - slow).abs() < 1e-7,
        "{:?}",
        s.y
    );
    // stability-limited: about 2 / (3.3 / 1000) ~ 600 steps, far more than accuracy needs
    assert!(
        (400..2000).contains(&s.counts.accepted),
        "{} accepted, {} rejected",
        s.counts.accepted,
        s.counts.rejected
    );
}

#[test]
fn no_allocation_needed_after_new_and_state_in_place() {
    // stepping by hand: times increase, the FSAL derivative is f at the accepted state
    let mut f = |y: &[f64], dy: &mut [f64]| {
        dy[0] = -y[0];
        Ok(())
    };
    let opts = OdeOptions::tol(1e-8, 1e-10);
    let mut st = DynDopri::new(1);
    let mut y = [1.0];
    st.start(&mut f, 0.0, &y, &opts).unwrap();
    let mut t_prev = 0.0;
    for _ in 0..5 {
        let t = st.step(&mut f, &mut y, f64::INFINITY, &opts).unwrap();
        assert!(t > t_prev);
        t_prev = t;
        assert_eq!(st.derivative()[0], -y[0]);
        assert!((y[0] - (-t).exp()).abs() < 1e-8);
    }
}

#[test]
fn dense_output_between_steps() {
    let mut f = |y: &[f64], dy: &mut [f64]| {
        dy[0] = y[1];
        dy[1] = -y[0];
        Ok(())
    };
    let opts = OdeOptions::tol(1e-10, 1e-12);
    let mut st = DynDopri::new(2);
    let mut y = [1.0, 0.0];
    let mut out = [0.0; 2];
    assert!(st.interpolate(0.5, &mut out).is_err());
    st.start(&mut f, 0.0, &y, &opts).unwrap();
    for _ in 0..6 {
        let t1 = st.step(&mut f, &mut y, f64::INFINITY, &opts).unwrap();
        let t0 = t1 - st.last_step();
        for theta in [0.0, 0.3, 0.7, 1.0] {
            st.interpolate(theta, &mut out).unwrap();
            let t = t0 + theta * st.last_step();
            // the continuous extension is 4th order: within 10x the step tolerance
            assert!(
                (out[0] - t.cos()).abs() < 1e-8 && (out[1] + t.sin()).abs() < 1e-8,
                "t = {t}: {out:?}"
            );
        }
        st.interpolate(1.0, &mut out).unwrap();
        assert!((out[0] - y[0]).abs() < 1e-15 && (out[1] - y[1]).abs() < 1e-15);
    }
}

#[test]
fn non_finite_region_ends_in_underflow() {
    assert_non_finite_region_fails(|f, y0, t1, opts| solve_dyn(f, y0, t1, opts), &["underflow"]);
}

/// y' = 1 but f is NaN beyond y = 0.5: the steps shrink toward the edge until an
/// [`Error::Ode`] at t = 0.5 whose reason contains one of `reasons`.
pub(in crate::num) fn assert_non_finite_region_fails<T: std::fmt::Debug>(
    solve: impl Fn(Rhs<'_>, &[f64], f64, &OdeOptions) -> Result<T>,
    reasons: &[&str],
) {
    let mut f = |y: &[f64], dy: &mut [f64]| {
        dy[0] = if y[0] > 0.5 { f64::NAN } else { 1.0 };
        Ok(())
    };
    match solve(&mut f, &[0.0], 1.0, &OdeOptions::tol(1e-8, 1e-10)) {
        Err(Error::Ode { reason, t }) => {
            assert!(reasons.iter().any(|r| reason.contains(r)), "{reason}");
            assert!((t - 0.5).abs() < 1e-6, "{t}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn failures_are_errors_not_hangs() {
    // blow-up y' = y^2 from 1 at t = 1: underflow or step cap, never a hang
    let opts = OdeOptions {
        max_steps: 10_000,
        ..OdeOptions::tol(1e-8, 1e-10)
    };
    let r = solve_dyn(
        |y, dy| {
            dy[0] = y[0] * y[0];
            Ok(())
        },
        &[1.0],
        2.0,
        &opts,
    );
    assert!(matches!(r, Err(Error::Ode { .. })), "{r:?}");
    assert_shared_failures(|f, y0, t1, opts| solve_dyn(f, y0, t1, opts));
    let rhs = |_: &[f64], dy: &mut [f64]| {
        dy[0] = 0.0;
        Ok(())
    };
    assert!(solve_dyn(rhs, &[0.0], 1.0, &OdeOptions::tol(f64::NAN, 0.0)).is_err());
}

/// A right-hand side for [`assert_shared_failures`]'s solve functions.
pub(in crate::num) type Rhs<'a> = &'a mut dyn FnMut(&[f64], &mut [f64]) -> Result<()>;

/// The failures both dynamic-size steppers meet alike, through a `solve` that integrates
/// `y' = f(y)` from `y0` at 0 to `t1`: the cap on attempted steps, an error of the right-hand
/// side passed on, zero tolerances and a non-finite initial state refused.
pub(in crate::num) fn assert_shared_failures<T: std::fmt::Debug>(
    solve: impl Fn(Rhs<'_>, &[f64], f64, &OdeOptions) -> Result<T>,
) {
    // step cap
    let opts = OdeOptions {
        max_steps: 3,
        ..OdeOptions::tol(1e-10, 1e-12)
    };
    let mut decay = |y: &[f64], dy: &mut [f64]| {
        dy[0] = -y[0];
        Ok(())
    };
    match solve(&mut decay, &[1.0], 100.0, &opts) {
        Err(Error::Ode { reason, .. }) => assert!(reason.contains("step cap 3"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // an error of the right-hand side is passed on
    let mut failing = |y: &[f64], _dy: &mut [f64]| {
        if y[0] < 0.5 {
            Err(Error::Requirement("rhs failed".into()))
        } else {
            Ok(())
        }
    };
    let r = solve(&mut failing, &[0.0], 1.0, &OdeOptions::default());
    assert!(matches!(r, Err(Error::Requirement(_))));
    // bad tolerances and non-finite input
    let mut rhs = |_: &[f64], dy: &mut [f64]| {
        dy[0] = 0.0;
        Ok(())
    };
    assert!(solve(&mut rhs, &[0.0], 1.0, &OdeOptions::tol(0.0, 0.0)).is_err());
    assert!(solve(&mut rhs, &[f64::NAN], 1.0, &OdeOptions::default()).is_err());
}

/// Regression (session 4): the steppers share `ode::clip_step`, which measures the remaining
/// span as |t_end - t|; an end behind the current time must be refused, not reached by a
/// forward step that then sets t = t_end (time running backwards). Both steppers.
#[test]
fn an_end_behind_the_current_time_is_refused() {
    let mut f = |y: &[f64], dy: &mut [f64]| {
        dy[0] = -y[0];
        Ok(())
    };
    let opts = OdeOptions::tol(1e-8, 1e-10);
    let mut y = [1.0];
    let mut st = DynDopri::new(1);
    st.start(&mut f, 1.0, &y, &opts).unwrap();
    for t_end in [0.5, f64::NAN] {
        match st.step(&mut f, &mut y, t_end, &opts) {
            Err(Error::Ode { reason, .. }) => assert!(reason.contains("behind"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(y[0], 1.0);
    let mut rkc = crate::num::rkc::DynRkc::new(1);
    rkc.start(&mut f, 1.0, &y, &opts).unwrap();
    assert!(matches!(
        rkc.step(&mut f, &mut y, 0.5, &opts),
        Err(Error::Ode { .. })
    ));
    // the ordinary forward step still lands exactly on its end
    assert_eq!(
        st.step(&mut f, &mut y, 1.0 + 1e-3, &opts).unwrap(),
        1.0 + 1e-3
    );
}
