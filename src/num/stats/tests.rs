//! Unit tests of `num::stats`.

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
