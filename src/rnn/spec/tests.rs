use super::*;
use crate::model::parse;
use crate::rnn::task::{Channels, LossKind};
use crate::Error;

/// issue 15: t_d = 1e308 panicked (capacity overflow in Trials::zeros), n = 20000 aborted
/// cloning the network, t_d = 1e6 / 1e12 and dt = 1e-4 with t_d = 1e4 aborted allocating
/// the trajectories, flip-flop and static t_max = 1e12 likewise: all are rejected by the
/// budget, naming the field.
#[test]
fn budgets_reject_huge_rnn_models_before_allocating() {
    let cases = [
        (GOOD.replace("t_d = 5.0", "t_d = 1e308"), "task.t_d"),
        (
            GOOD.replace("t_d = 5.0", "t_d = 5.0\nt_in = 1e308"),
            "task.t_in",
        ),
        (GOOD.replace("t_d = 5.0", "t_d = 1e6"), "task.t_d"),
        (GOOD.replace("t_d = 5.0", "t_d = 1e12"), "task.t_d"),
        (GOOD.replace("n = 50", "n = 20000"), "network.n"),
        (
            GOOD.replace("t_d = 5.0", "t_d = 1e4")
                .replace("[network]", "[network]\ndt = 1e-4"),
            "task.t_d",
        ),
        (
            GOOD.replace(
                "family = \"working_memory\"\nt_d = 5.0",
                "family = \"flip_flop\"\nt_max = 1e12",
            )
            .replace("lr = 1.0", "lr = 1.0\nprotocol = \"single\""),
            "task.t_max",
        ),
        (
            GOOD.replace(
                "family = \"working_memory\"\nt_d = 5.0",
                "family = \"static\"\nt_max = 1e12",
            ),
            "task.t_max",
        ),
    ];
    for (text, field) in cases {
        assert!(text.contains("kind"), "{text}");
        let m = parse("big.toml", &text).unwrap();
        match check(&m) {
            Err(Error::Parameter { field: f, file, .. }) => {
                assert_eq!((f.as_str(), file.as_str()), (field, "big.toml"), "{text}")
            }
            other => panic!("{field}: {other:?}\n{text}"),
        }
    }
}

#[test]
fn shipped_rnn_models_fit_the_default_budget() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = crate::model::load(&p).unwrap();
        if m.common.kind == "rnn" {
            check(&m).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

const GOOD: &str = r#"
kind = "rnn"
seed = 3
[network]
n = 50
g = 0.5
[task]
family = "working_memory"
t_d = 5.0
[training]
lr = 1.0
"#;

#[test]
fn defaults_fill_in() {
    let m = parse("t.toml", GOOD).unwrap();
    let s = check(&m).unwrap();
    assert_eq!(s.network.n, 50);
    assert_eq!(s.protocol, Protocol::Sequential);
    assert_eq!(s.seed, 3);
    assert_eq!(s.working_memory().unwrap().loss, LossKind::Aligned);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (GOOD.replace("g = 0.5", "g = -1.0"), "network.g"),
        (GOOD.replace("lr = 1.0", "lr = 0.0"), "training.lr"),
        (GOOD.replace("t_d = 5.0", "t_d = 5.0\nu = 1.0"), "task.u"),
        (
            GOOD.replace("lr = 1.0", "lr = 1.0\noptimizer = \"lbfgs\""),
            "training.optimizer",
        ),
        (
            GOOD.replace("lr = 1.0", "lr = 1.0\nrule = \"gradient\""),
            "training.rule",
        ),
        (
            GOOD.replace("lr = 1.0", "lr = 1.0\nrule = \"tbptt\"\ntruncation = 0"),
            "training.truncation",
        ),
        (
            GOOD.replace("lr = 1.0", "lr = 1.0\nfeedback_alignment = 0.5"),
            "training.feedback_alignment",
        ),
        (
            GOOD.replace(
                "family = \"working_memory\"\nt_d = 5.0",
                "family = \"flip_flop\"\nchannels = \"a\"",
            ),
            "task.channels",
        ),
    ];
    for (text, field) in cases {
        let m = parse("t.toml", &text).unwrap();
        match check(&m) {
            Err(Error::Parameter { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected a parameter error, got {other:?}"),
        }
    }
    let m = parse("t.toml", &GOOD.replace("n = 50", "n = 50\nwidth = 3")).unwrap();
    assert!(matches!(check(&m), Err(Error::ModelFile { .. })));
}

#[test]
fn modified_flow_keys_are_checked() {
    let mf = |extra: &str| {
        GOOD.replace(
            "lr = 1.0",
            &format!("optimizer = \"modified_flow\"\n{extra}"),
        )
    };
    let s = check(&parse("t.toml", &mf("eta = 0.25")).unwrap()).unwrap();
    assert_eq!(
        s.train.optimizer,
        Optimizer::ModifiedFlow {
            eta: 0.25,
            rtol: Optimizer::FLOW_RTOL,
            atol: None
        }
    );
    assert!(s.train.optimizer.is_flow());
    let cases = [
        (mf(""), "training.eta"),
        (mf("eta = 0.0"), "training.eta"),
        (mf("eta = -0.5"), "training.eta"),
        (mf("eta = 9.0"), "training.eta"),
        (mf("eta = nan"), "training.eta"),
        (mf("eta = 0.5\nflow_rtol = 0.0"), "training.flow_rtol"),
        (
            GOOD.replace("lr = 1.0", "lr = 1.0\neta = 0.5"),
            "training.eta",
        ),
    ];
    for (text, field) in cases {
        let m = parse("t.toml", &text).unwrap();
        match check(&m) {
            Err(Error::Parameter {
                field: f, value, ..
            }) => {
                assert_eq!(f, field, "value {value}")
            }
            other => panic!("{field}: expected a parameter error, got {other:?}"),
        }
    }
}

#[test]
fn flow_keys_are_checked() {
    let flow = |extra: &str| GOOD.replace("lr = 1.0", &format!("optimizer = \"flow\"\n{extra}"));
    // defaults: no lr needed, rtol 1e-6, atol from N
    let s = check(&parse("t.toml", &flow("")).unwrap()).unwrap();
    assert_eq!(s.train.optimizer, Optimizer::FLOW);
    assert_eq!(s.train.lr, 0.0);
    let s = check(
        &parse(
            "t.toml",
            &flow("flow_rtol = 1e-6\nflow_atol = 1e-9\nlr = 0.5"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        s.train.optimizer,
        Optimizer::Flow {
            rtol: 1e-6,
            atol: Some(1e-9)
        }
    );
    assert_eq!(s.train.lr, 0.5);
    assert_eq!(s.train.flow_method, FlowMethod::Dopri);
    for (name, m) in [("rkc", FlowMethod::Rkc), ("dopri", FlowMethod::Dopri)] {
        let text = flow(&format!("flow_method = \"{name}\""));
        let s = check(&parse("t.toml", &text).unwrap()).unwrap();
        assert_eq!(s.train.flow_method, m);
    }
    let cases = [
        (flow("flow_method = \"rk4\""), "training.flow_method"),
        (
            GOOD.replace("lr = 1.0", "lr = 1.0\nflow_method = \"rkc\""),
            "training.flow_method",
        ),
        (flow("flow_rtol = 0.0"), "training.flow_rtol"),
        (flow("flow_rtol = -1e-4"), "training.flow_rtol"),
        (flow("flow_rtol = nan"), "training.flow_rtol"),
        (flow("flow_rtol = inf"), "training.flow_rtol"),
        (flow("flow_atol = -1.0"), "training.flow_atol"),
        (flow("flow_atol = nan"), "training.flow_atol"),
        // the tolerances belong to the flow alone
        (
            GOOD.replace("lr = 1.0", "lr = 1.0\nflow_rtol = 1e-4"),
            "training.flow_rtol",
        ),
        // the stepping rules need a rate
        (
            GOOD.replace("lr = 1.0", "optimizer = \"gd\""),
            "training.lr",
        ),
        // a random task needs fresh batches, not the flow
        (
            flow("").replace("t_d = 5.0", "t_d = 5.0\nsigma0 = 0.1"),
            "task.sigma0",
        ),
        (
            flow("").replace(
                "family = \"working_memory\"\nt_d = 5.0",
                "family = \"flip_flop\"",
            ),
            "task.family",
        ),
        (
            TWO.replace("lr = 0.01", "optimizer = \"flow\""),
            "task_a.family",
        ),
    ];
    for (text, field) in cases {
        let m = parse("t.toml", &text).unwrap();
        match check(&m) {
            Err(e @ Error::Parameter { .. }) => {
                assert_eq!(e.exit_code(), 2);
                let msg = e.to_string();
                assert!(msg.starts_with("t.toml: field `"), "{msg}");
                let Error::Parameter { field: f, .. } = e else {
                    unreachable!()
                };
                assert_eq!(f, field, "{text}");
            }
            other => panic!("{field}: expected a parameter error, got {other:?}"),
        }
    }
}

/// A model with tables A and B (flip-flop then working memory).
const TWO: &str = r#"
kind = "rnn"
[network]
n = 50
[task_a]
family = "flip_flop"
t_max = 10.0
[task_b]
family = "working_memory"
t_d = 5.0
[training]
lr = 0.01
"#;

#[test]
fn one_task_table_is_the_same_task_on_a_then_b() {
    let s = check(&parse("t.toml", GOOD).unwrap()).unwrap();
    assert!(!s.separate_tasks);
    let (Task::WorkingMemory(a), Some(Task::WorkingMemory(b))) = (s.task, s.task_b) else {
        panic!("expected working memory for A and B: {s:?}");
    };
    assert_eq!((a.pattern, b.pattern), (0, 1));
    assert_eq!(WorkingMemory { pattern: 0, ..b }, a);
    assert_eq!(s.working_memory(), Some(a));
    // the same task for the static and flip-flop families, bound to a then b
    let ff = GOOD.replace(
        "family = \"working_memory\"\nt_d = 5.0",
        "family = \"flip_flop\"",
    );
    let s = check(&parse("t.toml", &ff).unwrap()).unwrap();
    match (s.task, s.task_b) {
        (Task::FlipFlop(a), Some(Task::FlipFlop(b))) => {
            assert_eq!((a.channels, b.channels), (Channels::A, Channels::B))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.working_memory(), None);
    let st = GOOD.replace(
        "family = \"working_memory\"\nt_d = 5.0",
        "family = \"static\"",
    );
    let s = check(&parse("t.toml", &st).unwrap()).unwrap();
    match (s.task, s.task_b) {
        (Task::Static(a), Some(Task::Static(b))) => assert_eq!((a.pattern, b.pattern), (0, 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_task_tables_give_a_and_b() {
    let s = check(&parse("t.toml", TWO).unwrap()).unwrap();
    assert!(s.separate_tasks);
    match (s.task, s.task_b) {
        (Task::FlipFlop(a), Some(Task::WorkingMemory(b))) => {
            assert_eq!(a.channels, Channels::A);
            assert_eq!(a.t_max, 10.0);
            assert_eq!(b.pattern, 1);
            assert_eq!(b.t_d, 5.0);
        }
        other => panic!("{other:?}"),
    }
    // not one working-memory task: no latent cross-validation setting
    assert_eq!(s.working_memory(), None);
    // the single flip-flop keeps its two bits unless told otherwise
    let single = |extra: &str| {
        let text = format!(
            "kind = \"rnn\"\n[network]\nn = 50\n[task]\nfamily = \"flip_flop\"\n{extra}\n\
             [training]\nprotocol = \"single\"\nlr = 0.01\n"
        );
        check(&parse("t.toml", &text).unwrap()).map(|s| (s.task, s.task_b))
    };
    match single("").unwrap() {
        (Task::FlipFlop(f), None) => assert_eq!(f.channels, Channels::Both),
        other => panic!("{other:?}"),
    }
    match single("channels = \"b\"").unwrap() {
        (Task::FlipFlop(f), None) => assert_eq!(f.channels, Channels::B),
        other => panic!("{other:?}"),
    }
    match single("channels = \"c\"") {
        Err(Error::Parameter { field, .. }) => assert_eq!(field, "task.channels"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mixed_or_invalid_task_tables_are_errors() {
    let wm = "[task]\nfamily = \"working_memory\"\n";
    let cases = [
        // [task] beside [task_a] / [task_b]
        (TWO.replace("[task_a]", &format!("{wm}[task_a]")), "task_a"),
        (
            GOOD.replace("[training]", "[task_b]\nfamily = \"static\"\n[training]"),
            "task_b",
        ),
        // one of the two alone
        (
            TWO.replace("[task_b]\nfamily = \"working_memory\"\nt_d = 5.0\n", ""),
            "task_b",
        ),
        (
            TWO.replace("[task_a]\nfamily = \"flip_flop\"\nt_max = 10.0\n", ""),
            "task_a",
        ),
        // no task at all
        (
            GOOD.replace("[task]\nfamily = \"working_memory\"\nt_d = 5.0\n", ""),
            "task",
        ),
        // two tables outside the sequential protocol
        (
            TWO.replace("lr = 0.01", "lr = 0.01\nprotocol = \"single\""),
            "training.protocol",
        ),
        // keys checked per table, with the table's name
        (TWO.replace("t_d = 5.0", "t_d = 5.0\nu = 1.0"), "task_b.u"),
        (TWO.replace("t_max = 10.0", "t_max = -1.0"), "task_a.t_max"),
        (
            TWO.replace("t_max = 10.0", "channels = \"both\""),
            "task_a.channels",
        ),
        (
            TWO.replace("\"working_memory\"", "\"delay\""),
            "task_b.family",
        ),
    ];
    for (text, field) in cases {
        let m = parse("t.toml", &text).unwrap();
        match check(&m) {
            Err(e @ Error::Parameter { .. }) => {
                assert_eq!(e.exit_code(), 2);
                let Error::Parameter { field: f, .. } = e else {
                    unreachable!()
                };
                assert_eq!(f, field, "{text}");
            }
            other => panic!("{field}: expected a parameter error, got {other:?}"),
        }
    }
    // unknown keys are still rejected, in the new tables too
    for text in [
        TWO.replace("t_max = 10.0", "t_max = 10.0\nwidth = 3"),
        TWO.replace("[task_b]", "[task_c]\nfamily = \"static\"\n[task_b]"),
    ] {
        let m = parse("t.toml", &text).unwrap();
        assert!(matches!(check(&m), Err(Error::ModelFile { .. })), "{text}");
    }
}
