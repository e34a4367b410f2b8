//! The figures of a model file (`modeflow phase`) and the gallery of every shipped model
//! (`modeflow figures`): model definition -> solver -> figure, through [`crate::plot`].
//!
//! - `latent`: the autonomous flow after task A (fixed points, nullclines, manifolds), and the
//!   learning portraits of task B: a strip of portraits over learning time tau, the path of the
//!   fixed points, the continuation diagram and the entries of M(tau).
//! - `linear2x2`: the input-driven flow of task A before and after task B, and the same learning
//!   portraits of the task-A flow while B is learned (the A fixed point rotating toward b or
//!   staying put while s grows).
//! - the gallery adds the interference phase diagram over (r, eps) with the I-8 curve r*(eps),
//!   and the I-13 rotation share over (g, T_d) with its f_rot = 1/2 boundary.
//! - [`bias`]: the implicit-bias figures; [`rules`]: the learning-rule figures; [`tmaps`]: the
//!   T-map figures of a T-map sweep.

pub mod bias;
pub mod rules;
pub mod tmaps;

use std::path::{Path, PathBuf};

use nalgebra::{Matrix2, Vector2};

use crate::interference::kernels::theta::{
    psi_sq_erf, rotation_share, theta_new, theta_rot, InputSchedule,
};
use crate::interference::latent_model::LatentSpec;
use crate::interference::linear::{self, closed, flow as lflow, report::InputDriven};
use crate::interference::nonlinear::unpack;
use crate::latent::flow::{fixed_point_box, LatentFlow};
use crate::latent::gain::Gain;
use crate::model::ModelFile;
use crate::num::ode::{solve_until, OdeOptions};
use crate::num::planar::PlanarFlow;
use crate::plot::heatmap::{self, Curve, Grid, HeatSpec, Points};
use crate::plot::learning;
use crate::plot::phase::{self, PhaseSpec, Target};
use crate::plot::Output;
use crate::report::envelope;
use crate::{io, Error, Result};

/// Learning times at which fixed points are searched to seed the continuation (the ends and
/// 7 interior times: a branch living only between two of them is still found through a
/// branch point or fold of the branches found, see `num::continuation`).
const SEED_SAMPLES: usize = 9;

/// The file stem of a model's figures: its sanitised name ([`io::file_stem`]: issue 15, a
/// `name` of `../x` or an absolute path wrote outside `--out`), else its kind.
fn stem(model: &ModelFile) -> String {
    if model.common.name.is_empty() {
        model.common.kind.clone()
    } else {
        io::file_stem(&model.common.name)
    }
}

fn output(model: &ModelFile, dir: &Path, suffix: &str) -> Output {
    Output::new(dir, format!("{}_{suffix}", stem(model)))
        .with_provenance(envelope(&model.common, &serde_json::Value::Null))
}

fn seed_grid(tau_end: f64) -> Vec<f64> {
    (0..SEED_SAMPLES)
        .map(|k| tau_end * k as f64 / (SEED_SAMPLES - 1) as f64)
        .collect()
}

fn m_series(taus: &[f64], m_at: impl Fn(f64) -> Matrix2<f64>) -> Vec<(f64, [f64; 4])> {
    taus.iter()
        .map(|&t| {
            let m = m_at(t);
            (t, [m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)]])
        })
        .collect()
}

/// The learning portraits of one flow over learning B: strip at and around the located
/// bifurcations, fixed-point path and continuation diagram (`{name}_{suffix}_*`).
fn learning_set<F: PlanarFlow>(
    model: &ModelFile,
    dir: &Path,
    flow_at: impl Fn(f64) -> F + Sync,
    tau_end: f64,
    spec: &PhaseSpec,
    what: &str,
    suffix: &str,
) -> Result<learning::LearningSet> {
    let mut strip_spec = spec.clone();
    // strip panels are ~330 px wide: 160 nullcline cells and 6 orbits are plenty there
    strip_spec.trajectories = 6;
    strip_spec.arrows = 18;
    strip_spec.nullcline_grid = 160;
    learning::render_learning_set(
        &flow_at,
        (0.0, tau_end),
        &seed_grid(tau_end),
        &strip_spec,
        &format!("{}, {what} over learning B", stem(model)),
        "τ",
        &output(model, dir, suffix),
    )
}

/// M(tau) over learning B (`{name}_m`).
fn m_figure(
    model: &ModelFile,
    dir: &Path,
    m_at: impl Fn(f64) -> Matrix2<f64>,
    tau_end: f64,
) -> Result<Vec<PathBuf>> {
    let taus: Vec<f64> = (0..=120).map(|k| tau_end * k as f64 / 120.0).collect();
    let r = learning::render_matrix_series(
        &m_series(&taus, m_at),
        "M",
        &format!("{}: M over learning B", stem(model)),
        "τ",
        &output(model, dir, "m"),
    )?;
    Ok(r.files)
}

/// Input direction of task mu with leak: e_mu + leak e_nu.
fn input_direction(leak: f64, task_b: bool) -> Vector2<f64> {
    if task_b {
        Vector2::new(leak, 1.0)
    } else {
        Vector2::new(1.0, leak)
    }
}

/// Phase and learning portraits of a `latent` model (the family table's `phase`).
pub fn latent_figures(model: &ModelFile, dir: &Path) -> Result<Vec<PathBuf>> {
    let spec = LatentSpec::from_model(model)?;
    let gain = Gain::new(spec.gain);
    let (res, run_a, run_b) = spec.sequential().run(&spec.m0())?;
    let m_after_a = unpack(&run_a.path.eval(run_a.tau));
    let m_at = |t: f64| unpack(&run_b.path.eval(t));
    let u_s = spec.schedule.u_s;
    let leak = spec.trials().leak;
    let name = stem(model);
    // a box holding every fixed point before and after B: the autonomous bound, plus |u| for a
    // driven flow (|k| = |G M k + u|), as in the delay fixed points of `interference`
    let u = u_s.abs() * (1.0 + leak.abs());
    let half = fixed_point_box(&m_at(run_b.tau), &gain)?.max(fixed_point_box(&m_after_a, &gain)?)
        + 2.0 * u;
    let base = PhaseSpec::new([-half, -half], [half, half]).labels("κ_a", "κ_b");
    let mut files = Vec::new();
    // the flows whose fixed points are the memories: the autonomous flow for pure memory
    // (u_s = 0); for a sustained input the A and B fixed points live in the delay flows
    // kappa' = -kappa + G M kappa + u_s e_mu, one per task
    let flows: Vec<(Vector2<f64>, &str, &str, Vec<Target>)> = if u_s == 0.0 {
        let lambda_a = gain.lambda_for_target(spec.zhat)?;
        let r = gain.radius_sq_for_eigenvalue(lambda_a)?.sqrt();
        let label = "target of A (readout ẑ)";
        vec![(
            Vector2::zeros(),
            "autonomous latent flow",
            "",
            vec![
                Target::point([r, 0.0], label),
                Target::point([-r, 0.0], label),
            ],
        )]
    } else {
        let a_target: Vec<Target> = res
            .a_fixed_point
            .as_ref()
            .map(|t| vec![Target::point(t.before, "A fixed point after task A")])
            .unwrap_or_default();
        let b_target: Vec<Target> = res
            .b_fixed_point
            .map(|x| vec![Target::point(x, "B fixed point after task B")])
            .unwrap_or_default();
        vec![
            (
                input_direction(leak, false) * u_s,
                "task-A delay flow (input u_s e_a)",
                "_task_a",
                a_target,
            ),
            (
                input_direction(leak, true) * u_s,
                "task-B delay flow (input u_s e_b)",
                "_task_b",
                b_target,
            ),
        ]
    };
    for (input, what, suffix, targets) in flows {
        let mut ps = base.clone();
        ps.targets = targets;
        let flow = |m: Matrix2<f64>| LatentFlow {
            m,
            input,
            gain: gain.clone(),
        };
        let r = phase::render(
            &flow(m_after_a),
            &ps,
            &format!("{name}: {what} after task A"),
            &output(model, dir, &format!("phase{suffix}")),
        )?;
        files.extend(r.files);
        let set = learning_set(
            model,
            dir,
            |t| flow(m_at(t)),
            run_b.tau,
            &ps,
            what,
            &format!("learning{suffix}"),
        )?;
        files.extend(set.files);
    }
    files.extend(m_figure(model, dir, m_at, run_b.tau)?);
    Ok(files)
}

/// The flow of task B (gradient or e-prop, `spec.rule`) from M after A, with its dense output (until |z_BB - zhat| < tol).
fn linear_task_b_path(spec: &linear::LinearSpec) -> Result<(crate::num::ode::Trajectory<4>, f64)> {
    let par = spec.params;
    let m0 = par.after_a(spec.eps);
    let rhs = |_: f64, y: &lflow::State| {
        let m = lflow::to_matrix(y);
        lflow::rule_flow(&m, closed::Task::B, lflow::Loss::Own, spec.rule, &par)
            .map(|d| lflow::to_state(&d))
            .unwrap_or_else(|_| lflow::State::from_element(f64::NAN))
    };
    let event = |_: f64, y: &lflow::State| {
        closed::readouts(&lflow::to_matrix(y), par.u)
            .map(|r| (r.z_bb - par.zhat).abs() - spec.tolerance)
            .unwrap_or(f64::NAN)
    };
    let (tr, hit) = solve_until(
        rhs,
        0.0,
        lflow::to_state(&m0),
        1e6,
        event,
        &OdeOptions::tol(1e-10, 1e-13),
    )?;
    let t_b = hit.ok_or_else(|| Error::Ode {
        t: tr.last().0,
        reason: "task B not learned within tau = 1e6".into(),
    })?;
    Ok((tr, t_b))
}

/// Phase and learning portraits of a `linear2x2` model (the family table's `phase`).
pub fn linear_figures(model: &ModelFile, dir: &Path) -> Result<Vec<PathBuf>> {
    let spec = linear::check(model)?;
    let par = spec.params;
    let (path, t_b) = linear_task_b_path(&spec)?;
    let m_at = |t: f64| lflow::to_matrix(&path.eval(t));
    let flow_a = |m: Matrix2<f64>| InputDriven {
        m,
        input: Vector2::new(par.u, 0.0),
    };
    // A box holding the A fixed point before and after B, the target and the origin.
    let pts: Vec<Vector2<f64>> = [0.0, t_b]
        .iter()
        .filter_map(|&t| closed::fixed_point(&m_at(t), par.u, closed::Task::A).ok())
        .collect();
    let half = pts
        .iter()
        .map(|p| p.amax())
        .fold(par.u.max(par.zhat), f64::max)
        * 1.4;
    let mut ps = PhaseSpec::new([-half, -half], [half, half]).labels("κ_a", "κ_b");
    // task A is learned when its readout z_AA = kappa_a of the A fixed point reaches zhat
    ps.targets = vec![Target::line(0, par.zhat, "target of A: κ_a = ẑ")];
    let mut files = Vec::new();
    // before and after on one speed colour scale
    let mut data = Vec::new();
    for t in [0.0, t_b] {
        data.push(phase::compute(&flow_a(m_at(t)), &ps)?);
    }
    phase::share_speed_scale(&mut data);
    for (d, label) in data.into_iter().zip(["before", "after"]) {
        let r = phase::render_data(
            d,
            ps.size,
            &format!("{}: task-A input-driven flow {label} task B", stem(model)),
            &output(model, dir, &format!("phase_{label}_b")),
        )?;
        files.extend(r.files);
    }
    let set = learning_set(
        model,
        dir,
        |t| flow_a(m_at(t)),
        t_b,
        &ps,
        "task-A flow",
        "learning",
    )?;
    files.extend(set.files);
    files.extend(m_figure(model, dir, m_at, t_b)?);
    Ok(files)
}

/// The eps axis of the gallery's (r, eps) race maps: `n` values, geometric from 0.005 to 0.15.
pub fn race_eps_axis(n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| (0.005f64.ln() + (0.15f64.ln() - 0.005f64.ln()) * j as f64 / (n - 1) as f64).exp())
        .collect()
}

/// The I-16 crossover r*(eps) of the closed-form task-B path at each `eps` (task tolerance
/// 1e-6, the race maps' protocol), as (r*, eps) points; eps values without a crossover (or
/// where it fails) are left out.
fn refined_crossover(eps: &[f64]) -> Vec<[f64; 2]> {
    eps.iter()
        .filter_map(|&e| {
            linear::exact_path::r_star_refined(e, 1e-6)
                .ok()
                .flatten()
                .map(|rs| [rs, e])
        })
        .collect()
}

/// Interference over (r, eps) from the full linear 2x2 ODE (I-8), log colour, with the
/// criterion's r*(eps), the full flow's rotation-share-1/2 line and the I-16 closed-form
/// crossover overlaid.
pub fn race_map(dir: &Path, n_r: usize, n_eps: usize, overlay: &[Points]) -> Result<Vec<PathBuf>> {
    io::ensure_dir(dir)?;
    let r: Vec<f64> = (0..n_r)
        .map(|i| 0.12 + 0.58 * i as f64 / (n_r - 1) as f64)
        .collect();
    let eps = race_eps_axis(n_eps);
    let grid = linear::interference_grid(&r, &eps, 1e-6)?;
    // values[j * nx + i]: row j = eps, column i = r; failed points are left at the map's floor
    let mut values = Vec::with_capacity(n_r * n_eps);
    for j in 0..n_eps {
        for i in 0..n_r {
            values.push(grid.interference[j][i].unwrap_or(f64::NAN));
        }
    }
    heatmap::floor_non_positive(&mut values);
    let curve: Vec<[f64; 2]> = eps
        .iter()
        .filter_map(|&e| closed::r_star(e).ok().flatten().map(|rs| [rs, e]))
        .collect();
    // I-16: the crossover of the closed-form task-B path (exact; same tolerance as the grid)
    let refined = refined_crossover(&eps);
    // the full-flow boundary (what `predict` calls the real one): per eps row, where the
    // rotation share of the full gradient flow crosses 1/2, linear between grid columns
    let crossover: Vec<[f64; 2]> = eps
        .iter()
        .enumerate()
        .filter_map(|(j, &e)| {
            let sh = &grid.rotation_share[j];
            (0..n_r - 1).find_map(|i| match (sh[i], sh[i + 1]) {
                (Some(a), Some(b)) if a > 0.5 && b <= 0.5 => {
                    let (r0, r1) = (grid.r[i], grid.r[i + 1]);
                    Some([r0 + (r1 - r0) * (a - 0.5) / (a - b), e])
                }
                _ => None,
            })
        })
        .collect();
    race_heatmap(
        dir,
        &RaceHeat {
            stem: "race_map",
            title: "Interference I(r, ε) of the linear 2x2 model (full gradient flow)",
            value: "I = L_A(after B)/L_A(0)",
            what: "linear 2x2 interference grid, reference protocol of THEORY I-8 (zhat = 1, eta = 1, tol 1e-6)",
        },
        Grid {
            x: r,
            y: eps,
            values,
        },
        &[
            // the full flow solid, the I-16 crossover dashed on top of it (they coincide up to
            // the grid's linear interpolation), then the I-8 estimate
            Curve {
                label: "full flow: rotation share 1/2".into(),
                points: crossover,
            },
            Curve {
                label: "r*(ε) refined, closed-form path (I-16)".into(),
                points: refined,
            },
            Curve {
                label: "r*(ε), I-8 estimate".into(),
                points: curve,
            },
        ],
        overlay,
    )
}

/// I-18: GD's stability step h_stab = 2/N_end over (r, eps) — the largest step at which GD can
/// still converge to the plain flow's end of task B (N_end = |grad z_BB|^2 there, from the
/// closed-form path of I-16) — with the crossover r*(eps) of I-16: left of it the flow rotates
/// and GD above h_stab loses the rotation (claim I-18). Closed form at every point.
pub fn step_size_map(dir: &Path) -> Result<Vec<PathBuf>> {
    io::ensure_dir(dir)?;
    let (n_r, n_eps) = (56, 42);
    let r: Vec<f64> = (0..n_r)
        .map(|i| 0.08 + 0.5 * i as f64 / (n_r - 1) as f64)
        .collect();
    let eps = race_eps_axis(n_eps);
    let mut values = Vec::with_capacity(n_r * n_eps);
    for &e in &eps {
        for &x in &r {
            values.push(linear::modified::stability_step(x, e, 1e-6).unwrap_or(f64::NAN));
        }
    }
    heatmap::floor_non_positive(&mut values);
    let crossover = refined_crossover(&eps);
    race_heatmap(
        dir,
        &RaceHeat {
            stem: "step_size_map",
            title: "GD's stability step 2/N_end at the flow's end of task B (linear 2x2, I-18)",
            value: "h_stab = 2/|∇z_BB|² at the end",
            what: "GD stability step 2/N_end at the end of task B of the plain gradient flow, reference protocol of THEORY I-8 (zhat = 1, tol 1e-6); curve: the I-16 crossover (rotation wins left of it)",
        },
        Grid {
            x: r,
            y: eps,
            values,
        },
        &[Curve {
            label: "r*(ε), closed-form path (I-16): rotation to the left".into(),
            points: crossover,
        }],
        &[],
    )
}

/// I-18-map: GD's critical step h_GD (x) against three predictions of it (y), log-log, over the
/// claim's grid of (r, eps) below the crossover r*(eps) (the flow rotates there): the stability
/// edge of the flattest half-rotated end point h_half, the plain flow's end-point edge 2/N_end,
/// and the modified flow's critical step h*_MF; the diagonal is a perfect prediction. Computed
/// by `interference::linear::modified_map` (the function the claim check runs), ~10 s.
pub fn step_size_predictors(dir: &Path) -> Result<Vec<PathBuf>> {
    use crate::interference::linear::modified_map::{step_size_map, EPS, FRACTIONS};
    use crate::plot::lines::{self, LineSpec, Mark, Series};
    io::ensure_dir(dir)?;
    let map = step_size_map(&EPS, &FRACTIONS, 1e-6)?;
    let with_gd: Vec<_> = map.iter().filter_map(|p| p.gd.map(|g| (p, g.h))).collect();
    let pairs = |f: &dyn Fn(&linear::modified_map::MapPoint) -> Option<f64>| -> Vec<[f64; 2]> {
        with_gd
            .iter()
            .filter_map(|(p, h)| f(p).map(|y| [*h, y]))
            .collect()
    };
    let half = pairs(&|p| Some(p.h_half));
    let stab = pairs(&|p| Some(p.h_stab));
    let modified = pairs(&|p| p.h_modified);
    let all: Vec<f64> = half
        .iter()
        .chain(&stab)
        .chain(&modified)
        .flat_map(|p| [p[0], p[1]])
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let series = [
        Series::new(
            "h_half: stability edge of the half-rotated end point",
            half,
            Mark::Points,
        ),
        Series::new(
            "2/N_end: stability edge of the flow's end point",
            stab,
            Mark::Points,
        ),
        Series::new("h*_MF: the modified flow's flip", modified, Mark::Points),
        Series::new("prediction = h_GD", vec![[lo, lo], [hi, hi]], Mark::Dashed),
    ];
    let spec = LineSpec::new(
        "Linear race: GD's critical step against its predictions (I-18-map)",
        "h_GD (GD's critical step, bisection to 1/16 octave)",
        "predicted critical step",
    )
    .log_log();
    let out = Output::new(dir, "step_size_predictors").with_provenance(serde_json::json!({
        "modeflow_version": env!("CARGO_PKG_VERSION"),
        "what": "I-18-map grid (eps x r/r*), reference protocol of THEORY I-8 (zhat = 1, tol 1e-6); points where GD was run and flipped",
    }));
    Ok(lines::render(&series, &spec, &out)?.files)
}

/// The text of a heat map over the (r, eps) plane of the linear race: output stem, title, the
/// colour bar's label and the provenance note.
pub(crate) struct RaceHeat<'a> {
    pub stem: &'a str,
    pub title: &'a str,
    pub value: &'a str,
    pub what: &'a str,
}

/// A heat map over the (r, eps) plane of the linear race, the one frame of `race_map`,
/// `step_size_map` and the e-prop race map: r linear on x, eps logarithmic on y, the colour
/// logarithmic, provenance with the version and `what`.
pub(crate) fn race_heatmap(
    dir: &Path,
    text: &RaceHeat<'_>,
    grid: Grid,
    curves: &[Curve],
    overlay: &[Points],
) -> Result<Vec<PathBuf>> {
    let mut hs = HeatSpec::new(
        text.title,
        "r = u / ẑ (input-driven emphasis)",
        "ε (seed)",
        text.value,
    );
    hs.log_colour = true;
    hs.log_y = true;
    let out = Output::new(dir, text.stem).with_provenance(serde_json::json!({
        "modeflow_version": env!("CARGO_PKG_VERSION"),
        "what": text.what,
    }));
    Ok(heatmap::render(&grid, curves, overlay, &hs, &out)?.files)
}

/// The I-13 rotation share f_rot = Theta_rot / (Theta_rot + Theta_new) over (g, T_d) (pure
/// memory, T_in = 2, u_p = 1, erf target attractor at zhat = 0.5), with the f_rot = 1/2 line.
pub fn theta_map(dir: &Path, n_g: usize, n_td: usize, overlay: &[Points]) -> Result<Vec<PathBuf>> {
    io::ensure_dir(dir)?;
    let gs: Vec<f64> = (0..n_g)
        .map(|i| 0.9 * i as f64 / (n_g - 1) as f64)
        .collect();
    let tds: Vec<f64> = (0..n_td)
        .map(|j| 1.0 + 14.0 * j as f64 / (n_td - 1) as f64)
        .collect();
    // I-1 for erf: lambda_A = (1 - pi zhat^2 / 2)^(-1/2), |kappa_A|^2 = (2/pi)(lambda_A^2 - 1)
    let zhat = 0.5f64;
    let lambda_a = (1.0 - std::f64::consts::PI * zhat * zhat / 2.0).powf(-0.5);
    let kappa_a = (2.0 / std::f64::consts::PI * (lambda_a * lambda_a - 1.0)).sqrt();
    let psi = psi_sq_erf(kappa_a);
    let sched = |t_d: f64| InputSchedule {
        t_in: 2.0,
        u_p: 1.0,
        t_d,
        u_s: 0.0,
    };
    let f = |g: f64, t_d: f64| rotation_share(theta_rot(psi, g), theta_new(g, &sched(t_d)));
    let mut values = Vec::with_capacity(n_g * n_td);
    for &td in &tds {
        for &g in &gs {
            values.push(f(g, td));
        }
    }
    // f_rot = 1/2 boundary: for each g, the T_d where Theta_new = Theta_rot (bisection on a
    // fine scan; Theta_new decreases with T_d).
    let mut curve = Vec::new();
    for k in 0..=60 {
        let g = 0.9 * k as f64 / 60.0;
        let h = |t: f64| f(g, t) - 0.5;
        let (mut a, mut b) = (0.0, 15.0);
        if h(a) >= 0.0 || h(b) <= 0.0 {
            continue;
        }
        for _ in 0..60 {
            let c = 0.5 * (a + b);
            if h(c) < 0.0 {
                a = c;
            } else {
                b = c;
            }
        }
        curve.push([g, 0.5 * (a + b)]);
    }
    let mut hs = HeatSpec::new(
        "Rotation share f_rot = Θ_rot / (Θ_rot + Θ_new) (I-13 estimate)",
        "g (random connectivity)",
        "T_d (delay)",
        "f_rot",
    );
    hs.range = Some((0.0, 1.0));
    let out = Output::new(dir, "theta_map").with_provenance(serde_json::json!({
        "modeflow_version": env!("CARGO_PKG_VERSION"),
        "what": "I-12 Theta_new series and I-13 Theta_rot = psi_A^2 beta; T_in = 2, u_p = 1, u_s = 0, erf, zhat = 0.5",
    }));
    let res = heatmap::render(
        &Grid {
            x: gs,
            y: tds,
            values,
        },
        &[Curve {
            label: "f_rot = 1/2 (Θ_new = Θ_rot)".into(),
            points: curve,
        }],
        overlay,
        &hs,
        &out,
    )?;
    Ok(res.files)
}
