//! The learning path in the (r, eps) plane and the matrix-entry time series.

use super::*;

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
        let any = |stable: bool| has_points(&d.diagram, stable);
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
