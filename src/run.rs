//! The verbs of the workbench as library functions: each takes a parsed model file, dispatches
//! on its `kind` to the family's solver and returns an [`Output`] (text and JSON). The CLI only
//! parses arguments, calls these and prints.

use std::path::{Path, PathBuf};

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

/// Draws the figures of a model file into a directory and returns the files written.
pub type Draw = fn(&ModelFile, &Path) -> Result<Vec<PathBuf>>;

/// One model family: the `kind`s it reads and what each verb does with them. [`FAMILIES`] is
/// the one table of the workbench; `model/` knows no kind, the CLI, `sweep` and `figures`
/// dispatch through here.
pub struct Family {
    /// The `kind` values of its model files.
    pub kinds: &'static [&'static str],
    /// Validate without running (keys, types, ranges, budgets): `Ok(true)` when the check is
    /// complete, `Ok(false)` when part of it happens only in the run (`sweep` files are checked
    /// by `modeflow sweep`).
    pub check: fn(&ModelFile) -> Result<bool>,
    /// `modeflow predict`: analytic predictions beside their ODE values.
    pub predict: Option<fn(&ModelFile) -> Result<Output>>,
    /// `modeflow train`: train the networks; predictions beside measurements.
    pub train: Option<fn(&ModelFile) -> Result<Output>>,
    /// `modeflow phase`: phase and learning portraits into a directory (the files written).
    pub phase: Option<Draw>,
}

/// Every model family, in the order their kinds are listed to users.
pub const FAMILIES: &[Family] = &[
    Family {
        kinds: &["latent"],
        check: |m| crate::interference::latent_model::LatentSpec::from_model(m).map(|_| true),
        predict: Some(predict_latent),
        train: None,
        phase: Some(crate::figures::latent_figures),
    },
    Family {
        kinds: &["linear2x2"],
        check: |m| crate::interference::linear::spec::check(m).map(|_| true),
        predict: Some(predict_linear),
        train: None,
        phase: Some(crate::figures::linear_figures),
    },
    Family {
        kinds: &["sweep"],
        check: |_| Ok(false),
        predict: None,
        train: None,
        phase: None,
    },
    Family {
        kinds: crate::rnn::KINDS,
        check: |m| crate::rnn::spec::check(m).map(|_| true),
        predict: None,
        train: Some(train_rnn),
        phase: None,
    },
    Family {
        kinds: crate::bias::spec::KINDS,
        check: |m| crate::bias::spec::check(m).map(|_| true),
        predict: None,
        train: Some(train_bias),
        phase: None,
    },
];

/// The family of a kind.
pub fn family(kind: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.kinds.contains(&kind))
}

/// Every kind a model file may name.
pub fn kinds() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.kinds.iter().copied())
        .collect()
}

/// The kinds a verb applies to (those whose family has it).
pub fn kinds_with(has: impl Fn(&Family) -> bool) -> Vec<&'static str> {
    FAMILIES
        .iter()
        .filter(|f| has(f))
        .flat_map(|f| f.kinds.iter().copied())
        .collect()
}

/// Read and parse a model file whose `kind` must be one of [`kinds`].
pub fn load(path: &Path) -> Result<ModelFile> {
    crate::model::load_with(path, &kinds())
}

/// `modeflow predict`: analytic predictions beside their ODE values.
pub fn predict(model: &ModelFile) -> Result<Output> {
    match family(&model.common.kind).and_then(|f| f.predict) {
        Some(run) => run(model).map_err(|e| e.in_file(&model.common.file)),
        None => Err(unsupported(model, "predict", &predict_kinds())),
    }
}

fn predict_linear(model: &ModelFile) -> Result<Output> {
    let r = crate::interference::linear::predict(model)?;
    Ok(Output::from_report(model, &r, false))
}

fn predict_latent(model: &ModelFile) -> Result<Output> {
    if crate::interference::latent_model::LatentSpec::from_model(model)?
        .finite_n
        .is_some()
    {
        // claim I-14: the finite-N prediction beside the Gaussian limit
        let r = crate::rnn::finite_n::predict_latent(model)?;
        let failed = r.failed();
        return Ok(Output::from_report(model, &r, failed));
    }
    let r = crate::interference::latent_model::predict(model)?;
    // issue 15: a run whose learning did not converge exited 0
    let s = &r.sequential;
    let failed = !(s.learning_a.converged && s.learning_b.converged);
    Ok(Output::from_report(model, &r, failed))
}

/// Validate a model file without running it: keys, types, ranges and budgets, through the
/// family's `check` (every kind but `sweep`, whose points `modeflow sweep` checks; `Ok(false)`
/// says the check was partial).
pub fn validate(model: &ModelFile) -> Result<bool> {
    match family(&model.common.kind) {
        Some(f) => (f.check)(model),
        None => Ok(false),
    }
}

/// Kinds `predict` applies to.
pub fn predict_kinds() -> Vec<&'static str> {
    kinds_with(|f| f.predict.is_some())
}

/// Kinds `phase` applies to (those with a 2-D latent form).
pub fn phase_kinds() -> Vec<&'static str> {
    kinds_with(|f| f.phase.is_some())
}

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
    match family(&model.common.kind).and_then(|f| f.train) {
        Some(run) => run(model).map_err(|e| e.in_file(&model.common.file)),
        None => Err(unsupported(model, "train", &train_kinds())),
    }
}

/// `modeflow phase`: phase and learning portraits of a model file, written into `dir` (created
/// if missing). Returns the files written.
pub fn phase(model: &ModelFile, dir: &Path) -> Result<Vec<PathBuf>> {
    match family(&model.common.kind).and_then(|f| f.phase) {
        Some(draw) => {
            crate::io::ensure_dir(dir)?;
            draw(model, dir)
        }
        None => Err(Error::Requirement(format!(
            "{}: kind `{}` has no 2-D latent form; `modeflow phase` applies to: {}",
            model.common.file,
            model.common.kind,
            phase_kinds().join(", ")
        ))),
    }
}

fn train_rnn(model: &ModelFile) -> Result<Output> {
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

fn train_bias(model: &ModelFile) -> Result<Output> {
    let r = crate::bias::train(model)?;
    if let Some(series) = &r.series {
        write_series(series)?;
    }
    Ok(Output::from_report(model, &r, r.failed()))
}

/// Write a run's time series (CSV) to its resolved path, atomically.
fn write_series(series: &crate::bias::spec::Series) -> Result<()> {
    if let Some(dir) = series.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::io::ensure_dir(dir)?;
    }
    let header: Vec<&str> = series.header.iter().map(String::as_str).collect();
    let text = crate::io::csv(&header, series.rows.iter().cloned());
    crate::io::write_atomic(&series.path, text.as_bytes())
}

/// Kinds `train` applies to.
pub fn train_kinds() -> Vec<&'static str> {
    kinds_with(|f| f.train.is_some())
}
