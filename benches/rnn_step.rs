//! One training step (forward + BPTT) of the N-neuron network: N = 256, T = 100 Euler steps,
//! batch 32, all of W trained; throughput in FLOP/s counted from the gemms
//! (`rnn::bptt::gemm_flops`: W phi(X), W^T Lambda and dL/dW, 2 N^2 B T each). Plus the
//! scaling in N over 64..1024; then the same step with the batch split into shards run on all
//! cores (`rnn::bptt::Sharded`, what `modeflow train` uses).
//!
//! cargo bench --bench rnn_step -- --warm-up-time 1 --measurement-time 3

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use modeflow::rnn::bptt::{gemm_flops, Sharded};
use modeflow::rnn::task::WorkingMemory;
use modeflow::rnn::{LossKind, Network, NetworkSpec, Phi, Readout, Task, Trainable, Workspace};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn setup(n: usize, batch: usize) -> (Network, modeflow::rnn::Trials) {
    let mut rng = StdRng::seed_from_u64(1);
    let net = Network::new(
        &NetworkSpec {
            n,
            g: 0.8,
            dt: 0.2,
            phi: Phi::Tanh,
            readout: Readout::Rate,
            m0: [[0.0; 2]; 2],
        },
        &mut rng,
    );
    // T_in + T_d = 20 at dt = 0.2: T = 100 Euler steps
    let task = Task::WorkingMemory(WorkingMemory {
        pattern: 0,
        u_p: 1.0,
        t_in: 2.0,
        u_s: 0.0,
        t_d: 18.0,
        t_loss: 2.0,
        zhat: 0.5,
        loss: LossKind::Aligned,
        sigma0: 0.1,
    });
    let trials = task.trials(n, net.inputs(), net.outputs(), net.dt, batch, &mut rng);
    assert_eq!(trials.steps, 100);
    (net, trials)
}

fn step(c: &mut Criterion) {
    let mut group = c.benchmark_group("rnn_train_step");
    group.sample_size(10);
    for n in [64usize, 128, 256, 512, 1024] {
        let (net, trials) = setup(n, 32);
        let mut ws = Workspace::new(&net, trials.steps, trials.batch);
        let mut grad = vec![0.0; net.num_params(&Trainable::FULL)];
        group.throughput(Throughput::Elements(
            gemm_flops(n, trials.steps, trials.batch, true) as u64,
        ));
        group.bench_with_input(BenchmarkId::new("N", n), &n, |b, _| {
            b.iter(|| {
                ws.loss_and_grad(&net, &trials, &Trainable::FULL, &mut grad)
                    .unwrap()
            })
        });
    }
    group.finish();
    // the same step with the batch split into shards run in parallel (rayon, all cores; the
    // shards depend on the batch only: 2 of 16 trials at B = 32)
    let mut group = c.benchmark_group("rnn_train_step_sharded");
    group.sample_size(10);
    for n in [64usize, 128, 256, 512, 1024] {
        let (net, trials) = setup(n, 32);
        let mut ws = Sharded::new(&net, trials.steps, trials.batch);
        let mut grad = vec![0.0; net.num_params(&Trainable::FULL)];
        group.throughput(Throughput::Elements(
            gemm_flops(n, trials.steps, trials.batch, true) as u64,
        ));
        group.bench_with_input(BenchmarkId::new("N", n), &n, |b, _| {
            b.iter(|| {
                ws.loss_and_grad(&net, &trials, &Trainable::FULL, &mut grad)
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
