//! The ReLU RNN h_{t+1} = relu(W h_t + U x_t + b), y = V h + c (THEORY II.1, B-2): loss, BPTT
//! gradient, the per-unit charge Q_j.

use nalgebra::{DMatrix, DVector};

use crate::num::iterate::{Descend, GradNorm};
use crate::{Error, Result};

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

    /// The batch size of `xs`, after checking that the inputs, targets and parameters have
    /// consistent shapes (T >= 1 steps of m x B inputs and p x B targets).
    fn check_shapes(&self, xs: &[DMatrix<f64>], targets: &[DMatrix<f64>]) -> Result<usize> {
        let (n, steps) = (self.n(), xs.len());
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
        Ok(bsz)
    }

    /// Square loss L = (1/(2 B T)) sum_{t, batch} |y_t - target_t|^2 over a batch of sequences
    /// (`xs[t]` is m x B, `targets[t]` is p x B, t = 0..T-1, output after step t), and its
    /// BPTT gradient.
    pub fn loss_grad(
        &self,
        xs: &[DMatrix<f64>],
        targets: &[DMatrix<f64>],
    ) -> Result<(f64, RnnGrad)> {
        let (n, steps) = (self.n(), xs.len());
        let bsz = self.check_shapes(xs, targets)?;
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
