//! Property tests of the N-neuron network: the hand-written BPTT gradient equals central
//! finite differences (relative error < 1e-6) for random small networks, tasks, trainable sets,
//! both losses and all phi.

use modeflow::rnn::bptt::{shard_count, Sharded};
use modeflow::rnn::task::{Channels, FlipFlop, StaticTask, WorkingMemory};
use modeflow::rnn::{
    LossKind, Network, NetworkSpec, Phi, Readout, Recurrent, Task, Trainable, Workspace,
};
use proptest::prelude::*;
use rand::SeedableRng;

fn phi_strategy() -> impl Strategy<Value = Phi> {
    prop_oneof![Just(Phi::Tanh), Just(Phi::Erf), Just(Phi::Identity)]
}

fn task_strategy() -> impl Strategy<Value = Task> {
    let wm = (
        0usize..2,
        0.5f64..1.5,
        prop_oneof![Just(0.0), 0.05f64..0.4],
        0.6f64..2.0,
        prop_oneof![Just(0.0), Just(0.4), Just(1.0)],
        0.2f64..0.8,
        prop_oneof![Just(LossKind::Own), Just(LossKind::Aligned)],
        prop_oneof![Just(0.0), Just(0.3)],
    )
        .prop_map(|(pattern, u_p, u_s, t_d, t_loss, zhat, loss, sigma0)| {
            Task::WorkingMemory(WorkingMemory {
                pattern,
                u_p,
                t_in: 1.0,
                u_s,
                t_d,
                t_loss,
                zhat,
                loss,
                sigma0,
            })
        });
    let st = (0.3f64..1.5, 1.0f64..3.0, 0.3f64..1.5).prop_map(|(u, t_max, zhat)| {
        Task::Static(StaticTask {
            pattern: 0,
            u,
            t_max,
            zhat,
        })
    });
    let ff = (1.5f64..3.0).prop_map(|t_max| {
        Task::FlipFlop(FlipFlop {
            channels: Channels::Both,
            t_max,
            rate: 1.5,
            t_pulse: 0.4,
            sigma0: 0.1,
        })
    });
    prop_oneof![wm, st, ff]
}

#[allow(clippy::too_many_arguments)]
fn relative_gradient_error(
    n: usize,
    g: f64,
    phi: Phi,
    readout: Readout,
    trainable: Trainable,
    task: Task,
    batch: usize,
    m0: [[f64; 2]; 2],
    seed: u64,
) -> f64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let spec = NetworkSpec {
        n,
        g,
        dt: 0.2,
        phi,
        readout,
        m0,
    };
    let mut net = Network::new(&spec, &mut rng);
    let trials = task.trials(n, net.inputs(), net.outputs(), spec.dt, batch, &mut rng);
    let mut ws = Workspace::new(&net, trials.steps, trials.batch);
    let p0 = net.params(&trainable);
    let mut grad = vec![0.0; p0.len()];
    ws.loss_and_grad(&net, &trials, &trainable, &mut grad)
        .unwrap();
    let h = 1e-5;
    let mut err2 = 0.0;
    let mut norm2 = 0.0;
    let mut p = p0.clone();
    for i in 0..p0.len() {
        p[i] = p0[i] + h;
        net.set_params(&trainable, p.as_slice());
        let lp = ws.loss_only(&net, &trials).unwrap();
        p[i] = p0[i] - h;
        net.set_params(&trainable, p.as_slice());
        let lm = ws.loss_only(&net, &trials).unwrap();
        p[i] = p0[i];
        let fd = (lp - lm) / (2.0 * h);
        err2 += (fd - grad[i]).powi(2);
        norm2 += grad[i].powi(2);
    }
    err2.sqrt() / norm2.sqrt().max(1e-12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// BPTT = central finite differences, |g_fd - g| / |g| < 1e-6. Central differences with
    /// h = 1e-5 have truncation error ~h^2 |L'''| ~ 1e-10 and rounding ~1e-16 L / h ~ 1e-11 (relative
    /// to gradients of order L), far below the bound.
    #[test]
    fn bptt_matches_finite_differences(
        n in 8usize..20,
        g in 0.0f64..1.5,
        phi in phi_strategy(),
        state_readout in any::<bool>(),
        full in any::<bool>(),
        input in any::<bool>(),
        readout_trained in any::<bool>(),
        task in task_strategy(),
        batch in 1usize..4,
        m in proptest::array::uniform4(-1.0f64..2.0),
        seed in 0u64..1000,
    ) {
        let trainable = Trainable {
            recurrent: if full { Recurrent::Full } else { Recurrent::Latent },
            input,
            readout: readout_trained,
        };
        let readout = if state_readout { Readout::State } else { Readout::Rate };
        let err = relative_gradient_error(
            n, g, phi, readout, trainable, task, batch, [[m[0], m[1]], [m[2], m[3]]], seed,
        );
        prop_assert!(err < 1e-6, "relative gradient error {err:e}");
    }
}

/// Loss and gradient of one unsplit workspace, and of [`Sharded`] run in a rayon pool of
/// 1 and of 2 threads.
#[allow(clippy::type_complexity)]
fn sharded_and_whole(
    n: usize,
    phi: Phi,
    trainable: Trainable,
    task: Task,
    batch: usize,
    seed: u64,
) -> ((f64, Vec<f64>), Vec<(f64, Vec<f64>)>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let spec = NetworkSpec {
        n,
        g: 0.8,
        dt: 0.2,
        phi,
        readout: Readout::Rate,
        m0: [[0.5, 0.0], [0.0, 0.2]],
    };
    let net = Network::new(&spec, &mut rng);
    let trials = task.trials(n, net.inputs(), net.outputs(), spec.dt, batch, &mut rng);
    let len = net.num_params(&trainable);
    let mut ws = Workspace::new(&net, trials.steps, trials.batch);
    let mut g = vec![0.0; len];
    let l = ws.loss_and_grad(&net, &trials, &trainable, &mut g).unwrap();
    let lo = ws.loss_only(&net, &trials).unwrap();
    assert_eq!(l, lo, "loss_only and loss_and_grad disagree");
    let sharded = [1usize, 2]
        .iter()
        .map(|&threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut sh = Sharded::new(&net, trials.steps, trials.batch);
                assert_eq!(sh.shards(), shard_count(batch));
                let mut gs = vec![f64::NAN; len];
                let ls = sh
                    .loss_and_grad(&net, &trials, &trainable, &mut gs)
                    .unwrap();
                assert_eq!(sh.loss_only(&net, &trials).unwrap(), ls);
                // the end states of all trials, gathered from the shards in batch order
                let (xs, xw) = (sh.end_state(), ws.end_state());
                let scale = xw.amax().max(1e-300);
                assert!((&xs - xw).amax() <= 1e-13 * scale, "end states differ");
                (ls, gs)
            })
        })
        .collect();
    ((l, g), sharded)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// The batch split into shards (run in parallel) gives the loss and gradient of the
    /// unsplit batch up to the order of the sums over trials (relative 1e-12: a few hundred
    /// additions of terms of one sign or the other, each rounded at 1.1e-16), and bit-for-bit
    /// the same result on 1 and on 2 threads.
    #[test]
    fn sharded_batch_equals_whole_batch(
        n in 8usize..24,
        phi in phi_strategy(),
        full in any::<bool>(),
        input in any::<bool>(),
        readout_trained in any::<bool>(),
        task in task_strategy(),
        batch in 1usize..70,
        seed in 0u64..1000,
    ) {
        let trainable = Trainable {
            recurrent: if full { Recurrent::Full } else { Recurrent::Latent },
            input,
            readout: readout_trained,
        };
        let ((l, g), sharded) = sharded_and_whole(n, phi, trainable, task, batch, seed);
        let gnorm = g.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
        for (ls, gs) in &sharded {
            prop_assert!((ls - l).abs() <= 1e-12 * l.abs().max(1e-300), "loss {ls} vs {l}");
            let d = g.iter().zip(gs).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
            prop_assert!(d <= 1e-12 * gnorm, "gradient differs by {d:e} (|g| = {gnorm:e})");
        }
        prop_assert_eq!(&sharded[0].0.to_bits(), &sharded[1].0.to_bits());
        prop_assert!(sharded[0].1.iter().zip(&sharded[1].1).all(|(a, b)| a.to_bits() == b.to_bits()));
        if shard_count(batch) == 1 {
            // unsplit: the very same computation
            prop_assert_eq!(sharded[0].0.to_bits(), l.to_bits());
        }
    }
}

/// dL/dW is accumulated chunk by chunk (`rnn::bptt::CHUNK_COLUMNS` columns of steps x trials
/// per nalgebra gemm): a trial of ~110 steps with 3 trials spans three chunks, the last one
/// partial, and N = 4 exercises nalgebra's small-dimension path (dimensions <= 5). The full-W
/// gradient still equals central finite differences (same bound as above).
#[test]
fn full_w_gradient_across_dl_dw_chunks() {
    for n in [4usize, 7] {
        let task = Task::WorkingMemory(WorkingMemory {
            pattern: 0,
            u_p: 1.0,
            t_in: 1.0,
            u_s: 0.2,
            t_d: 20.0,
            t_loss: 1.0,
            zhat: 0.5,
            loss: LossKind::Aligned,
            sigma0: 0.1,
        });
        let trainable = Trainable {
            recurrent: Recurrent::Full,
            input: true,
            readout: false,
        };
        let err = relative_gradient_error(
            n,
            0.8,
            Phi::Tanh,
            Readout::Rate,
            trainable,
            task,
            3,
            [[0.5, 0.1], [-0.2, 0.3]],
            17 + n as u64,
        );
        assert!(err < 1e-6, "N = {n}: relative error {err:e}");
    }
}
