//! Kind `bias_balance` (THEORY II.1, B-1): a two-layer net under (S)GD with weight decay; the
//! per-step identity of the balance D_j = |w_j|^2 - a_j^2 and its accumulated drift.
//!
//! Keys: sizes `d`, `k`, `n`; `activation` (relu, leaky_relu with `leaky_slope`, linear),
//! `loss` (square, logistic), `init` std, `eta`, `weight_decay`, `batch`, `steps`,
//! `record_every`, `csv`; optionally the drift exponent at a fixed horizon: `drift_etas` (at
//! least 2 decreasing step sizes), `drift_horizon` (eta T, default 1), `drift_seeds` (SGD runs
//! averaged per step size, default 8). Net and data are drawn from the model's seed.
//! Optionally (`models/bias-balance-check.toml`, the B-1 check) two more experiments:
//! - `[identity_sweep]`: the per-step identity over every combination of `activations`,
//!   `losses`, `weight_decays` and `batches` (in that nesting order), each run `steps` steps of
//!   size `eta` on a net of the model's sizes `d`, `k`, `n`, `init` (leaky slope
//!   `leaky_slope`); run c = 1, 2, ... draws its net and data at `seed` + c and its minibatch
//!   order at c.
//! - `[deep_linear]`: GD on a deep linear net of layer `widths` (d_0, ..., d_L; entries
//!   N(0, `init`^2)) on `n` Gaussian inputs and targets drawn at `seed`, with `eta`,
//!   `weight_decay`, `steps`; the per-step identity of M_l = W_{l+1}^T W_{l+1} - W_l W_l^T.
//!
//! Rows: the per-step identity (relative residual <= 1e-12); with `[identity_sweep]`, the worst
//! residual over its runs, with `[deep_linear]`, the worst entrywise residual of M_l (both
//! <= 1e-12); with `drift_etas`, the fitted exponent of drift ~ eta^p at eta T fixed for GD and
//! for SGD with batch `batch` (1 +- 0.05).

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, SeedableRng};
use serde::Deserialize;

mod tables;

use tables::{
    check_deep_linear, check_sweep, deep_linear_row, identity_row, run_deep_linear, run_sweep,
    RawDeepLinear, RawSweep,
};
pub use tables::{DeepLinearSpec, IdentitySweep};

use super::{time_series, Trained};
use crate::bias::balance::{
    random_two_layer, summed_drift, two_layer_run_observed, BalanceRun, SgdSettings, DRIFT_ETAS,
    EXPONENT_TOL, IDENTITY_TOL,
};
use crate::bias::nets::{Activation, Loss, TwoLayer};
use crate::bias::stats::{fmt_list, loglog_slope};
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
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
    identity_sweep: Option<RawSweep>,
    deep_linear: Option<RawDeepLinear>,
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
    /// the per-step identity over a grid of settings (`[identity_sweep]`)
    pub identity: Option<IdentitySweep>,
    /// the deep linear identity (`[deep_linear]`)
    pub deep_linear: Option<DeepLinearSpec>,
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
    let act = activation(&c, "activation", &raw.activation, raw.leaky_slope)?;
    let loss = loss_named(&c, "loss", &raw.loss)?;
    let drift = match raw.drift_etas {
        None => None,
        Some(etas) => {
            super::drift_etas(&c, &etas)?;
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
    let identity = match raw.identity_sweep {
        Some(sw) => Some(check_sweep(model, sw, n, raw.leaky_slope)?),
        None => None,
    };
    let deep_linear = match raw.deep_linear {
        Some(dl) => Some(check_deep_linear(model, dl)?),
        None => None,
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
        identity,
        deep_linear,
        seed: model.common.seed,
        csv: raw.csv,
    })
}

/// An activation by name (leaky ReLU with the checked `leaky_slope`).
fn activation(c: &Checker, field: &str, name: &str, leaky_slope: f64) -> Result<Activation> {
    Ok(
        match c.one_of(field, name, &["relu", "leaky_relu", "linear"])? {
            "relu" => Activation::Relu,
            "leaky_relu" => {
                Activation::LeakyRelu(c.in_range("leaky_slope", leaky_slope, 0.0, 1.0)?)
            }
            _ => Activation::Linear,
        },
    )
}

/// A loss by name.
fn loss_named(c: &Checker, field: &str, name: &str) -> Result<Loss> {
    Ok(match c.one_of(field, name, &["square", "logistic"])? {
        "square" => Loss::Square,
        _ => Loss::Logistic,
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
    /// The B-1 reference, `models/bias-balance-check.toml`: the drift model
    /// `models/bias-balance-drift.toml` (leaky-ReLU net d = 6, k = 12, n = 40, square loss, init
    /// std 0.7, seed 11; its own run eta = 0.002, SGD batch 8, 500 steps; drift over 8 shuffles at
    /// eta*T = 1) with the claim's step sizes [`DRIFT_ETAS`]; the identity sweep over ReLU, leaky
    /// ReLU 0.2 and linear x square and logistic loss x weight decay 0, 0.1 x batch 40 (GD), 5
    /// (SGD), eta = 0.05, 200 steps, seeds 101..=124; the deep linear net 4-5-3-2 (init std 0.6,
    /// n = 30, seed 7) under GD with eta = 0.05, weight decay 0.05, 300 steps.
    pub fn reference() -> Spec {
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
            identity: Some(IdentitySweep {
                activations: vec![
                    Activation::Relu,
                    Activation::LeakyRelu(0.2),
                    Activation::Linear,
                ],
                losses: vec![Loss::Square, Loss::Logistic],
                batches: vec![40, 5],
                weight_decays: vec![0.0, 0.1],
                eta: 0.05,
                steps: 200,
                seed: 100,
            }),
            deep_linear: Some(DeepLinearSpec {
                widths: vec![4, 5, 3, 2],
                n: 30,
                init: 0.6,
                eta: 0.05,
                lambda: 0.05,
                steps: 300,
                seed: 7,
            }),
            seed: 11,
            csv: None,
        }
    }
}

/// What a `bias_balance` run measured: the model's own run (and its time series: step, batch
/// loss, sum_j |D_j - D_j(0)|, |W|^2, |a|^2 every `record_every` steps), and the optional parts.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run: BalanceRun,
    pub series: Vec<Vec<f64>>,
    /// the worst per-step residual over the identity sweep
    pub identity: Option<f64>,
    pub deep_linear: Option<BalanceRun>,
    pub drift: Option<DriftCurves>,
}

/// The B-1 run of a checked spec: the model's own (S)GD run with its time series, then the
/// identity sweep, the deep linear run and the drift curves the spec asks for.
pub fn run(spec: &Spec) -> Result<Outcome> {
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
    let identity = match &spec.identity {
        Some(sw) => Some(run_sweep(spec, sw)?),
        None => None,
    };
    let deep_linear = match &spec.deep_linear {
        Some(dl) => Some(run_deep_linear(dl)?),
        None => None,
    };
    let drift = match &spec.drift {
        Some(d) => Some(drift_curves(spec, d)?),
        None => None,
    };
    Ok(Outcome {
        run,
        series,
        identity,
        deep_linear,
        drift,
    })
}

/// B-1's rows of a run and its summaries: the per-step identity of the model's own run, of the
/// identity sweep and of the deep linear net, and the drift exponents. What `modeflow train` on
/// a `bias_balance` model and the B-1 check report.
pub fn rows(spec: &Spec, out: &Outcome) -> (Vec<Row>, Vec<(String, f64)>) {
    let mut rows = vec![Row::abs(
        "max per-step residual of D' = (1-eta lambda)^2 D + eta^2 (|g_w|^2 - g_a^2)",
        0.0,
        out.run.max_residual,
        IDENTITY_TOL,
    )
    .note("relative to |w_j|^2 + a_j^2")];
    let mut summary = vec![
        ("final batch loss".into(), out.run.final_loss),
        ("balance drift sum_j |Delta D_j|".into(), out.run.drift),
        ("eta T".into(), spec.eta * spec.steps as f64),
    ];
    if let (Some(sw), Some(worst)) = (&spec.identity, out.identity) {
        rows.push(identity_row(spec, sw, worst));
    }
    if let (Some(dl), Some(r)) = (&spec.deep_linear, &out.deep_linear) {
        rows.push(deep_linear_row(dl, r));
    }
    if let Some(c) = &out.drift {
        rows.extend(drift_rows(spec, c));
        summary.push(("GD drift exponent".into(), c.gd_exponent));
        summary.push(("SGD drift exponent".into(), c.sgd_exponent));
    }
    (rows, summary)
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let out = run(&spec)?;
    let (rows, summary) = rows(&spec, &out);
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
        out.series,
    )?;
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B-1's reference is the shipped `models/bias-balance-check.toml`.
    #[test]
    fn reference_is_the_shipped_model() {
        super::super::assert_shipped("bias-balance-check.toml", check, &Spec::reference());
    }

    /// The check's net is the drift model's (the gallery's drift figure), at the claim's step
    /// sizes (a subset of the figure's).
    #[test]
    fn reference_is_the_shipped_drift_model_but_for_the_step_sizes() {
        let (a, b) = (
            super::super::shipped_spec("bias-balance-drift.toml", check),
            Spec::reference(),
        );
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
        assert!(a.identity.is_none() && a.deep_linear.is_none());
    }
}
