//! Shared numerics: an adaptive Dormand–Prince 5(4) integrator with dense output and events
//! ([`ode`]), damped Newton ([`newton`]), Gaussian quadrature ([`quad`]), closed-form 2x2
//! eigen-decomposition and fixed-point classification ([`eig2`]), planar flows and their fixed
//! points ([`planar`]), the argmin glue ([`optim`]), and products with a pre-packed matrix
//! reused over many steps ([`packed`]).

pub mod continuation;
pub mod eig2;
pub mod newton;
pub mod ode;
pub mod optim;
pub mod packed;
pub mod planar;
pub mod quad;
