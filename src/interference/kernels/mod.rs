//! Random connectivity and kernels (THEORY I.4–I.5, claims I-9 .. I-13).
//!
//! - [`dressing`] (I-9): beta = 1/(1 - g^2), the large-N overlaps of R0 = (I - W0)^{-1}, and
//!   the beta^2 speed-up of full-W gradient flow; measured on seeded random networks.
//! - [`linear_theory`] (I-10): the NeurIPS-2020 linear-theory formulas as predictions.
//! - [`bessel`], [`bulk`] (I-11): I0 with stated accuracy, the two-time bulk kernel
//!   e^{-(s1+s2)} I0(2 g sqrt(s1 s2)) and its finite-N counterpart.
//! - [`theta`] (I-12, I-13): Theta_new in closed form with a proven truncation bound,
//!   Theta_rot and the rotation share f_rot.
//! - [`random`]: seeded random networks W0 and orthogonal patterns a, b, ...
//!
//! The claims layer (`src/claims/kernels.rs`) registers one fast-tier check per claim.

pub mod bessel;
pub mod bulk;
pub mod dressing;
pub mod linear_theory;
pub mod random;
pub mod theta;

pub use bessel::{bessel_i0, bessel_i0_scaled};
pub use bulk::{bulk_kernel, finite_n_kernel, finite_n_theta_new};
pub use dressing::{beta, full_w_speedup, m_only_speedup};
pub use theta::{rotation_share, theta_new, theta_new_series, theta_rot, InputSchedule, ThetaNew};
