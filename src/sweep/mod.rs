//! Parameter sweeps over any model family: a sweep file names a base model, the axes (dotted
//! keys of the base file and their values), the seeds, the verb to run and the outputs to keep.
//! Points run in parallel (rayon) with a progress bar, can be split into shards for array jobs
//! on a batch system (`--shard i/n`), and shards merge back into one table.
//!
//! ```toml
//! kind = "sweep"
//! name = "race-grid"
//! base = "linear-rotation.toml"      # relative to the sweep file
//! verb = "predict"                   # predict | train
//! seeds = [1, 2, 3]                  # optional; default: the base model's seed
//! outputs = ["interference", "winner"]   # dotted paths into the result JSON
//! [axes]
//! r = [0.2, 0.3, 0.4]
//! "task.eps" = { from = 0.01, to = 0.1, steps = 10, log = true }
//! ```
//!
//! Axis keys and values are validated before any point runs (an axis over `kind`, `name`,
//! `seed` or a key the family does not know is bad input), and the number of points is held to
//! [`MAX_POINTS`] and the memory budget. A point that fails (a diverged run, an impossible
//! parameter) is recorded with its error in the `status` column, a failed verdict with the
//! labels that failed; the sweep goes on. `modeflow sweep` exits 1 when no point is ok.
//!
//! Resumable runs ([`run_resumable`]): each finished point is appended to a per-shard progress
//! file (JSON lines) as it completes, synced to disk in batches (every 100 ms or 1 % of the
//! points, and at the end); `--resume` skips the points found there, so a killed shard loses at
//! most the points in flight, and a crash of the machine at most the last unsynced batch. `merge` ([`merge_files`]) rejects missing,
//! duplicate and mismatched shards and is bit-exact: floats are written with the shortest
//! round-trip representation and read back exactly (serde_json `float_roundtrip`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{Checker, ModelFile};
pub use crate::report::{Shard, SweepResult, SweepRow};
use crate::{run, Error, Result};

mod resume;
mod table;
pub use resume::{output_stem, progress_path, run_resumable, PROGRESS_SYNC_INTERVAL};
pub use table::{merge, merge_files, missing_outputs, read_result, to_csv, validate_result};

/// An axis given as a list or as a range.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum RawAxis {
    List(Vec<toml::Value>),
    Range {
        from: f64,
        to: f64,
        steps: i64,
        #[serde(default)]
        log: bool,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    base: String,
    #[serde(default = "default_verb")]
    verb: String,
    #[serde(default)]
    seeds: Vec<i64>,
    outputs: Vec<String>,
    axes: toml::Table,
}

fn default_verb() -> String {
    "predict".into()
}

/// One axis: a dotted key of the base model and its values.
#[derive(Debug, Clone, Serialize)]
pub struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
}

/// A validated sweep.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    pub name: String,
    pub file: String,
    pub base: ModelFile,
    pub verb: String,
    pub seeds: Vec<u64>,
    pub outputs: Vec<String>,
    pub axes: Vec<Axis>,
}

/// Most points of one sweep: 10^7 (a table of 10^7 rows is ~1-2 GB of JSON; beyond that the
/// sweep should be split into several files).
pub const MAX_POINTS: usize = 10_000_000;

/// Keys every model file has outside its family's keys; an axis over them is refused (the seed
/// is swept with `seeds`).
const COMMON_KEYS: &[&str] = &["kind", "name", "description", "seed"];

/// Parse a sweep model file; `base` is resolved relative to the sweep file's directory.
pub fn parse(mf: &ModelFile) -> Result<SweepSpec> {
    let raw: RawSweep = mf.raw()?;
    let ck = mf.checker();
    let verb = ck
        .one_of("verb", &raw.verb, &["predict", "train"])?
        .to_string();
    let dir = Path::new(&mf.common.file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let base_path: PathBuf = dir.join(&raw.base);
    let base = run::load(&base_path)?;
    if base.common.kind == "sweep" {
        return Err(ck.error(
            "base",
            &raw.base,
            "a model file",
            "a sweep cannot sweep a sweep",
        ));
    }
    let seeds = if raw.seeds.is_empty() {
        vec![base.common.seed]
    } else {
        raw.seeds
            .iter()
            .map(|&s| ck.count("seeds", s, 0, i64::MAX).map(|s| s as u64))
            .collect::<Result<_>>()?
    };
    if raw.outputs.is_empty() {
        return Err(ck.error(
            "outputs",
            "[]",
            "a non-empty list of result paths",
            "nothing to record",
        ));
    }
    let axes = raw
        .axes
        .iter()
        .map(|(key, v)| axis(&ck, key, v))
        .collect::<Result<Vec<_>>>()?;
    let spec = SweepSpec {
        name: if mf.common.name.is_empty() {
            "sweep".into()
        } else {
            mf.common.name.clone()
        },
        file: mf.common.file.clone(),
        base,
        verb,
        seeds,
        outputs: raw.outputs,
        axes,
    };
    check_size(&spec)?;
    validate_axes(&spec)?;
    Ok(spec)
}

/// One axis `axes.<key>`: a list of values, or `{from, to, steps, log}` (linear or geometric).
fn axis(ck: &Checker<'_>, key: &str, v: &toml::Value) -> Result<Axis> {
    let field = format!("axes.{key}");
    let axis: RawAxis = v.clone().try_into().map_err(|_| {
        ck.error(
            &field,
            v,
            "a list of values or {from, to, steps, log}",
            "malformed axis",
        )
    })?;
    let values = match axis {
        RawAxis::List(vals) if !vals.is_empty() => vals,
        RawAxis::List(_) => return Err(ck.error(&field, "[]", "a non-empty list", "empty axis")),
        RawAxis::Range {
            from,
            to,
            steps,
            log,
        } => {
            ck.finite(&format!("{field}.from"), from)?;
            ck.finite(&format!("{field}.to"), to)?;
            let n = ck.count(&format!("{field}.steps"), steps, 1, 100_000)?;
            if log && (from <= 0.0 || to <= 0.0) {
                return Err(ck.error(&field, from, "from, to > 0 with log = true", "log axis"));
            }
            (0..n)
                .map(|k| {
                    let f = if n == 1 {
                        0.0
                    } else {
                        k as f64 / (n - 1) as f64
                    };
                    let x = if log {
                        (from.ln() + f * (to.ln() - from.ln())).exp()
                    } else {
                        from + f * (to - from)
                    };
                    toml::Value::Float(x)
                })
                .collect()
        }
    };
    Ok(Axis {
        key: key.to_string(),
        values,
    })
}

/// The number of points (product of the axis lengths times the seeds, in f64 so that it cannot
/// overflow) must be at most [`MAX_POINTS`], and its table must fit the memory budget.
fn check_size(spec: &SweepSpec) -> Result<()> {
    let points = spec
        .axes
        .iter()
        .map(|a| a.values.len() as f64)
        .product::<f64>()
        * spec.seeds.len() as f64;
    let longest = spec
        .axes
        .iter()
        .max_by_key(|a| a.values.len())
        .map(|a| format!("axes.{}", a.key))
        .unwrap_or_else(|| "seeds".into());
    if points > MAX_POINTS as f64 {
        return Err(Error::Parameter {
            file: spec.file.clone(),
            field: longest,
            value: format!("{points:e} points in all"),
            allowed: format!(
                "at most {MAX_POINTS} points (product of the axis lengths times the seeds)"
            ),
            reason: "too many points for one sweep; split it into several sweep files".into(),
        });
    }
    // a row holds its index, seed, axis values, outputs and status: ~64 bytes each in memory
    let per_row = 64.0 * (3 + spec.axes.len() + spec.outputs.len()) as f64;
    crate::budget::check_memory(
        &spec.file,
        &longest,
        format!("{points} points"),
        points * per_row,
        "the table of results, about 64 bytes per cell",
    )
}

/// Every axis is checked before any point runs: no axis over the common keys, and every value
/// of every axis gives a valid model (all else at the base) for the kinds with a separate
/// check ([`run::validate`]); for the others the key must be a key of the base model.
fn validate_axes(spec: &SweepSpec) -> Result<()> {
    let field = |a: &Axis| format!("axes.{}", a.key);
    for a in &spec.axes {
        let head = a.key.split('.').next().unwrap_or("");
        if COMMON_KEYS.contains(&head) || a.key.is_empty() {
            return Err(Error::Parameter {
                file: spec.file.clone(),
                field: field(a),
                value: crate::io::truncate(&a.key, 80),
                allowed: "a key of the base model's family (not kind, name, description or \
                          seed; sweep seeds with `seeds = [...]`)"
                    .into(),
                reason: "an axis cannot change a common key".into(),
            });
        }
        for (k, v) in a.values.iter().enumerate() {
            let mut m = spec.base.clone();
            m.common.file = format!(
                "{} [sweep {}, axis `{}` value {k}]",
                spec.base.common.file,
                spec.name,
                crate::io::truncate(&a.key, 80)
            );
            set_dotted(&mut m.rest, &a.key, v.clone()).map_err(|message| Error::Parameter {
                file: spec.file.clone(),
                field: field(a),
                value: crate::io::truncate(&v.to_string(), 80),
                allowed: "a dotted key of the base model".into(),
                reason: message,
            })?;
            let full = run::validate(&m).map_err(|e| Error::Parameter {
                file: spec.file.clone(),
                field: field(a),
                value: crate::io::truncate(&v.to_string(), 80),
                allowed: "values that give a valid base model".into(),
                reason: format!("value {k} makes the base model invalid: {e}"),
            })?;
            if !full && k == 0 && !has_dotted(&spec.base.rest, &a.key) {
                let keys: Vec<String> = spec.base.rest.keys().cloned().collect();
                return Err(Error::Parameter {
                    file: spec.file.clone(),
                    field: field(a),
                    value: crate::io::truncate(&a.key, 80),
                    allowed: format!(
                        "a key of the base model {} (its keys: {})",
                        spec.base.common.file,
                        keys.join(", ")
                    ),
                    reason: "not a key of the base model".into(),
                });
            }
        }
    }
    Ok(())
}

fn has_dotted(table: &toml::Table, key: &str) -> bool {
    let mut t = table;
    let mut parts = key.split('.').peekable();
    while let Some(p) = parts.next() {
        match (t.get(p), parts.peek()) {
            (Some(_), None) => return true,
            (Some(toml::Value::Table(inner)), Some(_)) => t = inner,
            _ => return false,
        }
    }
    false
}

/// Number of points of the full sweep.
pub fn total(spec: &SweepSpec) -> usize {
    spec.axes.iter().map(|a| a.values.len()).product::<usize>() * spec.seeds.len()
}

/// Axis values and seed of point `index`.
fn coordinates(spec: &SweepSpec, index: usize) -> (Vec<toml::Value>, u64) {
    let ns = spec.seeds.len();
    let seed = spec.seeds[index % ns];
    let mut rest = index / ns;
    let mut vals = vec![toml::Value::Integer(0); spec.axes.len()];
    for (k, axis) in spec.axes.iter().enumerate().rev() {
        let n = axis.values.len();
        vals[k] = axis.values[rest % n].clone();
        rest /= n;
    }
    (vals, seed)
}

/// The model file of point `index`: the base with axis keys set and the seed replaced.
pub fn point_model(spec: &SweepSpec, index: usize) -> Result<ModelFile> {
    let (vals, seed) = coordinates(spec, index);
    let mut m = spec.base.clone();
    m.common.seed = seed;
    m.common.file = format!(
        "{} [sweep {} point {index}]",
        spec.base.common.file, spec.name
    );
    for (axis, v) in spec.axes.iter().zip(vals) {
        set_dotted(&mut m.rest, &axis.key, v).map_err(|message| Error::ModelFile {
            file: spec.file.clone(),
            message: format!("axis `{}`: {message}", axis.key),
        })?;
    }
    per_point_csv(&mut m.rest, index);
    Ok(m)
}

/// A CSV the base model writes (`csv = "run.csv"`) becomes one file per point
/// (`run.point-7.csv`), so parallel points never write the same file (issue 15).
fn per_point_csv(rest: &mut toml::Table, index: usize) {
    if let Some(toml::Value::String(c)) = rest.get_mut("csv") {
        let p = Path::new(c.as_str());
        let stem = p.file_stem().map(|s| s.to_string_lossy().to_string());
        let ext = p.extension().map(|s| s.to_string_lossy().to_string());
        let name = match (stem, ext) {
            (Some(s), Some(e)) => format!("{s}.point-{index}.{e}"),
            (Some(s), None) => format!("{s}.point-{index}"),
            _ => return,
        };
        *c = p.with_file_name(name).to_string_lossy().to_string();
    }
}

fn set_dotted(
    table: &mut toml::Table,
    key: &str,
    v: toml::Value,
) -> std::result::Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().ok_or("empty key")?;
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a table in the base model"))?;
    }
    t.insert(last.to_string(), v);
    Ok(())
}

/// Look up a dotted path (`a.b.0.c`) in a JSON value.
pub fn lookup<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, p| match v {
        serde_json::Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => v.get(p),
    })
}

/// The value of an output path: as [`lookup`], and a `*` component over an array gives the
/// array of the rest of the path over its elements (`runs.*.sequential.eps`: one value per
/// seed, null where an element lacks it). Missing: null.
pub fn extract(v: &serde_json::Value, path: &str) -> serde_json::Value {
    match path.split_once(".*") {
        Some((head, tail)) if tail.is_empty() || tail.starts_with('.') => {
            let arr = if head.is_empty() {
                Some(v)
            } else {
                lookup(v, head)
            };
            match arr {
                Some(serde_json::Value::Array(a)) => {
                    let rest = tail.trim_start_matches('.');
                    serde_json::Value::Array(
                        a.iter()
                            .map(|e| {
                                if rest.is_empty() {
                                    e.clone()
                                } else {
                                    extract(e, rest)
                                }
                            })
                            .collect(),
                    )
                }
                _ => serde_json::Value::Null,
            }
        }
        _ => lookup(v, path).cloned().unwrap_or_default(),
    }
}

fn to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Run the points of `shard` in parallel.
pub fn run(spec: &SweepSpec, shard: Shard) -> SweepResult {
    let indices: Vec<usize> = (0..total(spec)).filter(|&i| shard.owns(i)).collect();
    let rows = run_points(spec, &indices, &|_| Ok(()))
        .expect("the hook of an unrecorded sweep cannot fail");
    result(spec, shard, rows)
}

/// Run the points `indices` in parallel, calling `done` with each row as it completes (from
/// the worker thread); the first error of `done` is returned after the points in flight end.
fn run_points(
    spec: &SweepSpec,
    indices: &[usize],
    done: &(dyn Fn(&SweepRow) -> Result<()> + Sync),
) -> Result<Vec<SweepRow>> {
    let bar = crate::progress::bar(indices.len() as u64, "points");
    bar.set_message(format!("sweep {}", spec.name));
    let shared = run::Shared::default();
    let rows: Vec<Result<SweepRow>> = indices
        .par_iter()
        .map(|&index| {
            let row = run_point(spec, index, &shared);
            done(&row)?;
            bar.inc(1);
            Ok(row)
        })
        .collect();
    bar.finish_and_clear();
    rows.into_iter().collect()
}

fn result(spec: &SweepSpec, shard: Shard, rows: Vec<SweepRow>) -> SweepResult {
    let n = total(spec);
    SweepResult {
        modeflow_version: env!("CARGO_PKG_VERSION").into(),
        name: spec.name.clone(),
        sweep_file: spec.file.clone(),
        base_file: spec.base.common.file.clone(),
        verb: spec.verb.clone(),
        axes: spec.axes.iter().map(|a| a.key.clone()).collect(),
        outputs: spec.outputs.clone(),
        total: n,
        shard,
        rows,
    }
}

/// The top-level result fields the outputs read (the first component of each dotted path).
fn top_fields(outputs: &[String]) -> Vec<&str> {
    let mut f: Vec<&str> = Vec::new();
    for o in outputs {
        let top = o.split('.').next().unwrap_or(o);
        if !f.contains(&top) {
            f.push(top);
        }
    }
    f
}

/// One point: `predict` computes only the fields the outputs read (shared parts from
/// `shared`); `train` runs the whole verb.
fn run_point(spec: &SweepSpec, index: usize, shared: &run::Shared) -> SweepRow {
    let (vals, seed) = coordinates(spec, index);
    let params = vals.iter().map(to_json).collect();
    let out = point_model(spec, index).and_then(|m| match spec.verb.as_str() {
        "train" => {
            run::train(&m).map(|o| (o.json.get("result").cloned().unwrap_or_default(), o.failed))
        }
        _ => run::predict_fields(&m, &top_fields(&spec.outputs), shared),
    });
    let (outputs, status) = match out {
        Ok((result, failed)) => {
            let outs = spec.outputs.iter().map(|p| extract(&result, p)).collect();
            (
                outs,
                if failed {
                    failure_reason(&result)
                } else {
                    "ok".into()
                },
            )
        }
        Err(e) => (
            vec![serde_json::Value::Null; spec.outputs.len()],
            format!("error: {e}"),
        ),
    };
    SweepRow {
        index,
        seed,
        params,
        outputs,
        status,
    }
}
/// `failed: ` and the labels of the rows of a result whose verdict is `fail` (issue 15: the
/// reason of a failed point was not recorded).
fn failure_reason(result: &serde_json::Value) -> String {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if o.get("verdict").and_then(|x| x.as_str()) == Some("fail") {
                    let label = o.get("label").and_then(|x| x.as_str()).unwrap_or("a row");
                    out.push(label.to_string());
                }
                o.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut labels = Vec::new();
    walk(result, &mut labels);
    if labels.is_empty() {
        "failed".into()
    } else {
        crate::io::truncate(&format!("failed: {}", labels.join("; ")), 300)
    }
}

/// Outputs that are missing (null) in every point that ran: most likely a typo in `outputs`
/// (issue 15: a typo gave an empty column without a warning). Each entry names the output and
#[cfg(test)]
mod tests;
