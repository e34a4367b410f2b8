//! Resource budgets, checked on the validated spec before anything is allocated.
//!
//! Every kind estimates the memory its parameters imply (states x batch x steps, N^2 matrices,
//! data n x d, points of a sweep) and the number of steps of its longest loop, and calls
//! [`check_memory`] / [`check_steps`] from its `check`. What exceeds the budget is rejected as
//! bad input (exit 2) with the estimate and the field to change. The memory budget defaults to
//! [`DEFAULT_MAX_MEMORY`] (4 GiB: comfortable on a 24 GiB machine running a few jobs) and is
//! set per process with `--max-memory` ([`set_max_memory`]); the step budget [`MAX_STEPS`] is
//! fixed. Estimates are f64, so no product of sizes can overflow.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Default memory budget of one process: 4 GiB.
pub const DEFAULT_MAX_MEMORY: u64 = 4 << 30;

/// Most steps of one loop (time steps of one trajectory, steps of one run, points of a sweep):
/// 10^9. At ~10^7-10^8 cheap steps per second this is tens of seconds to minutes; more is a
/// typo, not an experiment (and would overflow the step counters' f64 -> usize conversions
/// long before 10^308).
pub const MAX_STEPS: f64 = 1e9;

static MAX_MEMORY: AtomicU64 = AtomicU64::new(DEFAULT_MAX_MEMORY);

/// Set the memory budget of this process (bytes).
pub fn set_max_memory(bytes: u64) {
    MAX_MEMORY.store(bytes, Ordering::Relaxed);
}

/// The memory budget of this process (bytes).
pub fn max_memory() -> u64 {
    MAX_MEMORY.load(Ordering::Relaxed)
}

/// Parse a memory size: a number with an optional unit K, M, G, T (powers of 1024, optionally
/// followed by `iB` or `B`), e.g. `512M`, `4G`, `8GiB`, `1000000`. At least 1 MiB.
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || {
        Error::Requirement(format!(
            "--max-memory `{}`: expected a size like 512M, 4G or 8GiB (at least 1M, at most 1P)",
            crate::io::truncate(s, 40)
        ))
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches("IB").trim_end_matches('B');
    let scale = match unit {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0f64.powi(4),
        _ => return Err(bad()),
    };
    let bytes = x * scale;
    if !bytes.is_finite() || bytes < 1024.0 * 1024.0 || bytes > 1024.0f64.powi(5) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// A byte count for messages: `3.2 GiB`, `512.0 MiB`, `1.0e12 GiB` for absurd estimates.
pub fn human(bytes: f64) -> String {
    let gib = bytes / (1u64 << 30) as f64;
    if gib >= 1e6 {
        format!("{gib:.1e} GiB")
    } else if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.1} MiB", bytes / (1u64 << 20) as f64)
    }
}

/// Reject a run whose estimated memory `bytes` exceeds the budget. `field` (with its `value`)
/// is the parameter to change, `what` says what the estimate counts.
pub fn check_memory(
    file: &str,
    field: &str,
    value: impl ToString,
    bytes: f64,
    what: &str,
) -> Result<()> {
    let budget = max_memory() as f64;
    if bytes.is_finite() && bytes <= budget {
        return Ok(());
    }
    Err(Error::Parameter {
        file: file.to_string(),
        field: field.to_string(),
        value: value.to_string(),
        allowed: format!(
            "a value whose run fits the memory budget of {} (raise it with --max-memory)",
            human(budget)
        ),
        reason: format!("the run would need about {} ({what})", human(bytes)),
    })
}

/// Reject a loop of `steps` steps (an f64 estimate, so 1e308 / dt cannot overflow) above
/// [`MAX_STEPS`]. `field`/`value` name the parameter to change.
pub fn check_steps(
    file: &str,
    field: &str,
    value: impl ToString,
    steps: f64,
    what: &str,
) -> Result<()> {
    if steps.is_finite() && steps <= MAX_STEPS {
        return Ok(());
    }
    Err(Error::Parameter {
        file: file.to_string(),
        field: field.to_string(),
        value: value.to_string(),
        allowed: format!("a value giving at most {MAX_STEPS:e} steps"),
        reason: format!("{what}: {steps:.3e} steps"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("8GiB").unwrap(), 8 << 30);
        assert_eq!(parse_size("2097152").unwrap(), 2 << 20);
        for bad in ["", "x", "4Q", "10", "-1G", "1e400", "2000P"] {
            assert!(parse_size(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn budgets_reject_with_field_and_estimate() {
        assert!(check_memory("m.toml", "n", 10, 1e6, "x").is_ok());
        let e = check_memory("m.toml", "network.n", 20000, 4e10, "N^2 matrices").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("m.toml") && msg.contains("network.n") && msg.contains("37.3 GiB"));
        assert_eq!(e.exit_code(), 2);
        assert!(check_memory("m.toml", "n", 1, f64::INFINITY, "x").is_err());
        assert!(check_memory("m.toml", "n", 1, f64::NAN, "x").is_err());
        assert!(check_steps("m.toml", "horizon", 1e308, 1e308 / 0.1, "GD").is_err());
        assert!(check_steps("m.toml", "horizon", 10, 1e3, "GD").is_ok());
    }
}
