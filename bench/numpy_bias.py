#!/usr/bin/env python3
"""numpy side of benches/bias.rs: the same two loops, timed the same way.

1. One GD step of a two-layer ReLU net f(x) = sum_j a_j relu(w_j . x), d = 20, k = 1000, n = 200,
   mean square loss (BLAS-backed matrix products, vectorised elementwise ops).
2. The 1e6-step B-6 run: GD on the mean logistic loss of the 10-point 2-D set (vectorised over
   the points, one Python iteration per step), recording w at log-spaced steps.

usage: python3 bench/numpy_bias.py [--soudry-steps N]   (needs numpy: pip install numpy)
"""
import sys
import time

import numpy as np


def gd_step_bench(reps=300):
    rng = np.random.default_rng(1)
    d, k, n = 20, 1000, 200
    W = 0.1 * rng.standard_normal((d, k))
    a = 0.1 * rng.standard_normal(k)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    eta = 1e-3

    def step(W, a):
        Z = X @ W
        H = np.maximum(Z, 0.0)
        f = H @ a
        r = (f - y) / n
        ga = H.T @ r
        M = (Z > 0.0) * (r[:, None] * a[None, :])
        GW = X.T @ M
        W -= eta * GW
        a -= eta * ga

    for _ in range(20):
        step(W, a)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            step(W, a)
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def soudry_bench(steps):
    pos = [(1.0, 1.0), (2.5, 0.0), (2.2, -1.0), (3.0, 2.0), (2.4, -0.3)]
    neg = [(-1.0, 1.0), (-2.5, 0.0), (-2.5, -2.0), (-2.5, 1.5), (-2.1, 0.4)]
    Z = np.array([p for p in pos] + [(-u, -v) for (u, v) in neg])  # z_i = y_i x_i
    eta = 1.0
    c = eta / len(Z)
    record = set(int(round(steps ** (i / 99))) for i in range(100))
    t0 = time.perf_counter()
    w = np.zeros(2)
    out = []
    for t in range(1, steps + 1):
        s = 1.0 / (1.0 + np.exp(Z @ w))
        w += c * (Z.T @ s)
        if t in record:
            out.append((t, w[0], w[1]))
    el = time.perf_counter() - t0
    rho = w - np.array([1.0, 0.0]) * np.log(steps)
    return el, rho


if __name__ == "__main__":
    steps = 1_000_000
    if "--soudry-steps" in sys.argv:
        steps = int(sys.argv[sys.argv.index("--soudry-steps") + 1])
    print(f"numpy {np.__version__}")
    t = gd_step_bench()
    print(f"two-layer GD step d=20 k=1000 n=200: {t * 1e6:.1f} us")
    el, rho = soudry_bench(steps)
    print(f"Soudry 2-D set, {steps} GD steps: {el:.3f} s   (rho = {rho[0]:.6f}, {rho[1]:.2e})")
