#!/usr/bin/env python3
"""The done-when ratio of issue 17 in one run: the 100 x 100 race grid through the CLI
(`modeflow sweep bench/sweep-race-100.toml`, the four outputs, progress file and all) against the
in-process task-B-only grid (criterion's `linear2x2/race100/task B only (interference_grid)`),
alternating round by round so both see the same machine load.

    cargo build --release && cargo bench --bench linear2x2 --no-run
    python3 bench/sweep_cli.py [ROUNDS]        # default 5

Prints per round the CLI's wall time (and its user/system CPU) and criterion's median of the
task-B-only grid, then medians and the ratio CLI / task-B-only."""
import glob, os, re, resource, shutil, statistics, subprocess, sys, tempfile, time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
cli = os.path.join(root, "target/release/modeflow")
benches = [p for p in glob.glob(os.path.join(root, "target/release/deps/linear2x2-*"))
           if os.access(p, os.X_OK) and not p.endswith(".d")]
if not os.path.exists(cli) or not benches:
    sys.exit("build first: cargo build --release && cargo bench --bench linear2x2 --no-run")
bench = max(benches, key=os.path.getmtime)
unit = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}

def sweep_once():
    out = tempfile.mkdtemp(prefix="race100-")
    try:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([cli, "sweep", "bench/sweep-race-100.toml", "--out", out, "-q"],
                       cwd=root, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    finally:
        shutil.rmtree(out, ignore_errors=True)

def task_b_once():
    p = subprocess.run([bench, "--bench", "--warm-up-time", "1", "--measurement-time", "3",
                        "race100/task B only"], cwd=root, check=True, capture_output=True,
                       text=True)
    m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", p.stdout)
    if not m:
        sys.exit("could not parse criterion output:\n" + p.stdout)
    return float(m.group(1)) * unit[m.group(2)]

walls, tbs = [], []
for k in range(rounds):
    wall, user, sys_ = sweep_once()
    tb = task_b_once()
    walls.append(wall)
    tbs.append(tb)
    print(f"round {k + 1}: sweep CLI {wall:.3f} s wall ({user:.2f} s user, {sys_:.2f} s sys); "
          f"task-B-only grid {tb:.3f} s; ratio {wall / tb:.2f}", flush=True)
w, t = statistics.median(walls), statistics.median(tbs)
print(f"median: sweep CLI {w:.3f} s ({min(walls):.3f}-{max(walls):.3f}), task-B-only {t:.3f} s "
      f"({min(tbs):.3f}-{max(tbs):.3f}), ratio {w / t:.2f}; load average {os.getloadavg()[0]:.1f}")
