//! Unit tests of `num::continuation`.

use super::*;
use crate::num::eig2::FixedPointType;

/// x' = p - x^2, y' = -y.
struct Fold;
impl Family for Fold {
    fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
        Vector2::new(p - x[0] * x[0], -x[1])
    }
    fn jacobian(&self, x: &Vector2<f64>, _: f64) -> Matrix2<f64> {
        Matrix2::new(-2.0 * x[0], 0.0, 0.0, -1.0)
    }
}

/// x' = p x - x^3, y' = -y.
struct Pitchfork;
impl Family for Pitchfork {
    fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
        Vector2::new(p * x[0] - x[0].powi(3), -x[1])
    }
    fn jacobian(&self, x: &Vector2<f64>, p: f64) -> Matrix2<f64> {
        Matrix2::new(p - 3.0 * x[0] * x[0], 0.0, 0.0, -1.0)
    }
}

/// x' = p x - x^2, y' = -y.
struct Transcritical;
impl Family for Transcritical {
    fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
        Vector2::new(p * x[0] - x[0] * x[0], -x[1])
    }
    fn jacobian(&self, x: &Vector2<f64>, p: f64) -> Matrix2<f64> {
        Matrix2::new(p - 2.0 * x[0], 0.0, 0.0, -1.0)
    }
}

/// Hopf normal form x' = p x - y - x r^2, y' = x + p y - y r^2.
struct Hopf;
impl Family for Hopf {
    fn flow(&self, x: &Vector2<f64>, p: f64) -> Vector2<f64> {
        let r2 = x.norm_squared();
        Vector2::new(p * x[0] - x[1] - x[0] * r2, x[0] + p * x[1] - x[1] * r2)
    }
    fn jacobian(&self, x: &Vector2<f64>, p: f64) -> Matrix2<f64> {
        let (a, b) = (x[0], x[1]);
        let r2 = a * a + b * b;
        Matrix2::new(
            p - r2 - 2.0 * a * a,
            -1.0 - 2.0 * a * b,
            1.0 - 2.0 * a * b,
            p - r2 - 2.0 * b * b,
        )
    }
}

fn opts(p: (f64, f64)) -> ContinuationOptions {
    ContinuationOptions::new(p, [-1.5, -1.0], [1.5, 1.0])
}

// Location tolerance: bisection to 1e-10 scaled arclength, i.e. ~1e-10 x (scale) in p
// and x; 1e-8 leaves a hundredfold margin for the corrector's 1e-11 residual.
const LOC: f64 = 1e-8;

#[test]
fn fold_normal_form_is_located_at_the_origin() {
    let d = continue_branches(&Fold, &[(Vector2::new(1.0, 0.0), 1.0)], &opts((-1.0, 1.0))).unwrap();
    assert_eq!(d.branches.len(), 1);
    assert_eq!(d.events.len(), 1, "{:?}", d.events);
    let e = &d.events[0];
    assert_eq!(e.kind, EventKind::Fold);
    assert!(e.p.abs() < LOC && e.x[0].abs() < 1e-4, "{e:?}");
    // the branch runs from x = 1 to x = -1 at p = 1 through the fold, every point on p = x^2,
    // stable for x > 0 and a saddle for x < 0
    let b = &d.branches[0];
    assert_eq!(b.ends, [BranchEnd::ParameterBound; 2]);
    let (first, last) = (&b.points[0], b.points.last().unwrap());
    assert!((first.p - 1.0).abs() < 1e-12 && (last.p - 1.0).abs() < 1e-12);
    assert!((first.point.x[0] + last.point.x[0]).abs() < 1e-9);
    for q in &b.points {
        assert!((q.p - q.point.x[0].powi(2)).abs() < 1e-10);
        if q.point.x[0] > 1e-6 {
            assert!(q.point.kind.is_stable());
        } else if q.point.x[0] < -1e-6 {
            assert_eq!(q.point.kind, FixedPointType::Saddle);
        }
    }
}

#[test]
fn pitchfork_is_located_and_both_branches_are_found() {
    let d = continue_branches(&Pitchfork, &[(Vector2::zeros(), -1.0)], &opts((-1.0, 1.0))).unwrap();
    assert_eq!(d.branches.len(), 2, "trivial branch and the parabola");
    let pf: Vec<_> = d
        .events
        .iter()
        .filter(|e| e.kind == EventKind::BranchPoint { pitchfork: true })
        .collect();
    assert_eq!(pf.len(), 1, "{:?}", d.events);
    assert!(pf[0].p.abs() < LOC && pf[0].x[0].abs() < LOC);
    assert_eq!(pf[0].branches, vec![0, 1]);
    // no spurious folds: the tip of the parabola is the branch point itself
    assert_eq!(d.events.len(), 1, "{:?}", d.events);
    let par = &d.branches[1];
    for q in &par.points {
        assert!((q.p - q.point.x[0].powi(2)).abs() < 1e-10, "{q:?}");
    }
    let xs: Vec<f64> = par.points.iter().map(|q| q.point.x[0]).collect();
    let (mn, mx) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    assert!(
        (mx - 1.0).abs() < 1e-9 && (mn + 1.0).abs() < 1e-9,
        "{mn} {mx}"
    );
    // the trivial branch: stable for p < 0, a saddle for p > 0
    for q in &d.branches[0].points {
        assert!(q.point.x[0].abs() < 1e-12);
        if q.p < -1e-6 {
            assert!(q.point.kind.is_stable());
        } else if q.p > 1e-6 {
            assert_eq!(q.point.kind, FixedPointType::Saddle);
        }
    }
}

#[test]
fn transcritical_is_a_branch_point_but_not_a_pitchfork() {
    let d = continue_branches(
        &Transcritical,
        &[(Vector2::zeros(), -0.5)],
        &opts((-1.0, 1.0)),
    )
    .unwrap();
    assert_eq!(d.branches.len(), 2);
    let e: Vec<_> = d.events.iter().collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].kind, EventKind::BranchPoint { pitchfork: false });
    assert!(e[0].p.abs() < LOC, "{e:?}");
    for q in &d.branches[1].points {
        assert!((q.point.x[0] - q.p).abs() < 1e-10);
    }
}

#[test]
fn hopf_normal_form_is_located_with_its_frequency() {
    let d = continue_branches(&Hopf, &[(Vector2::zeros(), -0.5)], &opts((-0.5, 0.5))).unwrap();
    assert_eq!(d.events.len(), 1, "{:?}", d.events);
    let e = &d.events[0];
    let EventKind::Hopf { omega } = e.kind else {
        panic!("{e:?}")
    };
    assert!(e.p.abs() < LOC && (omega - 1.0).abs() < 1e-8, "{e:?}");
    assert_eq!(
        d.branches[0].points[0].point.kind,
        FixedPointType::StableFocus
    );
    assert_eq!(
        d.branches[0].points.last().unwrap().point.kind,
        FixedPointType::UnstableFocus
    );
}

#[test]
fn a_flow_family_by_closure_and_bad_input() {
    struct Lin(f64);
    impl PlanarFlow for Lin {
        fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
            Vector2::new(self.0 - x[0], -x[1])
        }
        fn jacobian(&self, _: &Vector2<f64>) -> Matrix2<f64> {
            Matrix2::new(-1.0, 0.0, 0.0, -1.0)
        }
    }
    let fam = FlowFamily(|p: f64| Lin(p));
    let d = continue_branches(&fam, &[(Vector2::new(0.2, 0.0), 0.2)], &opts((-1.0, 1.0))).unwrap();
    assert_eq!(d.branches.len(), 1);
    assert!(d.events.is_empty());
    // x* = p along the whole interval, F_p by differences exact for a linear family
    for q in &d.branches[0].points {
        assert!((q.point.x[0] - q.p).abs() < 1e-10);
    }
    assert_eq!(d.branches[0].ends, [BranchEnd::ParameterBound; 2]);
    let e =
        continue_branches(&fam, &[(Vector2::new(0.5, 0.0), 0.2)], &opts((-1.0, 1.0))).unwrap_err();
    assert!(
        matches!(e, Error::Requirement(ref m) if m.contains("not an equilibrium")),
        "{e}"
    );
    let e = continue_branches(&fam, &[], &opts((1.0, -1.0))).unwrap_err();
    assert!(matches!(e, Error::Requirement(_)));
}
