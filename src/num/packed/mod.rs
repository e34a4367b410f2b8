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
//! Kernels, selected at run time ([`Kernel::detect`]): a 24 x 8 register tile over three panels
//! (24 512-bit accumulators) with AVX-512F; an 8 x 4 tile (eight 256-bit accumulators) with
//! AVX2 + FMA; a portable scalar kernel over the same layout otherwise. The right operand is
//! column-major ([`PackedMatrix::gemm`]). Results equal a naive triple loop up to the
//! summation order (relative differences at rounding level; see the tests). Nothing is
//! allocated in [`PackedMatrix::gemm`].
//!
//! **Kept on evidence, for the step products only.** `cargo bench --bench products` runs the
//! same products through the gemm crate, faer and nalgebra (matrixmultiply), single-threaded,
//! timed in thread CPU time (`bench/README.md`, 2026-12-05, AMD EPYC with AVX2 + FMA, no
//! AVX-512, two runs): for the per-step products W H and W^T Lambda (N x N times N x 32, W
//! packed once per pass) this kernel took 96-112 us at N = 256 (37-44 GFLOP/s) against
//! 108-131 us for the best library there (the gemm crate: 1.12-1.16x), and 1.93-2.17 ms at
//! N = 1024 against 2.73-2.89 ms for the best library there (nalgebra: 1.33-1.42x; the gemm
//! crate 2.6-2.9x slower); no single library comes within 1.2x at both sizes. For the dL/dW
//! chunk products (N x 128 times 128 x N added into N x N) the libraries were faster than
//! packing both chunks and multiplying here (nalgebra 1.43x at N = 256, 1.21x at N = 1024), so
//! `rnn::bptt` now hands those to nalgebra and this module no longer has the packed right
//! operand they used (`PackedMatrix::gemm_nt`, removed with this decision; it and its bench
//! arm are in the git history of this file and of `benches/products.rs`).

use nalgebra::DMatrix;

mod kernels;
use kernels::*;

/// Rows per packed panel (the register tile height).
pub const MR: usize = 8;
/// Columns of the right operand per register tile.
pub const NR: usize = 4;
/// Block length in the inner dimension (one panel block = MR x KC f64 = 16 KiB).
pub const KC: usize = 256;
/// Panels per AVX-512 tile (24 rows) and right-operand columns per AVX-512 tile.
pub const P512: usize = 3;
pub const NR512: usize = 8;
/// Inner block of the AVX-512 path: 3 panels x 128 x 8 f64 = 24 KiB of A plus 8 columns of
/// 128 f64 of B (8 KiB) fit the 32 KiB L1 together.
pub const KC512: usize = 128;
/// Columns of the right operand per outer block (a KC x NC block of B = 128 KiB stays in L2
/// while every panel of A passes over it).
pub const NC: usize = 64;
/// Row split points of [`PackedMatrix::gemm_rows`] are multiples of this (three panels, the
/// AVX-512 tile height), so a split product groups its panels as the whole product does.
pub const SPLIT_ROWS: usize = P512 * MR;

/// A matrix A (m x k) stored in the panel layout described in the module docs.
#[derive(Debug, Clone, Default)]
pub struct PackedMatrix {
    m: usize,
    k: usize,
    panels: Vec<f64>,
    kernel: Kernel,
}

/// The register kernel used by [`PackedMatrix::gemm`], chosen once at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Portable loops over the same layout.
    #[default]
    Scalar,
    /// 8 x 4 tiles of 256-bit FMAs (AVX2 + FMA).
    Avx2,
    /// (8 P) x 8 tiles of 512-bit FMAs over P = 3 panels at once (AVX-512F): 24 accumulators,
    /// 3 + 8 loads per 24 FMAs; leftover columns go to the AVX2 tiles.
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU supports; [`Kernel::Scalar`] under
    /// `MODEFLOW_KERNELS=portable` ([`crate::num::simd`]).
    pub fn detect() -> Kernel {
        if crate::num::simd::portable() {
            return Kernel::Scalar;
        }
        Kernel::supported()
    }

    /// The fastest kernel this CPU supports, whatever the policy.
    pub fn supported() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            if avx2 && std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if avx2 {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }
}

impl PackedMatrix {
    /// An empty packed matrix; [`PackedMatrix::pack`] fills it.
    pub fn new() -> Self {
        PackedMatrix {
            m: 0,
            k: 0,
            panels: Vec::new(),
            kernel: Kernel::detect(),
        }
    }

    /// The kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Use `kernel` instead of the detected one if the CPU supports it (for tests and
    /// benchmarks); returns the kernel now in use.
    pub fn set_kernel(&mut self, kernel: Kernel) -> Kernel {
        let best = Kernel::supported();
        let ok = match kernel {
            Kernel::Scalar => true,
            Kernel::Avx2 => best != Kernel::Scalar,
            Kernel::Avx512 => best == Kernel::Avx512,
        };
        if ok {
            self.kernel = kernel;
        }
        self.kernel
    }

    /// Rows m of the packed matrix.
    pub fn nrows(&self) -> usize {
        self.m
    }

    /// Columns k of the packed matrix.
    pub fn ncols(&self) -> usize {
        self.k
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
        self.reshape(m, k);
        // blocks of BK columns: the block is read column by column (sequential streams) and
        // each panel receives one contiguous run of BK * MR values, instead of every panel
        // striding through the whole of A
        const BK: usize = 32;
        for k0 in (0..k).step_by(BK) {
            let k1 = (k0 + BK).min(k);
            self.pack_columns(&src[k0 * m..k1 * m], k0);
        }
    }

    /// Give the packed matrix the shape m x k (contents unspecified until packed; the buffer
    /// is reused when the size is unchanged). With [`PackedMatrix::pack_columns`] a matrix can
    /// be packed block by block while each block is still in cache.
    pub fn reshape(&mut self, m: usize, k: usize) {
        self.m = m;
        self.k = k;
        let len = m.div_ceil(MR) * MR * k;
        if self.panels.len() != len {
            self.panels.resize(len, 0.0);
        }
    }

    /// Pack columns k0 .. k0 + c of A from `src`, the column-major m x c block holding them.
    ///
    /// # Panics
    /// If `src.len()` is not a multiple of m or the columns exceed k (a programming error).
    pub fn pack_columns(&mut self, src: &[f64], k0: usize) {
        let (m, k) = (self.m, self.k);
        assert!(
            m > 0 && src.len().is_multiple_of(m) && k0 + src.len() / m <= k,
            "PackedMatrix::pack_columns: shape"
        );
        // column by column: the source (often just computed, or streamed from memory) is read
        // sequentially, the writes go to the panels at stride MR k
        let full = m / MR;
        for (c, col) in src.chunks_exact(m).enumerate() {
            let base = (k0 + c) * MR;
            for (p, v) in col[..full * MR].chunks_exact(MR).enumerate() {
                let at = p * MR * k + base;
                self.panels[at..at + MR].copy_from_slice(v);
            }
            if full * MR < m {
                let at = full * MR * k + base;
                let rows = m - full * MR;
                let dst = &mut self.panels[at..at + MR];
                dst[..rows].copy_from_slice(&col[full * MR..]);
                dst[rows..].fill(0.0);
            }
        }
    }

    /// Pack A^T (an a.ncols() x a.nrows() matrix) without forming the transpose.
    pub fn pack_transpose(&mut self, a: &DMatrix<f64>) {
        let (k, m) = a.shape();
        self.reshape(m, k);
        let src = a.as_slice();
        if k == 0 {
            return;
        }
        for (p, panel) in self.panels.chunks_exact_mut(MR * k).enumerate() {
            // A^T[r0 + r, kk] = A[kk, r0 + r]: columns r0 .. r0 + 8 of A, each contiguous, are
            // read side by side and written as the panel's rows of 8 (one cache line each)
            let r0 = p * MR;
            let rows = MR.min(m - r0);
            if rows == MR {
                let cols: [&[f64]; MR] = std::array::from_fn(|r| &src[(r0 + r) * k..][..k]);
                for (kk, dst) in panel.chunks_exact_mut(MR).enumerate() {
                    for (d, col) in dst.iter_mut().zip(&cols) {
                        *d = col[kk];
                    }
                }
            } else {
                for (kk, dst) in panel.chunks_exact_mut(MR).enumerate() {
                    for (r, d) in dst.iter_mut().enumerate() {
                        *d = if r < rows {
                            src[(r0 + r) * k + kk]
                        } else {
                            0.0
                        };
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
        assert_eq!(b.len(), self.k * n, "PackedMatrix::gemm: B must be k x n");
        let rhs = Rhs {
            data: b,
            n,
            k: self.k,
        };
        self.product(alpha, rhs, beta, c, 0..self.m.div_ceil(MR));
    }

    /// Rows `rows` of C = beta C + alpha A B, for a product split by rows over threads:
    /// `c` holds only those rows, column-major with leading dimension `rows.len()` (for n = 1
    /// simply C\[rows\]). The split points must be multiples of [`SPLIT_ROWS`] (`rows.start`
    /// always; `rows.end` too unless it is m). Then every entry is computed by the same kernel
    /// over the same inner blocks in the same order as by [`PackedMatrix::gemm`] (the row
    /// panels are independent, and the AVX-512 path groups the same three panels), so the rows
    /// of a split product are bit for bit those of the whole product.
    ///
    /// # Panics
    /// If the rows are not such a range or the slice lengths do not match (programming errors).
    pub fn gemm_rows(
        &self,
        rows: std::ops::Range<usize>,
        alpha: f64,
        b: &[f64],
        n: usize,
        beta: f64,
        c: &mut [f64],
    ) {
        assert!(
            rows.start.is_multiple_of(SPLIT_ROWS)
                && rows.start <= rows.end
                && rows.end <= self.m
                && (rows.end == self.m || rows.end.is_multiple_of(SPLIT_ROWS)),
            "PackedMatrix::gemm_rows: rows {rows:?} of {} not split at multiples of {SPLIT_ROWS}",
            self.m
        );
        assert_eq!(
            b.len(),
            self.k * n,
            "PackedMatrix::gemm_rows: B must be k x n"
        );
        let rhs = Rhs {
            data: b,
            n,
            k: self.k,
        };
        self.product(alpha, rhs, beta, c, rows.start / MR..rows.end.div_ceil(MR));
    }

    /// C = beta C + alpha A B for the row panels `panels` of A; `c` holds the rows of those
    /// panels (column-major, leading dimension their row count).
    fn product(
        &self,
        alpha: f64,
        rhs: Rhs<'_>,
        beta: f64,
        c: &mut [f64],
        panels: std::ops::Range<usize>,
    ) {
        let (k, n) = (self.k, rhs.n);
        let out = Out {
            r_begin: panels.start * MR,
            ldc: (panels.end * MR).min(self.m) - panels.start * MR,
        };
        let m = out.ldc;
        assert_eq!(c.len(), m * n, "PackedMatrix: C must be m x n");
        if beta == 0.0 {
            c.fill(0.0);
        } else if beta != 1.0 {
            c.iter_mut().for_each(|v| *v *= beta);
        }
        if k == 0 || m == 0 || n == 0 || alpha == 0.0 {
            return;
        }
        let kc_max = if self.kernel == Kernel::Avx512 {
            KC512
        } else {
            KC
        };
        let n_tiles = n;
        let np = panels.end;
        let mut k0 = 0;
        while k0 < k {
            let kc = kc_max.min(k - k0);
            let mut j0 = 0;
            while j0 < n_tiles {
                let j1 = (j0 + NC).min(n_tiles);
                let mut p = panels.start;
                while p < np {
                    #[cfg(target_arch = "x86_64")]
                    if self.kernel == Kernel::Avx512 {
                        let g = (np - p).min(P512);
                        let mut j = j0;
                        while j + NR512 <= j1 {
                            self.tile512(g, p, rhs, k0, kc, j, alpha, out, c);
                            j += NR512;
                        }
                        for q in p..p + g {
                            self.panel_columns(q, rhs, k0, kc, j, j1, alpha, out, c);
                        }
                        p += g;
                        continue;
                    }
                    self.panel_columns(p, rhs, k0, kc, j0, j1, alpha, out, c);
                    p += 1;
                }
                j0 = j1;
            }
            k0 += kc;
        }
    }

    /// Columns j..j1 of C for panel `p` over the inner block k0..k0+kc: NR-column tiles, then
    /// single columns (column-major right operand only).
    #[allow(clippy::too_many_arguments)]
    fn panel_columns(
        &self,
        p: usize,
        rhs: Rhs<'_>,
        k0: usize,
        kc: usize,
        mut j: usize,
        j1: usize,
        alpha: f64,
        out: Out,
        c: &mut [f64],
    ) {
        let (m, k) = (self.m, self.k);
        let panel = &self.panels[p * MR * k + k0 * MR..p * MR * k + (k0 + kc) * MR];
        let rows = MR.min(m - p * MR);
        // row p MR of A is row r0 of the block `c` (leading dimension m)
        let (m, r0) = (out.ldc, p * MR - out.r_begin);
        while j + NR <= j1 {
            let mut acc = [[0.0f64; MR]; NR];
            let (off, cs, ks) = rhs.block(k0, kc, j, NR);
            let bt = &rhs.data[off..];
            #[cfg(target_arch = "x86_64")]
            if self.kernel != Kernel::Scalar {
                // SAFETY: the AVX2 and AVX-512 kernels are only selected if AVX2 and FMA were
                // detected at run time; `panel` holds kc * MR values and `Rhs::block` checked
                // that every B[k0 + kk, j + jj] (kk < kc, jj < NR) lies inside `bt`.
                unsafe { tile_avx2(panel, bt.as_ptr(), cs, ks, kc, &mut acc) };
            } else {
                tile_scalar(panel, bt, cs, ks, kc, &mut acc);
            }
            #[cfg(not(target_arch = "x86_64"))]
            tile_scalar(panel, bt, cs, ks, kc, &mut acc);
            for (jj, col) in acc.iter().enumerate().take(rhs.n.saturating_sub(j)) {
                let cc = &mut c[(j + jj) * m + r0..(j + jj) * m + r0 + rows];
                for (cv, &av) in cc.iter_mut().zip(col) {
                    *cv += alpha * av;
                }
            }
            j += NR;
        }
        while j < j1 {
            let bcol = &rhs.data[j * k + k0..j * k + k0 + kc];
            let mut acc = [0.0f64; MR];
            self.column(panel, bcol, &mut acc);
            let cc = &mut c[j * m + r0..j * m + r0 + rows];
            for (cv, &av) in cc.iter_mut().zip(&acc) {
                *cv += alpha * av;
            }
            j += 1;
        }
    }

    /// C[rows of panels p..p+g, j..j+NR512] += alpha A B over the inner block k0..k0+kc with
    /// the AVX-512 tile (g = 1, 2 or 3 panels).
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    fn tile512(
        &self,
        g: usize,
        p: usize,
        rhs: Rhs<'_>,
        k0: usize,
        kc: usize,
        j: usize,
        alpha: f64,
        out: Out,
        c: &mut [f64],
    ) {
        let (m, k) = (self.m, self.k);
        assert!(
            (1..=P512).contains(&g) && (p + g) * MR * k <= self.panels.len() && k0 + kc <= k,
            "tile512: panels"
        );
        let (off, cs, ks) = rhs.block(k0, kc, j, NR512);
        let rows = (g * MR).min(m - p * MR);
        // row p MR of A is row r0 of the block `c` (leading dimension m)
        let (m, r0) = (out.ldc, p * MR - out.r_begin);
        let cols = NR512.min(rhs.n.saturating_sub(j));
        let mut acc = [0.0f64; P512 * MR * NR512];
        let a = self.panels[p * MR * k + k0 * MR..].as_ptr();
        let bp = rhs.data[off..].as_ptr();
        // SAFETY: `Avx512` is only selected when AVX-512F, AVX2 and FMA were detected at run
        // time; the assert above bounds the reads of A (panels p..p+g over k0..k0+kc),
        // `Rhs::block` those of B, and `acc` holds P512 * MR * NR512 values.
        unsafe {
            match g {
                3 => tile_avx512::<3>(a, MR * k, bp, cs, ks, kc, acc.as_mut_ptr()),
                2 => tile_avx512::<2>(a, MR * k, bp, cs, ks, kc, acc.as_mut_ptr()),
                _ => tile_avx512::<1>(a, MR * k, bp, cs, ks, kc, acc.as_mut_ptr()),
            }
        }
        for jj in 0..cols {
            let cc = &mut c[(j + jj) * m + r0..(j + jj) * m + r0 + rows];
            let col = &acc[jj * g * MR..jj * g * MR + rows];
            for (cv, &av) in cc.iter_mut().zip(col) {
                *cv += alpha * av;
            }
        }
    }

    /// One MR x 1 tile (matrix-vector products, leftover columns): acc[r] = sum_kk
    /// panel[kk][r] * bcol[kk].
    #[inline]
    fn column(&self, panel: &[f64], bcol: &[f64], acc: &mut [f64; MR]) {
        #[cfg(target_arch = "x86_64")]
        if self.kernel != Kernel::Scalar {
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

/// Where the rows of a product go: row r of A is row r - r_begin of the output block, whose
/// leading dimension is `ldc` (the whole C: r_begin = 0, ldc = m).
#[derive(Debug, Clone, Copy)]
struct Out {
    r_begin: usize,
    ldc: usize,
}

/// The right operand B (k x n) of a product, column-major: B[kk, j] = data[j k + kk].
#[derive(Debug, Clone, Copy)]
struct Rhs<'a> {
    data: &'a [f64],
    n: usize,
    k: usize,
}

impl Rhs<'_> {
    /// For the block B[k0 .. k0 + kc, j .. j + w]: the
    /// offset of B[k0, j] in `data` and the strides (column, inner) that address
    /// B[k0 + kk, j + jj] = data[off + jj cs + kk ks] inside it.
    ///
    /// # Panics
    /// If the block is not inside `data` (this is what makes the unchecked kernels sound).
    fn block(&self, k0: usize, kc: usize, j: usize, w: usize) -> (usize, usize, usize) {
        let (off, cs, ks) = (j * self.k + k0, self.k, 1);
        assert!(
            kc > 0 && off + (w - 1) * cs + (kc - 1) * ks < self.data.len(),
            "Rhs::block: out of bounds"
        );
        (off, cs, ks)
    }
}

#[cfg(test)]
mod tests;
