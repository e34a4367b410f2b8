//! The backward pass of BPTT: readout cotangents, the adjoint recursion (exact, e-prop,
//! random feedback, truncated), and the parameter gradients accumulated step by step.

use super::*;

impl Workspace {
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
            split: split_row(self.n),
        };
        // exact BPTT at batch 1 with another worker possibly idle: steps T-1 .. 1 in lockstep
        // (their adjoint products split by rows over two threads, same bits, `split`)
        let lockstep = match (credit, chunk.split) {
            (Credit::Exact, Some(s)) if b == 1 && steps > 1 => Some(s),
            _ => None,
        };
        for k in (1..=steps).rev() {
            if k < steps {
                if let Some(s) = lockstep {
                    self.backward_lockstep(net, fb, trials, t, &active, s, &mut chunk, g_rec, g_in);
                    break;
                }
                self.adjoint_step(net, credit, k, &active);
                self.add_readout_cotangent(net, fb, k, active[k - 1]);
                if let Credit::Truncated { h } = credit {
                    self.truncated_collect(h, k, &active);
                }
            }
            self.accumulate(net, trials, t, k, &mut chunk, g_rec, g_in);
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
    /// (At batch 1 with another worker possibly idle, the exact steps run in lockstep instead:
    /// [`Workspace::backward_lockstep`].)
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

    /// Lambda_k's contributions to the gradient (k >= 1, Lambda_k complete): its column of the
    /// dL/dW chunk (the chunk product when the chunk is full) or its block U^T Lambda_k of
    /// dL/dM, and dL/dW_in.
    #[allow(clippy::too_many_arguments)]
    fn accumulate(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        k: usize,
        chunk: &mut Chunk,
        g_rec: &mut [f64],
        g_in: &mut [f64],
    ) {
        let (n, b, nb) = (self.n, self.batch, self.nb());
        let lk = &self.lam[slot(k, nb)];
        if t.recurrent == Recurrent::Full {
            if chunk_gather(&mut self.lam_chunk, chunk, k, self.steps, lk) {
                chunk_product(
                    &self.lam_chunk,
                    &self.hs,
                    n,
                    b,
                    net.dt,
                    chunk,
                    chunk.split,
                    g_rec,
                );
            }
        } else {
            latent_block(&mut self.p, &self.u_t, n, b, k, lk);
        }
        if t.input {
            input_gradient(net, trials, n, b, k, lk, g_in);
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
        let nb = self.nb();
        let rx = self.xr(k);
        let (x, h) = (&self.xs[rx], &self.hs[k * nb..(k + 1) * nb]);
        let lk = &mut self.lam[slot(k, nb)];
        readout_cotangent(net, fb, &self.ey, k, &mut self.z, x, h, lk);
    }
}

/// Lambda_k += dl/dX_k from the readout cotangent of state X_k (k >= 1) along `fb`: Z =
/// fb e_k / N (N x B scratch), then Lambda_k += phi'(X_k) .* Z (rate readout; `x`, `h` are
/// X_k and H_k) or Lambda_k += Z (state readout).
#[allow(clippy::too_many_arguments)]
pub(super) fn readout_cotangent(
    net: &Network,
    fb: &DMatrix<f64>,
    ey: &DMatrix<f64>,
    k: usize,
    z: &mut DMatrix<f64>,
    x: &[f64],
    h: &[f64],
    lk: &mut [f64],
) {
    let (n, b) = z.shape();
    let e = ey.columns((k - 1) * b, b);
    z.gemm(1.0 / n as f64, fb, &e, 0.0);
    let z = z.as_slice();
    let nb = n * b;
    match net.readout {
        Readout::Rate => {
            // X_k is only read by phi' for erf, which keeps the whole trajectory
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

/// Copy Lambda_k (`lk`) into its column of the dL/dW chunk (a chunk of `chunk.steps` steps at
/// a time, k = T .. 1; a new chunk starts at k = T and below each finished one); true when
/// the chunk is full (k is its lowest step) and its product is due.
pub(super) fn chunk_gather(
    lam_chunk: &mut Vec<f64>,
    chunk: &mut Chunk,
    k: usize,
    steps: usize,
    lk: &[f64],
) -> bool {
    let nb = lk.len();
    if k == steps || k + 1 == chunk.lo {
        let len = chunk.steps.min(k);
        chunk.lo = k + 1 - len;
        // within the capacity after the first chunk: no allocation in the loop
        lam_chunk.resize(len * nb, 0.0);
    }
    let col = k - chunk.lo;
    lam_chunk[col * nb..(col + 1) * nb].copy_from_slice(lk);
    k == chunk.lo
}

/// dL/dW += dt Lambda_chunk phi(X)_chunk^T for the chunk gathered from `chunk.lo` on:
/// phi(X_{lo-1}) .. phi(X_{lo+len-2}) are contiguous in the trajectory `hs`, in the order of the
/// Lambda columns; their transpose is a strided view (the right operand, see `tview`). With
/// `split` = Some(s) (and more than 5 columns) rows 0..s and s..N run on two threads (same
/// bits, `split`).
#[allow(clippy::too_many_arguments)]
pub(super) fn chunk_product(
    lam_chunk: &[f64],
    hs: &[f64],
    n: usize,
    b: usize,
    dt: f64,
    chunk: &Chunk,
    split: Option<usize>,
    g_rec: &mut [f64],
) {
    let cols = lam_chunk.len() / n;
    let lv = DMatrixView::from_slice(lam_chunk, n, cols);
    let h0 = (chunk.lo - 1) * n * b;
    let ht = tview(&hs[h0..h0 + cols * n], n, cols);
    let mut g = DMatrixViewMut::from_slice(g_rec, n, n);
    match split::chunk_split(split, cols) {
        // the row blocks of Lambda are strided left operands, safe here because every
        // dimension exceeds 5, so nalgebra calls matrixmultiply (see `tview`)
        Some(s) => {
            let (mut ga, mut gb) = g.rows_range_pair_mut(0..s, s..n);
            let (la, lb) = (lv.rows(0, s), lv.rows(s, n - s));
            rayon::join(|| ga.gemm(dt, &la, &ht, 1.0), || gb.gemm(dt, &lb, &ht, 1.0));
        }
        None => g.gemm(dt, &lv, &ht, 1.0),
    }
}

/// U^T Lambda_k, block k - 1 of P (dL/dM = dt P Q^T / N after the loop).
pub(super) fn latent_block(
    p: &mut DMatrix<f64>,
    u_t: &DMatrix<f64>,
    n: usize,
    b: usize,
    k: usize,
    lk: &[f64],
) {
    let lv = DMatrixView::from_slice(lk, n, b);
    p.columns_mut((k - 1) * b, b).gemm(1.0, u_t, &lv, 0.0);
}

/// dL/dW_in += dt Lambda_k U_{k-1}^T (steps without input skipped).
pub(super) fn input_gradient(
    net: &Network,
    trials: &Trials,
    n: usize,
    b: usize,
    k: usize,
    lk: &[f64],
    g_in: &mut [f64],
) {
    let k_in = net.inputs();
    let uk = trials.inputs.columns((k - 1) * b, b);
    if uk.iter().any(|&v| v != 0.0) {
        let lv = DMatrixView::from_slice(lk, n, b);
        let ut = tview(&trials.inputs.as_slice()[(k - 1) * b * k_in..], k_in, b);
        let mut gi = DMatrixViewMut::from_slice(g_in, n, k_in);
        gi.gemm(net.dt, &lv, &ut, 1.0);
    }
}
