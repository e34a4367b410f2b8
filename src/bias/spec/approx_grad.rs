//! Kind `bias_approx_grad` (THEORY II.5, B-14; Ghosh et al. 2023): one step with a biased, noisy
//! gradient estimator g + b + n (E n = 0, Cov n = Sigma = A A^T) on L = (theta - theta*)^T H
//! (theta - theta*) / 2 changes the loss by, in expectation exactly,
//! E[Delta L] = -eta g^T (g + b) + (eta^2/2) [(g + b)^T H (g + b) + tr(H Sigma)];
//! isotropic noise |n| = r |g| descends when lambda_max(H) < 2 / (eta (1 + r^2)).
//!
//! Keys: either random cases (`d`, `cases`, `lambda_max` of H, `bias` and `noise` std of the
//! entries of b and A) or one explicit case (`h` d x d symmetric, `theta` = theta - theta*, `b`,
//! `a`, all of matching sizes); `eta`, `samples` (Monte Carlo draws per case), `mc_seed` (Monte
//! Carlo seed of case 0, default seed + 100), `r` (isotropic noise ratio, default 1.5),
//! `isotropic_eta` (step of the isotropic rows, default `eta`), `csv` (case, formula, Monte
//! Carlo, standard error).
//!
//! Rows: formula vs Monte Carlo per case within 4 standard errors (a correct formula fails with
//! probability 6e-5 per case at a fixed seed); isotropic descent for 100 random H below the bound;
//! H = lambda I at the bound gives E[Delta L] = 0 (1e-14 relative to |g|^2: rounding) and
//! ascends at 1.01 times the bound.

use nalgebra::{DMatrix, DVector};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Deserialize;

use super::{time_series, Trained};
use crate::bias::approx_grad::{expected_delta, monte_carlo_delta, random_spd};
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
use crate::Result;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    d: Option<i64>,
    cases: Option<i64>,
    lambda_max: Option<f64>,
    bias: Option<f64>,
    noise: Option<f64>,
    h: Option<Vec<Vec<f64>>>,
    theta: Option<Vec<f64>>,
    b: Option<Vec<f64>>,
    a: Option<Vec<Vec<f64>>>,
    eta: f64,
    samples: i64,
    #[serde(default = "default_r")]
    r: f64,
    isotropic_eta: Option<f64>,
    mc_seed: Option<i64>,
    csv: Option<String>,
}

fn default_r() -> f64 {
    1.5
}

/// Monte Carlo tolerance in standard errors (module docs).
const MC_SIGMAS: f64 = 4.0;

/// One case: (H, theta - theta*, b, A).
type Case = (DMatrix<f64>, DVector<f64>, DVector<f64>, DMatrix<f64>);

fn matrix(c: &Checker, field: &str, v: &[Vec<f64>], d: usize) -> Result<DMatrix<f64>> {
    if v.len() != d {
        return Err(c.error(
            field,
            format!("{} rows", v.len()),
            &format!("{d} rows (d = length of theta)"),
            "inconsistent shapes",
        ));
    }
    for (i, r) in v.iter().enumerate() {
        if r.len() != d {
            return Err(c.error(
                &format!("{field}[{i}]"),
                format!("{} entries", r.len()),
                &format!("{d} entries"),
                "inconsistent shapes: the matrix must be d x d",
            ));
        }
        for (j, x) in r.iter().enumerate() {
            c.finite(&format!("{field}[{i}][{j}]"), *x)?;
        }
    }
    Ok(DMatrix::from_fn(d, d, |i, j| v[i][j]))
}

fn vector(c: &Checker, field: &str, v: &[f64], d: usize) -> Result<DVector<f64>> {
    if v.len() != d {
        return Err(c.error(
            field,
            format!("{} entries", v.len()),
            &format!("{d} entries (d = length of theta)"),
            "inconsistent shapes",
        ));
    }
    for (i, x) in v.iter().enumerate() {
        c.finite(&format!("{field}[{i}]"), *x)?;
    }
    Ok(DVector::from_column_slice(v))
}

/// The explicit case (h, theta, b, a) of the model file; none of the random-case keys.
fn explicit_case(c: &Checker<'_>, raw: &Raw) -> Result<Case> {
    for (f, given) in [
        ("d", raw.d.is_some()),
        ("cases", raw.cases.is_some()),
        ("lambda_max", raw.lambda_max.is_some()),
        ("bias", raw.bias.is_some()),
        ("noise", raw.noise.is_some()),
    ] {
        if given {
            return Err(c.error(
                f,
                "given",
                "absent with an explicit case (h, theta, b, a)",
                "explicit and random cases do not mix",
            ));
        }
    }
    let need = |f: &str| {
        c.error(
            f,
            "missing",
            "present",
            "an explicit case needs h, theta, b and a",
        )
    };
    let theta = raw.theta.as_ref().ok_or_else(|| need("theta"))?;
    let d = theta.len();
    if d == 0 {
        return Err(c.error("theta", "[]", "at least one entry", "empty"));
    }
    let theta = vector(c, "theta", theta, d)?;
    let h = matrix(c, "h", raw.h.as_ref().ok_or_else(|| need("h"))?, d)?;
    if (&h - h.transpose()).amax() > 1e-12 * h.amax() {
        return Err(c.error(
            "h",
            "a non-symmetric matrix",
            "a symmetric matrix",
            "H is a Hessian",
        ));
    }
    let b = vector(c, "b", raw.b.as_ref().ok_or_else(|| need("b"))?, d)?;
    let a = matrix(c, "a", raw.a.as_ref().ok_or_else(|| need("a"))?, d)?;
    Ok((h, theta, b, a))
}

/// The cases of a model file: one explicit case, or the settings of `cases` random ones.
#[derive(Debug, Clone)]
pub enum Cases {
    Explicit(Box<Case>),
    /// `count` random cases in R^d: H symmetric positive definite with top eigenvalue
    /// `lambda_max`, theta - theta* ~ N(0, I), b ~ N(0, bias^2 I), A_ij ~ N(0, noise^2)
    Random {
        d: usize,
        count: usize,
        lambda_max: f64,
        bias: f64,
        noise: f64,
    },
}

/// Validate the keys of random cases.
fn random_keys(c: &Checker<'_>, raw: &Raw) -> Result<Cases> {
    let need = |f: &str| {
        c.error(
            f,
            "missing",
            "present",
            "random cases need d, cases, lambda_max, bias, noise (or give h, theta, b, a)",
        )
    };
    let d = c.count("d", raw.d.ok_or_else(|| need("d"))?, 1, 1000)?;
    let count = c.count("cases", raw.cases.ok_or_else(|| need("cases"))?, 1, 1000)?;
    let lambda_max = c.positive(
        "lambda_max",
        raw.lambda_max.ok_or_else(|| need("lambda_max"))?,
    )?;
    let bias = c.non_negative("bias", raw.bias.ok_or_else(|| need("bias"))?)?;
    let noise = c.non_negative("noise", raw.noise.ok_or_else(|| need("noise"))?)?;
    Ok(Cases::Random {
        d,
        count,
        lambda_max,
        bias,
        noise,
    })
}

/// The cases of `cases`, random ones drawn from `rng`.
fn draw_cases(cases: &Cases, rng: &mut StdRng) -> Vec<Case> {
    match *cases {
        Cases::Explicit(ref case) => vec![(**case).clone()],
        Cases::Random {
            d,
            count,
            lambda_max,
            bias,
            noise,
        } => (0..count)
            .map(|_| {
                let h = random_spd(rng, d, lambda_max);
                let e0 = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
                let b = DVector::from_fn(d, |_, _| bias * rng.sample::<f64, _>(StandardNormal));
                let a = DMatrix::from_fn(d, d, |_, _| noise * rng.sample::<f64, _>(StandardNormal));
                (h, e0, b, a)
            })
            .collect(),
    }
}

/// A checked `bias_approx_grad` model file.
#[derive(Debug, Clone)]
pub struct Spec {
    pub cases: Cases,
    pub eta: f64,
    pub samples: usize,
    pub r: f64,
    /// the step of the isotropic-noise rows (`isotropic_eta`, default `eta`)
    pub isotropic_eta: f64,
    /// the Monte Carlo seed of case 0 (`mc_seed`, default seed + 100); case i uses mc_seed + i
    pub mc_seed: u64,
    pub seed: u64,
    pub csv: Option<String>,
}

/// Check a `bias_approx_grad` model file without running it.
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let eta = c.positive("eta", raw.eta)?;
    let samples = c.count("samples", raw.samples, 100, 100_000_000)?;
    let r = c.non_negative("r", raw.r)?;
    let isotropic_eta = match raw.isotropic_eta {
        Some(v) => c.positive("isotropic_eta", v)?,
        None => eta,
    };
    let seed = model.common.seed;
    let mc_seed = match raw.mc_seed {
        Some(v) => c.count("mc_seed", v, 0, 1 << 62)? as u64,
        None => seed.wrapping_add(100),
    };
    let explicit = raw.h.is_some() || raw.theta.is_some() || raw.b.is_some() || raw.a.is_some();
    let cases = if explicit {
        Cases::Explicit(Box::new(explicit_case(&c, &raw)?))
    } else {
        random_keys(&c, &raw)?
    };
    Ok(Spec {
        cases,
        eta,
        samples,
        r,
        isotropic_eta,
        mc_seed,
        seed,
        csv: raw.csv,
    })
}

impl Spec {
    /// The B-14 reference (`models/bias-approx-grad-check.toml`): 3 random cases in R^5 drawn
    /// from seed 14 (lambda_max 2, bias std 0.3, noise std 0.5), eta = 0.3, 2e5 Monte Carlo
    /// draws per case from seeds 100, 101, 102; isotropic rows at eta = 0.5, r = 1.5.
    pub fn reference() -> Spec {
        Spec {
            cases: Cases::Random {
                d: 5,
                count: 3,
                lambda_max: 2.0,
                bias: 0.3,
                noise: 0.5,
            },
            eta: 0.3,
            samples: 200_000,
            r: 1.5,
            isotropic_eta: 0.5,
            mc_seed: 100,
            seed: 14,
            csv: None,
        }
    }
}

/// One case of a B-14 run: the formula's E[Delta L], the Monte Carlo mean and its standard error.
#[derive(Debug, Clone, Copy)]
pub struct CaseResult {
    pub formula: f64,
    pub monte_carlo: f64,
    pub std_error: f64,
}

/// What a B-14 run measured: formula and Monte Carlo per case; for isotropic noise |n| = r |g|
/// at the step `isotropic_eta`, the bound 2/(eta(1+r^2)), the largest E[Delta L]/|g|^2 over 100
/// random H below it, and E[Delta L] for H = lambda I at the bound (divided by |g|^2) and at 1.01
/// times the bound.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub cases: Vec<CaseResult>,
    pub bound: f64,
    pub worst: f64,
    pub at_bound: f64,
    pub above_bound: f64,
}

/// The B-14 run of a checked spec: the cases drawn from `StdRng` seed `seed` (then the 100
/// isotropic H and the g of the tightness rows from the same stream), Monte Carlo of case i from
/// seed `mc_seed + i`.
pub fn run(spec: &Spec) -> Result<Outcome> {
    let Spec {
        eta, samples, r, ..
    } = *spec;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let cases = draw_cases(&spec.cases, &mut rng);
    let results = cases
        .iter()
        .enumerate()
        .map(|(i, (h, e0, b, a))| {
            let g = h * e0;
            let formula = expected_delta(h, &g, b, &(a * a.transpose()), eta);
            let seed = spec.mc_seed.wrapping_add(i as u64);
            let (monte_carlo, std_error) = monte_carlo_delta(h, e0, b, a, eta, samples, seed);
            CaseResult {
                formula,
                monte_carlo,
                std_error,
            }
        })
        .collect();
    // isotropic noise: lambda_max < 2/(eta(1+r^2)) => descent, tight for H = lambda I
    let eta = spec.isotropic_eta;
    let d = cases[0].0.nrows();
    let bound = 2.0 / (eta * (1.0 + r * r));
    let isotropic =
        |g: &DVector<f64>| DMatrix::identity(d, d) * (r * r * g.norm_squared() / d as f64);
    let mut worst = f64::NEG_INFINITY;
    for _ in 0..100 {
        let h = random_spd(&mut rng, d, 0.999 * bound);
        let g = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
        let delta = expected_delta(&h, &g, &DVector::zeros(d), &isotropic(&g), eta);
        worst = worst.max(delta / g.norm_squared());
    }
    let g = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
    let sigma = isotropic(&g);
    let at = |lambda: f64| {
        expected_delta(
            &(DMatrix::identity(d, d) * lambda),
            &g,
            &DVector::zeros(d),
            &sigma,
            eta,
        )
    };
    Ok(Outcome {
        cases: results,
        bound,
        worst,
        at_bound: at(bound) / g.norm_squared(),
        above_bound: at(1.01 * bound),
    })
}

/// B-14's rows of a run: formula vs Monte Carlo per case (4 standard errors), isotropic descent
/// below the bound, E[Delta L] = 0 at the bound for H = lambda I (1e-14: rounding) and ascent
/// just above it. What `modeflow train` on a `bias_approx_grad` model and the B-14 check report.
pub fn rows(spec: &Spec, out: &Outcome) -> Vec<Row> {
    let (eta, samples, r) = (spec.eta, spec.samples, spec.r);
    let mut rows: Vec<Row> = out
        .cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Row::abs(
                format!("E[Delta L] formula vs Monte Carlo, case {i}"),
                c.formula,
                c.monte_carlo,
                MC_SIGMAS * c.std_error,
            )
            .note(format!(
                "{samples} samples, standard error {:.2e}, eta = {eta}",
                c.std_error
            ))
        })
        .collect();
    rows.push(Row::holds(
        format!(
            "isotropic noise: E[Delta L] < 0 for 100 H with lambda_max < 2/(eta(1+r^2)) = {:.4}",
            out.bound
        ),
        out.worst < 0.0,
        format!(
            "largest E[Delta L]/|g|^2 = {:.3e} (eta {}, r {r})",
            out.worst, spec.isotropic_eta
        ),
    ));
    rows.push(Row::abs(
        "H = lambda I at the bound: E[Delta L] / |g|^2 = 0",
        0.0,
        out.at_bound,
        1e-14,
    ));
    rows.push(Row::holds(
        "H = 1.01 bound I ascends",
        out.above_bound > 0.0,
        format!("{:.3e}", out.above_bound),
    ));
    rows
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let out = run(&spec)?;
    let rows = rows(&spec, &out);
    let table = out
        .cases
        .iter()
        .enumerate()
        .map(|(i, c)| vec![i as f64, c.formula, c.monte_carlo, c.std_error])
        .collect();
    let summary = vec![
        ("cases".into(), out.cases.len() as f64),
        ("isotropic bound 2/(eta(1+r^2))".into(), out.bound),
    ];
    let csv = time_series(
        model,
        &spec.csv,
        &["case", "formula", "monte_carlo", "std_error"],
        table,
    )?;
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B-14's reference is the shipped `models/bias-approx-grad-check.toml`.
    #[test]
    fn reference_is_the_shipped_model() {
        super::super::assert_shipped("bias-approx-grad-check.toml", check, &Spec::reference());
    }

    /// Without the new keys a model runs as before: the isotropic rows at `eta`, Monte Carlo
    /// from seed + 100.
    #[test]
    fn new_keys_default_to_the_old_run() {
        let a = super::super::shipped_spec("bias-approx-grad.toml", check);
        assert_eq!((a.isotropic_eta, a.mc_seed), (a.eta, a.seed + 100));
    }
}
