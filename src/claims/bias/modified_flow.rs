//! B-12: the order of the modified flow (backward-error analysis, `crate::bias::modified_flow`).

use nalgebra::DVector;

use crate::bias::modified_flow::*;
use crate::claims::Row;
use crate::Result;

/// B-12 check.
pub fn check_b12() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let p = test_problem();
    let w0 = DVector::from_vec(vec![1.5, -1.0, 0.8]);
    let epss = [0.2, 0.1, 0.05];
    let gd: Vec<(f64, f64)> = epss.iter().map(|&e| gd_errors(&p, &w0, e, 2.0)).collect();
    for i in 0..2 {
        rows.push(
            Row::rel(
                format!("GD vs GF: error ratio eps {} -> {}", epss[i], epss[i + 1]),
                2.0,
                gd[i].0 / gd[i + 1].0,
                RATIO_TOL,
            )
            .note(format!(
                "errors at t = 2: {:.3e} -> {:.3e}",
                gd[i].0,
                gd[i + 1].0
            )),
        );
        rows.push(
            Row::rel(
                format!(
                    "GD vs modified flow: error ratio eps {} -> {}",
                    epss[i],
                    epss[i + 1]
                ),
                4.0,
                gd[i].1 / gd[i + 1].1,
                RATIO_TOL,
            )
            .note(format!(
                "errors at t = 2: {:.3e} -> {:.3e}",
                gd[i].1,
                gd[i + 1].1
            )),
        );
    }
    let batches = vec![
        (0..4).collect::<Vec<_>>(),
        (4..8).collect(),
        (8..12).collect(),
    ];
    let sg: Vec<(f64, f64)> = epss
        .iter()
        .map(|&e| sgd_epoch_errors(&p, &batches, &w0, e))
        .collect();
    for i in 0..2 {
        rows.push(
            Row::rel(
                format!(
                    "SGD epoch vs GF: error ratio eps {} -> {}",
                    epss[i],
                    epss[i + 1]
                ),
                4.0,
                sg[i].0 / sg[i + 1].0,
                RATIO_TOL,
            )
            .note(format!(
                "one epoch, 3 batches, mean of 6 orders: {:.3e} -> {:.3e}",
                sg[i].0,
                sg[i + 1].0
            )),
        );
        rows.push(
            Row::rel(
                format!(
                    "SGD epoch vs modified flow: error ratio eps {} -> {}",
                    epss[i],
                    epss[i + 1]
                ),
                8.0,
                sg[i].1 / sg[i + 1].1,
                RATIO_TOL,
            )
            .note(format!("{:.3e} -> {:.3e}", sg[i].1, sg[i + 1].1)),
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b12_check_passes() {
        for row in check_b12().unwrap() {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
