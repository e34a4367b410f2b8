//! One pass on two threads: the products of a single forward + BPTT pass split by rows.
//!
//! A batch-1 pass (the working-memory tasks of `models/rnn-rotation.toml`: N = 200, T = 70)
//! is a chain of T matrix-vector products forward and T backward, each needing the whole
//! vector of the step before, plus one dL/dW product N x N x T at the end. [`Sharded`] cannot
//! split it (one trial), so when a second rayon worker may be idle the time loops run in
//! *lockstep* (`bptt::lockstep`): one `rayon::join` per pass (forward; exact backward), each
//! step's product and elementwise follow-up in two row halves, rows 0..s on this thread and
//! rows s..N claimed step by step by the idle worker that stole the pass's partner job (or
//! computed here when it has not claimed them: a busy or absent second worker costs one
//! push and pop per pass, no wait). The dL/dW chunk product after the backward loop is split
//! by rows with one `rayon::join`. ([`Workspace::forward_lockstep`],
//! [`Workspace::backward_lockstep`]; until 2026-12-05 evening each step was its own
//! `rayon::join`, whose idle worker returned to rayon's sleep protocol between steps.)
//!
//! **Bit for bit the same results.** Every row of a product is computed by the same kernel
//! over the same inner blocks in the same order whichever rows are asked for, as long as the
//! split point s is a multiple of [`SPLIT_ROWS`] (24 rows: three packed panels, and a multiple
//! of every matrixmultiply kernel's 4 or 8 rows, so each entry lies in a full or in a masked
//! micro-tile in both the split and the whole product):
//! - the step products go through [`PackedMatrix::gemm_rows`] (test
//!   `rows_of_a_split_product_equal_the_whole_product_bit_for_bit` in `num::packed`);
//! - the dL/dW chunk product through nalgebra's `gemm` on row blocks of dL/dW and Lambda,
//!   which hands both halves to `matrixmultiply::dgemm` with the same k = chunk columns and
//!   the same strides whenever the whole product goes there (every dimension > 5, nalgebra's
//!   `SMALL_DIM`; otherwise the product is not split);
//! - the elementwise steps (tanh, the adjoint update) are per entry anyway.
//!
//! So the decision to split may depend on the thread count and on timing without changing a
//! bit (tests `split_passes_equal_serial_passes_bit_for_bit` here and
//! `split_passes_give_the_same_report_bit_for_bit` in `tests/split_passes.rs`).
//!
//! **On by default** (`MODEFLOW_SPLIT_PASSES=off` turns it off, [`ENV`]): on the idle 2-vCPU
//! machine (2026-12-05 22:10-22:16 UTC, 3 x 8 alternating rounds, numbers and command in
//! `bench/README.md`, "Lockstep passes") `models/rnn-rotation.toml` on 2 threads took median
//! 0.85-0.98 s with lockstep passes against 0.94-1.02 s with whole passes (one thread 1.47-1.51
//! s): 0.56-0.66x against 0.62-0.69x, lockstep faster in every batch; the fast-tier `check` took
//! 42.0 / 43.0 s against 46.2 / 44.4 s. Under load (load average 6-11, real-time priority)
//! lockstep lost 3-20 % (0.91-1.10 s against 0.86-0.92 s), because each step's hand-over
//! between two vCPUs that the host does not keep scheduled together costs about as much as the
//! ~2 us half it saves; `off` is the setting for a machine that is busy with other work.
//! When on, a pass is split only on a rayon worker of a pool with >= 2 threads (`rayon::join`
//! from outside a pool would block on the pool for every product), for N >= [`SPLIT_MIN_N`],
//! and the step products only at batch 1 (their rows are then contiguous; larger batches are
//! split into shards by [`Sharded`] from 32 trials on).

use std::ops::Range;
use std::sync::OnceLock;

use super::backward::{
    chunk_gather, chunk_product, input_gradient, latent_block, readout_cotangent,
};
use super::lockstep::{self, SharedBuf};
use super::*;
use crate::num::packed::SPLIT_ROWS;

/// The environment variable that switches the split off (read once per process).
pub const ENV: &str = "MODEFLOW_SPLIT_PASSES";

/// The allowed values of [`ENV`].
pub const ALLOWED: &str = "on | off (or unset: on)";

/// Parse a value of [`ENV`] (`None`: unset): whether passes may be split.
pub fn parse(value: Option<&str>) -> std::result::Result<bool, String> {
    match value.map(str::trim) {
        None | Some("") | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(v) => Err(v.to_string()),
    }
}

static POLICY: OnceLock<std::result::Result<bool, String>> = OnceLock::new();

fn read() -> &'static std::result::Result<bool, String> {
    POLICY.get_or_init(|| {
        let r = parse(std::env::var(ENV).ok().as_deref());
        if let Err(bad) = &r {
            eprintln!("warning: {ENV} = {bad:?} is not one of {ALLOWED}; passes run whole");
        }
        r
    })
}

/// The policy, or a bad-input error naming the variable, its value and the allowed values
/// (the CLI checks it at start: exit 2).
pub fn check_env() -> Result<bool> {
    read().clone().map_err(|bad| Error::Parameter {
        file: "environment".into(),
        field: ENV.into(),
        value: bad,
        allowed: ALLOWED.into(),
        reason: "unknown split policy".into(),
    })
}

/// Tests switch the split on whatever the environment (it changes no bit, so other tests
/// running meanwhile are unaffected).
#[cfg(test)]
static FORCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn enabled() -> bool {
    #[cfg(test)]
    if FORCE.load(std::sync::atomic::Ordering::Relaxed) {
        return true;
    }
    read().clone().unwrap_or(false)
}

/// Smallest N whose passes are split. Measured (`bench/README.md`, "intra-pass split"; one
/// seed of the rnn-rotation task, 150 GD steps, the second core idle): N = 128 0.14 s split
/// against 0.13 s whole (the fork-join and wake-up costs exceed the halves of ~1 us), N = 200
/// 0.24 against 0.29 s, N = 256 0.40 against 0.53 s, N = 320 0.67 against 0.92 s.
pub const SPLIT_MIN_N: usize = 192;

/// nalgebra hands a product to matrixmultiply only when every dimension exceeds this
/// (`SMALL_DIM` in nalgebra's `gemm`); a split must keep both halves on that path.
const NALGEBRA_SMALL_DIM: usize = 5;

/// The row where the products of an N-neuron pass are split when another rayon worker may
/// take half of them: N/2 rounded down to a multiple of [`SPLIT_ROWS`]; `None` when the pass
/// runs whole (not on a rayon worker, a pool of one thread, N < [`SPLIT_MIN_N`]).
pub fn split_row(n: usize) -> Option<usize> {
    let on_pool = rayon::current_thread_index().is_some() && rayon::current_num_threads() > 1;
    if !enabled() || !on_pool || n < SPLIT_MIN_N {
        return None;
    }
    let s = (n / 2 / SPLIT_ROWS) * SPLIT_ROWS;
    (s > NALGEBRA_SMALL_DIM && n - s > NALGEBRA_SMALL_DIM).then_some(s)
}

/// The split of the dL/dW chunk product (N x cols times cols x N) at row s, when the whole
/// product goes to matrixmultiply (cols > 5) and so do both halves.
pub(super) fn chunk_split(split: Option<usize>, cols: usize) -> Option<usize> {
    split.filter(|_| cols > NALGEBRA_SMALL_DIM)
}

/// X_{k+1}[rows] += dt W H_k [rows], then (when `hn` is given) H_{k+1}[rows] = phi(X_{k+1})
/// and, with `xnn`, X_{k+2}[rows] = (1 - dt) X_{k+1} (without: the last step, H_T only): the
/// rows `rows` of one forward step at batch 1 (`xn`, `hn`, `xnn` hold just those rows).
#[allow(clippy::too_many_arguments)]
pub(super) fn forward_rows(
    wp: &PackedMatrix,
    rows: std::ops::Range<usize>,
    dt: f64,
    phi: Phi,
    h: &[f64],
    xn: &mut [f64],
    hn: Option<&mut [f64]>,
    xnn: Option<&mut [f64]>,
) {
    wp.gemm_rows(rows, dt, h, 1, 1.0, xn);
    match (hn, xnn) {
        (Some(hn), Some(xnn)) => phi.apply_and_scale(xn, hn, xnn, 1.0 - dt),
        (Some(hn), None) => phi.apply(xn, hn),
        _ => {}
    }
}

/// Z[rows] = dt (W^T Lambda_{k+1})[rows] and Lambda_k[rows] = (1 - dt) Lambda_{k+1} + phi'(X_k)
/// .* Z on those rows: the rows `rows` of one exact adjoint step at batch 1 (`x`, `h`, `z`,
/// `lk` hold those rows of X_k, H_k, Z, Lambda_k; `lam_next` is the whole Lambda_{k+1}).
#[allow(clippy::too_many_arguments)]
pub(super) fn adjoint_rows(
    wtp: &PackedMatrix,
    rows: std::ops::Range<usize>,
    dt: f64,
    phi: Phi,
    lam_next: &[f64],
    x: &[f64],
    h: &[f64],
    z: &mut [f64],
    lk: &mut [f64],
) {
    let r0 = rows.start;
    let len = rows.len();
    wtp.gemm_rows(rows, dt, lam_next, 1, 0.0, z);
    adjoint_update(phi, 1.0 - dt, &lam_next[r0..r0 + len], x, h, z, lk);
}

impl Workspace {
    /// The time loop of a batch-1 forward pass in lockstep ([`lockstep::run`]), split at row
    /// s: step k computes X_{k+1} += dt W H_k on rows 0..s here and on rows s..N on whichever
    /// thread claims them, each half followed on its rows by H_{k+1} = phi(X_{k+1}) and
    /// X_{k+2} = (1 - dt) X_{k+1} ([`forward_rows`]); at a step with input the halves do only
    /// the product, and the input term and phi follow on all rows here (serial part). The
    /// same operations on the same rows as the whole loop in [`Workspace::forward`].
    /// Expects X_0, H_0 and X_1 = (1 - dt) X_0 in place and W packed.
    pub(super) fn forward_lockstep(&mut self, net: &Network, trials: &Trials, s: usize) {
        let (n, steps, keep, dt, phi) = (self.n, self.steps, self.keep_states, net.dt, net.phi);
        let k_in = net.inputs();
        let wp = &self.wp;
        let xs = SharedBuf::new(&mut self.xs);
        let hs = SharedBuf::new(&mut self.hs);
        let xr = |k: usize| state_rows(keep, k, n);
        let input = |k: usize| k_in > 0 && trials.inputs.column(k).iter().any(|&v| v != 0.0);
        let half = |k: usize, rows: Range<usize>| {
            let (r0, r1) = (rows.start, rows.end);
            let xn = xr(k + 1);
            // SAFETY (all four): during step k both halves read H_k, written in step k - 1
            // (before step k was opened), and nobody writes it; each half writes only its own
            // rows r0..r1 of X_{k+1}, H_{k+1} and X_{k+2} (disjoint blocks of the buffers:
            // columns k + 1 and k + 2 of the trajectory, or the two slots of the ring), which
            // nothing else reads or writes until both halves are done
            let h = unsafe { hs.get(k * n..(k + 1) * n) };
            let xn = unsafe { xs.get_mut(xn.start + r0..xn.start + r1) };
            if input(k) {
                wp.gemm_rows(rows, dt, h, 1, 1.0, xn);
                return;
            }
            let hn = unsafe { hs.get_mut((k + 1) * n + r0..(k + 1) * n + r1) };
            let xnn = (k + 1 < steps).then(|| {
                let x = xr(k + 2);
                unsafe { xs.get_mut(x.start + r0..x.start + r1) }
            });
            forward_rows(wp, rows, dt, phi, h, xn, Some(hn), xnn);
        };
        lockstep::run(
            steps,
            &mut (),
            |_, k| half(k, 0..s),
            |k| half(k, s..n),
            |_, k| {
                if !input(k) {
                    return;
                }
                // SAFETY: the serial part of step k runs after both halves, while the partner
                // only polls the step counters: nothing else touches the buffers
                let xn = unsafe { xs.get_mut(xr(k + 1)) };
                let hn = unsafe { hs.get_mut((k + 1) * n..(k + 2) * n) };
                let uk = trials.inputs.columns(k, 1);
                DMatrixViewMut::from_slice(xn, n, 1).gemm(dt, &net.w_in, &uk, 1.0);
                // phi_step(k + 1): H_{k+1}, and X_{k+2} = (1 - dt) X_{k+1} before the last step
                if k + 1 == steps {
                    phi.apply(xn, hn);
                } else {
                    let xnn = unsafe { xs.get_mut(xr(k + 2)) };
                    phi.apply_and_scale(xn, hn, xnn, 1.0 - dt);
                }
            },
        );
    }
}

/// The owner's own state during a lockstep backward pass.
struct BackwardOwner<'a> {
    z: &'a mut DMatrix<f64>,
    p: &'a mut DMatrix<f64>,
    lam_chunk: &'a mut Vec<f64>,
    chunk: &'a mut Chunk,
    g_rec: &'a mut [f64],
    g_in: &'a mut [f64],
}

impl Workspace {
    /// Steps T-1 .. 1 of an exact batch-1 backward pass in lockstep ([`lockstep::run`]), split
    /// at row s (after step T): the adjoint step Lambda_k from Lambda_{k+1} runs on rows 0..s
    /// here and on rows s..N on whichever thread claims them ([`adjoint_rows`]); then, here,
    /// the readout cotangent g_k and Lambda_k's contributions to the gradient, as in the whole
    /// loop of `backward_with` (the same operations in the same order). The last dL/dW chunk
    /// product (k = 1) runs after the pass, split by rows with `rayon::join`; earlier chunk
    /// products (T > [`CHUNK_COLUMNS`]) run whole inside it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward_lockstep(
        &mut self,
        net: &Network,
        fb: &DMatrix<f64>,
        trials: &Trials,
        t: &Trainable,
        active: &[bool],
        s: usize,
        chunk: &mut Chunk,
        g_rec: &mut [f64],
        g_in: &mut [f64],
    ) {
        let (n, steps, keep, dt, phi) = (self.n, self.steps, self.keep_states, net.dt, net.phi);
        let full = t.recurrent == Recurrent::Full;
        // the second half's scratch for Z (allocated on first use)
        self.z_half.resize(n - s, 0.0);
        let Workspace {
            xs,
            hs,
            lam,
            z,
            ey,
            p,
            wtp,
            lam_chunk,
            u_t,
            z_half,
            ..
        } = self;
        let (xs, hs, ey, wtp, u_t) = (&*xs, &*hs, &*ey, &*wtp, &*u_t);
        let lam = SharedBuf::new(lam);
        let zb = SharedBuf::new(z_half);
        let mut owner = BackwardOwner {
            z,
            p,
            lam_chunk,
            chunk,
            g_rec,
            g_in,
        };
        // session step i is the adjoint step k = T - 1 - i
        let k_of = |i: usize| steps - 1 - i;
        lockstep::run(
            steps - 1,
            &mut owner,
            |o, i| {
                let k = k_of(i);
                let (rx, lk) = (state_rows(keep, k, n), slot(k, n));
                // SAFETY: during step k both halves read Lambda_{k+1} (the other slot of the
                // ring, complete before step k was opened) and nobody writes it; each half
                // writes only its rows of Lambda_k's slot (rows 0..s here)
                let ln = unsafe { lam.get(slot(k + 1, n)) };
                let la = unsafe { lam.get_mut(lk.start..lk.start + s) };
                let (x, h) = (&xs[rx.start..rx.start + s], &hs[k * n..k * n + s]);
                let za = &mut o.z.as_mut_slice()[..s];
                adjoint_rows(wtp, 0..s, dt, phi, ln, x, h, za, la);
            },
            |i| {
                let k = k_of(i);
                let (rx, lk) = (state_rows(keep, k, n), slot(k, n));
                // SAFETY: as for the first half, rows s..N of Lambda_k's slot; the scratch
                // `zb` is touched only by the thread that claimed this half
                let ln = unsafe { lam.get(slot(k + 1, n)) };
                let lb = unsafe { lam.get_mut(lk.start + s..lk.end) };
                let zb = unsafe { zb.get_mut(0..n - s) };
                let (x, h) = (&xs[rx.start + s..rx.end], &hs[k * n + s..(k + 1) * n]);
                adjoint_rows(wtp, s..n, dt, phi, ln, x, h, zb, lb);
            },
            |o, i| {
                let k = k_of(i);
                // SAFETY: the serial part of step k runs after both halves, while the partner
                // only polls the step counters
                let lk = unsafe { lam.get_mut(slot(k, n)) };
                if active[k - 1] {
                    let (x, h) = (&xs[state_rows(keep, k, n)], &hs[k * n..(k + 1) * n]);
                    readout_cotangent(net, fb, ey, k, o.z, x, h, lk);
                }
                let lk = &*lk;
                if full {
                    // the last chunk (k = 1) is multiplied after the pass, split
                    if chunk_gather(o.lam_chunk, o.chunk, k, steps, lk) && k > 1 {
                        chunk_product(o.lam_chunk, hs, n, 1, dt, o.chunk, None, o.g_rec);
                    }
                } else {
                    latent_block(o.p, u_t, n, 1, k, lk);
                }
                if t.input {
                    input_gradient(net, trials, n, 1, k, lk, o.g_in);
                }
            },
        );
        if full {
            let o = owner;
            chunk_product(o.lam_chunk, hs, n, 1, dt, o.chunk, o.chunk.split, o.g_rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::network::NetworkSpec;
    use crate::rnn::task::{LossKind, Task, WorkingMemory};
    use crate::rnn::Readout;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn setup(n: usize, batch: usize, phi: Phi, readout: Readout, u_s: f64) -> (Network, Trials) {
        let mut rng = StdRng::seed_from_u64(3);
        let net = Network::new(
            &NetworkSpec {
                n,
                g: 0.9,
                dt: 0.2,
                phi,
                readout,
                m0: [[0.0; 2]; 2],
            },
            &mut rng,
        );
        let task = Task::WorkingMemory(WorkingMemory {
            pattern: 0,
            u_p: 1.0,
            t_in: 2.0,
            u_s,
            t_d: 4.0,
            t_loss: 2.0,
            zhat: 0.5,
            loss: LossKind::Aligned,
            sigma0: 0.1,
        });
        let trials = task.trials(n, net.inputs(), net.outputs(), net.dt, batch, &mut rng);
        (net, trials)
    }

    /// loss, gradient and end state of one pass
    fn pass(net: &Network, trials: &Trials, t: &Trainable, credit: Credit<'_>) -> Vec<u64> {
        let mut ws = Workspace::new(net, trials.steps, trials.batch);
        let mut grad = vec![0.0; net.num_params(t)];
        let l = ws
            .loss_and_grad_with(net, trials, t, credit, &mut grad)
            .unwrap();
        let mut bits: Vec<u64> = grad.iter().map(|v| v.to_bits()).collect();
        bits.push(l.to_bits());
        bits.extend(ws.end_state().iter().map(|v| v.to_bits()));
        bits
    }

    /// One forward + BPTT pass on a 2-thread pool (products split at row 96 of N = 203, not a
    /// multiple of the panel height) equals the same pass run whole on one thread, bit for
    /// bit: batch 1 (step products and dL/dW split; input on the first steps only, or on
    /// every step) and batch 3 (dL/dW split), tanh and erf (states kept), all of W, W_in and
    /// w_out trained, exact and truncated credit.
    #[test]
    fn the_policy_is_off_unless_asked_and_refuses_unknown_values() {
        assert_eq!(parse(None), Ok(true));
        assert_eq!(parse(Some("")), Ok(true));
        assert_eq!(parse(Some("off")), Ok(false));
        assert_eq!(parse(Some(" on ")), Ok(true));
        assert_eq!(parse(Some("yes")), Err("yes".to_string()));
    }

    /// Lockstep passes cannot hang: on a 1-thread pool (the partner never stolen: the owner
    /// computes every half) and two passes side by side on a 2-thread pool (each worker the
    /// owner of its own pass, nested in a join), repeated; each equals the whole pass bit for
    /// bit. Guarded by a timeout (a hang fails the test instead of stalling the suite).
    #[test]
    fn lockstep_passes_cannot_hang_alone_or_side_by_side() {
        FORCE.store(true, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let t = Trainable {
                recurrent: Recurrent::Full,
                input: true,
                readout: true,
            };
            let (net, trials) = setup(203, 1, Phi::Tanh, Readout::Rate, 0.3);
            // outside a pool: never split
            let whole = pass(&net, &trials, &t, Credit::Exact);
            let pool = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
            };
            assert!(pool(1).install(|| pass(&net, &trials, &t, Credit::Exact)) == whole);
            let two = pool(2);
            for _ in 0..10 {
                let (a, b) = two.install(|| {
                    rayon::join(
                        || pass(&net, &trials, &t, Credit::Exact),
                        || pass(&net, &trials, &t, Credit::Exact),
                    )
                });
                assert!(a == whole && b == whole);
            }
            tx.send(()).unwrap();
        });
        let r = rx.recv_timeout(std::time::Duration::from_secs(300));
        assert!(r.is_ok(), "lockstep passes hung or failed: {r:?}");
    }

    #[test]
    fn split_passes_equal_serial_passes_bit_for_bit() {
        FORCE.store(true, std::sync::atomic::Ordering::Relaxed);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert_eq!(two.install(|| split_row(203)), Some(96));
        assert_eq!(one.install(|| split_row(203)), None);
        assert_eq!(two.install(|| split_row(SPLIT_MIN_N - 1)), None);
        assert_eq!(split_row(203), None, "outside a pool: never split");
        let t = Trainable {
            recurrent: Recurrent::Full,
            input: true,
            readout: true,
        };
        for (phi, readout) in [(Phi::Tanh, Readout::Rate), (Phi::Erf, Readout::State)] {
            for (batch, u_s) in [(1, 0.0), (1, 0.3), (3, 0.0)] {
                let (net, trials) = setup(203, batch, phi, readout, u_s);
                for credit in [Credit::Exact, Credit::Truncated { h: 4 }] {
                    let serial = one.install(|| pass(&net, &trials, &t, credit));
                    // repeated: the second worker takes halves at different moments each time
                    for _ in 0..3 {
                        let split = two.install(|| pass(&net, &trials, &t, credit));
                        assert!(
                            serial == split,
                            "{phi:?} {readout:?} batch {batch} u_s {u_s} {credit:?}"
                        );
                    }
                }
            }
        }
    }
}
