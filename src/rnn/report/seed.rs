//! One seed of `modeflow train` for kind `rnn`: its runs and the rows that set each
//! prediction beside its measurement. The sequential protocol comes as two phases
//! ([`sequential_a`], [`sequential_b`]) that [`super::schedule::two_phases`] runs as separate
//! tasks; the single-task protocol as one ([`single`]).

use nalgebra::DVector;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{RunOutcome, SingleRun};
use crate::compare::Row;
use crate::rnn::bptt::Workspace;
use crate::rnn::fixed_points::{find_fixed_points, FixedPointOptions, Tracking};
use crate::rnn::network::Network;
use crate::rnn::rotation_interference::{x2_hypothesis, x2_tolerance, X2Point};
use crate::rnn::sequential::{
    end_state_and_input, track_stages, train_task_a, train_task_b, AfterA, SequentialResult,
    SequentialSpec, Stages,
};
use crate::rnn::spec::RnnSpec;
use crate::rnn::task::{steps_for, LossKind, Task, Trials, WorkingMemory};
use crate::rnn::train::train_task;
use crate::Result;

/// A seed's outcome and its rows.
pub(super) type SeedRun = (RunOutcome, Vec<Row>);

/// The protocol A -> B of a spec.
fn sequential_spec(spec: &RnnSpec) -> SequentialSpec {
    SequentialSpec {
        network: spec.network,
        task_a: spec.task,
        task_b: spec.task_b(),
        trainable: spec.trainable,
        train: spec.train,
        record_every: spec.record_every,
        eval_batch: spec.train.batch,
    }
}

/// Phase A of a sequential seed: the network trained on task A.
pub(super) fn sequential_a(spec: &RnnSpec, seed: u64) -> Result<AfterA> {
    train_task_a(&sequential_spec(spec), seed)
}

/// Phase B of a sequential seed: task B, then the rows (convergence, the linear 2x2 model when
/// the network is one, the A fixed point tracked through B and X-2's 2(1 - cos theta)).
pub(super) fn sequential_b(spec: &RnnSpec, after_a: AfterA) -> Result<SeedRun> {
    let seq = sequential_spec(spec);
    let (res, stages) = train_task_b(&seq, after_a)?;
    let seed = res.seed;
    let mut rows = vec![Row::holds(
        format!("seed {seed}: A and B reach L < tol"),
        res.converged_a && res.converged_b,
        format!(
            "L_A = {:.3e} after {} steps (tau {:.4e}), L_B = {:.3e} after {} steps (tau {:.4e})",
            res.loss_a_after_a, res.steps_a, res.tau_a, res.loss_b_after_b, res.steps_b, res.tau_b
        ),
    )];
    rows.extend(linear_2x2_row(spec, &seq, &res, &stages)?);
    let fixed = if spec.fixed_points {
        track_a_fixed_point(&seq, &res, &stages, &mut rows)?
    } else {
        FixedPointAnalysis::default()
    };
    let run = RunOutcome {
        seed,
        sequential: Some(res),
        tracking: fixed.tracking,
        single: None,
        fixed_point_error: fixed.error,
        fixed_point_note: fixed.note,
    };
    Ok(with_fixed_point_failure(run, rows))
}

/// A fixed-point analysis that was asked for and failed (no fixed point found, a singular
/// Jacobian) fails the run: exit code 1, the report stays complete.
pub(super) fn with_fixed_point_failure(run: RunOutcome, mut rows: Vec<Row>) -> SeedRun {
    if let Some(e) = &run.fixed_point_error {
        rows.push(Row::holds(
            format!("seed {}: fixed points of the trained network", run.seed),
            false,
            format!("fixed-point analysis failed: {e}"),
        ));
    }
    (run, rows)
}

/// A network that is exactly the linear 2x2 model (identity, state readout, g = 0, M only,
/// constant input, own loss): its interference beside the 2x2 prediction of its rule.
fn linear_2x2_row(
    spec: &RnnSpec,
    seq: &SequentialSpec,
    res: &SequentialResult,
    stages: &Stages,
) -> Result<Option<Row>> {
    let rules = crate::rnn::rules::linear_equivalent(
        &spec.network,
        &spec.trainable,
        &seq.task_a,
        &seq.task_b,
        &spec.train,
    );
    let (Some((par, rule)), Task::WorkingMemory(wm_b)) = (rules, seq.task_b) else {
        return Ok(None);
    };
    // the network is exactly the 2x2 model at its own N (E-1): its GD on B is the 2x2 map
    // of [`crate::rnn::rules::linear_gd_task_b`], with e-prop's self-coupling W_jj at this N
    let map = crate::rnn::rules::linear_gd_task_b(
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
    let (i_flow, _) = crate::rnn::rules::linear_prediction(
        &stages.after_a.m,
        &stages.untrained.m,
        &par,
        rule,
        spec.train.tol,
    )?;
    let tol = crate::rnn::rules::linear_gd_tolerance(&map, &par);
    Ok(Some(
        Row::rel(
            format!("seed {}: I vs linear 2x2 ({})", res.seed, rule.name()),
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
    ))
}

/// The fixed-point analysis of a sequential seed: the tracking, or why it failed or was
/// skipped.
#[derive(Default)]
struct FixedPointAnalysis {
    tracking: Option<Tracking>,
    error: Option<String>,
    note: Option<String>,
}

/// Track the fixed point along a that a working-memory task A holds through B (its rotation
/// angle theta, X-2's 2(1 - cos theta) row for the aligned loss); other A families have no such
/// point (a note says so).
fn track_a_fixed_point(
    seq: &SequentialSpec,
    res: &SequentialResult,
    stages: &Stages,
    rows: &mut Vec<Row>,
) -> Result<FixedPointAnalysis> {
    let Some(wm) = seq.working_memory_a() else {
        return Ok(FixedPointAnalysis {
            note: Some(format!(
                "fixed-point tracking skipped: it follows the A fixed point of a working-memory \
                 task A (theta, 2(1-cos theta)); task A here is `{}`",
                seq.task_a.family()
            )),
            ..FixedPointAnalysis::default()
        });
    };
    match track_stages(stages, &FixedPointOptions::default()) {
        Ok(tr) => {
            if wm.loss == LossKind::Aligned {
                rows.extend(x2_row(&wm, res, stages, &tr)?);
            }
            Ok(FixedPointAnalysis {
                tracking: Some(tr),
                ..FixedPointAnalysis::default()
            })
        }
        Err(e) => Ok(FixedPointAnalysis {
            error: Some(e.to_string()),
            ..FixedPointAnalysis::default()
        }),
    }
}

/// I beside 2(1 - cos theta), where its hypothesis holds ([`x2_hypothesis`]).
fn x2_row(
    wm: &WorkingMemory,
    res: &SequentialResult,
    stages: &Stages,
    tr: &Tracking,
) -> Result<Option<Row>> {
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
        predicted_general: ((y[0] - zhat).powi(2) + y[1].powi(2)) / (2.0 * res.loss_a_untrained),
        settle_gap: ((y_end[0] - y[0]).powi(2) + (y_end[1] - y[1]).powi(2)).sqrt() / zhat,
    };
    if !x2_hypothesis(&p) {
        return Ok(None);
    }
    let note = format!(
        "theta = {:.4} rad ({}); |y_A|/zhat-1 = {:.2e}, L_A0/(zhat^2/2)-1 = {:.2e}, settle gap {:.2e}",
        p.theta, p.outcome, p.norm_change, p.untrained_offset, p.settle_gap
    );
    Ok(Some(
        Row::rel(
            format!("seed {}: I vs 2(1-cos theta) [X-2]", res.seed),
            p.predicted,
            p.interference,
            x2_tolerance(&p),
        )
        .note(note),
    ))
}

/// A single-task seed: train, then the fixed points reachable from the trained network.
pub(super) fn single(spec: &RnnSpec, seed: u64) -> Result<SeedRun> {
    let mut rows = Vec::new();
    let run = run_single(spec, seed, &mut rows)?;
    Ok(with_fixed_point_failure(run, rows))
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
fn flip_flop_starts(net: &Network, trials: &Trials) -> Result<(Vec<DVector<f64>>, DVector<f64>)> {
    let mut ws = Workspace::new(net, trials.steps, trials.batch);
    ws.forward(net, trials)?;
    let v = DVector::zeros(net.n);
    let mut f = DVector::zeros(net.n);
    let steps = steps_for(20.0, net.dt);
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
