#!/usr/bin/env bash
# Benchmark aid (issues 4 and 5): compares two callgate binaries by running them AT THE SAME TIME
# under identical loads, so both see the same phase of this shared machine. Timings here swing by
# a quarter within minutes, more than most changes; run one after the other, two binaries are
# compared with the machine's mood. Run side by side, they are compared with each other.
#   webhook: each gateway gets its own webhook_load (32 connections, 1 thread, closed loop) of
#            signed ~5.6 KB post_call_transcription events;
#   conv:    one simulator; each gateway gets its own rate_load (open loop, RATE req/s) of
#            GET /api/conversations/{id}.
# Prints, per round and binary: answers per second, p99, and the gateway's CPU time per answer
# (user + system, all threads: the steadiest of the three). The order is swapped every round.
# Two gateways share 2 cores, so absolute figures are worse than in the single-binary scripts:
# read the ratio between the two columns, not the values.
# Usage: bench/compare.sh webhook|conv BIN_A BIN_B [rounds (3)]
#   env: SECONDS_EACH (10), RATE (conv: requests per second per gateway, 1500), BENCH (the load
#        generators' directory; default build/bench)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?webhook or conv}
A=${2:?first binary}
B=${3:?second binary}
ROUNDS=${4:-3}
SECONDS_EACH=${SECONDS_EACH:-10}
RATE=${RATE:-1500}
BENCH=${BENCH:-build/bench}
SECRET=bench-webhook-secret-0123456789
SIM_KEY=bench-sim-key-0123456789
GW_KEY=bench-gateway-key-0123456789
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "no binary at $bin"; exit 2; }; done
case "$MODE" in
  webhook) LOAD=$BENCH/webhook_load ;;
  conv) LOAD=$BENCH/rate_load ;;
  *) echo "mode must be webhook or conv"; exit 2 ;;
esac
[ -x "$LOAD" ] || { echo "no $LOAD (cmake --build build --target webhook_load rate_load)"; exit 2; }

# shellcheck source=bench/processes.sh
source bench/processes.sh  # (the script has cd to the repository root)
hz=$(getconf CLK_TCK)

sim=
if [ "$MODE" = conv ]; then
  "$A" sim --port 0 --port-file "$work/sim.port" --api-key "$SIM_KEY" --log-level warning \
    > "$work/sim.log" 2>&1 &
  pids+=($!)
  sim=http://127.0.0.1:$(wait_port "$work/sim.port")
fi

start_gateway() {  # binary name -> prints the pid; the port lands in $work/name.port
  ELEVENLABS_WEBHOOK_SECRET=$SECRET API_KEYS=$GW_KEY WEBHOOK_BANNER=off LOG_LEVEL=warning \
  ELEVENLABS_BASE_URL=${sim:-http://127.0.0.1:9} ELEVENLABS_API_KEY=$SIM_KEY \
  ELEVENLABS_AGENT_ID=agent_sim_default ELEVENLABS_AGENT_PHONE_NUMBER_ID=phnum_sim_twilio \
  DATABASE_URL=sqlite:$work/$2.db \
    "$1" serve --host 127.0.0.1 --port 0 --port-file "$work/$2.port" > "$work/$2.log" 2>&1 &
  echo $!
}

conversation=
first=A
echo "$MODE: A=$A B=$B, $ROUNDS rounds of ${SECONDS_EACH} s, both at once; $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  rm -f "$work"/*.port "$work"/*.db*
  declare -A pid=() port=() before=()
  for name in A B; do
    bin=$A
    [ "$name" = B ] && bin=$B
    pid[$name]=$(start_gateway "$bin" "$name")
    pids+=("${pid[$name]}")
  done
  for name in A B; do
    port[$name]=$(wait_port "$work/$name.port")
    [ -n "${port[$name]}" ] || { echo "gateway $name did not start:"; cat "$work/$name.log"; exit 1; }
  done
  if [ "$MODE" = conv ] && [ -z "$conversation" ]; then
    conversation=$(curl -s -H "X-API-Key: $GW_KEY" -H 'content-type: application/json' \
      -d '{"to_number":"+15551234567","prompt":"a benchmark"}' \
      "http://127.0.0.1:${port[A]}/api/calls/outbound" |
      sed -E 's/.*"conversation_id":"([^"]+)".*/\1/')
    curl -s -X POST -H 'content-type: application/json' -d '{"seconds":3600}' \
      "$sim/_sim/clock/advance" > /dev/null
  fi
  order=(A B)
  [ "$first" = B ] && order=(B A)
  loads=()
  for name in "${order[@]}"; do
    before[$name]=$(ticks "${pid[$name]}")
    if [ "$MODE" = webhook ]; then
      "$LOAD" --url "http://127.0.0.1:${port[$name]}/api/webhooks/elevenlabs" --connections 32 \
        --threads 1 --seconds "$SECONDS_EACH" --warmup 1 --secret "$SECRET" --tag "$name" \
        > "$work/$name.out" 2>&1 &
    else
      "$LOAD" --url "http://127.0.0.1:${port[$name]}/api/conversations/$conversation" \
        -H "X-API-Key: $GW_KEY" --rate "$RATE" --connections 32 --seconds "$SECONDS_EACH" \
        --warmup 1 --label "$name" > "$work/$name.out" 2>&1 &
    fi
    loads+=($!)
  done
  for load in "${loads[@]}"; do wait "$load" || true; done
  line="round $round:"
  for name in "${order[@]}"; do
    cpu=$(( $(ticks "${pid[$name]}") - ${before[$name]} ))
    if [ "$MODE" = webhook ]; then
      answers=$(grep -oE 'answers: [0-9]+' "$work/$name.out" | awk '{print $2}')
      rate=$(awk '/req\/s/ {print $1; exit}' "$work/$name.out")
      p99=$(awk '/req\/s/ {print $10; exit}' "$work/$name.out")
    else
      result=$(grep '^RESULT' "$work/$name.out" || true)
      answers=$(echo "$result" | tr ' ' '\n' | sed -n 's/^ok=//p')
      rate=$RATE
      p99=$(echo "$result" | tr ' ' '\n' | sed -n 's/^p99_ms=//p')
    fi
    if [ -z "$answers" ] || [ "$answers" = 0 ]; then
      echo "$name: no answers"; cat "$work/$name.out"; exit 1
    fi
    us=$(awk -v c="$cpu" -v hz="$hz" -v n="$answers" 'BEGIN { printf "%.0f", c / hz * 1e6 / n }')
    line="$line  $name: ${rate}/s p99 ${p99} ms, ${us} us CPU per answer;"
  done
  echo "$line"
  for name in A B; do kill -TERM "${pid[$name]}"; wait "${pid[$name]}" 2>/dev/null || true; done
  [ "$first" = A ] && first=B || first=A
done
