//! Implicit bias of (S)GD (docs/theory.md Part II, claims B-1..B-15): model families with
//! hand-written gradients, trainers, the exact balance laws, margins and max-margin limits,
//! diagonal linear nets and their mirror potential, modified flows, Saxe mode curves and the
//! bias/variance formula for approximate gradients.
//!
//! - [`nets`]: two-layer nets, deep linear nets, the ReLU RNN (losses, gradients).
//! - [`balance`]: B-1, B-2 per-step identities and drift exponents.
//! - [`agreement`]: B-3, B-4, B-5 linear teacher, +-1 student, agreement regime, lifted problem.
//! - [`margin`]: B-6 separable logistic regression, rho(t), slope of |w| vs ln t.
//! - [`smoothed_margin`]: B-7; [`cluster`]: cosine cluster count and B-8; [`width`]: B-9.
//! - [`diagonal`]: B-10, B-11 diagonal linear nets, alpha_inf, the mirror potential.
//! - [`modified_flow`]: B-12 backward-error analysis order test.
//! - [`saxe`]: B-13 mode curves; [`approx_grad`]: B-14 bias/variance of one step.
//! - [`solvers`]: hard-margin SVM, mirror-potential argmin (dual Newton, log domain).
//! - [`spec`]: model kinds `bias_balance`, `bias_margin`, `bias_diagonal` and `train`.
//! - [`conv`], [`pattern_data`]: B-15 max-pooling conv detector, XOR-type and
//!   orthogonal-pattern detection data, width trends.
//! - [`longruns`]: full-tier long runs: B-16 reference runs of II.2, B-17 long B-8, B-18 long B-7.
//! - [`stats`]: fitting helpers.

pub mod agreement;
pub mod approx_grad;
pub mod balance;
pub mod cluster;
pub mod conv;
pub mod diagonal;
pub mod longruns;
pub mod margin;
pub mod modified_flow;
pub mod nets;
pub mod pattern_data;
pub mod saxe;
pub mod smoothed_margin;
pub mod solvers;
pub mod spec;
pub mod stats;
pub mod width;

use crate::claims::{Check, Tier};

/// The checks of Part II, wired into `modeflow check`: B-1..B-15 fast (a few seconds together in
/// release), B-16..B-18 the long runs under `modeflow check --full` ([`longruns`]).
pub fn checks() -> Vec<Check> {
    let fast = |id: &'static str, run: fn() -> crate::Result<Vec<crate::claims::Row>>| Check {
        id,
        tier: Tier::Fast,
        run,
    };
    let full = |id: &'static str, run: fn() -> crate::Result<Vec<crate::claims::Row>>| Check {
        id,
        tier: Tier::Full,
        run,
    };
    vec![
        fast("B-1", balance::check_b1),
        fast("B-2", balance::check_b2),
        fast("B-6", margin::check_b6),
        fast("B-10", diagonal::check_b10),
        fast("B-11", diagonal::check_b11),
        fast("B-12", modified_flow::check_b12),
        fast("B-13", saxe::check_b13),
        fast("B-14", approx_grad::check_b14),
        fast("B-3", agreement::check_b3),
        fast("B-4", agreement::check_b4),
        fast("B-5", agreement::check_b5),
        fast("B-9", width::check_b9),
        fast("B-7", smoothed_margin::check_b7),
        fast("B-8", cluster::check_b8),
        fast("B-15", conv::check_b15),
        full("B-16", longruns::check_b16),
        full("B-17", longruns::check_b17),
        full("B-18", longruns::check_b18),
    ]
}

pub use spec::{train, BiasReport};
