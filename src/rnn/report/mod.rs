//! `modeflow train` for kind `rnn`: run the networks a model file describes and print each
//! prediction beside its measurement with a verdict.

use serde::Serialize;

use super::fixed_points::{RnnFixedPoint, Tracking};
use super::sequential::SequentialResult;
use super::spec::{check, Protocol, RnnSpec};
use super::tmaps::{mode_of, Mode};
use super::train::TrainLog;
use crate::compare::{Row, Verdict};
use crate::model::ModelFile;
use crate::num::stats;
use crate::Result;

mod schedule;
mod seed;
mod text;

pub use schedule::two_phases;

/// A single-task run.
#[derive(Debug, Clone, Serialize)]
pub struct SingleRun {
    pub log: TrainLog,
    /// Fixed points reachable from the trained network's trial end states.
    pub fixed_points: Vec<RnnFixedPoint>,
}

/// One seed.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub seed: u64,
    pub sequential: Option<SequentialResult>,
    pub tracking: Option<Tracking>,
    pub single: Option<SingleRun>,
    /// Fixed-point analysis failure (the run itself succeeded), if any.
    pub fixed_point_error: Option<String>,
    /// Why a requested fixed-point analysis was skipped (e.g. task A is not working memory).
    pub fixed_point_note: Option<String>,
}

/// Means over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub seeds: usize,
    pub interference_mean: Option<f64>,
    pub interference_sd: Option<f64>,
    pub eps_mean: Option<f64>,
    pub steps_a_mean: f64,
    pub steps_b_mean: Option<f64>,
    /// Mean flow time of A (or of the single task) and of B.
    pub tau_a_mean: f64,
    pub tau_b_mean: Option<f64>,
    /// I over seeds: mean, median, geometric mean with 95% bootstrap intervals (THEORY I.7;
    /// I is heavy-tailed: read the median and the geometric mean).
    pub interference: Option<stats::Summary>,
    /// eps over seeds, with intervals.
    pub eps: Option<stats::Summary>,
    /// Share of rotations (A's fixed point turned by more than 45 degrees, THEORY I.7) among the
    /// seeds whose fixed points were resolved, with its Wilson interval.
    pub rotation_share: Option<stats::Estimate>,
    /// Seeds whose A fixed point after B was not resolved (no mode assigned).
    pub unresolved: usize,
}

/// The report of `modeflow train` for an `rnn` model.
#[derive(Debug, Clone, Serialize)]
pub struct RnnReport {
    pub spec: RnnSpec,
    pub runs: Vec<RunOutcome>,
    pub summary: Summary,
    /// Predictions beside measurements.
    pub rows: Vec<Row>,
}

impl RnnReport {
    /// Whether any row failed.
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Fail)
    }
}

/// Bootstrap seed of the summaries over seeds (fixed: a summary is a function of the runs).
const SUMMARY_BOOTSTRAP_SEED: u64 = 0x5_0aa7;

fn summary_of(v: &[f64]) -> Result<Option<stats::Summary>> {
    if v.is_empty() {
        return Ok(None);
    }
    stats::Summary::of(v, &stats::Bootstrap::new(SUMMARY_BOOTSTRAP_SEED)).map(Some)
}

/// Modes of the seeds by THEORY I.7's 45-degree rule ([`super::tmaps::mode_of`]).
struct Rotations {
    share: Option<stats::Estimate>,
    unresolved: usize,
}

impl Rotations {
    fn of(runs: &[RunOutcome], tracked: bool) -> Result<Rotations> {
        if !tracked {
            return Ok(Rotations {
                share: None,
                unresolved: 0,
            });
        }
        let modes: Vec<Mode> = runs
            .iter()
            .map(|r| mode_of(r.tracking.as_ref().map(|t| t.theta)))
            .collect();
        let resolved: Vec<bool> = modes
            .iter()
            .filter(|m| **m != Mode::Unresolved)
            .map(|m| *m == Mode::Rotation)
            .collect();
        Ok(Rotations {
            share: if resolved.is_empty() {
                None
            } else {
                Some(stats::share(&resolved)?)
            },
            unresolved: modes.len() - resolved.len(),
        })
    }
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Run the model: every seed, the protocol, fixed points, predictions beside measurements.
pub fn train(model: &ModelFile) -> Result<RnnReport> {
    train_spec(check(model)?)
}

/// Run a validated spec: what `modeflow train` runs, and what the network-level claims that
/// train networks (the T-1..T-5 maps) run per grid point.
///
/// The seeds are independent runs, each with its own generators seeded from its seed; a
/// sequential seed is two tasks, task A and task B from A's network, scheduled on all rayon
/// threads in FIFO order ([`two_phases`]: A_1..A_S first, each B_i queued when its A_i is
/// done) and collected in seed order, so the report is the same for any thread count (the
/// training step inside shards its batch deterministically too). The first error in seed order
/// is returned, as a serial loop would. Parallel runs draw no per-step progress bars (they
/// would overwrite each other on the terminal).
pub fn train_spec(spec: RnnSpec) -> Result<RnnReport> {
    let mut run_spec = spec.clone();
    if spec.seeds > 1 {
        run_spec.train.progress = false;
    }
    let seed_of = |i: usize| spec.seed + i as u64;
    let per_seed = match spec.protocol {
        Protocol::Sequential => two_phases(
            spec.seeds,
            |i| seed::sequential_a(&run_spec, seed_of(i)),
            |_, after_a| seed::sequential_b(&run_spec, after_a),
        ),
        Protocol::Single => two_phases(
            spec.seeds,
            |i| seed::single(&run_spec, seed_of(i)),
            |_, run| Ok(run),
        ),
    };
    let mut runs = Vec::new();
    let mut rows = Vec::new();
    for r in per_seed {
        let (run, seed_rows) = r?;
        runs.push(run);
        rows.extend(seed_rows);
    }
    let summary = Summary::of(&spec, &runs)?;
    Ok(RnnReport {
        spec,
        runs,
        summary,
        rows,
    })
}

impl Summary {
    /// Means over the seeds' runs, I and eps with bootstrap intervals, the share of rotations.
    fn of(spec: &RnnSpec, runs: &[RunOutcome]) -> Result<Summary> {
        let sequential = |f: fn(&SequentialResult) -> f64| -> Vec<f64> {
            runs.iter()
                .filter_map(|r| r.sequential.as_ref().map(f))
                .collect()
        };
        // task A's value, or the single task's
        let first = |seq: fn(&SequentialResult) -> f64, single: fn(&TrainLog) -> f64| -> Vec<f64> {
            runs.iter()
                .map(|r| match (&r.sequential, &r.single) {
                    (Some(s), _) => seq(s),
                    (_, Some(s)) => single(&s.log),
                    _ => f64::NAN,
                })
                .collect()
        };
        let is = sequential(|s| s.interference);
        let eps = sequential(|s| s.eps);
        let steps_a = first(|s| s.steps_a as f64, |l| l.steps as f64);
        let steps_b = sequential(|s| s.steps_b as f64);
        let tau_a = first(|s| s.tau_a, |l| l.tau);
        let tau_b = sequential(|s| s.tau_b);
        let rotation = Rotations::of(
            runs,
            spec.protocol == Protocol::Sequential && spec.fixed_points,
        )?;
        let mean_if_any = |v: &[f64]| (!v.is_empty()).then(|| mean_sd(v).0);
        Ok(Summary {
            seeds: spec.seeds,
            interference_mean: mean_if_any(&is),
            interference_sd: (!is.is_empty()).then(|| mean_sd(&is).1),
            eps_mean: mean_if_any(&eps),
            steps_a_mean: mean_sd(&steps_a).0,
            steps_b_mean: mean_if_any(&steps_b),
            tau_a_mean: mean_sd(&tau_a).0,
            tau_b_mean: mean_if_any(&tau_b),
            interference: summary_of(&is)?,
            eps: summary_of(&eps)?,
            rotation_share: rotation.share,
            unresolved: rotation.unresolved,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse;
    use crate::report::Report;

    /// Regression (issue 13): the row "I vs linear 2x2 (eprop)" passed at N = 16 with 0.16 vs
    /// the N -> infinity prediction 0.086 under a tolerance of 1.6 (relative). The prediction is
    /// now the network's own GD as a 2x2 map at its N (e-prop's W_jj included) and the tolerance
    /// is derived (stopping quantum + transient): it must pass with a tolerance below 1e-3, and
    /// the N -> infinity value must lie far outside it.
    #[test]
    fn linear_eprop_row_is_tight_at_small_n() {
        let text = include_str!("../../../models/rnn-eprop.toml")
            .replace("n = 128", "n = 16")
            .replace("seeds = 4", "seeds = 1");
        let rep = train(&parse("rnn-eprop-n16.toml", &text).unwrap()).unwrap();
        let row = rep
            .rows
            .iter()
            .find(|r| r.label.contains("I vs linear 2x2 (eprop)"))
            .expect("the linear 2x2 row");
        assert_eq!(row.verdict, Verdict::Pass, "{row:?}");
        assert!(row.tolerance < 1e-3, "tolerance {}", row.tolerance);
        let i_flow: f64 = row
            .note
            .rsplit("I = ")
            .next()
            .and_then(|v| v.trim().parse().ok())
            .expect("the N -> inf value in the note");
        assert!(
            (i_flow / row.measured - 1.0).abs() > 100.0 * row.tolerance,
            "N -> inf {i_flow} vs measured {}",
            row.measured
        );
    }

    #[test]
    fn train_runs_a_small_model_and_reports() {
        let text = r#"
kind = "rnn"
seed = 1
[network]
n = 60
g = 0.0
[task]
family = "working_memory"
t_d = 4.0
t_loss = 1.0
[training]
lr = 2.0
max_steps = 4000
progress = false
"#;
        let m = parse("t.toml", text).unwrap();
        let r = train(&m).unwrap();
        assert_eq!(r.runs.len(), 1);
        assert!(r.summary.interference_mean.unwrap().is_finite());
        let t = r.text();
        assert!(t.contains("prediction beside measurement"), "{t}");
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("interference"));
    }

    #[test]
    fn diverging_run_is_an_error() {
        let text = r#"
kind = "rnn"
[network]
n = 30
g = 0.5
phi = "identity"
[task]
family = "static"
t_max = 10.0
[training]
protocol = "single"
lr = 1000.0
max_steps = 100
progress = false
"#;
        let m = parse("t.toml", text).unwrap();
        assert!(matches!(train(&m), Err(crate::Error::Diverged { .. })));
    }

    #[test]
    fn mixed_families_skip_the_fixed_point_tracking_with_a_note() {
        // A = static task (input a -> readout b), B = working memory on b
        let text = r#"
kind = "rnn"
seed = 2
[network]
n = 40
g = 0.5
dt = 0.5
readout = "state"
[task_a]
family = "static"
t_max = 10.0
zhat = 0.5
[task_b]
family = "working_memory"
t_d = 3.0
t_loss = 1.0
[training]
lr = 0.05
max_steps = 20000
progress = false
"#;
        let m = parse("t.toml", text).unwrap();
        let r = train(&m).unwrap();
        let run = &r.runs[0];
        let q = run.sequential.as_ref().unwrap();
        assert!(q.converged_a && q.converged_b, "{q:?}");
        assert!(q.interference.is_finite() && q.eps.is_finite());
        assert!(run.tracking.is_none() && run.fixed_point_error.is_none());
        assert!(run
            .fixed_point_note
            .as_deref()
            .unwrap()
            .contains("`static`"));
        assert!(!r.failed());
        let t = r.text();
        assert!(t.contains("task A: static on pattern a; task B: working_memory on pattern b"));
        assert!(t.contains("fixed-point tracking skipped"), "{t}");
    }

    /// Seeds run in parallel as phases (task A of every seed queued first, each task B when
    /// its A is done), and the training step inside shards its batch (batch 32: two shards):
    /// the report of the sequential protocol is the same, bit for bit, with 1 and with 2
    /// threads, and the runs come in seed order.
    #[test]
    fn seeds_in_parallel_are_identical_for_any_thread_count() {
        let text = r#"
kind = "rnn"
seed = 5
seeds = 3
[network]
n = 30
g = 0.0
[task]
family = "working_memory"
t_d = 3.0
t_loss = 1.0
[training]
lr = 2.0
batch = 32
max_steps = 3000
"#;
        let m = parse("t.toml", text).unwrap();
        let with = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| train(&m).unwrap())
        };
        let (one, two) = (with(1), with(2));
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&two).unwrap()
        );
        let seeds: Vec<u64> = two.runs.iter().map(|r| r.seed).collect();
        assert_eq!(seeds, vec![5, 6, 7]);
        assert!(two.summary.interference_mean.unwrap().is_finite());
    }

    /// A seed whose task A diverges ends the run with its error (the first in seed order) on
    /// any thread count, and the other seeds' phases do not wait for its task B (no hang).
    #[test]
    fn a_diverging_task_a_is_the_error_for_any_thread_count() {
        let text = r#"
kind = "rnn"
seed = 1
seeds = 3
[network]
n = 30
g = 0.5
phi = "identity"
[task]
family = "working_memory"
t_d = 3.0
t_loss = 1.0
[training]
lr = 1000.0
max_steps = 100
"#;
        let m = parse("t.toml", text).unwrap();
        for threads in [1, 2] {
            let r = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| train(&m));
            assert!(
                matches!(r, Err(crate::Error::Diverged { .. })),
                "{threads} thread(s): {:?}",
                r.map(|r| r.rows)
            );
        }
    }
}
