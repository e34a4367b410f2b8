//! The N-neuron rate network of THEORY I.1, trained by modeflow itself.
//!
//! - [`network`]: the network x' = -x + W phi(x) + u w_in, W = W0 + U M U^T / N.
//! - [`task`]: trial generators (working memory, NeurIPS static task, flip-flop).
//! - [`bptt`]: batched forward pass and hand-written BPTT (one gemm per step for the batch).

pub mod bptt;
pub mod network;
pub mod task;

pub use bptt::Workspace;
pub use network::{Network, NetworkSpec, Phi, Readout, Recurrent, Trainable};
pub use task::{LossKind, Task, Trials};
pub mod checks;
pub mod fixed_points;
pub mod hqr;
pub mod measure;
pub mod sequential;
pub mod train;
