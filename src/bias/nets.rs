//! Model families of docs/theory.md Part II with hand-written gradients: the two-layer net
//! f(x) = sum_j a_j sigma(w_j . x) (B-1), deep linear nets W_L ... W_1 (B-1), and the ReLU RNN
//! h_{t+1} = relu(W h_t + U x_t + b), y = V h + c (B-2).
//!
//! Every gradient here is checked against central finite differences in the unit tests
//! (proptest over random nets and data).

use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use crate::num::iterate::{Descend, GradNorm, Problem};
use crate::{Error, Result};

/// A 1-homogeneous activation sigma (sigma(c z) = c sigma(z) for c > 0), so that
/// sigma'(z) z = sigma(z) — the property behind the balance laws B-1, B-2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(z, 0); sigma'(0) := 0 (any choice keeps sigma'(z) z = sigma(z)).
    Relu,
    /// max(z, alpha z) with leaky slope alpha.
    LeakyRelu(f64),
    /// sigma(z) = z.
    Linear,
}

impl Activation {
    /// sigma(z).
    #[inline(always)]
    pub fn value(self, z: f64) -> f64 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu(al) => {
                if z > 0.0 {
                    z
                } else {
                    al * z
                }
            }
            Activation::Linear => z,
        }
    }

    /// sigma'(z) (one-sided choice 0 resp. alpha at z = 0).
    #[inline(always)]
    pub fn slope(self, z: f64) -> f64 {
        match self {
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(al) => {
                if z > 0.0 {
                    1.0
                } else {
                    al
                }
            }
            Activation::Linear => 1.0,
        }
    }
}

/// Per-sample loss ell(f, y).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// (f - y)^2 / 2.
    Square,
    /// ln(1 + exp(-y f)), labels y = +-1.
    Logistic,
    /// exp(-y f).
    Exponential,
    /// max(0, 1 - y f) (subgradient 0 at the hinge).
    Hinge,
}

impl Loss {
    /// ell(f, y).
    #[inline(always)]
    pub fn value(self, f: f64, y: f64) -> f64 {
        match self {
            Loss::Square => 0.5 * (f - y) * (f - y),
            Loss::Logistic => softplus(-y * f),
            Loss::Exponential => (-y * f).exp(),
            Loss::Hinge => (1.0 - y * f).max(0.0),
        }
    }

    /// d ell / d f.
    #[inline(always)]
    pub fn deriv(self, f: f64, y: f64) -> f64 {
        match self {
            Loss::Square => f - y,
            Loss::Logistic => -y * sigmoid(-y * f),
            Loss::Exponential => -y * (-y * f).exp(),
            Loss::Hinge => {
                if y * f < 1.0 {
                    -y
                } else {
                    0.0
                }
            }
        }
    }
}

/// ln(1 + e^x) without overflow.
#[inline(always)]
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// 1 / (1 + e^{-x}) without overflow.
#[inline(always)]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Two-layer net f(x) = sum_j a_j sigma(w_j . x) (THEORY II.1). `w` is d x k: column j is w_j.
#[derive(Debug, Clone)]
pub struct TwoLayer {
    pub w: DMatrix<f64>,
    pub a: DVector<f64>,
    pub act: Activation,
}

/// Gradient of a [`TwoLayer`] loss: `w` is d x k (column j = grad_{w_j} L), `a` = dL/da.
#[derive(Debug, Clone)]
pub struct TwoLayerGrad {
    pub w: DMatrix<f64>,
    pub a: DVector<f64>,
}

/// Scratch space for [`TwoLayer::grad_into`]: no allocation per step.
#[derive(Debug, Clone)]
pub struct TwoLayerWork {
    z: DMatrix<f64>,
    f: DVector<f64>,
}

impl TwoLayerWork {
    /// Scratch for batches of up to `n` samples and `k` units.
    pub fn new(n: usize, k: usize) -> Self {
        TwoLayerWork {
            z: DMatrix::zeros(n, k),
            f: DVector::zeros(n),
        }
    }
}

impl TwoLayerGrad {
    pub fn zeros(d: usize, k: usize) -> Self {
        TwoLayerGrad {
            w: DMatrix::zeros(d, k),
            a: DVector::zeros(k),
        }
    }
}

impl TwoLayer {
    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.w.nrows()
    }
    /// Width k.
    pub fn k(&self) -> usize {
        self.w.ncols()
    }

    fn check_data(&self, x: &DMatrix<f64>, y: &DVector<f64>) -> Result<()> {
        if x.ncols() != self.d() || x.nrows() != y.len() || self.a.len() != self.k() {
            return Err(Error::Shape {
                context: "two-layer net".into(),
                message: format!(
                    "x is {}x{}, y has {} entries, net has d = {}, k = {}, a has {}",
                    x.nrows(),
                    x.ncols(),
                    y.len(),
                    self.d(),
                    self.k(),
                    self.a.len()
                ),
            });
        }
        Ok(())
    }

    /// Outputs f(x_i) for the rows x_i of `x` (n x d).
    pub fn predict(&self, x: &DMatrix<f64>) -> DVector<f64> {
        let z = x * &self.w;
        let mut f = DVector::zeros(x.nrows());
        for j in 0..self.k() {
            let aj = self.a[j];
            for i in 0..x.nrows() {
                f[i] += aj * self.act.value(z[(i, j)]);
            }
        }
        f
    }

    /// Mean loss L = (1/n) sum_i ell(f(x_i), y_i).
    pub fn loss(&self, x: &DMatrix<f64>, y: &DVector<f64>, loss: Loss) -> Result<f64> {
        self.check_data(x, y)?;
        let f = self.predict(x);
        Ok(f.iter()
            .zip(y.iter())
            .map(|(&f, &y)| loss.value(f, y))
            .sum::<f64>()
            / y.len() as f64)
    }

    /// Gradient of the mean loss over the rows of `x` (n x d) into `g`; returns the loss.
    /// Fused loops over the n x k pre-activations, two matrix products, no allocation.
    pub fn grad_into(
        &self,
        x: &DMatrix<f64>,
        y: &DVector<f64>,
        loss: Loss,
        work: &mut TwoLayerWork,
        g: &mut TwoLayerGrad,
    ) -> Result<f64> {
        self.check_data(x, y)?;
        let (n, k) = (x.nrows(), self.k());
        if work.z.nrows() != n || work.z.ncols() != k {
            work.z = DMatrix::zeros(n, k);
            work.f = DVector::zeros(n);
        }
        if g.w.shape() != self.w.shape() || g.a.len() != k {
            *g = TwoLayerGrad::zeros(self.d(), k);
        }
        let act = self.act;
        work.z.gemm(1.0, x, &self.w, 0.0);
        let zs = work.z.as_mut_slice();
        let f = work.f.as_mut_slice();
        f.fill(0.0);
        for j in 0..k {
            let aj = self.a[j];
            let col = &zs[j * n..(j + 1) * n];
            for i in 0..n {
                f[i] += aj * act.value(col[i]);
            }
        }
        let inv_n = 1.0 / n as f64;
        let mut total = 0.0;
        // f <- r_i = ell'(f_i, y_i) / n
        for i in 0..n {
            total += loss.value(f[i], y[i]);
            f[i] = loss.deriv(f[i], y[i]) * inv_n;
        }
        for j in 0..k {
            let aj = self.a[j];
            let col = &mut zs[j * n..(j + 1) * n];
            let mut ga = 0.0;
            for i in 0..n {
                let z = col[i];
                ga += f[i] * act.value(z);
                col[i] = f[i] * aj * act.slope(z);
            }
            g.a[j] = ga;
        }
        // G_W = X^T M  (d x k)
        g.w.gemm_tr(1.0, x, &work.z, 0.0);
        Ok(total * inv_n)
    }

    /// One (S)GD step with weight decay lambda: theta <- (1 - eta lambda) theta - eta g.
    pub fn step(&mut self, g: &TwoLayerGrad, eta: f64, lambda: f64) {
        let s = 1.0 - eta * lambda;
        self.w.zip_apply(&g.w, |w, gw| *w = s * *w - eta * gw);
        self.a.zip_apply(&g.a, |a, ga| *a = s * *a - eta * ga);
    }

    /// Per-unit balance D_j = |w_j|^2 - a_j^2 (B-1).
    pub fn balance(&self) -> DVector<f64> {
        DVector::from_fn(self.k(), |j, _| {
            self.w.column(j).norm_squared() - self.a[j] * self.a[j]
        })
    }

    /// Per-unit scale |w_j|^2 + a_j^2 (the size against which rounding in D_j is measured).
    pub fn scale(&self) -> DVector<f64> {
        DVector::from_fn(self.k(), |j, _| {
            self.w.column(j).norm_squared() + self.a[j] * self.a[j]
        })
    }
}

impl TwoLayerGrad {
    /// The per-unit quadratic form |grad_{w_j} L|^2 - (dL/da_j)^2 of B-1.
    pub fn balance_form(&self) -> DVector<f64> {
        DVector::from_fn(self.a.len(), |j, _| {
            self.w.column(j).norm_squared() - self.a[j] * self.a[j]
        })
    }
}

impl GradNorm for TwoLayerGrad {
    fn grad_norm(&self) -> f64 {
        (self.w.norm_squared() + self.a.norm_squared()).sqrt()
    }
}

impl Descend<TwoLayerGrad> for TwoLayer {
    fn descend(&mut self, g: &TwoLayerGrad, eta: f64, lambda: f64) {
        self.step(g, eta, lambda);
    }
}

/// The mean loss of a [`TwoLayer`] net on the whole data set (x, y), for
/// [`crate::num::iterate`]: full-batch GD is [`crate::num::iterate::Gd`] on it.
pub struct FullBatch<'a> {
    pub x: &'a DMatrix<f64>,
    pub y: &'a DVector<f64>,
    pub loss: Loss,
    work: TwoLayerWork,
}

impl<'a> FullBatch<'a> {
    /// The loss `loss` on (x, y), with scratch for a net of width `k`.
    pub fn new(x: &'a DMatrix<f64>, y: &'a DVector<f64>, loss: Loss, k: usize) -> Self {
        FullBatch {
            x,
            y,
            loss,
            work: TwoLayerWork::new(x.nrows(), k),
        }
    }
}

impl Problem for FullBatch<'_> {
    type Params = TwoLayer;
    type Grad = TwoLayerGrad;
    fn loss_grad(&mut self, _: usize, net: &TwoLayer, g: &mut TwoLayerGrad) -> Result<f64> {
        net.grad_into(self.x, self.y, self.loss, &mut self.work, g)
    }
    fn loss(&mut self, net: &TwoLayer) -> Result<Option<f64>> {
        net.loss(self.x, self.y, self.loss).map(Some)
    }
}

impl GradNorm for Vec<DMatrix<f64>> {
    fn grad_norm(&self) -> f64 {
        self.iter().map(|g| g.norm_squared()).sum::<f64>().sqrt()
    }
}

impl Descend<Vec<DMatrix<f64>>> for DeepLinear {
    fn descend(&mut self, g: &Vec<DMatrix<f64>>, eta: f64, lambda: f64) {
        self.step(g, eta, lambda);
    }
}

/// Deep linear net x -> W_L ... W_1 x (B-1). Layer l maps R^{n_{l-1}} -> R^{n_l}.
#[derive(Debug, Clone)]
pub struct DeepLinear {
    pub layers: Vec<DMatrix<f64>>,
}

impl DeepLinear {
    /// Square loss L = (1/(2n)) |W_L...W_1 X - Y|_F^2 for X (d_0 x n), Y (d_L x n), and its
    /// gradients G_l = B_l A_{l-1}^T with A_l = W_l A_{l-1}, B_L = E/n, B_{l-1} = W_l^T B_l.
    pub fn loss_grad(
        &self,
        x: &DMatrix<f64>,
        y: &DMatrix<f64>,
    ) -> Result<(f64, Vec<DMatrix<f64>>)> {
        let shape_err = |m: String| Error::Shape {
            context: "deep linear net".into(),
            message: m,
        };
        if self.layers.is_empty() {
            return Err(shape_err("no layers".into()));
        }
        let mut acts = Vec::with_capacity(self.layers.len() + 1);
        acts.push(x.clone());
        for (l, w) in self.layers.iter().enumerate() {
            let prev = acts.last().expect("non-empty");
            if w.ncols() != prev.nrows() {
                return Err(shape_err(format!(
                    "layer {} is {}x{} but its input has {} rows",
                    l + 1,
                    w.nrows(),
                    w.ncols(),
                    prev.nrows()
                )));
            }
            acts.push(w * prev);
        }
        let out = acts.last().expect("non-empty");
        if out.shape() != y.shape() {
            return Err(shape_err(format!(
                "output is {:?}, target is {:?}",
                out.shape(),
                y.shape()
            )));
        }
        let n = x.ncols() as f64;
        let e = out - y;
        let loss = 0.5 * e.norm_squared() / n;
        let mut b = e / n;
        let mut grads = vec![DMatrix::zeros(0, 0); self.layers.len()];
        for l in (0..self.layers.len()).rev() {
            grads[l] = &b * acts[l].transpose();
            if l > 0 {
                b = self.layers[l].transpose() * &b;
            }
        }
        Ok((loss, grads))
    }

    /// Balance matrices M_l = W_{l+1}^T W_{l+1} - W_l W_l^T, l = 1..L-1 (B-1).
    pub fn balance(&self) -> Vec<DMatrix<f64>> {
        balance_matrices(&self.layers)
    }

    /// One GD step with weight decay.
    pub fn step(&mut self, grads: &[DMatrix<f64>], eta: f64, lambda: f64) {
        let s = 1.0 - eta * lambda;
        for (w, g) in self.layers.iter_mut().zip(grads) {
            w.zip_apply(g, |w, g| *w = s * *w - eta * g);
        }
    }
}

/// M_l = A_{l+1}^T A_{l+1} - A_l A_l^T for a list of layer matrices (weights or gradients).
pub fn balance_matrices(layers: &[DMatrix<f64>]) -> Vec<DMatrix<f64>> {
    layers
        .windows(2)
        .map(|p| p[1].transpose() * &p[1] - &p[0] * p[0].transpose())
        .collect()
}

/// ReLU RNN h_{t+1} = relu(W h_t + U x_t + b), y_{t+1} = V h_{t+1} + c, h_0 = 0 (B-2).
#[derive(Debug, Clone)]
pub struct ReluRnn {
    /// N x N recurrent weights.
    pub w: DMatrix<f64>,
    /// N x m input weights.
    pub u: DMatrix<f64>,
    /// N biases.
    pub b: DVector<f64>,
    /// p x N readout.
    pub v: DMatrix<f64>,
    /// p readout biases.
    pub c: DVector<f64>,
}

/// Gradient of a [`ReluRnn`] loss, same shapes as the parameters.
#[derive(Debug, Clone)]
pub struct RnnGrad {
    pub w: DMatrix<f64>,
    pub u: DMatrix<f64>,
    pub b: DVector<f64>,
    pub v: DMatrix<f64>,
    pub c: DVector<f64>,
}

impl ReluRnn {
    /// Hidden size N.
    pub fn n(&self) -> usize {
        self.w.nrows()
    }

    /// Square loss L = (1/(2 B T)) sum_{t, batch} |y_t - target_t|^2 over a batch of sequences
    /// (`xs[t]` is m x B, `targets[t]` is p x B, t = 0..T-1, output after step t), and its
    /// BPTT gradient.
    pub fn loss_grad(
        &self,
        xs: &[DMatrix<f64>],
        targets: &[DMatrix<f64>],
    ) -> Result<(f64, RnnGrad)> {
        let n = self.n();
        let steps = xs.len();
        let shape_err = |m: String| Error::Shape {
            context: "ReLU RNN".into(),
            message: m,
        };
        if steps == 0 || targets.len() != steps {
            return Err(shape_err(format!(
                "{} input steps, {} target steps",
                steps,
                targets.len()
            )));
        }
        let bsz = xs[0].ncols();
        for t in 0..steps {
            if xs[t].nrows() != self.u.ncols()
                || xs[t].ncols() != bsz
                || targets[t].nrows() != self.v.nrows()
                || targets[t].ncols() != bsz
            {
                return Err(shape_err(format!(
                    "step {t}: inconsistent input/target shapes"
                )));
            }
        }
        if self.w.ncols() != n
            || self.u.nrows() != n
            || self.b.len() != n
            || self.v.ncols() != n
            || self.c.len() != self.v.nrows()
        {
            return Err(shape_err("inconsistent parameter shapes".into()));
        }
        // forward: hs[t] = h_t (N x B), t = 0..T
        let mut hs = Vec::with_capacity(steps + 1);
        hs.push(DMatrix::zeros(n, bsz));
        let mut ys = Vec::with_capacity(steps);
        for x in xs {
            let mut pre = &self.u * x;
            pre.gemm(1.0, &self.w, hs.last().expect("h_0"), 1.0);
            for mut col in pre.column_iter_mut() {
                col += &self.b;
                col.apply(|z| *z = z.max(0.0));
            }
            let mut y = &self.v * &pre;
            for mut col in y.column_iter_mut() {
                col += &self.c;
            }
            hs.push(pre);
            ys.push(y);
        }
        let scale = 1.0 / (bsz * steps) as f64;
        let mut loss = 0.0;
        let mut g = RnnGrad {
            w: DMatrix::zeros(n, n),
            u: DMatrix::zeros(n, self.u.ncols()),
            b: DVector::zeros(n),
            v: DMatrix::zeros(self.v.nrows(), n),
            c: DVector::zeros(self.v.nrows()),
        };
        let mut dpre_next: DMatrix<f64> = DMatrix::zeros(n, bsz);
        let mut dh = DMatrix::zeros(n, bsz);
        for t in (0..steps).rev() {
            let mut dy = &ys[t] - &targets[t];
            loss += 0.5 * dy.norm_squared() * scale;
            dy *= scale;
            let h = &hs[t + 1];
            g.v.gemm(1.0, &dy, &h.transpose(), 1.0);
            g.c += dy.column_sum();
            dh.gemm_tr(1.0, &self.v, &dy, 0.0);
            if t + 1 < steps {
                dh.gemm_tr(1.0, &self.w, &dpre_next, 1.0);
            }
            // dpre = dh * 1[h > 0]  (h = relu(pre), so h > 0 iff pre > 0)
            dh.zip_apply(h, |d, hv| {
                if hv <= 0.0 {
                    *d = 0.0
                }
            });
            g.w.gemm(1.0, &dh, &hs[t].transpose(), 1.0);
            g.u.gemm(1.0, &dh, &xs[t].transpose(), 1.0);
            g.b += dh.column_sum();
            std::mem::swap(&mut dpre_next, &mut dh);
        }
        Ok((loss, g))
    }

    /// Per-unit charge `Q_j = |W[j,:]|^2 + |U[j,:]|^2 + b_j^2 - |W[:,j]|^2 - |V[:,j]|^2` (B-2).
    pub fn charge(&self) -> DVector<f64> {
        charge_of(&self.w, &self.u, &self.b, &self.v)
    }

    /// Per-unit scale (the same sum with + signs).
    pub fn charge_scale(&self) -> DVector<f64> {
        DVector::from_fn(self.n(), |j, _| {
            self.w.row(j).norm_squared()
                + self.u.row(j).norm_squared()
                + self.b[j] * self.b[j]
                + self.w.column(j).norm_squared()
                + self.v.column(j).norm_squared()
        })
    }

    /// One GD step with weight decay.
    pub fn step(&mut self, g: &RnnGrad, eta: f64, lambda: f64) {
        let s = 1.0 - eta * lambda;
        self.w.zip_apply(&g.w, |p, g| *p = s * *p - eta * g);
        self.u.zip_apply(&g.u, |p, g| *p = s * *p - eta * g);
        self.b.zip_apply(&g.b, |p, g| *p = s * *p - eta * g);
        self.v.zip_apply(&g.v, |p, g| *p = s * *p - eta * g);
        self.c.zip_apply(&g.c, |p, g| *p = s * *p - eta * g);
    }
}

impl GradNorm for RnnGrad {
    fn grad_norm(&self) -> f64 {
        (self.w.norm_squared()
            + self.u.norm_squared()
            + self.b.norm_squared()
            + self.v.norm_squared()
            + self.c.norm_squared())
        .sqrt()
    }
}

impl Descend<RnnGrad> for ReluRnn {
    fn descend(&mut self, g: &RnnGrad, eta: f64, lambda: f64) {
        self.step(g, eta, lambda);
    }
}

impl RnnGrad {
    /// The same quadratic form evaluated on the gradient (the eta^2 term of B-2).
    pub fn charge_form(&self) -> DVector<f64> {
        charge_of(&self.w, &self.u, &self.b, &self.v)
    }
}

fn charge_of(
    w: &DMatrix<f64>,
    u: &DMatrix<f64>,
    b: &DVector<f64>,
    v: &DMatrix<f64>,
) -> DVector<f64> {
    DVector::from_fn(w.nrows(), |j, _| {
        w.row(j).norm_squared() + u.row(j).norm_squared() + b[j] * b[j]
            - w.column(j).norm_squared()
            - v.column(j).norm_squared()
    })
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops mirror the formulas
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use rand_distr::StandardNormal;

    fn randm(rng: &mut StdRng, r: usize, c: usize, s: f64) -> DMatrix<f64> {
        DMatrix::from_fn(r, c, |_, _| s * rng.sample::<f64, _>(StandardNormal))
    }
    fn randv(rng: &mut StdRng, r: usize, s: f64) -> DVector<f64> {
        DVector::from_fn(r, |_, _| s * rng.sample::<f64, _>(StandardNormal))
    }

    /// Central difference with step h; error O(h^2 f''') + O(eps f / h).
    fn fd(mut f: impl FnMut(f64) -> f64, x: f64, h: f64) -> f64 {
        (f(x + h) - f(x - h)) / (2.0 * h)
    }

    // FD tolerance: h = 1e-6 gives truncation ~1e-12 |f'''| and rounding ~1e-16/1e-6 = 1e-10
    // relative to the loss scale; 1e-6 absolute-plus-relative leaves margin over both.
    const FD_TOL: f64 = 1e-6;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn two_layer_gradient_matches_finite_differences(
            seed in 0u64..1000, act_i in 0usize..3, loss_i in 0usize..4, k in 1usize..6, d in 1usize..5, n in 1usize..8
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let act = [Activation::Relu, Activation::LeakyRelu(0.2), Activation::Linear][act_i];
            let loss = [Loss::Square, Loss::Logistic, Loss::Exponential, Loss::Hinge][loss_i];
            let net = TwoLayer { w: randm(&mut rng, d, k, 1.0), a: randv(&mut rng, k, 1.0), act };
            let x = randm(&mut rng, n, d, 1.0);
            let y = DVector::from_fn(n, |i, _| if (i + seed as usize).is_multiple_of(2) { 1.0 } else { -1.0 });
            // kinks (ReLU at 0, hinge at y f = 1) within reach of the FD step: skip the case
            let z = &x * &net.w;
            let f = net.predict(&x);
            prop_assume!(z.iter().all(|v| v.abs() > 1e-4));
            prop_assume!(f.iter().zip(y.iter()).all(|(f, y)| (y * f - 1.0).abs() > 1e-4));
            let mut g = TwoLayerGrad::zeros(d, k);
            let mut work = TwoLayerWork::new(n, k);
            net.grad_into(&x, &y, loss, &mut work, &mut g).unwrap();
            for j in 0..k {
                let num = fd(|t| { let mut m = net.clone(); m.a[j] = t; m.loss(&x, &y, loss).unwrap() }, net.a[j], 1e-6);
                prop_assert!((num - g.a[j]).abs() <= FD_TOL * (1.0 + num.abs()), "a[{}]: fd {} vs {}", j, num, g.a[j]);
                for i in 0..d {
                    let num = fd(|t| { let mut m = net.clone(); m.w[(i, j)] = t; m.loss(&x, &y, loss).unwrap() }, net.w[(i, j)], 1e-6);
                    prop_assert!((num - g.w[(i, j)]).abs() <= FD_TOL * (1.0 + num.abs()), "w[{},{}]: fd {} vs {}", i, j, num, g.w[(i, j)]);
                }
            }
        }

        #[test]
        fn deep_linear_gradient_matches_finite_differences(seed in 0u64..1000, depth in 2usize..5) {
            let mut rng = StdRng::seed_from_u64(seed);
            let dims: Vec<usize> = (0..=depth).map(|_| rng.random_range(1..4)).collect();
            let net = DeepLinear { layers: (0..depth).map(|l| randm(&mut rng, dims[l + 1], dims[l], 0.8)).collect() };
            let x = randm(&mut rng, dims[0], 5, 1.0);
            let y = randm(&mut rng, dims[depth], 5, 1.0);
            let (_, g) = net.loss_grad(&x, &y).unwrap();
            for l in 0..depth {
                for idx in 0..net.layers[l].len() {
                    let num = fd(|t| { let mut m = net.clone(); m.layers[l][idx] = t; m.loss_grad(&x, &y).unwrap().0 }, net.layers[l][idx], 1e-6);
                    prop_assert!((num - g[l][idx]).abs() <= FD_TOL * (1.0 + num.abs()));
                }
            }
        }

        #[test]
        fn rnn_gradient_matches_finite_differences(seed in 0u64..1000, nh in 1usize..5, steps in 1usize..5) {
            let mut rng = StdRng::seed_from_u64(seed);
            let (m, p, bsz) = (2, 2, 3);
            let net = ReluRnn { w: randm(&mut rng, nh, nh, 0.7), u: randm(&mut rng, nh, m, 1.0), b: randv(&mut rng, nh, 0.3), v: randm(&mut rng, p, nh, 1.0), c: randv(&mut rng, p, 0.3) };
            let xs: Vec<_> = (0..steps).map(|_| randm(&mut rng, m, bsz, 1.0)).collect();
            let ts: Vec<_> = (0..steps).map(|_| randm(&mut rng, p, bsz, 1.0)).collect();
            let (_, g) = net.loss_grad(&xs, &ts).unwrap();
            let lossf = |m: &ReluRnn| m.loss_grad(&xs, &ts).unwrap().0;
            macro_rules! check_param {
                ($field:ident) => {
                    for idx in 0..net.$field.len() {
                        let num = fd(|t| { let mut q = net.clone(); q.$field[idx] = t; lossf(&q) }, net.$field[idx], 1e-6);
                        prop_assert!((num - g.$field[idx]).abs() <= FD_TOL * (1.0 + num.abs()), "{}[{}]: fd {} vs {}", stringify!($field), idx, num, g.$field[idx]);
                    }
                };
            }
            check_param!(w); check_param!(u); check_param!(b); check_param!(v); check_param!(c);
        }
    }

    #[test]
    fn shape_errors_are_reported_not_panics() {
        let net = TwoLayer {
            w: DMatrix::zeros(3, 2),
            a: DVector::zeros(2),
            act: Activation::Relu,
        };
        let x = DMatrix::zeros(4, 2);
        let y = DVector::zeros(4);
        assert!(matches!(
            net.loss(&x, &y, Loss::Square),
            Err(Error::Shape { .. })
        ));
    }
}
