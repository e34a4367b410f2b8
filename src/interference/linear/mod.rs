//! The linear static 2x2 interference model (THEORY I.3, claims I-5 .. I-8).
//!
//! The network kappa' = -kappa + M kappa + u e_mu is held at its input-driven fixed point
//! kappa_mu = u (I - M)^-1 e_mu; task mu is learned by gradient flow on
//! M = [[lambda, p], [q, s]] (basis (a, b)). Learning B after A moves
//! s_eff = s + p q / (1 - lambda) either by **new formation** (s, one factor) or by **rotation**
//! (p q / (1 - lambda), two factors, amplified by G_A and seeded by eps); the race between the
//! two decides how much of A is forgotten.
//!
//! - [`closed`]: D, R, fixed points, readouts, t_new, t_rot, the race criterion and r*(eps);
//! - [`flow`]: the gradient M' = eta R^T E kappa^T, the explicit I-6 equations, event-stopped
//!   integration, task B and interference;
//! - [`exact_path`]: the task-B path in closed form and the exact race criterion (I-16);
//! - [`modified`]: GD at step h vs the modified flow of L + (h/4)|grad L|^2 on task B (I-18);
//! - [`modified_map`]: the map of the critical steps (modified flow, GD, stability edge)
//!   over (r, eps) below the crossover (I-18-map);
//! - [`race`]: rotation share, the full-ODE crossover, the (r, eps) interference grid;
//! - [`spec`], [`report`]: the `linear2x2` model file and its learning-mode report;
//!
//! The checks of claims I-5 .. I-8 live in the claims layer (`src/claims/linear.rs`).

pub mod closed;
pub mod exact_path;
pub mod flow;
pub mod modified;
pub mod modified_map;
pub mod race;
pub mod report;
pub mod spec;

pub use closed::{Params, Readouts, Task};
pub use flow::{Loss, Pathway, Rule, TaskB};
pub use race::{interference_grid, InterferenceGrid, Mode};
pub use report::{
    predict, predict_fields, predict_spec, predict_spec_with, LinearReport, Predictor,
};
pub use spec::{check, LinearSpec};
