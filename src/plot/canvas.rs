//! The canvas: bundled font, colour-blind-safe palettes, and atomic SVG + PNG output of one
//! drawing routine.
//!
//! Every figure is a [`Figure`]: one `draw` generic over the plotters backend, rendered once to
//! an SVG string and once to an RGB buffer (encoded as PNG in memory). All bytes of a figure and
//! of its data files are produced before anything is written; each file is then written with
//! [`crate::io::write_atomic`] (temp file + rename), so a failure never leaves a partial file.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, RGBColor};

use crate::{Error, Result};

/// DejaVu Sans 2.37 (Bitstream Vera licence, `assets/LICENSE-DejaVu.txt`), compiled in so that
/// no system font library is needed.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();

/// The font family every text style uses.
pub const FAMILY: &str = "sans-serif";

/// Register the bundled font with plotters (idempotent). Without it, any text panics.
pub fn ensure_font() {
    FONT_ONCE.call_once(|| {
        // The bytes are a valid TrueType font compiled into the binary; a failure here would be
        // a build defect caught by every figure test, so it is ignored rather than propagated.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Okabe–Ito palette (colour-blind safe), in the conventional order.
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 0, 0),       // black
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(204, 121, 167), // reddish purple
];
pub const BLACK_OI: RGBColor = OKABE_ITO[0];
pub const ORANGE: RGBColor = OKABE_ITO[1];
pub const SKY: RGBColor = OKABE_ITO[2];
pub const GREEN_OI: RGBColor = OKABE_ITO[3];
pub const YELLOW_OI: RGBColor = OKABE_ITO[4];
pub const BLUE_OI: RGBColor = OKABE_ITO[5];
pub const VERMILLION: RGBColor = OKABE_ITO[6];
pub const PURPLE: RGBColor = OKABE_ITO[7];
pub const GREY: RGBColor = RGBColor(120, 120, 120);
pub const LIGHT_GREY: RGBColor = RGBColor(200, 200, 200);

/// Series colours in order of use (Okabe–Ito without yellow, which is weak on white).
pub fn series_colour(i: usize) -> RGBColor {
    const ORDER: [usize; 7] = [5, 6, 3, 1, 7, 2, 0];
    OKABE_ITO[ORDER[i % ORDER.len()]]
}

/// Viridis at 11 equally spaced stops (matplotlib's table), interpolated linearly.
const VIRIDIS: [(u8, u8, u8); 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];

/// Viridis colour of `t` in [0, 1] (clamped; NaN maps to grey).
pub fn viridis(t: f64) -> RGBColor {
    if t.is_nan() {
        return LIGHT_GREY;
    }
    let t = t.clamp(0.0, 1.0) * 10.0;
    let i = (t.floor() as usize).min(9);
    let f = t - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + f * (y as f64 - x as f64)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Lighten a colour towards white by `amount` in [0, 1] (for shaded regions).
pub fn lighten(c: RGBColor, amount: f64) -> RGBColor {
    let m = |x: u8| (x as f64 + amount * (255.0 - x as f64)).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

/// Text style of the given pixel size in the bundled family.
pub fn font(size: u32) -> TextStyle<'static> {
    ensure_font();
    (FAMILY, size).into_font().color(&BLACK)
}

/// A colour scale mapping values to viridis, linear or logarithmic.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ColourScale {
    pub min: f64,
    pub max: f64,
    pub log: bool,
}

impl ColourScale {
    /// Scale spanning the finite (and, for log, positive) values; degenerate ranges widened.
    pub fn from_values(values: impl IntoIterator<Item = f64>, log: bool) -> Self {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for v in values {
            if v.is_finite() && (!log || v > 0.0) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !lo.is_finite() {
            (lo, hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        if hi <= lo {
            if log {
                hi = lo * 10.0;
            } else {
                let d = if lo == 0.0 { 1.0 } else { 0.5 * lo.abs() };
                (lo, hi) = (lo - d, hi + d);
            }
        }
        ColourScale {
            min: lo,
            max: hi,
            log,
        }
    }

    /// Position of `v` in [0, 1] (NaN for non-finite or, on a log scale, non-positive values).
    pub fn unit(&self, v: f64) -> f64 {
        if !v.is_finite() || (self.log && v <= 0.0) {
            return f64::NAN;
        }
        if self.log {
            (v.ln() - self.min.ln()) / (self.max.ln() - self.min.ln())
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }

    pub fn colour(&self, v: f64) -> RGBColor {
        viridis(self.unit(v))
    }

    /// Value at unit position `u`.
    pub fn value(&self, u: f64) -> f64 {
        if self.log {
            (self.min.ln() + u * (self.max.ln() - self.min.ln())).exp()
        } else {
            self.min + u * (self.max - self.min)
        }
    }
}

/// Compact tick label: fixed for moderate magnitudes, scientific otherwise.
pub fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { format!("{v}") };
    }
    let a = v.abs();
    if (1e-2..1e4).contains(&a) {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.to_string()
        }
    } else {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    }
}

/// Check a figure size: 300..=8000 pixels wide, 200..=8000 high (smaller leaves no room for
/// the axes, legend and colour bar; larger is surely a mistake).
pub fn check_size(what: &str, (w, h): (u32, u32)) -> Result<()> {
    if !(300..=8000).contains(&w) || !(200..=8000).contains(&h) {
        return Err(Error::Requirement(format!(
            "{what}: size {w}x{h} outside 300..=8000 x 200..=8000 pixels"
        )));
    }
    Ok(())
}

/// Three significant digits (colour-bar labels, whose values are not round numbers).
pub fn sig3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return tick(v);
    }
    let a = v.abs();
    if (1e-2..1e4).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.2e}")
    }
}

/// Map a plotters drawing error to the crate error.
pub(crate) trait Drawn<T> {
    fn drawn(self) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync> Drawn<T>
    for std::result::Result<T, DrawingAreaErrorKind<E>>
{
    fn drawn(self) -> Result<T> {
        self.map_err(|e| Error::Numerical(format!("drawing the figure failed: {e}")))
    }
}

/// A figure: one drawing routine, generic over the backend.
pub trait Figure {
    /// Size in pixels (SVG user units) as (width, height).
    fn size(&self) -> (u32, u32);
    /// Draw onto `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Render a figure to an SVG document.
pub fn render_svg(fig: &impl Figure) -> Result<String> {
    ensure_font();
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, fig.size()).into_drawing_area();
        root.fill(&WHITE).drawn()?;
        fig.draw(&root)?;
        root.present().drawn()?;
    }
    Ok(s)
}

/// Render a figure to an RGB8 buffer (row-major, `3 * width * height` bytes).
pub fn render_rgb(fig: &impl Figure) -> Result<Vec<u8>> {
    ensure_font();
    let (w, h) = fig.size();
    let mut buf = vec![255u8; 3 * w as usize * h as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).drawn()?;
        fig.draw(&root)?;
        root.present().drawn()?;
    }
    Ok(buf)
}

/// Encode an RGB8 buffer as PNG in memory.
pub fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| Error::Numerical(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// Where a figure goes: `dir/stem.svg`, `dir/stem.png` and data files `dir/stem<suffix>`.
#[derive(Debug, Clone)]
pub struct Output {
    pub dir: PathBuf,
    pub stem: String,
    /// Recorded under `"provenance"` in the JSON beside the figure (e.g. the model envelope
    /// from [`crate::report::envelope`]: model file, seed, version).
    pub provenance: Option<serde_json::Value>,
}

impl Output {
    pub fn new(dir: impl AsRef<Path>, stem: impl Into<String>) -> Self {
        Output {
            dir: dir.as_ref().to_path_buf(),
            stem: stem.into(),
            provenance: None,
        }
    }

    pub fn with_provenance(mut self, p: serde_json::Value) -> Self {
        self.provenance = Some(p);
        self
    }

    /// The path `dir/stem<suffix>`.
    pub fn path(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{}", self.stem, suffix))
    }

    /// The same directory with another stem (for sub-figures).
    pub fn sibling(&self, stem: impl Into<String>) -> Self {
        Output {
            dir: self.dir.clone(),
            stem: stem.into(),
            provenance: self.provenance.clone(),
        }
    }
}

/// JSON written beside a figure: version, figure kind, title, provenance and the data drawn.
pub fn figure_json(
    out: &Output,
    kind: &str,
    title: &str,
    data: &impl serde::Serialize,
) -> Result<String> {
    let v = serde_json::json!({
        "modeflow_version": env!("CARGO_PKG_VERSION"),
        "figure": kind,
        "title": title,
        "provenance": out.provenance,
        "data": data,
    });
    serde_json::to_string(&v)
        .map_err(|e| Error::Numerical(format!("serialising figure data failed: {e}")))
}

/// Render `fig` to SVG and PNG, then write both and the data files (`(suffix, contents)`,
/// e.g. `(".json", ..)`, `("_branches.csv", ..)`) atomically. Returns the written paths.
///
/// Everything is rendered before the first write; an unwritable directory fails on the first
/// file with [`Error::Io`] naming it, and no file (not even a temporary one) is left behind.
pub fn write_figure(
    fig: &impl Figure,
    out: &Output,
    data: &[(&str, String)],
) -> Result<Vec<PathBuf>> {
    let svg = render_svg(fig)?;
    let png = encode_png(&render_rgb(fig)?, fig.size())?;
    if !out.dir.is_dir() {
        return Err(Error::io(
            &out.dir,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "output directory does not exist",
            ),
        ));
    }
    let mut files: Vec<(PathBuf, &[u8])> = vec![
        (out.path(".svg"), svg.as_bytes()),
        (out.path(".png"), png.as_slice()),
    ];
    for (suffix, text) in data {
        files.push((out.path(suffix), text.as_bytes()));
    }
    let mut written = Vec::new();
    for (path, bytes) in files {
        if let Err(e) = crate::io::write_atomic(&path, bytes) {
            // keep the set consistent: remove what this call already wrote
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        written.push(path);
    }
    Ok(written)
}

/// Draw a vertical colour bar in `area` for `scale`, labelled `label`.
pub fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    scale: &ColourScale,
    label: &str,
) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    // a log scale says so, on a line of its own under the label
    let top = if scale.log { 50 } else { 30 };
    let bottom = h - 20;
    let x0 = 12;
    let x1 = x0 + 18.min(w / 4).max(8);
    area.draw(&Text::new(label.to_string(), (4, 6), font(15)))
        .drawn()?;
    if scale.log {
        area.draw(&Text::new("(log scale)", (4, 26), font(14)))
            .drawn()?;
    }
    let n = (bottom - top).max(1);
    for k in 0..n {
        let u = 1.0 - k as f64 / n as f64;
        area.draw(&Rectangle::new(
            [(x0, top + k), (x1, top + k + 1)],
            viridis(u).filled(),
        ))
        .drawn()?;
    }
    area.draw(&Rectangle::new(
        [(x0, top), (x1, bottom)],
        BLACK.stroke_width(1),
    ))
    .drawn()?;
    for k in 0..=4 {
        let u = k as f64 / 4.0;
        let y = bottom - ((bottom - top) as f64 * u).round() as i32;
        area.draw(&PathElement::new(vec![(x1, y), (x1 + 4, y)], BLACK))
            .drawn()?;
        // snap rounding noise (e.g. 1e-16 for a zero in the middle of a linear scale)
        let v = scale.value(u);
        let v = if !scale.log && v.abs() < 1e-9 * (scale.max - scale.min) {
            0.0
        } else {
            v
        };
        area.draw(&Text::new(sig3(v), (x1 + 6, y - 6), font(13)))
            .drawn()?;
    }
    Ok(())
}

/// Clip a polyline to the box `[lo, hi]`, returning the visible pieces (Liang–Barsky per
/// segment; non-finite points break the line).
pub fn clip_polyline(points: &[[f64; 2]], lo: [f64; 2], hi: [f64; 2]) -> Vec<Vec<(f64, f64)>> {
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        if !(a[0].is_finite() && a[1].is_finite() && b[0].is_finite() && b[1].is_finite()) {
            if cur.len() > 1 {
                pieces.push(std::mem::take(&mut cur));
            }
            cur.clear();
            continue;
        }
        match clip_segment(a, b, lo, hi) {
            Some((p, q, a_in, b_in)) => {
                if !a_in || cur.is_empty() {
                    if cur.len() > 1 {
                        pieces.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                    cur.push((p[0], p[1]));
                }
                cur.push((q[0], q[1]));
                if !b_in {
                    pieces.push(std::mem::take(&mut cur));
                }
            }
            None => {
                if cur.len() > 1 {
                    pieces.push(std::mem::take(&mut cur));
                }
                cur.clear();
            }
        }
    }
    if cur.len() > 1 {
        pieces.push(cur);
    }
    pieces
}

/// Liang–Barsky: the visible part of segment a-b, with whether each end was inside.
fn clip_segment(
    a: [f64; 2],
    b: [f64; 2],
    lo: [f64; 2],
    hi: [f64; 2],
) -> Option<([f64; 2], [f64; 2], bool, bool)> {
    let d = [b[0] - a[0], b[1] - a[1]];
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for k in 0..2 {
        for (p, q) in [(-d[k], a[k] - lo[k]), (d[k], hi[k] - a[k])] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64| [a[0] + t * d[0], a[1] + t * d[1]];
    Some((at(t0), at(t1), t0 == 0.0, t1 == 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_endpoints_and_clamp() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(2.0), viridis(1.0));
        assert_eq!(viridis(0.5), RGBColor(33, 145, 140));
    }

    #[test]
    fn log_scale_round_trips() {
        let s = ColourScale::from_values([1e-3, 1.0, 10.0, -1.0, f64::NAN], true);
        assert_eq!((s.min, s.max), (1e-3, 10.0));
        for u in [0.0, 0.3, 1.0] {
            assert!((s.unit(s.value(u)) - u).abs() < 1e-12);
        }
        assert!(s.unit(-1.0).is_nan());
    }

    #[test]
    fn clipping_keeps_inside_and_cuts_at_the_box() {
        let pts = [[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0], [2.0, 0.5], [0.5, 0.5]];
        let pieces = clip_polyline(&pts, [-1.0, -1.0], [1.0, 1.0]);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0], vec![(-1.0, 0.0), (0.0, 0.0), (1.0, 0.0)]);
        assert_eq!(pieces[1], vec![(1.0, 0.5), (0.5, 0.5)]);
    }

    #[test]
    fn ticks_are_compact() {
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(2.0), "2");
        assert_eq!(tick(1.5e-5), "1.5e-5");
        assert_eq!(tick(2.0e6), "2e6");
        assert_eq!(tick(-0.0001), "-1e-4");
        assert_eq!(sig3(480.523), "481");
        assert_eq!(sig3(17.34), "17.3");
        assert_eq!(sig3(0.0230), "0.023");
        assert_eq!(sig3(1.3e4), "1.30e4");
    }
}

#[cfg(test)]
mod clip_props {
    proptest::proptest! {
        /// Clipped pieces lie in the box.
        #[test]
        fn clipped_pieces_lie_in_the_box(
            pts in proptest::collection::vec((-3.0f64..3.0, -3.0f64..3.0), 2..30),
        ) {
            let pts: Vec<[f64; 2]> = pts.into_iter().map(|(x, y)| [x, y]).collect();
            for piece in super::clip_polyline(&pts, [-1.0, -1.0], [1.0, 1.0]) {
                proptest::prop_assert!(piece.len() >= 2);
                for (x, y) in piece {
                    proptest::prop_assert!(x.abs() <= 1.0 + 1e-12 && y.abs() <= 1.0 + 1e-12);
                }
            }
        }
    }
}
