//! The verbs of the workbench as library functions: each takes a parsed model file, dispatches
//! on its `kind` to the family's solver and returns an [`Output`] (text and JSON). The CLI only
//! parses arguments, calls these and prints.

use serde::Serialize;

use crate::model::ModelFile;
use crate::report::{envelope, Report};
use crate::{Error, Result};

/// What a verb produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Human-readable report.
    pub text: String,
    /// JSON envelope (version, model, seed, result).
    pub json: serde_json::Value,
    /// Whether a verdict in the result failed (the CLI exits with 1).
    pub failed: bool,
}

impl Output {
    /// Wrap a report.
    pub fn from_report<R: Report + Serialize>(model: &ModelFile, r: &R, failed: bool) -> Self {
        Output {
            text: r.text(),
            json: envelope(&model.common, r),
            failed,
        }
    }
}

fn unsupported(model: &ModelFile, verb: &str, kinds: &[&str]) -> Error {
    Error::ModelFile {
        file: model.common.file.clone(),
        message: format!(
            "`modeflow {verb}` does not apply to kind `{}` (it applies to: {})",
            model.common.kind,
            kinds.join(", ")
        ),
    }
}

/// `modeflow predict`: analytic predictions beside their ODE values.
pub fn predict(model: &ModelFile) -> Result<Output> {
    match model.common.kind.as_str() {
        "linear2x2" => {
            let r = crate::interference::linear::predict(model)?;
            Ok(Output::from_report(model, &r, false))
        }
        "latent" => {
            let r = crate::latent::predict(model)?;
            Ok(Output::from_report(model, &r, false))
        }
        _ => Err(unsupported(model, "predict", PREDICT_KINDS)),
    }
}

/// Kinds `predict` applies to.
pub const PREDICT_KINDS: &[&str] = &["linear2x2", "latent"];

/// What the points of a sweep share: memoised parts of predictions (for `linear2x2`, the
/// per-eps full-flow crossover and the per-r task A and new formation; see
/// [`crate::interference::linear::Predictor`]). Safe to share between threads.
#[derive(Debug, Default)]
pub struct Shared {
    linear: crate::interference::linear::Predictor,
}

/// The top-level fields `fields` of the `result` JSON of [`predict`] (a JSON object holding
/// those of them the result has), and whether a verdict failed. For `linear2x2` only the named
/// fields are computed, with shared parts from `shared`, each value identical to the one in
/// [`predict`]'s result; other kinds run the whole [`predict`] and pick the fields.
pub fn predict_fields(
    model: &ModelFile,
    fields: &[&str],
    shared: &Shared,
) -> Result<(serde_json::Value, bool)> {
    match model.common.kind.as_str() {
        "linear2x2" => {
            let m = crate::interference::linear::predict_fields(model, fields, &shared.linear)?;
            Ok((serde_json::Value::Object(m), false))
        }
        _ => {
            let o = predict(model)?;
            let result = o.json.get("result").cloned().unwrap_or_default();
            let picked = fields
                .iter()
                .filter_map(|&f| result.get(f).map(|v| (f.to_string(), v.clone())))
                .collect();
            Ok((serde_json::Value::Object(picked), o.failed))
        }
    }
}

/// `modeflow train`: train the networks a model file describes; predictions beside measurements.
pub fn train(model: &ModelFile) -> Result<Output> {
    match model.common.kind.as_str() {
        "rnn" => {
            let spec = crate::rnn::spec::check(model)?;
            if let Some(ns) = &spec.xval {
                // issue 3, 7(a): the M-only network at g = 0 beside the latent 2x2 flow
                let x = crate::rnn::latent_xval::XvalSpec::from_rnn(&spec)?;
                let r = crate::rnn::latent_xval::xval_report(&x, ns, spec.seeds as u64)?;
                return Ok(Output::from_report(model, &r, r.failed()));
            }
            let r = crate::rnn::train(model)?;
            Ok(Output::from_report(model, &r, r.failed()))
        }
        k if crate::bias::spec::KINDS.contains(&k) => {
            let r = crate::bias::train(model)?;
            Ok(Output::from_report(model, &r, r.failed()))
        }
        _ => Err(unsupported(model, "train", &train_kinds())),
    }
}

/// Kinds `train` applies to.
pub fn train_kinds() -> Vec<&'static str> {
    [crate::rnn::KINDS, crate::bias::spec::KINDS].concat()
}
