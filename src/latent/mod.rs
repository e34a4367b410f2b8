//! The exact latent reduction of docs/theory.md I.2 (g = 0, only M trained, erf or tanh,
//! N -> infinity): kappa = U^T x / N follows
//! kappa' = -kappa + G(|kappa|^2) M kappa + u(t) e_mu.
//!
//! - [`gain`]: G(D) and G'(D) (erf closed form, tanh quadrature).
//! - [`flow`]: the flow, its Jacobian (I-2), fixed points in closed form (I-1) and by Newton,
//!   seeding time (I-3).
//! - [`finite_n`]: the finite-N gain h_N of one pattern draw and its moment-matched
//!   expansion (claim I-14).
//!
//! Pure dynamics: the model kind `latent` (its spec and `predict`) is
//! [`crate::interference::latent_model`]; trials, the adjoint gradient (I-4) and the learning
//! flow live in [`crate::interference::nonlinear`]. The numerical checks of claims I-1..I-4
//! live in the claims layer (`src/claims/latent.rs`).

pub mod finite_n;
pub mod flow;
pub mod gain;

pub use flow::{eigen_fixed_points, jacobian, numerical_fixed_points, rhs, LatentFlow};
pub use gain::{Gain, GainKind};
