//! The beta^2 dressing of static gradient directions by random connectivity (THEORY I-9).
//!
//! R0 = (I - W0)^{-1} = sum_k W0^k. For W0_ij ~ N(0, g^2/N) and patterns with |a|^2 = N, only
//! planar pairings survive at large N: a^T W0^k a / N -> 0 for k >= 1, |W0^k a|^2 / N -> g^{2k},
//! and in a^T (W0^T)^i W0^j (W0^T)^k a / N the word is paired only if i + k = j, each such word
//! giving g^{2j}. Summing: a^T R0 a/N -> 1, |R0 a|^2/N -> beta = 1/(1 - g^2),
//! a^T R0^T R0 R0^T a/N -> sum_j (j+1) g^{2j} = beta^2; cross terms between a and b vanish.

use nalgebra::{DMatrix, Matrix2, Vector2};
use serde::Serialize;

use super::random::RandomNetwork;
use crate::{Error, Result};

/// beta = 1/(1 - g^2), the bulk gain of the random network (THEORY I-9). Needs |g| < 1
/// (the network is unstable otherwise); returns +inf at |g| = 1 and NaN beyond.
pub fn beta(g: f64) -> f64 {
    let d = 1.0 - g * g;
    if d < 0.0 {
        f64::NAN
    } else {
        1.0 / d
    }
}

/// Speed-up of full-W gradient flow by random connectivity: beta^2 (THEORY I-9).
///
/// Full-W GF at strength g equals the g = 0 latent model with M = beta^2 K and
/// M' = -eta beta^2 dL/dM: every static pathway is sped up by the same factor, so g cannot
/// decide the static race. If only M is trained the factor is 1 (see
/// [`m_only_speedup`]).
pub fn full_w_speedup(g: f64) -> f64 {
    beta(g).powi(2)
}

/// Speed-up of M-only training by random connectivity: 1 for every g < 1 (THEORY I-9),
/// because U^T R0 U / N -> I.
pub fn m_only_speedup(g: f64) -> f64 {
    if beta(g).is_finite() {
        1.0
    } else {
        f64::NAN
    }
}

/// Large-N predictions of the I-9 overlaps.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OverlapPrediction {
    /// a^T R0 a / N -> 1.
    pub a_r0_a: f64,
    /// |R0 a|^2 / N -> beta.
    pub r0a_sq: f64,
    /// a^T R0^T R0 R0^T a / N -> beta^2.
    pub triple: f64,
    /// Every cross term (a^T R0 b/N, R0 a . R0 b / N, a^T R0^T R0 R0^T b / N) -> 0.
    pub cross: f64,
}

/// The I-9 large-N overlaps at strength g.
pub fn overlap_prediction(g: f64) -> OverlapPrediction {
    let b = beta(g);
    OverlapPrediction {
        a_r0_a: 1.0,
        r0a_sq: b,
        triple: b * b,
        cross: 0.0,
    }
}

/// Overlaps measured on one finite random network.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Overlaps {
    pub a_r0_a: f64,
    pub r0a_sq: f64,
    pub triple: f64,
    /// a^T R0 b / N.
    pub a_r0_b: f64,
    /// (R0 a) . (R0 b) / N.
    pub r0a_r0b: f64,
    /// a^T R0^T R0 R0^T b / N.
    pub triple_ab: f64,
}

/// Measure the I-9 overlaps of one network for the pattern pair (a, b).
pub fn measure_overlaps(net: &RandomNetwork) -> Result<Overlaps> {
    let k = Matrix2::zeros();
    Ok(measure_pairs(net, &k)?[0].0)
}

fn singular(context: &str) -> Error {
    Error::Singular {
        context: context.into(),
        pivot: 0.0,
        threshold: 0.0,
    }
}

/// Overlaps and NTK ratios for every disjoint pattern pair (columns 2i, 2i+1) of `net`, with
/// structured part K. Two LU factorisations of I - W0 serve all pairs: with U = [a, b] and
/// U~ = U^T R0 U / N, the push-through identity gives (I - W0 - U K U^T/N)^{-1} a
/// = R0 U (I - K U~)^{-1} e_a and its transpose analogue, so no N x N solve per pair is needed.
pub fn measure_pairs(net: &RandomNetwork, k: &Matrix2<f64>) -> Result<Vec<(Overlaps, NtkRatios)>> {
    measure_pairs_with(net, &Resolvents::new(net)?, k)
}

/// R0 P, R0^T P and R0 R0^T P for the pattern matrix P of a network: everything the I-9
/// measurements need, from two LU factorisations of I - W0.
#[derive(Debug, Clone)]
pub struct Resolvents {
    pub r0x: DMatrix<f64>,
    pub r0tx: DMatrix<f64>,
    pub r0r0tx: DMatrix<f64>,
}

impl Resolvents {
    /// Factorise I - W0 and its transpose once and solve for all patterns.
    pub fn new(net: &RandomNetwork) -> Result<Self> {
        let m = net.identity_minus_w0();
        let lu = m.clone().lu();
        let lu_t = m.transpose().lu();
        let x = &net.patterns;
        let err = || singular("I - W0 (kernels::dressing)");
        let r0x = lu.solve(x).ok_or_else(err)?;
        let r0tx = lu_t.solve(x).ok_or_else(err)?;
        // a^T R0^T R0 R0^T v = (R0 a) . (R0 (R0^T v)).
        let r0r0tx = lu.solve(&r0tx).ok_or_else(err)?;
        Ok(Resolvents { r0x, r0tx, r0r0tx })
    }
}

/// [`measure_pairs`] with precomputed [`Resolvents`].
pub fn measure_pairs_with(
    net: &RandomNetwork,
    res: &Resolvents,
    k: &Matrix2<f64>,
) -> Result<Vec<(Overlaps, NtkRatios)>> {
    let n = net.n as f64;
    let x = &net.patterns;
    let (r0x, r0tx, r0r0tx) = (&res.r0x, &res.r0tx, &res.r0r0tx);
    let (v_lat, vt_lat) = latent_vectors(k)?;
    let latent = v_lat.norm_squared() * vt_lat.norm_squared();
    let mut out = Vec::with_capacity(x.ncols() / 2);
    for pair in 0..x.ncols() / 2 {
        let (i, j) = (2 * pair, 2 * pair + 1);
        let dot = |u: &DMatrix<f64>, p: usize, v: &DMatrix<f64>, q: usize| {
            u.column(p).dot(&v.column(q)) / n
        };
        let o = Overlaps {
            a_r0_a: dot(x, i, r0x, i),
            r0a_sq: dot(r0x, i, r0x, i),
            triple: dot(r0x, i, r0r0tx, i),
            a_r0_b: dot(x, i, r0x, j),
            r0a_r0b: dot(r0x, i, r0x, j),
            triple_ab: dot(r0x, i, r0r0tx, j),
        };
        // U~ = U^T R0 U / N; Grams of R0 U and R0^T U (divided by N).
        let ut = Matrix2::new(
            dot(x, i, r0x, i),
            dot(x, i, r0x, j),
            dot(x, j, r0x, i),
            dot(x, j, r0x, j),
        );
        let gram = Matrix2::new(
            dot(r0x, i, r0x, i),
            dot(r0x, i, r0x, j),
            dot(r0x, j, r0x, i),
            dot(r0x, j, r0x, j),
        );
        let gram_t = Matrix2::new(
            dot(r0tx, i, r0tx, i),
            dot(r0tx, i, r0tx, j),
            dot(r0tx, j, r0tx, i),
            dot(r0tx, j, r0tx, j),
        );
        let e_a = Vector2::new(1.0, 0.0);
        let inv = (Matrix2::identity() - k * ut)
            .try_inverse()
            .ok_or_else(|| singular("I - K U~ (kernels::dressing)"))?;
        let inv_t = (Matrix2::identity() - k.transpose() * ut.transpose())
            .try_inverse()
            .ok_or_else(|| singular("I - K^T U~^T (kernels::dressing)"))?;
        let v = inv * e_a; // R a = R0 U v
        let vt = inv_t * e_a; // R^T a = R0^T U vt
                              // Theta_W = |R^T a|^2 |R a|^2 / N^2; Theta_M = |U^T R^T a|^2 |U^T R a|^2 / N^4.
        let full = vt.dot(&(gram_t * vt)) * v.dot(&(gram * v));
        let m_only = (ut.transpose() * vt).norm_squared() * (ut * v).norm_squared();
        out.push((
            o,
            NtkRatios {
                full_w: full / latent,
                m_only: m_only / latent,
            },
        ));
    }
    Ok(out)
}

/// Readout propagator of the g = 0 latent model, (I - K)^{-1} e_a, and its transpose version:
/// the large-N limits of U^T R a / N and U^T R^T a / N for W = W0 + U K U^T / N.
fn latent_vectors(k: &Matrix2<f64>) -> Result<(Vector2<f64>, Vector2<f64>)> {
    let m = Matrix2::identity() - k;
    let inv = m.try_inverse().ok_or_else(|| Error::Singular {
        context: "I - K (kernels::dressing)".into(),
        pivot: m.determinant(),
        threshold: 0.0,
    })?;
    let e_a = Vector2::new(1.0, 0.0);
    Ok((inv * e_a, inv.transpose() * e_a))
}

/// Neural tangent kernels of the static readout z = a^T (I - W)^{-1} a / N (unit input along
/// a), W = W0 + U K U^T / N, measured on one network, each divided by the g = 0 latent value
/// |(I-K)^{-1} e_a|^2 |(I-K)^{-T} e_a|^2.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NtkRatios {
    /// Full-W NTK / g = 0 value; large-N prediction beta^2 ([`full_w_speedup`]).
    pub full_w: f64,
    /// M-only NTK / g = 0 value; large-N prediction 1 ([`m_only_speedup`]).
    pub m_only: f64,
}

/// Measure [`NtkRatios`] on one network with structured part K (basis (a, b)).
pub fn measure_ntk_ratios(net: &RandomNetwork, k: &Matrix2<f64>) -> Result<NtkRatios> {
    let n = net.n as f64;
    let mut u = DMatrix::zeros(net.n, 2);
    u.set_column(0, &net.a);
    u.set_column(1, &net.b);
    let w = &net.w0 + &u * k * u.transpose() / n;
    let m = DMatrix::identity(net.n, net.n) - w;
    let singular = || Error::Singular {
        context: "I - W (kernels::dressing)".into(),
        pivot: 0.0,
        threshold: 0.0,
    };
    let ra = m.clone().lu().solve(&net.a).ok_or_else(singular)?;
    let rta = m.transpose().lu().solve(&net.a).ok_or_else(singular)?;
    let (v, vt) = latent_vectors(k)?;
    let latent = v.norm_squared() * vt.norm_squared();
    // dz/dW_ij = (R^T a)_i (R a)_j / N  =>  Theta_W = |R^T a|^2 |R a|^2 / N^2.
    let full = rta.norm_squared() * ra.norm_squared() / (n * n);
    // dz/dM = U^T dz/dW U / N  =>  Theta_M = |U^T R^T a|^2 |U^T R a|^2 / N^4.
    let ura = u.transpose() * &ra / n;
    let urta = u.transpose() * &rta / n;
    let m_only = ura.norm_squared() * urta.norm_squared();
    Ok(NtkRatios {
        full_w: full / latent,
        m_only: m_only / latent,
    })
}

/// Readouts of a network whose structure lies along the *dressed* gradient directions, as
/// full-W gradient flow produces it (THEORY I-9): W = W0 + R0^T U K U^T R0^T / N. Returns, per
/// disjoint pattern pair (columns 2i, 2i+1), the 2x2 matrix z_mu,nu = mu^T (I - W)^{-1} nu / N
/// (row: readout pattern, column: input pattern). Large-N prediction: (I - beta^2 K)^{-1},
/// the readouts of the g = 0 latent model with M = beta^2 K.
///
/// With V = R0^T U and Y = R0 U the push-through identity gives
/// z = U~ + A (I - K T)^{-1} K B, where U~ = U^T R0 U/N, A = V^T V/N (-> beta),
/// B = Y^T Y/N (-> beta) and T = Y^T R0 V/N = U^T R0^T R0 R0^T U/N (-> beta^2).
pub fn measure_dressed_readouts(
    net: &RandomNetwork,
    k: &Matrix2<f64>,
) -> Result<Vec<Matrix2<f64>>> {
    measure_dressed_readouts_with(net, &Resolvents::new(net)?, k)
}

/// [`measure_dressed_readouts`] with precomputed [`Resolvents`].
pub fn measure_dressed_readouts_with(
    net: &RandomNetwork,
    res: &Resolvents,
    k: &Matrix2<f64>,
) -> Result<Vec<Matrix2<f64>>> {
    let n = net.n as f64;
    let x = &net.patterns;
    let (r0x, r0tx, r0r0tx) = (&res.r0x, &res.r0tx, &res.r0r0tx);
    let mut out = Vec::with_capacity(x.ncols() / 2);
    for pair in 0..x.ncols() / 2 {
        let idx = [2 * pair, 2 * pair + 1];
        let block = |u: &DMatrix<f64>, v: &DMatrix<f64>| {
            Matrix2::from_fn(|r, c| u.column(idx[r]).dot(&v.column(idx[c])) / n)
        };
        let ut = block(x, r0x);
        let a = block(r0tx, r0tx);
        let b = block(r0x, r0x);
        let t = block(r0x, r0r0tx);
        let inv = (Matrix2::identity() - k * t)
            .try_inverse()
            .ok_or_else(|| singular("I - K T (kernels::dressing)"))?;
        out.push(ut + a * inv * k * b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_values() {
        assert_eq!(beta(0.0), 1.0);
        assert!((beta(0.5) - 4.0 / 3.0).abs() < 1e-15);
        assert!((full_w_speedup(0.8) - (1.0f64 / 0.36).powi(2)).abs() < 1e-12);
        assert!(beta(1.2).is_nan());
        assert!(m_only_speedup(1.2).is_nan());
    }

    #[test]
    fn g_zero_overlaps_are_exact() {
        // W0 = 0: R0 = I, so every overlap equals its prediction up to rounding.
        let net = RandomNetwork::sample(40, 0.0, 3).unwrap();
        let o = measure_overlaps(&net).unwrap();
        for (m, p) in [(o.a_r0_a, 1.0), (o.r0a_sq, 1.0), (o.triple, 1.0)] {
            assert!((m - p).abs() < 1e-12);
        }
        assert!(o.a_r0_b.abs() < 1e-12 && o.r0a_r0b.abs() < 1e-12 && o.triple_ab.abs() < 1e-12);
        let k = Matrix2::new(0.5, 0.2, 0.1, 0.3);
        let r = measure_ntk_ratios(&net, &k).unwrap();
        assert!((r.full_w - 1.0).abs() < 1e-12 && (r.m_only - 1.0).abs() < 1e-12);
    }

    #[test]
    fn dressed_readouts_equal_direct_solve() {
        let net = RandomNetwork::sample(60, 0.6, 8).unwrap();
        let k = Matrix2::new(0.2, 0.1, 0.05, 0.1);
        let z = measure_dressed_readouts(&net, &k).unwrap()[0];
        // Direct: W = W0 + (R0^T U) K (R0 U)^T / N, z = U^T (I - W)^{-1} U / N.
        let n = 60.0;
        let r0 = net.identity_minus_w0().try_inverse().unwrap();
        let mut u = DMatrix::zeros(60, 2);
        u.set_column(0, &net.a);
        u.set_column(1, &net.b);
        let v = r0.transpose() * &u;
        let y = &r0 * &u;
        let w = &net.w0 + &v * k * y.transpose() / n;
        let r = (DMatrix::identity(60, 60) - w).try_inverse().unwrap();
        let zd = u.transpose() * r * &u / n;
        for i in 0..2 {
            for j in 0..2 {
                assert!((z[(i, j)] - zd[(i, j)]).abs() < 1e-10, "{i}{j}");
            }
        }
    }

    #[test]
    fn push_through_equals_direct_solve() {
        let net = RandomNetwork::sample(60, 0.7, 5).unwrap();
        let k = Matrix2::new(0.5, 0.2, 0.1, 0.3);
        let direct = measure_ntk_ratios(&net, &k).unwrap();
        let (_, fast) = measure_pairs(&net, &k).unwrap()[0];
        assert!((direct.full_w - fast.full_w).abs() < 1e-10 * direct.full_w);
        assert!((direct.m_only - fast.m_only).abs() < 1e-10 * direct.m_only);
    }
}
