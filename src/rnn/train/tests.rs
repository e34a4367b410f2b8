//! Unit tests of `rnn::train`.

use super::*;
use crate::Error;

#[test]
fn progress_follows_the_log_loss() {
    assert_eq!(log_progress(1.0, 1.0, 1e-4), 0);
    assert_eq!(log_progress(1.0, 1e-2, 1e-4), 500);
    assert_eq!(log_progress(1.0, 1e-5, 1e-4), 1000);
    assert_eq!(log_progress(1.0, 2.0, 1e-4), 0);
    assert_eq!(log_progress(1e-5, 1e-6, 1e-4), 1000);
    assert_eq!(log_progress(1.0, f64::NAN, 1e-4), 0);
}
use crate::rnn::network::{NetworkSpec, Phi, Readout};
use crate::rnn::task::WorkingMemory;
use rand::SeedableRng;

/// Train all weights of `net` on `task` without an observer.
fn train_full(
    net: &mut Network,
    task: &Task,
    opts: &TrainOptions,
    rng: &mut StdRng,
) -> Result<TrainLog> {
    train_task(net, &Trainable::FULL, task, opts, rng, |_, _, _| Ok(()))
}

fn setup(phi: Phi) -> (Network, Task) {
    let mut rng = StdRng::seed_from_u64(11);
    let spec = NetworkSpec {
        n: 40,
        g: 0.5,
        dt: 0.2,
        phi,
        readout: Readout::Rate,
        m0: [[0.0; 2]; 2],
    };
    let net = Network::new(&spec, &mut rng);
    let task = Task::WorkingMemory(WorkingMemory::short_test_task());
    (net, task)
}

#[test]
fn gd_and_adam_reach_tolerance_deterministically() {
    for opt in [Optimizer::Gd, Optimizer::ADAM] {
        let lr = if opt == Optimizer::Gd { 2.0 } else { 0.01 };
        let opts = TrainOptions {
            optimizer: opt,
            lr,
            tol: 1e-4,
            max_steps: 3000,
            ..TrainOptions::default()
        };
        let run = || {
            let (mut net, task) = setup(Phi::Tanh);
            let mut rng = StdRng::seed_from_u64(5);
            let log = train_full(&mut net, &task, &opts, &mut rng).unwrap();
            (log, net.w.clone())
        };
        let (log, w1) = run();
        assert!(
            log.converged,
            "{opt:?}: {} steps, loss {}",
            log.steps, log.final_loss
        );
        assert!(log.final_loss < 1e-4);
        let (_, w2) = run();
        assert_eq!(w1, w2, "training is not deterministic");
    }
}

/// The display the application installs sees every run that asks for progress: made once
/// per run, told the position and finished once. The recorder counts per thread (the
/// factory and the display are called on the thread of `train_task`), so other tests that
/// train with a display do not disturb the counts.
#[test]
fn installed_progress_display_follows_the_run() {
    use std::cell::Cell;
    thread_local! {
        static MADE: Cell<usize> = const { Cell::new(0) };
        static FINISHED: Cell<usize> = const { Cell::new(0) };
        static LAST: Cell<u64> = const { Cell::new(0) };
    }
    struct Recorder;
    impl TrainProgress for Recorder {
        fn position(&self, units: u64) {
            LAST.with(|c| c.set(units));
        }
        fn message(&self, _: &str) {}
        fn finish(&self) {
            FINISHED.with(|c| c.set(c.get() + 1));
        }
        fn abandon(&self) {}
    }
    set_progress(|_| {
        MADE.with(|c| c.set(c.get() + 1));
        Some(Box::new(Recorder))
    });
    let opts = TrainOptions {
        optimizer: Optimizer::Gd,
        lr: 2.0,
        tol: 1e-4,
        max_steps: 3000,
        progress: true,
        ..TrainOptions::default()
    };
    let (mut net, task) = setup(Phi::Tanh);
    let mut rng = StdRng::seed_from_u64(5);
    let log = train_full(&mut net, &task, &opts, &mut rng).unwrap();
    assert!(log.converged);
    assert_eq!(MADE.with(Cell::get), 1);
    assert_eq!(FINISHED.with(Cell::get), 1);
    // the last position is that of the step before the loss reached the tolerance: most of
    // the decades of loss are behind it
    let last = LAST.with(Cell::get);
    assert!(
        last > PROGRESS_UNITS / 2 && last <= PROGRESS_UNITS,
        "{last}"
    );
}

#[test]
fn tiny_flip_flop_trains_to_tolerance() {
    // 2-bit flip-flop, state readouts (targets +-1 are out of reach of a tanh rate
    // readout along a Gaussian pattern: |y| <= E|a_i| = 0.8), Adam on fresh batches
    use crate::rnn::task::{Channels, FlipFlop};
    let run = || {
        let mut rng = StdRng::seed_from_u64(2);
        let spec = NetworkSpec {
            n: 40,
            g: 0.5,
            dt: 0.2,
            phi: Phi::Tanh,
            readout: Readout::State,
            m0: [[0.0; 2]; 2],
        };
        let mut net = Network::new(&spec, &mut rng);
        let task = Task::FlipFlop(FlipFlop {
            channels: Channels::Both,
            t_max: 10.0,
            rate: 0.3,
            t_pulse: 1.0,
            sigma0: 0.0,
        });
        let opts = TrainOptions {
            optimizer: Optimizer::ADAM,
            lr: 0.01,
            tol: 0.01,
            max_steps: 3000,
            batch: 8,
            ..TrainOptions::default()
        };
        train_full(&mut net, &task, &opts, &mut rng).unwrap()
    };
    let log = run();
    assert!(
        log.converged,
        "{} steps, loss {}",
        log.steps, log.final_loss
    );
    assert!(
        log.final_loss < 0.01 && log.initial_loss > 0.1,
        "{}",
        log.initial_loss
    );
    assert_eq!(log.losses, run().losses, "not deterministic");
}

fn flow_opts(rtol: f64, max_steps: usize) -> TrainOptions {
    TrainOptions {
        optimizer: Optimizer::Flow { rtol, atol: None },
        lr: 0.0,
        tol: 1e-4,
        max_steps,
        ..TrainOptions::default()
    }
}

fn run_flow(opts: &TrainOptions) -> Result<(TrainLog, Network, Vec<Progress>)> {
    let (mut net, task) = setup(Phi::Tanh);
    let mut rng = StdRng::seed_from_u64(5);
    let mut seen = Vec::new();
    let log = train_task_with(&mut net, &Trainable::FULL, &task, opts, &mut rng, |p, n| {
        // the observer sees the network at the accepted point
        let mut r = StdRng::seed_from_u64(0);
        let tr = task.trials(n.n, n.inputs(), n.outputs(), n.dt, 1, &mut r);
        let l = evaluate(n, &tr)?;
        assert!(
            (l - p.loss).abs() <= 1e-12 * p.loss.max(1e-300),
            "{l} vs {}",
            p.loss
        );
        seen.push(*p);
        Ok(())
    })?;
    Ok((log, net, seen))
}

#[test]
fn flow_reaches_tolerance_deterministically_and_reports_tau() {
    let opts = flow_opts(1e-5, 5000);
    let (log, net, seen) = run_flow(&opts).unwrap();
    assert!(log.converged && log.final_loss < 1e-4, "{log:?}");
    // the stop is the crossing L = tol located inside the last step, not an overshoot
    assert!(log.final_loss >= 1e-4 * (1.0 - CROSSING_RTOL), "{log:?}");
    assert!(log.loss_evaluations > 0);
    assert!(log.tau > 0.0 && log.tau.is_finite());
    assert_eq!(seen.len(), log.steps + 1);
    assert_eq!(seen.last().unwrap().tau, log.tau);
    // tau increases, the loss of the flow never increases (up to the local error)
    for w in seen.windows(2) {
        assert!(w[1].tau > w[0].tau);
        assert!(w[1].loss <= w[0].loss * (1.0 + 1e-6), "{w:?}");
    }
    // FSAL: 6 evaluations per attempted step, plus the start (1, + 1 for the first step)
    assert_eq!(
        log.gradient_evaluations,
        2 + 6 * (log.steps + log.rejected),
        "{log:?}"
    );
    let (log2, net2, _) = run_flow(&opts).unwrap();
    assert_eq!(net.w, net2.w, "the flow is not deterministic");
    assert_eq!(log.losses, log2.losses);
}

#[test]
fn rkc_and_the_pair_reach_the_same_network() {
    // the flow by RKC2 at rtol 1e-6 against the 5(4) pair at 1e-9 (the reference): the
    // stopping time and the trained W agree to the effect of the tolerance on a
    // second-order method (global error ~ rtol^(2/3) per unit tau: ~1e-4; asserted 1e-3)
    let (r, net_r, seen) = run_flow(&TrainOptions {
        flow_method: FlowMethod::Rkc,
        ..flow_opts(1e-6, 20000)
    })
    .unwrap();
    let (d, net_d, _) = run_flow(&TrainOptions {
        flow_method: FlowMethod::Dopri,
        ..flow_opts(1e-9, 20000)
    })
    .unwrap();
    assert!(r.converged && d.converged);
    assert!(r.final_loss >= 1e-4 * (1.0 - CROSSING_RTOL) && r.final_loss < 1e-4);
    assert_eq!((r.rkc_steps, d.rkc_steps), (r.steps, 0));
    assert!(r.rho_evaluations > 0 && r.rho_evaluations < r.gradient_evaluations);
    assert_eq!(seen.len(), r.steps + 1);
    let (w0, _) = setup(Phi::Tanh);
    let moved = (&net_d.w - &w0.w).norm();
    let gap = (&net_r.w - &net_d.w).norm();
    assert!(
        gap < 1e-3 * moved,
        "|W_rkc - W_dp| = {gap:e}, |W_dp - W0| = {moved:e}"
    );
    assert!(
        (r.tau - d.tau).abs() < 1e-3 * d.tau,
        "tau {} vs {}",
        r.tau,
        d.tau
    );
}

#[test]
fn gd_at_a_small_rate_follows_the_flow() {
    // at tau = the flow's end time, GD with lr -> 0 approaches the flow's loss: the
    // global error of Euler is O(lr), so halving lr halves the gap (ratio in [1.6, 2.4])
    let (flow, _, seen) = run_flow(&flow_opts(1e-8, 20000)).unwrap();
    // the loss of the flow at a tau on the flow's grid, reached by GD in whole steps
    let tau = seen[seen.len() / 2].tau;
    let l_flow = seen[seen.len() / 2].loss;
    let gd_loss = |lr: f64| {
        let steps = (tau / lr).round() as usize;
        let lr = tau / steps as f64;
        let (mut net, task) = setup(Phi::Tanh);
        let mut rng = StdRng::seed_from_u64(5);
        let opts = TrainOptions {
            lr,
            tol: 0.0,
            max_steps: steps,
            ..TrainOptions::default()
        };
        train_full(&mut net, &task, &opts, &mut rng)
            .unwrap()
            .final_loss
    };
    let lr = tau / 40.0;
    let (e1, e2) = (
        (gd_loss(lr) - l_flow).abs(),
        (gd_loss(lr / 2.0) - l_flow).abs(),
    );
    assert!(
        e2 < 0.05 * l_flow,
        "GD at lr {} off by {e2} of {l_flow}",
        lr / 2.0
    );
    assert!(
        (1.6..2.4).contains(&(e1 / e2)),
        "ratio {} ({e1}, {e2})",
        e1 / e2
    );
    assert!(flow.converged);
}

#[test]
fn flow_failures_are_errors() {
    // the attempted-step cap: a clear error naming training.max_steps (exit 1)
    match run_flow(&flow_opts(1e-6, 3)) {
        Err(e @ Error::NoConvergence { .. }) => {
            assert_eq!(e.exit_code(), 1);
            assert!(e.to_string().contains("training.max_steps = 3"), "{e}");
        }
        other => panic!("expected NoConvergence, got {:?}", other.map(|r| r.0)),
    }
    // a random task (trial noise) is refused (bad input, exit 2)
    let (mut net, _) = setup(Phi::Tanh);
    let noisy = Task::WorkingMemory(WorkingMemory {
        sigma0: 0.1,
        ..WorkingMemory::short_test_task()
    });
    let mut rng = StdRng::seed_from_u64(5);
    let e = train_task(
        &mut net,
        &Trainable::FULL,
        &noisy,
        &flow_opts(1e-4, 100),
        &mut rng,
        |_, _, _| Ok(()),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("fresh"), "{e}");
    // an initial network whose loss is not finite (a linear network exploding along the
    // trial): an error at once, not a hang
    let mut rng = StdRng::seed_from_u64(11);
    let spec = NetworkSpec {
        n: 40,
        g: 1e8,
        dt: 0.2,
        phi: Phi::Identity,
        readout: Readout::Rate,
        m0: [[0.0; 2]; 2],
    };
    let mut net = Network::new(&spec, &mut rng);
    let task = Task::WorkingMemory(WorkingMemory::short_test_task());
    let r = train_task(
        &mut net,
        &Trainable::FULL,
        &task,
        &flow_opts(1e-4, 1000),
        &mut rng,
        |_, _, _| Ok(()),
    );
    assert!(
        matches!(r, Err(Error::Diverged { .. } | Error::Ode { .. })),
        "{r:?}"
    );
}

#[test]
fn huge_rate_is_reported_as_divergence() {
    // a linear network: a large step makes W unstable and the loss explode
    let (mut net, task) = setup(Phi::Identity);
    let opts = TrainOptions {
        lr: 1e3,
        max_steps: 50,
        ..TrainOptions::default()
    };
    let mut rng = StdRng::seed_from_u64(5);
    let err = train_full(&mut net, &task, &opts, &mut rng).unwrap_err();
    match err {
        Error::Diverged { step, hint, .. } => {
            assert!((1..50).contains(&step));
            assert!(hint.contains("smaller learning rate"));
        }
        e => panic!("expected Diverged, got {e}"),
    }
}

#[test]
fn a_capped_run_ends_where_a_longer_one_passes() {
    // the final point of a run capped at k steps is evaluated as step k of a longer run (SGD
    // draws its fresh trials there, node perturbation its probes): same losses, bit for bit
    let noisy = Task::WorkingMemory(WorkingMemory {
        sigma0: 0.1,
        ..WorkingMemory::short_test_task()
    });
    let np = LearningRule::NodePerturbation {
        sigma: 1e-3,
        samples: 2,
    };
    for (optimizer, rule, task) in [
        (Optimizer::Sgd, LearningRule::Bptt, noisy),
        (Optimizer::Gd, np, setup(Phi::Tanh).1),
    ] {
        let run = |max_steps: usize| {
            let (mut net, _) = setup(Phi::Tanh);
            let opts = TrainOptions {
                optimizer,
                rule,
                lr: 0.5,
                tol: 1e-12,
                max_steps,
                ..TrainOptions::default()
            };
            let mut rng = StdRng::seed_from_u64(8);
            let mut seen = Vec::new();
            let log = train_task(
                &mut net,
                &Trainable::FULL,
                &task,
                &opts,
                &mut rng,
                |s, l, _| {
                    seen.push((s, l));
                    Ok(())
                },
            )
            .unwrap();
            (log, seen)
        };
        let (short, seen) = run(4);
        let (long, _) = run(7);
        assert_eq!((short.steps, short.converged), (4, false));
        assert_eq!(short.losses, long.losses[..5].to_vec(), "{optimizer:?}");
        assert_eq!(short.final_loss, long.losses[4]);
        assert_eq!(short.gradient_evaluations, 5);
        let want: Vec<_> = (0..5).map(|s| (s, long.losses[s])).collect();
        assert_eq!(seen, want, "the observer sees every evaluated point");
    }
}
