//! Two-phase runs scheduled on all rayon threads in FIFO order.
//!
//! A seed of the sequential protocol is two tasks: phase A, then phase B from A's result.
//! With S seeds on W threads, whole seeds in parallel take ceil(S / W) seed times (3 seeds on
//! 2 threads: 2 of 3, 0.67x); scheduled as phases, the threads take A_1..A_S first and each
//! B_i as soon as its A_i is done, so 3 seeds of equal phases take 3 phase times of 6 (0.5x).
//!
//! The queue starts as A_1..A_S in seed order; finishing A_i appends B_i at the back; each
//! worker pops from the front until the queue is empty. A worker never waits: a worker that
//! finds the queue empty leaves, and every task appended later is appended by a running
//! worker that pops the next task right after (one append, one pop), so no task ever waits in
//! the queue while a thread that left could have run it. Nothing blocks a rayon thread, so the
//! schedule is safe inside other rayon work (the claim checks run `train` inside parallel
//! iterators) and cannot hang when a phase fails: a failed A_i appends nothing.
//! (rayon's own `spawn` runs the newest job of a thread first, which would put B_1 before A_3.)
//!
//! The results are gathered per index, so they do not depend on the thread count or on which
//! thread ran which phase.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use crate::Result;

/// A task of the queue: the first phase of run `i`, or its second with the first's value.
enum Phase<M> {
    First(usize),
    Second(usize, M),
}

/// Run `first(i)` then `second(i, first's value)` for i in 0..n on all rayon threads (phases
/// in FIFO order, see the module doc); the results in index order. A failed first phase is
/// that run's result (its second phase is not run); every other run still runs, so the caller
/// can return the first error in index order, as a serial loop would.
pub fn two_phases<M, R, F, S>(n: usize, first: F, second: S) -> Vec<Result<R>>
where
    M: Send,
    R: Send,
    F: Fn(usize) -> Result<M> + Sync,
    S: Fn(usize, M) -> Result<R> + Sync,
{
    let queue = Mutex::new((0..n).map(Phase::First).collect::<VecDeque<Phase<M>>>());
    let results: Vec<Mutex<Option<Result<R>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    // no code panics while holding a lock; a poisoned lock (a panic inside a phase, which
    // rayon re-raises at the end of the scope) still holds consistent data
    let pop = || {
        queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    };
    let store = |i: usize, r: Result<R>| {
        *results[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
    };
    let worker = || {
        while let Some(task) = pop() {
            match task {
                Phase::First(i) => match first(i) {
                    Ok(m) => queue
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push_back(Phase::Second(i, m)),
                    Err(e) => store(i, Err(e)),
                },
                Phase::Second(i, m) => store(i, second(i, m)),
            }
        }
    };
    let workers = rayon::current_num_threads().min(n).max(1);
    rayon::scope(|s| {
        for _ in 1..workers {
            s.spawn(|_| worker());
        }
        worker();
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .expect("every run's last phase stores its result before the queue empties")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// The start order of the phases: on one thread A_1..A_S then B_1..B_S; on two threads
    /// every A starts before any B whose A finished later (FIFO: B_1 waits behind A_3), and
    /// the results come back in index order either way.
    #[test]
    fn phases_run_in_fifo_order_and_results_in_index_order() {
        for threads in [1, 2] {
            let log = Mutex::new(Vec::new());
            let out = pool(threads).install(|| {
                two_phases(
                    3,
                    |i| {
                        log.lock().unwrap().push(format!("A{i}"));
                        std::thread::sleep(Duration::from_millis(20));
                        Ok(10 * i)
                    },
                    |i, m| {
                        log.lock().unwrap().push(format!("B{i}"));
                        std::thread::sleep(Duration::from_millis(20));
                        Ok(m + i)
                    },
                )
            });
            let out: Vec<usize> = out.into_iter().map(|r| r.unwrap()).collect();
            assert_eq!(out, vec![0, 11, 22]);
            let log = log.into_inner().unwrap();
            assert_eq!(log.len(), 6);
            let pos = |s: &str| log.iter().position(|x| x == s).unwrap();
            if threads == 1 {
                assert_eq!(log, ["A0", "A1", "A2", "B0", "B1", "B2"]);
            } else {
                assert!(pos("A2") < pos("B0") && pos("A2") < pos("B1"), "{log:?}");
            }
            for i in 0..3 {
                assert!(pos(&format!("A{i}")) < pos(&format!("B{i}")), "{log:?}");
            }
        }
    }

    /// A failed first phase is that run's result, its second phase never runs, the other runs
    /// complete, and nothing waits for the missing phase (the test would hang otherwise).
    #[test]
    fn a_failed_first_phase_ends_its_run_only() {
        for threads in [1, 2, 4] {
            let seconds = AtomicUsize::new(0);
            let out = pool(threads).install(|| {
                two_phases(
                    5,
                    |i| {
                        if i == 1 || i == 3 {
                            Err(Error::Numerical(format!("run {i}")))
                        } else {
                            Ok(i)
                        }
                    },
                    |_, m| {
                        seconds.fetch_add(1, Ordering::SeqCst);
                        Ok(m)
                    },
                )
            });
            assert_eq!(seconds.load(Ordering::SeqCst), 3);
            let first_error = out.iter().position(|r| r.is_err());
            assert_eq!(first_error, Some(1));
            assert!(matches!(&out[3], Err(Error::Numerical(m)) if m == "run 3"));
            assert_eq!(out[4].as_ref().ok(), Some(&4));
        }
    }

    #[test]
    fn no_runs_give_no_results() {
        let out = two_phases(0, Ok, |_, m: usize| Ok(m));
        assert!(out.is_empty());
    }
}
