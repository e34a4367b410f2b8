//! The 2x2 interference models of THEORY Part I: the linear static model ([`linear`], I.3),
//! the nonlinear latent learning flow ([`nonlinear`], I.2) and the random-connectivity kernels
//! ([`kernels`], I.4–I.5).
pub mod kernels;
pub mod linear;
pub mod nonlinear;
