//! Divergence of full-W learning on the static task and the outlier eigenvalue of the trained
//! W (THEORY I-10, last sentence and the outlier formula; claims ).
//!
//! The linear network x' = -x + W x + u a with state readout z = b^T x(T)/N is trained with
//! all of W by plain gradient descent (the task is deterministic: SGD with one trial is GD) at
//! the NeurIPS rate eta = eta0 (1 - g^2)^2 through the library trainer
//! [`super::train::train_task`], which reports a run whose loss leaves its bound as
//! [`crate::Error::Diverged`]. Mechanism: learning grows an outlier eigenvalue lambda_out of
//! W = W0 + dW; once lambda_out > 1 the fixed point is unstable and the readout of a trial of
//! length t_max grows like e^{(lambda_out - 1) t_max}. I-10 predicts
//! lambda_out ~ g^2 + g sqrt(eig dW) + eig dW / 2 with eig dW the top eigenvalue of dW.

use std::collections::VecDeque;

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::network::Trainable;
use super::train::{train_task, Optimizer, TrainOptions};
use crate::{Error, Result};

/// All eigenvalues (re, im) of a square matrix ([`crate::num::eigen::eigenvalues`]).
pub fn eigenvalues(m: &DMatrix<f64>) -> Result<Vec<(f64, f64)>> {
    crate::num::eigen::eigenvalues(m)
}

/// The eigenvalue of largest real part (re, im): the outlier of a trained W (the learned
/// outlier is real and to the right of the bulk disc of radius g) or the top eigenvalue of dW.
pub fn top_eigenvalue(m: &DMatrix<f64>) -> Result<(f64, f64)> {
    let ev = eigenvalues(m)?;
    Ok(ev
        .into_iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((f64::NAN, 0.0)))
}

/// I-10's outlier formula g^2 + g sqrt(eig dW) + eig dW / 2.
pub fn outlier_i10(g: f64, eig_dw: f64) -> f64 {
    g * g + g * eig_dw.max(0.0).sqrt() + 0.5 * eig_dw
}

/// The candidate correction (proofs-checks/I-10: at g = 0, W = dW, so the outlier must be
/// eig dW itself): g^2 + g sqrt(eig dW) + eig dW.
pub fn outlier_candidate(g: f64, eig_dw: f64) -> f64 {
    g * g + g * eig_dw.max(0.0).sqrt() + eig_dw
}

/// One static-task training setting of the divergence experiment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DivSetting {
    /// Neurons N, bulk strength g.
    pub n: usize,
    pub g: f64,
    /// Euler step dt and trial length t_max.
    pub dt: f64,
    pub t_max: f64,
    /// Constant input u (along a), target zhat (readout b).
    pub u: f64,
    pub zhat: f64,
    /// Base rate eta0; the run uses eta = eta0 (1 - g^2)^2.
    pub lr0: f64,
    /// Convergence: L < tol_rel x zhat^2 / 2.
    pub tol_rel: f64,
    /// Step cap.
    pub max_steps: usize,
    /// Record the spectrum of W and dW every this many steps (0: never).
    pub probe_every: usize,
}

impl DivSetting {
    /// The learning rate eta = eta0 (1 - g^2)^2.
    pub fn lr(&self) -> f64 {
        self.lr0 * (1.0 - self.g * self.g).powi(2)
    }
}

/// The spectrum of one W during training.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Probe {
    pub step: usize,
    /// Dressed learning time tau~ = beta^2 eta step.
    pub tau_tilde: f64,
    /// Outlier of W (eigenvalue of largest real part), [re, im].
    pub outlier: [f64; 2],
    /// Top eigenvalue of dW = W - W0, [re, im].
    pub eig_dw: [f64; 2],
    /// I-10's formula and the candidate correction at the measured eig dW.
    pub i10: f64,
    pub candidate: f64,
}

/// The spectrum of `w` against `w0` at bulk strength g.
pub fn probe(
    w: &DMatrix<f64>,
    w0: &DMatrix<f64>,
    g: f64,
    step: usize,
    tau_tilde: f64,
) -> Result<Probe> {
    let o = top_eigenvalue(w)?;
    let e = top_eigenvalue(&(w - w0))?;
    Ok(Probe {
        step,
        tau_tilde,
        outlier: [o.0, o.1],
        eig_dw: [e.0, e.1],
        i10: outlier_i10(g, e.0),
        candidate: outlier_candidate(g, e.0),
    })
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct DivRun {
    pub g: f64,
    pub zhat: f64,
    pub seed: u64,
    pub lr: f64,
    pub converged: bool,
    pub diverged: bool,
    /// Steps taken (for a diverged run: the step at which the trainer stopped).
    pub steps: usize,
    /// Dressed time tau~ = beta^2 eta steps reached.
    pub tau_tilde: f64,
    /// The trainer's error message (diverged or failed runs).
    pub message: Option<String>,
    /// Spectra of W at the diverging step and at the step before it.
    pub at_divergence: Option<Probe>,
    pub before_divergence: Option<Probe>,
    /// The first stored step whose W has an outlier > 1 (searched over the last steps).
    pub first_unstable: Option<Probe>,
    /// Spectra every `probe_every` steps and at the end.
    pub probes: Vec<Probe>,
}

/// The first W with an outlier > 1 among the kept steps followed by the diverging one (`at`).
/// Near the crossing the outlier grows monotonically in the step: bisect.
fn first_unstable(
    recent: &VecDeque<(usize, DMatrix<f64>)>,
    at: Option<Probe>,
    w0: &DMatrix<f64>,
    g: f64,
    tt: &dyn Fn(usize) -> f64,
) -> Option<Probe> {
    let len = recent.len();
    let get = |i: usize| -> Option<Probe> {
        if i == len {
            return at;
        }
        let (k, m) = &recent[i];
        probe(m, w0, g, *k, tt(*k)).ok()
    };
    let unstable = |p: &Option<Probe>| p.map(|p| p.outlier[0] > 1.0).unwrap_or(false);
    // the last index whose W is unstable (the diverging W may be garbage: start from the
    // last kept one)
    let mut hi = (0..=len).rev().take(3).find(|&i| unstable(&get(i)))?;
    let first = get(0);
    if unstable(&first) {
        return first;
    }
    let mut lo = 0;
    let mut best = get(hi);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        let p = get(mid);
        if unstable(&p) {
            hi = mid;
            best = p;
        } else {
            lo = mid;
        }
    }
    best
}

/// Steps of W kept for locating the first step with an outlier > 1.
pub const KEEP: usize = 64;

/// Train one network (seed `seed`) with the library trainer and record the spectra.
pub fn run_divergence(s: &DivSetting, seed: u64) -> Result<DivRun> {
    let task = (s.u, s.t_max, s.zhat);
    let (_, mut net, task) =
        super::static_curves::seeded_static_network(s.n, s.g, s.dt, task, seed);
    let w0 = net.w0.clone();
    let lr = s.lr();
    let b2 = (1.0 - s.g * s.g).powi(-2);
    let opts = TrainOptions {
        optimizer: Optimizer::Gd,
        lr,
        tol: s.tol_rel * 0.5 * s.zhat * s.zhat,
        max_steps: s.max_steps,
        batch: 1,
        diverge_factor: 1e4,
        progress: false,
        ..TrainOptions::default()
    };
    let mut recent = Recent::default();
    let mut probes = Vec::new();
    let mut trng = StdRng::seed_from_u64(seed ^ 0xd1e5);
    let res = train_task(
        &mut net,
        &Trainable::FULL,
        &task,
        &opts,
        &mut trng,
        |step, _loss, nw| {
            recent.keep(step, &nw.w);
            if s.probe_every > 0 && step % s.probe_every == 0 {
                probes.push(probe(&nw.w, &w0, s.g, step, b2 * lr * step as f64)?);
            }
            Ok(())
        },
    );
    // dressed time tau~ = beta^2 eta k of step k
    let tt = |k: usize| b2 * lr * k as f64;
    let mut run = DivRun {
        g: s.g,
        zhat: s.zhat,
        seed,
        lr,
        converged: false,
        diverged: false,
        steps: 0,
        tau_tilde: 0.0,
        message: None,
        at_divergence: None,
        before_divergence: None,
        first_unstable: None,
        probes,
    };
    match res {
        Ok(log) => {
            let last = log.steps;
            if run.probes.last().map(|p| p.step) != Some(last) {
                run.probes.push(probe(&net.w, &w0, s.g, last, tt(last))?);
            }
            run.converged = log.converged;
            run.steps = last;
            run.tau_tilde = tt(last);
            run.message = (!log.converged).then(|| {
                format!(
                    "not converged: L = {:.3e} after {last} steps",
                    log.final_loss
                )
            });
            Ok(run)
        }
        Err(e @ Error::Diverged { step, .. }) => {
            // the trainer has already applied the update of step - 1: net.w is W_step
            let at = probe(&net.w, &w0, s.g, step, tt(step)).ok();
            run.diverged = true;
            run.steps = step;
            run.tau_tilde = tt(step);
            run.message = Some(e.to_string());
            run.before_divergence = recent
                .0
                .back()
                .and_then(|(k, m)| probe(m, &w0, s.g, *k, tt(*k)).ok());
            run.first_unstable = first_unstable(&recent.0, at, &w0, s.g, &tt);
            run.at_divergence = at;
            Ok(run)
        }
        Err(e) => Err(e),
    }
}

/// The last [`KEEP`] steps' W (step, W), oldest first; full, the oldest matrix is reused.
#[derive(Default)]
struct Recent(VecDeque<(usize, DMatrix<f64>)>);

impl Recent {
    fn keep(&mut self, step: usize, w: &DMatrix<f64>) {
        if self.0.len() == KEEP {
            if let Some((_, mut m)) = self.0.pop_front() {
                m.copy_from(w);
                self.0.push_back((step, m));
            }
        } else {
            self.0.push_back((step, w.clone()));
        }
    }
}

/// The I-10 divergence setting (N = 256, dt = 0.5, t_max = 201, u = 1, plain GD at
/// eta = eta0 (1 - g^2)^2 until L < 1e-4 zhat^2/2, at most 20000 steps).
pub fn x8_setting(zhat: f64, g: f64) -> DivSetting {
    DivSetting {
        n: 256,
        g,
        dt: 0.5,
        t_max: 201.0,
        u: 1.0,
        zhat,
        lr0: x8_lr0(zhat),
        tol_rel: 1e-4,
        max_steps: 20_000,
        probe_every: 0,
    }
}

/// Targets of X-8.
pub const X8_ZHAT: [f64; 4] = [0.5, 1.0, 2.0, 4.0];
/// Bulk strengths of X-8.
pub const X8_G: [f64; 4] = [0.0, 0.3, 0.6, 0.8];
/// Seeds per cell of the claimed divergent set (the other cells: seed 1).
pub const X8_SEEDS: u64 = 3;

/// eta0 of I-10 (0.015 / 0.009 / 0.003 for zhat = 0.5 / 1 / 2); THEORY gives none for
/// zhat = 4: we continue the 1/zhat^2 decrease from zhat = 2 (0.003 / 4 = 0.00075), which keeps
/// >= 140 steps to convergence (proofs-checks/X-08).
pub fn x8_lr0(zhat: f64) -> f64 {
    if zhat <= 0.5 {
        0.015
    } else if zhat <= 1.0 {
        0.009
    } else if zhat <= 2.0 {
        0.003
    } else {
        0.003 * (2.0 / zhat).powi(2)
    }
}

/// Whether I-10 claims divergence at (zhat, g).
pub fn x8_claimed_divergent(zhat: f64, g: f64) -> bool {
    zhat >= 2.0 && g >= 0.6
}

/// Documented findings (proofs-checks/X-08): the fraction of diverged seeds in the claimed
/// divergent cells, (zhat, g, fraction).
pub const X8_FINDINGS: &[(f64, f64, f64)] = &[
    (2.0, 0.6, 0.0),
    (2.0, 0.8, 0.0),
    (4.0, 0.6, 0.0),
    (4.0, 0.8, 2.0 / 3.0),
];

/// All runs of X-8 (in parallel; each run is seeded, so the result does not depend on the
/// scheduling).
pub fn x8_runs() -> Result<Vec<DivRun>> {
    use rayon::prelude::*;
    let mut jobs = Vec::new();
    for &zhat in &X8_ZHAT {
        for &g in &X8_G {
            let seeds = if x8_claimed_divergent(zhat, g) {
                X8_SEEDS
            } else {
                1
            };
            for seed in 1..=seeds {
                jobs.push((zhat, g, seed));
            }
        }
    }
    jobs.par_iter()
        .map(|&(zhat, g, seed)| run_divergence(&x8_setting(zhat, g), seed))
        .collect()
}

/// The X-9 setting at bulk strength g: the static task at N = 256, dt = 0.5, t_max = 50
/// (the slowest bulk mode, rate 1 - g >= 0.2, relaxes by e^-10), zhat = 1 with I-10's
/// eta0 = 0.009, trained to L < 1e-4 zhat^2/2.
pub fn x9_setting(g: f64) -> DivSetting {
    DivSetting {
        n: 256,
        g,
        dt: 0.5,
        t_max: 50.0,
        u: 1.0,
        zhat: 1.0,
        lr0: 0.009,
        tol_rel: 1e-4,
        max_steps: 20_000,
        probe_every: 0,
    }
}

/// Bulk strengths of X-9.
pub const X9_G: [f64; 4] = [0.0, 0.3, 0.5, 0.8];
/// Seeds per g > 0 (g = 0: W0 = 0, one network; THEORY I.7: >= 16).
pub const X9_SEEDS: u64 = crate::num::stats::MIN_SEEDS;

/// Per g: per-seed measured outlier / I-10 formula and / candidate, plus the mean outlier and
/// eig dW.
#[derive(Debug, Clone, Serialize)]
pub struct OutlierPoint {
    pub g: f64,
    pub seeds: usize,
    pub outlier: f64,
    pub eig_dw: f64,
    pub ratio_i10: Vec<f64>,
    pub ratio_candidate: Vec<f64>,
}

/// Train and measure the outliers of X-9 (all runs in parallel, results in (g, seed) order).
pub fn x9_points() -> Result<Vec<OutlierPoint>> {
    let jobs: Vec<(f64, u64)> = X9_G
        .iter()
        .flat_map(|&g| (1..=if g == 0.0 { 1 } else { X9_SEEDS }).map(move |s| (g, s)))
        .collect();
    let runs: Vec<DivRun> =
        crate::num::stats::par_map(&jobs, |&(g, seed)| run_divergence(&x9_setting(g), seed))?;
    let mut out = Vec::new();
    for &g in &X9_G {
        let ps: Vec<Probe> = runs
            .iter()
            .filter(|r| r.g == g && r.converged)
            .filter_map(|r| r.probes.last().copied())
            .collect();
        if ps.is_empty() {
            return Err(Error::Numerical(format!(
                "X-9: no converged run at g = {g}"
            )));
        }
        let col = |f: &dyn Fn(&Probe) -> f64| ps.iter().map(f).collect::<Vec<_>>();
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        out.push(OutlierPoint {
            g,
            seeds: ps.len(),
            outlier: mean(col(&|p| p.outlier[0])),
            eig_dw: mean(col(&|p| p.eig_dw[0])),
            ratio_i10: col(&|p| p.outlier[0] / p.i10),
            ratio_candidate: col(&|p| p.outlier[0] / p.candidate),
        });
    }
    Ok(out)
}

/// At g = 0 the ratio measured / I-10 formula is exactly 2 (W = dW, formula eig dW / 2): a
/// deterministic identity, not a seed statistic.
pub const X9_G0_RATIO: f64 = 2.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_at_known_values() {
        // g = 0: I-10 gives eig/2, the candidate eig
        assert_eq!(outlier_i10(0.0, 0.0625), 0.03125);
        assert_eq!(outlier_candidate(0.0, 0.0625), 0.0625);
        // g = 0.5, eig = 0.16: 0.25 + 0.5 * 0.4 + 0.08 = 0.53
        assert!((outlier_i10(0.5, 0.16) - 0.53).abs() < 1e-15);
        assert!((outlier_candidate(0.5, 0.16) - 0.61).abs() < 1e-15);
        assert_eq!(x8_lr0(4.0), 0.00075);
        assert_eq!(x8_lr0(2.0), 0.003);
        assert!(x8_claimed_divergent(2.0, 0.6) && !x8_claimed_divergent(1.0, 0.8));
    }

    #[test]
    fn top_eigenvalue_of_a_rank_one_plus_diagonal() {
        // diag(0.1, 0.2, 0.3) + 0.5 e1 e1^T: eigenvalues 0.6, 0.2, 0.3
        let m = DMatrix::from_row_slice(3, 3, &[0.6, 1.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.3]);
        let (re, im) = top_eigenvalue(&m).unwrap();
        assert!((re - 0.6).abs() < 1e-12 && im == 0.0);
        let mut bad = m.clone();
        bad[(0, 0)] = f64::NAN;
        assert!(top_eigenvalue(&bad).is_err());
    }

    #[test]
    fn small_network_diverges_through_the_outlier_and_the_corner_converges() {
        // N = 64, g = 0.8, a large target and a coarse rate: the outlier crosses 1 and the
        // trainer reports Diverged; the small-target, g = 0 corner converges
        let s = DivSetting {
            n: 64,
            g: 0.8,
            dt: 0.5,
            t_max: 100.0,
            u: 1.0,
            zhat: 4.0,
            lr0: 0.003,
            tol_rel: 1e-4,
            max_steps: 5000,
            probe_every: 0,
        };
        let r = run_divergence(&s, 1).unwrap();
        assert!(r.diverged, "{r:?}");
        let msg = r.message.clone().unwrap();
        assert!(
            msg.contains(&format!("diverged at step {}", r.steps)),
            "{msg}"
        );
        assert!(msg.contains("smaller learning rate"), "{msg}");
        let f = r.first_unstable.expect("an unstable W before divergence");
        assert!(f.outlier[0] > 1.0 && f.step <= r.steps, "{f:?}");
        let ok = DivSetting {
            g: 0.0,
            zhat: 0.5,
            lr0: 0.015,
            ..s
        };
        let r = run_divergence(&ok, 1).unwrap();
        assert!(r.converged && !r.diverged, "{r:?}");
        // g = 0: W = dW, the outlier is eig dW (the candidate), twice I-10's formula
        let p = r.probes.last().unwrap();
        assert!((p.outlier[0] - p.eig_dw[0]).abs() < 1e-12, "{p:?}");
        assert!((p.outlier[0] / p.i10 - 2.0).abs() < 1e-9);
    }
}
