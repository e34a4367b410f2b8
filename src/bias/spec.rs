//! Model files of the implicit-bias families and `modeflow train` for them: each run prints its
//! predictions beside the measurements with a verdict and writes its time series as CSV.
//!
//! Kinds (see `models/bias-*.toml`):
//! - `bias_balance`: two-layer net under (S)GD with weight decay; B-1 per-step identity and the
//!   accumulated drift.
//! - `bias_rnn_balance` ([`rnn_balance`]): ReLU RNN under BPTT-GD; B-2 per-step charge identity
//!   and its drift exponent.
//! - `bias_margin`: separable logistic regression in 2-D; B-6 w_hat, rho(T), slope of |w| vs ln t.
//! - `bias_diagonal`: diagonal linear net under (S)GD; B-10/B-11 alpha_inf, mirror argmin.
//! - `bias_agreement` ([`agreement`]): leaky-ReLU +-1 student of a linear teacher; B-3 linear
//!   boundary, cluster counts, B-4 agreement regime, B-5 lifted GD and its max-margin direction.
//! - `bias_smoothed_margin` ([`smoothed_margin`]): B-7 smoothed margin of a homogeneous net.
//! - `bias_clusters` ([`clusters`]): B-8 two clusters on orthogonally separable data.
//! - `bias_width` ([`width`]): B-9 SGD updates to zero hinge loss over widths, 1/eta scaling.
//! - `bias_modified_flow` ([`modified_flow`]): B-12 order test of the modified flows.
//! - `bias_saxe` ([`saxe`]): B-13 mode curves of a balanced aligned linear net.
//! - `bias_approx_grad` ([`approx_grad`]): B-14 one-step bias/variance formula vs Monte Carlo.
//! - `bias_pattern` ([`pattern`]): B-15 pattern detection, test error and clusters vs width.
//! - `bias_student_reference` ([`student_reference`]): B-16 reference runs of the +-1 student.
//!
//! Each kind: a raw struct (`deny_unknown_fields`) -> validation naming the field -> a run of the
//! library functions of `crate::bias` -> rows of prediction | measurement | verdict, summaries,
//! and a CSV (written only after a successful run; `csv` key, optional).

pub mod agreement;
pub mod approx_grad;
pub mod balance;
pub mod clusters;
pub mod diagonal;
pub mod margin;
pub mod modified_flow;
pub mod pattern;
pub mod rnn_balance;
pub mod saxe;
pub mod smoothed_margin;
pub mod student_reference;
pub mod width;

use std::path::PathBuf;

use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use super::solvers::hard_margin_svm;
use crate::compare::{Row, Verdict};
use crate::model::{Checker, ModelFile};
use crate::report::{fmt_num, Report};
use crate::{Error, Result};

/// The model kinds of this module (part of the family table, `kinds` in `src/run.rs`).
pub const KINDS: &[&str] = &[
    "bias_balance",
    "bias_rnn_balance",
    "bias_margin",
    "bias_diagonal",
    "bias_agreement",
    "bias_smoothed_margin",
    "bias_clusters",
    "bias_width",
    "bias_modified_flow",
    "bias_saxe",
    "bias_approx_grad",
    "bias_pattern",
    "bias_student_reference",
];

/// Result of `modeflow train` on a bias model.
#[derive(Debug, Clone, Serialize)]
pub struct BiasReport {
    pub kind: String,
    pub name: String,
    pub seed: u64,
    /// Predictions beside measurements.
    pub rows: Vec<Row>,
    /// Scalar summaries (name, value).
    pub summary: Vec<(String, f64)>,
    /// Where the time series goes, if requested (written by the application, [`Series`]).
    pub csv: Option<PathBuf>,
    /// The time series itself (not part of the JSON report).
    #[serde(skip)]
    pub series: Option<Series>,
}

/// A time series of a run and the file it belongs in: the domain computes it, the application
/// writes it (`src/run.rs`).
#[derive(Debug, Clone)]
pub struct Series {
    /// The resolved path under the output directory ([`crate::io::output_path`]).
    pub path: PathBuf,
    pub header: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl BiasReport {
    /// Whether any row failed (the CLI exits with 1).
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Fail)
    }
}

impl Report for BiasReport {
    fn text(&self) -> String {
        let mut s = format!("{} `{}` (seed {})\n", self.kind, self.name, self.seed);
        for (k, v) in &self.summary {
            s.push_str(&format!("  {k:<32} {}\n", fmt_num(*v)));
        }
        s.push_str(&format!(
            "  {:<58} {:>13} {:>13} {:>10} {:>10}  verdict\n",
            "quantity", "predicted", "measured", "error", "tolerance"
        ));
        for r in &self.rows {
            let v = match r.verdict {
                Verdict::Pass => "pass",
                Verdict::Undetermined => "undetermined",
                Verdict::Disputed => "disputed",
                Verdict::Fail => "FAIL",
            };
            s.push_str(&format!(
                "  {:<58} {:>13} {:>13} {:>10} {:>10}  {v}{}\n",
                r.label,
                fmt_num(r.predicted),
                fmt_num(r.measured),
                fmt_num(r.error),
                fmt_num(r.tolerance),
                if r.note.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", r.note)
                }
            ));
        }
        if let Some(p) = &self.csv {
            s.push_str(&format!("  time series -> {}\n", p.display()));
        }
        s
    }
}

/// Bytes a bias model's sizes imply, from its integer keys (f64: no product overflows): the
/// data n x d, the first layer k x d, the activations n x k, a test set n_test x (d + k), each
/// held about four times (value, gradient, optimiser or snapshot, scratch). `n` is `n` or
/// `n_train`; absent keys count 0 (and `d`, `k` at least 1). Returns the estimate and the key
/// with the largest value (the one to change).
pub fn memory_estimate(rest: &toml::Table) -> (f64, &'static str, f64) {
    let get = |k: &str| match rest.get(k) {
        Some(toml::Value::Integer(v)) if *v > 0 => *v as f64,
        _ => 0.0,
    };
    let n = get("n").max(get("n_train"));
    let (d, k, t) = (get("d").max(1.0), get("k").max(1.0), get("n_test"));
    let bytes = 8.0 * 4.0 * (n * d + n * k + k * d + t * (d + k));
    let keys = [
        (
            if get("n") >= get("n_train") {
                "n"
            } else {
                "n_train"
            },
            n,
        ),
        ("d", d),
        ("k", k),
        ("n_test", t),
    ];
    let (key, v) = keys
        .into_iter()
        .fold(("n", 0.0), |a, b| if b.1 > a.1 { b } else { a });
    (bytes, key, v)
}

/// The checks of a bias model that come before any data are drawn: the memory budget of its
/// sizes ([`memory_estimate`]) and its output path (`csv`, which must stay under the output
/// directory and must not name the model file).
pub fn precheck(model: &ModelFile) -> Result<()> {
    // issue 15: bias_diagonal n = d = 1e5 asked for 80 GB, bias_balance d = 1e4, k = 1e5,
    // n = 1e6 more: rejected before the data are drawn
    let (bytes, key, value) = memory_estimate(&model.rest);
    crate::budget::check_memory(
        &model.common.file,
        key,
        value,
        bytes,
        "data n x d, layer k x d, activations n x k, test set n_test x (d + k), each about 4x",
    )?;
    // a CSV path that leaves --out or names the model file is refused before the run
    match model.rest.get("csv") {
        Some(toml::Value::String(p)) => {
            crate::io::output_path(&model.common.out, &model.common.file, "csv", p)?;
        }
        Some(v) => {
            return Err(model.checker().error(
                "csv",
                crate::io::truncate(&v.to_string(), 80),
                "a file name (string)",
                "wrong type",
            ))
        }
        None => {}
    }
    Ok(())
}

/// `modeflow train` for the bias kinds.
pub fn train(model: &ModelFile) -> Result<BiasReport> {
    precheck(model)?;
    let (rows, summary, csv) = match model.common.kind.as_str() {
        "bias_balance" => balance::train(model)?,
        "bias_rnn_balance" => rnn_balance::train(model)?,
        "bias_margin" => margin::train(model)?,
        "bias_diagonal" => diagonal::train(model)?,
        "bias_agreement" => agreement::train(model)?,
        "bias_smoothed_margin" => smoothed_margin::train(model)?,
        "bias_clusters" => clusters::train(model)?,
        "bias_width" => width::train(model)?,
        "bias_modified_flow" => modified_flow::train(model)?,
        "bias_saxe" => saxe::train(model)?,
        "bias_approx_grad" => approx_grad::train(model)?,
        "bias_pattern" => pattern::train(model)?,
        "bias_student_reference" => student_reference::train(model)?,
        other => {
            return Err(Error::ModelFile {
                file: model.common.file.clone(),
                message: format!("kind `{other}` is not a bias kind ({})", KINDS.join(", ")),
            })
        }
    };
    Ok(BiasReport {
        kind: model.common.kind.clone(),
        name: model.common.name.clone(),
        seed: model.common.seed,
        rows,
        summary,
        csv: csv.as_ref().map(|s| s.path.clone()),
        series: csv,
    })
}

/// `modeflow validate` for the bias kinds: the budget and output path ([`precheck`]) and every
/// key of the kind's raw struct through its `check` (the validated spec is dropped; nothing is
/// trained). Checks that need a solver (separability of explicit data) happen in the run.
pub fn check(model: &ModelFile) -> Result<()> {
    precheck(model)?;
    match model.common.kind.as_str() {
        "bias_balance" => balance::check(model).map(drop),
        "bias_rnn_balance" => rnn_balance::check(model).map(drop),
        "bias_margin" => margin::check(model).map(drop),
        "bias_diagonal" => diagonal::check(model).map(drop),
        "bias_agreement" => agreement::check(model).map(drop),
        "bias_smoothed_margin" => smoothed_margin::check(model).map(drop),
        "bias_clusters" => clusters::check(model).map(drop),
        "bias_width" => width::check(model).map(drop),
        "bias_modified_flow" => modified_flow::check(model).map(drop),
        "bias_saxe" => saxe::check(model).map(drop),
        "bias_approx_grad" => approx_grad::check(model).map(drop),
        "bias_pattern" => pattern::check(model).map(drop),
        "bias_student_reference" => student_reference::check(model).map(drop),
        other => Err(Error::ModelFile {
            file: model.common.file.clone(),
            message: format!("kind `{other}` is not a bias kind ({})", KINDS.join(", ")),
        }),
    }
}

type Trained = (Vec<Row>, Vec<(String, f64)>, Option<Series>);

/// The time series of a run, bound for `csv` under the output directory of the run
/// (`model.common.out`, `--out` of `modeflow train`); see [`crate::io::output_path`].
fn time_series(
    model: &ModelFile,
    path: &Option<String>,
    header: &[&str],
    rows: Vec<Vec<f64>>,
) -> Result<Option<Series>> {
    match path {
        None => Ok(None),
        Some(p) => Ok(Some(Series {
            path: crate::io::output_path(&model.common.out, &model.common.file, "csv", p)?,
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
        })),
    }
}

/// Explicit data of a model file: `points` (rows, each of length `dim` if given, else all of
/// the first point's length) and `labels` (+1 or -1, one per point). Errors name the field.
fn labelled_points(
    c: &Checker,
    points: &[Vec<f64>],
    labels: &[f64],
    dim: Option<usize>,
) -> Result<(DMatrix<f64>, DVector<f64>)> {
    if points.is_empty() {
        return Err(c.error("points", "[]", "at least one point", "no data"));
    }
    if points.len() != labels.len() {
        return Err(c.error(
            "labels",
            format!("{} labels", labels.len()),
            &format!("{} labels (one per point)", points.len()),
            "points and labels differ in length",
        ));
    }
    let d = dim.unwrap_or(points[0].len());
    if d == 0 {
        return Err(c.error("points[0]", "[]", "a non-empty point", "empty point"));
    }
    for (i, p) in points.iter().enumerate() {
        if p.len() != d {
            return Err(c.error(
                &format!("points[{i}]"),
                format!("a point of dimension {}", p.len()),
                &format!("dimension {d}"),
                "inconsistent shapes: all points must have the same dimension",
            ));
        }
        for (j, v) in p.iter().enumerate() {
            c.finite(&format!("points[{i}][{j}]"), *v)?;
        }
    }
    for (i, v) in labels.iter().enumerate() {
        if *v != 1.0 && *v != -1.0 {
            return Err(c.error(&format!("labels[{i}]"), v, "+1 or -1", "not a label"));
        }
    }
    Ok((
        DMatrix::from_fn(points.len(), d, |i, j| points[i][j]),
        DVector::from_column_slice(labels),
    ))
}

/// Data keys of a model file: a teacher to generate from (`n`, `d`, `margin`) or explicit rows
/// and labels.
#[derive(Debug, Clone)]
pub enum Data {
    Teacher { n: usize, d: usize, margin: f64 },
    Explicit(DMatrix<f64>, DVector<f64>),
}

/// Validate the data keys of a teacher-or-explicit family.
fn data_keys(
    c: &Checker,
    n: Option<i64>,
    d: Option<i64>,
    margin: Option<f64>,
    points: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
) -> Result<Data> {
    match (points, labels) {
        (None, None) => {
            let missing = |f: &str| {
                c.error(
                    f,
                    "missing",
                    "an integer",
                    "the teacher data need n, d, margin (or give points and labels)",
                )
            };
            let n = c.count("n", n.ok_or_else(|| missing("n"))?, 1, 100_000)?;
            let d = c.count("d", d.ok_or_else(|| missing("d"))?, 1, 10_000)?;
            // |w*.x| >= margin for Gaussian x keeps a fraction erfc(margin/sqrt 2) of the draws
            // (4.6% at 2); margin > 0 keeps the normalised SVM margin away from 0
            let margin = c.in_open("margin", margin.ok_or_else(|| missing("margin"))?, 0.0, 2.0)?;
            Ok(Data::Teacher { n, d, margin })
        }
        (Some(p), Some(l)) => {
            for (f, given) in [
                ("n", n.is_some()),
                ("d", d.is_some()),
                ("margin", margin.is_some()),
            ] {
                if given {
                    return Err(c.error(
                        f,
                        "given",
                        "absent when points are given",
                        "points and labels replace the teacher data",
                    ));
                }
            }
            let (x, y) = labelled_points(c, &p, &l, None)?;
            Ok(Data::Explicit(x, y))
        }
        _ => Err(unpaired_points(c)),
    }
}

/// The error of a model file that gives `points` without `labels` or the reverse.
/// `drift_etas` of a drift exponent: at least 2 positive step sizes, strictly decreasing.
fn drift_etas(c: &Checker, etas: &[f64]) -> Result<()> {
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
    Ok(())
}

fn unpaired_points(c: &Checker) -> Error {
    c.error(
        "points",
        "one of points/labels",
        "both or neither",
        "points and labels go together",
    )
}

/// The hard-margin SVM of the data, with the file and the requirement named on failure.
fn separable(file: &str, x: &DMatrix<f64>, y: &DVector<f64>, why: &str) -> Result<DVector<f64>> {
    match hard_margin_svm(x, y, 1e-12) {
        Ok(s) => Ok(s.w),
        Err(Error::Requirement(m)) => Err(Error::Requirement(format!(
            "{file}: `points`/`labels`: {m}; {why}"
        ))),
        Err(e) => Err(e),
    }
}

/// `n` steps in 1..=steps, log-spaced (deduplicated, always containing 1 and `steps`).
fn log_steps(steps: usize, n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n)
        .map(|i| {
            (steps as f64)
                .powf(i as f64 / (n.max(2) - 1) as f64)
                .round() as usize
        })
        .map(|t| t.clamp(1, steps.max(1)))
        .collect();
    v.dedup();
    v
}

/// The checked spec of the shipped model file `models/NAME`, for the tests that a claim's
/// `Spec::reference()` is its shipped model.
#[cfg(test)]
fn shipped_spec<S>(name: &str, check: fn(&ModelFile) -> Result<S>) -> S {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    check(&crate::model::parse(name, &text).unwrap()).unwrap()
}

/// Assert that the shipped model file `models/NAME` checks to `reference` (compared through
/// `Debug`, every field), apart from its `csv` path, which every shipped model names as
/// NAME with `.csv` and every reference leaves out.
#[cfg(test)]
fn assert_shipped<S: std::fmt::Debug>(
    name: &str,
    check: fn(&ModelFile) -> Result<S>,
    reference: &S,
) {
    let shipped = format!("{:?}", shipped_spec(name, check));
    let csv = format!("csv: Some({:?})", name.replace(".toml", ".csv"));
    assert!(shipped.contains(&csv), "{name} ships without its csv path");
    assert_eq!(
        shipped.replace(&csv, "csv: None"),
        format!("{reference:?}"),
        "{name}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ModelFile {
        crate::model::parse("test.toml", text).unwrap()
    }

    /// issue 15: bias_diagonal n = d = 1e5 (80 GB) and bias_balance d = 1e4, k = 1e5, n = 1e6
    /// aborted allocating; the budget rejects them naming the largest size.
    #[test]
    fn memory_estimates_reject_huge_sizes() {
        let m = parse("kind = \"bias_diagonal\"\nn = 100000\nd = 100000\n");
        let (bytes, key, _) = memory_estimate(&m.rest);
        assert!(bytes >= 8.0 * 1e10 && (key == "n" || key == "d"));
        assert!(matches!(precheck(&m), Err(Error::Parameter { .. })));
        let m = parse("kind = \"bias_balance\"\nd = 10000\nk = 100000\nn = 1000000\n");
        let (_, key, v) = memory_estimate(&m.rest);
        assert_eq!((key, v), ("n", 1e6));
        let e = precheck(&m).unwrap_err().to_string();
        assert!(e.contains("test.toml") && e.contains("`n`"), "{e}");
        // the shipped sizes are far below the budget
        let m = parse("kind = \"bias_balance\"\nd = 10\nk = 50\nn = 200\n");
        assert!(precheck(&m).is_ok());
    }

    #[test]
    fn shipped_models_train() {
        for (name, text) in [
            ("balance", include_str!("../../models/bias-balance.toml")),
            ("margin", include_str!("../../models/bias-margin.toml")),
            ("diagonal", include_str!("../../models/bias-diagonal.toml")),
        ] {
            let mut m = parse(text);
            m.rest.remove("csv");
            if name == "margin" {
                m.rest.insert("steps".into(), toml::Value::Integer(100_000));
                m.rest.remove("rho_claimed");
            }
            let r = train(&m).unwrap();
            assert!(!r.text().is_empty());
            assert!(!r.failed() || name == "margin", "{name}: {}", r.text());
        }
    }

    #[test]
    fn labelled_points_name_the_offending_field() {
        let c = Checker::new("f.toml");
        let (x, y) =
            labelled_points(&c, &[vec![1.0, 2.0], vec![3.0, 4.0]], &[1.0, -1.0], None).unwrap();
        assert_eq!((x.nrows(), x.ncols(), y.len()), (2, 2, 2));
        assert_eq!(x[(1, 0)], 3.0);
        let field = |r: Result<(DMatrix<f64>, DVector<f64>)>| match r {
            Err(Error::Parameter { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let two = [vec![1.0, 2.0], vec![3.0]];
        assert_eq!(
            field(labelled_points(&c, &two, &[1.0, 1.0], None)),
            "points[1]"
        );
        let one = [vec![1.0, 2.0, 3.0]];
        assert_eq!(
            field(labelled_points(&c, &one, &[1.0], Some(2))),
            "points[0]"
        );
        let ok = [vec![1.0], vec![2.0]];
        assert_eq!(field(labelled_points(&c, &ok, &[1.0], None)), "labels");
        assert_eq!(
            field(labelled_points(&c, &ok, &[1.0, 0.5], None)),
            "labels[1]"
        );
        let nan = [vec![1.0], vec![f64::NAN]];
        assert_eq!(
            field(labelled_points(&c, &nan, &[1.0, -1.0], None)),
            "points[1][0]"
        );
        assert_eq!(field(labelled_points(&c, &[], &[], None)), "points");
    }

    #[test]
    fn log_steps_cover_the_run() {
        let v = log_steps(1000, 10);
        assert_eq!((v[0], *v.last().unwrap()), (1, 1000));
        assert!(v.windows(2).all(|p| p[0] < p[1]));
        assert_eq!(log_steps(1, 5), vec![1]);
    }

    #[test]
    fn bad_inputs_give_typed_errors() {
        let m = parse("kind = \"bias_balance\"\nd = 3\nk = 2\nn = 5\nactivation = \"tanh\"\nloss = \"square\"\neta = 0.1\nbatch = 5\nsteps = 10\n");
        assert!(matches!(train(&m), Err(Error::Parameter { .. })));
        let m = parse("kind = \"bias_balance\"\nd = 3\nk = 2\nn = 5\nactivation = \"relu\"\nloss = \"square\"\neta = 0.1\nbatch = 6\nsteps = 10\n");
        assert!(matches!(train(&m), Err(Error::Parameter { .. })));
        let m = parse("kind = \"bias_balance\"\nd = 3\nk = 2\nn = 5\nactivation = \"linear\"\nloss = \"square\"\neta = 80.0\nbatch = 5\nsteps = 100\n");
        assert!(matches!(train(&m), Err(Error::Diverged { .. })));
        let m = parse("kind = \"bias_margin\"\npoints = [[1.0, 0.0], [2.0, 0.0]]\nlabels = [1.0, -1.0]\neta = 1.0\nsteps = 100\n");
        assert!(matches!(train(&m), Err(Error::Requirement(_))));
        let m = parse("kind = \"bias_margin\"\npoints = [[1.0, 0.0]]\nlabels = [1.0, -1.0]\neta = 1.0\nsteps = 100\n");
        assert!(matches!(train(&m), Err(Error::Parameter { .. })));
        let m = parse("kind = \"bias_diagonal\"\nn = 10\nd = 5\nsparsity = 2\nalpha = 0.3\neta = 0.01\nbatch = 10\n");
        assert!(matches!(train(&m), Err(Error::Parameter { .. })));
        let m = parse("kind = \"bias_diagonal\"\nn = 10\nd = 20\nsparsity = 2\nalpha = 0.3\neta = 0.01\nbatch = 10\ntypo = 1\n");
        assert!(matches!(train(&m), Err(Error::ModelFile { .. })));
    }
}
