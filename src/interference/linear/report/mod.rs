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

mod text;

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

#[cfg(test)]
mod tests;
