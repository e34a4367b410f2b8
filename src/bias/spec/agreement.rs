//! Kind `bias_agreement` (THEORY II.2, B-3, B-4, B-5): a leaky-ReLU student with second layer
//! fixed at +-1, N(x) = sum_{j in +} sigma(w_j . x) - sum_{j in -} sigma(u_j . x), trained by GD on
//! the mean logistic loss of linearly separable data.
//!
//! Keys: data either from a unit teacher (`n`, `d`, `margin`: Gaussian x with |w*.x| >= margin)
//! or explicit (`points`, `labels`; must be linearly separable through the origin); `k` neurons
//! per sign, leaky slope `alpha` in (0, 1), step `eta`, `steps` GD steps from init std `init`,
//! `n_test` fresh Gaussian test points; `agreement_steps` steps of the B-4/B-5 run from the
//! agreement init w_j = w* + `agreement_noise` xi, u_j = -w* + ... (0 skips it); `record_every`,
//! `csv`. Optional: `steps = 0` skips the trained run (B-3 then takes random sums
//! P, Q ~ N(0, I), drawn with the test points at seed + 300; no summaries of the trained net and
//! one time-series line per seed instead); `seeds = [...]` runs B-3 (with `steps = 0`) and the agreement run for
//! each seed (teacher data and agreement init drawn at that seed; rows labelled "seed s: ");
//! `lifted_steps = [t1, t2]` with `lifted_eta` runs lifted GD from theta = 0 on the data of
//! `seed` to t1 < t2 and compares its direction with the lifted max-margin solution (B-5).
//!
//! Rows: B-3 on the trained sums (the clustered net P/k, Q/k has sign N = sign((P - Q).x) on
//! every test point, exactly); B-4 agreement held and the drift of w_j - w_0 within each sign
//! (<= 1e-12, rounding); B-5 (P, Q) vs lifted GD with step k eta (<= 1e-12); with
//! `lifted_steps`, B-5's direction (the error decreases, the ratio e(t2)/e(t1) is
//! ln t1 / ln t2 within 5%, the lifted max-margin P* - Q* is not the plain SVM direction).
//! Summaries: cluster counts per sign with gap ratios, the linear fraction of the trained net,
//! and the cosines of P - Q with the plain and the lifted max-margin directions.

use nalgebra::{DMatrix, DVector};
use serde::Deserialize;

use super::{data_keys, separable, time_series, Data, Trained};
use crate::bias::agreement::{
    in_agreement, lifted_direction, lifted_features, reference_run_on, teacher_data,
    ReferenceOutcome, StudentSettings,
};
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
use crate::Result;

mod rows;

use rows::{agreement_rows, b3_random_row, b3_row, cos, lifted_rows, summary_of, AgreementSetting};

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
    seeds: Option<Vec<i64>>,
    #[serde(default)]
    lifted_steps: Vec<i64>,
    lifted_eta: Option<f64>,
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
    /// data seeds of the per-seed rows (B-3 with `steps` = 0, the agreement run), labelled
    /// "seed s: "; None: the one seed `seed`, unlabelled
    pub seeds: Option<Vec<u64>>,
    /// the long lifted GD of B-5's direction (on the data of `seed`)
    pub lifted: Option<LiftedGd>,
    pub csv: Option<String>,
}

/// The long lifted GD of B-5's direction: step `eta` from theta = 0, measured at t1 < t2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiftedGd {
    pub eta: f64,
    pub steps: [usize; 2],
}

/// The model file of [`Spec::reference`].
pub const REFERENCE_FILE: &str = "models/bias-agreement-check.toml";

impl Spec {
    /// The B-3/B-4/B-5 reference (`models/bias-agreement-check.toml`): teacher data n = 40,
    /// d = 5, margin 0.3 at seeds 0, 1, 2; k = 10, alpha = 0.2; no trained run (B-3 on random
    /// sums, 1e4 test points); the agreement run of 2000 steps at eta = 0.5 (noise 0.02); lifted
    /// GD at eta = 5 to t = 1e5 and 1e6 on the data of seed 0.
    pub fn reference() -> Spec {
        Spec {
            data: Data::Teacher {
                n: 40,
                d: 5,
                margin: 0.3,
            },
            k: 10,
            alpha: 0.2,
            eta: 0.5,
            steps: 0,
            init: 1e-3,
            n_test: 10_000,
            agreement_steps: 2000,
            agreement_noise: 0.02,
            record_every: 1000,
            seed: 0,
            seeds: Some(vec![0, 1, 2]),
            lifted: Some(LiftedGd {
                eta: 5.0,
                steps: [100_000, 1_000_000],
            }),
            csv: None,
        }
    }
}

/// `seeds`: a non-empty list of seeds.
fn seeds_key(c: &Checker<'_>, raw: Option<Vec<i64>>) -> Result<Option<Vec<u64>>> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.is_empty() {
        return Err(c.error(
            "seeds",
            "[]",
            "at least one seed",
            "leave `seeds` out for `seed`",
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, &s)| {
            c.count(&format!("seeds[{i}]"), s, 0, 1 << 40)
                .map(|s| s as u64)
        })
        .collect::<Result<_>>()
        .map(Some)
}

/// `lifted_steps` (empty, or two increasing step counts >= 2) and `lifted_eta` (with them).
fn lifted_key(c: &Checker<'_>, steps: &[i64], eta: Option<f64>) -> Result<Option<LiftedGd>> {
    match (steps, eta) {
        ([], None) => Ok(None),
        ([], Some(e)) => Err(c.error(
            "lifted_eta",
            e,
            "no lifted_eta without lifted_steps",
            "lifted_eta is the step of the lifted GD run of lifted_steps",
        )),
        (&[t1, t2], eta) => {
            let eta = eta.ok_or_else(|| {
                c.error(
                    "lifted_eta",
                    "missing",
                    "a positive step",
                    "lifted_steps needs it",
                )
            })?;
            let t1 = c.count("lifted_steps[0]", t1, 2, 100_000_000)?;
            let t2 = c.count("lifted_steps[1]", t2, t1 as i64 + 1, 100_000_000)?;
            Ok(Some(LiftedGd {
                eta: c.positive("lifted_eta", eta)?,
                steps: [t1, t2],
            }))
        }
        (other, _) => Err(c.error(
            "lifted_steps",
            format!("{other:?}"),
            "[] or two increasing step counts [t1, t2]",
            "the direction error is compared at two times",
        )),
    }
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
        steps: c.count("steps", raw.steps, 0, 100_000_000)?,
        init: c.positive("init", raw.init)?,
        n_test: c.count("n_test", raw.n_test, 1, 10_000_000)?,
        agreement_steps: c.count("agreement_steps", raw.agreement_steps, 0, 100_000_000)?,
        agreement_noise: c.non_negative("agreement_noise", raw.agreement_noise)?,
        record_every: c.count("record_every", raw.record_every, 1, i64::MAX)?,
        seed: model.common.seed,
        seeds: seeds_key(&c, raw.seeds)?,
        lifted: lifted_key(&c, &raw.lifted_steps, raw.lifted_eta)?,
        csv: raw.csv,
    })
}

/// Columns of [`Outcome::series`] of the trained run (`steps` > 0): one line every
/// `record_every` steps.
pub const SERIES_HEADER: [&str; 7] = [
    "step",
    "loss",
    "in_agreement",
    "norm_p",
    "norm_q",
    "cos_pq_svm",
    "cos_pq_lifted",
];

/// Columns of [`Outcome::series`] without a trained run (`steps` = 0): one line per seed, the
/// measured values of its rows (NaN without the agreement run).
pub const SEED_SERIES_HEADER: [&str; 6] = [
    "seed",
    "b3_linear_fraction",
    "agreement_held",
    "drift",
    "lift_gap",
    "cos_pq_lifted",
];

/// What a `bias_agreement` run produced: the trained student (None when `steps` = 0), its rows
/// and summaries, and the time series (`header`: [`SERIES_HEADER`], or [`SEED_SERIES_HEADER`]
/// when `steps` = 0).
pub struct Outcome {
    pub student: Option<ReferenceOutcome>,
    pub rows: Vec<Row>,
    pub summary: Vec<(String, f64)>,
    pub header: &'static [&'static str],
    pub series: Vec<Vec<f64>>,
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let o = run(&spec, &model.common.file)?;
    let csv = time_series(model, &spec.csv, o.header, o.series)?;
    Ok((o.rows, o.summary, csv))
}

/// The data of `seed` (teacher draws, or the explicit data) with a unit vector that separates
/// them, and the plain and lifted max-margin directions (P* - Q* of the lifted one).
struct SeedData {
    x: DMatrix<f64>,
    y: DVector<f64>,
    ws: DVector<f64>,
    plain: DVector<f64>,
    lifted_pq: DVector<f64>,
}

fn seed_data(spec: &Spec, seed: u64, file: &str) -> Result<SeedData> {
    let why = "B-5 needs linearly separable data";
    let (x, y, ws) = match &spec.data {
        Data::Teacher { n, d, margin } => teacher_data(*n, *d, *margin, seed),
        Data::Explicit(x, y) => {
            let w = separable(file, x, y, why)?;
            let ws = w.normalize();
            (x.clone(), y.clone(), ws)
        }
    };
    let d = x.ncols();
    let plain = separable(file, &x, &y, why)?;
    let lifted = separable(file, &lifted_features(&x, &y, spec.alpha), &y, why)?;
    let lifted_pq = lifted.rows(0, d) - lifted.rows(d, d);
    Ok(SeedData {
        x,
        y,
        ws,
        plain,
        lifted_pq,
    })
}

/// The B-3/B-4/B-5 run of a checked spec (`file` names the model file in errors): the student
/// trained from small init (`steps` > 0), per seed B-3 on random sums (`steps` = 0) and the
/// agreement-regime run (`agreement_steps` > 0), and the long lifted GD (`lifted`).
pub fn run(spec: &Spec, file: &str) -> Result<Outcome> {
    let c = Checker::new(file);
    let main = seed_data(spec, spec.seed, file)?;
    let (mut rows, mut summary, mut series) = (Vec::new(), Vec::new(), Vec::new());
    let student = if spec.steps > 0 {
        let out = trained_run(spec, &main, &mut series)?;
        rows.push(b3_row(&out, spec.k, spec.alpha, spec.n_test));
        summary = summary_of(&out, &main.x, &main.y, &main.plain, &main.lifted_pq);
        Some(out)
    } else {
        None
    };
    let one = [spec.seed];
    let seeds = spec.seeds.as_deref().unwrap_or(&one);
    for &seed in seeds {
        let label = |what: String| match spec.seeds {
            Some(_) => format!("seed {seed}: {what}"),
            None => what,
        };
        let mut per_seed = Vec::new();
        let mut line = vec![f64::NAN; SEED_SERIES_HEADER.len()];
        line[0] = seed as f64;
        if spec.steps == 0 {
            per_seed.push(b3_random_row(spec, seed));
            line[1] = per_seed[0].measured;
        }
        if spec.agreement_steps > 0 {
            let other;
            let data = if seed == spec.seed {
                &main
            } else {
                other = seed_data(spec, seed, file)?;
                &other
            };
            let run = AgreementSetting {
                x: &data.x,
                y: &data.y,
                ws: &data.ws,
                settings: StudentSettings {
                    k: spec.k,
                    alpha: spec.alpha,
                    eta: spec.eta,
                    steps: spec.agreement_steps,
                },
                noise: spec.agreement_noise,
                seed,
            };
            let (r, cos_lifted) = agreement_rows(&c, &run, &data.lifted_pq)?;
            for (slot, row) in line[2..5].iter_mut().zip(&r) {
                *slot = row.measured;
            }
            line[5] = cos_lifted;
            per_seed.extend(r);
            summary.push((
                label("agreement run: cos(P - Q, lifted P* - Q*)".into()),
                cos_lifted,
            ));
        }
        if spec.steps == 0 {
            series.push(line);
        }
        rows.extend(per_seed.into_iter().map(|r| Row {
            label: label(r.label.clone()),
            ..r
        }));
    }
    if let Some(lifted) = spec.lifted {
        let l = lifted_direction(&main.x, &main.y, spec.alpha, lifted.eta, &lifted.steps)?;
        rows.extend(lifted_rows(&l));
        for p in &l.checkpoints {
            summary.push((
                format!("lifted GD t = {:e}: theta.w_hat/|w_hat|^2", p.t as f64),
                p.along,
            ));
            summary.push((
                format!("lifted GD t = {:e}: |theta - its w_hat part|", p.t as f64),
                p.across,
            ));
        }
    }
    let header: &'static [&'static str] = if spec.steps > 0 {
        &SERIES_HEADER
    } else {
        &SEED_SERIES_HEADER
    };
    Ok(Outcome {
        student,
        rows,
        summary,
        header,
        series,
    })
}

/// The student trained from small init on the data of `seed` (rng seed + 2000), its time
/// series appended to `series` every `record_every` steps.
fn trained_run(
    spec: &Spec,
    data: &SeedData,
    series: &mut Vec<Vec<f64>>,
) -> Result<ReferenceOutcome> {
    let Spec {
        k,
        alpha,
        eta,
        steps,
        init,
        n_test,
        record_every: every,
        seed,
        ..
    } = *spec;
    let SeedData {
        x,
        y,
        plain,
        lifted_pq,
        ..
    } = data;
    let s = StudentSettings {
        k,
        alpha,
        eta,
        steps,
    };
    reference_run_on(x, y, &s, init, n_test, seed + 2000, |step, net, l| {
        let t = step + 1;
        if t % every == 0 || t == steps || t == 1 {
            let p: DVector<f64> = net.w.columns(0, k).column_sum();
            let q: DVector<f64> = net.w.columns(k, k).column_sum();
            let pq = &p - &q;
            series.push(vec![
                t as f64,
                l,
                in_agreement(net, x, y) as u8 as f64,
                p.norm(),
                q.norm(),
                cos(&pq, plain),
                cos(&pq, lifted_pq),
            ]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// The B-3/B-4/B-5 reference is the shipped `models/bias-agreement-check.toml`; the shipped
    /// `models/bias-agreement.toml` keeps one seed, unlabelled, and no lifted GD.
    #[test]
    fn reference_is_the_shipped_model() {
        super::super::assert_shipped("bias-agreement-check.toml", check, &Spec::reference());
        let a = super::super::shipped_spec("bias-agreement.toml", check);
        assert!(a.seeds.is_none() && a.lifted.is_none() && a.steps > 0);
    }

    #[test]
    fn lifted_keys_are_checked() {
        let spec = |extra: &str| {
            let text = format!(
                "kind = \"bias_agreement\"\nn = 10\nd = 2\nmargin = 0.1\nk = 2\nalpha = 0.2\n\
                 eta = 0.5\nsteps = 0\ninit = 1e-3\n{extra}"
            );
            check(&crate::model::parse("t.toml", &text).unwrap())
        };
        assert!(spec("lifted_steps = [10, 100]\nlifted_eta = 1.0").is_ok());
        for bad in [
            "lifted_steps = [100, 10]\nlifted_eta = 1.0",
            "lifted_steps = [10, 100]",
            "lifted_steps = [10]\nlifted_eta = 1.0",
            "lifted_eta = 1.0",
            "seeds = []",
            "seeds = [-1]",
        ] {
            assert!(matches!(spec(bad), Err(Error::Parameter { .. })), "{bad}");
        }
    }
}
