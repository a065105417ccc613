# shellcheck shell=bash
# Sourced by the bench scripts: a scratch directory ($work), the processes the script starts
# (append each pid to $pids; all are stopped by pid when the script exits, never by name), a
# wait for a port file, and a process's CPU time.
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# wait_port FILE [TRIES (200)] [INTERVAL (0.05 s)]: prints the port once FILE holds one.
wait_port() {
  for _ in $(seq "${2:-200}"); do [ -s "$1" ] && break; sleep "${3:-0.05}"; done
  cat "$1"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime of a process, in ticks
