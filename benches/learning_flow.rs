//! One nonlinear learning-flow trajectory of the latent 2x2 model (docs/theory.md I.2): task A from
//! M0, then task B, each integrated with adjoint gradients until the loss is below tolerance.
//! Target: <= 20 ms (issue 2). Model: `models/latent-rotation.toml` (trial rtol 1e-6, learning
//! rtol 1e-4; ~480 adjoint gradients, ~89 M instructions per trajectory under callgrind).
//!
//! Run: `cargo bench --bench learning_flow -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, Criterion};
use modeflow::interference::latent_model::LatentSpec;
use modeflow::interference::nonlinear::{learn, Task};

fn learning_flow(c: &mut Criterion) {
    let text = include_str!("../models/latent-rotation.toml");
    let model = modeflow::model::parse("models/latent-rotation.toml", text).expect("valid model");
    let spec = LatentSpec::from_model(&model).expect("valid latent model");
    let seq = spec.sequential();
    let m0 = spec.m0();
    c.bench_function("latent learning flow A then B (rotation model)", |b| {
        b.iter(|| {
            let a = learn(&seq.trials, &m0, Task::A, &seq.learning_a).expect("A learns");
            let bb = learn(&seq.trials, &a.m_end, Task::B, &seq.learning_b).expect("B learns");
            assert!(a.converged && bb.converged);
            bb.loss_end
        })
    });
}

criterion_group!(benches, learning_flow);
criterion_main!(benches);
