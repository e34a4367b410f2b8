//! The latent flow kappa' = -kappa + G(|kappa|^2) M kappa + u (docs/theory.md I.2), its Jacobian
//! (claim I-2), its fixed points from the eigenvector formula (claim I-1) and from grid
//! seeding + Newton, and the seeding time (claim I-3).

use nalgebra::{Matrix2, Vector2};
use serde::Serialize;

use super::gain::Gain;
use crate::num::eig2::{eigen2, FixedPointType};
use crate::num::ode::{solve_until, OdeOptions};
use crate::num::planar::{fixed_point_at, fixed_points_in_box, FixedPoint, PlanarFlow};
use crate::num::quad::GaussLegendre;
use crate::{Error, Result};

/// The latent 2-D flow with a constant input vector `input` (= u e_mu; zero for the
/// autonomous flow whose fixed points are the memories).
#[derive(Debug, Clone)]
pub struct LatentFlow {
    /// The 2x2 connectivity M in the pattern basis (a, b).
    pub m: Matrix2<f64>,
    /// Constant input u e_mu.
    pub input: Vector2<f64>,
    pub gain: Gain,
}

impl LatentFlow {
    /// The autonomous flow (u = 0).
    pub fn autonomous(m: Matrix2<f64>, gain: Gain) -> Self {
        LatentFlow {
            m,
            input: Vector2::zeros(),
            gain,
        }
    }
}

/// kappa' = -kappa + G(|kappa|^2) M kappa + u.
#[inline]
pub fn rhs(gain: &Gain, m: &Matrix2<f64>, input: &Vector2<f64>, k: &Vector2<f64>) -> Vector2<f64> {
    let g = gain.g(k.norm_squared());
    -k + (m * k) * g + input
}

/// J = -I + G M + 2 G'(|kappa|^2) (M kappa) kappa^T (claim I-2).
#[inline]
pub fn jacobian(gain: &Gain, m: &Matrix2<f64>, k: &Vector2<f64>) -> Matrix2<f64> {
    let (g, gp) = gain.g_and_slope(k.norm_squared());
    -Matrix2::identity() + m * g + (m * k) * k.transpose() * (2.0 * gp)
}

impl PlanarFlow for LatentFlow {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        rhs(&self.gain, &self.m, &self.input, x)
    }
    fn jacobian(&self, x: &Vector2<f64>) -> Matrix2<f64> {
        jacobian(&self.gain, &self.m, x)
    }
}

/// A fixed point of the autonomous flow from the eigenvector formula (claim I-1).
#[derive(Debug, Clone, Serialize)]
pub struct EigenFixedPoint {
    /// The real eigenvalue lambda of M it lies on (0 for the origin).
    pub lambda: f64,
    /// |kappa*| (0 for the origin).
    pub radius: f64,
    /// Rate readout |y| = G |kappa*| = |kappa*| / lambda.
    pub readout: f64,
    /// Coordinates, stability and type (Jacobian of claim I-2).
    pub point: FixedPoint,
}

/// All fixed points of the autonomous flow (u = 0) in closed form: G(|k|^2) M k = k forces
/// k to be an eigenvector of M with real eigenvalue lambda = 1/G > 1, at the radius where
/// lambda G(r^2) = 1; plus the origin. Sorted like `fixed_points_in_box` (by x then y).
/// A scalar M = lambda I with lambda > 1 has a whole circle of fixed points: that is an error.
pub fn eigen_fixed_points(m: &Matrix2<f64>, gain: &Gain) -> Result<Vec<EigenFixedPoint>> {
    let flow = LatentFlow::autonomous(*m, gain.clone());
    let mut out = vec![EigenFixedPoint {
        lambda: 0.0,
        radius: 0.0,
        readout: 0.0,
        point: fixed_point_at(&flow, &Vector2::zeros()),
    }];
    let e = eigen2(m);
    let scale = m.norm().max(1.0);
    if e.values[0].im.abs() > 1e-14 * scale {
        return Ok(out);
    }
    let scalar =
        (m[(0, 1)].abs() + m[(1, 0)].abs() + (m[(0, 0)] - m[(1, 1)]).abs()) <= 1e-14 * scale;
    for i in 0..2 {
        let lambda = e.values[i].re;
        if lambda <= 1.0 {
            continue;
        }
        if scalar {
            return Err(Error::Requirement(format!(
                "M = {lambda} I: every direction is an eigenvector, the fixed points form a circle"
            )));
        }
        let r = gain.radius_sq_for_eigenvalue(lambda)?.sqrt();
        let v = Vector2::new(e.vectors[i][0].re, e.vectors[i][1].re).normalize();
        for sign in [1.0, -1.0] {
            let x = v * (sign * r);
            out.push(EigenFixedPoint {
                lambda,
                radius: r,
                readout: r / lambda,
                point: fixed_point_at(&flow, &x),
            });
        }
    }
    out.sort_by(|a, b| {
        a.point.x[0]
            .total_cmp(&b.point.x[0])
            .then(a.point.x[1].total_cmp(&b.point.x[1]))
    });
    Ok(out)
}

/// A box that contains every fixed point of the autonomous flow: a real eigenvalue is at most
/// the Frobenius norm |M|_F, and the radius grows with lambda, so |k*| <= r(|M|_F).
pub fn fixed_point_box(m: &Matrix2<f64>, gain: &Gain) -> Result<f64> {
    let lmax = m.norm();
    let r = if lmax > 1.0 {
        gain.radius_sq_for_eigenvalue(lmax)?.sqrt()
    } else {
        0.0
    };
    Ok(1.25 * r + 0.25)
}

/// All fixed points found by grid seeding + Newton in that box (`num::planar`).
pub fn numerical_fixed_points(
    m: &Matrix2<f64>,
    gain: &Gain,
    grid: usize,
) -> Result<Vec<FixedPoint>> {
    let flow = LatentFlow::autonomous(*m, gain.clone());
    let r = fixed_point_box(m, gain)?;
    Ok(fixed_points_in_box(&flow, [-r, -r], [r, r], grid))
}

/// Whether a fixed-point type is an attractor.
pub fn is_stable(kind: FixedPointType) -> bool {
    matches!(
        kind,
        FixedPointType::StableNode | FixedPointType::StableFocus
    )
}

/// Seeding time of claim I-3 from leading-order linearisation:
/// t_s = ln(|kappa_A| / eps) / (lambda_A - 1).
pub fn seeding_time_formula(lambda: f64, radius: f64, eps: f64) -> f64 {
    (radius / eps).ln() / (lambda - 1.0)
}

/// Exact seeding time along the a axis (M = lambda e_a e_a^T, u = 0, kappa(0) = eps e_a):
/// the 1-D flow k' = k (lambda G(k^2) - 1) gives
/// t = int_{ln eps}^{ln(f r)} dv / (lambda G(e^{2v}) - 1)
/// (substituting k = e^v), by composite Gauss–Legendre. `fraction` f < 1 of the radius r.
pub fn seeding_time_quadrature(gain: &Gain, lambda: f64, eps: f64, fraction: f64) -> Result<f64> {
    let r = gain.radius_sq_for_eigenvalue(lambda)?.sqrt();
    check_seeding_args(r, eps, fraction)?;
    let gl = GaussLegendre::new(20);
    // The integrand is smooth and bounded by 1/(lambda G(f^2 r^2) - 1); 64 panels of
    // 20 points resolve it to rounding level.
    Ok(gl.integrate_composite(
        |v| 1.0 / (lambda * gain.g((2.0 * v).exp()) - 1.0),
        eps.ln(),
        (fraction * r).ln(),
        64,
    ))
}

/// The O(1) offset of the exact seeding time over the leading-order formula, as eps -> 0:
/// t(eps) = ln(|kappa_A| / eps) / (lambda - 1) + ln(f) / (lambda - 1) + C(f) + O(eps^2) with
/// C(f) = int_0^{f r} lambda (1 - G(k^2)) / (k (lambda G(k^2) - 1)(lambda - 1)) dk
/// (the difference of the exact and the linearised integrands, regular at k = 0).
pub fn seeding_time_offset(gain: &Gain, lambda: f64, fraction: f64) -> Result<f64> {
    let r = gain.radius_sq_for_eigenvalue(lambda)?.sqrt();
    check_seeding_args(r, 0.5 * fraction * r, fraction)?;
    let gl = GaussLegendre::new(20);
    let c = gl.integrate_composite(
        |k| {
            let g = gain.g(k * k);
            lambda * (1.0 - g) / (k * (lambda * g - 1.0) * (lambda - 1.0))
        },
        0.0,
        fraction * r,
        64,
    );
    Ok(fraction.ln() / (lambda - 1.0) + c)
}

/// Seeding time from the 2-D flow: integrate from kappa(0) = eps e_a with
/// M = lambda e_a e_a^T and stop (event, `solve_until`) at the first time |kappa| reaches
/// `fraction` of the attractor radius |kappa_A|, located on the dense output.
pub fn seeding_time_simulated(
    gain: &Gain,
    lambda: f64,
    eps: f64,
    fraction: f64,
    opts: &OdeOptions,
) -> Result<f64> {
    let r = gain.radius_sq_for_eigenvalue(lambda)?.sqrt();
    check_seeding_args(r, eps, fraction)?;
    let m = Matrix2::new(lambda, 0.0, 0.0, 0.0);
    let zero = Vector2::zeros();
    let target = fraction * r;
    // The growth rate is at least lambda G(target^2) - 1 > 0 until the event, so the event is
    // reached before t_max below.
    let rate = lambda * gain.g(target * target) - 1.0;
    let t_max = 2.0 * (target / eps).ln() / rate + 10.0;
    let (_, hit) = solve_until(
        |_, k: &Vector2<f64>| rhs(gain, &m, &zero, k),
        0.0,
        Vector2::new(eps, 0.0),
        t_max,
        |_, k| k.norm() - target,
        opts,
    )?;
    hit.ok_or_else(|| Error::Numerical(format!("|kappa| did not reach {target} by t = {t_max}")))
}

fn check_seeding_args(r: f64, eps: f64, fraction: f64) -> Result<()> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::Requirement(format!(
            "seeding fraction must lie in (0, 1), got {fraction}"
        )));
    }
    if !(eps > 0.0 && eps < fraction * r) {
        return Err(Error::Requirement(format!(
            "seed eps must lie in (0, fraction |kappa_A| = {}), got {eps}",
            fraction * r
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::gain::GainKind;

    #[test]
    fn jacobian_matches_central_differences() {
        let m = Matrix2::new(1.4, -0.3, 0.7, 0.2);
        for kind in [GainKind::Erf, GainKind::Tanh] {
            let gain = Gain::new(kind);
            let k = Vector2::new(0.4, -0.9);
            let j = jacobian(&gain, &m, &k);
            let h = 1e-6;
            let z = Vector2::zeros();
            for c in 0..2 {
                let mut e = Vector2::zeros();
                e[c] = h;
                let fd = (rhs(&gain, &m, &z, &(k + e)) - rhs(&gain, &m, &z, &(k - e))) / (2.0 * h);
                // truncation h^2 |f'''| ~ 1e-12, rounding 1e-16/h ~ 1e-10
                assert!((fd - j.column(c)).norm() < 1e-8, "{kind:?} col {c}");
            }
        }
    }

    #[test]
    fn eigen_fixed_points_are_fixed_points() {
        let m = Matrix2::new(1.5, 0.4, 0.3, 1.4);
        for kind in [GainKind::Erf, GainKind::Tanh] {
            let gain = Gain::new(kind);
            let fps = eigen_fixed_points(&m, &gain).unwrap();
            assert_eq!(fps.len(), 5);
            for fp in &fps {
                assert!(fp.point.residual < 1e-12, "{kind:?} {:?}", fp.point);
            }
            let num = numerical_fixed_points(&m, &gain, 20).unwrap();
            assert_eq!(num.len(), 5);
            for (a, b) in fps.iter().zip(&num) {
                let d = (a.point.x[0] - b.x[0]).hypot(a.point.x[1] - b.x[1]);
                assert!(d < 1e-10, "{kind:?}: {:?} vs {:?}", a.point.x, b.x);
                assert_eq!(a.point.kind, b.kind);
            }
        }
    }

    #[test]
    fn seeding_time_simulation_equals_quadrature() {
        let gain = Gain::new(GainKind::Erf);
        let l = gain.lambda_for_target(0.5).unwrap();
        let opts = OdeOptions {
            rtol: 1e-11,
            atol: 1e-14,
            ..OdeOptions::default()
        };
        for &eps in &[1e-3, 0.05] {
            let ts = seeding_time_simulated(&gain, l, eps, 0.9, &opts).unwrap();
            let tq = seeding_time_quadrature(&gain, l, eps, 0.9).unwrap();
            assert!((ts - tq).abs() < 1e-7 * tq, "eps={eps}: {ts} vs {tq}");
        }
    }
}
