//! Output files are written atomically: to a temporary file in the same directory, then
//! renamed, so a failed run never leaves a half-written file behind. Input files are read with
//! a size limit, and only if they are regular files (a named pipe or `/dev/zero` given as a
//! model file is refused before any byte is read). Output names derived from a model's `name`
//! are sanitised ([`file_stem`]) and output paths given in a model file stay under the output
//! directory ([`output_path`]).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Largest input file (model file, sweep result, shard) read, in bytes: 64 MiB. The largest
/// shipped model file is a few kB and a sweep shard of 10^5 points is a few tens of MB.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Temp-file counter: temp names are unique per process *and* per write, so parallel writers
/// (sweep points on rayon threads) never share a temp file.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Read a text input file: refused unless it is a regular file of at most `MAX_INPUT_BYTES`
/// (checked on the metadata before reading, and the read itself is bounded by `take`, so a
/// file growing meanwhile cannot exceed the limit either), and unless it is UTF-8.
pub fn read_input(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let refuse = |message: String| Error::ModelFile {
        file: path.display().to_string(),
        message,
    };
    if !meta.is_file() {
        return Err(refuse(format!(
            "not a regular file ({}); give a model file on disk",
            if meta.is_dir() {
                "a directory"
            } else {
                "a pipe, socket or device"
            }
        )));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(refuse(format!(
            "file of {} bytes exceeds the input limit of {} bytes (64 MiB)",
            meta.len(),
            MAX_INPUT_BYTES
        )));
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(refuse(format!(
            "file grew past the input limit of {MAX_INPUT_BYTES} bytes while being read"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A file stem from a model's `name`: letters, digits, `-`, `_`, `.` and `+` are kept, anything
/// else (path separators, quotes, newlines, spaces) becomes `_`; leading dots are dropped (no
/// hidden files, no `..`), the length is capped at 100 characters, and an empty result is
/// `unnamed`.
pub fn file_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() {
        "unnamed".into()
    } else {
        s
    }
}

/// Where an output file named in a model file (`field` = `value`, e.g. `csv = "run.csv"`) goes:
/// `out/value`. The value must be a relative path without `..` and must not name the model file
/// itself (`model_file`); errors name the file and the field.
pub fn output_path(out: &Path, model_file: &str, field: &str, value: &str) -> Result<PathBuf> {
    let bad = |reason: &str| Error::Parameter {
        file: model_file.to_string(),
        field: field.to_string(),
        value: format!("{:?}", truncate(value, 200)),
        allowed: "a relative file path inside the output directory (--out), no `..`".into(),
        reason: reason.to_string(),
    };
    let rel = Path::new(value);
    if value.is_empty() || value.ends_with('/') {
        return Err(bad("not a file name"));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(bad("control characters in a file name"));
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(bad("`..` would leave the output directory")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad("an absolute path would leave the output directory"))
            }
        }
    }
    let p = out.join(rel);
    let model = Path::new(model_file);
    let same = match (std::fs::canonicalize(model), absolute_lexical(&p)) {
        (Ok(m), Some(q)) => m == q || std::fs::canonicalize(&p).map(|c| c == m).unwrap_or(false),
        _ => false,
    };
    if same {
        return Err(bad("the output would overwrite the model file"));
    }
    Ok(p)
}

/// `p` made absolute against the current directory, its parent canonicalised if it exists.
fn absolute_lexical(p: &Path) -> Option<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    let parent = abs.parent()?;
    let name = abs.file_name()?;
    Some(
        std::fs::canonicalize(parent)
            .unwrap_or_else(|_| parent.to_path_buf())
            .join(name),
    )
}

/// At most `max` characters of `s`, with the number of characters left off.
pub fn truncate(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}... ({} more characters)", n - max)
    }
}

/// Write `bytes` to `path` atomically (temp file + rename). Creates no directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Requirement(format!("{}: not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Render rows as CSV text (header + one line per row; values written with full precision).
pub fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<f64>>) -> String {
    let mut s = header.join(",");
    s.push('\n');
    for row in rows {
        let line: Vec<String> = row.iter().map(|v| csv_value(*v)).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

/// A CSV cell: integers (indices, counts, 0/1 flags) as integers, everything else in
/// round-trip scientific notation.
pub fn csv_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:e}")
    }
}

/// A number as a person reads it in a message: plain decimal for moderate magnitudes,
/// scientific beyond (Rust's `{}` would print 1e308 as 309 digits). Round-trip exact.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() || (1e-4..1e9).contains(&a) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Create a directory (and parents), with an error naming it.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_readably() {
        assert_eq!(csv_value(1.0), "1");
        assert_eq!(csv_value(-3.0), "-3");
        assert_eq!(csv_value(0.25), "2.5e-1");
        assert_eq!(fmt_value(1e308), "1e308");
        assert_eq!(fmt_value(0.3), "0.3");
        assert_eq!(fmt_value(2.5e-7), "2.5e-7");
        assert_eq!(fmt_value(1e308).parse::<f64>().unwrap(), 1e308);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("modeflow-io-{}", std::process::id()));
        ensure_dir(&dir).unwrap();
        let p = dir.join("a.csv");
        write_atomic(&p, b"x\n1\n").unwrap();
        write_atomic(&p, b"x\n2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "x\n2\n");
        let n = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(n, 1, "temp files left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parallel_atomic_writes_to_one_path_never_fail() {
        // issue 15: sweep points writing the same CSV shared one temp name and failed at random
        let dir = std::env::temp_dir().join(format!("modeflow-io-par-{}", std::process::id()));
        ensure_dir(&dir).unwrap();
        let p = dir.join("same.csv");
        let handles: Vec<_> = (0..8)
            .map(|k| {
                let p = p.clone();
                std::thread::spawn(move || {
                    (0..20)
                        .map(|_| write_atomic(&p, format!("{k}\n").as_bytes()).is_ok())
                        .all(|ok| ok)
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().unwrap(), "a parallel write failed");
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stems_are_sanitised() {
        assert_eq!(file_stem("../x"), "_x");
        assert_eq!(file_stem("/etc/passwd"), "_etc_passwd");
        assert_eq!(file_stem("a\nb\"c"), "a_b_c");
        assert_eq!(file_stem(""), "unnamed");
        assert_eq!(file_stem(".."), "unnamed");
        assert_eq!(file_stem("race-grid_2.v1"), "race-grid_2.v1");
        assert_eq!(file_stem(&"x".repeat(500)).len(), 100);
    }

    #[test]
    fn output_paths_stay_under_out() {
        let out = Path::new("/tmp/modeflow-out");
        assert_eq!(
            output_path(out, "m.toml", "csv", "a/b.csv").unwrap(),
            out.join("a/b.csv")
        );
        for bad in ["../x.csv", "/abs.csv", "a/../../x", "", "d/", "a\nb"] {
            assert!(
                matches!(
                    output_path(out, "m.toml", "csv", bad),
                    Err(Error::Parameter { ref field, .. }) if field == "csv"
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn output_path_never_names_the_model_file() {
        let dir = std::env::temp_dir().join(format!("modeflow-io-self-{}", std::process::id()));
        ensure_dir(&dir).unwrap();
        let model = dir.join("model.toml");
        std::fs::write(&model, "kind = \"latent\"\n").unwrap();
        let r = output_path(&dir, &model.display().to_string(), "csv", "model.toml");
        assert!(matches!(r, Err(Error::Parameter { .. })), "{r:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn inputs_must_be_small_regular_files() {
        assert!(matches!(
            read_input(Path::new("/dev/zero")),
            Err(Error::ModelFile { .. })
        ));
        assert!(matches!(
            read_input(Path::new("/tmp")),
            Err(Error::ModelFile { .. })
        ));
        assert!(matches!(
            read_input(Path::new("/nonexistent-modeflow.toml")),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn long_values_are_truncated() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 2), "ab... (4 more characters)");
    }

    #[test]
    fn atomic_write_to_missing_dir_fails_cleanly() {
        let p = Path::new("/nonexistent-modeflow-dir/x.csv");
        assert!(matches!(write_atomic(p, b"1"), Err(Error::Io { .. })));
    }
}
