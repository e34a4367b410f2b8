#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for the end-to-end sweep test (scripts/slurm-e2e.sh).
#
#   scripts/slurm-local.sh install   apt-get install slurm-wlm munge (root; Debian/Ubuntu)
#   scripts/slurm-local.sh start     write the configuration, start munged, slurmctld, slurmd
#   scripts/slurm-local.sh stop      stop the daemons this script started
#   scripts/slurm-local.sh status    sinfo
#
# Everything lives under $SLURM_LOCAL_DIR (default /tmp/modeflow-slurm): slurm.conf, state,
# logs, pid files. proctrack/linuxproc and task/none need neither cgroups nor systemd, so this
# runs in a container as root. The node offers all CPUs and RealMemory of this machine.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/modeflow-slurm}
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

install() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        echo "slurm-wlm and munge already installed"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
}

start() {
    if [ -s "$DIR/run/slurmctld.pid" ] && kill -0 "$(cat "$DIR/run/slurmctld.pid")" 2>/dev/null; then
        echo "slurm-local: already running ($CONF)"
        sinfo
        return 0
    fi
    mkdir -p "$DIR"/{state,spool,log,run}
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
    cat >"$CONF" <<CONF
ClusterName=modeflow-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    # munge: a key, its directories, the daemon
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    fi
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
    chmod 0700 /etc/munge /var/lib/munge /var/log/munge
    chmod 0755 /run/munge
    chmod 0400 /etc/munge/munge.key
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        runuser -u munge -- munged --pid-file=/run/munge/munged.pid
        sleep 1
    fi
    munge -n | unmunge >/dev/null
    # slurm: the controller, then the node daemon
    slurmctld -f "$CONF"
    slurmd -f "$CONF"
    for _ in $(seq 1 60); do
        if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            sinfo
            return 0
        fi
        sleep 1
    done
    echo "slurm-local: the node did not become idle within 60 s" >&2
    sinfo >&2 || true
    tail -n 20 "$DIR"/log/*.log >&2 || true
    return 1
}

stop() {
    for d in slurmd slurmctld; do
        local pidf=$DIR/run/$d.pid
        if [ -s "$pidf" ]; then
            local pid
            pid=$(cat "$pidf")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 20); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            rm -f "$pidf"
        fi
    done
    if [ -s /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
        rm -f /run/munge/munged.pid
    fi
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
status) sinfo ;;
*)
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
    ;;
esac
