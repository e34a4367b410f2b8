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
//! into shards of trials run in parallel.

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, Dyn, MatrixView};

use super::network::{Network, Phi, Readout, Recurrent, Trainable};
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
        let nb = self.nb();
        if self.keep_states {
            k * nb..(k + 1) * nb
        } else {
            slot(k, nb)
        }
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
        for k in 0..self.steps {
            let (rk, rn) = (self.xr(k), self.xr(k + 1));
            // X_k and X_{k+1} never overlap (consecutive blocks, or the two ring slots)
            let (xk, xn): (&[f64], &mut [f64]) = if rk.start < rn.start {
                let (left, right) = self.xs.split_at_mut(rn.start);
                (&left[rk], &mut right[..nb])
            } else {
                let (left, right) = self.xs.split_at_mut(rk.start);
                (&right[..nb], &mut left[rn])
            };
            // H_k = phi(X_k) and X_{k+1} = (1 - dt) X_k in one pass
            phi.apply_and_scale(xk, &mut self.hs[k * nb..(k + 1) * nb], xn, 1.0 - dt);
            self.wp.gemm(dt, &self.hs[k * nb..(k + 1) * nb], b, 1.0, xn);
            let mut xn = DMatrixViewMut::from_slice(xn, n, b);
            let uk = trials.inputs.columns(k * b, b);
            if k_in > 0 && uk.iter().any(|&v| v != 0.0) {
                xn.gemm(dt, &net.w_in, &uk, 1.0);
            }
        }
        {
            let t = self.steps;
            let rt = self.xr(t);
            phi.apply(&self.xs[rt], &mut self.hs[t * nb..(t + 1) * nb]);
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
        self.backward_with(net, trials, t, Credit::Exact, grad)
    }

    /// [`Workspace::backward`] with the adjoint recursion of a learning rule ([`Credit`]).
    /// The rule is chosen once per pass; the exact path is the tuned BPTT kernel unchanged.
    ///
    /// The pass runs k = T .. 1: Lambda_k from Lambda_{k+1} by the rule's adjoint step plus the
    /// readout cotangent g_k, then Lambda_k's contributions to the gradient blocks (recurrent:
    /// chunked dL/dW products or the U^T Lambda_k blocks of dL/dM; input); the latent block and
    /// the readout block are formed after the loop.
    pub fn backward_with(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        credit: Credit<'_>,
        grad: &mut [f64],
    ) -> Result<()> {
        self.check(net, trials)?;
        if grad.len() != net.num_params(t) {
            return Err(Error::Shape {
                context: "rnn::bptt::backward".into(),
                message: format!("gradient buffer {} != {}", grad.len(), net.num_params(t)),
            });
        }
        let (b, nb, steps) = (self.batch, self.nb(), self.steps);
        let active: Vec<bool> = (0..steps)
            .map(|k| trials.active[k] || self.ey.columns(k * b, b).iter().any(|&v| v != 0.0))
            .collect();
        // gradient blocks in the layout of Network::params: recurrent, input, readout
        let full = t.recurrent == Recurrent::Full;
        let n_rec = if full { self.n * self.n } else { 4 };
        let n_in = if t.input { self.n * net.inputs() } else { 0 };
        let (g_rec, rest) = grad.split_at_mut(n_rec);
        let (g_in, g_out) = rest.split_at_mut(n_in);
        g_rec.fill(0.0);
        g_in.fill(0.0);
        if !full {
            net.u.transpose_to(&mut self.u_t);
        }
        let (credit, feedback) = self.prepare_credit(net, credit);
        let fb = feedback.unwrap_or(&net.w_out);
        // Lambda_T = g_T, and truncated BPTT's chain of loss step T starts from it
        self.lam[slot(steps, nb)].fill(0.0);
        self.add_readout_cotangent(net, fb, steps, active[steps - 1]);
        if let (Credit::Truncated { h }, true) = (credit, active[steps - 1]) {
            let src = steps % h;
            self.chains[src * nb..(src + 1) * nb].copy_from_slice(&self.lam[slot(steps, nb)]);
        }
        let mut chunk = Chunk {
            steps: (CHUNK_COLUMNS / b).max(1),
            lo: 0,
        };
        for k in (1..=steps).rev() {
            if k < steps {
                self.adjoint_step(net, credit, k, &active);
                self.add_readout_cotangent(net, fb, k, active[k - 1]);
                if let Credit::Truncated { h } = credit {
                    self.truncated_collect(h, k, &active);
                }
            }
            if full {
                self.add_recurrent_chunk(net.dt, k, &mut chunk, g_rec);
            } else {
                // U^T Lambda_k, block k - 1 of P (dL/dM = dt P Q^T / N after the loop)
                let lv = DMatrixView::from_slice(&self.lam[slot(k, nb)], self.n, b);
                self.p
                    .columns_mut((k - 1) * b, b)
                    .gemm(1.0, &self.u_t, &lv, 0.0);
            }
            if t.input {
                self.add_input_gradient(net, trials, k, g_in);
            }
        }
        if !full {
            self.latent_gradient(net.dt, g_rec);
        }
        if t.readout {
            self.readout_gradient(net, &active, &mut g_out[..self.n * net.outputs()]);
        }
        Ok(())
    }

    /// The rule of a pass, decided once (h >= T truncates nothing and is exact BPTT), with
    /// random e-prop's feedback matrix; packs what its adjoint steps read (W^T for exact and
    /// truncated BPTT, diag W for e-prop) and sizes truncated BPTT's chains.
    fn prepare_credit<'c>(
        &mut self,
        net: &Network,
        credit: Credit<'c>,
    ) -> (Credit<'c>, Option<&'c DMatrix<f64>>) {
        let (nb, steps) = (self.nb(), self.steps);
        let (credit, feedback) = match credit {
            Credit::Truncated { h } if h >= steps => (Credit::Exact, None),
            Credit::Eprop { feedback } => (credit, feedback),
            c => (c, None),
        };
        match credit {
            Credit::Exact => self.wtp.pack_transpose(&net.w),
            Credit::Eprop { .. } => {
                self.wdiag.clear();
                self.wdiag.extend((0..self.n).map(|i| net.w[(i, i)]));
            }
            Credit::Truncated { h } => {
                self.wtp.pack_transpose(&net.w);
                self.chains.resize(h * nb, 0.0);
            }
        }
        (credit, feedback)
    }

    /// Lambda_k from Lambda_{k+1} (k < T) by the rule's adjoint step, before g_k is added:
    /// exact BPTT (1 - dt) Lambda + dt phi' * (W^T Lambda), e-prop with W^T replaced by its
    /// diagonal, truncated BPTT chain by chain.
    #[inline]
    fn adjoint_step(&mut self, net: &Network, credit: Credit<'_>, k: usize, active: &[bool]) {
        let (nb, b, dt, phi) = (self.nb(), self.batch, net.dt, net.phi);
        match credit {
            Credit::Exact => {
                // the two slots of the ring
                let rx = self.xr(k);
                let (s0, s1) = self.lam.split_at_mut(nb);
                let (lk, ln) = if k.is_multiple_of(2) {
                    (s0, s1)
                } else {
                    (s1, s0)
                };
                self.wtp.gemm(dt, ln, b, 0.0, self.z.as_mut_slice());
                adjoint_update(
                    phi,
                    1.0 - dt,
                    ln,
                    &self.xs[rx],
                    &self.hs[k * nb..(k + 1) * nb],
                    self.z.as_slice(),
                    lk,
                );
            }
            Credit::Eprop { .. } => {
                let rx = self.xr(k);
                let (s0, s1) = self.lam.split_at_mut(nb);
                let (lk, ln) = if k.is_multiple_of(2) {
                    (s0, s1)
                } else {
                    (s1, s0)
                };
                eprop_update(
                    phi,
                    dt,
                    &self.wdiag,
                    ln,
                    &self.xs[rx],
                    &self.hs[k * nb..(k + 1) * nb],
                    lk,
                );
            }
            Credit::Truncated { h } => self.truncated_step(net, h, k, active),
        }
    }

    /// dL/dW += dt Lambda_k phi(X_{k-1})^T, a chunk of steps at a time: Lambda_k is copied
    /// while in cache, the chunk product runs when full (steps chunk.lo .. chunk.lo + len).
    #[inline]
    fn add_recurrent_chunk(&mut self, dt: f64, k: usize, chunk: &mut Chunk, g_rec: &mut [f64]) {
        let (n, b, nb) = (self.n, self.batch, self.nb());
        if k == self.steps || k + 1 == chunk.lo {
            let len = chunk.steps.min(k);
            chunk.lo = k + 1 - len;
            // within the capacity after the first chunk: no allocation in the loop
            self.lam_chunk.resize(len * nb, 0.0);
        }
        let col = (k - chunk.lo) * b;
        self.lam_chunk[col * n..col * n + nb].copy_from_slice(&self.lam[slot(k, nb)]);
        if k == chunk.lo {
            // phi(X_{lo - 1}) .. phi(X_{lo + len - 2}): contiguous in the trajectory, in the
            // order of the Lambda columns; its transpose is a strided view (the right operand,
            // see `tview`)
            let cols = self.lam_chunk.len() / n;
            let lv = DMatrixView::from_slice(&self.lam_chunk, n, cols);
            let h0 = (chunk.lo - 1) * nb;
            let ht = tview(&self.hs[h0..h0 + cols * n], n, cols);
            DMatrixViewMut::from_slice(g_rec, n, n).gemm(dt, &lv, &ht, 1.0);
        }
    }

    /// dL/dW_in += dt Lambda_k U_{k-1}^T (steps without input skipped).
    #[inline]
    fn add_input_gradient(&self, net: &Network, trials: &Trials, k: usize, g_in: &mut [f64]) {
        let (n, b, nb, k_in) = (self.n, self.batch, self.nb(), net.inputs());
        let uk = trials.inputs.columns((k - 1) * b, b);
        if uk.iter().any(|&v| v != 0.0) {
            let lv = DMatrixView::from_slice(&self.lam[slot(k, nb)], n, b);
            let ut = tview(&trials.inputs.as_slice()[(k - 1) * b * k_in..], k_in, b);
            let mut gi = DMatrixViewMut::from_slice(g_in, n, k_in);
            gi.gemm(net.dt, &lv, &ut, 1.0);
        }
    }

    /// dL/dM = dt P Q^T / N with P = U^T [Lambda_1 .. Lambda_T] (filled by the loop) and
    /// Q = U^T [phi(X_0) .. phi(X_{T-1})], column-major M: [M00, M10, M01, M11].
    fn latent_gradient(&mut self, dt: f64, g_rec: &mut [f64]) {
        let (n, b, nb, steps) = (self.n, self.batch, self.nb(), self.steps);
        let inv_n = 1.0 / n as f64;
        let h_all = DMatrixView::from_slice(&self.hs[..steps * nb], n, steps * b);
        self.q.gemm(1.0, &self.u_t, &h_all, 0.0);
        for j in 0..2 {
            for i in 0..2 {
                let s = self.p.row(i).dot(&self.q.row(j));
                g_rec[2 * j + i] = dt * inv_n * s;
            }
        }
    }

    /// dL/dw_out = sum over loss steps of the readout variable (rates or states) times the
    /// cotangents e_y / N, column by readout.
    fn readout_gradient(&self, net: &Network, active: &[bool], g_out: &mut [f64]) {
        let (n, b, nb, r) = (self.n, self.batch, self.nb(), net.outputs());
        let inv_n = 1.0 / n as f64;
        let mut go = DMatrixViewMut::from_slice(g_out, n, r);
        go.fill(0.0);
        for k in 0..self.steps {
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

    /// Truncated BPTT, step k < T: propagate every live chain (a loss step s in (k, k + h - 1]
    /// with a cotangent) from X_{k+1} to X_k; the slot of Lambda_k is cleared for g_k. Chains
    /// of loss steps s >= k + h have had their h - 1 Jacobians and are dropped.
    fn truncated_step(&mut self, net: &Network, h: usize, k: usize, active: &[bool]) {
        let (nb, b, dt, steps) = (self.nb(), self.batch, net.dt, self.steps);
        let rx = self.xr(k);
        for src in k + 1..(k + h).min(steps + 1) {
            if !active[src - 1] {
                continue;
            }
            let c = &mut self.chains[(src % h) * nb..(src % h + 1) * nb];
            self.wtp.gemm(dt, c, b, 0.0, self.z.as_mut_slice());
            adjoint_update_in_place(
                net.phi,
                1.0 - dt,
                c,
                &self.xs[rx.clone()],
                &self.hs[k * nb..(k + 1) * nb],
                self.z.as_slice(),
            );
        }
        self.lam[slot(k, nb)].fill(0.0);
    }

    /// Truncated BPTT, step k < T, after g_k was added to the slot of Lambda_k: start the
    /// chain of loss step k (if it has a cotangent) and add the live chains of the later loss
    /// steps: Lambda_k = g_k + sum_{s = k+1}^{k+h-1} (J_k^T ... J_{s-1}^T) g_s.
    fn truncated_collect(&mut self, h: usize, k: usize, active: &[bool]) {
        let (nb, steps) = (self.nb(), self.steps);
        let lk = &mut self.lam[slot(k, nb)];
        if active[k - 1] {
            self.chains[(k % h) * nb..(k % h + 1) * nb].copy_from_slice(lk);
        }
        for src in k + 1..(k + h).min(steps + 1) {
            if !active[src - 1] {
                continue;
            }
            let c = &self.chains[(src % h) * nb..(src % h + 1) * nb];
            for (l, &v) in lk.iter_mut().zip(c) {
                *l += v;
            }
        }
    }

    /// Lambda_k += dl/dX_k from the readout cotangent of state X_k (k >= 1), with the learning
    /// signal carried along `fb` (w_out for the exact gradient, a feedback matrix for random
    /// e-prop).
    fn add_readout_cotangent(&mut self, net: &Network, fb: &DMatrix<f64>, k: usize, active: bool) {
        if !active {
            return;
        }
        let (n, b, nb) = (self.n, self.batch, self.nb());
        let e = self.ey.columns((k - 1) * b, b);
        self.z.gemm(1.0 / n as f64, fb, &e, 0.0);
        let rx = self.xr(k);
        let lk = &mut self.lam[slot(k, nb)];
        let z = self.z.as_slice();
        match net.readout {
            Readout::Rate => {
                // X_k is only read by phi' for erf, which keeps the whole trajectory
                let x = &self.xs[rx];
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
        self.loss_and_grad_with(net, trials, t, Credit::Exact, grad)
    }

    /// [`Sharded::loss_and_grad`] with the adjoint recursion of a learning rule ([`Credit`]).
    pub fn loss_and_grad_with(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        credit: Credit<'_>,
        grad: &mut [f64],
    ) -> Result<f64> {
        self.fit(net, trials);
        let len = grad.len();
        self.run(trials, |ws, tr, g| {
            g.resize(len, 0.0);
            ws.loss_and_grad_with(net, tr, t, credit, g)
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

    /// End state X_T (N x B, all trials in batch order) of the last forward pass.
    pub fn end_state(&self) -> DMatrix<f64> {
        let mut x = DMatrix::zeros(self.n, self.batch);
        for sh in &self.shards {
            x.columns_mut(sh.j0, sh.j1 - sh.j0)
                .copy_from(&sh.ws.end_state());
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

/// The dL/dW chunk of the backward pass: `steps` steps of Lambda per product, the lowest step
/// `lo` of the chunk being gathered.
struct Chunk {
    steps: usize,
    lo: usize,
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
