//! Claim I-14 on networks: the finite-N seed of the M-only erf network at g = 0.
//!
//! The network is exactly the 2-D Euler map with the empirical gain h_N of its own pattern
//! draw ([`crate::rnn::latent_xval`], X-6). Here the latent model is given that draw: the
//! patterns U of seed `seed` (drawn exactly as [`crate::rnn::network::Network::new`] draws them, via
//! [`patterns_for_seed`]) define
//!
//! - the exact map h_N (`Order::Exact`): the same map as the network, so the two codes (N-dim
//!   BPTT and the 2-D adjoint) must agree to rounding — a check on both;
//! - the moment-matched expansions h_3, h_5 ([`crate::latent::finite_n`]): Gaussian G kappa
//!   plus the deviation of the empirical moments m_pq from their Gaussian values, to third or
//!   fifth order: the prediction of I-14, I_pred, from N-independent work (the moments are
//!   one O(N) pass; training is 2-D).
//!
//! Each is trained by the same Euler map, trial layout and GD as the network
//! ([`EulerLatent`]), so network vs model differs only in the gain. Beside them, the input-leak
//! model of X-6 (Gaussian gain, input leak calibrated to the network's eps) gives the figure
//! the moment-matched model must beat.

use serde::Serialize;

use super::latent_xval::{
    calibrate_leak, run_latent, run_latent_model, run_network, EulerLatent, Measured, XvalSpec,
};
use super::network::patterns_for_seed;
use crate::interference::latent_model::{LatentReport, LatentSpec};
use crate::interference::nonlinear::{arr, decompose, learn, LearningSummary, Task};
use crate::latent::finite_n::{FiniteNGain, FiniteNSpec, Order};
use crate::latent::gain::GainKind;
use crate::report::{fmt_num, Report};
use crate::Result;

pub use crate::latent::finite_n::MAX_N;

/// The finite-N gain of the pattern draw of an N-neuron network with seed `seed`.
pub fn gain_for_seed(kind: GainKind, order: Order, n: usize, seed: u64) -> FiniteNGain {
    let u = patterns_for_seed(n, seed);
    FiniteNGain::new(kind, order, u.column(0).as_slice(), u.column(1).as_slice())
}

/// Train the Euler latent model with the finite-N gain of (N, seed) through A then B, in the
/// setting `spec` (erf, no input leak).
pub fn run_finite_n(spec: &XvalSpec, order: Order, n: usize, seed: u64) -> Result<Measured> {
    let gain = gain_for_seed(GainKind::Erf, order, n, seed);
    run_latent_model(spec, &EulerLatent::new(spec, 0.0).with_finite_n(gain))
}

/// One (N, seed) of the I-14 comparison.
#[derive(Debug, Clone, Serialize)]
pub struct SeedComparison {
    pub n: usize,
    pub seed: u64,
    /// The network (`None` when only the exact reduction was run, see [`compare_seed`]).
    pub network: Option<Measured>,
    /// The exact-h_N latent model.
    pub exact: Measured,
    /// The moment-matched models of order 3 and 5.
    pub order3: Measured,
    pub order5: Measured,
    /// Order 7: the next term (diagnostic).
    pub order7: Measured,
    /// The input-leak model (Gaussian gain) given the seed eps, and its calibrated leak.
    pub leak_model: Measured,
    pub leak: f64,
    /// m_13 of the draw (the leading seed coefficient, THEORY I-14).
    pub m13: f64,
}

impl SeedComparison {
    /// The reference interference: the network's, or the exact reduction's (equal to it to
    /// rounding, checked where both run).
    pub fn i_net(&self) -> f64 {
        self.network
            .as_ref()
            .map_or(self.exact.interference, |m| m.interference)
    }

    /// Largest relative difference between network and exact reduction over I, eps, tau_A,
    /// tau_B and the entries of M after A and after B (relative to the largest entry); `None`
    /// without the network.
    pub fn exact_gap(&self) -> Option<f64> {
        let net = self.network.as_ref()?;
        let ex = &self.exact;
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
        let mat = |a: &[[f64; 2]; 2], b: &[[f64; 2]; 2]| {
            let scale = b.iter().flatten().fold(0.0f64, |s, v| s.max(v.abs()));
            a.iter()
                .flatten()
                .zip(b.iter().flatten())
                .map(|(x, y)| (x - y).abs() / scale)
                .fold(0.0, f64::max)
        };
        Some(
            [
                rel(net.interference, ex.interference),
                rel(net.eps, ex.eps),
                rel(net.tau_a, ex.tau_a),
                rel(net.tau_b, ex.tau_b),
                mat(&net.m_after_a, &ex.m_after_a),
                mat(&net.m_after_b, &ex.m_after_b),
            ]
            .into_iter()
            .fold(0.0, f64::max),
        )
    }

    /// |ln(I_model / I_net)| of a model's interference.
    pub fn log_error(&self, model: &Measured) -> f64 {
        (model.interference / self.i_net()).ln().abs()
    }
}

/// Run one (N, seed): the network (if `with_network`), the exact reduction, the moment-matched
/// models of order 3 and 5 and the input-leak model given the seed eps (the network's, or the
/// exact reduction's when the network is not run).
pub fn compare_seed(
    spec: &XvalSpec,
    n: usize,
    seed: u64,
    with_network: bool,
) -> Result<SeedComparison> {
    let network = if with_network {
        Some(run_network(spec, n, seed)?)
    } else {
        None
    };
    let u = patterns_for_seed(n, seed);
    let (a, b) = (u.column(0), u.column(1));
    let model = |order| -> Result<Measured> {
        let gain = FiniteNGain::new(GainKind::Erf, order, a.as_slice(), b.as_slice());
        run_latent_model(spec, &EulerLatent::new(spec, 0.0).with_finite_n(gain))
    };
    let exact = model(Order::Exact)?;
    let order3 = model(Order::Three)?;
    let order5 = model(Order::Five)?;
    let order7 = model(Order::Seven)?;
    let m13 = crate::latent::finite_n::moments(a.as_slice(), b.as_slice())[1][3];
    let eps = network.as_ref().map_or(exact.eps, |m| m.eps);
    let leak = calibrate_leak(spec, eps)?;
    let leak_model = run_latent(spec, leak)?;
    Ok(SeedComparison {
        n,
        seed,
        network,
        exact,
        order3,
        order5,
        order7,
        leak_model,
        leak,
        m13,
    })
}

/// [`compare_seed`] for every N in `ns` and seeds 1..=`seeds`, in parallel, rows in (N, seed)
/// order (deterministic for any thread count). The network runs where `with_network(N)`.
pub fn compare(
    spec: &XvalSpec,
    ns: &[usize],
    seeds: u64,
    with_network: impl Fn(usize) -> bool + Sync,
) -> Result<Vec<SeedComparison>> {
    let jobs: Vec<(usize, u64)> = ns
        .iter()
        .flat_map(|&n| (1..=seeds).map(move |s| (n, s)))
        .collect();
    crate::num::stats::par_map(&jobs, |&(n, s)| compare_seed(spec, n, s, with_network(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact reduction reproduces the network to rounding (both codes, same map), and the
    /// moment-matched models sit between: the seed-level numbers that I-14 uses.
    #[test]
    fn exact_reduction_reproduces_the_network() {
        let spec = XvalSpec::standard();
        for seed in 1..=3 {
            let c = compare_seed(&spec, 128, seed, true).unwrap();
            let gap = c.exact_gap().unwrap();
            println!(
                "seed {seed}: gap {gap:.2e}; I net {:.4e} exact {:.4e} o3 {:.4e} o5 {:.4e} o7 {:.4e} leak {:.4e}; eps {:.3e} m13 {:.3}",
                c.i_net(),
                c.exact.interference,
                c.order3.interference,
                c.order5.interference,
                c.order7.interference,
                c.leak_model.interference,
                c.exact.eps,
                c.m13
            );
            assert!(gap < 1e-8, "seed {seed}: {gap}");
        }
    }
}

/// The finite-N prediction of a `latent` model with `[finite_n]`: the same learning flow as
/// the Gaussian model (adaptive trials, adjoint, gradient flow on M), with the gain of the
/// pattern draw of (N, seed).
#[derive(Debug, Clone, Serialize)]
pub struct FiniteNPrediction {
    pub spec: FiniteNSpec,
    /// The leading seed moment m_13 and the degree-4 Hermite moments c_40, c_31, c_22, c_13, c_04.
    pub m13: f64,
    pub hermite4: [f64; 5],
    pub learning_a: LearningSummary,
    pub learning_b: LearningSummary,
    pub interference: f64,
    /// kappa_a(T) of the B trial at M after A (the seed the draw produces).
    pub eps: f64,
    pub m_after_a: [[f64; 2]; 2],
    pub m_after_b: [[f64; 2]; 2],
    pub rotation_share: f64,
}

/// `modeflow predict` of a `latent` model with `[finite_n]`: the Gaussian-limit report and the
/// finite-N prediction beside it.
#[derive(Debug, Clone, Serialize)]
pub struct FiniteNReport {
    pub gaussian: LatentReport,
    pub gaussian_eps: f64,
    pub finite_n: FiniteNPrediction,
}

impl FiniteNReport {
    /// Whether a learning run did not converge (the CLI exits 1).
    pub fn failed(&self) -> bool {
        let g = &self.gaussian.sequential;
        let f = &self.finite_n;
        !(g.learning_a.converged
            && g.learning_b.converged
            && f.learning_a.converged
            && f.learning_b.converged)
    }
}

/// Run the finite-N learning flow of `spec` with the draw `fin`.
pub fn predict_finite_n(spec: &LatentSpec, fin: &FiniteNSpec) -> Result<FiniteNPrediction> {
    let u = patterns_for_seed(fin.n, fin.seed);
    let (a, b) = (u.column(0), u.column(1));
    let m = crate::latent::finite_n::moments(a.as_slice(), b.as_slice());
    let c = crate::latent::finite_n::hermite_moments(&m);
    let mut seq = spec.sequential();
    seq.trials.finite_n = Some(FiniteNGain::new(
        spec.gain,
        fin.order,
        a.as_slice(),
        b.as_slice(),
    ));
    let t = &seq.trials;
    let m0 = spec.m0();
    let run_a = learn(t, &m0, Task::A, &seq.learning_a)?;
    let run_b = learn(t, &run_a.m_end, Task::B, &seq.learning_b)?;
    Ok(FiniteNPrediction {
        spec: *fin,
        m13: m[1][3],
        hermite4: [c[4][0], c[3][1], c[2][2], c[1][3], c[0][4]],
        learning_a: (&run_a).into(),
        learning_b: (&run_b).into(),
        interference: t.loss(&run_b.m_end, Task::A)? / t.loss(&m0, Task::A)?,
        eps: t.trial(&run_a.m_end, Task::B)?.end_state()[0],
        m_after_a: arr(&run_a.m_end),
        m_after_b: arr(&run_b.m_end),
        rotation_share: decompose(&run_a.m_end, &run_b.m_end).rotation_share,
    })
}

/// `predict` of a `latent` model; with `[finite_n]` the finite-N prediction beside it.
pub fn predict_latent(model: &crate::model::ModelFile) -> Result<FiniteNReport> {
    let spec = LatentSpec::from_model(model)?;
    let fin = spec.finite_n.ok_or_else(|| {
        crate::Error::Requirement("the finite-N prediction needs a [finite_n] table".into())
    })?;
    let gaussian = crate::interference::latent_model::predict(model)?;
    let t = spec.trials();
    let ma = &gaussian.sequential.m_after_a;
    let m_a = nalgebra::Matrix2::new(ma[0][0], ma[0][1], ma[1][0], ma[1][1]);
    let gaussian_eps = t.trial(&m_a, Task::B)?.end_state()[0];
    Ok(FiniteNReport {
        gaussian,
        gaussian_eps,
        finite_n: predict_finite_n(&spec, &fin)?,
    })
}

impl Report for FiniteNReport {
    fn text(&self) -> String {
        let mut o = self.gaussian.text();
        let f = &self.finite_n;
        let g = &self.gaussian.sequential;
        o.push_str(&format!(
            "\n5. FINITE-N PREDICTION (I-14): N = {}, pattern draw of seed {}, gain order {}\n",
            f.spec.n,
            f.spec.seed,
            f.spec.order.name()
        ));
        o.push_str(&format!(
            "    seed moment m_13 = {}   Hermite moments c_40 c_31 c_22 c_13 c_04 = {}\n",
            fmt_num(f.m13),
            f.hermite4
                .iter()
                .map(|v| fmt_num(*v))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        o.push_str(&format!(
            "    {:<34} {:>14} {:>14}\n",
            "", "Gaussian limit", "finite N"
        ));
        let mut line = |what: &str, a: String, b: String| {
            o.push_str(&format!("    {what:<34} {a:>14} {b:>14}\n"));
        };
        line(
            "interference I",
            fmt_num(g.interference),
            fmt_num(f.interference),
        );
        line(
            "seed eps = kappa_a(T), B trial",
            fmt_num(self.gaussian_eps),
            fmt_num(f.eps),
        );
        line(
            "tau_A",
            fmt_num(g.learning_a.tau),
            fmt_num(f.learning_a.tau),
        );
        line(
            "tau_B",
            fmt_num(g.learning_b.tau),
            fmt_num(f.learning_b.tau),
        );
        line(
            "rotation share of Delta M (B)",
            fmt_num(g.decomposition.rotation_share),
            fmt_num(f.rotation_share),
        );
        for (i, j, name) in [
            (0, 0, "M_aa"),
            (0, 1, "M_ab"),
            (1, 0, "M_ba"),
            (1, 1, "M_bb"),
        ] {
            line(
                &format!("{name} after B"),
                fmt_num(g.m_after_b[i][j]),
                fmt_num(f.m_after_b[i][j]),
            );
        }
        for (task, l) in [("A", &f.learning_a), ("B", &f.learning_b)] {
            if !l.converged {
                o.push_str(&format!("    finite N: task {task} NOT converged\n"));
            }
        }
        o
    }
}

#[cfg(test)]
mod predict_tests {
    use super::*;

    /// The shipped model predicts both columns, learning converges, and the finite-N seed is
    /// the draw's (nonzero although the model file sets eps = 0; the Gaussian one is 0).
    #[test]
    fn shipped_finite_n_model_predicts_beside_the_gaussian_limit() {
        let text = include_str!("../../models/latent-finite-n.toml");
        let model = crate::model::parse("latent-finite-n.toml", text).unwrap();
        let r = predict_latent(&model).unwrap();
        assert!(!r.failed(), "{}", r.text());
        assert_eq!(r.gaussian_eps, 0.0);
        assert!(r.finite_n.eps.abs() > 1e-4, "{}", r.finite_n.eps);
        assert!(r.finite_n.interference > 0.0 && r.finite_n.interference.is_finite());
        assert!(r.text().contains("FINITE-N PREDICTION"));
    }
}
