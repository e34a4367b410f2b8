//! Kind `bias_student_reference` (THEORY II.2, B-16): the reference runs of the +-1 student
//! (10 + 10 leaky-ReLU neurons, alpha = 0.2, GD eta = 0.5 on the mean logistic loss from small
//! or large init, [`reference_trace`]), each setting over seeds 0..`seeds`, and a margin scan.
//!
//! Keys: `steps` GD steps of every setting; `seeds` (>= 2; THEORY I.7 asks >= 16); `[[settings]]`
//! tables with `name`, data `inputs` ("gaussian" or "sphere"), `n`, `d`, teacher `margin`, and
//! init std `init` (below 0.01 counts as small: the claim is one cluster per sign and a linear
//! boundary; else 6-10 clusters per sign and 96.8-98.3% linear); the margin scan on `scan_inputs`,
//! `scan_n`, `scan_d` data at the teacher margins `scan_margins` (>= 2, increasing), init std
//! `scan_init`, `scan_steps` steps; `csv` (one line per run).
//!
//! Rows (B-16, see its claim file): per setting the share of runs with the claimed cluster
//! counts and the mean linear fraction (bootstrap intervals); the scan's runs with full agreement
//! but not one cluster per sign, and the full-agreement share at the largest margin above that at
//! the smallest; over all runs the fresh points off the linear boundary with both groups
//! sign-uniform (0 by the B-3 lemma); the small-init stragglers; B-4 and B-5 after full
//! agreement.

use serde::Deserialize;

use super::{time_series, Trained};
use crate::bias::agreement::{reference_trace, Inputs, RefData, ReferenceRun};
use crate::model::{Checker, ModelFile};
use crate::num::stats::par_map;
use crate::Result;

mod rows;

pub use rows::rows;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetting {
    name: String,
    inputs: String,
    n: i64,
    d: i64,
    margin: f64,
    init: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    steps: i64,
    seeds: i64,
    settings: Vec<RawSetting>,
    scan_inputs: String,
    scan_n: i64,
    scan_d: i64,
    scan_margins: Vec<f64>,
    scan_init: f64,
    scan_steps: i64,
    csv: Option<String>,
}

/// One setting of the reference runs: a data set and an init std.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    pub data: RefData,
    pub init: f64,
}

impl Setting {
    /// Small init (below 0.01): the claim is one cluster per sign and a linear boundary.
    pub fn small_init(&self) -> bool {
        self.init < 0.01
    }
}

/// A checked `bias_student_reference` model file.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub steps: usize,
    /// seeds 0..seeds per setting and per scan margin
    pub seeds: u64,
    pub settings: Vec<Setting>,
    /// the scan's data; its margin is replaced by each of `scan_margins`
    pub scan_data: RefData,
    pub scan_margins: Vec<f64>,
    pub scan_init: f64,
    pub scan_steps: usize,
    pub csv: Option<String>,
}

fn inputs(c: &Checker<'_>, field: &str, v: &str) -> Result<Inputs> {
    match v {
        "gaussian" => Ok(Inputs::Gaussian),
        "sphere" => Ok(Inputs::Sphere),
        other => Err(c.error(
            field,
            other,
            "\"gaussian\" or \"sphere\"",
            "the distribution of the inputs before the margin rejection",
        )),
    }
}

/// A teacher margin: non-negative, below 1 on the sphere (|w* . x| <= 1 there) and at most 3
/// for Gaussian inputs (|w* . x| > 3 has probability 0.3% per draw).
fn margin_key(c: &Checker<'_>, field: &str, inputs: Inputs, margin: f64) -> Result<f64> {
    let margin = c.non_negative(field, margin)?;
    let (ok, allowed) = match inputs {
        Inputs::Sphere => (margin < 1.0, "[0, 1) for inputs on the unit sphere"),
        Inputs::Gaussian => (margin <= 3.0, "[0, 3] for Gaussian inputs"),
    };
    if !ok {
        return Err(c.error(
            field,
            margin,
            allowed,
            "the rejection sampling would (almost) never accept a point",
        ));
    }
    Ok(margin)
}

/// Teacher data keys (`prefix` + inputs, n, d, margin).
fn ref_data(
    c: &Checker<'_>,
    prefix: &str,
    (inp, n, d, margin): (&str, i64, i64, f64),
) -> Result<RefData> {
    let inputs = inputs(c, &format!("{prefix}inputs"), inp)?;
    Ok(RefData {
        n: c.count(&format!("{prefix}n"), n, 1, 10_000)?,
        d: c.count(&format!("{prefix}d"), d, 1, 1000)?,
        margin: margin_key(c, &format!("{prefix}margin"), inputs, margin)?,
        inputs,
    })
}

/// Check a `bias_student_reference` model file without running it.
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    if raw.settings.is_empty() {
        return Err(c.error(
            "settings",
            "[]",
            "at least one [[settings]] table",
            "no runs",
        ));
    }
    let settings = raw
        .settings
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let f = format!("settings[{i}].");
            Ok(Setting {
                name: s.name.clone(),
                data: ref_data(&c, &f, (&s.inputs, s.n, s.d, s.margin))?,
                init: c.positive(&format!("{f}init"), s.init)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let scan_data = ref_data(&c, "scan_", (&raw.scan_inputs, raw.scan_n, raw.scan_d, 0.0))?;
    let m = &raw.scan_margins;
    if m.len() < 2 || m.windows(2).any(|w| w[1] <= w[0]) {
        return Err(c.error(
            "scan_margins",
            format!("{m:?}"),
            "at least 2 increasing margins",
            "the scan compares the smallest margin with the largest",
        ));
    }
    for (i, &margin) in m.iter().enumerate() {
        margin_key(&c, &format!("scan_margins[{i}]"), scan_data.inputs, margin)?;
    }
    Ok(Spec {
        steps: c.count("steps", raw.steps, 1, 100_000_000)?,
        seeds: c.count("seeds", raw.seeds, 2, 10_000)? as u64,
        settings,
        scan_data,
        scan_margins: raw.scan_margins,
        scan_init: c.positive("scan_init", raw.scan_init)?,
        scan_steps: c.count("scan_steps", raw.scan_steps, 1, 100_000_000)?,
        csv: raw.csv,
    })
}

impl Spec {
    /// The B-16 reference (`models/bias-student-reference.toml`): 2e5 steps, seeds 0..16;
    /// [`RefData::THEORY`] at init std 1e-3, 1e-6 and 0.3, [`RefData::SEPARATED`] at 1e-3 and
    /// 0.3; the margin scan on the separated data (sphere, n = 40, d = 5) at margins 0.05, 0.1,
    /// 0.2, 0.3, init std 1e-3, 1e4 steps (the agreement state settles within ~100 steps).
    pub fn reference() -> Spec {
        let setting = |name: &str, data, init| Setting {
            name: name.into(),
            data,
            init,
        };
        Spec {
            steps: 200_000,
            seeds: crate::num::stats::MIN_SEEDS,
            settings: vec![
                setting("THEORY data", RefData::THEORY, 1e-3),
                setting("THEORY data", RefData::THEORY, 1e-6),
                setting("THEORY data", RefData::THEORY, 0.3),
                setting("separated data", RefData::SEPARATED, 1e-3),
                setting("separated data", RefData::SEPARATED, 0.3),
            ],
            scan_data: RefData {
                margin: 0.0,
                ..RefData::SEPARATED
            },
            scan_margins: vec![0.05, 0.1, 0.2, 0.3],
            scan_init: 1e-3,
            scan_steps: 10_000,
            csv: None,
        }
    }
}

/// The reference runs: per setting (and per scan margin) the runs of seeds 0..`seeds`.
pub struct Outcome {
    pub runs: Vec<Vec<ReferenceRun>>,
    pub scan: Vec<Vec<ReferenceRun>>,
}

/// All runs of a checked spec, every setting x seed and every scan margin x seed, in parallel
/// (deterministic: each run draws from its own seed).
pub fn run(spec: &Spec) -> Result<Outcome> {
    let seeds = spec.seeds;
    let group = |runs: Vec<ReferenceRun>, groups: usize| -> Vec<Vec<ReferenceRun>> {
        let mut it = runs.into_iter();
        (0..groups)
            .map(|_| it.by_ref().take(seeds as usize).collect())
            .collect()
    };
    let jobs: Vec<(usize, u64)> = (0..spec.settings.len())
        .flat_map(|s| (0..seeds).map(move |seed| (s, seed)))
        .collect();
    let runs = par_map(&jobs, |&(s, seed)| {
        let set = &spec.settings[s];
        reference_trace(&set.data, seed, set.init, spec.steps)
    })?;
    let jobs: Vec<(usize, u64)> = (0..spec.scan_margins.len())
        .flat_map(|m| (0..seeds).map(move |seed| (m, seed)))
        .collect();
    let scan = par_map(&jobs, |&(m, seed)| {
        let data = RefData {
            margin: spec.scan_margins[m],
            ..spec.scan_data
        };
        reference_trace(&data, seed, spec.scan_init, spec.scan_steps)
    })?;
    Ok(Outcome {
        runs: group(runs, spec.settings.len()),
        scan: group(scan, spec.scan_margins.len()),
    })
}

/// Columns of the time series of `modeflow train`: one line per run.
pub const SERIES_HEADER: [&str; 12] = [
    "group",
    "margin",
    "init",
    "seed",
    "clusters_pos",
    "clusters_neg",
    "linear",
    "mixed",
    "agreement_from",
    "drift_after",
    "lift_gap_after",
    "loss",
];

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let out = run(&spec)?;
    let rows = rows(&spec, &out)?;
    let line = |group: usize, margin: f64, init: f64, seed: usize, r: &ReferenceRun| {
        vec![
            group as f64,
            margin,
            init,
            seed as f64,
            r.clusters_pos.count as f64,
            r.clusters_neg.count as f64,
            r.linear,
            r.mixed,
            r.agreement_from.map_or(f64::NAN, |t| t as f64),
            r.drift_after,
            r.lift_gap_after,
            r.loss,
        ]
    };
    let mut table = Vec::new();
    let mut summary = Vec::new();
    for (g, (s, runs)) in spec.settings.iter().zip(&out.runs).enumerate() {
        let n = runs.len() as f64;
        summary.push((
            format!("{}, init {:e}: mean linear fraction", s.name, s.init),
            runs.iter().map(|r| r.linear).sum::<f64>() / n,
        ));
        table.extend(
            runs.iter()
                .enumerate()
                .map(|(seed, r)| line(g, s.data.margin, s.init, seed, r)),
        );
    }
    let base = spec.settings.len();
    for (m, (&margin, runs)) in spec.scan_margins.iter().zip(&out.scan).enumerate() {
        table.extend(
            runs.iter()
                .enumerate()
                .map(|(seed, r)| line(base + m, margin, spec.scan_init, seed, r)),
        );
    }
    let csv = time_series(model, &spec.csv, &SERIES_HEADER, table)?;
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B-16's reference is the shipped `models/bias-student-reference.toml`.
    #[test]
    fn reference_is_the_shipped_model() {
        super::super::assert_shipped("bias-student-reference.toml", check, &Spec::reference());
    }

    /// Short runs: the rows come out with the claimed labels, and bad keys name their field.
    #[test]
    fn short_runs_and_bad_keys() {
        let spec = Spec {
            steps: 300,
            seeds: 3,
            scan_steps: 200,
            ..Spec::reference()
        };
        let rows = rows(&spec, &run(&spec).unwrap()).unwrap();
        assert_eq!(rows.len(), 2 * 5 + 2 + 5, "{rows:?}");
        assert!(
            rows[12].label.starts_with("all 27 runs"),
            "{}",
            rows[12].label
        );
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models/bias-student-reference.toml"),
        )
        .unwrap();
        for (from, to, field) in [
            ("seeds = 16", "seeds = 1", "seeds"),
            (
                "scan_margins = [0.05, 0.1, 0.2, 0.3]",
                "scan_margins = [0.3, 0.1]",
                "scan_margins",
            ),
            (
                "scan_inputs = \"sphere\"",
                "scan_inputs = \"cube\"",
                "scan_inputs",
            ),
        ] {
            assert!(text.contains(from), "{from}");
            let m = crate::model::parse("t.toml", &text.replace(from, to)).unwrap();
            let e = check(&m).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}
