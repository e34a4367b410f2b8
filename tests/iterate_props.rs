//! Property tests of the iteration driver (`num::iterate`) and of the fallible ODE right-hand
//! side (`num::ode::try_solve`, `try_solve_until`).

use modeflow::num::iterate::{iterate, Gd, Observer, Problem, Reason, Stop};
use modeflow::num::ode::{try_solve, try_solve_until, Method, OdeOptions};
use modeflow::{Error, Result};
use nalgebra::{DVector, Vector1};
use proptest::prelude::*;

/// L(x) = sum_i c_i (x_i - m_i)^2 / 2.
struct Quadratic {
    c: DVector<f64>,
    m: DVector<f64>,
}

impl Problem for Quadratic {
    type Params = DVector<f64>;
    type Grad = DVector<f64>;
    fn loss_grad(&mut self, _: usize, x: &DVector<f64>, g: &mut DVector<f64>) -> Result<f64> {
        let d = x - &self.m;
        g.copy_from(&self.c.component_mul(&d));
        Ok(0.5 * self.c.dot(&d.component_mul(&d)))
    }
    fn loss(&mut self, x: &DVector<f64>) -> Result<Option<f64>> {
        let d = x - &self.m;
        Ok(Some(0.5 * self.c.dot(&d.component_mul(&d))))
    }
}

/// Records the loss before every step and counts the calls.
#[derive(Default)]
struct Losses {
    before: Vec<f64>,
    after_calls: usize,
}

impl Observer<Quadratic> for Losses {
    fn before(&mut self, s: usize, _: &DVector<f64>, _: &DVector<f64>, l: f64) -> Result<()> {
        assert_eq!(s, self.before.len());
        self.before.push(l);
        Ok(())
    }
    fn after(&mut self, s: usize, _: &DVector<f64>, _: &DVector<f64>, _: f64) -> Result<()> {
        self.after_calls += 1;
        assert_eq!(s, self.after_calls);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// GD with eta c_i < 1 is the map x_i - m_i -> (1 - eta c_i)(x_i - m_i): the driver
    /// reproduces the closed form to rounding (a few ulps per step, 200 steps: 1e-12
    /// relative), the loss falls at every step, and the observers see every step once.
    #[test]
    fn gd_matches_the_closed_form(
        c in prop::collection::vec(0.1f64..2.0, 1..6),
        frac in 0.05f64..0.95,
        steps in 1usize..200,
        seed in 0u64..1000,
    ) {
        let n = c.len();
        let cmax = c.iter().cloned().fold(0.0, f64::max);
        let eta = frac / cmax;
        let m = DVector::from_fn(n, |i, _| ((seed + i as u64) % 7) as f64 - 3.0);
        let x0 = DVector::from_fn(n, |i, _| ((seed * 3 + i as u64) % 5) as f64 + 0.5);
        let mut p = Quadratic { c: DVector::from_vec(c.clone()), m: m.clone() };
        let mut x = x0.clone();
        let mut g = DVector::zeros(n);
        let mut obs = Losses::default();
        let out = iterate(
            &mut p,
            &mut Gd { eta, lambda: 0.0 },
            &mut x,
            &mut g,
            &Stop::steps(steps, "GD"),
            &mut obs,
        ).unwrap();
        prop_assert_eq!(out.reason, Reason::MaxSteps);
        prop_assert_eq!(out.steps, steps);
        prop_assert_eq!(obs.before.len(), steps);
        prop_assert_eq!(obs.after_calls, steps);
        for i in 0..n {
            let want = m[i] + (1.0 - eta * c[i]).powi(steps as i32) * (x0[i] - m[i]);
            let scale = x0[i].abs().max(m[i].abs()).max(1.0);
            prop_assert!((x[i] - want).abs() <= 1e-12 * scale, "{} vs {}", x[i], want);
        }
        for w in obs.before.windows(2) {
            prop_assert!(w[1] <= w[0]);
        }
        prop_assert!(out.loss.unwrap() <= obs.before[steps - 1]);
    }

    /// Beyond eta c = 2 the iteration grows; the driver reports it as a typed divergence at
    /// the first loss above the threshold, never as a result.
    #[test]
    fn unstable_steps_diverge_with_a_typed_error(c in 0.5f64..2.0, over in 2.2f64..4.0) {
        let mut p = Quadratic { c: DVector::from_element(1, c), m: DVector::zeros(1) };
        let mut x = DVector::from_element(1, 1.0);
        let mut g = DVector::zeros(1);
        let eta = over / c;
        let err = iterate(
            &mut p,
            &mut Gd { eta, lambda: 0.0 },
            &mut x,
            &mut g,
            &Stop::steps(10_000, "GD"),
            &mut (),
        ).unwrap_err();
        // L_k = c (over - 1)^(2k) / 2 first exceeds 1e12 at this k
        let k = ((2e12 / c).ln() / (2.0 * (over - 1.0).ln())).floor() as usize + 1;
        match err {
            Error::Diverged { step, loss, .. } => {
                prop_assert!(loss > 1e12);
                prop_assert!(step.abs_diff(k) <= 1, "step {} vs {}", step, k);
            }
            e => prop_assert!(false, "expected Diverged, got {}", e),
        }
    }

    /// A right-hand side that fails past t_fail stops the integration with its own error, for
    /// both pairs; before t_fail nothing changes (the same solution as the infallible form).
    #[test]
    fn a_failing_right_hand_side_stops_the_integration(t_fail in 0.1f64..0.9) {
        for method in [Method::Dp45, Method::Dop853] {
            let opts = OdeOptions { method, ..OdeOptions::tol(1e-9, 1e-12) };
            let rhs = |t: f64, y: &Vector1<f64>| -> Result<Vector1<f64>> {
                if t > t_fail {
                    Err(Error::Numerical(format!("rhs fails at t = {t}")))
                } else {
                    Ok(-y)
                }
            };
            let err = try_solve(rhs, 0.0, Vector1::new(1.0), 1.0, &opts).unwrap_err();
            prop_assert!(matches!(err, Error::Numerical(ref m) if m.starts_with("rhs fails")));
            let ok = try_solve(rhs, 0.0, Vector1::new(1.0), t_fail, &opts).unwrap();
            prop_assert!((ok.last().1[0] - (-t_fail).exp()).abs() < 1e-8);
            // the event function may fail too
            let ev = |t: f64, _: &Vector1<f64>| -> Result<f64> {
                if t > t_fail { Err(Error::Numerical("event fails".into())) } else { Ok(1.0) }
            };
            let err = try_solve_until(|_, y| Ok(-y), 0.0, Vector1::new(1.0), 1.0, ev, &opts)
                .unwrap_err();
            prop_assert!(matches!(err, Error::Numerical(ref m) if m == "event fails"));
        }
    }
}
