#!/usr/bin/env bash
# Sets up the machine, builds the programs, and runs `rhizome demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --target rhizome --target rhizome-relay >/dev/null
exec build/client/rhizome demo "$@"
