//! The `linear2x2` model file: raw keys -> `check()` -> a validated [`LinearSpec`].
//!
//! ```toml
//! kind = "linear2x2"
//! r = 0.3            # input-driven emphasis u/zhat, in (0, 1)  (or give u instead)
//! zhat = 1.0         # target readout, > 0                      (default 1)
//! eta = 1.0          # learning rate, > 0                       (default 1)
//! eps = 0.05         # seed in both off-diagonals after task A, in (0, sqrt(r(1-r)))
//! tolerance = 1e-6   # task learned when |z - zhat| < tolerance, in [1e-12 zhat, ...) (default 1e-6)
//! rule = "gradient"  # learning rule: "gradient" (I-5) | "eprop" (E-1, the delta rule) (default gradient)
//! ```

use serde::Deserialize;

use super::closed::Params;
use super::flow::Rule;
use crate::model::ModelFile;
use crate::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinear {
    r: Option<f64>,
    u: Option<f64>,
    zhat: Option<f64>,
    eta: Option<f64>,
    eps: f64,
    tolerance: Option<f64>,
    rule: Option<String>,
}

/// A validated linear 2x2 model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LinearSpec {
    pub params: Params,
    /// Seed eps: M_ab = M_ba = eps after task A (I-4: rotation needs it).
    pub eps: f64,
    /// Tolerance on |z - zhat| at which a task counts as learned.
    pub tolerance: f64,
    /// The learning rule that moves M (gradient flow or e-prop).
    pub rule: Rule,
}

impl LinearSpec {
    /// r = u / zhat.
    pub fn r(&self) -> f64 {
        self.params.r()
    }
}

/// Validate a `linear2x2` model file.
pub fn check(model: &ModelFile) -> Result<LinearSpec> {
    if model.common.kind != "linear2x2" {
        return Err(Error::ModelFile {
            file: model.common.file.clone(),
            message: format!("expected kind `linear2x2`, found `{}`", model.common.kind),
        });
    }
    let raw: RawLinear = model.raw()?;
    let ck = model.checker();
    // Learning times scale as 1/(eta zhat^2); the ODE's step-size floor and horizon caps are set
    // for times within ~1e8 of 1, so both are bounded (issue 15: eta = 1e308 failed inside the
    // integrator with "step size underflow", naming neither file nor field).
    let zhat = ck.in_range("zhat", raw.zhat.unwrap_or(1.0), 1e-4, 1e4)?;
    let eta = ck.in_range("eta", raw.eta.unwrap_or(1.0), 1e-8, 1e8)?;
    let r = match (raw.r, raw.u) {
        (Some(_), Some(u)) => {
            return Err(ck.error(
                "u",
                u,
                "either r or u, not both",
                "r = u/zhat is given twice",
            ))
        }
        (None, None) => {
            return Err(ck.error(
                "r",
                "missing",
                "r in (0, 1) or u in (0, zhat)",
                "the input-driven emphasis r = u/zhat is required",
            ))
        }
        (Some(r), None) => ck.in_open("r", r, 0.0, 1.0)?,
        (None, Some(u)) => ck.in_open("u", u, 0.0, zhat)? / zhat,
    };
    let par = Params {
        u: r * zhat,
        zhat,
        eta,
    };
    ck.finite("eps", raw.eps)?;
    let eps_max = (r * (1.0 - r)).sqrt();
    if !(raw.eps > 0.0 && raw.eps < eps_max) {
        return Err(ck.error(
            "eps",
            raw.eps,
            &format!("(0, sqrt(r(1-r))) = (0, {eps_max:e})"),
            if raw.eps <= 0.0 {
                "rotation needs a seed: at eps = 0 the rotation pathway sits on a saddle forever"
            } else {
                "impossible target: the seed alone already drives z_BB to zhat or beyond"
            },
        ));
    }
    let tol = raw.tolerance.unwrap_or(1e-6);
    // Task B starts at z_BB = u r / (r - eps^2); the tolerance must leave something to learn.
    let z_bb0 = par.u * r / (r - raw.eps * raw.eps);
    let tol_max = zhat - z_bb0;
    // Below 1e-12 zhat the readout cannot be resolved: f64 rounding of the state, amplified by
    // |grad z| ~ G_A^2, reaches that level.
    let tol_min = 1e-12 * zhat;
    ck.finite("tolerance", tol)?;
    if !(tol >= tol_min && tol < tol_max) {
        return Err(ck.error(
            "tolerance",
            tol,
            &format!("[1e-12 zhat, zhat - z_BB(start of B)) = [{tol_min:e}, {tol_max:e})"),
            if tol < tol_min {
                "below what f64 can resolve of the readout"
            } else {
                "task B must start farther than the tolerance from its target"
            },
        ));
    }
    let rule = match raw.rule.as_deref() {
        None => Rule::Gradient,
        Some(name) => Rule::from_name(name).ok_or_else(|| {
            ck.error(
                "rule",
                name,
                &Rule::NAMES.join(" | "),
                "unknown learning rule for kind linear2x2",
            )
        })?,
    };
    Ok(LinearSpec {
        params: par,
        eps: raw.eps,
        tolerance: tol,
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_eta_and_zhat_are_rejected_naming_the_field() {
        for (body, field) in [
            ("r = 0.3\neps = 0.01\neta = 1e308", "eta"),
            ("r = 0.3\neps = 0.01\neta = 1e-300", "eta"),
            ("r = 0.3\neps = 0.01\nzhat = 1e300", "zhat"),
        ] {
            assert_eq!(field_of(parse(body).unwrap_err()), field, "{body}");
        }
    }

    #[test]
    fn tiny_ranges_are_printed_in_full() {
        // issue 15: the range was printed as (0, 0.000000)
        let e = parse("r = 1e-12\neps = 1").unwrap_err().to_string();
        assert!(
            e.contains("9.99999999999") && !e.contains("0.000000)"),
            "{e}"
        );
    }

    fn parse(body: &str) -> Result<LinearSpec> {
        let m = crate::model::parse("m.toml", &format!("kind = \"linear2x2\"\n{body}"))?;
        check(&m)
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Parameter { field, .. } => field,
            other => panic!("expected a parameter error, got {other}"),
        }
    }

    #[test]
    fn valid_files() {
        let s = parse("r = 0.3\neps = 0.05").unwrap();
        assert_eq!(
            (s.params.u, s.params.zhat, s.params.eta, s.tolerance),
            (0.3, 1.0, 1.0, 1e-6)
        );
        let s = parse("u = 0.2\nzhat = 0.8\neta = 2\neps = 0.1\ntolerance = 1e-8").unwrap();
        assert!((s.r() - 0.25).abs() < 1e-15);
        assert_eq!(s.params.eta, 2.0);
        assert_eq!(s.rule, Rule::Gradient);
        let s = parse("r = 0.3\neps = 0.05\nrule = \"eprop\"").unwrap();
        assert_eq!(s.rule, Rule::Eprop);
    }

    #[test]
    fn bad_values_name_their_field() {
        assert_eq!(
            field_of(parse("r = 0.3\neps = 0.05\neta = 0").unwrap_err()),
            "eta"
        );
        assert_eq!(
            field_of(parse("r = 0.3\neps = 0.05\neta = -1").unwrap_err()),
            "eta"
        );
        assert_eq!(field_of(parse("r = 1.2\neps = 0.05").unwrap_err()), "r");
        assert_eq!(field_of(parse("r = 0\neps = 0.05").unwrap_err()), "r");
        assert_eq!(field_of(parse("r = nan\neps = 0.05").unwrap_err()), "r");
        assert_eq!(field_of(parse("r = 0.3\neps = inf").unwrap_err()), "eps");
        assert_eq!(field_of(parse("r = 0.3\neps = 0.5").unwrap_err()), "eps");
        assert_eq!(field_of(parse("r = 0.3\neps = 0").unwrap_err()), "eps");
        assert_eq!(field_of(parse("u = 1.5\neps = 0.05").unwrap_err()), "u");
        assert_eq!(
            field_of(parse("r = 0.3\nu = 0.3\neps = 0.05").unwrap_err()),
            "u"
        );
        assert_eq!(field_of(parse("eps = 0.05").unwrap_err()), "r");
        assert_eq!(
            field_of(parse("r = 0.3\neps = 0.05\nrule = \"bptt\"").unwrap_err()),
            "rule"
        );
        assert_eq!(
            field_of(parse("r = 0.3\neps = 0.05\nzhat = -1").unwrap_err()),
            "zhat"
        );
        assert_eq!(
            field_of(parse("r = 0.3\neps = 0.05\ntolerance = 0.9").unwrap_err()),
            "tolerance"
        );
        assert_eq!(
            field_of(parse("r = 0.3\neps = 0.05\ntolerance = 0").unwrap_err()),
            "tolerance"
        );
    }

    #[test]
    fn impossible_target_is_explained() {
        let e = parse("r = 0.3\neps = 0.46").unwrap_err().to_string();
        assert!(e.contains("impossible target") && e.contains("eps"), "{e}");
    }

    #[test]
    fn unknown_and_missing_keys_are_model_file_errors() {
        assert!(matches!(
            parse("r = 0.3\neps = 0.05\nlr = 1"),
            Err(Error::ModelFile { .. })
        ));
        assert!(matches!(parse("r = 0.3"), Err(Error::ModelFile { .. })));
        assert!(matches!(
            parse("r = \"x\"\neps = 0.05"),
            Err(Error::ModelFile { .. })
        ));
    }

    #[test]
    fn shipped_models_are_valid() {
        let d = check(&crate::model::default_model()).unwrap();
        assert_eq!((d.r(), d.eps), (0.3, 0.05));
        for f in [
            "models/linear-rotation.toml",
            "models/linear-new-formation.toml",
            "models/linear-eprop.toml",
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
            check(&crate::model::load(&path).unwrap()).unwrap();
        }
    }
}
