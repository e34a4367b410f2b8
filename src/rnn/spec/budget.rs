//! The size of an `rnn` run, checked before anything is allocated: trial length in Euler steps
//! and memory against the budget.

use crate::model::ModelFile;
use crate::rnn::task::Task;
use crate::Result;

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
pub(super) fn check_budget(
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
