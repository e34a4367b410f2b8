//! B-12: the order of the modified flow (backward-error analysis, `crate::bias::modified_flow`).

use crate::bias::spec::modified_flow::{ratio_rows, run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-12 check: the order rows of the reference run (`models/bias-modified-flow.toml`), the same
/// function `modeflow train` runs on that model.
pub fn check_b12() -> Result<Vec<Row>> {
    let spec = Spec::reference();
    Ok(ratio_rows(&spec, &run(&spec)?))
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
