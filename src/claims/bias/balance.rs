//! B-1, B-2: the exact balance laws per step and their drift exponents (`crate::bias::balance` runs
//! them).

use nalgebra::DMatrix;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::bias::balance::*;
use crate::bias::nets::{Activation, DeepLinear, Loss};
use crate::bias::spec::balance::{drift_curves, drift_rows, Spec};
use crate::bias::stats::fmt_list;
use crate::claims::Row;
use crate::Result;

/// B-1 check: per-step identity for every activation/loss combination, GD and SGD, with and
/// without weight decay; deep linear identity; drift exponents.
pub fn check_b1() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let acts = [
        ("relu", Activation::Relu),
        ("leaky_relu", Activation::LeakyRelu(0.2)),
        ("linear", Activation::Linear),
    ];
    let losses = [("square", Loss::Square), ("logistic", Loss::Logistic)];
    let mut worst: f64 = 0.0;
    let mut case = 0u64;
    for (an, act) in acts {
        for (ln, loss) in losses {
            for (batch, lambda) in [(40, 0.0), (5, 0.0), (40, 0.1), (5, 0.1)] {
                case += 1;
                let mut rng = StdRng::seed_from_u64(100 + case);
                let (mut net, x, y) = random_two_layer(&mut rng, 6, 12, 40, act, loss, 0.7);
                let r = two_layer_run(
                    &mut net,
                    &x,
                    &y,
                    loss,
                    &SgdSettings {
                        eta: 0.05,
                        lambda,
                        batch,
                        steps: 200,
                        seed: case,
                    },
                )?;
                worst = worst.max(r.max_residual);
                let _ = (an, ln);
            }
        }
    }
    rows.push(
        Row::abs(
            "two-layer per-step identity, max rel. residual (3 act x 2 loss x GD/SGD x wd)",
            0.0,
            worst,
            IDENTITY_TOL,
        )
        .note("24 runs x 200 steps, d=6 k=12 n=40 eta=0.05; residual / (|w_j|^2 + a_j^2)"),
    );
    // deep linear, with weight decay
    let mut rng = StdRng::seed_from_u64(7);
    let dims = [4, 5, 3, 2];
    let mut dl = DeepLinear {
        layers: (0..3)
            .map(|l| {
                DMatrix::from_fn(dims[l + 1], dims[l], |_, _| {
                    0.6 * rng.sample::<f64, _>(StandardNormal)
                })
            })
            .collect(),
    };
    let x = DMatrix::from_fn(4, 30, |_, _| rng.sample::<f64, _>(StandardNormal));
    let y = DMatrix::from_fn(2, 30, |_, _| rng.sample::<f64, _>(StandardNormal));
    let r = deep_linear_run(&mut dl, &x, &y, 0.05, 0.05, 300)?;
    rows.push(Row::abs(
        "deep linear (L=3) per-step identity of M_l, max rel. residual",
        0.0,
        r.max_residual,
        IDENTITY_TOL,
    ));
    // drift exponents (GD and SGD b = 8, leaky ReLU, square loss; no weight decay): the run of
    // `modeflow train` and of the drift figure on the reference spec. SGD: the drift of one run
    // is one realisation of the batch sequence; it is summed over 8 shuffles so the fitted
    // exponent measures the eta-dependence, not noise.
    let spec = Spec::drift_reference();
    if let Some(drift) = &spec.drift {
        rows.extend(drift_rows(&spec, &drift_curves(&spec, drift)?));
    }
    Ok(rows)
}

/// B-2 check: ReLU RNN charge identity under BPTT-GD (with and without weight decay) and the
/// drift exponent.
pub fn check_b2() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut worst: f64 = 0.0;
    for (seed, lambda) in [(1u64, 0.0), (2, 0.0), (3, 0.05), (4, 0.05)] {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut net, xs, ts) = random_rnn(&mut rng, 8, 3, 2, 6, 10);
        let r = rnn_run(&mut net, &xs, &ts, 0.05, lambda, 200)?;
        worst = worst.max(r.max_residual);
    }
    rows.push(
        Row::abs(
            "ReLU RNN per-step charge identity, max rel. residual",
            0.0,
            worst,
            IDENTITY_TOL,
        )
        .note("N=8, m=3, p=2, T=6, B=10, eta=0.05, 200 steps, lambda in {0, 0.05}"),
    );
    let mut rng = StdRng::seed_from_u64(21);
    let (net0, xs, ts) = random_rnn(&mut rng, 8, 3, 2, 6, 10);
    let (drifts, p) = drift_exponent(&DRIFT_ETAS, 1.0, |eta, steps| {
        let mut net = net0.clone();
        rnn_run(&mut net, &xs, &ts, eta, 0.0, steps)
    })?;
    rows.push(
        Row::abs(
            "ReLU RNN charge drift exponent at eta*T = 1",
            1.0,
            p,
            EXPONENT_TOL,
        )
        .note(format!("etas {DRIFT_ETAS:?}, drifts {}", fmt_list(&drifts))),
    );
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b1_and_b2_checks_pass() {
        for row in check_b1().unwrap().into_iter().chain(check_b2().unwrap()) {
            eprintln!("{} | {:e} | {}", row.label, row.measured, row.note);
            assert_eq!(row.verdict, crate::claims::Verdict::Pass, "{row:?}");
        }
    }
}
