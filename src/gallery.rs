//! `modeflow figures`: the gallery (figures of the shipped models, the race and rotation-share
//! maps with an optional sweep overlay, the implicit-bias figures). The application layer: it
//! reads model files through the family table ([`crate::run`]) and draws through
//! [`crate::figures`] and [`crate::figures::bias`].

use std::path::{Path, PathBuf};

use crate::figures;
use crate::model::ModelFile;
use crate::plot::heatmap::Points;
use crate::{io, Error, Result};

/// Points of a sweep result to overlay on the gallery maps: `(race, theta)`.
///
/// - race map (r, eps): rows whose axes end in `r` and `eps`, coloured by the first output
///   ending in `interference` (on the map's colour scale);
/// - rotation-share map (g, T_d): rows whose axes end in `g` and `t_d` (only `u_s` = 0 if the
///   sweep has a `u_s` axis, as the map is for pure memory), split into I > 1 (A forgotten) and
///   I <= 1, from the first output containing `interference`.
///
/// A sweep with no rows, or with neither pair of axes, is an error naming the file.
pub fn sweep_overlay(
    sw: &crate::sweep::SweepResult,
    file: &str,
) -> Result<(Vec<Points>, Vec<Points>)> {
    if sw.rows.is_empty() {
        return Err(Error::Requirement(format!(
            "{file}: the sweep result has no rows"
        )));
    }
    let axis = |name: &str| {
        sw.axes
            .iter()
            .position(|a| a.rsplit('.').next() == Some(name))
    };
    let out_i = sw.outputs.iter().position(|o| o.contains("interference"));
    let num = |v: &serde_json::Value| v.as_f64();
    let mut race = Vec::new();
    let mut theta = Vec::new();
    let Some(oi) = out_i else {
        return Err(Error::Requirement(format!(
            "{file}: the sweep records no output named like `interference`"
        )));
    };
    if let (Some(ir), Some(ie)) = (axis("r"), axis("eps")) {
        let (mut pts, mut vals) = (Vec::new(), Vec::new());
        for row in sw.rows.iter().filter(|r| r.status == "ok") {
            if let (Some(r), Some(e), Some(i)) = (
                num(&row.params[ir]),
                num(&row.params[ie]),
                num(&row.outputs[oi]),
            ) {
                pts.push([r, e]);
                vals.push(i);
            }
        }
        race.push(Points {
            label: format!("sweep {}", sw.name),
            points: pts,
            values: Some(vals),
        });
    }
    if let (Some(ig), Some(it)) = (axis("g"), axis("t_d")) {
        let ius = axis("u_s");
        let (mut hi, mut lo) = (Vec::new(), Vec::new());
        // a failed verdict still carries its measurement; an error row does not
        for row in sw.rows.iter().filter(|r| !r.status.starts_with("error")) {
            if ius.is_some_and(|k| num(&row.params[k]) != Some(0.0)) {
                continue;
            }
            if let (Some(g), Some(t), Some(i)) = (
                num(&row.params[ig]),
                num(&row.params[it]),
                num(&row.outputs[oi]),
            ) {
                if i > 1.0 {
                    hi.push([g, t])
                } else {
                    lo.push([g, t])
                }
            }
        }
        theta.push(Points {
            label: format!("{}: I > 1 (A forgotten)", sw.name),
            points: hi,
            values: None,
        });
        theta.push(Points {
            label: format!("{}: I <= 1", sw.name),
            points: lo,
            values: None,
        });
    }
    if race.is_empty() && theta.is_empty() {
        return Err(Error::Requirement(format!(
            "{file}: sweep axes {:?} contain neither (r, eps) nor (g, t_d)",
            sw.axes
        )));
    }
    Ok((race, theta))
}

/// The shipped models whose figures make up the gallery (file names in `models/`).
pub const GALLERY_MODELS: &[&str] = &[
    "default.toml",
    "linear-rotation.toml",
    "linear-new-formation.toml",
    "latent-rotation.toml",
    "latent-new-formation.toml",
];

/// One item of the gallery.
pub enum GalleryItem {
    /// Figures of a shipped model file.
    Model(&'static str),
    /// The (r, eps) interference phase diagram.
    RaceMap,
    /// The (g, T_d) rotation-share map.
    ThetaMap,
    /// An implicit-bias figure of [`crate::figures::bias`] (writes into the given directory).
    Bias(fn(&Path) -> Result<Vec<PathBuf>>),
    /// An implicit-bias figure of [`crate::figures::bias`] driven by a shipped model file (read
    /// from the models directory, checked by its family's spec).
    BiasModel(&'static str, fn(&ModelFile, &Path) -> Result<Vec<PathBuf>>),
    /// A learning-rule figure of [`crate::figures::rules`] (writes into the given directory).
    Rules(fn(&Path) -> Result<Vec<PathBuf>>),
}

/// Every item of the gallery, in order.
pub fn gallery_items() -> Vec<GalleryItem> {
    let mut v: Vec<GalleryItem> = GALLERY_MODELS
        .iter()
        .map(|m| GalleryItem::Model(m))
        .collect();
    v.push(GalleryItem::RaceMap);
    v.push(GalleryItem::Rules(crate::figures::rules::eprop_race_map));
    v.push(GalleryItem::ThetaMap);
    use crate::figures::bias as fb;
    type Draw = fn(&ModelFile, &Path) -> Result<Vec<PathBuf>>;
    let bias_figures: [(&'static str, Draw); 5] = [
        ("bias-margin.toml", fb::norm_growth),
        ("bias-balance-drift.toml", fb::balance_drift),
        ("bias-student-clusters.toml", fb::clusters),
        ("bias-diagonal.toml", fb::diagonal_bias),
        ("bias-modified-flow-order.toml", fb::modified_flow_order),
    ];
    v.extend(
        bias_figures
            .into_iter()
            .map(|(name, draw)| GalleryItem::BiasModel(name, draw)),
    );
    v.push(GalleryItem::Bias(crate::figures::step_size_map));
    v.push(GalleryItem::Bias(crate::figures::step_size_predictors));
    v.push(GalleryItem::Rules(crate::figures::rules::rule_tradeoff));
    v
}

/// Produce one gallery item into `dir`, reading shipped models from `models_dir`.
/// `overlay` = (race-map points, rotation-share-map points), e.g. from [`sweep_overlay`].
pub fn gallery_item(
    item: &GalleryItem,
    models_dir: &Path,
    dir: &Path,
    overlay: &(Vec<Points>, Vec<Points>),
) -> Result<Vec<PathBuf>> {
    match item {
        GalleryItem::Model(name) => {
            let m = crate::run::load(&models_dir.join(name))?;
            crate::run::phase(&m, dir)
        }
        GalleryItem::RaceMap => figures::race_map(dir, 56, 42, &overlay.0),
        GalleryItem::ThetaMap => figures::theta_map(dir, 46, 57, &overlay.1),
        GalleryItem::BiasModel(name, f) => {
            let m = crate::run::load(&models_dir.join(name))?;
            io::ensure_dir(dir)?;
            f(&m, dir)
        }
        GalleryItem::Bias(f) | GalleryItem::Rules(f) => {
            io::ensure_dir(dir)?;
            f(dir)
        }
    }
}

/// The default models directory: `./models` if present, else the source tree's.
pub fn default_models_dir() -> PathBuf {
    let local = PathBuf::from("models");
    if local.join("default.toml").is_file() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
    }
}
