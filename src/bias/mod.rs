//! Implicit bias of (S)GD (docs/theory.md Part II, claims B-1..B-15): model families with
//! hand-written gradients, trainers, the exact balance laws, margins and max-margin limits,
//! diagonal linear nets and their mirror potential, modified flows, Saxe mode curves and the
//! bias/variance formula for approximate gradients.
//!
//! - [`nets`]: activations and losses; two-layer nets, deep linear nets, the ReLU RNN (losses,
//!   gradients), each in its own submodule.
//! - [`balance`]: B-1, B-2 per-step identities and drift exponents.
//! - [`agreement`]: B-3, B-4, B-5 linear teacher, +-1 student, agreement regime, lifted problem
//!   (the THEORY II.2 reference runs in its `reference` submodule).
//! - [`margin`]: B-6 separable logistic regression, rho(t), slope of |w| vs ln t.
//! - [`smoothed_margin`]: B-7; [`cluster`]: cosine cluster count and B-8; [`width`]: B-9.
//! - [`diagonal`]: B-10, B-11 diagonal linear nets, alpha_inf, the mirror potential.
//! - [`modified_flow`]: B-12 backward-error analysis order test.
//! - [`saxe`]: B-13 mode curves; [`approx_grad`]: B-14 bias/variance of one step.
//! - [`solvers`]: hard-margin SVM, mirror-potential argmin (dual Newton, log domain).
//! - [`spec`]: the model kinds `bias_*`: per kind a raw struct -> `check()` -> validated spec ->
//!   run (`modeflow train`, the gallery figures and `run::validate` go through it).
//! - [`conv`], [`pattern_data`]: B-15 max-pooling conv detector, XOR-type and
//!   orthogonal-pattern detection data, width trends.
//! - [`stats`]: fitting helpers.
//!
//! Every training loop runs on the iteration driver [`crate::num::iterate`] (problem, stepper,
//! stopping rules, divergence, observers). The checks are registered in `src/claims/bias/`.

pub mod agreement;
pub mod approx_grad;
pub mod balance;
pub mod cluster;
pub mod conv;
pub mod diagonal;
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

pub use spec::{train, BiasReport};
