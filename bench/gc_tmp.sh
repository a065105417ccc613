#!/usr/bin/env bash
# Benchmark (issue 4): GET /api/conversations/{id} through the gateway against the same
# conversation fetched from the simulator directly, in one run, at the same concurrency.
# Reports both throughputs, their ratio, and the latency the gateway adds at p50/p99.
# Everything (wrk, gateway, simulator) shares this machine's cores: the gateway path costs two
# HTTP exchanges where the baseline costs one, on the same CPUs.
# Not part of `make test` (timings on a shared machine are not assertions).
# Usage: bench/gateway_conversation.sh [build/callgate]   (needs wrk: apt-get install wrk, and
# bench/rate_load from the same build dir for the below-saturation part)
# Env: CONNECTIONS (64), DURATION (10s), RATE_FRACTION (0.25) or RATE (req/s), RATE_PAIRS (20),
# RATE_SECONDS (2, per slice), RATE_WARMUP (0.5 s per slice), TRACE_DIR (copies <path>-<pair>.txt
# there: each below-saturation request's intended time in its slice and latency in ms, to see
# when the slow ones happen), SIM_IO_THREADS
# (the simulator's I/O threads; default: one per core, like the gateway).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/callgate}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
SIM_KEY=bench-sim-key-0123456789
GW_KEY=bench-gateway-key-0123456789
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 2; }
# shellcheck source=bench/processes.sh
source bench/processes.sh  # (the script has cd to the repository root)
# shellcheck source=bench/machine.sh
source bench/machine.sh

sim_threads=()
[ -n "${SIM_IO_THREADS:-}" ] && sim_threads=(--io-threads "$SIM_IO_THREADS")
"$BIN" sim --port 0 --port-file "$work/sim.port" --api-key "$SIM_KEY" --log-level warning \
  "${sim_threads[@]}" > "$work/sim.log" 2>&1 &
pids+=($!)
sim=http://127.0.0.1:$(wait_port "$work/sim.port")
ELEVENLABS_BASE_URL=$sim ELEVENLABS_API_KEY=$SIM_KEY ELEVENLABS_AGENT_ID=agent_sim_default \
ELEVENLABS_AGENT_PHONE_NUMBER_ID=phnum_sim_twilio API_KEYS=$GW_KEY LOG_LEVEL=warning \
DATABASE_URL=sqlite:$work/callgate.db \
  "${GW_BIN:-$BIN}" serve --host 127.0.0.1 --port 0 --port-file "$work/gw.port" > "$work/gw.log" 2>&1 &
pids+=($!)
gw=http://127.0.0.1:$(wait_port "$work/gw.port")

conversation=$(curl -s -H "X-API-Key: $GW_KEY" -H 'content-type: application/json' \
  -d '{"to_number":"+15551234567","prompt":"a benchmark"}' "$gw/api/calls/outbound" |
  sed -E 's/.*"conversation_id":"([^"]+)".*/\1/')
curl -s -X POST -H 'content-type: application/json' -d '{"seconds":3600}' "$sim/_sim/clock/advance" >/dev/null
# Warm both paths (connection pools, caches).
curl -s -o /dev/null -H "X-API-Key: $GW_KEY" "$gw/api/conversations/$conversation"

run() {  # url header [connections] -> "rps p50 p99" (latencies in ms)
  local out
  out=$(wrk -t2 -c"${3:-$CONNECTIONS}" -d"$DURATION" --latency -H "$2" "$1")
  if echo "$out" | grep -q 'Non-2xx'; then echo "non-2xx answers: $out" >&2; exit 1; fi
  echo "$out" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps=$2} $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
    END {printf "%s %.3f %.3f\n", rps, p50, p99}'
}
echo "$(nproc) cores shared by wrk, gateway and simulator; $CONNECTIONS connections, $DURATION each"
read -r d_rps d_p50 d_p99 < <(run "$sim/v1/convai/conversations/$conversation" "xi-api-key: $SIM_KEY")
printf '%-48s %10s req/s  p50 %7.3f ms  p99 %7.3f ms\n' "simulator directly (baseline)" "$d_rps" "$d_p50" "$d_p99"
read -r g_rps g_p50 g_p99 < <(run "$gw/api/conversations/$conversation" "X-API-Key: $GW_KEY")
printf '%-48s %10s req/s  p50 %7.3f ms  p99 %7.3f ms\n' "through the gateway" "$g_rps" "$g_p50" "$g_p99"
awk -v d="$d_rps" -v g="$g_rps" -v dp50="$d_p50" -v gp50="$g_p50" -v dp99="$d_p99" -v gp99="$g_p99" 'BEGIN {
  printf "throughput ratio gateway/direct %.2f; added latency p50 %+.3f ms, p99 %+.3f ms\n", g / d, gp50 - dp50, gp99 - dp99 }'

# Below saturation: an open-loop load (bench/rate_load.cpp, wrk2-style) at a fixed share of the
# direct maximum measured above, on the same number of connections. Latencies are measured from
# each request's intended send time, so a request queued behind a slow answer counts as slow.
# The machine's stalls come in phases of seconds to minutes and set the tail of whichever path
# runs through them (a direct p99 moves from 0.3 to 14 ms between 10 s runs here), so the two
# paths take turns in short slices (RATE_PAIRS pairs of RATE_SECONDS each, the order swapped
# every pair) and each path's percentiles are read from all of its slices' requests pooled:
# both sample the same phases, and the difference of the pooled tails is what the gateway adds.
RATE_LOAD=${RATE_LOAD:-$(dirname "$BIN")/bench/rate_load}
RATE_FRACTION=${RATE_FRACTION:-0.25}
RATE_PAIRS=${RATE_PAIRS:-20}
RATE_SECONDS=${RATE_SECONDS:-2}
RATE_WARMUP=${RATE_WARMUP:-0.5}
if [ ! -x "$RATE_LOAD" ]; then
  echo "below saturation: skipped ($RATE_LOAD not built; cmake --build <dir> --target rate_load)"
  exit 0
fi
rate=${RATE:-$(awk -v d="$d_rps" -v f="$RATE_FRACTION" 'BEGIN { printf "%d", d * f }')}
echo "below saturation: $rate req/s offered (open loop, ${RATE_FRACTION} of the direct maximum" \
  "unless RATE is set), $CONNECTIONS connections; $RATE_PAIRS pairs of ${RATE_SECONDS} s slices" \
  "(after ${RATE_WARMUP} s of warm-up each), direct and gateway in turn; latencies in ms"
mkdir -p "$work/trace"
rate_run() {  # label url header pair -> the RESULT line's fields; the trace in $work/trace
  local out
  if ! out=$("$RATE_LOAD" --url "$2" -H "$3" --rate "$rate" --connections "$CONNECTIONS" \
      --seconds "$RATE_SECONDS" --warmup "$RATE_WARMUP" --label "$1" \
      --trace "$work/trace/$1-$4.txt"); then
    echo "$out" >&2
    echo "rate_load failed (errors or unfinished requests)" >&2
    exit 1
  fi
  echo "$out" | grep '^RESULT'
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# CPU ticks (utime + stime) and context switches of a process, summed over its threads: the
# work per request is steadier than latency on a shared machine.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
hz=$(getconf CLK_TCK)
gw_ticks=0
gw_switches=0
printf '%-5s %-8s %9s %8s %8s %8s %10s\n' pair path answered p50 p99 max "gen lag99"
steal_at=$(cpu_steal)
for i in $(seq "$RATE_PAIRS"); do
  order=(direct gateway)
  [ $((i % 2)) = 0 ] && order=(gateway direct)
  for path in "${order[@]}"; do
    if [ "$path" = direct ]; then
      r=$(rate_run direct "$sim/v1/convai/conversations/$conversation" "xi-api-key: $SIM_KEY" "$i")
    else
      t0=$(ticks "${pids[1]}"); s0=$(switches "${pids[1]}")
      r=$(rate_run gateway "$gw/api/conversations/$conversation" "X-API-Key: $GW_KEY" "$i")
      gw_ticks=$((gw_ticks + $(ticks "${pids[1]}") - t0))
      gw_switches=$((gw_switches + $(switches "${pids[1]}") - s0))
    fi
    printf '%-5s %-8s %9s %8s %8s %8s %10s\n' "$i" "$path" "$(field "$r" ok)" \
      "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$(field "$r" max_ms)" "$(field "$r" lag_p99_ms)"
  done
done
echo "host steal during the slices: $(steal_percent "$steal_at")% of the CPU time"
[ -n "${TRACE_DIR:-}" ] && cp "$work"/trace/*.txt "$TRACE_DIR"/
pooled() {  # label -> "n p50 p99 p99.9 max" over every slice's requests of that path
  cat "$work"/trace/"$1"-*.txt | cut -d' ' -f2 | sort -g | awk '{ v[NR] = $1 }
    function q(p) { i = int(NR * p); if (i < 1) i = 1; return v[i] }
    END { printf "%d %.3f %.3f %.3f %.3f\n", NR, q(0.5), q(0.99), q(0.999), v[NR] }'
}
read -r dn dp50 dp99 dp999 dmax < <(pooled direct)
read -r gn gp50 gp99 gp999 gmax < <(pooled gateway)
printf 'pooled   %-8s %9s %8s %8s %8s  p99.9 %s\n' direct "$dn" "$dp50" "$dp99" "$dmax" "$dp999"
printf 'pooled   %-8s %9s %8s %8s %8s  p99.9 %s\n' gateway "$gn" "$gp50" "$gp99" "$gmax" "$gp999"
awk -v dp50="$dp50" -v gp50="$gp50" -v dp99="$dp99" -v gp99="$gp99" -v dp999="$dp999" \
    -v gp999="$gp999" -v n="$RATE_PAIRS" 'BEGIN {
  printf "the gateway adds, pooled over %d pairs: p50 %+.3f ms, p99 %+.3f ms, p99.9 %+.3f ms\n",
    n, gp50 - dp50, gp99 - dp99, gp999 - dp999 }'
# Over the gateway's slices, warm-ups included.
awk -v t="$gw_ticks" -v s="$gw_switches" -v hz="$hz" \
    -v n="$(awk -v r="$rate" -v a="$RATE_SECONDS" -v b="$RATE_WARMUP" -v k="$RATE_PAIRS" \
      'BEGIN { printf "%d", r * (a + b) * k }')" 'BEGIN {
  printf "gateway CPU %.0f us and %.2f context switches per request\n", t / hz * 1e6 / n, s / n }'
