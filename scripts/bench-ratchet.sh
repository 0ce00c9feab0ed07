#!/usr/bin/env bash
# Rhizome's Double Ratchet against Signal's library and the crypto floor
# (issue 5 §6), in one run.
#
#   scripts/bench-ratchet.sh [--build DIR] [--out DIR] [--quick]
#
# Builds ratchet_bench (Release) in DIR (default build-bench/), installs
# @signalapp/libsignal-client into tests/bench/libsignal/node_modules with
# `npm ci` if it is not there yet (the version pinned in package-lock.json),
# then runs, one after the other:
#   1. ratchet_bench: ours per message (1 KiB, encrypt + decrypt; ping-pong and
#      one-way burst), the crypto floor in raw libsodium, and both paired in
#      the same iterations; 3 repetitions, medians;
#   2. node tests/bench/libsignal/bench.mjs: the same two shapes with
#      libsignal-client (3 rounds of 2,000 timed messages per shape, medians).
# and prints the figures and the ratios against the goals:
#   ping-pong <= 0.55 x libsignal's p50 and <= 1.5 x the floor;
#   burst     <= 0.05 x libsignal's p50.
# libsignal adds post-quantum steps (PQXDH set-up, the SPQR ratchet in every
# message) that ours does not have; see docs/benchmarks.md.
# Figures are measured, never asserted (DESIGN §14); docs/benchmarks.md records
# a run. Needs node and npm (scripts/setup.sh --bench). --quick: shorter runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
out=""
quick=0

usage() { sed -n '2,22p' "$0"; exit 2; }
while (($#)); do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) usage ;;
    *) echo "bench-ratchet: unknown argument $1" >&2; usage ;;
  esac
done

die() { echo "bench-ratchet: $*" >&2; exit 1; }
command -v node >/dev/null || die "node is not installed (scripts/setup.sh --bench)"
command -v npm >/dev/null || die "npm is not installed (scripts/setup.sh --bench)"

js_dir="$root/tests/bench/libsignal"
if [ ! -d "$js_dir/node_modules/@signalapp/libsignal-client" ]; then
  echo "bench-ratchet: installing @signalapp/libsignal-client (npm ci)"
  # The package's install script only prints a hint; its prebuilt native
  # library is loaded at run time.
  (cd "$js_dir" && timeout 600 npm ci --ignore-scripts --no-audit --no-fund) ||
    die "npm ci failed in $js_dir"
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
[ "$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")" = Release ] ||
  die "$build is not a Release build"
cmake --build "$build" -j2 --target ratchet_bench
bench="$build/tests/bench/ratchet_bench"

[ -n "$out" ] || out="$build/bench-ratchet/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

if ((quick)); then
  gb_args=(--benchmark_min_time=0.2 --benchmark_repetitions=1)
  js_args=(--messages 500 --warmup 100 --rounds 1)
else
  gb_args=(--benchmark_min_time=1 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
  js_args=(--messages 2000 --warmup 500 --rounds 3)
fi

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
  echo "node: $(node --version); libsodium: $(pkg-config --modversion libsodium 2>/dev/null || echo '?')"
  echo "load at start: $(uptime)"
} | tee "$out/env.txt"

echo
echo "== 1/2 ratchet_bench (ours and the crypto floor) =="
timeout 900 "$bench" "${gb_args[@]}" --benchmark_out="$out/ratchet_bench.json" \
  --benchmark_out_format=json | tee "$out/ratchet_bench.txt"

echo
echo "== 2/2 libsignal-client (node) =="
if ! (cd "$js_dir" && timeout 900 node bench.mjs "${js_args[@]}") 2>&1 | tee "$out/libsignal.txt"; then
  die "the libsignal bench failed (output above and in $out/libsignal.txt); no comparison made"
fi
echo "load at end: $(uptime)" | tee -a "$out/env.txt"

ours=$(grep '^RESULT ' "$out/ratchet_bench.txt" | tail -1)
theirs=$(grep '^RESULT ' "$out/libsignal.txt" | tail -1)
[ -n "$ours" ] || die "no RESULT line from ratchet_bench"
[ -n "$theirs" ] || die "no RESULT line from the libsignal bench"

# get LINE KEY: the value of KEY=... in a RESULT line.
get() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
# ratio A B [SCALE]: A*SCALE / B with three decimals ("-" when B is missing).
ratio() {
  awk -v a="$1" -v b="$2" -v s="${3:-1}" 'BEGIN { if (a == "" || b == "" || b + 0 <= 0) print "-";
                                                else printf "%.3f", a * s / b }'
}
verdict() {
  awk -v r="$1" -v g="$2" 'BEGIN { if (r == "-") print "no figure"; else if (r + 0 <= g + 0) print "met";
                                   else print "NOT met" }'
}

pp=$(get "$ours" pingpong_p50_ns)
pp_cpu=$(get "$ours" pingpong_cpu_ns)
pp_floor=$(get "$ours" pingpong_floor_p50_ns)
pp_pfloor=$(get "$ours" pingpong_protocol_floor_p50_ns)
pp_paired=$(get "$ours" pingpong_paired_ratio)
bu=$(get "$ours" burst_p50_ns)
bu_cpu=$(get "$ours" burst_cpu_ns)
bu_floor=$(get "$ours" burst_floor_p50_ns)
bu_pfloor=$(get "$ours" burst_protocol_floor_p50_ns)
bu_paired=$(get "$ours" burst_paired_ratio)
sig_pp=$(get "$theirs" pingpong_p50_us)
sig_pp_cpu=$(get "$theirs" pingpong_cpu_us)
sig_bu=$(get "$theirs" burst_p50_us)
sig_bu_cpu=$(get "$theirs" burst_cpu_us)
sig_version=$(get "$theirs" libsignal_version)

us() { awk -v v="$1" -v s="${2:-0.001}" 'BEGIN { if (v == "") print "-"; else printf "%.1f", v * s }'; }

r_pp_sig=$(ratio "$pp" "$sig_pp" 0.001)
r_pp_floor=$(ratio "$pp" "$pp_floor")
r_bu_sig=$(ratio "$bu" "$sig_bu" 0.001)
r_pp_sig_cpu=$(ratio "$pp_cpu" "$sig_pp_cpu" 0.001)
r_bu_sig_cpu=$(ratio "$bu_cpu" "$sig_bu_cpu" 0.001)
r_bu_floor=$(ratio "$bu" "$bu_floor")

{
  echo
  echo "== Double Ratchet, 1 KiB, encrypt + decrypt per message (µs/msg) =="
  echo "libsignal-client $sig_version adds post-quantum steps ours does not have (PQXDH, SPQR)."
  printf '%-10s | %9s %9s | %9s %9s | %9s %11s\n' shape "ours p50" "ours CPU" "signal p50" "signal CPU" \
    "floor p50" "proto-floor"
  printf '%-10s | %9s %9s | %9s %9s | %9s %11s\n' ping-pong "$(us "$pp")" "$(us "$pp_cpu")" \
    "$(us "$sig_pp" 1)" "$(us "$sig_pp_cpu" 1)" "$(us "$pp_floor")" "$(us "$pp_pfloor")"
  printf '%-10s | %9s %9s | %9s %9s | %9s %11s\n' burst "$(us "$bu")" "$(us "$bu_cpu")" \
    "$(us "$sig_bu" 1)" "$(us "$sig_bu_cpu" 1)" "$(us "$bu_floor")" "$(us "$bu_pfloor")"
  echo
  echo "goal                                  ratio    (CPU-time ratio)  verdict"
  printf 'ping-pong <= 0.55 x libsignal p50     %-8s (%s)%*s %s\n' "$r_pp_sig" "$r_pp_sig_cpu" \
    $((10 - ${#r_pp_sig_cpu})) "" "$(verdict "$r_pp_sig" 0.55)"
  printf 'ping-pong <= 1.5 x floor (paired)     %-8s (separate: %s) %s\n' "$pp_paired" "$r_pp_floor" \
    "$(verdict "$pp_paired" 1.5)"
  printf 'burst     <= 0.05 x libsignal p50     %-8s (%s)%*s %s\n' "$r_bu_sig" "$r_bu_sig_cpu" \
    $((10 - ${#r_bu_sig_cpu})) "" "$(verdict "$r_bu_sig" 0.05)"
  printf 'burst vs its floor (no goal)          %-8s (paired: %s)\n' "$r_bu_floor" "$bu_paired"
  echo
  echo "outputs: $out"
} | tee "$out/summary.txt"
