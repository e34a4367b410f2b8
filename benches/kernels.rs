//! Benchmarks of the kernel predictions (THEORY I-11, I-12).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use modeflow::interference::kernels::{bessel_i0_scaled, bulk_kernel, theta_new, InputSchedule};

fn bench_kernels(c: &mut Criterion) {
    let short = InputSchedule::memory(2.0, 1.0, 2.0);
    let long = InputSchedule {
        t_in: 2.0,
        u_p: 1.0,
        t_d: 60.0,
        u_s: 0.3,
    };
    c.bench_function("theta_new g=0.8 T_d=2", |b| {
        b.iter(|| theta_new(black_box(0.8), black_box(&short)))
    });
    c.bench_function("theta_new g=0.8 T_d=60 u_s=0.3", |b| {
        b.iter(|| theta_new(black_box(0.8), black_box(&long)))
    });
    c.bench_function("bessel_i0_scaled x=10 and x=80", |b| {
        b.iter(|| bessel_i0_scaled(black_box(10.0)) + bessel_i0_scaled(black_box(80.0)))
    });
    c.bench_function("bulk_kernel", |b| {
        b.iter(|| bulk_kernel(black_box(0.8), black_box(3.0), black_box(4.0)))
    });
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);
