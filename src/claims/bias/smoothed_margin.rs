//! B-7: the smoothed margin (`crate::bias::smoothed_margin`).

use crate::bias::smoothed_margin::*;
use crate::claims::Row;
use crate::Result;

/// B-7 check.
pub fn check_b7() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let cps = [5_000, 10_000, 20_000, 40_000];
    for seed in 0..3u64 {
        let r = smoothed_margin_run(seed, 0.01, 40_000, &cps)?;
        rows.push(
            Row::abs(
                format!("seed {seed}: max relative per-step decrease of gamma~ after L < 1"),
                0.0,
                r.max_rel_decrease.max(0.0),
                1e-8,
            )
            .note(format!(
                "L < 1 from step {}; GD eta 0.01 on the mean exp loss, 40000 steps",
                r.t0
            )),
        );
        if r.thetas.len() == cps.len() {
            let c: Vec<f64> = (0..cps.len() - 1)
                .map(|i| {
                    1.0 - r.thetas[i].dot(&r.thetas[i + 1])
                        / (r.thetas[i].norm() * r.thetas[i + 1].norm())
                })
                .collect();
            rows.push(Row::holds(
                format!(
                    "seed {seed}: 1 - cos(theta(t), theta(2t)) decreases along t = 5000..40000"
                ),
                c.windows(2).all(|p| p[1] < p[0]),
                format!(
                    "{}; |theta|^2 at t = 5e3..4e4: {}",
                    crate::bias::stats::fmt_list(&c),
                    crate::bias::stats::fmt_list(
                        &r.samples.iter().map(|s| s.2).collect::<Vec<_>>()
                    )
                ),
            ));
            // |theta|^2 = ln t / gamma~ + O(ln ln t): equal increments per doubling of t
            // (ln 2 / gamma~); gamma~ still rises slowly, so allow 10%.
            let inc: Vec<f64> = r.samples.windows(2).map(|p| p[1].2 - p[0].2).collect();
            rows.push(
                Row::rel(
                    format!("seed {seed}: |theta|^2 increment per doubling, last / first (|theta| ~ (ln t)^(1/2))"),
                    1.0,
                    inc[inc.len() - 1] / inc[0],
                    0.1,
                )
                .note(crate::bias::stats::fmt_list(&inc)),
            );
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b7_check_passes() {
        for row in check_b7().unwrap() {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
