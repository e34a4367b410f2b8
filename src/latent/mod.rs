//! The exact latent reduction of THEORY.md I.2 (g = 0, only M trained, N -> infinity):
//! kappa = U^T x / N follows kappa' = -kappa + G(|kappa|^2) M kappa + u(t) e_mu.

pub mod flow;
pub mod gain;
pub(crate) mod num_shim;

pub use flow::{eigen_fixed_points, jacobian, numerical_fixed_points, rhs, LatentFlow};
pub use gain::{Gain, GainKind};
