//! B-8: cosine cluster count (`crate::bias::cluster`).

use crate::bias::spec::clusters::{rows as clusters_rows, run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-8 check: the reference run (`models/bias-clusters.toml`) at seeds 0, 1, 2, the same run and
/// rows as `modeflow train` on that model: cluster count 2, active neurons aligning with the
/// one-class max-margin vectors.
pub fn check_b8() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for seed in 0..3 {
        let spec = Spec::reference(seed);
        let out = run(&spec)?;
        rows.extend(clusters_rows(&spec, &out).into_iter().map(|r| Row {
            label: format!("seed {seed}: {}", r.label),
            ..r
        }));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b8_check_passes() {
        for row in check_b8().unwrap() {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
