//! Which machine kernels may run: the environment variable `MODEFLOW_KERNELS`, read once.
//!
//! - unset, empty or `native`: the fastest kernels the CPU supports, detected at run time (the
//!   packed gemm tiles of [`super::packed::Kernel::detect`] and the vectorised tanh slices of the
//!   rnn forward pass, AVX-512 / AVX2 + FMA on x86-64);
//! - `portable`: the scalar loops everywhere (no FMA, no vector tiles), the same numbers on
//!   every machine up to the order of the sums. CI runs the fast claim tier once more this way
//!   (`.ci/run`), so that no claim depends on which SIMD path ran.
//!
//! Any other value is bad input: the CLI refuses it at start (exit 2, [`check_env`]); library
//! code that reads it without that check falls back to `native` after one warning on stderr.
//! The thin products nalgebra hands to `matrixmultiply` (inputs, readouts: N x 2 and 2 x N
//! factors) keep that crate's own run-time kernel choice, which no variable switches.

use std::sync::OnceLock;

use crate::{Error, Result};

/// The name of the environment variable.
pub const ENV: &str = "MODEFLOW_KERNELS";

/// The allowed values of [`ENV`].
pub const ALLOWED: &str = "native | portable (or unset)";

/// The kernel policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPolicy {
    /// The fastest kernels the CPU supports (run-time detection).
    Native,
    /// Scalar loops only.
    Portable,
}

/// Parse a value of [`ENV`] (`None`: unset).
pub fn parse(value: Option<&str>) -> std::result::Result<KernelPolicy, String> {
    match value.map(str::trim) {
        None | Some("") | Some("native") => Ok(KernelPolicy::Native),
        Some("portable") => Ok(KernelPolicy::Portable),
        Some(v) => Err(v.to_string()),
    }
}

static POLICY: OnceLock<std::result::Result<KernelPolicy, String>> = OnceLock::new();

fn read() -> &'static std::result::Result<KernelPolicy, String> {
    POLICY.get_or_init(|| {
        let v = std::env::var(ENV).ok();
        let r = parse(v.as_deref());
        if let Err(bad) = &r {
            eprintln!("warning: {ENV} = {bad:?} is not one of {ALLOWED}; using the native kernels");
        }
        r
    })
}

/// The policy in force (read once per process).
pub fn policy() -> KernelPolicy {
    read().clone().unwrap_or(KernelPolicy::Native)
}

/// Whether only the scalar kernels may run.
pub fn portable() -> bool {
    policy() == KernelPolicy::Portable
}

/// The policy, or a bad-input error naming the variable, its value and the allowed values.
pub fn check_env() -> Result<KernelPolicy> {
    read().clone().map_err(|bad| Error::Parameter {
        file: "environment".into(),
        field: ENV.into(),
        value: bad,
        allowed: ALLOWED.into(),
        reason: "unknown kernel policy".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse() {
        assert_eq!(parse(None), Ok(KernelPolicy::Native));
        assert_eq!(parse(Some("")), Ok(KernelPolicy::Native));
        assert_eq!(parse(Some("native")), Ok(KernelPolicy::Native));
        assert_eq!(parse(Some(" portable ")), Ok(KernelPolicy::Portable));
        assert_eq!(parse(Some("scalar")), Err("scalar".to_string()));
        assert_eq!(parse(Some("Portable")), Err("Portable".to_string()));
    }
}
