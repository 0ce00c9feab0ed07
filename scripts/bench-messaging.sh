#!/usr/bin/env bash
# End-to-end messaging benchmark (issue 5 §6): 10,000 messages from one profile
# to another through a relay on loopback; messages per second and CPU per
# message of each process; profile unlock time.
#
#   scripts/bench-messaging.sh [--build DIR] [--out DIR] [--runs N] [--messages N]
#                              [--window W] [--perf [--perf-messages N]]
#                              [-- EXTRA messaging_e2e ARGS]
#
# Builds (Release) rhizome, rhizome-relay and tests/bench/messaging_e2e, then
# runs messaging_e2e --runs times (default 2). Each run starts its own relay
# (pinned to core 0 with `taskset -c 0`), two daemons (`rhizome daemon
# --poll-ms 100`, not pinned) on fresh --kdf-cost interactive profiles in a
# temporary directory, connects them by invite, and sends --messages (default
# 10,000) texts of 900 bytes from A to B through A's API socket (pipelined,
# --window 128 unanswered at most); tests/bench/messaging_e2e.cc says exactly
# what is measured. With --perf, one extra run of --perf-messages (default:
# --messages), not in the table, records the three processes with `perf record
# --call-graph dwarf` (during the run, and for 5 s of idling afterwards),
# counts their fsync/fdatasync calls during the run with `perf stat`, and
# prints where their CPU went. Figures are measured, never asserted (DESIGN
# §14); docs/benchmarks.md records a run. Machine load (uptime) is printed
# before and after each run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
args="$*"
build="$root/build-bench"
out=""
runs=2
messages=10000
window=128
perf=0
perf_messages=""
extra=()

usage() { sed -n '2,23p' "$0"; exit 2; }
while (($#)); do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --messages) messages=${2:?}; shift 2 ;;
    --window) window=${2:?}; shift 2 ;;
    --perf) perf=1; shift ;;
    --perf-messages) perf_messages=${2:?}; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "bench-messaging: unknown argument $1" >&2; usage ;;
  esac
done

die() { echo "bench-messaging: $*" >&2; exit 1; }
command -v taskset >/dev/null || die "taskset (util-linux) is missing"
((perf == 0)) || command -v perf >/dev/null || die "--perf needs perf (linux-perf), not installed"

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
[ "$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")" = Release ] ||
  die "$build is not a Release build"
cmake --build "$build" -j2 --target rhizome rhizome-relay messaging_e2e
bench="$build/tests/bench/messaging_e2e"
common=(--rhizome "$build/client/rhizome" --relay "$build/relay/rhizome-relay"
        --messages "$messages" --window "$window" --poll-ms 100 --relay-cpu 0 --unlock-runs 5
        --timeout 840)

[ -n "$out" ] || out="$build/bench-messaging/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
results="$out/results.txt"
: > "$results"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "command: scripts/bench-messaging.sh $args"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "kernel: $(uname -r); temporary directories on: $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2 " (" $1 ")"}')"
} | tee "$out/machine.txt"

status=0
for i in $(seq "$runs"); do
  echo "== run $i: uptime before: $(uptime)" | tee -a "$out/machine.txt"
  set +e
  timeout 900 "$bench" "${common[@]}" --label "run$i" "${extra[@]}" | tee "$out/run$i.txt"
  rc=${PIPESTATUS[0]}
  set -e
  echo "== run $i: uptime after: $(uptime); exit $rc" | tee -a "$out/machine.txt"
  sed -n 's/^RESULT //p' "$out/run$i.txt" >>"$results"
  ((rc == 0)) || status=$rc
  ((rc != 3)) || die "run $i found a bug (see BUG lines above); stopping"
done

if ((perf)); then
  [ -n "$perf_messages" ] || perf_messages=$messages
  echo "== perf run, $perf_messages messages (not in the table): uptime before: $(uptime)" |
    tee -a "$out/machine.txt"
  set +e
  timeout 1200 "$bench" "${common[@]}" --messages "$perf_messages" --unlock-runs 1 --idle-seconds 5 \
    --timeout 1140 --label perf --perf "$out/perf" "${extra[@]}" | tee "$out/perf.txt"
  set -e
  echo "== perf run: uptime after: $(uptime)" | tee -a "$out/machine.txt"
  # Threads: the pid printed for each process is its main (I/O) thread; a
  # daemon's worker thread (requests, delivery passes) is another tid.
  grep '^pids:' "$out/perf.txt" || true
  [ -f "$out/perf/fsync.txt" ] && grep -v '^#' "$out/perf/fsync.txt" | grep -v '^$' | grep -v ' 0 ' |
    grep -v 'not counted' | tee "$out/perf-fsync.txt" || true
  for data in perf perf-idle; do
    [ -f "$out/perf/$data.data" ] || continue
    echo "== $data: CPU samples by thread and library"
    { perf report -i "$out/perf/$data.data" --no-children --sort pid,dso -g none --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -30 || true; } | tee "$out/$data-dso.txt"
    echo "== $data: inclusive share of our functions and SQLite's entry points"
    { perf report -i "$out/perf/$data.data" --children --sort pid,sym -g none --stdio 2>/dev/null |
        grep -v '^#' | grep -v '^$' | grep 'rhizome::\|sqlite3_\|sqlcipher' | head -60 || true; } |
      tee "$out/$data-inclusive.txt"
  done
fi

# ---- the table ------------------------------------------------------------------
# get LABEL KEY -> value from the RESULT lines ("" if missing).
get() {
  awk -v l="label=$1" -v k="$2" '$1 == l {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' "$results"
}
row() { printf '| %-52s |' "$1"; shift; for v in "$@"; do printf ' %12s |' "$v"; done; echo; }
{
  echo
  labels=()
  for i in $(seq "$runs"); do labels+=("run$i"); done
  row "" "${labels[@]}"
  row "---" $(for _ in "${labels[@]}"; do echo ---; done)
  line() { local name=$1 key=$2; local vals=(); for l in "${labels[@]}"; do vals+=("$(get "$l" "$key")"); done; row "$name" "${vals[@]}"; }
  line "complete (1 = yes)" complete
  line "bugs (lost, duplicated, reordered)" bugs
  line "messages received by B" received_so_far
  line "all sends answered by A, s" accepted_s
  line "all received by B, s" received_s
  line "msg/s (first send -> all received)" msg_per_s
  line "all delivered on A (receipts), s" delivered_s
  line "CPU us/msg to all received: A daemon" recv_cpu_us_a
  line "CPU us/msg to all received: B daemon" recv_cpu_us_b
  line "CPU us/msg to all received: relay" recv_cpu_us_relay
  line "CPU us/msg to all delivered: A daemon" deliv_cpu_us_a
  line "CPU us/msg to all delivered: B daemon" deliv_cpu_us_b
  line "CPU us/msg to all delivered: relay" deliv_cpu_us_relay
  line "idle CPU ms/s: A daemon" idle_ms_per_s_a
  line "idle CPU ms/s: B daemon" idle_ms_per_s_b
  line "idle CPU ms/s: relay" idle_ms_per_s_relay
  line "reads of A polled until all delivered" read_polls
  line "CPU ms of one read of everything on A" read_cost_ms_a
  line "unlock: --version (no profile), ms wall" unlock_start_ms
  line "unlock: id, interactive, ms wall (median of 5)" unlock_interactive_ms
  line "unlock: id, moderate, ms wall (median of 5)" unlock_moderate_ms
  line "unlock: id, interactive, ms CPU" unlock_interactive_cpu_ms
  line "unlock: id, moderate, ms CPU" unlock_moderate_cpu_ms
  line "unlock: A's profile after the run, ms wall" unlock_used_ms
  line "driver CPU s (to all received)" driver_cpu_s
} | tee "$out/table.md"
echo
echo "results: $out"
exit "$status"
