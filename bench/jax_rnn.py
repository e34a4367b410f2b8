#!/usr/bin/env python3
"""Reference implementation of modeflow's RNN training step in JAX (jit, CPU, float64).

The same computation as benches/rnn_step.rs: N-neuron rate network, Euler step dt = 0.2,
tanh, T = 100 steps (pulse for the first 10, then nothing), batch 32 with initial noise 0.1,
aligned working-memory loss over the last 10 states, gradient w.r.t. all of W by reverse-mode
autodiff (jax.grad through lax.scan). Reports time per step and GFLOP/s with the same FLOP
count as modeflow (3 gemms of 2 N^2 B per Euler step).

Usage:  python3 bench/jax_rnn.py [--threads 1] [--sizes 64,128,256,512,1024]
Installs jax from PyPI into bench/.venv on first use (not part of the tests).
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
VPY = os.path.join(VENV, "bin", "python")


def ensure_venv():
    if os.path.abspath(sys.executable) == os.path.abspath(VPY):
        return
    if not os.path.exists(VPY):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([VPY, "-m", "pip", "install", "--quiet", "jax"])
    os.execv(VPY, [VPY] + sys.argv)


def main():
    args = sys.argv[1:]
    threads = 1
    sizes = [64, 128, 256, 512, 1024]
    for i, a in enumerate(args):
        if a == "--threads":
            threads = int(args[i + 1])
        if a == "--sizes":
            sizes = [int(s) for s in args[i + 1].split(",")]
    if threads == 1:
        # one core, like modeflow's single-threaded gemm
        os.environ["XLA_FLAGS"] = (
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    dt, T, B, zhat = 0.2, 100, 32, 0.5
    n_in, n_loss = 10, 10

    def make(n, key):
        k1, k2, k3 = jax.random.split(key, 3)
        w = 0.8 / jnp.sqrt(n) * jax.random.normal(k1, (n, n))
        u, _ = jnp.linalg.qr(jax.random.normal(k2, (n, 2)))
        u = u * jnp.sqrt(n)
        x0 = 0.1 * jax.random.normal(k3, (n, B))
        inputs = jnp.zeros((T, B)).at[:n_in].set(1.0)
        return w, u, x0, inputs

    def loss_fn(w, u, x0, inputs):
        a = u[:, 0:1]

        def step(x, uk):
            x = x + dt * (-x + w @ jnp.tanh(x) + a * uk[None, :])
            return x, x

        _, xs = jax.lax.scan(step, x0, inputs)  # T x N x B
        h = jnp.tanh(xs[-n_loss:])  # n_loss x N x B
        y = jnp.einsum("nr,tnb->trb", u, h) / u.shape[0]
        target = jnp.array([zhat, 0.0])[None, :, None]
        return 0.5 * jnp.mean(jnp.sum((y - target) ** 2, axis=1))

    grad = jax.jit(jax.value_and_grad(loss_fn))
    print(f"jax {jax.__version__}, devices {jax.devices()}, threads {threads}")
    print(f"{'N':>6} {'time/step [ms]':>16} {'GFLOP/s':>10}")
    for n in sizes:
        w, u, x0, inputs = make(n, jax.random.PRNGKey(1))
        l, g = grad(w, u, x0, inputs)
        g.block_until_ready()
        reps = max(3, int(2e9 / (6.0 * n * n * B * T)))
        t0 = time.perf_counter()
        for _ in range(reps):
            l, g = grad(w, u, x0, inputs)
        g.block_until_ready()
        t = (time.perf_counter() - t0) / reps
        flops = 3 * 2.0 * n * n * B * T
        print(f"{n:>6} {t * 1e3:>16.3f} {flops / t / 1e9:>10.2f}")


if __name__ == "__main__":
    ensure_venv()
    main()
