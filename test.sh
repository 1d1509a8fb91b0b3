#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit + integration, via nextest when
# available) and the conformance suite with the official openai Python SDK.
# Installs what it needs (PostgreSQL and Redis from Debian's packages, run
# privately on loopback by tests/services.sh; a venv under .venv); safe to
# run on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo build"
cargo build --workspace --all-targets --locked

echo "== services (PostgreSQL and Redis on loopback, stopped when this script exits)"
# shellcheck source=tests/services.sh
source tests/services.sh

echo "== rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== python conformance (official openai and anthropic SDKs)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt
SWITCHYARD_BIN="$PWD/target/debug/switchyard" .venv/bin/python -m pytest -q tests/conformance
