//! Tasks as trial generators (THEORY I.1, I.4): a batch of B trials of T Euler steps.
//!
//! A [`Trials`] holds, per step k = 0..T-1, the input U_k (K x B) that drives x_k -> x_{k+1},
//! and for the state x_{k+1} the readout targets and loss weights (R x B). The loss is
//! L = sum_k sum_{r,j} c_{r,j,k} (y_{r,j}(x_{k+1}) - target)^2 / 2; the weights already carry
//! the averages over the loss window and over trials.

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// A batch of trials, laid out for the batched forward pass.
#[derive(Debug, Clone)]
pub struct Trials {
    /// Euler steps T.
    pub steps: usize,
    /// Trials B.
    pub batch: usize,
    /// Inputs, K x (T B); column block k is U_k.
    pub inputs: DMatrix<f64>,
    /// Targets for the states x_1..x_T, R x (T B); column block k belongs to x_{k+1}.
    pub targets: DMatrix<f64>,
    /// Loss weights, same layout as `targets`.
    pub weights: DMatrix<f64>,
    /// Whether block k carries any loss weight (steps outside the loss window are skipped).
    pub active: Vec<bool>,
    /// Initial states x_0, N x B.
    pub x0: DMatrix<f64>,
}

impl Trials {
    /// Empty trials (no input, no loss) for a network of `n` neurons, `k` inputs, `r` readouts.
    pub fn zeros(n: usize, k: usize, r: usize, steps: usize, batch: usize) -> Trials {
        Trials {
            steps,
            batch,
            inputs: DMatrix::zeros(k, steps * batch),
            targets: DMatrix::zeros(r, steps * batch),
            weights: DMatrix::zeros(r, steps * batch),
            active: vec![false; steps],
            x0: DMatrix::zeros(n, batch),
        }
    }

    /// Copy trials `j0..j1` of the batch (their columns in every step block, and their
    /// initial states) into `dst`, reallocating `dst` only if its shape differs.
    pub fn copy_subset_into(&self, j0: usize, j1: usize, dst: &mut Trials) {
        assert!(
            j0 < j1 && j1 <= self.batch,
            "copy_subset_into: bad trial range {j0}..{j1}"
        );
        let (t, b, bs) = (self.steps, self.batch, j1 - j0);
        let (k, r, n) = (self.inputs.nrows(), self.targets.nrows(), self.x0.nrows());
        if dst.steps != t
            || dst.batch != bs
            || dst.inputs.nrows() != k
            || dst.targets.nrows() != r
            || dst.x0.nrows() != n
        {
            *dst = Trials::zeros(n, k, r, t, bs);
        }
        for step in 0..t {
            let (src, to) = (step * b + j0, step * bs);
            dst.inputs
                .columns_mut(to, bs)
                .copy_from(&self.inputs.columns(src, bs));
            dst.targets
                .columns_mut(to, bs)
                .copy_from(&self.targets.columns(src, bs));
            dst.weights
                .columns_mut(to, bs)
                .copy_from(&self.weights.columns(src, bs));
            dst.active[step] = self.active[step];
        }
        dst.x0.copy_from(&self.x0.columns(j0, bs));
    }

    /// Set the loss weight and target of readout `r`, trial `j`, state x_{k+1}.
    pub fn set_target(&mut self, k: usize, j: usize, r: usize, target: f64, weight: f64) {
        let c = k * self.batch + j;
        self.targets[(r, c)] = target;
        self.weights[(r, c)] = weight;
        if weight != 0.0 {
            self.active[k] = true;
        }
    }
}

/// Loss of the working-memory task (THEORY I.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// L_mu = 1/2 <(y_mu - zhat)^2>.
    Own,
    /// L_mu = 1/2 <(y_mu - zhat)^2 + y_nu^2>.
    Aligned,
}

/// The working-memory fixed point task for pattern mu (channel 0 = a, 1 = b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WorkingMemory {
    /// Which pattern (input channel and readout) this task uses: 0 = a (task A), 1 = b (task B).
    pub pattern: usize,
    /// Pulse amplitude u_p and duration T_in.
    pub u_p: f64,
    pub t_in: f64,
    /// Sustained level u_s during the delay T_d.
    pub u_s: f64,
    pub t_d: f64,
    /// Loss window T_L at the end of the trial (0: the final state only).
    pub t_loss: f64,
    /// Target zhat.
    pub zhat: f64,
    pub loss: LossKind,
    /// Standard deviation sigma0 of the initial state (0: x(0) = 0).
    pub sigma0: f64,
}

impl WorkingMemory {
    /// A short noise-free task on pattern a (T_in = 2, T_d = 4, T_L = 1, zhat = 0.5, aligned
    /// loss): the shared fixture of the unit tests.
    #[cfg(test)]
    pub(crate) fn short_test_task() -> WorkingMemory {
        WorkingMemory {
            pattern: 0,
            u_p: 1.0,
            t_in: 2.0,
            u_s: 0.0,
            t_d: 4.0,
            t_loss: 1.0,
            zhat: 0.5,
            loss: LossKind::Aligned,
            sigma0: 0.0,
        }
    }
}

/// The NeurIPS-2020 static task (THEORY I-10): constant input u along one pattern for the
/// whole trial, target zhat at the final state on the readout of the *other* pattern
/// (orthogonal to the input, as in I-10).
///
/// Pattern mapping: `pattern` = 0 (a, the default and the I-10 setting) puts the input on
/// channel a and the target on readout b; `pattern` = 1 (b, the task-B version of the
/// sequential protocol) puts the input on channel b and the target on readout a. A and B thus
/// use different input and readout directions (the map they must learn is b <- a for A and
/// a <- b for B), which is what makes A -> B meaningful for this family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StaticTask {
    /// Input pattern: 0 = a (target on readout b), 1 = b (target on readout a).
    pub pattern: usize,
    pub u: f64,
    pub t_max: f64,
    pub zhat: f64,
}

/// The flip-flop task: on each channel, pulses of random sign (probability `rate` per unit
/// time, duration `t_pulse`, amplitude 1); readout r must hold the sign of the last pulse on
/// channel r (0 before the first one). The loss is the mean over steps, trials and channels of
/// (y - target)^2 / 2, with no loss while a pulse is on (the network needs the pulse to flip:
/// counting it would put a floor under the loss).
///
/// `channels` selects the bits: both (the 2-bit flip-flop, channels and readouts a and b), or
/// one of them (a 1-bit flip-flop on pattern a or b alone: the other channel is never driven
/// and its readout carries no loss).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlipFlop {
    pub channels: Channels,
    pub t_max: f64,
    pub rate: f64,
    pub t_pulse: f64,
    pub sigma0: f64,
}

/// Which input channels / readouts a flip-flop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    /// Pattern a only (channel and readout 0).
    A,
    /// Pattern b only (channel and readout 1).
    B,
    /// Both (the 2-bit flip-flop).
    Both,
}

impl Channels {
    /// The channels used, as a range of channel indices.
    fn range(self) -> std::ops::Range<usize> {
        match self {
            Channels::A => 0..1,
            Channels::B => 1..2,
            Channels::Both => 0..2,
        }
    }
}

/// A task family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum Task {
    WorkingMemory(WorkingMemory),
    Static(StaticTask),
    FlipFlop(FlipFlop),
}

/// Number of Euler steps covering time `t` (at least 1).
pub fn steps_for(t: f64, dt: f64) -> usize {
    ((t / dt).round() as usize).max(1)
}

impl Task {
    /// The family's name as in the model file.
    pub fn family(&self) -> &'static str {
        match self {
            Task::WorkingMemory(_) => "working_memory",
            Task::Static(_) => "static",
            Task::FlipFlop(_) => "flip_flop",
        }
    }

    /// This task bound to pattern `pattern` (0 = a, 1 = b): the working-memory task drives
    /// channel `pattern` and targets its readout; the static task takes its input along
    /// `pattern` and puts its target on the other readout; the flip-flop becomes the 1-bit
    /// flip-flop on that channel alone. The sequential protocol runs task A on 0, B on 1.
    pub fn on_pattern(self, pattern: usize) -> Task {
        let pattern = pattern.min(1);
        match self {
            Task::WorkingMemory(w) => Task::WorkingMemory(WorkingMemory { pattern, ..w }),
            Task::Static(s) => Task::Static(StaticTask { pattern, ..s }),
            Task::FlipFlop(f) => Task::FlipFlop(FlipFlop {
                channels: if pattern == 0 {
                    Channels::A
                } else {
                    Channels::B
                },
                ..f
            }),
        }
    }

    /// Whether the trials are random (noise or random pulses); deterministic tasks need one
    /// trial per batch.
    pub fn is_random(&self) -> bool {
        match self {
            Task::WorkingMemory(w) => w.sigma0 > 0.0,
            Task::Static(_) => false,
            Task::FlipFlop(_) => true,
        }
    }

    /// Generate `batch` trials for a network with `n` neurons, `k` inputs, `r` readouts.
    pub fn trials(
        &self,
        n: usize,
        k: usize,
        r: usize,
        dt: f64,
        batch: usize,
        rng: &mut impl Rng,
    ) -> Trials {
        match self {
            Task::WorkingMemory(w) => {
                let steps = steps_for(w.t_in + w.t_d, dt);
                let mut tr = Trials::zeros(n, k, r, steps, batch);
                let n_in = steps_for(w.t_in, dt).min(steps);
                let n_loss = if w.t_loss > 0.0 {
                    steps_for(w.t_loss, dt).min(steps)
                } else {
                    1
                };
                let other = 1 - w.pattern.min(1);
                let c = 1.0 / (n_loss * batch) as f64;
                for kk in 0..steps {
                    let u = if kk < n_in { w.u_p } else { w.u_s };
                    for j in 0..batch {
                        tr.inputs[(w.pattern, kk * batch + j)] = u;
                        if kk + n_loss >= steps {
                            tr.set_target(kk, j, w.pattern, w.zhat, c);
                            if w.loss == LossKind::Aligned && other < r {
                                tr.set_target(kk, j, other, 0.0, c);
                            }
                        }
                    }
                }
                if w.sigma0 > 0.0 {
                    tr.x0 = DMatrix::from_fn(n, batch, |_, _| {
                        w.sigma0 * rng.sample::<f64, _>(StandardNormal)
                    });
                }
                tr
            }
            Task::Static(s) => {
                let steps = steps_for(s.t_max, dt);
                let mut tr = Trials::zeros(n, k, r, steps, batch);
                let c = 1.0 / batch as f64;
                let input = s.pattern.min(k - 1);
                let readout = (1 - s.pattern.min(1)).min(r - 1);
                for kk in 0..steps {
                    for j in 0..batch {
                        tr.inputs[(input, kk * batch + j)] = s.u;
                    }
                }
                for j in 0..batch {
                    tr.set_target(steps - 1, j, readout, s.zhat, c);
                }
                tr
            }
            Task::FlipFlop(f) => {
                let steps = steps_for(f.t_max, dt);
                let pulse = steps_for(f.t_pulse, dt);
                let mut tr = Trials::zeros(n, k, r, steps, batch);
                let used = f.channels.range();
                let used = used.start.min(k.min(r))..used.end.min(k.min(r));
                let p = (f.rate * dt).min(1.0);
                let c = 1.0 / (steps * batch * used.len().max(1)) as f64;
                for j in 0..batch {
                    for q in used.clone() {
                        let mut state = 0.0;
                        let mut left = 0usize;
                        let mut sign = 0.0;
                        for kk in 0..steps {
                            if left == 0 && rng.random::<f64>() < p {
                                sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                                left = pulse;
                            }
                            if left > 0 {
                                tr.inputs[(q, kk * batch + j)] = sign;
                                state = sign;
                                left -= 1;
                            } else {
                                tr.set_target(kk, j, q, state, c);
                            }
                        }
                    }
                }
                if f.sigma0 > 0.0 {
                    tr.x0 = DMatrix::from_fn(n, batch, |_, _| {
                        f.sigma0 * rng.sample::<f64, _>(StandardNormal)
                    });
                }
                tr
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn working_memory_weights_average_over_window_and_trials() {
        let t = Task::WorkingMemory(WorkingMemory {
            pattern: 1,
            u_p: 1.0,
            t_in: 2.0,
            u_s: 0.3,
            t_d: 5.0,
            t_loss: 2.0,
            zhat: 0.5,
            loss: LossKind::Aligned,
            sigma0: 0.0,
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let tr = t.trials(10, 2, 2, 0.2, 3, &mut rng);
        assert_eq!(tr.steps, 35);
        // each readout's weights sum to 1 (window average x trial average)
        let s1: f64 = tr.weights.row(1).sum();
        let s0: f64 = tr.weights.row(0).sum();
        assert!((s1 - 1.0).abs() < 1e-12 && (s0 - 1.0).abs() < 1e-12);
        assert_eq!(tr.active.iter().filter(|&&a| a).count(), 10);
        assert_eq!(tr.inputs[(1, 0)], 1.0);
        assert_eq!(tr.inputs[(1, 34 * 3)], 0.3);
        assert_eq!(tr.inputs[(0, 34 * 3)], 0.0);
    }

    #[test]
    fn flip_flop_targets_hold_the_last_sign_and_skip_pulses() {
        let t = Task::FlipFlop(FlipFlop {
            channels: Channels::Both,
            t_max: 30.0,
            rate: 0.5,
            t_pulse: 1.0,
            sigma0: 0.0,
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let tr = t.trials(10, 2, 2, 0.2, 3, &mut rng);
        let mut pulses = 0;
        for j in 0..3 {
            for q in 0..2 {
                let mut last = 0.0;
                for k in 0..tr.steps {
                    let c = k * 3 + j;
                    let u = tr.inputs[(q, c)];
                    if u != 0.0 {
                        pulses += 1;
                        last = u;
                        assert_eq!(tr.weights[(q, c)], 0.0, "loss during a pulse");
                    } else {
                        assert!(tr.weights[(q, c)] > 0.0);
                        assert_eq!(tr.targets[(q, c)], last);
                    }
                }
            }
        }
        assert!(pulses > 0);
    }

    #[test]
    fn one_bit_flip_flop_on_b_leaves_channel_and_readout_a_alone() {
        let two = Task::FlipFlop(FlipFlop {
            channels: Channels::Both,
            t_max: 30.0,
            rate: 0.5,
            t_pulse: 1.0,
            sigma0: 0.0,
        });
        let t = two.on_pattern(1);
        assert!(matches!(
            t,
            Task::FlipFlop(FlipFlop {
                channels: Channels::B,
                ..
            })
        ));
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let tr = t.trials(10, 2, 2, 0.2, 5, &mut rng);
        // channel a never driven, readout a never weighted or targeted
        assert!(tr.inputs.row(0).iter().all(|&u| u == 0.0));
        assert!(tr.weights.row(0).iter().all(|&c| c == 0.0));
        assert!(tr.targets.row(0).iter().all(|&z| z == 0.0));
        // channel b carries pulses and the loss; its weights are the mean over the steps
        // outside pulses, trials and the one channel: each weight is 1 / (T B)
        assert!(tr.inputs.row(1).iter().any(|&u| u != 0.0));
        let c = 1.0 / (tr.steps * 5) as f64;
        assert!(tr.weights.row(1).iter().all(|&w| w == 0.0 || w == c));
        // and on a: the mirror image
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let ta = two.on_pattern(0).trials(10, 2, 2, 0.2, 5, &mut rng);
        assert!(ta.inputs.row(1).iter().all(|&u| u == 0.0));
        assert!(ta.weights.row(1).iter().all(|&c| c == 0.0));
        assert_eq!(ta.inputs.row(0), tr.inputs.row(1));
    }

    #[test]
    fn static_task_on_b_swaps_input_and_readout() {
        let s = Task::Static(StaticTask {
            pattern: 0,
            u: 0.7,
            t_max: 2.0,
            zhat: 1.0,
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let a = s.trials(10, 2, 2, 0.5, 1, &mut rng);
        let b = s.on_pattern(1).trials(10, 2, 2, 0.5, 1, &mut rng);
        let last = a.steps - 1;
        // A: input a, target on readout b (I-10); B: input b, target on readout a
        assert!(a.inputs.row(0).iter().all(|&u| u == 0.7));
        assert!(a.inputs.row(1).iter().all(|&u| u == 0.0));
        assert_eq!((a.weights[(1, last)], a.weights[(0, last)]), (1.0, 0.0));
        assert!(b.inputs.row(1).iter().all(|&u| u == 0.7));
        assert!(b.inputs.row(0).iter().all(|&u| u == 0.0));
        assert_eq!((b.weights[(0, last)], b.weights[(1, last)]), (1.0, 0.0));
        assert_eq!(b.targets[(0, last)], 1.0);
    }

    #[test]
    fn working_memory_on_pattern_sets_the_pattern() {
        let w = WorkingMemory::short_test_task();
        let t = Task::WorkingMemory(w);
        assert_eq!(t.on_pattern(0), t);
        assert_eq!(
            t.on_pattern(1),
            Task::WorkingMemory(WorkingMemory { pattern: 1, ..w })
        );
        assert_eq!(t.family(), "working_memory");
    }
}
