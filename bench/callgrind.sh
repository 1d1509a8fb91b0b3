#!/usr/bin/env bash
# Counts the gateway's instructions per request with callgrind: repeatable
# to the instruction, unlike CPU time on a shared VM, so it is the figure to
# compare two versions of the hot path.
#
# usage: bench/callgrind.sh [REQUESTS] [--stream]   (default 3000, non-stream)
# Needs valgrind (apt-get install valgrind). Builds the release binary.
# Prints instructions per request for the whole process (minus the one-off
# tokenizer warm-up at start) and for its main parts. Loopback only; stops
# the processes it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-3000}
shift || true
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
cargo build --release --locked -p switchyard --manifest-path "$ROOT/Cargo.toml" >&2
BIN=$ROOT/target/release/switchyard
WORK=$(mktemp -d)
[[ -n ${KEEP:-} ]] && echo "callgrind.sh: keeping $WORK" >&2
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [[ -n ${KEEP:-} ]] || rm -rf "$WORK"; }
trap cleanup EXIT

wait_url() { # FILE: waits for a "listening on URL" line, prints URL
    for _ in $(seq 1 240); do
        url=$(grep -o 'listening on http://[0-9.:]*' "$1" 2>/dev/null | head -n1 | sed 's/listening on //')
        [[ -n $url ]] && { echo "$url"; return; }
        sleep 0.25
    done
    echo "callgrind.sh: no listening line in $1" >&2; exit 1
}

"$BIN" sim --listen 127.0.0.1:0 >"$WORK/sim.out" 2>/dev/null &
PIDS+=($!)
SIM=$(wait_url "$WORK/sim.out")
curl -s -X PUT "$SIM/_sim/knobs" -d '{"answer_tokens":16}' >/dev/null
sed -e "s#@WORK@#$WORK#" -e "s#@SIM@#$SIM#" "$ROOT/bench/gateway.yaml.in" >"$WORK/gw.yaml"
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN" serve --config "$WORK/gw.yaml" \
    >"$WORK/gw.out" 2>"$WORK/gw.err" &
GW_PID=$!
PIDS+=("$GW_PID")
GW=$(wait_url "$WORK/gw.out")
KEY=$(curl -s -X POST "$GW/api/v1/keys" -H "Authorization: Bearer bench-admin" -d @"$ROOT/bench/key.json" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
"$BIN" bench --url "$GW/v1/chat/completions" --api-key "$KEY" --concurrency 64 --requests "$N" \
    --duration 600 --warmup 0 "$@" --json >/dev/null
kill -TERM "$GW_PID"
wait "$GW_PID" || true
callgrind_annotate --inclusive=yes "$WORK/callgrind.out" 2>/dev/null >"$WORK/cg.txt"
python3 - "$N" "$WORK/cg.txt" <<'PY'
import re, sys
n, path = int(sys.argv[1]), sys.argv[2]
parts = {
    "total": r"PROGRAM TOTALS",
    "tokenizer warm-up": r"openai_public::o200k_base \[",
    "request handler (server + core)": r"crates/server/src/v1\.rs:switchyard_server::v1::serve::\{\{closure\}\}",
    "upstream call (providers)": r"openai_compat/mod\.rs:<switchyard_providers::openai_compat::OpenAiCompat as switchyard_providers::Provider>::send::\{\{closure\}\}",
    "usage rows (SQLite thread)": r"sqlx-sqlite-[0-9.]+/src/connection/worker.rs:std::sys::backtrace::__rust_begin_short_backtrace",
}
found = {}
for line in open(path):
    m = re.match(r"\s*([\d,]+)", line)
    if not m:
        continue
    for k, p in parts.items():
        if k not in found and re.search(p, line):
            found[k] = int(m.group(1).replace(",", ""))
per = (found.get("total", 0) - found.get("tokenizer warm-up", 0)) / n
print(f"instructions per request (user space, whole process, {n} requests, concurrency 64): {per:,.0f}")
for k in list(parts)[2:]:
    print(f"  {k:34} {found.get(k, 0) / n:>10,.0f}")
PY
