//! Output files are written atomically: to a temporary file in the same directory, then
//! renamed, so a failed run never leaves a half-written file behind.

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

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
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
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
    fn atomic_write_to_missing_dir_fails_cleanly() {
        let p = Path::new("/nonexistent-modeflow-dir/x.csv");
        assert!(matches!(write_atomic(p, b"1"), Err(Error::Io { .. })));
    }
}
