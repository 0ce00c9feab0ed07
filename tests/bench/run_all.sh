#!/usr/bin/env bash
# Runs every Rhizome benchmark with the settings recorded in docs/benchmarks.md
# and summarises the results. Benchmarks are never part of ctest.
#
#   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-bench -j2 --target crypto_bench storage_bench_sqlcipher storage_bench_sqlite
#   tests/bench/run_all.sh build-bench results-dir
#
# Takes about six minutes on a 2-core machine.
set -euo pipefail

build=${1:?usage: run_all.sh BUILD_DIR RESULTS_DIR}
out=${2:?usage: run_all.sh BUILD_DIR RESULTS_DIR}
bench="$build/tests/bench"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

{
  date -u +%Y-%m-%dT%H:%M:%SZ
  echo "nproc: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/machine.txt"

# Primitives (wrapper and raw libsodium in separate benchmarks), 10 repetitions,
# interleaved in random order so slow phases of a shared machine spread out.
"$bench/crypto_bench" --benchmark_filter='^BM_(X25519|Ed25519|Aead)[A-Za-z0-9_]*(_Wrapper|_Raw|crypt<)' \
  --benchmark_min_time=0.2 --benchmark_repetitions=10 --benchmark_enable_random_interleaving=true \
  --benchmark_display_aggregates_only=true \
  --benchmark_out="$out/crypto.json" --benchmark_out_format=json > "$out/crypto.txt"

# Wrapper overhead, wrapper and raw call timed back to back in each iteration.
"$bench/crypto_bench" --benchmark_filter='Paired' --benchmark_min_time=0.5 \
  --benchmark_out="$out/paired.json" --benchmark_out_format=json > "$out/paired.txt"

# Argon2id: about a second per derivation at Moderate, so one iteration per repetition.
"$bench/crypto_bench" --benchmark_filter='Argon2id' --benchmark_min_time=0.01 \
  --benchmark_repetitions=3 --benchmark_display_aggregates_only=true \
  --benchmark_out="$out/argon2.json" --benchmark_out_format=json > "$out/argon2.txt"

# SQLCipher against plain SQLite: two binaries, never one linking both.
for lib in sqlcipher sqlite; do
  "$bench/storage_bench_$lib" --benchmark_min_time=1 --benchmark_repetitions=3 \
    --benchmark_display_aggregates_only=true \
    --benchmark_out="$out/storage_$lib.json" --benchmark_out_format=json > "$out/storage_$lib.txt"
done

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
cat "$out/machine.txt"
python3 "$here/summarize.py" "$out/paired.json" > "$out/summary.md"
python3 "$here/summarize.py" "$out/crypto.json" "$out/argon2.json" >> "$out/summary.md"
python3 "$here/summarize.py" "$out/storage_sqlcipher.json" "$out/storage_sqlite.json" >> "$out/summary.md"
cat "$out/summary.md"
