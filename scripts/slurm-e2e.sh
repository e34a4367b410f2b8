#!/usr/bin/env bash
# End-to-end test of sweeps on Slurm: submit a 4-task array sweep and its dependent merge job
# (the script `modeflow sweep --slurm-script` writes) to the one-node cluster of
# scripts/slurm-local.sh, wait (at most $SLURM_E2E_TIMEOUT s, default 150), and compare the
# merged CSV and JSON with the unsharded sweep byte for byte. Needs a running cluster and a
# built release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export SLURM_CONF=${SLURM_CONF:-${SLURM_LOCAL_DIR:-/tmp/modeflow-slurm}/slurm.conf}
BIN=$PWD/target/release/modeflow
TIMEOUT=${SLURM_E2E_TIMEOUT:-150}
WORK=$(mktemp -d /tmp/modeflow-slurm-e2e.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cp models/default.toml models/sweep-race.toml "$WORK/"
"$BIN" sweep "$WORK/sweep-race.toml" --out "$WORK/unsharded" --quiet
"$BIN" sweep "$WORK/sweep-race.toml" --out "$WORK/slurm" --slurm-script "$WORK/submit.sh" --tasks 4 --quiet
bash "$WORK/submit.sh"

deadline=$((SECONDS + TIMEOUT))
while [ ! -s "$WORK/slurm/race-grid.json" ] || squeue -h -n modeflow-race-grid-merge | grep -q .; do
    if [ $SECONDS -ge $deadline ]; then
        echo "slurm-e2e: no merged result after ${TIMEOUT} s" >&2
        squeue >&2 || true
        cat "$WORK"/slurm/slurm-logs/* >&2 2>/dev/null || true
        exit 1
    fi
    sleep 1
done
for ext in csv json; do
    if ! cmp "$WORK/unsharded/race-grid.$ext" "$WORK/slurm/race-grid.$ext"; then
        echo "slurm-e2e: merged race-grid.$ext differs from the unsharded sweep" >&2
        exit 1
    fi
done
shards=$(ls "$WORK"/slurm/race-grid.shard-*-of-4.json | wc -l)
if [ "$shards" -ne 4 ]; then
    echo "slurm-e2e: expected 4 shard files, found $shards" >&2
    exit 1
fi
echo "slurm-e2e: 4 array tasks + merge job on Slurm == unsharded sweep, byte for byte (csv, json)"
