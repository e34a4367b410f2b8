#!/usr/bin/env python3
"""modeflow against the JAX reference, side by side in one run.

Runs, alternating for each round so that both see the same machine state:
  1. `cargo bench --bench rnn_step` for the chosen sizes (criterion; both groups: the
     single-threaded step `rnn_train_step` and the batch-sharded step on all cores
     `rnn_train_step_sharded`, which is what `modeflow train` runs);
  2. `bench/jax_rnn.py --threads 1` (JAX/XLA on one core) and `--threads 0` (XLA's default,
     all cores).
Then prints one table: time per training step (forward + BPTT, T = 100, B = 32, all of W) and
GFLOP/s of each, and the ratios JAX / modeflow for one core and for the whole machine.
With several rounds, each entry is the median over rounds (and the range is shown).

Usage:  python3 bench/compare.py [--sizes 256] [--rounds 3] [--measurement-time 5]
The JAX script installs jax into bench/.venv on first use (network access to PyPI).
Run it on an otherwise idle machine: anything else running distorts both sides.
"""
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
T, B = 100, 32


def flops(n):
    # rnn::bptt::gemm_flops: W phi(X), W^T Lambda and dL/dW, 2 N^2 B per Euler step each
    return 3 * 2.0 * n * n * B * T


def criterion_mean_ms(group, n):
    path = os.path.join(ROOT, "target", "criterion", group, "N", str(n), "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"] / 1e6


def run_modeflow(sizes, measurement_time):
    pattern = "N/(" + "|".join(str(n) for n in sizes) + ")$"
    cmd = [
        "cargo", "bench", "--bench", "rnn_step", "--",
        "--warm-up-time", "1", "--measurement-time", str(measurement_time), pattern,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"cargo bench failed:\n{proc.stdout}\n{proc.stderr}")
    return {
        n: (criterion_mean_ms("rnn_train_step", n), criterion_mean_ms("rnn_train_step_sharded", n))
        for n in sizes
    }


def run_jax(sizes, threads):
    cmd = [sys.executable, os.path.join(HERE, "jax_rnn.py"), "--threads", str(threads),
           "--sizes", ",".join(str(n) for n in sizes)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        # typically no network access to PyPI for the first install of jax
        raise SystemExit(
            f"bench/jax_rnn.py failed (exit {proc.returncode}); the modeflow side alone is "
            f"`cargo bench --bench rnn_step`.\n{proc.stdout}\n{proc.stderr}"
        )
    out = proc.stdout
    times = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+([0-9.]+)\s+([0-9.]+)\s*$", line)
        if m:
            times[int(m.group(1))] = float(m.group(2))
    missing = [n for n in sizes if n not in times]
    if missing:
        raise SystemExit(f"jax_rnn.py printed no time for N = {missing}:\n{out}")
    return times


def main():
    args = sys.argv[1:]
    sizes, rounds, mt = [256], 3, 5
    for i, a in enumerate(args):
        if a == "--sizes":
            sizes = [int(s) for s in args[i + 1].split(",")]
        elif a == "--rounds":
            rounds = int(args[i + 1])
        elif a == "--measurement-time":
            mt = int(args[i + 1])
    cols = {k: {n: [] for n in sizes} for k in ("mf1", "mfall", "jax1", "jaxall")}
    for r in range(rounds):
        print(f"round {r + 1}/{rounds} ...", file=sys.stderr)
        for n, (one, sharded) in run_modeflow(sizes, mt).items():
            cols["mf1"][n].append(one)
            cols["mfall"][n].append(sharded)
        for n, t in run_jax(sizes, 1).items():
            cols["jax1"][n].append(t)
        for n, t in run_jax(sizes, 0).items():
            cols["jaxall"][n].append(t)

    def cell(k, n):
        v = cols[k][n]
        med = statistics.median(v)
        rng = f" ({min(v):.1f}-{max(v):.1f})" if len(v) > 1 else ""
        return med, f"{med:.1f}{rng}"

    print(f"cores: {os.cpu_count()}, rounds: {rounds}, T = {T}, B = {B}; times in ms per training "
          "step (median over rounds, range in brackets), GFLOP/s from the median")
    print("| N | modeflow 1 thread | JAX 1 thread | ratio | modeflow all cores | "
          "JAX all cores | ratio |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        m1, s1 = cell("mf1", n)
        j1, t1 = cell("jax1", n)
        ma, sa = cell("mfall", n)
        ja, ta = cell("jaxall", n)
        gf = lambda t: flops(n) / (t * 1e-3) / 1e9  # noqa: E731
        print(f"| {n} | {s1} [{gf(m1):.1f} GF/s] | {t1} [{gf(j1):.1f} GF/s] | {j1 / m1:.2f}x | "
              f"{sa} [{gf(ma):.1f} GF/s] | {ta} [{gf(ja):.1f} GF/s] | {ja / ma:.2f}x |")
    print("ratio = JAX time / modeflow time (> 1: modeflow faster). Per-round ratios:")
    for n in sizes:
        one = [j / m for j, m in zip(cols["jax1"][n], cols["mf1"][n])]
        allc = [j / m for j, m in zip(cols["jaxall"][n], cols["mfall"][n])]
        print(f"  N = {n}: one core " + ", ".join(f"{x:.2f}" for x in one)
              + "; all cores " + ", ".join(f"{x:.2f}" for x in allc))


if __name__ == "__main__":
    main()
