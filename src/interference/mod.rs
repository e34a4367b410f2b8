//! Interference in sequential learning (THEORY.md Part I): 2x2 models and kernels.

pub mod kernels;
