//! Line figures for the implicit-bias results: series with an optional predicted line, log-log
//! plots with the fitted slope annotated (|w| against ln t, balance drift against eta),
//! cosine-similarity matrices, and 2-D scatter projections coloured by cluster.

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use super::canvas::{self, series_colour, Drawn, Figure, Output};
use super::heatmap::{self, Grid, HeatSpec};
use super::{draw_polyline, frame, legend, Axis, Glyph};
use crate::{Error, Result};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Line,
    /// Dashed line (e.g. a prediction).
    Dashed,
    Points,
    LinePoints,
}

/// One series of (x, y) points.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub label: String,
    pub points: Vec<[f64; 2]>,
    pub mark: Mark,
}

impl Series {
    pub fn new(label: &str, points: Vec<[f64; 2]>, mark: Mark) -> Self {
        Series {
            label: label.into(),
            points,
            mark,
        }
    }
}

/// Fit a straight line to one series (in the plotted coordinates, i.e. log10 on log axes).
#[derive(Debug, Clone, Serialize)]
pub struct FitSpec {
    /// Index of the series to fit.
    pub series: usize,
    /// The predicted slope, annotated beside the fitted one.
    pub predicted: Option<f64>,
    /// Only points with x in this range (data units) enter the fit.
    pub x_range: Option<(f64, f64)>,
}

/// Labels and axes of a line figure.
#[derive(Debug, Clone, Serialize)]
pub struct LineSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub fit: Option<FitSpec>,
    pub size: (u32, u32),
}

impl LineSpec {
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        LineSpec {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            fit: None,
            size: (960, 680),
        }
    }

    pub fn log_log(mut self) -> Self {
        self.log_x = true;
        self.log_y = true;
        self
    }
}

/// A least-squares line y = intercept + slope x in plotted coordinates.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SlopeFit {
    pub slope: f64,
    pub intercept: f64,
    /// Coefficient of determination.
    pub r2: f64,
    /// Number of points used.
    pub n: usize,
}

fn tr(v: f64, log: bool) -> f64 {
    if log {
        v.log10()
    } else {
        v
    }
}

/// Least-squares slope of `points` in plotted coordinates (log10 on log axes; points that are
/// not finite there, or outside `x_range`, are dropped). `None` with fewer than two points or
/// no spread in x.
pub fn fit_slope(
    points: &[[f64; 2]],
    log_x: bool,
    log_y: bool,
    x_range: Option<(f64, f64)>,
) -> Option<SlopeFit> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| x_range.is_none_or(|(a, b)| p[0] >= a && p[0] <= b))
        .map(|p| (tr(p[0], log_x), tr(p[1], log_y)))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let n = pts.len();
    if n < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        1.0
    };
    Some(SlopeFit {
        slope,
        intercept: my - slope * mx,
        r2,
        n,
    })
}

struct LineFigure<'a> {
    series: &'a [Series],
    spec: &'a LineSpec,
    fit: Option<SlopeFit>,
    colours: Vec<RGBColor>,
}

/// Data range of the plotted coordinates, padded by 4% (a degenerate range gets +-0.5).
fn range(vals: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if hi <= lo {
        return lo - 0.5..hi + 0.5;
    }
    let pad = 0.04 * (hi - lo);
    lo - pad..hi + pad
}

impl Figure for LineFigure<'_> {
    fn size(&self) -> (u32, u32) {
        self.spec.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let s = self.spec;
        // the legend column is wide enough for its longest label (~8 px per character at
        // 14 px, after the 34 px glyph), within a third of the figure
        let longest = self
            .series
            .iter()
            .map(|se| se.label.chars().count() as i32)
            .max()
            .unwrap_or(0);
        let side = (34 + 8 * longest + 10).max(230).min(s.size.0 as i32 / 3);
        let (left, right) = root.split_horizontally(s.size.0 as i32 - side);
        let pts: Vec<Vec<[f64; 2]>> = self
            .series
            .iter()
            .map(|se| {
                se.points
                    .iter()
                    .map(|p| [tr(p[0], s.log_x), tr(p[1], s.log_y)])
                    .collect()
            })
            .collect();
        let xr = range(pts.iter().flatten().map(|p| p[0]));
        let yr = range(pts.iter().flatten().map(|p| p[1]));
        let ax = |l: bool| if l { Axis::Log10 } else { Axis::Linear };
        let chart = frame(
            &left,
            &s.title,
            &s.x_label,
            &s.y_label,
            xr.clone(),
            yr,
            (ax(s.log_x), ax(s.log_y)),
            false,
        )?;
        let plot = chart.plotting_area();
        let mut entries = Vec::new();
        for (k, (se, p)) in self.series.iter().zip(&pts).enumerate() {
            let col = self.colours[k];
            match se.mark {
                Mark::Line | Mark::LinePoints => {
                    draw_polyline(&chart, p, col.stroke_width(2), false)?
                }
                Mark::Dashed => draw_polyline(&chart, p, col.stroke_width(2), true)?,
                Mark::Points => {}
            }
            if matches!(se.mark, Mark::Points | Mark::LinePoints) {
                for q in p.iter().filter(|q| q[0].is_finite() && q[1].is_finite()) {
                    plot.draw(&Circle::new((q[0], q[1]), 4, col.filled()))
                        .drawn()?;
                }
            }
            let glyph = match se.mark {
                Mark::Points => Glyph::Dot(col),
                Mark::Dashed => Glyph::Line(col, 2, true),
                _ => Glyph::Line(col, 2, false),
            };
            entries.push((glyph, se.label.clone()));
        }
        let mut used = legend(&right, 6, 60, &entries)?;
        if let (Some(f), Some(fs)) = (self.fit, &s.fit) {
            let line = [
                [xr.start, f.intercept + f.slope * xr.start],
                [xr.end, f.intercept + f.slope * xr.end],
            ];
            draw_polyline(&chart, &line, canvas::GREY.stroke_width(1), true)?;
            used += legend(
                &right,
                6,
                60 + used,
                &[(
                    Glyph::Line(canvas::GREY, 1, true),
                    "least-squares fit".into(),
                )],
            )?;
            let mut lines = vec![format!("fitted slope {:.4}", f.slope)];
            if let Some(p) = fs.predicted {
                lines.push(format!("predicted {:.4}", p));
            }
            lines.push(format!("R² = {:.4}, n = {}", f.r2, f.n));
            for (i, l) in lines.iter().enumerate() {
                right
                    .draw(&Text::new(
                        l.clone(),
                        (10, 60 + used + 16 + 20 * i as i32),
                        canvas::font(14),
                    ))
                    .drawn()?;
            }
        }
        Ok(())
    }
}

/// What [`render`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct LineResult {
    pub fit: Option<SlopeFit>,
    pub files: Vec<std::path::PathBuf>,
}

/// Draw the series (colours in Okabe–Ito order; a dashed series is usually the prediction),
/// fit the slope if asked, write `stem.svg/.png`, `stem.csv` (series, x, y) and `stem.json`.
pub fn render(series: &[Series], spec: &LineSpec, out: &Output) -> Result<LineResult> {
    canvas::check_size(&format!("line figure `{}`", spec.title), spec.size)?;
    if series.iter().all(|s| s.points.is_empty()) {
        return Err(Error::Requirement(format!(
            "line figure `{}`: no data points",
            spec.title
        )));
    }
    let fit = match &spec.fit {
        Some(f) => {
            let se = series.get(f.series).ok_or_else(|| Error::Shape {
                context: format!("line figure `{}`", spec.title),
                message: format!(
                    "fit of series {} but only {} series",
                    f.series,
                    series.len()
                ),
            })?;
            fit_slope(&se.points, spec.log_x, spec.log_y, f.x_range)
        }
        None => None,
    };
    let colours = (0..series.len()).map(series_colour).collect();
    let fig = LineFigure {
        series,
        spec,
        fit,
        colours,
    };
    let csv = crate::io::csv(
        &["series", "x", "y"],
        series
            .iter()
            .enumerate()
            .flat_map(|(k, s)| s.points.iter().map(move |p| vec![k as f64, p[0], p[1]])),
    );
    let json = canvas::figure_json(
        out,
        "lines",
        &spec.title,
        &serde_json::json!({ "spec": spec, "series": series, "fit": fit }),
    )?;
    let files = canvas::write_figure(&fig, out, &[(".csv", csv), (".json", json)])?;
    Ok(LineResult { fit, files })
}

/// A similarity matrix (e.g. cosine similarities of hidden weight vectors, in [-1, 1]) as a
/// heat map with units 1..n on both axes; `values[i][j]`, square.
pub fn render_matrix(
    values: &[Vec<f64>],
    title: &str,
    value_label: &str,
    range: Option<(f64, f64)>,
    out: &Output,
) -> Result<heatmap::HeatResult> {
    let n = values.len();
    if values.iter().any(|r| r.len() != n) {
        return Err(Error::Shape {
            context: format!("matrix figure `{title}`"),
            message: "matrix must be square".into(),
        });
    }
    let axis: Vec<f64> = (1..=n).map(|i| i as f64).collect();
    let grid = Grid {
        x: axis.clone(),
        y: axis,
        values: values.iter().flatten().copied().collect(),
    };
    let mut spec = HeatSpec::new(title, "unit j", "unit i", value_label);
    spec.range = range;
    spec.flip_y = true;
    spec.size = (900, 760);
    heatmap::render(&grid, &[], &[], &spec, out)
}

/// A 2-D projection scatter (e.g. hidden weight vectors on their top two principal axes),
/// coloured by group (cluster) with `group_labels[g]` in the legend.
pub fn render_scatter(
    points: &[[f64; 2]],
    groups: &[usize],
    group_labels: &[String],
    spec: &LineSpec,
    out: &Output,
) -> Result<LineResult> {
    if groups.len() != points.len() {
        return Err(Error::Shape {
            context: format!("scatter `{}`", spec.title),
            message: format!("{} points but {} group labels", points.len(), groups.len()),
        });
    }
    let ng = groups.iter().copied().max().map_or(0, |m| m + 1);
    let series: Vec<Series> = (0..ng)
        .map(|g| {
            Series::new(
                group_labels
                    .get(g)
                    .map(String::as_str)
                    .unwrap_or(&format!("group {}", g + 1)),
                points
                    .iter()
                    .zip(groups)
                    .filter(|(_, &h)| h == g)
                    .map(|(p, _)| *p)
                    .collect(),
                Mark::Points,
            )
        })
        .collect();
    render(&series, spec, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_power_law_is_its_exponent() {
        let pts: Vec<[f64; 2]> = (1..50)
            .map(|k| {
                let x = 1e-3 * 1.2f64.powi(k);
                [x, 3.0 * x.powf(-0.5)]
            })
            .collect();
        let f = fit_slope(&pts, true, true, None).unwrap();
        // exact power law: slope and R^2 at rounding level of log10
        assert!((f.slope + 0.5).abs() < 1e-12);
        assert!((f.r2 - 1.0).abs() < 1e-12);
        assert!((f.intercept - 3f64.log10()).abs() < 1e-12);
        assert!(fit_slope(&pts[..1], true, true, None).is_none());
        let g = fit_slope(&pts, true, true, Some((0.01, 0.1))).unwrap();
        assert!(g.n < pts.len());
    }
}
