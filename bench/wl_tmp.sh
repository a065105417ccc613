#!/usr/bin/env bash
# Benchmark (issue 5): the webhook inbox. Signed ~5 KB post_call_transcription events, each with
# a unique conversation id, posted by bench/webhook_load.cpp over keep-alive connections to
# POST /api/webhooks/elevenlabs of a running `callgate serve` (verified, parsed, committed to
# SQLite with synchronous=FULL before the 200), against the same generator posting to a handler
# that only answers 200 (callgate's HTTP server started inside the generator), in one run.
# Reports both, the ratio, the gateway's CPU per event, then checks durability: the gateway is
# killed with SIGKILL and the events in its database file must number the 200 answers.
# The generator, the gateway and the baseline server share this machine's cores.
# Not part of `make test` (timings on a shared machine are not assertions).
# Usage: bench/webhook_load.sh [build/callgate [path/to/webhook_load]]
#   env: CONNECTIONS (64), DURATION (seconds, 10), WARMUP (1), THREADS (generator threads, 2),
#        PERF_OUT (a file: `perf record` the gateway, per thread, during the load; then
#        `perf report -i FILE --sort comm,sym`), PERF_ARGS (more perf record options, e.g.
#        "--call-graph dwarf"), RATES (e.g. "6000 10000": after the closed loop, an open-loop
#        run of the gateway at each rate, latencies from each request's due time, as
#        bench/gateway_conversation.sh does for issue 4)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/callgate}
LOAD=${2:-$(dirname "$BIN")/bench/webhook_load}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
DURATION=${DURATION%s}
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-2}
SECRET=bench-webhook-secret-0123456789
GW_KEY=bench-gateway-key-0123456789
[ -x "$BIN" ] || { echo "no callgate binary at $BIN"; exit 2; }
[ -x "$LOAD" ] || { echo "no webhook_load at $LOAD (ninja webhook_load)"; exit 2; }
work=$(mktemp -d)
gw_pid=
cleanup() {
  if [ -n "$gw_pid" ]; then
    { kill -TERM "$gw_pid"; wait "$gw_pid"; } 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=bench/machine.sh
source bench/machine.sh  # (the script has cd to the repository root)
wait_port() { for _ in $(seq 200); do [ -s "$1" ] && break; sleep 0.05; done; cat "$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime of a process
thread_ticks() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(cpu_ticks "$1/task/${t##*/}")"; done; }
field() { sed -nE "s/^RESULT .*\<$1=([^ ]+).*/\1/p" "$2"; }

load() {  # label output-file args... ; fails loudly on any non-200 answer
  if ! "$LOAD" --label "$1" --connections "$CONNECTIONS" --threads "$THREADS" \
      --seconds "$DURATION" --warmup "$WARMUP" --secret "$SECRET" "${@:3}" > "$2"; then
    cat "$2"
    echo "FAILED: $1 had answers other than 200 (see above)" >&2
    exit 1
  fi
  grep -v '^RESULT' "$2"
}

echo "$(nproc) cores shared by the generator and the server; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. The baseline: a handler that only answers 200, on callgate's HTTP server.
load "baseline (200 only)" "$work/baseline.out" --baseline

# 2. The gateway.
ELEVENLABS_WEBHOOK_SECRET=$SECRET API_KEYS=$GW_KEY WEBHOOK_BANNER=off LOG_LEVEL=warning \
DATABASE_URL=sqlite:$work/callgate.db \
  "$BIN" serve --host 127.0.0.1 --port 0 --port-file "$work/gw.port" > "$work/gw.log" 2>&1 &
gw_pid=$!
gw_port=$(wait_port "$work/gw.port")
if [ -n "${SLICE_NS:-}" ]; then for t in /proc/$gw_pid/task/*; do case " $SLICE_COMMS " in *" $(cat $t/comm) "*) /tmp/p14/slice/setslice $SLICE_NS ${t##*/} >&2;; esac; done; fi
[ -n "$gw_port" ] || { echo "the gateway did not start:" >&2; cat "$work/gw.log" >&2; exit 1; }
gw=http://127.0.0.1:$gw_port
cpu_before=$(cpu_ticks "$gw_pid")
thread_ticks "$gw_pid" > "$work/threads.before"
perf_pid=
if [ -n "${PERF_OUT:-}" ]; then
  # shellcheck disable=SC2086  # PERF_ARGS is a list of options, e.g. "--call-graph dwarf"
  perf record -F 999 -s ${PERF_ARGS:-} -p "$gw_pid" -o "$PERF_OUT" -- sleep "$DURATION" \
    > /dev/null 2>&1 &
  perf_pid=$!
fi
steal_at=$(cpu_steal)
load "gateway (verify + parse + durable store)" "$work/gateway.out" \
  --url "$gw/api/webhooks/elevenlabs"
stolen=$(steal_percent "$steal_at")
cpu_after=$(cpu_ticks "$gw_pid")
thread_ticks "$gw_pid" > "$work/threads.after"
if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi

b_rps=$(field rps "$work/baseline.out"); g_rps=$(field rps "$work/gateway.out")
awk -v b="$b_rps" -v g="$g_rps" -v bp50="$(field p50_ms "$work/baseline.out")" \
    -v gp50="$(field p50_ms "$work/gateway.out")" -v bp99="$(field p99_ms "$work/baseline.out")" \
    -v gp99="$(field p99_ms "$work/gateway.out")" 'BEGIN {
  printf "throughput ratio gateway/baseline %.2f; added latency p50 %+.3f ms, p99 %+.3f ms\n",
    g / b, gp50 - bp50, gp99 - bp99 }'
ok=$(field ok_total "$work/gateway.out")
awk -v ticks=$((cpu_after - cpu_before)) -v hz="$(getconf CLK_TCK)" -v n="$ok" 'BEGIN {
  printf "gateway CPU during the run: %.2f s, %.0f us per event\n", ticks / hz, 1e6 * ticks / hz / n }'
# The busiest thread is the database thread (the inbox's commits run on it, one at a time).
# The gateway is idle while the generator pre-signs, so the load lasts WARMUP + DURATION.
elapsed=$(awk -v a="$WARMUP" -v b="$DURATION" 'BEGIN { printf "%.1f", a + b }')
busy=$(join "$work/threads.before" "$work/threads.after" |
  awk -v hz="$(getconf CLK_TCK)" -v s="$elapsed" '{ p = ($3 - $2) / hz / s * 100; if (p >= 1) printf "%.0f\n", p }' |
  sort -rn | tr '\n' ' ')
echo "gateway threads, % of one core each over the ${elapsed} s of load: $busy"
echo "host steal during the gateway's run: ${stolen}% of the CPU time (the machine's slow phases: 5-13%)"
# Below saturation: the gateway at fixed rates (open loop), the same connections.
for rate in ${RATES:-}; do
  load "gateway, open loop" "$work/open-$rate.out" --url "$gw/api/webhooks/elevenlabs" \
    --rate "$rate" | grep -E 'open loop:|req/s|generator: requests'
  ok=$((ok + $(field ok_total "$work/open-$rate.out")))
done

curl -sf -H "X-API-Key: $GW_KEY" "$gw/metrics" | grep -E "commit_seconds|checkpoint" >&2
curl -sf -H "X-API-Key: $GW_KEY" "$gw/metrics" |
  awk -v n="$(field ok_total "$work/gateway.out")" '/^callgate_webhook_commits_total / && $2 > 0 {
    printf "events per group commit (one fsync each): %.1f\n", n / $2 }' || true

# 3. Durability: every 200 is a committed event, even if the process dies right after.
stored_api=0
cursor=
while :; do
  page=$(curl -sf -H "X-API-Key: $GW_KEY" \
    "$gw/api/webhooks/events?type=post_call_transcription&limit=1000${cursor:+&cursor=$cursor}")
  stored_api=$((stored_api + $(grep -o '"event_id":' <<<"$page" | wc -l)))
  cursor=$(sed -nE 's/.*"next_cursor":"([^"]*)".*/\1/p' <<<"$page")
  [ -n "$cursor" ] || break
done
{ kill -KILL "$gw_pid"; wait "$gw_pid"; } 2>/dev/null || true
gw_pid=
if command -v sqlite3 >/dev/null; then
  stored_db=$(sqlite3 "$work/callgate.db" \
    "SELECT count(*) FROM webhook_events WHERE type = 'post_call_transcription'")
else
  stored_db=$stored_api
fi
echo "durability: $ok answers 200; stored: $stored_api listed by GET /api/webhooks/events," \
  "$stored_db in the database file after SIGKILL"
if [ "$stored_api" != "$ok" ] || [ "$stored_db" != "$ok" ]; then
  echo "FAILED: stored events differ from 200 answers" >&2
  exit 1
fi
echo "durability: OK"
