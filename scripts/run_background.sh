#!/usr/bin/env bash
# Train in the background, guarded by a PID file.
#
#   scripts/run_background.sh [hydra overrides...]   start; output appended to logs/train.log
#   scripts/run_background.sh --status               say whether a run is alive
#   scripts/run_background.sh --stop                 stop it (SIGTERM, SIGKILL after a timeout)
#
# The run works in ASHARE_RUN_DIR (default: the repository root, so mlflow.db and optuna.db are
# the same as `make train`'s) and logs to $ASHARE_RUN_DIR/logs/train.log (`tail -f` it). A second
# start while a run is alive is refused; a PID file left by a dead run is removed. A stopped or
# killed study resumes where it stopped when started again with the same overrides.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
run_dir="${ASHARE_RUN_DIR:-$root}"
log_dir="$run_dir/logs"
log_file="$log_dir/train.log"
pid_file="$log_dir/train.pid"
python="${PYTHON:-$root/.venv/bin/python}"
stop_timeout="${ASHARE_STOP_TIMEOUT:-30}"

# The PID of the live run named in the PID file, or nothing. A PID whose process is gone or
# is not our training (the number was reused) makes the PID file stale.
live_pid() {
    [[ -f "$pid_file" ]] || return 0
    local pid
    pid="$(tr -dc '0-9' < "$pid_file")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "ashare_autotune.train"; then
        echo "$pid"
    fi
}

clean_stale() {
    if [[ -f "$pid_file" && -z "$(live_pid)" ]]; then
        echo "removing stale PID file $pid_file ($(cat "$pid_file")): that run is not alive"
        rm -f "$pid_file"
    fi
}

start() {
    mkdir -p "$log_dir"
    local pid
    pid="$(live_pid)"
    if [[ -n "$pid" ]]; then
        echo "error: a training run is already alive (PID $pid, log $log_file);" \
            "stop it with: $0 --stop" >&2
        exit 1
    fi
    clean_stale
    [[ -x "$python" ]] || python="$(command -v python3)"
    echo "=== $(date -u +%FT%TZ) start: python -m ashare_autotune.train $*" >> "$log_file"
    cd "$run_dir"
    # setsid: the run survives the terminal and is its own process group, which --stop signals.
    PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" setsid "$python" -m ashare_autotune.train \
        "$@" >> "$log_file" 2>&1 < /dev/null &
    echo "$!" > "$pid_file"
    echo "started training in the background: PID $!, log $log_file (tail -f it)"
}

stop() {
    local pid
    pid="$(live_pid)"
    if [[ -z "$pid" ]]; then
        clean_stale
        echo "no training run is alive"
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq "$((stop_timeout * 10))"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "PID $pid still alive after ${stop_timeout}s: sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
    fi
    rm -f "$pid_file"
    echo "=== $(date -u +%FT%TZ) stopped PID $pid" >> "$log_file"
    echo "stopped training run PID $pid; rerun the same command to resume its study"
}

case "${1:-}" in
    --stop) stop ;;
    --status)
        pid="$(live_pid)"
        if [[ -n "$pid" ]]; then echo "running: PID $pid, log $log_file"; else echo "not running"; fi
        ;;
    *) start "$@" ;;
esac
