//! The command line as a user meets it: exit codes, one-line errors naming the field, no panics
//! and no output files on bad input.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modeflow"))
}

fn temp_model(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("modeflow-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run `modeflow predict FILE`, expect exit code 2 and a one-line error containing `needle`.
fn expect_bad_input(name: &str, text: &str, needle: &str) {
    let p = temp_model(name, text);
    let out = bin().arg("predict").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: stderr {err}");
    assert!(
        err.contains(needle),
        "{name}: expected `{needle}` in: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{name}: not one line: {err}");
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert!(out.stdout.is_empty(), "{name}: wrote output on failure");
}

#[test]
fn malformed_toml() {
    expect_bad_input(
        "bad.toml",
        "kind = \"linear2x2\"\nr = [0.3\n",
        "malformed TOML",
    );
}

#[test]
fn missing_and_unknown_kind() {
    expect_bad_input("nokind.toml", "r = 0.3\n", "missing field `kind`");
    expect_bad_input("weird.toml", "kind = \"weird\"\n", "unknown kind `weird`");
}

#[test]
fn negative_seed() {
    expect_bad_input("seed.toml", "kind = \"linear2x2\"\nseed = -3\n", "seed");
}

#[test]
fn missing_file() {
    let out = bin()
        .args(["predict", "/nonexistent/model.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model.toml"));
}

#[test]
fn help_lists_verbs() {
    let out = bin().arg("--help").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    for verb in ["predict", "check"] {
        assert!(s.contains(verb), "{s}");
    }
}
