//! Benchmarks of the implicit-bias module, side by side with `bench/numpy_bias.py` (same loops):
//! one GD step of a two-layer ReLU net (d = 20, k = 1000, n = 200, square loss) and the
//! 1e6-step B-6 run end to end (SVM + GD + recording).
//!
//! cargo bench --bench bias -- --warm-up-time 1 --measurement-time 3
//! python3 bench/numpy_bias.py

use criterion::{criterion_group, criterion_main, Criterion};
use modeflow::bias::balance::random_two_layer;
use modeflow::bias::margin::{soudry, soudry_set};
use modeflow::bias::nets::{Activation, Loss, TwoLayerGrad, TwoLayerWork};
use rand::{rngs::StdRng, SeedableRng};

fn gd_step(c: &mut Criterion) {
    let (d, k, n) = (20, 1000, 200);
    let mut rng = StdRng::seed_from_u64(1);
    let (mut net, x, y) = random_two_layer(&mut rng, d, k, n, Activation::Relu, Loss::Square, 0.1);
    let mut work = TwoLayerWork::new(n, k);
    let mut g = TwoLayerGrad::zeros(d, k);
    c.bench_function("two-layer GD step d=20 k=1000 n=200", |b| {
        b.iter(|| {
            net.grad_into(&x, &y, Loss::Square, &mut work, &mut g)
                .expect("shapes agree");
            net.step(&g, 1e-3, 0.0);
        })
    });
}

fn soudry_run(c: &mut Criterion) {
    let (x, y) = soudry_set();
    let mut group = c.benchmark_group("B-6");
    group.sample_size(10);
    group.bench_function("Soudry 2-D set, 1e6 GD steps end to end", |b| {
        b.iter(|| soudry(&x, &y, 1.0, 1_000_000).expect("separable"))
    });
    group.finish();
}

criterion_group!(benches, gd_step, soudry_run);
criterion_main!(benches);
