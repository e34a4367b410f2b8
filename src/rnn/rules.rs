//! Learning rules beyond the exact gradient (THEORY III.1): e-prop, random e-prop (feedback
//! alignment), truncated BPTT and node perturbation.
//!
//! Every rule but node perturbation is a change to the BPTT adjoint of [`super::bptt`] (one
//! code path, [`Credit`]): e-prop replaces the Jacobian J_k by its diagonal, random e-prop also
//! replaces w_out in the learning signal by a fixed feedback matrix B, truncated BPTT(h) drops
//! each loss step's credit after h - 1 Jacobians. Node perturbation estimates the gradient from
//! loss differences alone, (1/K) sum_k (L(theta + sigma xi_k) - L(theta)) xi_k / sigma over the
//! trainable parameters theta (xi_k ~ N(0, I)): unbiased as sigma -> 0, with a variance that
//! grows with the number of perturbed parameters.

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

use super::bptt::{Credit, Sharded};
use super::network::{Network, Trainable};
use super::task::Trials;
use crate::model::Checker;
use crate::Result;

mod linear_gd;
pub use linear_gd::{linear_gd_task_b, linear_gd_tolerance, LinearGd};

/// The learning rule of `[training] rule = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum LearningRule {
    /// Exact backpropagation through time.
    #[default]
    Bptt,
    /// e-prop with symmetric feedback: J_k replaced by its diagonal.
    Eprop,
    /// e-prop with the feedback B = c w_out + sqrt(1 - c^2) |w_out| xi (per readout column, xi
    /// a fixed random unit vector orthogonal to w_out): cos(B, w_out) = c, |B| = |w_out|.
    RandomEprop { feedback_alignment: f64 },
    /// Truncated BPTT: each loss step's credit propagated exactly through h steps.
    Tbptt { truncation: usize },
    /// Parameter perturbation with `samples` draws of size `sigma` per step.
    NodePerturbation { sigma: f64, samples: usize },
}

/// The rule names accepted in model files.
pub const RULE_NAMES: [&str; 5] = [
    "bptt",
    "eprop",
    "random_eprop",
    "tbptt",
    "node_perturbation",
];

/// Default perturbation size of node perturbation: small enough that the one-sided difference's
/// O(sigma |H|) bias is below the estimator's own noise, large enough that the loss difference
/// (~sigma |grad L|) stays ~1e8 above the rounding of the loss (~1e-16 L).
pub const DEFAULT_SIGMA: f64 = 1e-4;
/// Default number of perturbations per step.
pub const DEFAULT_SAMPLES: usize = 16;

/// The raw rule keys of a `[training]` table.
#[derive(Debug, Clone, Default)]
pub struct RawRule<'a> {
    pub rule: Option<&'a str>,
    pub feedback_alignment: Option<f64>,
    pub truncation: Option<i64>,
    pub perturbation_sigma: Option<f64>,
    pub perturbation_samples: Option<i64>,
}

/// Validate the rule keys (fields `training.rule`, `training.feedback_alignment`, ...): an
/// unknown rule, a key the rule does not use, truncation < 1, feedback_alignment outside
/// [0, 1], non-positive sigma or samples are parameter errors naming the field.
pub fn check_rule(c: &Checker, raw: &RawRule) -> Result<LearningRule> {
    let name = c.one_of("training.rule", raw.rule.unwrap_or("bptt"), &RULE_NAMES)?;
    let unused = |field: &str, given: bool, user: &str| -> Result<()> {
        if given {
            Err(c.error(
                &format!("training.{field}"),
                "given",
                &format!("only with rule = \"{user}\""),
                &format!("rule = \"{name}\" does not use it"),
            ))
        } else {
            Ok(())
        }
    };
    if name != "random_eprop" {
        unused(
            "feedback_alignment",
            raw.feedback_alignment.is_some(),
            "random_eprop",
        )?;
    }
    if name != "tbptt" {
        unused("truncation", raw.truncation.is_some(), "tbptt")?;
    }
    if name != "node_perturbation" {
        unused(
            "perturbation_sigma",
            raw.perturbation_sigma.is_some(),
            "node_perturbation",
        )?;
        unused(
            "perturbation_samples",
            raw.perturbation_samples.is_some(),
            "node_perturbation",
        )?;
    }
    Ok(match name {
        "eprop" => LearningRule::Eprop,
        "random_eprop" => LearningRule::RandomEprop {
            feedback_alignment: c.in_range(
                "training.feedback_alignment",
                raw.feedback_alignment.unwrap_or(0.0),
                0.0,
                1.0,
            )?,
        },
        "tbptt" => {
            let Some(h) = raw.truncation else {
                return Err(c.error(
                    "training.truncation",
                    "missing",
                    "an integer >= 1 (steps)",
                    "rule = \"tbptt\" needs the truncation length",
                ));
            };
            LearningRule::Tbptt {
                truncation: c.count("training.truncation", h, 1, 1_000_000_000)?,
            }
        }
        "node_perturbation" => LearningRule::NodePerturbation {
            sigma: c.positive(
                "training.perturbation_sigma",
                raw.perturbation_sigma.unwrap_or(DEFAULT_SIGMA),
            )?,
            samples: c.count(
                "training.perturbation_samples",
                raw.perturbation_samples.unwrap_or(DEFAULT_SAMPLES as i64),
                1,
                1_000_000,
            )?,
        },
        _ => LearningRule::Bptt,
    })
}

impl LearningRule {
    /// The model-file name of the rule.
    pub fn name(&self) -> &'static str {
        match self {
            LearningRule::Bptt => "bptt",
            LearningRule::Eprop => "eprop",
            LearningRule::RandomEprop { .. } => "random_eprop",
            LearningRule::Tbptt { .. } => "tbptt",
            LearningRule::NodePerturbation { .. } => "node_perturbation",
        }
    }

    /// The adjoint recursion of the rule (node perturbation has none: `Exact` is returned and
    /// not used). `feedback` is the matrix of [`LearningRule::feedback`].
    pub fn credit<'a>(&self, feedback: Option<&'a DMatrix<f64>>) -> Credit<'a> {
        match *self {
            LearningRule::Bptt | LearningRule::NodePerturbation { .. } => Credit::Exact,
            LearningRule::Eprop => Credit::Eprop { feedback: None },
            LearningRule::RandomEprop { .. } => Credit::Eprop { feedback },
            LearningRule::Tbptt { truncation } => Credit::Truncated { h: truncation },
        }
    }

    /// The fixed feedback matrix of random e-prop (N x R), drawn from `rng`; `None` for every
    /// other rule (which then draw nothing from `rng`).
    pub fn feedback(&self, net: &Network, rng: &mut StdRng) -> Option<DMatrix<f64>> {
        match *self {
            LearningRule::RandomEprop { feedback_alignment } => {
                Some(feedback_matrix(&net.w_out, feedback_alignment, rng))
            }
            _ => None,
        }
    }
}

/// B = c w + sqrt(1 - c^2) |w| xi per column w of `w_out`, with xi a Gaussian vector made
/// orthogonal to w and normalised: cos(B, w) = c and |B| = |w| exactly (up to rounding).
pub fn feedback_matrix(w_out: &DMatrix<f64>, c: f64, rng: &mut StdRng) -> DMatrix<f64> {
    let mut b = w_out.clone();
    for j in 0..w_out.ncols() {
        let w = w_out.column(j);
        let wn2 = w.norm_squared();
        let mut xi = DVector::from_fn(w.len(), |_, _| rng.sample::<f64, _>(StandardNormal));
        if wn2 > 0.0 {
            let proj = xi.dot(&w) / wn2;
            xi.axpy(-proj, &w, 1.0);
        }
        let xn = xi.norm();
        let scale = if xn > 0.0 {
            (1.0 - c * c).max(0.0).sqrt() * wn2.sqrt() / xn
        } else {
            0.0
        };
        let mut col = b.column_mut(j);
        col.copy_from(&w);
        col *= c;
        col.axpy(scale, &xi, 1.0);
    }
    b
}

/// Reusable buffers of node perturbation.
#[derive(Debug, Clone, Default)]
pub struct Perturbation {
    theta: Vec<f64>,
    xi: Vec<f64>,
}

impl Perturbation {
    /// The node-perturbation estimate of the gradient at the parameters `p` (which `net`
    /// carries on entry and on exit): (1/K) sum_k (L(p + sigma xi_k) - L(p)) xi_k / sigma, with
    /// K = `samples` Gaussian draws xi_k ~ N(0, I) from `rng`. Returns L(p). The loss is the
    /// same batch sum as BPTT's ([`Sharded::loss_only`]); cost K + 1 forward passes.
    #[allow(clippy::too_many_arguments)]
    pub fn estimate(
        &mut self,
        ws: &mut Sharded,
        net: &mut Network,
        trials: &Trials,
        t: &Trainable,
        p: &[f64],
        sigma: f64,
        samples: usize,
        rng: &mut StdRng,
        grad: &mut [f64],
    ) -> Result<f64> {
        let l0 = ws.loss_only(net, trials)?;
        self.theta.resize(p.len(), 0.0);
        self.xi.resize(p.len(), 0.0);
        grad.fill(0.0);
        let w = 1.0 / (sigma * samples as f64);
        for _ in 0..samples {
            for (x, (th, &pi)) in self.xi.iter_mut().zip(self.theta.iter_mut().zip(p)) {
                *x = rng.sample(StandardNormal);
                *th = pi + sigma * *x;
            }
            net.set_params(t, &self.theta);
            let l = ws.loss_only(net, trials);
            net.set_params(t, p);
            let dl = (l? - l0) * w;
            for (g, &x) in grad.iter_mut().zip(&self.xi) {
                *g += dl * x;
            }
        }
        Ok(l0)
    }
}

/// The linear static 2x2 model (I.3) that a network *is*, when it is one: identity phi, state
/// readout, g = 0, only M trained, x(0) = 0, and both tasks the same noise-free working-memory
/// task with a constant input (u_p = u_s = u) and the own loss. Then x stays in span(a, b),
/// kappa' = -kappa + M kappa + u e_mu exactly for every N, and the loss window (after the
/// transient) reads the input-driven fixed point. Returns the 2x2 parameters (u, zhat,
/// eta = lr) and the 2x2 rule, or `None` if the network is not such a model or the rule has
/// no 2x2 counterpart (bptt -> gradient, eprop -> eprop).
pub fn linear_equivalent(
    net: &super::network::NetworkSpec,
    trainable: &Trainable,
    task_a: &super::task::Task,
    task_b: &super::task::Task,
    opts: &super::train::TrainOptions,
) -> Option<(
    crate::interference::linear::Params,
    crate::interference::linear::Rule,
)> {
    use super::network::{Phi, Readout, Recurrent};
    use super::task::{LossKind, Task};
    use crate::interference::linear::{Params, Rule};
    let rule = match opts.rule {
        LearningRule::Bptt => Rule::Gradient,
        LearningRule::Eprop => Rule::Eprop,
        _ => return None,
    };
    let (Task::WorkingMemory(a), Task::WorkingMemory(b)) = (task_a, task_b) else {
        return None;
    };
    let same = a.u_p == b.u_p && a.u_s == b.u_s && a.zhat == b.zhat;
    let ok = net.phi == Phi::Identity
        && net.readout == Readout::State
        && net.g == 0.0
        && trainable.recurrent == Recurrent::Latent
        && !trainable.input
        && !trainable.readout
        && a.u_p == a.u_s
        && a.u_s > 0.0
        && a.sigma0 == 0.0
        && b.sigma0 == 0.0
        && a.loss == LossKind::Own
        && b.loss == LossKind::Own
        && same;
    ok.then_some((
        Params {
            u: a.u_s,
            zhat: a.zhat,
            eta: opts.lr,
        },
        rule,
    ))
}

/// The 2x2 prediction of task B for a network that is a linear 2x2 model
/// ([`linear_equivalent`]): from the measured M after A, the rule's flow until the loss
/// (y - zhat)^2/2 falls below `tol_loss`. Returns the predicted interference
/// L_A(M after B)/L_A(`m_untrained`) (the network's own normalisation) and task B's flow
/// time.
pub fn linear_prediction(
    m_after_a: &nalgebra::Matrix2<f64>,
    m_untrained: &nalgebra::Matrix2<f64>,
    par: &crate::interference::linear::Params,
    rule: crate::interference::linear::Rule,
    tol_loss: f64,
) -> Result<(f64, f64)> {
    use crate::interference::linear::{closed::Task as LTask, flow, Loss};
    let tol = (2.0 * tol_loss).sqrt();
    let b = flow::task_b_from_rule(m_after_a, rule, par, tol, &flow::ode_options())?;
    let m_b = nalgebra::Matrix2::new(
        b.m_after[0][0],
        b.m_after[0][1],
        b.m_after[1][0],
        b.m_after[1][1],
    );
    let la = flow::loss(&m_b, LTask::A, Loss::Own, par)?;
    let la0 = flow::loss(m_untrained, LTask::A, Loss::Own, par)?;
    Ok((la / la0, b.t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use rand::SeedableRng;

    fn field(raw: RawRule) -> String {
        match check_rule(&Checker::new("t.toml"), &raw) {
            Err(Error::Parameter { field, .. }) => field,
            other => panic!("expected a parameter error, got {other:?}"),
        }
    }

    #[test]
    fn rule_keys_are_checked() {
        let c = Checker::new("t.toml");
        assert_eq!(
            check_rule(&c, &RawRule::default()).unwrap(),
            LearningRule::Bptt
        );
        let r = check_rule(
            &c,
            &RawRule {
                rule: Some("tbptt"),
                truncation: Some(5),
                ..RawRule::default()
            },
        )
        .unwrap();
        assert_eq!(r, LearningRule::Tbptt { truncation: 5 });
        let bad = [
            (
                RawRule {
                    rule: Some("backprop"),
                    ..RawRule::default()
                },
                "training.rule",
            ),
            (
                RawRule {
                    rule: Some("tbptt"),
                    truncation: Some(0),
                    ..RawRule::default()
                },
                "training.truncation",
            ),
            (
                RawRule {
                    rule: Some("tbptt"),
                    ..RawRule::default()
                },
                "training.truncation",
            ),
            (
                RawRule {
                    rule: Some("random_eprop"),
                    feedback_alignment: Some(1.5),
                    ..RawRule::default()
                },
                "training.feedback_alignment",
            ),
            (
                RawRule {
                    rule: Some("node_perturbation"),
                    perturbation_sigma: Some(0.0),
                    ..RawRule::default()
                },
                "training.perturbation_sigma",
            ),
            (
                RawRule {
                    rule: Some("node_perturbation"),
                    perturbation_samples: Some(0),
                    ..RawRule::default()
                },
                "training.perturbation_samples",
            ),
            (
                RawRule {
                    rule: Some("eprop"),
                    truncation: Some(3),
                    ..RawRule::default()
                },
                "training.truncation",
            ),
            (
                RawRule {
                    feedback_alignment: Some(0.5),
                    ..RawRule::default()
                },
                "training.feedback_alignment",
            ),
        ];
        for (raw, f) in bad {
            assert_eq!(field(raw), f);
        }
    }

    #[test]
    fn feedback_has_the_requested_alignment_and_norm() {
        let mut rng = StdRng::seed_from_u64(3);
        let w = DMatrix::from_fn(64, 2, |_, _| rng.sample::<f64, _>(StandardNormal));
        for c in [0.0, 0.3, 1.0] {
            let b = feedback_matrix(&w, c, &mut rng);
            for j in 0..2 {
                let (wc, bc) = (w.column(j), b.column(j));
                let cos = wc.dot(&bc) / (wc.norm() * bc.norm());
                // a projection and a normalisation: a few ulps of the N = 64 sums
                assert!((cos - c).abs() < 1e-13, "c = {c}: cos {cos}");
                assert!((bc.norm() / wc.norm() - 1.0).abs() < 1e-13);
            }
        }
    }
}
