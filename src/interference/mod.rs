//! The 2x2 interference models of THEORY Part I: the linear static model ([`linear`], I.3),
//! the nonlinear latent learning flow ([`nonlinear`], I.2) and the random-connectivity kernels
//! ([`kernels`], I.4–I.5), and the model kind `latent` ([`latent_model`]: its spec and
//! `predict`, on top of the pure dynamics of [`crate::latent`]).
pub mod kernels;
pub mod latent_model;
pub mod linear;
pub mod nonlinear;
