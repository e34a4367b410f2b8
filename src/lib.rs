//! # modeflow — a workbench for the theory of learning dynamics
//!
//! Data flows one way: model file (TOML) -> validated spec -> solver (closed form | ODE |
//! training) -> result (serde) -> report (text | JSON) / figure. The modules are listed in
//! layer order: each uses only those above it (`tests/layering.rs` enforces it).
//!
//! Leaves:
//! - [`error`]: typed errors (bad input exits 2, a failed computation or check exits 1).
//! - [`io`]: bounded input reads, output paths under `--out`, atomic writes, CSV text.
//! - [`budget`]: memory and step budgets every kind checks before allocating.
//! - [`num`]: shared numerics (Dormand–Prince 5(4) and 8(5,3), damped Newton, quadrature, 2x2
//!   eigen, planar phase-plane analysis and continuation, statistics, the argmin glue).
//! - [`compare`]: prediction beside measurement ([`compare::Row`], [`compare::Verdict`]).
//!
//! Model files and reports: [`model`] (TOML, validation with errors naming the field and range,
//! kind-agnostic), [`report`] (the text form of results, the JSON envelope).
//!
//! Domains (spec -> run -> outcome; no claims, no files, no progress bars):
//! - [`latent`]: the 2-D latent dynamics (flow, Jacobian, fixed points, seeding time).
//! - [`interference`]: the 2x2 models, their learning flows, kernels and the `latent` kind.
//! - [`rnn`]: the N-neuron network, its training and measurements.
//! - [`bias`]: implicit bias of (S)GD (Part II).
//!
//! Checks and drawing: [`claims`] (every check of `proofs-checks/` and the runner), [`plot`]
//! (phase portraits, learning portraits, heat maps and line figures: drawing only).
//!
//! Application: [`progress`] (terminal bars, `--quiet`), [`figures`] (the figures of a model,
//! a bias family, the learning rules and the T-maps of a sweep), [`run`] (the family table: kind -> check / predict / train /
//! phase), [`sweep`] (parameter sweeps), [`gallery`] (`modeflow figures`).

#![deny(unsafe_op_in_unsafe_fn)]

// --- leaves ---
// typed errors
pub mod error;
// reads, output paths, atomic writes
pub mod io;
// memory and step budgets
pub mod budget;
// shared numerics
pub mod num;
// prediction beside measurement
pub mod compare;

// --- model files and reports ---
// model files (kind-agnostic)
pub mod model;
// text form and JSON envelope
pub mod report;

// --- domains ---
// 2-D latent dynamics
pub mod latent;
// 2x2 models and learning flows
pub mod interference;
// the N-neuron network
pub mod rnn;
// implicit bias
pub mod bias;

// --- checks and drawing ---
// every check
pub mod claims;
// drawing only
pub mod plot;

// --- application ---
// terminal bars
pub mod progress;
// figures: the 2x2 models, the bias families, the learning rules, the T-maps of a sweep
pub mod figures;
// the family table
pub mod run;
// parameter sweeps
pub mod sweep;
// `modeflow figures`
pub mod gallery;

pub use error::{Error, Result};
