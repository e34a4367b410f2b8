//! The gradient-flow limit of GD on the sequential protocol (THEORY I.7, claim X-11).
//!
//! Three independent computations of the interference I = L_A(after B) / L_A(untrained) of
//! one seed: the adaptive flow integrator at `flow_rtol` ([`super::train::Optimizer::Flow`]),
//! the same at `flow_rtol / tighten`, and plain GD at a ladder of learning rates lr, lr/2,
//! lr/4, ... . GD is the explicit Euler method for the flow d theta / d tau = -grad L, so its
//! global error is O(lr): |I_GD(lr) - I_flow| ~ C lr once lr is below the scale where the
//! trajectory changes (edge of stability, a different basin), and the observed order
//! log2(e(lr) / e(lr/2)) tends to 1, seed by seed. The flow's own tolerance is checked by the
//! tightened run: |I(rtol) - I(rtol/100)| must be far below the GD differences it is used to
//! measure. Both phases stop at L < tol; GD at its first step below tol (O(lr) below), the
//! flow at the located crossing L = tol (see [`super::train::CROSSING_RTOL`]).
//!
//! [`cost`] compares what the flow and GD pay for the same answer: gradient evaluations and
//! wall time of the flow vs GD at the largest lr of the ladder whose I agrees with the flow
//! within a relative tolerance on every seed.

use std::time::Instant;

use serde::Serialize;

use super::sequential::{run_sequential, SequentialSpec};
use super::spec::{check, Protocol};
use super::train::Optimizer;
use crate::model::parse;
use crate::{Error, Result};

/// The shipped model of the flow (`models/rnn-flow.toml`), embedded.
pub const RNN_FLOW_TOML: &str = include_str!("../../models/rnn-flow.toml");

/// The sequential setting of `models/rnn-flow.toml`.
pub fn shipped_setting() -> Result<(SequentialSpec, u64, usize)> {
    let m = parse("models/rnn-flow.toml", RNN_FLOW_TOML)?;
    let s = check(&m)?;
    if s.protocol != Protocol::Sequential || !s.train.optimizer.is_flow() {
        return Err(Error::Requirement(
            "models/rnn-flow.toml: the sequential protocol with optimizer = \"flow\"".into(),
        ));
    }
    Ok((
        SequentialSpec {
            network: s.network,
            task_a: s.task,
            task_b: s.task_b(),
            trainable: s.trainable,
            train: s.train,
            record_every: usize::MAX,
            eval_batch: 1,
        },
        s.seed,
        s.seeds,
    ))
}

/// GD at one learning rate.
#[derive(Debug, Clone, Serialize)]
pub struct GdPoint {
    pub lr: f64,
    pub interference: f64,
    pub steps_a: usize,
    pub steps_b: usize,
    /// Gradient evaluations (both phases).
    pub evaluations: usize,
    /// Wall time of the protocol (s).
    pub seconds: f64,
}

/// One seed: the flow at two tolerances and GD on the ladder.
#[derive(Debug, Clone, Serialize)]
pub struct SeedLimit {
    pub seed: u64,
    pub i_flow: f64,
    /// I of the flow at rtol / t (and atol / t) for each t of the `tighten` list.
    pub i_flow_tight: Vec<f64>,
    pub tau_a: f64,
    pub tau_b: f64,
    pub flow_evaluations: usize,
    pub flow_seconds: f64,
    pub gd: Vec<GdPoint>,
}

impl SeedLimit {
    /// The reference I: the flow at the tightest tolerance.
    pub fn i_ref(&self) -> f64 {
        *self.i_flow_tight.last().unwrap_or(&self.i_flow)
    }

    /// |I_GD(lr) - I_ref| for each GD point, with the tightest flow as the reference.
    pub fn gaps(&self) -> Vec<f64> {
        let r = self.i_ref();
        self.gd.iter().map(|p| (p.interference - r).abs()).collect()
    }

    /// |I(rtol) - I(rtol / t)| / |I(rtol / t)| for each t of the `tighten` list.
    pub fn tolerance_moves(&self) -> Vec<f64> {
        self.i_flow_tight
            .iter()
            .map(|&t| (self.i_flow - t).abs() / t.abs())
            .collect()
    }

    /// The observed orders log2(e(lr_k) / e(lr_{k+1})) between consecutive rungs (the ladder
    /// halves lr at each rung).
    pub fn orders(&self) -> Vec<f64> {
        let e = self.gaps();
        e.windows(2).map(|w| (w[0] / w[1]).log2()).collect()
    }
}

/// The protocol of `spec` for one seed with the flow at `spec`'s tolerance, at that tolerance
/// divided by each t of `tighten`, and GD at every lr of `lrs`.
pub fn seed_limit(
    spec: &SequentialSpec,
    seed: u64,
    lrs: &[f64],
    tighten: &[f64],
) -> Result<SeedLimit> {
    let Optimizer::Flow { rtol, atol } = spec.train.optimizer else {
        return Err(Error::Requirement(
            "seed_limit: the spec's optimizer must be the flow".into(),
        ));
    };
    let t0 = Instant::now();
    let (flow, _) = run_sequential(spec, seed)?;
    let flow_seconds = t0.elapsed().as_secs_f64();
    let full = spec.trainable.recurrent == super::network::Recurrent::Full;
    let atol = Optimizer::flow_atol(rtol, atol, full, spec.network.n);
    let mut i_flow_tight = Vec::with_capacity(tighten.len());
    for &t in tighten {
        let mut tight = *spec;
        tight.train.optimizer = Optimizer::Flow {
            rtol: rtol / t,
            atol: Some(atol / t),
        };
        i_flow_tight.push(run_sequential(&tight, seed)?.0.interference);
    }
    let tau = flow.tau_a.max(flow.tau_b);
    let mut gd = Vec::with_capacity(lrs.len());
    for &lr in lrs {
        let mut s = *spec;
        s.train.optimizer = Optimizer::Gd;
        s.train.lr = lr;
        // room for 4x the flow time of the longer phase (GD at a too-large rate may wander)
        s.train.max_steps = s
            .train
            .max_steps
            .max((4.0 * tau / lr).ceil() as usize + 100);
        let t0 = Instant::now();
        let (r, _) = run_sequential(&s, seed)?;
        gd.push(GdPoint {
            lr,
            interference: if r.converged_a && r.converged_b {
                r.interference
            } else {
                f64::NAN
            },
            steps_a: r.steps_a,
            steps_b: r.steps_b,
            evaluations: r.evaluations_a + r.evaluations_b,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    Ok(SeedLimit {
        seed,
        i_flow: flow.interference,
        i_flow_tight,
        tau_a: flow.tau_a,
        tau_b: flow.tau_b,
        flow_evaluations: flow.evaluations_a + flow.evaluations_b,
        flow_seconds,
        gd,
    })
}

/// [`seed_limit`] for every seed (in parallel over seeds; each seed is deterministic).
pub fn lr_limit(
    spec: &SequentialSpec,
    seeds: &[u64],
    lrs: &[f64],
    tighten: &[f64],
) -> Result<Vec<SeedLimit>> {
    use rayon::prelude::*;
    seeds
        .par_iter()
        .map(|&s| seed_limit(spec, s, lrs, tighten))
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

/// The cost comparison of [`cost`].
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    /// The largest lr of the ladder whose I is within `rel` of the flow's on every seed.
    pub lr: Option<f64>,
    pub rel: f64,
    pub flow_evaluations: usize,
    pub flow_seconds: f64,
    pub gd_evaluations: usize,
    pub gd_seconds: f64,
}

/// Gradient evaluations and wall time (summed over seeds) of the flow and of GD at the largest
/// lr that agrees with the flow (at its working tolerance) within `rel` relative on every
/// seed. A GD point that did not converge never agrees.
pub fn cost(limits: &[SeedLimit], rel: f64) -> Cost {
    let rungs = limits.first().map_or(0, |l| l.gd.len());
    let agrees = |k: usize| {
        limits.iter().all(|l| {
            let i = l.gd[k].interference;
            (i - l.i_flow).abs() <= rel * l.i_flow.abs()
        })
    };
    // the largest lr from which on every smaller rung agrees too (no accidental agreement)
    let k = (0..rungs).find(|&k| (k..rungs).all(agrees));
    Cost {
        lr: k.map(|k| limits[0].gd[k].lr),
        rel,
        flow_evaluations: limits.iter().map(|l| l.flow_evaluations).sum(),
        flow_seconds: limits.iter().map(|l| l.flow_seconds).sum(),
        gd_evaluations: k.map_or(0, |k| limits.iter().map(|l| l.gd[k].evaluations).sum()),
        gd_seconds: k.map_or(f64::NAN, |k| limits.iter().map(|l| l.gd[k].seconds).sum()),
    }
}
