#!/usr/bin/env bash
# slurm-local.sh - throwaway single-node SLURM cluster on this machine.
#
# Usage: scripts/slurm-local.sh up|down|status
#
#   up      install slurm-wlm + munge if missing (apt-get), write
#           /etc/slurm/slurm.conf, start munged, slurmctld and slurmd, and wait
#           until the node is idle and `srun -N1 hostname` works.  Idempotent.
#   down    cancel queued/running jobs, stop the daemons this script started
#           (by the pid files it wrote, never by name) and wait for them to exit.
#   status  show which daemons run and `sinfo`; exit 0 if the cluster answers.
#
# Must run as root (the daemons run as root, SlurmUser=root; munged runs as
# user munge).  No cgroups, no accounting database: proctrack/linuxproc,
# task/none, jobacct_gather/none, accounting_storage/none (so `sacct` does not
# work; use `squeue` / job output files).  Job credentials expire after 10 s
# (AuthInfo=cred_expire=10), so a requeued job starts again 10 s later, not 120 s.
#
# Environment:
#   SLURM_LOCAL_DIR      private state/spool/log/pid dir (default /var/lib/semiad-slurm)
#   SLURM_LOCAL_TIMEOUT  seconds `up` waits for the node to become usable (default 30)
#   SLURM_LOCAL_FORCE=1  overwrite an /etc/slurm/slurm.conf this script did not write
#                        (the old file is kept as slurm.conf.semiad-bak)

set -euo pipefail

readonly MARKER="# Managed by semiad scripts/slurm-local.sh - throwaway local cluster."
readonly CONF_DIR=/etc/slurm
readonly CONF="$CONF_DIR/slurm.conf"
readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_RUN=/run/munge
readonly BASE="${SLURM_LOCAL_DIR:-/var/lib/semiad-slurm}"
readonly TIMEOUT="${SLURM_LOCAL_TIMEOUT:-30}"
readonly PID_DIR="$BASE/run"
readonly MUNGE_PID_DIR="$BASE/run/munge"
readonly LOG_DIR="$BASE/log"
readonly STATE_DIR="$BASE/state"
readonly SPOOL_DIR="$BASE/spool"

T0=$(date +%s.%N)

log() { printf '[slurm-local] %s\n' "$*"; }
die() { printf 'slurm-local: error: %s\n' "$*" >&2; exit 1; }

elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

pidfile_of() {
    case "$1" in
        munged) echo "$MUNGE_PID_DIR/munged.pid" ;;
        slurmctld) echo "$PID_DIR/slurmctld.pid" ;;
        slurmd) echo "$PID_DIR/slurmd.pid" ;;
        *) die "unknown daemon $1" ;;
    esac
}

# Print the pid of daemon $1 if its pid file names a live process with that
# name; return 1 otherwise.
daemon_pid() {
    local name=$1 pf pid comm
    pf=$(pidfile_of "$name")
    [[ -r $pf ]] || return 1
    pid=$(tr -dc '0-9' <"$pf")
    [[ -n $pid ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$name" ]] || return 1
    echo "$pid"
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (uid 0); try: sudo $0 ${CMD:-}"
}

have_binaries() {
    local b
    for b in munged munge unmunge slurmctld slurmd sinfo srun sbatch squeue scontrol scancel; do
        command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || return 1
    done
}

slurm_version() { slurmd -V 2>/dev/null || echo 'slurm ?'; }

install_packages() {
    if have_binaries; then
        log "slurm-wlm and munge already installed ($(slurm_version))"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "slurm/munge binaries missing and apt-get is unavailable; install slurm-wlm and munge manually"
    local t policy_created=0
    t=$(date +%s)
    log "installing slurm-wlm munge with apt-get ..."
    # Keep the packages' init scripts from starting daemons during install.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge)
    local ok=0
    if "${apt[@]}" >"$BASE/apt.log" 2>&1; then
        ok=1
    else
        log "apt-get install failed; running apt-get update and retrying"
        if apt-get update -q >>"$BASE/apt.log" 2>&1 && "${apt[@]}" >>"$BASE/apt.log" 2>&1; then
            ok=1
        fi
    fi
    [[ $policy_created -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
    [[ $ok -eq 1 ]] || die "cannot install slurm-wlm/munge with apt-get (see $BASE/apt.log)"
    have_binaries || die "packages installed but slurm/munge binaries still missing (see $BASE/apt.log)"
    log "installed $(slurm_version) in $(($(date +%s) - t)) s"
}

make_dirs() {
    mkdir -p "$BASE" "$PID_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR/slurmd" "$MUNGE_PID_DIR"
    chmod 0755 "$BASE" "$PID_DIR"
    chmod 0700 "$STATE_DIR" "$SPOOL_DIR"
}

munge_setup() {
    getent passwd munge >/dev/null || die "user munge does not exist (munge package broken?)"
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0700 /etc/munge
    chown munge:munge "$MUNGE_PID_DIR"
    chmod 0755 "$MUNGE_PID_DIR"
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating munge key $MUNGE_KEY"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munged() {
    local pid
    if pid=$(daemon_pid munged); then
        log "munged already running (pid $pid)"
        return 0
    fi
    if munge_works; then
        log "a munged not started by this script is already answering; using it"
        return 0
    fi
    rm -f "$(pidfile_of munged)"
    runuser -u munge -- /usr/sbin/munged --pid-file="$(pidfile_of munged)" ||
        die "munged failed to start (see /var/log/munge/munged.log)"
    local i
    for ((i = 0; i < 50; i++)); do
        munge_works && break
        sleep 0.1
    done
    munge_works || die "munged started but munge -n | unmunge fails"
    log "started munged (pid $(daemon_pid munged || echo '?'))"
}

gen_conf() {
    local host cpus mem_kb mem_mb defmem
    host=$(hostname -s)
    cpus=$(nproc --all)
    mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
    mem_mb=$((mem_kb * 90 / 100 / 1024))
    defmem=$((mem_mb / cpus))
    cat <<EOF
$MARKER
# Regenerated by 'scripts/slurm-local.sh up'; edits will be overwritten.
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
# Job credentials live 10 s (default 120): SLURM holds a requeued job that long before it starts
# it again, and the requeue tests (tests/e2e/test_slurm.py) should not wait two minutes each time.
AuthInfo=cred_expire=10
CryptoType=crypto/munge
SlurmUser=root
SlurmdUser=root
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Try pending jobs every 2 s (defaults: 60 s main loop, 30 s backfill): a requeued job becomes eligible
# 10 s after its requeue and otherwise waited up to 30 s more for a pass, a third of each 1-minute slot
# of the time-limit test (tests/e2e/test_slurm.py).
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR/slurmd
SlurmctldPidFile=$PID_DIR/slurmctld.pid
SlurmdPidFile=$PID_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
DefMemPerCPU=$defmem
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

write_conf() {
    local new
    new=$(gen_conf)
    if [[ -e $CONF ]] && ! grep -qxF "$MARKER" "$CONF"; then
        if [[ ${SLURM_LOCAL_FORCE:-0} != 1 ]]; then
            die "$CONF exists and was not written by this script; set SLURM_LOCAL_FORCE=1 to replace it"
        fi
        cp -p "$CONF" "$CONF.semiad-bak"
        log "SLURM_LOCAL_FORCE=1: saved existing $CONF as $CONF.semiad-bak"
    fi
    mkdir -p "$CONF_DIR"
    if [[ -e $CONF ]] && [[ $(cat "$CONF") == "$new" ]]; then
        log "$CONF up to date"
        return 0
    fi
    printf '%s\n' "$new" >"$CONF.tmp.$$"
    chmod 0644 "$CONF.tmp.$$"
    mv -f "$CONF.tmp.$$" "$CONF"
    log "wrote $CONF"
    if daemon_pid slurmctld >/dev/null || daemon_pid slurmd >/dev/null; then
        log "warning: slurm daemons already running with the previous config; run '$0 down' then '$0 up' to apply"
    fi
}

start_slurm_daemon() {
    local name=$1 pid
    if pid=$(daemon_pid "$name"); then
        log "$name already running (pid $pid)"
        return 0
    fi
    rm -f "$(pidfile_of "$name")"
    # Both daemonise by default and write the pid file named in slurm.conf.
    "/usr/sbin/$name" || die "$name failed to start (see $LOG_DIR/$name.log)"
    local i
    for ((i = 0; i < 100; i++)); do
        pid=$(daemon_pid "$name") && break
        sleep 0.1
    done
    if [[ -z ${pid:-} ]] || ! daemon_pid "$name" >/dev/null; then
        die "$name did not come up (see $LOG_DIR/$name.log)"
    fi
    log "started $name (pid $pid)"
}

wait_ready() {
    local host deadline state resumed=0
    host=$(hostname -s)
    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        state=$(timeout 5 sinfo -h -n "$host" -o '%T' 2>/dev/null | head -n1 || true)
        case "$state" in
            idle | mixed | allocated | completing) break ;;
            down* | drain* | fail* | inval*)
                if [[ $resumed -eq 0 ]]; then
                    log "node $host is '$state'; resuming it"
                    scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
                    resumed=1
                fi
                ;;
        esac
        if (($(date +%s) >= deadline)); then
            timeout 5 sinfo -N -l 2>&1 | sed 's/^/  /' >&2 || true
            die "node $host not usable after ${TIMEOUT}s (state '${state:-no answer}'; logs in $LOG_DIR)"
        fi
        sleep 0.5
    done
    log "node $host is $state"
    local remaining out
    remaining=$((deadline - $(date +%s)))
    ((remaining < 10)) && remaining=10
    if ! out=$(timeout "$remaining" srun -N1 -n1 -t 1 --mem=100M hostname 2>&1); then
        die "srun -N1 hostname failed: ${out:-timeout}"
    fi
    log "srun -N1 hostname -> $out"
}

cmd_up() {
    require_root
    make_dirs
    install_packages
    write_conf
    munge_setup
    start_munged
    start_slurm_daemon slurmctld
    start_slurm_daemon slurmd
    wait_ready
    log "cluster up in $(elapsed) s (conf $CONF, logs $LOG_DIR)"
}

stop_daemon() {
    local name=$1 pid pf i
    pf=$(pidfile_of "$name")
    if ! pid=$(daemon_pid "$name"); then
        [[ -e $pf ]] && rm -f "$pf"
        log "$name not running (nothing to stop)"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) still alive after 20 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) did not exit"
    rm -f "$pf"
    log "stopped $name (pid $pid)"
}

cmd_down() {
    require_root
    if daemon_pid slurmctld >/dev/null && command -v squeue >/dev/null 2>&1; then
        local jobs i
        jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            log "cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
            # shellcheck disable=SC2086  # word splitting of job ids is intended
            timeout 10 scancel $jobs 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                [[ -z $(timeout 5 squeue -h -t R,CG,PD -o '%i' 2>/dev/null || true) ]] && break
                sleep 0.5
            done
        fi
    fi
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon munged
    log "cluster down in $(elapsed) s"
}

cmd_status() {
    local name pid out='' up=0
    for name in munged slurmctld slurmd; do
        if pid=$(daemon_pid "$name"); then
            echo "$name: running (pid $pid)"
        else
            echo "$name: not running"
        fi
    done
    if command -v sinfo >/dev/null 2>&1 && out=$(timeout 15 sinfo 2>&1); then
        up=1
        echo "$out"
    else
        echo "cluster: not answering${out:+ ($(echo "$out" | head -n1))}"
    fi
    [[ $up -eq 1 ]]
}

CMD=${1:-}
case "$CMD" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 up|down|status" >&2
        exit 2
        ;;
esac
