//! The text form of an `rnn` report: the setting in plain words, the per-seed table, the
//! summaries over seeds, and every prediction beside its measurement.

use super::RnnReport;
use crate::compare::Row;
use crate::report::{fmt_num, Report};
use crate::rnn::network::{Phi, Recurrent};
use crate::rnn::spec::{Protocol, RnnSpec};
use crate::rnn::train::Optimizer;

impl Report for RnnReport {
    fn text(&self) -> String {
        let mut out = setting(&self.spec);
        if self.spec.protocol == Protocol::Sequential {
            out.push_str(&tasks(&self.spec));
            out.push_str(&self.sequential_table());
            out.push_str(&self.summary_over_seeds());
        } else {
            out.push_str(&self.single_runs());
        }
        out.push_str(&self.fixed_point_notes());
        out.push_str("\nprediction beside measurement:\n");
        for r in &self.rows {
            out.push_str(&row_line(r));
        }
        out
    }
}

/// The first line: network, what is trained and how, protocol, seeds, in plain words (not
/// Rust names: tanh, full W, Adam (beta1 0.9, ...), sequential).
fn setting(s: &RnnSpec) -> String {
    let phi = match s.network.phi {
        Phi::Tanh => "tanh",
        Phi::Erf => "erf",
        Phi::Identity => "identity",
    };
    let trained = match s.trainable.recurrent {
        Recurrent::Full => "full W",
        Recurrent::Latent => "latent M only",
    };
    let opt = optimizer_words(&s.train.optimizer);
    let protocol = match s.protocol {
        Protocol::Sequential => "sequential A -> B",
        Protocol::Single => "single task",
    };
    format!(
        "rnn: N = {}, g = {}, dt = {}, phi = {phi}, trained: {trained} ({opt}), protocol {protocol}, {} seed(s)\n",
        s.network.n,
        s.network.g,
        s.network.dt,
        s.seeds
    )
}

fn optimizer_words(opt: &Optimizer) -> String {
    match *opt {
        Optimizer::Gd => "full-batch gradient descent".to_string(),
        Optimizer::Sgd => "online SGD".to_string(),
        Optimizer::Adam { beta1, beta2, eps } => {
            format!("Adam, beta1 {beta1}, beta2 {beta2}, eps {eps:e}")
        }
        Optimizer::Flow { rtol, atol } => match atol {
            Some(a) => format!("gradient flow, rtol {rtol:e}, atol {a:e}"),
            None => format!("gradient flow, rtol {rtol:e}"),
        },
        Optimizer::ModifiedFlow { eta, rtol, atol } => match atol {
            Some(a) => format!("modified flow of GD at eta {eta}, rtol {rtol:e}, atol {a:e}"),
            None => format!("modified flow of GD at eta {eta}, rtol {rtol:e}"),
        },
    }
}

/// Tasks A and B, and what the measurements mean when their families differ.
fn tasks(s: &RnnSpec) -> String {
    let (a, b) = (s.task, s.task_b());
    let mut out = format!(
        "task A: {} on pattern a; task B: {} on pattern b\n",
        a.family(),
        b.family()
    );
    if a.family() != b.family() {
        out.push_str(
            "  (families differ: I = L_A(after B)/L_A(untrained) with A's own loss; eps = \
             a.x_B(T)/N before B; M_eff = U^T dW U/N split by coordinates: off-diagonal \
             'rotation', M_bb 'new formation')\n",
        );
    }
    out
}

impl RnnReport {
    /// One line per seed: learning times, I, eps, the A fixed point's angle theta, X-2's
    /// 2(1 - cos theta) and the outcome.
    fn sequential_table(&self) -> String {
        let mut out = format!(
            "\n{:>6} {:>8} {:>8} {:>10} {:>10} {:>12} {:>12} {:>10} {:>12} {:>14}\n",
            "seed",
            "steps_A",
            "steps_B",
            "tau_A",
            "tau_B",
            "I",
            "eps",
            "theta",
            "2(1-cos th)",
            "outcome"
        );
        for r in &self.runs {
            let Some(q) = &r.sequential else { continue };
            let (th, pr, oc) = r
                .tracking
                .as_ref()
                .map(|t| {
                    (
                        fmt_num(t.theta),
                        fmt_num(t.interference_predicted),
                        t.outcome,
                    )
                })
                .unwrap_or(("-".into(), "-".into(), "-"));
            out.push_str(&format!(
                "{:>6} {:>8} {:>8} {:>10} {:>10} {:>12} {:>12} {:>10} {:>12} {:>14}\n",
                r.seed,
                q.steps_a,
                q.steps_b,
                fmt_num(q.tau_a),
                fmt_num(q.tau_b),
                fmt_num(q.interference),
                fmt_num(q.eps),
                th,
                pr,
                oc
            ));
        }
        out
    }

    /// Mean and sd of I, its median and geometric mean with bootstrap intervals, the share of
    /// rotations.
    fn summary_over_seeds(&self) -> String {
        let mut out = String::new();
        if let (Some(m), Some(sd)) = (self.summary.interference_mean, self.summary.interference_sd)
        {
            out.push_str(&format!("mean I = {} (sd {})\n", fmt_num(m), fmt_num(sd)));
        }
        if let Some(i) = &self.summary.interference {
            out.push_str(&format!(
                "I over {} seed(s), 95% bootstrap intervals: median {} [{}, {}]",
                i.n,
                fmt_num(i.median.value),
                fmt_num(i.median.lo),
                fmt_num(i.median.hi)
            ));
            if let Some(g) = &i.geomean {
                out.push_str(&format!(
                    ", geometric mean {} [{}, {}]",
                    fmt_num(g.value),
                    fmt_num(g.lo),
                    fmt_num(g.hi)
                ));
            }
            out.push('\n');
        }
        if let Some(r) = &self.summary.rotation_share {
            out.push_str(&format!(
                "rotations (A's fixed point turned > 45 degrees): {} of {} resolved seeds, \
                 share 95% interval [{}, {}]; {} unresolved\n",
                (r.value * r.n as f64).round(),
                r.n,
                fmt_num(r.lo),
                fmt_num(r.hi),
                self.summary.unresolved
            ));
        }
        out
    }

    /// One line per single-task seed and one per fixed point found.
    fn single_runs(&self) -> String {
        let mut out = String::new();
        for r in &self.runs {
            let Some(q) = &r.single else { continue };
            out.push_str(&format!(
                "seed {}: {} steps, tau = {}, {} gradient evaluations, L = {}, {} fixed point(s)\n",
                r.seed,
                q.log.steps,
                fmt_num(q.log.tau),
                q.log.gradient_evaluations,
                fmt_num(q.log.final_loss),
                q.fixed_points.len()
            ));
            for f in &q.fixed_points {
                out.push_str(&format!(
                    "    kappa = ({}, {}), |F| = {}, max Re(eig J) = {}, {}\n",
                    fmt_num(f.kappa[0]),
                    fmt_num(f.kappa[1]),
                    fmt_num(f.residual),
                    fmt_num(f.max_real),
                    if f.stable { "stable" } else { "unstable" }
                ));
            }
        }
        out
    }

    /// Why a fixed-point analysis was skipped or failed, per seed.
    fn fixed_point_notes(&self) -> String {
        let mut out = String::new();
        for r in &self.runs {
            if let Some(e) = &r.fixed_point_note {
                out.push_str(&format!("seed {}: {e}\n", r.seed));
            }
            if let Some(e) = &r.fixed_point_error {
                out.push_str(&format!(
                    "seed {}: fixed-point analysis failed: {e}\n",
                    r.seed
                ));
            }
        }
        out
    }
}

/// One prediction beside its measurement; a yes/no row (`Row::holds`: predicted 1, measured
/// 0/1, tolerance 0) reads in words.
fn row_line(r: &Row) -> String {
    let yes_no = r.predicted == 1.0
        && (r.measured == 0.0 || r.measured == 1.0)
        && r.tolerance == 0.0
        && !r.relative;
    let (p, m) = if yes_no {
        let m = if r.measured == 1.0 {
            "holds"
        } else {
            "does not"
        };
        ("holds".to_string(), m.to_string())
    } else {
        (fmt_num(r.predicted), fmt_num(r.measured))
    };
    format!(
        "  {:<9} {:<58} predicted {:>12}  measured {:>12}  {}\n",
        format!("{:?}", r.verdict).to_lowercase(),
        r.label,
        p,
        m,
        r.note
    )
}
