//! B-15: the max-pooling conv detector on XOR-type and orthogonal-pattern data
//! (`crate::bias::conv`).

use crate::bias::spec::pattern::{rows, run, Spec};
use crate::claims::Row;
use crate::Result;

/// B-15 check: the width sweeps of `models/bias-pattern.toml` (XOR-type) and
/// `models/bias-pattern-orthogonal.toml` (m = 8 orthogonal patterns), widths 2, 8, 32, 5 seeds,
/// the runs and rows of `modeflow train` on those models. In R^8 a random direction is within
/// acos(0.95) of one of 8 orthonormal patterns with probability 3.6e-4; single-pattern alignment
/// is disputed for the orthogonal task (claim file).
pub fn check_b15() -> Result<Vec<Row>> {
    let mut out = rows(&run(&Spec::reference("xor"))?);
    out.extend(rows(&run(&Spec::reference("orthogonal"))?));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b15_check_passes() {
        for row in check_b15().unwrap() {
            eprintln!("{} | {:e} | {}", row.label, row.measured, row.note);
            let disputed =
                row.label.starts_with("orthogonal") && row.label.contains("to a true pattern");
            let want = if disputed {
                crate::claims::Verdict::Disputed
            } else {
                crate::claims::Verdict::Pass
            };
            assert_eq!(row.verdict, want, "{row:?}");
        }
    }
}
