//! The task tables of an `rnn` model file: `[task]`, or `[task_a]` and `[task_b]`, each
//! checked against its family's keys.

use super::{Protocol, RawRnn, RawTask};
use crate::model::Checker;
use crate::rnn::task::{Channels, FlipFlop, LossKind, StaticTask, Task, WorkingMemory};
use crate::Result;

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
pub(super) fn check_tasks(
    c: &Checker,
    raw: &RawRnn,
    protocol: Protocol,
) -> Result<(Task, Option<Task>)> {
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
