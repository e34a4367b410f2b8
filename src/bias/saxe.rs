//! Saxe mode dynamics (THEORY II.5, B-13; Saxe, McClelland, Ganguli 2014): a balanced, aligned
//! two-layer linear net W2 W1 learning Sigma = U S V^T (whitened inputs, loss |Sigma - W2 W1|_F^2 / 2)
//! decouples into modes u_i = d_i^2 with
//!   GF:  u(t) = s e^{2st} / (e^{2st} - 1 + s/u0),  half-time t_half = ln(s/u0 - 1) / (2 s),
//!   GD:  u_{k+1} = u_k (1 + eta (s - u_k))^2 exactly.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::num::iterate::{iterate, After, GradNorm, Problem, Stepper, Stop};
use crate::{Error, Result};

/// Mode strength under gradient flow, u(t) = s e^{2st} / (e^{2st} - 1 + s/u0).
pub fn mode_gf(t: f64, s: f64, u0: f64) -> f64 {
    // divide through by e^{2st} to avoid overflow at large t
    let e = (-2.0 * s * t).exp();
    s / (1.0 - e + e * s / u0)
}

/// One GD step of a mode: u (1 + eta (s - u))^2.
pub fn mode_gd(u: f64, s: f64, eta: f64) -> f64 {
    let f = 1.0 + eta * (s - u);
    u * f * f
}

/// Max over the steps j of |u_j - u(j h)|: the scalar GD map with step h against the GF curve
/// of the mode (s, u0), over round(t_end / h) steps.
pub fn map_gf_error(s: f64, u0: f64, h: f64, t_end: f64) -> f64 {
    let k = (t_end / h).round() as usize;
    let mut u = u0;
    let mut e: f64 = 0.0;
    for j in 1..=k {
        u = mode_gd(u, s, h);
        e = e.max((u - mode_gf(j as f64 * h, s, u0)).abs());
    }
    e
}

/// Half-time of a mode under GF: ln(s/u0 - 1) / (2s) (u0 < s/2).
pub fn half_time(s: f64, u0: f64) -> f64 {
    (s / u0 - 1.0).ln() / (2.0 * s)
}

/// Half-time of a mode under the GD map with step `eta`: the time k eta at which u_k first
/// reaches s/2, interpolated linearly within the crossing step. Needs 0 < u0 < s/2 and
/// 0 < eta s < 1 (then the map increases u strictly below s); a crossing not found within
/// `max_steps` steps (or a non-finite iterate) is [`Error::NoConvergence`].
pub fn half_time_map(s: f64, u0: f64, eta: f64, max_steps: usize) -> Result<f64> {
    let mut u = u0;
    for k in 1..=max_steps {
        let next = mode_gd(u, s, eta);
        if next >= s / 2.0 {
            // linear interpolation of the crossing within the step
            let frac = (s / 2.0 - u) / (next - u);
            return Ok((k as f64 - 1.0 + frac) * eta);
        }
        if !next.is_finite() {
            break;
        }
        u = next;
    }
    Err(Error::NoConvergence {
        solver: format!("GD map of the mode s = {s}, u0 = {u0}, eta = {eta} (to s/2)"),
        iterations: max_steps,
        residual: s / 2.0 - u,
        tolerance: 0.0,
    })
}

/// Random orthogonal matrix (QR of a Gaussian matrix).
fn orthogonal(rng: &mut StdRng, n: usize) -> DMatrix<f64> {
    let g = DMatrix::from_fn(n, n, |_, _| rng.sample::<f64, _>(StandardNormal));
    g.qr().q()
}

/// The square loss |Sigma - W2 W1|_F^2 / 2 of the two-layer linear net (W1, W2), for
/// [`iterate`]. The buffer holds the *negative* gradient (W2^T E, E W1^T), E = Sigma - W2 W1.
struct LinearNetLoss<'a> {
    sigma: &'a DMatrix<f64>,
}

/// Negative gradient of [`LinearNetLoss`] with respect to (W1, W2).
struct Descent(DMatrix<f64>, DMatrix<f64>);

impl GradNorm for Descent {
    fn grad_norm(&self) -> f64 {
        (self.0.norm_squared() + self.1.norm_squared()).sqrt()
    }
}

impl Problem for LinearNetLoss<'_> {
    type Params = (DMatrix<f64>, DMatrix<f64>);
    type Grad = Descent;
    fn loss_grad(
        &mut self,
        _: usize,
        (w1, w2): &(DMatrix<f64>, DMatrix<f64>),
        g: &mut Descent,
    ) -> Result<f64> {
        let e = self.sigma - w2 * w1;
        g.0 = w2.transpose() * &e;
        g.1 = &e * w1.transpose();
        Ok(0.5 * e.norm_squared())
    }
}

/// GD: W += eta (-grad).
struct LinearNetGd {
    eta: f64,
}

impl Stepper<LinearNetLoss<'_>> for LinearNetGd {
    fn step(
        &mut self,
        _: usize,
        _: f64,
        (w1, w2): &mut (DMatrix<f64>, DMatrix<f64>),
        g: &Descent,
    ) -> Result<()> {
        let eta = self.eta;
        w1.zip_apply(&g.0, |w, d| *w += d * eta);
        w2.zip_apply(&g.1, |w, d| *w += d * eta);
        Ok(())
    }
}

/// Train the balanced aligned net W1 = D V^T, W2 = U D by GD for `steps` steps and return the
/// diagonal of U^T W2 W1 V (the mode strengths) after each step, and the largest off-diagonal.
/// Runs on [`iterate`] (a non-finite loss, e.g. eta s > 1, is [`crate::Error::Diverged`]).
pub fn train_aligned(
    s: &[f64],
    u0: &[f64],
    eta: f64,
    steps: usize,
    seed: u64,
) -> Result<(Vec<DVector<f64>>, f64)> {
    let m = s.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let uu = orthogonal(&mut rng, m);
    let vv = orthogonal(&mut rng, m);
    let sigma = &uu * DMatrix::from_diagonal(&DVector::from_column_slice(s)) * vv.transpose();
    let d0 = DMatrix::from_diagonal(&DVector::from_iterator(m, u0.iter().map(|u| u.sqrt())));
    let mut w = (&d0 * vv.transpose(), &uu * &d0);
    let smax = s.iter().cloned().fold(0.0, f64::max);
    let mut out = Vec::with_capacity(steps);
    let mut off: f64 = 0.0;
    let mut modes_after = After(
        |_: usize, (w1, w2): &(DMatrix<f64>, DMatrix<f64>), _: f64| {
            let modes = uu.transpose() * w2 * w1 * &vv;
            for i in 0..m {
                for j in 0..m {
                    if i != j {
                        off = off.max(modes[(i, j)].abs());
                    }
                }
            }
            out.push(modes.diagonal());
        },
    );
    iterate(
        &mut LinearNetLoss { sigma: &sigma },
        &mut LinearNetGd { eta },
        &mut w,
        &mut Descent(DMatrix::zeros(m, m), DMatrix::zeros(m, m)),
        &Stop::steps(steps, "aligned linear net GD").hint(&format!(
            "reduce eta = {eta} (the fixed point u = s is stable only for eta s < 1; s_max = {smax})"
        )),
        &mut modes_after,
    )?;
    Ok((out, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_solves_the_mode_ode() {
        // u' = 2 u (s - u) by central differences
        let (s, u0) = (1.5, 0.01);
        for t in [0.1, 1.0, 2.0, 4.0] {
            let h = 1e-5;
            let du = (mode_gf(t + h, s, u0) - mode_gf(t - h, s, u0)) / (2.0 * h);
            let u = mode_gf(t, s, u0);
            assert!(
                (du - 2.0 * u * (s - u)).abs() < 1e-8,
                "{t}: {du} vs {}",
                2.0 * u * (s - u)
            );
        }
        assert!((mode_gf(0.0, s, u0) - u0).abs() < 1e-15);
        assert!((mode_gf(half_time(s, u0), s, u0) - s / 2.0).abs() < 1e-12);
    }
}
