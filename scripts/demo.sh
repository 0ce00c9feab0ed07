#!/usr/bin/env bash
# Sets up the machine, builds, and runs `rhizome demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
exec build/client/rhizome demo "$@"
