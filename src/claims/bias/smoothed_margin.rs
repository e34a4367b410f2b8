//! B-7: the smoothed margin (`crate::bias::smoothed_margin`).

use crate::bias::spec::smoothed_margin::{rows, run, Spec};
use crate::bias::stats::fmt_list;
use crate::claims::Row;
use crate::Result;

/// B-7 check: the reference run (`models/bias-smoothed-margin.toml`) at seeds 0, 1, 2, the same
/// run and rows as `modeflow train` on that model: gamma~ never decreases by more than 1e-8
/// relative per step once L_sum < 1, the direction settles and |theta|^2 gains a constant per
/// doubling of t. Each row's label names its seed; the notes also name the run length and
/// |theta|^2 at the doubling checkpoints.
pub fn check_b7() -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for seed in 0..3u64 {
        let spec = Spec::reference(seed);
        let o = run(&spec)?;
        let norms: Vec<f64> = o
            .run
            .samples
            .iter()
            .filter(|s| o.doubling.contains(&s.0))
            .map(|s| s.2)
            .collect();
        for (i, r) in rows(&spec, &o).into_iter().enumerate() {
            let note = match i {
                0 => format!(
                    "L < 1 from step {}; GD eta {} on the mean exp loss, {} steps",
                    o.run.t0, spec.eta, spec.steps
                ),
                1 => format!(
                    "{}; |theta|^2 at t = 5e3..4e4: {}",
                    r.note,
                    fmt_list(&norms)
                ),
                _ => r.note.clone(),
            };
            out.push(Row {
                label: format!("seed {seed}: {}", r.label),
                note,
                ..r
            });
        }
    }
    Ok(out)
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
