//! Implicit bias of (S)GD (THEORY.md Part II, claims B-1..B-15): model families with
//! hand-written gradients, trainers, the exact balance laws, margins and max-margin limits,
//! diagonal linear nets and their mirror potential, modified flows, Saxe mode curves and the
//! bias/variance formula for approximate gradients.
//!
//! - [`nets`]: two-layer nets, deep linear nets, the ReLU RNN (losses, gradients).
//! - [`balance`]: B-1, B-2 per-step identities and drift exponents.
//! - [`stats`]: fitting helpers.

pub mod approx_grad;
pub mod balance;
pub mod diagonal;
pub mod margin;
pub mod modified_flow;
pub mod nets;
pub mod saxe;
pub mod solvers;
pub mod stats;

use crate::claims::{Check, Tier};

/// The checks of Part II, wired into `modeflow check`.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "B-1",
            tier: Tier::Fast,
            run: balance::check_b1,
        },
        Check {
            id: "B-2",
            tier: Tier::Fast,
            run: balance::check_b2,
        },
    ]
}
