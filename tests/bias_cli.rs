//! `modeflow train` on the implicit-bias model kinds, as a user meets it: every shipped
//! `models/bias-*.toml` runs to exit 0 and writes its CSV; bad input (inconsistent shapes, a
//! non-separable set where separability is required, a diverging step size) gives a one-line
//! error naming the cause, exit 2 (bad input) or 1 (diverged), no panic and no CSV.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modeflow"))
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("modeflow-bias-cli-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `modeflow train PATH --out DIR(PATH)`: the model's `csv` is written under the model's
/// directory.
fn train(path: &Path, json: bool) -> Output {
    let mut c = bin();
    c.arg("train")
        .arg(path)
        .arg("--out")
        .arg(path.parent().unwrap());
    if json {
        c.arg("--json");
    }
    c.output().unwrap()
}

/// Shipped model files with their fast overrides (key, TOML value) for this test; an empty list
/// runs the file as shipped.
const SHIPPED: &[(&str, &[(&str, &str)])] = &[
    ("bias-agreement-check.toml", &[]),
    (
        "bias-agreement.toml",
        &[("steps", "5000"), ("n_test", "2000")],
    ),
    ("bias-approx-grad-check.toml", &[("samples", "50000")]),
    ("bias-approx-grad.toml", &[("samples", "50000")]),
    ("bias-balance-check.toml", &[]),
    (
        "bias-balance-drift.toml",
        &[
            ("drift_etas", "[0.004, 0.002, 0.001]"),
            ("drift_seeds", "4"),
        ],
    ),
    ("bias-balance.toml", &[("steps", "500")]),
    ("bias-clusters-long.toml", &[("steps", "20000")]),
    ("bias-clusters.toml", &[]),
    ("bias-diagonal-gd.toml", &[]),
    ("bias-diagonal-mirror.toml", &[]),
    ("bias-diagonal-sgd.toml", &[]),
    ("bias-diagonal.toml", &[]),
    ("bias-margin.toml", &[]),
    ("bias-modified-flow-order.toml", &[]),
    ("bias-modified-flow.toml", &[]),
    ("bias-pattern-orthogonal.toml", &[]),
    ("bias-pattern.toml", &[]),
    ("bias-rnn-balance.toml", &[]),
    ("bias-saxe-check.toml", &[]),
    ("bias-saxe.toml", &[]),
    ("bias-smoothed-margin-long.toml", &[("steps", "40000")]),
    ("bias-smoothed-margin.toml", &[]),
    (
        "bias-student-clusters.toml",
        &[("steps", "20000"), ("n_test", "2000")],
    ),
    (
        "bias-student-reference.toml",
        &[("steps", "2000"), ("scan_steps", "1000")],
    ),
    ("bias-width-check.toml", &[("widths", "[1, 10, 100]")]),
    ("bias-width.toml", &[("widths", "[1, 10, 100]")]),
];

#[test]
fn every_shipped_bias_model_trains_and_writes_its_csv() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let dir = temp_dir("shipped");
    // every models/bias-*.toml is covered here
    let mut on_disk: Vec<String> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bias-") && n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let listed: Vec<String> = SHIPPED.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "tests/bias_cli.rs must list every shipped bias model"
    );
    for (name, overrides) in SHIPPED {
        let text = std::fs::read_to_string(models.join(name)).unwrap();
        let mut table: toml::Table = text.parse().unwrap();
        assert!(
            table.contains_key("csv"),
            "{name}: ships without a csv path"
        );
        for (k, v) in overrides.iter() {
            let v: toml::Table = format!("v = {v}").parse().unwrap();
            table.insert(k.to_string(), v["v"].clone());
        }
        let csv = dir.join(name.replace(".toml", ".csv"));
        table.insert(
            "csv".into(),
            toml::Value::String(name.replace(".toml", ".csv")),
        );
        let p = dir.join(name);
        std::fs::write(&p, toml::to_string(&table).unwrap()).unwrap();
        let out = train(&p, false);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{name}:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("verdict") && stdout.contains("pass"),
            "{name}: {stdout}"
        );
        assert!(!stdout.contains("FAIL"), "{name}: {stdout}");
        let data = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{name}: {e}"));
        let lines: Vec<&str> = data.lines().collect();
        assert!(lines.len() >= 2, "{name}: CSV has no data rows");
        let cols = lines[0].split(',').count();
        assert!(
            lines.iter().all(|l| l.split(',').count() == cols),
            "{name}: ragged CSV"
        );
    }
}

#[test]
fn json_output_carries_rows_and_verdicts() {
    let dir = temp_dir("json");
    let p = dir.join("saxe.toml");
    std::fs::write(
        &p,
        "kind = \"bias_saxe\"\nseed = 2\ns = [2.0, 1.0]\nu0 = [1e-3, 1e-3]\neta = 0.01\nsteps = 2000\n",
    )
    .unwrap();
    let out = train(&p, true);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v.to_string();
    for key in ["rows", "predicted", "measured", "verdict", "bias_saxe"] {
        assert!(s.contains(key), "{key} missing in {s}");
    }
    assert_eq!(v["seed"], 2, "{s}");
}

/// Run `modeflow train` on `text` (with a csv path added), expect exit `code`, a one-line error
/// containing every needle, no panic, nothing on stdout and no CSV.
fn expect_error(tag: &str, text: &str, code: i32, needles: &[&str]) {
    let dir = temp_dir("bad");
    let csv = dir.join(format!("{tag}.csv"));
    let p = dir.join(format!("{tag}.toml"));
    std::fs::write(&p, format!("{text}\ncsv = \"{tag}.csv\"\n")).unwrap();
    let out = train(&p, false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{tag}: stderr {err}");
    for n in needles {
        assert!(err.contains(n), "{tag}: expected `{n}` in: {err}");
    }
    assert_eq!(err.trim().lines().count(), 1, "{tag}: not one line: {err}");
    assert!(!err.contains("panicked"), "{tag}: {err}");
    assert!(out.stdout.is_empty(), "{tag}: wrote a report on failure");
    assert!(!csv.exists(), "{tag}: wrote a CSV on failure");
}

const AGREE: &str =
    "kind = \"bias_agreement\"\nk = 3\nalpha = 0.2\neta = 0.5\nsteps = 200\ninit = 1e-3\n";
const CLUSTERS: &str = "kind = \"bias_clusters\"\nk = 6\ninit = 1e-2\neta = 0.2\nsteps = 400\n";
const WIDTH: &str =
    "kind = \"bias_width\"\nalpha = 0.3\neta = 0.05\ninit = 1e-4\nwidths = [1, 10]\n";
const SMOOTH: &str =
    "kind = \"bias_smoothed_margin\"\nk = 5\ninit = 0.2\neta = 0.01\nsteps = 400\n";
const TEACHER: &str = "n = 20\nd = 3\nmargin = 0.2\n";
const RNN_BALANCE: &str = "kind = \"bias_rnn_balance\"\nneurons = 4\ninputs = 2\noutputs = 1\nt = 3\nbatch = 5\neta = 0.05\nsteps = 20\nidentity_seeds = [1, 2]\n";

#[test]
fn inconsistent_shapes_are_bad_input() {
    let cases: &[(&str, String, &[&str])] = &[
        (
            "agree_dims",
            format!("{AGREE}points = [[1.0, 0.5], [-1.0, 0.2, 0.3]]\nlabels = [1.0, -1.0]\n"),
            &["points[1]", "inconsistent shapes", "dimension 2"],
        ),
        (
            "agree_labels",
            format!("{AGREE}points = [[1.0, 0.5], [-1.0, 0.2]]\nlabels = [1.0]\n"),
            &["labels", "differ in length"],
        ),
        (
            "margin_labels",
            "kind = \"bias_margin\"\npoints = [[1.0, 1.0], [-1.0, 1.0]]\nlabels = [1.0, -1.0, 1.0]\neta = 1.0\nsteps = 100\n".into(),
            &["labels", "differ in length"],
        ),
        (
            "margin_dims",
            "kind = \"bias_margin\"\npoints = [[1.0, 1.0], [-1.0, 1.0, 2.0]]\nlabels = [1.0, -1.0]\neta = 1.0\nsteps = 100\n".into(),
            &["points[1]", "inconsistent shapes", "dimension 2"],
        ),
        (
            "clusters_dims",
            format!("{CLUSTERS}points = [[1.0, 0.0], [0.0, 1.0, 0.0]]\nlabels = [1.0, -1.0]\n"),
            &["points[1]", "inconsistent shapes"],
        ),
        (
            "width_labels",
            format!("{WIDTH}points = [[1.0, 0.0], [-1.0, 0.0]]\nlabels = [1.0, -1.0, 1.0]\n"),
            &["labels", "differ in length"],
        ),
        (
            "smooth_dims",
            format!("{SMOOTH}points = [[1.0, 0.0, 1.0], [-1.0, 0.0]]\nlabels = [1.0, -1.0]\n"),
            &["points[1]", "inconsistent shapes"],
        ),
        (
            "saxe_u0",
            "kind = \"bias_saxe\"\ns = [3.0, 2.0]\nu0 = [1e-3]\neta = 0.01\nsteps = 100\n".into(),
            &["u0", "inconsistent shapes"],
        ),
        (
            "flow_w0",
            "kind = \"bias_modified_flow\"\nw0 = [1.0, 2.0]\neps = [0.2, 0.1]\nhorizon = 2.0\n"
                .into(),
            &["w0", "3 entries", "inconsistent shapes"],
        ),
        (
            "flow_batches",
            "kind = \"bias_modified_flow\"\neps = [0.2, 0.1]\nhorizon = 2.0\nbatches = 5\n".into(),
            &["batches", "divisor of the number of points 12"],
        ),
        (
            "approx_h",
            "kind = \"bias_approx_grad\"\nh = [[1.0, 0.0], [0.0, 1.0, 0.0]]\ntheta = [1.0, 1.0]\nb = [0.0, 0.0]\na = [[0.1, 0.0], [0.0, 0.1]]\neta = 0.1\nsamples = 1000\n".into(),
            &["h[1]", "inconsistent shapes"],
        ),
        (
            "approx_b",
            "kind = \"bias_approx_grad\"\nh = [[1.0, 0.0], [0.0, 1.0]]\ntheta = [1.0, 1.0]\nb = [0.0]\na = [[0.1, 0.0], [0.0, 0.1]]\neta = 0.1\nsamples = 1000\n".into(),
            &["`b`", "inconsistent shapes"],
        ),
        (
            "rnn_balance_decays",
            format!("{RNN_BALANCE}identity_weight_decays = [0.0]\n"),
            &[
                "identity_weight_decays",
                "1 entries",
                "2 entries (one per identity seed)",
                "inconsistent shapes",
            ],
        ),
        (
            "rnn_balance_neurons",
            format!("{RNN_BALANCE}identity_weight_decays = [0.0, 0.1]\n")
                .replace("neurons = 4", "neurons = 5000"),
            &["`neurons`", "5000", "[1, 2000]"],
        ),
        (
            "balance_sweep_batch",
            "kind = \"bias_balance\"\nd = 3\nk = 2\nn = 5\nactivation = \"relu\"\nloss = \"square\"\neta = 0.1\nbatch = 5\nsteps = 10\nidentity_sweep = { activations = [\"relu\"], losses = [\"square\"], batches = [6], weight_decays = [0.0], eta = 0.05, steps = 10, seed = 1 }\n".into(),
            &["identity_sweep.batches[0]", "6", "[1, 5]"],
        ),
        (
            "saxe_map_mode",
            "kind = \"bias_saxe\"\ns = [3.0, 2.0]\nu0 = [1e-3, 1e-3]\neta = 0.01\nsteps = 100\nmap = { mode = 3, eta = 0.01, horizon = 1.0 }\n".into(),
            &["map.mode", "3", "[1, 2]"],
        ),
        (
            "balance_batch",
            "kind = \"bias_balance\"\nd = 3\nk = 2\nn = 5\nactivation = \"relu\"\nloss = \"square\"\neta = 0.1\nbatch = 6\nsteps = 10\n".into(),
            &["batch", "[1, 5]"],
        ),
        (
            "diagonal_underdetermined",
            "kind = \"bias_diagonal\"\nn = 10\nd = 5\nsparsity = 2\nalpha = 0.3\neta = 0.01\nbatch = 10\n".into(),
            &["`d`", "underdetermined"],
        ),
        (
            "pattern_odd_width",
            "kind = \"bias_pattern\"\ntask = \"xor\"\nt = 3\nwidths = [2, 5]\nseeds = [0, 1]\nn_train = 8\nn_test = 50\ninit = 0.01\neta = 0.1\nsteps = 10\n".into(),
            &["widths[1]", "even"],
        ),
    ];
    for (tag, text, needles) in cases {
        expect_error(tag, text, 2, needles);
    }
}

#[test]
fn unknown_keys_are_bad_input_for_every_new_kind() {
    for (tag, text) in [
        ("u_agree", AGREE.to_string()),
        ("u_clusters", CLUSTERS.to_string()),
        ("u_width", WIDTH.to_string()),
        ("u_smooth", SMOOTH.to_string()),
        (
            "u_flow",
            "kind = \"bias_modified_flow\"\neps = [0.2, 0.1]\nhorizon = 2.0\n".into(),
        ),
        (
            "u_rnn_balance",
            format!("{RNN_BALANCE}identity_weight_decays = [0.0, 0.1]\n"),
        ),
        (
            "u_saxe",
            "kind = \"bias_saxe\"\ns = [1.0]\nu0 = [0.1]\neta = 0.1\nsteps = 10\n".into(),
        ),
        (
            "u_approx",
            "kind = \"bias_approx_grad\"\nd = 2\ncases = 1\nlambda_max = 1.0\nbias = 0.1\nnoise = 0.1\neta = 0.1\nsamples = 1000\n".into(),
        ),
        (
            "u_pattern",
            "kind = \"bias_pattern\"\ntask = \"xor\"\nt = 3\nwidths = [2, 4]\nseeds = [0, 1]\nn_train = 8\nn_test = 50\ninit = 0.01\neta = 0.1\nsteps = 10\n".into(),
        ),
    ] {
        expect_error(tag, &format!("{text}etaa = 1.0\n"), 2, &["unknown field `etaa`"]);
    }
}

#[test]
fn non_separable_data_is_bad_input() {
    // (1, 0) labelled + and (2, 0) labelled -: no hyperplane through the origin separates them
    let xs = "points = [[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]\nlabels = [1.0, -1.0, 1.0]\n";
    expect_error(
        "sep_margin",
        &format!("kind = \"bias_margin\"\neta = 1.0\nsteps = 1000\n{xs}"),
        2,
        &["not linearly separable"],
    );
    expect_error(
        "sep_agree",
        &format!("{AGREE}{xs}"),
        2,
        &[
            "points",
            "not linearly separable",
            "B-5 needs linearly separable data",
        ],
    );
    expect_error(
        "sep_origin",
        "kind = \"bias_margin\"\neta = 1.0\nsteps = 100\npoints = [[0.0, 0.0], [1.0, 1.0]]\nlabels = [1.0, -1.0]\n",
        2,
        &["`points`/`labels`", "point at the origin"],
    );
    expect_error(
        "sep_one_class",
        &format!("{CLUSTERS}points = [[1.0, 0.0], [2.0, 0.5]]\nlabels = [1.0, 1.0]\n"),
        2,
        &["labels", "both classes"],
    );
    expect_error(
        "sep_width",
        &format!("{WIDTH}{xs}"),
        2,
        &["not linearly separable", "zero hinge loss"],
    );
    // separable, but not orthogonally: (1, 1) . (1, 0.2) > 0 across the classes
    expect_error(
        "sep_clusters",
        &format!(
            "{CLUSTERS}points = [[1.0, 1.0], [1.0, 0.2], [0.9, 1.2]]\nlabels = [1.0, -1.0, 1.0]\n"
        ),
        2,
        &["not orthogonally separable", "points[0] . points[1]"],
    );
}

#[test]
fn diverging_step_sizes_name_the_step_and_exit_1() {
    expect_error(
        "div_balance",
        "kind = \"bias_balance\"\nd = 3\nk = 2\nn = 5\nactivation = \"linear\"\nloss = \"square\"\neta = 80.0\nbatch = 5\nsteps = 100\n",
        1,
        &["diverged at step", "reduce the step size eta"],
    );
    expect_error(
        "div_saxe",
        "kind = \"bias_saxe\"\ns = [3.0, 1.0]\nu0 = [1e-3, 1e-3]\neta = 2.0\nsteps = 200\n",
        1,
        &["aligned linear net GD diverged at step", "reduce eta = 2"],
    );
    expect_error(
        "div_flow",
        "kind = \"bias_modified_flow\"\neps = [100.0, 50.0]\nhorizon = 5000.0\n",
        1,
        &[
            "GD with eps = 100 (lambda 0.05) diverged at step",
            "use a smaller eps",
        ],
    );
    expect_error(
        "div_smooth",
        &format!("{}{TEACHER}", SMOOTH.replace("eta = 0.01", "eta = 500.0")),
        1,
        &["smoothed-margin GD diverged at step", "reduce eta"],
    );
}

#[test]
fn impossible_teacher_margins_are_bad_input() {
    // rejection sampling on the unit sphere would never finish
    expect_error(
        "margin_sphere",
        &format!("{WIDTH}n = 10\nd = 200\nmargin = 0.9\n"),
        2,
        &["`margin` = 0.9", "rejection sampling would not end"],
    );
    // margin 0: no gap between the classes
    expect_error(
        "margin_zero",
        &format!("{AGREE}n = 10\nd = 3\nmargin = 0.0\n"),
        2,
        &["`margin` = 0", "(0, 2)"],
    );
}

#[test]
fn drift_and_figure_keys_are_checked_before_any_run() {
    let balance = "kind = \"bias_balance\"\nd = 3\nk = 4\nn = 10\nactivation = \"relu\"\nloss = \"square\"\neta = 0.01\nbatch = 5\nsteps = 10\n";
    expect_error(
        "drift_increasing",
        &format!("{balance}drift_etas = [0.002, 0.004]\n"),
        2,
        &["drift_etas[1]", "0.004", "decrease"],
    );
    expect_error(
        "drift_one",
        &format!("{balance}drift_etas = [0.002]\n"),
        2,
        &["drift_etas", "at least 2"],
    );
    expect_error(
        "drift_budget",
        &format!("{balance}drift_etas = [1e-3, 1e-12]\n"),
        2,
        &["drift_etas"],
    );
    expect_error(
        "figure_eta",
        "kind = \"bias_margin\"\neta = 1.0\nsteps = 100\nfigure_etas = [0.5, -1.0]\n",
        2,
        &["figure_etas[1]", "-1"],
    );
}

#[test]
fn validate_checks_every_bias_kind_without_training() {
    // a run of 1e8 steps would take minutes: validation must answer at once, and completely
    let text = "kind = \"bias_clusters\"\nn = 30\nd = 6\nk = 20\ninit = 1e-2\neta = 0.2\nsteps = 100000000\n";
    let m = modeflow::model::parse("big.toml", text).unwrap();
    let t = std::time::Instant::now();
    assert!(modeflow::run::validate(&m).unwrap());
    assert!(t.elapsed().as_secs_f64() < 1.0, "{:?}", t.elapsed());
    // bad input names the field (exit-2 class), still without running
    for (text, field) in [
        (
            "kind = \"bias_width\"\nn = 20\nd = 3\nmargin = 0.1\nalpha = 0.3\neta = 0.05\ninit = 0.0\nwidths = [5]\n",
            "widths",
        ),
        (
            "kind = \"bias_saxe\"\ns = [1.0, 2.0]\nu0 = [1e-3]\neta = 0.01\nsteps = 100\n",
            "u0",
        ),
        (
            "kind = \"bias_rnn_balance\"\nneurons = 4\ninputs = 2\noutputs = 1\nt = 3\nbatch = 5\neta = 0.05\nsteps = 100000000\nidentity_seeds = [1]\nidentity_weight_decays = [0.0, 0.1]\n",
            "identity_weight_decays",
        ),
        (
            "kind = \"bias_pattern\"\ntask = \"xor\"\nt = 4\nwidths = [2, 8]\nseeds = [0, 1]\nn_train = 12\nn_test = 100\ninit = 1e-2\neta = -0.1\nsteps = 10\n",
            "eta",
        ),
    ] {
        let m = modeflow::model::parse("bad.toml", text).unwrap();
        match modeflow::run::validate(&m) {
            Err(e @ modeflow::Error::Parameter { .. }) => {
                let s = e.to_string();
                assert!(s.contains("bad.toml") && s.contains(field), "{s}");
                assert_eq!(e.exit_code(), 2, "{s}");
            }
            other => panic!("{field}: expected a parameter error, got {other:?}"),
        }
    }
}
