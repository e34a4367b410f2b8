//! Learning portraits: how a planar flow changes over learning time tau.
//!
//! - [`render_strip`]: a strip of phase portraits at chosen tau (e.g. the A fixed point rotating
//!   or a new one forming while task B is learned), on one speed colour scale;
//! - [`continue_over_learning`]: fixed points over tau by arclength continuation
//!   ([`crate::num::continuation`]) with folds, pitchforks and Hopf points located, and
//!   [`strip_times`]: snapshots at and around those events;
//! - [`render_path`]: the fixed points' path in the plane over tau;
//! - [`render_continuation`]: both coordinates of every branch vs tau, stable solid, unstable
//!   dashed, events marked by kind, a colour key of the branches;
//! - [`render_matrix_series`]: the entries of a 2x2 matrix M over tau.

use std::cell::RefCell;

use nalgebra::{Matrix2, Vector2};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use super::canvas::{self, colour_bar, series_colour, ColourScale, Drawn, Figure, Output};
use super::lines::{self, LineSpec, Mark, Series};
use super::phase::{self, PhaseData, PhaseSpec, Target};
use super::{draw_marker, draw_polyline, frame, legend, Axis, Glyph, MARKER};
use crate::num::continuation::{
    continue_branches, Branch, ContinuationOptions, Diagram, EventKind, FlowFamily,
};
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
const SIDE: u32 = 290;

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
        let (grid, _) = grid.split_vertically(rows as i32 * PANEL.1 as i32);
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
        let used = legend(&side, 6, 20, &entries)?;
        if let Some(d) = self.panels.first().filter(|d| !d.arrows.is_empty()) {
            let (_, bar) = side.split_vertically(20 + used + 20);
            let (bar, _) = bar.split_vertically(220);
            colour_bar(&bar, &d.speed_scale, "speed |F|")?;
        }
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
/// panels; every panel uses `spec` (same box; keep `spec.arrows` <= 20 for readability) and
/// one speed colour scale (shown beside the legend). Panel titles read
/// `"{tau_symbol} = {tau} ({note})"` (`notes` may be shorter than the snapshots, or empty).
pub fn render_strip(
    snapshots: &[(f64, &dyn PlanarFlow)],
    notes: &[String],
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
    phase::share_speed_scale(&mut panels);
    let range = snapshots.iter().map(|s| s.0.abs()).fold(0.0, f64::max);
    let titles = snapshots
        .iter()
        .enumerate()
        .map(|(k, (t, _))| match notes.get(k).filter(|n| !n.is_empty()) {
            Some(n) => format!("{tau_symbol} = {} ({n})", canvas::tick(snap(*t, range))),
            None => format!("{tau_symbol} = {}", canvas::tick(snap(*t, range))),
        })
        .collect();
    // at least 600 high: the side column holds the legend and the speed colour bar
    let size = (
        cols as u32 * PANEL.0 + SIDE,
        (rows as u32 * PANEL.1 + 44).max(600),
    );
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

/// Fixed points of a family of flows over learning time, continued by arclength
/// ([`crate::num::continuation`]), with the located bifurcations.
#[derive(Debug, Clone, Serialize)]
pub struct LearningDiagram {
    pub tau_range: (f64, f64),
    pub lo: [f64; 2],
    pub hi: [f64; 2],
    /// Learning times at which fixed points were searched to seed the branches.
    pub seed_tau: Vec<f64>,
    pub diagram: Diagram,
    /// The fixed points at the end of learning (box search), drawn by type on the path.
    pub final_points: Vec<FixedPoint>,
}

impl LearningDiagram {
    /// Learning times of the located events, in order, closer ones than 1e-6 of the range
    /// merged (a pitchfork found on both of its branches is one event).
    pub fn event_tau(&self) -> Vec<(f64, String)> {
        let w = (self.tau_range.1 - self.tau_range.0).abs();
        let mut out: Vec<(f64, String)> = Vec::new();
        for e in &self.diagram.events {
            match out.iter_mut().find(|(t, _)| (t - e.p).abs() <= 1e-6 * w) {
                Some((_, l)) => {
                    if !l.contains(e.kind.label()) {
                        l.push_str(&format!(", {}", e.kind.label()));
                    }
                }
                None => out.push((e.p, e.kind.label().to_string())),
            }
        }
        out
    }
}

/// Seeds: fixed points of `flow(tau)` in the box at `seed_tau` (grid seeding + Newton); then
/// every branch through them continued over `tau_range` within the box, with branch
/// switching at branch points. See [`continue_branches`] for the numerics.
pub fn continue_over_learning<F: PlanarFlow>(
    flow: impl Fn(f64) -> F + Sync,
    tau_range: (f64, f64),
    seed_tau: &[f64],
    lo: [f64; 2],
    hi: [f64; 2],
    grid: usize,
) -> Result<LearningDiagram> {
    if !(tau_range.0.is_finite() && tau_range.1.is_finite() && tau_range.0 < tau_range.1) {
        return Err(Error::Requirement(format!(
            "continuation over learning: tau range [{}, {}] must be finite and increasing",
            tau_range.0, tau_range.1
        )));
    }
    let mut seeds = Vec::new();
    for &t in seed_tau {
        for fp in fixed_points_in_box(&flow(t), lo, hi, grid) {
            seeds.push((fp.vector(), t));
        }
    }
    let final_points = fixed_points_in_box(&flow(tau_range.1), lo, hi, grid);
    let fam = FlowFamily(flow);
    let diagram = continue_branches(&fam, &seeds, &ContinuationOptions::new(tau_range, lo, hi))?;
    Ok(LearningDiagram {
        tau_range,
        lo,
        hi,
        seed_tau: seed_tau.to_vec(),
        diagram,
        final_points,
    })
}

/// Strip snapshot times: the ends of the range, every event, and the midpoints between
/// consecutive ones (before and after each event), at most `max` (midpoints dropped first,
/// from the widest gaps kept). Returns (tau, note) with the note naming the event.
pub fn strip_times(d: &LearningDiagram, max: usize) -> Vec<(f64, String)> {
    let (t0, t1) = d.tau_range;
    let w = t1 - t0;
    let mut key: Vec<(f64, String)> = vec![(t0, "start".into())];
    for (t, l) in d.event_tau() {
        if t - t0 > 1e-3 * w && t1 - t > 1e-3 * w {
            key.push((t, l));
        } else if t - t0 <= 1e-3 * w {
            key[0].1 = l;
        } else {
            key.push((t1, l));
        }
    }
    if key.last().is_none_or(|k| k.0 < t1) {
        key.push((t1, "end".into()));
    }
    let key: Vec<(f64, String)> = key.into_iter().take(max.max(2)).collect();
    let mut mids: Vec<(f64, f64)> = key
        .windows(2)
        .map(|w| (w[1].0 - w[0].0, 0.5 * (w[0].0 + w[1].0)))
        .collect();
    mids.sort_by(|a, b| b.0.total_cmp(&a.0));
    let room = max.saturating_sub(key.len());
    let mut out = key;
    out.extend(mids.into_iter().take(room).map(|(_, t)| (t, String::new())));
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// Marker of an event kind in the diagrams: fold = cross, branch point = diamond,
/// Hopf = triangle.
fn event_glyph(k: &EventKind) -> Glyph {
    match k {
        EventKind::Fold => Glyph::Cross(BIF_COLOUR),
        EventKind::BranchPoint { .. } => Glyph::Diamond(BIF_COLOUR),
        EventKind::Hopf { .. } => Glyph::Triangle(BIF_COLOUR),
    }
}

fn draw_event<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: (i32, i32),
    k: &EventKind,
) -> Result<()> {
    match event_glyph(k) {
        Glyph::Cross(col) => {
            area.draw(&Cross::new(c, 7, col.stroke_width(3))).drawn()?;
        }
        Glyph::Diamond(col) => super::phase::draw_diamond(area, c, 9, col)?,
        Glyph::Triangle(col) => {
            area.draw(&TriangleMarker::new(c, 8, col.filled()))
                .drawn()?;
        }
        _ => {}
    }
    Ok(())
}

/// Legend entries for the event kinds that occur.
fn event_entries(d: &Diagram) -> Vec<(Glyph, String)> {
    let mut out: Vec<(Glyph, String)> = Vec::new();
    for e in &d.events {
        let label = match e.kind {
            EventKind::Fold => "fold (saddle–node)".to_string(),
            EventKind::BranchPoint { pitchfork: true } => "pitchfork".to_string(),
            EventKind::BranchPoint { pitchfork: false } => "transcritical".to_string(),
            EventKind::Hopf { .. } => "Hopf".to_string(),
        };
        if !out.iter().any(|(_, l)| *l == label) {
            out.push((event_glyph(&e.kind), label));
        }
    }
    out
}

/// A short description of a branch for the colour key: "origin" for a branch on x = 0;
/// "born at tau = .. (event)" for one that starts at an event; else its point at the start.
fn branch_label(k: usize, b: &Branch, d: &LearningDiagram) -> String {
    let scale = d.hi[0]
        .abs()
        .max(d.lo[0].abs())
        .max(d.hi[1].abs())
        .max(d.lo[1].abs());
    if b.points
        .iter()
        .all(|q| q.point.x[0].abs().max(q.point.x[1].abs()) <= 1e-9 * scale)
    {
        return "origin".into();
    }
    let first = b
        .points
        .iter()
        .min_by(|a, c| a.p.total_cmp(&c.p))
        .expect("a branch has points");
    let w = d.tau_range.1 - d.tau_range.0;
    if let Some(e) = d
        .diagram
        .events
        .iter()
        // a branch through an event that starts there (within the step that passed over it)
        .find(|e| e.branches.contains(&k) && (e.p - first.p).abs() <= 1e-3 * w)
    {
        return format!(
            "born at {} ({})",
            canvas::sig3(snap(e.p, w)),
            e.kind.label()
        );
    }
    format!(
        "({}, {}) at {}",
        canvas::sig3(first.point.x[0]),
        canvas::sig3(first.point.x[1]),
        canvas::sig3(first.p)
    )
}

/// A learning time at rounding distance from 0 (a located event at 1e-10 of a range of 1)
/// reads 0.
fn snap(t: f64, range: f64) -> f64 {
    if t.abs() <= 1e-8 * range.abs() {
        0.0
    } else {
        t
    }
}

/// Pieces of a branch of equal stability (consecutive pieces share their boundary point).
fn stability_runs(b: &Branch) -> Vec<(bool, std::ops::RangeInclusive<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < b.points.len() {
        let stable = b.points[start].point.kind.is_stable();
        let mut end = start;
        while end + 1 < b.points.len() && b.points[end + 1].point.kind.is_stable() == stable {
            end += 1;
        }
        out.push((stable, start..=(end + 1).min(b.points.len() - 1)));
        start = end + 1;
    }
    out
}

const BIF_COLOUR: RGBColor = canvas::BLACK_OI;

/// A value axis that does not autoscale to rounding noise: the data range, widened to at
/// least a tenth of the box side `box_w` (a branch at x = 0 to 1e-17 is drawn at 0 in a
/// readable range, not as structure at 1e-17).
fn value_range(vals: impl Iterator<Item = f64>, box_w: f64) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (-0.5 * box_w, 0.5 * box_w);
    }
    let min_span = 0.1 * box_w;
    if hi - lo < min_span {
        let c = 0.5 * (lo + hi);
        (lo, hi) = (c - 0.5 * min_span, c + 0.5 * min_span);
    }
    let pad = 0.08 * (hi - lo);
    lo - pad..hi + pad
}

struct ContinuationFigure<'a> {
    d: &'a LearningDiagram,
    title: &'a str,
    tau_label: &'a str,
    labels: [&'a str; 2],
    targets: &'a [Target],
}

const CONT_SIZE: (u32, u32) = (1000, 860);

impl Figure for ContinuationFigure<'_> {
    fn size(&self) -> (u32, u32) {
        CONT_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.d;
        let (left, right) = root.split_horizontally(CONT_SIZE.0 as i32 - 270);
        let (head, body) = left.split_vertically(40);
        head.draw(&Text::new(
            self.title.to_string(),
            (14, 8),
            canvas::font(20),
        ))
        .drawn()?;
        let panels = body.split_evenly((2, 1));
        let (t0, t1) = d.tau_range;
        for (c, area) in panels.iter().enumerate() {
            let box_w = d.hi[c] - d.lo[c];
            let yr = value_range(
                d.diagram
                    .branches
                    .iter()
                    .flat_map(|b| b.points.iter().map(move |q| q.point.x[c]))
                    .chain(self.targets.iter().map(|t| t.x[c])),
                box_w,
            );
            let chart = frame(
                area,
                "",
                self.tau_label,
                &format!("{}*", self.labels[c]),
                t0..t1,
                yr,
                (Axis::Linear, Axis::Linear),
                false,
            )?;
            for t in self
                .targets
                .iter()
                .filter(|t| t.line.is_none_or(|l| l == c))
            {
                draw_polyline(
                    &chart,
                    &[[t0, t.x[c]], [t1, t.x[c]]],
                    super::phase::TARGET_COLOUR.stroke_width(2),
                    true,
                )?;
            }
            for (k, b) in d.diagram.branches.iter().enumerate() {
                let col = series_colour(k);
                for (stable, r) in stability_runs(b) {
                    let pts: Vec<[f64; 2]> =
                        r.map(|i| [b.points[i].p, b.points[i].point.x[c]]).collect();
                    if pts.len() == 1 {
                        chart
                            .plotting_area()
                            .draw(&Circle::new((pts[0][0], pts[0][1]), 3, col.filled()))
                            .drawn()?;
                    } else {
                        draw_polyline(&chart, &pts, col.stroke_width(3), !stable)?;
                    }
                }
            }
            let plot = chart.plotting_area();
            let screen = plot.strip_coord_spec();
            let base = plot.get_base_pixel();
            for e in &d.diagram.events {
                let p = chart.backend_coord(&(e.p, e.x[c]));
                draw_event(&screen, (p.0 - base.0, p.1 - base.1), &e.kind)?;
            }
        }
        self.draw_legend(&right)
    }
}

impl ContinuationFigure<'_> {
    /// The legend: stability, events, targets, then one colour per branch.
    fn draw_legend<DB: DrawingBackend>(&self, right: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.d;
        let mut entries = Vec::new();
        let any = |s: bool| {
            d.diagram
                .branches
                .iter()
                .any(|b| b.points.iter().any(|q| q.point.kind.is_stable() == s))
        };
        if any(true) {
            entries.push((Glyph::Line(canvas::GREY, 3, false), "stable".to_string()));
        }
        if any(false) {
            entries.push((Glyph::Line(canvas::GREY, 3, true), "unstable".to_string()));
        }
        entries.extend(event_entries(&d.diagram));
        for (_, l) in phase::target_entries(self.targets) {
            entries.push((Glyph::Line(super::phase::TARGET_COLOUR, 2, true), l));
        }
        let used = legend(right, 6, 50, &entries)?;
        let key: Vec<(Glyph, String)> = d
            .diagram
            .branches
            .iter()
            .enumerate()
            .map(|(k, b)| {
                (
                    Glyph::Line(series_colour(k), 3, false),
                    format!("{}: {}", k + 1, branch_label(k, b, d)),
                )
            })
            .collect();
        right
            .draw(&Text::new(
                "colour = branch (τ where it starts):".to_string(),
                (6, 50 + used + 14),
                canvas::font(14),
            ))
            .drawn()?;
        legend(right, 6, 50 + used + 36, &key)?;
        Ok(())
    }
}

/// CSV of the branches: branch, tau, x1, x2, stable (0/1), type.
fn branches_csv(d: &Diagram) -> String {
    let mut s = String::from("branch,tau,x1,x2,stable,type\n");
    for (k, b) in d.branches.iter().enumerate() {
        for q in &b.points {
            s.push_str(&format!(
                "{},{:e},{:e},{:e},{},{}\n",
                k + 1,
                q.p,
                q.point.x[0],
                q.point.x[1],
                q.point.kind.is_stable() as u8,
                q.point.kind.label()
            ));
        }
    }
    s
}

/// Continuation diagram: both coordinates of every branch against tau (two panels), stable
/// solid, unstable dashed, one colour per branch with a key, events marked by kind, targets
/// as dotted lines. Writes `stem.svg/.png`, `stem.csv` (branch, tau, x1, x2, stable, type) and
/// `stem.json` (the [`LearningDiagram`]).
pub fn render_continuation(
    d: &LearningDiagram,
    title: &str,
    tau_label: &str,
    labels: [&str; 2],
    targets: &[Target],
    out: &Output,
) -> Result<Vec<std::path::PathBuf>> {
    let fig = ContinuationFigure {
        d,
        title,
        tau_label,
        labels,
        targets,
    };
    let json = canvas::figure_json(
        out,
        "continuation",
        title,
        &serde_json::json!({ "diagram": d, "targets": targets }),
    )?;
    canvas::write_figure(
        &fig,
        out,
        &[(".csv", branches_csv(&d.diagram)), (".json", json)],
    )
}

struct PathFigure<'a> {
    d: &'a LearningDiagram,
    title: &'a str,
    labels: [&'a str; 2],
    tau_label: &'a str,
    targets: &'a [Target],
    markers: RefCell<usize>,
}

impl Figure for PathFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 780)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.d;
        let (left, right) = root.split_horizontally(1000 - 250);
        let chart = frame(
            &left,
            self.title,
            self.labels[0],
            self.labels[1],
            d.lo[0]..d.hi[0],
            d.lo[1]..d.hi[1],
            (Axis::Linear, Axis::Linear),
            false,
        )?;
        let scale = ColourScale::from_values([d.tau_range.0, d.tau_range.1], false);
        for b in &d.diagram.branches {
            for (stable, r) in stability_runs(b) {
                let idx: Vec<usize> = r.collect();
                for w in idx.windows(2) {
                    let (p, q) = (&b.points[w[0]], &b.points[w[1]]);
                    let col = scale.colour(0.5 * (p.p + q.p));
                    draw_polyline(
                        &chart,
                        &[p.point.x, q.point.x],
                        col.stroke_width(if stable { 4 } else { 2 }),
                        !stable,
                    )?;
                }
            }
        }
        let plot = chart.plotting_area();
        let screen = plot.strip_coord_spec();
        let base = plot.get_base_pixel();
        let px = |x: [f64; 2]| {
            let p = chart.backend_coord(&(x[0], x[1]));
            (p.0 - base.0, p.1 - base.1)
        };
        let mut n = 0;
        for fp in &d.final_points {
            draw_marker(&screen, px(fp.x), fp.kind, MARKER)?;
            n += 1;
        }
        *self.markers.borrow_mut() = n;
        for e in &d.diagram.events {
            draw_event(&screen, px(e.x), &e.kind)?;
        }
        phase::draw_targets(&chart, self.targets)?;
        let mut entries = Vec::new();
        let any = |s: bool| {
            d.diagram
                .branches
                .iter()
                .any(|b| b.points.iter().any(|q| q.point.kind.is_stable() == s))
        };
        if any(true) {
            entries.push((
                Glyph::Line(canvas::GREY, 4, false),
                "stable branch".to_string(),
            ));
        }
        if any(false) {
            entries.push((
                Glyph::Line(canvas::GREY, 2, true),
                "unstable branch".to_string(),
            ));
        }
        entries.extend(event_entries(&d.diagram));
        let mut kinds: Vec<FixedPointType> = d.final_points.iter().map(|f| f.kind).collect();
        kinds.sort_by_key(|k| *k as u8);
        kinds.dedup();
        for k in kinds {
            entries.push((Glyph::Marker(k), format!("{} (end)", k.label())));
        }
        entries.extend(phase::target_entries(self.targets));
        let used = legend(&right, 6, 60, &entries)?;
        let (_, bar) = right.split_vertically(60 + used + 30);
        let (bar, _) = bar.split_vertically(320);
        colour_bar(&bar, &scale, &format!("learning time {}", self.tau_label))?;
        Ok(())
    }
}

/// The path of the fixed points in the plane over tau: every branch coloured by tau (stable
/// thick solid, unstable thin dashed), the end-of-learning fixed points marked by type,
/// events by kind, targets as diamonds. Writes `stem.svg/.png`, `stem.csv` and `stem.json`.
/// Returns the paths and the number of end-of-learning markers drawn.
pub fn render_path(
    d: &LearningDiagram,
    title: &str,
    labels: [&str; 2],
    tau_label: &str,
    targets: &[Target],
    out: &Output,
) -> Result<(Vec<std::path::PathBuf>, usize)> {
    let fig = PathFigure {
        d,
        title,
        labels,
        tau_label,
        targets,
        markers: RefCell::new(0),
    };
    let json = canvas::figure_json(out, "fixed_point_path", title, d)?;
    let files = canvas::write_figure(
        &fig,
        out,
        &[(".csv", branches_csv(&d.diagram)), (".json", json)],
    )?;
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
    pub diagram: LearningDiagram,
    /// End-of-learning fixed-point markers drawn on the path figure.
    pub path_markers: usize,
    pub files: Vec<std::path::PathBuf>,
}

/// Most panels in a learning strip (two rows of four).
pub const STRIP_MAX: usize = 8;

/// Everything about a flow that changes over learning time, in one call: fixed points
/// continued over `tau_range` from seeds at `seed_tau` ([`continue_over_learning`]); the
/// path in the plane (`{stem}_path`); the continuation diagram (`{stem}_continuation`); and
/// the strip of portraits (`{stem}_strip`) at the start, at every located bifurcation, between
/// them and at the end ([`strip_times`]), all panels on one speed colour scale. Axis labels,
/// box, fixed-point grid and targets come from `spec`.
pub fn render_learning_set<F: PlanarFlow>(
    flow: impl Fn(f64) -> F + Sync,
    tau_range: (f64, f64),
    seed_tau: &[f64],
    spec: &PhaseSpec,
    title: &str,
    tau_symbol: &str,
    out: &Output,
) -> Result<LearningSet> {
    let diagram = continue_over_learning(
        &flow,
        tau_range,
        seed_tau,
        spec.lo,
        spec.hi,
        spec.fixed_point_grid,
    )?;
    let times = strip_times(&diagram, STRIP_MAX);
    let flows: Vec<F> = times.iter().map(|(t, _)| flow(*t)).collect();
    let snaps: Vec<(f64, &dyn PlanarFlow)> = times
        .iter()
        .zip(&flows)
        .map(|((t, _), f)| (*t, f as &dyn PlanarFlow))
        .collect();
    let notes: Vec<String> = times.iter().map(|(_, n)| n.clone()).collect();
    let mut strip_spec = spec.clone();
    strip_spec.arrows = strip_spec.arrows.min(20);
    let strip = render_strip(
        &snaps,
        &notes,
        &strip_spec,
        &format!("{title}: phase portraits over learning"),
        tau_symbol,
        4,
        &out.sibling(format!("{}_strip", out.stem)),
    )?;
    let [l1, l2] = [spec.labels[0].as_str(), spec.labels[1].as_str()];
    let (path_files, path_markers) = render_path(
        &diagram,
        &format!("{title}: fixed points over learning"),
        [l1, l2],
        tau_symbol,
        &spec.targets,
        &out.sibling(format!("{}_path", out.stem)),
    )?;
    let cont_files = render_continuation(
        &diagram,
        &format!("{title}: continuation over learning"),
        tau_symbol,
        [l1, l2],
        &spec.targets,
        &out.sibling(format!("{}_continuation", out.stem)),
    )?;
    let mut files = strip.files.clone();
    files.extend(path_files);
    files.extend(cont_files);
    Ok(LearningSet {
        strip,
        diagram,
        path_markers,
        files,
    })
}
