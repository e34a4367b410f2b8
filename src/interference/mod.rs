//! The 2x2 interference models of THEORY Part I: the linear static model ([`linear`], I.3).
pub mod linear;
