//! The checks of Part II (implicit bias, claims B-1..B-18); the computations live in
//! `crate::bias`.

use super::{Check, Row, Tier};

pub mod agreement;
pub mod approx_grad;
pub mod balance;
pub mod cluster;
pub mod conv;
pub mod diagonal;
pub mod longruns;
pub mod margin;
pub mod modified_flow;
pub mod saxe;
pub mod smoothed_margin;
pub mod width;

/// The checks of Part II, wired into `modeflow check`: B-1..B-15 fast (a few seconds together in
/// release), B-16..B-18 the long runs under `modeflow check --full` ([`longruns`]).
pub fn checks() -> Vec<Check> {
    let fast = |id: &'static str, run: fn() -> crate::Result<Vec<Row>>| Check {
        id,
        tier: Tier::Fast,
        run,
    };
    let full = |id: &'static str, run: fn() -> crate::Result<Vec<Row>>| Check {
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
