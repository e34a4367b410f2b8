//! Unit tests of `num::ode`.

use super::*;
use nalgebra::{Vector1, Vector2};

#[test]
fn harmonic_oscillator_full_period() {
    // y'' = -y: after 2 pi the state returns; energy is conserved to tolerance.
    let opts = OdeOptions::tol(1e-11, 1e-13);
    let tr = solve(
        |_, y: &Vector2<f64>| Vector2::new(y[1], -y[0]),
        0.0,
        Vector2::new(1.0, 0.0),
        2.0 * std::f64::consts::PI,
        &opts,
    )
    .unwrap();
    let (_, y) = tr.last();
    assert!((y - Vector2::new(1.0, 0.0)).norm() < 1e-9, "{y}");
    // dense output between steps
    for &t in &[0.3, 1.7, 4.0] {
        let yt = tr.eval(t);
        assert!((yt[0] - f64::cos(t)).abs() < 1e-8, "t={t}");
    }
}

#[test]
fn backward_integration() {
    let opts = OdeOptions::tol(1e-11, 1e-14);
    let tr = solve(|_, y| -y, 1.0, Vector1::new(1.0), 0.0, &opts).unwrap();
    assert!((tr.last().1[0] - 1f64.exp()).abs() < 1e-9);
    assert!((tr.eval(0.5)[0] - 0.5f64.exp()).abs() < 1e-8);
}

#[test]
fn event_locates_crossing() {
    // y' = 1: crosses 0.37 at t = 0.37.
    let (tr, te) = solve_until(
        |_, _y| Vector1::new(1.0),
        0.0,
        Vector1::new(0.0),
        10.0,
        |_, y| y[0] - 0.37,
        &OdeOptions::default(),
    )
    .unwrap();
    let te = te.unwrap();
    assert!((te - 0.37).abs() < 1e-13, "{te}");
    assert!((tr.last().1[0] - 0.37).abs() < 1e-12);
    // exponential decay crossing 0.5 at ln 2
    let (_, te) = solve_until(
        |_, y| -y,
        0.0,
        Vector1::new(1.0),
        10.0,
        |_, y| y[0] - 0.5,
        &OdeOptions::tol(1e-12, 1e-14),
    )
    .unwrap();
    assert!((te.unwrap() - 2f64.ln()).abs() < 1e-10);
}

/// The trajectory's [`StepCounts`]: accepted steps are its segments (an event's partial step
/// included), evaluations are the calls of `f`, and a first step far too large is rejected.
#[test]
fn counts_match_the_trajectory_and_the_calls() {
    let calls = std::cell::Cell::new(0usize);
    let f = |_: f64, y: &Vector2<f64>| {
        calls.set(calls.get() + 1);
        Vector2::new(y[1], -y[0])
    };
    let opts = OdeOptions {
        h0: 1.0,
        ..OdeOptions::tol(1e-10, 1e-12)
    };
    let tr = solve(f, 0.0, Vector2::new(1.0, 0.0), 5.0, &opts).unwrap();
    assert_eq!(tr.counts.accepted, tr.steps());
    assert_eq!(tr.counts.evaluations, calls.get());
    assert!(tr.counts.rejected >= 1, "{:?}", tr.counts);
    calls.set(0);
    let (tr, te) = solve_until(f, 0.0, Vector2::new(1.0, 0.0), 5.0, |_, y| y[0], &opts).unwrap();
    assert!((te.unwrap() - std::f64::consts::FRAC_PI_2).abs() < 1e-8);
    assert_eq!(tr.counts.accepted, tr.steps());
    assert_eq!(tr.counts.evaluations, calls.get());
}

#[test]
fn no_event_runs_to_end() {
    let (tr, te) = solve_until(
        |_, _y| Vector1::new(1.0),
        0.0,
        Vector1::new(0.0),
        1.0,
        |_, y| y[0] - 5.0,
        &OdeOptions::default(),
    )
    .unwrap();
    assert!(te.is_none());
    assert!((tr.last().0 - 1.0).abs() < 1e-15);
}

#[test]
fn blow_up_is_an_error_not_a_hang() {
    // y' = y^2, y(0) = 1 blows up at t = 1.
    let opts = OdeOptions {
        max_steps: 10_000,
        ..Default::default()
    };
    let r = solve(
        |_, y| y.component_mul(y),
        0.0,
        Vector1::new(1.0),
        2.0,
        &opts,
    );
    assert!(matches!(r, Err(Error::Ode { .. })), "{r:?}");
}

#[test]
fn nan_input_rejected() {
    let r = solve(
        |_, y| -y,
        0.0,
        Vector1::new(f64::NAN),
        1.0,
        &OdeOptions::default(),
    );
    assert!(r.is_err());
}
