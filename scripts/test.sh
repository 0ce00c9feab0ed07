#!/usr/bin/env bash
# Sets up the machine, builds, and runs every test.
# Usage: scripts/test.sh [--sanitize] [extra ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
build_args=()
dir=build
if [ "${1:-}" = "--sanitize" ]; then
  build_args+=(--sanitize)
  dir=build-asan
  shift
fi
scripts/build.sh "${build_args[@]}"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" "$@"
