//! Fuzz suite (issue 15): malformed and extreme model files for every kind, run through the
//! built binary. Each case mutates a fast shipped model (a key set to a wrong type, NaN, inf,
//! a huge, negative or zero value, a nested table, a 10 kB string; a key removed or added; the
//! file replaced by garbage bytes or cut short) and asserts: exit 0, 1 or 2 only (no panic, no
//! abort), an error message naming the file, at most 30 s, and no allocation beyond a 3 GB
//! address-space limit (`ulimit -v`, with `--max-memory 1G`).
//!
//! CI runs `FUZZ_CASES` cases (default 40, ~20-40 s on two cores); a longer run:
//! `FUZZ_CASES=2000 cargo test --release --test fuzz`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use toml::Value;

/// Fast shipped models (each runs in well under a second) covering every kind.
const BASES: &[&str] = &[
    "default.toml",
    "linear-rotation.toml",
    "latent-rotation.toml",
    "rnn-seq-static.toml",
    "rnn-latent-xval.toml",
    "bias-approx-grad.toml",
    "bias-balance.toml",
    "bias-clusters.toml",
    "bias-diagonal.toml",
    "bias-margin.toml",
    "bias-modified-flow.toml",
    "bias-pattern.toml",
    "bias-saxe.toml",
    "bias-smoothed-margin.toml",
    "bias-width.toml",
    "bias-agreement.toml",
    "sweep-race.toml",
];

/// Overrides applied to a base before it is mutated, so that a mutation that leaves the model
/// valid but slows its convergence (eta = 5e-324, tol = 1e-300) runs into a small step cap
/// instead of the shipped one: (base, dotted key, TOML value).
const FAST: &[(&str, &str, &str)] = &[
    ("rnn-seq-static.toml", "training.max_steps", "300"),
    ("rnn-latent-xval.toml", "training.max_steps", "300"),
    ("bias-diagonal.toml", "max_steps", "200000"),
    ("bias-agreement.toml", "steps", "5000"),
    ("bias-agreement.toml", "n_test", "2000"),
    ("bias-approx-grad.toml", "samples", "50000"),
    ("latent-rotation.toml", "learning.max_steps", "20000"),
];

/// The base model's text with its [`FAST`] overrides.
fn base_text(base: &str) -> String {
    let text = std::fs::read_to_string(models().join(base)).unwrap();
    let mut t: toml::Table = text.parse().unwrap();
    for (_, key, v) in FAST.iter().filter(|(b, _, _)| *b == base) {
        let v: toml::Table = format!("v = {v}").parse().unwrap();
        let (parent, last) = parent_mut(&mut t, key);
        parent.insert(last, v["v"].clone());
    }
    toml::to_string(&t).unwrap()
}

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// Values that are wrong or extreme for almost every key.
fn value() -> impl Strategy<Value = Value> {
    let mut nested = toml::Table::new();
    let mut inner = toml::Table::new();
    inner.insert("b".into(), Value::Integer(1));
    nested.insert("a".into(), Value::Table(inner));
    prop_oneof![
        Just(Value::String("x".into())),
        Just(Value::String("k".repeat(10_000))),
        Just(Value::String("../../etc/x\n\"".into())),
        any::<bool>().prop_map(Value::Boolean),
        prop::sample::select(vec![0i64, -1, 1, 2, 1 << 40, i64::MAX, i64::MIN])
            .prop_map(Value::Integer),
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e308,
            -1e308,
            0.0,
            -0.0,
            5e-324,
            1e-300,
            -1.0,
            1e12,
        ])
        .prop_map(Value::Float),
        Just(Value::Array(vec![])),
        Just(Value::Array(vec![
            Value::Integer(1),
            Value::String("a".into())
        ])),
        Just(Value::Array(vec![Value::Float(1.0); 3])),
        Just(Value::Table(nested)),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, Value),
    Remove(usize),
    Add(usize, Value),
    Garbage(Vec<u8>),
    Truncate(usize),
    Twice(usize, Value, usize, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), value()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), value()).prop_map(|(i, v)| Mutation::Add(i, v)),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Mutation::Garbage),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), value(), any::<usize>(), value())
            .prop_map(|(i, v, j, w)| Mutation::Twice(i, v, j, w)),
    ]
}

/// Every dotted path of a table (keys of nested tables included, tables themselves too).
fn paths(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        out.push(p.clone());
        if let Value::Table(inner) = v {
            paths(inner, &p, out);
        }
    }
}

fn parent_mut<'a>(t: &'a mut toml::Table, path: &str) -> (&'a mut toml::Table, String) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap().to_string();
    let mut t = t;
    for p in parts {
        t = t.get_mut(p).unwrap().as_table_mut().unwrap();
    }
    (t, last)
}

fn set(t: &mut toml::Table, i: usize, v: Value) {
    let mut ps = vec![];
    paths(t, "", &mut ps);
    let (parent, key) = parent_mut(t, &ps[i % ps.len()]);
    parent.insert(key, v);
}

/// The mutated file's bytes.
fn mutate(text: &str, m: &Mutation) -> Vec<u8> {
    let mut t: toml::Table = text.parse().unwrap();
    match m {
        Mutation::Garbage(b) => return b.clone(),
        Mutation::Truncate(i) => return text.as_bytes()[..i % text.len()].to_vec(),
        Mutation::Set(i, v) => set(&mut t, *i, v.clone()),
        Mutation::Twice(i, v, j, w) => {
            set(&mut t, *i, v.clone());
            set(&mut t, *j, w.clone());
        }
        Mutation::Remove(i) => {
            let mut ps = vec![];
            paths(&t, "", &mut ps);
            let (parent, key) = parent_mut(&mut t, &ps[i % ps.len()]);
            parent.remove(&key);
        }
        Mutation::Add(i, v) => {
            let mut ps = vec![String::new()];
            paths(&t, "", &mut ps);
            let p = &ps[i % ps.len()];
            let target = if p.is_empty() {
                &mut t
            } else {
                let (parent, key) = parent_mut(&mut t, p);
                match parent.get_mut(&key) {
                    Some(Value::Table(inner)) => inner,
                    _ => parent,
                }
            };
            target.insert("fuzz_unknown_key".into(), v.clone());
        }
    }
    match toml::to_string(&t) {
        Ok(s) => s.into_bytes(),
        Err(_) => b"kind = \"latent\"\n[[".to_vec(),
    }
}

fn verb(text: &str) -> &'static str {
    if text.contains("kind = \"sweep\"") {
        "sweep"
    } else if text.contains("kind = \"linear2x2\"") || text.contains("kind = \"latent\"") {
        "predict"
    } else {
        "train"
    }
}

fn run_case(base: &str, m: &Mutation, n: u64) -> Result<(), TestCaseError> {
    let dir = std::env::temp_dir().join(format!("modeflow-fuzz-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(models().join("default.toml"), dir.join("default.toml")).unwrap();
    let text = base_text(base);
    let file = dir.join(format!("fuzz-{base}"));
    std::fs::write(&file, mutate(&text, m)).unwrap();
    let bin = env!("CARGO_BIN_EXE_modeflow");
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -v 3000000; exec \"$0\" \"$@\"")
        .arg(bin)
        .args(["--max-memory", "1G", verb(&text)])
        .arg(&file)
        .args(if verb(&text) == "predict" {
            vec![]
        } else {
            vec!["--out".to_string(), dir.join("out").display().to_string()]
        })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("RAYON_NUM_THREADS", "2");
    let mut child = c.spawn().unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(TestCaseError::fail(format!("{base}: {m:?} ran over 30 s")));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let code = status.code();
    prop_assert!(
        matches!(code, Some(0..=2)),
        "{base}: {m:?}: exit {code:?} (signal?)\n{err}"
    );
    prop_assert!(!err.contains("panicked"), "{base}: {m:?}: {err}");
    if err.contains("error:") {
        prop_assert!(
            err.contains(&dir.display().to_string()) || err.contains("fuzz-"),
            "{base}: {m:?}: the message names no file: {err}"
        );
    }
    prop_assert!(
        err.len() < 20_000,
        "{base}: {m:?}: {} bytes of stderr",
        err.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn malformed_and_extreme_model_files(b in 0..BASES.len(), m in mutation()) {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        run_case(BASES[b], &m, n)?;
    }
}

/// Every kind at least once, with the same wrong value in its first key: a deterministic
/// floor under the random cases.
#[test]
fn every_kind_rejects_a_wrong_type_in_its_first_key() {
    for (n, base) in BASES.iter().enumerate() {
        for v in [Value::String("x".into()), Value::Float(f64::NAN)] {
            // path 0 is `kind`; the first family key follows the common keys
            for i in 1..4 {
                run_case(base, &Mutation::Set(i, v.clone()), 1_000_000 + n as u64).unwrap();
            }
        }
    }
}
