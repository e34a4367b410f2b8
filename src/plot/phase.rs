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

/// A direction arrowhead on a trajectory `f`, at a third of its length (pixel coordinates of
/// the plotting area through `to_px`; `scale` = pixels per unit, for a chord within a pixel).
fn trajectory_arrowhead<DB: DrawingBackend>(
    screen: &DrawingArea<DB, Shift>,
    f: &[[f64; 2]],
    d: &PhaseData,
    to_px: &impl Fn([f64; 2]) -> (i32, i32),
    scale: (f64, f64),
    compact: bool,
) -> Result<()> {
    let (sx, sy) = scale;
    let inside = |p: &[f64; 2]| (0..2).all(|k| p[k] > d.lo[k] && p[k] < d.hi[k]);
    let Some(i) = (f.len() / 3..f.len().saturating_sub(1))
        .find(|&i| inside(&f[i]) && inside(&f[i + 1]) && f[i] != f[i + 1])
    else {
        return Ok(());
    };
    let (a, b) = (to_px(f[i]), to_px(f[i + 1]));
    let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
    // pixel direction from a longer chord when consecutive points share a pixel
    let (dx, dy) = if dx == 0.0 && dy == 0.0 {
        let p = (f[i + 1][0] - f[i][0]) * sx;
        let q = -(f[i + 1][1] - f[i][1]) * sy;
        (p, q)
    } else {
        (dx, dy)
    };
    let n = (dx * dx + dy * dy).sqrt();
    if !n.is_finite() || n == 0.0 {
        return Ok(());
    }
    let (ux, uy) = (dx / n, dy / n);
    let s = if compact { 5.0 } else { 7.0 };
    let tip = (a.0 as f64 + ux * s, a.1 as f64 + uy * s);
    let base = (a.0 as f64 - ux * s, a.1 as f64 - uy * s);
    let pt = |x: f64, y: f64| (x.round() as i32, y.round() as i32);
    let tri = vec![
        pt(tip.0, tip.1),
        pt(base.0 - uy * s * 0.7, base.1 + ux * s * 0.7),
        pt(base.0 + uy * s * 0.7, base.1 - ux * s * 0.7),
    ];
    screen
        .draw(&Polygon::new(tri, TRAJ_COLOUR.filled()))
        .drawn()?;
    Ok(())
}

/// The basins of attraction as lightened cells, one colour per attractor.
fn draw_basins<DB: DrawingBackend>(chart: &Chart<'_, DB>, d: &PhaseData) -> Result<()> {
    let plot = chart.plotting_area();
    if let Some(b) = &d.basins {
        let (cw, ch) = (
            (d.hi[0] - d.lo[0]) / b.n as f64,
            (d.hi[1] - d.lo[1]) / b.n as f64,
        );
        for (idx, &l) in b.label.iter().enumerate() {
            if l < 0 {
                continue;
            }
            let (i, k) = (idx % b.n, idx / b.n);
            let x0 = d.lo[0] + cw * i as f64;
            let y0 = d.lo[1] + ch * k as f64;
            let col = canvas::lighten(BASIN_COLOURS[l as usize % BASIN_COLOURS.len()], 0.65);
            plot.draw(&Rectangle::new(
                [(x0, y0), (x0 + cw, y0 + ch)],
                col.filled(),
            ))
            .drawn()?;
        }
    }
    Ok(())
}

/// The direction field: arrows of fixed pixel length, direction in pixel space (scales `sx`,
/// `sy` pixels per unit), coloured by speed.
fn draw_direction_field<DB: DrawingBackend>(
    chart: &Chart<'_, DB>,
    d: &PhaseData,
    sx: f64,
    sy: f64,
) -> Result<()> {
    let plot = chart.plotting_area();
    let na = (d.arrows.len() as f64).sqrt().round().max(1.0);
    let (pw, ph) = plot.dim_in_pixel();
    let len = 0.78 * (pw.min(ph) as f64 / na);
    let head = 0.38 * len;
    for a in &d.arrows {
        let (u, v) = (a.f[0] * sx, a.f[1] * sy);
        let n = (u * u + v * v).sqrt();
        if !n.is_finite() || n <= 0.0 {
            continue;
        }
        let (ux, uy) = (u / n, v / n);
        let to = |dx: f64, dy: f64| (a.x[0] + dx / sx, a.x[1] + dy / sy);
        let tail = to(-0.5 * len * ux, -0.5 * len * uy);
        let tip = to(0.5 * len * ux, 0.5 * len * uy);
        let c = d.speed_scale.colour(a.speed.max(d.speed_scale.min));
        let style = c.stroke_width(1);
        plot.draw(&PathElement::new(vec![tail, tip], style))
            .drawn()?;
        let (ca, sa) = (0.42f64.cos(), 0.42f64.sin()); // 24 degrees
        let b1 = (-ux * ca + uy * sa, -ux * sa - uy * ca);
        let b2 = (-ux * ca - uy * sa, ux * sa - uy * ca);
        let p1 = to(0.5 * len * ux + head * b1.0, 0.5 * len * uy + head * b1.1);
        let p2 = to(0.5 * len * ux + head * b2.0, 0.5 * len * uy + head * b2.1);
        plot.draw(&PathElement::new(vec![p1, tip, p2], style))
            .drawn()?;
    }
    Ok(())
}

/// Draw the portrait into `area` (title above the plot); returns the number of fixed-point
/// markers drawn. `compact` shrinks fonts and arrow heads for strips of small panels.
pub(crate) fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &PhaseData,
    title: &str,
    compact: bool,
) -> Result<usize> {
    let chart = frame(
        area,
        title,
        &d.labels[0],
        &d.labels[1],
        d.lo[0]..d.hi[0],
        d.lo[1]..d.hi[1],
        (Axis::Linear, Axis::Linear),
        compact,
    )?;
    let plot = chart.plotting_area();
    let (sx, sy) = px_scale(&chart);
    draw_basins(&chart, d)?;
    draw_direction_field(&chart, d, sx, sy)?;
    // linearisation
    for l in &d.linearisation {
        draw_polyline(&chart, l, LIN_COLOUR.stroke_width(2), true)?;
    }
    // trajectories
    for o in &d.trajectories {
        let style = TRAJ_COLOUR.stroke_width(1);
        draw_polyline(&chart, &o.forward, style, false)?;
        draw_polyline(&chart, &o.backward, style, false)?;
    }
    // nullclines
    let w = if compact { 2 } else { 3 };
    for b in &d.nullclines {
        draw_polyline(
            &chart,
            &b.points,
            NULL_COLOURS[b.component].stroke_width(w),
            true,
        )?;
    }
    // manifolds
    for m in &d.manifolds {
        let col = if m.stable {
            STABLE_COLOUR
        } else {
            UNSTABLE_COLOUR
        };
        draw_polyline(&chart, &m.points, col.stroke_width(w), false)?;
    }
    // eigenvector directions and markers, in pixel coordinates of the plotting area
    let screen = plot.strip_coord_spec();
    let base = plot.get_base_pixel();
    let to_px = |x: [f64; 2]| {
        let p = chart.backend_coord(&(x[0], x[1]));
        (p.0 - base.0, p.1 - base.1)
    };
    for o in &d.trajectories {
        trajectory_arrowhead(&screen, &o.forward, d, &to_px, (sx, sy), compact)?;
    }
    let mut markers = 0;
    for fp in &d.fixed_points {
        let inside = (0..2).all(|k| fp.x[k] >= d.lo[k] && fp.x[k] <= d.hi[k]);
        if !inside {
            continue;
        }
        let c = to_px(fp.x);
        if fp.eigenvalues[0][1] == 0.0 && fp.kind != FixedPointType::Degenerate {
            let l = if compact { 18.0 } else { 26.0 };
            for k in 0..2 {
                let v = fp.eigenvectors[k];
                // direction in pixels (y flipped)
                let (u, w2) = (v[0] * sx, -v[1] * sy);
                let n = (u * u + w2 * w2).sqrt();
                if n.is_nan() || n <= 0.0 {
                    continue;
                }
                let (u, w2) = (u / n * l, w2 / n * l);
                let col = eigen_colour(fp.eigenvalues[k][0] > 0.0);
                screen
                    .draw(&PathElement::new(
                        vec![
                            (c.0 - u.round() as i32, c.1 - w2.round() as i32),
                            (c.0 + u.round() as i32, c.1 + w2.round() as i32),
                        ],
                        col.stroke_width(5),
                    ))
                    .drawn()?;
            }
        }
        draw_marker(&screen, c, fp.kind, MARKER)?;
        markers += 1;
    }
    draw_targets(&chart, &d.targets)?;
    Ok(markers)
}

/// Eigendirection segments at fixed points: the manifold colours, lightened (they are the
/// linear directions, not the manifolds).
pub(crate) fn eigen_colour(unstable: bool) -> RGBColor {
    canvas::lighten(
        if unstable {
            UNSTABLE_COLOUR
        } else {
            STABLE_COLOUR
        },
        0.55,
    )
}

/// Target marker half-diagonal in pixels (larger than a fixed-point marker, so that a fixed
/// point on its target sits inside the diamond).
pub(crate) const TARGET_MARKER: i32 = 11;

/// An open diamond of half-diagonal `r` at pixel `c`.
pub(crate) fn draw_diamond<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: (i32, i32),
    r: i32,
    col: RGBColor,
) -> Result<()> {
    let pts = vec![
        (c.0, c.1 - r),
        (c.0 + r, c.1),
        (c.0, c.1 + r),
        (c.0 - r, c.1),
        (c.0, c.1 - r),
    ];
    area.draw(&PathElement::new(pts, col.stroke_width(3)))
        .drawn()?;
    Ok(())
}

/// Legend entries for what `d` shows.
pub(crate) fn legend_entries(d: &PhaseData) -> Vec<(Glyph, String)> {
    let mut e = Vec::new();
    let mut kinds: Vec<FixedPointType> = d.fixed_points.iter().map(|f| f.kind).collect();
    kinds.sort_by_key(|k| *k as u8);
    kinds.dedup();
    for k in kinds {
        e.push((Glyph::Marker(k), k.label().to_string()));
    }
    e.extend(target_entries(&d.targets));
    for (c, col) in NULL_COLOURS.iter().enumerate() {
        if d.nullclines.iter().any(|b| b.component == c) {
            e.push((Glyph::Line(*col, 3, true), format!("{}' = 0", d.labels[c])));
        }
    }
    if d.manifolds.iter().any(|m| m.stable) {
        e.push((
            Glyph::Line(STABLE_COLOUR, 3, false),
            "stable manifold".into(),
        ));
    }
    if d.manifolds.iter().any(|m| !m.stable) {
        e.push((
            Glyph::Line(UNSTABLE_COLOUR, 3, false),
            "unstable manifold".into(),
        ));
    }
    let real_in_box = |f: &&FixedPoint| {
        f.eigenvalues[0][1] == 0.0
            && f.kind != FixedPointType::Degenerate
            && (0..2).all(|k| f.x[k] >= d.lo[k] && f.x[k] <= d.hi[k])
    };
    let eig: Vec<f64> = d
        .fixed_points
        .iter()
        .filter(real_in_box)
        .flat_map(|f| [f.eigenvalues[0][0], f.eigenvalues[1][0]])
        .collect();
    if eig.iter().any(|l| *l <= 0.0) {
        e.push((
            Glyph::Line(eigen_colour(false), 5, false),
            "stable eigendirection".into(),
        ));
    }
    if eig.iter().any(|l| *l > 0.0) {
        e.push((
            Glyph::Line(eigen_colour(true), 5, false),
            "unstable eigendirection".into(),
        ));
    }
    if !d.trajectories.is_empty() {
        e.push((Glyph::Line(TRAJ_COLOUR, 1, false), "trajectory".into()));
    }
    if !d.linearisation.is_empty() {
        e.push((Glyph::Line(LIN_COLOUR, 2, true), "linearisation".into()));
    }
    if let Some(b) = &d.basins {
        for (j, &i) in b.attractors.iter().enumerate() {
            let fp = &d.fixed_points[i];
            e.push((
                Glyph::Patch(canvas::lighten(
                    BASIN_COLOURS[j % BASIN_COLOURS.len()],
                    0.65,
                )),
                format!(
                    "basin of ({}, {})",
                    canvas::tick(fp.x[0]),
                    canvas::tick(fp.x[1])
                ),
            ));
        }
    }
    e
}

/// The single-portrait figure: plot on the left, legend and speed colour bar on the right.
pub(crate) struct PhaseFigure<'a> {
    pub data: &'a PhaseData,
    pub title: &'a str,
    pub size: (u32, u32),
    pub markers: Cell<usize>,
}

impl Figure for PhaseFigure<'_> {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let side = 230.min(self.size.0 as i32 / 3);
        let (left, right) = root.split_horizontally(self.size.0 as i32 - side);
        let m = draw_panel(&left, self.data, self.title, false)?;
        self.markers.set(m);
        let entries = legend_entries(self.data);
        let used = legend(&right, 6, 60, &entries)?;
        let top = 60 + used + 30;
        let (_, bar_area) = right.split_vertically(top);
        let (bar_area, _) = bar_area.split_vertically((self.size.1 as i32 - top - 60).max(120));
        if !self.data.arrows.is_empty() {
            colour_bar(&bar_area, &self.data.speed_scale, "speed |F|")?;
        }
        Ok(())
    }
}

/// CSV of the nullcline points: branch index, component (1 or 2), x, y.
pub(crate) fn nullcline_csv(d: &PhaseData) -> String {
    crate::io::csv(
        &["branch", "component", "x", "y"],
        d.nullclines.iter().enumerate().flat_map(|(i, b)| {
            b.points
                .iter()
                .map(move |p| vec![i as f64, (b.component + 1) as f64, p[0], p[1]])
        }),
    )
}

/// Compute and draw the phase portrait of `sys`; write `stem.svg`, `stem.png`, `stem.json`
/// (the [`PhaseData`] drawn) and `stem_nullclines.csv`.
///
/// ```
/// use modeflow::num::planar::PlanarFlow;
/// use modeflow::plot::{phase, Output};
/// use nalgebra::{Matrix2, Vector2};
/// /// x' = x - x^3, y' = -y
/// struct Pitchfork;
/// impl PlanarFlow for Pitchfork {
///     fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> { Vector2::new(x[0] - x[0].powi(3), -x[1]) }
///     fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
///         Matrix2::new(1.0 - 3.0 * x[0] * x[0], 0.0, 0.0, -1.0)
///     }
/// }
/// let dir = std::env::temp_dir().join(format!("modeflow-doc-phase-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let spec = phase::PhaseSpec::new([-2.0, -1.5], [2.0, 1.5]).labels("κ_a", "κ_b");
/// let r = phase::render(&Pitchfork, &spec, "pitchfork", &Output::new(&dir, "pf")).unwrap();
/// assert_eq!(r.markers, 3); // two stable nodes and a saddle
/// assert!(dir.join("pf.png").exists() && dir.join("pf_nullclines.csv").exists());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn render(
    sys: &impl PlanarFlow,
    spec: &PhaseSpec,
    title: &str,
    out: &Output,
) -> Result<PhaseResult> {
    let data = compute(sys, spec)?;
    render_data(data, spec.size, title, out)
}

/// Draw and write a portrait from already computed data.
pub fn render_data(
    data: PhaseData,
    size: (u32, u32),
    title: &str,
    out: &Output,
) -> Result<PhaseResult> {
    let fig = PhaseFigure {
        data: &data,
        title,
        size,
        markers: Cell::new(0),
    };
    let json = canvas::figure_json(out, "phase_portrait", title, &data)?;
    let csv = nullcline_csv(&data);
    let files = canvas::write_figure(&fig, out, &[(".json", json), ("_nullclines.csv", csv)])?;
    let markers = fig.markers.get();
    Ok(PhaseResult {
        data,
        markers,
        files,
    })
}
