//! Kind `bias_clusters` (THEORY II.3, B-8; Phuong & Lampert 2021): a two-layer ReLU net, both
//! layers trained by GD on the mean logistic loss from small init, on orthogonally separable data
//! (x_i . x_j > 0 within a class, <= 0 across) converges to two clusters of neurons, at the
//! one-class max-margin vectors of the two classes.
//!
//! Keys: data either generated (`n`, `d` even: positives non-negative on the first d/2
//! coordinates, negatives on the last d/2) or explicit (`points`, `labels`; checked to be
//! orthogonally separable); `k` units, `init` std, `eta`, `steps`, `record_every`, `csv`.
//!
//! Rows: the cosine cluster count of the active neurons (|a_j| |w_j| > 5% of the largest) is 2;
//! the alignment error e(t) = 1 - min_j cos(w_j, own-class max-margin vector) decreases from
//! t = T/4 to T (the limit is reached like 1/ln t, so only the trend is asserted).

use nalgebra::{DMatrix, DVector};
use serde::Deserialize;

use super::{labelled_points, time_series, unpaired_points, Trained};
use crate::bias::cluster::{
    one_class_max_margin, orthogonal_data, two_cluster_checkpoints, TwoClusterRun,
    TwoClusterSettings,
};
use crate::bias::nets::TwoLayer;
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
use crate::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    n: Option<i64>,
    d: Option<i64>,
    points: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
    k: i64,
    init: f64,
    eta: f64,
    steps: i64,
    #[serde(default = "default_every")]
    record_every: i64,
    csv: Option<String>,
}

fn default_every() -> i64 {
    100
}

/// Active neurons (|a_j| |w_j| > 5% of the largest, as in `cluster::two_cluster_checkpoints`) and the
/// smallest cosine of an active neuron with its own class's max-margin vector (a_j > 0: positive
/// class), per class: (active, min cos +, min cos -).
fn alignment(net: &TwoLayer, wp: &DVector<f64>, wn: &DVector<f64>) -> (usize, f64, f64) {
    let k = net.a.len();
    let norms: Vec<f64> = (0..k)
        .map(|j| net.w.column(j).norm() * net.a[j].abs())
        .collect();
    let top = norms.iter().cloned().fold(0.0, f64::max);
    let (mut active, mut cp, mut cn) = (0, 1.0f64, 1.0f64);
    for j in (0..k).filter(|&j| top > 0.0 && norms[j] > 0.05 * top) {
        active += 1;
        let wj = net.w.column(j).normalize();
        if net.a[j] > 0.0 {
            cp = cp.min(wj.dot(wp));
        } else {
            cn = cn.min(wj.dot(wn));
        }
    }
    (active, cp, cn)
}

/// The data of the model file: generated (`n`, `d` even) or explicit (`points`, `labels`),
/// both classes present and orthogonally separable (the hypothesis of B-8).
fn data(
    c: &Checker<'_>,
    file: &str,
    seed: u64,
    n_key: Option<i64>,
    d_key: Option<i64>,
    points: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
) -> Result<(DMatrix<f64>, DVector<f64>)> {
    let (x, y) = match (points, labels) {
        (None, None) => {
            let missing = |f: &str| {
                c.error(
                    f,
                    "missing",
                    "an integer",
                    "generated data need n and d (or give points and labels)",
                )
            };
            let n = c.count("n", n_key.ok_or_else(|| missing("n"))?, 2, 100_000)?;
            let d = c.count("d", d_key.ok_or_else(|| missing("d"))?, 2, 10_000)?;
            if d % 2 != 0 {
                return Err(c.error(
                    "d",
                    d,
                    "an even integer",
                    "the classes live on the two halves of the coordinates",
                ));
            }
            orthogonal_data(n, d, seed)
        }
        (Some(p), Some(l)) => {
            for (f, given) in [("n", n_key.is_some()), ("d", d_key.is_some())] {
                if given {
                    return Err(c.error(
                        f,
                        "given",
                        "absent when points are given",
                        "points and labels replace the generated data",
                    ));
                }
            }
            labelled_points(c, &p, &l, None)?
        }
        _ => return Err(unpaired_points(c)),
    };
    for label in [1.0, -1.0] {
        if !y.iter().any(|&v| v == label) {
            return Err(c.error(
                "labels",
                format!("no label {label}"),
                "both classes (+1 and -1)",
                "B-8 needs a max-margin vector for each class",
            ));
        }
    }
    // orthogonal separability, the hypothesis of B-8
    let n = x.nrows();
    for i in 0..n {
        for j in i + 1..n {
            let ip = x.row(i).dot(&x.row(j));
            let same = y[i] == y[j];
            if (same && ip <= 0.0) || (!same && ip > 0.0) {
                return Err(Error::Requirement(format!(
                    "{file}: `points`: data not orthogonally separable: points[{i}] . points[{j}] = {ip:.3e} with labels {} and {} (B-8 needs x_i . x_j > 0 within a class and <= 0 across)",
                    y[i], y[j]
                )));
            }
        }
    }
    Ok((x, y))
}

/// A checked `bias_clusters` model file: the data (generated, or explicit and checked to be
/// orthogonally separable) and the training settings.
#[derive(Debug, Clone)]
pub struct Spec {
    pub x: DMatrix<f64>,
    pub y: DVector<f64>,
    pub k: usize,
    pub init: f64,
    pub eta: f64,
    pub steps: usize,
    pub record_every: usize,
    pub seed: u64,
    pub csv: Option<String>,
}

/// Check a `bias_clusters` model file without training.
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let file = &model.common.file;
    let seed = model.common.seed;
    let (x, y) = data(&c, file, seed, raw.n, raw.d, raw.points, raw.labels)?;
    Ok(Spec {
        x,
        y,
        k: c.count("k", raw.k, 2, 10_000)?,
        init: c.positive("init", raw.init)?,
        eta: c.positive("eta", raw.eta)?,
        steps: c.count("steps", raw.steps, 4, 100_000_000)?,
        record_every: c.count("record_every", raw.record_every, 1, i64::MAX)?,
        seed,
        csv: raw.csv,
    })
}

impl Spec {
    /// The B-8 reference at `seed` (`models/bias-clusters.toml` at seed 0): 30 generated points
    /// in R^6, k = 20 units, init std 1e-2, GD eta = 0.2 for 20,000 steps.
    pub fn reference(seed: u64) -> Spec {
        let (x, y) = orthogonal_data(30, 6, seed);
        Spec {
            x,
            y,
            k: 20,
            init: 1e-2,
            eta: 0.2,
            steps: 20_000,
            record_every: 200,
            seed,
            csv: None,
        }
    }

    /// The B-17 reference at `seed` (`models/bias-clusters-long.toml` at seed 0): the B-8
    /// setting run to 1e6 steps, measured at t = 1e4, 1e5, 1e6 ([`Outcome::decades`]).
    pub fn long_reference(seed: u64) -> Spec {
        Spec {
            steps: 1_000_000,
            record_every: 10_000,
            ..Spec::reference(seed)
        }
    }
}

/// What a B-8 run measured: the end of training, the measurements at steps / 100, steps / 10 and
/// steps (the last decades, [`decades`]), the alignment error at a quarter of the steps, and the
/// recorded series (step, loss, active, align_error, min_cos_pos, min_cos_neg).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub end: TwoClusterRun,
    pub decades: Vec<(usize, TwoClusterRun)>,
    pub quarter: usize,
    pub e_quarter: f64,
    pub series: Vec<Vec<f64>>,
}

/// The B-8 run of a checked spec: the one-class max-margin vectors, then GD from small init
/// (`StdRng` seed `seed + 500`), the alignment recorded every `record_every` steps, at 1, at
/// steps / 4 and at the end.
pub fn run(spec: &Spec) -> Result<Outcome> {
    let Spec {
        ref x,
        ref y,
        k,
        init,
        eta,
        steps,
        record_every: every,
        seed,
        ..
    } = *spec;
    let (wp, wn) = (
        one_class_max_margin(x, y, 1.0)?,
        one_class_max_margin(x, y, -1.0)?,
    );
    let quarter = steps / 4;
    let mut e_quarter = f64::NAN;
    let mut series = Vec::new();
    let s = TwoClusterSettings {
        k,
        init,
        eta,
        steps,
        rng_seed: seed + 500,
    };
    let marks = decades(steps);
    let mut runs = two_cluster_checkpoints(x, y, &s, &marks, |t, net, l| {
        if t % every == 0 || t == steps || t == quarter || t == 1 {
            let (active, cp, cn) = alignment(net, &wp, &wn);
            let e = 1.0 - cp.min(cn);
            if t == quarter {
                e_quarter = e;
            }
            series.push(vec![t as f64, l, active as f64, e, cp, cn]);
        }
    })?;
    let end = runs
        .pop()
        .ok_or_else(|| Error::Requirement("a B-8 run without its last checkpoint".into()))?;
    let mut decades: Vec<(usize, TwoClusterRun)> = marks.into_iter().zip(runs).collect();
    decades.push((steps, end.clone()));
    Ok(Outcome {
        end,
        decades,
        quarter,
        e_quarter,
        series,
    })
}

/// The measurement steps of a run of `steps` steps: steps / 100, steps / 10, steps (the positive,
/// distinct ones, increasing).
pub fn decades(steps: usize) -> Vec<usize> {
    let mut v: Vec<usize> = [steps / 100, steps / 10, steps]
        .into_iter()
        .filter(|&t| t > 0)
        .collect();
    v.dedup();
    v
}

/// B-8's rows of a run: the cluster count of the active neurons (2), and the alignment error
/// 1 - min cos(neuron, own-class max-margin vector) decreasing from steps / 4 to the end (it is
/// reached only asymptotically, logarithmically slowly, like every max-margin limit). What
/// `modeflow train` on a `bias_clusters` model and the B-8 check report.
pub fn rows(spec: &Spec, out: &Outcome) -> Vec<Row> {
    let r = &out.end;
    let e_end = 1.0 - r.cos_pos.min(r.cos_neg);
    vec![
        Row::abs(
            "cluster count of active neurons",
            2.0,
            r.clusters.count as f64,
            0.0,
        )
        .note(format!(
            "{} active of {}; gap ratio {:.1e}",
            r.active, spec.k, r.clusters.gap_ratio
        )),
        Row::holds(
            format!(
                "1 - min cos(neuron, own-class max-margin vector) decreases t = {} -> {}",
                out.quarter, spec.steps
            ),
            e_end < out.e_quarter,
            format!(
                "{:.3e} -> {e_end:.3e} (cos+ {:.4}, cos- {:.4} at T)",
                out.e_quarter, r.cos_pos, r.cos_neg
            ),
        ),
    ]
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let out = run(&spec)?;
    let r = &out.end;
    let summary = vec![
        ("active neurons".into(), r.active as f64),
        ("min cos(w_j, w+) at T".into(), r.cos_pos),
        ("min cos(w_j, w-) at T".into(), r.cos_neg),
        ("cluster gap ratio".into(), r.clusters.gap_ratio),
    ];
    let rows = rows(&spec, &out);
    let csv = time_series(
        model,
        &spec.csv,
        &[
            "step",
            "loss",
            "active",
            "align_error",
            "min_cos_pos",
            "min_cos_neg",
        ],
        out.series,
    )?;
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B-8's reference at seed 0 is the shipped `models/bias-clusters.toml`.
    #[test]
    fn reference_is_the_shipped_model() {
        super::super::assert_shipped("bias-clusters.toml", check, &Spec::reference(0));
        let long = Spec::long_reference(0);
        super::super::assert_shipped("bias-clusters-long.toml", check, &long);
        assert_eq!(decades(long.steps), [10_000, 100_000, 1_000_000]);
        assert_eq!(decades(20_000), [200, 2_000, 20_000]);
        assert_eq!(decades(50), [5, 50]);
    }
}
