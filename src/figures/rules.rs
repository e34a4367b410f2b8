//! Figures of the learning rules (THEORY III, issue 13), for the gallery of `modeflow figures`:
//!
//! - [`eprop_race_map`]: the interference I(r, eps) of the linear 2x2 model when task B is
//!   learned by e-prop (E-2's closed form), with its exact crossover r* = eps and the gradient
//!   flow's I-8 estimate r*(eps) for comparison; it sits beside the gradient's `race_map`.
//! - [`rule_tradeoff`]: speed against protection, one point per rule and regime of the E-3 rule
//!   map (median tau_B against median I over the seeds that learned both tasks).
//!
//! Each figure writes its data beside it (CSV and JSON, through [`crate::plot`]).

use std::path::{Path, PathBuf};

use crate::claims::rules_map as e3;
use crate::claims::Tier;
use crate::interference::linear::{closed, race, Params};
use crate::plot::heatmap::{self, Curve, Grid};
use crate::plot::lines::{self, LineSpec, Mark, Series};
use crate::plot::Output;
use crate::{io, Result};

/// The e-prop race map over the gallery's (r, eps) grid (that of `figures::race_map`).
pub fn eprop_race_map(dir: &Path) -> Result<Vec<PathBuf>> {
    io::ensure_dir(dir)?;
    let (n_r, n_eps) = (56, 42);
    let r: Vec<f64> = (0..n_r)
        .map(|i| 0.12 + 0.58 * i as f64 / (n_r - 1) as f64)
        .collect();
    let eps = crate::figures::race_eps_axis(n_eps);
    // values[j * nx + i]: row j = eps, column i = r; points outside the protocol's domain (or
    // whose closed form fails) are drawn at the map's floor, as in the gradient's map
    let mut values = Vec::with_capacity(n_r * n_eps);
    for &e in &eps {
        for &ri in &r {
            let v = if race::valid_point(ri, e) {
                let par = Params::reference(ri);
                closed::eprop_task_b(&par.after_a(e), &par, 1e-6)
                    .map(|b| b.interference)
                    .unwrap_or(f64::NAN)
            } else {
                f64::NAN
            };
            values.push(v);
        }
    }
    heatmap::floor_non_positive(&mut values);
    let eprop_line: Vec<[f64; 2]> = eps
        .iter()
        .filter(|&&e| e >= r[0] && e <= r[n_r - 1])
        .map(|&e| [e, e])
        .collect();
    let gradient_line: Vec<[f64; 2]> = eps
        .iter()
        .filter_map(|&e| closed::r_star(e).ok().flatten().map(|rs| [rs, e]))
        .collect();
    crate::figures::race_heatmap(
        dir,
        &crate::figures::RaceHeat {
            stem: "race_map_eprop",
            title: "Interference I(r, ε) of the linear 2x2 model, task B learned by e-prop (E-2)",
            value: "I = L_A(after B)/L_A(0)",
            what: "linear 2x2 interference under e-prop (closed form of E-2), reference protocol of THEORY I-8 (zhat = 1, eta = 1, tol 1e-6); beside race_map (the gradient flow)",
        },
        Grid {
            x: r,
            y: eps,
            values,
        },
        &[
            Curve {
                label: "e-prop crossover r* = ε (exact)".into(),
                points: eprop_line,
            },
            Curve {
                label: "gradient: r*(ε), I-8 estimate".into(),
                points: gradient_line,
            },
        ],
        &[],
    )
}

/// Speed against protection: median tau_B (x) against median I (y) per rule (one series) and
/// regime (its points), from the fast E-3 rule map (computed once per process, shared with the
/// check E-3). Points whose rule learned in no seed are left out (listed in the JSON).
pub fn rule_tradeoff(dir: &Path) -> Result<Vec<PathBuf>> {
    io::ensure_dir(dir)?;
    let map = e3::map(Tier::Fast)?;
    let mut series: Vec<Series> = Vec::new();
    let mut skipped = Vec::new();
    for p in &map.points {
        let label = p.label.clone();
        let k = match series.iter().position(|s| s.label == label) {
            Some(k) => k,
            None => {
                series.push(Series::new(&label, Vec::new(), Mark::Points));
                series.len() - 1
            }
        };
        match (&p.tau_b, &p.interference) {
            (Some(t), Some(i)) => series[k]
                .points
                .push([t.median.value, i.median.value.max(f64::MIN_POSITIVE)]),
            _ => skipped.push(format!("{} {}", p.regime.label(), p.label)),
        }
    }
    let mut spec = LineSpec::new(
        "Speed vs protection: tau_B against I per rule (E-3 map)",
        "median τ_B (flow time; node perturbation: lr × steps)",
        "median I = L_A(after B)/L_A(0)",
    )
    .log_log();
    spec.size = (960, 680);
    let regimes: Vec<String> = map.spec.regimes.iter().map(|r| r.label()).collect();
    let out = Output::new(dir, "rule_tradeoff").with_provenance(serde_json::json!({
        "modeflow_version": env!("CARGO_PKG_VERSION"),
        "what": "E-3 fast rule map (claims::rules_map, Tier::Fast): medians over the seeds that learned A and B",
        "base": e3::BASE_FILE,
        "n": map.spec.base.network.n,
        "seeds": map.spec.base.seeds,
        "regimes (point order within each series)": regimes,
        "skipped (no seed learned)": skipped,
    }));
    Ok(lines::render(&series, &spec, &out)?.files)
}
