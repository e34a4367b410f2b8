//! Claim E-3 (proofs-checks/E-03-*.md): the map rule x regime ([`crate::rnn::rules_map`]).
//! The fast tier (`E-3`) runs a reduced map that can fail; the full tier (`E-3-map`) the map
//! of THEORY III.2. Every region gives a row whose verdict is its standing (pass where the
//! question's answer is yes, disputed where the interval says no, undetermined between), and a
//! region whose standing differs from the table in the claim file fails (as the T-maps,
//! `super::tmaps::rows`).

use std::sync::OnceLock;

use super::{Check, Row, Tier};
use crate::model;
use crate::rnn::network::Recurrent;
use crate::rnn::rules::LearningRule;
use crate::rnn::rules_map::{self, Regime, RuleMapOutcome, RuleMapSpec};
use crate::rnn::spec::{check, RnnSpec};
use crate::{Error, Result};

/// The base model of the map.
pub const BASE_FILE: &str = "models/rules-map-base.toml";
const BASE_TEXT: &str = include_str!("../../models/rules-map-base.toml");

/// The base spec (N = 64, tanh, own loss, M only, gradient flow, 16 seeds).
pub fn base_spec() -> Result<RnnSpec> {
    check(&model::parse(BASE_FILE, BASE_TEXT)?)
}

/// Node perturbation's GD step (tau = lr x steps). A random estimate has no flow to agree
/// with; 0.5 is below the flow's own first steps on this task (~1 in tau) and is stated with
/// every node-perturbation number.
const PERTURBATION_LR: f64 = 0.5;

/// The map of a tier. Full: THEORY III.2's regimes (M only and full W, g in {0, 0.5, 0.8},
/// u_s in {0, 0.3}) x bptt, eprop, random_eprop (c = 0), tbptt (h = 1, 5, 20), node
/// perturbation (sigma 1e-4, 16 samples), N = 64. Fast: M only, g = 0, u_s in {0, 0.3} x bptt,
/// eprop, tbptt(h = 1) at N = 32.
pub fn map_spec(tier: Tier) -> Result<RuleMapSpec> {
    let mut base = base_spec()?;
    let np = LearningRule::NodePerturbation {
        sigma: crate::rnn::rules::DEFAULT_SIGMA,
        samples: crate::rnn::rules::DEFAULT_SAMPLES,
    };
    let (regimes, rules) = match tier {
        Tier::Full => {
            let mut regimes = Vec::new();
            for recurrent in [Recurrent::Latent, Recurrent::Full] {
                for g in [0.0, 0.5, 0.8] {
                    for u_s in [0.0, 0.3] {
                        regimes.push(Regime { recurrent, g, u_s });
                    }
                }
            }
            let rules = vec![
                LearningRule::Bptt,
                LearningRule::Eprop,
                LearningRule::RandomEprop {
                    feedback_alignment: 0.0,
                },
                LearningRule::Tbptt { truncation: 1 },
                LearningRule::Tbptt { truncation: 5 },
                LearningRule::Tbptt { truncation: 20 },
                np,
            ];
            (regimes, rules)
        }
        Tier::Fast => {
            base.network.n = 32;
            let regimes = [0.0, 0.3]
                .into_iter()
                .map(|u_s| Regime {
                    recurrent: Recurrent::Latent,
                    g: 0.0,
                    u_s,
                })
                .collect();
            let rules = vec![
                LearningRule::Bptt,
                LearningRule::Eprop,
                LearningRule::Tbptt { truncation: 1 },
            ];
            (regimes, rules)
        }
    };
    Ok(RuleMapSpec {
        perturbation_lr: PERTURBATION_LR,
        perturbation_max_steps: base.train.max_steps,
        base,
        regimes,
        rules,
    })
}

/// The map of a tier, computed once per process.
pub fn map(tier: Tier) -> Result<&'static RuleMapOutcome> {
    static FAST: OnceLock<std::result::Result<RuleMapOutcome, String>> = OnceLock::new();
    static FULL: OnceLock<std::result::Result<RuleMapOutcome, String>> = OnceLock::new();
    let cell = match tier {
        Tier::Fast => &FAST,
        Tier::Full => &FULL,
    };
    cell.get_or_init(|| {
        map_spec(tier)
            .and_then(|s| rules_map::run_map(&s))
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| Error::Requirement(format!("E-3 rule map ({tier:?} tier): {e}")))
}

/// The rows of a map's regions; each point's "share learning" row also carries the point's
/// medians of I and tau_B (over the seeds that learned) in its note.
fn map_rows(id: &str, m: &RuleMapOutcome) -> Result<Vec<Row>> {
    let mut rows = super::tmaps::rows(id, rules_map::regions(m)?)?;
    for p in &m.points {
        let head = format!("{} {}: share", p.regime.label(), p.label);
        let Some(row) = rows.iter_mut().find(|r| r.label.starts_with(&head)) else {
            continue;
        };
        let med = |s: &Option<crate::num::stats::Summary>| {
            s.as_ref().map_or("-".to_string(), |s| {
                format!(
                    "{:.4e} [{:.4e}, {:.4e}]",
                    s.median.value, s.median.lo, s.median.hi
                )
            })
        };
        row.note.push_str(&format!(
            "; median I {}, median tau_B {}",
            med(&p.interference),
            med(&p.tau_b)
        ));
    }
    Ok(rows)
}

fn e3_fast() -> Result<Vec<Row>> {
    map_rows("E-3", map(Tier::Fast)?)
}

fn e3_full() -> Result<Vec<Row>> {
    map_rows("E-3-map", map(Tier::Full)?)
}

/// The registered checks: E-3 (fast map) and E-3-map (full map).
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "E-3",
            tier: Tier::Fast,
            run: e3_fast,
        },
        Check {
            id: "E-3-map",
            tier: Tier::Full,
            run: e3_full,
        },
    ]
}
