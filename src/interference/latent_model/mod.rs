//! Model kind `latent`: the nonlinear 2x2 latent model of docs/theory.md I.2 — raw TOML struct,
//! validation, and `predict` (fixed points, seeding time, sequential learning A then B).
//!
//! ```toml
//! kind = "latent"
//! gain = "erf"            # erf | tanh
//! zhat = 0.5              # readout target, 0 < zhat < sqrt(2/pi)
//! loss = "aligned"        # own | aligned
//! [schedule]              # u_p for T_in, then u_s for T_d; loss on the last T_L <= T_d
//! u_p = 1.0
//! t_in = 2.0
//! u_s = 0.0
//! t_d = 10.0
//! t_l = 2.0
//! [init]
//! m0 = [[0.0, 0.0], [0.0, 0.0]]   # M before task A, rows (a, b)
//! eps = 0.05              # seed of rotation
//! eps_kind = "offdiag"    # offdiag: M_ab = M_ba = m0 + eps; leak: input u (e_mu + eps e_nu)
//! [learning]
//! eta = 1.0
//! tol_a = 1e-5            # stop learning a task when its loss < tol
//! tol_b = 1e-5
//! tau_max = 1e4           # cap on learning time per task
//! max_steps = 100000      # cap on learning-flow steps per task
//! rtol = 1e-5             # learning-flow integrator tolerance
//! trial_rtol = 1e-7       # forward/adjoint trial tolerance
//! rule = "gradient"       # gradient (exact adjoint, I-4) | eprop (Jacobian -> its diagonal, III.1)
//! [seeding]               # claim I-3
//! eps = 0.0707106781      # |kappa(0)| along a
//! fraction = 0.9          # "reached": |kappa| = fraction |kappa_A|
//! [finite_n]              # optional, claim I-14: the gain of one finite-N pattern draw
//! n = 256                 # neurons, 2 <= n <= 16384
//! seed = 1                # the network seed whose pattern draw is used
//! order = 5               # 3 | 5 (moment-matched expansion) | "exact" (h_N itself)
//! ```

use nalgebra::Matrix2;
use serde::{Deserialize, Serialize};

use crate::interference::linear::Rule;
use crate::interference::nonlinear::{
    LearningOptions, LossKind, Mode, Schedule, Sequential, SequentialResult, Trials,
};
use crate::io::fmt_value;
use crate::latent::finite_n::{FiniteNSpec, Order, MAX_N};
use crate::latent::flow::{
    seeding_time_formula, seeding_time_quadrature, seeding_time_simulated, EigenFixedPoint,
};
use crate::latent::gain::{Gain, GainKind};
use crate::model::ModelFile;
use crate::num::ode::OdeOptions;
use crate::num::planar::FixedPoint;
use crate::report::{fmt_num, Report};
use crate::Result;

mod text;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatent {
    pub gain: String,
    pub zhat: f64,
    #[serde(default = "default_loss")]
    pub loss: String,
    pub schedule: RawSchedule,
    #[serde(default)]
    pub init: RawInit,
    pub learning: RawLearning,
    #[serde(default)]
    pub seeding: RawSeeding,
    #[serde(default)]
    pub finite_n: Option<RawFiniteN>,
}

/// `[finite_n]` as written: values are checked by hand so that a non-integer `n` or an unknown
/// `order` gets a message naming the field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFiniteN {
    pub n: toml::Value,
    #[serde(default = "default_finite_n_seed")]
    pub seed: toml::Value,
    pub order: toml::Value,
}

fn default_finite_n_seed() -> toml::Value {
    toml::Value::Integer(1)
}

impl RawFiniteN {
    /// Validate (before anything is drawn or allocated): n an integer in [2, MAX_N], seed an
    /// integer >= 0, order 3, 5 or "exact".
    pub fn check(&self, c: &crate::model::Checker) -> Result<FiniteNSpec> {
        let n =
            match &self.n {
                toml::Value::Integer(v) if (2..=MAX_N as i64).contains(v) => *v as usize,
                toml::Value::Integer(v) => return Err(c.error(
                    "finite_n.n",
                    v,
                    &format!("integer in [2, {MAX_N}]"),
                    "the number of neurons of the pattern draw (the draw replays the network's \
                     N^2 W0 draws, so N is capped)",
                )),
                other => {
                    return Err(c.error(
                        "finite_n.n",
                        other,
                        &format!("integer in [2, {MAX_N}]"),
                        "the number of neurons must be an integer",
                    ))
                }
            };
        let seed = match &self.seed {
            toml::Value::Integer(v) if *v >= 0 => *v as u64,
            other => {
                return Err(c.error(
                    "finite_n.seed",
                    other,
                    "integer >= 0",
                    "the network seed whose pattern draw is used",
                ))
            }
        };
        let order = match &self.order {
            toml::Value::Integer(3) => Order::Three,
            toml::Value::Integer(5) => Order::Five,
            toml::Value::String(s) if s == "exact" => Order::Exact,
            other => {
                return Err(c.error(
                    "finite_n.order",
                    other,
                    "3, 5 or \"exact\"",
                    "unknown order of the finite-N gain",
                ))
            }
        };
        Ok(FiniteNSpec { n, seed, order })
    }
}

fn default_loss() -> String {
    "aligned".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub u_p: f64,
    pub t_in: f64,
    #[serde(default)]
    pub u_s: f64,
    pub t_d: f64,
    pub t_l: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInit {
    #[serde(default)]
    pub m0: [[f64; 2]; 2],
    #[serde(default)]
    pub eps: f64,
    #[serde(default = "default_eps_kind")]
    pub eps_kind: String,
}

impl Default for RawInit {
    fn default() -> Self {
        RawInit {
            m0: [[0.0; 2]; 2],
            eps: 0.0,
            eps_kind: default_eps_kind(),
        }
    }
}

fn default_eps_kind() -> String {
    "offdiag".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLearning {
    pub eta: f64,
    pub tol_a: f64,
    pub tol_b: f64,
    #[serde(default = "default_tau_max")]
    pub tau_max: f64,
    #[serde(default = "default_max_steps")]
    pub max_steps: i64,
    #[serde(default = "default_rtol")]
    pub rtol: f64,
    #[serde(default = "default_trial_rtol")]
    pub trial_rtol: f64,
    #[serde(default = "default_rule")]
    pub rule: String,
}

fn default_rule() -> String {
    "gradient".into()
}

fn default_tau_max() -> f64 {
    1e4
}
fn default_max_steps() -> i64 {
    100_000
}
fn default_rtol() -> f64 {
    1e-5
}
fn default_trial_rtol() -> f64 {
    1e-7
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeeding {
    pub eps: f64,
    pub fraction: f64,
}

impl Default for RawSeeding {
    fn default() -> Self {
        RawSeeding {
            eps: 1.0 / 200f64.sqrt(),
            fraction: 0.9,
        }
    }
}

/// How the rotation seed eps enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EpsKind {
    /// M_ab = M_ba = (m0) + eps before task A.
    Offdiag,
    /// Each task's input leaks into the other pattern: u (e_mu + eps e_nu).
    Leak,
}

/// A validated `latent` model.
#[derive(Debug, Clone, Serialize)]
pub struct LatentSpec {
    pub gain: GainKind,
    pub zhat: f64,
    pub loss: LossKind,
    pub schedule: Schedule,
    /// M before task A, seed included.
    pub m0: [[f64; 2]; 2],
    pub eps: f64,
    pub eps_kind: EpsKind,
    pub eta: f64,
    pub tol_a: f64,
    pub tol_b: f64,
    pub tau_max: f64,
    pub max_steps: usize,
    pub rtol: f64,
    pub trial_rtol: f64,
    pub seeding_eps: f64,
    pub seeding_fraction: f64,
    /// The finite-N gain to predict with beside the Gaussian limit (claim I-14).
    pub finite_n: Option<FiniteNSpec>,
    /// The learning rule of both tasks (THEORY III.1): the exact adjoint or e-prop.
    pub rule: Rule,
}

/// sqrt(2/pi): the supremum of the rate readout sqrt(D) G(D) for both gains.
pub fn zhat_limit() -> f64 {
    std::f64::consts::FRAC_2_PI.sqrt()
}

impl RawLatent {
    /// Validate into a [`LatentSpec`]; errors name the file, the field and the allowed range.
    pub fn check(&self, model: &ModelFile) -> Result<LatentSpec> {
        let c = model.checker();
        let gain = match c.one_of("gain", &self.gain, &["erf", "tanh"])? {
            "erf" => GainKind::Erf,
            _ => GainKind::Tanh,
        };
        c.finite("zhat", self.zhat)?;
        if !(self.zhat > 0.0 && self.zhat < zhat_limit()) {
            return Err(c.error(
                "zhat",
                self.zhat,
                &format!("(0, sqrt(2/pi) = {:.6})", zhat_limit()),
                "impossible target: no attractor has a rate readout >= sqrt(2/pi) (or <= 0)",
            ));
        }
        let loss = match c.one_of("loss", &self.loss, &["own", "aligned"])? {
            "own" => LossKind::Own,
            _ => LossKind::Aligned,
        };
        let s = &self.schedule;
        let schedule = Schedule {
            u_p: c.finite("schedule.u_p", s.u_p)?,
            t_in: c.positive("schedule.t_in", s.t_in)?,
            u_s: c.finite("schedule.u_s", s.u_s)?,
            t_d: c.positive("schedule.t_d", s.t_d)?,
            t_l: c.positive("schedule.t_l", s.t_l)?,
        };
        if schedule.t_l > schedule.t_d {
            return Err(c.error(
                "schedule.t_l",
                schedule.t_l,
                &format!("(0, t_d = {}]", schedule.t_d),
                "the loss window must lie inside the delay",
            ));
        }
        let mut m0 = self.init.m0;
        for (i, row) in m0.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                c.finite(&format!("init.m0[{i}][{j}]"), *v)?;
            }
        }
        let eps = c.non_negative("init.eps", self.init.eps)?;
        let eps_kind = match c.one_of("init.eps_kind", &self.init.eps_kind, &["offdiag", "leak"])? {
            "offdiag" => EpsKind::Offdiag,
            _ => EpsKind::Leak,
        };
        if eps_kind == EpsKind::Offdiag {
            m0[0][1] += eps;
            m0[1][0] += eps;
        }
        let l = &self.learning;
        let rule = match c.one_of("learning.rule", &l.rule, &Rule::NAMES)? {
            "eprop" => Rule::Eprop,
            _ => Rule::Gradient,
        };
        if rule == Rule::Eprop && self.finite_n.is_some() {
            return Err(c.error(
                "learning.rule",
                "eprop",
                "gradient (with [finite_n])",
                "e-prop keeps each neuron's W_jj phi'(x_j), which has no 2-D projection for a finite-N pattern draw",
            ));
        }
        let spec = LatentSpec {
            gain,
            zhat: self.zhat,
            loss,
            schedule,
            m0,
            eps,
            eps_kind,
            eta: c.in_range("learning.eta", l.eta, 1e-8, 1e8)?,
            tol_a: c.positive("learning.tol_a", l.tol_a)?,
            tol_b: c.positive("learning.tol_b", l.tol_b)?,
            tau_max: c.positive("learning.tau_max", l.tau_max)?,
            max_steps: c.count("learning.max_steps", l.max_steps, 1, 10_000_000)?,
            // below 1e-12 (trial 1e-13) Dormand–Prince hits rounding; above 1e-2 the
            // learning flow (trial gradients) is too inaccurate to stop reliably
            rtol: c.in_range("learning.rtol", l.rtol, 1e-12, 1e-2)?,
            trial_rtol: c.in_range("learning.trial_rtol", l.trial_rtol, 1e-13, 1e-4)?,
            seeding_eps: c.positive("seeding.eps", self.seeding.eps)?,
            seeding_fraction: c.in_open("seeding.fraction", self.seeding.fraction, 0.0, 1.0)?,
            finite_n: self.finite_n.as_ref().map(|f| f.check(&c)).transpose()?,
            rule,
        };
        let lambda = Gain::new(gain).lambda_for_target(spec.zhat)?;
        let r = Gain::new(gain).radius_sq_for_eigenvalue(lambda)?.sqrt();
        if spec.seeding_eps >= spec.seeding_fraction * r {
            return Err(c.error(
                "seeding.eps",
                spec.seeding_eps,
                &format!("(0, fraction |kappa_A| = {:.6})", spec.seeding_fraction * r),
                "the seed must start below the level that counts as reaching the attractor",
            ));
        }
        Ok(spec)
    }
}

impl LatentSpec {
    /// Parse and validate a `latent` model file.
    pub fn from_model(model: &ModelFile) -> Result<Self> {
        model.raw::<RawLatent>()?.check(model)
    }

    /// The trial definition (forward/adjoint tolerances `trial_rtol`, atol 1e-3 of it: the
    /// states are O(0.1-1)).
    pub fn trials(&self) -> Trials {
        Trials {
            gain: Gain::new(self.gain),
            schedule: self.schedule,
            loss: self.loss,
            zhat: self.zhat,
            leak: if self.eps_kind == EpsKind::Leak {
                self.eps
            } else {
                0.0
            },
            ode: OdeOptions {
                rtol: self.trial_rtol,
                atol: 1e-3 * self.trial_rtol,
                ..OdeOptions::default()
            },
            finite_n: None,
            rule: self.rule,
        }
    }

    /// The sequential protocol A then B.
    pub fn sequential(&self) -> Sequential {
        let opts = |tol| LearningOptions {
            eta: self.eta,
            tol,
            tau_max: self.tau_max,
            ode: OdeOptions {
                rtol: self.rtol,
                atol: 1e-3 * self.rtol,
                max_steps: self.max_steps,
                ..OdeOptions::default()
            },
        };
        Sequential {
            trials: self.trials(),
            learning_a: opts(self.tol_a),
            learning_b: opts(self.tol_b),
        }
    }

    pub fn m0(&self) -> Matrix2<f64> {
        Matrix2::new(self.m0[0][0], self.m0[0][1], self.m0[1][0], self.m0[1][1])
    }
}

/// The target attractor of task A (claims I-1, I-2).
#[derive(Debug, Clone, Serialize)]
pub struct TargetAttractor {
    /// lambda_A: eigenvalue of M whose attractor reads out zhat.
    pub lambda_a: f64,
    /// |kappa_A|.
    pub radius: f64,
    /// Jacobian eigenvalue along a at kappa_A for M = lambda_A e_a e_a^T: 2 lambda_A G' |kappa_A|^2.
    pub eigenvalue_a: f64,
    /// Jacobian eigenvalue along b there: -1.
    pub eigenvalue_b: f64,
    /// Growth rate at the origin along a: lambda_A - 1.
    pub origin_growth: f64,
}

/// Seeding time of claim I-3.
#[derive(Debug, Clone, Serialize)]
pub struct Seeding {
    pub eps: f64,
    pub fraction: f64,
    /// Leading order ln(|kappa_A| / eps) / (lambda_A - 1).
    pub formula: f64,
    /// Exact time to reach fraction |kappa_A| by quadrature of the 1-D flow.
    pub quadrature: f64,
    /// The same from the 2-D ODE with an event.
    pub simulated: f64,
}

/// Result of `predict` for a `latent` model.
#[derive(Debug, Clone, Serialize)]
pub struct LatentReport {
    pub spec: LatentSpec,
    pub target: TargetAttractor,
    pub seeding: Seeding,
    pub sequential: SequentialResult,
}

/// Everything the `latent` kind predicts for a model file.
pub fn predict(model: &ModelFile) -> Result<LatentReport> {
    let spec = LatentSpec::from_model(model)?;
    let gain = Gain::new(spec.gain);
    let lambda_a = gain.lambda_for_target(spec.zhat)?;
    let d = gain.radius_sq_for_eigenvalue(lambda_a)?;
    let (_, gp) = gain.g_and_slope(d);
    let target = TargetAttractor {
        lambda_a,
        radius: d.sqrt(),
        eigenvalue_a: 2.0 * lambda_a * gp * d,
        eigenvalue_b: -1.0,
        origin_growth: lambda_a - 1.0,
    };
    let ode = OdeOptions {
        rtol: 1e-11,
        atol: 1e-14,
        ..OdeOptions::default()
    };
    let (eps, f) = (spec.seeding_eps, spec.seeding_fraction);
    let seeding = Seeding {
        eps,
        fraction: f,
        formula: seeding_time_formula(lambda_a, d.sqrt(), eps),
        quadrature: seeding_time_quadrature(&gain, lambda_a, eps, f)?,
        simulated: seeding_time_simulated(&gain, lambda_a, eps, f, &ode)?,
    };
    let (sequential, _, _) = spec.sequential().run(&spec.m0())?;
    Ok(LatentReport {
        spec,
        target,
        seeding,
        sequential,
    })
}

#[cfg(test)]
mod tests;
