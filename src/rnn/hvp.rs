//! The exact Hessian-vector product of the network loss (Pearlmutter's R-operator,
//! forward-over-reverse), for the modified flow of GD (THEORY B-12, I-18).
//!
//! The loss L(theta) of [`super::bptt`] is differentiated once by BPTT; H v, the derivative
//! d/ds grad L(theta + s v) at s = 0, is the derivative of that whole computation along v.
//! Writing a dot for d/ds (the tangent along v: dW, dW_in, dw_out are the blocks of v), the
//! forward pass and its tangent are
//!
//! ```text
//! X_{k+1} = (1 - dt) X_k + dt (W H_k + W_in U_k),                  H_k = phi(X_k),
//! X._{k+1} = (1 - dt) X._k + dt (W H._k + dW H_k + dW_in U_k),      H._k = phi'(X_k) X._k,
//! y_k = w_out^T V_{k+1} / N,   y._k = (w_out^T V._{k+1} + dw_out^T V_{k+1}) / N,
//! e_k = c_k (y_k - t_k),       e._k = c_k y._k,
//! ```
//!
//! (V = H for the rate readout, X for the state readout; X._0 = 0), and the adjoint pass and
//! its tangent are
//!
//! ```text
//! Lambda_k = g_k + (1 - dt) Lambda_{k+1} + dt phi'(X_k) .* (W^T Lambda_{k+1}),
//! Lambda._k = g._k + (1 - dt) Lambda._{k+1}
//!           + dt [phi''(X_k) .* X._k .* (W^T Lambda_{k+1})
//!                 + phi'(X_k) .* (W^T Lambda._{k+1} + dW^T Lambda_{k+1})],
//! g_k = phi'(X_k) .* z_k,  g._k = phi''(X_k) .* X._k .* z_k + phi'(X_k) .* z._k   (rate),
//! z_k = w_out e_{k-1} / N,  z._k = (w_out e._{k-1} + dw_out e_{k-1}) / N
//! ```
//!
//! (for the state readout g_k = z_k, g._k = z._k). The gradient blocks and their tangents, the
//! blocks of H v:
//!
//! ```text
//! dL/dW     = dt sum_k Lambda_k H_{k-1}^T,
//! (H v)_W     = dt sum_k (Lambda._k H_{k-1}^T + Lambda_k H._{k-1}^T),
//! dL/dW_in  = dt sum_k Lambda_k U_{k-1}^T,    (H v)_W_in = dt sum_k Lambda._k U_{k-1}^T,
//! dL/dw_out = sum_k V_{k+1} e_k^T / N,
//! (H v)_w_out = sum_k (V._{k+1} e_k^T + V_{k+1} e._k^T) / N,
//! ```
//!
//! and for the latent M (W = W0 + U M U^T / N, affine in M, so no second-order term of the
//! map): dW = U dM U^T / N and (H v)_M = U^T (H v)_W U / N, both kept at rank 2
//! (dW H_k = (U dM / N)(U^T H_k), never an N x N matrix).
//!
//! This is the exact Hessian of the discrete loss to rounding (no step, no truncation): it is
//! checked against central differences of BPTT gradients, a Richardson-extrapolated
//! reference, the symmetry of the dense Hessian it builds column by column, and the
//! penalty's gradient d/ds |grad L(theta + s u)|^2 / 2 (tests below).
//!
//! Cost. One product runs the primal and the tangent forward pass in one time loop (W times
//! the N x 2B block [H_k | H._k], plus dW H_k) and the adjoint and its tangent in one reverse
//! loop (W^T [Lambda_{k+1} | Lambda._{k+1}], plus dW^T Lambda_{k+1}); for a full-W direction
//! the parameter blocks are three N x TB x N products (the gradient's one, if asked for, and
//! the tangent's two). In gemm flops that is 8 (9 with the gradient) N^2 T B products against
//! the gradient's 3: about 3x a gradient, against 2 gradients for the central difference
//! (measured 2.6-2.8x a gradient at N = 64, 256, i.e. 1.4-1.6x the difference: `bench/README.md`,
//! `cargo bench --bench rnn_step -- rnn_hessian_product`). For an M-only direction the rank-2
//! tangent costs one extra W product per pass: 4 against the gradient's 2 (measured 1.4x a
//! gradient at N = 256, the same as the difference).
//!
//! Buffers: the trajectories X, H, X., H. (N x (T + 1) B each) and the adjoints Lambda,
//! Lambda. (N x T B each) are allocated once per shape ([`Hvp::new`], [`Hvp::fit`]); the time
//! loops allocate nothing. One workspace runs the whole batch on one thread (deterministic;
//! the batches of the step-size experiments are a few trials).

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, Dyn, Matrix2, MatrixView};

use super::network::{Network, Readout, Recurrent, Trainable};
use super::task::Trials;
use crate::num::packed::PackedMatrix;
use crate::{Error, Result};

/// Transposed view of a column-major `rows x cols` block stored in `s` (a `cols x rows`
/// view). Used only as the right operand of `gemm` (see the note on `tview` in
/// [`super::bptt`]: nalgebra 0.34.2 mishandles strided left operands of small dimension).
fn tview(s: &[f64], rows: usize, cols: usize) -> MatrixView<'_, f64, Dyn, Dyn, Dyn, Dyn> {
    MatrixView::<f64, Dyn, Dyn, Dyn, Dyn>::from_slice_with_strides(s, cols, rows, rows, 1)
}

/// Buffers of the exact Hessian-vector product for one network shape and one trial shape.
#[derive(Debug, Clone)]
pub struct Hvp {
    n: usize,
    steps: usize,
    batch: usize,
    inputs: usize,
    outputs: usize,
    /// X_0..X_T, phi(X_0)..phi(X_T) and their tangents, N x (T + 1) B each.
    xs: Vec<f64>,
    hs: Vec<f64>,
    xds: Vec<f64>,
    hds: Vec<f64>,
    /// Lambda_1..Lambda_T and their tangents, N x T B (block j holds Lambda_{j+1}).
    lam: Vec<f64>,
    lamd: Vec<f64>,
    /// Readouts, their tangents, cotangents e and their tangents, R x T B.
    ys: DMatrix<f64>,
    yds: DMatrix<f64>,
    ey: DMatrix<f64>,
    eyd: DMatrix<f64>,
    /// N x 2B blocks [A | A.] in and out of the fused W products; N x B scratch.
    pair_in: Vec<f64>,
    pair_out: Vec<f64>,
    zb: Vec<f64>,
    zdb: Vec<f64>,
    /// W, W^T, and for a full-W direction dW, dW^T (panel layout, packed once per product).
    wp: PackedMatrix,
    wtp: PackedMatrix,
    dwp: PackedMatrix,
    dwtp: PackedMatrix,
    /// The full-W direction dW (N x N).
    dw: DMatrix<f64>,
    /// The latent direction: U dM / N and U dM^T / N (N x 2), U^T (2 x N), 2 x B scratch.
    udm: DMatrix<f64>,
    udmt: DMatrix<f64>,
    u_t: DMatrix<f64>,
    r2: DMatrix<f64>,
    /// Input and readout directions dW_in (N x K), dw_out (N x R); w_out^T, dw_out^T (R x N).
    dw_in: DMatrix<f64>,
    dw_out: DMatrix<f64>,
    wout_t: DMatrix<f64>,
    dwout_t: DMatrix<f64>,
    /// U^T Lambda, U^T Lambda., U^T H, U^T H. (2 x T B) for the latent blocks.
    p: DMatrix<f64>,
    pd: DMatrix<f64>,
    q: DMatrix<f64>,
    qd: DMatrix<f64>,
    /// Products computed so far.
    pub products: usize,
}

impl Hvp {
    /// Buffers for `net` and trials of `steps` steps and `batch` trials.
    pub fn new(net: &Network, steps: usize, batch: usize) -> Hvp {
        let (n, k, r) = (net.n, net.inputs(), net.outputs());
        let traj = n * (steps + 1) * batch;
        let adj = n * steps * batch;
        let full = |rows, cols| DMatrix::zeros(rows, cols);
        Hvp {
            n,
            steps,
            batch,
            inputs: k,
            outputs: r,
            xs: vec![0.0; traj],
            hs: vec![0.0; traj],
            xds: vec![0.0; traj],
            hds: vec![0.0; traj],
            lam: vec![0.0; adj],
            lamd: vec![0.0; adj],
            ys: full(r, steps * batch),
            yds: full(r, steps * batch),
            ey: full(r, steps * batch),
            eyd: full(r, steps * batch),
            pair_in: vec![0.0; 2 * n * batch],
            pair_out: vec![0.0; 2 * n * batch],
            zb: vec![0.0; n * batch],
            zdb: vec![0.0; n * batch],
            wp: PackedMatrix::new(),
            wtp: PackedMatrix::new(),
            dwp: PackedMatrix::new(),
            dwtp: PackedMatrix::new(),
            // the N x N direction only when a full-W product asks for it (see `product`)
            dw: full(0, 0),
            udm: full(n, 2),
            udmt: full(n, 2),
            u_t: full(2, n),
            r2: full(2, batch),
            dw_in: full(n, k),
            dw_out: full(n, r),
            wout_t: full(r, n),
            dwout_t: full(r, n),
            p: full(2, steps * batch),
            pd: full(2, steps * batch),
            q: full(2, steps * batch),
            qd: full(2, steps * batch),
            products: 0,
        }
    }

    /// Make sure the buffers fit `net` and `trials` (reallocates only if a shape changed).
    pub fn fit(&mut self, net: &Network, trials: &Trials) {
        if self.n != net.n
            || self.steps != trials.steps
            || self.batch != trials.batch
            || self.inputs != net.inputs()
            || self.outputs != net.outputs()
        {
            let products = self.products;
            *self = Hvp::new(net, trials.steps, trials.batch);
            self.products = products;
        }
    }

    fn check(
        &self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        v: &[f64],
        hv: &[f64],
    ) -> Result<()> {
        let len = net.num_params(t);
        let ok = self.n == net.n
            && self.steps == trials.steps
            && self.batch == trials.batch
            && self.inputs == net.inputs()
            && self.outputs == net.outputs()
            && trials.inputs.nrows() == net.inputs()
            && trials.targets.nrows() == net.outputs()
            && trials.x0.shape() == (net.n, trials.batch)
            && v.len() == len
            && hv.len() == len;
        if ok {
            Ok(())
        } else {
            Err(Error::Shape {
                context: "rnn::hvp".into(),
                message: format!(
                    "buffers N={} T={} B={}, trials T={} B={}, network N={} ({} parameters), v {}, out {}",
                    self.n,
                    self.steps,
                    self.batch,
                    trials.steps,
                    trials.batch,
                    net.n,
                    len,
                    v.len(),
                    hv.len()
                ),
            })
        }
    }

    /// Loss L, optionally the gradient grad L, and the exact product `hv` = H v of the loss of
    /// `net` on `trials` with respect to the trainable set `t` (all vectors in the layout of
    /// [`Network::params`]). The buffers are refitted if the shapes changed.
    pub fn product(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        v: &[f64],
        grad: Option<&mut [f64]>,
        hv: &mut [f64],
    ) -> Result<f64> {
        self.fit(net, trials);
        self.check(net, trials, t, v, hv)?;
        if let Some(g) = grad.as_deref() {
            if g.len() != hv.len() {
                return Err(Error::Shape {
                    context: "rnn::hvp".into(),
                    message: format!("gradient buffer {} != {}", g.len(), hv.len()),
                });
            }
        }
        self.set_direction(net, t, v);
        self.forward(net, trials, t);
        let loss = self.loss(trials);
        self.backward(net, trials, t);
        self.blocks(net, trials, t, grad, hv);
        self.products += 1;
        Ok(loss)
    }

    /// Unpack v into the tangent blocks dW (or U dM / N), dW_in, dw_out.
    fn set_direction(&mut self, net: &Network, t: &Trainable, v: &[f64]) {
        let n = net.n;
        let n_rec = match t.recurrent {
            Recurrent::Full => n * n,
            Recurrent::Latent => 4,
        };
        let (rec, rest) = v.split_at(n_rec);
        let n_in = if t.input { net.w_in.len() } else { 0 };
        let (v_in, v_out) = rest.split_at(n_in);
        match t.recurrent {
            Recurrent::Full => {
                if self.dw.shape() != (n, n) {
                    self.dw = DMatrix::zeros(n, n);
                }
                self.dw.as_mut_slice().copy_from_slice(rec);
                self.dwp.pack(&self.dw);
                self.dwtp.pack_transpose(&self.dw);
            }
            Recurrent::Latent => {
                let dm = Matrix2::from_column_slice(rec) / n as f64;
                self.udm.gemm(1.0, &net.u, &dm, 0.0);
                self.udmt.gemm(1.0, &net.u, &dm.transpose(), 0.0);
            }
        }
        net.u.transpose_to(&mut self.u_t);
        if t.input {
            self.dw_in.as_mut_slice().copy_from_slice(v_in);
        } else {
            self.dw_in.fill(0.0);
        }
        if t.readout {
            self.dw_out
                .as_mut_slice()
                .copy_from_slice(&v_out[..net.w_out.len()]);
        } else {
            self.dw_out.fill(0.0);
        }
        net.w_out.transpose_to(&mut self.wout_t);
        self.dw_out.transpose_to(&mut self.dwout_t);
    }

    /// The primal and tangent forward passes in one time loop, then the readouts.
    fn forward(&mut self, net: &Network, trials: &Trials, t: &Trainable) {
        let (n, b, dt) = (self.n, self.batch, net.dt);
        let nb = n * b;
        let phi = net.phi;
        let full = t.recurrent == Recurrent::Full;
        self.wp.pack(&net.w);
        self.xs[..nb].copy_from_slice(trials.x0.as_slice());
        self.xds[..nb].fill(0.0);
        for k in 0..self.steps {
            let (x_lo, x_hi) = self.xs.split_at_mut((k + 1) * nb);
            let (xk, xn) = (&x_lo[k * nb..], &mut x_hi[..nb]);
            let (xd_lo, xd_hi) = self.xds.split_at_mut((k + 1) * nb);
            let (xdk, xdn) = (&xd_lo[k * nb..], &mut xd_hi[..nb]);
            let hk = &mut self.hs[k * nb..(k + 1) * nb];
            let hdk = &mut self.hds[k * nb..(k + 1) * nb];
            // H_k and (1 - dt) X_k; H._k = phi'(X_k) X._k and (1 - dt) X._k
            phi.apply_and_scale(xk, hk, xn, 1.0 - dt);
            for i in 0..nb {
                hdk[i] = phi.df(xk[i], hk[i]) * xdk[i];
                xdn[i] = (1.0 - dt) * xdk[i];
            }
            // W [H_k | H._k] in one product (W streamed once for both)
            self.pair_in[..nb].copy_from_slice(hk);
            self.pair_in[nb..].copy_from_slice(hdk);
            self.wp
                .gemm(dt, &self.pair_in, 2 * b, 0.0, &mut self.pair_out);
            for i in 0..nb {
                xn[i] += self.pair_out[i];
                xdn[i] += self.pair_out[nb + i];
            }
            // dW H_k
            if full {
                self.dwp.gemm(dt, hk, b, 1.0, xdn);
            } else {
                let hv = DMatrixView::from_slice(hk, n, b);
                self.r2.gemm(1.0, &self.u_t, &hv, 0.0);
                DMatrixViewMut::from_slice(xdn, n, b).gemm(dt, &self.udm, &self.r2, 1.0);
            }
            let uk = trials.inputs.columns(k * b, b);
            if net.inputs() > 0 && uk.iter().any(|&u| u != 0.0) {
                DMatrixViewMut::from_slice(xn, n, b).gemm(dt, &net.w_in, &uk, 1.0);
                if t.input {
                    DMatrixViewMut::from_slice(xdn, n, b).gemm(dt, &self.dw_in, &uk, 1.0);
                }
            }
        }
        let s = self.steps;
        let (xt, xdt) = (&self.xs[s * nb..], &self.xds[s * nb..]);
        let (ht, hdt) = (&mut self.hs[s * nb..], &mut self.hds[s * nb..]);
        phi.apply(xt, ht);
        for i in 0..nb {
            hdt[i] = phi.df(xt[i], ht[i]) * xdt[i];
        }
        // readouts and their tangents at the loss steps (block k reads X_{k+1})
        let inv_n = 1.0 / n as f64;
        let (src, srcd) = match net.readout {
            Readout::Rate => (&self.hs, &self.hds),
            Readout::State => (&self.xs, &self.xds),
        };
        for k in 0..self.steps {
            if !trials.active[k] {
                continue;
            }
            let v = DMatrixView::from_slice(&src[(k + 1) * nb..(k + 2) * nb], n, b);
            let vd = DMatrixView::from_slice(&srcd[(k + 1) * nb..(k + 2) * nb], n, b);
            self.ys
                .columns_mut(k * b, b)
                .gemm(inv_n, &self.wout_t, &v, 0.0);
            let mut yd = self.yds.columns_mut(k * b, b);
            yd.gemm(inv_n, &self.wout_t, &vd, 0.0);
            if t.readout {
                yd.gemm(inv_n, &self.dwout_t, &v, 1.0);
            }
        }
    }

    /// The loss and the cotangents e, e. (zero where the loss weight is zero).
    fn loss(&mut self, trials: &Trials) -> f64 {
        let mut l = 0.0;
        for i in 0..self.ys.len() {
            let c = trials.weights[i];
            if c == 0.0 {
                self.ey[i] = 0.0;
                self.eyd[i] = 0.0;
            } else {
                let d = self.ys[i] - trials.targets[i];
                l += 0.5 * c * d * d;
                self.ey[i] = c * d;
                self.eyd[i] = c * self.yds[i];
            }
        }
        l
    }

    /// Lambda_k += g_k, Lambda._k += g._k: the readout cotangent of state X_k (k >= 1).
    fn add_cotangent(&mut self, net: &Network, t: &Trainable, k: usize) {
        let (n, b) = (self.n, self.batch);
        let nb = n * b;
        let inv_n = 1.0 / n as f64;
        let e = self.ey.columns((k - 1) * b, b);
        let ed = self.eyd.columns((k - 1) * b, b);
        let mut z = DMatrixViewMut::from_slice(&mut self.zb, n, b);
        z.gemm(inv_n, &net.w_out, &e, 0.0);
        let mut zd = DMatrixViewMut::from_slice(&mut self.zdb, n, b);
        zd.gemm(inv_n, &net.w_out, &ed, 0.0);
        if t.readout {
            zd.gemm(inv_n, &self.dw_out, &e, 1.0);
        }
        let r = (k - 1) * nb..k * nb;
        let (lk, ldk) = (&mut self.lam[r.clone()], &mut self.lamd[r]);
        match net.readout {
            Readout::Rate => {
                let phi = net.phi;
                let (x, h, xd) = (
                    &self.xs[k * nb..(k + 1) * nb],
                    &self.hs[k * nb..(k + 1) * nb],
                    &self.xds[k * nb..(k + 1) * nb],
                );
                for i in 0..nb {
                    let d1 = phi.df(x[i], h[i]);
                    let d2 = phi.d2f(x[i], h[i]);
                    lk[i] += d1 * self.zb[i];
                    ldk[i] += d2 * xd[i] * self.zb[i] + d1 * self.zdb[i];
                }
            }
            Readout::State => {
                for i in 0..nb {
                    lk[i] += self.zb[i];
                    ldk[i] += self.zdb[i];
                }
            }
        }
    }

    /// The adjoint pass and its tangent in one reverse time loop.
    fn backward(&mut self, net: &Network, trials: &Trials, t: &Trainable) {
        let (n, b, dt, steps) = (self.n, self.batch, net.dt, self.steps);
        let nb = n * b;
        let phi = net.phi;
        let full = t.recurrent == Recurrent::Full;
        self.wtp.pack_transpose(&net.w);
        let last = (steps - 1) * nb..steps * nb;
        self.lam[last.clone()].fill(0.0);
        self.lamd[last].fill(0.0);
        if trials.active[steps - 1] {
            self.add_cotangent(net, t, steps);
        }
        for k in (1..steps).rev() {
            // Lambda_{k+1} is block k, Lambda_k block k - 1
            {
                let ln = &self.lam[k * nb..(k + 1) * nb];
                let lnd = &self.lamd[k * nb..(k + 1) * nb];
                self.pair_in[..nb].copy_from_slice(ln);
                self.pair_in[nb..].copy_from_slice(lnd);
                self.wtp
                    .gemm(dt, &self.pair_in, 2 * b, 0.0, &mut self.pair_out);
                // dt dW^T Lambda_{k+1}
                if full {
                    self.dwtp.gemm(dt, ln, b, 0.0, &mut self.zb);
                } else {
                    let lv = DMatrixView::from_slice(ln, n, b);
                    self.r2.gemm(1.0, &self.u_t, &lv, 0.0);
                    DMatrixViewMut::from_slice(&mut self.zb, n, b)
                        .gemm(dt, &self.udmt, &self.r2, 0.0);
                }
            }
            let (l_lo, l_hi) = self.lam.split_at_mut(k * nb);
            let (lk, ln) = (&mut l_lo[(k - 1) * nb..], &l_hi[..nb]);
            let (ld_lo, ld_hi) = self.lamd.split_at_mut(k * nb);
            let (ldk, lnd) = (&mut ld_lo[(k - 1) * nb..], &ld_hi[..nb]);
            let (x, h, xd) = (
                &self.xs[k * nb..(k + 1) * nb],
                &self.hs[k * nb..(k + 1) * nb],
                &self.xds[k * nb..(k + 1) * nb],
            );
            let (a, c) = self.pair_out.split_at(nb);
            let d = &self.zb;
            for i in 0..nb {
                let d1 = phi.df(x[i], h[i]);
                let d2 = phi.d2f(x[i], h[i]);
                lk[i] = (1.0 - dt) * ln[i] + d1 * a[i];
                ldk[i] = (1.0 - dt) * lnd[i] + d2 * xd[i] * a[i] + d1 * (c[i] + d[i]);
            }
            if trials.active[k - 1] {
                self.add_cotangent(net, t, k);
            }
        }
    }

    /// The gradient (if asked for) and H v from the stored trajectories and adjoints.
    fn blocks(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        mut grad: Option<&mut [f64]>,
        hv: &mut [f64],
    ) {
        let (n, b, dt, steps) = (self.n, self.batch, net.dt, self.steps);
        let (nb, tb) = (n * b, steps * b);
        let inv_n = 1.0 / n as f64;
        let lam = DMatrixView::from_slice(&self.lam, n, tb);
        let lamd = DMatrixView::from_slice(&self.lamd, n, tb);
        // H_0..H_{T-1} and H._0..H._{T-1}: the first T blocks
        let h_t = tview(&self.hs[..steps * nb], n, tb);
        let hd_t = tview(&self.hds[..steps * nb], n, tb);
        let n_rec = match t.recurrent {
            Recurrent::Full => n * n,
            Recurrent::Latent => 4,
        };
        match t.recurrent {
            Recurrent::Full => {
                let mut out = DMatrixViewMut::from_slice(&mut hv[..n_rec], n, n);
                out.gemm(dt, &lamd, &h_t, 0.0);
                out.gemm(dt, &lam, &hd_t, 1.0);
                if let Some(g) = grad.as_deref_mut() {
                    DMatrixViewMut::from_slice(&mut g[..n_rec], n, n).gemm(dt, &lam, &h_t, 0.0);
                }
            }
            Recurrent::Latent => {
                let h_all = DMatrixView::from_slice(&self.hs[..steps * nb], n, tb);
                let hd_all = DMatrixView::from_slice(&self.hds[..steps * nb], n, tb);
                self.p.gemm(1.0, &self.u_t, &lam, 0.0);
                self.pd.gemm(1.0, &self.u_t, &lamd, 0.0);
                self.q.gemm(1.0, &self.u_t, &h_all, 0.0);
                self.qd.gemm(1.0, &self.u_t, &hd_all, 0.0);
                let c = dt * inv_n;
                // column-major M: [M00, M10, M01, M11]
                for j in 0..2 {
                    for i in 0..2 {
                        hv[2 * j + i] = c
                            * (self.pd.row(i).dot(&self.q.row(j))
                                + self.p.row(i).dot(&self.qd.row(j)));
                        if let Some(g) = grad.as_deref_mut() {
                            g[2 * j + i] = c * self.p.row(i).dot(&self.q.row(j));
                        }
                    }
                }
            }
        }
        let mut off = n_rec;
        if t.input {
            let k_in = net.inputs();
            let len = n * k_in;
            let u_t = tview(trials.inputs.as_slice(), k_in, tb);
            DMatrixViewMut::from_slice(&mut hv[off..off + len], n, k_in).gemm(dt, &lamd, &u_t, 0.0);
            if let Some(g) = grad.as_deref_mut() {
                DMatrixViewMut::from_slice(&mut g[off..off + len], n, k_in)
                    .gemm(dt, &lam, &u_t, 0.0);
            }
            off += len;
        }
        if t.readout {
            let r = net.outputs();
            let len = n * r;
            let (src, srcd) = match net.readout {
                Readout::Rate => (&self.hs, &self.hds),
                Readout::State => (&self.xs, &self.xds),
            };
            // V_1..V_T: blocks 1..=T
            let v = DMatrixView::from_slice(&src[nb..(steps + 1) * nb], n, tb);
            let vd = DMatrixView::from_slice(&srcd[nb..(steps + 1) * nb], n, tb);
            let e_t = tview(self.ey.as_slice(), r, tb);
            let ed_t = tview(self.eyd.as_slice(), r, tb);
            let mut out = DMatrixViewMut::from_slice(&mut hv[off..off + len], n, r);
            out.gemm(inv_n, &vd, &e_t, 0.0);
            out.gemm(inv_n, &v, &ed_t, 1.0);
            if let Some(g) = grad {
                DMatrixViewMut::from_slice(&mut g[off..off + len], n, r).gemm(inv_n, &v, &e_t, 0.0);
            }
        }
    }
}

/// H v of the loss of `net` on `trials` at its current parameters (convenience: allocates
/// the buffers; loops should keep an [`Hvp`]).
pub fn hessian_vector(
    net: &Network,
    trials: &Trials,
    t: &Trainable,
    v: &[f64],
) -> Result<Vec<f64>> {
    let mut h = Hvp::new(net, trials.steps, trials.batch);
    let mut out = vec![0.0; v.len()];
    h.product(net, trials, t, v, None, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
