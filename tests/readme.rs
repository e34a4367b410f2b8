//! The README's examples cannot rot: every model file it names exists and validates, every
//! `predict` example runs, and every shipped model file validates for its family.

use std::path::Path;

use modeflow::model;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// Validate a model file the way its verb would, without running long jobs.
fn validate(path: &Path) {
    let m = model::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = match m.common.kind.as_str() {
        "linear2x2" => modeflow::interference::linear::check(&m).map(|_| ()),
        "latent" => modeflow::interference::latent_model::LatentSpec::from_model(&m).map(|_| ()),
        "sweep" => modeflow::sweep::parse(&m).map(|_| ()),
        "rnn" => modeflow::rnn::spec::check(&m).map(|_| ()),
        k if k.starts_with("bias_") => modeflow::bias::spec::check(&m),
        k => panic!("{}: no validation for kind `{k}`", path.display()),
    };
    r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

#[test]
fn readme_examples_name_valid_models() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = readme();
    let mut seen = 0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("cargo run --release -- "))
    {
        let args: Vec<&str> = line
            .trim_start_matches("cargo run --release -- ")
            .split('#')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        for a in args.iter().filter(|a| a.starts_with("models/")) {
            validate(&root.join(a));
            seen += 1;
        }
        if args[0] == "predict" {
            let m = model::load(&root.join(args[1])).unwrap();
            let out = modeflow::run::predict(&m).unwrap();
            assert!(!out.text.is_empty());
        }
    }
    assert!(seen >= 5, "README names only {seen} model files");
}

#[test]
fn every_shipped_model_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            validate(&p);
            n += 1;
        }
    }
    assert!(n >= 10);
}

#[test]
fn embedded_default_is_the_shipped_default() {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.toml"))
            .unwrap();
    assert_eq!(shipped, model::DEFAULT_MODEL);
}

/// The README runs top to bottom as written: a `--sweep` file given to `figures` is written
/// by a `sweep` line above it (`sweep M --out D` writes `D/<name of M>.json`).
#[test]
fn readme_writes_a_sweep_before_it_draws_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut written: Vec<String> = Vec::new();
    let mut checked = 0;
    for line in readme().lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("cargo run --release -- ") else {
            continue;
        };
        let args: Vec<&str> = rest.split('#').next().unwrap().split_whitespace().collect();
        let after = |flag: &str| args.iter().position(|a| *a == flag).map(|i| args[i + 1]);
        if args[0] == "sweep" && after("--shard").is_none() {
            let m = model::load(&root.join(args[1])).unwrap();
            let out = after("--out").unwrap_or(".");
            written.push(format!("{out}/{}.json", m.common.name));
        }
        if let Some(p) = after("--sweep") {
            assert!(
                written.iter().any(|w| w == p),
                "`{line}` draws {p} before a sweep writes it (written so far: {written:?})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 1);
}
