//! The `[identity_sweep]` and `[deep_linear]` tables of a `bias_balance` model file (B-1): the
//! per-step identity over a grid of two-layer settings and of a deep linear net. Raw tables ->
//! checked parts -> runs -> rows, as for the whole kind ([`super`]).

use rand::{rngs::StdRng, SeedableRng};
use serde::Deserialize;

use super::{activation, loss_named, Spec};
use crate::bias::balance::{
    deep_linear_run, random_deep_linear, random_two_layer, two_layer_run, BalanceRun, SgdSettings,
    IDENTITY_TOL,
};
use crate::bias::nets::{Activation, Loss};
use crate::compare::Row;
use crate::model::{Checker, ModelFile};
use crate::Result;

/// The `[identity_sweep]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    activations: Vec<String>,
    losses: Vec<String>,
    batches: Vec<i64>,
    weight_decays: Vec<f64>,
    eta: f64,
    steps: i64,
    seed: i64,
}

/// The `[deep_linear]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeepLinear {
    widths: Vec<i64>,
    n: i64,
    init: f64,
    eta: f64,
    #[serde(default)]
    weight_decay: f64,
    steps: i64,
    seed: i64,
}

/// The per-step identity over a grid of settings (`[identity_sweep]`), on nets of the model's
/// sizes `d`, `k`, `n` and `init`.
#[derive(Debug, Clone)]
pub struct IdentitySweep {
    pub activations: Vec<Activation>,
    pub losses: Vec<Loss>,
    pub batches: Vec<usize>,
    pub weight_decays: Vec<f64>,
    pub eta: f64,
    pub steps: usize,
    /// run c = 1, 2, ... draws its net and data at seed + c (its minibatch order at c)
    pub seed: u64,
}

impl IdentitySweep {
    /// The number of runs: one per combination.
    pub fn runs(&self) -> usize {
        self.activations.len() * self.losses.len() * self.batches.len() * self.weight_decays.len()
    }
}

/// The deep linear run (`[deep_linear]`).
#[derive(Debug, Clone)]
pub struct DeepLinearSpec {
    /// layer widths d_0, ..., d_L (L = widths - 1 layers)
    pub widths: Vec<usize>,
    /// samples
    pub n: usize,
    pub init: f64,
    pub eta: f64,
    pub lambda: f64,
    pub steps: usize,
    pub seed: u64,
}

/// A non-empty list of the `[identity_sweep]` table, each entry checked by `one`.
fn sweep_list<T, U>(
    c: &Checker,
    key: &str,
    raw: &[T],
    mut one: impl FnMut(&str, &T) -> Result<U>,
) -> Result<Vec<U>> {
    if raw.is_empty() {
        return Err(c.error(
            &format!("identity_sweep.{key}"),
            "[]",
            "a list of at least one entry",
            "the sweep has no runs",
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, v)| one(&format!("identity_sweep.{key}[{i}]"), v))
        .collect()
}

/// Check the `[identity_sweep]` table (batches at most the model's `n`).
pub(super) fn check_sweep(
    model: &ModelFile,
    raw: RawSweep,
    n: usize,
    leaky_slope: f64,
) -> Result<IdentitySweep> {
    let c = model.checker();
    let activations = sweep_list(&c, "activations", &raw.activations, |f, a| {
        activation(&c, f, a, leaky_slope)
    })?;
    let losses = sweep_list(&c, "losses", &raw.losses, |f, l| loss_named(&c, f, l))?;
    let batches = sweep_list(&c, "batches", &raw.batches, |f, &b| {
        c.count(f, b, 1, n as i64)
    })?;
    let weight_decays = sweep_list(&c, "weight_decays", &raw.weight_decays, |f, &l| {
        c.non_negative(f, l)
    })?;
    let sweep = IdentitySweep {
        activations,
        losses,
        batches,
        weight_decays,
        eta: c.positive("identity_sweep.eta", raw.eta)?,
        steps: c.count("identity_sweep.steps", raw.steps, 1, 100_000_000)?,
        seed: c.count("identity_sweep.seed", raw.seed, 0, 1 << 62)? as u64,
    };
    crate::budget::check_steps(
        &model.common.file,
        "identity_sweep.steps",
        sweep.steps,
        sweep.runs() as f64 * sweep.steps as f64,
        "every combination of the sweep runs `steps` steps",
    )?;
    Ok(sweep)
}

/// Check the `[deep_linear]` table.
pub(super) fn check_deep_linear(model: &ModelFile, raw: RawDeepLinear) -> Result<DeepLinearSpec> {
    let c = model.checker();
    if raw.widths.len() < 3 || raw.widths.len() > 65 {
        return Err(c.error(
            "deep_linear.widths",
            format!("{} widths", raw.widths.len()),
            "3..=65 widths (2..=64 layers)",
            "a balance matrix M_l needs two adjacent layers",
        ));
    }
    let widths: Vec<usize> = raw
        .widths
        .iter()
        .enumerate()
        .map(|(i, &w)| c.count(&format!("deep_linear.widths[{i}]"), w, 1, 10_000))
        .collect::<Result<_>>()?;
    let n = c.count("deep_linear.n", raw.n, 1, 1_000_000)?;
    // inputs and targets n x (d_0 + d_L), per-layer activations n x d_l, the layers and their
    // gradients, each held about four times
    let acts: f64 = widths.iter().map(|&w| w as f64).sum();
    let layers: f64 = widths.windows(2).map(|w| (w[0] * w[1]) as f64).sum();
    crate::budget::check_memory(
        &model.common.file,
        "deep_linear.n",
        n,
        8.0 * 4.0 * (n as f64 * acts + 2.0 * layers),
        "activations n x sum of widths, layers and gradients, each about 4x",
    )?;
    Ok(DeepLinearSpec {
        widths,
        n,
        init: c.positive("deep_linear.init", raw.init)?,
        eta: c.positive("deep_linear.eta", raw.eta)?,
        lambda: c.non_negative("deep_linear.weight_decay", raw.weight_decay)?,
        steps: c.count("deep_linear.steps", raw.steps, 1, 100_000_000)?,
        seed: c.count("deep_linear.seed", raw.seed, 0, 1 << 62)? as u64,
    })
}

/// The worst per-step residual over the runs of an identity sweep on nets of the spec's sizes.
pub(super) fn run_sweep(spec: &Spec, sw: &IdentitySweep) -> Result<f64> {
    let mut worst: f64 = 0.0;
    let mut case = 0u64;
    for &act in &sw.activations {
        for &loss in &sw.losses {
            for &lambda in &sw.weight_decays {
                for &batch in &sw.batches {
                    case += 1;
                    let mut rng = StdRng::seed_from_u64(sw.seed + case);
                    let (mut net, x, y) =
                        random_two_layer(&mut rng, spec.d, spec.k, spec.n, act, loss, spec.init);
                    let settings = SgdSettings {
                        eta: sw.eta,
                        lambda,
                        batch,
                        steps: sw.steps,
                        seed: case,
                    };
                    let r = two_layer_run(&mut net, &x, &y, loss, &settings)?;
                    worst = worst.max(r.max_residual);
                }
            }
        }
    }
    Ok(worst)
}

/// The deep linear run of a [`DeepLinearSpec`].
pub(super) fn run_deep_linear(dl: &DeepLinearSpec) -> Result<BalanceRun> {
    let mut rng = StdRng::seed_from_u64(dl.seed);
    let (mut net, x, y) = random_deep_linear(&mut rng, &dl.widths, dl.n, dl.init);
    deep_linear_run(&mut net, &x, &y, dl.eta, dl.lambda, dl.steps)
}

/// The row of an identity sweep: its worst residual (<= [`IDENTITY_TOL`]).
pub(super) fn identity_row(spec: &Spec, sw: &IdentitySweep, worst: f64) -> Row {
    Row::abs(
        format!(
            "two-layer per-step identity, max rel. residual ({} act x {} loss x {} batch x {} wd)",
            sw.activations.len(),
            sw.losses.len(),
            sw.batches.len(),
            sw.weight_decays.len()
        ),
        0.0,
        worst,
        IDENTITY_TOL,
    )
    .note(format!(
        "{} runs x {} steps, d={} k={} n={} eta={}; residual / (|w_j|^2 + a_j^2)",
        sw.runs(),
        sw.steps,
        spec.d,
        spec.k,
        spec.n,
        sw.eta
    ))
}

/// The row of the deep linear run: its worst entrywise residual of M_l (<= [`IDENTITY_TOL`]).
pub(super) fn deep_linear_row(dl: &DeepLinearSpec, r: &BalanceRun) -> Row {
    Row::abs(
        format!(
            "deep linear (L={}) per-step identity of M_l, max rel. residual",
            dl.widths.len() - 1
        ),
        0.0,
        r.max_residual,
        IDENTITY_TOL,
    )
}

#[cfg(test)]
mod tests {
    use super::super::{check, rows, run};

    /// The sweep and deep-linear tables are checked naming the field (dotted) and the range.
    #[test]
    fn sweep_tables_are_checked_naming_the_field() {
        let base = "kind = \"bias_balance\"\nd = 3\nk = 4\nn = 10\nactivation = \"relu\"\nloss = \"square\"\neta = 0.01\nbatch = 5\nsteps = 10\n";
        let sweep = "[identity_sweep]\nactivations = [\"relu\", \"linear\"]\nlosses = [\"square\"]\nbatches = [10, 2]\nweight_decays = [0.0]\neta = 0.05\nsteps = 20\nseed = 3\n";
        let deep = "[deep_linear]\nwidths = [3, 4, 2]\nn = 8\ninit = 0.5\neta = 0.05\nsteps = 20\nseed = 1\n";
        let parse = |t: String| crate::model::parse("m.toml", &t).unwrap();
        let spec = check(&parse(format!("{base}{sweep}{deep}"))).unwrap();
        assert_eq!(spec.identity.as_ref().unwrap().runs(), 4);
        assert_eq!(spec.deep_linear.as_ref().unwrap().lambda, 0.0);
        // the rows: the model's run, the sweep, the deep linear net, all at rounding level
        let (rows, _) = rows(&spec, &run(&spec).unwrap());
        assert_eq!(rows.len(), 3);
        assert!(
            rows.iter()
                .all(|r| r.verdict == crate::compare::Verdict::Pass),
            "{rows:?}"
        );
        assert!(
            rows[1].label.contains("(2 act x 1 loss x 2 batch x 1 wd)"),
            "{}",
            rows[1].label
        );
        assert!(rows[2].label.contains("L=2"), "{}", rows[2].label);
        for (bad, needles) in [
            (
                sweep.replace("10, 2", "11, 2"),
                &["identity_sweep.batches[0]", "11", "[1, 10]"][..],
            ),
            (
                sweep.replace("\"linear\"", "\"tanh\""),
                &["identity_sweep.activations[1]", "tanh"][..],
            ),
            (
                sweep.replace("[\"square\"]", "[]"),
                &["identity_sweep.losses", "at least one"][..],
            ),
            (
                sweep.replace("[0.0]", "[-0.1]"),
                &["identity_sweep.weight_decays[0]", "-0.1"][..],
            ),
            (
                sweep
                    .replace("steps = 20", "steps = 100000000")
                    .replace("[0.0]", "[0.0, 0.1, 0.2]"),
                &["identity_sweep.steps", "1.200e9 steps"][..],
            ),
            (
                deep.replace("[3, 4, 2]", "[3, 2]"),
                &["deep_linear.widths", "2 widths"][..],
            ),
            (
                deep.replace("[3, 4, 2]", "[3, 0, 2]"),
                &["deep_linear.widths[1]", "0"][..],
            ),
            (
                deep.replace("init = 0.5", "init = 0.0"),
                &["deep_linear.init", "0"][..],
            ),
            (
                deep.replace("n = 8", "n = 1000000")
                    .replace("[3, 4, 2]", "[3, 10000, 2]"),
                &["deep_linear.n", "memory budget"][..],
            ),
        ] {
            let e = check(&parse(format!("{base}{bad}"))).unwrap_err();
            let msg = e.to_string();
            assert_eq!(e.exit_code(), 2, "{msg}");
            for n in needles {
                assert!(msg.contains(n) && msg.contains("m.toml"), "{n}: {msg}");
            }
        }
        let e = check(&parse(format!("{base}{deep}typo = 1\n"))).unwrap_err();
        assert!(e.to_string().contains("typo"), "{e}");
    }
}
