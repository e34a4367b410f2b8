//! Reports: every result is `Serialize` (JSON) and has a human-readable text form.
//! JSON outputs are wrapped in an [`envelope`] recording the crate version, the model file
//! (path and full text) and the seed, so any number can be traced back to what produced it.

use serde::Serialize;

use crate::model::Common;

/// A result that can be printed for a person and serialised for a program.
pub trait Report: Serialize {
    /// Plain-text rendering (aligned columns, one idea per line).
    fn text(&self) -> String;
}

/// The JSON envelope: `{modeflow_version, model: {kind, name, file, seed, text}, result}`.
pub fn envelope(common: &Common, result: &impl Serialize) -> serde_json::Value {
    serde_json::json!({
        "modeflow_version": env!("CARGO_PKG_VERSION"),
        "model": {
            "kind": common.kind,
            "name": common.name,
            "file": common.file,
            "seed": common.seed,
            "text": common.text,
        },
        "seed": common.seed,
        "result": result,
    })
}

/// Format a number compactly for tables (fixed for moderate magnitudes, scientific otherwise).
pub fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if !x.is_finite() {
        format!("{x}")
    } else if (1e-3..1e5).contains(&x.abs()) {
        format!("{x:.6}")
    } else {
        format!("{x:.4e}")
    }
}
