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
//! protocol = "sequential"        # sequential (A -> B) | single (task A only)
//! trainable = "full"             # full | latent
//! optimizer = "gd"               # gd | sgd | adam
//! lr = 1.0
//! tol = 1e-4
//! max_steps = 20000
//! ```

use serde::{Deserialize, Serialize};

use super::network::{NetworkSpec, Phi, Readout, Recurrent, Trainable};
use super::task::{FlipFlop, LossKind, StaticTask, Task, WorkingMemory};
use super::train::{Optimizer, TrainOptions};
use crate::model::ModelFile;
use crate::Result;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRnn {
    seeds: Option<i64>,
    network: RawNetwork,
    task: RawTask,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraining {
    protocol: Option<String>,
    trainable: Option<String>,
    train_input: Option<bool>,
    train_readout: Option<bool>,
    optimizer: Option<String>,
    lr: f64,
    tol: Option<f64>,
    max_steps: Option<i64>,
    batch: Option<i64>,
    record_every: Option<i64>,
    diverge_factor: Option<f64>,
    progress: Option<bool>,
}

/// What `modeflow train` does with the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Task A then task B (working memory only).
    Sequential,
    /// Task A (or the static / flip-flop task) only.
    Single,
}

/// A validated `rnn` model.
#[derive(Debug, Clone, Serialize)]
pub struct RnnSpec {
    pub network: NetworkSpec,
    pub task: Task,
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
    /// The working-memory task (for the sequential protocol).
    pub fn working_memory(&self) -> Option<WorkingMemory> {
        match self.task {
            Task::WorkingMemory(w) => Some(w),
            _ => None,
        }
    }
}

/// Validate an `rnn` model file.
pub fn check(model: &ModelFile) -> Result<RnnSpec> {
    let raw: RawRnn = model.raw()?;
    let c = model.checker();
    let n = c.count("network.n", raw.network.n, 2, 20_000)?;
    let g = c.non_negative("network.g", raw.network.g.unwrap_or(0.0))?;
    let dt = c.in_range("network.dt", raw.network.dt.unwrap_or(0.2), 1e-4, 1.0)?;
    let phi_name = raw.network.phi.as_deref().unwrap_or("tanh");
    let phi = Phi::from_name(c.one_of("network.phi", phi_name, &["tanh", "erf", "identity"])?)
        .unwrap_or(Phi::Tanh);
    let readout = match c.one_of(
        "network.readout",
        raw.network.readout.as_deref().unwrap_or("rate"),
        &["rate", "state"],
    )? {
        "state" => Readout::State,
        _ => Readout::Rate,
    };
    let m0 = raw.network.m0.unwrap_or([[0.0; 2]; 2]);
    for (i, row) in m0.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            c.finite(&format!("network.m0[{i}][{j}]"), v)?;
        }
    }
    let t = &raw.task;
    let family = c.one_of(
        "task.family",
        &t.family,
        &["working_memory", "static", "flip_flop"],
    )?;
    let given: [(&str, bool); 12] = [
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
    ];
    let allowed: &[&str] = match family {
        "working_memory" => &[
            "u_p", "t_in", "u_s", "t_d", "t_loss", "zhat", "loss", "sigma0",
        ],
        "static" => &["u", "t_max", "zhat"],
        _ => &["t_max", "rate", "t_pulse", "sigma0"],
    };
    for (name, present) in given {
        if present && !allowed.contains(&name) {
            return Err(c.error(
                &format!("task.{name}"),
                "(given)",
                &allowed.join(", "),
                &format!("does not apply to the task family `{family}`"),
            ));
        }
    }
    let task = match family {
        "working_memory" => {
            let loss = match c.one_of(
                "task.loss",
                t.loss.as_deref().unwrap_or("aligned"),
                &["own", "aligned"],
            )? {
                "own" => LossKind::Own,
                _ => LossKind::Aligned,
            };
            let t_in = c.positive("task.t_in", t.t_in.unwrap_or(2.0))?;
            let t_d = c.non_negative("task.t_d", t.t_d.unwrap_or(10.0))?;
            let t_loss = c.non_negative("task.t_loss", t.t_loss.unwrap_or(2.0))?;
            if t_loss > t_in + t_d {
                return Err(c.error(
                    "task.t_loss",
                    t_loss,
                    &format!("[0, t_in + t_d = {}]", t_in + t_d),
                    "the loss window is longer than the trial",
                ));
            }
            Task::WorkingMemory(WorkingMemory {
                pattern: 0,
                u_p: c.finite("task.u_p", t.u_p.unwrap_or(1.0))?,
                t_in,
                u_s: c.finite("task.u_s", t.u_s.unwrap_or(0.0))?,
                t_d,
                t_loss,
                zhat: c.finite("task.zhat", t.zhat.unwrap_or(0.5))?,
                loss,
                sigma0: c.non_negative("task.sigma0", t.sigma0.unwrap_or(0.0))?,
            })
        }
        "static" => Task::Static(StaticTask {
            u: c.finite("task.u", t.u.unwrap_or(1.0))?,
            t_max: c.positive("task.t_max", t.t_max.unwrap_or(50.0))?,
            zhat: c.finite("task.zhat", t.zhat.unwrap_or(1.0))?,
        }),
        _ => Task::FlipFlop(FlipFlop {
            t_max: c.positive("task.t_max", t.t_max.unwrap_or(20.0))?,
            rate: c.positive("task.rate", t.rate.unwrap_or(0.3))?,
            t_pulse: c.positive("task.t_pulse", t.t_pulse.unwrap_or(1.0))?,
            sigma0: c.non_negative("task.sigma0", t.sigma0.unwrap_or(0.0))?,
        }),
    };
    let tr = &raw.training;
    let recurrent = match c.one_of(
        "training.trainable",
        tr.trainable.as_deref().unwrap_or("full"),
        &["full", "latent"],
    )? {
        "latent" => Recurrent::Latent,
        _ => Recurrent::Full,
    };
    let trainable = Trainable {
        recurrent,
        input: tr.train_input.unwrap_or(false),
        readout: tr.train_readout.unwrap_or(false),
    };
    let optimizer = match c.one_of(
        "training.optimizer",
        tr.optimizer.as_deref().unwrap_or("gd"),
        &["gd", "sgd", "adam"],
    )? {
        "sgd" => Optimizer::Sgd,
        "adam" => Optimizer::ADAM,
        _ => Optimizer::Gd,
    };
    let protocol = match c.one_of(
        "training.protocol",
        tr.protocol.as_deref().unwrap_or("sequential"),
        &["sequential", "single"],
    )? {
        "single" => Protocol::Single,
        _ => Protocol::Sequential,
    };
    if protocol == Protocol::Sequential && family != "working_memory" {
        return Err(c.error(
            "training.protocol",
            "sequential",
            "single (for this task family)",
            "the sequential protocol A -> B needs the working_memory task",
        ));
    }
    let train = TrainOptions {
        optimizer,
        lr: c.positive("training.lr", tr.lr)?,
        tol: c.positive("training.tol", tr.tol.unwrap_or(1e-4))?,
        max_steps: c.count(
            "training.max_steps",
            tr.max_steps.unwrap_or(20_000),
            1,
            100_000_000,
        )?,
        batch: c.count("training.batch", tr.batch.unwrap_or(1), 1, 100_000)?,
        diverge_factor: c.in_range(
            "training.diverge_factor",
            tr.diverge_factor.unwrap_or(1e4),
            1.0,
            1e300,
        )?,
        progress: tr.progress.unwrap_or(true),
    };
    Ok(RnnSpec {
        network: NetworkSpec {
            n,
            g,
            dt,
            phi,
            readout,
            m0,
        },
        task,
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
        xval: match &raw.xval {
            None => None,
            Some(x) => {
                if x.n.is_empty() {
                    return Err(c.error(
                        "xval.n",
                        "[]",
                        "a non-empty list of N",
                        "the cross-validation needs at least one network size",
                    ));
                }
                Some(
                    x.n.iter()
                        .map(|&v| c.count("xval.n", v, 8, 4096))
                        .collect::<Result<Vec<_>>>()?,
                )
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse;
    use crate::Error;

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
                GOOD.replace(
                    "family = \"working_memory\"\nt_d = 5.0",
                    "family = \"static\"",
                ),
                "training.protocol",
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
