#!/bin/sh
# Side by side: `modeflow predict MODEL` with two binaries, alternating, ROUNDS rounds of N runs
# each; prints the CPU time (user + sys) per run of each round. The machine was shared with
# other builds when measured, so CPU time, not wall time, is the comparable number; take medians.
# usage: bench/predict_ab.sh BEFORE AFTER MODEL [N] [ROUNDS]
before=$1; after=$2; model=$3; n=${4:-50}; rounds=${5:-5}
cpu() { # total user+sys seconds of N runs of "$1 predict $model"
  /usr/bin/time -f "%U %S" sh -c "i=0; while [ \$i -lt $n ]; do $1 predict $model >/dev/null; i=\$((i+1)); done" 2>&1 | awk '{print $1 + $2}'
}
for r in $(seq 1 "$rounds"); do
  b=$(cpu "$before"); a=$(cpu "$after")
  echo "round $r: before $(echo "$b / $n * 1000" | bc -l | cut -c1-6) ms  after $(echo "$a / $n * 1000" | bc -l | cut -c1-6) ms  ratio $(echo "$b / $a" | bc -l | cut -c1-5)"
done
