//! The talk's claims T1–T5 (THEORY I.0) as maps over (u_s, T_d, g), in the gradient-flow limit,
//! with seeds as samples (THEORY I.7).
//!
//! A map point is an `rnn` model (working memory, sequential A -> B) run exactly as
//! `modeflow train` runs it ([`super::report::train_spec`]); the map only sets u_s, T_d and g of
//! a base spec. Per seed it keeps interference I, the seed covariate eps, the flow times tau_A,
//! tau_B and the mode by I.7's rule: the A fixed point rotated by more than 45 degrees in the
//! readout plane is a **rotation**, less is a **new formation**, and a seed whose fixed points
//! Newton could not resolve (slow orbits, a continuum of fixed points) is **unresolved**, never
//! guessed.
//!
//! Each claim is judged per region by an interval rule ([`Region`]): the claim's statistic with
//! its 95% bootstrap interval over seeds against the claim's threshold. It **holds** where the
//! whole interval lies on the claim's side, **fails** where the whole interval lies on the other
//! side, and is **undetermined** where the interval straddles the threshold. Paired statistics
//! (the same seed at two grid points: the same patterns, W0 and trial noise) give the
//! comparisons of T-2..T-5.

use rayon::prelude::*;
use serde::Serialize;

use super::report::train_spec;
use super::spec::RnnSpec;
use super::task::Task;
use crate::num::stats::{self, Bootstrap, Estimate, Statistic, Summary};
use crate::{Error, Result};

/// I.7's threshold between a new formation and a rotation: 45 degrees in the readout plane.
pub const ROTATION_ANGLE: f64 = std::f64::consts::FRAC_PI_4;
/// T-1's threshold of forgetting: A's loss after B is at least 10% of its untrained loss.
pub const FORGETTING: f64 = 0.1;
/// T-5's "strongly accelerates" and "barely affects": a factor of 2 in flow time.
pub const SPEED_FACTOR: f64 = 2.0;
/// Seed of every bootstrap of the maps (common random numbers across points).
pub const BOOTSTRAP_SEED: u64 = 0x7_a95;

/// The grid of a map.
#[derive(Debug, Clone, Serialize)]
pub struct MapGrid {
    pub u_s: Vec<f64>,
    pub t_d: Vec<f64>,
    pub g: Vec<f64>,
}

/// A map: a base spec (working memory, sequential, its seeds) and the grid.
#[derive(Debug, Clone, Serialize)]
pub struct MapSpec {
    pub base: RnnSpec,
    pub grid: MapGrid,
}

/// The learning mode of one seed (I.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Rotation,
    NewFormation,
    Unresolved,
}

/// One seed of a map point.
#[derive(Debug, Clone, Serialize)]
pub struct SeedOutcome {
    pub seed: u64,
    pub interference: f64,
    pub eps: f64,
    pub tau_a: f64,
    pub tau_b: f64,
    pub converged: bool,
    /// Rotation angle of the A fixed point (None: unresolved).
    pub theta: Option<f64>,
    pub mode: Mode,
}

/// One grid point over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct PointOutcome {
    pub u_s: f64,
    pub t_d: f64,
    pub g: f64,
    pub seeds: Vec<SeedOutcome>,
    /// I over seeds (median and geometric mean for this heavy-tailed ratio).
    pub interference: Summary,
    /// Share of rotations among the resolved seeds (Wilson interval); None if none resolved.
    pub rotation_share: Option<Estimate>,
    pub unresolved: usize,
    /// eps over seeds (the covariate).
    pub eps: Summary,
    pub tau_a: Summary,
    pub tau_b: Summary,
}

/// A whole map, points in grid order (u_s outermost, then T_d, then g).
#[derive(Debug, Clone, Serialize)]
pub struct MapOutcome {
    pub spec: MapSpec,
    pub points: Vec<PointOutcome>,
}

/// The base spec with u_s, T_d and g set (the working-memory task of A and of B).
pub fn point_spec(base: &RnnSpec, u_s: f64, t_d: f64, g: f64) -> Result<RnnSpec> {
    let Task::WorkingMemory(mut w) = base.task else {
        return Err(Error::Requirement(
            "a T-map needs a working-memory task A (kind rnn, [task] family = \"working_memory\")"
                .into(),
        ));
    };
    if base.task_b.is_some() && base.working_memory().is_none() {
        return Err(Error::Requirement(
            "a T-map runs the same working-memory task on a, then on b (one [task] table)".into(),
        ));
    }
    w.u_s = u_s;
    w.t_d = t_d;
    let mut spec = base.clone();
    spec.task = Task::WorkingMemory(w);
    spec.task_b = None;
    spec.network.g = g;
    spec.fixed_points = true;
    Ok(spec)
}

/// Mode of one run from its fixed-point tracking (I.7's 45-degree rule).
pub fn mode_of(theta: Option<f64>) -> Mode {
    match theta {
        Some(t) if t.is_finite() && t > ROTATION_ANGLE => Mode::Rotation,
        Some(t) if t.is_finite() => Mode::NewFormation,
        _ => Mode::Unresolved,
    }
}

/// Run one point: `modeflow train` on the point's spec, then the per-seed outcomes and their
/// summaries.
pub fn run_point(spec: RnnSpec) -> Result<PointOutcome> {
    let Task::WorkingMemory(w) = spec.task else {
        return Err(Error::Requirement(
            "a T-map point needs working memory".into(),
        ));
    };
    let (u_s, t_d, g) = (w.u_s, w.t_d, spec.network.g);
    let report = train_spec(spec)?;
    let mut seeds = Vec::with_capacity(report.runs.len());
    for run in &report.runs {
        let Some(s) = &run.sequential else {
            return Err(Error::Requirement(
                "a T-map point runs the sequential protocol".into(),
            ));
        };
        let theta = run.tracking.as_ref().map(|t| t.theta);
        seeds.push(SeedOutcome {
            seed: run.seed,
            interference: s.interference,
            eps: s.eps,
            tau_a: s.tau_a,
            tau_b: s.tau_b,
            converged: s.converged_a && s.converged_b,
            theta,
            mode: mode_of(theta),
        });
    }
    summarise(u_s, t_d, g, seeds)
}

fn summarise(u_s: f64, t_d: f64, g: f64, seeds: Vec<SeedOutcome>) -> Result<PointOutcome> {
    let boot = Bootstrap::new(BOOTSTRAP_SEED);
    let col = |f: fn(&SeedOutcome) -> f64| -> Vec<f64> { seeds.iter().map(f).collect() };
    let resolved: Vec<bool> = seeds
        .iter()
        .filter(|s| s.mode != Mode::Unresolved)
        .map(|s| s.mode == Mode::Rotation)
        .collect();
    let rotation_share = if resolved.is_empty() {
        None
    } else {
        Some(stats::share(&resolved)?)
    };
    Ok(PointOutcome {
        u_s,
        t_d,
        g,
        interference: Summary::of(&col(|s| s.interference), &boot)?,
        rotation_share,
        unresolved: seeds.len() - resolved.len(),
        eps: Summary::of(&col(|s| s.eps), &boot)?,
        tau_a: Summary::of(&col(|s| s.tau_a), &boot)?,
        tau_b: Summary::of(&col(|s| s.tau_b), &boot)?,
        seeds,
    })
}

/// Run every point of the map (points in parallel, collected in grid order: the result does not
/// depend on the number of threads).
pub fn run_map(spec: &MapSpec) -> Result<MapOutcome> {
    let mut specs = Vec::new();
    for &u_s in &spec.grid.u_s {
        for &t_d in &spec.grid.t_d {
            for &g in &spec.grid.g {
                specs.push(point_spec(&spec.base, u_s, t_d, g)?);
            }
        }
    }
    let points = specs
        .into_par_iter()
        .map(run_point)
        .collect::<Result<Vec<_>>>()?;
    Ok(MapOutcome {
        spec: spec.clone(),
        points,
    })
}

impl MapOutcome {
    /// The point at (u_s, T_d, g), if on the grid.
    pub fn point(&self, u_s: f64, t_d: f64, g: f64) -> Option<&PointOutcome> {
        self.points
            .iter()
            .find(|p| p.u_s == u_s && p.t_d == t_d && p.g == g)
    }
}

/// How a claim stands in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    Holds,
    Fails,
    Undetermined,
}

impl Standing {
    pub fn name(self) -> &'static str {
        match self {
            Standing::Holds => "holds",
            Standing::Fails => "fails",
            Standing::Undetermined => "undetermined",
        }
    }
}

/// One region's verdict: the claim says `statistic > threshold` (or, with `within`, that
/// |statistic| < threshold).
#[derive(Debug, Clone, Serialize)]
pub struct Region {
    /// Claim id, e.g. `T-2`.
    pub claim: &'static str,
    /// Where and what, e.g. `T_d=10 g=0.5: ln I(u_s=0)/I(u_s=0.3)`.
    pub label: String,
    pub estimate: Estimate,
    pub threshold: f64,
    /// The claim is `|statistic| < threshold` instead of `statistic > threshold`.
    pub within: bool,
    pub standing: Standing,
    /// Seeds used and seeds dropped (unresolved modes).
    pub dropped: usize,
}

/// The interval rule: holds when the whole 95% interval is on the claim's side of the
/// threshold, fails when it is wholly on the other side, undetermined when it straddles.
pub fn standing(est: &Estimate, threshold: f64, within: bool) -> Standing {
    if !(est.lo.is_finite() && est.hi.is_finite()) {
        return Standing::Undetermined;
    }
    if within {
        if est.lo > -threshold && est.hi < threshold {
            Standing::Holds
        } else if est.lo >= threshold || est.hi <= -threshold {
            Standing::Fails
        } else {
            Standing::Undetermined
        }
    } else if est.lo > threshold {
        Standing::Holds
    } else if est.hi <= threshold {
        Standing::Fails
    } else {
        Standing::Undetermined
    }
}

fn region(
    claim: &'static str,
    label: String,
    sample: &[f64],
    stat: Statistic,
    threshold: f64,
    within: bool,
    dropped: usize,
) -> Result<Region> {
    let est = stats::bootstrap(sample, stat, &Bootstrap::new(BOOTSTRAP_SEED))?;
    Ok(Region {
        claim,
        label,
        standing: standing(&est, threshold, within),
        estimate: est,
        threshold,
        within,
        dropped,
    })
}

/// Per-seed pairs of two points (same seeds, in order).
fn paired<'a>(
    p: &'a PointOutcome,
    q: &'a PointOutcome,
) -> impl Iterator<Item = (&'a SeedOutcome, &'a SeedOutcome)> {
    p.seeds
        .iter()
        .zip(&q.seeds)
        .filter(|(x, y)| x.seed == y.seed)
}

fn ln_ratio(p: &PointOutcome, q: &PointOutcome, f: fn(&SeedOutcome) -> f64) -> Vec<f64> {
    paired(p, q).map(|(x, y)| (f(x) / f(y)).ln()).collect()
}

/// Per-seed difference of a mode indicator between p and q, over seeds resolved at both.
fn mode_difference(p: &PointOutcome, q: &PointOutcome, mode: Mode) -> (Vec<f64>, usize) {
    let mut d = Vec::new();
    let mut dropped = 0;
    for (x, y) in paired(p, q) {
        if x.mode == Mode::Unresolved || y.mode == Mode::Unresolved {
            dropped += 1;
            continue;
        }
        let ind = |s: &SeedOutcome| if s.mode == mode { 1.0 } else { 0.0 };
        d.push(ind(x) - ind(y));
    }
    (d, dropped)
}

fn at(map: &MapOutcome, u_s: f64, t_d: f64, g: f64) -> Result<&PointOutcome> {
    map.point(u_s, t_d, g).ok_or_else(|| {
        Error::Requirement(format!(
            "T-map: no point at u_s = {u_s}, T_d = {t_d}, g = {g}"
        ))
    })
}

/// T-1: forgetting occurs for orthogonal patterns: median I > [`FORGETTING`] at each point.
pub fn t1(map: &MapOutcome) -> Result<Vec<Region>> {
    map.points
        .iter()
        .map(|p| {
            let i: Vec<f64> = p.seeds.iter().map(|s| s.interference).collect();
            region(
                "T-1",
                format!("u_s={} T_d={} g={}: median I", p.u_s, p.t_d, p.g),
                &i,
                Statistic::Median,
                FORGETTING,
                false,
                0,
            )
        })
        .collect()
}

/// T-2: interference grows with the emphasis on autonomous over input-driven dynamics: per
/// (T_d, g), the paired median of ln I(u_s = lowest) / I(u_s = highest) > 0.
pub fn t2(map: &MapOutcome) -> Result<Vec<Region>> {
    let grid = &map.spec.grid;
    let (lo, hi) = u_s_ends(grid)?;
    let mut out = Vec::new();
    for &t_d in &grid.t_d {
        for &g in &grid.g {
            let (p, q) = (at(map, lo, t_d, g)?, at(map, hi, t_d, g)?);
            out.push(region(
                "T-2",
                format!("T_d={t_d} g={g}: median ln I(u_s={lo})/I(u_s={hi})"),
                &ln_ratio(p, q, |s| s.interference),
                Statistic::Median,
                0.0,
                false,
                0,
            )?);
        }
    }
    Ok(out)
}

/// T-3: rotation is tied to recurrent activity, new formation to input-driven activity: per
/// (T_d, g), the paired mean of [rotation at u_s lowest] - [rotation at u_s highest] > 0.
pub fn t3(map: &MapOutcome) -> Result<Vec<Region>> {
    let grid = &map.spec.grid;
    let (lo, hi) = u_s_ends(grid)?;
    let mut out = Vec::new();
    for &t_d in &grid.t_d {
        for &g in &grid.g {
            let (p, q) = (at(map, lo, t_d, g)?, at(map, hi, t_d, g)?);
            let (d, dropped) = mode_difference(p, q, Mode::Rotation);
            if d.is_empty() {
                continue;
            }
            out.push(region(
                "T-3",
                format!("T_d={t_d} g={g}: rotation share(u_s={lo}) - share(u_s={hi})"),
                &d,
                Statistic::Mean,
                0.0,
                false,
                dropped,
            )?);
        }
    }
    Ok(out)
}

/// T-4: larger g reduces interference: per (u_s, T_d) and g > 0, the paired median of
/// ln I(g = 0) / I(g) > 0.
pub fn t4(map: &MapOutcome) -> Result<Vec<Region>> {
    against_g_zero(map, |g0, p, q, out| {
        out.push(region(
            "T-4",
            format!(
                "u_s={} T_d={}: median ln I(g={g0})/I(g={})",
                q.u_s, q.t_d, q.g
            ),
            &ln_ratio(p, q, |s| s.interference),
            Statistic::Median,
            0.0,
            false,
            0,
        )?);
        Ok(())
    })
}

/// Every point with g != 0 (`q`) beside the point with g = 0 at the same u_s, T_d (`p`), in
/// grid order; `f(g0, p, q, out)` adds that pair's regions.
fn against_g_zero(
    map: &MapOutcome,
    mut f: impl FnMut(f64, &PointOutcome, &PointOutcome, &mut Vec<Region>) -> Result<()>,
) -> Result<Vec<Region>> {
    let grid = &map.spec.grid;
    let g0 = g_zero(grid)?;
    let mut out = Vec::new();
    for &u_s in &grid.u_s {
        for &t_d in &grid.t_d {
            for &g in grid.g.iter().filter(|&&g| g != g0) {
                f(g0, at(map, u_s, t_d, g0)?, at(map, u_s, t_d, g)?, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// T-5: g strongly accelerates new formation (learning A from scratch: ln tau_A(0)/tau_A(g) >
/// ln 2), barely affects rotation (where g = 0 rotates in most seeds: |ln tau_B(0)/tau_B(g)| <
/// ln 2), so new formation wins the race (paired new-formation share(g) - share(0) > 0).
pub fn t5(map: &MapOutcome) -> Result<Vec<Region>> {
    let ln2 = SPEED_FACTOR.ln();
    against_g_zero(map, |g0, p, q, out| {
        let at_ = format!("u_s={} T_d={} g={}", q.u_s, q.t_d, q.g);
        out.push(region(
            "T-5",
            format!("{at_}: median ln tau_A(g={g0})/tau_A(g) (new formation from scratch)"),
            &ln_ratio(p, q, |s| s.tau_a),
            Statistic::Median,
            ln2,
            false,
            0,
        )?);
        if p.rotation_share.is_some_and(|r| r.value > 0.5) {
            out.push(region(
                "T-5",
                format!(
                    "{at_}: median ln tau_B(g={g0})/tau_B(g) within +-ln 2, where g={g0} rotates"
                ),
                &ln_ratio(p, q, |s| s.tau_b),
                Statistic::Median,
                ln2,
                true,
                0,
            )?);
        }
        let (d, dropped) = mode_difference(q, p, Mode::NewFormation);
        if !d.is_empty() {
            out.push(region(
                "T-5",
                format!("{at_}: new-formation share(g) - share(g={g0})"),
                &d,
                Statistic::Mean,
                0.0,
                false,
                dropped,
            )?);
        }
        Ok(())
    })
}

fn u_s_ends(grid: &MapGrid) -> Result<(f64, f64)> {
    let lo = grid.u_s.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = grid.u_s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo < hi {
        Ok((lo, hi))
    } else {
        Err(Error::Requirement(
            "T-2 and T-3 compare u_s values: the map needs two at least".into(),
        ))
    }
}

fn g_zero(grid: &MapGrid) -> Result<f64> {
    if grid.g.contains(&0.0) && grid.g.len() > 1 {
        Ok(0.0)
    } else {
        Err(Error::Requirement(
            "T-4 and T-5 compare with g = 0: the map needs g = 0 and another g".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(lo: f64, hi: f64) -> Estimate {
        Estimate {
            statistic: Statistic::Median,
            value: 0.5 * (lo + hi),
            lo,
            hi,
            n: 16,
        }
    }

    #[test]
    fn interval_rule_three_ways() {
        assert_eq!(standing(&est(0.2, 0.9), 0.1, false), Standing::Holds);
        assert_eq!(standing(&est(0.01, 0.09), 0.1, false), Standing::Fails);
        assert_eq!(
            standing(&est(0.05, 0.3), 0.1, false),
            Standing::Undetermined
        );
        // a degenerate interval at the threshold is not evidence for "greater than"
        assert_eq!(standing(&est(0.0, 0.0), 0.0, false), Standing::Fails);
        let l = 2f64.ln();
        assert_eq!(standing(&est(-0.3, 0.4), l, true), Standing::Holds);
        assert_eq!(standing(&est(0.8, 1.5), l, true), Standing::Fails);
        assert_eq!(standing(&est(0.2, 1.5), l, true), Standing::Undetermined);
        assert_eq!(
            standing(&est(f64::NAN, 1.0), l, true),
            Standing::Undetermined
        );
    }

    #[test]
    fn modes_by_the_45_degree_rule() {
        assert_eq!(mode_of(Some(1.2)), Mode::Rotation);
        assert_eq!(mode_of(Some(0.3)), Mode::NewFormation);
        assert_eq!(mode_of(None), Mode::Unresolved);
        assert_eq!(mode_of(Some(f64::NAN)), Mode::Unresolved);
    }

    fn seed(seed: u64, i: f64, mode: Mode) -> SeedOutcome {
        SeedOutcome {
            seed,
            interference: i,
            eps: 0.0,
            tau_a: 1.0,
            tau_b: 1.0,
            converged: true,
            theta: None,
            mode,
        }
    }

    #[test]
    fn paired_mode_difference_drops_unresolved_seeds() {
        let p = summarise(
            0.0,
            5.0,
            0.0,
            vec![
                seed(1, 2.0, Mode::Rotation),
                seed(2, 2.0, Mode::Unresolved),
                seed(3, 2.0, Mode::Rotation),
            ],
        )
        .unwrap();
        let q = summarise(
            0.3,
            5.0,
            0.0,
            vec![
                seed(1, 0.1, Mode::NewFormation),
                seed(2, 0.1, Mode::NewFormation),
                seed(3, 0.1, Mode::Rotation),
            ],
        )
        .unwrap();
        let (d, dropped) = mode_difference(&p, &q, Mode::Rotation);
        assert_eq!((d, dropped), (vec![1.0, 0.0], 1));
        assert_eq!(p.unresolved, 1);
        let r = ln_ratio(&p, &q, |s| s.interference);
        assert!((r[0] - 20f64.ln()).abs() < 1e-15);
    }
}
