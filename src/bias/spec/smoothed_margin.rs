//! Kind `bias_smoothed_margin` (THEORY II.3, B-7; Lyu & Li 2020): a two-layer ReLU net (both
//! layers, homogeneous of degree L = 2) trained by GD on the mean exponential loss; once the summed
//! loss is below 1 the smoothed margin gamma~ = ln(1/L_sum) / |theta|^2 never decreases (GD: at
//! most ~1e-8 relative per step), |theta|^2 grows like ln t / gamma~ and the direction converges.
//!
//! Keys: data from a unit teacher (`n`, `d`, `margin`) or explicit (`points`, `labels`); `k`
//! units, `init` std, `eta`, `steps`; `first_checkpoint` t_1 (default steps / 8): the direction
//! and norm rows use t_1, 2 t_1, 4 t_1, ... <= steps (at least 3); `csv`.
//!
//! Rows: max relative per-step decrease of gamma~ after L_sum < 1 (<= 1e-8); 1 - cos(theta(t),
//! theta(2t)) decreases along the checkpoints; the |theta|^2 increment per doubling, last / first
//! = 1 within 10% (claim file B-7).

use serde::Deserialize;

use super::{data_keys, log_steps, time_series, Data, Trained};
use crate::bias::agreement::teacher_data;
use crate::bias::smoothed_margin::{smoothed_margin_run_on, MarginRun, SmoothedMarginSettings};
use crate::bias::stats::fmt_list;
use crate::compare::Row;
use crate::model::ModelFile;
use crate::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    n: Option<i64>,
    d: Option<i64>,
    margin: Option<f64>,
    points: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
    k: i64,
    init: f64,
    eta: f64,
    steps: i64,
    first_checkpoint: Option<i64>,
    csv: Option<String>,
}

/// Monotonicity tolerance of B-7 (claim file): GD is an O(eta^2) perturbation of GF.
const DECREASE_TOL: f64 = 1e-8;
/// Norm-growth tolerance of B-7 (claim file): gamma~ still rises slowly.
const GROWTH_TOL: f64 = 0.1;

/// Along the doubling times t1, 2 t1, 4 t1, ...: the direction theta/|theta| settles
/// (1 - cos between successive checkpoints decreases) and |theta|^2 grows by a constant per
/// doubling (|theta| ~ (ln t)^(1/2)).
fn doubling_rows(r: &MarginRun, doubling: &[usize]) -> Vec<Row> {
    let mut rows = Vec::new();
    let at: Vec<usize> = doubling
        .iter()
        .filter_map(|t| r.samples.iter().position(|s| s.0 == *t))
        .collect();
    let cosd: Vec<f64> = at
        .windows(2)
        .map(|p| {
            let (a, b) = (&r.thetas[p[0]], &r.thetas[p[1]]);
            1.0 - a.dot(b) / (a.norm() * b.norm())
        })
        .collect();
    let inc: Vec<f64> = at
        .windows(2)
        .map(|p| r.samples[p[1]].2 - r.samples[p[0]].2)
        .collect();
    let norms: Vec<f64> = at.iter().map(|&i| r.samples[i].2).collect();
    rows.push(Row::holds(
        format!("1 - cos(theta(t), theta(2t)) decreases along t = {doubling:?}"),
        cosd.windows(2).all(|p| p[1] < p[0]),
        format!(
            "{}; |theta|^2 at t = {doubling:?}: {}",
            fmt_list(&cosd),
            fmt_list(&norms)
        ),
    ));
    rows.push(
        Row::rel(
            "|theta|^2 increment per doubling, last / first (|theta| ~ (ln t)^(1/2))",
            1.0,
            inc.last().copied().unwrap_or(f64::NAN) / inc.first().copied().unwrap_or(f64::NAN),
            GROWTH_TOL,
        )
        .note(fmt_list(&inc)),
    );
    rows
}

/// A checked `bias_smoothed_margin` model file.
#[derive(Debug, Clone)]
pub struct Spec {
    pub data: Data,
    pub k: usize,
    pub init: f64,
    pub eta: f64,
    pub steps: usize,
    /// the first of the doubling checkpoints t1, 2 t1, 4 t1, ... <= steps
    pub first_checkpoint: usize,
    pub seed: u64,
    pub csv: Option<String>,
}

/// Check a `bias_smoothed_margin` model file without running it.
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let data = data_keys(&c, raw.n, raw.d, raw.margin, raw.points, raw.labels)?;
    let k = c.count("k", raw.k, 1, 10_000)?;
    let init = c.positive("init", raw.init)?;
    let eta = c.positive("eta", raw.eta)?;
    let steps = c.count("steps", raw.steps, 4, 100_000_000)?;
    let first_checkpoint = match raw.first_checkpoint {
        None => (steps / 8).max(1),
        Some(t) => c.count("first_checkpoint", t, 1, raw.steps / 4)?,
    };
    Ok(Spec {
        data,
        k,
        init,
        eta,
        steps,
        first_checkpoint,
        seed: model.common.seed,
        csv: raw.csv,
    })
}

impl Spec {
    /// The B-7 reference at `seed` (`models/bias-smoothed-margin.toml` at seed 0): 40 points in
    /// R^5 from a unit teacher with margin 0.3, k = 20 units, init std 0.2, GD eta = 0.01 on the
    /// mean exponential loss for 40,000 steps, checkpoints 5000, 10000, 20000, 40000.
    pub fn reference(seed: u64) -> Spec {
        Spec {
            data: Data::Teacher {
                n: 40,
                d: 5,
                margin: 0.3,
            },
            k: 20,
            init: 0.2,
            eta: 0.01,
            steps: 40_000,
            first_checkpoint: 5_000,
            seed,
            csv: None,
        }
    }

    /// The B-18 reference at `seed` (`models/bias-smoothed-margin-long.toml` at seed 0): the B-7
    /// setting run to 1.024e6 steps, doubling checkpoints t = 1000 * 2^m, m = 0..10.
    pub fn long_reference(seed: u64) -> Spec {
        Spec {
            steps: 1_024_000,
            first_checkpoint: 1_000,
            ..Spec::reference(seed)
        }
    }
}

/// What a B-7 run measured: the run (smoothed margin after L_sum < 1, samples and theta at the
/// checkpoints) and the doubling checkpoints t1, 2 t1, 4 t1, ... <= steps among them.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run: MarginRun,
    pub doubling: Vec<usize>,
}

/// The B-7 run of a checked spec: the data (teacher draws at `seed`, or explicit), GD from
/// N(0, init^2) (`StdRng` seed `seed + 77`), theta at 100 log-spaced steps and the doubling
/// checkpoints. A loss that never falls below 1 is [`Error::Requirement`].
pub fn run(spec: &Spec) -> Result<Outcome> {
    let Spec {
        k,
        init,
        eta,
        steps,
        first_checkpoint: t1,
        seed,
        ..
    } = *spec;
    let (x, y) = match &spec.data {
        Data::Teacher { n, d, margin } => {
            let (x, y, _) = teacher_data(*n, *d, *margin, seed);
            (x, y)
        }
        Data::Explicit(x, y) => (x.clone(), y.clone()),
    };
    let doubling: Vec<usize> = std::iter::successors(Some(t1), |t| Some(2 * t))
        .take_while(|&t| t <= steps)
        .collect();
    let mut checkpoints: Vec<usize> = log_steps(steps, 100);
    checkpoints.extend(&doubling);
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let s = SmoothedMarginSettings {
        k,
        init,
        eta,
        steps,
        rng_seed: seed + 77,
    };
    let run = smoothed_margin_run_on(&x, &y, &s, &checkpoints)?;
    Ok(Outcome { run, doubling })
}

/// B-7's rows of a run: the max relative per-step decrease of gamma~ once L_sum < 1, the
/// direction settling and the norm growth along the doubling checkpoints. What `modeflow train`
/// on a `bias_smoothed_margin` model and the B-7 check report.
pub fn rows(spec: &Spec, out: &Outcome) -> Vec<Row> {
    let r = &out.run;
    let mut rows = vec![Row::abs(
        "max relative per-step decrease of gamma~ after L_sum < 1",
        0.0,
        r.max_rel_decrease.max(0.0),
        DECREASE_TOL,
    )
    .note(format!(
        "L_sum < 1 from step {}; GD eta {} on the mean exp loss, {} steps",
        r.t0, spec.eta, spec.steps
    ))];
    rows.extend(doubling_rows(r, &out.doubling));
    rows
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let steps = spec.steps;
    let out = run(&spec).map_err(|e| match e {
        Error::Requirement(m) => {
            model
                .checker()
                .error("steps", steps, "more steps (or a larger eta)", &m)
        }
        e => e,
    })?;
    let rows = rows(&spec, &out);
    let r = &out.run;
    let last = r.samples.last().map_or(f64::NAN, |s| s.1);
    let summary = vec![
        ("step with L_sum < 1".into(), r.t0 as f64),
        ("gamma~ at T".into(), last),
        (
            "|theta|^2 at T".into(),
            r.samples.last().map_or(f64::NAN, |s| s.2),
        ),
    ];
    let series = r
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let c = if i == 0 {
                f64::NAN
            } else {
                let (a, b) = (&r.thetas[i - 1], &r.thetas[i]);
                1.0 - a.dot(b) / (a.norm() * b.norm())
            };
            vec![s.0 as f64, s.1, s.2, c]
        })
        .collect();
    let csv = time_series(
        model,
        &spec.csv,
        &["t", "smoothed_margin", "theta_norm2", "one_minus_cos_prev"],
        series,
    )?;
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B-7's and B-18's references at seed 0 are the shipped `models/bias-smoothed-margin.toml`
    /// and `models/bias-smoothed-margin-long.toml`.
    #[test]
    fn reference_is_the_shipped_model() {
        let long = "bias-smoothed-margin-long.toml";
        super::super::assert_shipped("bias-smoothed-margin.toml", check, &Spec::reference(0));
        super::super::assert_shipped(long, check, &Spec::long_reference(0));
    }
}
