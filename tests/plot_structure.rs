//! Structure (not pixel) tests of the figures: markers = fixed points, every nullcline branch
//! present, SVG well-formed, PNG of the requested size, clean errors on unwritable output.

use std::path::{Path, PathBuf};

use modeflow::num::continuation::EventKind;
use modeflow::num::eig2::FixedPointType;
use modeflow::num::planar::PlanarFlow;
use modeflow::plot::heatmap::{self, Curve, Grid, HeatSpec, Points};
use modeflow::plot::learning;
use modeflow::plot::lines::{self, FitSpec, LineSpec, Mark, Series};
use modeflow::plot::phase::{self, PhaseSpec};
use modeflow::plot::Output;
use modeflow::Error;
use nalgebra::{Matrix2, Vector2};

/// x' = mu x - x^3, y' = -y: for mu > 0 stable nodes at (+-sqrt(mu), 0) and a saddle at 0.
struct Pitchfork(f64);
impl PlanarFlow for Pitchfork {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        Vector2::new(self.0 * x[0] - x[0].powi(3), -x[1])
    }
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        Matrix2::new(self.0 - 3.0 * x[0] * x[0], 0.0, 0.0, -1.0)
    }
}

/// Van der Pol, x' = y, y' = mu (1 - x^2) y - x: unstable focus at 0 inside a limit cycle.
struct VanDerPol(f64);
impl PlanarFlow for VanDerPol {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        Vector2::new(x[1], self.0 * (1.0 - x[0] * x[0]) * x[1] - x[0])
    }
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        Matrix2::new(
            0.0,
            1.0,
            -2.0 * self.0 * x[0] * x[1] - 1.0,
            self.0 * (1.0 - x[0] * x[0]),
        )
    }
}

/// Saddle–node pair x' = mu - x^2, y' = -y: saddle at (-sqrt(mu), 0), node at (sqrt(mu), 0).
struct SaddleNode(f64);
impl PlanarFlow for SaddleNode {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        Vector2::new(self.0 - x[0] * x[0], -x[1])
    }
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        Matrix2::new(-2.0 * x[0], 0.0, 0.0, -1.0)
    }
}

/// Linear interference model kappa' = -kappa + M kappa + u e.
struct Linear {
    m: Matrix2<f64>,
    ue: Vector2<f64>,
}
impl PlanarFlow for Linear {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        -x + self.m * x + self.ue
    }
    fn jacobian(&self, _: &Vector2<f64>) -> Matrix2<f64> {
        self.m - Matrix2::identity()
    }
}

mod common;

fn out_dir(name: &str) -> PathBuf {
    common::out_dir_with("plot", name)
}

/// Count filled fixed-point markers (radius 7, no stroke) in an SVG.
fn svg_markers(svg: &str) -> usize {
    svg.lines()
        .filter(|l| {
            l.starts_with("<circle") && l.contains("r=\"7\"") && l.contains("stroke=\"none\"")
        })
        .count()
}

fn check_figure(dir: &Path, stem: &str, size: (u32, u32)) -> String {
    common::check_figure_files(dir, stem, size).0
}

#[test]
fn pitchfork_markers_equal_fixed_points_and_branches_are_all_found() {
    let dir = out_dir("pitchfork");
    let spec = PhaseSpec::new([-2.0, -1.5], [2.0, 1.5]).labels("κ_a", "κ_b");
    let r = phase::render(
        &Pitchfork(1.0),
        &spec,
        "pitchfork",
        &Output::new(&dir, "pf"),
    )
    .unwrap();
    let d = &r.data;
    assert_eq!(d.fixed_points.len(), 3);
    assert_eq!(r.markers, 3);
    let kinds: Vec<_> = d.fixed_points.iter().map(|f| f.kind).collect();
    use FixedPointType::*;
    assert_eq!(kinds, [StableNode, Saddle, StableNode]);
    let svg = check_figure(&dir, "pf", spec.size);
    assert_eq!(svg_markers(&svg), 3);
    // known nullclines: x = -1, 0, 1 (component 0) and y = 0 (component 1), each one branch
    // spanning the box, every point on the curve to rounding level
    let c0: Vec<_> = d.nullclines.iter().filter(|b| b.component == 0).collect();
    let c1: Vec<_> = d.nullclines.iter().filter(|b| b.component == 1).collect();
    assert_eq!((c0.len(), c1.len()), (3, 1));
    for want in [-1.0, 0.0, 1.0] {
        let b = c0
            .iter()
            .find(|b| (b.points[0][0] - want).abs() < 1e-10)
            .unwrap_or_else(|| panic!("branch x = {want} missing"));
        assert!(b.points.iter().all(|p| (p[0] - want).abs() < 1e-10));
        let ys: Vec<f64> = b.points.iter().map(|p| p[1]).collect();
        let span = ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            - ys.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(span > 2.9, "branch x = {want} spans {span}");
    }
    // saddle manifolds: two stable (along y) and two unstable (along x) branches; the unstable
    // ones end at the stable nodes
    assert_eq!(d.manifolds.len(), 4);
    for m in d.manifolds.iter().filter(|m| !m.stable) {
        let end = m.points.last().unwrap();
        assert!(
            (end[0].abs() - 1.0).abs() < 1e-3 && end[1].abs() < 1e-6,
            "{end:?}"
        );
    }
    assert_eq!(d.trajectories.len(), 20);
    assert!(d.skipped.is_empty(), "{:?}", d.skipped);
    // CSV beside: one row per nullcline point
    let csv = std::fs::read_to_string(dir.join("pf_nullclines.csv")).unwrap();
    let n: usize = d.nullclines.iter().map(|b| b.points.len()).sum();
    assert_eq!(csv.lines().count(), n + 1);
}

#[test]
fn van_der_pol_nullcline_branches_match_a_finer_grid() {
    let dir = out_dir("vdp");
    let mut spec = PhaseSpec::new([-3.0, -4.0], [3.0, 4.0]).labels("x", "y");
    spec.starts = vec![[0.1, 0.0]];
    let r = phase::render(
        &VanDerPol(1.0),
        &spec,
        "Van der Pol, μ = 1",
        &Output::new(&dir, "vdp"),
    )
    .unwrap();
    check_figure(&dir, "vdp", spec.size);
    assert_eq!(r.data.fixed_points.len(), 1);
    assert_eq!(r.data.fixed_points[0].kind, FixedPointType::UnstableFocus);
    assert_eq!(r.markers, 1);
    // y' = 0: y = x / (1 - x^2) has three branches (x < -1, |x| < 1, x > 1)
    let fine =
        modeflow::num::planar::nullclines::nullclines(&VanDerPol(1.0), spec.lo, spec.hi, 1200);
    let coarse = &r.data.nullclines;
    for c in 0..2 {
        let nf = fine.iter().filter(|b| b.component == c).count();
        let nc = coarse.iter().filter(|b| b.component == c).count();
        assert_eq!(nf, nc, "component {c}: fine grid {nf} branches, plot {nc}");
    }
    assert_eq!(coarse.iter().filter(|b| b.component == 1).count(), 3);
    // every fine branch is matched by a plotted branch: each of its points lies within one
    // coarse cell (6/240) of some plotted point of the same component
    let cell = 6.0 / 240.0;
    for b in &fine {
        let pts: Vec<[f64; 2]> = coarse
            .iter()
            .filter(|c| c.component == b.component)
            .flat_map(|c| c.points.clone())
            .collect();
        for p in b.points.iter().step_by(17) {
            let d = pts
                .iter()
                .map(|q| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt())
                .fold(f64::INFINITY, f64::min);
            assert!(d < cell, "fine point {p:?} {d} from the plotted nullcline");
        }
    }
    // the orbit from near the unstable focus converges to the limit cycle, |x| max ~ 2.0
    let o = r.data.trajectories.last().unwrap();
    let tail = &o.forward[o.forward.len() * 3 / 4..];
    let amp = tail.iter().map(|p| p[0].abs()).fold(0.0, f64::max);
    assert!((amp - 2.0).abs() < 0.05, "limit-cycle amplitude {amp}");
}

#[test]
fn saddle_node_pair_with_basins_and_linearisation() {
    let dir = out_dir("sn");
    let mut spec = PhaseSpec::new([-2.0, -1.0], [2.0, 1.0]);
    spec.basins = Some(40);
    spec.linearisation = true;
    let r = phase::render(
        &SaddleNode(0.25),
        &spec,
        "saddle–node pair",
        &Output::new(&dir, "sn"),
    )
    .unwrap();
    check_figure(&dir, "sn", spec.size);
    let d = &r.data;
    assert_eq!(d.fixed_points.len(), 2);
    assert_eq!(d.fixed_points[0].kind, FixedPointType::Saddle);
    assert_eq!(d.fixed_points[1].kind, FixedPointType::StableNode);
    assert_eq!(r.markers, 2);
    let b = d.basins.as_ref().unwrap();
    assert_eq!(b.attractors, vec![1]);
    // the basin of the node is x > -1/2 (the saddle's stable manifold is the line x = -1/2)
    for (idx, &l) in b.label.iter().enumerate() {
        let x = -2.0 + 4.0 * ((idx % 40) as f64 + 0.5) / 40.0;
        assert_eq!(l == 0, x > -0.5, "start x = {x}: label {l}");
    }
    assert!(!d.linearisation.is_empty());
}

#[test]
fn linear_interference_model_fixed_point_is_the_linear_solve() {
    let dir = out_dir("lin");
    let m = Matrix2::new(0.5, 0.3, 0.2, 0.4);
    let sys = Linear {
        m,
        ue: Vector2::new(1.0, 0.0),
    };
    let spec = PhaseSpec::new([-1.0, -1.0], [5.0, 3.0]).labels("κ_a", "κ_b");
    let r = phase::render(&sys, &spec, "κ' = -κ + Mκ + u e", &Output::new(&dir, "lin")).unwrap();
    check_figure(&dir, "lin", spec.size);
    let want = (Matrix2::identity() - m).try_inverse().unwrap() * Vector2::new(1.0, 0.0);
    assert_eq!(r.data.fixed_points.len(), 1);
    let fp = &r.data.fixed_points[0];
    assert!((fp.x[0] - want[0]).abs() < 1e-12 && (fp.x[1] - want[1]).abs() < 1e-12);
    assert_eq!(fp.kind, FixedPointType::StableNode);
    // straight-line nullclines: one branch each
    assert_eq!(r.data.nullclines.len(), 2);
}

#[test]
fn unwritable_output_is_an_io_error_and_leaves_no_file() {
    let spec = {
        let mut s = PhaseSpec::new([-2.0, -1.5], [2.0, 1.5]);
        s.trajectories = 2;
        s
    };
    // missing directory
    let missing = std::env::temp_dir().join(format!("modeflow-missing-{}", std::process::id()));
    let e = phase::render(&Pitchfork(1.0), &spec, "t", &Output::new(&missing, "x")).unwrap_err();
    match e {
        Error::Io { path, .. } => assert_eq!(path, missing),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(!missing.exists());
    // the PNG target is occupied by a non-empty directory: the SVG written before must be
    // removed again, and no temporary file may remain
    let dir = out_dir("occupied");
    std::fs::create_dir_all(dir.join("fig.png/inner")).unwrap();
    let e = phase::render(&Pitchfork(1.0), &spec, "t", &Output::new(&dir, "fig")).unwrap_err();
    match e {
        Error::Io { path, .. } => assert_eq!(path, dir.join("fig.png")),
        other => panic!("expected Io, got {other:?}"),
    }
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["fig.png".to_string()], "left behind: {names:?}");
}

#[test]
fn bad_spec_is_a_clear_error() {
    let dir = out_dir("badspec");
    let spec = PhaseSpec::new([1.0, 0.0], [0.0, 1.0]);
    let e = phase::render(&Pitchfork(1.0), &spec, "t", &Output::new(&dir, "x")).unwrap_err();
    assert!(
        matches!(e, Error::Requirement(ref m) if m.contains("lo < hi")),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// The text of every `<text>` element of an SVG (legend entries, labels, titles).
fn svg_texts(svg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find("<text") {
        let Some(j) = rest[i..].find('>') else { break };
        let Some(k) = rest[i + j..].find("</text>") else {
            break;
        };
        out.push(rest[i + j + 1..i + j + k].to_string());
        rest = &rest[i + j + k..];
    }
    out
}

/// Whether `want` is drawn, in one text element or across consecutive ones (a legend label
/// wrapped over several lines).
fn has_text(svg: &str, want: &str) -> bool {
    let texts = svg_texts(svg);
    let joined: Vec<&str> = texts.iter().map(|t| t.trim()).collect();
    texts.iter().any(|t| t.contains(want)) || joined.join(" ").contains(want)
}

#[test]
fn learning_strip_path_and_continuation_of_a_pitchfork() {
    let dir = out_dir("learn");
    let flows: Vec<Pitchfork> = [-0.5, 0.25, 0.5, 1.0]
        .iter()
        .map(|&m| Pitchfork(m))
        .collect();
    let snaps: Vec<(f64, &dyn PlanarFlow)> =
        flows.iter().map(|f| (f.0, f as &dyn PlanarFlow)).collect();
    let mut spec = PhaseSpec::new([-1.5, -1.0], [1.5, 1.0]).labels("κ_a", "κ_b");
    spec.arrows = 16;
    spec.trajectories = 6;
    let out = Output::new(&dir, "strip");
    let s = learning::render_strip(&snaps, &[], &spec, "pitchfork over learning", "τ", 4, &out)
        .unwrap();
    let svg = check_figure(&dir, "strip", (4 * 380 + 290, 600));
    let counts: Vec<usize> = s.panels.iter().map(|p| p.fixed_points.len()).collect();
    assert_eq!(counts, vec![1, 3, 3, 3]);
    assert_eq!(s.markers, counts);
    assert_eq!(svg_markers(&svg), 10);
    // one speed colour scale for all panels, drawn and labelled
    assert!(s
        .panels
        .windows(2)
        .all(|w| w[0].speed_scale.min == w[1].speed_scale.min
            && w[0].speed_scale.max == w[1].speed_scale.max));
    assert!(has_text(&svg, "speed |F|"));

    // mu over [-1, 1]: the arclength continuation from the origin at mu = -1 finds the
    // trivial branch and, by branch switching at the pitchfork, the parabola mu = x^2 with
    // both halves; the pitchfork is located to 1e-8 (bisection to 1e-10 of the scale)
    let c = learning::continue_over_learning(
        Pitchfork,
        (-1.0, 1.0),
        &[-1.0],
        [-1.5, -1.0],
        [1.5, 1.0],
        15,
    )
    .unwrap();
    assert_eq!(
        c.diagram.branches.len(),
        2,
        "trivial branch and the parabola"
    );
    assert_eq!(c.diagram.events.len(), 1, "{:?}", c.diagram.events);
    let e = &c.diagram.events[0];
    assert_eq!(e.kind, EventKind::BranchPoint { pitchfork: true });
    assert!(e.p.abs() < 1e-8 && e.x[0].abs() < 1e-8, "{e:?}");
    assert_eq!(
        e.branches,
        vec![0, 1],
        "both branches pass through the pitchfork"
    );
    let xs: Vec<f64> = c.diagram.branches[1]
        .points
        .iter()
        .map(|q| q.point.x[0])
        .collect();
    assert!(xs.iter().any(|x| (x - 1.0).abs() < 1e-9) && xs.iter().any(|x| (x + 1.0).abs() < 1e-9));
    let files = learning::render_continuation(
        &c,
        "pitchfork continuation",
        "μ",
        ["κ_a", "κ_b"],
        &[],
        &Output::new(&dir, "cont"),
    )
    .unwrap();
    assert_eq!(files.len(), 4);
    let svg = check_figure(&dir, "cont", (1000, 860));
    // legend: exactly what is drawn, with a key for the branch colours
    for want in [
        "stable",
        "unstable",
        "pitchfork",
        "1: origin",
        "2: born at 0 (pitchfork)",
    ] {
        assert!(
            has_text(&svg, want),
            "legend lacks `{want}`: {:?}",
            svg_texts(&svg)
        );
    }
    for absent in ["fold", "Hopf", "transcritical", "target"] {
        assert!(
            !has_text(&svg, absent),
            "legend lists `{absent}`, not drawn"
        );
    }
    // the y axes are not autoscaled to rounding noise: no tick label in scientific notation
    assert!(
        !svg_texts(&svg).iter().any(|t| t.contains("e-1")),
        "{:?}",
        svg_texts(&svg)
    );
    let (_, n) = learning::render_path(
        &c,
        "fixed-point path",
        ["κ_a", "κ_b"],
        "μ",
        &[],
        &Output::new(&dir, "path"),
    )
    .unwrap();
    assert_eq!(n, 3);
    check_figure(&dir, "path", (1000, 780));
    let tau: Vec<f64> = (0..40).map(|k| -0.975 + 0.05 * k as f64).collect();
    let ms: Vec<(f64, [f64; 4])> = tau
        .iter()
        .map(|&t| (t, [t, 0.1 * t, -0.2 * t * t, 1.0 - t]))
        .collect();
    learning::render_matrix_series(
        &ms,
        "M",
        "entries of M over learning",
        "τ",
        &Output::new(&dir, "m"),
    )
    .unwrap();
    check_figure(&dir, "m", (960, 680));
}

/// x' = p - x^2, y' = -y over p: a fold at p = 0, drawn with its legend entry.
struct FoldFamily(f64);
impl PlanarFlow for FoldFamily {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        Vector2::new(self.0 - x[0] * x[0], -x[1])
    }
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        Matrix2::new(-2.0 * x[0], 0.0, 0.0, -1.0)
    }
}

#[test]
fn fold_continuation_draws_both_branches_and_a_snapshot_at_the_fold() {
    let dir = out_dir("fold");
    let mut spec = PhaseSpec::new([-1.5, -1.0], [1.5, 1.0]).labels("x", "y");
    spec.trajectories = 4;
    let set = learning::render_learning_set(
        FoldFamily,
        (-0.5, 1.0),
        &[-0.5, 1.0],
        &spec,
        "fold",
        "p",
        &Output::new(&dir, "f"),
    )
    .unwrap();
    let d = &set.diagram.diagram;
    assert_eq!(d.branches.len(), 1);
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].kind, EventKind::Fold);
    assert!(d.events[0].p.abs() < 1e-8);
    // a snapshot at the fold, before and after it
    let t = &set.strip.tau;
    assert!(t.iter().any(|t| t.abs() < 1e-8), "{t:?}");
    assert!(t.iter().any(|t| *t < -1e-3) && t.iter().any(|t| *t > 1e-3));
    // the saddle branch (x < 0) and the node branch (x > 0) both reach p = 1
    let xs: Vec<f64> = d.branches[0]
        .points
        .iter()
        .filter(|q| (q.p - 1.0).abs() < 1e-12)
        .map(|q| q.point.x[0])
        .collect();
    assert_eq!(xs.len(), 2, "{xs:?}");
    let svg = std::fs::read_to_string(dir.join("f_continuation.svg")).unwrap();
    assert!(has_text(&svg, "fold (saddle–node)"));
    assert!(!has_text(&svg, "pitchfork"));
}

#[test]
fn heat_map_with_curve_and_points() {
    let dir = out_dir("heat");
    let x: Vec<f64> = (0..30).map(|i| 0.05 + 0.1 * i as f64).collect();
    let y: Vec<f64> = (0..20).map(|j| 10f64.powf(-2.0 + 0.1 * j as f64)).collect();
    let values: Vec<f64> = y
        .iter()
        .flat_map(|&e| x.iter().map(move |&r| (r * r + e).exp() - 0.99))
        .collect();
    let grid = Grid {
        x: x.clone(),
        y,
        values,
    };
    let curve = Curve {
        label: "r*(ε)".into(),
        points: (0..50)
            .map(|k| [0.5 + 0.04 * k as f64, 10f64.powf(-2.0 + 0.035 * k as f64)])
            .collect(),
    };
    let pts = Points {
        label: "trained RNNs".into(),
        points: vec![[1.0, 0.05], [2.0, 0.2]],
        values: Some(vec![1.0, 5.0]),
    };
    let mut spec = HeatSpec::new("interference I(r, ε)", "r", "ε", "I");
    spec.log_y = true;
    spec.log_colour = true;
    let r = heatmap::render(&grid, &[curve], &[pts], &spec, &Output::new(&dir, "heat")).unwrap();
    check_figure(&dir, "heat", spec.size);
    assert!(r.scale.log && r.scale.min > 0.0);
    let csv = std::fs::read_to_string(dir.join("heat.csv")).unwrap();
    assert_eq!(csv.lines().count(), 30 * 20 + 1);
    // empty and inconsistent sweeps are clear errors, with nothing written
    let empty = Grid {
        x: vec![],
        y: vec![],
        values: vec![],
    };
    let e = heatmap::render(&empty, &[], &[], &spec, &Output::new(&dir, "e")).unwrap_err();
    assert!(matches!(e, Error::Requirement(_)));
    let bad = Grid {
        x: x.clone(),
        y: vec![1.0],
        values: vec![1.0],
    };
    let e = heatmap::render(&bad, &[], &[], &spec, &Output::new(&dir, "e")).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }));
    assert!(!dir.join("e.svg").exists());
}

#[test]
fn line_figures_fit_slope_matrix_and_scatter() {
    let dir = out_dir("lines");
    // |w| ~ ln t: on (ln t, |w|) axes a straight line of slope 1/2
    let data: Vec<[f64; 2]> = (1..60)
        .map(|k| {
            let t = 1.3f64.powi(k);
            [t.ln(), 0.5 * t.ln() + 1.0 + 0.3 / t]
        })
        .collect();
    let pred: Vec<[f64; 2]> = data.iter().map(|p| [p[0], 0.5 * p[0] + 1.0]).collect();
    let mut spec = LineSpec::new("|w| against ln t", "ln t", "|w|");
    spec.fit = Some(FitSpec {
        series: 0,
        predicted: Some(0.5),
        x_range: Some((5.0, 100.0)),
    });
    let r = lines::render(
        &[
            Series::new("GD", data, Mark::Points),
            Series::new("predicted", pred, Mark::Dashed),
        ],
        &spec,
        &Output::new(&dir, "norm"),
    )
    .unwrap();
    check_figure(&dir, "norm", spec.size);
    let f = r.fit.unwrap();
    // the 0.3/t transient is < 2e-3 for ln t > 5: slope within 1e-3 of 1/2
    assert!((f.slope - 0.5).abs() < 1e-3, "{}", f.slope);

    let drift: Vec<[f64; 2]> = (0..12)
        .map(|k| {
            let eta = 1e-3 * 2f64.powi(k);
            [eta, 0.7 * eta * eta]
        })
        .collect();
    let mut spec = LineSpec::new("balance drift against η", "η", "drift").log_log();
    spec.fit = Some(FitSpec {
        series: 0,
        predicted: Some(2.0),
        x_range: None,
    });
    let r = lines::render(
        &[Series::new("drift", drift, Mark::LinePoints)],
        &spec,
        &Output::new(&dir, "drift"),
    )
    .unwrap();
    check_figure(&dir, "drift", spec.size);
    assert!((r.fit.unwrap().slope - 2.0).abs() < 1e-10);

    let n = 12;
    let m: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if (i < 6) == (j < 6) { 0.9 } else { -0.2 } + if i == j { 0.1 } else { 0.0 }).collect())
        .collect();
    lines::render_matrix(
        &m,
        "cosine similarity of hidden weights",
        "cos",
        Some((-1.0, 1.0)),
        &Output::new(&dir, "cos"),
    )
    .unwrap();
    check_figure(&dir, "cos", (900, 760));
    let pts: Vec<[f64; 2]> = (0..40)
        .map(|k| {
            let a = k as f64;
            if k % 2 == 0 {
                [1.0 + 0.1 * a.sin(), 0.1 * a.cos()]
            } else {
                [-1.0 + 0.1 * a.cos(), 0.5 + 0.1 * a.sin()]
            }
        })
        .collect();
    let groups: Vec<usize> = (0..40).map(|k| k % 2).collect();
    lines::render_scatter(
        &pts,
        &groups,
        &["cluster 1".into(), "cluster 2".into()],
        &LineSpec::new("hidden weights, top-2 projection", "PC 1", "PC 2"),
        &Output::new(&dir, "proj"),
    )
    .unwrap();
    check_figure(&dir, "proj", (960, 680));
}

/// Flow defined only for x > 0 (NaN elsewhere): x' = 1 - sqrt(x), y' = -y.
struct HalfPlane;
impl PlanarFlow for HalfPlane {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        Vector2::new(1.0 - x[0].sqrt(), -x[1])
    }
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        Matrix2::new(-0.5 / x[0].sqrt(), 0.0, 0.0, -1.0)
    }
}

#[test]
fn flow_undefined_in_part_of_the_box_renders_without_panic() {
    let dir = out_dir("nan");
    let spec = PhaseSpec::new([-1.0, -1.0], [3.0, 1.0]);
    let r = phase::render(&HalfPlane, &spec, "x' = 1 - √x", &Output::new(&dir, "nan")).unwrap();
    check_figure(&dir, "nan", spec.size);
    assert_eq!(r.data.fixed_points.len(), 1, "{:?}", r.data.fixed_points);
    assert!((r.data.fixed_points[0].x[0] - 1.0).abs() < 1e-12);
    // the nullcline x = 1 is found; nothing is drawn from the undefined half
    let c0: Vec<_> = r
        .data
        .nullclines
        .iter()
        .filter(|b| b.component == 0)
        .collect();
    assert_eq!(c0.len(), 1);
    assert!(c0[0].points.iter().all(|p| (p[0] - 1.0).abs() < 1e-12));
    // orbits crossing into x < 0 fail to integrate and are reported, not drawn
    assert!(r.data.trajectories.len() + r.data.skipped.len() >= 20);
}

#[test]
fn output_is_deterministic() {
    let (a, b) = (out_dir("det-a"), out_dir("det-b"));
    let mut spec = PhaseSpec::new([-3.0, -4.0], [3.0, 4.0]);
    spec.basins = Some(20);
    for d in [&a, &b] {
        phase::render(&VanDerPol(0.5), &spec, "vdp", &Output::new(d, "v")).unwrap();
    }
    for ext in ["svg", "png", "json", "_nullclines.csv"] {
        let name = if ext.starts_with('_') {
            format!("v{ext}")
        } else {
            format!("v.{ext}")
        };
        let (x, y) = (
            std::fs::read(a.join(&name)).unwrap(),
            std::fs::read(b.join(&name)).unwrap(),
        );
        assert!(x == y, "{name} differs between runs");
    }
}

#[test]
fn auto_box_frames_all_fixed_points() {
    let (lo, hi) = phase::auto_box(&Pitchfork(1.0), [-10.0, -10.0], [10.0, 10.0], 21);
    // fixed points at x = -1, 0, 1 and y = 0: x extent [-1, 1] padded by 1 -> [-2, 2];
    // y extent 0 -> the minimum half-width, a tenth of the search box: +-2
    assert!(
        (lo[0] + 2.0).abs() < 1e-9 && (hi[0] - 2.0).abs() < 1e-9,
        "{lo:?} {hi:?}"
    );
    assert!(
        (lo[1] + 2.0).abs() < 1e-9 && (hi[1] - 2.0).abs() < 1e-9,
        "{lo:?} {hi:?}"
    );
}

#[test]
fn learning_set_writes_strip_path_and_continuation() {
    let dir = out_dir("set");
    let mut spec = PhaseSpec::new([-1.5, -1.0], [1.5, 1.0]).labels("κ_a", "κ_b");
    spec.trajectories = 4;
    let set = learning::render_learning_set(
        Pitchfork,
        (-0.5, 1.0),
        &[-0.5, 0.25, 1.0],
        &spec,
        "pitchfork",
        "τ",
        &Output::new(&dir, "pf"),
    )
    .unwrap();
    // snapshots: start, the pitchfork, end, and between them
    let t = &set.strip.tau;
    assert_eq!(t.len(), 5, "{t:?}");
    assert!(
        t.iter().any(|t| t.abs() < 1e-8),
        "no snapshot at the pitchfork: {t:?}"
    );
    assert_eq!(set.strip.markers[0], 1);
    assert_eq!(*set.strip.markers.last().unwrap(), 3);
    for (p, m) in set.strip.panels.iter().zip(&set.strip.markers) {
        assert_eq!(p.fixed_points.len(), *m);
    }
    assert_eq!(set.path_markers, 3);
    // 3 figures x (svg, png, json) + csv for path and continuation
    assert_eq!(set.files.len(), 3 * 3 + 2);
    for stem in ["pf_strip", "pf_path", "pf_continuation"] {
        let size = match stem {
            "pf_strip" => (4 * 380 + 290, 2 * 360 + 44),
            "pf_path" => (1000, 780),
            _ => (1000, 860),
        };
        let svg = check_figure(&dir, stem, size);
        if stem == "pf_strip" {
            assert!(
                has_text(&svg, "(pitchfork)"),
                "panel at the event not titled"
            );
        }
    }
}

/// The shipped latent model: learning B after A, portraits of the autonomous flow over
/// learning time (strip, fixed-point path, continuation) and M(tau).
#[test]
fn latent_model_learning_portraits() {
    use modeflow::interference::latent_model::LatentSpec;
    use modeflow::interference::nonlinear::unpack;
    use modeflow::latent::flow::{fixed_point_box, LatentFlow};
    use modeflow::latent::gain::Gain;
    let dir = out_dir("latent");
    let model = modeflow::model::load(Path::new("models/latent-rotation.toml")).unwrap();
    let spec = LatentSpec::from_model(&model).unwrap();
    let (res, _run_a, run_b) = spec.sequential().run(&spec.m0()).unwrap();
    let gain = Gain::new(spec.gain);
    let m_at = |t: f64| unpack(&run_b.path.eval(t));
    let tau_end = run_b.tau;
    let half = fixed_point_box(&m_at(tau_end), &gain)
        .unwrap()
        .max(fixed_point_box(&m_at(0.0), &gain).unwrap());
    let mut ps = PhaseSpec::new([-half, -half], [half, half]).labels("κ_a", "κ_b");
    ps.trajectories = 6;
    let seeds: Vec<f64> = (0..=8).map(|k| tau_end * k as f64 / 8.0).collect();
    let set = learning::render_learning_set(
        |t| LatentFlow::autonomous(m_at(t), gain.clone()),
        (0.0, tau_end),
        &seeds,
        &ps,
        "latent rotation, learning B",
        "τ",
        &Output::new(&dir, "latent"),
    )
    .unwrap();
    // two pitchforks: the A pair dies into the origin, later the B pair is born from it;
    // both branches are drawn through each
    let pf: Vec<_> = set
        .diagram
        .diagram
        .events
        .iter()
        .filter(|e| e.kind == EventKind::BranchPoint { pitchfork: true })
        .collect();
    assert_eq!(pf.len(), 2, "{:?}", set.diagram.diagram.events);
    for e in &pf {
        assert!(e.branches.len() >= 2, "{e:?}");
        assert!(
            e.x[0].abs().max(e.x[1].abs()) < 1e-8,
            "a pitchfork of the origin: {e:?}"
        );
    }
    // the first agrees with where the interference module's own Newton continuation of the
    // A fixed point lost it (located there to a substep of its learning steps)
    let want = res.a_fixed_point.as_ref().unwrap().vanished_at.unwrap();
    assert!(
        (pf[0].p - want).abs() < 0.05,
        "continuation {} vs interference module {want}",
        pf[0].p
    );
    // a snapshot at each of them
    for e in &pf {
        assert!(
            set.strip.tau.iter().any(|t| (t - e.p).abs() < 1e-12),
            "{:?}",
            set.strip.tau
        );
    }
    for (p, m) in set.strip.panels.iter().zip(&set.strip.markers) {
        assert_eq!(p.fixed_points.len(), *m);
    }
}

/// Every shipped model's gallery figures: fixed points drawn in every portrait, a snapshot at
/// every located event, legends listing only what is drawn, log colour scales labelled.
#[test]
fn shipped_model_figures_show_their_fixed_points() {
    let dir = out_dir("gallery");
    for name in modeflow::gallery::GALLERY_MODELS {
        let m = modeflow::model::load(&Path::new("models").join(name)).unwrap();
        let files = modeflow::run::phase(&m, &dir).unwrap();
        let jsons: Vec<&PathBuf> = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
            .collect();
        let mut portraits = 0;
        for j in jsons {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(j).unwrap()).unwrap();
            let svg = std::fs::read_to_string(j.with_extension("svg")).unwrap();
            match v["figure"].as_str().unwrap() {
                "phase_portrait" => {
                    portraits += 1;
                    let fps = v["data"]["fixed_points"].as_array().unwrap();
                    assert!(!fps.is_empty(), "{}: no fixed point drawn", j.display());
                    assert_eq!(svg_markers(&svg), fps.len(), "{}", j.display());
                    if v["data"]["speed_scale"]["log"].as_bool().unwrap() {
                        assert!(has_text(&svg, "(log scale)"), "{}", j.display());
                    }
                    assert!(!has_text(&svg, "linearisation"));
                }
                "phase_strip" => {
                    for p in v["data"]["panels"].as_array().unwrap() {
                        assert!(
                            !p["fixed_points"].as_array().unwrap().is_empty(),
                            "{}",
                            j.display()
                        );
                    }
                }
                "continuation" => {
                    let d = &v["data"]["diagram"]["diagram"];
                    assert!(
                        !d["branches"].as_array().unwrap().is_empty(),
                        "{}",
                        j.display()
                    );
                    let strip = j
                        .to_string_lossy()
                        .replace("_continuation.json", "_strip.json");
                    let sv: serde_json::Value =
                        serde_json::from_str(&std::fs::read_to_string(&strip).unwrap()).unwrap();
                    let taus: Vec<f64> = sv["data"]["tau"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t.as_f64().unwrap())
                        .collect();
                    for e in d["events"].as_array().unwrap() {
                        let p = e["p"].as_f64().unwrap();
                        assert!(
                            taus.iter()
                                .any(|t| (t - p).abs() <= 1e-6 * taus.last().unwrap()),
                            "{}: no snapshot at {p}",
                            j.display()
                        );
                        let label = match e["kind"].as_str().unwrap() {
                            "fold" => "fold",
                            "hopf" => "Hopf",
                            _ => {
                                if e["pitchfork"].as_bool().unwrap() {
                                    "pitchfork"
                                } else {
                                    "transcritical"
                                }
                            }
                        };
                        assert!(
                            has_text(&svg, label),
                            "{}: legend lacks {label}",
                            j.display()
                        );
                    }
                    for (kind, label) in [("fold", "fold"), ("hopf", "Hopf")] {
                        if !d["events"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|e| e["kind"] == kind)
                        {
                            assert!(
                                !has_text(&svg, label),
                                "{}: legend lists {label}",
                                j.display()
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        assert!(portraits >= 1, "{name}: no phase portrait");
    }
    // the race map's log colour scale is labelled as such
    modeflow::figures::race_map(&dir, 12, 10, &[]).unwrap();
    let svg = std::fs::read_to_string(dir.join("race_map.svg")).unwrap();
    assert!(has_text(&svg, "(log scale)"));
    // the I-16 crossover is drawn on the race map and on the I-18 step-size map
    assert!(has_text(&svg, "closed-form path (I-16)"));
    modeflow::figures::step_size_map(&dir).unwrap();
    let svg = std::fs::read_to_string(dir.join("step_size_map.svg")).unwrap();
    assert!(has_text(&svg, "closed-form path (I-16)") && has_text(&svg, "(log scale)"));
}

/// The I-18-map figure: GD's critical step against its three predictions, every series in the
/// legend, its data beside it (one row per plotted point, 3 series over the points where GD
/// was run and flipped: at least 40 of the 48 grid points).
#[test]
fn step_size_predictors_figure_carries_its_series_and_data() {
    let dir = std::env::temp_dir().join(format!("modeflow-ssp-{}", std::process::id()));
    let files = modeflow::figures::step_size_predictors(&dir).unwrap();
    let svg = std::fs::read_to_string(dir.join("step_size_predictors.svg")).unwrap();
    for label in [
        "h_half",
        "2/N_end",
        "h*_MF",
        "prediction = h_GD",
        "I-18-map",
    ] {
        assert!(has_text(&svg, label), "missing {label}");
    }
    let csv = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "csv"))
        .expect("a csv beside the figure");
    let rows = std::fs::read_to_string(csv).unwrap().lines().count();
    assert!(rows > 3 * 40, "{rows} csv rows");
    std::fs::remove_dir_all(&dir).unwrap();
}
