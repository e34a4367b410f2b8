//! Drawing a phase portrait: trajectories, basins, direction field, panels, legend, CSV and the render entry points.

use super::*;

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
