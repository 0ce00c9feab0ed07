#!/usr/bin/env bash
# Configures and builds Rhizome. Usage: scripts/build.sh [--sanitize] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=OFF
dir=build
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=ON; dir=build-asan ;;
    *) dir="$arg" ;;
  esac
done

cmake -S . -B "$dir" -DRHIZOME_SANITIZE="$sanitize" >/dev/null
cmake --build "$dir" -j"$(nproc)"
