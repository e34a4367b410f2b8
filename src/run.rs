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
    predict_kind(model).map_err(|e| e.in_file(&model.common.file))
}

fn predict_kind(model: &ModelFile) -> Result<Output> {
    match model.common.kind.as_str() {
        "linear2x2" => {
            let r = crate::interference::linear::predict(model)?;
            Ok(Output::from_report(model, &r, false))
        }
        "latent"
            if crate::latent::LatentSpec::from_model(model)?
                .finite_n
                .is_some() =>
        {
            // claim I-14: the finite-N prediction beside the Gaussian limit
            let r = crate::rnn::finite_n::predict_latent(model)?;
            let failed = r.failed();
            Ok(Output::from_report(model, &r, failed))
        }
        "latent" => {
            let r = crate::latent::predict(model)?;
            // issue 15: a run whose learning did not converge exited 0
            let s = &r.sequential;
            let failed = !(s.learning_a.converged && s.learning_b.converged);
            Ok(Output::from_report(model, &r, failed))
        }
        _ => Err(unsupported(model, "predict", PREDICT_KINDS)),
    }
}

/// Validate a model file without running it: keys, types, ranges and budgets, for the kinds
/// whose checks are separate from their solvers (rnn, linear2x2, latent). The bias kinds
/// validate inside training; for them only the budget and the output path are checked here
/// and `Ok(false)` says the check was partial.
pub fn validate(model: &ModelFile) -> Result<bool> {
    match model.common.kind.as_str() {
        "rnn" => crate::rnn::spec::check(model).map(|_| true),
        "linear2x2" => crate::interference::linear::spec::check(model).map(|_| true),
        "latent" => crate::latent::model::LatentSpec::from_model(model).map(|_| true),
        k if crate::bias::spec::KINDS.contains(&k) => {
            crate::bias::spec::precheck(model).map(|_| false)
        }
        _ => Ok(false),
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

/// The `result` JSON of [`predict`] as far as the top-level fields `fields` need it, and
/// whether a verdict failed. For `linear2x2` only the named fields are computed (a JSON object
/// holding those of them the result has), with shared parts from `shared`, each value
/// identical to the one in [`predict`]'s result (`predict` of a linear2x2 model never fails a
/// verdict); other kinds run the whole [`predict`] and return its whole result, so that a
/// failure can be explained by every row of it.
pub fn predict_fields(
    model: &ModelFile,
    fields: &[&str],
    shared: &Shared,
) -> Result<(serde_json::Value, bool)> {
    match model.common.kind.as_str() {
        "linear2x2" => {
            let m = crate::interference::linear::predict_fields(model, fields, &shared.linear)
                .map_err(|e| e.in_file(&model.common.file))?;
            Ok((serde_json::Value::Object(m), false))
        }
        _ => {
            let o = predict(model)?;
            let result = o.json.get("result").cloned().unwrap_or_default();
            Ok((result, o.failed))
        }
    }
}

/// `modeflow train`: train the networks a model file describes; predictions beside measurements.
pub fn train(model: &ModelFile) -> Result<Output> {
    train_kind(model).map_err(|e| e.in_file(&model.common.file))
}

fn train_kind(model: &ModelFile) -> Result<Output> {
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
