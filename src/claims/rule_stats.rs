//! Claims E-4 and E-5 (proofs-checks/E-04-*.md, E-05-*.md): bias and variance of each rule's
//! update along training against the exact BPTT gradient, B-14's one-step formula with the
//! measured bias and covariance, and node perturbation as the unbiased control
//! ([`crate::rnn::rule_stats`]).

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{Check, Row, Tier};
use crate::rnn::network::{Network, NetworkSpec, Phi, Readout, Trainable};
use crate::rnn::rule_stats::{update_stats, UpdateStats};
use crate::rnn::rules::{LearningRule, DEFAULT_SIGMA};
use crate::rnn::task::{LossKind, Task, Trials, WorkingMemory};
use crate::rnn::train::{train_task, Optimizer, TrainOptions};
use crate::Result;

/// The registered checks.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "E-4",
            tier: Tier::Fast,
            run: check_e4,
        },
        Check {
            id: "E-5",
            tier: Tier::Fast,
            run: check_e5,
        },
    ]
}

/// The step of E-4 (GD's step in the rule map's node perturbation, `claims::rules_map`).
const ETA: f64 = 0.5;

/// The setting: N = 32, tanh, g = 0.5, M only, the working-memory task of the rule map
/// (own loss, u_s = 0.3) on pattern a; its trials (noise-free: one trial).
fn setting() -> (Network, Task, Trials) {
    let spec = NetworkSpec {
        n: 32,
        g: 0.5,
        dt: 0.2,
        phi: Phi::Tanh,
        readout: Readout::Rate,
        m0: [[0.0; 2]; 2],
    };
    let net = Network::new(&spec, &mut StdRng::seed_from_u64(11));
    let task = Task::WorkingMemory(WorkingMemory {
        pattern: 0,
        u_p: 1.0,
        t_in: 2.0,
        u_s: 0.3,
        t_d: 10.0,
        t_loss: 2.0,
        zhat: 0.5,
        loss: LossKind::Own,
        sigma0: 0.0,
    });
    let tr = super::rules::one_trial(&net, &task);
    (net, task, tr)
}

/// Networks along BPTT training (GD, lr = ETA): at steps 0, 10 and 40.
fn checkpoints() -> Result<Vec<(usize, Network)>> {
    let (mut net, task, _) = setting();
    let marks = [0usize, 10, 40];
    let mut out = Vec::new();
    let opts = TrainOptions {
        optimizer: Optimizer::Gd,
        lr: ETA,
        tol: 0.0,
        max_steps: *marks.last().unwrap_or(&0),
        ..TrainOptions::default()
    };
    train_task(
        &mut net,
        &Trainable::LATENT,
        &task,
        &opts,
        &mut StdRng::seed_from_u64(1),
        |step, _, n| {
            if marks.contains(&step) {
                out.push((step, n.clone()));
            }
            Ok(())
        },
    )?;
    Ok(out)
}

fn stats_note(s: &UpdateStats) -> String {
    format!(
        "L = {:.4e}, |g| = {:.3e}, rel bias {:.3e}, cos {:.4}, tr Sigma {:.3e}; terms {:.3e} + {:.3e} + {:.3e}, remainder {:.1e}",
        s.loss,
        s.grad_norm,
        s.rel_bias,
        s.cosine,
        s.trace_cov,
        s.first_order,
        s.curvature_mean,
        s.curvature_noise,
        s.remainder
    )
}

/// Node perturbation's draws per point: the covariance and the mean to ~1/sqrt(S) = 6%.
const DRAWS: usize = 256;

/// E-4: along training, each rule's bias and covariance, and B-14's formula against the
/// measured one-step Delta L (tolerance: twice the estimated third- and fourth-order
/// remainder, plus the
/// rounding of the loss differences, 1e-13 L).
fn check_e4() -> Result<Vec<Row>> {
    let (_, _, tr) = setting();
    let rules = [
        ("eprop", LearningRule::Eprop),
        (
            "random_eprop",
            LearningRule::RandomEprop {
                feedback_alignment: 0.0,
            },
        ),
        ("tbptt(h=1)", LearningRule::Tbptt { truncation: 1 }),
        ("tbptt(h=5)", LearningRule::Tbptt { truncation: 5 }),
        (
            "node_pert(K=16)",
            LearningRule::NodePerturbation {
                sigma: DEFAULT_SIGMA,
                samples: 16,
            },
        ),
    ];
    let mut rows = Vec::new();
    for (step, mut net) in checkpoints()? {
        // random e-prop's feedback: one draw for the network, as in training
        let mut fb_rng = StdRng::seed_from_u64(5);
        for (name, rule) in rules {
            let fb = rule.feedback(&net, &mut fb_rng);
            let s = update_stats(
                &mut net,
                &Trainable::LATENT,
                &tr,
                rule,
                fb.as_ref(),
                ETA,
                DRAWS,
                step as u64 + 17,
            )?;
            rows.push(
                Row::abs(
                    format!("B-14 Delta L, {name}, step {step}"),
                    s.predicted,
                    s.measured,
                    2.0 * s.remainder + 1e-13 * s.loss,
                )
                .note(stats_note(&s)),
            );
        }
    }
    Ok(rows)
}

/// E-5: node perturbation is unbiased (|mean - g| within three standard errors of the mean of
/// S draws, sqrt(tr Sigma / S)) and its covariance is that of (g . xi) xi / K, xi ~ N(0, I):
/// tr Sigma_K = (P + 1) |g|^2 / K (x (S - 1)/S for the 1/S covariance of S draws), within
/// three standard errors of the measured trace, for K = 1, 4, 16 samples.
fn check_e5() -> Result<Vec<Row>> {
    let (_, _, tr) = setting();
    let mut rows = Vec::new();
    for (step, mut net) in checkpoints()?.into_iter().take(2) {
        for k in [1usize, 4, 16] {
            let s = update_stats(
                &mut net,
                &Trainable::LATENT,
                &tr,
                LearningRule::NodePerturbation {
                    sigma: DEFAULT_SIGMA,
                    samples: k,
                },
                None,
                ETA,
                DRAWS,
                1000 + k as u64 + step as u64,
            )?;
            let se_mean = (s.trace_cov / s.draws as f64).sqrt() / s.grad_norm;
            rows.push(
                Row::abs(
                    format!("node pert. rel bias (K={k}, step {step})"),
                    0.0,
                    s.rel_bias,
                    3.0 * se_mean,
                )
                .note(format!(
                    "S = {} draws; standard error of the mean {:.3e}; cos(E g^, g) = {:.5}",
                    s.draws, se_mean, s.cosine
                )),
            );
            let p = s.params as f64;
            let sf = s.draws as f64;
            let pred = (p + 1.0) * s.grad_norm.powi(2) / k as f64 * (sf - 1.0) / sf;
            rows.push(
                Row::abs(
                    format!("K tr Sigma / (P+1)|g|^2 (K={k}, step {step})"),
                    1.0,
                    s.trace_cov / pred,
                    3.0 * s.trace_cov_se / pred,
                )
                .note(format!(
                    "P = {}, tr Sigma = {:.4e} +- {:.1e} (se), (P+1)|g|^2/K = {:.4e}",
                    s.params, s.trace_cov, s.trace_cov_se, pred
                )),
            );
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e4_e5_hold() {
        let t0 = std::time::Instant::now();
        let mut rows = check_e4().unwrap();
        rows.extend(check_e5().unwrap());
        crate::claims::assert_rows_pass("E-4/E-5", &rows, t0);
    }
}
