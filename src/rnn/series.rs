//! The I-10 short-time series measured on trained linear networks (THEORY I-17).
//!
//! The network and task are those of X-5 ([`super::static_curves`]): phi = identity, state
//! readout z = b^T x(T)/N, constant input u along a, target zhat on b, full W trained by GD on
//! L = (z - zhat)^2/2. Early in training (dressed time tau~ = beta^2 tau <= `tt_max`) the run
//! records z, the singular values s1 >= s2 of dW = W - W0 and the leading eigenvalue of dW, and
//! fits each with a polynomial of degree 7 in tau~ (least squares, no constant term; z is fitted
//! as z - z(0); on [0, 0.3] degree 5 left a 2.7% bias in z's cubic coefficient at g = 0, degree 7
//! 0.1%). The eigenvalue is fitted with powers 1..5: at g > 0 and finite N the overlap of dW's
//! singular vectors gives it a tau~ term of order 1/sqrt(N), and at g = 0 the linear term absorbs
//! GD's O(h/tau~) bias of M_ab (a sum of k^2 h^3 terms, relative error 3/(2k) after k steps; without
//! it the tau~^2 coefficient came out 1.7% low on the exact 2x2 flow, with it 0.05%). The fitted
//! coefficients are the measured series:
//!
//! - z ~ c1 tau~ + c2 tau~^2 + c3 tau~^3 + ...: I-10 predicts c1 = zhat, c2 = -zhat/2,
//!   c3 = zhat (1 + 8 zhat^2 beta)/6;
//! - s1 ~ d1 tau~ + d2 tau~^2 + d3 tau~^3: d1 = zhat/beta, d2 = -zhat/(2 beta),
//!   d3 = zhat (1 + 3.5 zhat^2 beta)/(6 beta);
//! - s2 ~ e3 tau~^3 + ...: e3 = zhat^3/12;
//! - eig dW ~ f2 tau~^2 + ...: f2 = zhat^2/beta.
//!
//! GD with step h in tau~ follows the flow to O(h) (its z_k solves a discrete map whose
//! coefficients differ by relative O(h)); h = `dtt` = 2.5e-4 keeps that below 0.1%.
//! Plain results only (rows in `src/claims/series.rs`).

use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use super::network::Network;
use super::static_curves::{StaticEval, StaticProblem};
use crate::num::iterate::{iterate, Gd, Observer, Stop};
use crate::{Error, Result};

/// One early-training setting.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SeriesSetting {
    pub n: usize,
    pub g: f64,
    pub dt: f64,
    pub t_max: f64,
    pub u: f64,
    pub zhat: f64,
    /// GD step in dressed time (lr = dtt / beta^2).
    pub dtt: f64,
    /// Train until tau~ = tt_max.
    pub tt_max: f64,
    /// Measure the spectrum of dW every this many steps.
    pub every: usize,
}

impl SeriesSetting {
    /// The I-17 setting: N neurons, dt = 0.5, u = 1, zhat = 0.5, tau~ <= 0.1 in steps of 2.5e-4,
    /// spectra every 10 steps; t_max = 30 / (1 - g) (the slowest bulk mode, rate 1 - g, has
    /// decayed by e^{-30} at the readout, so the readout is the steady state to 1e-13).
    pub fn reference(n: usize, g: f64) -> SeriesSetting {
        SeriesSetting {
            n,
            g,
            dt: 0.5,
            t_max: (30.0 / (1.0 - g)).ceil(),
            u: 1.0,
            zhat: 0.5,
            dtt: 2.5e-4,
            tt_max: 0.1,
            every: 10,
        }
    }

    /// beta = 1/(1 - g^2).
    pub fn beta(&self) -> f64 {
        1.0 / (1.0 - self.g * self.g)
    }

    fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.g)
            || self.n < 4
            || !(self.dtt > 0.0 && self.tt_max > 0.0)
            || self.every == 0
        {
            return Err(Error::Requirement(format!(
                "series: n = {}, g = {}, dtt = {}, tt_max = {}, every = {} (need n >= 4, \
                 0 <= g < 1, dtt, tt_max > 0, every >= 1)",
                self.n, self.g, self.dtt, self.tt_max, self.every
            )));
        }
        Ok(())
    }
}

/// Fitted coefficients of one seed (index k = coefficient of tau~^k).
#[derive(Debug, Clone, Serialize)]
pub struct SeriesRun {
    pub seed: u64,
    /// z(0), the untrained readout (finite-N: O(g^2/sqrt(N))).
    pub z0: f64,
    /// z - z0 fitted with powers 1..=7.
    pub z_coef: [f64; 8],
    /// s1 fitted with powers 1..=7.
    pub s1_coef: [f64; 8],
    /// s2 fitted with powers 3..=7.
    pub s2_coef: [f64; 8],
    /// Leading eigenvalue (largest real part) of dW fitted with powers 1..=5.
    pub eig_coef: [f64; 8],
    /// Largest |imaginary part| of the leading eigenvalue seen (0 if always real).
    pub eig_imag: f64,
}

/// Least squares fit of y(t) = sum_{k in powers} c_k t^k; returns c indexed by power.
pub fn fit_powers(t: &[f64], y: &[f64], powers: &[usize]) -> Result<[f64; 8]> {
    let m = t.len();
    if m < powers.len() || powers.iter().any(|&k| k > 7) {
        return Err(Error::Requirement(format!(
            "fit: {m} points for {} powers (max power 7)",
            powers.len()
        )));
    }
    // scale the variable to [0, 1] so the columns are of order one
    let scale = t
        .iter()
        .cloned()
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let v = DMatrix::from_fn(m, powers.len(), |i, j| {
        (t[i] / scale).powi(powers[j] as i32)
    });
    let rhs = DVector::from_column_slice(y);
    let svd = v
        .try_svd(true, true, 1e-15, 10_000)
        .ok_or_else(|| Error::numerical("series fit: SVD did not converge"))?;
    let c = svd
        .solve(&rhs, 1e-14)
        .map_err(|e| Error::numerical(format!("series fit: {e}")))?;
    let mut out = [0.0; 8];
    for (j, &k) in powers.iter().enumerate() {
        out[k] = c[j] / scale.powi(k as i32);
    }
    Ok(out)
}

/// Singular values s1, s2 and the leading eigenvalue (re, im) of dW.
///
/// dW is low rank (a sum of the rank-one GD updates R^T b (R a)^T, which span few directions
/// early on); its eigenvalues are those of S V^T U (k x k) from the thin SVD dW = U S V^T,
/// keeping the singular values above 1e-12 s1 (the rest contribute below that).
pub fn spectrum(dw: &DMatrix<f64>) -> Result<(f64, f64, f64, f64)> {
    let svd = dw
        .clone()
        .try_svd(true, true, 1e-15, 10_000)
        .ok_or_else(|| Error::numerical("dW: SVD did not converge"))?;
    let mut idx: Vec<usize> = (0..svd.singular_values.len()).collect();
    idx.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));
    let s = |k: usize| svd.singular_values[idx[k]];
    let (s1, s2) = (s(0), s(1));
    let keep: Vec<usize> = idx
        .iter()
        .copied()
        .filter(|&i| svd.singular_values[i] > 1e-12 * s1)
        .take(8)
        .collect();
    let (u, vt) = (
        svd.u.as_ref().expect("requested"),
        svd.v_t.as_ref().expect("requested"),
    );
    let k = keep.len();
    // S V^T U, k x k
    let small = DMatrix::from_fn(k, k, |i, j| {
        svd.singular_values[keep[i]] * vt.row(keep[i]).dot(&u.column(keep[j]).transpose())
    });
    let eig = small.complex_eigenvalues();
    let lead = eig
        .iter()
        .max_by(|a, b| a.re.total_cmp(&b.re))
        .copied()
        .unwrap_or(nalgebra::Complex::new(0.0, 0.0));
    Ok((s1, s2, lead.re, lead.im))
}

/// The record of [`run_series`] at every evaluated point k (before each step and at the end):
/// z(0), then z - z(0) at every point and the spectrum of dW = W - W0 every `every` points.
struct SeriesRecord {
    dtt: f64,
    every: usize,
    z0: f64,
    tz: Vec<f64>,
    zs: Vec<f64>,
    ts: Vec<f64>,
    s1s: Vec<f64>,
    s2s: Vec<f64>,
    eigs: Vec<f64>,
    eig_imag: f64,
    /// dW, reused.
    dw: DMatrix<f64>,
}

impl SeriesRecord {
    fn new(s: &SeriesSetting, steps: usize) -> Self {
        let spectra = steps / s.every + 1;
        SeriesRecord {
            dtt: s.dtt,
            every: s.every,
            z0: f64::NAN,
            tz: Vec::with_capacity(steps),
            zs: Vec::with_capacity(steps),
            ts: Vec::with_capacity(spectra),
            s1s: Vec::with_capacity(spectra),
            s2s: Vec::with_capacity(spectra),
            eigs: Vec::with_capacity(spectra),
            eig_imag: 0.0,
            dw: DMatrix::zeros(s.n, s.n),
        }
    }

    fn point(&mut self, k: usize, net: &Network, z: f64) -> Result<()> {
        let tt = k as f64 * self.dtt;
        if k == 0 {
            self.z0 = z;
            return Ok(());
        }
        self.tz.push(tt);
        self.zs.push(z - self.z0);
        if k.is_multiple_of(self.every) {
            self.dw.copy_from(&net.w);
            self.dw -= &net.w0;
            let (s1, s2, re, im) = spectrum(&self.dw)?;
            self.ts.push(tt);
            self.s1s.push(s1);
            self.s2s.push(s2);
            self.eigs.push(re);
            self.eig_imag = self.eig_imag.max(im.abs());
        }
        Ok(())
    }
}

impl Observer<StaticProblem> for SeriesRecord {
    fn before(&mut self, k: usize, net: &Network, e: &StaticEval, _: f64) -> Result<()> {
        self.point(k, net, e.z)
    }
    fn end(&mut self, k: usize, net: &Network, e: &StaticEval, _: Option<f64>) -> Result<()> {
        self.point(k, net, e.z)
    }
}

/// Train seed `seed` for tau~ in [0, tt_max] (GD with step dtt / beta^2 by the iteration driver
/// [`iterate`]: a non-finite loss or gradient is [`Error::Diverged`]) and fit the series.
pub fn run_series(s: &SeriesSetting, seed: u64) -> Result<SeriesRun> {
    s.validate()?;
    let task = (s.u, s.t_max, s.zhat);
    let (_, mut net, mut problem) = StaticProblem::seeded(s.n, s.g, s.dt, task, seed);
    let lr = s.dtt / s.beta().powi(2);
    let steps = (s.tt_max / s.dtt).round() as usize;
    let mut eval = StaticEval::new(s.n);
    let mut rec = SeriesRecord::new(s, steps);
    let stop = Stop::steps(steps, &format!("series g={} seed={seed}", s.g))
        .diverge_above(f64::INFINITY)
        .hint("reduce the step dtt");
    let mut gd = Gd {
        eta: lr,
        lambda: 0.0,
    };
    iterate(&mut problem, &mut gd, &mut net, &mut eval, &stop, &mut rec)?;
    Ok(SeriesRun {
        seed,
        z0: rec.z0,
        z_coef: fit_powers(&rec.tz, &rec.zs, &[1, 2, 3, 4, 5, 6, 7])?,
        s1_coef: fit_powers(&rec.ts, &rec.s1s, &[1, 2, 3, 4, 5, 6, 7])?,
        s2_coef: fit_powers(&rec.ts, &rec.s2s, &[3, 4, 5, 6, 7])?,
        eig_coef: fit_powers(&rec.ts, &rec.eigs, &[1, 2, 3, 4, 5])?,
        eig_imag: rec.eig_imag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fit recovers a quintic exactly (rounding) and, for a smooth function, its Taylor
    /// coefficients up to the truncation of the omitted powers.
    #[test]
    fn fit_recovers_polynomials() {
        let t: Vec<f64> = (1..=300).map(|k| k as f64 * 1e-3).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|&x| 0.5 * x - 0.25 * x * x + 0.7 * x.powi(3) - 2.0 * x.powi(5))
            .collect();
        let all = [1, 2, 3, 4, 5, 6, 7];
        let c = fit_powers(&t, &y, &all).unwrap();
        for (k, want) in [
            (1, 0.5),
            (2, -0.25),
            (3, 0.7),
            (4, 0.0),
            (5, -2.0),
            (7, 0.0),
        ] {
            assert!((c[k] - want).abs() < 1e-6, "c{k} = {}", c[k]);
        }
        // sin: 1, 0, -1/6, 0, 1/120, 0, -1/5040, omitted x^9/362880 on [0, 0.3]
        let y: Vec<f64> = t.iter().map(|&x| x.sin()).collect();
        let c = fit_powers(&t, &y, &all).unwrap();
        assert!((c[3] + 1.0 / 6.0).abs() < 1e-8, "{}", c[3]);
        // degree 5 leaves a visible bias (why the runs use degree 7)
        let c5 = fit_powers(&t, &y, &all[..5]).unwrap();
        assert!((c5[3] + 1.0 / 6.0).abs() > 1e-6, "{}", c5[3]);
    }

    #[test]
    fn invalid_settings_are_errors() {
        let ok = SeriesSetting::reference(16, 0.5);
        for bad in [
            SeriesSetting { every: 0, ..ok },
            SeriesSetting { g: 1.0, ..ok },
            SeriesSetting { dtt: 0.0, ..ok },
        ] {
            assert!(matches!(run_series(&bad, 1), Err(Error::Requirement(_))));
        }
    }

    /// The spectrum of a known low-rank matrix: dW = 2 e1 e2^T + 0.5 e2 e1^T has singular values
    /// 2, 0.5 and eigenvalues +-1 (= +-sqrt(2 * 0.5)).
    #[test]
    fn spectrum_of_a_rank_two_matrix() {
        let mut m = DMatrix::zeros(6, 6);
        m[(0, 1)] = 2.0;
        m[(1, 0)] = 0.5;
        let (s1, s2, re, im) = spectrum(&m).unwrap();
        assert!((s1 - 2.0).abs() < 1e-14 && (s2 - 0.5).abs() < 1e-14);
        assert!((re - 1.0).abs() < 1e-12 && im.abs() < 1e-12);
    }
}
