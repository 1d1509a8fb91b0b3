#!/usr/bin/env bash
# The game day: every failure scenario of docs/resilience.md against the
# simulator, and one table of what clients saw and what the gateway did.
#
#   bench/gameday.sh            # ~30 s after the build
#
# The scenarios are the tests in crates/switchyard/tests/it/resilience.rs
# (CI runs them too); here each also writes its figures, and this script
# prints them. Loopback only, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
SWITCHYARD_GAMEDAY_OUT="$out" cargo nextest run -p switchyard --no-fail-fast -E 'test(/^resilience::/)' >&2
python3 - "$out" <<'PY'
import json, pathlib, sys
rows = sorted((json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).glob("*.json")), key=lambda r: r["scenario"])
ms = lambda v: "—" if v is None else f"{v} ms"
print("| scenario | requests | client-visible failures | failovers | breaker opens | time to detect | time to recover | note |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for r in rows:
    print(f"| {r['scenario']} | {r['requests']} | {r['failures']} | {r['failovers']} | {r['breaker_opens']} | {ms(r['detect_ms'])} | {ms(r['recover_ms'])} | {r['note']} |")
PY
