//! Fast-tier checks of claims I-9 .. I-13 (see `proofs-checks/I-09-*.md` .. `I-13-*.md`).

use nalgebra::Matrix2;

use super::{Check, Row, Tier};
use crate::interference::kernels::bessel::bessel_i0;
use crate::interference::kernels::bulk::{bulk_kernel, finite_n_kernel, finite_n_theta_new};
use crate::interference::kernels::dressing::{
    self, beta, full_w_speedup, m_only_speedup, overlap_prediction,
};
use crate::interference::kernels::linear_theory as lt;
use crate::interference::kernels::random::{RandomNetwork, SampleMean};
use crate::interference::kernels::theta::{
    g_matrix_quadrature, psi_sq_erf, rotation_share, theta_new, theta_new_series, theta_rot,
    InputSchedule,
};
use crate::num::quad::GaussLegendre;
use crate::Result;

/// The kernel checks, one per claim I-9 .. I-13 (all fast tier, ~ a few seconds together).
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "I-9",
            tier: Tier::Fast,
            run: check_i9,
        },
        Check {
            id: "I-10",
            tier: Tier::Fast,
            run: check_i10,
        },
        Check {
            id: "I-11",
            tier: Tier::Fast,
            run: check_i11,
        },
        Check {
            id: "I-12",
            tier: Tier::Fast,
            run: check_i12,
        },
        Check {
            id: "I-13",
            tier: Tier::Fast,
            run: check_i13,
        },
    ]
}

/// Number of standard errors allowed between a seed average and its large-N limit.
/// With the seeds fixed the check is deterministic; 4 SEM is a > 99.99% band for a Gaussian
/// mean, so only a wrong prediction (or a bias well above the SEM) fails it.
const SEM_FACTOR: f64 = 4.0;

/// Compare a seed average with its large-N limit: tolerance SEM_FACTOR * SEM + bias, the bias
/// allowance being the O(1/N) finite-size correction (documented per claim).
fn seed_row(label: String, predicted: f64, sample: &SampleMean, bias: f64) -> Row {
    Row::abs(
        label,
        predicted,
        sample.mean,
        SEM_FACTOR * sample.sem + bias,
    )
    .note(format!(
        "mean of {} seeds, SEM {:.2e}, bias allowance {:.2e}",
        sample.count, sample.sem, bias
    ))
}

// ------------------------------------------------------------------------------------- I-9

const I9_N: usize = 400;
const I9_SEEDS: u64 = 6;
/// Patterns per network (16 disjoint pairs): averaging over patterns cuts the O(1/sqrt N)
/// pattern-to-pattern fluctuations; the SEM is taken over seeds of the per-network averages,
/// so correlations between patterns of one network are accounted for.
const I9_PATTERNS: usize = 32;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn check_i9() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let n = I9_N;
    let zero = Matrix2::zeros();
    let k = Matrix2::new(0.5, 0.2, 0.1, 0.3);
    // Structure for the dressed-readout rows (kept small: the finite-N bias of (I - M)^{-1}
    // grows with its amplification).
    let m_latent = Matrix2::new(0.3, 0.1, 0.05, 0.2);
    let z_pred = (Matrix2::identity() - m_latent)
        .try_inverse()
        .expect("I - M is invertible (det 0.555)");
    for &g in &[0.3, 0.5, 0.8] {
        let b = beta(g);
        let pred = overlap_prediction(g);
        // Per seed: averages over the 16 pattern pairs of one network.
        let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 12];
        for seed in 0..I9_SEEDS {
            let net = RandomNetwork::sample_with_patterns(I9_N, g, 900 + seed, I9_PATTERNS)?;
            let res = dressing::Resolvents::new(&net)?;
            let at0 = dressing::measure_pairs_with(&net, &res, &zero)?;
            let at_k = dressing::measure_pairs_with(&net, &res, &k)?;
            let z = dressing::measure_dressed_readouts_with(&net, &res, &(m_latent / (b * b)))?;
            let av = |v: Vec<f64>| mean(&v);
            let vals = [
                av(at0.iter().map(|p| p.0.a_r0_a).collect()),
                av(at0.iter().map(|p| p.0.r0a_sq).collect()),
                av(at0.iter().map(|p| p.0.triple).collect()),
                av(at0.iter().map(|p| p.0.a_r0_b).collect()),
                av(at0.iter().map(|p| p.0.r0a_r0b).collect()),
                av(at0.iter().map(|p| p.0.triple_ab).collect()),
                av(at_k.iter().map(|p| p.1.full_w / p.1.m_only).collect()),
                av(at0.iter().map(|p| p.1.full_w).collect()),
                av(at0.iter().map(|p| p.1.m_only).collect()),
                av(z.iter().map(|m| m[(0, 0)]).collect()),
                av(z.iter().map(|m| m[(1, 0)]).collect()),
                av(z.iter().map(|m| m[(1, 1)]).collect()),
            ];
            for (c, v) in cols.iter_mut().zip(vals) {
                c.push(v);
            }
        }
        // Bias allowances (see the claim file): overlaps beta^2 max(|limit|, 1)/N (non-planar
        // corrections); kernels and readouts, nonlinear in U~ = U^T R0 U/N whose entries
        // fluctuate with variance ~ (beta - 1)/N, add the second-order bias 8 (beta - 1)/N.
        let n_f = I9_N as f64;
        let overlap_bias = |limit: f64| b * b * f64::max(limit.abs(), 1.0) / n_f;
        let kernel_bias = |limit: f64| (8.0 * (b - 1.0) + b * b) * f64::max(limit.abs(), 1.0) / n_f;
        let table: [(&str, f64, bool); 12] = [
            ("a^T R0 a/N", pred.a_r0_a, false),
            ("|R0 a|^2/N", pred.r0a_sq, false),
            ("a^T R0^T R0 R0^T a/N", pred.triple, false),
            ("a^T R0 b/N", pred.cross, false),
            ("(R0 a).(R0 b)/N", pred.cross, false),
            ("a^T R0^T R0 R0^T b/N", pred.cross, false),
            (
                "full-W NTK / M-only NTK (K=[[.5,.2],[.1,.3]])",
                full_w_speedup(g),
                true,
            ),
            ("full-W NTK / g=0 NTK (K=0)", full_w_speedup(g), true),
            ("M-only NTK / g=0 NTK (K=0)", m_only_speedup(g), true),
            (
                "z_AA, W0 + dressed K=M/beta^2, vs (I-M)^-1",
                z_pred[(0, 0)],
                true,
            ),
            (
                "z_BA, W0 + dressed K=M/beta^2, vs (I-M)^-1",
                z_pred[(1, 0)],
                true,
            ),
            (
                "z_BB, W0 + dressed K=M/beta^2, vs (I-M)^-1",
                z_pred[(1, 1)],
                true,
            ),
        ];
        for (i, ((label, p, kernel), c)) in table.iter().zip(&cols).enumerate() {
            // At g = 0.8 the absolute NTK ratios and readouts (third/fourth order in R0) are
            // heavy-tailed for N <= 800 (smallest singular value of I - W0 ~ 0.1): only the
            // overlaps and the relative speed-up full-W / M-only are compared there.
            if g > 0.5 && i > 6 {
                continue;
            }
            let s = SampleMean::of(c);
            let bias = if *kernel {
                kernel_bias(*p)
            } else {
                overlap_bias(*p)
            };
            rows.push(seed_row(format!("{label} (g={g}, N={n})"), *p, &s, bias));
        }
    }
    Ok(rows)
}

// ------------------------------------------------------------------------------------ I-10

fn check_i10() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // Quoted values, two decimals: tolerance half a unit of the last digit.
    rows.push(Row::abs(
        "L/L0 after shuffle (g=0.5)",
        0.19,
        lt::shuffle_loss_ratio(0.5),
        0.005,
    ));
    rows.push(Row::abs(
        "L/L0 after shuffle (g=0.8)",
        0.76,
        lt::shuffle_loss_ratio(0.8),
        0.005,
    ));
    let zhat = 0.5;
    for &g in &[0.3, 0.5, 0.8] {
        // Initial learning speed dz/dtau at tau = 0 from the z(tau~) series (central
        // difference, h = 1e-5: error h^2 z'''/6 relative ~ 1e-9), normalised by its g = 0
        // value zhat; its inverse is the convergence-time ratio (1 - g^2)^2.
        let h = 1e-5;
        let z = |tau: f64| lt::readout(zhat, g, lt::dressed_time(g, tau));
        let speed = (z(h) - z(-h)) / (2.0 * h) / zhat;
        rows.push(Row::rel(
            format!("convergence time (1-g^2)^2 vs 1/(dz/dtau at 0) (g={g})"),
            lt::convergence_time_ratio(g),
            1.0 / speed,
            1e-8,
        ));
        // |dW| ratio: at the same readout z the leading s1 ~ (zhat/beta) tau~ while z ~ zhat
        // tau~, so s1/z -> 1/beta; evaluated at tau~ = 1e-7 (relative error tau~ ~ 1e-7).
        let tt = 1e-7;
        let (s1, _) = lt::singular_values(zhat, g, tt);
        rows.push(Row::rel(
            format!("|dW| ratio 1-g^2 vs s1/z (g={g})"),
            lt::dw_norm_ratio(g),
            s1 / lt::readout(zhat, g, tt),
            1e-6,
        ));
    }
    // The outlier formula in the limit g -> 0: then W = dW, whose outlier is eig dW itself.
    let e = lt::eig_dw(zhat, 0.0, 0.5);
    rows.push(
        Row::disputed(
            "outlier of W at g=0 (W = dW): formula g^2+g sqrt(e)+e/2 vs e",
            lt::outlier(0.0, e),
            e,
            0.01,
            e,
            1e-12,
        )
        .note("at g = 0 the quoted outlier formula gives eig dW / 2, the exact outlier of W = dW is eig dW; formula presumably meant for g of order 1"),
    );
    Ok(rows)
}

// ------------------------------------------------------------------------------------ I-11

const I11_N: usize = 300;
const I11_SEEDS: u64 = 4;
const I11_PATTERNS: usize = 16;

fn check_i11() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let h = 0.5;
    let points = [(2usize, 2usize), (4, 1), (4, 6), (8, 8)];
    for &g in &[0.5, 0.8] {
        let mut cols = vec![Vec::new(); points.len()];
        for seed in 0..I11_SEEDS {
            let net = RandomNetwork::sample_with_patterns(I11_N, g, 1100 + seed, I11_PATTERNS)?;
            let tables = finite_n_kernel(&net, h, 8)?;
            for (c, &(m1, m2)) in cols.iter_mut().zip(&points) {
                let (s1, s2) = (h * m1 as f64, h * m2 as f64);
                // Undo the trivial e^{-(s1+s2)} so the compared numbers are O(1).
                let v: Vec<f64> = tables.iter().map(|k| k[m1][m2] * (s1 + s2).exp()).collect();
                c.push(mean(&v));
            }
        }
        for (c, &(m1, m2)) in cols.iter().zip(&points) {
            let (s1, s2) = (h * m1 as f64, h * m2 as f64);
            let pred = bulk_kernel(g, s1, s2) * (s1 + s2).exp();
            let s = SampleMean::of(c);
            // O(1/N) bias allowance: I0(2 g sqrt(s1 s2)) * (1 + g^2 s1 s2) / N.
            let bias = pred * (1.0 + g * g * s1 * s2) / I11_N as f64;
            rows.push(seed_row(
                format!("e^(s1+s2) K(s1={s1}, s2={s2}) vs I0 (g={g}, N={I11_N})"),
                pred,
                &s,
                bias,
            ));
        }
    }
    // The Bessel function itself at a reference value (60-digit series): I0(5).
    rows.push(Row::rel("I0(5)", 27.239871823604442, bessel_i0(5.0), 1e-14));
    Ok(rows)
}

// ------------------------------------------------------------------------------------ I-12

/// The I-12 reference table: (T_d, u_s, [g = 0, 0.5, 0.8]), T_in = 2, u_p = 1.
const I12_TABLE: [(f64, f64, [f64; 3]); 4] = [
    (2.0, 0.0, [0.099, 0.237, 0.718]),
    (5.0, 0.0, [1.1e-3, 1.9e-2, 0.33]),
    (10.0, 0.0, [1.7e-7, 1.8e-4, 6.3e-2]),
    (10.0, 0.3, [0.092, 0.165, 0.794]),
];

/// Our finding for the one table entry that does not reproduce within 2%:
/// (T_d = 10, u_s = 0, g = 0): G_00 = 11 e^{-10} - 13 e^{-12} exactly, G_00^2 = 1.7600078e-7.
const I12_FINDING_TD10_G0: f64 = 1.760_007_8e-7;

const I12_N: usize = 300;
const I12_SEEDS: u64 = 4;
const I12_PATTERNS: usize = 16;

fn check_i12() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let gs = [0.0, 0.5, 0.8];
    for &(t_d, u_s, values) in &I12_TABLE {
        let s = InputSchedule {
            t_in: 2.0,
            u_p: 1.0,
            t_d,
            u_s,
        };
        for (&g, &table) in gs.iter().zip(&values) {
            let th = theta_new_series(g, &s)?;
            let label = format!("Theta_new (T_d={t_d}, u_s={u_s}, g={g})");
            let row = if t_d == 10.0 && u_s == 0.0 && g == 0.0 {
                Row::disputed(label, table, th.value, 0.02, I12_FINDING_TD10_G0, 1e-5)
            } else {
                Row::rel(label, table, th.value, 0.02)
            };
            rows.push(row.note(format!(
                "{} terms, tail bound {:.1e}",
                th.terms, th.tail_bound
            )));
        }
    }
    // Closed form vs nested quadrature of the definition (j, k < 30; omitted terms < 1e-20;
    // 24-point Gauss–Legendre panels of length <= 1/2: quadrature error ~ rounding).
    for &(g, t_d, u_s) in &[(0.5, 2.0, 0.0), (0.8, 5.0, 0.3)] {
        let s = InputSchedule {
            t_in: 2.0,
            u_p: 1.0,
            t_d,
            u_s,
        };
        let gm = g_matrix_quadrature(g, &s, 30);
        let quad: f64 = gm.iter().flatten().map(|v| v * v).sum();
        rows.push(Row::rel(
            format!("Theta_new closed form vs quadrature of G_jk (g={g}, T_d={t_d}, u_s={u_s})"),
            theta_new(g, &s),
            quad,
            1e-11,
        ));
    }
    // Asymptotic decay Theta_new ~ e^{-2(1-g) T_d}: fitted rate between T_d = 30 and 60.
    // The prefactor grows like T_d^{1/2} (sum_n (n+1) g^{2n} p_{n+1}(T_d)^2 ~ e^{-2(1-g)T_d}
    // (g T_d)^{1/2}), which lowers the two-point rate by ln(2)/(2*30) = 0.0116; the next order
    // is O(1/(g T_d^2)) < 1e-3.
    let (t1, t2) = (30.0, 60.0);
    for &g in &[0.5, 0.8] {
        let th = |t_d: f64| theta_new(g, &InputSchedule::memory(2.0, 1.0, t_d));
        let rate = -(th(t2).ln() - th(t1).ln()) / (t2 - t1);
        let prefactor = (t2 / t1).ln() / (2.0 * (t2 - t1));
        rows.push(Row::abs(
            format!("decay rate of Theta_new vs 2(1-g) (g={g}, T_d 30..60)"),
            2.0 * (1.0 - g),
            rate,
            prefactor + 1e-3,
        ));
        rows.push(Row::abs(
            format!("decay rate vs 2(1-g) - ln(2)/60 with T_d^1/2 prefactor (g={g})"),
            2.0 * (1.0 - g) - prefactor,
            rate,
            1e-3,
        ));
    }
    // Finite-N NTK of z = b^T x(T)/N w.r.t. all of W on random W0 (Simpson h = 0.05).
    let s = InputSchedule::memory(2.0, 1.0, 2.0);
    for &g in &[0.5, 0.8] {
        let mut vals = Vec::new();
        for seed in 0..I12_SEEDS {
            let net = RandomNetwork::sample_with_patterns(I12_N, g, 1200 + seed, I12_PATTERNS)?;
            vals.push(mean(&finite_n_theta_new(&net, &s, 0.05)?));
        }
        let pred = theta_new(g, &s);
        let sm = SampleMean::of(&vals);
        // O(1/N) bias allowance 2 beta^2 Theta / N: the measured relative bias N * (mean/pred
        // - 1) is ~3-4 at g = 0.5 and ~6-8 at g = 0.8 for N = 100..400 (claim file).
        let bias = 2.0 * beta(g).powi(2) * pred / I12_N as f64;
        rows.push(seed_row(
            format!("finite-N Theta_new (g={g}, T_d=2, N={I12_N})"),
            pred,
            &sm,
            bias,
        ));
    }
    Ok(rows)
}

// ------------------------------------------------------------------------------------ I-13

fn check_i13() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // Attractor activity of the A fixed point of I-1 (erf, zhat = 0.5):
    // lambda_A = (1 - pi zhat^2/2)^{-1/2}, |kappa_A|^2 = (2/pi)(lambda_A^2 - 1).
    let zhat: f64 = 0.5;
    let lambda = (1.0 - std::f64::consts::PI * zhat * zhat / 2.0).powf(-0.5);
    let kappa = ((2.0 / std::f64::consts::PI) * (lambda * lambda - 1.0)).sqrt();
    let psi = psi_sq_erf(kappa);
    // psi^2 closed form vs quadrature of E[erf(sqrt(pi) kappa z / 2)^2], z ~ N(0,1)
    // (Gauss–Legendre on [-12, 12]; the Gaussian tail beyond is < 1e-32).
    let gl = GaussLegendre::new(40);
    let quad = gl.integrate_composite(
        |z| {
            let e = erf(std::f64::consts::PI.sqrt() * kappa * z / 2.0);
            e * e * (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt()
        },
        -12.0,
        12.0,
        12,
    );
    rows.push(Row::rel(
        "psi_A^2 closed form vs quadrature (erf, zhat=0.5)",
        psi,
        quad,
        1e-9,
    ));
    // f_rot at g = 0 rises with the delay and tends to 1 (Theta_new ~ T_d^2 e^{-2 T_d}).
    let f = |g: f64, t_d: f64| {
        let s = InputSchedule::memory(2.0, 1.0, t_d);
        rotation_share(theta_rot(psi, g), theta_new(g, &s))
    };
    let delays = [2.0, 5.0, 10.0, 20.0];
    let fs: Vec<f64> = delays.iter().map(|&t| f(0.0, t)).collect();
    rows.push(Row::holds(
        "f_rot increases with T_d at g=0",
        fs.windows(2).all(|w| w[1] > w[0]),
        format!("f_rot(T_d = 2, 5, 10, 20) = {fs:.6?}"),
    ));
    // At T_d = 20, Theta_new(g=0) = G_00^2 ~ 21^2 e^{-40}(1 - ..)^2 < 2e-15: 1 - f_rot below
    // 1e-12 for psi_A^2 ~ 0.3.
    rows.push(Row::abs(
        "f_rot -> 1 as T_d grows (g=0, T_d=20)",
        1.0,
        f(0.0, 20.0),
        1e-12,
    ));
    // At fixed delay, g raises Theta_new exponentially (e^{2 g T_d}) but Theta_rot only by
    // beta: the rotation share falls with g.
    let fg: Vec<f64> = [0.0, 0.5, 0.8].iter().map(|&g| f(g, 10.0)).collect();
    rows.push(Row::holds(
        "f_rot decreases with g at T_d=10",
        fg.windows(2).all(|w| w[1] < w[0]),
        format!("f_rot(g = 0, 0.5, 0.8) = {fg:.6?}"),
    ));
    // The estimate against its measurement on trained networks (I-15, fast tier: N = 64,
    // 16 seeds per point; the same measurement as the I-15 check, computed once).
    for (s, pts) in super::rotation_kernel::fast_measurement()? {
        rows.push(super::rotation_kernel::estimate_row(s, pts)?);
    }
    Ok(rows)
}

/// erf by its Maclaurin series (|x| <= 3) or the continued fraction of erfc (|x| > 3),
/// relative accuracy ~1e-15; used only by the I-13 quadrature cross-check.
fn erf(x: f64) -> f64 {
    let ax = x.abs();
    let v = if ax <= 3.0 {
        // erf x = 2/sqrt(pi) sum_n (-1)^n x^{2n+1} / (n! (2n+1)).
        let mut term = ax;
        let mut sum = ax;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -ax * ax / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // erfc x = e^{-x^2}/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), Lentz-free
        // backward evaluation with 60 levels (converged far below rounding for x > 3).
        let mut f = ax;
        for k in (1..=60).rev() {
            f = ax + (k as f64 / 2.0) / f;
        }
        1.0 - (-ax * ax).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    v.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Verdict;

    #[test]
    fn erf_reference_values() {
        // erf(0.5), erf(1), erf(2), erf(3.5) from tables.
        for &(x, v) in &[
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.5, 0.999_999_256_901_627_7),
        ] {
            assert!((erf(x) - v).abs() < 2e-15, "erf({x})");
            assert!((erf(-x) + v).abs() < 2e-15);
        }
    }

    #[test]
    fn all_checks_pass_or_are_disputed() {
        for c in checks() {
            let t0 = std::time::Instant::now();
            let rows = (c.run)().unwrap();
            eprintln!("{} took {:?}", c.id, t0.elapsed());
            for r in &rows {
                eprintln!(
                    "{:5} {:70} pred {:.6e} meas {:.6e} err {:.2e} tol {:.2e} {:?} {}",
                    c.id, r.label, r.predicted, r.measured, r.error, r.tolerance, r.verdict, r.note
                );
            }
            assert!(
                rows.iter().all(|r| r.verdict != Verdict::Fail),
                "{} failed",
                c.id
            );
        }
    }
}
