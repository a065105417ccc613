#!/usr/bin/env bash
# Benchmark (issues 3 and 6): concurrent live conversations, callgate's session engine against
# `callgate sim`, with null audio endpoints (silence sent in real time in 50 ms chunks, agent
# audio played into nothing). For each session count: the engine's and the simulator's CPU per
# session-second, the engine's memory per session, how far behind real time the user audio
# reached the simulator, pings answered, drops and underruns (bench/sessions_bench.cpp).
# Sessions start at RAMP per second (default 200), the window opens once all are active.
# The simulator runs on SIM_IO_THREADS I/O threads (default 1: it spends less CPU than with 2 on
# cross-thread wake-ups, and the engine keeps the gateway's 2). AUDIO_CHUNK_MS (default 50, the
# gateway's): user audio per user_audio_chunk message. Not part of `make test`.
# Usage: bench/sessions.sh [build] [counts...]   (default 100 200 400)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
COUNTS=("${@:-100 200 400}")
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RAMP=${RAMP:-200}
SIM_IO_THREADS=${SIM_IO_THREADS:-1}
AUDIO_CHUNK_MS=${AUDIO_CHUNK_MS:-50}  # user audio per user_audio_chunk (the gateway's default)
AUDIO_TICK_MS=${AUDIO_TICK_MS:-0}     # the audio clock's period; 0: the engine's default
KEY=bench-sessions-key-0123456789
work=$(mktemp -d)
"$BUILD/callgate" sim --port 0 --port-file "$work/port" --api-key "$KEY" --log-level warning \
  --inactivity-timeout-ms 600000 --io-threads "$SIM_IO_THREADS" > "$work/sim.log" 2>&1 &
sim_pid=$!
trap 'kill -TERM $sim_pid 2>/dev/null; wait $sim_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
url=http://127.0.0.1:$(cat "$work/port")
echo "$(nproc) cores shared by the engine and the simulator ($SIM_IO_THREADS I/O threads);" \
  "$SECONDS_PER_RUN s per run, $RAMP sessions started per second, $AUDIO_CHUNK_MS ms chunks"
for n in ${COUNTS[@]}; do
  echo "--- $n sessions (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$BUILD/bench/sessions_bench" --url "$url" --api-key "$KEY" --sessions "$n" \
    --seconds "$SECONDS_PER_RUN" --sim-pid "$sim_pid" --ramp "$RAMP" --chunk-ms "$AUDIO_CHUNK_MS" --tick-ms "$AUDIO_TICK_MS" ||
    echo "(sessions ended early or dropped audio)"
done
