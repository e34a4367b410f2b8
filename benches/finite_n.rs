//! Claim I-14, performance: the moment-matched prediction of one seed (the network's pattern
//! draw replayed, the moments, the 2-D Euler/GD latent model of order 5 trained on A then B)
//! against training that seed's network (M-only erf network at g = 0, A then B, GD, the X-6
//! setting). Target: prediction <= 1% of training. N = 1024 (the network costs O(N^2) per
//! Euler step, the prediction O(N^2) once for the replayed W0 draw plus O(1) per step).
//!
//! Run: `cargo bench --bench finite_n -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, Criterion};
use modeflow::latent::finite_n::Order;
use modeflow::rnn::finite_n::run_finite_n;
use modeflow::rnn::latent_xval::{run_network, XvalSpec};

const N: usize = 1024;
const SEED: u64 = 1;

fn finite_n(c: &mut Criterion) {
    let spec = XvalSpec::standard();
    let mut g = c.benchmark_group("finite_n");
    g.sample_size(10);
    g.bench_function(
        "moment-matched prediction, order 5, one seed, N = 1024",
        |b| {
            b.iter(|| {
                run_finite_n(&spec, Order::Five, N, SEED)
                    .expect("the model learns")
                    .interference
            })
        },
    );
    g.bench_function("network training A then B, one seed, N = 1024", |b| {
        b.iter(|| {
            run_network(&spec, N, SEED)
                .expect("the network learns")
                .interference
        })
    });
    g.finish();
}

criterion_group!(benches, finite_n);
criterion_main!(benches);
