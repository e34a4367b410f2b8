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

/// An eigenvalue [re, im] as "re" or "re ± im i".
fn eig_text(e: [f64; 2]) -> String {
    if e[1] == 0.0 {
        fmt_num(e[0])
    } else {
        format!(
            "{}{}{}i",
            fmt_num(e[0]),
            if e[1] < 0.0 { "-" } else { "+" },
            fmt_num(e[1].abs())
        )
    }
}

fn fp_plain(out: &mut String, fps: &[FixedPoint]) {
    for f in fps {
        out.push_str(&format!(
            "      ({:>10}, {:>10})  eigenvalues {} / {}  {}\n",
            fmt_num(f.x[0]),
            fmt_num(f.x[1]),
            eig_text(f.eigenvalues[0]),
            eig_text(f.eigenvalues[1]),
            f.kind.label()
        ));
    }
}

fn fp_lines(out: &mut String, fps: &[EigenFixedPoint]) {
    for f in fps {
        let ev = f.point.eigenvalues;
        out.push_str(&format!(
            "      ({:>10}, {:>10})  lambda {:>9}  |y| {:>9}  eigenvalues {} / {}  {}\n",
            fmt_num(f.point.x[0]),
            fmt_num(f.point.x[1]),
            fmt_num(f.lambda),
            fmt_num(f.readout),
            eig_text(ev[0]),
            eig_text(ev[1]),
            f.point.kind.label()
        ));
    }
}

fn gain_name(g: GainKind) -> &'static str {
    match g {
        GainKind::Erf => "erf",
        GainKind::Tanh => "tanh",
    }
}

fn loss_name(l: LossKind) -> &'static str {
    match l {
        LossKind::Own => "own",
        LossKind::Aligned => "aligned",
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Rotation => "ROTATION",
        Mode::NewFormation => "NEW FORMATION",
        Mode::Undetermined => "UNDETERMINED",
    }
}

impl Report for LatentReport {
    fn text(&self) -> String {
        let mut o = String::new();
        self.header_text(&mut o);
        self.verdict_text(&mut o);
        self.sections_text(&mut o);
        self.fixed_points_text(&mut o);
        o
    }
}

/// The sections of [`LatentReport`]'s text, in order.
impl LatentReport {
    /// Title, model line and parameters.
    fn header_text(&self, o: &mut String) {
        let sp = &self.spec;
        let sc = &sp.schedule;
        o.push_str(&format!(
            "modeflow · learning modes of the latent 2x2 model ({} gain, {} loss)\n",
            gain_name(sp.gain),
            loss_name(sp.loss)
        ));
        o.push_str(
            "  latent flow kappa' = -kappa + G(|kappa|^2) M kappa + u(t) e_mu (THEORY I.2);\n",
        );
        o.push_str(match sp.rule {
            Rule::Gradient => "  gradient flow on M, task A then task B\n\n",
            Rule::Eprop => {
                "  e-prop flow on M (adjoint Jacobian -> its diagonal, the leak; THEORY III.1), task A then task B\n\n"
            }
        });
        o.push_str(&format!(
            "  zhat = {}   u_p = {}   T_in = {}   u_s = {}   T_d = {}   T_l = {}   seed eps = {}\n\n",
            fmt_value(sp.zhat),
            fmt_value(sc.u_p),
            fmt_value(sc.t_in),
            fmt_value(sc.u_s),
            fmt_value(sc.t_d),
            fmt_value(sc.t_l),
            fmt_value(sp.eps)
        ));
    }

    /// The verdict first, then the numbers that explain it.
    fn verdict_text(&self, o: &mut String) {
        let s = &self.sequential;
        // Verdict first, then the numbers that explain it.
        let fate = if s.interference < 0.05 {
            "A survives"
        } else if s.interference < 1.0 {
            "A is partly forgotten"
        } else {
            "A is forgotten"
        };
        o.push_str(&format!(
            "VERDICT  {}: {}.\n         {fate}: interference I = L_A(after B)/L_A(untrained) = {}.\n",
            mode_name(s.mode),
            s.mode_reason,
            fmt_num(s.interference)
        ));
        let dm = &s.decomposition;
        o.push_str(&format!(
            "         Delta M during B: rotation part |R| = {}, new-formation part |N| = {} (rotation share {}).\n",
            fmt_num(dm.rotation_norm),
            fmt_num(dm.new_formation_norm),
            fmt_num(dm.rotation_share)
        ));
        if let Some(tr) = &s.a_fixed_point {
            let th = tr.theta_continued.or(tr.theta_nearest);
            if let (Some(th), Some(i)) = (th, tr.interference_from_theta) {
                o.push_str(&format!(
                    "         The A fixed point turned by theta = {} rad ({});\n         a pure rotation would give I = 2(1 - cos theta) = {}.\n",
                    fmt_num(th),
                    if tr.theta_continued.is_some() {
                        "continued along learning"
                    } else {
                        "to the nearest remaining fixed point"
                    },
                    fmt_num(i)
                ));
            }
        }
        o.push('\n');
    }

    /// 1.-3.: the target attractor, the seeding time, the learning runs.
    fn sections_text(&self, o: &mut String) {
        let s = &self.sequential;
        let t = &self.target;
        o.push_str("1. TARGET ATTRACTOR OF TASK A (I-1, I-2)\n");
        o.push_str(&format!(
            "    lambda_A = {}   |kappa_A| = {}   Jacobian eigenvalues {} (along a), {} (along b)   origin grows at {}\n\n",
            fmt_num(t.lambda_a),
            fmt_num(t.radius),
            fmt_num(t.eigenvalue_a),
            fmt_num(t.eigenvalue_b),
            fmt_num(t.origin_growth)
        ));
        let sd = &self.seeding;
        o.push_str(&format!(
            "2. SEEDING TIME (I-3), eps = {}\n",
            fmt_num(sd.eps)
        ));
        o.push_str(&format!(
            "    leading order {}   exact to {} |kappa_A| (quadrature) {}   ODE {}\n\n",
            fmt_num(sd.formula),
            sd.fraction,
            fmt_num(sd.quadrature),
            fmt_num(sd.simulated)
        ));
        o.push_str(match self.spec.rule {
            Rule::Gradient => "3. LEARNING (gradient flow on M)\n",
            Rule::Eprop => "3. LEARNING (e-prop flow on M)\n",
        });
        for (task, l) in [("A", &s.learning_a), ("B", &s.learning_b)] {
            o.push_str(&format!(
                "    task {task}: tau = {} ({}), L_{task} {} -> {}\n",
                fmt_num(l.tau),
                if l.converged {
                    "converged"
                } else {
                    "NOT converged"
                },
                fmt_num(l.loss_start),
                fmt_num(l.loss_end)
            ));
        }
        o.push('\n');
    }

    /// 4. The fixed points after A and after B.
    fn fixed_points_text(&self, o: &mut String) {
        let s = &self.sequential;
        let sc = &self.spec.schedule;
        o.push_str("4. FIXED POINTS (the memories; also drawn by `modeflow phase`)\n");
        o.push_str("    autonomous flow after A (closed form, I-1):\n");
        fp_lines(o, &s.attractors_after_a);
        o.push_str("    autonomous flow after B:\n");
        fp_lines(o, &s.attractors_after_b);
        if sc.u_s != 0.0 {
            for (label, set) in [
                ("after A", &s.delay_fixed_points_after_a),
                ("after B", &s.delay_fixed_points_after_b),
            ] {
                for (task, fps) in [("A", &set.task_a), ("B", &set.task_b)] {
                    o.push_str(&format!(
                        "    task-{task} delay flow (input u_s e_{}) {label}:\n",
                        task.to_lowercase()
                    ));
                    fp_plain(o, fps);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interference::nonlinear::Mode;
    use crate::Error;

    const ROTATION: &str = include_str!("../../models/latent-rotation.toml");
    const NEW_FORMATION: &str = include_str!("../../models/latent-new-formation.toml");

    fn field_error(text: &str) -> (String, String) {
        let m = crate::model::parse("test.toml", text).unwrap();
        match LatentSpec::from_model(&m) {
            Err(Error::Parameter { field, reason, .. }) => (field, reason),
            Err(e) => ("<other>".into(), e.to_string()),
            Ok(_) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn impossible_target_names_zhat() {
        let (field, reason) = field_error(&ROTATION.replace("zhat = 0.5", "zhat = 0.8"));
        assert_eq!(field, "zhat");
        assert!(reason.contains("impossible"), "{reason}");
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("eta = 1.0", "eta = -1.0", "learning.eta"),
            ("t_l = 2.0", "t_l = 12.0", "schedule.t_l"),
            ("t_d = 10.0", "t_d = nan", "schedule.t_d"),
            ("gain = \"erf\"", "gain = \"relu\"", "gain"),
            ("fraction = 0.9", "fraction = 1.0", "seeding.fraction"),
            ("eps = 0.07071067811865475", "eps = 0.7", "seeding.eps"),
            (
                "eps_kind = \"offdiag\"",
                "eps_kind = \"both\"",
                "init.eps_kind",
            ),
            ("eta = 1.0", "eta = 1.0\nrule = \"bptt\"", "learning.rule"),
        ];
        for (from, to, field) in cases {
            assert!(ROTATION.contains(from), "{from}");
            assert_eq!(field_error(&ROTATION.replace(from, to)).0, field, "{to}");
        }
    }

    #[test]
    fn eprop_with_finite_n_names_the_rule() {
        let text = ROTATION.replace("eta = 1.0", "eta = 1.0\nrule = \"eprop\"")
            + "\n[finite_n]\nn = 64\nseed = 1\norder = \"exact\"\n";
        let (field, reason) = field_error(&text);
        assert_eq!(field, "learning.rule");
        assert!(reason.contains("W_jj"), "{reason}");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let m = crate::model::parse(
            "t.toml",
            &ROTATION.replace("eta = 1.0", "eta = 1.0\netta = 2.0"),
        )
        .unwrap();
        let e = LatentSpec::from_model(&m).unwrap_err().to_string();
        assert!(e.contains("etta"), "{e}");
    }

    #[test]
    fn shipped_models_predict_their_modes() {
        // rotation: u_s = 0, the A memory is overwritten (I ~ 2); new formation: u_s = 0.3,
        // the A fixed point survives beside a new one (I << 1)
        let m = crate::model::parse("rot.toml", ROTATION).unwrap();
        let r = predict(&m).unwrap();
        let s = &r.sequential;
        assert!(s.learning_a.converged && s.learning_b.converged);
        assert_eq!(s.mode, Mode::Rotation, "{}", s.mode_reason);
        assert!(s.interference > 1.5, "{}", s.interference);
        assert!((r.target.lambda_a - 1.283).abs() < 5e-4);
        assert!((r.seeding.simulated - r.seeding.quadrature).abs() < 1e-8);
        let m = crate::model::parse("new.toml", NEW_FORMATION).unwrap();
        let s = predict(&m).unwrap().sequential;
        assert_eq!(s.mode, Mode::NewFormation, "{}", s.mode_reason);
        assert!(s.interference < 0.1, "{}", s.interference);
        assert!(s.decomposition.rotation_share < 0.1);
        assert!(!r.text().is_empty());
    }

    /// The moderate tolerances of the shipped model (trial rtol 1e-6, learning rtol 1e-4, chosen
    /// for the 20 ms budget) reproduce a tight run (1e-10, 1e-8): learning times to 1e-3 and
    /// interference to 1e-4 relative (measured: 4e-5 and 3e-6).
    #[test]
    fn moderate_tolerances_agree_with_tight_reference() {
        let m = crate::model::parse("rot.toml", ROTATION).unwrap();
        let run = |tr: f64, lr: f64| {
            let mut spec = LatentSpec::from_model(&m).unwrap();
            spec.trial_rtol = tr;
            spec.rtol = lr;
            let seq = spec.sequential();
            let a = crate::interference::nonlinear::learn(
                &seq.trials,
                &spec.m0(),
                crate::interference::nonlinear::Task::A,
                &seq.learning_a,
            )
            .unwrap();
            let b = crate::interference::nonlinear::learn(
                &seq.trials,
                &a.m_end,
                crate::interference::nonlinear::Task::B,
                &seq.learning_b,
            )
            .unwrap();
            let i = seq
                .trials
                .loss(&b.m_end, crate::interference::nonlinear::Task::A)
                .unwrap()
                / a.loss_start;
            (a.tau, b.tau, i)
        };
        let spec = LatentSpec::from_model(&m).unwrap();
        let (ta, tb, i) = run(spec.trial_rtol, spec.rtol);
        let (ta0, tb0, i0) = run(1e-10, 1e-8);
        assert!(((ta - ta0) / ta0).abs() < 1e-3, "{ta} vs {ta0}");
        assert!(((tb - tb0) / tb0).abs() < 1e-3, "{tb} vs {tb0}");
        assert!(((i - i0) / i0).abs() < 1e-4, "{i} vs {i0}");
    }
}
