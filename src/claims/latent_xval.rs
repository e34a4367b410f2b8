//! Checks of X-6 (fast) and X-7 (full): the M-only g = 0 network against the latent 2x2
//! learning flow given its eps (`crate::rnn::latent_xval` runs both; here the rows).

use super::{Check, Row, Tier};
use crate::num::stats::{bootstrap, Band, Bootstrap, Statistic, MIN_SEEDS};
use crate::rnn::latent_xval::{cross_validate, XvalRow, XvalSpec, AMPLITUDES, QUANTITIES, SAMPLED};
use crate::Result;

/// Seeds per N of X-6 and X-7 (THEORY I.7: >= 16 for any network-level number).
pub const XVAL_SEEDS: u64 = MIN_SEEDS;
/// The N values of the X-7 sweep.
pub const X7_N: [usize; 4] = [128, 256, 512, 1024];
/// Band of I_network / I_latent that would count as agreement: [0.5, 1.5] (relative 0.5 around
/// 1; a factor of 1.5 is what the sampled quantities' O(N^-1/2) disagreement allows at N >= 128).
const I_RATIO_TOL: f64 = 0.5;
/// Resampling seed of the bootstrap intervals of.
const BOOT_SEED: u64 = 6;

/// I_network / I_latent of each row at N = n (all N if `n` is None), in row (seed) order.
fn interference_ratios(rows: &[XvalRow], n: Option<usize>) -> Vec<f64> {
    rows.iter()
        .filter(|r| n.is_none_or(|n| r.n == n))
        .map(|r| r.network.interference / r.latent.interference)
        .collect()
}

/// Median and geometric-mean rows of I_network / I_latent (heavy-tailed: no mean).
fn interference_rows(rows: &[XvalRow], n: Option<usize>, what: &str) -> Result<Vec<Row>> {
    let ratios = interference_ratios(rows, n);
    let boot = Bootstrap::new(BOOT_SEED);
    let band = Band::rel(1.0, I_RATIO_TOL);
    let mut out = Vec::new();
    for stat in [Statistic::Median, Statistic::Geomean] {
        let est = bootstrap(&ratios, stat, &boot)?;
        out.push(Row::interval(
            format!("I_network / I_latent, {what}: {}", stat.name()),
            &band,
            &est,
        ));
    }
    let min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let max = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some(last) = out.last_mut() {
        last.note = format!("{}; seeds range {min:.3e} .. {max:.3e}", last.note);
    }
    Ok(out)
}

/// Row of one sampled quantity: mean over seeds of the relative disagreement |net - lat| / |lat|
/// at N = n with its bootstrap interval, against the band [0, 3 C_q N^(-1/2)].
fn sampled_row(rows: &[XvalRow], k: usize, n: usize) -> Result<Row> {
    let q = SAMPLED[k];
    let errs: Vec<f64> = rows
        .iter()
        .filter(|r| r.n == n)
        .map(|r| r.rel_error[q])
        .collect();
    let est = bootstrap(&errs, Statistic::Mean, &Bootstrap::new(BOOT_SEED))?;
    let tol = 3.0 * AMPLITUDES[k] / (n as f64).sqrt();
    Ok(Row::interval(
        format!("{}: mean rel. disagreement, N = {n}", QUANTITIES[q]),
        &Band::abs(0.0, tol),
        &est,
    )
    .context(format!("band 3 C N^(-1/2), C = {}", AMPLITUDES[k])))
}

/// X-6 (fast): N = 256, seeds 1..=16. Each sampled quantity's mean relative disagreement (95%
/// bootstrap interval) against 3 C_q / sqrt(256) (C_q from the X-7 sweep); the latent seed must
/// equal the measured eps; I_network / I_latent by median and geometric mean against [0.5, 1.5]
/// (disputed where the interval excludes it).
pub fn x6_check() -> Result<Vec<Row>> {
    let spec = XvalSpec::standard();
    let res = cross_validate(&spec, &[256], |_| XVAL_SEEDS)?;
    let mut rows = Vec::new();
    for k in 0..SAMPLED.len() {
        rows.push(sampled_row(&res.rows, k, 256)?);
    }
    let worst_eps = res
        .rows
        .iter()
        .map(|r| (r.latent.eps - r.network.eps).abs() / r.network.eps.abs())
        .fold(0.0, f64::max);
    rows.push(Row::abs(
        "latent seed kappa_a(T) = measured eps (max rel. error)",
        0.0,
        worst_eps,
        1e-8,
    ));
    rows.extend(interference_rows(&res.rows, Some(256), "N = 256")?);
    Ok(rows)
}

/// X-7 (full): N = 128, 256, 512, 1024, 16 seeds each. For each sampled quantity the RMS
/// disagreement at N = 1024 is below that at N = 128 and the fitted exponent is 1/2 within
/// 2 jackknife standard errors; I_network / I_latent per N and pooled over N, by median and
/// geometric mean with intervals.
pub fn x7_check() -> Result<Vec<Row>> {
    let spec = XvalSpec::standard();
    let res = cross_validate(&spec, &X7_N, |_| XVAL_SEEDS)?;
    let mut rows = Vec::new();
    for &q in &SAMPLED {
        let f = &res.fits[q];
        let (first, last) = (f.rms[0], f.rms[f.rms.len() - 1]);
        rows.push(Row::holds(
            format!("{}: RMS disagreement shrinks, N = 128 -> 1024", f.quantity),
            last < first,
            format!("{first:.4} -> {last:.4}"),
        ));
        rows.push(
            Row::abs(
                format!("{}: exponent p of rms ~ C N^(-p)", f.quantity),
                0.5,
                f.p,
                2.0 * f.p_se,
            )
            .note(format!(
                "jackknife SE {:.3}, C = {:.3}, {XVAL_SEEDS} seeds per N",
                f.p_se, f.c
            )),
        );
    }
    for &n in &X7_N {
        rows.extend(interference_rows(&res.rows, Some(n), &format!("N = {n}"))?);
    }
    rows.extend(interference_rows(&res.rows, None, "pooled N = 128..1024")?);
    Ok(rows)
}

/// The registered checks: X-6 (fast) and X-7 (full).
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            id: "X-6",
            tier: Tier::Fast,
            run: x6_check,
        },
        Check {
            id: "X-7",
            tier: Tier::Full,
            run: x7_check,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Verdict;

    /// give no failing row (X-7 is the long sweep, ~30-60 s: `--ignored`).
    #[test]
    fn x6_has_no_failing_row() {
        let rows = x6_check().unwrap();
        assert!(rows.iter().all(|r| r.verdict != Verdict::Fail), "{rows:#?}");
    }

    /// Claim files and checks pair up: same id, same tier, and they run through the claims
    /// runner with the documented verdict (X-6 holds with 16 seeds: the I_network / I_latent
    /// interval at N = 256 meets the band; X-7 stays disputed).
    #[test]
    fn claim_files_pair_with_the_checks() {
        use crate::claims::runner::{parse_claim_file, run, Selection};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proofs-checks");
        let files: Vec<_> = ["X-06-latent-flow-network.md", "X-07-latent-flow-scaling.md"]
            .iter()
            .map(|f| parse_claim_file(&dir.join(f)).unwrap())
            .collect();
        for (f, c) in files.iter().zip(checks()) {
            assert_eq!(f.id, c.id);
            assert_eq!(f.tier, c.tier);
        }
        let sel = Selection {
            pattern: "X-6".into(),
            full: false,
        };
        let res = run(&files, &checks(), &sel);
        let x6: Vec<_> = res.iter().filter(|r| r.id == "X-6").collect();
        assert_eq!(x6.len(), 1, "{res:#?}");
        assert!(x6[0].problems.is_empty(), "{:?}", x6[0].problems);
        assert_eq!(x6[0].verdict, Verdict::Pass, "{:#?}", x6[0].rows);
        assert!(x6[0].rows.iter().all(|r| r.n.is_none() || r.n == Some(16)));
    }

    #[test]
    #[ignore]
    fn x7_has_no_failing_row() {
        use crate::report::Report;
        let res = cross_validate(&XvalSpec::standard(), &X7_N, |_| XVAL_SEEDS).unwrap();
        println!("{}", res.text());
        for n in X7_N {
            println!(
                "I ratios N={n}: {:?}",
                interference_ratios(&res.rows, Some(n))
            );
        }
        let rows = x7_check().unwrap();
        assert!(rows.iter().all(|r| r.verdict != Verdict::Fail), "{rows:#?}");
    }
}
