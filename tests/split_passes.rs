//! `MODEFLOW_SPLIT_PASSES` (`rnn::bptt::split`): splitting batch-1 passes over two threads
//! changes no bit of `train`'s output, and an unknown value is bad input (exit 2).

use std::process::Command;

fn train(model: &str, split: &str, threads: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_modeflow"))
        .args(["train", model, "--json", "-q"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MODEFLOW_SPLIT_PASSES", split)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .unwrap()
}

/// The shipped rotation model (N = 200, batch 1, 3 seeds): split on two threads, the JSON
/// report equals the one of whole passes on one thread byte for byte.
#[test]
fn split_passes_give_the_same_report_bit_for_bit() {
    let model = "models/rnn-rotation.toml";
    let whole = train(model, "off", "1");
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let split = train(model, "on", "2");
    assert!(
        split.status.success(),
        "{}",
        String::from_utf8_lossy(&split.stderr)
    );
    assert!(whole.stdout == split.stdout, "reports differ");
}

#[test]
fn unknown_split_policy_exits_2() {
    let out = train("models/rnn-rotation.toml", "yes", "1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("MODEFLOW_SPLIT_PASSES") && err.contains("on | off"),
        "{err}"
    );
}
