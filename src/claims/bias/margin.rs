//! B-6: separable logistic regression against the max-margin direction (`crate::bias::margin`).

use crate::bias::margin::{RHO_TOL, SLOPE_TOL};
use crate::bias::spec::margin::{run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-6 check on the reference spec (`models/bias-margin.toml`: the THEORY II.3 set, T = 1e6):
/// SVM direction, rho(T) at eta = 1 and 0.25 (its `eta` and `figure_etas`, the runs of the
/// norm-growth figure) against (-ln 5, 0), (-ln 20, 0) and against the SVM-dual prediction,
/// slope of |w| against ln t.
pub fn check_b6() -> Result<Vec<Row>> {
    let spec = Spec::reference();
    let mut rows = Vec::new();
    for (eta, claimed) in [
        (spec.eta, -(5.0f64).ln()),
        (spec.figure_etas[0], -(20.0f64).ln()),
    ] {
        let r = run(&spec, eta, "B-6 reference")?;
        if eta == 1.0 {
            rows.push(Row::abs("w_hat[0] (SVM dual)", 1.0, r.w_hat[0], 1e-12));
            rows.push(Row::abs("w_hat[1] (SVM dual)", 0.0, r.w_hat[1], 1e-12));
        }
        rows.push(
            Row::abs(
                format!("rho_1 predicted by SVM dual, eta={eta}"),
                claimed,
                r.rho_pred[0],
                1e-12,
            )
            .note("(eta/n) exp(-z_s . w~) = alpha_s on the support vectors"),
        );
        rows.push(Row::abs(
            format!("rho_1(1e6), eta={eta}"),
            claimed,
            r.rho[0],
            RHO_TOL,
        ));
        rows.push(Row::abs(
            format!("rho_2(1e6), eta={eta}"),
            0.0,
            r.rho[1],
            RHO_TOL,
        ));
        rows.push(
            Row::abs(
                format!("slope d|w|/d ln t on [1e5, 1e6], eta={eta}"),
                1.0,
                r.slope,
                SLOPE_TOL,
            )
            .note("least squares over 41 log-spaced steps"),
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b6_check_passes() {
        for row in check_b6().unwrap() {
            eprintln!("{} | {:e} | {:e}", row.label, row.measured, row.error);
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
