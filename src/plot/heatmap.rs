//! Heat maps of a value on a grid (e.g. the interference I over (r, eps) or (g, T_d)) with
//! analytic curves (e.g. r*(eps)) and scattered points (e.g. trained networks) overlaid, and a
//! colour bar (viridis, linear or log).

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use super::canvas::series_colour;
use super::canvas::{self, colour_bar, ColourScale, Drawn, Figure, Output};
use super::{draw_polyline, frame, legend, Axis, Glyph};
use crate::{Error, Result};

/// Values on a tensor grid: `values[j * x.len() + i]` is the value at `(x[i], y[j])`.
/// NaN marks a missing cell (drawn light grey).
#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub values: Vec<f64>,
}

/// A curve drawn over the map; a non-finite point breaks it into separate pieces.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub label: String,
    pub points: Vec<[f64; 2]>,
}

/// Scattered points drawn over the map; with `values`, filled with the map's colour scale.
#[derive(Debug, Clone, Serialize)]
pub struct Points {
    pub label: String,
    pub points: Vec<[f64; 2]>,
    pub values: Option<Vec<f64>>,
}

/// Labels and scales of a heat map.
#[derive(Debug, Clone, Serialize)]
pub struct HeatSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Label of the colour bar (the mapped quantity).
    pub value_label: String,
    pub log_colour: bool,
    pub log_x: bool,
    pub log_y: bool,
    /// Draw the y axis downwards (first row at the top, as in a matrix); linear y only.
    pub flip_y: bool,
    /// Fixed colour range; default: the range of the finite values.
    pub range: Option<(f64, f64)>,
    pub size: (u32, u32),
}

impl HeatSpec {
    pub fn new(title: &str, x_label: &str, y_label: &str, value_label: &str) -> Self {
        HeatSpec {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            value_label: value_label.into(),
            log_colour: false,
            log_x: false,
            log_y: false,
            flip_y: false,
            range: None,
            size: (960, 760),
        }
    }
}

/// Values of a log-coloured map that are non-positive or not finite (failed points, exact
/// zeros) are set to the smallest positive value, the map's floor; a map with no positive value
/// is left as is (the renderer reports it).
pub fn floor_non_positive(values: &mut [f64]) {
    let floor = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    if floor.is_finite() {
        for v in values.iter_mut() {
            if !(v.is_finite() && *v > 0.0) {
                *v = floor;
            }
        }
    }
}

/// Check the grid: non-empty, matching sizes, strictly increasing finite axes, positive on log
/// axes. Errors are `Shape` (sizes) or `Requirement` (empty, unordered, non-positive).
pub fn check_grid(g: &Grid, spec: &HeatSpec) -> Result<()> {
    canvas::check_size(&format!("heat map `{}`", spec.title), spec.size)?;
    if g.x.is_empty() || g.y.is_empty() {
        return Err(Error::Requirement(format!(
            "heat map `{}`: empty grid (no sweep points)",
            spec.title
        )));
    }
    if g.values.len() != g.x.len() * g.y.len() {
        return Err(Error::Shape {
            context: format!("heat map `{}`", spec.title),
            message: format!(
                "{} values for a {} x {} grid",
                g.values.len(),
                g.x.len(),
                g.y.len()
            ),
        });
    }
    for (name, axis, log) in [("x", &g.x, spec.log_x), ("y", &g.y, spec.log_y)] {
        if axis.iter().any(|v| !v.is_finite() || (log && *v <= 0.0)) {
            return Err(Error::Requirement(format!(
                "heat map `{}`: {name} axis must be finite{}",
                spec.title,
                if log { " and > 0 (log axis)" } else { "" }
            )));
        }
        if axis.windows(2).any(|w| w[1] <= w[0]) {
            return Err(Error::Requirement(format!(
                "heat map `{}`: {name} axis must be strictly increasing",
                spec.title
            )));
        }
    }
    Ok(())
}

/// Cell edges around centres `c` (in plot coordinates): midpoints, ends extended by half a step
/// (a single centre gets a unit-width cell).
fn edges(c: &[f64]) -> Vec<f64> {
    let n = c.len();
    if n == 1 {
        return vec![c[0] - 0.5, c[0] + 0.5];
    }
    let mut e = Vec::with_capacity(n + 1);
    e.push(c[0] - 0.5 * (c[1] - c[0]));
    for w in c.windows(2) {
        e.push(0.5 * (w[0] + w[1]));
    }
    e.push(c[n - 1] + 0.5 * (c[n - 1] - c[n - 2]));
    e
}

fn tr(v: f64, log: bool) -> f64 {
    if log {
        v.log10()
    } else {
        v
    }
}

fn axis(log: bool) -> Axis {
    if log {
        Axis::Log10
    } else {
        Axis::Linear
    }
}

struct HeatFigure<'a> {
    grid: &'a Grid,
    curves: &'a [Curve],
    points: &'a [Points],
    spec: &'a HeatSpec,
    scale: ColourScale,
}

impl Figure for HeatFigure<'_> {
    fn size(&self) -> (u32, u32) {
        self.spec.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (s, g) = (self.spec, self.grid);
        let side = 220.min(s.size.0 as i32 / 3);
        let (left, right) = root.split_horizontally(s.size.0 as i32 - side);
        let xc: Vec<f64> = g.x.iter().map(|&v| tr(v, s.log_x)).collect();
        let yc: Vec<f64> = g.y.iter().map(|&v| tr(v, s.log_y)).collect();
        let flip = s.flip_y && !s.log_y;
        let (xe, mut ye) = (edges(&xc), edges(&yc));
        if flip {
            ye.iter_mut().for_each(|v| *v = -*v);
        }
        let (y0, y1) = (ye[0].min(ye[ye.len() - 1]), ye[0].max(ye[ye.len() - 1]));
        let ty = |v: f64| if flip { -v } else { tr(v, s.log_y) };
        let chart = frame(
            &left,
            &s.title,
            &s.x_label,
            &s.y_label,
            xe[0]..xe[xe.len() - 1],
            y0..y1,
            (
                axis(s.log_x),
                if flip { Axis::Negated } else { axis(s.log_y) },
            ),
            false,
        )?;
        let plot = chart.plotting_area();
        let nx = g.x.len();
        for (j, w) in ye.windows(2).enumerate() {
            for (i, u) in xe.windows(2).enumerate() {
                let c = self.scale.colour(g.values[j * nx + i]);
                plot.draw(&Rectangle::new([(u[0], w[0]), (u[1], w[1])], c.filled()))
                    .drawn()?;
            }
        }
        let mut entries = Vec::new();
        for (k, c) in self.curves.iter().enumerate() {
            // white under-stroke keeps the curve visible on any colour of the map
            let pts: Vec<[f64; 2]> = c
                .points
                .iter()
                .map(|p| [tr(p[0], s.log_x), ty(p[1])])
                .collect();
            let col = curve_colour(k);
            // a non-finite point breaks the curve (region borders are disjoint segments)
            for piece in pts.split(|p| !(p[0].is_finite() && p[1].is_finite())) {
                draw_polyline(&chart, piece, WHITE.stroke_width(5), false)?;
                draw_polyline(&chart, piece, col.stroke_width(3), k % 2 == 1)?;
            }
            entries.push((Glyph::Line(col, 3, k % 2 == 1), c.label.clone()));
        }
        let xr = chart.x_range();
        let yr = chart.y_range();
        for (k, p) in self.points.iter().enumerate() {
            let edge = series_colour(k + 1);
            for (m, q) in p.points.iter().enumerate() {
                let q = (tr(q[0], s.log_x), ty(q[1]));
                if !(xr.contains(&q.0) && yr.contains(&q.1)) {
                    continue;
                }
                let fill = match &p.values {
                    Some(v) => self.scale.colour(v.get(m).copied().unwrap_or(f64::NAN)),
                    None => WHITE,
                };
                // a bullseye: black rim, white ring, then the fill (the map's colour for
                // valued points), visible on any colour of the map
                plot.draw(&Circle::new(q, 9, BLACK.filled())).drawn()?;
                plot.draw(&Circle::new(q, 7, WHITE.filled())).drawn()?;
                plot.draw(&Circle::new(q, 5, fill.filled())).drawn()?;
                plot.draw(&Circle::new(q, 5, edge.stroke_width(2)))
                    .drawn()?;
            }
            entries.push((Glyph::Dot(edge), p.label.clone()));
        }
        let h = s.size.1 as i32;
        let (bar, rest) = right.split_vertically((h * 3 / 5).max(200));
        let (_, bar) = bar.split_vertically(40);
        colour_bar(&bar, &self.scale, &s.value_label)?;
        legend(&rest, 6, 20, &entries)?;
        Ok(())
    }
}

/// Curve colours: white-backed Okabe–Ito colours readable on viridis (orange, sky blue,
/// vermillion, reddish purple).
fn curve_colour(k: usize) -> RGBColor {
    [
        canvas::ORANGE,
        canvas::SKY,
        canvas::VERMILLION,
        canvas::PURPLE,
    ][k % 4]
}

/// What [`render`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct HeatResult {
    pub scale: ColourScale,
    pub files: Vec<std::path::PathBuf>,
}

/// Draw the heat map with overlays; write `stem.svg/.png`, `stem.csv` (x, y, value) and
/// `stem.json` (grid, curves, points, colour scale).
pub fn render(
    grid: &Grid,
    curves: &[Curve],
    points: &[Points],
    spec: &HeatSpec,
    out: &Output,
) -> Result<HeatResult> {
    check_grid(grid, spec)?;
    let scale = match spec.range {
        Some((a, b)) => ColourScale::from_values([a, b], spec.log_colour),
        None => ColourScale::from_values(grid.values.iter().copied(), spec.log_colour),
    };
    let fig = HeatFigure {
        grid,
        curves,
        points,
        spec,
        scale,
    };
    let nx = grid.x.len();
    let csv = crate::io::csv(
        &["x", "y", "value"],
        grid.values
            .iter()
            .enumerate()
            .map(|(k, v)| vec![grid.x[k % nx], grid.y[k / nx], *v]),
    );
    let json = canvas::figure_json(
        out,
        "heat_map",
        &spec.title,
        &serde_json::json!({
            "spec": spec, "grid": grid, "curves": curves, "points": points, "colour_scale": scale,
        }),
    )?;
    let files = canvas::write_figure(&fig, out, &[(".csv", csv), (".json", json)])?;
    Ok(HeatResult { scale, files })
}
