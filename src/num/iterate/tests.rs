//! Unit tests of `num::iterate`.

use super::*;
use rand::SeedableRng;

/// L(x) = sum_i c_i x_i^2 / 2, gradient c_i x_i.
struct Quadratic {
    c: DVector<f64>,
    evaluations: usize,
}

impl Problem for Quadratic {
    type Params = DVector<f64>;
    type Grad = DVector<f64>;
    fn loss_grad(&mut self, _: usize, x: &DVector<f64>, g: &mut DVector<f64>) -> Result<f64> {
        self.evaluations += 1;
        g.copy_from(&self.c.component_mul(x));
        Ok(0.5 * self.c.dot(&x.component_mul(x)))
    }
    fn loss(&mut self, x: &DVector<f64>) -> Result<Option<f64>> {
        Ok(Some(0.5 * self.c.dot(&x.component_mul(x))))
    }
}

fn quadratic(c: &[f64]) -> Quadratic {
    Quadratic {
        c: DVector::from_column_slice(c),
        evaluations: 0,
    }
}

#[test]
fn gd_on_a_quadratic_matches_the_closed_form() {
    let mut p = quadratic(&[1.0, 0.5]);
    let mut x = DVector::from_column_slice(&[1.0, -2.0]);
    let mut g = DVector::zeros(2);
    let (eta, n) = (0.1, 50);
    let out = iterate(
        &mut p,
        &mut Gd { eta, lambda: 0.0 },
        &mut x,
        &mut g,
        &Stop::steps(n, "test GD"),
        &mut (),
    )
    .unwrap();
    assert_eq!(out.reason, Reason::MaxSteps);
    assert_eq!(out.steps, n);
    // x_k = (1 - eta c)^k x_0; rounding only (50 multiplications)
    let want = [0.9f64.powi(50), -2.0 * 0.95f64.powi(50)];
    for i in 0..2 {
        assert!((x[i] - want[i]).abs() < 1e-14, "{} vs {}", x[i], want[i]);
    }
    let l = 0.5 * (want[0] * want[0] + 0.5 * want[1] * want[1]);
    assert!((out.loss.unwrap() - l).abs() < 1e-15);
    assert_eq!(p.evaluations, n);
}

#[test]
fn loss_and_gradient_tolerances_stop_at_the_first_step_below() {
    for (stop, reason) in [
        (Stop::steps(1000, "t").loss_tol(1e-6), Reason::LossTol),
        (Stop::steps(1000, "t").grad_tol(1e-6), Reason::GradTol),
    ] {
        let mut p = quadratic(&[1.0]);
        let mut x = DVector::from_element(1, 1.0);
        let mut g = DVector::zeros(1);
        let gd = &mut Gd {
            eta: 0.5,
            lambda: 0.0,
        };
        let out = iterate(&mut p, gd, &mut x, &mut g, &stop, &mut ()).unwrap();
        assert_eq!(out.reason, reason);
        // x_k = 2^-k: L = 2^-2k / 2 <= 1e-6 first at k = 10; |g| = 2^-k <= 1e-6 at k = 20
        let k = if reason == Reason::LossTol { 10 } else { 20 };
        assert_eq!(out.steps, k);
        assert_eq!(x[0], 0.5f64.powi(k as i32));
        assert_eq!(out.last_step_loss, 0.5 * 0.25f64.powi(k as i32 - 1));
    }
}

#[test]
fn a_growing_loss_is_a_typed_divergence() {
    // eta c = 3: x_k = (-2)^k, L = 4^k / 2 passes 1e12 at k = 21
    let mut p = quadratic(&[1.0]);
    let mut x = DVector::from_element(1, 1.0);
    let mut g = DVector::zeros(1);
    let gd = &mut Gd {
        eta: 3.0,
        lambda: 0.0,
    };
    let err = iterate(
        &mut p,
        gd,
        &mut x,
        &mut g,
        &Stop::steps(100, "test GD"),
        &mut (),
    )
    .unwrap_err();
    match err {
        Error::Diverged {
            what, step, loss, ..
        } => {
            assert_eq!(what, "test GD");
            assert_eq!(step, 21);
            assert_eq!(loss, 0.5 * 4f64.powi(21));
        }
        e => panic!("expected Diverged, got {e}"),
    }
    // a non-finite loss diverges at once
    let mut x = DVector::from_element(1, f64::NAN);
    let err = iterate(&mut p, gd, &mut x, &mut g, &Stop::steps(5, "t"), &mut ()).unwrap_err();
    assert!(matches!(err, Error::Diverged { step: 0, .. }));
}

#[derive(Default)]
struct Log(Vec<(char, usize, f64)>);

impl Observer<Quadratic> for Log {
    fn before(&mut self, s: usize, x: &DVector<f64>, _: &DVector<f64>, l: f64) -> Result<()> {
        self.0.push(('b', s, x[0] + l));
        Ok(())
    }
    fn after(&mut self, s: usize, x: &DVector<f64>, _: &DVector<f64>, l: f64) -> Result<()> {
        self.0.push(('a', s, x[0] + l));
        if s == 3 {
            return Err(Error::Numerical("observer stops".into()));
        }
        Ok(())
    }
}

#[test]
fn observers_see_every_step_in_order_and_can_stop_it() {
    let mut p = quadratic(&[1.0]);
    let mut x = DVector::from_element(1, 1.0);
    let mut g = DVector::zeros(1);
    let gd = &mut Gd {
        eta: 0.5,
        lambda: 0.0,
    };
    let mut log = (
        Log::default(),
        After(|_: usize, _: &DVector<f64>, _: f64| {}),
    );
    let err = iterate(&mut p, gd, &mut x, &mut g, &Stop::steps(10, "t"), &mut log);
    assert!(matches!(err, Err(Error::Numerical(_))));
    let l = |k: i32| 0.5 * 0.25f64.powi(k);
    let x = |k: i32| 0.5f64.powi(k);
    let want = vec![
        ('b', 0, x(0) + l(0)),
        ('a', 1, x(1) + l(0)),
        ('b', 1, x(1) + l(1)),
        ('a', 2, x(2) + l(1)),
        ('b', 2, x(2) + l(2)),
        ('a', 3, x(3) + l(2)),
    ];
    assert_eq!(log.0 .0, want);
}

#[test]
fn adam_moves_each_coordinate_by_about_eta_at_first() {
    // the first Adam step is -eta g / (|g| + eps) per coordinate
    let mut p = quadratic(&[1.0, 100.0]);
    let mut x = DVector::from_column_slice(&[1.0, 1.0]);
    let mut g = DVector::zeros(2);
    let mut adam = Adam::new(2, 0.01);
    iterate(
        &mut p,
        &mut adam,
        &mut x,
        &mut g,
        &Stop::steps(1, "Adam"),
        &mut (),
    )
    .unwrap();
    assert!((x[0] - (1.0 - 0.01 / (1.0 + 1e-8))).abs() < 1e-15);
    assert!((x[1] - (1.0 - 0.01 * 100.0 / (100.0 + 1e-8))).abs() < 1e-15);
    // and converges on the quadratic
    let out = iterate(
        &mut p,
        &mut adam,
        &mut x,
        &mut g,
        &Stop::steps(20_000, "Adam").loss_tol(1e-12),
        &mut (),
    )
    .unwrap();
    assert_eq!(out.reason, Reason::LossTol);
}

fn diverged_at(err: Error) -> (usize, f64, String) {
    match err {
        Error::Diverged {
            step, loss, hint, ..
        } => (step, loss, hint),
        e => panic!("expected Diverged, got {e}"),
    }
}

#[test]
fn the_relative_divergence_bound_is_factor_times_the_first_loss() {
    // eta c = 3 from x = 1: L_k = 4^k / 2; the bound min(above, factor max(L_0, floor))
    // is first passed at k = 4 (100 x 0.5: 128 > 50), k = 6 (100 x 10: 2048 > 1000) and
    // k = 3 when the absolute bound 10 is the smaller (32 > 10)
    for (floor, above, k) in [
        (0.0, f64::INFINITY, 4),
        (10.0, f64::INFINITY, 6),
        (10.0, 10.0, 3),
    ] {
        let mut p = quadratic(&[1.0]);
        let mut x = DVector::from_element(1, 1.0);
        let mut g = DVector::zeros(1);
        let gd = &mut Gd {
            eta: 3.0,
            lambda: 0.0,
        };
        let stop = Stop::steps(100, "t")
            .diverge_above(above)
            .relative_divergence(100.0, floor)
            .hint("smaller eta");
        let err = iterate(&mut p, gd, &mut x, &mut g, &stop, &mut ()).unwrap_err();
        let (step, loss, hint) = diverged_at(err);
        assert_eq!((step, loss), (k, 0.5 * 4f64.powi(k as i32)));
        let limit = stop.limit(0.5);
        assert_eq!(limit, above.min(100.0 * floor.max(0.5)));
        assert_eq!(
            hint,
            format!("the loss left the bound {limit:.3e}; smaller eta")
        );
    }
    // the hint of an absolute bound is the caller's, and `at` places a step in a relative one
    let stop = Stop::steps(1, "t").hint("h");
    assert!(matches!(stop.divergence(0, 1.0, 2.0, " at tau = 1"),
        Error::Diverged { hint, .. } if hint == "h"));
    let stop = stop.relative_divergence(2.0, 0.0);
    assert!(matches!(stop.divergence(0, 1.0, 2.0, " at tau = 1"),
        Error::Diverged { hint, .. } if hint == "the loss left the bound 2.000e0 at tau = 1; h"));
}

/// The quadratic with a NaN in the gradient (finite loss) from step `bad` on.
struct NanGradient {
    q: Quadratic,
    bad: usize,
    cap_evaluates: bool,
}

impl Problem for NanGradient {
    type Params = DVector<f64>;
    type Grad = DVector<f64>;
    fn loss_grad(&mut self, s: usize, x: &DVector<f64>, g: &mut DVector<f64>) -> Result<f64> {
        let l = self.q.loss_grad(s, x, g)?;
        if s >= self.bad {
            g[0] = f64::NAN;
        }
        Ok(l)
    }
    fn loss_at_cap(
        &mut self,
        s: usize,
        x: &DVector<f64>,
        g: &mut DVector<f64>,
    ) -> Result<Option<f64>> {
        if self.cap_evaluates {
            return self.loss_grad(s, x, g).map(Some);
        }
        self.q.loss(x)
    }
}

#[test]
fn a_non_finite_gradient_is_a_divergence_in_the_loop_and_at_the_cap() {
    let gd = &mut Gd {
        eta: 0.5,
        lambda: 0.0,
    };
    // in the loop: at the first step with a NaN entry, the (finite) loss named
    let mut p = NanGradient {
        q: quadratic(&[1.0, 1.0]),
        bad: 3,
        cap_evaluates: false,
    };
    let mut x = DVector::from_element(2, 1.0);
    let mut g = DVector::zeros(2);
    let err = iterate(&mut p, gd, &mut x, &mut g, &Stop::steps(10, "t"), &mut ()).unwrap_err();
    assert_eq!(diverged_at(err).0, 3);
    assert!(diverged_at(
        iterate(&mut p, gd, &mut x, &mut g, &Stop::steps(10, "t"), &mut ()).unwrap_err()
    )
    .1
    .is_finite());
    // at the cap: only where the final evaluation writes the gradient (a stale gradient
    // was tested before its step)
    for (cap_evaluates, diverges) in [(true, true), (false, false)] {
        let mut p = NanGradient {
            q: quadratic(&[1.0, 1.0]),
            bad: 5,
            cap_evaluates,
        };
        let mut x = DVector::from_element(2, 1.0);
        let r = iterate(&mut p, gd, &mut x, &mut g, &Stop::steps(5, "t"), &mut ());
        assert_eq!(r.is_err(), diverges);
        if let Err(e) = r {
            assert_eq!(diverged_at(e).0, 5);
        }
    }
    // a gradient whose norm overflows counts as non-finite by default
    struct Huge;
    impl GradNorm for Huge {
        fn grad_norm(&self) -> f64 {
            f64::MAX * 2.0
        }
    }
    assert!(!Huge.is_finite());
    assert!(!GradNorm::is_finite(&DVector::from_element(
        1,
        f64::INFINITY
    )));
}

#[test]
fn the_loss_tolerance_is_strict() {
    // x_k = 2^-k, L_k = 2^-2k / 2 (exact in binary): tol = L_3 stops at k = 4, not 3
    let mut p = quadratic(&[1.0]);
    let mut x = DVector::from_element(1, 1.0);
    let mut g = DVector::zeros(1);
    let gd = &mut Gd {
        eta: 0.5,
        lambda: 0.0,
    };
    let tol = 0.5 * 0.25f64.powi(3);
    let stop = Stop::steps(100, "t").loss_tol(tol);
    let out = iterate(&mut p, gd, &mut x, &mut g, &stop, &mut ()).unwrap();
    assert_eq!((out.reason, out.steps), (Reason::LossTol, 4));
    assert!(!stop.below_tol(tol) && stop.below_tol(tol * (1.0 - 1e-16)));
    assert!(!Stop::steps(1, "t").below_tol(-1.0));
}

#[derive(Default)]
struct Ends(Vec<(usize, Option<f64>, f64)>);

impl<P: Problem<Params = DVector<f64>>> Observer<P> for Ends {
    fn end(&mut self, s: usize, x: &DVector<f64>, _: &P::Grad, l: Option<f64>) -> Result<()> {
        self.0.push((s, l, x[0]));
        Ok(())
    }
}

/// The quadratic without a loss after the cap.
struct NoFinalLoss(Quadratic);

impl Problem for NoFinalLoss {
    type Params = DVector<f64>;
    type Grad = DVector<f64>;
    fn loss_grad(&mut self, s: usize, x: &DVector<f64>, g: &mut DVector<f64>) -> Result<f64> {
        self.0.loss_grad(s, x, g)
    }
}

#[test]
fn end_sees_the_final_point_converged_or_capped() {
    let gd = &mut Gd {
        eta: 0.5,
        lambda: 0.0,
    };
    let l = |k: i32| 0.5 * 0.25f64.powi(k);
    let x0 = || DVector::from_element(1, 1.0);
    let mut g = DVector::zeros(1);
    // converged at k = 10 (L_10 < 1e-6 <= L_9), with the loss that met the tolerance
    let mut ends = Ends::default();
    let stop = Stop::steps(100, "t").loss_tol(1e-6);
    iterate(
        &mut quadratic(&[1.0]),
        gd,
        &mut x0(),
        &mut g,
        &stop,
        &mut ends,
    )
    .unwrap();
    assert_eq!(ends.0, vec![(10, Some(l(10)), 0.5f64.powi(10))]);
    // capped at 3 steps: the loss at the final point, evaluated once more
    let mut ends = Ends::default();
    let mut p = quadratic(&[1.0]);
    iterate(
        &mut p,
        gd,
        &mut x0(),
        &mut g,
        &Stop::steps(3, "t"),
        &mut ends,
    )
    .unwrap();
    assert_eq!(ends.0, vec![(3, Some(l(3)), 0.125)]);
    assert_eq!(p.evaluations, 3);
    // capped, no loss there: the point without one
    let mut ends = Ends::default();
    let mut p = NoFinalLoss(quadratic(&[1.0]));
    let out = iterate(
        &mut p,
        gd,
        &mut x0(),
        &mut g,
        &Stop::steps(3, "t"),
        &mut ends,
    )
    .unwrap();
    assert_eq!(ends.0, vec![(3, None, 0.125)]);
    assert_eq!(out.loss, None);
    // a problem that evaluates the whole step at the cap is called once more with the
    // cap's step index (a stochastic problem draws as one more step would)
    let mut p = NanGradient {
        q: quadratic(&[1.0]),
        bad: usize::MAX,
        cap_evaluates: true,
    };
    let out = iterate(&mut p, gd, &mut x0(), &mut g, &Stop::steps(3, "t"), &mut ()).unwrap();
    assert_eq!((p.q.evaluations, out.loss), (4, Some(l(3))));
    assert_eq!(g[0], 0.125, "the gradient at the final point");
}

/// Flat parameters that count their moves.
struct Counted {
    x: DVector<f64>,
    moves: usize,
}

impl Coordinates for Counted {
    fn coordinates(&mut self) -> &mut [f64] {
        self.x.as_mut_slice()
    }
    fn moved(&mut self) {
        self.moves += 1;
    }
}

struct CountedQuadratic(Quadratic);

impl Problem for CountedQuadratic {
    type Params = Counted;
    type Grad = DVector<f64>;
    fn loss_grad(&mut self, s: usize, x: &Counted, g: &mut DVector<f64>) -> Result<f64> {
        self.0.loss_grad(s, &x.x, g)
    }
}

#[test]
fn adam_with_its_constants_matches_the_update_written_out() {
    let (eta, b1, b2, eps) = (0.05, 0.5, 0.9, 1e-3);
    let c = [1.0, 10.0];
    let mut p = CountedQuadratic(quadratic(&c));
    let mut x = Counted {
        x: DVector::from_column_slice(&[1.0, -1.0]),
        moves: 0,
    };
    let mut g = DVector::zeros(2);
    let mut adam = Adam::with(2, eta, b1, b2, eps);
    iterate(
        &mut p,
        &mut adam,
        &mut x,
        &mut g,
        &Stop::steps(7, "t"),
        &mut (),
    )
    .unwrap();
    assert_eq!(x.moves, 7);
    // Kingma & Ba's algorithm 1, coordinate by coordinate
    for i in 0..2 {
        let (mut xi, mut m, mut v) = ([1.0, -1.0][i], 0.0, 0.0);
        for t in 1..=7 {
            let gi = c[i] * xi;
            m = b1 * m + (1.0 - b1) * gi;
            v = b2 * v + (1.0 - b2) * gi * gi;
            let (mh, vh) = (m / (1.0 - b1.powi(t)), v / (1.0 - b2.powi(t)));
            xi -= eta * mh / (vh.sqrt() + eps);
        }
        assert_eq!(x.x[i], xi);
    }
}

#[test]
fn minibatches_cover_every_index_once_per_epoch() {
    let mut mb = Minibatches::new(10, 3, StdRng::seed_from_u64(7), "test").unwrap();
    assert!(!mb.full());
    // 3 batches per permutation (one index left over each time)
    for _ in 0..4 {
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.extend_from_slice(mb.next_batch());
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9);
    }
    assert!(Minibatches::new(10, 0, StdRng::seed_from_u64(7), "t").is_err());
    assert!(Minibatches::new(10, 11, StdRng::seed_from_u64(7), "t").is_err());
}

/// L(M) = |M - T|_F^2 / 2 on 2x2 matrices: GD moves M - T by (1 - eta)^k exactly in
/// exact arithmetic; the loss record holds every evaluated point, the final one included.
struct Matrix2Target(nalgebra::Matrix2<f64>);

impl Problem for Matrix2Target {
    type Params = nalgebra::Matrix2<f64>;
    type Grad = nalgebra::Matrix2<f64>;
    fn loss_grad(
        &mut self,
        _: usize,
        m: &nalgebra::Matrix2<f64>,
        g: &mut nalgebra::Matrix2<f64>,
    ) -> Result<f64> {
        *g = m - self.0;
        Ok(0.5 * g.norm_squared())
    }
    fn loss(&mut self, m: &nalgebra::Matrix2<f64>) -> Result<Option<f64>> {
        Ok(Some(0.5 * (m - self.0).norm_squared()))
    }
}

#[test]
fn gd_on_a_fixed_size_matrix_with_a_loss_record() {
    let t = nalgebra::Matrix2::new(1.0, -2.0, 0.5, 3.0);
    let mut p = Matrix2Target(t);
    let mut m = nalgebra::Matrix2::zeros();
    let mut g = nalgebra::Matrix2::zeros();
    let mut rec = Losses::default();
    let (eta, n) = (0.25, 20);
    let out = iterate(
        &mut p,
        &mut Gd { eta, lambda: 0.0 },
        &mut m,
        &mut g,
        &Stop::steps(n, "test 2x2 GD"),
        &mut rec,
    )
    .unwrap();
    assert_eq!((out.reason, out.steps), (Reason::MaxSteps, n));
    // M_k - T = -(1 - eta)^k T; L_k = (1 - eta)^(2k) |T|^2 / 2; 20 steps of rounding
    let l0 = 0.5 * t.norm_squared();
    assert_eq!(rec.0.len(), n + 1);
    for (k, l) in rec.0.iter().enumerate() {
        let want = l0 * 0.75f64.powi(2 * k as i32);
        assert!((l - want).abs() <= 1e-14 * l0, "L_{k} = {l}, want {want}");
    }
    assert!((m - t * (1.0 - 0.75f64.powi(n as i32))).norm() < 1e-14);
    // a non-finite entry is a divergence; decoupled decay: M <- (1 - eta lambda) M - eta g
    assert!(!GradNorm::is_finite(&nalgebra::Matrix2::new(
        0.0,
        f64::NAN,
        0.0,
        0.0
    )));
    let mut d = nalgebra::Matrix2::from_element(2.0);
    d.descend(&nalgebra::Matrix2::from_element(1.0), 0.5, 0.5);
    assert_eq!(d, nalgebra::Matrix2::from_element(1.0));
}
