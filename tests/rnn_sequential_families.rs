//! `modeflow train` on the sequential protocol across task families: the shipped
//! `models/rnn-seq-flipflop-wm.toml` (A = 1-bit flip-flop on a, B = working memory on b) runs
//! from the CLI and its JSON carries finite losses, I, eps and the per-step record; the static
//! family on a then b (`models/rnn-seq-static.toml`) learns both maps with little interference,
//! by a B update along a b^T; a model mixing `[task]` with `[task_a]` is bad input (exit code 2).

use std::path::Path;
use std::process::Command;

fn modeflow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_modeflow"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap()
}

fn finite(v: &serde_json::Value, key: &str) -> f64 {
    let x = v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"));
    assert!(x.is_finite(), "{key} = {x}");
    x
}

#[test]
fn flip_flop_then_working_memory_from_the_cli() {
    let out = modeflow(&["train", "models/rnn-seq-flipflop-wm.toml", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["model"]["file"], "models/rnn-seq-flipflop-wm.toml");
    assert!(j["model"]["text"].as_str().unwrap().contains("[task_a]"));
    assert!(j["seed"].is_number());
    let r = &j["result"];
    assert_eq!(r["spec"]["task"]["family"], "flip_flop");
    assert_eq!(r["spec"]["task"]["channels"], "a");
    assert_eq!(r["spec"]["task_b"]["family"], "working_memory");
    assert_eq!(r["spec"]["task_b"]["pattern"], 1);
    let runs = r["runs"].as_array().unwrap();
    assert!(!runs.is_empty());
    for run in runs {
        let q = &run["sequential"];
        let l0 = finite(q, "loss_a_untrained");
        let l_after_a = finite(q, "loss_a_after_a");
        let l_after_b = finite(q, "loss_a_after_b");
        finite(q, "loss_b_before_b");
        let lb = finite(q, "loss_b_after_b");
        let i = finite(q, "interference");
        finite(q, "eps");
        finite(q, "eps_cos");
        assert_eq!(q["converged_a"], true);
        assert_eq!(q["converged_b"], true);
        // both tasks learned (the flip-flop on fixed evaluation trials: within 2 x tol)
        assert!(
            l_after_a < l0 && l_after_a < 4e-3,
            "L_A after A = {l_after_a}"
        );
        assert!(lb < 2e-3, "L_B after B = {lb}");
        // I = L_A(after B) / L_A(untrained), to rounding
        assert!((i - l_after_b / l0).abs() <= 1e-14 * i.abs());
        // the record: every `record_every` = 10 steps of A, then of B, from step 0
        let (sa, sb) = (
            q["steps_a"].as_u64().unwrap() as usize,
            q["steps_b"].as_u64().unwrap() as usize,
        );
        let rec = q["records"].as_array().unwrap();
        let n_a = rec.iter().filter(|x| x["phase"] == "A").count();
        let n_b = rec.iter().filter(|x| x["phase"] == "B").count();
        assert_eq!((n_a, n_b), (sa / 10 + 1, sb / 10 + 1));
        for x in rec {
            for key in ["loss_a", "loss_b", "dw_norm", "rotation", "new_formation"] {
                finite(x, key);
            }
        }
        let first_b = rec.iter().find(|x| x["phase"] == "B").unwrap();
        assert_eq!(first_b["dw_norm"].as_f64(), Some(0.0));
        assert_eq!(first_b["loss_a"].as_f64(), Some(l_after_a));
        // task A is not working memory: the tracking is skipped, with a note, not an error
        assert!(run["tracking"].is_null());
        assert!(run["fixed_point_error"].is_null());
        assert!(run["fixed_point_note"]
            .as_str()
            .unwrap()
            .contains("flip_flop"));
    }
}

#[test]
fn static_then_static_from_the_cli() {
    let out = modeflow(&["train", "models/rnn-seq-static.toml", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &j["result"];
    // `[task]` alone: the same family on pattern a (A), then on pattern b (B)
    assert_eq!(r["spec"]["task"]["family"], "static");
    assert_eq!(r["spec"]["task"]["pattern"], 0);
    assert_eq!(r["spec"]["task_b"]["family"], "static");
    assert_eq!(r["spec"]["task_b"]["pattern"], 1);
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for run in runs {
        let q = &run["sequential"];
        assert_eq!(q["converged_a"], true);
        assert_eq!(q["converged_b"], true);
        let l0 = finite(q, "loss_a_untrained");
        let i = finite(q, "interference");
        assert!((i - finite(q, "loss_a_after_b") / l0).abs() <= 1e-14 * i.abs());
        // measured I = 0.017, 0.008, 0.006 for the three seeds: B leaves A's map nearly intact
        assert!(i < 0.05, "I = {i}");
        // the B map (input b -> readout a) is learned by a b^T: M_eff(B)[a][b] dominates
        let m = q["m_eff_b"].as_array().unwrap();
        let e = |i: usize, k: usize| m[i][k].as_f64().unwrap().abs();
        assert!(
            e(0, 1) > 3.0 * e(0, 0).max(e(1, 0)).max(e(1, 1)),
            "M_eff(B) = {m:?}"
        );
        assert!(run["tracking"].is_null());
    }
}

#[test]
fn task_beside_task_a_is_bad_input() {
    let dir = std::env::temp_dir().join(format!("modeflow-seqfam-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("mixed.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/rnn-seq-flipflop-wm.toml"),
    )
    .unwrap()
    .replace("[task_a]", "[task]\nfamily = \"static\"\n\n[task_a]");
    std::fs::write(&p, text).unwrap();
    let out = modeflow(&["train", p.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("task_a") && stderr.contains("[task_b]"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
