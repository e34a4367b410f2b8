//! A lockstep pair of threads for one pass: one `rayon::join` per pass instead of one per step.
//!
//! A pass is a chain of steps, each of two halves (rows 0..s and s..N of one product and its
//! elementwise follow-up) and an optional serial part that needs both halves. The thread that
//! runs the pass (the *owner*) opens step i, computes its first half, then *claims* the second
//! half: if the other thread (the *partner*) has not claimed it, the owner computes it too;
//! otherwise it waits until the partner's half is done. Then it runs the serial part and opens
//! step i + 1. The partner (the second closure of the join) runs only if an idle rayon worker
//! steals it: it waits for an open step, claims its second half, computes it and marks it done,
//! until the owner ends the pass.
//!
//! **Cannot hang.** The owner waits only for a half the partner has claimed, and a claimed
//! half is computed without waiting for anything; the partner waits only for the owner, which
//! never waits for an unclaimed half. When no worker steals the partner (one thread, or the
//! other thread busy with its own work, or the join nested inside other rayon work), the owner
//! computes every half itself and rayon runs the partner after the owner returns: it finds the
//! pass ended and returns (a join then costs a push and a pop). Neither closure calls into
//! rayon, so a stolen partner never runs other work meanwhile. A panic in a half ends the pass
//! on both sides (the owner's guard ends the pass; a partner's failed half is reported to the
//! waiting owner, which panics too) instead of leaving one thread waiting.
//!
//! **Same bits for any thread count and timing**, as long as the two halves of a step compute
//! the same values whichever thread runs them (the callers in `bptt::split` split products at
//! multiples of `SPLIT_ROWS`, and every row is computed as in the whole product).
//!
//! **Memory.** The data a step reads were written before the owner opened it (a release
//! store of the step counter, read with acquire by the partner); the partner's half is read by
//! the owner after an acquire load of the partner's done counter (stored with release). The
//! buffers both threads touch are reached through [`SharedBuf`], whose two accessors are
//! `unsafe`: the caller names the rows it reads or writes and argues that the other thread
//! touches none of them meanwhile (each call site has a `SAFETY` comment tying it to this
//! protocol).

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Spins (`std::hint::spin_loop`) before a waiting thread starts to `yield_now` between
/// polls: ~10-40 us depending on the CPU's pause latency, several times a half step at
/// N = 200 (~2 us), so a partner that is keeping pace never yields, while one waiting through
/// a long serial stretch (or descheduled) gives the core away.
const SPINS_BEFORE_YIELD: u32 = 1 << 11;

/// The owner's marker in `open` that the pass is over.
const ENDED: usize = usize::MAX;

/// A counter alone on its cache line (the owner writes `open` and `claimed` every step, the
/// partner `done`: separate lines, so polling one does not steal the other's line).
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

/// The shared counters of one lockstep pass (see the module docs).
#[derive(Default)]
struct Lockstep {
    /// Steps 0..open are open (their inputs are written); [`ENDED`] after the pass.
    open: Padded<AtomicUsize>,
    /// Second halves 0..claimed are claimed (by the owner or the partner).
    claimed: Padded<AtomicUsize>,
    /// Second halves claimed by the partner are done up to (excluding) this step.
    done: Padded<AtomicUsize>,
    /// The partner's half panicked (the owner must not wait for it).
    failed: AtomicBool,
}

/// Wait politely: spin, then yield.
fn backoff(spins: &mut u32) {
    if *spins < SPINS_BEFORE_YIELD {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Ends the pass when the owner leaves (normally or by a panic).
struct EndOnDrop<'a>(&'a Lockstep);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.open.0.store(ENDED, Ordering::Release);
    }
}

/// Marks the partner's half as failed if it unwinds.
struct FailOnUnwind<'a>(&'a Lockstep);

impl Drop for FailOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.failed.store(true, Ordering::Release);
        }
    }
}

impl Lockstep {
    /// The owner: for each step, `first(i)`, the second half (claimed or waited for), then
    /// `serial(i)`.
    fn own<C, A, B, S>(&self, steps: usize, ctx: &mut C, first: &mut A, second: &B, serial: &mut S)
    where
        A: FnMut(&mut C, usize),
        B: Fn(usize),
        S: FnMut(&mut C, usize),
    {
        let _end = EndOnDrop(self);
        for i in 0..steps {
            self.open.0.store(i + 1, Ordering::Release);
            first(ctx, i);
            let mine = self
                .claimed
                .0
                .compare_exchange(i, i + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
            if mine {
                second(i);
            } else {
                let mut spins = 0;
                while self.done.0.load(Ordering::Acquire) <= i {
                    assert!(
                        !self.failed.load(Ordering::Acquire),
                        "lockstep: the partner's half of step {i} panicked"
                    );
                    backoff(&mut spins);
                }
            }
            serial(ctx, i);
        }
    }

    /// The partner: claim and compute open second halves until the pass ends.
    fn partner<B: Fn(usize)>(&self, second: &B) {
        let mut spins = 0;
        loop {
            let open = self.open.0.load(Ordering::Acquire);
            if open == ENDED {
                return;
            }
            let next = self.claimed.0.load(Ordering::Relaxed);
            if next < open
                && self
                    .claimed
                    .0
                    .compare_exchange(next, next + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                let guard = FailOnUnwind(self);
                second(next);
                drop(guard);
                self.done.0.store(next + 1, Ordering::Release);
                spins = 0;
                continue;
            }
            backoff(&mut spins);
        }
    }
}

/// Run `steps` steps in lockstep: on this thread `first(ctx, i)`, `second(i)` unless an idle
/// rayon worker claimed it, then `serial(ctx, i)`; an idle worker that steals the partner job
/// computes `second(i)` of the steps it claims. `ctx` is the owner's own state (both owner
/// parts may change it). `second` must compute the same values on either thread and touch
/// nothing `first` touches during step i; `serial(ctx, i)` runs when both halves are done and
/// the partner is only polling counters. One `rayon::join` for the whole pass.
pub(super) fn run<C, A, B, S>(steps: usize, ctx: &mut C, mut first: A, second: B, mut serial: S)
where
    C: Send,
    A: FnMut(&mut C, usize) + Send,
    B: Fn(usize) + Sync,
    S: FnMut(&mut C, usize) + Send,
{
    let ls = Lockstep::default();
    rayon::join(
        || ls.own(steps, ctx, &mut first, &second, &mut serial),
        || ls.partner(&second),
    );
}

/// A buffer both threads of a lockstep pass read and write, in parts that the protocol keeps
/// apart (see the module docs). Created from a `&mut [f64]`, which it borrows for its life, so
/// nothing else reaches the buffer meanwhile.
pub(super) struct SharedBuf<'a> {
    ptr: *mut f64,
    len: usize,
    _borrow: PhantomData<&'a mut [f64]>,
}

// SAFETY: a SharedBuf is a `&mut [f64]` whose parts are handed out to two threads; f64 is Send
// and Sync, and every access goes through the `unsafe` accessors below, whose callers
// guarantee that no part is written by one thread while the other reads or writes it.
unsafe impl Send for SharedBuf<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for SharedBuf<'_> {}

impl<'a> SharedBuf<'a> {
    /// Share `v` for the life of the returned value.
    pub(super) fn new(v: &'a mut [f64]) -> Self {
        SharedBuf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            _borrow: PhantomData,
        }
    }

    /// The elements `r`, to read.
    ///
    /// # Safety
    /// No thread writes any element of `r` while the returned slice is alive.
    ///
    /// # Panics
    /// If `r` is not inside the buffer.
    pub(super) unsafe fn get(&self, r: Range<usize>) -> &[f64] {
        assert!(r.start <= r.end && r.end <= self.len, "SharedBuf: {r:?}");
        // SAFETY: inside the buffer (checked above), which is borrowed for 'a; no writer
        // meanwhile (the caller's guarantee)
        unsafe { std::slice::from_raw_parts(self.ptr.add(r.start), r.len()) }
    }

    /// The elements `r`, to write.
    ///
    /// # Safety
    /// No other thread reads or writes any element of `r`, and this thread holds no other
    /// slice of them, while the returned slice is alive.
    ///
    /// # Panics
    /// If `r` is not inside the buffer.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn get_mut(&self, r: Range<usize>) -> &mut [f64] {
        assert!(r.start <= r.end && r.end <= self.len, "SharedBuf: {r:?}");
        // SAFETY: inside the buffer (checked above), which is borrowed for 'a; exclusive
        // while alive (the caller's guarantee)
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// A chain where step i's halves need the whole result of step i - 1: v_{i+1}[r] =
    /// sum(v_i) + r (both halves), then the serial part doubles v; the result equals the
    /// serial loop's on one and two threads, and the partner really takes halves on two.
    fn chain(n: usize, s: usize, steps: usize) -> (Vec<f64>, usize) {
        let mut v = vec![1.0; 2 * n];
        let by_partner = AtomicUsize::new(0);
        let owner = std::thread::current().id();
        {
            let buf = SharedBuf::new(&mut v);
            let half = |i: usize, rows: Range<usize>| {
                let (cur, next) = if i.is_multiple_of(2) { (0, n) } else { (n, 0) };
                // SAFETY: step i reads the slot of v_i whole and writes its own rows of the
                // other slot; the two halves write disjoint rows
                let sum: f64 = unsafe { buf.get(cur..cur + n) }.iter().sum();
                let out = unsafe { buf.get_mut(next + rows.start..next + rows.end) };
                for (j, o) in out.iter_mut().enumerate() {
                    *o = (sum + (rows.start + j) as f64) * 1e-3;
                }
            };
            run(
                steps,
                &mut (),
                |_, i| half(i, 0..s),
                |i| {
                    if std::thread::current().id() != owner {
                        by_partner.fetch_add(1, Ordering::Relaxed);
                    }
                    half(i, s..n)
                },
                |_, i| {
                    let next = if i.is_multiple_of(2) { n } else { 0 };
                    // SAFETY: the serial part runs while the partner only polls
                    for x in unsafe { buf.get_mut(next..next + n) } {
                        *x *= 2.0;
                    }
                },
            );
        }
        (v, by_partner.into_inner())
    }

    #[test]
    fn lockstep_chain_equals_the_serial_chain_for_any_thread_count() {
        let serial = chain(203, 96, 500).0;
        assert_eq!(pool(1).install(|| chain(203, 96, 500)).1, 0);
        for _ in 0..5 {
            let (two, _) = pool(2).install(|| chain(203, 96, 500));
            assert!(two == serial);
        }
    }

    /// Runs `f` on another thread and fails if it does not finish within `secs`.
    fn within<F: FnOnce() + Send + 'static>(secs: u64, f: F) {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            f();
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(secs)).is_ok(),
            "lockstep passes did not finish within {secs} s (hang)"
        );
    }

    /// No hang: one thread (the partner never stolen), and two lockstep passes side by side on
    /// a 2-thread pool (each worker busy with its own pass, partners run after their owners),
    /// nested inside a parallel iterator, repeated.
    #[test]
    fn lockstep_cannot_hang() {
        within(60, || {
            let serial = chain(203, 96, 200).0;
            pool(1).install(|| assert!(chain(203, 96, 200).0 == serial));
            let two = pool(2);
            for _ in 0..20 {
                let (a, b) =
                    two.install(|| rayon::join(|| chain(203, 96, 200).0, || chain(203, 96, 200).0));
                assert!(a == serial && b == serial);
            }
            use rayon::prelude::*;
            let all: Vec<Vec<f64>> = two.install(|| {
                (0..8)
                    .into_par_iter()
                    .map(|_| chain(203, 96, 50).0)
                    .collect()
            });
            let short = chain(203, 96, 50).0;
            assert!(all.iter().all(|v| *v == short));
        });
    }

    /// A panic in a half ends the pass on both threads (propagated by the join), no hang.
    #[test]
    fn a_panicking_half_does_not_hang_the_other_thread() {
        within(60, || {
            for threads in [1, 2] {
                let r = std::panic::catch_unwind(|| {
                    pool(threads).install(|| {
                        run(
                            100,
                            &mut (),
                            |_, _| {},
                            |i| assert!(i != 50, "half 50"),
                            |_, _| {},
                        );
                    })
                });
                assert!(r.is_err());
            }
        });
    }
}
