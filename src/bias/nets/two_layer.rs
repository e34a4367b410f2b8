//! The two-layer net f(x) = sum_j a_j sigma(w_j . x) (THEORY II.1, B-1): loss, hand-written
//! gradient (fused loops, no allocation), (S)GD step, balance, and its full-batch problem for
//! [`crate::num::iterate`].

use nalgebra::{DMatrix, DVector};

use super::{Activation, Loss};
use crate::num::iterate::{Descend, GradNorm, Problem};
use crate::{Error, Result};

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
