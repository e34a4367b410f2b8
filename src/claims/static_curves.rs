//! X-5 (fast) and X-10 (full): full-W training on the static task against the I-10 curves;
//! `crate::rnn::static_curves` measures the curves, here are the rows.

use super::Row;
use crate::num::stats::{bootstrap, Band, Bootstrap, Statistic};
use crate::rnn::static_curves::*;
use crate::Result;

/// One row: the seed mean of the per-seed ratios `v` (bootstrap 95% interval) against `pred`
/// with the relative band FLOOR + `extra`; disputed only where the interval excludes the band.
fn curve_row(what: &str, g: f64, pred: f64, v: &[f64], extra: f64, note: String) -> Result<Row> {
    let est = bootstrap(v, Statistic::Mean, &Bootstrap::new(BOOT_SEED))?;
    Ok(Row::interval(
        format!("{what} ratio g={g} vs I-10"),
        &Band::rel(pred, FLOOR + extra),
        &est,
    )
    .context(note))
}

/// Rows of X-5 from a measured curve (first point g = 0).
pub fn x5_rows(c: &[CurvePoint]) -> Result<Vec<Row>> {
    curve_rows(c, 0.5, X5_TT)
}

/// Rows of a measured curve (first point g = 0) at target `zhat` against the I-10 curves,
/// collapse probed at dressed time `tt`.
pub fn curve_rows(c: &[CurvePoint], zhat: f64, tt: f64) -> Result<Vec<Row>> {
    use crate::interference::kernels::linear_theory as lt;
    let mut rows = Vec::new();
    for p in &c[1..] {
        let g = p.g;
        let info = format!("L0/(zhat^2/2)-1 = {:.3}", p.loss0_offset);
        rows.push(curve_row(
            "convergence time",
            g,
            lt::convergence_time_ratio(g),
            &p.tau_conv,
            0.0,
            format!("(1-g^2)^2; {info}"),
        )?);
        rows.push(curve_row(
            "|dW|",
            g,
            lt::dw_norm_ratio(g),
            &p.dw_norm,
            0.0,
            format!("1-g^2; {info}"),
        )?);
        rows.push(curve_row(
            "mean gradient",
            g,
            lt::mean_gradient_ratio(g),
            &p.mean_grad,
            0.0,
            format!("1/(1-g^2); {info}"),
        )?);
        rows.push(curve_row(
            "shuffle loss",
            g,
            lt::shuffle_loss_ratio(g),
            &p.shuffle_ratio,
            0.0,
            format!("L(W0 permuted + dW)/L0 vs g^4(2-g^2)^2; {info}"),
        )?);
        // the collapse holds at leading order; the series' own beta dependence at O(tau~^3)
        // widens the band
        let series = lt::readout(zhat, g, tt) / lt::readout(zhat, 0.0, tt);
        rows.push(curve_row(
            "z(tau~) collapse",
            g,
            1.0,
            &p.z_probe,
            (series - 1.0).abs(),
            format!("z(tau~={tt})/z_g=0 vs 1 (series ratio {series:.4}); {info}"),
        )?);
    }
    Ok(rows)
}

/// The X-5 check (tier fast): N = 256, 16 seeds per g > 0.
pub fn x5_check() -> Result<Vec<Row>> {
    let c = curve(x5_setting, &X5_G, X5_SEEDS, X5_TT)?;
    x5_rows(&c)
}

/// The X-10 check (tier full): the leading-order I-10 curves in the regime where they should
/// be clean, 16 seeds per g > 0.
pub fn x10_check() -> Result<Vec<Row>> {
    let c = curve(x10_setting, &X5_G, X5_SEEDS, X5_TT)?;
    curve_rows(&c, 0.2, X5_TT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(g: f64, r: f64) -> CurvePoint {
        let p = |v: f64| vec![v; 16];
        CurvePoint {
            g,
            seeds: 16,
            tau_conv: p(r * crate::interference::kernels::linear_theory::convergence_time_ratio(g)),
            dw_norm: p(r * (1.0 - g * g)),
            mean_grad: p(r / (1.0 - g * g)),
            shuffle_ratio: p(r * g.powi(4) * (2.0 - g * g).powi(2)),
            z_probe: p(r),
            loss0_offset: 0.0,
        }
    }

    #[test]
    fn rows_pass_on_the_prediction_and_are_disputed_off_it() {
        use crate::claims::Verdict;
        // exact predictions pass; 10% off with a degenerate interval excludes the band
        let exact = x5_rows(&[point(0.0, 1.0), point(0.4, 1.0)]).unwrap();
        assert_eq!(exact.len(), 5);
        assert!(
            exact.iter().all(|r| r.verdict == Verdict::Pass),
            "{exact:?}"
        );
        assert!(exact.iter().all(|r| r.n == Some(16)));
        let off = x5_rows(&[point(0.0, 1.0), point(0.4, 1.1)]).unwrap();
        assert!(
            off[..4].iter().all(|r| r.verdict == Verdict::Disputed),
            "{off:?}"
        );
    }
}
