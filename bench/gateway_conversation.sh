#!/usr/bin/env bash
# Benchmark (issue 4): GET /api/conversations/{id} through the gateway against the same
# conversation fetched from the simulator directly, in one run, at the same concurrency.
# Reports both throughputs, their ratio, and the latency the gateway adds at p50/p99.
# Everything (wrk, gateway, simulator) shares this machine's cores: the gateway path costs two
# HTTP exchanges where the baseline costs one, on the same CPUs.
# Not part of `make test` (timings on a shared machine are not assertions).
# Usage: bench/gateway_conversation.sh [build/callgate]   (needs wrk: apt-get install wrk, and
# bench/rate_load from the same build dir for the below-saturation part)
# Env: CONNECTIONS (64), DURATION (10s), RATE_FRACTION (0.25) or RATE (req/s), RATE_RUNS (5),
# RATE_SECONDS (DURATION), TRACE_DIR (writes <path>-<run>.txt there: each below-saturation
# request's intended time and latency in ms, to see when the slow ones happen), SIM_IO_THREADS
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

sim_threads=()
[ -n "${SIM_IO_THREADS:-}" ] && sim_threads=(--io-threads "$SIM_IO_THREADS")
"$BIN" sim --port 0 --port-file "$work/sim.port" --api-key "$SIM_KEY" --log-level warning \
  "${sim_threads[@]}" > "$work/sim.log" 2>&1 &
pids+=($!)
sim=http://127.0.0.1:$(wait_port "$work/sim.port")
ELEVENLABS_BASE_URL=$sim ELEVENLABS_API_KEY=$SIM_KEY ELEVENLABS_AGENT_ID=agent_sim_default \
ELEVENLABS_AGENT_PHONE_NUMBER_ID=phnum_sim_twilio API_KEYS=$GW_KEY LOG_LEVEL=warning \
DATABASE_URL=sqlite:$work/callgate.db \
  "$BIN" serve --host 127.0.0.1 --port 0 --port-file "$work/gw.port" > "$work/gw.log" 2>&1 &
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
# Direct and gateway runs alternate (RATE_RUNS pairs), so both see the same machine.
RATE_LOAD=${RATE_LOAD:-$(dirname "$BIN")/bench/rate_load}
RATE_FRACTION=${RATE_FRACTION:-0.25}
RATE_RUNS=${RATE_RUNS:-5}
RATE_SECONDS=${RATE_SECONDS:-${DURATION%s}}
if [ ! -x "$RATE_LOAD" ]; then
  echo "below saturation: skipped ($RATE_LOAD not built; cmake --build <dir> --target rate_load)"
  exit 0
fi
rate=${RATE:-$(awk -v d="$d_rps" -v f="$RATE_FRACTION" 'BEGIN { printf "%d", d * f }')}
echo "below saturation: $rate req/s offered (open loop, ${RATE_FRACTION} of the direct maximum" \
  "unless RATE is set), $CONNECTIONS connections, ${RATE_SECONDS} s each, latencies in ms"
rate_run() {  # label url header -> the RESULT line's fields
  local out
  local trace=()
  [ -n "${TRACE_DIR:-}" ] && trace=(--trace "$TRACE_DIR/$1-$i.txt")
  if ! out=$("$RATE_LOAD" --url "$2" -H "$3" --rate "$rate" --connections "$CONNECTIONS" \
      --seconds "$RATE_SECONDS" --warmup 1 --label "$1" "${trace[@]}"); then
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
printf '%-10s %-9s %8s %8s %8s %8s %8s %9s\n' run path answered p50 p99 p99.9 max "gen lag99"
added_p99=()
for i in $(seq "$RATE_RUNS"); do
  d=$(rate_run direct "$sim/v1/convai/conversations/$conversation" "xi-api-key: $SIM_KEY")
  t0=$(ticks "${pids[1]}"); s0=$(switches "${pids[1]}")
  g=$(rate_run gateway "$gw/api/conversations/$conversation" "X-API-Key: $GW_KEY")
  t1=$(ticks "${pids[1]}"); s1=$(switches "${pids[1]}")
  for r in "$d" "$g"; do
    printf '%-10s %-9s %8s %8s %8s %8s %8s %9s\n' "$i" "$(field "$r" label)" "$(field "$r" ok)" \
      "$(field "$r" p50_ms)" "$(field "$r" p99_ms)" "$(field "$r" p999_ms)" "$(field "$r" max_ms)" \
      "$(field "$r" lag_p99_ms)"
  done
  added_p99+=("$(awk -v d="$(field "$d" p99_ms)" -v g="$(field "$g" p99_ms)" \
    'BEGIN { printf "%.3f", g - d }')")
  awk -v dp50="$(field "$d" p50_ms)" -v gp50="$(field "$g" p50_ms)" \
    -v dp99="$(field "$d" p99_ms)" -v gp99="$(field "$g" p99_ms)" \
    -v dp999="$(field "$d" p999_ms)" -v gp999="$(field "$g" p999_ms)" -v i="$i" 'BEGIN {
    printf "run %s: the gateway adds p50 %+.3f ms, p99 %+.3f ms, p99.9 %+.3f ms\n", i, gp50 - dp50,
      gp99 - dp99, gp999 - dp999 }'
  # Over the whole gateway run (warm-up included: rate x (seconds + 1) requests).
  awk -v t="$((t1 - t0))" -v s="$((s1 - s0))" -v hz="$hz" -v n="$(( rate * (RATE_SECONDS + 1) ))" \
    -v i="$i" 'BEGIN { printf "run %s: gateway CPU %.0f us and %.2f context switches per request\n",
      i, t / hz * 1e6 / n, s / n }'
done
# A pair's added p99 is the difference of two tails, each set by the machine's stalls in its own
# 10 s (the direct p99 alone moves from 0.3 to 6 ms between runs here): the median over the pairs
# is the figure to read, with how many pairs were under the aim's 1 ms.
printf '%s\n' "${added_p99[@]}" | sort -g | awk '{ v[NR] = $1; if ($1 < 1) under++ }
  END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "added p99 over %d pairs: median %+.3f ms (from %+.3f to %+.3f); under 1 ms in %d of %d\n",
          NR, m, v[1], v[NR], under, NR }'
