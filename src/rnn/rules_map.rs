//! The map rule x regime of claim E-3 (THEORY III.2): the sequential working-memory protocol
//! A -> B trained by each learning rule ([`super::rules::LearningRule`]) in each regime
//! (M only or full W, g, u_s), seeds as samples (THEORY I.7).
//!
//! A map point is an `rnn` model run exactly as `modeflow train` runs it
//! ([`super::report::train_spec`], one seed per call so that a run that diverges is an outcome
//! of the point, not an error of the map); the map only sets the regime and the rule of a base
//! spec. Deterministic rules follow the base's optimiser (the gradient flow: flow time tau);
//! node perturbation, a random estimate, runs plain GD at the map's `perturbation_lr` (tau =
//! lr x steps).
//!
//! Per seed: did A and B reach the tolerance (the rule *learns*), I, tau_B, eps. Per rule and
//! regime, three questions, each judged by the interval rule of [`super::tmaps::standing`]:
//! - **learns**: the share of seeds that learn A and B (Wilson interval) > 1/2;
//! - **protects**: the paired median of ln I(bptt)/I(rule) > 0 (the rule forgets A less than the
//!   exact gradient, seed by seed), over the seeds where both learned B;
//! - **slower**: the paired median of ln tau_B(rule)/tau_B(bptt) > 0 (the rule takes longer to
//!   learn B), over the same seeds.
//!
//! The paired questions are asked only where at least [`MIN_PAIRS`] seeds learned under both.

use rayon::prelude::*;
use serde::Serialize;

use super::network::Recurrent;
use super::report::train_spec;
use super::rules::LearningRule;
use super::spec::RnnSpec;
use super::task::Task;
use super::tmaps::{standing, Region};
use super::train::Optimizer;
use crate::num::stats::{self, Bootstrap, Estimate, Statistic, Summary};
use crate::{Error, Result};

/// Seed of every bootstrap of the map (common random numbers across points).
pub const BOOTSTRAP_SEED: u64 = 0xe3_a95;
/// Paired comparisons need at least this many seeds that learned under both rules (half of
/// THEORY I.7's 16).
pub const MIN_PAIRS: usize = 8;
/// "Learns": the share of seeds that learn both tasks exceeds one half.
pub const LEARN_SHARE: f64 = 0.5;

/// One regime of the map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Regime {
    /// M only (`Latent`) or full W.
    pub recurrent: Recurrent,
    pub g: f64,
    pub u_s: f64,
}

impl Regime {
    /// The regime's label, e.g. `M g=0.5 u_s=0.3`.
    pub fn label(&self) -> String {
        let w = match self.recurrent {
            Recurrent::Latent => "M",
            Recurrent::Full => "W",
        };
        format!("{w} g={} u_s={}", self.g, self.u_s)
    }
}

/// A rule map: base spec (working memory, sequential, its seeds), regimes and rules.
#[derive(Debug, Clone, Serialize)]
pub struct RuleMapSpec {
    pub base: RnnSpec,
    pub regimes: Vec<Regime>,
    /// The rules; the first must be BPTT (the reference of the paired questions).
    pub rules: Vec<LearningRule>,
    /// GD learning rate and step cap of node perturbation (it has no flow).
    pub perturbation_lr: f64,
    pub perturbation_max_steps: usize,
}

/// One seed of a map point.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSeed {
    pub seed: u64,
    /// A and B both reached the tolerance.
    pub learned: bool,
    /// The run left its loss bound (then I and tau_B are NaN).
    pub diverged: bool,
    pub interference: f64,
    pub tau_b: f64,
    pub steps_b: usize,
    pub eps: f64,
}

/// One (regime, rule) point over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct RulePoint {
    pub regime: Regime,
    pub rule: LearningRule,
    /// The rule's label, e.g. `tbptt(h=5)`.
    pub label: String,
    pub seeds: Vec<RuleSeed>,
    /// Share of seeds that learned A and B (Wilson interval).
    pub learned: Estimate,
    /// I and tau_B over the seeds that learned (None if none did).
    pub interference: Option<Summary>,
    pub tau_b: Option<Summary>,
}

/// A whole map, points in order regime-major, rule-minor.
#[derive(Debug, Clone, Serialize)]
pub struct RuleMapOutcome {
    pub spec: RuleMapSpec,
    pub points: Vec<RulePoint>,
}

/// A rule's label: its name with its parameter.
pub fn rule_label(rule: &LearningRule) -> String {
    match *rule {
        LearningRule::RandomEprop { feedback_alignment } => {
            format!("random_eprop(c={feedback_alignment})")
        }
        LearningRule::Tbptt { truncation } => format!("tbptt(h={truncation})"),
        LearningRule::NodePerturbation { sigma, samples } => {
            format!("node_perturbation(sigma={sigma:e},K={samples})")
        }
        r => r.name().to_string(),
    }
}

/// The base spec with the regime and the rule set (one seed: `seed`).
pub fn point_spec(map: &RuleMapSpec, regime: &Regime, rule: LearningRule) -> Result<RnnSpec> {
    let Task::WorkingMemory(mut w) = map.base.task else {
        return Err(Error::Requirement(
            "a rule map needs a working-memory task (kind rnn, [task] family = \"working_memory\")"
                .into(),
        ));
    };
    if map.base.task_b.is_some() && map.base.working_memory().is_none() {
        return Err(Error::Requirement(
            "a rule map runs the same working-memory task on a, then on b (one [task] table)"
                .into(),
        ));
    }
    w.u_s = regime.u_s;
    let mut spec = map.base.clone();
    spec.task = Task::WorkingMemory(w);
    spec.task_b = None;
    spec.network.g = regime.g;
    spec.trainable.recurrent = regime.recurrent;
    spec.train.rule = rule;
    spec.train.progress = false;
    spec.fixed_points = false;
    spec.xval = None;
    if matches!(rule, LearningRule::NodePerturbation { .. }) {
        spec.train.optimizer = Optimizer::Gd;
        spec.train.lr = map.perturbation_lr;
        spec.train.max_steps = map.perturbation_max_steps;
    }
    Ok(spec)
}

/// One seed: `modeflow train` on the point's spec with that seed alone.
fn run_seed(spec: &RnnSpec, seed: u64) -> Result<RuleSeed> {
    let mut s = spec.clone();
    s.seed = seed;
    s.seeds = 1;
    match train_spec(s) {
        Ok(report) => {
            let run = report.runs.first().and_then(|r| r.sequential.as_ref());
            let Some(r) = run else {
                return Err(Error::Requirement(
                    "a rule-map point runs the sequential protocol".into(),
                ));
            };
            Ok(RuleSeed {
                seed,
                learned: r.converged_a && r.converged_b,
                diverged: false,
                interference: r.interference,
                tau_b: r.tau_b,
                steps_b: r.steps_b,
                eps: r.eps,
            })
        }
        Err(e @ (Error::Diverged { .. } | Error::NoConvergence { .. })) => Ok(RuleSeed {
            seed,
            // a rule that cannot reach the tolerance within the step cap does not learn (the
            // gradient flow stops with NoConvergence; e.g. a stationary point above tol)
            learned: false,
            diverged: matches!(e, Error::Diverged { .. }),
            interference: f64::NAN,
            tau_b: f64::NAN,
            steps_b: 0,
            eps: f64::NAN,
        }),
        Err(e) => Err(e),
    }
}

/// Run every (regime, rule, seed) in parallel, collected in map order (the result does not
/// depend on the number of threads).
pub fn run_map(map: &RuleMapSpec) -> Result<RuleMapOutcome> {
    if map.rules.first() != Some(&LearningRule::Bptt) {
        return Err(Error::Requirement(
            "a rule map compares with BPTT: its first rule must be bptt".into(),
        ));
    }
    let mut jobs = Vec::new();
    for regime in &map.regimes {
        for &rule in &map.rules {
            let spec = point_spec(map, regime, rule)?;
            for i in 0..map.base.seeds {
                jobs.push((spec.clone(), map.base.seed + i as u64));
            }
        }
    }
    let seeds = jobs
        .into_par_iter()
        .map(|(spec, seed)| run_seed(&spec, seed))
        .collect::<Result<Vec<_>>>()?;
    let mut chunks = seeds.chunks(map.base.seeds.max(1));
    let mut points = Vec::new();
    for regime in &map.regimes {
        for &rule in &map.rules {
            let seeds = chunks.next().map(<[RuleSeed]>::to_vec).unwrap_or_default();
            points.push(summarise(*regime, rule, seeds)?);
        }
    }
    Ok(RuleMapOutcome {
        spec: map.clone(),
        points,
    })
}

fn summarise(regime: Regime, rule: LearningRule, seeds: Vec<RuleSeed>) -> Result<RulePoint> {
    let boot = Bootstrap::new(BOOTSTRAP_SEED);
    let learned: Vec<bool> = seeds.iter().map(|s| s.learned).collect();
    let of = |f: fn(&RuleSeed) -> f64| -> Result<Option<Summary>> {
        let v: Vec<f64> = seeds.iter().filter(|s| s.learned).map(f).collect();
        if v.is_empty() {
            Ok(None)
        } else {
            Summary::of(&v, &boot).map(Some)
        }
    };
    Ok(RulePoint {
        regime,
        rule,
        label: rule_label(&rule),
        learned: stats::share(&learned)?,
        interference: of(|s| s.interference)?,
        tau_b: of(|s| s.tau_b)?,
        seeds,
    })
}

impl RuleMapOutcome {
    /// The BPTT point of a regime.
    pub fn bptt(&self, regime: &Regime) -> Option<&RulePoint> {
        self.points
            .iter()
            .find(|p| p.regime == *regime && p.rule == LearningRule::Bptt)
    }
}

fn region(label: String, est: Estimate, threshold: f64, dropped: usize) -> Region {
    Region {
        claim: "E-3",
        label,
        standing: standing(&est, threshold, false),
        estimate: est,
        threshold,
        within: false,
        dropped,
    }
}

/// Per-seed ln(f(x) / f(y)) over the seeds where both learned; and how many were dropped.
pub fn paired_ln(p: &RulePoint, q: &RulePoint, f: fn(&RuleSeed) -> f64) -> (Vec<f64>, usize) {
    let mut v = Vec::new();
    let mut dropped = 0;
    for (x, y) in p
        .seeds
        .iter()
        .zip(&q.seeds)
        .filter(|(x, y)| x.seed == y.seed)
    {
        let r = (f(x) / f(y)).ln();
        if x.learned && y.learned && r.is_finite() {
            v.push(r);
        } else {
            dropped += 1;
        }
    }
    (v, dropped)
}

/// The regions of E-3: per (regime, rule) "learns"; per (regime, rule != bptt) "protects" and
/// "slower" where at least [`MIN_PAIRS`] seeds learned under both.
pub fn regions(map: &RuleMapOutcome) -> Result<Vec<Region>> {
    let boot = Bootstrap::new(BOOTSTRAP_SEED);
    let mut out = Vec::new();
    for p in &map.points {
        let at = format!("{} {}", p.regime.label(), p.label);
        out.push(region(
            format!("{at}: share learning A and B"),
            p.learned,
            LEARN_SHARE,
            0,
        ));
        if p.rule == LearningRule::Bptt {
            continue;
        }
        let Some(b) = map.bptt(&p.regime) else {
            continue;
        };
        let (prot, dropped) = paired_ln(b, p, |s| s.interference);
        if prot.len() >= MIN_PAIRS {
            out.push(region(
                format!("{at}: median ln I(bptt)/I(rule)"),
                stats::bootstrap(&prot, Statistic::Median, &boot)?,
                0.0,
                dropped,
            ));
        }
        let (slow, dropped) = paired_ln(p, b, |s| s.tau_b);
        if slow.len() >= MIN_PAIRS {
            out.push(region(
                format!("{at}: median ln tau_B(rule)/tau_B(bptt)"),
                stats::bootstrap(&slow, Statistic::Median, &boot)?,
                0.0,
                dropped,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (E-3-map, 2026-12-05): one point whose gradient flow stalled above the
    /// tolerance (NoConvergence at the step cap) aborted the whole 1344-run map; it is a seed
    /// that does not learn.
    #[test]
    fn a_flow_that_cannot_reach_the_tolerance_is_a_seed_that_does_not_learn() {
        let text = include_str!("../../models/rules-map-base.toml");
        let mut spec =
            crate::rnn::spec::check(&crate::model::parse("base.toml", text).unwrap()).unwrap();
        spec.network.n = 8;
        spec.train.max_steps = 2;
        let s = run_seed(&spec, 1).unwrap();
        assert!(!s.learned && !s.diverged);
        assert!(s.interference.is_nan());
    }

    fn seed(seed: u64, learned: bool, i: f64, tau: f64) -> RuleSeed {
        RuleSeed {
            seed,
            learned,
            diverged: false,
            interference: i,
            tau_b: tau,
            steps_b: 1,
            eps: 0.0,
        }
    }

    #[test]
    fn pairs_drop_seeds_that_did_not_learn_under_both() {
        let regime = Regime {
            recurrent: Recurrent::Latent,
            g: 0.0,
            u_s: 0.3,
        };
        let b = summarise(
            regime,
            LearningRule::Bptt,
            vec![
                seed(1, true, 2.0, 1.0),
                seed(2, true, 2.0, 1.0),
                seed(3, false, 2.0, 1.0),
            ],
        )
        .unwrap();
        let e = summarise(
            regime,
            LearningRule::Eprop,
            vec![
                seed(1, true, 0.5, 4.0),
                seed(2, false, 0.5, 4.0),
                seed(3, true, 0.5, 4.0),
            ],
        )
        .unwrap();
        let (v, dropped) = paired_ln(&b, &e, |s| s.interference);
        assert_eq!(dropped, 2);
        assert_eq!(v.len(), 1);
        assert!((v[0] - 4f64.ln()).abs() < 1e-15);
        // 2 of 3 learned: the Wilson interval of the share straddles 1/2
        assert!((e.learned.value - 2.0 / 3.0).abs() < 1e-15);
        assert!(e.learned.lo < 0.5 && e.learned.hi > 0.5);
        assert_eq!(
            rule_label(&LearningRule::Tbptt { truncation: 5 }),
            "tbptt(h=5)"
        );
    }
}
