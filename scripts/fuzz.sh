#!/usr/bin/env bash
# Builds one fuzz target with clang + libFuzzer (+ ASan/UBSan) and runs it.
# Usage: scripts/fuzz.sh TARGET [SECONDS] [extra libFuzzer flags]
#   TARGET is the name of tests/fuzz/TARGET_fuzz.cc, e.g. key_file.
# New inputs libFuzzer finds go to build-fuzz/corpus/TARGET (the checked-in corpus
# in tests/fuzz/corpus/TARGET is read, never written); crashes to build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}"
seconds="${2:-60}"
shift $(( $# >= 2 ? 2 : 1 ))

scripts/setup.sh >/dev/null
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DRHIZOME_FUZZ=ON \
  -DRHIZOME_WERROR=OFF -DRHIZOME_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "fuzz_${target}"
mkdir -p "build-fuzz/corpus/${target}"
cd build-fuzz
exec "./tests/fuzz/fuzz_${target}" -max_total_time="${seconds}" -print_final_stats=1 "$@" \
  "corpus/${target}" "../tests/fuzz/corpus/${target}"
