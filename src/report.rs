//! Reports: every result is `Serialize` (JSON) and has a human-readable text form.
//! JSON outputs are wrapped in an [`envelope`] recording the crate version, the model file
//! (path and full text) and the seed, so any number can be traced back to what produced it.

use serde::{Deserialize, Serialize};

use crate::model::Common;
use crate::{Error, Result};

/// A result that can be printed for a person and serialised for a program.
pub trait Report: Serialize {
    /// Plain-text rendering (aligned columns, one idea per line).
    fn text(&self) -> String;
}

/// The JSON envelope: `{modeflow_version, model: {kind, name, file, seed, text}, result}`.
pub fn envelope(common: &Common, result: &impl Serialize) -> serde_json::Value {
    serde_json::json!({
        "modeflow_version": env!("CARGO_PKG_VERSION"),
        "model": {
            "kind": common.kind,
            "name": common.name,
            "file": common.file,
            "seed": common.seed,
            "text": common.text,
        },
        "seed": common.seed,
        "result": result,
    })
}

/// Format a number compactly for tables (fixed for moderate magnitudes, scientific otherwise).
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if !x.is_finite() {
        format!("{x}")
    } else if (1e-3..1e5).contains(&x.abs()) {
        format!("{x:.6}")
    } else {
        format!("{x:.4e}")
    }
}

// --- the on-disk form of a sweep's results (read by `sweep` and `figures::tmaps`) ---

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

    /// `--shard slurm`: the shard of this task of a Slurm job array, from
    /// `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT` and `SLURM_ARRAY_TASK_MIN` (task ids
    /// `min..min + count`, e.g. `--array=1-8` or `--array=0-7`, give shards 1..=count).
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let get = |k: &str| -> Result<usize> {
            let v = var(k).ok_or_else(|| {
                Error::Requirement(format!(
                    "--shard slurm: {k} is not set (run it as a task of `sbatch --array`)"
                ))
            })?;
            v.trim().parse().map_err(|_| {
                Error::Requirement(format!(
                    "--shard slurm: {k} = `{}` is not a non-negative integer",
                    crate::io::truncate(&v, 40)
                ))
            })
        };
        let (id, count) = (get("SLURM_ARRAY_TASK_ID")?, get("SLURM_ARRAY_TASK_COUNT")?);
        let min = if var("SLURM_ARRAY_TASK_MIN").is_some() {
            get("SLURM_ARRAY_TASK_MIN")?
        } else {
            1
        };
        if count == 0 || id < min || id - min >= count {
            return Err(Error::Requirement(format!(
                "--shard slurm: SLURM_ARRAY_TASK_ID = {id} is outside {min}..{} \
                 (SLURM_ARRAY_TASK_MIN = {min}, SLURM_ARRAY_TASK_COUNT = {count}); \
                 use a contiguous --array range",
                min + count
            )));
        }
        Ok(Shard {
            i: id - min + 1,
            n: count,
        })
    }

    /// Whether point `index` belongs to this shard.
    pub fn owns(&self, index: usize) -> bool {
        index % self.n == self.i - 1
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
