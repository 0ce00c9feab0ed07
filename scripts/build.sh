#!/usr/bin/env bash
# Configures and builds Rhizome.
# Usage: scripts/build.sh [--sanitize] [--target T ...]
#   default build dir: build/ ; with --sanitize: build-asan/ (ASan + UBSan, no benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
cmake_args=()
targets=()
while (($#)); do
  case "$1" in
    --sanitize) dir=build-asan; cmake_args+=(-DRHIZOME_SANITIZE=ON -DRHIZOME_BENCHMARKS=OFF) ;;
    --target) shift; targets+=(--target "$1") ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

cmake -S . -B "$dir" "${cmake_args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
