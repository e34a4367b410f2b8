//! Kind `bias_margin` (THEORY II.3, B-6; Soudry et al. 2018): GD on the mean logistic loss of a
//! separable 2-D set from w = 0; w(t) = w_hat ln t + rho(t) with w_hat the hard-margin SVM
//! direction and rho(T) against the SVM-dual prediction.
//!
//! Keys: `points`, `labels` (default: the reference set of THEORY II.3), `eta`, `steps`,
//! `rho_claimed` (optional: a claimed limit to compare against), `figure_etas` (optional: further
//! step sizes drawn beside `eta` in the norm-growth figure; not trained by `modeflow train`),
//! `csv`.

use nalgebra::Vector2;
use serde::Deserialize;

use super::{labelled_points, time_series, unpaired_points, Trained};
use crate::bias::margin::{soudry, soudry_set, SoudryRun, RHO_TOL, SLOPE_TOL};
use crate::compare::Row;
use crate::model::ModelFile;
use crate::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// points as [x1, x2]; default: the reference set of THEORY II.3
    points: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
    eta: f64,
    steps: i64,
    /// claimed rho limit to compare against (optional)
    rho_claimed: Option<[f64; 2]>,
    #[serde(default)]
    figure_etas: Vec<f64>,
    csv: Option<String>,
}

/// A checked `bias_margin` model file.
#[derive(Debug, Clone)]
pub struct Spec {
    pub points: Vec<Vector2<f64>>,
    pub labels: Vec<f64>,
    pub eta: f64,
    pub steps: u64,
    pub rho_claimed: Option<[f64; 2]>,
    /// further step sizes of the norm-growth figure
    pub figure_etas: Vec<f64>,
    pub csv: Option<String>,
}

impl Spec {
    /// The B-6 reference: the THEORY II.3 set, eta = 1, T = 1e6, rho -> (-ln 5, 0)
    /// (`models/bias-margin.toml`).
    pub fn reference() -> Spec {
        let (points, labels) = soudry_set();
        Spec {
            points,
            labels,
            eta: 1.0,
            steps: 1_000_000,
            rho_claimed: Some([-(5.0f64.ln()), 0.0]),
            figure_etas: vec![0.25],
            csv: None,
        }
    }
}

/// Check a `bias_margin` model file without running it (separability is checked by the SVM
/// in the run).
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let eta = c.positive("eta", raw.eta)?;
    let steps = c.count("steps", raw.steps, 10, 1_000_000_000)? as u64;
    let (points, labels) = match (raw.points, raw.labels) {
        (None, None) => soudry_set(),
        (Some(p), Some(l)) => {
            let (x, y) = labelled_points(&c, &p, &l, Some(2))?;
            (
                (0..x.nrows())
                    .map(|i| Vector2::new(x[(i, 0)], x[(i, 1)]))
                    .collect(),
                y.iter().copied().collect(),
            )
        }
        _ => return Err(unpaired_points(&c)),
    };
    if let Some(rc) = raw.rho_claimed {
        for (i, v) in rc.iter().enumerate() {
            c.finite(&format!("rho_claimed[{i}]"), *v)?;
        }
    }
    for (i, &e) in raw.figure_etas.iter().enumerate() {
        c.positive(&format!("figure_etas[{i}]"), e)?;
    }
    Ok(Spec {
        points,
        labels,
        eta,
        steps,
        rho_claimed: raw.rho_claimed,
        figure_etas: raw.figure_etas,
        csv: raw.csv,
    })
}

/// The B-6 run of a checked spec at step size `eta` (the spec's own or one of its
/// `figure_etas`); `file` names the model file when the data are not separable.
pub fn run(spec: &Spec, eta: f64, file: &str) -> Result<SoudryRun> {
    soudry(&spec.points, &spec.labels, eta, spec.steps).map_err(|e| match e {
        Error::Requirement(m) => Error::Requirement(format!(
            "{file}: `points`/`labels`: {m}; B-6 needs linearly separable data"
        )),
        e => e,
    })
}

/// The rows of a run: rho(T) and the slope of |w| against ln t, and rho(T) against the claimed
/// limit if the spec has one.
pub fn rows(spec: &Spec, r: &SoudryRun) -> Vec<Row> {
    let mut rows = vec![
        Row::abs(
            "rho_1(T) vs SVM-dual prediction",
            r.rho_pred[0],
            r.rho[0],
            RHO_TOL,
        ),
        Row::abs(
            "rho_2(T) vs SVM-dual prediction",
            r.rho_pred[1],
            r.rho[1],
            RHO_TOL,
        ),
        Row::abs(
            "slope of |w| against ln t on [T/10, T]",
            1.0 * r.w_hat[0].hypot(r.w_hat[1]),
            r.slope,
            SLOPE_TOL,
        ),
    ];
    if let Some(rc) = spec.rho_claimed {
        rows.push(Row::abs("rho_1(T) vs claimed", rc[0], r.rho[0], RHO_TOL));
        rows.push(Row::abs("rho_2(T) vs claimed", rc[1], r.rho[1], RHO_TOL));
    }
    rows
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let r = run(&spec, spec.eta, &model.common.file)?;
    let rows = rows(&spec, &r);
    let wh = r.w_hat;
    let series = r
        .samples
        .iter()
        .map(|s| {
            let l = (s.t.max(1) as f64).ln();
            vec![
                s.t as f64,
                s.w[0],
                s.w[1],
                s.w[0].hypot(s.w[1]),
                s.w[0] - wh[0] * l,
                s.w[1] - wh[1] * l,
                s.loss,
            ]
        })
        .collect();
    let csv = time_series(
        model,
        &spec.csv,
        &["t", "w1", "w2", "norm_w", "rho1", "rho2", "loss"],
        series,
    )?;
    let summary = vec![
        ("w_hat[0]".into(), wh[0]),
        ("w_hat[1]".into(), wh[1]),
        ("ln T".into(), (spec.steps as f64).ln()),
    ];
    Ok((rows, summary, csv))
}
