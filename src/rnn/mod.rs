//! The N-neuron rate network of THEORY I.1, trained by modeflow itself.
//!
//! - [`network`]: x' = -x + W phi(x) + u w_in, W = W0 + U M U^T / N, trainable sets.
//! - [`task`]: trial generators (working memory, NeurIPS static task, flip-flop).
//! - [`bptt`]: batched forward pass and hand-written BPTT (one gemm per step for the batch);
//!   `Sharded` runs shards of the batch on all cores (results independent of the thread count).
//! - [`mod@train`]: GD / SGD / Adam / gradient-flow driver with stopping rules and divergence
//!   detection; the flow is adaptive Dormand–Prince 5(4) on the parameters (`crate::num::rk`).
//! - [`hvp`]: the exact Hessian-vector product of the loss (forward-over-reverse: tangents of
//!   the forward pass and of the BPTT adjoint) (B-12, I-18).
//! - [`modified_flow`]: the modified flow of GD at step eta, L + (eta/4)|grad L|^2, for the
//!   flow driver (Hessian-gradient product exact by [`hvp`]; a central difference of BPTT
//!   gradients as the cross-check) (B-12, I-18).
//! - [`step_size`]: I-18 on networks: flow, GD and modified flow over a ladder of eta, modes.
//! - [`flow_limit`]: GD at lr, lr/2, ... against the flow, seed by seed, and their cost.
//! - [`rules`]: learning rules beyond the exact gradient (e-prop, random e-prop, truncated
//!   BPTT as changes to the BPTT adjoint; node perturbation) (THEORY III).
//! - [`sequential`]: the protocol A -> B (tasks of any families, bound to patterns a and b)
//!   with its per-step record, I and eps.
//! - [`rotation_interference`]: I against 2 (1 - cos theta) on the I.6 protocol.
//! - [`fixed_points`]: Newton, slow points (L-BFGS on q), spectra, tracking A through B.
//! - [`measure`]: Theta_new = |dz/dW|^2 at initialisation.
//! - [`spec`], [`report`]: model kind `rnn` and `modeflow train`.
//! - The checks of the cross-validation claims X-1..X-4 and E-1 live in `src/claims/rnn.rs`
//!   and `src/claims/rules.rs`.
//! - [`latent_xval`]: M-only g = 0 network vs the latent 2x2 learning flow given eps.
//! - [`finite_n`]: the network vs its finite-N latent models (exact h_N, moment-matched) (I-14).
//! - [`static_curves`]: full-W training on the static task against the I-10 curves.
//! - [`tmaps`]: the talk's claims T1-T5 as maps over (u_s, T_d, g) in the gradient-flow
//!   limit, seeds as samples (their checks T-1..T-5: `src/claims/tmaps.rs`).
//! - [`rule_stats`]: bias and covariance of a rule's update, B-14's one-step formula (E-4, E-5).
//! - [`rules_map`]: the map rule x regime of E-3 (its check: `src/claims/rules_map.rs`).
//! - [`divergence`]: divergence at large targets and g, the outlier of trained W.
//! - [`rotation_kernel`]: Theta_rot and the rotation share f_rot measured after task A (I-15).
//! - [`series`]: the I-10 short-time series coefficients measured early in training (I-17).
//! - [`seeds`]: the seed eps at g > 0 against its per-seed predictors: pattern leak, first
//!   order in W0, bulk propagation, task A's M (I-19).

pub mod bptt;
pub mod divergence;
pub mod finite_n;
pub mod fixed_points;
pub mod flow_limit;
pub mod hvp;
pub mod latent_xval;
pub mod measure;
pub mod modified_flow;
pub mod network;
pub mod report;
pub mod rotation_interference;
pub mod rotation_kernel;
pub mod rule_stats;
pub mod rules;
pub mod rules_map;
pub mod seeds;
pub mod sequential;
pub mod series;
pub mod spec;
pub mod static_curves;
pub mod step_size;
pub mod task;
pub mod tmaps;
pub mod train;

pub use bptt::Workspace;
pub use network::{Network, NetworkSpec, Phi, Readout, Recurrent, Trainable};
pub use report::{train, RnnReport};
pub use task::{LossKind, Task, Trials};

/// Model kinds handled by this module.
pub const KINDS: &[&str] = &["rnn"];
