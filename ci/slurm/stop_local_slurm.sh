#!/usr/bin/env bash
# Stop the daemons started by start_local_slurm.sh -- only by the PIDs it recorded (never by name).
# Safe to call twice or when nothing was started (tests/test_slurm.py calls it from a finaliser).
set -uo pipefail
STATE=${SLURM_LOCAL_STATE:-/tmp/local-slurm}
PIDS=$STATE/pids

# cancel whatever is still queued/running so no slurmstepd outlives slurmd
if [[ -s $PIDS/slurmctld.pid ]] && kill -0 "$(cat "$PIDS/slurmctld.pid")" 2>/dev/null; then
  scancel --full --state=PENDING,RUNNING,SUSPENDED -u root 2>/dev/null || true
  for _ in $(seq 50); do
    [[ -z $(squeue -h -t PENDING,RUNNING,COMPLETING,SUSPENDED 2>/dev/null) ]] && break; sleep 0.2
  done
fi

stop_pid() {  # name
  local f=$PIDS/$1.pid pid
  [[ -s $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "$1 ($pid) ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid"; fi
    echo "stopped $1 ($pid)"
  fi
  rm -f "$f"
}

for d in slurmd slurmctld slurmdbd mariadbd munged; do stop_pid "$d"; done
