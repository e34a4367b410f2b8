//! Cluster count of hidden weight vectors, and the orthogonally-separable two-cluster limit
//! (THEORY II.3, B-8; Phuong & Lampert 2021).
//!
//! Cluster count (threshold-free up to two brackets): single-linkage on the cosine distance
//! 1 - cos(v_i, v_j); the m - 1 merge heights h_1 <= ... <= h_{m-1} (minimum spanning tree), bracketed
//! by h_0 = 1e-6 ("identical") and h_m = 2 (the largest cosine distance). The cut is placed in the
//! largest gap of ln h; the count is 1 + the number of merges above the cut. The gap ratio
//! h_{i+1}/h_i of the chosen cut is reported as the evidence for the count.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Serialize;

use super::nets::{Activation, FullBatch, Loss, TwoLayer, TwoLayerGrad};
use super::solvers::hard_margin_svm;
use crate::num::iterate::{iterate, Gd, Observer, Stop};
use crate::{Error, Result};

/// Result of the cluster count.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterCount {
    pub count: usize,
    /// ratio of merge heights across the chosen cut (larger = clearer)
    pub gap_ratio: f64,
    /// sorted single-linkage merge heights (cosine distances)
    pub heights: Vec<f64>,
}

/// Count clusters of directions among `v` (see module docs). Zero vectors are an error.
pub fn cosine_clusters(v: &[DVector<f64>]) -> Result<ClusterCount> {
    let m = v.len();
    if m == 0 {
        return Err(Error::Requirement("no vectors to cluster".into()));
    }
    if v.iter().any(|x| x.norm() == 0.0) {
        return Err(Error::Requirement(
            "cannot cluster a zero vector by direction".into(),
        ));
    }
    let u: Vec<DVector<f64>> = v.iter().map(|x| x.normalize()).collect();
    // Prim's MST on the complete graph
    let mut in_tree = vec![false; m];
    let mut best = vec![f64::INFINITY; m];
    best[0] = 0.0;
    let mut heights = Vec::with_capacity(m.saturating_sub(1));
    for step in 0..m {
        let mut j = usize::MAX;
        for i in 0..m {
            if !in_tree[i] && (j == usize::MAX || best[i] < best[j]) {
                j = i;
            }
        }
        in_tree[j] = true;
        if step > 0 {
            heights.push(best[j]);
        }
        for i in 0..m {
            if !in_tree[i] {
                let dist = (1.0 - u[i].dot(&u[j])).max(0.0);
                best[i] = best[i].min(dist);
            }
        }
    }
    heights.sort_by(f64::total_cmp);
    let mut br = vec![1e-6];
    br.extend(heights.iter().map(|h| h.max(1e-6)));
    br.push(2.0);
    let mut cut = 0;
    let mut ratio = 0.0;
    for i in 0..br.len() - 1 {
        let r = br[i + 1] / br[i];
        if r > ratio {
            ratio = r;
            cut = i;
        }
    }
    // merges above the cut: heights with index >= cut (br index cut+1.. are heights cut..)
    let above = heights.len() - cut.min(heights.len());
    Ok(ClusterCount {
        count: 1 + above,
        gap_ratio: ratio,
        heights,
    })
}

/// Orthogonally separable data: positives non-negative on the first d/2 coordinates, negatives
/// on the last d/2 (x_i . x_j > 0 within a class, = 0 across).
pub fn orthogonal_data(n: usize, d: usize, seed: u64) -> (DMatrix<f64>, DVector<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let h = d / 2;
    let mut x = DMatrix::zeros(n, d);
    let y = DVector::from_fn(n, |i, _| if i % 2 == 0 { 1.0 } else { -1.0 });
    for i in 0..n {
        let off = if y[i] > 0.0 { 0 } else { h };
        for c in 0..h {
            x[(i, off + c)] = 0.2 + rng.sample::<f64, _>(StandardNormal).abs();
        }
    }
    (x, y)
}

/// Outcome of a B-8 run.
#[derive(Debug, Clone, Serialize)]
pub struct TwoClusterRun {
    pub clusters: ClusterCount,
    /// min cos between active neurons with a_j > 0 and the positive class max-margin vector
    pub cos_pos: f64,
    pub cos_neg: f64,
    pub active: usize,
}

/// Settings of a B-8 run: k ReLU units, both layers N(0, init^2) from
/// `StdRng::seed_from_u64(rng_seed)` (w first, then a), GD step eta, `steps` steps.
#[derive(Debug, Clone, Copy)]
pub struct TwoClusterSettings {
    pub k: usize,
    pub init: f64,
    pub eta: f64,
    pub steps: usize,
    pub rng_seed: u64,
}

/// One-class max-margin vector of the points with label `label`: argmin |w| s.t. w . x_i >= 1
/// on that class, normalised. Errors ([`Error::Requirement`]) if the class is empty or does
/// not lie in an open half-space through the origin.
pub fn one_class_max_margin(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    label: f64,
) -> Result<DVector<f64>> {
    let idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == label).collect();
    if idx.is_empty() {
        return Err(Error::Requirement(format!(
            "no point with label {label}: the one-class max-margin vector is undefined"
        )));
    }
    let xc = DMatrix::from_fn(idx.len(), x.ncols(), |r, c| x[(idx[r], c)]);
    Ok(
        hard_margin_svm(&xc, &DVector::from_element(idx.len(), 1.0), 1e-12)?
            .w
            .normalize(),
    )
}

/// One B-8 training run on given data (settings `s`; `s.steps` is ignored): a two-layer ReLU net
/// (both layers) trained by GD on the mean logistic loss from small init, measured at each of
/// the increasing step counts `checkpoints` (the active neurons against the one-class
/// max-margin vectors, solved before training so data without them fails fast);
/// `observe(step, net, loss)` after every step. The B-8 reference is
/// `crate::bias::spec::clusters::Spec::reference`.
pub fn two_cluster_checkpoints(
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    s: &TwoClusterSettings,
    checkpoints: &[usize],
    observe: impl FnMut(usize, &TwoLayer, f64),
) -> Result<Vec<TwoClusterRun>> {
    let (d, k) = (x.ncols(), s.k);
    let (wp, wn) = (
        one_class_max_margin(x, y, 1.0)?,
        one_class_max_margin(x, y, -1.0)?,
    );
    let mut rng = StdRng::seed_from_u64(s.rng_seed);
    let mut net = TwoLayer {
        w: DMatrix::from_fn(d, k, |_, _| s.init * rng.sample::<f64, _>(StandardNormal)),
        a: DVector::from_fn(k, |_, _| s.init * rng.sample::<f64, _>(StandardNormal)),
        act: Activation::Relu,
    };
    let mut marks = Checkpoints {
        checkpoints,
        next: 0,
        wp,
        wn,
        out: Vec::with_capacity(checkpoints.len()),
        observe,
    };
    marks.at(0, &net)?;
    let steps = checkpoints.last().copied().unwrap_or(0);
    iterate(
        &mut FullBatch::new(x, y, Loss::Logistic, k),
        &mut Gd {
            eta: s.eta,
            lambda: 0.0,
        },
        &mut net,
        &mut TwoLayerGrad::zeros(d, k),
        &Stop::steps(steps, "two-cluster GD").hint("reduce eta"),
        &mut marks,
    )?;
    Ok(marks.out)
}

/// The observer of [`two_cluster_checkpoints`]: the caller's `observe(step, net, loss)` after
/// every step, and the B-8 measurement at each checkpoint.
struct Checkpoints<'c, F> {
    checkpoints: &'c [usize],
    next: usize,
    /// one-class max-margin vectors of the two classes
    wp: DVector<f64>,
    wn: DVector<f64>,
    out: Vec<TwoClusterRun>,
    observe: F,
}

impl<F> Checkpoints<'_, F> {
    /// Measure the net at every checkpoint equal to `step` (steps taken).
    fn at(&mut self, step: usize, net: &TwoLayer) -> Result<()> {
        while self.checkpoints.get(self.next) == Some(&step) {
            self.out.push(measure(net, &self.wp, &self.wn)?);
            self.next += 1;
        }
        Ok(())
    }
}

impl<'a, F: FnMut(usize, &TwoLayer, f64)> Observer<FullBatch<'a>> for Checkpoints<'_, F> {
    fn after(&mut self, s: usize, net: &TwoLayer, _: &TwoLayerGrad, l: f64) -> Result<()> {
        (self.observe)(s, net, l);
        self.at(s, net)
    }
}

/// Active neurons (|a_j| |w_j| > 5% of the largest), their cosine clusters and the smallest
/// cosine of an active neuron with its own class's max-margin vector (`wp`, `wn`).
fn measure(net: &TwoLayer, wp: &DVector<f64>, wn: &DVector<f64>) -> Result<TwoClusterRun> {
    let k = net.k();
    let norms: Vec<f64> = (0..k)
        .map(|j| net.w.column(j).norm() * net.a[j].abs())
        .collect();
    let top = norms.iter().cloned().fold(0.0, f64::max);
    let active: Vec<usize> = (0..k).filter(|&j| norms[j] > 0.05 * top).collect();
    let (mut cp, mut cn) = (1.0f64, 1.0f64);
    let mut vecs = Vec::new();
    for &j in &active {
        let wj = net.w.column(j).normalize();
        if net.a[j] > 0.0 {
            cp = cp.min(wj.dot(wp));
        } else {
            cn = cn.min(wj.dot(wn));
        }
        vecs.push(net.w.column(j).into_owned());
    }
    Ok(TwoClusterRun {
        clusters: cosine_clusters(&vecs)?,
        cos_pos: cp,
        cos_neg: cn,
        active: active.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_count_of_known_configurations() {
        let e = |v: [f64; 3]| DVector::from_column_slice(&v);
        let one = vec![e([1.0, 0.0, 0.0]), e([1.0, 1e-3, 0.0]), e([1.0, 0.0, 2e-3])];
        assert_eq!(cosine_clusters(&one).unwrap().count, 1);
        let two = vec![
            e([1.0, 0.0, 0.0]),
            e([1.0, 1e-2, 0.0]),
            e([0.0, 1.0, 0.0]),
            e([0.0, 1.0, 1e-2]),
        ];
        assert_eq!(cosine_clusters(&two).unwrap().count, 2);
        let three = vec![
            e([1.0, 0.0, 0.0]),
            e([0.0, 1.0, 0.0]),
            e([0.0, 0.0, 1.0]),
            e([0.0, 0.0, 1.0]),
        ];
        assert_eq!(cosine_clusters(&three).unwrap().count, 3);
        assert!(cosine_clusters(&[e([0.0, 0.0, 0.0])]).is_err());
    }
}
