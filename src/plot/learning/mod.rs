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

mod continuation;
mod path;
pub use {continuation::*, path::*};

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
