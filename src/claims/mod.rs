//! The claims registry: every analytic claim of THEORY.md has a markdown file in
//! `proofs-checks/` (statement, derivation, tolerance, check id) and a numerical check here.
//!
//! A check returns [`Row`]s: predicted vs measured with a tolerance. A row of a claim that the
//! workbench found to be false is built with [`Row::disputed`]: it records what the claim says,
//! what we measure and our own finding; it stays visible with the verdict `disputed` and does not
//! fail the run as long as the measurement still agrees with the documented finding.
//!
//! A row over seeds of trained networks is built with [`Row::interval`]: it carries the 95%
//! interval and the seed count (`lo`, `hi`, `n`) and is disputed only when the whole interval
//! excludes the prediction band (THEORY.md I.7; `crate::num::stats`).

use serde::Serialize;

use crate::num::stats;
use crate::Result;

/// Verdict of one row or one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Measured agrees with predicted within tolerance.
    Pass,
    /// A statistic over seeds whose 95% interval meets the tolerance band while its point
    /// estimate lies outside it: neither confirmed nor excluded (see [`Row::interval`]). It does
    /// not fail a run.
    Undetermined,
    /// The claim is false as stated; the measurement agrees with our documented finding.
    Disputed,
    /// Measured disagrees (or a disputed finding no longer reproduces).
    Fail,
}

/// One line of a check: a prediction beside its measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What is compared, e.g. `lambda_A (zhat=0.5)`.
    pub label: String,
    /// The analytic (or reference) value.
    pub predicted: f64,
    /// The numerical value.
    pub measured: f64,
    /// The error measure used (absolute or relative, see `relative`).
    pub error: f64,
    /// Tolerance on `error`.
    pub tolerance: f64,
    /// Whether `error` is relative (|m - p| / |p|) or absolute (|m - p|).
    pub relative: bool,
    pub verdict: Verdict,
    /// Free text: for disputed rows, our finding.
    pub note: String,
    /// Lower end of the 95% interval of `measured` (rows over seeds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lo: Option<f64>,
    /// Upper end of the 95% interval of `measured` (rows over seeds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hi: Option<f64>,
    /// Number of independent samples (seeds) behind `measured` (rows over seeds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
}

impl Row {
    /// Absolute comparison |measured - predicted| <= tol.
    pub fn abs(label: impl Into<String>, predicted: f64, measured: f64, tol: f64) -> Self {
        let error = (measured - predicted).abs();
        Self::with_error(label, predicted, measured, error, tol, false)
    }

    /// Relative comparison |measured - predicted| / |predicted| <= tol.
    pub fn rel(label: impl Into<String>, predicted: f64, measured: f64, tol: f64) -> Self {
        let error = (measured - predicted).abs() / predicted.abs().max(f64::MIN_POSITIVE);
        Self::with_error(label, predicted, measured, error, tol, true)
    }

    /// A boolean property (predicted 1 = holds); measured 1 or 0.
    pub fn holds(label: impl Into<String>, ok: bool, note: impl Into<String>) -> Self {
        let m = if ok { 1.0 } else { 0.0 };
        let mut r = Self::with_error(label, 1.0, m, 1.0 - m, 0.0, false);
        r.note = note.into();
        r
    }

    fn with_error(
        label: impl Into<String>,
        predicted: f64,
        measured: f64,
        error: f64,
        tolerance: f64,
        relative: bool,
    ) -> Self {
        let verdict = if error.is_finite() && error <= tolerance {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        Row {
            label: label.into(),
            predicted,
            measured,
            error,
            tolerance,
            relative,
            verdict,
            note: String::new(),
            lo: None,
            hi: None,
            n: None,
        }
    }

    /// A statistic over seeds against a prediction band (THEORY.md I.7): `measured` is the
    /// point estimate, `lo`/`hi`/`n` its 95% interval and sample size, `error` the distance of the
    /// point estimate from the prediction in the band's measure. The verdict follows
    /// [`stats::classify`]: `Pass` when the point estimate lies in the band, `Disputed` only when
    /// the whole interval excludes the band (so it fails the run unless the claim file is marked
    /// `status: disputed`), `Undetermined` when the interval meets the band but the estimate does
    /// not. The note names the statistic and the seed count.
    pub fn interval(label: impl Into<String>, band: &stats::Band, est: &stats::Estimate) -> Self {
        let verdict = match stats::classify(est, band) {
            stats::Agreement::Holds => Verdict::Pass,
            stats::Agreement::Excludes => Verdict::Disputed,
            stats::Agreement::Undetermined => Verdict::Undetermined,
        };
        let mut r = Self::with_error(
            label,
            band.predicted,
            est.value,
            band.error(est.value),
            band.tol,
            band.relative,
        );
        r.verdict = verdict;
        r.lo = Some(est.lo);
        r.hi = Some(est.hi);
        r.n = Some(est.n);
        r.note = format!(
            "{} of {} seeds, 95% CI [{:.4e}, {:.4e}]; band [{:.4e}, {:.4e}]",
            est.statistic.name(),
            est.n,
            est.lo,
            est.hi,
            band.lo,
            band.hi
        );
        if verdict == Verdict::Disputed {
            r.note.push_str("; the interval excludes the prediction");
        }
        r
    }

    /// Prepend to the note (keeps the interval text of [`Row::interval`]).
    pub fn context(mut self, text: impl Into<String>) -> Self {
        let t = text.into();
        self.note = if self.note.is_empty() {
            t
        } else {
            format!("{t}; {}", self.note)
        };
        self
    }

    /// A row of a claim found false. `claimed` is what THEORY.md says, `measured` what we
    /// compute; `finding` is the value we documented in the claim file (with `finding_tol`,
    /// relative). Verdict: `Pass` if the claim holds after all, `Disputed` if the measurement
    /// agrees with our finding, `Fail` otherwise.
    pub fn disputed(
        label: impl Into<String>,
        claimed: f64,
        measured: f64,
        claim_tol: f64,
        finding: f64,
        finding_tol: f64,
    ) -> Self {
        let mut r = Self::rel(label, claimed, measured, claim_tol);
        if r.verdict == Verdict::Fail {
            let ferr = (measured - finding).abs() / finding.abs().max(f64::MIN_POSITIVE);
            if ferr <= finding_tol {
                r.verdict = Verdict::Disputed;
            }
            r.note = format!("claim disputed; our finding {finding:.6e} (rel. err {ferr:.2e})");
        }
        r
    }

    /// Attach a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// Which runs a check belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Runs in `modeflow check` (seconds).
    Fast,
    /// Runs only in `modeflow check --full` (long asymptotic runs, sweeps).
    Full,
}

/// A registered numerical check.
#[derive(Clone, Copy)]
pub struct Check {
    /// Claim id, e.g. `I-1`, `B-6`, `X-2`; must match the `id:` of a file in `proofs-checks/`.
    pub id: &'static str,
    pub tier: Tier,
    pub run: fn() -> Result<Vec<Row>>,
}

pub mod finite_n;
pub mod runner;
pub mod tmaps;

/// Every registered check of the library.
pub fn registry() -> Vec<Check> {
    let mut checks: Vec<Check> = Vec::new();
    checks.extend(crate::latent::checks());
    checks.extend(crate::interference::linear::checks());
    checks.extend(crate::interference::kernels::checks());
    checks.extend(crate::rnn::checks());
    checks.extend(crate::rnn::latent_xval::checks());
    checks.extend(tmaps::checks());
    checks.extend(finite_n::checks());
    checks.extend(crate::rnn::rules_checks::checks());
    checks.extend(crate::bias::checks());
    checks
}
