//! The batch split into shards of 16 trials, run in parallel and summed in a fixed order (bit-identical on any number of threads).

use super::*;

/// Trials per shard below which [`Sharded`] does not split the batch further: the per-step
/// products N x N x B_s keep whole register tiles (8 columns) and W is streamed once per step
/// for at least this many trials.
pub const SHARD_TRIALS: usize = 16;

/// Upper bound on the number of shards (the partial gradients are summed, N^2 each).
pub const MAX_SHARDS: usize = 16;

/// Number of shards [`Sharded`] splits a batch of `batch` trials into: `batch / 16`, at least 1
/// and at most 16. A function of the batch alone, never of the thread count, so that results
/// are bit-for-bit the same on any number of cores.
pub fn shard_count(batch: usize) -> usize {
    (batch / SHARD_TRIALS).clamp(1, MAX_SHARDS)
}

/// One shard of [`Sharded`]: its trials (a contiguous range of the batch), workspace,
/// partial gradient and partial loss.
#[derive(Debug, Clone)]
struct Shard {
    j0: usize,
    j1: usize,
    trials: Trials,
    ws: Workspace,
    grad: Vec<f64>,
    loss: f64,
}

/// The training step split over the trials of the batch: [`shard_count`] independent
/// forward + BPTT passes on contiguous ranges of trials, run in parallel (rayon), whose losses
/// and gradients are summed in shard order. The loss and the gradient are sums over trials, so
/// this is the same step up to the order of the floating-point sums; the shards depend only on
/// the batch size, so the result is deterministic and independent of the number of threads.
/// With one shard (batch < 32) the batch runs unsplit on one [`Workspace`].
#[derive(Debug, Clone)]
pub struct Sharded {
    n: usize,
    steps: usize,
    batch: usize,
    shards: Vec<Shard>,
}

impl Sharded {
    /// Shards for `net` and trials of `steps` steps and `batch` trials.
    pub fn new(net: &Network, steps: usize, batch: usize) -> Sharded {
        let s = shard_count(batch);
        let shards = (0..s)
            .map(|i| {
                let (j0, j1) = (i * batch / s, (i + 1) * batch / s);
                Shard {
                    j0,
                    j1,
                    trials: Trials::zeros(net.n, net.inputs(), net.outputs(), steps, j1 - j0),
                    ws: Workspace::new(net, steps, j1 - j0),
                    grad: Vec::new(),
                    loss: 0.0,
                }
            })
            .collect();
        Sharded {
            n: net.n,
            steps,
            batch,
            shards,
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    fn fit(&mut self, net: &Network, trials: &Trials) {
        if self.n != net.n || self.steps != trials.steps || self.batch != trials.batch {
            *self = Sharded::new(net, trials.steps, trials.batch);
        }
    }

    /// Run `f` on every shard (in parallel when there are several), each on its own copy of
    /// its trials; the first error in shard order is returned.
    fn run(
        &mut self,
        trials: &Trials,
        f: impl Fn(&mut Workspace, &Trials, &mut Vec<f64>) -> Result<f64> + Sync,
    ) -> Result<()> {
        use rayon::prelude::*;
        if let [one] = self.shards.as_mut_slice() {
            one.loss = f(&mut one.ws, trials, &mut one.grad)?;
            return Ok(());
        }
        self.shards
            .par_iter_mut()
            .map(|sh| {
                trials.copy_subset_into(sh.j0, sh.j1, &mut sh.trials);
                sh.loss = f(&mut sh.ws, &sh.trials, &mut sh.grad)?;
                Ok(())
            })
            .collect::<Vec<Result<()>>>()
            .into_iter()
            .collect()
    }

    /// Forward, loss and gradient (layout of [`Network::params`]) summed over the shards.
    pub fn loss_and_grad(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        grad: &mut [f64],
    ) -> Result<f64> {
        self.loss_and_grad_with(net, trials, t, Credit::Exact, grad)
    }

    /// [`Sharded::loss_and_grad`] with the adjoint recursion of a learning rule ([`Credit`]).
    pub fn loss_and_grad_with(
        &mut self,
        net: &Network,
        trials: &Trials,
        t: &Trainable,
        credit: Credit<'_>,
        grad: &mut [f64],
    ) -> Result<f64> {
        self.fit(net, trials);
        let len = grad.len();
        self.run(trials, |ws, tr, g| {
            g.resize(len, 0.0);
            ws.loss_and_grad_with(net, tr, t, credit, g)
        })?;
        let mut loss = 0.0;
        for (i, sh) in self.shards.iter().enumerate() {
            loss += sh.loss;
            if i == 0 {
                grad.copy_from_slice(&sh.grad);
            } else {
                for (a, &b) in grad.iter_mut().zip(&sh.grad) {
                    *a += b;
                }
            }
        }
        Ok(loss)
    }

    /// End state X_T (N x B, all trials in batch order) of the last forward pass.
    pub fn end_state(&self) -> DMatrix<f64> {
        let mut x = DMatrix::zeros(self.n, self.batch);
        for sh in &self.shards {
            x.columns_mut(sh.j0, sh.j1 - sh.j0)
                .copy_from(&sh.ws.end_state());
        }
        x
    }

    /// Forward and loss only, summed over the shards.
    pub fn loss_only(&mut self, net: &Network, trials: &Trials) -> Result<f64> {
        self.fit(net, trials);
        self.run(trials, |ws, tr, _| ws.loss_only(net, tr))?;
        Ok(self.shards.iter().map(|sh| sh.loss).sum())
    }
}
