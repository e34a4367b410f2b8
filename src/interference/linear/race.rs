//! The race between rotation and new formation measured on the full I-6 flow (I-8): which
//! pathway carries the change of s_eff, the full-ODE crossover in r, and the (r, eps)
//! interference grid.

use rayon::prelude::*;
use serde::Serialize;

use super::closed::{self, Params};
use super::flow::{self, Rule, TaskB};
use crate::num::ode::OdeOptions;
use crate::{Error, Result};

/// The learning mode that carries most of the change of s_eff during task B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The two-factor pathway p q / (1 - lambda): A's fixed point is rotated toward b.
    Rotation,
    /// The one-factor pathway s: a new input-driven state forms along b.
    NewFormation,
}

impl Mode {
    /// The winner by rotation share (rotation if it carries more than half of delta s_eff).
    pub fn from_share(rotation_share: f64) -> Mode {
        if rotation_share > 0.5 {
            Mode::Rotation
        } else {
            Mode::NewFormation
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Rotation => "rotation",
            Mode::NewFormation => "new formation",
        }
    }
}

/// Whether the reference protocol is defined at (r, eps): 0 < r < 1 and
/// 0 < eps < sqrt(r (1 - r)) (otherwise the seed alone already reads out z_BB >= zhat, or
/// I - M is singular).
pub fn valid_point(r: f64, eps: f64) -> bool {
    r > 0.0 && r < 1.0 && eps > 0.0 && eps * eps < r * (1.0 - r)
}

/// Task B on the reference protocol (zhat = 1, eta = 1) at (r, eps).
pub fn reference_task_b(r: f64, eps: f64, tol: f64, opts: &OdeOptions) -> Result<TaskB> {
    if !valid_point(r, eps) {
        return Err(Error::Requirement(format!(
            "reference protocol undefined at r = {r}, eps = {eps} (needs 0 < r < 1, 0 < eps < sqrt(r(1-r)))"
        )));
    }
    flow::task_b(&Params::reference(r), eps, tol, opts)
}

/// Tolerance in r of the full-ODE crossover: 1e-6 is far below the spacing of any reported r
/// and far above the ~1e-8 noise of the rotation share from the integrator (rtol 1e-9).
pub const CROSSOVER_XTOL: f64 = 1e-6;

/// The full-ODE crossover at seed eps: the r at which rotation carries exactly half of the
/// change of s_eff. `Ok(None)` if the share does not cross 1/2 on the valid r range above
/// r = 1e-3.
///
/// The share falls with r, and the crossover lies near the closed-form r*(eps) of the I-8
/// criterion (0.267 against 0.31 at eps = 0.05). The search starts there: the share at
/// r*(eps), then steps of 5 %, 10 %, 20 %, ... of r outwards in the direction of the sign until
/// the sign changes, then Brent on that bracket (typically 2-3 task-B solves before Brent
/// instead of a scan of 33). Where r*(eps) does not exist (eps > 0.3124), a solve fails inside
/// the walk, or the walk reaches the end of the valid range, it falls back to the geometric
/// scan of the whole range from below (which finds the first crossing if there were several).
pub fn crossover_ode(eps: f64, tol: f64) -> Result<Option<f64>> {
    crossover_ode_rule(eps, tol, Rule::Gradient)
}

/// [`crossover_ode`] for the flow of a learning rule. The walk starts at the rule's closed-form
/// crossover: the I-8 criterion's r*(eps) for the gradient flow, r* = eps for e-prop (E-2;
/// none for eps >= 1/2).
pub fn crossover_ode_rule(eps: f64, tol: f64, rule: Rule) -> Result<Option<f64>> {
    let opts = flow::ode_options();
    let share = |r: f64| -> f64 {
        if !valid_point(r, eps) {
            return f64::NAN;
        }
        flow::task_b_rule(&Params::reference(r), eps, rule, tol, &opts)
            .map(|b| b.rotation_share - 0.5)
            .unwrap_or(f64::NAN)
    };
    // Valid r: r (1 - r) > eps^2, i.e. between the roots of r^2 - r + eps^2.
    let disc = (0.25 - eps * eps).max(0.0).sqrt();
    let (lo, hi) = (0.5 - disc, 0.5 + disc);
    if hi - lo < 1e-6 {
        return Ok(None);
    }
    let (a, b) = ((lo * 1.001).max(1e-3), hi * 0.999);
    let r0 = match rule {
        Rule::Gradient => closed::r_star(eps).ok().flatten(),
        Rule::Eprop => (eps < 0.5).then_some(eps),
    };
    if let Some(r0) = r0 {
        if let Some((x0, x1)) = bracket_from(&share, r0.clamp(a, b), a, b) {
            return crate::num::optim::brent_root(share, x0, x1, CROSSOVER_XTOL).map(Some);
        }
    }
    scan(share, a, b)
}

/// The geometric scan of [a, b] from below (33 points; the crossover moves towards small r as
/// eps shrinks) for the first sign change of the falling `share`, then Brent.
fn scan(share: impl Fn(f64) -> f64, a: f64, b: f64) -> Result<Option<f64>> {
    let n = 32;
    let mut prev: Option<(f64, f64)> = None;
    for k in 0..=n {
        let r = a * (b / a).powf(k as f64 / n as f64);
        let f = share(r);
        if !f.is_finite() {
            continue;
        }
        if let Some((r0, f0)) = prev {
            if f0 > 0.0 && f <= 0.0 {
                return crate::num::optim::brent_root(share, r0, r, CROSSOVER_XTOL).map(Some);
            }
        }
        prev = Some((r, f));
    }
    Ok(None)
}

/// A bracket [x0, x1] (x0 < x1, f(x0) > 0 >= f(x1)) of a falling f found by walking out of r0
/// with relative steps 5 %, 10 %, 20 %, ... inside [a, b]; `None` if a value is not finite or
/// the walk reaches a or b first.
fn bracket_from(f: &impl Fn(f64) -> f64, r0: f64, a: f64, b: f64) -> Option<(f64, f64)> {
    let f0 = f(r0);
    if !f0.is_finite() {
        return None;
    }
    let up = f0 > 0.0;
    let (mut x, mut step) = (r0, 0.05);
    loop {
        let next = if up {
            (x * (1.0 + step)).min(b)
        } else {
            (x / (1.0 + step)).max(a)
        };
        let fx = f(next);
        if !fx.is_finite() {
            return None;
        }
        if up && fx <= 0.0 {
            return Some((x, next));
        }
        if !up && fx > 0.0 {
            return Some((next, x));
        }
        if next == a || next == b {
            return None;
        }
        x = next;
        step *= 2.0;
    }
}

/// `n` evenly spaced points on [lo, hi].
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![lo],
        _ => (0..n)
            .map(|k| lo + (hi - lo) * k as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// `n` log-spaced points on [lo, hi] (lo, hi > 0).
pub fn logspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    linspace(lo.ln(), hi.ln(), n)
        .into_iter()
        .map(f64::exp)
        .collect()
}

/// The default axes of the interference phase diagram: r on [0.05, 0.95] (linear),
/// eps on [0.005, 0.2] (log), `n` points each. Every point is valid (eps < sqrt(r(1-r))).
pub fn default_axes(n: usize) -> (Vec<f64>, Vec<f64>) {
    (linspace(0.05, 0.95, n), logspace(0.005, 0.2, n))
}

/// Interference I, rotation share and learning time of B over an (r, eps) grid, from the full
/// I-6 flow on the reference protocol. Matrices are indexed `[i_eps][i_r]`; `None` marks a point
/// where the protocol is undefined (eps >= sqrt(r(1-r))) or the flow failed (counted in
/// `failures`, first message in `first_failure`).
#[derive(Debug, Clone, Serialize)]
pub struct InterferenceGrid {
    pub r: Vec<f64>,
    pub eps: Vec<f64>,
    /// Tolerance |z_BB - zhat| at which B counts as learned.
    pub tolerance: f64,
    /// I = L_A(after B) / L_A(M = 0).
    pub interference: Vec<Vec<Option<f64>>>,
    /// Share of delta s_eff carried by rotation.
    pub rotation_share: Vec<Vec<Option<f64>>>,
    /// Learning time of B.
    pub t_b: Vec<Vec<Option<f64>>>,
    /// The I-8 race margin (r/2) ln(r(1-r)/eps^2) - (1 - r) (negative: rotation predicted).
    pub race_margin: Vec<Vec<Option<f64>>>,
    /// r*(eps) from the criterion, per eps.
    pub r_star: Vec<Option<f64>>,
    pub failures: usize,
    pub first_failure: Option<String>,
}

impl InterferenceGrid {
    /// The grid as CSV (one line per defined point): r, eps, interference, rotation_share, t_b,
    /// race_margin. Undefined or failed points are left out.
    pub fn csv(&self) -> String {
        let mut rows = Vec::new();
        for (i, &e) in self.eps.iter().enumerate() {
            for (j, &r) in self.r.iter().enumerate() {
                if let (Some(x), Some(sh), Some(t), Some(m)) = (
                    self.interference[i][j],
                    self.rotation_share[i][j],
                    self.t_b[i][j],
                    self.race_margin[i][j],
                ) {
                    rows.push(vec![r, e, x, sh, t, m]);
                }
            }
        }
        crate::io::csv(
            &[
                "r",
                "eps",
                "interference",
                "rotation_share",
                "t_b",
                "race_margin",
            ],
            rows,
        )
    }
}

/// The (r, eps) interference grid, rows over `eps`, columns over `r`, computed in parallel
/// (rayon, one task per point).
pub fn interference_grid(r: &[f64], eps: &[f64], tol: f64) -> Result<InterferenceGrid> {
    if !(tol > 0.0 && tol < 1.0) {
        return Err(Error::Requirement(format!(
            "interference grid: tolerance must lie in (0, 1), got {tol}"
        )));
    }
    let opts = flow::ode_options();
    let points: Vec<(usize, usize)> = (0..eps.len())
        .flat_map(|i| (0..r.len()).map(move |j| (i, j)))
        .collect();
    let results: Vec<Option<Result<TaskB>>> = points
        .par_iter()
        .map(|&(i, j)| {
            valid_point(r[j], eps[i]).then(|| reference_task_b(r[j], eps[i], tol, &opts))
        })
        .collect();
    let mut grid = InterferenceGrid {
        r: r.to_vec(),
        eps: eps.to_vec(),
        tolerance: tol,
        interference: vec![vec![None; r.len()]; eps.len()],
        rotation_share: vec![vec![None; r.len()]; eps.len()],
        t_b: vec![vec![None; r.len()]; eps.len()],
        race_margin: vec![vec![None; r.len()]; eps.len()],
        r_star: Vec::with_capacity(eps.len()),
        failures: 0,
        first_failure: None,
    };
    for (&(i, j), res) in points.iter().zip(results) {
        match res {
            None => {}
            Some(Ok(b)) => {
                grid.interference[i][j] = Some(b.interference);
                grid.rotation_share[i][j] = Some(b.rotation_share);
                grid.t_b[i][j] = Some(b.t);
                grid.race_margin[i][j] = Some(closed::race_margin(r[j], eps[i]));
            }
            Some(Err(e)) => {
                grid.failures += 1;
                if grid.first_failure.is_none() {
                    grid.first_failure = Some(format!("r = {}, eps = {}: {e}", r[j], eps[i]));
                }
            }
        }
    }
    for &e in eps {
        grid.r_star
            .push(if e > 0.0 { closed::r_star(e)? } else { None });
    }
    Ok(grid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes() {
        assert_eq!(linspace(0.0, 1.0, 3), vec![0.0, 0.5, 1.0]);
        let l = logspace(0.01, 1.0, 3);
        assert!((l[1] - 0.1).abs() < 1e-15 && (l[2] - 1.0).abs() < 1e-15);
        let (r, e) = default_axes(100);
        assert!(r.iter().all(|&r| e.iter().all(|&e| valid_point(r, e))));
    }

    #[test]
    fn small_grid_matches_single_runs() {
        let r = [0.2, 0.5, 0.99];
        let eps = [0.05, 0.4];
        let g = interference_grid(&r, &eps, 1e-6).unwrap();
        assert_eq!(g.failures, 0);
        let one = reference_task_b(0.5, 0.05, 1e-6, &flow::ode_options()).unwrap();
        assert_eq!(g.interference[0][1], Some(one.interference));
        assert_eq!(g.rotation_share[0][1], Some(one.rotation_share));
        // r = 0.99, eps = 0.4: eps^2 > r(1-r), undefined; no r* above eps = 0.3124.
        assert_eq!(g.interference[1][2], None);
        assert!(g.r_star[0].is_some() && g.r_star[1].is_none());
        let csv = g.csv();
        assert_eq!(csv.lines().count(), 1 + 4); // header + 4 defined points
        assert!(csv.starts_with("r,eps,interference,rotation_share,t_b,race_margin\n"));
    }

    #[test]
    fn rotation_share_falls_with_r_and_crosses_half_at_eps_005() {
        let opts = flow::ode_options();
        let shares: Vec<f64> = [0.15, 0.25, 0.35, 0.5]
            .iter()
            .map(|&r| {
                reference_task_b(r, 0.05, 1e-6, &opts)
                    .unwrap()
                    .rotation_share
            })
            .collect();
        assert!(shares.windows(2).all(|w| w[1] < w[0]), "{shares:?}");
        let x = crossover_ode(0.05, 1e-6).unwrap().unwrap();
        assert!((0.25..0.30).contains(&x), "crossover {x}");
        // The walk from r*(eps) and the scan from below bracket the same root.
        let share = |r: f64| {
            reference_task_b(r, 0.05, 1e-6, &opts)
                .map(|b| b.rotation_share - 0.5)
                .unwrap_or(f64::NAN)
        };
        let r0 = closed::r_star(0.05).unwrap().unwrap();
        let (x0, x1) = bracket_from(&share, r0, 1e-3, 0.99).unwrap();
        assert!(x0 < x && x <= x1 && x1 / x0 < 1.21, "[{x0}, {x1}] vs {x}");
        let at = reference_task_b(x, 0.05, 1e-6, &opts)
            .unwrap()
            .rotation_share;
        assert!((at - 0.5).abs() < 1e-5);
    }

    #[test]
    fn crossover_from_the_criterion_bracket_equals_the_scan() {
        // Both end in Brent to CROSSOVER_XTOL on brackets of the same single root: they agree
        // to 2 CROSSOVER_XTOL (or both find none).
        let opts = flow::ode_options();
        for eps in [0.01, 0.03, 0.05, 0.1, 0.2, 0.3] {
            let share = |r: f64| {
                reference_task_b(r, eps, 1e-6, &opts)
                    .map(|b| b.rotation_share - 0.5)
                    .unwrap_or(f64::NAN)
            };
            let disc = (0.25 - eps * eps).sqrt();
            let (a, b) = (((0.5 - disc) * 1.001).max(1e-3), (0.5 + disc) * 0.999);
            let by_scan = scan(share, a, b).unwrap();
            let by_walk = crossover_ode(eps, 1e-6).unwrap();
            match (by_scan, by_walk) {
                (Some(x), Some(y)) => {
                    assert!(
                        (x - y).abs() <= 2.0 * CROSSOVER_XTOL,
                        "eps {eps}: {x} vs {y}"
                    )
                }
                (x, y) => assert_eq!(x, y, "eps {eps}"),
            }
        }
    }
}
