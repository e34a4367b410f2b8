//! Diagonal linear networks (THEORY II.4, B-10, B-11): beta = w+^2 - w-^2 (here u = w+, v = w-),
//! square loss L = |X beta - y|^2 / (2n), init u = v = alpha.
//!
//! One (S)GD step with batch gradient g = X_B^T (X_B beta - y_B) / |B| multiplies u by (1 - 2 eta g)
//! and v by (1 + 2 eta g) coordinatewise, so
//!  - u v shrinks by exactly (1 - 4 eta^2 g^2): alpha_T^2 = u_T v_T = alpha^2 prod_k (1 - 4 eta^2 g_k^2);
//!  - ln(u/v) = -2 sum_k atanh(2 eta g_k) = X^T nu + delta with nu = -4 eta sum_k r_k (in the row
//!    space) and delta = -2 sum_k (atanh(2 eta g_k) - 2 eta g_k) = O(eta^3);
//!  - beta_T = 2 alpha_T^2 sinh(X^T nu + delta): the KKT point of
//!    min_{X beta = y} sum alpha_{T,i}^2 q(beta_i / alpha_{T,i}^2) - delta . beta (the exact mirror form).
//!
//! With delta dropped this is the argmin of Q_{alpha_inf} (B-10 with the effective alpha).

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::num::iterate::{iterate, Minibatches, Problem, Stepper, Stop};
use crate::{Error, Result};

/// Outcome of a diagonal-net run.
#[derive(Debug, Clone, Serialize)]
pub struct DiagRun {
    pub beta: DVector<f64>,
    /// ln alpha_T,i^2 = ln(u_i v_i) at the end (the effective alpha_inf, per coordinate)
    pub ln_alpha2: DVector<f64>,
    /// the O(eta^3) tilt delta
    pub delta: DVector<f64>,
    /// max over steps and coordinates of |u'v' - uv(1 - 4 eta^2 g^2)| / |u'v'|
    pub max_identity_residual: f64,
    pub steps: usize,
    /// final full-batch loss
    pub loss: f64,
}

impl DiagRun {
    /// mean_i alpha_T,i^2 / alpha^2 (the shrinkage of the effective scale).
    pub fn alpha2_ratio(&self, alpha: f64) -> f64 {
        self.ln_alpha2
            .iter()
            .map(|l| (l - 2.0 * alpha.ln()).exp())
            .sum::<f64>()
            / self.ln_alpha2.len() as f64
    }
}

/// Settings of a diagonal-net run.
#[derive(Debug, Clone, Copy)]
pub struct DiagSettings {
    pub alpha: f64,
    pub eta: f64,
    /// minibatch size (n = GD); batches are reshuffled every epoch
    pub batch: usize,
    pub max_steps: usize,
    /// stop when the full-batch loss falls below this
    pub loss_tol: f64,
    pub seed: u64,
}

/// The diagonal net's state: u = w+, v = w-, beta = u^2 - v^2 and the accumulated tilt delta.
#[derive(Debug, Clone)]
pub struct DiagNet {
    pub u: DVector<f64>,
    pub v: DVector<f64>,
    pub beta: DVector<f64>,
    pub delta: DVector<f64>,
}

/// The problem: the full-batch loss |X beta - y|^2 / (2n) with the gradient of a (reshuffled)
/// minibatch, X_B^T (X_B beta - y_B) / |B|.
struct DiagProblem<'a> {
    x: &'a DMatrix<f64>,
    y: &'a DVector<f64>,
    /// the full residual X beta - y
    r: DVector<f64>,
    batches: Minibatches,
}

impl Problem for DiagProblem<'_> {
    type Params = DiagNet;
    type Grad = DVector<f64>;

    fn loss_grad(&mut self, _: usize, net: &DiagNet, g: &mut DVector<f64>) -> Result<f64> {
        let loss = self.full_loss(net);
        if self.batches.full() {
            g.gemv_tr(1.0 / self.x.nrows() as f64, self.x, &self.r, 0.0);
        } else {
            g.fill(0.0);
            let batch = self.batches.next_batch();
            for &i in batch {
                let ri = self.x.row(i).transpose().dot(&net.beta) - self.y[i];
                g.axpy(ri / batch.len() as f64, &self.x.row(i).transpose(), 1.0);
            }
        }
        Ok(loss)
    }

    fn loss(&mut self, net: &DiagNet) -> Result<Option<f64>> {
        Ok(Some(self.full_loss(net)))
    }
}

impl DiagProblem<'_> {
    fn full_loss(&mut self, net: &DiagNet) -> f64 {
        self.r.gemv(1.0, self.x, &net.beta, 0.0);
        self.r -= self.y;
        0.5 * self.r.norm_squared() / self.x.nrows() as f64
    }
}

/// The (S)GD step u *= 1 - 2 eta g, v *= 1 + 2 eta g, tracking the residual of the u v identity.
struct DiagStep {
    eta: f64,
    /// max over steps and coordinates of |u'v' - uv(1 - 4 eta^2 g^2)| / |u'v'|
    max_res: f64,
}

impl Stepper<DiagProblem<'_>> for DiagStep {
    fn step(&mut self, step: usize, loss: f64, net: &mut DiagNet, g: &DVector<f64>) -> Result<()> {
        for i in 0..g.len() {
            let e = 2.0 * self.eta * g[i];
            if e.abs() >= 1.0 {
                return Err(Error::Diverged {
                    what: "diagonal net (S)GD".into(),
                    step,
                    loss,
                    hint: format!(
                        "2 eta |g_i| = {:.3} >= 1 flips a sign of w+ or w-; reduce eta",
                        e.abs()
                    ),
                });
            }
            let uv = net.u[i] * net.v[i];
            net.u[i] *= 1.0 - e;
            net.v[i] *= 1.0 + e;
            let after = net.u[i] * net.v[i];
            let pred = uv * (1.0 - e * e);
            self.max_res = self.max_res.max((after - pred).abs() / after.abs());
            net.delta[i] -= 2.0 * (e.atanh() - e);
            net.beta[i] = net.u[i] * net.u[i] - net.v[i] * net.v[i];
        }
        Ok(())
    }
}

/// Train the diagonal net; `x` is n x d (rows are samples).
pub fn train_diagonal(x: &DMatrix<f64>, y: &DVector<f64>, s: &DiagSettings) -> Result<DiagRun> {
    let (n, d) = (x.nrows(), x.ncols());
    if y.len() != n {
        return Err(Error::Shape {
            context: "diagonal net".into(),
            message: format!("X has {n} rows, y has {}", y.len()),
        });
    }
    let batches = Minibatches::new(
        n,
        s.batch,
        StdRng::seed_from_u64(s.seed),
        "diagonal net minibatch",
    )?;
    let mut problem = DiagProblem {
        x,
        y,
        r: DVector::zeros(n),
        batches,
    };
    let mut net = DiagNet {
        u: DVector::from_element(d, s.alpha),
        v: DVector::from_element(d, s.alpha),
        beta: DVector::zeros(d),
        delta: DVector::zeros(d),
    };
    let mut step = DiagStep {
        eta: s.eta,
        max_res: 0.0,
    };
    let stop = Stop::steps(s.max_steps, "diagonal net (S)GD")
        .loss_tol(s.loss_tol)
        .hint("reduce eta");
    let mut g = DVector::zeros(d);
    let out = iterate(&mut problem, &mut step, &mut net, &mut g, &stop, &mut ())?;
    let ln_alpha2 = DVector::from_fn(d, |i, _| net.u[i].ln() + net.v[i].ln());
    Ok(DiagRun {
        beta: net.beta,
        ln_alpha2,
        delta: net.delta,
        max_identity_residual: step.max_res,
        steps: out.steps,
        loss: out.loss.unwrap_or(f64::NAN),
    })
}

/// Gaussian sparse regression: X n x d with N(0, 1/d)-scaled rows... entries N(0,1)/sqrt(d) * scale,
/// beta* with `k` non-zeros of size +-`size`, y = X beta*.
pub fn sparse_regression(
    n: usize,
    d: usize,
    k: usize,
    size: f64,
    seed: u64,
) -> (DMatrix<f64>, DVector<f64>, DVector<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = DMatrix::from_fn(n, d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let mut beta = DVector::zeros(d);
    for i in 0..k.min(d) {
        beta[i] = if rng.random::<bool>() { size } else { -size };
    }
    let y = &x * &beta;
    (x, y, beta)
}

/// Minimum-l2 interpolator X^T (X X^T)^{-1} y.
pub fn min_l2(x: &DMatrix<f64>, y: &DVector<f64>) -> Result<DVector<f64>> {
    let chol = (x * x.transpose())
        .cholesky()
        .ok_or_else(|| Error::Singular {
            context: "X X^T (min-l2 interpolator)".into(),
            pivot: 0.0,
            threshold: 0.0,
        })?;
    Ok(x.transpose() * chol.solve(y))
}

/// Reference setting of the checks: n = 20, d = 40, 3-sparse beta* of size 1.
pub fn reference_data(seed: u64) -> (DMatrix<f64>, DVector<f64>, DVector<f64>) {
    sparse_regression(20, 40, 3, 1.0, seed)
}

/// Relative duality gap of `beta` for min |beta|_1 s.t. X beta = y: the dual is max y . nu s.t.
/// |X^T nu|_inf <= 1; the certificate is the least-squares nu with X^T nu ~ sign(beta) on the
/// support, scaled to feasibility.
pub fn l1_gap(x: &DMatrix<f64>, y: &DVector<f64>, beta: &DVector<f64>) -> Result<f64> {
    let l1 = beta.abs().sum();
    let thr = 1e-6 * beta.amax();
    let supp: Vec<usize> = (0..beta.len()).filter(|&i| beta[i].abs() > thr).collect();
    // solve X_S^T nu = sign(beta_S) in least squares
    let xs = DMatrix::from_fn(x.nrows(), supp.len(), |r, c| x[(r, supp[c])]);
    let s = DVector::from_fn(supp.len(), |i, _| beta[supp[i]].signum());
    // capped (nalgebra's uncapped SVD can iterate without end on pathological input); eps
    // 1e-15 is rounding level, 10_000 sweeps far above the ~2 n a healthy SVD needs
    let svd = xs
        .transpose()
        .try_svd(true, true, 1e-15, 10_000)
        .ok_or_else(|| Error::NoConvergence {
            solver: "SVD of X_S^T (l1 certificate)".into(),
            iterations: 10_000,
            residual: f64::NAN,
            tolerance: 1e-15,
        })?;
    let nu = svd
        .solve(&s, 1e-12)
        .map_err(|e| Error::Numerical(format!("l1 certificate: {e}")))?;
    let scale = (x.transpose() * &nu).amax().max(1.0);
    let dual = y.dot(&nu) / scale;
    Ok((l1 - dual) / l1)
}

/// Tolerance of the exact mirror form: the trained beta_T has the KKT form exactly; it differs
/// from the argmin only through the remaining residual X beta_T - y (loss < 1e-26 => |r| ~ 1e-12)
/// and the Newton tolerance 1e-14; 1e-10 leaves margin for the conditioning of X.
pub const MIRROR_TOL: f64 = 1e-10;
