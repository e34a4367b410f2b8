//! Benchmarks of the linear static 2x2 model: the crossover r*(eps) of the I-8 criterion
//! (target <= 10 us per call), one task-B solve on the reference protocol (with each Runge–Kutta
//! pair), `predict` of models/linear-rotation.toml, the 100x100 (r, eps) interference grid from
//! the full ODE (target <= 5 s on 2 cores), and issue 17's race grid: the sweep
//! bench/sweep-race-100.toml in process beside the task-B-only grid on the same axes.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use modeflow::interference::linear::{closed, flow, race};
use modeflow::num::ode::{Method, OdeOptions};

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
    for method in [Method::Dp45, Method::Dop853] {
        let o = OdeOptions { method, ..opts };
        c.bench_function(
            &format!("linear2x2/task_b(r=0.3, eps=0.05) {method:?}"),
            |b| b.iter(|| race::reference_task_b(black_box(0.3), 0.05, 1e-6, &o).unwrap()),
        );
    }
}

fn predict(c: &mut Criterion) {
    let m = modeflow::model::load(std::path::Path::new("models/linear-rotation.toml")).unwrap();
    c.bench_function("linear2x2/predict(linear-rotation.toml)", |b| {
        b.iter(|| modeflow::run::predict(black_box(&m)).unwrap())
    });
}

fn race_grid(c: &mut Criterion) {
    // The axes of bench/sweep-race-100.toml.
    let r = race::linspace(0.15, 0.65, 100);
    let eps = race::logspace(0.01, 0.1, 100);
    let file = modeflow::model::load(std::path::Path::new("bench/sweep-race-100.toml")).unwrap();
    let spec = modeflow::sweep::parse(&file).unwrap();
    let mut g = c.benchmark_group("linear2x2/race100");
    g.sample_size(10);
    g.bench_function("task B only (interference_grid)", |b| {
        b.iter(|| race::interference_grid(&r, &eps, 1e-6).unwrap())
    });
    g.bench_function("sweep, four outputs", |b| {
        b.iter(|| modeflow::sweep::run(&spec, modeflow::sweep::Shard::ALL))
    });
    g.finish();
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

criterion_group!(benches, r_star, task_b, predict, race_grid, grid);
criterion_main!(benches);
