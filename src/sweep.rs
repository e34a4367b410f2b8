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
//! A point that fails (a diverged run, an impossible parameter) is recorded with its error in
//! the `status` column; the sweep goes on.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{self, ModelFile};
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

/// Which part of the sweep to run: points with `index % n == i - 1` (1-based `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub i: usize,
    pub n: usize,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { i: 1, n: 1 };

    /// Parse `i/n` with 1 <= i <= n.
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || Error::Requirement(format!("--shard `{s}`: expected i/n with 1 <= i <= n"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if n == 0 || i == 0 || i > n {
            return Err(bad());
        }
        Ok(Shard { i, n })
    }
}

/// One point of the sweep and what it produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRow {
    /// Position in the full grid (axes in file order, seeds innermost).
    pub index: usize,
    pub seed: u64,
    /// Axis values, in axis order.
    pub params: Vec<serde_json::Value>,
    /// Output values, in `outputs` order (null where missing).
    pub outputs: Vec<serde_json::Value>,
    /// `ok`, `failed` (a verdict failed) or `error: ...`.
    pub status: String,
}

/// The rows of a sweep (or a shard of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepResult {
    pub modeflow_version: String,
    pub name: String,
    pub sweep_file: String,
    pub base_file: String,
    pub verb: String,
    pub axes: Vec<String>,
    pub outputs: Vec<String>,
    /// Number of points of the full sweep.
    pub total: usize,
    pub shard: Shard,
    pub rows: Vec<SweepRow>,
}

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
    let base = model::load(&base_path)?;
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
    let mut axes = Vec::new();
    for (key, v) in &raw.axes {
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
            RawAxis::List(_) => {
                return Err(ck.error(&field, "[]", "a non-empty list", "empty axis"))
            }
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
        axes.push(Axis {
            key: key.clone(),
            values,
        });
    }
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
    // Validate every point's model up front would run the solvers; instead build the first
    // point's file so a bad axis key is reported before any work is done.
    point_model(&spec, 0)?;
    Ok(spec)
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
    Ok(m)
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

fn to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Run the points of `shard` in parallel.
pub fn run(spec: &SweepSpec, shard: Shard) -> SweepResult {
    let n = total(spec);
    let indices: Vec<usize> = (0..n).filter(|i| i % shard.n == shard.i - 1).collect();
    let bar = ProgressBar::new(indices.len() as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} points [{elapsed} < {eta}]")
                .expect("static template"),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let shared = run::Shared::default();
    let rows: Vec<SweepRow> = indices
        .par_iter()
        .map(|&index| {
            let row = run_point(spec, index, &shared);
            bar.inc(1);
            row
        })
        .collect();
    bar.finish_and_clear();
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
            let outs = spec
                .outputs
                .iter()
                .map(|p| lookup(&result, p).cloned().unwrap_or_default())
                .collect();
            (outs, if failed { "failed".into() } else { "ok".into() })
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
    fn shard_parsing() {
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { i: 2, n: 5 });
        assert!(Shard::parse("0/5").is_err());
        assert!(Shard::parse("6/5").is_err());
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn dotted_keys_and_lookup() {
        let mut t = toml::Table::new();
        set_dotted(&mut t, "task.eps", toml::Value::Float(0.1)).unwrap();
        assert_eq!(t["task"]["eps"].as_float(), Some(0.1));
        let j = serde_json::json!({"a": {"b": [1, {"c": 2}]}});
        assert_eq!(lookup(&j, "a.b.1.c"), Some(&serde_json::json!(2)));
        assert_eq!(lookup(&j, "a.x"), None);
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
        let spec = parse(&model::load(&file).unwrap()).unwrap();
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
