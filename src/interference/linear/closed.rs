//! Closed forms of the linear static 2x2 model (THEORY I.3): D, R = (I - M)^-1, the
//! input-driven fixed points kappa_A, kappa_B and their readouts, the learning times of I-7 and
//! the race criterion of I-8.
//!
//! M = [[lambda, p], [q, s]] in the basis (a, b): `m[(0, 1)] = p` carries b -> a,
//! `m[(1, 0)] = q` carries a -> b.

use nalgebra::{Matrix2, Vector2};
use serde::Serialize;

use crate::{Error, Result};

/// |D| below which I - M counts as singular. Every readout carries a factor 1/D, so below
/// 1e-12 the readouts exceed 1e12 u: no model of interest lives there, and the rounding error of
/// D itself (~1e-16 |M|^2) is still four orders smaller.
pub const SINGULAR_D: f64 = 1e-12;

/// The pattern a task presents and reads out: `A` (input along a) or `B` (along b).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Task {
    A,
    B,
}

impl Task {
    /// Index of the pattern in the basis (a, b).
    pub fn index(self) -> usize {
        match self {
            Task::A => 0,
            Task::B => 1,
        }
    }

    /// The other task (nu for mu).
    pub fn other(self) -> Task {
        match self {
            Task::A => Task::B,
            Task::B => Task::A,
        }
    }

    /// The unit vector e_mu.
    pub fn unit(self) -> Vector2<f64> {
        match self {
            Task::A => Vector2::new(1.0, 0.0),
            Task::B => Vector2::new(0.0, 1.0),
        }
    }
}

/// The physical parameters of I.3: input amplitude u, target zhat, learning rate eta.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    /// Input amplitude u along the task pattern.
    pub u: f64,
    /// Target readout zhat.
    pub zhat: f64,
    /// Learning rate eta of the gradient flow.
    pub eta: f64,
}

impl Params {
    /// The reference protocol of I-8: zhat = 1, eta = 1, u = r.
    pub fn reference(r: f64) -> Self {
        Params {
            u: r,
            zhat: 1.0,
            eta: 1.0,
        }
    }

    /// Input-driven emphasis r = u / zhat (I-5).
    pub fn r(&self) -> f64 {
        self.u / self.zhat
    }

    /// c = 1 - u / zhat = lambda_A, the self-coupling task A converges to (I-5, I-7).
    pub fn c(&self) -> f64 {
        1.0 - self.r()
    }

    /// Recurrent gain of the learned A state, G_A = 1 / (1 - lambda_A) = zhat / u (I-5).
    pub fn gain_a(&self) -> f64 {
        self.zhat / self.u
    }

    /// The state task A ends in (task A learned exactly, seed eps in both off-diagonals):
    /// M = [[1 - r, eps], [eps, 0]] (the starting point of task B in I-8).
    pub fn after_a(&self, eps: f64) -> Matrix2<f64> {
        from_entries(self.c(), eps, eps, 0.0)
    }

    /// The value s (or rho) at which s_eff makes z_BB = u / (1 - s_eff) reach zhat - tol.
    pub fn s_eff_target(&self, tol: f64) -> f64 {
        1.0 - self.u / (self.zhat - tol)
    }
}

/// M = [[lambda, p], [q, s]].
pub fn from_entries(lambda: f64, p: f64, q: f64, s: f64) -> Matrix2<f64> {
    Matrix2::new(lambda, p, q, s)
}

/// (lambda, p, q, s) of M.
pub fn entries(m: &Matrix2<f64>) -> (f64, f64, f64, f64) {
    (m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)])
}

/// D = (1 - lambda)(1 - s) - p q = det(I - M).
pub fn det_d(m: &Matrix2<f64>) -> f64 {
    let (l, p, q, s) = entries(m);
    (1.0 - l) * (1.0 - s) - p * q
}

fn check_d(m: &Matrix2<f64>, context: &str) -> Result<f64> {
    let d = det_d(m);
    if d.abs() < SINGULAR_D || !d.is_finite() {
        return Err(Error::Singular {
            context: context.to_string(),
            pivot: d.abs(),
            threshold: SINGULAR_D,
        });
    }
    Ok(d)
}

/// R = (I - M)^-1 = (1/D) [[1 - s, p], [q, 1 - lambda]]; `Singular` if |D| < [`SINGULAR_D`].
pub fn resolvent(m: &Matrix2<f64>) -> Result<Matrix2<f64>> {
    let d = check_d(m, "R = (I - M)^-1 of the linear 2x2 model")?;
    let (l, p, q, s) = entries(m);
    Ok(Matrix2::new(1.0 - s, p, q, 1.0 - l) / d)
}

/// The input-driven fixed point kappa_mu = u R e_mu of kappa' = -kappa + M kappa + u e_mu:
/// kappa_A = (u/D)(1 - s, q), kappa_B = (u/D)(p, 1 - lambda).
pub fn fixed_point(m: &Matrix2<f64>, u: f64, task: Task) -> Result<Vector2<f64>> {
    Ok(resolvent(m)?.column(task.index()) * u)
}

/// The four readouts of I.3: z_{nu mu} = e_nu . kappa_mu.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Readouts {
    /// z_AA = u (1 - s) / D: readout a on task A.
    pub z_aa: f64,
    /// z_BB = u (1 - lambda) / D: readout b on task B.
    pub z_bb: f64,
    /// z_BA = u q / D: readout b on task A.
    pub z_ba: f64,
    /// z_AB = u p / D: readout a on task B.
    pub z_ab: f64,
}

/// The readouts of both fixed points.
pub fn readouts(m: &Matrix2<f64>, u: f64) -> Result<Readouts> {
    let d = check_d(m, "readouts of the linear 2x2 model")?;
    let (l, p, q, s) = entries(m);
    Ok(Readouts {
        z_aa: u * (1.0 - s) / d,
        z_bb: u * (1.0 - l) / d,
        z_ba: u * q / d,
        z_ab: u * p / d,
    })
}

/// The rotation (two-factor) pathway of s_eff: p q / (1 - lambda) (I-6).
pub fn rotation_part(m: &Matrix2<f64>) -> f64 {
    let (l, p, q, _) = entries(m);
    p * q / (1.0 - l)
}

/// s_eff = s + p q / (1 - lambda), so that z_BB = u / (1 - s_eff) (I-6).
pub fn s_eff(m: &Matrix2<f64>) -> f64 {
    m[(1, 1)] + rotation_part(m)
}

/// H(y) = y^3/3 + (1 - c) y^2/2 + (1 - c)^2 y of I-7.
fn h_poly(y: f64, c: f64) -> f64 {
    let a = 1.0 - c;
    y * y * y / 3.0 + a * y * y / 2.0 + a * a * y
}

/// I-7, new formation alone (lambda = c, p = q = 0): the time for s to grow from 0 to `s`,
/// t_new(s) = [H(1) - H(1 - s) + (1 - c)^3 ln(c / (c - s))] / (eta u zhat).
/// Defined for 0 <= s < c; `Requirement` error otherwise.
pub fn t_new(s: f64, par: &Params) -> Result<f64> {
    let c = par.c();
    if !(0.0..c).contains(&s) {
        return Err(Error::Requirement(format!(
            "t_new(s) needs 0 <= s < c = {c} (got s = {s})"
        )));
    }
    let a = 1.0 - c;
    // ln(c/(c-s)) = -ln(1 - s/c), computed with ln_1p to keep digits for small s.
    let log = -(-s / c).ln_1p();
    Ok((h_poly(1.0, c) - h_poly(1.0 - s, c) + a * a * a * log) / (par.eta * par.u * par.zhat))
}

/// F(x) = x^2/2 + (c - 3) x + (1/c) ln x - ((1 - c)^3 / c) ln(c - x) of I-7.
fn f_rot(x: f64, c: f64) -> f64 {
    let a = 1.0 - c;
    x * x / 2.0 + (c - 3.0) * x + x.ln() / c - a * a * a / c * (c - x).ln()
}

/// I-7, rotation alone (balanced p = q, lambda frozen at c, s = 0). With
/// rho = p q / (1 - lambda) = G_A p^2 (the rotation part of s_eff, so z_BB = u / (1 - rho)),
/// I-6 reduces to rho' = 2 eta u G_A rho (zhat - u/(1 - rho)) / (1 - rho)^2, whose solution is
/// t_rot(rho) = [F(rho) - F(rho0)] / (2 eta u G_A zhat).
/// Defined for 0 < rho0 <= rho < c; `Requirement` error otherwise.
pub fn t_rot(rho: f64, rho0: f64, par: &Params) -> Result<f64> {
    let c = par.c();
    if !(rho0 > 0.0 && rho0 <= rho && rho < c) {
        return Err(Error::Requirement(format!(
            "t_rot(rho) needs 0 < rho0 <= rho < c = {c} (got rho0 = {rho0}, rho = {rho})"
        )));
    }
    Ok((f_rot(rho, c) - f_rot(rho0, c)) / (2.0 * par.eta * par.u * par.gain_a() * par.zhat))
}

/// E-2, the e-prop clock: the time the delta rule needs to move y = 1 - s_eff from `y0` to
/// `y1` when s_eff grows with weight k (k = 1 + p^2/(1 - lambda)^2 for the full e-prop flow of
/// task B, 1 for s alone, p^2/(1 - lambda)^2 for q alone; task A from M = 0 is the same with
/// y = 1 - lambda and k = 1). Under e-prop dy/dt = -eta u k (zhat - u/y)/y, so with c = u/zhat
///
///   t = [(y0^2 - y1^2)/2 + c (y0 - y1) + c^2 ln((y0 - c)/(y1 - c))] / (eta u zhat k).
///
/// Needs y0, y1 on the same side of c (the flow never crosses its fixed point y = c) and
/// k > 0; `Requirement` error otherwise.
pub fn t_eprop(y0: f64, y1: f64, k: f64, par: &Params) -> Result<f64> {
    let c = par.r();
    let (a0, a1) = (y0 - c, y1 - c);
    if !(k > 0.0 && a0 * a1 > 0.0 && a1.abs() <= a0.abs() && y1 > 0.0) {
        return Err(Error::Requirement(format!(
            "t_eprop needs k > 0 and y1 between y0 and c = u/zhat = {c} (got y0 = {y0}, y1 = {y1}, k = {k})"
        )));
    }
    let poly = (y0 - y1) * (y0 + y1) / 2.0 + c * (y0 - y1);
    Ok((poly + c * c * (a0 / a1).ln()) / (par.eta * par.u * par.zhat * k))
}

/// The closed-form e-prop task B of E-2 from M0 = [[lambda, p], [q0, s0]], own loss, until
/// |z_BB - zhat| = tol.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EpropTaskB {
    /// Learning time of B.
    pub t: f64,
    /// M after B: lambda, p unchanged, s = s0 + delta_s, q = q0 + p delta_s/(1 - lambda).
    pub m_after: [[f64; 2]; 2],
    /// I = L_A(after B) / L_A(M = 0).
    pub interference: f64,
    /// Rotation share p^2 / ((1 - lambda)^2 + p^2): constant along the whole path.
    pub rotation_share: f64,
    /// k = 1 + p^2 / (1 - lambda)^2: the weight with which s_eff moves per unit of s.
    pub k: f64,
}

/// E-2 in closed form. Under e-prop, task B (own loss) moves only row b:
/// q' = eta e u p/D, s' = eta e u (1 - lambda)/D, with lambda, p fixed, so the path is the line
/// dq/ds = p/(1 - lambda) and s_eff = s + p q/(1 - lambda) grows as k s. With y = 1 - s_eff,
/// D = (1 - lambda) y and dy/dt = -eta u k (zhat - u/y)/y ([`t_eprop`]). The end point is
/// y1 = u/(zhat - tol sgn e0), so delta s = (y0 - y1)/k. Needs 1 - lambda > 0 and a stable start
/// (y0 > 0).
pub fn eprop_task_b(m0: &Matrix2<f64>, par: &Params, tol: f64) -> Result<EpropTaskB> {
    let (l, p, q0, s0) = entries(m0);
    let a = 1.0 - l;
    let y0 = 1.0 - s_eff(m0);
    if !(a > 0.0 && y0 > 0.0) {
        return Err(Error::Requirement(format!(
            "the e-prop closed form needs 1 - lambda > 0 and 1 - s_eff > 0 (got {a}, {y0})"
        )));
    }
    let z0 = par.u / y0;
    let sign = if par.zhat > z0 { 1.0 } else { -1.0 };
    let y1 = par.u / (par.zhat - sign * tol);
    let k = 1.0 + (p / a) * (p / a);
    let t = t_eprop(y0, y1, k, par)?;
    let ds = (y0 - y1) / k;
    let m1 = from_entries(l, p, q0 + p / a * ds, s0 + ds);
    let z = readouts(&m1, par.u)?;
    let la0 = (par.zhat - par.u).powi(2);
    Ok(EpropTaskB {
        t,
        m_after: [[l, p], [m1[(1, 0)], m1[(1, 1)]]],
        interference: (par.zhat - z.z_aa).powi(2) / la0,
        rotation_share: (p / a) * (p / a) / k,
        k,
    })
}

/// The race margin of I-8, (r/2) ln(r (1 - r) / eps^2) - (1 - r): negative when rotation wins.
///
/// Its origin: rotation grows rho from rho0 = eps^2 / r at the initial exponential rate
/// 2 eta zhat^2 c, so it needs about ln(r c / eps^2) / (2 eta zhat^2 c); new formation moves s at
/// the initial speed eta u zhat c and needs s ~ c, about 1 / (eta u zhat). Rotation wins when it
/// is faster: (r/2) ln(r (1 - r) / eps^2) < 1 - r.
pub fn race_margin(r: f64, eps: f64) -> f64 {
    0.5 * r * (r * (1.0 - r) / (eps * eps)).ln() - (1.0 - r)
}

/// Bracket tolerance of [`r_star`]: far below the 0.01 resolution of the I-8 table and far
/// above rounding (the margin has slope O(1) at the root).
pub const R_STAR_XTOL: f64 = 1e-12;

/// The upper end of the bracket for the lower root of the race margin: the first point where
/// rotation is predicted to lose. `None` if the margin is negative on all of (0, 1) (then
/// rotation wins at every r).
fn r_star_upper(eps: f64) -> Option<f64> {
    // Fast path: for eps < 0.5/e ~ 0.18 the margin at r = 1/2 is positive.
    if race_margin(0.5, eps) > 0.0 {
        return Some(0.5);
    }
    // The margin has one interior maximum on (eps^2 e^-3, 1): its derivative
    // L/2 + 3/2 - r/(2(1 - r)) has a single turning point. Golden-section search for it.
    let g = 0.5 * (5f64.sqrt() - 1.0);
    let (mut a, mut b) = (eps * eps, 1.0 - 1e-12);
    let mut x1 = b - g * (b - a);
    let mut x2 = a + g * (b - a);
    let (mut f1, mut f2) = (race_margin(x1, eps), race_margin(x2, eps));
    for _ in 0..80 {
        if f1 > 0.0 {
            return Some(x1);
        }
        if f2 > 0.0 {
            return Some(x2);
        }
        if f1 > f2 {
            b = x2;
            x2 = x1;
            f2 = f1;
            x1 = b - g * (b - a);
            f1 = race_margin(x1, eps);
        } else {
            a = x1;
            x1 = x2;
            f1 = f2;
            x2 = a + g * (b - a);
            f2 = race_margin(x2, eps);
        }
    }
    None
}

/// I-8 crossover r*(eps): the lower root of the race margin, below which rotation wins
/// (by the criterion). `Ok(None)` when the margin never turns positive (rotation wins at every
/// r; happens for eps above 0.3124). Uses [`crate::num::optim::brent_root`].
///
/// The margin also turns negative again as r -> 1 (where r (1 - r) < eps^2 e^{2(1-r)/r}); that
/// upper root lies where task B starts solved or nearly so and is not a crossover of the race.
pub fn r_star(eps: f64) -> Result<Option<f64>> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::Requirement(format!(
            "r*(eps) needs a finite eps > 0 (got {eps})"
        )));
    }
    let Some(hi) = r_star_upper(eps) else {
        return Ok(None);
    };
    // At r = 1e-300 the margin is -1 + O(1e-297): safely negative.
    let lo = 1e-300;
    crate::num::optim::brent_root(|r| race_margin(r, eps), lo, hi, R_STAR_XTOL).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn par() -> Params {
        Params {
            u: 0.3,
            zhat: 1.2,
            eta: 0.8,
        }
    }

    #[test]
    fn resolvent_inverts_i_minus_m() {
        let m = from_entries(0.4, -0.3, 0.7, 0.2);
        let r = resolvent(&m).unwrap();
        let id = r * (Matrix2::identity() - m);
        assert!((id - Matrix2::identity()).amax() < 1e-15);
        assert_relative_eq!(
            det_d(&m),
            (Matrix2::identity() - m).determinant(),
            epsilon = 1e-15
        );
    }

    #[test]
    fn singular_i_minus_m_is_an_error() {
        let m = from_entries(1.0, 0.0, 0.3, 0.5); // D = 0
        assert!(matches!(resolvent(&m), Err(Error::Singular { .. })));
        assert!(matches!(readouts(&m, 0.3), Err(Error::Singular { .. })));
        assert!(matches!(
            fixed_point(&m, 0.3, Task::A),
            Err(Error::Singular { .. })
        ));
    }

    #[test]
    fn readouts_are_the_fixed_point_components() {
        let m = from_entries(0.4, -0.3, 0.7, 0.2);
        let z = readouts(&m, 0.3).unwrap();
        let ka = fixed_point(&m, 0.3, Task::A).unwrap();
        let kb = fixed_point(&m, 0.3, Task::B).unwrap();
        for (k, z) in [
            (ka[0], z.z_aa),
            (ka[1], z.z_ba),
            (kb[0], z.z_ab),
            (kb[1], z.z_bb),
        ] {
            assert_relative_eq!(k, z, max_relative = 1e-15);
        }
        // z_BB = u / (1 - s_eff)
        assert_relative_eq!(z.z_bb, 0.3 / (1.0 - s_eff(&m)), max_relative = 1e-14);
    }

    #[test]
    fn t_new_is_the_integral_of_one_over_s_dot() {
        // dt/ds = (1 - s)^3 / (eta u zhat (c - s)) from s' = eta u zhat (c - s) / (1 - s)^3.
        let p = par();
        let c = p.c();
        assert_eq!(t_new(0.0, &p).unwrap(), 0.0);
        for s in [0.1, 0.3, 0.5 * c, 0.9 * c] {
            let h = 1e-6;
            let num = (t_new(s + h, &p).unwrap() - t_new(s - h, &p).unwrap()) / (2.0 * h);
            let exact = (1.0 - s).powi(3) / (p.eta * p.u * p.zhat * (c - s));
            assert_relative_eq!(num, exact, max_relative = 1e-8);
        }
        assert!(t_new(c, &p).is_err());
        assert!(t_new(-0.1, &p).is_err());
    }

    #[test]
    fn t_rot_is_the_integral_of_one_over_rho_dot() {
        // rho' = 2 eta u G_A zhat rho (c - rho) / (1 - rho)^3.
        let p = par();
        let c = p.c();
        let rho0 = 1e-3;
        assert_eq!(t_rot(rho0, rho0, &p).unwrap(), 0.0);
        for rho in [0.01, 0.2, 0.5 * c, 0.95 * c] {
            let h = 1e-7;
            let num =
                (t_rot(rho + h, rho0, &p).unwrap() - t_rot(rho - h, rho0, &p).unwrap()) / (2.0 * h);
            let exact =
                (1.0 - rho).powi(3) / (2.0 * p.eta * p.u * p.gain_a() * p.zhat * rho * (c - rho));
            assert_relative_eq!(num, exact, max_relative = 1e-6);
        }
        assert!(t_rot(c, rho0, &p).is_err());
        assert!(t_rot(0.1, 0.0, &p).is_err());
    }

    #[test]
    fn r_star_reproduces_the_i8_table() {
        for (eps, expected) in [(0.01, 0.21), (0.03, 0.27), (0.05, 0.31), (0.1, 0.39)] {
            let rs = r_star(eps).unwrap().unwrap();
            assert!((rs - expected).abs() <= 0.005, "eps {eps}: r* = {rs}");
            assert!(race_margin(rs, eps).abs() < 1e-10);
            assert!(race_margin(rs - 0.01, eps) < 0.0 && race_margin(rs + 0.01, eps) > 0.0);
        }
    }

    #[test]
    fn r_star_for_large_seeds() {
        // eps = 0.19 > 0.5/e: the margin at r = 1/2 is negative but its maximum is positive.
        let rs = r_star(0.19).unwrap().unwrap();
        assert!(race_margin(rs, 0.19).abs() < 1e-10);
        // eps = 0.3 is just below the threshold 0.3124 above which no crossover exists.
        let rs = r_star(0.3).unwrap().unwrap();
        assert!(race_margin(rs, 0.3).abs() < 1e-10 && rs > 0.6);
        // eps = 0.32: the margin is negative everywhere (rotation predicted at every r).
        assert_eq!(r_star(0.32).unwrap(), None);
        assert!((1..1000).all(|k| race_margin(k as f64 / 1000.0, 0.32) < 0.0));
        assert!(r_star(0.0).is_err());
        assert!(r_star(f64::NAN).is_err());
    }
}
