//! Unit tests of `rnn::latent_xval`.

use super::*;
use rand::SeedableRng;

fn spec_small() -> XvalSpec {
    XvalSpec {
        task: WorkingMemory {
            t_loss: 1.0,
            u_s: 0.1,
            ..XvalSpec::standard().task
        },
        ..XvalSpec::standard()
    }
}

#[test]
fn discrete_adjoint_matches_central_differences() {
    let mut spec = spec_small();
    spec.task.loss = LossKind::Aligned;
    let lat = EulerLatent::new(&spec, 0.03);
    let m = Matrix2::new(1.3, 0.2, -0.15, 0.4);
    let mut st = Vec::new();
    for task in [Task::A, Task::B] {
        let (_, g) = lat.loss_and_gradient(&m, task, &mut st);
        // h = 1e-5: truncation h^2 L^(3) ~ 1e-10, rounding 1e-16 / 1e-5 = 1e-11
        let h = 1e-5;
        for i in 0..2 {
            for j in 0..2 {
                let (mut mp, mut mm) = (m, m);
                mp[(i, j)] += h;
                mm[(i, j)] -= h;
                let fd = (lat.loss(&mp, task) - lat.loss(&mm, task)) / (2.0 * h);
                assert!(
                    (fd - g[(i, j)]).abs() < 1e-8 * g.norm(),
                    "{task:?} ({i},{j}): {fd} vs {}",
                    g[(i, j)]
                );
            }
        }
    }
}

/// The network's BPTT dL/dM (W = U M U^T / N) converges to the latent adjoint dL/dM at
/// the same M: the same learning-rate scale on both sides. The gap is pattern sampling,
/// O(N^(-1/2)) with a large amplitude near lambda = 1 (task A, RMS over seeds 1..4:
/// 0.263 at N = 256, 0.062 at N = 4096, ratio 4.3 against sqrt(16) = 4, C ~ 4). Asserted
/// at N = 128 and 2048 (expected ratio 4): RMS(2048) below half of RMS(128) and below
/// 3 C / sqrt(2048) = 0.27; a wrong factor (1/N, dt, G) would leave an N-independent gap.
#[test]
fn network_gradient_converges_to_latent_adjoint() {
    use super::super::bptt::Workspace;
    use super::super::task::Task as NetTask;
    let spec = spec_small();
    let lat = EulerLatent::new(&spec, 0.0);
    let m = Matrix2::new(1.15, 0.1, -0.05, 0.3);
    let mut st = Vec::new();
    for (pattern, task) in [(0usize, Task::A), (1, Task::B)] {
        let (_, g_lat) = lat.loss_and_gradient(&m, task, &mut st);
        let mut rms = Vec::new();
        for &n in &[128usize, 2048] {
            let mut sq = 0.0;
            for seed in 1..=4u64 {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let net = Network::new(
                    &NetworkSpec {
                        n,
                        g: 0.0,
                        dt: spec.dt,
                        phi: Phi::Erf,
                        readout: Readout::Rate,
                        m0: arr(&m),
                    },
                    &mut rng,
                );
                let t = NetTask::WorkingMemory(WorkingMemory {
                    pattern,
                    ..spec.task
                });
                let trials = t.trials(n, 2, 2, spec.dt, 1, &mut rng);
                let mut ws = Workspace::new(&net, trials.steps, 1);
                let mut g = vec![0.0; 4];
                ws.loss_and_grad(&net, &trials, &Trainable::LATENT, &mut g)
                    .unwrap();
                // column-major M
                let g_net = Matrix2::new(g[0], g[2], g[1], g[3]);
                sq += ((g_net - g_lat).norm() / g_lat.norm()).powi(2);
            }
            rms.push((sq / 4.0).sqrt());
        }
        println!("{task:?} rms gradient gap N = 128, 2048: {rms:?}");
        assert!(rms[1] < 0.27 && rms[1] < 0.5 * rms[0], "{task:?} {rms:?}");
    }
}

/// The Euler latent model approaches the continuous adjoint of
/// [`crate::interference::nonlinear`] as dt -> 0: the gap is O(dt) (Euler states and the
/// window average as a Riemann sum); dt = 0.01 must be within 2e-2 and closer than dt = 0.1.
#[test]
fn euler_latent_approaches_the_ode_adjoint() {
    use crate::interference::nonlinear::{LossKind as Lk, Schedule, Trials as OdeTrials};
    use crate::num::ode::OdeOptions;
    let base = spec_small();
    let ode = OdeTrials {
        gain: Gain::new(GainKind::Erf),
        schedule: Schedule {
            u_p: base.task.u_p,
            t_in: base.task.t_in,
            u_s: base.task.u_s,
            t_d: base.task.t_d,
            t_l: base.task.t_loss,
        },
        loss: Lk::Own,
        zhat: base.task.zhat,
        leak: 0.02,
        ode: OdeOptions {
            rtol: 1e-10,
            atol: 1e-12,
            ..OdeOptions::default()
        },
        finite_n: None,
        rule: crate::interference::linear::Rule::Gradient,
    };
    let m = Matrix2::new(1.15, 0.1, -0.05, 0.3);
    for task in [Task::A, Task::B] {
        let (_, g_ode) = ode.loss_and_gradient(&m, task).unwrap();
        let gap = |dt: f64| {
            let spec = XvalSpec { dt, ..base };
            let lat = EulerLatent::new(&spec, 0.02);
            let (_, g) = lat.loss_and_gradient(&m, task, &mut Vec::new());
            (g - g_ode).norm() / g_ode.norm()
        };
        let (fine, coarse) = (gap(0.01), gap(0.1));
        println!("{task:?} gap dt=0.01 {fine:.3e}, dt=0.1 {coarse:.3e}");
        assert!(fine < 2e-2 && fine < coarse, "{task:?}: {fine} {coarse}");
    }
}

#[test]
fn network_fixed_point_is_a_fixed_point_of_the_n_dim_flow() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let net = Network::new(
        &NetworkSpec {
            n: 200,
            g: 0.0,
            dt: 0.2,
            phi: Phi::Erf,
            readout: Readout::Rate,
            m0: [[1.3, 0.0], [0.0, 0.0]],
        },
        &mut rng,
    );
    let k = network_fixed_point(&net, 0.0, Vector2::new(0.6, 0.0)).unwrap();
    let x = &net.u * nalgebra::DVector::from_column_slice(k.as_slice());
    let mut f = nalgebra::DVector::zeros(200);
    net.flow(&x, &nalgebra::DVector::zeros(200), &mut f);
    assert!(f.norm() < 1e-10 * x.norm(), "{}", f.norm());
    // near the N -> infinity memory |kappa|^2 = (2/pi)(lambda^2 - 1) (claim I-1); the
    // pattern's fourth moment moves it by O(N^(-1/2)) ~ 10-20% at N = 200
    let r = ((2.0 / std::f64::consts::PI) * (1.3f64.powi(2) - 1.0)).sqrt();
    assert!((k.norm() - r).abs() < 0.25 * r, "{} vs {r}", k.norm());
}

#[test]
fn calibrated_leak_reproduces_the_seed() {
    let spec = XvalSpec::standard();
    let eps = -7.5e-3;
    let leak = calibrate_leak(&spec, eps).unwrap();
    let lat = run_latent(&spec, leak).unwrap();
    assert!(
        (lat.eps - eps).abs() < 1e-8 * eps.abs(),
        "{} vs {eps}",
        lat.eps
    );
    assert!(leak < 0.0);
}

#[test]
fn crossing_time_interpolates_in_log_loss() {
    // L = 10^-k at step k: crosses 10^-2.5 at 2.5 steps
    let l = [1.0, 0.1, 0.01, 0.001];
    assert!((crossing_tau(&l, 10f64.powf(-2.5), 2.0) - 5.0).abs() < 1e-12);
    assert_eq!(crossing_tau(&[1e-9], 1e-6, 1.0), 0.0);
}

#[test]
fn scaling_fit_recovers_a_known_exponent() {
    let m = Measured {
        lambda_a: 1.0,
        kappa_a: 1.0,
        readout_a: 1.0,
        interference: 1.0,
        tau_a: 1.0,
        tau_b: 1.0,
        eps: 0.0,
        eps_after_b: 0.0,
        leak_a_after_b: 0.0,
        m_after_a: [[0.0; 2]; 2],
        m_after_b: [[0.0; 2]; 2],
    };
    // rel errors exactly 2 N^-0.5 (1 + 0.1 seed): p = 0.5 with zero jackknife spread
    let rows: Vec<XvalRow> = [128usize, 512, 2048]
        .iter()
        .flat_map(|&n| {
            (1..=3u64).map(move |seed| XvalRow {
                n,
                seed,
                leak: 0.0,
                network: m,
                latent: m,
                rel_error: [2.0 * (n as f64).powf(-0.5) * (1.0 + 0.1 * seed as f64); 6],
            })
        })
        .collect();
    let f = fit_scaling(&rows, 0);
    assert!((f.p - 0.5).abs() < 1e-12 && f.p_se < 1e-12, "{f:?}");
    assert!((f.c - 2.0 * (1.0f64 + 1.4 / 3.0 * 0.1 * 3.0)).abs() < 1.0);
}

#[test]
fn train_report_has_a_verdict_per_quantity_and_n() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/rnn-latent-xval.toml"
    ))
    .unwrap();
    let model = crate::model::parse("rnn-latent-xval.toml", &text).unwrap();
    let rnn = super::super::spec::check(&model).unwrap();
    let ns = rnn.xval.clone().expect("the shipped model asks for [xval]");
    let r = xval_report(&XvalSpec::from_rnn(&rnn).unwrap(), &ns, 3).unwrap();
    assert_eq!(r.verdicts.len(), SAMPLED.len() * ns.len());
    assert!(!r.failed(), "{:?}", r.verdicts);
    // the rows compare the network with the latent model: a wrong tolerance scale shows
    for v in &r.verdicts {
        assert!(v.measured > 0.0 && v.measured < v.tolerance, "{v:?}");
    }
}

#[test]
fn model_file_is_the_standard_setting() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/rnn-latent-xval.toml"
    ))
    .unwrap();
    let model = crate::model::parse("rnn-latent-xval.toml", &text).unwrap();
    let rnn = super::super::spec::check(&model).unwrap();
    let x = XvalSpec::from_rnn(&rnn).unwrap();
    let s = XvalSpec::standard();
    assert_eq!(format!("{x:?}"), format!("{s:?}"));
    let mut bad = rnn.clone();
    bad.network.g = 0.5;
    assert!(matches!(
        XvalSpec::from_rnn(&bad),
        Err(Error::Requirement(_))
    ));
}

/// The mechanism behind the disputed I rows (proofs-checks X-6): the network's seed is a
/// rate leak h_N,a(kappa_b e_b) that grows as the B memory forms, the latent input leak
/// does not; after B training the network's B-trial overlap kappa_a(T) exceeds the
/// latent one although both start from the same eps. Seeds 1..8 at N = 512 measured
/// ratios 1.38 .. 2.04; asserted: every ratio > 1.2.
#[test]
#[ignore]
fn network_seed_grows_more_during_b() {
    for seed in 1..=8 {
        let r = compare(&XvalSpec::standard(), 512, seed).unwrap();
        let ratio = r.network.eps_after_b / r.latent.eps_after_b;
        println!(
            "seed {seed}: I {:.3e} / {:.3e}, eps {:.3e}, eps after B {:.3e} / {:.3e} (ratio {ratio:.2})",
            r.network.interference,
            r.latent.interference,
            r.network.eps,
            r.network.eps_after_b,
            r.latent.eps_after_b
        );
        assert!(ratio > 1.2, "seed {seed}: {ratio}");
    }
}
