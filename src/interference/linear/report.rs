//! The learning-mode report of a `linear2x2` model (the main job): fixed points and their
//! stability, which mode wins and why, predicted interference and learning times, every analytic
//! number beside its ODE value.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use nalgebra::{Matrix2, Vector2};
use serde::Serialize;

use super::closed::{self, Params, Task};
use super::exact_path;
use super::flow::{self, Loss, Pathway, Rule, TaskB};
use super::race::{self, Mode};
use super::spec::{self, LinearSpec};
pub use crate::compare::Compared;
use crate::model::ModelFile;
use crate::num::eig2::FixedPointType;
use crate::num::ode;
use crate::num::planar::{self, PlanarFlow};
use crate::report::Report;
use crate::Result;

/// The network dynamics kappa' = -kappa + M kappa + u e_mu as a planar flow (Jacobian -I + M).
#[derive(Debug, Clone, Copy)]
pub struct InputDriven {
    pub m: Matrix2<f64>,
    /// The input u e_mu.
    pub input: Vector2<f64>,
}

impl PlanarFlow for InputDriven {
    fn flow(&self, x: &Vector2<f64>) -> Vector2<f64> {
        -x + self.m * x + self.input
    }
    fn jacobian(&self, _x: &Vector2<f64>) -> Matrix2<f64> {
        self.m - Matrix2::identity()
    }
}

/// One input-driven fixed point with its stability.
#[derive(Debug, Clone, Serialize)]
pub struct FixedPointReport {
    /// e.g. "A before B".
    pub label: String,
    /// The task whose input drives it.
    pub task: Task,
    /// kappa in the basis (a, b), closed form u R e_mu.
    pub coordinates: [f64; 2],
    /// The state the network ODE relaxes to from kappa = 0 (stable fixed points only).
    pub relaxed: Option<[f64; 2]>,
    /// |relaxed - coordinates| (max norm).
    pub difference: Option<f64>,
    /// |F(kappa)| at the closed form.
    pub residual: f64,
    /// Readout of the task's own pattern, z_mu mu.
    pub readout: f64,
    /// Eigenvalues of J = -I + M, [re, im] each.
    pub eigenvalues: [[f64; 2]; 2],
    #[serde(rename = "type")]
    pub kind: FixedPointType,
}

/// The I-8 race: criterion, estimates, crossovers.
#[derive(Debug, Clone, Serialize)]
pub struct Race {
    /// (r/2) ln(r (1 - r) / eps^2).
    pub lhs: f64,
    /// 1 - r.
    pub rhs: f64,
    /// The winner the criterion predicts.
    pub criterion_winner: Mode,
    /// Initial exponential rate of rotation, 2 eta zhat^2 (1 - r).
    pub rotation_rate: f64,
    /// rho0 = G_A eps^2 = eps^2 / r, the seed of the rotation part of s_eff.
    pub rho0: f64,
    /// Rotation time scale ln(r (1 - r) / eps^2) / (2 eta zhat^2 (1 - r)).
    pub rotation_estimate: f64,
    /// New-formation time scale 1 / (eta u zhat).
    pub new_formation_estimate: f64,
    /// r*(eps) from the criterion.
    pub r_star: Option<f64>,
    /// The full-ODE crossover at this eps (rotation share = 1/2).
    pub r_star_ode: Option<f64>,
    /// I-16: the crossover from the closed-form task-B path (the exact criterion
    /// [`exact_path::refined_margin`] = 0; equals `r_star_ode` to its root tolerance).
    pub r_star_refined: Option<f64>,
}

/// The e-prop race of E-2 (closed form beside the ODE) and the gradient flow on the same
/// protocol, for comparison. Under e-prop lambda and p stay, so s_eff = s + p q/(1 - lambda)
/// grows as k s along the straight line dq/ds = p/(1 - lambda), k = 1 + p^2/(1 - lambda)^2.
#[derive(Debug, Clone, Serialize)]
pub struct EpropRace {
    /// k = 1 + eps^2/r^2 on the reference protocol.
    pub k: f64,
    /// Learning time of B: closed form (`closed::t_eprop`) vs the integrated e-prop flow.
    pub t_b: Compared,
    /// Interference: closed form vs ODE.
    pub interference: Compared,
    /// Rotation share p^2/((1 - lambda)^2 + p^2) = eps^2/(r^2 + eps^2): closed form vs ODE.
    pub rotation_share: Compared,
    /// q = M_ba after B: closed form vs ODE.
    pub q_after: Compared,
    /// s = M_bb after B: closed form vs ODE.
    pub s_after: Compared,
    /// The e-prop crossover r* = eps (rotation share 1/2 where p = 1 - lambda); `None` when
    /// eps >= 1/2 (no r with eps^2 < r(1 - r) reaches it).
    pub r_star: Option<f64>,
    /// Interference under the gradient flow (I-8) on the same protocol.
    pub gradient_interference: f64,
    /// Learning time of B under the gradient flow.
    pub gradient_t_b: f64,
    /// Winner under the gradient flow.
    pub gradient_winner: Mode,
}

/// The learning-mode report of a `linear2x2` model.
#[derive(Debug, Clone, Serialize)]
pub struct LinearReport {
    pub name: String,
    pub description: String,
    pub spec: LinearSpec,
    /// The learning rule of tasks A and B (gradient flow or e-prop).
    pub rule: Rule,
    pub r: f64,
    /// Winner by the full ODE: the pathway carrying more of the change of s_eff.
    pub winner: Mode,
    /// Share of delta s_eff carried by rotation (full ODE).
    pub rotation_share: f64,
    /// Interference I = L_A(after B) / L_A(M = 0), own loss, full ODE.
    pub interference: f64,
    /// Time for new formation alone to learn B (I-7 closed form vs ODE; e-prop: `t_eprop`, k = 1).
    pub t_new: Compared,
    /// Time for rotation alone to learn B (I-7 closed form vs ODE; e-prop: `t_eprop`,
    /// k = eps^2/r^2).
    pub t_rot: Compared,
    /// Time to learn A from M = 0 (same equation as new formation: closed form t_new; e-prop:
    /// `t_eprop` with y = 1 - lambda, k = 1).
    pub t_a: Compared,
    /// lambda_A = 1 - r vs the lambda task A reaches.
    pub lambda_a: Compared,
    /// G_A = zhat / u.
    pub gain_a: f64,
    /// r*(eps) of the rule: the I-8 criterion for the gradient flow, r* = eps for e-prop.
    pub r_star: Option<f64>,
    /// The I-8 race criterion of the gradient flow (for e-prop: what the gradient would do).
    pub race: Race,
    /// Task B under the full flow of the rule.
    pub task_b: TaskB,
    /// The e-prop race in closed form (rule = eprop only).
    pub eprop: Option<EpropRace>,
    pub fixed_points: Vec<FixedPointReport>,
}

/// Relax the network from kappa = 0 to its fixed point (event |kappa'| < 1e-11 (1 + u)); `None` if the
/// fixed point is unstable or the relaxation does not settle by t = 1e4.
fn relax(flow: &InputDriven) -> Option<Vector2<f64>> {
    let opts = flow::precise_options();
    let (traj, hit) = ode::solve_until(
        |_, x| flow.flow(x),
        0.0,
        Vector2::zeros(),
        1e4,
        |_, x| flow.flow(x).norm() - 1e-11 * (1.0 + flow.input.norm()),
        &opts,
    )
    .ok()?;
    hit.map(|t| traj.eval(t))
}

fn fixed_point_report(
    label: &str,
    m: &Matrix2<f64>,
    task: Task,
    u: f64,
) -> Result<FixedPointReport> {
    let kappa = closed::fixed_point(m, u, task)?;
    let sys = InputDriven {
        m: *m,
        input: task.unit() * u,
    };
    let fp = planar::fixed_point_at(&sys, &kappa);
    let relaxed = if fp.kind.is_stable() {
        relax(&sys)
    } else {
        None
    };
    Ok(FixedPointReport {
        label: label.to_string(),
        task,
        coordinates: [kappa[0], kappa[1]],
        relaxed: relaxed.map(|x| [x[0], x[1]]),
        difference: relaxed.map(|x| (x - kappa).amax()),
        residual: sys.flow(&kappa).norm(),
        readout: kappa[task.index()],
        eigenvalues: fp.eigenvalues,
        kind: fp.kind,
    })
}

/// A memo shared between threads: each key computed once, a second caller of the same key
/// waits for the first. Errors are not stored (a failed key is computed again when asked).
#[derive(Debug)]
struct Memo<K, V> {
    map: Mutex<HashMap<K, Arc<Mutex<Option<V>>>>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    fn get_or(&self, key: K, compute: impl FnOnce() -> Result<V>) -> Result<V> {
        // A poisoned lock only means another thread panicked while holding it; the map and the
        // cells hold finished values only, so they are still valid.
        let cell = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let mut slot = cell.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = slot.as_ref() {
            return Ok(v.clone());
        }
        let v = compute()?;
        *slot = Some(v.clone());
        Ok(v)
    }

    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Bits of the parameters a part depends on (memo keys compare f64 bit for bit).
fn bits<const N: usize>(x: [f64; N]) -> [u64; N] {
    x.map(f64::to_bits)
}

/// Memo key of a part: the bits of its parameters and the learning rule it runs under.
type Key<const N: usize> = ([u64; N], Rule);

/// Task A's numbers: t_a, lambda_a.
type TaskAPart = (Compared, Compared);

/// The parts of a prediction that many points of a sweep share, memoised: the full-flow
/// crossover `race::crossover_ode_rule(eps, tol, rule)` per (eps, tol, rule), task A and the
/// new-formation-only flow per (u, zhat, eta, tol, rule) (they do not depend on eps). Every
/// part is computed by the same function [`predict_spec`] uses, and a memoised value is the
/// value computed the first time, so a prediction through a shared `Predictor` is
/// bit-identical to one through a fresh one, for either rule (tested). Safe to share between
/// threads.
#[derive(Debug, Default)]
pub struct Predictor {
    crossover: Memo<Key<2>, Option<f64>>,
    task_a: Memo<Key<4>, TaskAPart>,
    t_new: Memo<Key<4>, Compared>,
}

impl Predictor {
    /// The full-ODE crossover at (eps, tol) of the flow of `rule`
    /// ([`race::crossover_ode_rule`]; the report's I-8 race takes the gradient flow's).
    pub fn crossover(&self, eps: f64, tol: f64, rule: Rule) -> Result<Option<f64>> {
        self.crossover.get_or((bits([eps, tol]), rule), || {
            race::crossover_ode_rule(eps, tol, rule)
        })
    }

    fn task_a(&self, par: &Params, rule: Rule, tol: f64) -> Result<TaskAPart> {
        self.task_a
            .get_or((bits([par.u, par.zhat, par.eta, tol]), rule), || {
                task_a_part(par, rule, tol)
            })
    }

    fn t_new(&self, par: &Params, rule: Rule, tol: f64) -> Result<Compared> {
        self.t_new
            .get_or((bits([par.u, par.zhat, par.eta, tol]), rule), || {
                t_new_part(par, rule, tol)
            })
    }

    /// Number of distinct (eps, tol, rule) crossovers, (u, zhat, eta, tol, rule) task-A and
    /// new-formation parts held.
    pub fn sizes(&self) -> [usize; 3] {
        [self.crossover.len(), self.task_a.len(), self.t_new.len()]
    }
}

/// The closed-form time of the one-factor equation from M = 0 (task A; new formation alone):
/// I-7's t_new for the gradient flow; for e-prop `t_eprop` with y = 1 - s_eff from 1 to
/// y1 = 1 - target, k = 1.
fn t_new_closed(par: &Params, rule: Rule, tol: f64) -> Result<f64> {
    let target = par.s_eff_target(tol);
    match rule {
        Rule::Gradient => closed::t_new(target, par),
        Rule::Eprop => closed::t_eprop(1.0, 1.0 - target, 1.0, par),
    }
}

/// Task A from M = 0 (own loss): lambda follows the new-formation equation with s -> lambda.
fn task_a_part(par: &Params, rule: Rule, tol: f64) -> Result<TaskAPart> {
    let precise = flow::precise_options_for(tol / par.zhat);
    let a = flow::learn_rule(
        &Matrix2::zeros(),
        Task::A,
        Loss::Own,
        Pathway::Full,
        rule,
        par,
        tol,
        &precise,
    )?;
    Ok((
        Compared::new(t_new_closed(par, rule, tol)?, a.t),
        Compared::new(par.c(), a.m[(0, 0)]),
    ))
}

/// New formation alone (I-7): t_new closed form vs ODE.
fn t_new_part(par: &Params, rule: Rule, tol: f64) -> Result<Compared> {
    let precise = flow::precise_options_for(tol / par.zhat);
    let nf = flow::learn_rule(
        &par.after_a(0.0),
        Task::B,
        Loss::Own,
        Pathway::NewFormation,
        rule,
        par,
        tol,
        &precise,
    )?;
    Ok(Compared::new(t_new_closed(par, rule, tol)?, nf.t))
}

/// Rotation alone (I-7): t_rot closed form vs ODE (e-prop: `t_eprop` from y0 = 1 - rho0 with
/// k = eps^2/r^2).
fn t_rot_part(par: &Params, eps: f64, rule: Rule, tol: f64) -> Result<Compared> {
    let precise = flow::precise_options_for(tol / par.zhat);
    let target = par.s_eff_target(tol);
    let rho0 = eps * eps * par.gain_a();
    let r = par.r();
    let closed_form = match rule {
        Rule::Gradient => closed::t_rot(target, rho0, par)?,
        Rule::Eprop => closed::t_eprop(1.0 - rho0, 1.0 - target, (eps / r) * (eps / r), par)?,
    };
    let rot = flow::learn_rule(
        &par.after_a(eps),
        Task::B,
        Loss::Own,
        Pathway::Rotation,
        rule,
        par,
        tol,
        &precise,
    )?;
    Ok(Compared::new(closed_form, rot.t))
}

/// The full flow of task B under the spec's rule (I-6; E-2 for e-prop).
fn task_b_part(spec: &LinearSpec) -> Result<TaskB> {
    flow::task_b_rule(
        &spec.params,
        spec.eps,
        spec.rule,
        spec.tolerance,
        &flow::ode_options(),
    )
}

/// The e-prop race (rule = eprop only): closed form beside `task_b`, the e-prop flow of task
/// B, and the gradient flow on the same protocol.
fn eprop_part(spec: &LinearSpec, task_b: &TaskB) -> Result<Option<EpropRace>> {
    let (par, eps, tol) = (&spec.params, spec.eps, spec.tolerance);
    Ok(match spec.rule {
        Rule::Gradient => None,
        Rule::Eprop => {
            let cf = closed::eprop_task_b(&par.after_a(eps), par, tol)?;
            let grad = flow::task_b(par, eps, tol, &flow::ode_options())?;
            Some(EpropRace {
                k: cf.k,
                t_b: Compared::new(cf.t, task_b.t),
                interference: Compared::new(cf.interference, task_b.interference),
                rotation_share: Compared::new(cf.rotation_share, task_b.rotation_share),
                q_after: Compared::new(cf.m_after[1][0], task_b.m_after[1][0]),
                s_after: Compared::new(cf.m_after[1][1], task_b.m_after[1][1]),
                r_star: eprop_r_star(eps),
                gradient_interference: grad.interference,
                gradient_t_b: grad.t,
                gradient_winner: Mode::from_share(grad.rotation_share),
            })
        }
    })
}

/// The e-prop crossover r* = eps (none for eps >= 1/2).
fn eprop_r_star(eps: f64) -> Option<f64> {
    (eps < 0.5).then_some(eps)
}

/// r*(eps) of the spec's rule: the I-8 criterion for the gradient flow, r* = eps for e-prop.
fn r_star_part(spec: &LinearSpec) -> Result<Option<f64>> {
    match spec.rule {
        Rule::Gradient => closed::r_star(spec.eps),
        Rule::Eprop => Ok(eprop_r_star(spec.eps)),
    }
}

/// The I-8 race of the gradient flow (under e-prop: what the gradient would do): criterion and
/// estimates in closed form, the gradient flow's crossover from `pred`.
fn race_part(spec: &LinearSpec, pred: &Predictor) -> Result<Race> {
    let par = &spec.params;
    let (r, eps) = (par.r(), spec.eps);
    let c = par.c();
    let rate = 2.0 * par.eta * par.zhat * par.zhat * c;
    Ok(Race {
        lhs: 0.5 * r * (r * c / (eps * eps)).ln(),
        rhs: c,
        criterion_winner: if closed::race_margin(r, eps) < 0.0 {
            Mode::Rotation
        } else {
            Mode::NewFormation
        },
        rotation_rate: rate,
        rho0: eps * eps * par.gain_a(),
        rotation_estimate: (r * c / (eps * eps)).ln() / rate,
        new_formation_estimate: 1.0 / (par.eta * par.u * par.zhat),
        r_star: closed::r_star(eps)?,
        r_star_ode: pred.crossover(eps, spec.tolerance, Rule::Gradient)?,
        r_star_refined: exact_path::r_star_refined(eps, spec.tolerance)?,
    })
}

/// The four input-driven fixed points before and after task B.
fn fixed_points_part(spec: &LinearSpec, task_b: &TaskB) -> Result<Vec<FixedPointReport>> {
    let par = &spec.params;
    let before = par.after_a(spec.eps);
    let m = &task_b.m_after;
    let after = Matrix2::new(m[0][0], m[0][1], m[1][0], m[1][1]);
    Ok(vec![
        fixed_point_report("A before B", &before, Task::A, par.u)?,
        fixed_point_report("B before B", &before, Task::B, par.u)?,
        fixed_point_report("A after B", &after, Task::A, par.u)?,
        fixed_point_report("B after B", &after, Task::B, par.u)?,
    ])
}

/// Predict the learning modes of a validated spec.
pub fn predict_spec(spec: &LinearSpec) -> Result<LinearReport> {
    predict_spec_with(spec, &Predictor::default())
}

/// [`predict_spec`] with the shared parts taken from (and added to) `pred`.
pub fn predict_spec_with(spec: &LinearSpec, pred: &Predictor) -> Result<LinearReport> {
    let par: Params = spec.params;
    let (tol, rule) = (spec.tolerance, spec.rule);
    let (t_a, lambda_a) = pred.task_a(&par, rule, tol)?;
    let t_new = pred.t_new(&par, rule, tol)?;
    let t_rot = t_rot_part(&par, spec.eps, rule, tol)?;
    let task_b = task_b_part(spec)?;
    let eprop = eprop_part(spec, &task_b)?;
    let race = race_part(spec, pred)?;
    let r_star = r_star_part(spec)?;
    let fixed_points = fixed_points_part(spec, &task_b)?;
    Ok(LinearReport {
        name: String::new(),
        description: String::new(),
        spec: *spec,
        rule,
        r: par.r(),
        winner: Mode::from_share(task_b.rotation_share),
        rotation_share: task_b.rotation_share,
        interference: task_b.interference,
        t_new,
        t_rot,
        t_a,
        lambda_a,
        gain_a: par.gain_a(),
        r_star,
        race,
        task_b,
        eprop,
        fixed_points,
    })
}

/// Validate a `linear2x2` model file and predict its learning modes.
pub fn predict(model: &ModelFile) -> Result<LinearReport> {
    let spec = spec::check(model)?;
    let mut rep = predict_spec(&spec)?;
    rep.name = model.common.name.clone();
    rep.description = model.common.description.clone();
    Ok(rep)
}

/// The top-level fields of the [`LinearReport`] JSON named in `fields` (others are left out;
/// names that are no field of the report are ignored), each computed by the function
/// [`predict_spec`] uses and only if asked for, shared parts from `pred`. For every field the
/// value is the one of `serde_json::to_value(predict(model))`, for either rule (tested). This
/// is what a sweep point computes: `outputs = ["winner", "interference"]` runs one task-B flow,
/// not the whole report.
pub fn predict_fields(
    model: &ModelFile,
    fields: &[&str],
    pred: &Predictor,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let spec = spec::check(model)?;
    let par = &spec.params;
    let (tol, rule) = (spec.tolerance, spec.rule);
    let json = |v: &dyn erased::Json| v.json();
    let mut out = serde_json::Map::new();
    let mut task_b: Option<TaskB> = None;
    for &f in fields {
        if out.contains_key(f) {
            continue;
        }
        let v = match f {
            "name" => json(&model.common.name),
            "description" => json(&model.common.description),
            "spec" => json(&spec),
            "rule" => json(&rule),
            "r" => json(&par.r()),
            "gain_a" => json(&par.gain_a()),
            "r_star" => json(&r_star_part(&spec)?),
            "t_a" => json(&pred.task_a(par, rule, tol)?.0),
            "lambda_a" => json(&pred.task_a(par, rule, tol)?.1),
            "t_new" => json(&pred.t_new(par, rule, tol)?),
            "t_rot" => json(&t_rot_part(par, spec.eps, rule, tol)?),
            "race" => json(&race_part(&spec, pred)?),
            "winner" | "rotation_share" | "interference" | "task_b" | "eprop" | "fixed_points" => {
                if task_b.is_none() {
                    task_b = Some(task_b_part(&spec)?);
                }
                let Some(b) = &task_b else { continue };
                match f {
                    "winner" => json(&Mode::from_share(b.rotation_share)),
                    "rotation_share" => json(&b.rotation_share),
                    "interference" => json(&b.interference),
                    "task_b" => json(b),
                    "eprop" => json(&eprop_part(&spec, b)?),
                    _ => json(&fixed_points_part(&spec, b)?),
                }
            }
            _ => continue,
        };
        out.insert(f.to_string(), v);
    }
    Ok(out)
}

/// Serialisation through a trait object, so one closure serves every field type.
mod erased {
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize + ?Sized> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Text rendering

/// A number with `sig` significant digits, fixed notation for moderate magnitudes.
fn num(x: f64, sig: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-3..5).contains(&mag) {
        return format!("{:.*e}", sig.saturating_sub(1), x);
    }
    let dec = (sig as i32 - 1 - mag).max(0) as usize;
    format!("{x:.dec$}")
}

/// An input parameter as typed (shortest form after rounding to 10 significant digits).
fn short(x: f64) -> String {
    format!("{x:.9e}")
        .parse::<f64>()
        .map(|v| v.to_string())
        .unwrap_or_else(|_| x.to_string())
}

/// A small difference, always scientific.
fn diff(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:+.1e}")
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

fn eig(e: &[[f64; 2]; 2]) -> String {
    let one = |v: [f64; 2]| {
        if v[1] == 0.0 {
            num(v[0], 4)
        } else {
            format!("{}{:+}i", num(v[0], 4), num(v[1], 3))
        }
    };
    format!("{}, {}", one(e[0]), one(e[1]))
}

fn matrix(m: &[[f64; 2]; 2]) -> String {
    format!(
        "[[{:.4}, {:.4}], [{:.4}, {:.4}]]",
        m[0][0], m[0][1], m[1][0], m[1][1]
    )
}

fn compared_line(out: &mut String, label: &str, c: &Compared, sig: usize) {
    out.push_str(&format!(
        "    {label:<34}{:>14}{:>16}{:>12}\n",
        num(c.closed_form, sig),
        num(c.ode, sig),
        diff(c.difference)
    ));
}

/// Section 3 of the text report under e-prop (E-2): the closed form beside the ODE, and the
/// gradient flow on the same protocol.
fn eprop_race_text(o: &mut String, rep: &LinearReport, ep: &EpropRace) {
    let b = &rep.task_b;
    let eps = rep.spec.eps;
    o.push_str(
        "3. THE RACE UNDER E-PROP   z_BB = u / (1 - s_eff),  s_eff = s + p q/(1 - lambda)   (E-1, E-2)\n",
    );
    o.push_str(
        "    e-prop moves only row b: q' = eta e u p/D, s' = eta e u (1 - lambda)/D; lambda and p = eps stay,\n    \
         so the path is the line dq/ds = p/(1 - lambda) and s_eff grows as k s, k = 1 + p^2/(1 - lambda)^2\n",
    );
    o.push_str(&format!(
        "    k = 1 + eps^2/r^2 = {}: rotation's share is eps^2/(r^2 + eps^2) from the first instant to the last\n",
        num(ep.k, 6)
    ));
    match ep.r_star {
        Some(rs) => o.push_str(&format!(
            "    crossover r* = eps = {} (rotation wins below)\n",
            num(rs, 4)
        )),
        None => o.push_str("    no crossover: eps >= 1/2\n"),
    }
    o.push_str("\n    each mode alone, until |z_BB - zhat| < tol: t = T(y0, y1)/k (k = eps^2/r^2 for q alone, 1 for s alone)\n");
    o.push_str(&format!(
        "    {:<34}{:>14}{:>16}{:>12}\n",
        "", "closed form", "ODE", "difference"
    ));
    compared_line(o, "  t_rot (q alone, s = 0)", &rep.t_rot, 7);
    compared_line(o, "  t_new (p = q = 0)", &rep.t_new, 7);
    o.push_str("\n    full e-prop flow\n");
    compared_line(o, "  learning time of B", &ep.t_b, 7);
    compared_line(o, "  interference I", &ep.interference, 7);
    compared_line(o, "  rotation share", &ep.rotation_share, 7);
    compared_line(o, "  q = M_ba after B", &ep.q_after, 7);
    compared_line(o, "  s = M_bb after B", &ep.s_after, 7);
    o.push_str(&format!(
        "    drift of lambda, p and of the line in (q, s): {:.1e}\n",
        b.conserved_drift
    ));
    o.push_str(&format!(
        "\n    gradient flow on the same protocol (I-8, eps = {}): {} wins, I = {}, B learned at tau = {}\n",
        short(eps),
        ep.gradient_winner.name(),
        num(ep.gradient_interference, 4),
        num(ep.gradient_t_b, 4)
    ));
    o.push_str(&format!(
        "    e-prop: I = {} ({} x the gradient's), B learned at tau = {} ({} x slower)\n\n",
        num(rep.interference, 4),
        num(rep.interference / ep.gradient_interference, 3),
        num(b.t, 4),
        num(b.t / ep.gradient_t_b, 3)
    ));
}

impl Report for LinearReport {
    fn text(&self) -> String {
        let mut o = String::new();
        self.header_text(&mut o);
        self.verdict_text(&mut o);
        self.task_a_text(&mut o);
        self.fixed_points_text(&mut o);
        self.race_text(&mut o);
        self.interference_text(&mut o);
        o
    }
}

/// The sections of [`LinearReport`]'s text, in order.
impl LinearReport {
    /// Title, model line and parameters.
    fn header_text(&self, o: &mut String) {
        let s = &self.spec;
        let p = &s.params;
        let r = self.r;
        let title = if self.name.is_empty() {
            "linear 2x2 model"
        } else {
            &self.name
        };
        o.push_str(&format!(
            "modeflow · learning modes of the linear 2x2 model — {title}\n"
        ));
        if !self.description.is_empty() {
            o.push_str(&format!("  {}\n", self.description));
        }
        o.push_str(
            "  network kappa' = -kappa + M kappa + u e_mu, M = [[lambda, p], [q, s]] in the basis (a, b);\n",
        );
        o.push_str(match self.rule {
            Rule::Gradient => "  gradient flow on M, task A then task B (THEORY I.3)\n\n",
            Rule::Eprop => {
                "  e-prop on M, task A then task B: the delta rule M' = eta E kappa_mu^T (THEORY III, E-1)\n\n"
            }
        });
        o.push_str(&format!(
            "  r = u/zhat = {}   u = {}   zhat = {}   eta = {}   seed eps = {}   learned when |z - zhat| < {:.0e}\n\n",
            short(r), short(p.u), short(p.zhat), short(p.eta), short(s.eps), s.tolerance
        ));
    }

    /// The verdict: who wins the race, the interference, and the criterion's prediction.
    fn verdict_text(&self, o: &mut String) {
        let p = &self.spec.params;
        // Verdict.
        let share = self.rotation_share;
        let margin = (share - 0.5).abs();
        let closeness = if margin < 0.1 { ", narrowly" } else { "" };
        let lead_mode = self.winner.name().to_uppercase();
        let other = if self.winner == Mode::Rotation {
            1.0 - share
        } else {
            share
        };
        o.push_str(&format!(
            "VERDICT  {lead_mode} wins the race{closeness}: it carries {} of the change of s_eff during task B\n",
            pct(share.max(1.0 - share))
        ));
        let fate = if self.interference < 0.05 {
            "A survives"
        } else if self.interference < 1.0 {
            "A is partly forgotten"
        } else {
            "A is forgotten"
        };
        o.push_str(&format!(
            "         ({} is left to {}). {fate}: interference I = {}.\n",
            pct(other),
            if self.winner == Mode::Rotation {
                "new formation"
            } else {
                "rotation"
            },
            num(self.interference, 3)
        ));
        // the race decides how B is learned; the interference measures A's readout after B.
        // When new formation wins and A is still forgotten, say in one line why both hold.
        let z_a = |label: &str| {
            self.fixed_points
                .iter()
                .find(|f| f.label == label)
                .map(|f| f.readout)
        };
        if let (Mode::NewFormation, true, Some(before), Some(after)) = (
            self.winner,
            self.interference >= 1.0,
            z_a("A before B"),
            z_a("A after B"),
        ) {
            o.push_str(&format!(
                "         Why both: B is learned by a new fixed point, but the same change of M also\n         \
                 drives the A fixed point: its readout z_AA goes {} -> {} (target zhat = {}),\n         \
                 so A is over-driven, not rotated away.\n",
                num(before, 3),
                num(after, 3),
                short(p.zhat)
            ));
        }
        self.criterion_text(o);
    }

    /// The criterion's prediction beside the full flow (e-prop: its one-factor rotation).
    fn criterion_text(&self, o: &mut String) {
        let r = self.r;
        let b = &self.task_b;
        let crit = self.race.criterion_winner;
        if let Some(ep) = &self.eprop {
            o.push_str(&format!(
                "         Under e-prop p = M_ab stays at eps, so rotation is one-factor: it carries the fixed share
         \
                 eps^2/(r^2 + eps^2) = {} and wins only for r < r* = eps. The gradient flow on the same
         \
                 protocol: {} wins, I = {}, task B at tau = {} (e-prop: {}).\n",
                pct(ep.rotation_share.closed_form),
                ep.gradient_winner.name(),
                num(ep.gradient_interference, 3),
                num(ep.gradient_t_b, 4),
                num(b.t, 4)
            ));
        } else {
            match (self.r_star, self.race.r_star_ode) {
                (Some(rs), ode) => {
                    let cmp = if r < rs { "<" } else { ">" };
                    o.push_str(&format!(
                        "         The I-8 criterion predicts {} (r = {} {cmp} r*(eps) = {})",
                        crit.name(),
                        num(r, 3),
                        num(rs, 3)
                    ));
                    match ode {
                    Some(ro) if crit != self.winner => o.push_str(&format!(
                        "; the full flow crosses over\n         earlier, at r = {}, so here the estimate and the full flow disagree.\n",
                        num(ro, 3)
                    )),
                    Some(ro) => o.push_str(&format!(
                        "; the full flow agrees (crossover at r = {}).\n",
                        num(ro, 3)
                    )),
                    None => o.push_str(".\n"),
                }
                }
                (None, _) => o.push_str(&format!(
                    "         The I-8 criterion predicts {} at every r for this seed.\n",
                    crit.name()
                )),
            }
        }
        o.push('\n');
    }

    /// 1. Task A.
    fn task_a_text(&self, o: &mut String) {
        // 1. Task A.
        o.push_str(&format!(
            "1. TASK A, learned from M = 0 (own loss, {})\n",
            self.rule.name()
        ));
        o.push_str(&format!(
            "    {:<34}{:>14}{:>16}{:>12}\n",
            "", "closed form", "ODE", "difference"
        ));
        compared_line(o, "lambda_A = 1 - r", &self.lambda_a, 7);
        compared_line(o, "learning time of A", &self.t_a, 7);
        o.push_str(&format!(
            "    recurrent gain G_A = 1/(1 - lambda_A) = zhat/u = {}\n",
            num(self.gain_a, 4)
        ));
        o.push_str(
            "    (the ODE stops when |z_AA - zhat| < tol, so lambda falls short of 1 - r by tol u/zhat^2)\n\n",
        );
    }

    /// 2. Fixed points and stability.
    fn fixed_points_text(&self, o: &mut String) {
        let b = &self.task_b;
        // 2. Fixed points.
        o.push_str("2. FIXED POINTS AND STABILITY   (kappa_mu = u R e_mu, R = (I - M)^-1; Jacobian J = -I + M)\n");
        o.push_str(&format!(
            "    M before B = {}      M after B = {}\n",
            matrix(&b.m_before),
            matrix(&b.m_after)
        ));
        o.push_str(&format!(
            "    {:<12}{:>22}{:>11}{:>10}   {:<22}{}\n",
            "", "kappa (closed form)", "ODE diff", "readout", "eigenvalues of J", "type"
        ));
        for fp in &self.fixed_points {
            let coord = format!("({:.4}, {:.4})", fp.coordinates[0], fp.coordinates[1]);
            let d = fp
                .difference
                .map(|x| format!("{x:.1e}"))
                .unwrap_or_else(|| "— (unstable)".into());
            o.push_str(&format!(
                "    {:<12}{:>22}{:>11}{:>10}   {:<22}{}\n",
                fp.label,
                coord,
                d,
                num(fp.readout, 4),
                eig(&fp.eigenvalues),
                fp.kind.label()
            ));
        }
        o.push_str(
            "    (ODE diff: the network relaxed from kappa = 0 minus the closed form; readout z_mu mu)\n\n",
        );
    }

    /// 3. The race (e-prop's own section under e-prop).
    fn race_text(&self, o: &mut String) {
        let s = &self.spec;
        let b = &self.task_b;
        let share = self.rotation_share;
        // 3. The race.
        let race = &self.race;
        if let Some(ep) = &self.eprop {
            eprop_race_text(o, self, ep);
        } else {
            o.push_str(
            "3. THE RACE   z_BB = u / (1 - s_eff),  s_eff = s + p q/(1 - lambda)   (I-6, I-8)\n",
        );
            o.push_str(&format!(
            "    rotation       two-factor pathway p q/(1 - lambda): starts at a saddle, seeded by eps;\n                   \
             grows at rate 2 eta zhat^2 (1 - r) = {} from rho0 = eps^2/r = {}  ->  time ~ {}\n",
            num(race.rotation_rate, 4),
            num(race.rho0, 3),
            num(race.rotation_estimate, 4)
        ));
            o.push_str(&format!(
            "    new formation  one-factor pathway s: moves at once, needs s ~ 1 - r  ->  time ~ 1/(eta u zhat) = {}\n",
            num(race.new_formation_estimate, 4)
        ));
            o.push_str(&format!(
            "    criterion      (r/2) ln(r(1 - r)/eps^2) = {}  vs  1 - r = {}  ->  {} predicted",
            num(race.lhs, 4),
            num(race.rhs, 4),
            race.criterion_winner.name()
        ));
            match race.r_star {
                Some(rs) => o.push_str(&format!("; r*(eps = {}) = {}\n", s.eps, num(rs, 4))),
                None => o.push_str("; no crossover r* at this eps\n"),
            }
            o.push_str("\n    each mode alone, until |z_BB - zhat| < tol (I-7)\n");
            o.push_str(&format!(
                "    {:<34}{:>14}{:>16}{:>12}\n",
                "", "closed form", "ODE", "difference"
            ));
            compared_line(o, "  t_rot (balanced p = q, s = 0)", &self.t_rot, 7);
            compared_line(o, "  t_new (p = q = 0)", &self.t_new, 7);
            o.push_str(&format!(
            "\n    full flow (I-6): B learned at tau = {};  delta s = {},  delta p q/(1 - lambda) = {}\n",
            num(b.t, 5),
            num(b.delta_s, 4),
            num(b.delta_rotation, 4)
        ));
            o.push_str(&format!(
            "                     rotation share {}  ->  {} wins;  conserved p^2 - q^2 drifted by {:.1e}\n",
            pct(share),
            self.winner.name(),
            b.conserved_drift
        ));
            match race.r_star_ode {
            Some(ro) => o.push_str(&format!(
                "                     full-flow crossover at this eps: r = {} (rotation wins below)\n",
                num(ro, 4)
            )),
            None => o.push_str("                     the full flow has no crossover at this eps\n"),
        }
            match race.r_star_refined {
            Some(rr) => o.push_str(&format!(
                "                     closed-form path criterion (I-16): r* = {}\n\n",
                num(rr, 4)
            )),
            None => o.push_str("                     closed-form path criterion (I-16): no crossover at this eps\n\n"),
        }
        }
    }

    /// 4. Interference.
    fn interference_text(&self, o: &mut String) {
        let p = &self.spec.params;
        let r = self.r;
        let b = &self.task_b;
        // 4. Interference.
        let ra = &b.readouts_after;
        o.push_str("4. INTERFERENCE   I = L_A(after B) / L_A(M = 0),  L_A = (zhat - z_AA)^2 / 2\n");
        o.push_str(&format!(
            "    z_AA: {} before B -> {} after B (target {});  z_BB after B = {}\n",
            num(b.readouts_before.z_aa, 6),
            num(ra.z_aa, 6),
            num(p.zhat, 4),
            num(ra.z_bb, 7)
        ));
        o.push_str(&format!(
            "    cross readouts after B: z_BA = {}, z_AB = {}\n",
            num(ra.z_ba, 4),
            num(ra.z_ab, 4)
        ));
        let (l1, p1, q1, s1) = (
            b.m_after[0][0],
            b.m_after[0][1],
            b.m_after[1][0],
            b.m_after[1][1],
        );
        o.push_str(&format!(
            "    why: z_AA = u / ((1 - lambda) - p q/(1 - s)); after B, 1 - lambda = {} and the rotation\n         \
             term p q/(1 - s) = {} leave u / {} = {} (A needs 1 - lambda_A = r = {})\n",
            num(1.0 - l1, 4),
            num(p1 * q1 / (1.0 - s1), 4),
            num((1.0 - l1) - p1 * q1 / (1.0 - s1), 4),
            num(ra.z_aa, 4),
            num(r, 4)
        ));
        o.push_str(&format!(
            "    I = {}   ({})\n",
            num(self.interference, 4),
            if self.interference < 1.0 {
                "A is remembered better than by the untrained network"
            } else {
                "A is remembered worse than by the untrained network"
            }
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(body: &str) -> LinearReport {
        let m = crate::model::parse("t.toml", &format!("kind = \"linear2x2\"\n{body}")).unwrap();
        predict(&m).unwrap()
    }

    #[test]
    fn json_carries_the_promised_keys() {
        let rep = report("r = 0.3\neps = 0.05");
        let v = serde_json::to_value(&rep).unwrap();
        for key in [
            "winner",
            "interference",
            "t_new",
            "t_rot",
            "r_star",
            "fixed_points",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["winner"], "new_formation");
        // I-16: the closed-form crossover beside the ODE's (the ODE's root is found to 1e-6)
        let (ro, rr) = (
            v["race"]["r_star_ode"].as_f64().unwrap(),
            v["race"]["r_star_refined"].as_f64().unwrap(),
        );
        assert!((ro - rr).abs() < 2e-6, "{ro} vs {rr}");
        let fp = &v["fixed_points"][0];
        for key in ["coordinates", "eigenvalues", "type"] {
            assert!(fp.get(key).is_some(), "fixed point misses {key}");
        }
        assert_eq!(fp["type"], "stable_node");
    }

    fn model(body: &str) -> ModelFile {
        crate::model::parse(
            "t.toml",
            &format!("kind = \"linear2x2\"\nname = \"n\"\n{body}"),
        )
        .unwrap()
    }

    #[test]
    fn fields_equal_the_full_report() {
        let shipped = crate::model::parse(
            "models/linear-eprop.toml",
            include_str!("../../../models/linear-eprop.toml"),
        )
        .unwrap();
        let models = [
            model("r = 0.3\neps = 0.05"),
            model("r = 0.55\neps = 0.02\nzhat = 1.3\neta = 0.7"),
            model("r = 0.35\neps = 0.08\nzhat = 1.2\neta = 0.8\nrule = \"eprop\""),
            shipped,
        ];
        for m in &models {
            let file = &m.common.file;
            let full = serde_json::to_value(predict(m).unwrap()).unwrap();
            let keys: Vec<&str> = full
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(keys.len(), 18);
            let eprop = full["rule"] == "eprop";
            assert_eq!(full["eprop"].is_null(), !eprop, "{file}");
            let pred = Predictor::default();
            for &k in &keys {
                let one = predict_fields(m, &[k], &pred).unwrap();
                assert_eq!(one.len(), 1);
                assert_eq!(one[k], full[k], "{file}: field {k}");
            }
            let all = predict_fields(m, &keys, &Predictor::default()).unwrap();
            assert_eq!(serde_json::Value::Object(all), full);
            let none = predict_fields(m, &["no_such_field", "race.nope"], &pred).unwrap();
            assert!(none.is_empty());
        }
        // the shipped e-prop model: e-prop's own r* = eps, its race beside the gradient's
        let v = predict_fields(
            &models[3],
            &["rule", "r_star", "eprop", "winner"],
            &Predictor::default(),
        )
        .unwrap();
        assert_eq!(v["rule"], "eprop");
        assert_eq!(v["r_star"], 0.05);
        assert_eq!(v["eprop"]["r_star"], 0.05);
        assert_eq!(v["winner"], "new_formation");
    }

    #[test]
    fn shared_parts_are_bit_identical_to_fresh_ones() {
        // Warm a predictor on other points with the same eps (crossover) and the same r (task A,
        // new formation), then predict: every number equals the one of a fresh predictor.
        let pred = Predictor::default();
        for body in ["r = 0.3\neps = 0.03", "r = 0.45\neps = 0.05"] {
            predict_spec_with(&spec::check(&model(body)).unwrap(), &pred).unwrap();
        }
        assert_eq!(pred.sizes(), [2, 2, 2]);
        let s = spec::check(&model("r = 0.3\neps = 0.05")).unwrap();
        let shared = predict_spec_with(&s, &pred).unwrap();
        assert_eq!(
            pred.sizes(),
            [2, 2, 2],
            "all three parts came from the memo"
        );
        let fresh = predict_spec(&s).unwrap();
        assert_eq!(
            serde_json::to_string(&shared).unwrap(),
            serde_json::to_string(&fresh).unwrap()
        );
        assert_eq!(
            shared.race.r_star_ode.map(f64::to_bits),
            race::crossover_ode(0.05, 1e-6).unwrap().map(f64::to_bits)
        );
        assert_eq!(shared.t_a.ode.to_bits(), fresh.t_a.ode.to_bits());

        // The rule is part of the keys: the same (r, eps) under e-prop computes its own task A
        // and new formation (the race's crossover is the gradient flow's under both rules), and
        // equals a fresh e-prop prediction bit for bit; the gradient parts are not disturbed.
        let e = spec::check(&model("r = 0.3\neps = 0.05\nrule = \"eprop\"")).unwrap();
        let shared_e = predict_spec_with(&e, &pred).unwrap();
        assert_eq!(pred.sizes(), [2, 3, 3]);
        let fresh_e = predict_spec(&e).unwrap();
        assert_eq!(
            serde_json::to_string(&shared_e).unwrap(),
            serde_json::to_string(&fresh_e).unwrap()
        );
        assert_ne!(shared_e.t_a.ode.to_bits(), shared.t_a.ode.to_bits());
        assert_eq!(shared_e.race.r_star_ode, shared.race.r_star_ode);
        let again = predict_spec_with(&s, &pred).unwrap();
        assert_eq!(pred.sizes(), [2, 3, 3]);
        assert_eq!(
            serde_json::to_string(&again).unwrap(),
            serde_json::to_string(&fresh).unwrap()
        );
    }

    #[test]
    fn eprop_report_has_the_same_keys_and_its_closed_forms() {
        let rep = report("r = 0.2\neps = 0.05\nrule = \"eprop\"");
        let v = serde_json::to_value(&rep).unwrap();
        assert_eq!(v["rule"], "eprop");
        assert_eq!(v["winner"], "new_formation");
        assert!(v["task_b"]["t"].as_f64().unwrap() > 5.0);
        let ep = rep.eprop.as_ref().unwrap();
        for c in [
            &rep.t_a,
            &rep.t_new,
            &rep.t_rot,
            &ep.t_b,
            &ep.interference,
            &ep.rotation_share,
            &ep.q_after,
            &ep.s_after,
        ] {
            assert!(c.relative < 1e-6, "{c:?}");
        }
        assert_eq!(rep.r_star, Some(0.05));
        assert!(ep.gradient_interference > 100.0 && rep.interference < 0.2);
        let text = rep.text();
        assert!(
            text.contains("UNDER E-PROP") && text.contains("NEW FORMATION"),
            "{text}"
        );
    }

    #[test]
    fn analytic_numbers_agree_with_their_ode_values() {
        for (body, winner) in [
            ("r = 0.2\neps = 0.05", Mode::Rotation),
            ("r = 0.6\neps = 0.05", Mode::NewFormation),
        ] {
            let rep = report(body);
            assert_eq!(rep.winner, winner);
            assert!(
                rep.t_new.relative < 1e-6 && rep.t_rot.relative < 1e-6 && rep.t_a.relative < 1e-6
            );
            // lambda_A falls short by tol u / zhat^2 (event at |z_AA - zhat| = tol).
            assert!((rep.lambda_a.difference + 1e-6 * rep.spec.params.u).abs() < 1e-9);
            for fp in &rep.fixed_points {
                assert!(fp.residual < 1e-14);
                if let Some(d) = fp.difference {
                    assert!(d < 1e-8, "{}: {d}", fp.label);
                }
            }
            let text = rep.text();
            assert!(
                text.contains("VERDICT") && text.contains(winner.name().to_uppercase().as_str())
            );
        }
    }
}
