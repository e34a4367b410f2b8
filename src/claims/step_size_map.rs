//! Claim I-18-map (proofs-checks/I-18-map-step-size-map.md): the critical step eta*(r, eps) of
//! the linear race, mapped below the crossover: the modified flow's h*, GD's critical step and
//! the stability edge 2/N_end of the flow's end point. The domain code
//! ([`crate::interference::linear::modified_map`]) returns plain numbers; the rows live here.

use super::race::disputed_abs;
use super::{Check, Row, Tier};
use crate::interference::linear::modified::Ending;
use crate::interference::linear::modified_map::{
    fit_ratio, step_size_map, MapPoint, EPS, FRACTIONS, H_STAB_MIN,
};
use crate::num::stats;
use crate::Result;

/// The registered checks of this file.
pub fn checks() -> Vec<Check> {
    vec![Check {
        id: "I-18-map",
        tier: Tier::Full,
        run: check_map,
    }]
}

/// The task tolerance of the reference protocol (|z_BB - zhat| < 1e-6, I-8).
const TASK_TOL: f64 = 1e-6;

/// Predictions of a critical step agree when their log2 differ by at most one octave (the
/// factor 2 of THEORY's ladder; the bisection resolves h_GD to 1/16 octave).
const OCTAVE: f64 = 1.0;

/// Documented findings (proofs-checks/I-18-map-step-size-map.md), reproduced to 1e-6 in log2
/// (every number of the map is deterministic: closed forms, GD, and ODE solves at rtol 1e-11):
/// the median over the grid of log2(h*_MF / h_GD) ...
const MEDIAN_MF_OVER_GD: f64 = 4.356_496_381_336_794;
/// ... the largest |log2(h_GD / h_half)| (the parameter-free closed form) ...
const MAX_ERR_HALF: f64 = 1.481_543_065_903_751_6;
/// ... and the largest |log2(h_GD / (c h_stab))| with c fitted (the geometric mean of the grid).
const MAX_ERR_STAB_FIT: f64 = 1.897_828_673_217_623;
/// Finding tolerance in log2 (octaves).
const FINDING_TOL: f64 = 1e-6;

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.3e}"))
}

/// One point of the table in a note: r/r*, h*_MF, h_GD, h_stab, and GD's end just above h_GD.
fn describe(p: &MapPoint) -> String {
    let above = match p.gd {
        Some(g) => match g.fail.ending {
            Ending::Learned => format!("new formation (share {:.3})", g.fail.rotation_share),
            Ending::Diverged => "leaves the stable region".into(),
            Ending::NotConverged => "not converged".into(),
        },
        None => "-".into(),
    };
    format!(
        "r/r* {}: r {:.4}, share {:.3}, h*_MF {}, h_GD {}, h_half {:.3e}, h_stab {:.3e}, above h_GD: {above}",
        p.fraction,
        p.r,
        p.flow_share,
        fmt_opt(p.h_modified),
        fmt_opt(p.gd.map(|g| g.h)),
        p.h_half,
        p.h_stab
    )
}

/// I-18-map: the grid [`EPS`] x [`FRACTIONS`] below r*(eps).
fn check_map() -> Result<Vec<Row>> {
    let map = step_size_map(&EPS, &FRACTIONS, TASK_TOL)?;
    let mut rows = flips_found(&map);
    rows.extend(predictors_of_gd(&map));
    rows.push(beyond_the_flip(&map));
    Ok(rows)
}

/// Per eps of the grid: the modified flow's flip and GD's critical step were found.
fn flips_found(map: &[MapPoint]) -> Vec<Row> {
    let mut rows = Vec::new();
    for &eps in &EPS {
        let pts: Vec<&MapPoint> = map.iter().filter(|p| p.eps == eps).collect();
        let table: Vec<String> = pts.iter().map(|p| describe(p)).collect();
        let r_star = pts.first().map_or(f64::NAN, |p| p.r_star);
        // eta* exists: the modified flow leaves rotation for new formation at some h <= 1
        let missing = pts.iter().filter(|p| p.h_modified.is_none()).count();
        rows.push(
            Row::holds(
                format!(
                    "eps = {eps}, r*(eps) = {r_star:.4}: the modified flow flips rotation -> new formation at some h* <= 1, every r/r*"
                ),
                missing == 0,
                format!("{missing} point(s) without a flip"),
            )
            .context(table.join("; ")),
        );
        // GD's flip is found wherever GD was run (h_stab >= H_STAB_MIN)
        let run: Vec<&&MapPoint> = pts.iter().filter(|p| p.h_stab >= H_STAB_MIN).collect();
        let found = run.iter().filter(|p| p.gd.is_some()).count();
        rows.push(Row::holds(
            format!("eps = {eps}: GD's critical step found at every point with h_stab >= {H_STAB_MIN:e}"),
            found == run.len(),
            format!("{found} of {} (of {} points)", run.len(), pts.len()),
        ));
    }
    rows
}

/// The three predictors of GD's critical step h_GD over the grid: the modified flow's flip,
/// the closed form h_half, and the fitted c h_stab (each a disputed finding).
fn predictors_of_gd(map: &[MapPoint]) -> Vec<Row> {
    let mut rows = Vec::new();
    let both: Vec<f64> = map
        .iter()
        .filter_map(|p| p.log2_modified_over_gd())
        .collect();
    let med = stats::median(&both).unwrap_or(f64::NAN);
    rows.push(
        disputed_abs(
            "median over the grid of log2(h*_MF / h_GD) (THEORY: the modified flow predicts GD's flip: 0 +- 1)".into(),
            0.0,
            med,
            OCTAVE,
            MEDIAN_MF_OVER_GD,
            1e-6,
        )
        .context(format!(
            "{} points; range [{:.3}, {:.3}]",
            both.len(),
            both.iter().cloned().fold(f64::INFINITY, f64::min),
            both.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        )),
    );
    // the parameter-free closed form: GD flips at the stability edge of the flattest
    // half-rotated end point, h_GD = h_half = 2 u^2 cos^4(phi_h) / zhat^2
    let half: Vec<f64> = map.iter().filter_map(|p| p.log2_gd_over_half()).collect();
    let abs_half: Vec<f64> = half.iter().map(|e| e.abs()).collect();
    let max_half = abs_half.iter().cloned().fold(0.0, f64::max);
    rows.push(
        disputed_abs(
            "h_GD = h_half = 2 u^2 cos^4(phi_h) / zhat^2: largest |log2(h_GD / h_half)| over the grid (octaves)".into(),
            0.0,
            max_half,
            OCTAVE,
            MAX_ERR_HALF,
            FINDING_TOL,
        )
        .context(format!(
            "{} points; median |log2| {:.3}, mean log2 {:.3}; within one octave: {}",
            half.len(),
            stats::median(&abs_half).unwrap_or(f64::NAN),
            half.iter().sum::<f64>() / half.len().max(1) as f64,
            abs_half.iter().filter(|e| **e <= OCTAVE).count()
        )),
    );
    // the one-constant form h_GD = c h_stab = 2c / N_end (c fitted over the grid)
    let pairs: Vec<(f64, f64)> = map
        .iter()
        .filter_map(|p| p.gd.map(|g| (p.h_stab, g.h)))
        .collect();
    if let Some(fit) = fit_ratio(&pairs) {
        rows.push(
            disputed_abs(
                "h_GD = c h_stab = 2c / N_end (c fitted): largest |log2 error| over the grid (octaves)".into(),
                0.0,
                fit.max_log2_error,
                OCTAVE,
                MAX_ERR_STAB_FIT,
                FINDING_TOL,
            )
            .context(format!(
                "c = {:.4}, {} points, log-log slope {:.4}",
                fit.c, fit.points, fit.slope
            )),
        );
    }
    rows
}

/// Just above h_GD, GD leaves the stable region or learns B by new formation.
fn beyond_the_flip(map: &[MapPoint]) -> Row {
    let diverged = map
        .iter()
        .filter(|p| p.gd.is_some_and(|g| g.fail.ending == Ending::Diverged))
        .count();
    let learned_new = map
        .iter()
        .filter(|p| p.gd.is_some_and(|g| g.fail.ending == Ending::Learned))
        .count();
    Row::holds(
        "just above h_GD GD either leaves the stable region or learns B by new formation",
        map.iter()
            .filter_map(|p| p.gd)
            .all(|g| g.fail.ending == Ending::Diverged || g.fail.ending == Ending::Learned),
        format!("leaves the stable region: {diverged}, new formation: {learned_new}"),
    )
}
