//! The register-tile kernels of the packed product (portable, AVX2 + FMA, AVX-512F) and the
//! AVX2 matrix-vector column; every `unsafe fn` states its `# Safety` contract.

use super::*;

/// One MR x NR tile, portable: acc[jj][r] += sum_kk panel[kk MR + r] b[jj cs + kk ks].
pub(super) fn tile_scalar(
    panel: &[f64],
    b: &[f64],
    cs: usize,
    ks: usize,
    kc: usize,
    acc: &mut [[f64; MR]; NR],
) {
    for (jj, col) in acc.iter_mut().enumerate() {
        for kk in 0..kc {
            let bv = b[jj * cs + kk * ks];
            let a = &panel[kk * MR..(kk + 1) * MR];
            for r in 0..MR {
                col[r] += a[r] * bv;
            }
        }
    }
}

/// One MR x NR tile with eight 256-bit accumulators: acc[jj][r] = sum_kk panel[kk MR + r]
/// b[jj cs + kk ks].
///
/// # Safety
/// The CPU supports AVX2 and FMA; `panel` holds at least `kc * MR` values; for every
/// kk < kc and jj < NR, `b + jj cs + kk ks` points to a readable f64 (what `Rhs::block`
/// asserts).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tile_avx2(
    panel: &[f64],
    b: *const f64,
    cs: usize,
    ks: usize,
    kc: usize,
    acc: &mut [[f64; MR]; NR],
) {
    use std::arch::x86_64::*;
    assert!(panel.len() >= kc * MR, "tile_avx2: panel length");
    let a = panel.as_ptr();
    // SAFETY: the reads of A stay inside `panel` (asserted), those of B inside the block the
    // caller vouches for; the stores go to `acc` (NR rows of MR values).
    unsafe {
        let (b0, b1, b2, b3) = (b, b.add(cs), b.add(2 * cs), b.add(3 * cs));
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
            let x0 = _mm256_broadcast_sd(&*b0.add(kk * ks));
            c00 = _mm256_fmadd_pd(a0, x0, c00);
            c01 = _mm256_fmadd_pd(a1, x0, c01);
            let x1 = _mm256_broadcast_sd(&*b1.add(kk * ks));
            c10 = _mm256_fmadd_pd(a0, x1, c10);
            c11 = _mm256_fmadd_pd(a1, x1, c11);
            let x2 = _mm256_broadcast_sd(&*b2.add(kk * ks));
            c20 = _mm256_fmadd_pd(a0, x2, c20);
            c21 = _mm256_fmadd_pd(a1, x2, c21);
            let x3 = _mm256_broadcast_sd(&*b3.add(kk * ks));
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
}

/// (8 P) x 8 tile with 512-bit FMAs: out[jj 8P + r] = sum_kk A[r, kk] b[jj cs + kk ks] for the
/// P consecutive panels starting at `a` (panel stride `pstride`); `out` is written, not
/// accumulated. With P = 3: 24 accumulators, 3 + 8 loads per 24 FMAs.
///
/// # Safety
/// The CPU supports AVX-512F; for q < P and kk < kc, `a + q pstride + kk MR .. + MR` are
/// readable f64; for kk < kc and jj < NR512, `b + jj cs + kk ks` is a readable f64; `out`
/// points to NR512 * P * MR writable f64 (what `PackedMatrix::tile512` asserts).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tile_avx512<const P: usize>(
    a: *const f64,
    pstride: usize,
    b: *const f64,
    cs: usize,
    ks: usize,
    kc: usize,
    out: *mut f64,
) {
    use std::arch::x86_64::*;
    // SAFETY: every read and write below is one the caller vouches for (see # Safety).
    unsafe {
        let mut c = [[_mm512_setzero_pd(); P]; NR512];
        for kk in 0..kc {
            let mut av = [_mm512_setzero_pd(); P];
            for (q, v) in av.iter_mut().enumerate() {
                *v = _mm512_loadu_pd(a.add(q * pstride + kk * MR));
            }
            let bk = b.add(kk * ks);
            for (jj, cj) in c.iter_mut().enumerate() {
                let x = _mm512_set1_pd(*bk.add(jj * cs));
                for q in 0..P {
                    cj[q] = _mm512_fmadd_pd(av[q], x, cj[q]);
                }
            }
        }
        for (jj, cj) in c.iter().enumerate() {
            for (q, v) in cj.iter().enumerate() {
                _mm512_storeu_pd(out.add(jj * P * MR + q * MR), *v);
            }
        }
    }
}

/// MR x 1 tile with the inner dimension unrolled by 4 (eight independent accumulators hide the
/// FMA latency), summed pairwise at the end.
///
/// # Safety
/// The CPU supports AVX2 and FMA. (The slice lengths are asserted here, so no other
/// precondition remains.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn column_avx2(panel: &[f64], bcol: &[f64], acc: &mut [f64; MR]) {
    use std::arch::x86_64::*;
    assert_eq!(panel.len(), bcol.len() * MR, "column_avx2: panel length");
    let a = panel.as_ptr();
    let kc = bcol.len();
    // SAFETY: kk < kc = bcol.len() throughout, so `bcol[kk]` and the MR values of `panel` at
    // kk MR (asserted length) are in bounds.
    unsafe {
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
}
