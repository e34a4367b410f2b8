//! Rendering a phase portrait of a 2-D latent model: 40x40 arrows, nullclines (240-cell
//! marching squares + Newton), all fixed points, saddle manifolds and 20 trajectories forward
//! and backward, drawn to SVG and PNG and written with the JSON/CSV beside them.
//! Target (issue 5): <= 1 s per portrait.

use criterion::{criterion_group, criterion_main, Criterion};
use modeflow::num::planar::PlanarFlow;
use modeflow::plot::phase::{self, PhaseSpec};
use modeflow::plot::Output;
use nalgebra::{Matrix2, Vector2};

/// kappa' = -kappa + W tanh(kappa) + u e: a latent rate model with two stable states, a
/// saddle between them and the origin shifted by the input.
struct Latent {
    w: Matrix2<f64>,
    ue: Vector2<f64>,
}

impl PlanarFlow for Latent {
    fn flow(&self, k: &Vector2<f64>) -> Vector2<f64> {
        -k + self.w * k.map(f64::tanh) + self.ue
    }
    fn jacobian(&self, k: &Vector2<f64>) -> Matrix2<f64> {
        let d = k.map(|x| 1.0 - x.tanh().powi(2));
        -Matrix2::identity() + self.w * Matrix2::from_diagonal(&d)
    }
}

fn bench(c: &mut Criterion) {
    let sys = Latent {
        w: Matrix2::new(2.0, 0.4, -0.3, 1.6),
        ue: Vector2::new(0.05, 0.0),
    };
    let dir = std::env::temp_dir().join("modeflow-bench-phase");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Output::new(&dir, "latent");
    let spec = PhaseSpec::new([-3.0, -3.0], [3.0, 3.0]).labels("κ_a", "κ_b");
    let r = phase::render(&sys, &spec, "latent model", &out).unwrap();
    eprintln!(
        "fixed points: {}, nullcline branches: {}, trajectories: {}, manifolds: {}",
        r.data.fixed_points.len(),
        r.data.nullclines.len(),
        r.data.trajectories.len(),
        r.data.manifolds.len()
    );
    let mut g = c.benchmark_group("phase");
    g.sample_size(10);
    g.bench_function("portrait_40x40_20traj", |b| {
        b.iter(|| phase::render(&sys, &spec, "latent model", &out).unwrap())
    });
    g.bench_function("compute_only", |b| {
        b.iter(|| phase::compute(&sys, &spec).unwrap())
    });
    g.finish();
    eprintln!("portrait written to {}", dir.display());
}

criterion_group!(benches, bench);
criterion_main!(benches);
