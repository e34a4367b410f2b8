//! Learning portraits: how a planar flow changes over learning time tau.
//!
//! - [`render_strip`]: a strip of phase portraits at chosen tau (e.g. the A fixed point rotating
//!   or a new one forming while task B is learned);
//! - [`track`] / [`track_snapshots`]: fixed points over tau, linked into branches, with
//!   bifurcations where the number or the stability of fixed points changes;
//! - [`render_path`]: the fixed points' path in the plane over tau;
//! - [`render_continuation`]: fixed-point amplitude vs tau, stable solid, unstable dashed,
//!   bifurcations marked;
//! - [`render_matrix_series`]: the entries of a 2x2 matrix M over tau.

use std::cell::RefCell;

use nalgebra::{Matrix2, Vector2};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use super::canvas::{self, colour_bar, series_colour, ColourScale, Drawn, Figure, Output};
use super::lines::{self, LineSpec, Mark, Series};
use super::phase::{self, PhaseData, PhaseSpec};
use super::{draw_marker, draw_polyline, frame, legend, Axis, Glyph, MARKER};
use crate::num::eig2::FixedPointType;
use crate::num::planar::{fixed_points_in_box, FixedPoint, PlanarFlow};
use crate::{Error, Result};

/// A borrowed trait object as a sized [`PlanarFlow`] (the numerics take `&impl PlanarFlow`).
pub struct DynFlow<'a>(pub &'a dyn PlanarFlow);

impl PlanarFlow for DynFlow<'_> {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        self.0.flow(x)
    }
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        self.0.jacobian(x)
    }
}

struct StripFigure<'a> {
    panels: &'a [PhaseData],
    titles: Vec<String>,
    title: &'a str,
    cols: usize,
    size: (u32, u32),
    markers: RefCell<Vec<usize>>,
}

const PANEL: (u32, u32) = (380, 360);
const SIDE: u32 = 220;

impl Figure for StripFigure<'_> {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (head, body) = root.split_vertically(44);
        head.draw(&Text::new(
            self.title.to_string(),
            (14, 10),
            canvas::font(22),
        ))
        .drawn()?;
        let (grid, side) = body.split_horizontally(self.size.0 as i32 - SIDE as i32);
        let rows = self.panels.len().div_ceil(self.cols);
        let cells = grid.split_evenly((rows, self.cols));
        let mut markers = Vec::new();
        for (k, d) in self.panels.iter().enumerate() {
            markers.push(phase::draw_panel(&cells[k], d, &self.titles[k], true)?);
        }
        *self.markers.borrow_mut() = markers;
        // union of the legends of all panels
        let mut entries: Vec<(Glyph, String)> = Vec::new();
        for d in self.panels {
            for e in phase::legend_entries(d) {
                if !entries.iter().any(|f| f.1 == e.1) {
                    entries.push(e);
                }
            }
        }
        legend(&side, 6, 20, &entries)?;
        Ok(())
    }
}

/// What [`render_strip`] drew.
#[derive(Debug, Clone, Serialize)]
pub struct StripResult {
    pub tau: Vec<f64>,
    pub panels: Vec<PhaseData>,
    /// Fixed-point markers drawn per panel.
    pub markers: Vec<usize>,
    pub files: Vec<std::path::PathBuf>,
}

/// A strip of phase portraits, one per `(tau, flow)` snapshot, in rows of at most `cols`
/// panels; every panel uses `spec` (same box; keep `spec.arrows` <= 20 for readability).
/// Panel titles read `"{tau_symbol} = {tau}"`.
pub fn render_strip(
    snapshots: &[(f64, &dyn PlanarFlow)],
    spec: &PhaseSpec,
    title: &str,
    tau_symbol: &str,
    cols: usize,
    out: &Output,
) -> Result<StripResult> {
    if snapshots.is_empty() {
        return Err(Error::Requirement(format!("strip `{title}`: no snapshots")));
    }
    let cols = cols.clamp(1, snapshots.len());
    let rows = snapshots.len().div_ceil(cols);
    let mut panels = Vec::with_capacity(snapshots.len());
    for (_, f) in snapshots {
        panels.push(phase::compute(&DynFlow(*f), spec)?);
    }
    let titles = snapshots
        .iter()
        .map(|(t, _)| format!("{tau_symbol} = {}", canvas::tick(*t)))
        .collect();
    let size = (cols as u32 * PANEL.0 + SIDE, rows as u32 * PANEL.1 + 44);
    let fig = StripFigure {
        panels: &panels,
        titles,
        title,
        cols,
        size,
        markers: RefCell::new(Vec::new()),
    };
    let tau: Vec<f64> = snapshots.iter().map(|s| s.0).collect();
    let json = canvas::figure_json(
        out,
        "phase_strip",
        title,
        &serde_json::json!({ "tau": tau, "panels": panels }),
    )?;
    let files = canvas::write_figure(&fig, out, &[(".json", json)])?;
    let markers = fig.markers.take();
    Ok(StripResult {
        tau,
        panels,
        markers,
        files,
    })
}

/// One fixed point followed over consecutive tau.
#[derive(Debug, Clone, Serialize)]
pub struct FpBranch {
    pub tau: Vec<f64>,
    pub points: Vec<FixedPoint>,
}

/// A change in the number or stability of fixed points between two consecutive tau.
#[derive(Debug, Clone, Serialize)]
pub struct Bifurcation {
    /// Midpoint of the tau interval in which the change happened.
    pub tau: f64,
    /// Where (the fixed point involved).
    pub x: [f64; 2],
    /// "born", "vanished" or "type change: a -> b".
    pub what: String,
}

/// Fixed points over learning time, linked into branches.
#[derive(Debug, Clone, Serialize)]
pub struct Continuation {
    pub tau: Vec<f64>,
    /// All fixed points found at each tau.
    pub fixed_points: Vec<Vec<FixedPoint>>,
    pub branches: Vec<FpBranch>,
    pub bifurcations: Vec<Bifurcation>,
    pub lo: [f64; 2],
    pub hi: [f64; 2],
}

/// Fixed points of `flow(tau)` in the box at every tau (increasing), linked into branches.
/// Intervals in which the fixed points change are bisected up to 4 times (the returned `tau`
/// then holds the inserted values too); points closer than 1e-4 of the box diagonal are merged.
///
/// Linking: between consecutive tau the closest pairs are matched greedily; a pair farther
/// apart than `match_frac` of the box diagonal is not matched (the point is taken as born or
/// vanished). A bifurcation is recorded for each unmatched point and for each matched pair
/// whose type changes between stable / unstable / saddle.
pub fn track<F: PlanarFlow>(
    tau: &[f64],
    flow: impl Fn(f64) -> F,
    lo: [f64; 2],
    hi: [f64; 2],
    grid: usize,
    match_frac: f64,
) -> Result<Continuation> {
    if tau.is_empty() {
        return Err(Error::Requirement(
            "fixed-point tracking: no tau values".into(),
        ));
    }
    if tau.windows(2).any(|w| w[1] <= w[0]) || tau.iter().any(|t| !t.is_finite()) {
        return Err(Error::Requirement(
            "fixed-point tracking: tau must be finite and strictly increasing".into(),
        ));
    }
    let diam = ((hi[0] - lo[0]).powi(2) + (hi[1] - lo[1]).powi(2)).sqrt();
    let find = |t: f64| merge_close(fixed_points_in_box(&flow(t), lo, hi, grid), 1e-4 * diam);
    let mut ts: Vec<f64> = tau.to_vec();
    let mut fps: Vec<Vec<FixedPoint>> = ts.iter().map(|&t| find(t)).collect();
    // refine intervals where the picture changes (a point unmatched or changing type) by
    // bisection, up to REFINE levels: fast motion then links up, and a bifurcation is located
    // to 2^-REFINE of the user's step
    for _ in 0..REFINE {
        let radius = match_frac * diam;
        let mut nts = Vec::with_capacity(ts.len());
        let mut nfps = Vec::with_capacity(ts.len());
        let mut inserted = false;
        for k in 0..ts.len() {
            nts.push(ts[k]);
            nfps.push(fps[k].clone());
            if k + 1 < ts.len() && changes(&fps[k], &fps[k + 1], radius) {
                let mid = 0.5 * (ts[k] + ts[k + 1]);
                if mid > ts[k] && mid < ts[k + 1] {
                    nts.push(mid);
                    nfps.push(find(mid));
                    inserted = true;
                }
            }
        }
        ts = nts;
        fps = nfps;
        if !inserted {
            break;
        }
    }
    Ok(link(&ts, fps, lo, hi, match_frac))
}

/// Bisection levels of [`track`] around changes (each halves the located tau interval).
const REFINE: usize = 4;

/// Whether the fixed points change between two consecutive tau: different numbers, a point
/// with no partner within `radius`, or a partner of another stability class.
fn changes(a: &[FixedPoint], b: &[FixedPoint], radius: f64) -> bool {
    if a.len() != b.len() {
        return true;
    }
    a.iter().any(|p| {
        match b
            .iter()
            .map(|q| ((p.vector() - q.vector()).norm(), q))
            .min_by(|x, y| x.0.total_cmp(&y.0))
        {
            Some((d, q)) => d > radius || class(p.kind) != class(q.kind),
            None => true,
        }
    })
}

/// Merge fixed points closer than `tol` (keep the smallest residual): near a degenerate
/// (bifurcating) point Newton converges only linearly and distinct starts stop at slightly
/// different places; points that close are one point at plotting resolution.
fn merge_close(fps: Vec<FixedPoint>, tol: f64) -> Vec<FixedPoint> {
    let mut out: Vec<FixedPoint> = Vec::with_capacity(fps.len());
    for fp in fps {
        match out
            .iter_mut()
            .find(|q| (q.vector() - fp.vector()).norm() <= tol)
        {
            Some(q) => {
                if fp.residual < q.residual {
                    *q = fp;
                }
            }
            None => out.push(fp),
        }
    }
    out
}

/// [`track`] for explicit snapshots.
pub fn track_snapshots(
    snapshots: &[(f64, &dyn PlanarFlow)],
    lo: [f64; 2],
    hi: [f64; 2],
    grid: usize,
    match_frac: f64,
) -> Result<Continuation> {
    let tau: Vec<f64> = snapshots.iter().map(|s| s.0).collect();
    track(
        &tau,
        |t| {
            let k = tau.iter().position(|&s| s == t).unwrap_or(0);
            DynFlow(snapshots[k].1)
        },
        lo,
        hi,
        grid,
        match_frac,
    )
}

/// Coarse stability class used to detect bifurcations.
fn class(k: FixedPointType) -> u8 {
    match k {
        FixedPointType::StableNode | FixedPointType::StableFocus => 0,
        FixedPointType::Saddle => 2,
        FixedPointType::UnstableNode | FixedPointType::UnstableFocus => 1,
        FixedPointType::Centre | FixedPointType::Degenerate => 3,
    }
}

fn link(
    tau: &[f64],
    fps: Vec<Vec<FixedPoint>>,
    lo: [f64; 2],
    hi: [f64; 2],
    match_frac: f64,
) -> Continuation {
    let diam = ((hi[0] - lo[0]).powi(2) + (hi[1] - lo[1]).powi(2)).sqrt();
    let radius = match_frac * diam;
    let mut branches: Vec<FpBranch> = Vec::new();
    let mut bifurcations = Vec::new();
    // open[j] = branch index of fixed point j at the previous tau
    let mut open: Vec<usize> = Vec::new();
    for (k, cur) in fps.iter().enumerate() {
        let mut next_open = vec![usize::MAX; cur.len()];
        if k == 0 {
            for (j, fp) in cur.iter().enumerate() {
                next_open[j] = branches.len();
                branches.push(FpBranch {
                    tau: vec![tau[0]],
                    points: vec![fp.clone()],
                });
            }
        } else {
            let prev = &fps[k - 1];
            let mid = 0.5 * (tau[k - 1] + tau[k]);
            let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
            for (i, p) in prev.iter().enumerate() {
                for (j, c) in cur.iter().enumerate() {
                    let d = (p.vector() - c.vector()).norm();
                    if d <= radius {
                        pairs.push((d, i, j));
                    }
                }
            }
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let mut used_prev = vec![false; prev.len()];
            for (_, i, j) in pairs {
                if used_prev[i] || next_open[j] != usize::MAX {
                    continue;
                }
                used_prev[i] = true;
                let b = open[i];
                next_open[j] = b;
                branches[b].tau.push(tau[k]);
                branches[b].points.push(cur[j].clone());
                if class(prev[i].kind) != class(cur[j].kind) {
                    bifurcations.push(Bifurcation {
                        tau: mid,
                        x: [
                            0.5 * (prev[i].x[0] + cur[j].x[0]),
                            0.5 * (prev[i].x[1] + cur[j].x[1]),
                        ],
                        what: format!(
                            "type change: {} -> {}",
                            prev[i].kind.label(),
                            cur[j].kind.label()
                        ),
                    });
                }
            }
            for (i, p) in prev.iter().enumerate() {
                if !used_prev[i] {
                    bifurcations.push(Bifurcation {
                        tau: mid,
                        x: p.x,
                        what: "vanished".into(),
                    });
                }
            }
            for (j, c) in cur.iter().enumerate() {
                if next_open[j] == usize::MAX {
                    next_open[j] = branches.len();
                    branches.push(FpBranch {
                        tau: vec![tau[k]],
                        points: vec![c.clone()],
                    });
                    bifurcations.push(Bifurcation {
                        tau: mid,
                        x: c.x,
                        what: "born".into(),
                    });
                }
            }
        }
        open = next_open;
    }
    Continuation {
        tau: tau.to_vec(),
        fixed_points: fps,
        branches,
        bifurcations,
        lo,
        hi,
    }
}

/// The quantity plotted against tau in a continuation diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Amplitude {
    /// |x*|.
    Norm,
    /// The first coordinate x*_1.
    First,
    /// The second coordinate x*_2.
    Second,
}

impl Amplitude {
    fn of(self, x: [f64; 2]) -> f64 {
        match self {
            Amplitude::Norm => (x[0] * x[0] + x[1] * x[1]).sqrt(),
            Amplitude::First => x[0],
            Amplitude::Second => x[1],
        }
    }
}

const BIF_COLOUR: RGBColor = canvas::BLACK_OI;

struct ContinuationFigure<'a> {
    c: &'a Continuation,
    amp: Amplitude,
    title: &'a str,
    tau_label: &'a str,
    amp_label: &'a str,
}

impl Figure for ContinuationFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (980, 660)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let c = self.c;
        let (left, right) = root.split_horizontally(980 - 230);
        let t0 = c.tau[0];
        let t1 = *c.tau.last().unwrap_or(&t0);
        let xr = if t1 > t0 { t0..t1 } else { t0 - 0.5..t0 + 0.5 };
        let amps: Vec<f64> = c
            .branches
            .iter()
            .flat_map(|b| b.points.iter().map(|p| self.amp.of(p.x)))
            .collect();
        let (mut lo, mut hi) = amps
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let pad = if hi > lo { 0.08 * (hi - lo) } else { 0.5 };
        let chart = frame(
            &left,
            self.title,
            self.tau_label,
            self.amp_label,
            xr,
            lo - pad..hi + pad,
            (Axis::Linear, Axis::Linear),
            false,
        )?;
        for (k, b) in c.branches.iter().enumerate() {
            let col = series_colour(k);
            // runs of equal stability; consecutive runs share their boundary point
            let mut start = 0;
            while start < b.points.len() {
                let stable = b.points[start].kind.is_stable();
                let mut end = start;
                while end + 1 < b.points.len() && b.points[end + 1].kind.is_stable() == stable {
                    end += 1;
                }
                let last = (end + 1).min(b.points.len() - 1);
                let pts: Vec<[f64; 2]> = (start..=last)
                    .map(|i| [b.tau[i], self.amp.of(b.points[i].x)])
                    .collect();
                if pts.len() == 1 {
                    let p = (pts[0][0], pts[0][1]);
                    chart
                        .plotting_area()
                        .draw(&Circle::new(p, 3, col.filled()))
                        .drawn()?;
                } else {
                    draw_polyline(&chart, &pts, col.stroke_width(3), !stable)?;
                }
                start = end + 1;
            }
        }
        let plot = chart.plotting_area();
        for bf in &c.bifurcations {
            let p = (bf.tau, self.amp.of(bf.x));
            plot.draw(&Cross::new(p, 7, BIF_COLOUR.stroke_width(3)))
                .drawn()?;
        }
        let entries = vec![
            (Glyph::Line(canvas::GREY, 3, false), "stable".to_string()),
            (Glyph::Line(canvas::GREY, 3, true), "unstable".to_string()),
            (Glyph::Cross(BIF_COLOUR), "bifurcation".to_string()),
        ];
        legend(&right, 6, 60, &entries)?;
        right
            .draw(&Text::new(
                "colour: branch".to_string(),
                (10, 60 + 3 * 22 + 10),
                canvas::font(14),
            ))
            .drawn()?;
        Ok(())
    }
}

/// Continuation diagram: `amp` of every fixed point against tau, stable solid, unstable
/// dashed, each branch its own colour, bifurcations as crosses. Writes `stem.svg/.png`,
/// `stem.csv` (branch, tau, x1, x2, amplitude, stable) and `stem.json` (the [`Continuation`]).
pub fn render_continuation(
    c: &Continuation,
    amp: Amplitude,
    title: &str,
    tau_label: &str,
    amp_label: &str,
    out: &Output,
) -> Result<Vec<std::path::PathBuf>> {
    if c.tau.is_empty() {
        return Err(Error::Requirement(format!(
            "continuation `{title}`: no tau values"
        )));
    }
    let fig = ContinuationFigure {
        c,
        amp,
        title,
        tau_label,
        amp_label,
    };
    let csv = crate::io::csv(
        &["branch", "tau", "x1", "x2", "amplitude", "stable"],
        c.branches.iter().enumerate().flat_map(|(k, b)| {
            b.tau.iter().zip(&b.points).map(move |(t, p)| {
                vec![
                    k as f64,
                    *t,
                    p.x[0],
                    p.x[1],
                    amp.of(p.x),
                    p.kind.is_stable() as u8 as f64,
                ]
            })
        }),
    );
    let json = canvas::figure_json(
        out,
        "continuation",
        title,
        &serde_json::json!({ "amplitude": amp, "continuation": c }),
    )?;
    canvas::write_figure(&fig, out, &[(".csv", csv), (".json", json)])
}

struct PathFigure<'a> {
    c: &'a Continuation,
    title: &'a str,
    labels: [&'a str; 2],
    tau_label: &'a str,
    markers: RefCell<usize>,
}

impl Figure for PathFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (980, 780)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let c = self.c;
        let (left, right) = root.split_horizontally(980 - 230);
        let chart = frame(
            &left,
            self.title,
            self.labels[0],
            self.labels[1],
            c.lo[0]..c.hi[0],
            c.lo[1]..c.hi[1],
            (Axis::Linear, Axis::Linear),
            false,
        )?;
        let scale = ColourScale::from_values(c.tau.iter().copied(), false);
        for b in &c.branches {
            let pts: Vec<[f64; 2]> = b.points.iter().map(|p| p.x).collect();
            draw_polyline(&chart, &pts, canvas::LIGHT_GREY.stroke_width(2), false)?;
        }
        let plot = chart.plotting_area();
        for b in &c.branches {
            for (t, p) in b.tau.iter().zip(&b.points) {
                let col = scale.colour(*t);
                let q = (p.x[0], p.x[1]);
                if p.kind.is_stable() {
                    plot.draw(&Circle::new(q, 4, col.filled())).drawn()?;
                } else {
                    plot.draw(&Circle::new(q, 4, col.stroke_width(2))).drawn()?;
                }
            }
        }
        // final fixed points by type, as in the phase portraits
        let screen = plot.strip_coord_spec();
        let base = plot.get_base_pixel();
        let mut n = 0;
        if let Some(last) = c.fixed_points.last() {
            for fp in last {
                let p = chart.backend_coord(&(fp.x[0], fp.x[1]));
                draw_marker(&screen, (p.0 - base.0, p.1 - base.1), fp.kind, MARKER)?;
                n += 1;
            }
        }
        *self.markers.borrow_mut() = n;
        for bf in &c.bifurcations {
            plot.draw(&Cross::new(
                (bf.x[0], bf.x[1]),
                7,
                BIF_COLOUR.stroke_width(3),
            ))
            .drawn()?;
        }
        let mut entries = vec![
            (Glyph::Dot(canvas::GREY), "stable (filled)".to_string()),
            (
                Glyph::Line(canvas::GREY, 2, false),
                "unstable (ring)".to_string(),
            ),
            (Glyph::Cross(BIF_COLOUR), "bifurcation".to_string()),
        ];
        let mut kinds: Vec<FixedPointType> = c
            .fixed_points
            .last()
            .map(|l| l.iter().map(|f| f.kind).collect())
            .unwrap_or_default();
        kinds.sort_by_key(|k| *k as u8);
        kinds.dedup();
        for k in kinds {
            entries.push((Glyph::Marker(k), format!("{} (final)", k.label())));
        }
        let used = legend(&right, 6, 60, &entries)?;
        let (_, bar) = right.split_vertically(60 + used + 30);
        let (bar, _) = bar.split_vertically(360);
        colour_bar(&bar, &scale, self.tau_label)?;
        Ok(())
    }
}

/// The path of the fixed points in the plane over tau: positions coloured by tau (filled
/// stable, rings unstable), branches joined by grey lines, final fixed points marked by type,
/// bifurcations as crosses. Writes `stem.svg/.png`, `stem.csv` (branch, tau, x1, x2, stable)
/// and `stem.json`. Returns the paths and the number of final-type markers drawn.
pub fn render_path(
    c: &Continuation,
    title: &str,
    labels: [&str; 2],
    tau_label: &str,
    out: &Output,
) -> Result<(Vec<std::path::PathBuf>, usize)> {
    if c.tau.is_empty() {
        return Err(Error::Requirement(format!(
            "fixed-point path `{title}`: no tau values"
        )));
    }
    let fig = PathFigure {
        c,
        title,
        labels,
        tau_label,
        markers: RefCell::new(0),
    };
    let csv = crate::io::csv(
        &["branch", "tau", "x1", "x2", "stable"],
        c.branches.iter().enumerate().flat_map(|(k, b)| {
            b.tau.iter().zip(&b.points).map(move |(t, p)| {
                vec![
                    k as f64,
                    *t,
                    p.x[0],
                    p.x[1],
                    p.kind.is_stable() as u8 as f64,
                ]
            })
        }),
    );
    let json = canvas::figure_json(out, "fixed_point_path", title, c)?;
    let files = canvas::write_figure(&fig, out, &[(".csv", csv), (".json", json)])?;
    let n = fig.markers.take();
    Ok((files, n))
}

/// The four entries of a 2x2 matrix M over tau (`[m11, m12, m21, m22]` row-major), one line
/// each, labelled `{symbol}_11` etc.
pub fn render_matrix_series(
    series: &[(f64, [f64; 4])],
    symbol: &str,
    title: &str,
    tau_label: &str,
    out: &Output,
) -> Result<lines::LineResult> {
    let names = ["11", "12", "21", "22"];
    let s: Vec<Series> = (0..4)
        .map(|k| {
            Series::new(
                &format!("{symbol}_{}", names[k]),
                series.iter().map(|(t, m)| [*t, m[k]]).collect(),
                Mark::Line,
            )
        })
        .collect();
    lines::render(&s, &LineSpec::new(title, tau_label, symbol), out)
}

/// The learning portrait set written by one call.
#[derive(Debug, Clone, Serialize)]
pub struct LearningSet {
    pub strip: StripResult,
    pub continuation: Continuation,
    /// Final-time fixed-point markers drawn on the path figure.
    pub path_markers: usize,
    pub files: Vec<std::path::PathBuf>,
}

/// Everything about a flow that changes over learning time, in one call: the strip of
/// portraits at `strip_tau` (`{stem}_strip`), and, from fixed points tracked over `tau`,
/// the path in the plane (`{stem}_path`) and the continuation diagram
/// (`{stem}_continuation`, amplitude `amp`). Axis labels come from `spec.labels`; tracking
/// uses `spec.fixed_point_grid` and matches fixed points within 10% of the box diagonal.
#[allow(clippy::too_many_arguments)]
pub fn render_learning_set<F: PlanarFlow>(
    flow: impl Fn(f64) -> F,
    tau: &[f64],
    strip_tau: &[f64],
    spec: &PhaseSpec,
    title: &str,
    tau_symbol: &str,
    amp: Amplitude,
    out: &Output,
) -> Result<LearningSet> {
    let flows: Vec<F> = strip_tau.iter().map(|&t| flow(t)).collect();
    let snaps: Vec<(f64, &dyn PlanarFlow)> = strip_tau
        .iter()
        .zip(&flows)
        .map(|(&t, f)| (t, f as &dyn PlanarFlow))
        .collect();
    let mut strip_spec = spec.clone();
    strip_spec.arrows = strip_spec.arrows.min(20);
    let strip = render_strip(
        &snaps,
        &strip_spec,
        &format!("{title}: phase portraits over learning"),
        tau_symbol,
        4,
        &out.sibling(format!("{}_strip", out.stem)),
    )?;
    let continuation = track(tau, &flow, spec.lo, spec.hi, spec.fixed_point_grid, 0.1)?;
    let [l1, l2] = [spec.labels[0].as_str(), spec.labels[1].as_str()];
    let (path_files, path_markers) = render_path(
        &continuation,
        &format!("{title}: fixed points over learning"),
        [l1, l2],
        tau_symbol,
        &out.sibling(format!("{}_path", out.stem)),
    )?;
    let amp_label = match amp {
        Amplitude::Norm => format!("|({l1}, {l2})*|"),
        Amplitude::First => format!("{l1}*"),
        Amplitude::Second => format!("{l2}*"),
    };
    let cont_files = render_continuation(
        &continuation,
        amp,
        &format!("{title}: continuation over learning"),
        tau_symbol,
        &amp_label,
        &out.sibling(format!("{}_continuation", out.stem)),
    )?;
    let mut files = strip.files.clone();
    files.extend(path_files);
    files.extend(cont_files);
    Ok(LearningSet {
        strip,
        continuation,
        path_markers,
        files,
    })
}
