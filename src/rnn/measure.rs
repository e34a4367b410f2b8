//! Measurements on networks: Theta_new = |dz/dW|^2 at initialisation (THEORY I-12).
//!
//! z = b^T x(T) / N for a trial with input along b (pulse u_p for T_in, then u_s for T_d);
//! dz/dW comes from the same BPTT as training, with the readout cotangent set to 1 at the
//! final state. Euler with step dt approximates the continuous network with an O(dt) error
//! (the decay factor (1 - dt)^(t/dt) vs e^{-t}); [`theta_new_measured`] removes it by
//! three-level Richardson extrapolation of log Theta, leaving O(dt^3).

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::bptt::Workspace;
use super::network::{Network, NetworkSpec, Phi, Readout, Trainable};
use super::task::{LossKind, Task, WorkingMemory};
use crate::Result;

/// Setting of a Theta_new measurement.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ThetaNewSetting {
    pub n: usize,
    pub g: f64,
    pub u_p: f64,
    pub t_in: f64,
    pub u_s: f64,
    pub t_d: f64,
    /// Coarse Euler step (the extrapolation also uses dt/2).
    pub dt: f64,
}

/// |dz/dW|^2 for one network (its current W, any phi; state readout z = b^T x(T)/N).
pub fn ntk_new(net: &Network, s: &ThetaNewSetting) -> Result<f64> {
    let task = Task::WorkingMemory(WorkingMemory {
        pattern: 1,
        u_p: s.u_p,
        t_in: s.t_in,
        u_s: s.u_s,
        t_d: s.t_d,
        t_loss: 0.0,
        zhat: 0.0,
        loss: LossKind::Own,
        sigma0: 0.0,
    });
    let mut rng = StdRng::seed_from_u64(0);
    let trials = task.trials(net.n, net.inputs(), net.outputs(), net.dt, 1, &mut rng);
    let mut ws = Workspace::new(net, trials.steps, 1);
    ws.forward(net, &trials)?;
    let mut ey = DMatrix::zeros(net.outputs(), trials.steps);
    ey[(1, trials.steps - 1)] = 1.0;
    ws.set_cotangent(&ey);
    let mut grad = vec![0.0; net.num_params(&Trainable::FULL)];
    ws.backward(net, &trials, &Trainable::FULL, &mut grad)?;
    Ok(grad.iter().map(|g| g * g).sum())
}

/// Theta_new measured on a linear network (phi = identity, state readout) at initialisation
/// (W = W0, M = 0) drawn with `seed`, extrapolated to dt -> 0.
///
/// The Euler error is mostly an error in the decay exponent (ln(1 - dt)/dt = -1 - dt/2 -
/// dt^2/3 ...), so log Theta is close to a polynomial in dt while Theta itself is not once
/// T dt is O(1); three levels dt, dt/2, dt/4 and the Richardson weights (8, -6, 1)/3 on
/// log Theta cancel the O(dt) and O(dt^2) terms.
pub fn theta_new_measured(s: &ThetaNewSetting, seed: u64) -> Result<f64> {
    let mut logs = [0.0; 3];
    for (i, dt) in [s.dt, 0.5 * s.dt, 0.25 * s.dt].into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(seed);
        let net = Network::new(
            &NetworkSpec {
                n: s.n,
                g: s.g,
                dt,
                phi: Phi::Identity,
                readout: Readout::State,
                m0: [[0.0; 2]; 2],
            },
            &mut rng,
        );
        logs[i] = ntk_new(&net, s)?.ln();
    }
    Ok(((8.0 * logs[2] - 6.0 * logs[1] + logs[0]) / 3.0).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// g = 0: Theta_new = G_00^2 in closed form; for T_in = T_d = 2, u_p = 1,
    /// G_00 = e^{-4}(e^2 - 3) + 2 e^{-2}(1 - e^{-2}) (THEORY I-12 reference 0.099).
    #[test]
    fn g0_closed_form() {
        let s = ThetaNewSetting {
            n: 50,
            g: 0.0,
            u_p: 1.0,
            t_in: 2.0,
            u_s: 0.0,
            t_d: 2.0,
            dt: 0.1,
        };
        let e = std::f64::consts::E;
        let g00 = (e * e - 3.0) / e.powi(4) + 2.0 * (1.0 - e.powi(-2)) / (e * e);
        let m = theta_new_measured(&s, 1).unwrap();
        // the extrapolated Euler error is O(dt^2) ~ 1e-4 relative at dt = 0.02
        assert!(
            (m - g00 * g00).abs() < 1e-3 * g00 * g00,
            "{m} vs {}",
            g00 * g00
        );
    }
}
