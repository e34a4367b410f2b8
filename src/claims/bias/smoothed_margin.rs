//! B-7: the smoothed margin (`crate::bias::smoothed_margin`).

use crate::bias::spec::smoothed_margin::{rows, run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-7 check: the reference run (`models/bias-smoothed-margin.toml`) at seeds 0, 1, 2, the same
/// run and rows as `modeflow train` on that model: gamma~ never decreases by more than 1e-8
/// relative per step once L_sum < 1, the direction settles and |theta|^2 gains a constant per
/// doubling of t. Each row's label names its seed.
pub fn check_b7() -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for seed in 0..3u64 {
        let spec = Spec::reference(seed);
        for r in rows(&spec, &run(&spec)?) {
            out.push(Row {
                label: format!("seed {seed}: {}", r.label),
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
