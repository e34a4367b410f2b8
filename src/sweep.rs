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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{Checker, ModelFile};
pub use crate::report::{Shard, SweepResult, SweepRow};
use crate::{run, Error, Result};

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

/// The stem of a sweep's output files: the sanitised name ([`crate::io::file_stem`]), with
/// `.shard-I-of-N` for a shard.
pub fn output_stem(name: &str, shard: Shard) -> String {
    let stem = crate::io::file_stem(name);
    if shard.n == 1 {
        stem
    } else {
        format!("{stem}.shard-{}-of-{}", shard.i, shard.n)
    }
}

/// The progress file of a resumable run of `shard` in `out`.
pub fn progress_path(out: &Path, name: &str, shard: Shard) -> PathBuf {
    out.join(format!("{}.progress.jsonl", output_stem(name, shard)))
}

/// First line of a progress file: which sweep and shard its rows belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProgressHeader {
    modeflow_progress: u32,
    name: String,
    sweep_file: String,
    base_file: String,
    verb: String,
    axes: Vec<String>,
    outputs: Vec<String>,
    total: usize,
    shard: Shard,
}

impl ProgressHeader {
    fn of(spec: &SweepSpec, shard: Shard) -> Self {
        ProgressHeader {
            modeflow_progress: 1,
            name: spec.name.clone(),
            sweep_file: spec.file.clone(),
            base_file: spec.base.common.file.clone(),
            verb: spec.verb.clone(),
            axes: spec.axes.iter().map(|a| a.key.clone()).collect(),
            outputs: spec.outputs.clone(),
            total: total(spec),
            shard,
        }
    }
}

/// The rows recorded in a progress file and the byte length of its complete lines. A last
/// line without its newline (the write in flight when the process was killed) is dropped; any
/// other malformed line, a header of another sweep or shard, or a row that is not a point of
/// the shard is an error naming the file.
fn read_progress(path: &Path, header: &ProgressHeader) -> Result<(Vec<SweepRow>, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let bad = |message: String| Error::ModelFile {
        file: path.display().to_string(),
        message,
    };
    if !meta.is_file() {
        return Err(bad("progress file is not a regular file".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    let mut lines = text[..complete].lines();
    let Some(first) = lines.next() else {
        return Ok((vec![], 0));
    };
    let found: ProgressHeader = serde_json::from_str(first)
        .map_err(|e| bad(format!("line 1 is not a progress header: {e}")))?;
    if &found != header {
        return Err(bad(format!(
            "progress of another sweep or shard (`{}`, shard {}/{}, {} points; this run: `{}`, \
             shard {}/{}, {} points); delete it or run without --resume",
            found.name,
            found.shard.i,
            found.shard.n,
            found.total,
            header.name,
            header.shard.i,
            header.shard.n,
            header.total
        )));
    }
    let mut rows: Vec<SweepRow> = Vec::new();
    for (k, line) in lines.enumerate() {
        let row: SweepRow = serde_json::from_str(line)
            .map_err(|e| bad(format!("line {}: not a sweep row: {e}", k + 2)))?;
        let shape_ok =
            row.params.len() == header.axes.len() && row.outputs.len() == header.outputs.len();
        if !shape_ok || row.index >= header.total || !header.shard.owns(row.index) {
            return Err(bad(format!(
                "line {}: point {} does not fit shard {}/{} of {} points",
                k + 2,
                row.index,
                header.shard.i,
                header.shard.n,
                header.total
            )));
        }
        rows.push(row);
    }
    rows.sort_by_key(|r| r.index);
    rows.dedup_by_key(|r| r.index);
    Ok((rows, complete as u64))
}

/// The interval after which a progress row written is synced with the next one (`ProgressLog`).
pub const PROGRESS_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The progress file of a resumable run: every row is written (`write(2)`) as its point
/// completes, so a killed process (Ctrl-C, `kill`, a batch system's time limit) loses only the
/// points in flight; the data reach the disk (`fdatasync`) in batches, once
/// [`PROGRESS_SYNC_INTERVAL`] has passed since the last sync or 1 % of the points have been
/// written since, and at the end. A crash of the machine (power, kernel) may lose the rows
/// written since the last sync -- at most one batch, which `--resume` recomputes. (One sync per
/// point cost 10,000 `fdatasync` calls on the 100 x 100 race grid, under the lock the other
/// workers wait on: ~2 s of its ~3 s wall time; bench/README.md.)
struct ProgressLog {
    file: std::fs::File,
    last_sync: std::time::Instant,
    unsynced: usize,
    batch: usize,
    syncs: usize,
}

impl ProgressLog {
    fn new(file: std::fs::File, points: usize) -> Self {
        ProgressLog {
            file,
            last_sync: std::time::Instant::now(),
            unsynced: 0,
            batch: points.div_ceil(100).max(1),
            syncs: 0,
        }
    }

    /// Write one row; sync when the batch is full or the interval has passed.
    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.file.write_all(line)?;
        self.unsynced += 1;
        if self.unsynced >= self.batch || self.last_sync.elapsed() >= PROGRESS_SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Make every written row durable.
    fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced > 0 {
            self.file.sync_data()?;
            self.unsynced = 0;
            self.syncs += 1;
        }
        self.last_sync = std::time::Instant::now();
        Ok(())
    }
}

/// Run the points of `shard`, appending each finished point to the progress file `progress`
/// (one JSON line, written as it completes, made durable in batches: `ProgressLog`). With
/// `resume`, the points already recorded there are kept and skipped; without it the file is
/// started afresh. The result is the same, byte for byte, as that of [`mod@run`]. The caller
/// removes the progress file once the outputs are written.
pub fn run_resumable(
    spec: &SweepSpec,
    shard: Shard,
    progress: &Path,
    resume: bool,
) -> Result<SweepResult> {
    let header = ProgressHeader::of(spec, shard);
    let io = |e| Error::io(progress, e);
    let (mut done, valid_len) = if resume && progress.exists() {
        read_progress(progress, &header)?
    } else {
        (vec![], 0)
    };
    let file = if valid_len > 0 {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(progress)
            .map_err(io)?;
        // drop a partial last line, then append after the complete ones
        f.set_len(valid_len).map_err(io)?;
        let mut f = f;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(io)?;
        f
    } else {
        let mut f = std::fs::File::create(progress).map_err(io)?;
        let mut line = serde_json::to_string(&header).expect("headers serialise");
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        f
    };
    if !done.is_empty() {
        crate::progress::note(&format!(
            "sweep {}: resuming, {} point(s) already done in {}",
            spec.name,
            done.len(),
            progress.display()
        ));
    }
    let have: std::collections::HashSet<usize> = done.iter().map(|r| r.index).collect();
    let indices: Vec<usize> = (0..total(spec))
        .filter(|&i| shard.owns(i) && !have.contains(&i))
        .collect();
    let log = Mutex::new(ProgressLog::new(file, indices.len()));
    let record = |row: &SweepRow| -> Result<()> {
        let mut line = serde_json::to_string(row).expect("rows serialise");
        line.push('\n');
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        log.append(line.as_bytes()).map_err(io)
    };
    let ran = run_points(spec, &indices, &record);
    // make the last batch durable whether the points ended well or not
    let synced = log
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .sync()
        .map_err(io);
    let mut rows = ran?;
    synced?;
    rows.append(&mut done);
    rows.sort_by_key(|r| r.index);
    Ok(result(spec, shard, rows))
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
/// the keys the results do have.
pub fn missing_outputs(r: &SweepResult) -> Vec<String> {
    let ran: Vec<&SweepRow> = r
        .rows
        .iter()
        .filter(|x| !x.status.starts_with("error"))
        .collect();
    if ran.is_empty() {
        return vec![];
    }
    r.outputs
        .iter()
        .enumerate()
        .filter(|(k, _)| ran.iter().all(|row| row.outputs[*k].is_null()))
        .map(|(_, o)| format!("`{o}`"))
        .collect()
}

/// CSV: index, seed, axes..., outputs..., status.
pub fn to_csv(r: &SweepResult) -> String {
    let mut s = String::from("index,seed");
    for a in r.axes.iter().chain(&r.outputs) {
        s.push(',');
        s.push_str(&csv_field(a));
    }
    s.push_str(",status\n");
    for row in &r.rows {
        s.push_str(&format!("{},{}", row.index, row.seed));
        for v in row.params.iter().chain(&row.outputs) {
            s.push(',');
            s.push_str(&csv_field(&match v {
                serde_json::Value::String(t) => t.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            }));
        }
        s.push(',');
        s.push_str(&csv_field(&row.status));
        s.push('\n');
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Check the shape of a sweep result read from `file`: every row has one value per axis and
/// per output, an index below `total` that belongs to its shard, and the shard is `i/n` with
/// 1 <= i <= n (issue 15: short rows crashed `figures --sweep` and made `merge` write a
/// malformed CSV).
pub fn validate_result(r: &SweepResult, file: &str) -> Result<()> {
    let bad = |message: String| Error::ModelFile {
        file: file.to_string(),
        message,
    };
    if r.shard.n == 0 || r.shard.i == 0 || r.shard.i > r.shard.n {
        return Err(bad(format!(
            "shard {}/{} is not i/n with 1 <= i <= n",
            r.shard.i, r.shard.n
        )));
    }
    if r.total > MAX_POINTS || r.rows.len() > r.total {
        return Err(bad(format!(
            "{} rows for a sweep of {} points (at most {MAX_POINTS})",
            r.rows.len(),
            r.total
        )));
    }
    for (k, row) in r.rows.iter().enumerate() {
        if row.params.len() != r.axes.len() || row.outputs.len() != r.outputs.len() {
            return Err(bad(format!(
                "row {k} (point {}) has {} axis values and {} outputs; the header has {} axes \
                 and {} outputs",
                row.index,
                row.params.len(),
                row.outputs.len(),
                r.axes.len(),
                r.outputs.len()
            )));
        }
        if row.index >= r.total || !r.shard.owns(row.index) {
            return Err(bad(format!(
                "row {k}: point {} is not a point of shard {}/{} of a sweep of {} points",
                row.index, r.shard.i, r.shard.n, r.total
            )));
        }
    }
    Ok(())
}

/// Read a sweep result or shard (JSON from `modeflow sweep`) and check its shape.
pub fn read_result(path: &Path) -> Result<SweepResult> {
    let text = crate::io::read_input(path)?;
    let r: SweepResult = serde_json::from_str(&text).map_err(|e| Error::ModelFile {
        file: path.display().to_string(),
        message: format!("not a sweep result: {e}"),
    })?;
    validate_result(&r, &path.display().to_string())?;
    Ok(r)
}

/// Merge the shard files of one sweep: every file a valid shard of the same sweep (name, file,
/// base, verb, axes, outputs, total, number of shards), each shard once, none missing.
pub fn merge_files(paths: &[PathBuf]) -> Result<SweepResult> {
    let parts = paths
        .iter()
        .map(|p| read_result(p).map(|r| (p.display().to_string(), r)))
        .collect::<Result<Vec<_>>>()?;
    let Some((f0, first)) = parts.first() else {
        return Err(Error::Requirement("merge: no shard files given".into()));
    };
    let n = first.shard.n;
    let mut seen: Vec<Option<&str>> = vec![None; n];
    for (f, p) in &parts {
        let same = p.name == first.name
            && p.sweep_file == first.sweep_file
            && p.base_file == first.base_file
            && p.verb == first.verb
            && p.axes == first.axes
            && p.outputs == first.outputs
            && p.total == first.total
            && p.shard.n == n;
        if !same {
            return Err(Error::Requirement(format!(
                "merge: {f} (sweep `{}`, {} points, shard {}/{}) does not belong to the sweep \
                 of {f0} (`{}`, {} points, {n} shards): name, files, verb, axes, outputs, \
                 points and shard count must agree",
                p.name, p.total, p.shard.i, p.shard.n, first.name, first.total
            )));
        }
        let slot = &mut seen[p.shard.i - 1];
        if let Some(other) = slot {
            return Err(Error::Requirement(format!(
                "merge: shard {}/{n} given twice: {other} and {f}",
                p.shard.i
            )));
        }
        *slot = Some(f);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{}/{n}", i + 1))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Requirement(format!(
            "merge: shard(s) {} of sweep `{}` missing",
            missing.join(", "),
            first.name
        )));
    }
    merge(parts.into_iter().map(|(_, r)| r).collect())
}

/// Merge shard results of one sweep: same sweep, no duplicate points, all points present.
pub fn merge(parts: Vec<SweepResult>) -> Result<SweepResult> {
    let mut it = parts.into_iter();
    let mut acc = it
        .next()
        .ok_or_else(|| Error::Requirement("merge: no shard files given".into()))?;
    for p in it {
        if p.name != acc.name
            || p.total != acc.total
            || p.axes != acc.axes
            || p.outputs != acc.outputs
        {
            return Err(Error::Requirement(format!(
                "merge: shard of `{}` ({} points) does not belong to sweep `{}` ({} points)",
                p.name, p.total, acc.name, acc.total
            )));
        }
        acc.rows.extend(p.rows);
    }
    acc.rows.sort_by_key(|r| r.index);
    if let Some(w) = acc.rows.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(Error::Requirement(format!(
            "merge: point {} appears in two shards",
            w[0].index
        )));
    }
    if acc.rows.len() != acc.total {
        let missing: Vec<usize> = (0..acc.total)
            .filter(|i| acc.rows.binary_search_by_key(i, |r| r.index).is_err())
            .take(10)
            .collect();
        return Err(Error::Requirement(format!(
            "merge: {} of {} points present; missing e.g. {missing:?}",
            acc.rows.len(),
            acc.total
        )));
    }
    acc.shard = Shard::ALL;
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rows_are_written_at_once_and_synced_in_batches() {
        let dir = std::env::temp_dir().join(format!("modeflow-plog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.jsonl");
        let t0 = std::time::Instant::now();
        let mut log = ProgressLog::new(std::fs::File::create(&path).unwrap(), 1000);
        for k in 0..1000 {
            log.append(format!("{k}\n").as_bytes()).unwrap();
            // every row is in the file (the page cache) as soon as it is appended
            if k % 97 == 0 {
                let n = std::fs::read_to_string(&path).unwrap().lines().count();
                assert_eq!(n, k + 1);
            }
        }
        log.sync().unwrap();
        // at most one sync per 1 % of the points, one per interval elapsed, and the last
        let by_time = (t0.elapsed().as_secs_f64() / PROGRESS_SYNC_INTERVAL.as_secs_f64()) as usize;
        assert!(log.syncs <= 100 + by_time + 1, "{} syncs", log.syncs);
        assert!(log.syncs >= 10, "{} syncs", log.syncs);
        assert_eq!(log.unsynced, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shard_parsing() {
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { i: 2, n: 5 });
        assert!(Shard::parse("0/5").is_err());
        assert!(Shard::parse("6/5").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn slurm_shards() {
        let env = |id: &'static str, count: &'static str, min: Option<&'static str>| {
            move |k: &str| match k {
                "SLURM_ARRAY_TASK_ID" => Some(id.to_string()),
                "SLURM_ARRAY_TASK_COUNT" => Some(count.to_string()),
                "SLURM_ARRAY_TASK_MIN" => min.map(str::to_string),
                _ => None,
            }
        };
        assert_eq!(
            Shard::from_slurm(env("3", "4", Some("1"))).unwrap(),
            Shard { i: 3, n: 4 }
        );
        assert_eq!(
            Shard::from_slurm(env("0", "4", Some("0"))).unwrap(),
            Shard { i: 1, n: 4 }
        );
        assert_eq!(
            Shard::from_slurm(env("4", "4", None)).unwrap(),
            Shard { i: 4, n: 4 }
        );
        for bad in [
            env("5", "4", Some("1")),
            env("x", "4", None),
            env("1", "0", None),
        ] {
            assert!(Shard::from_slurm(bad).is_err());
        }
        assert!(Shard::from_slurm(|_| None).is_err());
    }

    #[test]
    fn points_write_their_own_csv() {
        let mut t = toml::Table::new();
        t.insert("csv".into(), toml::Value::String("d/run.csv".into()));
        per_point_csv(&mut t, 7);
        assert_eq!(t["csv"].as_str(), Some("d/run.point-7.csv"));
        let mut t = toml::Table::new();
        per_point_csv(&mut t, 7);
        assert!(t.is_empty());
    }

    #[test]
    fn dotted_keys_are_found() {
        let t: toml::Table = "a = 1\n[b]\nc = 2\n".parse().unwrap();
        assert!(has_dotted(&t, "a") && has_dotted(&t, "b.c") && has_dotted(&t, "b"));
        assert!(!has_dotted(&t, "rr") && !has_dotted(&t, "b.d") && !has_dotted(&t, "a.x"));
    }

    #[test]
    fn stems_of_outputs_are_sanitised() {
        assert_eq!(output_stem("../x", Shard::ALL), "_x");
        assert_eq!(output_stem("a b", Shard { i: 2, n: 3 }), "a_b.shard-2-of-3");
    }

    #[test]
    fn failure_reasons_name_the_failed_rows() {
        let j = serde_json::json!({"rows": [
            {"label": "I-3 seeding", "verdict": "pass"},
            {"label": "B-4 agreement", "verdict": "fail"}
        ]});
        assert_eq!(failure_reason(&j), "failed: B-4 agreement");
        assert_eq!(failure_reason(&serde_json::json!({})), "failed");
    }

    #[test]
    fn dotted_keys_and_lookup() {
        let mut t = toml::Table::new();
        set_dotted(&mut t, "task.eps", toml::Value::Float(0.1)).unwrap();
        assert_eq!(t["task"]["eps"].as_float(), Some(0.1));
        let j = serde_json::json!({"a": {"b": [1, {"c": 2}]}});
        assert_eq!(lookup(&j, "a.b.1.c"), Some(&serde_json::json!(2)));
        assert_eq!(lookup(&j, "a.x"), None);
        // `*` maps the rest of the path over an array; missing elements are null
        let r = serde_json::json!({"runs": [{"s": {"e": 1.5}}, {"s": {}}, {"s": {"e": 2}}]});
        assert_eq!(extract(&r, "runs.*.s.e"), serde_json::json!([1.5, null, 2]));
        assert_eq!(extract(&r, "runs.*").as_array().map(Vec::len), Some(3));
        assert_eq!(extract(&r, "runs.0.s.e"), serde_json::json!(1.5));
        assert_eq!(extract(&r, "nope.*.e"), serde_json::Value::Null);
        // `*` must be a whole component
        assert_eq!(extract(&r, "runs.*x"), serde_json::Value::Null);
        let outs = ["winner", "race.r_star_ode", "race.lhs", "t_a.ode"].map(String::from);
        assert_eq!(top_fields(&outs), vec!["winner", "race", "t_a"]);
    }

    /// Every point of a small linear2x2 sweep equals the same output paths looked up in the
    /// whole `predict` of that point (bit for bit: JSON values compare f64 exactly), and the
    /// rows are the same for 1 and 2 threads.
    #[test]
    fn points_equal_whole_predictions_for_any_thread_count() {
        let dir = std::env::temp_dir().join(format!("modeflow-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("base.toml"),
            "kind = \"linear2x2\"\nr = 0.3\neps = 0.05\n",
        )
        .unwrap();
        let file = dir.join("s.toml");
        std::fs::write(
            &file,
            "kind = \"sweep\"\nbase = \"base.toml\"\n\
             outputs = [\"winner\", \"interference\", \"race.r_star_ode\", \"t_a.ode\", \"fixed_points.2.readout\", \"nope\"]\n\
             [axes]\nr = [0.2, 0.3, 0.5]\neps = [0.03, 0.05]\n",
        )
        .unwrap();
        let spec = parse(&crate::run::load(&file).unwrap()).unwrap();
        let run_with = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| run(&spec, Shard::ALL))
        };
        let (one, two) = (run_with(1), run_with(2));
        assert_eq!(
            serde_json::to_string(&one.rows).unwrap(),
            serde_json::to_string(&two.rows).unwrap()
        );
        assert_eq!(one.rows.len(), 6);
        for row in &one.rows {
            assert_eq!(row.status, "ok");
            let whole = run::predict(&point_model(&spec, row.index).unwrap()).unwrap();
            for (p, v) in spec.outputs.iter().zip(&row.outputs) {
                let expected = lookup(&whole.json["result"], p)
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(v, &expected, "point {} output {p}", row.index);
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
