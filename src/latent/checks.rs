//! Numerical checks of claims I-1..I-4 (see `proofs-checks/I-0*.md`).

use crate::claims::Check;

/// The checks of claims I-1..I-4.
pub fn checks() -> Vec<Check> {
    vec![]
}
