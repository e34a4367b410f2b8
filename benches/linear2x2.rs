//! Benchmarks of the linear static 2x2 model: the crossover r*(eps) of the I-8 criterion
//! (target <= 10 us per call), one task-B solve on the reference protocol, and the 100x100
//! (r, eps) interference grid from the full ODE (target <= 5 s on 2 cores).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use modeflow::interference::linear::{closed, flow, race};

fn r_star(c: &mut Criterion) {
    c.bench_function("linear2x2/r_star(eps=0.05)", |b| {
        b.iter(|| closed::r_star(black_box(0.05)).unwrap())
    });
    c.bench_function("linear2x2/r_star(eps=0.25, golden bracket)", |b| {
        b.iter(|| closed::r_star(black_box(0.25)).unwrap())
    });
}

fn task_b(c: &mut Criterion) {
    let opts = flow::ode_options();
    c.bench_function("linear2x2/task_b(r=0.3, eps=0.05)", |b| {
        b.iter(|| race::reference_task_b(black_box(0.3), 0.05, 1e-6, &opts).unwrap())
    });
}

fn grid(c: &mut Criterion) {
    let (r, eps) = race::default_axes(100);
    let mut g = c.benchmark_group("linear2x2/grid");
    g.sample_size(10);
    g.bench_function("interference_grid 100x100", |b| {
        b.iter(|| race::interference_grid(&r, &eps, 1e-6).unwrap())
    });
    g.finish();
}

criterion_group!(benches, r_star, task_b, grid);
criterion_main!(benches);
