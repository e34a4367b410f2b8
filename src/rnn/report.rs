//! `modeflow train` for kind `rnn`: run the networks a model file describes and print each
//! prediction beside its measurement with a verdict.

use serde::Serialize;

use super::fixed_points::{find_fixed_points, FixedPointOptions, RnnFixedPoint, Tracking};
use super::network::{Network, Phi, Recurrent};
use super::rotation_interference::{x2_hypothesis, x2_tolerance, X2Point};
use super::sequential::{
    end_state_and_input, run_sequential, track_stages, SequentialResult, SequentialSpec,
};
use super::spec::{check, Protocol, RnnSpec};
use super::task::{LossKind, Task};
use super::tmaps::{mode_of, Mode};
use super::train::{train_task, Optimizer, TrainLog};
use crate::compare::{Row, Verdict};
use crate::model::ModelFile;
use crate::num::stats;
use crate::report::{fmt_num, Report};
use crate::Result;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

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
pub fn train_spec(spec: RnnSpec) -> Result<RnnReport> {
    // The seeds are independent runs: in parallel (rayon), each with its own generators seeded
    // from its seed, collected in seed order, so the report is the same for any thread count
    // (the training step inside shards its batch deterministically too). The first error in
    // seed order is returned, as a serial loop would. Parallel runs draw no per-step progress
    // bars (they would overwrite each other on the terminal).
    let mut run_spec = spec.clone();
    if spec.seeds > 1 {
        run_spec.train.progress = false;
    }
    let per_seed: Vec<Result<(RunOutcome, Vec<Row>)>> = (0..spec.seeds)
        .into_par_iter()
        .map(|i| {
            let seed = spec.seed + i as u64;
            let mut rows = Vec::new();
            let run = match spec.protocol {
                Protocol::Sequential => run_seq(&run_spec, seed, &mut rows)?,
                Protocol::Single => run_single(&run_spec, seed, &mut rows)?,
            };
            // a fixed-point analysis that was asked for and failed (no fixed point found, a
            // singular Jacobian) fails the run: exit code 1, the report stays complete
            if let Some(e) = &run.fixed_point_error {
                rows.push(Row::holds(
                    format!("seed {seed}: fixed points of the trained network"),
                    false,
                    format!("fixed-point analysis failed: {e}"),
                ));
            }
            Ok((run, rows))
        })
        .collect();
    let mut runs = Vec::new();
    let mut rows = Vec::new();
    for r in per_seed {
        let (run, seed_rows) = r?;
        runs.push(run);
        rows.extend(seed_rows);
    }
    let is: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.sequential.as_ref().map(|s| s.interference))
        .collect();
    let eps: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.sequential.as_ref().map(|s| s.eps))
        .collect();
    let steps_a: Vec<f64> = runs
        .iter()
        .map(|r| match (&r.sequential, &r.single) {
            (Some(s), _) => s.steps_a as f64,
            (_, Some(s)) => s.log.steps as f64,
            _ => f64::NAN,
        })
        .collect();
    let steps_b: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.sequential.as_ref().map(|s| s.steps_b as f64))
        .collect();
    let tau_a: Vec<f64> = runs
        .iter()
        .map(|r| match (&r.sequential, &r.single) {
            (Some(s), _) => s.tau_a,
            (_, Some(s)) => s.log.tau,
            _ => f64::NAN,
        })
        .collect();
    let tau_b: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.sequential.as_ref().map(|s| s.tau_b))
        .collect();
    let rotation = Rotations::of(
        &runs,
        spec.protocol == Protocol::Sequential && spec.fixed_points,
    )?;
    let summary = Summary {
        seeds: spec.seeds,
        interference_mean: (!is.is_empty()).then(|| mean_sd(&is).0),
        interference_sd: (!is.is_empty()).then(|| mean_sd(&is).1),
        eps_mean: (!eps.is_empty()).then(|| mean_sd(&eps).0),
        steps_a_mean: mean_sd(&steps_a).0,
        steps_b_mean: (!steps_b.is_empty()).then(|| mean_sd(&steps_b).0),
        tau_a_mean: mean_sd(&tau_a).0,
        tau_b_mean: (!tau_b.is_empty()).then(|| mean_sd(&tau_b).0),
        interference: summary_of(&is)?,
        eps: summary_of(&eps)?,
        rotation_share: rotation.share,
        unresolved: rotation.unresolved,
    };
    Ok(RnnReport {
        spec,
        runs,
        summary,
        rows,
    })
}

fn run_seq(spec: &RnnSpec, seed: u64, rows: &mut Vec<Row>) -> Result<RunOutcome> {
    let seq = SequentialSpec {
        network: spec.network,
        task_a: spec.task,
        task_b: spec.task_b(),
        trainable: spec.trainable,
        train: spec.train,
        record_every: spec.record_every,
        eval_batch: spec.train.batch,
    };
    let (res, stages) = run_sequential(&seq, seed)?;
    rows.push(Row::holds(
        format!("seed {seed}: A and B reach L < tol"),
        res.converged_a && res.converged_b,
        format!(
            "L_A = {:.3e} after {} steps (tau {:.4e}), L_B = {:.3e} after {} steps (tau {:.4e})",
            res.loss_a_after_a, res.steps_a, res.tau_a, res.loss_b_after_b, res.steps_b, res.tau_b
        ),
    ));
    // a network that is exactly the linear 2x2 model (identity, state readout, g = 0, M only,
    // constant input, own loss): its interference beside the 2x2 prediction of its rule
    if let (Some((par, rule)), Task::WorkingMemory(wm_b)) = (
        super::rules::linear_equivalent(
            &spec.network,
            &spec.trainable,
            &seq.task_a,
            &seq.task_b,
            &spec.train,
        ),
        seq.task_b,
    ) {
        // the network is exactly the 2x2 model at its own N (E-1): its GD on B is the 2x2 map
        // of [`super::rules::linear_gd_task_b`], with e-prop's self-coupling W_jj at this N
        let map = super::rules::linear_gd_task_b(
            &stages.after_a,
            &stages.untrained.m,
            &par,
            rule,
            spec.train.lr,
            spec.train.tol,
            spec.train.max_steps,
            wm_b.t_in + wm_b.t_d,
        )?;
        // the N -> infinity 2x2 flow, for the note (the finite-N shift is e-prop's W_jj, E-1)
        let (i_flow, _) = super::rules::linear_prediction(
            &stages.after_a.m,
            &stages.untrained.m,
            &par,
            rule,
            spec.train.tol,
        )?;
        let tol = super::rules::linear_gd_tolerance(&map, &par);
        rows.push(
            Row::rel(
                format!("seed {seed}: I vs linear 2x2 ({})", rule.name()),
                map.interference,
                res.interference,
                tol,
            )
            .note(format!(
                "task B: {} steps, 2x2 map {} steps{} (lr = {}, N = {}); one-step quantum {:.1e}, transient {:.1e}; N -> inf 2x2 flow I = {:.6}",
                res.steps_b,
                map.steps,
                if map.converged { "" } else { " (cap)" },
                spec.train.lr,
                spec.network.n,
                map.step_change,
                map.transient,
                i_flow
            )),
        );
    }
    let mut tracking = None;
    let mut fixed_point_error = None;
    let mut fixed_point_note = None;
    // the tracking follows the fixed point along a that a working-memory task A holds (its
    // rotation angle theta, X-2's 2(1 - cos theta)); other A families have no such point
    let wm_a = seq.working_memory_a();
    if spec.fixed_points && wm_a.is_none() {
        fixed_point_note = Some(format!(
            "fixed-point tracking skipped: it follows the A fixed point of a working-memory \
             task A (theta, 2(1-cos theta)); task A here is `{}`",
            seq.task_a.family()
        ));
    }
    if let (true, Some(wm)) = (spec.fixed_points, wm_a) {
        match track_stages(&stages, &FixedPointOptions::default()) {
            Ok(tr) => {
                if wm.loss == LossKind::Aligned {
                    let y = &tr.a_after.readout;
                    let zhat = wm.zhat;
                    let norm = (y[0] * y[0] + y[1] * y[1]).sqrt();
                    let (a_end, _) = end_state_and_input(&stages.after_b, &stages.trials_a)?;
                    let y_end = stages.after_b.readouts(&a_end);
                    let p = X2Point {
                        interference: res.interference,
                        theta: tr.theta,
                        predicted: tr.interference_predicted,
                        norm_change: norm / zhat - 1.0,
                        untrained_offset: res.loss_a_untrained / (0.5 * zhat * zhat) - 1.0,
                        outcome: tr.outcome,
                        predicted_general: ((y[0] - zhat).powi(2) + y[1].powi(2))
                            / (2.0 * res.loss_a_untrained),
                        settle_gap: ((y_end[0] - y[0]).powi(2) + (y_end[1] - y[1]).powi(2)).sqrt()
                            / zhat,
                    };
                    let note = format!(
                        "theta = {:.4} rad ({}); |y_A|/zhat-1 = {:.2e}, L_A0/(zhat^2/2)-1 = {:.2e}, settle gap {:.2e}",
                        p.theta, p.outcome, p.norm_change, p.untrained_offset, p.settle_gap
                    );
                    if x2_hypothesis(&p) {
                        rows.push(
                            Row::rel(
                                format!("seed {seed}: I vs 2(1-cos theta) [X-2]"),
                                p.predicted,
                                p.interference,
                                x2_tolerance(&p),
                            )
                            .note(note),
                        );
                    }
                }
                tracking = Some(tr);
            }
            Err(e) => fixed_point_error = Some(e.to_string()),
        }
    }
    Ok(RunOutcome {
        seed,
        sequential: Some(res),
        tracking,
        single: None,
        fixed_point_error,
        fixed_point_note,
    })
}

fn run_single(spec: &RnnSpec, seed: u64, rows: &mut Vec<Row>) -> Result<RunOutcome> {
    let mut rng_net = StdRng::seed_from_u64(seed);
    let mut rng_train = StdRng::seed_from_u64(seed ^ 0x7a1e_0b0b);
    let mut net = Network::new(&spec.network, &mut rng_net);
    let log = train_task(
        &mut net,
        &spec.trainable,
        &spec.task,
        &spec.train,
        &mut rng_train,
        |_, _, _| Ok(()),
    )?;
    rows.push(Row::holds(
        format!("seed {seed}: L < tol"),
        log.converged,
        format!(
            "L = {:.3e} after {} steps (tau {:.4e})",
            log.final_loss, log.steps, log.tau
        ),
    ));
    let mut fixed_points = Vec::new();
    let mut fixed_point_error = None;
    if spec.fixed_points {
        let mut rng_eval = StdRng::seed_from_u64(seed ^ 0x5eed_e7a1);
        let flip_flop = matches!(spec.task, Task::FlipFlop(_));
        let trials = spec.task.trials(
            net.n,
            net.inputs(),
            net.outputs(),
            net.dt,
            if flip_flop {
                FLIP_FLOP_STARTS
            } else {
                spec.train.batch.min(8)
            },
            &mut rng_eval,
        );
        let (starts, v) = if flip_flop {
            flip_flop_starts(&net, &trials)?
        } else {
            let (x, v) = end_state_and_input(&net, &trials)?;
            (vec![x], v)
        };
        // flip-flop: 32 relaxed starts already reach every memory; one perturbed slow-point
        // search per start (instead of 4) keeps the search ~1 s
        let opts = FixedPointOptions {
            slow_starts: if flip_flop {
                1
            } else {
                FixedPointOptions::default().slow_starts
            },
            ..FixedPointOptions::default()
        };
        match find_fixed_points(&net, &v, &starts, &opts, seed) {
            Ok(f) => fixed_points = f,
            Err(e) => fixed_point_error = Some(e.to_string()),
        }
    }
    Ok(RunOutcome {
        seed,
        sequential: None,
        tracking: None,
        single: Some(SingleRun { log, fixed_points }),
        fixed_point_error,
        fixed_point_note: None,
    })
}

/// Trials whose end states seed the flip-flop fixed-point search: with 2^k memories equally
/// likely at a trial's end, 32 trials miss one of the 4 of the 2-bit task with probability
/// 4 (3/4)^32 < 1e-3.
const FLIP_FLOP_STARTS: usize = 32;

/// A flip-flop holds its bits between pulses with the input off: its memories are the
/// attractors of the input-free flow. Each trial's end state (taken mid-pulse or not) is
/// relaxed with the input off for 20 time units (the slowest trained attractor mode of the
/// shipped model decays at ~0.6 per unit time), then handed to Newton with v = 0.
/// Searching instead from one end state with the last input of that trial (the working-memory
/// recipe) finds a fixed point of the pulse-driven flow, not a memory.
fn flip_flop_starts(
    net: &Network,
    trials: &crate::rnn::task::Trials,
) -> Result<(Vec<nalgebra::DVector<f64>>, nalgebra::DVector<f64>)> {
    let mut ws = crate::rnn::bptt::Workspace::new(net, trials.steps, trials.batch);
    ws.forward(net, trials)?;
    let v = nalgebra::DVector::zeros(net.n);
    let mut f = nalgebra::DVector::zeros(net.n);
    let steps = crate::rnn::task::steps_for(20.0, net.dt);
    let starts = (0..trials.batch)
        .map(|j| {
            let mut x = ws.end_state().column(j).into_owned();
            for _ in 0..steps {
                net.flow(&x, &v, &mut f);
                x.axpy(net.dt, &f, 1.0);
            }
            x
        })
        .collect();
    Ok((starts, v))
}

impl Report for RnnReport {
    fn text(&self) -> String {
        let s = &self.spec;
        // plain words, not Rust names: tanh, full W, Adam (beta1 0.9, ...), sequential
        let phi = match s.network.phi {
            Phi::Tanh => "tanh",
            Phi::Erf => "erf",
            Phi::Identity => "identity",
        };
        let trained = match s.trainable.recurrent {
            Recurrent::Full => "full W",
            Recurrent::Latent => "latent M only",
        };
        let opt = match s.train.optimizer {
            Optimizer::Gd => "full-batch gradient descent".to_string(),
            Optimizer::Sgd => "online SGD".to_string(),
            Optimizer::Adam { beta1, beta2, eps } => {
                format!("Adam, beta1 {beta1}, beta2 {beta2}, eps {eps:e}")
            }
            Optimizer::Flow { rtol, atol } => match atol {
                Some(a) => format!("gradient flow, rtol {rtol:e}, atol {a:e}"),
                None => format!("gradient flow, rtol {rtol:e}"),
            },
            Optimizer::ModifiedFlow { eta, rtol, atol } => match atol {
                Some(a) => format!("modified flow of GD at eta {eta}, rtol {rtol:e}, atol {a:e}"),
                None => format!("modified flow of GD at eta {eta}, rtol {rtol:e}"),
            },
        };
        let protocol = match s.protocol {
            Protocol::Sequential => "sequential A -> B",
            Protocol::Single => "single task",
        };
        let mut out = format!(
            "rnn: N = {}, g = {}, dt = {}, phi = {phi}, trained: {trained} ({opt}), protocol {protocol}, {} seed(s)\n",
            s.network.n,
            s.network.g,
            s.network.dt,
            s.seeds
        );
        if s.protocol == Protocol::Sequential {
            let (a, b) = (s.task, s.task_b());
            out.push_str(&format!(
                "task A: {} on pattern a; task B: {} on pattern b\n",
                a.family(),
                b.family()
            ));
            if a.family() != b.family() {
                out.push_str(
                    "  (families differ: I = L_A(after B)/L_A(untrained) with A's own loss; eps = \
                     a.x_B(T)/N before B; M_eff = U^T dW U/N split by coordinates: off-diagonal \
                     'rotation', M_bb 'new formation')\n",
                );
            }
            out.push_str(&format!(
                "\n{:>6} {:>8} {:>8} {:>10} {:>10} {:>12} {:>12} {:>10} {:>12} {:>14}\n",
                "seed",
                "steps_A",
                "steps_B",
                "tau_A",
                "tau_B",
                "I",
                "eps",
                "theta",
                "2(1-cos th)",
                "outcome"
            ));
            for r in &self.runs {
                if let Some(q) = &r.sequential {
                    let (th, pr, oc) = r
                        .tracking
                        .as_ref()
                        .map(|t| {
                            (
                                fmt_num(t.theta),
                                fmt_num(t.interference_predicted),
                                t.outcome,
                            )
                        })
                        .unwrap_or(("-".into(), "-".into(), "-"));
                    out.push_str(&format!(
                        "{:>6} {:>8} {:>8} {:>10} {:>10} {:>12} {:>12} {:>10} {:>12} {:>14}\n",
                        r.seed,
                        q.steps_a,
                        q.steps_b,
                        fmt_num(q.tau_a),
                        fmt_num(q.tau_b),
                        fmt_num(q.interference),
                        fmt_num(q.eps),
                        th,
                        pr,
                        oc
                    ));
                }
            }
            if let (Some(m), Some(sd)) =
                (self.summary.interference_mean, self.summary.interference_sd)
            {
                out.push_str(&format!("mean I = {} (sd {})\n", fmt_num(m), fmt_num(sd)));
            }
            if let Some(i) = &self.summary.interference {
                out.push_str(&format!(
                    "I over {} seed(s), 95% bootstrap intervals: median {} [{}, {}]",
                    i.n,
                    fmt_num(i.median.value),
                    fmt_num(i.median.lo),
                    fmt_num(i.median.hi)
                ));
                if let Some(g) = &i.geomean {
                    out.push_str(&format!(
                        ", geometric mean {} [{}, {}]",
                        fmt_num(g.value),
                        fmt_num(g.lo),
                        fmt_num(g.hi)
                    ));
                }
                out.push('\n');
            }
            if let Some(r) = &self.summary.rotation_share {
                out.push_str(&format!(
                    "rotations (A's fixed point turned > 45 degrees): {} of {} resolved seeds, \
                     share 95% interval [{}, {}]; {} unresolved\n",
                    (r.value * r.n as f64).round(),
                    r.n,
                    fmt_num(r.lo),
                    fmt_num(r.hi),
                    self.summary.unresolved
                ));
            }
        } else {
            for r in &self.runs {
                if let Some(q) = &r.single {
                    out.push_str(&format!(
                        "seed {}: {} steps, tau = {}, {} gradient evaluations, L = {}, {} fixed point(s)\n",
                        r.seed,
                        q.log.steps,
                        fmt_num(q.log.tau),
                        q.log.gradient_evaluations,
                        fmt_num(q.log.final_loss),
                        q.fixed_points.len()
                    ));
                    for f in &q.fixed_points {
                        out.push_str(&format!(
                            "    kappa = ({}, {}), |F| = {}, max Re(eig J) = {}, {}\n",
                            fmt_num(f.kappa[0]),
                            fmt_num(f.kappa[1]),
                            fmt_num(f.residual),
                            fmt_num(f.max_real),
                            if f.stable { "stable" } else { "unstable" }
                        ));
                    }
                }
            }
        }
        for r in &self.runs {
            if let Some(e) = &r.fixed_point_note {
                out.push_str(&format!("seed {}: {e}\n", r.seed));
            }
            if let Some(e) = &r.fixed_point_error {
                out.push_str(&format!(
                    "seed {}: fixed-point analysis failed: {e}\n",
                    r.seed
                ));
            }
        }
        out.push_str("\nprediction beside measurement:\n");
        for r in &self.rows {
            // a yes/no row (Row::holds: predicted 1, measured 0/1, tolerance 0) reads in words
            let yes_no = r.predicted == 1.0
                && (r.measured == 0.0 || r.measured == 1.0)
                && r.tolerance == 0.0
                && !r.relative;
            let (p, m) = if yes_no {
                (
                    "holds".to_string(),
                    if r.measured == 1.0 {
                        "holds"
                    } else {
                        "does not"
                    }
                    .to_string(),
                )
            } else {
                (fmt_num(r.predicted), fmt_num(r.measured))
            };
            out.push_str(&format!(
                "  {:<9} {:<58} predicted {:>12}  measured {:>12}  {}\n",
                format!("{:?}", r.verdict).to_lowercase(),
                r.label,
                p,
                m,
                r.note
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse;

    /// Regression (issue 13): the row "I vs linear 2x2 (eprop)" passed at N = 16 with 0.16 vs
    /// the N -> infinity prediction 0.086 under a tolerance of 1.6 (relative). The prediction is
    /// now the network's own GD as a 2x2 map at its N (e-prop's W_jj included) and the tolerance
    /// is derived (stopping quantum + transient): it must pass with a tolerance below 1e-3, and
    /// the N -> infinity value must lie far outside it.
    #[test]
    fn linear_eprop_row_is_tight_at_small_n() {
        let text = include_str!("../../models/rnn-eprop.toml")
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

    /// Seeds run in parallel, and the training step inside shards its batch (batch 32: two
    /// shards): the report is the same, bit for bit, with 1 and with 2 threads, and the runs come
    /// in seed order.
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
}
