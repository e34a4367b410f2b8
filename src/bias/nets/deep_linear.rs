//! Deep linear nets x -> W_L ... W_1 x (THEORY II.1, B-1): square loss, gradient, the balance
//! matrices M_l.

use nalgebra::DMatrix;

use crate::num::iterate::{Descend, GradNorm};
use crate::{Error, Result};

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
