//! I-18 on networks: does the step size pick the mode, and does the modified flow predict it?
//!
//! Per seed, the sequential protocol A -> B of one setting (the shipped `models/rnn-flow.toml`
//! family: full W, working memory, aligned loss) trained three ways on the same network and
//! trials: the gradient flow, GD at each step eta of a ladder, and the modified flow of GD at
//! each eta (the flow of L + (eta/4)|grad L|^2, [`super::modified_flow`]). Each run gives
//! interference I and the mode by I.7's rule (A's fixed point rotated by more than 45 degrees in
//! the readout plane: rotation; less: new formation; Newton failed: unresolved), from
//! [`super::sequential::track_stages`].
//!
//! A run that diverges or reaches its step cap is kept as such (I = NaN, mode unresolved,
//! `converged = false`); it is an outcome of that step size, not an error of the experiment.

use serde::Serialize;

use super::fixed_points::FixedPointOptions;
use super::modified_flow::sharpness;
use super::sequential::{run_sequential, track_stages, SequentialSpec};
use super::tmaps::{mode_of, Mode};
use super::train::Optimizer;
use crate::{Error, Result};

/// How one seed was trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "trainer", rename_all = "snake_case")]
pub enum Trainer {
    Flow,
    Gd { eta: f64 },
    ModifiedFlow { eta: f64 },
}

/// One training run of one seed.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub trainer: Trainer,
    /// I = L_A(after B) / L_A(untrained); NaN if the run did not converge.
    pub interference: f64,
    /// Rotation angle of A's fixed point (None: unresolved or not converged).
    pub theta: Option<f64>,
    pub mode: Mode,
    pub converged: bool,
    /// Gradient evaluations (forward + BPTT passes, both phases).
    pub evaluations: usize,
}

impl Outcome {
    /// ln I (NaN if not converged).
    pub fn ln_i(&self) -> f64 {
        self.interference.ln()
    }
}

/// One seed: the flow, GD and the modified flow at each eta of the ladder.
#[derive(Debug, Clone, Serialize)]
pub struct SeedStepSize {
    pub seed: u64,
    pub eps: f64,
    /// lambda_max of task B's loss Hessian at the flow's end of B: GD at eta > 2 / lambda_max
    /// cannot settle on the flow's end point.
    pub sharpness_b: f64,
    pub flow: Outcome,
    pub gd: Vec<Outcome>,
    pub modified: Vec<Outcome>,
}

/// Whether `o` ended in the flow's mode (both resolved and equal).
fn same_mode(o: &Outcome, flow: &Outcome) -> bool {
    o.mode != Mode::Unresolved && o.mode == flow.mode
}

impl SeedStepSize {
    /// The critical step of a ladder (`outcomes` at decreasing eta): the largest eta from which
    /// on every smaller eta ends in the flow's mode; `None` if the flow's mode is unresolved or
    /// even the smallest eta differs. Returns the eta, or `Some(f64::INFINITY)` if the whole
    /// ladder agrees (no flip inside it).
    pub fn critical(&self, outcomes: &[Outcome]) -> Option<f64> {
        if self.flow.mode == Mode::Unresolved {
            return None;
        }
        let k = (0..outcomes.len())
            .find(|&k| outcomes[k..].iter().all(|o| same_mode(o, &self.flow)))?;
        if k == 0 {
            return Some(f64::INFINITY);
        }
        match outcomes[k].trainer {
            Trainer::Gd { eta } | Trainer::ModifiedFlow { eta } => Some(eta),
            Trainer::Flow => None,
        }
    }
}

/// What one run reports beside its outcome: the seed covariate eps and the flow time of the
/// longer phase.
#[derive(Debug, Clone, Copy)]
pub struct RunInfo {
    pub eps: f64,
    pub tau: f64,
    /// For the flow: lambda_max of task B's loss Hessian at the end of B (NaN otherwise).
    pub sharpness_b: f64,
}

/// Power-iteration budget of the sharpness: at most this many products, stop at this relative
/// change of the Rayleigh quotient (the ladder's factor 2 needs far less).
const SHARPNESS_ITERS: usize = 100;
const SHARPNESS_RTOL: f64 = 1e-3;

/// Train `spec` with `trainer` for `seed` and classify the outcome. `tau_hint` (the flow's
/// longer phase) sets GD's step cap.
pub fn train_one(
    spec: &SequentialSpec,
    seed: u64,
    trainer: Trainer,
    tau_hint: f64,
) -> Result<(Outcome, RunInfo)> {
    let (rtol, atol) = match spec.train.optimizer {
        Optimizer::Flow { rtol, atol } => (rtol, atol),
        _ => {
            return Err(Error::Requirement(
                "step_size: the base spec's optimizer must be the flow".into(),
            ))
        }
    };
    let mut s = *spec;
    match trainer {
        Trainer::Flow => {}
        Trainer::Gd { eta } => {
            s.train.optimizer = Optimizer::Gd;
            s.train.lr = eta;
            // room for 4x the flow time of the longer phase (a too-large step may wander)
            s.train.max_steps = s
                .train
                .max_steps
                .max((4.0 * tau_hint / eta).ceil() as usize + 100);
        }
        Trainer::ModifiedFlow { eta } => {
            s.train.optimizer = Optimizer::ModifiedFlow { eta, rtol, atol };
        }
    }
    let failed = |evaluations| Outcome {
        trainer,
        interference: f64::NAN,
        theta: None,
        mode: Mode::Unresolved,
        converged: false,
        evaluations,
    };
    let (r, stages) = match run_sequential(&s, seed) {
        Ok(x) => x,
        Err(Error::Diverged { .. } | Error::NoConvergence { .. } | Error::Ode { .. }) => {
            let info = RunInfo {
                eps: f64::NAN,
                tau: f64::NAN,
                sharpness_b: f64::NAN,
            };
            return Ok((failed(0), info));
        }
        Err(e) => return Err(e),
    };
    let evaluations = r.evaluations_a + r.evaluations_b;
    let sharpness_b = if trainer == Trainer::Flow && r.converged_b {
        sharpness(
            &stages.after_b,
            &stages.trials_b,
            &spec.trainable,
            SHARPNESS_ITERS,
            SHARPNESS_RTOL,
        )?
        .0
    } else {
        f64::NAN
    };
    let info = RunInfo {
        eps: r.eps,
        tau: r.tau_a.max(r.tau_b),
        sharpness_b,
    };
    if !(r.converged_a && r.converged_b) {
        return Ok((failed(evaluations), info));
    }
    let theta = track_stages(&stages, &FixedPointOptions::default())
        .ok()
        .map(|t| t.theta);
    Ok((
        Outcome {
            trainer,
            interference: r.interference,
            theta,
            mode: mode_of(theta),
            converged: true,
            evaluations,
        },
        info,
    ))
}

/// One seed: the flow, then GD and the modified flow at each eta of `etas` (decreasing).
pub fn seed_step_size(spec: &SequentialSpec, seed: u64, etas: &[f64]) -> Result<SeedStepSize> {
    let (flow, info) = train_one(spec, seed, Trainer::Flow, 0.0)?;
    if !flow.converged {
        return Err(Error::NoConvergence {
            solver: format!("step_size: the gradient flow on A then B, seed {seed}"),
            iterations: spec.train.max_steps,
            residual: f64::NAN,
            tolerance: spec.train.tol,
        });
    }
    let tau = info.tau;
    let eps = info.eps;
    let sharpness_b = info.sharpness_b;
    let mut gd = Vec::with_capacity(etas.len());
    let mut modified = Vec::with_capacity(etas.len());
    for &eta in etas {
        gd.push(train_one(spec, seed, Trainer::Gd { eta }, tau)?.0);
        modified.push(train_one(spec, seed, Trainer::ModifiedFlow { eta }, tau)?.0);
    }
    Ok(SeedStepSize {
        seed,
        eps,
        sharpness_b,
        flow,
        gd,
        modified,
    })
}

/// [`seed_step_size`] for every seed (in parallel over seeds, collected in seed order).
pub fn step_size_runs(
    spec: &SequentialSpec,
    seeds: &[u64],
    etas: &[f64],
) -> Result<Vec<SeedStepSize>> {
    use rayon::prelude::*;
    seeds
        .par_iter()
        .map(|&s| seed_step_size(spec, s, etas))
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(trainer: Trainer, mode: Mode) -> Outcome {
        Outcome {
            trainer,
            interference: 0.1,
            theta: None,
            mode,
            converged: mode != Mode::Unresolved,
            evaluations: 0,
        }
    }

    fn seed(flow: Mode, gd: &[Mode]) -> SeedStepSize {
        let etas = [1.0, 0.5, 0.25, 0.125];
        SeedStepSize {
            seed: 1,
            eps: 0.0,
            sharpness_b: 1.0,
            flow: out(Trainer::Flow, flow),
            gd: gd
                .iter()
                .zip(etas)
                .map(|(&m, eta)| out(Trainer::Gd { eta }, m))
                .collect(),
            modified: Vec::new(),
        }
    }

    /// The critical step is the largest eta from which on every smaller rung keeps the flow's
    /// mode: a flip back at a larger step does not count, an unresolved rung breaks agreement.
    #[test]
    fn critical_step_of_a_ladder() {
        use Mode::{NewFormation as N, Rotation as R, Unresolved as U};
        let c = |flow, gd: &[Mode]| {
            let s = seed(flow, gd);
            s.critical(&s.gd)
        };
        assert_eq!(c(N, &[R, N, N, N]), Some(0.5));
        assert_eq!(c(N, &[N, R, N, N]), Some(0.25));
        assert_eq!(c(N, &[N, N, N, N]), Some(f64::INFINITY));
        assert_eq!(c(N, &[N, N, N, R]), None);
        assert_eq!(c(N, &[R, U, N, N]), Some(0.25));
        assert_eq!(c(R, &[N, R, R, R]), Some(0.5));
        assert_eq!(c(U, &[N, N, N, N]), None);
    }
}
