//! Gallery figures of the implicit-bias results (THEORY Part II), each computed with the
//! [`crate::bias`] trainers and solvers and drawn through [`crate::plot::lines`]:
//!
//! - [`norm_growth`]: B-6, |w(t)| against ln t for separable logistic regression (slope |w_hat| = 1),
//!   from a `bias_margin` model file (`models/bias-margin.toml`);
//! - [`balance_drift`]: B-1, drift of the balance D_j at fixed horizon eta*T against eta (slope 1),
//!   from a `bias_balance` model file with `drift_etas` (`models/bias-balance-drift.toml`);
//! - [`clusters`]: B-3/B-8, cosine similarities of the hidden weight vectors of a leaky-ReLU
//!   student trained from small init, and their projection on the top two principal directions,
//!   from a `bias_agreement` model file (`models/bias-student-clusters.toml`);
//! - [`diagonal_bias`]: B-10, |beta|_1 of argmin Q_alpha against alpha between min-l1 and min-l2,
//!   on the data and with the trainer of a `bias_diagonal` model file;
//! - [`modified_flow_order`]: B-12, error of GD / SGD against gradient flow and the modified flow
//!   against the step size eps (orders 1, 2 and 2, 3), from a `bias_modified_flow` model file
//!   (`models/bias-modified-flow-order.toml`).
//!
//! Each figure checks its model file with the kind's `check` and runs the same function as
//! `modeflow train` on it. Every function writes into `dir` (created if missing) and returns
//! the files written; the figure JSON carries the provenance (`modeflow_version`, the model
//! file, what was computed, the settings).

use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, DVector};

use crate::bias::cluster::cosine_clusters;
use crate::bias::diagonal::{min_l2, sparse_regression, train_diagonal, DiagRun};
use crate::bias::solvers::mirror_argmin;
use crate::bias::spec::{agreement, balance, diagonal, margin, modified_flow};
use crate::model::ModelFile;
use crate::plot::lines::{self, FitSpec, LineSpec, Mark, Series};
use crate::plot::Output;
use crate::Error;
use crate::{io, Result};

fn output(dir: &Path, stem: &str, what: &str, settings: serde_json::Value) -> Output {
    Output::new(dir, stem).with_provenance(serde_json::json!({
        "modeflow_version": env!("CARGO_PKG_VERSION"),
        "what": what,
        "settings": settings,
    }))
}

/// Geometric grid of `n` points from `a` to `b` (both included).
fn geom(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (a.ln() + (b.ln() - a.ln()) * i as f64 / (n - 1) as f64).exp())
        .collect()
}

/// B-6: |w(t)| against ln t for GD on the mean logistic loss of a `bias_margin` model file's
/// separable 2-D set (at its `eta` and each of its `figure_etas`, w(0) = 0, `steps` steps), with
/// the predicted lines |w| = |w_hat| ln t + rho~_1 (rho~_1 from the SVM dual) and the slope
/// fitted on the first run over t in [T/100, T] (the run of `modeflow train`).
pub fn norm_growth(model: &ModelFile, dir: &Path) -> Result<Vec<PathBuf>> {
    let ms = margin::check(model)?;
    io::ensure_dir(dir)?;
    let steps = ms.steps;
    let mut series = Vec::new();
    let mut preds = Vec::new();
    let mut runs = Vec::new();
    let etas: Vec<f64> = std::iter::once(ms.eta)
        .chain(ms.figure_etas.iter().copied())
        .collect();
    for &eta in &etas {
        let r = margin::run(&ms, eta, &model.common.file)?;
        let pts: Vec<[f64; 2]> = r
            .samples
            .iter()
            .filter(|s| s.t >= 1)
            .map(|s| [(s.t as f64).ln(), s.w[0].hypot(s.w[1])])
            .collect();
        series.push(Series::new(
            &format!("|w(t)|, GD η = {eta}"),
            pts,
            Mark::Line,
        ));
        let w_hat = r.w_hat[0].hypot(r.w_hat[1]);
        let lt_max = (steps as f64).ln();
        // the prediction is asymptotic: drawn from ln t = 2 on
        let pred: Vec<[f64; 2]> = (0..=40)
            .map(|k| {
                let lt = 2.0 + (lt_max - 2.0) * k as f64 / 40.0;
                [lt, w_hat * lt + r.rho_pred[0]]
            })
            .collect();
        preds.push(Series::new(
            &format!("ln t {:+.2} (pred., η = {eta})", r.rho_pred[0]),
            pred,
            Mark::Dashed,
        ));
        runs.push(serde_json::json!({
            "eta": eta, "w_hat": r.w_hat, "rho_pred": r.rho_pred, "rho_T": r.rho,
            "slope_late_window": r.slope,
        }));
    }
    series.extend(preds);
    let t_fit = (steps as f64 / 100.0).max(1.0);
    let mut spec = LineSpec::new(
        "B-6: norm growth of GD on separable logistic regression (|w| ≈ |ŵ| ln t)",
        &format!(
            "ln t (t = GD step; slope fitted on η = {} over t ∈ [{t_fit:.0}, {steps}])",
            ms.eta
        ),
        "|w(t)|",
    );
    spec.fit = Some(FitSpec {
        series: 0,
        predicted: Some(1.0),
        x_range: Some((t_fit.ln(), (steps as f64).ln())),
    });
    let out = output(
        dir,
        "bias_norm_growth",
        "B-6 Soudry run on a separable 2-D set (THEORY II.3), GD from w = 0",
        serde_json::json!({
            "model_file": model.common.file, "steps": steps,
            "fit_window_t": [t_fit, steps], "runs": runs,
        }),
    );
    Ok(lines::render(&series, &spec, &out)?.files)
}

/// B-1: drift sum_j |D_j(T) - D_j(0)| of the balance D_j = |w_j|^2 - a_j^2 of the two-layer net
/// of a `bias_balance` model file (its sizes, activation, loss, init and seed) at the fixed
/// horizon eta*T = `drift_horizon`, against eta in `drift_etas`, for GD and SGD (the model's
/// batch, mean over `drift_seeds` shuffles); log-log with the GD slope fitted (predicted 1: the
/// drift is a sum of T = 1/eta terms of size eta^2). The curves of `modeflow train` on it.
pub fn balance_drift(model: &ModelFile, dir: &Path) -> Result<Vec<PathBuf>> {
    let bs = balance::check(model)?;
    let drift = bs.drift.clone().ok_or_else(|| {
        Error::Requirement(format!(
            "{}: the drift figure needs `drift_etas` (step sizes at a fixed horizon)",
            model.common.file
        ))
    })?;
    io::ensure_dir(dir)?;
    let c = balance::drift_curves(&bs, &drift)?;
    let pts =
        |v: &[f64]| -> Vec<[f64; 2]> { c.etas.iter().zip(v).map(|(&e, &d)| [e, d]).collect() };
    let (gd, sgd) = (pts(&c.gd), pts(&c.sgd));
    let sgd_fit = lines::fit_slope(&sgd, true, true, None);
    let sgd_label = format!("SGD b = {}, {} runs", bs.batch, drift.seeds);
    let series = vec![
        Series::new("GD (fitted)", gd, Mark::LinePoints),
        Series::new(
            &match sgd_fit {
                Some(f) => format!("{sgd_label} (slope {:.2})", f.slope),
                None => sgd_label,
            },
            sgd,
            Mark::LinePoints,
        ),
    ];
    let mut spec = LineSpec::new(
        &format!(
            "B-1: balance drift at fixed horizon ηT = {} (two-layer net)",
            drift.horizon
        ),
        "η (step size)",
        "Σ_j |D_j(T) − D_j(0)|,  D_j = |w_j|² − a_j²",
    )
    .log_log();
    spec.fit = Some(FitSpec {
        series: 0,
        predicted: Some(1.0),
        x_range: None,
    });
    let out = output(
        dir,
        "bias_balance_drift",
        "B-1 drift of the two-layer balance at fixed eta*T (THEORY II.1), same init and data for every eta",
        serde_json::json!({
            "model_file": model.common.file,
            "d": bs.d, "k": bs.k, "n": bs.n, "activation": format!("{:?}", bs.act),
            "loss": format!("{:?}", bs.loss), "init_std": bs.init, "data_seed": bs.seed,
            "etas": drift.etas, "horizon": drift.horizon,
            "sgd_batch": bs.batch, "sgd_seeds": drift.seeds,
            "gd_exponent": c.gd_exponent,
            "sgd_slope": sgd_fit.map(|f| f.slope),
        }),
    );
    Ok(lines::render(&series, &spec, &out)?.files)
}

/// Single-linkage labels of the directions of `v` cut into `count` clusters (Kruskal on the
/// cosine distance), relabelled in order of first appearance.
fn linkage_labels(v: &[DVector<f64>], count: usize) -> Vec<usize> {
    let m = v.len();
    let u: Vec<DVector<f64>> = v.iter().map(|x| x.normalize()).collect();
    let mut edges: Vec<(f64, usize, usize)> = Vec::with_capacity(m * m / 2);
    for i in 0..m {
        for j in i + 1..m {
            edges.push((1.0 - u[i].dot(&u[j]), i, j));
        }
    }
    edges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut parent: Vec<usize> = (0..m).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut comps = m;
    for (_, i, j) in edges {
        if comps <= count {
            break;
        }
        let (a, b) = (find(&mut parent, i), find(&mut parent, j));
        if a != b {
            parent[a] = b;
            comps -= 1;
        }
    }
    let mut ids: Vec<usize> = Vec::new();
    (0..m)
        .map(|i| {
            let r = find(&mut parent, i);
            match ids.iter().position(|&x| x == r) {
                Some(p) => p,
                None => {
                    ids.push(r);
                    ids.len() - 1
                }
            }
        })
        .collect()
}

/// The top two principal directions of the (uncentred) second moment W W^T of the columns
/// of `w`.
fn principal_plane(w: &DMatrix<f64>) -> Result<(DVector<f64>, DVector<f64>)> {
    // capped: eps 1e-15 (rounding level), 10_000 sweeps far above what a d x d matrix needs
    let eig =
        nalgebra::SymmetricEigen::try_new(w * w.transpose(), 1e-15, 10_000).ok_or_else(|| {
            crate::Error::NoConvergence {
                solver: "symmetric eigen-decomposition of W W^T (cluster figure)".into(),
                iterations: 10_000,
                residual: f64::NAN,
                tolerance: 1e-15,
            }
        })?;
    let mut idx: Vec<usize> = (0..w.nrows()).collect();
    idx.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    Ok((
        eig.eigenvectors.column(idx[0]).into_owned(),
        eig.eigenvectors.column(idx[1]).into_owned(),
    ))
}

/// B-3/B-8: the two-layer leaky-ReLU student (second layer fixed at +-1) of a `bias_agreement`
/// model file, first layer trained by GD on the mean logistic loss of its teacher data from
/// small init (the run of `modeflow train`). Writes the cosine-similarity matrix of the hidden
/// weight vectors w_j ordered by single-linkage cluster, and their projection on the top two
/// principal directions of sum_j w_j w_j^T, coloured by cluster.
pub fn clusters(model: &ModelFile, dir: &Path) -> Result<Vec<PathBuf>> {
    let aspec = agreement::check(model)?;
    io::ensure_dir(dir)?;
    let untrained = || {
        model.checker().error(
            "steps",
            0,
            "at least 1",
            "the cluster figure draws the trained student",
        )
    };
    if aspec.steps == 0 {
        return Err(untrained());
    }
    let o = agreement::run(&aspec, &model.common.file)?;
    let net = o.student.ok_or_else(untrained)?.net;
    let loss = o.series.last().map_or(f64::NAN, |row| row[1]);
    let m = 2 * aspec.k;
    let v: Vec<DVector<f64>> = (0..m).map(|c| net.w.column(c).into_owned()).collect();
    let cc = cosine_clusters(&v)?;
    let labels = linkage_labels(&v, cc.count);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by_key(|&j| (labels[j], j));
    let u: Vec<DVector<f64>> = v.iter().map(|x| x.normalize()).collect();
    let cos: Vec<Vec<f64>> = order
        .iter()
        .map(|&i| order.iter().map(|&j| u[i].dot(&u[j])).collect())
        .collect();
    let settings = serde_json::json!({
        "model_file": model.common.file,
        "k_per_sign": aspec.k, "leaky_alpha": aspec.alpha, "eta": aspec.eta,
        "init_std": aspec.init, "steps": aspec.steps, "seed": aspec.seed, "final_loss": loss,
        "cluster_count": cc.count, "gap_ratio": cc.gap_ratio, "order": order,
        "labels": labels,
    });
    let mut files = Vec::new();
    let what = "B-3/B-8 leaky-ReLU student (a = +-1 fixed) on teacher data, first layer by GD from small init (THEORY II.2)";
    let r = lines::render_matrix(
        &cos,
        &format!(
            "B-3: cos(w_i, w_j), units ordered by cluster ({} clusters)",
            cc.count
        ),
        "cos(w_i, w_j)",
        Some((-1.0, 1.0)),
        &output(dir, "bias_clusters_cosine", what, settings.clone()),
    )?;
    files.extend(r.files);
    let (e1, e2) = principal_plane(&net.w)?;
    let pts: Vec<[f64; 2]> = v.iter().map(|w| [w.dot(&e1), w.dot(&e2)]).collect();
    let nc = labels.iter().copied().max().map_or(0, |c| c + 1);
    let group_labels: Vec<String> = (0..nc)
        .map(|c| {
            let members: Vec<usize> = (0..m).filter(|&j| labels[j] == c).collect();
            let pos = members.iter().filter(|&&j| net.a[j] > 0.0).count();
            let sign = if pos == members.len() {
                "a = +1"
            } else if pos == 0 {
                "a = −1"
            } else {
                "mixed a"
            };
            format!("cluster {} ({}, {} units)", c + 1, sign, members.len())
        })
        .collect();
    let spec = LineSpec::new(
        "B-3: hidden weight vectors w_j on the top two principal directions",
        "w_j · e₁ (first principal direction)",
        "w_j · e₂ (second principal direction)",
    );
    let r = lines::render_scatter(
        &pts,
        &labels,
        &group_labels,
        &spec,
        &output(dir, "bias_clusters_pca", what, settings),
    )?;
    files.extend(r.files);
    Ok(files)
}

/// Number of alpha values of [`diagonal_bias`].
pub const DIAG_ALPHAS: usize = 29;

/// B-10: |beta|_1 of argmin Q_alpha (the implicit-bias potential of the diagonal net at init
/// scale alpha) on the sparse regression of a `bias_diagonal` model file (checked by
/// [`crate::bias::spec::diagonal::check`]; the gallery uses `models/bias-diagonal.toml`), for
/// alpha on a log grid 1e-3..10, with the interpolator of the model's own (S)GD run (its alpha,
/// eta, batch, step cap and loss tolerance) on the curve, and the min-l1 (alpha -> 0, here
/// alpha = 1e-100) and min-l2 levels dashed.
pub fn diagonal_bias(model: &ModelFile, dir: &Path) -> Result<Vec<PathBuf>> {
    let ds = diagonal::check(model)?;
    io::ensure_dir(dir)?;
    let (x, y, beta_star) = sparse_regression(ds.n, ds.d, ds.sparsity, ds.size, ds.seed);
    let d = x.ncols();
    let zero = DVector::zeros(d);
    let alphas = geom(1e-3, 10.0, DIAG_ALPHAS);
    let argmin = |ln_a2: f64| mirror_argmin(&x, &y, &DVector::from_element(d, ln_a2), &zero, 1e-13);
    let mut q = Vec::with_capacity(alphas.len());
    for &a in &alphas {
        q.push([a, argmin(2.0 * a.ln())?.abs().sum()]);
    }
    let l1 = argmin(2.0 * 1e-100f64.ln())?.abs().sum();
    let l2 = min_l2(&x, &y)?.abs().sum();
    // the model file's own run (what `modeflow train` on it trains): its alpha, eta, batch
    let a = ds.settings.alpha;
    let run: DiagRun = train_diagonal(&x, &y, &ds.settings)?;
    let trained = vec![[a, run.beta.abs().sum()]];
    let gd_notes = vec![serde_json::json!({"alpha": a, "steps": run.steps, "loss": run.loss})];
    let span = [alphas[0], alphas[alphas.len() - 1]];
    let series = vec![
        Series::new("argmin Q_α s.t. Xβ = y", q, Mark::LinePoints),
        Series::new(
            &format!(
                "trained (α = {}, η = {}, batch {})",
                ds.settings.alpha, ds.settings.eta, ds.settings.batch
            ),
            trained,
            Mark::Points,
        ),
        Series::new(
            &format!("min-ℓ1 level ({l1:.3})"),
            span.iter().map(|&a| [a, l1]).collect(),
            Mark::Dashed,
        ),
        Series::new(
            &format!("min-ℓ2 level ({l2:.3})"),
            span.iter().map(|&a| [a, l2]).collect(),
            Mark::Dashed,
        ),
    ];
    let mut spec = LineSpec::new(
        "B-10: diagonal-net bias from ℓ1 (small α) to ℓ2 (large α)",
        "α (initial scale, u = v = α)",
        "|β|₁ of the interpolator",
    );
    spec.log_x = true;
    let out = output(
        dir,
        "bias_diagonal",
        "B-10 diagonal linear net: argmin of the mirror potential Q_alpha and GD interpolators (THEORY II.4)",
        serde_json::json!({
            "model_file": model.common.file,
            "data": format!(
                "sparse_regression: n = {}, d = {}, {}-sparse beta* of size {}, seed {}",
                ds.n, ds.d, ds.sparsity, ds.size, ds.seed
            ),
            "training": {
                "eta": ds.settings.eta, "batch": ds.settings.batch,
                "max_steps": ds.settings.max_steps, "loss_tol": ds.settings.loss_tol,
            },
            "beta_star_l1": beta_star.abs().sum(), "min_l1": l1, "min_l2_l1norm": l2,
            "alphas": alphas, "gd": gd_notes,
        }),
    );
    Ok(lines::render(&series, &spec, &out)?.files)
}

/// B-12: error of GD at the horizon against gradient flow on L (order 1) and against the
/// modified flow on L + (eps/4)|grad L|^2 (order 2), and of one SGD epoch (mean over all batch
/// orders) against GF (order 2) and its modified flow (order 3), on the problem of a
/// `bias_modified_flow` model file (the table of `modeflow train` on it); log-log against eps
/// with the GD-vs-modified slope fitted (predicted 2) and the others in the legend.
pub fn modified_flow_order(model: &ModelFile, dir: &Path) -> Result<Vec<PathBuf>> {
    let ms = modified_flow::check(model)?;
    io::ensure_dir(dir)?;
    let table = modified_flow::run(&ms)?;
    let s: Vec<Vec<[f64; 2]>> = (1..=4)
        .map(|col| table.iter().map(|r| [r[0], r[col]]).collect())
        .collect();
    let names = [
        ("GD vs GF", 1),
        ("GD vs MF", 2),
        ("SGD epoch vs GF", 2),
        ("SGD epoch vs MF", 3),
    ];
    let mut slopes = Vec::new();
    let series: Vec<Series> = names
        .iter()
        .zip(&s)
        .enumerate()
        .map(|(i, ((name, pred), pts))| {
            let f = lines::fit_slope(pts, true, true, None).map(|f| f.slope);
            slopes.push(f);
            let label = match (i, f) {
                (1, _) => format!("{name} (p = {pred})"),
                (_, Some(sl)) => format!("{name} (p={pred}, fit {sl:.2})"),
                (_, None) => name.to_string(),
            };
            Series::new(&label, pts.clone(), Mark::LinePoints)
        })
        .collect();
    let mut spec = LineSpec::new(
        "B-12: error ~ ε^p vs gradient flow (GF) and modified flow (MF)",
        "ε (step size)",
        "|w_GD − w_flow|  (GD at t = 2; SGD: one epoch)",
    )
    .log_log();
    spec.fit = Some(FitSpec {
        series: 1,
        predicted: Some(2.0),
        x_range: None,
    });
    let out = output(
        dir,
        "bias_modified_flow",
        "B-12 backward-error order test on l2-regularised logistic regression (THEORY II.5), RK4 references",
        serde_json::json!({
            "model_file": model.common.file,
            "eps": ms.eps, "horizon_gd": ms.horizon, "sgd_batches": ms.batches.len(),
            "w0": ms.w0.as_slice(), "lambda": ms.problem.lambda,
            "fitted_slopes": slopes,
        }),
    );
    Ok(lines::render(&series, &spec, &out)?.files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linkage_labels_split_two_direction_clusters() {
        // three vectors near e1 (different norms), two near -e1 + e2: cut into 2 clusters
        let v: Vec<DVector<f64>> = [
            [1.0, 0.01],
            [-1.0, 1.0],
            [3.0, -0.02],
            [0.5, 0.0],
            [-2.0, 2.1],
        ]
        .iter()
        .map(|p| DVector::from_column_slice(p))
        .collect();
        assert_eq!(linkage_labels(&v, 2), vec![0, 1, 0, 0, 1]);
        assert_eq!(cosine_clusters(&v).unwrap().count, 2);
        // one cluster per vector when asked for m clusters
        assert_eq!(linkage_labels(&v, 5), vec![0, 1, 2, 3, 4]);
        assert_eq!(linkage_labels(&v, 1), vec![0; 5]);
    }

    #[test]
    fn geometric_grid_hits_both_ends() {
        let g = geom(1e-3, 10.0, 5);
        assert!((g[0] - 1e-3).abs() < 1e-15 && (g[4] - 10.0).abs() < 1e-12);
        assert!((g[1] / g[0] - 10.0).abs() < 1e-12);
    }
}
