//! B-13: Saxe mode curves against the closed form (`crate::bias::saxe`).

use crate::bias::spec::saxe::{rows, run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-13 check: the reference run (`models/bias-saxe-check.toml`), the same run and rows as
/// `modeflow train` on that model: the trained net's modes vs the scalar map and their
/// decoupling, the order test of the map against the GF curve of mode 1 and the GD half-time of
/// every mode, then, from the map of mode 2 alone (`[map]`), the first-order approach of GD to
/// GF on halving eta and the GD half-time at eta = 1e-3, 1e-4.
pub fn check_b13() -> Result<Vec<Row>> {
    let spec = Spec::reference();
    Ok(rows(&spec, &run(&spec)?).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b13_check_passes() {
        for row in check_b13().unwrap() {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
