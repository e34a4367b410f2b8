//! Unit tests of `num::packed`.

use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random(m: usize, n: usize, rng: &mut StdRng) -> DMatrix<f64> {
    DMatrix::from_fn(m, n, |_, _| rng.random_range(-1.0..1.0))
}

/// max |C - C_ref| / (|alpha| sum_kk |A||B| + |beta C0|): the rounding-level bound of a
/// dot product of length k is ~k eps, so 1e-13 leaves room for k <= ~500 only in the
/// worst case; the typical error is far smaller and the bound uses the absolute sums.
fn check(m: usize, k: usize, n: usize, alpha: f64, beta: f64, transpose: bool, kernel: Kernel) {
    let mut rng = StdRng::seed_from_u64((m * 1_000_003 + k * 1009 + n) as u64);
    let a = random(m, k, &mut rng);
    let b = random(k, n, &mut rng);
    let c0 = random(m, n, &mut rng);
    let mut p = PackedMatrix::new();
    p.set_kernel(kernel);
    if transpose {
        p.pack_transpose(&a.transpose());
    } else {
        p.pack(&a);
    }
    assert_eq!((p.nrows(), p.ncols()), (m, k));
    let mut c = c0.clone();
    p.gemm(alpha, b.as_slice(), n, beta, c.as_mut_slice());
    let reference = &c0 * beta + &a * &b * alpha;
    let scale = a.abs() * b.abs() * alpha.abs() + c0.abs() * beta.abs();
    assert_close(&c, &reference, &scale, k, "gemm");
}

/// |C - C_ref| <= 1e-15 k (|alpha| sum_kk |A||B| + |beta C0|) entrywise (see `check`).
fn assert_close(
    c: &DMatrix<f64>,
    reference: &DMatrix<f64>,
    scale: &DMatrix<f64>,
    k: usize,
    what: &str,
) {
    let (m, n) = c.shape();
    for i in 0..m {
        for j in 0..n {
            let err = (c[(i, j)] - reference[(i, j)]).abs();
            assert!(
                err <= 1e-15 * k as f64 * (scale[(i, j)] + 1e-300) + 1e-300,
                "{what} m={m} k={k} n={n} ({i},{j}): {} vs {}",
                c[(i, j)],
                reference[(i, j)]
            );
        }
    }
}

#[test]
fn crosses_the_k_block_and_odd_shapes() {
    for kernel in [Kernel::Avx512, Kernel::Avx2, Kernel::Scalar] {
        check(37, 600, 9, 0.7, 1.0, false, kernel);
        check(256, 256, 32, 0.2, 0.0, false, kernel);
        check(19, 300, 5, -1.3, 0.5, true, kernel);
        check(1024, 1030, 1, 1.0, 0.0, false, kernel);
        check(100, 300, 21, 1.1, -0.5, true, kernel);
    }
}

#[test]
fn packing_by_column_blocks_equals_packing_at_once() {
    let mut rng = StdRng::seed_from_u64(5);
    let a = random(21, 50, &mut rng);
    let (mut whole, mut blocks) = (PackedMatrix::new(), PackedMatrix::new());
    whole.pack(&a);
    blocks.reshape(21, 50);
    for k0 in (0..50).step_by(7) {
        let k1 = (k0 + 7).min(50);
        blocks.pack_columns(&a.as_slice()[k0 * 21..k1 * 21], k0);
    }
    assert_eq!(whole.panels, blocks.panels);
}

#[test]
fn packing_the_transpose_equals_packing_the_transposed_matrix() {
    let mut rng = StdRng::seed_from_u64(6);
    for (m, k) in [(21, 50), (200, 200), (24, 3), (8, 1), (203, 77)] {
        let a = random(k, m, &mut rng);
        let (mut direct, mut explicit) = (PackedMatrix::new(), PackedMatrix::new());
        direct.pack_transpose(&a);
        explicit.pack(&a.transpose());
        assert_eq!((direct.nrows(), direct.ncols()), (m, k));
        assert_eq!(direct.panels, explicit.panels, "m={m} k={k}");
    }
}

/// The rows of a product split at multiples of SPLIT_ROWS (what `rnn::bptt` runs on two
/// threads) are bit for bit those of the whole product: every kernel, m not a multiple of the
/// panel height, one and three right-hand columns, overwrite and accumulate, an inner
/// dimension crossing the k block.
#[test]
fn rows_of_a_split_product_equal_the_whole_product_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(7);
    for kernel in [Kernel::Avx512, Kernel::Avx2, Kernel::Scalar] {
        for (m, k) in [(203, 200), (50, 300), (97, 31)] {
            let a = random(m, k, &mut rng);
            let mut p = PackedMatrix::new();
            p.set_kernel(kernel);
            p.pack(&a);
            for n in [1, 3, 9] {
                let b = random(k, n, &mut rng);
                let c0 = random(m, n, &mut rng);
                for (alpha, beta) in [(0.2, 0.0), (0.2, 1.0), (-1.3, -0.5)] {
                    let mut whole = c0.clone();
                    p.gemm(alpha, b.as_slice(), n, beta, whole.as_mut_slice());
                    let cuts = [0, SPLIT_ROWS, (m / 2 / SPLIT_ROWS) * SPLIT_ROWS, m];
                    for w in cuts.windows(2) {
                        let rows = w[0]..w[1].max(w[0]);
                        let mut part = c0.rows(rows.start, rows.len()).into_owned();
                        p.gemm_rows(
                            rows.clone(),
                            alpha,
                            b.as_slice(),
                            n,
                            beta,
                            part.as_mut_slice(),
                        );
                        let expect = whole.rows(rows.start, rows.len());
                        for (x, y) in part.iter().zip(expect.iter()) {
                            assert_eq!(
                                x.to_bits(),
                                y.to_bits(),
                                "{kernel:?} m={m} k={k} n={n} rows {rows:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "not split at multiples")]
fn rows_not_at_a_split_point_are_refused() {
    let mut p = PackedMatrix::new();
    p.pack(&DMatrix::from_element(40, 4, 1.0));
    let mut c = [0.0; 30];
    p.gemm_rows(10..40, 1.0, &[1.0; 4], 1, 0.0, &mut c);
}

#[test]
fn beta_zero_overwrites_nan() {
    let a = DMatrix::from_element(3, 2, 1.0);
    let b = [1.0, 2.0];
    let mut c = [f64::NAN; 3];
    let mut p = PackedMatrix::new();
    p.pack(&a);
    p.gemm(1.0, &b, 1, 0.0, &mut c);
    assert_eq!(c, [3.0; 3]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn equals_naive_product(m in 1usize..60, k in 1usize..300, n in 1usize..30,
                            alpha in -2.0f64..2.0, beta_i in 0usize..3,
                            transpose: bool, kernel_i in 0usize..3) {
        let kernel = [Kernel::Avx512, Kernel::Avx2, Kernel::Scalar][kernel_i];
        let beta = [0.0, 1.0, -0.5][beta_i];
        check(m, k, n, alpha, beta, transpose, kernel);
    }
}
