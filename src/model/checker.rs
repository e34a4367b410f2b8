//! Field validation with errors that name the file, the field and the allowed range.

use crate::io::fmt_value;
use crate::{Error, Result};

/// Validates fields of one model file.
#[derive(Debug, Clone, Copy)]
pub struct Checker<'a> {
    file: &'a str,
}

impl<'a> Checker<'a> {
    pub fn new(file: &'a str) -> Self {
        Checker { file }
    }

    /// An error for `field` with a free-form reason and allowed range.
    pub fn error(&self, field: &str, value: impl ToString, allowed: &str, reason: &str) -> Error {
        Error::Parameter {
            file: self.file.to_string(),
            field: field.to_string(),
            value: value.to_string(),
            allowed: allowed.to_string(),
            reason: reason.to_string(),
        }
    }

    /// `v` must be finite.
    pub fn finite(&self, field: &str, v: f64) -> Result<f64> {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.error(field, fmt_value(v), "a finite number", "not finite"))
        }
    }

    /// `v` must be finite and > 0.
    pub fn positive(&self, field: &str, v: f64) -> Result<f64> {
        self.finite(field, v)?;
        if v > 0.0 {
            Ok(v)
        } else {
            Err(self.error(field, fmt_value(v), "> 0", "must be positive"))
        }
    }

    /// `v` must be finite and >= 0.
    pub fn non_negative(&self, field: &str, v: f64) -> Result<f64> {
        self.finite(field, v)?;
        if v >= 0.0 {
            Ok(v)
        } else {
            Err(self.error(field, fmt_value(v), ">= 0", "must not be negative"))
        }
    }

    /// `v` must be finite and lie in `[lo, hi]`.
    pub fn in_range(&self, field: &str, v: f64, lo: f64, hi: f64) -> Result<f64> {
        self.finite(field, v)?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(self.error(
                field,
                fmt_value(v),
                &format!("[{}, {}]", fmt_value(lo), fmt_value(hi)),
                "out of range",
            ))
        }
    }

    /// `v` must be finite and lie in the open interval `(lo, hi)`.
    pub fn in_open(&self, field: &str, v: f64, lo: f64, hi: f64) -> Result<f64> {
        self.finite(field, v)?;
        if v > lo && v < hi {
            Ok(v)
        } else {
            Err(self.error(
                field,
                fmt_value(v),
                &format!("({}, {})", fmt_value(lo), fmt_value(hi)),
                "out of range",
            ))
        }
    }

    /// An integer count in `[lo, hi]`.
    pub fn count(&self, field: &str, v: i64, lo: i64, hi: i64) -> Result<usize> {
        if (lo..=hi).contains(&v) {
            Ok(v as usize)
        } else {
            Err(self.error(
                field,
                v,
                &format!("an integer in [{lo}, {hi}]"),
                "out of range",
            ))
        }
    }

    /// A string that must be one of `allowed`.
    pub fn one_of<'s>(&self, field: &str, v: &'s str, allowed: &[&str]) -> Result<&'s str> {
        if allowed.contains(&v) {
            Ok(v)
        } else {
            Err(self.error(field, v, &allowed.join(" | "), "unknown value"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_messages_are_short_and_exact() {
        assert_eq!(fmt_value(1e308), "1e308");
        assert_eq!(fmt_value(1e-8), "1e-8");
        assert_eq!(fmt_value(0.25), "0.25");
        assert_eq!(fmt_value(0.0), "0");
        assert_eq!(fmt_value(f64::NAN), "NaN");
        let e = Checker::new("m.toml")
            .in_range("eta", 1e308, 1e-8, 1e8)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "m.toml: field `eta` = 1e308: out of range (allowed: [1e-8, 100000000])"
        );
    }
}
