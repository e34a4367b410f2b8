//! Claims I-16 and I-18 (proofs-checks/I-16-*.md, I-18-*.md): the race between rotation and
//! new formation beyond the leading-order I-8 criterion, and the step size that picks the
//! mode. The domain code ([`crate::interference::linear::exact_path`],
//! [`crate::interference::linear::modified`]) returns plain numbers; the rows live here.

use super::{Check, Row, Tier};
use crate::interference::linear::{closed, exact_path, flow, race};
use crate::Result;

/// The registered checks of this file.
pub fn checks() -> Vec<Check> {
    vec![Check {
        id: "I-16",
        tier: Tier::Fast,
        run: check_i16,
    }]
}

/// The task tolerance of the reference protocol (|z_BB - zhat| < 1e-6, I-8).
const TASK_TOL: f64 = 1e-6;

/// THEORY I-16's table of full-flow crossovers (printed to three decimals).
const ODE_TABLE: [(f64, f64); 8] = [
    (0.005, 0.142),
    (0.01, 0.167),
    (0.02, 0.201),
    (0.03, 0.226),
    (0.05, 0.267),
    (0.07, 0.300),
    (0.1, 0.344),
    (0.2, 0.461),
];

/// I-16: the closed-form path criterion against the integrated flow's crossover on the eps
/// grid of the claim (eps in [0.005, 0.2]), against THEORY's table, the end point of task B
/// (rotation share, interference) against the ODE, and the I-8 criterion's overshoot.
fn check_i16() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (eps, table) in ODE_TABLE {
        let refined = exact_path::r_star_refined(eps, TASK_TOL)?;
        let ode = race::crossover_ode(eps, TASK_TOL)?;
        let (Some(refined), Some(ode)) = (refined, ode) else {
            rows.push(Row::holds(
                format!("eps = {eps}: both crossovers exist"),
                false,
                format!("refined {refined:?}, ODE {ode:?}"),
            ));
            continue;
        };
        // The ODE root is bracketed to CROSSOVER_XTOL = 1e-6 in r (its share carries ~1e-8
        // from the integrator): 1e-5 is ten times that, 500 times below the 0.005 target.
        rows.push(Row::abs(
            format!("r*_refined vs full-ODE crossover, eps = {eps}"),
            ode,
            refined,
            1e-5,
        ));
        // THEORY's table is printed to three decimals: rounding 5e-4.
        rows.push(Row::abs(
            format!("r*_refined vs THEORY table, eps = {eps}"),
            table,
            refined,
            5e-4,
        ));
        // THEORY: the I-8 criterion overestimates the crossover by 0.04-0.06, a range quoted
        // to two decimals: [0.035, 0.065) rounds into it (measured 0.039..0.061).
        if let Some(i8) = closed::r_star(eps)? {
            rows.push(
                Row::abs(
                    format!("I-8 overshoot r*_I8 - r*_ODE, eps = {eps} (claim 0.04..0.06)"),
                    0.05,
                    i8 - ode,
                    0.015,
                )
                .note(format!("r*_I8 = {i8:.4}")),
            );
        }
    }
    // The end point of B from the closed-form path against the integrated I-6 flow
    // (loss clock, rtol 1e-12): relative 1e-7 (the ODE state's error times the readout's
    // sensitivity G_A^2 <= 1e2 on these points; measured ~1e-10).
    let opts = flow::precise_options();
    for (r, eps) in [(0.2, 0.05), (0.3, 0.05), (0.45, 0.05), (0.15, 0.01), (0.5, 0.2)] {
        let ode = race::reference_task_b(r, eps, TASK_TOL, &opts)?;
        let ex = exact_path::task_b_exact(r, eps, TASK_TOL)?;
        rows.push(Row::rel(
            format!("rotation share, closed-form path vs ODE, r = {r}, eps = {eps}"),
            ode.rotation_share,
            ex.rotation_share,
            1e-7,
        ));
        rows.push(Row::rel(
            format!("interference, closed-form path vs ODE, r = {r}, eps = {eps}"),
            ode.interference,
            ex.interference,
            1e-7,
        ));
    }
    Ok(rows)
}
