//! The rate network of THEORY I.1 and its parameters.
//!
//! x_{t+1} = x_t + dt (-x_t + W phi(x_t) + W_in u_t),  W = W0 + U M U^T / N,
//! W0_ij ~ N(0, g^2/N), U = [a, b] Gaussian, exactly orthogonalised (QR), |a|^2 = |b|^2 = N.
//! Input vectors are the columns of `w_in` (default: channel 0 along a, channel 1 along b);
//! readouts are y_r = w_out_r^T phi(x)/N (rate) or w_out_r^T x/N (state, kappa_r).

use nalgebra::{DMatrix, DVector, Matrix2};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// The single-neuron nonlinearity phi of THEORY I.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phi {
    /// phi(x) = tanh(x).
    Tanh,
    /// phi(x) = erf(sqrt(pi)/2 x) (slope 1 at 0, the function of the exact latent reduction I.2).
    Erf,
    /// phi(x) = x (linear network).
    Identity,
}

/// tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)): one `exp` instead of libm's `tanh`, about 3x
/// faster (it dominates the non-gemm work of a forward pass) and accurate to ~1 ulp in absolute
/// terms (max |error| 2.2e-16, checked against `f64::tanh` in the tests). |x| is capped at 20,
/// where tanh is 1 to within 1e-17.
#[inline]
pub fn fast_tanh(x: f64) -> f64 {
    let e = (2.0 * x.abs()).min(40.0).exp();
    (1.0 - 2.0 / (e + 1.0)).copysign(x)
}

/// tanh over a slice, `out[i] = tanh(x[i])`, to the accuracy of [`fast_tanh`] (max |error|
/// 2.2e-16 against `f64::tanh`, tested) but branch-free and call-free so that it vectorises:
/// e^y for y = 2|x| by Cody–Waite reduction y = n ln 2 + r, |r| <= ln2/2, a degree-13 Taylor
/// polynomial for e^r (truncation r^14/14! < 4e-18) and 2^n assembled from its bits. On x86-64
/// with AVX2 + FMA (detected at run time) the loop is compiled for 4-wide vectors; the forward
/// pass spends most of its non-gemm time here (`cargo bench --bench rnn_step`).
pub fn tanh_slice(x: &[f64], out: &mut [f64]) {
    assert_eq!(x.len(), out.len(), "tanh_slice: lengths differ");
    tanh_dispatch(x, out, None);
}

/// `out[i] = tanh(x[i])` and `scaled[i] = c x[i]` in one pass over x (the forward pass needs
/// phi(X_k) and (1 - dt) X_k, the start of X_{k+1}); tanh as in [`tanh_slice`].
pub fn tanh_slice_and_scale(x: &[f64], out: &mut [f64], scaled: &mut [f64], c: f64) {
    assert!(
        x.len() == out.len() && x.len() == scaled.len(),
        "tanh_slice_and_scale: lengths differ"
    );
    tanh_dispatch(x, out, Some((scaled, c)));
}

fn tanh_dispatch(x: &[f64], out: &mut [f64], scaled: Option<(&mut [f64], f64)>) {
    #[cfg(target_arch = "x86_64")]
    if !crate::num::simd::portable()
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the features the function is compiled for were detected at run time.
            unsafe { tanh_slice_avx512(x, out, scaled) };
        } else {
            // SAFETY: as above.
            unsafe { tanh_slice_avx2(x, out, scaled) };
        }
        return;
    }
    tanh_loop::<false>(x, out, scaled);
}

/// [`tanh_loop`] compiled for AVX2 + FMA. A safe function with target features (no `unsafe`
/// inside); calling it is `unsafe` only because the CPU must support AVX2 and FMA, which the
/// caller checks at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn tanh_slice_avx2(x: &[f64], out: &mut [f64], scaled: Option<(&mut [f64], f64)>) {
    tanh_loop::<true>(x, out, scaled);
}

/// [`tanh_loop`] compiled for AVX-512F (as [`tanh_slice_avx2`]: the caller checks the CPU).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn tanh_slice_avx512(x: &[f64], out: &mut [f64], scaled: Option<(&mut [f64], f64)>) {
    tanh_loop::<true>(x, out, scaled);
}

#[inline(always)]
fn tanh_loop<const FMA: bool>(x: &[f64], out: &mut [f64], scaled: Option<(&mut [f64], f64)>) {
    match scaled {
        None => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = tanh_arith::<FMA>(v);
            }
        }
        Some((sc, c)) => {
            for ((o, s), &v) in out.iter_mut().zip(sc.iter_mut()).zip(x) {
                *o = tanh_arith::<FMA>(v);
                *s = c * v;
            }
        }
    }
}

/// a b + c, fused when the caller is compiled with hardware FMA (`FMA = true`); the
/// unfused form otherwise (a software fma would be slower than the rest of the function).
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The arithmetic of [`tanh_slice`] for one value (no calls, no branches).
#[inline(always)]
fn tanh_arith<const FMA: bool>(x: f64) -> f64 {
    const LOG2_E: f64 = std::f64::consts::LOG2_E;
    // ln 2 split so that n * LN2_HI is exact for n < 2^11 (fdlibm's ln2_hi, ln2_lo)
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // adding 1.5 * 2^52 rounds to an integer held in the low mantissa bits
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    let y = (2.0 * x.abs()).min(40.0);
    let t = madd::<FMA>(y, LOG2_E, MAGIC);
    let n = t - MAGIC;
    let r = madd::<FMA>(-n, LN2_LO, madd::<FMA>(-n, LN2_HI, y));
    // e^r, Horner form of sum_{j <= 13} r^j / j!
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = madd::<FMA>(p, r, c);
    }
    // 2^n, 0 <= n <= 58: exponent bits n + 1023
    let k = t.to_bits().wrapping_sub(MAGIC.to_bits());
    let scale = f64::from_bits((k.wrapping_add(1023)) << 52);
    let e = p * scale;
    (1.0 - 2.0 / (e + 1.0)).copysign(x)
}

/// sqrt(pi)/2, the argument scale of the erf nonlinearity.
const ERF_SCALE: f64 = 0.886_226_925_452_758;

impl Phi {
    /// Parse a model-file name (`tanh`, `erf`, `identity`).
    pub fn from_name(s: &str) -> Option<Phi> {
        match s {
            "tanh" => Some(Phi::Tanh),
            "erf" => Some(Phi::Erf),
            "identity" | "linear" => Some(Phi::Identity),
            _ => None,
        }
    }

    /// phi(x).
    #[inline]
    pub fn f(self, x: f64) -> f64 {
        match self {
            Phi::Tanh => fast_tanh(x),
            Phi::Erf => libm::erf(ERF_SCALE * x),
            Phi::Identity => x,
        }
    }

    /// out = phi(x) elementwise (the vectorised [`tanh_slice`] for tanh).
    pub fn apply(self, x: &[f64], out: &mut [f64]) {
        match self {
            Phi::Tanh => tanh_slice(x, out),
            _ => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = self.f(v);
                }
            }
        }
    }

    /// out = phi(x) and scaled = c x elementwise, in one pass over x.
    pub fn apply_and_scale(self, x: &[f64], out: &mut [f64], scaled: &mut [f64], c: f64) {
        match self {
            Phi::Tanh => tanh_slice_and_scale(x, out, scaled, c),
            _ => {
                for ((o, s), &v) in out.iter_mut().zip(scaled.iter_mut()).zip(x) {
                    *o = self.f(v);
                    *s = c * v;
                }
            }
        }
    }

    /// phi'(x), given x and h = phi(x) (tanh uses 1 - h^2).
    #[inline]
    pub fn df(self, x: f64, h: f64) -> f64 {
        match self {
            Phi::Tanh => 1.0 - h * h,
            // d/dx erf(c x) = 2c/sqrt(pi) exp(-c^2 x^2) = exp(-pi x^2 / 4)
            Phi::Erf => (-std::f64::consts::FRAC_PI_4 * x * x).exp(),
            Phi::Identity => 1.0,
        }
    }

    /// phi''(x), given x and h = phi(x) (for Jacobian derivatives in the slow-point search).
    #[inline]
    pub fn d2f(self, x: f64, h: f64) -> f64 {
        match self {
            Phi::Tanh => -2.0 * h * (1.0 - h * h),
            Phi::Erf => {
                -std::f64::consts::FRAC_PI_2 * x * (-std::f64::consts::FRAC_PI_4 * x * x).exp()
            }
            Phi::Identity => 0.0,
        }
    }
}

/// Which readout the loss sees: rates y = mu^T phi(x)/N or states kappa = mu^T x/N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Readout {
    Rate,
    State,
}

/// Which recurrent weights are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Recurrent {
    /// All N^2 entries of W.
    Full,
    /// Only the 2x2 matrix M of W = W0 + U M U^T / N.
    Latent,
}

/// The trainable set: the recurrent part plus optionally input and readout vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Trainable {
    pub recurrent: Recurrent,
    pub input: bool,
    pub readout: bool,
}

impl Trainable {
    /// All of W, nothing else.
    pub const FULL: Trainable = Trainable {
        recurrent: Recurrent::Full,
        input: false,
        readout: false,
    };
    /// Only M, nothing else.
    pub const LATENT: Trainable = Trainable {
        recurrent: Recurrent::Latent,
        input: false,
        readout: false,
    };
}

/// How a network is drawn.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NetworkSpec {
    /// Number of neurons N.
    pub n: usize,
    /// Random bulk strength g (W0_ij ~ N(0, g^2/N)).
    pub g: f64,
    /// Euler step dt.
    pub dt: f64,
    pub phi: Phi,
    pub readout: Readout,
    /// Initial structure M0 (row-major [[M_aa, M_ab], [M_ba, M_bb]]).
    pub m0: [[f64; 2]; 2],
}

/// The network and all its parameters.
#[derive(Debug, Clone)]
pub struct Network {
    pub n: usize,
    pub dt: f64,
    pub phi: Phi,
    pub readout: Readout,
    /// Random bulk W0.
    pub w0: DMatrix<f64>,
    /// Patterns U = [a, b] (N x 2), orthogonal, each of norm sqrt(N).
    pub u: DMatrix<f64>,
    /// Latent structure M (meaningful while only M is trained; W is then W0 + U M U^T/N).
    pub m: Matrix2<f64>,
    /// Effective recurrent matrix W (N x N).
    pub w: DMatrix<f64>,
    /// Input vectors, one column per input channel (N x K).
    pub w_in: DMatrix<f64>,
    /// Readout vectors, one column per readout channel (N x R).
    pub w_out: DMatrix<f64>,
}

impl Network {
    /// Draw a network: W0, then the patterns a, b (QR of an N x 2 Gaussian matrix, scaled to
    /// norm sqrt(N)); inputs and readouts along a and b. Deterministic given `rng`.
    pub fn new(spec: &NetworkSpec, rng: &mut impl Rng) -> Network {
        let n = spec.n;
        let sd = spec.g / (n as f64).sqrt();
        let w0 = DMatrix::from_fn(n, n, |_, _| sd * rng.sample::<f64, _>(StandardNormal));
        let u = patterns(n, rng);
        let m = Matrix2::new(spec.m0[0][0], spec.m0[0][1], spec.m0[1][0], spec.m0[1][1]);
        let mut net = Network {
            n,
            dt: spec.dt,
            phi: spec.phi,
            readout: spec.readout,
            w: w0.clone(),
            w0,
            w_in: u.clone(),
            w_out: u.clone(),
            u,
            m,
        };
        net.sync_w();
        net
    }

    /// W = W0 + U M U^T / N.
    pub fn sync_w(&mut self) {
        let n = self.n as f64;
        let um = &self.u * (self.m / n); // N x 2
        self.w.copy_from(&self.w0);
        self.w.gemm(1.0, &um, &self.u.transpose(), 1.0);
    }

    /// Number of input channels K.
    pub fn inputs(&self) -> usize {
        self.w_in.ncols()
    }

    /// Number of readout channels R.
    pub fn outputs(&self) -> usize {
        self.w_out.ncols()
    }

    /// Number of trainable parameters.
    pub fn num_params(&self, t: &Trainable) -> usize {
        let rec = match t.recurrent {
            Recurrent::Full => self.n * self.n,
            Recurrent::Latent => 4,
        };
        rec + if t.input { self.w_in.len() } else { 0 }
            + if t.readout { self.w_out.len() } else { 0 }
    }

    /// The trainable parameters as one vector: [W (column-major) | M (column-major)],
    /// then w_in, then w_out (if trained).
    pub fn params(&self, t: &Trainable) -> DVector<f64> {
        let mut p = DVector::zeros(self.num_params(t));
        let mut off = 0;
        let mut put = |s: &[f64]| {
            p.as_mut_slice()[off..off + s.len()].copy_from_slice(s);
            off += s.len();
        };
        match t.recurrent {
            Recurrent::Full => put(self.w.as_slice()),
            Recurrent::Latent => put(self.m.as_slice()),
        }
        if t.input {
            put(self.w_in.as_slice());
        }
        if t.readout {
            put(self.w_out.as_slice());
        }
        p
    }

    /// Set the trainable parameters from a vector laid out as in [`Network::params`].
    pub fn set_params(&mut self, t: &Trainable, p: &[f64]) {
        let mut off = 0;
        let mut take = |d: &mut [f64]| {
            d.copy_from_slice(&p[off..off + d.len()]);
            off += d.len();
        };
        match t.recurrent {
            Recurrent::Full => take(self.w.as_mut_slice()),
            Recurrent::Latent => take(self.m.as_mut_slice()),
        }
        if t.input {
            take(self.w_in.as_mut_slice());
        }
        if t.readout {
            take(self.w_out.as_mut_slice());
        }
        if t.recurrent == Recurrent::Latent {
            self.sync_w();
        }
    }

    /// The autonomous flow F(x) = -x + W phi(x) + input, with `input` a constant vector.
    pub fn flow(&self, x: &DVector<f64>, input: &DVector<f64>, out: &mut DVector<f64>) {
        let h = x.map(|v| self.phi.f(v));
        out.copy_from(input);
        out.gemv(1.0, &self.w, &h, 1.0);
        *out -= x;
    }

    /// The Jacobian J(x) = -I + W diag(phi'(x)).
    pub fn jacobian(&self, x: &DVector<f64>, out: &mut DMatrix<f64>) {
        out.copy_from(&self.w);
        for (j, &xj) in x.iter().enumerate() {
            let d = self.phi.df(xj, self.phi.f(xj));
            out.column_mut(j).scale_mut(d);
            out[(j, j)] -= 1.0;
        }
    }

    /// Readouts of one state: y_r = w_out_r^T phi(x)/N (rate) or w_out_r^T x/N (state).
    pub fn readouts(&self, x: &DVector<f64>) -> DVector<f64> {
        let v = match self.readout {
            Readout::Rate => x.map(|v| self.phi.f(v)),
            Readout::State => x.clone(),
        };
        self.w_out.tr_mul(&v) / self.n as f64
    }

    /// Latent coordinates kappa = U^T x / N of one state.
    pub fn kappa(&self, x: &DVector<f64>) -> [f64; 2] {
        let k = self.u.tr_mul(x) / self.n as f64;
        [k[0], k[1]]
    }

    /// The effective 2x2 change M_eff = U^T (W - W_before) U / N.
    pub fn m_eff(&self, w_before: &DMatrix<f64>) -> Matrix2<f64> {
        let d = &self.w - w_before;
        let du = &d * &self.u;
        let m = self.u.tr_mul(&du) / self.n as f64;
        Matrix2::new(m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)])
    }
}

/// The patterns U = [a, b] that [`Network::new`] draws for N = `n` from
/// `StdRng::seed_from_u64(seed)` (the rng of `sequential::run_sequential`): the N^2 draws of
/// W0 come first (also at g = 0, where they are scaled by 0), then [`patterns`]. W0 is not
/// stored; the cost is N^2 normal draws.
pub fn patterns_for_seed(n: usize, seed: u64) -> DMatrix<f64> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..n * n {
        let _: f64 = rng.sample(StandardNormal);
    }
    patterns(n, &mut rng)
}

/// Gaussian N x 2 patterns, orthonormalised by QR and scaled to norm sqrt(N).
pub fn patterns(n: usize, rng: &mut impl Rng) -> DMatrix<f64> {
    let g = DMatrix::from_fn(n, 2, |_, _| rng.sample::<f64, _>(StandardNormal));
    let q = g.qr().q();
    q * (n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn patterns_are_orthogonal_with_norm_sqrt_n() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let u = patterns(50, &mut rng);
        let g = u.tr_mul(&u);
        assert!((g[(0, 0)] - 50.0).abs() < 1e-10);
        assert!((g[(1, 1)] - 50.0).abs() < 1e-10);
        assert!(g[(0, 1)].abs() < 1e-10);
    }

    /// The pattern draw without W0 is the network's, bit for bit, at g = 0 and g > 0 (W0
    /// consumes N^2 draws either way).
    #[test]
    fn patterns_for_seed_are_the_networks_patterns() {
        for g in [0.0, 0.7] {
            let spec = NetworkSpec {
                n: 37,
                g,
                dt: 0.2,
                phi: Phi::Erf,
                readout: Readout::Rate,
                m0: [[0.0; 2]; 2],
            };
            let net = Network::new(&spec, &mut rand::rngs::StdRng::seed_from_u64(9));
            assert_eq!(net.u, patterns_for_seed(37, 9));
        }
    }

    #[test]
    fn latent_structure_projects_back() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let spec = NetworkSpec {
            n: 40,
            g: 0.0,
            dt: 0.2,
            phi: Phi::Tanh,
            readout: Readout::Rate,
            m0: [[1.5, 0.2], [-0.3, 0.7]],
        };
        let net = Network::new(&spec, &mut rng);
        let zero = DMatrix::zeros(40, 40);
        let m = net.m_eff(&zero);
        assert!((m - net.m).norm() < 1e-12, "{m}");
    }

    #[test]
    fn tanh_slice_is_tanh_to_rounding() {
        let x: Vec<f64> = (-50_000..=50_000)
            .map(|i| i as f64 * 5e-4)
            .chain([1e3, -1e3, 20.0, 19.999, 1e-300, -0.0, f64::MIN_POSITIVE])
            .collect();
        let mut out = vec![0.0; x.len()];
        tanh_slice(&x, &mut out);
        let mut scalar = vec![0.0; x.len()];
        tanh_loop::<false>(&x, &mut scalar, None);
        let mut worst: f64 = 0.0;
        for ((&v, &o), &s) in x.iter().zip(&out).zip(&scalar) {
            worst = worst.max((o - v.tanh()).abs());
            assert!(
                (o - s).abs() <= f64::EPSILON,
                "vector vs scalar path at {v}"
            );
            assert_eq!(o.is_sign_negative(), v.is_sign_negative(), "sign at {v}");
        }
        assert!(worst <= 4.0 * f64::EPSILON, "{worst:e}");
        assert_eq!(out[x.len() - 7], 1.0);
        assert_eq!(out[x.len() - 6], -1.0);
        // the fused form gives the same tanh, and c x exactly
        let (mut out2, mut sc) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        tanh_slice_and_scale(&x, &mut out2, &mut sc, 0.8);
        for ((&v, (&a, &b)), &s) in x.iter().zip(out.iter().zip(&out2)).zip(&sc) {
            assert_eq!(a.to_bits(), b.to_bits(), "fused tanh at {v}");
            assert_eq!(s.to_bits(), (0.8 * v).to_bits(), "scaled at {v}");
        }
        for phi in [Phi::Erf, Phi::Identity] {
            let (mut h, mut s) = (vec![0.0; 5], vec![0.0; 5]);
            let xs = [-1.0, -0.1, 0.0, 0.3, 2.0];
            phi.apply_and_scale(&xs, &mut h, &mut s, 0.5);
            for i in 0..5 {
                assert_eq!(h[i], phi.f(xs[i]));
                assert_eq!(s[i], 0.5 * xs[i]);
            }
        }
    }

    #[test]
    fn fast_tanh_is_tanh_to_rounding() {
        let mut worst: f64 = 0.0;
        for i in -40_000..=40_000 {
            let x = i as f64 * 5e-4;
            worst = worst.max((fast_tanh(x) - x.tanh()).abs());
        }
        assert!(worst <= 4.0 * f64::EPSILON, "{worst:e}");
        assert_eq!(fast_tanh(0.0), 0.0);
        assert_eq!(fast_tanh(1e3), 1.0);
        assert_eq!(fast_tanh(-1e3), -1.0);
    }

    #[test]
    fn phi_derivatives_match_finite_differences() {
        for phi in [Phi::Tanh, Phi::Erf, Phi::Identity] {
            for &x in &[-1.7, -0.3, 0.0, 0.4, 2.2] {
                let h = 1e-6;
                let fd = (phi.f(x + h) - phi.f(x - h)) / (2.0 * h);
                assert!((fd - phi.df(x, phi.f(x))).abs() < 1e-9, "{phi:?} {x}");
                let fd2 = (phi.df(x + h, phi.f(x + h)) - phi.df(x - h, phi.f(x - h))) / (2.0 * h);
                assert!((fd2 - phi.d2f(x, phi.f(x))).abs() < 1e-8, "{phi:?} {x}");
            }
        }
    }
}
