//! Claims I-16 and I-18 (proofs-checks/I-16-*.md, I-18-*.md): the race between rotation and
//! new formation beyond the leading-order I-8 criterion, and the step size that picks the
//! mode. The domain code ([`crate::interference::linear::exact_path`],
//! [`crate::interference::linear::modified`]) returns plain numbers; the rows live here.

use super::{Check, Row, Tier, Verdict};
use crate::interference::linear::closed::Params;
use crate::interference::linear::flow::State;
use crate::interference::linear::modified::{self, Ending};
use crate::interference::linear::{closed, exact_path, flow, race};
use crate::Result;

/// The registered checks of this file.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "I-16",
            tier: Tier::Fast,
            run: check_i16,
        },
        Check {
            id: "I-18",
            tier: Tier::Fast,
            run: check_i18,
        },
    ]
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
    for (r, eps) in [
        (0.2, 0.05),
        (0.3, 0.05),
        (0.45, 0.05),
        (0.15, 0.01),
        (0.5, 0.2),
    ] {
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

/// A row comparing `measured` with `predicted` within `tol` (absolute); if the claim fails but
/// the measurement reproduces our documented `finding` to `finding_tol`, the verdict is
/// `Disputed` (the [`Row::disputed`] rule for an absolute scale such as log2 of a step).
pub(super) fn disputed_abs(
    label: String,
    predicted: f64,
    measured: f64,
    tol: f64,
    finding: f64,
    finding_tol: f64,
) -> Row {
    let mut row = Row::abs(label, predicted, measured, tol);
    if row.verdict == Verdict::Fail {
        let ferr = (measured - finding).abs();
        if ferr <= finding_tol {
            row.verdict = Verdict::Disputed;
        }
        row.note = format!("claim disputed; our finding {finding:.6e} (abs. err {ferr:.2e})");
    }
    row
}

/// Documented findings of I-18 (proofs-checks/I-18-step-size-mode.md): the modified flow's
/// rotation share at h = 1/4 (r, eps, share) ...
const SHARE_AT_QUARTER: [(f64, f64, f64); 2] = [(0.3, 0.05, 0.260_6), (0.2, 0.05, 0.226_7)];
/// ... and log2 of GD's critical ladder step (r, eps, log2 h_GD).
const GD_CRITICAL_LOG2: [(f64, f64, f64); 3] =
    [(0.2, 0.05, -9.0), (0.15, 0.01, -11.0), (0.25, 0.05, -7.0)];

/// I-18 on the linear 2x2 race: the closed-form modified field against finite differences,
/// GD against the plain and the modified flow (B-12's order), the direction in which the
/// step size moves the race (the hypothesis: towards rotation), and the critical step: the
/// modified flow's h* and the stability bound 2/N_end against GD on the ladder 1 .. 2^-15;
/// last, the Hessian at the flow's end point by finite differences against g g^T.
fn check_i18() -> Result<Vec<Row>> {
    let mut rows = i18_closed_form_rows()?;
    rows.extend(i18_order_rows()?);
    rows.extend(i18_direction_rows()?);
    rows.extend(i18_critical_rows()?);
    rows.extend(i18_end_hessian_rows()?);
    Ok(rows)
}

/// (1) Closed forms against central differences at an unbalanced M, u != zhat. Step 1e-6:
/// truncation ~1e-12 x third derivatives, rounding ~1e-16/1e-6; tolerance 1e-6 relative.
fn i18_closed_form_rows() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let par = Params {
        u: 0.3,
        zhat: 1.2,
        eta: 1.0,
    };
    let y = State::new(0.6, 0.2, -0.1, 0.3);
    let d = modified::derivatives(&y, &par).ok_or_else(|| crate::Error::Singular {
        context: "I-18 finite-difference point".into(),
        pivot: 0.0,
        threshold: closed::SINGULAR_D,
    })?;
    let n_at = |y: &State| modified::derivatives(y, &par).map_or(f64::NAN, |d| d.n);
    let step = 1e-6;
    let mut fd = State::zeros();
    for i in 0..4 {
        let (mut yp, mut ym) = (y, y);
        yp[i] += step;
        ym[i] -= step;
        fd[i] = (n_at(&yp) - n_at(&ym)) / (2.0 * step);
    }
    rows.push(Row::rel(
        "grad |grad z_BB|^2: closed form vs central differences (max abs. deviation / max entry)",
        d.grad_n.amax(),
        d.grad_n.amax() + (fd - d.grad_n).amax(),
        1e-6,
    ));
    let gl = modified::loss_gradient(&d);
    let t = step / gl.norm();
    let grad_at = |y: &State| {
        modified::derivatives(y, &par)
            .map_or(State::repeat(f64::NAN), |d| modified::loss_gradient(&d))
    };
    let hv = (grad_at(&(y + gl * t)) - grad_at(&(y - gl * t))) / (2.0 * t);
    let hg = modified::hessian_gradient(&d);
    rows.push(Row::rel(
        "H grad L: closed form vs difference of two gradients along grad L (max abs. deviation / max entry)",
        hg.amax(),
        hg.amax() + (hv - hg).amax(),
        1e-6,
    ));
    Ok(rows)
}

/// (2) B-12's order on this model at (r, eps) = (0.3, 0.05), rotation share at the end of B:
/// halving h halves |GD - plain flow| (first order) and quarters |GD - modified flow|
/// (second order). Bands 2 +- 0.5 and 4 +- 1 (the O(h) remainder at h = 1/64).
fn i18_order_rows() -> Result<Vec<Row>> {
    let (r, eps) = (0.3, 0.05);
    let plain = modified::modified_task_b(r, eps, 0.0, TASK_TOL)?.rotation_share;
    let errs = |h: f64| -> Result<(f64, f64)> {
        let g = modified::gd_task_b(r, eps, h, TASK_TOL)?.rotation_share;
        let m = modified::modified_task_b(r, eps, h, TASK_TOL)?.rotation_share;
        Ok(((g - plain).abs(), (g - m).abs()))
    };
    let (p1, m1) = errs(1.0 / 64.0)?;
    let (p2, m2) = errs(1.0 / 128.0)?;
    Ok(vec![
        Row::abs(
            "|GD - plain flow| ratio h = 1/64 : 1/128 (first order: 2)",
            2.0,
            p1 / p2,
            0.5,
        ),
        Row::abs(
            "|GD - modified flow| ratio h = 1/64 : 1/128 (second order: 4)",
            4.0,
            m1 / m2,
            1.0,
        ),
    ])
}

/// (3) The hypothesis: the gradient-norm penalty favours rotation. Claimed: the modified
/// flow's rotation share at h = 1/4 is not below the plain flow's; measured: it falls. Above
/// the crossover the modified flow never flips to rotation for h <= 1.
fn i18_direction_rows() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (r, eps, finding) in SHARE_AT_QUARTER {
        let s0 = modified::modified_task_b(r, eps, 0.0, TASK_TOL)?.rotation_share;
        let sh = modified::modified_task_b(r, eps, 0.25, TASK_TOL)?;
        let mut row = Row::disputed(
            format!(
                "rotation share, modified flow h = 1/4 vs plain flow, r = {r}, eps = {eps} (claim: not lower)"
            ),
            s0,
            sh.rotation_share,
            0.0,
            finding,
            1e-3,
        );
        if sh.rotation_share >= s0 {
            row.verdict = Verdict::Pass;
        }
        rows.push(row);
    }
    let none = modified::eta_star_modified(0.3, 0.05, TASK_TOL, 1.0)?;
    rows.push(Row::holds(
        "r = 0.3 > r*, eps = 0.05: modified flow stays new formation for every h <= 1",
        none.is_none(),
        format!("h* = {none:?}"),
    ));
    Ok(rows)
}

/// (4) The critical step where the flow rotates: the modified flow's h* against GD's flip
/// on the ladder 2^-k, k = 0..15 (log2; tolerance 1: the ladder's factor 2), and the
/// stability bound 2/N_end of the flow's end point against the same (log2 ratio in [-1, 2]);
/// GD at the ladder's largest step does not learn B at all at (0.2, 0.05).
fn i18_critical_rows() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (r, eps, finding) in GD_CRITICAL_LOG2 {
        let hm = modified::eta_star_modified(r, eps, TASK_TOL, 1.0)?;
        let hg = modified::gd_critical_step(r, eps, TASK_TOL, 15)?;
        let hs = modified::stability_step(r, eps, TASK_TOL)?;
        let (Some(hm), Some(hg)) = (hm, hg) else {
            rows.push(Row::holds(
                format!("r = {r}, eps = {eps}: modified h* and GD's flip exist"),
                false,
                format!("modified {hm:?}, GD {hg:?}"),
            ));
            continue;
        };
        rows.push(disputed_abs(
            format!(
                "log2 critical step: modified flow h* = {hm:.4} vs GD ladder, r = {r}, eps = {eps}"
            ),
            hm.log2(),
            hg.log2(),
            1.0,
            finding,
            1e-9,
        ));
        rows.push(
            Row::abs(
                format!(
                    "log2(h_GD / (2/N_end)), r = {r}, eps = {eps} (stability edge: in [-1, 2])"
                ),
                0.5,
                (hg / hs).log2(),
                1.5,
            )
            .note(format!("2/N_end = {hs:.4e}, h_GD = 2^{}", hg.log2())),
        );
    }
    // GD at the ladder's largest steps does not learn B at all here (D <= 0 or |e| > 10).
    let g1 = modified::gd_task_b(0.2, 0.05, 1.0, TASK_TOL)?;
    rows.push(Row::holds(
        "GD at h = 1, r = 0.2, eps = 0.05 leaves the stable region",
        g1.ending == Ending::Diverged,
        format!("{:?} after {} steps", g1.ending, g1.steps),
    ));
    Ok(rows)
}

/// (5) The stability edge's premise, independently: at the flow's end point of B the loss
/// Hessian is g g^T (rank one, eigenvalue N_end = |grad z_BB|^2), so GD's step map
/// M -> M - h grad L has the multiplier 1 - h N_end there and loses the point at
/// h = 2 / N_end. The Hessian by central differences of the closed-form gradient grad L =
/// -e g (step 1e-7 / sqrt(N_end) in M: truncation ~1e-14 relative x the third derivatives,
/// rounding ~1e-16 |grad L| / step) against N_end from the N formula
/// (`modified::stability_step`), at the three points of the critical-step rows. Tolerances:
/// top eigenvalue 1e-4 relative (the end point's residual e = 1e-6 adds -e Hess z_BB, relative
/// ~1e-6 |Hess z| / N; FD error below that); rank one: the second-largest |eigenvalue| below
/// 1e-4 N_end.
fn i18_end_hessian_rows() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (r, eps, _) in GD_CRITICAL_LOG2 {
        let par = Params::reference(r);
        let m = exact_path::task_b_exact(r, eps, TASK_TOL)?.m_after;
        let y = State::new(m[0][0], m[0][1], m[1][0], m[1][1]);
        let n_end = 2.0 / modified::stability_step(r, eps, TASK_TOL)?;
        let grad = |y: &State| {
            modified::derivatives(y, &par)
                .map_or(State::repeat(f64::NAN), |d| modified::loss_gradient(&d))
        };
        let step = 1e-7 / n_end.sqrt();
        let mut hess = nalgebra::Matrix4::zeros();
        for j in 0..4 {
            let (mut yp, mut ym) = (y, y);
            yp[j] += step;
            ym[j] -= step;
            hess.set_column(j, &((grad(&yp) - grad(&ym)) / (2.0 * step)));
        }
        let sym = (hess + hess.transpose()) * 0.5;
        let mut ev: Vec<f64> = nalgebra::SymmetricEigen::try_new(sym, 1e-15, 1000)
            .ok_or_else(|| crate::Error::Numerical("I-18: eigenvalues of the 4x4 Hessian".into()))?
            .eigenvalues
            .iter()
            .map(|v| v.abs())
            .collect();
        ev.sort_by(|a, b| b.total_cmp(a));
        rows.push(Row::rel(
            format!("lambda_max of the loss Hessian at the flow's end (FD) vs N_end, r = {r}, eps = {eps}"),
            n_end,
            ev[0],
            1e-4,
        ));
        rows.push(
            Row::abs(
                format!("second |eigenvalue| / N_end at the flow's end (rank one), r = {r}, eps = {eps}"),
                0.0,
                ev[1] / n_end,
                1e-4,
            )
            .note(format!("N_end = {n_end:.6e}")),
        );
    }
    Ok(rows)
}
