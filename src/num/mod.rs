//! Shared numerics: adaptive Dormand–Prince 5(4) and 8(5,3) integrators with dense output and
//! events ([`ode`], [`dop853`]) and the 5(4) pair's dynamic-size, step-by-step form over a
//! fallible right-hand side ([`rk`]), Runge–Kutta–Chebyshev (RKC2) for stiff flows with a real
//! spectrum such as the gradient flow ([`rkc`]), damped Newton ([`newton`]), one driver for
//! gradient iterations (GD, SGD, Adam: stopping, divergence, observers; [`iterate`]), Gaussian quadrature
//! ([`quad`]), closed-form 2x2
//! eigen-decomposition and fixed-point classification ([`eig2`]), the eigenvalues of an N x N
//! matrix ([`eigen`], faer's capped QR), planar flows and their fixed
//! points ([`planar`]), the argmin glue ([`optim`]), products with a pre-packed matrix
//! reused over many steps ([`packed`]), bootstrap intervals over seeds ([`stats`]); the kernel
//! policy `MODEFLOW_KERNELS` ([`simd`]).

pub mod continuation;
pub mod dop853;
pub mod eig2;
pub mod eigen;
pub mod iterate;
pub mod newton;
pub mod ode;
pub mod optim;
pub mod packed;
pub mod planar;
pub mod quad;
pub mod rk;
pub mod rkc;
pub mod simd;
pub mod stats;
