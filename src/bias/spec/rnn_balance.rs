//! Kind `bias_rnn_balance` (THEORY II.1, B-2): a ReLU RNN h_{t+1} = relu(W h_t + U x_t + b),
//! y_t = V h_t + c under full-batch BPTT-GD with weight decay; the per-step identity of the
//! per-unit charge `Q_j = |W[j,:]|^2 + |U[j,:]|^2 + b_j^2 - |W[:,j]|^2 - |V[:,j]|^2`,
//! Q_j' = (1 - eta lambda)^2 Q_j + eta^2 Q_j(grad), and its drift at a fixed horizon.
//!
//! Keys: sizes `neurons` (N), `inputs` (m), `outputs` (p), `t` (sequence length), `batch`
//! (sequences); the identity runs: `eta`, `steps`, `identity_seeds` (each run draws its own net
//! and sequences) and `identity_weight_decays` (lambda, one per seed); optionally the drift
//! exponent: `drift_etas` (at least 2 decreasing step sizes), `drift_horizon` (eta T, default 1),
//! on the net and sequences drawn from the model's `seed`, without weight decay; `csv` (one line
//! per run: seed, eta, weight decay, steps, max residual, drift, final loss).
//!
//! Rows: the worst per-step residual over the identity runs, relative to the unit's sum of
//! squares (<= 1e-12: rounding only, claim file B-2); with `drift_etas`, the fitted exponent of
//! drift ~ eta^p at eta T fixed (1 +- 0.05).

use rand::{rngs::StdRng, SeedableRng};
use serde::Deserialize;

use super::{time_series, Trained};
use crate::bias::balance::{
    random_rnn, rnn_run, BalanceRun, DRIFT_ETAS, EXPONENT_TOL, IDENTITY_TOL,
};
use crate::bias::stats::{fmt_list, loglog_slope};
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
use crate::Result;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    neurons: i64,
    inputs: i64,
    outputs: i64,
    t: i64,
    batch: i64,
    eta: f64,
    steps: i64,
    identity_seeds: Vec<i64>,
    identity_weight_decays: Vec<f64>,
    drift_etas: Option<Vec<f64>>,
    #[serde(default = "default_horizon")]
    drift_horizon: f64,
    csv: Option<String>,
}

fn default_horizon() -> f64 {
    1.0
}

/// The drift part of a `bias_rnn_balance` model file.
#[derive(Debug, Clone)]
pub struct DriftSpec {
    /// decreasing step sizes
    pub etas: Vec<f64>,
    /// the fixed horizon eta T
    pub horizon: f64,
}

/// A checked `bias_rnn_balance` model file.
#[derive(Debug, Clone)]
pub struct Spec {
    pub neurons: usize,
    pub inputs: usize,
    pub outputs: usize,
    pub t: usize,
    pub batch: usize,
    pub eta: f64,
    pub steps: usize,
    /// (seed, weight decay) of each identity run
    pub identity_runs: Vec<(u64, f64)>,
    pub drift: Option<DriftSpec>,
    /// draws the net and sequences of the drift runs
    pub seed: u64,
    pub csv: Option<String>,
}

/// Check a `bias_rnn_balance` model file without running it.
pub fn check(model: &ModelFile) -> Result<Spec> {
    let raw: Raw = model.raw()?;
    let c = model.checker();
    let neurons = c.count("neurons", raw.neurons, 1, 2_000)?;
    let inputs = c.count("inputs", raw.inputs, 1, 2_000)?;
    let outputs = c.count("outputs", raw.outputs, 1, 2_000)?;
    let t = c.count("t", raw.t, 1, 10_000)?;
    let batch = c.count("batch", raw.batch, 1, 100_000)?;
    // BPTT holds the states and pre-activations t x N x batch and the inputs and targets
    // t x (m + p) x batch; the weights and their gradients N x (N + m + p); each about 4x
    let (nf, tb) = (neurons as f64, (t * batch) as f64);
    let bytes = 8.0
        * 4.0
        * (2.0 * tb * nf
            + tb * (inputs + outputs) as f64
            + 2.0 * nf * (nf + (inputs + outputs) as f64));
    crate::budget::check_memory(
        &model.common.file,
        if t >= batch { "t" } else { "batch" },
        t.max(batch),
        bytes,
        "BPTT states t x N x batch, sequences t x (m + p) x batch, weights, each about 4x",
    )?;
    let eta = c.positive("eta", raw.eta)?;
    let steps = c.count("steps", raw.steps, 1, 100_000_000)?;
    let identity_runs = identity_runs(&c, &raw.identity_seeds, &raw.identity_weight_decays)?;
    crate::budget::check_steps(
        &model.common.file,
        "steps",
        steps,
        (steps * identity_runs.len()) as f64,
        "every identity run takes `steps` steps",
    )?;
    let drift = drift_spec(&c, model, raw.drift_etas, raw.drift_horizon)?;
    Ok(Spec {
        neurons,
        inputs,
        outputs,
        t,
        batch,
        eta,
        steps,
        identity_runs,
        drift,
        seed: model.common.seed,
        csv: raw.csv,
    })
}

/// The identity runs (seed, weight decay), one per entry of the two lists.
fn identity_runs(c: &Checker<'_>, seeds: &[i64], decays: &[f64]) -> Result<Vec<(u64, f64)>> {
    if seeds.is_empty() {
        return Err(c.error(
            "identity_seeds",
            "[]",
            "a list of at least one seed",
            "no identity run",
        ));
    }
    if decays.len() != seeds.len() {
        return Err(c.error(
            "identity_weight_decays",
            format!("{} entries", decays.len()),
            &format!("{} entries (one per identity seed)", seeds.len()),
            "inconsistent shapes: identity_seeds and identity_weight_decays differ in length",
        ));
    }
    seeds
        .iter()
        .zip(decays)
        .enumerate()
        .map(|(i, (&s, &l))| {
            Ok((
                c.count(&format!("identity_seeds[{i}]"), s, 0, 1 << 62)? as u64,
                c.non_negative(&format!("identity_weight_decays[{i}]"), l)?,
            ))
        })
        .collect()
}

/// The drift exponent's step sizes (decreasing, >= 2) and horizon, if asked for.
fn drift_spec(
    c: &Checker<'_>,
    model: &ModelFile,
    drift_etas: Option<Vec<f64>>,
    horizon: f64,
) -> Result<Option<DriftSpec>> {
    Ok(match drift_etas {
        None => None,
        Some(etas) => {
            super::drift_etas(c, &etas)?;
            let horizon = c.positive("drift_horizon", horizon)?;
            crate::budget::check_steps(
                &model.common.file,
                "drift_etas",
                etas[etas.len() - 1],
                etas.iter().map(|e| horizon / e).sum::<f64>(),
                "every drift step size runs horizon / eta steps",
            )?;
            Some(DriftSpec { etas, horizon })
        }
    })
}

impl Spec {
    /// The B-2 reference (`models/bias-rnn-balance.toml`): N = 8, m = 3, p = 2, T = 6, batch
    /// 10; identity runs at seeds 1, 2 (lambda 0) and 3, 4 (lambda 0.05), eta = 0.05, 200
    /// steps; drift at eta*T = 1 for the claim's step sizes [`DRIFT_ETAS`], net from seed 21.
    pub fn reference() -> Spec {
        Spec {
            neurons: 8,
            inputs: 3,
            outputs: 2,
            t: 6,
            batch: 10,
            eta: 0.05,
            steps: 200,
            identity_runs: vec![(1, 0.0), (2, 0.0), (3, 0.05), (4, 0.05)],
            drift: Some(DriftSpec {
                etas: DRIFT_ETAS.to_vec(),
                horizon: 1.0,
            }),
            seed: 21,
            csv: None,
        }
    }

    /// A run of `steps` steps of size `eta` (weight decay `lambda`) on the net and sequences
    /// drawn at `seed`.
    fn run_at(&self, seed: u64, eta: f64, lambda: f64, steps: usize) -> Result<BalanceRun> {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut net, xs, ts) = random_rnn(
            &mut rng,
            self.neurons,
            self.inputs,
            self.outputs,
            self.t,
            self.batch,
        );
        rnn_run(&mut net, &xs, &ts, eta, lambda, steps)
    }
}

/// The drift curve: sum_j |Q_j(T) - Q_j(0)| at eta T = horizon per step size, the exponent
/// of drift ~ eta^p (least squares in log-log), and the runs.
#[derive(Debug, Clone)]
pub struct DriftCurve {
    pub drifts: Vec<f64>,
    pub exponent: f64,
    pub runs: Vec<BalanceRun>,
}

/// What a B-2 run measured: the identity runs, and the drift curve if asked for.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub identity: Vec<BalanceRun>,
    pub drift: Option<DriftCurve>,
}

/// The B-2 run of a checked spec: every identity run, then (with `drift_etas`) the drift at
/// the fixed horizon for each step size on the same net and sequences (the model's `seed`).
pub fn run(spec: &Spec) -> Result<Outcome> {
    let identity = spec
        .identity_runs
        .iter()
        .map(|&(seed, lambda)| spec.run_at(seed, spec.eta, lambda, spec.steps))
        .collect::<Result<Vec<_>>>()?;
    let drift = match &spec.drift {
        None => None,
        Some(d) => {
            let runs = d
                .etas
                .iter()
                .map(|&eta| spec.run_at(spec.seed, eta, 0.0, (d.horizon / eta).round() as usize))
                .collect::<Result<Vec<_>>>()?;
            let drifts: Vec<f64> = runs.iter().map(|r| r.drift).collect();
            Some(DriftCurve {
                exponent: loglog_slope(&d.etas, &drifts),
                drifts,
                runs,
            })
        }
    };
    Ok(Outcome { identity, drift })
}

/// B-2's rows of a run and its summaries: the worst per-step residual of the charge identity
/// over the identity runs, and the drift exponent. What `modeflow train` on a
/// `bias_rnn_balance` model and the B-2 check report.
pub fn rows(spec: &Spec, out: &Outcome) -> (Vec<Row>, Vec<(String, f64)>) {
    let worst = out
        .identity
        .iter()
        .fold(0.0_f64, |w, r| w.max(r.max_residual));
    let mut lambdas: Vec<f64> = Vec::new();
    for &(_, l) in &spec.identity_runs {
        if !lambdas.contains(&l) {
            lambdas.push(l);
        }
    }
    let lambdas: Vec<String> = lambdas.iter().map(|l| l.to_string()).collect();
    let mut rows = vec![Row::abs(
        "ReLU RNN per-step charge identity, max rel. residual",
        0.0,
        worst,
        IDENTITY_TOL,
    )
    .note(format!(
        "N={}, m={}, p={}, T={}, B={}, eta={}, {} steps, lambda in {{{}}}",
        spec.neurons,
        spec.inputs,
        spec.outputs,
        spec.t,
        spec.batch,
        spec.eta,
        spec.steps,
        lambdas.join(", ")
    ))];
    let mut summary = vec![("identity runs".into(), out.identity.len() as f64)];
    if let (Some(d), Some(c)) = (&spec.drift, &out.drift) {
        rows.push(
            Row::abs(
                format!("ReLU RNN charge drift exponent at eta*T = {}", d.horizon),
                1.0,
                c.exponent,
                EXPONENT_TOL,
            )
            .note(format!("etas {:?}, drifts {}", d.etas, fmt_list(&c.drifts))),
        );
        summary.push(("charge drift exponent".into(), c.exponent));
    }
    (rows, summary)
}

pub(super) fn train(model: &ModelFile) -> Result<Trained> {
    let spec = check(model)?;
    let out = run(&spec)?;
    let (rows, summary) = rows(&spec, &out);
    let line = |seed: u64, eta: f64, lambda: f64, r: &BalanceRun| {
        vec![
            seed as f64,
            eta,
            lambda,
            r.steps as f64,
            r.max_residual,
            r.drift,
            r.final_loss,
        ]
    };
    let mut table: Vec<Vec<f64>> = spec
        .identity_runs
        .iter()
        .zip(&out.identity)
        .map(|(&(seed, lambda), r)| line(seed, spec.eta, lambda, r))
        .collect();
    if let (Some(d), Some(c)) = (&spec.drift, &out.drift) {
        for (&eta, r) in d.etas.iter().zip(&c.runs) {
            table.push(line(spec.seed, eta, 0.0, r));
        }
    }
    let csv = time_series(
        model,
        &spec.csv,
        &[
            "seed",
            "eta",
            "weight_decay",
            "steps",
            "max_residual",
            "charge_drift",
            "final_loss",
        ],
        table,
    )?;
    Ok((rows, summary, csv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Verdict;

    /// B-2's reference is the shipped `models/bias-rnn-balance.toml`.
    #[test]
    fn reference_is_the_shipped_model() {
        super::super::assert_shipped("bias-rnn-balance.toml", check, &Spec::reference());
    }

    const BASE: &str = "kind = \"bias_rnn_balance\"\nneurons = 4\ninputs = 2\noutputs = 1\nt = 3\nbatch = 5\neta = 0.05\nsteps = 20\nidentity_seeds = [1, 2]\nidentity_weight_decays = [0.0, 0.1]\n";

    fn parse(text: &str) -> ModelFile {
        crate::model::parse("m.toml", text).unwrap()
    }

    /// A small model runs: the identity at rounding level; the rows name the sizes; without
    /// `drift_etas` there is no drift row.
    #[test]
    fn small_model_runs_and_reports() {
        let spec = check(&parse(BASE)).unwrap();
        let (rows, summary) = rows(&spec, &run(&spec).unwrap());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].verdict, Verdict::Pass, "{rows:?}");
        assert_eq!(
            rows[0].note,
            "N=4, m=2, p=1, T=3, B=5, eta=0.05, 20 steps, lambda in {0, 0.1}"
        );
        assert_eq!(summary[0].1, 2.0);
    }

    /// Bad input names the file, the field, the value and the allowed range (exit 2).
    #[test]
    fn bad_input_names_the_field() {
        for (text, needles) in [
            (
                BASE.replace("neurons = 4", "neurons = 0"),
                &["neurons", "0", "[1, 2000]"][..],
            ),
            (
                BASE.replace("t = 3", "t = 10001"),
                &["`t`", "10001", "[1, 10000]"][..],
            ),
            (
                BASE.replace("eta = 0.05", "eta = -0.05"),
                &["eta", "-0.05"][..],
            ),
            (
                BASE.replace("[0.0, 0.1]", "[0.0]"),
                &[
                    "identity_weight_decays",
                    "1 entries",
                    "2 entries",
                    "inconsistent shapes",
                ][..],
            ),
            (
                BASE.replace("[0.0, 0.1]", "[0.0, -0.1]"),
                &["identity_weight_decays[1]", "-0.1"][..],
            ),
            (
                BASE.replace("[1, 2]", "[1, -2]"),
                &["identity_seeds[1]", "-2"][..],
            ),
            (
                BASE.replace("identity_seeds = [1, 2]", "identity_seeds = []")
                    .replace("[0.0, 0.1]", "[]"),
                &["identity_seeds", "at least one"][..],
            ),
            (
                format!("{BASE}drift_etas = [0.002, 0.004]\n"),
                &["drift_etas[1]", "decrease"][..],
            ),
            (
                format!("{BASE}drift_etas = [0.002]\n"),
                &["drift_etas", "at least 2"][..],
            ),
            (
                format!("{BASE}drift_etas = [1e-3, 1e-12]\n"),
                &["drift_etas", "steps"][..],
            ),
            (
                format!("{BASE}drift_etas = [0.002, 0.001]\ndrift_horizon = 0.0\n"),
                &["drift_horizon", "0"][..],
            ),
            (
                BASE.replace("neurons = 4", "neurons = 2000")
                    .replace("t = 3", "t = 10000")
                    .replace("batch = 5", "batch = 100000"),
                &["batch", "memory budget"][..],
            ),
        ] {
            let e = check(&parse(&text)).unwrap_err();
            let msg = e.to_string();
            assert_eq!(e.exit_code(), 2, "{msg}");
            for n in needles {
                assert!(msg.contains(n) && msg.contains("m.toml"), "{n}: {msg}");
            }
        }
        let e = check(&parse(&format!("{BASE}typo = 1\n"))).unwrap_err();
        assert!(e.to_string().contains("typo"), "{e}");
    }
}
