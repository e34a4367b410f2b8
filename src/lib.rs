//! # modeflow — a workbench for the theory of learning dynamics
//!
//! Data flows one way: model file (TOML) -> validated spec -> solver (closed form | ODE |
//! training) -> result (serde) -> report (text | JSON) / figure.
//!
//! - [`model`]: model files, validation with errors naming the field and range.
//! - [`num`]: shared numerics (Dormand–Prince 5(4) and 8(5,3), damped Newton, quadrature, 2x2
//!   eigen, the argmin glue).
//! - [`plot`]: phase portraits, learning portraits, heat maps and line figures (SVG + PNG + data).
//! - [`claims`]: the registry running `proofs-checks/` and reporting verdicts.
//! - [`report`], [`io`]: text/JSON reports, bounded input reads and atomic output files.
//! - [`progress`]: progress bars (terminal only) and `--quiet`.
//! - [`budget`]: memory and step budgets every kind checks before allocating.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod bias;
pub mod budget;
pub mod claims;
pub mod error;
pub mod figures;
pub mod figures_bias;
pub mod interference;
pub mod io;
pub mod latent;
pub mod model;
pub mod num;
pub mod plot;
pub mod progress;
pub mod report;
pub mod rnn;
pub mod run;
pub mod sweep;

pub use error::{Error, Result};
