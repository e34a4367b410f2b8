//! The network's gradient descent on task B as the 2x2 map it is (`linear_equivalent`
//! networks), iterated by the one driver (`num::iterate`).

use nalgebra::Matrix2;
use serde::Serialize;

use crate::interference::linear::{closed, flow, Loss, Params, Rule, Task};
use crate::num::iterate::{iterate, Gd, Observer, Problem, Stop};
use crate::rnn::network::Network;
use crate::Result;

/// The network's gradient descent on task B, written as the 2x2 map it is ([`super::linear_equivalent`]
/// networks only): M_{k+1} = M_k - lr dL/dM(M_k), stopped at the first k with L(M_k) < tol, as
/// [`crate::rnn::train::train_task`] stops. dL/dM is the rule's update at the input-driven fixed
/// point kappa_B of the network's M, *at the network's N*:
/// - gradient (bptt): -R^T E kappa_B^T (the network is the 2x2 model for every N, E-1);
/// - e-prop: -e [alpha; beta] kappa_B^T with alpha = (1/N) sum_j a_j b_j / (1 - W_jj),
///   beta = (1/N) sum_j b_j^2 / (1 - W_jj), W_jj = W0_jj + (U M U^T)_jj / N (E-1, checked
///   there against the network's e-prop gradient to 1e-10): the O(1/N) self-coupling that
///   e-prop keeps is in the prediction, not in the tolerance.
///
/// What is left between the network and this map is the trial's transient (the readout and the
/// adjoint are read a finite time after the input switched on) and the rounding of the steps;
/// [`LinearGd::transient`] bounds the first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinearGd {
    /// L_A(M after B) / L_A(M untrained).
    pub interference: f64,
    /// Steps until L < tol (or the cap).
    pub steps: usize,
    pub converged: bool,
    /// |I(M_{k+1}) - I(M_k)| at the stop: what one step more or less changes (the quantum
    /// of the stopping rule).
    pub step_change: f64,
    /// max over the path of e^{-k_min t}, k_min = min Re eig(I - M) (the slowest latent
    /// relaxation rate), t = the time from the input onset to the loss window: the relative
    /// size of the transient in the readout and in the adjoint.
    pub transient: f64,
    /// |M after B - M after A| (Frobenius): the length of B's displacement.
    pub displacement: f64,
    /// |zhat - z_AA| after B: A's readout error.
    pub error_a: f64,
}

/// [`LinearGd`] from the network after A. `settle` is the time from the input onset to the
/// start of the loss window (t_in + t_d of the working-memory task).
#[allow(clippy::too_many_arguments)]
pub fn linear_gd_task_b(
    after_a: &Network,
    m_untrained: &Matrix2<f64>,
    par: &Params,
    rule: Rule,
    lr: f64,
    tol_loss: f64,
    max_steps: usize,
    settle: f64,
) -> Result<LinearGd> {
    let mut map = MapB {
        after_a,
        par,
        rule,
        inv_n: 1.0 / after_a.n as f64,
    };
    let la0 = flow::loss(m_untrained, Task::A, Loss::Own, par)?;
    let mut m = after_a.m;
    let mut g = Matrix2::zeros();
    let stop = Stop::steps(max_steps, "2x2 map of the linear network")
        .loss_tol(tol_loss)
        .diverge_above(f64::INFINITY)
        .hint("the 2x2 map left the stable region (1 - lambda_max(M) <= 0)");
    let mut transient = Transient { settle, max: 0.0 };
    let out = iterate(
        &mut map,
        &mut Gd {
            eta: lr,
            lambda: 0.0,
        },
        &mut m,
        &mut g,
        &stop,
        &mut transient,
    )?;
    let i_at =
        |m: &Matrix2<f64>| -> Result<f64> { Ok(flow::loss(m, Task::A, Loss::Own, par)? / la0) };
    let i = i_at(&m)?;
    let next = m - lr * map.grad(&m)?;
    Ok(LinearGd {
        interference: i,
        steps: out.steps,
        // L < tol at the point the cap left counts too, as in the step loop before the cap
        converged: out.loss.is_some_and(|l| stop.below_tol(l)),
        step_change: (i_at(&next)? - i).abs(),
        transient: transient.max,
        displacement: (m - after_a.m).norm(),
        error_a: (2.0 * flow::loss(&m, Task::A, Loss::Own, par)?).sqrt(),
    })
}

/// Task B's loss and the rule's update of the 2x2 map at the network's N (the problem of
/// [`linear_gd_task_b`]'s iteration).
struct MapB<'a> {
    after_a: &'a Network,
    par: &'a Params,
    rule: Rule,
    inv_n: f64,
}

impl MapB<'_> {
    /// dL/dM of the rule at M (see [`linear_gd_task_b`]).
    fn grad(&self, m: &Matrix2<f64>) -> Result<Matrix2<f64>> {
        match self.rule {
            Rule::Gradient => flow::loss_gradient(m, Task::B, Loss::Own, self.par),
            Rule::Eprop => {
                let k = closed::fixed_point(m, self.par.u, Task::B)?;
                let e = self.par.zhat - k[1];
                let (ua, ub) = (self.after_a.u.column(0), self.after_a.u.column(1));
                let (mut alpha, mut beta) = (0.0, 0.0);
                for j in 0..self.after_a.n {
                    let (a, b) = (ua[j], ub[j]);
                    let w = self.after_a.w0[(j, j)]
                        + (m[(0, 0)] * a * a + (m[(0, 1)] + m[(1, 0)]) * a * b + m[(1, 1)] * b * b)
                            * self.inv_n;
                    let v = 1.0 / (1.0 - w);
                    alpha += a * b * v * self.inv_n;
                    beta += b * b * v * self.inv_n;
                }
                Ok(Matrix2::new(
                    -e * alpha * k[0],
                    -e * alpha * k[1],
                    -e * beta * k[0],
                    -e * beta * k[1],
                ))
            }
        }
    }
}

impl Problem for MapB<'_> {
    type Params = Matrix2<f64>;
    type Grad = Matrix2<f64>;

    fn loss_grad(&mut self, _: usize, m: &Matrix2<f64>, grad: &mut Matrix2<f64>) -> Result<f64> {
        let l = flow::loss(m, Task::B, Loss::Own, self.par)?;
        // a non-finite loss is the driver's divergence; the update there is not needed
        if l.is_finite() {
            *grad = self.grad(m)?;
        }
        Ok(l)
    }

    fn loss(&mut self, m: &Matrix2<f64>) -> Result<Option<f64>> {
        flow::loss(m, Task::B, Loss::Own, self.par).map(Some)
    }
}

/// The observer that keeps max over the path of e^{-k_min settle} ([`LinearGd::transient`]),
/// at every M the loss is evaluated at (each step's start and the end).
struct Transient {
    settle: f64,
    max: f64,
}

impl Transient {
    fn see(&mut self, m: &Matrix2<f64>) {
        let i_m = Matrix2::identity() - m;
        let (tr, det) = (i_m.trace(), i_m.determinant());
        let disc = 0.25 * tr * tr - det;
        let slowest = if disc >= 0.0 {
            0.5 * tr - disc.sqrt()
        } else {
            0.5 * tr
        };
        self.max = self.max.max((-slowest * self.settle).exp());
    }
}

impl Observer<MapB<'_>> for Transient {
    fn before(&mut self, _: usize, m: &Matrix2<f64>, _: &Matrix2<f64>, _: f64) -> Result<()> {
        self.see(m);
        Ok(())
    }

    fn end(&mut self, _: usize, m: &Matrix2<f64>, _: &Matrix2<f64>, _: Option<f64>) -> Result<()> {
        self.see(m);
        Ok(())
    }
}

/// Relative tolerance of "network I = the 2x2 map's I" ([`linear_gd_task_b`]):
/// - the stopping quantum: the network may stop one step before or after the map (its loss
///   carries the transient), which moves I by [`LinearGd::step_change`];
/// - the transient: every update and the readout are off by a relative delta <= `transient`,
///   so M after B is off by at most delta |Delta M| (the displacement); z_AA = u R_aa moves by
///   |dz_AA/dM| <= u G_A^2 = zhat G_A per unit of M (R = (I - M)^-1, |R_aa| = G_A = zhat/u
///   after A), and I = (e_A/e_A0)^2 by twice the relative change of e_A:
///   2 zhat G_A delta |Delta M| / e_A;
/// - rounding: a few hundred steps of 2x2 and N-sums, 1e-9.
pub fn linear_gd_tolerance(map: &LinearGd, par: &Params) -> f64 {
    let g_a = par.zhat / par.u;
    map.step_change / map.interference.abs().max(f64::MIN_POSITIVE)
        + 2.0 * par.zhat * g_a * map.transient * map.displacement
            / map.error_a.max(f64::MIN_POSITIVE)
        + 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::{NetworkSpec, Phi, Readout};
    use rand::{rngs::StdRng, SeedableRng};

    /// The step loop the driver replaced (2026-12-05): loss, finite test, L < tol, the cap,
    /// then M -= lr dL/dM; the transient at every M the loss is taken at.
    fn step_loop(
        after_a: &Network,
        par: &Params,
        rule: Rule,
        lr: f64,
        tol: f64,
        max_steps: usize,
        settle: f64,
    ) -> (Matrix2<f64>, usize, bool, f64) {
        let map = MapB {
            after_a,
            par,
            rule,
            inv_n: 1.0 / after_a.n as f64,
        };
        let mut tr = Transient { settle, max: 0.0 };
        let mut m = after_a.m;
        let mut steps = 0;
        let converged = loop {
            tr.see(&m);
            let l = flow::loss(&m, Task::B, Loss::Own, par).unwrap();
            assert!(l.is_finite());
            if l < tol {
                break true;
            }
            if steps >= max_steps {
                break false;
            }
            m -= lr * map.grad(&m).unwrap();
            steps += 1;
        };
        (m, steps, converged, tr.max)
    }

    fn network(seed: u64) -> Network {
        let spec = NetworkSpec {
            n: 40,
            g: 0.3,
            dt: 0.2,
            phi: Phi::Tanh,
            readout: Readout::Rate,
            m0: [[0.6, 0.05], [0.05, 0.0]],
        };
        Network::new(&spec, &mut StdRng::seed_from_u64(seed))
    }

    /// The driver's map equals the step loop bit for bit, converged, at the cap and with
    /// L < tol reached exactly at the cap (which counts as converged in both), for both rules.
    #[test]
    fn driver_map_equals_the_step_loop_bit_for_bit() {
        let par = Params::reference(0.3);
        let untrained = Matrix2::zeros();
        for rule in [Rule::Gradient, Rule::Eprop] {
            let net = network(3);
            let (_, free_steps, conv, _) = step_loop(&net, &par, rule, 0.05, 5e-13, 20_000, 12.0);
            assert!(conv, "{rule:?}: {free_steps} steps");
            for cap in [20_000, free_steps, free_steps - 1, 3] {
                let got =
                    linear_gd_task_b(&net, &untrained, &par, rule, 0.05, 5e-13, cap, 12.0).unwrap();
                let (m, steps, converged, transient) =
                    step_loop(&net, &par, rule, 0.05, 5e-13, cap, 12.0);
                assert_eq!(
                    (got.steps, got.converged),
                    (steps, converged),
                    "{rule:?} cap {cap}"
                );
                assert_eq!(got.transient.to_bits(), transient.to_bits());
                assert_eq!(got.displacement.to_bits(), (m - net.m).norm().to_bits());
            }
        }
    }
}
