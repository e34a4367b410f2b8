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
    /// The family: `latent`, `linear2x2`, ... (the application's family table in `run.rs`).
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
    /// Directory for output files the model names (`csv = ...`): `--out` of `modeflow train`,
    /// `.` by default. Paths in the model file stay under it ([`crate::io::output_path`]).
    #[serde(skip)]
    pub out: std::path::PathBuf,
}

/// A parsed model file: the common keys plus the family-specific remainder (unchecked).
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub common: Common,
    /// Family-specific keys, to be deserialised by the family's raw struct.
    pub rest: toml::Table,
}

impl ModelFile {
    /// Deserialise the family-specific keys into `T` (which should use `deny_unknown_fields`),
    /// mapping serde's message to an error naming the file.
    ///
    /// serde's messages name no key (`invalid type: string "x", expected i64`); the keys are
    /// re-serialised and parsed once more as a document, whose error span locates the field:
    /// `field `network.n`: invalid type: ...`.
    pub fn raw<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        self.rest.clone().try_into().map_err(|e: toml::de::Error| {
            let msg = one_line(e.message());
            Error::ModelFile {
                file: self.common.file.clone(),
                message: match self.locate::<T>() {
                    Some(Located::Key(k)) => format!("field `{k}`: {msg}"),
                    Some(Located::Table(t)) => format!("in [{t}]: {msg}"),
                    None => msg,
                },
            }
        })
    }

    /// Where deserialising the family keys into `T` fails: from the span of a document parse,
    /// else (errors raised after a value was read, such as an array of the wrong length, carry
    /// no span) the last key whose removal changes the error.
    fn locate<T: serde::de::DeserializeOwned>(&self) -> Option<Located> {
        let spanned = toml::to_string(&self.rest).ok().and_then(|text| {
            let err = toml::from_str::<T>(&text).err()?;
            key_at(&text, err.span()?.start)
        });
        spanned.or_else(|| self.probe::<T>())
    }

    fn probe<T: serde::de::DeserializeOwned>(&self) -> Option<Located> {
        let message = |t: toml::Table| {
            t.try_into::<T>()
                .err()
                .map(|e: toml::de::Error| e.message().to_string())
        };
        let original = message(self.rest.clone());
        let mut keys = Vec::new();
        leaf_keys(&self.rest, "", &mut keys);
        // the last key whose removal changes the error: removing a required key of an earlier
        // table changes it too (that table now fails first), removing one of a later table
        // does not (the culprit fails first)
        keys.into_iter().rev().find_map(|k| {
            let mut t = self.rest.clone();
            remove_dotted(&mut t, &k);
            (message(t) != original).then(|| Located::Key(crate::io::truncate(&k, 80)))
        })
    }

    /// A [`Checker`] that names this file in its errors.
    pub fn checker(&self) -> Checker<'_> {
        Checker::new(&self.common.file)
    }
}

/// Read and parse a model file from disk, accepting any `kind` (see [`load_with`]).
pub fn load(path: &std::path::Path) -> Result<ModelFile> {
    load_with(path, &[])
}

/// Read and parse a model file from disk whose `kind` must be one of `kinds` (the application's
/// family table in `run.rs`; empty: any kind).
pub fn load_with(path: &std::path::Path, kinds: &[&str]) -> Result<ModelFile> {
    let text = crate::io::read_input(path)?;
    parse_with(&path.display().to_string(), &text, kinds)
}

/// The embedded default model.
pub fn default_model() -> ModelFile {
    parse("<embedded default>", DEFAULT_MODEL).expect("the embedded default model is valid")
}

/// Parse TOML text into a [`ModelFile`], checking the common keys; any `kind` is accepted (the
/// family's own check refuses a file of another kind).
pub fn parse(file: &str, text: &str) -> Result<ModelFile> {
    parse_with(file, text, &[])
}

/// [`parse`], with `kind` required to be one of `kinds` (empty: any kind). The list is passed
/// in by the application (the family table in `run.rs`): this module knows no family.
pub fn parse_with(file: &str, text: &str, kinds: &[&str]) -> Result<ModelFile> {
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
            None if required && kinds.is_empty() => Err(Error::ModelFile {
                file: file.to_string(),
                message: format!("missing field `{key}`"),
            }),
            None if required => Err(Error::ModelFile {
                file: file.to_string(),
                message: format!("missing field `{key}` (one of: {})", kinds.join(", ")),
            }),
            None => Ok(String::new()),
        }
    };
    let kind = take_str("kind", true)?;
    let name = take_str("name", false)?;
    let description = take_str("description", false)?;
    if !kinds.is_empty() && !kinds.contains(&kind.as_str()) {
        return Err(Error::ModelFile {
            file: file.to_string(),
            message: format!("unknown kind `{kind}` (allowed: {})", kinds.join(", ")),
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
            out: std::path::PathBuf::from("."),
        },
        rest: table,
    })
}

/// Collapse a multi-line parser message into one line, at most 400 characters (a 1 MB unknown
/// key is not echoed in full).
fn one_line(msg: &str) -> String {
    let s = msg
        .trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    crate::io::truncate(&s, 400)
}

/// The dotted keys of the non-table values of `t`, in order.
fn leaf_keys(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => leaf_keys(inner, &key, out),
            _ => out.push(key),
        }
    }
}

fn remove_dotted(t: &mut toml::Table, key: &str) {
    match key.split_once('.') {
        None => {
            t.remove(key);
        }
        Some((head, rest)) => {
            if let Some(toml::Value::Table(inner)) = t.get_mut(head) {
                remove_dotted(inner, rest);
            }
        }
    }
}

/// A located field: a dotted key, or a table (for a missing key).
#[derive(Debug, PartialEq)]
enum Located {
    Key(String),
    Table(String),
}

/// The dotted key on the line of byte `offset` of a TOML document written by `toml::to_string`
/// (`[a.b]` headers, `key = value` lines), or the table whose header holds `offset`.
fn key_at(text: &str, offset: usize) -> Option<Located> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let header = |l: &str| {
        let l = l.trim();
        l.starts_with('[').then(|| {
            l.trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string()
        })
    };
    if let Some(h) = header(line) {
        return Some(Located::Table(h));
    }
    let table = text[..line_start].lines().rev().find_map(header);
    let key = line.split_once('=')?.0.trim().trim_matches('"').to_string();
    if key.is_empty() {
        return table.map(Located::Table);
    }
    let key = crate::io::truncate(&key, 80);
    Some(Located::Key(match table {
        Some(t) => format!("{t}.{key}"),
        None => key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct R {
        a: i64,
        s: Option<S>,
        t: T,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        z: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        x: [f64; 2],
        y: Option<String>,
        m: Option<[[f64; 2]; 2]>,
    }

    fn err(body: &str) -> String {
        let m = parse("f.toml", &format!("kind = \"latent\"\n{body}")).unwrap();
        m.raw::<R>().unwrap_err().to_string()
    }

    /// issue 15: TOML type errors and wrong-length arrays named no field.
    #[test]
    fn type_errors_name_the_field() {
        let cases = [
            ("a = \"x\"\n[t]\nx = [1.0, 2.0]\n", "field `a`"),
            ("a = 1\n[t]\nx = [1.0, 2.0, 3.0]\n", "field `t.x`"),
            (
                "a = 1\n[s]\nz = 1\n[t]\nx = [1.0, 2.0, 3.0]\n",
                "field `t.x`",
            ),
            ("a = 1\n[t]\nx = [1.0]\n", "field `t.x`"),
            ("a = 1\n[t]\nx = [1.0, 2.0]\ny = 3\n", "field `t.y`"),
            ("a = 1\n[t]\nx = [[1.0], 2.0]\n", "field `t.x`"),
            ("a = 1.5\n[t]\nx = [1.0, 2.0]\n", "field `a`"),
            (
                "a = 1\n[t]\nx = [1.0, 2.0]\nm = [[1.0, 2.0, 3.0], [0.0, 0.0]]\n",
                "field `t.m`",
            ),
        ];
        for (body, want) in cases {
            let e = err(body);
            assert!(
                e.starts_with("f.toml: ") && e.contains(want),
                "{body:?}: {e}"
            );
        }
        let e = err("a = 1\n[t]\ny = \"s\"\n");
        assert!(e.contains("[t]") && e.contains("missing field `x`"), "{e}");
    }

    /// issue 15: a 1 MB unknown key was echoed in full.
    #[test]
    fn huge_unknown_keys_are_not_echoed() {
        let key = "k".repeat(1 << 20);
        let e = err(&format!("a = 1\n{key} = 1\n[t]\nx = [1.0, 2.0]\n"));
        assert!(e.len() < 1000 && e.contains("unknown field"), "{}", e.len());
    }

    #[test]
    fn keys_are_located_in_serialised_documents() {
        let text = "a = 1\n\n[t]\nx = [1.0]\n";
        assert_eq!(key_at(text, 0), Some(Located::Key("a".into())));
        assert_eq!(key_at(text, 9), Some(Located::Table("t".into())));
        assert_eq!(key_at(text, 16), Some(Located::Key("t.x".into())));
    }
}
