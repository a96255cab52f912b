#!/usr/bin/env bash
# Installs everything the test suite needs that cargo does not: moto server, pinned, in a
# venv under .venv/moto. Safe to run again: it only installs what is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
venv=.venv/moto

if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "setup: installing moto[server]==$MOTO_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
