//! Batched forward pass and hand-written backpropagation through time (THEORY I.1).
//!
//! States of all B trials form the columns of X_k (N x B), so each Euler step is one gemm
//! W phi(X_k) for the whole batch. The trajectory X_0..X_T and the rates phi(X_k) each live in
//! one preallocated buffer of N x (T+1) B; the adjoints Lambda_k = dL/dX_k need only a ring of
//! two N x B slots, because every parameter gradient is accumulated step by step during the
//! backward pass. W and W^T are packed once per pass ([`PackedMatrix`]) and reused at every
//! step; the time loops allocate nothing. For a full-W gradient, Lambda_k is copied while in
//! cache into a chunk of [`CHUNK_COLUMNS`] columns, and each full chunk adds
//! dt Lambda_chunk phi(X)_chunk^T to dL/dW with nalgebra's gemm (matrixmultiply; phi(X) is read
//! in place from the trajectory as a transposed view, no second pass over the N x T B
//! trajectories). The step products use the packed kernels, the chunk products the library:
//! each is the faster on the evidence of `cargo bench --bench products` (`bench/README.md`).
//! Backward:
//!
//!   Lambda_T = g_T,   Lambda_k = g_k + (1 - dt) Lambda_{k+1} + dt phi'(X_k) .* (W^T Lambda_{k+1}),
//!   dL/dW = dt sum_{k=1}^T Lambda_k phi(X_{k-1})^T     (chunk by chunk),
//!   dL/dM = U^T (dL/dW) U / N = dt (U^T Lambda)(U^T phi(X))^T / N,
//!   dL/dW_in = dt sum_{k=1}^T Lambda_k U_{k-1}^T,
//!
//! with g_k = dl/dX_k the readout cotangent of the loss at step k. [`Sharded`] splits a batch
//! into shards of trials run in parallel; `split` (on by default, `MODEFLOW_SPLIT_PASSES=off` to turn it off) runs
//! the time loops of a single batch-1 pass in lockstep on two threads (`lockstep`: one join
//! per pass, each step's products in two row halves), bit for bit the same.

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, Dyn, MatrixView};

use super::network::{Network, Phi, Readout, Recurrent, Trainable};
use super::task::Trials;
use crate::num::packed::PackedMatrix;
use crate::{Error, Result};

mod backward;
mod lockstep;
mod sharded;
mod split;
pub use sharded::*;
pub use split::{check_env as split_check_env, split_row, SPLIT_MIN_N};

/// Transposed view of a column-major `rows x cols` block stored in `s`: a `cols x rows` view.
///
/// Only ever used as the RIGHT operand of `gemm`: nalgebra 0.34.2's small-dimension fallback
/// (any dimension <= 5) runs `axcpy` over the *span* of a strided left operand's column and
/// writes past the end of the output (heap corruption). Left operands are therefore always
/// contiguous (transposed copies in the workspace).
fn tview(s: &[f64], rows: usize, cols: usize) -> MatrixView<'_, f64, Dyn, Dyn, Dyn, Dyn> {
    MatrixView::<f64, Dyn, Dyn, Dyn, Dyn>::from_slice_with_strides(s, cols, rows, rows, 1)
}

/// How the backward pass carries credit back in time (THEORY III.1). Each learning rule is a
/// change to the exact adjoint recursion
/// Lambda_k = g_k + J_k^T Lambda_{k+1}, J_k = (1 - dt) I + dt W diag(phi'(X_k)),
/// and every parameter gradient is then accumulated from Lambda_k exactly as in BPTT.
#[derive(Debug, Clone, Copy, Default)]
pub enum Credit<'a> {
    /// Exact BPTT.
    #[default]
    Exact,
    /// e-prop: J_k replaced by its diagonal, Lambda_k = g_k + d_k .* Lambda_{k+1} with
    /// d_k,j = (1 - dt) + dt W_jj phi'(x_j,k) (e-prop's eligibility trace times its learning
    /// signal, written backward). `feedback` (N x R) replaces w_out in the learning signal
    /// g_k = dl/dX_k (random e-prop / feedback alignment); `None` uses w_out.
    Eprop { feedback: Option<&'a DMatrix<f64>> },
    /// Truncated BPTT(h): the credit of each loss step is propagated exactly through h - 1
    /// Jacobians (it reaches the h transitions before the loss step), then dropped. h >= T is
    /// exact BPTT (and runs the exact path).
    Truncated { h: usize },
}

/// Preallocated buffers of the batched forward and backward passes.
#[derive(Debug, Clone)]
pub struct Workspace {
    n: usize,
    steps: usize,
    batch: usize,
    /// X_0..X_T, N x (T+1) B, when the backward pass needs them ([`Workspace::keeps_states`]);
    /// otherwise X_k lives in the two-slot ring [`slot`] at the start of the buffer (the
    /// states are then never written to memory beyond it).
    xs: Vec<f64>,
    /// Whether the last forward pass kept the whole trajectory X_0..X_T.
    keep_states: bool,
    /// phi(X_0)..phi(X_T).
    hs: Vec<f64>,
    /// Lambda_k and Lambda_{k+1} during the backward pass (a ring of two N x B slots, see
    /// [`slot`]).
    lam: Vec<f64>,
    /// N x B scratch.
    z: DMatrix<f64>,
    /// Readouts of X_1..X_T, R x T B (block k belongs to X_{k+1}).
    ys: DMatrix<f64>,
    /// Readout cotangents dL/dy, same layout as `ys`.
    ey: DMatrix<f64>,
    /// U^T Lambda and U^T phi(X) for the latent gradient, 2 x T B.
    p: DMatrix<f64>,
    q: DMatrix<f64>,
    /// W and W^T in the panel layout of [`PackedMatrix`], packed once per pass and reused at
    /// every Euler step (the per-step products are N x N times N x B with B small).
    wp: PackedMatrix,
    wtp: PackedMatrix,
    /// A chunk of Lambda_k (N x [`CHUNK_COLUMNS`], column-major) gathered during the backward
    /// pass for dL/dW += dt Lambda_chunk phi(X)_chunk^T (allocated on first use by a full-W
    /// gradient; small enough to stay in L2).
    lam_chunk: Vec<f64>,
    /// Contiguous transposes w_out^T (R x N), U^T (2 x N) (see [`tview`]).
    wout_t: DMatrix<f64>,
    u_t: DMatrix<f64>,
    /// diag(W) for e-prop (allocated on first use).
    wdiag: Vec<f64>,
    /// Truncated BPTT: one adjoint chain per live loss step, h x N x B (allocated on first use).
    chains: Vec<f64>,
    /// Scratch for Z on the second row half of a lockstep adjoint step (`split`; allocated on
    /// first use).
    z_half: Vec<f64>,
}

impl Workspace {
    /// Buffers for `net` and trials of `steps` steps and `batch` trials.
    pub fn new(net: &Network, steps: usize, batch: usize) -> Workspace {
        let n = net.n;
        let r = net.outputs();
        let len = n * (steps + 1) * batch;
        Workspace {
            n,
            steps,
            batch,
            xs: vec![0.0; len],
            keep_states: true,
            hs: vec![0.0; len],
            lam: vec![0.0; 2 * n * batch],
            z: DMatrix::zeros(n, batch),
            ys: DMatrix::zeros(r, steps * batch),
            ey: DMatrix::zeros(r, steps * batch),
            p: DMatrix::zeros(2, steps * batch),
            q: DMatrix::zeros(2, steps * batch),
            wp: PackedMatrix::new(),
            wtp: PackedMatrix::new(),
            lam_chunk: Vec::new(),
            wout_t: DMatrix::zeros(r, n),
            u_t: DMatrix::zeros(2, n),
            wdiag: Vec::new(),
            chains: Vec::new(),
            z_half: Vec::new(),
        }
    }

    /// Make sure the buffers fit `net` and `trials` (reallocates only if the shapes changed).
    pub fn fit(&mut self, net: &Network, trials: &Trials) {
        if self.n != net.n
            || self.steps != trials.steps
            || self.batch != trials.batch
            || self.ys.nrows() != net.outputs()
        {
            *self = Workspace::new(net, trials.steps, trials.batch);
        }
    }

    fn check(&self, net: &Network, trials: &Trials) -> Result<()> {
        let shape_ok = self.n == net.n
            && self.steps == trials.steps
            && self.batch == trials.batch
            && trials.inputs.nrows() == net.inputs()
            && trials.targets.nrows() == net.outputs()
            && trials.x0.shape() == (net.n, trials.batch);
        if shape_ok {
            Ok(())
        } else {
            Err(Error::Shape {
                context: "rnn::bptt".into(),
                message: format!(
                    "workspace N={} T={} B={}, trials T={} B={} K={} R={}, network N={} K={} R={}",
                    self.n,
                    self.steps,
                    self.batch,
                    trials.steps,
                    trials.batch,
                    trials.inputs.nrows(),
                    trials.targets.nrows(),
                    net.n,
                    net.inputs(),
                    net.outputs()
                ),
            })
        }
    }

    fn nb(&self) -> usize {
        self.n * self.batch
    }

    /// Whether a forward pass of `net` keeps the whole trajectory X_0..X_T: only when the
    /// backward pass reads it, i.e. phi'(x) needs x (erf) or the loss reads the states
    /// (state readout). For tanh and identity with rate readout only phi(X_k) is stored, and
    /// X_k lives in a two-slot ring that stays in cache.
    pub fn keeps_states(net: &Network) -> bool {
        net.phi == Phi::Erf || net.readout == Readout::State
    }

    /// Where X_k is stored (see the field `xs`).
    fn xr(&self, k: usize) -> std::ops::Range<usize> {
        state_rows(self.keep_states, k, self.nb())
    }

    /// End state X_T (N x B) of the last forward pass.
    pub fn end_state(&self) -> DMatrixView<'_, f64> {
        DMatrixView::from_slice(&self.xs[self.xr(self.steps)], self.n, self.batch)
    }

    /// Rates phi(X_k) of the last forward pass.
    pub fn rates(&self, k: usize) -> DMatrixView<'_, f64> {
        let nb = self.nb();
        DMatrixView::from_slice(&self.hs[k * nb..(k + 1) * nb], self.n, self.batch)
    }

    /// Number of Euler steps T.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Readouts (R x B) of X_{k+1} computed in the last forward pass (only loss steps).
    pub fn readouts(&self, k: usize) -> DMatrixView<'_, f64> {
        self.ys.columns(k * self.batch, self.batch)
    }

    /// Run the batched forward pass; readouts are computed at the steps carrying loss.
    pub fn forward(&mut self, net: &Network, trials: &Trials) -> Result<()> {
        self.check(net, trials)?;
        let (n, b, nb, dt) = (self.n, self.batch, self.nb(), net.dt);
        let phi = net.phi;
        let k_in = net.inputs();
        self.keep_states = Workspace::keeps_states(net);
        let r0 = self.xr(0);
        self.xs[r0].copy_from_slice(trials.x0.as_slice());
        self.wp.pack(&net.w);
        // H_0 = phi(X_0) and X_1 = (1 - dt) X_0
        self.phi_step(phi, dt, 0);
        // batch 1 on a worker with another one possibly idle: the time loop in lockstep, its
        // step products split by rows over two threads (same bits, `split`)
        if let (Some(s), 1) = (split_row(n), b) {
            self.forward_lockstep(net, trials, s);
        } else {
            for k in 0..self.steps {
                let uk = trials.inputs.columns(k * b, b);
                let input = k_in > 0 && uk.iter().any(|&v| v != 0.0);
                // X_{k+1} += dt W H_k (+ dt W_in U_k), then H_{k+1} and (1 - dt) X_{k+1}
                let rn = self.xr(k + 1);
                let (h, xn) = (&self.hs[k * nb..(k + 1) * nb], &mut self.xs[rn]);
                self.wp.gemm(dt, h, b, 1.0, xn);
                if input {
                    DMatrixViewMut::from_slice(xn, n, b).gemm(dt, &net.w_in, &uk, 1.0);
                }
                self.phi_step(phi, dt, k + 1);
            }
        }
        // readouts y = w_out^T v / N at the loss steps
        net.w_out.transpose_to(&mut self.wout_t);
        let inv_n = 1.0 / n as f64;
        for k in 0..self.steps {
            if !trials.active[k] {
                continue;
            }
            let src = match net.readout {
                Readout::Rate => &self.hs,
                Readout::State => &self.xs,
            };
            let v = DMatrixView::from_slice(&src[(k + 1) * nb..(k + 2) * nb], n, b);
            let mut y = self.ys.columns_mut(k * b, b);
            y.gemm(inv_n, &self.wout_t, &v, 0.0);
        }
        Ok(())
    }

    /// H_k = phi(X_k) and, for k < T, X_{k+1} = (1 - dt) X_k in one pass (the start of
    /// X_{k+1}; the product and the input term are added to it).
    fn phi_step(&mut self, phi: Phi, dt: f64, k: usize) {
        let nb = self.nb();
        let rk = self.xr(k);
        if k == self.steps {
            phi.apply(&self.xs[rk], &mut self.hs[k * nb..(k + 1) * nb]);
            return;
        }
        let rn = self.xr(k + 1);
        let h = &mut self.hs[k * nb..(k + 1) * nb];
        let (xk, xn) = two_blocks(&mut self.xs, rk, rn);
        phi.apply_and_scale(xk, h, xn, 1.0 - dt);
    }

    /// Loss of the last forward pass; fills the readout cotangents dL/dy.
    pub fn loss(&mut self, trials: &Trials) -> f64 {
        let mut l = 0.0;
        for (((e, &y), &t), &c) in self
            .ey
            .iter_mut()
            .zip(self.ys.iter())
            .zip(trials.targets.iter())
            .zip(trials.weights.iter())
        {
            if c == 0.0 {
                *e = 0.0;
            } else {
                let d = y - t;
                l += 0.5 * c * d * d;
                *e = c * d;
            }
        }
        l
    }

    /// Forward, loss and gradient in one call.
    pub fn loss_and_grad(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        grad: &mut [f64],
    ) -> Result<f64> {
        self.loss_and_grad_with(net, trials, t, Credit::Exact, grad)
    }

    /// Forward, loss and the update direction of a learning rule ([`Credit`]) in one call.
    pub fn loss_and_grad_with(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        credit: Credit<'_>,
        grad: &mut [f64],
    ) -> Result<f64> {
        self.fit(net, trials);
        self.forward(net, trials)?;
        let l = self.loss(trials);
        self.backward_with(net, trials, t, credit, grad)?;
        Ok(l)
    }

    /// Forward and loss only.
    pub fn loss_only(&mut self, net: &Network, trials: &Trials) -> Result<f64> {
        self.fit(net, trials);
        self.forward(net, trials)?;
        Ok(self.loss(trials))
    }
}

/// The dL/dW chunk of the backward pass: `steps` steps of Lambda per product, the lowest step
/// `lo` of the chunk being gathered.
struct Chunk {
    steps: usize,
    lo: usize,
    /// The row where the chunk products are split over two threads ([`split_row`]).
    split: Option<usize>,
}

/// The disjoint blocks `r` (read) and `w` (written) of `v`.
fn two_blocks(
    v: &mut [f64],
    r: std::ops::Range<usize>,
    w: std::ops::Range<usize>,
) -> (&[f64], &mut [f64]) {
    let (a, b) = two_blocks_mut(v, r, w);
    (a, b)
}

/// The disjoint blocks `r1` and `r2` of `v`, both writable.
///
/// # Panics
/// If they overlap (a programming error).
fn two_blocks_mut(
    v: &mut [f64],
    r1: std::ops::Range<usize>,
    r2: std::ops::Range<usize>,
) -> (&mut [f64], &mut [f64]) {
    assert!(
        r1.end <= r2.start || r2.end <= r1.start,
        "two_blocks: overlap"
    );
    if r1.start < r2.start {
        let (left, right) = v.split_at_mut(r2.start);
        (&mut left[r1], &mut right[..r2.end - r2.start])
    } else {
        let (left, right) = v.split_at_mut(r1.start);
        (&mut right[..r1.end - r1.start], &mut left[r2])
    }
}

/// Where X_k is stored in `Workspace::xs` (N B values): column block k of the trajectory when
/// the states are kept, else a slot of the two-slot ring.
fn state_rows(keep_states: bool, k: usize, nb: usize) -> std::ops::Range<usize> {
    if keep_states {
        k * nb..(k + 1) * nb
    } else {
        slot(k, nb)
    }
}

/// Where Lambda_k lives in the two-slot adjoint ring (only Lambda_k and Lambda_{k+1} are
/// ever needed: every parameter gradient is accumulated step by step).
fn slot(k: usize, nb: usize) -> std::ops::Range<usize> {
    (k % 2) * nb..(k % 2 + 1) * nb
}

/// Columns (steps x trials) of one dL/dW chunk: a Lambda chunk of N x 128 f64 stays in L2
/// between being gathered and being multiplied (the inner dimension of the chunk product).
pub const CHUNK_COLUMNS: usize = 128;

/// Lambda_k = decay Lambda_{k+1} + phi'(X_k) .* Z elementwise (Z = dt W^T Lambda_{k+1}), with
/// the choice of phi made once outside the loop so that the tanh and identity loops vectorise.
fn adjoint_update(
    phi: Phi,
    decay: f64,
    ln: &[f64],
    x: &[f64],
    h: &[f64],
    z: &[f64],
    lk: &mut [f64],
) {
    let n = lk.len();
    let (ln, x, h, z) = (&ln[..n], &x[..n], &h[..n], &z[..n]);
    match phi {
        Phi::Tanh => {
            for i in 0..n {
                lk[i] = decay * ln[i] + (1.0 - h[i] * h[i]) * z[i];
            }
        }
        Phi::Identity => {
            for i in 0..n {
                lk[i] = decay * ln[i] + z[i];
            }
        }
        Phi::Erf => {
            for i in 0..n {
                lk[i] = decay * ln[i] + phi.df(x[i], h[i]) * z[i];
            }
        }
    }
}

/// The exact update in place: c = decay c + phi'(X_k) .* Z (truncated BPTT's chains).
fn adjoint_update_in_place(phi: Phi, decay: f64, c: &mut [f64], x: &[f64], h: &[f64], z: &[f64]) {
    let n = c.len();
    let (x, h, z) = (&x[..n], &h[..n], &z[..n]);
    for i in 0..n {
        c[i] = decay * c[i] + phi.df(x[i], h[i]) * z[i];
    }
}

/// e-prop's adjoint step: Lambda_k = d_k .* Lambda_{k+1}, d_k,j = (1 - dt) + dt W_jj phi'(x_j,k)
/// (the diagonal of J_k), column by column of the N x B block.
fn eprop_update(
    phi: Phi,
    dt: f64,
    wdiag: &[f64],
    ln: &[f64],
    x: &[f64],
    h: &[f64],
    lk: &mut [f64],
) {
    let n = wdiag.len();
    for (j, lc) in lk.chunks_exact_mut(n).enumerate() {
        let o = j * n;
        let (lnc, xc, hc) = (&ln[o..o + n], &x[o..o + n], &h[o..o + n]);
        match phi {
            Phi::Tanh => {
                for i in 0..n {
                    let d = (1.0 - dt) + dt * wdiag[i] * (1.0 - hc[i] * hc[i]);
                    lc[i] = d * lnc[i];
                }
            }
            Phi::Identity => {
                for i in 0..n {
                    lc[i] = ((1.0 - dt) + dt * wdiag[i]) * lnc[i];
                }
            }
            Phi::Erf => {
                for i in 0..n {
                    lc[i] = ((1.0 - dt) + dt * wdiag[i] * phi.df(xc[i], hc[i])) * lnc[i];
                }
            }
        }
    }
}

/// FLOPs of one forward + backward pass counted from the gemms (2 N^2 B per step for
/// W phi(X), the same for W^T Lambda, and 2 N^2 T B for dL/dW when W is trained).
pub fn gemm_flops(n: usize, steps: usize, batch: usize, full: bool) -> f64 {
    let (n, t, b) = (n as f64, steps as f64, batch as f64);
    let per = 2.0 * n * n * b * t;
    per * 2.0 + if full { per } else { 0.0 }
}
