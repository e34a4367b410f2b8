//! Model files of kind `rnn`: raw TOML -> `check()` -> [`RnnSpec`].
//!
//! ```toml
//! kind = "rnn"
//! seed = 1
//! seeds = 3                      # runs with seed, seed+1, ...
//! [network]                      # THEORY I.1
//! n = 200
//! g = 0.0
//! dt = 0.2
//! phi = "tanh"                   # tanh | erf | identity
//! readout = "rate"               # rate | state
//! m0 = [[0.0, 0.0], [0.0, 0.0]]
//! [task]
//! family = "working_memory"      # working_memory | static | flip_flop
//! u_p = 1.0                      # working memory: u_p, t_in, u_s, t_d, t_loss, zhat, loss, sigma0
//! t_in = 2.0
//! u_s = 0.0
//! t_d = 10.0
//! t_loss = 2.0
//! zhat = 0.5
//! loss = "aligned"               # own | aligned
//! [training]
//! protocol = "sequential"        # sequential (A -> B) | single (the [task] only)
//! trainable = "full"             # full | latent
//! optimizer = "gd"               # gd | sgd | adam | flow | modified_flow
//! eta = 0.25                     # modified_flow only (required): GD step in (0, 8] (B-12, I-18)
//! lr = 1.0                       # flow: optional, the first trial step in tau
//! flow_rtol = 1e-6               # flow only: relative local error tolerance per step
//! flow_atol = 1e-5               # flow only (default flow_rtol/sqrt(N) full W, flow_rtol M)
//! flow_method = "dopri"          # flow only: dopri (DP45) | rkc (RKC2, for stiff flows)
//! tol = 1e-4
//! max_steps = 20000
//! rule = "bptt"                  # bptt | eprop | random_eprop | tbptt | node_perturbation
//! feedback_alignment = 0.5       # random_eprop only: c = cos(B, w_out) in [0, 1] (default 0)
//! truncation = 5                 # tbptt only: steps >= 1 (required)
//! perturbation_sigma = 1e-4      # node_perturbation only: > 0 (default 1e-4)
//! perturbation_samples = 16      # node_perturbation only: >= 1 (default 16)
//! ```
//!
//! The tasks of the sequential protocol: `[task]` alone is the same task for A and B, on
//! pattern a then on pattern b. Tasks of different families (or parameters) are given as two
//! tables `[task_a]` and `[task_b]` (both, and then no `[task]`), each with the keys of
//! `[task]`:
//!
//! ```toml
//! [task_a]                       # A: the 1-bit flip-flop on pattern a
//! family = "flip_flop"
//! t_max = 20.0
//! [task_b]                       # B: working memory on pattern b
//! family = "working_memory"
//! t_d = 6.0
//! ```
//!
//! Binding to a pattern ([`Task::on_pattern`]): task A uses input channel / readout a, task B
//! uses b. Working memory: input and target on the task's pattern. Static task (I-10): input
//! along the task's pattern, target on the other readout (A: a -> readout b, B: b -> readout
//! a). Flip-flop: the 1-bit flip-flop on the task's channel alone; its `channels` key
//! (a | b | both, default both: the 2-bit flip-flop) is for `protocol = "single"` only.

use serde::{Deserialize, Serialize};

use super::network::{NetworkSpec, Phi, Readout, Recurrent, Trainable};
use super::task::{Task, WorkingMemory};
use super::train::{FlowMethod, Optimizer, TrainOptions};
use crate::model::{Checker, ModelFile};
use crate::Result;

mod budget;
mod tasks;

use budget::check_budget;
pub use budget::{memory_estimate, MAX_TRIAL_STEPS};
use tasks::check_tasks;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRnn {
    seeds: Option<i64>,
    network: RawNetwork,
    task: Option<RawTask>,
    task_a: Option<RawTask>,
    task_b: Option<RawTask>,
    training: RawTraining,
    #[serde(default)]
    fixed_points: Option<bool>,
    xval: Option<RawXval>,
}

/// `[xval] n = [...]`: run the latent cross-validation (issue 3, 7(a); claims X-6, X-7) at these
/// N instead of the plain training.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawXval {
    n: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    n: i64,
    g: Option<f64>,
    dt: Option<f64>,
    phi: Option<String>,
    readout: Option<String>,
    m0: Option<[[f64; 2]; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    family: String,
    u_p: Option<f64>,
    t_in: Option<f64>,
    u_s: Option<f64>,
    t_d: Option<f64>,
    t_loss: Option<f64>,
    zhat: Option<f64>,
    loss: Option<String>,
    sigma0: Option<f64>,
    u: Option<f64>,
    t_max: Option<f64>,
    rate: Option<f64>,
    t_pulse: Option<f64>,
    channels: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraining {
    protocol: Option<String>,
    trainable: Option<String>,
    train_input: Option<bool>,
    train_readout: Option<bool>,
    optimizer: Option<String>,
    lr: Option<f64>,
    flow_rtol: Option<f64>,
    flow_atol: Option<f64>,
    eta: Option<f64>,
    flow_method: Option<String>,
    tol: Option<f64>,
    max_steps: Option<i64>,
    batch: Option<i64>,
    record_every: Option<i64>,
    diverge_factor: Option<f64>,
    progress: Option<bool>,
    rule: Option<String>,
    feedback_alignment: Option<f64>,
    truncation: Option<i64>,
    perturbation_sigma: Option<f64>,
    perturbation_samples: Option<i64>,
}

/// What `modeflow train` does with the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Task A (on pattern a) then task B (on pattern b), of any families.
    Sequential,
    /// The one task of `[task]` only.
    Single,
}

/// A validated `rnn` model.
#[derive(Debug, Clone, Serialize)]
pub struct RnnSpec {
    pub network: NetworkSpec,
    /// Task A of the sequential protocol (bound to pattern a), or the task of `single`.
    pub task: Task,
    /// Task B of the sequential protocol (bound to pattern b); `None` for `single`.
    pub task_b: Option<Task>,
    /// Whether A and B came from two tables `[task_a]`, `[task_b]` (else one `[task]`).
    pub separate_tasks: bool,
    pub trainable: Trainable,
    pub train: TrainOptions,
    pub protocol: Protocol,
    /// Number of seeds (seed, seed + 1, ...).
    pub seeds: usize,
    pub seed: u64,
    pub record_every: usize,
    /// Analyse fixed points of the trained networks.
    pub fixed_points: bool,
    /// N values of the latent cross-validation (`[xval] n`), if requested.
    pub xval: Option<Vec<usize>>,
}

impl RnnSpec {
    /// The working-memory task, when the model runs one working-memory task (on a, and for the
    /// sequential protocol the same task on b): what the latent cross-validation needs.
    pub fn working_memory(&self) -> Option<WorkingMemory> {
        match (self.task, self.task_b) {
            (Task::WorkingMemory(w), None) => Some(w),
            (Task::WorkingMemory(w), Some(b)) if b == self.task.on_pattern(1) => Some(w),
            _ => None,
        }
    }

    /// Task B of the sequential protocol (the same task as A on pattern b if not given).
    pub fn task_b(&self) -> Task {
        self.task_b.unwrap_or_else(|| self.task.on_pattern(1))
    }
}

/// Validate an `rnn` model file.
pub fn check(model: &ModelFile) -> Result<RnnSpec> {
    let raw: RawRnn = model.raw()?;
    let c = model.checker();
    let network = check_network(&c, &raw.network)?;
    let tr = &raw.training;
    let trainable = check_trainable(&c, tr)?;
    let optimizer = check_optimizer(&c, tr)?;
    let flow_method = FlowMethod::from_name(c.one_of(
        "training.flow_method",
        tr.flow_method.as_deref().unwrap_or("dopri"),
        &FlowMethod::NAMES,
    )?)
    .unwrap_or_default();
    // the flow's lr is an optional first trial step; the stepping rules need a rate
    let lr = match (tr.lr, optimizer.is_flow()) {
        (Some(v), _) => c.positive("training.lr", v)?,
        (None, true) => 0.0,
        (None, false) => {
            return Err(c.error(
                "training.lr",
                "(missing)",
                "a positive number",
                "gd, sgd and adam need a learning rate",
            ))
        }
    };
    let protocol = match c.one_of(
        "training.protocol",
        tr.protocol.as_deref().unwrap_or("sequential"),
        &["sequential", "single"],
    )? {
        "single" => Protocol::Single,
        _ => Protocol::Sequential,
    };
    let separate_tasks = raw.task.is_none();
    let (task, task_b) = check_tasks(&c, &raw, protocol)?;
    if optimizer.is_flow() {
        check_flow_tasks(&c, separate_tasks, task, task_b)?;
    }
    let batch = c.count("training.batch", tr.batch.unwrap_or(1), 1, 100_000)?;
    check_budget(
        model,
        network.n,
        network.dt,
        batch,
        &task,
        task_b.as_ref(),
        separate_tasks,
    )?;
    let train = TrainOptions {
        optimizer,
        lr,
        tol: c.positive("training.tol", tr.tol.unwrap_or(1e-4))?,
        max_steps: c.count(
            "training.max_steps",
            tr.max_steps.unwrap_or(20_000),
            1,
            100_000_000,
        )?,
        batch,
        diverge_factor: c.in_range(
            "training.diverge_factor",
            tr.diverge_factor.unwrap_or(1e4),
            1.0,
            1e300,
        )?,
        progress: tr.progress.unwrap_or(true),
        rule: super::rules::check_rule(
            &c,
            &super::rules::RawRule {
                rule: tr.rule.as_deref(),
                feedback_alignment: tr.feedback_alignment,
                truncation: tr.truncation,
                perturbation_sigma: tr.perturbation_sigma,
                perturbation_samples: tr.perturbation_samples,
            },
        )?,
        flow_method,
    };
    Ok(RnnSpec {
        network,
        task,
        task_b,
        separate_tasks,
        trainable,
        train,
        protocol,
        seeds: c.count("seeds", raw.seeds.unwrap_or(1), 1, 10_000)?,
        seed: model.common.seed,
        record_every: c.count(
            "training.record_every",
            tr.record_every.unwrap_or(10),
            1,
            1_000_000,
        )?,
        fixed_points: raw.fixed_points.unwrap_or(true),
        xval: check_xval(&c, raw.xval.as_ref())?,
    })
}

/// The `[network]` table: N, g, dt, phi, readout, M_0.
fn check_network(c: &Checker, net: &RawNetwork) -> Result<NetworkSpec> {
    let n = c.count("network.n", net.n, 2, 20_000)?;
    let g = c.non_negative("network.g", net.g.unwrap_or(0.0))?;
    let dt = c.in_range("network.dt", net.dt.unwrap_or(0.2), 1e-4, 1.0)?;
    let phi_name = net.phi.as_deref().unwrap_or("tanh");
    let phi = Phi::from_name(c.one_of("network.phi", phi_name, &["tanh", "erf", "identity"])?)
        .unwrap_or(Phi::Tanh);
    let readout = match c.one_of(
        "network.readout",
        net.readout.as_deref().unwrap_or("rate"),
        &["rate", "state"],
    )? {
        "state" => Readout::State,
        _ => Readout::Rate,
    };
    let m0 = net.m0.unwrap_or([[0.0; 2]; 2]);
    for (i, row) in m0.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            c.finite(&format!("network.m0[{i}][{j}]"), v)?;
        }
    }
    Ok(NetworkSpec {
        n,
        g,
        dt,
        phi,
        readout,
        m0,
    })
}

/// What is trained: all of W or the latent M only, and optionally w_in and w_out.
fn check_trainable(c: &Checker, tr: &RawTraining) -> Result<Trainable> {
    let recurrent = match c.one_of(
        "training.trainable",
        tr.trainable.as_deref().unwrap_or("full"),
        &["full", "latent"],
    )? {
        "latent" => Recurrent::Latent,
        _ => Recurrent::Full,
    };
    Ok(Trainable {
        recurrent,
        input: tr.train_input.unwrap_or(false),
        readout: tr.train_readout.unwrap_or(false),
    })
}

/// The optimiser, with the flow's tolerances and the modified flow's eta; the flow-only keys
/// are refused with the stepping optimisers.
fn check_optimizer(c: &Checker, tr: &RawTraining) -> Result<Optimizer> {
    let optimizer = match c.one_of(
        "training.optimizer",
        tr.optimizer.as_deref().unwrap_or("gd"),
        &["gd", "sgd", "adam", "flow", "modified_flow"],
    )? {
        "sgd" => Optimizer::Sgd,
        "adam" => Optimizer::ADAM,
        name @ ("flow" | "modified_flow") => {
            let rtol = c.in_range(
                "training.flow_rtol",
                tr.flow_rtol.unwrap_or(Optimizer::FLOW_RTOL),
                1e-13,
                0.1,
            )?;
            let atol = tr
                .flow_atol
                .map(|v| c.in_range("training.flow_atol", v, 0.0, 1.0))
                .transpose()?;
            if name == "flow" {
                Optimizer::Flow { rtol, atol }
            } else {
                let eta = check_eta(c, tr.eta)?;
                Optimizer::ModifiedFlow { eta, rtol, atol }
            }
        }
        _ => Optimizer::Gd,
    };
    if let (Some(v), false) = (tr.eta, matches!(optimizer, Optimizer::ModifiedFlow { .. })) {
        return Err(c.error(
            "training.eta",
            v,
            "only with optimizer = \"modified_flow\"",
            "eta is the GD step whose modified flow is integrated (other optimizers use lr)",
        ));
    }
    if !optimizer.is_flow() {
        for (key, given) in [("flow_rtol", tr.flow_rtol), ("flow_atol", tr.flow_atol)] {
            if let Some(v) = given {
                return Err(c.error(
                    &format!("training.{key}"),
                    v,
                    "only with optimizer = \"flow\" or \"modified_flow\"",
                    "the flow tolerances apply to the gradient-flow integrator alone",
                ));
            }
        }
        if let Some(v) = &tr.flow_method {
            return Err(c.error(
                "training.flow_method",
                v,
                "only with optimizer = \"flow\"",
                "the integrator of the gradient flow",
            ));
        }
    }
    Ok(optimizer)
}

/// The modified flow's GD step eta (required), in (0, ETA_MAX].
fn check_eta(c: &Checker, eta: Option<f64>) -> Result<f64> {
    let eta_max = super::modified_flow::ETA_MAX;
    let Some(eta) = eta else {
        return Err(c.error(
            "training.eta",
            "(missing)",
            &format!("a number in (0, {eta_max}]"),
            "the modified flow is the flow of GD at step eta: give eta",
        ));
    };
    c.finite("training.eta", eta)?;
    if !(eta > 0.0 && eta <= eta_max) {
        return Err(c.error(
            "training.eta",
            eta,
            &format!("(0, {eta_max}]"),
            &format!(
                "the GD step whose modified flow is integrated: positive, and at most \
                 {eta_max} (far beyond every step the project uses; GD is unstable long before)"
            ),
        ));
    }
    Ok(eta)
}

/// The flow integrates one fixed set of trials: a random task (noise, the flip-flop) needs
/// fresh batches and is refused, naming its table.
fn check_flow_tasks(
    c: &Checker,
    separate_tasks: bool,
    task: Task,
    task_b: Option<Task>,
) -> Result<()> {
    let tables: [(&str, Option<Task>); 2] = if separate_tasks {
        [("task_a", Some(task)), ("task_b", task_b)]
    } else {
        [("task", Some(task)), ("task", None)]
    };
    for (table, t) in tables {
        let (field, value) = match t {
            Some(Task::WorkingMemory(w)) if w.sigma0 > 0.0 => ("sigma0", w.sigma0.to_string()),
            Some(Task::FlipFlop(_)) => ("family", "flip_flop".to_string()),
            _ => continue,
        };
        return Err(c.error(
            &format!("{table}.{field}"),
            value,
            "a deterministic task with optimizer = \"flow\" (sigma0 = 0; working_memory \
             or static)",
            "the gradient flow is full-batch on one fixed set of trials; a random task \
             needs fresh batches (optimizer = \"sgd\" or \"adam\")",
        ));
    }
    Ok(())
}

/// The `[xval]` table: a non-empty list of network sizes.
fn check_xval(c: &Checker, xval: Option<&RawXval>) -> Result<Option<Vec<usize>>> {
    let Some(x) = xval else {
        return Ok(None);
    };
    if x.n.is_empty() {
        return Err(c.error(
            "xval.n",
            "[]",
            "a non-empty list of N",
            "the cross-validation needs at least one network size",
        ));
    }
    x.n.iter()
        .map(|&v| c.count("xval.n", v, 8, 4096))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod shipped {
    /// Every shipped `models/rnn-*.toml` of kind `rnn` validates.
    #[test]
    fn shipped_models_validate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("rnn-") && name.ends_with(".toml") {
                let m = crate::model::load(&p).unwrap();
                if m.common.kind != "rnn" {
                    continue; // e.g. the sweep file over an rnn base model
                }
                super::check(&m).unwrap_or_else(|e| panic!("{name}: {e}"));
                n += 1;
            }
        }
        assert!(n >= 3);
    }
}
