#!/usr/bin/env bash
# Installs the Debian 12 packages Rhizome needs that this machine lacks.
# Idempotent: when everything is present it only asks dpkg and exits (well under a second).
set -euo pipefail

PACKAGES=(
  g++ make cmake pkg-config
  libsodium-dev libprotobuf-dev protobuf-compiler libasio-dev libsqlcipher-dev
  libdeflate-dev          # the relay journal's CRC-32
  zlib1g-dev              # the journal tests' reference CRC-32 (also a dependency of libprotobuf-dev)
  libcli11-dev libqrencode-dev
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  libsqlite3-dev          # only for the SQLCipher-vs-SQLite benchmark binary
  python3 python3-cryptography  # scripts/check-ratchet-kat.py (an independent KAT check, a test)
  clang libclang-rt-14-dev  # libFuzzer builds (scripts/fuzz.sh)
)
# --bench: also the broker the relay is compared with (scripts/bench-relay.sh),
# and Node for Signal's library in the ratchet comparison (scripts/bench-ratchet.sh).
# Node is asked for only when no `node` is on PATH: a node installed another
# way (e.g. NodeSource's nodejs, which bundles npm) is kept.
if [ "${1:-}" = "--bench" ]; then
  PACKAGES+=(mosquitto libmosquitto-dev)
  if ! command -v node >/dev/null; then
    PACKAGES+=(nodejs npm)
  elif ! command -v npm >/dev/null; then
    PACKAGES+=(npm)
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
