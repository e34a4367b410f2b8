//! The continuation diagram over learning: events, branch labels, stability runs, CSV.

use super::*;

/// Marker of an event kind in the diagrams: fold = cross, branch point = diamond,
/// Hopf = triangle.
fn event_glyph(k: &EventKind) -> Glyph {
    match k {
        EventKind::Fold => Glyph::Cross(BIF_COLOUR),
        EventKind::BranchPoint { .. } => Glyph::Diamond(BIF_COLOUR),
        EventKind::Hopf { .. } => Glyph::Triangle(BIF_COLOUR),
    }
}

pub(super) fn draw_event<DB: DrawingBackend>(
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

/// Whether some branch of `d` has a stable (`stable`) or an unstable point (the legend's
/// stability entries).
pub(super) fn has_points(d: &Diagram, stable: bool) -> bool {
    d.branches
        .iter()
        .any(|b| b.points.iter().any(|q| q.point.kind.is_stable() == stable))
}

/// Legend entries for the event kinds that occur.
pub(super) fn event_entries(d: &Diagram) -> Vec<(Glyph, String)> {
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
pub(super) fn snap(t: f64, range: f64) -> f64 {
    if t.abs() <= 1e-8 * range.abs() {
        0.0
    } else {
        t
    }
}

/// Pieces of a branch of equal stability (consecutive pieces share their boundary point).
pub(super) fn stability_runs(b: &Branch) -> Vec<(bool, std::ops::RangeInclusive<usize>)> {
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
        let any = |stable: bool| has_points(&d.diagram, stable);
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
pub(super) fn branches_csv(d: &Diagram) -> String {
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
