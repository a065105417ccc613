# shellcheck shell=bash
# Sourced by the bench scripts: how much of this virtual machine's CPU time the host took for
# something else (/proc/stat's "steal"). These machines have slow phases in which the host
# steals 5-13% of the CPU; every tail latency is worse then, whatever the code. A script prints
# the share stolen during its measured runs so that a figure can be read with its phase.
#   at=$(cpu_steal); ...run...; echo "host steal: $(steal_percent "$at")% of the CPU time"
cpu_steal() {  # "steal total" in ticks, all CPUs, since boot
  awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t }' /proc/stat
}
steal_percent() {  # an earlier cpu_steal's output -> the percentage stolen since then
  local s0 t0 s1 t1
  read -r s0 t0 <<< "$1"
  read -r s1 t1 < <(cpu_steal)
  awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", (t > 0 ? 100 * s / t : 0) }'
}
