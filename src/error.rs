//! Typed errors of the whole library.
//!
//! Every variant carries what a user needs to act: the file, the field, the allowed range, the
//! step at which a run diverged. The CLI maps them to exit codes with [`Error::exit_code`]:
//! 2 for bad input, 1 for a computation that failed.

use std::path::PathBuf;

/// Result alias used throughout modeflow.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in modeflow.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file could not be read or parsed (malformed TOML, unknown key, missing field).
    #[error("{file}: {message}")]
    ModelFile { file: String, message: String },

    /// A parameter is out of its allowed range or not finite.
    #[error("{file}: field `{field}` = {value}: {reason} (allowed: {allowed})")]
    Parameter {
        file: String,
        field: String,
        value: String,
        allowed: String,
        reason: String,
    },

    /// Inconsistent shapes or sizes between inputs.
    #[error("shape mismatch in {context}: {message}")]
    Shape { context: String, message: String },

    /// A matrix that had to be inverted or factorised is singular (or numerically so).
    #[error("singular matrix in {context} (|det| or pivot {pivot:.3e} below {threshold:.1e})")]
    Singular {
        context: String,
        pivot: f64,
        threshold: f64,
    },

    /// The ODE integrator failed (step size underflow, step cap, non-finite state).
    #[error("ODE integration failed at t = {t}: {reason}")]
    Ode { t: f64, reason: String },

    /// An iterative solver (Newton, root finder, optimiser) did not converge.
    #[error("{solver} did not converge after {iterations} iterations (residual {residual:.3e}, tolerance {tolerance:.1e})")]
    NoConvergence {
        solver: String,
        iterations: usize,
        residual: f64,
        tolerance: f64,
    },

    /// Training or a flow diverged (non-finite or exploding loss).
    #[error("{what} diverged at step {step} (loss {loss:e}); {hint}")]
    Diverged {
        what: String,
        step: usize,
        loss: f64,
        hint: String,
    },

    /// A requirement of the data or the setting is not met (e.g. data not separable): bad
    /// input, exit 2. A computation that failed on valid input is [`Error::Numerical`].
    #[error("{0}")]
    Requirement(String),

    /// A computation failed on valid input (non-finite values, a bracket or a root not found,
    /// a decomposition over its iteration cap, a figure that could not be encoded): exit 1.
    /// Never bad input: the message says what failed and, where known, why.
    #[error("{0}")]
    Numerical(String),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A claims file or the claims registry is inconsistent.
    #[error("claims: {0}")]
    Claims(String),

    /// A computation on a model file failed (one of the variants above, with the file named).
    #[error("{file}: {message}")]
    Computation { file: String, message: String },
}

impl Error {
    /// Exit code for the CLI: 2 for bad input, 1 for a computation or check that failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::ModelFile { .. }
            | Error::Parameter { .. }
            | Error::Shape { .. }
            | Error::Requirement(_)
            | Error::Io { .. } => 2,
            _ => 1,
        }
    }

    /// Name the model file in an error whose message does not already name it (a failed
    /// ODE, Newton or training run; a requirement or shape error raised deep in a solver):
    /// `file: message`, with the same exit code. Errors that carry their file or path
    /// (`ModelFile`, `Parameter`, `Io`, `Computation`) are returned unchanged.
    pub fn in_file(self, file: &str) -> Self {
        if matches!(
            self,
            Error::ModelFile { .. }
                | Error::Parameter { .. }
                | Error::Io { .. }
                | Error::Computation { .. }
        ) {
            return self;
        }
        let message = self.to_string();
        if message.contains(file) {
            return self;
        }
        if self.exit_code() == 2 {
            Error::ModelFile {
                file: file.to_string(),
                message,
            }
        } else {
            Error::Computation {
                file: file.to_string(),
                message,
            }
        }
    }

    /// A failed computation ([`Error::Numerical`], exit 1).
    pub fn numerical(message: impl Into<String>) -> Self {
        Error::Numerical(message.into())
    }

    /// Whether the error is bad input (exit 2) rather than a failed computation (exit 1).
    pub fn is_bad_input(&self) -> bool {
        self.exit_code() == 2
    }

    /// Convenience constructor for an I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_placed_in_their_file_with_their_exit_code() {
        let e = Error::Requirement("needs g = 0".into()).in_file("m.toml");
        assert_eq!(
            (e.to_string().as_str(), e.exit_code()),
            ("m.toml: needs g = 0", 2)
        );
        let e = Error::Ode {
            t: 0.0,
            reason: "step size underflow".into(),
        }
        .in_file("m.toml");
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().starts_with("m.toml: ODE integration failed"));
        let e = Error::Requirement("m.toml: x".into()).in_file("m.toml");
        assert_eq!(e.to_string(), "m.toml: x");
        // a failed computation keeps exit 1 when its file is named
        let e = Error::numerical("Jacobian has non-finite entries").in_file("m.toml");
        assert_eq!(
            (e.to_string().as_str(), e.exit_code(), e.is_bad_input()),
            ("m.toml: Jacobian has non-finite entries", 1, false)
        );
    }
}
