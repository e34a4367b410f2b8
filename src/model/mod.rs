//! Model files: TOML -> raw structs -> `check()` -> validated specs.
//!
//! A model file names its family with `kind` and carries the common keys `name`,
//! `description` and `seed`; everything else is family-specific and deserialised with
//! `deny_unknown_fields` into a raw struct, then validated by that family's `check`, which
//! names the field and the allowed range on failure (see [`Checker`]).
//!
//! ```
//! let m = modeflow::model::parse("inline.toml", modeflow::model::DEFAULT_MODEL).unwrap();
//! assert_eq!(m.common.kind, "linear2x2");
//! ```

mod checker;

pub use checker::Checker;

use serde::Serialize;

use crate::{Error, Result};

/// The shipped default model (`models/default.toml`), embedded so the main job runs anywhere.
pub const DEFAULT_MODEL: &str = include_str!("../../models/default.toml");

/// Keys every model file may carry.
#[derive(Debug, Clone, Serialize)]
pub struct Common {
    /// The family: `latent`, `linear2x2`, ... (see [`kinds`]).
    pub kind: String,
    pub name: String,
    pub description: String,
    /// Seed of every random draw of a run; recorded in every JSON output.
    pub seed: u64,
    /// Where the model came from (a path, or `<embedded default>`).
    pub file: String,
    /// The file's text, kept so outputs can record exactly which model they ran.
    #[serde(skip)]
    pub text: String,
}

/// A parsed model file: the common keys plus the family-specific remainder (unchecked).
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub common: Common,
    /// Family-specific keys, to be deserialised by the family's raw struct.
    pub rest: toml::Table,
}

/// The families a model file may name with `kind` besides those of the trained-network
/// modules ([`crate::rnn::KINDS`], [`crate::bias::spec::KINDS`]); [`kinds`] lists them all.
const CORE_KINDS: &[&str] = &["latent", "linear2x2", "sweep"];

/// Every family a model file may name with `kind`.
pub fn kinds() -> Vec<&'static str> {
    [CORE_KINDS, crate::rnn::KINDS, crate::bias::spec::KINDS].concat()
}

impl ModelFile {
    /// Deserialise the family-specific keys into `T` (which should use `deny_unknown_fields`),
    /// mapping serde's message to an error naming the file.
    pub fn raw<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        self.rest
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| Error::ModelFile {
                file: self.common.file.clone(),
                message: one_line(e.message()),
            })
    }

    /// A [`Checker`] that names this file in its errors.
    pub fn checker(&self) -> Checker<'_> {
        Checker::new(&self.common.file)
    }
}

/// Read and parse a model file from disk.
pub fn load(path: &std::path::Path) -> Result<ModelFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&path.display().to_string(), &text)
}

/// The embedded default model.
pub fn default_model() -> ModelFile {
    parse("<embedded default>", DEFAULT_MODEL).expect("the embedded default model is valid")
}

/// Parse TOML text into a [`ModelFile`], checking the common keys.
pub fn parse(file: &str, text: &str) -> Result<ModelFile> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let span = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].lines().count().max(1);
                format!(" (line {line})")
            })
            .unwrap_or_default();
        Error::ModelFile {
            file: file.to_string(),
            message: format!("malformed TOML{span}: {}", one_line(e.message())),
        }
    })?;
    let mut take_str = |key: &str, required: bool| -> Result<String> {
        match table.remove(key) {
            Some(toml::Value::String(s)) => Ok(s),
            Some(other) => Err(Error::ModelFile {
                file: file.to_string(),
                message: format!("`{key}` must be a string, found {}", other.type_str()),
            }),
            None if required => Err(Error::ModelFile {
                file: file.to_string(),
                message: format!("missing field `{key}` (one of: {})", kinds().join(", ")),
            }),
            None => Ok(String::new()),
        }
    };
    let kind = take_str("kind", true)?;
    let name = take_str("name", false)?;
    let description = take_str("description", false)?;
    if !kinds().contains(&kind.as_str()) {
        return Err(Error::ModelFile {
            file: file.to_string(),
            message: format!("unknown kind `{kind}` (allowed: {})", kinds().join(", ")),
        });
    }
    let seed = match table.remove("seed") {
        None => 0,
        Some(toml::Value::Integer(s)) if s >= 0 => s as u64,
        Some(v) => {
            return Err(Error::Parameter {
                file: file.to_string(),
                field: "seed".into(),
                value: v.to_string(),
                allowed: "an integer >= 0".into(),
                reason: "not a valid seed".into(),
            })
        }
    };
    Ok(ModelFile {
        common: Common {
            kind,
            name,
            description,
            seed,
            file: file.to_string(),
            text: text.to_string(),
        },
        rest: table,
    })
}

/// Collapse a multi-line parser message into one line.
fn one_line(msg: &str) -> String {
    msg.trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
