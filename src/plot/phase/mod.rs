//! Phase portraits of any planar flow `x' = F(x)` (pplane/XPPAUT style): direction field
//! coloured by speed |F|, nullclines (every branch), fixed points by type with eigenvector
//! directions, stable/unstable manifolds of saddles, sample trajectories forward and backward,
//! optional basins of attraction and linearisation overlay.
//!
//! [`compute`] does the numerics and returns a [`PhaseData`] (what will be drawn);
//! [`render`] computes, draws and writes `stem.svg`, `stem.png`, `stem.json` (everything drawn)
//! and `stem_nullclines.csv` (branch, component, x, y).

use std::cell::Cell;

use nalgebra::Vector2;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use super::canvas::{self, colour_bar, ColourScale, Drawn, Figure, Output};
use super::{draw_marker, draw_polyline, frame, legend, px_scale, Axis, Chart, Glyph, MARKER};
use crate::num::eig2::FixedPointType;
use crate::num::planar::manifolds::{self, Basins, Manifold, Orbit};
use crate::num::planar::nullclines::{nullclines, Branch};
use crate::num::planar::{fixed_points_in_box, FixedPoint, PlanarFlow};
use crate::{Error, Result};

mod draw;
pub use draw::*;

/// What to draw and how finely.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSpec {
    /// Lower-left corner of the box.
    pub lo: [f64; 2],
    /// Upper-right corner of the box.
    pub hi: [f64; 2],
    /// Arrows per side of the direction field (0: none).
    pub arrows: usize,
    /// Cells per side of the marching-squares grid for the nullclines (0: no nullclines).
    pub nullcline_grid: usize,
    /// Newton starts per side for the fixed-point search.
    pub fixed_point_grid: usize,
    /// Number of sample trajectories from quasi-random (Halton) starts in the box.
    pub trajectories: usize,
    /// Additional explicit trajectory starts.
    pub starts: Vec<[f64; 2]>,
    /// Time limit of each trajectory (forward and backward).
    pub t_max: f64,
    /// Draw the stable and unstable manifolds of saddles.
    pub manifolds: bool,
    /// Draw the eigenvector directions at fixed points with real eigenvalues.
    pub eigenvectors: bool,
    /// Shade basins of attraction on an `n x n` grid of starts.
    pub basins: Option<usize>,
    /// Overlay orbits of the linearised flow near each fixed point.
    pub linearisation: bool,
    /// Axis labels (symbols), e.g. `["κ_a", "κ_b"]`.
    pub labels: [String; 2],
    /// Image size in pixels.
    pub size: (u32, u32),
    /// Targets marked in the plane (e.g. the attractor task A is trained towards), so that a
    /// fixed point leaving its target is visible.
    pub targets: Vec<Target>,
}

/// A target: a point (open diamond) or, with `line = Some(c)`, the line `x_c = x[c]` (dotted),
/// e.g. the readout target kappa_a = zhat.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub x: [f64; 2],
    pub line: Option<usize>,
    /// Legend text (targets with the same label share one entry).
    pub label: String,
}

impl Target {
    pub fn point(x: [f64; 2], label: &str) -> Self {
        Target {
            x,
            line: None,
            label: label.into(),
        }
    }
    /// The line x_c = v.
    pub fn line(c: usize, v: f64, label: &str) -> Self {
        let mut x = [0.0; 2];
        x[c] = v;
        Target {
            x,
            line: Some(c),
            label: label.into(),
        }
    }
    /// Its legend glyph.
    pub(crate) fn glyph(&self) -> Glyph {
        match self.line {
            Some(_) => Glyph::Line(TARGET_COLOUR, 2, true),
            None => Glyph::Diamond(TARGET_COLOUR),
        }
    }
}

/// Legend entries of targets, one per label.
pub(crate) fn target_entries(targets: &[Target]) -> Vec<(Glyph, String)> {
    let mut out: Vec<(Glyph, String)> = Vec::new();
    for t in targets {
        if !out.iter().any(|(_, l)| *l == t.label) {
            out.push((t.glyph(), t.label.clone()));
        }
    }
    out
}

/// Draw targets on a chart: lines dotted across the box, points as diamonds.
pub(crate) fn draw_targets<DB: DrawingBackend>(
    chart: &super::Chart<'_, DB>,
    targets: &[Target],
) -> Result<()> {
    let (xr, yr) = (chart.x_range(), chart.y_range());
    let plot = chart.plotting_area();
    let screen = plot.strip_coord_spec();
    let base = plot.get_base_pixel();
    for t in targets {
        match t.line {
            Some(0) => draw_polyline(
                chart,
                &[[t.x[0], yr.start], [t.x[0], yr.end]],
                TARGET_COLOUR.stroke_width(2),
                true,
            )?,
            Some(_) => draw_polyline(
                chart,
                &[[xr.start, t.x[1]], [xr.end, t.x[1]]],
                TARGET_COLOUR.stroke_width(2),
                true,
            )?,
            None => {
                if t.x[0] >= xr.start && t.x[0] <= xr.end && t.x[1] >= yr.start && t.x[1] <= yr.end
                {
                    let p = chart.backend_coord(&(t.x[0], t.x[1]));
                    draw_diamond(
                        &screen,
                        (p.0 - base.0, p.1 - base.1),
                        TARGET_MARKER,
                        TARGET_COLOUR,
                    )?;
                }
            }
        }
    }
    Ok(())
}

impl PhaseSpec {
    /// Defaults: 40x40 arrows, 240-cell nullcline grid, 21x21 Newton starts, 20 trajectories
    /// with t_max = 30, manifolds and eigenvectors on, no basins, no linearisation, 1000x800.
    pub fn new(lo: [f64; 2], hi: [f64; 2]) -> Self {
        PhaseSpec {
            lo,
            hi,
            arrows: 40,
            nullcline_grid: 240,
            fixed_point_grid: 21,
            trajectories: 20,
            starts: Vec::new(),
            t_max: 30.0,
            manifolds: true,
            eigenvectors: true,
            basins: None,
            linearisation: false,
            labels: ["x_1".into(), "x_2".into()],
            size: (1000, 800),
            targets: Vec::new(),
        }
    }

    pub fn labels(mut self, x: &str, y: &str) -> Self {
        self.labels = [x.into(), y.into()];
        self
    }

    /// Check the box, sizes and times (a `Requirement` error naming the bad field).
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Requirement(format!("phase portrait: {m}")));
        for d in 0..2 {
            if !(self.lo[d].is_finite() && self.hi[d].is_finite() && self.lo[d] < self.hi[d]) {
                return bad(format!(
                    "box must satisfy lo < hi, finite; got lo = {:?}, hi = {:?}",
                    self.lo, self.hi
                ));
            }
        }
        if !(self.t_max.is_finite() && self.t_max > 0.0) {
            return bad(format!("t_max must be finite and > 0, got {}", self.t_max));
        }
        if self.arrows > 200 || self.nullcline_grid > 4000 || self.fixed_point_grid > 400 {
            return bad("grid sizes too large (arrows <= 200, nullcline_grid <= 4000, fixed_point_grid <= 400)".into());
        }
        if self.basins.is_some_and(|n| n == 0 || n > 400) {
            return bad("basins grid must be in 1..=400".into());
        }
        canvas::check_size("phase portrait", self.size)
    }
}

/// One arrow of the direction field.
#[derive(Debug, Clone, Serialize)]
pub struct Arrow {
    pub x: [f64; 2],
    pub f: [f64; 2],
    pub speed: f64,
}

/// Everything a phase portrait shows.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseData {
    pub lo: [f64; 2],
    pub hi: [f64; 2],
    pub labels: [String; 2],
    pub arrows: Vec<Arrow>,
    /// Colour scale of the arrows (speed |F|).
    pub speed_scale: ColourScale,
    pub nullclines: Vec<Branch>,
    pub fixed_points: Vec<FixedPoint>,
    pub manifolds: Vec<Manifold>,
    pub trajectories: Vec<Orbit>,
    pub basins: Option<Basins>,
    pub linearisation: Vec<Vec<[f64; 2]>>,
    /// Orbits that could not be integrated (e.g. the flow is not finite there), with reasons.
    pub skipped: Vec<String>,
    pub targets: Vec<Target>,
}

/// Give every panel the speed colour scale spanning all of them (panels compared side by side
/// must share one colour range); log when the joint range exceeds a decade.
pub fn share_speed_scale(panels: &mut [PhaseData]) {
    if panels.is_empty() {
        return;
    }
    let lo = panels
        .iter()
        .map(|d| d.speed_scale.min)
        .fold(f64::INFINITY, f64::min);
    let hi = panels
        .iter()
        .map(|d| d.speed_scale.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let s = ColourScale::from_values([lo.max(1e-300), hi], hi > 10.0 * lo);
    for d in panels {
        d.speed_scale = s;
    }
}

/// What [`render`] drew and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub data: PhaseData,
    /// Fixed-point markers drawn in the plot (equals `data.fixed_points.len()`).
    pub markers: usize,
    pub files: Vec<std::path::PathBuf>,
}

/// Halton point `i` (i >= 1) in base `b`.
fn halton(mut i: usize, b: usize) -> f64 {
    let (mut f, mut r) = (1.0, 0.0);
    while i > 0 {
        f /= b as f64;
        r += f * (i % b) as f64;
        i /= b;
    }
    r
}

/// Trajectory starts: `n` Halton points (bases 2, 3) in the box shrunk by 5% per side.
pub fn halton_starts(lo: [f64; 2], hi: [f64; 2], n: usize) -> Vec<[f64; 2]> {
    (1..=n)
        .map(|i| {
            let (u, v) = (0.05 + 0.9 * halton(i, 2), 0.05 + 0.9 * halton(i, 3));
            [lo[0] + u * (hi[0] - lo[0]), lo[1] + v * (hi[1] - lo[1])]
        })
        .collect()
}

/// A box framing every fixed point found in the search box `[lo, hi]` (with `grid` Newton
/// starts per side): their bounding box padded by half its size on each side, each side at
/// least a fifth of the search box; the search box itself if there is no fixed point.
pub fn auto_box(
    sys: &impl PlanarFlow,
    lo: [f64; 2],
    hi: [f64; 2],
    grid: usize,
) -> ([f64; 2], [f64; 2]) {
    let fps = fixed_points_in_box(sys, lo, hi, grid);
    if fps.is_empty() {
        return (lo, hi);
    }
    let mut blo = [f64::INFINITY; 2];
    let mut bhi = [f64::NEG_INFINITY; 2];
    for fp in &fps {
        for d in 0..2 {
            blo[d] = blo[d].min(fp.x[d]);
            bhi[d] = bhi[d].max(fp.x[d]);
        }
    }
    let mut out = (blo, bhi);
    for d in 0..2 {
        let c = 0.5 * (blo[d] + bhi[d]);
        // half-width: extent/2 plus a padding of extent/2; at least a tenth of the search box
        let half = (bhi[d] - blo[d]).max(0.1 * (hi[d] - lo[d]));
        out.0[d] = c - half;
        out.1[d] = c + half;
    }
    out
}

/// Compute everything the portrait shows. Fixed points come from
/// [`fixed_points_in_box`]; orbits that fail to integrate are listed in `skipped`.
pub fn compute(sys: &impl PlanarFlow, spec: &PhaseSpec) -> Result<PhaseData> {
    spec.check()?;
    let (lo, hi) = (spec.lo, spec.hi);
    let na = spec.arrows;
    let mut arrows = Vec::with_capacity(na * na);
    for k in 0..na {
        for i in 0..na {
            let x = [
                lo[0] + (hi[0] - lo[0]) * (i as f64 + 0.5) / na as f64,
                lo[1] + (hi[1] - lo[1]) * (k as f64 + 0.5) / na as f64,
            ];
            let f = sys.flow(&Vector2::new(x[0], x[1]));
            arrows.push(Arrow {
                x,
                f: [f[0], f[1]],
                speed: f.norm(),
            });
        }
    }
    // log colour scale when the speeds span more than a decade; the floor is the 2nd
    // percentile so that the vanishing speed at a fixed point does not wash out the rest
    let mut speeds: Vec<f64> = arrows
        .iter()
        .map(|a| a.speed)
        .filter(|s| s.is_finite() && *s > 0.0)
        .collect();
    speeds.sort_by(f64::total_cmp);
    let speed_scale = if speeds.is_empty() {
        ColourScale::from_values([0.0, 1.0], false)
    } else {
        let floor = speeds[speeds.len() / 50];
        let max = speeds[speeds.len() - 1];
        let log = max > 10.0 * floor;
        ColourScale::from_values([floor, max], log)
    };
    let nulls = if spec.nullcline_grid > 0 {
        nullclines(sys, lo, hi, spec.nullcline_grid)
    } else {
        Vec::new()
    };
    let fps = fixed_points_in_box(sys, lo, hi, spec.fixed_point_grid);
    let mut skipped = Vec::new();
    let manifolds = if spec.manifolds {
        let (m, failed) = manifolds::saddle_manifolds(sys, &fps, lo, hi, spec.t_max);
        skipped.extend(failed);
        m
    } else {
        Vec::new()
    };
    let mut starts = halton_starts(lo, hi, spec.trajectories);
    starts.extend(spec.starts.iter().copied());
    let mut trajectories = Vec::new();
    for s in starts {
        let fw = manifolds::orbit(sys, s, spec.t_max, lo, hi);
        let bw = manifolds::orbit(sys, s, -spec.t_max, lo, hi);
        // keep the direction that integrated; report the one that failed (e.g. the orbit ran
        // into a region where the flow is not finite)
        let mut keep = |r: Result<Vec<[f64; 2]>>, dir: &str| match r {
            Ok(p) => p,
            Err(e) => {
                skipped.push(format!("trajectory from {s:?} {dir}: {e}"));
                Vec::new()
            }
        };
        let forward = keep(fw, "forward");
        let backward = keep(bw, "backward");
        if !forward.is_empty() || !backward.is_empty() {
            trajectories.push(Orbit {
                start: s,
                forward,
                backward,
            });
        }
    }
    let basins = spec
        .basins
        .map(|n| manifolds::basins(sys, &fps, lo, hi, n, 10.0 * spec.t_max));
    let linearisation = if spec.linearisation {
        manifolds::linearisation(sys, &fps, lo, hi, 0.06)
    } else {
        Vec::new()
    };
    Ok(PhaseData {
        lo,
        hi,
        labels: spec.labels.clone(),
        arrows,
        speed_scale,
        nullclines: nulls,
        fixed_points: fps,
        manifolds,
        trajectories,
        basins,
        linearisation,
        skipped,
        targets: spec.targets.clone(),
    })
}

// Colours of the layers (Okabe–Ito): nullclines bluish green / reddish purple (dashed),
// manifolds blue (stable) / vermillion (unstable) (solid), trajectories dark grey,
// linearisation grey dashed, targets wine diamonds or dotted lines. Nullclines and manifolds differ in
// hue and in dashing, so that an unstable manifold along a nullcline stays distinguishable.
pub(crate) const NULL_COLOURS: [RGBColor; 2] = [canvas::GREEN_OI, canvas::PURPLE];
/// Wine (Tol's palette): apart from the Okabe–Ito series, nullcline and manifold colours.
pub(crate) const TARGET_COLOUR: RGBColor = RGBColor(136, 34, 85);
pub(crate) const LIN_COLOUR: RGBColor = canvas::GREY;
pub(crate) const STABLE_COLOUR: RGBColor = canvas::BLUE_OI;
pub(crate) const UNSTABLE_COLOUR: RGBColor = canvas::VERMILLION;
pub(crate) const TRAJ_COLOUR: RGBColor = RGBColor(70, 70, 70);
pub(crate) const BASIN_COLOURS: [RGBColor; 5] = [
    canvas::SKY,
    canvas::ORANGE,
    canvas::GREEN_OI,
    canvas::PURPLE,
    canvas::YELLOW_OI,
];
