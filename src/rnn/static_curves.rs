//! Full-W training of the linear network on the NeurIPS-2020 static task (THEORY I-10,
//! issue 3 item 7(b)): the curves of convergence time, |dW|, mean gradient norm and the
//! shuffle loss against g, each normalised to g = 0 (claim X-5).
//!
//! The network is x' = -x + W x + u a (phi = identity, state readout z = b^T x(T)/N with the
//! readout b orthogonal to the input a), trained by plain gradient descent on
//! L = (z - zhat)^2/2 with the rate eta = eta0 (1 - g^2)^2 of I-10. Learning time is
//! tau = eta x steps; the dressed time is tau~ = beta^2 tau (I-9).

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::Serialize;

use super::bptt::Workspace;
use super::network::{Network, NetworkSpec, Phi, Readout, Trainable};
use super::task::{StaticTask, Task, Trials};
use crate::claims::Row;
use crate::{Error, Result};

/// One static-task training setting.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StaticSetting {
    /// Neurons N.
    pub n: usize,
    /// Random bulk strength g.
    pub g: f64,
    /// Euler step dt and trial length t_max.
    pub dt: f64,
    pub t_max: f64,
    /// Constant input u (along a) and target zhat (on the b readout).
    pub u: f64,
    pub zhat: f64,
    /// Base rate eta0; the run uses eta = eta0 (1 - g^2)^2.
    pub lr0: f64,
    /// Convergence: L < tol.
    pub tol: f64,
    /// Step cap.
    pub max_steps: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct StaticRun {
    pub g: f64,
    pub seed: u64,
    /// Learning rate eta used.
    pub lr: f64,
    /// Gradient steps until L < tol.
    pub steps: usize,
    /// Convergence time tau_conv = eta x (steps, log-interpolated across the tol crossing).
    pub tau_conv: f64,
    /// |W - W0|_F at convergence.
    pub dw_norm: f64,
    /// Mean over steps of |dL/dW|_F.
    pub mean_grad: f64,
    /// Initial loss L0 (untrained network).
    pub loss0: f64,
    /// Loss of W0' + dW with W0' a random permutation of the entries of W0.
    pub loss_shuffled: f64,
    /// Readout z after each step 0..=steps (z[0] at initialisation).
    pub z: Vec<f64>,
}

/// The time at which a decreasing loss sequence (sampled every `lr` in tau, index 0 at
/// tau = 0) first drops below `tol`, interpolated linearly in log L between the two samples
/// that bracket the crossing. None if it never does.
pub fn crossing_time(losses: &[f64], tol: f64, lr: f64) -> Option<f64> {
    let k = losses.iter().position(|&l| l < tol)?;
    if k == 0 {
        return Some(0.0);
    }
    let (a, b) = (losses[k - 1].ln(), losses[k].ln());
    let frac = if a > b { (a - tol.ln()) / (a - b) } else { 1.0 };
    Some(lr * ((k - 1) as f64 + frac))
}

/// W0 with its entries randomly permuted (same empirical distribution, correlations with any
/// learned dW destroyed). Deterministic given `rng`.
pub fn permute_entries(w0: &DMatrix<f64>, rng: &mut StdRng) -> DMatrix<f64> {
    let mut v: Vec<f64> = w0.as_slice().to_vec();
    v.shuffle(rng);
    DMatrix::from_vec(w0.nrows(), w0.ncols(), v)
}

/// Mean and standard error of the mean of a sample (0 error for one value).
pub fn mean_sem(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (m, 0.0);
    }
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// The linear network of I-10 (phi = identity, state readout, M0 = 0; W0 drawn from `rng`)
/// and its static task.
pub fn static_network(
    n: usize,
    g: f64,
    dt: f64,
    task: StaticTask,
    rng: &mut StdRng,
) -> (Network, Task) {
    let spec = NetworkSpec {
        n,
        g,
        dt,
        phi: Phi::Identity,
        readout: Readout::State,
        m0: [[0.0; 2]; 2],
    };
    (Network::new(&spec, rng), Task::Static(task))
}

/// Train one network (seed `seed`) on the static task with plain GD and measure.
pub fn run_static(s: &StaticSetting, seed: u64) -> Result<StaticRun> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut net, task) = static_network(
        s.n,
        s.g,
        s.dt,
        StaticTask {
            pattern: 0,
            u: s.u,
            t_max: s.t_max,
            zhat: s.zhat,
        },
        &mut rng,
    );
    let trials: Trials = task.trials(s.n, net.inputs(), net.outputs(), s.dt, 1, &mut rng);
    let last = trials.steps - 1;
    let mut ws = Workspace::new(&net, trials.steps, 1);
    let t = Trainable::FULL;
    let lr = s.lr0 * (1.0 - s.g * s.g).powi(2);
    let mut grad = vec![0.0; s.n * s.n];
    let mut losses = Vec::new();
    let mut z = Vec::new();
    let mut grad_sum = 0.0;
    let mut step = 0;
    loop {
        let loss = ws.loss_and_grad(&net, &trials, &t, &mut grad)?;
        let loss0 = *losses.first().unwrap_or(&loss);
        if !loss.is_finite() || loss > 1e4 * loss0 {
            return Err(Error::Diverged {
                what: format!("static task g={} seed={seed}", s.g),
                step,
                loss,
                hint: format!("try a smaller lr0 (e.g. {:.3e})", s.lr0 / 4.0),
            });
        }
        losses.push(loss);
        z.push(ws.readouts(last)[(1, 0)]);
        if loss < s.tol {
            break;
        }
        if step >= s.max_steps {
            return Err(Error::NoConvergence {
                solver: "static-task GD".into(),
                iterations: step,
                residual: loss,
                tolerance: s.tol,
            });
        }
        grad_sum += grad.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (w, gi) in net.w.as_mut_slice().iter_mut().zip(&grad) {
            *w -= lr * gi;
        }
        step += 1;
    }
    let dw = &net.w - &net.w0;
    let tau_conv = crossing_time(&losses, s.tol, lr).unwrap_or(f64::NAN);
    let mut shuffled = net.clone();
    shuffled.w = permute_entries(&net.w0, &mut rng) + &dw;
    let loss_shuffled = ws.loss_only(&shuffled, &trials)?;
    Ok(StaticRun {
        g: s.g,
        seed,
        lr,
        steps: step,
        tau_conv,
        dw_norm: dw.norm(),
        mean_grad: grad_sum / step.max(1) as f64,
        loss0: losses[0],
        loss_shuffled,
        z,
    })
}

/// The X-5 setting at bulk strength g (proofs-checks/X-05): N = 256, dt = 0.5, t_max = 30,
/// u = 1, zhat = 0.5, eta0 = 0.02, tol = 1e-4 zhat^2.
pub fn x5_setting(g: f64) -> StaticSetting {
    StaticSetting {
        n: 256,
        g,
        dt: 0.5,
        t_max: 30.0,
        u: 1.0,
        zhat: 0.5,
        lr0: 0.02,
        tol: 1e-4 * 0.25,
        max_steps: 5000,
    }
}

/// Seed means (with standard errors) of the I-10 quantities at one g.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    pub g: f64,
    pub seeds: usize,
    /// (mean, sem) of tau_conv, |dW|, mean gradient, L_shuffled/L0, z at tau~ = `tt_probe`.
    pub tau_conv: (f64, f64),
    pub dw_norm: (f64, f64),
    pub mean_grad: (f64, f64),
    pub shuffle_ratio: (f64, f64),
    pub z_probe: (f64, f64),
    /// Mean initial loss L0 / (zhat^2/2) - 1 (finite-N random readout of the untrained net).
    pub loss0_offset: f64,
}

/// The readout z at dressed time tau~ = beta^2 eta k, linearly interpolated in k.
pub fn z_at_dressed_time(run: &StaticRun, tt: f64) -> f64 {
    let b2 = (1.0 - run.g * run.g).powi(-2);
    let x = tt / (b2 * run.lr);
    let k = x.floor() as usize;
    if k + 1 >= run.z.len() {
        return *run.z.last().unwrap_or(&f64::NAN);
    }
    let f = x - k as f64;
    run.z[k] * (1.0 - f) + run.z[k + 1] * f
}

/// Train `seeds` networks at each g and average (g = 0 has W0 = 0: one network suffices, the
/// result does not depend on the draw of the orthogonal patterns).
pub fn curve(
    setting: impl Fn(f64) -> StaticSetting + Sync,
    gs: &[f64],
    seeds: u64,
    tt_probe: f64,
) -> Result<Vec<CurvePoint>> {
    // Every (g, seed) run is independent: all in parallel (rayon), gathered in (g, seed) order,
    // so the means are summed in the same order for any thread count; the first error in that
    // order is returned.
    let jobs: Vec<(usize, u64)> = gs
        .iter()
        .enumerate()
        .flat_map(|(i, &g)| (1..=if g == 0.0 { 1 } else { seeds }).map(move |seed| (i, seed)))
        .collect();
    let done: Vec<Result<StaticRun>> = jobs
        .par_iter()
        .map(|&(i, seed)| run_static(&setting(gs[i]), seed))
        .collect();
    let mut done = done.into_iter();
    let mut out = Vec::new();
    for &g in gs {
        let s = setting(g);
        let ns = if g == 0.0 { 1 } else { seeds };
        let runs = done
            .by_ref()
            .take(ns as usize)
            .collect::<Result<Vec<_>>>()?;
        let col = |f: &dyn Fn(&StaticRun) -> f64| mean_sem(&runs.iter().map(f).collect::<Vec<_>>());
        out.push(CurvePoint {
            g,
            seeds: runs.len(),
            tau_conv: col(&|r| r.tau_conv),
            dw_norm: col(&|r| r.dw_norm),
            mean_grad: col(&|r| r.mean_grad),
            shuffle_ratio: col(&|r| r.loss_shuffled / r.loss0),
            z_probe: col(&|r| z_at_dressed_time(r, tt_probe)),
            loss0_offset: col(&|r| r.loss0 / (0.5 * s.zhat * s.zhat)).0 - 1.0,
        });
    }
    Ok(out)
}

/// Ratio of two (mean, sem) pairs with the relative errors added in quadrature.
pub fn ratio(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let r = a.0 / b.0;
    let e = ((a.1 / a.0).powi(2) + (b.1 / b.0).powi(2)).sqrt();
    (r, r.abs() * e)
}

/// Bulk strengths of X-5.
pub const X5_G: [f64; 4] = [0.0, 0.3, 0.5, 0.7];
/// Networks per g > 0.
pub const X5_SEEDS: u64 = 4;
/// Dressed time at which the collapse of z(tau~) is probed.
pub const X5_TT: f64 = 0.5;
/// Floor of every relative tolerance: the finite learning rate (eta0 = 0.02, ~130 steps to
/// convergence, so one step is < 1% of tau_conv; proofs-checks/X-05).
const FLOOR: f64 = 0.02;

/// Measured values documented in proofs-checks/X-05 for the rows where the I-10 prediction
/// misses the 3-standard-error tolerance: (quantity, g, our finding).
pub const X5_FINDINGS: &[(&str, f64, f64)] = &[
    ("|dW|", 0.3, 0.93487),
    ("mean gradient", 0.5, 1.58907),
    ("mean gradient", 0.7, 3.08626),
    ("z(tau~) collapse", 0.3, 0.94348),
];

/// One X-5 row: the ratio `m` (mean, sem) against `pred`, tolerance max(3 sem, floor +
/// `extra`) relative; a documented finding turns a miss into a disputed row.
fn x5_row(
    findings: &[(&str, f64, f64)],
    what: &str,
    g: f64,
    pred: f64,
    m: (f64, f64),
    extra: f64,
    note: String,
) -> Row {
    let tol = (3.0 * m.1 / pred.abs()).max(FLOOR) + extra;
    let label = format!("{what} ratio g={g} vs I-10");
    let note = format!("{note}; measured {:.5} +- {:.5} (sem)", m.0, m.1);
    match findings.iter().find(|(q, gg, _)| *q == what && *gg == g) {
        Some(&(_, _, finding)) => {
            let ftol = (3.0 * m.1 / finding.abs()).max(FLOOR);
            let r = Row::disputed(label, pred, m.0, tol, finding, ftol);
            let n = format!("{}; {note}", r.note);
            r.note(n)
        }
        None => Row::rel(label, pred, m.0, tol).note(note),
    }
}

/// Rows of X-5 from a measured curve (first point g = 0).
pub fn x5_rows(c: &[CurvePoint]) -> Vec<Row> {
    curve_rows(c, 0.5, X5_TT, X5_FINDINGS)
}

/// Rows of a measured curve (first point g = 0) at target `zhat` against the I-10 curves,
/// collapse probed at dressed time `tt`; `findings` lists the documented disputed rows.
pub fn curve_rows(c: &[CurvePoint], zhat: f64, tt: f64, findings: &[(&str, f64, f64)]) -> Vec<Row> {
    use crate::interference::kernels::linear_theory as lt;
    let base = &c[0];
    let mut rows = Vec::new();
    for p in &c[1..] {
        let g = p.g;
        let info = format!("{} seeds, L0/(zhat^2/2)-1 = {:.3}", p.seeds, p.loss0_offset);
        rows.push(x5_row(
            findings,
            "convergence time",
            g,
            lt::convergence_time_ratio(g),
            ratio(p.tau_conv, base.tau_conv),
            0.0,
            format!("(1-g^2)^2; {info}"),
        ));
        rows.push(x5_row(
            findings,
            "|dW|",
            g,
            lt::dw_norm_ratio(g),
            ratio(p.dw_norm, base.dw_norm),
            0.0,
            format!("1-g^2; {info}"),
        ));
        rows.push(x5_row(
            findings,
            "mean gradient",
            g,
            lt::mean_gradient_ratio(g),
            ratio(p.mean_grad, base.mean_grad),
            0.0,
            format!("1/(1-g^2); {info}"),
        ));
        rows.push(x5_row(
            findings,
            "shuffle loss",
            g,
            lt::shuffle_loss_ratio(g),
            p.shuffle_ratio,
            0.0,
            format!("L(W0 permuted + dW)/L0 vs g^4(2-g^2)^2; {info}"),
        ));
        // the collapse holds at leading order; the series' own beta dependence at O(tau~^3)
        // is added to the tolerance
        let series = lt::readout(zhat, g, tt) / lt::readout(zhat, 0.0, tt);
        rows.push(x5_row(
            findings,
            "z(tau~) collapse",
            g,
            1.0,
            ratio(p.z_probe, base.z_probe),
            (series - 1.0).abs(),
            format!("z(tau~={tt})/z_g=0 vs 1 (series ratio {series:.4}); {info}"),
        ));
    }
    rows
}

/// The X-5 check (tier fast, ~5 s in release).
pub fn x5_check() -> Result<Vec<Row>> {
    let c = curve(x5_setting, &X5_G, X5_SEEDS, X5_TT)?;
    Ok(x5_rows(&c))
}

/// The X-10 setting (proofs-checks/X-10): X-5 at N = 1024 and zhat = 0.2, where the
/// higher-order terms in zhat^2 beta and the random untrained readout (~ g beta / sqrt(N)) are
/// both smaller; tol = 1e-4 zhat^2.
pub fn x10_setting(g: f64) -> StaticSetting {
    StaticSetting {
        n: 1024,
        zhat: 0.2,
        tol: 1e-4 * 0.04,
        ..x5_setting(g)
    }
}

/// Measured values documented in proofs-checks/X-10 for the rows where the I-10 prediction
/// misses the tolerance (same rule as X-5).
pub const X10_FINDINGS: &[(&str, f64, f64)] = &[
    ("convergence time", 0.3, 0.80111),
    ("convergence time", 0.5, 0.52403),
    ("convergence time", 0.7, 0.22696),
    ("mean gradient", 0.3, 1.13558),
    ("mean gradient", 0.5, 1.42297),
    ("mean gradient", 0.7, 2.21106),
];

/// The X-10 check (tier full, ~2.5 min of CPU in release): the leading-order I-10 curves in
/// the regime where they should be clean.
pub fn x10_check() -> Result<Vec<Row>> {
    let c = curve(x10_setting, &X5_G, X5_SEEDS, X5_TT)?;
    Ok(curve_rows(&c, 0.2, X5_TT, X10_FINDINGS))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (g, seed) runs go in parallel: the curve is the same, bit for bit, for 1 and 2
    /// threads (a small N keeps the test short).
    #[test]
    fn curve_is_identical_for_any_thread_count() {
        let small = |g| StaticSetting {
            n: 40,
            ..x5_setting(g)
        };
        let with = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| curve(small, &[0.0, 0.5], 3, X5_TT).unwrap())
        };
        let (one, two) = (with(1), with(2));
        assert_eq!(format!("{one:?}"), format!("{two:?}"));
        assert_eq!(two.iter().map(|c| c.seeds).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn crossing_time_interpolates_in_log_loss() {
        // L = e^{-tau}, sampled every 0.5: crosses 1e-2 at tau = ln 100 exactly
        let lr = 0.5;
        let l: Vec<f64> = (0..40).map(|k| (-(k as f64) * lr).exp()).collect();
        let t = crossing_time(&l, 1e-2, lr).unwrap();
        assert!((t - 100f64.ln()).abs() < 1e-12, "{t}");
        assert_eq!(crossing_time(&l, 1e-30, lr), None);
        assert_eq!(crossing_time(&l, 2.0, lr), Some(0.0));
    }

    #[test]
    fn permutation_keeps_entries_and_is_seeded() {
        let w = DMatrix::from_fn(7, 5, |i, j| (i * 5 + j) as f64);
        let p1 = permute_entries(&w, &mut StdRng::seed_from_u64(1));
        let p2 = permute_entries(&w, &mut StdRng::seed_from_u64(1));
        assert_eq!(p1, p2);
        assert_ne!(p1, w);
        let mut a = p1.as_slice().to_vec();
        a.sort_by(f64::total_cmp);
        let mut b = w.as_slice().to_vec();
        b.sort_by(f64::total_cmp);
        assert_eq!(a, b);
    }

    fn point(g: f64, r: f64) -> CurvePoint {
        let p = |v: f64| (v, 0.0);
        CurvePoint {
            g,
            seeds: 1,
            tau_conv: p(r * crate::interference::kernels::linear_theory::convergence_time_ratio(g)),
            dw_norm: p(r * (1.0 - g * g)),
            mean_grad: p(r / (1.0 - g * g)),
            shuffle_ratio: p(r * g.powi(4) * (2.0 - g * g).powi(2)),
            z_probe: p(r),
            loss0_offset: 0.0,
        }
    }

    #[test]
    fn rows_pass_on_the_prediction_and_fail_off_it() {
        use crate::claims::Verdict;
        // g = 0.4 has no documented finding: exact predictions pass, 10% off fails
        let exact = x5_rows(&[point(0.0, 1.0), point(0.4, 1.0)]);
        assert_eq!(exact.len(), 5);
        assert!(
            exact.iter().all(|r| r.verdict == Verdict::Pass),
            "{exact:?}"
        );
        let off = x5_rows(&[point(0.0, 1.0), point(0.4, 1.1)]);
        assert!(
            off[..4].iter().all(|r| r.verdict == Verdict::Fail),
            "{off:?}"
        );
    }

    #[test]
    fn g_zero_run_converges_and_shuffling_nothing_keeps_the_fit() {
        // g = 0: W0 = 0, so permuting it changes nothing and the trained loss (< tol) remains
        let s = StaticSetting {
            n: 32,
            t_max: 10.0,
            ..x5_setting(0.0)
        };
        let r = run_static(&s, 3).unwrap();
        assert!(r.steps > 10 && r.steps < 1000, "{}", r.steps);
        assert!((r.loss0 - 0.125).abs() < 1e-12, "{}", r.loss0);
        assert!(r.loss_shuffled < s.tol, "{}", r.loss_shuffled);
        assert!(r.tau_conv > r.lr * (r.steps - 1) as f64 && r.tau_conv <= r.lr * r.steps as f64);
        assert_eq!(r.z.len(), r.steps + 1);
    }

    #[test]
    fn ratio_propagates_relative_errors() {
        let (r, e) = ratio((2.0, 0.06), (4.0, 0.16));
        assert_eq!(r, 0.5);
        assert!((e - 0.5 * (0.03f64.powi(2) + 0.04f64.powi(2)).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn mean_sem_of_known_sample() {
        let (m, e) = mean_sem(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        // sample variance 5/3, sem sqrt(5/12)
        assert!((e - (5.0f64 / 12.0).sqrt()).abs() < 1e-15);
    }
}
