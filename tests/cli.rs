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

#[test]
fn default_model_runs_and_predict_json_has_the_fields() {
    let out = bin().output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("interference"), "{text}");
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = bin()
        .args(["predict", "--json", &format!("{dir}/models/default.toml")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["result"];
    for key in [
        "winner",
        "interference",
        "t_new",
        "t_rot",
        "r_star",
        "fixed_points",
    ] {
        assert!(!r[key].is_null(), "missing {key}");
    }
    let fp = &r["fixed_points"][0];
    for key in ["coordinates", "eigenvalues", "type"] {
        assert!(!fp[key].is_null(), "fixed point misses {key}: {fp}");
    }
    assert!(["rotation", "new_formation"].contains(&r["winner"].as_str().unwrap()));
    assert_eq!(v["modeflow_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["model"]["text"].as_str().unwrap().contains("linear2x2"));
}

#[test]
fn linear_model_bad_fields_name_the_field() {
    let base = "kind = \"linear2x2\"\nzhat = 1.0\neps = 0.05\ntolerance = 1e-6\n";
    expect_bad_input("eta.toml", &format!("{base}r = 0.3\neta = -1.0\n"), "eta");
    expect_bad_input("nan.toml", &format!("{base}r = nan\neta = 1.0\n"), "`r`");
    expect_bad_input("r.toml", &format!("{base}r = 1.5\neta = 1.0\n"), "`r`");
    expect_bad_input(
        "unknown.toml",
        &format!("{base}r = 0.3\neta = 1.0\nbogus = 2\n"),
        "bogus",
    );
}

#[test]
fn sweep_shards_merge_to_the_full_sweep() {
    let dir = std::env::temp_dir().join(format!("modeflow-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("base.toml");
    std::fs::write(
        &base,
        "kind = \"linear2x2\"\nr = 0.3\nzhat = 1.0\neta = 1.0\neps = 0.05\ntolerance = 1e-6\n",
    )
    .unwrap();
    let sweep = dir.join("sweep.toml");
    std::fs::write(
        &sweep,
        "kind = \"sweep\"\nname = \"t\"\nbase = \"base.toml\"\noutputs = [\"interference\", \"winner\"]\n\
         [axes]\nr = [0.2, 0.3, 0.6]\neps = [0.01, 0.05]\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = bin().args(args).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let out = dir.join("out");
    let (s, o) = (sweep.to_str().unwrap(), out.to_str().unwrap());
    run(&["sweep", s, "--out", o]);
    run(&["sweep", s, "--out", o, "--shard", "1/2"]);
    run(&["sweep", s, "--out", o, "--shard", "2/2"]);
    let merged_dir = dir.join("merged");
    run(&[
        "merge",
        out.join("t.shard-1-of-2.json").to_str().unwrap(),
        out.join("t.shard-2-of-2.json").to_str().unwrap(),
        "--out",
        merged_dir.to_str().unwrap(),
    ]);
    let full = std::fs::read_to_string(out.join("t.csv")).unwrap();
    let merged = std::fs::read_to_string(merged_dir.join("t.csv")).unwrap();
    assert_eq!(full, merged);
    assert_eq!(full.lines().count(), 1 + 6);
    assert!(full.lines().skip(1).all(|l| l.ends_with(",ok")));
    // a missing shard is an error, not a silent partial table
    let o = bin()
        .args([
            "merge",
            out.join("t.shard-1-of-2.json").to_str().unwrap(),
            "--out",
            o,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"));
}

#[test]
fn phase_writes_figures_and_refuses_models_without_a_latent_form() {
    let dir = std::env::temp_dir().join(format!("modeflow-phase-{}", std::process::id()));
    let root = env!("CARGO_MANIFEST_DIR");
    let o = bin()
        .args([
            "phase",
            &format!("{root}/models/linear-rotation.toml"),
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let listed = String::from_utf8_lossy(&o.stdout);
    for ext in ["svg", "png", "json"] {
        assert!(
            listed
                .lines()
                .any(|l| l.ends_with(&format!("phase_after_b.{ext}"))),
            "{listed}"
        );
    }
    for l in listed.lines() {
        assert!(std::path::Path::new(l).is_file(), "listed but missing: {l}");
    }
    // a model family without a 2-D latent form
    let o = bin()
        .args(["phase", &format!("{root}/models/bias-margin.toml"), "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no 2-D latent form"));
}

#[test]
fn unwritable_output_directory_is_a_clear_error() {
    let root = env!("CARGO_MANIFEST_DIR");
    // a regular file where a directory is expected
    let blocker = temp_model("blocker", "not a directory");
    let o = bin()
        .args(["phase", &format!("{root}/models/default.toml"), "--out"])
        .arg(blocker.join("sub"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("blocker"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn empty_sweep_result_for_figures_is_an_error() {
    let p = temp_model(
        "empty-sweep.json",
        r#"{"modeflow_version":"0","name":"e","sweep_file":"x","base_file":"y","verb":"predict",
            "axes":["r","eps"],"outputs":["interference"],"total":0,"shard":{"i":1,"n":1},"rows":[]}"#,
    );
    let out = std::env::temp_dir().join(format!("modeflow-empty-{}", std::process::id()));
    let o = bin()
        .args(["figures", "--sweep"])
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no rows"));
    assert!(!out.exists(), "output directory created on failure");
}

#[test]
fn impossible_latent_target_names_zhat() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/models/latent-rotation.toml")).unwrap();
    // erf networks have no fixed point with readout zhat >= sqrt(2/pi) ~ 0.798
    let bad = text.replace("zhat = 0.5", "zhat = 0.9");
    assert_ne!(bad, text);
    expect_bad_input("zhat.toml", &bad, "zhat");
}
