//! B-9: width independence (`crate::bias::width`).

use crate::bias::spec::width::{rows, run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-9 check: the reference run (`models/bias-width-check.toml`) at seeds 0, 1, 2 (data drawn
/// at 900 + seed), the same run and rows as `modeflow train` on that model: update counts over
/// widths k = 1, 10, 100, 1000 within 5% of each other, and twice the updates at eta/2 (k = 10).
pub fn check_b9() -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for seed in 0..3u64 {
        let spec = Spec::reference(seed);
        out.extend(rows(&spec, &run(&spec)?).into_iter().map(|r| Row {
            label: format!("seed {seed}: {}", r.label),
            ..r
        }));
    }
    Ok(out)
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
