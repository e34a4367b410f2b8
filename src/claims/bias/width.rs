//! B-9: width independence (`crate::bias::width`).

use crate::bias::width::*;
use crate::claims::Row;
use crate::Result;

/// B-9 check: update counts over widths k = 1, 10, 100, 1000 (3 seeds) and the 1/eta scaling.
pub fn check_b9() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let (alpha, eta, init) = (0.3, 0.05, 1e-4);
    for seed in 0..3u64 {
        let (x, y) = sphere_teacher(200, 20, 0.1, 900 + seed);
        let counts: Vec<usize> = [1, 10, 100, 1000]
            .iter()
            .map(|&k| {
                updates_to_zero_loss(
                    &x,
                    &y,
                    &HingeSgd {
                        k,
                        alpha,
                        eta,
                        init,
                        seed,
                        max_updates: 1_000_000,
                    },
                )
            })
            .collect::<Result<_>>()?;
        let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
        let spread =
            (*counts.iter().max().unwrap_or(&0) - *counts.iter().min().unwrap_or(&0)) as f64 / mean;
        rows.push(
            Row::abs(
                format!("seed {seed}: spread of update counts over k = 1..1000, (max-min)/mean"),
                0.0,
                spread,
                0.05,
            )
            .note(format!("counts {counts:?} (init std {init}, eta {eta})")),
        );
        let half = updates_to_zero_loss(
            &x,
            &y,
            &HingeSgd {
                k: 10,
                alpha,
                eta: eta / 2.0,
                init,
                seed,
                max_updates: 1_000_000,
            },
        )?;
        let ratio = half as f64 / counts[1] as f64;
        rows.push(
            Row::rel(
                format!("seed {seed}: updates(eta/2) / updates(eta), k = 10"),
                2.0,
                ratio,
                0.1,
            )
            .note(format!("{} -> {half}", counts[1])),
        );
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b9_check_passes() {
        for row in check_b9().unwrap() {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
