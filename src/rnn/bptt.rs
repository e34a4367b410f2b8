//! Batched forward pass and hand-written backpropagation through time (THEORY I.1).
//!
//! States of all B trials form the columns of X_k (N x B), so each Euler step is one gemm
//! W phi(X_k) for the whole batch. The trajectory X_0..X_T, the rates phi(X_k) and the adjoints
//! Lambda_k = dL/dX_k each live in one preallocated buffer of N x (T+1) B; W and W^T are packed once per
//! pass ([`PackedMatrix`]) and reused at every step; the time loops allocate nothing. For a
//! full-W gradient the rates phi(X_k) (forward) and the adjoints Lambda_k (backward) are also
//! packed block by block while still in cache, so dL/dW is one packed A B^T product with no
//! transpose and no second pass over the N x T B trajectories. Backward:
//!
//!   Lambda_T = g_T,   Lambda_k = g_k + (1 - dt) Lambda_{k+1} + dt phi'(X_k) .* (W^T Lambda_{k+1}),
//!   dL/dW = dt sum_{k=1}^T Lambda_k phi(X_{k-1})^T     (one gemm over the whole trajectory),
//!   dL/dM = U^T (dL/dW) U / N = dt (U^T Lambda)(U^T phi(X))^T / N,
//!
//! with g_k = dl/dX_k the readout cotangent of the loss at step k.

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, Dyn, MatrixView};

use super::network::{Network, Readout, Recurrent, Trainable};
use super::task::Trials;
use crate::num::packed::PackedMatrix;
use crate::{Error, Result};

/// Transposed view of a column-major `rows x cols` block stored in `s`: a `cols x rows` view.
///
/// Only ever used as the RIGHT operand of `gemm`: nalgebra 0.34.2's small-dimension fallback
/// (any dimension <= 5) runs `axcpy` over the *span* of a strided left operand's column and
/// writes past the end of the output (heap corruption). Left operands are therefore always
/// contiguous (transposed copies in the workspace).
fn tview(s: &[f64], rows: usize, cols: usize) -> MatrixView<'_, f64, Dyn, Dyn, Dyn, Dyn> {
    MatrixView::<f64, Dyn, Dyn, Dyn, Dyn>::from_slice_with_strides(s, cols, rows, rows, 1)
}

/// Preallocated buffers of the batched forward and backward passes.
#[derive(Debug, Clone)]
pub struct Workspace {
    n: usize,
    steps: usize,
    batch: usize,
    /// X_0..X_T, N x (T+1) B.
    xs: Vec<f64>,
    /// phi(X_0)..phi(X_T).
    hs: Vec<f64>,
    /// Lambda_0..Lambda_T (Lambda_0 unused).
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
    /// Lambda_1..Lambda_T and phi(X_0)..phi(X_{T-1}) packed (N x T B each), for the single
    /// product dL/dW = dt Lambda phi(X)^T (allocated on first use by a full-W gradient).
    lamp: PackedMatrix,
    hsp: PackedMatrix,
    /// Whether the last forward pass packed the rates into `hsp`.
    rates_packed: bool,
    /// Contiguous transposes w_out^T (R x N), U^T (2 x N) (see [`tview`]).
    wout_t: DMatrix<f64>,
    u_t: DMatrix<f64>,
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
            hs: vec![0.0; len],
            lam: vec![0.0; len],
            z: DMatrix::zeros(n, batch),
            ys: DMatrix::zeros(r, steps * batch),
            ey: DMatrix::zeros(r, steps * batch),
            p: DMatrix::zeros(2, steps * batch),
            q: DMatrix::zeros(2, steps * batch),
            wp: PackedMatrix::new(),
            wtp: PackedMatrix::new(),
            lamp: PackedMatrix::new(),
            hsp: PackedMatrix::new(),
            rates_packed: false,
            wout_t: DMatrix::zeros(r, n),
            u_t: DMatrix::zeros(2, n),
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

    /// State X_k (N x B), k = 0..=T, of the last forward pass.
    pub fn state(&self, k: usize) -> DMatrixView<'_, f64> {
        let nb = self.nb();
        DMatrixView::from_slice(&self.xs[k * nb..(k + 1) * nb], self.n, self.batch)
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
        self.forward_impl(net, trials, false)
    }

    /// The forward pass; with `pack_rates` it also packs phi(X_0)..phi(X_{T-1}) for dL/dW
    /// block by block while each is still in cache (see [`Workspace::backward`]).
    fn forward_impl(&mut self, net: &Network, trials: &Trials, pack_rates: bool) -> Result<()> {
        self.check(net, trials)?;
        let (n, b, nb, dt) = (self.n, self.batch, self.nb(), net.dt);
        let phi = net.phi;
        let k_in = net.inputs();
        self.xs[..nb].copy_from_slice(trials.x0.as_slice());
        self.wp.pack(&net.w);
        self.rates_packed = pack_rates;
        if pack_rates {
            self.hsp.reshape(n, self.steps * b);
        }
        for k in 0..self.steps {
            // H_k = phi(X_k)
            phi.apply(
                &self.xs[k * nb..(k + 1) * nb],
                &mut self.hs[k * nb..(k + 1) * nb],
            );
            let (left, right) = self.xs.split_at_mut((k + 1) * nb);
            let xk = &left[k * nb..];
            let xn = &mut right[..nb];
            for (a, &c) in xn.iter_mut().zip(xk) {
                *a = (1.0 - dt) * c;
            }
            if pack_rates {
                self.hsp.pack_columns(&self.hs[k * nb..(k + 1) * nb], k * b);
            }
            self.wp.gemm(dt, &self.hs[k * nb..(k + 1) * nb], b, 1.0, xn);
            let mut xn = DMatrixViewMut::from_slice(xn, n, b);
            let uk = trials.inputs.columns(k * b, b);
            if k_in > 0 && uk.iter().any(|&v| v != 0.0) {
                xn.gemm(dt, &net.w_in, &uk, 1.0);
            }
        }
        {
            let t = self.steps;
            phi.apply(
                &self.xs[t * nb..(t + 1) * nb],
                &mut self.hs[t * nb..(t + 1) * nb],
            );
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

    /// Set the readout cotangents directly (e.g. dz/dW of one readout): `ey` is R x T B in the
    /// layout of [`Trials::targets`]; `active` marks the steps where it is non-zero.
    pub fn set_cotangent(&mut self, ey: &DMatrix<f64>) {
        self.ey.copy_from(ey);
    }

    /// Backward pass for the cotangents in `ey` (from [`Workspace::loss`] or
    /// [`Workspace::set_cotangent`]); writes the gradient in the layout of
    /// [`Network::params`] into `grad`.
    pub fn backward(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        grad: &mut [f64],
    ) -> Result<()> {
        self.check(net, trials)?;
        if grad.len() != net.num_params(t) {
            return Err(Error::Shape {
                context: "rnn::bptt::backward".into(),
                message: format!("gradient buffer {} != {}", grad.len(), net.num_params(t)),
            });
        }
        let (n, b, nb, dt, steps) = (self.n, self.batch, self.nb(), net.dt, self.steps);
        let phi = net.phi;
        let r = net.outputs();
        let inv_n = 1.0 / n as f64;
        let active: Vec<bool> = (0..steps)
            .map(|k| trials.active[k] || self.ey.columns(k * b, b).iter().any(|&v| v != 0.0))
            .collect();
        // Lambda_T = g_T
        self.lam[steps * nb..].fill(0.0);
        self.add_readout_cotangent(net, steps, active[steps - 1]);
        let full = t.recurrent == Recurrent::Full;
        if full {
            // Lambda_1..Lambda_T packed block by block as they are computed (still in cache)
            self.lamp.reshape(n, steps * b);
            self.lamp
                .pack_columns(&self.lam[steps * nb..(steps + 1) * nb], (steps - 1) * b);
        }
        self.wtp.pack_transpose(&net.w);
        for k in (1..steps).rev() {
            self.wtp.gemm(
                dt,
                &self.lam[(k + 1) * nb..(k + 2) * nb],
                b,
                0.0,
                self.z.as_mut_slice(),
            );
            let (left, right) = self.lam.split_at_mut((k + 1) * nb);
            let lk = &mut left[k * nb..];
            let ln = &right[..nb];
            let x = &self.xs[k * nb..(k + 1) * nb];
            let h = &self.hs[k * nb..(k + 1) * nb];
            let z = self.z.as_slice();
            for i in 0..nb {
                lk[i] = (1.0 - dt) * ln[i] + phi.df(x[i], h[i]) * z[i];
            }
            self.add_readout_cotangent(net, k, active[k - 1]);
            if full {
                self.lamp
                    .pack_columns(&self.lam[k * nb..(k + 1) * nb], (k - 1) * b);
            }
        }
        // parameter gradients
        let lam_all = DMatrixView::from_slice(&self.lam[nb..(steps + 1) * nb], n, steps * b);
        let mut off = 0;
        match t.recurrent {
            Recurrent::Full => {
                // dL/dW = dt Lambda_all phi(X)_all^T with the packed kernel: Lambda_all
                // (N x T B) packed, phi(X)^T as contiguous columns
                if !self.rates_packed {
                    self.hsp.pack_slice(&self.hs[..steps * nb], n, steps * b);
                    self.rates_packed = true;
                }
                self.lamp.gemm_nt(dt, &self.hsp, 0.0, &mut grad[..n * n]);
                off += n * n;
            }
            Recurrent::Latent => {
                net.u.transpose_to(&mut self.u_t);
                let h_all = DMatrixView::from_slice(&self.hs[..steps * nb], n, steps * b);
                self.p.gemm(1.0, &self.u_t, &lam_all, 0.0);
                self.q.gemm(1.0, &self.u_t, &h_all, 0.0);
                // column-major M: [M00, M10, M01, M11]
                for j in 0..2 {
                    for i in 0..2 {
                        let s = self.p.row(i).dot(&self.q.row(j));
                        grad[off + 2 * j + i] = dt * inv_n * s;
                    }
                }
                off += 4;
            }
        }
        if t.input {
            let k_in = net.inputs();
            let ut = tview(trials.inputs.as_slice(), k_in, steps * b);
            let mut gi = DMatrixViewMut::from_slice(&mut grad[off..off + n * k_in], n, k_in);
            gi.gemm(dt, &lam_all, &ut, 0.0);
            off += n * k_in;
        }
        if t.readout {
            let mut go = DMatrixViewMut::from_slice(&mut grad[off..off + n * r], n, r);
            go.fill(0.0);
            for k in 0..steps {
                if !active[k] {
                    continue;
                }
                let src = match net.readout {
                    Readout::Rate => &self.hs,
                    Readout::State => &self.xs,
                };
                let v = DMatrixView::from_slice(&src[(k + 1) * nb..(k + 2) * nb], n, b);
                for rr in 0..r {
                    for j in 0..b {
                        let c = inv_n * self.ey[(rr, k * b + j)];
                        if c != 0.0 {
                            go.column_mut(rr).axpy(c, &v.column(j), 1.0);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Lambda_k += dl/dX_k from the readout cotangent of state X_k (k >= 1).
    fn add_readout_cotangent(&mut self, net: &Network, k: usize, active: bool) {
        if !active {
            return;
        }
        let (n, b, nb) = (self.n, self.batch, self.nb());
        let e = self.ey.columns((k - 1) * b, b);
        self.z.gemm(1.0 / n as f64, &net.w_out, &e, 0.0);
        let lk = &mut self.lam[k * nb..(k + 1) * nb];
        let z = self.z.as_slice();
        match net.readout {
            Readout::Rate => {
                let x = &self.xs[k * nb..(k + 1) * nb];
                let h = &self.hs[k * nb..(k + 1) * nb];
                for i in 0..nb {
                    lk[i] += net.phi.df(x[i], h[i]) * z[i];
                }
            }
            Readout::State => {
                for i in 0..nb {
                    lk[i] += z[i];
                }
            }
        }
    }

    /// Forward, loss and gradient in one call.
    pub fn loss_and_grad(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        grad: &mut [f64],
    ) -> Result<f64> {
        self.fit(net, trials);
        self.forward_impl(net, trials, t.recurrent == Recurrent::Full)?;
        let l = self.loss(trials);
        self.backward(net, trials, t, grad)?;
        Ok(l)
    }

    /// Forward and loss only.
    pub fn loss_only(&mut self, net: &Network, trials: &Trials) -> Result<f64> {
        self.fit(net, trials);
        self.forward(net, trials)?;
        Ok(self.loss(trials))
    }
}

/// Trials per shard below which [`Sharded`] does not split the batch further: the per-step
/// products N x N x B_s keep whole register tiles (8 columns) and W is streamed once per step
/// for at least this many trials.
pub const SHARD_TRIALS: usize = 16;

/// Upper bound on the number of shards (the partial gradients are summed, N^2 each).
pub const MAX_SHARDS: usize = 16;

/// Number of shards [`Sharded`] splits a batch of `batch` trials into: `batch / 16`, at least 1
/// and at most 16. A function of the batch alone, never of the thread count, so that results
/// are bit-for-bit the same on any number of cores.
pub fn shard_count(batch: usize) -> usize {
    (batch / SHARD_TRIALS).clamp(1, MAX_SHARDS)
}

/// One shard of [`Sharded`]: its trials (a contiguous range of the batch), workspace,
/// partial gradient and partial loss.
#[derive(Debug, Clone)]
struct Shard {
    j0: usize,
    j1: usize,
    trials: Trials,
    ws: Workspace,
    grad: Vec<f64>,
    loss: f64,
}

/// The training step split over the trials of the batch: [`shard_count`] independent
/// forward + BPTT passes on contiguous ranges of trials, run in parallel (rayon), whose losses
/// and gradients are summed in shard order. The loss and the gradient are sums over trials, so
/// this is the same step up to the order of the floating-point sums; the shards depend only on
/// the batch size, so the result is deterministic and independent of the number of threads.
/// With one shard (batch < 32) the batch runs unsplit on one [`Workspace`].
#[derive(Debug, Clone)]
pub struct Sharded {
    n: usize,
    steps: usize,
    batch: usize,
    shards: Vec<Shard>,
}

impl Sharded {
    /// Shards for `net` and trials of `steps` steps and `batch` trials.
    pub fn new(net: &Network, steps: usize, batch: usize) -> Sharded {
        let s = shard_count(batch);
        let shards = (0..s)
            .map(|i| {
                let (j0, j1) = (i * batch / s, (i + 1) * batch / s);
                Shard {
                    j0,
                    j1,
                    trials: Trials::zeros(net.n, net.inputs(), net.outputs(), steps, j1 - j0),
                    ws: Workspace::new(net, steps, j1 - j0),
                    grad: Vec::new(),
                    loss: 0.0,
                }
            })
            .collect();
        Sharded {
            n: net.n,
            steps,
            batch,
            shards,
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    fn fit(&mut self, net: &Network, trials: &Trials) {
        if self.n != net.n || self.steps != trials.steps || self.batch != trials.batch {
            *self = Sharded::new(net, trials.steps, trials.batch);
        }
    }

    /// Run `f` on every shard (in parallel when there are several), each on its own copy of
    /// its trials; the first error in shard order is returned.
    fn run(
        &mut self,
        trials: &Trials,
        f: impl Fn(&mut Workspace, &Trials, &mut Vec<f64>) -> Result<f64> + Sync,
    ) -> Result<()> {
        use rayon::prelude::*;
        if let [one] = self.shards.as_mut_slice() {
            one.loss = f(&mut one.ws, trials, &mut one.grad)?;
            return Ok(());
        }
        self.shards
            .par_iter_mut()
            .map(|sh| {
                trials.copy_subset_into(sh.j0, sh.j1, &mut sh.trials);
                sh.loss = f(&mut sh.ws, &sh.trials, &mut sh.grad)?;
                Ok(())
            })
            .collect::<Vec<Result<()>>>()
            .into_iter()
            .collect()
    }

    /// Forward, loss and gradient (layout of [`Network::params`]) summed over the shards.
    pub fn loss_and_grad(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        grad: &mut [f64],
    ) -> Result<f64> {
        self.fit(net, trials);
        let len = grad.len();
        self.run(trials, |ws, tr, g| {
            g.resize(len, 0.0);
            ws.loss_and_grad(net, tr, t, g)
        })?;
        let mut loss = 0.0;
        for (i, sh) in self.shards.iter().enumerate() {
            loss += sh.loss;
            if i == 0 {
                grad.copy_from_slice(&sh.grad);
            } else {
                for (a, &b) in grad.iter_mut().zip(&sh.grad) {
                    *a += b;
                }
            }
        }
        Ok(loss)
    }

    /// State X_k (N x B, all trials in batch order) of the last forward pass.
    pub fn state(&self, k: usize) -> DMatrix<f64> {
        let mut x = DMatrix::zeros(self.n, self.batch);
        for sh in &self.shards {
            x.columns_mut(sh.j0, sh.j1 - sh.j0)
                .copy_from(&sh.ws.state(k));
        }
        x
    }

    /// Forward and loss only, summed over the shards.
    pub fn loss_only(&mut self, net: &Network, trials: &Trials) -> Result<f64> {
        self.fit(net, trials);
        self.run(trials, |ws, tr, _| ws.loss_only(net, tr))?;
        Ok(self.shards.iter().map(|sh| sh.loss).sum())
    }
}

/// FLOPs of one forward + backward pass counted from the gemms (2 N^2 B per step for
/// W phi(X), the same for W^T Lambda, and 2 N^2 T B for dL/dW when W is trained).
pub fn gemm_flops(n: usize, steps: usize, batch: usize, full: bool) -> f64 {
    let (n, t, b) = (n as f64, steps as f64, batch as f64);
    let per = 2.0 * n * n * b * t;
    per * 2.0 + if full { per } else { 0.0 }
}
