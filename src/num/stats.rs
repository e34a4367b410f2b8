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
mod tests;
