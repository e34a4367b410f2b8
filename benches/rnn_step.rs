//! One training step (forward + BPTT) of the N-neuron network: N = 256, T = 100 Euler steps,
//! batch 32, all of W trained; throughput in FLOP/s counted from the gemms
//! (`rnn::bptt::gemm_flops`: W phi(X), W^T Lambda and dL/dW, 2 N^2 B T each). Plus the
//! scaling in N over 64..1024; then the same step with the batch split into shards run on all
//! cores (`rnn::bptt::Sharded`, what `modeflow train` uses).
//!
//! Group `rnn_rule_step` (issue 13): the same step at N = 256 under each learning rule of
//! `rnn::rules` (e-prop, random e-prop, truncated BPTT h = 5; one core), and one forward pass
//! alone, which is the cost of one node-perturbation sample (a step with K samples costs K + 1
//! forward passes).
//!
//! Group `rnn_hessian_product` (issue 12, I-18): the exact Hessian-vector product of
//! `rnn::hvp` (forward-over-reverse) against one gradient and against the central difference of
//! two gradients that it replaced in `rnn::modified_flow`, at N = 64 and 256 (T = 100, B = 32,
//! one core), all of W and M only.
//!
//! cargo bench --bench rnn_step -- --warm-up-time 1 --measurement-time 3
//! cargo bench --bench rnn_step -- rnn_rule_step --warm-up-time 1 --measurement-time 3
//! Group `rnn_train_driver` (issue 14): five GD steps through `train_task` (the run on the
//! iteration driver `num::iterate`) against the same passes and updates as a bare loop, N = 256.
//!
//! cargo bench --bench rnn_step -- rnn_hessian_product --warm-up-time 1 --measurement-time 3
//! cargo bench --bench rnn_step -- rnn_train_driver --warm-up-time 1 --measurement-time 3

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use modeflow::rnn::bptt::{gemm_flops, Credit, Sharded};
use modeflow::rnn::hvp::Hvp;
use modeflow::rnn::rules::feedback_matrix;
use modeflow::rnn::task::WorkingMemory;
use modeflow::rnn::train::{train_task, Optimizer, TrainOptions};
use modeflow::rnn::{
    LossKind, Network, NetworkSpec, Phi, Readout, Task, Trainable, Trials, Workspace,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn setup(n: usize, batch: usize) -> (Network, Trials) {
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
    let task = wm_task();
    let trials = task.trials(n, net.inputs(), net.outputs(), net.dt, batch, &mut rng);
    assert_eq!(trials.steps, 100);
    (net, trials)
}

/// The working-memory task of the step benchmarks.
fn wm_task() -> Task {
    // T_in + T_d = 20 at dt = 0.2: T = 100 Euler steps
    Task::WorkingMemory(WorkingMemory {
        pattern: 0,
        u_p: 1.0,
        t_in: 2.0,
        u_s: 0.0,
        t_d: 18.0,
        t_loss: 2.0,
        zhat: 0.5,
        loss: LossKind::Aligned,
        sigma0: 0.1,
    })
}

/// One criterion group over N = 64..1024: `new` builds the stepper for a network and its
/// trials, `step` runs one forward + BPTT (all of W) and returns the loss.
fn bench_group<S>(
    c: &mut Criterion,
    name: &str,
    new: impl Fn(&Network, &Trials) -> S,
    step: impl Fn(&mut S, &Network, &Trials, &mut [f64]) -> f64,
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for n in [64usize, 128, 256, 512, 1024] {
        let (net, trials) = setup(n, 32);
        let mut stepper = new(&net, &trials);
        let mut grad = vec![0.0; net.num_params(&Trainable::FULL)];
        group.throughput(Throughput::Elements(
            gemm_flops(n, trials.steps, trials.batch, true) as u64,
        ));
        group.bench_with_input(BenchmarkId::new("N", n), &n, |b, _| {
            b.iter(|| step(&mut stepper, &net, &trials, &mut grad))
        });
    }
    group.finish();
}

fn step(c: &mut Criterion) {
    // one core
    bench_group(
        c,
        "rnn_train_step",
        |net, tr| Workspace::new(net, tr.steps, tr.batch),
        |ws, net, tr, g| ws.loss_and_grad(net, tr, &Trainable::FULL, g).unwrap(),
    );
    // the batch split into shards run in parallel (rayon, all cores; the shards depend on the
    // batch only: 2 of 16 trials at B = 32), as `modeflow train` runs it
    bench_group(
        c,
        "rnn_train_step_sharded",
        |net, tr| Sharded::new(net, tr.steps, tr.batch),
        |ws, net, tr, g| ws.loss_and_grad(net, tr, &Trainable::FULL, g).unwrap(),
    );
}

/// One step under each learning rule at N = 256, T = 100, B = 32, all of W, one core.
fn rule_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("rnn_rule_step");
    group.sample_size(10);
    let (net, trials) = setup(256, 32);
    let mut ws = Workspace::new(&net, trials.steps, trials.batch);
    let mut grad = vec![0.0; net.num_params(&Trainable::FULL)];
    let fb = feedback_matrix(&net.w_out, 0.5, &mut StdRng::seed_from_u64(2));
    let arms: [(&str, Credit<'_>); 4] = [
        ("bptt", Credit::Exact),
        ("eprop", Credit::Eprop { feedback: None }),
        (
            "random_eprop",
            Credit::Eprop {
                feedback: Some(&fb),
            },
        ),
        ("tbptt_h5", Credit::Truncated { h: 5 }),
    ];
    for (name, credit) in arms {
        group.bench_function(name, |b| {
            b.iter(|| {
                ws.loss_and_grad_with(&net, &trials, &Trainable::FULL, credit, &mut grad)
                    .unwrap()
            })
        });
    }
    // one node-perturbation sample: a forward pass and the loss
    group.bench_function("forward_only", |b| {
        b.iter(|| ws.loss_only(&net, &trials).unwrap())
    });
    group.finish();
}

/// H v (exact), one gradient, and the central difference of two gradients along v/|v|
/// (step 1e-5, as `rnn::modified_flow::FD_STEP`), one core, v = the gradient (the modified
/// flow's product).
fn hessian_product(c: &mut Criterion) {
    let mut group = c.benchmark_group("rnn_hessian_product");
    group.sample_size(10);
    for (t, tname) in [(Trainable::FULL, "full"), (Trainable::LATENT, "latent")] {
        for n in [64usize, 256] {
            let (net, trials) = setup(n, 32);
            let len = net.num_params(&t);
            let mut ws = Workspace::new(&net, trials.steps, trials.batch);
            let mut grad = vec![0.0; len];
            ws.loss_and_grad(&net, &trials, &t, &mut grad).unwrap();
            let v = grad.clone();
            let id = format!("{tname}/N={n}");
            group.bench_function(format!("gradient/{id}"), |b| {
                b.iter(|| ws.loss_and_grad(&net, &trials, &t, &mut grad).unwrap())
            });
            let mut hp = Hvp::new(&net, trials.steps, trials.batch);
            let mut out = vec![0.0; len];
            group.bench_function(format!("exact/{id}"), |b| {
                b.iter(|| hp.product(&net, &trials, &t, &v, None, &mut out).unwrap())
            });
            let theta = net.params(&t).as_slice().to_vec();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let (mut work, mut shifted) = (net.clone(), vec![0.0; len]);
            let (mut gp, mut gm) = (vec![0.0; len], vec![0.0; len]);
            let h = 1e-5;
            group.bench_function(format!("central_difference/{id}"), |b| {
                b.iter(|| {
                    for (sign, g) in [(1.0, &mut gp), (-1.0, &mut gm)] {
                        for ((s, th), x) in shifted.iter_mut().zip(&theta).zip(&v) {
                            *s = th + sign * h * x / norm;
                        }
                        work.set_params(&t, &shifted);
                        ws.loss_and_grad(&work, &trials, &t, g).unwrap();
                    }
                    for ((o, p), m) in out.iter_mut().zip(&gp).zip(&gm) {
                        *o = norm * (p - m) / (2.0 * h);
                    }
                })
            });
        }
    }
    group.finish();
}

/// The training driver (issue 14): five GD steps through `train_task` (trials drawn, shards
/// set up, six forward + BPTT passes: five steps and the final point, the run on
/// `num::iterate`) against the same work written as a bare loop, N = 256, B = 32, all of W.
fn train_driver(c: &mut Criterion) {
    let mut group = c.benchmark_group("rnn_train_driver");
    group.sample_size(10);
    let (net, _) = setup(256, 32);
    let task = wm_task();
    let opts = TrainOptions {
        optimizer: Optimizer::Gd,
        lr: 1e-3,
        tol: 1e-12,
        max_steps: 5,
        batch: 32,
        ..TrainOptions::default()
    };
    group.bench_function("train_task/5 GD steps", |b| {
        b.iter(|| {
            let mut work = net.clone();
            let mut rng = StdRng::seed_from_u64(3);
            let log = train_task(
                &mut work,
                &Trainable::FULL,
                &task,
                &opts,
                &mut rng,
                |_, _, _| Ok(()),
            )
            .unwrap();
            log.final_loss
        })
    });
    group.bench_function("bare loop/5 GD steps", |b| {
        b.iter(|| {
            let mut work = net.clone();
            let mut rng = StdRng::seed_from_u64(3);
            let (n, k, r, dt) = (work.n, work.inputs(), work.outputs(), work.dt);
            let trials = task.trials(n, k, r, dt, opts.batch, &mut rng);
            let mut ws = Sharded::new(&work, trials.steps, trials.batch);
            let mut p = work.params(&Trainable::FULL);
            let mut grad = vec![0.0; p.len()];
            let mut loss = 0.0;
            for step in 0..=opts.max_steps {
                loss = ws
                    .loss_and_grad(&work, &trials, &Trainable::FULL, &mut grad)
                    .unwrap();
                if step == opts.max_steps {
                    break;
                }
                for (pi, gi) in p.iter_mut().zip(&grad) {
                    *pi -= opts.lr * gi;
                }
                work.set_params(&Trainable::FULL, p.as_slice());
            }
            loss
        })
    });
    group.finish();
}

criterion_group!(benches, step, rule_step, hessian_product, train_driver);
criterion_main!(benches);
