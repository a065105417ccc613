#!/usr/bin/env bash
# Benchmark: simple REST requests per second that `callgate sim` sustains on this machine.
# Baseline in the same run: the simulator's cheapest route (GET /_sim/health: routing and
# HTTP only). Measured: GET /v1/convai/phone-numbers (auth + JSON rendering) and
# GET /v1/convai/conversations/{id} (lookup + lifecycle evaluation + a ~2.7 KB body).
# Load: wrk on the same 2 cores, keep-alive, CONNECTIONS connections, DURATION each.
# Not part of `make test` (timings on a shared machine are not assertions).
# Usage: bench/sim_rest.sh [build/callgate]   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/callgate}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
KEY=bench-key-0123456789
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 2; }
work=$(mktemp -d)
"$BIN" sim --port 0 --port-file "$work/port" --api-key "$KEY" --log-level warning \
  > "$work/sim.log" 2>&1 &
sim_pid=$!
trap 'kill -TERM $sim_pid 2>/dev/null; wait $sim_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
base=http://127.0.0.1:$port
conversation=$(curl -s -H "xi-api-key: $KEY" -H 'content-type: application/json' \
  -d '{"agent_id":"agent_sim_default","agent_phone_number_id":"phnum_sim_twilio","to_number":"+15551234567","conversation_initiation_client_data":{"dynamic_variables":{"purpose":"a benchmark"}}}' \
  "$base/v1/convai/twilio/outbound-call" | sed -E 's/.*"conversation_id":"([^"]+)".*/\1/')
curl -s -X POST -H 'content-type: application/json' -d '{"seconds":3600}' "$base/_sim/clock/advance" >/dev/null

run() {  # name path [header]
  local out
  if [ -n "${3:-}" ]; then
    out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "$3" "$base$2")
  else
    out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$base$2")
  fi
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  printf '%-34s %10s req/s   p50 %8s   p99 %8s\n' "$1" "$rps" "$p50" "$p99"
  echo "$rps"
}
echo "callgate sim, $CONNECTIONS connections, $DURATION per route, $(nproc) cores shared with wrk"
baseline=$(run "GET /_sim/health (baseline)" /_sim/health | tee /dev/stderr | tail -1)
phones=$(run "GET /v1/convai/phone-numbers" /v1/convai/phone-numbers "xi-api-key: $KEY" | tee /dev/stderr | tail -1)
convo=$(run "GET /v1/convai/conversations/{id}" "/v1/convai/conversations/$conversation" "xi-api-key: $KEY" | tee /dev/stderr | tail -1)
awk -v b="$baseline" -v p="$phones" -v c="$convo" 'BEGIN {
  printf "ratio to baseline: phone-numbers %.2f, conversation %.2f\n", p / b, c / b }'
