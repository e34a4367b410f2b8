//! B-3, B-4, B-5: linear teacher, +-1 student, the agreement regime and the lifted problem
//! (`crate::bias::agreement`): the rows of the reference run
//! (`models/bias-agreement-check.toml`, the run of `modeflow train` on it), one run shared by
//! the three checks.

use std::sync::OnceLock;

use crate::bias::spec::agreement::{run, Spec, REFERENCE_FILE};
use crate::claims::Row;
use crate::Result;

/// The rows of the reference run, computed once per process (the three checks share it; the
/// run is deterministic, so a failed attempt is simply repeated by the next check).
fn reference_rows() -> Result<&'static [Row]> {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    if let Some(rows) = ROWS.get() {
        return Ok(rows);
    }
    let rows = run(&Spec::reference(), REFERENCE_FILE)?.rows;
    Ok(ROWS.get_or_init(|| rows))
}

/// The reference rows of one claim ("B-3: ...", after the "seed s: " label of each seed).
fn claim_rows(claim: &str) -> Result<Vec<Row>> {
    let tag = format!("{claim}: ");
    Ok(reference_rows()?
        .iter()
        .filter(|r| r.label.contains(&tag))
        .cloned()
        .collect())
}

/// B-3 check: exact clusters (random sums P, Q ~ N(0, I)) => sign N(x) = sign((P - Q).x) on 1e4
/// random points, seeds 0, 1, 2.
pub fn check_b3() -> Result<Vec<Row>> {
    claim_rows("B-3")
}

/// B-4 check: pairwise differences constant in the agreement regime (seeds 0, 1, 2, 2000 steps).
pub fn check_b4() -> Result<Vec<Row>> {
    claim_rows("B-4")
}

/// B-5 check: (P, Q) equals lifted GD (seeds 0, 1, 2, 2000 steps), and lifted GD tends in
/// direction to the lifted max-margin solution (the direction error shrinks like 1/ln t from
/// t = 1e5 to 1e6) which is not the plain SVM direction.
pub fn check_b5() -> Result<Vec<Row>> {
    claim_rows("B-5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b3_b4_b5_checks_pass() {
        let (b3, b4, b5) = (
            check_b3().unwrap(),
            check_b4().unwrap(),
            check_b5().unwrap(),
        );
        assert_eq!((b3.len(), b4.len(), b5.len()), (3, 6, 6));
        for row in b3.into_iter().chain(b4).chain(b5) {
            eprintln!(
                "{} | {:e} | {:e} | {}",
                row.label, row.measured, row.error, row.note
            );
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
