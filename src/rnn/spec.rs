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
use super::task::{Channels, FlipFlop, LossKind, StaticTask, Task, WorkingMemory};
use super::train::{FlowMethod, Optimizer, TrainOptions};
use crate::model::{Checker, ModelFile};
use crate::Result;

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

/// Validate one task table (`table` = "task", "task_a" or "task_b"). With the sequential
/// protocol the binding to a pattern is the protocol's, so `channels` is refused there.
fn check_task(c: &Checker, table: &str, t: &RawTask, sequential: bool) -> Result<Task> {
    let f = |key: &str| format!("{table}.{key}");
    let family = c.one_of(
        &f("family"),
        &t.family,
        &["working_memory", "static", "flip_flop"],
    )?;
    check_task_keys(c, table, family, t)?;
    if sequential {
        if let Some(ch) = &t.channels {
            return Err(c.error(
                &f("channels"),
                ch,
                "no `channels` with protocol = \"sequential\"",
                "the sequential protocol binds task A to channel a and task B to channel b \
                 (the 1-bit flip-flop on each); `channels` is for protocol = \"single\"",
            ));
        }
    }
    match family {
        "working_memory" => check_working_memory(c, table, t),
        "static" => Ok(Task::Static(StaticTask {
            pattern: 0,
            u: c.finite(&f("u"), t.u.unwrap_or(1.0))?,
            t_max: c.positive(&f("t_max"), t.t_max.unwrap_or(50.0))?,
            zhat: c.finite(&f("zhat"), t.zhat.unwrap_or(1.0))?,
        })),
        _ => check_flip_flop(c, table, t),
    }
}

/// Every key given in a task table applies to its family.
fn check_task_keys(c: &Checker, table: &str, family: &str, t: &RawTask) -> Result<()> {
    let given: [(&str, bool); 13] = [
        ("u_p", t.u_p.is_some()),
        ("t_in", t.t_in.is_some()),
        ("u_s", t.u_s.is_some()),
        ("t_d", t.t_d.is_some()),
        ("t_loss", t.t_loss.is_some()),
        ("zhat", t.zhat.is_some()),
        ("loss", t.loss.is_some()),
        ("sigma0", t.sigma0.is_some()),
        ("u", t.u.is_some()),
        ("t_max", t.t_max.is_some()),
        ("rate", t.rate.is_some()),
        ("t_pulse", t.t_pulse.is_some()),
        ("channels", t.channels.is_some()),
    ];
    let allowed: &[&str] = match family {
        "working_memory" => &[
            "u_p", "t_in", "u_s", "t_d", "t_loss", "zhat", "loss", "sigma0",
        ],
        "static" => &["u", "t_max", "zhat"],
        _ => &["t_max", "rate", "t_pulse", "sigma0", "channels"],
    };
    for (name, present) in given {
        if present && !allowed.contains(&name) {
            return Err(c.error(
                &format!("{table}.{name}"),
                "(given)",
                &allowed.join(", "),
                &format!("does not apply to the task family `{family}`"),
            ));
        }
    }
    Ok(())
}

/// The working-memory task of a table (THEORY I.1): pulse u_p for t_in, delay t_d with
/// sustained input u_s, loss over the last t_loss.
fn check_working_memory(c: &Checker, table: &str, t: &RawTask) -> Result<Task> {
    let f = |key: &str| format!("{table}.{key}");
    let loss = match c.one_of(
        &f("loss"),
        t.loss.as_deref().unwrap_or("aligned"),
        &["own", "aligned"],
    )? {
        "own" => LossKind::Own,
        _ => LossKind::Aligned,
    };
    let t_in = c.positive(&f("t_in"), t.t_in.unwrap_or(2.0))?;
    let t_d = c.non_negative(&f("t_d"), t.t_d.unwrap_or(10.0))?;
    let t_loss = c.non_negative(&f("t_loss"), t.t_loss.unwrap_or(2.0))?;
    if t_loss > t_in + t_d {
        return Err(c.error(
            &f("t_loss"),
            t_loss,
            &format!("[0, t_in + t_d = {}]", t_in + t_d),
            "the loss window is longer than the trial",
        ));
    }
    Ok(Task::WorkingMemory(WorkingMemory {
        pattern: 0,
        u_p: c.finite(&f("u_p"), t.u_p.unwrap_or(1.0))?,
        t_in,
        u_s: c.finite(&f("u_s"), t.u_s.unwrap_or(0.0))?,
        t_d,
        t_loss,
        zhat: c.finite(&f("zhat"), t.zhat.unwrap_or(0.5))?,
        loss,
        sigma0: c.non_negative(&f("sigma0"), t.sigma0.unwrap_or(0.0))?,
    }))
}

/// The flip-flop of a table: pulses at `rate` on its channels, held until the next one.
fn check_flip_flop(c: &Checker, table: &str, t: &RawTask) -> Result<Task> {
    let f = |key: &str| format!("{table}.{key}");
    Ok(Task::FlipFlop(FlipFlop {
        channels: match c.one_of(
            &f("channels"),
            t.channels.as_deref().unwrap_or("both"),
            &["a", "b", "both"],
        )? {
            "a" => Channels::A,
            "b" => Channels::B,
            _ => Channels::Both,
        },
        t_max: c.positive(&f("t_max"), t.t_max.unwrap_or(20.0))?,
        rate: c.positive(&f("rate"), t.rate.unwrap_or(0.3))?,
        t_pulse: c.positive(&f("t_pulse"), t.t_pulse.unwrap_or(1.0))?,
        sigma0: c.non_negative(&f("sigma0"), t.sigma0.unwrap_or(0.0))?,
    }))
}

/// The tasks from `[task]` or `[task_a]` + `[task_b]`: (task A or the single task, task B).
fn check_tasks(c: &Checker, raw: &RawRnn, protocol: Protocol) -> Result<(Task, Option<Task>)> {
    let sequential = protocol == Protocol::Sequential;
    let either = "either [task] (the same task for A and B) or both [task_a] and [task_b]";
    match (&raw.task, &raw.task_a, &raw.task_b) {
        (Some(t), None, None) => {
            let task = check_task(c, "task", t, sequential)?;
            Ok(if sequential {
                (task.on_pattern(0), Some(task.on_pattern(1)))
            } else {
                (task, None)
            })
        }
        (None, Some(a), Some(b)) => {
            if !sequential {
                return Err(c.error(
                    "training.protocol",
                    "single",
                    "sequential (with [task_a] and [task_b]), or one [task] for single",
                    "[task_a] and [task_b] describe the sequential protocol A -> B",
                ));
            }
            let a = check_task(c, "task_a", a, sequential)?;
            let b = check_task(c, "task_b", b, sequential)?;
            Ok((a.on_pattern(0), Some(b.on_pattern(1))))
        }
        (Some(_), a, _) => Err(c.error(
            if a.is_some() { "task_a" } else { "task_b" },
            "(given)",
            either,
            "[task] already gives task A and task B; a model has [task] or [task_a] + [task_b]",
        )),
        (None, None, Some(_)) => {
            Err(c.error("task_a", "(missing)", either, "[task_b] needs [task_a]"))
        }
        (None, Some(_), None) => {
            Err(c.error("task_b", "(missing)", either, "[task_a] needs [task_b]"))
        }
        (None, None, None) => {
            Err(c.error("task", "(missing)", either, "the model has no task table"))
        }
    }
}

/// The key of a task that sets its length in time, and that time.
fn task_time(t: &Task) -> (&'static str, f64) {
    match t {
        Task::WorkingMemory(w) => (if w.t_d >= w.t_in { "t_d" } else { "t_in" }, w.t_in + w.t_d),
        Task::Static(s) => ("t_max", s.t_max),
        Task::FlipFlop(f) => ("t_max", f.t_max),
    }
}

/// Bytes of one training run, f64 so that no product of sizes overflows: about twelve N x N
/// matrices (W, its packed copies and transpose, the gradient, optimiser moments, the snapshots
/// of the sequential protocol, the Jacobian and the eigen-solver's work space of the
/// fixed-point analysis) plus the trajectories of BPTT, three N x (T + 1) x B arrays (states,
/// rates, cotangents) and eight 2 x T x B arrays (inputs, targets, weights, readouts).
pub fn memory_estimate(n: usize, steps: f64, batch: usize) -> f64 {
    let (n, b) = (n as f64, batch as f64);
    8.0 * (12.0 * n * n + (3.0 * n + 16.0) * (steps + 1.0) * b)
}

/// Most Euler steps of one trial, T = t / dt: 10^6. Shipped tasks use <= 500; BPTT through
/// 10^6 steps costs 10^6 N^2 B flops per gradient and its gradients vanish or explode long
/// before (issue 15: t_d = 1e6 with a small N fitted the memory budget but ran for hours).
pub const MAX_TRIAL_STEPS: f64 = 1e6;

/// Reject, before anything is allocated, a task longer than [`MAX_TRIAL_STEPS`] Euler
/// steps and a run whose memory ([`memory_estimate`]) exceeds the budget; the error names the
/// field that dominates the estimate.
fn check_budget(
    model: &ModelFile,
    n: usize,
    dt: f64,
    batch: usize,
    task: &Task,
    task_b: Option<&Task>,
    separate_tasks: bool,
) -> Result<()> {
    let file = &model.common.file;
    let tables: [(&str, Option<&Task>); 2] = if separate_tasks {
        [("task_a", Some(task)), ("task_b", task_b)]
    } else {
        [("task", Some(task)), ("task", None)]
    };
    let mut longest = (String::from("task.t_max"), 0.0, 0.0);
    for (table, t) in tables {
        let Some(t) = t else { continue };
        let (key, time) = task_time(t);
        let steps = time / dt;
        let field = format!("{table}.{key}");
        if steps > MAX_TRIAL_STEPS || !steps.is_finite() {
            return Err(crate::model::Checker::new(file).error(
                &field,
                crate::io::fmt_value(time),
                &format!("at most {MAX_TRIAL_STEPS:e} Euler steps per trial (t / dt, dt = {dt})"),
                &format!("one trial would take {steps:.3e} Euler steps"),
            ));
        }
        if steps > longest.2 {
            longest = (field, time, steps);
        }
    }
    let bytes = memory_estimate(n, longest.2, batch);
    let (nf, bf) = (n as f64, batch as f64);
    let what = format!(
        "N = {n}: 12 N^2 matrices, and 3 N (T + 1) B trajectories with T = {:.0} steps, B = {batch}",
        longest.2
    );
    if 12.0 * nf * nf >= 3.0 * nf * (longest.2 + 1.0) * bf {
        crate::budget::check_memory(file, "network.n", n, bytes, &what)
    } else if bf > 1.0 {
        crate::budget::check_memory(file, "training.batch", batch, bytes, &what)
    } else {
        crate::budget::check_memory(file, &longest.0, longest.1, bytes, &what)
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
mod tests {
    use super::*;
    use crate::model::parse;
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
        let flow =
            |extra: &str| GOOD.replace("lr = 1.0", &format!("optimizer = \"flow\"\n{extra}"));
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
}

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
