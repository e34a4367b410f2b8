//! Kind `bias_pattern` (THEORY II.5, B-15, talk level): a max-pooling convolutional detector
//! f(x) = sum_j v_j max_p relu(w_j . x_p) (v_j = +1 for the first k/2 filters, -1 for the rest)
//! trained by full-batch GD on the mean logistic loss of a pattern-detection task; wider detectors
//! generalise better and their filters sit on the true patterns.
//!
//! Keys: `task` = "xor" (d = 2, patterns (+-1, +-1), positive iff the bits are equal) or
//! "orthogonal" (`m` orthonormal patterns in R^m, the first m/2 positive; m even); `t` patches per
//! sample; `widths` (even, >= 2 entries, increasing); `seeds` (>= 2); `n_train`, `n_test`,
//! `init` std, `eta`, `steps`; `csv` (one line per width and seed).
//!
//! Rows (`conv::trend_rows`, as in the B-15 check): mean test error at the smallest minus the
//! largest width >= 0.05; at the largest width, the mean fraction of active filters with best
//! cosine > 0.95 to a true pattern (claim >= 0.8; for the orthogonal task our documented finding
//! 0.641 +- 30% marks it disputed, claim file B-15); the fraction within cos > 0.95 of the span
//! of their own-sign patterns >= 0.8.

use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Deserialize;

use super::{time_series, Trained};
use crate::bias::conv::{
    b15_base, trend_rows, width_sweep, xor_alignment_chance, PatternOutcome, PatternRun,
    B15_OPD_ALIGNED_FINDING, B15_SEEDS, B15_WIDTHS, COS_ALIGNED,
};
use crate::bias::pattern_data::{orthogonal_task, xor_task};
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
use crate::Result;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    task: String,
    m: Option<i64>,
    t: i64,
    widths: Vec<i64>,
    seeds: Vec<i64>,
    n_train: i64,
    n_test: i64,
    init: f64,
    eta: f64,
    steps: i64,
    csv: Option<String>,
}

/// Probability that a uniformly random direction in R^m has cosine > `COS_ALIGNED` with one of m
/// orthonormal patterns, i.e. max_i u_i > c for u uniform on the sphere (Monte Carlo, 2e5
/// directions, fixed seed; 3.6e-4 at m = 8).
fn orthogonal_chance(m: usize) -> f64 {
    let mut rng = StdRng::seed_from_u64(15);
    let n = 200_000;
    let mut hit = 0usize;
    let mut u = vec![0.0; m];
    for _ in 0..n {
        let mut s = 0.0;
        for v in u.iter_mut() {
            *v = rng.sample::<f64, _>(StandardNormal);
            s += *v * *v;
        }
        let top = u.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        hit += (top / s.sqrt() > COS_ALIGNED) as usize;
    }
    hit as f64 / n as f64
}

/// `m` patterns: an even count for the orthogonal task, absent (4) for XOR.
fn pattern_count(c: &Checker<'_>, task: &str, m_key: Option<i64>) -> Result<usize> {
    Ok(match (task, m_key) {
        ("orthogonal", Some(m)) => {
            let m = c.count("m", m, 2, 1000)?;
            if m % 2 != 0 {
                return Err(c.error("m", m, "an even integer", "half the patterns are positive"));
            }
            m
        }
        ("orthogonal", None) => {
            return Err(c.error(
                "m",
                "missing",
                "an even integer >= 2",
                "the orthogonal task needs m patterns",
            ))
        }
        (_, Some(m)) => {
            return Err(c.error(
                "m",
                m,
                "absent for task = xor",
                "the XOR task has 4 fixed patterns in R^2",
            ))
        }
        (_, None) => 4,
    })
}

/// The widths: at least two, even, increasing.
fn widths(c: &Checker<'_>, raw: &[i64]) -> Result<Vec<usize>> {
    if raw.len() < 2 {
        return Err(c.error(
            "widths",
            format!("{raw:?}"),
            "at least 2 widths",
            "a width trend needs several widths",
        ));
    }
    let mut widths = Vec::new();
    for (i, &k) in raw.iter().enumerate() {
        let f = format!("widths[{i}]");
        let k = c.count(&f, k, 2, 10_000)?;
        if k % 2 != 0 {
            return Err(c.error(&f, k, "an even integer", "half the filters are positive"));
        }
        if widths.last().is_some_and(|&p| k <= p) {
            return Err(c.error(
                &f,
                k,
                "larger than the previous width",
                "widths must increase",
            ));
        }
        widths.push(k);
    }
    Ok(widths)
}

/// The seeds: at least two.
fn seeds(c: &Checker<'_>, raw: &[i64]) -> Result<Vec<u64>> {
    if raw.len() < 2 {
        return Err(c.error(
            "seeds",
            format!("{raw:?}"),
            "at least 2 seeds",
            "a trend needs a spread over seeds",
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, &s)| {
            c.count(&format!("seeds[{i}]"), s, 0, 1 << 40)
                .map(|s| s as u64)
        })
        .collect()
}

/// A checked `bias_pattern` model file.
#[derive(Debug, Clone)]
pub struct Spec {
    /// "xor" or "orthogonal"
    pub task: &'static str,
    /// patches per sample
    pub t: usize,
    /// number of patterns (orthogonal task)
    pub m: usize,
    pub widths: Vec<usize>,
    pub seeds: Vec<u64>,
    /// the training settings (width and seed set per run)
    pub base: PatternRun,
    pub csv: Option<String>,
}

/// Check a `bias_pattern` model file without training.
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let task = c.one_of("task", &raw.task, &["xor", "orthogonal"])?;
    let task = if task == "xor" { "xor" } else { "orthogonal" };
    let t = c.count("t", raw.t, 1, 1000)?;
    let m = pattern_count(&c, task, raw.m)?;
    let widths = widths(&c, &raw.widths)?;
    let seeds = seeds(&c, &raw.seeds)?;
    let base = PatternRun {
        k: widths[0],
        n_train: c.count("n_train", raw.n_train, 1, 1_000_000)?,
        n_test: c.count("n_test", raw.n_test, 1, 10_000_000)?,
        init: c.positive("init", raw.init)?,
        eta: c.positive("eta", raw.eta)?,
        steps: c.count("steps", raw.steps, 1, 100_000_000)?,
        seed: 0,
    };
    Ok(Spec {
        task,
        t,
        m,
        widths,
        seeds,
        base,
        csv: raw.csv,
    })
}

impl Spec {
    /// The B-15 reference settings (claim file): widths 2, 8, 32, seeds 0..5, 12 training
    /// samples of t = 4 patches, 2000 test samples, init std 1e-2, GD eta 0.1 for 2000 steps;
    /// `task` "xor" (`models/bias-pattern.toml`) or "orthogonal" with m = 8 patterns
    /// (`models/bias-pattern-orthogonal.toml`).
    pub fn reference(task: &'static str) -> Spec {
        Spec {
            task,
            t: 4,
            m: if task == "xor" { 4 } else { 8 },
            widths: B15_WIDTHS.to_vec(),
            seeds: B15_SEEDS.to_vec(),
            base: b15_base(),
            csv: None,
        }
    }
}

/// What a B-15 width sweep measured: the task's name in the rows, the runs `out[width][seed]`,
/// the chance that a random direction counts as aligned, and our documented finding (mean
/// aligned fraction, relative tolerance) where the claim is disputed for the task.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub out: Vec<Vec<PatternOutcome>>,
    pub chance: f64,
    pub finding: Option<(f64, f64)>,
}

/// The B-15 width sweep of a checked spec (the run of `modeflow train` and of the B-15 check).
pub fn run(spec: &Spec) -> Result<Outcome> {
    let Spec {
        task,
        t,
        m,
        ref widths,
        ref seeds,
        base,
        ..
    } = *spec;
    Ok(if task == "xor" {
        Outcome {
            name: format!("XOR-type (d=2, t={t}, n={})", base.n_train),
            out: width_sweep(|_| xor_task(t), &base, widths, seeds)?,
            chance: xor_alignment_chance(),
            finding: None,
        }
    } else {
        Outcome {
            name: format!("orthogonal patterns (m={m}, t={t}, n={})", base.n_train),
            out: width_sweep(|s| orthogonal_task(m, t, 300 + s), &base, widths, seeds)?,
            chance: orthogonal_chance(m),
            // single-pattern alignment is disputed for this task (claim file): filters sit
            // in the span of several same-sign patterns instead
            finding: Some((B15_OPD_ALIGNED_FINDING, 0.3)),
        }
    })
}

/// B-15's rows of a sweep ([`trend_rows`]): the width trend of the test error, filters on
/// single true patterns, filters in the span of their own-sign patterns.
pub fn rows(out: &Outcome) -> Vec<Row> {
    trend_rows(&out.name, &out.out, out.chance, out.finding)
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let outcome = run(&spec)?;
    let rows = rows(&outcome);
    let Outcome { out, chance, .. } = outcome;
    let (widths, seeds) = (&spec.widths, &spec.seeds);
    let mut summary = Vec::new();
    let mut table = Vec::new();
    for (row, &k) in out.iter().zip(widths) {
        let mean = row.iter().map(|o| o.test_error).sum::<f64>() / row.len() as f64;
        summary.push((format!("k = {k}: mean test error"), mean));
        for (o, &s) in row.iter().zip(seeds) {
            table.push(vec![
                k as f64,
                s as f64,
                o.train_error,
                o.test_error,
                o.active as f64,
                o.aligned,
                o.span_aligned,
                o.clusters as f64,
            ]);
        }
    }
    summary.push(("chance of alignment (random direction)".into(), chance));
    let csv = time_series(
        model,
        &spec.csv,
        &[
            "k",
            "seed",
            "train_error",
            "test_error",
            "active",
            "aligned",
            "span_aligned",
            "clusters",
        ],
        table,
    )?;
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B-15's references are the shipped `models/bias-pattern.toml` (XOR) and
    /// `models/bias-pattern-orthogonal.toml` (m = 8 orthogonal patterns).
    #[test]
    fn references_are_the_shipped_models() {
        for (task, name) in [
            ("xor", "bias-pattern.toml"),
            ("orthogonal", "bias-pattern-orthogonal.toml"),
        ] {
            super::super::assert_shipped(name, check, &Spec::reference(task));
        }
    }

    /// The chance level of the B-15 orthogonal rows at m = 8 is the claim file's 3.6e-4.
    #[test]
    fn orthogonal_chance_at_eight_patterns() {
        assert_eq!(format!("{:.2e}", orthogonal_chance(8)), "3.60e-4");
    }
}
