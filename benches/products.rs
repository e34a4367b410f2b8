//! The hand-written packed kernels of `num::packed` against three libraries, at the shapes the
//! RNN's forward and backward passes use (`rnn::bptt`), all single-threaded:
//!
//! - `step N`: C (N x B) = dt W H (+ C), W N x N, H N x B with B = 32: one Euler step of the
//!   forward pass (W^T in the backward pass is the same product). `packed` multiplies the W
//!   packed once per pass (the pack itself is the arm `pack W N`, paid once per T ~ 100 steps);
//!   the libraries read W as it is stored (column-major).
//! - `chunk N`: C (N x N) += dt L P^T, L and P N x 128 (`rnn::bptt::CHUNK_COLUMNS`): one dL/dW
//!   chunk product of the backward pass. Each arm copies L into a contiguous buffer first (BPTT
//!   keeps Lambda_k in a two-slot ring and gathers the chunk as it is produced) and reads P^T as
//!   a transposed (row-major) view of the column-major P, as BPTT holds phi(X) in the
//!   trajectory; `nalgebra` is what `rnn::bptt` runs. (The packed arm that lost this comparison,
//!   `PackedMatrix::gemm_nt` with both chunks packed, was removed with the decision.)
//!
//! - `eigenvalues N`: all eigenvalues of an N x N Jacobian, faer (`num::eigen`) against
//!   nalgebra's Schur.
//!
//! Arms: `packed` (`num::packed::PackedMatrix`, the detected kernel), `gemm` (the gemm crate,
//! `Parallelism::None`), `faer` (`faer::linalg::matmul::matmul`, `Par::Seq`), `nalgebra`
//! (`Matrix::gemm`, i.e. matrixmultiply's dgemm).
//!
//!     cargo bench --bench products -- --warm-up-time 1 --measurement-time 3
//!
//! Throughput is reported in FLOP/s (2 m n k per product). The decision this bench informs is
//! recorded in `bench/README.md` and the module docs of `num::packed`.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use modeflow::num::packed::PackedMatrix;
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, Dyn, MatrixView};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`) instead of wall time: the
/// machine this was written for runs several builds beside the benchmark, and the time a thread
/// waits for a core is not time its product took. (Caches and memory bandwidth stay shared, so
/// compare arms of the same run.)
struct ThreadCpu;

fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant of the platform.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

type Crit = Criterion<ThreadCpu>;

const BATCH: usize = 32;
const CHUNK: usize = modeflow::rnn::bptt::CHUNK_COLUMNS;
const DT: f64 = 0.1;

fn random(m: usize, n: usize, rng: &mut StdRng) -> DMatrix<f64> {
    DMatrix::from_fn(m, n, |_, _| rng.random_range(-1.0..1.0))
}

/// C = beta C + alpha A B with the gemm crate (column-major A, B and C given by their strides).
#[allow(clippy::too_many_arguments)]
fn gemm_crate(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f64],
    a: &[f64],
    (a_cs, a_rs): (isize, isize),
    b: &[f64],
    (b_cs, b_rs): (isize, isize),
    alpha: f64,
    accumulate: bool,
) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the assert above and the strides (checked by the callers against the shapes)
    // keep every access inside the slices; C does not alias A or B (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            m as isize,
            1,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 },
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Panic unless `got` equals `reference` to rounding level: |got - ref| <= 1e-15 k scale
/// entrywise, scale = max |entry of the product's terms| summed (k |alpha| max|A| max|B| + |C0|),
/// the worst-case bound of a length-k dot product in any summation order. Every arm is checked
/// once before it is timed, so a wrong call (strides, transposition) cannot be benchmarked.
fn verify(arm: &str, got: &[f64], reference: &DMatrix<f64>, k: usize, scale: f64) {
    let err = got
        .iter()
        .zip(reference.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        err <= 1e-15 * k as f64 * scale,
        "{arm}: max error {err:e} against the reference product"
    );
}

fn step(c: &mut Crit, n: usize) {
    let mut rng = StdRng::seed_from_u64(n as u64);
    let w = random(n, n, &mut rng);
    let h = random(n, BATCH, &mut rng);
    let mut out = random(n, BATCH, &mut rng);
    let mut wp = PackedMatrix::new();
    wp.pack(&w);
    {
        let reference = &out + &w * &h * DT;
        let scale = n as f64 * DT + 1.0;
        let mut o = out.clone();
        wp.gemm(DT, h.as_slice(), BATCH, 1.0, o.as_mut_slice());
        verify("packed", o.as_slice(), &reference, n, scale);
        let mut o = out.clone();
        let (wc, hc) = (n as isize, n as isize);
        gemm_crate(
            n,
            BATCH,
            n,
            o.as_mut_slice(),
            w.as_slice(),
            (wc, 1),
            h.as_slice(),
            (hc, 1),
            DT,
            true,
        );
        verify("gemm", o.as_slice(), &reference, n, scale);
        let mut o = out.clone();
        let dst = MatMut::from_column_major_slice_mut(o.as_mut_slice(), n, BATCH);
        let lhs = MatRef::from_column_major_slice(w.as_slice(), n, n);
        let rhs = MatRef::from_column_major_slice(h.as_slice(), n, BATCH);
        matmul(dst, Accum::Add, lhs, rhs, DT, Par::Seq);
        verify("faer", o.as_slice(), &reference, n, scale);
        let mut o = out.clone();
        o.gemm(DT, &w, &h, 1.0);
        verify("nalgebra", o.as_slice(), &reference, n, scale);
    }
    let mut g = c.benchmark_group(format!("step N={n} ({n}x{n}x{BATCH})"));
    g.throughput(Throughput::Elements((2 * n * n * BATCH) as u64));
    g.bench_function(
        BenchmarkId::new("packed", format!("{:?}", wp.kernel())),
        |bch| bch.iter(|| wp.gemm(DT, black_box(h.as_slice()), BATCH, 1.0, out.as_mut_slice())),
    );
    g.bench_function("gemm", |bch| {
        bch.iter(|| {
            gemm_crate(
                n,
                BATCH,
                n,
                out.as_mut_slice(),
                black_box(w.as_slice()),
                (n as isize, 1),
                h.as_slice(),
                (n as isize, 1),
                DT,
                true,
            )
        })
    });
    g.bench_function("faer", |bch| {
        bch.iter(|| {
            let dst = MatMut::from_column_major_slice_mut(out.as_mut_slice(), n, BATCH);
            let lhs = MatRef::from_column_major_slice(black_box(w.as_slice()), n, n);
            let rhs = MatRef::from_column_major_slice(h.as_slice(), n, BATCH);
            matmul(dst, Accum::Add, lhs, rhs, DT, Par::Seq)
        })
    });
    g.bench_function("nalgebra", |bch| {
        bch.iter(|| out.gemm(DT, black_box(&w), &h, 1.0))
    });
    g.finish();
    let mut g = c.benchmark_group(format!("pack W N={n}"));
    g.bench_function("packed", |bch| bch.iter(|| wp.pack(black_box(&w))));
    g.finish();
}

fn chunk(c: &mut Crit, n: usize) {
    let mut rng = StdRng::seed_from_u64(7 * n as u64);
    let l = random(n, CHUNK, &mut rng);
    let p = random(n, CHUNK, &mut rng);
    let mut grad = random(n, n, &mut rng);
    {
        let reference = &grad + &l * p.transpose() * DT;
        let scale = CHUNK as f64 * DT + 1.0;
        let mut o = grad.clone();
        let nc = n as isize;
        gemm_crate(
            n,
            n,
            CHUNK,
            o.as_mut_slice(),
            l.as_slice(),
            (nc, 1),
            p.as_slice(),
            (1, nc),
            DT,
            true,
        );
        verify("gemm", o.as_slice(), &reference, CHUNK, scale);
        let mut o = grad.clone();
        let dst = MatMut::from_column_major_slice_mut(o.as_mut_slice(), n, n);
        let lhs = MatRef::from_column_major_slice(l.as_slice(), n, CHUNK);
        let rhs = MatRef::from_column_major_slice(p.as_slice(), n, CHUNK);
        matmul(dst, Accum::Add, lhs, rhs.transpose(), DT, Par::Seq);
        verify("faer", o.as_slice(), &reference, CHUNK, scale);
        let mut o = grad.clone();
        let pt: MatrixView<'_, f64, Dyn, Dyn, Dyn, Dyn> =
            MatrixView::<f64, Dyn, Dyn, Dyn, Dyn>::from_slice_with_strides(
                p.as_slice(),
                CHUNK,
                n,
                n,
                1,
            );
        o.gemm(DT, &l, &pt, 1.0);
        verify("nalgebra", o.as_slice(), &reference, CHUNK, scale);
    }
    // BPTT keeps Lambda_k in a two-slot ring, so the chunk of Lambda is copied into a
    // contiguous buffer as it is produced (phi(X) is contiguous in the trajectory): every arm
    // includes that copy
    let mut lbuf = vec![0.0; n * CHUNK];
    let mut g = c.benchmark_group(format!("chunk N={n} ({n}x{n}x{CHUNK}, A B^T)"));
    g.throughput(Throughput::Elements((2 * n * n * CHUNK) as u64));
    g.bench_function("gemm", |bch| {
        bch.iter(|| {
            lbuf.copy_from_slice(black_box(l.as_slice()));
            // P^T[kk, j] = P[j, kk] = p[kk n + j]: column stride 1, row stride n
            gemm_crate(
                n,
                n,
                CHUNK,
                grad.as_mut_slice(),
                &lbuf,
                (n as isize, 1),
                black_box(p.as_slice()),
                (1, n as isize),
                DT,
                true,
            )
        })
    });
    g.bench_function("faer", |bch| {
        bch.iter(|| {
            lbuf.copy_from_slice(black_box(l.as_slice()));
            let dst = MatMut::from_column_major_slice_mut(grad.as_mut_slice(), n, n);
            let lhs = MatRef::from_column_major_slice(&lbuf, n, CHUNK);
            let rhs = MatRef::from_column_major_slice(black_box(p.as_slice()), n, CHUNK);
            matmul(dst, Accum::Add, lhs, rhs.transpose(), DT, Par::Seq)
        })
    });
    g.bench_function("nalgebra", |bch| {
        bch.iter(|| {
            let pt: MatrixView<'_, f64, Dyn, Dyn, Dyn, Dyn> =
                MatrixView::<f64, Dyn, Dyn, Dyn, Dyn>::from_slice_with_strides(
                    black_box(p.as_slice()),
                    CHUNK,
                    n,
                    n,
                    1,
                );
            lbuf.copy_from_slice(black_box(l.as_slice()));
            let lv = DMatrixView::from_slice(&lbuf, n, CHUNK);
            let mut gv = DMatrixViewMut::from_slice(grad.as_mut_slice(), n, n);
            gv.gemm(DT, &lv, &pt, 1.0)
        })
    });
    g.finish();
}

/// The spectrum of an N x N Jacobian: faer's `eigenvalues` (what `num::eigen` runs) against
/// nalgebra's capped Schur decomposition. Two Jacobians: a random one,
/// J = -I + W0 diag(phi'), W0 ~ N(0, g^2/N) with g = 0.8, and the -I + (low rank) form of a
/// trained g = 0 network, on which nalgebra's Schur (no exceptional shifts) stalls: there only
/// faer runs. (The crate's former EISPACK `hqr`, which lost this comparison, is in the git
/// history of this file and of `src/rnn/hqr.rs`.)
fn eigenvalues(c: &mut Crit, n: usize) {
    let mut rng = StdRng::seed_from_u64(11 * n as u64);
    let g = 0.8 / (n as f64).sqrt();
    let w0 = DMatrix::from_fn(n, n, |_, _| {
        g * rand_distr::Distribution::<f64>::sample(&rand_distr::StandardNormal, &mut rng)
    });
    let dphi = nalgebra::DVector::from_fn(n, |_, _| rng.random_range(0.2..1.0));
    let random_j = -DMatrix::identity(n, n) + &w0 * DMatrix::from_diagonal(&dphi);
    let u = DMatrix::from_fn(n, 2, |_, _| rng.random_range(-1.0..1.0));
    let v = DMatrix::from_fn(n, 2, |_, _| rng.random_range(-1.0..1.0) / n as f64);
    let low_rank_j = -DMatrix::identity(n, n) + &u * v.transpose();
    let schur = |j: &DMatrix<f64>| {
        nalgebra::Schur::try_new(j.clone(), 1e-14, 10_000)
            .expect("Schur converges")
            .complex_eigenvalues()
    };
    for (name, j, with_schur) in [
        ("random", &random_j, true),
        ("-I + low rank", &low_rank_j, false),
    ] {
        let ours = modeflow::num::eigen::eigenvalues(j).expect("faer converges");
        // the spectrum sums to the trace (rounding level of a backward-stable method:
        // 1e-12 max|J| n), and on the random J the top real part agrees with Schur's
        let tol = 1e-12 * j.amax() * n as f64;
        let tr: f64 = ours.iter().map(|e| e.0).sum();
        assert!((tr - j.trace()).abs() < tol, "{name}: trace");
        let mut grp = c.benchmark_group(format!("eigenvalues N={n} ({name})"));
        grp.bench_function("faer", |b| {
            b.iter(|| modeflow::num::eigen::eigenvalues(black_box(j)))
        });
        if with_schur {
            let top0 = ours.iter().map(|e| e.0).fold(f64::NEG_INFINITY, f64::max);
            let top1 = schur(j)
                .iter()
                .map(|e| e.re)
                .fold(f64::NEG_INFINITY, f64::max);
            assert!((top0 - top1).abs() < 1e-9, "{name}: top {top0} vs {top1}");
            grp.bench_function("nalgebra Schur", |b| b.iter(|| schur(black_box(j))));
        }
        grp.finish();
    }
}

fn products(c: &mut Crit) {
    for n in [256, 1024] {
        step(c, n);
        chunk(c, n);
    }
    eigenvalues(c, 256);
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = products
}
criterion_main!(benches);
