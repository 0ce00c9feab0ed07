#!/usr/bin/env bash
# Checks relay/deploy/rhizome-relay.service with `systemd-analyze verify`,
# pointing ExecStart at a built rhizome-relay binary (argument 1).
set -euo pipefail
cd "$(dirname "$0")/.."
binary="${1:?usage: scripts/verify-systemd-unit.sh PATH_TO_rhizome-relay}"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/local/bin/rhizome-relay|$(realpath "$binary")|" relay/deploy/rhizome-relay.service \
  > "$tmp/rhizome-relay.service"
out="$(systemd-analyze verify "$tmp/rhizome-relay.service" 2>&1)" || { echo "$out" >&2; exit 1; }
# verify also prints warnings without failing: treat any output about our unit as a failure.
if grep -q "rhizome-relay.service" <<<"$out"; then echo "$out" >&2; exit 1; fi
echo "rhizome-relay.service: systemd-analyze verify is clean"
