//! Kind `bias_balance` (THEORY II.1, B-1): a two-layer net under (S)GD with weight decay; the
//! per-step identity of the balance D_j = |w_j|^2 - a_j^2 and its accumulated drift.
//!
//! Keys: sizes `d`, `k`, `n`; `activation` (relu, leaky_relu with `leaky_slope`, linear),
//! `loss` (square, logistic), `init` std, `eta`, `weight_decay`, `batch`, `steps`,
//! `record_every`, `csv`; optionally the drift exponent at a fixed horizon: `drift_etas` (at
//! least 2 decreasing step sizes), `drift_horizon` (eta T, default 1), `drift_seeds` (SGD runs
//! averaged per step size, default 8). Net and data are drawn from the model's seed.
//!
//! Rows: the per-step identity (relative residual <= 1e-12); with `drift_etas`, the fitted
//! exponent of drift ~ eta^p at eta T fixed for GD and for SGD with batch `batch` (1 +- 0.05).

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, SeedableRng};
use serde::Deserialize;

use super::{time_series, Trained};
use crate::bias::balance::{
    random_two_layer, summed_drift, two_layer_run_observed, SgdSettings, DRIFT_ETAS, EXPONENT_TOL,
    IDENTITY_TOL,
};
use crate::bias::nets::{Activation, Loss, TwoLayer};
use crate::bias::stats::{fmt_list, loglog_slope};
use crate::compare::Row;
use crate::model::ModelFile;
use crate::Result;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    d: i64,
    k: i64,
    n: i64,
    activation: String,
    #[serde(default = "default_leaky")]
    leaky_slope: f64,
    loss: String,
    #[serde(default = "default_init")]
    init: f64,
    eta: f64,
    #[serde(default)]
    weight_decay: f64,
    batch: i64,
    steps: i64,
    #[serde(default = "default_every")]
    record_every: i64,
    drift_etas: Option<Vec<f64>>,
    #[serde(default = "default_horizon")]
    drift_horizon: f64,
    #[serde(default = "default_drift_seeds")]
    drift_seeds: i64,
    csv: Option<String>,
}

fn default_leaky() -> f64 {
    0.2
}
fn default_init() -> f64 {
    0.5
}
fn default_every() -> i64 {
    10
}
fn default_horizon() -> f64 {
    1.0
}
fn default_drift_seeds() -> i64 {
    8
}

/// The drift-exponent part of a `bias_balance` model file.
#[derive(Debug, Clone)]
pub struct DriftSpec {
    /// decreasing step sizes
    pub etas: Vec<f64>,
    /// the fixed horizon eta T
    pub horizon: f64,
    /// SGD runs (shuffle seeds 0..seeds) averaged per step size
    pub seeds: u64,
}

/// A checked `bias_balance` model file.
#[derive(Debug, Clone)]
pub struct Spec {
    pub d: usize,
    pub k: usize,
    pub n: usize,
    pub act: Activation,
    pub loss: Loss,
    pub init: f64,
    pub eta: f64,
    pub lambda: f64,
    pub batch: usize,
    pub steps: usize,
    pub record_every: usize,
    pub drift: Option<DriftSpec>,
    pub seed: u64,
    pub csv: Option<String>,
}

impl Spec {
    /// The net and data of the model file (drawn from its seed).
    pub fn net_and_data(&self) -> (TwoLayer, DMatrix<f64>, DVector<f64>) {
        let mut rng = StdRng::seed_from_u64(self.seed);
        random_two_layer(
            &mut rng, self.d, self.k, self.n, self.act, self.loss, self.init,
        )
    }
}

/// Check a `bias_balance` model file without running it.
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let d = c.count("d", raw.d, 1, 10_000)?;
    let k = c.count("k", raw.k, 1, 100_000)?;
    let n = c.count("n", raw.n, 1, 1_000_000)?;
    let act = match c.one_of(
        "activation",
        &raw.activation,
        &["relu", "leaky_relu", "linear"],
    )? {
        "relu" => Activation::Relu,
        "leaky_relu" => {
            Activation::LeakyRelu(c.in_range("leaky_slope", raw.leaky_slope, 0.0, 1.0)?)
        }
        _ => Activation::Linear,
    };
    let loss = match c.one_of("loss", &raw.loss, &["square", "logistic"])? {
        "square" => Loss::Square,
        _ => Loss::Logistic,
    };
    let drift = match raw.drift_etas {
        None => None,
        Some(etas) => {
            if etas.len() < 2 {
                return Err(c.error(
                    "drift_etas",
                    format!("{etas:?}"),
                    "a decreasing list of at least 2 step sizes",
                    "an exponent needs two step sizes",
                ));
            }
            for (i, &e) in etas.iter().enumerate() {
                c.positive(&format!("drift_etas[{i}]"), e)?;
                if i > 0 && e >= etas[i - 1] {
                    return Err(c.error(
                        &format!("drift_etas[{i}]"),
                        e,
                        &format!("< drift_etas[{}] = {}", i - 1, etas[i - 1]),
                        "the list must decrease",
                    ));
                }
            }
            let horizon = c.positive("drift_horizon", raw.drift_horizon)?;
            // every step size runs horizon / eta steps, drift_seeds + 1 times
            let seeds = c.count("drift_seeds", raw.drift_seeds, 1, 1000)? as u64;
            let total: f64 = etas.iter().map(|e| horizon / e).sum::<f64>() * (seeds + 1) as f64;
            crate::budget::check_steps(
                &model.common.file,
                "drift_etas",
                etas[etas.len() - 1],
                total,
                "every drift step size runs horizon / eta steps, drift_seeds + 1 times",
            )?;
            Some(DriftSpec {
                etas,
                horizon,
                seeds,
            })
        }
    };
    Ok(Spec {
        d,
        k,
        n,
        act,
        loss,
        init: c.positive("init", raw.init)?,
        eta: c.positive("eta", raw.eta)?,
        lambda: c.non_negative("weight_decay", raw.weight_decay)?,
        batch: c.count("batch", raw.batch, 1, raw.n)?,
        steps: c.count("steps", raw.steps, 1, 100_000_000)?,
        record_every: c.count("record_every", raw.record_every, 1, i64::MAX)?,
        drift,
        seed: model.common.seed,
        csv: raw.csv,
    })
}

/// Drift sum_j |D_j(T) - D_j(0)| at the fixed horizon for each step size of a [`DriftSpec`],
/// for GD (full batch) and for SGD with the spec's batch (over the `seeds` shuffles), from the
/// spec's net and data, with its loss and no weight decay.
#[derive(Debug, Clone)]
pub struct DriftCurves {
    pub etas: Vec<f64>,
    pub horizon: f64,
    pub gd: Vec<f64>,
    /// SGD drift summed over the shuffles, and its mean
    pub sgd_total: Vec<f64>,
    pub sgd: Vec<f64>,
    /// fitted exponents p of drift ~ eta^p (least squares in log-log; the SGD fit on the sums,
    /// the same slope as on the means)
    pub gd_exponent: f64,
    pub sgd_exponent: f64,
}

/// The [`DriftCurves`] of a spec's drift part.
pub fn drift_curves(spec: &Spec, drift: &DriftSpec) -> Result<DriftCurves> {
    let (net0, x, y) = spec.net_and_data();
    let mut gd = Vec::with_capacity(drift.etas.len());
    let mut sgd_total = Vec::with_capacity(drift.etas.len());
    for &eta in &drift.etas {
        let steps = (drift.horizon / eta).round() as usize;
        gd.push(summed_drift(
            &net0, &x, &y, spec.loss, eta, spec.n, steps, 1,
        )?);
        sgd_total.push(summed_drift(
            &net0,
            &x,
            &y,
            spec.loss,
            eta,
            spec.batch,
            steps,
            drift.seeds,
        )?);
    }
    Ok(DriftCurves {
        gd_exponent: loglog_slope(&drift.etas, &gd),
        sgd_exponent: loglog_slope(&drift.etas, &sgd_total),
        sgd: sgd_total.iter().map(|t| t / drift.seeds as f64).collect(),
        etas: drift.etas.clone(),
        horizon: drift.horizon,
        gd,
        sgd_total,
    })
}

/// The drift-exponent rows of [`drift_curves`] (B-1: exponent 1 within [`EXPONENT_TOL`]); the
/// notes list the GD drifts and the SGD drifts summed over the shuffles.
pub fn drift_rows(spec: &Spec, c: &DriftCurves) -> Vec<Row> {
    let h = c.horizon;
    vec![
        Row::abs(
            format!("two-layer GD: drift exponent at eta*T = {h}"),
            1.0,
            c.gd_exponent,
            EXPONENT_TOL,
        )
        .note(format!("etas {:?}, drifts {}", c.etas, fmt_list(&c.gd))),
        Row::abs(
            format!(
                "two-layer SGD b={}: drift exponent at eta*T = {h}",
                spec.batch
            ),
            1.0,
            c.sgd_exponent,
            EXPONENT_TOL,
        )
        .note(format!(
            "etas {:?}, drifts {}",
            c.etas,
            fmt_list(&c.sgd_total)
        )),
    ]
}

impl Spec {
    /// The B-1 drift reference: `models/bias-balance-drift.toml` (leaky-ReLU net d = 6, k = 12,
    /// n = 40, square loss, init std 0.7, seed 11; SGD batch 8 over 8 shuffles, eta*T = 1) with
    /// the claim's step sizes [`DRIFT_ETAS`].
    pub fn drift_reference() -> Spec {
        Spec {
            d: 6,
            k: 12,
            n: 40,
            act: Activation::LeakyRelu(0.2),
            loss: Loss::Square,
            init: 0.7,
            eta: 0.002,
            lambda: 0.0,
            batch: 8,
            steps: 500,
            record_every: 10,
            drift: Some(DriftSpec {
                etas: DRIFT_ETAS.to_vec(),
                horizon: 1.0,
                seeds: 8,
            }),
            seed: 11,
            csv: None,
        }
    }
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let (mut net, x, y) = spec.net_and_data();
    let (every, steps) = (spec.record_every, spec.steps);
    let d0 = net.balance();
    let mut series = Vec::new();
    let s = SgdSettings {
        eta: spec.eta,
        lambda: spec.lambda,
        batch: spec.batch,
        steps,
        seed: spec.seed,
    };
    let run = two_layer_run_observed(&mut net, &x, &y, spec.loss, &s, |step, net, l| {
        if step % every == 0 || step == steps {
            let dj = net.balance();
            let drift = (&dj - &d0).abs().sum();
            let wn: f64 = net.w.norm_squared();
            let an: f64 = net.a.norm_squared();
            series.push(vec![step as f64, l, drift, wn, an]);
        }
    })?;
    let csv = time_series(
        model,
        &spec.csv,
        &[
            "step",
            "batch_loss",
            "sum_abs_balance_drift",
            "w_norm2",
            "a_norm2",
        ],
        series,
    )?;
    let mut rows = vec![Row::abs(
        "max per-step residual of D' = (1-eta lambda)^2 D + eta^2 (|g_w|^2 - g_a^2)",
        0.0,
        run.max_residual,
        IDENTITY_TOL,
    )
    .note("relative to |w_j|^2 + a_j^2")];
    let mut summary = vec![
        ("final batch loss".into(), run.final_loss),
        ("balance drift sum_j |Delta D_j|".into(), run.drift),
        ("eta T".into(), spec.eta * steps as f64),
    ];
    if let Some(drift) = &spec.drift {
        let c = drift_curves(&spec, drift)?;
        rows.extend(drift_rows(&spec, &c));
        summary.push(("GD drift exponent".into(), c.gd_exponent));
        summary.push(("SGD drift exponent".into(), c.sgd_exponent));
    }
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim's reference is the shipped drift model but for the step sizes.
    #[test]
    fn drift_reference_is_the_shipped_drift_model() {
        let m = crate::model::parse(
            "bias-balance-drift.toml",
            include_str!("../../../models/bias-balance-drift.toml"),
        )
        .unwrap();
        let (a, b) = (check(&m).unwrap(), Spec::drift_reference());
        assert_eq!(
            (a.d, a.k, a.n, a.act, a.loss, a.batch, a.seed),
            (b.d, b.k, b.n, b.act, b.loss, b.batch, b.seed)
        );
        assert_eq!(
            (a.init, a.eta, a.lambda, a.steps),
            (b.init, b.eta, b.lambda, b.steps)
        );
        let (da, db) = (a.drift.clone().unwrap(), b.drift.clone().unwrap());
        assert_eq!((da.horizon, da.seeds), (db.horizon, db.seeds));
        assert!(db.etas.iter().all(|e| da.etas.contains(e)));
        // the same net and data
        let ((na, xa, ya), (nb, xb, yb)) = (a.net_and_data(), b.net_and_data());
        assert_eq!((na.w, na.a, xa, ya), (nb.w, nb.a, xb, yb));
    }
}
