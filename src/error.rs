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

    /// A requirement of the data or the setting is not met (e.g. data not separable).
    #[error("{0}")]
    Requirement(String),

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

    /// Name the model file in a failed computation whose message does not already name it
    /// (ODE, Newton, divergence, ...): `file: message`, same exit code. Bad-input errors and
    /// errors that already start with the file are returned unchanged.
    pub fn in_file(self, file: &str) -> Self {
        if self.exit_code() == 2 || matches!(self, Error::Computation { .. }) {
            return self;
        }
        let message = self.to_string();
        if message.starts_with(file) {
            return self;
        }
        Error::Computation {
            file: file.to_string(),
            message,
        }
    }

    /// Convenience constructor for an I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
