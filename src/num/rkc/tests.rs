//! Unit tests of `num::rkc`.

use super::*;
use crate::num::rk::DynDopri;

/// Integrate to `t1` with RKC (stepper returned for its counters).
fn run<F>(mut f: F, y0: &[f64], t1: f64, opts: &OdeOptions) -> Result<(Vec<f64>, DynRkc)>
where
    F: FnMut(&[f64], &mut [f64]) -> Result<()>,
{
    let mut st = DynRkc::new(y0.len());
    let mut y = y0.to_vec();
    st.start(&mut f, 0.0, &y, opts)?;
    while st.t() < t1 {
        st.step(&mut f, &mut y, t1, opts)?;
    }
    Ok((y, st))
}

/// y' = -Q diag(lambda) Q^T y with Q a fixed rotation mixing all components (a symmetric
/// negative definite Jacobian, the gradient flow of a quadratic): exact y(t) from the
/// eigen-decomposition.
struct Quadratic {
    q: nalgebra::DMatrix<f64>,
    lambda: Vec<f64>,
    a: nalgebra::DMatrix<f64>,
}

impl Quadratic {
    fn new(lambda: Vec<f64>) -> Quadratic {
        let n = lambda.len();
        // a deterministic orthogonal Q: QR of a fixed well-conditioned matrix
        let m = nalgebra::DMatrix::from_fn(n, n, |i, j| {
            ((i * 7 + j * 3) as f64 * 0.37).sin() + if i == j { 2.0 } else { 0.0 }
        });
        let q = m.qr().q();
        let d = nalgebra::DMatrix::from_diagonal(&nalgebra::DVector::from_vec(
            lambda.iter().map(|l| -l).collect(),
        ));
        let a = &q * d * q.transpose();
        Quadratic { q, lambda, a }
    }

    fn rhs(&self) -> impl FnMut(&[f64], &mut [f64]) -> Result<()> + '_ {
        move |y, dy| {
            for (i, d) in dy.iter_mut().enumerate() {
                *d = (0..y.len()).map(|j| self.a[(i, j)] * y[j]).sum();
            }
            Ok(())
        }
    }

    fn exact(&self, y0: &[f64], t: f64) -> Vec<f64> {
        let c = self.q.transpose() * nalgebra::DVector::from_column_slice(y0);
        let e = nalgebra::DVector::from_iterator(
            c.len(),
            c.iter()
                .zip(&self.lambda)
                .map(|(ci, l)| ci * (-l * t).exp()),
        );
        (&self.q * e).as_slice().to_vec()
    }
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn stiff_quadratic_flow_to_tolerance_with_few_evaluations() {
    // eigenvalues 0.5 .. 1e4 (log-spaced, 12 of them): the slow modes set the answer at
    // t = 3, the fast ones die at once. Global error: the local errors (<= tol per step)
    // of ~40 steps, damped by the flow; asserted within 100 x rtol of the state's scale.
    let lambda: Vec<f64> = (0..12)
        .map(|k| 0.5 * 20000f64.powf(k as f64 / 11.0))
        .collect();
    let p = Quadratic::new(lambda);
    let y0: Vec<f64> = (0..12).map(|i| 1.0 - 0.1 * i as f64).collect();
    let exact = p.exact(&y0, 3.0);
    for rtol in [1e-4, 1e-6, 1e-8] {
        let opts = OdeOptions::tol(rtol, rtol * 1e-3);
        let (y, st) = run(p.rhs(), &y0, 3.0, &opts).unwrap();
        let e = max_err(&y, &exact);
        assert!(e < 100.0 * rtol, "rtol {rtol}: error {e}");
        // the spectral radius estimate: 1.2 x 1e4 when the power iteration converged
        let rho = st.spectral_radius();
        assert!((0.9e4..1.3e4).contains(&rho), "rho {rho}");
        // against the explicit 5(4) pair on the same problem and tolerance
        let mut dp = DynDopri::new(12);
        let mut yd = y0.clone();
        let mut f = p.rhs();
        dp.start(&mut f, 0.0, &yd, &opts).unwrap();
        while dp.t() < 3.0 {
            dp.step(&mut f, &mut yd, 3.0, &opts).unwrap();
        }
        assert!(max_err(&yd, &exact) < 100.0 * rtol);
        if rtol >= 1e-6 {
            // DP45 is stability-limited here (h ~ 3.3e-4: ~9,000 steps, 54,000
            // evaluations); RKC needs a small fraction
            assert!(
                st.counts.evaluations * 10 < dp.counts.evaluations,
                "rtol {rtol}: RKC {} evaluations ({} steps, {} stages at most), DP45 {}",
                st.counts.evaluations,
                st.counts.accepted,
                st.most_stages,
                dp.counts.evaluations
            );
        }
    }
}

/// Fixed steps (h0 = h_max = h, tolerances so loose that nothing is rejected): slope of
/// log(global error) against log(h).
fn fixed_step_slope<F>(f: F, y0: &[f64], t1: f64, exact: &[f64], ns: &[usize]) -> f64
where
    F: FnMut(&[f64], &mut [f64]) -> Result<()> + Clone,
{
    let mut pts = vec![];
    for &n in ns {
        let h = t1 / n as f64;
        let opts = OdeOptions {
            h0: h,
            h_max: h,
            ..OdeOptions::tol(1e30, 1e30)
        };
        let (y, st) = run(f.clone(), y0, t1, &opts).unwrap();
        assert_eq!(st.counts.rejected, 0);
        assert!(
            (n..=n + 1).contains(&st.counts.accepted),
            "{} steps",
            st.counts.accepted
        );
        pts.push((h.ln(), max_err(&y, exact).ln()));
    }
    let k = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / k,
        pts.iter().map(|p| p.1).sum::<f64>() / k,
    );
    pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
        / pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>()
}

#[test]
fn order_of_convergence_is_two() {
    // y' = -y^2 (exact 1 / (1 + t)) beside y' = -y (exact e^-t), s = 2 throughout; errors
    // 1e-4..1e-7, far above rounding. Slope within 0.25 of 2. (With s varying with h, as on
    // a stiff problem, the error constant changes with s and the fitted slope means
    // nothing; the local order 2 for every s is checked on the stability polynomial below.)
    let f = |y: &[f64], dy: &mut [f64]| {
        dy[0] = -y[0] * y[0];
        dy[1] = -y[1];
        Ok(())
    };
    let t1 = 4.0;
    let q = fixed_step_slope(f, &[1.0, 1.0], t1, &[0.2, (-t1).exp()], &[40, 80, 160, 320]);
    assert!((q - 2.0).abs() < 0.25, "slope {q}");
}

#[test]
fn stage_count_grows_as_the_root_of_the_stiffness() {
    // y' = diag(-1, -lambda) y on [0, 4] at rtol 1e-6: the explicit pair's work grows as
    // lambda, RKC's stage count as sqrt(lambda) (s ~ sqrt(1.54 h rho)), its evaluations
    // roughly so (plus the spectral-radius estimates)
    let mut most = vec![];
    let mut evals = vec![];
    for lambda in [1e2, 1e3, 1e4, 1e5] {
        let f = move |y: &[f64], dy: &mut [f64]| {
            dy[0] = -y[0];
            dy[1] = -lambda * y[1];
            Ok(())
        };
        let opts = OdeOptions::tol(1e-6, 1e-9);
        let (y, st) = run(f, &[1.0, 1.0], 4.0, &opts).unwrap();
        assert!((y[0] - (-4.0f64).exp()).abs() < 1e-4, "{y:?}");
        assert!(y[1].abs() < 1e-6, "{y:?}");
        assert!(st.stages >= 2 && st.most_stages <= st.max_stages);
        most.push(st.most_stages as f64);
        evals.push(st.counts.evaluations as f64);
    }
    for k in 1..most.len() {
        // 10x the stiffness: sqrt(10) = 3.2x the stages (1.8..5 allowed: the largest step
        // is also set by accuracy on the slow mode)
        let r = most[k] / most[k - 1];
        assert!((1.8..5.0).contains(&r), "stages {most:?}");
    }
    // 1000x the stiffness costs far less than 1000x the work (sqrt: 32x)
    assert!(evals[3] < 60.0 * evals[0], "evaluations {evals:?}");
}

#[test]
fn stage_formula_covers_the_stability_interval() {
    // beta(s) ~ 0.653 (s^2 - 1) for eps = 2/13 (Verwer): the s chosen for h rho must reach it
    for hr in [0.1, 1.0, 10.0, 100.0, 1e4, 1e6] {
        let s = stages_for(hr, 1.0) as f64;
        assert!(0.653 * (s * s - 1.0) >= hr, "h rho {hr}: s {s}");
    }
    assert_eq!(stages_for(0.0, 0.0), 2);
    // step_for inverts it
    for s in [2usize, 5, 50] {
        assert!(stages_for(step_for(s, 3.0) * 0.999, 3.0) <= s);
    }
}

#[test]
fn stability_polynomial_is_damped_on_the_interval() {
    // one step of y' = -lambda y from 1 with h lambda in the stability interval of s stages
    // returns |y_1| <= 1 (the damped Chebyshev polynomial), and matches e^(-h lambda) to
    // second order for small h lambda
    let mut st = DynRkc::new(1);
    for s in [2usize, 3, 7, 20] {
        let beta = 0.653 * ((s * s) as f64 - 1.0);
        for frac in [0.01, 0.3, 0.7, 0.99] {
            let z = frac * beta;
            let mut f = |y: &[f64], dy: &mut [f64]| {
                dy[0] = -z * y[0];
                Ok(())
            };
            f(&[1.0], &mut st.f0).unwrap();
            st.attempt(&mut f, &[1.0], 1.0, s).unwrap();
            let y1 = st.yjm1[0];
            assert!(y1.abs() <= 1.0, "s {s}, z {z}: {y1}");
            if z < 0.1 {
                assert!(
                    (y1 - (-z).exp()).abs() < 0.2 * z.powi(3),
                    "s {s}, z {z}: {y1}"
                );
            }
        }
    }
}

#[test]
fn dense_output_between_steps() {
    let f = |y: &[f64], dy: &mut [f64]| {
        dy[0] = -y[0];
        dy[1] = -3.0 * y[1];
        Ok(())
    };
    let opts = OdeOptions::tol(1e-9, 1e-12);
    let mut st = DynRkc::new(2);
    let mut out = [0.0; 2];
    assert!(st.interpolate(0.5, &mut out).is_err());
    let mut f = f;
    let mut y = [1.0, 1.0];
    st.start(&mut f, 0.0, &y, &opts).unwrap();
    for _ in 0..8 {
        let t1 = st.step(&mut f, &mut y, f64::INFINITY, &opts).unwrap();
        let t0 = t1 - st.last_step();
        for theta in [0.0, 0.3, 0.7, 1.0] {
            st.interpolate(theta, &mut out).unwrap();
            let t = t0 + theta * st.last_step();
            // the Hermite cubic (third order) between second-order points: within 1e-7
            // (global error at rtol 1e-9 over these few steps is ~1e-8)
            assert!(
                (out[0] - (-t).exp()).abs() < 1e-7 && (out[1] - (-3.0 * t).exp()).abs() < 1e-7,
                "t = {t}: {out:?}"
            );
        }
        st.interpolate(1.0, &mut out).unwrap();
        assert_eq!(out, y);
        assert_eq!(st.derivative()[0], -y[0]);
    }
}

#[test]
fn failures_are_errors_not_hangs() {
    // the step cap, an error of f, bad tolerances and a non-finite state: as for DynDopri
    crate::num::rk::tests::assert_shared_failures(|f, y0, t1, opts| {
        run(f, y0, t1, opts).map(|r| r.0)
    });
    // a non-finite region ends at its edge: the steps shrink to it, where the spectral-radius
    // estimate's difference quotients (or the steps themselves) reach the non-finite region
    crate::num::rk::tests::assert_non_finite_region_fails(
        |f, y0, t1, opts| run(f, y0, t1, opts).map(|r| r.0),
        &["underflow", "spectral-radius"],
    );
    // the stepper's own checks: a step before start, a state of the wrong length
    let rhs = |_: &[f64], dy: &mut [f64]| {
        dy[0] = 0.0;
        Ok(())
    };
    let mut st = DynRkc::new(2);
    assert!(st
        .step(&mut { rhs }, &mut [0.0, 0.0], 1.0, &OdeOptions::default())
        .is_err());
    assert!(st
        .start(&mut { rhs }, 0.0, &[0.0], &OdeOptions::default())
        .is_err());
}
