//! The learning rules from the command line (issue 13): `predict models/linear-eprop.toml`
//! reports the e-prop race with the same JSON keys as the gradient flow, `train
//! models/rnn-eprop.toml` trains with e-prop and puts interference beside the 2x2 prediction,
//! and bad rule keys exit 2 naming the file and the field.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modeflow"))
}

fn model(name: &str) -> String {
    format!("{}/models/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn temp_model(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("modeflow-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn json(args: &[&str]) -> serde_json::Value {
    let o = bin().args(args).arg("--json").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn predict_reports_the_eprop_race_with_the_same_keys() {
    let v = json(&["predict", &model("linear-eprop.toml")]);
    let r = &v["result"];
    assert_eq!(r["rule"], "eprop");
    assert_eq!(r["winner"], "new_formation");
    // E-2 closed form: I = 0.135164, tau_B = 5.80010 (the report's ODE, to 1e-6)
    let i = r["interference"].as_f64().unwrap();
    let t = r["task_b"]["t"].as_f64().unwrap();
    assert!((i / 0.135164 - 1.0).abs() < 1e-5, "{i}");
    assert!((t / 5.80010 - 1.0).abs() < 1e-5, "{t}");
    assert!(r["eprop"]["gradient_interference"].as_f64().unwrap() > 170.0);
    for key in ["t_new", "t_rot", "t_a", "fixed_points", "race"] {
        assert!(r.get(key).is_some(), "missing {key}");
    }
    // the gradient model keeps its numbers
    let g = json(&["predict", &model("linear-rotation.toml")]);
    assert_eq!(g["result"]["rule"], "gradient");
    let ig = g["result"]["interference"].as_f64().unwrap();
    assert!((ig / 174.13 - 1.0).abs() < 1e-3, "{ig}");
}

#[test]
fn train_reports_eprop_interference_beside_the_2x2_prediction() {
    let o = bin()
        .args(["train", &model("rnn-eprop.toml")])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out.matches("I vs linear 2x2 (eprop)").count(), 4, "{out}");
    assert!(!out.contains("fail "), "{out}");
}

#[test]
fn bad_rule_keys_exit_2_naming_the_field() {
    let base = std::fs::read_to_string(model("rnn-eprop.toml")).unwrap();
    let cases = [
        (
            base.replace("rule = \"eprop\"", "rule = \"hebb\""),
            "training.rule",
        ),
        (
            base.replace("rule = \"eprop\"", "rule = \"tbptt\"\ntruncation = 0"),
            "training.truncation",
        ),
        (
            base.replace(
                "rule = \"eprop\"",
                "rule = \"random_eprop\"\nfeedback_alignment = -0.1",
            ),
            "training.feedback_alignment",
        ),
        (
            base.replace(
                "rule = \"eprop\"",
                "rule = \"node_perturbation\"\nperturbation_sigma = 0",
            ),
            "training.perturbation_sigma",
        ),
        (
            base.replace(
                "rule = \"eprop\"",
                "rule = \"node_perturbation\"\nperturbation_samples = -3",
            ),
            "training.perturbation_samples",
        ),
        (
            base.replace("rule = \"eprop\"", "rule = \"eprop\"\ntruncation = 5"),
            "training.truncation",
        ),
    ];
    for (i, (text, field)) in cases.iter().enumerate() {
        let p = temp_model(&format!("bad{i}.toml"), text);
        let o = bin().arg("train").arg(&p).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{field}: {err}");
        assert!(
            err.contains(field) && err.contains(&format!("bad{i}.toml")),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // a rule the model kind lacks: linear2x2 knows gradient | eprop only
    let p = temp_model(
        "lin.toml",
        "kind = \"linear2x2\"\nr = 0.3\neps = 0.05\nrule = \"tbptt\"\n",
    );
    let o = bin().arg("predict").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rule") && err.contains("gradient | eprop"),
        "{err}"
    );
    // and the latent kind has no rule at all
    let p = temp_model(
        "lat.toml",
        &std::fs::read_to_string(model("latent-rotation.toml"))
            .unwrap()
            .replace("kind = \"latent\"", "kind = \"latent\"\nrule = \"eprop\""),
    );
    let o = bin().arg("predict").arg(&p).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("rule"), "{err}");
}

#[test]
fn latent_eprop_model_predicts_more_forgetting_than_the_gradient() {
    // issue 13: `rule` for kind latent; the shipped model is the E-3 regime (tanh, own loss,
    // u_s = 0), where e-prop forgets ~10x more than the gradient (E-3's latent rows)
    let v = json(&["predict", &model("latent-eprop.toml")]);
    assert_eq!(v["result"]["spec"]["rule"], "eprop");
    let ie = v["result"]["sequential"]["interference"].as_f64().unwrap();
    let text = std::fs::read_to_string(model("latent-eprop.toml"))
        .unwrap()
        .replace("rule = \"eprop\"", "rule = \"gradient\"");
    let path = temp_model("latent-gradient.toml", &text);
    let g = json(&["predict", path.to_str().unwrap()]);
    assert_eq!(g["result"]["spec"]["rule"], "gradient");
    let ig = g["result"]["sequential"]["interference"].as_f64().unwrap();
    assert!(ie > 5.0 * ig, "e-prop I {ie} vs gradient I {ig}");
}
