//! The sequential protocol A -> B of THEORY I.1 with a full record per step.
//!
//! Train task A (bound to pattern a) to L_A < tol, then task B (bound to pattern b) to
//! L_B < tol. A and B may come from different task families (working memory, the static
//! input-driven task, the flip-flop); [`Task::on_pattern`] binds each to its pattern: A uses
//! input channel / readout a, B uses b, wherever the family has a notion of pattern (the static
//! task takes its input along its pattern and its target on the other readout). Every
//! `record_every` steps: L_A, L_B, |W - W_phase_start|_F and the effective 2x2 change
//! M_eff = U^T (W - W_phase_start) U / N, split into its rotation part (the off-diagonals
//! M_ab, M_ba: the two-factor pathway coupling a and b) and its new-formation part (M_bb).
//! Measured: interference I = L_A(after B) / L_A(untrained), learning times, and the seed
//! covariate eps = a^T x_B(T) / N, the overlap of the B-trial end state with a before B.
//!
//! When the families differ the definitions are kept, and mean:
//! - M_eff is the change of W in the (a, b) plane whatever the tasks; its split is a split of
//!   coordinates (diagonal b-b vs off-diagonal a-b), named after the working-memory mechanisms.
//!   It reads as "rotation" vs "new formation" only when A is a fixed point along a (working
//!   memory, or a 1-bit flip-flop's pair of points +-a). The static task's own solution lives in
//!   an off-diagonal (input a -> readout b is M_ba), so for a static A or B the "rotation" part
//!   includes what that task itself has to learn.
//! - eps is the mean over evaluation trials of a^T x_B(T) / N before B training. For a random
//!   task B (flip-flop) x_B(T) depends on the trial's pulses, so eps is a mean over those trials
//!   (signs may cancel; `eps_cos` is the mean cosine).
//! - I is always L_A(after B) / L_A(untrained) with A's own loss (for a flip-flop A, on fixed
//!   evaluation trials drawn once from the seed).
//!
//! The protocol is two phases with a plain value between them: [`train_task_a`] returns
//! [`AfterA`] (the network after A, the training generator where A left it, the record so far),
//! [`train_task_b`] continues from it; [`run_sequential`] is the two in a row. `modeflow train`
//! schedules the phases of its seeds as separate tasks (`rnn::report::two_phases`).

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::bptt::{Sharded, Workspace};
use super::fixed_points::{track, FixedPointOptions, Tracking};
use super::network::{Network, NetworkSpec, Trainable};
use super::task::{Task, Trials, WorkingMemory};
use super::train::{train_task_feedback, TrainLog, TrainOptions};
use crate::Result;

/// Everything the protocol needs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SequentialSpec {
    pub network: NetworkSpec,
    /// Task A, any family; [`run_sequential`] binds it to pattern a (`on_pattern(0)`).
    pub task_a: Task,
    /// Task B, any family; [`run_sequential`] binds it to pattern b (`on_pattern(1)`).
    pub task_b: Task,
    pub trainable: Trainable,
    pub train: TrainOptions,
    /// Record every this many steps (1: every step).
    pub record_every: usize,
    /// Trials used to evaluate the losses (1 for noise-free tasks).
    pub eval_batch: usize,
}

impl SequentialSpec {
    /// The protocol of the same working-memory task on pattern a, then on pattern b.
    pub fn same_task(
        network: NetworkSpec,
        task: WorkingMemory,
        trainable: Trainable,
        train: TrainOptions,
        record_every: usize,
        eval_batch: usize,
    ) -> SequentialSpec {
        let task = Task::WorkingMemory(task);
        SequentialSpec {
            network,
            task_a: task.on_pattern(0),
            task_b: task.on_pattern(1),
            trainable,
            train,
            record_every,
            eval_batch,
        }
    }

    /// Task A's working-memory parameters, if task A is a working-memory task.
    pub fn working_memory_a(&self) -> Option<WorkingMemory> {
        match self.task_a {
            Task::WorkingMemory(w) => Some(w),
            _ => None,
        }
    }
}

/// One row of the per-step record.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// "A" or "B".
    pub phase: &'static str,
    pub step: usize,
    /// Flow time tau within the phase (lr x step for the stepping rules).
    pub tau: f64,
    pub loss_a: f64,
    pub loss_b: f64,
    /// |W - W_phase_start|_F.
    pub dw_norm: f64,
    /// M_eff row-major.
    pub m_eff: [[f64; 2]; 2],
    /// Rotation part sqrt(M_ab^2 + M_ba^2).
    pub rotation: f64,
    /// New-formation part M_bb (phase B) or M_aa (phase A).
    pub new_formation: f64,
}

/// Result of the protocol.
#[derive(Debug, Clone, Serialize)]
pub struct SequentialResult {
    pub seed: u64,
    pub loss_a_untrained: f64,
    pub loss_a_after_a: f64,
    pub loss_a_after_b: f64,
    pub loss_b_before_b: f64,
    pub loss_b_after_b: f64,
    /// I = L_A(after B) / L_A(untrained).
    pub interference: f64,
    /// Learning times in steps (accepted steps of the flow).
    pub steps_a: usize,
    pub steps_b: usize,
    /// Learning times in flow time tau (the integrated tau of the flow; lr x steps for
    /// GD / SGD / Adam).
    pub tau_a: f64,
    pub tau_b: f64,
    /// Gradient evaluations (forward + BPTT passes) of each phase.
    pub evaluations_a: usize,
    pub evaluations_b: usize,
    pub converged_a: bool,
    pub converged_b: bool,
    /// Seed covariate eps = a^T x_B(T)/N (mean over evaluation trials), before B training.
    pub eps: f64,
    /// The same overlap as a cosine a.x / (|a||x|).
    pub eps_cos: f64,
    /// M_eff of phase B at its end.
    pub m_eff_b: [[f64; 2]; 2],
    pub records: Vec<StepRecord>,
    #[serde(skip)]
    pub log_a: Option<TrainLog>,
    #[serde(skip)]
    pub log_b: Option<TrainLog>,
}

/// The networks at the three stages of the protocol (kept for fixed-point analysis).
#[derive(Debug, Clone)]
pub struct Stages {
    pub untrained: Network,
    pub after_a: Network,
    pub after_b: Network,
    pub task_a: Task,
    pub task_b: Task,
    pub trials_a: Trials,
    pub trials_b: Trials,
    /// Random e-prop's fixed feedback B (N x R), drawn once for the network and used for A
    /// and for B; `None` for every other rule.
    pub feedback: Option<DMatrix<f64>>,
}

/// Seed offset of random e-prop's feedback draw (its own generator, so that the feedback is a
/// property of the network and of the seed, not of where the training stream stands).
const FEEDBACK_SEED: u64 = 0xfeed_bac4;

fn m2(m: &nalgebra::Matrix2<f64>) -> [[f64; 2]; 2] {
    [[m[(0, 0)], m[(0, 1)]], [m[(1, 0)], m[(1, 1)]]]
}

/// The evaluation side of the protocol: the fixed evaluation trials of A and B, their
/// workspaces, and the per-step record they fill.
#[derive(Debug)]
struct Recorder {
    trials_a: Trials,
    trials_b: Trials,
    ws_a: Sharded,
    ws_b: Sharded,
    /// Record every this many steps (>= 1).
    every: usize,
    records: Vec<StepRecord>,
}

impl Recorder {
    /// Evaluation trials drawn from `rng_eval`: a deterministic task needs one trial, a random
    /// one `eval_batch` (per task, as the families may differ; the training batch stays the
    /// user's `train.batch`).
    fn new(
        spec: &SequentialSpec,
        net: &Network,
        task_a: &Task,
        task_b: &Task,
        rng_eval: &mut StdRng,
    ) -> Recorder {
        let (n, k, r, dt) = (net.n, net.inputs(), net.outputs(), net.dt);
        let batch_for = |task: &Task| {
            if task.is_random() {
                spec.eval_batch.max(1)
            } else {
                1
            }
        };
        let trials_a = task_a.trials(n, k, r, dt, batch_for(task_a), rng_eval);
        let trials_b = task_b.trials(n, k, r, dt, batch_for(task_b), rng_eval);
        Recorder {
            ws_a: Sharded::new(net, trials_a.steps, trials_a.batch),
            ws_b: Sharded::new(net, trials_b.steps, trials_b.batch),
            trials_a,
            trials_b,
            every: spec.record_every.max(1),
            records: Vec::new(),
        }
    }

    fn loss_a(&mut self, net: &Network) -> Result<f64> {
        self.ws_a.loss_only(net, &self.trials_a)
    }

    fn loss_b(&mut self, net: &Network) -> Result<f64> {
        self.ws_b.loss_only(net, &self.trials_b)
    }

    /// One row of the record at `step` of `phase` ("A" or "B"), if the step is due.
    fn observe(
        &mut self,
        phase: &'static str,
        step: usize,
        tau: f64,
        net: &Network,
        w_start: &DMatrix<f64>,
    ) -> Result<()> {
        if !step.is_multiple_of(self.every) {
            return Ok(());
        }
        let loss_a = self.loss_a(net)?;
        let loss_b = self.loss_b(net)?;
        let m = net.m_eff(w_start);
        let rotation = (m[(0, 1)].powi(2) + m[(1, 0)].powi(2)).sqrt();
        let new_formation = if phase == "A" { m[(0, 0)] } else { m[(1, 1)] };
        self.records.push(StepRecord {
            phase,
            step,
            tau,
            loss_a,
            loss_b,
            dw_norm: (&net.w - w_start).norm(),
            m_eff: m2(&m),
            rotation,
            new_formation,
        });
        Ok(())
    }

    /// Train phase `phase` ("A" or "B") of the protocol on `task` from `net`, recording it
    /// against the W it started from; returns the log and that W.
    fn train_phase(
        &mut self,
        phase: &'static str,
        spec: &SequentialSpec,
        net: &mut Network,
        task: &Task,
        feedback: Option<&DMatrix<f64>>,
        rng: &mut StdRng,
    ) -> Result<(TrainLog, DMatrix<f64>)> {
        let w_start = net.w.clone();
        let (trainable, train) = (&spec.trainable, &spec.train);
        let log = train_task_feedback(net, trainable, task, train, feedback, rng, |p, net| {
            self.observe(phase, p.step, p.tau, net, &w_start)
        })?;
        Ok((log, w_start))
    }

    /// The seed covariate eps = a^T x_B(T) / N (mean over the B evaluation trials) and its
    /// cosine, read from the last B evaluation (call right after [`Recorder::loss_b`]).
    fn overlap_with_a(&self, net: &Network) -> (f64, f64) {
        let xt = self.ws_b.end_state(); // N x B, all trials
        let a = net.u.column(0);
        let mut e = 0.0;
        let mut c = 0.0;
        for j in 0..xt.ncols() {
            let x = xt.column(j);
            let d = a.dot(&x);
            e += d / net.n as f64;
            c += d / (a.norm() * x.norm()).max(f64::MIN_POSITIVE);
        }
        let bn = xt.ncols() as f64;
        (e / bn, c / bn)
    }
}

/// One seed of the protocol after task A: everything task B starts from (the network after
/// A, the training generator where A left it, random e-prop's feedback, the record so far) and
/// what was measured up to here. A plain value: [`train_task_a`] returns it, [`train_task_b`]
/// consumes it, possibly on another thread.
#[derive(Debug)]
pub struct AfterA {
    seed: u64,
    task_a: Task,
    task_b: Task,
    untrained: Network,
    /// The network after A (B trains it further).
    net: Network,
    rng_train: StdRng,
    feedback: Option<DMatrix<f64>>,
    recorder: Recorder,
    log_a: TrainLog,
    loss_a_untrained: f64,
    loss_a_after_a: f64,
    loss_b_before_b: f64,
    eps: f64,
    eps_cos: f64,
}

/// Phase A of the protocol with seed `seed` (the network draw, trial noise and SGD batches all
/// derive from it): draw the network, train task A on pattern a, measure L_A, L_B and the seed
/// covariate eps before B.
pub fn train_task_a(spec: &SequentialSpec, seed: u64) -> Result<AfterA> {
    let mut rng_net = StdRng::seed_from_u64(seed);
    let mut rng_eval = StdRng::seed_from_u64(seed ^ 0x5eed_e7a1);
    let mut rng_train = StdRng::seed_from_u64(seed ^ 0x7a1e_0b0b);
    let mut net = Network::new(&spec.network, &mut rng_net);
    // random e-prop's feedback belongs to the network: one draw for both tasks
    let feedback = spec
        .train
        .rule
        .feedback(&net, &mut StdRng::seed_from_u64(seed ^ FEEDBACK_SEED));
    let task_a = spec.task_a.on_pattern(0);
    let task_b = spec.task_b.on_pattern(1);
    let mut recorder = Recorder::new(spec, &net, &task_a, &task_b, &mut rng_eval);
    let untrained = net.clone();
    let loss_a_untrained = recorder.loss_a(&net)?;

    let (log_a, _) = recorder.train_phase(
        "A",
        spec,
        &mut net,
        &task_a,
        feedback.as_ref(),
        &mut rng_train,
    )?;
    let loss_a_after_a = recorder.loss_a(&net)?;
    let loss_b_before_b = recorder.loss_b(&net)?;
    let (eps, eps_cos) = recorder.overlap_with_a(&net);
    Ok(AfterA {
        seed,
        task_a,
        task_b,
        untrained,
        net,
        rng_train,
        feedback,
        recorder,
        log_a,
        loss_a_untrained,
        loss_a_after_a,
        loss_b_before_b,
        eps,
        eps_cos,
    })
}

/// Phase B of the protocol: train task B on pattern b from where [`train_task_a`] left the
/// seed, measure I = L_A(after B) / L_A(untrained) and M_eff of B.
pub fn train_task_b(spec: &SequentialSpec, after_a: AfterA) -> Result<(SequentialResult, Stages)> {
    let AfterA {
        seed,
        task_a,
        task_b,
        untrained,
        mut net,
        mut rng_train,
        feedback,
        mut recorder,
        log_a,
        loss_a_untrained,
        loss_a_after_a,
        loss_b_before_b,
        eps,
        eps_cos,
    } = after_a;
    let after_a = net.clone();
    let (log_b, w_start) = recorder.train_phase(
        "B",
        spec,
        &mut net,
        &task_b,
        feedback.as_ref(),
        &mut rng_train,
    )?;
    let loss_a_after_b = recorder.loss_a(&net)?;
    let loss_b_after_b = recorder.loss_b(&net)?;
    let m_eff_b = m2(&net.m_eff(&w_start));
    let result = SequentialResult {
        seed,
        loss_a_untrained,
        loss_a_after_a,
        loss_a_after_b,
        loss_b_before_b,
        loss_b_after_b,
        interference: loss_a_after_b / loss_a_untrained,
        steps_a: log_a.steps,
        steps_b: log_b.steps,
        tau_a: log_a.tau,
        tau_b: log_b.tau,
        evaluations_a: log_a.gradient_evaluations,
        evaluations_b: log_b.gradient_evaluations,
        converged_a: log_a.converged,
        converged_b: log_b.converged,
        eps,
        eps_cos,
        m_eff_b,
        records: recorder.records,
        log_a: Some(log_a),
        log_b: Some(log_b),
    };
    let stages = Stages {
        untrained,
        after_a,
        after_b: net,
        task_a,
        task_b,
        trials_a: recorder.trials_a,
        trials_b: recorder.trials_b,
        feedback,
    };
    Ok((result, stages))
}

/// Run A -> B with seed `seed`: [`train_task_a`], then [`train_task_b`].
pub fn run_sequential(spec: &SequentialSpec, seed: u64) -> Result<(SequentialResult, Stages)> {
    train_task_b(spec, train_task_a(spec, seed)?)
}

/// End state (trial 0) and final constant input of `trials` run on `net`.
pub fn end_state_and_input(net: &Network, trials: &Trials) -> Result<(DVector<f64>, DVector<f64>)> {
    let mut ws = Workspace::new(net, trials.steps, trials.batch);
    ws.forward(net, trials)?;
    let x = ws.end_state().column(0).into_owned();
    let u_last = trials.inputs.column((trials.steps - 1) * trials.batch);
    let v = &net.w_in * u_last;
    Ok((x, v))
}

/// Track the A fixed point through B training for the stages of a protocol run.
pub fn track_stages(stages: &Stages, opts: &FixedPointOptions) -> Result<Tracking> {
    let (a_before, v_a) = end_state_and_input(&stages.after_a, &stages.trials_a)?;
    let (a_after, _) = end_state_and_input(&stages.after_b, &stages.trials_a)?;
    let (b_after, v_b) = end_state_and_input(&stages.after_b, &stages.trials_b)?;
    track(
        &stages.after_a,
        &stages.after_b,
        &a_before,
        &a_after,
        &b_after,
        &v_a,
        &v_b,
        opts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::network::{Phi, Readout};
    use crate::rnn::rules::LearningRule;
    use crate::rnn::train::Optimizer;

    /// Regression: random e-prop's feedback B belongs to the network. It was drawn inside each
    /// training call from the training stream, so task B learned with a different B than task A.
    /// Replaying the protocol with the stages' one B for both tasks must give the network after
    /// B bit for bit, and a second draw for task B a different one (so B matters here).
    #[test]
    fn random_eprop_feedback_is_drawn_once_per_network() {
        let spec = SequentialSpec::same_task(
            NetworkSpec {
                n: 40,
                g: 0.5,
                dt: 0.2,
                phi: Phi::Tanh,
                readout: Readout::Rate,
                m0: [[0.0; 2]; 2],
            },
            WorkingMemory::short_test_task(),
            Trainable::FULL,
            TrainOptions {
                optimizer: Optimizer::Gd,
                lr: 0.5,
                tol: 1e-12,
                max_steps: 20,
                rule: LearningRule::RandomEprop {
                    feedback_alignment: 0.0,
                },
                ..TrainOptions::default()
            },
            1,
            1,
        );
        let seed = 5;
        let (_, stages) = run_sequential(&spec, seed).unwrap();
        let fb = stages
            .feedback
            .clone()
            .expect("random e-prop has a feedback");
        let replay = |fb_b: &DMatrix<f64>| -> DMatrix<f64> {
            let mut net = Network::new(&spec.network, &mut StdRng::seed_from_u64(seed));
            let mut rng = StdRng::seed_from_u64(seed ^ 0x7a1e_0b0b);
            for (task, f) in [
                (spec.task_a.on_pattern(0), &fb),
                (spec.task_b.on_pattern(1), fb_b),
            ] {
                train_task_feedback(
                    &mut net,
                    &spec.trainable,
                    &task,
                    &spec.train,
                    Some(f),
                    &mut rng,
                    |_, _| Ok(()),
                )
                .unwrap();
            }
            net.w
        };
        assert_eq!(replay(&fb), stages.after_b.w);
        let other = spec
            .train
            .rule
            .feedback(&stages.untrained, &mut StdRng::seed_from_u64(99))
            .unwrap();
        let diff = (replay(&other) - &stages.after_b.w).amax();
        assert!(
            diff > 1e-6,
            "a second feedback draw changed W by only {diff:e}"
        );
        // and the other rules carry none
        let mut bptt = spec;
        bptt.train.rule = LearningRule::Bptt;
        bptt.train.max_steps = 1;
        assert!(run_sequential(&bptt, seed).unwrap().1.feedback.is_none());
    }

    #[test]
    fn protocol_records_and_measures() {
        let spec = SequentialSpec::same_task(
            NetworkSpec {
                n: 60,
                g: 0.5,
                dt: 0.2,
                phi: Phi::Tanh,
                readout: Readout::Rate,
                m0: [[0.0; 2]; 2],
            },
            WorkingMemory::short_test_task(),
            Trainable::FULL,
            TrainOptions {
                optimizer: Optimizer::Gd,
                lr: 2.0,
                tol: 1e-4,
                max_steps: 4000,
                ..TrainOptions::default()
            },
            1,
            1,
        );
        let (res, stages) = run_sequential(&spec, 7).unwrap();
        assert!(res.converged_a && res.converged_b);
        assert!(res.loss_a_after_a < 1e-4 && res.loss_b_after_b < 1e-4);
        assert_eq!(res.records.len(), res.steps_a + res.steps_b + 2);
        // the first B record sees W = W_after_A: no change yet
        let first_b = res.records.iter().find(|r| r.phase == "B").unwrap();
        assert_eq!(first_b.dw_norm, 0.0);
        assert!((first_b.loss_a - res.loss_a_after_a).abs() < 1e-15);
        // the recorded M_eff at the end of B matches the one of the final network
        let last = res.records.last().unwrap();
        for i in 0..2 {
            for j in 0..2 {
                assert!((last.m_eff[i][j] - res.m_eff_b[i][j]).abs() < 1e-12);
            }
        }
        assert!((res.interference - res.loss_a_after_b / res.loss_a_untrained).abs() < 1e-15);
        assert_eq!(stages.after_b.w, {
            let (_, s2) = run_sequential(&spec, 7).unwrap();
            s2.after_b.w
        });
    }
}
