//! Figures: phase portraits of any planar flow, learning portraits, heat maps and line plots,
//! each rendered to SVG and PNG (plotters, bundled DejaVu font) with its data beside it.
//!
//! - [`canvas`]: font, palettes (Okabe–Ito, viridis), the [`canvas::Figure`] trait and atomic
//!   SVG + PNG + data output ([`canvas::write_figure`]).
//! - [`nullclines`], [`manifolds`]: re-exported from [`crate::num::planar`], which computes
//!   them (nullcline branches; trajectories, saddle manifolds, basins, linearisation).
//! - [`phase`]: the phase portrait of a [`crate::num::planar::PlanarFlow`] ([`phase::render`]).
//! - [`learning`]: strips of portraits over learning time tau, fixed-point paths, M(tau),
//!   continuation diagrams.
//! - [`heatmap`]: grid heat maps (interference phase diagrams) with curves and points overlaid.
//! - [`lines`]: line / log-log plots with fitted slopes, similarity matrices, 2-D scatter.
//!
//! Every `render*` function takes an [`Output`] (directory, file stem, provenance) and writes
//! `stem.svg`, `stem.png` and `stem.json` (plus CSV where the data is tabular). All bytes are
//! rendered in memory first and each file is written atomically; the directory must exist
//! (a missing or unwritable one is [`crate::Error::Io`] naming the path, with nothing left
//! behind). Output is deterministic: the same input gives byte-identical files.
//!
//! Typical calls:
//! - `phase::render(&flow, &PhaseSpec::new(lo, hi).labels("κ_a", "κ_b"), title, &out)`;
//! - `learning::render_learning_set(|tau| flow_at(tau), &tau_grid, &strip_tau, &spec, title,
//!   "τ", learning::Amplitude::Norm, &out)` (strip + fixed-point path + continuation);
//! - `learning::render_matrix_series(&m_series, "M", title, "τ", &out)`;
//! - `heatmap::render(&grid, &[curve], &[points], &HeatSpec::new(..), &out)`;
//! - `lines::render(&series, &LineSpec::new(..).log_log(), &out)`, `lines::render_matrix`,
//!   `lines::render_scatter`.
//!
//! A model held as `&dyn PlanarFlow` is passed as `&learning::DynFlow(model)`.

pub mod canvas;
pub mod heatmap;
pub mod learning;
pub mod lines;
pub mod phase;

pub use crate::num::planar::{manifolds, nullclines};

use std::ops::Range;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

pub use canvas::Output;
use canvas::{font, tick, Drawn};

use crate::num::eig2::FixedPointType;
use crate::Result;

/// A 2-D chart with linear f64 axes.
pub(crate) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Axis-label formatting: plain ticks, or `10^v` ticks for axes holding log10 values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Linear,
    Log10,
    /// The axis holds -v (a flipped axis, e.g. matrix rows counted downwards).
    Negated,
}

fn fmt_axis(v: f64, a: Axis, span: f64) -> String {
    // a tick at rounding distance from zero (e.g. -2.8e-17 on a symmetric axis) is zero
    let v = if a != Axis::Log10 && v.abs() < 1e-9 * span {
        0.0
    } else {
        v
    };
    match a {
        Axis::Linear => tick(v),
        Axis::Log10 => tick(10f64.powf(v)),
        Axis::Negated => tick(-v),
    }
}

/// Build a framed chart in `area`: caption, labelled axes and a faint mesh.
#[allow(clippy::too_many_arguments)]
pub(crate) fn frame<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    x: Range<f64>,
    y: Range<f64>,
    axes: (Axis, Axis),
    compact: bool,
) -> Result<Chart<'a, DB>> {
    let (cap, lab, tk) = if compact { (16, 14, 12) } else { (22, 18, 14) };
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(cap))
        .margin(if compact { 6 } else { 12 })
        .x_label_area_size(if compact { 34 } else { 48 })
        .y_label_area_size(if compact { 46 } else { 64 })
        .build_cartesian_2d(x, y)
        .drawn()?;
    let (sx, sy) = {
        let (xr, yr) = (chart.x_range(), chart.y_range());
        (xr.end - xr.start, yr.end - yr.start)
    };
    let fx = move |v: &f64| fmt_axis(*v, axes.0, sx);
    let fy = move |v: &f64| fmt_axis(*v, axes.1, sy);
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style(font(lab))
        .label_style(font(tk))
        .x_labels(if compact { 5 } else { 8 })
        .y_labels(if compact { 5 } else { 8 })
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .draw()
        .drawn()?;
    Ok(chart)
}

/// Pixels per data unit of a chart's plotting area (x, y).
pub(crate) fn px_scale<DB: DrawingBackend>(chart: &Chart<'_, DB>) -> (f64, f64) {
    let (w, h) = chart.plotting_area().dim_in_pixel();
    let xr = chart.x_range();
    let yr = chart.y_range();
    (
        w as f64 / (xr.end - xr.start),
        h as f64 / (yr.end - yr.start),
    )
}

/// Draw a polyline (clipped to the chart's box), solid or dashed.
pub(crate) fn draw_polyline<DB: DrawingBackend>(
    chart: &Chart<'_, DB>,
    points: &[[f64; 2]],
    style: ShapeStyle,
    dashed: bool,
) -> Result<()> {
    let xr = chart.x_range();
    let yr = chart.y_range();
    let area = chart.plotting_area();
    for piece in canvas::clip_polyline(points, [xr.start, yr.start], [xr.end, yr.end]) {
        if dashed {
            area.draw(&DashedPathElement::new(piece, 7, 5, style))
                .drawn()?;
        } else {
            area.draw(&PathElement::new(piece, style)).drawn()?;
        }
    }
    Ok(())
}

/// Fixed-point marker radius in pixels (legend markers use [`LEGEND_MARKER`], so counting
/// `r="7"` circles in the SVG counts the plotted fixed points).
pub(crate) const MARKER: i32 = 7;
pub(crate) const LEGEND_MARKER: i32 = 6;

/// Draw a fixed-point marker at pixel position `c` of `area` (screen coordinates):
/// filled = stable, open = unstable, half-filled = saddle, open with a dot = centre, open
/// square = degenerate.
pub(crate) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: (i32, i32),
    kind: FixedPointType,
    r: i32,
) -> Result<()> {
    let black = BLACK.stroke_width(2);
    match kind {
        FixedPointType::StableNode | FixedPointType::StableFocus => {
            area.draw(&Circle::new(c, r, BLACK.filled())).drawn()?;
        }
        FixedPointType::UnstableNode | FixedPointType::UnstableFocus => {
            area.draw(&Circle::new(c, r, WHITE.filled())).drawn()?;
            area.draw(&Circle::new(c, r, black)).drawn()?;
        }
        FixedPointType::Saddle => {
            area.draw(&Circle::new(c, r, WHITE.filled())).drawn()?;
            // left half filled
            let n = 16;
            let mut poly = Vec::with_capacity(n + 1);
            for k in 0..=n {
                let a = std::f64::consts::FRAC_PI_2 + std::f64::consts::PI * k as f64 / n as f64;
                poly.push((
                    c.0 + (r as f64 * a.cos()).round() as i32,
                    c.1 - (r as f64 * a.sin()).round() as i32,
                ));
            }
            area.draw(&Polygon::new(poly, BLACK.filled())).drawn()?;
            area.draw(&Circle::new(c, r, black)).drawn()?;
        }
        FixedPointType::Centre => {
            area.draw(&Circle::new(c, r, WHITE.filled())).drawn()?;
            area.draw(&Circle::new(c, r, black)).drawn()?;
            area.draw(&Rectangle::new(
                [(c.0 - 1, c.1 - 1), (c.0 + 1, c.1 + 1)],
                BLACK.filled(),
            ))
            .drawn()?;
        }
        FixedPointType::Degenerate => {
            area.draw(&Rectangle::new(
                [(c.0 - r, c.1 - r), (c.0 + r, c.1 + r)],
                WHITE.filled(),
            ))
            .drawn()?;
            area.draw(&Rectangle::new(
                [(c.0 - r, c.1 - r), (c.0 + r, c.1 + r)],
                black,
            ))
            .drawn()?;
        }
    }
    Ok(())
}

/// A legend entry's sample glyph.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Glyph {
    Line(RGBColor, u32, bool),
    Marker(FixedPointType),
    Dot(RGBColor),
    Patch(RGBColor),
    Cross(RGBColor),
    /// An open diamond (targets, event markers).
    Diamond(RGBColor),
    /// A filled triangle (event markers).
    Triangle(RGBColor),
}

/// Draw a vertical legend at (x, y) in `area` (screen coordinates); returns the height used.
pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x: i32,
    y: i32,
    entries: &[(Glyph, String)],
) -> Result<i32> {
    let dy = 22;
    // long labels wrap at word boundaries inside the area (14 px sans: ~7 px per character)
    let width = area.dim_in_pixel().0 as i32;
    let max_chars = ((width - x - 38) / LEGEND_CHAR_PX).max(12) as usize;
    let mut yy = y - dy;
    for (g, text) in entries {
        yy += dy;
        let c = (x + 12, yy + 8);
        match *g {
            Glyph::Line(col, w, dashed) => {
                let style = col.stroke_width(w);
                if dashed {
                    area.draw(&DashedPathElement::new(
                        vec![(x, c.1), (x + 26, c.1)],
                        6,
                        4,
                        style,
                    ))
                    .drawn()?;
                } else {
                    area.draw(&PathElement::new(vec![(x, c.1), (x + 26, c.1)], style))
                        .drawn()?;
                }
            }
            Glyph::Marker(kind) => draw_marker(area, c, kind, LEGEND_MARKER)?,
            Glyph::Dot(col) => {
                area.draw(&Circle::new(c, 4, col.filled())).drawn()?;
            }
            Glyph::Cross(col) => {
                area.draw(&Cross::new(c, 6, col.stroke_width(3))).drawn()?;
            }
            Glyph::Diamond(col) => phase::draw_diamond(area, c, 8, col)?,
            Glyph::Triangle(col) => {
                area.draw(&TriangleMarker::new(c, 7, col.filled()))
                    .drawn()?;
            }
            Glyph::Patch(col) => {
                area.draw(&Rectangle::new(
                    [(x + 2, yy + 1), (x + 24, yy + 15)],
                    col.filled(),
                ))
                .drawn()?;
            }
        }
        for (i, line) in wrap_words(text, max_chars).into_iter().enumerate() {
            if i > 0 {
                yy += LEGEND_LINE_PX;
            }
            area.draw(&Text::new(line, (x + 34, yy + 1), font(14)))
                .drawn()?;
        }
    }
    Ok(yy + dy - y)
}

/// Average advance of the legend's 14 px sans font, for wrapping.
const LEGEND_CHAR_PX: i32 = 7;
/// Line spacing of a wrapped legend label.
const LEGEND_LINE_PX: i32 = 17;

/// Split `text` into lines of at most `max_chars` characters at spaces (a longer word stands
/// on its own line).
fn wrap_words(text: &str, max_chars: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > max_chars {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    lines.push(cur);
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap_words;

    /// Regression (T-map figures, 2026-12-05): legend labels longer than the side panel ran off
    /// the image ("border of T-1 holds (95% CI of" ...); they now wrap at spaces.
    #[test]
    fn long_legend_labels_wrap_at_spaces() {
        let t = "border of T-1 holds (95% CI of the median above I_f)";
        let lines = wrap_words(t, 20);
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:?}");
        assert_eq!(lines.join(" "), t);
        assert_eq!(wrap_words("short", 20), vec!["short".to_string()]);
        assert_eq!(wrap_words("averyveryverylongword x", 5).len(), 2);
    }
}
