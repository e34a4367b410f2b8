//! Kind `bias_width` (THEORY II.3, B-9; Brutzkus, Globerson, Malach, Shalev-Shwartz 2018): SGD on
//! the hinge loss of an over-parameterised leaky-ReLU net N(x) = sum_j v_j sigma(w_j . x),
//! v_j = +-1/sqrt(k), one reshuffled sample per step; the number of non-zero updates until zero
//! training loss does not depend on the width k, and scales like 1/eta.
//!
//! Keys: data either on the unit sphere labelled by a unit teacher (`n`, `d`, `margin`) or
//! explicit (`points`, `labels`; must be linearly separable through the origin, or SGD never
//! reaches zero hinge loss); leaky slope `alpha` in (0, 1), `eta`, `init` std, `widths` (neurons
//! per sign, >= 2 entries), `max_updates` (cap; reaching it is [`crate::Error::NoConvergence`]),
//! `csv`.
//!
//! Rows: spread (max - min)/mean of the update counts over `widths` <= 5% (claim file B-9: the
//! init std perturbs the shared trajectory); updates(eta/2)/updates(eta) at the first width = 2
//! within 10% (the additive constant of the bound shifts it by O(eta)).

use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{ChiSquared, StandardNormal};
use serde::Deserialize;

use super::{data_keys, separable, time_series, Data, Trained};
use crate::bias::width::{sphere_teacher, updates_to_zero_loss, HingeSgd};
use crate::compare::Row;
use crate::model::ModelFile;
use crate::Result;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    n: Option<i64>,
    d: Option<i64>,
    margin: Option<f64>,
    points: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
    alpha: f64,
    eta: f64,
    init: f64,
    widths: Vec<i64>,
    #[serde(default = "default_max")]
    max_updates: i64,
    csv: Option<String>,
}

fn default_max() -> i64 {
    1_000_000
}

/// Spread tolerance of B-9 (claim file): 5%.
const SPREAD_TOL: f64 = 0.05;
/// eta-scaling tolerance of B-9 (claim file): 10%.
const ETA_TOL: f64 = 0.1;

/// Fraction of the unit sphere in R^d with |u_1| >= margin (Monte Carlo, 2e4 draws: u_1^2 =
/// z^2 / (z^2 + chi^2_{d-1}); resolution ~1e-4, enough for the 1e-3 guard).
fn sphere_acceptance(d: usize, margin: f64) -> f64 {
    let mut rng = StdRng::seed_from_u64(9);
    let n = 20_000;
    let chi = if d > 1 {
        ChiSquared::new((d - 1) as f64).ok()
    } else {
        None
    };
    let hits = (0..n)
        .filter(|_| {
            let z: f64 = rng.sample(StandardNormal);
            let rest = chi.as_ref().map_or(0.0, |c| rng.sample(c));
            z * z >= margin * margin * (z * z + rest)
        })
        .count();
    hits as f64 / n as f64
}

/// A checked `bias_width` model file (the data drawn in the run).
#[derive(Debug, Clone)]
pub struct Spec {
    pub data: Data,
    pub alpha: f64,
    pub eta: f64,
    pub init: f64,
    pub widths: Vec<usize>,
    pub max_updates: usize,
    pub seed: u64,
    pub csv: Option<String>,
}

/// Check a `bias_width` model file without running it: every key in range, generated data
/// that rejection sampling can draw (explicit data are checked for separability in the run).
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let data = data_keys(&c, raw.n, raw.d, raw.margin, raw.points, raw.labels)?;
    let alpha = c.in_open("alpha", raw.alpha, 0.0, 1.0)?;
    let eta = c.positive("eta", raw.eta)?;
    let init = c.non_negative("init", raw.init)?;
    if raw.widths.len() < 2 {
        return Err(c.error(
            "widths",
            format!("{:?}", raw.widths),
            "a list of at least 2 widths",
            "width-independence needs several widths",
        ));
    }
    let widths: Vec<usize> = raw
        .widths
        .iter()
        .enumerate()
        .map(|(i, &k)| c.count(&format!("widths[{i}]"), k, 1, 100_000))
        .collect::<Result<_>>()?;
    let max_updates = c.count("max_updates", raw.max_updates, 1, i64::MAX)?;
    if let Data::Teacher { d, margin, .. } = data {
        let p = sphere_acceptance(d, margin);
        if p < 1e-3 {
            return Err(c.error(
                "margin",
                margin,
                "a smaller margin (or a smaller d)",
                &format!("only a fraction {p:.1e} of the unit sphere in R^{d} has |w*.x| >= margin: rejection sampling would not end"),
            ));
        }
    }
    Ok(Spec {
        data,
        alpha,
        eta,
        init,
        widths,
        max_updates,
        seed: model.common.seed,
        csv: raw.csv,
    })
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    run(model, &spec)
}

/// The B-9 run of a checked spec: update counts over the widths and at eta / 2.
fn run(model: &ModelFile, spec: &Spec) -> Result<Trained> {
    let Spec {
        ref data,
        alpha,
        eta,
        init,
        ref widths,
        max_updates,
        seed,
        ref csv,
    } = *spec;
    let (x, y) = match data {
        Data::Teacher { n, d, margin } => sphere_teacher(*n, *d, *margin, seed),
        Data::Explicit(x, y) => {
            separable(
                &model.common.file,
                x,
                y,
                "SGD reaches zero hinge loss only on linearly separable data",
            )?;
            (x.clone(), y.clone())
        }
    };
    let run = |k: usize, eta: f64| {
        updates_to_zero_loss(
            &x,
            &y,
            &HingeSgd {
                k,
                alpha,
                eta,
                init,
                seed,
                max_updates,
            },
        )
    };
    let counts: Vec<usize> = widths.iter().map(|&k| run(k, eta)).collect::<Result<_>>()?;
    let half = run(widths[0], eta / 2.0)?;
    let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
    let (lo, hi) = (
        *counts.iter().min().unwrap_or(&0),
        *counts.iter().max().unwrap_or(&0),
    );
    let spread = (hi - lo) as f64 / mean;
    let rows = vec![
        Row::abs(
            format!("spread of update counts over k = {widths:?}, (max-min)/mean"),
            0.0,
            spread,
            SPREAD_TOL,
        )
        .note(format!("counts {counts:?} (init std {init}, eta {eta})")),
        Row::rel(
            format!("updates(eta/2) / updates(eta), k = {}", widths[0]),
            2.0,
            half as f64 / counts[0] as f64,
            ETA_TOL,
        )
        .note(format!("{} -> {half}", counts[0])),
    ];
    let summary = vec![
        ("mean updates to zero hinge loss".into(), mean),
        ("eta x mean updates".into(), eta * mean),
        ("updates at eta/2".into(), half as f64),
    ];
    let table = widths
        .iter()
        .zip(&counts)
        .map(|(&k, &u)| vec![k as f64, eta, u as f64])
        .chain(std::iter::once(vec![
            widths[0] as f64,
            eta / 2.0,
            half as f64,
        ]))
        .collect();
    let csv = time_series(model, csv, &["k", "eta", "updates"], table)?;
    Ok((rows, summary, csv))
}
