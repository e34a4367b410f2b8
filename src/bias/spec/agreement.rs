//! Kind `bias_agreement` (THEORY II.2, B-3, B-4, B-5): a leaky-ReLU student with second layer
//! fixed at +-1, N(x) = sum_{j in +} sigma(w_j . x) - sum_{j in -} sigma(u_j . x), trained by GD on
//! the mean logistic loss of linearly separable data.
//!
//! Keys: data either from a unit teacher (`n`, `d`, `margin`: Gaussian x with |w*.x| >= margin)
//! or explicit (`points`, `labels`; must be linearly separable through the origin); `k` neurons
//! per sign, leaky slope `alpha` in (0, 1), step `eta`, `steps` GD steps from init std `init`,
//! `n_test` fresh Gaussian test points; `agreement_steps` steps of the B-4/B-5 run from the
//! agreement init w_j = w* + `agreement_noise` xi, u_j = -w* + ... (0 skips it); `record_every`,
//! `csv`.
//!
//! Rows: B-3 on the trained sums (the clustered net P/k, Q/k has sign N = sign((P - Q).x) on
//! every test point, exactly); B-4 agreement held and the drift of w_j - w_0 within each sign
//! (<= 1e-12, rounding); B-5 (P, Q) vs lifted GD with step k eta (<= 1e-12). Summaries: cluster
//! counts per sign with gap ratios, the linear fraction of the trained net, and the cosines of
//! P - Q with the plain and the lifted max-margin directions.

use nalgebra::{DMatrix, DVector};
use serde::Deserialize;

use super::{data_keys, separable, time_series, Data, Trained};
use crate::bias::agreement::{
    agreement_run_on, in_agreement, lifted_features, reference_run_on, student, teacher_data,
    ReferenceOutcome, StudentSettings,
};
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
use crate::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    n: Option<i64>,
    d: Option<i64>,
    margin: Option<f64>,
    points: Option<Vec<Vec<f64>>>,
    labels: Option<Vec<f64>>,
    k: i64,
    alpha: f64,
    eta: f64,
    steps: i64,
    init: f64,
    #[serde(default = "default_n_test")]
    n_test: i64,
    #[serde(default)]
    agreement_steps: i64,
    #[serde(default = "default_noise")]
    agreement_noise: f64,
    #[serde(default = "default_every")]
    record_every: i64,
    csv: Option<String>,
}

fn default_n_test() -> i64 {
    10_000
}
fn default_noise() -> f64 {
    0.02
}
fn default_every() -> i64 {
    100
}

fn cos(a: &DVector<f64>, b: &DVector<f64>) -> f64 {
    a.dot(b) / (a.norm() * b.norm())
}

/// B-3 on the trained sums: the exactly clustered net w_j = P/k, u_j = Q/k has
/// sign N = sign((P - Q).x) on every fresh point.
fn b3_row(out: &ReferenceOutcome, k: usize, alpha: f64, n_test: usize) -> Row {
    let d = out.p.len();
    let clustered = student(
        DMatrix::from_fn(d, 2 * k, |r, col| {
            if col < k {
                out.p[r] / k as f64
            } else {
                out.q[r] / k as f64
            }
        }),
        k,
        alpha,
    );
    let f = clustered.predict(&out.test);
    let lin = &out.test * (&out.p - &out.q);
    let b3 = (0..n_test)
        .filter(|&i| f[i].signum() == lin[i].signum())
        .count() as f64
        / n_test as f64;
    Row::abs(
        "B-3: clustered net (P/k, Q/k): fraction sign N = sign((P-Q).x)",
        1.0,
        b3,
        0.0,
    )
    .note(format!(
        "{n_test} fresh points; exact lemma (ties have probability 0)"
    ))
}

/// Cluster counts, the linear fraction, agreement at the end and the cosines of P - Q.
fn summary_of(
    out: &ReferenceOutcome,
    x: &DMatrix<f64>,
    y: &DVector<f64>,
    plain: &DVector<f64>,
    lifted_pq: &DVector<f64>,
) -> Vec<(String, f64)> {
    let (cp, cn) = &out.clusters;
    vec![
        ("clusters + (cosine, log-gap)".into(), cp.count as f64),
        ("gap ratio +".into(), cp.gap_ratio),
        ("clusters -".into(), cn.count as f64),
        ("gap ratio -".into(), cn.gap_ratio),
        ("trained net: linear fraction".into(), out.linear_fraction),
        (
            "trained net: in agreement at the end".into(),
            in_agreement(&out.net, x, y) as u8 as f64,
        ),
        (
            "cos(P - Q, plain SVM)".into(),
            cos(&(&out.p - &out.q), plain),
        ),
        (
            "cos(P - Q, lifted max-margin P* - Q*)".into(),
            cos(&(&out.p - &out.q), lifted_pq),
        ),
        (
            "cos(lifted P* - Q*, plain SVM)".into(),
            cos(lifted_pq, plain),
        ),
    ]
}

/// The B-4/B-5 run from the agreement init w_j = w* + noise xi, u_j = -w* + ...
struct AgreementSetting<'a> {
    x: &'a DMatrix<f64>,
    y: &'a DVector<f64>,
    ws: &'a DVector<f64>,
    settings: StudentSettings,
    noise: f64,
    seed: u64,
}

/// The B-4 and B-5 rows of the agreement run, and cos(P - Q, lifted P* - Q*) at its end.
fn agreement_rows(
    c: &Checker<'_>,
    a: &AgreementSetting<'_>,
    lifted_pq: &DVector<f64>,
) -> Result<(Vec<Row>, f64)> {
    let (k, steps, noise) = (a.settings.k, a.settings.steps, a.noise);
    let r = agreement_run_on(a.x, a.y, a.ws, &a.settings, noise, a.seed + 1000).map_err(
        |e| match e {
            Error::Requirement(m) => c.error(
                "agreement_noise",
                noise,
                "a smaller noise (every neuron must agree in sign with every label)",
                &m,
            ),
            e => e,
        },
    )?;
    let rows = vec![
        Row::holds(
            format!("B-4: agreement held for {steps} steps"),
            r.agreed,
            "",
        ),
        Row::abs(
            "B-4: drift of w_j - w_0 within each sign / max|w|",
            0.0,
            r.drift,
            1e-12,
        )
        .note("identical updates: only rounding (~1e-16 per step) accumulates"),
        Row::abs(
            "B-5: (P, Q) vs lifted GD (step k eta), max rel. gap",
            0.0,
            r.lift_gap,
            1e-12,
        )
        .note("the same iteration in exact arithmetic; rounding only"),
    ];
    let p: DVector<f64> = r.net.w.columns(0, k).column_sum();
    let q: DVector<f64> = r.net.w.columns(k, k).column_sum();
    Ok((rows, cos(&(&p - &q), lifted_pq)))
}

/// A checked `bias_agreement` model file.
#[derive(Debug, Clone)]
pub struct Spec {
    pub data: Data,
    /// neurons per sign
    pub k: usize,
    /// leaky slope
    pub alpha: f64,
    pub eta: f64,
    pub steps: usize,
    /// init std of the trained run
    pub init: f64,
    pub n_test: usize,
    /// steps of the B-4/B-5 run from the agreement init (0: none)
    pub agreement_steps: usize,
    pub agreement_noise: f64,
    pub record_every: usize,
    pub seed: u64,
    pub csv: Option<String>,
}

/// Check a `bias_agreement` model file without training (separability of explicit data is
/// checked in the run, by the SVM).
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    Ok(Spec {
        data: data_keys(&c, raw.n, raw.d, raw.margin, raw.points, raw.labels)?,
        k: c.count("k", raw.k, 1, 10_000)?,
        alpha: c.in_open("alpha", raw.alpha, 0.0, 1.0)?,
        eta: c.positive("eta", raw.eta)?,
        steps: c.count("steps", raw.steps, 1, 100_000_000)?,
        init: c.positive("init", raw.init)?,
        n_test: c.count("n_test", raw.n_test, 1, 10_000_000)?,
        agreement_steps: c.count("agreement_steps", raw.agreement_steps, 0, 100_000_000)?,
        agreement_noise: c.non_negative("agreement_noise", raw.agreement_noise)?,
        record_every: c.count("record_every", raw.record_every, 1, i64::MAX)?,
        seed: model.common.seed,
        csv: raw.csv,
    })
}

/// Columns of [`Outcome::series`].
pub const SERIES_HEADER: [&str; 7] = [
    "step",
    "loss",
    "in_agreement",
    "norm_p",
    "norm_q",
    "cos_pq_svm",
    "cos_pq_lifted",
];

/// What a `bias_agreement` run produced: the trained student, its rows and summaries, and the
/// time series ([`SERIES_HEADER`]).
pub struct Outcome {
    pub student: ReferenceOutcome,
    pub rows: Vec<Row>,
    pub summary: Vec<(String, f64)>,
    pub series: Vec<Vec<f64>>,
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let o = run(&spec, &model.common.file)?;
    let csv = time_series(model, &spec.csv, &SERIES_HEADER, o.series)?;
    Ok((o.rows, o.summary, csv))
}

/// The B-3/B-4/B-5 run of a checked spec (`file` names the model file in errors): the student
/// trained from small init, and the agreement-regime run when `agreement_steps` > 0.
pub fn run(spec: &Spec, file: &str) -> Result<Outcome> {
    let c = Checker::new(file);
    let Spec {
        k,
        alpha,
        eta,
        steps,
        init,
        n_test,
        agreement_steps,
        agreement_noise: noise,
        record_every: every,
        ..
    } = *spec;
    let data = spec.data.clone();
    let seed = spec.seed;
    let why = "B-5 needs linearly separable data";
    let (x, y, ws) = match data {
        Data::Teacher { n, d, margin } => teacher_data(n, d, margin, seed),
        Data::Explicit(x, y) => {
            let w = separable(file, &x, &y, why)?;
            let ws = w.normalize();
            (x, y, ws)
        }
    };
    let d = x.ncols();
    let plain = separable(file, &x, &y, why)?;
    let lifted = separable(file, &lifted_features(&x, &y, alpha), &y, why)?;
    let lifted_pq = lifted.rows(0, d) - lifted.rows(d, d);
    let s = StudentSettings {
        k,
        alpha,
        eta,
        steps,
    };
    // time series of the trained student
    let mut series = Vec::new();
    let out = reference_run_on(&x, &y, &s, init, n_test, seed + 2000, |step, net, l| {
        let t = step + 1;
        if t % every == 0 || t == steps || t == 1 {
            let p: DVector<f64> = net.w.columns(0, k).column_sum();
            let q: DVector<f64> = net.w.columns(k, k).column_sum();
            let pq = &p - &q;
            series.push(vec![
                t as f64,
                l,
                in_agreement(net, &x, &y) as u8 as f64,
                p.norm(),
                q.norm(),
                cos(&pq, &plain),
                cos(&pq, &lifted_pq),
            ]);
        }
    })?;
    let mut rows = vec![b3_row(&out, k, alpha, n_test)];
    let mut summary = summary_of(&out, &x, &y, &plain, &lifted_pq);
    if agreement_steps > 0 {
        let run = AgreementSetting {
            x: &x,
            y: &y,
            ws: &ws,
            settings: StudentSettings {
                steps: agreement_steps,
                ..s
            },
            noise,
            seed,
        };
        let (r, cos_lifted) = agreement_rows(&c, &run, &lifted_pq)?;
        rows.extend(r);
        summary.push((
            "agreement run: cos(P - Q, lifted P* - Q*)".into(),
            cos_lifted,
        ));
    }
    Ok(Outcome {
        student: out,
        rows,
        summary,
        series,
    })
}
