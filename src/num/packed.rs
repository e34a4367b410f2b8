//! Products with a matrix that is reused many times: pack it once, multiply many times.
//!
//! The RNN's forward pass multiplies the same W (N x N) by a thin block of rates (N x B,
//! B ~ 32) at each of T ~ 100 Euler steps, and the backward pass does the same with W^T.
//! A general gemm (matrixmultiply, behind nalgebra) re-packs W into its panel layout at every
//! call; for B = 32 that copy is a sizeable share of the work. [`PackedMatrix`] keeps W in the
//! panel layout for the whole pass, so each product only streams the packed panels and the
//! (contiguous) columns of the right operand.
//!
//! Layout: rows in panels of [`MR`] = 8 (the last one zero-padded); panel p holds
//! A[8p .. 8p + 8, kk] for kk = 0..k contiguously (8 values per kk). The product walks
//! blocks of [`KC`] values of kk so that one panel block (8 x 256 f64 = 16 KiB) stays in L1
//! while it is reused for the column groups of an NC-column block of the right operand (which
//! stays in L2).
//!
//! Kernel: 8 x 4 register tile (eight 256-bit accumulators) with AVX2 + FMA, selected at run
//! time; a portable scalar kernel over the same layout otherwise. Results equal a naive triple
//! loop up to the summation order (relative differences at rounding level; see the tests).
//! Nothing is allocated in [`PackedMatrix::gemm`].

use nalgebra::DMatrix;

/// Rows per packed panel (the register tile height).
pub const MR: usize = 8;
/// Columns of the right operand per register tile.
pub const NR: usize = 4;
/// Block length in the inner dimension (one panel block = MR x KC f64 = 16 KiB).
pub const KC: usize = 256;
/// Columns of the right operand per outer block (a KC x NC block of B = 128 KiB stays in L2
/// while every panel of A passes over it).
pub const NC: usize = 64;

/// A matrix A (m x k) stored in the panel layout described in the module docs.
#[derive(Debug, Clone, Default)]
pub struct PackedMatrix {
    m: usize,
    k: usize,
    panels: Vec<f64>,
    simd: bool,
}

impl PackedMatrix {
    /// An empty packed matrix; [`PackedMatrix::pack`] fills it.
    pub fn new() -> Self {
        PackedMatrix {
            m: 0,
            k: 0,
            panels: Vec::new(),
            simd: simd_available(),
        }
    }

    /// Rows m of the packed matrix.
    pub fn nrows(&self) -> usize {
        self.m
    }

    /// Columns k of the packed matrix.
    pub fn ncols(&self) -> usize {
        self.k
    }

    fn resize(&mut self, m: usize, k: usize) {
        self.m = m;
        self.k = k;
        let len = m.div_ceil(MR) * MR * k;
        if self.panels.len() != len {
            self.panels.resize(len, 0.0);
        }
    }

    /// Pack A (reuses the buffer when the shape is unchanged).
    pub fn pack(&mut self, a: &DMatrix<f64>) {
        let (m, k) = a.shape();
        self.pack_slice(a.as_slice(), m, k);
    }

    /// Pack the column-major m x k matrix stored contiguously in `src`.
    ///
    /// # Panics
    /// If `src.len() != m * k` (a programming error).
    pub fn pack_slice(&mut self, src: &[f64], m: usize, k: usize) {
        assert_eq!(src.len(), m * k, "PackedMatrix::pack_slice: shape");
        self.resize(m, k);
        for p in 0..m.div_ceil(MR) {
            let r0 = p * MR;
            let rows = MR.min(m - r0);
            let panel = &mut self.panels[p * MR * k..(p + 1) * MR * k];
            for kk in 0..k {
                let dst = &mut panel[kk * MR..(kk + 1) * MR];
                dst[..rows].copy_from_slice(&src[kk * m + r0..kk * m + r0 + rows]);
                dst[rows..].fill(0.0);
            }
        }
    }

    /// Pack A^T (an a.ncols() x a.nrows() matrix) without forming the transpose.
    pub fn pack_transpose(&mut self, a: &DMatrix<f64>) {
        let (k, m) = a.shape();
        self.resize(m, k);
        let src = a.as_slice();
        for p in 0..m.div_ceil(MR) {
            let r0 = p * MR;
            let rows = MR.min(m - r0);
            let panel = &mut self.panels[p * MR * k..(p + 1) * MR * k];
            for r in 0..MR {
                if r < rows {
                    // A^T[r0 + r, kk] = A[kk, r0 + r]: column r0 + r of A, contiguous.
                    let col = &src[(r0 + r) * k..(r0 + r + 1) * k];
                    for (kk, &v) in col.iter().enumerate() {
                        panel[kk * MR + r] = v;
                    }
                } else {
                    for kk in 0..k {
                        panel[kk * MR + r] = 0.0;
                    }
                }
            }
        }
    }

    /// C = beta C + alpha A B for B (k x n) and C (m x n), both column-major and contiguous
    /// (leading dimensions k and m). `beta = 0` overwrites C (NaN in C does not propagate).
    ///
    /// # Panics
    /// If the slice lengths do not match the shapes (a programming error, not user input).
    pub fn gemm(&self, alpha: f64, b: &[f64], n: usize, beta: f64, c: &mut [f64]) {
        let (m, k) = (self.m, self.k);
        assert_eq!(b.len(), k * n, "PackedMatrix::gemm: B must be k x n");
        assert_eq!(c.len(), m * n, "PackedMatrix::gemm: C must be m x n");
        if beta == 0.0 {
            c.fill(0.0);
        } else if beta != 1.0 {
            c.iter_mut().for_each(|v| *v *= beta);
        }
        if k == 0 || m == 0 || n == 0 || alpha == 0.0 {
            return;
        }
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            let mut j0 = 0;
            while j0 < n {
                let j1 = (j0 + NC).min(n);
                for p in 0..m.div_ceil(MR) {
                    let panel = &self.panels[p * MR * k + k0 * MR..p * MR * k + (k0 + kc) * MR];
                    let r0 = p * MR;
                    let rows = MR.min(m - r0);
                    let mut j = j0;
                    while j + NR <= j1 {
                        let mut acc = [[0.0f64; MR]; NR];
                        self.tile(panel, b, k, k0, kc, j, &mut acc);
                        for (jj, col) in acc.iter().enumerate() {
                            let cc = &mut c[(j + jj) * m + r0..(j + jj) * m + r0 + rows];
                            for (cv, &av) in cc.iter_mut().zip(col) {
                                *cv += alpha * av;
                            }
                        }
                        j += NR;
                    }
                    // remaining columns one at a time
                    while j < j1 {
                        let bcol = &b[j * k + k0..j * k + k0 + kc];
                        let mut acc = [0.0f64; MR];
                        self.column(panel, bcol, &mut acc);
                        let cc = &mut c[j * m + r0..j * m + r0 + rows];
                        for (cv, &av) in cc.iter_mut().zip(&acc) {
                            *cv += alpha * av;
                        }
                        j += 1;
                    }
                }
                j0 = j1;
            }
            k0 += kc;
        }
    }

    /// One MR x NR tile: acc[jj][r] = sum_kk panel[kk][r] * B[k0 + kk, j + jj].
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn tile(
        &self,
        panel: &[f64],
        b: &[f64],
        k: usize,
        k0: usize,
        kc: usize,
        j: usize,
        acc: &mut [[f64; MR]; NR],
    ) {
        debug_assert!(panel.len() == kc * MR && b.len() >= (j + NR) * k);
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: `simd` is true only if AVX2 and FMA were detected at run time; the
            // slice bounds are checked by the debug assertion above and by the callers'
            // construction (panel = kc * MR values, B columns j..j+NR of length k).
            unsafe { tile_avx2(panel, b, k, k0, kc, j, acc) };
            return;
        }
        tile_scalar(panel, b, k, k0, kc, j, acc);
    }
}

impl PackedMatrix {
    /// One MR x 1 tile (matrix-vector products, leftover columns): acc[r] = sum_kk
    /// panel[kk][r] * bcol[kk].
    #[inline]
    fn column(&self, panel: &[f64], bcol: &[f64], acc: &mut [f64; MR]) {
        debug_assert!(panel.len() == bcol.len() * MR);
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: AVX2 + FMA detected at run time; panel holds MR values per entry of bcol.
            unsafe { column_avx2(panel, bcol, acc) };
            return;
        }
        for (kk, &bv) in bcol.iter().enumerate() {
            let a = &panel[kk * MR..(kk + 1) * MR];
            for r in 0..MR {
                acc[r] += a[r] * bv;
            }
        }
    }
}

/// `dst` = the transpose of the column-major `rows x cols` matrix in `src` (so `dst` is
/// `cols x rows`, column-major), in 8 x 8 blocks to keep both sides in cache.
///
/// # Panics
/// If the lengths do not match (a programming error).
pub fn transpose_into(src: &[f64], rows: usize, cols: usize, dst: &mut [f64]) {
    assert!(
        src.len() == rows * cols && dst.len() == rows * cols,
        "transpose_into: shape"
    );
    const BS: usize = 8;
    for c0 in (0..cols).step_by(BS) {
        let c1 = (c0 + BS).min(cols);
        for r0 in (0..rows).step_by(BS) {
            let r1 = (r0 + BS).min(rows);
            for c in c0..c1 {
                for r in r0..r1 {
                    dst[r * cols + c] = src[c * rows + r];
                }
            }
        }
    }
}

fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn tile_scalar(
    panel: &[f64],
    b: &[f64],
    k: usize,
    k0: usize,
    kc: usize,
    j: usize,
    acc: &mut [[f64; MR]; NR],
) {
    for (jj, col) in acc.iter_mut().enumerate() {
        let bcol = &b[(j + jj) * k + k0..(j + jj) * k + k0 + kc];
        for (kk, &bv) in bcol.iter().enumerate() {
            let a = &panel[kk * MR..(kk + 1) * MR];
            for r in 0..MR {
                col[r] += a[r] * bv;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(
    panel: &[f64],
    b: &[f64],
    k: usize,
    k0: usize,
    kc: usize,
    j: usize,
    acc: &mut [[f64; MR]; NR],
) {
    use std::arch::x86_64::*;
    let a = panel.as_ptr();
    let b0 = b.as_ptr().add(j * k + k0);
    let b1 = b0.add(k);
    let b2 = b1.add(k);
    let b3 = b2.add(k);
    let mut c00 = _mm256_setzero_pd();
    let mut c01 = _mm256_setzero_pd();
    let mut c10 = _mm256_setzero_pd();
    let mut c11 = _mm256_setzero_pd();
    let mut c20 = _mm256_setzero_pd();
    let mut c21 = _mm256_setzero_pd();
    let mut c30 = _mm256_setzero_pd();
    let mut c31 = _mm256_setzero_pd();
    for kk in 0..kc {
        let a0 = _mm256_loadu_pd(a.add(kk * MR));
        let a1 = _mm256_loadu_pd(a.add(kk * MR + 4));
        let x0 = _mm256_broadcast_sd(&*b0.add(kk));
        c00 = _mm256_fmadd_pd(a0, x0, c00);
        c01 = _mm256_fmadd_pd(a1, x0, c01);
        let x1 = _mm256_broadcast_sd(&*b1.add(kk));
        c10 = _mm256_fmadd_pd(a0, x1, c10);
        c11 = _mm256_fmadd_pd(a1, x1, c11);
        let x2 = _mm256_broadcast_sd(&*b2.add(kk));
        c20 = _mm256_fmadd_pd(a0, x2, c20);
        c21 = _mm256_fmadd_pd(a1, x2, c21);
        let x3 = _mm256_broadcast_sd(&*b3.add(kk));
        c30 = _mm256_fmadd_pd(a0, x3, c30);
        c31 = _mm256_fmadd_pd(a1, x3, c31);
    }
    _mm256_storeu_pd(acc[0].as_mut_ptr(), c00);
    _mm256_storeu_pd(acc[0].as_mut_ptr().add(4), c01);
    _mm256_storeu_pd(acc[1].as_mut_ptr(), c10);
    _mm256_storeu_pd(acc[1].as_mut_ptr().add(4), c11);
    _mm256_storeu_pd(acc[2].as_mut_ptr(), c20);
    _mm256_storeu_pd(acc[2].as_mut_ptr().add(4), c21);
    _mm256_storeu_pd(acc[3].as_mut_ptr(), c30);
    _mm256_storeu_pd(acc[3].as_mut_ptr().add(4), c31);
}

/// MR x 1 tile with the inner dimension unrolled by 4 (eight independent accumulators hide the
/// FMA latency), summed pairwise at the end.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn column_avx2(panel: &[f64], bcol: &[f64], acc: &mut [f64; MR]) {
    use std::arch::x86_64::*;
    let a = panel.as_ptr();
    let kc = bcol.len();
    let mut s = [_mm256_setzero_pd(); 8];
    let mut kk = 0;
    while kk + 4 <= kc {
        for u in 0..4 {
            let x = _mm256_broadcast_sd(bcol.get_unchecked(kk + u));
            s[2 * u] = _mm256_fmadd_pd(_mm256_loadu_pd(a.add((kk + u) * MR)), x, s[2 * u]);
            s[2 * u + 1] =
                _mm256_fmadd_pd(_mm256_loadu_pd(a.add((kk + u) * MR + 4)), x, s[2 * u + 1]);
        }
        kk += 4;
    }
    while kk < kc {
        let x = _mm256_broadcast_sd(bcol.get_unchecked(kk));
        s[0] = _mm256_fmadd_pd(_mm256_loadu_pd(a.add(kk * MR)), x, s[0]);
        s[1] = _mm256_fmadd_pd(_mm256_loadu_pd(a.add(kk * MR + 4)), x, s[1]);
        kk += 1;
    }
    let lo = _mm256_add_pd(_mm256_add_pd(s[0], s[2]), _mm256_add_pd(s[4], s[6]));
    let hi = _mm256_add_pd(_mm256_add_pd(s[1], s[3]), _mm256_add_pd(s[5], s[7]));
    let mut out = [0.0f64; MR];
    _mm256_storeu_pd(out.as_mut_ptr(), lo);
    _mm256_storeu_pd(out.as_mut_ptr().add(4), hi);
    for r in 0..MR {
        acc[r] += out[r];
    }
}

#[cfg(test)]
mod tests {
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
    fn check(m: usize, k: usize, n: usize, alpha: f64, beta: f64, transpose: bool, simd: bool) {
        let mut rng = StdRng::seed_from_u64((m * 1_000_003 + k * 1009 + n) as u64);
        let a = random(m, k, &mut rng);
        let b = random(k, n, &mut rng);
        let c0 = random(m, n, &mut rng);
        let mut p = PackedMatrix::new();
        p.simd &= simd;
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
        for i in 0..m {
            for j in 0..n {
                let err = (c[(i, j)] - reference[(i, j)]).abs();
                assert!(
                    err <= 1e-15 * k as f64 * (scale[(i, j)] + 1e-300) + 1e-300,
                    "m={m} k={k} n={n} ({i},{j}): {} vs {}",
                    c[(i, j)],
                    reference[(i, j)]
                );
            }
        }
    }

    #[test]
    fn crosses_the_k_block_and_odd_shapes() {
        for simd in [true, false] {
            check(37, 600, 9, 0.7, 1.0, false, simd);
            check(256, 256, 32, 0.2, 0.0, false, simd);
            check(19, 300, 5, -1.3, 0.5, true, simd);
            check(1024, 1030, 1, 1.0, 0.0, false, simd);
        }
    }

    #[test]
    fn transpose_into_is_the_transpose() {
        let mut rng = StdRng::seed_from_u64(3);
        let a = random(13, 21, &mut rng);
        let mut t = vec![0.0; 13 * 21];
        transpose_into(a.as_slice(), 13, 21, &mut t);
        assert_eq!(DMatrix::from_vec(21, 13, t), a.transpose());
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
        fn equals_naive_product(m in 1usize..30, k in 1usize..40, n in 1usize..14,
                                alpha in -2.0f64..2.0, beta_i in 0usize..3,
                                transpose: bool, simd: bool) {
            let beta = [0.0, 1.0, -0.5][beta_i];
            check(m, k, n, alpha, beta, transpose, simd);
        }
    }
}
