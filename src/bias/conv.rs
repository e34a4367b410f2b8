//! Max-pooling convolutional detector of the pattern-detection setting (THEORY II.5, B-15):
//! f(x) = sum_j v_j max_p relu(w_j . x_p) over the patches x_p of a sample; filters w_j trained,
//! v_j fixed (+1 for the first k/2 filters, -1 for the rest, as in Brutzkus & Globerson 2019).
//! Gradient (hand-written): d f / d w_j = v_j 1\[z_j > 0\] x_{p*_j}, p*_j = argmax_p w_j . x_p.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

use super::cluster::cosine_clusters;
use super::nets::Loss;
use super::pattern_data::{PatternSet, PatternTask};
use super::stats::fmt_list;
use crate::compare::Row;
use crate::num::iterate::{iterate, GradNorm, Problem, Stepper, Stop};
use crate::{Error, Result};

/// The detector: `w` is k x d (row j = filter w_j), `v` the fixed output weights.
#[derive(Debug, Clone)]
pub struct ConvDetector {
    pub w: DMatrix<f64>,
    pub v: DVector<f64>,
}

/// Scratch space for one data set (no allocation in the training loop).
#[derive(Debug, Clone)]
pub struct ConvWork {
    /// pre-activations z[(i t + p, j)] = w_j . x_{i,p}
    z: DMatrix<f64>,
    /// per-sample d loss / d f, divided by n
    coef: DVector<f64>,
}

impl ConvWork {
    pub fn new(n: usize, t: usize, k: usize) -> Self {
        Self {
            z: DMatrix::zeros(n * t, k),
            coef: DVector::zeros(n),
        }
    }
}

impl ConvDetector {
    /// k filters (k even, first half positive) with i.i.d. N(0, init^2) entries.
    pub fn new(k: usize, d: usize, init: f64, seed: u64) -> Result<Self> {
        if k < 2 || !k.is_multiple_of(2) {
            return Err(Error::Requirement(format!(
                "conv detector needs an even number k >= 2 of filters, got {k}"
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        Ok(Self {
            w: DMatrix::from_fn(k, d, |_, _| init * rng.sample::<f64, _>(StandardNormal)),
            v: DVector::from_fn(k, |j, _| if j < k / 2 { 1.0 } else { -1.0 }),
        })
    }

    pub fn k(&self) -> usize {
        self.w.nrows()
    }

    fn check_shape(&self, s: &PatternSet) -> Result<()> {
        if s.x.ncols() != self.w.ncols() || s.x.nrows() != s.n() * s.t {
            return Err(Error::Shape {
                context: "conv detector".into(),
                message: format!(
                    "patches {}x{} for n = {}, t = {}; filters have d = {}",
                    s.x.nrows(),
                    s.x.ncols(),
                    s.n(),
                    s.t,
                    self.w.ncols()
                ),
            });
        }
        Ok(())
    }

    /// f(x_i) for every sample.
    pub fn predict(&self, s: &PatternSet) -> Result<DVector<f64>> {
        self.check_shape(s)?;
        let z = &s.x * self.w.transpose();
        Ok(DVector::from_fn(s.n(), |i, _| self.value_of(&z, i, s.t)))
    }

    fn value_of(&self, z: &DMatrix<f64>, i: usize, t: usize) -> f64 {
        let mut f = 0.0;
        for j in 0..self.k() {
            let mut m = 0.0f64;
            for p in 0..t {
                m = m.max(z[(i * t + p, j)]);
            }
            f += self.v[j] * m;
        }
        f
    }

    /// Mean loss over the set and its gradient with respect to `w` (written into `g`, k x d).
    pub fn grad_into(
        &self,
        s: &PatternSet,
        loss: Loss,
        work: &mut ConvWork,
        g: &mut DMatrix<f64>,
    ) -> Result<f64> {
        self.check_shape(s)?;
        let (n, t, k) = (s.n(), s.t, self.k());
        if work.z.shape() != (n * t, k) || g.shape() != self.w.shape() {
            return Err(Error::Shape {
                context: "conv detector work space".into(),
                message: "work space or gradient of the wrong size".into(),
            });
        }
        work.z.gemm(1.0, &s.x, &self.w.transpose(), 0.0);
        let mut l = 0.0;
        for i in 0..n {
            let f = self.value_of(&work.z, i, t);
            l += loss.value(f, s.y[i]);
            work.coef[i] = loss.deriv(f, s.y[i]) / n as f64;
        }
        g.fill(0.0);
        for j in 0..k {
            for i in 0..n {
                let (mut best, mut arg) = (0.0f64, usize::MAX);
                for p in 0..t {
                    let zz = work.z[(i * t + p, j)];
                    if zz > best {
                        best = zz;
                        arg = i * t + p;
                    }
                }
                if arg != usize::MAX {
                    let c = work.coef[i] * self.v[j];
                    for c2 in 0..self.w.ncols() {
                        g[(j, c2)] += c * s.x[(arg, c2)];
                    }
                }
            }
        }
        Ok(l / n as f64)
    }

    /// Fraction of samples with sign f != y (f = 0 counts as an error).
    pub fn error_rate(&self, s: &PatternSet) -> Result<f64> {
        let f = self.predict(s)?;
        let wrong = (0..s.n()).filter(|&i| f[i] * s.y[i] <= 0.0).count();
        Ok(wrong as f64 / s.n() as f64)
    }
}

/// Settings of a B-15 training run.
#[derive(Debug, Clone, Copy)]
pub struct PatternRun {
    pub k: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub init: f64,
    pub eta: f64,
    pub steps: usize,
    pub seed: u64,
}

/// Outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct PatternOutcome {
    pub k: usize,
    pub train_error: f64,
    pub test_error: f64,
    /// active filters: |w_j| > 5% of the largest filter norm
    pub active: usize,
    /// fraction of active filters whose best cosine with a true pattern exceeds `COS_ALIGNED`
    pub aligned: f64,
    /// fraction of active filters whose direction lies within cos > `COS_ALIGNED` of the span
    /// of the true patterns of its own sign (positive patterns for v_j > 0)
    pub span_aligned: f64,
    /// cosine cluster count of the active filters (`cluster::cosine_clusters`)
    pub clusters: usize,
}

/// Orthonormal basis of span(vs) by Gram-Schmidt (directions below 1e-10 relative dropped).
fn span_basis(vs: &[&DVector<f64>]) -> Vec<DVector<f64>> {
    let mut basis: Vec<DVector<f64>> = Vec::new();
    for v in vs {
        let mut u = (*v).clone();
        for b in &basis {
            u -= b * b.dot(&u);
        }
        if u.norm() > 1e-10 * v.norm() {
            basis.push(u.normalize());
        }
    }
    basis
}

/// Cosine above which a filter counts as sitting on a true pattern (see the claim file).
pub const COS_ALIGNED: f64 = 0.95;

/// The mean logistic loss of a [`ConvDetector`] on a training set, for [`iterate`].
struct ConvLoss<'a> {
    set: &'a PatternSet,
    work: ConvWork,
}

/// The gradient of [`ConvLoss`] with respect to the filters (k x d).
struct FilterGrad(DMatrix<f64>);

impl GradNorm for FilterGrad {
    fn grad_norm(&self) -> f64 {
        self.0.norm()
    }
}

impl Problem for ConvLoss<'_> {
    type Params = ConvDetector;
    type Grad = FilterGrad;
    fn loss_grad(&mut self, _: usize, net: &ConvDetector, g: &mut FilterGrad) -> Result<f64> {
        net.grad_into(self.set, Loss::Logistic, &mut self.work, &mut g.0)
    }
}

/// GD on the filters only (the output weights v stay fixed): w <- w - eta g.
struct FilterGd {
    eta: f64,
}

impl Stepper<ConvLoss<'_>> for FilterGd {
    fn step(&mut self, _: usize, _: f64, net: &mut ConvDetector, g: &FilterGrad) -> Result<()> {
        let eta = self.eta;
        net.w.zip_apply(&g.0, |w, gw| *w -= gw * eta);
        Ok(())
    }
}

/// Train by full-batch GD on the mean logistic loss and evaluate on a fresh test set.
pub fn pattern_run(task: &PatternTask, r: &PatternRun) -> Result<PatternOutcome> {
    let train = task.sample(r.n_train, r.seed)?;
    let test = task.sample(r.n_test, r.seed + 10_000)?;
    let mut net = ConvDetector::new(r.k, task.d(), r.init, r.seed + 20_000)?;
    let mut problem = ConvLoss {
        set: &train,
        work: ConvWork::new(r.n_train, task.t, r.k),
    };
    iterate(
        &mut problem,
        &mut FilterGd { eta: r.eta },
        &mut net,
        &mut FilterGrad(DMatrix::zeros(r.k, task.d())),
        &Stop::steps(r.steps, "conv detector GD").hint("reduce eta"),
        &mut (),
    )?;
    let norms: Vec<f64> = (0..r.k).map(|j| net.w.row(j).norm()).collect();
    let top = norms.iter().cloned().fold(0.0, f64::max);
    let act: Vec<usize> = (0..r.k).filter(|&j| norms[j] > 0.05 * top).collect();
    let own = |sign: bool| {
        let vs: Vec<&DVector<f64>> = (0..task.patterns.len())
            .filter(|&i| task.positive[i] == sign)
            .map(|i| &task.patterns[i])
            .collect();
        span_basis(&vs)
    };
    let (pos_basis, neg_basis) = (own(true), own(false));
    let mut hit = 0;
    let mut span_hit = 0;
    let mut vecs = Vec::new();
    for &j in &act {
        let wj = net.w.row(j).transpose();
        let best = task
            .patterns
            .iter()
            .map(|p| wj.dot(p) / (norms[j] * p.norm()))
            .fold(f64::NEG_INFINITY, f64::max);
        hit += (best > COS_ALIGNED) as usize;
        let basis = if net.v[j] > 0.0 {
            &pos_basis
        } else {
            &neg_basis
        };
        let proj = basis.iter().map(|b| b.dot(&wj).powi(2)).sum::<f64>().sqrt();
        span_hit += (proj / norms[j] > COS_ALIGNED) as usize;
        vecs.push(wj);
    }
    Ok(PatternOutcome {
        k: r.k,
        train_error: net.error_rate(&train)?,
        test_error: net.error_rate(&test)?,
        active: act.len(),
        aligned: hit as f64 / act.len().max(1) as f64,
        span_aligned: span_hit as f64 / act.len().max(1) as f64,
        clusters: if vecs.is_empty() {
            0
        } else {
            cosine_clusters(&vecs)?.count
        },
    })
}

/// Test error, alignment and cluster counts over widths and seeds: `out[w][s]`.
pub fn width_sweep(
    task_of: impl Fn(u64) -> PatternTask,
    base: &PatternRun,
    widths: &[usize],
    seeds: &[u64],
) -> Result<Vec<Vec<PatternOutcome>>> {
    widths
        .iter()
        .map(|&k| {
            seeds
                .iter()
                .map(|&seed| pattern_run(&task_of(seed), &PatternRun { k, seed, ..*base }))
                .collect()
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn sd(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - 1.0).max(1.0)).sqrt()
}

/// The reference settings of the B-15 check (claim file): widths, seeds, GD.
pub const B15_WIDTHS: [usize; 3] = [2, 8, 32];
pub const B15_SEEDS: [u64; 5] = [0, 1, 2, 3, 4];

/// B-15 base run: small training set (the regime where width matters), fresh test set.
pub fn b15_base() -> PatternRun {
    PatternRun {
        k: 2,
        n_train: 12,
        n_test: 2000,
        init: 1e-2,
        eta: 0.1,
        steps: 2000,
        seed: 0,
    }
}

/// Test-error drop (smallest minus largest width, mean over seeds) that B-15 asserts.
pub const B15_ERROR_DROP: f64 = 0.05;
/// Our finding for the orthogonal-pattern task: mean single-pattern aligned fraction at k = 32.
pub const B15_OPD_ALIGNED_FINDING: f64 = 0.641;
/// Mean aligned fraction of active filters at the largest width that B-15 asserts.
pub const B15_ALIGNED: f64 = 0.8;

/// Rows of one task: (a) the width trend of the test error, (b) filters on single true patterns
/// (`finding`: our documented mean aligned fraction and its relative tolerance if the claim is
/// disputed for this task), (c) filters in the span of their own-sign patterns.
pub fn trend_rows(
    name: &str,
    out: &[Vec<PatternOutcome>],
    chance: f64,
    finding: Option<(f64, f64)>,
) -> Vec<Row> {
    let errs: Vec<Vec<f64>> = out
        .iter()
        .map(|row| row.iter().map(|o| o.test_error).collect())
        .collect();
    let summary: Vec<String> = out
        .iter()
        .zip(&errs)
        .map(|(row, e)| {
            format!(
                "k={}: {:.3} +- {:.3} (train {:.2})",
                row[0].k,
                mean(e),
                sd(e),
                mean(&row.iter().map(|o| o.train_error).collect::<Vec<_>>())
            )
        })
        .collect();
    let last = out.len() - 1;
    let kmax = out[last][0].k;
    let drop = mean(&errs[0]) - mean(&errs[last]);
    let aligned: Vec<f64> = out[last].iter().map(|o| o.aligned).collect();
    let span: Vec<f64> = out[last].iter().map(|o| o.span_aligned).collect();
    let clusters: Vec<f64> = out[last].iter().map(|o| o.clusters as f64).collect();
    let active: Vec<f64> = out[last].iter().map(|o| o.active as f64).collect();
    let mono = (0..last).all(|w| mean(&errs[w + 1]) <= mean(&errs[w]));
    let align_label = format!(
        "{name}: k={kmax} mean fraction of active filters with best cos to a true pattern > {COS_ALIGNED} (claim: ~1, >= {B15_ALIGNED})"
    );
    let align_note = format!(
        "per seed {} (chance for a random direction {chance:.2e}); active {}; cosine cluster counts {}",
        fmt_list(&aligned),
        fmt_list(&active),
        fmt_list(&clusters)
    );
    let align_row = match finding {
        None => Row::holds(align_label, mean(&aligned) >= B15_ALIGNED, align_note),
        Some((f, tol)) => {
            let r = Row::disputed(align_label, 1.0, mean(&aligned), 1.0 - B15_ALIGNED, f, tol);
            let n = format!("{}; {align_note}", r.note);
            r.note(n)
        }
    };
    vec![
        Row::holds(
            format!(
                "{name}: mean test error k={} minus k={kmax} >= {B15_ERROR_DROP}",
                out[0][0].k
            ),
            drop >= B15_ERROR_DROP,
            format!(
                "drop {drop:.3}; {} ({} seeds); monotone in k: {mono}",
                summary.join("; "),
                errs[0].len()
            ),
        ),
        align_row,
        Row::holds(
            format!(
                "{name}: k={kmax} mean fraction of active filters within cos > {COS_ALIGNED} of the span of their own-sign patterns >= {B15_ALIGNED}"
            ),
            mean(&span) >= B15_ALIGNED,
            format!("per seed {}", fmt_list(&span)),
        ),
    ]
}

/// Probability that a uniformly random direction has best cosine > `COS_ALIGNED` with one of
/// the four XOR patterns (2-D: 4 arcs of half-width acos(c) around directions 90 deg apart).
pub fn xor_alignment_chance() -> f64 {
    (8.0 * COS_ALIGNED.acos() / std::f64::consts::TAU).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::super::pattern_data::{orthogonal_task, xor_task};
    use super::*;

    fn fd_check(task: &PatternTask, loss: Loss) {
        let s = task.sample(7, 3).unwrap();
        let net = ConvDetector::new(6, task.d(), 0.5, 9).unwrap();
        let mut work = ConvWork::new(7, task.t, 6);
        let mut g = DMatrix::zeros(6, task.d());
        net.grad_into(&s, loss, &mut work, &mut g).unwrap();
        let h = 1e-6;
        for j in 0..6 {
            for c in 0..task.d() {
                let mut a = net.clone();
                a.w[(j, c)] += h;
                let mut b = net.clone();
                b.w[(j, c)] -= h;
                let mut g2 = g.clone();
                let la = a.grad_into(&s, loss, &mut work, &mut g2).unwrap();
                let lb = b.grad_into(&s, loss, &mut work, &mut g2).unwrap();
                let fd = (la - lb) / (2.0 * h);
                // central difference: O(h^2) truncation + 1e-16/h rounding
                assert!(
                    (fd - g[(j, c)]).abs() < 1e-8,
                    "{j} {c}: {fd} vs {}",
                    g[(j, c)]
                );
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // random Gaussian filters: argmax and ReLU kinks are almost surely not within h
        fd_check(&orthogonal_task(5, 3, 1), Loss::Logistic);
        fd_check(&orthogonal_task(5, 3, 1), Loss::Square);
        fd_check(&xor_task(3), Loss::Logistic);
    }

    #[test]
    fn exact_xor_detector_classifies_everything() {
        // one filter per pattern, scaled: positive filters on (1,1),(-1,-1), negative on the rest
        let task = xor_task(5);
        let s = task.sample(500, 1).unwrap();
        let net = ConvDetector {
            w: DMatrix::from_row_slice(4, 2, &[1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0]),
            v: DVector::from_column_slice(&[3.0, 3.0, -1.0, -1.0]),
        };
        assert_eq!(net.error_rate(&s).unwrap(), 0.0);
        // a width-2 net (one filter per sign) cannot detect both (1,1) and (-1,-1)
        let small = ConvDetector {
            w: DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 1.0, -1.0]),
            v: DVector::from_column_slice(&[2.0, -1.0]),
        };
        assert!(small.error_rate(&s).unwrap() > 0.1);
    }

    #[test]
    fn shape_errors_and_odd_width() {
        assert!(ConvDetector::new(3, 2, 0.1, 0).is_err());
        let net = ConvDetector::new(4, 3, 0.1, 0).unwrap();
        let s = xor_task(2).sample(5, 0).unwrap();
        assert!(net.predict(&s).is_err());
    }

    #[test]
    fn alignment_chance_level() {
        // 8 acos(0.95) / 2 pi
        assert!((xor_alignment_chance() - 0.40433).abs() < 1e-4);
    }
}
