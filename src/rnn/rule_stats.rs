//! Bias and variance of a learning rule's update, against the exact BPTT gradient at the same
//! parameters (THEORY III.2, E-4 and E-5), and B-14's one-step formula (THEORY II.5) fed with
//! the measured bias and covariance.
//!
//! At parameters theta with exact gradient g (BPTT), a rule's estimate is g^ = g + b + n with
//! E n = 0, Cov n = Sigma. Deterministic rules (e-prop, random e-prop with its fixed feedback,
//! truncated BPTT) have n = 0; node perturbation is estimated from `repeats` independent
//! draws: m = mean g^_s, b = m - g, Sigma = (1/S) sum_s (g^_s - m)(g^_s - m)^T. One step
//! theta - eta g^ then changes the loss, to second order, by B-14's
//!
//!   Delta L = -eta g^T (g + b) + (eta^2/2) [(g + b)^T H (g + b) + tr(H Sigma)],
//!
//! where H is the Hessian of L (products H v by central differences of the exact gradient). With
//! Sigma the covariance *of the same draws* whose steps are averaged, the formula is the draws'
//! mean second-order Taylor expansion exactly: the measured mean Delta L differs from it only by
//! the Taylor remainder beyond second order, which [`UpdateStats::remainder`] estimates along
//! each step's line (third and fourth order).

use nalgebra::DVector;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::bptt::Sharded;
use super::network::{Network, Trainable};
use super::rules::{LearningRule, Perturbation};
use super::task::Trials;
use crate::{Error, Result};

/// Bias, covariance and the one-step loss change of one rule at one point.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateStats {
    /// Loss L(theta) and |g|.
    pub loss: f64,
    pub grad_norm: f64,
    /// |E g^ - g| / |g|.
    pub rel_bias: f64,
    /// cos(E g^, g).
    pub cosine: f64,
    /// tr Sigma (0 for deterministic rules) and its standard error over the draws.
    pub trace_cov: f64,
    pub trace_cov_se: f64,
    /// Number of parameters P and of draws S (1 for deterministic rules).
    pub params: usize,
    pub draws: usize,
    /// The step eta.
    pub eta: f64,
    /// B-14's second-order prediction of the mean Delta L, its three terms, and the measured
    /// mean Delta L.
    pub predicted: f64,
    pub first_order: f64,
    pub curvature_mean: f64,
    pub curvature_noise: f64,
    pub measured: f64,
    /// Estimated Taylor remainder beyond second order: the mean over draws of
    /// |f'''(0)| eta^3/6 plus |f''''(0)| eta^4/24 along the line f(t) = L(theta - t g^_s), both
    /// derivatives from the five-point central stencil at spacing eta.
    pub remainder: f64,
}

/// Central-difference step for H v, relative to |theta| / |v|: balances the O(h^2) truncation
/// of the central difference against rounding of the gradient (~1e-16 / h).
const HV_STEP: f64 = 1e-5;

/// The point theta at which the statistics are taken: the network (its parameters restored
/// after every probe), its trials and workspace.
struct AtPoint<'a> {
    net: &'a mut Network,
    trainable: &'a Trainable,
    trials: &'a Trials,
    ws: Sharded,
    /// theta.
    p0: Vec<f64>,
}

impl AtPoint<'_> {
    /// The rule's update directions g^_s at theta: `repeats` independent draws of node
    /// perturbation (seeded), one for a deterministic rule.
    fn draws(
        &mut self,
        rule: LearningRule,
        feedback: Option<&nalgebra::DMatrix<f64>>,
        repeats: usize,
        seed: u64,
    ) -> Result<Vec<DVector<f64>>> {
        let mut draws = Vec::new();
        let mut buf = vec![0.0; self.p0.len()];
        match rule {
            LearningRule::NodePerturbation { sigma, samples } => {
                if repeats < 2 {
                    return Err(Error::Requirement(
                        "update statistics of node perturbation need at least 2 draws".into(),
                    ));
                }
                let mut rng = StdRng::seed_from_u64(seed);
                let mut pert = Perturbation::default();
                for _ in 0..repeats {
                    pert.estimate(
                        &mut self.ws,
                        self.net,
                        self.trials,
                        self.trainable,
                        &self.p0,
                        sigma,
                        samples,
                        &mut rng,
                        &mut buf,
                    )?;
                    draws.push(DVector::from_column_slice(&buf));
                }
            }
            r => {
                self.ws.loss_and_grad_with(
                    self.net,
                    self.trials,
                    self.trainable,
                    r.credit(feedback),
                    &mut buf,
                )?;
                draws.push(DVector::from_column_slice(&buf));
            }
        }
        Ok(draws)
    }

    /// H v by central differences of the exact gradient (step [`HV_STEP`] |theta| / |v|,
    /// |theta| at least 1).
    fn hessian_times(&mut self, v: &DVector<f64>) -> Result<DVector<f64>> {
        let np = self.p0.len();
        let vn = v.norm();
        if vn == 0.0 {
            return Ok(DVector::zeros(np));
        }
        let scale = self.p0.iter().map(|x| x * x).sum::<f64>().sqrt().max(1.0);
        let h = HV_STEP * scale / vn;
        let mut gp = vec![0.0; np];
        let mut gm = vec![0.0; np];
        let shifted = |sign: f64| -> Vec<f64> {
            self.p0
                .iter()
                .zip(v.iter())
                .map(|(x, y)| x + sign * h * y)
                .collect()
        };
        let (plus, minus) = (shifted(1.0), shifted(-1.0));
        self.net.set_params(self.trainable, &plus);
        let a = self
            .ws
            .loss_and_grad(self.net, self.trials, self.trainable, &mut gp);
        self.net.set_params(self.trainable, &minus);
        let b = self
            .ws
            .loss_and_grad(self.net, self.trials, self.trainable, &mut gm);
        self.net.set_params(self.trainable, &self.p0);
        a?;
        b?;
        Ok((DVector::from_vec(gp) - DVector::from_vec(gm)) / (2.0 * h))
    }

    /// L(theta - t d), forward only.
    fn line(&mut self, d: &DVector<f64>, t: f64) -> Result<f64> {
        let p: Vec<f64> = self
            .p0
            .iter()
            .zip(d.iter())
            .map(|(x, y)| x - t * y)
            .collect();
        self.net.set_params(self.trainable, &p);
        let l = self.ws.loss_only(self.net, self.trials);
        self.net.set_params(self.trainable, &self.p0);
        l
    }
}

/// tr Sigma = (1/S) sum_s |n_s|^2 of the noise vectors n_s = g^_s - mean, and its standard
/// error over the draws (0 for one draw).
fn trace_of_covariance(noise: &[DVector<f64>]) -> (f64, f64) {
    let s = noise.len() as f64;
    let sq: Vec<f64> = noise.iter().map(|n| n.norm_squared()).collect();
    let trace_cov = sq.iter().sum::<f64>() / s;
    let trace_cov_se = if noise.len() > 1 {
        let var = sq.iter().map(|q| (q - trace_cov).powi(2)).sum::<f64>() / (s - 1.0);
        (var / s).sqrt()
    } else {
        0.0
    };
    (trace_cov, trace_cov_se)
}

/// The measured mean Delta L = mean_s L(theta - eta g^_s) - L(theta), and the mean Taylor
/// remainder beyond second order along each step's line (third and fourth order).
fn measured_step(
    at: &mut AtPoint<'_>,
    draws: &[DVector<f64>],
    eta: f64,
    l0: f64,
) -> Result<(f64, f64)> {
    let s = draws.len() as f64;
    let (mut measured, mut remainder) = (0.0, 0.0);
    for d in draws {
        let f1 = at.line(d, eta)?;
        let fm1 = at.line(d, -eta)?;
        let f2 = at.line(d, 2.0 * eta)?;
        let fm2 = at.line(d, -2.0 * eta)?;
        measured += f1 - l0;
        // the five-point stencil at spacing h = eta: f''' ~ (f(2h) - 2 f(h) + 2 f(-h) - f(-2h))
        // / (2 h^3) and f'''' ~ (f(2h) - 4 f(h) + 6 f(0) - 4 f(-h) + f(-2h)) / h^4, so the
        // remainder through fourth order, |f'''| eta^3/6 + |f''''| eta^4/24, is:
        remainder += (f2 - 2.0 * f1 + 2.0 * fm1 - fm2).abs() / 12.0
            + (f2 - 4.0 * f1 + 6.0 * l0 - 4.0 * fm1 + fm2).abs() / 24.0;
    }
    Ok((measured / s, remainder / s))
}

/// The statistics of `rule` at the parameters `net` carries (restored on exit).
#[allow(clippy::too_many_arguments)]
pub fn update_stats(
    net: &mut Network,
    trainable: &Trainable,
    trials: &Trials,
    rule: LearningRule,
    feedback: Option<&nalgebra::DMatrix<f64>>,
    eta: f64,
    repeats: usize,
    seed: u64,
) -> Result<UpdateStats> {
    let ws = Sharded::new(net, trials.steps, trials.batch);
    let p0: Vec<f64> = net.params(trainable).as_slice().to_vec();
    let np = p0.len();
    let mut at = AtPoint {
        net,
        trainable,
        trials,
        ws,
        p0,
    };
    let mut g = vec![0.0; np];
    let l0 = at.ws.loss_and_grad(at.net, trials, trainable, &mut g)?;
    let g = DVector::from_vec(g);
    let draws = at.draws(rule, feedback, repeats, seed)?;
    let s = draws.len() as f64;
    let mean = draws.iter().fold(DVector::zeros(np), |a, d| a + d) / s;
    let noise: Vec<DVector<f64>> = draws.iter().map(|d| d - &mean).collect();
    let (trace_cov, trace_cov_se) = trace_of_covariance(&noise);
    let hm = at.hessian_times(&mean)?;
    let mut curvature_noise = 0.0;
    for n in &noise {
        curvature_noise += n.dot(&at.hessian_times(n)?);
    }
    curvature_noise /= s;
    let first_order = -eta * g.dot(&mean);
    let curvature_mean = 0.5 * eta * eta * mean.dot(&hm);
    let curvature_noise = 0.5 * eta * eta * curvature_noise;
    let (measured, remainder) = measured_step(&mut at, &draws, eta, l0)?;
    let gn = g.norm();
    Ok(UpdateStats {
        loss: l0,
        grad_norm: gn,
        rel_bias: (&mean - &g).norm() / gn,
        cosine: mean.dot(&g) / (mean.norm() * gn),
        trace_cov,
        trace_cov_se,
        params: np,
        draws: draws.len(),
        eta,
        predicted: first_order + curvature_mean + curvature_noise,
        first_order,
        curvature_mean,
        curvature_noise,
        measured,
        remainder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::network::{NetworkSpec, Phi, Readout};
    use crate::rnn::task::{Task, WorkingMemory};

    fn setup() -> (Network, Trials) {
        let spec = NetworkSpec {
            n: 24,
            g: 0.5,
            dt: 0.2,
            phi: Phi::Tanh,
            readout: Readout::Rate,
            m0: [[0.3, 0.1], [0.1, 0.2]],
        };
        let net = Network::new(&spec, &mut StdRng::seed_from_u64(3));
        let task = Task::WorkingMemory(WorkingMemory::short_test_task());
        let tr = task.trials(
            net.n,
            net.inputs(),
            net.outputs(),
            net.dt,
            1,
            &mut StdRng::seed_from_u64(0),
        );
        (net, tr)
    }

    /// BPTT as a "rule" has no bias, no noise, cosine 1; B-14 is then the line's Taylor
    /// polynomial, so measured - predicted is the remainder (to within its own estimate).
    #[test]
    fn bptt_is_unbiased_and_b14_is_taylor() {
        let (mut net, tr) = setup();
        let st = update_stats(
            &mut net,
            &Trainable::LATENT,
            &tr,
            LearningRule::Bptt,
            None,
            0.5,
            1,
            0,
        )
        .unwrap();
        assert!(st.rel_bias < 1e-14, "{}", st.rel_bias);
        assert!((st.cosine - 1.0).abs() < 1e-14);
        assert_eq!(st.trace_cov, 0.0);
        // the remainder estimate (third and fourth order) is approximate: allow 2x
        let err = (st.measured - st.predicted).abs();
        assert!(
            err < 2.0 * st.remainder + 1e-12,
            "{err:e} vs {:e}",
            st.remainder
        );
        assert!(st.measured < 0.0);
    }
}
