//! Statistics over independent runs (seeds are samples, docs/theory.md I.7).
//!
//! * [`bootstrap`]: seeded bootstrap percentile 95% intervals for the mean, the median and the
//!   geometric mean of a sample (>= [`MIN_RESAMPLES`] resamples, default [`DEFAULT_RESAMPLES`]).
//!   Resampling draws indices with a `rand::rngs::StdRng` seeded from the given seed, so an
//!   interval is a deterministic function of (sample, statistic, resamples, seed); it does not
//!   depend on the number of threads that produced the sample as long as the sample is collected
//!   in seed order.
//! * [`Summary`]: n, mean, median, geometric mean (each with its interval), min and max; it
//!   serialises with serde.
//! * [`share`]: the share of a boolean outcome with its Wilson score 95% interval (closed form;
//!   unlike the bootstrap it does not collapse to [0, 0] or [1, 1] when every seed agrees).
//! * [`classify`] / [`Band`] / [`Agreement`]: an interval against a prediction band, the rule by
//!   which network-level claims are judged (the `Row` built from it lives in the claims layer, above).
//!
//! The geometric mean is defined for strictly positive values only: a zero or a negative value is
//! an error ([`Error::Requirement`]) naming its index, never a silent NaN or a dropped sample.
//! Non-finite values and empty samples are errors too.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::{Error, Result};

/// Confidence level of every interval in this module.
pub const LEVEL: f64 = 0.95;
/// Default number of bootstrap resamples.
pub const DEFAULT_RESAMPLES: usize = 4000;
/// Fewest resamples accepted: below ~2000 the 2.5% / 97.5% percentiles of the bootstrap
/// distribution rest on fewer than 50 draws each and move visibly with the seed.
pub const MIN_RESAMPLES: usize = 2000;
/// Fewest independent runs (seeds) behind any network-level number (docs/theory.md I.7).
pub const MIN_SEEDS: u64 = 16;
/// The standard normal quantile at 97.5% (two-sided 95%), for the Wilson interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Which statistic an [`Estimate`] is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    Mean,
    Median,
    /// exp(mean(ln x)) of strictly positive values.
    Geomean,
    /// Share of `true` outcomes (Wilson interval).
    Share,
}

impl Statistic {
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Mean => "mean",
            Statistic::Median => "median",
            Statistic::Geomean => "geomean",
            Statistic::Share => "share",
        }
    }
}

/// A point estimate with its 95% interval `[lo, hi]` over `n` samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub statistic: Statistic,
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl Estimate {
    /// `value [lo, hi] (n = ..)`, for notes and claim files.
    pub fn describe(&self) -> String {
        format!(
            "{} {:.4e} [{:.4e}, {:.4e}] (n = {})",
            self.statistic.name(),
            self.value,
            self.lo,
            self.hi,
            self.n
        )
    }
}

/// Bootstrap settings: number of resamples and the seed of the resampling stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bootstrap {
    pub resamples: usize,
    pub seed: u64,
}

impl Bootstrap {
    /// [`DEFAULT_RESAMPLES`] resamples drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Bootstrap {
            resamples: DEFAULT_RESAMPLES,
            seed,
        }
    }

    fn check(&self) -> Result<()> {
        if self.resamples < MIN_RESAMPLES {
            return Err(Error::Parameter {
                file: "num::stats".into(),
                field: "resamples".into(),
                value: self.resamples.to_string(),
                allowed: format!(">= {MIN_RESAMPLES}"),
                reason: "too few bootstrap resamples for stable 2.5% / 97.5% percentiles".into(),
            });
        }
        Ok(())
    }
}

fn check_sample(sample: &[f64], what: &str) -> Result<()> {
    if sample.is_empty() {
        return Err(Error::Numerical(format!(
            "{what}: the sample is empty (at least one value needed)"
        )));
    }
    if let Some((i, v)) = sample.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::Numerical(format!(
            "{what}: sample value {i} is {v} (finite values needed)"
        )));
    }
    Ok(())
}

/// ln of every value; an error naming the first non-positive one.
fn logs(sample: &[f64]) -> Result<Vec<f64>> {
    check_sample(sample, "geometric mean")?;
    if let Some((i, v)) = sample.iter().enumerate().find(|(_, v)| **v <= 0.0) {
        return Err(Error::Numerical(format!(
            "geometric mean: sample value {i} is {v:e}; the geometric mean is defined for \
             strictly positive values only"
        )));
    }
    Ok(sample.iter().map(|v| v.ln()).collect())
}

fn mean_of(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Median of `x`, reordering it (average of the two middle values for even n).
fn median_in_place(x: &mut [f64]) -> f64 {
    let n = x.len();
    let mid = n / 2;
    let (_, m, _) = x.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *m;
    if n % 2 == 1 {
        upper
    } else {
        let lower = x[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    }
}

/// The q-quantile (0 <= q <= 1) of sorted values, linear interpolation between order statistics.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    if i + 1 < sorted.len() {
        sorted[i] + frac * (sorted[i + 1] - sorted[i])
    } else {
        sorted[i]
    }
}

/// Median of a sample (error on an empty or non-finite sample).
pub fn median(sample: &[f64]) -> Result<f64> {
    check_sample(sample, "median")?;
    let mut x = sample.to_vec();
    Ok(median_in_place(&mut x))
}

/// Geometric mean of strictly positive values (error on zero, negative or non-finite values).
pub fn geomean(sample: &[f64]) -> Result<f64> {
    Ok(mean_of(&logs(sample)?).exp())
}

/// Point estimate and bootstrap percentile 95% interval of `stat` over `sample`.
///
/// Each of `boot.resamples` resamples draws n indices uniformly with replacement from a
/// `StdRng` seeded with `boot.seed`; the interval is the 2.5% and 97.5% quantiles of the
/// resampled statistic. The geometric mean is bootstrapped as the mean of ln x (then
/// exponentiated), so its interval is the exponentiated interval of the log-mean. n = 1 or a
/// sample of equal values gives the degenerate interval [x, x]. `Statistic::Share` is not a
/// bootstrap statistic (use [`share`]).
pub fn bootstrap(sample: &[f64], stat: Statistic, boot: &Bootstrap) -> Result<Estimate> {
    boot.check()?;
    check_sample(sample, stat.name())?;
    let (data, back): (Vec<f64>, fn(f64) -> f64) = match stat {
        Statistic::Mean | Statistic::Median => (sample.to_vec(), |v| v),
        Statistic::Geomean => (logs(sample)?, f64::exp),
        Statistic::Share => {
            return Err(Error::Requirement(
                "the share of an outcome has a Wilson interval: use num::stats::share".into(),
            ))
        }
    };
    let n = data.len();
    let point = |x: &mut [f64]| match stat {
        Statistic::Median => median_in_place(x),
        _ => mean_of(x),
    };
    let value = back(point(&mut data.clone()));
    let mut rng = StdRng::seed_from_u64(boot.seed);
    let mut scratch = vec![0.0; n];
    let mut draws = Vec::with_capacity(boot.resamples);
    for _ in 0..boot.resamples {
        for s in scratch.iter_mut() {
            *s = data[rng.random_range(0..n)];
        }
        draws.push(point(&mut scratch));
    }
    draws.sort_unstable_by(f64::total_cmp);
    let alpha = 1.0 - LEVEL;
    let lo = back(quantile_sorted(&draws, alpha / 2.0));
    let hi = back(quantile_sorted(&draws, 1.0 - alpha / 2.0));
    Ok(Estimate {
        statistic: stat,
        value,
        // The point estimate of a skewed statistic can sit outside a percentile interval of a
        // tiny sample only by rounding; clamp so that lo <= value <= hi always holds.
        lo: lo.min(value),
        hi: hi.max(value),
        n,
    })
}

/// `f` over `items` in parallel (rayon), results in the order of `items`. Every item runs to
/// completion and the first error *in item order* is returned, so the outcome (values and
/// error alike) does not depend on the number of threads or on scheduling.
pub fn par_map<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<U> + Sync + Send,
) -> Result<Vec<U>> {
    use rayon::prelude::*;
    let out: Vec<Result<U>> = items.par_iter().map(f).collect();
    out.into_iter().collect()
}

/// Share of `true` among `outcomes` with its Wilson score 95% interval.
///
/// Wilson rather than the bootstrap: with 16 seeds that all agree the bootstrap interval is
/// [1, 1] and claims certainty; Wilson gives [0.81, 1].
pub fn share(outcomes: &[bool]) -> Result<Estimate> {
    let k = outcomes.iter().filter(|b| **b).count();
    share_of(k, outcomes.len())
}

/// Share k / n with its Wilson score 95% interval (error for n = 0 or k > n).
pub fn share_of(k: usize, n: usize) -> Result<Estimate> {
    if n == 0 || k > n {
        return Err(Error::Requirement(format!(
            "share: {k} successes of {n} trials (need n >= 1 and k <= n)"
        )));
    }
    let nf = n as f64;
    let p = k as f64 / nf;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = Z95 * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Ok(Estimate {
        statistic: Statistic::Share,
        value: p,
        lo: (centre - half).clamp(0.0, p),
        hi: (centre + half).clamp(p, 1.0),
        n,
    })
}

/// What a sample of seeds says: n, mean, median and geometric mean with 95% intervals, min, max.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean: Estimate,
    pub median: Estimate,
    /// `None` when a value is zero or negative (the geometric mean is then undefined).
    pub geomean: Option<Estimate>,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// Summarise `sample`; every interval uses the same resampling seed (common random numbers).
    /// Errors on an empty or non-finite sample; a sample with values <= 0 has no geometric mean.
    pub fn of(sample: &[f64], boot: &Bootstrap) -> Result<Self> {
        let mean = bootstrap(sample, Statistic::Mean, boot)?;
        let median = bootstrap(sample, Statistic::Median, boot)?;
        let geomean = if sample.iter().all(|v| *v > 0.0) {
            Some(bootstrap(sample, Statistic::Geomean, boot)?)
        } else {
            None
        };
        Ok(Summary {
            n: sample.len(),
            mean,
            median,
            geomean,
            min: sample.iter().copied().fold(f64::INFINITY, f64::min),
            max: sample.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// One line: mean, median, geomean with intervals, min, max.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "n = {}: {}; {}",
            self.n,
            self.mean.describe(),
            self.median.describe()
        );
        if let Some(g) = &self.geomean {
            s.push_str(&format!("; {}", g.describe()));
        }
        s.push_str(&format!("; min {:.4e}, max {:.4e}", self.min, self.max));
        s
    }
}

/// The tolerance band around a prediction: a measured statistic agrees with the prediction when
/// it lies in `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Band {
    pub predicted: f64,
    pub lo: f64,
    pub hi: f64,
    /// The tolerance that made the band (half-width, absolute or relative).
    pub tol: f64,
    pub relative: bool,
}

impl Band {
    /// `[p - tol, p + tol]`.
    pub fn abs(predicted: f64, tol: f64) -> Self {
        Band {
            predicted,
            lo: predicted - tol,
            hi: predicted + tol,
            tol,
            relative: false,
        }
    }

    /// `[p - tol |p|, p + tol |p|]`.
    pub fn rel(predicted: f64, tol: f64) -> Self {
        let h = tol * predicted.abs();
        Band {
            predicted,
            lo: predicted - h,
            hi: predicted + h,
            tol,
            relative: true,
        }
    }

    /// A ratio band `[p / f, p f]` (f > 1) for heavy-tailed positive quantities, where a
    /// symmetric band makes no sense; `tol` is recorded as f - 1 (relative).
    pub fn factor(predicted: f64, f: f64) -> Self {
        Band {
            predicted,
            lo: predicted / f,
            hi: predicted * f,
            tol: f - 1.0,
            relative: true,
        }
    }

    /// Distance of `x` from the prediction in the band's own measure.
    pub fn error(&self, x: f64) -> f64 {
        let d = (x - self.predicted).abs();
        if self.relative {
            d / self.predicted.abs().max(f64::MIN_POSITIVE)
        } else {
            d
        }
    }

    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// How a 95% interval stands to a prediction band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Agreement {
    /// The point estimate lies in the band (hence the interval meets it).
    Holds,
    /// The interval lies entirely outside the band: the data exclude the prediction.
    Excludes,
    /// The interval meets the band but the point estimate lies outside it: the data neither
    /// confirm nor exclude the prediction (more seeds would decide).
    Undetermined,
}

/// Classify an estimate against a band: `Excludes` only when the whole 95% interval misses the
/// band, `Holds` when the point estimate is inside it, `Undetermined` otherwise. A non-finite
/// estimate or band is `Undetermined` (never a silent pass).
pub fn classify(est: &Estimate, band: &Band) -> Agreement {
    let finite = [est.value, est.lo, est.hi, band.lo, band.hi]
        .iter()
        .all(|v| v.is_finite());
    if !finite {
        Agreement::Undetermined
    } else if est.hi < band.lo || est.lo > band.hi {
        Agreement::Excludes
    } else if band.contains(est.value) {
        Agreement::Holds
    } else {
        Agreement::Undetermined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, LogNormal, Normal};

    fn normal_sample(rng: &mut StdRng, n: usize, mu: f64, sigma: f64) -> Vec<f64> {
        let d = Normal::new(mu, sigma).unwrap();
        (0..n).map(|_| d.sample(rng)).collect()
    }

    /// 500 repetitions of 30 N(1, 2^2) samples: the 95% percentile interval of the mean covers
    /// the true mean at a rate within [0.90, 0.98]. The percentile interval of a mean of 30 is
    /// slightly narrow (it ignores the t correction: nominal ~93.5%), and the binomial standard
    /// error of a rate over 500 repetitions is ~1%, so [0.90, 0.98] is about 3 sigma either
    /// side. 2000 resamples keep the test fast; the rate does not depend on the seed choice here.
    #[test]
    fn mean_interval_coverage_on_normal_samples() {
        let mut rng = StdRng::seed_from_u64(11);
        let boot = |s| Bootstrap {
            resamples: MIN_RESAMPLES,
            seed: s,
        };
        let mut covered = 0;
        for rep in 0..500 {
            let x = normal_sample(&mut rng, 30, 1.0, 2.0);
            let e = bootstrap(&x, Statistic::Mean, &boot(rep)).unwrap();
            assert!(e.lo <= e.value && e.value <= e.hi);
            if e.lo <= 1.0 && 1.0 <= e.hi {
                covered += 1;
            }
        }
        let rate = covered as f64 / 500.0;
        assert!((0.90..=0.98).contains(&rate), "coverage {rate}");
    }

    /// Median of a log-normal (true median e^mu) and geometric mean (true e^mu too): both
    /// intervals cover at a rate in [0.88, 0.99] over 300 repetitions of 31 samples (the
    /// bootstrap of a median is discrete and a little conservative or liberal; binomial error
    /// ~1.3%).
    #[test]
    fn median_and_geomean_coverage_on_lognormal_samples() {
        let mut rng = StdRng::seed_from_u64(12);
        let d = LogNormal::new(0.5, 1.5).unwrap();
        let truth = 0.5f64.exp();
        let (mut cm, mut cg) = (0, 0);
        for rep in 0..300 {
            let x: Vec<f64> = (0..31).map(|_| d.sample(&mut rng)).collect();
            let b = Bootstrap {
                resamples: MIN_RESAMPLES,
                seed: 1000 + rep,
            };
            let m = bootstrap(&x, Statistic::Median, &b).unwrap();
            let g = bootstrap(&x, Statistic::Geomean, &b).unwrap();
            cm += (m.lo <= truth && truth <= m.hi) as usize;
            cg += (g.lo <= truth && truth <= g.hi) as usize;
        }
        let (rm, rg) = (cm as f64 / 300.0, cg as f64 / 300.0);
        assert!((0.88..=0.99).contains(&rm), "median coverage {rm}");
        assert!((0.88..=0.99).contains(&rg), "geomean coverage {rg}");
    }

    #[test]
    fn deterministic_given_seed_and_moves_with_it() {
        let mut rng = StdRng::seed_from_u64(3);
        let x = normal_sample(&mut rng, 16, 0.0, 1.0);
        let a = Summary::of(&x, &Bootstrap::new(7)).unwrap();
        let b = Summary::of(&x, &Bootstrap::new(7)).unwrap();
        assert_eq!(a.mean, b.mean);
        assert_eq!(a.median, b.median);
        let c = bootstrap(&x, Statistic::Mean, &Bootstrap::new(8)).unwrap();
        assert_eq!(c.value, a.mean.value);
        assert_ne!((c.lo, c.hi), (a.mean.lo, a.mean.hi));
        // Another seed moves the percentile ends by a few per cent of the width at most
        // (4000 resamples: Monte Carlo error of a 2.5% quantile ~ 0.03 standard errors).
        let w = a.mean.hi - a.mean.lo;
        assert!((c.lo - a.mean.lo).abs() < 0.1 * w && (c.hi - a.mean.hi).abs() < 0.1 * w);
    }

    #[test]
    fn point_estimates_are_exact() {
        let x = [4.0, 1.0, 2.0, 8.0];
        let s = Summary::of(&x, &Bootstrap::new(1)).unwrap();
        assert_eq!(s.mean.value, 3.75);
        assert_eq!(s.median.value, 3.0);
        assert!((s.geomean.unwrap().value - 64f64.powf(0.25)).abs() < 1e-14);
        assert_eq!((s.min, s.max, s.n), (1.0, 8.0, 4));
        assert_eq!(median(&[3.0, 1.0, 2.0]).unwrap(), 2.0);
    }

    #[test]
    fn single_value_and_equal_values_give_degenerate_intervals() {
        for x in [vec![2.5], vec![2.5; 16]] {
            let s = Summary::of(&x, &Bootstrap::new(0)).unwrap();
            // Rounding level: 16 summed logs and exp leave a few ulp (2.5 * 16 eps ~ 9e-15).
            for e in [s.mean, s.median, s.geomean.unwrap()] {
                assert!((e.value - 2.5).abs() < 1e-14, "{e:?}");
                assert!(e.lo == e.value && e.hi == e.value, "{e:?}");
            }
        }
    }

    #[test]
    fn bad_samples_are_errors() {
        let b = Bootstrap::new(0);
        assert!(bootstrap(&[], Statistic::Mean, &b).is_err());
        assert!(bootstrap(&[1.0, f64::NAN], Statistic::Median, &b).is_err());
        let e = bootstrap(&[1.0, 0.0, 2.0], Statistic::Geomean, &b).unwrap_err();
        assert!(e.to_string().contains("value 1"), "{e}");
        assert!(geomean(&[1.0, -2.0]).is_err());
        let few = Bootstrap {
            resamples: 100,
            seed: 0,
        };
        let e = bootstrap(&[1.0], Statistic::Mean, &few).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        // A sample with a zero still has a mean and a median, but no geometric mean.
        let s = Summary::of(&[0.0, 1.0, 2.0], &b).unwrap();
        assert!(s.geomean.is_none());
        assert!(bootstrap(&[1.0], Statistic::Share, &b).is_err());
    }

    /// Wilson reference values (closed form, Wilson 1927; e.g. 16/16 -> [0.8064, 1]).
    #[test]
    fn wilson_share() {
        let e = share_of(16, 16).unwrap();
        assert_eq!(e.value, 1.0);
        assert!((e.lo - 0.806_39).abs() < 1e-4 && e.hi == 1.0, "{e:?}");
        let e = share_of(0, 16).unwrap();
        assert!(e.lo == 0.0 && (e.hi - 0.193_61).abs() < 1e-4, "{e:?}");
        // 8 / 16: p = 0.5, symmetric interval 0.5 +- 0.2324 (= [0.2799, 0.7201]).
        let e = share(&[true, false].repeat(8)).unwrap();
        assert!(
            (e.lo - 0.279_96).abs() < 1e-4 && (e.hi - 0.720_04).abs() < 1e-4,
            "{e:?}"
        );
        assert!(share(&[]).is_err());
        assert!(share_of(3, 2).is_err());
    }

    #[test]
    fn par_map_keeps_order_and_reports_the_first_error() {
        let items: Vec<u64> = (0..64).collect();
        let v = par_map(&items, |&i| Ok(i * i)).unwrap();
        assert_eq!(v, items.iter().map(|i| i * i).collect::<Vec<_>>());
        let e = par_map(&items, |&i| {
            if i % 10 == 7 {
                Err(Error::Requirement(format!("item {i}")))
            } else {
                Ok(i)
            }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "item 7");
    }

    fn est(value: f64, lo: f64, hi: f64) -> Estimate {
        Estimate {
            statistic: Statistic::Median,
            value,
            lo,
            hi,
            n: 16,
        }
    }

    #[test]
    fn classification_against_a_band() {
        let band = Band::rel(2.0, 0.1); // [1.8, 2.2]
        assert_eq!(classify(&est(2.1, 1.5, 3.0), &band), Agreement::Holds);
        assert_eq!(
            classify(&est(2.5, 2.1, 3.0), &band),
            Agreement::Undetermined
        );
        assert_eq!(classify(&est(2.5, 2.21, 3.0), &band), Agreement::Excludes);
        assert_eq!(classify(&est(1.0, 0.5, 1.79), &band), Agreement::Excludes);
        assert_eq!(
            classify(&est(f64::NAN, 0.5, 1.79), &band),
            Agreement::Undetermined
        );
        let f = Band::factor(3.0, 2.0); // [1.5, 6]
        assert_eq!(classify(&est(5.0, 4.0, 7.0), &f), Agreement::Holds);
        assert_eq!(classify(&est(9.0, 6.5, 12.0), &f), Agreement::Excludes);
        assert!((Band::abs(1.0, 0.5).error(1.2) - 0.2).abs() < 1e-15);
    }
}
