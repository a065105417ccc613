#!/usr/bin/env bash
# Benchmark aid (issues 4 and 5): the gateway's user-space instructions per request, counted by
# valgrind's callgrind. Unlike a timing, the count does not depend on how busy this shared
# machine is, so two binaries can be compared in one pair of runs (a change of 1% shows). It
# leaves out the kernel (sockets, wake-ups: about half of the gateway's CPU natively), and
# callgrind's CPU has no SHA extensions, so the webhook's HMAC counts for more than it costs.
# Compare binaries with it; measure throughput and latency with the timed scripts.
#
# Starts `callgate sim` natively and `callgate serve` under callgrind, warms up, zeroes the
# counters, then sends at a low rate:
#   conv:    GET /api/conversations/{id} through the gateway (rate_load, 200/s for 10 s);
#   webhook: signed ~5.6 KB post_call_transcription events (webhook_load, 8 connections, 10 s).
# Prints the requests answered and the instructions per request, over all the gateway's threads.
# Usage: bench/instructions.sh [build/callgate [conv|webhook]]   (needs valgrind)
#   env: SIM_BIN (the simulator's binary; default the same), BENCH (the load generators'
#        directory; default <BIN's directory>/bench, else build/bench), KEEP (a directory to copy the
#        callgrind files to, for `callgrind_annotate --inclusive=yes FILE`)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/callgate}
MODE=${2:-conv}
SIM_BIN=${SIM_BIN:-$BIN}
BENCH=${BENCH:-$(dirname "$BIN")/bench}
[ -d "$BENCH" ] || BENCH=build/bench  # a copied binary: the load generators of the build
[ -x "$BIN" ] || { echo "no callgate binary at $BIN"; exit 2; }
command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 2; }
case "$MODE" in
  conv) [ -x "$BENCH/rate_load" ] || { echo "no $BENCH/rate_load (ninja rate_load)"; exit 2; } ;;
  webhook) [ -x "$BENCH/webhook_load" ] || { echo "no $BENCH/webhook_load"; exit 2; } ;;
  *) echo "mode must be conv or webhook"; exit 2 ;;
esac
# shellcheck source=bench/processes.sh
source bench/processes.sh  # (the script has cd to the repository root)
SIM_KEY=bench-sim-key-0123456789
GW_KEY=bench-gateway-key-0123456789
SECRET=bench-webhook-secret-0123456789

"$SIM_BIN" sim --port 0 --port-file "$work/sim.port" --api-key "$SIM_KEY" --log-level warning \
  > "$work/sim.log" 2>&1 &
pids+=($!)
sim=http://127.0.0.1:$(wait_port "$work/sim.port" 600 0.1)
ELEVENLABS_BASE_URL=$sim ELEVENLABS_API_KEY=$SIM_KEY ELEVENLABS_AGENT_ID=agent_sim_default \
  ELEVENLABS_AGENT_PHONE_NUMBER_ID=phnum_sim_twilio API_KEYS=$GW_KEY LOG_LEVEL=warning \
  ELEVENLABS_WEBHOOK_SECRET=$SECRET WEBHOOK_BANNER=off DATABASE_URL=sqlite:$work/callgate.db \
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
  "$BIN" serve --host 127.0.0.1 --port 0 --port-file "$work/gw.port" > "$work/gw.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
gw_port=$(wait_port "$work/gw.port" 600 0.1)
[ -n "$gw_port" ] || { echo "the gateway did not start:"; cat "$work/gw.log"; exit 1; }
gw=http://127.0.0.1:$gw_port

if [ "$MODE" = conv ]; then
  conversation=$(curl -sf -H "X-API-Key: $GW_KEY" -H 'content-type: application/json' \
    -d '{"to_number":"+15551234567","prompt":"a benchmark"}' "$gw/api/calls/outbound" |
    sed -E 's/.*"conversation_id":"([^"]+)".*/\1/')
  curl -sf -X POST -H 'content-type: application/json' -d '{"seconds":3600}' \
    "$sim/_sim/clock/advance" > /dev/null
  url=$gw/api/conversations/$conversation
  "$BENCH/rate_load" --url "$url" -H "X-API-Key: $GW_KEY" --rate 100 --connections 8 \
    --seconds 3 --warmup 1 > /dev/null
  callgrind_control -z "$gw_pid" > /dev/null 2>&1
  "$BENCH/rate_load" --url "$url" -H "X-API-Key: $GW_KEY" --rate 200 --connections 8 \
    --seconds 10 --warmup 0 > "$work/load.out"
  requests=$(sed -nE 's/^RESULT .*\<ok=([0-9]+).*/\1/p' "$work/load.out")
else
  "$BENCH/webhook_load" --url "$gw/api/webhooks/elevenlabs" --connections 8 --threads 1 \
    --seconds 3 --warmup 0 --secret "$SECRET" --presign 5000 --tag warm > /dev/null
  callgrind_control -z "$gw_pid" > /dev/null 2>&1
  "$BENCH/webhook_load" --url "$gw/api/webhooks/elevenlabs" --connections 8 --threads 1 \
    --seconds 10 --warmup 0 --secret "$SECRET" --presign 20000 --tag measured > "$work/load.out"
  requests=$(sed -nE 's/^RESULT .*\<ok_total=([0-9]+).*/\1/p' "$work/load.out")
fi
callgrind_control -d "$gw_pid" > /dev/null 2>&1
# The dump is written asynchronously: wait for its totals line.
total=
for _ in $(seq 100); do
  total=$(cat "$work"/callgrind.out.* 2> /dev/null | awk '/^totals:/ { s += $2 } END { if (s) print s }')
  [ -n "$total" ] && break
  sleep 0.2
done
[ -n "$total" ] && [ -n "$requests" ] && [ "$requests" -gt 0 ] ||
  { echo "no callgrind totals or no answers"; cat "$work/load.out"; exit 1; }
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/callgrind.out.* "$KEEP"/; fi
echo "$MODE $(basename "$BIN"): $requests requests, $((total / requests)) instructions per request"
